//! Route 53 health check (global), one per region of the environment, at
//! `global/dns/health-check/<region>`: HTTPS to the region's load balancer on
//! `dns.health_check_path`, with the interval, failure threshold and checker regions of `[dns]`.
//! The PRIMARY failover record carries the primary region's check.
//!
//! **Tagging.** `CreateHealthCheck` takes no tags; they follow in `ChangeTagsForResource`. The
//! create's `CallerReference` is derived from the address and the spec, so a run that died
//! between the two calls (or a create whose answer was lost) gets the same check back from
//! Route 53 on the next try, and tags it, instead of leaving an untagged one behind. A check
//! deleted earlier cannot give its reference again (`HealthCheckAlreadyExists`): then a fresh one
//! is used. The check also carries `deployer:dns-zone`, the hosted zone the environment's
//! failover records live in: how `dns-record`'s discovery finds the zone without the
//! configuration.
//!
//! The request interval and the type cannot change (a replace); the rest is `UpdateHealthCheck`.
//! Discovery: `ListHealthChecks`, then one `ListTagsForResources` per 10 of the checks whose
//! caller reference names the environment (`reference_prefix`): the account's other checks
//! cost no read. ID: the check's ID.

use aws_sdk_route53::types::{HealthCheckConfig, HealthCheckRegion, HealthCheckType, Tag, TagResourceType};
use serde::Serialize;

use super::{ec2, Update, TAG_APP, TAG_ENV};
use super::{Create, Ctx, Delete, Diff, Found, Kind, ObserveCtx, Replace, Role, Scope, Spec, Tags};
use crate::cloud::{AwsResultExt, Error};
use crate::spec::{Address, Ref};

/// The tag naming the hosted zone (its ID) the environment's failover records are in.
pub const TAG_DNS_ZONE: &str = "deployer:dns-zone";

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HealthCheckSpec {
    /// The load balancer's DNS name (an attribute reference).
    pub fqdn: Ref,
    pub port: i32,
    pub path: String,
    pub interval_secs: i32,
    pub failure_threshold: i32,
    /// Route 53's checker regions; empty for Route 53's default set.
    pub regions: Vec<String>,
    /// The hosted zone of the failover records (name), recorded as the zone ID in a tag.
    pub zone: String,
}

pub struct HealthCheck;

use super::route53::client;

