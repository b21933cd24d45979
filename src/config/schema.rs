//! The configuration schema: one static table per section listing its keys with their type,
//! default, meaning and constraints.
//!
//! It is the one place a key is declared. The loader reads it to accept a table's keys and check
//! their types (and to reject an unknown key, listing the valid ones); validation reads the
//! defaults and integer ranges from it; and the tables of `docs/configuration.md` are rendered
//! from it by [`docs_table`] (a test keeps the file in step). Adding a key is an entry here, a
//! field of the resolved type in `mod.rs` and its resolution in `validate.rs`.

use std::fmt::Write as _;
use std::ops::RangeInclusive;

use super::MAX_AZS;

/// The TOML type of a key's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Bool,
    /// An integer within `min..=max`.
    Int {
        min: i64,
        max: i64,
    },
    Str,
    /// An array of strings.
    Strings,
    /// A sub-table, described by the section `<this section>.<key>`.
    Table,
}

/// What a key is when neither file sets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DefaultValue {
    /// One of the files must set it.
    Required,
    /// Nothing; the text says what that means (`none (default credential chain)`).
    Unset(&'static str),
    Bool(bool),
    Int(i64),
    Str(&'static str),
    /// An empty array.
    Empty,
    /// Computed when the configuration is resolved; the text says how (`"{app}-{env}"`).
    Derived(&'static str),
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Key {
    /// The key as written; `<region>` in a region-keyed section.
    pub name: &'static str,
    pub kind: Kind,
    pub default: DefaultValue,
    /// What the value is, beyond its TOML type (`IPv4 CIDR`), for the docs' type column.
    pub format: Option<&'static str>,
    pub meaning: &'static str,
    /// Rules beyond the type (for integers, beyond the range, which is rendered from `kind`).
    pub constraints: &'static str,
}

#[derive(Debug)]
pub(crate) struct Section {
    /// Dotted path of the table: `""` for the top level, `network`, `network.vpc_cidr`.
    pub path: &'static str,
    /// The table's keys are region names, each described by the one entry of `keys`.
    pub region_keyed: bool,
    pub keys: &'static [Key],
}

impl Section {
    pub fn key(&self, name: &str) -> Option<&'static Key> {
        self.keys.iter().find(|key| key.name == name)
    }

    /// How the section is shown in messages: `[network]`, or `the top level`.
    pub fn shown(&self) -> String {
        if self.path.is_empty() {
            "the top level".to_owned()
        } else {
            format!("[{}]", self.path)
        }
    }
}

const fn key(name: &'static str, kind: Kind, default: DefaultValue, meaning: &'static str) -> Key {
    Key { name, kind, default, format: None, meaning, constraints: "" }
}

const fn int(min: i64, max: i64) -> Kind {
    Kind::Int { min, max }
}

impl Key {
    const fn rule(mut self, constraints: &'static str) -> Self {
        self.constraints = constraints;
        self
    }

    const fn format(mut self, format: &'static str) -> Self {
        self.format = Some(format);
        self
    }
}

const fn section(path: &'static str, keys: &'static [Key]) -> Section {
    Section { path, region_keyed: false, keys }
}

const fn region_keyed(path: &'static str, key: &'static [Key; 1]) -> Section {
    Section { path, region_keyed: true, keys: key }
}

use DefaultValue::{Derived, Empty, Required, Unset};
use Kind::{Bool, Str, Strings, Table};

const TOP: Section = section(
    "",
    &[
        key("app", Str, Required, "Application name; every resource name starts with `{app}-{env}`.").rule(
            "`^[a-z][a-z0-9-]*$`, no trailing `-`, no `--`. `\"{app}-{env}\"` is at most **24** \
             characters, because AWS limits load balancer and target group names to 32 characters \
             and the deployer appends suffixes.",
        ),
        key("regions", Table, Required, ""),
        key("network", Table, Unset(""), ""),
        key("aws", Table, Unset(""), ""),
        key("engine", Table, Unset(""), ""),
        key("registry", Table, Unset(""), ""),
        key("database", Table, Unset(""), ""),
    ],
);

const REGIONS: Section = section(
    "regions",
    &[
        key("primary", Str, Required, "The region that serves traffic and holds the primary database.")
            .rule("A known AWS commercial region (see below)."),
        key(
            "secondary",
            Strings,
            Empty,
            "Further regions, in order. Each is peered with the primary; secondaries are not peered \
             with each other.",
        )
        .rule("Known regions, each listed once, none equal to `primary`."),
    ],
);

const NETWORK: Section = section(
    "network",
    &[
        key(
            "az_count",
            int(1, MAX_AZS as i64),
            DefaultValue::Int(2),
            "Availability zones per region; each gets one public and one private subnet.",
        )
        .rule(
            "6 is `MAX_AZS`; no more than the zones available for every region (the built-in table \
             or the override).",
        ),
        key(
            "nat_gateways",
            Str,
            DefaultValue::Str("per-az"),
            "`\"per-az\"`: one NAT gateway per AZ, so an AZ outage does not cut the others off. \
             `\"single\"`: one NAT gateway in the first AZ shared by all private subnets (cheaper; \
             for dev).",
        )
        .rule("`\"per-az\"` or `\"single\"`."),
        key(
            "subnet_prefix",
            int(17, 28),
            DefaultValue::Int(20),
            "Prefix length of every subnet (20 → /20 subnets, 4,096 addresses).",
        )
        .rule("longer than every VPC prefix; the layout must fit (below)."),
        key("vpc_cidr", Table, Required, ""),
        key("availability_zones", Table, Unset(""), ""),
    ],
);

const VPC_CIDR: Section = region_keyed(
    "network.vpc_cidr",
    &[key("<region>", Str, Required, "The VPC's address block in that region.").format("IPv4 CIDR").rule(
        "Exactly one entry per region of the environment and no other; a network address \
             (`10.0.0.1/16` is rejected, the error suggests `10.0.0.0/16`); prefix `/16` to `/28` \
             (AWS VPC limits); **no two blocks overlap** (VPC peering forbids it).",
    )],
);

const AVAILABILITY_ZONES: Section = region_keyed(
    "network.availability_zones",
    &[key(
        "<region>",
        Strings,
        Unset("the built-in table"),
        "Zones to use in that region, in order; the first `az_count` are used. Needed when an \
         account's zones differ from the table.",
    )
    .rule(
        "Region of the environment; each name is the region followed by one lowercase letter \
         (`us-east-1d`); no duplicates; at least `az_count` entries.",
    )],
);

const AWS: Section = section(
    "aws",
    &[
        key(
            "endpoint_url",
            Str,
            Unset("none"),
            "Send every AWS call to this endpoint (an emulator). The `AWS_ENDPOINT_URL` environment \
             variable wins over it.",
        )
        .rule(
            "`http://` or `https://`, then a non-empty host (a name, an IPv4 address or `[IPv6]`), \
             an optional port `1..=65535` and an optional path; no whitespace, user info, query or \
             fragment.",
        ),
        key(
            "profile",
            Str,
            Unset("none (default credential chain)"),
            "Named profile of the shared AWS config.",
        )
        .rule("Not empty."),
        key(
            "emulator_credentials",
            Bool,
            DefaultValue::Bool(false),
            "Use fixed dummy credentials instead of the credential chain — for an emulator only.",
        )
        .rule("`true` requires `endpoint_url`."),
    ],
);

const ENGINE: Section = section(
    "engine",
    &[
        key(
            "concurrency",
            int(1, 64),
            DefaultValue::Int(8),
            "How many changes run at once, across all regions.",
        ),
        key(
            "wait_timeout_secs",
            int(1, 7200),
            DefaultValue::Int(900),
            "Upper bound, in seconds, on any single wait (a NAT gateway becoming available, a \
             peering turning active…).",
        ),
        key(
            "one_region_at_a_time",
            Bool,
            DefaultValue::Bool(false),
            "Finish every change of one region before starting the next (primary first; what spans \
             regions, such as the peering, comes last), the way stack-per-region tools deploy. \
             Slower; for comparison (`scripts/bench`) or to limit a change's blast radius.",
        ),
    ],
);

const REGISTRY: Section = section(
    "registry",
    &[
        key(
            "enabled",
            Bool,
            DefaultValue::Bool(true),
            "Whether the environment has a container image repository.",
        ),
        key(
            "name",
            Str,
            Derived("`\"{app}-{env}\"`"),
            "ECR repository name, the same in the primary region and every replica region.",
        )
        .rule(
            "2 to 256 characters matching \
             `^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$` (ECR's rule): \
             lowercase letters and digits, single `.`, `_` or `-` between them, `/` between path \
             parts; starts with `{app}-{env}` (e.g. `webapp-prod/api`), the prefix by which the \
             deployer finds the environment's repositories.",
        ),
        key(
            "immutable_tags",
            Bool,
            DefaultValue::Bool(false),
            "A tag cannot be pushed twice (`IMMUTABLE`), so a tag always names the same image.",
        ),
        key("scan_on_push", Bool, DefaultValue::Bool(true), "Scan every pushed image for vulnerabilities."),
        key(
            "encryption",
            Str,
            DefaultValue::Str("AES256"),
            "`\"AES256\"`: encrypted with keys ECR manages. `\"KMS\"`: encrypted with the KMS key of \
             each region in `[registry.kms_key]`.",
        )
        .rule("`\"AES256\"` or `\"KMS\"`. Fixed when the repository is created: changing it replaces the repository."),
        key("kms_key", Table, Unset(""), ""),
        key(
            "keep_tagged_images",
            int(1, 1000),
            DefaultValue::Int(30),
            "The lifecycle policy keeps this many tagged images, the most recently pushed.",
        ),
        key(
            "expire_untagged_after_days",
            int(1, 3650),
            DefaultValue::Int(7),
            "The lifecycle policy deletes an untagged image this many days after it was pushed.",
        ),
        key(
            "keep_on_destroy",
            Bool,
            DefaultValue::Bool(false),
            "`destroy` keeps the repository if it still holds images (an empty one is deleted).",
        ),
    ],
);

const REGISTRY_KMS_KEY: Section = region_keyed(
    "registry.kms_key",
    &[key(
        "<region>",
        Str,
        Unset("none"),
        "The KMS key that encrypts the repository in that region (the primary's and each replica's).",
    )
    .format("KMS key ARN")
    .rule(
        "Required for every region of the environment when `encryption = \"KMS\"`, rejected \
         otherwise; `arn:aws:kms:<that region>:<account>:key/<key id>` or \
         `arn:aws:kms:<that region>:<account>:alias/<name>`.",
    )],
);

const DATABASE: Section = section(
    "database",
    &[
        key(
            "enabled",
            Bool,
            DefaultValue::Bool(true),
            "Whether the environment has a database: a PostgreSQL primary in the primary region and \
             a cross-region read replica in each secondary.",
        ),
        key(
            "identifier",
            Str,
            Derived("`\"{app}-{env}\"`"),
            "RDS identifier of the primary and of each replica (identifiers are per region).",
        )
        .rule(
            "1 to 63 lowercase letters, digits and `-`; starts with a letter; no `--`, no trailing \
             `-` (RDS's rule; RDS stores identifiers in lowercase). Changing it replaces the database.",
        ),
        key("engine_version", Str, DefaultValue::Str("16.4"), "PostgreSQL version, `<major>.<minor>`.").rule(
            "`<major>.<minor>` with major 13 to 17 (the majors RDS supports), e.g. `\"16.4\"`; \
             whether that minor is offered in the region is RDS's to say.",
        ),
        key("instance_class", Str, DefaultValue::Str("db.t4g.medium"), "Instance class of the primary.")
            .rule("A class PostgreSQL runs on: see [Instance classes](#instance-classes)."),
        key(
            "replica_instance_class",
            Str,
            Derived("`instance_class`"),
            "Instance class of each cross-region read replica.",
        )
        .rule("As `instance_class`."),
        key(
            "allocated_storage_gib",
            int(20, 65536),
            DefaultValue::Int(20),
            "Storage allocated when the database is created, in GiB.",
        ),
        key(
            "max_allocated_storage_gib",
            int(20, 65536),
            DefaultValue::Int(100),
            "Upper limit for storage autoscaling, in GiB; equal to `allocated_storage_gib` turns \
             autoscaling off.",
        )
        .rule("at least `allocated_storage_gib`."),
        key(
            "multi_az",
            Bool,
            DefaultValue::Bool(true),
            "A standby in another availability zone takes over if the primary's zone fails.",
        ),
        key("kms_key", Table, Unset(""), ""),
        key(
            "backup_retention_days",
            int(1, 35),
            DefaultValue::Int(7),
            "Days of automated backups (point-in-time recovery).",
        )
        .rule("at least 1: RDS cannot create a read replica of a database without automated backups."),
        key(
            "backup_window",
            Str,
            DefaultValue::Str("03:00-04:00"),
            "Daily window for automated backups, `hh24:mi-hh24:mi` in UTC.",
        )
        .rule("At least 30 minutes; must not overlap `maintenance_window`."),
        key(
            "maintenance_window",
            Str,
            DefaultValue::Str("sun:05:00-sun:06:00"),
            "Weekly window for maintenance, `ddd:hh24:mi-ddd:hh24:mi` in UTC (`mon` … `sun`).",
        )
        .rule("At least 30 minutes; must not overlap the backup window on any day."),
        key(
            "deletion_protection",
            Bool,
            DefaultValue::Bool(true),
            "RDS refuses to delete the database (and `destroy` with it) until this is turned off.",
        ),
        key(
            "skip_final_snapshot",
            Bool,
            DefaultValue::Bool(false),
            "Delete the database without taking a final snapshot.",
        ),
        key(
            "apply_immediately",
            Bool,
            DefaultValue::Bool(false),
            "Apply changes now instead of in the next maintenance window (may restart the database).",
        ),
        key(
            "performance_insights",
            Bool,
            DefaultValue::Bool(true),
            "Turn on Performance Insights; left off for classes that do not support it \
             (`*.micro`, `*.small`).",
        ),
        key("port", int(1150, 65535), DefaultValue::Int(5432), "Port the database listens on."),
        key("database_name", Str, DefaultValue::Str("app"), "Database created in the new instance.").rule(
            "1 to 63 letters, digits and `_`, starting with a letter (a PostgreSQL identifier); not \
             `postgres`, `rdsadmin`, `template0` or `template1`, which exist already.",
        ),
        key(
            "master_username",
            Str,
            DefaultValue::Str("app_admin"),
            "Master user; its password is generated into Secrets Manager, never into the config.",
        )
        .rule(
            "1 to 63 letters, digits and `_`, starting with a letter; not a name RDS or PostgreSQL \
             reserves (`postgres`, `admin`, `rdsadmin`, `rds_superuser`, `pg_*`, …).",
        ),
        key(
            "allow_replacement",
            Bool,
            DefaultValue::Bool(false),
            "Allow a change that replaces the database (engine, encryption, identifier); refused \
             otherwise.",
        ),
        key(
            "wait_timeout_secs",
            int(60, 86400),
            DefaultValue::Int(3600),
            "How long to wait for a database or replica to become available, in seconds.",
        ),
    ],
);

const DATABASE_KMS_KEY: Section = region_keyed(
    "database.kms_key",
    &[key(
        "<region>",
        Str,
        Unset("`alias/aws/rds` (the AWS-managed key) in every region"),
        "The KMS key that encrypts the primary (in the primary region) or the read replica (in a \
         secondary).",
    )
    .format("KMS key ARN")
    .rule(
        "None, or one for every region of the environment; `arn:aws:kms:<that region>:<account>:key/<key id>` \
         or `arn:aws:kms:<that region>:<account>:alias/<name>`.",
    )],
);

/// Every section, parents before their sub-tables.
pub(crate) const SECTIONS: &[&Section] = &[
    &TOP,
    &REGIONS,
    &NETWORK,
    &VPC_CIDR,
    &AVAILABILITY_ZONES,
    &AWS,
    &ENGINE,
    &REGISTRY,
    &REGISTRY_KMS_KEY,
    &DATABASE,
    &DATABASE_KMS_KEY,
];

/// The section at dotted `path` (`""` for the top level).
pub(crate) fn section_at(path: &str) -> Option<&'static Section> {
    SECTIONS.iter().copied().find(|section| section.path == path)
}

/// The schema entry of a dotted key such as `network.az_count`.
///
/// Panics when the schema has no such key: validation asks only for keys it declares, so this is
/// a bug caught by the tests.
pub(crate) fn key_at(dotted: &str) -> &'static Key {
    let (path, name) = dotted.rsplit_once('.').unwrap_or(("", dotted));
    section_at(path)
        .and_then(|section| section.key(name))
        .unwrap_or_else(|| panic!("`{dotted}` is not a key of the configuration schema"))
}

