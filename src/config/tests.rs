//! Loading, merging and validation, against files in temporary directories and the shipped
//! `config/` directory. Error assertions check what a user reads: the file, the key, the message,
//! and the exact text each label points at.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use miette::{Diagnostic, GraphicalReportHandler, GraphicalTheme};
use tempfile::TempDir;

use super::*;

const BASE: &str = r#"
app = "webapp"

[regions]
primary = "us-east-1"
secondary = ["us-east-2"]

[network.vpc_cidr]
us-east-1 = "10.10.0.0/16"
us-east-2 = "10.20.0.0/16"
"#;

/// The tests of other sections write bases without `[tls]`; the service tier (on by default)
/// would refuse them for that, so it is turned off at the end of such a base (after every span
/// the tests point at).
fn without_service(base: &str) -> String {
    if base.contains("[service") || base.contains("[tls") || !base.contains("[regions]") {
        base.to_owned()
    } else {
        format!("{base}\n[service]\nenabled = false\n")
    }
}

fn write_dir(base: &str, envs: &[(&str, &str)]) -> TempDir {
    let dir = tempfile::Builder::new().prefix("deployer-config-").rand_bytes(8).tempdir().unwrap();
    std::fs::write(dir.path().join("base.toml"), without_service(base)).unwrap();
    for (env, text) in envs {
        std::fs::write(dir.path().join(format!("{env}.toml")), text).unwrap();
    }
    dir
}

fn load_dev(base: &str, dev: &str) -> (TempDir, Result<Config, miette::Report>) {
    let dir = write_dir(base, &[("dev", dev)]);
    let result = load(dir.path(), "dev");
    (dir, result)
}

fn ok(base: &str, dev: &str) -> Config {
    match load_dev(base, dev).1 {
        Ok(config) => config,
        Err(report) => panic!("expected a valid config, got:\n{}", render(&report)),
    }
}

fn err(base: &str, dev: &str) -> Problems {
    let (dir, result) = load_dev(base, dev);
    match result {
        Ok(config) => panic!("expected an error, got {config:#?}"),
        Err(report) => Problems::new(dir.path(), report),
    }
}

fn render(report: &miette::Report) -> String {
    let mut out = String::new();
    GraphicalReportHandler::new_themed(GraphicalTheme::unicode_nocolor())
        .with_width(1000)
        .render_report(&mut out, report.as_ref())
        .unwrap();
    out
}

/// One reported problem, as a user would read it.
#[derive(Debug)]
struct Problem {
    code: String,
    text: String,
    help: String,
    /// The name of the file the snippet is taken from.
    source_name: Option<String>,
    /// The text each label underlines, primary first.
    labeled: Vec<String>,
}

#[derive(Debug)]
struct Problems {
    dir: PathBuf,
    list: Vec<Problem>,
    rendered: String,
}

impl Problems {
    fn new(dir: &Path, report: miette::Report) -> Self {
        let diagnostic: &dyn Diagnostic = report.as_ref();
        let list = match diagnostic.related() {
            Some(related) => related.map(Problem::of).collect(),
            None => vec![Problem::of(diagnostic)],
        };
        Self { dir: dir.to_owned(), list, rendered: render(&report) }
    }

    /// The single problem with this code; its text must name `file` (in the temp dir) and `key`.
    fn one(&self, code: &str, file: &str, key: &str) -> &Problem {
        let matching: Vec<&Problem> = self.list.iter().filter(|p| p.code == code).collect();
        assert_eq!(matching.len(), 1, "one `{code}` problem expected in {self:#?}");
        let problem = matching[0];
        let path = self.dir.join(file).display().to_string();
        assert!(
            problem.text.starts_with(&format!("{path}: {key}: ")) || key.is_empty(),
            "`{}` should start with `{path}: {key}: `",
            problem.text
        );
        assert!(
            self.rendered.contains(&problem.text),
            "rendered report lacks `{}`:\n{}",
            problem.text,
            self.rendered
        );
        problem
    }

    fn codes(&self) -> Vec<&str> {
        self.list.iter().map(|p| p.code.as_str()).collect()
    }
}

impl Problem {
    fn of(diagnostic: &dyn Diagnostic) -> Self {
        let mut labels: Vec<miette::LabeledSpan> =
            diagnostic.labels().map(|l| l.collect()).unwrap_or_default();
        labels.sort_by_key(|label| !label.primary());
        let source = diagnostic.source_code();
        let mut source_name = None;
        let labeled = labels
            .iter()
            .map(|label| {
                let contents =
                    source.expect("labels need source code").read_span(label.inner(), 0, 0).unwrap();
                source_name = contents.name().map(str::to_owned);
                String::from_utf8(contents.data().to_vec()).unwrap()
            })
            .collect();
        Self {
            code: diagnostic.code().map(|c| c.to_string()).unwrap_or_default(),
            text: diagnostic.to_string(),
            help: diagnostic.help().map(|h| h.to_string()).unwrap_or_default(),
            source_name,
            labeled,
        }
    }

    /// The snippet shown is from `file` and its primary label underlines `text`.
    fn points_at(&self, dir: &Path, file: &str, text: &str) -> &Self {
        assert_eq!(
            self.source_name.as_deref(),
            Some(dir.join(file).display().to_string().as_str()),
            "{self:#?}"
        );
        assert_eq!(self.labeled.first().map(String::as_str), Some(text), "{self:#?}");
        self
    }

    fn says(&self, fragment: &str) -> &Self {
        assert!(self.text.contains(fragment), "`{}` should contain `{fragment}`", self.text);
        self
    }

    fn hints(&self, fragment: &str) -> &Self {
        assert!(self.help.contains(fragment), "help `{}` should contain `{fragment}`", self.help);
        self
    }
}

/// Assert `$code` is reported for `$file`/`$key` and the snippet of `$file` underlines `$text`.
macro_rules! check {
    ($problems:expr, $code:literal, $file:literal, $key:expr, $text:expr) => {{
        let problems = &$problems;
        let problem = problems.one($code, $file, $key);
        problem.points_at(&problems.dir, $file, $text);
        problem
    }};
}

// ---------------------------------------------------------------------------------------------
// Shipped files

fn shipped() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config")
}

#[test]
fn shipped_environments_all_load() {
    let envs = environments(&shipped());
    assert_eq!(envs, ["dev", "local", "prod", "staging"]);
    let mut cidrs = Vec::new();
    for env in &envs {
        let config = match load(&shipped(), env) {
            Ok(config) => config,
            Err(report) => panic!("config/{env}.toml:\n{}", render(&report)),
        };
        assert_eq!(config.app, "webapp");
        assert_eq!(config.env, *env);
        assert_eq!(config.region_names(), ["us-east-1", "us-east-2"]);
        for region in config.regions.values() {
            assert_eq!(region.availability_zones.len(), config.network.az_count);
            cidrs.push((env.clone(), region.vpc_cidr));
        }
    }
    // Environments may share an account: no two of them use the same blocks.
    for (i, (env_a, a)) in cidrs.iter().enumerate() {
        for (env_b, b) in &cidrs[i + 1..] {
            assert!(!a.contains(b) && !b.contains(a), "{env_a} {a} / {env_b} {b}");
        }
    }
}

