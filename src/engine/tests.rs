use super::*;
use crate::config::testing;
use crate::config::NatMode;
use crate::model::desired;
use crate::plan::plan;
use crate::plan::tests::converged;
use crate::resources::{Diff, Found, Resource};
use crate::spec::Ref;

fn node<'a>(nodes: &'a [Node], address: &str, op: Op) -> (usize, &'a Node<'a>) {
    nodes
        .iter()
        .enumerate()
        .find(|(_, n)| n.change.address().as_str() == address && n.op == op)
        .unwrap_or_else(|| panic!("no {op:?} node for {address}"))
}

fn waits_for(nodes: &[Node], a: (&str, Op), b: (&str, Op)) -> bool {
    let (_, first) = node(nodes, a.0, a.1);
    let (j, _) = node(nodes, b.0, b.1);
    first.deps.contains(&j)
}

#[test]
fn creates_wait_for_what_they_reference_across_regions() {
    let p = plan(&desired(&testing::config(2, NatMode::PerAz), &crate::spec::Account::test()), &[]);
    let nodes = build_graph(&p);
    let apply = Op::Apply;
    assert!(waits_for(
        &nodes,
        ("us-east-1/network/subnet/public-a", apply),
        ("us-east-1/network/vpc/main", apply)
    ));
    assert!(waits_for(
        &nodes,
        ("us-east-1/peering/vpc-peering/us-east-2", apply),
        ("us-east-2/network/vpc/main", apply)
    ));
    assert!(waits_for(
        &nodes,
        ("us-east-2/network/route/private-a:10.10.0.0/16", apply),
        ("us-east-1/peering/vpc-peering/us-east-2", apply)
    ));
    // The two regions' VPCs depend on nothing: they start together.
    assert!(node(&nodes, "us-east-2/network/vpc/main", apply).1.deps.is_empty());
}

#[test]
fn destroy_removes_dependents_first() {
    let d = desired(&testing::config(2, NatMode::PerAz), &crate::spec::Account::test());
    let p = plan(&crate::model::Desired::empty("webapp", "test"), &converged(&d));
    let nodes = build_graph(&p);
    let del = Op::Delete;
    let cases = [
        ("us-east-1/network/nat-gateway/a", "us-east-1/network/route/private-a:0.0.0.0/0"),
        ("us-east-1/network/elastic-ip/nat-a", "us-east-1/network/nat-gateway/a"),
        ("us-east-1/network/subnet/public-a", "us-east-1/network/nat-gateway/a"),
        ("us-east-1/network/subnet/public-a", "us-east-1/network/route-table-association/public-a"),
        ("us-east-1/network/route-table/public", "us-east-1/network/route-table-association/public-b"),
        ("us-east-2/network/vpc/main", "us-east-1/peering/vpc-peering/us-east-2"),
        ("us-east-1/peering/vpc-peering/us-east-2", "us-east-2/network/route/public:10.10.0.0/16"),
        ("us-east-1/network/vpc/main", "us-east-1/network/internet-gateway/main"),
    ];
    for (later, first) in cases {
        assert!(waits_for(&nodes, (later, del), (first, del)), "{later} should wait for {first}");
    }
}

/// The first AZ of us-east-1 moved from `a` to `d`.
fn first_az_moved(nat: NatMode) -> crate::config::Config {
    let mut c = testing::config(2, nat);
    c.regions.get_mut("us-east-1").unwrap().availability_zones[0] = "us-east-1d".into();
    c
}

#[test]
fn a_table_waits_for_its_associations_to_move_before_it_goes() {
    // Switching the association of a subnet to another table: the old table cannot be
    // deleted while the association still points at it.
    let d = desired(&testing::config(2, NatMode::PerAz), &crate::spec::Account::test());
    let mut observed = converged(&d);
    observed.retain(|f| f.address.as_str() != "us-east-1/network/route-table/private-b");
    let mut stray = converged(&d)
        .into_iter()
        .find(|f| f.address.as_str() == "us-east-1/network/route-table/private-b")
        .unwrap();
    stray.address = Address::parse("us-east-1/network/route-table/old").unwrap();
    for f in observed.iter_mut() {
        if let crate::resources::Spec::RouteTableAssociation(a) = &mut f.spec {
            if f.address.name() == "private-b" {
                a.route_table = Ref::Addr(stray.address.clone());
            }
        }
    }
    observed.push(stray);
    let p = plan(&desired(&testing::config(2, NatMode::PerAz), &crate::spec::Account::test()), &observed);
    let nodes = build_graph(&p);
    assert!(waits_for(
        &nodes,
        ("us-east-1/network/route-table/old", Op::Delete),
        ("us-east-1/network/route-table-association/private-b", Op::Apply)
    ));
}

