//! DB parameter group: the PostgreSQL settings of the region's database (or replica), at
//! `<region>/database/db-parameter-group/main`, named `{app}-{env}-<family>` (e.g.
//! `webapp-prod-postgres16`): the family comes from the engine's major version, and a group
//! cannot change family. It enforces TLS (`rds.force_ssl = 1`).
//!
//! Only the parameters the deployer sets are compared: a parameter someone else set on the
//! group is not drift (and is left alone). A parameter that differs is set with
//! `ModifyDBParameterGroup`, applied immediately when PostgreSQL can (dynamic parameters),
//! else at the next reboot.
//!
//! Discovery: see [`super::rds`]: one paginated `DescribeDBParameterGroups` per region, then
//! for each group named `{app}-{env}-…` (one per environment) `ListTagsForResource` and one
//! `DescribeDBParameters` of the user-set parameters (`Source = user`). The physical ID is the
//! group's ARN (its name repeats in every region); calls take the name.

use std::collections::BTreeMap;

use aws_sdk_rds::types::{ApplyMethod, DbParameterGroup as SdkGroup, Parameter};
use serde::Serialize;

use super::{rds, Create, Ctx, Delete, Diff, Found, Kind, ObserveCtx, Replace, Scope, Spec, Tags, Update};
use crate::cloud::{retry_on_codes, AwsResultExt, Error};
use crate::spec::Address;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DbParameterGroupSpec {
    /// `DBParameterGroupName`: fixed once created.
    pub name: String,
    /// `postgres16`: fixed once created.
    pub family: String,
    /// Fixed once created (RDS has no call to change it).
    pub description: String,
    /// The parameters the deployer sets, by name. Observed: every user-set parameter.
    pub parameters: BTreeMap<String, String>,
}

/// The parameter group family of a PostgreSQL version: `16.4` → `postgres16`.
pub fn postgres_family(engine_version: &str) -> String {
    let major = engine_version.split('.').next().unwrap_or(engine_version);
    format!("postgres{major}")
}

pub fn diff(desired: &DbParameterGroupSpec, observed: &DbParameterGroupSpec, d: &mut Diff) {
    diff_fields!(d, desired, observed, name: Yes, family: Yes, description: Yes);
    for (name, value) in &desired.parameters {
        d.field(&format!("parameters.{name}"), &Some(value), &observed.parameters.get(name), Replace::No);
    }
}

/// Parameters PostgreSQL reads only at start: set with `pending-reboot`, since RDS refuses
/// `immediate` for them. Every other parameter the deployer sets is dynamic.
const STATIC_PARAMETERS: &[&str] = &[
    "shared_preload_libraries",
    "max_connections",
    "shared_buffers",
    "max_worker_processes",
    "max_wal_senders",
    "max_replication_slots",
    "wal_buffers",
    "track_activity_query_size",
];

fn apply_method(name: &str) -> ApplyMethod {
    if STATIC_PARAMETERS.contains(&name) {
        ApplyMethod::PendingReboot
    } else {
        ApplyMethod::Immediate
    }
}

pub struct DbParameterGroup;

