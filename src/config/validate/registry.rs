//! `[registry]`: the environment's ECR repository.

use super::super::load::Merged;
use super::super::{RegistryConfig, RegistryEncryption};
use super::kms::KmsKeys;
use super::{Check, Regions};

impl Check<'_> {
    pub(super) fn registry(
        &mut self,
        merged: &Merged,
        app: Option<&str>,
        regions: &Regions,
    ) -> Option<RegistryConfig> {
        // The deployer finds its repositories by this prefix (ECR has no tag search that works
        // everywhere; see src/resources/ecr_repository.rs).
        let prefix = app.map(|app| format!("{app}-{}", self.env));
        let name = self.checked_str(
            merged,
            "registry.name",
            "config::invalid_name",
            "repository name",
            |name| {
                ecr_name_problem(name).or_else(|| {
                    let prefix = prefix.as_deref()?;
                    (!name.starts_with(prefix)).then(|| {
                        format!("does not start with `{prefix}` (the environment's repositories are found by that prefix)")
                    })
                })
            },
            "ECR repository names are 2 to 256 lowercase letters and digits, with single `.`, `_` \
             or `-` between them and `/` between path parts, e.g. \"webapp-prod\" or \"webapp-prod/api\"; \
             the default is \"{app}-{env}\"",
        );
        let encryption = self.choice(
            merged,
            "registry.encryption",
            &[("AES256", RegistryEncryption::Aes256), ("KMS", RegistryEncryption::Kms)],
            "`AES256`: encrypted with keys ECR manages (the default); `KMS`: encrypted with the KMS \
             key of each region listed under [registry.kms_key]",
        );
        let kms_key = match encryption {
            Some(RegistryEncryption::Kms) => self.kms_keys(
                merged,
                "registry.kms_key",
                regions,
                KmsKeys::EveryRegion {
                    why: "with encryption = \"KMS\" the repository and each of its replicas are \
                          encrypted with a key of their own region"
                        .to_owned(),
                },
            ),
            Some(RegistryEncryption::Aes256) => self.kms_keys(
                merged,
                "registry.kms_key",
                regions,
                KmsKeys::Unused {
                    because: merged.string("registry.encryption"),
                    message: "a KMS key is set, but registry.encryption is `AES256`".to_owned(),
                    why: "set registry.encryption = \"KMS\" to encrypt with these keys, or remove \
                          [registry.kms_key] (an entry in base.toml applies to every environment)"
                        .to_owned(),
                },
            ),
            None => None,
        };
        let keep_tagged_images = self.in_range(
            merged,
            "registry.keep_tagged_images",
            "how many tagged images the lifecycle policy keeps (older ones are deleted; a \
             rollback needs the previous release's image)",
        );
        let expire_untagged_after_days = self.in_range(
            merged,
            "registry.expire_untagged_after_days",
            "days after which the lifecycle policy deletes an untagged image",
        );
        Some(RegistryConfig {
            enabled: self.flag(merged, "registry.enabled"),
            name: match name.ok()? {
                Some(name) => name,
                None => format!("{}-{}", app?, self.env),
            },
            immutable_tags: self.flag(merged, "registry.immutable_tags"),
            scan_on_push: self.flag(merged, "registry.scan_on_push"),
            encryption: encryption?,
            kms_key: kms_key?,
            keep_tagged_images: keep_tagged_images? as u32,
            expire_untagged_after_days: expire_untagged_after_days? as u32,
            keep_on_destroy: self.flag(merged, "registry.keep_on_destroy"),
        })
    }
}

/// What keeps `name` from being an ECR repository name, if anything: 2 to 256 characters matching
/// `^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$`.
pub(crate) fn ecr_name_problem(name: &str) -> Option<String> {
    let length = name.chars().count();
    if !(2..=256).contains(&length) {
        return Some(format!("is {length} characters long; it must be 2 to 256"));
    }
    if let Some(bad) =
        name.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || "._-/".contains(*c)))
    {
        return Some(format!(
            "may contain only lowercase letters, digits, `.`, `_`, `-` and `/`, not `{bad}`"
        ));
    }
    for part in name.split('/') {
        let (Some(first), Some(last)) = (part.chars().next(), part.chars().last()) else {
            return Some("has an empty path part (`//`, or `/` at the start or end)".to_owned());
        };
        if !first.is_ascii_alphanumeric() || !last.is_ascii_alphanumeric() {
            return Some(format!("has the part `{part}`, which must start and end with a letter or digit"));
        }
        let separators: Vec<char> = part.chars().collect();
        if let Some(pair) = separators.windows(2).find(|pair| pair.iter().all(|c| "._-".contains(*c))) {
            return Some(format!(
                "has `{}{}`: `.`, `_` and `-` go one at a time between letters or digits",
                pair[0], pair[1]
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecr_names() {
        for good in ["webapp-prod", "ab", "team/webapp", "a.b_c-d/e1/f", &"a".repeat(256)] {
            assert_eq!(ecr_name_problem(good), None, "{good}");
        }
        for (bad, why) in [
            ("a", "2 to 256"),
            (&"a".repeat(257), "2 to 256"),
            ("WebApp", "not `W`"),
            ("web app", "not ` `"),
            ("team//webapp", "empty path part"),
            ("/webapp", "empty path part"),
            ("webapp/", "empty path part"),
            ("-webapp", "start and end"),
            ("webapp.", "start and end"),
            ("team/_webapp", "start and end"),
            ("web--app", "`--`"),
            ("web._app", "`._`"),
        ] {
            let problem = ecr_name_problem(bad).unwrap_or_else(|| panic!("{bad} accepted"));
            assert!(problem.contains(why), "{bad}: `{problem}` should say `{why}`");
        }
    }
}
