//! Every resource kind the deployer manages, one file each. A kind's file holds its spec (what we
//! want, plain data), its diff (pure), and its I/O: observe (batched describe by tag), create
//! (tagged in the same request), update in place, delete. This module only dispatches.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;

use crate::cloud::{Clients, Error};
use crate::model::{Address, Ref};

pub mod ec2;
pub mod elastic_ip;
pub mod internet_gateway;
pub mod nat_gateway;
pub mod route;
pub mod route_table;
pub mod route_table_association;
pub mod subnet;
pub mod vpc;
pub mod vpc_peering;

pub type Tags = BTreeMap<String, String>;

pub const TAG_APP: &str = "deployer:app";
pub const TAG_ENV: &str = "deployer:env";
pub const TAG_ADDRESS: &str = "deployer:address";
pub const TAG_MANAGED_BY: &str = "deployer:managed-by";

/// What a resource should be (desired) or is (observed, references resolved to addresses).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Spec {
    Vpc(vpc::VpcSpec),
    Subnet(subnet::SubnetSpec),
    InternetGateway(internet_gateway::InternetGatewaySpec),
    ElasticIp(elastic_ip::ElasticIpSpec),
    NatGateway(nat_gateway::NatGatewaySpec),
    RouteTable(route_table::RouteTableSpec),
    RouteTableAssociation(route_table_association::RouteTableAssociationSpec),
    Route(route::RouteSpec),
    VpcPeering(vpc_peering::VpcPeeringSpec),
}

impl Spec {
    /// The references this spec holds; a desired resource depends on each of them.
    pub fn refs_mut(&mut self) -> Vec<&mut Ref> {
        match self {
            Spec::Vpc(_) | Spec::ElasticIp(_) => vec![],
            Spec::Subnet(s) => vec![&mut s.vpc],
            Spec::InternetGateway(s) => s.vpc.iter_mut().collect(),
            Spec::NatGateway(s) => vec![&mut s.subnet, &mut s.elastic_ip],
            Spec::RouteTable(s) => vec![&mut s.vpc],
            Spec::RouteTableAssociation(s) => vec![&mut s.subnet, &mut s.route_table],
            Spec::Route(s) => vec![&mut s.route_table, &mut s.target],
            Spec::VpcPeering(s) => vec![&mut s.vpc, &mut s.peer_vpc],
        }
    }

    /// For kinds named after what they reference (an association after its subnet), the
    /// address once references are resolved.
    pub fn derived_address(&self, current: &Address) -> Option<Address> {
        match self {
            Spec::RouteTableAssociation(s) => Some(route_table_association::derived_address(s, current)),
            _ => None,
        }
    }

    /// True when this resource cannot exist beside `other` (a subnet whose CIDR overlaps
    /// another's in the same VPC): the other must be deleted first.
    pub fn conflicts_with(&self, other: &Spec) -> bool {
        match (self, other) {
            (Spec::Subnet(a), Spec::Subnet(b)) => {
                a.vpc == b.vpc
                    && (a.cidr_block.contains(&b.cidr_block) || b.cidr_block.contains(&a.cidr_block))
            }
            _ => false,
        }
    }

    /// Addresses of the resources this one needs to exist first.
    pub fn deps(&self) -> Vec<Address> {
        self.clone().refs_mut().into_iter().filter_map(|r| r.addr().cloned()).collect()
    }

    /// The references that, when their target is replaced, force this resource to be replaced
    /// too (its parent). The others (a table's subnet associations, a route's target) are
    /// simply re-pointed by an update.
    pub fn parent_deps(&self) -> Vec<Address> {
        match self {
            Spec::Route(s) => s.route_table.addr().cloned().into_iter().collect(),
            Spec::RouteTableAssociation(s) => s.subnet.addr().cloned().into_iter().collect(),
            _ => self.deps(),
        }
    }

    /// Whether AWS refuses to delete `address` while this resource references it. A route's
    /// target does not hold (the route turns into a blackhole until it is re-pointed); every
    /// other reference does.
    pub fn holds(&self, address: &Address) -> bool {
        match self {
            Spec::Route(s) => s.route_table.addr() == Some(address),
            _ => self.deps().contains(address),
        }
    }

    /// Routes and associations live inside a route table and carry no tags of their own.
    pub fn taggable(&self) -> bool {
        !matches!(self, Spec::Route(_) | Spec::RouteTableAssociation(_))
    }

