//! Region-keyed tables of KMS keys (`[registry.kms_key]`, `[database.kms_key]`): a KMS key is
//! regional, so each entry must be a key of the region it is listed under.

use std::collections::BTreeMap;

use super::super::diagnostic::ConfigIssue;
use super::super::load::{Merged, Val};
use super::{Check, Regions};

/// Which entries a KMS table needs.
pub(super) enum KmsKeys {
    /// One for every region of the environment; `why` is the help of a missing one.
    EveryRegion { why: String },
    /// None, or one for every region of the environment; `why` is the help of a missing one.
    AllOrNone { why: String },
    /// None: `because` is the setting that makes them unused, `why` the help.
    Unused { because: Option<Val<String>>, message: String, why: String },
}

impl Check<'_> {
    /// The keys of a region-keyed KMS table, by region, if the table is valid under `policy`.
    pub(super) fn kms_keys(
        &mut self,
        merged: &Merged,
        table: &str,
        regions: &Regions,
        policy: KmsKeys,
    ) -> Option<BTreeMap<String, String>> {
        let before = self.issues.len();
        let entries = merged.region_strings(table);
        if let KmsKeys::Unused { because, message, why } = &policy {
            for (region, entry) in &entries {
                let issue =
                    ConfigIssue::new("config::kms_key_unused", format!("{table}.{region}"), message.clone())
                        .help(why.clone());
                let mut issue = self.loc(issue, &entry.key, "not used");
                if let Some(because) = because {
                    issue = self.at(issue, because, "because of this");
                }
                self.issue(issue);
            }
            return entries.is_empty().then(BTreeMap::new);
        }
        for (region, entry) in &entries {
            if !regions.contains(region) {
                self.foreign_region(table, region, entry, regions);
            }
        }
        let (needed, why) = match &policy {
            KmsKeys::EveryRegion { why } => (true, why),
            KmsKeys::AllOrNone { why } => (entries.keys().any(|region| regions.contains(region)), why),
            KmsKeys::Unused { .. } => unreachable!("returned above"),
        };
        let mut keys = BTreeMap::new();
        for region in regions.known() {
            let Some(entry) = entries.get(region) else {
                if needed {
                    let help = format!(
                        "{why}: add `{region} = \"arn:aws:kms:{region}:<account>:key/<key id>\"` under \
                         [{table}]"
                    );
                    self.missing(&format!("{table}.{region}"), help);
                }
                continue;
            };
            match kms_arn_problem(&entry.value.value, region) {
                Some(problem) => {
                    let issue = ConfigIssue::new(
                        "config::invalid_kms_key",
                        format!("{table}.{region}"),
                        format!("`{}` {problem}", entry.value.value),
                    )
                    .help(format!(
                        "a KMS key ARN of {region}: `arn:aws:kms:{region}:<12-digit account>:key/<key id>` \
                         or an alias, `arn:aws:kms:{region}:<12-digit account>:alias/<name>`"
                    ));
                    let issue = self.at(issue, &entry.value, "not a KMS key of this region");
                    self.issue(issue);
                }
                None => {
                    keys.insert(region.clone(), entry.value.value.clone());
                }
            }
        }
        (self.issues.len() == before).then_some(keys)
    }
}

/// What keeps `arn` from being a KMS key (or alias) ARN of `region`, if anything.
pub(crate) fn kms_arn_problem(arn: &str, region: &str) -> Option<String> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [prefix, partition, service, arn_region, account, resource] = parts[..] else {
        return Some("is not an ARN: `arn:aws:kms:<region>:<account>:key/<key id>`".to_owned());
    };
    if prefix != "arn" {
        return Some("is not an ARN: it must start with `arn:`".to_owned());
    }
    if partition != "aws" {
        return Some(format!("is in the `{partition}` partition; the deployer's regions are in `aws`"));
    }
    if service != "kms" {
        return Some(format!("is an ARN of the `{service}` service, not of a KMS key"));
    }
    if arn_region != region {
        return Some(if arn_region.is_empty() {
            "has no region".to_owned()
        } else {
            format!("is a key of {arn_region}, but it is listed for {region}: a KMS key only works in its own region")
        });
    }
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return Some(format!("has `{account}` as its account, not 12 digits"));
    }
    if let Some(id) = resource.strip_prefix("key/") {
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Some(format!(
                "has `{id}` as its key id, not a key id such as `1234abcd-12ab-34cd-56ef-1234567890ab`"
            ));
        }
    } else if let Some(name) = resource.strip_prefix("alias/") {
        if name.is_empty()
            || !name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'-'))
        {
            return Some(format!("has `{name}` as its alias name: letters, digits, `/`, `_` and `-` only"));
        }
    } else {
        return Some(format!("names `{resource}`, not `key/<key id>` or `alias/<name>`"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kms_arns() {
        let region = "us-east-1";
        for good in [
            "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            "arn:aws:kms:us-east-1:123456789012:key/mrk-1234abcd12ab34cd56ef1234567890ab",
            "arn:aws:kms:us-east-1:123456789012:alias/webapp/prod",
            "arn:aws:kms:us-east-1:123456789012:alias/aws/ecr",
        ] {
            assert_eq!(kms_arn_problem(good, region), None, "{good}");
        }
        for (bad, why) in [
            ("1234abcd-12ab-34cd-56ef-1234567890ab", "is not an ARN"),
            ("alias/aws/rds", "is not an ARN"),
            ("arn:aws-cn:kms:us-east-1:123456789012:key/abc", "`aws-cn` partition"),
            ("arn:aws:s3:us-east-1:123456789012:key/abc", "`s3` service"),
            (
                "arn:aws:kms:us-east-2:123456789012:key/abc",
                "is a key of us-east-2, but it is listed for us-east-1",
            ),
            ("arn:aws:kms::123456789012:key/abc", "has no region"),
            ("arn:aws:kms:us-east-1:1234:key/abc", "not 12 digits"),
            ("arn:aws:kms:us-east-1:123456789012:key/", "key id"),
            ("arn:aws:kms:us-east-1:123456789012:key/a b", "key id"),
            ("arn:aws:kms:us-east-1:123456789012:alias/", "alias name"),
            ("arn:aws:kms:us-east-1:123456789012:secret/abc", "not `key/<key id>` or `alias/<name>`"),
        ] {
            let problem = kms_arn_problem(bad, region).unwrap_or_else(|| panic!("{bad} accepted"));
            assert!(problem.contains(why), "{bad}: `{problem}` should say `{why}`");
        }
    }
}
