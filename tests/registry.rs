//! The registry tier against the emulator: the repository in both regions with its settings and
//! lifecycle policy, the replication rule in the primary, drift found and repaired, another
//! owner's replication rule left alone, and nothing left after destroy. Judged by ECR's own
//! answers, read with clients of the test's own.

mod support;

use aws_sdk_ecr::types::{
    ImageTagMutability, ReplicationConfiguration, ReplicationDestination, ReplicationRule,
};
use support::{deployer, deployer_ok, stderr_text, stdout_text, Emulator, Project};

const ENV: &str = "local";
const REPO: &str = "webapp-local";

/// The shipped local configuration (the database, the service and monitoring have tests of
/// their own).
fn registry_project() -> Project {
    let project = Project::new();
    project.disable("database");
    project.disable("service");
    project.disable("monitoring");
    project
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

async fn ecr(emu: &Emulator, region: &'static str) -> aws_sdk_ecr::Client {
    aws_sdk_ecr::Client::new(&support::sdk_config(emu, region).await)
}

/// The rules of the registry's replication configuration in `region`.
async fn rules(emu: &Emulator, region: &'static str) -> Vec<ReplicationRule> {
    let out = ecr(emu, region).await.describe_registry().send().await.unwrap();
    out.replication_configuration().map(|c| c.rules().to_vec()).unwrap_or_default()
}

fn filters(rule: &ReplicationRule) -> Vec<String> {
    rule.repository_filters().iter().map(|f| f.filter().to_string()).collect()
}

#[test]
fn the_repository_is_built_in_both_regions_replicated_and_a_second_up_changes_nothing() {
    let emu = Emulator::start();
    let project = registry_project();
    deployer_ok(&emu, &project, &["up", "--env", ENV, "--yes", "-q"]);
    runtime().block_on(async {
        for region in ["us-east-1", "us-east-2"] {
            let client = ecr(&emu, region).await;
            let out = client.describe_repositories().repository_names(REPO).send().await.unwrap();
            let repo = &out.repositories()[0];
            assert!(repo.image_scanning_configuration().unwrap().scan_on_push(), "{region}: scan on push");
            assert_eq!(repo.image_tag_mutability(), Some(&ImageTagMutability::Mutable), "{region}");
            let tags =
                client.list_tags_for_resource().resource_arn(repo.repository_arn().unwrap()).send().await;
            let tags = tags.unwrap();
            let address = tags.tags().iter().find(|t| t.key() == "deployer:address").map(|t| t.value());
            assert_eq!(address, Some(format!("{region}/registry/ecr-repository/main").as_str()));
            let policy = client.get_lifecycle_policy().repository_name(REPO).send().await.unwrap();
            let policy: serde_json::Value =
                serde_json::from_str(policy.lifecycle_policy_text().unwrap()).unwrap();
            let selections: Vec<&str> = policy["rules"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|r| r["selection"]["tagStatus"].as_str())
                .collect();
            assert_eq!(selections, ["untagged", "tagged"], "{region}: {policy}");
        }
        let rules = rules(&emu, "us-east-1").await;
        let ours: Vec<_> = rules.iter().filter(|r| filters(r) == [REPO]).collect();
        assert_eq!(ours.len(), 1, "{rules:?}");
        let destinations: Vec<&str> = ours[0].destinations().iter().map(|d| d.region()).collect();
        assert_eq!(destinations, ["us-east-2"]);
    });

    emu.start_recording();
    let again = deployer_ok(&emu, &project, &["up", "--env", ENV, "--yes"]);
    assert!(stderr_text(&again).contains("No changes"), "{}", stderr_text(&again));
    let sent = emu.recorded_actions();
    let mutating: Vec<_> = sent.iter().filter(|a| !support::is_read_action(a)).collect();
    assert_eq!(mutating, Vec::<&String>::new(), "a converged up changes nothing");
    // Reads per region: one DescribeRepositories and one GetLifecyclePolicy for the one
    // repository, one DescribeRegistry, and its tags from the region's tagging index (one
    // GetResources, shared by every kind): never a ListTagsForResource per repository.
    for op in ["DescribeRepositories", "GetResources", "GetLifecyclePolicy", "DescribeRegistry"] {
        assert_eq!(sent.iter().filter(|a| a.ends_with(op)).count(), 2, "{op} once per region: {sent:?}");
    }
    assert!(!sent.iter().any(|a| a.ends_with("ListTagsForResource")), "{sent:?}");
}

#[test]
fn a_removed_lifecycle_policy_or_replication_rule_is_drift_that_up_repairs() {
    let emu = Emulator::start();
    let project = registry_project();
    deployer_ok(&emu, &project, &["up", "--env", ENV, "--yes", "-q"]);
    runtime().block_on(async {
        ecr(&emu, "us-east-2").await.delete_lifecycle_policy().repository_name(REPO).send().await.unwrap();
        let empty = ReplicationConfiguration::builder().set_rules(Some(vec![])).build().unwrap();
        ecr(&emu, "us-east-1")
            .await
            .put_replication_configuration()
            .replication_configuration(empty)
            .send()
            .await
            .unwrap();
    });
    let drift = deployer(&emu, &project, &["drift", "--env", ENV]);
    assert_eq!(drift.status.code(), Some(2), "{}", stderr_text(&drift));
    let text = stdout_text(&drift);
    assert!(
        text.contains("us-east-2/registry/ecr-repository/main") && text.contains("lifecycle_policy"),
        "{text}"
    );
    assert!(text.contains("+ us-east-1/registry/ecr-replication/main"), "{text}");

    deployer_ok(&emu, &project, &["up", "--env", ENV, "--yes", "-q"]);
    let clean = deployer(&emu, &project, &["drift", "--env", ENV]);
    assert_eq!(clean.status.code(), Some(0), "{}", stdout_text(&clean));
    runtime().block_on(async {
        let client = ecr(&emu, "us-east-2").await;
        assert!(client.get_lifecycle_policy().repository_name(REPO).send().await.is_ok());
        assert!(rules(&emu, "us-east-1").await.iter().any(|r| filters(r) == [REPO]));
    });
}

#[test]
fn another_owners_replication_rule_survives_up_and_destroy_and_destroy_leaves_no_repository() {
    let emu = Emulator::start();
    let project = registry_project();
    let foreign = || {
        ReplicationRule::builder()
            .destinations(
                ReplicationDestination::builder()
                    .region("us-west-2")
                    .registry_id("123456789012")
                    .build()
                    .unwrap(),
            )
            .repository_filters(
                aws_sdk_ecr::types::RepositoryFilter::builder()
                    .filter("other-team")
                    .filter_type(aws_sdk_ecr::types::RepositoryFilterType::PrefixMatch)
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap()
    };
    runtime().block_on(async {
        let config = ReplicationConfiguration::builder().rules(foreign()).build().unwrap();
        ecr(&emu, "us-east-1")
            .await
            .put_replication_configuration()
            .replication_configuration(config)
            .send()
            .await
            .unwrap();
    });
    deployer_ok(&emu, &project, &["up", "--env", ENV, "--yes", "-q"]);
    runtime().block_on(async {
        let rules = rules(&emu, "us-east-1").await;
        assert!(rules.iter().any(|r| filters(r) == ["other-team"]), "foreign rule kept by up: {rules:?}");
        assert!(rules.iter().any(|r| filters(r) == [REPO]), "{rules:?}");
    });

    deployer_ok(&emu, &project, &["destroy", "--env", ENV, "--yes", "-q"]);
    runtime().block_on(async {
        let rules = rules(&emu, "us-east-1").await;
        assert_eq!(rules.iter().map(filters).collect::<Vec<_>>(), [["other-team"]], "only ours removed");
        for region in ["us-east-1", "us-east-2"] {
            let out = ecr(&emu, region).await.describe_repositories().send().await.unwrap();
            let names: Vec<_> = out.repositories().iter().filter_map(|r| r.repository_name()).collect();
            assert!(!names.contains(&REPO), "{region}: {names:?}");
        }
    });
}

/// Without keep_on_destroy, destroy's plan marks the images it deletes as data loss.
#[test]
fn destroy_s_plan_marks_the_images_a_repository_holds_as_data_loss() {
    let emu = Emulator::start();
    let project = registry_project();
    deployer_ok(&emu, &project, &["up", "--env", ENV, "--yes", "-q"]);
    runtime().block_on(async {
        let c = ecr(&emu, "us-east-1").await;
        support::push_image(&c, REPO, "v1").await;
        support::push_image(&c, REPO, "v2").await;
    });
    let out = deployer_ok(&emu, &project, &["destroy", "--env", ENV, "--yes"]);
    let err = stderr_text(&out);
    let line = err
        .lines()
        .find(|l| l.contains("DATA LOSS: deletes the 2 image(s)"))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(line.contains("registry.keep_on_destroy"), "{line}");
}

#[test]
fn destroy_keeps_a_repository_holding_images_when_configured_and_says_so() {
    let emu = Emulator::start();
    let project = registry_project();
    project.edit("local.toml", |s| s.replace("[registry]\n", "[registry]\nkeep_on_destroy = true\n"));
    deployer_ok(&emu, &project, &["up", "--env", ENV, "--yes", "-q"]);
    runtime().block_on(async {
        support::push_image(&ecr(&emu, "us-east-1").await, REPO, "v1").await;
        // The registry replicates it to us-east-2 (after the emulator's replication delay).
        let replica = ecr(&emu, "us-east-2").await;
        let started = std::time::Instant::now();
        while replica.list_images().repository_name(REPO).send().await.unwrap().image_ids().is_empty() {
            assert!(started.elapsed() < std::time::Duration::from_secs(30), "replicated to us-east-2");
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    });
    let out = deployer_ok(&emu, &project, &["destroy", "--env", ENV, "--yes"]);
    let err = stderr_text(&out);
    for region in ["us-east-1", "us-east-2"] {
        assert!(
            err.contains(&format!("kept {region}/registry/ecr-repository/main"))
                && err.contains("keep_on_destroy"),
            "{err}"
        );
    }
    // The plan said so before anything was deleted, with the count.
    assert!(err.contains("kept: it holds 1 image(s) and registry.keep_on_destroy = true"), "{err}");
    runtime().block_on(async {
        for region in ["us-east-1", "us-east-2"] {
            let kept = ecr(&emu, region).await.describe_repositories().repository_names(REPO).send().await;
            assert!(kept.is_ok(), "{region}: the repository holding an image is kept");
        }
    });
    // Once empty, the next destroy deletes it.
    runtime().block_on(async {
        for region in ["us-east-1", "us-east-2"] {
            let c = ecr(&emu, region).await;
            let ids = c.list_images().repository_name(REPO).send().await.unwrap().image_ids().to_vec();
            c.batch_delete_image().repository_name(REPO).set_image_ids(Some(ids)).send().await.unwrap();
        }
    });
    deployer_ok(&emu, &project, &["destroy", "--env", ENV, "--yes"]);
    runtime().block_on(async {
        for region in ["us-east-1", "us-east-2"] {
            let gone = ecr(&emu, region).await.describe_repositories().send().await.unwrap();
            assert!(gone.repositories().is_empty(), "{region}: the empty repository is deleted");
        }
    });
}

/// A first `up --image TAG` into an empty account: the services would be created on an image
/// the repository does not hold, and never serve. Only the registry is created, and the run
/// stops naming the push command and what to run next; after the push, the same command builds
/// the rest on that image.
#[test]
fn a_first_up_with_an_image_not_pushed_creates_only_the_registry_and_says_how_to_push() {
    let emu = Emulator::start();
    let project = Project::new();
    let out = deployer(&emu, &project, &["up", "--env", ENV, "--yes", "--image", "v1"]);
    assert_eq!(out.status.code(), Some(1), "{}", support::show_output(&out));
    // (Error text is wrapped to the terminal: compared with its whitespace collapsed.)
    let err = stderr_text(&out).replace('│', " ").split_whitespace().collect::<Vec<_>>().join(" ");
    for expected in [
        "registry of environment 'local' is ready",
        "webapp-local:v1 is not in it yet",
        "docker push 123456789012.dkr.ecr.us-east-1.amazonaws.com/webapp-local:v1",
        "deployer up --env local --image v1",
    ] {
        assert!(err.contains(expected), "says {expected:?}:\n{err}");
    }
    // Only the registry exists: both regions' repositories and the replication rule, beside
    // the lock's generation (src/lock.rs: the run took the lock).
    let held = emu.inventory();
    assert!(!held.is_empty());
    for line in &held {
        let generation = line == "ssm us-east-1 parameter /deployer/webapp/local/generation";
        assert!(
            line.starts_with("ecr ") || generation,
            "only the registry was created, not {line}\n{held:#?}"
        );
    }
    assert!(held.iter().any(|l| l.starts_with("ecr us-east-2 repository")), "{held:#?}");

    let rt = runtime();
    rt.block_on(async {
        let ecr = aws_sdk_ecr::Client::new(&support::sdk_config(&emu, "us-east-1").await);
        support::push_image(&ecr, REPO, "v1").await;
        let ecr2 = aws_sdk_ecr::Client::new(&support::sdk_config(&emu, "us-east-2").await);
        support::push_image(&ecr2, REPO, "v1").await;
    });
    deployer_ok(&emu, &project, &["up", "--env", ENV, "--yes", "--image", "v1"]);
    let status = deployer_ok(&emu, &project, &["status", "--env", ENV, "--output", "json"]);
    let text = stdout_text(&status);
    assert!(text.contains("webapp-local:v1"), "the service runs v1: {text}");
}
