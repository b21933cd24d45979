//! `deployer release` and `deployer rollback`, and the release step `up` ends with.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use miette::miette;

use super::{confirm, credentials_hint, exit, OutputFormat, Session};
use crate::release::{self, RegionRelease};

/// Where release progress goes: JSON lines on stdout for machines; for people, a live progress
/// bar per deployment on a terminal (the traffic on the new version, and the status), or one
/// line per change on stderr when it is piped (CI logs).
pub struct Reporter {
    pub json: bool,
    pub quiet: bool,
    /// Stderr is a terminal: draw bars instead of lines.
    pub terminal: bool,
    bars: std::sync::Mutex<BTreeMap<String, indicatif::ProgressBar>>,
}

impl Reporter {
    pub fn new(json: bool, quiet: bool) -> Reporter {
        use std::io::IsTerminal;
        let terminal = !json && !quiet && std::io::stderr().is_terminal();
        Reporter { json, quiet, terminal, bars: Default::default() }
    }

    /// A line on stderr, above any bar being drawn.
    fn line(&self, text: &str) {
        let bars = self.bars.lock().expect("progress bars");
        match bars.values().find(|b| !b.is_finished()) {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }
}

impl release::Progress for Reporter {
    fn event(&self, region: &str, deployment: &str, what: &str) {
        if self.json {
            super::json_event(
                "deployment",
                serde_json::json!({"region": region, "deployment": deployment, "status": what}),
            );
        } else if !self.quiet {
            self.line(&format!("  {region}  {deployment}  {what}"));
        }
    }

