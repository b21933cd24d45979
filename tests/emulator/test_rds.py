"""The emulator's RDS fixes for a failover (moto_fixes.py), exercised with boto3 against moto
in-process, as AWS documents the calls: promoting a cross-region read replica, giving the
promoted instance a master secret of its own, refusing a read replica of a source whose master
password RDS manages, and the master passwords (moto_fixes.rds_login, which
POST /_deployer/rds/login answers)."""

import json
import os
import unittest

os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")

import boto3  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402
from moto import mock_aws  # noqa: E402

import moto_fixes  # noqa: E402

moto_fixes.apply()

PRIMARY, SECONDARY = "us-east-1", "us-east-2"


def code(e):
    return e.exception.response["Error"]["Code"]


class PromoteReadReplicaTest(unittest.TestCase):
    def setUp(self):
        self.mock = mock_aws()
        self.mock.start()
        self.primary = boto3.client("rds", region_name=PRIMARY)
        self.secondary = boto3.client("rds", region_name=SECONDARY)
        created = self.primary.create_db_instance(
            DBInstanceIdentifier="db", DBInstanceClass="db.t4g.micro", Engine="postgres",
            MasterUsername="app_admin", MasterUserPassword="first-password", AllocatedStorage=20,
            BackupRetentionPeriod=1,
        )["DBInstance"]
        self.primary_arn = created["DBInstanceArn"]
        self.secondary.create_db_instance_read_replica(
            DBInstanceIdentifier="db", SourceDBInstanceIdentifier=self.primary_arn,
            DBInstanceClass="db.t4g.micro",
        )

    def tearDown(self):
        self.mock.stop()

    def describe(self, client):
        return client.describe_db_instances(DBInstanceIdentifier="db")["DBInstances"][0]

    def test_a_promoted_replica_has_no_source_and_its_source_no_longer_lists_it(self):
        replica = self.describe(self.secondary)
        self.assertEqual(replica["ReadReplicaSourceDBInstanceIdentifier"], self.primary_arn)
        self.assertEqual(self.describe(self.primary)["ReadReplicaDBInstanceIdentifiers"], [replica["DBInstanceArn"]])

        promoted = self.secondary.promote_read_replica(
            DBInstanceIdentifier="db", BackupRetentionPeriod=7, PreferredBackupWindow="03:00-04:00"
        )["DBInstance"]
        self.assertNotIn("ReadReplicaSourceDBInstanceIdentifier", promoted)
        now = self.describe(self.secondary)
        self.assertNotIn("ReadReplicaSourceDBInstanceIdentifier", now)
        self.assertEqual((now["BackupRetentionPeriod"], now["PreferredBackupWindow"]), (7, "03:00-04:00"))
        self.assertEqual(self.describe(self.primary).get("ReadReplicaDBInstanceIdentifiers", []), [])

        # Promoting it again, or promoting a primary, is refused as AWS refuses it.
        for client in (self.secondary, self.primary):
            with self.assertRaises(ClientError) as e:
                client.promote_read_replica(DBInstanceIdentifier="db")
            self.assertEqual(code(e), "InvalidDBInstanceState")
        with self.assertRaises(ClientError) as e:
            self.secondary.promote_read_replica(DBInstanceIdentifier="nope")
        self.assertEqual(code(e), "DBInstanceNotFound")

        # Both are standalone now: deleting one leaves the other alone.
        self.secondary.delete_db_instance(DBInstanceIdentifier="db", SkipFinalSnapshot=True)
        self.assertEqual(self.describe(self.primary)["DBInstanceStatus"], "available")

    def test_the_promoted_instance_gets_a_master_secret_of_its_own_in_its_region_once(self):
        self.assertNotIn("MasterUserSecret", self.describe(self.secondary), "a replica has no secret")
        self.secondary.promote_read_replica(DBInstanceIdentifier="db", BackupRetentionPeriod=1)
        out = self.secondary.modify_db_instance(
            DBInstanceIdentifier="db", ManageMasterUserPassword=True, MultiAZ=True, ApplyImmediately=True
        )["DBInstance"]
        arn = out["MasterUserSecret"]["SecretArn"]
        self.assertEqual(arn.split(":")[3], SECONDARY, arn)
        self.assertNotIn("MasterUserSecret", self.describe(self.primary))
        self.assertTrue(self.describe(self.secondary)["MultiAZ"])
        value = json.loads(
            boto3.client("secretsmanager", region_name=SECONDARY).get_secret_value(SecretId=arn)["SecretString"]
        )
        self.assertEqual(value["username"], "app_admin")
        # The same request again (a retry whose first answer was lost) keeps the one secret.
        again = self.secondary.modify_db_instance(
            DBInstanceIdentifier="db", ManageMasterUserPassword=True, ApplyImmediately=True
        )["DBInstance"]
        self.assertEqual(again["MasterUserSecret"]["SecretArn"], arn)
        rds_secrets = [
            s for s in boto3.client("secretsmanager", region_name=SECONDARY).list_secrets()["SecretList"]
            if s["Name"].startswith("rds!")
        ]
        self.assertEqual(len(rds_secrets), 1, rds_secrets)



