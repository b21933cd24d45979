//! Application load balancer: `{app}-{env}` in every region, internet-facing in the public
//! subnets, behind its own security group, with deletion protection (from config), invalid
//! header fields dropped and an idle timeout, at `<region>/service/load-balancer/main`.
//!
//! Discovery: one paginated `DescribeLoadBalancers` (kept: the environment's name), one
//! `DescribeTags`, one `DescribeLoadBalancerAttributes`. ID: its ARN; attributes `dimension`
//! (`app/<name>/<id>`, CloudWatch's `LoadBalancer` dimension), `dns_name` and `zone_id` (for
//! DNS alias records).
//!
//! Delete: refused while deletion protection is on, with the way out (turn it off in the
//! configuration and run `up` first); then `DeleteLoadBalancer`, waiting until it is gone, so
//! that its security groups can be deleted after it (it holds them).

use aws_sdk_elasticloadbalancingv2::types::{
    IpAddressType, LoadBalancer as SdkLoadBalancer, LoadBalancerAttribute, LoadBalancerSchemeEnum,
    LoadBalancerTypeEnum,
};
use serde::Serialize;

use super::elbv2::{address_if_ours, arn_suffix, client_of, observed_tags, sdk_tags, tags_of};
use super::Update;
use super::{
    attr, Create, Ctx, Delete, Diff, Found, Kind, ObserveCtx, Readiness, Replace, Role, Scope, Spec, Tags,
    TAG_ADDRESS,
};
use crate::cloud::{wait_until, AwsResultExt, Error, Waited};
use crate::spec::{Address, Ref};

const DELETION_PROTECTION: &str = "deletion_protection.enabled";
const DROP_INVALID_HEADERS: &str = "routing.http.drop_invalid_header_fields.enabled";
const IDLE_TIMEOUT: &str = "idle_timeout.timeout_seconds";

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LoadBalancerSpec {
    pub name: String,
    /// `internet-facing`.
    pub scheme: String,
    /// Sorted once normalised.
    pub subnets: Vec<Ref>,
    pub security_groups: Vec<Ref>,
    pub deletion_protection: bool,
    pub drop_invalid_header_fields: bool,
    pub idle_timeout_secs: i32,
}

pub fn diff(desired: &LoadBalancerSpec, observed: &LoadBalancerSpec, d: &mut Diff) {
    diff_fields!(d, desired, observed,
        name: Yes, scheme: Yes, subnets: No, security_groups: No, deletion_protection: No,
        drop_invalid_header_fields: No, idle_timeout_secs: No,
    );
}

pub struct LoadBalancer;

