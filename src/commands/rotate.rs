//! `deployer rotate-db-password --env E`: a new master password for the database, in three
//! steps that each resume where a crash left them:
//!
//! 1. **new**: Secrets Manager makes a password (`GetRandomPassword`), stored as
//!    `pending_password` in the writable copy of the secret (replicated to every region) before
//!    the database takes it. A run that finds one pending goes on with it: it never makes a
//!    second one the database might already have.
//! 2. **database**: `ModifyDBInstance` with it as `MasterUserPassword` (RDS applies it at once;
//!    the replicas follow their source's password), then the wait until the primary is
//!    available again. Sending the same password again is harmless.
//! 3. **secret**: `password` becomes the new one, `pending_password` goes, and `rotation`
//!    names this rotation. Every region's copy follows.
//! 4. **release**: each region's service gets new tasks of the revision it runs (ECS reads a
//!    secret when a task starts), one region after the other, each deployment carrying the
//!    rotation's name: a region that has one that succeeded is done.
//!
//! The window: from step 2 until step 4 has replaced a region's tasks, that region's running
//! tasks hold the old password. The connections they have open keep working (PostgreSQL checks
//! a password when a connection opens), but they cannot open new ones; tasks that start between
//! steps 2 and 3 read the old password too. Rotate when a short loss of new connections is
//! acceptable (docs/runbooks/database.md).

use std::time::SystemTime;

use miette::miette;
use serde::Serialize;

use super::release::Reporter;
use super::{confirm, credentials_hint, exit, report, OutputFormat, Session};
use crate::release::{self, RegionResult};
use crate::resources::{db_instance, db_secret, rds, IdMap, Kind};

#[derive(Serialize)]
struct Report<'a> {
    command: &'static str,
    env: &'a str,
    ok: bool,
    /// The rotation's name, which its releases carry.
    rotation: &'a str,
    /// `true` when this run went on with a rotation an earlier run started.
    resumed: bool,
    releases: &'a [RegionResult],
    calls: crate::cloud::CallSummary,
    elapsed_secs: f64,
}

