//! Releases end to end, against the emulator's CodeDeploy engine: `up --image` releases region
//! by region (the primary first) and never twice; a canary's 10/90 split is seen on the
//! production listener; an alarm during the primary's deployment rolls it back, leaves the
//! secondary untouched and exits 3; `rollback` of a finished release and of one in flight; a
//! CRITICAL scan finding blocks the release; a release killed mid-deployment is finished by the
//! next run, with no second deployment. Judged by CodeDeploy's, ECS's and ELB's own answers.

mod support;

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_codedeploy::types::DeploymentInfo;
use serde_json::json;
use support::{deployer, deployer_command, deployer_ok, show_output, stderr_text, Emulator, Project};

const ENV: &str = "local";
const NAME: &str = "webapp-local";
const PRIMARY: &str = "us-east-1";
const SECONDARY: &str = "us-east-2";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

struct Region {
    ecr: aws_sdk_ecr::Client,
    ecs: aws_sdk_ecs::Client,
    elb: aws_sdk_elasticloadbalancingv2::Client,
    cd: aws_sdk_codedeploy::Client,
    cw: aws_sdk_cloudwatch::Client,
}

async fn region(emu: &Emulator, name: &'static str) -> Region {
    let c = support::sdk_config(emu, name).await;
    Region {
        ecr: aws_sdk_ecr::Client::new(&c),
        ecs: aws_sdk_ecs::Client::new(&c),
        elb: aws_sdk_elasticloadbalancingv2::Client::new(&c),
        cd: aws_sdk_codedeploy::Client::new(&c),
        cw: aws_sdk_cloudwatch::Client::new(&c),
    }
}

impl Region {
    /// Pushes an image tagged `tag`.
    async fn push(&self, tag: &str) {
        support::push_image(&self.ecr, NAME, tag).await;
    }

    /// The group's deployments, newest first.
    async fn deployments(&self) -> Vec<DeploymentInfo> {
        let ids = self
            .cd
            .list_deployments()
            .application_name(NAME)
            .deployment_group_name(NAME)
            .send()
            .await
            .unwrap()
            .deployments()
            .to_vec();
        if ids.is_empty() {
            return vec![];
        }
        let mut all = self
            .cd
            .batch_get_deployments()
            .set_deployment_ids(Some(ids))
            .send()
            .await
            .unwrap()
            .deployments_info()
            .to_vec();
        all.sort_by_key(|d| std::cmp::Reverse(d.create_time().map(|t| t.as_nanos()).unwrap_or_default()));
        all
    }

    /// The image tag the service runs (its task definition's container).
    async fn running_tag(&self) -> String {
        let out = self.ecs.describe_services().cluster(NAME).services(NAME).send().await.unwrap();
        let td = out.services()[0].task_definition().unwrap().to_string();
        let td = self.ecs.describe_task_definition().task_definition(&td).send().await.unwrap();
        let image = td.task_definition().unwrap().container_definitions()[0].image().unwrap().to_string();
        image.rsplit_once(':').unwrap().1.to_string()
    }

    /// The service's target group, and where the production (HTTPS) listener forwards with
    /// which weights.
    async fn traffic(&self) -> (String, Vec<(String, i32)>) {
        let out = self.ecs.describe_services().cluster(NAME).services(NAME).send().await.unwrap();
        let serving = out.services()[0].load_balancers()[0].target_group_arn().unwrap().to_string();
        let lb = self.elb.describe_load_balancers().names(NAME).send().await.unwrap();
        let lb = lb.load_balancers()[0].load_balancer_arn().unwrap().to_string();
        let listeners = self.elb.describe_listeners().load_balancer_arn(lb).send().await.unwrap();
        let https = listeners.listeners().iter().find(|l| l.port() == Some(443)).unwrap();
        let action = &https.default_actions()[0];
        let forward: Vec<(String, i32)> = match action.forward_config().map(|f| f.target_groups()) {
            Some(groups) if groups.len() > 1 => groups
                .iter()
                .map(|g| (g.target_group_arn().unwrap().to_string(), g.weight().unwrap_or(1)))
                .collect(),
            _ => vec![(action.target_group_arn().unwrap().to_string(), 100)],
        };
        (serving, forward)
    }
}

