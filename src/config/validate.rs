//! Defaults and validation: the merged files become a [`Config`], or every problem found is
//! reported at once. Nothing here calls AWS.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::RangeInclusive;
use std::time::Duration;

use ipnet::Ipv4Net;

use super::diagnostic::{closest, into_result, list, ConfigIssue, Loc, SourceFile};
use super::load::{Entry, Merged, Val, BASE, ENV};
use super::regions::{availability_zones, zone_belongs_to, KNOWN_REGIONS};
use super::schema;
use super::{AwsConfig, Config, DatabaseConfig, EngineConfig, NatMode, NetworkConfig, RegionConfig, MAX_AZS};

pub(super) mod database;
mod dns;
mod kms;
mod monitoring;
mod registry;
pub(crate) mod service;

/// `{app}-{env}` prefixes every resource name; ALB and target group names are limited to 32
/// characters and get suffixes, so the prefix must stay short.
pub(crate) const MAX_APP_ENV_LEN: usize = 24;
/// AWS accepts VPCs and subnets from /16 to /28.
const VPC_PREFIXES: RangeInclusive<u8> = 16..=28;

pub(super) fn resolve(merged: &Merged, env: &str, files: &[SourceFile]) -> Result<Config, miette::Report> {
    let mut check = Check { files, env, issues: Vec::new() };

    let app = check.app(merged);
    let regions = check.regions(merged);
    let az_count = check.az_count(merged);
    let nat_gateways = check.nat_gateways(merged);
    let subnet_prefix = check.subnet_prefix(merged);
    let vpc_cidr = merged.region_strings("network.vpc_cidr");
    let cidrs = check.vpc_cidrs(&vpc_cidr, &regions);
    check.no_overlap(&cidrs);
    check.subnets_fit(merged, &cidrs, subnet_prefix, az_count);
    let zones = check.availability_zones(merged, &regions, az_count);
    let aws = check.aws(merged);
    let engine = check.engine(merged);
    let registry = check.registry(merged, app.as_deref(), &regions);
    let database = check.database(merged, app.as_deref(), &regions);
    let registry_enabled = registry.as_ref().is_none_or(|r| r.enabled);
    let service = check.service(merged, &regions, registry_enabled);
    let service_enabled = service.as_ref().is_none_or(|s| s.enabled);
    let tls = check.tls(merged, &regions, service_enabled);
    let release = check.release(merged);
    let dns = check.dns(merged, &regions, service.as_ref(), tls.as_ref());
    let monitoring = check.monitoring(merged);
    let monitoring_enabled = monitoring.as_ref().is_none_or(|m| m.enabled);
    let drift = check.drift(merged, service_enabled, monitoring_enabled);
    check.database_needs_two_zones(merged, database.as_ref(), az_count);

    into_result(env, check.issues)?;

    // No issue was reported, so everything below was resolved.
    let az_count = az_count.expect("validated");
    let regions_map = regions
        .all
        .iter()
        .map(|region| {
            let vpc_cidr = cidrs.iter().find(|cidr| cidr.region == *region).expect("validated").net;
            let availability_zones =
                zones.iter().find(|(name, _)| name == region).expect("validated").1.clone();
            (region.clone(), RegionConfig { vpc_cidr, availability_zones })
        })
        .collect();
    Ok(Config {
        app: app.expect("validated"),
        env: env.to_owned(),
        primary_region: regions.primary.expect("validated"),
        secondary_regions: regions.secondary,
        regions: regions_map,
        network: NetworkConfig {
            az_count,
            nat_gateways: nat_gateways.expect("validated"),
            subnet_prefix: subnet_prefix.expect("validated"),
        },
        aws: aws.expect("validated"),
        engine: engine.expect("validated"),
        registry: registry.expect("validated"),
        database: database.expect("validated"),
        service: service.expect("validated"),
        tls: tls.expect("validated"),
        release: release.expect("validated"),
        dns: dns.expect("validated"),
        monitoring: monitoring.expect("validated"),
        drift: drift.expect("validated"),
    })
}

struct Check<'a> {
    files: &'a [SourceFile],
    env: &'a str,
    issues: Vec<ConfigIssue>,
}

/// A problem with the value was reported.
struct Reported;

/// The regions of the environment as written (known or not), primary first, without repeats.
struct Regions {
    primary: Option<String>,
    secondary: Vec<String>,
    all: Vec<String>,
    /// Known regions that unknown ones are likely typos of (already suggested in their error).
    typo_of: Vec<&'static str>,
}

