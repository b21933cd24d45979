//! SDK edge cases of the database kinds that the emulator cannot produce on demand: deletion
//! protection turned on after the environment was read, a database already gone, a deletion
//! that takes a while, a database stuck in a state no wait gets out of, a security group still
//! in use. The real SDK clients run; only the HTTP layer answers from `aws-smithy-mocks` rules.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_ec2::operation::delete_security_group::{DeleteSecurityGroupError, DeleteSecurityGroupOutput};
use aws_sdk_rds::operation::delete_db_instance::{DeleteDBInstanceError, DeleteDbInstanceOutput};
use aws_sdk_rds::operation::describe_db_instances::{DescribeDBInstancesError, DescribeDbInstancesOutput};
use aws_sdk_rds::types::error::DbInstanceNotFoundFault;
use aws_sdk_rds::types::DbInstance;
use aws_smithy_mocks::{create_mock_http_client, mock, MockResponseInterceptor, Rule, RuleMode};
use aws_smithy_types::error::ErrorMetadata;
use deployer::cloud::Clients;
use deployer::resources::db_instance::DbInstanceSpec;
use deployer::resources::security_group::SecurityGroupSpec;
use deployer::resources::{self, Ctx, DeletionPolicy, Found, IdMap, Spec};
use deployer::spec::{Address, Ref};

const ARN: &str = "arn:aws:rds:us-east-1:123456789012:db:webapp-prod";
const PRIMARY: &str = "us-east-1/database/db-instance/primary";

fn interceptor(rules: &[&Rule]) -> MockResponseInterceptor {
    let mut interceptor = MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny);
    for rule in rules {
        interceptor = interceptor.with_rule(rule);
    }
    interceptor
}

/// Clients whose RDS and EC2 calls in us-east-1 are answered by `rules`.
fn clients(rds_rules: &[&Rule], ec2_rules: &[&Rule]) -> Clients {
    use aws_sdk_rds::config::{BehaviorVersion, Credentials, Region};
    let shared = aws_types::SdkConfig::builder().behavior_version(BehaviorVersion::latest()).build();
    let clients = Clients::from_shared(shared, &["us-east-1".to_string()]);
    let rds = aws_sdk_rds::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .http_client(create_mock_http_client())
        .interceptor(interceptor(rds_rules))
        .build();
    clients.insert("us-east-1", aws_sdk_rds::Client::from_conf(rds));
    let ec2 = aws_sdk_ec2::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .http_client(create_mock_http_client())
        .interceptor(interceptor(ec2_rules))
        .build();
    clients.insert("us-east-1", aws_sdk_ec2::Client::from_conf(ec2));
    clients
}

fn ctx<'a>(clients: &'a Clients, ids: &'a IdMap, policy: DeletionPolicy) -> Ctx<'a> {
    Ctx { clients, ids, policy, timeout: Duration::from_secs(30), timeouts: BTreeMap::new() }
}

fn primary(deletion_protection: bool) -> Found {
    let group = |kind: &str| Ref::Id(format!("arn:aws:rds:us-east-1:123456789012:{kind}:webapp-prod"));
    Found {
        address: Address::parse(PRIMARY).unwrap(),
        id: ARN.into(),
        spec: Spec::DbInstance(DbInstanceSpec {
            identifier: "webapp-prod".into(),
            engine: "postgres".into(),
            engine_version: "16.4".into(),
            instance_class: "db.r6g.large".into(),
            storage_type: "gp3".into(),
            allocated_storage_gib: 100,
            max_allocated_storage_gib: Some(500),
            multi_az: true,
            storage_encrypted: true,
            kms_key: None,
            manage_master_user_password: false,
            master_secret: None,
            master_username: "app_admin".into(),
            database_name: "app".into(),
            port: 5432,
            backup_retention_days: 7,
            backup_window: "03:00-04:00".into(),
            maintenance_window: "sun:05:00-sun:06:00".into(),
            copy_tags_to_snapshot: true,
            deletion_protection,
            performance_insights: true,
            subnet_group: group("subgrp"),
            parameter_group: group("pg"),
            security_groups: vec![Ref::Id("sg-1".into())],
            apply_immediately: false,
            allow_replacement: false,
            live: None,
        }),
        tags: Default::default(),
        state: "available".into(),
        attrs: Default::default(),
    }
}

fn instance(status: &str) -> DbInstance {
    DbInstance::builder()
        .db_instance_identifier("webapp-prod")
        .db_instance_arn(ARN)
        .db_instance_status(status)
        .build()
}

fn not_found() -> DescribeDBInstancesError {
    DescribeDBInstancesError::DbInstanceNotFoundFault(
        DbInstanceNotFoundFault::builder().message("gone").build(),
    )
}

