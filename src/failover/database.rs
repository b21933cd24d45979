//! The failover's database steps, each idempotent: it reads the state it changes and sends
//! only what is still missing, so a run after a crash or a lost answer finishes the job. They
//! use the database kinds' describe and wait (`resources::db_instance`), but are no part of a
//! kind's life: `up` never promotes anything.
//!
//! - **promote** the read replica ([`promote_replica`], `PromoteReadReplica`);
//! - **standby**: make the promoted instance Multi-AZ ([`make_multi_az`], `ModifyDBInstance`);
//! - **secret**: the region's copy of the credentials' secret becomes standalone
//!   ([`promote_secret`], `StopReplicationToReplica`).

use aws_sdk_rds::types::DbInstance as SdkInstance;
use serde::Serialize;

use crate::cloud::{wait_until, AwsResultExt, Clients, Error, Waited};
use crate::resources::{db_instance, db_replica, db_secret, rds, Ctx, Kind, Tags};

/// What `deployer failover` needs to know of one database instance, from one
/// `DescribeDBInstances`: whether it still replicates, whether it is Multi-AZ, where it is, and
/// which address its tags give it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DbView {
    pub identifier: String,
    pub arn: String,
    pub status: String,
    /// The instance it replicates (`ReadReplicaSourceDBInstanceIdentifier`); `None` for a
    /// standalone instance (a primary, or a promoted replica).
    pub source: Option<String>,
    pub endpoint: Option<String>,
    pub multi_az: bool,
    #[serde(skip)]
    pub tags: Tags,
}

impl DbView {
    pub fn of(i: &SdkInstance) -> DbView {
        DbView {
            identifier: i.db_instance_identifier().unwrap_or_default().to_string(),
            arn: i.db_instance_arn().unwrap_or_default().to_string(),
            status: i.db_instance_status().unwrap_or_default().to_string(),
            source: i
                .read_replica_source_db_instance_identifier()
                .filter(|s| !s.is_empty())
                .map(str::to_string),
            endpoint: i.endpoint().and_then(|e| e.address()).map(str::to_string),
            multi_az: i.multi_az().unwrap_or(false),
            tags: rds::tags_of(i.tag_list()),
        }
    }

    /// The instance serves and takes changes.
    pub fn usable(&self) -> bool {
        db_instance::USABLE_STATES.contains(&self.status.as_str())
    }

    /// A state no wait gets out of.
    fn stuck(&self, region: &str) -> Option<Error> {
        db_instance::STUCK_STATES.contains(&self.status.as_str()).then(|| {
            Error::InvalidState(format!(
                "database {} in {region} is {}: waiting will not help; see the RDS console or `aws rds describe-events --source-identifier {} --source-type db-instance --region {region}`",
                self.identifier, self.status, self.identifier
            ))
        })
    }
}

/// The instance `identifier` in `region`, `None` when there is none.
pub async fn view(
    clients: &crate::cloud::Clients,
    region: &str,
    identifier: &str,
) -> Result<Option<DbView>, Error> {
    Ok(db_instance::describe(&rds::client(clients, region), identifier).await?.as_ref().map(DbView::of))
}

/// How long a request already sent is given before the same state makes it be sent again
/// (RDS can take a moment to show that it started).
const RESEND_AFTER: std::time::Duration = std::time::Duration::from_secs(120);