impl Kind for LoadBalancer {
    type Spec = LoadBalancerSpec;
    const NAME: &'static str = "load-balancer";
    const SCOPE: Scope = Scope::Regional;
    const TAGGED: bool = true;
    const PARTS: &'static [&'static str] = &["service"];
    const ACTIONS: &'static [&'static str] = &[
        "elasticloadbalancing:DescribeLoadBalancers",
        "elasticloadbalancing:DescribeLoadBalancerAttributes",
        "elasticloadbalancing:CreateLoadBalancer",
        "elasticloadbalancing:ModifyLoadBalancerAttributes",
        "elasticloadbalancing:SetSecurityGroups",
        "elasticloadbalancing:SetSubnets",
        "elasticloadbalancing:DeleteLoadBalancer",
        "elasticloadbalancing:AddTags",
        "elasticloadbalancing:DescribeTags",
        "tag:GetResources",
    ];

    fn refs(spec: &mut LoadBalancerSpec) -> Vec<(Role, &mut Ref)> {
        // Its network interfaces use the groups: a group is deleted after it. The subnets are
        // only pointers for ordering: an application load balancer needs two zones at all
        // times, so moving the first AZ (its subnet replaced at the same CIDR) cannot re-point
        // it first. Such a move fails at the old subnet's delete (DependencyViolation, retried
        // until the wait bound) and needs the service turned off first (docs/configuration.md).
        let mut refs: Vec<(Role, &mut Ref)> = spec.subnets.iter_mut().map(|r| (Role::Points, r)).collect();
        refs.extend(spec.security_groups.iter_mut().map(|r| (Role::Holds, r)));
        refs
    }
    fn normalize(spec: &mut LoadBalancerSpec) {
        spec.subnets.sort();
        spec.security_groups.sort();
    }
    fn diff(desired: &LoadBalancerSpec, observed: &LoadBalancerSpec, d: &mut Diff) {
        diff(desired, observed, d)
    }
    fn readiness(_: &LoadBalancerSpec, state: &str) -> Readiness {
        match state {
            "provisioning" => Readiness::Busy(state.into()),
            _ => Readiness::Ready,
        }
    }
    fn conflicts(a: &LoadBalancerSpec, b: &LoadBalancerSpec) -> bool {
        a.name == b.name
    }
    async fn observe(ctx: &ObserveCtx<'_>) -> Result<Vec<Found>, Error> {
        let client = client_of(ctx.clients, &ctx.region);
        let all = super::elbv2::environment_load_balancers(ctx).await?;
        let candidates: Vec<&SdkLoadBalancer> = all.iter().collect();
        let arns: Vec<String> =
            candidates.iter().filter_map(|lb| lb.load_balancer_arn().map(str::to_string)).collect();
        let tags = observed_tags(ctx, &client, &arns).await?;
        let mut found = Vec::new();
        for lb in candidates {
            let Some(arn) = lb.load_balancer_arn() else { continue };
            let Some(tags) = tags.get(arn) else { continue };
            let Some(address) = address_if_ours(ctx, tags) else { continue };
            let attributes = attributes(&client, arn).await?;
            found.push(Found {
                address,
                id: arn.to_string(),
                spec: Spec::LoadBalancer(spec_of(lb, &attributes)),
                tags: tags.clone(),
                state: lb.state().and_then(|s| s.code()).map(|c| c.as_str().to_string()).unwrap_or_default(),
                attrs: attrs_of(lb),
            });
        }
        Ok(found)
    }
    /// `CreateLoadBalancer` with the same name and settings returns the existing load balancer
    /// (ELB's own idempotency); one of that name that is not ours is an error.
    async fn create(ctx: &Ctx<'_>, new: Create<'_, LoadBalancerSpec>) -> Result<String, Error> {
        let Create { address, spec, tags } = new;
        let region = address.region();
        let client = client_of(ctx.clients, region);
        let subnets = spec.subnets.iter().map(|s| ctx.id(s)).collect::<Result<Vec<_>, _>>()?;
        let groups = spec.security_groups.iter().map(|s| ctx.id(s)).collect::<Result<Vec<_>, _>>()?;
        let out = client
            .create_load_balancer()
            .name(&spec.name)
            .r#type(LoadBalancerTypeEnum::Application)
            .scheme(LoadBalancerSchemeEnum::from(spec.scheme.as_str()))
            .ip_address_type(IpAddressType::Ipv4)
            .set_subnets(Some(subnets))
            .set_security_groups(Some(groups))
            .set_tags(Some(sdk_tags(tags)))
            .send()
            .await
            .op("CreateLoadBalancer")?;
        let lb = out
            .load_balancers()
            .first()
            .ok_or_else(|| Error::InvalidState("CreateLoadBalancer returned no load balancer".into()))?;
        let arn = lb.load_balancer_arn().unwrap_or_default().to_string();
        let theirs = tags_of(&client, std::slice::from_ref(&arn)).await?;
        if theirs.get(&arn).and_then(|t| t.get(TAG_ADDRESS)).map(String::as_str) != Some(address.as_str()) {
            return Err(Error::InvalidState(format!(
                "a load balancer named {} already exists in {region} and is not this environment's {address}",
                spec.name
            )));
        }
        for (attr, value) in attrs_of(lb) {
            ctx.ids.set_attr(address, attr, value);
        }
        let observed = spec_of(lb, &attributes(&client, &arn).await?);
        let mut d = Diff::default();
        diff(
            spec,
            &LoadBalancerSpec {
                subnets: spec.subnets.clone(),
                security_groups: spec.security_groups.clone(),
                ..observed
            },
            &mut d,
        );
        update(ctx, region, &arn, spec, &d).await?;
        wait_active(ctx, address, &arn).await?;
        Ok(arn)
    }
    async fn update(ctx: &Ctx<'_>, change: Update<'_, LoadBalancerSpec>) -> Result<(), Error> {
        let Update { address, id, desired, diff, .. } = change;
        update(ctx, address.region(), id, desired, diff).await
    }
    async fn delete(ctx: &Ctx<'_>, gone: Delete<'_, LoadBalancerSpec>) -> Result<(), Error> {
        let Delete { address, id: arn, observed } = gone;
        if observed.deletion_protection {
            return Err(Error::InvalidState(format!(
                "{address}: the load balancer has deletion protection on; set [service] deletion_protection = false, run `deployer up`, then try again"
            )));
        }
        let client = client_of(ctx.clients, address.region());
        client
            .delete_load_balancer()
            .load_balancer_arn(arn)
            .send()
            .await
            .op_or_gone("DeleteLoadBalancer", |e| e.is_load_balancer_not_found_exception())?;
        wait_until(&format!("{address} to be deleted"), ctx.timeout_for(LoadBalancer::NAME), || async {
            match client.describe_load_balancers().load_balancer_arns(arn).send().await {
                Ok(out) if out.load_balancers().is_empty() => Ok(Waited::Done(())),
                Ok(_) => Ok(Waited::NotYet("deleting".into())),
                Err(e) if e.as_service_error().is_some_and(|e| e.is_load_balancer_not_found_exception()) => {
                    Ok(Waited::Done(()))
                }
                Err(e) => Err(e).op("DescribeLoadBalancers"),
            }
        })
        .await
    }
    async fn wait_ready(ctx: &Ctx<'_>, address: &Address, id: &str) -> Result<(), Error> {
        wait_active(ctx, address, id).await
    }
    async fn repair_tags(ctx: &Ctx<'_>, address: &Address, id: &str, missing: &Tags) -> Result<(), Error> {
        super::elbv2::add_tags(ctx.clients, address.region(), id, missing).await
    }
}

