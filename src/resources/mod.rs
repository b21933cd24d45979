//! Every resource kind the deployer manages, one file each. A kind's file holds its spec (what we
//! want, plain data), its pure diff and normalisation, and its I/O: observe (batched), create
//! (tagged in the same request), update in place, delete, wait until ready, repair tags. Each
//! kind implements [`Kind`]; the `kinds!` list below generates the dispatch enum [`Spec`] and
//! the observe fan-out from one line per kind, with no catch-all arm, so a kind cannot forget a
//! hook and still compile.
//!
//! Adding a kind: write `resources/<kind>.rs` with its spec and `impl Kind` (its IAM actions are
//! its own `ACTIONS`, the parts of `permissions.rs` it belongs to its `PARTS`), add one line to
//! the `kinds!` list (it declares the module too), and add its resources to the model
//! (`model/`). The other modules here are per-service helpers (`ec2`, `ecs`, `elbv2`,
//! `codedeploy`, `rds`, `route53`, and `iam_policy`, which also holds the IAM policy document
//! type) and `tagging`, the Resource Groups Tagging API's index.

use std::any::Any;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::try_join_all;
use serde::Serialize;

use crate::cloud::{retry_transient, Clients, Error};
use crate::spec::{Address, Ref};
pub use crate::spec::{Attrs, IdMap, Tags, TAG_ADDRESS, TAG_APP, TAG_ENV, TAG_MANAGED_BY};

/// Compares the fields of `desired` and `observed` that a plan names as the spec does:
/// `diff_fields!(d, desired, observed, name: Yes, subnets: No)` is
/// `d.field("name", &desired.name, &observed.name, Replace::Yes);` then the same for `subnets`
/// with `Replace::No`. A field compared some other way keeps its own `d.field` line.
macro_rules! diff_fields {
    ($d:ident, $desired:ident, $observed:ident, $($field:ident: $replace:ident),+ $(,)?) => {
        $( $d.field(stringify!($field), &$desired.$field, &$observed.$field, Replace::$replace); )+
    };
}

pub mod codedeploy;
pub mod ec2;
pub mod ecs;
pub mod elbv2;
pub mod iam_policy;
pub mod rds;
pub mod route53;
pub mod tagging;

/// Names of the attributes kinds report in [`Found::attrs`] (and record with
/// [`IdMap::set_attr`] when they create), for [`Ref::Attr`] references. A kind reports an
/// attribute exactly as AWS spells it where another resource refers to it, so the observed
/// reference resolves back to the address. Only a value that is unique across the environment
/// can be referenced this way (an ARN, an endpoint, a dimension with its random ID): names repeat
/// across regions and kinds (`webapp-prod` is a cluster, a service and an application in every
/// region), so a kind that names another by name keeps the name as a plain value and orders
/// itself after it with a plain reference. For the same reason physical IDs are ARNs wherever a
/// name would repeat.
pub mod attr {
    /// The resource's name where AWS refers to it by name (a target group in a deployment
    /// group, a cluster or service in a deployment group).
    pub const NAME: &str = "name";
    /// The CloudWatch dimension value of a load balancer (`app/<name>/<id>`) or target group
    /// (`targetgroup/<name>/<id>`).
    pub const DIMENSION: &str = "dimension";
    /// A load balancer's DNS name and its canonical hosted zone (for alias records).
    pub const DNS_NAME: &str = "dns_name";
    pub const ZONE_ID: &str = "zone_id";
    /// A resource's ARN, for kinds whose ID is not their ARN.
    pub const ARN: &str = "arn";
    pub use super::db_instance::{ATTR_ENDPOINT as ENDPOINT, ATTR_MASTER_SECRET_ARN as MASTER_SECRET_ARN};
}

/// Where a kind lives: in each region, or once for the account (IAM, Route 53), at addresses
/// `global/<tier>/<kind>/<name>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Regional,
    Global,
}

/// What a reference means for ordering.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The resource lives inside its target (a subnet in its VPC): replacing the target replaces
    /// it, and the target cannot be deleted while it exists.
    Parent,
    /// The target cannot be deleted while this resource points at it, but an update re-points
    /// it (an association's route table).
    Holds,
    /// A plain pointer that AWS lets dangle (a route's target turns into a blackhole).
    Points,
}

