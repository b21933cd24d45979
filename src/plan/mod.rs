//! The pure planning core: `Desired × Observed → Plan`. No I/O here.

mod render;
mod standing;

pub use render::{render_human, render_human_within, short_id, Style};
pub use standing::{standing, Standing};

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::model::Desired;
use crate::resources::{missing_tags, DataLoss, Diff, FieldChange, Found, Readiness, Resource, Spec};
use crate::spec::{Address, Ref};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Create,
    Update,
    Replace,
    Delete,
    /// Nothing to change: AWS is still working on it (a NAT gateway `pending`, a database
    /// `modifying`). `up` waits for it; `drift` reports it as in progress, not as drift.
    Wait,
}

impl Action {
    pub fn symbol(self) -> &'static str {
        match self {
            Action::Create => "+",
            Action::Update => "~",
            Action::Replace => "-/+",
            Action::Delete => "-",
            Action::Wait => "...",
        }
    }
}

/// One change to one resource. Each variant holds exactly what its action needs, so a create
/// cannot lack its desired resource nor a delete what it deletes.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    Create {
        desired: Resource,
        /// The fields being set, as `field = value`.
        fields: Vec<FieldChange>,
    },
    Update {
        desired: Resource,
        found: Found,
        diff: Diff,
        /// Why, when the fields alone do not say (a referenced resource is replaced).
        reason: Option<String>,
    },
    Replace {
        desired: Resource,
        found: Found,
        diff: Diff,
        reason: Option<String>,
    },
    /// A resource that matches but is busy: wait until it is usable.
    Wait {
        desired: Resource,
        found: Found,
        state: String,
    },
    Delete {
        found: Found,
        /// An orphan, or a duplicate of the copy that is kept.
        reason: String,
    },
}

impl Change {
    pub fn address(&self) -> &Address {
        match self {
            Change::Create { desired, .. } => &desired.address,
            Change::Update { desired, .. }
            | Change::Replace { desired, .. }
            | Change::Wait { desired, .. } => &desired.address,
            Change::Delete { found, .. } => &found.address,
        }
    }

    pub fn action(&self) -> Action {
        match self {
            Change::Create { .. } => Action::Create,
            Change::Update { .. } => Action::Update,
            Change::Replace { .. } => Action::Replace,
            Change::Wait { .. } => Action::Wait,
            Change::Delete { .. } => Action::Delete,
        }
    }

    /// What should exist afterwards (all but deletes).
    pub fn desired(&self) -> Option<&Resource> {
        match self {
            Change::Create { desired, .. }
            | Change::Update { desired, .. }
            | Change::Replace { desired, .. }
            | Change::Wait { desired, .. } => Some(desired),
            Change::Delete { .. } => None,
        }
    }

    /// What exists now (all but creates).
    pub fn found(&self) -> Option<&Found> {
        match self {
            Change::Create { .. } => None,
            Change::Update { found, .. }
            | Change::Replace { found, .. }
            | Change::Wait { found, .. }
            | Change::Delete { found, .. } => Some(found),
        }
    }

    /// The physical ID of what exists now.
    pub fn id(&self) -> Option<&str> {
        self.found().map(|f| f.id.as_str())
    }

    /// For a create the fields being set (`from` empty); otherwise what differs.
    pub fn fields(&self) -> &[FieldChange] {
        match self {
            Change::Create { fields, .. } => fields,
            Change::Update { diff, .. } | Change::Replace { diff, .. } => &diff.fields,
            Change::Wait { .. } | Change::Delete { .. } => &[],
        }
    }

    /// Why, when the fields alone do not say.
    pub fn reason(&self) -> Option<String> {
        match self {
            Change::Create { .. } => None,
            Change::Update { reason, .. } | Change::Replace { reason, .. } => reason.clone(),
            Change::Wait { state, .. } => Some(format!("in progress ({state}): waiting until it is usable")),
            Change::Delete { reason, .. } => Some(reason.clone()),
        }
    }