class ManagedPasswordSourceTest(unittest.TestCase):
    """RDS user guide, "Limitations for Secrets Manager integration with Amazon RDS": no read
    replica of a source whose master password RDS manages (all engines but SQL Server)."""

    def setUp(self):
        self.mock = mock_aws()
        self.mock.start()
        self.primary = boto3.client("rds", region_name=PRIMARY)
        self.secondary = boto3.client("rds", region_name=SECONDARY)

    def tearDown(self):
        self.mock.stop()

    def create(self, identifier, **password):
        return self.primary.create_db_instance(
            DBInstanceIdentifier=identifier, DBInstanceClass="db.t4g.micro", Engine="postgres",
            MasterUsername="app_admin", AllocatedStorage=20, BackupRetentionPeriod=1, **password,
        )["DBInstance"]["DBInstanceArn"]

    def test_a_replica_of_a_managed_password_source_is_refused_in_any_region(self):
        arn = self.create("managed", ManageMasterUserPassword=True)
        for client, source in ((self.secondary, arn), (self.primary, "managed")):
            with self.assertRaises(ClientError) as e:
                client.create_db_instance_read_replica(
                    DBInstanceIdentifier="managed-replica", SourceDBInstanceIdentifier=source,
                    DBInstanceClass="db.t4g.micro",
                )
            self.assertEqual(e.exception.response["ResponseMetadata"]["HTTPStatusCode"], 400)
            self.assertEqual(code(e), "InvalidParameterValue")
            self.assertIn("ManageMasterUserPassword is enabled is not supported", str(e.exception))
            with self.assertRaises(ClientError):
                client.describe_db_instances(DBInstanceIdentifier="managed-replica")
        self.assertEqual(self.primary.describe_db_instances(DBInstanceIdentifier="managed")["DBInstances"][0]
                         .get("ReadReplicaDBInstanceIdentifiers", []), [])

    def test_a_source_with_its_own_password_replicates_and_the_replica_has_no_secret(self):
        arn = self.create("plain", MasterUserPassword="plain-password")
        replica = self.secondary.create_db_instance_read_replica(
            DBInstanceIdentifier="plain", SourceDBInstanceIdentifier=arn, DBInstanceClass="db.t4g.micro",
        )["DBInstance"]
        self.assertEqual(replica["ReadReplicaSourceDBInstanceIdentifier"], arn)
        self.assertNotIn("MasterUserSecret", replica)
        self.assertTrue(moto_fixes.rds_login(SECONDARY, "plain", "app_admin", "plain-password"))


