//! DB replica: a cross-region read replica of the primary in each secondary region, for
//! disaster recovery, at `<secondary>/database/db-replica/replica`. A kind of its own rather
//! than the primary's kind with an optional source: it is made by another call
//! (`CreateDBInstanceReadReplica`, in its own region), takes no storage, backup, master user or
//! database name settings (it copies the primary's), never gets a final snapshot (RDS refuses
//! one for a replica), and its spec says only what the deployer controls of it.
//!
//! Its reference to the primary is its parent: replicas are deleted before the primary, and a
//! replaced primary means new replicas. The primary's physical ID is its ARN, which is what
//! `SourceDBInstanceIdentifier` must be for a replica in another region. `deployer failover`
//! promotes a replica (`src/failover/database.rs`) and tags it as its region's `db-instance/primary`, which
//! the configuration with that region as the primary adopts in place. A replica promoted by hand
//! and left tagged as a replica has no source any more: the plan then wants a replacement,
//! which it refuses unless `database.allow_replacement = true`.
//!
//! # Encryption across regions: `KmsKeyId`, `PreSignedUrl` and `SourceRegion`
//!
//! An encrypted replica in another region needs `KmsKeyId`, a key *of the replica's region*
//! (KMS keys do not cross regions): the configured key for that region, else the AWS-managed
//! `alias/aws/rds` of that region. moto 5.2.5 does not check this; the deployer always sends it,
//! and the emulator extension refuses a cross-region replica of an encrypted source without it,
//! as AWS does.
//!
//! `PreSignedUrl`: the AWS SDK for Rust (aws-sdk-rds 1.159) has **no `SourceRegion`
//! parameter and no presigning customization** for this operation (boto3 and the CLI generate
//! the URL from `SourceRegion`; the Rust SDK's input has only `pre_signed_url`, which it never
//! fills in). The API reference shipped with that SDK says `PreSignedUrl` "applies only to AWS
//! GovCloud (US) Regions and China AWS Regions. It's ignored in other AWS Regions": in the
//! commercial regions RDS makes the cross-region request itself. So the deployer sends none, and
//! refuses to create a replica in a GovCloud or China region (where it would need one: a SigV4
//! query-string-signed `CreateDBInstanceReadReplica` URL for the source region carrying
//! `DestinationRegion`, `KmsKeyId` and `SourceDBInstanceIdentifier`) until that is built.
//! moto does not check `PreSignedUrl` at all.
//!
//! # Parameter group
//!
//! For PostgreSQL, `CreateDBInstanceReadReplica` takes no `DBParameterGroupName` across regions
//! (RDS accepts one there only for MySQL, Oracle, Db2 and Multi-AZ cluster replicas) and gives
//! the replica its engine's default group. So the new replica is then moved to the region's
//! group (`ModifyDBInstance`, applied at once) and rebooted if RDS says the group waits for a
//! reboot; it serves no one yet, so the reboot costs nothing.

use aws_sdk_rds::types::DbInstance as SdkInstance;
use serde::Serialize;

use super::db_instance::{self, DbLive, ALLOW_REPLACEMENT_KEY};
use super::{
    rds, Create, Ctx, DataLoss, Delete, Diff, Found, Kind, ObserveCtx, Readiness, Replace, Role, Scope, Tags,
    Update,
};
use crate::cloud::{AwsResultExt, Error};
use crate::spec::{Address, Ref};

/// The AWS-managed RDS key of the replica's region, used when the configuration names none.
pub const AWS_MANAGED_KEY: &str = "alias/aws/rds";

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DbReplicaSpec {
    /// `DBInstanceIdentifier` (in the replica's region).
    pub identifier: String,
    /// The primary it replicates; `None` when observed after a promotion.
    pub source: Option<Ref>,
    pub instance_class: String,
    /// A KMS key of the replica's region; `None` for the AWS-managed key, and then not compared.
    pub kms_key: Option<String>,
    pub copy_tags_to_snapshot: bool,
    pub deletion_protection: bool,
    pub performance_insights: bool,
    pub subnet_group: Ref,
    pub parameter_group: Ref,
    /// Sorted once normalised.
    pub security_groups: Vec<Ref>,
    /// As for the primary: how changes are applied, never compared.
    #[serde(skip)]
    pub apply_immediately: bool,
    #[serde(skip)]
    pub allow_replacement: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live: Option<DbLive>,
}

