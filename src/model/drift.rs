//! The scheduled drift check in AWS, when `[drift] schedule` is set, in the primary region `P`:
//!
//! | Address | What |
//! |---|---|
//! | `global/iam/iam-role/drift-check` | the task's role: the describe, list and get actions `drift` sends, nothing else |
//! | `global/iam/iam-role/drift-scheduler` | what EventBridge Scheduler assumes: run the drift task in the cluster, pass its two roles to ECS |
//! | `P/drift/security-group/drift` | the task's network interface: nothing inbound |
//! | `P/drift/task-definition/drift` | family `{app}-{env}-drift`: the deployer's image (`[drift] image`), `drift --env <env> --output json`, under the drift-check role, logging to the service's log group |
//! | `P/drift/schedule-group/main` | `{app}-{env}`, with the schedule `drift` (`[drift] schedule`): one Fargate task in the service's cluster and private subnets |
//! | `P/drift/event-rule/drift-found` | the drift task stopped with exit code 2 → the alarm topic, with a message naming the environment and the runbook |
//!
//! The task runs with `DEPLOYER_NO_ASSUME_ROLE`: its role is the read-only one, in the
//! environment's account, even where the configuration assumes `aws.role_arn` for people.

use std::collections::BTreeMap;

use serde_json::json;

use super::service::iam::{ecs_trust, ECS_TASKS};
use super::service::{self, base_name, task_execution_role, IAM_TIER};
use super::{az_letter, monitoring, Account, Address, Builder, Ref};
use crate::config::Config;
use crate::resources::event_rule::{EventRuleSpec, EventTargetSpec};
use crate::resources::iam_policy::{PolicyDocument, Statement};
use crate::resources::iam_role::IamRoleSpec;
use crate::resources::schedule_group::{ScheduleGroupSpec, ScheduleSpec};
use crate::resources::security_group::SecurityGroupSpec;
use crate::resources::task_definition::{ContainerSpec, TaskDefinitionSpec, DRIFT_FAMILY_SUFFIX};
use crate::resources::Spec;
use crate::spec::names::iam_path;

pub const TIER: &str = crate::spec::names::tier::DRIFT;

/// The drift check's container.
pub const CONTAINER_NAME: &str = "deployer";

pub fn check_role() -> Address {
    service::role("drift-check")
}
pub fn scheduler_role() -> Address {
    service::role("drift-scheduler")
}
pub fn security_group(region: &str) -> Address {
    Address::new(region, TIER, "security-group", "drift")
}
pub fn task_definition(region: &str) -> Address {
    Address::new(region, TIER, "task-definition", "drift")
}
pub fn schedule_group(region: &str) -> Address {
    Address::new(region, TIER, "schedule-group", "main")
}
pub fn rule(region: &str) -> Address {
    Address::new(region, TIER, "event-rule", "drift-found")
}

pub fn family(config: &Config) -> String {
    format!("{}{DRIFT_FAMILY_SUFFIX}", base_name(config))
}

