"""Secrets Manager multi-Region secrets as AWS replicates them (moto_fixes.py,
_patch_secretsmanager_replication), with boto3 against moto in-process: what moto 5.2.5 already
did (checked here so an upgrade that breaks it shows) and what the fix adds."""

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

PRIMARY, REPLICA, OTHER = "us-east-1", "us-east-2", "us-west-2"
REPLICA_MESSAGE = "Operation not permitted on a replica secret. Call must be made in primary secret's region."


def error(call):
    try:
        call()
    except ClientError as e:
        return e.response["Error"]["Code"], e.response["Error"]["Message"]
    raise AssertionError("the call succeeded")


class ReplicationTest(unittest.TestCase):
    def setUp(self):
        self.mock = mock_aws()
        self.mock.start()
        self.primary = boto3.client("secretsmanager", region_name=PRIMARY)
        self.replica = boto3.client("secretsmanager", region_name=REPLICA)
        self.other = boto3.client("secretsmanager", region_name=OTHER)
        created = self.primary.create_secret(
            Name="app/db", SecretString=json.dumps({"password": "one"}), Tags=[{"Key": "team", "Value": "a"}],
            AddReplicaRegions=[{"Region": REPLICA, "KmsKeyId": "alias/replica-key"}],
        )
        self.arn = created["ARN"]
        self.replica_arn = self.arn.replace(f":{PRIMARY}:", f":{REPLICA}:")
        self.assertEqual(
            [(s["Region"], s["KmsKeyId"], s["Status"]) for s in created["ReplicationStatus"]],
            [(REPLICA, "alias/replica-key", "InSync")],
        )

    def tearDown(self):
        self.mock.stop()

    def value(self, client, secret_id):
        return json.loads(client.get_secret_value(SecretId=secret_id)["SecretString"])

    def test_the_replica_has_the_primarys_arn_name_value_and_tags_and_follows_them(self):
        described = self.replica.describe_secret(SecretId="app/db")
        self.assertEqual(described["ARN"], self.replica_arn)
        self.assertEqual(described["Name"], "app/db")
        self.assertEqual(described["PrimaryRegion"], PRIMARY)
        self.assertEqual(described["KmsKeyId"], "alias/replica-key")
        self.assertNotIn("ReplicationStatus", described)
        self.assertEqual(described["Tags"], [{"Key": "team", "Value": "a"}])
        self.assertEqual(self.replica.describe_secret(SecretId=self.replica_arn)["ARN"], self.replica_arn)
        self.assertEqual([s["ARN"] for s in self.replica.list_secrets()["SecretList"]], [self.replica_arn])
        got = self.replica.get_secret_value(SecretId="app/db")
        self.assertEqual((got["ARN"], json.loads(got["SecretString"])), (self.replica_arn, {"password": "one"}))
        # The replica's ARN is unknown in the primary's region, and the other way round.
        self.assertEqual(error(lambda: self.primary.describe_secret(SecretId=self.replica_arn))[0], "ResourceNotFoundException")

        self.primary.put_secret_value(SecretId="app/db", SecretString=json.dumps({"password": "two"}))
        self.assertEqual(self.value(self.replica, "app/db"), {"password": "two"})
        self.primary.update_secret(SecretId=self.arn, SecretString=json.dumps({"password": "three"}))
        self.assertEqual(self.value(self.replica, self.replica_arn), {"password": "three"})
        self.primary.tag_resource(SecretId=self.arn, Tags=[{"Key": "env", "Value": "prod"}])
        tags = {t["Key"]: t["Value"] for t in self.replica.describe_secret(SecretId="app/db")["Tags"]}
        self.assertEqual(tags, {"team": "a", "env": "prod"})

        status = self.primary.describe_secret(SecretId="app/db")["ReplicationStatus"]
        self.assertEqual([(s["Region"], s["KmsKeyId"]) for s in status], [(REPLICA, "alias/replica-key")])

    def test_a_replica_is_read_only(self):
        writes = {
            "PutSecretValue": lambda: self.replica.put_secret_value(SecretId="app/db", SecretString="x"),
            "UpdateSecret": lambda: self.replica.update_secret(SecretId=self.replica_arn, SecretString="x"),
            "UpdateSecret description": lambda: self.replica.update_secret(SecretId="app/db", Description="d"),
            "TagResource": lambda: self.replica.tag_resource(SecretId="app/db", Tags=[{"Key": "k", "Value": "v"}]),
            "UntagResource": lambda: self.replica.untag_resource(SecretId="app/db", TagKeys=["team"]),
            "DeleteSecret": lambda: self.replica.delete_secret(SecretId="app/db", ForceDeleteWithoutRecovery=True),
            "PutResourcePolicy": lambda: self.replica.put_resource_policy(SecretId="app/db", ResourcePolicy="{}"),
            "RotateSecret": lambda: self.replica.rotate_secret(SecretId="app/db"),
            "ReplicateSecretToRegions": lambda: self.replica.replicate_secret_to_regions(
                SecretId="app/db", AddReplicaRegions=[{"Region": OTHER}]
            ),
            "UpdateSecretVersionStage": lambda: self.replica.update_secret_version_stage(
                SecretId="app/db", VersionStage="CUSTOM",
                MoveToVersionId=self.replica.describe_secret(SecretId="app/db")["VersionIdsToStages"].popitem()[0],
            ),
        }
        for name, call in writes.items():
            self.assertEqual(error(call), ("InvalidParameterException", REPLICA_MESSAGE), name)
        self.assertEqual(self.value(self.replica, "app/db"), {"password": "one"})
        self.assertEqual(self.primary.describe_secret(SecretId="app/db")["Tags"], [{"Key": "team", "Value": "a"}])
        # Reads work, the resource policy included (it is replicated).
        self.primary.put_resource_policy(SecretId="app/db", ResourcePolicy='{"Version": "2012-10-17", "Statement": []}')
        self.assertIn("Statement", self.replica.get_resource_policy(SecretId="app/db")["ResourcePolicy"])
        self.assertEqual(len(self.replica.list_secret_version_ids(SecretId="app/db")["Versions"]), 1)

    def test_stop_replication_makes_the_replica_a_standalone_secret(self):
        answer = self.replica.stop_replication_to_replica(SecretId=self.replica_arn)
        self.assertEqual(answer["ARN"], self.replica_arn)
        self.assertNotIn("ReplicationStatus", self.primary.describe_secret(SecretId="app/db"))
        standalone = self.replica.describe_secret(SecretId="app/db")
        self.assertEqual((standalone["ARN"], standalone["KmsKeyId"]), (self.replica_arn, "alias/replica-key"))
        self.assertNotIn("PrimaryRegion", standalone)

        # Its own now: writable, and no longer following the old primary (nor the other way).
        self.replica.put_secret_value(SecretId="app/db", SecretString=json.dumps({"password": "mine"}))
        self.replica.tag_resource(SecretId=self.replica_arn, Tags=[{"Key": "region", "Value": REPLICA}])
        self.primary.put_secret_value(SecretId="app/db", SecretString=json.dumps({"password": "theirs"}))
        self.assertEqual(self.value(self.replica, "app/db"), {"password": "mine"})
        self.assertEqual(self.value(self.primary, "app/db"), {"password": "theirs"})
        self.assertEqual(self.primary.describe_secret(SecretId="app/db")["Tags"], [{"Key": "team", "Value": "a"}])
        self.assertEqual(len(self.replica.list_secret_version_ids(SecretId="app/db")["Versions"]), 2)

        # The old primary has no replicas left: it can be deleted; the standalone stays.
        self.primary.delete_secret(SecretId="app/db", ForceDeleteWithoutRecovery=True)
        self.assertEqual(self.value(self.replica, "app/db"), {"password": "mine"})
        # Stopping replication of a secret that is not a replica is refused.
        self.assertEqual(error(lambda: self.replica.stop_replication_to_replica(SecretId="app/db"))[0], "InvalidRequestException")
        self.assertEqual(
            error(lambda: self.replica.stop_replication_to_replica(SecretId="nope"))[0], "ResourceNotFoundException"
        )

    def test_stop_replication_by_name(self):
        self.assertEqual(self.replica.stop_replication_to_replica(SecretId="app/db")["ARN"], self.replica_arn)
        self.replica.update_secret(SecretId="app/db", Description="own")

    def test_a_primary_with_replicas_cannot_be_deleted_and_removing_a_region_deletes_its_replica(self):
        added = self.primary.replicate_secret_to_regions(SecretId="app/db", AddReplicaRegions=[{"Region": OTHER}])
        self.assertEqual(added["ARN"], self.arn)
        self.assertEqual(
            [(s["Region"], s["KmsKeyId"]) for s in added["ReplicationStatus"]],
            [(REPLICA, "alias/replica-key"), (OTHER, "alias/aws/secretsmanager")],
        )
        self.assertEqual(self.other.describe_secret(SecretId="app/db")["PrimaryRegion"], PRIMARY)

        code, message = error(lambda: self.primary.delete_secret(SecretId="app/db", RecoveryWindowInDays=7))
        self.assertEqual(code, "InvalidParameterException")
        self.assertEqual(message, f"You can't delete secret {self.arn} that still has replica regions [{REPLICA}, {OTHER}].")
        self.assertEqual(self.value(self.primary, "app/db"), {"password": "one"})

        removed = self.primary.remove_regions_from_replication(SecretId="app/db", RemoveReplicaRegions=[REPLICA])
        self.assertEqual(removed["ARN"], self.arn)
        self.assertEqual([s["Region"] for s in removed["ReplicationStatus"]], [OTHER])
        self.assertEqual(error(lambda: self.replica.describe_secret(SecretId="app/db"))[0], "ResourceNotFoundException")
        self.assertEqual(self.replica.list_secrets()["SecretList"], [])
        self.primary.remove_regions_from_replication(SecretId=self.arn, RemoveReplicaRegions=[OTHER])
        self.assertNotIn("ReplicationStatus", self.primary.describe_secret(SecretId="app/db"))
        self.primary.delete_secret(SecretId="app/db", ForceDeleteWithoutRecovery=True)

    def test_get_random_password_excludes_characters(self):
        for _ in range(20):
            password = self.primary.get_random_password(PasswordLength=40, ExcludeCharacters="/@\"' \\")["RandomPassword"]
            self.assertEqual(len(password), 40)
            self.assertFalse(set(password) & set("/@\"' \\"), password)


if __name__ == "__main__":
    unittest.main()
