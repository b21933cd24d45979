//! `deployer failover --to REGION --dns-only`: the Route 53 failover records switched so that
//! REGION's is PRIMARY. Only the `dns-record` changes of a plan against the configuration with
//! `dns.primary = REGION` are applied, under the lock; the rest of the environment is not touched.

use miette::miette;

use super::{confirm, exit, Session};
use crate::plan::{self, render_human, Plan};
use crate::resources::{dns_record::DnsRecord, Kind};

fn dns_changes(plan: Plan) -> Plan {
    Plan { changes: plan.changes.into_iter().filter(|c| c.address().kind() == DnsRecord::NAME).collect() }
}

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
                 then `plan` and `drift` show the records, and `up` would switch them back. See docs/runbooks/regional-failover.md."
            );
            Ok(exit::OK)
        })
        .await
}
