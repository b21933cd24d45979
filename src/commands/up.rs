use super::release::{release_step, show_preview};
use super::{confirm, exit, finish, OutputFormat, Session};
use crate::plan;

/// `deployer up`: converge every region to the configuration, then release the application
/// where a region does not run the desired revision. On a converged environment it reads and
/// sends nothing that changes anything.
pub async fn up(
    session: &Session,
    assume_yes: bool,
    options: &crate::release::Options,
) -> miette::Result<u8> {
    // With --yes nothing waits between this read and the lock: the lock's generation, read
    // first, can then show under the lock that this read still holds, and it is not repeated
    // (src/lock.rs). Asked, the operator may take minutes, and the environment is read again.
    let (desired, observed) = tokio::join!(session.desired(), async {
        if assume_yes {
            session.read_fence().await;
        }
        session.observe().await
    });
    let (desired, observed) = (desired?, observed?);
    let plan = plan::plan(&desired, &observed);
    let env = &session.config().env;
    let releases = session.release_preview(Some(&observed)).await?;
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
    if session.settings.image_given {
        if let Some(code) = registry_first(session, &desired, &observed, &plan, assume_yes).await? {
            return Ok(code);
        }
    }
    if !session.settings.quiet && !plan.is_empty() {
        session.show_plan(&plan);
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
                let (plan, outcomes) = session.apply_confirmed(&desired, &plan, Some(&observed)).await?;
                finish(session, "up", &plan, &outcomes)?;
            }
            if session.config().service.enabled {
                return release_step(session, options).await;
            }
            Ok(exit::OK)
        })
        .await
}

/// A first `up --image TAG` that would create a region's service on an image its repository
/// does not hold (ECS would try to pull it for as long as the service exists, and the region
/// would never serve): nothing else is changed. If the repository does not exist yet, only the
/// registry is created, so the image can be pushed; then it stops, saying how to push and what
/// to run next. `None`: the image is there (or no service is created), go on.
async fn registry_first(
    session: &Session,
    desired: &crate::model::Desired,
    observed: &[crate::resources::Found],
    plan: &crate::plan::Plan,
    assume_yes: bool,
) -> miette::Result<Option<u8>> {
    use crate::resources::{ecr_replication::EcrReplication, ecr_repository::EcrRepository, Kind};
    let service = <crate::resources::ecs_service::EcsService as Kind>::NAME;
    let creates_service = plan
        .changes
        .iter()
        .any(|c| c.address().kind() == service && c.action() == crate::plan::Action::Create);
    if !creates_service {
        return Ok(None);
    }
    let config = session.config();
    let names = crate::release::Names::of(config);
    let tag = config.service.image_tag.clone();
    let primary = &config.primary_region;
    let present = crate::release::gate::has_image(&session.clients, primary, &names, &tag)
        .await
        .map_err(|e| miette::miette!("could not read the repository: {e}"))?;
    if present {
        return Ok(None);
    }
    let account = session
        .clients
        .account()
        .await
        .map_err(|e| miette::miette!("could not read the AWS account: {e}"))?;
    let uri = format!("{}.dkr.ecr.{primary}.amazonaws.com/{}:{tag}", account.id, names.repository);
    let env = &config.env;
    let push = format!(
        "aws ecr get-login-password --region {primary} | docker login --username AWS --password-stdin {}.dkr.ecr.{primary}.amazonaws.com\n  docker push {uri}",
        account.id
    );
    let registry =
        |a: &crate::spec::Address| a.kind() == EcrRepository::NAME || a.kind() == EcrReplication::NAME;
    let part = crate::model::Desired {
        resources: desired.resources.iter().filter(|r| registry(&r.address)).cloned().collect(),
        ..desired.clone()
    };
    let part_observed: Vec<crate::resources::Found> =
        observed.iter().filter(|f| registry(&f.address)).cloned().collect();
    let part_plan = plan::plan(&part, &part_observed);
    if part_plan.is_empty() || !config.registry.enabled {
        return Err(miette::miette!(
            help = format!("push it, then run `deployer up --env {env} --image {tag}` again:\n  {push}"),
            "the image {}:{tag} is not in the repository in {primary}, and this `up` would create the service on it (its tasks could never start); nothing was changed",
            names.repository
        ));
    }
    eprintln!(
        "The image {}:{tag} is not in a repository yet: the registry is created first, so it can be pushed. Nothing else changes in this run.",
        names.repository
    );
    if !session.settings.quiet {
        session.show_plan(&part_plan);
    }
    if !confirm(&format!("\nCreate the registry of environment '{env}'?"), assume_yes).await? {
        eprintln!("Nothing changed.");
        return Ok(Some(exit::ERROR));
    }
    session
        .with_lock("up", async {
            let (applied, outcomes) = session.apply_confirmed_within(&part, &part_plan, &registry).await?;
            finish(session, "up", &applied, &outcomes)?;
            Ok(exit::OK)
        })
        .await?;
    Err(miette::miette!(
        help = format!("push the image, then run `deployer up --env {env} --image {tag}` again:\n  {push}"),
        "the registry of environment '{env}' is ready; the image {}:{tag} is not in it yet, so nothing else was changed",
        names.repository
    ))
}
