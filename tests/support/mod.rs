//! Support code for the scenario tests: the built `deployer` binary against an AWS emulator.
//!
//! Use it from an integration test (`tests/*.rs`) with `mod support;`:
//!
//! ```ignore
//! mod support;
//! use support::{deployer_ok, tagged_for_env, Emulator, Project};
//!
//! #[test]
//! fn up_builds_both_regions() {
//!     let emu = Emulator::start();
//!     let project = Project::new();
//!     deployer_ok(&emu, &project, &["up", "--env", "local", "--yes"]);
//!     let state = emu.state();
//!     assert_eq!(tagged_for_env(&state, "VPC", "webapp", "local").len(), 2);
//! }
//! ```
//!
//! The emulator is moto in server mode, pinned in `tests/emulator/requirements.txt` and
//! installed into `tests/emulator/.venv` by `scripts/test`, run through
//! `tests/emulator/deployer_emulator.py` (moto's server plus our extensions) when that exists.
//! Every [`Emulator`] is its own process on its own free port, so tests run in parallel without
//! sharing state.
//!
//! Two views of what exists, both independent of the deployer: [`Emulator::state`] (moto's
//! `/moto-api/data.json`, every model and field, pruned to live resources as described below)
//! and [`Emulator::ec2_state`] (the extension's compact, live `/_deployer/ec2-state`).
//!
//! # What `GET /moto-api/data.json` looks like (moto 5.2.5, verified with boto3)
//!
//! `state["ec2"][KIND]` is a list of every instance of that model class moto has *ever*
//! created: moto never removes an entry when the resource is deleted (a deleted VPC is still
//! listed as `"state": "available"`, and its tags stay), and a resource created again under the
//! same id (a route) is listed twice. [`Emulator::state`] therefore prunes the EC2 kinds in
//! [`LIVE_CHECKED_KINDS`] to what the EC2 API still returns, and [`Emulator::raw_state`] is the
//! unfiltered dump. Each object holds its model's JSON-serialisable attributes, snake_case.
//! Every region that was touched has its default VPC, default subnets, main route tables,
//! default security group and network ACL in the lists too (untagged).
//!
//! Tags: `"tag_set": [{"key", "value", "resource_id", "resource_type"}]` (and an identical
//! `"tag_list"`) on VPC, Subnet, InternetGateway, NatGateway, ElasticAddress, RouteTable,
//! VPCPeeringConnection, NetworkInterface, SecurityGroup, NetworkAcl.
//!
//! Region: only `VPC` (`"region"`) carries one. [`Emulator::state`] adds `"region"` to every
//! object of the checked kinds, from the region whose EC2 API returned it. Without that:
//! - `Subnet`, `NetworkInterface`: `"availability_zone"` (`"us-east-1a"`); Subnet also `"arn"`.
//! - `NatGateway`, `RouteTable`, `SecurityGroup`, `NetworkAcl`: `"vpc_id"` (NAT also `"subnet_id"`).
//! - `InternetGateway`: only through `"attachments": [{"VpcId", "State"}]`; unattached = unknown.
//! - `ElasticAddress`: only through `"network_interface_id"`; unassociated = unknown.
//! - `VPCGatewayAttachment`: `"vpc_id"`.
//!
//! Per kind (fields a test is likely to want):
//! - `VPC`: `id`, `region`, `cidr_block`, `cidr_block_association_set`, `is_default`, `state`,
//!   `enable_dns_support`, `enable_dns_hostnames`, `dhcp_options_id`, `instance_tenancy`.
//! - `Subnet`: `id`, `vpc_id`, `cidr_block`, `availability_zone`, `availability_zone_id`, `arn`,
//!   `map_public_ip_on_launch`, `default_for_az`, `state`.
//! - `InternetGateway`: `id`, `attachments: [{"VpcId", "State": "available"}]`,
//!   `attachment_state`; the attachment is also a `VPCGatewayAttachment`:
//!   `{gateway_id, vpc_id, state: null}` (no id, no tags).
//! - `NatGateway`: `id`, `subnet_id`, `vpc_id`, `state` (`"available"`, and `"deleted"` after
//!   DeleteNatGateway: deleted NAT gateways stay, as in AWS, see [`is_deleted`]),
//!   `connectivity_type` (null = public), `nat_gateway_addresses: [{"allocationId", "publicIp",
//!   "associationId", "networkInterfaceId", "privateIp"}]` (camelCase), `private_ip`.
//! - `ElasticAddress`: `id` = `allocation_id`, `public_ip`, `domain` (`"vpc"`), `association_id`,
//!   `network_interface_id`, `private_ip_address` (a NAT gateway's EIP is associated with the
//!   NAT's ENI, which is a `NetworkInterface` with `subnet_id`, `vpc_id`, `availability_zone`).
//! - `RouteTable`: `id` = `route_table_id`, `vpc_id`, `main_association_id`, `associations:
//!   [{"RouteTableAssociationId", "RouteTableId", "Main", "SubnetId"?, "AssociationState":
//!   {"State"}}]`. Subnet associations live here: `SubnetRouteTableAssociation` stays empty for
//!   API calls (moto only fills it from CloudFormation). There is no `routes` field.
//! - `Route`: `id` = `"{route_table_id}~{destination}"`: the table is the part before `~`
//!   ([`route_table_of`]). Destination: `destination_cidr_block`, else
//!   `destination_ipv6_cidr_block`, else `destination_prefix_list_id` ([`route_destination`]).
//!   Target ([`route_target`]): `gateway_id` (an `igw-…`, or `"local"` for the VPC's own route,
//!   which also has `"local": true`), `nat_gateway_id`, `vpc_peering_connection_id`,
//!   `transit_gateway_id`, `egress_only_internet_gateway_id`, `network_interface_id`,
//!   `instance_id`, `carrier_gateway_id`, `vpc_endpoint_id`; the unused ones are null.
//!   `origin` is `"CreateRouteTable"` or `"CreateRoute"`, `state` `"active"`. Routes have no
//!   tags and no region. ReplaceRoute edits the existing entry.
//! - `VPCPeeringConnection`: one entry per connection even across regions: `id`, `status:
//!   {"Code", "Message"}` with Code `pending-acceptance` → `active` (after Accept, which moto
//!   takes in either region) → `deleted` (stays listed, also by DescribeVpcPeeringConnections
//!   in both regions; [`peering_status`], [`is_deleted`]), `requester_vpc_info` and
//!   `accepter_vpc_info`: `{"OwnerId", "Region", "VpcId", "CidrBlock", "PeeringOptions"}`.
//!   [`Emulator::state`] gives it the requester's region.
//! - `EC2Backend`: one per touched region, `region_name` and `tags: {resource_id: {key: value}}`;
//!   [`Emulator::state`] drops its 3.5 MB `instance_types` table.

