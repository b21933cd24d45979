//! The service tier's release plumbing in one region: the CodeDeploy application, the alarms it
//! watches, and the blue/green deployment group wired to the service, target groups and
//! listeners.

use super::{
    alarm, base_name, cluster, codedeploy_app, codedeploy_role, ecs_service, listener, load_balancer,
    target_group, RELEASE_TIER,
};
use crate::config::{Config, DeploymentConfigChoice};
use crate::model::Builder;
use crate::resources::attr;
use crate::resources::codedeploy_app::CodedeployAppSpec;
use crate::resources::deployment_config::{shape_name, DeploymentConfigSpec};
use crate::resources::deployment_group::DeploymentGroupSpec;
use crate::resources::metric_alarm::{AlarmMetric, DimensionValue, MetricAlarmSpec, MetricSpec};
use crate::resources::Spec;
use crate::spec::Ref;
use std::collections::BTreeMap;

pub(super) fn release(b: &mut Builder, config: &Config, region: &str) {
    let name = base_name(config);
    b.add(
        region,
        RELEASE_TIER,
        codedeploy_app(region).name(),
        Spec::CodedeployApp(CodedeployAppSpec { name: name.clone(), compute_platform: "ECS".into() }),
    );
    let mut alarms: Vec<(String, crate::spec::Address)> = Vec::new();
    for color in ["blue", "green"] {
        for (suffix, metric, statistic, threshold, periods) in [
            ("5xx", "HTTPCode_Target_5XX_Count", "Sum", 10.0, 1),
            ("unhealthy-hosts", "UnHealthyHostCount", "Maximum", 1.0, 2),
        ] {
            let short = format!("{color}-{suffix}");
            let address = b.add(
                region,
                RELEASE_TIER,
                alarm(region, &short).name(),
                Spec::MetricAlarm(MetricAlarmSpec {
                    name: format!("{name}-{short}"),
                    description: format!(
                        "Watched by the CodeDeploy deployment group {name}: stops a release and rolls it back"
                    ),
                    metric: AlarmMetric::Metric(MetricSpec::new(
                        "AWS/ApplicationELB",
                        metric,
                        statistic,
                        BTreeMap::from([
                            (
                                "LoadBalancer".to_string(),
                                DimensionValue::Of(Ref::attr(load_balancer(region), attr::DIMENSION)),
                            ),
                            (
                                "TargetGroup".to_string(),
                                DimensionValue::Of(Ref::attr(target_group(region, color), attr::DIMENSION)),
                            ),
                        ]),
                    )),
                    period_secs: 60,
                    evaluation_periods: periods,
                    threshold,
                    comparison: "GreaterThanOrEqualToThreshold".into(),
                    treat_missing_data: "notBreaching".into(),
                    actions: vec![],
                }),
            );
            alarms.push((format!("{name}-{short}"), address));
        }
    }
    let mut after = vec![];
    let deployment_config =
        match (&config.release.deployment_config, config.release.deployment_config.codedeploy_name()) {
            (_, Some(predefined)) => predefined,
            (DeploymentConfigChoice::Canary { percent, minutes }, None) => {
                custom_config(b, &name, region, "canary", *percent, *minutes, &mut after)
            }
            (DeploymentConfigChoice::Linear { percent, minutes }, None) => {
                custom_config(b, &name, region, "linear", *percent, *minutes, &mut after)
            }
            (DeploymentConfigChoice::Predefined(name), None) => name.clone(),
        };
    b.add(
        region,
        RELEASE_TIER,
        "main",
        Spec::DeploymentGroup(DeploymentGroupSpec {
            app: name.clone(),
            name: name.clone(),
            service_role: Ref::Addr(codedeploy_role()),
            cluster: name.clone(),
            service: name.clone(),
            target_groups: vec![format!("{name}-blue"), format!("{name}-green")],
            prod_listener: Ref::Addr(listener(region, "https")),
            test_listener: Ref::Addr(listener(region, "test")),
            deployment_config,
            termination_wait_minutes: i32::try_from(config.release.termination_wait_minutes)
                .unwrap_or(i32::MAX),
            auto_rollback_events: vec!["DEPLOYMENT_FAILURE".into(), "DEPLOYMENT_STOP_ON_ALARM".into()],
            alarms: alarms.iter().map(|(n, _)| n.clone()).collect(),
            after: [
                codedeploy_app(region),
                cluster(region),
                ecs_service(region),
                target_group(region, "blue"),
                target_group(region, "green"),
            ]
            .into_iter()
            .chain(alarms.into_iter().map(|(_, a)| a))
            .map(Ref::Addr)
            .collect(),
        }),
    );
}

/// A custom canary or linear configuration (a shape CodeDeploy does not predefine): its name,
/// with its address added to `after`.
fn custom_config(
    b: &mut Builder,
    base: &str,
    region: &str,
    shape: &str,
    percent: u32,
    minutes: u32,
    after: &mut Vec<crate::spec::Address>,
) -> String {
    let short = shape_name(shape, percent, minutes);
    let name = format!("{base}-{short}");
    let address = b.add(
        region,
        RELEASE_TIER,
        &short,
        Spec::DeploymentConfig(DeploymentConfigSpec {
            name: name.clone(),
            shape: shape.into(),
            percent: i32::try_from(percent).unwrap_or(i32::MAX),
            minutes: i32::try_from(minutes).unwrap_or(i32::MAX),
        }),
    );
    after.push(address);
    name
}
