use super::*;
use crate::config::testing;
use crate::config::NatMode;
use crate::model::{desired, Desired};
use crate::resources::Found;

/// What AWS would hold after a perfect `up`: every desired resource, with made-up IDs and
/// references written as IDs, the way observation sees them before resolution.
pub(crate) fn converged(d: &Desired) -> Vec<Found> {
    let mut found = unresolved(d);
    resolve_references(&mut found);
    found
}

/// As observation returns it: references still physical IDs, and attributes (a secret's ARN)
/// as values reported by the resources they belong to.
fn unresolved(d: &Desired) -> Vec<Found> {
    let id_of = |a: &Address| format!("id-{}", a.as_str().replace('/', "_"));
    let attr_of = |a: &Address, attr: &str| format!("{attr}-of-{}", a.as_str().replace('/', "_"));
    let mut attrs: BTreeMap<Address, crate::resources::Attrs> = BTreeMap::new();
    let mut found: Vec<Found> = d
        .resources
        .iter()
        .map(|r| {
            let mut spec = r.spec.clone();
            for (_, reference) in spec.refs() {
                match reference {
                    Ref::Addr(a) => *reference = Ref::Id(id_of(a)),
                    Ref::Attr { of, attr, suffix } => {
                        let value = attr_of(of, attr);
                        attrs.entry(of.clone()).or_default().insert(attr, value.clone());
                        *reference = Ref::Id(format!("{value}{suffix}"));
                    }
                    Ref::Id(_) => {}
                }
            }
            Found {
                address: r.address.clone(),
                id: id_of(&r.address),
                spec,
                tags: r.tags.clone(),
                state: "available".into(),
                attrs: Default::default(),
            }
        })
        .collect();
    for f in &mut found {
        f.attrs = attrs.remove(&f.address).unwrap_or_default();
    }
    found
}

fn actions(plan: &Plan) -> Vec<(String, Action)> {
    plan.changes.iter().map(|c| (c.address().to_string(), c.action())).collect()
}

#[test]
fn nothing_observed_means_create_everything() {
    let d = desired(&testing::config(2, NatMode::PerAz), &crate::spec::Account::test());
    let plan = plan(&d, &[]);
    assert_eq!(plan.counts(), Counts { create: d.resources.len(), ..Counts::default() });
}

#[test]
fn converged_environment_plans_nothing() {
    let d = desired(&testing::config(2, NatMode::PerAz), &crate::spec::Account::test());
    let plan = plan(&d, &converged(&d));
    assert!(plan.is_empty(), "{}", render_human(&plan, Style::Plain));
}

#[test]
fn extra_tags_from_others_are_not_drift_but_a_lost_tag_is() {
    let d = desired(&testing::config(2, NatMode::PerAz), &crate::spec::Account::test());
    let mut observed = converged(&d);
    observed[0].tags.insert("cost-center".into(), "42".into());
    assert!(plan(&d, &observed).is_empty());
    observed[0].tags.remove("Name");
    let p = plan(&d, &observed);
    assert_eq!(p.changes.len(), 1);
    assert_eq!(p.changes[0].action(), Action::Update);
    assert_eq!(p.changes[0].fields()[0].field, "tags.Name");
}

#[test]
fn lowering_the_az_count_deletes_the_extra_azs_resources() {
    let three = desired(&testing::config(3, NatMode::PerAz), &crate::spec::Account::test());
    let two = desired(&testing::config(2, NatMode::PerAz), &crate::spec::Account::test());
    let p = plan(&two, &converged(&three));
    let n = p.counts();
    // Per region: 2 subnets with their associations, EIP, NAT, table, and the default and
    // peer routes in that table.
    assert_eq!(n.delete, 2 * 9);
    // Each region's DB subnet group lets go of the removed private subnet.
    assert_eq!(n.update, 2);
    assert!(p
        .changes
        .iter()
        .filter(|c| c.action() == Action::Update)
        .all(|c| c.address().kind() == "db-subnet-group"));
    assert_eq!(n.create + n.replace, 0);
    let deletes: Vec<_> = p.changes.iter().filter(|c| c.action() == Action::Delete).collect();
    assert!(deletes.iter().all(|c| c.reason().as_deref() == Some("not in the configuration (orphan)")));
    assert!(deletes.iter().all(|c| c.address().name().contains('c')), "{:?}", actions(&p));
}