/// `deployer rotate-db-password --env E` (see the module docs).
pub async fn rotate_db_password(session: &Session, assume_yes: bool) -> miette::Result<u8> {
    session.preflight().await?;
    let c = session.config();
    if !c.database.enabled {
        return Err(miette!(
            "environment '{}' has no database (database.enabled is false): no password to rotate; nothing was changed",
            c.env
        ));
    }
    let primary = c.primary_region.clone();
    let clients = &session.clients;
    let name = db_secret::name(&c.app, &c.env);
    let arn = db_secret::client(clients, &primary)
        .describe_secret()
        .secret_id(&name)
        .send()
        .await
        .map_err(|e| crate::cloud::Error::aws("DescribeSecret", &e, false))
        .map_err(|e| {
            miette!(
                help = credentials_hint(&e),
                "could not read the database's secret {name} in {primary} (`deployer up` creates it): {e}"
            )
        })?
        .arn()
        .map(str::to_string)
        .ok_or_else(|| miette!("the secret {name} in {primary} has no ARN"))?;
    let question = format!(
        "Rotate the master password of environment '{}' ({} in {primary})? Until each region's tasks are replaced, they cannot open new database connections.",
        c.env, c.database.identifier
    );
    eprintln!(
        "Rotation of the master password of '{}': a new password in {name} (replicated to {}), then on {} in {primary}, then new tasks in every region.",
        c.env,
        c.region_names().join(", "),
        c.database.identifier
    );
    if !confirm(&question, assume_yes).await? {
        eprintln!("Nothing changed.");
        return Ok(exit::ERROR);
    }
    session
        .with_lock("rotate-db-password", async {
            let ids = IdMap::default();
            let ctx = session.ctx(&ids);
            let fail = |step: &str, e: crate::cloud::Error| {
                miette!(
                    help = "each step resumes where it stopped: run `deployer rotate-db-password` again to finish this rotation",
                    "rotate-db-password step {step} failed: {e}"
                )
            };
            let mut value = db_secret::read(clients, &primary, &arn).await.map_err(|e| fail("new", e))?;
            let unfinished_release = match &value.rotation {
                Some(marker) if value.pending_password.is_none() && c.service.enabled => {
                    !released_everywhere(session, marker).await.map_err(|e| fail("release", e))?
                }
                _ => false,
            };
            let resumed = value.pending_password.is_some() || unfinished_release;
            if value.pending_password.is_none() && !unfinished_release {
                value.pending_password = Some(db_secret::random_password(clients, &primary).await.map_err(|e| fail("new", e))?);
                value.rotation = Some(format!("rotate-db-password {}", epoch_secs()));
                db_secret::write(clients, &primary, &arn, &value).await.map_err(|e| fail("new", e))?;
                eprintln!("  ok    new       a new password is pending in {name}");
            } else if resumed {
                eprintln!("  going on with the rotation an earlier run started ({})", value.rotation.as_deref().unwrap_or("?"));
            }
            if let Some(pending) = value.pending_password.clone() {
                let identifier = &c.database.identifier;
                rds::client(clients, &primary)
                    .modify_db_instance()
                    .db_instance_identifier(identifier)
                    .master_user_password(pending.expose())
                    .apply_immediately(true)
                    .send()
                    .await
                    .map_err(|e| crate::cloud::Error::aws("ModifyDBInstance", &e, false))
                    .map_err(|e| fail("database", e))?;
                db_instance::wait_usable(&ctx, &primary, identifier, db_instance::DbInstance::NAME)
                    .await
                    .map_err(|e| fail("database", e))?;
                eprintln!("  ok    database  {identifier} in {primary} takes the new password");
                value.password = pending;
                value.pending_password = None;
                db_secret::write(clients, &primary, &arn, &value).await.map_err(|e| fail("secret", e))?;
                eprintln!("  ok    secret    {name} holds the new password (every region's copy follows)");
            }
            let marker = value.rotation.clone().unwrap_or_default();
            let mut releases = Vec::new();
            if c.service.enabled {
                let reporter = Reporter::new(false, session.settings.quiet);
                for region in c.region_names() {
                    let r = release::redeploy_running(clients, c, &region, &marker, &reporter)
                        .await
                        .map_err(|e| fail("release", e))?;
                    eprintln!("  ok    release   {region}: {} ({})", r.outcome, r.deployment.as_deref().unwrap_or("-"));
                    let failed = r.outcome == "failed";
                    releases.push(r);
                    if failed {
                        break;
                    }
                }
            }
            let failed = releases.iter().any(|r| r.outcome == "failed");
            if session.settings.output == OutputFormat::Json {
                report(&Report {
                    command: "rotate-db-password",
                    env: &c.env,
                    ok: !failed,
                    rotation: &marker,
                    resumed,
                    releases: &releases,
                    calls: session.calls(),
                    elapsed_secs: session.elapsed(),
                })?;
            }
            if failed {
                eprintln!(
                    "\nrotate-db-password: the database and the secret have the new password, but a release failed and CodeDeploy rolled it back: that region's tasks still hold the old password. See docs/runbooks/failed-release.md, then run `deployer rotate-db-password` again (it finishes this rotation)."
                );
                return Ok(exit::RELEASE_FAILED);
            }
            eprintln!(
                "\nrotate-db-password: done in {:.1}s ({} AWS reads, {} changes sent). The old password works nowhere now.",
                session.elapsed(),
                session.calls().reads,
                session.calls().mutating
            );
            Ok(exit::OK)
        })
        .await
}

/// Whether every region has a successful deployment carrying `marker`.
async fn released_everywhere(session: &Session, marker: &str) -> Result<bool, crate::cloud::Error> {
    let c = session.config();
    let names = release::Names::of(c);
    for region in c.region_names() {
        let all = release::deployments_of(&session.clients, &region, &names).await?;
        if !all
            .iter()
            .any(|d| d.description().is_some_and(|t| t.contains(marker)) && release::replaced_the_tasks(d))
        {
            return Ok(false);
        }
    }
    Ok(true)
}

fn epoch_secs() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}
