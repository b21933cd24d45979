//! Configuration: `config/base.toml` merged with `config/<env>.toml`, validated before any AWS call.
//!
//! The types here are the resolved, validated configuration the rest of the program consumes:
//! defaults are applied and names derived (`{app}-{env}`), so consumers read final values.
//! Every section and key is declared once, in `schema.rs`; loading and merging live in `load.rs`,
//! validation in `validate.rs` (with one file per larger section under `validate/`).

pub use crate::cloud::AwsConfig;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use ipnet::Ipv4Net;

/// The most availability zones an environment can span. Subnet slots are laid out for this many
/// so that growing the AZ count never renumbers an existing subnet.
pub const MAX_AZS: usize = 6;

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Application name, e.g. `webapp`. Lowercase letters, digits and `-`.
    pub app: String,
    /// Environment name, the `--env` value, e.g. `prod`.
    pub env: String,
    pub primary_region: String,
    /// In order; may be empty or hold more than one region.
    pub secondary_regions: Vec<String>,
    /// Every region of the environment (primary and secondaries), keyed by region name.
    pub regions: BTreeMap<String, RegionConfig>,
    pub network: NetworkConfig,
    pub aws: AwsConfig,
    pub engine: EngineConfig,
    /// The container image repository (ECR): in the primary region, replicated to every secondary.
    pub registry: RegistryConfig,
    /// The PostgreSQL database: a primary in the primary region, a read replica in each secondary.
    pub database: DatabaseConfig,
    /// The application: IAM roles, load balancer, ECS Fargate service, auto-scaling.
    pub service: ServiceConfig,
    /// The HTTPS certificates of the load balancers (ACM).
    pub tls: TlsConfig,
    /// How releases reach the service: the CodeDeploy blue/green deployment group.
    pub release: ReleaseConfig,
    /// Route 53 failover between the primary and the secondary region.
    pub dns: DnsConfig,
    /// CloudWatch alarms, the SNS topics they notify, and the dashboard.
    pub monitoring: MonitoringConfig,
    /// The scheduled drift check in AWS.
    pub drift: DriftConfig,
}

/// `[monitoring]`: alarms with their thresholds, where they notify, and the dashboard.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MonitoringConfig {
    pub enabled: bool,
    pub emails: Vec<String>,
    pub https_endpoints: Vec<String>,
    pub alb_5xx_percent: u32,
    pub latency_p99_ms: u32,
    pub unhealthy_hosts: u32,
    pub ecs_cpu_percent: u32,
    pub ecs_memory_percent: u32,
    pub db_cpu_percent: u32,
    pub db_free_storage_percent: u32,
    pub db_connections: u32,
    pub replica_lag_secs: u32,
    pub evaluation_minutes: u32,
}

/// `[drift]`: the drift check EventBridge Scheduler runs in AWS.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DriftConfig {
    /// `rate(6 hours)`, `cron(0 */6 * * ? *)`; `None`: no scheduled check in AWS.
    pub schedule: Option<String>,
    /// The deployer's image, `<account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag>`.
    pub image: Option<String>,
}