pub struct DbReplica;

impl Kind for DbReplica {
    type Spec = DbReplicaSpec;
    const NAME: &'static str = "db-replica";
    const SCOPE: Scope = Scope::Regional;
    const TAGGED: bool = true;
    const PARTS: &'static [&'static str] = &["database"];
    const ACTIONS: &'static [&'static str] = &[
        "rds:ModifyDBInstance",
        "rds:CreateDBInstanceReadReplica",
        "rds:RebootDBInstance",
        "rds:ListTagsForResource",
        "rds:AddTagsToResource",
    ];

    fn refs(spec: &mut DbReplicaSpec) -> Vec<(Role, &mut Ref)> {
        let mut refs: Vec<(Role, &mut Ref)> = spec.source.iter_mut().map(|s| (Role::Parent, s)).collect();
        refs.push((Role::Holds, &mut spec.subnet_group));
        refs.push((Role::Holds, &mut spec.parameter_group));
        refs.extend(spec.security_groups.iter_mut().map(|g| (Role::Holds, g)));
        refs
    }
    fn normalize(spec: &mut DbReplicaSpec) {
        spec.security_groups.sort();
        spec.security_groups.dedup();
    }
    fn diff(desired: &DbReplicaSpec, observed: &DbReplicaSpec, d: &mut Diff) {
        diff_fields!(d, desired, observed, identifier: Yes, source: Yes);
        db_instance::diff_kms_key(&desired.kms_key, &observed.kms_key, d);
        diff_fields!(d, desired, observed,
            instance_class: No, copy_tags_to_snapshot: No, deletion_protection: No, performance_insights: No,
            subnet_group: No, parameter_group: No, security_groups: No,
        );
    }
    fn readiness(observed: &DbReplicaSpec, state: &str) -> Readiness {
        db_instance::readiness(observed.live.as_ref(), state)
    }
    fn conflicts(a: &DbReplicaSpec, b: &DbReplicaSpec) -> bool {
        a.identifier == b.identifier
    }
    fn data_loss(desired: &DbReplicaSpec) -> Option<DataLoss> {
        Some(DataLoss {
            what: format!(
                "read replica {} (rebuilt from the primary, which takes hours, without disaster recovery meanwhile)",
                desired.identifier
            ),
            allow_key: ALLOW_REPLACEMENT_KEY,
            allowed: desired.allow_replacement,
        })
    }
    async fn observe(ctx: &ObserveCtx<'_>) -> Result<Vec<Found>, Error> {
        db_instance::observe_kind(ctx, Self::NAME, |i| super::Spec::DbReplica(spec_of(i))).await
    }
    /// Creates the replica in its own region from the primary's ARN, tagged in the same request,
    /// waits until it is available (hours for a large primary: bounded by `database.wait_timeout`),
    /// then moves it to the region's parameter group.
    async fn create(ctx: &Ctx<'_>, new: Create<'_, DbReplicaSpec>) -> Result<String, Error> {
        let Create { address, spec, tags } = new;
        let region = address.region();
        if needs_presigned_url(region) {
            return Err(Error::InvalidState(format!(
                "{address}: an encrypted cross-region replica in {region} needs a PreSignedUrl, which this deployer does not generate yet (the AWS SDK for Rust has no SourceRegion); create it by hand with `aws rds create-db-instance-read-replica --source-region …`"
            )));
        }
        let source = spec
            .source
            .as_ref()
            .ok_or_else(|| Error::InvalidState(format!("{address} has no source database to replicate")))?;
        let source_arn = ctx.id(source)?;
        let client = rds::client(ctx.clients, region);
        let security_groups =
            spec.security_groups.iter().map(|g| ctx.id(g)).collect::<Result<Vec<_>, _>>()?;
        let created = client
            .create_db_instance_read_replica()
            .db_instance_identifier(&spec.identifier)
            .source_db_instance_identifier(&source_arn)
            .db_instance_class(&spec.instance_class)
            .kms_key_id(spec.kms_key.as_deref().unwrap_or(AWS_MANAGED_KEY))
            .db_subnet_group_name(rds::name_of(&ctx.id(&spec.subnet_group)?))
            .set_vpc_security_group_ids(Some(security_groups))
            .copy_tags_to_snapshot(spec.copy_tags_to_snapshot)
            .deletion_protection(spec.deletion_protection)
            .enable_performance_insights(spec.performance_insights)
            .publicly_accessible(false)
            .set_tags(Some(rds::sdk_tags(tags)))
            .send()
            .await
            .op_unless("CreateDBInstanceReadReplica", |e| e.is_db_instance_already_exists_fault())?;
        let arn = match created {
            Some(out) => out.db_instance().and_then(|i| i.db_instance_arn()).map(str::to_string),
            None => db_instance::adopt(&client, address, &spec.identifier).await?,
        };
        let instance = db_instance::wait_usable(ctx, region, &spec.identifier, DbReplica::NAME).await?;
        let arn = arn.or_else(|| instance.db_instance_arn().map(str::to_string)).ok_or_else(|| {
            Error::InvalidState(format!("RDS reported no ARN for replica {}", spec.identifier))
        })?;
        use_parameter_group(ctx, region, spec, &instance).await?;
        for (attr, value) in db_instance::attrs_of(&instance) {
            ctx.ids.set_attr(address, attr, value);
        }
        Ok(arn)
    }
    /// One `ModifyDBInstance` with what differs, then waits until the replica is usable again. A
    /// new parameter group on an existing replica applies after its next reboot, which the deployer
    /// leaves to the operator.
    async fn update(ctx: &Ctx<'_>, change: Update<'_, DbReplicaSpec>) -> Result<(), Error> {
        let Update { address, desired, diff, .. } = change;
        let region = address.region();
        let client = rds::client(ctx.clients, region);
        let mut m = client
            .modify_db_instance()
            .db_instance_identifier(&desired.identifier)
            .apply_immediately(desired.apply_immediately);
        let mut any = false;
        let mut set = |field: &str| {
            let yes = diff.has(field);
            any |= yes;
            yes
        };
        if set("instance_class") {
            m = m.db_instance_class(&desired.instance_class);
        }
        m = db_instance::modify_shared(
            ctx,
            m,
            &mut set,
            db_instance::Shared {
                copy_tags_to_snapshot: desired.copy_tags_to_snapshot,
                deletion_protection: desired.deletion_protection,
                performance_insights: desired.performance_insights,
                subnet_group: &desired.subnet_group,
                parameter_group: &desired.parameter_group,
                security_groups: &desired.security_groups,
            },
        )?;
        if !any {
            return Ok(());
        }
        m.send().await.op("ModifyDBInstance")?;
        db_instance::wait_usable(ctx, region, &desired.identifier, DbReplica::NAME).await?;
        Ok(())
    }
    /// Never with a final snapshot: RDS refuses one for a read replica.
    async fn delete(ctx: &Ctx<'_>, gone: Delete<'_, DbReplicaSpec>) -> Result<(), Error> {
        let Delete { address, id, observed } = gone;
        db_instance::delete_instance(ctx, address, id, observed.deletion_protection, None).await
    }
    async fn wait_ready(ctx: &Ctx<'_>, address: &Address, id: &str) -> Result<(), Error> {
        db_instance::wait_usable(ctx, address.region(), db_instance::identifier_of(id), Self::NAME)
            .await
            .map(|_| ())
    }
    async fn repair_tags(ctx: &Ctx<'_>, address: &Address, id: &str, missing: &Tags) -> Result<(), Error> {
        rds::add_tags(&rds::client(ctx.clients, address.region()), id, missing).await
    }
}

