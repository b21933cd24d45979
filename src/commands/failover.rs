//! `deployer failover --env E --to REGION`: disaster recovery. The replica in REGION becomes the
//! primary and serves the application there:
//!
//! 1. **promote** the replica (`PromoteReadReplica`, backups as configured), wait until it is
//!    available with no source;
//! 2. **secret**: RDS manages its master password in REGION's Secrets Manager (a promoted
//!    replica has none; the password rotates), Multi-AZ as configured;
//! 3. **re-home** it: its `deployer:address` tag says `REGION/database/db-instance/primary`,
//!    what the configuration with `regions.primary = REGION` calls it, so that configuration
//!    adopts it in place;
//! 4. **app**: the changes of that swapped configuration to the task execution role (it may
//!    read the new secret) and to REGION's task definition (`DB_HOST`, the DB secrets), applied
//!    by the engine, then a release of REGION alone with the image it runs now;
//! 5. **dns**: REGION's failover records PRIMARY (the `--dns-only` step).
//!
//! Every step reads the state it changes and sends only what is missing, so a run after a crash,
//! or after a lost answer, finishes the job, and a run with nothing left sends no mutating
//! request (the lock is not even taken). The steps left are shown before the confirmation and
//! worked out again under the lock.
//!
//! `--dns-only` ([`failover_dns`]): only the records switch, for an outage in front of a healthy
//! database.

use std::fmt::Write as _;
use std::time::Instant;

use miette::miette;
use serde::Serialize;

use super::{confirm, credentials_hint, exit, print_json, OutputFormat, Session};
use crate::config::Config;
use crate::engine::{Outcome, Status};
use crate::model::{Account, Address, Desired};
use crate::plan::{self, render_human, Plan};
use crate::release::{self, RegionRelease, RegionResult, Reporter};
use crate::resources::db_instance::{self, DbView};
use crate::resources::dns_record::DnsRecord;
use crate::resources::{db_replica, rds, Ctx, Found, IdMap, Kind, TAG_ADDRESS};

const RUNBOOK: &str = "docs/runbooks/regional-failover.md";

fn dns_changes(plan: Plan) -> Plan {
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

/// What the application step applies of the swapped configuration's plan: the task execution
/// role (which secret tasks may read) and `to`'s task definition (where they connect). Nothing
/// else of the swapped arrangement (the peering, the registry's replication, the other regions)
/// changes before the operator makes it permanent.
fn app_changes(plan: Plan, to: &str) -> Plan {
    let wanted = [crate::model::service::task_execution_role(), crate::model::service::task_definition(to)];
    Plan { changes: plan.changes.into_iter().filter(|c| wanted.contains(c.address())).collect() }
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

/// One step of the failover, as shown before the confirmation and reported at the end.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Step {
    pub step: &'static str,
    /// `to do`, `done` (found done before this run), `skipped` (its tier is off), and at the
    /// end `completed` (done by this run) or `failed` (the release CodeDeploy rolled back).
    pub status: String,
    pub what: String,
}

/// What AWS holds now, as far as the failover is concerned.
struct Survey {
    db: DbView,
    /// Of the swapped configuration: the role and task definition changes, and what a release
    /// of `to` at its running image would do. `None` when the service tier is off.
    app: Option<(Plan, Option<RegionRelease>)>,
    /// The records' changes; `None` without the DNS tier.
    dns: Option<Plan>,
}

struct Failover<'a> {
    session: &'a Session,
    to: String,
    from: String,
    /// The swapped configuration's model, and the configuration's with `dns.primary = to`.
    swapped: Desired,
    dns: Desired,
}

