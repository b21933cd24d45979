use super::release::{release_step, show_preview};
use super::{confirm, exit, finish, OutputFormat, Session};
use crate::plan::{self, render_human};

/// `deployer up`: converge every region to the configuration, then release the application
/// where a region does not run the desired revision. On a converged environment it reads and
/// sends nothing that changes anything.
pub async fn up(
    session: &Session,
    assume_yes: bool,
    options: &crate::release::Options,
) -> miette::Result<u8> {
    let (desired, observed) = tokio::join!(session.desired(), session.observe());
    let (desired, observed) = (desired?, observed?);
    let plan = plan::plan(&desired, &observed);
    let env = &session.config().env;
    let releases = session.release_preview().await?;
    let release_needed = releases.iter().any(|r| r.needed)
        || plan.changes.iter().any(|c| {
            c.address().kind()
                == <crate::resources::task_definition::TaskDefinition as crate::resources::Kind>::NAME
        });
    if plan.is_empty() && !release_needed {
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
    // A release whose image is not even in the primary's repository would fail after the
    // infrastructure changed: say so now, before anything is changed. (Without --image a region
    // keeps the image it runs, which its release redeploys.)
    let mut tags: Vec<&str> = releases
        .iter()
        .filter(|r| r.needed && r.in_flight.is_none())
        .map(|r| crate::release::tag_of(&r.desired_image))
        .collect();
    tags.sort();
    tags.dedup();
    for tag in tags {
        let config = session.config();
        let names = crate::release::Names::of(config);
        let present = crate::release::gate::has_image(&session.clients, &config.primary_region, &names, tag)
            .await
            .map_err(|e| miette::miette!("could not read the repository: {e}"))?;
        if !present {
            return Err(miette::miette!(
                help = "push the image to the repository in the primary region first (the registry replicates it), or pass the right --image",
                "the image {}:{tag} is not in the repository in {}; nothing was changed",
                names.repository,
                config.primary_region
            ));
        }
    }
    if !session.settings.quiet && !plan.is_empty() {
        eprint!("{}", render_human(&plan, session.settings.style_stderr()));
    }
    show_preview(session, &releases);
    // Replacing a database, or deleting one the configuration no longer names (the database a
    // failover promoted, until the configuration says so), deletes its data: refused before
    // asking, unless the config allows it.
    let refusals = plan.refusals(session.config().database.allow_replacement);
    if !refusals.is_empty() {
        return Err(miette::miette!(
            help = "if losing that data is intended, set the key named above and run `deployer up` again; otherwise change the configuration back (after a failover: docs/runbooks/regional-failover.md)",
            "{}; nothing was changed",
            refusals.join("\n")
        ));
    }
    if !confirm(&format!("\nApply these changes to environment '{env}'?"), assume_yes).await? {
        eprintln!("Nothing changed.");
        return Ok(exit::ERROR);
    }
    eprintln!();
    session
        .with_lock("up", async {
            if !plan.is_empty() {
                let (plan, outcomes) = session.apply_confirmed(&desired, &plan).await?;
                finish(session, "up", &plan, &outcomes)?;
            }
            if session.config().service.enabled {
                return release_step(session, options).await;
            }
            Ok(exit::OK)
        })
        .await
}