/// `[dns]`: failover records and health checks.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DnsConfig {
    pub enabled: bool,
    /// The region whose records are PRIMARY (`regions.primary` unless set).
    pub primary: String,
    /// The zone's name (`tls.hosted_zone` unless set).
    pub hosted_zone: String,
    /// Fully qualified, lowercase, without the trailing dot.
    pub names: Vec<String>,
    pub health_check_path: String,
    pub health_check_interval_secs: i32,
    pub failure_threshold: i32,
    pub health_check_regions: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RegionConfig {
    pub vpc_cidr: Ipv4Net,
    /// Exactly `network.az_count` AZ names, in order (index 0 is AZ "a" of the layout).
    pub availability_zones: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NetworkConfig {
    pub az_count: usize,
    pub nat_gateways: NatMode,
    /// Prefix length of every subnet, e.g. 20 for /20 subnets.
    pub subnet_prefix: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NatMode {
    /// One NAT gateway per AZ: an AZ outage does not cut the others off.
    PerAz,
    /// One NAT gateway in the first AZ shared by all private subnets (cheaper; for dev).
    Single,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EngineConfig {
    /// How many changes the engine runs at once, across all regions.
    pub concurrency: usize,
    /// Upper bound on any single wait (a NAT gateway becoming available, a peering turning active…).
    pub wait_timeout: Duration,
    /// Finish each region before starting the next (for comparison; slower).
    pub one_region_at_a_time: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RegistryConfig {
    /// Whether the environment has a repository at all.
    pub enabled: bool,
    /// Repository name (`{app}-{env}` unless set), the same in the primary and every replica region.
    pub name: String,
    /// Tags cannot be overwritten (`IMMUTABLE`), so a release's tag always names the same image.
    pub immutable_tags: bool,
    pub scan_on_push: bool,
    pub encryption: RegistryEncryption,
    /// Region → KMS key ARN, for every region of the environment when `encryption` is
    /// [`RegistryEncryption::Kms`]; empty otherwise.
    pub kms_key: BTreeMap<String, String>,
    /// The lifecycle policy keeps this many tagged images, the most recently pushed.
    pub keep_tagged_images: u32,
    /// The lifecycle policy deletes an untagged image this many days after it was pushed.
    pub expire_untagged_after_days: u32,
    /// `destroy` keeps a repository that still holds images.
    pub keep_on_destroy: bool,
}

/// How a repository is encrypted at rest; fixed at creation (a change replaces the repository).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistryEncryption {
    /// Keys managed by ECR.
    Aes256,
    /// The KMS key of each region in [`RegistryConfig::kms_key`].
    Kms,
}

impl RegistryEncryption {
    /// The value ECR's API and the config file use: `AES256` or `KMS`.
    pub fn as_str(self) -> &'static str {
        match self {
            RegistryEncryption::Aes256 => "AES256",
            RegistryEncryption::Kms => "KMS",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct DatabaseConfig {
    /// Whether the environment has a database at all.
    pub enabled: bool,
    /// RDS identifier (`{app}-{env}` unless set) of the primary and of each replica.
    pub identifier: String,
    /// PostgreSQL `<major>.<minor>`, e.g. `16.4`.
    pub engine_version: String,
    pub instance_class: String,
    /// The class of each cross-region read replica (`instance_class` unless set).
    pub replica_instance_class: String,
    pub allocated_storage_gib: u32,
    /// Storage autoscaling limit; equal to `allocated_storage_gib` means no autoscaling.
    pub max_allocated_storage_gib: u32,
    pub multi_az: bool,
    /// Region → KMS key ARN for every region of the environment, or empty for the AWS-managed key
    /// `alias/aws/rds` in each region.
    pub kms_key: BTreeMap<String, String>,
    /// At least 1: a read replica needs automated backups on its source.
    pub backup_retention_days: u32,
    /// Daily, `hh24:mi-hh24:mi` UTC.
    pub backup_window: String,
    /// Weekly, `ddd:hh24:mi-ddd:hh24:mi` UTC.
    pub maintenance_window: String,
    pub deletion_protection: bool,
    pub skip_final_snapshot: bool,
    pub apply_immediately: bool,
    /// As configured; a class without support gets none (see [`performance_insights_supported`]).
    pub performance_insights: bool,
    pub port: u16,
    pub database_name: String,
    pub master_username: String,
    /// A change that would replace the database (engine, encryption, identifier) is refused
    /// unless this is set.
    pub allow_replacement: bool,
    /// How long to wait for a database or replica to become available.
    pub wait_timeout: Duration,
}

/// `[service]`: the application in every region. Enabling it needs `registry.enabled` (the
/// image comes from the environment's repository).
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceConfig {
    pub enabled: bool,
    /// The port the container listens on (and the target groups forward to).
    pub container_port: u16,
    /// The image tag of `<repository URI>:<tag>`; `up --image` overrides it for one run (release issue).
    pub image_tag: String,
    /// Fargate task size: CPU units and MiB, one of the combinations Fargate allows.
    pub cpu: u32,
    pub memory: u32,
    pub cpu_architecture: CpuArchitecture,
    /// The service's task count: desired = min at creation, then auto-scaling owns it.
    pub min_tasks: u32,
    pub max_tasks: u32,
    pub cpu_target_percent: u32,
    pub memory_target_percent: u32,
    pub scale_in_cooldown_secs: u32,
    pub scale_out_cooldown_secs: u32,
    pub health_check_grace_secs: u32,
    pub read_only_root_filesystem: bool,
    /// The container's user (`"1000"`, `"1000:1000"`, a name); `None` runs as the image says.
    pub user: Option<String>,
    /// Plain environment variables of the container (never secrets).
    pub environment: BTreeMap<String, String>,
    /// Environment variable → name of a Secrets Manager secret of the same region (each region
    /// holds a secret of that name, e.g. a replica), injected with `valueFrom`.
    pub secrets: BTreeMap<String, String>,
    /// KMS keys (ARNs) the execution role may decrypt the secrets with, beyond AWS-managed keys.
    pub secrets_kms_keys: Vec<String>,
    /// The task role's statements: the application's own AWS permissions. Empty by default.
    pub task_role_statements: Vec<PolicyStatementConfig>,
    /// The container's health check command (`["CMD-SHELL", "…"]` or `["CMD", …]`).
    pub container_health_check: Vec<String>,
    pub log_retention_days: u32,
    /// Region → KMS key ARN encrypting the log group; empty: CloudWatch's own encryption.
    pub log_kms_key: BTreeMap<String, String>,
    /// The target groups' health check.
    pub health_check: HealthCheckConfig,
    pub deregistration_delay_secs: u32,
    /// Who may reach ports 443 and 80 of the load balancer (IPv4 and IPv6 CIDRs).
    pub ingress_cidrs: Vec<String>,
    /// Who may reach the test listener (never public by default: empty).
    pub operator_cidrs: Vec<String>,
    pub test_listener_port: u16,
    pub idle_timeout_secs: u32,
    /// The load balancer's deletion protection (on in prod).
    pub deletion_protection: bool,
    /// The HTTPS listeners' security policy (TLS 1.3).
    pub ssl_policy: String,
    /// The cluster's default capacity provider strategy.
    pub capacity: CapacityConfig,
    /// How long to wait for the service to become stable, or to drain when deleted.
    pub wait_timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuArchitecture {
    X86_64,
    Arm64,
}

impl CpuArchitecture {
    /// ECS's spelling: `X86_64` or `ARM64`.
    pub fn as_str(self) -> &'static str {
        match self {
            CpuArchitecture::X86_64 => "X86_64",
            CpuArchitecture::Arm64 => "ARM64",
        }
    }
}

/// One statement of the task role's policy, as configured (checked to be well formed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyStatementConfig {
    pub sid: Option<String>,
    /// `Allow` or `Deny`.
    pub effect: String,
    /// `service:Action` each (wildcards allowed in the action part).
    pub actions: Vec<String>,
    /// ARNs (or `*`).
    pub resources: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheckConfig {
    /// Starts with `/`.
    pub path: String,
    pub interval_secs: u32,
    pub timeout_secs: u32,
    pub healthy_threshold: u32,
    pub unhealthy_threshold: u32,
    /// HTTP codes, e.g. `200` or `200-299`.
    pub matcher: String,
}

/// The cluster's default capacity provider strategy: `on_demand_base` tasks on FARGATE first,
/// the rest split by weight between FARGATE and FARGATE_SPOT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapacityConfig {
    pub on_demand_base: u32,
    pub on_demand_weight: u32,
    pub spot_weight: u32,
}

/// `[tls]`: each region's load balancer certificate.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsConfig {
    /// The names the certificate covers (the first is its domain name, the rest alternative
    /// names); each within `hosted_zone`.
    pub domain_names: Vec<String>,
    /// The Route 53 hosted zone (its name, e.g. `example.com`) the DNS validation records go
    /// into. The deployer never creates or deletes the zone.
    pub hosted_zone: Option<String>,
    /// Region → an existing certificate's ARN, used as it is (no certificate is requested then).
    pub certificate_arns: BTreeMap<String, String>,
}

/// `[release]`: the CodeDeploy deployment group's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseConfig {
    pub deployment_config: DeploymentConfigChoice,
    /// Minutes the old (blue) task set keeps running after a successful deployment.
    pub termination_wait_minutes: u32,
    /// Seconds the alarms must stay OK after a region's release, before the next region.
    pub bake_secs: u64,
    /// A failed region also rolls back the regions released earlier in the run.
    pub rollback_all_on_failure: bool,
    /// The least severe ECR scan finding that refuses a release: `CRITICAL`, `HIGH`, `MEDIUM`, `LOW`.
    pub block_on_severity: String,
    /// Bound on waiting for the image in every region and for its scan.
    pub image_wait_secs: u64,
}

/// A predefined CodeDeploy ECS configuration, or a custom one the deployer creates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeploymentConfigChoice {
    /// `CodeDeployDefault.ECSAllAtOnce`, `CodeDeployDefault.ECSCanary10Percent5Minutes`, …
    Predefined(String),
    /// `percent` of traffic first, the rest `minutes` later.
    Canary { percent: u32, minutes: u32 },
    /// `percent` more traffic every `minutes`.
    Linear { percent: u32, minutes: u32 },
}

impl DeploymentConfigChoice {
    /// The CodeDeploy configuration's name: a predefined one as it is, and a canary or linear
    /// shape that CodeDeploy predefines (10 % then the rest after 5 or 15 minutes; 10 % every 1
    /// or 3 minutes) by its predefined name. `None` for other shapes: the deployer creates a
    /// custom configuration for them.
    pub fn codedeploy_name(&self) -> Option<String> {
        match self {
            DeploymentConfigChoice::Predefined(name) => Some(name.clone()),
            DeploymentConfigChoice::Canary { percent: 10, minutes: m @ (5 | 15) } => {
                Some(format!("CodeDeployDefault.ECSCanary10Percent{m}Minutes"))
            }
            DeploymentConfigChoice::Linear { percent: 10, minutes: m @ (1 | 3) } => {
                Some(format!("CodeDeployDefault.ECSLinear10PercentEvery{m}Minutes"))
            }
            _ => None,
        }
    }

    /// Minutes the traffic shift itself takes (a canary's interval; a linear shape's steps),
    /// which a release waits on top of `service.wait_timeout_secs`.
    pub fn shift_minutes(&self) -> u64 {
        let shape = match self {
            DeploymentConfigChoice::Canary { percent, minutes } => Some((true, *percent, *minutes)),
            DeploymentConfigChoice::Linear { percent, minutes } => Some((false, *percent, *minutes)),
            DeploymentConfigChoice::Predefined(name) => {
                let number = |after: &str| -> Option<u32> {
                    let rest = name.split_once(after)?.1;
                    rest.chars().take_while(char::is_ascii_digit).collect::<String>().parse().ok()
                };
                if name.contains("Canary") {
                    number("Percent").map(|m| (true, 10, m))
                } else if name.contains("Linear") {
                    number("Every").map(|m| (false, 10, m))
                } else {
                    None
                }
            }
        };
        match shape {
            None => 0,
            Some((true, _, minutes)) => minutes as u64,
            Some((false, percent, minutes)) => (100u32.div_ceil(percent.max(1)) * minutes) as u64,
        }
    }
}

impl Config {
    /// Regions in order: primary first, then the secondaries.
    pub fn region_names(&self) -> Vec<String> {
        std::iter::once(self.primary_region.clone()).chain(self.secondary_regions.iter().cloned()).collect()
    }
}

/// The public subnet of AZ `az_index`: slot `az_index` of the VPC split into `/subnet_prefix` blocks.
pub fn public_subnet_cidr(vpc: Ipv4Net, subnet_prefix: u8, az_index: usize) -> Option<Ipv4Net> {
    vpc.subnets(subnet_prefix).ok()?.nth(az_index)
}

/// The private subnet of AZ `az_index`: slot `MAX_AZS + az_index`, so public and private never
/// collide and adding an AZ never moves an existing subnet.
pub fn private_subnet_cidr(vpc: Ipv4Net, subnet_prefix: u8, az_index: usize) -> Option<Ipv4Net> {
    vpc.subnets(subnet_prefix).ok()?.nth(MAX_AZS + az_index)
}

/// Errors from loading configuration; rendered at the edge with miette (file, key, span, hint).
pub type ConfigError = miette::Report;

/// Load `<dir>/base.toml` merged with `<dir>/<env>.toml` and validate it. No AWS call is made.
pub fn load(dir: &Path, env: &str) -> Result<Config, ConfigError> {
    let (merged, files) = load::load(dir, env)?;
    validate::resolve(&merged, env, &files)
}

mod diagnostic;
mod load;
mod regions;
mod schema;
mod validate;
pub use validate::service::{docker_tag_problem, SEVERITIES};

#[cfg(test)]
mod tests;

pub use load::environments;
pub use regions::KNOWN_REGIONS;
pub use schema::docs_table;
pub use validate::database::performance_insights_supported;

// The schema's defaults, for the pure core's test fixtures (`testing`); the program
// resolves them from the schema.
#[cfg(test)]
impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            enabled: false,
            container_port: 8080,
            image_tag: "latest".into(),
            cpu: 512,
            memory: 1024,
            cpu_architecture: CpuArchitecture::X86_64,
            min_tasks: 2,
            max_tasks: 10,
            cpu_target_percent: 70,
            memory_target_percent: 80,
            scale_in_cooldown_secs: 300,
            scale_out_cooldown_secs: 60,
            health_check_grace_secs: 60,
            read_only_root_filesystem: true,
            user: Some("1000".into()),
            environment: BTreeMap::new(),
            secrets: BTreeMap::new(),
            secrets_kms_keys: vec![],
            task_role_statements: vec![],
            container_health_check: vec![
                "CMD-SHELL".into(),
                "curl -fsS http://localhost:8080/health || exit 1".into(),
            ],
            log_retention_days: 30,
            log_kms_key: BTreeMap::new(),
            health_check: HealthCheckConfig {
                path: "/health".into(),
                interval_secs: 15,
                timeout_secs: 5,
                healthy_threshold: 3,
                unhealthy_threshold: 3,
                matcher: "200-299".into(),
            },
            deregistration_delay_secs: 30,
            ingress_cidrs: vec!["0.0.0.0/0".into(), "::/0".into()],
            operator_cidrs: vec![],
            test_listener_port: 8443,
            idle_timeout_secs: 60,
            deletion_protection: false,
            ssl_policy: "ELBSecurityPolicy-TLS13-1-2-2021-06".into(),
            capacity: CapacityConfig { on_demand_base: 0, on_demand_weight: 1, spot_weight: 0 },
            wait_timeout: Duration::from_secs(1800),
        }
    }
}

