use std::collections::BTreeMap;

use serde::Serialize;

use std::fmt::Write;

use super::{emit, exit, report, OutputFormat, Session};
use crate::plan;

type Row<'a> = plan::Standing<'a>;

/// What `status` shows (`--tier`, `--region`, `--only-problems`, `--wide`).
#[derive(Clone, Debug, Default)]
pub struct StatusFilter {
    pub tier: Option<String>,
    pub region: Option<String>,
    pub only_problems: bool,
    pub wide: bool,
}

impl StatusFilter {
    fn keeps(&self, row: &Row) -> bool {
        let address = crate::spec::Address::parse(row.address);
        self.tier.as_deref().is_none_or(|t| address.as_ref().is_some_and(|a| a.tier() == t))
            && self.region.as_deref().is_none_or(|r| address.as_ref().is_some_and(|a| a.region() == r))
            && (!self.only_problems || row.is_problem())
    }
}

/// `differs` yellow, `in progress` cyan, what is missing or extra red (ANSI, on a terminal).
fn paint_sync(sync: &str, color: bool) -> String {
    let code = match sync {
        "differs" => "33",
        "in progress" => "36",
        "missing" | "orphan" | "duplicate" => "31",
        _ => return sync.to_string(),
    };
    if color {
        format!("\x1b[{code}m{sync}\x1b[0m")
    } else {
        sync.to_string()
    }
}

/// `deployer status`: what exists where, region by region, and whether each resource matches
/// the configuration.
pub async fn status(session: &Session, filter: &StatusFilter) -> miette::Result<u8> {
    // A filter that can match nothing is a mistake: said before any AWS call.
    const TIERS: &[&str] = crate::spec::names::tier::ALL;
    if let Some(tier) = filter.tier.as_deref().filter(|t| !TIERS.contains(t)) {
        return Err(miette::miette!("--tier {tier:?} is not a tier: one of {}", TIERS.join(", ")));
    }
    let mut regions_known = session.config().region_names();
    regions_known.push(crate::spec::GLOBAL.to_string());
    if let Some(region) = filter.region.as_deref().filter(|r| !regions_known.iter().any(|k| k == r)) {
        return Err(miette::miette!(
            "--region {region:?} is not a region of environment '{}': one of {}",
            session.config().env,
            regions_known.join(", ")
        ));
    }
    let (observed, desired, lock) = tokio::join!(session.observe(), session.desired(), session.lock_notice());
    let (observed, desired) = (observed?, desired?);
    let plan = plan::plan(&desired, &observed);
    let releases = if session.config().service.enabled {
        crate::release::status(&session.clients, session.config())
            .await
            .map_err(|e| miette::miette!("could not read the releases: {e}"))?
    } else {
        vec![]
    };
    let mut regions: BTreeMap<String, Vec<Row>> =
        session.config().region_names().into_iter().map(|r| (r, Vec::new())).collect();
    for row in plan::standing(&desired, &observed, &plan) {
        let region = row.address.split('/').next().unwrap_or_default().to_string();
        regions.entry(region).or_default().push(row);
    }
    for rows in regions.values_mut() {
        rows.retain(|r| filter.keeps(r));
    }
    regions.retain(|region, rows| !rows.is_empty() || filter.region.as_deref().is_none_or(|r| r == region));
    if session.settings.output == OutputFormat::Json {
        #[derive(Serialize)]
        struct Report<'a> {
            env: &'a str,
            regions: &'a BTreeMap<String, Vec<Row<'a>>>,
            /// Per region: the running revision, a deployment in flight, the last success.
            releases: &'a [crate::release::ReleaseStatus],
            lock: Option<super::LockReport>,
        }
        report(&Report { env: &session.config().env, regions: &regions, releases: &releases, lock })?;
        return Ok(exit::OK);
    }
    let env = &session.config().env;
    let mut out = String::new();
    let _ = writeln!(out, "Environment '{env}' (app '{}')", session.config().app);
    for (region, rows) in &regions {
        let role = if region == crate::spec::GLOBAL {
            "global services: IAM, Route 53, the CloudWatch dashboard"
        } else if *region == session.config().primary_region {
            "primary"
        } else {
            "secondary"
        };
        let _ = writeln!(
            out,
            "\n{region} ({role}): {} resources",
            rows.iter().filter(|r| r.sync != "missing").count()
        );
        let width = rows.iter().map(|r| r.address.len()).max().unwrap_or(0);
        let state_width = rows.iter().map(|r| r.state.len()).max().unwrap_or(0);
        // What is left of the terminal for the ID (at least 16 characters); all of it --wide.
        let room = crate::session::terminal_width()
            .saturating_sub(2 + width + 2 + 2 + state_width + 2 + "in progress".len());
        let ids: Vec<String> = rows
            .iter()
            .map(|r| if filter.wide { r.id.to_string() } else { crate::plan::short_id(r.id, room.max(16)) })
            .collect();
        let id_width = ids.iter().map(|i| i.chars().count()).max().unwrap_or(0);
        for (r, id) in rows.iter().zip(&ids) {
            let _ = writeln!(
                out,
                "  {:width$}  {id:id_width$}  {:state_width$}  {}",
                r.address,
                r.state,
                paint_sync(r.sync, session.settings.color_stdout)
            );
        }
        if let Some(rel) = releases.iter().find(|r| &r.region == region) {
            let _ = writeln!(
                out,
                "  release: runs {} ({})",
                rel.running_image.as_deref().unwrap_or("-"),
                rel.running_task_definition.as_deref().unwrap_or("no service")
            );
            if let Some(d) = &rel.in_flight {
                let split: Vec<String> = rel.traffic.iter().map(|(k, v)| format!("{k} {v}%")).collect();
                let _ = writeln!(
                    out,
                    "  release: deployment {} {}{}{}",
                    d.id,
                    d.status,
                    if d.in_termination_wait { " (termination wait)" } else { "" },
                    if split.is_empty() { String::new() } else { format!(", traffic {}", split.join(" / ")) }
                );
            }
            if let Some(d) = &rel.last_success {
                let _ = writeln!(
                    out,
                    "  release: last success {} finished {}",
                    d.id,
                    d.completed.as_deref().unwrap_or("-")
                );
            }
        }
    }
    let counts = plan.counts();
    if plan.is_empty() {
        let _ = writeln!(out, "\nEverything matches the configuration.");
    } else {
        let _ = writeln!(out,
            "\nNot converged: {} missing, {} differ, {} to delete (orphans or duplicates). Run `deployer plan --env {env}` for details.",
            counts.create,
            counts.update + counts.replace,
            counts.delete
        );
    }
    emit(&out);
    Ok(exit::OK)
}

#[cfg(test)]
mod tests {
    use crate::plan::short_id;

    #[test]
    fn an_id_is_cut_to_its_resource_part_and_then_from_the_front() {
        assert_eq!(short_id("vpc-0abc", 16), "vpc-0abc");
        assert_eq!(
            short_id("arn:aws:ecs:us-east-1:123456789012:service/webapp-prod/webapp-prod", 60),
            "service/webapp-prod/webapp-prod"
        );
        let cut = short_id(
            "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/webapp-prod-blue/0123456789abcdef",
            20,
        );
        assert_eq!(cut.chars().count(), 20);
        assert!(cut.starts_with('…') && cut.ends_with("0123456789abcdef"), "{cut}");
    }
}
