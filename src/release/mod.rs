//! Releases: the new version reaches the service through a CodeDeploy blue/green deployment,
//! region by region, and `rollback` takes it back.
//!
//! **What is released.** The desired revision is the task definition the configuration
//! describes, with an image `<repository URI>:<tag>`: the `--image` of `up` or `release`; without
//! one, the image each region runs now (an infrastructure change never changes the version that
//! runs), and `service.image_tag` only for a region that runs nothing yet. The infrastructure's `task-definition` kind keeps the family's latest revision right in
//! everything but the image; the release registers a revision with the image when the latest
//! one has another (tagged `deployer:image-tag`). A region whose service already runs a revision
//! equal to the desired one needs nothing.
//!
//! **Order and failure.** Before any deployment: the image must be in every region's
//! repository (replication can lag: waited on, within `release.image_wait_secs`) and the
//! primary's scan must have no finding at `release.block_on_severity` or worse. Then the primary,
//! followed to the end (lifecycle events and traffic split as they change), then
//! `release.bake_secs` during which the group's alarms must stay OK, then each secondary. The
//! first failure ends the run with exit 3 after CodeDeploy's automatic rollback is done: later
//! regions are not touched, earlier ones keep the new version (unless
//! `rollback_all_on_failure`).
//!
//! **Re-running.** A deployment already in flight for the group is followed, never doubled: the
//! run that was killed mid-release is finished by the next one.

pub mod deploy;
pub mod gate;

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_codedeploy::types::DeploymentStatus;
use aws_sdk_ecs::types::TaskDefinition as SdkTaskDefinition;
use serde::Serialize;

use crate::cloud::{AwsResultExt, Clients, Error};
use crate::config::Config;
use crate::resources::task_definition::{self, TaskDefinitionSpec};
use crate::resources::{Ctx, Found, IdMap, Spec, Tags};
use crate::spec::Account;
use crate::spec::Ref;

pub use deploy::{DeploymentView, End};

/// The tag on a revision a release registered: the image tag it runs.
pub const TAG_IMAGE: &str = "deployer:image-tag";

/// The names a release works with, all `{app}-{env}` but the container.
#[derive(Clone, Debug)]
pub struct Names {
    pub base: String,
    pub container: String,
    pub port: u16,
    pub repository: String,
    /// The service's capacity provider strategy, which every release's AppSpec carries.
    pub capacity: Vec<crate::resources::ecs_cluster::StrategyItem>,
}

impl Names {
    pub fn of(config: &Config) -> Names {
        Names {
            base: crate::model::service::base_name(config),
            container: crate::model::service::CONTAINER_NAME.into(),
            port: config.service.container_port,
            repository: config.registry.name.clone(),
            capacity: crate::model::service::default_strategy(config),
        }
    }
}

/// Where a release reports what happens, deployment by deployment. The commands render it
/// (JSON lines, progress bars or plain lines: `commands::release::Reporter`).
pub trait Progress: Sync {
    /// A deployment's status changed (`region`, the deployment's ID, the new status).
    fn event(&self, region: &str, deployment: &str, what: &str);
    /// A deployment's progress: `green` is the share of traffic on the new version.
    fn progress(&self, region: &str, deployment: &str, what: &str, green: Option<f64>, done: bool);
    /// A line about the release as a whole.
    fn say(&self, what: &str);
}

/// What one region runs and what a release would do there.
#[derive(Clone, Debug, Serialize)]
pub struct RegionRelease {
    pub region: String,
    /// The image the configuration (or `--image`) asks for.
    pub desired_image: String,
    pub running_task_definition: Option<String>,
    pub running_image: Option<String>,
    /// A deployment not finished yet (one in its termination wait included).
    pub in_flight: Option<DeploymentView>,
    /// Whether a release would deploy here (or follow the deployment in flight).
    pub needed: bool,
}

fn image_of(td: &SdkTaskDefinition) -> Option<String> {
    td.container_definitions().first().and_then(|c| c.image()).map(str::to_string)
}

/// The tag of an image reference `repo:tag`.
pub fn tag_of(image: &str) -> &str {
    image.rsplit_once(':').map(|(_, t)| t).filter(|t| !t.contains('/')).unwrap_or("")
}

/// `desired` with the image replaced: the spec a release wants to run.
fn with_image(spec: &TaskDefinitionSpec, image: &str) -> TaskDefinitionSpec {
    let mut s = spec.clone();
    s.container.image = image.to_string();
    s
}

