//! `deployer failover --env E --to REGION`: disaster recovery that needs nothing of the region
//! that failed, nor of a global control plane (IAM, Route 53's API, global STS). The replica in
//! REGION becomes the primary and serves the application there:
//!
//! 0. **probe** every region of the environment (one STS `GetCallerIdentity` signed for each,
//!    one attempt, bounded by `--probe-secs`). A region that does not answer is named, left out
//!    of everything below, and never waited on again. us-east-1 not answering means IAM and
//!    Route 53 are out of reach too (they are called there).
//! 1. **lock**: taken in REGION's SSM. When the primary region's lock can be read and a run
//!    holds it, the failover stops and names the holder.
//! 2. **promote** the replica (`PromoteReadReplica`, in REGION), wait until it is standalone;
//!    **standby**: Multi-AZ as configured;
//! 3. **secret**: REGION's copy of the credentials' secret becomes a standalone secret
//!    (`StopReplicationToReplica`, in REGION) and names the promoted instance as `host`. The
//!    password does not change: the promoted replica has its source's;
//! 4. **re-home** the database: its `deployer:address` tag says `REGION/database/db-instance/primary`,
//!    what the configuration with `regions.primary = REGION` calls it, so that configuration
//!    adopts it in place;
//! 5. **app**: REGION's task definition of that swapped configuration (`DB_HOST` on the promoted
//!    instance; the secrets were REGION's own already), then a release of REGION alone at the
//!    image it runs now, through REGION's CodeDeploy. No IAM change: the task execution role
//!    already reads every region's copy of the secret;
//! 6. **dns**: REGION's failover records PRIMARY, tried with a short bound. When Route 53's
//!    control plane does not answer (us-east-1 down), the step is left with a warning: the
//!    health-check failover records already send users to the healthy region (Route 53's data
//!    plane), and the next `failover` or `up` switches the records once Route 53 answers.
//!
//! Every step reads the state it changes and sends only what is missing, so a run after a crash,
//! or after a lost answer, finishes the job, and a run with nothing left sends no mutating
//! request (the lock is not even taken). The steps left are shown before the confirmation and
//! worked out again under the lock.
//!
//! `--dns-only` (`failover_dns` in `src/commands/failover.rs`): only the records switch, for an
//! outage in front of a healthy database (it needs Route 53's API).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use miette::miette;
use serde::Serialize;

use crate::cloud::GLOBAL_REGION;
use crate::config::Config;
use crate::engine::{Outcome, Status};
use crate::lock;
use crate::model::Desired;
use crate::plan::{self, render_human, Plan};
use crate::release::{self, RegionRelease, RegionResult};
use crate::resources::db_instance;
use crate::resources::dns_record::DnsRecord;
use crate::resources::{db_secret, rds, Ctx, Found, IdMap, Kind, Spec, TAG_ADDRESS};
use crate::session::{credentials_hint, Session};
use crate::spec::{Account, Address};

mod database;
pub use database::DbView;

pub(crate) const RUNBOOK: &str = "docs/runbooks/regional-failover.md";

/// How long the DNS step may take before it is left to the health checks.
const DNS_BOUND: Duration = Duration::from_secs(60);

pub(crate) fn dns_changes(plan: Plan) -> Plan {
    Plan { changes: plan.changes.into_iter().filter(|c| c.address().kind() == DnsRecord::NAME).collect() }
}

/// The configuration after a failover to `to`: `to` is the primary region (its database the
/// primary), the old primary the first secondary, `to`'s records PRIMARY. Pure: what
/// `[regions]` says once the operator makes the failover permanent.
pub fn swapped(config: &Config, to: &str) -> Config {
    let mut c = config.clone();
    c.primary_region = to.to_string();
    c.secondary_regions = std::iter::once(config.primary_region.clone())
        .chain(config.secondary_regions.iter().filter(|r| *r != to).cloned())
        .collect();
    c.dns.primary = to.to_string();
    c
}

