use miette::miette;

use super::{confirm, exit, Session};
use crate::lock;

/// `deployer unlock`: remove the environment lock a crashed or killed run left behind, in the
/// primary region or in `region` (where a failover takes it).
pub async fn unlock(session: &Session, assume_yes: bool, region: Option<&str>) -> miette::Result<u8> {
    // (In a region other than the primary's only the named region must answer.)
    if region.is_none() {
        session.preflight().await?;
    }
    let c = session.config();
    if let Some(r) = region.filter(|r| !c.region_names().iter().any(|n| n == r)) {
        return Err(miette!(
            "--region {r}: environment '{}' has the regions {}",
            c.env,
            c.region_names().join(", ")
        ));
    }
    let ssm = &match region {
        Some(r) => session.clients.get::<aws_sdk_ssm::Client>(r),
        None => session.clients.ssm(),
    };
    let holder = lock::holder_of(ssm, &c.app, &c.env)
        .await
        .map_err(|e| miette!("could not read the environment lock: {e}"))?;
    let who = match holder {
        None => {
            eprintln!("Environment '{}' is not locked.", c.env);
            return Ok(exit::OK);
        }
        Some(Ok(h)) => h.describe(),
        Some(Err(raw)) => format!("an unreadable holder ({raw})"),
    };
    eprintln!("Environment '{}' is locked by {who}.", c.env);
    let question = "Release it? Only do this if that run is no longer running.";
    if !confirm(question, assume_yes).await? {
        eprintln!("Lock kept.");
        return Ok(exit::ERROR);
    }
    lock::force_release(ssm, &c.app, &c.env).await.map_err(|e| miette!("could not release the lock: {e}"))?;
    eprintln!("Lock released.");
    Ok(exit::OK)
}
