//! A custom CodeDeploy deployment configuration for ECS: a canary (a share of the traffic first,
//! the rest after an interval) or a linear shift (a share more every interval), for a shape
//! CodeDeploy does not predefine, at `<region>/release/deployment-config/<shape>`, named
//! `{app}-{env}-<shape>` (`webapp-prod-canary-20pct-10min`).
//!
//! Configurations are immutable and take no tags. The name says the shape, so a new shape is a
//! new configuration at a new address: it is created, the deployment group is pointed at it,
//! and the old one is deleted (its delete waits while the group still uses it). Discovery: one
//! `ListDeploymentConfigs`, and `GetDeploymentConfig` for each name of exactly the environment's
//! pattern (`{app}-{env}-canary|linear-<n>pct-<n>min`; another environment's name that merely
//! starts the same is not matched). ID: its name.

use aws_sdk_codedeploy::types::{
    ComputePlatform, TimeBasedCanary, TimeBasedLinear, TrafficRoutingConfig, TrafficRoutingType,
};
use serde::Serialize;

use super::codedeploy::client;
use super::{Create, Ctx, Delete, Diff, Found, Kind, ObserveCtx, Replace, Scope, Spec, Tags, Update};
use crate::cloud::{retry_on_codes, AwsResultExt, Error};
use crate::spec::Address;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DeploymentConfigSpec {
    pub name: String,
    /// `canary` or `linear`.
    pub shape: String,
    pub percent: i32,
    pub minutes: i32,
}

/// `canary-20pct-10min`: the part of the name (and of the address) after `{app}-{env}-`.
pub fn shape_name(shape: &str, percent: u32, minutes: u32) -> String {
    format!("{shape}-{percent}pct-{minutes}min")
}

/// The shape of `rest` (`canary-20pct-10min`), if it is exactly of the pattern.
fn parse_shape(rest: &str) -> Option<(String, i32, i32)> {
    let mut parts = rest.split('-');
    let shape = parts.next().filter(|s| *s == "canary" || *s == "linear")?;
    let percent = parts.next()?.strip_suffix("pct")?.parse().ok()?;
    let minutes = parts.next()?.strip_suffix("min")?.parse().ok()?;
    parts.next().is_none().then(|| (shape.to_string(), percent, minutes))
}

pub struct DeploymentConfig;

impl Kind for DeploymentConfig {
    type Spec = DeploymentConfigSpec;
    const NAME: &'static str = "deployment-config";
    const SCOPE: Scope = Scope::Regional;
    const TAGGED: bool = false;
    const PARTS: &'static [&'static str] = &["service"];
    const ACTIONS: &'static [&'static str] = &[
        "codedeploy:ListDeploymentConfigs",
        "codedeploy:GetDeploymentConfig",
        "codedeploy:CreateDeploymentConfig",
        "codedeploy:DeleteDeploymentConfig",
    ];

    fn diff(desired: &DeploymentConfigSpec, observed: &DeploymentConfigSpec, d: &mut Diff) {
        // Immutable: any difference is a new configuration.
        diff_fields!(d, desired, observed, name: Yes, shape: Yes, percent: Yes, minutes: Yes);
    }
    fn conflicts(a: &DeploymentConfigSpec, b: &DeploymentConfigSpec) -> bool {
        a.name == b.name
    }
    async fn observe(ctx: &ObserveCtx<'_>) -> Result<Vec<Found>, Error> {
        let client = client(ctx.clients, &ctx.region);
        let names: Vec<String> = client
            .list_deployment_configs()
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .op("ListDeploymentConfigs")?;
        let prefix = format!("{}-{}-", ctx.app, ctx.env);
        let mut found = Vec::new();
        for name in names {
            let Some(rest) = name.strip_prefix(&prefix) else { continue };
            if parse_shape(rest).is_none() {
                continue;
            }
            let out = client
                .get_deployment_config()
                .deployment_config_name(&name)
                .send()
                .await
                .op("GetDeploymentConfig")?;
            let Some(routing) = out.deployment_config_info().and_then(|i| i.traffic_routing_config()) else {
                continue;
            };
            let (shape, percent, minutes) = match (routing.time_based_canary(), routing.time_based_linear()) {
                (Some(c), _) => ("canary", c.canary_percentage(), c.canary_interval()),
                (_, Some(l)) => ("linear", l.linear_percentage(), l.linear_interval()),
                _ => ("all-at-once", 100, 0),
            };
            found.push(Found {
                address: Address::new(
                    &ctx.region,
                    crate::spec::names::tier::RELEASE,
                    DeploymentConfig::NAME,
                    rest,
                ),
                id: name.clone(),
                spec: Spec::DeploymentConfig(DeploymentConfigSpec {
                    name,
                    shape: shape.into(),
                    percent,
                    minutes,
                }),
                tags: Tags::new(),
                state: String::new(),
                attrs: Default::default(),
            });
        }
        Ok(found)
    }
    async fn create(ctx: &Ctx<'_>, new: Create<'_, DeploymentConfigSpec>) -> Result<String, Error> {
        let Create { address, spec, .. } = new;
        let routing = if spec.shape == "canary" {
            TrafficRoutingConfig::builder()
                .r#type(TrafficRoutingType::TimeBasedCanary)
                .time_based_canary(
                    TimeBasedCanary::builder()
                        .canary_percentage(spec.percent)
                        .canary_interval(spec.minutes)
                        .build(),
                )
                .build()
        } else {
            TrafficRoutingConfig::builder()
                .r#type(TrafficRoutingType::TimeBasedLinear)
                .time_based_linear(
                    TimeBasedLinear::builder()
                        .linear_percentage(spec.percent)
                        .linear_interval(spec.minutes)
                        .build(),
                )
                .build()
        };
        // The name says the whole configuration: one that already exists (a create whose answer
        // was lost) is this one.
        client(ctx.clients, address.region())
            .create_deployment_config()
            .deployment_config_name(&spec.name)
            .compute_platform(ComputePlatform::Ecs)
            .traffic_routing_config(routing)
            .send()
            .await
            .op_unless("CreateDeploymentConfig", |e| e.is_deployment_config_already_exists_exception())?;
        Ok(spec.name.clone())
    }
    async fn update(_: &Ctx<'_>, _: Update<'_, DeploymentConfigSpec>) -> Result<(), Error> {
        // Immutable: every compared field replaces it.
        Ok(())
    }
    async fn delete(ctx: &Ctx<'_>, gone: Delete<'_, DeploymentConfigSpec>) -> Result<(), Error> {
        let Delete { address, id, .. } = gone;
        let client = client(ctx.clients, address.region());
        // The deployment group lets go of it once it is pointed at the new configuration.
        retry_on_codes(
            &format!("{id} to be unused"),
            &["DeploymentConfigInUseException"],
            ctx.timeout_for(DeploymentConfig::NAME),
            || async {
                client
                    .delete_deployment_config()
                    .deployment_config_name(id)
                    .send()
                    .await
                    .op("DeleteDeploymentConfig")
                    .map(|_| ())
            },
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_names_of_exactly_the_pattern_are_the_environment_s() {
        assert_eq!(parse_shape("canary-20pct-10min"), Some(("canary".into(), 20, 10)));
        assert_eq!(parse_shape("eu-canary-20pct-10min"), None, "another environment's (webapp-prod-eu)");
        assert_eq!(parse_shape("linear-10pct-1min-x"), None);
        assert_eq!(shape_name("linear", 10, 2), "linear-10pct-2min");
    }
}