#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

/// The app name the support code's own AWS SDK clients put in their user agent, so that
/// [`Emulator::recorded_actions`] can leave their requests out.
pub const HARNESS_APP_NAME: &str = "deployer-test-harness";

/// The EC2 kinds in data.json that [`Emulator::state`] checks against the EC2 API (the
/// others are passed through as moto lists them).
pub const LIVE_CHECKED_KINDS: &[&str] = &[
    "VPC",
    "Subnet",
    "InternetGateway",
    "VPCGatewayAttachment",
    "NatGateway",
    "ElasticAddress",
    "RouteTable",
    "Route",
    "VPCPeeringConnection",
    "NetworkInterface",
    "SecurityGroup",
    "NetworkAcl",
];

const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_DEPLOYER_TIMEOUT: Duration = Duration::from_secs(300);

/// A moto server of its own, on a free port of 127.0.0.1, stopped when dropped.
///
/// It runs with `MOTO_ENABLE_RECORDING=True` (every request is recorded from the start; see
/// [`Emulator::start_recording`]) and `MOTO_EC2_LOAD_DEFAULT_AMIS=false` (no default AMIs,
/// which makes each region's first EC2 call and every data.json several times faster; pass
/// `("MOTO_EC2_LOAD_DEFAULT_AMIS", "true")` to [`Emulator::start_with_env`] if a test needs them).
pub struct Emulator {
    process: MotoProcess,
    port: u16,
    agent: ureq::Agent,
    /// Holds moto's log and recording; removed after the process (fields drop in order).
    dir: TempDir,
    /// How much faster than AWS the emulator's clock runs (`DEPLOYER_EMU_SCALE`, 0.01 unless
    /// the test sets it): the deployer is told the same, so that it polls at AWS's pace per
    /// the emulator's time (src/cloud/wait.rs).
    scale: String,
}

/// The moto process, plus the write end of its watchdog pipe: if this test process dies
/// without dropping the emulator, the pipe closes and the watchdog stops moto.
struct MotoProcess {
    child: Child,
    watchdog: Option<ChildStdin>,
}

impl MotoProcess {
    /// Tells the watchdog to exit without killing anything (we stop or reaped moto ourselves).
    fn stand_down_watchdog(&mut self) {
        if let Some(mut pipe) = self.watchdog.take() {
            let _ = pipe.write_all(b"\n");
        }
    }

    fn stop(&mut self) {
        self.stand_down_watchdog();
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// With `DEPLOYER_RECORD_ACTIONS_DIR` set (scripts/test sets it), every emulator writes the
/// IAM actions the deployer needed during its test there before it stops, one JSON file each:
/// `tests/iam_policy.rs` holds `deployer iam-policy` to the union of them.
impl Drop for Emulator {
    fn drop(&mut self) {
        let Some(dir) = std::env::var_os("DEPLOYER_RECORD_ACTIONS_DIR").filter(|d| !d.is_empty()) else {
            return;
        };
        let url = format!("{}/_deployer/model", self.url());
        let Ok(mut resp) = self.agent.get(&url).call() else { return };
        let Ok(body) = resp.body_mut().read_to_string() else { return };
        let Ok(report) = serde_json::from_str::<Value>(&body) else { return };
        let test = std::thread::current().name().unwrap_or("unnamed").replace("::", "-");
        let exe = std::env::current_exe()
            .ok()
            .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
            .unwrap_or_default();
        let _ = std::fs::create_dir_all(&dir);
        let file = std::path::Path::new(&dir).join(format!("{exe}-{test}-{}.json", self.port));
        let _ = std::fs::write(file, report["actions"].to_string());
    }
}

impl Drop for MotoProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Emulator {
    /// Starts a moto server and waits until it answers. Panics (with the server's log) if it
    /// cannot.
    pub fn start() -> Emulator {
        Emulator::start_with_env(&[])
    }

    /// Like [`Emulator::start`], with extra environment variables for moto
    /// (e.g. `("MOTO_ACM_VALIDATION_WAIT", "1")`).
    pub fn start_with_env(env: &[(&str, &str)]) -> Emulator {
        let moto = moto_server_path();
        let server = server_command(&moto);
        let dir = tempfile::Builder::new()
            .prefix("deployer-moto-")
            .tempdir()
            .expect("create a temp dir for the emulator");
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(120)))
            .proxy(None)
            .build()
            .into();
        let log_path = dir.path().join("moto.log");
        let scale = env
            .iter()
            .find(|(k, _)| *k == "DEPLOYER_EMU_SCALE")
            .map_or_else(|| "0.01".to_string(), |(_, v)| v.to_string());

        for attempt in 1.. {
            let port = free_port();
            let log = std::fs::File::create(&log_path).expect("create the emulator log");
            let log_err = log.try_clone().expect("clone the emulator log handle");
            // `sh` starts a watchdog that stops moto when the pipe on its stdin reaches EOF
            // without a line first (this process died), then execs moto, so the child's pid
            // is moto's.
            let mut child = Command::new("/bin/sh")
                .arg("-c")
                .arg(
                    r#"exec 3<&0
( if read -r _ <&3; then :; else kill "$$" 2>/dev/null; fi ) </dev/null >/dev/null 2>&1 &
port=$1; shift
exec "$@" -H 127.0.0.1 -p "$port" </dev/null"#,
                )
                .arg("emulator")
                .arg(port.to_string())
                .args(&server)
                .current_dir(dir.path())
                .env("MOTO_ENABLE_RECORDING", "True")
                .env("MOTO_RECORDER_FILEPATH", dir.path().join("moto_recording"))
                .env("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
                // ACM issues a DNS-validated certificate after this many seconds (AWS: minutes).
                .env("MOTO_ACM_VALIDATION_WAIT", "1")
                // The zone the local environment's certificates are validated in, as a real
                // account has its zone before anyone deploys.
                .env("DEPLOYER_EMU_HOSTED_ZONES", "deployer.test")
                .env("DEPLOYER_EMU_SCALE", &scale)
                .envs(env.iter().copied())
                .stdin(Stdio::piped())
                .stdout(log)
                .stderr(log_err)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {server:?}: {e}"));
            let watchdog = child.stdin.take();
            let mut process = MotoProcess { child, watchdog };
            match wait_until_ready(&agent, &mut process, port) {
                Ok(()) => return Emulator { process, port, agent, dir, scale },
                Err(why) => {
                    process.stop();
                    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                    // Another process took the port between free_port() and moto's bind.
                    if log.contains("Address already in use") && attempt < 5 {
                        continue;
                    }
                    panic!(
                        "the AWS emulator ({server:?}) did not start: {why}\n--- last lines of its log ---\n{}",
                        tail(&log, 40)
                    );
                }
            }
        }
        unreachable!()
    }

    /// The emulator's endpoint, e.g. `http://127.0.0.1:41235`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Everything moto has logged so far (one line per request, plus errors).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("moto.log")).unwrap_or_default()
    }