#[test]
fn shipped_environments_have_their_shape() {
    let prod = load(&shipped(), "prod").unwrap();
    assert_eq!(prod.network.az_count, 3);
    assert_eq!(prod.network.nat_gateways, NatMode::PerAz);
    assert_eq!(prod.regions["us-east-1"].availability_zones, ["us-east-1a", "us-east-1b", "us-east-1c"]);
    assert_eq!(prod.regions["us-east-2"].availability_zones, ["us-east-2a", "us-east-2b", "us-east-2c"]);
    assert_eq!(prod.aws, AwsConfig::default());
    assert!(prod.registry.enabled && prod.registry.immutable_tags && prod.registry.keep_on_destroy);
    let db = &prod.database;
    assert!(
        db.enabled
            && db.multi_az
            && db.deletion_protection
            && !db.skip_final_snapshot
            && !db.apply_immediately
    );
    assert_eq!(db.identifier, "webapp-prod");
    assert_eq!(prod.registry.name, "webapp-prod");

    let dev = load(&shipped(), "dev").unwrap();
    assert!(dev.registry.enabled && !dev.registry.immutable_tags && !dev.registry.keep_on_destroy);
    let db = &dev.database;
    assert!(!db.multi_az && !db.deletion_protection && db.skip_final_snapshot && db.apply_immediately);

    let staging = load(&shipped(), "staging").unwrap();
    let db = &staging.database;
    assert!(db.multi_az && db.deletion_protection && !db.skip_final_snapshot && db.apply_immediately);
    assert_eq!(dev.network.nat_gateways, NatMode::Single);
    assert_eq!(dev.network.az_count, 2);

    let local = load(&shipped(), "local").unwrap();
    assert_eq!(local.aws.endpoint_url.as_deref(), Some("http://127.0.0.1:5000"));
    assert!(local.aws.emulator_credentials);
    assert_eq!(local.network.nat_gateways, NatMode::Single);
    assert_eq!(local.engine.wait_timeout, Duration::from_secs(120));
    assert_eq!(local.engine.concurrency, 8);
    assert!(local.registry.enabled);
    let db = &local.database;
    assert!(
        db.enabled
            && db.multi_az
            && !db.deletion_protection
            && db.skip_final_snapshot
            && db.apply_immediately
    );
    assert_eq!(db.instance_class, "db.t4g.micro");
    assert!(!performance_insights_supported(&db.instance_class));
    assert_eq!(db.backup_retention_days, 1);
    assert_eq!(db.wait_timeout, Duration::from_secs(600));
}

// ---------------------------------------------------------------------------------------------
// Defaults and merging

#[test]
fn defaults_are_applied() {
    let base = r#"
app = "webapp"
[regions]
primary = "us-west-1"
[network.vpc_cidr]
us-west-1 = "10.1.0.0/16"
"#;
    let config = ok(base, "");
    assert_eq!(
        config,
        Config {
            app: "webapp".into(),
            env: "dev".into(),
            primary_region: "us-west-1".into(),
            secondary_regions: vec![],
            regions: [(
                "us-west-1".to_owned(),
                RegionConfig {
                    vpc_cidr: "10.1.0.0/16".parse().unwrap(),
                    availability_zones: vec!["us-west-1a".into(), "us-west-1c".into()],
                }
            )]
            .into(),
            network: NetworkConfig { az_count: 2, nat_gateways: NatMode::PerAz, subnet_prefix: 20 },
            aws: AwsConfig {
                endpoint_url: None,
                profile: None,
                emulator_credentials: false,
                role_arn: None,
                external_id: None
            },
            engine: EngineConfig {
                concurrency: 8,
                wait_timeout: Duration::from_secs(900),
                one_region_at_a_time: false
            },
            registry: RegistryConfig {
                enabled: true,
                name: "webapp-dev".into(),
                immutable_tags: false,
                scan_on_push: true,
                encryption: RegistryEncryption::Aes256,
                kms_key: BTreeMap::new(),
                keep_tagged_images: 30,
                expire_untagged_after_days: 7,
                keep_on_destroy: false,
            },
            database: DatabaseConfig {
                enabled: true,
                identifier: "webapp-dev".into(),
                engine_version: "16.4".into(),
                instance_class: "db.t4g.medium".into(),
                replica_instance_class: "db.t4g.medium".into(),
                allocated_storage_gib: 20,
                max_allocated_storage_gib: 100,
                multi_az: true,
                kms_key: BTreeMap::new(),
                backup_retention_days: 7,
                backup_window: "03:00-04:00".into(),
                maintenance_window: "sun:05:00-sun:06:00".into(),
                deletion_protection: true,
                skip_final_snapshot: false,
                apply_immediately: false,
                performance_insights: true,
                port: 5432,
                database_name: "app".into(),
                master_username: "app_admin".into(),
                allow_replacement: false,
                wait_timeout: Duration::from_secs(3600),
            },
            service: ServiceConfig { enabled: false, ..Default::default() },
            tls: Default::default(),
            release: Default::default(),
            dns: crate::config::DnsConfig {
                primary: "us-west-1".into(),
                health_check_path: "/health".into(),
                health_check_interval_secs: 30,
                failure_threshold: 3,
                ..Default::default()
            },
            monitoring: crate::config::MonitoringConfig {
                enabled: true,
                alb_5xx_percent: 5,
                latency_p99_ms: 2000,
                unhealthy_hosts: 1,
                ecs_cpu_percent: 85,
                ecs_memory_percent: 90,
                db_cpu_percent: 80,
                db_free_storage_percent: 10,
                db_connections: 200,
                replica_lag_secs: 300,
                evaluation_minutes: 5,
                ..Default::default()
            },
            drift: Default::default(),
        }
    );
}

#[test]
fn env_file_overrides_base() {
    let base = r#"
app = "webapp"
[regions]
primary = "us-east-1"
secondary = ["us-east-2", "us-west-2"]
[network]
az_count = 2
nat_gateways = "per-az"
[network.vpc_cidr]
us-east-1 = "10.10.0.0/16"
us-east-2 = "10.20.0.0/16"
[network.availability_zones]
us-east-1 = ["us-east-1d", "us-east-1e", "us-east-1f"]
[aws]
profile = "base-profile"
[engine]
concurrency = 4
wait_timeout_secs = 60
"#;
    let dev = r#"
app = "shop"
[regions]
secondary = ["us-east-2"]         # arrays are replaced whole: us-west-2 is gone
[network]
nat_gateways = "single"
[network.vpc_cidr]
us-east-2 = "10.40.0.0/16"        # tables merge key by key: us-east-1 stays from base
[engine]
wait_timeout_secs = 300
"#;
    let config = ok(base, dev);
    assert_eq!(config.app, "shop");
    assert_eq!(config.secondary_regions, ["us-east-2"]);
    assert_eq!(config.network.nat_gateways, NatMode::Single);
    assert_eq!(config.network.az_count, 2);
    assert_eq!(config.regions["us-east-1"].vpc_cidr, "10.10.0.0/16".parse::<ipnet::Ipv4Net>().unwrap());
    assert_eq!(config.regions["us-east-2"].vpc_cidr, "10.40.0.0/16".parse::<ipnet::Ipv4Net>().unwrap());
    assert_eq!(config.regions["us-east-1"].availability_zones, ["us-east-1d", "us-east-1e"]);
    assert_eq!(config.regions["us-east-2"].availability_zones, ["us-east-2a", "us-east-2b"]);
    assert_eq!(config.aws.profile.as_deref(), Some("base-profile"));
    assert_eq!(config.engine.concurrency, 4);
    assert_eq!(config.engine.wait_timeout, Duration::from_secs(300));
}

#[test]
fn env_file_can_fix_a_bad_base_value_and_errors_name_the_file_the_value_came_from() {
    let base = format!("{BASE}\n[engine]\nconcurrency = 0\n");
    let problems = err(&base, "");
    check!(problems, "config::out_of_range", "base.toml", "engine.concurrency", "0");

    let config = ok(&base, "[engine]\nconcurrency = 2\n");
    assert_eq!(config.engine.concurrency, 2);
}

// ---------------------------------------------------------------------------------------------
// Files and names

#[test]
fn missing_env_file_lists_the_environments() {
    let dir = write_dir(BASE, &[("dev", ""), ("prod", "")]);
    let report = load(dir.path(), "qa").unwrap_err();
    let problems = Problems::new(dir.path(), report);
    problems
        .one("config::missing_file", "qa.toml", "")
        .says("qa.toml: environment `qa` has no configuration file")
        .hints("`dev` and `prod`");
}

#[test]
fn missing_base_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("dev.toml"), "").unwrap();
    let report = load(dir.path(), "dev").unwrap_err();
    Problems::new(dir.path(), report)
        .one("config::missing_file", "base.toml", "")
        .says("base.toml: the shared configuration file does not exist");
}

#[test]
fn bad_environment_names_are_rejected_before_reading_files() {
    let dir = write_dir(BASE, &[("dev", "")]);
    for (env, why) in [
        ("Dev", "must start with a lowercase letter"),
        ("1dev", "must start with a lowercase letter"),
        ("dev_1", "not `_`"),
        ("dev-", "must not end with '-'"),
        ("my--dev", "must not contain '--'"),
        ("../dev", "must start with a lowercase letter"),
        ("", "must not be empty"),
        ("base", "`base` is the file every environment shares"),
    ] {
        let report = load(dir.path(), env).unwrap_err();
        let problems = Problems::new(dir.path(), report);
        problems.one("config::env_name", "", "").says("--env: ").says(why);
    }
}

