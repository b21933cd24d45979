//! Scenarios: the real binary against the emulator, judged by the emulator's own live state
//! (`/_deployer/ec2-state`), not by the deployer's view of itself.

mod support;

use std::collections::BTreeSet;

use serde_json::Value;
use support::{deployer, deployer_ok, stderr_text, stdout_json, stdout_text, Emulator, Project};

const REGIONS: [&str; 2] = ["us-east-1", "us-east-2"];
const ENV: &str = "local";

/// The objects of `kind` in `region` tagged for the `local` environment of `webapp`, minus
/// what AWS keeps around as history (deleted NAT gateways and peering connections).
/// The shipped configuration with only the network tier: these tests count and judge network
/// resources, and the other tiers have scenario tests of their own.
fn network_project() -> Project {
    let project = Project::new();
    project.disable("registry");
    project.disable("database");
    project.disable("service");
    project.disable("monitoring");
    project
}

fn ours(state: &Value, region: &str, kind: &str) -> Vec<Value> {
    state[region][kind]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|o| o["tags"]["deployer:app"] == "webapp" && o["tags"]["deployer:env"] == ENV)
        .filter(|o| !matches!(o["state"].as_str().or(o["status"].as_str()), Some("deleted" | "failed")))
        .cloned()
        .collect()
}

fn by_address<'a>(objects: &'a [Value], address: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["tags"]["deployer:address"] == address)
        .unwrap_or_else(|| panic!("nothing tagged {address} in {objects:#?}"))
}

fn routes(table: &Value) -> Vec<(String, String)> {
    table["routes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (r["destination"].as_str().unwrap().to_string(), r["target"].as_str().unwrap_or("").to_string())
        })
        .collect()
}

/// Sets keys in `[network]` of local.toml (the shipped file has a single NAT gateway).
fn set_network(project: &Project, az_count: usize, nat: &str) {
    project.edit("local.toml", |s| {
        s.replace("[network]\n", &format!("[network]\naz_count = {az_count}\n"))
            .replace("nat_gateways = \"single\"", &format!("nat_gateways = \"{nat}\""))
    });
}