#[tokio::test(start_paused = true)]
async fn a_protected_database_is_refused_with_the_way_out_and_no_request() {
    let delete = mock!(aws_sdk_rds::Client::delete_db_instance)
        .then_output(|| DeleteDbInstanceOutput::builder().build());
    let clients = clients(&[&delete], &[]);
    let ids = IdMap::default();
    let err =
        resources::delete(&ctx(&clients, &ids, DeletionPolicy::default()), &primary(true)).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("deletion protection") && text.contains("database.deletion_protection = false"),
        "{text}"
    );
    assert!(text.contains("deployer up") && text.contains("deployer destroy"), "{text}");
    assert_eq!(delete.num_calls(), 0);
}

#[tokio::test(start_paused = true)]
async fn protection_turned_on_after_the_read_is_refused_the_same_way() {
    let delete = mock!(aws_sdk_rds::Client::delete_db_instance).then_error(|| {
        DeleteDBInstanceError::generic(
            ErrorMetadata::builder()
                .code("InvalidParameterCombination")
                .message(
                    "Cannot delete protected DB Instance, please disable deletion protection and try again.",
                )
                .build(),
        )
    });
    let clients = clients(&[&delete], &[]);
    let ids = IdMap::default();
    let err = resources::delete(&ctx(&clients, &ids, DeletionPolicy::default()), &primary(false))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("database.deletion_protection = false"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn deletion_takes_a_final_snapshot_and_waits_until_the_database_is_gone() {
    let delete = mock!(aws_sdk_rds::Client::delete_db_instance)
        .match_requests(|r| {
            r.skip_final_snapshot() == Some(false)
                && r.final_db_snapshot_identifier()
                    .is_some_and(|s| s.starts_with("webapp-prod-final-") && s.len() == 32)
        })
        .then_output(|| DeleteDbInstanceOutput::builder().db_instance(instance("deleting")).build());
    let describe = mock!(aws_sdk_rds::Client::describe_db_instances)
        .sequence()
        .output(|| DescribeDbInstancesOutput::builder().db_instances(instance("deleting")).build())
        .error(not_found)
        .build();
    let clients = clients(&[&delete, &describe], &[]);
    let ids = IdMap::default();
    resources::delete(&ctx(&clients, &ids, DeletionPolicy::default()), &primary(false)).await.unwrap();
    assert_eq!((delete.num_calls(), describe.num_calls()), (1, 2));
}

#[tokio::test(start_paused = true)]
async fn skipping_the_final_snapshot_is_the_policy_s_call_and_gone_already_is_success() {
    let delete = mock!(aws_sdk_rds::Client::delete_db_instance)
        .match_requests(|r| {
            r.skip_final_snapshot() == Some(true) && r.final_db_snapshot_identifier().is_none()
        })
        .then_error(|| {
            DeleteDBInstanceError::DbInstanceNotFoundFault(
                DbInstanceNotFoundFault::builder().message("gone").build(),
            )
        });
    let clients = clients(&[&delete], &[]);
    let ids = IdMap::default();
    let policy = DeletionPolicy { skip_final_snapshot: true, ..Default::default() };
    resources::delete(&ctx(&clients, &ids, policy), &primary(false)).await.unwrap();
    assert_eq!(delete.num_calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_database_in_a_state_no_wait_leaves_is_an_error_naming_it() {
    let describe = mock!(aws_sdk_rds::Client::describe_db_instances)
        .sequence()
        .output(|| DescribeDbInstancesOutput::builder().db_instances(instance("modifying")).build())
        .output(|| {
            DescribeDbInstancesOutput::builder().db_instances(instance("incompatible-parameters")).build()
        })
        .build();
    let clients = clients(&[&describe], &[]);
    let ids = IdMap::default();
    let mut busy = primary(false);
    busy.state = "modifying".into();
    let err =
        resources::wait_ready(&ctx(&clients, &ids, DeletionPolicy::default()), &busy).await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("incompatible-parameters") && text.contains("waiting will not help"), "{text}");
}

#[tokio::test(start_paused = true)]
async fn a_security_group_still_in_use_is_retried_until_aws_lets_go() {
    let delete = mock!(aws_sdk_ec2::Client::delete_security_group)
        .sequence()
        .error(|| {
            DeleteSecurityGroupError::generic(
                ErrorMetadata::builder()
                    .code("DependencyViolation")
                    .message("resource sg-1 has a dependent object")
                    .build(),
            )
        })
        .times(2)
        .output(|| DeleteSecurityGroupOutput::builder().build())
        .build();
    let clients = clients(&[], &[&delete]);
    let ids = IdMap::default();
    let group = Found {
        address: Address::parse("us-east-1/database/security-group/db").unwrap(),
        id: "sg-1".into(),
        spec: Spec::SecurityGroup(SecurityGroupSpec {
            vpc: Ref::Id("vpc-1".into()),
            name: "webapp-prod-db".into(),
            description: "d".into(),
            ingress: vec![],
        }),
        tags: Default::default(),
        state: String::new(),
        attrs: Default::default(),
    };
    resources::delete(&ctx(&clients, &ids, DeletionPolicy::default()), &group).await.unwrap();
    assert_eq!(delete.num_calls(), 3);
}
