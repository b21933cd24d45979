//! What the deployer may call in AWS, by part of the environment. Each kind declares the IAM
//! actions its own calls send (`Kind::ACTIONS`, next to those calls) and the parts it belongs
//! to (`Kind::PARTS`); a part here adds what it sends besides (the lock, the releases). Two
//! things are made from it:
//!
//! - `deployer iam-policy --env E` (`policy`): the least-privilege policy the deployer needs
//!   for that environment, each action scoped to the environment's ARNs, name prefixes, IAM
//!   path or regions where AWS allows it;
//! - the scheduled drift check's read-only role (`read_actions`): the describe, list and get
//!   actions of exactly the services `drift` reads, and nothing else.
//!
//! Every run observes every kind, whether its tier is on or not (so a tier turned off is found
//! and removed), so the reads of every part are always needed; the changes only of the parts
//! the configuration uses. Turning a tier off therefore needs, for the `up` that removes it,
//! the policy from before (its changes include the deletes).
//!
//! A test (`tests/iam_policy.rs`) holds the result to what the scenario tests actually sent, as
//! the emulator recorded it: none missing, none unused. A unit test below holds it to the code:
//! every operation a kind's file names in an error context (`.op("CreateVpc")`) is in that
//! kind's `ACTIONS`, every other one in some part, and every kind is in a part that exists.

use std::collections::{BTreeMap, BTreeSet};

use crate::config::Config;
use crate::resources::iam_policy::{PolicyDocument, Statement};
use crate::resources::{KindInfo, KINDS};
use crate::spec::{Account, Ref};

/// One part of what the deployer does: its kinds (those that name it in `Kind::PARTS`), each of
/// which declares the actions its own calls send (`Kind::ACTIONS`, next to those calls), and
/// what the part sends besides.
pub struct Part {
    pub name: &'static str,
    /// What the part sends besides its kinds' calls (the lock, the releases).
    pub actions: &'static [&'static str],
}

impl Part {
    /// The kinds the part creates, changes and deletes.
    pub fn kinds(&self) -> impl Iterator<Item = &'static KindInfo> + '_ {
        KINDS.iter().filter(|k| k.parts.contains(&self.name))
    }

    /// Every action of the part (`service:Operation`): its kinds' and its own.
    pub fn all_actions(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.kinds().flat_map(|k| k.actions).chain(self.actions).copied()
    }
}

/// Actions AWS services call with the deployer's credentials on its behalf (so no test of the
/// deployer's own requests records them), with why.
pub const ON_ITS_BEHALF: &[(&str, &str)] = &[
    ("iam:PassRole", "ECS, CodeDeploy and EventBridge Scheduler are handed the environment's roles"),
    ("iam:CreateServiceLinkedRole", "the first load balancer, ECS service, RDS instance or scaling target of an account creates AWS's service-linked role"),
    ("kms:DescribeKey", "RDS, ECR and CloudWatch Logs check a configured KMS key"),
    ("kms:CreateGrant", "RDS and ECR grant themselves the use of a configured KMS key"),
    ("ssm:AddTagsToResource", "PutParameter with Tags (the lock, its generation) is authorised as a tagging too; src/lock.rs also sends it for a generation an overwrite recreated"),
];

const NETWORK: Part = Part { name: "network", actions: &[] };

const LOCK: Part = Part {
    name: "lock",
    actions: &["ssm:GetParameter", "ssm:GetParameters", "ssm:PutParameter", "ssm:DeleteParameter"],
};

const REGISTRY: Part = Part { name: "registry", actions: &[] };

/// The security groups of the database and the service tiers.
const SECURITY_GROUPS: Part = Part { name: "security-groups", actions: &[] };

/// The failover's own calls (`src/failover/database.rs`): no kind sends them.
const DATABASE: Part = Part {
    name: "database",
    actions: &["rds:PromoteReadReplica", "secretsmanager:StopReplicationToReplica"],
};

const SERVICE: Part = Part { name: "service", actions: &[] };

