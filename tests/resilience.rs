//! What a crash, a throttle storm, lost responses or a second writer do, against the emulator's
//! model of AWS (tests/emulator/aws_model.py). Each test checks the result in the emulator's own
//! state: no duplicate (two live resources with one address), no untagged leftover, and a plan
//! that is empty once the run says it is done.
//!
//! `crash_anywhere_*` kill the deployer (SIGKILL) right after its K-th mutating call, then run
//! again. By default they try a spread of K; `DEPLOYER_CRASH_ALL=1` tries every K of a cold
//! `up` (and of a `destroy`), which takes several minutes:
//!
//! ```sh
//! DEPLOYER_CRASH_ALL=1 scripts/test --test resilience -- crash_anywhere
//! ```

mod support;

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{json, Value};
use support::{
    deployer, deployer_ok, deployer_with_pidfile, show_output, stderr_text, stdout_json, Emulator, Project,
};

const ENV: &str = "local";

/// The shipped local configuration's network, registry and database tiers. The service tier has
/// its own tests (tests/service.rs); its crash points are not part of this sample yet.
fn project() -> Project {
    let project = Project::new();
    project.disable("service");
    project
}

/// Live resources of the emulator's EC2 state, by region and kind: (kind, id, tags).
fn live_ec2(state: &Value) -> Vec<(String, String, String, BTreeMap<String, String>)> {
    let mut out = Vec::new();
    let regions = state.as_object().expect("ec2 state is an object");
    for (region, kinds) in regions {
        let default_vpcs: Vec<&str> = kinds["vpcs"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|v| v["is_default"].as_bool() == Some(true))
            .filter_map(|v| v["id"].as_str())
            .collect();
        for (kind, list) in kinds.as_object().unwrap() {
            for obj in list.as_array().unwrap() {
                let vpc = obj.get("vpc_id").and_then(Value::as_str);
                let aws_owned = obj["is_default"].as_bool() == Some(true)
                    || vpc.is_some_and(|v| default_vpcs.contains(&v))
                    || obj["main"].as_bool() == Some(true)
                    || (kind == "internet_gateways"
                        && obj["vpc_id"].as_str().is_some_and(|v| default_vpcs.contains(&v)));
                let gone = matches!(obj["state"].as_str(), Some("deleted" | "deleting" | "failed"))
                    || matches!(
                        obj["status"].as_str(),
                        Some("deleted" | "deleting" | "rejected" | "failed" | "expired")
                    );
                if aws_owned || gone {
                    continue;
                }
                let tags: BTreeMap<String, String> = obj["tags"]
                    .as_object()
                    .map(|t| {
                        t.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string())).collect()
                    })
                    .unwrap_or_default();
                let id = obj["id"].as_str().or(obj["allocation_id"].as_str()).unwrap_or("?").to_string();
                out.push((region.clone(), kind.clone(), id, tags));
            }
        }
    }
    out
}

/// No two live resources carry one address, and every live resource the deployer could have
/// made is tagged for the environment.
fn assert_no_duplicate_or_untagged(emu: &Emulator, context: &str) {
    let state = emu.ec2_state();
    let mut by_address: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
    for (region, kind, id, tags) in live_ec2(&state) {
        // (A peering connection is listed by both of its regions, under one ID.)
        match tags.get("deployer:address") {
            Some(address) => by_address.entry(address.clone()).or_default().insert(id),
            None => panic!("{context}: untagged {kind} {id} left in {region}"),
        };
    }
    let duplicates: Vec<_> = by_address.iter().filter(|(_, ids)| ids.len() > 1).collect();
    assert!(duplicates.is_empty(), "{context}: duplicates {duplicates:?}");
}

