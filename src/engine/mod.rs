//! Runs a plan as a dependency graph: every change starts as soon as what it depends on is
//! done, across all regions at once, bounded by a concurrency limit. A failed change skips its
//! dependents and lets everything independent of it finish.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use futures::stream::{FuturesUnordered, StreamExt};
use serde::Serialize;

use crate::cloud::Error;
use crate::plan::{Action, Change, Plan};
use crate::resources::Executor;
use crate::spec::Address;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    /// Delete what exists (a delete, or the first half of a replace).
    Delete,
    /// Create, update, or the second half of a replace.
    Apply,
}

#[derive(Debug)]
struct Node<'p> {
    change: &'p Change,
    op: Op,
    deps: BTreeSet<usize>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "status", content = "detail")]
pub enum Status {
    Done,
    Failed(String),
    Skipped(String),
}

impl Status {
    /// `done`, the error, or `skipped: <why>`.
    pub fn text(&self) -> String {
        match self {
            Status::Done => "done".into(),
            Status::Failed(e) => e.clone(),
            Status::Skipped(why) => format!("skipped: {why}"),
        }
    }
}

/// What happened to one step of the plan.
#[derive(Clone, Debug, Serialize)]
pub struct Outcome {
    pub address: Address,
    pub action: Action,
    /// `delete` for the removal half of a replacement, `apply` otherwise.
    pub step: &'static str,
    #[serde(flatten)]
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub elapsed_ms: u128,
}

impl Outcome {
    pub fn verb(&self) -> &'static str {
        match (self.action, self.step) {
            (Action::Create, _) => "created",
            (Action::Update, _) => "updated",
            (Action::Replace, "delete") => "deleted (for replacement)",
            (Action::Replace, _) => "re-created",
            (Action::Delete, _) => "deleted",
            (Action::Wait, _) => "ready",
        }
    }
}

/// Told about each step as it starts and ends (progress display).
pub trait Progress: Sync {
    fn started(&self, address: &Address, what: &str);
    fn finished(&self, outcome: &Outcome);
}

pub struct Options {
    pub concurrency: usize,
    /// When set, the regions in this order go one after the other (see `one_region_at_a_time`).
    pub region_order: Option<Vec<String>>,
}

fn build_graph(plan: &Plan) -> Vec<Node<'_>> {
    let mut nodes = Vec::new();
    for c in &plan.changes {
        if matches!(c.action(), Action::Delete | Action::Replace) {
            nodes.push(Node { change: c, op: Op::Delete, deps: BTreeSet::new() });
        }
        if c.action() != Action::Delete {
            nodes.push(Node { change: c, op: Op::Apply, deps: BTreeSet::new() });
        }
    }
    let find = |nodes: &[Node], address: &Address, op: Op| {
        nodes.iter().position(|n| n.op == op && n.change.address() == address)
    };
    let mut edges = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        match n.op {
            Op::Apply => {
                let desired = n.change.desired().expect("apply has a desired resource");
                for dep in desired.spec.deps() {
                    if let Some(j) = find(&nodes, &dep, Op::Apply) {
                        edges.push((i, j));
                    }
                }
                // A replacement is created once the old one is gone, and so is anything new
                // that cannot stand beside something old (overlapping subnets).
                if let Some(j) = find(&nodes, n.change.address(), Op::Delete) {
                    edges.push((i, j));
                }
                for (j, m) in nodes.iter().enumerate() {
                    let Some(old) = m.change.found() else { continue };
                    // Names and identifiers are unique per region (or globally, for global kinds).
                    if m.op == Op::Delete
                        && j != i
                        && old.address.region() == n.change.address().region()
                        && desired.spec.conflicts_with(&old.spec)
                    {
                        edges.push((i, j));
                    }
                }
            }
            Op::Delete => {
                let gone = n.change.address();
                // Whatever still references this resource lets go of it first: its own
                // deletion, or an update that points it elsewhere. An update waits only where
                // AWS insists (not for a route's target: waiting there can form a cycle when
                // the route's new target needs the old one gone, e.g. a moved first AZ).
                for (j, m) in nodes.iter().enumerate() {
                    let Some(found) = m.change.found() else {
                        continue;
                    };
                    if i == j || !found.spec.deps().contains(gone) {
                        continue;
                    }
                    let still_wanted = m.change.desired().is_some_and(|d| d.spec.deps().contains(gone));
                    if m.op == Op::Delete || (!still_wanted && found.spec.holds(gone)) {
                        edges.push((i, j));
                    }
                }
            }
        }
    }
    for (i, j) in edges {
        nodes[i].deps.insert(j);
    }
    nodes
}

