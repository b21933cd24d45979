//! ACM certificate: the TLS certificate of a region's load balancer, for the environment's
//! domain names, validated by DNS, at `<region>/service/acm-certificate/main`. Not built when
//! `[tls.certificate_arns]` names one for the region (the listeners use that one as it is).
//!
//! Create: `RequestCertificate` (DNS validation, an idempotency token derived from the address,
//! tags in the request), then the validation CNAMEs ACM asks for are UPSERTed into the hosted
//! zone `tls.hosted_zone` (found with `ListHostedZonesByName`; the deployer never creates a
//! zone), then it waits for `ISSUED`. Every region's certificate for the same names asks for the
//! same CNAMEs, so the UPSERT is idempotent across regions and runs.
//!
//! Delete: the certificate, then the validation records of the names no certificate in the
//! environment's regions still covers (ACM asks every certificate of a name in the account for
//! the same CNAME, so while another region's certificate of the name exists, its record stays
//! for its renewals). Each deletion checks after its own `DeleteCertificate`, so of two regions
//! deleting at once, the later one removes the records. A record is deleted as Route 53 holds
//! it (read first), and one already gone is fine. A run killed between `DeleteCertificate` and
//! the record's removal leaves the CNAME (it names nothing once the certificates are gone):
//! `docs/runbooks/destroy-stuck.md` says how to find it.
//!
//! Discovery: one paginated `ListCertificates` (every status), then `ListTagsForCertificate`
//! for each certificate of the region — ACM has no tag filter, so these reads grow with the
//! certificates the account holds in the region, not with the environment — and
//! `DescribeCertificate` for ours. A different set of names replaces the certificate; the
//! listeners are re-pointed to the new one before the old one is deleted.

use aws_sdk_acm::types::{CertificateStatus, CertificateSummary, DomainValidation, Tag, ValidationMethod};
use aws_sdk_route53::types::{Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType};
use serde::Serialize;

use super::{
    Create, Ctx, Delete, Diff, Found, Kind, ObserveCtx, Readiness, Replace, Scope, Spec, Tags, Update,
};
use crate::cloud::{retry_on_codes, wait_until, AwsResultExt, Error, Waited};
use crate::spec::Address;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AcmCertificateSpec {
    /// The certificate's domain name (the first configured name).
    pub domain_name: String,
    /// The other names, sorted once normalised.
    pub alternative_names: Vec<String>,
    /// The hosted zone the validation records go into (not compared: where a record was
    /// written is not a property of the certificate).
    pub hosted_zone: String,
}

pub struct AcmCertificate;