/// What the application step applies of the swapped configuration's plan: `to`'s task
/// definition (where its tasks connect), nothing else. The roles need no change (the task
/// execution role reads every region's copy of the secret), and nothing else of the swapped
/// arrangement changes before the operator makes it permanent.
pub(crate) fn app_changes(plan: Plan, to: &str) -> Plan {
    let wanted = crate::model::service::task_definition(to);
    Plan { changes: plan.changes.into_iter().filter(|c| *c.address() == wanted).collect() }
}

/// The environment's global roles as the configuration made them, for planning `to`'s task
/// definition while IAM cannot be read (us-east-1 down): IAM's data plane keeps serving them in
/// every region; only its control plane is out of reach. Their IDs are their ARNs, which their
/// names and path give.
pub(crate) fn assumed_roles(desired: &Desired, account: &Account) -> Vec<Found> {
    desired
        .resources
        .iter()
        .filter_map(|r| match &r.spec {
            Spec::IamRole(role) => Some(Found {
                address: r.address.clone(),
                id: account.arn("iam", "", &format!("role{}{}", role.path, role.name)),
                spec: r.spec.clone(),
                tags: r.tags.clone(),
                state: String::new(),
                attrs: Default::default(),
            }),
            _ => None,
        })
        .collect()
}

/// Refusals that need no AWS call: a failover goes from the primary to one of its secondaries,
/// and promotes a database.
pub fn check(config: &Config, to: &str) -> miette::Result<()> {
    let env = &config.env;
    if to == config.primary_region {
        return Err(miette!(
            help = format!(
                "fail over to a secondary region ({}); `deployer status` shows what runs where",
                config.secondary_regions.join(", ")
            ),
            "--to {to}: {to} is already the primary region of environment '{env}' ([regions] primary); nothing was changed"
        ));
    }
    if !config.secondary_regions.iter().any(|r| r == to) {
        return Err(miette!(
            "--to {to}: environment '{env}' has the regions {}; nothing was changed",
            config.region_names().join(", ")
        ));
    }
    if !config.database.enabled {
        return Err(miette!(
            help = format!(
                "to make {to} serve, switch the DNS records only: `deployer failover --env {env} --to {to} --dns-only`"
            ),
            "environment '{env}' has no database tier (database.enabled is false): there is no replica in {to} to promote; nothing was changed"
        ));
    }
    Ok(())
}

/// Which regions answered the probe.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Reach {
    /// Regions (us-east-1 standing for IAM and Route 53 too) that did not answer, with why.
    pub unreachable: std::collections::BTreeMap<String, String>,
}

impl Reach {
    pub(crate) fn up(&self, region: &str) -> bool {
        !self.unreachable.contains_key(region)
    }
}

/// Probes every region of the environment and us-east-1 (IAM, Route 53) at once.
pub(crate) async fn probe(session: &Session, bound: Duration) -> Reach {
    let mut regions: BTreeSet<String> = session.config().region_names().into_iter().collect();
    regions.insert(GLOBAL_REGION.to_string());
    let answers = futures::future::join_all(
        regions.iter().map(|r| async move { (r.clone(), session.clients.probe(r, bound).await) }),
    )
    .await;
    Reach { unreachable: answers.into_iter().filter_map(|(r, a)| a.err().map(|e| (r, e))).collect() }
}

/// One step of the failover, as shown before the confirmation and reported at the end.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Step {
    pub step: &'static str,
    /// `to do`, `done` (found done before this run), `skipped` (its tier is off, or what it
    /// needs does not answer), and at the end `completed` (done by this run) or `failed` (the
    /// release CodeDeploy rolled back).
    pub status: String,
    pub what: String,
}

/// REGION's copy of the credentials' secret, as the failover sees it.
#[derive(Clone, Debug, Serialize)]
pub struct SecretView {
    pub arn: String,
    /// A writable secret of its own (not a replica).
    pub standalone: bool,
    /// The `host` it names.
    pub host: Option<String>,
}