pub(super) fn drift(b: &mut Builder, config: &Config, account: &Account) {
    let (Some(schedule), Some(image)) = (&config.drift.schedule, &config.drift.image) else { return };
    let primary = config.primary_region.as_str();
    let base = base_name(config);
    let (app, env) = (&config.app, &config.env);
    let role = |name: &str, description: String, trust: PolicyDocument, policy: PolicyDocument| {
        Spec::IamRole(IamRoleSpec {
            name: format!("{base}-{name}"),
            path: iam_path(app, env),
            description,
            trust,
            policy: Some(policy),
            other_inline_policies: vec![],
            managed_policies: vec![],
            boundary: None,
        })
    };
    // The lock is the one parameter `drift` reads: that read is held to it.
    let lock = "ssm:GetParameter";
    let reads: Vec<&str> = crate::permissions::read_actions().into_iter().filter(|a| *a != lock).collect();
    let lock_parameter = account.arn("ssm", primary, &format!("parameter/deployer/{app}/{env}/lock"));
    b.add(
        crate::spec::GLOBAL,
        IAM_TIER,
        check_role().name(),
        role(
            "drift-check",
            format!("{app} {env}: the scheduled drift check reads the environment, and changes nothing"),
            ecs_trust(account),
            PolicyDocument::new(vec![
                Statement::allow(&reads, vec![Ref::Id("*".into())]).sid("ReadTheEnvironment"),
                Statement::allow(&[lock], vec![Ref::Id(lock_parameter)]).sid("ReadTheLock"),
            ]),
        ),
    );
    let family = family(config);
    let family_arn = account.arn("ecs", primary, &format!("task-definition/{family}"));
    let cluster_arn = account.arn("ecs", primary, &format!("cluster/{base}"));
    b.add(
        crate::spec::GLOBAL,
        IAM_TIER,
        scheduler_role().name(),
        role(
            "drift-scheduler",
            format!("{app} {env}: EventBridge Scheduler starts the drift check"),
            PolicyDocument::new(vec![Statement::trust("scheduler.amazonaws.com").condition(
                "StringEquals",
                "aws:SourceAccount",
                &[&account.id],
            )]),
            PolicyDocument::new(vec![
                Statement::allow(
                    &["ecs:RunTask"],
                    vec![Ref::Id(family_arn.clone()), Ref::Id(format!("{family_arn}:*"))],
                )
                .condition("ArnEquals", "ecs:cluster", &[&cluster_arn])
                .sid("RunTheDriftCheck"),
                Statement::allow(
                    &["iam:PassRole"],
                    vec![Ref::Addr(check_role()), Ref::Addr(task_execution_role())],
                )
                .condition("StringEquals", "iam:PassedToService", &[ECS_TASKS])
                .sid("PassItsRoles"),
            ]),
        ),
    );
    let sg = b.add(
        primary,
        TIER,
        "drift",
        Spec::SecurityGroup(SecurityGroupSpec {
            vpc: Ref::Addr(Address::new(primary, "network", "vpc", "main")),
            name: format!("{base}-drift"),
            description: format!("{app} {env}: the scheduled drift check, nothing inbound"),
            ingress: vec![],
        }),
    );
    b.add(
        primary,
        TIER,
        "drift",
        Spec::TaskDefinition(TaskDefinitionSpec {
            family: family.clone(),
            cpu: "256".into(),
            memory: "512".into(),
            cpu_architecture: "X86_64".into(),
            execution_role: Ref::Addr(task_execution_role()),
            task_role: Ref::Addr(check_role()),
            container: ContainerSpec {
                name: CONTAINER_NAME.into(),
                image: image.clone(),
                port: None,
                command: ["drift", "--env", env, "--output", "json"].iter().map(|s| s.to_string()).collect(),
                environment: BTreeMap::from([("DEPLOYER_NO_ASSUME_ROLE".to_string(), "true".to_string())]),
                referenced_environment: BTreeMap::new(),
                secrets: BTreeMap::new(),
                health_check: vec![],
                read_only_root_filesystem: true,
                user: None,
                log_group: service::log_group_name(config),
                log_region: primary.to_string(),
            },
            image_released: false,
        }),
    );
    let subnets = config.regions[primary]
        .availability_zones
        .iter()
        .map(|az| {
            Ref::Addr(Address::new(primary, "network", "subnet", &format!("private-{}", az_letter(az))))
        })
        .collect();
    b.add(
        primary,
        TIER,
        "main",
        Spec::ScheduleGroup(ScheduleGroupSpec {
            name: base.clone(),
            schedules: vec![ScheduleSpec {
                name: "drift".into(),
                description: format!("{app} {env}: deployer drift, exit 2 goes to the alarm topic"),
                expression: schedule.clone(),
                timezone: "UTC".into(),
                enabled: true,
                cluster: Ref::Addr(service::cluster(primary)),
                role: Ref::Addr(scheduler_role()),
                task_definition: family_arn,
                subnets,
                security_groups: vec![Ref::Addr(sg)],
                // A check that failed to start is not retried: the next one comes on schedule.
                max_retries: 0,
                max_event_age_secs: 3600,
            }],
        }),
    );
    b.add(
        primary,
        TIER,
        "drift-found",
        Spec::EventRule(EventRuleSpec {
            name: format!("{base}-drift-found"),
            description: format!("{app} {env}: the scheduled drift check found drift (exit code 2)"),
            pattern: json!({
                "source": ["aws.ecs"],
                "detail-type": ["ECS Task State Change"],
                "detail": {
                    "clusterArn": [cluster_arn],
                    "group": [format!("family:{family}")],
                    "lastStatus": ["STOPPED"],
                    "containers": { "name": [CONTAINER_NAME], "exitCode": [2] },
                },
            }),
            enabled: true,
            targets: vec![EventTargetSpec {
                id: "alarm-topic".into(),
                arn: Ref::Addr(monitoring::topic(primary)),
                input_paths: BTreeMap::from([
                    ("task".to_string(), "$.detail.taskArn".to_string()),
                    ("stopped".to_string(), "$.detail.stoppedAt".to_string()),
                ]),
                input_template: Some(format!(
                    "\"Drift found in {app} {env}: the scheduled drift check <task> exited with 2 at <stopped>. \
                     Run `deployer drift --env {env}` to see what differs; docs/runbooks/drift-alert.md says what to do.\""
                )),
            }],
        }),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing;
    use crate::config::NatMode;
    use crate::model::desired;

    fn config() -> Config {
        let mut c = testing::with_service(testing::config(2, NatMode::PerAz));
        c.monitoring.enabled = true;
        c.drift.schedule = Some("rate(6 hours)".into());
        c.drift.image = Some("123456789012.dkr.ecr.us-east-1.amazonaws.com/tools/deployer:1.4".into());
        c
    }

    #[test]
    fn the_image_names_its_repository() {
        assert_eq!(
            crate::model::registry::repository_arn(
                "123456789012.dkr.ecr.us-east-1.amazonaws.com/tools/deployer:1.4"
            )
            .as_deref(),
            Some("arn:aws:ecr:us-east-1:123456789012:repository/tools/deployer")
        );
        assert_eq!(
            crate::model::registry::repository_arn(
                "123456789012.dkr.ecr.eu-west-1.amazonaws.com/deployer@sha256:ab"
            )
            .as_deref(),
            Some("arn:aws:ecr:eu-west-1:123456789012:repository/deployer")
        );
    }

    #[test]
    fn a_schedule_builds_the_check_in_the_primary_and_nothing_without_one() {
        let d = desired(&config(), &Account::test());
        for a in [
            task_definition("us-east-1"),
            schedule_group("us-east-1"),
            rule("us-east-1"),
            check_role(),
            scheduler_role(),
        ] {
            assert!(d.get(&a).is_some(), "{a}");
        }
        assert!(d.get(&task_definition("us-east-2")).is_none());
        let Spec::IamRole(role) = &d.get(&check_role()).unwrap().spec else { unreachable!() };
        let policy = role.policy.as_ref().unwrap();
        assert!(
            policy.statements.iter().all(|s| s.actions.iter().all(|a| {
                let op = a.split_once(':').unwrap().1;
                crate::cloud::is_read_operation(op)
            })),
            "read-only: {policy:?}"
        );
        let Spec::IamRole(exec) = &d.get(&task_execution_role()).unwrap().spec else { unreachable!() };
        assert!(
            exec.policy.as_ref().unwrap().statements.iter().any(|s| s.resources
                == vec![Ref::Id("arn:aws:ecr:us-east-1:123456789012:repository/tools/deployer".into())]),
            "the execution role may pull the deployer's image"
        );
        let mut c = config();
        c.drift = Default::default();
        let d = desired(&c, &Account::test());
        assert!(d
            .resources
            .iter()
            .all(|r| r.address.tier() != TIER && !r.address.name().starts_with("drift")));
    }
}
