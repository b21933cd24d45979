use super::{confirm, exit, finish, OutputFormat, Session};
use crate::plan::{self, render_human};

/// `deployer up`: converge every region to the configuration. On a converged environment it
/// reads and sends nothing that changes anything.
pub async fn up(session: &Session, assume_yes: bool) -> miette::Result<u8> {
    let (desired, observed) = tokio::join!(session.desired(), session.observe());
    let (desired, observed) = (desired?, observed?);
    let plan = plan::plan(&desired, &observed);
    let env = &session.config().env;
    if plan.is_empty() {
        session.lock_notice().await;
        if session.settings.output == OutputFormat::Json {
            return finish(session, "up", &plan, &[]);
        }
        eprintln!(
            "No changes. Environment '{env}' is up to date ({} resources; {} AWS reads, no changes sent).",
            observed.len(),
            session.calls().reads
        );
        return Ok(exit::OK);
    }
    if !session.settings.quiet {
        eprint!("{}", render_human(&plan, session.settings.style_stderr()));
    }
    // Replacing a database deletes its data: refused before asking, unless the config allows it.
    let refusals = plan.refusals();
    if !refusals.is_empty() {
        return Err(miette::miette!(
            help = "if losing that data is intended, set the key named above and run `deployer up` again; otherwise change the configuration back",
            "{}; nothing was changed",
            refusals.join("\n")
        ));
    }
    if !confirm(&format!("\nApply these changes to environment '{env}'?"), assume_yes).await? {
        eprintln!("Nothing changed.");
        return Ok(exit::ERROR);
    }
    eprintln!();
    let (plan, outcomes) = session.under_lock("up", &desired, &plan).await?;
    finish(session, "up", &plan, &outcomes)
}
