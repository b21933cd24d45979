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

/// A table whose keys are names the user chooses (environment variables), each described by
/// the one entry; read like a region-keyed table.
const fn keyed(path: &'static str, key: &'static [Key; 1]) -> Section {
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
        key("service", Table, Unset(""), ""),
        key("tls", Table, Unset(""), ""),
        key("release", Table, Unset(""), ""),
        key("dns", Table, Unset(""), ""),
        key("monitoring", Table, Unset(""), ""),
        key("drift", Table, Unset(""), ""),
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
        key(
            "role_arn",
            Str,
            Unset("none (the credentials as they are)"),
            "An IAM role every AWS client of the environment assumes, for an environment in \
             another account: the credentials the deployer starts with need only \
             `sts:AssumeRole` on it. The session is named `deployer-<user>`.",
        )
        .rule("`arn:<partition>:iam::<12-digit account>:role/<path/name>`."),
        key(
            "external_id",
            Str,
            Unset("none"),
            "The external ID the role's trust policy requires (`sts:ExternalId`).",
        )
        .rule("2 to 1224 characters of letters, digits and `+=,.@:/-_`; needs `role_arn`."),
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
         secondary), and that region's copy of the database's secret.",
    )
    .format("KMS key ARN")
    .rule(
        "None, or one for every region of the environment; `arn:aws:kms:<that region>:<account>:key/<key id>` \
         or `arn:aws:kms:<that region>:<account>:alias/<name>`.",
    )],
);