/// An environment with the service tier up, running the configured image (`latest`), and the
/// image `v2` pushed to the primary's repository (replicated to the secondary).
fn ready(project: &Project, emu: &Emulator) -> (Region, Region) {
    deployer_ok(emu, project, &["up", "--env", ENV, "--yes"]);
    runtime().block_on(async {
        let (p, s) = (region(emu, PRIMARY).await, region(emu, SECONDARY).await);
        p.push("v2").await;
        (p, s)
    })
}

fn spawn(emu: &Emulator, project: &Project, args: &[&str]) -> Child {
    deployer_command(emu, project).args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
}

/// Polls until `check` holds (or panics after `limit`).
fn until<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + limit;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A release's or a rollback's per-region results in a JSON report: (region, outcome, deployment).
fn region_results(results: &serde_json::Value) -> Vec<(&str, &str, &str)> {
    results
        .as_array()
        .unwrap_or_else(|| panic!("per-region results: {results}"))
        .iter()
        .map(|r| {
            (r["region"].as_str().unwrap(), r["outcome"].as_str().unwrap(), r["deployment"].as_str().unwrap())
        })
        .collect()
}

fn status_of(d: &DeploymentInfo) -> &str {
    d.status().map(|s| s.as_str()).unwrap_or("")
}

#[test]
fn a_release_goes_region_by_region_is_not_repeated_and_is_rolled_back() {
    let emu = Emulator::start();
    let project = Project::new();
    let (p, s) = ready(&project, &emu);
    let rt = runtime();

    // `release`, the release step alone (the other tests release with `up --image`), in JSON.
    let out =
        deployer_ok(&emu, &project, &["release", "--env", ENV, "--yes", "--image", "v2", "--output", "json"]);
    assert!(stderr_text(&out).contains("released"), "{}", show_output(&out));
    let baked = support::stdout_json_lines(&out)
        .iter()
        .any(|l| l["type"] == "message" && l["message"].as_str().unwrap_or_default().contains("baking"));
    assert!(baked, "the bake is an event line: {}", show_output(&out));
    let report = support::stdout_json(&out);
    assert_eq!(
        (report["command"].as_str(), report["exit_code"].as_u64()),
        (Some("release"), Some(0)),
        "{report}"
    );
    let released: Vec<(&str, &str, &str)> = region_results(&report["release"]["regions"]);
    rt.block_on(async {
        assert_eq!((p.running_tag().await, s.running_tag().await), ("v2".into(), "v2".into()));
        let (dp, ds) = (p.deployments().await, s.deployments().await);
        assert_eq!((dp.len(), ds.len()), (1, 1), "one deployment per region");
        assert_eq!(
            released,
            vec![
                (PRIMARY, "released", dp[0].deployment_id().unwrap()),
                (SECONDARY, "released", ds[0].deployment_id().unwrap())
            ],
            "the report names each region's deployment"
        );
        assert!(
            dp[0].start_time().unwrap().as_nanos() < ds[0].start_time().unwrap().as_nanos(),
            "the primary first"
        );
        assert!(dp[0].description().unwrap().contains("v2"), "the release names its image");
        for r in [&p, &s] {
            let (serving, forward) = r.traffic().await;
            assert_eq!(
                forward,
                vec![(serving.clone(), 100)],
                "production forwards to the new PRIMARY's group"
            );
        }
    });

    // An image that was never pushed is refused before anything changes.
    emu.start_recording();
    let missing = deployer(&emu, &project, &["up", "--env", ENV, "--yes", "--image", "v9"]);
    emu.stop_recording();
    assert_eq!(missing.status.code(), Some(1), "{}", show_output(&missing));
    assert!(
        stderr_text(&missing).contains("webapp-local:v9 is not in the repository"),
        "{}",
        show_output(&missing)
    );
    let sent: Vec<String> =
        emu.recorded_actions().into_iter().filter(|a| !support::is_read_action(a)).collect();
    assert_eq!(sent, Vec::<String>::new(), "nothing was changed");

    // Again: nothing to release, no second deployment, no change sent; and the image chosen
    // with --image is no drift.
    let again = deployer_ok(&emu, &project, &["up", "--env", ENV, "--yes", "--image", "v2"]);
    assert!(stderr_text(&again).contains("No changes"), "{}", show_output(&again));
    rt.block_on(async { assert_eq!((p.deployments().await.len(), s.deployments().await.len()), (1, 1)) });
    deployer_ok(&emu, &project, &["drift", "--env", ENV]);

    // `status` shows the running revision and the last success, per region.
    let status =
        support::stdout_json(&deployer_ok(&emu, &project, &["status", "--env", ENV, "--output", "json"]));
    let releases = status["releases"].as_array().unwrap();
    assert_eq!(releases.len(), 2);
    assert!(releases.iter().all(|r| r["running_image"].as_str().unwrap().ends_with(":v2")), "{releases:?}");
    // Finished, or serving the new version during the termination wait.
    assert!(
        releases
            .iter()
            .all(|r| r["last_success"]["id"].is_string() || r["in_flight"]["in_termination_wait"] == true),
        "{releases:?}"
    );

    // Rollback of the finished release: both regions back on the first image.
    let out = deployer_ok(&emu, &project, &["rollback", "--env", ENV, "--yes", "--output", "json"]);
    let report = support::stdout_json(&out);
    assert_eq!(
        (report["command"].as_str(), report["exit_code"].as_u64()),
        (Some("rollback"), Some(0)),
        "{report}"
    );
    let rolled_back: Vec<(&str, &str, &str)> = region_results(&report["rollback"]);
    rt.block_on(async {
        assert_eq!((p.running_tag().await, s.running_tag().await), ("latest".into(), "latest".into()));
        let (dp, ds) = (p.deployments().await, s.deployments().await);
        assert!(
            ds[0].create_time().unwrap().as_nanos() < dp[0].create_time().unwrap().as_nanos(),
            "the secondary first, then the primary"
        );
        // A region still in the release's termination wait is stopped with CodeDeploy's
        // rollback; a finished one is redeployed. Either way the report names the deployment
        // that took it back, the region's newest.
        let regions: Vec<&str> = rolled_back.iter().map(|r| r.0).collect();
        assert_eq!(regions, vec![SECONDARY, PRIMARY], "in the order they ran: {rolled_back:?}");
        for ((region, outcome, deployment), newest) in rolled_back.iter().zip([&ds[0], &dp[0]]) {
            assert!(["redeployed", "stopped and rolled back"].contains(outcome), "{rolled_back:?}");
            assert_eq!(Some(*deployment), newest.deployment_id(), "{rolled_back:?}");
            // The summary on stderr says the same.
            let line = format!("  {region:12} {outcome}");
            assert!(stderr_text(&out).contains(&line), "{line:?} in {}", show_output(&out));
        }
    });
}

