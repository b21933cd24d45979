//! The pure model: `Config → Desired`. Every resource gets a stable address, its full spec and
//! its tags. References between resources are addresses, resolved to IDs only at apply time.

pub mod database;
pub mod dns;
pub mod drift;
pub mod monitoring;
pub mod registry;
pub mod service;

use std::collections::BTreeMap;
use std::time::Duration;

use ipnet::Ipv4Net;

use crate::config::{private_subnet_cidr, public_subnet_cidr, Config, NatMode};
use crate::resources::elastic_ip::ElasticIpSpec;
use crate::resources::internet_gateway::InternetGatewaySpec;
use crate::resources::nat_gateway::NatGatewaySpec;
use crate::resources::route::{self, RouteSpec};
use crate::resources::route_table::RouteTableSpec;
use crate::resources::route_table_association::{self, RouteTableAssociationSpec};
use crate::resources::subnet::SubnetSpec;
use crate::resources::vpc::VpcSpec;
use crate::resources::vpc_peering::{self, VpcPeeringSpec};
use crate::resources::{Resource, Spec};
use crate::spec::names::tier;
use crate::spec::{tags_for, Account, Address, Ref, Tags, GLOBAL};

/// Everything the environment should have, in dependency order (a resource comes after what it
/// references).
#[derive(Clone, Debug, Default)]
pub struct Desired {
    pub app: String,
    pub env: String,
    pub resources: Vec<Resource>,
}

impl Desired {
    pub fn get(&self, address: &Address) -> Option<&Resource> {
        self.resources.iter().find(|r| &r.address == address)
    }

    /// Nothing: what `destroy` converges to.
    pub fn empty(app: &str, env: &str) -> Desired {
        Desired { app: app.to_string(), env: env.to_string(), resources: vec![] }
    }
}

/// Wait bounds of the kinds that have their own (the default is `engine.wait_timeout`).
pub fn wait_timeouts(config: &Config) -> BTreeMap<&'static str, Duration> {
    use crate::resources::{db_instance::DbInstance, db_replica::DbReplica, Kind};
    let mut timeouts = BTreeMap::new();
    if config.database.enabled {
        // Creating a Multi-AZ primary takes 15–40 minutes on AWS, a replica longer.
        timeouts.insert(DbInstance::NAME, config.database.wait_timeout);
        timeouts.insert(DbReplica::NAME, config.database.wait_timeout);
    }
    if config.service.enabled {
        use crate::resources::{
            acm_certificate::AcmCertificate, deployment_config::DeploymentConfig, ecs_cluster::EcsCluster,
            ecs_service::EcsService, load_balancer::LoadBalancer,
        };
        // A certificate waits for DNS validation, a load balancer to provision, a service to
        // drain (and its cluster for it), a deployment configuration for its group to let go.
        for kind in [
            AcmCertificate::NAME,
            LoadBalancer::NAME,
            EcsService::NAME,
            EcsCluster::NAME,
            DeploymentConfig::NAME,
        ] {
            timeouts.insert(kind, config.service.wait_timeout);
        }
    }
    timeouts
}

/// What destroy keeps and how it deletes data.
pub fn deletion_policy(config: &Config) -> crate::resources::DeletionPolicy {
    crate::resources::DeletionPolicy {
        keep_repositories_with_images: config.registry.keep_on_destroy,
        skip_final_snapshot: config.database.skip_final_snapshot,
    }
}

struct Builder<'a> {
    config: &'a Config,
    resources: Vec<Resource>,
}

impl Builder<'_> {
    /// Adds a resource at `<region>/<tier>/<its kind>/<name>`.
    fn add(&mut self, region: &str, tier: &str, name: &str, spec: Spec) -> Address {
        let address = Address::new(region, tier, spec.kind(), name);
        let tags = if spec.taggable() {
            tags_for(&self.config.app, &self.config.env, &address)
        } else {
            Tags::new()
        };
        self.resources.push(Resource { address: address.clone(), spec, tags });
        address
    }

    fn associate(&mut self, subnet: &Address, table: &Address) {
        let address = route_table_association::address(subnet);
        let spec = Spec::RouteTableAssociation(RouteTableAssociationSpec {
            subnet: Ref::Addr(subnet.clone()),
            route_table: Ref::Addr(table.clone()),
        });
        self.add(address.region(), address.tier(), address.name(), spec);
    }

    fn route(&mut self, table: &Address, destination: Ipv4Net, target: &Address) {
        let address = route::address(table, destination);
        let spec = Spec::Route(RouteSpec {
            route_table: Ref::Addr(table.clone()),
            destination,
            target: Ref::Addr(target.clone()),
        });
        self.add(address.region(), address.tier(), address.name(), spec);
    }
}

/// The route tables of one region's network, for the peering routes added afterwards.
struct RegionNetwork {
    vpc: Address,
    tables: Vec<Address>,
}