#[test]
fn a_changed_subnet_is_replaced_with_its_nat_and_repointed_references() {
    let d = desired(&testing::config(2, NatMode::PerAz), &crate::spec::Account::test());
    let mut observed = converged(&d);
    let subnet =
        observed.iter_mut().find(|f| f.address.as_str() == "us-east-1/network/subnet/public-a").unwrap();
    let Spec::Subnet(s) = &mut subnet.spec else { panic!() };
    s.availability_zone = "us-east-1f".into();
    let p = plan(&d, &observed);
    let got = actions(&p);
    assert!(got.contains(&("us-east-1/network/subnet/public-a".into(), Action::Replace)));
    // The NAT gateway lives in the subnet: it must be rebuilt there.
    assert!(got.contains(&("us-east-1/network/nat-gateway/a".into(), Action::Replace)));
    // So is the subnet's association; the route through that NAT is re-pointed, not rebuilt.
    assert!(got.contains(&("us-east-1/network/route-table-association/public-a".into(), Action::Replace)));
    assert!(got.contains(&("us-east-1/network/route/private-a:0.0.0.0/0".into(), Action::Update)));
    assert_eq!(got.len(), 4, "{got:?}");
    let subnet_change = p.changes.iter().find(|c| c.address().name() == "public-a").unwrap();
    assert!(subnet_change.fields().iter().any(|f| f.field == "availability_zone" && f.forces_replacement));
}

#[test]
fn of_two_copies_the_one_in_use_is_kept() {
    let d = desired(&testing::config(2, NatMode::PerAz), &crate::spec::Account::test());
    let mut observed = unresolved(&d);
    let eip = observed.iter().find(|f| f.address.as_str() == "us-east-1/network/elastic-ip/nat-a").unwrap();
    // A copy whose ID sorts first, but which no NAT gateway uses.
    let mut spare = eip.clone();
    spare.id = "aaa-unused".into();
    observed.push(spare);
    resolve_references(&mut observed);
    let p = plan(&d, &observed);
    assert_eq!(actions(&p), vec![("us-east-1/network/elastic-ip/nat-a".into(), Action::Delete)]);
    assert_eq!(p.changes[0].id(), Some("aaa-unused"));
    assert_eq!(p.changes[0].reason().as_deref(), Some("duplicate of id-us-east-1_network_elastic-ip_nat-a"));
}

#[test]
fn a_reference_outside_the_environment_is_drift() {
    let d = desired(&testing::config(2, NatMode::PerAz), &crate::spec::Account::test());
    let mut observed = converged(&d);
    let route = observed
        .iter_mut()
        .find(|f| f.address.as_str() == "us-east-1/network/route/public:0.0.0.0/0")
        .unwrap();
    let Spec::Route(r) = &mut route.spec else { panic!() };
    r.target = Ref::Id("igw-somebody-elses".into());
    let p = plan(&d, &observed);
    assert_eq!(actions(&p), vec![("us-east-1/network/route/public:0.0.0.0/0".into(), Action::Update)]);
    insta::assert_snapshot!(render_human(&p, Style::Plain));
}

#[test]
fn rendered_plan_for_a_new_single_nat_region() {
    let mut config = testing::config(1, NatMode::Single);
    config.secondary_regions.clear();
    config.regions.remove("us-east-2");
    let p = plan(&desired(&config, &crate::spec::Account::test()), &[]);
    insta::assert_snapshot!(render_human(&p, Style::Plain));
    insta::assert_json_snapshot!(p.counts());
}

#[test]
fn json_plan_names_actions_and_fields() {
    let d = desired(&testing::config(2, NatMode::PerAz), &crate::spec::Account::test());
    let mut observed = converged(&d);
    observed.retain(|f| f.address.kind() != "vpc-peering");
    let p = plan(&d, &observed);
    let v = serde_json::to_value(&p).unwrap();
    let change = &v["changes"][0];
    assert_eq!(change["action"], "create");
    assert_eq!(change["address"], "us-east-1/peering/vpc-peering/us-east-2");
    assert!(change["fields"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["field"] == "peer_region" && f["to"] == "us-east-2"));
}

#[test]
fn a_nat_gateway_left_pending_is_waited_for_not_taken_as_done() {
    let d = desired(&testing::config(2, NatMode::PerAz), &crate::spec::Account::test());
    let mut observed = converged(&d);
    let nat = observed.iter_mut().find(|f| f.address.as_str() == "us-east-2/network/nat-gateway/b").unwrap();
    nat.state = "pending".into();
    let p = plan(&d, &observed);
    assert_eq!(actions(&p), vec![("us-east-2/network/nat-gateway/b".into(), Action::Wait)]);
    assert!(p.changes[0].fields().is_empty());
    assert!(!p.has_changes(), "waiting is not a change");
}

