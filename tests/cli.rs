//! The command line's contract for scripts and cron: a usage error exits 1 (2 means
//! "changes pending" or "drift found", and a typo in a cron line must not raise a false drift
//! alarm), `--help` and `--version` exit 0, `rotate-db-password --help` teaches its window, and
//! `drift -q` prints nothing on success and one line per drifted resource otherwise, and Ctrl-C
//! at the confirmation prompt exits 130 having changed nothing.

mod support;

use std::process::Command;

fn deployer(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_deployer"))
        .args(args)
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .expect("run deployer")
}

/// The shipped local configuration with only the network tier: the quickest environment.
fn network_only() -> support::Project {
    let project = support::Project::new();
    for tier in ["registry", "database", "service", "dns", "monitoring"] {
        project.disable(tier);
    }
    project
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

/// `drift -q`, for cron: nothing at all on success; on drift one line per drifted resource on
/// stdout and exit 2.
#[test]
fn drift_quiet_says_nothing_on_success_and_one_line_per_drifted_resource() {
    let emu = support::Emulator::start();
    let project = network_only();
    support::deployer_ok(&emu, &project, &["up", "--env", "local", "--yes", "-q"]);
    let clean = support::deployer(&emu, &project, &["drift", "--env", "local", "-q"]);
    assert_eq!(clean.status.code(), Some(0));
    assert_eq!((support::stdout_text(&clean), support::stderr_text(&clean)), (String::new(), String::new()));
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let ec2 = support::ec2_client(&emu, "us-east-1").await;
        let vpcs = ec2
            .describe_vpcs()
            .filters(aws_sdk_ec2::types::Filter::builder().name("tag:deployer:env").values("local").build())
            .send()
            .await
            .unwrap();
        let vpc = vpcs.vpcs()[0].vpc_id().unwrap().to_string();
        ec2.modify_vpc_attribute()
            .vpc_id(vpc)
            .enable_dns_hostnames(aws_sdk_ec2::types::AttributeBooleanValue::builder().value(false).build())
            .send()
            .await
            .unwrap();
    });
    let drift = support::deployer(&emu, &project, &["drift", "--env", "local", "-q"]);
    assert_eq!(drift.status.code(), Some(2), "{}", support::show_output(&drift));
    assert_eq!(support::stdout_text(&drift), "~ us-east-1/network/vpc/main\n");
    assert_eq!(support::stderr_text(&drift), "");

    // `status` filters, and fits 120 columns off a terminal (IDs shortened; --wide keeps them).
    let status = |args: &[&str]| {
        let mut all = vec!["status", "--env", "local"];
        all.extend(args);
        support::stdout_text(&support::deployer_ok(&emu, &project, &all))
    };
    let problems = status(&["--only-problems"]);
    let rows: Vec<&str> = problems.lines().filter(|l| l.starts_with("  ")).collect();
    assert_eq!(rows.len(), 1, "{problems}");
    assert!(rows[0].contains("us-east-1/network/vpc/main") && rows[0].ends_with("differs"), "{problems}");
    let network = status(&["--tier", "network", "--region", "us-east-2"]);
    let rows: Vec<&str> = network.lines().filter(|l| l.starts_with("  ")).collect();
    assert!(!rows.is_empty() && rows.iter().all(|r| r.contains("us-east-2/network/")), "{network}");
    for line in status(&[]).lines() {
        assert!(line.chars().count() <= 120, "{} columns: {line}", line.chars().count());
    }
    // A filter that can match nothing is refused, naming what it can be.
    let bad = support::deployer(&emu, &project, &["status", "--env", "local", "--tier", "netwrok"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(support::stderr_text(&bad).contains("one of network"), "{}", support::stderr_text(&bad));
    let bad = support::deployer(&emu, &project, &["status", "--env", "local", "--region", "eu-west-1"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        support::stderr_text(&bad).contains("us-east-1, us-east-2, global"),
        "{}",
        support::stderr_text(&bad)
    );
    // --wide shows the same rows, with IDs never cut.
    let wide = status(&["--wide"]);
    assert_eq!(wide.lines().count(), status(&[]).lines().count(), "{wide}");
    assert!(!wide.contains('…'), "{wide}");
}

/// `--output json` is JSON Lines with exactly one final report, for every command and however
/// it ends: a run that succeeds, finds drift, is refused (the lock), or fails before any AWS
/// call (a bad configuration) each end with one `"type": "report"` line carrying `ok`,
/// `exit_code` and, on failure, `error`. (Each output is also validated against
/// docs/output.schema.json by the suite's last step.)
#[test]
fn every_command_s_json_output_ends_with_one_report_however_it_ends() {
    let emu = support::Emulator::start();
    let project = network_only();
    let json = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--output", "json"]);
        let out = support::deployer(&emu, &project, &all);
        let report = support::stdout_json(&out);
        assert_eq!(report["type"], "report", "{args:?}");
        assert_eq!(report["command"], args[0], "{args:?}");
        assert_eq!(report["env"], "local", "{args:?}");
        assert_eq!(report["exit_code"].as_i64(), out.status.code().map(i64::from), "{args:?}");
        assert_eq!(report["ok"], out.status.code() == Some(0), "{args:?}");
        report
    };
    let plan = json(&["plan", "--env", "local", "--detailed-exitcode"]);
    assert_eq!(plan["exit_code"], 2, "changes pending: {plan}");
    assert!(plan["counts"]["create"].as_u64().unwrap() > 0, "{plan}");
    let up = json(&["up", "--env", "local", "--yes"]);
    assert_eq!((up["ok"].as_bool(), up["applied"].as_bool()), (Some(true), Some(true)), "{up}");
    assert!(up["outcomes"].as_array().is_some_and(|o| !o.is_empty()), "{up}");
    let again = json(&["up", "--env", "local", "--yes"]);
    assert_eq!(again["calls"]["mutating"], 0, "{again}");
    let status = json(&["status", "--env", "local"]);
    assert!(status["regions"].is_array() || status["regions"].is_object(), "{status}");
    let drift = json(&["drift", "--env", "local"]);
    assert_eq!(drift["exit_code"], 0, "{drift}");
    json(&["unlock", "--env", "local", "--yes"]);
    json(&["destroy", "--env", "local", "--yes"]);
    // Fails before any AWS call: still one report, with the error.
    project.write("local.toml", "this is not toml");
    let bad = json(&["status", "--env", "local"]);
    assert_eq!((bad["ok"].as_bool(), bad["exit_code"].as_i64()), (Some(false), Some(1)), "{bad}");
    assert!(bad["error"].as_str().is_some_and(|e| e.contains("local.toml")), "{bad}");
}

/// A run that cannot succeed fails at once with one message: the endpoint refuses (nothing
/// listens), or there are no credentials. It names the endpoint, the region and where
/// credentials were looked for, and retries nothing.
#[test]
fn an_unreachable_endpoint_or_missing_credentials_fail_at_once_naming_what_was_tried() {
    let project = support::Project::new();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let out = Command::new(env!("CARGO_BIN_EXE_deployer"))
        .args(["--config-dir", project.dir().to_str().unwrap(), "status", "--env", "local"])
        .env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}"))
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr)
        .replace('│', " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    for expected in [
        &format!("cannot reach AWS at the endpoint http://127.0.0.1:{port} (region us-east-1)")[..],
        "Connection refused",
        "nothing was read or changed",
    ] {
        assert!(err.contains(expected), "says {expected:?}: {err}");
    }
    assert!(
        !err.contains("trying the step again") && !err.contains("WARN"),
        "no retries, no warnings: {err}"
    );

    let out = Command::new(env!("CARGO_BIN_EXE_deployer"))
        // (prod: the shipped local config names the emulator's test credentials.)
        .args(["--config-dir", project.dir().to_str().unwrap(), "status", "--env", "prod"])
        .env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}"))
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .env("AWS_CONFIG_FILE", project.path("no-aws-config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", project.path("no-aws-credentials"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr)
        .replace('│', " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    for expected in [
        "cannot reach AWS",
        "no credentials found",
        "credentials from the default chain",
        "configure AWS credentials",
    ] {
        assert!(err.contains(expected), "says {expected:?}: {err}");
    }
    assert!(!err.contains("trying the step again"), "no retries: {err}");
}

/// A resource tagged for the environment whose `deployer:address` tag is not an address is not
/// the deployer's to judge: every kind skips it with the same warning, never silently, and the
/// plan leaves it alone.
#[test]
fn a_resource_with_a_malformed_address_tag_is_named_in_a_warning_and_left_alone() {
    let emu = support::Emulator::start();
    let project = network_only();
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let sns = aws_sdk_sns::Client::new(&support::sdk_config(&emu, "us-east-1").await);
        let tag = |k: &str, v: &str| aws_sdk_sns::types::Tag::builder().key(k).value(v).build().unwrap();
        sns.create_topic()
            .name("webapp-local-hand-made")
            .tags(tag("deployer:app", "webapp"))
            .tags(tag("deployer:env", "local"))
            .tags(tag("deployer:address", "not an address"))
            .tags(tag("Name", "hand-made-topic"))
            .send()
            .await
            .unwrap();
    });
    let plan = support::deployer_ok(&emu, &project, &["plan", "--env", "local"]);
    let err = support::stderr_text(&plan);
    assert!(
        err.contains("sns-topic hand-made-topic is tagged for this environment but has no valid deployer:address tag; ignoring it"),
        "{err}"
    );
    assert!(!support::stdout_text(&plan).contains("sns-topic"), "left out of the plan");
}

