//! Configuration: `config/base.toml` merged with `config/<env>.toml`, validated before any AWS call.
//!
//! The types here are the resolved, validated configuration the rest of the program consumes:
//! defaults are applied and names derived (`{app}-{env}`), so consumers read final values.
//! Every section and key is declared once, in `schema.rs`; loading and merging live in `load.rs`,
//! validation in `validate.rs` (with one file per larger section under `validate/`).

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

#[derive(Debug, Clone, PartialEq, Default)]
pub struct AwsConfig {
    /// Endpoint override (an emulator). `AWS_ENDPOINT_URL` in the environment wins over this.
    pub endpoint_url: Option<String>,
    /// Named profile from the shared AWS config; `None` uses the default credential chain.
    pub profile: Option<String>,
    /// Use fixed dummy credentials (for an emulator) instead of the credential chain.
    pub emulator_credentials: bool,
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

impl Config {
    /// Wait bounds of the kinds that have their own (the default is `engine.wait_timeout`).
    pub fn wait_timeouts(&self) -> BTreeMap<&'static str, Duration> {
        use crate::resources::{db_instance::DbInstance, db_replica::DbReplica, Kind};
        let mut timeouts = BTreeMap::new();
        if self.database.enabled {
            // Creating a Multi-AZ primary takes 15–40 minutes on AWS, a replica longer.
            timeouts.insert(DbInstance::NAME, self.database.wait_timeout);
            timeouts.insert(DbReplica::NAME, self.database.wait_timeout);
        }
        timeouts
    }

    /// What destroy keeps and how it deletes data.
    pub fn deletion_policy(&self) -> crate::resources::DeletionPolicy {
        crate::resources::DeletionPolicy {
            keep_repositories_with_images: self.registry.keep_on_destroy,
            skip_final_snapshot: self.database.skip_final_snapshot,
        }
    }

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
    load::load(dir, env)
}

mod diagnostic;
mod load;
mod regions;
mod schema;
mod validate;

#[cfg(test)]
mod tests;

pub use load::environments;
pub use regions::KNOWN_REGIONS;
pub use schema::docs_table;
pub use validate::database::performance_insights_supported;
