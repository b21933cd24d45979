//! `deployer failover --to us-east-2` end to end, on the shipped `local` environment (database,
//! service and DNS on): the replica is promoted (no source, and the old primary no longer lists
//! it), us-east-2's copy of the database's secret becomes standalone and names it, us-east-2's
//! service runs a revision that connects to it with us-east-2's secret only, us-east-2's record
//! is PRIMARY; a second failover sends nothing; `plan` shows the difference and `up` refuses
//! without deleting the promoted database; the permanent configuration adopts it in place. The
//! same with every request signed for us-east-1 (IAM, Route 53 and STS included) unanswered,
//! then us-east-1 back: the next failover switches DNS and `up` of the permanent configuration
//! converges. A failover killed after any of its mutating calls, or whose answers were lost, is
//! finished by the next one. Judged by RDS's, Secrets Manager's, ECS's and Route 53's own
//! answers, read with the test's own clients.

mod support;

use std::collections::BTreeMap;

use aws_sdk_rds::types::DbInstance;
use serde_json::json;
use support::{
    deployer, deployer_ok, deployer_with_pidfile, is_read_action, show_output, stderr_text, stdout_json,
    Emulator, Project,
};

const ENV: &str = "local";
const IDENTIFIER: &str = "webapp-local";
const NAME: &str = "webapp-local";
const OLD: &str = "us-east-1";
const NEW: &str = "us-east-2";
const SECRET: &str = "webapp-local/db-master";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

/// The region's DB instance of the environment (there is one per region).
async fn instance(emu: &Emulator, region: &'static str) -> Vec<DbInstance> {
    let rds = aws_sdk_rds::Client::new(&support::sdk_config(emu, region).await);
    let out = rds.describe_db_instances().send().await.unwrap();
    out.db_instances()
        .iter()
        .filter(|i| i.tag_list().iter().any(|t| t.key() == Some("deployer:env") && t.value() == Some(ENV)))
        .cloned()
        .collect()
}

fn tag<'a>(i: &'a DbInstance, key: &str) -> Option<&'a str> {
    i.tag_list().iter().find(|t| t.key() == Some(key)).and_then(|t| t.value())
}

/// What the region's service runs: the revision's ARN, its plain environment and its secrets'
/// `valueFrom`.
async fn running(
    emu: &Emulator,
    region: &'static str,
) -> (String, BTreeMap<String, String>, BTreeMap<String, String>) {
    let ecs = aws_sdk_ecs::Client::new(&support::sdk_config(emu, region).await);
    let out = ecs.describe_services().cluster(NAME).services(NAME).send().await.unwrap();
    let arn = out.services()[0].task_definition().unwrap().to_string();
    let td = ecs.describe_task_definition().task_definition(&arn).send().await.unwrap();
    let c = &td.task_definition().unwrap().container_definitions()[0];
    let env = c
        .environment()
        .iter()
        .map(|kv| (kv.name().unwrap().to_string(), kv.value().unwrap().to_string()))
        .collect();
    let secrets = c.secrets().iter().map(|s| (s.name().to_string(), s.value_from().to_string())).collect();
    (arn, env, secrets)
}

/// The failover records of the environment's name: (set identifier → (role, health check)).
async fn records(emu: &Emulator) -> BTreeMap<String, (String, Option<String>)> {
    let r53 = aws_sdk_route53::Client::new(&support::sdk_config(emu, "us-east-1").await);
    let zones = r53.list_hosted_zones_by_name().dns_name("deployer.test.").send().await.unwrap();
    let zone = zones.hosted_zones()[0].id().trim_start_matches("/hostedzone/").to_string();
    let sets = r53.list_resource_record_sets().hosted_zone_id(zone).send().await.unwrap();
    sets.resource_record_sets()
        .iter()
        .filter_map(|r| {
            let id = r.set_identifier()?.strip_prefix("webapp-local-")?.to_string();
            Some((id, (r.failover()?.as_str().to_string(), r.health_check_id().map(str::to_string))))
        })
        .collect()
}

