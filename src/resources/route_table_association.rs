//! Route table association: which table a subnet uses. A subnet has at most one explicit
//! association, so the association is named after its subnet:
//! `us-east-1/network/route-table-association/public-a`. Associations carry no tags; they are
//! found inside our (tagged) route tables.
//!
//! A kind of its own (not a field of the table) so that replacing or removing a subnet and
//! re-pointing its association are separate steps the engine can order.

use aws_sdk_ec2::types::RouteTable;
use serde::Serialize;

use super::{
    route_table, Create, Ctx, Delete, Diff, Found, Kind, ObserveCtx, Readiness, Replace, Role, Scope, Spec,
    Update,
};
use crate::cloud::{ec2_code, AwsResultExt, Error};
use crate::spec::{Address, Ref};

pub const KIND: &str = "route-table-association";

pub struct RouteTableAssociation;

impl Kind for RouteTableAssociation {
    type Spec = RouteTableAssociationSpec;
    const NAME: &'static str = KIND;
    const SCOPE: Scope = Scope::Regional;
    const TAGGED: bool = false;
    const PARTS: &'static [&'static str] = &["network"];
    const ACTIONS: &'static [&'static str] = &[
        "ec2:DescribeRouteTables",
        "ec2:AssociateRouteTable",
        "ec2:DisassociateRouteTable",
        "ec2:ReplaceRouteTableAssociation",
    ];

    fn refs(spec: &mut RouteTableAssociationSpec) -> Vec<(Role, &mut Ref)> {
        vec![(Role::Parent, &mut spec.subnet), (Role::Holds, &mut spec.route_table)]
    }
    fn diff(desired: &RouteTableAssociationSpec, observed: &RouteTableAssociationSpec, d: &mut Diff) {
        d.field("subnet", &desired.subnet, &observed.subnet, Replace::Yes);
        // ReplaceRouteTableAssociation moves the subnet to another table in place.
        d.field("route_table", &desired.route_table, &observed.route_table, Replace::No);
    }
    fn readiness(_: &RouteTableAssociationSpec, state: &str) -> Readiness {
        if state == "associating" {
            Readiness::Busy(state.to_string())
        } else {
            Readiness::Ready
        }
    }
    fn derived_address(spec: &RouteTableAssociationSpec, current: &Address) -> Option<Address> {
        Some(derived_address(spec, current))
    }
    async fn observe(ctx: &ObserveCtx<'_>) -> Result<Vec<Found>, Error> {
        let tables = route_table::observe_shared(ctx).await?;
        Ok(tables.described.iter().flat_map(|(address, t)| found_in_table(address, t)).collect())
    }
    /// Associates the subnet. If it is still explicitly associated with another table (one made
    /// by hand, or ours being replaced), AWS says `Resource.AlreadyAssociated` and the existing
    /// association is moved instead.
    async fn create(ctx: &Ctx<'_>, new: Create<'_, RouteTableAssociationSpec>) -> Result<String, Error> {
        let Create { address, spec, .. } = new;
        let region = address.region();
        let client = ctx.ec2(region);
        let (table, subnet) = (ctx.id(&spec.route_table)?, ctx.id(&spec.subnet)?);
        let result = client.associate_route_table().route_table_id(&table).subnet_id(&subnet).send().await;
        match result.op("AssociateRouteTable") {
            Ok(out) => out
                .association_id()
                .map(str::to_string)
                .ok_or_else(|| Error::InvalidState("AssociateRouteTable returned no association ID".into())),
            Err(e) if e.code() == Some("Resource.AlreadyAssociated") => {
                let f = aws_sdk_ec2::types::Filter::builder()
                    .name("association.subnet-id")
                    .values(&subnet)
                    .build();
                let out = client.describe_route_tables().filters(f).send().await.op("DescribeRouteTables")?;
                let existing = out
                    .route_tables()
                    .iter()
                    .flat_map(|t| t.associations())
                    .find(|a| a.subnet_id() == Some(subnet.as_str()))
                    .and_then(|a| a.route_table_association_id())
                    .ok_or(e)?
                    .to_string();
                replace(ctx, region, &existing, &table).await
            }
            Err(e) => Err(e),
        }
    }
    async fn update(ctx: &Ctx<'_>, change: Update<'_, RouteTableAssociationSpec>) -> Result<(), Error> {
        let Update { address, id, desired, .. } = change;
        let region = address.region();
        replace(ctx, region, id, &ctx.id(&desired.route_table)?).await.map(|_| ())
    }
    async fn delete(ctx: &Ctx<'_>, gone: Delete<'_, RouteTableAssociationSpec>) -> Result<(), Error> {
        let Delete { address, id, .. } = gone;
        let region = address.region();
        ctx.ec2(region)
            .disassociate_route_table()
            .association_id(id)
            .send()
            .await
            .op_or_gone("DisassociateRouteTable", ec2_code("InvalidAssociationID.NotFound"))?;
        Ok(())
    }
    async fn wait_ready(_: &Ctx<'_>, _: &Address, _: &str) -> Result<(), Error> {
        // Associating takes effect at once for every purpose the deployer has.
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RouteTableAssociationSpec {
    pub subnet: Ref,
    pub route_table: Ref,
}

/// The address of the association of the subnet at `subnet`.
pub fn address(subnet: &Address) -> Address {
    Address::new(subnet.region(), subnet.tier(), KIND, subnet.name())
}

/// Once references are resolved, an observed association is renamed after its subnet (a
/// subnet that is not ours keeps its ID as the name, and shows up as an orphan).
pub fn derived_address(spec: &RouteTableAssociationSpec, current: &Address) -> Address {
    match &spec.subnet {
        Ref::Addr(subnet) | Ref::Attr { of: subnet, .. } => address(subnet),
        Ref::Id(id) => Address::new(current.region(), current.tier(), KIND, id),
    }
}

pub fn found_in_table(table_address: &Address, t: &RouteTable) -> Vec<Found> {
    let table_id = t.route_table_id().unwrap_or_default();
    t.associations()
        .iter()
        .filter(|a| !a.main().unwrap_or(false))
        .filter_map(|a| {
            let subnet = a.subnet_id()?;
            Some(Found {
                address: Address::new(table_address.region(), table_address.tier(), KIND, subnet),
                id: a.route_table_association_id()?.to_string(),
                spec: Spec::RouteTableAssociation(RouteTableAssociationSpec {
                    subnet: Ref::Id(subnet.to_string()),
                    route_table: Ref::Id(table_id.to_string()),
                }),
                tags: Default::default(),
                state: a
                    .association_state()
                    .and_then(|s| s.state())
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
                attrs: Default::default(),
            })
        })
        .collect()
}

async fn replace(ctx: &Ctx<'_>, region: &str, association_id: &str, table: &str) -> Result<String, Error> {
    let out = ctx
        .ec2(region)
        .replace_route_table_association()
        .association_id(association_id)
        .route_table_id(table)
        .send()
        .await
        .op("ReplaceRouteTableAssociation")?;
    Ok(out.new_association_id().unwrap_or(association_id).to_string())
}