/// Whether a resource that exists is usable yet. A busy resource is not a difference: the plan
/// waits for it, and `drift` reports it as in progress.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "readiness", content = "state")]
pub enum Readiness {
    Ready,
    /// AWS is still working on it; the state word says what (`pending`, `modifying`…).
    Busy(String),
}

/// The address a resource of `kind` (a kind's name, or `resource <id>`) carries in its
/// `deployer:address` tag. One tagged for the
/// environment without a readable one is not the deployer's to judge: it is skipped, with a
/// warning naming it (its `Name` tag), never silently.
pub fn tagged_address(tags: &Tags, kind: &str) -> Option<Address> {
    let address = tags.get(TAG_ADDRESS).and_then(|a| Address::parse(a));
    if address.is_none() {
        let name = tags.get("Name").map_or("(no Name tag)", String::as_str);
        tracing::warn!(
            "{kind} {name} is tagged for this environment but has no valid {TAG_ADDRESS} tag; ignoring it"
        );
    }
    address
}

/// What replacing a resource that holds data (a database) destroys, and whether the
/// configuration allows it. The plan says what would be lost; a replacement that is not allowed
/// is refused before anything changes ([`crate::plan::Plan::refusals`]), and by the engine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DataLoss {
    /// What would be lost, for people: `database webapp-prod and every row in it`.
    pub what: String,
    /// The configuration key that allows it, e.g. `database.allow_replacement`.
    pub allow_key: &'static str,
    /// Whether that key is set.
    pub allowed: bool,
}

impl DataLoss {
    /// Why a replacement of `address` is refused, or `None` when it is allowed.
    pub fn refusal(&self, address: &Address) -> Option<String> {
        (!self.allowed).then(|| {
            format!(
                "refusing to replace {address}: that deletes the {}. Set {} = true in the environment's config to allow it (take a snapshot first)",
                self.what, self.allow_key
            )
        })
    }
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One kind of resource: the same hooks, with the same signatures, for every kind of every
/// service. I/O hooks are idempotent: each may be called again after a crash.
pub trait Kind {
    /// What the deployer manages of it: plain data, references as [`Ref`].
    type Spec: Clone + Debug + PartialEq + Serialize + Send + Sync + 'static;
    /// The kind part of its addresses, e.g. `nat-gateway`.
    const NAME: &'static str;
    const SCOPE: Scope;
    /// Whether it carries the environment's tags (routes and associations live inside a
    /// tagged route table and have none of their own).
    const TAGGED: bool;
    /// The IAM actions (`service:Operation`) its own calls send: observe, create, update,
    /// delete, wait and tags, helpers included. `permissions` assembles the deployer's policy
    /// from them; a test holds them to the operations the kind's file names.
    const ACTIONS: &'static [&'static str];
    /// The parts of the deployer's policy (`permissions::PARTS`: `network`, `service`, …) whose
    /// changes include this kind's: the policy of a configuration that uses none of them may not
    /// create, change or delete it (every part reads every kind).
    const PARTS: &'static [&'static str];

    /// Its references to other resources, each with what it means for ordering. Default: none.
    fn refs(_spec: &mut Self::Spec) -> Vec<(Role, &mut Ref)> {
        vec![]
    }
    /// Brings a spec (desired or observed) to the form diffs compare: AWS's defaults filled in,
    /// order-insensitive lists sorted, fields owned by another AWS service set aside. Default:
    /// nothing to do.
    fn normalize(_spec: &mut Self::Spec) {}
    /// Differences in the fields the deployer manages, desired against observed (both
    /// normalised).
    fn diff(desired: &Self::Spec, observed: &Self::Spec, d: &mut Diff);
    /// Whether the observed resource, in AWS state `state`, is usable yet. Default: it is as
    /// soon as it exists.
    fn readiness(_observed: &Self::Spec, _state: &str) -> Readiness {
        Readiness::Ready
    }
    /// True when `a` cannot exist beside `b` (overlapping subnets): `b` is deleted first.
    /// Default: never.
    fn conflicts(_a: &Self::Spec, _b: &Self::Spec) -> bool {
        false
    }
    /// For kinds named after what they reference, the address once references are resolved.
    /// Default: its address is its own.
    fn derived_address(_spec: &Self::Spec, _current: &Address) -> Option<Address> {
        None
    }
    /// For kinds that hold data (a database), what a replacement destroys and whether the
    /// desired spec allows it; `None` (the default) for kinds whose replacement loses nothing.
    fn data_loss(_desired: &Self::Spec) -> Option<DataLoss> {
        None
    }

    /// Everything of this kind tagged for the environment in `ctx`'s region (or globally): a
    /// number of reads that does not grow with the number of resources.
    fn observe(ctx: &ObserveCtx<'_>) -> impl Future<Output = Result<Vec<Found>, Error>> + Send;
    /// Creates it, tagged in the same request, and waits until it is usable. Returns its ID.
    fn create(
        ctx: &Ctx<'_>,
        new: Create<'_, Self::Spec>,
    ) -> impl Future<Output = Result<String, Error>> + Send;
    /// Changes what `diff` says differs, in place. `tags` are the resource's desired tags.
    fn update(
        ctx: &Ctx<'_>,
        change: Update<'_, Self::Spec>,
    ) -> impl Future<Output = Result<(), Error>> + Send;
    /// Deletes it and waits until AWS lets go of it. "Not found" is reported as such
    /// ([`Error::is_not_found`]) and counts as success.
    fn delete(ctx: &Ctx<'_>, gone: Delete<'_, Self::Spec>) -> impl Future<Output = Result<(), Error>> + Send;
    /// Waits until a busy resource is usable. Default: nothing to wait for (its create
    /// answers once it is usable).
    fn wait_ready(
        _ctx: &Ctx<'_>,
        _address: &Address,
        _id: &str,
    ) -> impl Future<Output = Result<(), Error>> + Send {
        async { Ok(()) }
    }
    /// Puts back the environment's tags that are missing or changed on it. Default, for a kind
    /// that is not `TAGGED` (ours by its parent, its name or a marker): nothing to put back; a
    /// tagged kind that kept the default fails here rather than skip its tags in silence.
    fn repair_tags(
        _ctx: &Ctx<'_>,
        address: &Address,
        _id: &str,
        _missing: &Tags,
    ) -> impl Future<Output = Result<(), Error>> + Send {
        let untagged = !Self::TAGGED;
        async move {
            if untagged {
                Ok(())
            } else {
                Err(Error::InvalidState(format!(
                    "{address}: the {} kind cannot put back its tags",
                    Self::NAME
                )))
            }
        }
    }
}