/// Nothing of the environment is left in the emulator.
fn assert_nothing_left(emu: &Emulator, context: &str) {
    let left = live_ec2(&emu.ec2_state());
    assert!(left.is_empty(), "{context}: left after destroy: {left:?}");
    let left = runtime().block_on(async {
        let mut names = Vec::new();
        for region in ["us-east-1", "us-east-2"] {
            let config = support::sdk_config(emu, region).await;
            let ecr = aws_sdk_ecr::Client::new(&config);
            let out = ecr.describe_repositories().send().await.unwrap();
            names.extend(
                out.repositories().iter().filter_map(|r| r.repository_name().map(|n| format!("ecr {n}"))),
            );
            let rds = aws_sdk_rds::Client::new(&config);
            let out = rds.describe_db_instances().send().await.unwrap();
            names.extend(
                out.db_instances()
                    .iter()
                    .filter_map(|d| d.db_instance_identifier().map(|n| format!("db {region} {n}"))),
            );
            let out = rds.describe_db_subnet_groups().send().await.unwrap();
            names.extend(
                out.db_subnet_groups()
                    .iter()
                    .filter_map(|g| g.db_subnet_group_name())
                    .filter(|n| *n != "default")
                    .map(|n| format!("db subnet group {region} {n}")),
            );
        }
        names
    });
    assert!(left.is_empty(), "{context}: left after destroy: {left:?}");
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

/// `plan --detailed-exitcode` exits 0: nothing left to do.
fn assert_converged(emu: &Emulator, project: &Project, context: &str) {
    let plan = deployer(emu, project, &["plan", "--env", ENV, "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(0), "{context}: not converged\n{}", show_output(&plan));
}

fn killed(out: &std::process::Output) -> bool {
    use std::os::unix::process::ExitStatusExt;
    out.status.signal() == Some(9)
}

/// How many mutating calls a command makes from this state, measured by running it.
fn mutating_calls(emu: &Emulator, project: &Project, args: &[&str]) -> u64 {
    let before = emu.model()["totals"]["mutating"].as_u64().unwrap();
    deployer_ok(emu, project, args);
    emu.model()["totals"]["mutating"].as_u64().unwrap() - before
}

/// The K to try: every one with DEPLOYER_CRASH_ALL=1, else a spread that includes the first
/// (right after the lock is taken), the last, and points between.
fn points(n: u64) -> Vec<u64> {
    if std::env::var("DEPLOYER_CRASH_ALL").is_ok_and(|v| v == "1") {
        return (1..=n).collect();
    }
    let mut ks = vec![1, 2, n / 3, n / 2, 2 * n / 3, n.saturating_sub(1), n];
    ks.retain(|k| *k >= 1 && *k <= n);
    ks.dedup();
    ks
}

fn crash_emulator(pidfile: &Path) -> Emulator {
    Emulator::start_with_env(&[("DEPLOYER_EMU_KILL_PIDFILE", pidfile.to_str().unwrap())])
}

#[test]
fn crash_anywhere_in_a_cold_up_then_up_converges_without_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("deployer.pid");
    let project = project();
    let n = {
        let emu = crash_emulator(&pidfile);
        mutating_calls(&emu, &project, &["up", "--env", ENV, "--yes", "-q"])
    };
    assert!(n > 20, "a cold up makes {n} mutating calls");
    for k in points(n) {
        let context = format!("killed after mutating call {k} of {n}");
        let emu = crash_emulator(&pidfile);
        emu.set_model(json!({ "kill_after": k, "kill_pidfile": pidfile.to_str().unwrap() }));
        let out = deployer_with_pidfile(&emu, &project, &["up", "--env", ENV, "--yes", "-q"], &pidfile);
        if !killed(&out) {
            // The number of mutating calls varies a little from run to run (a verification
            // round, a retried create): a run that made fewer than K finished normally.
            let made = emu.model()["totals"]["mutating"].as_u64().unwrap();
            assert!(
                out.status.success() && made < k,
                "{context}: not killed after {made} calls\n{}",
                show_output(&out)
            );
            continue;
        }
        let hook = emu.model()["kill"].clone();
        assert_eq!(hook["fired"], json!(true), "{context}");

        // The dead run's lock is reported with its holder and age by a read-only command
        // (unless the call it died after was the lock's own release).
        let status = deployer(&emu, &project, &["status", "--env", ENV, "--output", "json"]);
        let lock = &stdout_json(&status)["lock"];
        if hook["operation"] != "DeleteParameter" {
            assert!(
                lock["description"].as_str().is_some_and(|d| d.contains("`deployer up`")),
                "{context}: {lock}"
            );
            assert!(stderr_text(&status).contains("is locked by"), "{context}");
            deployer_ok(&emu, &project, &["unlock", "--env", ENV, "--yes"]);
        } else {
            assert!(lock.is_null(), "{context}: {lock}");
        }

        deployer_ok(&emu, &project, &["up", "--env", ENV, "--yes", "-q"]);
        assert_no_duplicate_or_untagged(&emu, &context);
        assert_converged(&emu, &project, &context);
        deployer_ok(&emu, &project, &["destroy", "--env", ENV, "--yes", "-q"]);
        assert_nothing_left(&emu, &context);
    }
}

#[test]
fn crash_anywhere_in_a_destroy_then_destroy_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("deployer.pid");
    let project = project();
    let n = {
        let emu = crash_emulator(&pidfile);
        deployer_ok(&emu, &project, &["up", "--env", ENV, "--yes", "-q"]);
        mutating_calls(&emu, &project, &["destroy", "--env", ENV, "--yes", "-q"])
    };
    let mut ks = points(n);
    if std::env::var("DEPLOYER_CRASH_ALL").is_err() {
        ks.truncate(4);
    }
    for k in ks {
        let context = format!("destroy killed after mutating call {k} of {n}");
        let emu = crash_emulator(&pidfile);
        deployer_ok(&emu, &project, &["up", "--env", ENV, "--yes", "-q"]);
        emu.set_model(json!({ "kill_after": k, "kill_pidfile": pidfile.to_str().unwrap() }));
        let out = deployer_with_pidfile(&emu, &project, &["destroy", "--env", ENV, "--yes", "-q"], &pidfile);
        if !killed(&out) {
            assert!(out.status.success(), "{context}: not killed, and failed\n{}", show_output(&out));
            assert_nothing_left(&emu, &context);
            continue;
        }
        deployer_ok(&emu, &project, &["unlock", "--env", ENV, "--yes"]);
        deployer_ok(&emu, &project, &["destroy", "--env", ENV, "--yes", "-q"]);
        assert_nothing_left(&emu, &context);
    }
}

#[test]
fn a_throttle_storm_with_server_errors_still_converges_in_one_up() {
    let project = project();
    for seed in 0..10 {
        let context = format!("seed {seed}");
        let emu = Emulator::start_with_env(&[
            ("DEPLOYER_EMU_THROTTLE_RATE", "0.2"),
            ("DEPLOYER_EMU_FAULT_RATE", "0.05"),
            ("DEPLOYER_EMU_SEED", &seed.to_string()),
        ]);
        let out = deployer(&emu, &project, &["up", "--env", ENV, "--yes", "-q"]);
        assert!(out.status.success(), "{context}: up failed\n{}", show_output(&out));
        let model = emu.model();
        assert!(
            model["totals"]["throttled"].as_u64().unwrap() > 10,
            "{context}: the storm happened: {}",
            model["totals"]
        );
        emu.set_model(json!({ "throttle_rate": 0.0, "fault_rate": 0.0 }));
        assert_no_duplicate_or_untagged(&emu, &context);
        assert_converged(&emu, &project, &context);
    }
}

#[test]
fn lost_responses_converge_in_one_up_without_duplicates() {
    let project = project();
    for seed in 0..5 {
        let context = format!("seed {seed}");
        let emu = Emulator::start_with_env(&[
            ("DEPLOYER_EMU_LOST_RATE", "0.1"),
            ("DEPLOYER_EMU_SEED", &seed.to_string()),
        ]);
        let out = deployer(&emu, &project, &["up", "--env", ENV, "--yes", "-q"]);
        assert!(out.status.success(), "{context}: up failed\n{}", show_output(&out));
        assert!(emu.model()["totals"]["lost"].as_u64().unwrap() > 0, "{context}: no response was lost");
        emu.set_model(json!({ "lost_rate": 0.0 }));
        assert_no_duplicate_or_untagged(&emu, &context);
        assert_converged(&emu, &project, &context);
        // The lock was released although its own PutParameter may have lost its answer.
        let status = deployer(&emu, &project, &["status", "--env", ENV]);
        assert!(!stderr_text(&status).contains("is locked by"), "{context}: {}", stderr_text(&status));
    }
}

/// Every create and attach of a cold `up`, each with its first answer lost (applied by AWS,
/// answered 500, retried by the SDK): one `up` converges, with no duplicate.
#[test]
fn each_create_with_its_first_answer_lost_converges_in_one_up() {
    let project = project();
    let operations = [
        "CreateVpc",
        "ModifyVpcAttribute",
        "CreateSubnet",
        "ModifySubnetAttribute",
        "CreateInternetGateway",
        "AttachInternetGateway",
        "AllocateAddress",
        "CreateNatGateway",
        "CreateRouteTable",
        "AssociateRouteTable",
        "CreateRoute",
        "CreateVpcPeeringConnection",
        "AcceptVpcPeeringConnection",
        "ModifyVpcPeeringConnectionOptions",
        "CreateTags",
        "CreateRepository",
        "PutLifecyclePolicy",
        "PutReplicationConfiguration",
        "CreateSecurityGroup",
        "AuthorizeSecurityGroupIngress",
        "CreateDBSubnetGroup",
        "CreateDBParameterGroup",
        "ModifyDBParameterGroup",
        "CreateDBInstance",
        "CreateDBInstanceReadReplica",
        "PutParameter",
        "DeleteParameter",
    ];
    for op in operations {
        let context = format!("first answer of {op} lost");
        let emu = Emulator::start();
        emu.set_model(json!({ "lose_next": { op: 1 } }));
        let out = deployer(&emu, &project, &["up", "--env", ENV, "--yes", "-q"]);
        assert!(out.status.success(), "{context}: up failed\n{}", show_output(&out));
        assert_eq!(emu.model()["totals"]["lost"], json!(1), "{context}: the answer was lost once");
        assert_no_duplicate_or_untagged(&emu, &context);
        assert_converged(&emu, &project, &context);
        let status = deployer(&emu, &project, &["status", "--env", ENV]);
        assert!(!stderr_text(&status).contains("is locked by"), "{context}: the lock was left held");
    }
}

#[test]
fn two_writers_at_once_one_applies_the_other_names_the_holder() {
    let emu = Emulator::start_with_env(&[("DEPLOYER_EMU_MODEL", "1")]);
    let project = project();
    let runs: Vec<_> = (0..2)
        .map(|_| {
            let mut cmd = support::deployer_command(&emu, &project);
            cmd.args(["up", "--env", ENV, "--yes", "-q"]);
            std::thread::spawn(move || support::run(cmd))
        })
        .collect();
    let outs: Vec<_> = runs.into_iter().map(|t| t.join().unwrap()).collect();
    let ok: Vec<_> = outs.iter().filter(|o| o.status.success()).collect();
    let refused: Vec<_> = outs.iter().filter(|o| o.status.code() == Some(1)).collect();
    assert_eq!((ok.len(), refused.len()), (1, 1), "{}\n{}", show_output(&outs[0]), show_output(&outs[1]));
    let why = stderr_text(refused[0]);
    assert!(
        why.contains("is locked by") && why.contains("`deployer up`") && why.contains("nothing was changed"),
        "{why}"
    );
    assert_no_duplicate_or_untagged(&emu, "two writers");
    assert_converged(&emu, &project, "two writers");
}

// ---------------------------------------------------------------------------------------------
// The full stack: every tier and the drift schedule, judged by everything the emulator holds
// in every service (`Emulator::inventory`), not only by what carries the environment's tags.

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

/// How many live resources of each (service, region, kind) the emulator holds.
fn census(emu: &Emulator) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for line in emu.inventory() {
        let mut parts = line.splitn(4, ' ');
        let key: Vec<&str> = parts.by_ref().take(3).collect();
        *out.entry(key.join(" ")).or_insert(0) += 1;
    }
    out
}