impl Kind for AcmCertificate {
    type Spec = AcmCertificateSpec;
    const NAME: &'static str = "acm-certificate";
    const SCOPE: Scope = Scope::Regional;
    const TAGGED: bool = true;
    const PARTS: &'static [&'static str] = &["service"];
    const ACTIONS: &'static [&'static str] = &[
        "acm:ListCertificates",
        "acm:DescribeCertificate",
        "acm:ListTagsForCertificate",
        "acm:RequestCertificate",
        "acm:AddTagsToCertificate",
        "acm:DeleteCertificate",
        "route53:ListResourceRecordSets",
        "route53:ChangeResourceRecordSets",
        "route53:ListHostedZonesByName",
        "tag:GetResources",
    ];

    fn normalize(spec: &mut AcmCertificateSpec) {
        // ACM lists the domain name among the alternative names too.
        let domain = spec.domain_name.clone();
        spec.alternative_names.retain(|n| *n != domain);
        spec.alternative_names.sort();
        spec.alternative_names.dedup();
    }
    fn diff(desired: &AcmCertificateSpec, observed: &AcmCertificateSpec, d: &mut Diff) {
        diff_fields!(d, desired, observed, domain_name: Yes, alternative_names: Yes);
    }
    fn readiness(_: &AcmCertificateSpec, state: &str) -> Readiness {
        match state {
            "PENDING_VALIDATION" => Readiness::Busy("pending validation".into()),
            _ => Readiness::Ready,
        }
    }
    fn conflicts(_: &AcmCertificateSpec, _: &AcmCertificateSpec) -> bool {
        // Certificates of the same names can coexist: the new one is made before the old goes.
        false
    }
    async fn observe(ctx: &ObserveCtx<'_>) -> Result<Vec<Found>, Error> {
        let client: aws_sdk_acm::Client = ctx.clients.get(&ctx.region);
        let summaries = every_certificate(&client).await?;
        // ACM lists every certificate of the account and tags them one at a time. The region's
        // tagging index holds the environment's; a certificate it holds with other tags than the
        // deployer's, or younger than the index may be behind ([`INDEX_LAG`]) and not in it, is read
        // the ACM way. An older one the index does not hold is not the environment's: the account's
        // other certificates cost no read.
        let index =
            if summaries.is_empty() { Default::default() } else { super::tagging::tagged(ctx).await? };
        let now = std::time::SystemTime::now();
        let recent = |s: &CertificateSummary| {
            s.created_at()
                .and_then(|at| std::time::SystemTime::try_from(*at).ok())
                .is_none_or(|at| now.duration_since(at).is_ok_and(|age| age < INDEX_LAG) || at > now)
        };
        let mut found = Vec::new();
        for s in &summaries {
            let Some(arn) = s.certificate_arn() else { continue };
            let tags: Tags = match index.current(arn) {
                Some(tags) => tags.clone(),
                None if !index.holds(arn) && !recent(s) => continue,
                None => client
                    .list_tags_for_certificate()
                    .certificate_arn(arn)
                    .send()
                    .await
                    .op("ListTagsForCertificate")?
                    .tags()
                    .iter()
                    .map(|t| (t.key().to_string(), t.value().unwrap_or_default().to_string()))
                    .collect(),
            };
            if !super::is_ours(&tags, ctx.app, ctx.env) {
                continue;
            }
            let Some(address) = super::tagged_address(&tags, "acm-certificate") else { continue };
            let described = describe_spec(&client, arn).await?;
            found.push(Found {
                address,
                id: arn.to_string(),
                spec: Spec::AcmCertificate(AcmCertificateSpec {
                    hosted_zone: described.hosted_zone_hint(),
                    domain_name: described.domain_name,
                    alternative_names: described.alternative_names,
                }),
                tags,
                state: s.status().map(|st| st.as_str().to_string()).unwrap_or_default(),
                attrs: Default::default(),
            });
        }
        Ok(found)
    }
    async fn create(ctx: &Ctx<'_>, new: Create<'_, AcmCertificateSpec>) -> Result<String, Error> {
        let Create { address, spec, tags } = new;
        let client = client(ctx, address.region());
        let out = client
            .request_certificate()
            .domain_name(&spec.domain_name)
            .set_subject_alternative_names((!spec.alternative_names.is_empty()).then(|| {
                std::iter::once(spec.domain_name.clone())
                    .chain(spec.alternative_names.iter().cloned())
                    .collect()
            }))
            .validation_method(ValidationMethod::Dns)
            .idempotency_token(idempotency_token(address))
            .set_tags(Some(sdk_tags(tags)))
            .send()
            .await
            .op("RequestCertificate")?;
        let arn = out
            .certificate_arn()
            .ok_or_else(|| Error::InvalidState("RequestCertificate returned no ARN".into()))?;
        validate(ctx, address, arn, &spec.hosted_zone).await?;
        Ok(arn.to_string())
    }
    async fn update(_: &Ctx<'_>, _: Update<'_, AcmCertificateSpec>) -> Result<(), Error> {
        // Every compared field replaces the certificate: nothing changes in place.
        Ok(())
    }
    async fn delete(ctx: &Ctx<'_>, gone: Delete<'_, AcmCertificateSpec>) -> Result<(), Error> {
        let Delete { address, id, observed: spec } = gone;
        let client = client(ctx, address.region());
        // The records this certificate was validated with, by name, read before it goes.
        let records: Vec<(String, String, String)> =
            match client.describe_certificate().certificate_arn(id).send().await {
                Ok(out) => out
                    .certificate()
                    .map(|c| c.domain_validation_options().to_vec())
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|o| {
                        o.resource_record().map(|r| {
                            (o.domain_name().to_string(), r.name().to_string(), r.value().to_string())
                        })
                    })
                    .collect(),
                Err(_) => vec![],
            };
        // A listener lets go of it a moment after it is re-pointed or deleted.
        retry_on_codes(
            &format!("{id} to be deletable"),
            &["ResourceInUseException"],
            ctx.timeout_for(AcmCertificate::NAME),
            || async {
                client
                    .delete_certificate()
                    .certificate_arn(id)
                    .send()
                    .await
                    .op_or_gone("DeleteCertificate", |e| e.is_resource_not_found_exception())
                    .map(|_| ())
            },
        )
        .await
        .or_else(|e| if e.is_not_found() { Ok(()) } else { Err(e) })?;
        remove_unused_validation_records(ctx, &records, &spec.hosted_zone).await
    }
    async fn wait_ready(ctx: &Ctx<'_>, address: &Address, id: &str) -> Result<(), Error> {
        let client = client(ctx, address.region());
        let spec = describe_spec(&client, id).await?;
        validate(ctx, address, id, &spec.hosted_zone_hint()).await
    }
    async fn repair_tags(ctx: &Ctx<'_>, address: &Address, id: &str, missing: &Tags) -> Result<(), Error> {
        client(ctx, address.region())
            .add_tags_to_certificate()
            .certificate_arn(id)
            .set_tags(Some(sdk_tags(missing)))
            .send()
            .await
            .op("AddTagsToCertificate")?;
        Ok(())
    }
}

