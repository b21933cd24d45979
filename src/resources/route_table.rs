//! Route table: one public table for all public subnets, one private table per AZ (each to its
//! own NAT gateway). Its routes are `route.rs`, its subnet associations
//! `route_table_association.rs`; both are found inside the table, at no extra read.

use aws_sdk_ec2::types::{Filter, ResourceType};
use serde::Serialize;

use std::sync::Arc;

use super::{
    ec2, Create, Ctx, Delete, Diff, Found, Kind, ObserveCtx, Replace, Role, Scope, Spec, Tags, Update,
};
use crate::cloud::{ec2_code, retry_on_codes, AwsResultExt, Error};
use crate::describe_all;
use crate::spec::{Address, Ref};

pub struct RouteTable;

impl Kind for RouteTable {
    type Spec = RouteTableSpec;
    const NAME: &'static str = "route-table";
    const SCOPE: Scope = Scope::Regional;
    const TAGGED: bool = true;
    const PARTS: &'static [&'static str] = &["network"];
    const ACTIONS: &'static [&'static str] =
        &["ec2:DescribeRouteTables", "ec2:CreateRouteTable", "ec2:DeleteRouteTable", "ec2:CreateTags"];

    fn refs(spec: &mut RouteTableSpec) -> Vec<(Role, &mut Ref)> {
        vec![(Role::Parent, &mut spec.vpc)]
    }
    fn diff(desired: &RouteTableSpec, observed: &RouteTableSpec, d: &mut Diff) {
        d.field("vpc", &desired.vpc, &observed.vpc, Replace::Yes);
    }
    async fn observe(ctx: &ObserveCtx<'_>) -> Result<Vec<Found>, Error> {
        Ok(observe_shared(ctx).await?.tables.clone())
    }
    async fn create(ctx: &Ctx<'_>, new: Create<'_, RouteTableSpec>) -> Result<String, Error> {
        let Create { address, spec, tags } = new;
        let out = ctx
            .ec2(address.region())
            .create_route_table()
            .vpc_id(ctx.id(&spec.vpc)?)
            .client_token(ec2::client_token(address, tags))
            .tag_specifications(ec2::tag_spec(ResourceType::RouteTable, tags))
            .send()
            .await
            .op("CreateRouteTable")?;
        out.route_table()
            .and_then(|t| t.route_table_id())
            .map(str::to_string)
            .ok_or_else(|| Error::InvalidState("CreateRouteTable returned no ID".into()))
    }
    async fn update(_: &Ctx<'_>, _: Update<'_, RouteTableSpec>) -> Result<(), Error> {
        // Its only field forces replacement; its routes and associations are kinds of their own.
        Ok(())
    }
    /// Associations are deleted first (the engine orders that); `DependencyViolation` covers
    /// anything AWS still holds on to.
    async fn delete(ctx: &Ctx<'_>, gone: Delete<'_, RouteTableSpec>) -> Result<(), Error> {
        let Delete { address, id, .. } = gone;
        let region = address.region();
        let client = ctx.ec2(region);
        retry_on_codes(&format!("{id} to be deletable"), &["DependencyViolation"], ctx.timeout, || async {
            client
                .delete_route_table()
                .route_table_id(id)
                .send()
                .await
                .op_or_gone("DeleteRouteTable", ec2_code("InvalidRouteTableID.NotFound"))
                .map(|_| ())
        })
        .await
    }
    async fn repair_tags(ctx: &Ctx<'_>, address: &Address, id: &str, missing: &Tags) -> Result<(), Error> {
        ec2::create_tags(&ctx.ec2(address.region()), id, missing).await
    }
}

/// The region's route tables with their routes and associations: one DescribeRouteTables,
/// shared by the three kinds that live in it.
pub async fn observe_shared(ctx: &ObserveCtx<'_>) -> Result<Arc<Tables>, Error> {
    ctx.shared("ec2:DescribeRouteTables", || async {
        observe(&ctx.ec2(), &ec2::env_filters(ctx.app, ctx.env)).await
    })
    .await
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RouteTableSpec {
    pub vpc: Ref,
}

/// What one DescribeRouteTables finds: the tables, and each of ours as AWS describes it with its
/// address, from which the route and association kinds read their own.
pub struct Tables {
    pub tables: Vec<Found>,
    pub described: Vec<(Address, aws_sdk_ec2::types::RouteTable)>,
}

pub async fn observe(client: &aws_sdk_ec2::Client, filters: &[Filter]) -> Result<Tables, Error> {
    let tables = describe_all!(
        client.describe_route_tables().set_filters(Some(filters.to_vec())),
        "DescribeRouteTables"
    )?;
    let mut found = Tables { tables: Vec::new(), described: Vec::new() };
    for t in &tables {
        let (Some(id), Some(vpc)) = (t.route_table_id(), t.vpc_id()) else {
            continue;
        };
        let tags = ec2::tags_of(t.tags());
        let Some(address) = ec2::address_of(&tags, id) else {
            continue;
        };
        found.described.push((address.clone(), t.clone()));
        found.tables.push(Found {
            address,
            id: id.to_string(),
            spec: Spec::RouteTable(RouteTableSpec { vpc: Ref::Id(vpc.to_string()) }),
            tags,
            state: format!("{} routes", t.routes().len()),
            attrs: Default::default(),
        });
    }
    Ok(found)
}