#[cfg(test)]
impl Default for ReleaseConfig {
    fn default() -> Self {
        ReleaseConfig {
            deployment_config: DeploymentConfigChoice::Predefined("CodeDeployDefault.ECSAllAtOnce".into()),
            termination_wait_minutes: 5,
            bake_secs: 300,
            rollback_all_on_failure: false,
            block_on_severity: "CRITICAL".into(),
            image_wait_secs: 900,
        }
    }
}

/// Configurations for the pure core's tests, built without files.
#[cfg(test)]
pub(crate) mod testing {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::{AwsConfig, Config, EngineConfig, NatMode, NetworkConfig, RegionConfig};

    /// `config` with the service tier on.
    pub fn with_service(mut config: Config) -> Config {
        config.service.enabled = true;
        config
    }

    /// Every tier on, the drift schedule too: every role the deployer can create.
    pub fn every_tier() -> Config {
        let mut c = with_service(config(2, NatMode::PerAz));
        c.drift.schedule = Some("rate(6 hours)".into());
        c.drift.image = Some("123456789012.dkr.ecr.us-east-1.amazonaws.com/deployer:1.0.0".into());
        c.service.secrets.insert("API_KEY".into(), "webapp/api-key".into());
        c
    }

    pub fn config(az_count: usize, nat: NatMode) -> Config {
        let region = |name: &str, cidr: &str| {
            let azs = ["a", "b", "c", "d"].iter().take(az_count).map(|x| format!("{name}{x}")).collect();
            (name.to_string(), RegionConfig { vpc_cidr: cidr.parse().unwrap(), availability_zones: azs })
        };
        Config {
            app: "webapp".into(),
            env: "test".into(),
            primary_region: "us-east-1".into(),
            secondary_regions: vec!["us-east-2".into()],
            regions: BTreeMap::from([
                region("us-east-1", "10.10.0.0/16"),
                region("us-east-2", "10.20.0.0/16"),
            ]),
            network: NetworkConfig { az_count, nat_gateways: nat, subnet_prefix: 20 },
            aws: AwsConfig::default(),
            engine: EngineConfig {
                concurrency: 8,
                wait_timeout: Duration::from_secs(60),
                one_region_at_a_time: false,
            },
            registry: super::RegistryConfig {
                enabled: true,
                name: "webapp-test".into(),
                immutable_tags: false,
                scan_on_push: true,
                encryption: super::RegistryEncryption::Aes256,
                kms_key: BTreeMap::new(),
                keep_tagged_images: 30,
                expire_untagged_after_days: 7,
                keep_on_destroy: false,
            },
            database: super::DatabaseConfig {
                enabled: true,
                identifier: "webapp-test".into(),
                engine_version: "16.4".into(),
                instance_class: "db.t4g.medium".into(),
                replica_instance_class: "db.t4g.medium".into(),
                allocated_storage_gib: 20,
                max_allocated_storage_gib: 100,
                multi_az: true,
                kms_key: BTreeMap::new(),
                backup_retention_days: 7,
                backup_window: "03:00-04:00".into(),
                maintenance_window: "sun:05:00-sun:06:00".into(),
                deletion_protection: true,
                skip_final_snapshot: false,
                apply_immediately: false,
                performance_insights: true,
                port: 5432,
                database_name: "app".into(),
                master_username: "app_admin".into(),
                allow_replacement: false,
                wait_timeout: Duration::from_secs(3600),
            },
            // The network and data tiers' tests leave the service out; `with_service` adds it.
            service: super::ServiceConfig { enabled: false, ..Default::default() },
            tls: super::TlsConfig {
                domain_names: vec!["app.test.example.com".into()],
                hosted_zone: Some("example.com".into()),
                certificate_arns: BTreeMap::new(),
            },
            release: Default::default(),
            dns: Default::default(),
            monitoring: Default::default(),
            drift: Default::default(),
        }
    }
}