impl Kind for DbParameterGroup {
    type Spec = DbParameterGroupSpec;
    const NAME: &'static str = "db-parameter-group";
    const SCOPE: Scope = Scope::Regional;
    const TAGGED: bool = true;
    const PARTS: &'static [&'static str] = &["database"];
    const ACTIONS: &'static [&'static str] = &[
        "rds:DescribeDBParameterGroups",
        "rds:DescribeDBParameters",
        "rds:CreateDBParameterGroup",
        "rds:ModifyDBParameterGroup",
        "rds:DeleteDBParameterGroup",
        "rds:ListTagsForResource",
        "rds:AddTagsToResource",
        "tag:GetResources",
    ];

    fn diff(desired: &DbParameterGroupSpec, observed: &DbParameterGroupSpec, d: &mut Diff) {
        diff(desired, observed, d)
    }
    fn conflicts(a: &DbParameterGroupSpec, b: &DbParameterGroupSpec) -> bool {
        a.name == b.name
    }
    async fn observe(ctx: &ObserveCtx<'_>) -> Result<Vec<Found>, Error> {
        let client = rds::client(ctx.clients, &ctx.region);
        let groups: Vec<SdkGroup> = client
            .describe_db_parameter_groups()
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .op("DescribeDBParameterGroups")?;
        let prefix = rds::name_prefix(ctx.app, ctx.env);
        let mut found = Vec::new();
        for g in groups.iter().filter(|g| g.db_parameter_group_name().is_some_and(|n| n.starts_with(&prefix)))
        {
            let (Some(name), Some(arn)) = (g.db_parameter_group_name(), g.db_parameter_group_arn()) else {
                continue;
            };
            let Some(tags) = rds::observed_tags(ctx, &client, arn, "DBParameterGroupNotFound").await? else {
                continue;
            };
            if !rds::is_ours(&tags, ctx.app, ctx.env) {
                continue;
            }
            let Some(address) = rds::address_of(&tags, arn) else { continue };
            found.push(Found {
                address,
                id: arn.to_string(),
                spec: Spec::DbParameterGroup(DbParameterGroupSpec {
                    name: name.to_string(),
                    family: g.db_parameter_group_family().unwrap_or_default().to_string(),
                    description: g.description().unwrap_or_default().to_string(),
                    parameters: user_parameters(&client, name).await?,
                }),
                tags,
                state: "available".into(),
                attrs: Default::default(),
            });
        }
        Ok(found)
    }
    /// Creates the group tagged in the same request, then sets its parameters. A create answered
    /// "already exists" adopts the group of that name if it carries this address's tag.
    async fn create(ctx: &Ctx<'_>, new: Create<'_, DbParameterGroupSpec>) -> Result<String, Error> {
        let Create { address, spec, tags } = new;
        let region = address.region();
        let client = rds::client(ctx.clients, region);
        let created = client
            .create_db_parameter_group()
            .db_parameter_group_name(&spec.name)
            .db_parameter_group_family(&spec.family)
            .description(&spec.description)
            .set_tags(Some(rds::sdk_tags(tags)))
            .send()
            .await
            .op_unless("CreateDBParameterGroup", |e| e.is_db_parameter_group_already_exists_fault())?;
        let (arn, current) = match created.and_then(|out| out.db_parameter_group().cloned()) {
            Some(group) => (group.db_parameter_group_arn().map(str::to_string), BTreeMap::new()),
            None => {
                let group = describe(&client, &spec.name).await?;
                let arn = group.db_parameter_group_arn().unwrap_or_default();
                let existing =
                    rds::list_tags(&client, arn, "DBParameterGroupNotFound").await?.unwrap_or_default();
                rds::ensure_ours(
                    &existing,
                    address,
                    &format!("DB parameter group {}", spec.name),
                    "database.identifier",
                )?;
                (Some(arn.to_string()), user_parameters(&client, &spec.name).await?)
            }
        };
        set_parameters(ctx, region, spec, &current).await?;
        arn.filter(|a| !a.is_empty()).ok_or_else(|| {
            Error::InvalidState(format!("RDS reported no ARN for DB parameter group {}", spec.name))
        })
    }
    async fn update(ctx: &Ctx<'_>, change: Update<'_, DbParameterGroupSpec>) -> Result<(), Error> {
        let Update { address, desired, observed, .. } = change;
        set_parameters(ctx, address.region(), desired, &observed.parameters).await
    }
    /// The databases using it are deleted or moved first (the engine orders that); RDS may still
    /// count one that just went, so `InvalidDBParameterGroupState` is retried within the wait bound.
    async fn delete(ctx: &Ctx<'_>, gone: Delete<'_, DbParameterGroupSpec>) -> Result<(), Error> {
        let Delete { address, id: arn, .. } = gone;
        let region = address.region();
        let name = rds::name_of(arn);
        let client = rds::client(ctx.clients, region);
        retry_on_codes(
            &format!("DB parameter group {name} to be deletable"),
            &["InvalidDBParameterGroupState"],
            ctx.timeout_for(DbParameterGroup::NAME),
            || async {
                client
                    .delete_db_parameter_group()
                    .db_parameter_group_name(name)
                    .send()
                    .await
                    .op_or_gone("DeleteDBParameterGroup", |e| e.is_db_parameter_group_not_found_fault())
                    .map(|_| ())
            },
        )
        .await
    }
    async fn repair_tags(ctx: &Ctx<'_>, address: &Address, id: &str, missing: &Tags) -> Result<(), Error> {
        rds::add_tags(&rds::client(ctx.clients, address.region()), id, missing).await
    }
}