/// The range and default of an integer key.
pub(crate) fn int_key(dotted: &str) -> (RangeInclusive<i64>, i64) {
    match key_at(dotted) {
        Key { kind: Kind::Int { min, max }, default: DefaultValue::Int(default), .. } => {
            (*min..=*max, *default)
        }
        other => panic!("`{dotted}` is not an integer key with a default: {other:?}"),
    }
}

/// The default of a boolean key.
pub(crate) fn bool_default(dotted: &str) -> bool {
    match key_at(dotted) {
        Key { kind: Kind::Bool, default: DefaultValue::Bool(default), .. } => *default,
        other => panic!("`{dotted}` is not a boolean key with a default: {other:?}"),
    }
}

/// The default of a string key that has a fixed one.
pub(crate) fn str_default(dotted: &str) -> &'static str {
    match key_at(dotted) {
        Key { kind: Kind::Str, default: DefaultValue::Str(default), .. } => default,
        other => panic!("`{dotted}` is not a string key with a default: {other:?}"),
    }
}

/// The sections a key of this name belongs to (for "`az_count` belongs in [network]").
pub(crate) fn sections_with_key(name: &str) -> impl Iterator<Item = &'static Section> + '_ {
    SECTIONS.iter().copied().filter(move |section| !section.region_keyed && section.key(name).is_some())
}

