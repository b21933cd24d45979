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

    #[derive(Debug, Serialize)]
    struct Spec {
        name: String,
        password: Sensitive<String>,
    }

    #[test]
    fn a_secret_never_reaches_debug_display_or_json() {
        let secret = "hunter2-very-secret";
        let spec = Spec { name: "db".into(), password: Sensitive::new(secret.into()) };
        let rendered = [
            format!("{spec:?}"),
            format!("{spec:#?}"),
            format!("{}", spec.password),
            serde_json::to_string(&spec).unwrap(),
        ];
        for text in &rendered {
            assert!(!text.contains(secret), "leaked in {text}");
        }
        assert_eq!(spec.password.expose(), secret);
    }
}
