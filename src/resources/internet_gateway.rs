//! Internet gateway: the public subnets' way out, attached to the region's VPC.

use aws_sdk_ec2::types::ResourceType;
use serde::Serialize;

use super::{
    ec2, Create, Ctx, Delete, Diff, Found, Kind, ObserveCtx, Replace, Role, Scope, Spec, Tags, Update,
};
use crate::cloud::{ec2_code, retry_on_codes, AwsResultExt, Error};
use crate::describe_all;
use crate::spec::{Address, Ref};

const NOT_FOUND: &str = "InvalidInternetGatewayID.NotFound";

pub struct InternetGateway;

impl Kind for InternetGateway {
    type Spec = InternetGatewaySpec;
    const NAME: &'static str = "internet-gateway";
    const SCOPE: Scope = Scope::Regional;
    const TAGGED: bool = true;
    const PARTS: &'static [&'static str] = &["network"];
    const ACTIONS: &'static [&'static str] = &[
        "ec2:DescribeInternetGateways",
        "ec2:CreateInternetGateway",
        "ec2:AttachInternetGateway",
        "ec2:DetachInternetGateway",
        "ec2:DeleteInternetGateway",
        "ec2:CreateTags",
    ];

    fn refs(spec: &mut InternetGatewaySpec) -> Vec<(Role, &mut Ref)> {
        spec.vpc.iter_mut().map(|v| (Role::Parent, v)).collect()
    }
    fn diff(desired: &InternetGatewaySpec, observed: &InternetGatewaySpec, d: &mut Diff) {
        d.field("vpc", &desired.vpc, &observed.vpc, Replace::No);
    }
    async fn observe(ctx: &ObserveCtx<'_>) -> Result<Vec<Found>, Error> {
        let client = &ctx.ec2();
        let filters = &ec2::env_filters(ctx.app, ctx.env);
        let igws = describe_all!(
            client.describe_internet_gateways().set_filters(Some(filters.to_vec())),
            "DescribeInternetGateways"
        )?;
        Ok(igws
            .iter()
            .filter_map(|g| {
                let id = g.internet_gateway_id()?;
                let tags = ec2::tags_of(g.tags());
                let vpc = g.attachments().iter().find_map(|a| a.vpc_id()).map(|v| Ref::Id(v.to_string()));
                Some(Found {
                    address: ec2::address_of(&tags, id)?,
                    id: id.to_string(),
                    state: if vpc.is_some() { "attached" } else { "detached" }.to_string(),
                    spec: Spec::InternetGateway(InternetGatewaySpec { vpc }),
                    tags,
                    attrs: Default::default(),
                })
            })
            .collect())
    }
    async fn create(ctx: &Ctx<'_>, new: Create<'_, InternetGatewaySpec>) -> Result<String, Error> {
        let Create { address, spec, tags } = new;
        let region = address.region();
        let out = ctx
            .ec2(region)
            .create_internet_gateway()
            .tag_specifications(ec2::tag_spec(ResourceType::InternetGateway, tags))
            .send()
            .await
            .op("CreateInternetGateway")?;
        let id = out
            .internet_gateway()
            .and_then(|g| g.internet_gateway_id())
            .ok_or_else(|| Error::InvalidState("CreateInternetGateway returned no ID".into()))?
            .to_string();
        if let Some(vpc) = &spec.vpc {
            attach(ctx, region, &id, &ctx.id(vpc)?).await?;
        }
        Ok(id)
    }
    async fn update(ctx: &Ctx<'_>, change: Update<'_, InternetGatewaySpec>) -> Result<(), Error> {
        let Update { address, id, desired: spec, observed, .. } = change;
        let region = address.region();
        if spec.vpc == observed.vpc {
            return Ok(());
        }
        if let Some(old) = &observed.vpc {
            detach(ctx, region, id, &ctx.id(old)?).await?;
        }
        if let Some(vpc) = &spec.vpc {
            attach(ctx, region, id, &ctx.id(vpc)?).await?;
        }
        Ok(())
    }
    async fn delete(ctx: &Ctx<'_>, gone: Delete<'_, InternetGatewaySpec>) -> Result<(), Error> {
        let Delete { address, id, .. } = gone;
        let region = address.region();
        let client = ctx.ec2(region);
        // Read the attachment fresh: it may have changed since the plan was made.
        let out = client
            .describe_internet_gateways()
            .internet_gateway_ids(id)
            .send()
            .await
            .op("DescribeInternetGateways")?;
        let attached: Vec<String> = out
            .internet_gateways()
            .iter()
            .flat_map(|g| g.attachments())
            .filter_map(|a| a.vpc_id().map(str::to_string))
            .collect();
        for vpc_id in attached {
            match detach(ctx, region, id, &vpc_id).await {
                Err(e) if !e.is_not_found() && e.code() != Some("Gateway.NotAttached") => return Err(e),
                _ => {}
            }
        }
        retry_on_codes(&format!("{id} to be deletable"), &["DependencyViolation"], ctx.timeout, || async {
            client
                .delete_internet_gateway()
                .internet_gateway_id(id)
                .send()
                .await
                .op_or_gone("DeleteInternetGateway", ec2_code(NOT_FOUND))
                .map(|_| ())
        })
        .await
    }
    async fn wait_ready(_: &Ctx<'_>, _: &Address, _: &str) -> Result<(), Error> {
        // Usable as soon as it exists.
        Ok(())
    }
    async fn repair_tags(ctx: &Ctx<'_>, address: &Address, id: &str, missing: &Tags) -> Result<(), Error> {
        ec2::create_tags(&ctx.ec2(address.region()), id, missing).await
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct InternetGatewaySpec {
    /// The VPC it is attached to; `None` when detached.
    pub vpc: Option<Ref>,
}

/// Attaches the gateway. `Resource.AlreadyAssociated` (an attach whose response was lost and
/// that the SDK retried) is success when the gateway is attached to this very VPC.
async fn attach(ctx: &Ctx<'_>, region: &str, id: &str, vpc_id: &str) -> Result<(), Error> {
    let client = ctx.ec2(region);
    let attached = client
        .attach_internet_gateway()
        .internet_gateway_id(id)
        .vpc_id(vpc_id)
        .send()
        .await
        .op_unless("AttachInternetGateway", ec2_code("Resource.AlreadyAssociated"))?;
    if attached.is_none() {
        let out = client
            .describe_internet_gateways()
            .internet_gateway_ids(id)
            .send()
            .await
            .op("DescribeInternetGateways")?;
        let here =
            out.internet_gateways().iter().flat_map(|g| g.attachments()).any(|a| a.vpc_id() == Some(vpc_id));
        if !here {
            return Err(Error::InvalidState(format!("{id} is attached to another VPC than {vpc_id}")));
        }
    }
    Ok(())
}

/// Detaching fails with `DependencyViolation` while public addresses are still mapped in the
/// VPC (a NAT gateway's EIP that is being released): retried until AWS lets go.
async fn detach(ctx: &Ctx<'_>, region: &str, id: &str, vpc_id: &str) -> Result<(), Error> {
    let client = ctx.ec2(region);
    retry_on_codes(&format!("{id} to detach"), &["DependencyViolation"], ctx.timeout, || async {
        client
            .detach_internet_gateway()
            .internet_gateway_id(id)
            .vpc_id(vpc_id)
            .send()
            .await
            .op_or_gone("DetachInternetGateway", ec2_code(NOT_FOUND))
            .map(|_| ())
    })
    .await
}