    /// The emulator's state: `GET /moto-api/data.json`, with the EC2 kinds in
    /// [`LIVE_CHECKED_KINDS`] reduced to the resources that still exist (moto lists deleted
    /// ones too), each of them with a `"region"`, and without `EC2Backend.instance_types`.
    /// The check is made with the EC2 API in every region the dump has an `EC2Backend` for
    /// (those calls carry [`HARNESS_APP_NAME`] and are not in [`Emulator::recorded_actions`]).
    pub fn state(&self) -> Value {
        let mut state = self.raw_state();
        let regions: Vec<String> = ec2_objects(&state, "EC2Backend")
            .iter()
            .filter_map(|b| b.get("region_name").and_then(Value::as_str))
            .map(str::to_owned)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let live = live_ec2(&self.url(), &regions);
        prune_to_live(&mut state, &live);
        if let Some(backends) = state.pointer_mut("/ec2/EC2Backend").and_then(Value::as_array_mut) {
            for backend in backends.iter_mut().filter_map(Value::as_object_mut) {
                backend.remove("instance_types");
            }
        }
        state
    }

    /// `GET /moto-api/data.json` exactly as moto returns it (deleted resources included).
    pub fn raw_state(&self) -> Value {
        let body = self.get_bytes("/moto-api/data.json");
        serde_json::from_slice(&body).unwrap_or_else(|e| panic!("data.json is not JSON: {e}"))
    }

    /// The live EC2 state served by `tests/emulator/deployer_emulator.py` at
    /// `GET /_deployer/ec2-state`, read straight from moto's backends (deleted resources are
    /// not in it): `{REGION: {"vpcs", "subnets", "internet_gateways", "nat_gateways",
    /// "addresses", "route_tables" (with "routes": [{"destination", "target"}] and
    /// "associations"), "vpc_peering_connections"}}`, each object with `"tags": {key: value}`
    /// ([`tag`] reads those too).
    pub fn ec2_state(&self) -> Value {
        let body = self.get_bytes("/_deployer/ec2-state");
        serde_json::from_slice(&body).unwrap_or_else(|e| panic!("/_deployer/ec2-state is not JSON: {e}"))
    }

    /// The AWS model's report (`GET /_deployer/model`, tests/emulator/aws_model.py): settings,
    /// call counts (`totals.mutating`, `totals.throttled`, …), the kill hook, the waits.
    pub fn model(&self) -> Value {
        let body = self.get_bytes("/_deployer/model");
        serde_json::from_slice(&body).unwrap_or_else(|e| panic!("/_deployer/model is not JSON: {e}"))
    }

    /// The IAM actions the deployer's requests needed so far, with how many requests each
    /// (`{"ec2:CreateVpc": 2, "cloudwatch:PutMetricAlarm": 30}`): the model's count of every
    /// request that was not the tests' own, by the service's IAM prefix and the operation.
    pub fn actions(&self) -> std::collections::BTreeMap<String, u64> {
        let report = self.model();
        report["actions"]
            .as_object()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0))).collect())
            .unwrap_or_default()
    }

    /// Everything the emulator holds that a run could have made, in every service and region
    /// (`GET /_deployer/inventory`, read from moto's backends: no request is recorded), as
    /// `"<service> <region> <kind> <id>"` lines, sorted; AWS's own defaults and what the emulator
    /// seeds are left out, so a fresh emulator's is empty. How leftovers are judged: an orphan
    /// has no tag to be found by.
    pub fn inventory(&self) -> Vec<String> {
        let body = self.get_bytes("/_deployer/inventory");
        let value: Value =
            serde_json::from_slice(&body).unwrap_or_else(|e| panic!("/_deployer/inventory is not JSON: {e}"));
        value["resources"]
            .as_array()
            .expect("inventory.resources")
            .iter()
            .map(|r| r.as_str().expect("an inventory line").to_string())
            .collect()
    }

    /// Changes the AWS model's settings (`POST /_deployer/model`), e.g.
    /// `json!({"throttle_rate": 0.0, "fault_rate": 0.0})`, and returns its report.
    pub fn set_model(&self, settings: Value) -> Value {
        let body = self.post_json("/_deployer/model", settings);
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("/_deployer/model answered {body}: {e}"))
    }

    /// POSTs a JSON body to one of the emulator's own endpoints (`/_deployer/codedeploy`,
    /// moto's `/moto-api/static/...`) and returns the answer's body.
    pub fn post_json(&self, path: &str, body: Value) -> String {
        let url = format!("{}{path}", self.url());
        let mut resp = self
            .agent
            .post(&url)
            .header("Content-Type", "application/json")
            .send(body.to_string())
            .unwrap_or_else(|e| panic!("POST {url}: {e}"));
        let status = resp.status();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        assert!(status.is_success(), "POST {url}: {status}: {text}");
        text
    }

    /// Forgets every resource (`POST /moto-api/reset`). The recording is kept.
    pub fn reset(&self) {
        self.post("/moto-api/reset");
    }

    /// Empties the request recording and records from now on.
    pub fn start_recording(&self) {
        self.post("/moto-api/recorder/reset-recording");
        self.post("/moto-api/recorder/start-recording");
    }

    /// Stops recording requests (the recording so far is kept).
    pub fn stop_recording(&self) {
        self.post("/moto-api/recorder/stop-recording");
    }

    /// The AWS operations recorded so far, in order, e.g. `["DescribeVpcs", "CreateVpc"]`.
    ///
    /// Query-protocol services (EC2, RDS, IAM, ELBv2, …) give their `Action=` form field;
    /// JSON services their `X-Amz-Target` operation; Smithy RPCv2 services the operation in the
    /// path; REST services (Route 53, …) `"METHOD /path"`. Requests to `/moto-api/` and those of
    /// the support code itself ([`HARNESS_APP_NAME`]) are left out.
    pub fn recorded_actions(&self) -> Vec<String> {
        let body = self.get_bytes("/moto-api/recorder/download-recording");
        String::from_utf8_lossy(&body)
            .lines()
            .filter(|line| !line.trim().is_empty())
            .filter_map(|line| {
                let entry: Value =
                    serde_json::from_str(line).unwrap_or_else(|e| panic!("bad recording line {line:?}: {e}"));
                recorded_action(&entry)
            })
            .collect()
    }

    fn get_bytes(&self, path: &str) -> Vec<u8> {
        let url = format!("{}{path}", self.url());
        let mut resp = self.agent.get(&url).call().unwrap_or_else(|e| panic!("GET {url}: {e}"));
        let status = resp.status();
        let body = resp
            .body_mut()
            .with_config()
            .limit(u64::MAX)
            .read_to_vec()
            .unwrap_or_else(|e| panic!("GET {url}: reading the body: {e}"));
        assert!(status.is_success(), "GET {url}: {status}: {}", String::from_utf8_lossy(&body));
        body
    }

    fn post(&self, path: &str) {
        let url = format!("{}{path}", self.url());
        let mut resp = self.agent.post(&url).send_empty().unwrap_or_else(|e| panic!("POST {url}: {e}"));
        let status = resp.status();
        let body = resp.body_mut().read_to_string().unwrap_or_default();
        assert!(status.is_success(), "POST {url}: {status}: {body}");
    }
}