    /// Whether applying it changes something in AWS (a wait does not).
    pub fn is_change(&self) -> bool {
        self.action() != Action::Wait
    }
}

impl Serialize for Change {
    /// `{address, action, id?, fields, reason?}`.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct View<'a> {
            address: &'a Address,
            action: Action,
            #[serde(skip_serializing_if = "Option::is_none")]
            id: Option<&'a str>,
            fields: &'a [FieldChange],
            #[serde(skip_serializing_if = "Option::is_none")]
            reason: Option<String>,
            /// What must exist first (the references of the desired resource), for tools that
            /// draw or time the graph (`scripts/bench` computes the critical path from it).
            #[serde(skip_serializing_if = "Vec::is_empty")]
            depends_on: Vec<Address>,
        }
        View {
            address: self.address(),
            action: self.action(),
            id: self.id(),
            fields: self.fields(),
            reason: self.reason(),
            depends_on: self.desired().map(|d| d.spec.deps()).unwrap_or_default(),
        }
        .serialize(s)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Plan {
    pub changes: Vec<Change>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub create: usize,
    pub update: usize,
    pub replace: usize,
    pub delete: usize,
    /// Busy resources waited for (not changes).
    pub wait: usize,
}

impl Plan {
    /// Nothing to change and nothing to wait for.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// Whether anything would be changed (waits aside).
    pub fn has_changes(&self) -> bool {
        self.changes.iter().any(Change::is_change)
    }

    /// Why `up` must not apply the plan: a replacement of a resource that holds data (a
    /// database) without the configuration's allowance, or the deletion of one the
    /// configuration no longer names (an orphan) unless `orphans_allowed` (the same key,
    /// `database.allow_replacement`, which only the configuration can give: an orphan has no
    /// desired spec to carry it). After `deployer failover` the promoted database is such an
    /// orphan until the configuration names it. `destroy` does not ask: deleting everything is
    /// what it is for. Empty when the plan may go ahead.
    pub fn refusals(&self, orphans_allowed: bool) -> Vec<String> {
        self.changes
            .iter()
            .filter_map(|c| match c {
                Change::Replace { desired, .. } => desired.spec.data_loss()?.refusal(&desired.address),
                Change::Delete { found, .. } if !orphans_allowed => {
                    let loss = found.spec.data_loss()?;
                    Some(format!(
                        "refusing to delete {} ({}): the configuration does not name it, and deleting it deletes the {}. If `deployer failover` promoted it, make the configuration say what is now true (docs/runbooks/regional-failover.md); to delete it anyway, set {} = true in the environment's config (take a snapshot first)",
                        found.address, found.id, loss.what, loss.allow_key
                    ))
                }
                _ => None,
            })
            .collect()
    }

    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for ch in &self.changes {
            match ch.action() {
                Action::Create => c.create += 1,
                Action::Update => c.update += 1,
                Action::Replace => c.replace += 1,
                Action::Delete => c.delete += 1,
                Action::Wait => c.wait += 1,
            }
        }
        c
    }
}

/// `DATA LOSS: …`, with the cause of the replacement when the fields do not say it.
fn data_loss_reason(loss: &DataLoss, cause: Option<&str>) -> String {
    let verdict = if loss.allowed {
        format!("allowed by {} = true", loss.allow_key)
    } else {
        format!("refused unless {} = true", loss.allow_key)
    };
    let cause = cause.map(|c| format!("{c}; ")).unwrap_or_default();
    format!("{cause}DATA LOSS: replacing it deletes the {} ({verdict})", loss.what)
}

