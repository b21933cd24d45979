//! The pure planning core: `Desired × Observed → Plan`. No I/O here.

mod render;

pub use render::{render_human, Style};

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::model::{Address, Desired, Ref};
use crate::resources::{missing_tags, Diff, FieldChange, Found, Resource, Spec};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Create,
    Update,
    Replace,
    Delete,
}

impl Action {
    pub fn symbol(self) -> &'static str {
        match self {
            Action::Create => "+",
            Action::Update => "~",
            Action::Replace => "-/+",
            Action::Delete => "-",
        }
    }
}

/// One change to one resource.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Change {
    pub address: Address,
    pub action: Action,
    /// The physical ID of what exists now (update, replace, delete).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// For create: the fields being set (`from` empty); otherwise what differs.
    pub fields: Vec<FieldChange>,
    /// Why, when the fields alone do not say (an orphan, a duplicate, a replaced dependency).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip)]
    pub desired: Option<Resource>,
    #[serde(skip)]
    pub found: Option<Found>,
    #[serde(skip)]
    pub diff: Diff,
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
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for ch in &self.changes {
            match ch.action {
                Action::Create => c.create += 1,
                Action::Update => c.update += 1,
                Action::Replace => c.replace += 1,
                Action::Delete => c.delete += 1,
            }
        }
        c
    }
}

/// Rewrites references to physical IDs as the addresses of the resources they name, wherever
/// that resource is ours, so observed specs compare directly with desired ones. Then orders the
/// resources by address; where two carry the same address (a create retried after a lost
/// response), the one something else references comes first, and [`plan`] keeps the first.
pub fn resolve_references(found: &mut [Found]) {
    let by_id: BTreeMap<String, Address> = found.iter().map(|f| (f.id.clone(), f.address.clone())).collect();
    let mut referenced: BTreeSet<String> = BTreeSet::new();
    for f in found.iter_mut() {
        for r in f.spec.refs_mut() {
            if let Ref::Id(id) = r {
                referenced.insert(id.clone());
                if let Some(a) = by_id.get(id.as_str()) {
                    *r = Ref::Addr(a.clone());
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
            changes.push(Change {
                address: r.address.clone(),
                action: Action::Create,
                id: None,
                fields: creation_fields(&r.spec),
                reason: None,
                desired: Some(r.clone()),
                found: None,
                diff: Diff::default(),
            });
            continue;
        };
        let mut diff = r.spec.diff(&found.spec);
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
        let action = if diff.replace() || replaced_parent.is_some() {
            replaced.insert(r.address.clone());
            Action::Replace
        } else if diff.is_empty() && replaced_ref.is_none() {
            continue;
        } else {
            Action::Update
        };
        let reason = match (replaced_parent.or(replaced_ref), diff.replace()) {
            (Some(d), false) => Some(format!("{d} is replaced")),
            _ => None,
        };
        changes.push(Change {
            address: r.address.clone(),
            action,
            id: Some(found.id.clone()),
            fields: diff.fields.clone(),
            reason,
            desired: Some(r.clone()),
            found: Some((*found).clone()),
            diff,
        });
    }

    let wanted: BTreeSet<&Address> = desired.resources.iter().map(|r| &r.address).collect();
    let mut deletes: Vec<Change> = by_address
        .values()
        .filter(|f| !wanted.contains(&f.address))
        .map(|f| delete_change(f, "not in the configuration (orphan)".to_string()))
        .chain(duplicates.into_iter().map(|(f, kept)| delete_change(f, format!("duplicate of {kept}"))))
        .collect();
    // Dependents first, so the listing reads in the order things will go.
    deletes.sort_by_key(|c| std::cmp::Reverse(kind_rank(&c.address)));
    changes.extend(deletes);
    Plan { changes }
}

fn delete_change(f: &Found, reason: String) -> Change {
    Change {
        address: f.address.clone(),
        action: Action::Delete,
        id: Some(f.id.clone()),
        fields: vec![],
        reason: Some(reason),
        desired: None,
        found: Some(f.clone()),
        diff: Diff::default(),
    }
}

/// Creation order of the kinds; deletes happen the other way round.
pub fn kind_rank(a: &Address) -> usize {
    const ORDER: [&str; 9] = [
        "vpc",
        "internet-gateway",
        "subnet",
        "elastic-ip",
        "nat-gateway",
        "vpc-peering",
        "route-table",
        "route-table-association",
        "route",
    ];
    ORDER.iter().position(|k| *k == a.kind()).unwrap_or(ORDER.len())
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