/// `DEPLOYER_EMU_SCALE` tells the deployer how much faster than AWS an emulator's clock runs,
/// so that it polls as often per that clock as it would on AWS (src/cloud/wait.rs). Against
/// AWS itself (no endpoint URL) it is refused before any AWS call, as is a value that is not a
/// scale: AWS is never polled faster than its own pace.
#[test]
fn the_emulator_time_scale_is_refused_without_an_emulator_and_when_it_is_not_a_scale() {
    let project = support::Project::new();
    let run = |env: &str, endpoint: Option<&str>, scale: &str| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_deployer"));
        cmd.args(["--config-dir", project.dir().to_str().unwrap(), "status", "--env", env])
            .env_remove("AWS_ENDPOINT_URL")
            .env("DEPLOYER_EMU_SCALE", scale)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("NO_COLOR", "1");
        if let Some(url) = endpoint {
            cmd.env("AWS_ENDPOINT_URL", url);
        }
        let out = cmd.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr).split_whitespace().collect::<Vec<_>>().join(" ");
        (out.status.code(), err)
    };
    // prod names no endpoint: this would be AWS.
    let (code, err) = run("prod", None, "0.01");
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("DEPLOYER_EMU_SCALE=0.01") && err.contains("refused without one"), "{err}");
    assert!(!err.contains("cannot reach AWS"), "refused before any AWS call: {err}");
    for bad in ["fast", "0", "2", "-1"] {
        let (code, err) = run("prod", Some("http://127.0.0.1:9"), bad);
        assert_eq!(code, Some(1), "{bad}: {err}");
        assert!(err.contains("expected a number greater than 0 and at most 1"), "{bad}: {err}");
    }
    // 1 is AWS's own pace: allowed anywhere (it reaches for AWS, at a closed port here).
    let (_, err) = run("prod", Some("http://127.0.0.1:9"), "1");
    assert!(!err.contains("DEPLOYER_EMU_SCALE"), "{err}");
}

