//! Reading `base.toml` and `<env>.toml`, checking their shape, and merging them.
//!
//! Each file is deserialized into an all-`Option` [`FileConfig`] whose values are
//! [`toml::Spanned`], so every value remembers where it was written. The merge keeps, for every
//! value, the file it came from ([`Val`]), so validation can point at the right line of the right
//! file.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::diagnostic::{closest, into_result, list, ConfigIssue, Loc, SourceFile};
use super::Config;

/// The shared file every environment starts from.
pub(crate) const BASE_FILE: &str = "base.toml";
/// Index of `base.toml` / `<env>.toml` in the loaded files.
pub(crate) const BASE: usize = 0;
pub(crate) const ENV: usize = 1;

pub(super) fn load(dir: &Path, env: &str) -> Result<Config, miette::Report> {
    if let Some(problem) = super::validate::name_problem(env) {
        let issue =
            ConfigIssue::new("config::env_name", "--env", format!("environment name `{env}` {problem}"))
                .help(
                    "environment names use lowercase letters, digits and single '-' inside, \
             e.g. `prod` or `eu-staging`; there must be a config/<env>.toml for it",
                );
        return Err(miette::Report::new(issue));
    }
    if format!("{env}.toml") == BASE_FILE {
        let issue = ConfigIssue::new(
            "config::env_name",
            "--env",
            "`base` is the file every environment shares, not an environment",
        )
        .help(environments_help(dir));
        return Err(miette::Report::new(issue));
    }

    let mut issues = Vec::new();
    let files: Vec<SourceFile> = [BASE_FILE.to_owned(), format!("{env}.toml")]
        .iter()
        .filter_map(|name| read(dir, name, env, &mut issues))
        .collect();
    into_result(env, issues)?;

    let mut issues = Vec::new();
    let parsed: Vec<Option<FileConfig>> = files.iter().map(|file| parse(file, &mut issues)).collect();
    into_result(env, issues)?;

    let mut merged = Merged::default();
    for (index, file) in parsed.into_iter().enumerate() {
        merged.layer(file.expect("parse errors were reported"), index);
    }
    super::validate::resolve(&merged, env, &files)
}

/// The environments defined in `dir`: every `*.toml` other than `base.toml`, sorted.
pub fn environments(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let env = name.strip_suffix(".toml")?;
            (name != BASE_FILE && !env.is_empty()).then(|| env.to_owned())
        })
        .collect();
    names.sort();
    names
}

fn environments_help(dir: &Path) -> String {
    let known = environments(dir);
    if known.is_empty() {
        format!("{} defines no environment: add a <env>.toml next to {BASE_FILE}", dir.display())
    } else {
        format!("environments in {}: {}", dir.display(), list(&known))
    }
}

fn read(dir: &Path, name: &str, env: &str, issues: &mut Vec<ConfigIssue>) -> Option<SourceFile> {
    let path = dir.join(name);
    let shown = path.display().to_string();
    let problem = |code, message: String, help: String| {
        ConfigIssue::new(code, "", message).in_files(shown.clone()).help(help)
    };
    let bytes = match std::fs::metadata(&path).and_then(|meta| {
        // Reading a directory fails with an error that names no file; say what it is instead.
        if meta.is_dir() {
            Ok(None)
        } else {
            std::fs::read(&path).map(Some)
        }
    }) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => {
            issues.push(problem(
                "config::not_a_file",
                "is a directory, not a file".to_owned(),
                format!("the configuration of an environment is the file {name}: replace the directory with it"),
            ));
            return None;
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let (message, help) = if name == BASE_FILE {
                (
                    "the shared configuration file does not exist".to_owned(),
                    format!(
                        "every environment is {BASE_FILE} merged with <env>.toml; \
                         is {} the configuration directory?",
                        dir.display()
                    ),
                )
            } else {
                (format!("environment `{env}` has no configuration file"), environments_help(dir))
            };
            issues.push(problem("config::missing_file", message, help));
            return None;
        }
        Err(error) => {
            issues.push(problem(
                "config::unreadable_file",
                format!("cannot read the file: {error}"),
                "check that the file is readable by the user running the deployer".to_owned(),
            ));
            return None;
        }
    };
    match String::from_utf8(bytes) {
        Ok(text) => Some(SourceFile { name: shown, text: Arc::new(text) }),
        Err(error) => {
            let offset = error.utf8_error().valid_up_to();
            let line = error.as_bytes()[..offset].iter().filter(|b| **b == b'\n').count() + 1;
            issues.push(problem(
                "config::not_utf8",
                format!("is not valid UTF-8 (byte offset {offset})"),
                format!(
                    "the first byte that is not UTF-8 is on line {line}; TOML files are UTF-8: \
                     save the file as UTF-8 (an editor may have written Latin-1 or UTF-16)"
                ),
            ));
            None
        }
    }
}

