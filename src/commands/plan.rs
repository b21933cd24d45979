use serde::Serialize;

use super::{emit, exit, report, LockReport, OutputFormat, Session};
use crate::plan::{self, Counts, Plan};

#[derive(Serialize)]
struct PlanReport<'a> {
    env: &'a str,
    counts: Counts,
    changes: &'a [plan::Change],
    /// The environment's lock, when held (a run in progress or a crashed run's leftover).
    lock: Option<&'a LockReport>,
    /// Per region, what runs and whether `up` would release (only `plan`, with the service tier).
    #[serde(skip_serializing_if = "Option::is_none")]
    release: Option<&'a [crate::release::RegionRelease]>,
}

/// `deployer plan`: what `up` would change, changing nothing. Exit 2 with
/// `--detailed-exitcode` when there are changes (a resource AWS is still working on is not one).
pub async fn plan(session: &Session, detailed_exitcode: bool) -> miette::Result<u8> {
    let (observed, desired, lock) = tokio::join!(session.observe(), session.desired(), session.lock_notice());
    let observed = observed?;
    let plan = plan::plan(&desired?, &observed);
    let releases = session.release_preview(Some(&observed)).await?;
    let release_needed = releases.iter().any(|r| r.needed);
    print_plan(session, &plan, lock.as_ref(), session.config().service.enabled.then_some(&releases[..]))?;
    Ok(if detailed_exitcode && (plan.has_changes() || release_needed) { exit::CHANGES } else { exit::OK })
}

/// The plan on stdout: for people, or as JSON.
pub(super) fn print_plan(
    session: &Session,
    plan: &Plan,
    lock: Option<&LockReport>,
    release: Option<&[crate::release::RegionRelease]>,
) -> miette::Result<()> {
    match session.settings.output {
        OutputFormat::Json => report(&PlanReport {
            env: &session.config().env,
            counts: plan.counts(),
            changes: &plan.changes,
            lock,
            release,
        }),
        OutputFormat::Human => {
            emit(&crate::plan::render_human_within(
                plan,
                session.settings.style(),
                crate::session::terminal_width(),
            ));
            emit(&super::release::preview_text(release.unwrap_or_default()));
            Ok(())
        }
    }
}
