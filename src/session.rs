//! The lock-and-verify session every command runs in: the resolved settings, the clients of
//! every region, and what most commands do with them — read the desired and the observed
//! environment, fail fast when AWS cannot be reached, take the environment's lock, plan again
//! under it, apply through the engine and verify until the plan is empty. The commands
//! (`src/commands/`) parse arguments, ask, and render the outcome.

use std::time::Instant;

use miette::miette;
use serde::Serialize;

use crate::cloud::{CallSummary, Clients};
use crate::config::Config;
use crate::engine::{self, Outcome, Progress, Status};
use crate::lock;
use crate::model::Desired;
use crate::plan::{Plan, Style};
use crate::resources::{Ctx, Found, IdMap};
use crate::spec::Address;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    Human,
    Json,
}

/// Everything a command needs, resolved from arguments, config files and the environment.
#[derive(Clone, Debug)]
pub struct Settings {
    pub config: Config,
    pub output: OutputFormat,
    /// Colour on stdout and on stderr (each off with `NO_COLOR` or when not a terminal).
    pub color_stdout: bool,
    pub color_stderr: bool,
    /// `-q`: no per-change progress lines.
    pub quiet: bool,
    /// The endpoint to use: `AWS_ENDPOINT_URL` if set, else the config's `aws.endpoint_url`.
    pub endpoint_url: Option<String>,
    /// `--image` was given (`up`, `plan`, `release`): the release deploys that image everywhere.
    /// Without it every region keeps the image it runs.
    pub image_given: bool,
    /// Where to assume `aws.role_arn` when not the primary region (`failover`: the region it
    /// promotes, so that it needs nothing of the primary's).
    pub sts_region: Option<String>,
}

impl Settings {
    /// How to render for stdout (`plan`, `drift`).
    pub(crate) fn style(&self) -> Style {
        if self.color_stdout {
            Style::Color
        } else {
            Style::Plain
        }
    }

    /// How to render for stderr (the plan `up` and `destroy` show before asking).
    pub(crate) fn style_stderr(&self) -> Style {
        if self.color_stderr {
            Style::Color
        } else {
            Style::Plain
        }
    }
}

/// A connected session: settings plus clients for every region of the environment.
pub struct Session {
    pub settings: Settings,
    pub clients: Clients,
    started: Instant,
    /// The run's first contact with AWS ([`Session::preflight`]), made once.
    reached: tokio::sync::OnceCell<Result<(), String>>,
    /// The lock and its generation as read before the environment ([`Session::read_fence`]).
    fence: std::sync::OnceLock<lock::Fence>,
    /// The generation's version this run's lock wrote, while it holds the lock.
    bumped: std::sync::Mutex<Option<i64>>,
}

impl Session {
    pub async fn connect(settings: Settings) -> Session {
        let clients = Clients::new(
            &settings.config.aws,
            settings.endpoint_url.clone(),
            &settings.config.region_names(),
            settings.sts_region.as_deref(),
        )
        .await;
        Session {
            settings,
            clients,
            started: Instant::now(),
            reached: Default::default(),
            fence: Default::default(),
            bumped: Default::default(),
        }
    }

    /// Fails fast, with one message naming the endpoint, the region and where credentials
    /// were looked for, when AWS cannot be reached or the credentials are missing or refused
    /// (`Clients::preflight`). Made once per run; every reader awaits it first.
    pub(crate) async fn preflight(&self) -> miette::Result<()> {
        let verdict = self
            .reached
            .get_or_init(|| async { self.clients.preflight().await.map_err(|e| e.to_string()) })
            .await;
        let Err(why) = verdict else { return Ok(()) };
        let c = self.config();
        let endpoint = match &self.settings.endpoint_url {
            Some(url) => format!("the endpoint {url}"),
            None => format!("AWS's endpoints for {}", c.primary_region),
        };
        let credentials = match (&c.aws.profile, std::env::var("AWS_PROFILE").ok().filter(|p| !p.is_empty())) {
            _ if c.aws.emulator_credentials => "the emulator's test credentials (aws.emulator_credentials)".into(),
            (Some(p), _) => format!("the profile {p:?} (aws.profile)"),
            (None, Some(p)) => format!("the profile {p:?} (AWS_PROFILE)"),
            (None, None) => "the default chain: environment variables, the shared config and credentials files, SSO, web identity, ECS, EC2 instance metadata".into(),
        };
        let role = c.aws.role_arn.as_deref().map(|r| format!(", then assuming {r}")).unwrap_or_default();
        Err(miette!(
            help = format!(
                "{}; credentials from {credentials}{role}",
                credentials_hint(&crate::cloud::Error::InvalidState(why.clone()))
            ),
            "cannot reach AWS at {endpoint} (region {}): {why}; nothing was read or changed",
            c.primary_region
        ))
    }