/// What a create is given: the address, the desired spec and the tags to create it with.
pub struct Create<'a, S> {
    pub address: &'a Address,
    pub spec: &'a S,
    pub tags: &'a Tags,
}

/// What a delete is given: the address, the physical ID and the observed spec.
pub struct Delete<'a, S> {
    pub address: &'a Address,
    pub id: &'a str,
    pub observed: &'a S,
}

/// What an update in place is given: the resource's address and physical ID, its desired and
/// observed specs (both normalised), what differs between them, and the desired tags.
pub struct Update<'a, S> {
    pub address: &'a Address,
    pub id: &'a str,
    pub desired: &'a S,
    pub observed: &'a S,
    pub diff: &'a Diff,
    pub tags: &'a Tags,
}

/// What the permissions are made from, per kind: its module, its name, the IAM actions it
/// declares and the parts of the policy it belongs to.
#[derive(Clone, Copy, Debug)]
pub struct KindInfo {
    pub module: &'static str,
    pub name: &'static str,
    pub actions: &'static [&'static str],
    pub parts: &'static [&'static str],
}

/// The kind list, one line per kind (`Variant => module::Type`): declares each kind's module and
/// generates [`Spec`] (one variant per kind), its dispatch methods, and the observe fan-out.
/// Every arm is generated for every kind.
macro_rules! kinds {
    ($($variant:ident => $module:ident :: $kind:ident),* $(,)?) => {
        $(pub mod $module;)*

        /// Every kind: its module, its name, the IAM actions it declares and its parts.
        pub const KINDS: &[KindInfo] = &[$(KindInfo {
            module: stringify!($module),
            name: <$module::$kind as Kind>::NAME,
            actions: <$module::$kind as Kind>::ACTIONS,
            parts: <$module::$kind as Kind>::PARTS,
        }),*];

        /// What a resource should be (desired) or is (observed, references resolved to addresses).
        #[derive(Clone, Debug, PartialEq)]
        pub enum Spec {
            $($variant(<$module::$kind as Kind>::Spec)),*
        }

        impl Spec {
            /// The kind's name, e.g. `subnet`.
            pub fn kind(&self) -> &'static str {
                match self { $(Spec::$variant(_) => <$module::$kind as Kind>::NAME),* }
            }

            pub fn scope(&self) -> Scope {
                match self { $(Spec::$variant(_) => <$module::$kind as Kind>::SCOPE),* }
            }

            pub fn taggable(&self) -> bool {
                match self { $(Spec::$variant(_) => <$module::$kind as Kind>::TAGGED),* }
            }

            /// The references this spec holds, each with its role.
            pub fn refs(&mut self) -> Vec<(Role, &mut Ref)> {
                match self { $(Spec::$variant(s) => <$module::$kind as Kind>::refs(s)),* }
            }

            pub fn normalize(&mut self) {
                match self { $(Spec::$variant(s) => <$module::$kind as Kind>::normalize(s)),* }
            }

            /// Whether the observed resource in AWS state `state` is usable.
            pub fn readiness(&self, state: &str) -> Readiness {
                match self { $(Spec::$variant(s) => <$module::$kind as Kind>::readiness(s, state)),* }
            }

            /// Differences in the fields the deployer manages, desired (`self`) against observed.
            pub fn diff(&self, observed: &Spec) -> Diff {
                let mut d = Diff::default();
                match (self, observed) {
                    $((Spec::$variant(a), Spec::$variant(b)) => <$module::$kind as Kind>::diff(a, b, &mut d),)*
                    (a, b) => d.field("kind", &a.kind(), &b.kind(), Replace::Yes),
                }
                d
            }

            /// True when this resource cannot exist beside `other`: the other is deleted first.
            pub fn conflicts_with(&self, other: &Spec) -> bool {
                match (self, other) {
                    $((Spec::$variant(a), Spec::$variant(b)) => <$module::$kind as Kind>::conflicts(a, b),)*
                    // A replica and a primary share the identifier space of their region (a
                    // failback's new replica waits for the old primary of that name to go).
                    (Spec::DbReplica(a), Spec::DbInstance(b)) | (Spec::DbInstance(b), Spec::DbReplica(a)) => {
                        a.identifier == b.identifier
                    }
                    _ => false,
                }
            }

            /// For kinds named after what they reference, the address once references are resolved.
            pub fn derived_address(&self, current: &Address) -> Option<Address> {
                match self { $(Spec::$variant(s) => <$module::$kind as Kind>::derived_address(s, current)),* }
            }

            /// What replacing this resource destroys, for kinds that hold data.
            pub fn data_loss(&self) -> Option<DataLoss> {
                match self { $(Spec::$variant(s) => <$module::$kind as Kind>::data_loss(s)),* }
            }

            fn serialize_inner(&self) -> serde_json::Result<serde_json::Value> {
                match self { $(Spec::$variant(s) => serde_json::to_value(s)),* }
            }
        }

        /// Every kind of `scope`, observed concurrently in `ctx`'s region.
        async fn observe_kinds(ctx: &ObserveCtx<'_>, scope: Scope) -> Result<Vec<Found>, Error> {
            let mut all: Vec<BoxFuture<'_, Result<Vec<Found>, Error>>> = Vec::new();
            $(if <$module::$kind as Kind>::SCOPE == scope {
                all.push(Box::pin(<$module::$kind as Kind>::observe(ctx)));
            })*
            Ok(try_join_all(all).await?.into_iter().flatten().collect())
        }

        async fn create_dispatch(ctx: &Ctx<'_>, r: &Resource) -> Result<String, Error> {
            match &r.spec { $(Spec::$variant(s) => <$module::$kind as Kind>::create(ctx, Create { address: &r.address, spec: s, tags: &r.tags }).await),* }
        }

        async fn update_dispatch(ctx: &Ctx<'_>, r: &Resource, found: &Found, diff: &Diff) -> Result<(), Error> {
            match (&r.spec, &found.spec) {
                $((Spec::$variant(d), Spec::$variant(o)) => {
                    let change = Update { address: &r.address, id: &found.id, desired: d, observed: o, diff, tags: &r.tags };
                    <$module::$kind as Kind>::update(ctx, change).await
                })*
                (d, o) => Err(Error::InvalidState(format!(
                    "{} is a {} but was found as a {}: it must be replaced, not updated",
                    r.address, d.kind(), o.kind()
                ))),
            }
        }

        async fn delete_dispatch(ctx: &Ctx<'_>, found: &Found) -> Result<(), Error> {
            match &found.spec {
                $(Spec::$variant(s) => <$module::$kind as Kind>::delete(ctx, Delete { address: &found.address, id: &found.id, observed: s }).await),*
            }
        }

        async fn wait_dispatch(ctx: &Ctx<'_>, found: &Found) -> Result<(), Error> {
            match &found.spec {
                $(Spec::$variant(_) => <$module::$kind as Kind>::wait_ready(ctx, &found.address, &found.id).await),*
            }
        }

        async fn repair_tags_dispatch(ctx: &Ctx<'_>, found: &Found, missing: &Tags) -> Result<(), Error> {
            match &found.spec {
                $(Spec::$variant(_) => <$module::$kind as Kind>::repair_tags(ctx, &found.address, &found.id, missing).await),*
            }
        }
    };
}

