//! Route 53 failover alias record (global), one per name of `dns.names` and region, at
//! `global/dns/dns-record/<name>@<region>`: an `A` alias to the region's load balancer with
//! `EvaluateTargetHealth`, failover role `PRIMARY` (the primary region, with its health check) or
//! `SECONDARY`, and the set identifier `{app}-{env}-<region>`.
//!
//! **Records carry no tags.** They are the environment's by their set identifier, in the zone
//! named by the environment's health checks (`deployer:dns-zone`), so discovery needs no
//! configuration: `ListResourceRecordSets` of that zone, keeping the alias `A` records whose set
//! identifier starts with `{app}-{env}-`. Every other record of the zone is someone else's and
//! is never touched.
//!
//! Create and update are an `UPSERT` (repeating one is harmless: a lost answer retried changes
//! nothing), then a wait for the change to be `INSYNC`. Delete re-reads the record and deletes
//! exactly what Route 53 holds (a `DELETE` must match it); one already gone is done. ID:
//! `<zone id>/<name>/<set identifier>`.

use aws_sdk_route53::types::{
    AliasTarget, Change, ChangeAction, ChangeBatch, ChangeStatus, ResourceRecordSet,
    ResourceRecordSetFailover, RrType,
};
use serde::Serialize;

use super::{Ctx, DataLoss, Diff, Found, Kind, ObserveCtx, Readiness, Replace, Role, Scope, Spec, Tags};
use crate::cloud::{wait_until, AwsResultExt, Error, Waited};
use crate::model::{Address, Ref};

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DnsRecordSpec {
    /// The hosted zone's name (looked up by name; never created).
    pub zone: String,
    /// Fully qualified, without the trailing dot, lowercase.
    pub name: String,
    pub set_identifier: String,
    /// `PRIMARY` or `SECONDARY`.
    pub failover: String,
    /// The load balancer's DNS name and canonical hosted zone (attribute references; the zone
    /// is not compared, see `diff`).
    pub target_dns: Ref,
    pub target_zone: Ref,
    pub evaluate_target_health: bool,
    pub health_check: Option<Ref>,
}

pub struct DnsRecord;

fn client(clients: &crate::cloud::Clients) -> aws_sdk_route53::Client {
    clients.global()
}

fn fqdn(name: &str) -> String {
    format!("{}.", name.trim_end_matches('.'))
}

