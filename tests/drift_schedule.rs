//! The scheduled drift check in AWS, end to end, judged by the emulator's own answers: with
//! `[drift] schedule` set, `up` makes the schedule (in a tagged group) that runs the deployer's
//! image as a Fargate task in the primary's cluster and private subnets, the task definition
//! (`drift --env local --output json`, the configured image, the read-only role), that role
//! (only describe, list and get actions, and every one `drift` itself sends), the role
//! Scheduler assumes, and the rule that sends an exit code 2 to the alarm topic. A second `up`
//! sends nothing; a schedule changed by hand is drift that `up` repairs; without `[drift]` none
//! of it is left.

mod support;

use serde_json::Value;
use support::{deployer, deployer_ok, show_output, stdout_text, Emulator, Project};

const ENV: &str = "local";
const NAME: &str = "webapp-local";
const IMAGE: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/deployer:1.0.0";
const DRIFT: &str = "\n[drift]\nschedule = \"rate(6 hours)\"\nimage = \"123456789012.dkr.ecr.us-east-1.amazonaws.com/deployer:1.0.0\"\n";

struct Clients {
    scheduler: aws_sdk_scheduler::Client,
    ecs: aws_sdk_ecs::Client,
    ec2: aws_sdk_ec2::Client,
    events: aws_sdk_eventbridge::Client,
    iam: aws_sdk_iam::Client,
}

async fn clients(emu: &Emulator) -> Clients {
    let c = support::sdk_config(emu, "us-east-1").await;
    Clients {
        scheduler: aws_sdk_scheduler::Client::new(&c),
        ecs: aws_sdk_ecs::Client::new(&c),
        ec2: aws_sdk_ec2::Client::new(&c),
        events: aws_sdk_eventbridge::Client::new(&c),
        iam: aws_sdk_iam::Client::new(&c),
    }
}

fn decoded(document: &str) -> Value {
    let text = percent_encoding::percent_decode_str(document).decode_utf8_lossy().to_string();
    serde_json::from_str(&text).unwrap()
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect(),
        _ => vec![],
    }
}

/// The actions a role's inline policies allow, and its trust policy.
async fn role(iam: &aws_sdk_iam::Client, name: &str) -> Option<(Vec<String>, Value)> {
    let got = iam.get_role().role_name(name).send().await.ok()?;
    let trust = decoded(got.role().unwrap().assume_role_policy_document().unwrap());
    let mut actions = Vec::new();
    for policy in iam.list_role_policies().role_name(name).send().await.unwrap().policy_names() {
        let doc = iam.get_role_policy().role_name(name).policy_name(policy).send().await.unwrap();
        for s in decoded(doc.policy_document()).get("Statement").and_then(Value::as_array).unwrap() {
            actions.extend(strings(&s["Action"]));
        }
    }
    Some((actions, trust))
}

fn is_read(action: &str) -> bool {
    let op = action.split_once(':').map_or(action, |(_, op)| op);
    ["Describe", "List", "Get", "BatchGet"].iter().any(|p| op.starts_with(p))
}

