//! `deployer failover`: the command around the failover workflow (`src/failover/`, whose
//! module doc lists the steps): it probes, shows what is left, asks, runs the steps under the
//! lock, and reports (text, or the `--output json` summary). `--dns-only` is the DNS step alone.

use std::time::Duration;

use miette::miette;
use serde::Serialize;

use super::release::Reporter;
use super::{confirm, exit, report, OutputFormat, Session};
use crate::cloud::GLOBAL_REGION;
use crate::failover::DbView;
use crate::failover::{check, dns_changes, failover_of, probe, swapped, Step, RUNBOOK};
use crate::plan::{self, render_human};
use crate::release::RegionResult;
use crate::session::credentials_hint;

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
    /// The regions that did not answer the probe, with why.
    unreachable: &'a std::collections::BTreeMap<String, String>,
    steps: &'a [Step],
    database: &'a DbView,
    release: Option<&'a RegionResult>,
    /// The `[regions]` that make the arrangement permanent.
    permanent: serde_json::Value,
    calls: crate::cloud::CallSummary,
    elapsed_secs: f64,
}

/// `deployer failover --env E --to REGION` (see the module docs); `dns_only` is the DNS step
/// alone. `probe_bound` bounds each region's probe.
pub async fn failover(
    session: &Session,
    assume_yes: bool,
    to: &str,
    dns_only: bool,
    probe_bound: Duration,
) -> miette::Result<u8> {
    if dns_only {
        return failover_dns(session, assume_yes, to).await;
    }
    let c = session.config();
    check(c, to)?;
    let reach = probe(session, probe_bound).await;
    if !reach.up(to) {
        return Err(miette!(
            help = "a failover goes to a region that answers; check the credentials and the network, or fail over to another region",
            "{to} does not answer ({}); nothing was changed",
            reach.unreachable[to]
        ));
    }
    for (region, why) in &reach.unreachable {
        let global = if region == GLOBAL_REGION { " (IAM and Route 53 are called there)" } else { "" };
        eprintln!("warning: {region} does not answer{global}: {why}. It is left out of this failover.");
    }
    let account =
        session.clients.account_via(to).await.map_err(|e| {
            miette!(help = credentials_hint(&e), "could not read the AWS account in {to}: {e}")
        })?;
    let reporter = Reporter::new(false, session.settings.quiet);
    let mut f = failover_of(session, &reporter, to, &account, reach);
    if c.service.enabled {
        // `to`'s task definition names its own region's secrets by ARN (the only region whose
        // task definition the failover changes).
        crate::resources::task_definition::resolve_secret_names(
            &session.clients,
            &mut f.swapped.resources,
            &c.service.secrets,
            &[to.to_string()],
        )
        .await
        .map_err(|e| miette!("{e}; nothing was changed"))?;
    }
    let f = f;
    let survey = f.survey().await?;
    let steps = f.steps(&survey);
    let dns_left =
        |steps: &[Step]| c.dns.enabled && steps.iter().any(|s| s.step == "dns" && s.status == "skipped");
    let report = |steps: &[Step], db: &DbView, release: Option<&RegionResult>, nothing: bool, ok: bool| {
        let after = swapped(c, to);
        report(&Report {
            command: "failover",
            env: &c.env,
            from: &f.from,
            to,
            ok,
            nothing_to_do: nothing,
            unreachable: &f.reach.unreachable,
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
            eprint!("{}", f.next_steps(&survey.db, dns_left(&steps)));
        }
        return Ok(exit::OK);
    }
    f.show(&survey, &steps);
    let question =
        format!("\nFail over environment '{}' to {to}? The replica stops replicating for good.", c.env);
    if !confirm(&question, assume_yes).await? {
        eprintln!("Nothing changed.");
        return Ok(exit::ERROR);
    }
    eprintln!();
    f.with_lock(async {
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
        eprint!("{}", f.next_steps(&db, dns_left(&steps)));
        Ok(exit::OK)
    })
    .await
}

/// `deployer failover --to REGION --dns-only`: the Route 53 failover records switched so that
/// REGION's is PRIMARY. Only the `dns-record` changes of a plan against the configuration with
/// `dns.primary = REGION` are applied, under the lock; the rest of the environment is not touched.
pub async fn failover_dns(session: &Session, assume_yes: bool, to: &str) -> miette::Result<u8> {
    session.preflight().await?;
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