/// The emulator holds what one clean cold `up` leaves, in every service: no duplicate and no
/// orphan, tagged or not. (A task definition revision registered twice, its first answer lost,
/// is allowed: `RegisterTaskDefinition` takes no idempotency token, the two are equal, and
/// `destroy` deregisters both.)
fn assert_same_census(emu: &Emulator, clean: &BTreeMap<String, usize>, context: &str) {
    let inventory = emu.inventory();
    let now = census(emu);
    let mut differences = Vec::new();
    for key in clean.keys().chain(now.keys()).collect::<std::collections::BTreeSet<_>>() {
        let (want, got) = (clean.get(key).copied().unwrap_or(0), now.get(key).copied().unwrap_or(0));
        let extra_revision = key.starts_with("ecs ") && key.ends_with(" task-definition") && got > want;
        if want != got && !extra_revision {
            let held: Vec<&str> =
                inventory.iter().filter(|l| l.starts_with(&format!("{key} "))).map(String::as_str).collect();
            differences.push(format!("{key}: {got} (a clean up leaves {want}): {held:?}"));
        }
    }
    assert!(differences.is_empty(), "{context}: the emulator holds\n  {}", differences.join("\n  "));
}

fn assert_inventory_empty(emu: &Emulator, context: &str) {
    let left = emu.inventory();
    assert!(left.is_empty(), "{context}: left after destroy, in any service:\n  {}", left.join("\n  "));
}

