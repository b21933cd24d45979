//! Configuration errors: one [`ConfigIssue`] per problem, each naming the file, the dotted key and
//! what is wrong, with the offending span of the file's source so miette can point at the line.
//! Several issues are reported together as the `related` diagnostics of a [`ConfigErrors`].

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use miette::{Diagnostic, LabeledSpan, NamedSource, SourceCode};

/// A configuration file as read from disk.
#[derive(Debug, Clone)]
pub(crate) struct SourceFile {
    /// The path as shown to the user, e.g. `config/dev.toml`.
    pub name: String,
    pub text: Arc<String>,
}

/// Where a value came from: a file (index into the loaded files) and a byte range in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Loc {
    pub file: usize,
    pub span: Range<usize>,
}

/// One problem in the configuration.
#[derive(Debug)]
pub(crate) struct ConfigIssue {
    code: &'static str,
    /// The file (or files) the problem is in; empty for the `--env` argument.
    location: String,
    /// Dotted key path, e.g. `network.vpc_cidr.us-east-2`.
    key: String,
    message: String,
    help: Option<String>,
    source: Option<NamedSource<Arc<String>>>,
    /// Index of the file `source` holds, so labels in another file are not attached to it.
    source_file: Option<usize>,
    labels: Vec<LabeledSpan>,
}

impl ConfigIssue {
    pub fn new(code: &'static str, key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code,
            location: String::new(),
            key: key.into(),
            message: message.into(),
            help: None,
            source: None,
            source_file: None,
            labels: Vec::new(),
        }
    }

    /// Point at `loc` in its file. The first call picks the file the issue is shown in and its
    /// primary label; later calls add secondary labels in the same file (others are ignored, so
    /// the message must name them).
    pub fn at(mut self, files: &[SourceFile], loc: &Loc, label: impl Into<String>) -> Self {
        let file = &files[loc.file];
        match self.source_file {
            None => {
                self.location = file.name.clone();
                self.source = Some(NamedSource::new(&file.name, Arc::clone(&file.text)));
                self.source_file = Some(loc.file);
                self.labels.push(LabeledSpan::new_primary_with_span(Some(label.into()), loc.span.clone()));
            }
            Some(index) if index == loc.file => {
                self.labels.push(LabeledSpan::new_with_span(Some(label.into()), loc.span.clone()));
            }
            Some(_) => {}
        }
        self
    }

    /// Name the file(s) of an issue that has no span (a missing key, a missing file).
    pub fn in_files(mut self, location: impl Into<String>) -> Self {
        self.location = location.into();
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.location.is_empty() {
            write!(f, "{}: ", self.location)?;
        }
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigIssue {}

impl Diagnostic for ConfigIssue {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.code))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help.as_ref().map(|help| Box::new(help) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.source.as_ref().map(|source| source as &dyn SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        if self.labels.is_empty() {
            None
        } else {
            Some(Box::new(self.labels.iter().cloned()))
        }
    }
}

/// Several problems at once; each is a `related` diagnostic with its own file and span.
#[derive(Debug)]
pub(crate) struct ConfigErrors {
    env: String,
    issues: Vec<ConfigIssue>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the configuration of environment `{}` has {} problems", self.env, self.issues.len())
    }
}

impl std::error::Error for ConfigErrors {}

impl Diagnostic for ConfigErrors {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new("config::invalid"))
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        Some(Box::new(self.issues.iter().map(|issue| issue as &dyn Diagnostic)))
    }
}

/// `Ok` when there is nothing to report; one issue on its own; several as one report.
pub(crate) fn into_result(env: &str, mut issues: Vec<ConfigIssue>) -> Result<(), miette::Report> {
    match issues.len() {
        0 => Ok(()),
        1 => Err(miette::Report::new(issues.remove(0))),
        _ => Err(miette::Report::new(ConfigErrors { env: env.to_owned(), issues })),
    }
}

/// The candidate closest to `word` by edit distance, if it is close enough to be a likely typo.
pub(crate) fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).clamp(1, 3);
    candidates
        .into_iter()
        .map(|candidate| (edit_distance(word, candidate), candidate))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

/// `a`, `b` and `c` — for lists of valid values in messages.
pub(crate) fn list<S: AsRef<str>>(items: &[S]) -> String {
    let quoted: Vec<String> = items.iter().map(|item| format!("`{}`", item.as_ref())).collect();
    match quoted.len() {
        0 => String::new(),
        1 => quoted[0].clone(),
        n => format!("{} and {}", quoted[..n - 1].join(", "), quoted[n - 1]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_finds_typos_only() {
        let regions = ["us-east-1", "us-east-2", "eu-west-1"];
        assert_eq!(closest("us-est-1", regions), Some("us-east-1"));
        assert_eq!(closest("eu-wset-1", regions), Some("eu-west-1"));
        assert_eq!(closest("mars-north-1", regions), None);
        assert_eq!(closest("az_cuont", ["az_count", "subnet_prefix"]), Some("az_count"));
    }

    #[test]
    fn lists_read_naturally() {
        assert_eq!(list(&["a"]), "`a`");
        assert_eq!(list(&["a", "b", "c"]), "`a`, `b` and `c`");
    }
}
