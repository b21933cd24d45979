//! CloudWatch metric alarm, at `<region>/<tier>/metric-alarm/<name>` (`{app}-{env}-<name>`).
//! Two tiers make them:
//!
//! - **release** (`model/service/codedeploy.rs`): the alarms the deployment group watches, so a
//!   release that sets one off stops and rolls back: `blue-5xx`, `green-5xx`,
//!   `blue-unhealthy-hosts`, `green-unhealthy-hosts` (both colours, since blue and green swap
//!   roles with every release). They notify no one.
//! - **monitoring** (`model/monitoring.rs`): the alarms that page a person, with the
//!   thresholds of `[monitoring]` and the region's SNS topic as their alarm and OK action.
//!
//! The metric is one statistic of one metric (`Sum`, `Maximum`, or a percentile such as `p99`,
//! which CloudWatch takes as an `ExtendedStatistic`), or a metric-math expression over several
//! (the load balancer's 5xx *rate*: 5xx answers over requests). Dimension values are either a
//! name (`ClusterName = webapp-prod`: names repeat across regions and kinds, so they stay plain
//! values) or a reference to an attribute of another resource (a load balancer's
//! `app/<name>/<id>`, a health check's ID), resolved at apply time.
//!
//! The alarm's state is CloudWatch's, not drift. Discovery: one paginated `DescribeAlarms` with
//! the environment's name prefix, and `ListTagsForResource` for each of those (a fixed number per
//! environment). ID: its ARN (its name is the same in every region). `PutMetricAlarm` creates or
//! replaces an alarm by name, so a retried or repeated put is harmless.

use std::collections::BTreeMap;

use aws_sdk_cloudwatch::types::{
    ComparisonOperator, Dimension, Metric as SdkMetric, MetricAlarm as SdkAlarm, MetricDataQuery, MetricStat,
    Statistic, Tag,
};
use serde::Serialize;

use super::{
    Create, Ctx, Delete, Diff, Found, Kind, ObserveCtx, Replace, Role, Scope, Spec, Tags, Update, TAG_ADDRESS,
};
use crate::cloud::{AwsResultExt, Error};
use crate::spec::{Address, Ref};

/// The dimensions whose values are names, kept as plain values (see the module docs).
const NAME_DIMENSIONS: &[&str] = &["ClusterName", "ServiceName", "DBInstanceIdentifier"];

/// The statistics CloudWatch takes as `Statistic`; anything else (`p99`, `tm90`) is an
/// `ExtendedStatistic`.
const STANDARD_STATISTICS: &[&str] = &["SampleCount", "Average", "Sum", "Minimum", "Maximum"];

/// A dimension's value: a name, or an attribute of another resource.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum DimensionValue {
    Name(String),
    Of(Ref),
}

impl DimensionValue {
    /// A dimension's value as CloudWatch returns it: a name stays a name, anything else is a
    /// physical ID for `plan::resolve_references` to map back to the resource it is.
    pub fn observed(dimension: &str, value: String) -> DimensionValue {
        if NAME_DIMENSIONS.contains(&dimension) {
            DimensionValue::Name(value)
        } else {
            DimensionValue::Of(Ref::Id(value))
        }
    }
}

/// Dimension name → value.
pub type Dimensions = BTreeMap<String, DimensionValue>;

/// One metric and how it is aggregated.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MetricSpec {
    pub namespace: String,
    pub name: String,
    pub dimensions: Dimensions,
    /// `Sum`, `Maximum`…, or a percentile (`p99`).
    pub statistic: String,
}

/// What the alarm watches.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum AlarmMetric {
    /// One metric's statistic.
    Metric(MetricSpec),
    /// An expression over metrics named by their query IDs (`100 * (e + t) / r`).
    Math { expression: String, label: String, metrics: BTreeMap<String, MetricSpec> },
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MetricAlarmSpec {
    pub name: String,
    /// What it means and what to do, for the person it pages.
    pub description: String,
    pub metric: AlarmMetric,
    pub period_secs: i32,
    pub evaluation_periods: i32,
    pub threshold: f64,
    /// `GreaterThanOrEqualToThreshold`…
    pub comparison: String,
    pub treat_missing_data: String,
    /// The SNS topics notified when it goes into ALARM and back to OK (their ARNs are their IDs).
    pub actions: Vec<Ref>,
}

impl MetricSpec {
    /// A metric of `namespace` with the given dimensions.
    pub fn new(namespace: &str, name: &str, statistic: &str, dimensions: Dimensions) -> MetricSpec {
        MetricSpec { namespace: namespace.into(), name: name.into(), dimensions, statistic: statistic.into() }
    }
}