/// Reads, per region, what runs and what a release would do. Read-only: `up` shows it with
/// the plan, and an environment where every region runs the desired revision and nothing is
/// in flight needs no release.
///
/// `observed`: what the plan read a moment ago, when there is such a read. A region whose
/// service it found running the family's latest revision (ours by its tags) is taken from it,
/// and only its deployments in flight are read (no read of the plan's is repeated: a converged
/// `up` or `plan` reads each ECS object once). Anything else is read here: a release under the
/// lock passes `None`, so what it deploys is what AWS holds now.
pub async fn preview(
    clients: &Clients,
    config: &Config,
    account: &Account,
    image_given: bool,
    observed: Option<&[Found]>,
) -> Result<Vec<RegionRelease>, Error> {
    let names = Names::of(config);
    let mut out = Vec::new();
    for region in config.region_names() {
        let known = observed.and_then(|o| running_latest(o, &region, &names));
        let ((running, latest), in_flight) = match known {
            Some(revision) => {
                let latest = revision.1.clone();
                (
                    (Some(revision), Some(latest)),
                    deploy::deployments(clients, &region, &names, deploy::ACTIVE).await?,
                )
            }
            None => {
                let ecs: aws_sdk_ecs::Client = clients.get(&region);
                let (running, latest, in_flight) = tokio::join!(
                    deploy::running(clients, &region, &names),
                    task_definition::describe(&ecs, &names.base),
                    deploy::deployments(clients, &region, &names, deploy::ACTIVE),
                );
                let running = running?.map(|td| {
                    (td.task_definition_arn().unwrap_or_default().to_string(), task_definition::spec_of(&td))
                });
                ((running, latest?.map(|(td, _)| task_definition::spec_of(&td))), in_flight?)
            }
        };
        let in_flight = in_flight.first().map(DeploymentView::of);
        let running_image = running.as_ref().map(|(_, spec)| spec.container.image.clone());
        // Releases own the running image: without --image a region keeps what it runs.
        let desired_image = match &running_image {
            Some(image) if !image_given => image.clone(),
            _ => crate::model::service::image(config, account, &region),
        };
        let needed = match (&running, &latest) {
            // No service yet, or no revision: the infrastructure creates them with the desired one.
            (None, _) | (_, None) => false,
            (Some((_, running)), Some(latest)) => *running != with_image(latest, &desired_image),
        } || in_flight.as_ref().is_some_and(|d| !d.in_termination_wait);
        out.push(RegionRelease {
            region: region.clone(),
            desired_image,
            running_image,
            running_task_definition: running.map(|(arn, _)| arn),
            in_flight,
            needed,
        });
    }
    Ok(out)
}

/// From the plan's read of `region`: the revision its service runs (ARN and spec), when that is
/// the family's latest revision. `None` when the read found no such pair (no service, another
/// revision running, a family without our tags): the preview reads it then.
fn running_latest(observed: &[Found], region: &str, names: &Names) -> Option<(String, TaskDefinitionSpec)> {
    let in_region = |f: &&Found| f.address.region() == region;
    let latest = observed.iter().filter(in_region).find(|f| match &f.spec {
        Spec::TaskDefinition(spec) => spec.family == names.base,
        _ => false,
    })?;
    // The read resolves a reference to what it found by that ID: to the revision's address.
    let runs_latest = observed.iter().filter(in_region).any(|f| match &f.spec {
        Spec::EcsService(s) => {
            s.name == names.base
                && (s.task_definition == Ref::Addr(latest.address.clone())
                    || s.task_definition == Ref::Id(latest.id.clone()))
        }
        _ => false,
    });
    match &latest.spec {
        Spec::TaskDefinition(spec) if runs_latest => Some((latest.id.clone(), spec.clone())),
        _ => None,
    }
}

/// What a redeploy of `region` at the image it runs now would do: the desired revision is the
/// family's latest with the running image (the infrastructure registers the latest when the
/// task definition changed, as for a new database). `needed` when the service runs another
/// spec, or a deployment is in flight. `None` without a service or a revision yet.
pub async fn same_image_preview(
    clients: &Clients,
    region: &str,
    names: &Names,
) -> Result<Option<RegionRelease>, Error> {
    let ecs: aws_sdk_ecs::Client = clients.get(region);
    let (running, latest, in_flight) = tokio::join!(
        deploy::running(clients, region, names),
        task_definition::describe(&ecs, &names.base),
        deploy::deployments(clients, region, names, deploy::ACTIVE),
    );
    let (Some(running), Some((latest, _))) = (running?, latest?) else { return Ok(None) };
    let in_flight = in_flight?.first().map(DeploymentView::of);
    let Some(image) = image_of(&running) else { return Ok(None) };
    let needed = task_definition::spec_of(&running) != with_image(&task_definition::spec_of(&latest), &image)
        || in_flight.as_ref().is_some_and(|d| !d.in_termination_wait);
    Ok(Some(RegionRelease {
        region: region.to_string(),
        desired_image: image.clone(),
        running_image: Some(image),
        running_task_definition: running.task_definition_arn().map(str::to_string),
        in_flight,
        needed,
    }))
}