#[test]
fn a_canary_sends_ten_percent_first() {
    let emu = Emulator::start();
    let project = Project::new();
    project.edit("local.toml", |t| {
        t.replace(
            "bake_secs = 2",
            "bake_secs = 0\ndeployment_config = \"CodeDeployDefault.ECSCanary10Percent5Minutes\"",
        )
    });
    let (p, _s) = ready(&project, &emu);
    let mut child = spawn(&emu, &project, &["release", "--env", ENV, "--yes", "--image", "v2"]);
    let rt = runtime();
    let split = until("a 10/90 split on the primary's production listener", Duration::from_secs(60), || {
        let (_, forward) = rt.block_on(p.traffic());
        let mut weights: Vec<i32> = forward.iter().map(|(_, w)| *w).collect();
        weights.sort();
        (weights == [10, 90]).then_some(weights)
    });
    assert_eq!(split, [10, 90]);
    let status = child.wait().unwrap();
    assert!(status.success(), "the canary release finishes");
    assert_eq!(rt.block_on(p.running_tag()), "v2");
}

#[test]
fn an_alarm_during_the_primary_s_release_rolls_it_back_and_leaves_the_secondary_untouched() {
    let emu = Emulator::start();
    let project = Project::new();
    let (p, s) = ready(&project, &emu);
    let rt = runtime();
    let (blue_before, _) = rt.block_on(p.traffic());
    let child = spawn(&emu, &project, &["up", "--env", ENV, "--yes", "--image", "v2"]);
    until("the primary's deployment", Duration::from_secs(60), || {
        rt.block_on(p.deployments()).first().filter(|d| status_of(d) == "InProgress").map(|_| ())
    });
    rt.block_on(async {
        for colour in ["blue", "green"] {
            p.cw.set_alarm_state()
                .alarm_name(format!("{NAME}-{colour}-5xx"))
                .state_value(aws_sdk_cloudwatch::types::StateValue::Alarm)
                .state_reason("test: errors")
                .send()
                .await
                .unwrap();
        }
    });
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", show_output(&out));
    assert!(stderr_text(&out).contains("ALARM_ACTIVE"), "{}", show_output(&out));
    rt.block_on(async {
        let dp = p.deployments().await;
        assert_eq!(dp.len(), 2, "the release and CodeDeploy's rollback");
        assert_eq!(status_of(&dp[1]), "Stopped");
        assert_eq!(status_of(&dp[0]), "Succeeded");
        assert_eq!(dp[0].creator().map(|c| c.as_str()), Some("codeDeployRollback"));
        let (serving, forward) = p.traffic().await;
        assert_eq!(serving, blue_before, "blue serves again");
        assert_eq!(forward, vec![(blue_before.clone(), 100)], "production traffic is back on blue");
        assert_eq!(p.running_tag().await, "latest");
        assert!(s.deployments().await.is_empty(), "the secondary was never touched");
        assert_eq!(s.running_tag().await, "latest");
    });
}

