//! SDK edge cases the emulator cannot produce on demand: `DependencyViolation` while AWS
//! releases network interfaces, resources already gone, a NAT gateway that fails, a throttle
//! storm while a release follows its deployment. The real SDK client runs; only the HTTP layer
//! answers from `aws-smithy-mocks` rules.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_codedeploy::operation::get_deployment::{GetDeploymentError, GetDeploymentOutput};
use aws_sdk_codedeploy::operation::get_deployment_target::GetDeploymentTargetError;
use aws_sdk_codedeploy::types::{DeploymentInfo, DeploymentStatus, RollbackInfo};
use aws_sdk_ec2::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_ec2::operation::create_nat_gateway::CreateNatGatewayOutput;
use aws_sdk_ec2::operation::delete_route_table::DeleteRouteTableError;
use aws_sdk_ec2::operation::delete_subnet::{DeleteSubnetError, DeleteSubnetOutput};
use aws_sdk_ec2::operation::describe_nat_gateways::DescribeNatGatewaysOutput;
use aws_sdk_ec2::types::{NatGateway, NatGatewayState};
use aws_sdk_ec2::Client;
use aws_smithy_mocks::{create_mock_http_client, mock, MockResponseInterceptor, Rule, RuleMode};
use aws_smithy_types::error::ErrorMetadata;
use deployer::cloud::Clients;
use deployer::release::deploy::{follow, End};
use deployer::release::{Names, Progress};
use deployer::resources::nat_gateway::NatGatewaySpec;
use deployer::resources::route_table::RouteTableSpec;
use deployer::resources::subnet::SubnetSpec;
use deployer::resources::{self, Ctx, Found, IdMap, Resource, Spec};
use deployer::spec::{Address, Ref};

fn interceptor(rules: &[&Rule], mode: RuleMode) -> MockResponseInterceptor {
    rules.iter().fold(MockResponseInterceptor::new().rule_mode(mode), |i, rule| i.with_rule(rule))
}

fn clients(rules: &[&Rule]) -> Clients {
    let conf = aws_sdk_ec2::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .http_client(create_mock_http_client())
        .interceptor(interceptor(rules, RuleMode::Sequential))
        .build();
    let shared = aws_types::SdkConfig::builder().behavior_version(BehaviorVersion::latest()).build();
    let clients = Clients::from_shared(shared, &["us-east-1".to_string()]);
    clients.insert("us-east-1", Client::from_conf(conf));
    clients
}

fn ctx<'a>(clients: &'a Clients, ids: &'a IdMap, timeout: Duration) -> Ctx<'a> {
    Ctx { clients, ids, policy: Default::default(), timeout, timeouts: BTreeMap::new() }
}

fn error(code: &str) -> ErrorMetadata {
    ErrorMetadata::builder().code(code).message("from the mock").build()
}

fn found(address: &str, id: &str, spec: Spec) -> Found {
    Found {
        address: Address::parse(address).unwrap(),
        id: id.into(),
        spec,
        tags: Default::default(),
        state: String::new(),
        attrs: Default::default(),
    }
}

fn subnet_spec() -> Spec {
    Spec::Subnet(SubnetSpec {
        vpc: Ref::Id("vpc-1".into()),
        cidr_block: "10.0.0.0/20".parse().unwrap(),
        availability_zone: "us-east-1a".into(),
        map_public_ip_on_launch: false,
    })
}

#[tokio::test(start_paused = true)]
async fn subnet_delete_retries_dependency_violation_until_aws_lets_go() {
    let rule = mock!(Client::delete_subnet)
        .sequence()
        .error(|| DeleteSubnetError::generic(error("DependencyViolation")))
        .times(2)
        .output(|| DeleteSubnetOutput::builder().build())
        .build();
    let clients = clients(&[&rule]);
    let ids = IdMap::default();
    let ctx = ctx(&clients, &ids, Duration::from_secs(30));
    resources::delete(&ctx, &found("us-east-1/network/subnet/public-a", "subnet-1", subnet_spec()))
        .await
        .unwrap();
    assert_eq!(rule.num_calls(), 3);
}