/// Releases the family's latest revision to `region` alone, with the image the service runs
/// now (the application's version does not change): a revision with that image is registered
/// if the latest has another, and deployed through the region's deployment group like any
/// release (a deployment in flight is followed, never doubled). `why` starts the deployment's
/// description (`deployer failover to us-east-2`). Outcome `unchanged`, `released`, or
/// `failed` (CodeDeploy rolled it back; the region runs what it ran before).
pub async fn release_same_image(
    clients: &Clients,
    config: &Config,
    region: &str,
    why: &str,
    reporter: &dyn Progress,
) -> Result<RegionResult, Error> {
    let names = Names::of(config);
    let p = same_image_preview(clients, region, &names).await?.ok_or_else(|| {
        Error::InvalidState(format!(
            "{region}: no service with a task definition to release; run `deployer up`"
        ))
    })?;
    let tag = tag_of(&p.desired_image).to_string();
    let desired = ensure_revision(clients, region, &names, &p.desired_image, &tag).await?;
    let description = describe(
        &format!("{why} ({tag}, {}) by {}", names.base, who()),
        p.running_task_definition.as_deref(),
    );
    let timeout = release_timeout(config);
    let (outcome, deployment) =
        match run_region(clients, region, &names, &desired, &description, timeout, reporter).await? {
            None => ("unchanged", None),
            Some(End::Released(view)) => ("released", Some(view.id)),
            Some(End::Failed { deployment, .. }) => ("failed", Some(deployment.id)),
        };
    let runs = deploy::running(clients, region, &names).await?.as_ref().and_then(image_of);
    Ok(RegionResult { region: region.to_string(), outcome: outcome.into(), deployment, runs })
}

/// Whether deployment `d` has put all traffic on its new tasks: it succeeded, or it is in its
/// termination wait (the old tasks kept a while, serving nothing).
pub fn replaced_the_tasks(d: &aws_sdk_codedeploy::types::DeploymentInfo) -> bool {
    d.status() == Some(&DeploymentStatus::Succeeded) || DeploymentView::of(d).in_termination_wait
}

/// The newest deployments of the environment's group in `region`, whatever their status.
pub async fn deployments_of(
    clients: &Clients,
    region: &str,
    names: &Names,
) -> Result<Vec<aws_sdk_codedeploy::types::DeploymentInfo>, Error> {
    deploy::deployments(clients, region, names, &[]).await
}

/// Replaces `region`'s tasks with new ones of the revision they run (the same image and
/// configuration), through its deployment group: ECS reads a task's secrets when it starts, so
/// this is how running services take a new value (`deployer rotate-db-password`). The deployment
/// carries `marker` in its description, and a region that already has a successful one carrying
/// it is left alone, so a run after a crash finishes only what is left. Outcome `unchanged`,
/// `released` or `failed`.
pub async fn redeploy_running(
    clients: &Clients,
    config: &Config,
    region: &str,
    marker: &str,
    reporter: &dyn Progress,
) -> Result<RegionResult, Error> {
    let names = Names::of(config);
    let carries =
        |d: &aws_sdk_codedeploy::types::DeploymentInfo| d.description().is_some_and(|t| t.contains(marker));
    let result = |outcome: &str, deployment: Option<String>, runs: Option<String>| RegionResult {
        region: region.to_string(),
        outcome: outcome.into(),
        deployment,
        runs,
    };
    let timeout = release_timeout(config);
    for _ in 0..3 {
        let all = deploy::deployments(clients, region, &names, &[]).await?;
        if let Some(d) = all.iter().find(|d| carries(d) && replaced_the_tasks(d)) {
            let runs = deploy::running(clients, region, &names).await?.as_ref().and_then(image_of);
            return Ok(result("unchanged", d.deployment_id().map(str::to_string), runs));
        }
        if let Some(active) = all.iter().find(|d| d.status().is_some_and(|s| deploy::ACTIVE.contains(s))) {
            let view = DeploymentView::of(active);
            if view.in_termination_wait {
                reporter.event(region, &view.id, "ending the previous release's termination wait");
                deploy::end_termination_wait(clients, region, &view.id).await?;
            } else {
                reporter.event(region, &view.id, "a deployment is in flight: following it");
                deploy::follow(clients, region, &names, &view.id, timeout, reporter).await?;
            }
            continue;
        }
        let running = deploy::running(clients, region, &names).await?.ok_or_else(|| {
            Error::InvalidState(format!(
                "{region}: no service with a task definition to redeploy; run `deployer up`"
            ))
        })?;
        let arn = running.task_definition_arn().unwrap_or_default().to_string();
        let description = format!("{marker}: new tasks of {arn} by {}", who());
        let (id, _) = deploy::start(clients, region, &names, &arn, &description).await?;
        reporter.event(region, &id, &format!("replacing the tasks of {arn}"));
        let (outcome, deployment) =
            match deploy::follow(clients, region, &names, &id, timeout, reporter).await? {
                End::Released(view) => ("released", view.id),
                End::Failed { deployment, .. } => ("failed", deployment.id),
            };
        return Ok(result(outcome, Some(deployment), image_of(&running)));
    }
    Err(Error::InvalidState(format!("{region}: other deployments kept starting; run the command again")))
}