/// The parameters set on the group (not the engine's defaults).
async fn user_parameters(
    client: &aws_sdk_rds::Client,
    name: &str,
) -> Result<BTreeMap<String, String>, Error> {
    let parameters: Vec<Parameter> = client
        .describe_db_parameters()
        .db_parameter_group_name(name)
        .source("user")
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .op("DescribeDBParameters")?;
    Ok(parameters
        .iter()
        .filter_map(|p| Some((p.parameter_name()?.to_string(), p.parameter_value()?.to_string())))
        .collect())
}

async fn describe(client: &aws_sdk_rds::Client, name: &str) -> Result<SdkGroup, Error> {
    let out = client
        .describe_db_parameter_groups()
        .db_parameter_group_name(name)
        .send()
        .await
        .op_or_gone("DescribeDBParameterGroups", |e| e.is_db_parameter_group_not_found_fault())?;
    out.db_parameter_groups()
        .first()
        .cloned()
        .ok_or_else(|| Error::InvalidState(format!("DescribeDBParameterGroups returned no group {name}")))
}

/// Sets the desired parameters whose value differs from `current`, at most 20 a call (RDS's
/// limit).
async fn set_parameters(
    ctx: &Ctx<'_>,
    region: &str,
    spec: &DbParameterGroupSpec,
    current: &BTreeMap<String, String>,
) -> Result<(), Error> {
    let changed: Vec<Parameter> = spec
        .parameters
        .iter()
        .filter(|(k, v)| current.get(*k) != Some(*v))
        .map(|(k, v)| {
            Parameter::builder().parameter_name(k).parameter_value(v).apply_method(apply_method(k)).build()
        })
        .collect();
    let client = rds::client(ctx.clients, region);
    for chunk in changed.chunks(20) {
        client
            .modify_db_parameter_group()
            .db_parameter_group_name(&spec.name)
            .set_parameters(Some(chunk.to_vec()))
            .send()
            .await
            .op("ModifyDBParameterGroup")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(parameters: &[(&str, &str)]) -> DbParameterGroupSpec {
        DbParameterGroupSpec {
            name: "webapp-test-postgres16".into(),
            family: "postgres16".into(),
            description: "d".into(),
            parameters: parameters.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    #[test]
    fn only_the_parameters_we_set_are_compared() {
        let mut d = Diff::default();
        diff(
            &spec(&[("rds.force_ssl", "1")]),
            &spec(&[("rds.force_ssl", "1"), ("work_mem", "8192")]),
            &mut d,
        );
        assert!(d.is_empty(), "{d:?}");
    }

    #[test]
    fn tls_turned_off_is_drift_in_place_and_a_new_family_replaces() {
        let mut d = Diff::default();
        diff(&spec(&[("rds.force_ssl", "1")]), &spec(&[("rds.force_ssl", "0")]), &mut d);
        assert_eq!(d.fields.len(), 1);
        assert_eq!(
            (d.fields[0].field.as_str(), d.fields[0].from.as_str(), d.fields[0].to.as_str()),
            ("parameters.rds.force_ssl", "0", "1")
        );
        assert!(!d.replace());
        let mut d = Diff::default();
        diff(&spec(&[("rds.force_ssl", "1")]), &spec(&[]), &mut d);
        assert_eq!(d.fields[0].from, "(none)");
        let mut other = spec(&[]);
        other.family = "postgres17".into();
        let mut d = Diff::default();
        diff(&other, &spec(&[]), &mut d);
        assert!(d.replace());
    }

    #[test]
    fn family_from_the_major_version() {
        assert_eq!(postgres_family("16.4"), "postgres16");
        assert_eq!(postgres_family("17"), "postgres17");
        assert_eq!(apply_method("rds.force_ssl"), ApplyMethod::Immediate);
        assert_eq!(apply_method("shared_preload_libraries"), ApplyMethod::PendingReboot);
    }
}
