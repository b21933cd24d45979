//! The monitoring tier end to end, judged by SNS's and CloudWatch's own answers: `up` makes a
//! topic per region (tagged, with the configured email subscription pending confirmation and a
//! policy that lets CloudWatch and EventBridge publish), the alarms of every tier with their
//! thresholds and the region's topic as their action, the Route 53 health check alarms in
//! us-east-1 and the dashboard with both regions side by side. A second `up` sends nothing.
//! A changed alarm threshold, a widget added to the dashboard by hand and a removed
//! subscription are found by `drift` (exit 2) and repaired by `up`; a pending or confirmed
//! subscription is not drift. `destroy` leaves none of it.

mod support;

use std::collections::BTreeMap;

use serde_json::{json, Value};
use support::{deployer, deployer_ok, show_output, stdout_text, Emulator, Project};

const ENV: &str = "local";
const NAME: &str = "webapp-local";
const EMAIL: &str = "oncall@local.deployer.test";
const REGIONS: [&str; 2] = ["us-east-1", "us-east-2"];

struct Clients {
    sns: aws_sdk_sns::Client,
    cw: aws_sdk_cloudwatch::Client,
    elb: aws_sdk_elasticloadbalancingv2::Client,
}

async fn clients(emu: &Emulator, region: &'static str) -> Clients {
    let c = support::sdk_config(emu, region).await;
    Clients {
        sns: aws_sdk_sns::Client::new(&c),
        cw: aws_sdk_cloudwatch::Client::new(&c),
        elb: aws_sdk_elasticloadbalancingv2::Client::new(&c),
    }
}

fn topic_arn(region: &str) -> String {
    format!("arn:aws:sns:{region}:123456789012:{NAME}-alarms")
}

async fn topics(c: &Clients) -> Vec<String> {
    c.sns
        .list_topics()
        .send()
        .await
        .unwrap()
        .topics()
        .iter()
        .filter_map(|t| t.topic_arn().map(str::to_string))
        .filter(|a| a.contains(NAME))
        .collect()
}

/// Endpoint → subscription ARN.
async fn subscriptions(c: &Clients, topic: &str) -> BTreeMap<String, String> {
    c.sns
        .list_subscriptions_by_topic()
        .topic_arn(topic)
        .send()
        .await
        .unwrap()
        .subscriptions()
        .iter()
        .map(|s| (s.endpoint().unwrap().to_string(), s.subscription_arn().unwrap().to_string()))
        .collect()
}

async fn alarms(c: &Clients) -> BTreeMap<String, aws_sdk_cloudwatch::types::MetricAlarm> {
    c.cw.describe_alarms()
        .alarm_name_prefix(format!("{NAME}-"))
        .send()
        .await
        .unwrap()
        .metric_alarms()
        .iter()
        .map(|a| (a.alarm_name().unwrap().trim_start_matches(&format!("{NAME}-")).to_string(), a.clone()))
        .collect()
}

async fn dashboard(c: &Clients) -> Option<Value> {
    let out = c.cw.get_dashboard().dashboard_name(NAME).send().await.ok()?;
    Some(serde_json::from_str(out.dashboard_body().unwrap()).unwrap())
}

fn dimension(a: &aws_sdk_cloudwatch::types::MetricAlarm, name: &str) -> Option<String> {
    a.dimensions().iter().find(|d| d.name() == Some(name)).and_then(|d| d.value()).map(str::to_string)
}

