use std::fmt;

use serde::{Deserialize, Serialize};

/// The stable name of a resource: `<region>/<tier>/<kind>/<name>`, e.g.
/// `us-east-1/network/subnet/private-b`, or `global/<tier>/<kind>/<name>` for the kinds of global
/// services (IAM, Route 53), e.g. `global/iam/iam-role/task-execution`. It is stored on the resource as the `deployer:address`
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

/// A reference from one resource to another. Desired specs always use `Addr` (or `Attr`); an
/// observed reference becomes `Addr` when the referenced resource is ours, and stays `Id`
/// otherwise (something outside the environment), which then shows up as a difference.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Ref {
    /// The resource's physical ID (for most kinds of the service tier, its ARN).
    Addr(Address),
    Id(String),
    /// A value AWS assigns to another resource besides its ID (the ARN of the secret RDS keeps a
    /// database's password in, a database's endpoint), followed by a fixed suffix
    /// (`:password::` selects a JSON key of a secret). Known once that resource exists: at
    /// apply time from what its create reported, when planning from what was observed (the
    /// kind's [`crate::resources::Found::attrs`]). Orders like `Addr`.
    Attr {
        of: Address,
        attr: &'static str,
        suffix: String,
    },
}

impl Ref {
    /// The resource this reference names, when it is ours.
    pub fn addr(&self) -> Option<&Address> {
        match self {
            Ref::Addr(a) | Ref::Attr { of: a, .. } => Some(a),
            Ref::Id(_) => None,
        }
    }

    /// The attribute `attr` of the resource at `of`, as it is.
    pub fn attr(of: Address, attr: &'static str) -> Ref {
        Ref::Attr { of, attr, suffix: String::new() }
    }
}

impl fmt::Display for Ref {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ref::Addr(a) => write!(f, "{a}"),
            Ref::Id(id) => write!(f, "{id} (not managed by this environment)"),
            Ref::Attr { of, attr, suffix } => write!(f, "({of} {attr}){suffix}"),
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