/// The choices of one release run.
#[derive(Clone, Debug, Default)]
pub struct Options {
    pub allow_vulnerable: bool,
    pub rollback_all_on_failure: bool,
    /// `--image` was given: release `service.image_tag` (which it set) everywhere. Without it a
    /// region keeps the image it runs.
    pub image_given: bool,
}

/// What a release or a rollback did in one region.
#[derive(Clone, Debug, Serialize)]
pub struct RegionResult {
    pub region: String,
    /// A release: `released`, `unchanged` (already ran it), `failed` (rolled back by
    /// CodeDeploy), `rolled back` (released, then rolled back because a later region failed),
    /// `not started`. A rollback: `stopped and rolled back`, `redeployed`, `already there`,
    /// `nothing to roll back (never released)`.
    pub outcome: String,
    pub deployment: Option<String>,
    /// The image the region runs at the end of the run.
    pub runs: Option<String>,
}

/// The result of a release run. `failed` means exit 3.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub failed: bool,
    pub regions: Vec<RegionResult>,
    pub failure: Option<String>,
}

/// Releases the desired revision region by region (see the module doc). Errors are for what
/// stopped the run before or between deployments (AWS errors, a refused image, a timeout); a
/// deployment that failed is a [`Report`] with `failed`.
pub async fn release(
    clients: &Clients,
    config: &Config,
    account: &Account,
    options: &Options,
    reporter: &dyn Progress,
) -> Result<Report, Error> {
    let names = Names::of(config);
    let options = &Options {
        rollback_all_on_failure: options.rollback_all_on_failure || config.release.rollback_all_on_failure,
        ..options.clone()
    };
    let plan = preview(clients, config, account, options.image_given, None).await?;
    let mut regions: Vec<RegionResult> = plan
        .iter()
        .map(|p| RegionResult {
            region: p.region.clone(),
            outcome: "not started".into(),
            deployment: None,
            runs: p.running_image.clone(),
        })
        .collect();
    if !plan.iter().any(|p| p.needed) {
        for r in &mut regions {
            r.outcome = "unchanged".into();
        }
        return Ok(Report { failed: false, regions, failure: None });
    }
    // Each region's image (one tag with --image; without it each keeps its own).
    let mut by_tag: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for p in plan.iter().filter(|p| p.needed) {
        by_tag.entry(tag_of(&p.desired_image).to_string()).or_default().push(p.region.as_str());
    }
    for (tag, needing) in &by_tag {
        gate::image_present(clients, config, &names, tag, needing, reporter).await?;
        gate::scan(clients, config, &names, tag, options.allow_vulnerable, reporter).await?;
    }

    let timeout = release_timeout(config);
    let mut released: Vec<(usize, Option<String>)> = Vec::new();
    // Whether the primary has baked in this run (after its own deployment, below).
    let mut primary_baked = false;
    for (i, p) in plan.iter().enumerate() {
        if !p.needed {
            regions[i].outcome = "unchanged".into();
            continue;
        }
        // A secondary goes only after the primary has run the target version for the bake time
        // with its alarms quiet, whichever run deployed it there: a run that resumes after the
        // primary's deployment was done by a killed one bakes what is left of the time.
        if i > 0 && !primary_baked && config.release.bake_secs > 0 {
            let first = &plan[0];
            let left = bake_left(
                clients,
                &first.region,
                &names,
                first.running_task_definition.as_deref(),
                config.release.bake_secs,
            )
            .await?;
            if let Some(alarm) = bake(clients, &first.region, &names, left, reporter).await? {
                return Err(Error::InvalidState(format!(
                    "{}: alarm {alarm} is in ALARM while the version an earlier run released there bakes; {} and later regions were not deployed. Look at the alarm, then `deployer rollback --env {}`, or run the release again once it is OK",
                    first.region, p.region, config.env
                )));
            }
            primary_baked = true;
        }
        let region = &p.region;
        let tag = tag_of(&p.desired_image).to_string();
        let desired = ensure_revision(clients, region, &names, &p.desired_image, &tag).await?;
        let description = describe(
            &format!("deployer release of {tag} ({}) by {}", names.base, who()),
            p.running_task_definition.as_deref(),
        );
        let end = match run_region(clients, region, &names, &desired, &description, timeout, reporter).await?
        {
            Some(end) => end,
            None => {
                regions[i].outcome = "unchanged".into();
                regions[i].runs = Some(p.desired_image.clone());
                continue;
            }
        };
        match end {
            End::Released(view) => {
                regions[i].outcome = "released".into();
                regions[i].deployment = Some(view.id.clone());
                regions[i].runs = Some(p.desired_image.clone());
                released.push((i, p.running_task_definition.clone()));
                let last = i + 1 == plan.len();
                primary_baked |= i == 0;
                if !last && config.release.bake_secs > 0 {
                    if let Some(alarm) =
                        bake(clients, region, &names, config.release.bake_secs, reporter).await?
                    {
                        reporter.say(&format!(
                            "{region}: alarm {alarm} went off while baking: rolling {region} back"
                        ));
                        roll_back_region(
                            clients,
                            region,
                            &names,
                            &view,
                            p.running_task_definition.as_deref(),
                            timeout,
                            reporter,
                        )
                        .await?;
                        regions[i].outcome = "failed".into();
                        regions[i].runs = p.running_image.clone();
                        released.pop();
                        let failure = format!(
                            "{region}: alarm {alarm} during the bake time after deployment {}",
                            view.id
                        );
                        return finish_failure(
                            clients, &names, &plan, regions, released, failure, options, timeout, reporter,
                        )
                        .await;
                    }
                }
            }
            End::Failed { deployment, rollback } => {
                regions[i].outcome = "failed".into();
                regions[i].deployment = Some(deployment.id.clone());
                regions[i].runs = if rollback.as_ref().is_some_and(|r| r.status == "Succeeded") {
                    p.running_image.clone()
                } else {
                    None // unknown: see `deployer status`
                };
                let failure = format!(
                    "{region}: deployment {} {}{}{}",
                    deployment.id,
                    deployment.status.to_lowercase(),
                    deployment.error.as_ref().map(|e| format!(" ({e})")).unwrap_or_default(),
                    match &rollback {
                        Some(r) => format!("; CodeDeploy's rollback {} {}", r.id, r.status.to_lowercase()),
                        None => "; the group did not roll it back".into(),
                    }
                );
                return finish_failure(
                    clients, &names, &plan, regions, released, failure, options, timeout, reporter,
                )
                .await;
            }
        }
    }
    Ok(Report { failed: false, regions, failure: None })
}