/// The replica's spec as RDS reports it; a class change held for the maintenance window is laid
/// over it (see `db_instance.rs`).
pub(crate) fn spec_of(i: &SdkInstance) -> DbReplicaSpec {
    let mut pending = Vec::new();
    let mut instance_class = i.db_instance_class().unwrap_or_default().to_string();
    if let Some(v) = i.pending_modified_values().and_then(|p| p.db_instance_class()) {
        instance_class = v.to_string();
        pending.push(format!("instance_class={v}"));
    }
    DbReplicaSpec {
        identifier: i.db_instance_identifier().unwrap_or_default().to_string(),
        source: i
            .read_replica_source_db_instance_identifier()
            .filter(|s| !s.is_empty())
            .map(|s| Ref::Id(s.to_string())),
        instance_class,
        kms_key: i.kms_key_id().map(str::to_string),
        copy_tags_to_snapshot: i.copy_tags_to_snapshot().unwrap_or(false),
        deletion_protection: i.deletion_protection().unwrap_or(false),
        performance_insights: i.performance_insights_enabled().unwrap_or(false),
        subnet_group: db_instance::subnet_group_of(i),
        parameter_group: db_instance::parameter_group_of(i),
        security_groups: db_instance::security_groups_of(i),
        apply_immediately: false,
        allow_replacement: false,
        live: Some(db_instance::live_of(i, pending)),
    }
}