/// Rewrites references to physical IDs as the addresses of the resources they name, wherever
/// that resource is ours, so observed specs compare directly with desired ones. Then orders the
/// resources by address; where two carry the same address (a create retried after a lost
/// response), the one something else references comes first, and [`plan`] keeps the first.
pub fn resolve_references(found: &mut [Found]) {
    let by_id: BTreeMap<String, Address> = found.iter().map(|f| (f.id.clone(), f.address.clone())).collect();
    // Attribute values, longest first, so a value that extends another is matched whole.
    let mut by_attr: Vec<(String, Address, &'static str)> = found
        .iter()
        .flat_map(|f| f.attrs.iter().map(|(attr, value)| (value.clone(), f.address.clone(), *attr)))
        .filter(|(value, _, _)| !value.is_empty())
        .collect();
    by_attr.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.cmp(b)));
    let mut referenced: BTreeSet<String> = BTreeSet::new();
    for f in found.iter_mut() {
        for (_, r) in f.spec.refs() {
            if let Ref::Id(id) = r {
                referenced.insert(id.clone());
                if let Some(a) = by_id.get(id.as_str()) {
                    *r = Ref::Addr(a.clone());
                } else if let Some((value, of, attr)) = by_attr.iter().find(|(v, _, _)| attr_of(id, v)) {
                    *r = Ref::Attr { of: of.clone(), attr, suffix: id[value.len()..].to_string() };
                }
            }
        }
        if let Some(a) = f.spec.derived_address(&f.address) {
            f.address = a;
        }
    }
    found.sort_by(|a, b| {
        (&a.address, !referenced.contains(&a.id), &a.id).cmp(&(
            &b.address,
            !referenced.contains(&b.id),
            &b.id,
        ))
    });
}

/// Whether `id` is the attribute value `value`, whole or followed by a `:`-suffix (a secret's
/// ARN with `:password::`). A bare prefix is not enough: `webapp-prod` is not `webapp-prod-blue`.
fn attr_of(id: &str, value: &str) -> bool {
    id.strip_prefix(value).is_some_and(|rest| rest.is_empty() || rest.starts_with(':'))
}

/// What `desired` needs done to what was `observed` (references already resolved).
pub fn plan(desired: &Desired, observed: &[Found]) -> Plan {
    // One resource per address, the first of each (see `resolve_references`); extra copies go.
    let mut by_address: BTreeMap<&Address, &Found> = BTreeMap::new();
    let mut duplicates = Vec::new();
    for f in observed {
        match by_address.get(&f.address) {
            Some(kept) => duplicates.push((f, kept.id.clone())),
            None => {
                by_address.insert(&f.address, f);
            }
        }
    }

    let mut changes = Vec::new();
    let mut replaced: BTreeSet<Address> = BTreeSet::new();
    for r in &desired.resources {
        let Some(found) = by_address.get(&r.address) else {
            changes.push(Change::Create { desired: r.clone(), fields: creation_fields(&r.spec) });
            continue;
        };
        // Both sides normalised, so AWS's spelling of a value is not a difference.
        let (mut want, mut have) = (r.spec.clone(), found.spec.clone());
        want.normalize();
        have.normalize();
        let mut diff = want.diff(&have);
        if r.spec.taggable() {
            for (k, v) in missing_tags(&r.tags, &found.tags) {
                let from = found.tags.get(&k).cloned().unwrap_or_else(|| "(none)".into());
                diff.fields.push(FieldChange {
                    field: format!("tags.{k}"),
                    from,
                    to: v,
                    forces_replacement: false,
                });
            }
        }
        // A resource whose parent is replaced must be rebuilt in the new parent; one that
        // merely points at a replaced resource is re-pointed in place.
        let replaced_parent = r.spec.parent_deps().into_iter().find(|d| replaced.contains(d));
        let replaced_ref = r.spec.deps().into_iter().find(|d| replaced.contains(d));
        let reason = match (replaced_parent.as_ref().or(replaced_ref.as_ref()), diff.replace()) {
            (Some(d), false) => Some(format!("{d} is replaced")),
            _ => None,
        };
        let (desired, found) = (r.clone(), (*found).clone());
        if diff.replace() || replaced_parent.is_some() {
            replaced.insert(r.address.clone());
            // A resource that holds data says what its replacement destroys, and whether the
            // configuration allows that (see `Plan::refusals`).
            let reason = match r.spec.data_loss() {
                Some(loss) => Some(data_loss_reason(&loss, reason.as_deref())),
                None => reason,
            };
            changes.push(Change::Replace { desired, found, diff, reason });
        } else if !diff.is_empty() || replaced_ref.is_some() {
            // The kind's own word on what the update means, when the fields alone do not say
            // it (a new task definition revision is registered, not yet released).
            let reason = reason.or_else(|| diff.note.clone());
            changes.push(Change::Update { desired, found, diff, reason });
        } else if let Readiness::Busy(state) = found.readiness() {
            changes.push(Change::Wait { desired, found, state });
        }
    }

    let wanted: BTreeSet<&Address> = desired.resources.iter().map(|r| &r.address).collect();
    let mut deletes: Vec<Change> = by_address
        .values()
        .filter(|f| !wanted.contains(&f.address))
        .map(|f| Change::Delete {
            found: (*f).clone(),
            reason: match f.spec.data_loss() {
                Some(loss) => format!(
                    "not in the configuration (orphan); DATA LOSS: deleting it deletes the {}",
                    loss.what
                ),
                None => "not in the configuration (orphan)".to_string(),
            },
        })
        .chain(
            duplicates
                .into_iter()
                .map(|(f, kept)| Change::Delete { found: f.clone(), reason: format!("duplicate of {kept}") }),
        )
        .collect();
    // Dependents first, so the listing reads in the order things will go.
    let depth = dependency_depths(observed);
    deletes.sort_by_key(|c| std::cmp::Reverse(depth.get(c.address()).copied().unwrap_or(0)));
    changes.extend(deletes);
    Plan { changes }
}

