//! The Resource Groups Tagging API, for the tags of the kinds whose own service reads tags one
//! resource at a time (CloudWatch alarms, load balancing, CodeDeploy, log groups, SNS topics,
//! EventBridge rules, ACM): one paginated `GetResources` per region, filtered on the
//! environment's `deployer:app` and `deployer:env` tags and shared by every kind, gives the ARN
//! and tags of each of them.
//!
//! It is used for tags only, never alone to decide what exists: each kind still lists its
//! resources with its own service's call, which answers what was created a moment ago. (Where
//! that call could only list the whole account, as SNS's `ListTopics`, the kind reads the one
//! resource its name makes, which a create a moment ago can only have made, and the other
//! candidates the index holds, each confirmed by its own service: `src/resources/sns_topic.rs`.)
//! The tagging API is
//! an index that may lag behind a create ("Resource Groups Tagging API" reference,
//! `GetResources`: it returns tagged or previously tagged resources), so a resource the index
//! does not hold yet is read the kind's own way ([`tags_or`]), and the next run finds it in the
//! index. The index's tags are taken only when they are the environment's own tags exactly as
//! the deployer writes them ([`Index::current`]): a resource whose tags differ (drifted, or just
//! repaired and not yet re-indexed) is read the service's way too, so a repair is never judged
//! on a stale index. With the environment's resources indexed, a converged run's reads no longer
//! grow with how many resources of its service the environment, or the account, holds.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use aws_sdk_resourcegroupstagging::types::TagFilter;

use super::{ObserveCtx, Tags, TAG_ADDRESS, TAG_APP, TAG_ENV};
use crate::cloud::{AwsResultExt, Error};
use crate::spec::{tags_for, Address};

/// What `GetResources` returns per page at most, both at the API's maximum (its reference: 1 to
/// 100 resources, 100 to 500 tags; AWS recommends `ResourcesPerPage`). Each of ours carries five
/// tags, so a page of ours is bounded by the resources: 100 a page, where the default is 50.
const RESOURCES_PER_PAGE: i32 = 100;
const TAGS_PER_PAGE: i32 = 500;

/// The region's resources tagged for the environment, with their tags, by ARN.
#[derive(Debug, Default)]
pub struct Index {
    app: String,
    env: String,
    tags: BTreeMap<String, Tags>,
}

impl Index {
    /// The tags of `arn` when the index holds the environment's own tags on it exactly as the
    /// deployer writes them (`tags_for` of the address they name); `None` otherwise, and the
    /// caller reads them the service's way.
    pub fn current(&self, arn: &str) -> Option<&Tags> {
        let tags = self.tags.get(arn)?;
        let address = tags.get(TAG_ADDRESS).and_then(|a| Address::parse(a))?;
        tags_for(&self.app, &self.env, &address).iter().all(|(k, v)| tags.get(k) == Some(v)).then_some(tags)
    }

    /// The ARNs the index holds of `service` (`arn:<partition>:<service>:…`): candidates a kind
    /// whose service can only list the whole account reads one by one, besides the one its
    /// name makes. The index may still hold a resource that is gone; the kind's read says.
    pub fn arns_of<'a>(&'a self, service: &'a str) -> impl Iterator<Item = String> + 'a {
        self.tags.keys().filter(move |arn| arn.split(':').nth(2) == Some(service)).cloned()
    }

    /// Whether the index holds `arn` at all (it carries the environment's app and env tags).
    pub fn holds(&self, arn: &str) -> bool {
        self.tags.contains_key(arn)
    }
}

/// The region's tagging index: one paginated `GetResources`, sent once however many kinds ask.
pub async fn tagged(ctx: &ObserveCtx<'_>) -> Result<Arc<Index>, Error> {
    ctx.shared("tag:GetResources", || async {
        let client: aws_sdk_resourcegroupstagging::Client = ctx.clients.get(&ctx.region);
        let filter = |key: &str, value: &str| TagFilter::builder().key(key).values(value).build();
        let pages: Vec<_> = client
            .get_resources()
            .tag_filters(filter(TAG_APP, ctx.app))
            .tag_filters(filter(TAG_ENV, ctx.env))
            .resources_per_page(RESOURCES_PER_PAGE)
            .tags_per_page(TAGS_PER_PAGE)
            .into_paginator()
            .send()
            .try_collect()
            .await
            .op("GetResources")?;
        let tags = pages
            .iter()
            .flat_map(|page| page.resource_tag_mapping_list())
            .filter_map(|m| {
                let tags: Tags =
                    m.tags().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect();
                Some((m.resource_arn()?.to_string(), tags))
            })
            .collect::<BTreeMap<_, _>>();
        Ok(Index { app: ctx.app.to_string(), env: ctx.env.to_string(), tags })
    })
    .await
}

/// The tags of the resource `arn`: from the index when it holds them as they should be
/// ([`Index::current`]), otherwise from `read`, the kind's own service (a resource created a
/// moment ago, one whose tags differ, or one the index does not cover).
pub async fn tags_or<F, Fut>(index: &Index, arn: &str, read: F) -> Result<Tags, Error>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<Tags, Error>>,
{
    match index.current(arn) {
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
    let mut out = BTreeMap::new();
    let mut missing = Vec::new();
    for arn in arns {
        match index.current(arn) {
            Some(tags) => {
                out.insert(arn.clone(), tags.clone());
            }
            None => missing.push(arn.clone()),
        }
    }
    if !missing.is_empty() {
        out.extend(read(missing).await?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_is_taken_only_with_the_environment_s_own_tags_as_written() {
        let address = Address::new("us-east-1", "service", "log-group", "app");
        let ours = tags_for("webapp", "prod", &address);
        let mut drifted = ours.clone();
        drifted.insert("Name".into(), "renamed by hand".into());
        let mut extra = ours.clone();
        extra.insert("team".into(), "billing".into());
        let index = Index {
            app: "webapp".into(),
            env: "prod".into(),
            tags: BTreeMap::from([
                ("arn:ours".to_string(), ours.clone()),
                ("arn:drifted".to_string(), drifted),
                ("arn:extra".to_string(), extra.clone()),
            ]),
        };
        assert_eq!(index.current("arn:ours"), Some(&ours));
        assert_eq!(index.current("arn:extra"), Some(&extra), "tags others add are left alone");
        assert_eq!(index.current("arn:drifted"), None, "a drifted tag is read from the service");
        assert!(index.holds("arn:drifted") && !index.holds("arn:other"));
        assert_eq!(index.current("arn:other"), None);
    }
}
