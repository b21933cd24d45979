//! CloudWatch metric alarm on a target group, watched by the deployment group: a release that
//! sets one off stops and rolls back. Four per region, at `<region>/release/metric-alarm/<name>`
//! (`{app}-{env}-<name>`): `blue-5xx` and `green-5xx` (the targets' HTTP 5xx count, summed over
//! a minute, at least 10), `blue-unhealthy-hosts` and `green-unhealthy-hosts` (at least one
//! unhealthy target for two minutes). Both colours, because blue and green swap roles with every
//! release. Missing data is not breaching: an idle target group is not in alarm. (The
//! monitoring tier adds the rest of the alarms, and their thresholds to the configuration.)
//!
//! The alarm's state is CloudWatch's, not drift. Discovery: one paginated `DescribeAlarms` with
//! the environment's name prefix, and `ListTagsForResource` for each of those. ID: its ARN (its
//! name is the same in every region).

use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, MetricAlarm as SdkAlarm, Statistic, Tag};
use serde::Serialize;

use super::{
    Ctx, DataLoss, Diff, Found, Kind, ObserveCtx, Readiness, Replace, Role, Scope, Spec, Tags, TAG_ADDRESS,
};
use crate::cloud::{AwsResultExt, Error};
use crate::model::{Address, Ref};

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MetricAlarmSpec {
    pub name: String,
    pub namespace: String,
    pub metric: String,
    /// `Sum`, `Maximum`…
    pub statistic: String,
    pub period_secs: i32,
    pub evaluation_periods: i32,
    pub threshold: f64,
    /// `GreaterThanOrEqualToThreshold`…
    pub comparison: String,
    pub treat_missing_data: String,
    /// The load balancer's and target group's CloudWatch dimensions (attributes).
    pub load_balancer: Ref,
    pub target_group: Ref,
}

fn client(clients: &crate::cloud::Clients, region: &str) -> aws_sdk_cloudwatch::Client {
    clients.get(region)
}

pub struct MetricAlarm;

impl Kind for MetricAlarm {
    type Spec = MetricAlarmSpec;
    const NAME: &'static str = "metric-alarm";
    const SCOPE: Scope = Scope::Regional;
    const TAGGED: bool = true;

