//! Route 53 failover alias records (global) of one name of `dns.names`, at
//! `global/dns/dns-record/<name>`: for each region an `A` alias to its load balancer with
//! `EvaluateTargetHealth`, set identifier `{app}-{env}-<region>` and failover role `PRIMARY`
//! (`dns.primary`, with its health check) or `SECONDARY`.
//!
//! **One resource per name, one batch per change.** Route 53 refuses two `PRIMARY` records for a
//! name, so switching the roles must change both records in one `ChangeResourceRecordSets`: the
//! pair is one resource, created (`UPSERT` of both), updated and deleted in one batch, then
//! waited on until `INSYNC`. An update sends the `DELETE` of each of its records exactly as Route
//! 53 holds them and the `CREATE` of each as wanted: the ChangeResourceRecordSets API reference
//! documents a batch as atomic (all of it or none), but not that two `UPSERT`s swapping the
//! roles are judged by the batch's end state. A retried update whose first attempt was applied
//! (its answer lost) is refused (its `DELETE`s no longer match): the records are read again and
//! the update is done when they are as wanted.
//!
//! **Records carry no tags.** They are the environment's by their set identifier, in the zone
//! named by the environment's health checks (`deployer:dns-zone`), so discovery needs no
//! configuration: `ListResourceRecordSets` of that zone, keeping the alias `A` records whose set
//! identifier starts with `{app}-{env}-`. Every other record of the zone is someone else's and
//! is never touched. Delete re-reads the records and deletes exactly what Route 53 holds (a
//! `DELETE` must match). ID: `<zone id>/<name>`.

use aws_sdk_route53::types::{
    AliasTarget, Change, ChangeAction, ChangeBatch, ChangeStatus, ResourceRecordSet,
    ResourceRecordSetFailover, RrType,
};
use serde::Serialize;

use super::{Create, Ctx, Delete, Diff, Found, Kind, ObserveCtx, Replace, Role, Scope, Spec, Tags, Update};
use crate::cloud::{wait_until, AwsResultExt, Error, Waited};
use crate::spec::{Address, Ref};

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RecordEntry {
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

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DnsRecordSpec {
    /// The hosted zone's name (looked up by name; never created).
    pub zone: String,
    /// Fully qualified, without the trailing dot, lowercase.
    pub name: String,
    /// One per region, ordered by set identifier.
    pub records: Vec<RecordEntry>,
}

/// An entry as compared: without the target's zone.
#[derive(PartialEq, Serialize)]
struct Compared<'a> {
    set_identifier: &'a str,
    failover: &'a str,
    target_dns: &'a Ref,
    evaluate_target_health: bool,
    health_check: &'a Option<Ref>,
}

fn compared(spec: &DnsRecordSpec) -> Vec<Compared<'_>> {
    spec.records
        .iter()
        .map(|r| Compared {
            set_identifier: &r.set_identifier,
            failover: &r.failover,
            target_dns: &r.target_dns,
            evaluate_target_health: r.evaluate_target_health,
            health_check: &r.health_check,
        })
        .collect()
}

pub struct DnsRecord;

use super::route53::{client, failover_zone_id, fqdn};