/// A clean cold `up` of the full stack: what it leaves, and the operations of its changes.
fn full_stack_baseline(project: &Project) -> (BTreeMap<String, usize>, Vec<String>, u64) {
    let emu = Emulator::start();
    assert_inventory_empty(&emu, "a fresh emulator");
    let before = emu.model()["totals"]["mutating"].as_u64().unwrap();
    deployer_ok(&emu, project, &["up", "--env", ENV, "--yes", "-q"]);
    let n = emu.model()["totals"]["mutating"].as_u64().unwrap() - before;
    let ops: std::collections::BTreeSet<String> = emu
        .actions()
        .into_keys()
        .filter_map(|a| a.split_once(':').map(|(_, op)| op.to_string()))
        .filter(|op| !support::is_read_action(op) && op != "GetCallerIdentity")
        .collect();
    let clean = census(&emu);
    assert!(clean.len() > 40, "the full stack: {clean:#?}");
    deployer_ok(&emu, project, &["destroy", "--env", ENV, "--yes", "-q"]);
    assert_inventory_empty(&emu, "a clean full-stack up and destroy");
    (clean, ops.into_iter().collect(), n)
}

/// Every mutating action of a cold full-stack `up`, each with its first answer lost at once
/// (applied by AWS, answered 500, retried by the SDK): one `up` converges with exactly what a
/// clean one leaves in every service, and `destroy` leaves nothing in any service.
#[test]
fn every_full_stack_create_with_its_first_answer_lost_converges_and_destroy_leaves_nothing() {
    let project = full_project();
    let (clean, ops, _) = full_stack_baseline(&project);
    assert!(ops.len() > 40, "{ops:?}");
    for must in ["CreateTargetGroup", "CreateHealthCheck", "PutScalingPolicy", "CreateRole", "CreatePolicy"] {
        assert!(ops.iter().any(|o| o == must), "{must} is one of {ops:?}");
    }
    let emu = Emulator::start();
    let lose: serde_json::Map<String, Value> = ops.iter().map(|op| (op.clone(), json!(1))).collect();
    emu.set_model(json!({ "lose_next": lose }));
    let out = deployer(&emu, &project, &["up", "--env", ENV, "--yes", "-q"]);
    assert!(out.status.success(), "up failed\n{}", show_output(&out));
    let lost = emu.model()["totals"]["lost"].as_u64().unwrap();
    assert!(lost as usize >= ops.len() * 9 / 10, "{lost} of {} operations lost an answer", ops.len());
    assert_same_census(&emu, &clean, "every first answer lost");
    assert_converged(&emu, &project, "every first answer lost");
    deployer_ok(&emu, &project, &["destroy", "--env", ENV, "--yes", "-q"]);
    assert_inventory_empty(&emu, "every first answer lost");
}