fn client(clients: &crate::cloud::Clients, region: &str) -> aws_sdk_cloudwatch::Client {
    clients.get(region)
}

fn metric_refs(m: &mut MetricSpec) -> impl Iterator<Item = &mut Ref> {
    m.dimensions.values_mut().filter_map(|v| match v {
        DimensionValue::Of(r) => Some(r),
        DimensionValue::Name(_) => None,
    })
}

pub struct MetricAlarm;

impl Kind for MetricAlarm {
    type Spec = MetricAlarmSpec;
    const NAME: &'static str = "metric-alarm";
    const SCOPE: Scope = Scope::Regional;
    const TAGGED: bool = true;
    const PARTS: &'static [&'static str] = &["service", "monitoring"];
    const ACTIONS: &'static [&'static str] = &[
        "cloudwatch:DescribeAlarms",
        "cloudwatch:ListTagsForResource",
        "cloudwatch:PutMetricAlarm",
        "cloudwatch:DeleteAlarms",
        "cloudwatch:TagResource",
        "tag:GetResources",
    ];

    fn refs(spec: &mut MetricAlarmSpec) -> Vec<(Role, &mut Ref)> {
        let mut refs: Vec<(Role, &mut Ref)> = match &mut spec.metric {
            AlarmMetric::Metric(m) => metric_refs(m).map(|r| (Role::Points, r)).collect(),
            AlarmMetric::Math { metrics, .. } => {
                metrics.values_mut().flat_map(metric_refs).map(|r| (Role::Points, r)).collect()
            }
        };
        refs.extend(spec.actions.iter_mut().map(|r| (Role::Points, r)));
        refs
    }
    fn normalize(spec: &mut MetricAlarmSpec) {
        spec.actions.sort();
        spec.actions.dedup();
    }
    fn diff(desired: &MetricAlarmSpec, observed: &MetricAlarmSpec, d: &mut Diff) {
        diff_fields!(d, desired, observed,
            name: Yes, description: No, metric: No, period_secs: No, evaluation_periods: No, threshold: No,
            comparison: No, treat_missing_data: No, actions: No,
        );
    }
    fn conflicts(a: &MetricAlarmSpec, b: &MetricAlarmSpec) -> bool {
        a.name == b.name
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
        // Tags from the region's tagging index; an alarm it does not hold yet, one at a time.
        let index = if alarms.is_empty() { Default::default() } else { super::tagging::tagged(ctx).await? };
        let mut found = Vec::new();
        for a in &alarms {
            let (Some(name), Some(arn)) = (a.alarm_name(), a.alarm_arn()) else { continue };
            let tags = super::tagging::tags_or(&index, arn, || async {
                let out = client
                    .list_tags_for_resource()
                    .resource_arn(arn)
                    .send()
                    .await
                    .op("ListTagsForResource")?;
                Ok(out
                    .tags()
                    .iter()
                    .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
                    .collect())
            })
            .await?;
            if !super::is_ours(&tags, ctx.app, ctx.env) {
                continue;
            }
            let Some(address) = super::tagged_address(&tags, "metric-alarm") else { continue };
            found.push(Found {
                address,
                id: arn.to_string(),
                spec: Spec::MetricAlarm(spec_of(name, a)),
                tags,
                state: a.state_value().map(|s| s.as_str().to_string()).unwrap_or_default(),
                attrs: Default::default(),
            });
        }
        Ok(found)
    }
    async fn create(ctx: &Ctx<'_>, new: Create<'_, MetricAlarmSpec>) -> Result<String, Error> {
        let Create { address, spec, tags } = new;
        // An alarm of that name that is not ours would be overwritten by the put, so look first.
        let c = client(ctx.clients, address.region());
        let existing = c.describe_alarms().alarm_names(&spec.name).send().await.op("DescribeAlarms")?;
        if let Some(arn) = existing.metric_alarms().first().and_then(|a| a.alarm_arn()) {
            let out = c.list_tags_for_resource().resource_arn(arn).send().await.op("ListTagsForResource")?;
            if !out.tags().iter().any(|t| t.key() == Some(TAG_ADDRESS) && t.value() == Some(address.as_str()))
            {
                return Err(Error::InvalidState(format!(
                    "an alarm named {} already exists and is not this environment's {address}",
                    spec.name
                )));
            }
        }
        put(ctx, address.region(), spec, Some(tags)).await?;
        Ok(ctx.clients.account().await?.arn("cloudwatch", address.region(), &format!("alarm:{}", spec.name)))
    }
    async fn update(ctx: &Ctx<'_>, change: Update<'_, MetricAlarmSpec>) -> Result<(), Error> {
        let Update { address, desired, .. } = change;
        put(ctx, address.region(), desired, None).await
    }
    async fn delete(ctx: &Ctx<'_>, gone: Delete<'_, MetricAlarmSpec>) -> Result<(), Error> {
        let Delete { address, id, .. } = gone;
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
    async fn repair_tags(ctx: &Ctx<'_>, address: &Address, id: &str, missing: &Tags) -> Result<(), Error> {
        let c = client(ctx.clients, address.region());
        let tags: Vec<Tag> = missing.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect();
        c.tag_resource().resource_arn(id).set_tags(Some(tags)).send().await.op("TagResource")?;
        Ok(())
    }
}