#[tokio::test(start_paused = true)]
async fn dependency_violation_past_the_timeout_is_an_error_naming_the_wait() {
    let rule = mock!(Client::delete_subnet)
        .sequence()
        .error(|| DeleteSubnetError::generic(error("DependencyViolation")))
        .repeatedly()
        .build();
    let clients = clients(&[&rule]);
    let ids = IdMap::default();
    let ctx = ctx(&clients, &ids, Duration::from_millis(600));
    let err = resources::delete(&ctx, &found("us-east-1/network/subnet/public-a", "subnet-1", subnet_spec()))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("timed out") && text.contains("subnet-1"), "{text}");
    assert!(rule.num_calls() >= 2);
}

#[tokio::test(start_paused = true)]
async fn deleting_what_is_already_gone_succeeds() {
    let rule = mock!(Client::delete_route_table)
        .then_error(|| DeleteRouteTableError::generic(error("InvalidRouteTableID.NotFound")));
    let clients = clients(&[&rule]);
    let ids = IdMap::default();
    let ctx = ctx(&clients, &ids, Duration::from_secs(5));
    let spec = Spec::RouteTable(RouteTableSpec { vpc: Ref::Id("vpc-1".into()) });
    resources::delete(&ctx, &found("us-east-1/network/route-table/public", "rtb-1", spec)).await.unwrap();
    assert_eq!(rule.num_calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_nat_gateway_that_fails_reports_aws_reason() {
    let nat = |state: NatGatewayState| {
        NatGateway::builder()
            .nat_gateway_id("nat-1")
            .state(state)
            .failure_message("Elastic IP is in use")
            .build()
    };
    let create = mock!(Client::create_nat_gateway).then_output(move || {
        CreateNatGatewayOutput::builder().nat_gateway(nat(NatGatewayState::Pending)).build()
    });
    let describe = mock!(Client::describe_nat_gateways)
        .sequence()
        .output(move || {
            DescribeNatGatewaysOutput::builder().nat_gateways(nat(NatGatewayState::Pending)).build()
        })
        .output(move || {
            DescribeNatGatewaysOutput::builder().nat_gateways(nat(NatGatewayState::Failed)).build()
        })
        .build();
    let clients = clients(&[&create, &describe]);
    let ids = IdMap::default();
    let ctx = ctx(&clients, &ids, Duration::from_secs(30));
    let resource = Resource {
        address: Address::parse("us-east-1/network/nat-gateway/a").unwrap(),
        spec: Spec::NatGateway(NatGatewaySpec {
            subnet: Ref::Id("subnet-1".into()),
            elastic_ip: Ref::Id("eipalloc-1".into()),
        }),
        tags: Default::default(),
    };
    let err = resources::create(&ctx, &resource).await.unwrap_err().to_string();
    assert!(err.contains("nat-1 failed: Elastic IP is in use"), "{err}");
    assert_eq!(describe.num_calls(), 2);
}

/// A CodeDeploy client answering from `rules` (any order), with the SDK's own retries off so
/// that each throttle the rules give reaches the deployer, as one outlasting them would on AWS.
fn codedeploy_clients(rules: &[&Rule]) -> Clients {
    let conf = aws_sdk_codedeploy::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .retry_config(aws_sdk_codedeploy::config::retry::RetryConfig::disabled())
        .http_client(create_mock_http_client())
        .interceptor(interceptor(rules, RuleMode::MatchAny))
        .build();
    let shared = aws_types::SdkConfig::builder().behavior_version(BehaviorVersion::latest()).build();
    let clients = Clients::from_shared(shared, &["us-east-1".to_string()]);
    clients.insert("us-east-1", aws_sdk_codedeploy::Client::from_conf(conf));
    clients
}

struct Quiet;
impl Progress for Quiet {
    fn event(&self, _: &str, _: &str, _: &str) {}
    fn progress(&self, _: &str, _: &str, _: &str, _: Option<f64>, _: bool) {}
    fn say(&self, _: &str) {}
}

fn names() -> Names {
    Names {
        base: "web-prod".into(),
        container: "web".into(),
        port: 8080,
        repository: "web-prod".into(),
        capacity: Vec::new(),
    }
}

fn throttled() -> GetDeploymentError {
    GetDeploymentError::generic(error("ThrottlingException"))
}

/// A release watches its deployment for many minutes: a throttle storm that outlasts the SDK's
/// retries is waited out at the wait's pace, not reported as the release's failure while the
/// deployment goes on in CodeDeploy.
#[tokio::test(start_paused = true)]
async fn a_release_follows_its_deployment_through_a_throttle_storm() {
    let get = mock!(aws_sdk_codedeploy::Client::get_deployment)
        .sequence()
        .error(throttled)
        .times(3)
        .output(|| {
            GetDeploymentOutput::builder()
                .deployment_info(
                    DeploymentInfo::builder()
                        .deployment_id("d-1")
                        .status(DeploymentStatus::Succeeded)
                        .build(),
                )
                .build()
        })
        .build();
    let target = mock!(aws_sdk_codedeploy::Client::get_deployment_target)
        .then_error(|| GetDeploymentTargetError::generic(error("DeploymentTargetDoesNotExistException")));
    let clients = codedeploy_clients(&[&get, &target]);
    let started = tokio::time::Instant::now();
    let end = follow(&clients, "us-east-1", &names(), "d-1", Duration::from_secs(600), &Quiet).await.unwrap();
    assert!(matches!(&end, End::Released(v) if v.id == "d-1" && v.status == "Succeeded"), "{end:?}");
    assert_eq!(get.num_calls(), 4);
    // Backing off as `wait_until` does: 10 s after each throttled read (the 5 s pause doubled).
    assert_eq!(started.elapsed(), Duration::from_secs(30));
}

/// ...but not for ever: past the release's bound the throttle is the error it reports.
#[tokio::test(start_paused = true)]
async fn a_throttle_storm_past_the_bound_is_reported() {
    let get = mock!(aws_sdk_codedeploy::Client::get_deployment).then_error(throttled);
    let clients = codedeploy_clients(&[&get]);
    let err =
        follow(&clients, "us-east-1", &names(), "d-1", Duration::from_secs(60), &Quiet).await.unwrap_err();
    assert!(err.is_transient() && err.to_string().contains("GetDeployment"), "{err}");
    assert_eq!(get.num_calls(), 7, "reads at 0, 10, 20, 30, 40, 50 and 60 s");
}

/// A failed deployment's rollback is looked up in its `rollbackInfo`; a throttled read on the
/// way is one of the lookup's reads, not the end of the release's report.
#[tokio::test(start_paused = true)]
async fn a_failed_deployment_s_rollback_is_found_through_a_throttled_read() {
    let deployment = |id: &str, status: DeploymentStatus, rollback: Option<&str>| {
        let mut info = DeploymentInfo::builder().deployment_id(id).status(status);
        if let Some(r) = rollback {
            info = info.rollback_info(RollbackInfo::builder().rollback_deployment_id(r).build());
        }
        GetDeploymentOutput::builder().deployment_info(info.build()).build()
    };
    let get = mock!(aws_sdk_codedeploy::Client::get_deployment)
        .sequence()
        .output(move || deployment("d-1", DeploymentStatus::Failed, None))
        .error(throttled)
        .output(move || deployment("d-1", DeploymentStatus::Failed, Some("d-2")))
        .output(move || deployment("d-2", DeploymentStatus::Succeeded, None))
        .output(move || deployment("d-1", DeploymentStatus::Failed, Some("d-2")))
        .build();
    let target = mock!(aws_sdk_codedeploy::Client::get_deployment_target)
        .then_error(|| GetDeploymentTargetError::generic(error("DeploymentTargetDoesNotExistException")));
    let clients = codedeploy_clients(&[&get, &target]);
    let end = follow(&clients, "us-east-1", &names(), "d-1", Duration::from_secs(600), &Quiet).await.unwrap();
    match &end {
        End::Failed { deployment, rollback: Some(rollback) } => {
            assert_eq!((deployment.id.as_str(), deployment.status.as_str()), ("d-1", "Failed"));
            assert_eq!((rollback.id.as_str(), rollback.status.as_str()), ("d-2", "Succeeded"));
        }
        other => panic!("a failed deployment, rolled back: {other:?}"),
    }
    assert_eq!(get.num_calls(), 5);
}
