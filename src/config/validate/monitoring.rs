//! `[monitoring]` and `[drift]`: where alarms notify, their thresholds, and the scheduled drift
//! check, checked before any request.

use std::collections::BTreeSet;

use super::super::load::Merged;
use super::super::{DriftConfig, MonitoringConfig};
use super::{endpoint_url_problem, Check};

/// What is wrong with an email address for an SNS subscription, if anything.
fn email_problem(address: &str) -> Option<&'static str> {
    let Some((local, domain)) = address.split_once('@') else {
        return Some("has no @");
    };
    if local.is_empty() || domain.contains('@') {
        return Some("is not name@domain");
    }
    if address.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';')) {
        return Some("contains a space or a character an address cannot hold");
    }
    if !domain.contains('.') || domain.starts_with('.') || domain.ends_with('.') || domain.contains("..") {
        return Some("has no valid domain");
    }
    None
}

/// What is wrong with an EventBridge Scheduler expression, if anything.
pub(crate) fn schedule_problem(expression: &str) -> Option<String> {
    if let Some(inner) = expression.strip_prefix("rate(").and_then(|r| r.strip_suffix(')')) {
        let mut words = inner.split_whitespace();
        let (Some(n), Some(unit), None) = (words.next(), words.next(), words.next()) else {
            return Some("a rate is `rate(<number> <unit>)`".into());
        };
        let Ok(n) = n.parse::<u64>() else {
            return Some(format!("`{n}` is not a whole number"));
        };
        let minutes = match unit {
            "minute" | "minutes" => n,
            "hour" | "hours" => n * 60,
            "day" | "days" => n * 24 * 60,
            other => return Some(format!("`{other}` is not minutes, hours or days")),
        };
        let singular = matches!(unit, "minute" | "hour" | "day");
        if (n == 1) != singular {
            return Some(format!("write `{n} {unit}` as EventBridge wants it (`1 hour`, `6 hours`)"));
        }
        if minutes < 5 {
            return Some("a drift check more often than every 5 minutes would overlap itself".into());
        }
        return None;
    }
    if let Some(inner) = expression.strip_prefix("cron(").and_then(|r| r.strip_suffix(')')) {
        let fields = inner.split_whitespace().count();
        if fields != 6 {
            return Some(format!(
                "a cron expression has 6 fields (minutes hours day-of-month month day-of-week year), not {fields}"
            ));
        }
        return None;
    }
    Some("it is neither `rate(…)` nor `cron(…)`".into())
}

/// What is wrong with the drift image reference, if anything: an ECR image of an account,
/// with a tag or a digest.
fn image_problem(image: &str) -> Option<String> {
    let Some((registry, rest)) = image.split_once('/') else {
        return Some("it names no registry (`<account>.dkr.ecr.<region>.amazonaws.com/…`)".into());
    };
    let parts: Vec<&str> = registry.split('.').collect();
    let ecr = parts.len() >= 6
        && parts[0].len() == 12
        && parts[0].bytes().all(|b| b.is_ascii_digit())
        && parts[1] == "dkr"
        && parts[2] == "ecr";
    if !ecr {
        return Some(format!(
            "`{registry}` is not an ECR registry (`<12-digit account>.dkr.ecr.<region>.amazonaws.com`)"
        ));
    }
    let (repository, reference) = match rest.split_once('@') {
        Some((repo, digest)) if digest.starts_with("sha256:") => (repo, digest),
        Some(_) => return Some("a digest is `@sha256:<hex>`".into()),
        None => match rest.rsplit_once(':') {
            Some((repo, tag)) if !tag.is_empty() => (repo, tag),
            _ => return Some("it has no tag (`:<tag>`) or digest (`@sha256:…`)".into()),
        },
    };
    if repository.is_empty()
        || !repository.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_./".contains(&b))
    {
        return Some(format!("`{repository}` is not an ECR repository name"));
    }
    let _ = reference;
    None
}