// The kinds, in no particular order: ordering comes from references, not from this list.
kinds! {
    Vpc => vpc::Vpc,
    Subnet => subnet::Subnet,
    InternetGateway => internet_gateway::InternetGateway,
    ElasticIp => elastic_ip::ElasticIp,
    NatGateway => nat_gateway::NatGateway,
    RouteTable => route_table::RouteTable,
    RouteTableAssociation => route_table_association::RouteTableAssociation,
    Route => route::Route,
    VpcPeering => vpc_peering::VpcPeering,
    EcrRepository => ecr_repository::EcrRepository,
    EcrReplication => ecr_replication::EcrReplication,
    SecurityGroup => security_group::SecurityGroup,
    DbSubnetGroup => db_subnet_group::DbSubnetGroup,
    DbParameterGroup => db_parameter_group::DbParameterGroup,
    DbInstance => db_instance::DbInstance,
    DbReplica => db_replica::DbReplica,
    DbSecret => db_secret::DbSecret,
    IamBoundary => iam_boundary::IamBoundary,
    IamRole => iam_role::IamRole,
    EcsCluster => ecs_cluster::EcsCluster,
    LogGroup => log_group::LogGroup,
    AcmCertificate => acm_certificate::AcmCertificate,
    LoadBalancer => load_balancer::LoadBalancer,
    TargetGroup => target_group::TargetGroup,
    Listener => listener::Listener,
    TaskDefinition => task_definition::TaskDefinition,
    EcsService => ecs_service::EcsService,
    ScalableTarget => scalable_target::ScalableTarget,
    ScalingPolicy => scaling_policy::ScalingPolicy,
    CodedeployApp => codedeploy_app::CodedeployApp,
    MetricAlarm => metric_alarm::MetricAlarm,
    DeploymentConfig => deployment_config::DeploymentConfig,
    DeploymentGroup => deployment_group::DeploymentGroup,
    HealthCheck => health_check::HealthCheck,
    DnsRecord => dns_record::DnsRecord,
    SnsTopic => sns_topic::SnsTopic,
    Dashboard => dashboard::Dashboard,
    ScheduleGroup => schedule_group::ScheduleGroup,
    EventRule => event_rule::EventRule,
}

