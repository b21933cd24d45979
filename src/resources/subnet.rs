//! Subnet: one public and one private per availability zone. Public subnets give instances a
//! public IP on launch; private ones route out through a NAT gateway.

use aws_sdk_ec2::types::{AttributeBooleanValue, Filter, ResourceType, SubnetState};
use ipnet::Ipv4Net;
use serde::Serialize;

use super::{
    ec2, Create, Ctx, Delete, Diff, Found, Kind, ObserveCtx, Readiness, Replace, Role, Scope, Spec, Tags,
    Update,
};
use crate::cloud::{ec2_code, retry_on_codes, wait_until, AwsResultExt, Error, Waited};
use crate::describe_all;
use crate::spec::{Address, Ref};

pub struct Subnet;

impl Kind for Subnet {
    type Spec = SubnetSpec;
    const NAME: &'static str = "subnet";
    const SCOPE: Scope = Scope::Regional;
    const TAGGED: bool = true;
    const PARTS: &'static [&'static str] = &["network"];
    const ACTIONS: &'static [&'static str] = &[
        "ec2:DescribeSubnets",
        "ec2:CreateSubnet",
        "ec2:ModifySubnetAttribute",
        "ec2:DeleteSubnet",
        "ec2:CreateTags",
    ];

    fn refs(spec: &mut SubnetSpec) -> Vec<(Role, &mut Ref)> {
        vec![(Role::Parent, &mut spec.vpc)]
    }
    fn diff(desired: &SubnetSpec, observed: &SubnetSpec, d: &mut Diff) {
        diff_fields!(d, desired, observed,
            vpc: Yes, cidr_block: Yes, availability_zone: Yes, map_public_ip_on_launch: No,
        );
    }
    fn readiness(_: &SubnetSpec, state: &str) -> Readiness {
        ec2::pending_is_busy(state)
    }
    /// Two subnets of one VPC cannot overlap: a moved subnet waits for the old one to go.
    fn conflicts(a: &SubnetSpec, b: &SubnetSpec) -> bool {
        a.vpc == b.vpc && (a.cidr_block.contains(&b.cidr_block) || b.cidr_block.contains(&a.cidr_block))
    }
    async fn observe(ctx: &ObserveCtx<'_>) -> Result<Vec<Found>, Error> {
        let client = &ctx.ec2();
        let filters = &ec2::env_filters(ctx.app, ctx.env);
        let subnets =
            describe_all!(client.describe_subnets().set_filters(Some(filters.to_vec())), "DescribeSubnets")?;
        Ok(subnets
            .iter()
            .filter_map(|s| {
                let id = s.subnet_id()?;
                let tags = ec2::tags_of(s.tags());
                Some(Found {
                    address: ec2::address_of(&tags, id)?,
                    id: id.to_string(),
                    spec: Spec::Subnet(SubnetSpec {
                        vpc: Ref::Id(s.vpc_id()?.to_string()),
                        cidr_block: s.cidr_block()?.parse().ok()?,
                        availability_zone: s.availability_zone()?.to_string(),
                        map_public_ip_on_launch: s.map_public_ip_on_launch().unwrap_or(false),
                    }),
                    tags,
                    state: s.state().map(|s| s.as_str().to_string()).unwrap_or_default(),
                    attrs: Default::default(),
                })
            })
            .collect())
    }
    async fn create(ctx: &Ctx<'_>, new: Create<'_, SubnetSpec>) -> Result<String, Error> {
        let Create { address, spec, tags } = new;
        let region = address.region();
        let client = ctx.ec2(region);
        let out = client
            .create_subnet()
            .vpc_id(ctx.id(&spec.vpc)?)
            .cidr_block(spec.cidr_block.to_string())
            .availability_zone(&spec.availability_zone)
            .tag_specifications(ec2::tag_spec(ResourceType::Subnet, tags))
            .send()
            .await
            .op_unless("CreateSubnet", ec2_code("InvalidSubnet.Conflict"))?;
        let id = match &out {
            Some(out) => {
                let subnet = out
                    .subnet()
                    .ok_or_else(|| Error::InvalidState("CreateSubnet returned no subnet".into()))?;
                let id = subnet.subnet_id().unwrap_or_default().to_string();
                if subnet.state() != Some(&SubnetState::Available) {
                    wait_available(ctx, region, &id).await?;
                }
                id
            }
            // The CIDR is taken: by this very subnet when a create's response was lost and the SDK
            // retried it. Take it if it carries this address; anything else is a real conflict.
            None => existing(ctx, region, spec, tags).await?,
        };
        if spec.map_public_ip_on_launch {
            set_map_public_ip(ctx, region, &id, true).await?;
        }
        Ok(id)
    }
    async fn update(ctx: &Ctx<'_>, change: Update<'_, SubnetSpec>) -> Result<(), Error> {
        let Update { address, id, desired: spec, diff, .. } = change;
        let region = address.region();
        if diff.has("map_public_ip_on_launch") {
            set_map_public_ip(ctx, region, id, spec.map_public_ip_on_launch).await?;
        }
        Ok(())
    }
    /// Retries `DependencyViolation`: network interfaces of a deleted NAT gateway linger a while.
    async fn delete(ctx: &Ctx<'_>, gone: Delete<'_, SubnetSpec>) -> Result<(), Error> {
        let Delete { address, id, .. } = gone;
        let region = address.region();
        let client = ctx.ec2(region);
        retry_on_codes(&format!("{id} to be deletable"), &["DependencyViolation"], ctx.timeout, || async {
            client
                .delete_subnet()
                .subnet_id(id)
                .send()
                .await
                .op_or_gone("DeleteSubnet", ec2_code("InvalidSubnetID.NotFound"))
                .map(|_| ())
        })
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
pub struct SubnetSpec {
    pub vpc: Ref,
    pub cidr_block: Ipv4Net,
    pub availability_zone: String,
    pub map_public_ip_on_launch: bool,
}

/// The subnet that holds `spec`'s CIDR in its VPC, if it is the one tagged with this address.
async fn existing(ctx: &Ctx<'_>, region: &str, spec: &SubnetSpec, tags: &Tags) -> Result<String, Error> {
    let vpc = ctx.id(&spec.vpc)?;
    let filters = [
        Filter::builder().name("vpc-id").values(&vpc).build(),
        Filter::builder().name("cidr-block").values(spec.cidr_block.to_string()).build(),
    ];
    let out = ctx
        .ec2(region)
        .describe_subnets()
        .set_filters(Some(filters.to_vec()))
        .send()
        .await
        .op("DescribeSubnets")?;
    let subnet = out.subnets().first();
    let ours = subnet.is_some_and(|s| {
        let found = ec2::tags_of(s.tags());
        found.get(super::TAG_ADDRESS) == tags.get(super::TAG_ADDRESS)
    });
    match subnet.and_then(|s| s.subnet_id()) {
        Some(id) if ours => {
            wait_available(ctx, region, id).await?;
            Ok(id.to_string())
        }
        other => Err(Error::InvalidState(format!(
            "{} in {vpc} is taken by {} which is not this subnet",
            spec.cidr_block,
            other.unwrap_or("another subnet")
        ))),
    }
}

async fn wait_available(ctx: &Ctx<'_>, region: &str, id: &str) -> Result<(), Error> {
    let client = ctx.ec2(region);
    wait_until(&format!("{id} to become available"), ctx.timeout, || async {
        let out = client
            .describe_subnets()
            .subnet_ids(id)
            .send()
            .await
            .op_or_gone("DescribeSubnets", ec2_code("InvalidSubnetID.NotFound"));
        match out {
            Ok(o) if o.subnets().first().and_then(|s| s.state()) == Some(&SubnetState::Available) => {
                Ok(Waited::Done(()))
            }
            Ok(_) => Ok(Waited::NotYet("pending".into())),
            Err(e) if e.is_not_found() => Ok(Waited::NotYet("not visible yet".into())),
            Err(e) => Err(e),
        }
    })
    .await
}

async fn set_map_public_ip(ctx: &Ctx<'_>, region: &str, id: &str, on: bool) -> Result<(), Error> {
    ctx.ec2(region)
        .modify_subnet_attribute()
        .subnet_id(id)
        .map_public_ip_on_launch(AttributeBooleanValue::builder().value(on).build())
        .send()
        .await
        .op("ModifySubnetAttribute")?;
    Ok(())
}