const SERVICE: Section = section(
    "service",
    &[
        key(
            "enabled",
            Bool,
            DefaultValue::Bool(true),
            "Whether the environment runs the application: IAM roles, a certificate, a load \
             balancer, an ECS Fargate service on the CodeDeploy controller, auto-scaling and the \
             CodeDeploy deployment group, in every region.",
        )
        .rule("Needs `registry.enabled` (the image comes from that repository) and `[tls]`."),
        key("container_port", int(1, 65535), DefaultValue::Int(8080), "The port the application listens on."),
        key(
            "image_tag",
            Str,
            DefaultValue::Str("latest"),
            "The tag of the image a region's first release runs (a region that runs nothing yet). \
             Afterwards releases own the image: `up --image`, `release --image` and `rollback` \
             change it, and a plain `up` keeps what each region runs.",
        )
        .rule("A Docker tag: 1 to 128 letters, digits, `_`, `.` and `-`, not starting with `.` or `-`."),
        key("cpu", int(256, 16384), DefaultValue::Int(512), "CPU units of a task (1024 = one vCPU).")
            .rule("With `memory`, a combination Fargate offers (see [Task sizes](#task-sizes))."),
        key("memory", int(512, 122880), DefaultValue::Int(1024), "Memory of a task, in MiB.")
            .rule("With `cpu`, a combination Fargate offers."),
        key(
            "cpu_architecture",
            Str,
            DefaultValue::Str("X86_64"),
            "The CPU architecture the image is built for.",
        )
        .rule("`\"X86_64\"` or `\"ARM64\"`."),
        key(
            "min_tasks",
            int(1, 1000),
            DefaultValue::Int(2),
            "Fewest tasks per region; the service starts with this many.",
        )
        .rule("At most `max_tasks`."),
        key("max_tasks", int(1, 1000), DefaultValue::Int(10), "Most tasks per region that auto-scaling may run."),
        key(
            "cpu_target_percent",
            int(10, 95),
            DefaultValue::Int(70),
            "Auto-scaling keeps the service's average CPU near this.",
        ),
        key(
            "memory_target_percent",
            int(10, 95),
            DefaultValue::Int(80),
            "Auto-scaling keeps the service's average memory near this.",
        ),
        key(
            "scale_in_cooldown_secs",
            int(0, 3600),
            DefaultValue::Int(300),
            "Seconds after a scale-in before the next one.",
        ),
        key(
            "scale_out_cooldown_secs",
            int(0, 3600),
            DefaultValue::Int(60),
            "Seconds after a scale-out before the next one.",
        ),
        key(
            "health_check_grace_secs",
            int(0, 2147483647),
            DefaultValue::Int(60),
            "Seconds ECS ignores failing load balancer health checks of a new task.",
        ),
        key(
            "read_only_root_filesystem",
            Bool,
            DefaultValue::Bool(true),
            "The container cannot write to its root file system.",
        ),
        key("user", Str, DefaultValue::Str("1000"), "The user the container runs as (not root).").rule(
            "A user name or numeric ID, optionally `:group`; `root` and `0` are refused.",
        ),
        key("environment", Table, Unset(""), ""),
        key("secrets", Table, Unset(""), ""),
        key(
            "secrets_kms_keys",
            Strings,
            Empty,
            "Customer-managed KMS keys that encrypt the secrets of `[service.secrets]`: the \
             execution role may decrypt with them.",
        )
        .format("KMS key ARNs")
        .rule("`arn:aws:kms:<region>:<account>:key/<key id>`."),
        key(
            "task_role_policy",
            Str,
            Unset("none: the task role has no permissions"),
            "The application's own AWS permissions: an IAM policy document (JSON) for the task role.",
        )
        .rule(
            "A JSON object with a `Statement` array (or object); each statement has `Effect` \
             (`Allow` or `Deny`), `Action` (`service:Action`, wildcards allowed) and `Resource` \
             (ARNs or `*`), and optionally `Sid`; other statement keys are refused.",
        ),
        key(
            "container_health_check",
            Strings,
            Derived("`[\"CMD-SHELL\", \"curl -fsS http://localhost:<container_port>/health || exit 1\"]`"),
            "The container's own health check (the default needs `curl` in the image).",
        )
        .rule("`CMD` or `CMD-SHELL` first, then at least one more element."),
        key(
            "log_retention_days",
            int(1, 3653),
            DefaultValue::Int(30),
            "Days CloudWatch Logs keeps the application's log (`/ecs/{app}-{env}`).",
        )
        .rule("One of CloudWatch Logs' values: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653."),
        key("log_kms_key", Table, Unset(""), ""),
        key("health_check", Table, Unset(""), ""),
        key(
            "deregistration_delay_secs",
            int(0, 3600),
            DefaultValue::Int(30),
            "Seconds the load balancer lets a leaving task finish its requests.",
        ),
        key(
            "ingress_cidrs",
            Strings,
            Derived("`[\"0.0.0.0/0\", \"::/0\"]` (the whole internet)"),
            "Who may reach the load balancer's ports 443 and 80.",
        )
        .format("IPv4 or IPv6 CIDRs")
        .rule("Network addresses (`10.0.0.0/8`, not `10.0.0.1/8`); at least one."),
        key(
            "operator_cidrs",
            Strings,
            Empty,
            "Who may reach the test listener (releases test the new version there before it \
             takes traffic). Never public by default.",
        )
        .format("IPv4 or IPv6 CIDRs")
        .rule("Network addresses."),
        key(
            "test_listener_port",
            int(1, 65535),
            DefaultValue::Int(8443),
            "The port of the HTTPS test listener, which forwards to the green target group.",
        )
        .rule("Not 80 or 443."),
        key(
            "idle_timeout_secs",
            int(1, 4000),
            DefaultValue::Int(60),
            "Seconds the load balancer keeps an idle connection open.",
        ),
        key(
            "deletion_protection",
            Bool,
            DefaultValue::Bool(false),
            "AWS refuses to delete the load balancer (and `destroy` with it) until this is off.",
        ),
        key(
            "ssl_policy",
            Str,
            DefaultValue::Str("ELBSecurityPolicy-TLS13-1-2-2021-06"),
            "The TLS policy of the HTTPS listeners.",
        )
        .rule("A TLS 1.3 policy of Elastic Load Balancing (`ELBSecurityPolicy-TLS13-…`)."),
        key("capacity", Table, Unset(""), ""),
        key(
            "wait_timeout_secs",
            int(60, 86400),
            DefaultValue::Int(1800),
            "How long to wait for the load balancer, certificate or service to be ready (a new \
             service: its desired tasks running and healthy in the blue target group), or gone; \
             and, plus the traffic shift, for a region's release deployment, in seconds.",
        ),
    ],
);

const SERVICE_ENVIRONMENT: Section = keyed(
    "service.environment",
    &[key(
        "<NAME>",
        Str,
        Unset("none"),
        "A plain environment variable of the container (never a secret: those go in \
         `[service.secrets]`).",
    )
    .rule(
        "Names `[A-Za-z_][A-Za-z0-9_]*`; not `DB_HOST`, `DB_PORT`, `DB_NAME`, `DB_USERNAME` or \
         `DB_PASSWORD`, which the deployer sets when there is a database.",
    )],
);