impl Check<'_> {
    pub(super) fn monitoring(&mut self, merged: &Merged) -> Option<MonitoringConfig> {
        let before = self.issues.len();
        let enabled = self.flag(merged, "monitoring.enabled");
        let mut lists = Vec::new();
        for (key, problem) in [
            ("monitoring.emails", &(|v: &str| email_problem(v).map(str::to_string)) as &dyn Fn(&str) -> _),
            ("monitoring.https_endpoints", &|v: &str| {
                if !v.starts_with("https://") {
                    return Some("is not an https:// URL (SNS sends alarms in the clear otherwise)".into());
                }
                endpoint_url_problem(v).map(|p| format!("is not a URL: {p}"))
            }),
        ] {
            let written = merged.strings(key);
            let mut seen = BTreeSet::new();
            let mut values = Vec::new();
            for item in written.iter().flat_map(|list| list.value.iter()) {
                if let Some(p) = problem(&item.value) {
                    self.bad(
                        "config::invalid_value",
                        key,
                        Some(item),
                        format!("`{}` {p}", item.value),
                        "list the addresses SNS should notify",
                    );
                } else if !seen.insert(item.value.clone()) {
                    self.bad(
                        "config::duplicate_value",
                        key,
                        Some(item),
                        format!("`{}` is listed twice", item.value),
                        "list each once",
                    );
                }
                values.push(item.value.clone());
            }
            lists.push(values);
        }
        let mut n = |key: &str, what: &str| self.in_range(merged, key, what).map(|v| v as u32);
        let alb_5xx_percent = n("monitoring.alb_5xx_percent", "percent of requests answered with a 5xx");
        let latency_p99_ms = n("monitoring.latency_p99_ms", "milliseconds");
        let unhealthy_hosts = n("monitoring.unhealthy_hosts", "unhealthy targets");
        let ecs_cpu_percent = n("monitoring.ecs_cpu_percent", "percent CPU");
        let ecs_memory_percent = n("monitoring.ecs_memory_percent", "percent memory");
        let db_cpu_percent = n("monitoring.db_cpu_percent", "percent CPU");
        let db_free_storage_percent = n("monitoring.db_free_storage_percent", "percent of the storage");
        let db_connections = n("monitoring.db_connections", "connections");
        let replica_lag_secs = n("monitoring.replica_lag_secs", "seconds");
        let evaluation_minutes = n("monitoring.evaluation_minutes", "minutes");
        if self.issues.len() != before {
            return None;
        }
        let https_endpoints = lists.pop().unwrap_or_default();
        let emails = lists.pop().unwrap_or_default();
        Some(MonitoringConfig {
            enabled,
            emails,
            https_endpoints,
            alb_5xx_percent: alb_5xx_percent?,
            latency_p99_ms: latency_p99_ms?,
            unhealthy_hosts: unhealthy_hosts?,
            ecs_cpu_percent: ecs_cpu_percent?,
            ecs_memory_percent: ecs_memory_percent?,
            db_cpu_percent: db_cpu_percent?,
            db_free_storage_percent: db_free_storage_percent?,
            db_connections: db_connections?,
            replica_lag_secs: replica_lag_secs?,
            evaluation_minutes: evaluation_minutes?,
        })
    }

    /// `[drift]`: a schedule needs the service tier (its cluster and subnets), monitoring (the
    /// topic its exit code 2 goes to) and the deployer's image.
    pub(super) fn drift(
        &mut self,
        merged: &Merged,
        service_enabled: bool,
        monitoring_enabled: bool,
    ) -> Option<DriftConfig> {
        let before = self.issues.len();
        let schedule = merged.string("drift.schedule");
        let image = merged.string("drift.image");
        if let Some(s) = &schedule {
            if let Some(p) = schedule_problem(&s.value) {
                self.bad(
                    "config::invalid_value",
                    "drift.schedule",
                    Some(s),
                    format!("`{}` is not a schedule expression: {p}", s.value),
                    "for example schedule = \"rate(6 hours)\" or \"cron(0 6 * * ? *)\"",
                );
            }
            if !service_enabled {
                self.bad(
                    "config::drift_needs_service",
                    "drift.schedule",
                    Some(s),
                    "the drift check runs as a Fargate task in the service's cluster, but service.enabled is false".into(),
                    "enable the service tier, or run drift checks elsewhere (docs/drift-scheduling.md)",
                );
            }
            if !monitoring_enabled {
                self.bad(
                    "config::drift_needs_monitoring",
                    "drift.schedule",
                    Some(s),
                    "drift found (exit 2) is sent to the alarm topic, but monitoring.enabled is false".into(),
                    "enable [monitoring], or run drift checks elsewhere (docs/drift-scheduling.md)",
                );
            }
            if image.is_none() {
                self.bad(
                    "config::missing_key",
                    "drift.image",
                    Some(s),
                    "a drift schedule needs the deployer's image to run".into(),
                    "build the repository's Dockerfile, push it to ECR, and set image = \"<account>.dkr.ecr.<region>.amazonaws.com/deployer:<tag>\"",
                );
            }
        }
        if let Some(i) = &image {
            if let Some(p) = image_problem(&i.value) {
                self.bad(
                    "config::invalid_value",
                    "drift.image",
                    Some(i),
                    format!("`{}` is not an ECR image: {p}", i.value),
                    "the deployer's image in ECR, e.g. \"123456789012.dkr.ecr.us-east-1.amazonaws.com/deployer:1.4.0\"",
                );
            }
        }
        (self.issues.len() == before)
            .then(|| DriftConfig { schedule: schedule.map(|s| s.value), image: image.map(|i| i.value) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_schedules_and_images() {
        assert_eq!(email_problem("ops@example.com"), None);
        assert!(email_problem("ops.example.com").is_some());
        assert!(email_problem("ops@localhost").is_some());
        assert!(email_problem("a b@example.com").is_some());
        assert_eq!(schedule_problem("rate(6 hours)"), None);
        assert_eq!(schedule_problem("rate(1 hour)"), None);
        assert_eq!(schedule_problem("rate(1 day)"), None);
        assert_eq!(schedule_problem("cron(0 */6 * * ? *)"), None);
        assert!(schedule_problem("rate(1 hours)").is_some());
        assert!(schedule_problem("rate(2 minutes)").is_some());
        assert!(schedule_problem("rate(6 weeks)").is_some());
        assert!(schedule_problem("cron(0 6 * * *)").is_some());
        assert!(schedule_problem("every 6 hours").is_some());
        assert_eq!(image_problem("123456789012.dkr.ecr.us-east-1.amazonaws.com/deployer:1.4.0"), None);
        assert_eq!(
            image_problem("123456789012.dkr.ecr.us-east-1.amazonaws.com/tools/deployer@sha256:ab"),
            None
        );
        assert!(image_problem("deployer:latest").is_some());
        assert!(image_problem("docker.io/library/deployer:1").is_some());
        assert!(image_problem("123456789012.dkr.ecr.us-east-1.amazonaws.com/deployer").is_some());
    }
}