fn dimensions_of(dims: &[Dimension]) -> Dimensions {
    dims.iter()
        .filter_map(|d| {
            let (name, value) = (d.name()?, d.value()?.to_string());
            Some((name.to_string(), DimensionValue::observed(name, value)))
        })
        .collect()
}

fn metric_of(m: Option<&SdkMetric>, statistic: &str) -> MetricSpec {
    MetricSpec {
        namespace: m.and_then(|m| m.namespace()).unwrap_or_default().to_string(),
        name: m.and_then(|m| m.metric_name()).unwrap_or_default().to_string(),
        dimensions: m.map(|m| dimensions_of(m.dimensions())).unwrap_or_default(),
        statistic: statistic.to_string(),
    }
}

/// The alarm as CloudWatch describes it.
fn spec_of(name: &str, a: &SdkAlarm) -> MetricAlarmSpec {
    let metric = if a.metrics().is_empty() {
        AlarmMetric::Metric(MetricSpec {
            namespace: a.namespace().unwrap_or_default().to_string(),
            name: a.metric_name().unwrap_or_default().to_string(),
            dimensions: dimensions_of(a.dimensions()),
            statistic: a
                .statistic()
                .map(|s| s.as_str().to_string())
                .or_else(|| a.extended_statistic().map(str::to_string))
                .unwrap_or_default(),
        })
    } else {
        let mut expression = String::new();
        let mut label = String::new();
        let mut metrics = BTreeMap::new();
        for q in a.metrics() {
            match (q.expression(), q.metric_stat()) {
                (Some(e), _) => {
                    expression = e.to_string();
                    label = q.label().unwrap_or_default().to_string();
                }
                (None, Some(stat)) => {
                    metrics.insert(
                        q.id().unwrap_or_default().to_string(),
                        metric_of(stat.metric(), stat.stat().unwrap_or_default()),
                    );
                }
                (None, None) => {}
            }
        }
        AlarmMetric::Math { expression, label, metrics }
    };
    let period = a.period().or_else(|| {
        a.metrics().iter().find_map(|q| q.metric_stat().and_then(|s| s.period())).filter(|p| *p > 0)
    });
    MetricAlarmSpec {
        name: name.to_string(),
        description: a.alarm_description().unwrap_or_default().to_string(),
        metric,
        period_secs: period.unwrap_or_default(),
        evaluation_periods: a.evaluation_periods().unwrap_or_default(),
        threshold: a.threshold().unwrap_or_default(),
        comparison: a.comparison_operator().map(|c| c.as_str().to_string()).unwrap_or_default(),
        treat_missing_data: a.treat_missing_data().unwrap_or("missing").to_string(),
        actions: a.alarm_actions().iter().map(|arn| Ref::Id(arn.clone())).collect(),
    }
}

fn sdk_dimensions(ctx: &Ctx<'_>, dims: &Dimensions) -> Result<Vec<Dimension>, Error> {
    dims.iter()
        .map(|(name, value)| {
            let value = match value {
                DimensionValue::Name(v) => v.clone(),
                DimensionValue::Of(r) => ctx.id(r)?,
            };
            Ok(Dimension::builder().name(name).value(value).build())
        })
        .collect()
}