/// Route 53 writes `*` and some characters as octal escapes; ours are plain host names.
fn plain(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

impl Kind for DnsRecord {
    type Spec = DnsRecordSpec;
    const NAME: &'static str = "dns-record";
    const SCOPE: Scope = Scope::Global;
    const TAGGED: bool = false;

    fn refs(spec: &mut DnsRecordSpec) -> Vec<(Role, &mut Ref)> {
        let mut refs = vec![(Role::Points, &mut spec.target_dns), (Role::Points, &mut spec.target_zone)];
        if let Some(h) = &mut spec.health_check {
            refs.push((Role::Points, h));
        }
        refs
    }
    fn normalize(spec: &mut DnsRecordSpec) {
        spec.name = plain(&spec.name);
    }
    fn diff(desired: &DnsRecordSpec, observed: &DnsRecordSpec, d: &mut Diff) {
        d.field("name", &desired.name, &observed.name, Replace::Yes);
        d.field("set_identifier", &desired.set_identifier, &observed.set_identifier, Replace::Yes);
        d.field("failover", &desired.failover, &observed.failover, Replace::No);
        d.field("target_dns", &desired.target_dns, &observed.target_dns, Replace::No);
        // Not `target_zone`: it is implied by the target's DNS name (Route 53 refuses an alias
        // whose zone does not hold that name), and it is the same for every load balancer of a
        // region, so as an attribute it could not be told apart anyway.
        d.field(
            "evaluate_target_health",
            &desired.evaluate_target_health,
            &observed.evaluate_target_health,
            Replace::No,
        );
        d.field("health_check", &desired.health_check, &observed.health_check, Replace::No);
    }
    fn readiness(_: &DnsRecordSpec, _: &str) -> Readiness {
        Readiness::Ready
    }
    fn conflicts(_: &DnsRecordSpec, _: &DnsRecordSpec) -> bool {
        false
    }
    fn derived_address(_: &DnsRecordSpec, _: &Address) -> Option<Address> {
        None
    }
    fn data_loss(_: &DnsRecordSpec) -> Option<DataLoss> {
        None
    }
    async fn observe(ctx: &ObserveCtx<'_>) -> Result<Vec<Found>, Error> {
        let checks = super::health_check::ours(ctx).await?;
        let mut zones: Vec<String> =
            checks.iter().filter_map(|c| c.tags.get(super::health_check::TAG_DNS_ZONE).cloned()).collect();
        zones.sort();
        zones.dedup();
        let prefix = format!("{}-{}-", ctx.app, ctx.env);
        let r53 = client(ctx.clients);
        let mut found = Vec::new();
        for zone in zones {
            for set in records(&r53, &zone).await? {
                let Some(id) = set.set_identifier() else { continue };
                let Some(region) = id.strip_prefix(&prefix) else { continue };
                let Some(alias) = set.alias_target() else { continue };
                if set.r#type() != &RrType::A {
                    continue;
                }
                let name = plain(set.name());
                found.push(Found {
                    address: address(&name, region),
                    id: format!("{zone}/{name}/{id}"),
                    spec: Spec::DnsRecord(DnsRecordSpec {
                        zone: String::new(),
                        name: name.clone(),
                        set_identifier: id.to_string(),
                        failover: set.failover().map(|f| f.as_str().to_string()).unwrap_or_default(),
                        target_dns: Ref::Id(plain(alias.dns_name())),
                        target_zone: Ref::Id(alias.hosted_zone_id().to_string()),
                        evaluate_target_health: alias.evaluate_target_health(),
                        health_check: set.health_check_id().map(|h| Ref::Id(h.to_string())),
                    }),
                    tags: Tags::new(),
                    state: set.failover().map(|f| f.as_str().to_string()).unwrap_or_default(),
                    attrs: Default::default(),
                });
            }
        }
        Ok(found)
    }
    async fn create(
        ctx: &Ctx<'_>,
        address: &Address,
        spec: &DnsRecordSpec,
        _: &Tags,
    ) -> Result<String, Error> {
        let r53 = client(ctx.clients);
        let zone = zone_id(&r53, &spec.zone).await?;
        change(ctx, &r53, address, &zone, ChangeAction::Upsert, record_of(ctx, spec)?).await?;
        Ok(format!("{zone}/{}/{}", spec.name, spec.set_identifier))
    }
    async fn update(
        ctx: &Ctx<'_>,
        address: &Address,
        id: &str,
        desired: &DnsRecordSpec,
        _: &DnsRecordSpec,
        _: &Diff,
        _: &Tags,
    ) -> Result<(), Error> {
        let r53 = client(ctx.clients);
        let zone = id.split('/').next().unwrap_or_default().to_string();
        change(ctx, &r53, address, &zone, ChangeAction::Upsert, record_of(ctx, desired)?).await
    }
    async fn delete(ctx: &Ctx<'_>, address: &Address, id: &str, _: &DnsRecordSpec) -> Result<(), Error> {
        let r53 = client(ctx.clients);
        let mut parts = id.splitn(3, '/');
        let (Some(zone), Some(name), Some(set_id)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(Error::Failed(format!("{address}: not a record ID: {id}")));
        };
        // A DELETE must match the record exactly: delete what Route 53 holds now.
        let current = records(&r53, zone).await?.into_iter().find(|s| {
            plain(s.name()) == name && s.set_identifier() == Some(set_id) && s.r#type() == &RrType::A
        });
        match current {
            Some(set) => change(ctx, &r53, address, zone, ChangeAction::Delete, set).await,
            None => Ok(()),
        }
    }
    async fn wait_ready(_: &Ctx<'_>, _: &Address, _: &str) -> Result<(), Error> {
        Ok(())
    }
    async fn repair_tags(_: &Ctx<'_>, _: &Address, _: &str, _: &Tags) -> Result<(), Error> {
        Ok(())
    }
}

/// `global/dns/dns-record/<name>@<region>`.
pub fn address(name: &str, region: &str) -> Address {
    Address::global("dns", DnsRecord::NAME, &format!("{}@{region}", plain(name)))
}