impl Kind for HealthCheck {
    type Spec = HealthCheckSpec;
    const NAME: &'static str = "health-check";
    const SCOPE: Scope = Scope::Global;
    const TAGGED: bool = true;
    const PARTS: &'static [&'static str] = &["dns"];
    const ACTIONS: &'static [&'static str] = &[
        "route53:ListHealthChecks",
        "route53:ListTagsForResources",
        "route53:CreateHealthCheck",
        "route53:ChangeTagsForResource",
        "route53:UpdateHealthCheck",
        "route53:DeleteHealthCheck",
        "route53:ListHostedZonesByName",
    ];

    fn refs(spec: &mut HealthCheckSpec) -> Vec<(Role, &mut Ref)> {
        vec![(Role::Points, &mut spec.fqdn)]
    }
    fn normalize(spec: &mut HealthCheckSpec) {
        spec.regions.sort();
    }
    fn diff(desired: &HealthCheckSpec, observed: &HealthCheckSpec, d: &mut Diff) {
        diff_fields!(d, desired, observed,
            fqdn: No, port: No, path: No, interval_secs: Yes, failure_threshold: No, regions: No,
        );
    }
    async fn observe(ctx: &ObserveCtx<'_>) -> Result<Vec<Found>, Error> {
        Ok(ours(ctx).await?.as_ref().clone())
    }
    async fn create(ctx: &Ctx<'_>, new: Create<'_, HealthCheckSpec>) -> Result<String, Error> {
        let Create { address, spec, tags } = new;
        let r53 = client(ctx.clients);
        let config = config_of(ctx, spec)?;
        let field = |key: &str| tags.get(key).map(String::as_str).unwrap_or("");
        let prefix = reference_prefix(field(TAG_APP), field(TAG_ENV));
        let reference = caller_reference(&prefix, address, spec);
        let out = match r53
            .create_health_check()
            .caller_reference(&reference)
            .health_check_config(config.clone())
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|e| e.is_health_check_already_exists()) => r53
                .create_health_check()
                .caller_reference(format!(
                    "{prefix}{}",
                    ec2::client_token(address, tags).trim_start_matches("deployer-")
                ))
                .health_check_config(config)
                .send()
                .await
                .op("CreateHealthCheck")?,
            Err(e) => return Err(e).op("CreateHealthCheck"),
        };
        let id = out.health_check().map(|h| h.id().to_string()).unwrap_or_default();
        let mut tags = tags.clone();
        tags.insert(TAG_DNS_ZONE.into(), super::route53::failover_zone_id(&r53, &spec.zone).await?);
        tag(&r53, &id, &tags).await?;
        Ok(id)
    }
    async fn update(ctx: &Ctx<'_>, change: Update<'_, HealthCheckSpec>) -> Result<(), Error> {
        let Update { id, desired, diff, .. } = change;
        let r53 = client(ctx.clients);
        let regions = desired.regions.iter().map(|r| HealthCheckRegion::from(r.as_str())).collect::<Vec<_>>();
        // Back to Route 53's default checker regions: an empty list is not sent, so the
        // UpdateHealthCheck API reference's `ResetElements` (`Regions`) says so.
        let reset = (regions.is_empty() && diff.has("regions"))
            .then(|| vec![aws_sdk_route53::types::ResettableElementName::Regions]);
        r53.update_health_check()
            .set_reset_elements(reset)
            .health_check_id(id)
            .fully_qualified_domain_name(ctx.id(&desired.fqdn)?)
            .port(desired.port)
            .resource_path(&desired.path)
            .failure_threshold(desired.failure_threshold)
            .set_regions((!regions.is_empty()).then_some(regions))
            .send()
            .await
            .op("UpdateHealthCheck")?;
        Ok(())
    }
    async fn delete(ctx: &Ctx<'_>, gone: Delete<'_, HealthCheckSpec>) -> Result<(), Error> {
        let Delete { id, .. } = gone;
        match client(ctx.clients).delete_health_check().health_check_id(id).send().await {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_health_check()) => Ok(()),
            Err(e) => Err(e).op("DeleteHealthCheck"),
        }
    }
    async fn repair_tags(ctx: &Ctx<'_>, _: &Address, id: &str, missing: &Tags) -> Result<(), Error> {
        tag(&client(ctx.clients), id, missing).await
    }
}

fn config_of(ctx: &Ctx<'_>, spec: &HealthCheckSpec) -> Result<HealthCheckConfig, Error> {
    let regions = spec.regions.iter().map(|r| HealthCheckRegion::from(r.as_str())).collect::<Vec<_>>();
    HealthCheckConfig::builder()
        .r#type(HealthCheckType::Https)
        .fully_qualified_domain_name(ctx.id(&spec.fqdn)?)
        .port(spec.port)
        .resource_path(&spec.path)
        .request_interval(spec.interval_secs)
        .failure_threshold(spec.failure_threshold)
        .set_regions((!regions.is_empty()).then_some(regions))
        .build()
        .map_err(|e| Error::InvalidRequest(e.to_string()))
}

/// Every check of the environment is created with a reference that starts with this:
/// `deployer-`, then a hash of the app and the env. `ListHealthChecks` answers each check's
/// `CallerReference` (Route 53 API reference, ListHealthChecks), so discovery reads the tags of
/// the environment's checks only, never those of the account's other checks.
fn reference_prefix(app: &str, env: &str) -> String {
    format!("deployer-{:016x}-", ec2::stable_hash(&[app, env]))
}

/// The same for the same environment, address and spec: a retried create gets the same check
/// back. 50 characters (Route 53 takes up to 64).
fn caller_reference(prefix: &str, address: &Address, spec: &HealthCheckSpec) -> String {
    let spec = serde_json::to_string(spec).unwrap_or_default();
    format!("{prefix}{:016x}", ec2::stable_hash(&[address.as_str(), &spec]))
}

/// Whether discovery reads the tags of the check created with `reference`: one of the
/// environment's (`prefix`), or one made by a deployer from before references named the
/// environment (`deployer-` and 16 hex digits), whose tags alone can say whose it is.
fn may_be_ours(reference: &str, prefix: &str) -> bool {
    reference.starts_with(prefix)
        || reference
            .strip_prefix("deployer-")
            .is_some_and(|hash| hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()))
}