#[allow(clippy::too_many_arguments)]
async fn finish_failure(
    clients: &Clients,
    names: &Names,
    plan: &[RegionRelease],
    mut regions: Vec<RegionResult>,
    released: Vec<(usize, Option<String>)>,
    failure: String,
    options: &Options,
    timeout: Duration,
    reporter: &dyn Progress,
) -> Result<Report, Error> {
    if options.rollback_all_on_failure {
        for (i, before) in released.into_iter().rev() {
            let region = &plan[i].region;
            let Some(before) = before else { continue };
            reporter.say(&format!("{region}: rolling back to {before} (rollback_all_on_failure)"));
            let description = describe(
                &format!("deployer rollback after a failed release, by {}", who()),
                plan[i].running_task_definition.as_deref(),
            );
            match run_region(clients, region, names, &before, &description, timeout, reporter).await? {
                Some(End::Failed { deployment, .. }) => {
                    return Err(Error::InvalidState(format!(
                        "{failure}; rolling {region} back failed too (deployment {} {})",
                        deployment.id, deployment.status
                    )))
                }
                _ => {
                    regions[i].outcome = "rolled back".into();
                    regions[i].runs = plan[i].running_image.clone();
                }
            }
        }
    }
    Ok(Report { failed: true, regions, failure: Some(failure) })
}

/// Brings one region to `desired`: follows a deployment in flight first (re-attaching to a
/// killed run's), ends the termination wait of a finished one, then deploys unless the service
/// already runs an equal revision. `None`: nothing to do.
async fn run_region(
    clients: &Clients,
    region: &str,
    names: &Names,
    desired: &str,
    description: &str,
    timeout: Duration,
    reporter: &dyn Progress,
) -> Result<Option<End>, Error> {
    let desired_spec = task_definition::spec_of(&deploy::describe_revision(clients, region, desired).await?);
    let same = |td: &Option<String>, spec: &Option<TaskDefinitionSpec>| {
        td.as_deref() == Some(desired) || spec.as_ref() == Some(&desired_spec)
    };
    for _ in 0..3 {
        if let Some(active) = deploy::deployments(clients, region, names, deploy::ACTIVE).await?.first() {
            let view = DeploymentView::of(active);
            let spec = match &view.task_definition {
                Some(td) => {
                    Some(task_definition::spec_of(&deploy::describe_revision(clients, region, td).await?))
                }
                None => None,
            };
            let ours = same(&view.task_definition, &spec);
            if view.in_termination_wait {
                if ours {
                    return Ok(Some(End::Released(view)));
                }
                reporter.event(region, &view.id, "ending the previous release's termination wait");
                deploy::end_termination_wait(clients, region, &view.id).await?;
                continue;
            }
            reporter.event(region, &view.id, "a deployment is in flight: following it");
            let end = deploy::follow(clients, region, names, &view.id, timeout, reporter).await?;
            if ours {
                return Ok(Some(end));
            }
            continue;
        }
        let running = deploy::running(clients, region, names).await?;
        let running_spec = running.as_ref().map(task_definition::spec_of);
        let running_arn = running.as_ref().and_then(|t| t.task_definition_arn()).map(str::to_string);
        if same(&running_arn, &running_spec) {
            return Ok(None);
        }
        let (id, attached) = deploy::start(clients, region, names, desired, description).await?;
        reporter.event(
            region,
            &id,
            &if attached {
                "a deployment was already in flight: following it".to_string()
            } else {
                format!("deploying {desired}")
            },
        );
        return deploy::follow(clients, region, names, &id, timeout, reporter).await.map(Some);
    }
    Err(Error::InvalidState(format!("{region}: other deployments kept starting; run the command again")))
}