/// Checks the whole network of both regions in the emulator's state.
fn assert_network(state: &Value, az_count: usize, nats_per_region: usize) {
    let peerings = ours(state, "us-east-1", "vpc_peering_connections");
    assert_eq!(peerings.len(), 1, "one peering connection: {peerings:#?}");
    let peering = &peerings[0];
    assert_eq!(peering["status"], "active");
    assert_eq!(peering["vpc_region"], "us-east-1");
    assert_eq!(peering["peer_region"], "us-east-2");
    assert_eq!(peering["requester_dns_resolution"], true);
    assert_eq!(peering["accepter_dns_resolution"], true);
    let pcx = peering["id"].as_str().unwrap();

    let mut cidrs = Vec::new();
    for region in REGIONS {
        let vpcs = ours(state, region, "vpcs");
        assert_eq!(vpcs.len(), 1, "{region}: one VPC");
        let vpc = &vpcs[0];
        assert_eq!(vpc["enable_dns_support"], true);
        assert_eq!(vpc["enable_dns_hostnames"], true);
        let vpc_id = vpc["id"].as_str().unwrap();
        cidrs.push(vpc["cidr_block"].as_str().unwrap().to_string());
        assert_eq!(peering[if region == "us-east-1" { "vpc_id" } else { "peer_vpc_id" }], vpc_id);

        let subnets = ours(state, region, "subnets");
        assert_eq!(subnets.len(), 2 * az_count, "{region}: subnets");
        let azs: BTreeSet<&str> = subnets.iter().map(|s| s["availability_zone"].as_str().unwrap()).collect();
        assert_eq!(azs.len(), az_count, "{region}: subnets in {az_count} distinct AZs");
        assert!(subnets.iter().all(|s| s["vpc_id"] == vpc_id));
        let public = subnets.iter().filter(|s| s["map_public_ip_on_launch"] == true).count();
        assert_eq!(public, az_count, "{region}: public subnets");

        let igws = ours(state, region, "internet_gateways");
        assert_eq!(igws.len(), 1);
        assert_eq!(igws[0]["vpc_id"], vpc_id, "{region}: IGW attached");
        let igw = igws[0]["id"].as_str().unwrap();

        let nats = ours(state, region, "nat_gateways");
        assert_eq!(nats.len(), nats_per_region, "{region}: NAT gateways");
        assert!(nats.iter().all(|n| n["state"] == "available"));
        let eips = ours(state, region, "addresses");
        assert_eq!(eips.len(), nats_per_region, "{region}: Elastic IPs");
        for nat in &nats {
            let subnet =
                subnets.iter().find(|s| s["id"] == nat["subnet_id"]).expect("NAT in one of our subnets");
            assert_eq!(subnet["map_public_ip_on_launch"], true, "NAT in a public subnet");
            assert!(eips.iter().any(|e| e["allocation_id"] == nat["allocation_id"]));
        }

        let tables = ours(state, region, "route_tables");
        assert_eq!(tables.len(), 1 + az_count, "{region}: route tables");
        let peer_cidr = if region == "us-east-1" { "10.100.0.0/16" } else { "10.90.0.0/16" };
        let public_table = by_address(&tables, &format!("{region}/network/route-table/public"));
        assert_eq!(public_table["associations"].as_array().unwrap().len(), az_count);
        for table in &tables {
            let r = routes(table);
            assert!(r.contains(&(peer_cidr.to_string(), pcx.to_string())), "{region}: peer route in {r:?}");
            let default = r.iter().find(|(d, _)| d == "0.0.0.0/0").expect("a default route");
            if table["id"] == public_table["id"] {
                assert_eq!(default.1, igw);
            } else {
                assert!(
                    nats.iter().any(|n| n["id"] == default.1.as_str()),
                    "private default route via our NAT"
                );
                assert_eq!(table["associations"].as_array().unwrap().len(), 1);
            }
        }
        for kind in ["vpcs", "subnets", "internet_gateways", "nat_gateways", "addresses", "route_tables"] {
            for o in ours(state, region, kind) {
                assert_eq!(o["tags"]["deployer:managed-by"], "deployer");
                assert!(o["tags"]["Name"].as_str().unwrap().starts_with("webapp-local-"));
                assert!(o["tags"]["deployer:address"].as_str().unwrap().starts_with(region));
            }
        }
    }
    assert_ne!(cidrs[0], cidrs[1]);
}

fn mutating(actions: &[String]) -> Vec<&String> {
    actions.iter().filter(|a| !support::is_read_action(a)).collect()
}

