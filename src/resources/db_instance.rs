//! DB instance: the environment's PostgreSQL primary, in the primary region, at
//! `<primary>/database/db-instance/primary`. Multi-AZ, encrypted (the AWS-managed key or a KMS
//! key from the configuration), gp3 storage with autoscaling, automated backups, deletion
//! protection, and a master password from the deployer's own secret (`db_secret.rs`, replicated
//! to every region), sent once as `MasterUserPassword` and never printed. RDS's own managed
//! secret (`ManageMasterUserPassword`) is not used: RDS refuses a read replica of a source whose
//! password it manages. A primary made by an older version with one is moved to the deployer's
//! secret in place (`ModifyDBInstance` with `ManageMasterUserPassword=false` and the secret's
//! password), before its replicas are created. Its read replicas are `db_replica.rs`; what
//! both share lives here.
//!
//! Its physical ID is its ARN, so a replica's reference to it resolves to what
//! `CreateDBInstanceReadReplica` needs in another region.
//!
//! Discovery: one paginated `DescribeDBInstances` per region, shared by this kind and
//! `db-replica`; it returns each instance's `TagList`, and the environment's are picked
//! client-side (RDS has no tag filter).
//!
//! Changes: class, storage, Multi-AZ, backup retention and windows, deletion protection,
//! Performance Insights, groups: in place with `ModifyDBInstance`, `ApplyImmediately` as
//! configured. A change RDS holds for the maintenance window (`PendingModifiedValues`) is laid
//! over the observed spec: it is what the instance will be, so it is not drift, and the instance
//! reads as busy (`pending-maintenance: …`): `plan` and `drift` show it in progress, `up` does
//! not send it again. Engine, encryption, KMS key, identifier, master user and database name
//! cannot change without a new database: those force a replacement, which the plan refuses
//! unless `database.allow_replacement = true` (see [`super::DataLoss`]).
//!
//! Waits are bounded by the kind's own timeout (`database.wait_timeout`): a Multi-AZ primary
//! takes 15–40 minutes to create on AWS.

use std::sync::Arc;
use std::time::SystemTime;

use aws_sdk_rds::types::DbInstance as SdkInstance;
use serde::Serialize;

use super::{
    rds, Create, Ctx, DataLoss, Delete, Diff, Found, Kind, ObserveCtx, Readiness, Replace, Role, Scope, Spec,
    Tags, Update,
};
use crate::cloud::{wait_until, AwsResultExt, Error, Waited};
use crate::spec::{Address, Ref};

/// The configuration key that allows replacing a database.
pub const ALLOW_REPLACEMENT_KEY: &str = "database.allow_replacement";

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DbInstanceSpec {
    /// `DBInstanceIdentifier`.
    pub identifier: String,
    /// `postgres`.
    pub engine: String,
    /// `16.4`. A newer minor version than this (AWS's automatic minor upgrades) is not drift.
    pub engine_version: String,
    pub instance_class: String,
    pub storage_type: String,
    /// A floor: storage autoscaling grows it, and RDS never shrinks storage.
    pub allocated_storage_gib: i32,
    /// The storage autoscaling limit; `None` turns autoscaling off.
    pub max_allocated_storage_gib: Option<i32>,
    pub multi_az: bool,
    pub storage_encrypted: bool,
    /// The KMS key (ARN); `None` for the AWS-managed key (`alias/aws/rds`), and then not compared
    /// (RDS reports the key's ARN, which the deployer cannot tell from a customer key without KMS).
    pub kms_key: Option<String>,
    /// The master password lives in a secret RDS manages (`ManageMasterUserPassword`): only
    /// ever observed, from older versions; the desired primary takes its password from
    /// `master_secret`.
    pub manage_master_user_password: bool,
    /// The deployer's secret holding the master password; `None` when observed (RDS does not
    /// know where a password came from), and then not compared.
    pub master_secret: Option<Ref>,
    pub master_username: String,
    pub database_name: String,
    /// `0` when observed before RDS reports it (while creating): then not compared.
    pub port: i32,
    pub backup_retention_days: i32,
    /// `hh24:mi-hh24:mi`, UTC.
    pub backup_window: String,
    /// `ddd:hh24:mi-ddd:hh24:mi`, UTC; lowercase once normalised.
    pub maintenance_window: String,
    pub copy_tags_to_snapshot: bool,
    pub deletion_protection: bool,
    pub performance_insights: bool,
    pub subnet_group: Ref,
    pub parameter_group: Ref,
    /// Sorted once normalised.
    pub security_groups: Vec<Ref>,
    /// How changes are applied (`database.apply_immediately`), not a property of the instance:
    /// never compared; observed specs carry `false`.
    #[serde(skip)]
    pub apply_immediately: bool,
    /// Whether a replacement may go ahead (`database.allow_replacement`): not compared either.
    #[serde(skip)]
    pub allow_replacement: bool,
    /// What AWS reports beyond the configuration; `None` in desired specs. Never compared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live: Option<DbLive>,
}

/// What a running instance reports that is not configuration: where to connect, where its
/// master secret is (an ARN, not the secret), and what waits for the maintenance window.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct DbLive {
    pub endpoint: Option<String>,
    pub port: Option<i32>,
    /// The Secrets Manager secret RDS keeps the master password in.
    pub master_secret_arn: Option<String>,
    /// Changes RDS holds for the next maintenance window, as `field=value`.
    pub pending: Vec<String>,
}

/// Where the service tier connects: the primary's endpoint and its master secret's ARN.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Connection {
    pub endpoint: String,
    pub port: i32,
    pub master_secret_arn: Option<String>,
}

