//! Subnet: one public and one private per availability zone. Public subnets give instances a
//! public IP on launch; private ones route out through a NAT gateway.

use aws_sdk_ec2::types::{AttributeBooleanValue, Filter, ResourceType, SubnetState};
use ipnet::Ipv4Net;
use serde::Serialize;

use super::{ec2, Ctx, Diff, Found, Replace, Spec, Tags};
use crate::cloud::{retry_on_codes, wait_until, AwsResultExt, Error, Waited};
use crate::describe_all;
use crate::model::Ref;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SubnetSpec {
    pub vpc: Ref,
    pub cidr_block: Ipv4Net,
    pub availability_zone: String,
    pub map_public_ip_on_launch: bool,
}

pub fn diff(desired: &SubnetSpec, observed: &SubnetSpec, d: &mut Diff) {
    d.field("vpc", &desired.vpc, &observed.vpc, Replace::Yes);
    d.field("cidr_block", &desired.cidr_block, &observed.cidr_block, Replace::Yes);
    d.field("availability_zone", &desired.availability_zone, &observed.availability_zone, Replace::Yes);
    d.field(
        "map_public_ip_on_launch",
        &desired.map_public_ip_on_launch,
        &observed.map_public_ip_on_launch,
        Replace::No,
    );
}

pub async fn observe(client: &aws_sdk_ec2::Client, filters: &[Filter]) -> Result<Vec<Found>, Error> {
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
            })
        })
        .collect())
}

pub async fn create(ctx: &Ctx<'_>, region: &str, spec: &SubnetSpec, tags: &Tags) -> Result<String, Error> {
    let client = ctx.ec2(region);
    let out = client
        .create_subnet()
        .vpc_id(ctx.id(&spec.vpc)?)
        .cidr_block(spec.cidr_block.to_string())
        .availability_zone(&spec.availability_zone)
        .tag_specifications(ec2::tag_spec(ResourceType::Subnet, tags))
        .send()
        .await
        .op("CreateSubnet")?;
    let subnet = out.subnet().ok_or_else(|| Error::Failed("CreateSubnet returned no subnet".into()))?;
    let id = subnet.subnet_id().unwrap_or_default().to_string();
    if subnet.state() != Some(&SubnetState::Available) {
        wait_until(&format!("{id} to become available"), ctx.timeout, || async {
            match client.describe_subnets().subnet_ids(&id).send().await.op("DescribeSubnets") {
                Ok(o) if o.subnets().first().and_then(|s| s.state()) == Some(&SubnetState::Available) => {
                    Ok(Waited::Done(()))
                }
                Ok(_) => Ok(Waited::NotYet("pending".into())),
                Err(e) if e.is_not_found() => Ok(Waited::NotYet("not visible yet".into())),
                Err(e) => Err(e),
            }
        })
        .await?;
    }
    if spec.map_public_ip_on_launch {
        set_map_public_ip(ctx, region, &id, true).await?;
    }
    Ok(id)
}

pub async fn update(
    ctx: &Ctx<'_>,
    region: &str,
    id: &str,
    spec: &SubnetSpec,
    diff: &Diff,
) -> Result<(), Error> {
    if diff.has("map_public_ip_on_launch") {
        set_map_public_ip(ctx, region, id, spec.map_public_ip_on_launch).await?;
    }
    Ok(())
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

/// Retries `DependencyViolation`: network interfaces of a deleted NAT gateway linger a while.
pub async fn delete(ctx: &Ctx<'_>, region: &str, id: &str) -> Result<(), Error> {
    let client = ctx.ec2(region);
    retry_on_codes(&format!("{id} to be deletable"), &["DependencyViolation"], ctx.timeout, || async {
        client.delete_subnet().subnet_id(id).send().await.op("DeleteSubnet").map(|_| ())
    })
    .await
}