    pub(crate) fn config(&self) -> &Config {
        &self.settings.config
    }

    /// What the kinds' I/O takes: this session's clients, `ids`, and the configuration's wait
    /// bounds and deletion policy.
    pub(crate) fn ctx<'a>(&'a self, ids: &'a IdMap) -> Ctx<'a> {
        let c = self.config();
        Ctx {
            clients: &self.clients,
            ids,
            policy: crate::model::deletion_policy(c),
            timeout: c.engine.wait_timeout,
            timeouts: crate::model::wait_timeouts(c),
        }
    }

    /// The plan for people, on stderr, within the terminal's width.
    pub(crate) fn show_plan(&self, plan: &Plan) {
        eprint!("{}", crate::plan::render_human_within(plan, self.settings.style_stderr(), terminal_width()));
    }

    /// What the configuration asks for. The service tier writes the account's ARNs into IAM
    /// policies, so this reads the account (one STS `GetCallerIdentity`).
    pub(crate) async fn desired(&self) -> miette::Result<Desired> {
        self.preflight().await?;
        let account = self
            .clients
            .account()
            .await
            .map_err(|e| miette!(help = credentials_hint(&e), "could not read the AWS account: {e}"))?;
        let mut desired = crate::model::desired(self.config(), &account);
        let c = self.config();
        if c.service.enabled {
            crate::resources::task_definition::resolve_secret_names(
                &self.clients,
                &mut desired.resources,
                &c.service.secrets,
                &c.region_names(),
            )
            .await
            .map_err(|e| miette!("{e}; nothing was changed"))?;
        }
        Ok(desired)
    }

    pub(crate) async fn observe(&self) -> miette::Result<Vec<Found>> {
        self.preflight().await?;
        let c = self.config();
        crate::observe::observe(&self.clients, &c.region_names(), &c.app, &c.env)
            .await
            .map_err(|e| miette!(help = credentials_hint(&e), "could not read the environment from AWS: {e}"))
    }

    /// Reads the lock and its generation (one `GetParameters`), before the environment is
    /// read, so that under the lock that read can be known still to hold ([`lock::Fence`]).
    /// `None` when they cannot be read: the environment is then read again under the lock.
    pub(crate) async fn read_fence(&self) -> Option<&lock::Fence> {
        self.preflight().await.ok()?;
        let c = self.config();
        match lock::fence(&self.clients.ssm(), &c.app, &c.env).await {
            Ok(fence) => Some(self.fence.get_or_init(|| fence)),
            Err(e) => {
                tracing::warn!("could not read the environment lock: {e}");
                None
            }
        }
    }

    /// Whether `read`, the environment as read after [`Session::read_fence`], is still what AWS
    /// holds, now that this run holds the lock: nobody held the lock then or took it since.
    fn read_still_holds(&self, read: &[Found]) -> bool {
        let bumped = *self.bumped.lock().expect("bumped");
        matches!((self.fence.get(), bumped), (Some(fence), Some(bumped)) if fence.unchanged_at(bumped, read.is_empty()))
    }

    /// Takes the environment lock, then observes and plans again under it, so what is applied
    /// is what AWS holds now (unless `read` still holds: [`Session::apply_confirmed`]). If that
    /// is no longer the plan the operator confirmed, nothing is changed. Applies the fresh plan
    /// and releases the lock afterwards, whatever happened.
    pub(crate) async fn under_lock(
        &self,
        command: &str,
        desired: &Desired,
        confirmed: &Plan,
        read: Option<&[Found]>,
    ) -> miette::Result<(Plan, Vec<Outcome>)> {
        self.with_lock(command, self.apply_confirmed(desired, confirmed, read)).await
    }

