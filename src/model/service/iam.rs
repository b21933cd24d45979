//! The service tier's IAM roles (global): what ECS needs to start the tasks (the execution
//! role), what the application may do (the task role) and what CodeDeploy needs to run a
//! blue/green release (the CodeDeploy role). Every policy lists this environment's ARNs, never
//! `*`, except where AWS offers no resource-level permission (`ecr:GetAuthorizationToken`,
//! Elastic Load Balancing's `Describe*`).

use super::{base_name, codedeploy_role, ecs_service, log_group, task_execution_role, task_role, IAM_TIER};
use crate::config::Config;
use crate::model::{database, registry, Builder};
use crate::resources::attr;
use crate::resources::iam_policy::{kms_statements, PolicyDocument, Statement};
use crate::resources::iam_role::IamRoleSpec;
use crate::resources::Spec;
use crate::spec::{Account, Ref};

pub(in crate::model) const ECS_TASKS: &str = "ecs-tasks.amazonaws.com";
const CODEDEPLOY: &str = "codedeploy.amazonaws.com";

fn literal(arns: impl IntoIterator<Item = String>) -> Vec<Ref> {
    arns.into_iter().map(Ref::Id).collect()
}

/// Only ECS, acting for tasks of this account, may assume the task roles (the "confused deputy"
/// conditions AWS documents for them).
pub(in crate::model) fn ecs_trust(account: &Account) -> PolicyDocument {
    PolicyDocument::new(vec![Statement::trust(ECS_TASKS)
        .condition("StringEquals", "aws:SourceAccount", &[&account.id])
        .condition("ArnLike", "aws:SourceArn", &[&account.arn("ecs", "*", "*")])])
}

/// Pull the image, write the log, read the secrets: everything ECS does before the application
/// starts.
pub fn execution_policy(config: &Config, account: &Account) -> PolicyDocument {
    let regions = config.region_names();
    let mut statements = vec![
        Statement::allow(&["ecr:GetAuthorizationToken"], literal(["*".to_string()])).sid("RegistryLogin"),
        Statement::allow(
            &["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"],
            // The repositories are ours, and a repository's ID is its ARN.
            regions.iter().map(|r| Ref::Addr(registry::repository(r))).collect(),
        )
        .sid("PullImage"),
        Statement::allow(
            &["logs:CreateLogStream", "logs:PutLogEvents"],
            // The log groups are ours: their ARN is an attribute, and `:*` covers their streams.
            regions
                .iter()
                .map(|r| Ref::Attr { of: log_group(r), attr: attr::ARN, suffix: ":*".into() })
                .collect(),
        )
        .sid("WriteLog"),
    ];
    if let Some(repository) = config.drift.image.as_deref().and_then(registry::repository_arn) {
        // The scheduled drift check runs the deployer's own image, from its own repository.
        statements.push(
            Statement::allow(
                &["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"],
                literal([repository]),
            )
            .sid("PullDeployerImage"),
        );
    }
    let mut secrets: Vec<Ref> = Vec::new();
    if config.database.enabled {
        // Every region's copy of the database's secret, by ARN (its ID): exactly those.
        secrets.extend(regions.iter().map(|r| Ref::Addr(database::secret(r))));
    }
    for name in config.service.secrets.values() {
        // Secrets Manager appends `-` and six random characters to a secret's name in its ARN.
        secrets.extend(literal(
            regions.iter().map(|r| account.arn("secretsmanager", r, &format!("secret:{name}-??????"))),
        ));
    }
    if !secrets.is_empty() {
        statements.push(Statement::allow(&["secretsmanager:GetSecretValue"], secrets).sid("ReadSecrets"));
    }
    // The database's secret is encrypted with `[database.kms_key]` where one is configured.
    let mut keys: Vec<String> = config.service.secrets_kms_keys.clone();
    if config.database.enabled {
        keys.extend(config.database.kms_key.values().cloned());
    }
    keys.sort();
    keys.dedup();
    statements.extend(kms_statements(&["kms:Decrypt"], &keys, "DecryptSecrets"));
    PolicyDocument::new(statements)
}