fn wait_until_ready(agent: &ureq::Agent, process: &mut MotoProcess, port: u16) -> Result<(), String> {
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    let url = format!("http://127.0.0.1:{port}/moto-api/");
    loop {
        if let Some(status) = process.child.try_wait().map_err(|e| e.to_string())? {
            return Err(format!("it exited with {status}"));
        }
        if let Ok(resp) = agent.get(&url).call() {
            if resp.status().is_success() {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            return Err(format!("no answer on {url} within {}s", STARTUP_TIMEOUT.as_secs()));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The moto_server to run: `$DEPLOYER_MOTO_SERVER`, else the project's virtualenv.
fn moto_server_path() -> PathBuf {
    let path = match std::env::var_os("DEPLOYER_MOTO_SERVER") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/emulator/.venv/bin/moto_server"),
    };
    if !path.is_file() {
        panic!(
            "the AWS emulator is not installed: {} does not exist.\n\
             Run scripts/test, which creates the emulator virtualenv (or scripts/emulator-venv, \
             then cargo test), or point DEPLOYER_MOTO_SERVER at a moto_server.",
            path.display()
        );
    }
    path
}

/// The Python of the emulator's virtualenv (next to its `moto_server`), which has boto3: for a
/// test that must read what the deployer may not, e.g. a secret's value.
pub fn emulator_python() -> PathBuf {
    moto_server_path().with_file_name("python")
}

/// What to run: `tests/emulator/deployer_emulator.py` (moto's server plus our extensions,
/// e.g. `/_deployer/ec2-state`) with the Python next to `moto`, if both exist; else `moto` itself.
fn server_command(moto: &Path) -> Vec<PathBuf> {
    let extensions = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/emulator/deployer_emulator.py");
    let python = moto.with_file_name("python");
    if extensions.is_file() && python.is_file() {
        vec![python, extensions]
    } else {
        vec![moto.to_path_buf()]
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("find a free port on 127.0.0.1")
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

// ---------------------------------------------------------------------------------------------
// The request recording

/// The operation name of one recorded request, or None for moto-api and harness requests.
fn recorded_action(entry: &Value) -> Option<String> {
    let header = |name: &str| -> Option<&str> {
        entry.get("headers")?.as_object()?.iter().find(|(k, _)| k.eq_ignore_ascii_case(name))?.1.as_str()
    };
    let from_harness = ["User-Agent", "X-Amz-User-Agent"]
        .iter()
        .any(|h| header(h).is_some_and(|ua| ua.contains(HARNESS_APP_NAME)));
    if from_harness {
        return None;
    }
    let url = entry.get("url").and_then(Value::as_str).unwrap_or("");
    let path = url_path(url);
    if path.starts_with("/moto-api") {
        return None;
    }

    let raw_body = entry.get("body").and_then(Value::as_str).unwrap_or("");
    let body = if entry.get("body_encoded").and_then(Value::as_bool) == Some(true) {
        base64_decode(raw_body).unwrap_or_default()
    } else {
        raw_body.as_bytes().to_vec()
    };
    let form_action = String::from_utf8_lossy(&body).split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == "Action").then(|| percent_decode(v))
    });
    if let Some(action) = form_action {
        return Some(action);
    }
    // Query protocol over GET puts the form in the query string.
    if let Some((_, query)) = url.split_once('?') {
        let action = query.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            (k == "Action").then(|| percent_decode(v))
        });
        if action.is_some() {
            return action;
        }
    }
    if let Some(target) = header("X-Amz-Target") {
        return Some(target.rsplit('.').next().unwrap_or(target).to_owned());
    }
    if let Some((_, op)) = path.split_once("/operation/") {
        return Some(op.trim_end_matches('/').to_owned());
    }
    let method = entry.get("method").and_then(Value::as_str).unwrap_or("?");
    Some(format!("{method} {path}"))
}

fn url_path(url: &str) -> &str {
    let without_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = without_scheme.find('/').map_or("/", |i| &without_scheme[i..]);
    path.split('?').next().unwrap_or(path)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Decodes standard base64 (with or without padding; whitespace ignored).
fn base64_decode(input: &str) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        match c {
            b'A'..=b'Z' => Some(u32::from(c - b'A')),
            b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
            b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
            b'+' | b'-' => Some(62),
            b'/' | b'_' => Some(63),
            _ => None,
        }
    }
    let mut out = Vec::with_capacity(input.len() / 4 * 3);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in input.bytes() {
        if c == b'=' {
            break;
        }
        if c.is_ascii_whitespace() {
            continue;
        }
        acc = (acc << 6) | value(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

// ---------------------------------------------------------------------------------------------
// Which EC2 resources still exist: asked of the EC2 API, since data.json keeps deleted ones.

/// kind → key (see [`live_key`]) → region whose EC2 API returned it.
type LiveEc2 = HashMap<&'static str, HashMap<String, String>>;

/// The key data.json objects of `kind` are matched on: the id, or `"{igw}~{vpc}"` for a
/// `VPCGatewayAttachment` (which has none).
fn live_key(kind: &str, obj: &Value) -> Option<String> {
    let s = |k: &str| obj.get(k).and_then(Value::as_str).map(str::to_owned);
    match kind {
        "VPCGatewayAttachment" => Some(format!("{}~{}", s("gateway_id")?, s("vpc_id")?)),
        _ => s("id"),
    }
}

fn live_ec2(endpoint: &str, regions: &[String]) -> LiveEc2 {
    let endpoint = endpoint.to_owned();
    let regions = regions.to_vec();
    // A thread with a runtime of its own, so this works from plain and from async tests.
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("build a tokio runtime")
            .block_on(async move {
                let mut live = LiveEc2::new();
                for region in &regions {
                    let client = harness_ec2_client(&endpoint, region);
                    if let Err(e) = describe_live(&client, region, &mut live).await {
                        panic!("asking the emulator which EC2 resources exist: {e}");
                    }
                }
                live
            })
    })
    .join()
    .unwrap_or_else(|e| std::panic::resume_unwind(e))
}