#[test]
fn up_builds_both_regions_and_a_second_run_changes_nothing() {
    let emu = Emulator::start();
    let project = network_project();
    let out = deployer_ok(&emu, &project, &["up", "--env", ENV, "--yes"]);
    assert!(stderr_text(&out).contains("Plan: 43 to create"), "{}", stderr_text(&out));
    assert_network(&emu.ec2_state(), 2, 1);

    let plan = deployer(&emu, &project, &["plan", "--env", ENV, "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(0), "{}", stdout_text(&plan));
    assert!(stdout_text(&plan).contains("No changes"));

    emu.start_recording();
    let again = deployer_ok(&emu, &project, &["up", "--env", ENV, "--yes", "--output", "json"]);
    let actions = emu.recorded_actions();
    assert!(!actions.is_empty(), "the second run read the environment");
    assert_eq!(mutating(&actions), Vec::<&String>::new(), "a converged environment gets no mutating call");
    let report = stdout_json(&again);
    assert_eq!(report["ok"], true);
    assert_eq!(report["calls"]["mutating"], 0);
    assert_eq!(report["calls"]["reads"].as_u64().unwrap() as usize, actions.len());
}

#[test]
fn drift_names_what_was_changed_out_of_band_and_up_repairs_it() {
    let emu = Emulator::start();
    let project = network_project();
    deployer_ok(&emu, &project, &["up", "--env", ENV, "--yes"]);
    let state = emu.ec2_state();
    let table =
        by_address(&ours(&state, "us-east-2", "route_tables"), "us-east-2/network/route-table/private-a")
            ["id"]
            .as_str()
            .unwrap()
            .to_string();
    let subnet_id = by_address(&ours(&state, "us-east-1", "subnets"), "us-east-1/network/subnet/private-b")
        ["id"]
        .as_str()
        .unwrap()
        .to_string();
    let private_b_table =
        by_address(&ours(&state, "us-east-1", "route_tables"), "us-east-1/network/route-table/private-b")
            ["id"]
            .as_str()
            .unwrap()
            .to_string();

    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let east2 = support::ec2_client(&emu, "us-east-2").await;
        east2
            .delete_route()
            .route_table_id(&table)
            .destination_cidr_block("10.90.0.0/16")
            .send()
            .await
            .unwrap();
        let east1 = support::ec2_client(&emu, "us-east-1").await;
        let rt = east1.describe_route_tables().route_table_ids(&private_b_table).send().await.unwrap();
        for assoc in rt.route_tables()[0].associations() {
            if assoc.subnet_id() == Some(subnet_id.as_str()) {
                let id = assoc.route_table_association_id().unwrap();
                east1.disassociate_route_table().association_id(id).send().await.unwrap();
            }
        }
        east1.delete_subnet().subnet_id(&subnet_id).send().await.unwrap();
    });

    let drift = deployer(&emu, &project, &["drift", "--env", ENV]);
    assert_eq!(drift.status.code(), Some(2), "{}", stderr_text(&drift));
    let text = stdout_text(&drift);
    assert!(text.contains("us-east-2/network/route/private-a:10.90.0.0/16"), "{text}");
    assert!(text.contains("us-east-1/network/subnet/private-b"), "{text}");
    let json = stdout_json(&deployer(&emu, &project, &["drift", "--env", ENV, "--output", "json"]));
    assert_eq!(json["counts"]["create"], 3, "{json:#}");

    deployer_ok(&emu, &project, &["up", "--env", ENV, "--yes"]);
    assert_network(&emu.ec2_state(), 2, 1);
    let clean = deployer(&emu, &project, &["drift", "--env", ENV]);
    assert_eq!(clean.status.code(), Some(0), "{}", stdout_text(&clean));
}