/// The application's own permissions, from `service.task_role_policy`.
pub fn task_policy(config: &Config) -> Option<PolicyDocument> {
    let statements: Vec<Statement> = config
        .service
        .task_role_statements
        .iter()
        .map(|s| {
            let actions: Vec<&str> = s.actions.iter().map(String::as_str).collect();
            let mut statement = Statement::allow(&actions, literal(s.resources.iter().cloned()));
            statement.effect = s.effect.clone();
            statement.sid = s.sid.clone();
            statement
        })
        .collect();
    (!statements.is_empty()).then(|| PolicyDocument::new(statements))
}

/// What CodeDeploy needs for an ECS blue/green deployment of this environment's service, and no
/// more: AWS's `AWSCodeDeployRoleForECS`, scoped to this environment's cluster, service,
/// listeners and alarms.
pub fn codedeploy_policy(config: &Config, account: &Account) -> PolicyDocument {
    let name = base_name(config);
    let regions = config.region_names();
    let per_region = |f: &dyn Fn(&str) -> String| literal(regions.iter().map(|r| f(r)));
    PolicyDocument::new(vec![
        Statement::allow(
            &[
                "ecs:DescribeServices",
                "ecs:CreateTaskSet",
                "ecs:UpdateServicePrimaryTaskSet",
                "ecs:DeleteTaskSet",
            ],
            [
                // The services are ours, and a service's ID is its ARN.
                regions.iter().map(|r| Ref::Addr(ecs_service(r))).collect(),
                per_region(&|r| account.arn("ecs", r, &format!("task-set/{name}/{name}/*"))),
            ]
            .concat(),
        )
        .sid("TaskSets"),
        // Elastic Load Balancing's describe actions have no resource-level permissions.
        Statement::allow(
            &[
                "elasticloadbalancing:DescribeTargetGroups",
                "elasticloadbalancing:DescribeListeners",
                "elasticloadbalancing:DescribeRules",
            ],
            literal(["*".to_string()]),
        )
        .sid("DescribeLoadBalancing"),
        Statement::allow(
            &["elasticloadbalancing:ModifyListener", "elasticloadbalancing:ModifyRule"],
            [
                per_region(&|r| account.arn("elasticloadbalancing", r, &format!("listener/app/{name}/*"))),
                per_region(&|r| {
                    account.arn("elasticloadbalancing", r, &format!("listener-rule/app/{name}/*"))
                }),
            ]
            .concat(),
        )
        .sid("ShiftTraffic"),
        Statement::allow(
            &["cloudwatch:DescribeAlarms"],
            per_region(&|r| account.arn("cloudwatch", r, &format!("alarm:{name}-*"))),
        )
        .sid("WatchAlarms"),
        Statement::allow(&["iam:PassRole"], vec![Ref::Addr(task_execution_role()), Ref::Addr(task_role())])
            .condition("StringEquals", "iam:PassedToService", &[ECS_TASKS])
            .sid("PassTaskRoles"),
    ])
}

