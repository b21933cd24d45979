//! ECS cluster: `{app}-{env}` in every region, with Container Insights on and the capacity
//! providers FARGATE and FARGATE_SPOT under a default strategy from the configuration, at
//! `<region>/service/ecs-cluster/main`.
//!
//! Discovery: the cluster's name is fixed by the environment, so one `DescribeClusters` of that
//! name (with its tags and settings) finds it; an `INACTIVE` cluster is a deleted one. Its ID is
//! its ARN; its name is the attribute `name` (a deployment group names its cluster).

use aws_sdk_ecs::types::{
    CapacityProviderStrategyItem, Cluster, ClusterField, ClusterSetting, ClusterSettingName,
};
use serde::Serialize;

use super::ecs;
use super::ecs::{sdk_tags, tags_of};
use super::{
    attr, Create, Ctx, Delete, Diff, Found, Kind, ObserveCtx, Readiness, Replace, Scope, Spec, Tags, Update,
    TAG_ADDRESS,
};
use crate::cloud::{retry_on_codes, AwsResultExt, Error};
use crate::spec::Address;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct StrategyItem {
    pub provider: String,
    pub base: i32,
    pub weight: i32,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EcsClusterSpec {
    pub name: String,
    pub container_insights: bool,
    /// Sorted once normalised.
    pub capacity_providers: Vec<String>,
    /// The default strategy, sorted by provider once normalised.
    pub default_strategy: Vec<StrategyItem>,
}

pub fn diff(desired: &EcsClusterSpec, observed: &EcsClusterSpec, d: &mut Diff) {
    diff_fields!(d, desired, observed,
        name: Yes, container_insights: No, capacity_providers: No, default_strategy: No,
    );
}

pub struct EcsCluster;

impl Kind for EcsCluster {
    type Spec = EcsClusterSpec;
    const NAME: &'static str = "ecs-cluster";
    const SCOPE: Scope = Scope::Regional;
    const TAGGED: bool = true;
    const PARTS: &'static [&'static str] = &["service"];
    const ACTIONS: &'static [&'static str] = &[
        "ecs:DescribeClusters",
        "ecs:CreateCluster",
        "ecs:UpdateCluster",
        "ecs:PutClusterCapacityProviders",
        "ecs:DeleteCluster",
        "ecs:TagResource",
    ];

    fn normalize(spec: &mut EcsClusterSpec) {
        spec.capacity_providers.sort();
        spec.default_strategy.sort();
    }
    fn diff(desired: &EcsClusterSpec, observed: &EcsClusterSpec, d: &mut Diff) {
        diff(desired, observed, d)
    }
    fn readiness(_: &EcsClusterSpec, state: &str) -> Readiness {
        match state {
            "PROVISIONING" | "DEPROVISIONING" => Readiness::Busy(state.to_lowercase()),
            _ => Readiness::Ready,
        }
    }
    fn conflicts(a: &EcsClusterSpec, b: &EcsClusterSpec) -> bool {
        a.name == b.name
    }
    async fn observe(ctx: &ObserveCtx<'_>) -> Result<Vec<Found>, Error> {
        let client: aws_sdk_ecs::Client = ctx.clients.get(&ctx.region);
        let name = format!("{}-{}", ctx.app, ctx.env);
        let Some(cluster) = describe(&client, &name).await? else { return Ok(vec![]) };
        Ok(found_of(&cluster, ctx.app, ctx.env).into_iter().collect())
    }
    /// `CreateCluster` is idempotent for a cluster of the same name (ECS returns the existing one),
    /// so a retried create makes no second cluster; an existing cluster that is not ours (tags) is
    /// an error.
    async fn create(ctx: &Ctx<'_>, new: Create<'_, EcsClusterSpec>) -> Result<String, Error> {
        let Create { address, spec, tags } = new;
        let region = address.region();
        let client: aws_sdk_ecs::Client = ctx.clients.get(region);
        if let Some(existing) = describe(&client, &spec.name).await? {
            if tags_of(existing.tags()).get(TAG_ADDRESS).map(String::as_str) != Some(address.as_str()) {
                return Err(Error::InvalidState(format!(
                    "an ECS cluster named {} already exists in {region} and is not this environment's {address}",
                    spec.name
                )));
            }
        }
        let out = client
            .create_cluster()
            .cluster_name(&spec.name)
            .settings(insights(spec.container_insights))
            .set_capacity_providers(Some(spec.capacity_providers.clone()))
            .set_default_capacity_provider_strategy(Some(strategy(spec)))
            .set_tags(Some(sdk_tags(tags)))
            .send()
            .await
            .op("CreateCluster")?;
        let cluster =
            out.cluster().ok_or_else(|| Error::InvalidState("CreateCluster returned no cluster".into()))?;
        let observed = spec_of(cluster);
        let mut d = Diff::default();
        let (mut want, mut have) = (spec.clone(), observed);
        EcsCluster::normalize(&mut want);
        EcsCluster::normalize(&mut have);
        diff(&want, &have, &mut d);
        update(ctx, region, spec, &d).await?;
        ctx.ids.set_attr(address, attr::NAME, spec.name.clone());
        Ok(cluster.cluster_arn().unwrap_or_default().to_string())
    }
    async fn update(ctx: &Ctx<'_>, change: Update<'_, EcsClusterSpec>) -> Result<(), Error> {
        let Update { address, desired, diff, .. } = change;
        update(ctx, address.region(), desired, diff).await
    }
    /// The services are deleted first (the cluster is their parent) and each waits until ECS
    /// reports it `INACTIVE`; a service deleted out of band may still be draining, and a task
    /// started outside a service (a one-off migration) may still be stopping, which ECS refuses
    /// with `ClusterContainsServicesException` / `ClusterContainsTasksException`: retried until
    /// the kind's wait bound.
    async fn delete(ctx: &Ctx<'_>, gone: Delete<'_, EcsClusterSpec>) -> Result<(), Error> {
        let Delete { address, id, .. } = gone;
        let client: aws_sdk_ecs::Client = ctx.clients.get(address.region());
        retry_on_codes(
            &format!("{address} to be emptied of services and tasks"),
            &["ClusterContainsServicesException", "ClusterContainsTasksException"],
            ctx.timeout_for(EcsCluster::NAME),
            || async {
                client
                    .delete_cluster()
                    .cluster(id)
                    .send()
                    .await
                    .op_or_gone("DeleteCluster", |e| e.is_cluster_not_found_exception())
                    .map(|_| ())
            },
        )
        .await
    }
    async fn repair_tags(ctx: &Ctx<'_>, address: &Address, id: &str, missing: &Tags) -> Result<(), Error> {
        ecs::tag_resource(ctx.clients, address.region(), id, missing).await
    }
}