/// `az` is a full AZ name (`us-east-1c`); its last letter names the per-AZ resources.
fn az_letter(az: &str) -> &str {
    &az[az.len().saturating_sub(1)..]
}

fn network(b: &mut Builder, region: &str) -> RegionNetwork {
    let rc = &b.config.regions[region];
    let net = &b.config.network;
    let n = tier::NETWORK;
    let vpc = b.add(
        region,
        n,
        "main",
        Spec::Vpc(VpcSpec { cidr_block: rc.vpc_cidr, enable_dns_support: true, enable_dns_hostnames: true }),
    );
    let igw = b.add(
        region,
        n,
        "main",
        Spec::InternetGateway(InternetGatewaySpec { vpc: Some(Ref::Addr(vpc.clone())) }),
    );
    let mut public = Vec::new();
    let mut private = Vec::new();
    for (i, az) in rc.availability_zones.iter().enumerate() {
        let x = az_letter(az);
        let subnet = |cidr: Option<Ipv4Net>, public: bool| {
            Spec::Subnet(SubnetSpec {
                vpc: Ref::Addr(vpc.clone()),
                // Validation guarantees every slot fits the VPC.
                cidr_block: cidr.expect("validated subnet layout"),
                availability_zone: az.clone(),
                map_public_ip_on_launch: public,
            })
        };
        let p = subnet(public_subnet_cidr(rc.vpc_cidr, net.subnet_prefix, i), true);
        public.push(b.add(region, n, &format!("public-{x}"), p));
        let q = subnet(private_subnet_cidr(rc.vpc_cidr, net.subnet_prefix, i), false);
        private.push(b.add(region, n, &format!("private-{x}"), q));
    }
    let nat_count = match net.nat_gateways {
        NatMode::PerAz => rc.availability_zones.len(),
        NatMode::Single => 1,
    };
    let mut nats = Vec::new();
    for (i, az) in rc.availability_zones.iter().take(nat_count).enumerate() {
        let x = az_letter(az);
        let eip = b.add(region, n, &format!("nat-{x}"), Spec::ElasticIp(ElasticIpSpec {}));
        let spec = NatGatewaySpec { subnet: Ref::Addr(public[i].clone()), elastic_ip: Ref::Addr(eip) };
        nats.push(b.add(region, n, x, Spec::NatGateway(spec)));
    }
    let default_route: Ipv4Net = "0.0.0.0/0".parse().expect("literal CIDR");
    let public_table =
        b.add(region, n, "public", Spec::RouteTable(RouteTableSpec { vpc: Ref::Addr(vpc.clone()) }));
    for subnet in &public {
        b.associate(subnet, &public_table);
    }
    b.route(&public_table, default_route, &igw);
    let mut tables = vec![public_table];
    for (i, az) in rc.availability_zones.iter().enumerate() {
        let table = b.add(
            region,
            n,
            &format!("private-{}", az_letter(az)),
            Spec::RouteTable(RouteTableSpec { vpc: Ref::Addr(vpc.clone()) }),
        );
        b.associate(&private[i], &table);
        // With a single NAT gateway every private table routes through the first AZ's.
        b.route(&table, default_route, &nats[i.min(nats.len() - 1)]);
        tables.push(table);
    }
    RegionNetwork { vpc, tables }
}

/// The whole environment the config describes, in `account` (the service tier writes its ARNs
/// into IAM policies).
pub fn desired(config: &Config, account: &Account) -> Desired {
    let mut b = Builder { config, resources: Vec::new() };
    let primary = config.primary_region.as_str();
    let primary_net = network(&mut b, primary);
    let secondaries: Vec<(String, RegionNetwork)> =
        config.secondary_regions.iter().map(|r| (r.clone(), network(&mut b, r))).collect();
    for (region, net) in &secondaries {
        let peering = b.add(
            primary,
            tier::PEERING,
            region,
            Spec::VpcPeering(VpcPeeringSpec {
                vpc: Ref::Addr(primary_net.vpc.clone()),
                peer_vpc: Ref::Addr(net.vpc.clone()),
                peer_region: region.clone(),
                allow_remote_dns_resolution: true,
                status: vpc_peering::ACTIVE.to_string(),
            }),
        );
        let peer_cidr = config.regions[region].vpc_cidr;
        let primary_cidr = config.regions[primary].vpc_cidr;
        for table in &primary_net.tables {
            b.route(table, peer_cidr, &peering);
        }
        for table in &net.tables {
            b.route(table, primary_cidr, &peering);
        }
    }
    registry::registry(&mut b, config);
    if config.service.enabled {
        for region in config.region_names() {
            service::alb::alb_security_group_resource(&mut b, config, &region);
        }
    }
    service::alb::app_security_groups(&mut b, config);
    database::database(&mut b, config);
    service::service(&mut b, config, account);
    dns::dns(&mut b, config);
    monitoring::monitoring(&mut b, config, account);
    drift::drift(&mut b, config, account);
    boundary(&mut b, config, account);
    Desired { app: config.app.clone(), env: config.env.clone(), resources: b.resources }
}