/// Ctrl-C at the confirmation prompt (a terminal on standard input): exit 130, `nothing was
/// changed`, and nothing was. No change reached AWS, and no lock was taken (it is taken after
/// the answer), so the next run needs no `unlock`.
#[cfg(unix)]
#[test]
fn ctrl_c_at_the_confirmation_exits_130_and_changes_nothing() {
    use std::io::Read;
    use std::os::fd::{FromRawFd, OwnedFd};
    use std::process::Stdio;

    let emu = support::Emulator::start();
    let project = network_only();
    // A pseudo-terminal for standard input: `up` asks only on a terminal.
    let (mut controller, mut terminal) = (0, 0);
    // SAFETY: openpty writes two file descriptors it opened into the two integers; each is owned
    // once, below. The name, termios and window size pointers may be null.
    let opened = unsafe {
        libc::openpty(
            &mut controller,
            &mut terminal,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(opened, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just opened by openpty and are owned nowhere else.
    let (controller, terminal) =
        unsafe { (OwnedFd::from_raw_fd(controller), OwnedFd::from_raw_fd(terminal)) };

    emu.start_recording();
    let mut child = support::deployer_command(&emu, &project)
        .args(["up", "--env", "local"])
        .stdin(Stdio::from(terminal))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run deployer");
    let mut stderr = child.stderr.take().unwrap();
    let mut said = Vec::new();
    let mut chunk = [0u8; 4096];
    while !String::from_utf8_lossy(&said).contains("Only 'yes' will be accepted: ") {
        let n = stderr.read(&mut chunk).unwrap();
        assert!(n > 0, "it ended without asking:\n{}", String::from_utf8_lossy(&said));
        said.extend_from_slice(&chunk[..n]);
    }
    // SAFETY: kill sends a signal to the child this test started and has not yet waited for.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) }, 0);
    stderr.read_to_end(&mut said).unwrap();
    let status = child.wait().unwrap();
    drop(controller);
    emu.stop_recording();
    let said = String::from_utf8_lossy(&said);
    assert_eq!(status.code(), Some(130), "{said}");
    assert!(said.contains("interrupted at the confirmation: nothing was changed."), "{said}");
    let sent: Vec<String> =
        emu.recorded_actions().into_iter().filter(|a| !support::is_read_action(a)).collect();
    assert_eq!(sent, Vec::<String>::new(), "no change was sent:\n{said}");
    // No lock is left: the next run needs no `unlock`.
    let status = support::stdout_json(&support::deployer_ok(
        &emu,
        &project,
        &["status", "--env", "local", "--output", "json"],
    ));
    assert_eq!(status.get("lock"), Some(&serde_json::Value::Null), "{status}");
}