async fn tag(r53: &aws_sdk_route53::Client, id: &str, tags: &Tags) -> Result<(), Error> {
    let tags: Vec<Tag> = tags.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect();
    r53.change_tags_for_resource()
        .resource_type(TagResourceType::Healthcheck)
        .resource_id(id)
        .set_add_tags(Some(tags))
        .send()
        .await
        .op("ChangeTagsForResource")?;
    Ok(())
}

/// The environment's health checks, read once per observation (`dns-record` reads the zone
/// from them too).
pub async fn ours(ctx: &ObserveCtx<'_>) -> Result<std::sync::Arc<Vec<Found>>, Error> {
    ctx.shared("route53-health-checks", || async {
        let r53 = client(ctx.clients);
        let prefix = reference_prefix(ctx.app, ctx.env);
        let mut checks = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            // 1000 a page, the API's maximum (its reference, MaxItems): one page for up to
            // 1000 checks in the account, where the default is 100.
            let out = r53
                .list_health_checks()
                .max_items(1000)
                .set_marker(marker.clone())
                .send()
                .await
                .op("ListHealthChecks")?;
            checks.extend(
                out.health_checks().iter().filter(|c| may_be_ours(c.caller_reference(), &prefix)).cloned(),
            );
            match out.next_marker() {
                Some(m) if out.is_truncated() => marker = Some(m.to_string()),
                _ => break,
            }
        }
        let mut found = Vec::new();
        for chunk in checks.chunks(10) {
            let ids: Vec<String> = chunk.iter().map(|c| c.id().to_string()).collect();
            let out = r53
                .list_tags_for_resources()
                .resource_type(TagResourceType::Healthcheck)
                .set_resource_ids(Some(ids))
                .send()
                .await
                .op("ListTagsForResources")?;
            for set in out.resource_tag_sets() {
                let tags: Tags = set
                    .tags()
                    .iter()
                    .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
                    .collect();
                if !super::is_ours(&tags, ctx.app, ctx.env) {
                    continue;
                }
                let Some(address) = super::tagged_address(&tags, "health-check") else { continue };
                let Some(check) = chunk.iter().find(|c| Some(c.id()) == set.resource_id()) else { continue };
                let Some(c) = check.health_check_config() else { continue };
                let mut spec = HealthCheckSpec {
                    fqdn: Ref::Id(
                        c.fully_qualified_domain_name().unwrap_or_default().trim_end_matches('.').to_string(),
                    ),
                    port: c.port().unwrap_or(443),
                    path: c.resource_path().unwrap_or("/").to_string(),
                    interval_secs: c.request_interval().unwrap_or(30),
                    failure_threshold: c.failure_threshold().unwrap_or(3),
                    regions: c.regions().iter().map(|r| r.as_str().to_string()).collect(),
                    zone: String::new(),
                };
                HealthCheck::normalize(&mut spec);
                found.push(Found {
                    address,
                    id: check.id().to_string(),
                    spec: Spec::HealthCheck(spec),
                    tags,
                    state: format!("HTTPS {}", c.resource_path().unwrap_or("/")),
                    attrs: Default::default(),
                });
            }
        }
        Ok(found)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> HealthCheckSpec {
        HealthCheckSpec {
            fqdn: Ref::Id("lb.example.com".into()),
            port: 443,
            path: "/healthz".into(),
            interval_secs: 30,
            failure_threshold: 3,
            regions: vec![],
            zone: "example.com".into(),
        }
    }

    #[test]
    fn discovery_reads_the_tags_of_the_environments_checks_and_of_older_deployers_only() {
        let address = Address::parse("global/dns/health-check/us-east-1").unwrap();
        let prefix = reference_prefix("shop", "prod");
        let reference = caller_reference(&prefix, &address, &spec());
        assert!(
            reference.len() <= 64,
            "Route 53 takes a caller reference of 64 characters at most: {reference}"
        );
        assert_eq!(
            reference,
            caller_reference(&prefix, &address, &spec()),
            "a retried create sends the same"
        );
        assert!(may_be_ours(&reference, &prefix));
        assert!(may_be_ours("deployer-0123456789abcdef", &prefix), "made before references named the env");
        assert!(!may_be_ours(
            &caller_reference(&reference_prefix("shop", "staging"), &address, &spec()),
            &prefix
        ));
        assert!(!may_be_ours(
            &caller_reference(&reference_prefix("shopx", "prod"), &address, &spec()),
            &prefix
        ));
        assert!(!may_be_ours("billing-prod-7", &prefix));
        assert!(!may_be_ours("deployer-not-hex-at-all", &prefix));
    }
}