/// Adds the roles at `addresses` (the task roles before the services, the CodeDeploy role,
/// which names the services, after them).
pub(super) fn roles(b: &mut Builder, config: &Config, account: &Account, addresses: &[crate::spec::Address]) {
    let path = crate::spec::names::iam_path(&config.app, &config.env);
    let base = base_name(config);
    let role = |name: &str, description: String, trust: PolicyDocument, policy: Option<PolicyDocument>| {
        Spec::IamRole(IamRoleSpec {
            name: format!("{base}-{name}"),
            path: path.clone(),
            description,
            trust,
            policy,
            other_inline_policies: vec![],
            managed_policies: vec![],
            boundary: None,
        })
    };
    let (app, env) = (&config.app, &config.env);
    for (address, spec) in [
        (
            task_execution_role(),
            role(
                "task-execution",
                format!("{app} {env}: ECS pulls the image, writes the log and reads the secrets"),
                ecs_trust(account),
                Some(execution_policy(config, account)),
            ),
        ),
        (
            task_role(),
            role(
                "task",
                format!("{app} {env}: the application's own permissions"),
                ecs_trust(account),
                task_policy(config),
            ),
        ),
        (
            codedeploy_role(),
            role(
                "codedeploy",
                format!("{app} {env}: CodeDeploy runs blue/green releases of the service"),
                PolicyDocument::new(vec![Statement::trust(CODEDEPLOY).condition(
                    "StringEquals",
                    "aws:SourceAccount",
                    &[&account.id],
                )]),
                Some(codedeploy_policy(config, account)),
            ),
        ),
    ] {
        if addresses.contains(&address) {
            b.add(crate::spec::GLOBAL, IAM_TIER, address.name(), spec);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing;
    use crate::config::NatMode;

    fn resources(doc: &PolicyDocument) -> Vec<String> {
        doc.statements.iter().flat_map(|s| s.resources.iter().map(|r| r.to_string())).collect()
    }

    #[test]
    fn no_policy_grants_a_wildcard_resource_beyond_what_aws_requires() {
        let config = testing::config(2, NatMode::PerAz);
        let account = Account::test();
        for doc in [execution_policy(&config, &account), codedeploy_policy(&config, &account)] {
            for s in &doc.statements {
                if s.resources.contains(&Ref::Id("*".into())) {
                    assert!(
                        s.actions.iter().all(|a| a == "ecr:GetAuthorizationToken"
                            || a.starts_with("elasticloadbalancing:Describe")),
                        "{s:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_execution_role_names_this_environment_s_repository_log_and_secret() {
        let mut config = testing::config(2, NatMode::PerAz);
        config.service.secrets.insert("API_KEY".into(), "webapp/test/api-key".into());
        let got = resources(&execution_policy(&config, &Account::test()));
        for expected in [
            "us-east-1/registry/ecr-repository/main",
            "us-east-2/registry/ecr-repository/main",
            "(us-east-2/service/log-group/app arn):*",
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:webapp/test/api-key-??????",
            "us-east-1/database/db-secret/master",
            "us-east-2/database/db-secret/master",
        ] {
            assert!(got.iter().any(|r| r.starts_with(expected)), "{expected} in {got:#?}");
        }
        assert!(!got.iter().any(|r| r.contains("db-instance")), "never RDS's own secret: {got:#?}");
        assert!(task_policy(&config).is_none(), "no permissions unless configured");
    }

    #[test]
    fn the_boundary_allows_what_every_role_allows_names_no_reference_and_fits_one_managed_policy() {
        let c = testing::every_tier();
        let account = Account::test();
        let desired = crate::model::desired(&c, &account);
        let boundary = desired
            .resources
            .iter()
            .find_map(|r| match &r.spec {
                crate::resources::Spec::IamBoundary(b) => Some(b.clone()),
                _ => None,
            })
            .expect("the roles have a boundary");
        let roles: Vec<_> = desired
            .resources
            .iter()
            .filter_map(|r| match &r.spec {
                crate::resources::Spec::IamRole(role) => Some(role.clone()),
                _ => None,
            })
            .collect();
        assert!(roles.len() >= 5, "{}", roles.len());
        let allowed: std::collections::BTreeSet<&str> =
            boundary.document.statements.iter().flat_map(|s| s.actions.iter().map(String::as_str)).collect();
        for role in &roles {
            let name = crate::spec::names::boundary_name(&c.app, &c.env);
            assert!(
                matches!(&role.boundary, Some(Ref::Addr(a)) if a.kind() == "iam-boundary"),
                "{} carries {name}",
                role.name
            );
            for action in role.policy.iter().flat_map(|p| &p.statements).flat_map(|s| &s.actions) {
                assert!(allowed.contains(action.as_str()), "{}: {action} is outside the boundary", role.name);
            }
        }
        for s in &boundary.document.statements {
            assert!(s.resources.iter().all(|r| matches!(r, Ref::Id(_))), "{s:?}");
            assert_eq!(s.effect, "Allow");
        }
        assert!(
            !allowed.contains("*") && !allowed.iter().any(|a| a.starts_with("iam:Create")),
            "{allowed:?}"
        );
        // (The plan's rendering of a statement is IAM's, with longer key names.)
        let size = serde_json::to_value(&boundary.document).unwrap().to_string().len();
        eprintln!("the boundary: {size} characters");
        assert!(size <= crate::permissions::MANAGED_POLICY_LIMIT, "the boundary has {size} characters");
    }
}