/// The revision to deploy: the family's latest, if it runs `image`; otherwise a new revision
/// registered from it with `image` (a lost answer retried makes two equal revisions: harmless).
async fn ensure_revision(
    clients: &Clients,
    region: &str,
    names: &Names,
    image: &str,
    tag: &str,
) -> Result<String, Error> {
    let ecs: aws_sdk_ecs::Client = clients.get(region);
    let (latest, tags) = task_definition::describe(&ecs, &names.base).await?.ok_or_else(|| {
        Error::InvalidState(format!(
            "{region}: the task definition {} has no ACTIVE revision; run `deployer up`",
            names.base
        ))
    })?;
    if image_of(&latest).as_deref() == Some(image) {
        return Ok(latest.task_definition_arn().unwrap_or_default().to_string());
    }
    let spec = with_image(&task_definition::spec_of(&latest), image);
    let mut tags: Tags = tags;
    tags.insert(TAG_IMAGE.into(), tag.into());
    let ids = IdMap::default();
    let ctx = Ctx {
        clients,
        ids: &ids,
        policy: Default::default(),
        timeout: Duration::from_secs(60),
        timeouts: BTreeMap::new(),
    };
    task_definition::register(&ctx, &crate::model::service::task_definition(region), &spec, &tags).await
}

/// Watches the group's alarms for `secs`; the first one in ALARM, if any.
/// What is left of the bake time of the version `region` runs (`running`, a revision ARN): the
/// bake is measured from the completion CodeDeploy reports for the deployment that put it there.
/// A deployment still in its termination wait, or none at all, bakes the whole time.
async fn bake_left(
    clients: &Clients,
    region: &str,
    names: &Names,
    running: Option<&str>,
    secs: u64,
) -> Result<u64, Error> {
    let all = deploy::deployments(clients, region, names, &[]).await?;
    let put_there =
        all.iter().find(|d| deploy::task_definition_of(d).as_deref() == running && replaced_the_tasks(d));
    let done = put_there
        .filter(|d| d.status() == Some(&DeploymentStatus::Succeeded))
        .and_then(|d| d.complete_time())
        .and_then(|t| std::time::SystemTime::try_from(*t).ok());
    Ok(match done {
        Some(at) => secs.saturating_sub(at.elapsed().map(|e| e.as_secs()).unwrap_or(0)),
        None => secs,
    })
}

async fn bake(
    clients: &Clients,
    region: &str,
    names: &Names,
    secs: u64,
    reporter: &dyn Progress,
) -> Result<Option<String>, Error> {
    let cd: aws_sdk_codedeploy::Client = clients.get(region);
    let group = cd
        .get_deployment_group()
        .application_name(&names.base)
        .deployment_group_name(&names.base)
        .send()
        .await
        .op("GetDeploymentGroup")?;
    let alarms: Vec<String> = group
        .deployment_group_info()
        .and_then(|g| g.alarm_configuration())
        .map(|a| a.alarms().iter().filter_map(|a| a.name().map(str::to_string)).collect())
        .unwrap_or_default();
    if alarms.is_empty() {
        return Ok(None);
    }
    reporter.say(&format!("{region}: baking for {secs}s: the alarms {} must stay OK", alarms.join(", ")));
    let cw: aws_sdk_cloudwatch::Client = clients.get(region);
    let bake = Duration::from_secs(secs);
    let mut pace = crate::cloud::Pace::start();
    loop {
        let out =
            cw.describe_alarms().set_alarm_names(Some(alarms.clone())).send().await.op("DescribeAlarms")?;
        if let Some(a) = out
            .metric_alarms()
            .iter()
            .find(|a| a.state_value() == Some(&aws_sdk_cloudwatch::types::StateValue::Alarm))
        {
            return Ok(Some(a.alarm_name().unwrap_or_default().to_string()));
        }
        if pace.elapsed() >= bake {
            return Ok(None);
        }
        pace.pause(false, bake.saturating_sub(pace.elapsed())).await;
    }
}

