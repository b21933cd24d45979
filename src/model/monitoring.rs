//! The monitoring tier, when `monitoring.enabled`: alarms on every tier the environment has,
//! the SNS topic each region's alarms notify, and one dashboard.
//!
//! | Address | What |
//! |---|---|
//! | `R/monitoring/sns-topic/alarms` | `{app}-{env}-alarms`: the subscriptions of `[monitoring]`; CloudWatch and EventBridge may publish |
//! | `R/monitoring/metric-alarm/alb-5xx-rate` | 5xx answers (load balancer and targets) as a percentage of requests |
//! | `R/monitoring/metric-alarm/latency-p99` | the targets' p99 response time |
//! | `R/monitoring/metric-alarm/unhealthy-hosts-<blue|green>` | unhealthy targets of each target group |
//! | `R/monitoring/metric-alarm/ecs-cpu`, `…/ecs-memory` | the service's average CPU and memory |
//! | `R/monitoring/metric-alarm/db-cpu`, `…/db-free-storage`, `…/db-connections` | the region's database (the primary, or the replica) |
//! | `S/monitoring/metric-alarm/replica-lag` | each secondary's replica |
//! | `us-east-1/monitoring/metric-alarm/health-check-<region>` | each region's Route 53 health check (Route 53's metrics exist only in us-east-1) |
//! | `global/monitoring/dashboard/main` | `{app}-{env}`: every region side by side |
//!
//! Every alarm fires after `monitoring.evaluation_minutes` one-minute periods in breach and
//! notifies the region's topic when it fires and when it recovers. Missing data is not breaching
//! (an idle load balancer is not in alarm), except for a health check, whose silence is itself a
//! failure.

use std::collections::BTreeMap;

use super::{dns, service, Account, Address, Builder, Ref};
use crate::config::Config;
use crate::resources::dashboard::{marker, DashboardSpec, MetricLine, Place, Widget};
use crate::resources::iam_policy::{PolicyDocument, Statement};
use crate::resources::metric_alarm::{AlarmMetric, DimensionValue, Dimensions, MetricAlarmSpec, MetricSpec};
use crate::resources::sns_topic::{self, SnsTopicSpec, Subscription};
use crate::resources::{attr, Spec};

pub const TIER: &str = crate::spec::names::tier::MONITORING;

/// Route 53 publishes health check metrics in us-east-1 only.
pub const ROUTE53_METRICS_REGION: &str = "us-east-1";

pub fn topic(region: &str) -> Address {
    Address::new(region, TIER, "sns-topic", sns_topic::ALARMS)
}

pub fn topic_name(config: &Config) -> String {
    sns_topic::name(&config.app, &config.env, sns_topic::ALARMS)
}

pub fn alarm(region: &str, name: &str) -> Address {
    Address::new(region, TIER, "metric-alarm", name)
}

pub fn dashboard() -> Address {
    Address::global(TIER, "dashboard", "main")
}

fn of(r: Ref) -> DimensionValue {
    DimensionValue::Of(r)
}

fn name(v: &str) -> DimensionValue {
    DimensionValue::Name(v.to_string())
}

fn dims<const N: usize>(pairs: [(&str, DimensionValue); N]) -> Dimensions {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// The alarms' shared shape: `evaluation_minutes` one-minute periods, notifying `topic`.
struct Alarms<'a> {
    config: &'a Config,
    region: &'a str,
    topic: Address,
}

impl Alarms<'_> {
    #[allow(clippy::too_many_arguments)]
    fn add(
        &self,
        b: &mut Builder,
        short: &str,
        description: String,
        metric: AlarmMetric,
        threshold: f64,
        comparison: &str,
        treat_missing_data: &str,
    ) {
        let c = self.config;
        b.add(
            self.region,
            TIER,
            short,
            Spec::MetricAlarm(MetricAlarmSpec {
                name: format!("{}-{}-{short}", c.app, c.env),
                description: format!("{description} ({} {}, {}).", c.app, c.env, self.region),
                metric,
                period_secs: 60,
                evaluation_periods: c.monitoring.evaluation_minutes as i32,
                threshold,
                comparison: comparison.into(),
                treat_missing_data: treat_missing_data.into(),
                actions: vec![Ref::Addr(self.topic.clone())],
            }),
        );
    }
}

