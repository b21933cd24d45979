//! `deployer rotate-db-password` on the shipped `local` environment: the new password reaches
//! the primary, both regions' copies of the secret and both services (new tasks through
//! CodeDeploy), the old one works nowhere, and neither is ever printed. A rotation killed after
//! any of its mutating calls is finished by the next run, with the password the first one made
//! once it was stored. Judged by the emulator's own answers (its `/_deployer/rds/login`, Secrets
//! Manager and CodeDeploy, read with the test's own clients).

mod support;

use std::os::unix::process::ExitStatusExt;

use serde_json::json;
use support::{deployer, deployer_ok, deployer_with_pidfile, show_output, stdout_json, Emulator, Project};

const ENV: &str = "local";
const IDENTIFIER: &str = "webapp-local";
const SECRET: &str = "webapp-local/db-master";
const REGIONS: [&str; 2] = ["us-east-1", "us-east-2"];

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

/// Both regions' copies of the secret, which must agree: (password, pending password, rotation).
fn secret(emu: &Emulator) -> (String, Option<String>, Option<String>) {
    runtime().block_on(async {
        let (_, _, a) = support::db_secret(emu, REGIONS[0], SECRET).await.unwrap();
        let (_, of, b) = support::db_secret(emu, REGIONS[1], SECRET).await.unwrap();
        assert_eq!(of.as_deref(), Some(REGIONS[0]), "still a replica");
        assert_eq!(a, b, "every region's copy holds the same");
        let s = |k: &str| a[k].as_str().map(str::to_string);
        (s("password").unwrap(), s("pending_password"), s("rotation"))
    })
}

/// The descriptions of every deployment in `region`'s group.
fn deployments(emu: &Emulator, region: &'static str) -> Vec<(String, String)> {
    runtime().block_on(async {
        let cd = aws_sdk_codedeploy::Client::new(&support::sdk_config(emu, region).await);
        let ids = cd
            .list_deployments()
            .application_name(IDENTIFIER)
            .deployment_group_name(IDENTIFIER)
            .send()
            .await
            .unwrap()
            .deployments()
            .to_vec();
        if ids.is_empty() {
            return vec![];
        }
        let out = cd.batch_get_deployments().set_deployment_ids(Some(ids)).send().await.unwrap();
        out.deployments_info()
            .iter()
            .map(|d| {
                (
                    d.status().map(|s| s.as_str().to_string()).unwrap_or_default(),
                    d.description().unwrap_or_default().to_string(),
                )
            })
            .collect()
    })
}

/// The rotation is done: `new` works on both databases, `old` nowhere, the secret holds `new`
/// with nothing pending, and each region's service has a deployment carrying the rotation's
/// name that put all traffic on new tasks (succeeded, or in its termination wait: the old tasks
/// kept a while, serving nothing).
fn assert_rotated(emu: &Emulator, old: &str) -> String {
    let (new, pending, rotation) = secret(emu);
    assert_ne!(new, old, "a new password");
    assert_eq!(pending, None, "nothing pending");
    for region in REGIONS {
        assert!(
            support::db_login(emu, region, IDENTIFIER, "app_admin", &new),
            "{region} takes the new password"
        );
        assert!(
            !support::db_login(emu, region, IDENTIFIER, "app_admin", old),
            "{region}: the old one works nowhere"
        );
    }
    let rotation = rotation.expect("the rotation's name");
    for region in REGIONS {
        let carrying: Vec<_> =
            deployments(emu, region).into_iter().filter(|(_, d)| d.contains(&rotation)).collect();
        assert!(
            carrying.iter().any(|(s, _)| s == "Succeeded" || s == "InProgress"),
            "{region}: new tasks for {rotation}: {carrying:?}"
        );
    }
    new
}

fn up(emu: &Emulator, project: &Project) -> String {
    deployer_ok(emu, project, &["up", "--env", ENV, "--yes", "-q"]);
    secret(emu).0
}

#[test]
fn rotation_reaches_the_database_both_secrets_and_both_services_and_prints_no_password() {
    let emu = Emulator::start();
    let project = Project::new();
    let old = up(&emu, &project);
    let out = deployer(&emu, &project, &["rotate-db-password", "--env", ENV, "--yes", "--output", "json"]);
    assert!(out.status.success(), "{}", show_output(&out));
    let new = assert_rotated(&emu, &old);
    let report = stdout_json(&out);
    assert_eq!(report["ok"], json!(true));
    assert_eq!(report["resumed"], json!(false));
    assert_eq!(report["releases"].as_array().unwrap().len(), 2, "{report:#}");
    support::assert_never_printed(&old, &[&out]);
    support::assert_never_printed(&new, &[&out]);
    // The environment is as configured: nothing for `up` to do.
    let plan = deployer(&emu, &project, &["plan", "--env", ENV, "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(0), "{}", show_output(&plan));
    // A second rotation makes yet another password.
    deployer_ok(&emu, &project, &["rotate-db-password", "--env", ENV, "--yes"]);
    assert_rotated(&emu, &new);
}

#[test]
fn a_rotation_killed_after_any_mutating_call_is_finished_by_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("deployer.pid");
    let mut killed_at = Vec::new();
    for k in 1..=12 {
        let emu = Emulator::start_with_env(&[("DEPLOYER_EMU_KILL_PIDFILE", pidfile.to_str().unwrap())]);
        let project = Project::new();
        let old = up(&emu, &project);
        emu.set_model(json!({"kill_after": k, "kill_pidfile": pidfile.to_str().unwrap()}));
        let first =
            deployer_with_pidfile(&emu, &project, &["rotate-db-password", "--env", ENV, "--yes"], &pidfile);
        if first.status.signal() != Some(9) {
            assert!(first.status.success(), "K={k}: {}", show_output(&first));
            assert_rotated(&emu, &old);
            break;
        }
        let op = emu.model()["kill"]["operation"].as_str().unwrap_or("?").to_string();
        killed_at.push(op.clone());
        emu.set_model(json!({"kill_after": null}));
        // What the killed run stored as pending is what the database ends with.
        let (_, pending, _) = secret(&emu);
        deployer_ok(&emu, &project, &["unlock", "--env", ENV, "--yes"]);
        let second =
            deployer(&emu, &project, &["rotate-db-password", "--env", ENV, "--yes", "--output", "json"]);
        assert!(second.status.success(), "K={k} ({op}): {}", show_output(&second));
        let new = assert_rotated(&emu, &old);
        if let Some(pending) = pending {
            assert_eq!(new, pending, "K={k} ({op}): the killed run's password, not a second one");
            assert_eq!(stdout_json(&second)["resumed"], json!(true), "K={k} ({op})");
        }
    }
    for op in ["PutSecretValue", "ModifyDBInstance", "CreateDeployment"] {
        assert!(killed_at.iter().any(|o| o == op), "killed after {op}: {killed_at:?}");
    }
}