// ---------------------------------------------------------------------------------------------
// One file, as written

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileConfig {
    pub app: Option<Spanned<String>>,
    pub regions: Option<RegionsFile>,
    pub network: Option<NetworkFile>,
    pub aws: Option<AwsFile>,
    pub engine: Option<EngineFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RegionsFile {
    pub primary: Option<Spanned<String>>,
    pub secondary: Option<Spanned<Vec<Spanned<String>>>>,
}

type RegionMap<T> = BTreeMap<Spanned<String>, Spanned<T>>;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NetworkFile {
    pub az_count: Option<Spanned<i64>>,
    pub nat_gateways: Option<Spanned<String>>,
    pub subnet_prefix: Option<Spanned<i64>>,
    pub vpc_cidr: Option<RegionMap<String>>,
    pub availability_zones: Option<RegionMap<Vec<Spanned<String>>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AwsFile {
    pub endpoint_url: Option<Spanned<String>>,
    pub profile: Option<Spanned<String>>,
    pub emulator_credentials: Option<Spanned<bool>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EngineFile {
    pub concurrency: Option<Spanned<i64>>,
    pub wait_timeout_secs: Option<Spanned<i64>>,
}

/// The keys each table accepts; `None` for the region-keyed tables and for values.
fn table_keys(path: &str) -> Option<&'static [&'static str]> {
    Some(match path {
        "" => &["app", "regions", "network", "aws", "engine"],
        "regions" => &["primary", "secondary"],
        "network" => &["az_count", "nat_gateways", "subnet_prefix", "vpc_cidr", "availability_zones"],
        "aws" => &["endpoint_url", "profile", "emulator_credentials"],
        "engine" => &["concurrency", "wait_timeout_secs"],
        _ => return None,
    })
}

const TABLES: &[&str] = &["", "regions", "network", "aws", "engine"];

fn parse(file: &SourceFile, issues: &mut Vec<ConfigIssue>) -> Option<FileConfig> {
    // Issues here concern this one file: index 0 of a one-file slice.
    let files = std::slice::from_ref(file);
    let at = |span: Option<std::ops::Range<usize>>| Loc { file: 0, span: span.unwrap_or(0..0) };
    let document = match DeTable::parse(&file.text) {
        Ok(document) => document,
        Err(error) => {
            issues.push(
                ConfigIssue::new("config::syntax", "", format!("invalid TOML: {}", error.message())).at(
                    files,
                    &at(error.span()),
                    "here",
                ),
            );
            return None;
        }
    };

    // All unknown keys at once (serde would stop at the first), each with the valid ones.
    let before = issues.len();
    check_keys(document.get_ref(), "", file, issues);
    let unknown_keys = issues.len() > before;

    match toml::from_str::<FileConfig>(&file.text) {
        Ok(config) => Some(config),
        Err(error) => {
            if !(unknown_keys && error.message().starts_with("unknown field")) {
                let key = key_at(document.get_ref(), error.span().unwrap_or(0..0)).unwrap_or_default();
                let message = readable(error.message());
                let label = expectation(&message);
                issues.push(ConfigIssue::new("config::type", key, message).at(
                    files,
                    &at(error.span()),
                    label,
                ));
            }
            None
        }
    }
}

fn check_keys(table: &DeTable<'_>, path: &str, file: &SourceFile, issues: &mut Vec<ConfigIssue>) {
    let Some(valid) = table_keys(path) else {
        return;
    };
    for (key, value) in table.iter() {
        let name: &str = key.get_ref();
        let child = if path.is_empty() { name.to_owned() } else { format!("{path}.{name}") };
        if !valid.contains(&name) {
            let shown = if path.is_empty() { "at the top level".to_owned() } else { format!("in [{path}]") };
            let mut help = format!("valid keys {shown}: {}", list(valid));
            if let Some(near) = closest(name, valid.iter().copied()) {
                help = format!("did you mean `{near}`? {help}");
            } else if let Some(table) =
                TABLES.iter().find(|table| table_keys(table).is_some_and(|keys| keys.contains(&name)))
            {
                help = format!("`{name}` belongs in [{table}]; {help}");
            }
            issues.push(
                ConfigIssue::new("config::unknown_key", child, format!("unknown key `{name}` {shown}"))
                    .at(std::slice::from_ref(file), &Loc { file: 0, span: key.span() }, "not a known key")
                    .help(help),
            );
        } else if let DeValue::Table(inner) = value.get_ref() {
            check_keys(inner, &child, file, issues);
        }
    }
}

/// The dotted key whose key or value contains `span`, deepest first.
fn key_at(table: &DeTable<'_>, span: std::ops::Range<usize>) -> Option<String> {
    fn contains(outer: &std::ops::Range<usize>, inner: &std::ops::Range<usize>) -> bool {
        outer.start <= inner.start && inner.end <= outer.end.max(inner.start)
    }
    fn walk(value: &DeValue<'_>, span: &std::ops::Range<usize>) -> Option<String> {
        match value {
            DeValue::Table(table) => table.iter().find_map(|(key, value)| {
                if let Some(deeper) = walk(value.get_ref(), span) {
                    return Some(format!("{}.{deeper}", key.get_ref()));
                }
                (contains(&key.span(), span) || contains(&value.span(), span))
                    .then(|| key.get_ref().to_string())
            }),
            DeValue::Array(array) => array.iter().enumerate().find_map(|(index, item)| {
                if let Some(deeper) = walk(item.get_ref(), span) {
                    return Some(format!("[{index}].{deeper}"));
                }
                contains(&item.span(), span).then(|| format!("[{index}]"))
            }),
            _ => None,
        }
    }
    let found = walk(&DeValue::Table(table.clone()), &span)?;
    Some(found.replace(".[", "["))
}

/// serde speaks Rust; say what a TOML author writes instead.
fn readable(message: &str) -> String {
    if message.contains(" as i128") {
        // An integer literal beyond 64 bits.
        if let Some(number) = message.split('`').nth(1) {
            return format!("{number} is too large");
        }
    }
    let mut message = message
        .replace("expected i64", "expected an integer")
        .replace("invalid type: sequence", "invalid type: array")
        .replace("invalid type: map", "invalid type: table")
        .replace("expected a sequence", "expected an array")
        .replace("expected a map", "expected a table");
    // `expected struct NetworkFile` names one of ours: it is a table in the file.
    if let Some(at) = message.find("expected struct ") {
        message.truncate(at);
        message.push_str("expected a table");
    }
    message
}

/// The label under a type error: what should have been there.
fn expectation(message: &str) -> String {
    match message.rfind("expected ") {
        Some(at) => message[at..].to_owned(),
        None => "here".to_owned(),
    }
}

// ---------------------------------------------------------------------------------------------
// Both files, merged

/// A value and the place it was written.
#[derive(Debug, Clone)]
pub(crate) struct Val<T> {
    pub value: T,
    pub loc: Loc,
}

/// An entry of a region-keyed table: where its key is, and its value.
#[derive(Debug, Clone)]
pub(crate) struct Entry<T> {
    pub key: Loc,
    pub value: Val<T>,
}

/// `base.toml` overlaid with `<env>.toml`: a key set in the env file replaces base's value,
/// tables merge key by key, arrays are replaced whole.
#[derive(Debug, Default)]
pub(crate) struct Merged {
    pub app: Option<Val<String>>,
    pub primary: Option<Val<String>>,
    pub secondary: Option<Val<Vec<Spanned<String>>>>,
    pub az_count: Option<Val<i64>>,
    pub nat_gateways: Option<Val<String>>,
    pub subnet_prefix: Option<Val<i64>>,
    pub vpc_cidr: BTreeMap<String, Entry<String>>,
    pub availability_zones: BTreeMap<String, Entry<Vec<Spanned<String>>>>,
    pub endpoint_url: Option<Val<String>>,
    pub profile: Option<Val<String>>,
    pub emulator_credentials: Option<Val<bool>>,
    pub concurrency: Option<Val<i64>>,
    pub wait_timeout_secs: Option<Val<i64>>,
}

impl Merged {
    fn layer(&mut self, file: FileConfig, index: usize) {
        fn set<T>(slot: &mut Option<Val<T>>, value: Option<Spanned<T>>, file: usize) {
            if let Some(value) = value {
                *slot = Some(val(value, file));
            }
        }
        fn merge<T>(slot: &mut BTreeMap<String, Entry<T>>, table: Option<RegionMap<T>>, file: usize) {
            for (key, value) in table.into_iter().flatten() {
                let entry = Entry { key: Loc { file, span: key.span() }, value: val(value, file) };
                slot.insert(key.into_inner(), entry);
            }
        }

        set(&mut self.app, file.app, index);
        let regions = file.regions.unwrap_or_default();
        set(&mut self.primary, regions.primary, index);
        set(&mut self.secondary, regions.secondary, index);
        let network = file.network.unwrap_or_default();
        set(&mut self.az_count, network.az_count, index);
        set(&mut self.nat_gateways, network.nat_gateways, index);
        set(&mut self.subnet_prefix, network.subnet_prefix, index);
        merge(&mut self.vpc_cidr, network.vpc_cidr, index);
        merge(&mut self.availability_zones, network.availability_zones, index);
        let aws = file.aws.unwrap_or_default();
        set(&mut self.endpoint_url, aws.endpoint_url, index);
        set(&mut self.profile, aws.profile, index);
        set(&mut self.emulator_credentials, aws.emulator_credentials, index);
        let engine = file.engine.unwrap_or_default();
        set(&mut self.concurrency, engine.concurrency, index);
        set(&mut self.wait_timeout_secs, engine.wait_timeout_secs, index);
    }
}

fn val<T>(value: Spanned<T>, file: usize) -> Val<T> {
    let span = value.span();
    Val { value: value.into_inner(), loc: Loc { file, span } }
}