/// An EC2 client for the support code's own calls: dummy credentials, no profile or
/// environment configuration, marked with [`HARNESS_APP_NAME`].
fn harness_ec2_client(endpoint: &str, region: &str) -> aws_sdk_ec2::Client {
    use aws_sdk_ec2::config::{AppName, BehaviorVersion, Credentials, Region};
    let config = aws_sdk_ec2::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .app_name(AppName::new(HARNESS_APP_NAME).expect("valid app name"))
        .build();
    aws_sdk_ec2::Client::from_conf(config)
}

async fn describe_live(ec2: &aws_sdk_ec2::Client, region: &str, live: &mut LiveEc2) -> Result<(), String> {
    use aws_sdk_ec2::error::DisplayErrorContext;
    let err = |op: &str| {
        let op = op.to_owned();
        let region = region.to_owned();
        move |e: &dyn std::fmt::Display| format!("{op} in {region}: {e}")
    };
    let mut add = |kind: &'static str, key: Option<&str>| {
        if let Some(key) = key {
            live.entry(kind).or_default().entry(key.to_owned()).or_insert_with(|| region.to_owned());
        }
    };

    let vpcs: Vec<_> = ec2
        .describe_vpcs()
        .into_paginator()
        .items()
        .send()
        .collect::<Result<_, _>>()
        .await
        .map_err(|e| err("DescribeVpcs")(&DisplayErrorContext(e)))?;
    for v in &vpcs {
        add("VPC", v.vpc_id());
    }

    let subnets: Vec<_> = ec2
        .describe_subnets()
        .into_paginator()
        .items()
        .send()
        .collect::<Result<_, _>>()
        .await
        .map_err(|e| err("DescribeSubnets")(&DisplayErrorContext(e)))?;
    for s in &subnets {
        add("Subnet", s.subnet_id());
    }

    let igws: Vec<_> = ec2
        .describe_internet_gateways()
        .into_paginator()
        .items()
        .send()
        .collect::<Result<_, _>>()
        .await
        .map_err(|e| err("DescribeInternetGateways")(&DisplayErrorContext(e)))?;
    for igw in &igws {
        add("InternetGateway", igw.internet_gateway_id());
        for a in igw.attachments() {
            if let (Some(g), Some(v)) = (igw.internet_gateway_id(), a.vpc_id()) {
                add("VPCGatewayAttachment", Some(&format!("{g}~{v}")));
            }
        }
    }

    let nats: Vec<_> = ec2
        .describe_nat_gateways()
        .into_paginator()
        .items()
        .send()
        .collect::<Result<_, _>>()
        .await
        .map_err(|e| err("DescribeNatGateways")(&DisplayErrorContext(e)))?;
    for n in &nats {
        add("NatGateway", n.nat_gateway_id());
    }

    let addresses = ec2
        .describe_addresses()
        .send()
        .await
        .map_err(|e| err("DescribeAddresses")(&DisplayErrorContext(e)))?;
    for a in addresses.addresses() {
        add("ElasticAddress", a.allocation_id());
    }

    let tables: Vec<_> = ec2
        .describe_route_tables()
        .into_paginator()
        .items()
        .send()
        .collect::<Result<_, _>>()
        .await
        .map_err(|e| err("DescribeRouteTables")(&DisplayErrorContext(e)))?;
    for t in &tables {
        let Some(table_id) = t.route_table_id() else {
            continue;
        };
        add("RouteTable", Some(table_id));
        for r in t.routes() {
            let destination = r
                .destination_cidr_block()
                .or(r.destination_ipv6_cidr_block())
                .or(r.destination_prefix_list_id());
            if let Some(d) = destination {
                add("Route", Some(&format!("{table_id}~{d}")));
            }
        }
    }

    let peerings: Vec<_> = ec2
        .describe_vpc_peering_connections()
        .into_paginator()
        .items()
        .send()
        .collect::<Result<_, _>>()
        .await
        .map_err(|e| err("DescribeVpcPeeringConnections")(&DisplayErrorContext(e)))?;
    for p in &peerings {
        add("VPCPeeringConnection", p.vpc_peering_connection_id());
    }

    let enis: Vec<_> = ec2
        .describe_network_interfaces()
        .into_paginator()
        .items()
        .send()
        .collect::<Result<_, _>>()
        .await
        .map_err(|e| err("DescribeNetworkInterfaces")(&DisplayErrorContext(e)))?;
    for n in &enis {
        add("NetworkInterface", n.network_interface_id());
    }

    let groups: Vec<_> = ec2
        .describe_security_groups()
        .into_paginator()
        .items()
        .send()
        .collect::<Result<_, _>>()
        .await
        .map_err(|e| err("DescribeSecurityGroups")(&DisplayErrorContext(e)))?;
    for g in &groups {
        add("SecurityGroup", g.group_id());
    }

    let acls: Vec<_> = ec2
        .describe_network_acls()
        .into_paginator()
        .items()
        .send()
        .collect::<Result<_, _>>()
        .await
        .map_err(|e| err("DescribeNetworkAcls")(&DisplayErrorContext(e)))?;
    for a in &acls {
        add("NetworkAcl", a.network_acl_id());
    }
    Ok(())
}