fn kill(mut child: Child) {
    child.kill().unwrap(); // SIGKILL: no chance to clean up, as a crash or a cancelled CI job
    child.wait().unwrap();
}

#[test]
fn rollback_of_a_release_in_flight_stops_it_and_rolls_it_back() {
    let emu = Emulator::start();
    let project = Project::new();
    project.edit("local.toml", |t| {
        t.replace(
            "bake_secs = 2",
            "bake_secs = 0\ndeployment_config = \"CodeDeployDefault.ECSLinear10PercentEvery3Minutes\"",
        )
    });
    let (p, s) = ready(&project, &emu);
    let rt = runtime();
    let (blue, _) = rt.block_on(p.traffic());
    // The release's CI job is cancelled mid-shift; the deployment goes on in CodeDeploy.
    let child = spawn(&emu, &project, &["release", "--env", ENV, "--yes", "--image", "v2"]);
    until("traffic shifting in the primary", Duration::from_secs(60), || {
        (rt.block_on(p.traffic()).1.len() == 2).then_some(())
    });
    kill(child);
    deployer_ok(&emu, &project, &["unlock", "--env", ENV, "--yes"]);
    let out = deployer_ok(&emu, &project, &["rollback", "--env", ENV, "--yes"]);
    assert!(stderr_text(&out).contains("stopped and rolled back"), "{}", show_output(&out));
    rt.block_on(async {
        let dp = p.deployments().await;
        assert_eq!(status_of(&dp[1]), "Stopped");
        assert_eq!(
            (status_of(&dp[0]), dp[0].creator().map(|c| c.as_str())),
            ("Succeeded", Some("codeDeployRollback"))
        );
        assert_eq!(p.traffic().await, (blue.clone(), vec![(blue.clone(), 100)]));
        assert_eq!(p.running_tag().await, "latest");
        assert!(s.deployments().await.is_empty());
    });
}

