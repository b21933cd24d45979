//! DB subnet group: the private subnets of one region a database (or replica) may place its
//! network interfaces in, at `<region>/database/db-subnet-group/main`, named `{app}-{env}-db`.
//! Its subnets are plain pointers (`Role::Points`) for ordering: destroy still deletes the group
//! before its subnets, but a subnet leaving the network does not wait for the group to drop it
//! first. That order would deadlock when the subnet is replaced by one taking its CIDR (a moved
//! first AZ: the new subnet waits for the old one to go, the group waits for the new subnet),
//! and with two AZs RDS would refuse the one-subnet group in between anyway. So the old subnet
//! goes first and `ModifyDBSubnetGroup` then sets the new list. A subnet the database itself
//! runs in cannot go at all (its interfaces are there): EC2 answers `DependencyViolation` until
//! the wait bound, and the operator moves the database first (docs/runbooks/database.md).
//!
//! Discovery: see [`super::rds`]: one paginated `DescribeDBSubnetGroups` per region, then
//! `ListTagsForResource` only for the groups named `{app}-{env}-…` (one per environment). The
//! physical ID is the group's ARN (its name repeats in every region); calls take the name.

use aws_sdk_rds::types::DbSubnetGroup as SdkGroup;
use serde::Serialize;

use super::{
    rds, Create, Ctx, Delete, Diff, Found, Kind, ObserveCtx, Replace, Role, Scope, Spec, Tags, Update,
};
use crate::cloud::{retry_on_codes, AwsResultExt, Error};
use crate::spec::{Address, Ref};

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DbSubnetGroupSpec {
    /// `DBSubnetGroupName`: fixed once created.
    pub name: String,
    pub description: String,
    /// Sorted once normalised.
    pub subnets: Vec<Ref>,
}

pub struct DbSubnetGroup;

impl Kind for DbSubnetGroup {
    type Spec = DbSubnetGroupSpec;
    const NAME: &'static str = "db-subnet-group";
    const SCOPE: Scope = Scope::Regional;
    const TAGGED: bool = true;
    const PARTS: &'static [&'static str] = &["database"];
    const ACTIONS: &'static [&'static str] = &[
        "rds:DescribeDBSubnetGroups",
        "rds:CreateDBSubnetGroup",
        "rds:ModifyDBSubnetGroup",
        "rds:DeleteDBSubnetGroup",
        "rds:ListTagsForResource",
        "rds:AddTagsToResource",
        "tag:GetResources",
    ];

    fn refs(spec: &mut DbSubnetGroupSpec) -> Vec<(Role, &mut Ref)> {
        spec.subnets.iter_mut().map(|s| (Role::Points, s)).collect()
    }
    fn normalize(spec: &mut DbSubnetGroupSpec) {
        spec.subnets.sort();
        spec.subnets.dedup();
    }
    fn diff(desired: &DbSubnetGroupSpec, observed: &DbSubnetGroupSpec, d: &mut Diff) {
        diff_fields!(d, desired, observed, name: Yes, description: No, subnets: No);
    }
    fn conflicts(a: &DbSubnetGroupSpec, b: &DbSubnetGroupSpec) -> bool {
        a.name == b.name
    }
    async fn observe(ctx: &ObserveCtx<'_>) -> Result<Vec<Found>, Error> {
        let client = rds::client(ctx.clients, &ctx.region);
        let groups: Vec<SdkGroup> = client
            .describe_db_subnet_groups()
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .op("DescribeDBSubnetGroups")?;
        let prefix = rds::name_prefix(ctx.app, ctx.env);
        let mut found = Vec::new();
        for g in groups.iter().filter(|g| g.db_subnet_group_name().is_some_and(|n| n.starts_with(&prefix))) {
            let Some(arn) = g.db_subnet_group_arn() else {
                continue;
            };
            let Some(tags) = rds::observed_tags(ctx, &client, arn, "DBSubnetGroupNotFoundFault").await?
            else {
                continue;
            };
            if !rds::is_ours(&tags, ctx.app, ctx.env) {
                continue;
            }
            let Some(address) = rds::address_of(&tags, arn) else { continue };
            found.push(Found {
                address,
                id: arn.to_string(),
                spec: Spec::DbSubnetGroup(spec_of(g)),
                tags,
                state: g.subnet_group_status().unwrap_or_default().to_string(),
                attrs: Default::default(),
            });
        }
        Ok(found)
    }
    /// Creates the group tagged in the same request. RDS takes no idempotency token: a create
    /// answered "already exists" adopts the group of that name if it carries this address's tag,
    /// and brings its subnets to the spec.
    async fn create(ctx: &Ctx<'_>, new: Create<'_, DbSubnetGroupSpec>) -> Result<String, Error> {
        let Create { address, spec, tags } = new;
        let client = rds::client(ctx.clients, address.region());
        let created = client
            .create_db_subnet_group()
            .db_subnet_group_name(&spec.name)
            .db_subnet_group_description(&spec.description)
            .set_subnet_ids(Some(subnet_ids(ctx, spec)?))
            .set_tags(Some(rds::sdk_tags(tags)))
            .send()
            .await
            .op_unless("CreateDBSubnetGroup", |e| e.is_db_subnet_group_already_exists_fault())?;
        let group = match created.and_then(|out| out.db_subnet_group().cloned()) {
            Some(group) => group,
            None => {
                let group = describe(&client, &spec.name).await?;
                let arn = group.db_subnet_group_arn().unwrap_or_default();
                let existing =
                    rds::list_tags(&client, arn, "DBSubnetGroupNotFoundFault").await?.unwrap_or_default();
                rds::ensure_ours(
                    &existing,
                    address,
                    &format!("DB subnet group {}", spec.name),
                    "database.identifier",
                )?;
                modify(ctx, address.region(), spec).await?;
                group
            }
        };
        group.db_subnet_group_arn().map(str::to_string).ok_or_else(|| {
            Error::InvalidState(format!("RDS reported no ARN for DB subnet group {}", spec.name))
        })
    }
    async fn update(ctx: &Ctx<'_>, change: Update<'_, DbSubnetGroupSpec>) -> Result<(), Error> {
        let Update { address, desired, .. } = change;
        modify(ctx, address.region(), desired).await
    }
    /// The databases in it are deleted first (the engine orders that); RDS may still count a
    /// database that just went as a user for a moment, so `InvalidDBSubnetGroupStateFault` is
    /// retried within the wait bound.
    async fn delete(ctx: &Ctx<'_>, gone: Delete<'_, DbSubnetGroupSpec>) -> Result<(), Error> {
        let Delete { address, id: arn, .. } = gone;
        let region = address.region();
        let name = rds::name_of(arn);
        let client = rds::client(ctx.clients, region);
        retry_on_codes(
            &format!("DB subnet group {name} to be deletable"),
            &["InvalidDBSubnetGroupStateFault"],
            ctx.timeout_for(DbSubnetGroup::NAME),
            || async {
                client
                    .delete_db_subnet_group()
                    .db_subnet_group_name(name)
                    .send()
                    .await
                    .op_or_gone("DeleteDBSubnetGroup", |e| e.is_db_subnet_group_not_found_fault())
                    .map(|_| ())
            },
        )
        .await
    }
    async fn repair_tags(ctx: &Ctx<'_>, address: &Address, id: &str, missing: &Tags) -> Result<(), Error> {
        rds::add_tags(&rds::client(ctx.clients, address.region()), id, missing).await
    }
}