#[test]
fn a_nat_gateway_does_not_wait_for_routes_to_be_repointed() {
    // With a single NAT gateway, moving the first AZ moves the NAT: the new one needs the old
    // subnet's CIDR free, so the old NAT must not wait for the routes that will use the new.
    let p = plan(
        &desired(&first_az_moved(NatMode::Single), &crate::spec::Account::test()),
        &converged(&desired(&testing::config(2, NatMode::Single), &crate::spec::Account::test())),
    );
    let nodes = build_graph(&p);
    assert!(!waits_for(
        &nodes,
        ("us-east-1/network/nat-gateway/a", Op::Delete),
        ("us-east-1/network/route/private-b:0.0.0.0/0", Op::Apply)
    ));
}

#[test]
fn a_new_subnet_waits_for_an_old_one_whose_cidr_it_overlaps() {
    let d = desired(&testing::config(2, NatMode::PerAz), &crate::spec::Account::test());
    let mut smaller = testing::config(2, NatMode::PerAz);
    smaller.network.subnet_prefix = 21;
    let p = plan(&desired(&smaller, &crate::spec::Account::test()), &converged(&d));
    let nodes = build_graph(&p);
    // public-b moves from 10.10.16.0/20 to 10.10.8.0/21, inside the old public-a's /20.
    assert!(waits_for(
        &nodes,
        ("us-east-1/network/subnet/public-b", Op::Apply),
        ("us-east-1/network/subnet/public-a", Op::Delete)
    ));
}

#[test]
fn a_replacement_is_created_after_the_old_one_is_deleted() {
    let d = desired(&testing::config(2, NatMode::PerAz), &crate::spec::Account::test());
    let mut observed = converged(&d);
    let vpc = observed.iter_mut().find(|f| f.address.as_str() == "us-east-2/network/vpc/main").unwrap();
    let crate::resources::Spec::Vpc(v) = &mut vpc.spec else { panic!() };
    v.cidr_block = "10.99.0.0/16".parse().unwrap();
    let p = plan(&d, &observed);
    let nodes = build_graph(&p);
    let vpc = "us-east-2/network/vpc/main";
    assert!(waits_for(&nodes, (vpc, Op::Apply), (vpc, Op::Delete)));
    // Everything inside the old VPC goes before it does.
    assert!(waits_for(&nodes, (vpc, Op::Delete), ("us-east-2/network/subnet/private-b", Op::Delete)));
    assert!(waits_for(&nodes, (vpc, Op::Delete), ("us-east-1/peering/vpc-peering/us-east-2", Op::Delete)));
}

#[test]
fn every_graph_is_acyclic() {
    // With every tier on, the service tier included.
    let on = testing::with_service;
    let d = desired(&on(testing::config(3, NatMode::PerAz)), &crate::spec::Account::test());
    let plans = [
        plan(&d, &[]),
        plan(&crate::model::Desired::empty("webapp", "test"), &converged(&d)),
        plan(
            &desired(&on(testing::config(1, NatMode::Single)), &crate::spec::Account::test()),
            &converged(&d),
        ),
        plan(
            &desired(&on(first_az_moved(NatMode::Single)), &crate::spec::Account::test()),
            &converged(&desired(&on(testing::config(2, NatMode::Single)), &crate::spec::Account::test())),
        ),
        plan(
            &desired(&on(first_az_moved(NatMode::PerAz)), &crate::spec::Account::test()),
            &converged(&desired(&on(testing::config(2, NatMode::PerAz)), &crate::spec::Account::test())),
        ),
    ];
    for p in &plans {
        let nodes = build_graph(p);
        // Kahn's algorithm must consume every node.
        let mut done = vec![false; nodes.len()];
        let mut progressed = true;
        while progressed {
            progressed = false;
            for (i, n) in nodes.iter().enumerate() {
                if !done[i] && n.deps.iter().all(|&d| done[d]) {
                    done[i] = true;
                    progressed = true;
                }
            }
        }
        assert!(done.iter().all(|d| *d), "cycle in a plan of {} changes", p.changes.len());
    }
}