async fn put(ctx: &Ctx<'_>, region: &str, spec: &MetricAlarmSpec, tags: Option<&Tags>) -> Result<(), Error> {
    let actions = spec.actions.iter().map(|a| ctx.id(a)).collect::<Result<Vec<_>, _>>()?;
    let mut put = client(ctx.clients, region)
        .put_metric_alarm()
        .alarm_name(&spec.name)
        .alarm_description(&spec.description)
        .evaluation_periods(spec.evaluation_periods)
        .threshold(spec.threshold)
        .comparison_operator(ComparisonOperator::from(spec.comparison.as_str()))
        .treat_missing_data(&spec.treat_missing_data)
        .actions_enabled(true)
        .set_alarm_actions(Some(actions.clone()))
        .set_ok_actions(Some(actions))
        .set_tags(tags.map(|t| t.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()));
    match &spec.metric {
        AlarmMetric::Metric(m) => {
            put = put
                .namespace(&m.namespace)
                .metric_name(&m.name)
                .period(spec.period_secs)
                .set_dimensions(Some(sdk_dimensions(ctx, &m.dimensions)?));
            put = if STANDARD_STATISTICS.contains(&m.statistic.as_str()) {
                put.statistic(Statistic::from(m.statistic.as_str()))
            } else {
                put.extended_statistic(&m.statistic)
            };
        }
        AlarmMetric::Math { expression, label, metrics } => {
            put = put.metrics(
                MetricDataQuery::builder()
                    .id("expression")
                    .expression(expression)
                    .label(label)
                    .return_data(true)
                    .build(),
            );
            for (id, m) in metrics {
                let metric = SdkMetric::builder()
                    .namespace(&m.namespace)
                    .metric_name(&m.name)
                    .set_dimensions(Some(sdk_dimensions(ctx, &m.dimensions)?))
                    .build();
                put = put.metrics(
                    MetricDataQuery::builder()
                        .id(id)
                        .metric_stat(
                            MetricStat::builder()
                                .metric(metric)
                                .period(spec.period_secs)
                                .stat(&m.statistic)
                                .build(),
                        )
                        .return_data(false)
                        .build(),
                );
            }
        }
    }
    put.send().await.op("PutMetricAlarm")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_cloudwatch::types::StandardUnit;

    fn lb() -> Ref {
        Ref::Id("app/webapp-prod/50dc6c495c0c9188".into())
    }

    #[test]
    fn a_percentile_and_a_math_alarm_read_back_as_written() {
        let p99 = SdkAlarm::builder()
            .alarm_name("webapp-prod-latency-p99")
            .namespace("AWS/ApplicationELB")
            .metric_name("TargetResponseTime")
            .extended_statistic("p99")
            .period(60)
            .dimensions(
                Dimension::builder().name("LoadBalancer").value("app/webapp-prod/50dc6c495c0c9188").build(),
            )
            .alarm_actions("arn:aws:sns:us-east-1:1:webapp-prod-alarms")
            .build();
        let spec = spec_of("webapp-prod-latency-p99", &p99);
        let AlarmMetric::Metric(m) = &spec.metric else { panic!("{spec:?}") };
        assert_eq!(m.statistic, "p99");
        assert_eq!(m.dimensions["LoadBalancer"], DimensionValue::Of(lb()));
        assert_eq!(spec.period_secs, 60);
        assert_eq!(spec.actions, vec![Ref::Id("arn:aws:sns:us-east-1:1:webapp-prod-alarms".into())]);

        let stat = |name: &str| {
            MetricStat::builder()
                .metric(
                    SdkMetric::builder()
                        .namespace("AWS/ApplicationELB")
                        .metric_name(name)
                        .dimensions(
                            Dimension::builder()
                                .name("LoadBalancer")
                                .value("app/webapp-prod/50dc6c495c0c9188")
                                .build(),
                        )
                        .build(),
                )
                .period(60)
                .stat("Sum")
                .unit(StandardUnit::Count)
                .build()
        };
        let rate = SdkAlarm::builder()
            .metrics(
                MetricDataQuery::builder().id("expression").expression("100 * e / r").label("5xx %").build(),
            )
            .metrics(MetricDataQuery::builder().id("e").metric_stat(stat("HTTPCode_ELB_5XX_Count")).build())
            .metrics(MetricDataQuery::builder().id("r").metric_stat(stat("RequestCount")).build())
            .build();
        let spec = spec_of("webapp-prod-alb-5xx-rate", &rate);
        let AlarmMetric::Math { expression, metrics, .. } = &spec.metric else { panic!("{spec:?}") };
        assert_eq!(expression, "100 * e / r");
        assert_eq!(metrics["r"].name, "RequestCount");
        assert_eq!(spec.period_secs, 60, "a math alarm's period is its metrics'");
    }

    #[test]
    fn names_stay_plain_values_and_a_changed_threshold_is_an_update() {
        let ecs = SdkAlarm::builder()
            .namespace("AWS/ECS")
            .metric_name("CPUUtilization")
            .statistic(Statistic::Average)
            .dimensions(Dimension::builder().name("ClusterName").value("webapp-prod").build())
            .threshold(85.0)
            .build();
        let observed = spec_of("webapp-prod-ecs-cpu", &ecs);
        let AlarmMetric::Metric(m) = &observed.metric else { panic!() };
        assert_eq!(m.dimensions["ClusterName"], DimensionValue::Name("webapp-prod".into()));
        let mut desired = observed.clone();
        desired.threshold = 90.0;
        let d = Spec::MetricAlarm(desired).diff(&Spec::MetricAlarm(observed));
        assert!(d.has("threshold") && !d.replace(), "{d:?}");
    }
}