/// The connection details of an observed primary (or replica), once RDS reports an endpoint.
pub fn connection(found: &Found) -> Option<Connection> {
    let live = match &found.spec {
        Spec::DbInstance(s) => s.live.as_ref(),
        Spec::DbReplica(s) => s.live.as_ref(),
        _ => None,
    }?;
    Some(Connection {
        endpoint: live.endpoint.clone()?,
        port: live.port?,
        master_secret_arn: live.master_secret_arn.clone(),
    })
}

/// States in which RDS is working on the instance: the plan waits instead of reporting drift.
/// From the RDS User Guide's "Viewing Amazon RDS DB instance status"; `deleting` is included so
/// that a database being deleted is waited for, not modified.
pub const BUSY_STATES: &[&str] = &[
    "backing-up",
    "configuring-enhanced-monitoring",
    "configuring-iam-database-auth",
    "configuring-log-exports",
    "converting-to-vpc",
    "creating",
    "deleting",
    "maintenance",
    "modifying",
    "moving-to-vpc",
    "rebooting",
    "renaming",
    "resetting-master-credentials",
    "starting",
    "stopping",
    "storage-config-upgrade",
    "storage-initialization",
    "storage-optimization",
    "upgrading",
];

/// States in which the database serves and accepts changes: a wait ends there.
/// `storage-optimization` can last many hours after a storage change while the database works
/// normally, so a wait does not hold out for it.
pub(crate) const USABLE_STATES: &[&str] = &["available", "storage-optimization"];

/// States no wait will get out of: an operator has to act.
pub(crate) const STUCK_STATES: &[&str] = &[
    "failed",
    "inaccessible-encryption-credentials",
    "inaccessible-encryption-credentials-recoverable",
    "incompatible-network",
    "incompatible-option-group",
    "incompatible-parameters",
    "incompatible-restore",
    "insufficient-capacity",
    "restore-error",
    "stopped",
    "storage-full",
];

/// Busy while RDS works on it, or while it holds changes for the maintenance window.
pub fn readiness(live: Option<&DbLive>, state: &str) -> Readiness {
    if BUSY_STATES.contains(&state) {
        return Readiness::Busy(state.to_string());
    }
    match live {
        Some(l) if !l.pending.is_empty() => {
            Readiness::Busy(format!("pending-maintenance: {}", l.pending.join(", ")))
        }
        _ => Readiness::Ready,
    }
}

/// `16.4` → `[16, 4]`.
fn version_parts(v: &str) -> Vec<u64> {
    v.split('.').map(|p| p.parse().unwrap_or(0)).collect()
}

/// The major version (`16` of `16.4`).
pub fn major_version(v: &str) -> &str {
    v.split('.').next().unwrap_or(v)
}

/// Whether the observed engine version falls short of the desired one: another major version,
/// or an older minor. A newer minor is AWS's automatic minor upgrade, which RDS cannot undo.
pub fn version_differs(desired: &str, observed: &str) -> bool {
    let (want, have) = (version_parts(desired), version_parts(observed));
    if want.first() != have.first() {
        return true;
    }
    have[..have.len().min(want.len())] < want[..]
}

fn is_alias(key: &str) -> bool {
    key.starts_with("alias/") || key.contains(":alias/")
}

/// Whether the observed key is the desired one: the same ARN, or the ARN of the desired key ID.
fn same_key(desired: &str, observed: &str) -> bool {
    desired == observed || observed.ends_with(&format!("key/{desired}"))
}

/// The KMS key forces a replacement when the configuration names a key (not an alias, which
/// only KMS could resolve) and the instance has another.
pub fn diff_kms_key(desired: &Option<String>, observed: &Option<String>, d: &mut Diff) {
    if let Some(want) = desired.as_deref().filter(|k| !is_alias(k)) {
        if !observed.as_deref().is_some_and(|have| same_key(want, have)) {
            d.field("kms_key", desired, observed, Replace::Yes);
        }
    }
}

pub struct DbInstance;

