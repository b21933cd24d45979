//! The registry tier: one ECR repository per region with the same settings, and the primary's
//! replication rule copying it to every secondary.

use super::{Address, Builder, Ref};
use crate::config::{Config, RegistryEncryption};
use crate::resources::ecr_replication::EcrReplicationSpec;
use crate::resources::ecr_repository::{self, EcrRepositorySpec};
use crate::resources::Spec;
use crate::spec::Account;

const TIER: &str = crate::spec::names::tier::REGISTRY;

/// The repository's address in `region`.
pub fn repository(region: &str) -> Address {
    Address::new(region, TIER, "ecr-repository", "main")
}

pub(super) fn registry(b: &mut Builder, config: &Config) {
    let r = &config.registry;
    if !r.enabled {
        return;
    }
    for region in config.region_names() {
        let (encryption, kms_key) = match r.encryption {
            RegistryEncryption::Aes256 => ("AES256", None),
            RegistryEncryption::Kms => ("KMS", r.kms_key.get(&region).cloned()),
        };
        let spec = EcrRepositorySpec {
            name: r.name.clone(),
            immutable_tags: r.immutable_tags,
            scan_on_push: r.scan_on_push,
            encryption: encryption.to_string(),
            kms_key,
            lifecycle_policy: Some(ecr_repository::lifecycle_policy(
                r.keep_tagged_images,
                r.expire_untagged_after_days,
            )),
        };
        b.add(&region, TIER, "main", Spec::EcrRepository(spec));
    }
    if !config.secondary_regions.is_empty() {
        let primary = config.primary_region.as_str();
        let spec = EcrReplicationSpec {
            repository: Ref::Addr(repository(primary)),
            prefix: r.name.clone(),
            destinations: config.secondary_regions.clone(),
        };
        b.add(primary, TIER, "main", Spec::EcrReplication(spec));
    }
}
/// The ARN of the repository an ECR image URI names
/// (`123456789012.dkr.ecr.us-east-1.amazonaws.com/tools/deployer:1.4` →
/// `arn:aws:ecr:us-east-1:123456789012:repository/tools/deployer`); validation guarantees the shape.
pub fn repository_arn(image: &str) -> Option<String> {
    let (registry, rest) = image.split_once('/')?;
    let mut parts = registry.split('.');
    let account = parts.next()?;
    let region = parts.nth(2)?;
    let repository =
        rest.split_once('@').map_or_else(|| rest.rsplit_once(':').map_or(rest, |(r, _)| r), |(r, _)| r);
    let partition = Account::partition_of_region(region);
    Some(format!("arn:{partition}:ecr:{region}:{account}:repository/{repository}"))
}