#[test]
fn bad_app_name() {
    let problems = err(BASE, "app = \"Web_App\"\n");
    check!(problems, "config::invalid_name", "dev.toml", "app", "\"Web_App\"")
        .says("must start with a lowercase letter");
    let problems = err(BASE, "app = \"web-\"\n");
    check!(problems, "config::invalid_name", "dev.toml", "app", "\"web-\"").says("end with '-'");
}

#[test]
fn app_and_env_too_long_for_aws_names() {
    // "webapp-checkout-service" + "-dev" = 27 characters
    let problems = err(BASE, "app = \"webapp-checkout-service\"\n");
    check!(problems, "config::name_too_long", "dev.toml", "app", "\"webapp-checkout-service\"")
        .says("`webapp-checkout-service-dev` (app-env) is 27 characters; it must be at most 24")
        .hints("32 characters")
        .hints("by 3 characters");
    // 24 exactly is fine.
    ok(BASE, "app = \"webapp-checkout-se\"\n");
}

#[test]
fn missing_required_keys_name_both_files() {
    let problems = err("[network.vpc_cidr]\nus-east-1 = \"10.0.0.0/16\"\n", "");
    let dir = problems.dir.display().to_string();
    let both = format!("{dir}/base.toml, {dir}/dev.toml");
    for key in ["app", "regions.primary"] {
        let problem = problems
            .list
            .iter()
            .find(|p| p.code == "config::missing_key" && p.text.contains(&format!(": {key}: ")))
            .unwrap_or_else(|| panic!("{key} missing: {problems:#?}"));
        assert!(problem.text.starts_with(&format!("{both}: {key}: required key is missing")));
    }
}

// ---------------------------------------------------------------------------------------------
// Shape: syntax, unknown keys, types

#[test]
fn syntax_error_points_at_it() {
    let problems = err(BASE, "[network\naz_count = 2\n");
    check!(problems, "config::syntax", "dev.toml", "", "").says("invalid TOML: unclosed table");
}

#[test]
fn unknown_keys_are_all_reported_with_the_valid_ones() {
    let dev = "[network]\naz_cuont = 3\n\n[engine]\nretries = 3\n\n[regoins]\nprimary = \"us-east-1\"\n";
    let problems = err(BASE, dev);
    assert_eq!(problems.codes(), ["config::unknown_key"; 3]);
    let typo = problems.list.iter().find(|p| p.text.contains("network.az_cuont")).unwrap();
    assert!(typo.text.ends_with("network.az_cuont: unknown key `az_cuont` in [network]"));
    assert!(typo.help.starts_with("did you mean `az_count`?"));
    assert!(typo
        .help
        .contains("`az_count`, `nat_gateways`, `subnet_prefix`, `vpc_cidr` and `availability_zones`"));
    typo.points_at(&problems.dir, "dev.toml", "az_cuont");

    let unknown = problems.list.iter().find(|p| p.text.contains("engine.retries")).unwrap();
    assert!(
        unknown.help.contains("`concurrency`, `wait_timeout_secs` and `one_region_at_a_time`"),
        "{}",
        unknown.help
    );

    let table = problems.list.iter().find(|p| p.text.contains("regoins")).unwrap();
    assert!(table.text.contains("unknown key `regoins` at the top level"));
    assert!(table.help.starts_with("did you mean `regions`?"));
}

#[test]
fn a_key_in_the_wrong_table_says_where_it_belongs() {
    let problems = err(BASE, "az_count = 3\n");
    check!(problems, "config::unknown_key", "dev.toml", "az_count", "az_count")
        .hints("`az_count` belongs in [network]");
}

#[test]
fn wrong_types_name_the_key() {
    let problems = err(BASE, "[network]\naz_count = \"two\"\n");
    check!(problems, "config::type", "dev.toml", "network.az_count", "\"two\"").says("expected an integer");

    let problems = err(BASE, "[regions]\nsecondary = \"us-east-2\"\n");
    check!(problems, "config::type", "dev.toml", "regions.secondary", "\"us-east-2\"")
        .says("expected an array");

    let problems = err(BASE, "[regions]\nsecondary = [\"us-east-2\", 7]\n");
    check!(problems, "config::type", "dev.toml", "regions.secondary[1]", "7").says("expected a string");

    let problems = err(BASE, "[aws]\nemulator_credentials = \"yes\"\n");
    check!(problems, "config::type", "dev.toml", "aws.emulator_credentials", "\"yes\"")
        .says("expected a boolean");
}