#[test]
fn a_release_killed_mid_deployment_is_finished_by_the_next_run_without_a_second_deployment() {
    let emu = Emulator::start();
    let project = Project::new();
    let (p, s) = ready(&project, &emu);
    let rt = runtime();
    let child = spawn(&emu, &project, &["up", "--env", ENV, "--yes", "--image", "v2"]);
    until("the primary's deployment", Duration::from_secs(60), || {
        rt.block_on(p.deployments()).first().filter(|d| status_of(d) == "InProgress").map(|_| ())
    });
    kill(child);
    // The killed run's lock is refused to the next run, which names the way out.
    let locked = deployer(&emu, &project, &["up", "--env", ENV, "--yes", "--image", "v2"]);
    assert!(stderr_text(&locked).contains("deployer unlock"), "{}", show_output(&locked));
    deployer_ok(&emu, &project, &["unlock", "--env", ENV, "--yes"]);
    let out =
        deployer_ok(&emu, &project, &["up", "--env", ENV, "--yes", "--image", "v2", "--output", "json"]);
    // One JSON object per line: the release's progress, then its result.
    let lines = support::stdout_json_lines(&out);
    let result = lines.last().unwrap();
    // Re-attached to the deployment in flight; or, on a slow machine, CodeDeploy went on with it
    // between the kill and this run, which then found the primary already on v2, or that very
    // deployment in its termination wait (taken as this release's). Either way no second
    // deployment (below).
    let killed = rt.block_on(p.deployments())[0].deployment_id().unwrap_or_default().to_string();
    let followed = lines
        .iter()
        .any(|l| l["type"] == "deployment" && l["status"].as_str().unwrap().contains("following it"));
    let primary = &result["release"]["regions"][0];
    let finished_meanwhile = primary["outcome"] == "unchanged"
        || (primary["outcome"] == "released" && primary["deployment"] == killed.as_str());
    assert!(followed || finished_meanwhile, "re-attached: {lines:#?}");
    assert_eq!(result["release"]["failed"], false, "{result}");
    assert_eq!(result["ok"], true, "{result}");
    rt.block_on(async {
        assert_eq!(p.deployments().await.len(), 1, "no second deployment in the primary");
        assert_eq!(s.deployments().await.len(), 1);
        assert_eq!((p.running_tag().await, s.running_tag().await), ("v2".into(), "v2".into()));
    });
}

/// A run killed once the primary's traffic is on the new version is resumed, after CodeDeploy
/// finished that deployment, by the next run, which bakes the primary (its alarms watched)
/// before it deploys the secondary, as an uninterrupted run does.
#[test]
fn a_release_resumed_after_the_primary_s_traffic_shift_still_bakes_before_the_secondary() {
    let emu = Emulator::start();
    let project = Project::new();
    // No termination wait: the killed run's deployment succeeds on its own.
    project.edit("local.toml", |t| t.replace("[release]\n", "[release]\ntermination_wait_minutes = 0\n"));
    let (p, s) = ready(&project, &emu);
    let rt = runtime();
    let (before, _) = rt.block_on(p.traffic());
    let child = spawn(&emu, &project, &["up", "--env", ENV, "--yes", "--image", "v2"]);
    until("the primary's production traffic on the new version", Duration::from_secs(60), || {
        let (_, forward) = rt.block_on(p.traffic());
        (forward.len() == 1 && forward[0].0 != before && forward[0].1 == 100).then_some(())
    });
    kill(child);
    assert!(rt.block_on(s.deployments()).is_empty(), "killed before the secondary's deployment");
    until("the primary's deployment to succeed", Duration::from_secs(60), || {
        rt.block_on(p.deployments()).first().filter(|d| status_of(d) == "Succeeded").map(|_| ())
    });
    deployer_ok(&emu, &project, &["unlock", "--env", ENV, "--yes"]);
    let out = deployer_ok(&emu, &project, &["up", "--env", ENV, "--yes", "--image", "v2"]);
    let text = stderr_text(&out);
    let baked =
        text.find(&format!("{PRIMARY}: baking")).unwrap_or_else(|| panic!("the primary bakes:\n{text}"));
    let deployed = text
        .find(&format!("{SECONDARY}  d-"))
        .unwrap_or_else(|| panic!("the secondary is deployed:\n{text}"));
    assert!(baked < deployed, "the bake comes before the secondary's deployment:\n{text}");
    rt.block_on(async {
        assert_eq!((p.deployments().await.len(), s.deployments().await.len()), (1, 1), "none doubled");
        assert_eq!((p.running_tag().await, s.running_tag().await), ("v2".into(), "v2".into()));
    });
}

