"""The emulator's RDS fixes for a failover (moto_fixes.py), exercised with boto3 against moto
in-process, as AWS documents the calls: promoting a cross-region read replica, and giving the
promoted instance a master secret of its own."""

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
            MasterUsername="app_admin", ManageMasterUserPassword=True, AllocatedStorage=20,
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

        # Both are standalone now: deleting one leaves the other (and its secret) alone.
        self.secondary.delete_db_instance(DBInstanceIdentifier="db", SkipFinalSnapshot=True)
        self.assertIn("MasterUserSecret", self.describe(self.primary))

    def test_the_promoted_instance_gets_a_master_secret_of_its_own_in_its_region_once(self):
        self.assertNotIn("MasterUserSecret", self.describe(self.secondary), "a replica has no secret")
        self.secondary.promote_read_replica(DBInstanceIdentifier="db", BackupRetentionPeriod=1)
        out = self.secondary.modify_db_instance(
            DBInstanceIdentifier="db", ManageMasterUserPassword=True, MultiAZ=True, ApplyImmediately=True
        )["DBInstance"]
        arn = out["MasterUserSecret"]["SecretArn"]
        self.assertEqual(arn.split(":")[3], SECONDARY, arn)
        self.assertNotEqual(arn, self.describe(self.primary)["MasterUserSecret"]["SecretArn"])
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


if __name__ == "__main__":
    unittest.main()