    /// Runs `work` holding the environment lock, and releases the lock afterwards, whatever
    /// happened (`work` is not started before the lock is held).
    pub(crate) async fn with_lock<T>(
        &self,
        command: &str,
        work: impl std::future::Future<Output = miette::Result<T>>,
    ) -> miette::Result<T> {
        let c = self.config();
        let holder = lock::Holder::this_process(command);
        let held = lock::acquire(&self.clients.ssm(), &c.app, &c.env, &holder, self.fence.get()).await.map_err(|e| match e {
            lock::LockError::Aws(e) => miette!(help = credentials_hint(&e), "could not take the environment lock: {e}"),
            other => miette!(
                help = format!(
                    "wait for that run to finish. If it is no longer running (it crashed or was killed), release it with `deployer unlock --env {}`",
                    c.env
                ),
                "{other}; nothing was changed"
            ),
        })?;
        *self.bumped.lock().expect("bumped") = Some(held.bumped);
        let result = work.await;
        self.bumped.lock().expect("bumped").take();
        if let Err(e) = held.release().await {
            tracing::error!(
                "could not release the environment lock: {e}; release it with `deployer unlock --env {}`",
                c.env
            );
        }
        result
    }

    /// Deletes the lock's generation in every region of the environment where the lock is not
    /// held (`destroy`, once nothing else is left: a `failover` writes one in the region it
    /// promotes). A generation that cannot be read or deleted is logged, not fatal.
    pub(crate) async fn forget_generations(&self) {
        let c = self.config();
        for region in c.region_names() {
            let ssm: aws_sdk_ssm::Client = self.clients.get(&region);
            let forgotten = async {
                if lock::fence(&ssm, &c.app, &c.env).await?.forgettable() {
                    lock::forget_generation(&ssm, &c.app, &c.env).await?;
                }
                Ok::<_, crate::cloud::Error>(())
            };
            if let Err(e) = forgotten.await {
                tracing::warn!("could not remove the environment lock's generation in {region}: {e}");
            }
        }
    }

    /// Under the lock: observes and plans again, so what is applied is what AWS holds now. If
    /// that is no longer the plan the operator confirmed, nothing is changed. `read`, the
    /// environment as read after [`Session::read_fence`], is planned from instead when the lock's
    /// generation shows nobody held or took the lock since ([`lock::Fence::unchanged_at`]).
    pub(crate) async fn apply_confirmed(
        &self,
        desired: &Desired,
        confirmed: &Plan,
        read: Option<&[Found]>,
    ) -> miette::Result<(Plan, Vec<Outcome>)> {
        if let Some(read) = read.filter(|read| self.read_still_holds(read)) {
            tracing::info!(
                "nobody held or took the lock since the environment was read: planning from that read"
            );
            let plan = crate::plan::plan(desired, read);
            let mut outcomes = self.apply(&plan, read).await;
            self.verify(desired, &mut outcomes, &|_| true).await?;
            return Ok((plan, outcomes));
        }
        self.apply_confirmed_within(desired, confirmed, &|_| true).await
    }

    /// [`Session::apply_confirmed`] for the part of the environment `within` names (the
    /// registry of a first `up --image` whose image must be pushed first): `desired` holds only
    /// that part, and what is observed outside it is neither planned nor touched.
    pub(crate) async fn apply_confirmed_within(
        &self,
        desired: &Desired,
        confirmed: &Plan,
        within: &(dyn Fn(&Address) -> bool + Sync),
    ) -> miette::Result<(Plan, Vec<Outcome>)> {
        {
            let observed: Vec<Found> =
                self.observe().await?.into_iter().filter(|f| within(&f.address)).collect();
            let plan = crate::plan::plan(desired, &observed);
            if summary(&plan) != summary(confirmed) {
                return Err(miette!(
                    help = "run the command again to see the new plan",
                    "the environment changed after the plan was shown; nothing was changed"
                ));
            }
            let mut outcomes = self.apply(&plan, &observed).await;
            self.verify(desired, &mut outcomes, within).await?;
            Ok((plan, outcomes))
        }
    }

