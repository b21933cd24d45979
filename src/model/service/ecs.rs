//! The service tier's ECS part in one region: the cluster, the log group, the task definition,
//! the service on the CodeDeploy controller and its auto-scaling.

use super::{base_name, cluster, log_group, log_group_name, TIER};
use crate::config::Config;
use crate::model::{Account, Builder};
use crate::resources::ecs_cluster::{EcsClusterSpec, StrategyItem};
use crate::resources::log_group::LogGroupSpec;
use crate::resources::Spec;

pub const FARGATE: &str = "FARGATE";
pub const FARGATE_SPOT: &str = "FARGATE_SPOT";

/// The cluster's default capacity provider strategy: the on-demand base first, then the weights
/// (a provider of weight 0 and no base is left out).
pub fn default_strategy(config: &Config) -> Vec<StrategyItem> {
    let c = &config.service.capacity;
    let mut items = vec![StrategyItem {
        provider: FARGATE.into(),
        base: i32::try_from(c.on_demand_base).unwrap_or(i32::MAX),
        weight: i32::try_from(c.on_demand_weight).unwrap_or(i32::MAX),
    }];
    if c.spot_weight > 0 {
        items.push(StrategyItem {
            provider: FARGATE_SPOT.into(),
            base: 0,
            weight: i32::try_from(c.spot_weight).unwrap_or(i32::MAX),
        });
    }
    items
}

pub(super) fn ecs(b: &mut Builder, config: &Config, _account: &Account, region: &str) {
    let s = &config.service;
    let c = cluster(region);
    b.add(
        region,
        TIER,
        c.name(),
        Spec::EcsCluster(EcsClusterSpec {
            name: base_name(config),
            container_insights: true,
            capacity_providers: vec![FARGATE.into(), FARGATE_SPOT.into()],
            default_strategy: default_strategy(config),
        }),
    );
    b.add(
        region,
        TIER,
        log_group(region).name(),
        Spec::LogGroup(LogGroupSpec {
            name: log_group_name(config),
            retention_days: i32::try_from(s.log_retention_days).unwrap_or(i32::MAX),
            kms_key: s.log_kms_key.get(region).cloned(),
        }),
    );
}
