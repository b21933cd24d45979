//! Elastic IP: the fixed public address of a NAT gateway.

use aws_sdk_ec2::types::{DomainType, ResourceType};
use serde::Serialize;

use super::{ec2, Create, Ctx, Delete, Diff, Found, Kind, ObserveCtx, Scope, Spec, Tags, Update};
use crate::cloud::{ec2_code, retry_on_codes, AwsResultExt, Error};
use crate::spec::Address;

pub struct ElasticIp;

impl Kind for ElasticIp {
    type Spec = ElasticIpSpec;
    const NAME: &'static str = "elastic-ip";
    const SCOPE: Scope = Scope::Regional;
    const TAGGED: bool = true;
    const PARTS: &'static [&'static str] = &["network"];
    const ACTIONS: &'static [&'static str] =
        &["ec2:DescribeAddresses", "ec2:AllocateAddress", "ec2:ReleaseAddress", "ec2:CreateTags"];

    fn diff(_: &ElasticIpSpec, _: &ElasticIpSpec, _: &mut Diff) {
        // Nothing to configure: it exists or it does not.
    }
    /// DescribeAddresses is not paginated: one call returns every address of the region.
    async fn observe(ctx: &ObserveCtx<'_>) -> Result<Vec<Found>, Error> {
        let client = &ctx.ec2();
        let filters = &ec2::env_filters(ctx.app, ctx.env);
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
                    attrs: Default::default(),
                })
            })
            .collect())
    }
    async fn create(ctx: &Ctx<'_>, new: Create<'_, ElasticIpSpec>) -> Result<String, Error> {
        let Create { address, tags, .. } = new;
        let region = address.region();
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
            .ok_or_else(|| Error::InvalidState("AllocateAddress returned no allocation ID".into()))
    }
    async fn update(_: &Ctx<'_>, _: Update<'_, ElasticIpSpec>) -> Result<(), Error> {
        // No field to change; tags are repaired by `repair_tags`.
        Ok(())
    }
    /// The address stays in use until its NAT gateway is fully deleted; retry until AWS lets go.
    async fn delete(ctx: &Ctx<'_>, gone: Delete<'_, ElasticIpSpec>) -> Result<(), Error> {
        let Delete { address, id, .. } = gone;
        let region = address.region();
        let client = ctx.ec2(region);
        retry_on_codes(
            &format!("{id} to be released"),
            &["InvalidIPAddress.InUse", "DependencyViolation"],
            ctx.timeout,
            || async {
                client
                    .release_address()
                    .allocation_id(id)
                    .send()
                    .await
                    .op_or_gone("ReleaseAddress", ec2_code("InvalidAllocationID.NotFound"))
                    .map(|_| ())
            },
        )
        .await
    }
    async fn repair_tags(ctx: &Ctx<'_>, address: &Address, id: &str, missing: &Tags) -> Result<(), Error> {
        ec2::create_tags(&ctx.ec2(address.region()), id, missing).await
    }
}

/// An Elastic IP has nothing to configure beyond its tags; it exists or it does not.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ElasticIpSpec {}
