//! What the Elastic Load Balancing kinds (load balancer, target group, listener) share: tags,
//! read in batches of 20 ARNs (the most `DescribeTags` takes), and the environment's names.

use std::collections::BTreeMap;

use aws_sdk_elasticloadbalancingv2::types::Tag;

use super::{ObserveCtx, Tags};
use crate::cloud::{AwsResultExt, Error};
use crate::spec::Address;

pub fn client_of(clients: &crate::cloud::Clients, region: &str) -> aws_sdk_elasticloadbalancingv2::Client {
    clients.get(region)
}

pub fn sdk_tags(tags: &Tags) -> Vec<Tag> {
    tags.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()
}

/// Puts `tags` on the load balancer, target group or listener `arn` (`AddTags`).
pub async fn add_tags(
    clients: &crate::cloud::Clients,
    region: &str,
    arn: &str,
    tags: &Tags,
) -> Result<(), Error> {
    client_of(clients, region)
        .add_tags()
        .resource_arns(arn)
        .set_tags(Some(sdk_tags(tags)))
        .send()
        .await
        .op("AddTags")?;
    Ok(())
}

/// The tags of each of `arns`, by ARN: one `DescribeTags` per 20 ARNs.
pub async fn tags_of(
    client: &aws_sdk_elasticloadbalancingv2::Client,
    arns: &[String],
) -> Result<BTreeMap<String, Tags>, Error> {
    let mut out = BTreeMap::new();
    for chunk in arns.chunks(20) {
        let described =
            client.describe_tags().set_resource_arns(Some(chunk.to_vec())).send().await.op("DescribeTags")?;
        for d in described.tag_descriptions() {
            let tags: Tags = d
                .tags()
                .iter()
                .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string())))
                .collect();
            out.insert(d.resource_arn().unwrap_or_default().to_string(), tags);
        }
    }
    Ok(out)
}

/// The tags of each of `arns` while observing: from the region's tagging index
/// ([`super::tagging`]), the others with `DescribeTags`.
pub async fn observed_tags(
    ctx: &ObserveCtx<'_>,
    client: &aws_sdk_elasticloadbalancingv2::Client,
    arns: &[String],
) -> Result<BTreeMap<String, Tags>, Error> {
    super::tagging::tags_of_each(ctx, arns, |missing| async move { tags_of(client, &missing).await }).await
}

/// The environment's load balancer in the region, found by its name `{app}-{env}` (load
/// balancer names are unique in a region): one `DescribeLoadBalancers`, shared by the load
/// balancer and listener kinds. Empty when there is none.
pub async fn environment_load_balancers(
    ctx: &ObserveCtx<'_>,
) -> Result<std::sync::Arc<Vec<aws_sdk_elasticloadbalancingv2::types::LoadBalancer>>, Error> {
    ctx.shared("elasticloadbalancing:DescribeLoadBalancers", || async {
        let client = client_of(ctx.clients, &ctx.region);
        let name = format!("{}-{}", ctx.app, ctx.env);
        match client.describe_load_balancers().names(&name).send().await {
            Ok(out) => Ok(out.load_balancers().to_vec()),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_load_balancer_not_found_exception()) => {
                Ok(vec![])
            }
            Err(e) => Err(e).op("DescribeLoadBalancers"),
        }
    })
    .await
}

/// The environment's address in `tags`, if they say the resource is the environment's.
pub fn address_if_ours(ctx: &ObserveCtx<'_>, tags: &Tags) -> Option<Address> {
    if !super::is_ours(tags, ctx.app, ctx.env) {
        return None;
    }
    super::tagged_address(tags, "load balancing resource")
}

/// The part of an ARN after `marker` (`…:loadbalancer/app/x/123` → `app/x/123`): the value
/// CloudWatch's `LoadBalancer` and `TargetGroup` dimensions take.
pub fn arn_suffix(arn: &str, marker: &str) -> String {
    arn.split_once(marker).map(|(_, rest)| rest.to_string()).unwrap_or_default()
}
