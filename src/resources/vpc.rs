//! VPC: the network of one region, with DNS support and DNS hostnames on.

use aws_sdk_ec2::types::{AttributeBooleanValue, ResourceType, VpcAttributeName, VpcState};
use ipnet::Ipv4Net;
use serde::Serialize;

use super::{
    ec2, Create, Ctx, Delete, Diff, Found, Kind, ObserveCtx, Readiness, Replace, Scope, Spec, Tags, Update,
};
use crate::cloud::{ec2_code, wait_until, AwsResultExt, Error, Waited};
use crate::describe_all;
use crate::spec::Address;

pub struct Vpc;

impl Kind for Vpc {
    type Spec = VpcSpec;
    const NAME: &'static str = "vpc";
    const SCOPE: Scope = Scope::Regional;
    const TAGGED: bool = true;
    const PARTS: &'static [&'static str] = &["network"];
    const ACTIONS: &'static [&'static str] = &[
        "ec2:DescribeVpcs",
        "ec2:DescribeVpcAttribute",
        "ec2:CreateVpc",
        "ec2:ModifyVpcAttribute",
        "ec2:DeleteVpc",
        "ec2:CreateTags",
    ];

    fn diff(desired: &VpcSpec, observed: &VpcSpec, d: &mut Diff) {
        diff(desired, observed, d)
    }
    fn readiness(_: &VpcSpec, state: &str) -> Readiness {
        ec2::pending_is_busy(state)
    }
    /// One DescribeVpcs for the region, then the two DNS attributes of each VPC found (the only
    /// reads that grow with a count; an environment has one VPC per region).
    async fn observe(ctx: &ObserveCtx<'_>) -> Result<Vec<Found>, Error> {
        let client = &ctx.ec2();
        let filters = &ec2::env_filters(ctx.app, ctx.env);
        let vpcs = describe_all!(client.describe_vpcs().set_filters(Some(filters.to_vec())), "DescribeVpcs")?;
        let mut found = Vec::new();
        for v in vpcs {
            let (Some(id), Some(cidr)) = (v.vpc_id(), v.cidr_block()) else {
                continue;
            };
            let tags = ec2::tags_of(v.tags());
            let Some(address) = ec2::address_of(&tags, id) else {
                continue;
            };
            let (dns_support, dns_hostnames) = tokio::try_join!(
                attribute(client, id, VpcAttributeName::EnableDnsSupport),
                attribute(client, id, VpcAttributeName::EnableDnsHostnames),
            )?;
            found.push(Found {
                address,
                id: id.to_string(),
                spec: Spec::Vpc(VpcSpec {
                    cidr_block: cidr
                        .parse()
                        .map_err(|e| Error::InvalidState(format!("{id} has CIDR {cidr}: {e}")))?,
                    enable_dns_support: dns_support,
                    enable_dns_hostnames: dns_hostnames,
                }),
                tags,
                state: v.state().map(|s| s.as_str().to_string()).unwrap_or_default(),
                attrs: Default::default(),
            });
        }
        Ok(found)
    }
    async fn create(ctx: &Ctx<'_>, new: Create<'_, VpcSpec>) -> Result<String, Error> {
        let Create { address, spec, tags } = new;
        let region = address.region();
        let client = ctx.ec2(region);
        let out = client
            .create_vpc()
            .cidr_block(spec.cidr_block.to_string())
            .tag_specifications(ec2::tag_spec(ResourceType::Vpc, tags))
            .send()
            .await
            .op("CreateVpc")?;
        let id = out
            .vpc()
            .and_then(|v| v.vpc_id())
            .ok_or_else(|| Error::InvalidState("CreateVpc returned no VPC ID".into()))?;
        wait_available(ctx, region, id).await?;
        // A new VPC has DNS support on and DNS hostnames off: set only what differs from that.
        let fresh =
            VpcSpec { cidr_block: spec.cidr_block, enable_dns_support: true, enable_dns_hostnames: false };
        let mut d = Diff::default();
        diff(spec, &fresh, &mut d);
        update(ctx, region, id, spec, &d).await?;
        Ok(id.to_string())
    }
    async fn update(ctx: &Ctx<'_>, change: Update<'_, VpcSpec>) -> Result<(), Error> {
        let Update { address, id, desired, diff, .. } = change;
        update(ctx, address.region(), id, desired, diff).await
    }
    async fn delete(ctx: &Ctx<'_>, gone: Delete<'_, VpcSpec>) -> Result<(), Error> {
        let Delete { address, id, .. } = gone;
        let region = address.region();
        let client = ctx.ec2(region);
        crate::cloud::retry_on_codes(
            &format!("{id} to be deletable"),
            &["DependencyViolation"],
            ctx.timeout,
            || async {
                client
                    .delete_vpc()
                    .vpc_id(id)
                    .send()
                    .await
                    .op_or_gone("DeleteVpc", ec2_code("InvalidVpcID.NotFound"))
                    .map(|_| ())
            },
        )
        .await
    }
    async fn wait_ready(ctx: &Ctx<'_>, address: &Address, id: &str) -> Result<(), Error> {
        wait_available(ctx, address.region(), id).await
    }
    async fn repair_tags(ctx: &Ctx<'_>, address: &Address, id: &str, missing: &Tags) -> Result<(), Error> {
        ec2::create_tags(&ctx.ec2(address.region()), id, missing).await
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VpcSpec {
    pub cidr_block: Ipv4Net,
    pub enable_dns_support: bool,
    pub enable_dns_hostnames: bool,
}

pub fn diff(desired: &VpcSpec, observed: &VpcSpec, d: &mut Diff) {
    diff_fields!(d, desired, observed, cidr_block: Yes, enable_dns_support: No, enable_dns_hostnames: No);
}

async fn attribute(client: &aws_sdk_ec2::Client, id: &str, name: VpcAttributeName) -> Result<bool, Error> {
    let out = client
        .describe_vpc_attribute()
        .vpc_id(id)
        .attribute(name.clone())
        .send()
        .await
        .op("DescribeVpcAttribute")?;
    let value = match name {
        VpcAttributeName::EnableDnsSupport => out.enable_dns_support(),
        _ => out.enable_dns_hostnames(),
    };
    Ok(value.and_then(|v| v.value()).unwrap_or(false))
}

async fn wait_available(ctx: &Ctx<'_>, region: &str, id: &str) -> Result<(), Error> {
    let client = ctx.ec2(region);
    wait_until(&format!("{id} to become available"), ctx.timeout, || async {
        let out = client
            .describe_vpcs()
            .vpc_ids(id)
            .send()
            .await
            .op_or_gone("DescribeVpcs", ec2_code("InvalidVpcID.NotFound"));
        match out {
            Ok(o) if o.vpcs().first().and_then(|v| v.state()) == Some(&VpcState::Available) => {
                Ok(Waited::Done(()))
            }
            Ok(_) => Ok(Waited::NotYet("pending".into())),
            // Eventual consistency: a new ID can be unknown to reads for a moment.
            Err(e) if e.is_not_found() => Ok(Waited::NotYet("not visible yet".into())),
            Err(e) => Err(e),
        }
    })
    .await
}

pub async fn update(ctx: &Ctx<'_>, region: &str, id: &str, spec: &VpcSpec, diff: &Diff) -> Result<(), Error> {
    let client = ctx.ec2(region);
    // ModifyVpcAttribute takes one attribute per call.
    if diff.has("enable_dns_support") {
        client
            .modify_vpc_attribute()
            .vpc_id(id)
            .enable_dns_support(AttributeBooleanValue::builder().value(spec.enable_dns_support).build())
            .send()
            .await
            .op("ModifyVpcAttribute")?;
    }
    if diff.has("enable_dns_hostnames") {
        client
            .modify_vpc_attribute()
            .vpc_id(id)
            .enable_dns_hostnames(AttributeBooleanValue::builder().value(spec.enable_dns_hostnames).build())
            .send()
            .await
            .op("ModifyVpcAttribute")?;
    }
    Ok(())
}
