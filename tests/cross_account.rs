//! `[aws] role_arn`: every client of the environment assumes the role (with `external_id`),
//! so an environment lives in the role's account while the deployer starts with credentials of
//! another. The emulator keeps accounts apart by the credentials a request is signed with.

mod support;

use support::{deployer_ok, Emulator, Project};

const ROLE: &str = "arn:aws:iam::111122223333:role/deployer";

fn tagged_vpcs(client: &aws_sdk_ec2::Client) -> usize {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let out = client
            .describe_vpcs()
            .filters(aws_sdk_ec2::types::Filter::builder().name("tag:deployer:env").values("local").build())
            .send()
            .await
            .unwrap();
        out.vpcs().len()
    })
}

#[test]
fn every_client_assumes_the_role_and_the_environment_lives_in_its_account() {
    let emu = Emulator::start();
    let project = Project::new();
    for tier in ["registry", "database", "service"] {
        project.disable(tier);
    }
    project.edit("local.toml", |t| {
        t.replace("[aws]\n", &format!("[aws]\nrole_arn = \"{ROLE}\"\nexternal_id = \"deployer-ext-1\"\n"))
    });
    emu.start_recording();
    deployer_ok(&emu, &project, &["up", "--env", "local", "--yes"]);
    emu.stop_recording();
    let actions = emu.recorded_actions();
    assert!(actions.iter().any(|a| a == "AssumeRole"), "the role is assumed: {actions:?}");
    // The deployer sees its environment (in the role's account) ...
    let status =
        support::stdout_json(&deployer_ok(&emu, &project, &["status", "--env", "local", "--output", "json"]));
    let vpc = status["regions"]["us-east-1"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["address"] == "us-east-1/network/vpc/main" && r["sync"] == "in sync");
    assert!(vpc, "{status}");
    // ... which is not in the account of the starting credentials.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (own, assumed) = rt.block_on(async {
        let base = support::sdk_config(&emu, "us-east-1").await;
        let sts = aws_sdk_sts::Client::new(&base);
        let creds = sts
            .assume_role()
            .role_arn(ROLE)
            .role_session_name("test")
            .send()
            .await
            .unwrap()
            .credentials()
            .cloned()
            .unwrap();
        let assumed = base
            .into_builder()
            .credentials_provider(aws_types::sdk_config::SharedCredentialsProvider::new(
                aws_sdk_ec2::config::Credentials::new(
                    creds.access_key_id(),
                    creds.secret_access_key(),
                    Some(creds.session_token().to_string()),
                    None,
                    "assumed",
                ),
            ))
            .build();
        (support::ec2_client(&emu, "us-east-1").await, aws_sdk_ec2::Client::new(&assumed))
    });
    assert_eq!(tagged_vpcs(&own), 0, "nothing in the starting account");
    assert_eq!(tagged_vpcs(&assumed), 1, "the VPC is in the role's account");
}