/// `plan --image TAG` previews what `up --image TAG` would do; a plain `plan` previews a plain
/// `up`, which keeps what each region runs.
#[test]
fn plan_with_an_image_previews_the_release_and_a_plain_plan_none() {
    let emu = Emulator::start();
    let project = Project::new();
    ready(&project, &emu);
    let plain = deployer_ok(&emu, &project, &["plan", "--env", ENV]);
    assert!(!show_output(&plain).contains("Release ("), "no release: {}", show_output(&plain));
    let with = deployer_ok(&emu, &project, &["plan", "--env", ENV, "--image", "v2"]);
    let text = show_output(&with);
    for region in [PRIMARY, SECONDARY] {
        assert!(text.contains(&format!("{region}: latest → v2")), "{text}");
    }
    let detailed = deployer(&emu, &project, &["plan", "--env", ENV, "--image", "v2", "--detailed-exitcode"]);
    assert_eq!(detailed.status.code(), Some(2), "a release pending is a change: {}", show_output(&detailed));
}

#[test]
fn a_critical_finding_blocks_the_release() {
    let emu = Emulator::start();
    let project = Project::new();
    let (p, s) = ready(&project, &emu);
    emu.post_json(
        "/moto-api/static/ecr/scan-finding-results",
        json!({"region": PRIMARY, "results": [{
            "registryId": "123456789012",
            "repositoryName": NAME,
            "imageId": {"imageTag": "v2"},
            "imageScanStatus": {"status": "COMPLETE", "description": "done"},
            "imageScanFindings": {
                "findings": [{"name": "CVE-2026-0001", "severity": "CRITICAL"}],
                "findingSeverityCounts": {"CRITICAL": 1},
            },
        }]}),
    );
    let out = deployer(&emu, &project, &["release", "--env", ENV, "--yes", "--image", "v2"]);
    assert_eq!(out.status.code(), Some(1), "{}", show_output(&out));
    let text = stderr_text(&out);
    assert!(text.contains("CVE-2026-0001") && text.contains("1 CRITICAL"), "{}", show_output(&out));
    assert!(text.contains("--allow-vulnerable"), "the way out is named: {text}");
    let rt = runtime();
    rt.block_on(async { assert!(p.deployments().await.is_empty() && s.deployments().await.is_empty()) });
    let out = deployer_ok(
        &emu,
        &project,
        &["release", "--env", ENV, "--yes", "--image", "v2", "--allow-vulnerable"],
    );
    assert!(stderr_text(&out).contains("warning: --allow-vulnerable"), "{}", show_output(&out));
    assert_eq!(rt.block_on(p.running_tag()), "v2");
}

/// Under ECR enhanced scanning (Amazon Inspector) a scan's status is ACTIVE, not COMPLETE, and
/// its findings are enhanced ones: a critical one blocks the release as a basic scan's does,
/// and a clean ACTIVE scan lets it through.
#[test]
fn an_enhanced_scan_is_read_like_a_basic_one() {
    let emu = Emulator::start();
    let project = Project::new();
    let (p, _) = ready(&project, &emu);
    runtime().block_on(p.push("v3"));
    let enhanced = |tag: &str, findings: serde_json::Value, counts: serde_json::Value| {
        emu.post_json(
            "/moto-api/static/ecr/scan-finding-results",
            json!({"region": PRIMARY, "results": [{
                "registryId": "123456789012",
                "repositoryName": NAME,
                "imageId": {"imageTag": tag},
                "imageScanStatus": {"status": "ACTIVE", "description": "Continuous scan is selected for image."},
                "imageScanFindings": {"enhancedFindings": findings, "findingSeverityCounts": counts},
            }]}),
        );
    };
    enhanced(
        "v2",
        json!([{"severity": "CRITICAL", "title": "CVE-2026-0002 - openssl", "packageVulnerabilityDetails": {"vulnerabilityId": "CVE-2026-0002"}}]),
        json!({"CRITICAL": 1}),
    );
    let out = deployer(&emu, &project, &["release", "--env", ENV, "--yes", "--image", "v2"]);
    assert_eq!(out.status.code(), Some(1), "{}", show_output(&out));
    let text = stderr_text(&out);
    assert!(text.contains("CVE-2026-0002") && text.contains("1 CRITICAL"), "{}", show_output(&out));
    enhanced("v3", json!([]), json!({}));
    deployer_ok(&emu, &project, &["release", "--env", ENV, "--yes", "--image", "v3"]);
    assert_eq!(runtime().block_on(p.running_tag()), "v3", "a clean ACTIVE scan passes");
}

