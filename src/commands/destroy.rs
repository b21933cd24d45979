use super::{confirm, exit, finish, OutputFormat, Session};
use crate::model::Desired;
use crate::plan::{self, render_human};

/// `deployer destroy`: delete everything the environment owns, in every region, dependents
/// first. Asks on a terminal; needs `--yes` anywhere else.
pub async fn destroy(session: &Session, assume_yes: bool) -> miette::Result<u8> {
    let observed = session.observe().await?;
    let c = session.config();
    let nothing = Desired::empty(&c.app, &c.env);
    let plan = plan::plan(&nothing, &observed);
    if plan.is_empty() {
        if session.settings.output == OutputFormat::Json {
            return finish(session, "destroy", &plan, &[]);
        }
        eprintln!("Nothing to destroy: no resource is tagged for environment '{}'.", c.env);
        return Ok(exit::OK);
    }
    if !session.settings.quiet {
        eprint!("{}", render_human(&plan, session.settings.style_stderr()));
    }
    let question = format!(
        "\nDelete all {} resources of environment '{}' in {}?",
        plan.changes.len(),
        c.env,
        c.region_names().join(" and ")
    );
    if !confirm(&question, assume_yes).await? {
        eprintln!("Nothing deleted.");
        return Ok(exit::ERROR);
    }
    eprintln!();
    let (plan, outcomes) = session.under_lock("destroy", &nothing, &plan).await?;
    finish(session, "destroy", &plan, &outcomes)
}