    /// After applying, reads the environment again and plans once more. A plan that is not
    /// empty means AWS holds something the first pass could not see or did not expect: a
    /// duplicate left by a create whose response was lost and that the SDK retried, a late
    /// create, eventual consistency. Up to [`VERIFY_ROUNDS`] more rounds apply what is left; the
    /// run succeeds only on an empty plan, and otherwise names exactly what is left. A run whose
    /// first pass failed is not retried (its error is the story). A converged environment pays
    /// nothing here: the first plan was empty and nothing was applied.
    pub(crate) async fn verify(
        &self,
        desired: &Desired,
        outcomes: &mut Vec<Outcome>,
        within: &(dyn Fn(&Address) -> bool + Sync),
    ) -> miette::Result<()> {
        for round in 1..=VERIFY_ROUNDS + 1 {
            if outcomes.iter().any(|o| o.status != Status::Done) {
                return Ok(());
            }
            let observed: Vec<Found> =
                self.observe().await?.into_iter().filter(|f| within(&f.address)).collect();
            let mut plan = crate::plan::plan(desired, &observed);
            // A delete that already succeeded in this run and still shows the same ID was
            // kept on purpose (a repository holding images under registry.keep_on_destroy) or
            // is still going away: not something another round can change.
            plan.changes.retain(|c| {
                !(c.action() == crate::plan::Action::Delete
                    && outcomes.iter().any(|o| {
                        o.action == crate::plan::Action::Delete
                            && &o.address == c.address()
                            && o.id.as_deref() == c.id()
                            && o.status == Status::Done
                    }))
            });
            if plan.is_empty() {
                return Ok(());
            }
            if round > VERIFY_ROUNDS {
                let left: Vec<String> = plan
                    .changes
                    .iter()
                    .map(|c| {
                        format!(
                            "  {} {} ({})",
                            c.action().symbol(),
                            c.address(),
                            c.reason().unwrap_or_else(|| "differs".into())
                        )
                    })
                    .collect();
                return Err(miette!(
                    help = "run the same command again; if the same changes remain, run `deployer plan` and see docs/runbooks/up-failed-midway.md",
                    "the environment did not converge after {VERIFY_ROUNDS} verification rounds; still to do:\n{}",
                    left.join("\n")
                ));
            }
            eprintln!(
                "\nverification: {} change(s) still needed after applying (round {round} of {VERIFY_ROUNDS}):",
                plan.changes.len()
            );
            if !self.settings.quiet {
                self.show_plan(&plan);
            }
            outcomes.extend(self.apply(&plan, &observed).await);
        }
        Ok(())
    }

    /// Says on stderr when the environment's lock is held (a run in progress, or one that
    /// crashed and left it), with who holds it and since when. One read. Returns what it found
    /// for JSON reports. A lock that cannot be read is logged, not fatal: these are read-only
    /// commands.
    pub(crate) async fn lock_notice(&self) -> Option<LockReport> {
        // (When AWS cannot be reached, the reader beside this one says so.)
        self.preflight().await.ok()?;
        let c = self.config();
        let found = match self.fence.get() {
            Some(fence) => fence.holder.clone()?,
            None => match lock::holder_of(&self.clients.ssm(), &c.app, &c.env).await {
                Ok(found) => found?,
                Err(e) => {
                    tracing::warn!("could not read the environment lock: {e}");
                    return None;
                }
            },
        };
        let report = match found {
            Ok(h) => {
                LockReport { description: h.describe(), process_gone: h.process_gone(), holder: Some(h) }
            }
            Err(raw) => LockReport {
                description: format!("an unreadable holder ({raw})"),
                process_gone: None,
                holder: None,
            },
        };
        eprintln!(
            "warning: environment '{}' is locked by {}. If no run is in progress, release it with `deployer unlock --env {}`.",
            c.env, report.description, c.env
        );
        Some(report)
    }