/// Sends `request` when `needed`, at most once per [`RESEND_AFTER`], then waits (bounded by
/// `kind`'s timeout) until `done` holds of a usable instance. `request` answering
/// `InvalidDBInstanceState` (already under way, or busy) is not an error: the state is read
/// again. The building block of the failover's database steps, each idempotent: a run after a
/// crash, or after an answer was lost, reads the state and sends only what is still missing.
async fn converge<R, Fut>(
    ctx: &Ctx<'_>,
    region: &str,
    identifier: &str,
    kind: &str,
    what: &str,
    done: impl Fn(&DbView) -> bool,
    request: R,
) -> Result<DbView, Error>
where
    R: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<(), Error>>,
{
    let client = rds::client(ctx.clients, region);
    let sent: std::sync::Mutex<Option<std::time::Instant>> = std::sync::Mutex::new(None);
    let (sent, done, request) = (&sent, &done, &request);
    wait_until(&format!("database {identifier} in {region}: {what}"), ctx.timeout_for(kind), || {
        let client = client.clone();
        async move {
            let Some(i) = db_instance::describe(&client, identifier).await? else {
                return Err(Error::InvalidState(format!(
                    "database {identifier} in {region} is not there (deleted?); nothing more can be done to it"
                )));
            };
            let v = DbView::of(&i);
            if let Some(e) = v.stuck(region) {
                return Err(e);
            }
            if done(&v) {
                return if v.usable() { Ok(Waited::Done(v)) } else { Ok(Waited::NotYet(v.status)) };
            }
            if !v.usable() {
                return Ok(Waited::NotYet(v.status));
            }
            let due = sent.lock().expect("send time").is_none_or(|at| at.elapsed() >= RESEND_AFTER);
            if !due {
                return Ok(Waited::NotYet(format!("{} (requested)", v.status)));
            }
            match request().await {
                Ok(()) => {}
                Err(e) if e.code() == Some("InvalidDBInstanceState") => {
                    tracing::debug!("{identifier} in {region}: {e}; reading its state again");
                }
                Err(e) => return Err(e),
            }
            *sent.lock().expect("send time") = Some(std::time::Instant::now());
            Ok(Waited::NotYet(format!("{} (requested)", v.status)))
        }
    })
    .await
}

/// Makes a standalone instance (a promoted replica) Multi-AZ: one `ModifyDBInstance`, applied
/// at once, then waits until it is available. Nothing is sent when it already is.
pub async fn make_multi_az(ctx: &Ctx<'_>, region: &str, identifier: &str) -> Result<DbView, Error> {
    let client = rds::client(ctx.clients, region);
    converge(
        ctx,
        region,
        identifier,
        db_instance::DbInstance::NAME,
        "a standby in another availability zone (Multi-AZ)",
        |v| v.multi_az,
        || {
            let client = client.clone();
            async move {
                client
                    .modify_db_instance()
                    .db_instance_identifier(identifier)
                    .multi_az(true)
                    .apply_immediately(true)
                    .send()
                    .await
                    .op("ModifyDBInstance")
                    .map(|_| ())
            }
        },
    )
    .await
}

/// Promotes the read replica `identifier` in `region` to a standalone instance
/// (`PromoteReadReplica`, with automated backups as the primary had them: a new replica of it
/// needs them), then waits until it is available with no source. Idempotent: an instance that
/// no longer replicates gets no request; one still being promoted (RDS answers
/// `InvalidDBInstanceState`) is waited for; one busy (`backing-up`: RDS refuses to promote it
/// then) is waited for first. Bounded by `database.wait_timeout`; RDS takes a few minutes
/// (the instance is `modifying`, then reboots).
pub async fn promote_replica(
    ctx: &Ctx<'_>,
    region: &str,
    identifier: &str,
    backup_retention_days: i32,
    backup_window: &str,
) -> Result<DbView, Error> {
    let client = rds::client(ctx.clients, region);
    converge(
        ctx,
        region,
        identifier,
        db_replica::DbReplica::NAME,
        "promotion to a standalone instance",
        |v| v.source.is_none(),
        || {
            let client = client.clone();
            async move {
                client
                    .promote_read_replica()
                    .db_instance_identifier(identifier)
                    .backup_retention_period(backup_retention_days)
                    .preferred_backup_window(backup_window)
                    .send()
                    .await
                    .op("PromoteReadReplica")
                    .map(|_| ())
            }
        },
    )
    .await
}

/// Makes the replica `arn` in `region` a standalone, writable secret (`StopReplicationToReplica`,
/// sent in the replica's own region: it needs nothing of the primary's). Already standalone is
/// success.
pub async fn promote_secret(clients: &Clients, region: &str, arn: &str) -> Result<(), Error> {
    match db_secret::client(clients, region)
        .stop_replication_to_replica()
        .secret_id(arn)
        .send()
        .await
        .op("StopReplicationToReplica")
    {
        Ok(_) => Ok(()),
        // Refused because it is not a replica (any more): an earlier run, whose answer may have
        // been lost, promoted it. The code for that is not documented, so the state decides.
        Err(e) if !e.is_transient() && db_secret::standalone(clients, region, arn).await? => Ok(()),
        Err(e) => Err(e),
    }
}
