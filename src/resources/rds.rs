//! Small RDS helpers the database kinds share: tags in RDS's shape, the environment's naming
//! convention for subnet and parameter groups, and finding what is ours by tag.
//!
//! Discovery: RDS has no tag filter on its describes. `DescribeDBInstances` returns each
//! instance's `TagList`, so one paginated call per region finds every instance and the
//! environment's are picked client-side. `DBSubnetGroup` and `DBParameterGroup` carry no tags in
//! the API model (nor in moto 5.2.5's answers), so those kinds list the region's groups (one
//! paginated describe), keep the names that start with `{app}-{env}-` (the model names them so),
//! and ask `ListTagsForResource` for each of those: an environment has one of each per region,
//! so the reads do not grow with the AZ count or any other count.

use aws_sdk_rds::types::Tag;

use super::{Tags, TAG_ADDRESS};
use crate::cloud::{AwsResultExt, Error};
use crate::spec::Address;

pub fn client(clients: &crate::cloud::Clients, region: &str) -> aws_sdk_rds::Client {
    clients.get(region)
}

pub fn sdk_tags(tags: &Tags) -> Vec<Tag> {
    tags.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()
}

pub fn tags_of(tags: &[Tag]) -> Tags {
    tags.iter()
        .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string())))
        .collect()
}

/// The prefix of every subnet and parameter group name of the environment.
pub fn name_prefix(app: &str, env: &str) -> String {
    format!("{app}-{env}-")
}

pub use super::is_ours;

/// The address in a resource's `deployer:address` tag; warns and skips one without.
pub fn address_of(tags: &Tags, id: &str) -> Option<Address> {
    super::tagged_address(tags, &format!("resource {id}"))
}

/// The tags of one RDS resource while observing: from the region's tagging index
/// ([`super::tagging`]), otherwise as [`list_tags`] reads them.
pub async fn observed_tags(
    ctx: &super::ObserveCtx<'_>,
    client: &aws_sdk_rds::Client,
    arn: &str,
    gone_code: &'static str,
) -> Result<Option<Tags>, Error> {
    let index = super::tagging::tagged(ctx).await?;
    match index.current(arn) {
        Some(tags) => Ok(Some(tags.clone())),
        None => list_tags(client, arn, gone_code).await,
    }
}

/// The tags of one RDS resource. `gone_code` is the error code RDS answers when the resource
/// vanished between the describe and this call (the operation does not model it as a type).
pub async fn list_tags(
    client: &aws_sdk_rds::Client,
    arn: &str,
    gone_code: &'static str,
) -> Result<Option<Tags>, Error> {
    match client.list_tags_for_resource().resource_name(arn).send().await.op_or_gone(
        "ListTagsForResource",
        |e| {
            e.is_db_instance_not_found_fault()
                || aws_smithy_types::error::metadata::ProvideErrorMetadata::code(e) == Some(gone_code)
        },
    ) {
        Ok(out) => Ok(Some(tags_of(out.tag_list()))),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

pub async fn add_tags(client: &aws_sdk_rds::Client, arn: &str, tags: &Tags) -> Result<(), Error> {
    client
        .add_tags_to_resource()
        .resource_name(arn)
        .set_tags(Some(sdk_tags(tags)))
        .send()
        .await
        .op("AddTagsToResource")?;
    Ok(())
}

/// Fails unless `tags` carry `address`: used when a create is answered "already exists", to
/// adopt what an earlier, interrupted run made, and only that.
pub fn ensure_ours(tags: &Tags, address: &Address, what: &str, key: &str) -> Result<(), Error> {
    if tags.get(TAG_ADDRESS).map(String::as_str) == Some(address.as_str()) {
        Ok(())
    } else {
        Err(Error::InvalidState(format!(
            "{what} already exists in {} and is not this environment's {address} (its {TAG_ADDRESS} tag is {}); choose another {key}",
            address.region(),
            tags.get(TAG_ADDRESS).map(String::as_str).unwrap_or("missing"),
        )))
    }
}

/// The name in an RDS ARN (`arn:aws:rds:us-east-1:123456789012:subgrp:webapp-prod-db` →
/// `webapp-prod-db`), which is what the RDS calls take. Physical IDs are ARNs because names
/// repeat across regions (the environment's groups have the same name in every region) and
/// references are resolved across all regions at once.
pub fn name_of(arn: &str) -> &str {
    arn.rsplit(':').next().unwrap_or(arn)
}

/// The ARN of the `kind` (`pg`, `subgrp`) named `name` in the account and region of `arn`:
/// `DescribeDBInstances` names an instance's parameter group without its ARN.
pub fn sibling_arn(arn: &str, kind: &str, name: &str) -> String {
    let parts: Vec<&str> = arn.splitn(7, ':').collect();
    if parts.len() == 7 {
        format!("{}:{kind}:{name}", parts[..5].join(":"))
    } else {
        name.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_arns() {
        let db = "arn:aws:rds:us-east-2:123456789012:db:webapp-prod";
        assert_eq!(name_of(db), "webapp-prod");
        assert_eq!(name_of("webapp-prod-db"), "webapp-prod-db");
        assert_eq!(
            sibling_arn(db, "pg", "webapp-prod-postgres16"),
            "arn:aws:rds:us-east-2:123456789012:pg:webapp-prod-postgres16"
        );
    }
}