#[test]
fn a_table_written_as_an_array_is_rejected() {
    // serde maps a sequence onto a struct by position: these all loaded once.
    let base = r#"
app = "webapp"
regions = ["us-east-1", ["us-east-2"]]
"#;
    let problems = err(base, "");
    check!(problems, "config::type", "base.toml", "regions", r#"["us-east-1", ["us-east-2"]]"#)
        .says("`regions` must be a table ([regions]), not an array")
        .hints("valid keys: `primary` and `secondary`");

    let problems = err(BASE, "engine = [4, 600]\n");
    check!(problems, "config::type", "dev.toml", "engine", "[4, 600]")
        .says("`engine` must be a table ([engine]), not an array");

    let problems = err(BASE, "network = [2, \"single\", 20]\n");
    check!(problems, "config::type", "dev.toml", "network", "[2, \"single\", 20]")
        .says("`network` must be a table ([network]), not an array");

    let problems = err(BASE, "aws = \"http://127.0.0.1:5000\"\n");
    check!(problems, "config::type", "dev.toml", "aws", "\"http://127.0.0.1:5000\"")
        .says("`aws` must be a table ([aws]), not a string");

    let problems = err(BASE, "[[engine]]\nconcurrency = 2\n");
    problems.one("config::type", "dev.toml", "engine").says("not an array");

    let problems = err(BASE, "[network]\nvpc_cidr = [\"10.0.0.0/16\", \"10.1.0.0/16\"]\n");
    check!(problems, "config::type", "dev.toml", "network.vpc_cidr", r#"["10.0.0.0/16", "10.1.0.0/16"]"#)
        .says("`network.vpc_cidr` must be a table ([network.vpc_cidr]), not an array")
        .hints("one `<region> = ...` line per region");

    let problems = err(BASE, "[network]\navailability_zones = 3\n");
    problems.one("config::type", "dev.toml", "network.availability_zones").says("not an integer");

    // Inline tables are tables.
    let config =
        ok(BASE, "engine = { concurrency = 2 }\nnetwork.vpc_cidr = { us-east-2 = \"10.40.0.0/16\" }\n");
    assert_eq!(config.engine.concurrency, 2);
}

#[test]
fn every_type_problem_of_both_files_is_reported() {
    let base = format!("{BASE}\n[engine]\nconcurrency = 2.5\n");
    let dev = r#"
[network]
az_count = 99999999999999999999
nat_gateways = 1
[network.vpc_cidr]
us-east-2 = 10
[network.availability_zones]
us-east-1 = "us-east-1a"
[aws]
profile = 1979-05-27
"#;
    let problems = err(&base, dev);
    assert_eq!(problems.codes(), ["config::type"; 6], "{problems:#?}");
    let float = problems.list.iter().find(|p| p.text.contains("engine.concurrency")).unwrap();
    float.points_at(&problems.dir, "base.toml", "2.5").says("expected an integer, found a float");
    let texts: Vec<&str> = problems.list.iter().map(|p| p.text.as_str()).collect();
    for expected in [
        "network.az_count: 99999999999999999999 is too large",
        "network.nat_gateways: expected a string, found an integer",
        "network.vpc_cidr.us-east-2: expected a string, found an integer",
        "network.availability_zones.us-east-1: expected an array, found a string",
        "aws.profile: expected a string, found a datetime",
    ] {
        assert!(texts.iter().any(|text| text.ends_with(expected)), "`{expected}` in {texts:#?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Regions and availability zones

#[test]
fn unknown_region_suggests_the_closest() {
    let problems = err(BASE, "[regions]\nprimary = \"us-est-1\"\n");
    check!(problems, "config::unknown_region", "dev.toml", "regions.primary", "\"us-est-1\"")
        .says("`us-est-1` is not a known AWS commercial region")
        .hints("did you mean `us-east-1`?")
        .hints("known regions: us-east-1, us-east-2, us-west-1");
}

#[test]
fn unknown_secondary_region() {
    let problems = err(BASE, "[regions]\nsecondary = [\"us-east-2\", \"mars-1\"]\n");
    check!(problems, "config::unknown_region", "dev.toml", "regions.secondary[1]", "\"mars-1\"")
        .hints("known regions:");
}

#[test]
fn secondary_regions_are_distinct_and_not_the_primary() {
    let problems = err(BASE, "[regions]\nsecondary = [\"us-east-2\", \"us-east-1\", \"us-east-2\"]\n");
    assert_eq!(problems.codes(), ["config::duplicate_region"; 2]);
    let primary = problems.list.iter().find(|p| p.text.contains("[1]")).unwrap();
    assert!(primary.text.ends_with(
        "regions.secondary[1]: `us-east-1` is the primary region; a secondary region must be another one"
    ));
    primary.points_at(&problems.dir, "dev.toml", "\"us-east-1\"");
    let twice = problems.list.iter().find(|p| p.text.contains("[2]")).unwrap();
    assert!(twice.text.ends_with("regions.secondary[2]: `us-east-2` is listed twice"));
}

#[test]
fn availability_zone_override_must_belong_to_the_region() {
    let dev = "[network.availability_zones]\nus-east-2 = [\"us-east-2a\", \"us-east-1b\", \"us-east-2aa\"]\n";
    let problems = err(BASE, dev);
    assert_eq!(problems.codes(), ["config::foreign_zone"; 2]);
    let first = &problems.list[0];
    assert!(first.text.contains(
        "dev.toml: network.availability_zones.us-east-2[1]: `us-east-1b` is not an availability zone of us-east-2"
    ));
    first.points_at(&problems.dir, "dev.toml", "\"us-east-1b\"");
    assert!(first.help.contains("known zones of us-east-2: us-east-2a, us-east-2b, us-east-2c"));
    problems.list[1].points_at(&problems.dir, "dev.toml", "\"us-east-2aa\"");
}

#[test]
fn availability_zone_override_has_no_duplicates() {
    let dev = "[network.availability_zones]\nus-east-1 = [\"us-east-1a\", \"us-east-1a\", \"us-east-1b\"]\n";
    let problems = err(BASE, dev);
    check!(
        problems,
        "config::duplicate_zone",
        "dev.toml",
        "network.availability_zones.us-east-1[1]",
        "\"us-east-1a\""
    );
}

#[test]
fn availability_zone_override_holds_az_count_zones() {
    let dev = "[network]\naz_count = 3\n[network.availability_zones]\nus-east-1 = [\"us-east-1a\", \"us-east-1b\"]\n";
    let problems = err(BASE, dev);
    check!(
        problems,
        "config::too_few_zones",
        "dev.toml",
        "network.availability_zones.us-east-1",
        "[\"us-east-1a\", \"us-east-1b\"]"
    )
    .says("lists 2 zones, but network.az_count is 3");
}

#[test]
fn az_count_cannot_exceed_the_zones_a_region_has() {
    let base = r#"
app = "webapp"
[regions]
primary = "us-east-1"
secondary = ["us-west-1"]
[network.vpc_cidr]
us-east-1 = "10.10.0.0/16"
us-west-1 = "10.20.0.0/16"
"#;
    let problems = err(base, "[network]\naz_count = 3\n");
    check!(problems, "config::too_few_zones", "dev.toml", "network.az_count", "3")
        .says("us-west-1 has 2 availability zones known to the deployer (us-west-1a, us-west-1c), fewer than az_count = 3")
        .hints("lower network.az_count to 2");
    // An account with a third zone there says so.
    let config = ok(
        base,
        "[network]\naz_count = 3\n[network.availability_zones]\nus-west-1 = [\"us-west-1a\", \"us-west-1b\", \"us-west-1c\"]\n",
    );
    assert_eq!(config.regions["us-west-1"].availability_zones.len(), 3);
}

#[test]
fn az_count_range() {
    for bad in ["0", "7", "-1"] {
        let problems = err(BASE, &format!("[network]\naz_count = {bad}\n"));
        check!(problems, "config::out_of_range", "dev.toml", "network.az_count", bad)
            .says("must be between 1 and 6");
    }
}

#[test]
fn availability_zones_for_a_region_outside_the_environment() {
    let problems = err(BASE, "[network.availability_zones]\neu-west-1 = [\"eu-west-1a\", \"eu-west-1b\"]\n");
    check!(
        problems,
        "config::foreign_region",
        "dev.toml",
        "network.availability_zones.eu-west-1",
        "eu-west-1"
    )
    .hints("add `eu-west-1` to regions.secondary");
}

// ---------------------------------------------------------------------------------------------
// VPC blocks

#[test]
fn malformed_vpc_cidr() {
    let problems = err(BASE, "[network.vpc_cidr]\nus-east-2 = \"10.20.0/16\"\n");
    check!(problems, "config::invalid_cidr", "dev.toml", "network.vpc_cidr.us-east-2", "\"10.20.0/16\"")
        .says("`10.20.0/16` is not an IPv4 CIDR block");
}

#[test]
fn vpc_cidr_must_be_a_network_address() {
    let problems = err(BASE, "[network.vpc_cidr]\nus-east-2 = \"10.20.0.1/16\"\n");
    check!(
        problems,
        "config::cidr_not_network",
        "dev.toml",
        "network.vpc_cidr.us-east-2",
        "\"10.20.0.1/16\""
    )
    .hints("did you mean \"10.20.0.0/16\"?");
}

#[test]
fn vpc_cidr_prefix_within_aws_limits() {
    for bad in ["10.0.0.0/8", "10.20.0.0/29"] {
        let problems = err(BASE, &format!("[network.vpc_cidr]\nus-east-2 = \"{bad}\"\n"));
        check!(
            problems,
            "config::cidr_prefix",
            "dev.toml",
            "network.vpc_cidr.us-east-2",
            format!("\"{bad}\"").as_str()
        )
        .says("AWS VPC blocks are /16 to /28");
    }
}

#[test]
fn every_region_needs_a_vpc_cidr() {
    let base = "app = \"webapp\"\n[regions]\nprimary = \"us-east-1\"\nsecondary = [\"us-east-2\"]\n[network.vpc_cidr]\nus-east-1 = \"10.10.0.0/16\"\n";
    let problems = err(base, "");
    let problem = problems.one("config::missing_key", "base.toml", "");
    assert!(problem.text.contains("dev.toml: network.vpc_cidr.us-east-2: required key is missing"));
    assert!(problem.help.contains("add `us-east-2 = \"10.x.0.0/16\"` under [network.vpc_cidr]"));
}

#[test]
fn vpc_cidr_for_a_region_outside_the_environment() {
    // The env file drops us-east-2, but base still gives it a block.
    let problems = err(BASE, "[regions]\nsecondary = []\n");
    check!(problems, "config::foreign_region", "base.toml", "network.vpc_cidr.us-east-2", "us-east-2")
        .says("`us-east-2` is not a region of environment `dev` (its regions: `us-east-1`)")
        .hints("move network.vpc_cidr into each environment's file");
}

#[test]
fn overlapping_vpcs_name_both_regions_and_files() {
    // us-east-1 comes from base.toml, us-east-2 from dev.toml.
    let problems = err(BASE, "[network.vpc_cidr]\nus-east-2 = \"10.10.128.0/17\"\n");
    check!(problems, "config::cidr_overlap", "dev.toml", "network.vpc_cidr.us-east-2", "\"10.10.128.0/17\"")
        .says("10.10.128.0/17 overlaps 10.10.0.0/16 of us-east-1 (network.vpc_cidr.us-east-1), set in ")
        .says("base.toml")
        .hints("peered VPCs must not overlap: pick a different /17 for us-east-2");
}

#[test]
fn overlap_in_one_file_labels_both_blocks() {
    let problems =
        err(BASE, "[network.vpc_cidr]\nus-east-1 = \"10.10.0.0/16\"\nus-east-2 = \"10.10.0.0/16\"\n");
    let problem = check!(
        problems,
        "config::cidr_overlap",
        "dev.toml",
        "network.vpc_cidr.us-east-2",
        "\"10.10.0.0/16\""
    );
    assert_eq!(problem.labeled.len(), 2);
    assert!(problems.rendered.contains("overlaps us-east-1"));
    assert!(problems.rendered.contains("us-east-1's VPC"));
}

// ---------------------------------------------------------------------------------------------
// Subnet layout

#[test]
fn subnets_must_fit_the_layout() {
    // /24 VPC in /26 subnets: 4 slots, the layout needs 6 + 2 = 8.
    let dev = "[network]\nsubnet_prefix = 26\n[network.vpc_cidr]\nus-east-2 = \"10.20.0.0/24\"\n";
    let problems = err(BASE, dev);
    check!(
        problems,
        "config::subnets_do_not_fit",
        "dev.toml",
        "network.vpc_cidr.us-east-2",
        "\"10.20.0.0/24\""
    )
    .says("10.20.0.0/24 holds only 4 /26 subnets, but 2 AZs need 8 slots (6 + az_count)")
    .hints("public subnets use slots 0..2 and private subnets slots 6..8")
    .hints("use a VPC of /23 or larger, or subnet_prefix = 27 or more");
    // 8 slots exactly fit.
    ok(BASE, "[network]\nsubnet_prefix = 27\n[network.vpc_cidr]\nus-east-2 = \"10.20.0.0/24\"\n");
}

#[test]
fn subnet_prefix_must_be_longer_than_the_vpc_prefix() {
    let dev = "[network]\nsubnet_prefix = 20\n[network.vpc_cidr]\nus-east-2 = \"10.20.0.0/20\"\n";
    let problems = err(BASE, dev);
    check!(problems, "config::subnet_prefix", "dev.toml", "network.subnet_prefix", "20")
        .says("/20 subnets do not fit in the /20 VPC of us-east-2 (10.20.0.0/20)");
}

#[test]
fn subnet_prefix_range() {
    for bad in ["29", "16"] {
        let problems = err(BASE, &format!("[network]\nsubnet_prefix = {bad}\n"));
        check!(problems, "config::out_of_range", "dev.toml", "network.subnet_prefix", bad)
            .says("must be between 17 and 28");
    }
}

#[test]
fn nat_gateway_mode() {
    let problems = err(BASE, "[network]\nnat_gateways = \"per_az\"\n");
    check!(problems, "config::invalid_value", "dev.toml", "network.nat_gateways", "\"per_az\"")
        .says("use `per-az` or `single`")
        .hints("did you mean `per-az`?");
}

// ---------------------------------------------------------------------------------------------
// aws and engine

#[test]
fn endpoint_url_is_http() {
    for (bad, why) in [
        ("127.0.0.1:5000", "does not start with http:// or https://"),
        ("ftp://x", "the scheme is `ftp`"),
        ("http://", "the host is empty"),
        ("https://:5000", "the host is empty"),
        ("http:///x", "the host is empty"),
        ("http:// 127.0.0.1", "contains whitespace"),
        ("http://127.0.0.1:5000 ", "contains whitespace"),
        ("http://127.0.0.1:", "the port after `:` is empty"),
        ("http://127.0.0.1:99999", "not a number from 1 to 65535"),
        ("http://localhost:50x0", "not a number from 1 to 65535"),
        ("http://user:pw@localhost", "credentials"),
        ("http://local..host", "not a valid host name"),
        ("http://local_host?x=1", "no query or fragment"),
        ("http://[::1", "no closing `]`"),
        ("http://[nope]:5000", "not an IPv6 address"),
    ] {
        let problems = err(BASE, &format!("[aws]\nendpoint_url = \"{bad}\"\n"));
        check!(
            problems,
            "config::invalid_url",
            "dev.toml",
            "aws.endpoint_url",
            format!("\"{bad}\"").as_str()
        )
        .says(why);
    }
}

#[test]
fn endpoint_urls_that_work() {
    for good in [
        "http://127.0.0.1:5000",
        "https://localhost",
        "http://moto_server:5000/",
        "HTTPS://emulator.internal.example.com.:443/aws",
        "http://[::1]:5000",
        "http://[2001:db8::1]",
    ] {
        assert_eq!(validate::endpoint_url_problem(good), None, "{good}");
    }
}

#[test]
fn emulator_credentials_need_an_endpoint() {
    let problems = err(BASE, "[aws]\nemulator_credentials = true\n");
    check!(problems, "config::emulator_credentials", "dev.toml", "aws.emulator_credentials", "true")
        .says("is true but aws.endpoint_url is not set")
        .hints("set aws.endpoint_url");
    // false without an endpoint is the normal case.
    ok(BASE, "[aws]\nemulator_credentials = false\nprofile = \"admin\"\n");
}

#[test]
fn empty_profile() {
    let problems = err(BASE, "[aws]\nprofile = \" \"\n");
    check!(problems, "config::invalid_value", "dev.toml", "aws.profile", "\" \"");
}

#[test]
fn engine_ranges() {
    for (key, bad, range) in [
        ("concurrency", "0", "1 and 64"),
        ("concurrency", "65", "1 and 64"),
        ("wait_timeout_secs", "0", "1 and 7200"),
        ("wait_timeout_secs", "7201", "1 and 7200"),
    ] {
        let problems = err(BASE, &format!("[engine]\n{key} = {bad}\n"));
        let problem = problems.one("config::out_of_range", "dev.toml", &format!("engine.{key}"));
        problem.points_at(&problems.dir, "dev.toml", bad).says(&format!("must be between {range}"));
    }
}

// ---------------------------------------------------------------------------------------------
// [registry]

const KMS_1: &str = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
const KMS_2: &str = "arn:aws:kms:us-east-2:123456789012:alias/webapp";

#[test]
fn a_database_in_a_single_zone_is_refused_before_any_request() {
    let problems = err(BASE, "[network]\naz_count = 1\n");
    let text = format!("{problems:?}");
    assert!(text.contains("network.az_count") && text.contains("at least 2 availability zones"), "{text}");
    let config = ok(BASE, "[network]\naz_count = 1\n[database]\nenabled = false\n");
    assert_eq!(config.network.az_count, 1);
}

#[test]
fn a_repository_name_outside_the_environments_prefix_is_refused() {
    let problems = err(BASE, "[registry]\nname = \"team/webapp\"\n");
    let text = format!("{problems:?}");
    assert!(text.contains("registry.name") && text.contains("does not start with `webapp-dev`"), "{text}");
}

#[test]
fn registry_settings_merge_key_by_key() {
    let base = format!(
        "{BASE}\n[registry]\nencryption = \"KMS\"\nkeep_tagged_images = 50\n[registry.kms_key]\nus-east-1 = \"{KMS_1}\"\nus-east-2 = \"{KMS_2}\"\n"
    );
    let dev = r#"
[registry]
name = "webapp-dev/api"
immutable_tags = true
keep_on_destroy = true
scan_on_push = false
expire_untagged_after_days = 1
[registry.kms_key]
us-east-2 = "arn:aws:kms:us-east-2:210987654321:key/mrk-0123"
"#;
    let registry = ok(&base, dev).registry;
    assert_eq!(
        registry,
        RegistryConfig {
            enabled: true,
            name: "webapp-dev/api".into(),
            immutable_tags: true,
            scan_on_push: false,
            encryption: RegistryEncryption::Kms,
            kms_key: BTreeMap::from([
                ("us-east-1".to_owned(), KMS_1.to_owned()),
                ("us-east-2".to_owned(), "arn:aws:kms:us-east-2:210987654321:key/mrk-0123".to_owned()),
            ]),
            keep_tagged_images: 50,
            expire_untagged_after_days: 1,
            keep_on_destroy: true,
        }
    );
    assert_eq!(registry.encryption.as_str(), "KMS");
    assert!(!ok(BASE, "[registry]\nenabled = false\n").registry.enabled);
}

#[test]
fn registry_name_follows_ecr_rules() {
    for (bad, why) in [
        ("WebApp", "not `W`"),
        ("x", "2 to 256"),
        ("team//webapp", "empty path part"),
        ("web--app", "`--`"),
        ("-webapp", "start and end"),
    ] {
        let problems = err(BASE, &format!("[registry]\nname = \"{bad}\"\n"));
        check!(problems, "config::invalid_name", "dev.toml", "registry.name", format!("\"{bad}\"").as_str())
            .says(&format!("repository name `{bad}` "))
            .says(why)
            .hints("ECR repository names");
    }
}

#[test]
fn registry_encryption_is_aes256_or_kms() {
    let problems = err(BASE, "[registry]\nencryption = \"kms\"\n");
    check!(problems, "config::invalid_value", "dev.toml", "registry.encryption", "\"kms\"")
        .says("`kms` is not one of `AES256` and `KMS`")
        .hints("did you mean `KMS`?");
}

#[test]
fn registry_kms_needs_a_key_in_every_region() {
    let dev = format!("[registry]\nencryption = \"KMS\"\n[registry.kms_key]\nus-east-1 = \"{KMS_1}\"\n");
    let problems = err(BASE, &dev);
    let problem = problems.one("config::missing_key", "", "");
    assert!(
        problem.text.contains("dev.toml: registry.kms_key.us-east-2: required key is missing"),
        "{problem:#?}"
    );
    problem
        .hints("a key of their own region")
        .hints("us-east-2 = \"arn:aws:kms:us-east-2:<account>:key/<key id>\"");

    let problems = err(BASE, "[registry]\nencryption = \"KMS\"\n");
    assert_eq!(problems.codes(), ["config::missing_key"; 2]);
}

#[test]
fn registry_kms_key_must_be_of_its_region() {
    let dev = format!(
        "[registry]\nencryption = \"KMS\"\n[registry.kms_key]\nus-east-1 = \"{KMS_1}\"\nus-east-2 = \"{KMS_1}\"\n"
    );
    let problems = err(BASE, &dev);
    check!(
        problems,
        "config::invalid_kms_key",
        "dev.toml",
        "registry.kms_key.us-east-2",
        format!("\"{KMS_1}\"").as_str()
    )
    .says("is a key of us-east-1, but it is listed for us-east-2")
    .hints("arn:aws:kms:us-east-2:<12-digit account>:key/<key id>");

    let dev = format!(
        "[registry]\nencryption = \"KMS\"\n[registry.kms_key]\nus-east-1 = \"{KMS_1}\"\nus-east-2 = \"alias/aws/ecr\"\n"
    );
    let problems = err(BASE, &dev);
    check!(
        problems,
        "config::invalid_kms_key",
        "dev.toml",
        "registry.kms_key.us-east-2",
        "\"alias/aws/ecr\""
    )
    .says("is not an ARN");
}

#[test]
fn registry_kms_key_is_rejected_without_kms_encryption() {
    let problems = err(BASE, &format!("[registry.kms_key]\nus-east-1 = \"{KMS_1}\"\n"));
    check!(problems, "config::kms_key_unused", "dev.toml", "registry.kms_key.us-east-1", "us-east-1")
        .says("a KMS key is set, but registry.encryption is `AES256`")
        .hints("set registry.encryption = \"KMS\"");
    let problems = err(
        BASE,
        &format!("[registry]\nencryption = \"AES256\"\n[registry.kms_key]\nus-east-1 = \"{KMS_1}\"\n"),
    );
    let problem =
        check!(problems, "config::kms_key_unused", "dev.toml", "registry.kms_key.us-east-1", "us-east-1");
    assert_eq!(problem.labeled[1], "\"AES256\"");
}

#[test]
fn registry_kms_key_for_a_region_outside_the_environment() {
    let dev = format!(
        "[registry]\nencryption = \"KMS\"\n[registry.kms_key]\nus-east-1 = \"{KMS_1}\"\nus-east-2 = \"{KMS_2}\"\neu-west-1 = \"arn:aws:kms:eu-west-1:123456789012:key/abc\"\n"
    );
    let problems = err(BASE, &dev);
    check!(problems, "config::foreign_region", "dev.toml", "registry.kms_key.eu-west-1", "eu-west-1")
        .hints("add `eu-west-1` to regions.secondary");
}

#[test]
fn registry_ranges() {
    for (key, bad, range) in [
        ("keep_tagged_images", "0", "1 and 1000"),
        ("keep_tagged_images", "1001", "1 and 1000"),
        ("expire_untagged_after_days", "0", "1 and 3650"),
        ("expire_untagged_after_days", "3651", "1 and 3650"),
    ] {
        let problems = err(BASE, &format!("[registry]\n{key} = {bad}\n"));
        check!(problems, "config::out_of_range", "dev.toml", &format!("registry.{key}"), bad)
            .says(&format!("must be between {range}"));
    }
}

#[test]
fn registry_shape() {
    let problems = err(BASE, "registry = [true, \"webapp\"]\n");
    check!(problems, "config::type", "dev.toml", "registry", "[true, \"webapp\"]")
        .says("`registry` must be a table ([registry]), not an array");
    let problems = err(BASE, "[registry]\nkms_key = [\"arn:aws:kms:us-east-1:123456789012:key/a\"]\n");
    problems.one("config::type", "dev.toml", "registry.kms_key").says("must be a table ([registry.kms_key])");
    let problems = err(BASE, "[registry]\nenabled = \"yes\"\nimmutable = true\n");
    check!(problems, "config::type", "dev.toml", "registry.enabled", "\"yes\"").says("expected a boolean");
    check!(problems, "config::unknown_key", "dev.toml", "registry.immutable", "immutable")
        .hints("did you mean `immutable_tags`?");
}

// ---------------------------------------------------------------------------------------------
// [database]

#[test]
fn database_settings_merge_key_by_key() {
    let base = format!(
        "{BASE}\n[database]\ninstance_class = \"db.r6g.large\"\nport = 6543\n[database.kms_key]\nus-east-1 = \"{KMS_1}\"\n"
    );
    let dev = format!(
        r#"
[database]
identifier = "shop-db"
engine_version = "15.7"
replica_instance_class = "db.r6g.xlarge"
allocated_storage_gib = 100
max_allocated_storage_gib = 100
multi_az = false
backup_retention_days = 35
backup_window = "22:30-23:00"
maintenance_window = "sat:23:30-sun:00:30"
deletion_protection = false
skip_final_snapshot = true
apply_immediately = true
performance_insights = false
database_name = "Shop_1"
master_username = "owner"
allow_replacement = true
wait_timeout_secs = 60
[database.kms_key]
us-east-2 = "{KMS_2}"
"#
    );
    let database = ok(&base, &dev).database;
    assert_eq!(
        database,
        DatabaseConfig {
            enabled: true,
            identifier: "shop-db".into(),
            engine_version: "15.7".into(),
            instance_class: "db.r6g.large".into(),
            replica_instance_class: "db.r6g.xlarge".into(),
            allocated_storage_gib: 100,
            max_allocated_storage_gib: 100,
            multi_az: false,
            kms_key: BTreeMap::from([
                ("us-east-1".to_owned(), KMS_1.to_owned()),
                ("us-east-2".to_owned(), KMS_2.to_owned()),
            ]),
            backup_retention_days: 35,
            backup_window: "22:30-23:00".into(),
            maintenance_window: "sat:23:30-sun:00:30".into(),
            deletion_protection: false,
            skip_final_snapshot: true,
            apply_immediately: true,
            performance_insights: false,
            port: 6543,
            database_name: "Shop_1".into(),
            master_username: "owner".into(),
            allow_replacement: true,
            wait_timeout: Duration::from_secs(60),
        }
    );
    // The replica follows the primary's class unless told otherwise.
    let database = ok(BASE, "[database]\ninstance_class = \"db.m7g.2xlarge\"\n").database;
    assert_eq!(database.replica_instance_class, "db.m7g.2xlarge");
    assert!(!ok(BASE, "[database]\nenabled = false\n").database.enabled);
}

#[test]
fn database_bad_values_name_the_key() {
    for (key, value, code, says, hints) in [
        (
            "identifier",
            "\"1db\"",
            "config::invalid_name",
            "DB identifier `1db` must start with a letter",
            "RDS identifiers",
        ),
        ("identifier", "\"WebApp\"", "config::invalid_name", "write `webapp`", "RDS identifiers"),
        ("identifier", "\"web--db\"", "config::invalid_name", "'--'", "RDS identifiers"),
        ("identifier", "\"web-db-\"", "config::invalid_name", "end with '-'", "RDS identifiers"),
        (
            "engine_version",
            "\"16\"",
            "config::invalid_value",
            "engine version `16` is not `<major>.<minor>`",
            "major 13 to 17",
        ),
        ("engine_version", "\"12.9\"", "config::invalid_value", "major version 12", "major 13 to 17"),
        (
            "instance_class",
            "\"db.x9.large\"",
            "config::instance_class",
            "instance class `db.x9.large` has the family `x9`",
            "`db.<family>.<size>`",
        ),
        (
            "instance_class",
            "\"db.m5.micro\"",
            "config::instance_class",
            "too small for the family `m5`",
            "t3 and t4g come in micro",
        ),
        (
            "instance_class",
            "\"m5.large\"",
            "config::instance_class",
            "did you mean `db.m5.large`?",
            "`db.<family>.<size>`",
        ),
        (
            "replica_instance_class",
            "\"db.t4g.4xlarge\"",
            "config::instance_class",
            "too large for the burstable family `t4g`",
            "2xlarge",
        ),
        (
            "backup_window",
            "\"3:00-4:00\"",
            "config::invalid_value",
            "backup window `3:00-4:00` is not of the form `hh24:mi-hh24:mi`",
            "UTC",
        ),
        (
            "backup_window",
            "\"03:00-03:20\"",
            "config::invalid_value",
            "lasts 20 minutes",
            "at least 30 minutes",
        ),
        (
            "maintenance_window",
            "\"Sun:05:00-Sun:06:00\"",
            "config::invalid_value",
            "has the day `Sun`",
            "mon, tue",
        ),
        (
            "database_name",
            "\"my-app\"",
            "config::invalid_name",
            "database name `my-app` may contain only letters, digits and '_'",
            "1 to 63",
        ),
        ("database_name", "\"template1\"", "config::invalid_name", "exists already", "1 to 63"),
        (
            "master_username",
            "\"postgres\"",
            "config::invalid_name",
            "master username `postgres` is a name RDS or PostgreSQL reserves",
            "rdsadmin",
        ),
        ("master_username", "\"admin\"", "config::invalid_name", "reserves", "rdsadmin"),
        ("master_username", "\"pg_owner\"", "config::invalid_name", "`pg_`", "rdsadmin"),
        ("master_username", "\"1owner\"", "config::invalid_name", "start with a letter", "rdsadmin"),
    ] {
        let problems = err(BASE, &format!("[database]\n{key} = {value}\n"));
        let problem = problems.one(code, "dev.toml", &format!("database.{key}"));
        problem.points_at(&problems.dir, "dev.toml", value).says(says).hints(hints);
    }
}

#[test]
fn database_ranges() {
    for (key, bad, range) in [
        ("allocated_storage_gib", "19", "20 and 65536"),
        ("allocated_storage_gib", "65537", "20 and 65536"),
        ("max_allocated_storage_gib", "19", "20 and 65536"),
        ("backup_retention_days", "0", "1 and 35"),
        ("backup_retention_days", "36", "1 and 35"),
        ("port", "1149", "1150 and 65535"),
        ("port", "65536", "1150 and 65535"),
        ("wait_timeout_secs", "59", "60 and 86400"),
        ("wait_timeout_secs", "86401", "60 and 86400"),
    ] {
        let problems = err(BASE, &format!("[database]\n{key} = {bad}\n"));
        check!(problems, "config::out_of_range", "dev.toml", &format!("database.{key}"), bad)
            .says(&format!("must be between {range}"));
    }
    let problems = err(BASE, "[database]\nbackup_retention_days = 0\n");
    problems.one("config::out_of_range", "dev.toml", "database.backup_retention_days").hints("read replica");
}

#[test]
fn database_storage_min_above_max_names_both_keys() {
    let problems = err(BASE, "[database]\nallocated_storage_gib = 200\nmax_allocated_storage_gib = 100\n");
    let problem = check!(problems, "config::min_above_max", "dev.toml", "database.max_allocated_storage_gib", "100")
        .says("database.allocated_storage_gib (200) is greater than database.max_allocated_storage_gib (100): min > max")
        .hints("raise max_allocated_storage_gib to at least 200");
    assert_eq!(problem.labeled, ["100", "200"]);

    // Only the minimum written: the default maximum (100) is too small for it.
    let problems = err(BASE, "[database]\nallocated_storage_gib = 500\n");
    check!(problems, "config::min_above_max", "dev.toml", "database.allocated_storage_gib", "500")
        .says("(500) is greater than database.max_allocated_storage_gib (100)");

    // In different files: the message says where the other one is.
    let problems = err(
        &format!("{BASE}\n[database]\nmax_allocated_storage_gib = 50\n"),
        "[database]\nallocated_storage_gib = 60\n",
    );
    let problem = problems.one("config::min_above_max", "base.toml", "database.max_allocated_storage_gib");
    problem
        .points_at(&problems.dir, "base.toml", "50")
        .says("(database.allocated_storage_gib is set in ")
        .says("dev.toml)");
}

#[test]
fn database_windows_must_not_overlap() {
    let problems = err(BASE, "[database]\nmaintenance_window = \"sun:03:30-sun:04:30\"\n");
    check!(
        problems,
        "config::window_overlap",
        "dev.toml",
        "database.maintenance_window",
        "\"sun:03:30-sun:04:30\""
    )
    .says("the maintenance window `sun:03:30-sun:04:30` overlaps the daily backup window `03:00-04:00`")
    .hints("move one of them");

    let problems = err(BASE, "[database]\nbackup_window = \"05:30-06:30\"\n");
    check!(problems, "config::window_overlap", "dev.toml", "database.backup_window", "\"05:30-06:30\"");

    let problems = err(
        BASE,
        "[database]\nbackup_window = \"23:30-00:30\"\nmaintenance_window = \"tue:00:00-tue:01:00\"\n",
    );
    let problem = problems.one("config::window_overlap", "dev.toml", "database.maintenance_window");
    assert_eq!(problem.labeled, ["\"tue:00:00-tue:01:00\"", "\"23:30-00:30\""]);

    ok(BASE, "[database]\nbackup_window = \"04:00-04:30\"\nmaintenance_window = \"mon:04:30-mon:05:00\"\n");
}

#[test]
fn database_kms_keys_are_all_or_none() {
    let problems = err(BASE, &format!("[database.kms_key]\nus-east-1 = \"{KMS_1}\"\n"));
    let problem = problems.one("config::missing_key", "", "");
    assert!(
        problem.text.contains("dev.toml: database.kms_key.us-east-2: required key is missing"),
        "{problem:#?}"
    );
    problem.hints("a key of its own region").hints("alias/aws/rds");

    let dev = format!("[database.kms_key]\nus-east-1 = \"{KMS_2}\"\nus-east-2 = \"{KMS_2}\"\n");
    let problems = err(BASE, &dev);
    check!(
        problems,
        "config::invalid_kms_key",
        "dev.toml",
        "database.kms_key.us-east-1",
        format!("\"{KMS_2}\"").as_str()
    )
    .says("is a key of us-east-2, but it is listed for us-east-1");

    let dev = format!("[database.kms_key]\nus-east-1 = \"{KMS_1}\"\nus-east-2 = \"{KMS_2}\"\nus-west-2 = \"arn:aws:kms:us-west-2:123456789012:key/a\"\n");
    let problems = err(BASE, &dev);
    check!(problems, "config::foreign_region", "dev.toml", "database.kms_key.us-west-2", "us-west-2");

    assert!(ok(BASE, "").database.kms_key.is_empty());
}

#[test]
fn database_shape() {
    let problems = err(BASE, "database = [\"db.t4g.medium\", 20]\n");
    check!(problems, "config::type", "dev.toml", "database", "[\"db.t4g.medium\", 20]")
        .says("`database` must be a table ([database]), not an array");
    let problems = err(BASE, "[database]\nkms_key = \"alias/aws/rds\"\n");
    problems
        .one("config::type", "dev.toml", "database.kms_key")
        .says("must be a table ([database.kms_key]), not a string");
    let problems = err(BASE, "[database]\nmulti_az = 1\nport = \"5432\"\nengine = \"postgres\"\n");
    assert_eq!(problems.codes(), ["config::type", "config::type", "config::unknown_key"]);
    let unknown = problems.one("config::unknown_key", "dev.toml", "database.engine");
    unknown.hints("did you mean `engine_version`?");
}

#[test]
fn schema_defaults_pass_their_own_rules() {
    // Written out, every default must load: a default that breaks its key's rule is a bug.
    let dev = r#"
[registry]
encryption = "AES256"
[database]
engine_version = "16.4"
instance_class = "db.t4g.medium"
backup_window = "03:00-04:00"
maintenance_window = "sun:05:00-sun:06:00"
database_name = "app"
master_username = "app_admin"
"#;
    assert_eq!(ok(BASE, dev), ok(BASE, ""));
}

// ---------------------------------------------------------------------------------------------
// Many problems at once

const MANY: &str = r#"
# dev: a developer's environment.
app = "webapp"

[regions]
secondary = ["us-east-2", "eu-wset-1"]

[network]
nat_gateways = "per_az"

[network.vpc_cidr]
us-east-2 = "10.10.64.0/18"
eu-west-1 = "10.30.0.0/16"

[engine]
concurrency = 100
"#;

#[test]
fn all_problems_are_reported_together() {
    let problems = err(BASE, MANY);
    assert_eq!(
        problems.codes(),
        [
            "config::unknown_region",
            "config::invalid_value",
            "config::cidr_overlap",
            "config::subnets_do_not_fit",
            "config::out_of_range",
        ]
    );
    // The vpc_cidr entry for eu-west-1 is not reported as foreign: the unknown region's error
    // already asks "did you mean `eu-west-1`?".
    problems.list[0].hints("did you mean `eu-west-1`?");
    assert!(problems.rendered.contains("the configuration of environment `dev` has 5 problems"));
}

#[test]
fn rendered_report() {
    let (dir, result) = load_dev(BASE, MANY);
    let rendered = render(&result.unwrap_err()).replace(&dir.path().display().to_string(), "config");
    insta::assert_snapshot!(rendered);
}

// ---------------------------------------------------------------------------------------------
// Files that cannot be read as configuration

#[test]
fn a_file_that_is_not_utf8_says_where() {
    let dir = write_dir(BASE, &[]);
    std::fs::write(dir.path().join("dev.toml"), b"[network]\nnat_gateways = \"caf\xe9\"\n").unwrap();
    let report = load(dir.path(), "dev").unwrap_err();
    Problems::new(dir.path(), report)
        .one("config::not_utf8", "dev.toml", "")
        .says("dev.toml: is not valid UTF-8 (byte offset 29)")
        .hints("line 2");
}

#[test]
fn a_directory_in_place_of_a_file_is_named_as_such() {
    let dir = write_dir(BASE, &[]);
    std::fs::create_dir(dir.path().join("dev.toml")).unwrap();
    let report = load(dir.path(), "dev").unwrap_err();
    let problems = Problems::new(dir.path(), report);
    problems.one("config::not_a_file", "dev.toml", "").says("dev.toml: is a directory, not a file");
    assert!(!problems.rendered.contains("no configuration file"), "{}", problems.rendered);

    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("base.toml")).unwrap();
    std::fs::write(dir.path().join("dev.toml"), "").unwrap();
    let report = load(dir.path(), "dev").unwrap_err();
    Problems::new(dir.path(), report).one("config::not_a_file", "base.toml", "").says("is a directory");
}

// ---------------------------------------------------------------------------------------------
// docs/configuration.md

/// The marker line in docs/configuration.md after which a section's generated table goes.
fn docs_marker(path: &str) -> String {
    format!(
        "<!-- schema table: {} (generated; see src/config/schema.rs) -->",
        if path.is_empty() { "top level" } else { path }
    )
}

/// The marker line in docs/configuration.md before the ```toml block that shows a shipped file.
fn shipped_marker(file: &str) -> String {
    format!("<!-- shipped file: config/{file} (generated; without its header comment) -->")
}

/// A shipped config file as the docs show it: without the comment lines it starts with.
fn shipped_shown(file: &str) -> String {
    let text = std::fs::read_to_string(shipped().join(file)).unwrap();
    let body: Vec<&str> = text.lines().skip_while(|line| line.starts_with('#') || line.is_empty()).collect();
    body.join("\n")
}

/// `doc` with the table after each section's marker replaced by the one rendered from the schema,
/// and the block after each shipped file's marker by that file.
fn with_generated_tables(doc: &str) -> Result<String, String> {
    let mut lines: Vec<String> = doc.lines().map(str::to_owned).collect();
    let mut files = environments(&shipped());
    files.insert(0, "base".to_owned());
    for file in files.iter().map(|env| format!("{env}.toml")) {
        let marker = shipped_marker(&file);
        let Some(at) = lines.iter().position(|line| *line == marker) else {
            return Err(format!("no `{marker}` line: add it before the block showing config/{file}"));
        };
        let end = lines[at + 2..].iter().position(|line| line == "```").map(|n| at + 2 + n);
        let (Some("```toml"), Some(end)) = (lines.get(at + 1).map(String::as_str), end) else {
            return Err(format!("`{marker}` must be followed by a ```toml block"));
        };
        lines.splice(at + 2..end, shipped_shown(&file).lines().map(str::to_owned));
    }
    for section in schema::SECTIONS {
        let marker = docs_marker(section.path);
        let Some(at) = lines.iter().position(|line| *line == marker) else {
            return Err(format!("no `{marker}` line: add it where the table of {} belongs", section.shown()));
        };
        let table_end = lines[at + 1..]
            .iter()
            .position(|line| !line.starts_with('|'))
            .map_or(lines.len(), |n| at + 1 + n);
        let table = docs_table(section.path).expect("a section of the schema");
        lines.splice(at + 1..table_end, table.lines().map(str::to_owned));
    }
    Ok(lines.join("\n") + "\n")
}

#[test]
fn docs_tables_match_the_schema() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/configuration.md");
    let doc = std::fs::read_to_string(&path).unwrap();
    let updated =
        with_generated_tables(&doc).unwrap_or_else(|problem| panic!("docs/configuration.md: {problem}"));
    if std::env::var_os("UPDATE_DOCS").is_some_and(|value| value == "1") {
        if updated != doc {
            std::fs::write(&path, &updated).unwrap();
        }
        return;
    }
    let stale: Vec<String> = schema::SECTIONS
        .iter()
        .filter(|section| {
            let table = docs_table(section.path).unwrap();
            !doc.contains(&format!("{}\n{table}", docs_marker(section.path)))
        })
        .map(|section| section.shown())
        .chain(
            ["base", "dev", "local", "prod", "staging"]
                .iter()
                .map(|env| format!("{env}.toml"))
                .filter(|file| {
                    !doc.contains(&format!("{}\n```toml\n{}\n```", shipped_marker(file), shipped_shown(file)))
                })
                .map(|file| format!("config/{file}")),
        )
        .collect();
    assert!(
        stale.is_empty() && updated == doc,
        "docs/configuration.md does not match the configuration schema in src/config/schema.rs \
         or the shipped files ({}); regenerate its tables and file blocks with\n\n    \
         UPDATE_DOCS=1 cargo test --lib config::tests::docs_tables_match_the_schema\n\n\
         and review the diff",
        stale.join(", ")
    );
}

#[test]
fn a_release_waits_for_the_traffic_shift_of_its_deployment_configuration() {
    use super::DeploymentConfigChoice as C;
    assert_eq!(C::Predefined("CodeDeployDefault.ECSAllAtOnce".into()).shift_minutes(), 0);
    assert_eq!(C::Predefined("CodeDeployDefault.ECSCanary10Percent15Minutes".into()).shift_minutes(), 15);
    assert_eq!(C::Predefined("CodeDeployDefault.ECSLinear10PercentEvery3Minutes".into()).shift_minutes(), 30);
    assert_eq!(C::Canary { percent: 20, minutes: 10 }.shift_minutes(), 10);
    assert_eq!(C::Linear { percent: 30, minutes: 2 }.shift_minutes(), 8);
}

#[test]
fn a_role_to_assume_must_be_a_role_arn_and_an_external_id_needs_one() {
    for (bad, why) in [
        ("arn:aws:iam::12345:role/deployer", "the account is not 12 digits"),
        ("arn:aws:s3:::bucket", "not an IAM ARN"),
        ("arn:aws:iam::123456789012:user/alice", "does not name a role"),
        ("deployer", "does not start with arn:aws"),
    ] {
        let problems = err(BASE, &format!("[aws]\nrole_arn = \"{bad}\"\n"));
        check!(
            problems,
            "config::invalid_role_arn",
            "dev.toml",
            "aws.role_arn",
            format!("\"{bad}\"").as_str()
        )
        .says(why);
    }
    let problems = err(BASE, "[aws]\nexternal_id = \"team-a\"\n");
    check!(problems, "config::invalid_external_id", "dev.toml", "aws.external_id", "\"team-a\"")
        .says("aws.role_arn, which is not set");
    let problems =
        err(BASE, "[aws]\nrole_arn = \"arn:aws:iam::123456789012:role/d\"\nexternal_id = \"a b\"\n");
    check!(problems, "config::invalid_external_id", "dev.toml", "aws.external_id", "\"a b\"").says("letters");
}