fn attrs_of(lb: &SdkLoadBalancer) -> super::Attrs {
    let arn = lb.load_balancer_arn().unwrap_or_default();
    [
        (attr::DIMENSION, arn_suffix(arn, ":loadbalancer/")),
        (attr::DNS_NAME, lb.dns_name().unwrap_or_default().to_string()),
        (attr::ZONE_ID, lb.canonical_hosted_zone_id().unwrap_or_default().to_string()),
    ]
    .into()
}

async fn attributes(
    client: &aws_sdk_elasticloadbalancingv2::Client,
    arn: &str,
) -> Result<std::collections::BTreeMap<String, String>, Error> {
    let out = client
        .describe_load_balancer_attributes()
        .load_balancer_arn(arn)
        .send()
        .await
        .op("DescribeLoadBalancerAttributes")?;
    Ok(out.attributes().iter().filter_map(|a| Some((a.key()?.to_string(), a.value()?.to_string()))).collect())
}

fn spec_of(
    lb: &SdkLoadBalancer,
    attributes: &std::collections::BTreeMap<String, String>,
) -> LoadBalancerSpec {
    let flag = |key: &str| attributes.get(key).is_some_and(|v| v == "true");
    LoadBalancerSpec {
        name: lb.load_balancer_name().unwrap_or_default().to_string(),
        scheme: lb.scheme().map(|s| s.as_str().to_string()).unwrap_or_default(),
        subnets: lb
            .availability_zones()
            .iter()
            .filter_map(|z| z.subnet_id())
            .map(|s| Ref::Id(s.to_string()))
            .collect(),
        security_groups: lb.security_groups().iter().map(|g| Ref::Id(g.clone())).collect(),
        deletion_protection: flag(DELETION_PROTECTION),
        drop_invalid_header_fields: flag(DROP_INVALID_HEADERS),
        idle_timeout_secs: attributes.get(IDLE_TIMEOUT).and_then(|v| v.parse().ok()).unwrap_or(60),
    }
}

async fn wait_active(ctx: &Ctx<'_>, address: &Address, arn: &str) -> Result<(), Error> {
    let client = client_of(ctx.clients, address.region());
    wait_until(&format!("{address} to be active"), ctx.timeout_for(LoadBalancer::NAME), || async {
        let out = client
            .describe_load_balancers()
            .load_balancer_arns(arn)
            .send()
            .await
            .op("DescribeLoadBalancers")?;
        let state = out.load_balancers().first().and_then(|lb| lb.state()).and_then(|s| s.code()).cloned();
        match state.as_ref().map(|s| s.as_str()) {
            Some("active") => Ok(Waited::Done(())),
            Some("failed") => {
                Err(Error::InvalidState(format!("{address}: the load balancer failed to provision")))
            }
            other => Ok(Waited::NotYet(other.unwrap_or("unknown").to_string())),
        }
    })
    .await
}

async fn update(
    ctx: &Ctx<'_>,
    region: &str,
    arn: &str,
    desired: &LoadBalancerSpec,
    diff: &Diff,
) -> Result<(), Error> {
    let client = client_of(ctx.clients, region);
    let mut attributes = Vec::new();
    let mut set = |field: &str, key: &str, value: String| {
        if diff.has(field) {
            attributes.push(LoadBalancerAttribute::builder().key(key).value(value).build());
        }
    };
    set("deletion_protection", DELETION_PROTECTION, desired.deletion_protection.to_string());
    set("drop_invalid_header_fields", DROP_INVALID_HEADERS, desired.drop_invalid_header_fields.to_string());
    set("idle_timeout_secs", IDLE_TIMEOUT, desired.idle_timeout_secs.to_string());
    if !attributes.is_empty() {
        client
            .modify_load_balancer_attributes()
            .load_balancer_arn(arn)
            .set_attributes(Some(attributes))
            .send()
            .await
            .op("ModifyLoadBalancerAttributes")?;
    }
    if diff.has("security_groups") {
        let groups = desired.security_groups.iter().map(|s| ctx.id(s)).collect::<Result<Vec<_>, _>>()?;
        client
            .set_security_groups()
            .load_balancer_arn(arn)
            .set_security_groups(Some(groups))
            .send()
            .await
            .op("SetSecurityGroups")?;
    }
    if diff.has("subnets") {
        let subnets = desired.subnets.iter().map(|s| ctx.id(s)).collect::<Result<Vec<_>, _>>()?;
        client
            .set_subnets()
            .load_balancer_arn(arn)
            .set_subnets(Some(subnets))
            .send()
            .await
            .op("SetSubnets")?;
    }
    Ok(())
}