#[test]
fn a_create_deployment_whose_answer_is_lost_is_followed_not_repeated() {
    let emu = Emulator::start();
    let project = Project::new();
    let (p, s) = ready(&project, &emu);
    // Applied by CodeDeploy, answered 500: the SDK retries, AWS refuses a second active
    // deployment, and the deployer follows the first.
    emu.set_model(json!({"lose_next": {"CreateDeployment": 1, "RegisterTaskDefinition": 1}}));
    deployer_ok(&emu, &project, &["release", "--env", ENV, "--yes", "--image", "v2"]);
    assert_eq!(emu.model()["totals"]["lost"], json!(2), "both answers were lost");
    let rt = runtime();
    rt.block_on(async {
        assert_eq!((p.deployments().await.len(), s.deployments().await.len()), (1, 1));
        assert_eq!((p.running_tag().await, s.running_tag().await), ("v2".into(), "v2".into()));
    });
    // A lost RegisterTaskDefinition left two equal revisions: no release, no drift.
    let again = deployer_ok(&emu, &project, &["release", "--env", ENV, "--yes", "--image", "v2"]);
    assert!(stderr_text(&again).contains("No release needed"), "{}", show_output(&again));
    deployer_ok(&emu, &project, &["drift", "--env", ENV]);
}

/// After a release, production forwards to green: a later plain `up` that changes only the TLS
/// policy keeps the image the release put there (no deployment) and leaves that forward alone (CodeDeploy has deleted blue's task set: forwarding to blue
/// would be an outage). And every release's new task set takes the service's capacity provider
/// strategy (Spot included), which the emulator's engine reads from the AppSpec as CodeDeploy
/// does.
#[test]
fn an_infrastructure_change_after_a_release_keeps_its_image_and_production_on_it_and_spot_is_kept() {
    let emu = Emulator::start();
    let project = Project::new();
    project.edit("local.toml", |t| format!("{t}\n[service.capacity]\nspot_weight = 3\n"));
    let (p, _) = ready(&project, &emu);
    deployer_ok(&emu, &project, &["up", "--env", ENV, "--yes", "--image", "v2"]);
    let (serving, forward) = runtime().block_on(p.traffic());
    assert_eq!(forward, vec![(serving.clone(), 100)], "production forwards to what the service runs");
    runtime().block_on(async {
        let out = p.ecs.describe_services().cluster(NAME).services(NAME).send().await.unwrap();
        let strategy: Vec<(String, i32, i32)> = out.services()[0]
            .capacity_provider_strategy()
            .iter()
            .map(|s| (s.capacity_provider().to_string(), s.weight(), s.base()))
            .collect();
        assert!(
            strategy.contains(&("FARGATE_SPOT".to_string(), 3, 0))
                && strategy.contains(&("FARGATE".to_string(), 1, 0)),
            "the release's task set keeps the strategy: {strategy:?}"
        );
    });

    project.edit("local.toml", |t| {
        t.replace("[service]\n", "[service]\nssl_policy = \"ELBSecurityPolicy-TLS13-1-3-2021-06\"\n")
    });
    emu.start_recording();
    let up = deployer_ok(&emu, &project, &["up", "--env", ENV, "--yes"]);
    emu.stop_recording();
    let actions = emu.recorded_actions();
    assert!(actions.iter().any(|a| a == "ModifyListener"), "the policy changed: {}", show_output(&up));
    // A plain `up` keeps the image each region runs (`latest`, the configured tag, is not even
    // in the repository): no deployment, v2 still runs.
    assert!(!actions.iter().any(|a| a == "CreateDeployment"), "no release: {actions:?}");
    assert_eq!(runtime().block_on(p.running_tag()), "v2");
    let (serving_after, forward_after) = runtime().block_on(p.traffic());
    assert_eq!(serving_after, serving, "the service still runs the release");
    assert_eq!(forward_after, vec![(serving, 100)], "and production still forwards 100 % to it");
}