    pub(crate) fn elapsed(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    pub(crate) fn calls(&self) -> CallSummary {
        self.clients.calls.summary()
    }

    /// Runs the plan through the engine with progress on stderr.
    pub(crate) async fn apply(&self, plan: &Plan, observed: &[Found]) -> Vec<Outcome> {
        let c = self.config();
        let options = engine::Options {
            concurrency: c.engine.concurrency,
            region_order: c.engine.one_region_at_a_time.then(|| c.region_names()),
        };
        let progress = LineProgress { quiet: self.settings.quiet };
        let ids = IdMap::default();
        let ctx = self.ctx(&ids);
        let executor = crate::resources::Aws::new(ctx, observed);
        engine::apply(&executor, plan, &options, &progress).await
    }
}

/// A held lock, as the read-only commands report it.
#[derive(Clone, Debug, Serialize)]
pub struct LockReport {
    /// Who, which command, which process, for how long.
    pub description: String,
    pub holder: Option<lock::Holder>,
    /// True when the holder ran on this host and its process is gone (it crashed or was killed).
    pub process_gone: Option<bool>,
}

/// How many extra rounds a run may apply after the first pass before it gives up.
pub const VERIFY_ROUNDS: usize = 2;

/// What a plan does, for comparing two plans (states and IDs of unchanged parts aside). A wait
/// for a resource still becoming ready is left out: one that finished (a certificate issued, a
/// NAT gateway available) between the plan shown and the plan under the lock does not make
/// another plan.
pub(crate) fn summary(plan: &Plan) -> Vec<(&Address, crate::plan::Action, &[crate::resources::FieldChange])> {
    plan.changes
        .iter()
        .filter(|c| c.action() != crate::plan::Action::Wait)
        .map(|c| (c.address(), c.action(), c.fields()))
        .collect()
}

pub(crate) fn credentials_hint(e: &crate::cloud::Error) -> String {
    let text = e.to_string();
    if text.contains("credentials") || text.contains("Credentials") {
        "configure AWS credentials (AWS_PROFILE, `aws sso login`, or environment variables), or set aws.profile in the environment's config".into()
    } else if text.contains("dispatch failure") || text.contains("connect") {
        "is the endpoint reachable? For the local environment start the emulator first: scripts/emulator"
            .into()
    } else {
        "run again with -v for details".into()
    }
}

/// One line per finished change on stderr, with its elapsed time.
pub(crate) struct LineProgress {
    quiet: bool,
}

impl Progress for LineProgress {
    fn started(&self, address: &Address, what: &str) {
        tracing::debug!("{what} {address}");
    }

    fn finished(&self, o: &Outcome) {
        if self.quiet && o.status == Status::Done {
            return;
        }
        let secs = o.elapsed_ms as f64 / 1000.0;
        // Within the terminal's width (120 columns in a log): the ID is cut, never the address.
        let fixed = format!("  ok    {} {} ({secs:.1}s)", o.address, o.verb()).chars().count() + 1;
        let room = terminal_width().saturating_sub(fixed).max(16);
        let id = o.id.as_deref().map(|i| format!(" {}", crate::plan::short_id(i, room))).unwrap_or_default();
        let line = match &o.status {
            Status::Done => format!("  ok    {} {}{id} ({secs:.1}s)", o.address, o.verb()),
            Status::Failed(e) => format!("  FAIL  {} not {}: {e}", o.address, o.verb()),
            Status::Skipped(why) => format!("  skip  {} ({why})", o.address),
        };
        eprintln!("{line}");
    }
}

/// The terminal's width in columns (120 when stdout is not a terminal: a log, a pipe).
pub(crate) fn terminal_width() -> usize {
    terminal_size::terminal_size().map_or(120, |(w, _)| usize::from(w.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing;
    use crate::config::NatMode;
    use crate::model::desired;
    use crate::plan::tests::converged;
    use crate::spec::Account;

    #[test]
    fn a_resource_that_finished_becoming_ready_does_not_make_another_plan() {
        let d = desired(&testing::config(2, NatMode::PerAz), &Account::test());
        let mut observed = converged(&d);
        let busy = observed.iter_mut().find(|f| f.spec.kind() == "nat-gateway").unwrap();
        busy.state = "pending".into();
        let shown = crate::plan::plan(&d, &observed);
        assert_eq!(shown.changes.len(), 1, "a wait for the NAT gateway");
        let under_lock = crate::plan::plan(&d, &converged(&d));
        assert!(under_lock.is_empty());
        assert_eq!(summary(&shown), summary(&under_lock), "the same plan: nothing to change either way");
        // A real difference still is one.
        let mut changed = converged(&d);
        changed.retain(|f| f.spec.kind() != "nat-gateway");
        assert_ne!(summary(&shown), summary(&crate::plan::plan(&d, &changed)));
    }
}