const RELEASE: Part = Part {
    name: "release",
    actions: &[
        "codedeploy:CreateDeployment",
        "codedeploy:GetDeployment",
        "codedeploy:BatchGetDeployments",
        "codedeploy:ListDeployments",
        "codedeploy:GetDeploymentTarget",
        "codedeploy:StopDeployment",
        "codedeploy:ContinueDeployment",
        "codedeploy:GetDeploymentGroup",
        "ecr:DescribeImages",
        "ecr:DescribeImageScanFindings",
    ],
};

const DNS: Part = Part { name: "dns", actions: &[] };

const MONITORING: Part = Part { name: "monitoring", actions: &[] };

const DRIFT: Part = Part { name: "drift", actions: &[] };

/// Changes the deployer sends that its own policy does not grant, with why: an administrator's
/// credentials make them (the first `up`, or an `up` that widens a role).
pub const ADMINISTRATOR_ONLY: &[(&str, &str)] = &[
    ("iam:CreatePolicy", "creates the roles' permissions boundary: a deployer that could write its own ceiling would have none"),
    ("iam:CreatePolicyVersion", "widens or narrows the roles' permissions boundary, for the same reason"),
];

/// The changes that give a role permissions: allowed only while the role carries the
/// environment's permissions boundary (`iam:PermissionsBoundary`, "Permissions boundaries for
/// IAM entities", IAM user guide), so whoever holds the deployer's credentials cannot make a
/// role that does more than the boundary allows.
const BOUNDED: &[&str] = &["iam:CreateRole", "iam:PutRolePolicy", "iam:PutRolePermissionsBoundary"];

/// Every part, for the checks that the list is complete.
pub const PARTS: &[&Part] =
    &[&NETWORK, &LOCK, &REGISTRY, &SECURITY_GROUPS, &DATABASE, &SERVICE, &RELEASE, &DNS, &MONITORING, &DRIFT];

/// The parts `config` uses.
pub fn parts(config: &Config) -> Vec<&'static Part> {
    let mut parts = vec![&NETWORK, &LOCK];
    if config.registry.enabled {
        parts.push(&REGISTRY);
    }
    if config.database.enabled || config.service.enabled {
        parts.push(&SECURITY_GROUPS);
    }
    if config.database.enabled {
        parts.push(&DATABASE);
    }
    if config.service.enabled {
        parts.extend([&SERVICE, &RELEASE]);
    }
    if config.dns.enabled && config.service.enabled {
        parts.push(&DNS);
    }
    if config.monitoring.enabled {
        parts.push(&MONITORING);
    }
    if config.drift.schedule.is_some() {
        parts.push(&DRIFT);
    }
    parts
}

/// Reads that return what must stay secret: scoped to the environment's resources like a
/// change, and never given to the read-only drift role (observation does not send them).
const SECRET_READS: &[&str] = &["secretsmanager:GetSecretValue"];

fn is_read(action: &str) -> bool {
    if SECRET_READS.contains(&action) {
        return false;
    }
    let op = action.split_once(':').map_or(action, |(_, op)| op);
    crate::cloud::is_read_operation(op)
}

/// Every action the deployer sends for `config`, sorted: the changes of the parts it uses,
/// and the reads of every part, since every run observes every kind, used or not (that is how
/// a tier that was turned off is found and removed, and how `drift` reports what is left of
/// one).
pub fn actions(config: &Config) -> BTreeSet<&'static str> {
    let used: Vec<&str> = parts(config).iter().map(|p| p.name).collect();
    let used = &used;
    PARTS.iter().flat_map(|p| p.all_actions().filter(move |a| used.contains(&p.name) || is_read(a))).collect()
}

/// The describe, list and get actions `drift` sends: what observing every kind reads (every
/// part but the releases: `drift` compares infrastructure and reads no deployment), plus the
/// lock's `GetParameter`.
pub fn read_actions() -> BTreeSet<&'static str> {
    PARTS
        .iter()
        .filter(|p| p.name != RELEASE.name)
        .flat_map(|p| p.all_actions())
        .filter(|a| is_read(a) && *a != "secretsmanager:GetRandomPassword")
        .collect()
}

