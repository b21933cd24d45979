//! Small EC2 helpers every kind shares: the environment's tag filters, tag specifications for
//! tag-on-create, reading tags back, and idempotency tokens.

use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};

use super::{Readiness, Tags, TAG_APP, TAG_ENV};
use crate::cloud::{AwsResultExt, Error};
use crate::spec::Address;

/// `tag:deployer:app = app` and `tag:deployer:env = env`: every describe call is scoped by these,
/// so one call per kind finds everything the environment owns in a region.
pub fn env_filters(app: &str, env: &str) -> Vec<Filter> {
    vec![
        Filter::builder().name(format!("tag:{TAG_APP}")).values(app).build(),
        Filter::builder().name(format!("tag:{TAG_ENV}")).values(env).build(),
    ]
}

/// The `TagSpecifications` entry that tags a resource in its create request.
pub fn tag_spec(resource_type: ResourceType, tags: &Tags) -> TagSpecification {
    TagSpecification::builder().resource_type(resource_type).set_tags(Some(sdk_tags(tags))).build()
}

pub fn sdk_tags(tags: &Tags) -> Vec<Tag> {
    tags.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()
}

pub fn tags_of(tags: &[Tag]) -> Tags {
    tags.iter()
        .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string())))
        .collect()
}

/// The address a resource carries in its `deployer:address` tag. Resources tagged for the
/// environment without a readable address are not ours to judge and are skipped (with a warning).
pub fn address_of(tags: &Tags, id: &str) -> Option<Address> {
    super::tagged_address(tags, &format!("resource {id}"))
}

/// For EC2 kinds whose only busy state is `pending`.
pub fn pending_is_busy(state: &str) -> Readiness {
    if state == "pending" {
        Readiness::Busy(state.to_string())
    } else {
        Readiness::Ready
    }
}

pub async fn create_tags(client: &aws_sdk_ec2::Client, id: &str, tags: &Tags) -> Result<(), Error> {
    client.create_tags().resources(id).set_tags(Some(sdk_tags(tags))).send().await.op("CreateTags")?;
    Ok(())
}

/// An idempotency token for one create: derived from the address and this run, so the SDK's
/// own retries of a request whose response was lost get the resource the first attempt made.
/// A later run never needs the old token (it finds the resource by its tags), and must not get
/// it: AWS would answer a re-create after a delete or replacement with the deleted resource.
/// At most 64 ASCII characters.
pub fn client_token(address: &Address, tags: &Tags) -> String {
    let field = |key: &str| tags.get(key).map(String::as_str).unwrap_or("");
    format!("deployer-{:016x}", stable_hash(&[address.as_str(), field(TAG_APP), field(TAG_ENV), run_id()]))
}

/// FNV-1a over `parts`, each followed by a NUL: the same on every Rust version and platform
/// (unlike `DefaultHasher`), so a later deployer derives the same value.
pub fn stable_hash(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in parts.iter().flat_map(|part| part.bytes().chain([0u8])) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// Unique to this process: its start time and PID.
fn run_id() -> &'static str {
    static RUN_ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    RUN_ID.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        format!("{nanos}-{}", std::process::id())
    })
}

/// Collects a paginated describe into a `Vec`, mapping the error.
#[macro_export]
macro_rules! describe_all {
    ($builder:expr, $op:literal) => {{
        use $crate::cloud::AwsResultExt;
        $builder.into_paginator().items().send().try_collect().await.op($op)
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_tokens_are_stable_within_a_run_and_distinct_per_address() {
        let a = Address::new("us-east-1", "network", "nat-gateway", "a");
        let b = Address::new("us-east-1", "network", "nat-gateway", "b");
        let tags = Tags::new();
        assert_eq!(client_token(&a, &tags), client_token(&a, &tags));
        assert_ne!(client_token(&a, &tags), client_token(&b, &tags));
        assert!(client_token(&a, &tags).len() <= 64);
    }
}