/// The cluster `name`, unless it does not exist or was deleted (`INACTIVE`).
async fn describe(client: &aws_sdk_ecs::Client, name: &str) -> Result<Option<Cluster>, Error> {
    let out = client
        .describe_clusters()
        .clusters(name)
        .include(ClusterField::Tags)
        .include(ClusterField::Settings)
        .send()
        .await
        .op("DescribeClusters")?;
    Ok(out.clusters().iter().find(|c| c.status() != Some("INACTIVE")).cloned())
}

fn spec_of(c: &Cluster) -> EcsClusterSpec {
    EcsClusterSpec {
        name: c.cluster_name().unwrap_or_default().to_string(),
        container_insights: c.settings().iter().any(|s| {
            s.name() == Some(&ClusterSettingName::ContainerInsights)
                && matches!(s.value(), Some("enabled" | "enhanced"))
        }),
        capacity_providers: c.capacity_providers().to_vec(),
        default_strategy: c
            .default_capacity_provider_strategy()
            .iter()
            .map(|s| StrategyItem {
                provider: s.capacity_provider().to_string(),
                base: s.base(),
                weight: s.weight(),
            })
            .collect(),
    }
}

fn found_of(c: &Cluster, app: &str, env: &str) -> Option<Found> {
    let tags = tags_of(c.tags());
    if !super::is_ours(&tags, app, env) {
        return None;
    }
    let address = super::tagged_address(&tags, "ecs-cluster")?;
    Some(Found {
        address,
        id: c.cluster_arn()?.to_string(),
        spec: Spec::EcsCluster(spec_of(c)),
        tags,
        state: c.status().unwrap_or_default().to_string(),
        attrs: [(attr::NAME, c.cluster_name().unwrap_or_default().to_string())].into(),
    })
}

