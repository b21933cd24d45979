//! The DNS tier, when `dns.enabled`: Route 53 failover between the two regions' load balancers.
//!
//! | Address | What |
//! |---|---|
//! | `global/dns/health-check/<region>` | HTTPS to the region's load balancer on `dns.health_check_path` |
//! | `global/dns/dns-record/<name>` | per region an `A` alias to its load balancer: `PRIMARY` (with its health check) in `dns.primary` (the primary region unless set), `SECONDARY` in the other; set identifier `{app}-{env}-<region>` |

use super::{Address, Builder, Ref};
use crate::config::Config;
use crate::resources::dns_record::{DnsRecordSpec, RecordEntry};
use crate::resources::health_check::HealthCheckSpec;
use crate::resources::{attr, Spec};

pub const TIER: &str = crate::spec::names::tier::DNS;

pub fn health_check(region: &str) -> Address {
    Address::global(TIER, "health-check", region)
}

/// The set identifier of a region's records: how they are known to be the environment's.
pub fn set_identifier(config: &Config, region: &str) -> String {
    format!("{}-{}-{region}", config.app, config.env)
}

pub(super) fn dns(b: &mut Builder, config: &Config) {
    if !config.dns.enabled || !config.service.enabled {
        return;
    }
    let d = &config.dns;
    for region in config.region_names() {
        let lb = super::service::load_balancer(&region);
        b.add(
            crate::spec::GLOBAL,
            TIER,
            &region,
            Spec::HealthCheck(HealthCheckSpec {
                fqdn: Ref::Attr { of: lb.clone(), attr: attr::DNS_NAME, suffix: String::new() },
                port: 443,
                path: d.health_check_path.clone(),
                interval_secs: d.health_check_interval_secs,
                failure_threshold: d.failure_threshold,
                regions: {
                    let mut r = d.health_check_regions.clone();
                    r.sort();
                    r
                },
                zone: d.hosted_zone.clone(),
            }),
        );
    }
    for name in &d.names {
        let records = config
            .region_names()
            .into_iter()
            .map(|region| {
                let lb = super::service::load_balancer(&region);
                let primary = region == d.primary;
                RecordEntry {
                    set_identifier: set_identifier(config, &region),
                    failover: if primary { "PRIMARY" } else { "SECONDARY" }.into(),
                    target_dns: Ref::Attr { of: lb.clone(), attr: attr::DNS_NAME, suffix: String::new() },
                    target_zone: Ref::Attr { of: lb, attr: attr::ZONE_ID, suffix: String::new() },
                    evaluate_target_health: true,
                    health_check: primary.then(|| Ref::Addr(health_check(&region))),
                }
            })
            .collect();
        b.add(
            crate::spec::GLOBAL,
            TIER,
            name,
            Spec::DnsRecord(DnsRecordSpec { zone: d.hosted_zone.clone(), name: name.clone(), records }),
        );
    }
}
