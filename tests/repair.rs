//! Every kind's in-place repair, end to end: with every tier on (the drift schedule and a custom
//! canary included), a tag taken off one resource of each service and a field changed by hand on
//! one resource of each kind that updates in place are all found by `drift` (exit 2) and put
//! back by one `up`, judged by each service's own answers; then configuration changes that only
//! an update makes (the group's termination wait, a log group's KMS key on and off, a predefined
//! deployment configuration instead of the custom one) and two releases in a row (the second
//! ends the first's termination wait). Each of these is a call no other scenario makes: this is
//! what holds `deployer iam-policy` to "none unused" (tests/iam_policy.rs).

mod support;

use serde_json::json;
use support::{deployer, deployer_ok, show_output, stdout_text, Emulator, Project};

const ENV: &str = "local";
const NAME: &str = "webapp-local";
const ACCOUNT: &str = "123456789012";
const TAG: &str = "deployer:managed-by";

struct C {
    acm: aws_sdk_acm::Client,
    cw: aws_sdk_cloudwatch::Client,
    cd: aws_sdk_codedeploy::Client,
    ecr: aws_sdk_ecr::Client,
    ecs: aws_sdk_ecs::Client,
    elb: aws_sdk_elasticloadbalancingv2::Client,
    events: aws_sdk_eventbridge::Client,
    iam: aws_sdk_iam::Client,
    logs: aws_sdk_cloudwatchlogs::Client,
    scheduler: aws_sdk_scheduler::Client,
    sns: aws_sdk_sns::Client,
    r53: aws_sdk_route53::Client,
    ec2: aws_sdk_ec2::Client,
}

async fn clients(emu: &Emulator, region: &'static str) -> C {
    let c = support::sdk_config(emu, region).await;
    C {
        acm: aws_sdk_acm::Client::new(&c),
        cw: aws_sdk_cloudwatch::Client::new(&c),
        cd: aws_sdk_codedeploy::Client::new(&c),
        ecr: aws_sdk_ecr::Client::new(&c),
        ecs: aws_sdk_ecs::Client::new(&c),
        elb: aws_sdk_elasticloadbalancingv2::Client::new(&c),
        events: aws_sdk_eventbridge::Client::new(&c),
        iam: aws_sdk_iam::Client::new(&c),
        logs: aws_sdk_cloudwatchlogs::Client::new(&c),
        scheduler: aws_sdk_scheduler::Client::new(&c),
        sns: aws_sdk_sns::Client::new(&c),
        r53: aws_sdk_route53::Client::new(&c),
        ec2: aws_sdk_ec2::Client::new(&c),
    }
}

fn arn(service: &str, region: &str, resource: &str) -> String {
    format!("arn:aws:{service}:{region}:{ACCOUNT}:{resource}")
}

/// Takes the `deployer:managed-by` tag off one resource of every service that tags.
async fn untag_everything(c: &C, emu: &Emulator) {
    let r = "us-east-1";
    let cert = c.acm.list_certificates().send().await.unwrap().certificate_summary_list()[0]
        .certificate_arn()
        .unwrap()
        .to_string();
    let cert_tag = c.acm.list_tags_for_certificate().certificate_arn(&cert).send().await.unwrap();
    let t = cert_tag.tags().iter().find(|t| t.key() == TAG).unwrap().clone();
    c.acm.remove_tags_from_certificate().certificate_arn(&cert).tags(t).send().await.unwrap();
    c.cw.untag_resource()
        .resource_arn(arn("cloudwatch", r, &format!("alarm:{NAME}-db-cpu")))
        .tag_keys(TAG)
        .send()
        .await
        .unwrap();
    c.cd.untag_resource()
        .resource_arn(arn("codedeploy", r, &format!("application:{NAME}")))
        .tag_keys(TAG)
        .send()
        .await
        .unwrap();
    c.ecr
        .untag_resource()
        .resource_arn(arn("ecr", r, &format!("repository/{NAME}")))
        .tag_keys(TAG)
        .send()
        .await
        .unwrap();
    c.ecs
        .untag_resource()
        .resource_arn(arn("ecs", r, &format!("cluster/{NAME}")))
        .tag_keys(TAG)
        .send()
        .await
        .unwrap();
    let lb = c.elb.describe_load_balancers().names(NAME).send().await.unwrap().load_balancers()[0]
        .load_balancer_arn()
        .unwrap()
        .to_string();
    c.elb.remove_tags().resource_arns(&lb).tag_keys(TAG).send().await.unwrap();
    c.events
        .untag_resource()
        .resource_arn(arn("events", r, &format!("rule/{NAME}-drift-found")))
        .tag_keys(TAG)
        .send()
        .await
        .unwrap();
    c.iam.untag_role().role_name(format!("{NAME}-task")).tag_keys(TAG).send().await.unwrap();
    c.iam
        .untag_policy()
        .policy_arn(format!("arn:aws:iam::{ACCOUNT}:policy/deployer/webapp/local/{NAME}-boundary"))
        .tag_keys(TAG)
        .send()
        .await
        .unwrap();
    c.logs
        .untag_resource()
        .resource_arn(arn("logs", r, &format!("log-group:/ecs/{NAME}")))
        .tag_keys(TAG)
        .send()
        .await
        .unwrap();
    c.scheduler
        .untag_resource()
        .resource_arn(arn("scheduler", r, &format!("schedule-group/{NAME}")))
        .tag_keys(TAG)
        .send()
        .await
        .unwrap();
    c.sns
        .untag_resource()
        .resource_arn(arn("sns", r, &format!("{NAME}-alarms")))
        .tag_keys(TAG)
        .send()
        .await
        .unwrap();
    let _ = emu;
}

