//! Target-tracking scaling policy on the service's desired count: average CPU
//! (`R/service/scaling-policy/cpu`) or memory (`…/memory`) kept near a target, with scale-in and
//! scale-out cooldowns, named `{app}-{env}-cpu|memory`.
//!
//! Not taggable (Application Auto Scaling policies take no tags): found by the service's
//! resource ID and the environment's names with one `DescribeScalingPolicies`. A policy deleted
//! by hand is missing, and `up` puts it back. ID: the policy's name.

use aws_sdk_applicationautoscaling::types::{
    MetricType, PolicyType, PredefinedMetricSpecification, ScalableDimension, ServiceNamespace,
    TargetTrackingScalingPolicyConfiguration,
};
use serde::Serialize;

use super::scalable_target::{client, resource_id};
use super::{Create, Ctx, Delete, Diff, Found, Kind, ObserveCtx, Replace, Role, Scope, Spec, Tags, Update};
use crate::cloud::{AwsResultExt, Error};
use crate::spec::{Address, Ref};

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ScalingPolicySpec {
    pub name: String,
    pub resource_id: String,
    /// The scalable target, which must exist first.
    pub target: Ref,
    /// `ECSServiceAverageCPUUtilization` or `ECSServiceAverageMemoryUtilization`.
    pub metric: String,
    pub target_value: f64,
    pub scale_in_cooldown_secs: i32,
    pub scale_out_cooldown_secs: i32,
}

pub struct ScalingPolicy;

/// The policy tracking `metric` (`cpu` or `memory`) in `region`: it carries no tags, so it is
/// found by this.
pub fn address(region: &str, metric: &str) -> Address {
    Address::new(region, crate::spec::names::tier::SERVICE, ScalingPolicy::NAME, metric)
}

impl Kind for ScalingPolicy {
    type Spec = ScalingPolicySpec;
    const NAME: &'static str = "scaling-policy";
    const SCOPE: Scope = Scope::Regional;
    const TAGGED: bool = false;
    const PARTS: &'static [&'static str] = &["service"];
    const ACTIONS: &'static [&'static str] = &[
        "application-autoscaling:DescribeScalingPolicies",
        "application-autoscaling:PutScalingPolicy",
        "application-autoscaling:DeleteScalingPolicy",
    ];

    fn refs(spec: &mut ScalingPolicySpec) -> Vec<(Role, &mut Ref)> {
        vec![(Role::Parent, &mut spec.target)]
    }
    fn diff(desired: &ScalingPolicySpec, observed: &ScalingPolicySpec, d: &mut Diff) {
        diff_fields!(d, desired, observed,
            name: Yes, metric: No, target_value: No, scale_in_cooldown_secs: No, scale_out_cooldown_secs: No,
        );
    }
    fn conflicts(a: &ScalingPolicySpec, b: &ScalingPolicySpec) -> bool {
        a.name == b.name
    }
    async fn observe(ctx: &ObserveCtx<'_>) -> Result<Vec<Found>, Error> {
        let id = resource_id(ctx.app, ctx.env);
        let prefix = format!("{}-{}-", ctx.app, ctx.env);
        let out = client(ctx.clients, &ctx.region)
            .describe_scaling_policies()
            .service_namespace(ServiceNamespace::Ecs)
            .resource_id(&id)
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .send()
            .await
            .op("DescribeScalingPolicies")?;
        let mut found = Vec::new();
        for p in out.scaling_policies() {
            let Some(metric_name) = p.policy_name().strip_prefix(&prefix) else { continue };
            let Some(config) = p.target_tracking_scaling_policy_configuration() else { continue };
            found.push(Found {
                address: address(&ctx.region, metric_name),
                id: p.policy_name().to_string(),
                spec: Spec::ScalingPolicy(ScalingPolicySpec {
                    name: p.policy_name().to_string(),
                    resource_id: p.resource_id().to_string(),
                    target: Ref::Addr(super::scalable_target::address(&ctx.region)),
                    metric: config
                        .predefined_metric_specification()
                        .map(|m| m.predefined_metric_type().as_str().to_string())
                        .unwrap_or_default(),
                    target_value: config.target_value(),
                    scale_in_cooldown_secs: config.scale_in_cooldown().unwrap_or(0),
                    scale_out_cooldown_secs: config.scale_out_cooldown().unwrap_or(0),
                }),
                tags: Tags::new(),
                state: String::new(),
                attrs: Default::default(),
            });
        }
        Ok(found)
    }
    async fn create(ctx: &Ctx<'_>, new: Create<'_, ScalingPolicySpec>) -> Result<String, Error> {
        let Create { address, spec, .. } = new;
        put(ctx, address.region(), spec).await?;
        Ok(spec.name.clone())
    }
    async fn update(ctx: &Ctx<'_>, change: Update<'_, ScalingPolicySpec>) -> Result<(), Error> {
        let Update { address, desired, .. } = change;
        put(ctx, address.region(), desired).await
    }
    async fn delete(ctx: &Ctx<'_>, gone: Delete<'_, ScalingPolicySpec>) -> Result<(), Error> {
        let Delete { address, id, observed } = gone;
        client(ctx.clients, address.region())
            .delete_scaling_policy()
            .policy_name(id)
            .service_namespace(ServiceNamespace::Ecs)
            .resource_id(&observed.resource_id)
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .send()
            .await
            .op_or_gone("DeleteScalingPolicy", |e| e.is_object_not_found_exception())?;
        Ok(())
    }
}

/// `PutScalingPolicy` creates or replaces the policy of that name: repeating it is harmless.
async fn put(ctx: &Ctx<'_>, region: &str, spec: &ScalingPolicySpec) -> Result<(), Error> {
    let config = TargetTrackingScalingPolicyConfiguration::builder()
        .target_value(spec.target_value)
        .predefined_metric_specification(
            PredefinedMetricSpecification::builder()
                .predefined_metric_type(MetricType::from(spec.metric.as_str()))
                .build()
                .map_err(|e| Error::InvalidRequest(e.to_string()))?,
        )
        .scale_in_cooldown(spec.scale_in_cooldown_secs)
        .scale_out_cooldown(spec.scale_out_cooldown_secs)
        .build()
        .map_err(|e| Error::InvalidRequest(e.to_string()))?;
    client(ctx.clients, region)
        .put_scaling_policy()
        .policy_name(&spec.name)
        .service_namespace(ServiceNamespace::Ecs)
        .resource_id(&spec.resource_id)
        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
        .policy_type(PolicyType::TargetTrackingScaling)
        .target_tracking_scaling_policy_configuration(config)
        .send()
        .await
        .op("PutScalingPolicy")?;
    Ok(())
}