impl Serialize for Spec {
    /// The spec's own fields plus `"kind"`.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut value = self.serialize_inner().map_err(serde::ser::Error::custom)?;
        if let serde_json::Value::Object(map) = &mut value {
            map.insert("kind".into(), serde_json::Value::String(self.kind().into()));
        }
        value.serialize(s)
    }
}

impl Spec {
    /// Addresses of the resources this one needs to exist first.
    pub fn deps(&self) -> Vec<Address> {
        self.clone().refs().into_iter().filter_map(|(_, r)| r.addr().cloned()).collect()
    }

    /// The references that, when their target is replaced, force this resource to be replaced
    /// too (its parent). The others are re-pointed by an update.
    pub fn parent_deps(&self) -> Vec<Address> {
        self.clone()
            .refs()
            .into_iter()
            .filter(|(role, _)| *role == Role::Parent)
            .filter_map(|(_, r)| r.addr().cloned())
            .collect()
    }

    /// Whether AWS refuses to delete `address` while this resource references it.
    pub fn holds(&self, address: &Address) -> bool {
        self.clone().refs().into_iter().any(|(role, r)| role != Role::Points && r.addr() == Some(address))
    }
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
    /// AWS's own state word (`available`, `pending`, `active`…), for `status` and readiness.
    pub state: String,
    /// Values AWS assigned to it that other resources reference ([`Ref::Attr`]): a database's
    /// endpoint and master secret ARN, a target group's CloudWatch dimension.
    #[serde(skip_serializing_if = "Attrs::is_empty")]
    pub attrs: Attrs,
}