/// The health check of `region`'s load balancer (by its `deployer:address` tag).
async fn health_check(emu: &Emulator, region: &str) -> String {
    let r53 = aws_sdk_route53::Client::new(&support::sdk_config(emu, "us-east-1").await);
    for c in r53.list_health_checks().send().await.unwrap().health_checks() {
        let tags = r53
            .list_tags_for_resource()
            .resource_type(aws_sdk_route53::types::TagResourceType::Healthcheck)
            .resource_id(c.id())
            .send()
            .await
            .unwrap();
        let address = tags.resource_tag_set().and_then(|s| {
            s.tags()
                .iter()
                .find(|t| t.key() == Some("deployer:address"))
                .and_then(|t| t.value())
                .map(str::to_string)
        });
        if address.as_deref() == Some(&format!("global/dns/health-check/{region}")) {
            return c.id().to_string();
        }
    }
    panic!("no health check for {region}")
}

/// The password both databases took before the failover.
fn password(emu: &Emulator) -> String {
    let (_, _, v) = runtime().block_on(support::db_secret(emu, NEW, SECRET)).expect("us-east-2's copy");
    v["password"].as_str().unwrap().to_string()
}

/// The database is promoted and re-homed, us-east-2's secret is standalone and names it (the
/// password unchanged), us-east-2 runs against it with us-east-2's secret only, and is PRIMARY in
/// DNS when `dns_switched`; us-east-1's service still runs what it ran.
fn assert_failed_over(
    emu: &Emulator,
    east1_before: &(String, BTreeMap<String, String>, BTreeMap<String, String>),
    password: &str,
    dns_switched: bool,
) {
    runtime().block_on(async {
        let promoted = instance(emu, NEW).await;
        assert_eq!(promoted.len(), 1, "one database in {NEW}: {promoted:#?}");
        let p = &promoted[0];
        assert_eq!(p.db_instance_identifier(), Some(IDENTIFIER));
        assert_eq!(p.read_replica_source_db_instance_identifier(), None, "promoted: no source");
        assert_eq!(p.db_instance_status(), Some("available"));
        assert_eq!(tag(p, "deployer:address"), Some("us-east-2/database/db-instance/primary"));
        assert_eq!(tag(p, "Name"), Some("webapp-local-db-instance-primary"));
        assert_eq!(p.multi_az(), Some(true), "Multi-AZ as configured");
        assert!(p.backup_retention_period().unwrap_or(0) >= 1, "backups on: a replica of it needs them");
        assert!(p.master_user_secret().is_none(), "not RDS's managed secret");
        let endpoint = p.endpoint().and_then(|e| e.address()).unwrap().to_string();

        let (arn, of, value) = support::db_secret(emu, NEW, SECRET).await.expect("us-east-2's secret");
        assert_eq!(of, None, "standalone: writable in {NEW}");
        assert_eq!(arn.split(':').nth(3), Some(NEW));
        assert_eq!(value["host"].as_str(), Some(endpoint.as_str()), "names the promoted instance");
        assert_eq!(value["password"].as_str(), Some(password), "the password did not change");
        assert!(
            support::db_login(emu, NEW, IDENTIFIER, "app_admin", password),
            "the promoted database takes it"
        );

        let (_, env, secrets) = running(emu, NEW).await;
        assert_eq!(env.get("DB_HOST"), Some(&endpoint), "{NEW} connects to the promoted database");
        for (var, key) in [("DB_USERNAME", "username"), ("DB_PASSWORD", "password")] {
            assert_eq!(secrets.get(var), Some(&format!("{arn}:{key}::")), "{var}");
        }
        assert!(
            secrets.values().all(|s| s.split(':').nth(3) == Some(NEW)),
            "{NEW}'s secrets only: {secrets:?}"
        );
        assert_eq!(&running(emu, OLD).await, east1_before, "{OLD}'s service is untouched");

        if dns_switched {
            let records = records(emu).await;
            let check = health_check(emu, NEW).await;
            assert_eq!(records[NEW], ("PRIMARY".to_string(), Some(check)), "{records:?}");
            assert_eq!(records[OLD], ("SECONDARY".to_string(), None), "{records:?}");
        }
    });
}

/// A second failover: "Nothing to do", and not one mutating request.
fn assert_nothing_left(emu: &Emulator, project: &Project) {
    emu.start_recording();
    let again = deployer_ok(emu, project, &["failover", "--env", ENV, "--to", NEW, "--yes"]);
    emu.stop_recording();
    assert!(stderr_text(&again).contains("Nothing to do"), "{}", show_output(&again));
    let sent: Vec<String> = emu.recorded_actions().into_iter().filter(|a| !is_read_action(a)).collect();
    assert_eq!(sent, Vec::<String>::new(), "a finished failover sends nothing");
}