/// Keeps, for each kind in [`LIVE_CHECKED_KINDS`], the last data.json entry of every resource
/// the EC2 API still returns, and gives it a `"region"` if it has none.
fn prune_to_live(state: &mut Value, live: &LiveEc2) {
    let Some(ec2) = state.get_mut("ec2").and_then(Value::as_object_mut) else {
        return;
    };
    let empty = HashMap::new();
    for &kind in LIVE_CHECKED_KINDS {
        let Some(list) = ec2.get_mut(kind).and_then(Value::as_array_mut) else {
            continue;
        };
        let alive = live.get(kind).unwrap_or(&empty);
        let mut seen = HashSet::new();
        let mut kept = Vec::new();
        for mut obj in list.drain(..).rev() {
            let Some(key) = live_key(kind, &obj) else {
                continue;
            };
            let Some(region) = alive.get(&key) else {
                continue;
            };
            if !seen.insert(key) {
                continue;
            }
            let region = match kind {
                "VPCPeeringConnection" => obj
                    .pointer("/requester_vpc_info/Region")
                    .and_then(Value::as_str)
                    .unwrap_or(region)
                    .to_owned(),
                _ => region.clone(),
            };
            if let Some(map) = obj.as_object_mut() {
                map.entry("region").or_insert(Value::String(region));
            }
            kept.push(obj);
        }
        kept.reverse();
        *list = kept;
    }
}

// ---------------------------------------------------------------------------------------------
// Reading the state

/// The objects of one EC2 kind (`"VPC"`, `"Subnet"`, `"Route"`, …; see the module docs), or
/// none if the kind is unknown.
pub fn ec2_objects(state: &Value, kind: &str) -> Vec<Value> {
    state.get("ec2").and_then(|ec2| ec2.get(kind)).and_then(Value::as_array).cloned().unwrap_or_default()
}

/// The objects of one EC2 kind tagged `deployer:app` = `app` and `deployer:env` = `env`.
pub fn tagged_for_env(state: &Value, kind: &str, app: &str, env: &str) -> Vec<Value> {
    ec2_objects(state, kind)
        .into_iter()
        .filter(|o| {
            tag(o, "deployer:app").as_deref() == Some(app) && tag(o, "deployer:env").as_deref() == Some(env)
        })
        .collect()
}

/// The value of tag `key` on a data.json object: from `tag_set` (EC2) or `tag_list`, as
/// `[{"key", "value"}]` or `[{"Key", "Value"}]`, or from a `tags` map or list.
pub fn tag(obj: &Value, key: &str) -> Option<String> {
    for field in ["tag_set", "tag_list", "tags"] {
        match obj.get(field) {
            Some(Value::Array(tags)) => {
                for t in tags {
                    let k = t.get("key").or_else(|| t.get("Key")).and_then(Value::as_str);
                    if k == Some(key) {
                        let v = t.get("value").or_else(|| t.get("Value"));
                        return v.and_then(Value::as_str).map(str::to_owned);
                    }
                }
            }
            Some(Value::Object(map)) => {
                if let Some(v) = map.get(key).and_then(Value::as_str) {
                    return Some(v.to_owned());
                }
            }
            _ => {}
        }
    }
    None
}

/// The region of a data.json object: its `"region"` (which [`Emulator::state`] adds to the
/// checked kinds), else from `region_name`, `availability_zone`, an ARN, or a peering's
/// requester. None when the object alone does not say (e.g. from [`Emulator::raw_state`]).
pub fn region_of(obj: &Value) -> Option<String> {
    let s = |k: &str| obj.get(k).and_then(Value::as_str).filter(|v| !v.is_empty());
    if let Some(r) = s("region").or_else(|| s("region_name")) {
        return Some(r.to_owned());
    }
    if let Some(az) = s("availability_zone") {
        return Some(az.trim_end_matches(|c: char| c.is_ascii_alphabetic()).to_owned());
    }
    if let Some(arn) = s("arn") {
        if let Some(r) = arn.split(':').nth(3).filter(|r| !r.is_empty()) {
            return Some(r.to_owned());
        }
    }
    obj.pointer("/requester_vpc_info/Region").and_then(Value::as_str).map(str::to_owned)
}