/// Route 53 answers names fully qualified; ours are compared without the dot, lowercase.
fn plain(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

impl Kind for DnsRecord {
    type Spec = DnsRecordSpec;
    const NAME: &'static str = "dns-record";
    const SCOPE: Scope = Scope::Global;
    const TAGGED: bool = false;
    const PARTS: &'static [&'static str] = &["dns"];
    const ACTIONS: &'static [&'static str] = &[
        "route53:ListResourceRecordSets",
        "route53:ChangeResourceRecordSets",
        "route53:GetChange",
        "route53:ListHostedZonesByName",
    ];

    fn refs(spec: &mut DnsRecordSpec) -> Vec<(Role, &mut Ref)> {
        let mut refs = Vec::new();
        for r in &mut spec.records {
            refs.push((Role::Points, &mut r.target_dns));
            refs.push((Role::Points, &mut r.target_zone));
            if let Some(h) = &mut r.health_check {
                refs.push((Role::Points, h));
            }
        }
        refs
    }
    fn normalize(spec: &mut DnsRecordSpec) {
        spec.name = plain(&spec.name);
        spec.records.sort_by(|a, b| a.set_identifier.cmp(&b.set_identifier));
    }
    fn diff(desired: &DnsRecordSpec, observed: &DnsRecordSpec, d: &mut Diff) {
        d.field("name", &desired.name, &observed.name, Replace::Yes);
        // Not the targets' zone: it is implied by the target's DNS name (Route 53 refuses an
        // alias whose zone does not hold that name), and it is the same for every load balancer
        // of a region, so as an attribute it could not be told apart anyway.
        d.field("records", &compared(desired), &compared(observed), Replace::No);
    }
    async fn observe(ctx: &ObserveCtx<'_>) -> Result<Vec<Found>, Error> {
        let checks = super::health_check::ours(ctx).await?;
        let mut zones: Vec<String> =
            checks.iter().filter_map(|c| c.tags.get(super::health_check::TAG_DNS_ZONE).cloned()).collect();
        zones.sort();
        zones.dedup();
        let prefix = format!("{}-{}-", ctx.app, ctx.env);
        let r53 = client(ctx.clients);
        let mut by_name: std::collections::BTreeMap<(String, String), Vec<RecordEntry>> = Default::default();
        for zone in zones {
            for set in records(&r53, &zone).await? {
                let Some(id) = set.set_identifier() else { continue };
                if !id.starts_with(&prefix) || set.r#type() != &RrType::A {
                    continue;
                }
                let Some(alias) = set.alias_target() else { continue };
                by_name.entry((zone.clone(), plain(set.name()))).or_default().push(RecordEntry {
                    set_identifier: id.to_string(),
                    failover: set.failover().map(|f| f.as_str().to_string()).unwrap_or_default(),
                    target_dns: Ref::Id(plain(alias.dns_name())),
                    target_zone: Ref::Id(alias.hosted_zone_id().to_string()),
                    evaluate_target_health: alias.evaluate_target_health(),
                    health_check: set.health_check_id().map(|h| Ref::Id(h.to_string())),
                });
            }
        }
        Ok(by_name
            .into_iter()
            .map(|((zone, name), records)| {
                let mut spec = DnsRecordSpec { zone: String::new(), name: name.clone(), records };
                DnsRecord::normalize(&mut spec);
                let state = spec
                    .records
                    .iter()
                    .map(|r| {
                        format!("{} {}", r.failover, r.set_identifier.strip_prefix(&prefix).unwrap_or(""))
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                Found {
                    address: address(&name),
                    id: format!("{zone}/{name}"),
                    spec: Spec::DnsRecord(spec),
                    tags: Tags::new(),
                    state,
                    attrs: Default::default(),
                }
            })
            .collect())
    }
    async fn create(ctx: &Ctx<'_>, new: Create<'_, DnsRecordSpec>) -> Result<String, Error> {
        let Create { address, spec, .. } = new;
        let r53 = client(ctx.clients);
        let zone = failover_zone_id(&r53, &spec.zone).await?;
        let changes = spec
            .records
            .iter()
            .map(|r| Ok((ChangeAction::Upsert, record_of(ctx, &spec.name, r)?)))
            .collect::<Result<Vec<_>, Error>>()?;
        apply(ctx, &r53, address, &zone, changes).await?;
        Ok(format!("{zone}/{}", spec.name))
    }
    async fn update(ctx: &Ctx<'_>, change: Update<'_, DnsRecordSpec>) -> Result<(), Error> {
        let Update { address, id, desired, observed, .. } = change;
        let r53 = client(ctx.clients);
        let zone = id.split('/').next().unwrap_or_default().to_string();
        // One batch: the DELETE of every record of ours Route 53 holds for the name (exactly as
        // it holds it), then the CREATE of each wanted one.
        let ours: Vec<&str> =
            observed.records.iter().chain(&desired.records).map(|r| r.set_identifier.as_str()).collect();
        let mut changes: Vec<(ChangeAction, ResourceRecordSet)> = current(&r53, &zone, &desired.name)
            .await?
            .into_iter()
            .filter(|set| set.set_identifier().is_some_and(|s| ours.contains(&s)))
            .map(|set| (ChangeAction::Delete, set))
            .collect();
        let wanted = desired
            .records
            .iter()
            .map(|r| record_of(ctx, &desired.name, r))
            .collect::<Result<Vec<_>, Error>>()?;
        changes.extend(wanted.iter().cloned().map(|set| (ChangeAction::Create, set)));
        match apply(ctx, &r53, address, &zone, changes).await {
            Err(e) if e.code() == Some("InvalidChangeBatch") => {
                let now = current(&r53, &zone, &desired.name).await?;
                let role = |s: &ResourceRecordSet| {
                    (
                        s.set_identifier().map(str::to_string),
                        s.failover().cloned(),
                        s.health_check_id().map(str::to_string),
                    )
                };
                let mut have: Vec<_> = now
                    .iter()
                    .filter(|s| s.set_identifier().is_some_and(|i| ours.contains(&i)))
                    .map(role)
                    .collect();
                let mut want: Vec<_> = wanted.iter().map(role).collect();
                have.sort();
                want.sort();
                if have == want {
                    Ok(())
                } else {
                    Err(e)
                }
            }
            other => other,
        }
    }
    async fn delete(ctx: &Ctx<'_>, gone: Delete<'_, DnsRecordSpec>) -> Result<(), Error> {
        let Delete { address, id, observed } = gone;
        let r53 = client(ctx.clients);
        let Some((zone, name)) = id.split_once('/') else {
            return Err(Error::InvalidState(format!("{address}: not a record ID: {id}")));
        };
        // A DELETE must match the record exactly: delete what Route 53 holds now.
        let ours: Vec<&str> = observed.records.iter().map(|r| r.set_identifier.as_str()).collect();
        let changes: Vec<_> = current(&r53, zone, name)
            .await?
            .into_iter()
            .filter(|s| s.set_identifier().is_some_and(|i| ours.contains(&i)))
            .map(|s| (ChangeAction::Delete, s))
            .collect();
        if changes.is_empty() {
            return Ok(());
        }
        apply(ctx, &r53, address, zone, changes).await
    }
}

