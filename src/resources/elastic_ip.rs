//! Elastic IP: the fixed public address of a NAT gateway.

use aws_sdk_ec2::types::{DomainType, Filter, ResourceType};
use serde::Serialize;

use super::{ec2, Ctx, Found, Spec, Tags};
use crate::cloud::{retry_on_codes, AwsResultExt, Error};

/// An Elastic IP has nothing to configure beyond its tags; it exists or it does not.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ElasticIpSpec {}

/// DescribeAddresses is not paginated: one call returns every address of the region.
pub async fn observe(client: &aws_sdk_ec2::Client, filters: &[Filter]) -> Result<Vec<Found>, Error> {
    let out = client
        .describe_addresses()
        .set_filters(Some(filters.to_vec()))
        .send()
        .await
        .op("DescribeAddresses")?;
    Ok(out
        .addresses()
        .iter()
        .filter_map(|a| {
            let id = a.allocation_id()?;
            let tags = ec2::tags_of(a.tags());
            Some(Found {
                address: ec2::address_of(&tags, id)?,
                id: id.to_string(),
                spec: Spec::ElasticIp(ElasticIpSpec {}),
                tags,
                state: match a.association_id() {
                    Some(_) => format!("{} (associated)", a.public_ip().unwrap_or_default()),
                    None => format!("{} (unassociated)", a.public_ip().unwrap_or_default()),
                },
            })
        })
        .collect())
}

pub async fn create(ctx: &Ctx<'_>, region: &str, tags: &Tags) -> Result<String, Error> {
    let out = ctx
        .ec2(region)
        .allocate_address()
        .domain(DomainType::Vpc)
        .tag_specifications(ec2::tag_spec(ResourceType::ElasticIp, tags))
        .send()
        .await
        .op("AllocateAddress")?;
    out.allocation_id()
        .map(str::to_string)
        .ok_or_else(|| Error::Failed("AllocateAddress returned no allocation ID".into()))
}

/// The address stays in use until its NAT gateway is fully deleted; retry until AWS lets go.
pub async fn delete(ctx: &Ctx<'_>, region: &str, id: &str) -> Result<(), Error> {
    let client = ctx.ec2(region);
    retry_on_codes(
        &format!("{id} to be released"),
        &["InvalidIPAddress.InUse", "DependencyViolation"],
        ctx.timeout,
        || async { client.release_address().allocation_id(id).send().await.op("ReleaseAddress").map(|_| ()) },
    )
    .await
}