class MasterPasswordTest(unittest.TestCase):
    """ModifyDBInstance's ManageMasterUserPassword / MasterUserPassword (API reference of
    ModifyDBInstance), and which password each instance accepts."""

    def setUp(self):
        self.mock = mock_aws()
        self.mock.start()
        self.primary = boto3.client("rds", region_name=PRIMARY)
        self.secondary = boto3.client("rds", region_name=SECONDARY)
        self.secrets = boto3.client("secretsmanager", region_name=PRIMARY)

    def tearDown(self):
        self.mock.stop()

    def login(self, region, identifier, password, username="app_admin"):
        return moto_fixes.rds_login(region, identifier, username, password)

    def test_turning_management_off_deletes_the_secret_and_sets_the_password(self):
        created = self.primary.create_db_instance(
            DBInstanceIdentifier="db", DBInstanceClass="db.t4g.micro", Engine="postgres",
            MasterUsername="app_admin", ManageMasterUserPassword=True, AllocatedStorage=20,
        )["DBInstance"]
        secret_arn = created["MasterUserSecret"]["SecretArn"]
        managed = json.loads(self.secrets.get_secret_value(SecretId=secret_arn)["SecretString"])
        self.assertTrue(self.login(PRIMARY, "db", managed["password"]))
        self.assertFalse(self.login(PRIMARY, "db", managed["password"], username="someone"))
        self.assertFalse(self.login(PRIMARY, "db", "guess-guess"))

        # Off without a password, or a password while it is managed: refused, as documented.
        for kwargs in ({"ManageMasterUserPassword": False}, {"MasterUserPassword": "x-password-1"}):
            with self.assertRaises(ClientError) as e:
                self.primary.modify_db_instance(DBInstanceIdentifier="db", ApplyImmediately=True, **kwargs)
            self.assertEqual(code(e), "InvalidParameterCombination")

        out = self.primary.modify_db_instance(
            DBInstanceIdentifier="db", ManageMasterUserPassword=False, MasterUserPassword="my-own-password",
            ApplyImmediately=True,
        )["DBInstance"]
        self.assertNotIn("MasterUserSecret", out)
        self.assertNotIn("MasterUserSecret", self.primary.describe_db_instances(DBInstanceIdentifier="db")["DBInstances"][0])
        with self.assertRaises(ClientError) as e:
            self.secrets.describe_secret(SecretId=secret_arn)
        self.assertEqual(code(e), "ResourceNotFoundException")
        self.assertTrue(self.login(PRIMARY, "db", "my-own-password"))
        self.assertFalse(self.login(PRIMARY, "db", managed["password"]))

        # Both flags at once: refused.
        with self.assertRaises(ClientError) as e:
            self.primary.modify_db_instance(
                DBInstanceIdentifier="db", ManageMasterUserPassword=True, MasterUserPassword="x-password-1",
                ApplyImmediately=True,
            )
        self.assertEqual(code(e), "InvalidParameterCombination")

    def test_replicas_follow_their_source_and_a_promoted_one_keeps_its_password(self):
        arn = self.primary.create_db_instance(
            DBInstanceIdentifier="db", DBInstanceClass="db.t4g.micro", Engine="postgres",
            MasterUsername="app_admin", MasterUserPassword="first-password", AllocatedStorage=20,
            BackupRetentionPeriod=1,
        )["DBInstance"]["DBInstanceArn"]
        self.secondary.create_db_instance_read_replica(
            DBInstanceIdentifier="db", SourceDBInstanceIdentifier=arn, DBInstanceClass="db.t4g.micro",
        )
        self.primary.create_db_instance_read_replica(
            DBInstanceIdentifier="db-local", SourceDBInstanceIdentifier="db", DBInstanceClass="db.t4g.micro",
        )
        for region, ident in ((PRIMARY, "db"), (SECONDARY, "db"), (PRIMARY, "db-local")):
            self.assertTrue(self.login(region, ident, "first-password"), (region, ident))

        self.primary.modify_db_instance(DBInstanceIdentifier="db", MasterUserPassword="second-password", ApplyImmediately=True)
        for region, ident in ((PRIMARY, "db"), (SECONDARY, "db"), (PRIMARY, "db-local")):
            self.assertTrue(self.login(region, ident, "second-password"), (region, ident))
            self.assertFalse(self.login(region, ident, "first-password"), (region, ident))

        # A replica has no password of its own.
        with self.assertRaises(ClientError) as e:
            self.secondary.modify_db_instance(DBInstanceIdentifier="db", MasterUserPassword="third-password", ApplyImmediately=True)
        self.assertEqual(code(e), "InvalidParameterCombination")

        self.secondary.promote_read_replica(DBInstanceIdentifier="db")
        self.primary.modify_db_instance(DBInstanceIdentifier="db", MasterUserPassword="fourth-password", ApplyImmediately=True)
        self.assertTrue(self.login(SECONDARY, "db", "second-password"), "the promoted one keeps its password")
        self.assertFalse(self.login(SECONDARY, "db", "fourth-password"))
        self.assertTrue(self.login(PRIMARY, "db-local", "fourth-password"))
        # Now its own: it can change it.
        self.secondary.modify_db_instance(DBInstanceIdentifier="db", MasterUserPassword="fifth-password", ApplyImmediately=True)
        self.assertTrue(self.login(SECONDARY, "db", "fifth-password"))

        with self.assertRaises(LookupError):
            self.login(SECONDARY, "nope", "fifth-password")


if __name__ == "__main__":
    unittest.main()
