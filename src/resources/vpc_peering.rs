//! Inter-region VPC peering: requested from the primary region's VPC, accepted in the peer
//! region, waited until `active`, with DNS resolution across the peering enabled on both sides.
//! It lives at an address in the primary region; the peer region's side is reached through
//! that region's client.

use aws_sdk_ec2::types::{
    PeeringConnectionOptionsRequest, ResourceType, VpcPeeringConnection, VpcPeeringConnectionStateReasonCode,
};
use serde::Serialize;

use super::{
    ec2, Create, Ctx, Delete, Diff, Found, Kind, ObserveCtx, Readiness, Replace, Role, Scope, Spec, Tags,
    Update,
};
use crate::cloud::{ec2_code, wait_until, AwsResultExt, Error, Waited};
use crate::describe_all;
use crate::spec::{Address, Ref};

pub const ACTIVE: &str = "active";
const NOT_FOUND: &str = "InvalidVpcPeeringConnectionID.NotFound";
/// Accepted, on its way to `active` with nothing left for the deployer to do but wait.
const PROVISIONING: &str = "provisioning";

pub struct VpcPeering;

impl Kind for VpcPeering {
    type Spec = VpcPeeringSpec;
    const NAME: &'static str = "vpc-peering";
    const SCOPE: Scope = Scope::Regional;
    const TAGGED: bool = true;
    const PARTS: &'static [&'static str] = &["network"];
    const ACTIONS: &'static [&'static str] = &[
        "ec2:DescribeVpcPeeringConnections",
        "ec2:CreateVpcPeeringConnection",
        "ec2:AcceptVpcPeeringConnection",
        "ec2:ModifyVpcPeeringConnectionOptions",
        "ec2:DeleteVpcPeeringConnection",
        "ec2:CreateTags",
    ];

    fn refs(spec: &mut VpcPeeringSpec) -> Vec<(Role, &mut Ref)> {
        vec![(Role::Parent, &mut spec.vpc), (Role::Parent, &mut spec.peer_vpc)]
    }
    /// `provisioning` is `active` in the making: readiness, not a difference.
    fn normalize(spec: &mut VpcPeeringSpec) {
        if spec.status == PROVISIONING {
            spec.status = ACTIVE.to_string();
        }
    }
    fn diff(desired: &VpcPeeringSpec, observed: &VpcPeeringSpec, d: &mut Diff) {
        diff_fields!(d, desired, observed,
            vpc: Yes, peer_vpc: Yes, peer_region: Yes, status: No, allow_remote_dns_resolution: No,
        );
    }
    fn readiness(_: &VpcPeeringSpec, state: &str) -> Readiness {
        if state == PROVISIONING {
            Readiness::Busy(state.to_string())
        } else {
            Readiness::Ready
        }
    }
    /// Finds the connections this region requested (the accepter's view of the same connection is
    /// not a second resource).
    async fn observe(ctx: &ObserveCtx<'_>) -> Result<Vec<Found>, Error> {
        let client = &ctx.ec2();
        let filters = &ec2::env_filters(ctx.app, ctx.env);
        let region: &str = &ctx.region;
        let all = describe_all!(
            client.describe_vpc_peering_connections().set_filters(Some(filters.to_vec())),
            "DescribeVpcPeeringConnections"
        )?;
        Ok(all
            .iter()
            .filter(|p| !is_gone(status_code(p)))
            .filter(|p| p.requester_vpc_info().and_then(|r| r.region()).is_none_or(|r| r == region))
            .filter_map(|p| {
                let id = p.vpc_peering_connection_id()?;
                let tags = ec2::tags_of(p.tags());
                let requester = p.requester_vpc_info()?;
                let accepter = p.accepter_vpc_info()?;
                let dns = |i: &aws_sdk_ec2::types::VpcPeeringConnectionVpcInfo| {
                    i.peering_options()
                        .and_then(|o| o.allow_dns_resolution_from_remote_vpc())
                        .unwrap_or(false)
                };
                let status = status_code(p).map(|c| c.as_str().to_string()).unwrap_or_default();
                Some(Found {
                    address: ec2::address_of(&tags, id)?,
                    id: id.to_string(),
                    spec: Spec::VpcPeering(VpcPeeringSpec {
                        vpc: Ref::Id(requester.vpc_id()?.to_string()),
                        peer_vpc: Ref::Id(accepter.vpc_id()?.to_string()),
                        peer_region: accepter.region().unwrap_or(region).to_string(),
                        allow_remote_dns_resolution: dns(requester) && dns(accepter),
                        status: status.clone(),
                    }),
                    tags,
                    state: status,
                    attrs: Default::default(),
                })
            })
            .collect())
    }
    async fn create(ctx: &Ctx<'_>, new: Create<'_, VpcPeeringSpec>) -> Result<String, Error> {
        let Create { address, spec, tags } = new;
        let region = address.region();
        let out = ctx
            .ec2(region)
            .create_vpc_peering_connection()
            .vpc_id(ctx.id(&spec.vpc)?)
            .peer_vpc_id(ctx.id(&spec.peer_vpc)?)
            .peer_region(&spec.peer_region)
            .tag_specifications(ec2::tag_spec(ResourceType::VpcPeeringConnection, tags))
            .send()
            .await
            .op("CreateVpcPeeringConnection")?;
        let id = out
            .vpc_peering_connection()
            .and_then(|p| p.vpc_peering_connection_id())
            .ok_or_else(|| Error::InvalidState("CreateVpcPeeringConnection returned no ID".into()))?
            .to_string();
        let observed = VpcPeeringSpec {
            status: "initiating-request".into(),
            allow_remote_dns_resolution: false,
            ..spec.clone()
        };
        update(ctx, region, &id, spec, &observed, tags).await?;
        Ok(id)
    }
    async fn update(ctx: &Ctx<'_>, change: Update<'_, VpcPeeringSpec>) -> Result<(), Error> {
        let Update { address, id, desired, observed, tags, .. } = change;
        // The accepter's side carries its own copy of the tags.
        update(ctx, address.region(), id, desired, observed, tags).await
    }
    async fn delete(ctx: &Ctx<'_>, gone: Delete<'_, VpcPeeringSpec>) -> Result<(), Error> {
        let Delete { address, id, .. } = gone;
        let region = address.region();
        ctx.ec2(region)
            .delete_vpc_peering_connection()
            .vpc_peering_connection_id(id)
            .send()
            .await
            .op_or_gone("DeleteVpcPeeringConnection", ec2_code(NOT_FOUND))?;
        Ok(())
    }
    async fn wait_ready(ctx: &Ctx<'_>, address: &Address, id: &str) -> Result<(), Error> {
        wait_active(ctx, address.region(), id).await
    }
    async fn repair_tags(ctx: &Ctx<'_>, address: &Address, id: &str, missing: &Tags) -> Result<(), Error> {
        ec2::create_tags(&ctx.ec2(address.region()), id, missing).await
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VpcPeeringSpec {
    /// The requester VPC, in this resource's region.
    pub vpc: Ref,
    /// The accepter VPC, in `peer_region`.
    pub peer_vpc: Ref,
    pub peer_region: String,
    /// Both sides may resolve the other side's private DNS names to private IPs.
    pub allow_remote_dns_resolution: bool,
    /// `active` when desired; observed, AWS's status code (`pending-acceptance`…).
    pub status: String,
}

fn status_code(p: &VpcPeeringConnection) -> Option<&VpcPeeringConnectionStateReasonCode> {
    p.status().and_then(|s| s.code())
}

/// Connections that ended stay visible for days; they are history, not resources.
fn is_gone(code: Option<&VpcPeeringConnectionStateReasonCode>) -> bool {
    use VpcPeeringConnectionStateReasonCode as C;
    matches!(code, Some(C::Deleted | C::Deleting | C::Rejected | C::Failed | C::Expired))
}

/// Finishes what a create started (or a crash interrupted): accept in the peer region, wait
/// until active, tag the accepter's side, then turn DNS resolution on for both sides.
pub async fn update(
    ctx: &Ctx<'_>,
    region: &str,
    id: &str,
    spec: &VpcPeeringSpec,
    observed: &VpcPeeringSpec,
    tags: &Tags,
) -> Result<(), Error> {
    let peer = ctx.ec2(&spec.peer_region);
    if observed.status != ACTIVE {
        // The request takes a moment to reach the peer region.
        let status = wait_until(&format!("{id} to reach {}", spec.peer_region), ctx.timeout, || async {
            let out = peer.describe_vpc_peering_connections().vpc_peering_connection_ids(id).send().await;
            match out.op_or_gone("DescribeVpcPeeringConnections", ec2_code(NOT_FOUND)) {
                Err(e) if e.is_not_found() => Ok(Waited::NotYet("not visible yet".into())),
                Err(e) => Err(e),
                Ok(o) => match o.vpc_peering_connections().first().and_then(status_code) {
                    Some(VpcPeeringConnectionStateReasonCode::InitiatingRequest) | None => {
                        Ok(Waited::NotYet("initiating-request".into()))
                    }
                    Some(code) if is_gone(Some(code)) => Err(Error::InvalidState(format!(
                        "{id} is {}: delete it and run again",
                        code.as_str()
                    ))),
                    Some(code) => Ok(Waited::Done(code.clone())),
                },
            }
        })
        .await?;
        if status == VpcPeeringConnectionStateReasonCode::PendingAcceptance {
            // An accept whose response was lost is retried by the SDK and refused as an invalid
            // state transition: the connection is already past pending-acceptance, as wanted.
            // The wait below tells whether it really is on its way to active.
            peer.accept_vpc_peering_connection()
                .vpc_peering_connection_id(id)
                .send()
                .await
                .op_unless("AcceptVpcPeeringConnection", ec2_code("InvalidStateTransition"))?;
        }
        // Tags do not cross regions: the accepter's view of the connection is tagged separately.
        ec2::create_tags(&peer, id, tags).await?;
        wait_active(ctx, region, id).await?;
    }
    if spec.allow_remote_dns_resolution != observed.allow_remote_dns_resolution {
        let options = || {
            PeeringConnectionOptionsRequest::builder()
                .allow_dns_resolution_from_remote_vpc(spec.allow_remote_dns_resolution)
                .build()
        };
        // Each side's option is set in its own region.
        ctx.ec2(region)
            .modify_vpc_peering_connection_options()
            .vpc_peering_connection_id(id)
            .requester_peering_connection_options(options())
            .send()
            .await
            .op("ModifyVpcPeeringConnectionOptions")?;
        peer.modify_vpc_peering_connection_options()
            .vpc_peering_connection_id(id)
            .accepter_peering_connection_options(options())
            .send()
            .await
            .op("ModifyVpcPeeringConnectionOptions")?;
    }
    Ok(())
}

async fn wait_active(ctx: &Ctx<'_>, region: &str, id: &str) -> Result<(), Error> {
    let requester = ctx.ec2(region);
    wait_until(&format!("{id} to become active"), ctx.timeout, || async {
        let out = requester.describe_vpc_peering_connections().vpc_peering_connection_ids(id).send().await;
        let out = out.op("DescribeVpcPeeringConnections")?;
        match out.vpc_peering_connections().first().and_then(status_code) {
            Some(VpcPeeringConnectionStateReasonCode::Active) => Ok(Waited::Done(())),
            Some(code) if is_gone(Some(code)) => {
                Err(Error::InvalidState(format!("{id} became {}", code.as_str())))
            }
            other => Ok(Waited::NotYet(other.map(|c| c.as_str().to_string()).unwrap_or_default())),
        }
    })
    .await
}