/// Changes IAM cannot scope to a resource (the service defines none for them): allowed on `*`
/// in the environment's regions.
/// From AWS's service authorization reference ("Actions, resources, and condition keys for …"):
/// these list no resource type, so a statement naming resources never matches them and a
/// `rollback` of a release in flight (StopDeployment), the end of a termination wait
/// (ContinueDeployment) or an unsubscribe would be denied.
const NO_RESOURCE_LEVEL: &[&str] = &[
    "ecs:DeregisterTaskDefinition",
    "ecr:PutReplicationConfiguration",
    "codedeploy:StopDeployment",
    "codedeploy:ContinueDeployment",
    "sns:Unsubscribe",
];

/// Actions a request of the deployer's is authorised as besides its own (so no recording shows
/// them), granted with the changes of their service, scoped like them, with why.
pub const IMPLIED: &[(&str, &str)] = &[(
    "rds:CreateDBSnapshot",
    "DeleteDBInstance with a FinalDBSnapshotIdentifier (database.skip_final_snapshot = false, the staging and prod default) is authorised as rds:CreateDBSnapshot on the snapshot too",
)];

/// Where the changes of `service` may be scoped: the environment's resources by the names the
/// deployer gives them (`{app}-{env}…`, the IAM path, the lock's parameter path), in any region
/// (the names already say whose they are; a region part would double the policy's size for
/// nothing). `None`: the service's ARNs hold random IDs (EC2, ACM, Route 53 changes, scaling
/// targets), so the changes are allowed in the environment's regions only.
fn scope(service: &str, config: &Config, account: &Account) -> Option<Vec<String>> {
    let base = format!("{}-{}", config.app, config.env);
    let arn = |svc: &str, res: &str| account.arn(svc, "*", res);
    let path = crate::spec::names::iam_path(&config.app, &config.env);
    Some(match service {
        "iam" => vec![
            account.arn("iam", "", &format!("role{path}*")),
            crate::spec::names::boundary_arn(&config.app, &config.env, account),
        ],
        "ecr" => vec![arn("ecr", &format!("repository/{}", config.registry.name))],
        "rds" => vec![
            arn("rds", &format!("db:{}", config.database.identifier)),
            arn("rds", &format!("subgrp:{base}-*")),
            arn("rds", &format!("pg:{base}-*")),
            // CreateDBInstance is authorised on the engine's default option group too.
            arn("rds", "og:default:*"),
            arn("rds", &format!("snapshot:{}-final-*", config.database.identifier)),
        ],
        "elasticloadbalancing" => vec![
            arn("elasticloadbalancing", &format!("loadbalancer/app/{base}/*")),
            arn("elasticloadbalancing", &format!("listener/app/{base}/*")),
            arn("elasticloadbalancing", &format!("listener-rule/app/{base}/*")),
            arn("elasticloadbalancing", &format!("targetgroup/{base}-*/*")),
        ],
        "ecs" => vec![
            arn("ecs", &format!("cluster/{base}")),
            arn("ecs", &format!("service/{base}/*")),
            arn("ecs", &format!("task-definition/{base}*")),
        ],
        "logs" => vec![arn("logs", &format!("log-group:/ecs/{base}*"))],
        "codedeploy" => vec![
            arn("codedeploy", &format!("application:{base}")),
            arn("codedeploy", &format!("deploymentgroup:{base}/*")),
            // The predefined configurations (CodeDeployDefault.ECS…) and the deployer's own.
            arn("codedeploy", "deploymentconfig:*"),
        ],
        "cloudwatch" => {
            vec![
                arn("cloudwatch", &format!("alarm:{base}-*")),
                account.arn("cloudwatch", "", &format!("dashboard/{base}")),
            ]
        }
        "sns" => vec![arn("sns", &format!("{base}-*"))],
        "ssm" => vec![arn("ssm", &format!("parameter/deployer/{}/{}/*", config.app, config.env))],
        "scheduler" => vec![
            arn("scheduler", &format!("schedule-group/{base}")),
            arn("scheduler", &format!("schedule/{base}/*")),
        ],
        "events" => vec![arn("events", &format!("rule/{base}-*"))],
        // The database's secret, `{app}-{env}/db-master` (a random suffix follows in its ARN).
        "secretsmanager" => vec![arn("secretsmanager", &format!("secret:{base}/*"))],
        _ => return None,
    })
}

