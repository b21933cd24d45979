use super::{exit, plan::print_plan, OutputFormat, Session};
use crate::plan;

/// `deployer drift`: read-only. Exit 0 when AWS matches the configuration, 2 when anything
/// differs (each drifted resource named), 1 on error. Made for cron and CI. A resource AWS is
/// still working on (a NAT gateway `pending`, a database `modifying`) is reported as in progress,
/// not as drift.
pub async fn drift(session: &Session) -> miette::Result<u8> {
    let (observed, desired, lock) = tokio::join!(session.observe(), session.desired(), session.lock_notice());
    let observed = observed?;
    let plan = plan::plan(&desired?, &observed);
    let env = &session.config().env;
    // `-q` (cron): nothing on success; on drift one line per drifted resource. The exit code
    // carries the verdict.
    if session.settings.quiet && session.settings.output == OutputFormat::Human {
        if !plan.has_changes() {
            return Ok(exit::OK);
        }
        for c in plan.changes.iter().filter(|c| c.is_change()) {
            println!("{} {}", c.action().symbol(), c.address());
        }
        return Ok(exit::CHANGES);
    }
    if !plan.has_changes() {
        if session.settings.output == OutputFormat::Json || !plan.is_empty() {
            print_plan(session, &plan, lock.as_ref(), None)?;
        }
        let busy = plan.counts().wait;
        let in_progress = if busy > 0 {
            format!("; {busy} still in progress (AWS is working on them)")
        } else {
            String::new()
        };
        eprintln!(
            "No drift: environment '{env}' matches its configuration ({} resources checked{in_progress}).",
            observed.len()
        );
        return Ok(exit::OK);
    }
    print_plan(session, &plan, lock.as_ref(), None)?;
    eprintln!(
        "Drift detected in environment '{env}': {} resource(s) differ from the configuration. `deployer up --env {env}` repairs it.",
        plan.changes.iter().filter(|c| c.is_change()).count()
    );
    Ok(exit::CHANGES)
}
