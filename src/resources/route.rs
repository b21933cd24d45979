//! Route: one IPv4 route in one of our route tables (default route to the IGW or a NAT
//! gateway, or the peer region's CIDR over the peering connection). Routes carry no tags: a
//! route is ours because its table is, and its address is the table's name plus destination,
//! e.g. `us-east-1/network/route/private-a:0.0.0.0/0`.

use aws_sdk_ec2::types::RouteTable;
use ipnet::Ipv4Net;
use serde::Serialize;

use super::{
    route_table, Create, Ctx, Delete, Diff, Found, Kind, ObserveCtx, Readiness, Replace, Role, Scope, Spec,
    Update,
};
use crate::cloud::{ec2_code, AwsResultExt, Error};
use crate::spec::{Address, Ref};

pub struct Route;

/// CreateRoute and ReplaceRoute name the target by a parameter of its kind; the ID's prefix
/// says which kind it is.
macro_rules! with_target {
    ($builder:expr, $target:expr) => {
        match $target.split('-').next() {
            Some("nat") => $builder.nat_gateway_id($target),
            Some("pcx") => $builder.vpc_peering_connection_id($target),
            _ => $builder.gateway_id($target),
        }
    };
}

impl Kind for Route {
    type Spec = RouteSpec;
    const NAME: &'static str = "route";
    const SCOPE: Scope = Scope::Regional;
    const TAGGED: bool = false;
    const PARTS: &'static [&'static str] = &["network"];
    const ACTIONS: &'static [&'static str] = &["ec2:CreateRoute", "ec2:DeleteRoute", "ec2:ReplaceRoute"];

    /// A route lives in its table; its target does not hold (AWS turns the route into a
    /// blackhole until it is re-pointed).
    fn refs(spec: &mut RouteSpec) -> Vec<(Role, &mut Ref)> {
        vec![(Role::Parent, &mut spec.route_table), (Role::Points, &mut spec.target)]
    }
    fn diff(desired: &RouteSpec, observed: &RouteSpec, d: &mut Diff) {
        diff_fields!(d, desired, observed, route_table: Yes, destination: Yes);
        // ReplaceRoute swaps the target in place.
        d.field("target", &desired.target, &observed.target, Replace::No);
    }
    fn readiness(_: &RouteSpec, _: &str) -> Readiness {
        // `blackhole` is a difference in its target, not a wait.
        Readiness::Ready
    }
    async fn observe(ctx: &ObserveCtx<'_>) -> Result<Vec<Found>, Error> {
        let tables = route_table::observe_shared(ctx).await?;
        Ok(tables.described.iter().flat_map(|(address, t)| found_in_table(address, t)).collect())
    }
    async fn create(ctx: &Ctx<'_>, new: Create<'_, RouteSpec>) -> Result<String, Error> {
        let Create { address, spec, .. } = new;
        let region = address.region();
        let table = ctx.id(&spec.route_table)?;
        let target = ctx.id(&spec.target)?;
        let b = ctx
            .ec2(region)
            .create_route()
            .route_table_id(&table)
            .destination_cidr_block(spec.destination.to_string());
        let created =
            with_target!(b, &target).send().await.op_unless("CreateRoute", ec2_code("RouteAlreadyExists"))?;
        if created.is_none() {
            // A create whose response was lost (the SDK's retry finds the route made), or a route
            // left by a crashed run: point it where it must go; ReplaceRoute is idempotent.
            update(ctx, region, spec).await?;
        }
        Ok(format!("{table}:{}", spec.destination))
    }
    async fn update(ctx: &Ctx<'_>, change: Update<'_, RouteSpec>) -> Result<(), Error> {
        let Update { address, desired, .. } = change;
        update(ctx, address.region(), desired).await
    }
    async fn delete(ctx: &Ctx<'_>, gone: Delete<'_, RouteSpec>) -> Result<(), Error> {
        let Delete { address, id, observed: spec } = gone;
        let region = address.region();
        let table = id.split(':').next().unwrap_or_default();
        ctx.ec2(region)
            .delete_route()
            .route_table_id(table)
            .destination_cidr_block(spec.destination.to_string())
            .send()
            .await
            .op_or_gone("DeleteRoute", ec2_code("InvalidRoute.NotFound"))?;
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RouteSpec {
    pub route_table: Ref,
    pub destination: Ipv4Net,
    pub target: Ref,
}

/// The address of the route to `destination` in the table at `table`.
pub fn address(table: &Address, destination: Ipv4Net) -> Address {
    Address::new(table.region(), table.tier(), "route", &format!("{}:{destination}", table.name()))
}

/// Routes we manage from a table found by tag: IPv4 routes made by CreateRoute. The `local`
/// route and routes propagated by a VPN gateway belong to AWS.
pub fn found_in_table(table_address: &Address, t: &RouteTable) -> Vec<Found> {
    let table_id = t.route_table_id().unwrap_or_default();
    t.routes()
        .iter()
        .filter(|r| r.origin().map(|o| o.as_str()) == Some("CreateRoute"))
        .filter_map(|r| {
            let destination: Ipv4Net = r.destination_cidr_block()?.parse().ok()?;
            let target = r
                .gateway_id()
                .or(r.nat_gateway_id())
                .or(r.vpc_peering_connection_id())
                .or(r.transit_gateway_id())
                .or(r.network_interface_id())
                .or(r.instance_id())
                .unwrap_or("(none)");
            Some(Found {
                address: address(table_address, destination),
                id: format!("{table_id}:{destination}"),
                spec: Spec::Route(RouteSpec {
                    route_table: Ref::Id(table_id.to_string()),
                    destination,
                    target: Ref::Id(target.to_string()),
                }),
                tags: Default::default(),
                state: r.state().map(|s| s.as_str().to_string()).unwrap_or_default(),
                attrs: Default::default(),
            })
        })
        .collect()
}

pub async fn update(ctx: &Ctx<'_>, region: &str, spec: &RouteSpec) -> Result<(), Error> {
    let table = ctx.id(&spec.route_table)?;
    let target = ctx.id(&spec.target)?;
    let b = ctx
        .ec2(region)
        .replace_route()
        .route_table_id(&table)
        .destination_cidr_block(spec.destination.to_string());
    with_target!(b, &target).send().await.op("ReplaceRoute")?;
    Ok(())
}