/// GovCloud and China regions need a presigned URL this deployer does not build (module docs).
fn needs_presigned_url(region: &str) -> bool {
    region.starts_with("us-gov-") || region.starts_with("cn-")
}

/// Moves a new replica to the region's parameter group and reboots it if RDS says the group
/// applies only after a reboot.
async fn use_parameter_group(
    ctx: &Ctx<'_>,
    region: &str,
    spec: &DbReplicaSpec,
    instance: &SdkInstance,
) -> Result<(), Error> {
    let group = rds::name_of(&ctx.id(&spec.parameter_group)?).to_string();
    let current = instance.db_parameter_groups().first().and_then(|g| g.db_parameter_group_name());
    let client = rds::client(ctx.clients, region);
    let instance = if current != Some(group.as_str()) {
        client
            .modify_db_instance()
            .db_instance_identifier(&spec.identifier)
            .db_parameter_group_name(&group)
            .apply_immediately(true)
            .send()
            .await
            .op("ModifyDBInstance")?;
        db_instance::wait_usable(ctx, region, &spec.identifier, DbReplica::NAME).await?
    } else {
        instance.clone()
    };
    let pending_reboot =
        instance.db_parameter_groups().iter().any(|g| g.parameter_apply_status() == Some("pending-reboot"));
    if pending_reboot {
        client
            .reboot_db_instance()
            .db_instance_identifier(&spec.identifier)
            .send()
            .await
            .op("RebootDBInstance")?;
        db_instance::wait_usable(ctx, region, &spec.identifier, DbReplica::NAME).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Spec;

    fn spec() -> DbReplicaSpec {
        let a = |kind: &str, name: &str| Ref::Addr(Address::new("us-east-2", "database", kind, name));
        DbReplicaSpec {
            identifier: "webapp-test-us-east-2".into(),
            source: Some(Ref::Addr(Address::new("us-east-1", "database", "db-instance", "primary"))),
            instance_class: "db.t4g.medium".into(),
            kms_key: None,
            copy_tags_to_snapshot: true,
            deletion_protection: true,
            performance_insights: false,
            subnet_group: a("db-subnet-group", "main"),
            parameter_group: a("db-parameter-group", "main"),
            security_groups: vec![a("security-group", "db")],
            apply_immediately: false,
            allow_replacement: false,
            live: None,
        }
    }

    #[test]
    fn the_primary_is_its_parent() {
        let s = Spec::DbReplica(spec());
        assert_eq!(s.parent_deps(), vec![Address::new("us-east-1", "database", "db-instance", "primary")]);
        assert!(s.holds(&Address::new("us-east-2", "database", "security-group", "db")));
    }

    #[test]
    fn a_promoted_replica_must_be_replaced_and_a_new_class_is_in_place() {
        let mut promoted = spec();
        promoted.source = None;
        let d = Spec::DbReplica(spec()).diff(&Spec::DbReplica(promoted));
        assert!(d.has("source") && d.replace());
        let mut smaller = spec();
        smaller.instance_class = "db.t4g.small".into();
        smaller.kms_key = Some("arn:aws:kms:us-east-2:123456789012:key/abc".into());
        let d = Spec::DbReplica(spec()).diff(&Spec::DbReplica(smaller));
        assert!(d.has("instance_class") && !d.replace(), "{d:?}");
    }

    #[test]
    fn presigned_urls_are_needed_only_outside_the_commercial_partition() {
        assert!(!needs_presigned_url("us-east-2"));
        assert!(needs_presigned_url("us-gov-west-1") && needs_presigned_url("cn-north-1"));
    }
}
