use serde::Serialize;

use super::{emit, exit, print_json, LockReport, OutputFormat, Session};
use crate::plan::{self, render_human, Counts, Plan};

#[derive(Serialize)]
struct PlanReport<'a> {
    env: &'a str,
    counts: Counts,
    changes: &'a [plan::Change],
    /// The environment's lock, when held (a run in progress or a crashed run's leftover).
    lock: Option<&'a LockReport>,
}

/// `deployer plan`: what `up` would change, changing nothing. Exit 2 with
/// `--detailed-exitcode` when there are changes (a resource AWS is still working on is not one).
pub async fn plan(session: &Session, detailed_exitcode: bool) -> miette::Result<u8> {
    let (observed, desired, lock) = tokio::join!(session.observe(), session.desired(), session.lock_notice());
    let plan = plan::plan(&desired?, &observed?);
    print_plan(session, &plan, lock.as_ref())?;
    Ok(if detailed_exitcode && plan.has_changes() { exit::CHANGES } else { exit::OK })
}

/// The plan on stdout: for people, or as JSON.
pub(super) fn print_plan(session: &Session, plan: &Plan, lock: Option<&LockReport>) -> miette::Result<()> {
    match session.settings.output {
        OutputFormat::Json => print_json(&PlanReport {
            env: &session.config().env,
            counts: plan.counts(),
            changes: &plan.changes,
            lock,
        }),
        OutputFormat::Human => {
            emit(&render_human(plan, session.settings.style()));
            Ok(())
        }
    }
}