    fn refs(spec: &mut MetricAlarmSpec) -> Vec<(Role, &mut Ref)> {
        vec![(Role::Points, &mut spec.load_balancer), (Role::Points, &mut spec.target_group)]
    }
    fn normalize(_: &mut MetricAlarmSpec) {}
    fn diff(desired: &MetricAlarmSpec, observed: &MetricAlarmSpec, d: &mut Diff) {
        d.field("name", &desired.name, &observed.name, Replace::Yes);
        for (field, a, b) in [
            ("namespace", &desired.namespace, &observed.namespace),
            ("metric", &desired.metric, &observed.metric),
            ("statistic", &desired.statistic, &observed.statistic),
            ("comparison", &desired.comparison, &observed.comparison),
            ("treat_missing_data", &desired.treat_missing_data, &observed.treat_missing_data),
        ] {
            d.field(field, a, b, Replace::No);
        }
        d.field("period_secs", &desired.period_secs, &observed.period_secs, Replace::No);
        d.field("evaluation_periods", &desired.evaluation_periods, &observed.evaluation_periods, Replace::No);
        d.field("threshold", &desired.threshold, &observed.threshold, Replace::No);
        d.field("load_balancer", &desired.load_balancer, &observed.load_balancer, Replace::No);
        d.field("target_group", &desired.target_group, &observed.target_group, Replace::No);
    }
    fn readiness(_: &MetricAlarmSpec, _: &str) -> Readiness {
        Readiness::Ready
    }
    fn conflicts(a: &MetricAlarmSpec, b: &MetricAlarmSpec) -> bool {
        a.name == b.name
    }
    fn derived_address(_: &MetricAlarmSpec, _: &Address) -> Option<Address> {
        None
    }
    fn data_loss(_: &MetricAlarmSpec) -> Option<DataLoss> {
        None
    }
    async fn observe(ctx: &ObserveCtx<'_>) -> Result<Vec<Found>, Error> {
        let client = client(ctx.clients, &ctx.region);
        let alarms: Vec<SdkAlarm> = client
            .describe_alarms()
            .alarm_name_prefix(format!("{}-{}-", ctx.app, ctx.env))
            .into_paginator()
            .send()
            .try_collect()
            .await
            .op("DescribeAlarms")?
            .into_iter()
            .flat_map(|page| page.metric_alarms().to_vec())
            .collect();
        let mut found = Vec::new();
        for a in &alarms {
            let (Some(name), Some(arn)) = (a.alarm_name(), a.alarm_arn()) else { continue };
            let out =
                client.list_tags_for_resource().resource_arn(arn).send().await.op("ListTagsForResource")?;
            let tags: Tags = out
                .tags()
                .iter()
                .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
                .collect();
            if !super::is_ours(&tags, ctx.app, ctx.env) {
                continue;
            }
            let Some(address) = tags.get(TAG_ADDRESS).and_then(|a| Address::parse(a)) else { continue };
            let dim = |n: &str| {
                Ref::Id(
                    a.dimensions()
                        .iter()
                        .find(|d| d.name() == Some(n))
                        .and_then(|d| d.value())
                        .unwrap_or_default()
                        .to_string(),
                )
            };
            found.push(Found {
                address,
                id: arn.to_string(),
                spec: Spec::MetricAlarm(MetricAlarmSpec {
                    name: name.to_string(),
                    namespace: a.namespace().unwrap_or_default().to_string(),
                    metric: a.metric_name().unwrap_or_default().to_string(),
                    statistic: a.statistic().map(|s| s.as_str().to_string()).unwrap_or_default(),
                    period_secs: a.period().unwrap_or_default(),
                    evaluation_periods: a.evaluation_periods().unwrap_or_default(),
                    threshold: a.threshold().unwrap_or_default(),
                    comparison: a.comparison_operator().map(|c| c.as_str().to_string()).unwrap_or_default(),
                    treat_missing_data: a.treat_missing_data().unwrap_or("missing").to_string(),
                    load_balancer: dim("LoadBalancer"),
                    target_group: dim("TargetGroup"),
                }),
                tags,
                state: a.state_value().map(|s| s.as_str().to_string()).unwrap_or_default(),
                attrs: Default::default(),
            });
        }
        Ok(found)
    }
    async fn create(
        ctx: &Ctx<'_>,
        address: &Address,
        spec: &MetricAlarmSpec,
        tags: &Tags,
    ) -> Result<String, Error> {
        // `PutMetricAlarm` creates or replaces the alarm of that name: repeating it is harmless.
        // An alarm of that name that is not ours would be overwritten, so look first.
        let c = client(ctx.clients, address.region());
        let existing = c.describe_alarms().alarm_names(&spec.name).send().await.op("DescribeAlarms")?;
        if let Some(arn) = existing.metric_alarms().first().and_then(|a| a.alarm_arn()) {
            let out = c.list_tags_for_resource().resource_arn(arn).send().await.op("ListTagsForResource")?;
            if !out.tags().iter().any(|t| t.key() == Some(TAG_ADDRESS) && t.value() == Some(address.as_str()))
            {
                return Err(Error::Failed(format!(
                    "an alarm named {} already exists and is not this environment's {address}",
                    spec.name
                )));
            }
        }
        put(ctx, address.region(), spec, Some(tags)).await?;
        Ok(ctx.clients.account().await?.arn("cloudwatch", address.region(), &format!("alarm:{}", spec.name)))
    }
    async fn update(
        ctx: &Ctx<'_>,
        address: &Address,
        _: &str,
        desired: &MetricAlarmSpec,
        _: &MetricAlarmSpec,
        _: &Diff,
        _: &Tags,
    ) -> Result<(), Error> {
        put(ctx, address.region(), desired, None).await
    }
    async fn delete(ctx: &Ctx<'_>, address: &Address, id: &str, _: &MetricAlarmSpec) -> Result<(), Error> {
        // Deleting an alarm that is gone succeeds.
        let name = id.rsplit_once(":alarm:").map_or(id, |(_, n)| n);
        client(ctx.clients, address.region())
            .delete_alarms()
            .alarm_names(name)
            .send()
            .await
            .op("DeleteAlarms")?;
        Ok(())
    }
    async fn wait_ready(_: &Ctx<'_>, _: &Address, _: &str) -> Result<(), Error> {
        Ok(())
    }
    async fn repair_tags(ctx: &Ctx<'_>, address: &Address, id: &str, missing: &Tags) -> Result<(), Error> {
        let c = client(ctx.clients, address.region());
        let tags: Vec<Tag> = missing.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect();
        c.tag_resource().resource_arn(id).set_tags(Some(tags)).send().await.op("TagResource")?;
        Ok(())
    }
}

async fn put(ctx: &Ctx<'_>, region: &str, spec: &MetricAlarmSpec, tags: Option<&Tags>) -> Result<(), Error> {
    let dims = [("LoadBalancer", &spec.load_balancer), ("TargetGroup", &spec.target_group)]
        .into_iter()
        .map(|(n, r)| Ok(Dimension::builder().name(n).value(ctx.id(r)?).build()))
        .collect::<Result<Vec<_>, Error>>()?;
    client(ctx.clients, region)
        .put_metric_alarm()
        .alarm_name(&spec.name)
        .namespace(&spec.namespace)
        .metric_name(&spec.metric)
        .statistic(Statistic::from(spec.statistic.as_str()))
        .period(spec.period_secs)
        .evaluation_periods(spec.evaluation_periods)
        .threshold(spec.threshold)
        .comparison_operator(ComparisonOperator::from(spec.comparison.as_str()))
        .treat_missing_data(&spec.treat_missing_data)
        .set_dimensions(Some(dims))
        .set_tags(tags.map(|t| t.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()))
        .send()
        .await
        .op("PutMetricAlarm")?;
    Ok(())
}