#[test]
fn an_attribute_reference_resolves_back_to_its_resource_with_its_suffix() {
    use crate::resources::attr;
    let primary = Address::new("us-east-1", "database", "db-instance", "primary");
    let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!db-1234-AbCdEf".to_string();
    let mut found = vec![Found {
        address: primary.clone(),
        id: "arn:aws:rds:us-east-1:123456789012:db:webapp-test".into(),
        spec: Spec::SecurityGroup(crate::resources::security_group::SecurityGroupSpec {
            vpc: Ref::Id("vpc-1".into()),
            name: "x".into(),
            description: "x".into(),
            ingress: vec![],
        }),
        tags: Default::default(),
        state: "available".into(),
        attrs: [(attr::MASTER_SECRET_ARN, arn.clone()), (attr::ENDPOINT, "db.example".into())].into(),
    }];
    let mut group = found[0].clone();
    group.address = Address::new("us-east-1", "database", "security-group", "other");
    group.id = "sg-2".into();
    group.attrs = Default::default();
    // The observed spec names the secret's JSON key after its ARN; a value that merely starts
    // like an attribute (`db.example-2`) is not that attribute.
    if let Spec::SecurityGroup(s) = &mut group.spec {
        s.vpc = Ref::Id(format!("{arn}:password::"));
        s.ingress = vec![crate::resources::security_group::IngressRule {
            protocol: "tcp".into(),
            from_port: Some(1),
            to_port: Some(1),
            source: crate::resources::security_group::RuleSource::Group(Ref::Id("db.example-2".into())),
        }];
    }
    found.push(group);
    resolve_references(&mut found);
    let Spec::SecurityGroup(s) = &found[1].spec else { unreachable!() };
    assert_eq!(s.vpc, Ref::Attr { of: primary, attr: attr::MASTER_SECRET_ARN, suffix: ":password::".into() });
    let crate::resources::security_group::RuleSource::Group(other) = &s.ingress[0].source else {
        unreachable!()
    };
    assert_eq!(other, &Ref::Id("db.example-2".into()));
}

#[test]
fn up_refuses_to_delete_a_database_the_configuration_no_longer_names_unless_allowed() {
    let c = testing::config(2, NatMode::PerAz);
    let d = desired(&c, &crate::spec::Account::test());
    // What `deployer failover --to us-east-2` leaves while the configuration still names
    // us-east-1: the replica promoted and tagged as the primary of the swapped arrangement.
    let mut swapped = c.clone();
    swapped.primary_region = "us-east-2".into();
    swapped.secondary_regions = vec!["us-east-1".into()];
    let promoted_at = Address::new("us-east-2", "database", "db-instance", "primary");
    let promoted = desired(&swapped, &crate::spec::Account::test()).get(&promoted_at).cloned().unwrap();
    let mut observed = converged(&d);
    observed.retain(|f| f.address.kind() != "db-replica");
    observed.push(Found {
        address: promoted.address.clone(),
        id: "arn:aws:rds:us-east-2:123456789012:db:webapp-test".into(),
        spec: promoted.spec,
        tags: promoted.tags,
        state: "available".into(),
        attrs: Default::default(),
    });
    let p = plan(&d, &observed);
    let delete = p.changes.iter().find(|ch| ch.address() == &promoted_at).unwrap();
    assert_eq!(delete.action(), Action::Delete);
    let reason = delete.reason().unwrap();
    assert!(reason.starts_with("not in the configuration (orphan); DATA LOSS"), "{reason}");
    let refusals = p.refusals(false);
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    for expected in [promoted_at.as_str(), "docs/runbooks/regional-failover.md", "database.allow_replacement"]
    {
        assert!(refusals[0].contains(expected), "{expected} in {}", refusals[0]);
    }
    assert!(p.refusals(true).is_empty(), "allowed by the configuration");

    // Orphans that hold no data (the AZ `c` resources after lowering az_count) go as before.
    let three = converged(&desired(&testing::config(3, NatMode::PerAz), &crate::spec::Account::test()));
    let p = plan(&d, &three);
    assert!(p.counts().delete > 0);
    assert!(p.refusals(false).is_empty(), "{:?}", p.refusals(false));
}

#[test]
fn standing_names_what_is_in_sync_missing_orphaned_or_duplicated() {
    let d = desired(&testing::config(2, NatMode::Single), &crate::spec::Account::test());
    let mut observed = converged(&d);
    let all_in_sync = |observed: &[Found]| {
        let p = plan(&d, observed);
        standing(&d, observed, &p).iter().all(|s| s.sync == "in sync")
    };
    assert!(all_in_sync(&observed));
    let gone = observed.remove(0);
    let mut spare = observed[0].clone();
    spare.id = "id-spare".into();
    observed.push(spare.clone());
    let mut orphan = observed[1].clone();
    orphan.address = Address::new("us-east-1", "network", "subnet", "public-z");
    orphan.id = "id-orphan".into();
    observed.push(orphan);
    let p = plan(&d, &observed);
    let rows = standing(&d, &observed, &p);
    let sync = |address: &str, id: &str| {
        rows.iter().find(|s| s.address == address && s.id == id).map(|s| s.sync).unwrap_or("(no row)")
    };
    assert_eq!(sync(gone.address.as_str(), "-"), "missing");
    assert_eq!(sync(spare.address.as_str(), "id-spare"), "duplicate");
    assert_eq!(sync("us-east-1/network/subnet/public-z", "id-orphan"), "orphan");
    assert_eq!(rows.iter().filter(|s| s.is_problem()).count(), 3, "{rows:#?}");
}