/// The topic's policy: CloudWatch alarms and EventBridge rules of this account may publish.
fn topic_policy(config: &Config, account: &Account, region: &str) -> PolicyDocument {
    let arn = account.arn("sns", region, &topic_name(config));
    PolicyDocument::new(
        ["cloudwatch.amazonaws.com", "events.amazonaws.com"]
            .into_iter()
            .map(|service| Statement {
                service_principal: Some(service.into()),
                ..Statement::allow(&["sns:Publish"], vec![Ref::Id(arn.clone())]).condition(
                    "StringEquals",
                    "aws:SourceAccount",
                    &[&account.id],
                )
            })
            .collect(),
    )
}

pub(super) fn monitoring(b: &mut Builder, config: &Config, account: &Account) {
    let m = &config.monitoring;
    if !m.enabled {
        return;
    }
    let base = format!("{}-{}", config.app, config.env);
    let mut subscriptions: Vec<Subscription> = m
        .emails
        .iter()
        .map(|e| Subscription { protocol: "email".into(), endpoint: e.clone() })
        .chain(
            m.https_endpoints.iter().map(|e| Subscription { protocol: "https".into(), endpoint: e.clone() }),
        )
        .collect();
    subscriptions.sort();
    let minutes = m.evaluation_minutes;
    for region in config.region_names() {
        let topic = b.add(
            &region,
            TIER,
            sns_topic::ALARMS,
            Spec::SnsTopic(SnsTopicSpec {
                name: topic_name(config),
                policy: topic_policy(config, account, &region),
                subscriptions: subscriptions.clone(),
                subscription_arns: BTreeMap::new(),
            }),
        );
        let a = Alarms { config, region: &region, topic };
        if config.service.enabled {
            let lb = || of(Ref::attr(service::load_balancer(&region), attr::DIMENSION));
            let elb = |metric: &str| {
                MetricSpec::new("AWS/ApplicationELB", metric, "Sum", dims([("LoadBalancer", lb())]))
            };
            a.add(
                b,
                "alb-5xx-rate",
                format!(
                    "More than {}% of the load balancer's requests answered with a 5xx for {minutes} minutes",
                    m.alb_5xx_percent
                ),
                AlarmMetric::Math {
                    expression: "100 * (FILL(elb, 0) + FILL(target, 0)) / requests".into(),
                    label: "5xx % of requests".into(),
                    metrics: BTreeMap::from([
                        ("elb".to_string(), elb("HTTPCode_ELB_5XX_Count")),
                        ("target".to_string(), elb("HTTPCode_Target_5XX_Count")),
                        ("requests".to_string(), elb("RequestCount")),
                    ]),
                },
                f64::from(m.alb_5xx_percent),
                "GreaterThanThreshold",
                "notBreaching",
            );
            a.add(
                b,
                "latency-p99",
                format!("The targets' p99 response time above {} ms for {minutes} minutes", m.latency_p99_ms),
                AlarmMetric::Metric(MetricSpec::new(
                    "AWS/ApplicationELB",
                    "TargetResponseTime",
                    "p99",
                    dims([("LoadBalancer", lb())]),
                )),
                f64::from(m.latency_p99_ms) / 1000.0,
                "GreaterThanThreshold",
                "notBreaching",
            );
            for color in ["blue", "green"] {
                a.add(
                    b,
                    &format!("unhealthy-hosts-{color}"),
                    format!(
                        "At least {} unhealthy target(s) in the {color} target group for {minutes} minutes",
                        m.unhealthy_hosts
                    ),
                    AlarmMetric::Metric(MetricSpec::new(
                        "AWS/ApplicationELB",
                        "UnHealthyHostCount",
                        "Maximum",
                        dims([
                            ("LoadBalancer", lb()),
                            (
                                "TargetGroup",
                                of(Ref::attr(service::target_group(&region, color), attr::DIMENSION)),
                            ),
                        ]),
                    )),
                    f64::from(m.unhealthy_hosts),
                    "GreaterThanOrEqualToThreshold",
                    "notBreaching",
                );
            }
            for (short, metric, threshold) in [
                ("ecs-cpu", "CPUUtilization", m.ecs_cpu_percent),
                ("ecs-memory", "MemoryUtilization", m.ecs_memory_percent),
            ] {
                a.add(
                    b,
                    short,
                    format!("The service's average {metric} above {threshold}% for {minutes} minutes"),
                    AlarmMetric::Metric(MetricSpec::new(
                        "AWS/ECS",
                        metric,
                        "Average",
                        dims([("ClusterName", name(&base)), ("ServiceName", name(&base))]),
                    )),
                    f64::from(threshold),
                    "GreaterThanThreshold",
                    "notBreaching",
                );
            }
        }
        if config.database.enabled {
            let db = &config.database;
            let id = || dims([("DBInstanceIdentifier", name(&db.identifier))]);
            let rds = |metric: &str, stat: &str| {
                AlarmMetric::Metric(MetricSpec::new("AWS/RDS", metric, stat, id()))
            };
            let which = if region == config.primary_region { "primary database" } else { "read replica" };
            a.add(
                b,
                "db-cpu",
                format!("The {which}'s CPU above {}% for {minutes} minutes", m.db_cpu_percent),
                rds("CPUUtilization", "Average"),
                f64::from(m.db_cpu_percent),
                "GreaterThanThreshold",
                "notBreaching",
            );
            let gib = 1024.0 * 1024.0 * 1024.0;
            a.add(
                b,
                "db-free-storage",
                format!(
                    "The {which}'s free storage below {}% of {} GiB",
                    m.db_free_storage_percent, db.allocated_storage_gib
                ),
                rds("FreeStorageSpace", "Minimum"),
                (db.allocated_storage_gib as f64 * gib * f64::from(m.db_free_storage_percent) / 100.0)
                    .round(),
                "LessThanThreshold",
                "notBreaching",
            );
            a.add(
                b,
                "db-connections",
                format!("The {which} holds more than {} connections for {minutes} minutes", m.db_connections),
                rds("DatabaseConnections", "Maximum"),
                f64::from(m.db_connections),
                "GreaterThanThreshold",
                "notBreaching",
            );
            if region != config.primary_region {
                a.add(
                    b,
                    "replica-lag",
                    format!(
                        "The read replica more than {} s behind the primary for {minutes} minutes: a failover to this region would lose that much",
                        m.replica_lag_secs
                    ),
                    rds("ReplicaLag", "Maximum"),
                    f64::from(m.replica_lag_secs),
                    "GreaterThanThreshold",
                    "notBreaching",
                );
            }
        }
        if dns_checked(config) && region == ROUTE53_METRICS_REGION {
            for checked in config.region_names() {
                a.add(
                    b,
                    &format!("health-check-{checked}"),
                    format!(
                        "Route 53's health check of {checked} failing for {minutes} minutes: DNS sends {checked}'s traffic to the other region"
                    ),
                    AlarmMetric::Metric(MetricSpec::new(
                        "AWS/Route53",
                        "HealthCheckStatus",
                        "Minimum",
                        dims([("HealthCheckId", of(Ref::Addr(dns::health_check(&checked))))]),
                    )),
                    1.0,
                    "LessThanThreshold",
                    "breaching",
                );
            }
        }
    }
    b.add(
        crate::spec::GLOBAL,
        TIER,
        "main",
        Spec::Dashboard(DashboardSpec { name: base, widgets: dashboard_widgets(config) }),
    );
}