#[test]
fn a_drift_schedule_runs_the_deployer_read_only_and_reports_exit_2_to_the_topic() {
    let emu = Emulator::start();
    let project = Project::new();
    project.disable("database");
    project.edit("local.toml", |t| format!("{t}{DRIFT}"));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let c = rt.block_on(clients(&emu));

    deployer_ok(&emu, &project, &["up", "--env", ENV, "--yes"]);

    // The schedule, in the environment's tagged group, running one Fargate task.
    let group = rt.block_on(c.scheduler.get_schedule_group().name(NAME).send()).unwrap();
    let tags =
        rt.block_on(c.scheduler.list_tags_for_resource().resource_arn(group.arn().unwrap()).send()).unwrap();
    assert!(tags
        .tags()
        .iter()
        .any(|t| t.key() == "deployer:address" && t.value() == "us-east-1/drift/schedule-group/main"));
    let schedule = rt.block_on(c.scheduler.get_schedule().group_name(NAME).name("drift").send()).unwrap();
    assert_eq!(schedule.schedule_expression(), Some("rate(6 hours)"));
    let target = schedule.target().unwrap();
    assert_eq!(target.arn(), format!("arn:aws:ecs:us-east-1:123456789012:cluster/{NAME}"));
    assert!(
        target.role_arn().ends_with(&format!("role/deployer/webapp/local/{NAME}-drift-scheduler")),
        "{target:?}"
    );
    let ecs = target.ecs_parameters().unwrap();
    assert_eq!(
        ecs.task_definition_arn(),
        format!("arn:aws:ecs:us-east-1:123456789012:task-definition/{NAME}-drift")
    );
    assert_eq!(ecs.launch_type().map(|l| l.as_str()), Some("FARGATE"));
    let vpc = ecs.network_configuration().unwrap().awsvpc_configuration().unwrap();
    let private: Vec<String> = rt.block_on(async {
        let out = c
            .ec2
            .describe_subnets()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("tag:Name")
                    .values("webapp-local-subnet-private-*")
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let mut ids: Vec<String> =
            out.subnets().iter().filter_map(|s| s.subnet_id().map(str::to_string)).collect();
        ids.sort();
        ids
    });
    let mut subnets = vpc.subnets().to_vec();
    subnets.sort();
    assert_eq!(subnets, private, "the task runs in the primary's private subnets");
    assert_eq!(vpc.assign_public_ip().map(|a| a.as_str()), Some("DISABLED"));

    // The task it runs: the deployer's image, `drift --output json`, under the read-only role.
    let td = rt
        .block_on(c.ecs.describe_task_definition().task_definition(format!("{NAME}-drift")).send())
        .unwrap()
        .task_definition()
        .unwrap()
        .clone();
    let container = &td.container_definitions()[0];
    assert_eq!(container.image(), Some(IMAGE));
    assert_eq!(container.command(), ["drift", "--env", ENV, "--output", "json"]);
    assert!(container.environment().iter().any(|e| e.name() == Some("DEPLOYER_NO_ASSUME_ROLE")));
    assert!(td.task_role_arn().unwrap().ends_with(&format!("{NAME}-drift-check")));
    assert!(container.port_mappings().is_empty(), "it serves nothing");

    // The read-only role: only reads, and every read `drift` sends (as the emulator counts them).
    let (check_actions, trust) = rt.block_on(role(&c.iam, &format!("{NAME}-drift-check"))).unwrap();
    assert_eq!(trust["Statement"][0]["Principal"]["Service"], "ecs-tasks.amazonaws.com");
    let writes: Vec<&String> = check_actions.iter().filter(|a| !is_read(a)).collect();
    assert!(writes.is_empty(), "the drift check's role must only read: {writes:?}");
    let before = emu.actions();
    deployer_ok(&emu, &project, &["drift", "--env", ENV]);
    let sent: Vec<String> = emu
        .actions()
        .into_iter()
        .filter(|(a, n)| before.get(a) != Some(n))
        .map(|(a, _)| a)
        .filter(|a| a != "sts:GetCallerIdentity") // needs no permission
        .collect();
    assert!(!sent.is_empty());
    let missing: Vec<&String> = sent.iter().filter(|a| !check_actions.contains(a)).collect();
    assert!(missing.is_empty(), "`drift` sent actions its role does not grant: {missing:?}");
    let (scheduler_actions, scheduler_trust) =
        rt.block_on(role(&c.iam, &format!("{NAME}-drift-scheduler"))).unwrap();
    assert_eq!(scheduler_trust["Statement"][0]["Principal"]["Service"], "scheduler.amazonaws.com");
    let mut scheduler_actions = scheduler_actions;
    scheduler_actions.sort();
    assert_eq!(scheduler_actions, ["ecs:RunTask", "iam:PassRole"]);

    // Exit code 2 goes to the alarm topic.
    let rule = rt.block_on(c.events.describe_rule().name(format!("{NAME}-drift-found")).send()).unwrap();
    let pattern: Value = serde_json::from_str(rule.event_pattern().unwrap()).unwrap();
    assert_eq!(pattern["detail"]["containers"]["exitCode"], serde_json::json!([2]));
    assert_eq!(pattern["detail"]["group"], serde_json::json!([format!("family:{NAME}-drift")]));
    let targets =
        rt.block_on(c.events.list_targets_by_rule().rule(format!("{NAME}-drift-found")).send()).unwrap();
    assert_eq!(targets.targets().len(), 1);
    assert_eq!(targets.targets()[0].arn(), format!("arn:aws:sns:us-east-1:123456789012:{NAME}-alarms"));
    assert!(targets.targets()[0].input_transformer().unwrap().input_template().contains("drift-alert.md"));

    // Converged: nothing sent.
    emu.start_recording();
    let again = deployer_ok(&emu, &project, &["up", "--env", ENV, "--yes"]);
    emu.stop_recording();
    let changes: Vec<String> =
        emu.recorded_actions().into_iter().filter(|a| !support::is_read_action(a)).collect();
    assert_eq!(changes, Vec::<String>::new(), "{}", show_output(&again));

    // A schedule changed by hand is drift; `up` puts it back.
    rt.block_on(async {
        let s = c.scheduler.get_schedule().group_name(NAME).name("drift").send().await.unwrap();
        c.scheduler
            .update_schedule()
            .group_name(NAME)
            .name("drift")
            .schedule_expression("rate(7 days)")
            .set_flexible_time_window(s.flexible_time_window().cloned())
            .set_target(s.target().cloned())
            .send()
            .await
            .unwrap();
    });
    let drift = deployer(&emu, &project, &["drift", "--env", ENV]);
    assert_eq!(drift.status.code(), Some(2), "{}", show_output(&drift));
    assert!(stdout_text(&drift).contains("us-east-1/drift/schedule-group/main"), "{}", stdout_text(&drift));
    deployer_ok(&emu, &project, &["up", "--env", ENV, "--yes"]);
    let s = rt.block_on(c.scheduler.get_schedule().group_name(NAME).name("drift").send()).unwrap();
    assert_eq!(s.schedule_expression(), Some("rate(6 hours)"));

    // Without [drift], nothing of it is left.
    project.edit("local.toml", |t| t.replace(DRIFT, ""));
    deployer_ok(&emu, &project, &["up", "--env", ENV, "--yes"]);
    assert!(rt.block_on(c.scheduler.get_schedule_group().name(NAME).send()).is_err());
    assert!(rt.block_on(c.events.describe_rule().name(format!("{NAME}-drift-found")).send()).is_err());
    assert!(rt.block_on(role(&c.iam, &format!("{NAME}-drift-check"))).is_none());
    assert!(rt.block_on(role(&c.iam, &format!("{NAME}-drift-scheduler"))).is_none());
    let active = rt
        .block_on(c.ecs.list_task_definitions().family_prefix(format!("{NAME}-drift")).send())
        .unwrap()
        .task_definition_arns()
        .to_vec();
    assert!(active.is_empty(), "{active:?}");
    deployer_ok(&emu, &project, &["drift", "--env", ENV]);
}