/// How many references deep each observed resource sits (a VPC 0, its subnet 1, a NAT gateway
/// in that subnet 2…): the order of creation, from the references alone.
fn dependency_depths(observed: &[Found]) -> BTreeMap<Address, usize> {
    let deps: BTreeMap<&Address, Vec<Address>> =
        observed.iter().map(|f| (&f.address, f.spec.deps())).collect();
    fn depth_of<'a>(
        a: &'a Address,
        deps: &BTreeMap<&'a Address, Vec<Address>>,
        memo: &mut BTreeMap<Address, usize>,
        visiting: &mut BTreeSet<Address>,
    ) -> usize {
        if let Some(d) = memo.get(a) {
            return *d;
        }
        // A reference cycle is a bug elsewhere; it must not hang the plan.
        if !visiting.insert(a.clone()) {
            return 0;
        }
        let d = deps
            .get(a)
            .map(|ds| {
                ds.iter()
                    .filter_map(|d| deps.get_key_value(d).map(|(k, _)| *k))
                    .map(|d| depth_of(d, deps, memo, visiting) + 1)
                    .max()
                    .unwrap_or(0)
            })
            .unwrap_or(0);
        memo.insert(a.clone(), d);
        d
    }
    let mut memo = BTreeMap::new();
    for a in deps.keys() {
        depth_of(a, &deps, &mut memo, &mut BTreeSet::new());
    }
    memo
}

/// The fields of a new resource, as `field = value` lines.
fn creation_fields(spec: &Spec) -> Vec<FieldChange> {
    let serde_json::Value::Object(map) = serde_json::to_value(spec).unwrap_or_default() else {
        return vec![];
    };
    // Sorted by name whatever serde_json's map order is (dev-dependencies switch on
    // `preserve_order`, which would make test and release builds print differently).
    let mut fields: Vec<(String, serde_json::Value)> = map.into_iter().filter(|(k, _)| k != "kind").collect();
    fields.sort_by(|a, b| a.0.cmp(&b.0));
    fields
        .into_iter()
        .map(|(k, v)| FieldChange {
            field: k,
            from: String::new(),
            to: crate::resources::render_value(&v),
            forces_replacement: false,
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests;
