//! What the ECS kinds (cluster, service, task definition) share: tags and the tag repair.

use aws_sdk_ecs::types::Tag;

use super::Tags;
use crate::cloud::{AwsResultExt, Error};

pub fn sdk_tags(tags: &Tags) -> Vec<Tag> {
    tags.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()
}

pub fn tags_of(tags: &[Tag]) -> Tags {
    tags.iter().filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string()))).collect()
}

/// Puts `tags` on the ECS resource `arn` (`TagResource`).
pub async fn tag_resource(
    clients: &crate::cloud::Clients,
    region: &str,
    arn: &str,
    tags: &Tags,
) -> Result<(), Error> {
    let client: aws_sdk_ecs::Client = clients.get(region);
    client.tag_resource().resource_arn(arn).set_tags(Some(sdk_tags(tags))).send().await.op("TagResource")?;
    Ok(())
}
