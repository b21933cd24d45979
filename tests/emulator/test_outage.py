"""A region outage (aws_model.py: POST /_deployer/model {"outage": ...}, DEPLOYER_EMU_OUTAGE) and
POST /_deployer/rds/login, through the real emulator with boto3."""

import json
import time
import unittest
import urllib.error
import urllib.request

from botocore.exceptions import BotoCoreError, ClientError

from test_aws_model import EmulatorTestCase


def connection_error(call):
    """The exception of a call that must fail without any HTTP answer, and how long it took."""
    started = time.monotonic()
    try:
        call()
    except ClientError as e:  # an HTTP answer: not what an unreachable endpoint gives
        raise AssertionError(f"an HTTP answer: {e.response['ResponseMetadata']['HTTPStatusCode']} {e}") from e
    except BotoCoreError as e:
        return e, time.monotonic() - started
    raise AssertionError("the call succeeded")


def post(emu, path, body):
    """(HTTP status, JSON body) of a POST, errors included."""
    req = urllib.request.Request(emu.url + path, data=json.dumps(body).encode(), method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


class OutageTest(EmulatorTestCase):
    def tearDown(self):
        self.emu.configure(outage=None)

    def test_refuse_drops_every_call_signed_for_the_region_but_the_harness_calls(self):
        report = self.emu.configure(outage={"regions": ["us-east-1"], "mode": "refuse"})
        self.assertEqual(report["outage"], {"regions": ["us-east-1"], "mode": "refuse", "timeout_secs": 0.0, "dropped": {}})

        calls = {
            "ec2": lambda: self.emu.client("ec2").describe_vpcs(),
            "iam": lambda: self.emu.client("iam").list_roles(),
            "route53": lambda: self.emu.client("route53").list_hosted_zones(),
            "sts": lambda: self.emu.client("sts").get_caller_identity(),
            "rds": lambda: self.emu.client("rds").describe_db_instances(),
        }
        for name, call in calls.items():
            _, took = connection_error(call)
            self.assertLess(took, 2.0, name)

        # Another region, the harness's own clients and the control endpoints are not affected.
        self.emu.client("ec2", region="us-east-2").describe_vpcs()
        self.emu.client("ec2", harness=True).describe_vpcs()
        self.emu.client("iam", harness=True).list_roles()
        self.emu.get_json("/_deployer/ec2-state")
        self.emu.get_json("/moto-api/data.json")

        report = self.emu.model()
        self.assertEqual(report["outage"]["dropped"], {"us-east-1": len(calls)})
        self.assertIn("ec2:DescribeVpcs", report["actions"])
        self.assertNotIn("us-east-1", report["calls"])

        # Over: the same calls are answered again.
        report = self.emu.configure(outage=None)
        self.assertEqual(report["outage"]["regions"], [])
        self.assertIsNone(report["outage"]["mode"])
        self.emu.client("ec2").describe_vpcs()
        self.emu.client("sts").get_caller_identity()
        # An empty list of regions ends it too.
        self.emu.configure(outage={"regions": ["us-east-1"]})
        connection_error(lambda: self.emu.client("ec2").describe_vpcs())
        self.emu.configure(outage={"regions": []})
        self.emu.client("ec2").describe_vpcs()

    def test_timeout_waits_then_drops(self):
        self.emu.configure(outage={"regions": ["us-west-2"], "mode": "timeout", "timeout_secs": 1})
        _, took = connection_error(lambda: self.emu.client("ec2", region="us-west-2").describe_vpcs())
        self.assertGreaterEqual(took, 1.0)
        self.assertLess(took, 5.0)
        self.emu.client("ec2").describe_vpcs()
        self.assertEqual(self.emu.model()["outage"]["timeout_secs"], 1.0)

    def test_bad_settings_are_refused(self):
        for outage in ({"regions": "us-east-1"}, {"regions": ["us-east-1"], "mode": "slow"},
                       {"regions": ["us-east-1"], "mode": "timeout", "timeout_secs": -1}, {"region": ["x"]}, 3):
            status, body = post(self.emu, "/_deployer/model", {"outage": outage})
            self.assertEqual(status, 400, outage)
            self.assertIn("outage", body["error"])
        self.assertEqual(self.emu.model()["outage"]["regions"], [])


class OutageFromTheEnvironmentTest(EmulatorTestCase):
    ENV = {"DEPLOYER_EMU_OUTAGE": json.dumps({"regions": ["eu-west-1"], "mode": "refuse"})}

    def test_the_outage_is_on_from_the_start(self):
        self.assertEqual(self.emu.model()["outage"]["regions"], ["eu-west-1"])
        connection_error(lambda: self.emu.client("sqs", region="eu-west-1").list_queues())
        self.emu.client("sqs").list_queues()
        self.assertEqual(self.emu.model()["outage"]["dropped"], {"eu-west-1": 1})


class RdsLoginTest(EmulatorTestCase):
    def login(self, **body):
        return post(self.emu, "/_deployer/rds/login", body)

    def test_login_answers_whether_the_credentials_work(self):
        rds = self.emu.client("rds", harness=True)
        arn = rds.create_db_instance(
            DBInstanceIdentifier="db", DBInstanceClass="db.t4g.micro", Engine="postgres",
            MasterUsername="app_admin", MasterUserPassword="first-password", AllocatedStorage=20,
            BackupRetentionPeriod=1,
        )["DBInstance"]["DBInstanceArn"]
        self.emu.client("rds", region="us-east-2", harness=True).create_db_instance_read_replica(
            DBInstanceIdentifier="db", SourceDBInstanceIdentifier=arn, DBInstanceClass="db.t4g.micro",
        )
        ok = {"region": "us-east-2", "identifier": "db", "username": "app_admin", "password": "first-password"}
        self.assertEqual(self.login(**ok), (200, {"ok": True}))
        self.assertEqual(self.login(**dict(ok, password="other-password")), (200, {"ok": False}))
        self.assertEqual(self.login(**dict(ok, username="postgres")), (200, {"ok": False}))
        rds.modify_db_instance(DBInstanceIdentifier="db", MasterUserPassword="second-password", ApplyImmediately=True)
        self.assertEqual(self.login(**dict(ok, password="second-password")), (200, {"ok": True}))
        self.assertEqual(self.login(**ok), (200, {"ok": False}))

        status, body = self.login(**dict(ok, identifier="nope"))
        self.assertEqual(status, 404)
        self.assertIn("nope", body["error"])
        status, body = self.login(region="us-east-1", identifier="db")
        self.assertEqual(status, 400)
        self.assertIn("username", body["error"])


if __name__ == "__main__":
    unittest.main()
