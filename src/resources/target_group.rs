//! Target group: where a load balancer sends requests, by task IP. The service tier has two per
//! region, blue and green (`{app}-{env}-blue|green`, at `<region>/service/target-group/<colour>`):
//! releases move traffic from one to the other. Type `ip`, HTTP to the container port, the
//! health check and deregistration delay from `[service]`.
//!
//! Discovery: one paginated `DescribeTargetGroups` (kept: names starting `{app}-{env}-`), one
//! `DescribeTags` per 20 of those, one `DescribeTargetGroupAttributes` each (two per region).
//! ID: its ARN; attributes `name` (a deployment group names its target groups) and `dimension`
//! (`targetgroup/<name>/<id>`, for alarms).

use aws_sdk_elasticloadbalancingv2::types::{
    Matcher, ProtocolEnum, TargetGroup as SdkTargetGroup, TargetGroupAttribute, TargetTypeEnum,
};
use serde::Serialize;

use super::elbv2::{address_if_ours, client_of, observed_tags, sdk_tags, tags_of};
use super::{
    attr, Create, Ctx, Delete, Diff, Found, Kind, ObserveCtx, Replace, Role, Scope, Spec, Tags, Update,
    TAG_ADDRESS,
};
use crate::cloud::{retry_on_codes, AwsResultExt, Error};
use crate::spec::{Address, Ref};

const DEREGISTRATION_DELAY: &str = "deregistration_delay.timeout_seconds";

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TargetGroupSpec {
    pub name: String,
    pub vpc: Ref,
    pub port: i32,
    pub target_type: String,
    pub health_check_path: String,
    pub health_check_interval_secs: i32,
    pub health_check_timeout_secs: i32,
    pub healthy_threshold: i32,
    pub unhealthy_threshold: i32,
    pub matcher: String,
    pub deregistration_delay_secs: i32,
}

pub struct TargetGroup;

