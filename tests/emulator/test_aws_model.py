"""Tests of the AWS model (aws_model.py) through the real emulator (deployer_emulator.py).

    tests/emulator/.venv/bin/python -m unittest discover -s tests/emulator -p 'test_*.py'

Each test class starts deployer_emulator.py on a free port with its own DEPLOYER_EMU_*
variables and talks to it with boto3 (dummy credentials, retries off), the way the deployer's
SDK clients would. Clients built with harness=True carry "deployer-test-harness" in their user
agent, like the Rust tests' own clients, so the model leaves them alone: they judge the state.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER = os.path.join(HERE, "deployer_emulator.py")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Emulator:
    """deployer_emulator.py in a subprocess, with the given DEPLOYER_EMU_* variables."""

    def __init__(self, env=None):
        self.dir = tempfile.mkdtemp(prefix="aws-model-test-")
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        child_env = {
            k: v for k, v in os.environ.items()
            if not k.startswith("DEPLOYER_EMU_") and k != "MOTO_ACM_VALIDATION_WAIT"
        }
        child_env["MOTO_EC2_LOAD_DEFAULT_AMIS"] = "false"
        child_env.update(env or {})
        self.log_path = os.path.join(self.dir, "emulator.log")
        self.log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [sys.executable, SERVER, "-H", "127.0.0.1", "-p", str(self.port)],
            cwd=self.dir, env=child_env, stdout=self.log, stderr=subprocess.STDOUT,
        )
        deadline = time.time() + 30
        while True:
            try:
                self.model()
                return
            except (urllib.error.URLError, ConnectionError):
                if self.process.poll() is not None or time.time() > deadline:
                    self.stop()
                    raise RuntimeError(f"the emulator did not start:\n{self.log_text()}")
                time.sleep(0.1)

    def log_text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")[-4000:]

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def get_json(self, path):
        with urllib.request.urlopen(self.url + path, timeout=10) as r:
            return json.load(r)

    def post_json(self, path, body=None):
        data = json.dumps(body or {}).encode()
        req = urllib.request.Request(self.url + path, data=data, method="POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.load(r)

    def model(self):
        return self.get_json("/_deployer/model")

    def configure(self, **settings):
        return self.post_json("/_deployer/model", settings)

    def client(self, service, region="us-east-1", harness=False):
        config = Config(
            retries={"total_max_attempts": 1},  # every answer reaches the test as it was sent
            user_agent_extra="app/deployer-test-harness" if harness else None,
        )
        return boto3.client(
            service, endpoint_url=self.url, region_name=region, config=config,
            aws_access_key_id="test", aws_secret_access_key="test",
        )


def error_of(call):
    """(HTTP status, error code) of a call that must fail."""
    try:
        call()
    except ClientError as e:
        return e.response["ResponseMetadata"]["HTTPStatusCode"], e.response["Error"]["Code"]
    raise AssertionError("the call succeeded")


def wait_until(predicate, timeout, step=0.05):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


class EmulatorTestCase(unittest.TestCase):
    ENV = {}

    @classmethod
    def setUpClass(cls):
        cls.emu = Emulator(cls.ENV)

    @classmethod
    def tearDownClass(cls):
        cls.emu.stop()

    def network(self, ec2):
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24", AvailabilityZone="us-east-1a")
        return vpc, subnet["Subnet"]["SubnetId"]


class PassThroughTest(EmulatorTestCase):
    """No variables: moto answers as it always did; the calls are only counted."""

    def test_calls_pass_straight_through(self):
        ec2 = self.emu.client("ec2")
        vpc, subnet = self.network(ec2)
        allocation = ec2.allocate_address(Domain="vpc")["AllocationId"]
        nat = ec2.create_nat_gateway(SubnetId=subnet, AllocationId=allocation)["NatGateway"]
        # moto's own answer: available at once.
        self.assertEqual(nat["State"], "available")

        # The existing extensions still work: ec2-state, and the NAT delete releasing the EIP.
        state = self.emu.get_json("/_deployer/ec2-state")["us-east-1"]
        self.assertEqual([n["state"] for n in state["nat_gateways"]], ["available"])
        ec2.delete_nat_gateway(NatGatewayId=nat["NatGatewayId"])
        address = ec2.describe_addresses(AllocationIds=[allocation])["Addresses"][0]
        self.assertNotIn("AssociationId", address)
        state = self.emu.get_json("/_deployer/ec2-state")["us-east-1"]
        self.assertEqual([n["state"] for n in state["nat_gateways"]], ["deleted"])

        model = self.emu.model()
        self.assertFalse(model["active"])
        self.assertFalse(model["patches_installed"])
        self.assertEqual(model["calls"]["us-east-1"]["mutating"]["CreateNatGateway"], 1)
        for key in ("throttled", "throttled_bucket", "fault", "lost"):
            self.assertEqual(model["totals"][key], 0, key)
        self.assertEqual({d["outcome"] for d in model["recent_decisions"]}, {"pass"})
        self.assertFalse(model["kill"]["armed"])


class ThrottleTest(EmulatorTestCase):
    ENV = {"DEPLOYER_EMU_THROTTLE_RATE": "1.0"}

    def test_ec2_gets_request_limit_exceeded(self):
        ec2 = self.emu.client("ec2")
        self.assertEqual(error_of(ec2.describe_vpcs), (503, "RequestLimitExceeded"))
        # Throttled calls are not applied.
        self.assertEqual(error_of(lambda: ec2.create_vpc(CidrBlock="10.9.0.0/16")), (503, "RequestLimitExceeded"))
        vpcs = self.emu.client("ec2", harness=True).describe_vpcs()["Vpcs"]
        self.assertNotIn("10.9.0.0/16", [v["CidrBlock"] for v in vpcs])

    def test_ssm_gets_throttling_exception(self):
        ssm = self.emu.client("ssm")
        self.assertEqual(error_of(lambda: ssm.put_parameter(Name="/p", Value="v", Type="String")),
                         (400, "ThrottlingException"))
        harness = self.emu.client("ssm", harness=True)
        self.assertEqual(error_of(lambda: harness.get_parameter(Name="/p")), (400, "ParameterNotFound"))

    def test_query_and_route53_throttling_codes(self):
        self.assertEqual(error_of(self.emu.client("rds").describe_db_instances), (400, "Throttling"))
        self.assertEqual(error_of(self.emu.client("route53").list_hosted_zones), (400, "Throttling"))

    def test_harness_moto_api_and_extensions_are_exempt(self):
        self.emu.client("ec2", harness=True).describe_vpcs()
        self.emu.client("ssm", harness=True).describe_parameters()
        with urllib.request.urlopen(self.emu.url + "/moto-api/data.json", timeout=10) as r:
            self.assertEqual(r.status, 200)
        self.emu.get_json("/_deployer/ec2-state")
        self.assertGreaterEqual(self.emu.model()["totals"]["exempt"], 2)

    def test_faults_are_5xx_in_the_service_shape(self):
        try:
            self.emu.configure(throttle_rate=0.0, fault_rate=1.0)
            self.assertIn(error_of(self.emu.client("ec2").describe_vpcs),
                          {(500, "InternalError"), (503, "Unavailable")})
            self.assertIn(error_of(self.emu.client("ssm").describe_parameters),
                          {(500, "InternalFailure"), (503, "ServiceUnavailableException")})
            self.assertIn(error_of(self.emu.client("rds").describe_db_instances),
                          {(500, "InternalFailure"), (503, "ServiceUnavailable")})
        finally:
            self.emu.configure(throttle_rate=1.0, fault_rate=0.0)


class LostResponseTest(EmulatorTestCase):
    ENV = {"DEPLOYER_EMU_LOST_RATE": "1.0"}

    def test_lost_response_is_applied(self):
        ec2 = self.emu.client("ec2")
        self.assertEqual(error_of(lambda: ec2.create_vpc(CidrBlock="10.7.0.0/16")), (500, "InternalError"))
        vpcs = self.emu.client("ec2", harness=True).describe_vpcs()["Vpcs"]
        self.assertIn("10.7.0.0/16", [v["CidrBlock"] for v in vpcs])
        # Reads are never "lost".
        ec2.describe_vpcs()
        model = self.emu.model()
        self.assertEqual(model["totals"]["lost"], 1)
        self.assertEqual(model["injected"]["CreateVpc"]["lost"], 1)


class KillHookTest(unittest.TestCase):
    def test_kill_after_the_kth_mutating_call(self):
        victim = subprocess.Popen(["sleep", "60"])
        pidfile = tempfile.NamedTemporaryFile("w", suffix=".pid", delete=False)
        pidfile.write(f"{victim.pid}\n")
        pidfile.close()
        emu = Emulator({"DEPLOYER_EMU_KILL_AFTER": "3", "DEPLOYER_EMU_KILL_PIDFILE": pidfile.name})
        try:
            ec2 = emu.client("ec2")
            ec2.create_vpc(CidrBlock="10.1.0.0/16")
            ec2.describe_vpcs()  # reads do not count
            ec2.create_vpc(CidrBlock="10.2.0.0/16")
            emu.client("ec2", harness=True).create_vpc(CidrBlock="10.3.0.0/16")  # nor the harness
            self.assertIsNone(victim.poll())
            self.assertFalse(emu.model()["kill"]["fired"])

            ec2.create_vpc(CidrBlock="10.4.0.0/16")  # the 3rd: applied, then the kill
            self.assertEqual(victim.wait(timeout=5), -signal.SIGKILL)
            kill = emu.model()["kill"]
            self.assertTrue(kill["fired"])
            self.assertEqual((kill["pid"], kill["operation"], kill["error"]), (victim.pid, "CreateVpc", None))
            vpcs = emu.client("ec2", harness=True).describe_vpcs()["Vpcs"]
            self.assertIn("10.4.0.0/16", [v["CidrBlock"] for v in vpcs])
        finally:
            if victim.poll() is None:
                victim.kill()
                victim.wait()
            emu.stop()
            os.unlink(pidfile.name)


class SeedTest(EmulatorTestCase):
    ENV = {"DEPLOYER_EMU_SEED": "7", "DEPLOYER_EMU_THROTTLE_RATE": "0.3",
           "DEPLOYER_EMU_FAULT_RATE": "0.3", "DEPLOYER_EMU_LOST_RATE": "0.3"}

    def run_sequence(self, seed):
        self.emu.configure(seed=seed)
        self.emu.post_json("/_deployer/model/reset-counts")
        ec2 = self.emu.client("ec2")
        seen = []
        for i in range(30):
            if i % 2:
                call = ec2.describe_vpcs
            else:
                call = lambda: ec2.create_tags(Resources=[self.vpc], Tags=[{"Key": "k", "Value": "v"}])  # noqa: E731
            try:
                call()
                seen.append("ok")
            except ClientError as e:
                seen.append(e.response["Error"]["Code"])
        decisions = [d["outcome"] for d in self.emu.model()["recent_decisions"]]
        return seen, decisions

    def test_same_seed_same_faults(self):
        self.vpc = self.emu.client("ec2", harness=True).create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        first = self.run_sequence(7)
        self.assertEqual(first, self.run_sequence(7))
        self.assertNotEqual(first, self.run_sequence(8))
        # With these rates all four outcomes show up in 30 calls.
        self.assertTrue({"pass", "throttle", "lost"} <= set(first[1]), first[1])
        self.assertTrue({"fault", "unavailable"} & set(first[1]), first[1])


class ModelTest(EmulatorTestCase):
    ENV = {"DEPLOYER_EMU_MODEL": "1", "DEPLOYER_EMU_SCALE": "0.01"}

    def setUp(self):
        self.emu.configure(scale=0.01, call_latency_ms=0)

    def test_nat_gateway_pending_then_available_then_deleting(self):
        ec2 = self.emu.client("ec2", region="eu-west-1")
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
        allocation = ec2.allocate_address(Domain="vpc")["AllocationId"]
        created = time.time()
        nat = ec2.create_nat_gateway(SubnetId=subnet, AllocationId=allocation)["NatGateway"]
        nat_id = nat["NatGatewayId"]
        self.assertEqual(nat["State"], "pending")

        def state():
            return ec2.describe_nat_gateways(NatGatewayIds=[nat_id])["NatGateways"][0]["State"]

        self.assertEqual(state(), "pending")
        self.assertTrue(wait_until(lambda: state() == "available", timeout=5))
        self.assertGreaterEqual(time.time() - created, 0.9 - 0.05)  # 90 s x 0.01
        region_state = self.emu.get_json("/_deployer/ec2-state")["eu-west-1"]
        self.assertEqual(region_state["nat_gateways"][0]["state"], "available")

        ec2.delete_nat_gateway(NatGatewayId=nat_id)
        self.assertEqual(state(), "deleting")
        self.assertTrue(wait_until(lambda: state() == "deleted", timeout=5))

        waits = [w for w in self.emu.model()["waits"] if w["id"] == nat_id]
        self.assertEqual([w["kind"] for w in waits], ["nat_gateway_create", "nat_gateway_delete"])
        self.assertAlmostEqual(waits[0]["ready_at"] - waits[0]["created_at"], 0.9, places=3)
        self.assertGreaterEqual(waits[0]["describe_calls"], 1)

    def test_peering_provisioning_then_active(self):
        ec2 = self.emu.client("ec2")
        a = ec2.create_vpc(CidrBlock="10.10.0.0/16")["Vpc"]["VpcId"]
        b = ec2.create_vpc(CidrBlock="10.11.0.0/16")["Vpc"]["VpcId"]
        pcx = ec2.create_vpc_peering_connection(VpcId=a, PeerVpcId=b)["VpcPeeringConnection"]["VpcPeeringConnectionId"]
        ec2.accept_vpc_peering_connection(VpcPeeringConnectionId=pcx)

        def status():
            answer = ec2.describe_vpc_peering_connections(VpcPeeringConnectionIds=[pcx])
            return answer["VpcPeeringConnections"][0]["Status"]["Code"]

        self.assertEqual(status(), "provisioning")
        options = {"AllowDnsResolutionFromRemoteVpc": True}
        self.assertEqual(
            error_of(lambda: ec2.modify_vpc_peering_connection_options(
                VpcPeeringConnectionId=pcx, AccepterPeeringConnectionOptions=options)),
            (400, "OperationNotPermitted"),
        )
        self.assertTrue(wait_until(lambda: status() == "active", timeout=5))
        ec2.modify_vpc_peering_connection_options(VpcPeeringConnectionId=pcx, AccepterPeeringConnectionOptions=options)

    def test_rds_creating_and_deleting(self):
        self.emu.configure(scale=0.001)  # 900 s -> 0.9 s
        rds = self.emu.client("rds")
        db = rds.create_db_instance(
            DBInstanceIdentifier="db1", DBInstanceClass="db.t3.micro", Engine="postgres",
            MasterUsername="admin1", MasterUserPassword="password1", AllocatedStorage=20,
        )["DBInstance"]
        self.assertEqual(db["DBInstanceStatus"], "creating")

        def status():
            return rds.describe_db_instances(DBInstanceIdentifier="db1")["DBInstances"][0]["DBInstanceStatus"]

        self.assertTrue(wait_until(lambda: status() == "available", timeout=5))
        rds.delete_db_instance(DBInstanceIdentifier="db1", SkipFinalSnapshot=True)
        self.assertEqual(status(), "deleting")
        self.assertEqual(error_of(lambda: rds.delete_db_instance(DBInstanceIdentifier="db1", SkipFinalSnapshot=True)),
                         (400, "InvalidDBInstanceState"))
        self.assertTrue(wait_until(lambda: not rds.describe_db_instances()["DBInstances"], timeout=5))

    def test_rds_promotion_is_modifying_then_available(self):
        self.emu.configure(scale=0.001)  # creates in about a second; promotes in 0.3 s
        # Regions of its own: the other RDS tests count the instances in us-east-1.
        primary = self.emu.client("rds", region="eu-west-1")
        secondary = self.emu.client("rds", region="eu-west-2")
        arn = primary.create_db_instance(
            DBInstanceIdentifier="db2", DBInstanceClass="db.t3.micro", Engine="postgres",
            MasterUsername="admin1", MasterUserPassword="password1", AllocatedStorage=20,
        )["DBInstance"]["DBInstanceArn"]

        def status(client=secondary):
            return client.describe_db_instances(DBInstanceIdentifier="db2")["DBInstances"][0]["DBInstanceStatus"]

        self.assertTrue(wait_until(lambda: status(primary) == "available", timeout=5))
        secondary.create_db_instance_read_replica(DBInstanceIdentifier="db2", SourceDBInstanceIdentifier=arn)
        self.assertEqual(error_of(lambda: secondary.promote_read_replica(DBInstanceIdentifier="db2")),
                         (400, "InvalidDBInstanceState"), "still creating")
        self.assertTrue(wait_until(lambda: status() == "available", timeout=5))
        secondary.promote_read_replica(DBInstanceIdentifier="db2")
        self.assertEqual(status(), "modifying")
        self.assertEqual(error_of(lambda: secondary.promote_read_replica(DBInstanceIdentifier="db2")),
                         (400, "InvalidDBInstanceState"), "already promoted")
        self.assertTrue(wait_until(lambda: status() == "available", timeout=5))
        kinds = [w["kind"] for w in self.emu.model()["waits"] if w["id"] == "db2"]
        self.assertIn("rds_promote", kinds)

    def test_alb_delete_holds_subnets_and_security_groups(self):
        self.emu.configure(scale=0.005)  # provisioning 0.75 s, ENIs released after 0.6 s
        ec2, elb = self.emu.client("ec2"), self.emu.client("elbv2")
        vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
        subnets = [
            ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=az)["Subnet"]["SubnetId"]
            for cidr, az in (("10.20.1.0/24", "us-east-1a"), ("10.20.2.0/24", "us-east-1b"))
        ]
        sg = ec2.create_security_group(GroupName="alb", Description="alb", VpcId=vpc)["GroupId"]
        lb = elb.create_load_balancer(Name="alb1", Subnets=subnets, SecurityGroups=[sg])["LoadBalancers"][0]
        arn = lb["LoadBalancerArn"]
        self.assertEqual(lb["State"]["Code"], "provisioning")

        def state():
            return elb.describe_load_balancers(LoadBalancerArns=[arn])["LoadBalancers"][0]["State"]["Code"]

        self.assertEqual(state(), "provisioning")
        self.assertTrue(wait_until(lambda: state() == "active", timeout=5))
        elb.delete_load_balancer(LoadBalancerArn=arn)
        self.assertEqual(error_of(lambda: ec2.delete_subnet(SubnetId=subnets[0])), (400, "DependencyViolation"))
        self.assertEqual(error_of(lambda: ec2.delete_security_group(GroupId=sg)), (400, "DependencyViolation"))
        self.assertTrue(wait_until(
            lambda: not any(r["id"] in subnets + [sg] for r in self.emu.model()["releasing"]), timeout=5))
        ec2.delete_subnet(SubnetId=subnets[0])
        ec2.delete_security_group(GroupId=sg)
        self.assertEqual(error_of(lambda: elb.describe_load_balancers(LoadBalancerArns=[arn])),
                         (400, "LoadBalancerNotFound"))

    def test_route53_change_pending_then_insync(self):
        r53 = self.emu.client("route53")
        zone = r53.create_hosted_zone(Name="example.com", CallerReference="ref1")["HostedZone"]["Id"]
        change = r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": [{
            "Action": "UPSERT",
            "ResourceRecordSet": {
                "Name": "a.example.com", "Type": "A", "TTL": 60, "ResourceRecords": [{"Value": "1.2.3.4"}],
            },
        }]})["ChangeInfo"]
        self.assertEqual(change["Status"], "PENDING")
        self.assertEqual(r53.get_change(Id=change["Id"])["ChangeInfo"]["Status"], "PENDING")
        insync = lambda: r53.get_change(Id=change["Id"])["ChangeInfo"]["Status"] == "INSYNC"  # noqa: E731
        self.assertTrue(wait_until(insync, timeout=5))
        ops = self.emu.model()["calls"]["us-east-1"]
        self.assertIn("ChangeResourceRecordSets", ops["mutating"])
        self.assertIn("GetChange", ops["reads"])

    def test_token_bucket_throttles_bursts(self):
        # At scale 1 the Route 53 bucket (burst 5, 5/s) refills in real time: a quick burst of
        # calls empties it.
        self.emu.configure(scale=1.0)
        r53 = self.emu.client("route53")
        codes = []
        for _ in range(12):
            try:
                r53.list_hosted_zones()
                codes.append("ok")
            except ClientError as e:
                codes.append(e.response["Error"]["Code"])
        self.assertEqual(codes[:5], ["ok"] * 5)
        self.assertIn("Throttling", codes)
        self.assertGreaterEqual(self.emu.model()["totals"]["throttled_bucket"], 1)

    def test_call_latency(self):
        self.emu.configure(call_latency_ms=1000)
        ec2 = self.emu.client("ec2")
        start = time.time()
        ec2.describe_vpcs()
        self.assertGreaterEqual(time.time() - start, 1.0)
        start = time.time()
        self.emu.client("ec2", harness=True).describe_vpcs()  # the harness is not slowed
        self.assertLess(time.time() - start, 1.0)


if __name__ == "__main__":
    unittest.main()