impl Found {
    pub fn readiness(&self) -> Readiness {
        self.spec.readiness(&self.state)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Replace {
    Yes,
    No,
}

/// One field that differs. Values are rendered for people: strings bare, others as JSON.
/// In `--output json` a structured value (an object or a list: a policy, a dashboard body, a
/// list of subnets) is the JSON value itself, never a string holding JSON; a scalar is its
/// rendered string.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldChange {
    pub field: String,
    #[serde(serialize_with = "structured")]
    pub from: String,
    #[serde(serialize_with = "structured")]
    pub to: String,
    pub forces_replacement: bool,
}

/// A rendered value as JSON: the parsed value when it is a JSON object or list.
fn structured<S: serde::Serializer>(text: &str, s: S) -> Result<S::Ok, S::Error> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        if let Ok(value) = serde_json::from_str::<serde_json::Value>(text) {
            return value.serialize(s);
        }
    }
    s.serialize_str(text)
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diff {
    pub fields: Vec<FieldChange>,
    /// What an in-place update of these fields means, for the plan when the fields alone do
    /// not say it: `new revision registered; released by the next release`.
    pub note: Option<String>,
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

    /// Says what an in-place update of the differing fields means (see [`Diff::note`]).
    pub fn note(&mut self, note: &str) {
        self.note = Some(note.to_string());
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

/// Whether `tags` say the resource belongs to `app`/`env` (every kind's ownership check).
pub fn is_ours(tags: &Tags, app: &str, env: &str) -> bool {
    tags.get(TAG_APP).map(String::as_str) == Some(app) && tags.get(TAG_ENV).map(String::as_str) == Some(env)
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

impl IdMap {
    /// Seeds the IDs and attributes of what was found.
    pub fn seed(&self, found: &[Found]) {
        for f in found {
            self.insert(f.address.clone(), f.id.clone());
            for (attr, value) in &f.attrs {
                self.set_attr(&f.address, attr, value.clone());
            }
        }
    }
}

/// What carries out each step. The engine only schedules: what runs when, how many at once,
/// and what is skipped after a failure ([`crate::engine`]). [`Aws`] is the real one; the
/// engine's tests use a fake.
pub trait Executor: Sync {
    /// Creates the resource and returns its physical ID.
    fn create(&self, desired: &Resource) -> impl Future<Output = Result<String, Error>>;
    fn update(
        &self,
        desired: &Resource,
        found: &Found,
        diff: &Diff,
    ) -> impl Future<Output = Result<(), Error>>;
    fn delete(&self, found: &Found) -> impl Future<Output = Result<(), Error>>;
    /// Waits until a busy resource is usable.
    fn wait(&self, found: &Found) -> impl Future<Output = Result<(), Error>>;
}

/// Runs each step against AWS, keeping the physical IDs that references resolve to.
pub struct Aws<'a> {
    pub ctx: Ctx<'a>,
}

impl<'a> Aws<'a> {
    /// `observed` seeds the physical IDs.
    pub fn new(ctx: Ctx<'a>, observed: &[Found]) -> Aws<'a> {
        ctx.ids.seed(observed);
        Aws { ctx }
    }
}

/// Each step is tried again when it fails for a transient reason (`retry_transient`): every
/// kind's create, update, delete and wait is idempotent, and a create that made a second copy is
/// caught by the verification round.
impl Executor for Aws<'_> {
    async fn create(&self, desired: &Resource) -> Result<String, Error> {
        let what = format!("creating {}", desired.address);
        let id = retry_transient(&what, || create(&self.ctx, desired)).await?;
        self.ctx.ids.insert(desired.address.clone(), id.clone());
        Ok(id)
    }
    async fn update(&self, desired: &Resource, found: &Found, diff: &Diff) -> Result<(), Error> {
        let what = format!("updating {}", desired.address);
        retry_transient(&what, || update(&self.ctx, desired, found, diff)).await
    }
    async fn delete(&self, found: &Found) -> Result<(), Error> {
        let what = format!("deleting {}", found.address);
        retry_transient(&what, || delete(&self.ctx, found)).await?;
        self.ctx.ids.remove(&found.address);
        Ok(())
    }
    async fn wait(&self, found: &Found) -> Result<(), Error> {
        let what = format!("waiting for {}", found.address);
        retry_transient(&what, || wait_ready(&self.ctx, found)).await
    }
}

/// What the configuration says about deleting data: destroy is deliberate.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeletionPolicy {
    /// Keep a container repository that still holds images (`registry.keep_on_destroy`).
    pub keep_repositories_with_images: bool,
    /// Delete a database without a final snapshot (`database.skip_final_snapshot`).
    pub skip_final_snapshot: bool,
}

/// What a resource operation needs: clients, the IDs resolved so far, the wait bounds, and the
/// deletion policy.
pub struct Ctx<'a> {
    pub clients: &'a Clients,
    pub ids: &'a IdMap,
    pub policy: DeletionPolicy,
    /// The bound on any one wait, unless the kind has its own in `timeouts`.
    pub timeout: Duration,
    /// Waits bounded per kind (a database takes far longer than a NAT gateway).
    pub timeouts: BTreeMap<&'static str, Duration>,
}

