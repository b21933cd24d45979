//! What a converged run costs in AWS reads, whatever else the account holds.
//!
//! Every kind lists its own resources with its service's call (by name prefix where the service
//! takes one) and reads their tags from the region's Resource Groups Tagging API index
//! (`src/resources/tagging.rs`), never one resource of the account at a time. So the reads of a
//! converged `up` of the full stack are the same with or without fifty resources of another
//! application in every tagged service the deployer uses, in both regions: counted from the
//! emulator's own recording, by operation.

mod support;

use std::collections::BTreeMap;

use serde_json::json;
use support::{deployer_ok, show_output, Emulator, Project};

const ENV: &str = "local";
const FOREIGN: usize = 50;
/// SNS topics of another application per region: more than one `ListTopics` page (100), which
/// lists every topic of the account, so a discovery that listed them would read more.
const FOREIGN_TOPICS: usize = 120;
const REGIONS: [&str; 2] = ["us-east-1", "us-east-2"];

/// The shipped local configuration with every tier on and the scheduled drift check.
fn full_project() -> Project {
    let project = Project::new();
    project.edit("local.toml", |t| {
        format!(
            "{t}\n[drift]\nschedule = \"rate(6 hours)\"\nimage = \"123456789012.dkr.ecr.us-east-1.amazonaws.com/deployer:1.0.0\"\n"
        )
    });
    project
}

/// The operations a converged `up` sends, each with how many times: reads only (it changes
/// nothing, which is checked here too).
fn converged_reads(emu: &Emulator, project: &Project) -> BTreeMap<String, usize> {
    emu.start_recording();
    let out = deployer_ok(emu, project, &["up", "--env", ENV, "--yes"]);
    emu.stop_recording();
    let mut reads = BTreeMap::new();
    for action in emu.recorded_actions() {
        assert!(support::is_read_action(&action), "a converged up sent {action}: {}", show_output(&out));
        *reads.entry(action).or_insert(0) += 1;
    }
    reads
}

/// Fifty resources of another application in each tagged service the deployer lists, in
/// `region`: ACM certificates, CloudWatch alarms, log groups, ECR repositories, EventBridge
/// rules, Scheduler groups and CodeDeploy applications; 120 SNS topics ([`FOREIGN_TOPICS`]);
/// and, once, Route 53 health checks ([`plant_foreign_health_checks`]).
async fn plant_foreign(emu: &Emulator, region: &'static str) {
    let config = support::sdk_config(emu, region).await;
    let acm = aws_sdk_acm::Client::new(&config);
    let cw = aws_sdk_cloudwatch::Client::new(&config);
    let sns = aws_sdk_sns::Client::new(&config);
    let logs = aws_sdk_cloudwatchlogs::Client::new(&config);
    let ecr = aws_sdk_ecr::Client::new(&config);
    let events = aws_sdk_eventbridge::Client::new(&config);
    let scheduler = aws_sdk_scheduler::Client::new(&config);
    let codedeploy = aws_sdk_codedeploy::Client::new(&config);
    for i in 0..FOREIGN_TOPICS {
        sns.create_topic()
            .name(format!("billing-prod-{i}"))
            .tags(aws_sdk_sns::types::Tag::builder().key("team").value("billing").build().unwrap())
            .send()
            .await
            .unwrap();
    }
    for i in 0..FOREIGN {
        let name = format!("billing-prod-{i}");
        acm.request_certificate()
            .domain_name(format!("{name}.example.org"))
            .validation_method(aws_sdk_acm::types::ValidationMethod::Dns)
            .tags(aws_sdk_acm::types::Tag::builder().key("team").value("billing").build().unwrap())
            .send()
            .await
            .unwrap();
        cw.put_metric_alarm()
            .alarm_name(&name)
            .namespace("AWS/ApplicationELB")
            .metric_name("HTTPCode_Target_5XX_Count")
            .statistic(aws_sdk_cloudwatch::types::Statistic::Sum)
            .period(60)
            .evaluation_periods(1)
            .threshold(1.0)
            .comparison_operator(aws_sdk_cloudwatch::types::ComparisonOperator::GreaterThanThreshold)
            .tags(aws_sdk_cloudwatch::types::Tag::builder().key("team").value("billing").build())
            .send()
            .await
            .unwrap();
        logs.create_log_group()
            .log_group_name(format!("/ecs/{name}"))
            .tags("team", "billing")
            .send()
            .await
            .unwrap();
        ecr.create_repository()
            .repository_name(&name)
            .tags(aws_sdk_ecr::types::Tag::builder().key("team").value("billing").build().unwrap())
            .send()
            .await
            .unwrap();
        events
            .put_rule()
            .name(&name)
            .schedule_expression("rate(1 hour)")
            .tags(aws_sdk_eventbridge::types::Tag::builder().key("team").value("billing").build().unwrap())
            .send()
            .await
            .unwrap();
        scheduler
            .create_schedule_group()
            .name(&name)
            .tags(aws_sdk_scheduler::types::Tag::builder().key("team").value("billing").build().unwrap())
            .send()
            .await
            .unwrap();
        codedeploy
            .create_application()
            .application_name(&name)
            .compute_platform(aws_sdk_codedeploy::types::ComputePlatform::Ecs)
            .tags(aws_sdk_codedeploy::types::Tag::builder().key("team").value("billing").build())
            .send()
            .await
            .unwrap();
    }
}