/// Whether the DNS tier's health checks exist and can be alarmed on (their metrics are in
/// us-east-1, which must be one of the environment's regions to hold the alarms).
pub fn dns_checked(config: &Config) -> bool {
    config.dns.enabled && config.service.enabled && config.regions.contains_key(ROUTE53_METRICS_REGION)
}

fn line(
    namespace: &str,
    metric: &str,
    dimensions: Dimensions,
    stat: Option<&str>,
    label: &str,
) -> MetricLine {
    let mut options = serde_json::Map::new();
    if let Some(stat) = stat {
        options.insert("stat".into(), stat.into());
    }
    options.insert("label".into(), label.into());
    MetricLine { namespace: namespace.into(), name: metric.into(), dimensions, options }
}

/// The golden signals of every region side by side: a column per region, a row per signal.
fn dashboard_widgets(config: &Config) -> Vec<Widget> {
    let regions = config.region_names();
    let width = (24 / regions.len().max(1)) as i64;
    let base = format!("{}-{}", config.app, config.env);
    let mut widgets = vec![Widget::Text {
        place: Place { x: 0, y: 0, width: 24, height: 2 },
        markdown: format!(
            "# {} {}\n{}: `deployer up --env {}` puts back any change made here. Columns: {}.",
            config.app,
            config.env,
            marker(&config.app, &config.env),
            config.env,
            regions.join(", ")
        ),
    }];
    let mut y = 2;
    let mut row =
        |widgets: &mut Vec<Widget>, title: &str, stat: &str, lines: &dyn Fn(&str) -> Vec<MetricLine>| {
            let mut any = false;
            for (i, region) in regions.iter().enumerate() {
                let metrics = lines(region);
                if metrics.is_empty() {
                    continue;
                }
                any = true;
                widgets.push(Widget::Metric {
                    place: Place { x: i as i64 * width, y, width, height: 6 },
                    title: format!("{title}: {region}"),
                    region: region.clone(),
                    stat: stat.into(),
                    period: 60,
                    metrics,
                });
            }
            if any {
                y += 6;
            }
        };
    if config.service.enabled {
        let lb = |region: &str| {
            dims([("LoadBalancer", of(Ref::attr(service::load_balancer(region), attr::DIMENSION)))])
        };
        let elb = "AWS/ApplicationELB";
        row(&mut widgets, "Traffic and errors", "Sum", &|r| {
            vec![
                line(elb, "RequestCount", lb(r), None, "requests"),
                line(elb, "HTTPCode_ELB_5XX_Count", lb(r), None, "5xx from the load balancer"),
                line(elb, "HTTPCode_Target_5XX_Count", lb(r), None, "5xx from the targets"),
            ]
        });
        row(&mut widgets, "Latency", "p99", &|r| {
            vec![
                line(elb, "TargetResponseTime", lb(r), Some("p50"), "p50"),
                line(elb, "TargetResponseTime", lb(r), Some("p99"), "p99"),
            ]
        });
        row(&mut widgets, "Targets", "Maximum", &|r| {
            ["blue", "green"]
                .into_iter()
                .flat_map(|color| {
                    let mut d = lb(r);
                    d.insert(
                        "TargetGroup".into(),
                        of(Ref::attr(service::target_group(r, color), attr::DIMENSION)),
                    );
                    [
                        line(elb, "HealthyHostCount", d.clone(), None, &format!("healthy {color}")),
                        line(elb, "UnHealthyHostCount", d, None, &format!("unhealthy {color}")),
                    ]
                })
                .collect()
        });
        let ecs = dims([("ClusterName", name(&base)), ("ServiceName", name(&base))]);
        row(&mut widgets, "Saturation (service)", "Average", &|_| {
            vec![
                line("AWS/ECS", "CPUUtilization", ecs.clone(), None, "CPU %"),
                line("AWS/ECS", "MemoryUtilization", ecs.clone(), None, "memory %"),
            ]
        });
    }
    if config.database.enabled {
        let id = dims([("DBInstanceIdentifier", name(&config.database.identifier))]);
        row(&mut widgets, "Database", "Average", &|r| {
            let mut lines = vec![
                line("AWS/RDS", "CPUUtilization", id.clone(), None, "CPU %"),
                line("AWS/RDS", "DatabaseConnections", id.clone(), Some("Maximum"), "connections"),
            ];
            if r != config.primary_region {
                lines.push(line("AWS/RDS", "ReplicaLag", id.clone(), Some("Maximum"), "replica lag (s)"));
            }
            lines
        });
        row(&mut widgets, "Database storage", "Minimum", &|_| {
            vec![line("AWS/RDS", "FreeStorageSpace", id.clone(), None, "free bytes")]
        });
    }
    if dns_checked(config) {
        let checks: Vec<MetricLine> = regions
            .iter()
            .map(|r| {
                line(
                    "AWS/Route53",
                    "HealthCheckStatus",
                    dims([("HealthCheckId", of(Ref::Addr(dns::health_check(r))))]),
                    None,
                    &format!("{r} healthy (1) / unhealthy (0)"),
                )
            })
            .collect();
        widgets.push(Widget::Metric {
            place: Place { x: 0, y, width: 24, height: 6 },
            title: "Route 53 health checks".into(),
            region: ROUTE53_METRICS_REGION.into(),
            stat: "Minimum".into(),
            period: 60,
            metrics: checks,
        });
    }
    widgets
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing;
    use crate::config::NatMode;
    use crate::model::desired;

    fn config() -> Config {
        let mut c = testing::with_service(testing::config(2, NatMode::PerAz));
        c.monitoring = crate::config::MonitoringConfig {
            enabled: true,
            emails: vec!["ops@example.com".into()],
            alb_5xx_percent: 5,
            latency_p99_ms: 1500,
            unhealthy_hosts: 1,
            ecs_cpu_percent: 85,
            ecs_memory_percent: 90,
            db_cpu_percent: 80,
            db_free_storage_percent: 10,
            db_connections: 200,
            replica_lag_secs: 300,
            evaluation_minutes: 5,
            ..Default::default()
        };
        c
    }

    fn alarms(d: &crate::model::Desired, region: &str) -> Vec<String> {
        d.resources
            .iter()
            .filter(|r| {
                r.address.region() == region && r.address.tier() == TIER && r.address.kind() == "metric-alarm"
            })
            .map(|r| r.address.name().to_string())
            .collect()
    }

    #[test]
    fn every_region_alarms_on_its_tiers_and_notifies_its_own_topic() {
        let d = desired(&config(), &Account::test());
        let primary = alarms(&d, "us-east-1");
        for a in [
            "alb-5xx-rate",
            "latency-p99",
            "unhealthy-hosts-blue",
            "ecs-cpu",
            "ecs-memory",
            "db-cpu",
            "db-free-storage",
            "db-connections",
        ] {
            assert!(primary.iter().any(|n| n == a), "{a} in {primary:?}");
        }
        assert!(!primary.iter().any(|n| n == "replica-lag"), "the primary has no replica lag");
        assert!(alarms(&d, "us-east-2").iter().any(|n| n == "replica-lag"));
        for r in d.resources.iter().filter(|r| r.address.kind() == "metric-alarm" && r.address.tier() == TIER)
        {
            let Spec::MetricAlarm(a) = &r.spec else { unreachable!() };
            assert_eq!(a.actions, vec![Ref::Addr(topic(r.address.region()))], "{}", r.address);
            assert_eq!(a.evaluation_periods, 5);
        }
        let storage = d.get(&alarm("us-east-1", "db-free-storage")).unwrap();
        let Spec::MetricAlarm(a) = &storage.spec else { unreachable!() };
        assert_eq!(a.threshold, 2.0 * 1024.0 * 1024.0 * 1024.0, "10% of 20 GiB");
        let latency = d.get(&alarm("us-east-1", "latency-p99")).unwrap();
        let Spec::MetricAlarm(a) = &latency.spec else { unreachable!() };
        assert_eq!(a.threshold, 1.5, "TargetResponseTime is in seconds");
        assert!(d.get(&dashboard()).is_some());
    }

    #[test]
    fn without_the_tier_nothing_and_without_a_service_no_service_alarms() {
        let mut c = config();
        c.monitoring.enabled = false;
        assert!(desired(&c, &Account::test()).resources.iter().all(|r| r.address.tier() != TIER));
        let mut c = config();
        c.service.enabled = false;
        let d = desired(&c, &Account::test());
        let names = alarms(&d, "us-east-1");
        assert!(names.iter().all(|n| n.starts_with("db-")), "{names:?}");
    }

    #[test]
    fn health_checks_are_alarmed_on_in_us_east_1() {
        let mut c = config();
        c.dns.enabled = true;
        let d = desired(&c, &Account::test());
        let names = alarms(&d, "us-east-1");
        assert!(
            names.iter().any(|n| n == "health-check-us-east-1")
                && names.iter().any(|n| n == "health-check-us-east-2")
        );
        assert!(!alarms(&d, "us-east-2").iter().any(|n| n.starts_with("health-check")));
    }
}