#[test]
fn failover_promotes_the_replica_moves_the_application_and_dns_and_a_second_run_changes_nothing() {
    let emu = Emulator::start();
    let project = Project::new();
    deployer_ok(&emu, &project, &["up", "--env", ENV, "--yes"]);
    let east1_before = runtime().block_on(running(&emu, OLD));
    let password = password(&emu);
    let (_, east2_env, east2_secrets) = runtime().block_on(running(&emu, NEW));
    assert!(
        east2_secrets.values().all(|s| s.split(':').nth(3) == Some(NEW)),
        "each region reads its own copy of the secret: {east2_secrets:?}"
    );
    assert_ne!(
        east2_env.get("DB_HOST").map(|h| h.contains(NEW)),
        Some(true),
        "{NEW} starts on the old primary"
    );

    // Refused before any change: the primary itself, and a configuration without a database.
    let same = deployer(&emu, &project, &["failover", "--env", ENV, "--to", OLD, "--yes"]);
    assert_eq!(same.status.code(), Some(1));
    assert!(stderr_text(&same).contains("already the primary region"), "{}", show_output(&same));

    let out = deployer(&emu, &project, &["failover", "--env", ENV, "--to", NEW, "--yes", "--output", "json"]);
    assert!(out.status.success(), "{}", show_output(&out));
    let text = stderr_text(&out);
    for expected in [
        "promote",
        "password does not change",
        "[regions]",
        "primary = \"us-east-2\"",
        "secondary = [\"us-east-1\"]",
        "regional-failover.md",
    ] {
        assert!(text.contains(expected), "{expected:?} in\n{text}");
    }
    let report = stdout_json(&out);
    assert_eq!(report["ok"], json!(true));
    let statuses: Vec<(String, String)> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["step"].as_str().unwrap().to_string(), s["status"].as_str().unwrap().to_string()))
        .collect();
    let steps: Vec<&str> = statuses.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(steps, ["promote", "standby", "secret", "re-home", "app", "dns"]);
    for (step, status) in &statuses {
        let done_already = step == "standby" && status == "done"; // the replica was Multi-AZ
        assert!(status == "completed" || done_already, "{step}: {status}");
    }
    assert_eq!(report["permanent"]["regions"], json!({"primary": NEW, "secondary": [OLD]}));
    assert_eq!(report["unreachable"], json!({}));
    assert_failed_over(&emu, &east1_before, &password, true);
    support::assert_never_printed(&password, &[&out]);
    assert_nothing_left(&emu, &project);

    // With the old configuration: plan shows the difference, and up refuses without deleting
    // the promoted database.
    let plan = deployer(&emu, &project, &["plan", "--env", ENV, "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(2), "{}", show_output(&plan));
    let up = deployer(&emu, &project, &["up", "--env", ENV, "--yes"]);
    assert_eq!(up.status.code(), Some(1), "{}", show_output(&up));
    let why = stderr_text(&up);
    assert!(
        why.contains("refusing to delete us-east-2/database/db-instance/primary")
            && why.contains("regional-failover.md"),
        "{why}"
    );
    assert_eq!(runtime().block_on(instance(&emu, NEW)).len(), 1, "the promoted database is still there");

    // The permanent configuration adopts it in place.
    project.edit("local.toml", |s| {
        format!("{s}\n[regions]\nprimary = \"us-east-2\"\nsecondary = [\"us-east-1\"]\n")
    });
    let plan = stdout_json(&deployer(&emu, &project, &["plan", "--env", ENV, "--output", "json"]));
    let changes = plan["changes"].as_array().unwrap_or_else(|| panic!("{plan:#}"));
    let promoted: Vec<&serde_json::Value> =
        changes.iter().filter(|c| c["address"] == "us-east-2/database/db-instance/primary").collect();
    assert!(
        promoted.iter().all(|c| c["action"] == "update"),
        "adopted in place, never re-created: {promoted:#?}"
    );
    // us-east-1's copy of the secret becomes a replica of us-east-2's again (a replacement), and
    // the role that names it only re-points: no field of it differs.
    let role = changes.iter().find(|c| c["address"] == "global/iam/iam-role/task-execution");
    assert!(role.is_none_or(|r| r["fields"] == json!([])), "the role is already as configured: {role:#?}");
    let address = "us-east-2/service/task-definition/app";
    assert!(changes.iter().all(|c| c["address"] != address), "{address} is already as configured: {plan:#}");
    assert!(
        changes.iter().all(|c| !c["address"].as_str().unwrap().starts_with("global/dns/dns-record/")),
        "the records are already as configured: {plan:#}"
    );
}

/// The shipped environment, up, with the emulator's kill hook able to kill the deployer and
/// its model of AWS's latencies on (a promoted replica is `modifying` for a while).
fn crash_ready(pidfile: &std::path::Path) -> (Emulator, Project) {
    let emu = Emulator::start_with_env(&[
        ("DEPLOYER_EMU_KILL_PIDFILE", pidfile.to_str().unwrap()),
        ("DEPLOYER_EMU_MODEL", "1"),
    ]);
    let project = Project::new();
    deployer_ok(&emu, &project, &["up", "--env", ENV, "--yes"]);
    (emu, project)
}

#[test]
fn a_failover_killed_right_after_its_promote_read_replica_is_finished_by_the_next_run() {
    use std::os::unix::process::ExitStatusExt;
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("deployer.pid");
    let (emu, project) = crash_ready(&pidfile);
    let east1_before = runtime().block_on(running(&emu, OLD));
    let password = password(&emu);
    // Mutating call 1 takes the lock, 2 writes its generation (src/lock.rs), 3 is
    // PromoteReadReplica.
    emu.set_model(json!({"kill_after": 3, "kill_pidfile": pidfile.to_str().unwrap()}));
    let out =
        deployer_with_pidfile(&emu, &project, &["failover", "--env", ENV, "--to", NEW, "--yes"], &pidfile);
    assert_eq!(out.status.signal(), Some(9), "killed\n{}", show_output(&out));
    assert_eq!(emu.model()["kill"]["operation"], "PromoteReadReplica");
    let half = runtime().block_on(instance(&emu, NEW));
    assert_eq!(half[0].read_replica_source_db_instance_identifier(), None, "it was promoted");
    assert_eq!(half[0].db_instance_status(), Some("modifying"), "and is still being promoted");
    let (_, of, _) = runtime().block_on(support::db_secret(&emu, NEW, SECRET)).unwrap();
    assert_eq!(of.as_deref(), Some(OLD), "and nothing more: the secret is still a replica");

    // The dead run left its lock: the next one says so, and `unlock` releases it.
    let locked = deployer(&emu, &project, &["failover", "--env", ENV, "--to", NEW, "--yes"]);
    assert_eq!(locked.status.code(), Some(1));
    assert!(stderr_text(&locked).contains("locked"), "{}", show_output(&locked));
    // It is in us-east-2, the region being promoted.
    deployer_ok(&emu, &project, &["unlock", "--env", ENV, "--region", NEW, "--yes"]);
    let second = deployer_ok(&emu, &project, &["failover", "--env", ENV, "--to", NEW, "--yes"]);
    let text = stderr_text(&second);
    assert!(text.contains("promote  [done]"), "the promotion is not repeated:\n{text}");
    assert_failed_over(&emu, &east1_before, &password, true);
    assert_nothing_left(&emu, &project);
}

#[test]
fn a_failover_whose_promote_answer_was_lost_finishes_in_the_same_run() {
    let emu = Emulator::start();
    let project = Project::new();
    deployer_ok(&emu, &project, &["up", "--env", ENV, "--yes"]);
    let east1_before = runtime().block_on(running(&emu, OLD));
    let password = password(&emu);
    // moto promotes, the answer is a 500, the SDK retries: RDS says it is not a read replica
    // any more, which the failover reads as done; the same for the secret.
    emu.set_model(
        json!({"lose_next": {"PromoteReadReplica": 1, "StopReplicationToReplica": 1, "PutSecretValue": 1}}),
    );
    deployer_ok(&emu, &project, &["failover", "--env", ENV, "--to", NEW, "--yes"]);
    for op in ["PromoteReadReplica", "StopReplicationToReplica", "PutSecretValue"] {
        assert_eq!(emu.model()["injected"][op]["lost"], json!(1), "{op}");
    }
    assert_failed_over(&emu, &east1_before, &password, true);
    assert_nothing_left(&emu, &project);
}

#[test]
fn a_release_that_fails_during_the_failover_exits_3_leaves_dns_alone_and_the_next_run_finishes() {
    let emu = Emulator::start();
    let project = Project::new();
    deployer_ok(&emu, &project, &["up", "--env", ENV, "--yes"]);
    let east1_before = runtime().block_on(running(&emu, OLD));
    let password = password(&emu);
    let (east2_before, _, _) = runtime().block_on(running(&emu, NEW));
    emu.post_json(
        "/_deployer/codedeploy",
        json!({"fail": {"region": NEW, "application": NAME, "deploymentGroup": NAME, "event": "AllowTraffic"}}),
    );
    let out = deployer(&emu, &project, &["failover", "--env", ENV, "--to", NEW, "--yes", "--output", "json"]);
    assert_eq!(out.status.code(), Some(3), "{}", show_output(&out));
    assert!(stderr_text(&out).contains("DNS was not switched"), "{}", show_output(&out));
    let report = stdout_json(&out);
    assert_eq!(report["ok"], json!(false));
    assert_eq!(report["release"]["outcome"], "failed");
    // The database steps are done; the application and the records are as they were.
    runtime().block_on(async {
        let promoted = instance(&emu, NEW).await;
        assert_eq!(tag(&promoted[0], "deployer:address"), Some("us-east-2/database/db-instance/primary"));
        assert_eq!(running(&emu, NEW).await.0, east2_before, "rolled back to what it ran");
        assert_eq!(records(&emu).await[OLD].0, "PRIMARY");
    });

    let again = deployer_ok(&emu, &project, &["failover", "--env", ENV, "--to", NEW, "--yes"]);
    let text = stderr_text(&again);
    for step in
        ["promote  [done]", "secret   [done]", "re-home  [done]", "app      [to do]", "dns      [to do]"]
    {
        assert!(text.contains(step), "{step:?} in\n{text}");
    }
    assert_failed_over(&emu, &east1_before, &password, true);
    assert_nothing_left(&emu, &project);
}

/// Every request signed for us-east-1 (its regional services, and IAM, Route 53 and STS, which
/// are called there) goes unanswered, as it would were the region down.
fn us_east_1_down(emu: &Emulator, mode: serde_json::Value) {
    let mut outage = json!({"regions": [OLD]});
    outage.as_object_mut().unwrap().extend(mode.as_object().unwrap().clone());
    emu.set_model(json!({"outage": outage}));
}

#[test]
fn with_us_east_1_down_the_failover_serves_from_us_east_2_and_once_it_is_back_up_converges() {
    let emu = Emulator::start();
    let project = Project::new();
    deployer_ok(&emu, &project, &["up", "--env", ENV, "--yes"]);
    let east1_before = runtime().block_on(running(&emu, OLD));
    let password = password(&emu);
    us_east_1_down(&emu, json!({"mode": "refuse"}));

    let out = deployer(&emu, &project, &["failover", "--env", ENV, "--to", NEW, "--yes", "--output", "json"]);
    assert!(out.status.success(), "{}", show_output(&out));
    let text = stderr_text(&out);
    assert!(text.contains("unreachable: us-east-1 (and IAM and Route 53 with it)"), "{text}");
    assert!(text.contains("left to the health checks"), "{text}");
    let report = stdout_json(&out);
    assert!(report["unreachable"][OLD].is_string(), "{report:#}");
    let dns = report["steps"].as_array().unwrap().iter().find(|s| s["step"] == "dns").unwrap().clone();
    assert_eq!(dns["status"], "skipped", "{dns:#}");
    assert_failed_over(&emu, &east1_before, &password, false);
    assert!(
        emu.model()["outage"]["dropped"][OLD].as_u64().unwrap_or(0) >= 1,
        "us-east-1 was asked once, by the probe"
    );
    support::assert_never_printed(&password, &[&out]);

    // Again, us-east-1 now hanging instead of refusing: the probe's bound, and nothing to do.
    us_east_1_down(&emu, json!({"mode": "timeout", "timeout_secs": 30}));
    emu.start_recording();
    let again =
        deployer_ok(&emu, &project, &["failover", "--env", ENV, "--to", NEW, "--yes", "--probe-secs", "2"]);
    emu.stop_recording();
    let text = stderr_text(&again);
    assert!(text.contains("Nothing to do") && text.contains("unreachable: us-east-1"), "{text}");
    assert!(text.contains("after 2s") || text.contains("within 2s"), "the probe's bound: {text}");
    let sent: Vec<String> = emu.recorded_actions().into_iter().filter(|a| !is_read_action(a)).collect();
    assert_eq!(sent, Vec::<String>::new(), "a finished failover sends nothing");

    // us-east-1 is back: the next failover switches the records; the permanent configuration
    // (allowed to remove the old primary) converges, with a new replica in us-east-1 that
    // takes the same password.
    emu.set_model(json!({"outage": null}));
    let dns = deployer_ok(&emu, &project, &["failover", "--env", ENV, "--to", NEW, "--yes"]);
    assert!(stderr_text(&dns).contains("dns      [to do]"), "{}", show_output(&dns));
    assert_failed_over(&emu, &east1_before, &password, true);
    project.edit("local.toml", |s| {
        format!(
            "{}\n[regions]\nprimary = \"us-east-2\"\nsecondary = [\"us-east-1\"]\n",
            s.replace("[database]\n", "[database]\nallow_replacement = true\n")
        )
    });
    // us-east-1's service takes the new primary's address through a release: of an image that
    // is in both regions' repositories (the new replication applies to later pushes only).
    runtime().block_on(async {
        for region in [NEW, OLD] {
            let ecr = aws_sdk_ecr::Client::new(&support::sdk_config(&emu, region).await);
            support::push_image(&ecr, NAME, "latest").await;
        }
    });
    let up = deployer(&emu, &project, &["up", "--env", ENV, "--yes"]);
    let up = if up.status.success() {
        up
    } else {
        // The failback's replica waits for the old primary of its identifier: one run may not
        // see it gone yet.
        deployer_ok(&emu, &project, &["up", "--env", ENV, "--yes"])
    };
    let plan = deployer(&emu, &project, &["plan", "--env", ENV, "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(0), "{}", show_output(&plan));
    runtime().block_on(async {
        let back = instance(&emu, OLD).await;
        assert_eq!(back.len(), 1, "{back:#?}");
        assert_eq!(tag(&back[0], "deployer:address"), Some("us-east-1/database/db-replica/replica"));
        assert!(back[0].read_replica_source_db_instance_identifier().is_some_and(|s| s.contains(NEW)));
        let (_, of, _) = support::db_secret(&emu, OLD, SECRET).await.expect("us-east-1's copy");
        assert_eq!(of.as_deref(), Some(NEW), "us-east-1's secret is a replica of us-east-2's");
    });
    assert!(support::db_login(&emu, OLD, IDENTIFIER, "app_admin", &password));
    support::assert_never_printed(&password, &[&again, &dns, &up, &plan]);
}

/// With us-east-1 down, a failover killed right after each of its mutating calls in turn is
/// finished by the next run (after `unlock --region us-east-2`: the dead run's lock is there),
/// and the replica is promoted once.
#[test]
fn with_us_east_1_down_a_failover_killed_after_any_mutating_call_is_finished_by_the_next_run() {
    use std::os::unix::process::ExitStatusExt;
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("deployer.pid");
    let mut killed_at = Vec::new();
    for k in 1..=12 {
        // Without the model's latencies: the sweep makes a fresh environment per crash point.
        let emu = Emulator::start_with_env(&[("DEPLOYER_EMU_KILL_PIDFILE", pidfile.to_str().unwrap())]);
        let project = Project::new();
        deployer_ok(&emu, &project, &["up", "--env", ENV, "--yes", "-q"]);
        let east1_before = runtime().block_on(running(&emu, OLD));
        let password = password(&emu);
        us_east_1_down(&emu, json!({"mode": "refuse"}));
        emu.set_model(json!({"kill_after": k, "kill_pidfile": pidfile.to_str().unwrap()}));
        let first = deployer_with_pidfile(
            &emu,
            &project,
            &["failover", "--env", ENV, "--to", NEW, "--yes"],
            &pidfile,
        );
        if first.status.signal() != Some(9) {
            assert!(first.status.success(), "K={k}: {}", show_output(&first));
            break;
        }
        killed_at.push(emu.model()["kill"]["operation"].as_str().unwrap_or("?").to_string());
        emu.set_model(json!({"kill_after": null}));
        deployer_ok(&emu, &project, &["unlock", "--env", ENV, "--region", NEW, "--yes"]);
        let second = deployer(&emu, &project, &["failover", "--env", ENV, "--to", NEW, "--yes"]);
        assert!(second.status.success(), "K={k} ({killed_at:?}): {}", show_output(&second));
        assert_failed_over(&emu, &east1_before, &password, false);
        assert_eq!(
            emu.actions().get("rds:PromoteReadReplica").copied().unwrap_or(0),
            1,
            "K={k}: promoted once"
        );
    }
    for op in [
        "PromoteReadReplica",
        "StopReplicationToReplica",
        "PutSecretValue",
        "AddTagsToResource",
        "RegisterTaskDefinition",
        "CreateDeployment",
    ] {
        assert!(killed_at.iter().any(|o| o == op), "killed after {op}: {killed_at:?}");
    }
}