impl Kind for TargetGroup {
    type Spec = TargetGroupSpec;
    const NAME: &'static str = "target-group";
    const SCOPE: Scope = Scope::Regional;
    const TAGGED: bool = true;
    const PARTS: &'static [&'static str] = &["service"];
    const ACTIONS: &'static [&'static str] = &[
        "elasticloadbalancing:AddTags",
        "elasticloadbalancing:DescribeTargetGroups",
        "elasticloadbalancing:DescribeTargetGroupAttributes",
        "elasticloadbalancing:CreateTargetGroup",
        "elasticloadbalancing:ModifyTargetGroup",
        "elasticloadbalancing:ModifyTargetGroupAttributes",
        "elasticloadbalancing:DeleteTargetGroup",
        "elasticloadbalancing:DescribeTags",
        "tag:GetResources",
    ];

    fn refs(spec: &mut TargetGroupSpec) -> Vec<(Role, &mut Ref)> {
        vec![(Role::Parent, &mut spec.vpc)]
    }
    fn diff(desired: &TargetGroupSpec, observed: &TargetGroupSpec, d: &mut Diff) {
        diff_fields!(d, desired, observed,
            name: Yes, vpc: Yes, port: Yes, target_type: Yes, health_check_path: No,
            health_check_interval_secs: No, health_check_timeout_secs: No, healthy_threshold: No,
            unhealthy_threshold: No, matcher: No, deregistration_delay_secs: No,
        );
    }
    fn conflicts(a: &TargetGroupSpec, b: &TargetGroupSpec) -> bool {
        a.name == b.name
    }
    async fn observe(ctx: &ObserveCtx<'_>) -> Result<Vec<Found>, Error> {
        let client = client_of(ctx.clients, &ctx.region);
        let all: Vec<SdkTargetGroup> = client
            .describe_target_groups()
            // The API's largest page (its reference: `PageSize`, 1 to 400): the region's other
            // target groups cost a page more only per 400.
            .page_size(400)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .op("DescribeTargetGroups")?;
        let prefix = format!("{}-{}-", ctx.app, ctx.env);
        let candidates: Vec<&SdkTargetGroup> =
            all.iter().filter(|t| t.target_group_name().is_some_and(|n| n.starts_with(&prefix))).collect();
        let arns: Vec<String> =
            candidates.iter().filter_map(|t| t.target_group_arn().map(str::to_string)).collect();
        let tags = observed_tags(ctx, &client, &arns).await?;
        let mut found = Vec::new();
        for t in candidates {
            let Some(arn) = t.target_group_arn() else { continue };
            let Some(tags) = tags.get(arn) else { continue };
            let Some(address) = address_if_ours(ctx, tags) else { continue };
            let delay = deregistration_delay(&client, arn).await?;
            found.push(Found {
                address,
                id: arn.to_string(),
                spec: Spec::TargetGroup(spec_of(t, delay)),
                tags: tags.clone(),
                state: String::new(),
                attrs: [
                    (attr::NAME, t.target_group_name().unwrap_or_default().to_string()),
                    (attr::DIMENSION, dimension_of(arn)),
                ]
                .into(),
            });
        }
        Ok(found)
    }
    /// `CreateTargetGroup` with the same name and settings returns the existing group (ELB's own
    /// idempotency), so a retried create makes no second one; a group of that name that is not
    /// ours is an error.
    async fn create(ctx: &Ctx<'_>, new: Create<'_, TargetGroupSpec>) -> Result<String, Error> {
        let Create { address, spec, tags } = new;
        let region = address.region();
        let client = client_of(ctx.clients, region);
        let out = client
            .create_target_group()
            .name(&spec.name)
            .protocol(ProtocolEnum::Http)
            .port(spec.port)
            .vpc_id(ctx.id(&spec.vpc)?)
            .target_type(TargetTypeEnum::from(spec.target_type.as_str()))
            .health_check_protocol(ProtocolEnum::Http)
            .health_check_path(&spec.health_check_path)
            .health_check_interval_seconds(spec.health_check_interval_secs)
            .health_check_timeout_seconds(spec.health_check_timeout_secs)
            .healthy_threshold_count(spec.healthy_threshold)
            .unhealthy_threshold_count(spec.unhealthy_threshold)
            .matcher(Matcher::builder().http_code(&spec.matcher).build())
            .set_tags(Some(sdk_tags(tags)))
            .send()
            .await
            .op("CreateTargetGroup")?;
        let arn = out
            .target_groups()
            .first()
            .and_then(|t| t.target_group_arn())
            .ok_or_else(|| Error::InvalidState("CreateTargetGroup returned no target group".into()))?
            .to_string();
        let theirs = tags_of(&client, std::slice::from_ref(&arn)).await?;
        if theirs.get(&arn).and_then(|t| t.get(TAG_ADDRESS)).map(String::as_str) != Some(address.as_str()) {
            return Err(Error::InvalidState(format!(
                "a target group named {} already exists in {region} and is not this environment's {address}",
                spec.name
            )));
        }
        let mut d = Diff::default();
        d.field(
            "deregistration_delay_secs",
            &spec.deregistration_delay_secs,
            &deregistration_delay(&client, &arn).await?,
            Replace::No,
        );
        update(ctx, region, &arn, spec, &d).await?;
        ctx.ids.set_attr(address, attr::NAME, spec.name.clone());
        ctx.ids.set_attr(address, attr::DIMENSION, dimension_of(&arn));
        Ok(arn)
    }
    async fn update(ctx: &Ctx<'_>, change: Update<'_, TargetGroupSpec>) -> Result<(), Error> {
        let Update { address, id, desired, diff, .. } = change;
        update(ctx, address.region(), id, desired, diff).await
    }
    async fn delete(ctx: &Ctx<'_>, gone: Delete<'_, TargetGroupSpec>) -> Result<(), Error> {
        let Delete { address, id, .. } = gone;
        let client = client_of(ctx.clients, address.region());
        // A target group is in use until the listeners pointing at it are gone.
        retry_on_codes(
            &format!("{id} to be deletable"),
            &["ResourceInUse"],
            ctx.timeout_for(TargetGroup::NAME),
            || async {
                client
                    .delete_target_group()
                    .target_group_arn(id)
                    .send()
                    .await
                    .op_or_gone("DeleteTargetGroup", |e| e.code() == Some("TargetGroupNotFound"))
                    .map(|_| ())
            },
        )
        .await
    }
    async fn repair_tags(ctx: &Ctx<'_>, address: &Address, id: &str, missing: &Tags) -> Result<(), Error> {
        super::elbv2::add_tags(ctx.clients, address.region(), id, missing).await
    }
}