fn record_of(ctx: &Ctx<'_>, spec: &DnsRecordSpec) -> Result<ResourceRecordSet, Error> {
    ResourceRecordSet::builder()
        .name(fqdn(&spec.name))
        .r#type(RrType::A)
        .set_identifier(&spec.set_identifier)
        .failover(ResourceRecordSetFailover::from(spec.failover.as_str()))
        .alias_target(
            AliasTarget::builder()
                .dns_name(ctx.id(&spec.target_dns)?)
                .hosted_zone_id(ctx.id(&spec.target_zone)?)
                .evaluate_target_health(spec.evaluate_target_health)
                .build()
                .map_err(|e| Error::Failed(e.to_string()))?,
        )
        .set_health_check_id(spec.health_check.as_ref().map(|h| ctx.id(h)).transpose()?)
        .build()
        .map_err(|e| Error::Failed(e.to_string()))
}

/// One change, then a wait until Route 53 has it on all its servers (`INSYNC`).
async fn change(
    ctx: &Ctx<'_>,
    r53: &aws_sdk_route53::Client,
    address: &Address,
    zone: &str,
    action: ChangeAction,
    set: ResourceRecordSet,
) -> Result<(), Error> {
    let batch = ChangeBatch::builder()
        .comment(format!("deployer: {address}"))
        .changes(
            Change::builder()
                .action(action.clone())
                .resource_record_set(set)
                .build()
                .map_err(|e| Error::Failed(e.to_string()))?,
        )
        .build()
        .map_err(|e| Error::Failed(e.to_string()))?;
    let out = match r53.change_resource_record_sets().hosted_zone_id(zone).change_batch(batch).send().await {
        Ok(out) => out,
        // A DELETE of a record that went away meanwhile (a retried request whose answer was lost).
        Err(e)
            if action == ChangeAction::Delete
                && e.as_service_error().is_some_and(|e| e.is_invalid_change_batch()) =>
        {
            return Ok(())
        }
        Err(e) => return Err(e).op("ChangeResourceRecordSets"),
    };
    let Some(info) = out.change_info() else { return Ok(()) };
    let change_id = info.id().to_string();
    wait_until(&format!("{address}: DNS change {change_id} to be in sync"), ctx.timeout, || async {
        let out = r53.get_change().id(&change_id).send().await.op("GetChange")?;
        Ok(match out.change_info().map(|c| c.status()) {
            Some(ChangeStatus::Insync) => Waited::Done(()),
            other => Waited::NotYet(other.map(|s| s.as_str().to_string()).unwrap_or_default()),
        })
    })
    .await
}

/// Every record set of the zone (paginated).
async fn records(r53: &aws_sdk_route53::Client, zone: &str) -> Result<Vec<ResourceRecordSet>, Error> {
    let mut all = Vec::new();
    let (mut name, mut kind, mut ident): (Option<String>, Option<RrType>, Option<String>) =
        (None, None, None);
    loop {
        let out = r53
            .list_resource_record_sets()
            .hosted_zone_id(zone)
            .set_start_record_name(name.clone())
            .set_start_record_type(kind.clone())
            .set_start_record_identifier(ident.clone())
            .send()
            .await
            .op("ListResourceRecordSets")?;
        all.extend(out.resource_record_sets().to_vec());
        if !out.is_truncated() {
            return Ok(all);
        }
        name = out.next_record_name().map(str::to_string);
        kind = out.next_record_type().cloned();
        ident = out.next_record_identifier().map(str::to_string);
        if name.is_none() {
            return Ok(all);
        }
    }
}

/// The ID of the public hosted zone named `name`; the deployer never creates zones.
pub async fn zone_id(r53: &aws_sdk_route53::Client, name: &str) -> Result<String, Error> {
    let wanted = fqdn(name);
    let out = r53
        .list_hosted_zones_by_name()
        .dns_name(&wanted)
        .max_items(1)
        .send()
        .await
        .op("ListHostedZonesByName")?;
    out.hosted_zones()
        .iter()
        .find(|z| z.name() == wanted && !z.config().is_some_and(|c| c.private_zone()))
        .map(|z| z.id().trim_start_matches("/hostedzone/").to_string())
        .ok_or_else(|| {
            Error::Failed(format!(
                "no public Route 53 hosted zone named {name} (dns.hosted_zone): the deployer writes the failover records there and never creates zones"
            ))
        })
}