impl Ctx<'_> {
    /// The physical ID behind a reference; fails if what it names was never created.
    pub fn id(&self, r: &Ref) -> Result<String, Error> {
        match r {
            Ref::Id(id) => Ok(id.clone()),
            Ref::Addr(a) => self.ids.get(a).ok_or_else(|| {
                Error::InvalidState(format!("{a} has no physical ID yet (it was not created)"))
            }),
            Ref::Attr { of, attr, suffix } => {
                self.ids.attr(of, attr).map(|value| format!("{value}{suffix}")).ok_or_else(|| {
                    Error::InvalidState(format!("{of} has no {attr} yet (it was not created)"))
                })
            }
        }
    }

    pub fn ec2(&self, region: &str) -> aws_sdk_ec2::Client {
        self.clients.ec2(region)
    }

    /// The wait bound for `kind`.
    pub fn timeout_for(&self, kind: &str) -> Duration {
        self.timeouts.get(kind).copied().unwrap_or(self.timeout)
    }
}

/// One shared describe's result, loaded once.
type SharedCell = tokio::sync::OnceCell<Arc<dyn Any + Send + Sync>>;

/// What observing one region (or the global scope) needs, and the describes several kinds share:
/// one DescribeRouteTables yields tables, routes and associations, and is sent once.
pub struct ObserveCtx<'a> {
    pub clients: &'a Clients,
    /// The region observed; [`crate::cloud::GLOBAL_REGION`] for the global scope.
    pub region: String,
    pub app: &'a str,
    pub env: &'a str,
    shared: Mutex<HashMap<&'static str, Arc<SharedCell>>>,
}