/// A cold full-stack `up` killed right after its K-th mutating call, then run again: the same
/// as a clean `up` in every service, and `destroy` leaves nothing. A spread of K by default;
/// every K with DEPLOYER_CRASH_ALL=1.
#[test]
fn crash_anywhere_in_a_full_stack_up_then_up_matches_a_clean_up_and_destroy_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("deployer.pid");
    let project = full_project();
    let (clean, _, n) = full_stack_baseline(&project);
    let ks = if std::env::var("DEPLOYER_CRASH_ALL").is_ok_and(|v| v == "1") {
        points(n)
    } else {
        vec![n / 5, 2 * n / 5, 3 * n / 5, 4 * n / 5]
    };
    for k in ks {
        let context = format!("full stack killed after mutating call {k} of {n}");
        eprintln!("{context}");
        let emu = crash_emulator(&pidfile);
        emu.set_model(json!({ "kill_after": k, "kill_pidfile": pidfile.to_str().unwrap() }));
        let out = deployer_with_pidfile(&emu, &project, &["up", "--env", ENV, "--yes", "-q"], &pidfile);
        if killed(&out) {
            let status = deployer(&emu, &project, &["status", "--env", ENV]);
            if stderr_text(&status).contains("is locked by") {
                deployer_ok(&emu, &project, &["unlock", "--env", ENV, "--yes"]);
            }
            deployer_ok(&emu, &project, &["up", "--env", ENV, "--yes", "-q"]);
        } else {
            assert!(out.status.success(), "{context}: not killed, and failed\n{}", show_output(&out));
        }
        assert_same_census(&emu, &clean, &context);
        assert_converged(&emu, &project, &context);
        deployer_ok(&emu, &project, &["destroy", "--env", ENV, "--yes", "-q"]);
        assert_inventory_empty(&emu, &context);
    }
}