use aws_smithy_types::error::metadata::ProvideErrorMetadata;

fn spec_of(t: &SdkTargetGroup, delay: i32) -> TargetGroupSpec {
    TargetGroupSpec {
        name: t.target_group_name().unwrap_or_default().to_string(),
        vpc: Ref::Id(t.vpc_id().unwrap_or_default().to_string()),
        port: t.port().unwrap_or_default(),
        target_type: t.target_type().map(|x| x.as_str().to_string()).unwrap_or_default(),
        health_check_path: t.health_check_path().unwrap_or_default().to_string(),
        health_check_interval_secs: t.health_check_interval_seconds().unwrap_or_default(),
        health_check_timeout_secs: t.health_check_timeout_seconds().unwrap_or_default(),
        healthy_threshold: t.healthy_threshold_count().unwrap_or_default(),
        unhealthy_threshold: t.unhealthy_threshold_count().unwrap_or_default(),
        matcher: t.matcher().and_then(|m| m.http_code()).unwrap_or_default().to_string(),
        deregistration_delay_secs: delay,
    }
}

async fn deregistration_delay(
    client: &aws_sdk_elasticloadbalancingv2::Client,
    arn: &str,
) -> Result<i32, Error> {
    let out = client
        .describe_target_group_attributes()
        .target_group_arn(arn)
        .send()
        .await
        .op("DescribeTargetGroupAttributes")?;
    Ok(out
        .attributes()
        .iter()
        .find(|a| a.key() == Some(DEREGISTRATION_DELAY))
        .and_then(|a| a.value())
        .and_then(|v| v.parse().ok())
        .unwrap_or(300))
}

/// `targetgroup/<name>/<id>`, the value of CloudWatch's `TargetGroup` dimension.
pub fn dimension_of(arn: &str) -> String {
    arn.rsplit(':').next().unwrap_or_default().to_string()
}

async fn update(
    ctx: &Ctx<'_>,
    region: &str,
    arn: &str,
    desired: &TargetGroupSpec,
    diff: &Diff,
) -> Result<(), Error> {
    let client = client_of(ctx.clients, region);
    let health = [
        "health_check_path",
        "health_check_interval_secs",
        "health_check_timeout_secs",
        "healthy_threshold",
        "unhealthy_threshold",
        "matcher",
    ];
    if health.iter().any(|f| diff.has(f)) {
        client
            .modify_target_group()
            .target_group_arn(arn)
            .health_check_path(&desired.health_check_path)
            .health_check_interval_seconds(desired.health_check_interval_secs)
            .health_check_timeout_seconds(desired.health_check_timeout_secs)
            .healthy_threshold_count(desired.healthy_threshold)
            .unhealthy_threshold_count(desired.unhealthy_threshold)
            .matcher(Matcher::builder().http_code(&desired.matcher).build())
            .send()
            .await
            .op("ModifyTargetGroup")?;
    }
    if diff.has("deregistration_delay_secs") {
        client
            .modify_target_group_attributes()
            .target_group_arn(arn)
            .attributes(
                TargetGroupAttribute::builder()
                    .key(DEREGISTRATION_DELAY)
                    .value(desired.deregistration_delay_secs.to_string())
                    .build(),
            )
            .send()
            .await
            .op("ModifyTargetGroupAttributes")?;
    }
    Ok(())
}