/// Changes by hand what each kind updates in place.
async fn change_everything(c: &C) {
    let r = "us-east-1";
    // IAM: another trust, another description, a managed policy attached.
    let role = format!("{NAME}-task");
    c.iam
        .update_assume_role_policy()
        .role_name(&role)
        .policy_document(
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    c.iam.update_role().role_name(&role).description("changed by hand").send().await.unwrap();
    let policy = c
        .iam
        .create_policy()
        .policy_name("by-hand")
        .policy_document(json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}).to_string())
        .send()
        .await
        .unwrap();
    c.iam
        .attach_role_policy()
        .role_name(&role)
        .policy_arn(policy.policy().unwrap().arn().unwrap())
        .send()
        .await
        .unwrap();
    // Load balancing: a target group's health check, the load balancer's groups and subnets.
    let tg =
        c.elb.describe_target_groups().names(format!("{NAME}-blue")).send().await.unwrap().target_groups()[0]
            .target_group_arn()
            .unwrap()
            .to_string();
    c.elb.modify_target_group().target_group_arn(&tg).health_check_path("/by-hand").send().await.unwrap();
    let lb = c.elb.describe_load_balancers().names(NAME).send().await.unwrap().load_balancers()[0].clone();
    let vpc = lb.vpc_id().unwrap().to_string();
    let default_sg = c
        .ec2
        .describe_security_groups()
        .filters(aws_sdk_ec2::types::Filter::builder().name("vpc-id").values(&vpc).build())
        .filters(aws_sdk_ec2::types::Filter::builder().name("group-name").values("default").build())
        .send()
        .await
        .unwrap()
        .security_groups()[0]
        .group_id()
        .unwrap()
        .to_string();
    c.elb
        .set_security_groups()
        .load_balancer_arn(lb.load_balancer_arn().unwrap())
        .security_groups(default_sg)
        .send()
        .await
        .unwrap();
    let private: Vec<String> = c
        .ec2
        .describe_subnets()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("tag:Name")
                .values(format!("{NAME}-subnet-private-*"))
                .build(),
        )
        .send()
        .await
        .unwrap()
        .subnets()
        .iter()
        .filter(|s| s.vpc_id() == Some(vpc.as_str()))
        .filter_map(|s| s.subnet_id().map(str::to_string))
        .collect();
    c.elb
        .set_subnets()
        .load_balancer_arn(lb.load_balancer_arn().unwrap())
        .set_subnets(Some(private))
        .send()
        .await
        .unwrap();
    // ECS: Container Insights off, one capacity provider.
    c.ecs
        .update_cluster()
        .cluster(NAME)
        .settings(
            aws_sdk_ecs::types::ClusterSetting::builder()
                .name(aws_sdk_ecs::types::ClusterSettingName::ContainerInsights)
                .value("disabled")
                .build(),
        )
        .send()
        .await
        .unwrap();
    c.ecs
        .put_cluster_capacity_providers()
        .cluster(NAME)
        .capacity_providers("FARGATE")
        .set_default_capacity_provider_strategy(Some(vec![]))
        .send()
        .await
        .unwrap();
    // ECR: scanning off, tags immutable.
    c.ecr
        .put_image_scanning_configuration()
        .repository_name(NAME)
        .image_scanning_configuration(
            aws_sdk_ecr::types::ImageScanningConfiguration::builder().scan_on_push(false).build(),
        )
        .send()
        .await
        .unwrap();
    c.ecr
        .put_image_tag_mutability()
        .repository_name(NAME)
        .image_tag_mutability(aws_sdk_ecr::types::ImageTagMutability::Immutable)
        .send()
        .await
        .unwrap();
    // SNS: a topic policy that lets anyone publish.
    c.sns
        .set_topic_attributes()
        .topic_arn(arn("sns", r, &format!("{NAME}-alarms")))
        .attribute_name("Policy")
        .attribute_value(
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "sns:Publish", "Resource": "*"}]})
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    // Route 53: a health check's failure threshold.
    let check = c.r53.list_health_checks().send().await.unwrap().health_checks()[0].id().to_string();
    c.r53.update_health_check().health_check_id(check).failure_threshold(9).send().await.unwrap();
    // Scheduler: a schedule nobody asked for in the environment's group.
    let drift = c.scheduler.get_schedule().group_name(NAME).name("drift").send().await.unwrap();
    c.scheduler
        .create_schedule()
        .group_name(NAME)
        .name("by-hand")
        .schedule_expression("rate(1 day)")
        .set_flexible_time_window(drift.flexible_time_window().cloned())
        .set_target(drift.target().cloned())
        .send()
        .await
        .unwrap();
    // EC2: a private subnet moved to the public route table by hand.
    let tables = c
        .ec2
        .describe_route_tables()
        .filters(aws_sdk_ec2::types::Filter::builder().name("tag:deployer:env").values(ENV).build())
        .send()
        .await
        .unwrap();
    let by_address = |a: &str| {
        tables
            .route_tables()
            .iter()
            .find(|t| {
                t.tags().iter().any(|tag| tag.key() == Some("deployer:address") && tag.value() == Some(a))
            })
            .unwrap()
            .clone()
    };
    let private_a = by_address(&format!("{r}/network/route-table/private-a"));
    let public = by_address(&format!("{r}/network/route-table/public"));
    let association = private_a.associations().iter().find(|a| a.subnet_id().is_some()).unwrap();
    let subnet = association.subnet_id().unwrap().to_string();
    c.ec2
        .disassociate_route_table()
        .association_id(association.route_table_association_id().unwrap())
        .send()
        .await
        .unwrap();
    c.ec2
        .associate_route_table()
        .route_table_id(public.route_table_id().unwrap())
        .subnet_id(subnet)
        .send()
        .await
        .unwrap();
}