#[test]
fn more_azs_grow_the_network_and_fewer_remove_the_extra_subnets_and_nats() {
    let emu = Emulator::start();
    let project = network_project();
    set_network(&project, 3, "per-az");
    deployer_ok(&emu, &project, &["up", "--env", ENV, "--yes"]);
    assert_network(&emu.ec2_state(), 3, 3);

    project.edit("local.toml", |s| s.replace("az_count = 3", "az_count = 2"));
    let plan = deployer(&emu, &project, &["plan", "--env", ENV, "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(2));
    assert!(stdout_text(&plan).contains("- us-east-2/network/nat-gateway/c"), "{}", stdout_text(&plan));
    deployer_ok(&emu, &project, &["up", "--env", ENV, "--yes"]);
    assert_network(&emu.ec2_state(), 2, 2);
    let clean = deployer(&emu, &project, &["drift", "--env", ENV]);
    assert_eq!(clean.status.code(), Some(0), "{}", stdout_text(&clean));
}

#[test]
fn destroy_asks_and_then_leaves_nothing_in_either_region() {
    let emu = Emulator::start();
    let project = network_project();
    deployer_ok(&emu, &project, &["up", "--env", ENV, "--yes"]);

    let refused = deployer(&emu, &project, &["destroy", "--env", ENV]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(stderr_text(&refused).contains("--yes"), "{}", stderr_text(&refused));
    assert_network(&emu.ec2_state(), 2, 1);

    let out = deployer_ok(&emu, &project, &["destroy", "--env", ENV, "--yes"]);
    assert!(stderr_text(&out).contains("43 deleted"), "{}", stderr_text(&out));
    let state = emu.ec2_state();
    for region in REGIONS {
        for kind in [
            "vpcs",
            "subnets",
            "internet_gateways",
            "nat_gateways",
            "addresses",
            "route_tables",
            "vpc_peering_connections",
        ] {
            assert_eq!(ours(&state, region, kind), Vec::<Value>::new(), "{region} {kind} left after destroy");
        }
    }
    let status = stdout_json(&deployer_ok(&emu, &project, &["status", "--env", ENV, "--output", "json"]));
    assert!(status["regions"]["us-east-1"].as_array().unwrap().iter().all(|r| r["sync"] == "missing"));
    let again = deployer_ok(&emu, &project, &["destroy", "--env", ENV, "--yes"]);
    assert!(stderr_text(&again).contains("Nothing to destroy"));
}

#[test]
fn a_bad_config_is_rejected_before_any_request() {
    let emu = Emulator::start();
    let project = network_project();
    project
        .edit("local.toml", |s| s.replace("us-east-2 = \"10.100.0.0/16\"", "us-east-2 = \"10.90.128.0/17\""));
    emu.start_recording();
    let out = deployer(&emu, &project, &["up", "--env", ENV, "--yes"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr_text(&out);
    assert!(err.contains("local.toml") && err.contains("network.vpc_cidr.us-east-2"), "{err}");
    assert!(err.contains("overlaps"), "{err}");
    assert_eq!(emu.recorded_actions(), Vec::<String>::new(), "no AWS request for a bad config");

    let unknown = deployer(&emu, &project, &["plan", "--env", "nope"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(stderr_text(&unknown).contains("nope"), "{}", stderr_text(&unknown));
}

#[test]
fn status_shows_each_region() {
    let emu = Emulator::start();
    let project = network_project();
    deployer_ok(&emu, &project, &["up", "--env", ENV, "--yes", "-q"]);
    let text = stdout_text(&deployer_ok(&emu, &project, &["status", "--env", ENV]));
    assert!(text.contains("us-east-1 (primary): 22 resources"), "{text}");
    assert!(text.contains("us-east-2 (secondary): 21 resources"), "{text}");
    assert!(text.contains("Everything matches the configuration."), "{text}");
}

#[test]
fn a_held_lock_stops_a_second_writer_until_unlocked() {
    let emu = Emulator::start();
    let project = network_project();
    let holder = r#"{"who":"alice@ops-box","pid":4242,"command":"up","since":1700000000}"#;
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        aws_sdk_ssm::Client::new(&support::sdk_config(&emu, "us-east-1").await)
            .put_parameter()
            .name("/deployer/webapp/local/lock")
            .value(holder)
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .send()
            .await
            .unwrap();
    });

    emu.start_recording();
    let blocked = deployer(&emu, &project, &["up", "--env", ENV, "--yes"]);
    assert_eq!(blocked.status.code(), Some(1));
    let err = stderr_text(&blocked);
    assert!(err.contains("locked by alice@ops-box") && err.contains("deployer unlock --env local"), "{err}");
    assert_eq!(mutating(&emu.recorded_actions()), vec!["PutParameter"], "only the refused lock attempt");
    assert!(ours(&emu.ec2_state(), "us-east-1", "vpcs").is_empty());

    let released = deployer_ok(&emu, &project, &["unlock", "--env", ENV, "--yes"]);
    assert!(stderr_text(&released).contains("Lock released"));
    deployer_ok(&emu, &project, &["up", "--env", ENV, "--yes"]);
    assert_network(&emu.ec2_state(), 2, 1);
    // The run let go of its own lock.
    let after = deployer_ok(&emu, &project, &["unlock", "--env", ENV, "--yes"]);
    assert!(stderr_text(&after).contains("not locked"), "{}", stderr_text(&after));
}

/// How many times a recorded `up` read the environment: each read lists each region's RDS
/// parameter groups once (the database tier's kind, read whatever the tiers), and nothing else
/// in a network-only `up` does.
fn environment_reads(actions: &[String]) -> usize {
    actions.iter().filter(|a| *a == "DescribeDBParameterGroups").count() / REGIONS.len()
}

/// The lock's generation parameter in the primary region: (version, value), if it exists.
fn generation(emu: &Emulator) -> Option<(i64, String)> {
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let ssm = aws_sdk_ssm::Client::new(&support::sdk_config(emu, "us-east-1").await);
        let got = ssm.get_parameter().name("/deployer/webapp/local/generation").send().await.ok()?;
        let p = got.parameter()?;
        Some((p.version(), p.value()?.to_string()))
    })
}

#[test]
fn an_up_with_yes_reads_the_environment_again_under_the_lock_only_when_a_holder_came_since() {
    let emu = Emulator::start();
    let project = network_project();
    // A crashed run left the lock's generation `held` (and someone has since run `unlock`):
    // nothing says the environment stood still, so the run reads it again under the lock.
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        aws_sdk_ssm::Client::new(&support::sdk_config(&emu, "us-east-1").await)
            .put_parameter()
            .name("/deployer/webapp/local/generation")
            .value(r#"held {"who":"alice@ops-box","pid":4242,"command":"up","since":1700000000}"#)
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .send()
            .await
            .unwrap();
    });
    emu.start_recording();
    deployer_ok(&emu, &project, &["up", "--env", ENV, "--yes", "-q"]);
    emu.stop_recording();
    assert_eq!(environment_reads(&emu.recorded_actions()), 3, "before, under the lock, and the verification");
    let (version, value) = generation(&emu).expect("the generation");
    assert_eq!((version, value.as_str()), (3, "free"), "held by this run (2), then let go (3)");

    emu.start_recording();
    deployer_ok(&emu, &project, &["up", "--env", ENV, "--yes", "-q"]);
    emu.stop_recording();
    let converged = emu.recorded_actions();
    assert_eq!(environment_reads(&converged), 1);
    assert!(mutating(&converged).is_empty(), "a converged up takes no lock: {converged:?}");
    assert_eq!(generation(&emu).map(|g| g.0), Some(3));

    // An environment made before generations existed has none: its first changing run reads
    // the environment again under the lock (a `destroy` deletes a generation, so a missing one
    // proves nothing about a populated environment), and leaves one for the next.
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        aws_sdk_ssm::Client::new(&support::sdk_config(&emu, "us-east-1").await)
            .delete_parameter()
            .name("/deployer/webapp/local/generation")
            .send()
            .await
            .unwrap();
    });
    project.edit("local.toml", |s| s.replace("nat_gateways = \"single\"", "nat_gateways = \"per-az\""));
    emu.start_recording();
    deployer_ok(&emu, &project, &["up", "--env", ENV, "--yes", "-q"]);
    emu.stop_recording();
    assert_eq!(environment_reads(&emu.recorded_actions()), 3, "no generation, and something to read");
    assert_eq!(generation(&emu), Some((2, "free".to_string())));

    // `destroy --yes` trusts its first read the same way, and leaves nothing, the generation
    // included.
    emu.start_recording();
    deployer_ok(&emu, &project, &["destroy", "--env", ENV, "--yes", "-q"]);
    emu.stop_recording();
    assert_eq!(environment_reads(&emu.recorded_actions()), 2, "before the lock, and the verification");
    assert!(emu.inventory().is_empty(), "left after destroy: {:?}", emu.inventory());

    // Nobody held or took the lock between the read and this run's lock (the generation it
    // creates is version 1): the read before the lock is planned from, and the verification
    // is the only other one.
    emu.start_recording();
    deployer_ok(&emu, &project, &["up", "--env", ENV, "--yes", "-q"]);
    emu.stop_recording();
    let cold = emu.recorded_actions();
    assert_eq!(environment_reads(&cold), 2, "before the lock, and the verification: {cold:?}");
    assert_network(&emu.ec2_state(), 2, 2);
    assert_eq!(generation(&emu), Some((2, "free".to_string())));
    let clean = deployer(&emu, &project, &["drift", "--env", ENV]);
    assert_eq!(clean.status.code(), Some(0), "{}", stdout_text(&clean));
}