/// The roles' permissions boundary, made from the roles the environment has (none: no
/// boundary), and each role's reference to it.
fn boundary(b: &mut Builder, config: &Config, account: &Account) {
    let roles: Vec<&crate::resources::iam_role::IamRoleSpec> = b
        .resources
        .iter()
        .filter_map(|r| match &r.spec {
            Spec::IamRole(role) => Some(role),
            _ => None,
        })
        .collect();
    if roles.is_empty() {
        return;
    }
    let document = crate::permissions::boundary(config, account, &roles);
    let spec = crate::resources::iam_boundary::IamBoundarySpec {
        name: crate::spec::names::boundary_name(&config.app, &config.env),
        path: crate::spec::names::iam_path(&config.app, &config.env),
        document,
    };
    let address = b.add(GLOBAL, service::IAM_TIER, "roles", Spec::IamBoundary(spec));
    // Before the first role: the roles name it.
    let boundary = b.resources.pop().expect("just added");
    let first_role = b.resources.iter().position(|r| matches!(r.spec, Spec::IamRole(_))).unwrap_or(0);
    b.resources.insert(first_role, boundary);
    for r in &mut b.resources {
        if let Spec::IamRole(role) = &mut r.spec {
            role.boundary = Some(Ref::Addr(address.clone()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::{self, with_service};
    use crate::config::NatMode;
    use crate::spec::{TAG_ADDRESS, TAG_ENV};

    fn count(d: &Desired, kind: &str, region: &str) -> usize {
        d.resources.iter().filter(|r| r.address.kind() == kind && r.address.region() == region).count()
    }

    #[test]
    fn two_regions_two_azs_per_az_nat() {
        let d = desired(&testing::config(2, NatMode::PerAz), &crate::spec::Account::test());
        for region in ["us-east-1", "us-east-2"] {
            assert_eq!(count(&d, "vpc", region), 1);
            assert_eq!(count(&d, "subnet", region), 4);
            assert_eq!(count(&d, "nat-gateway", region), 2);
            assert_eq!(count(&d, "elastic-ip", region), 2);
            assert_eq!(count(&d, "route-table", region), 3);
            assert_eq!(count(&d, "route-table-association", region), 4);
            // A default route and a peer route in each table.
            assert_eq!(count(&d, "route", region), 6);
        }
        assert_eq!(count(&d, "vpc-peering", "us-east-1"), 1);
        let network = d.resources.iter().filter(|r| matches!(r.address.tier(), "network" | "peering"));
        assert_eq!(network.count(), 2 * 23 + 1);
        // The registry: a repository in each region, replicated from the primary.
        assert_eq!(count(&d, "ecr-repository", "us-east-1"), 1);
        assert_eq!(count(&d, "ecr-repository", "us-east-2"), 1);
        assert_eq!(count(&d, "ecr-replication", "us-east-1"), 1);
        assert_eq!(count(&d, "ecr-replication", "us-east-2"), 0);
    }

    #[test]
    fn single_nat_serves_every_private_table() {
        let d = desired(&testing::config(3, NatMode::Single), &crate::spec::Account::test());
        assert_eq!(count(&d, "nat-gateway", "us-east-1"), 1);
        let targets: Vec<_> = d
            .resources
            .iter()
            .filter_map(|r| match &r.spec {
                Spec::Route(s) if r.address.region() == "us-east-1" && s.destination.prefix_len() == 0 => {
                    Some(s.target.to_string())
                }
                _ => None,
            })
            .collect();
        assert_eq!(targets.len(), 4);
        assert_eq!(targets.iter().filter(|t| t.ends_with("nat-gateway/a")).count(), 3);
    }

    #[test]
    fn every_resource_comes_after_what_it_references_and_is_tagged() {
        let d = desired(&with_service(testing::config(3, NatMode::PerAz)), &crate::spec::Account::test());
        let mut seen = std::collections::BTreeSet::new();
        for r in &d.resources {
            for dep in r.spec.deps() {
                assert!(seen.contains(&dep), "{} references {dep} before it is defined", r.address);
            }
            seen.insert(r.address.clone());
            if r.spec.taggable() {
                assert_eq!(r.tags.get(TAG_ADDRESS), Some(&r.address.to_string()));
                assert_eq!(r.tags.get(TAG_ENV).map(String::as_str), Some("test"));
            }
        }
    }

    #[test]
    fn growing_the_az_count_keeps_existing_subnets_in_place() {
        let two = desired(&testing::config(2, NatMode::PerAz), &crate::spec::Account::test());
        let three = desired(&testing::config(3, NatMode::PerAz), &crate::spec::Account::test());
        for r in two.resources.iter().filter(|r| r.address.kind() == "subnet") {
            assert_eq!(three.get(&r.address).map(|x| &x.spec), Some(&r.spec), "{} moved", r.address);
        }
    }
}
