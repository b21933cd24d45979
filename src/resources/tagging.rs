//! The Resource Groups Tagging API, for the tags of the kinds whose own service reads tags one
//! resource at a time (CloudWatch alarms, load balancing, CodeDeploy, log groups, SNS topics,
//! EventBridge rules, ACM): one paginated `GetResources` per region, filtered on the
//! environment's `deployer:app` and `deployer:env` tags and shared by every kind, gives the ARN
//! and tags of each of them.
//!
//! It is used for tags only, never to decide what exists: each kind still lists its resources
//! with its own service's call, which answers what was created a moment ago. The tagging API is
//! an index that may lag behind a create ("Resource Groups Tagging API" reference,
//! `GetResources`: it returns tagged or previously tagged resources), so a resource the index
//! does not hold yet is read the kind's own way ([`tags_or`]), and the next run finds it in the
//! index. With the environment's resources indexed, a kind's reads no longer grow with how many
//! resources of its service the environment, or the account, holds.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use aws_sdk_resourcegroupstagging::types::TagFilter;

use super::{ObserveCtx, Tags, TAG_APP, TAG_ENV};
use crate::cloud::{AwsResultExt, Error};

/// What `GetResources` returns per page at most: tags count, and each of ours carries five.
const TAGS_PER_PAGE: i32 = 500;

/// The tags of every resource of the region tagged for the environment, by ARN: one paginated
/// `GetResources`, sent once however many kinds ask.
pub async fn tagged(ctx: &ObserveCtx<'_>) -> Result<Arc<BTreeMap<String, Tags>>, Error> {
    ctx.shared("tag:GetResources", || async {
        let client: aws_sdk_resourcegroupstagging::Client = ctx.clients.get(&ctx.region);
        let filter = |key: &str, value: &str| TagFilter::builder().key(key).values(value).build();
        let pages: Vec<_> = client
            .get_resources()
            .tag_filters(filter(TAG_APP, ctx.app))
            .tag_filters(filter(TAG_ENV, ctx.env))
            .tags_per_page(TAGS_PER_PAGE)
            .into_paginator()
            .send()
            .try_collect()
            .await
            .op("GetResources")?;
        Ok(pages
            .iter()
            .flat_map(|page| page.resource_tag_mapping_list())
            .filter_map(|m| {
                let tags: Tags =
                    m.tags().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect();
                Some((m.resource_arn()?.to_string(), tags))
            })
            .collect::<BTreeMap<_, _>>())
    })
    .await
}

/// The tags of the resource `arn`: from the index when it holds it, otherwise from `read`, the
/// kind's own service (a resource created a moment ago, or one the index does not cover).
pub async fn tags_or<F, Fut>(index: &BTreeMap<String, Tags>, arn: &str, read: F) -> Result<Tags, Error>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<Tags, Error>>,
{
    match index.get(arn) {
        Some(tags) => Ok(tags.clone()),
        None => read().await,
    }
}

/// The tags of each of `arns`, by ARN: those the index holds from it, the others with `read`
/// (the kind's own batched read). Nothing is read for no ARN.
pub async fn tags_of_each<F, Fut>(
    ctx: &ObserveCtx<'_>,
    arns: &[String],
    read: F,
) -> Result<BTreeMap<String, Tags>, Error>
where
    F: FnOnce(Vec<String>) -> Fut,
    Fut: Future<Output = Result<BTreeMap<String, Tags>, Error>>,
{
    if arns.is_empty() {
        return Ok(BTreeMap::new());
    }
    let index = tagged(ctx).await?;
    let (held, missing): (Vec<&String>, Vec<&String>) = arns.iter().partition(|a| index.contains_key(*a));
    let mut out: BTreeMap<String, Tags> = held.into_iter().map(|a| (a.clone(), index[a].clone())).collect();
    if !missing.is_empty() {
        out.extend(read(missing.into_iter().cloned().collect()).await?);
    }
    Ok(out)
}