const SERVICE_SECRETS: Section = keyed(
    "service.secrets",
    &[key(
        "<NAME>",
        Str,
        Unset("none"),
        "An environment variable filled from the Secrets Manager secret of that name in the \
         task's region (`valueFrom`); its value never appears in the task definition.",
    )
    .format("secret name")
    .rule(
        "Names as in `[service.environment]`, not also set there; the secret's name is 1 to 512 \
         of `A-Z a-z 0-9 / _ + = . @ -` (Secrets Manager's rule), not an ARN.",
    )],
);

const SERVICE_LOG_KMS_KEY: Section = region_keyed(
    "service.log_kms_key",
    &[key("<region>", Str, Unset("none (CloudWatch Logs' own encryption)"), "The KMS key that encrypts the log group in that region.")
        .format("KMS key ARN")
        .rule("None, or one for every region of the environment; `arn:aws:kms:<that region>:<account>:key/<key id>`.")],
);

const SERVICE_HEALTH_CHECK: Section = section(
    "service.health_check",
    &[
        key("path", Str, DefaultValue::Str("/health"), "The path the load balancer checks on each task.")
            .rule("Starts with `/`; at most 1024 characters."),
        key("interval_secs", int(5, 300), DefaultValue::Int(15), "Seconds between checks."),
        key("timeout_secs", int(2, 120), DefaultValue::Int(5), "Seconds a check may take.")
            .rule("Less than `interval_secs`."),
        key(
            "healthy_threshold",
            int(2, 10),
            DefaultValue::Int(3),
            "Passed checks in a row that make a task healthy.",
        ),
        key(
            "unhealthy_threshold",
            int(2, 10),
            DefaultValue::Int(3),
            "Failed checks in a row that make a task unhealthy.",
        ),
        key("matcher", Str, DefaultValue::Str("200-299"), "The HTTP codes that pass.")
            .rule("Codes 200 to 499: one (`200`), a list (`200,204`) or a range (`200-299`)."),
    ],
);

const SERVICE_CAPACITY: Section = section(
    "service.capacity",
    &[
        key(
            "on_demand_base",
            int(0, 100000),
            DefaultValue::Int(0),
            "Tasks that always run on on-demand Fargate before any weight applies.",
        ),
        key(
            "on_demand_weight",
            int(0, 1000),
            DefaultValue::Int(1),
            "Share of the tasks beyond the base that run on on-demand Fargate.",
        ),
        key(
            "spot_weight",
            int(0, 1000),
            DefaultValue::Int(0),
            "Share of the tasks beyond the base that run on Fargate Spot (cheaper; AWS may stop them).",
        )
        .rule("Not both weights 0."),
    ],
);

const TLS: Section = section(
    "tls",
    &[
        key(
            "domain_names",
            Strings,
            Empty,
            "The names the load balancers' certificate covers (the first is its domain name); \
             ACM validates them with DNS records in `hosted_zone`.",
        )
        .rule(
            "Required when the service is enabled, unless `[tls.certificate_arns]` names a \
             certificate for every region; DNS names (a leading `*.` allowed), each the zone or \
             inside it, no repeats.",
        ),
        key(
            "hosted_zone",
            Str,
            Unset("none"),
            "The Route 53 public hosted zone (its name) the validation records go into. The \
             deployer never creates or deletes the zone.",
        )
        .rule("Required with `domain_names`; a DNS name (`example.com`)."),
        key("certificate_arns", Table, Unset(""), ""),
    ],
);

const TLS_CERTIFICATE_ARNS: Section = region_keyed(
    "tls.certificate_arns",
    &[key(
        "<region>",
        Str,
        Unset("none: the deployer requests a certificate"),
        "An existing ACM certificate the region's load balancer uses as it is.",
    )
    .format("ACM certificate ARN")
    .rule("None, or one for every region; `arn:aws:acm:<that region>:<account>:certificate/<id>`.")],
);