impl Failover<'_> {
    fn config(&self) -> &Config {
        self.session.config()
    }

    fn primary_at(&self) -> Address {
        Address::new(&self.to, "database", db_instance::DbInstance::NAME, "primary")
    }

    async fn survey(&self) -> miette::Result<Survey> {
        let c = self.config();
        let clients = &self.session.clients;
        let (db, observed) = tokio::join!(
            db_instance::view(clients, &self.to, &c.database.identifier),
            self.session.observe()
        );
        let db = db
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
        let observed = observed?;
        let app = if c.service.enabled {
            let changes = app_changes(plan::plan(&self.swapped, &observed), &self.to);
            let release = release::same_image_preview(clients, &self.to, &release::Names::of(c))
                .await
                .map_err(|e| miette!("could not read the service in {}: {e}", self.to))?;
            Some((changes, release))
        } else {
            None
        };
        let dns = c.dns.enabled.then(|| dns_changes(plan::plan(&self.dns, &observed)));
        Ok(Survey { db, app, dns })
    }

    fn steps(&self, s: &Survey) -> Vec<Step> {
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
                step: "secret",
                status: status(s.db.master_secret_arn.is_none()),
                what: format!(
                    "let RDS manage its master password in {to}'s Secrets Manager{} (ModifyDBInstance, applied now): RDS generates a NEW password, so the master password rotates, and the application reads it from the new secret",
                    if db.multi_az { ", and make it Multi-AZ" } else { "" }
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
                        "point the application in {to} at it: the task execution role may read the new secret, a new task definition revision (DB_HOST = its endpoint, the DB secrets from its secret), released through {to}'s deployment group with the image it runs now ({image})"
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
            Some(changes) => Step {
                step: "dns",
                status: status(!changes.is_empty()),
                what: format!("{to}'s failover records PRIMARY, {from}'s SECONDARY"),
            },
        });
        steps
    }

    fn show(&self, s: &Survey, steps: &[Step]) {
        let style = self.session.settings.style_stderr();
        let mut out =
            format!("Failover of environment '{}' from {} to {}:\n", self.config().env, self.from, self.to);
        for (i, step) in steps.iter().enumerate() {
            let _ = writeln!(out, "  {}. {:8} [{}] {}", i + 1, step.step, step.status, step.what);
            if self.session.settings.quiet || step.status != "to do" {
                continue;
            }
            let detail = match step.step {
                "app" => s.app.as_ref().map(|(p, _)| p),
                "dns" => s.dns.as_ref(),
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

    fn ctx<'a>(&'a self, ids: &'a IdMap) -> Ctx<'a> {
        let c = self.config();
        Ctx {
            clients: &self.session.clients,
            ids,
            policy: c.deletion_policy(),
            timeout: c.engine.wait_timeout,
            timeouts: c.wait_timeouts(),
        }
    }

    fn progress(&self, started: Instant, what: &str) {
        if !self.session.settings.quiet {
            eprintln!("  ok    {what} ({:.1}s)", started.elapsed().as_secs_f64());
        }
    }

    /// Applies `changes` with the engine; an error naming what did not complete.
    async fn apply(&self, step: &str, changes: &Plan, observed: &[Found]) -> miette::Result<()> {
        if changes.is_empty() {
            return Ok(());
        }
        let outcomes: Vec<Outcome> = self.session.apply(changes, observed).await;
        let failed: Vec<String> = outcomes
            .iter()
            .filter(|o| o.status != Status::Done)
            .map(|o| format!("  {} ({})", o.address, super::status_text(&o.status)))
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
    async fn run(&self, steps: &mut [Step], s: Survey) -> miette::Result<(DbView, Option<RegionResult>)> {
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
            view = db_replica::promote(
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
        if todo(steps, "secret") {
            let t = Instant::now();
            view = db_instance::manage_master_secret(&ctx, to, id, db.multi_az)
                .await
                .map_err(|e| fail("secret", e))?;
            self.progress(
                t,
                &format!(
                    "secret   {id} in {to}: RDS manages its master password in {}",
                    view.master_secret_arn.as_deref().unwrap_or("?")
                ),
            );
            done(steps, "secret");
        }
        if todo(steps, "re-home") {
            let t = Instant::now();
            let tags = crate::model::tags_for(&c.app, &c.env, &self.primary_at());
            rds::add_tags(&rds::client(&self.session.clients, to), &view.arn, &tags)
                .await
                .map_err(|e| fail("re-home", e))?;
            self.progress(t, &format!("re-home  {} is {}", view.arn, self.primary_at()));
            done(steps, "re-home");
        }
        let mut released = None;
        if todo(steps, "app") {
            let t = Instant::now();
            let observed = self.session.observe().await?;
            let changes = app_changes(plan::plan(&self.swapped, &observed), to);
            self.apply("app", &changes, &observed).await?;
            let reporter = Reporter::new(false, self.session.settings.quiet);
            let result = release::release_same_image(
                &self.session.clients,
                c,
                to,
                &format!("deployer failover to {to}"),
                &reporter,
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
            let observed = self.session.observe().await?;
            let changes = dns_changes(plan::plan(&self.dns, &observed));
            self.apply("dns", &changes, &observed).await?;
            done(steps, "dns");
        }
        Ok((view, released))
    }

    /// What the operator does next: the configuration lines that make it permanent.
    fn next_steps(&self, db: &DbView) -> String {
        let c = self.config();
        let after = swapped(c, &self.to);
        let secondary: Vec<String> = after.secondary_regions.iter().map(|r| format!("\"{r}\"")).collect();
        let mut out = format!(
            "\n{to} is the primary now: its database {id} is standalone and tagged {primary}, the application there connects to it{dns}.\n\
             The master password was rotated by RDS: whatever else connects to the database reads it from {secret}.\n\n\
             Make it permanent in config/{env}.toml:\n\n  [regions]\n  primary = \"{to}\"\n  secondary = [{secondary}]\n",
            to = self.to,
            id = db.identifier,
            primary = self.primary_at(),
            dns = if c.dns.enabled { ", and DNS sends users there" } else { "" },
            secret = db.master_secret_arn.as_deref().unwrap_or("its new secret"),
            env = c.env,
            secondary = secondary.join(", "),
        );
        if c.dns.enabled && c.dns.primary != c.primary_region {
            let _ = writeln!(out, "\n  and in [dns]: primary = \"{}\" (or remove the key)", self.to);
        }
        let _ = write!(
            out,
            "\nUntil then `deployer plan` shows how the configuration and AWS differ, and `deployer up` refuses to run (it would delete the promoted database). \
             With the new configuration, `plan` adopts {id} in {to} in place and wants a new replica in {from}, which needs the old primary gone first: see {RUNBOOK}.\n",
            id = db.identifier,
            to = self.to,
            from = self.from,
        );
        out
    }
}

/// The `--output json` summary.
#[derive(Serialize)]
struct Report<'a> {
    command: &'static str,
    env: &'a str,
    from: &'a str,
    to: &'a str,
    ok: bool,
    /// Nothing was left to do: no change was sent.
    nothing_to_do: bool,
    steps: &'a [Step],
    database: &'a DbView,
    release: Option<&'a RegionResult>,
    /// The `[regions]` that make the arrangement permanent.
    permanent: serde_json::Value,
    calls: crate::cloud::CallSummary,
    elapsed_secs: f64,
}

/// `deployer failover --env E --to REGION` (see the module docs); `dns_only` is the DNS step
/// alone.
pub async fn failover(session: &Session, assume_yes: bool, to: &str, dns_only: bool) -> miette::Result<u8> {
    if dns_only {
        return failover_dns(session, assume_yes, to).await;
    }
    let c = session.config();
    check(c, to)?;
    let account = session
        .clients
        .account()
        .await
        .map_err(|e| miette!(help = credentials_hint(&e), "could not read the AWS account: {e}"))?;
    let f = failover_of(session, to, &account);
    let survey = f.survey().await?;
    let steps = f.steps(&survey);
    let report = |steps: &[Step], db: &DbView, release: Option<&RegionResult>, nothing: bool, ok: bool| {
        let after = swapped(c, to);
        print_json(&Report {
            command: "failover",
            env: &c.env,
            from: &f.from,
            to,
            ok,
            nothing_to_do: nothing,
            steps,
            database: db,
            release,
            permanent: serde_json::json!({"regions": {"primary": after.primary_region, "secondary": after.secondary_regions}}),
            calls: session.calls(),
            elapsed_secs: session.elapsed(),
        })
    };
    let json = session.settings.output == OutputFormat::Json;
    if !steps.iter().any(|s| s.status == "to do") {
        if json {
            report(&steps, &survey.db, None, true, true)?;
        } else {
            f.show(&survey, &steps);
            eprintln!(
                "\nNothing to do: {to} already serves environment '{}' ({} AWS reads, no changes sent).",
                c.env,
                session.calls().reads
            );
            eprint!("{}", f.next_steps(&survey.db));
        }
        return Ok(exit::OK);
    }
    f.show(&survey, &steps);
    let question = format!(
        "\nFail over environment '{}' to {to}? The replica stops replicating for good and the master password rotates.",
        c.env
    );
    if !confirm(&question, assume_yes).await? {
        eprintln!("Nothing changed.");
        return Ok(exit::ERROR);
    }
    eprintln!();
    session
        .with_lock("failover", async {
            // Under the lock: what is left now (another run may have done some of it).
            let survey = f.survey().await?;
            let fresh = f.steps(&survey);
            if !fresh.iter().any(|s| s.status == "to do") {
                eprintln!("Nothing to do: another run finished the failover meanwhile.");
                if json {
                    report(&fresh, &survey.db, None, true, true)?;
                }
                return Ok(exit::OK);
            }
            let mut steps = fresh;
            let (db, released) = f.run(&mut steps, survey).await?;
            let failed = steps.iter().any(|s| s.status == "failed");
            if json {
                report(&steps, &db, released.as_ref(), false, !failed)?;
            }
            if failed {
                return Ok(exit::RELEASE_FAILED);
            }
            eprintln!(
                "\nfailover: done in {:.1}s ({} AWS reads, {} changes sent).",
                session.elapsed(),
                session.calls().reads,
                session.calls().mutating
            );
            eprint!("{}", f.next_steps(&db));
            Ok(exit::OK)
        })
        .await
}

fn failover_of<'a>(session: &'a Session, to: &str, account: &Account) -> Failover<'a> {
    let c = session.config();
    let mut dns = c.clone();
    dns.dns.primary = to.to_string();
    Failover {
        session,
        to: to.to_string(),
        from: c.primary_region.clone(),
        swapped: crate::model::desired(&swapped(c, to), account),
        dns: crate::model::desired(&dns, account),
    }
}

/// `deployer failover --to REGION --dns-only`: the Route 53 failover records switched so that
/// REGION's is PRIMARY. Only the `dns-record` changes of a plan against the configuration with
/// `dns.primary = REGION` are applied, under the lock; the rest of the environment is not touched.
pub async fn failover_dns(session: &Session, assume_yes: bool, to: &str) -> miette::Result<u8> {
    let env = session.config().env.clone();
    let mut config = session.config().clone();
    config.dns.primary = to.to_string();
    let account =
        session.clients.account().await.map_err(|e| miette!("could not read the AWS account: {e}"))?;
    let desired = crate::model::desired(&config, &account);
    let observed = session.observe().await?;
    let changes = dns_changes(plan::plan(&desired, &observed));
    if changes.is_empty() {
        eprintln!("Nothing to do: {to} is already PRIMARY for every name of '{env}'.");
        return Ok(exit::OK);
    }
    eprint!("{}", render_human(&changes, session.settings.style_stderr()));
    if !confirm(&format!("\nMake {to} the PRIMARY region of environment '{env}' in DNS?"), assume_yes).await?
    {
        eprintln!("Nothing changed.");
        return Ok(exit::ERROR);
    }
    session
        .with_lock("failover", async {
            // Under the lock: plan again from what AWS holds now.
            let observed = session.observe().await?;
            let changes = dns_changes(plan::plan(&desired, &observed));
            let outcomes = session.apply(&changes, &observed).await;
            super::finish(session, "failover", &changes, &outcomes)?;
            eprintln!(
                "\n{to} is now PRIMARY in DNS. To keep it, set `[dns] primary = \"{to}\"` in config/{env}.toml: until \
                 then `plan` and `drift` show the records, and `up` would switch them back. See {RUNBOOK}."
            );
            Ok(exit::OK)
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::NatMode;
    use crate::model::testing;

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
            crate::model::Ref::attr(primary.clone(), attr::ENDPOINT)
        );
        // Only the role and that region's task definition are taken from it.
        let everything = plan::plan(&d, &[]);
        let taken: Vec<String> =
            app_changes(everything, "us-east-2").changes.iter().map(|ch| ch.address().to_string()).collect();
        assert_eq!(taken, ["global/iam/iam-role/task-execution", "us-east-2/service/task-definition/app"]);
    }
}