/// The least-privilege policy the deployer needs for `config` (`deployer iam-policy`): per
/// service, the reads on `*` (AWS's describe and list actions mostly take no resource), the
/// changes scoped to the environment's resources where the service can scope them (`scope`),
/// the others to the environment's regions (`aws:RequestedRegion`).
pub fn policy(config: &Config, account: &Account) -> PolicyDocument {
    let mut by_service: BTreeMap<&str, (Vec<&str>, Vec<&str>)> = BTreeMap::new();
    let mut unscoped: Vec<&str> = Vec::new();
    let mut bounded: Vec<&str> = Vec::new();
    let implied =
        IMPLIED.iter().map(|(a, _)| *a).filter(|a| config.database.enabled || !a.starts_with("rds:"));
    for action in actions(config).into_iter().chain(implied) {
        let service = action.split_once(':').map_or(action, |(s, _)| s);
        let entry = by_service.entry(service).or_default();
        if is_read(action) {
            entry.0.push(action);
        } else if NO_RESOURCE_LEVEL.contains(&action) {
            unscoped.push(action);
        } else if BOUNDED.contains(&action) {
            bounded.push(action);
        } else {
            entry.1.push(action);
        }
    }
    let star = || vec![Ref::Id("*".into())];
    let regions: Vec<String> = config.region_names();
    let region_refs: Vec<&str> = regions.iter().map(String::as_str).collect();
    // Route 53 is global: its requests are made in us-east-1, whatever the environment's regions.
    let mut global_refs = region_refs.clone();
    if !global_refs.contains(&crate::cloud::GLOBAL_REGION) {
        global_refs.push(crate::cloud::GLOBAL_REGION);
    }
    let in_regions = |actions: &[&str]| {
        let global = actions.iter().all(|a| a.starts_with("route53:"));
        let regions = if global { &global_refs } else { &region_refs };
        Statement::allow(actions, star()).condition("StringEquals", "aws:RequestedRegion", regions)
    };
    let sid = |service: &str, what: &str| {
        let mut s: String = service
            .split('-')
            .map(|w| {
                let mut c = w.chars();
                c.next().map(|f| f.to_uppercase().chain(c).collect::<String>()).unwrap_or_default()
            })
            .collect();
        s.push_str(what);
        s
    };
    let mut statements = Vec::new();
    for (service, (reads, writes)) in by_service {
        if !reads.is_empty() {
            statements.push(Statement::allow(&reads, star()).sid(&sid(service, "Read")));
        }
        if writes.is_empty() {
            continue;
        }
        let statement = match scope(service, config, account) {
            Some(arns) => Statement::allow(&writes, arns.into_iter().map(Ref::Id).collect()),
            None => in_regions(&writes),
        };
        statements.push(statement.sid(&sid(service, "Change")));
    }
    if !unscoped.is_empty() {
        statements.push(in_regions(&unscoped).sid("NoResourceLevelChanges"));
    }
    let path = crate::spec::names::iam_path(&config.app, &config.env);
    if !bounded.is_empty() {
        let boundary = crate::spec::names::boundary_arn(&config.app, &config.env, account);
        statements.push(
            Statement::allow(&bounded, vec![Ref::Id(account.arn("iam", "", &format!("role{path}*")))])
                .condition("StringEquals", "iam:PermissionsBoundary", &[&boundary])
                .sid("IamRolesWithinTheBoundary"),
        );
    }
    statements.push(
        Statement::allow(&["iam:PassRole"], vec![Ref::Id(account.arn("iam", "", &format!("role{path}*")))])
            .sid("PassEnvironmentRoles"),
    );
    let behalf: Vec<&str> = ON_ITS_BEHALF.iter().map(|(a, _)| *a).filter(|a| *a != "iam:PassRole").collect();
    statements.push(Statement::allow(&behalf, star()).sid("OnTheDeployersBehalf"));
    if config.database.enabled {
        // Secrets Manager encrypts and decrypts the database's secret with the configured key
        // on the caller's behalf (CreateSecret, PutSecretValue, GetSecretValue).
        let keys: Vec<String> = config.database.kms_key.values().cloned().collect();
        statements.extend(crate::resources::iam_policy::kms_statements(
            &["kms:GenerateDataKey", "kms:Decrypt"],
            &keys,
            "DatabaseSecretKeys",
        ));
    }
    PolicyDocument::new(statements)
}

