//! The naming rules: the tiers addresses are grouped in, and the names AWS sees. Config
//! validation keeps every name these make within AWS's limits.

/// The tiers, the second part of every address (`us-east-1/network/vpc/main`).
pub mod tier {
    pub const NETWORK: &str = "network";
    pub const PEERING: &str = "peering";
    pub const REGISTRY: &str = "registry";
    pub const DATABASE: &str = "database";
    pub const SERVICE: &str = "service";
    pub const IAM: &str = "iam";
    pub const RELEASE: &str = "release";
    pub const DNS: &str = "dns";
    pub const MONITORING: &str = "monitoring";
    pub const DRIFT: &str = "drift";
    /// Every tier, in the order the model adds them.
    pub const ALL: &[&str] =
        &[NETWORK, PEERING, REGISTRY, DATABASE, SERVICE, IAM, RELEASE, DNS, MONITORING, DRIFT];
}

/// `{app}-{env}`: the load balancer, cluster, service, task family, CodeDeploy application and
/// deployment group are all named this.
pub fn base_name(app: &str, env: &str) -> String {
    format!("{app}-{env}")
}

/// The IAM path every role and policy of the environment lives under: `/deployer/<app>/<env>/`.
/// The global observation lists roles and policies by it.
pub fn iam_path(app: &str, env: &str) -> String {
    format!("/deployer/{app}/{env}/")
}

/// `{app}-{env}-boundary`: the roles' permissions boundary, under [`iam_path`].
pub fn boundary_name(app: &str, env: &str) -> String {
    format!("{}-boundary", base_name(app, env))
}

/// The roles' permissions boundary's ARN, as the deployer's own policy names it.
pub fn boundary_arn(app: &str, env: &str, account: &super::Account) -> String {
    account.arn("iam", "", &format!("policy{}{}", iam_path(app, env), boundary_name(app, env)))
}

/// `/ecs/{app}-{env}`: the service's log group, and the prefix it is found by.
pub fn log_group_name_prefix(app: &str, env: &str) -> String {
    format!("/ecs/{}", base_name(app, env))
}

/// What is wrong with an app or environment name, if anything: `^[a-z][a-z0-9-]*$`, with no
/// trailing `-` and no `--`.
pub fn name_problem(name: &str) -> Option<String> {
    let Some(first) = name.chars().next() else {
        return Some("must not be empty".to_owned());
    };
    if !first.is_ascii_lowercase() {
        return Some(format!("must start with a lowercase letter, not `{first}`"));
    }
    if let Some(bad) = name.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')) {
        return Some(format!("may contain only lowercase letters, digits and '-', not `{bad}`"));
    }
    if name.ends_with('-') {
        return Some("must not end with '-'".to_owned());
    }
    if name.contains("--") {
        return Some("must not contain '--'".to_owned());
    }
    None
}