/// Every create of the monitoring and drift tiers with its first answer lost (applied by AWS,
/// answered 500, retried by the SDK): one `up` converges, with one of each and no duplicate.
#[test]
fn monitoring_and_drift_creates_with_their_first_answer_lost_converge_without_duplicates() {
    let project = Project::new();
    project.disable("database");
    project.edit("local.toml", |t| format!("{t}{DRIFT}"));
    for op in [
        "CreateTopic",
        "Subscribe",
        "PutMetricAlarm",
        "PutDashboard",
        "CreateScheduleGroup",
        "CreateSchedule",
        "PutRule",
        "PutTargets",
        "RegisterTaskDefinition",
    ] {
        let context = format!("first answer of {op} lost");
        let emu = Emulator::start();
        emu.set_model(serde_json::json!({ "lose_next": { op: 1 } }));
        let out = deployer(&emu, &project, &["up", "--env", ENV, "--yes", "-q"]);
        assert!(out.status.success(), "{context}: up failed\n{}", show_output(&out));
        assert_eq!(
            emu.model()["totals"]["lost"],
            serde_json::json!(1),
            "{context}: the answer was lost once"
        );
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let c = clients(&emu).await;
            let sns = aws_sdk_sns::Client::new(&support::sdk_config(&emu, "us-east-1").await);
            let topics = sns.list_topics().send().await.unwrap();
            let ours: Vec<_> =
                topics.topics().iter().filter(|t| t.topic_arn().unwrap().contains(NAME)).collect();
            assert_eq!(ours.len(), 1, "{context}: {ours:?}");
            let subs = sns
                .list_subscriptions_by_topic()
                .topic_arn(ours[0].topic_arn().unwrap())
                .send()
                .await
                .unwrap();
            assert_eq!(subs.subscriptions().len(), 1, "{context}");
            let groups = c.scheduler.list_schedule_groups().name_prefix(NAME).send().await.unwrap();
            assert_eq!(groups.schedule_groups().len(), 1, "{context}");
            let schedules = c.scheduler.list_schedules().group_name(NAME).send().await.unwrap();
            assert_eq!(schedules.schedules().len(), 1, "{context}");
            let rules = c.events.list_rules().name_prefix(NAME).send().await.unwrap();
            assert_eq!(rules.rules().len(), 1, "{context}");
            let targets =
                c.events.list_targets_by_rule().rule(format!("{NAME}-drift-found")).send().await.unwrap();
            assert_eq!(targets.targets().len(), 1, "{context}");
        });
        let plan = deployer(&emu, &project, &["plan", "--env", ENV, "--detailed-exitcode"]);
        assert_eq!(plan.status.code(), Some(0), "{context}: converged\n{}", show_output(&plan));
    }
}