impl<'a> ObserveCtx<'a> {
    pub fn new(clients: &'a Clients, region: &str, app: &'a str, env: &'a str) -> ObserveCtx<'a> {
        ObserveCtx { clients, region: region.to_string(), app, env, shared: Mutex::default() }
    }

    pub fn ec2(&self) -> aws_sdk_ec2::Client {
        self.clients.ec2(&self.region)
    }

    /// The result of `load`, run once per `key` however many kinds ask for it.
    pub async fn shared<T, F, Fut>(&self, key: &'static str, load: F) -> Result<Arc<T>, Error>
    where
        T: Any + Send + Sync,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        let cell = self.shared.lock().expect("observe cache lock").entry(key).or_default().clone();
        let value = cell
            .get_or_try_init(|| async { load().await.map(|v| Arc::new(v) as Arc<dyn Any + Send + Sync>) })
            .await?
            .clone();
        value
            .downcast::<T>()
            .map_err(|_| Error::InvalidState(format!("observe cache {key} holds another type")))
    }
}

/// Finds every resource of every regional kind tagged for the environment in `region`: a fixed
/// number of batched reads per kind, all kinds concurrently.
pub async fn observe_region(
    clients: &Clients,
    region: &str,
    app: &str,
    env: &str,
) -> Result<Vec<Found>, Error> {
    observe_kinds(&ObserveCtx::new(clients, region, app, env), Scope::Regional).await
}

/// Finds every resource of every global kind (IAM, Route 53) owned by the environment.
pub async fn observe_global(clients: &Clients, app: &str, env: &str) -> Result<Vec<Found>, Error> {
    observe_kinds(&ObserveCtx::new(clients, crate::cloud::GLOBAL_REGION, app, env), Scope::Global).await
}

/// Creates the resource (tagged in the same request) and waits until it is usable.
/// Returns its physical ID.
pub async fn create(ctx: &Ctx<'_>, r: &Resource) -> Result<String, Error> {
    create_dispatch(ctx, r).await
}

/// Brings an existing resource in line with its spec without replacing it: waits for it first
/// if it is busy, puts back missing tags, then changes only what `diff` says differs (kinds'
/// updates are idempotent).
pub async fn update(ctx: &Ctx<'_>, r: &Resource, found: &Found, diff: &Diff) -> Result<(), Error> {
    if found.readiness() != Readiness::Ready {
        wait_dispatch(ctx, found).await?;
    }
    if r.spec.taggable() {
        let missing = missing_tags(&r.tags, &found.tags);
        if !missing.is_empty() {
            repair_tags_dispatch(ctx, found, &missing).await?;
        }
    }
    // Also with no field differing: a reference whose target was replaced is re-pointed.
    update_dispatch(ctx, r, found, diff).await
}

/// Waits until a busy resource is usable.
pub async fn wait_ready(ctx: &Ctx<'_>, found: &Found) -> Result<(), Error> {
    wait_dispatch(ctx, found).await
}

/// Deletes what was found, waiting until AWS lets go of it. Already gone is success.
pub async fn delete(ctx: &Ctx<'_>, found: &Found) -> Result<(), Error> {
    match delete_dispatch(ctx, found).await {
        Err(e) if e.is_not_found() => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod field_change_json {
    use super::*;

    #[test]
    fn a_structured_value_is_a_json_value_and_a_scalar_its_string() {
        let mut d = Diff::default();
        let policy = r#"{"rules":[{"rulePriority":1}]}"#.to_string();
        d.field("lifecycle_policy", &policy, &String::new(), Replace::No);
        d.field("subnets", &vec!["a", "b"], &vec!["a"], Replace::No);
        d.field("port", &443, &80, Replace::No);
        let v = serde_json::to_value(&d.fields).unwrap();
        assert_eq!(v[0]["to"], serde_json::json!({"rules": [{"rulePriority": 1}]}));
        assert_eq!(v[0]["from"], "");
        assert_eq!(v[1]["to"], serde_json::json!(["a", "b"]));
        assert_eq!(v[2]["to"], "443");
    }

    /// A spec field holding a [`Sensitive`] diffs like any other, and its change never shows it.
    #[test]
    fn a_changed_secret_is_a_difference_that_never_shows() {
        use crate::spec::{Sensitive, REDACTED};
        let (a, b) =
            (Sensitive::new("hunter2-very-secret".to_string()), Sensitive::new("another-secret".to_string()));
        let mut d = Diff::default();
        d.field("password", &a, &b, Replace::No);
        for text in [serde_json::to_string(&d.fields).unwrap(), format!("{d:?}")] {
            assert!(!text.contains("hunter2") && !text.contains("another-secret"), "leaked in {text}");
        }
        assert!(d.has("password"), "a changed secret is still a difference");
        assert_eq!(d.fields[0].to, REDACTED);
    }
}

#[cfg(test)]
mod hook_defaults {
    /// `repair_tags` defaults to nothing only for a kind that is not `TAGGED` (the default fails
    /// for a tagged one at run time): every tagged kind's file implements its own.
    #[test]
    fn every_tagged_kind_repairs_its_own_tags() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/resources");
        let mut checked = 0;
        for k in super::KINDS {
            let text = std::fs::read_to_string(dir.join(format!("{}.rs", k.module))).unwrap();
            let tagged = text.contains("const TAGGED: bool = true;");
            assert!(tagged || text.contains("const TAGGED: bool = false;"), "{}: TAGGED not found", k.module);
            if tagged {
                assert!(
                    text.contains("async fn repair_tags("),
                    "{} is TAGGED but keeps repair_tags' default",
                    k.name
                );
                checked += 1;
            }
        }
        assert!(checked > 20, "only {checked} tagged kinds found");
    }
}
