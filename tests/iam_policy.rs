//! `deployer iam-policy` against what the deployer really sends.
//!
//! `the_policy_grants_exactly_what_the_suite_sent` (ignored by default; `scripts/test` runs it
//! last, after the whole suite): every scenario test's emulator recorded the IAM actions of the
//! deployer's own requests (`DEPLOYER_RECORD_ACTIONS_DIR`, written by `tests/support`). The
//! policy printed for the shipped `local` environment with every tier on (the drift schedule
//! too) must grant every one of them — none missing — and nothing that no test sent — none
//! unused — but the actions AWS services take with the deployer's credentials on its behalf
//! (`permissions::ON_ITS_BEHALF`, which no request of the deployer's shows).
//!
//! The other tests run anywhere: the output's shape, `--split`, and a bad `--account`.

mod support;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use support::{deployer, deployer_ok, show_output, stderr_text, stdout_json, Emulator, Project};

const ENV: &str = "local";
const ACCOUNT: &str = "123456789012";
const DRIFT: &str = "\n[drift]\nschedule = \"rate(6 hours)\"\nimage = \"123456789012.dkr.ecr.us-east-1.amazonaws.com/deployer:1.0.0\"\n";

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect(),
        _ => vec![],
    }
}

fn granted(policy: &Value) -> BTreeSet<String> {
    policy["Statement"].as_array().unwrap().iter().flat_map(|s| strings(&s["Action"])).collect()
}

/// The policy for `local` with every tier on, as the binary prints it.
fn full_policy(emu: &Emulator) -> Value {
    let project = Project::new();
    project.edit("local.toml", |t| format!("{t}{DRIFT}"));
    stdout_json(&deployer_ok(emu, &project, &["iam-policy", "--env", ENV, "--account", ACCOUNT]))
}

#[test]
#[ignore = "needs the whole suite's recordings: scripts/test runs it last"]
fn the_policy_grants_exactly_what_the_suite_sent() {
    let dir = std::env::var_os("DEPLOYER_RECORD_ACTIONS_DIR")
        .filter(|d| !d.is_empty())
        .expect("DEPLOYER_RECORD_ACTIONS_DIR: run through scripts/test, after the whole suite");
    let mut sent: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let Ok(actions) =
            serde_json::from_str::<BTreeMap<String, u64>>(&std::fs::read_to_string(&path).unwrap())
        else {
            continue;
        };
        files += 1;
        let test = path.file_stem().unwrap().to_string_lossy().into_owned();
        for action in actions.into_keys() {
            sent.entry(action).or_default().insert(test.clone());
        }
    }
    assert!(files > 20, "only {files} recordings in {dir:?}: did the whole suite run?");
    // Needs no permission (GetCallerIdentity), or is the bootstrap identity's, not the
    // policy's (AssumeRole of aws.role_arn, tests/cross_account.rs).
    for free in ["sts:GetCallerIdentity", "sts:AssumeRole"] {
        sent.remove(free);
    }
    let emu = Emulator::start();
    let policy = full_policy(&emu);
    let granted = granted(&policy);
    // Sent with the emulator's (administrator's) credentials, and deliberately not granted: the
    // roles' permissions boundary is the administrator's to create and change.
    let administrator: BTreeSet<&str> =
        deployer::permissions::ADMINISTRATOR_ONLY.iter().map(|(a, _)| *a).collect();
    for a in &administrator {
        assert!(sent.contains_key(*a), "{a} is listed as an administrator's but no test sent it");
        assert!(!granted.contains(*a), "{a} is the administrator's, and granted");
    }
    let missing: Vec<String> = sent
        .iter()
        .filter(|(a, _)| !granted.contains(*a) && !administrator.contains(a.as_str()))
        .map(|(a, tests)| {
            format!("{a} (sent in {})", tests.iter().take(2).cloned().collect::<Vec<_>>().join(", "))
        })
        .collect();
    let behalf: BTreeSet<&str> = deployer::permissions::ON_ITS_BEHALF
        .iter()
        .chain(deployer::permissions::IMPLIED)
        .map(|(a, _)| *a)
        .collect();
    let unused: Vec<&String> =
        granted.iter().filter(|a| !sent.contains_key(*a) && !behalf.contains(a.as_str())).collect();
    assert!(
        missing.is_empty() && unused.is_empty(),
        "iam-policy does not match what the suite sent.\n  missing (sent, not granted): {missing:#?}\n  unused (granted, never sent by any test): {unused:#?}"
    );
}