impl Regions {
    fn contains(&self, region: &str) -> bool {
        self.all.iter().any(|r| r == region)
    }

    /// The regions the deployer knows; unknown ones were reported and are not checked further.
    fn known(&self) -> impl Iterator<Item = &String> {
        self.all.iter().filter(|region| availability_zones(region).is_some())
    }
}

struct Cidr<'m> {
    region: String,
    net: Ipv4Net,
    entry: &'m Entry<String>,
}

impl Check<'_> {
    fn issue(&mut self, issue: ConfigIssue) {
        self.issues.push(issue);
    }

    fn at<T>(&self, issue: ConfigIssue, value: &Val<T>, label: impl Into<String>) -> ConfigIssue {
        issue.at(self.files, &value.loc, label)
    }

    fn loc(&self, issue: ConfigIssue, loc: &Loc, label: impl Into<String>) -> ConfigIssue {
        issue.at(self.files, loc, label)
    }

    /// Both files, for a key that is missing from both.
    fn both_files(&self) -> String {
        format!("{}, {}", self.files[BASE].name, self.files[ENV].name)
    }

    fn missing(&mut self, key: &str, help: String) {
        let issue = ConfigIssue::new(
            "config::missing_key",
            key,
            format!(
                "required key is missing: neither {} nor {} sets it",
                self.files[BASE].name, self.files[ENV].name
            ),
        )
        .in_files(self.both_files())
        .help(help);
        self.issue(issue);
    }

    fn file_name(&self, loc: &Loc) -> &str {
        &self.files[loc.file].name
    }

    fn app(&mut self, merged: &Merged) -> Option<String> {
        let Some(app) = &merged.string("app") else {
            self.missing(
                "app",
                format!(
                    "set the application name at the top of {}, e.g. `app = \"webapp\"`",
                    self.files[BASE].name
                ),
            );
            return None;
        };
        if let Some(problem) = crate::spec::names::name_problem(&app.value) {
            let issue = ConfigIssue::new(
                "config::invalid_name",
                "app",
                format!("app name `{}` {problem}", app.value),
            )
            .help("app names use lowercase letters, digits and single '-' inside, e.g. `webapp`");
            let issue = self.at(issue, app, "invalid app name");
            self.issue(issue);
            return None;
        }
        let prefix = format!("{}-{}", app.value, self.env);
        if prefix.len() > MAX_APP_ENV_LEN {
            let issue = ConfigIssue::new(
                "config::name_too_long",
                "app",
                format!(
                    "`{prefix}` (app-env) is {} characters; it must be at most {MAX_APP_ENV_LEN}",
                    prefix.len()
                ),
            )
            .help(format!(
                "resource names start with `{{app}}-{{env}}` and get suffixes, and AWS limits \
                 load balancer and target group names to 32 characters: shorten the app name \
                 (or the environment name) by {} characters",
                prefix.len() - MAX_APP_ENV_LEN
            ));
            let label = format!("with `-{}` this makes {} characters", self.env, prefix.len());
            let issue = self.at(issue, app, label);
            self.issue(issue);
            return None;
        }
        Some(app.value.clone())
    }

    /// Report an unknown region; returns the known region it is probably a typo of.
    fn unknown_region(&mut self, key: String, region: &str, loc: &Loc) -> Option<&'static str> {
        let names = KNOWN_REGIONS.iter().map(|(name, _)| *name);
        let known: Vec<&str> = names.clone().collect();
        let mut help = format!("known regions: {}", known.join(", "));
        let lowercase = region.to_ascii_lowercase();
        let near = names.clone().find(|name| *name == lowercase).or_else(|| closest(&lowercase, names));
        if let Some(near) = near {
            help = format!("did you mean `{near}`? {help}");
        }
        let issue = ConfigIssue::new(
            "config::unknown_region",
            key,
            format!("`{region}` is not a known AWS commercial region"),
        )
        .help(help);
        let issue = self.loc(issue, loc, "unknown region");
        self.issue(issue);
        near
    }

    fn regions(&mut self, merged: &Merged) -> Regions {
        let mut regions =
            Regions { primary: None, secondary: Vec::new(), all: Vec::new(), typo_of: Vec::new() };
        match &merged.string("regions.primary") {
            None => self.missing(
                "regions.primary",
                "set the primary region under [regions], e.g. `primary = \"us-east-1\"`".to_owned(),
            ),
            Some(primary) => {
                if availability_zones(&primary.value).is_none() {
                    let near = self.unknown_region("regions.primary".into(), &primary.value, &primary.loc);
                    regions.typo_of.extend(near);
                }
                regions.primary = Some(primary.value.clone());
                regions.all.push(primary.value.clone());
            }
        }
        if let Some(secondary) = &merged.strings("regions.secondary") {
            for (index, region) in secondary.value.iter().enumerate() {
                let key = format!("regions.secondary[{index}]");
                let loc = region.loc.clone();
                let name = &region.value;
                if regions.primary.as_ref() == Some(name) {
                    let issue = ConfigIssue::new(
                        "config::duplicate_region",
                        key,
                        format!("`{name}` is the primary region; a secondary region must be another one"),
                    )
                    .help("remove it from regions.secondary");
                    let issue = self.loc(issue, &loc, "already the primary region");
                    self.issue(issue);
                    continue;
                }
                if regions.secondary.contains(name) {
                    let issue = ConfigIssue::new(
                        "config::duplicate_region",
                        key,
                        format!("`{name}` is listed twice"),
                    )
                    .help("each secondary region must appear once");
                    let issue = self.loc(issue, &loc, "listed again here");
                    self.issue(issue);
                    continue;
                }
                if availability_zones(name).is_none() {
                    let near = self.unknown_region(key, name, &loc);
                    regions.typo_of.extend(near);
                }
                regions.secondary.push(name.clone());
                regions.all.push(name.clone());
            }
        }
        regions
    }

    /// A boolean key's value, or its default.
    fn flag(&self, merged: &Merged, key: &str) -> bool {
        merged.bool(key).map_or_else(|| schema::bool_default(key), |value| value.value)
    }

    /// A string key as written, if `problem` finds nothing wrong with it: `Ok(None)` when neither
    /// file sets it. The message reads "{noun} `value` {problem}".
    fn checked_str(
        &mut self,
        merged: &Merged,
        key: &str,
        code: &'static str,
        noun: &str,
        problem: impl Fn(&str) -> Option<String>,
        help: &str,
    ) -> Result<Option<String>, Reported> {
        let Some(value) = merged.string(key) else {
            return Ok(None);
        };
        match problem(&value.value) {
            None => Ok(Some(value.value)),
            Some(problem) => {
                let issue =
                    ConfigIssue::new(code, key, format!("{noun} `{}` {problem}", value.value)).help(help);
                let issue = self.at(issue, &value, format!("invalid {noun}"));
                self.issue(issue);
                Err(Reported)
            }
        }
    }

    /// A string key with a fixed set of values (or its default), as the value it stands for.
    fn choice<T: Copy>(
        &mut self,
        merged: &Merged,
        key: &str,
        choices: &[(&str, T)],
        help: &str,
    ) -> Option<T> {
        let value = merged.string(key);
        let written = value.as_ref().map_or(schema::str_default(key), |value| value.value.as_str());
        if let Some((_, choice)) = choices.iter().find(|(name, _)| *name == written) {
            return Some(*choice);
        }
        let value = value.as_ref().expect("the default is one of the choices");
        let names: Vec<&str> = choices.iter().map(|(name, _)| *name).collect();
        let near = names
            .iter()
            .copied()
            .find(|name| name.eq_ignore_ascii_case(written))
            .or_else(|| closest(written, names.iter().copied()));
        let help = match near {
            Some(near) => format!("did you mean `{near}`? {help}"),
            None => help.to_owned(),
        };
        let issue = ConfigIssue::new(
            "config::invalid_value",
            key,
            format!("`{written}` is not one of {}", list(&names)),
        )
        .help(help);
        let issue = self.at(issue, value, format!("not one of {}", list(&names)));
        self.issue(issue);
        None
    }

    /// The value of an integer key (or its default), if it is in the key's range; `help` says
    /// what the key is for.
    fn in_range(&mut self, merged: &Merged, key: &str, help: &str) -> Option<i64> {
        let (range, default) = schema::int_key(key);
        let Some(value) = merged.int(key) else {
            return Some(default);
        };
        if range.contains(&value.value) {
            return Some(value.value);
        }
        let issue = ConfigIssue::new(
            "config::out_of_range",
            key,
            format!(
                "{} is out of range: it must be between {} and {}",
                value.value,
                range.start(),
                range.end()
            ),
        )
        .help(format!("{help}; the default is {default}"));
        let issue = self.at(issue, &value, format!("not in {}..={}", range.start(), range.end()));
        self.issue(issue);
        None
    }

    fn az_count(&mut self, merged: &Merged) -> Option<usize> {
        self.in_range(
            merged,
            "network.az_count",
            &format!(
                "an environment spans 1 to {MAX_AZS} availability zones (subnet slots are laid \
                 out for {MAX_AZS})"
            ),
        )
        .map(|count| count as usize)
    }

    fn nat_gateways(&mut self, merged: &Merged) -> Option<NatMode> {
        let Some(mode) = &merged.string("network.nat_gateways") else {
            return Some(match schema::str_default("network.nat_gateways") {
                "single" => NatMode::Single,
                _ => NatMode::PerAz,
            });
        };
        match mode.value.as_str() {
            "per-az" => Some(NatMode::PerAz),
            "single" => Some(NatMode::Single),
            other => {
                let mut help = "`per-az`: one NAT gateway per AZ, so an AZ outage does not cut \
                                the others off (the default); `single`: one NAT gateway in the \
                                first AZ shared by all private subnets (cheaper, for dev)"
                    .to_owned();
                if let Some(near) = closest(other, ["per-az", "single"]) {
                    help = format!("did you mean `{near}`? {help}");
                }
                let issue = ConfigIssue::new(
                    "config::invalid_value",
                    "network.nat_gateways",
                    format!("`{other}` is not a NAT gateway mode: use `per-az` or `single`"),
                )
                .help(help);
                let issue = self.at(issue, mode, "unknown mode");
                self.issue(issue);
                None
            }
        }
    }

    fn subnet_prefix(&mut self, merged: &Merged) -> Option<u8> {
        self.in_range(
            merged,
            "network.subnet_prefix",
            "subnets must be smaller than their VPC (VPCs are /16 at the largest) and AWS \
             subnets are /28 at the smallest",
        )
        .map(|prefix| prefix as u8)
    }

    /// An entry of a region-keyed table whose region is not one of the environment's.
    fn foreign_region<T>(&mut self, table: &str, region: &str, entry: &Entry<T>, regions: &Regions) {
        if regions.typo_of.contains(&region) {
            // The typo's own error already points here ("did you mean ...").
            return;
        }
        let help = if entry.key.file == BASE {
            format!(
                "{table} must hold exactly the environment's regions, and an entry in {} applies \
                 to every environment: move {table} into each environment's file",
                self.files[BASE].name
            )
        } else {
            format!("remove it, or add `{region}` to regions.secondary")
        };
        let issue = ConfigIssue::new(
            "config::foreign_region",
            format!("{table}.{region}"),
            format!(
                "`{region}` is not a region of environment `{}` (its regions: {})",
                self.env,
                if regions.all.is_empty() { "none".to_owned() } else { list(&regions.all) }
            ),
        )
        .help(help);
        let issue = self.loc(issue, &entry.key, "not a region of this environment");
        self.issue(issue);
    }

    fn vpc_cidrs<'m>(
        &mut self,
        vpc_cidr: &'m BTreeMap<String, Entry<String>>,
        regions: &Regions,
    ) -> Vec<Cidr<'m>> {
        for region in regions.known() {
            if !vpc_cidr.contains_key(region) {
                let help = format!(
                    "every region of the environment needs a VPC block: add \
                     `{region} = \"10.x.0.0/16\"` under [network.vpc_cidr] in {}",
                    self.files[ENV].name
                );
                self.missing(&format!("network.vpc_cidr.{region}"), help);
            }
        }
        for (region, entry) in vpc_cidr {
            if !regions.contains(region) {
                self.foreign_region("network.vpc_cidr", region, entry, regions);
            }
        }

        let mut cidrs = Vec::new();
        for region in &regions.all {
            let Some(entry) = vpc_cidr.get(region) else {
                continue;
            };
            let key = format!("network.vpc_cidr.{region}");
            let text = entry.value.value.trim();
            let net = match text.parse::<Ipv4Net>() {
                Ok(net) => net,
                Err(_) => {
                    let issue = ConfigIssue::new(
                        "config::invalid_cidr",
                        key,
                        format!("`{text}` is not an IPv4 CIDR block"),
                    )
                    .help("write the VPC block as address/prefix, e.g. \"10.10.0.0/16\"");
                    let issue = self.at(issue, &entry.value, "not an IPv4 CIDR block");
                    self.issue(issue);
                    continue;
                }
            };
            if net.trunc() != net {
                let issue = ConfigIssue::new(
                    "config::cidr_not_network",
                    key,
                    format!("`{net}` is not a network address: host bits are set"),
                )
                .help(format!("did you mean \"{}\"?", net.trunc()));
                let issue = self.at(issue, &entry.value, format!("should be {}", net.trunc()));
                self.issue(issue);
                continue;
            }
            if !VPC_PREFIXES.contains(&net.prefix_len()) {
                let issue = ConfigIssue::new(
                    "config::cidr_prefix",
                    key,
                    format!("a /{} VPC is not possible: AWS VPC blocks are /16 to /28", net.prefix_len()),
                )
                .help("use a prefix between /16 (65,536 addresses) and /28 (16 addresses), e.g. a /16");
                let issue = self.at(issue, &entry.value, "prefix outside /16../28");
                self.issue(issue);
                continue;
            }
            cidrs.push(Cidr { region: region.clone(), net, entry });
        }
        cidrs
    }

    fn no_overlap(&mut self, cidrs: &[Cidr<'_>]) {
        for (later, b) in cidrs.iter().enumerate() {
            for a in &cidrs[..later] {
                if !(a.net.contains(&b.net.network()) || b.net.contains(&a.net.network())) {
                    continue;
                }
                let mut message =
                    format!("{} overlaps {} of {} (network.vpc_cidr.{})", b.net, a.net, a.region, a.region);
                if a.entry.value.loc.file != b.entry.value.loc.file {
                    message.push_str(&format!(", set in {}", self.file_name(&a.entry.value.loc)));
                }
                let issue = ConfigIssue::new(
                    "config::cidr_overlap",
                    format!("network.vpc_cidr.{}", b.region),
                    message,
                )
                .help(format!(
                    "peered VPCs must not overlap: pick a different /{} for {}",
                    b.net.prefix_len(),
                    b.region
                ));
                let issue = self.at(issue, &b.entry.value, format!("overlaps {}", a.region));
                let issue = self.at(issue, &a.entry.value, format!("{}'s VPC", a.region));
                self.issue(issue);
            }
        }
    }

    fn subnets_fit(
        &mut self,
        merged: &Merged,
        cidrs: &[Cidr<'_>],
        subnet_prefix: Option<u8>,
        az_count: Option<usize>,
    ) {
        let (Some(subnet_prefix), Some(az_count)) = (subnet_prefix, az_count) else {
            return;
        };
        let needed = MAX_AZS + az_count;
        // Slots come in powers of two: the smallest split that holds `needed` of them.
        let bits = needed.next_power_of_two().trailing_zeros() as u8;
        let layout = format!(
            "subnet layout: each VPC is split into /{subnet_prefix} blocks (slots); public \
             subnets use slots 0..{az_count} and private subnets slots {MAX_AZS}..{} (room is kept \
             for {MAX_AZS} AZs so adding one never moves a subnet), so each VPC needs at least \
             {needed} slots",
            MAX_AZS + az_count
        );
        for cidr in cidrs {
            let vpc_prefix = cidr.net.prefix_len();
            if subnet_prefix <= vpc_prefix {
                let issue = ConfigIssue::new(
                    "config::subnet_prefix",
                    "network.subnet_prefix",
                    format!(
                        "/{subnet_prefix} subnets do not fit in the /{vpc_prefix} VPC of {} ({}): \
                         subnet_prefix must be longer than every VPC prefix",
                        cidr.region, cidr.net
                    ),
                )
                .help(fit_hint(&layout, vpc_prefix, subnet_prefix, bits));
                let issue = match &merged.int("network.subnet_prefix") {
                    Some(value) => self.at(issue, value, "subnet prefix"),
                    None => self.at(
                        issue,
                        &cidr.entry.value,
                        format!("default subnet_prefix {subnet_prefix} does not fit"),
                    ),
                };
                self.issue(issue);
                continue;
            }
            let slots = 1usize << (subnet_prefix - vpc_prefix);
            if slots < needed {
                let issue = ConfigIssue::new(
                    "config::subnets_do_not_fit",
                    format!("network.vpc_cidr.{}", cidr.region),
                    format!(
                        "{} holds only {slots} /{subnet_prefix} subnets, but {az_count} AZs need \
                         {needed} slots ({MAX_AZS} + az_count)",
                        cidr.net
                    ),
                )
                .help(fit_hint(&layout, vpc_prefix, subnet_prefix, bits));
                let issue = self.at(issue, &cidr.entry.value, format!("{slots} slots of /{subnet_prefix}"));
                let issue = match &merged.int("network.subnet_prefix") {
                    Some(value) => self.at(issue, value, "subnet size"),
                    None => issue,
                };
                self.issue(issue);
            }
        }
    }

    fn availability_zones(
        &mut self,
        merged: &Merged,
        regions: &Regions,
        az_count: Option<usize>,
    ) -> Vec<(String, Vec<String>)> {
        let overrides = merged.region_lists("network.availability_zones");
        for (region, entry) in &overrides {
            if !regions.contains(region) {
                self.foreign_region("network.availability_zones", region, entry, regions);
            }
        }
        let mut resolved = Vec::new();
        for region in regions.known() {
            let known = availability_zones(region).expect("known region");
            let zones: Vec<String> = match overrides.get(region) {
                Some(entry) => match self.zone_override(region, entry, known, az_count) {
                    Some(zones) => zones,
                    None => continue,
                },
                None => {
                    if let Some(count) = az_count.filter(|count| *count > known.len()) {
                        let message = format!(
                            "{region} has {} availability zones known to the deployer ({}), \
                             fewer than az_count = {count}",
                            known.len(),
                            known.join(", ")
                        );
                        let issue = ConfigIssue::new("config::too_few_zones", "network.az_count", message)
                            .help(format!(
                                "lower network.az_count to {}, or list {region}'s zones under \
                                 [network.availability_zones] if your account has more",
                                known.len()
                            ));
                        let issue = match &merged.int("network.az_count") {
                            Some(value) => self.at(issue, value, format!("more AZs than {region} has")),
                            None => issue.in_files(self.both_files()),
                        };
                        self.issue(issue);
                        continue;
                    }
                    known.iter().map(|zone| zone.to_string()).collect()
                }
            };
            if let Some(count) = az_count {
                resolved.push((region.clone(), zones.into_iter().take(count).collect()));
            }
        }
        resolved
    }

    /// The zones of a `[network.availability_zones]` entry, if they are all valid.
    fn zone_override(
        &mut self,
        region: &str,
        entry: &Entry<Vec<Val<String>>>,
        known: &[&str],
        az_count: Option<usize>,
    ) -> Option<Vec<String>> {
        let key = format!("network.availability_zones.{region}");
        let mut zones: Vec<String> = Vec::new();
        let mut valid = true;
        let mut seen = BTreeSet::new();
        for (index, zone) in entry.value.value.iter().enumerate() {
            let loc = zone.loc.clone();
            let name = &zone.value;
            if !zone_belongs_to(name, region) {
                valid = false;
                let issue = ConfigIssue::new(
                    "config::foreign_zone",
                    format!("{key}[{index}]"),
                    format!("`{name}` is not an availability zone of {region}"),
                )
                .help(format!(
                    "zone names are the region name followed by one letter; known zones of \
                     {region}: {}",
                    known.join(", ")
                ));
                let issue = self.loc(issue, &loc, format!("not in {region}"));
                self.issue(issue);
            } else if !seen.insert(name.clone()) {
                valid = false;
                let issue = ConfigIssue::new(
                    "config::duplicate_zone",
                    format!("{key}[{index}]"),
                    format!("`{name}` is listed twice"),
                )
                .help("each zone hosts one public and one private subnet: list it once");
                let issue = self.loc(issue, &loc, "listed again here");
                self.issue(issue);
            }
            zones.push(name.clone());
        }
        if let Some(count) = az_count.filter(|count| *count > zones.len()) {
            valid = false;
            let issue = ConfigIssue::new(
                "config::too_few_zones",
                key,
                format!("lists {} zones, but network.az_count is {count}", zones.len()),
            )
            .help(format!("list at least {count} zones of {region}, or lower network.az_count"));
            let issue = self.at(issue, &entry.value, format!("{} zones", zones.len()));
            self.issue(issue);
        }
        valid.then_some(zones)
    }

    fn aws(&mut self, merged: &Merged) -> Option<AwsConfig> {
        let mut ok = true;
        let endpoint_url = merged.string("aws.endpoint_url");
        let profile = merged.string("aws.profile");
        let emulator_credentials = merged.bool("aws.emulator_credentials");
        if let Some(url) = &endpoint_url {
            if let Some(problem) = endpoint_url_problem(&url.value) {
                ok = false;
                let issue = ConfigIssue::new(
                    "config::invalid_url",
                    "aws.endpoint_url",
                    format!("`{}` is not a usable endpoint URL: {problem}", url.value),
                )
                .help(
                    "an endpoint is http:// or https://, a host name or IP address, an optional \
                     port and path, e.g. \"http://127.0.0.1:5000\" for a local AWS emulator",
                );
                let issue = self.at(issue, url, problem);
                self.issue(issue);
            }
        }
        if let Some(profile) = &profile {
            if profile.value.trim().is_empty() {
                ok = false;
                let issue = ConfigIssue::new(
                    "config::invalid_value",
                    "aws.profile",
                    "the profile name is empty",
                )
                .help("name a profile of the shared AWS config, or remove the key to use the default credential chain");
                let issue = self.at(issue, profile, "empty");
                self.issue(issue);
            }
        }
        let dummy = emulator_credentials
            .as_ref()
            .map_or(schema::bool_default("aws.emulator_credentials"), |value| value.value);
        if dummy && endpoint_url.is_none() {
            ok = false;
            let value = emulator_credentials.as_ref().expect("not the default");
            let issue = ConfigIssue::new(
                "config::emulator_credentials",
                "aws.emulator_credentials",
                "is true but aws.endpoint_url is not set",
            )
            .help(
                "fixed dummy credentials only work against an emulator: set aws.endpoint_url \
                 (e.g. \"http://127.0.0.1:5000\"), or remove emulator_credentials to use the AWS \
                 credential chain",
            );
            let issue = self.at(issue, value, "dummy credentials need an emulator endpoint");
            self.issue(issue);
        }
        let role_arn = merged.string("aws.role_arn");
        let external_id = merged.string("aws.external_id");
        if let Some(role) = &role_arn {
            if let Some(problem) = role_arn_problem(&role.value) {
                ok = false;
                let issue = ConfigIssue::new(
                    "config::invalid_role_arn",
                    "aws.role_arn",
                    format!("`{}` is not an IAM role ARN: {problem}", role.value),
                )
                .help("a role ARN looks like \"arn:aws:iam::123456789012:role/deployer\"");
                let issue = self.at(issue, role, problem);
                self.issue(issue);
            }
        }
        if let Some(id) = &external_id {
            let problem = if role_arn.is_none() {
                Some("an external ID is only sent when assuming aws.role_arn, which is not set")
            } else if !(2..=1224).contains(&id.value.len()) {
                Some("must be 2 to 1224 characters long")
            } else if !id.value.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@:/-_".contains(c)) {
                Some("may hold only letters, digits and +=,.@:/-_")
            } else {
                None
            };
            if let Some(problem) = problem {
                ok = false;
                let issue =
                    ConfigIssue::new("config::invalid_external_id", "aws.external_id", problem.to_string())
                        .help(
                            "set it to the sts:ExternalId the role's trust policy names, with aws.role_arn",
                        );
                let issue = self.at(issue, id, problem);
                self.issue(issue);
            }
        }
        ok.then(|| AwsConfig {
            endpoint_url: endpoint_url.map(|url| url.value),
            profile: profile.map(|profile| profile.value),
            emulator_credentials: dummy,
            role_arn: role_arn.map(|r| r.value),
            external_id: external_id.map(|e| e.value),
        })
    }

    /// RDS refuses a DB subnet group that does not span two availability zones: a database
    /// needs `network.az_count >= 2` (said here, before any AWS call, not by RDS midway).
    fn database_needs_two_zones(
        &mut self,
        merged: &Merged,
        database: Option<&DatabaseConfig>,
        az_count: Option<usize>,
    ) {
        let (Some(database), Some(count)) = (database, az_count) else { return };
        if !database.enabled || count >= 2 {
            return;
        }
        let issue = ConfigIssue::new(
            "config::database_zones",
            "network.az_count",
            format!("a database needs subnets in at least 2 availability zones, but network.az_count is {count}"),
        )
        .help("RDS refuses a DB subnet group within one zone (and Multi-AZ needs a second): set network.az_count = 2 or more, or [database] enabled = false");
        let issue = match merged.int("network.az_count") {
            Some(value) => self.at(issue, &value, "only one zone"),
            None => issue.in_files(self.both_files()),
        };
        self.issue(issue);
    }

    fn engine(&mut self, merged: &Merged) -> Option<EngineConfig> {
        let concurrency =
            self.in_range(merged, "engine.concurrency", "how many changes run at once across all regions");
        let wait_timeout = self.in_range(
            merged,
            "engine.wait_timeout_secs",
            "the longest single wait in seconds, at most 2 hours",
        );
        Some(EngineConfig {
            concurrency: concurrency? as usize,
            wait_timeout: Duration::from_secs(wait_timeout? as u64),
            one_region_at_a_time: self.flag(merged, "engine.one_region_at_a_time"),
        })
    }
}

