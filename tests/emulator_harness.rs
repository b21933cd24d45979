//! Self-test of the test support code (`tests/support`): the emulator starts, the state
//! helpers read moto's data.json the way its documentation says, and the recorder works.
//! If a moto upgrade changes data.json, these tests say where.

mod support;

use std::collections::BTreeSet;

use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
use serde_json::Value;
use support::{
    ec2_objects, is_deleted, peering_status, region_of, route_destination, route_table_of, route_target,
    routes_of, str_field, tag, tagged_for_env, Emulator, Project,
};

const APP: &str = "harness";
const ENV: &str = "test";

fn tags(kind: ResourceType, env: &str) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(kind)
        .tags(Tag::builder().key("deployer:app").value(APP).build())
        .tags(Tag::builder().key("deployer:env").value(env).build())
        .tags(Tag::builder().key("Name").value(format!("{APP}-{env}")).build())
        .build()
}

async fn create_vpc(ec2: &aws_sdk_ec2::Client, cidr: &str, env: &str) -> String {
    ec2.create_vpc()
        .cidr_block(cidr)
        .tag_specifications(tags(ResourceType::Vpc, env))
        .send()
        .await
        .expect("CreateVpc")
        .vpc()
        .and_then(|v| v.vpc_id())
        .expect("a VPC id")
        .to_owned()
}

fn ids(objects: &[Value]) -> BTreeSet<String> {
    objects.iter().filter_map(|o| str_field(o, "id")).collect()
}

fn regions(objects: &[Value]) -> Vec<String> {
    let mut r: Vec<String> = objects.iter().filter_map(region_of).collect();
    r.sort();
    r
}

/// An EC2 client like the deployer's own (no harness app name), so the recorder keeps its calls.
async fn recorded_client(emu: &Emulator, region: &'static str) -> aws_sdk_ec2::Client {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(region)
        .endpoint_url(emu.url())
        .credentials_provider(aws_sdk_ec2::config::Credentials::new("test", "test", None, None, "test"))
        .load()
        .await;
    aws_sdk_ec2::Client::new(&config)
}

#[tokio::test]
async fn finds_tagged_vpcs_per_region_and_records_actions() {
    let emu = Emulator::start();
    emu.start_recording();
    let east1 = recorded_client(&emu, "us-east-1").await;
    let east2 = recorded_client(&emu, "us-east-2").await;

    let vpc1 = create_vpc(&east1, "10.10.0.0/16", ENV).await;
    let vpc2 = create_vpc(&east2, "10.20.0.0/16", ENV).await;
    let _other_env = create_vpc(&east2, "10.30.0.0/16", "other").await;

    let state = emu.state();
    let vpcs = tagged_for_env(&state, "VPC", APP, ENV);
    assert_eq!(ids(&vpcs), BTreeSet::from([vpc1.clone(), vpc2.clone()]));
    for vpc in &vpcs {
        let want = if str_field(vpc, "id") == Some(vpc1.clone()) { "us-east-1" } else { "us-east-2" };
        assert_eq!(region_of(vpc).as_deref(), Some(want), "{vpc:#}");
        assert_eq!(tag(vpc, "Name").as_deref(), Some("harness-test"));
    }
    assert_eq!(tagged_for_env(&state, "VPC", APP, "other").len(), 1);
    // Each touched region has a default VPC too (untagged).
    assert_eq!(ec2_objects(&state, "VPC").len(), 5);

    let actions = emu.recorded_actions();
    assert_eq!(actions.iter().filter(|a| *a == "CreateVpc").count(), 3, "{actions:?}");
    // The support code's own EC2 calls (made by state()) are not in the recording.
    assert!(!actions.iter().any(|a| a == "DescribeRouteTables"), "{actions:?}");

    // moto keeps deleted resources in data.json; state() leaves them out.
    east2.delete_vpc().vpc_id(&vpc2).send().await.expect("DeleteVpc");
    let raw = emu.raw_state();
    assert_eq!(tagged_for_env(&raw, "VPC", APP, ENV).len(), 2);
    let state = emu.state();
    assert_eq!(ids(&tagged_for_env(&state, "VPC", APP, ENV)), BTreeSet::from([vpc1.clone()]));
    // The extension's live view agrees.
    let live = emu.ec2_state();
    let live_vpcs = |region: &str| -> BTreeSet<String> {
        live[region]["vpcs"]
            .as_array()
            .unwrap_or_else(|| panic!("no vpcs for {region} in {live:#}"))
            .iter()
            .filter(|v| tag(v, "deployer:env").as_deref() == Some(ENV))
            .filter_map(|v| str_field(v, "id"))
            .collect()
    };
    assert_eq!(live_vpcs("us-east-1"), BTreeSet::from([vpc1]));
    assert!(live_vpcs("us-east-2").is_empty());

    emu.stop_recording();
    create_vpc(&east1, "10.40.0.0/16", ENV).await;
    let after = emu.recorded_actions();
    assert_eq!(after.last().map(String::as_str), Some("DeleteVpc"), "{after:?}");

    emu.reset();
    assert!(tagged_for_env(&emu.state(), "VPC", APP, ENV).is_empty());
}