/// Takes a region that was just released back: a deployment still in its termination wait is
/// stopped with CodeDeploy's rollback (the old tasks are still there); a finished one is
/// followed by a deployment of `before`.
async fn roll_back_region(
    clients: &Clients,
    region: &str,
    names: &Names,
    released: &DeploymentView,
    before: Option<&str>,
    timeout: Duration,
    reporter: &dyn Progress,
) -> Result<(), Error> {
    let now = DeploymentView::of(&deploy::get(clients, region, &released.id).await?);
    if !now.finished() {
        deploy::stop_with_rollback(clients, region, &now.id).await?;
        if let Some(rb) = deploy::follow_rollback(clients, region, &now.id, timeout, reporter).await? {
            if rb.status == "Succeeded" {
                return Ok(());
            }
        }
    }
    let Some(before) = before else {
        return Err(Error::InvalidState(format!("{region}: no earlier revision to roll back to")));
    };
    let description = describe(
        &format!("deployer rollback after an alarm while baking, by {}", who()),
        Some(&released.task_definition.clone().unwrap_or_default()),
    );
    match run_region(clients, region, names, before, &description, timeout, reporter).await? {
        Some(End::Failed { deployment, .. }) => Err(Error::DeploymentFailed(format!(
            "{region}: the rollback deployment {} {}",
            deployment.id, deployment.status
        ))),
        _ => Ok(()),
    }
}

/// What a deployment's description says it replaces, so that the revision that ran before the
/// first release (created by `up` with the service, never deployed) is in the history too.
const REPLACING: &str = "; replacing ";

fn describe(what: &str, replacing: Option<&str>) -> String {
    match replacing {
        Some(td) => format!("{what}{REPLACING}{td}"),
        None => what.to_string(),
    }
}

fn replaced_by(d: &aws_sdk_codedeploy::types::DeploymentInfo) -> Option<String> {
    let text = d.description()?;
    let (_, td) = text.rsplit_once(REPLACING)?;
    td.starts_with("arn:").then(|| td.trim().to_string())
}

/// How long one region's deployment is followed: `service.wait_timeout_secs` for the tasks to
/// start and pass health checks, plus the traffic shift the deployment configuration takes.
pub fn release_timeout(config: &Config) -> Duration {
    config.service.wait_timeout + Duration::from_secs(60 * config.release.deployment_config.shift_minutes())
}

/// `user@host`, for deployment descriptions.
fn who() -> String {
    crate::lock::Holder::this_process("release").who
}

/// Where `rollback` takes a region: the newest successful deployment's revision other than
/// the running one (or, with `to`, the newest whose image has that tag). From the group's
/// history, never "the task definition number minus one".
pub async fn rollback_target(
    clients: &Clients,
    region: &str,
    names: &Names,
    running: Option<&str>,
    to: Option<&str>,
) -> Result<Option<String>, Error> {
    let history = deploy::deployments(clients, region, names, &[DeploymentStatus::Succeeded]).await?;
    let running_image = match running {
        Some(arn) => image_of(&deploy::describe_revision(clients, region, arn).await?),
        None => None,
    };
    // Newest first: each deployment's revision, then what it replaced (the revision CodeDeploy
    // reports as previous, or the one the deployer's description names).
    let candidates = history.iter().flat_map(|d| {
        [
            deploy::task_definition_of(d),
            d.previous_revision()
                .and_then(|r| r.app_spec_content())
                .and_then(|c| c.content())
                .and_then(deploy::task_definition_in),
            replaced_by(d),
        ]
        .into_iter()
        .flatten()
    });
    let mut seen = std::collections::BTreeSet::new();
    for td in candidates.collect::<Vec<_>>() {
        if !seen.insert(td.clone()) {
            continue;
        }
        let image = match deploy::describe_revision(clients, region, &td).await {
            Ok(t) => image_of(&t),
            Err(_) => continue, // deregistered since
        };
        match to {
            Some(tag) if image.as_deref().map(tag_of) == Some(tag) => return Ok(Some(td)),
            Some(_) => {}
            None if Some(td.as_str()) != running && image != running_image => return Ok(Some(td)),
            None => {}
        }
    }
    Ok(None)
}

/// No deployment of the group ever succeeded: the service runs what `up` created it with.
pub async fn never_released(clients: &Clients, region: &str, names: &Names) -> Result<bool, Error> {
    Ok(deploy::deployments(clients, region, names, &[DeploymentStatus::Succeeded]).await?.is_empty())
}