/// The markdown table documenting the section at dotted `path` (`""` for the top level), as it
/// appears in `docs/configuration.md`; `None` for an unknown section. Sub-tables are left out:
/// each has its own table.
pub fn docs_table(path: &str) -> Option<String> {
    let section = section_at(path)?;
    let mut out = String::from("| Key | Type | Default | Meaning | Constraints |\n|---|---|---|---|---|\n");
    for key in section.keys.iter().filter(|key| key.kind != Kind::Table) {
        let name = format!("`{}`", key.name);
        let mut ty = match key.kind {
            Kind::Bool => "boolean".to_owned(),
            Kind::Int { .. } => "integer".to_owned(),
            Kind::Str => "string".to_owned(),
            Kind::Strings => "array of strings".to_owned(),
            Kind::Table => unreachable!("filtered out"),
        };
        if let Some(format) = key.format {
            write!(ty, " ({format})").unwrap();
        }
        let default = match key.default {
            DefaultValue::Required if section.region_keyed => "— (required for each region)".to_owned(),
            DefaultValue::Required => "— (required)".to_owned(),
            DefaultValue::Unset(text) | DefaultValue::Derived(text) => text.to_owned(),
            DefaultValue::Bool(value) => format!("`{value}`"),
            DefaultValue::Int(value) => format!("`{value}`"),
            DefaultValue::Str(value) => format!("`\"{value}\"`"),
            DefaultValue::Empty => "`[]`".to_owned(),
        };
        let constraints = match (key.kind, key.constraints) {
            (Kind::Int { min, max }, "") => format!("`{min}..={max}`."),
            (Kind::Int { min, max }, rule) => format!("`{min}..={max}`; {rule}"),
            (_, "") => "—".to_owned(),
            (_, rule) => rule.to_owned(),
        };
        let cells = [name, ty, default, key.meaning.to_owned(), constraints];
        let cells: Vec<String> = cells.iter().map(|cell| cell.replace('|', "\\|")).collect();
        writeln!(out, "| {} |", cells.join(" | ")).unwrap();
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_key_has_its_section_and_every_section_a_parent() {
        for section in SECTIONS {
            for key in section.keys.iter().filter(|key| key.kind == Kind::Table) {
                let path = if section.path.is_empty() {
                    key.name.to_owned()
                } else {
                    format!("{}.{}", section.path, key.name)
                };
                assert!(section_at(&path).is_some(), "{path} has no section");
            }
            if !section.path.is_empty() {
                let (parent, name) = section.path.rsplit_once('.').unwrap_or(("", section.path));
                let key = section_at(parent).and_then(|parent| parent.key(name));
                assert_eq!(key.map(|key| key.kind), Some(Kind::Table), "{} has no parent key", section.path);
            }
            if section.region_keyed {
                assert_eq!(section.keys.len(), 1, "{}", section.path);
                assert_eq!(section.keys[0].name, "<region>", "{}", section.path);
            }
        }
    }

    #[test]
    fn defaults_fit_their_keys() {
        for section in SECTIONS {
            for key in section.keys {
                let fits = match (key.kind, key.default) {
                    (_, DefaultValue::Required | DefaultValue::Unset(_) | DefaultValue::Derived(_)) => true,
                    (Kind::Bool, DefaultValue::Bool(_)) | (Kind::Str, DefaultValue::Str(_)) => true,
                    (Kind::Strings, DefaultValue::Empty) => true,
                    (Kind::Int { min, max }, DefaultValue::Int(value)) => (min..=max).contains(&value),
                    _ => false,
                };
                assert!(fits, "{}.{}: {:?} does not fit {:?}", section.path, key.name, key.default, key.kind);
                assert!(
                    key.kind == Kind::Table || !key.meaning.is_empty(),
                    "{}.{} needs a meaning for the docs",
                    section.path,
                    key.name
                );
            }
        }
    }
}