/// An executor that touches nothing: it records what ran and when, sleeps a little per step
/// (tokio's paused clock), and fails the addresses it is told to.
#[derive(Default)]
struct Fake {
    fail: Vec<&'static str>,
    log: std::sync::Mutex<Vec<(String, &'static str)>>,
    running: std::sync::atomic::AtomicUsize,
    most_at_once: std::sync::atomic::AtomicUsize,
}

impl Fake {
    async fn step(&self, address: &Address, what: &'static str) -> Result<(), Error> {
        use std::sync::atomic::Ordering::SeqCst;
        let now = self.running.fetch_add(1, SeqCst) + 1;
        self.most_at_once.fetch_max(now, SeqCst);
        self.log.lock().unwrap().push((address.to_string(), "start"));
        tokio::time::sleep(Duration::from_millis(10)).await;
        self.running.fetch_sub(1, SeqCst);
        self.log.lock().unwrap().push((address.to_string(), what));
        if self.fail.contains(&address.as_str()) {
            return Err(Error::InvalidState("injected".into()));
        }
        Ok(())
    }

    fn position(&self, address: &str, what: &str) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .position(|(a, w)| a == address && *w == what)
            .unwrap_or_else(|| panic!("{address} never {what}"))
    }
}

impl Executor for Fake {
    async fn create(&self, desired: &Resource) -> Result<String, Error> {
        self.step(&desired.address, "created").await.map(|_| format!("id-{}", desired.address))
    }
    async fn update(&self, desired: &Resource, _: &Found, _: &Diff) -> Result<(), Error> {
        self.step(&desired.address, "updated").await
    }
    async fn delete(&self, found: &Found) -> Result<(), Error> {
        self.step(&found.address, "deleted").await
    }
    async fn wait(&self, found: &Found) -> Result<(), Error> {
        self.step(&found.address, "waited").await
    }
}

struct Silent;
impl Progress for Silent {
    fn started(&self, _: &Address, _: &str) {}
    fn finished(&self, _: &Outcome) {}
}

