//! ECR replication rule: the primary region's registry copies the environment's repository to
//! every secondary, at `<primary>/registry/ecr-replication/main`.
//!
//! The replication configuration belongs to the whole account's registry, and
//! `PutReplicationConfiguration` replaces it whole. So every change reads it
//! (`DescribeRegistry`), changes only this environment's rule, and writes it back with every
//! other rule as it was. This environment's rule is the one whose only repository filter is a
//! prefix match on its repository name; rules carry no tags, so that filter is what identifies
//! it (the repository name starts with `<app>-<env>`, which the configuration requires).
//!
//! Two deployers of different environments writing the account's configuration at the same
//! instant could still overwrite each other's rule (ECR offers no conditional write); the next
//! `up` or `drift` of the other environment finds its rule missing and puts it back.

use aws_sdk_ecr::types::{
    ReplicationConfiguration, ReplicationDestination, ReplicationRule, RepositoryFilter, RepositoryFilterType,
};
use serde::Serialize;

use super::{
    ecr_repository, Create, Ctx, Delete, Diff, Found, Kind, ObserveCtx, Replace, Role, Scope, Spec, Tags,
    Update,
};
use crate::cloud::{AwsResultExt, Error};
use crate::spec::{Address, Ref};

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EcrReplicationSpec {
    /// The repository whose images are replicated (in this rule's region).
    pub repository: Ref,
    /// The repository filter: a prefix match on the repository's name.
    pub prefix: String,
    /// Destination regions, sorted.
    pub destinations: Vec<String>,
}

pub struct EcrReplication;

impl Kind for EcrReplication {
    type Spec = EcrReplicationSpec;
    const NAME: &'static str = "ecr-replication";
    const SCOPE: Scope = Scope::Regional;
    const TAGGED: bool = false;
    const PARTS: &'static [&'static str] = &["registry"];
    const ACTIONS: &'static [&'static str] = &["ecr:DescribeRegistry", "ecr:PutReplicationConfiguration"];

    fn refs(spec: &mut EcrReplicationSpec) -> Vec<(Role, &mut Ref)> {
        // Replication is by name: the rule may outlive its repository for a moment.
        vec![(Role::Points, &mut spec.repository)]
    }
    fn normalize(spec: &mut EcrReplicationSpec) {
        spec.destinations.sort();
        spec.destinations.dedup();
    }
    fn diff(desired: &EcrReplicationSpec, observed: &EcrReplicationSpec, d: &mut Diff) {
        diff_fields!(d, desired, observed, prefix: Yes, destinations: No);
    }
    async fn observe(ctx: &ObserveCtx<'_>) -> Result<Vec<Found>, Error> {
        let client: aws_sdk_ecr::Client = ctx.clients.get(&ctx.region);
        let out = client.describe_registry().send().await.op("DescribeRegistry")?;
        let name_prefix = ecr_repository::name_prefix(ctx.app, ctx.env);
        let registry = out.registry_id().unwrap_or_default();
        let rules = out.replication_configuration().map(|c| c.rules()).unwrap_or_default();
        Ok(rules
            .iter()
            .filter_map(|rule| {
                let prefix = our_prefix(rule, &name_prefix)?;
                let mut destinations: Vec<String> =
                    rule.destinations().iter().map(|d| d.region().to_string()).collect();
                destinations.sort();
                Some(Found {
                    address: Address::new(&ctx.region, "registry", EcrReplication::NAME, "main"),
                    id: format!("{registry}:{prefix}"),
                    spec: Spec::EcrReplication(EcrReplicationSpec {
                        repository: Ref::Id(prefix.to_string()),
                        prefix: prefix.to_string(),
                        destinations,
                    }),
                    tags: Tags::new(),
                    state: "enabled".into(),
                    attrs: Default::default(),
                })
            })
            .collect())
    }
    async fn create(ctx: &Ctx<'_>, new: Create<'_, EcrReplicationSpec>) -> Result<String, Error> {
        let Create { address, spec, .. } = new;
        put_rule(ctx, address.region(), &spec.prefix, Some(&spec.destinations)).await
    }
    async fn update(ctx: &Ctx<'_>, change: Update<'_, EcrReplicationSpec>) -> Result<(), Error> {
        let Update { address, desired, .. } = change;
        put_rule(ctx, address.region(), &desired.prefix, Some(&desired.destinations)).await.map(|_| ())
    }
    async fn delete(ctx: &Ctx<'_>, gone: Delete<'_, EcrReplicationSpec>) -> Result<(), Error> {
        let Delete { address, observed, .. } = gone;
        put_rule(ctx, address.region(), &observed.prefix, None).await.map(|_| ())
    }
}

/// The prefix of a rule that is ours: its only filter is a prefix match starting with the
/// environment's name prefix.
fn our_prefix<'r>(rule: &'r ReplicationRule, name_prefix: &str) -> Option<&'r str> {
    match rule.repository_filters() {
        [f] if f.filter_type() == &RepositoryFilterType::PrefixMatch
            && f.filter().starts_with(name_prefix) =>
        {
            Some(f.filter())
        }
        _ => None,
    }
}

/// Reads the registry's replication configuration, replaces this environment's rule with one
/// replicating `prefix` to `destinations` (or removes it when `None`), and writes it back with
/// every other rule unchanged. Writes nothing when nothing would change.
async fn put_rule(
    ctx: &Ctx<'_>,
    region: &str,
    prefix: &str,
    destinations: Option<&[String]>,
) -> Result<String, Error> {
    let client: aws_sdk_ecr::Client = ctx.clients.get(region);
    let out = client.describe_registry().send().await.op("DescribeRegistry")?;
    let registry = out.registry_id().unwrap_or_default().to_string();
    let current: Vec<ReplicationRule> =
        out.replication_configuration().map(|c| c.rules().to_vec()).unwrap_or_default();
    let is_ours = |rule: &ReplicationRule| our_prefix(rule, prefix) == Some(prefix);
    let mut rules: Vec<ReplicationRule> = current.iter().filter(|r| !is_ours(r)).cloned().collect();
    if let Some(destinations) = destinations {
        let mut rule = ReplicationRule::builder().repository_filters(
            RepositoryFilter::builder()
                .filter(prefix)
                .filter_type(RepositoryFilterType::PrefixMatch)
                .build()
                .map_err(|e| Error::InvalidState(format!("replication filter: {e}")))?,
        );
        for region in destinations {
            rule = rule.destinations(
                ReplicationDestination::builder()
                    .region(region)
                    .registry_id(&registry)
                    .build()
                    .map_err(|e| Error::InvalidState(format!("replication destination: {e}")))?,
            );
        }
        rules.push(rule.build().map_err(|e| Error::InvalidState(format!("replication rule: {e}")))?);
    }
    if rules != current {
        let config = ReplicationConfiguration::builder()
            .set_rules(Some(rules))
            .build()
            .map_err(|e| Error::InvalidState(format!("replication configuration: {e}")))?;
        client
            .put_replication_configuration()
            .replication_configuration(config)
            .send()
            .await
            .op("PutReplicationConfiguration")?;
    }
    Ok(format!("{registry}:{prefix}"))
}
