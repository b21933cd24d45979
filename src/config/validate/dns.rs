//! `[dns]`: Route 53 failover, checked against Route 53's rules before any request.

use super::super::load::Merged;
use super::super::schema;
use super::super::{DnsConfig, ServiceConfig, TlsConfig};
use super::{Check, Regions};

/// Route 53's health checker regions.
const CHECKER_REGIONS: &[&str] = &[
    "us-east-1",
    "us-west-1",
    "us-west-2",
    "eu-west-1",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-northeast-1",
    "sa-east-1",
];

fn plain(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

impl Check<'_> {
    pub(super) fn dns(
        &mut self,
        merged: &Merged,
        regions: &Regions,
        service: Option<&ServiceConfig>,
        tls: Option<&TlsConfig>,
    ) -> Option<DnsConfig> {
        let before = self.issues.len();
        let enabled = self.flag(merged, "dns.enabled");
        let written_enabled = merged.bool("dns.enabled");
        let zone_val = merged.string("dns.hosted_zone");
        let primary_val = merged.string("dns.primary");
        let primary = primary_val
            .as_ref()
            .map(|p| p.value.clone())
            .or_else(|| regions.primary.clone())
            .unwrap_or_default();
        if let Some(p) = &primary_val {
            if !regions.all.contains(&p.value) {
                self.bad(
                    "config::invalid_value",
                    "dns.primary",
                    Some(p),
                    format!("`{}` is not one of this environment's regions", p.value),
                    &format!("use one of {}", regions.all.join(", ")),
                );
            }
        }
        let names_val = merged.strings("dns.names");
        let path_val = merged.string("dns.health_check_path");
        let regions_val = merged.strings("dns.health_check_regions");
        let interval = self.in_range(merged, "dns.health_check_interval_secs", "seconds between checks");
        let threshold =
            self.in_range(merged, "dns.failure_threshold", "failed checks before a region is unhealthy");
        if let (Some(v), Some(i)) = (merged.int("dns.health_check_interval_secs"), interval) {
            if i != 10 && i != 30 {
                self.bad(
                    "config::invalid_value",
                    "dns.health_check_interval_secs",
                    Some(&v),
                    format!("{i} is not a Route 53 request interval"),
                    "use 10 (fast) or 30 (standard)",
                );
            }
        }
        let hosted_zone = zone_val
            .as_ref()
            .map(|z| plain(&z.value))
            .or_else(|| tls.and_then(|t| t.hosted_zone.as_deref()).map(plain))
            .unwrap_or_default();
        let names: Vec<String> = match &names_val {
            Some(list) => list.value.iter().map(|n| plain(&n.value)).collect(),
            None => tls.map(|t| t.domain_names.iter().map(|n| plain(n)).collect()).unwrap_or_default(),
        };
        let path = path_val
            .as_ref()
            .map(|p| p.value.clone())
            .or_else(|| service.map(|s| s.health_check.path.clone()))
            .unwrap_or_else(|| "/".into());
        if let Some(p) = &path_val {
            if !p.value.starts_with('/') {
                self.bad(
                    "config::invalid_value",
                    "dns.health_check_path",
                    Some(p),
                    format!("`{}` does not start with /", p.value),
                    "a path such as \"/healthz\"",
                );
            }
        }
        let checker_regions: Vec<String> = regions_val
            .as_ref()
            .map(|l| l.value.iter().map(|r| r.value.clone()).collect())
            .unwrap_or_default();
        if let Some(list) = &regions_val {
            let unknown: Vec<&str> =
                checker_regions.iter().map(String::as_str).filter(|r| !CHECKER_REGIONS.contains(r)).collect();
            if !unknown.is_empty() || (!checker_regions.is_empty() && checker_regions.len() < 3) {
                self.bad(
                    "config::invalid_value",
                    "dns.health_check_regions",
                    Some(list),
                    if unknown.is_empty() {
                        format!("{} checker regions; Route 53 needs at least 3", checker_regions.len())
                    } else {
                        format!("not Route 53 checker regions: {}", unknown.join(", "))
                    },
                    &format!(
                        "leave it empty for Route 53's default, or name 3 or more of {}",
                        CHECKER_REGIONS.join(", ")
                    ),
                );
            }
        }
        if enabled {
            let at = written_enabled.as_ref();
            if !service.is_none_or(|s| s.enabled) {
                self.bad(
                    "config::dns_needs_service",
                    "dns.enabled",
                    at,
                    "DNS failover points at the service's load balancers, but service.enabled is false"
                        .into(),
                    "enable the service tier, or set dns.enabled = false",
                );
            }
            if regions.secondary.len() != 1 {
                self.bad(
                    "config::dns_needs_a_pair",
                    "dns.enabled",
                    at,
                    format!(
                        "Route 53 failover is between two regions; this environment has {} secondary regions",
                        regions.secondary.len()
                    ),
                    "use exactly one secondary region with dns.enabled",
                );
            }
            if hosted_zone.is_empty() {
                self.bad(
                    "config::missing_key",
                    "dns.hosted_zone",
                    zone_val.as_ref(),
                    "no hosted zone for the failover records (neither dns.hosted_zone nor tls.hosted_zone)"
                        .into(),
                    "name the account's public zone, e.g. hosted_zone = \"example.com\"",
                );
            }
            if names.is_empty() {
                self.bad(
                    "config::missing_key",
                    "dns.names",
                    names_val.as_ref(),
                    "no names to fail over (neither dns.names nor tls.domain_names)".into(),
                    "list the names, e.g. names = [\"app.example.com\"]",
                );
            }
            for name in &names {
                let inside = name == &hosted_zone || name.ends_with(&format!(".{hosted_zone}"));
                if name.starts_with('*') || !inside {
                    self.bad(
                        "config::invalid_value",
                        "dns.names",
                        names_val.as_ref(),
                        format!("`{name}` is not a plain name inside the zone {hosted_zone}"),
                        "failover records are for names in dns.hosted_zone, without wildcards",
                    );
                }
            }
        }
        let _ = schema::bool_default("dns.enabled");
        if self.issues.len() != before {
            return None;
        }
        Some(DnsConfig {
            enabled,
            primary,
            hosted_zone,
            names,
            health_check_path: path,
            health_check_interval_secs: interval? as i32,
            failure_threshold: threshold? as i32,
            health_check_regions: checker_regions,
        })
    }
}
