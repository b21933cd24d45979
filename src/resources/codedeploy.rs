//! What the CodeDeploy kinds (application, deployment group, deployment configuration) share:
//! the client, tags (CodeDeploy's tag calls take an ARN its describes do not return) and the
//! tag repair.

use aws_sdk_codedeploy::types::Tag;

use super::{ObserveCtx, Tags};
use crate::cloud::{AwsResultExt, Error};

pub fn client(clients: &crate::cloud::Clients, region: &str) -> aws_sdk_codedeploy::Client {
    clients.get(region)
}

pub fn sdk_tags(tags: &Tags) -> Vec<Tag> {
    tags.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()
}

/// The tags of the CodeDeploy resource `arn`.
pub async fn tags_of(client: &aws_sdk_codedeploy::Client, arn: &str) -> Result<Tags, Error> {
    let out = client.list_tags_for_resource().resource_arn(arn).send().await.op("ListTagsForResource")?;
    Ok(out
        .tags()
        .iter()
        .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string())))
        .collect())
}

/// The tags of the CodeDeploy resource `arn` while observing: from the region's tagging index
/// ([`super::tagging`]), otherwise as [`tags_of`] reads them.
pub async fn observed_tags(
    ctx: &ObserveCtx<'_>,
    client: &aws_sdk_codedeploy::Client,
    arn: &str,
) -> Result<Tags, Error> {
    let index = super::tagging::tagged(ctx).await?;
    super::tagging::tags_or(&index, arn, || tags_of(client, arn)).await
}

/// The ARN of a CodeDeploy resource (`application:<name>`, `deploymentgroup:<app>/<group>`),
/// which CodeDeploy's tag calls take and its describes do not return.
pub async fn arn(clients: &crate::cloud::Clients, region: &str, resource: &str) -> Result<String, Error> {
    Ok(clients.account().await?.arn("codedeploy", region, resource))
}

/// Puts `tags` on the CodeDeploy resource `arn` (`TagResource`).
pub async fn tag_resource(
    clients: &crate::cloud::Clients,
    region: &str,
    arn: &str,
    tags: &Tags,
) -> Result<(), Error> {
    client(clients, region)
        .tag_resource()
        .resource_arn(arn)
        .set_tags(Some(sdk_tags(tags)))
        .send()
        .await
        .op("TagResource")?;
    Ok(())
}