    /// Differences in the fields the deployer manages, desired (`self`) against observed.
    pub fn diff(&self, observed: &Spec) -> Diff {
        let mut d = Diff::default();
        match (self, observed) {
            (Spec::Vpc(a), Spec::Vpc(b)) => vpc::diff(a, b, &mut d),
            (Spec::Subnet(a), Spec::Subnet(b)) => subnet::diff(a, b, &mut d),
            (Spec::InternetGateway(a), Spec::InternetGateway(b)) => internet_gateway::diff(a, b, &mut d),
            (Spec::ElasticIp(_), Spec::ElasticIp(_)) => {}
            (Spec::NatGateway(a), Spec::NatGateway(b)) => nat_gateway::diff(a, b, &mut d),
            (Spec::RouteTable(a), Spec::RouteTable(b)) => route_table::diff(a, b, &mut d),
            (Spec::Route(a), Spec::Route(b)) => route::diff(a, b, &mut d),
            (Spec::RouteTableAssociation(a), Spec::RouteTableAssociation(b)) => {
                route_table_association::diff(a, b, &mut d)
            }
            (Spec::VpcPeering(a), Spec::VpcPeering(b)) => vpc_peering::diff(a, b, &mut d),
            (a, b) => d.field("kind", &kind_of(a), &kind_of(b), Replace::Yes),
        }
        d
    }
}

fn kind_of(s: &Spec) -> String {
    serde_json::to_value(s).ok().and_then(|v| v["kind"].as_str().map(str::to_string)).unwrap_or_default()
}

/// A desired resource: where it lives, what it is, and the tags it must carry.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Resource {
    pub address: Address,
    pub spec: Spec,
    pub tags: Tags,
}

/// A resource found in AWS, tagged for the environment (or, for routes, inside a table that is).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Found {
    pub address: Address,
    /// The physical ID (`vpc-…`, `eipalloc-…`; for a route `rtb-…:<destination>`).
    pub id: String,
    pub spec: Spec,
    pub tags: Tags,
    /// AWS's own state word (`available`, `pending`, `active`…), for `status`.
    pub state: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Replace {
    Yes,
    No,
}

/// One field that differs. Values are rendered for people: strings bare, others as JSON.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldChange {
    pub field: String,
    pub from: String,
    pub to: String,
    pub forces_replacement: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diff {
    pub fields: Vec<FieldChange>,
}

impl Diff {
    pub fn field<T: Serialize + PartialEq>(
        &mut self,
        name: &str,
        desired: &T,
        observed: &T,
        replace: Replace,
    ) {
        if desired != observed {
            self.fields.push(FieldChange {
                field: name.to_string(),
                from: render_value(observed),
                to: render_value(desired),
                forces_replacement: replace == Replace::Yes,
            });
        }
    }

    pub fn replace(&self) -> bool {
        self.fields.iter().any(|f| f.forces_replacement)
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    pub fn has(&self, field: &str) -> bool {
        self.fields.iter().any(|f| f.field == field)
    }
}

pub fn render_value<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(serde_json::Value::Null) => "(none)".to_string(),
        Ok(other) => other.to_string(),
        Err(_) => "?".to_string(),
    }
}

/// Desired tags missing from or different on the observed resource. Tags others add
/// (`aws:*`, cost-allocation tags) are left alone.
pub fn missing_tags(desired: &Tags, observed: &Tags) -> Tags {
    desired
        .iter()
        .filter(|(k, v)| observed.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Physical IDs of resources, by address: seeded from observation, filled in as creates finish.
#[derive(Debug, Default)]
pub struct IdMap(Mutex<BTreeMap<Address, String>>);

impl IdMap {
    pub fn insert(&self, address: Address, id: String) {
        self.0.lock().expect("id map lock").insert(address, id);
    }
    pub fn remove(&self, address: &Address) {
        self.0.lock().expect("id map lock").remove(address);
    }
    pub fn get(&self, address: &Address) -> Option<String> {
        self.0.lock().expect("id map lock").get(address).cloned()
    }
}

/// What a resource operation needs: clients, the IDs resolved so far, and the wait bound.
pub struct Ctx<'a> {
    pub clients: &'a Clients,
    pub ids: &'a IdMap,
    pub timeout: Duration,
}

impl Ctx<'_> {
    /// The physical ID behind a reference; fails if what it names was never created.
    pub fn id(&self, r: &Ref) -> Result<String, Error> {
        match r {
            Ref::Id(id) => Ok(id.clone()),
            Ref::Addr(a) => self
                .ids
                .get(a)
                .ok_or_else(|| Error::Failed(format!("{a} has no physical ID yet (it was not created)"))),
        }
    }

    pub fn ec2(&self, region: &str) -> &aws_sdk_ec2::Client {
        self.clients.ec2(region)
    }
}