#[test]
fn up_builds_alarms_topics_and_the_dashboard_drift_is_repaired_and_destroy_removes_them() {
    let emu = Emulator::start();
    let project = Project::new();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let c: Vec<Clients> =
        rt.block_on(async { vec![clients(&emu, REGIONS[0]).await, clients(&emu, REGIONS[1]).await] });

    deployer_ok(&emu, &project, &["up", "--env", ENV, "--yes"]);

    for (i, region) in REGIONS.iter().enumerate() {
        let topic = topic_arn(region);
        assert_eq!(rt.block_on(topics(&c[i])), vec![topic.clone()], "{region}");
        let tags = rt.block_on(c[i].sns.list_tags_for_resource().resource_arn(&topic).send()).unwrap();
        assert!(
            tags.tags().iter().any(|t| t.key() == "deployer:address"
                && t.value() == format!("{region}/monitoring/sns-topic/alarms")),
            "tagged on create: {tags:?}"
        );
        let attributes = rt.block_on(c[i].sns.get_topic_attributes().topic_arn(&topic).send()).unwrap();
        let policy: Value = serde_json::from_str(&attributes.attributes().unwrap()["Policy"]).unwrap();
        let publishers: Vec<&str> = policy["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|s| s["Principal"]["Service"].as_str())
            .collect();
        assert!(
            publishers.contains(&"events.amazonaws.com") && publishers.contains(&"cloudwatch.amazonaws.com"),
            "{policy}"
        );
        // An email subscription waits for its owner, as on AWS.
        assert_eq!(
            rt.block_on(subscriptions(&c[i], &topic)),
            BTreeMap::from([(EMAIL.to_string(), "PendingConfirmation".to_string())])
        );

        let lb = rt.block_on(c[i].elb.describe_load_balancers().names(NAME).send()).unwrap().load_balancers()
            [0]
        .load_balancer_arn()
        .unwrap()
        .split_once("loadbalancer/")
        .unwrap()
        .1
        .to_string();
        let alarms = rt.block_on(alarms(&c[i]));
        let mut expected = vec![
            "alb-5xx-rate",
            "latency-p99",
            "unhealthy-hosts-blue",
            "unhealthy-hosts-green",
            "ecs-cpu",
            "ecs-memory",
            "db-cpu",
            "db-free-storage",
            "db-connections",
        ];
        if i == 1 {
            expected.push("replica-lag");
        } else {
            expected.extend(["health-check-us-east-1", "health-check-us-east-2"]);
        }
        for name in &expected {
            let a = alarms
                .get(*name)
                .unwrap_or_else(|| panic!("{region}: no alarm {name} in {:?}", alarms.keys()));
            assert_eq!(
                a.alarm_actions(),
                std::slice::from_ref(&topic),
                "{region} {name} notifies its region's topic"
            );
            assert_eq!(a.ok_actions(), std::slice::from_ref(&topic), "{region} {name} says when it recovers");
            assert_eq!(a.evaluation_periods(), Some(5));
        }
        assert_eq!(alarms["latency-p99"].extended_statistic(), Some("p99"));
        assert_eq!(alarms["latency-p99"].threshold(), Some(2.0), "2000 ms, in seconds");
        assert_eq!(dimension(&alarms["latency-p99"], "LoadBalancer"), Some(lb.clone()));
        let rate = &alarms["alb-5xx-rate"];
        assert_eq!(rate.metrics().len(), 4, "an expression over three metrics: {rate:?}");
        assert_eq!(alarms["ecs-cpu"].threshold(), Some(85.0));
        assert_eq!(dimension(&alarms["ecs-cpu"], "ServiceName").as_deref(), Some(NAME));
        assert_eq!(alarms["db-free-storage"].threshold(), Some(20.0 * 1024.0 * 1024.0 * 1024.0 * 0.1));
        // The release alarms stay as they were: they notify no one.
        assert!(alarms["blue-5xx"].alarm_actions().is_empty());
        if i == 0 {
            let checks = rt.block_on(async {
                let r53 = aws_sdk_route53::Client::new(&support::sdk_config(&emu, "us-east-1").await);
                r53.list_health_checks()
                    .send()
                    .await
                    .unwrap()
                    .health_checks()
                    .iter()
                    .map(|h| h.id().to_string())
                    .collect::<Vec<_>>()
            });
            for name in ["health-check-us-east-1", "health-check-us-east-2"] {
                let id = dimension(&alarms[name], "HealthCheckId").unwrap();
                assert!(
                    checks.contains(&id),
                    "{name} watches one of the environment's checks: {id} in {checks:?}"
                );
                assert_eq!(alarms[name].treat_missing_data(), Some("breaching"));
            }
        }
    }
    let board = rt.block_on(dashboard(&c[0])).expect("the dashboard");
    let widgets = board["widgets"].as_array().unwrap();
    let regions: std::collections::BTreeSet<&str> =
        widgets.iter().filter_map(|w| w["properties"]["region"].as_str()).collect();
    assert_eq!(regions, REGIONS.into_iter().collect(), "both regions side by side");
    assert!(widgets[0]["properties"]["markdown"]
        .as_str()
        .unwrap()
        .contains("Managed by deployer for webapp local"));

    // Converged: a second `up` sends no mutating request, and a pending subscription is not drift.
    emu.start_recording();
    let again = deployer_ok(&emu, &project, &["up", "--env", ENV, "--yes"]);
    emu.stop_recording();
    let sent: Vec<String> =
        emu.recorded_actions().into_iter().filter(|a| !support::is_read_action(a)).collect();
    assert_eq!(sent, Vec::<String>::new(), "{}", show_output(&again));

    // Out of band: a threshold changed, a widget added by hand, the subscription removed in us-east-2
    // (once confirmed it has an ARN and can be).
    emu.post_json("/_deployer/sns/confirm", json!({"endpoint": EMAIL}));
    deployer_ok(&emu, &project, &["drift", "--env", ENV]);
    rt.block_on(async {
        let a = alarms(&c[1]).await.remove("db-cpu").unwrap();
        c[1].cw
            .put_metric_alarm()
            .alarm_name(a.alarm_name().unwrap())
            .namespace(a.namespace().unwrap())
            .metric_name(a.metric_name().unwrap())
            .set_statistic(a.statistic().cloned())
            .period(60)
            .evaluation_periods(5)
            .threshold(99.0)
            .set_comparison_operator(a.comparison_operator().cloned())
            .set_dimensions(Some(a.dimensions().to_vec()))
            .set_alarm_actions(Some(a.alarm_actions().to_vec()))
            .set_ok_actions(Some(a.ok_actions().to_vec()))
            .set_alarm_description(a.alarm_description().map(str::to_string))
            .set_treat_missing_data(a.treat_missing_data().map(str::to_string))
            .send()
            .await
            .unwrap();
        let mut board = dashboard(&c[0]).await.unwrap();
        board["widgets"].as_array_mut().unwrap().push(json!({"type": "text", "x": 0, "y": 99, "width": 6, "height": 2, "properties": {"markdown": "mine"}}));
        c[0].cw.put_dashboard().dashboard_name(NAME).dashboard_body(board.to_string()).send().await.unwrap();
        let topic = topic_arn(REGIONS[1]);
        let arn = subscriptions(&c[1], &topic).await.remove(EMAIL).unwrap();
        c[1].sns.unsubscribe().subscription_arn(arn).send().await.unwrap();
    });
    let drift = deployer(&emu, &project, &["drift", "--env", ENV]);
    assert_eq!(drift.status.code(), Some(2), "{}", show_output(&drift));
    let text = stdout_text(&drift);
    for address in [
        "us-east-2/monitoring/metric-alarm/db-cpu",
        "global/monitoring/dashboard/main",
        "us-east-2/monitoring/sns-topic/alarms",
    ] {
        assert!(text.contains(address), "drift names {address}:\n{text}");
    }
    assert!(text.contains("99.0 -> 80.0"), "{text}");
    deployer_ok(&emu, &project, &["up", "--env", ENV, "--yes"]);
    deployer_ok(&emu, &project, &["drift", "--env", ENV]);
    assert_eq!(rt.block_on(alarms(&c[1]))["db-cpu"].threshold(), Some(80.0));
    assert_eq!(rt.block_on(dashboard(&c[0])).unwrap()["widgets"].as_array().unwrap().len(), widgets.len());
    assert_eq!(rt.block_on(subscriptions(&c[1], &topic_arn(REGIONS[1]))).len(), 1);

    // Taken out of the configuration, a confirmed subscription is removed.
    emu.post_json("/_deployer/sns/confirm", json!({"endpoint": EMAIL}));
    project.edit("local.toml", |t| t.replace(&format!("emails = [\"{EMAIL}\"]"), "emails = []"));
    deployer_ok(&emu, &project, &["up", "--env", ENV, "--yes"]);
    for (i, region) in REGIONS.iter().enumerate() {
        assert!(rt.block_on(subscriptions(&c[i], &topic_arn(region))).is_empty(), "{region}");
    }
    deployer_ok(&emu, &project, &["drift", "--env", ENV]);

    deployer_ok(&emu, &project, &["destroy", "--env", ENV, "--yes"]);
    for cl in &c {
        assert!(rt.block_on(topics(cl)).is_empty());
        assert!(rt.block_on(alarms(cl)).is_empty());
    }
    assert!(rt.block_on(dashboard(&c[0])).is_none());
}

/// Bad `[monitoring]` and `[drift]` values are refused before any request, naming the file and key.
#[test]
fn bad_monitoring_and_drift_config_is_refused_naming_the_file_and_key() {
    let emu = Emulator::start();
    for (setting, key) in [
        ("[monitoring]\nemails = [\"oncall\"]\n", "monitoring.emails"),
        ("[monitoring]\nhttps_endpoints = [\"http://hooks.example.com/x\"]\n", "monitoring.https_endpoints"),
        ("[monitoring]\nalb_5xx_percent = 0\n", "monitoring.alb_5xx_percent"),
        ("[monitoring]\npager = true\n", "pager"),
        ("[drift]\nschedule = \"rate(1 hours)\"\nimage = \"123456789012.dkr.ecr.us-east-1.amazonaws.com/deployer:1\"\n", "drift.schedule"),
        ("[drift]\nschedule = \"rate(6 hours)\"\n", "drift.image"),
    ] {
        let project = Project::new();
        project.edit("local.toml", |t| {
            // Replace the shipped section of the same name, if any, with the bad one.
            let section = setting.lines().next().unwrap();
            let kept: String = match t.find(&format!("\n{section}\n")) {
                Some(at) => {
                    let rest = &t[at + 1..];
                    let end = rest[1..].find("\n[").map_or(rest.len(), |n| n + 2);
                    format!("{}{}", &t[..at + 1], &rest[end..])
                }
                None => t.clone(),
            };
            format!("{kept}\n{setting}")
        });
        emu.start_recording();
        let out = deployer(&emu, &project, &["plan", "--env", ENV]);
        emu.stop_recording();
        assert_eq!(out.status.code(), Some(1), "{setting}: {}", show_output(&out));
        let err = support::stderr_text(&out);
        assert!(err.contains("local.toml") && err.contains(key), "{setting}: names the file and {key}:\n{err}");
        assert_eq!(emu.recorded_actions(), Vec::<String>::new(), "{setting}: no request");
    }
}
