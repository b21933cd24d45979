//! Route table: one public table for all public subnets, one private table per AZ (each to its
//! own NAT gateway). The table owns its subnet associations; its routes are `route.rs`.

use aws_sdk_ec2::types::{Filter, ResourceType, RouteTable};
use serde::Serialize;

use super::{ec2, route, Ctx, Diff, Found, Replace, Spec, Tags};
use crate::cloud::{retry_on_codes, AwsResultExt, Error};
use crate::describe_all;
use crate::model::{Address, Ref};

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RouteTableSpec {
    pub vpc: Ref,
    /// Subnets explicitly associated with the table, sorted.
    pub subnets: Vec<Ref>,
}

pub fn diff(desired: &RouteTableSpec, observed: &RouteTableSpec, d: &mut Diff) {
    d.field("vpc", &desired.vpc, &observed.vpc, Replace::Yes);
    d.field("subnets", &desired.subnets, &observed.subnets, Replace::No);
}

/// One DescribeRouteTables gives the tables and, inside them, their routes: routes are found
/// here too, so they cost no extra read.
pub async fn observe(
    client: &aws_sdk_ec2::Client,
    filters: &[Filter],
) -> Result<(Vec<Found>, Vec<Found>), Error> {
    let tables = describe_all!(
        client.describe_route_tables().set_filters(Some(filters.to_vec())),
        "DescribeRouteTables"
    )?;
    let mut found_tables = Vec::new();
    let mut found_routes = Vec::new();
    for t in &tables {
        let (Some(id), Some(vpc)) = (t.route_table_id(), t.vpc_id()) else {
            continue;
        };
        let tags = ec2::tags_of(t.tags());
        let Some(address) = ec2::address_of(&tags, id) else {
            continue;
        };
        found_routes.extend(route::found_in_table(&address, t));
        found_tables.push(Found {
            address,
            id: id.to_string(),
            spec: Spec::RouteTable(RouteTableSpec { vpc: Ref::Id(vpc.to_string()), subnets: subnet_ids(t) }),
            tags,
            state: format!("{} routes", t.routes().len()),
        });
    }
    Ok((found_tables, found_routes))
}

fn subnet_ids(t: &RouteTable) -> Vec<Ref> {
    let mut ids: Vec<Ref> = t
        .associations()
        .iter()
        .filter(|a| !a.main().unwrap_or(false))
        .filter_map(|a| a.subnet_id().map(|s| Ref::Id(s.to_string())))
        .collect();
    ids.sort();
    ids
}

pub async fn create(
    ctx: &Ctx<'_>,
    address: &Address,
    spec: &RouteTableSpec,
    tags: &Tags,
) -> Result<String, Error> {
    let region = address.region();
    let out = ctx
        .ec2(region)
        .create_route_table()
        .vpc_id(ctx.id(&spec.vpc)?)
        .client_token(ec2::client_token(address, tags))
        .tag_specifications(ec2::tag_spec(ResourceType::RouteTable, tags))
        .send()
        .await
        .op("CreateRouteTable")?;
    let id = out
        .route_table()
        .and_then(|t| t.route_table_id())
        .ok_or_else(|| Error::Failed("CreateRouteTable returned no ID".into()))?
        .to_string();
    update(ctx, region, &id, spec).await?;
    Ok(id)
}

/// Associates the subnets the spec lists and disassociates any other, reading the table's
/// current associations first (association IDs are not part of the spec).
pub async fn update(ctx: &Ctx<'_>, region: &str, id: &str, spec: &RouteTableSpec) -> Result<(), Error> {
    let client = ctx.ec2(region);
    let out = client.describe_route_tables().route_table_ids(id).send().await.op("DescribeRouteTables")?;
    let Some(table) = out.route_tables().first() else {
        return Err(Error::Failed(format!("{id} disappeared while being updated")));
    };
    let wanted: Vec<String> = spec.subnets.iter().map(|s| ctx.id(s)).collect::<Result<_, _>>()?;
    for assoc in table.associations().iter().filter(|a| !a.main().unwrap_or(false)) {
        let (Some(assoc_id), Some(subnet)) = (assoc.route_table_association_id(), assoc.subnet_id()) else {
            continue;
        };
        if !wanted.iter().any(|w| w == subnet) {
            disassociate(ctx, region, assoc_id).await?;
        }
    }
    for subnet in &wanted {
        if !table.associations().iter().any(|a| a.subnet_id() == Some(subnet.as_str())) {
            associate(ctx, region, id, subnet).await?;
        }
    }
    Ok(())
}

/// A subnet has one explicit table: if it still sits in another (ours, being replaced, or one
/// made by hand) AWS says `Resource.AlreadyAssociated`, and we move it with
/// ReplaceRouteTableAssociation.
async fn associate(ctx: &Ctx<'_>, region: &str, table_id: &str, subnet_id: &str) -> Result<(), Error> {
    let client = ctx.ec2(region);
    let result = client.associate_route_table().route_table_id(table_id).subnet_id(subnet_id).send().await;
    match result.op("AssociateRouteTable") {
        Err(e) if e.code() == Some("Resource.AlreadyAssociated") => {
            let f =
                aws_sdk_ec2::types::Filter::builder().name("association.subnet-id").values(subnet_id).build();
            let out = client.describe_route_tables().filters(f).send().await.op("DescribeRouteTables")?;
            let assoc = out
                .route_tables()
                .iter()
                .flat_map(|t| t.associations())
                .find(|a| a.subnet_id() == Some(subnet_id))
                .and_then(|a| a.route_table_association_id())
                .ok_or(e)?;
            client
                .replace_route_table_association()
                .association_id(assoc)
                .route_table_id(table_id)
                .send()
                .await
                .op("ReplaceRouteTableAssociation")?;
            Ok(())
        }
        other => other.map(|_| ()),
    }
}

async fn disassociate(ctx: &Ctx<'_>, region: &str, association_id: &str) -> Result<(), Error> {
    match ctx
        .ec2(region)
        .disassociate_route_table()
        .association_id(association_id)
        .send()
        .await
        .op("DisassociateRouteTable")
    {
        Err(e) if !e.is_not_found() => Err(e),
        _ => Ok(()),
    }
}

pub async fn delete(ctx: &Ctx<'_>, region: &str, id: &str) -> Result<(), Error> {
    let client = ctx.ec2(region);
    let out = client.describe_route_tables().route_table_ids(id).send().await.op("DescribeRouteTables")?;
    for table in out.route_tables() {
        for assoc in table.associations().iter().filter(|a| !a.main().unwrap_or(false)) {
            if let Some(assoc_id) = assoc.route_table_association_id() {
                disassociate(ctx, region, assoc_id).await?;
            }
        }
    }
    retry_on_codes(&format!("{id} to be deletable"), &["DependencyViolation"], ctx.timeout, || async {
        client.delete_route_table().route_table_id(id).send().await.op("DeleteRouteTable").map(|_| ())
    })
    .await
}