#[test]
fn the_policy_scopes_changes_and_splits_within_iam_s_limit() {
    let emu = Emulator::start();
    emu.start_recording();
    let policy = full_policy(&emu);
    emu.stop_recording();
    assert_eq!(emu.recorded_actions(), Vec::<String>::new(), "--account: no request at all");
    let statements = policy["Statement"].as_array().unwrap();
    for s in statements {
        let sid = s["Sid"].as_str().unwrap();
        let resources = strings(&s["Resource"]);
        let actions = strings(&s["Action"]);
        if sid.ends_with("Read") {
            assert!(
                actions.iter().all(|a| {
                    let op = a.split_once(':').unwrap().1;
                    ["Describe", "List", "Get", "BatchGet"].iter().any(|p| op.starts_with(p))
                }),
                "{sid}: {actions:?}"
            );
            continue;
        }
        // A change on `*` is held to the environment's regions, or is one AWS takes on the
        // deployer's behalf.
        if resources == ["*"] && sid != "OnTheDeployersBehalf" {
            assert_eq!(
                s["Condition"]["StringEquals"]["aws:RequestedRegion"],
                serde_json::json!(["us-east-1", "us-east-2"]),
                "{sid}"
            );
        }
        if sid == "IamRolesWithinTheBoundary" || sid == "PassEnvironmentRoles" {
            assert_eq!(resources, [format!("arn:aws:iam::{ACCOUNT}:role/deployer/webapp/local/*")], "{sid}");
        }
        if sid == "IamRolesWithinTheBoundary" {
            assert_eq!(
                s["Condition"]["StringEquals"]["iam:PermissionsBoundary"],
                serde_json::json!([format!(
                    "arn:aws:iam::{ACCOUNT}:policy/deployer/webapp/local/webapp-local-boundary"
                )]),
                "{sid}"
            );
            assert_eq!(
                actions.iter().map(String::as_str).collect::<BTreeSet<_>>(),
                BTreeSet::from(["iam:CreateRole", "iam:PutRolePermissionsBoundary", "iam:PutRolePolicy"]),
                "{sid}"
            );
        }
        if sid == "IamChange" {
            assert!(
                !actions.iter().any(|a| [
                    "iam:CreateRole",
                    "iam:PutRolePolicy",
                    "iam:CreatePolicy",
                    "iam:CreatePolicyVersion"
                ]
                .contains(&a.as_str())),
                "{actions:?}"
            );
        }
        if sid == "RdsChange" {
            assert!(resources.contains(&format!("arn:aws:rds:*:{ACCOUNT}:db:webapp-local")), "{resources:?}");
        }
    }
    let project = Project::new();
    let split = stdout_json(&deployer_ok(
        &emu,
        &project,
        &["iam-policy", "--env", ENV, "--account", ACCOUNT, "--split"],
    ));
    let parts = split.as_array().unwrap();
    assert!(parts.len() >= 2, "the full policy is larger than one managed policy");
    for p in parts {
        assert!(p.to_string().len() <= 6144, "{}", p.to_string().len());
    }
    let whole =
        stdout_json(&deployer_ok(&emu, &project, &["iam-policy", "--env", ENV, "--account", ACCOUNT]));
    let together: BTreeSet<String> = parts.iter().flat_map(granted).collect();
    assert_eq!(together, granted(&whole), "split loses nothing");

    let bad = deployer(&emu, &project, &["iam-policy", "--env", ENV, "--account", "12345"]);
    assert_eq!(bad.status.code(), Some(1), "{}", show_output(&bad));
    assert!(stderr_text(&bad).contains("12 digits"));
}

/// Without --account, the account is read (STS, which needs no permission) after assuming
/// `aws.role_arn`, and the note says what the bootstrap identity needs.
#[test]
fn the_account_is_the_assumed_role_s_and_the_bootstrap_needs_only_assume_role() {
    let emu = Emulator::start();
    let project = Project::new();
    project.edit("local.toml", |t| {
        t.replace("[aws]\n", "[aws]\nrole_arn = \"arn:aws:iam::111122223333:role/deployer\"\n")
    });
    let out = deployer_ok(&emu, &project, &["iam-policy", "--env", ENV]);
    let policy = stdout_json(&out);
    assert!(
        policy.to_string().contains("arn:aws:iam::111122223333:role/deployer/webapp/local/*"),
        "{policy}"
    );
    assert!(stderr_text(&out).contains("needs only sts:AssumeRole"), "{}", show_output(&out));
}