/// What makes `url` unusable as an AWS endpoint, if anything: it must be `http://` or `https://`,
/// a non-empty host (a name, an IPv4 address or a bracketed IPv6 address), an optional port
/// `1..=65535` and an optional path, with no whitespace, user info, query or fragment.
pub(crate) fn endpoint_url_problem(url: &str) -> Option<String> {
    if let Some(bad) = url.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Some(if bad.is_whitespace() {
            "it contains whitespace".to_owned()
        } else {
            format!("it contains the control character {bad:?}")
        });
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return Some("it does not start with http:// or https://".to_owned());
    };
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return Some(format!("the scheme is `{scheme}`, not http or https"));
    }
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, after) = rest.split_at(authority_end);
    if after.contains(['?', '#']) {
        return Some("an endpoint has no query or fragment (`?`, `#`)".to_owned());
    }
    if authority.contains('@') {
        return Some("credentials do not belong in the URL (`user@`)".to_owned());
    }
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let Some((address, after)) = bracketed.split_once(']') else {
            return Some("the IPv6 address has no closing `]`".to_owned());
        };
        if address.parse::<std::net::Ipv6Addr>().is_err() {
            return Some(format!("`{address}` is not an IPv6 address"));
        }
        match after {
            "" => (address, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (address, Some(port)),
                None => return Some(format!("unexpected `{after}` after the IPv6 address")),
            },
        }
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Some("the host is empty".to_owned());
    }
    if !authority.starts_with('[') {
        if let Some(bad) = host.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')))
        {
            return Some(format!("the host `{host}` contains `{bad}`"));
        }
        // A trailing dot (a fully qualified name) is fine; an empty label elsewhere is not.
        if host.trim_end_matches('.').split('.').any(|label| label.is_empty() || label.starts_with('-')) {
            return Some(format!("`{host}` is not a valid host name"));
        }
    }
    if let Some(port) = port {
        if port.is_empty() {
            return Some("the port after `:` is empty".to_owned());
        }
        if !port.bytes().all(|b| b.is_ascii_digit()) || !matches!(port.parse::<u32>(), Ok(1..=65535)) {
            return Some(format!("the port `{port}` is not a number from 1 to 65535"));
        }
    }
    None
}