/// `global/dns/dns-record/<name>`.
pub fn address(name: &str) -> Address {
    Address::global("dns", DnsRecord::NAME, &plain(name))
}

/// The alias `A` records of `name` with a set identifier, as Route 53 holds them.
async fn current(
    r53: &aws_sdk_route53::Client,
    zone: &str,
    name: &str,
) -> Result<Vec<ResourceRecordSet>, Error> {
    Ok(records(r53, zone)
        .await?
        .into_iter()
        .filter(|s| {
            plain(s.name()) == plain(name) && s.r#type() == &RrType::A && s.set_identifier().is_some()
        })
        .collect())
}

fn record_of(ctx: &Ctx<'_>, name: &str, spec: &RecordEntry) -> Result<ResourceRecordSet, Error> {
    ResourceRecordSet::builder()
        .name(fqdn(name))
        .r#type(RrType::A)
        .set_identifier(&spec.set_identifier)
        .failover(ResourceRecordSetFailover::from(spec.failover.as_str()))
        .alias_target(
            AliasTarget::builder()
                .dns_name(ctx.id(&spec.target_dns)?)
                .hosted_zone_id(ctx.id(&spec.target_zone)?)
                .evaluate_target_health(spec.evaluate_target_health)
                .build()
                .map_err(|e| Error::InvalidRequest(e.to_string()))?,
        )
        .set_health_check_id(spec.health_check.as_ref().map(|h| ctx.id(h)).transpose()?)
        .build()
        .map_err(|e| Error::InvalidRequest(e.to_string()))
}

/// One `ChangeResourceRecordSets` batch (atomic in Route 53), then a wait until Route 53 has it
/// on all its servers (`INSYNC`).
async fn apply(
    ctx: &Ctx<'_>,
    r53: &aws_sdk_route53::Client,
    address: &Address,
    zone: &str,
    changes: Vec<(ChangeAction, ResourceRecordSet)>,
) -> Result<(), Error> {
    let only_deletes = changes.iter().all(|(a, _)| *a == ChangeAction::Delete);
    let changes = changes
        .into_iter()
        .map(|(action, set)| {
            Change::builder()
                .action(action)
                .resource_record_set(set)
                .build()
                .map_err(|e| Error::InvalidRequest(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let batch = ChangeBatch::builder()
        .comment(format!("deployer: {address}"))
        .set_changes(Some(changes))
        .build()
        .map_err(|e| Error::InvalidRequest(e.to_string()))?;
    let out = match r53.change_resource_record_sets().hosted_zone_id(zone).change_batch(batch).send().await {
        Ok(out) => out,
        // DELETEs of records that went away meanwhile (a retried request whose answer was lost).
        Err(e) if only_deletes && e.as_service_error().is_some_and(|e| e.is_invalid_change_batch()) => {
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