/// `deployer rollback` in one region (see `commands::rollback`).
pub async fn rollback_region(
    clients: &Clients,
    region: &str,
    names: &Names,
    to: Option<&str>,
    timeout: Duration,
    reporter: &dyn Progress,
) -> Result<RegionResult, Error> {
    let active = deploy::deployments(clients, region, names, deploy::ACTIVE).await?;
    if let Some(active) = active.first() {
        let view = DeploymentView::of(active);
        if to.is_none() {
            reporter.event(region, &view.id, "in flight: stopping it with CodeDeploy's rollback");
            deploy::stop_with_rollback(clients, region, &view.id).await?;
            match deploy::follow_rollback(clients, region, &view.id, timeout, reporter).await? {
                Some(rb) if rb.status == "Succeeded" => {
                    let runs = deploy::running(clients, region, names).await?.as_ref().and_then(image_of);
                    return Ok(RegionResult {
                        region: region.into(),
                        outcome: "stopped and rolled back".into(),
                        deployment: Some(rb.id),
                        runs,
                    });
                }
                Some(rb) => {
                    return Err(Error::InvalidState(format!("{region}: the rollback deployment {} {}", rb.id, rb.status)))
                }
                // It finished before the stop arrived (its termination wait ended): go back the
                // way a finished release goes back, below.
                None if deploy::get(clients, region, &view.id).await?.status() == Some(&DeploymentStatus::Succeeded) => {}
                None => {
                    return Err(Error::InvalidState(format!(
                        "{region}: deployment {} stopped but CodeDeploy started no rollback; see docs/runbooks/stuck-deployment.md",
                        view.id
                    )))
                }
            }
        } else if view.in_termination_wait {
            deploy::end_termination_wait(clients, region, &view.id).await?;
        } else {
            return Err(Error::InvalidState(format!(
                "{region}: deployment {} is in flight; roll it back first (`deployer rollback` without --to), then pick a revision",
                view.id
            )));
        }
    }
    let running = deploy::running(clients, region, names).await?;
    let running_arn = running.as_ref().and_then(|t| t.task_definition_arn()).map(str::to_string);
    if to.is_none() && never_released(clients, region, names).await? {
        return Ok(RegionResult {
            region: region.into(),
            outcome: "nothing to roll back (never released)".into(),
            deployment: None,
            runs: running.as_ref().and_then(image_of),
        });
    }
    let target =
        rollback_target(clients, region, names, running_arn.as_deref(), to).await?.ok_or_else(|| {
            Error::InvalidState(match to {
                Some(tag) => format!(
                    "{region}: no successful deployment of an image tagged {tag} in the group's history"
                ),
                None => format!(
                    "{region}: no earlier successful deployment in the group's history to roll back to"
                ),
            })
        })?;
    let target_image = image_of(&deploy::describe_revision(clients, region, &target).await?);
    let description = describe(&format!("deployer rollback by {}", who()), running_arn.as_deref());
    match run_region(clients, region, names, &target, &description, timeout, reporter).await? {
        None => Ok(RegionResult {
            region: region.into(),
            outcome: "already there".into(),
            deployment: None,
            runs: target_image,
        }),
        Some(End::Released(view)) => Ok(RegionResult {
            region: region.into(),
            outcome: "redeployed".into(),
            deployment: Some(view.id),
            runs: target_image,
        }),
        Some(End::Failed { deployment, .. }) => Err(Error::DeploymentFailed(format!(
            "{region}: the rollback deployment {} {}{}",
            deployment.id,
            deployment.status.to_lowercase(),
            deployment.error.map(|e| format!(" ({e})")).unwrap_or_default()
        ))),
    }
}

/// What `status` shows of releases in one region.
#[derive(Clone, Debug, Serialize)]
pub struct ReleaseStatus {
    pub region: String,
    pub running_task_definition: Option<String>,
    pub running_image: Option<String>,
    pub in_flight: Option<DeploymentView>,
    /// The traffic split of the deployment in flight, e.g. `{"blue": 90, "green": 10}`.
    pub traffic: BTreeMap<String, f64>,
    pub last_success: Option<DeploymentView>,
}

pub async fn status(clients: &Clients, config: &Config) -> Result<Vec<ReleaseStatus>, Error> {
    let names = Names::of(config);
    let mut out = Vec::new();
    for region in config.region_names() {
        let (running, recent) = tokio::join!(
            deploy::running(clients, &region, &names),
            deploy::deployments(clients, &region, &names, &[]),
        );
        let (running, recent) = (running?, recent?);
        let in_flight = recent
            .iter()
            .find(|d| d.status().is_some_and(|s| deploy::ACTIVE.contains(s)))
            .map(DeploymentView::of);
        let last_success =
            recent.iter().find(|d| d.status() == Some(&DeploymentStatus::Succeeded)).map(DeploymentView::of);
        let mut traffic = BTreeMap::new();
        if let Some(d) = &in_flight {
            let cd: aws_sdk_codedeploy::Client = clients.get(&region);
            if let Ok(t) = cd
                .get_deployment_target()
                .deployment_id(&d.id)
                .target_id(format!("{}:{}", names.base, names.base))
                .send()
                .await
            {
                for ts in t
                    .deployment_target()
                    .and_then(|t| t.ecs_target())
                    .map(|e| e.task_sets_info())
                    .unwrap_or_default()
                {
                    traffic.insert(
                        ts.task_set_label().map(|l| l.as_str().to_lowercase()).unwrap_or_default(),
                        ts.traffic_weight(),
                    );
                }
            }
        }
        out.push(ReleaseStatus {
            region,
            running_image: running.as_ref().and_then(image_of),
            running_task_definition: running
                .as_ref()
                .and_then(|t| t.task_definition_arn())
                .map(str::to_string),
            in_flight,
            traffic,
            last_success,
        });
    }
    Ok(out)
}