/// A generation deleted after a run read it (a `destroy` came and went) is recreated by that
/// run's overwrite, which carries no tags: the run tags it, and does not trust its read.
#[test]
fn a_lock_whose_generation_vanished_since_the_fence_recreates_it_tagged() {
    use deployer::lock;
    let emu = Emulator::start();
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let ssm = aws_sdk_ssm::Client::new(&support::sdk_config(&emu, "us-east-1").await);
        let name = "/deployer/webapp/local/generation";
        let put = ssm.put_parameter().name(name).value("free");
        put.r#type(aws_sdk_ssm::types::ParameterType::String).send().await.unwrap();
        let fence = lock::fence(&ssm, "webapp", "local").await.unwrap();
        ssm.delete_parameter().name(name).send().await.unwrap();

        let holder = lock::Holder::this_process("up");
        let held = lock::acquire(&ssm, "webapp", "local", &holder, Some(&fence)).await.unwrap();
        assert_eq!(held.bumped, 1, "recreated by the overwrite");
        assert!(!fence.unchanged_at(held.bumped, false), "a read after that fence is not trusted");
        held.release().await.unwrap();
        let tags = ssm
            .list_tags_for_resource()
            .resource_type(aws_sdk_ssm::types::ResourceTypeForTagging::Parameter)
            .resource_id(name)
            .send()
            .await
            .unwrap();
        let tags: Vec<(&str, &str)> = tags.tag_list().iter().map(|t| (t.key(), t.value())).collect();
        for tag in
            [("deployer:app", "webapp"), ("deployer:env", "local"), ("deployer:managed-by", "deployer")]
        {
            assert!(tags.contains(&tag), "{tag:?} on the recreated generation: {tags:?}");
        }
        let got = ssm.get_parameter().name(name).send().await.unwrap();
        assert_eq!(got.parameter().unwrap().value(), Some("free"), "let go of");
    });
}

