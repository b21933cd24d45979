//! The service tier, when `service.enabled`: the application behind HTTPS in every region,
//! ready for blue/green releases. Each part lives in its own file; this one holds the addresses
//! and names they share, so the parts reference each other without importing each other.
//!
//! Addresses (`R` any region of the environment):
//!
//! | Address | What |
//! |---|---|
//! | `global/iam/iam-role/task-execution` | pulls the image, writes logs, reads the secrets |
//! | `global/iam/iam-role/task` | the application's own permissions (`service.task_role_statements`) |
//! | `global/iam/iam-role/codedeploy` | what CodeDeploy needs for ECS blue/green |
//! | `R/service/acm-certificate/main` | the load balancer's certificate (unless `tls.certificate_arns`) |
//! | `R/service/security-group/alb` | 443 and 80 from `service.ingress_cidrs`; the test port from `service.operator_cidrs` |
//! | `R/service/security-group/app` | the tasks: the container port from the ALB's group only |
//! | `R/service/load-balancer/main` | `{app}-{env}`, internet-facing, public subnets |
//! | `R/service/target-group/blue`, `…/green` | `{app}-{env}-blue`, `{app}-{env}-green`, type `ip` |
//! | `R/service/listener/https`, `…/http`, `…/test` | 443 → blue, 80 → 301 to 443, the test port → green |
//! | `R/service/ecs-cluster/main` | `{app}-{env}` |
//! | `R/service/log-group/app` | `/ecs/{app}-{env}` |
//! | `R/service/task-definition/app` | family `{app}-{env}`, container `app` |
//! | `R/service/ecs-service/app` | `{app}-{env}`, on the CODE_DEPLOY controller |
//! | `R/service/scalable-target/app`, `R/service/scaling-policy/cpu`, `…/memory` | auto-scaling |
//! | `R/release/codedeploy-app/main`, `R/release/deployment-group/main` | `{app}-{env}` |
//! | `R/release/deployment-config/<shape>` | a custom canary or linear configuration (`canary-20pct-10min`), when the configured shape is not predefined |
//! | `R/release/metric-alarm/<blue|green>-5xx`, `…/<blue|green>-unhealthy-hosts` | the alarms the deployment group watches: each metric on both target groups, since the colours swap roles with every release |

pub(super) mod alb;
mod codedeploy;
mod ecs;
pub use ecs::{default_strategy, image};
pub(in crate::model) mod iam;

use super::Builder;
// The kinds that find themselves by these addresses own them.
use crate::config::Config;
pub use crate::resources::ecs_service::address as ecs_service;
pub use crate::resources::scalable_target::address as scalable_target;
pub use crate::resources::scaling_policy::address as scaling_policy;
use crate::spec::names::{self, tier};
use crate::spec::{Account, Address};

pub const TIER: &str = tier::SERVICE;
pub const IAM_TIER: &str = tier::IAM;
pub const RELEASE_TIER: &str = tier::RELEASE;

/// The name of the application's container in the task definition.
pub const CONTAINER_NAME: &str = "app";

/// `{app}-{env}` ([`names::base_name`]).
pub fn base_name(config: &Config) -> String {
    names::base_name(&config.app, &config.env)
}

pub fn role(name: &str) -> Address {
    Address::global(IAM_TIER, "iam-role", name)
}
pub fn task_execution_role() -> Address {
    role("task-execution")
}
pub fn task_role() -> Address {
    role("task")
}
pub fn codedeploy_role() -> Address {
    role("codedeploy")
}

pub fn certificate(region: &str) -> Address {
    Address::new(region, TIER, "acm-certificate", "main")
}
pub fn alb_security_group(region: &str) -> Address {
    Address::new(region, TIER, "security-group", "alb")
}
pub fn app_security_group(region: &str) -> Address {
    super::database::app_security_group(region)
}
pub fn load_balancer(region: &str) -> Address {
    Address::new(region, TIER, "load-balancer", "main")
}
/// `blue` or `green`.
pub fn target_group(region: &str, color: &str) -> Address {
    Address::new(region, TIER, "target-group", color)
}
/// `https`, `http` or `test`.
pub fn listener(region: &str, name: &str) -> Address {
    Address::new(region, TIER, "listener", name)
}
pub fn cluster(region: &str) -> Address {
    Address::new(region, TIER, "ecs-cluster", "main")
}
pub fn log_group(region: &str) -> Address {
    Address::new(region, TIER, "log-group", "app")
}
pub fn log_group_name(config: &Config) -> String {
    names::log_group_name_prefix(&config.app, &config.env)
}
pub fn task_definition(region: &str) -> Address {
    Address::new(region, TIER, "task-definition", "app")
}
pub fn codedeploy_app(region: &str) -> Address {
    Address::new(region, RELEASE_TIER, "codedeploy-app", "main")
}
pub fn deployment_group(region: &str) -> Address {
    Address::new(region, RELEASE_TIER, "deployment-group", "main")
}
/// `blue-5xx`, `green-5xx`, `blue-unhealthy-hosts` or `green-unhealthy-hosts`.
pub fn alarm(region: &str, name: &str) -> Address {
    Address::new(region, RELEASE_TIER, "metric-alarm", name)
}

/// Adds the tier's resources, each after what it references (the load balancer's and the
/// application's security groups are added before the database tier, in `model::desired`):
/// each region's load balancing, cluster and log group; the task roles, which name the log
/// groups and the database's secret; each region's task definition, service and scaling; the
/// CodeDeploy role, which names the services; each region's CodeDeploy application, alarms and
/// deployment group.
pub(super) fn service(b: &mut Builder, config: &Config, account: &Account) {
    if !config.service.enabled {
        return;
    }
    for region in config.region_names() {
        alb::load_balancing(b, config, &region);
        ecs::ecs(b, config, &region);
    }
    iam::roles(b, config, account, &[task_execution_role(), task_role()]);
    for region in config.region_names() {
        ecs::service(b, config, account, &region);
    }
    iam::roles(b, config, account, &[codedeploy_role()]);
    for region in config.region_names() {
        codedeploy::release(b, config, &region);
    }
}
