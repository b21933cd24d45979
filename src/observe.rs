//! Reads what the environment has in AWS: every region at once, a few batched describe calls
//! each, filtered by the environment's tags. The number of reads grows with resource kinds,
//! not with resource counts.

use futures::future::try_join_all;

use crate::cloud::{retry_transient, Clients, Error};
use crate::plan::resolve_references;
use crate::resources::{self, Found};

/// Everything tagged for `app`/`env` in `regions` and in the global scope, with references
/// resolved to addresses.
pub async fn observe(
    clients: &Clients,
    regions: &[String],
    app: &str,
    env: &str,
) -> Result<Vec<Found>, Error> {
    observe_scope(clients, regions, true, app, env).await
}

/// [`observe`] of `regions` only, and of the global scope (IAM, Route 53, called in us-east-1)
/// only when `global`: what `failover` reads while a region is unreachable.
pub async fn observe_scope(
    clients: &Clients,
    regions: &[String],
    global: bool,
    app: &str,
    env: &str,
) -> Result<Vec<Found>, Error> {
    // Reads only: a throttle storm that outlasts a request's retries just reads again.
    let (per_region, global) = retry_transient("reading the environment", || async {
        tokio::try_join!(
            try_join_all(regions.iter().map(|r| resources::observe_region(clients, r, app, env))),
            async {
                if global {
                    resources::observe_global(clients, app, env).await
                } else {
                    Ok(Vec::new())
                }
            },
        )
    })
    .await?;
    let mut found: Vec<Found> = per_region.into_iter().flatten().chain(global).collect();
    resolve_references(&mut found);
    Ok(found)
}