/// Finds every resource of every kind tagged for the environment in `region`: one batched
/// describe per kind (plus a VPC attribute read per VPC), all kinds concurrently.
pub async fn observe_region(
    clients: &Clients,
    region: &str,
    app: &str,
    env: &str,
) -> Result<Vec<Found>, Error> {
    let client = clients.ec2(region);
    let filters = ec2::env_filters(app, env);
    let (vpcs, subnets, igws, eips, nats, tables, peerings) = tokio::try_join!(
        vpc::observe(client, &filters),
        subnet::observe(client, &filters),
        internet_gateway::observe(client, &filters),
        elastic_ip::observe(client, &filters),
        nat_gateway::observe(client, &filters),
        route_table::observe(client, &filters),
        vpc_peering::observe(client, &filters, region),
    )?;
    Ok([vpcs, subnets, igws, eips, nats, tables.tables, tables.routes, tables.associations, peerings]
        .into_iter()
        .flatten()
        .collect())
}

/// Creates the resource (tagged in the same request) and waits until it is usable.
/// Returns its physical ID.
pub async fn create(ctx: &Ctx<'_>, r: &Resource) -> Result<String, Error> {
    let region = r.address.region();
    match &r.spec {
        Spec::Vpc(s) => vpc::create(ctx, region, s, &r.tags).await,
        Spec::Subnet(s) => subnet::create(ctx, region, s, &r.tags).await,
        Spec::InternetGateway(s) => internet_gateway::create(ctx, region, s, &r.tags).await,
        Spec::ElasticIp(_) => elastic_ip::create(ctx, region, &r.tags).await,
        Spec::NatGateway(s) => nat_gateway::create(ctx, &r.address, s, &r.tags).await,
        Spec::RouteTable(s) => route_table::create(ctx, &r.address, s, &r.tags).await,
        Spec::Route(s) => route::create(ctx, region, s).await,
        Spec::RouteTableAssociation(s) => route_table_association::create(ctx, region, s).await,
        Spec::VpcPeering(s) => vpc_peering::create(ctx, region, s, &r.tags).await,
    }
}

/// Brings an existing resource in line with its spec without replacing it. Idempotent: it
/// only touches what `diff` says differs.
pub async fn update(ctx: &Ctx<'_>, r: &Resource, found: &Found, diff: &Diff) -> Result<(), Error> {
    let region = r.address.region();
    let id = found.id.as_str();
    if r.spec.taggable() {
        let missing = missing_tags(&r.tags, &found.tags);
        if !missing.is_empty() {
            ec2::create_tags(ctx.ec2(region), id, &missing).await?;
        }
    }
    match (&r.spec, &found.spec) {
        (Spec::Vpc(s), _) => vpc::update(ctx, region, id, s, diff).await,
        (Spec::Subnet(s), _) => subnet::update(ctx, region, id, s, diff).await,
        (Spec::InternetGateway(s), Spec::InternetGateway(o)) => {
            internet_gateway::update(ctx, region, id, s, o).await
        }
        (Spec::NatGateway(_), _) => nat_gateway::update(ctx, region, id).await,
        (Spec::RouteTableAssociation(s), _) => {
            route_table_association::update(ctx, region, id, s).await.map(|_| ())
        }
        (Spec::Route(s), _) => route::update(ctx, region, s).await,
        (Spec::VpcPeering(s), Spec::VpcPeering(o)) => {
            vpc_peering::update(ctx, region, id, s, o, &r.tags).await
        }
        _ => Ok(()),
    }
}

/// Deletes what was found, waiting until AWS lets go of it. Already gone is success.
pub async fn delete(ctx: &Ctx<'_>, found: &Found) -> Result<(), Error> {
    let region = found.address.region();
    let id = found.id.as_str();
    let result = match &found.spec {
        Spec::Vpc(_) => vpc::delete(ctx, region, id).await,
        Spec::Subnet(_) => subnet::delete(ctx, region, id).await,
        Spec::InternetGateway(_) => internet_gateway::delete(ctx, region, id).await,
        Spec::ElasticIp(_) => elastic_ip::delete(ctx, region, id).await,
        Spec::NatGateway(_) => nat_gateway::delete(ctx, region, id).await,
        Spec::RouteTable(_) => route_table::delete(ctx, region, id).await,
        Spec::Route(s) => route::delete(ctx, region, id, s).await,
        Spec::RouteTableAssociation(_) => route_table_association::delete(ctx, region, id).await,
        Spec::VpcPeering(_) => vpc_peering::delete(ctx, region, id).await,
    };
    match result {
        Err(e) if e.is_not_found() => Ok(()),
        other => other,
    }
}