    fn progress(&self, region: &str, deployment: &str, what: &str, green: Option<f64>, done: bool) {
        if !self.terminal {
            return release::Progress::event(self, region, deployment, what);
        }
        let mut bars = self.bars.lock().expect("progress bars");
        let bar = bars.entry(deployment.to_string()).or_insert_with(|| {
            let bar = indicatif::ProgressBar::new(100);
            bar.set_style(
                indicatif::ProgressStyle::with_template("  {prefix} [{bar:20}] {pos:>3}% new  {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar.set_prefix(format!("{region}  {deployment}"));
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        if let Some(green) = green {
            bar.set_position(green.round() as u64);
        }
        bar.set_message(what.to_string());
        if done {
            bar.finish();
        }
    }

    fn say(&self, what: &str) {
        if self.json {
            super::json_event("message", serde_json::json!({"message": what}));
        } else {
            self.line(what);
        }
    }
}

impl Session {
    fn reporter(&self) -> Reporter {
        Reporter::new(self.settings.output == OutputFormat::Json, self.settings.quiet)
    }

    /// What a release would do in each region (read-only); empty without the service tier.
    /// `observed`: the plan's read of the environment a moment ago, when there was one (what it
    /// found is not read again).
    pub(super) async fn release_preview(
        &self,
        observed: Option<&[crate::resources::Found]>,
    ) -> miette::Result<Vec<RegionRelease>> {
        if !self.config().service.enabled {
            return Ok(vec![]);
        }
        let account =
            self.clients.account().await.map_err(|e| miette!("could not read the AWS account: {e}"))?;
        release::preview(&self.clients, self.config(), &account, self.settings.image_given, observed)
            .await
            .map_err(|e| miette!(help = credentials_hint(&e), "could not read the running releases: {e}"))
    }
}

/// The release lines shown with the plan, on stderr.
pub(super) fn show_preview(session: &Session, releases: &[RegionRelease]) {
    if !session.settings.quiet {
        eprint!("{}", preview_text(releases));
    }
}

/// What a release would do, one line per region that needs one (empty when none does).
pub(super) fn preview_text(releases: &[RegionRelease]) -> String {
    let needed: Vec<&RegionRelease> = releases.iter().filter(|r| r.needed).collect();
    if needed.is_empty() {
        return String::new();
    }
    let mut out = String::from("\nRelease (CodeDeploy blue/green, one region after the other):\n");
    for r in needed {
        let from = r.running_image.as_deref().map(release::tag_of).unwrap_or("-");
        let _ = match &r.in_flight {
            Some(d) => writeln!(out, "  {}: follow deployment {} in flight ({})", r.region, d.id, d.status),
            None => writeln!(
                out,
                "  {}: {} → {}{}",
                r.region,
                from,
                release::tag_of(&r.desired_image),
                if from == release::tag_of(&r.desired_image) {
                    " (new task definition revision)"
                } else {
                    ""
                }
            ),
        };
    }
    out
}

/// One line per region: what happened, what it runs, and the deployment.
fn summary(title: &str, regions: &[release::RegionResult]) -> String {
    let width = regions.iter().map(|r| r.outcome.len()).max().unwrap_or(0);
    let mut out = format!("\n{title}:\n");
    for r in regions {
        let _ = writeln!(
            out,
            "  {:12} {:width$} runs {}{}",
            r.region,
            r.outcome,
            r.runs.as_deref().unwrap_or("(unknown: see `deployer status`)"),
            r.deployment.as_deref().map(|d| format!("  ({d})")).unwrap_or_default()
        );
    }
    out
}

/// Runs the release (under the caller's lock) and reports it: exit 0, or 3 when a region's
/// deployment failed and CodeDeploy rolled it back.
pub(super) async fn release_step(session: &Session, options: &release::Options) -> miette::Result<u8> {
    let account =
        session.clients.account().await.map_err(|e| miette!("could not read the AWS account: {e}"))?;
    let reporter = session.reporter();
    let report = release::release(&session.clients, session.config(), &account, options, &reporter)
        .await
        .map_err(|e| {
            miette!(
                help = "fix the cause and run the same command again: a deployment in flight is followed, never doubled (docs/runbooks/failed-release.md)",
                "release stopped: {e}"
            )
        })?;
    if reporter.json {
        super::report_field("release", &report)?;
    }
    if report.regions.iter().all(|r| r.outcome == "unchanged") {
        return Ok(exit::OK);
    }
    eprint!("{}", summary("Release", &report.regions));
    if let Some(failure) = &report.failure {
        eprintln!(
            "\nrelease FAILED: {failure}\nRegions marked `not started` still run the old version. See docs/runbooks/failed-release.md; `deployer rollback --env {}` takes the released regions back.",
            session.config().env
        );
        return Ok(exit::RELEASE_FAILED);
    }
    Ok(exit::OK)
}

/// `deployer release --image TAG`: the release step alone, no infrastructure change.
pub async fn release(session: &Session, assume_yes: bool, options: &release::Options) -> miette::Result<u8> {
    session.preflight().await?;
    let releases = session.release_preview(None).await?;
    let env = &session.config().env;
    if !releases.iter().any(|r| r.needed) {
        eprintln!(
            "No release needed: every region of '{env}' runs {}.",
            releases.first().map(|r| release::tag_of(&r.desired_image)).unwrap_or("-")
        );
        return Ok(exit::OK);
    }
    show_preview(session, &releases);
    if !confirm(&format!("\nRelease to environment '{env}'?"), assume_yes).await? {
        eprintln!("Nothing changed.");
        return Ok(exit::ERROR);
    }
    session.with_lock("release", release_step(session, options)).await
}

/// `deployer rollback`: secondaries first, then the primary (the reverse of a release).
pub async fn rollback(
    session: &Session,
    assume_yes: bool,
    only: Option<&str>,
    to: Option<&str>,
) -> miette::Result<u8> {
    session.preflight().await?;
    let config = session.config();
    let names = release::Names::of(config);
    let regions: Vec<String> =
        config.region_names().into_iter().rev().filter(|r| only.is_none_or(|o| o == r)).collect();
    let states = release::status(&session.clients, config)
        .await
        .map_err(|e| miette!(help = credentials_hint(&e), "could not read the releases: {e}"))?;
    let mut out = String::from("Rollback (secondaries first, then the primary):\n");
    for region in &regions {
        let Some(s) = states.iter().find(|s| &s.region == region) else { continue };
        let running = s.running_image.as_deref().map(release::tag_of).unwrap_or("-");
        let _ = match (&s.in_flight, to) {
            (Some(d), None) => {
                writeln!(
                    out,
                    "  {region}: stop deployment {} ({}) with CodeDeploy's rollback",
                    d.id, d.status
                )
            }
            _ if to.is_none()
                && release::never_released(&session.clients, region, &names)
                    .await
                    .map_err(|e| miette!("could not read the deployment history in {region}: {e}"))? =>
            {
                writeln!(out, "  {region}: runs {running}; never released: nothing to roll back")
            }
            _ => {
                let target = release::rollback_target(
                    &session.clients,
                    region,
                    &names,
                    s.running_task_definition.as_deref(),
                    to,
                )
                .await
                .map_err(|e| miette!("could not read the deployment history in {region}: {e}"))?;
                match target {
                    Some(td) => writeln!(out, "  {region}: runs {running}; deploy {td}"),
                    None => {
                        return Err(miette!(
                            help = "`deployer status` shows what each region runs and its last successful deployment",
                            "{region}: {}; nothing was changed",
                            match to {
                                Some(tag) => format!("no successful deployment of an image tagged {tag}"),
                                None => "no earlier successful deployment to roll back to".into(),
                            }
                        ))
                    }
                }
            }
        };
    }
    eprint!("{out}");
    if !confirm(&format!("\nRoll back environment '{}'?", config.env), assume_yes).await? {
        eprintln!("Nothing changed.");
        return Ok(exit::ERROR);
    }
    let reporter = session.reporter();
    let results = session
        .with_lock("rollback", async {
            let mut results = Vec::new();
            for region in &regions {
                let r = release::rollback_region(
                    &session.clients,
                    region,
                    &names,
                    to,
                    release::release_timeout(config),
                    &reporter,
                )
                .await
                .map_err(|e| {
                    miette!(
                        help =
                            "see docs/runbooks/rollback.md; regions listed before this one are rolled back",
                        "rollback stopped in {region}: {e}"
                    )
                })?;
                results.push(r);
            }
            Ok(results)
        })
        .await?;
    if reporter.json {
        super::report_field("rollback", &results)?;
    }
    let mut out = summary("Rollback", &results);
    let _ = writeln!(
        out,
        "\nA plain `up` keeps what each region runs now; the next `up --image` or `release --image` changes it (the configuration names service.image_tag = {:?}, the image of a region's first release only).",
        config.service.image_tag
    );
    eprint!("{out}");
    Ok(exit::OK)
}
