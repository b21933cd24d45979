//! NAT gateway: the private subnets' way out. One per AZ by default (an AZ outage then cuts off
//! only that AZ), or a single one for the whole region (dev).

use aws_sdk_ec2::types::{Filter, NatGatewayState, ResourceType};
use serde::Serialize;

use super::{
    ec2, Create, Ctx, Delete, Diff, Found, Kind, ObserveCtx, Readiness, Replace, Role, Scope, Spec, Tags,
    Update,
};
use crate::cloud::{ec2_code, wait_until, AwsResultExt, Error, Waited};
use crate::describe_all;
use crate::spec::{Address, Ref};

const NOT_FOUND: &str = "NatGatewayNotFound";

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NatGatewaySpec {
    /// The public subnet it lives in.
    pub subnet: Ref,
    pub elastic_ip: Ref,
}

pub struct NatGateway;

impl Kind for NatGateway {
    type Spec = NatGatewaySpec;
    const NAME: &'static str = "nat-gateway";
    const SCOPE: Scope = Scope::Regional;
    const TAGGED: bool = true;
    const PARTS: &'static [&'static str] = &["network"];
    const ACTIONS: &'static [&'static str] =
        &["ec2:DescribeNatGateways", "ec2:CreateNatGateway", "ec2:DeleteNatGateway", "ec2:CreateTags"];

    fn refs(spec: &mut NatGatewaySpec) -> Vec<(Role, &mut Ref)> {
        vec![(Role::Parent, &mut spec.subnet), (Role::Parent, &mut spec.elastic_ip)]
    }
    fn diff(desired: &NatGatewaySpec, observed: &NatGatewaySpec, d: &mut Diff) {
        diff_fields!(d, desired, observed, subnet: Yes, elastic_ip: Yes);
    }
    /// A gateway an interrupted run left `pending` is waited for, not taken as done.
    fn readiness(_: &NatGatewaySpec, state: &str) -> Readiness {
        ec2::pending_is_busy(state)
    }
    async fn observe(ctx: &ObserveCtx<'_>) -> Result<Vec<Found>, Error> {
        let client = &ctx.ec2();
        let filters = &ec2::env_filters(ctx.app, ctx.env);
        let nats = describe_all!(
            client.describe_nat_gateways().set_filter(Some(filters.to_vec())),
            "DescribeNatGateways"
        )?;
        Ok(nats
            .iter()
            .filter(|n| !is_gone(n.state()))
            .filter_map(|n| {
                let id = n.nat_gateway_id()?;
                let tags = ec2::tags_of(n.tags());
                let allocation = n.nat_gateway_addresses().iter().find_map(|a| a.allocation_id())?;
                Some(Found {
                    address: ec2::address_of(&tags, id)?,
                    id: id.to_string(),
                    spec: Spec::NatGateway(NatGatewaySpec {
                        subnet: Ref::Id(n.subnet_id()?.to_string()),
                        elastic_ip: Ref::Id(allocation.to_string()),
                    }),
                    tags,
                    state: n.state().map(|s| s.as_str().to_string()).unwrap_or_default(),
                    attrs: Default::default(),
                })
            })
            .collect())
    }
    /// Creates with a client token derived from the address, then waits until `available`
    /// (a few minutes on AWS). A gateway that ends `failed` is an error with AWS's reason.
    async fn create(ctx: &Ctx<'_>, new: Create<'_, NatGatewaySpec>) -> Result<String, Error> {
        let Create { address, spec, tags } = new;
        let region = address.region();
        let client = ctx.ec2(region);
        let out = client
            .create_nat_gateway()
            .subnet_id(ctx.id(&spec.subnet)?)
            .allocation_id(ctx.id(&spec.elastic_ip)?)
            .client_token(ec2::client_token(address, tags))
            .tag_specifications(ec2::tag_spec(ResourceType::Natgateway, tags))
            .send()
            .await
            .op_unless("CreateNatGateway", ec2_code("Resource.AlreadyAssociated"))?;
        let id = match out {
            Some(out) => out
                .nat_gateway()
                .and_then(|n| n.nat_gateway_id())
                .ok_or_else(|| Error::InvalidState("CreateNatGateway returned no ID".into()))?
                .to_string(),
            // The Elastic IP is taken: by this very gateway when the create's response was lost and
            // the retry was not matched to it by its client token (AWS matches it; not every
            // emulator does). Take the gateway that carries this address and this Elastic IP.
            None => existing(ctx, address, &ctx.id(&spec.elastic_ip)?).await?,
        };
        wait_available(ctx, region, &id).await?;
        Ok(id)
    }
    async fn update(_: &Ctx<'_>, _: Update<'_, NatGatewaySpec>) -> Result<(), Error> {
        // Every managed field forces replacement; tags are repaired by `repair_tags`.
        Ok(())
    }
    /// Deletes and waits until `deleted`: only then are its EIP and subnet free to go.
    async fn delete(ctx: &Ctx<'_>, gone: Delete<'_, NatGatewaySpec>) -> Result<(), Error> {
        let Delete { address, id, .. } = gone;
        let region = address.region();
        let client = ctx.ec2(region);
        client
            .delete_nat_gateway()
            .nat_gateway_id(id)
            .send()
            .await
            .op_or_gone("DeleteNatGateway", ec2_code(NOT_FOUND))?;
        wait_until(&format!("{id} to be deleted"), ctx.timeout, || async {
            let out = match client
                .describe_nat_gateways()
                .nat_gateway_ids(id)
                .send()
                .await
                .op_or_gone("DescribeNatGateways", ec2_code(NOT_FOUND))
            {
                Err(e) if e.is_not_found() => return Ok(Waited::Done(())),
                other => other?,
            };
            match out.nat_gateways().first().and_then(|n| n.state()) {
                None | Some(NatGatewayState::Deleted) => Ok(Waited::Done(())),
                Some(s) => Ok(Waited::NotYet(s.as_str().to_string())),
            }
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

/// Gateways that are deleted or failed are history, not resources: AWS keeps showing them for
/// an hour, and a failed one is replaced by a new create.
fn is_gone(state: Option<&NatGatewayState>) -> bool {
    matches!(state, Some(NatGatewayState::Deleted | NatGatewayState::Deleting | NatGatewayState::Failed))
}

/// The live gateway tagged with `address` that uses the Elastic IP `allocation`.
async fn existing(ctx: &Ctx<'_>, address: &Address, allocation: &str) -> Result<String, Error> {
    let filter =
        Filter::builder().name(format!("tag:{}", super::TAG_ADDRESS)).values(address.as_str()).build();
    let nats = describe_all!(
        ctx.ec2(address.region()).describe_nat_gateways().filter(filter),
        "DescribeNatGateways"
    )?;
    nats.iter()
        .filter(|n| !is_gone(n.state()))
        .find(|n| n.nat_gateway_addresses().iter().any(|a| a.allocation_id() == Some(allocation)))
        .and_then(|n| n.nat_gateway_id())
        .map(str::to_string)
        .ok_or_else(|| {
            Error::InvalidState(format!(
                "the Elastic IP {allocation} of {address} is in use by something else"
            ))
        })
}

async fn wait_available(ctx: &Ctx<'_>, region: &str, id: &str) -> Result<(), Error> {
    let client = ctx.ec2(region);
    wait_until(&format!("{id} to become available"), ctx.timeout, || async {
        let out = match client
            .describe_nat_gateways()
            .nat_gateway_ids(id)
            .send()
            .await
            .op_or_gone("DescribeNatGateways", ec2_code(NOT_FOUND))
        {
            Err(e) if e.is_not_found() => return Ok(Waited::NotYet("not visible yet".into())),
            other => other?,
        };
        let nat = out.nat_gateways().first();
        match nat.and_then(|n| n.state()) {
            Some(NatGatewayState::Available) => Ok(Waited::Done(())),
            Some(NatGatewayState::Failed) => Err(Error::InvalidState(format!(
                "{id} failed: {}",
                nat.and_then(|n| n.failure_message()).unwrap_or("no reason given")
            ))),
            other => {
                Ok(Waited::NotYet(other.map(|s| s.as_str().to_string()).unwrap_or_else(|| "unknown".into())))
            }
        }
    })
    .await
}