/// What AWS holds now, as far as the failover is concerned.
pub(crate) struct Survey {
    pub(crate) db: DbView,
    pub(crate) secret: SecretView,
    /// Of the swapped configuration: the task definition change, and what a release of `to`
    /// at its running image would do. `None` when the service tier is off.
    pub(crate) app: Option<(Plan, Option<RegionRelease>)>,
    /// The records' changes; `Err(why)` when Route 53 cannot be reached; `None` without the DNS
    /// tier.
    pub(crate) dns: Option<Result<Plan, String>>,
}

pub(crate) struct Failover<'a> {
    pub(crate) session: &'a Session,
    /// Where the release of `to` reports (the command renders it).
    pub(crate) release_progress: &'a dyn release::Progress,
    pub(crate) to: String,
    pub(crate) from: String,
    pub(crate) account: Account,
    pub(crate) reach: Reach,
    /// The swapped configuration's model, and the configuration's with `dns.primary = to`.
    pub(crate) swapped: Desired,
    pub(crate) dns: Desired,
}

impl Failover<'_> {
    pub(crate) fn config(&self) -> &Config {
        self.session.config()
    }

    pub(crate) fn primary_at(&self) -> Address {
        Address::new(&self.to, "database", db_instance::DbInstance::NAME, "primary")
    }

    /// The regions that answered, and whether the global scope (IAM, Route 53) did.
    pub(crate) fn reachable(&self) -> (Vec<String>, bool) {
        let regions = self.config().region_names().into_iter().filter(|r| self.reach.up(r)).collect();
        (regions, self.reach.up(GLOBAL_REGION))
    }

    /// What `to`'s task definition is planned against: `to` itself, and the global roles, read
    /// when IAM answers and otherwise as the configuration made them ([`assumed_roles`]).
    pub(crate) async fn observe_app(&self) -> miette::Result<Vec<Found>> {
        let c = self.config();
        let global = self.reach.up(GLOBAL_REGION);
        let mut found = crate::observe::observe_scope(
            &self.session.clients,
            std::slice::from_ref(&self.to),
            global,
            &c.app,
            &c.env,
        )
        .await
        .map_err(|e| miette!("could not read the environment in {}: {e}", self.to))?;
        if !global {
            found.extend(assumed_roles(&self.swapped, &self.account));
            plan::resolve_references(&mut found);
        }
        Ok(found)
    }

    pub(crate) async fn secret_view(&self) -> miette::Result<SecretView> {
        let c = self.config();
        let name = db_secret::name(&c.app, &c.env);
        let clients = &self.session.clients;
        let missing = || {
            miette!(
                help = "`deployer up` creates it (and replicates it to every region) while the primary region answers",
                "there is no copy of the database's secret {name} in {}: the application there could not read the credentials; nothing was changed",
                self.to
            )
        };
        let out =
            db_secret::client(clients, &self.to).describe_secret().secret_id(&name).send().await.map_err(
                |e| {
                    if e.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) {
                        missing()
                    } else {
                        miette!(
                            "could not read the secret {name} in {}: {}",
                            self.to,
                            crate::cloud::Error::aws("DescribeSecret", &e, false)
                        )
                    }
                },
            )?;
        let arn = out.arn().ok_or_else(missing)?.to_string();
        let standalone = out.primary_region().is_none_or(|p| p == self.to);
        let value = db_secret::read(clients, &self.to, &arn)
            .await
            .map_err(|e| miette!("could not read the secret {name} in {}: {e}", self.to))?;
        Ok(SecretView { arn, standalone, host: value.host })
    }

    pub(crate) async fn survey(&self) -> miette::Result<Survey> {
        let c = self.config();
        let clients = &self.session.clients;
        let db = database::view(clients, &self.to, &c.database.identifier)
            .await
            .map_err(|e| {
                miette!(help = credentials_hint(&e), "could not read the database in {}: {e}", self.to)
            })?
            .ok_or_else(|| {
                miette!(
                    "there is no database {} in {}: nothing to promote; nothing was changed",
                    c.database.identifier,
                    self.to
                )
            })?;
        let replica_at = crate::model::database::replica(&self.to);
        let tagged = db.tags.get(TAG_ADDRESS).map(String::as_str);
        if !crate::resources::is_ours(&db.tags, &c.app, &c.env)
            || ![replica_at.as_str(), self.primary_at().as_str()].contains(&tagged.unwrap_or(""))
        {
            return Err(miette!(
                "database {} in {} is not environment '{}''s replica (its {TAG_ADDRESS} tag is {}); nothing was changed",
                db.identifier,
                self.to,
                c.env,
                tagged.unwrap_or("missing")
            ));
        }
        let secret = self.secret_view().await?;
        let app = if c.service.enabled {
            let observed = self.observe_app().await?;
            let changes = app_changes(plan::plan(&self.swapped, &observed), &self.to);
            let release = release::same_image_preview(clients, &self.to, &release::Names::of(c))
                .await
                .map_err(|e| miette!("could not read the service in {}: {e}", self.to))?;
            Some((changes, release))
        } else {
            None
        };
        let dns = if c.dns.enabled { Some(self.dns_plan().await) } else { None };
        Ok(Survey { db, secret, app, dns })
    }

    /// The records' changes, read within [`DNS_BOUND`]; `Err(why)` when Route 53 (or what the
    /// records point at) cannot be read.
    pub(crate) async fn dns_plan(&self) -> Result<Plan, String> {
        let (regions, global) = self.reachable();
        if !global {
            return Err(format!("Route 53's API (called in {GLOBAL_REGION}) does not answer"));
        }
        let c = self.config();
        let read = crate::observe::observe_scope(&self.session.clients, &regions, true, &c.app, &c.env);
        match tokio::time::timeout(DNS_BOUND, read).await {
            Ok(Ok(observed)) => Ok(dns_changes(plan::plan(&self.dns, &observed))),
            Ok(Err(e)) => Err(format!("could not read the records: {e}")),
            Err(_) => Err(format!("Route 53 did not answer within {}s", DNS_BOUND.as_secs())),
        }
    }

    pub(crate) fn steps(&self, s: &Survey) -> Vec<Step> {
        let c = self.config();
        let db = &c.database;
        let (to, from, id) = (&self.to, &self.from, &db.identifier);
        let status = |todo: bool| if todo { "to do" } else { "done" }.to_string();
        let mut steps = vec![
            Step {
                step: "promote",
                status: status(s.db.source.is_some()),
                what: format!(
                    "promote the read replica {id} in {to} to a standalone primary (PromoteReadReplica, automated backups kept {} day(s), taken in {} UTC), then wait until it is available (minutes on AWS). It stops replicating from {from} for good: writes {from} had not replicated yet are lost",
                    db.backup_retention_days, db.backup_window
                ),
            },
            Step {
                step: "standby",
                status: if db.multi_az { status(!s.db.multi_az) } else { "skipped".into() },
                what: if db.multi_az {
                    "make it Multi-AZ, as database.multi_az says (ModifyDBInstance, applied now)".to_string()
                } else {
                    "database.multi_az is false: no standby".into()
                },
            },
            Step {
                step: "secret",
                status: status(!s.secret.standalone || s.secret.host != s.db.endpoint),
                what: format!(
                    "make {to}'s copy of the secret {} standalone (StopReplicationToReplica, in {to}) and name the promoted instance as its host. The password does not change",
                    db_secret::name(&c.app, &c.env)
                ),
            },
            Step {
                step: "re-home",
                status: status(s.db.tags.get(TAG_ADDRESS).map(String::as_str) != Some(self.primary_at().as_str())),
                what: format!(
                    "tag it {}: the primary of the configuration with [regions] primary = \"{to}\", which then adopts it in place",
                    self.primary_at()
                ),
            },
        ];
        steps.push(match &s.app {
            None => Step {
                step: "app",
                status: "skipped".into(),
                what: "the service tier is off (service.enabled = false): no application to point at the database".into(),
            },
            Some((changes, release)) => {
                let image = release.as_ref().map(|r| release::tag_of(&r.desired_image)).unwrap_or("-");
                Step {
                    step: "app",
                    status: status(!changes.is_empty() || release.as_ref().is_none_or(|r| r.needed)),
                    what: format!(
                        "point the application in {to} at it: a new task definition revision (DB_HOST = its endpoint; the credentials from {to}'s own copy of the secret), released through {to}'s deployment group with the image it runs now ({image})"
                    ),
                }
            }
        });
        steps.push(match &s.dns {
            None => Step {
                step: "dns",
                status: "skipped".into(),
                what: "the DNS tier is off (dns.enabled = false): no failover records to switch".into(),
            },
            Some(Err(why)) => Step {
                step: "dns",
                status: "skipped".into(),
                what: format!(
                    "{why}: left to the health checks, whose failover records already send users to a healthy region. Run `deployer failover` again once Route 53 answers to make {to}'s records PRIMARY"
                ),
            },
            Some(Ok(changes)) => Step {
                step: "dns",
                status: status(!changes.is_empty()),
                what: format!("{to}'s failover records PRIMARY, {from}'s SECONDARY"),
            },
        });
        steps
    }

    pub(crate) fn show(&self, s: &Survey, steps: &[Step]) {
        let style = self.session.settings.style_stderr();
        let mut out =
            format!("Failover of environment '{}' from {} to {}:\n", self.config().env, self.from, self.to);
        for (region, why) in &self.reach.unreachable {
            let global = if region == GLOBAL_REGION { " (and IAM and Route 53 with it)" } else { "" };
            let _ = writeln!(out, "  unreachable: {region}{global}: {why}; left out");
        }
        for (i, step) in steps.iter().enumerate() {
            let _ = writeln!(out, "  {}. {:8} [{}] {}", i + 1, step.step, step.status, step.what);
            if self.session.settings.quiet || step.status != "to do" {
                continue;
            }
            let detail = match step.step {
                "app" => s.app.as_ref().map(|(p, _)| p),
                "dns" => s.dns.as_ref().and_then(|d| d.as_ref().ok()),
                _ => None,
            };
            if let Some(p) = detail.filter(|p| !p.is_empty()) {
                for line in render_human(p, style).lines() {
                    let _ = writeln!(out, "       {line}");
                }
            }
        }
        eprint!("{out}");
    }

    pub(crate) fn ctx<'a>(&'a self, ids: &'a IdMap) -> Ctx<'a> {
        self.session.ctx(ids)
    }

    pub(crate) fn progress(&self, started: Instant, what: &str) {
        if !self.session.settings.quiet {
            eprintln!("  ok    {what} ({:.1}s)", started.elapsed().as_secs_f64());
        }
    }

    /// Applies `changes` with the engine; an error naming what did not complete.
    pub(crate) async fn apply(&self, step: &str, changes: &Plan, observed: &[Found]) -> miette::Result<()> {
        if changes.is_empty() {
            return Ok(());
        }
        let outcomes: Vec<Outcome> = self.session.apply(changes, observed).await;
        let failed: Vec<String> = outcomes
            .iter()
            .filter(|o| o.status != Status::Done)
            .map(|o| format!("  {} ({})", o.address, o.status.text()))
            .collect();
        if failed.is_empty() {
            return Ok(());
        }
        Err(miette!(
            help =
                "what succeeded is kept; fix the cause and run the same `deployer failover` again to finish",
            "failover step {step}: {} of {} changes did not complete:\n{}",
            failed.len(),
            outcomes.len(),
            failed.join("\n")
        ))
    }

    /// Runs what is left, in order; each step reads its state again first. Returns the
    /// database as it ends and the release of `to`.
    pub(crate) async fn run(
        &self,
        steps: &mut [Step],
        s: Survey,
    ) -> miette::Result<(DbView, Option<RegionResult>)> {
        let c = self.config();
        let db = &c.database;
        let (to, id) = (self.to.as_str(), db.identifier.as_str());
        let ids = IdMap::default();
        let ctx = self.ctx(&ids);
        let todo = |steps: &[Step], name: &str| steps.iter().any(|s| s.step == name && s.status == "to do");
        let done = |steps: &mut [Step], name: &str| {
            if let Some(s) = steps.iter_mut().find(|s| s.step == name) {
                s.status = "completed".into();
            }
        };
        let fail = |step: &str, e: crate::cloud::Error| {
            miette!(
                help = "each step resumes where it stopped: run the same `deployer failover` again to finish",
                "failover step {step} failed: {e}"
            )
        };
        let mut view = s.db;
        if todo(steps, "promote") {
            let t = Instant::now();
            view = database::promote_replica(
                &ctx,
                to,
                id,
                i32::try_from(db.backup_retention_days).unwrap_or(35),
                &db.backup_window,
            )
            .await
            .map_err(|e| fail("promote", e))?;
            self.progress(t, &format!("promote  {id} in {to} is a standalone instance ({})", view.status));
            done(steps, "promote");
        }
        if todo(steps, "standby") {
            let t = Instant::now();
            view = database::make_multi_az(&ctx, to, id).await.map_err(|e| fail("standby", e))?;
            self.progress(t, &format!("standby  {id} in {to} is Multi-AZ"));
            done(steps, "standby");
        }
        if todo(steps, "secret") {
            let t = Instant::now();
            let clients = &self.session.clients;
            let arn = &s.secret.arn;
            database::promote_secret(clients, to, arn).await.map_err(|e| fail("secret", e))?;
            let host = view.endpoint.clone().ok_or_else(|| {
                fail(
                    "secret",
                    crate::cloud::Error::InvalidState(format!("{id} in {to} reports no endpoint yet")),
                )
            })?;
            db_secret::write_connection(clients, to, arn, &host, c.database.port)
                .await
                .map_err(|e| fail("secret", e))?;
            self.progress(t, &format!("secret   {arn} is standalone and names {host}"));
            done(steps, "secret");
        }
        if todo(steps, "re-home") {
            let t = Instant::now();
            let tags = crate::spec::tags_for(&c.app, &c.env, &self.primary_at());
            rds::add_tags(&rds::client(&self.session.clients, to), &view.arn, &tags)
                .await
                .map_err(|e| fail("re-home", e))?;
            self.progress(t, &format!("re-home  {} is {}", view.arn, self.primary_at()));
            done(steps, "re-home");
        }
        let mut released = None;
        if todo(steps, "app") {
            let t = Instant::now();
            let observed = self.observe_app().await?;
            let changes = app_changes(plan::plan(&self.swapped, &observed), to);
            self.apply("app", &changes, &observed).await?;
            let result = release::release_same_image(
                &self.session.clients,
                c,
                to,
                &format!("deployer failover to {to}"),
                self.release_progress,
            )
            .await
            .map_err(|e| fail("app (release)", e))?;
            if result.outcome == "failed" {
                // Exit 3, as for any release CodeDeploy rolled back; DNS is left as it is.
                eprintln!(
                    "\nfailover FAILED at step app: the release to {to}{} failed and CodeDeploy rolled it back: {to} still runs the revision that connects to the old primary. DNS was not switched. See docs/runbooks/failed-release.md, then run the same `deployer failover` again (the steps done are not repeated).",
                    result.deployment.as_deref().map(|d| format!(" (deployment {d})")).unwrap_or_default()
                );
                if let Some(s) = steps.iter_mut().find(|s| s.step == "app") {
                    s.status = "failed".into();
                }
                return Ok((view, Some(result)));
            }
            self.progress(
                t,
                &format!("app      {to} runs a revision that connects to {id} in {to} ({})", result.outcome),
            );
            released = Some(result);
            done(steps, "app");
        }
        if todo(steps, "dns") {
            let t = Instant::now();
            let switched = tokio::time::timeout(DNS_BOUND, async {
                let (regions, _) = self.reachable();
                let observed =
                    crate::observe::observe_scope(&self.session.clients, &regions, true, &c.app, &c.env)
                        .await
                        .map_err(|e| miette!("could not read the records: {e}"))?;
                let changes = dns_changes(plan::plan(&self.dns, &observed));
                self.apply("dns", &changes, &observed).await
            })
            .await;
            let why = match switched {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e.to_string()),
                Err(_) => Some(format!("Route 53 did not answer within {}s", DNS_BOUND.as_secs())),
            };
            match why {
                None => {
                    self.progress(t, &format!("dns      {to}'s records are PRIMARY"));
                    done(steps, "dns");
                }
                Some(why) => {
                    eprintln!(
                        "warning: failover step dns left to the health checks: {why}. Their failover records already send users to a healthy region; run `deployer failover --env {} --to {to}` again once Route 53 answers",
                        c.env
                    );
                    if let Some(s) = steps.iter_mut().find(|s| s.step == "dns") {
                        s.status = "skipped".into();
                        s.what = format!("{why}: left to the health checks");
                    }
                }
            }
        }
        Ok((view, released))
    }

    /// What the operator does next: the configuration lines that make it permanent.
    pub(crate) fn next_steps(&self, db: &DbView, dns_left: bool) -> String {
        let c = self.config();
        let after = swapped(c, &self.to);
        let secondary: Vec<String> = after.secondary_regions.iter().map(|r| format!("\"{r}\"")).collect();
        let mut out = format!(
            "\n{to} is the primary now: its database {id} is standalone and tagged {primary}, the application there connects to it{dns}.\n\
             The master password did not change; {to}'s copy of the secret {secret} is standalone and names the promoted host.\n\n\
             Make it permanent in config/{env}.toml:\n\n  [regions]\n  primary = \"{to}\"\n  secondary = [{secondary}]\n",
            to = self.to,
            id = db.identifier,
            primary = self.primary_at(),
            dns = if !c.dns.enabled {
                ""
            } else if dns_left {
                "; DNS: the health checks send users to a healthy region, and the records switch when `deployer failover` runs again with Route 53 answering"
            } else {
                ", and DNS sends users there"
            },
            secret = db_secret::name(&c.app, &c.env),
            env = c.env,
            secondary = secondary.join(", "),
        );
        if c.dns.enabled && c.dns.primary != c.primary_region {
            let _ = writeln!(out, "\n  and in [dns]: primary = \"{}\" (or remove the key)", self.to);
        }
        let _ = write!(
            out,
            "\nUntil then `deployer plan` shows how the configuration and AWS differ, and `deployer up` refuses to run (it would delete the promoted database). \
             With the new configuration and {from} answering again, `up` adopts {id} in {to} in place and wants a new replica in {from}, which needs the old primary gone first: see {RUNBOOK}.\n",
            id = db.identifier,
            to = self.to,
            from = self.from,
        );
        out
    }
}