#[tokio::test(start_paused = true)]
async fn a_step_starts_only_after_what_it_depends_on_is_done_and_concurrency_is_bounded() {
    let p = plan(&desired(&testing::config(3, NatMode::PerAz), &crate::spec::Account::test()), &[]);
    let fake = Fake::default();
    let outcomes = apply(&fake, &p, &Options { concurrency: 3, region_order: None }, &Silent).await;
    assert_eq!(outcomes.len(), p.changes.len());
    assert!(outcomes.iter().all(|o| o.status == Status::Done));
    assert!(fake.most_at_once.load(std::sync::atomic::Ordering::SeqCst) <= 3);
    assert_eq!(fake.most_at_once.load(std::sync::atomic::Ordering::SeqCst), 3, "the bound is used");
    for c in &p.changes {
        for dep in c.desired().unwrap().spec.deps() {
            assert!(
                fake.position(dep.as_str(), "created") < fake.position(c.address().as_str(), "start"),
                "{} started before {dep} was created",
                c.address()
            );
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_failure_skips_its_dependents_and_lets_the_rest_finish() {
    let p = plan(&desired(&testing::config(2, NatMode::PerAz), &crate::spec::Account::test()), &[]);
    let fake = Fake { fail: vec!["us-east-2/network/vpc/main"], ..Fake::default() };
    let outcomes = apply(&fake, &p, &Options { concurrency: 8, region_order: None }, &Silent).await;
    let status_of = |a: &str| outcomes.iter().find(|o| o.address.as_str() == a).unwrap().status.clone();
    assert!(matches!(status_of("us-east-2/network/vpc/main"), Status::Failed(_)));
    assert!(matches!(status_of("us-east-2/network/subnet/public-a"), Status::Skipped(_)));
    assert!(matches!(status_of("us-east-1/peering/vpc-peering/us-east-2"), Status::Skipped(_)));
    // The primary region does not depend on the secondary's VPC.
    assert_eq!(status_of("us-east-1/network/nat-gateway/a"), Status::Done);
    assert_eq!(status_of("us-east-1/network/route/private-b:0.0.0.0/0"), Status::Done);
    let skipped: Vec<_> = outcomes.iter().filter(|o| matches!(o.status, Status::Skipped(_))).collect();
    assert!(skipped.iter().all(|o| fake.log.lock().unwrap().iter().all(|(a, _)| a != o.address.as_str())));
}

#[tokio::test(start_paused = true)]
async fn a_busy_resource_is_waited_for_not_changed() {
    let d = desired(&testing::config(2, NatMode::PerAz), &crate::spec::Account::test());
    let mut observed = converged(&d);
    observed.iter_mut().find(|f| f.address.kind() == "nat-gateway").unwrap().state = "pending".into();
    let p = plan(&d, &observed);
    let fake = Fake::default();
    apply(&fake, &p, &Options { concurrency: 8, region_order: None }, &Silent).await;
    let log = fake.log.lock().unwrap();
    let done: Vec<_> = log.iter().filter(|(_, w)| *w != "start").collect();
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].1, "waited");
}

#[tokio::test(start_paused = true)]
async fn one_region_at_a_time_finishes_the_primary_before_the_secondary_starts() {
    let p = plan(&desired(&testing::config(2, NatMode::PerAz), &crate::spec::Account::test()), &[]);
    let fake = Fake::default();
    let order = vec!["us-east-1".to_string(), "us-east-2".to_string()];
    let outcomes = apply(&fake, &p, &Options { concurrency: 8, region_order: Some(order) }, &Silent).await;
    assert!(outcomes.iter().all(|o| o.status == Status::Done), "no cycle, nothing skipped");
    let log = fake.log.lock().unwrap();
    let last_primary =
        // (Its routes to the peer region go through the peering: they come last.)
        log.iter()
            .rposition(|(a, w)| *w != "start" && a.starts_with("us-east-1/network/") && !a.ends_with(":10.20.0.0/16"))
            .unwrap();
    let first_secondary = log.iter().position(|(a, _)| a.starts_with("us-east-2/")).unwrap();
    assert!(
        last_primary < first_secondary,
        "us-east-2 started before us-east-1's network was done: {:?} then {:?}",
        log[last_primary],
        log[first_secondary]
    );
    let peering = log.iter().position(|(a, _)| a.contains("vpc-peering")).unwrap();
    assert!(peering > first_secondary, "the peering needs both regions");
}

#[tokio::test(start_paused = true)]
async fn a_database_is_not_replaced_without_the_allowance_even_if_the_plan_gets_here() {
    let d = desired(&testing::config(2, NatMode::PerAz), &crate::spec::Account::test());
    let mut observed = converged(&d);
    for f in &mut observed {
        if let crate::resources::Spec::DbInstance(s) = &mut f.spec {
            s.identifier = "webapp-old".into();
        }
    }
    let p = plan(&d, &observed);
    assert!(!p.refusals(true).is_empty());
    let fake = Fake::default();
    let outcomes = apply(&fake, &p, &Options { concurrency: 8, region_order: None }, &Silent).await;
    // The replica goes first (its parent is replaced) and is refused; the primary is skipped.
    let db: Vec<&Outcome> =
        outcomes.iter().filter(|o| o.address.as_str().contains("/database/db-")).collect();
    let refused =
        |o: &&Outcome| matches!(&o.status, Status::Failed(e) if e.contains("database.allow_replacement"));
    assert!(db.iter().any(refused), "{db:#?}");
    assert!(db.iter().all(|o| refused(o) || matches!(o.status, Status::Skipped(_))), "{db:#?}");
    assert!(fake.log.lock().unwrap().iter().all(|(a, _)| !a.contains("/database/db-")), "nothing of it ran");
}

#[tokio::test(start_paused = true)]
async fn global_roles_run_first_one_region_at_a_time_unless_they_name_a_regional_resource() {
    let d =
        desired(&testing::with_service(testing::config(2, NatMode::PerAz)), &crate::spec::Account::test());
    let p = plan(&d, &[]);
    assert!(p.changes.iter().any(|c| c.address().is_global()), "the IAM roles are planned");
    let fake = Fake::default();
    let order = vec!["us-east-1".to_string(), "us-east-2".to_string()];
    let outcomes = apply(&fake, &p, &Options { concurrency: 8, region_order: Some(order) }, &Silent).await;
    assert!(outcomes.iter().all(|o| o.status == Status::Done), "{outcomes:#?}");
    let log = fake.log.lock().unwrap();
    let done = |address: &str| log.iter().position(|(a, w)| a == address && *w == "created").unwrap();
    let first_regional = log.iter().position(|(a, _)| !a.starts_with("global/")).unwrap();
    assert!(
        done("global/iam/iam-role/task") < first_regional,
        "a role that needs nothing regional goes first"
    );
    // The execution role may read the database's master secret, whose ARN exists once the
    // database does.
    assert!(done("global/iam/iam-role/task-execution") > done("us-east-1/database/db-instance/primary"));
}