const RELEASE: Section = section(
    "release",
    &[
        key(
            "deployment_config",
            Str,
            DefaultValue::Str("CodeDeployDefault.ECSAllAtOnce"),
            "How CodeDeploy moves traffic to a new version: a predefined ECS configuration, or \
             `\"canary\"` / `\"linear\"` with `traffic_percent` and `interval_minutes` (the \
             deployer creates that configuration).",
        )
        .rule(
            "`CodeDeployDefault.ECSAllAtOnce`, `CodeDeployDefault.ECSCanary10Percent5Minutes`, \
             `CodeDeployDefault.ECSCanary10Percent15Minutes`, \
             `CodeDeployDefault.ECSLinear10PercentEvery1Minutes`, \
             `CodeDeployDefault.ECSLinear10PercentEvery3Minutes`, `canary` or `linear`.",
        ),
        key(
            "traffic_percent",
            int(1, 99),
            Unset("none"),
            "`canary`: the share of traffic the new version gets first; `linear`: the share \
             added at each step.",
        )
        .rule(
            "Required with `canary` and `linear`, refused otherwise. A shape CodeDeploy \
             predefines (10 %: canary after 5 or 15 minutes, linear every 1 or 3 minutes) uses \
             that configuration; another is created as `{app}-{env}-<shape>-<n>pct-<n>min`.",
        ),
        key(
            "interval_minutes",
            int(1, 2880),
            Unset("none"),
            "`canary`: minutes before the rest of the traffic moves; `linear`: minutes between steps.",
        )
        .rule("Required with `canary` and `linear`, refused otherwise."),
        key(
            "termination_wait_minutes",
            int(0, 2880),
            DefaultValue::Int(5),
            "Minutes the old version's tasks keep running after a successful release (a quick \
             way back).",
        ),
        key(
            "bake_secs",
            int(0, 86400),
            DefaultValue::Int(300),
            "After a region's release succeeds, seconds the deployment group's alarms must stay \
             OK before the next region is released (an alarm rolls the region back and ends the \
             run with exit 3).",
        ),
        key(
            "rollback_all_on_failure",
            Bool,
            DefaultValue::Bool(false),
            "When a region's release fails, also roll back the regions already released in the \
             same run (otherwise they keep the new version). `--rollback-all-on-failure` sets it \
             for one run.",
        ),
        key(
            "block_on_severity",
            Str,
            DefaultValue::Str("CRITICAL"),
            "A release is refused when the image's ECR scan (in the primary region) has a \
             finding of this severity or worse. `--allow-vulnerable` overrides it for one run.",
        )
        .rule("`CRITICAL`, `HIGH`, `MEDIUM` or `LOW`."),
        key(
            "image_wait_secs",
            int(0, 7200),
            DefaultValue::Int(900),
            "How long a release waits for the image to appear in every region's repository \
             (replication from the primary can lag) and for its scan to complete.",
        ),
    ],
);

const DNS: Section = section(
    "dns",
    &[
        key(
            "enabled",
            Bool,
            DefaultValue::Bool(false),
            "Route 53 failover for the environment's names: a health check per region and \
             PRIMARY/SECONDARY alias records to the load balancers.",
        )
        .rule("Needs the service tier and exactly one secondary region (Route 53 failover is a pair)."),
        key(
            "primary",
            Str,
            Unset("`regions.primary`"),
            "The region whose records are PRIMARY (the other's are SECONDARY). `deployer failover \
             --dns-only` switches it in AWS; setting it here keeps that arrangement.",
        )
        .rule("One of the environment's regions."),
        key(
            "hosted_zone",
            Str,
            Unset("`tls.hosted_zone`"),
            "The public hosted zone (its name) the records go into. The deployer never creates or \
             deletes the zone, nor any record of it but its own.",
        )
        .rule("A DNS name."),
        key(
            "names",
            Strings,
            Unset("`tls.domain_names`"),
            "The names that fail over (each gets a PRIMARY and a SECONDARY record).",
        )
        .rule("DNS names inside `hosted_zone`, no wildcards, no repeats."),
        key(
            "health_check_path",
            Str,
            Unset("`service.health_check.path`"),
            "The HTTPS path Route 53's checkers request on each region's load balancer.",
        )
        .rule("Starts with `/`."),
        key(
            "health_check_interval_secs",
            int(10, 30),
            DefaultValue::Int(30),
            "Seconds between checks from each checker region.",
        )
        .rule("10 or 30 (Route 53's two intervals; it cannot change later without a new check)."),
        key(
            "failure_threshold",
            int(1, 10),
            DefaultValue::Int(3),
            "Failed checks in a row before a region counts as unhealthy.",
        ),
        key(
            "health_check_regions",
            Strings,
            Empty,
            "Route 53's checker regions (empty: Route 53's default set).",
        )
        .rule(
            "Empty, or at least 3 of `us-east-1`, `us-west-1`, `us-west-2`, `eu-west-1`, \
             `ap-southeast-1`, `ap-southeast-2`, `ap-northeast-1`, `sa-east-1`.",
        ),
    ],
);

