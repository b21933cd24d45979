use super::{exit, plan::print_plan, OutputFormat, Session};
use crate::model;
use crate::plan;

/// `deployer drift`: read-only. Exit 0 when AWS matches the configuration, 2 when anything
/// differs (each drifted resource named), 1 on error. Made for cron and CI.
pub async fn drift(session: &Session) -> miette::Result<u8> {
    let observed = session.observe().await?;
    let plan = plan::plan(&model::desired(session.config()), &observed);
    let env = &session.config().env;
    if plan.is_empty() {
        if session.settings.output == OutputFormat::Json {
            print_plan(session, &plan)?;
        }
        eprintln!(
            "No drift: environment '{env}' matches its configuration ({} resources checked).",
            observed.len()
        );
        return Ok(exit::OK);
    }
    print_plan(session, &plan)?;
    eprintln!(
        "Drift detected in environment '{env}': {} resource(s) differ from the configuration. `deployer up --env {env}` repairs it.",
        plan.changes.len()
    );
    Ok(exit::CHANGES)
}