fn strategy(spec: &EcsClusterSpec) -> Vec<CapacityProviderStrategyItem> {
    spec.default_strategy
        .iter()
        .filter_map(|s| {
            CapacityProviderStrategyItem::builder()
                .capacity_provider(&s.provider)
                .base(s.base)
                .weight(s.weight)
                .build()
                .ok()
        })
        .collect()
}

fn insights(on: bool) -> ClusterSetting {
    ClusterSetting::builder()
        .name(ClusterSettingName::ContainerInsights)
        .value(if on { "enabled" } else { "disabled" })
        .build()
}

/// Container Insights through `UpdateCluster` (moto's `UpdateClusterSettings` is a 500; AWS
/// takes either), the providers and strategy through `PutClusterCapacityProviders`.
async fn update(ctx: &Ctx<'_>, region: &str, desired: &EcsClusterSpec, diff: &Diff) -> Result<(), Error> {
    let client: aws_sdk_ecs::Client = ctx.clients.get(region);
    if diff.has("container_insights") {
        client
            .update_cluster()
            .cluster(&desired.name)
            .settings(insights(desired.container_insights))
            .send()
            .await
            .op("UpdateCluster")?;
    }
    if diff.has("capacity_providers") || diff.has("default_strategy") {
        client
            .put_cluster_capacity_providers()
            .cluster(&desired.name)
            .set_capacity_providers(Some(desired.capacity_providers.clone()))
            .set_default_capacity_provider_strategy(Some(strategy(desired)))
            .send()
            .await
            .op("PutClusterCapacityProviders")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(providers: &[&str], strategy: &[(&str, i32, i32)]) -> EcsClusterSpec {
        EcsClusterSpec {
            name: "webapp-prod".into(),
            container_insights: true,
            capacity_providers: providers.iter().map(|p| p.to_string()).collect(),
            default_strategy: strategy
                .iter()
                .map(|(p, base, weight)| StrategyItem {
                    provider: p.to_string(),
                    base: *base,
                    weight: *weight,
                })
                .collect(),
        }
    }

    fn diff_of(mut desired: EcsClusterSpec, mut observed: EcsClusterSpec) -> Diff {
        EcsCluster::normalize(&mut desired);
        EcsCluster::normalize(&mut observed);
        let mut d = Diff::default();
        diff(&desired, &observed, &mut d);
        d
    }

    #[test]
    fn the_order_aws_lists_providers_in_is_not_a_difference() {
        let desired = spec(&["FARGATE", "FARGATE_SPOT"], &[("FARGATE", 2, 1), ("FARGATE_SPOT", 0, 3)]);
        let observed = spec(&["FARGATE_SPOT", "FARGATE"], &[("FARGATE_SPOT", 0, 3), ("FARGATE", 2, 1)]);
        assert!(diff_of(desired, observed).is_empty());
    }

    #[test]
    fn insights_and_the_strategy_are_updated_in_place() {
        let desired = spec(&["FARGATE", "FARGATE_SPOT"], &[("FARGATE", 2, 1)]);
        let mut observed = spec(&["FARGATE", "FARGATE_SPOT"], &[("FARGATE", 0, 1)]);
        observed.container_insights = false;
        let d = diff_of(desired, observed);
        assert!(d.has("container_insights") && d.has("default_strategy") && !d.replace(), "{d:?}");
    }
}