#[test]
fn a_new_subnet_layout_replaces_subnets_nats_and_associations_in_one_run() {
    let emu = Emulator::start();
    let project = network_project();
    deployer_ok(&emu, &project, &["up", "--env", ENV, "--yes"]);
    // /20 → /21: every subnet moves, and the new public-b overlaps the old public-a.
    project.edit("local.toml", |s| s.replace("[network]\n", "[network]\nsubnet_prefix = 21\n"));
    let out = deployer_ok(&emu, &project, &["up", "--env", ENV, "--yes"]);
    assert!(stderr_text(&out).contains("to replace"), "{}", stderr_text(&out));
    let state = emu.ec2_state();
    assert_network(&state, 2, 1);
    let public_b =
        by_address(&ours(&state, "us-east-1", "subnets"), "us-east-1/network/subnet/public-b").clone();
    assert_eq!(public_b["cidr_block"], "10.90.8.0/21");
    let clean = deployer(&emu, &project, &["drift", "--env", ENV]);
    assert_eq!(clean.status.code(), Some(0), "{}", stdout_text(&clean));
}

#[test]
fn moving_the_first_az_with_a_single_nat_converges_in_one_run() {
    let emu = Emulator::start();
    let project = network_project();
    deployer_ok(&emu, &project, &["up", "--env", ENV, "--yes"]);
    // The single NAT gateway lives in the first AZ: it moves with it, and the new public
    // subnet takes the old one's CIDR.
    project.edit("local.toml", |s| {
        s + "\n[network.availability_zones]\nus-east-1 = [\"us-east-1d\", \"us-east-1b\"]\n"
    });
    deployer_ok(&emu, &project, &["up", "--env", ENV, "--yes"]);
    let state = emu.ec2_state();
    assert_network(&state, 2, 1);
    let azs: BTreeSet<String> = ours(&state, "us-east-1", "subnets")
        .iter()
        .map(|s| s["availability_zone"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(azs, BTreeSet::from(["us-east-1b".to_string(), "us-east-1d".to_string()]));
    let clean = deployer(&emu, &project, &["drift", "--env", ENV]);
    assert_eq!(clean.status.code(), Some(0), "{}", stdout_text(&clean));
}
