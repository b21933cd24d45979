//! Values that must never be printed: they render as `(sensitive)` in plans, JSON, logs and
//! `Debug`, and only [`Sensitive::expose`] reaches the value, at the one place an AWS request
//! needs it. A spec field holding one diffs like any other (a changed value shows as
//! `(sensitive) -> (sensitive)`).

use std::fmt;

use serde::{Serialize, Serializer};

pub const REDACTED: &str = "(sensitive)";

#[derive(Clone, PartialEq, Eq, Default)]
pub struct Sensitive<T>(T);

impl<T> Sensitive<T> {
    pub fn new(value: T) -> Sensitive<T> {
        Sensitive(value)
    }

    /// The value itself, for the request that needs it. Never format what this returns.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Sensitive<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<T> fmt::Display for Sensitive<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<T> Serialize for Sensitive<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(REDACTED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::{Diff, Replace};

    #[derive(Debug, Serialize, PartialEq)]
    struct Spec {
        name: String,
        password: Sensitive<String>,
    }

    #[test]
    fn a_secret_never_reaches_debug_display_json_or_a_diff() {
        let secret = "hunter2-very-secret";
        let spec = Spec { name: "db".into(), password: Sensitive::new(secret.into()) };
        let other = Spec { name: "db".into(), password: Sensitive::new("another-secret".into()) };
        let mut d = Diff::default();
        d.field("password", &spec.password, &other.password, Replace::No);
        let rendered = [
            format!("{spec:?}"),
            format!("{spec:#?}"),
            format!("{}", spec.password),
            serde_json::to_string(&spec).unwrap(),
            serde_json::to_string(&d.fields).unwrap(),
            format!("{d:?}"),
        ];
        for text in &rendered {
            assert!(!text.contains(secret) && !text.contains("another-secret"), "leaked in {text}");
        }
        assert!(d.has("password"), "a changed secret is still a difference");
        assert_eq!(d.fields[0].to, REDACTED);
        assert_eq!(spec.password.expose(), secret);
    }
}