const MONITORING: Section = section(
    "monitoring",
    &[
        key(
            "enabled",
            Bool,
            DefaultValue::Bool(true),
            "CloudWatch alarms in every region on the tiers the environment has, an SNS topic per \
             region they notify, and one dashboard with every region side by side.",
        ),
        key(
            "emails",
            Strings,
            Empty,
            "Email addresses subscribed to every region's alarm topic. Each must confirm the \
             subscription from the mail AWS sends; until then it is pending, which is not drift.",
        )
        .rule("Addresses `name@domain`, no repeats."),
        key(
            "https_endpoints",
            Strings,
            Empty,
            "HTTPS endpoints (a chat or paging webhook) subscribed to every region's alarm topic; \
             each confirms the subscription from the request SNS sends it.",
        )
        .rule("`https://` URLs with a host, no repeats."),
        key(
            "alb_5xx_percent",
            int(1, 100),
            DefaultValue::Int(5),
            "Alarm when this percentage of the load balancer's requests is answered with a 5xx \
             (by the load balancer or the targets).",
        ),
        key(
            "latency_p99_ms",
            int(1, 60000),
            DefaultValue::Int(2000),
            "Alarm when the targets' 99th percentile response time exceeds this many milliseconds.",
        ),
        key(
            "unhealthy_hosts",
            int(1, 1000),
            DefaultValue::Int(1),
            "Alarm when at least this many targets of a target group are unhealthy.",
        ),
        key(
            "ecs_cpu_percent",
            int(1, 100),
            DefaultValue::Int(85),
            "Alarm when the service's average CPU use exceeds this percentage (auto-scaling aims \
             at 70).",
        ),
        key(
            "ecs_memory_percent",
            int(1, 100),
            DefaultValue::Int(90),
            "Alarm when the service's average memory use exceeds this percentage (auto-scaling \
             aims at 80).",
        ),
        key(
            "db_cpu_percent",
            int(1, 100),
            DefaultValue::Int(80),
            "Alarm when a database instance's CPU use exceeds this percentage.",
        ),
        key(
            "db_free_storage_percent",
            int(1, 99),
            DefaultValue::Int(10),
            "Alarm when a database's free storage falls below this percentage of \
             `database.allocated_storage_gib`.",
        ),
        key(
            "db_connections",
            int(1, 100000),
            DefaultValue::Int(200),
            "Alarm when a database instance holds more than this many connections.",
        ),
        key(
            "replica_lag_secs",
            int(1, 86400),
            DefaultValue::Int(300),
            "Alarm when a read replica is more than this many seconds behind the primary (what a \
             failover to its region would lose).",
        ),
        key(
            "evaluation_minutes",
            int(1, 60),
            DefaultValue::Int(5),
            "Minutes in a row a metric must breach before its alarm fires (one-minute periods).",
        ),
    ],
);

const DRIFT: Section = section(
    "drift",
    &[
        key(
            "schedule",
            Str,
            Unset("none: no scheduled check in AWS"),
            "When set, `up` builds a scheduled drift check in the primary region: an EventBridge \
             Scheduler schedule that runs the deployer's image as a Fargate task (`drift --env \
             <env> --output json`) under a read-only role, and a rule that sends its exit code 2 \
             to the alarm topic.",
        )
        .rule(
            "An EventBridge Scheduler expression: `rate(<n> minutes|hours|days)` (at least 5 \
             minutes) or `cron(<6 fields>)`. Needs `[service]` (its cluster and subnets) and \
             `[monitoring]` (its topic).",
        ),
        key(
            "image",
            Str,
            Unset("none"),
            "The deployer's own image (the repository's `Dockerfile`, with this configuration \
             directory in it), as `<registry>/<repository>:<tag>`.",
        )
        .format("image URI")
        .rule(
            "Required with `schedule`; an ECR image, `<account>.dkr.ecr.<region>.amazonaws.com/\
             <repository>:<tag>` or `@sha256:…`. The task execution role is allowed to pull from \
             that repository; one in another account also needs a repository policy that lets \
             this account pull.",
        ),
    ],
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
    &SERVICE,
    &SERVICE_ENVIRONMENT,
    &SERVICE_SECRETS,
    &SERVICE_LOG_KMS_KEY,
    &SERVICE_HEALTH_CHECK,
    &SERVICE_CAPACITY,
    &TLS,
    &TLS_CERTIFICATE_ARNS,
    &RELEASE,
    &DNS,
    &MONITORING,
    &DRIFT,
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

/// The sections a key of this name belongs to (for "`az_count` belongs in \[network\]").
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
                assert!(["<region>", "<NAME>"].contains(&section.keys[0].name), "{}", section.path);
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