/// The roles' permissions boundary: what `roles` allow, each resource of the environment
/// (a reference) widened to the environment's name pattern for its service (`scope`), so the
/// boundary names no resource that depends on the roles. Statements with the same resources and
/// conditions are merged, to stay within IAM's size for one managed policy.
pub fn boundary(
    config: &Config,
    account: &Account,
    roles: &[&crate::resources::iam_role::IamRoleSpec],
) -> PolicyDocument {
    type Key = (Vec<Ref>, BTreeMap<String, BTreeMap<String, Vec<String>>>);
    let mut merged: BTreeMap<Key, BTreeSet<String>> = BTreeMap::new();
    for policy in roles.iter().filter_map(|r| r.policy.as_ref()) {
        for s in policy.statements.iter().filter(|s| s.effect == "Allow") {
            let service = s.actions.first().and_then(|a| a.split_once(':')).map_or("", |(svc, _)| svc);
            let mut resources: BTreeSet<Ref> = BTreeSet::new();
            for r in &s.resources {
                match r {
                    Ref::Id(_) => {
                        resources.insert(r.clone());
                    }
                    _ => match scope(service, config, account) {
                        // (A role's policies name roles, never the boundary itself.)
                        Some(patterns) => resources
                            .extend(patterns.into_iter().filter(|p| !p.contains(":policy/")).map(Ref::Id)),
                        None => {
                            resources.insert(Ref::Id("*".into()));
                        }
                    },
                }
            }
            merged
                .entry((resources.into_iter().collect(), s.conditions.clone()))
                .or_default()
                .extend(s.actions.iter().cloned());
        }
    }
    let statements = merged
        .into_iter()
        .map(|((resources, conditions), actions)| {
            let actions: Vec<&str> = actions.iter().map(String::as_str).collect();
            Statement { conditions, ..Statement::allow(&actions, resources) }
        })
        .collect();
    let mut document = PolicyDocument::new(statements);
    document.normalize();
    document
}

/// IAM's limit on one managed policy, in characters (whitespace not counted).
pub const MANAGED_POLICY_LIMIT: usize = 6144;

