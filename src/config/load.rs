//! Reading `base.toml` and `<env>.toml`, checking their shape, and merging them.
//!
//! Each file is parsed into a TOML document and walked against the [schema]: a
//! table must be a table, a key must be one the schema lists, and a value must have its key's
//! type. Every value keeps the file and span it was written at ([`Val`]), so validation can point
//! at the right line of the right file.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::diagnostic::{closest, into_result, list, ConfigIssue, Loc, SourceFile};
use super::schema::{self, Kind, Section};

/// The shared file every environment starts from.
pub(crate) const BASE_FILE: &str = "base.toml";
/// Index of `base.toml` / `<env>.toml` in the loaded files.
pub(crate) const BASE: usize = 0;
pub(crate) const ENV: usize = 1;

/// The two files read, checked against the schema and merged (`<env>.toml` over `base.toml`),
/// for validation.
pub(super) fn load(dir: &Path, env: &str) -> Result<(Merged, Vec<SourceFile>), miette::Report> {
    if let Some(problem) = crate::spec::names::name_problem(env) {
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
    let parsed: Vec<Option<Merged>> =
        files.iter().enumerate().map(|(index, file)| parse(file, index, &mut issues)).collect();
    into_result(env, issues)?;

    let mut merged = Merged::default();
    for file in parsed {
        merged.overlay(file.expect("problems in a file were reported"));
    }
    Ok((merged, files))
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
                format!(
                    "the configuration of an environment is the file {name}: replace the directory with it"
                ),
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

/// Parse one file and check its shape against the schema: every table is a table, every key is
/// known, every value has its key's type. All problems of the file are reported, not the first.
fn parse(file: &SourceFile, index: usize, issues: &mut Vec<ConfigIssue>) -> Option<Merged> {
    let document = match DeTable::parse(&file.text) {
        Ok(document) => document,
        Err(error) => {
            let loc = Loc { file: 0, span: error.span().unwrap_or(0..0) };
            issues.push(
                ConfigIssue::new("config::syntax", "", format!("invalid TOML: {}", error.message())).at(
                    std::slice::from_ref(file),
                    &loc,
                    "here",
                ),
            );
            return None;
        }
    };
    let mut walk = Walk { file, index, issues: Vec::new(), values: Merged::default() };
    walk.table(document.get_ref(), schema::section_at("").expect("the top level"));
    // The document's tables are not kept in file order: report in the order a reader meets them.
    walk.issues.sort_by_key(|(offset, _)| *offset);
    let ok = walk.issues.is_empty();
    issues.extend(walk.issues.into_iter().map(|(_, issue)| issue));
    ok.then_some(walk.values)
}

/// Reading one file's tables into [`Merged`] form, checked against the schema.
struct Walk<'a> {
    file: &'a SourceFile,
    /// Which file this is (`BASE` or `ENV`), for the locations of its values.
    index: usize,
    /// Each with the offset it points at.
    issues: Vec<(usize, ConfigIssue)>,
    values: Merged,
}

impl Walk<'_> {
    fn val<T>(&self, value: T, span: Range<usize>) -> Val<T> {
        Val { value, loc: Loc { file: self.index, span } }
    }

    /// An issue pointing into this file (index 0 of a one-file slice).
    fn report(&mut self, issue: ConfigIssue, span: Range<usize>, label: impl Into<String>) {
        let offset = span.start;
        let issue = issue.at(std::slice::from_ref(self.file), &Loc { file: 0, span }, label);
        self.issues.push((offset, issue));
    }

    fn table(&mut self, table: &DeTable<'_>, section: &'static Section) {
        for (key, value) in table.iter() {
            let name: &str = key.get_ref();
            let dotted = join(section.path, name);
            if section.region_keyed {
                let kind = section.keys[0].kind;
                if let Some(typed) = self.typed(&dotted, value, kind) {
                    let entry = Entry { key: Loc { file: self.index, span: key.span() }, value: typed };
                    self.values
                        .regions
                        .entry(section.path.to_owned())
                        .or_default()
                        .insert(name.to_owned(), entry);
                }
                continue;
            }
            let Some(schema) = section.key(name) else {
                self.unknown_key(section, name, dotted, key.span());
                continue;
            };
            if schema.kind == Kind::Table {
                let inner = schema::section_at(&dotted).expect("every table key has its section");
                match value.get_ref() {
                    DeValue::Table(table) => self.table(table, inner),
                    other => self.not_a_table(inner, other, value.span()),
                }
            } else if let Some(typed) = self.typed(&dotted, value, schema.kind) {
                self.values.values.insert(dotted, typed);
            }
        }
    }

    fn unknown_key(&mut self, section: &Section, name: &str, dotted: String, span: Range<usize>) {
        let shown = if section.path.is_empty() {
            "at the top level".to_owned()
        } else {
            format!("in [{}]", section.path)
        };
        let valid: Vec<&str> = section.keys.iter().map(|key| key.name).collect();
        let mut help = format!("valid keys {shown}: {}", list(&valid));
        // A typo, or a key written shorter than it is (`immutable` for `immutable_tags`).
        let near = closest(name, valid.iter().copied()).or_else(|| {
            (name.len() >= 3).then(|| valid.iter().copied().find(|key| key.starts_with(name)))?
        });
        if let Some(near) = near {
            help = format!("did you mean `{near}`? {help}");
        } else if let Some(home) = schema::sections_with_key(name).next() {
            help = format!("`{name}` belongs in {}; {help}", home.shown());
        }
        let issue = ConfigIssue::new("config::unknown_key", dotted, format!("unknown key `{name}` {shown}"))
            .help(help);
        self.report(issue, span, "not a known key");
    }

    /// A table (`[engine]`) was expected; serde would have matched an array onto it by position.
    fn not_a_table(&mut self, section: &Section, found: &DeValue<'_>, span: Range<usize>) {
        let header = section.shown();
        let help = if section.region_keyed {
            format!("write the entries under a `{header}` line, one `<region> = ...` line per region")
        } else {
            let valid: Vec<&str> = section.keys.iter().map(|key| key.name).collect();
            format!(
                "write the keys under a `{header}` line, one `key = value` per line; valid keys: {}",
                list(&valid)
            )
        };
        let issue = ConfigIssue::new(
            "config::type",
            section.path,
            format!("`{}` must be a table ({header}), not {}", section.path, a(found.type_str())),
        )
        .help(help);
        self.report(issue, span, "expected a table");
    }

    fn wrong_type(&mut self, dotted: &str, expected: &str, found: &DeValue<'_>, span: Range<usize>) {
        let issue = ConfigIssue::new(
            "config::type",
            dotted,
            format!("expected {expected}, found {}", a(found.type_str())),
        );
        self.report(issue, span, format!("expected {expected}"));
    }

    /// The value of a key of `kind`, or `None` after reporting that it has another type.
    fn typed(&mut self, dotted: &str, value: &Spanned<DeValue<'_>>, kind: Kind) -> Option<Val<Value>> {
        let span = value.span();
        let typed = match (kind, value.get_ref()) {
            (Kind::Bool, DeValue::Boolean(flag)) => Value::Bool(*flag),
            (Kind::Int { .. }, DeValue::Integer(integer)) => {
                match i64::from_str_radix(integer.as_str(), integer.radix()) {
                    Ok(number) => Value::Int(number),
                    Err(_) => {
                        let issue =
                            ConfigIssue::new("config::type", dotted, format!("{integer} is too large"));
                        self.report(issue, span, "expected a 64-bit integer");
                        return None;
                    }
                }
            }
            (Kind::Str, DeValue::String(text)) => Value::Str(text.to_string()),
            (Kind::Strings, DeValue::Array(items)) => {
                let mut strings = Vec::new();
                for (position, item) in items.iter().enumerate() {
                    match item.get_ref() {
                        DeValue::String(text) => strings.push(self.val(text.to_string(), item.span())),
                        other => {
                            self.wrong_type(&format!("{dotted}[{position}]"), "a string", other, item.span())
                        }
                    }
                }
                if strings.len() != items.len() {
                    return None;
                }
                Value::Strings(strings)
            }
            (kind, found) => {
                let expected = match kind {
                    Kind::Bool => "a boolean",
                    Kind::Int { .. } => "an integer",
                    Kind::Str => "a string",
                    Kind::Strings => "an array",
                    Kind::Table => "a table",
                };
                self.wrong_type(dotted, expected, found, span);
                return None;
            }
        };
        Some(self.val(typed, span))
    }
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

/// `a string`, `an integer`, `an array`.
fn a(type_name: &str) -> String {
    let article = if type_name.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" };
    format!("{article} {type_name}")
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

/// A value of one of the schema's kinds, as written.
#[derive(Debug, Clone)]
pub(crate) enum Value {
    Bool(bool),
    Int(i64),
    Str(String),
    Strings(Vec<Val<String>>),
}

/// `base.toml` overlaid with `<env>.toml`: a key set in the env file replaces base's value,
/// tables merge key by key, arrays are replaced whole.
///
/// Values are found by their dotted key (`network.az_count`); the accessors check the key against
/// the schema, so a misspelt key in validation fails the tests instead of reading as "unset".
#[derive(Debug, Default)]
pub(crate) struct Merged {
    /// Every key set, by dotted path.
    values: BTreeMap<String, Val<Value>>,
    /// Region-keyed tables by dotted path (`network.vpc_cidr`), then region.
    regions: BTreeMap<String, BTreeMap<String, Entry<Value>>>,
}

impl Merged {
    fn overlay(&mut self, file: Merged) {
        self.values.extend(file.values);
        for (table, entries) in file.regions {
            self.regions.entry(table).or_default().extend(entries);
        }
    }

    fn get(&self, dotted: &str, kind: fn(Kind) -> bool) -> Option<&Val<Value>> {
        let schema = schema::key_at(dotted);
        assert!(kind(schema.kind), "`{dotted}` is a {:?} key", schema.kind);
        self.values.get(dotted)
    }

    pub fn int(&self, dotted: &str) -> Option<Val<i64>> {
        self.get(dotted, |kind| matches!(kind, Kind::Int { .. })).map(|val| match &val.value {
            Value::Int(number) => Val { value: *number, loc: val.loc.clone() },
            other => unreachable!("the walk stores integers for integer keys, not {other:?}"),
        })
    }

    pub fn bool(&self, dotted: &str) -> Option<Val<bool>> {
        self.get(dotted, |kind| kind == Kind::Bool).map(|val| match &val.value {
            Value::Bool(flag) => Val { value: *flag, loc: val.loc.clone() },
            other => unreachable!("the walk stores booleans for boolean keys, not {other:?}"),
        })
    }

    pub fn string(&self, dotted: &str) -> Option<Val<String>> {
        self.get(dotted, |kind| kind == Kind::Str).map(|val| match &val.value {
            Value::Str(text) => Val { value: text.clone(), loc: val.loc.clone() },
            other => unreachable!("the walk stores strings for string keys, not {other:?}"),
        })
    }

    pub fn strings(&self, dotted: &str) -> Option<Val<Vec<Val<String>>>> {
        self.get(dotted, |kind| kind == Kind::Strings).map(|val| match &val.value {
            Value::Strings(items) => Val { value: items.clone(), loc: val.loc.clone() },
            other => unreachable!("the walk stores arrays for array keys, not {other:?}"),
        })
    }

    fn region_table(&self, table: &str, kind: Kind) -> impl Iterator<Item = (&String, &Entry<Value>)> {
        let section = schema::section_at(table).filter(|section| section.region_keyed);
        let section = section.unwrap_or_else(|| panic!("`{table}` is not a region-keyed table"));
        assert_eq!(section.keys[0].kind, kind, "the entries of `{table}`");
        self.regions.get(table).into_iter().flatten()
    }

    /// A region-keyed table of strings, region → entry.
    pub fn region_strings(&self, table: &str) -> BTreeMap<String, Entry<String>> {
        self.region_table(table, Kind::Str)
            .map(|(region, entry)| match &entry.value.value {
                Value::Str(text) => {
                    let value = Val { value: text.clone(), loc: entry.value.loc.clone() };
                    (region.clone(), Entry { key: entry.key.clone(), value })
                }
                other => unreachable!("the walk stores strings in `{table}`, not {other:?}"),
            })
            .collect()
    }

    /// A region-keyed table of arrays of strings, region → entry.
    pub fn region_lists(&self, table: &str) -> BTreeMap<String, Entry<Vec<Val<String>>>> {
        self.region_table(table, Kind::Strings)
            .map(|(region, entry)| match &entry.value.value {
                Value::Strings(items) => {
                    let value = Val { value: items.clone(), loc: entry.value.loc.clone() };
                    (region.clone(), Entry { key: entry.key.clone(), value })
                }
                other => unreachable!("the walk stores arrays in `{table}`, not {other:?}"),
            })
            .collect()
    }
}