#[test]
fn every_kind_s_tags_and_in_place_fields_are_repaired_and_its_updates_are_made() {
    let emu = Emulator::start();
    let project = Project::new();
    project.edit("local.toml", |t| {
        format!(
            "{}\n[drift]\nschedule = \"rate(6 hours)\"\nimage = \"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/deployer:1.0.0\"\n",
            t.replace("[release]\n", "[release]\ndeployment_config = \"canary\"\ntraffic_percent = 20\ninterval_minutes = 2\n")
        )
    });
    let rt = tokio::runtime::Runtime::new().unwrap();
    let c = rt.block_on(clients(&emu, "us-east-1"));
    deployer_ok(&emu, &project, &["up", "--env", ENV, "--yes"]);
    assert!(
        rt.block_on(
            c.cd.get_deployment_config().deployment_config_name(format!("{NAME}-canary-20pct-2min")).send()
        )
        .is_ok(),
        "the custom canary exists"
    );

    rt.block_on(untag_everything(&c, &emu));
    rt.block_on(change_everything(&c));
    let drift = deployer(&emu, &project, &["drift", "--env", ENV]);
    assert_eq!(drift.status.code(), Some(2), "{}", show_output(&drift));
    let text = stdout_text(&drift);
    for address in [
        "us-east-1/service/acm-certificate/main",
        "us-east-1/monitoring/metric-alarm/db-cpu",
        "us-east-1/release/codedeploy-app/main",
        "us-east-1/registry/ecr-repository/main",
        "us-east-1/service/ecs-cluster/main",
        "us-east-1/service/load-balancer/main",
        "us-east-1/drift/event-rule/drift-found",
        "global/iam/iam-role/task",
        "global/iam/iam-boundary/roles",
        "us-east-1/service/log-group/app",
        "us-east-1/drift/schedule-group/main",
        "us-east-1/monitoring/sns-topic/alarms",
        "us-east-1/service/target-group/blue",
        "us-east-1/network/route-table-association/private-a",
    ] {
        assert!(text.contains(address), "drift names {address}:\n{text}");
    }
    assert!(text.contains("global/dns/health-check/"), "{text}");
    let repaired = deployer_ok(&emu, &project, &["up", "--env", ENV, "--yes"]);
    let clean = deployer(&emu, &project, &["drift", "--env", ENV]);
    assert_eq!(clean.status.code(), Some(0), "{}\n{}", show_output(&repaired), show_output(&clean));
    rt.block_on(async {
        let tags = c
            .sns
            .list_tags_for_resource()
            .resource_arn(arn("sns", "us-east-1", &format!("{NAME}-alarms")))
            .send()
            .await
            .unwrap();
        assert!(tags.tags().iter().any(|t| t.key() == TAG), "tag put back");
        let role =
            c.iam.list_attached_role_policies().role_name(format!("{NAME}-task")).send().await.unwrap();
        assert!(role.attached_policies().is_empty(), "the managed policy attached by hand is detached");
        let schedules = c.scheduler.list_schedules().group_name(NAME).send().await.unwrap();
        assert_eq!(schedules.schedules().len(), 1, "the schedule added by hand is gone");
        let repo = c.ecr.describe_repositories().repository_names(NAME).send().await.unwrap();
        assert_eq!(repo.repositories()[0].image_tag_mutability().map(|m| m.as_str()), Some("MUTABLE"));
        assert!(repo.repositories()[0].image_scanning_configuration().is_some_and(|s| s.scan_on_push()));
        let lb = c.elb.describe_load_balancers().names(NAME).send().await.unwrap();
        assert_eq!(lb.load_balancers()[0].availability_zones().len(), 2);
        let tg = c.elb.describe_target_groups().names(format!("{NAME}-blue")).send().await.unwrap();
        assert_ne!(tg.target_groups()[0].health_check_path(), Some("/by-hand"));
    });

    // Changes only an update makes: the termination wait, a log group's key on, a predefined
    // deployment configuration instead of the custom one.
    let key = |r: &str| format!("arn:aws:kms:{r}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab");
    project.edit("local.toml", |t| {
        t.replace(
            "deployment_config = \"canary\"\ntraffic_percent = 20\ninterval_minutes = 2\n",
            "termination_wait_minutes = 120\n",
        )
        .replace(
            "[service]\n",
            &format!(
                "[service.log_kms_key]\nus-east-1 = \"{}\"\nus-east-2 = \"{}\"\n\n[service]\n",
                key("us-east-1"),
                key("us-east-2")
            ),
        )
    });
    deployer_ok(&emu, &project, &["up", "--env", ENV, "--yes"]);
    rt.block_on(async {
        let group =
            c.logs.describe_log_groups().log_group_name_prefix(format!("/ecs/{NAME}")).send().await.unwrap();
        assert_eq!(group.log_groups()[0].kms_key_id(), Some(key("us-east-1").as_str()));
        assert!(c
            .cd
            .get_deployment_config()
            .deployment_config_name(format!("{NAME}-canary-20pct-2min"))
            .send()
            .await
            .is_err());
    });

    // Two releases in a row: the second ends the first's termination wait in each region.
    rt.block_on(async {
        support::push_image(&c.ecr, NAME, "v2").await;
        support::push_image(&c.ecr, NAME, "v3").await;
    });
    deployer_ok(&emu, &project, &["up", "--env", ENV, "--yes", "--image", "v2"]);
    let second = deployer_ok(&emu, &project, &["up", "--env", ENV, "--yes", "--image", "v3"]);
    assert!(emu.actions().contains_key("codedeploy:ContinueDeployment"), "{}", show_output(&second));

    // The key off again.
    project.edit("local.toml", |t| {
        let start = t.find("[service.log_kms_key]").unwrap();
        let end = start + t[start..].find("\n\n").unwrap() + 2;
        format!("{}{}", &t[..start], &t[end..])
    });
    deployer_ok(&emu, &project, &["up", "--env", ENV, "--yes", "--image", "v3"]);
    rt.block_on(async {
        let group =
            c.logs.describe_log_groups().log_group_name_prefix(format!("/ecs/{NAME}")).send().await.unwrap();
        assert_eq!(group.log_groups()[0].kms_key_id(), None);
    });
    let clean = deployer(&emu, &project, &["drift", "--env", ENV]);
    assert_eq!(clean.status.code(), Some(0), "{}", show_output(&clean));
}
