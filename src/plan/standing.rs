//! How each resource stands against the configuration, for `deployer status`: pure, from the
//! desired environment, what was observed and the plan between them.

use serde::Serialize;

use super::{Action, Plan};
use crate::model::Desired;
use crate::resources::Found;

/// One resource, observed or only desired, and how it stands.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Standing<'a> {
    pub address: &'a str,
    /// `-` for a resource that does not exist.
    pub id: &'a str,
    pub state: &'a str,
    /// `in sync`, `differs`, `in progress`, `missing`, `orphan` or `duplicate`.
    pub sync: &'static str,
}

impl Standing<'_> {
    pub fn is_problem(&self) -> bool {
        self.sync != "in sync"
    }
}

/// Every observed resource with how it stands, then every desired one that was not observed
/// (`missing`). A change to this very resource decides: a delete names its ID (an orphan, or
/// the spare copy of a duplicate); the other actions apply to the copy that is kept.
pub fn standing<'a>(desired: &'a Desired, observed: &'a [Found], plan: &Plan) -> Vec<Standing<'a>> {
    let sync_of = |f: &Found| -> &'static str {
        let change = plan.changes.iter().find(|c| {
            c.address() == &f.address && (c.action() != Action::Delete || c.id() == Some(f.id.as_str()))
        });
        match change {
            None => "in sync",
            Some(c) if c.action() == Action::Delete && desired.get(&f.address).is_some() => "duplicate",
            Some(c) if c.action() == Action::Delete => "orphan",
            Some(c) if c.action() == Action::Wait => "in progress",
            Some(_) => "differs",
        }
    };
    let mut rows: Vec<Standing> = observed
        .iter()
        .map(|f| Standing { address: f.address.as_str(), id: &f.id, state: &f.state, sync: sync_of(f) })
        .collect();
    for r in desired.resources.iter().filter(|r| !observed.iter().any(|f| f.address == r.address)) {
        rows.push(Standing { address: r.address.as_str(), id: "-", state: "-", sync: "missing" });
    }
    rows
}
