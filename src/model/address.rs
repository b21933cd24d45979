use std::fmt;

use serde::{Deserialize, Serialize};

/// The stable name of a resource: `<region>/<tier>/<kind>/<name>`, e.g.
/// `us-east-1/network/subnet/private-b`, or `global/<tier>/<kind>/<name>` for the kinds of global
/// services (IAM, Route 53), e.g. `global/iam/role/task-execution`. It is stored on the resource as the `deployer:address`
/// tag, so observation finds each resource by what it is, not by its physical ID.
/// The name part may itself contain `/` (a route's name holds its destination CIDR).
/// The scope part of global addresses.
pub const GLOBAL: &str = "global";

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Address(String);

impl Address {
    pub fn new(region: &str, tier: &str, kind: &str, name: &str) -> Address {
        Address(format!("{region}/{tier}/{kind}/{name}"))
    }

    /// An address in the global scope.
    pub fn global(tier: &str, kind: &str, name: &str) -> Address {
        Address::new(GLOBAL, tier, kind, name)
    }

    pub fn is_global(&self) -> bool {
        self.region() == GLOBAL
    }

    /// Parses an address read back from a tag; `None` when it is not of our shape.
    pub fn parse(s: &str) -> Option<Address> {
        let parts: Vec<&str> = s.splitn(4, '/').collect();
        (parts.len() == 4 && parts.iter().all(|p| !p.is_empty())).then(|| Address(s.to_string()))
    }

    fn part(&self, i: usize) -> &str {
        self.0.splitn(4, '/').nth(i).unwrap_or("")
    }

    pub fn region(&self) -> &str {
        self.part(0)
    }
    pub fn tier(&self) -> &str {
        self.part(1)
    }
    pub fn kind(&self) -> &str {
        self.part(2)
    }
    pub fn name(&self) -> &str {
        self.part(3)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A reference from one resource to another. Desired specs always use `Addr`; an observed
/// reference becomes `Addr` when the referenced resource is ours, and stays `Id` otherwise
/// (something outside the environment), which then shows up as a difference.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Ref {
    Addr(Address),
    Id(String),
}

impl Ref {
    pub fn addr(&self) -> Option<&Address> {
        match self {
            Ref::Addr(a) => Some(a),
            Ref::Id(_) => None,
        }
    }
}

impl fmt::Display for Ref {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ref::Addr(a) => write!(f, "{a}"),
            Ref::Id(id) => write!(f, "{id} (not managed by this environment)"),
        }
    }
}

impl Serialize for Ref {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_of_an_address() {
        let a = Address::new("us-east-1", "network", "route", "private-a:10.20.0.0/16");
        assert_eq!(a.region(), "us-east-1");
        assert_eq!(a.kind(), "route");
        assert_eq!(a.name(), "private-a:10.20.0.0/16");
        assert_eq!(Address::parse(a.as_str()), Some(a.clone()));
        assert_eq!(Address::parse("vpc-123"), None);
        assert_eq!(Address::parse("a//b/c"), None);
        let g = Address::global("iam", "role", "task-execution");
        assert!(g.is_global() && !a.is_global());
        assert_eq!(g.as_str(), "global/iam/role/task-execution");
    }
}