/// A string field of an object (None if missing, null or not a string).
pub fn str_field(obj: &Value, key: &str) -> Option<String> {
    obj.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// The id of the route table a `Route` belongs to (its id is `"{table}~{destination}"`).
pub fn route_table_of(route: &Value) -> Option<String> {
    let id = route.get("id")?.as_str()?;
    id.split_once('~').map(|(table, _)| table.to_owned())
}

/// A `Route`'s destination: its IPv4 CIDR, else IPv6 CIDR, else prefix list id.
pub fn route_destination(route: &Value) -> Option<String> {
    ["destination_cidr_block", "destination_ipv6_cidr_block", "destination_prefix_list_id"]
        .iter()
        .find_map(|k| str_field(route, k))
}

/// A `Route`'s target: an `igw-…`, `nat-…`, `pcx-…`, … id, or `"local"`.
pub fn route_target(route: &Value) -> Option<String> {
    [
        "gateway_id",
        "nat_gateway_id",
        "vpc_peering_connection_id",
        "transit_gateway_id",
        "egress_only_internet_gateway_id",
        "network_interface_id",
        "instance_id",
        "carrier_gateway_id",
        "vpc_endpoint_id",
    ]
    .iter()
    .find_map(|k| str_field(route, k))
}

/// The routes of one route table, from a state.
pub fn routes_of(state: &Value, route_table_id: &str) -> Vec<Value> {
    ec2_objects(state, "Route")
        .into_iter()
        .filter(|r| route_table_of(r).as_deref() == Some(route_table_id))
        .collect()
}

/// The status code of a `VPCPeeringConnection`: `pending-acceptance`, `active`, `deleted`, ….
pub fn peering_status(peering: &Value) -> Option<String> {
    peering.pointer("/status/Code").and_then(Value::as_str).map(str::to_owned)
}

/// Whether an object is a deleted resource that AWS (and moto) still lists for a while: a NAT
/// gateway in state `deleting`/`deleted`, or a peering connection that is `deleted`,
/// `rejected`, `failed` or `expired`.
pub fn is_deleted(obj: &Value) -> bool {
    let nat_gone = matches!(obj.get("state").and_then(Value::as_str), Some("deleting" | "deleted"))
        && obj.get("nat_gateway_addresses").is_some();
    let peering_gone = matches!(
        peering_status(obj).as_deref(),
        Some("deleted" | "deleting" | "rejected" | "failed" | "expired")
    );
    nat_gone || peering_gone
}

// ---------------------------------------------------------------------------------------------
// The project under test

/// A scratch copy of the repository's `config/` directory (its `*.toml` files), for the
/// deployer's `--config-dir`. Tests may change it freely.
pub struct Project {
    dir: TempDir,
}

impl Default for Project {
    fn default() -> Self {
        Project::new()
    }
}

impl Project {
    /// Copies every `config/*.toml` of the repository into a new temp dir.
    pub fn new() -> Project {
        let project = Project::empty();
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
        if let Ok(entries) = std::fs::read_dir(&source) {
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_file() && path.extension().is_some_and(|e| e == "toml") {
                    let to = project.dir.path().join(entry.file_name());
                    std::fs::copy(&path, &to)
                        .unwrap_or_else(|e| panic!("copy {} to {}: {e}", path.display(), to.display()));
                }
            }
        }
        project
    }

    /// A project with no config files at all.
    pub fn empty() -> Project {
        let dir =
            tempfile::Builder::new().prefix("deployer-config-").tempdir().expect("create a temp config dir");
        Project { dir }
    }

    /// The config directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The path of one file in it, e.g. `path("local.toml")`.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The contents of one file. Panics if it does not exist.
    pub fn read(&self, name: &str) -> String {
        let path = self.path(name);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
    }

    /// Creates or replaces one file.
    pub fn write(&self, name: &str, contents: &str) {
        let path = self.path(name);
        std::fs::write(&path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }

    /// Rewrites one file through `change`. Panics if it does not exist.
    pub fn edit(&self, name: &str, change: impl FnOnce(String) -> String) {
        let contents = change(self.read(name));
        self.write(name, &contents);
    }

    /// Turns a tier (`registry`, `database`, `service` with `dns`) off in `local.toml`, so a test of another tier
    /// neither waits for it nor counts its resources.
    pub fn disable(&self, tier: &str) {
        // DNS failover points at the service's load balancers: it goes with the service.
        if tier == "service" {
            self.disable("dns");
        }
        self.edit("local.toml", |s| {
            let header = format!("[{tier}]\n");
            match s.find(&header) {
                Some(at) => {
                    let body = at + header.len();
                    let end = s[body..].find("\n[").map_or(s.len(), |i| body + i);
                    let section = s[body..end].replace("enabled = true", "enabled = false");
                    let section = if section.contains("enabled =") {
                        section
                    } else {
                        format!("enabled = false\n{section}")
                    };
                    format!("{}{section}{}", &s[..body], &s[end..])
                }
                None => format!("{s}\n{header}enabled = false\n"),
            }
        });
    }
}

// ---------------------------------------------------------------------------------------------
// Running the deployer

/// The deployer binary as the tests run it: `--config-dir <project>` first, talking to `emu`
/// with dummy credentials and no AWS settings from the environment (every `AWS_*` variable is
/// removed first, and the shared config/credentials files point nowhere), `NO_COLOR=1`, no
/// `RUST_LOG`, stdin null. Add arguments and run it with [`run`], or use [`deployer`].
///
/// The binary is `$DEPLOYER_BIN` when set, else the one cargo built for these tests. Worktrees
/// sharing one `CARGO_TARGET_DIR` share `target/debug/deployer` too, and another worktree's
/// build replaces it under a running suite: point `DEPLOYER_BIN` at a copy of your own build.
pub fn deployer_command(emu: &Emulator, project: &Project) -> Command {
    let bin = std::env::var_os("DEPLOYER_BIN")
        .filter(|p| !p.is_empty())
        .map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_deployer")), PathBuf::from);
    let mut cmd = Command::new(bin);
    cmd.arg("--config-dir").arg(project.dir());
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("AWS_") {
            cmd.env_remove(&name);
        }
    }
    // Empty shared config files: no profile from the machine leaks in (and the SDK has
    // nothing to warn about).
    let nowhere = project.dir().join(".no-aws-config");
    std::fs::create_dir_all(&nowhere).expect("create the empty AWS config directory");
    for file in ["config", "credentials"] {
        if !nowhere.join(file).exists() {
            std::fs::write(nowhere.join(file), "").expect("write an empty AWS config file");
        }
    }
    cmd.env("AWS_ENDPOINT_URL", emu.url())
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", nowhere.join("config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", nowhere.join("credentials"))
        .env("NO_COLOR", "1")
        .env("DEPLOYER_EMU_SCALE", &emu.scale)
        .env_remove("RUST_LOG")
        .env_remove("CLICOLOR_FORCE")
        .stdin(Stdio::null());
    cmd
}

/// Runs `deployer --config-dir <project> ARGS…` against `emu` (see [`deployer_command`]) and
/// returns its output, whatever its exit status.
pub fn deployer(emu: &Emulator, project: &Project, args: &[&str]) -> Output {
    let mut cmd = deployer_command(emu, project);
    cmd.args(args);
    run(cmd)
}

/// Runs the deployer like [`deployer`], through `sh` so that its pid is in `pidfile` before it
/// starts (the emulator's crash hook, `DEPLOYER_EMU_KILL_PIDFILE`, kills that pid).
pub fn deployer_with_pidfile(emu: &Emulator, project: &Project, args: &[&str], pidfile: &Path) -> Output {
    let inner = deployer_command(emu, project);
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c").arg("echo $$ > \"$0\"; exec \"$@\"").arg(pidfile).arg(inner.get_program());
    cmd.args(inner.get_args()).args(args);
    for (key, value) in inner.get_envs() {
        match value {
            Some(v) => cmd.env(key, v),
            None => cmd.env_remove(key),
        };
    }
    cmd.stdin(Stdio::null());
    run(cmd)
}

/// Like [`deployer`], and panics with its stdout and stderr unless it exits 0.
pub fn deployer_ok(emu: &Emulator, project: &Project, args: &[&str]) -> Output {
    let out = deployer(emu, project, args);
    if !out.status.success() {
        panic!("`deployer {}` failed with {}\n{}", args.join(" "), out.status, show_output(&out));
    }
    out
}

/// Runs a command to completion and captures its output. Kills it and panics after
/// `DEPLOYER_TEST_TIMEOUT_SECS` (default 300) seconds, so a hung deployer fails its test.
pub fn run(mut cmd: Command) -> Output {
    let timeout = std::env::var("DEPLOYER_TEST_TIMEOUT_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(DEFAULT_DEPLOYER_TIMEOUT, Duration::from_secs);
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let reader = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            buf
        })
    };
    let stdout = reader(Box::new(child.stdout.take().expect("piped stdout")));
    let stderr = reader(Box::new(child.stderr.take().expect("piped stderr")));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the command") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = Output {
                status: child.wait().expect("reap the command"),
                stdout: stdout.join().unwrap_or_default(),
                stderr: stderr.join().unwrap_or_default(),
            };
            panic!(
                "{cmd:?} did not finish within {}s (DEPLOYER_TEST_TIMEOUT_SECS)\n{}",
                timeout.as_secs(),
                show_output(&out)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output { status, stdout: stdout.join().unwrap_or_default(), stderr: stderr.join().unwrap_or_default() }
}