impl Kind for DbInstance {
    type Spec = DbInstanceSpec;
    const NAME: &'static str = "db-instance";
    const SCOPE: Scope = Scope::Regional;
    const TAGGED: bool = true;
    const PARTS: &'static [&'static str] = &["database"];
    const ACTIONS: &'static [&'static str] = &[
        "rds:DescribeDBInstances",
        "rds:CreateDBInstance",
        "rds:ModifyDBInstance",
        "rds:DeleteDBInstance",
        "rds:ListTagsForResource",
        "rds:AddTagsToResource",
    ];

    fn refs(spec: &mut DbInstanceSpec) -> Vec<(Role, &mut Ref)> {
        let mut refs = vec![(Role::Holds, &mut spec.subnet_group), (Role::Holds, &mut spec.parameter_group)];
        refs.extend(spec.master_secret.iter_mut().map(|s| (Role::Holds, s)));
        refs.extend(spec.security_groups.iter_mut().map(|g| (Role::Holds, g)));
        refs
    }
    fn normalize(spec: &mut DbInstanceSpec) {
        spec.engine = spec.engine.to_ascii_lowercase();
        spec.storage_type = spec.storage_type.to_ascii_lowercase();
        spec.maintenance_window = spec.maintenance_window.to_ascii_lowercase();
        // RDS reports no limit when autoscaling is off; a limit at or below the storage is no limit.
        if spec.max_allocated_storage_gib.is_some_and(|m| m <= spec.allocated_storage_gib) {
            spec.max_allocated_storage_gib = None;
        }
        spec.security_groups.sort();
        spec.security_groups.dedup();
    }
    fn diff(desired: &DbInstanceSpec, observed: &DbInstanceSpec, d: &mut Diff) {
        diff_fields!(d, desired, observed, identifier: Yes, engine: Yes, storage_encrypted: Yes);
        diff_kms_key(&desired.kms_key, &observed.kms_key, d);
        diff_fields!(d, desired, observed, master_username: Yes, database_name: Yes);
        if version_differs(&desired.engine_version, &observed.engine_version) {
            d.field("engine_version", &desired.engine_version, &observed.engine_version, Replace::No);
        }
        diff_fields!(d, desired, observed, instance_class: No, storage_type: No);
        if observed.allocated_storage_gib < desired.allocated_storage_gib {
            d.field(
                "allocated_storage_gib",
                &desired.allocated_storage_gib,
                &observed.allocated_storage_gib,
                Replace::No,
            );
        }
        diff_fields!(d, desired, observed,
            max_allocated_storage_gib: No, multi_az: No, manage_master_user_password: No,
        );
        if observed.manage_master_user_password && !desired.manage_master_user_password {
            d.note(
                "the master password moves from RDS's managed secret to the deployer's replicated secret (ModifyDBInstance ManageMasterUserPassword=false with that secret's password, applied at once; RDS deletes its own secret), before any replica is created: RDS refuses a read replica of a source whose password it manages",
            );
        }
        if observed.port != 0 {
            d.field("port", &desired.port, &observed.port, Replace::No);
        }
        diff_fields!(d, desired, observed,
            backup_retention_days: No, backup_window: No, maintenance_window: No, copy_tags_to_snapshot: No,
            deletion_protection: No, performance_insights: No, subnet_group: No, parameter_group: No,
            security_groups: No,
        );
    }
    fn readiness(observed: &DbInstanceSpec, state: &str) -> Readiness {
        readiness(observed.live.as_ref(), state)
    }
    fn conflicts(a: &DbInstanceSpec, b: &DbInstanceSpec) -> bool {
        // Identifiers are unique per region.
        a.identifier == b.identifier
    }
    fn data_loss(desired: &DbInstanceSpec) -> Option<DataLoss> {
        Some(DataLoss {
            what: format!(
                "database {} and every row in it (its automated backups go with it)",
                desired.identifier
            ),
            allow_key: ALLOW_REPLACEMENT_KEY,
            allowed: desired.allow_replacement,
        })
    }
    async fn observe(ctx: &ObserveCtx<'_>) -> Result<Vec<Found>, Error> {
        observe_kind(ctx, Self::NAME, |i| Spec::DbInstance(spec_of(i))).await
    }
    /// Creates the primary, tagged in the same request, and waits until it is available. RDS takes
    /// no idempotency token: a create answered "already exists" adopts the instance of that
    /// identifier if it carries this address's tag (an earlier run created it and was interrupted).
    async fn create(ctx: &Ctx<'_>, new: Create<'_, DbInstanceSpec>) -> Result<String, Error> {
        let Create { address, spec, tags } = new;
        let region = address.region();
        let client = rds::client(ctx.clients, region);
        let security_groups =
            spec.security_groups.iter().map(|g| ctx.id(g)).collect::<Result<Vec<_>, _>>()?;
        let secret = spec.master_secret.as_ref().map(|s| ctx.id(s)).transpose()?;
        let password = match &secret {
            Some(arn) => Some(super::db_secret::read(ctx.clients, region, arn).await?.password),
            None => None,
        };
        let created = client
            .create_db_instance()
            .db_instance_identifier(&spec.identifier)
            .engine(&spec.engine)
            .engine_version(&spec.engine_version)
            .db_instance_class(&spec.instance_class)
            .storage_type(&spec.storage_type)
            .allocated_storage(spec.allocated_storage_gib)
            .set_max_allocated_storage(spec.max_allocated_storage_gib)
            .multi_az(spec.multi_az)
            .storage_encrypted(spec.storage_encrypted)
            .set_kms_key_id(spec.kms_key.clone())
            .set_manage_master_user_password(spec.manage_master_user_password.then_some(true))
            .set_master_user_password(password.as_ref().map(|p| p.expose().clone()))
            .master_username(&spec.master_username)
            .db_name(&spec.database_name)
            .port(spec.port)
            .backup_retention_period(spec.backup_retention_days)
            .preferred_backup_window(&spec.backup_window)
            .preferred_maintenance_window(&spec.maintenance_window)
            .copy_tags_to_snapshot(spec.copy_tags_to_snapshot)
            .deletion_protection(spec.deletion_protection)
            .enable_performance_insights(spec.performance_insights)
            .publicly_accessible(false)
            .db_subnet_group_name(rds::name_of(&ctx.id(&spec.subnet_group)?))
            .db_parameter_group_name(rds::name_of(&ctx.id(&spec.parameter_group)?))
            .set_vpc_security_group_ids(Some(security_groups))
            .set_tags(Some(rds::sdk_tags(tags)))
            .send()
            .await
            .op_unless("CreateDBInstance", |e| e.is_db_instance_already_exists_fault())?;
        let arn = match created {
            Some(out) => out.db_instance().and_then(|i| i.db_instance_arn()).map(str::to_string),
            None => adopt(&client, address, &spec.identifier).await?,
        };
        let instance = wait_usable(ctx, region, &spec.identifier, DbInstance::NAME).await?;
        for (attr, value) in attrs_of(&instance) {
            ctx.ids.set_attr(address, attr, value);
        }
        if let Some(arn) = &secret {
            write_connection(ctx, region, arn, &instance).await?;
        }
        arn.or_else(|| instance.db_instance_arn().map(str::to_string)).ok_or_else(|| {
            Error::InvalidState(format!("RDS reported no ARN for database {}", spec.identifier))
        })
    }
    /// Sends one `ModifyDBInstance` with what differs, then waits until the instance is usable
    /// again (with `ApplyImmediately` off, RDS holds most of it for the maintenance window and the
    /// instance stays available). A major version upgrade is refused: it needs a new parameter group
    /// family and a tested upgrade path (see docs/runbooks/database.md).
    async fn update(ctx: &Ctx<'_>, change: Update<'_, DbInstanceSpec>) -> Result<(), Error> {
        let Update { address, desired, observed, diff, .. } = change;
        if diff.has("engine_version")
            && major_version(&desired.engine_version) != major_version(&observed.engine_version)
        {
            return Err(Error::InvalidState(format!(
                "{address}: PostgreSQL {} → {} is a major version upgrade, which `deployer up` does not do; upgrade by hand (docs/runbooks/database.md) or keep database.engine_version at {}",
                observed.engine_version,
                desired.engine_version,
                major_version(&observed.engine_version)
            )));
        }
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
        if set("engine_version") {
            m = m.engine_version(&desired.engine_version);
        }
        if set("storage_type") {
            m = m.storage_type(&desired.storage_type);
        }
        if set("allocated_storage_gib") {
            m = m.allocated_storage(desired.allocated_storage_gib);
        }
        if set("max_allocated_storage_gib") {
            // RDS turns autoscaling off when the limit equals the storage.
            m = m.max_allocated_storage(
                desired
                    .max_allocated_storage_gib
                    .unwrap_or(desired.allocated_storage_gib.max(observed.allocated_storage_gib)),
            );
        }
        if set("multi_az") {
            m = m.multi_az(desired.multi_az);
        }
        let mut secret = None;
        if set("manage_master_user_password") {
            // Only ever from RDS's managed secret to the deployer's: RDS deletes its secret and
            // takes the password given (applied at once, whatever ApplyImmediately says).
            let arn = desired.master_secret.as_ref().map(|s| ctx.id(s)).transpose()?.ok_or_else(|| {
                Error::InvalidState(format!("{address}: no secret to take the master password from"))
            })?;
            let password = super::db_secret::read(ctx.clients, region, &arn).await?.password;
            m = m.manage_master_user_password(false).master_user_password(password.expose());
            secret = Some(arn);
        }
        if set("port") {
            m = m.db_port_number(desired.port);
        }
        if set("backup_retention_days") {
            m = m.backup_retention_period(desired.backup_retention_days);
        }
        if set("backup_window") {
            m = m.preferred_backup_window(&desired.backup_window);
        }
        if set("maintenance_window") {
            m = m.preferred_maintenance_window(&desired.maintenance_window);
        }
        m = modify_shared(
            ctx,
            m,
            &mut set,
            Shared {
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
        let instance = wait_usable(ctx, region, &desired.identifier, DbInstance::NAME).await?;
        if let Some(arn) = &secret {
            write_connection(ctx, region, arn, &instance).await?;
        }
        Ok(())
    }
    async fn delete(ctx: &Ctx<'_>, gone: Delete<'_, DbInstanceSpec>) -> Result<(), Error> {
        let Delete { address, id, observed } = gone;
        let snapshot = (!ctx.policy.skip_final_snapshot)
            .then(|| final_snapshot_name(&observed.identifier, SystemTime::now()));
        delete_instance(ctx, address, id, observed.deletion_protection, snapshot).await
    }
    async fn wait_ready(ctx: &Ctx<'_>, address: &Address, id: &str) -> Result<(), Error> {
        wait_usable(ctx, address.region(), identifier_of(id), Self::NAME).await.map(|_| ())
    }
    async fn repair_tags(ctx: &Ctx<'_>, address: &Address, id: &str, missing: &Tags) -> Result<(), Error> {
        rds::add_tags(&rds::client(ctx.clients, address.region()), id, missing).await
    }
}

/// `arn:aws:rds:us-east-1:123456789012:db:webapp-prod` → `webapp-prod`.
pub fn identifier_of(arn: &str) -> &str {
    rds::name_of(arn)
}

/// The name of the snapshot RDS takes as it deletes the instance:
/// `<identifier>-final-<YYYYMMDDHHMMSS>` (UTC).
pub fn final_snapshot_name(identifier: &str, at: SystemTime) -> String {
    format!("{identifier}-final-{}", utc_timestamp(at))
}

/// `YYYYMMDDHHMMSS` in UTC.
fn utc_timestamp(at: SystemTime) -> String {
    let secs = at.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}{month:02}{day:02}{:02}{:02}{:02}", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// The changes RDS holds for the maintenance window, laid over `spec` (they are what the
/// instance will be), as `field=value` for people.
fn overlay_pending(i: &SdkInstance, spec: &mut DbInstanceSpec) -> Vec<String> {
    let mut pending = Vec::new();
    let Some(p) = i.pending_modified_values() else { return pending };
    if let Some(v) = p.db_instance_class() {
        spec.instance_class = v.to_string();
        pending.push(format!("instance_class={v}"));
    }
    if let Some(v) = p.allocated_storage() {
        spec.allocated_storage_gib = v;
        pending.push(format!("allocated_storage_gib={v}"));
    }
    if let Some(v) = p.storage_type() {
        spec.storage_type = v.to_string();
        pending.push(format!("storage_type={v}"));
    }
    if let Some(v) = p.multi_az() {
        spec.multi_az = v;
        pending.push(format!("multi_az={v}"));
    }
    if let Some(v) = p.engine_version() {
        spec.engine_version = v.to_string();
        pending.push(format!("engine_version={v}"));
    }
    if let Some(v) = p.backup_retention_period() {
        spec.backup_retention_days = v;
        pending.push(format!("backup_retention_days={v}"));
    }
    if let Some(v) = p.port() {
        spec.port = v;
        pending.push(format!("port={v}"));
    }
    if let Some(v) = p.db_subnet_group_name() {
        spec.subnet_group = Ref::Id(rds::sibling_arn(i.db_instance_arn().unwrap_or_default(), "subgrp", v));
        pending.push(format!("subnet_group={v}"));
    }
    pending
}

/// The primary's spec as RDS reports it, pending changes laid over.
fn spec_of(i: &SdkInstance) -> DbInstanceSpec {
    let endpoint = i.endpoint();
    let port = endpoint.and_then(|e| e.port()).or(i.db_instance_port().filter(|p| *p > 0)).unwrap_or(0);
    let mut spec = DbInstanceSpec {
        identifier: i.db_instance_identifier().unwrap_or_default().to_string(),
        engine: i.engine().unwrap_or_default().to_string(),
        engine_version: i.engine_version().unwrap_or_default().to_string(),
        instance_class: i.db_instance_class().unwrap_or_default().to_string(),
        storage_type: i.storage_type().unwrap_or_default().to_string(),
        allocated_storage_gib: i.allocated_storage().unwrap_or(0),
        max_allocated_storage_gib: i.max_allocated_storage(),
        multi_az: i.multi_az().unwrap_or(false),
        storage_encrypted: i.storage_encrypted().unwrap_or(false),
        kms_key: i.kms_key_id().map(str::to_string),
        manage_master_user_password: i.master_user_secret().is_some(),
        master_secret: None,
        master_username: i.master_username().unwrap_or_default().to_string(),
        database_name: i.db_name().unwrap_or_default().to_string(),
        port,
        backup_retention_days: i.backup_retention_period().unwrap_or(0),
        backup_window: i.preferred_backup_window().unwrap_or_default().to_string(),
        maintenance_window: i.preferred_maintenance_window().unwrap_or_default().to_string(),
        copy_tags_to_snapshot: i.copy_tags_to_snapshot().unwrap_or(false),
        deletion_protection: i.deletion_protection().unwrap_or(false),
        performance_insights: i.performance_insights_enabled().unwrap_or(false),
        subnet_group: subnet_group_of(i),
        parameter_group: parameter_group_of(i),
        security_groups: security_groups_of(i),
        apply_immediately: false,
        allow_replacement: false,
        live: None,
    };
    let pending = overlay_pending(i, &mut spec);
    spec.live = Some(live_of(i, pending));
    spec
}

/// The instance's DB subnet group, by ARN (the group kinds' physical ID).
pub(crate) fn subnet_group_of(i: &SdkInstance) -> Ref {
    let group = i.db_subnet_group();
    let arn = group.and_then(|g| g.db_subnet_group_arn()).map(str::to_string).or_else(|| {
        let name = group.and_then(|g| g.db_subnet_group_name())?;
        Some(rds::sibling_arn(i.db_instance_arn()?, "subgrp", name))
    });
    Ref::Id(arn.unwrap_or_default())
}

/// The instance's parameter group, by ARN: RDS names it only, so the ARN is made from the
/// instance's.
pub(crate) fn parameter_group_of(i: &SdkInstance) -> Ref {
    let name = i.db_parameter_groups().first().and_then(|g| g.db_parameter_group_name()).unwrap_or_default();
    Ref::Id(
        i.db_instance_arn().map(|arn| rds::sibling_arn(arn, "pg", name)).unwrap_or_else(|| name.to_string()),
    )
}

pub(crate) fn security_groups_of(i: &SdkInstance) -> Vec<Ref> {
    i.vpc_security_groups()
        .iter()
        .filter_map(|g| g.vpc_security_group_id())
        .map(|g| Ref::Id(g.to_string()))
        .collect()
}

pub(crate) fn live_of(i: &SdkInstance, pending: Vec<String>) -> DbLive {
    DbLive {
        endpoint: i.endpoint().and_then(|e| e.address()).map(str::to_string),
        port: i.endpoint().and_then(|e| e.port()),
        master_secret_arn: i.master_user_secret().and_then(|s| s.secret_arn()).map(str::to_string),
        pending,
    }
}

/// The region's instances tagged for the environment, each with its address: one paginated
/// `DescribeDBInstances`, sent once however many kinds ask. An instance whose address names
/// neither database kind is skipped with a warning.
pub(crate) async fn observe_instances(
    ctx: &ObserveCtx<'_>,
) -> Result<Arc<Vec<(Address, SdkInstance)>>, Error> {
    ctx.shared("rds:DescribeDBInstances", || async {
        let client = rds::client(ctx.clients, &ctx.region);
        let instances: Vec<SdkInstance> = client
            .describe_db_instances()
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .op("DescribeDBInstances")?;
        let mut ours = Vec::new();
        for i in instances {
            if let Some(address) = address_if_ours(&i, ctx.app, ctx.env) {
                ours.push((address, i));
            }
        }
        Ok(ours)
    })
    .await
}

fn address_if_ours(i: &SdkInstance, app: &str, env: &str) -> Option<Address> {
    let tags = rds::tags_of(i.tag_list());
    let arn = i.db_instance_arn().filter(|_| rds::is_ours(&tags, app, env))?;
    let address = rds::address_of(&tags, arn)?;
    // (The replica kind reads its own from this list: `db_replica::DbReplica::NAME`.)
    if ![DbInstance::NAME, "db-replica"].contains(&address.kind()) {
        tracing::warn!("{arn} is tagged {address}, which is not a database kind; ignoring it");
        return None;
    }
    Some(address)
}

fn found_of(address: Address, i: &SdkInstance, spec: Spec) -> Found {
    Found {
        address,
        id: i.db_instance_arn().unwrap_or_default().to_string(),
        spec,
        tags: rds::tags_of(i.tag_list()),
        state: i.db_instance_status().unwrap_or_default().to_string(),
        attrs: attrs_of(i),
    }
}

/// What [`observe_instances`] found at addresses of `kind`, each with its spec as `spec_of`
/// reads it.
pub(crate) async fn observe_kind(
    ctx: &ObserveCtx<'_>,
    kind: &str,
    spec_of: fn(&SdkInstance) -> Spec,
) -> Result<Vec<Found>, Error> {
    Ok(observe_instances(ctx)
        .await?
        .iter()
        .filter(|(address, _)| address.kind() == kind)
        .map(|(address, i)| found_of(address.clone(), i, spec_of(i)))
        .collect())
}

/// Describes one instance by identifier; `None` once it is gone.
pub(crate) async fn describe(
    client: &aws_sdk_rds::Client,
    identifier: &str,
) -> Result<Option<SdkInstance>, Error> {
    match client
        .describe_db_instances()
        .db_instance_identifier(identifier)
        .send()
        .await
        .op_or_gone("DescribeDBInstances", |e| e.is_db_instance_not_found_fault())
    {
        Ok(out) => Ok(out.db_instances().first().cloned()),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// Waits until the instance serves and takes changes, bounded by `kind`'s timeout, saying
/// every 15 s what it waits for. A state no wait gets out of is an error naming it.
pub(crate) async fn wait_usable(
    ctx: &Ctx<'_>,
    region: &str,
    identifier: &str,
    kind: &str,
) -> Result<SdkInstance, Error> {
    let client = rds::client(ctx.clients, region);
    // Seen once it has been listed: a new instance can be unknown to reads for a while (eventual
    // consistency), but one that was listed and is gone was deleted under us.
    let seen = std::sync::atomic::AtomicBool::new(false);
    let seen = &seen;
    wait_until(&format!("database {identifier} in {region} to become available"), ctx.timeout_for(kind), || {
        let client = client.clone();
        async move {
            use std::sync::atomic::Ordering::Relaxed;
            let Some(i) = describe(&client, identifier).await? else {
                return if seen.load(Relaxed) {
                    Err(Error::InvalidState(format!(
                        "database {identifier} in {region} disappeared while waiting for it (deleted?); run the command again to re-create it"
                    )))
                } else {
                    Ok(Waited::NotYet("not visible yet".into()))
                };
            };
            seen.store(true, Relaxed);
            let status = i.db_instance_status().unwrap_or_default().to_string();
            if USABLE_STATES.contains(&status.as_str()) {
                Ok(Waited::Done(i))
            } else if STUCK_STATES.contains(&status.as_str()) {
                Err(Error::InvalidState(format!(
                    "database {identifier} in {region} is {status}: waiting will not help; see the RDS console or `aws rds describe-events --source-identifier {identifier} --source-type db-instance --region {region}`"
                )))
            } else {
                Ok(Waited::NotYet(status))
            }
        }
    })
    .await
}

/// The attribute holding a database's (or replica's) endpoint host name, for [`Ref::Attr`].
pub const ATTR_ENDPOINT: &str = "endpoint";
/// The attribute holding the ARN of the secret RDS keeps the master password in (the primary
/// only): the service tier's task definition reads the password from it with `valueFrom`.
pub const ATTR_MASTER_SECRET_ARN: &str = "master_secret_arn";

/// The attributes other resources may reference: the endpoint and the master secret's ARN,
/// once RDS reports them.
pub(crate) fn attrs_of(i: &SdkInstance) -> crate::resources::Attrs {
    let mut attrs = crate::resources::Attrs::new();
    if let Some(host) = i.endpoint().and_then(|e| e.address()) {
        attrs.insert(ATTR_ENDPOINT, host.to_string());
    }
    if let Some(arn) = i.master_user_secret().and_then(|s| s.secret_arn()) {
        attrs.insert(ATTR_MASTER_SECRET_ARN, arn.to_string());
    }
    attrs
}

/// The ARN of the existing instance `identifier`, if it is the one at `address`.
pub(crate) async fn adopt(
    client: &aws_sdk_rds::Client,
    address: &Address,
    identifier: &str,
) -> Result<Option<String>, Error> {
    let instance = describe(client, identifier).await?.ok_or_else(|| {
        Error::InvalidState(format!("database {identifier} was reported to exist but is not there"))
    })?;
    rds::ensure_ours(
        &rds::tags_of(instance.tag_list()),
        address,
        &format!("database {identifier}"),
        "database.identifier",
    )?;
    Ok(instance.db_instance_arn().map(str::to_string))
}

/// Writes where `instance` serves into the secret `arn` (its `host` and `port`), when it says
/// otherwise.
async fn write_connection(
    ctx: &Ctx<'_>,
    region: &str,
    arn: &str,
    instance: &SdkInstance,
) -> Result<(), Error> {
    let Some(host) = instance.endpoint().and_then(|e| e.address()) else { return Ok(()) };
    let port = instance.endpoint().and_then(|e| e.port()).and_then(|p| u16::try_from(p).ok()).unwrap_or(5432);
    super::db_secret::write_connection(ctx.clients, region, arn, host, port).await
}

/// What an operator must do to delete a protected database.
pub fn deletion_protection_refusal(address: &Address, identifier: &str) -> Error {
    Error::InvalidState(format!(
        "{address} ({identifier}) has deletion protection on, so it was not deleted. To delete it: set database.deletion_protection = false in the environment's config, run `deployer up` (which turns the protection off), then run `deployer destroy` again"
    ))
}

/// Deletes the instance and waits until RDS no longer lists it. Refuses while deletion
/// protection is on (naming the way out); takes the final snapshot `snapshot` if given. Already
/// deleting is waited for; already gone is success.
pub(crate) async fn delete_instance(
    ctx: &Ctx<'_>,
    address: &Address,
    id: &str,
    deletion_protection: bool,
    snapshot: Option<String>,
) -> Result<(), Error> {
    let identifier = identifier_of(id);
    if deletion_protection {
        return Err(deletion_protection_refusal(address, identifier));
    }
    let region = address.region();
    let client = rds::client(ctx.clients, region);
    let sent = client
        .delete_db_instance()
        .db_instance_identifier(identifier)
        .skip_final_snapshot(snapshot.is_none())
        .set_final_db_snapshot_identifier(snapshot.clone())
        .send()
        .await
        .op_or_gone("DeleteDBInstance", |e| e.is_db_instance_not_found_fault());
    match sent {
        Ok(_) => {
            if let Some(name) = &snapshot {
                tracing::info!("{address}: RDS takes the final snapshot {name} of {identifier} in {region} before deleting it");
            }
        }
        Err(e) if e.is_not_found() => return Ok(()),
        // The protection was turned on after the environment was read.
        Err(e) if e.code() == Some("InvalidParameterCombination") && e.to_string().contains("protect") => {
            return Err(deletion_protection_refusal(address, identifier));
        }
        // Already being deleted (by an earlier, interrupted run): wait for it below.
        Err(e) if e.code() == Some("InvalidDBInstanceState") => tracing::debug!("{identifier}: {e}"),
        Err(e) => return Err(e),
    }
    let kind = address.kind().to_string();
    wait_until(
        &format!("database {identifier} in {region} to be deleted"),
        ctx.timeout_for(&kind),
        || async {
            match describe(&client, identifier).await? {
                None => Ok(Waited::Done(())),
                Some(i) => Ok(Waited::NotYet(i.db_instance_status().unwrap_or("deleting").to_string())),
            }
        },
    )
    .await
}

/// The settings a primary and its replicas share, as `ModifyDBInstance` takes them.
pub(crate) struct Shared<'a> {
    pub copy_tags_to_snapshot: bool,
    pub deletion_protection: bool,
    pub performance_insights: bool,
    pub subnet_group: &'a Ref,
    pub parameter_group: &'a Ref,
    pub security_groups: &'a [Ref],
}

/// `m` with each shared setting that `set` says differs (`set` also notes that something does).
pub(crate) fn modify_shared(
    ctx: &Ctx<'_>,
    mut m: aws_sdk_rds::operation::modify_db_instance::builders::ModifyDBInstanceFluentBuilder,
    set: &mut dyn FnMut(&str) -> bool,
    s: Shared<'_>,
) -> Result<aws_sdk_rds::operation::modify_db_instance::builders::ModifyDBInstanceFluentBuilder, Error> {
    if set("copy_tags_to_snapshot") {
        m = m.copy_tags_to_snapshot(s.copy_tags_to_snapshot);
    }
    if set("deletion_protection") {
        m = m.deletion_protection(s.deletion_protection);
    }
    if set("performance_insights") {
        m = m.enable_performance_insights(s.performance_insights);
    }
    if set("subnet_group") {
        m = m.db_subnet_group_name(rds::name_of(&ctx.id(s.subnet_group)?));
    }
    if set("parameter_group") {
        m = m.db_parameter_group_name(rds::name_of(&ctx.id(s.parameter_group)?));
    }
    if set("security_groups") {
        let ids = s.security_groups.iter().map(|g| ctx.id(g)).collect::<Result<Vec<_>, _>>()?;
        m = m.set_vpc_security_group_ids(Some(ids));
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn spec() -> DbInstanceSpec {
        let a = |kind: &str, name: &str| Ref::Addr(Address::new("us-east-1", "database", kind, name));
        DbInstanceSpec {
            identifier: "webapp-test".into(),
            engine: "postgres".into(),
            engine_version: "16.4".into(),
            instance_class: "db.t4g.medium".into(),
            storage_type: "gp3".into(),
            allocated_storage_gib: 20,
            max_allocated_storage_gib: Some(100),
            multi_az: true,
            storage_encrypted: true,
            kms_key: None,
            manage_master_user_password: false,
            master_secret: None,
            master_username: "app".into(),
            database_name: "app".into(),
            port: 5432,
            backup_retention_days: 7,
            backup_window: "03:00-04:00".into(),
            maintenance_window: "sun:05:00-sun:06:00".into(),
            copy_tags_to_snapshot: true,
            deletion_protection: true,
            performance_insights: true,
            subnet_group: a("db-subnet-group", "main"),
            parameter_group: a("db-parameter-group", "main"),
            security_groups: vec![a("security-group", "db")],
            apply_immediately: false,
            allow_replacement: false,
            live: None,
        }
    }

    fn planned(desired: &DbInstanceSpec, observed: &DbInstanceSpec) -> Diff {
        let (mut a, mut b) = (Spec::DbInstance(desired.clone()), Spec::DbInstance(observed.clone()));
        a.normalize();
        b.normalize();
        a.diff(&b)
    }

    #[test]
    fn what_rds_reports_back_is_not_drift() {
        let mut observed = spec();
        observed.maintenance_window = "Sun:05:00-Sun:06:00".into();
        observed.kms_key = Some("arn:aws:kms:us-east-1:123456789012:key/1234".into());
        observed.engine_version = "16.6".into(); // an automatic minor upgrade
        observed.allocated_storage_gib = 35; // grown by storage autoscaling
        observed.apply_immediately = true;
        observed.live = Some(DbLive { endpoint: Some("x".into()), ..DbLive::default() });
        assert!(planned(&spec(), &observed).is_empty(), "{:?}", planned(&spec(), &observed));
    }

    #[test]
    fn in_place_changes_and_replacements() {
        let mut observed = spec();
        observed.backup_retention_days = 1;
        observed.instance_class = "db.t4g.small".into();
        observed.deletion_protection = false;
        let d = planned(&spec(), &observed);
        assert!(d.has("backup_retention_days") && d.has("instance_class") && d.has("deletion_protection"));
        assert!(!d.replace());

        for change in [
            |s: &mut DbInstanceSpec| s.engine = "mysql".into(),
            |s: &mut DbInstanceSpec| s.storage_encrypted = false,
            |s: &mut DbInstanceSpec| s.identifier = "other".into(),
            |s: &mut DbInstanceSpec| s.master_username = "root".into(),
        ] {
            let mut observed = spec();
            change(&mut observed);
            assert!(planned(&spec(), &observed).replace(), "{observed:?}");
        }
    }

    #[test]
    fn a_configured_kms_key_is_compared_by_arn_or_id_an_alias_is_not() {
        let mut desired = spec();
        desired.kms_key = Some("arn:aws:kms:us-east-1:123456789012:key/1234".into());
        let mut observed = spec();
        observed.kms_key = Some("arn:aws:kms:us-east-1:123456789012:key/1234".into());
        assert!(planned(&desired, &observed).is_empty());
        desired.kms_key = Some("1234".into());
        assert!(planned(&desired, &observed).is_empty());
        observed.kms_key = Some("arn:aws:kms:us-east-1:123456789012:key/9999".into());
        let d = planned(&desired, &observed);
        assert!(d.has("kms_key") && d.replace());
        desired.kms_key = Some("alias/my-key".into());
        assert!(planned(&desired, &observed).is_empty());
    }

    #[test]
    fn engine_versions() {
        assert!(!version_differs("16.4", "16.4"));
        assert!(!version_differs("16.4", "16.6"));
        assert!(!version_differs("16", "16.2"));
        assert!(version_differs("16.4", "16.3"));
        assert!(version_differs("16.4", "15.8"));
        assert!(version_differs("16.4", "17.1"));
    }

    #[test]
    fn autoscaling_off_reads_as_no_limit() {
        let mut desired = spec();
        desired.max_allocated_storage_gib = Some(20);
        let mut observed = spec();
        observed.max_allocated_storage_gib = None;
        assert!(planned(&desired, &observed).is_empty());
        let d = planned(&spec(), &observed);
        assert!(d.has("max_allocated_storage_gib") && !d.replace());
    }

    #[test]
    fn busy_states_and_pending_maintenance_are_not_drift() {
        for state in [
            "creating",
            "modifying",
            "backing-up",
            "configuring-enhanced-monitoring",
            "upgrading",
            "rebooting",
            "storage-optimization",
        ] {
            assert_eq!(readiness(None, state), Readiness::Busy(state.into()));
        }
        assert_eq!(readiness(None, "available"), Readiness::Ready);
        let live = DbLive { pending: vec!["instance_class=db.r6g.large".into()], ..DbLive::default() };
        assert_eq!(
            readiness(Some(&live), "available"),
            Readiness::Busy("pending-maintenance: instance_class=db.r6g.large".into())
        );
    }

    #[test]
    fn a_change_pending_for_the_maintenance_window_is_laid_over_the_observed_spec() {
        use aws_sdk_rds::types::{
            DbInstance as I, DbParameterGroupStatus, DbSubnetGroup, PendingModifiedValues, Tag,
        };
        let instance = I::builder()
            .db_parameter_groups(
                DbParameterGroupStatus::builder().db_parameter_group_name("webapp-test-postgres16").build(),
            )
            .db_subnet_group(DbSubnetGroup::builder().db_subnet_group_name("webapp-test-db").build())
            .db_instance_identifier("webapp-test")
            .db_instance_arn("arn:aws:rds:us-east-1:123456789012:db:webapp-test")
            .db_instance_status("available")
            .db_instance_class("db.t4g.small")
            .backup_retention_period(1)
            .pending_modified_values(
                PendingModifiedValues::builder()
                    .db_instance_class("db.t4g.medium")
                    .backup_retention_period(7)
                    .build(),
            )
            .tag_list(Tag::builder().key("deployer:app").value("webapp").build())
            .tag_list(Tag::builder().key("deployer:env").value("test").build())
            .tag_list(
                Tag::builder()
                    .key("deployer:address")
                    .value("us-east-1/database/db-instance/primary")
                    .build(),
            )
            .build();
        let address = address_if_ours(&instance, "webapp", "test").expect("ours");
        let found = found_of(address, &instance, Spec::DbInstance(spec_of(&instance)));
        let Spec::DbInstance(observed) = &found.spec else { panic!("{found:?}") };
        assert_eq!(observed.instance_class, "db.t4g.medium");
        assert_eq!(observed.backup_retention_days, 7);
        // Groups by ARN: their names repeat in every region.
        assert_eq!(
            observed.parameter_group,
            Ref::Id("arn:aws:rds:us-east-1:123456789012:pg:webapp-test-postgres16".into())
        );
        assert_eq!(
            observed.subnet_group,
            Ref::Id("arn:aws:rds:us-east-1:123456789012:subgrp:webapp-test-db".into())
        );
        assert!(!planned(&spec(), observed).has("instance_class"));
        assert_eq!(
            found.readiness(),
            Readiness::Busy(
                "pending-maintenance: instance_class=db.t4g.medium, backup_retention_days=7".into()
            )
        );
        assert!(address_if_ours(&instance, "webapp", "prod").is_none(), "another environment's");
    }

    #[test]
    fn final_snapshot_names_carry_the_utc_time() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(final_snapshot_name("webapp-prod", at), "webapp-prod-final-20231114221320");
        let leap = SystemTime::UNIX_EPOCH + Duration::from_secs(951_825_600); // 2000-02-29 12:00:00
        assert_eq!(utc_timestamp(leap), "20000229120000");
        assert_eq!(
            identifier_of("arn:aws:rds:us-east-2:123456789012:db:webapp-prod-us-east-2"),
            "webapp-prod-us-east-2"
        );
    }

    #[test]
    fn the_plan_says_a_replacement_loses_the_data() {
        let loss = DbInstance::data_loss(&spec()).unwrap();
        assert!(!loss.allowed && loss.allow_key == "database.allow_replacement");
        assert!(loss.what.contains("webapp-test"));
    }
}