impl Failover<'_> {
    /// Runs `work` holding the environment's lock in `to` (the region being promoted, which
    /// answers), after checking the primary region's lock where it can be read: a run holding
    /// it stops the failover.
    pub(crate) async fn with_lock<T>(
        &self,
        work: impl std::future::Future<Output = miette::Result<T>>,
    ) -> miette::Result<T> {
        let c = self.config();
        let unlock = |region: &str| {
            format!("wait for that run to finish. If it is no longer running (it crashed or was killed), release it with `deployer unlock --env {} --region {region}`", c.env)
        };
        if self.reach.up(&self.from) {
            let ssm: aws_sdk_ssm::Client = self.session.clients.get(&self.from);
            match lock::holder_of(&ssm, &c.app, &c.env).await {
                Ok(Some(Ok(h))) => {
                    return Err(miette!(help = unlock(&self.from), "environment is locked in {} by {}; nothing was changed", self.from, h.describe()))
                }
                Ok(Some(Err(raw))) => {
                    return Err(miette!(help = unlock(&self.from), "environment is locked in {} by a holder that cannot be read ({raw}); nothing was changed", self.from))
                }
                Ok(None) => {}
                Err(e) => tracing::warn!("could not read the lock in {}: {e}; going on with the lock in {}", self.from, self.to),
            }
        }
        let ssm: aws_sdk_ssm::Client = self.session.clients.get(&self.to);
        let holder = lock::Holder::this_process("failover");
        let held = lock::acquire(&ssm, &c.app, &c.env, &holder, None).await.map_err(|e| match e {
            lock::LockError::Aws(e) => miette!(
                help = credentials_hint(&e),
                "could not take the environment lock in {}: {e}",
                self.to
            ),
            other => miette!(help = unlock(&self.to), "{other} (in {}); nothing was changed", self.to),
        })?;
        let result = work.await;
        if let Err(e) = held.release().await {
            tracing::error!(
                "could not release the environment lock in {}: {e}; release it with `deployer unlock --env {} --region {}`",
                self.to,
                c.env,
                self.to
            );
        }
        result
    }
}