/// The stdout of a run as JSON (for `--output json`). Panics with the output if it is not.
/// The final report of a `--output json` run (its last line, `"type": "report"`), after
/// checking the JSON Lines contract: every line an object with a `type`, exactly one report,
/// last. (`iam-policy` prints the policy document itself: returned as it is.) With
/// `DEPLOYER_JSON_OUTPUT_DIR` set (scripts/test sets it), each output is also kept there, for
/// the suite's last step to validate against docs/output.schema.json.
pub fn stdout_json(out: &Output) -> Value {
    if let Ok(document) = serde_json::from_slice::<Value>(&out.stdout) {
        if document.get("type").is_none() {
            return document; // iam-policy's document
        }
    }
    let lines = stdout_json_lines(out);
    lines.last().cloned().expect("a report line")
}

/// Every line of a `--output json` run's stdout, checked as [`stdout_json`] says.
pub fn stdout_json_lines(out: &Output) -> Vec<Value> {
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("stdout line is not JSON: {e}: {l}\n{}", show_output(out)))
        })
        .collect();
    for l in &lines {
        assert!(
            l.get("type").and_then(Value::as_str).is_some(),
            "a line without a type: {l}\n{}",
            show_output(out)
        );
    }
    let reports = lines.iter().filter(|l| l["type"] == "report").count();
    assert_eq!(reports, 1, "exactly one report line\n{}", show_output(out));
    assert_eq!(lines.last().map(|l| &l["type"]), Some(&Value::from("report")), "the report comes last");
    if let Some(dir) = std::env::var_os("DEPLOYER_JSON_OUTPUT_DIR").filter(|d| !d.is_empty()) {
        let dir = std::path::PathBuf::from(dir);
        let _ = std::fs::create_dir_all(&dir);
        let name = format!(
            "{}-{}.jsonl",
            std::process::id(),
            JSON_OUTPUTS.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        );
        let _ = std::fs::write(dir.join(name), &out.stdout);
    }
    lines
}

static JSON_OUTPUTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The stdout of a run as text.
pub fn stdout_text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The stderr of a run as text.
pub fn stderr_text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn show_output(out: &Output) -> String {
    format!(
        "--- stdout ---\n{}\n--- stderr ---\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Whether a recorded action (see [`Emulator::recorded_actions`]) only reads: its operation
/// (after any `Service.` prefix) starts with `Describe`, `List`, `Get` or `BatchGet`, or, for a REST
/// service (Route 53), it is a `GET`.
pub fn is_read_action(action: &str) -> bool {
    if action.starts_with("GET ") {
        return true;
    }
    // Route 53's ListTagsForResources is a POST of the IDs to the collection (its
    // ChangeTagsForResource is a POST to one resource, `…/tags/healthcheck/<id>`).
    if action == "POST /2013-04-01/tags/healthcheck" {
        return true;
    }
    let op = action.rsplit('.').next().unwrap_or(action);
    ["Describe", "List", "Get", "BatchGet"].iter().any(|p| op.starts_with(p))
}

/// SDK configuration for `region` talking to `emu` with dummy credentials, for clients that
/// make changes out of band in a test.
pub async fn sdk_config(emu: &Emulator, region: &'static str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        // The tests' own requests are not the deployer's: the recorder and the AWS model leave
        // them out (no faults, no throttling, not in `Emulator::actions`).
        .app_name(aws_config::AppName::new(HARNESS_APP_NAME).expect("a valid app name"))
        .region(region)
        .endpoint_url(emu.url())
        .credentials_provider(aws_sdk_ec2::config::Credentials::new("test", "test", None, None, "test"))
        .load()
        .await
}

/// Pushes an image tagged `tag` to `repository` (a manifest is all ECR needs; its digest is made
/// from the tag, so each tag is its own image).
pub async fn push_image(ecr: &aws_sdk_ecr::Client, repository: &str, tag: &str) {
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 1,
                   "digest": format!("sha256:{:0>64}", tag.bytes().map(|b| format!("{b:02x}")).collect::<String>())},
        "layers": [],
    });
    ecr.put_image()
        .repository_name(repository)
        .image_tag(tag)
        .image_manifest(manifest.to_string())
        .send()
        .await
        .unwrap_or_else(|e| panic!("PutImage {repository}:{tag}: {e}"));
}

/// An EC2 client of `region` talking to `emu`.
pub async fn ec2_client(emu: &Emulator, region: &'static str) -> aws_sdk_ec2::Client {
    aws_sdk_ec2::Client::new(&sdk_config(emu, region).await)
}

/// The environment's database secret (`{app}-{env}/db-master`) in `region`, as Secrets Manager
/// holds it there: its ARN, the region of its writable copy when it is a replica, and its value
/// (credentials included: tests read them to check the deployer never prints them).
pub async fn db_secret(
    emu: &Emulator,
    region: &'static str,
    name: &str,
) -> Option<(String, Option<String>, Value)> {
    let sm = aws_sdk_secretsmanager::Client::new(&sdk_config(emu, region).await);
    let described = match sm.describe_secret().secret_id(name).send().await {
        Ok(d) => d,
        Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => return None,
        Err(e) => panic!("DescribeSecret {name} in {region}: {e:?}"),
    };
    let arn = described.arn().unwrap().to_string();
    let value = sm.get_secret_value().secret_id(&arn).send().await.unwrap();
    let value: Value = serde_json::from_str(value.secret_string().unwrap()).unwrap();
    Some((arn, described.primary_region().filter(|p| *p != region).map(str::to_string), value))
}

/// Whether the database `identifier` in `region` accepts `username`/`password` now (the
/// emulator's `/_deployer/rds/login`: a replica takes its source's password).
pub fn db_login(emu: &Emulator, region: &str, identifier: &str, username: &str, password: &str) -> bool {
    let answer = emu.post_json(
        "/_deployer/rds/login",
        serde_json::json!({"region": region, "identifier": identifier, "username": username, "password": password}),
    );
    let v: Value = serde_json::from_str(&answer).unwrap();
    v["ok"] == Value::Bool(true)
}

/// Fails if any line any of `outputs` printed holds `secret` (a password).
pub fn assert_never_printed(secret: &str, outputs: &[&Output]) {
    assert!(secret.len() >= 16, "a real password: {}", secret.len());
    for out in outputs {
        for text in [stdout_text(out), stderr_text(out)] {
            for line in text.lines() {
                assert!(!line.contains(secret), "the master password was printed: {line}");
            }
        }
    }
}