/// Ten seeded cold `up`s of the full stack in a storm: 30 % of calls throttled, 5 % answered
/// 500 and 5 % of mutating answers lost. Each converges in one run, with what a clean `up`
/// leaves in every service.
#[test]
fn a_full_stack_storm_of_throttles_errors_and_lost_answers_converges_in_one_up() {
    let project = full_project();
    let (clean, _, _) = full_stack_baseline(&project);
    let seeds: Vec<u64> = (0..10).collect();
    // Two at a time, each on its own emulator.
    for pair in seeds.chunks(2) {
        let runs: Vec<_> = pair
            .iter()
            .map(|&seed| {
                let emu = Emulator::start_with_env(&[
                    ("DEPLOYER_EMU_THROTTLE_RATE", "0.3"),
                    ("DEPLOYER_EMU_FAULT_RATE", "0.05"),
                    ("DEPLOYER_EMU_LOST_RATE", "0.05"),
                    ("DEPLOYER_EMU_SEED", &seed.to_string()),
                ]);
                let mut cmd = support::deployer_command(&emu, &project);
                cmd.args(["up", "--env", ENV, "--yes", "-q"]);
                (seed, emu, std::thread::spawn(move || support::run(cmd)))
            })
            .collect();
        for (seed, emu, run) in runs {
            let context = format!("storm seed {seed}");
            let out = run.join().unwrap();
            assert!(out.status.success(), "{context}: up failed\n{}", show_output(&out));
            let totals = emu.model()["totals"].clone();
            assert!(totals["throttled"].as_u64().unwrap() > 20, "{context}: the storm happened: {totals}");
            assert!(totals["lost"].as_u64().unwrap() > 0, "{context}: answers were lost: {totals}");
            emu.set_model(json!({ "throttle_rate": 0.0, "fault_rate": 0.0, "lost_rate": 0.0 }));
            assert_same_census(&emu, &clean, &context);
            assert_converged(&emu, &project, &context);
        }
    }
}