fn spec_of(g: &SdkGroup) -> DbSubnetGroupSpec {
    DbSubnetGroupSpec {
        name: g.db_subnet_group_name().unwrap_or_default().to_string(),
        description: g.db_subnet_group_description().unwrap_or_default().to_string(),
        subnets: g
            .subnets()
            .iter()
            .filter_map(|s| s.subnet_identifier())
            .map(|s| Ref::Id(s.to_string()))
            .collect(),
    }
}

async fn describe(client: &aws_sdk_rds::Client, name: &str) -> Result<SdkGroup, Error> {
    let out = client
        .describe_db_subnet_groups()
        .db_subnet_group_name(name)
        .send()
        .await
        .op_or_gone("DescribeDBSubnetGroups", |e| e.is_db_subnet_group_not_found_fault())?;
    out.db_subnet_groups()
        .first()
        .cloned()
        .ok_or_else(|| Error::InvalidState(format!("DescribeDBSubnetGroups returned no group {name}")))
}

fn subnet_ids(ctx: &Ctx<'_>, spec: &DbSubnetGroupSpec) -> Result<Vec<String>, Error> {
    spec.subnets.iter().map(|s| ctx.id(s)).collect()
}

/// Sets the description and the whole subnet list (the call replaces it).
async fn modify(ctx: &Ctx<'_>, region: &str, spec: &DbSubnetGroupSpec) -> Result<(), Error> {
    rds::client(ctx.clients, region)
        .modify_db_subnet_group()
        .db_subnet_group_name(&spec.name)
        .db_subnet_group_description(&spec.description)
        .set_subnet_ids(Some(subnet_ids(ctx, spec)?))
        .send()
        .await
        .op("ModifyDBSubnetGroup")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subnet(x: &str) -> Ref {
        Ref::Addr(Address::new("us-east-1", "network", "subnet", &format!("private-{x}")))
    }

    fn spec(subnets: Vec<Ref>) -> Spec {
        Spec::DbSubnetGroup(DbSubnetGroupSpec {
            name: "webapp-test-db".into(),
            description: "d".into(),
            subnets,
        })
    }

    fn planned(desired: Spec, observed: Spec) -> Diff {
        let (mut a, mut b) = (desired, observed);
        a.normalize();
        b.normalize();
        a.diff(&b)
    }

    #[test]
    fn subnet_order_is_not_drift_and_a_new_subnet_is_modified_in_place() {
        assert!(
            planned(spec(vec![subnet("a"), subnet("b")]), spec(vec![subnet("b"), subnet("a")])).is_empty()
        );
        let d =
            planned(spec(vec![subnet("a"), subnet("b"), subnet("c")]), spec(vec![subnet("b"), subnet("a")]));
        assert!(d.has("subnets") && !d.replace(), "{d:?}");
    }

    #[test]
    fn its_subnets_are_pointers_not_parents() {
        let s = spec(vec![subnet("a")]);
        assert!(!s.holds(subnet("a").addr().unwrap()));
        assert!(s.parent_deps().is_empty());
        assert_eq!(s.deps(), vec![subnet("a").addr().unwrap().clone()], "created after its subnets");
    }
}