/// Builds the shape the deployer builds (per region: VPC, subnet, internet gateway, EIP, NAT
/// gateway, route table with routes and a subnet association; one peering across regions) and
/// checks the data.json fields the support module documents.
#[tokio::test]
async fn network_shapes_in_data_json() {
    let emu = Emulator::start();
    let mut built = Vec::new();
    for (region, cidr, subnet_cidr) in
        [("us-east-1", "10.1.0.0/16", "10.1.1.0/24"), ("us-east-2", "10.2.0.0/16", "10.2.1.0/24")]
    {
        let ec2 = support::ec2_client(&emu, region).await;
        let vpc = create_vpc(&ec2, cidr, ENV).await;
        let subnet = ec2
            .create_subnet()
            .vpc_id(&vpc)
            .cidr_block(subnet_cidr)
            .availability_zone(format!("{region}a"))
            .tag_specifications(tags(ResourceType::Subnet, ENV))
            .send()
            .await
            .expect("CreateSubnet");
        let subnet = subnet.subnet().and_then(|s| s.subnet_id()).unwrap().to_owned();
        let igw = ec2
            .create_internet_gateway()
            .tag_specifications(tags(ResourceType::InternetGateway, ENV))
            .send()
            .await
            .expect("CreateInternetGateway");
        let igw = igw.internet_gateway().and_then(|g| g.internet_gateway_id()).unwrap().to_owned();
        ec2.attach_internet_gateway()
            .internet_gateway_id(&igw)
            .vpc_id(&vpc)
            .send()
            .await
            .expect("AttachInternetGateway");
        let eip = ec2
            .allocate_address()
            .domain(aws_sdk_ec2::types::DomainType::Vpc)
            .tag_specifications(tags(ResourceType::ElasticIp, ENV))
            .send()
            .await
            .expect("AllocateAddress");
        let eip = eip.allocation_id().unwrap().to_owned();
        let nat = ec2
            .create_nat_gateway()
            .subnet_id(&subnet)
            .allocation_id(&eip)
            .tag_specifications(tags(ResourceType::Natgateway, ENV))
            .send()
            .await
            .expect("CreateNatGateway");
        let nat = nat.nat_gateway().and_then(|n| n.nat_gateway_id()).unwrap().to_owned();
        let rtb = ec2
            .create_route_table()
            .vpc_id(&vpc)
            .tag_specifications(tags(ResourceType::RouteTable, ENV))
            .send()
            .await
            .expect("CreateRouteTable");
        let rtb = rtb.route_table().and_then(|t| t.route_table_id()).unwrap().to_owned();
        ec2.create_route()
            .route_table_id(&rtb)
            .destination_cidr_block("0.0.0.0/0")
            .gateway_id(&igw)
            .send()
            .await
            .expect("CreateRoute igw");
        ec2.create_route()
            .route_table_id(&rtb)
            .destination_cidr_block("192.168.0.0/16")
            .nat_gateway_id(&nat)
            .send()
            .await
            .expect("CreateRoute nat");
        ec2.associate_route_table()
            .route_table_id(&rtb)
            .subnet_id(&subnet)
            .send()
            .await
            .expect("AssociateRouteTable");
        built.push((region, ec2, vpc, subnet, igw, eip, nat, rtb));
    }
    let (_, east1, vpc1, _, _, _, _, rtb1) = &built[0];
    let (_, east2, vpc2, _, igw2, _, _, rtb2) = &built[1];
    let pcx = east1
        .create_vpc_peering_connection()
        .vpc_id(vpc1)
        .peer_vpc_id(vpc2)
        .peer_region("us-east-2")
        .tag_specifications(tags(ResourceType::VpcPeeringConnection, ENV))
        .send()
        .await
        .expect("CreateVpcPeeringConnection");
    let pcx = pcx.vpc_peering_connection().and_then(|p| p.vpc_peering_connection_id()).unwrap().to_owned();
    east1
        .create_route()
        .route_table_id(rtb1)
        .destination_cidr_block("10.2.0.0/16")
        .vpc_peering_connection_id(&pcx)
        .send()
        .await
        .expect("CreateRoute pcx");

    let state = emu.state();
    let pending = tagged_for_env(&state, "VPCPeeringConnection", APP, ENV);
    assert_eq!(pending.len(), 1);
    assert_eq!(peering_status(&pending[0]).as_deref(), Some("pending-acceptance"));

    east2
        .accept_vpc_peering_connection()
        .vpc_peering_connection_id(&pcx)
        .send()
        .await
        .expect("AcceptVpcPeeringConnection");

    let state = emu.state();
    let both = vec!["us-east-1".to_owned(), "us-east-2".to_owned()];
    for kind in ["VPC", "Subnet", "InternetGateway", "NatGateway", "ElasticAddress", "RouteTable"] {
        let objects = tagged_for_env(&state, kind, APP, ENV);
        assert_eq!(regions(&objects), both, "{kind}: {objects:#?}");
    }
    for (region, _, vpc, subnet, igw, eip, nat, rtb) in &built {
        let by_id = |kind: &str, id: &str| -> Value {
            ec2_objects(&state, kind)
                .into_iter()
                .find(|o| str_field(o, "id").as_deref() == Some(id))
                .unwrap_or_else(|| panic!("no {kind} {id}"))
        };
        let s = by_id("Subnet", subnet);
        assert_eq!(str_field(&s, "vpc_id").as_ref(), Some(vpc));
        assert_eq!(str_field(&s, "availability_zone"), Some(format!("{region}a")));
        let g = by_id("InternetGateway", igw);
        assert_eq!(g.pointer("/attachments/0/VpcId").and_then(Value::as_str), Some(vpc.as_str()));
        let attachments: Vec<Value> = ec2_objects(&state, "VPCGatewayAttachment")
            .into_iter()
            .filter(|a| str_field(a, "gateway_id").as_ref() == Some(igw))
            .collect();
        assert_eq!(attachments.len(), 1);
        assert_eq!(str_field(&attachments[0], "vpc_id").as_ref(), Some(vpc));
        let n = by_id("NatGateway", nat);
        assert_eq!(str_field(&n, "state").as_deref(), Some("available"));
        assert_eq!(str_field(&n, "subnet_id").as_ref(), Some(subnet));
        assert_eq!(
            n.pointer("/nat_gateway_addresses/0/allocationId").and_then(Value::as_str),
            Some(eip.as_str())
        );
        let e = by_id("ElasticAddress", eip);
        assert_eq!(str_field(&e, "domain").as_deref(), Some("vpc"));
        assert!(str_field(&e, "public_ip").is_some());
        let t = by_id("RouteTable", rtb);
        assert_eq!(str_field(&t, "vpc_id").as_ref(), Some(vpc));
        let associated: Vec<&str> = t["associations"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|a| a.get("SubnetId").and_then(Value::as_str))
            .collect();
        assert_eq!(associated, [subnet.as_str()]);

        let mut routes: Vec<(String, String)> = routes_of(&state, rtb)
            .iter()
            .map(|r| {
                assert_eq!(route_table_of(r).as_ref(), Some(rtb));
                assert_eq!(region_of(r).as_deref(), Some(*region));
                (route_destination(r).unwrap(), route_target(r).unwrap())
            })
            .collect();
        routes.sort();
        let vpc_cidr = str_field(&by_id("VPC", vpc), "cidr_block").unwrap();
        let mut want = vec![
            ("0.0.0.0/0".to_owned(), igw.clone()),
            ("192.168.0.0/16".to_owned(), nat.clone()),
            (vpc_cidr, "local".to_owned()),
        ];
        if *region == "us-east-1" {
            want.push(("10.2.0.0/16".to_owned(), pcx.clone()));
        }
        want.sort();
        assert_eq!(routes, want, "routes of {rtb}");
    }

    let peerings = tagged_for_env(&state, "VPCPeeringConnection", APP, ENV);
    assert_eq!(peerings.len(), 1);
    let p = &peerings[0];
    assert_eq!(peering_status(p).as_deref(), Some("active"));
    assert_eq!(region_of(p).as_deref(), Some("us-east-1"));
    assert_eq!(p.pointer("/requester_vpc_info/VpcId").and_then(Value::as_str), Some(vpc1.as_str()));
    assert_eq!(p.pointer("/requester_vpc_info/Region").and_then(Value::as_str), Some("us-east-1"));
    assert_eq!(p.pointer("/accepter_vpc_info/VpcId").and_then(Value::as_str), Some(vpc2.as_str()));
    assert_eq!(p.pointer("/accepter_vpc_info/Region").and_then(Value::as_str), Some("us-east-2"));

    // Tear part of it down: what is gone leaves state(), and what AWS keeps listing as
    // deleted (NAT gateways, peerings) says so.
    east1
        .delete_vpc_peering_connection()
        .vpc_peering_connection_id(&pcx)
        .send()
        .await
        .expect("DeleteVpcPeeringConnection");
    east2
        .delete_route()
        .route_table_id(rtb2)
        .destination_cidr_block("0.0.0.0/0")
        .send()
        .await
        .expect("DeleteRoute");
    let (_, _, _, _, _, eip2, nat2, _) = &built[1];
    east2.delete_nat_gateway().nat_gateway_id(nat2).send().await.expect("DeleteNatGateway");
    east2.release_address().allocation_id(eip2).send().await.expect("ReleaseAddress");
    east2
        .detach_internet_gateway()
        .internet_gateway_id(igw2)
        .vpc_id(vpc2)
        .send()
        .await
        .expect("DetachInternetGateway");

    let state = emu.state();
    let peerings = tagged_for_env(&state, "VPCPeeringConnection", APP, ENV);
    assert!(peerings.iter().all(is_deleted), "{peerings:#?}");
    let nats = tagged_for_env(&state, "NatGateway", APP, ENV);
    assert_eq!(nats.iter().filter(|n| !is_deleted(n)).count(), 1);
    assert_eq!(regions(&tagged_for_env(&state, "ElasticAddress", APP, ENV)), ["us-east-1"]);
    let routes2: Vec<String> = routes_of(&state, rtb2).iter().filter_map(route_destination).collect();
    assert!(!routes2.contains(&"0.0.0.0/0".to_owned()), "{routes2:?}");
    // The detached gateway still exists; its region comes from the EC2 API.
    let igw = ec2_objects(&state, "InternetGateway")
        .into_iter()
        .find(|g| str_field(g, "id").as_ref() == Some(igw2))
        .expect("the detached internet gateway");
    assert_eq!(region_of(&igw).as_deref(), Some("us-east-2"));
    assert!(!ec2_objects(&state, "VPCGatewayAttachment")
        .iter()
        .any(|a| str_field(a, "gateway_id").as_ref() == Some(igw2)));
}

#[test]
fn project_is_a_scratch_copy_of_config() {
    let project = Project::new();
    let repo_config = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    for entry in std::fs::read_dir(&repo_config).into_iter().flatten().flatten() {
        if entry.path().extension().is_some_and(|e| e == "toml") {
            assert!(project.path(&entry.file_name().to_string_lossy()).is_file());
        }
    }
    project.write("scratch.toml", "a = 1\n");
    project.edit("scratch.toml", |s| s.replace('1', "2"));
    assert_eq!(project.read("scratch.toml"), "a = 2\n");
    assert!(!repo_config.join("scratch.toml").exists());
}