fn client(ctx: &Ctx<'_>, region: &str) -> aws_sdk_acm::Client {
    ctx.clients.get(region)
}

fn sdk_tags(tags: &Tags) -> Vec<Tag> {
    tags.iter().filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok()).collect()
}

/// The certificate's names as ACM describes them.
struct Described {
    domain_name: String,
    alternative_names: Vec<String>,
}

impl Described {
    /// The zone is not recorded on the certificate; for a certificate found busy, the zone is
    /// the one holding its domain name, looked up by the longest matching zone name.
    fn hosted_zone_hint(&self) -> String {
        self.domain_name.trim_start_matches("*.").to_string()
    }
}

async fn describe_spec(client: &aws_sdk_acm::Client, arn: &str) -> Result<Described, Error> {
    let out = client.describe_certificate().certificate_arn(arn).send().await.op("DescribeCertificate")?;
    let c = out
        .certificate()
        .ok_or_else(|| Error::InvalidState(format!("ACM described no certificate {arn}")))?;
    Ok(Described {
        domain_name: c.domain_name().unwrap_or_default().to_string(),
        alternative_names: c.subject_alternative_names().to_vec(),
    })
}

/// Every certificate of the account in `client`'s region, whatever its status (the default
/// listing leaves some out).
async fn every_certificate(client: &aws_sdk_acm::Client) -> Result<Vec<CertificateSummary>, Error> {
    client
        .list_certificates()
        .certificate_statuses(CertificateStatus::PendingValidation)
        .certificate_statuses(CertificateStatus::Issued)
        .certificate_statuses(CertificateStatus::Inactive)
        .certificate_statuses(CertificateStatus::Expired)
        .certificate_statuses(CertificateStatus::Failed)
        .certificate_statuses(CertificateStatus::ValidationTimedOut)
        // The API's largest page (its reference: `MaxItems`, 1 to 1,000), so an account's other
        // certificates cost a page more only per thousand.
        .max_items(1000)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .op("ListCertificates")
}

/// How long a new certificate may be missing from the tagging index: as long as ACM's
/// idempotency token lasts ([`idempotency_token`]), an hour. Within it, a certificate is read
/// the ACM way if the index does not hold it.
const INDEX_LAG: std::time::Duration = std::time::Duration::from_secs(3600);

/// ACM takes up to 32 alphanumeric characters as an idempotency token: a request repeated with
/// the same token within an hour returns the first certificate, so the SDK's retries of a
/// request whose answer was lost make no second one. The token is made once per create, from
/// the address and the time: a token fixed per address would, after a `destroy` and an `up`
/// within the hour, name the deleted certificate (moto then fails with a 500). A second
/// certificate left by a re-run after a crash is an unreferenced duplicate, which the
/// verification round deletes.
fn idempotency_token(address: &Address) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    address.as_str().hash(&mut h);
    std::time::SystemTime::now().hash(&mut h);
    format!("deployer{:016x}", h.finish())
}

/// Writes the validation records ACM asks for into the zone, then waits for `ISSUED`.
async fn validate(ctx: &Ctx<'_>, address: &Address, arn: &str, zone_name: &str) -> Result<(), Error> {
    let client = client(ctx, address.region());
    let timeout = ctx.timeout_for(AcmCertificate::NAME);
    // ACM fills in the records a few seconds after the request.
    let records = wait_until(&format!("{address}: the DNS validation records of {arn}"), timeout, || async {
        let out =
            client.describe_certificate().certificate_arn(arn).send().await.op("DescribeCertificate")?;
        let options: Vec<DomainValidation> =
            out.certificate().map(|c| c.domain_validation_options().to_vec()).unwrap_or_default();
        let records: Vec<(String, String)> = options
            .iter()
            .filter_map(|o| o.resource_record())
            .map(|r| (r.name().to_string(), r.value().to_string()))
            .collect();
        Ok(if !options.is_empty() && records.len() == options.len() {
            Waited::Done(records)
        } else {
            Waited::NotYet("validation records not issued yet".into())
        })
    })
    .await?;
    let route53 = super::route53::client(ctx.clients);
    let zone = hosted_zone_id(&route53, zone_name).await?;
    let mut changes = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (name, value) in records.into_iter().filter(|r| seen.insert(r.clone())) {
        let set = ResourceRecordSet::builder()
            .name(name)
            .r#type(RrType::Cname)
            .ttl(300)
            .resource_records(
                ResourceRecord::builder()
                    .value(value)
                    .build()
                    .map_err(|e| Error::InvalidRequest(e.to_string()))?,
            )
            .build()
            .map_err(|e| Error::InvalidRequest(e.to_string()))?;
        changes.push(
            Change::builder()
                .action(ChangeAction::Upsert)
                .resource_record_set(set)
                .build()
                .map_err(|e| Error::InvalidRequest(e.to_string()))?,
        );
    }
    route53
        .change_resource_record_sets()
        .hosted_zone_id(&zone)
        .change_batch(
            ChangeBatch::builder()
                .set_changes(Some(changes))
                .build()
                .map_err(|e| Error::InvalidRequest(e.to_string()))?,
        )
        .send()
        .await
        .op("ChangeResourceRecordSets")?;
    tracing::info!("{address}: validation records written to {zone_name}; waiting for ACM to issue {arn}");
    wait_until(&format!("{address}: certificate {arn} to be issued"), timeout, || async {
        let out = client.describe_certificate().certificate_arn(arn).send().await.op("DescribeCertificate")?;
        let status = out.certificate().and_then(|c| c.status()).cloned();
        match status {
            Some(CertificateStatus::Issued) => Ok(Waited::Done(())),
            Some(CertificateStatus::PendingValidation) | None => Ok(Waited::NotYet("pending validation".into())),
            Some(other) => Err(Error::InvalidState(format!(
                "{address}: ACM will not issue {arn}: it is {} (check that the validation records are in {zone_name} and that the zone is the public one the names resolve in)",
                other.as_str()
            ))),
        }
    })
    .await
}