pub(crate) fn failover_of<'a>(
    session: &'a Session,
    release_progress: &'a dyn release::Progress,
    to: &str,
    account: &Account,
    reach: Reach,
) -> Failover<'a> {
    let c = session.config();
    let mut dns = c.clone();
    dns.dns.primary = to.to_string();
    Failover {
        session,
        release_progress,
        to: to.to_string(),
        from: c.primary_region.clone(),
        account: account.clone(),
        reach,
        swapped: crate::model::desired(&swapped(c, to), account),
        dns: crate::model::desired(&dns, account),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing;
    use crate::config::NatMode;

    fn config() -> Config {
        let mut c = testing::with_service(testing::config(2, NatMode::PerAz));
        c.dns.primary = c.primary_region.clone();
        c
    }

    #[test]
    fn the_swapped_configuration_makes_the_target_primary_and_the_old_primary_a_secondary() {
        let mut c = config();
        c.secondary_regions.push("us-west-2".into());
        let s = swapped(&c, "us-east-2");
        assert_eq!(s.primary_region, "us-east-2");
        assert_eq!(s.secondary_regions, ["us-east-1", "us-west-2"]);
        assert_eq!(s.dns.primary, "us-east-2");
        assert_eq!(s.region_names().len(), c.region_names().len());
    }

    #[test]
    fn a_failover_goes_to_a_secondary_of_an_environment_with_a_database() {
        let c = config();
        assert!(check(&c, "us-east-2").is_ok());
        let already = check(&c, "us-east-1").unwrap_err().to_string();
        assert!(already.contains("already the primary region"), "{already}");
        let unknown = check(&c, "eu-west-1").unwrap_err().to_string();
        assert!(unknown.contains("has the regions us-east-1, us-east-2"), "{unknown}");
        let mut no_db = c.clone();
        no_db.database.enabled = false;
        let e = check(&no_db, "us-east-2").unwrap_err();
        assert!(e.to_string().contains("no database tier"), "{e}");
        assert!(e.help().unwrap().to_string().contains("--dns-only"));
    }

    #[test]
    fn with_the_swapped_configuration_the_promoted_replica_is_the_primary_and_the_app_connects_to_it() {
        use crate::resources::attr;
        use crate::resources::Spec;
        let c = config();
        let account = Account::test();
        let d = crate::model::desired(&swapped(&c, "us-east-2"), &account);
        let primary = Address::new("us-east-2", "database", "db-instance", "primary");
        let Some(Spec::DbInstance(p)) = d.get(&primary).map(|r| &r.spec) else { panic!("no {primary}") };
        // The same identifier as the replica it was: adopted in place, not re-created.
        assert_eq!(p.identifier, c.database.identifier);
        let Spec::TaskDefinition(td) =
            &d.get(&crate::model::service::task_definition("us-east-2")).unwrap().spec
        else {
            panic!()
        };
        assert_eq!(
            td.container.referenced_environment["DB_HOST"],
            crate::spec::Ref::attr(primary.clone(), attr::ENDPOINT)
        );
        // Only the role and that region's task definition are taken from it.
        let everything = plan::plan(&d, &[]);
        let taken: Vec<String> =
            app_changes(everything, "us-east-2").changes.iter().map(|ch| ch.address().to_string()).collect();
        assert_eq!(
            taken,
            ["us-east-2/service/task-definition/app"],
            "no IAM change: its control plane may be down"
        );
    }
}