/// The layout explanation plus the two ways out, where they are possible.
fn fit_hint(layout: &str, vpc_prefix: u8, subnet_prefix: u8, bits: u8) -> String {
    let mut ways = Vec::new();
    if let Some(vpc) = subnet_prefix.checked_sub(bits) {
        if vpc >= *VPC_PREFIXES.start() {
            ways.push(format!("a VPC of /{vpc} or larger"));
        }
    }
    let subnet = vpc_prefix + bits;
    if schema::int_key("network.subnet_prefix").0.contains(&i64::from(subnet)) {
        ways.push(format!("subnet_prefix = {subnet} or more"));
    }
    if ways.is_empty() {
        layout.to_owned()
    } else {
        format!("{layout}: use {}", ways.join(", or "))
    }
}

/// What keeps `arn` from being an IAM role ARN, if anything.
fn role_arn_problem(arn: &str) -> Option<&'static str> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if parts.len() != 6 || parts[0] != "arn" || !parts[1].starts_with("aws") {
        return Some("it does not start with arn:aws");
    }
    if parts[2] != "iam" || !parts[3].is_empty() {
        return Some("it is not an IAM ARN (arn:<partition>:iam::<account>:role/<name>)");
    }
    if parts[4].len() != 12 || !parts[4].chars().all(|c| c.is_ascii_digit()) {
        return Some("the account is not 12 digits");
    }
    match parts[5].strip_prefix("role/") {
        Some(name) if !name.is_empty() && !name.ends_with('/') => None,
        _ => Some("it does not name a role (role/<name>)"),
    }
}