/// `document`'s statements packed, in order, into as few documents as keep each within
/// `limit` characters of compact JSON (IAM's managed policies are limited; a role takes
/// several).
pub fn split(document: &serde_json::Value, limit: usize) -> Vec<serde_json::Value> {
    let statements = document["Statement"].as_array().cloned().unwrap_or_default();
    let wrap = |s: &[serde_json::Value]| serde_json::json!({"Version": document["Version"], "Statement": s});
    let size = |v: &serde_json::Value| v.to_string().len();
    let mut out: Vec<Vec<serde_json::Value>> = vec![vec![]];
    for s in statements {
        let last = out.last_mut().expect("one group");
        last.push(s.clone());
        if size(&wrap(last)) > limit && last.len() > 1 {
            last.pop();
            out.push(vec![s]);
        }
    }
    out.iter().map(|g| wrap(g)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every operation the code names (`.op("X")`, `op_or_gone("X", …)`, `op_unless("X", …)`)
    /// is declared: in a kind's file, by that kind (`Kind::ACTIONS`), or is the administrator's;
    /// anywhere else, by some part. Every kind is in some part and declares its actions.
    #[test]
    fn every_operation_the_code_sends_is_declared_where_it_is_sent() {
        let op = |a: &'static str| a.split_once(':').unwrap().1;
        let administrator: BTreeSet<&str> = ADMINISTRATOR_ONLY.iter().map(|(a, _)| op(a)).collect();
        let listed: BTreeSet<&str> = PARTS.iter().flat_map(|p| p.all_actions()).map(op).collect();
        for k in KINDS {
            assert!(!k.parts.is_empty(), "{} ({}.rs) is in no part", k.name, k.module);
            for part in k.parts {
                assert!(
                    PARTS.iter().any(|p| p.name == *part),
                    "{} ({}.rs): no part {part}",
                    k.name,
                    k.module
                );
            }
            assert!(!k.actions.is_empty(), "{} declares no action", k.name);
        }
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut missing = Vec::new();
        let mut stack = vec![src];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                if path.extension().is_none_or(|e| e != "rs") || path.ends_with("permissions.rs") {
                    continue;
                }
                // A kind's file: its own declaration. (Its tests name no operation.)
                let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
                let kind = KINDS
                    .iter()
                    .find(|k| path.parent().is_some_and(|d| d.ends_with("resources")) && k.module == stem);
                let declared: BTreeSet<&str> = match kind {
                    Some(k) => k.actions.iter().copied().map(op).collect(),
                    None => listed.clone(),
                };
                let text = std::fs::read_to_string(&path).unwrap();
                for pattern in ["op(\"", "op_or_gone(\"", "op_unless(\""] {
                    for (at, _) in text.match_indices(pattern) {
                        let rest = &text[at + pattern.len()..];
                        let name = &rest[..rest.find('"').unwrap()];
                        // GetCallerIdentity needs no permission.
                        if name.chars().next().is_some_and(|c| c.is_ascii_uppercase())
                            && name != "GetCallerIdentity"
                            && !declared.contains(name)
                            && !administrator.contains(name)
                        {
                            let by = kind.map_or("any part of src/permissions.rs".to_string(), |k| {
                                format!("the ACTIONS of {}", k.name)
                            });
                            missing.push(format!("{name} ({}, not in {by})", path.display()));
                        }
                    }
                }
            }
        }
        assert!(missing.is_empty(), "operations sent but not declared: {missing:#?}");
    }

    #[test]
    fn the_drift_role_only_reads_and_a_config_needs_every_read_but_only_its_changes() {
        let reads = read_actions();
        assert!(reads.contains("ec2:DescribeVpcs") && reads.contains("sns:GetTopicAttributes"));
        assert!(reads.iter().all(|a| is_read(a)), "{reads:?}");
        assert!(!reads.contains("codedeploy:ListDeployments"), "drift reads no release");
        let c = crate::config::testing::config(2, crate::config::NatMode::PerAz);
        let needed = actions(&c);
        assert!(needed.contains("scheduler:ListScheduleGroups"), "every kind is observed");
        assert!(!needed.contains("scheduler:CreateSchedule") && needed.contains("rds:CreateDBInstance"));
    }

    #[test]
    fn the_deployer_gives_a_role_permissions_only_within_the_boundary_and_cannot_write_the_boundary() {
        let c = crate::config::testing::every_tier();
        let account = Account::test();
        let policy = policy(&c, &account);
        let boundary = crate::spec::names::boundary_arn(&c.app, &c.env, &account);
        assert_eq!(boundary, "arn:aws:iam::123456789012:policy/deployer/webapp/test/webapp-test-boundary");
        for s in &policy.statements {
            let bounded = s.actions.iter().any(|a| BOUNDED.contains(&a.as_str()));
            if bounded {
                assert_eq!(s.sid.as_deref(), Some("IamRolesWithinTheBoundary"));
                assert!(s.actions.iter().all(|a| BOUNDED.contains(&a.as_str())), "{s:?}");
                assert_eq!(s.conditions["StringEquals"]["iam:PermissionsBoundary"], vec![boundary.clone()]);
            }
            for (admin, _) in ADMINISTRATOR_ONLY {
                assert!(!s.actions.iter().any(|a| a == admin), "{admin} granted in {s:?}");
            }
            for never in
                ["iam:DeleteRolePermissionsBoundary", "iam:AttachRolePolicy", "iam:SetDefaultPolicyVersion"]
            {
                assert!(!s.actions.iter().any(|a| a == never), "{never} granted in {s:?}");
            }
        }
        let granted: BTreeSet<&str> =
            policy.statements.iter().flat_map(|s| s.actions.iter().map(String::as_str)).collect();
        for a in BOUNDED {
            assert!(granted.contains(a), "{a}");
        }
    }
}