/// Adds the edges that make regions go one after the other, the way stack-per-region tools
/// deploy: a node's phase is the latest region (in `order`) among its own and everything it
/// depends on, directly or not, so the peering (which needs both VPCs) and the routes through it
/// come last; every node waits for all nodes of earlier phases. Global resources go first.
fn one_region_at_a_time(nodes: &mut [Node<'_>], order: &[String]) {
    let index = |a: &Address| {
        if a.is_global() {
            0
        } else {
            order.iter().position(|r| r == a.region()).map_or(0, |i| i + 1)
        }
    };
    let mut phase: Vec<usize> = nodes.iter().map(|n| index(n.change.address())).collect();
    // Propagate through the dependencies until nothing changes (the graph is acyclic).
    let mut changed = true;
    while changed {
        changed = false;
        for i in 0..nodes.len() {
            let highest = nodes[i].deps.iter().map(|&d| phase[d]).max().unwrap_or(0);
            if highest > phase[i] {
                phase[i] = highest;
                changed = true;
            }
        }
    }
    for i in 0..nodes.len() {
        let earlier: Vec<usize> = (0..nodes.len()).filter(|&j| phase[j] < phase[i]).collect();
        nodes[i].deps.extend(earlier);
    }
}

#[derive(Clone, Debug, PartialEq)]
enum State {
    Waiting,
    Running,
    Finished(bool),
}

/// Applies `plan` with `executor`.
pub async fn apply<E: Executor>(
    executor: &E,
    plan: &Plan,
    options: &Options,
    progress: &dyn Progress,
) -> Vec<Outcome> {
    let mut nodes = build_graph(plan);
    if let Some(order) = &options.region_order {
        one_region_at_a_time(&mut nodes, order);
    }
    let mut state = vec![State::Waiting; nodes.len()];
    let mut outcomes = Vec::new();
    let mut running = FuturesUnordered::new();
    loop {
        // Skip what can no longer run, start what can.
        let mut progressed = true;
        while progressed {
            progressed = false;
            for i in 0..nodes.len() {
                if state[i] != State::Waiting {
                    continue;
                }
                let failed_dep = nodes[i].deps.iter().find(|&&d| state[d] == State::Finished(false));
                if let Some(&d) = failed_dep {
                    state[i] = State::Finished(false);
                    progressed = true;
                    let outcome = outcome_of(
                        &nodes[i],
                        Status::Skipped(format!("{} failed", nodes[d].change.address())),
                        None,
                        Duration::ZERO,
                    );
                    progress.finished(&outcome);
                    outcomes.push(outcome);
                    continue;
                }
                let ready = nodes[i].deps.iter().all(|&d| state[d] == State::Finished(true));
                if ready && running.len() < options.concurrency.max(1) {
                    state[i] = State::Running;
                    progressed = true;
                    let node = &nodes[i];
                    progress.started(node.change.address(), step_label(node));
                    running.push(async move {
                        let start = Instant::now();
                        let result = run(executor, node).await;
                        (i, result, start.elapsed())
                    });
                }
            }
        }
        let Some((i, result, elapsed)) = running.next().await else {
            break;
        };
        let (status, id) = match result {
            Ok(id) => (Status::Done, id),
            Err(e) => (Status::Failed(e.to_string()), None),
        };
        state[i] = State::Finished(status == Status::Done);
        let outcome = outcome_of(&nodes[i], status, id, elapsed);
        progress.finished(&outcome);
        outcomes.push(outcome);
    }
    // Anything still waiting sits in a dependency cycle: a bug, reported rather than hung on.
    for (i, n) in nodes.iter().enumerate() {
        if state[i] == State::Waiting {
            let outcome =
                outcome_of(n, Status::Failed("dependency cycle in the plan".into()), None, Duration::ZERO);
            progress.finished(&outcome);
            outcomes.push(outcome);
        }
    }
    outcomes
}

fn step_label(n: &Node) -> &'static str {
    match (n.change.action(), n.op) {
        (Action::Create, _) => "creating",
        (Action::Wait, _) => "waiting for",
        (Action::Update, _) => "updating",
        (Action::Replace, Op::Delete) => "deleting (for replacement)",
        (Action::Replace, Op::Apply) => "re-creating",
        (Action::Delete, _) => "deleting",
    }
}

fn outcome_of(n: &Node, status: Status, id: Option<String>, elapsed: Duration) -> Outcome {
    Outcome {
        address: n.change.address().clone(),
        action: n.change.action(),
        step: if n.op == Op::Delete && n.change.action() == Action::Replace { "delete" } else { "apply" },
        status,
        id: id.or_else(|| n.change.id().map(str::to_string)),
        elapsed_ms: elapsed.as_millis(),
    }
}

async fn run<E: Executor>(executor: &E, n: &Node<'_>) -> Result<Option<String>, Error> {
    // The last guard against replacing a database the configuration does not allow to go
    // (commands refuse such a plan before it gets here).
    if let Change::Replace { desired, .. } = n.change {
        if let Some(refusal) = desired.spec.data_loss().and_then(|loss| loss.refusal(&desired.address)) {
            return Err(Error::InvalidState(refusal));
        }
    }
    match (n.op, n.change) {
        (Op::Delete, c) => {
            executor.delete(c.found().expect("a delete step has something found")).await?;
            Ok(None)
        }
        (Op::Apply, Change::Create { desired, .. } | Change::Replace { desired, .. }) => {
            Ok(Some(executor.create(desired).await?))
        }
        (Op::Apply, Change::Update { desired, found, diff, .. }) => {
            executor.update(desired, found, diff).await?;
            Ok(Some(found.id.clone()))
        }
        (Op::Apply, Change::Wait { found, .. }) => {
            executor.wait(found).await?;
            Ok(Some(found.id.clone()))
        }
        (Op::Apply, Change::Delete { .. }) => unreachable!("a delete has no apply step"),
    }
}

#[cfg(test)]
mod tests;
