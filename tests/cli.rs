//! The command line's exit codes where no AWS call is made: a usage error exits 1 (2 means
//! "changes pending" or "drift found", and a typo in a cron line must not raise a false drift
//! alarm), `--help` and `--version` exit 0, and `rotate-db-password --help` teaches its window.

use std::process::Command;

fn deployer(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_deployer"))
        .args(args)
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .expect("run deployer")
}

#[test]
fn a_usage_error_exits_1_and_help_exits_0() {
    for args in [
        &["drift", "--env", "local", "--ouptut", "json"][..],
        &["plan"][..],
        &["frobnicate"][..],
        &["failover", "--env", "local", "--to", "us-east-2", "--probe-secs", "0"][..],
    ] {
        let out = deployer(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(!out.stderr.is_empty(), "{args:?}: says what is wrong");
    }
    for args in [&["--help"][..], &["--version"][..], &["rotate-db-password", "--help"][..]] {
        let out = deployer(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
    }
    let help = String::from_utf8(deployer(&["rotate-db-password", "--help"]).stdout).unwrap();
    assert!(help.contains("cannot open new database connections"), "{help}");
}