/// Deletes the validation records (domain, record name, value) that no certificate left in the
/// environment's regions covers, each as Route 53 holds it.
async fn remove_unused_validation_records(
    ctx: &Ctx<'_>,
    records: &[(String, String, String)],
    zone_name: &str,
) -> Result<(), Error> {
    if records.is_empty() {
        return Ok(());
    }
    let mut covered = std::collections::BTreeSet::new();
    for region in ctx.clients.regions() {
        // (A certificate still pending validation needs its record too.)
        for s in every_certificate(&client(ctx, region)).await? {
            covered.extend(s.domain_name().map(str::to_string));
            covered.extend(s.subject_alternative_name_summaries().iter().cloned());
        }
    }
    let route53 = super::route53::client(ctx.clients);
    let zone =
        match hosted_zone_id(&route53, if zone_name.is_empty() { &records[0].0 } else { zone_name }).await {
            Ok(zone) => zone,
            Err(_) => return Ok(()), // no zone: nothing was written
        };
    let mut done = std::collections::BTreeSet::new();
    for (domain, name, value) in records {
        if covered.contains(domain) || !done.insert(name.clone()) {
            continue;
        }
        let out = route53
            .list_resource_record_sets()
            .hosted_zone_id(&zone)
            .start_record_name(name)
            .start_record_type(RrType::Cname)
            .max_items(1)
            .send()
            .await
            .op("ListResourceRecordSets")?;
        let Some(held) = out.resource_record_sets().first() else { continue };
        let same_name = held.name().trim_end_matches('.') == name.trim_end_matches('.');
        let ours = held.resource_records().iter().any(|r| r.value() == value);
        if !same_name || held.r#type() != &RrType::Cname || !ours {
            continue;
        }
        let change = Change::builder()
            .action(ChangeAction::Delete)
            .resource_record_set(held.clone())
            .build()
            .map_err(|e| Error::InvalidRequest(e.to_string()))?;
        route53
            .change_resource_record_sets()
            .hosted_zone_id(&zone)
            .change_batch(
                ChangeBatch::builder()
                    .changes(change)
                    .build()
                    .map_err(|e| Error::InvalidRequest(e.to_string()))?,
            )
            .send()
            .await
            // Deleted meanwhile (the other region's deletion, or a retry): what was wanted.
            .op_unless("ChangeResourceRecordSets", |e| e.is_invalid_change_batch())?;
    }
    Ok(())
}

/// The ID of the public hosted zone named `name` (or the zone holding it).
async fn hosted_zone_id(route53: &aws_sdk_route53::Client, name: &str) -> Result<String, Error> {
    // Try the name, then its parents: a certificate found busy knows only its domain name.
    let mut candidate = name.trim_end_matches('.').to_string();
    loop {
        if let Some(zone) = super::route53::public_zone(route53, &candidate).await? {
            return Ok(zone);
        }
        match candidate.split_once('.') {
            Some((_, parent)) if parent.contains('.') => candidate = parent.to_string(),
            _ => {
                return Err(Error::InvalidState(format!(
                    "no public Route 53 hosted zone named {name} (tls.hosted_zone): the deployer writes the certificate's validation records there and never creates zones; create it, or name an existing one"
                )))
            }
        }
    }
}