/// Fifty Route 53 health checks of another application (Route 53 is global), tagged as theirs.
async fn plant_foreign_health_checks(emu: &Emulator) {
    use aws_sdk_route53::types::{HealthCheckConfig, HealthCheckType, Tag, TagResourceType};
    let r53 = aws_sdk_route53::Client::new(&support::sdk_config(emu, "us-east-1").await);
    for i in 0..FOREIGN {
        let config = HealthCheckConfig::builder()
            .r#type(HealthCheckType::Https)
            .fully_qualified_domain_name(format!("billing-prod-{i}.example.org"))
            .port(443)
            .resource_path("/health")
            .build()
            .unwrap();
        let check = r53
            .create_health_check()
            .caller_reference(format!("billing-prod-{i}"))
            .health_check_config(config)
            .send()
            .await
            .unwrap();
        r53.change_tags_for_resource()
            .resource_type(TagResourceType::Healthcheck)
            .resource_id(check.health_check().unwrap().id())
            .add_tags(Tag::builder().key("team").value("billing").build())
            .send()
            .await
            .unwrap();
    }
}

#[test]
fn a_converged_up_reads_the_same_with_fifty_foreign_resources_in_every_tagged_service() {
    let emu = Emulator::start();
    let project = full_project();
    deployer_ok(&emu, &project, &["up", "--env", ENV, "--yes", "-q"]);
    let alone = converged_reads(&emu, &project);

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        for region in REGIONS {
            plant_foreign(&emu, region).await;
        }
        plant_foreign_health_checks(&emu).await;
    });
    // The account's other certificates have been there for a while: only a certificate younger
    // than the tagging index may be behind (an hour) is read the ACM way when the index does not
    // hold it (src/resources/acm_certificate.rs, INDEX_LAG).
    emu.post_json("/_deployer/acm/backdate", json!({"hours": 2}));
    let crowded = converged_reads(&emu, &project);

    let total: usize = alone.values().sum();
    eprintln!("a converged up of the full stack: {total} reads, with or without {FOREIGN} foreign resources");
    assert_eq!(crowded, alone, "the reads grew with the account's other resources");
    assert!(total > 50, "a converged up of the full stack reads every kind: {alone:#?}");
    // The release preview takes each region's service and revision from the plan's read: one
    // DescribeServices per region, one DescribeTaskDefinition per family (the application's and
    // the drift check's) per region.
    assert_eq!(alone.get("DescribeServices"), Some(&2), "{alone:#?}");
    assert_eq!(alone.get("DescribeTaskDefinition"), Some(&4), "{alone:#?}");
}
