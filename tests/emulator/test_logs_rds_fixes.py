"""moto_fixes.py's CloudWatch Logs KMS association, RDS pending-reboot, ECR scan-on-push and
Scheduler group conflict fixes, through the real emulator."""

import unittest

from test_aws_model import EmulatorTestCase

KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


class LogsKmsTest(EmulatorTestCase):
    def test_a_key_is_associated_and_disassociated(self):
        logs = self.emu.client("logs")
        logs.create_log_group(logGroupName="/ecs/x")
        logs.associate_kms_key(logGroupName="/ecs/x", kmsKeyId=KEY)
        group = logs.describe_log_groups(logGroupNamePrefix="/ecs/x")["logGroups"][0]
        self.assertEqual(group["kmsKeyId"], KEY)
        logs.disassociate_kms_key(logGroupName="/ecs/x")
        group = logs.describe_log_groups(logGroupNamePrefix="/ecs/x")["logGroups"][0]
        self.assertNotIn("kmsKeyId", group)
        with self.assertRaises(Exception):
            logs.associate_kms_key(logGroupName="/ecs/missing", kmsKeyId=KEY)


class RdsPendingRebootTest(EmulatorTestCase):
    def test_a_new_parameter_group_waits_for_a_reboot(self):
        rds = self.emu.client("rds")
        rds.create_db_parameter_group(
            DBParameterGroupName="mine", DBParameterGroupFamily="postgres16", Description="x"
        )
        rds.create_db_instance(
            DBInstanceIdentifier="db1", Engine="postgres", DBInstanceClass="db.t4g.micro",
            MasterUsername="app_admin", MasterUserPassword="secretsecret", AllocatedStorage=20,
        )
        status = lambda: rds.describe_db_instances(DBInstanceIdentifier="db1")["DBInstances"][0][
            "DBParameterGroups"
        ][0]["ParameterApplyStatus"]
        self.assertEqual(status(), "in-sync")
        rds.modify_db_instance(DBInstanceIdentifier="db1", DBParameterGroupName="mine", ApplyImmediately=True)
        self.assertEqual(status(), "pending-reboot")
        rds.reboot_db_instance(DBInstanceIdentifier="db1")
        self.assertEqual(status(), "in-sync")


class EcrScanOnPushTest(EmulatorTestCase):
    def test_a_missing_scan_on_push_is_false(self):
        ecr = self.emu.client("ecr")
        ecr.create_repository(repositoryName="repo", imageScanningConfiguration={"scanOnPush": True})
        ecr.put_image_scanning_configuration(repositoryName="repo", imageScanningConfiguration={})
        repo = ecr.describe_repositories(repositoryNames=["repo"])["repositories"][0]
        self.assertFalse(repo["imageScanningConfiguration"].get("scanOnPush", False))


class SchedulerGroupConflictTest(EmulatorTestCase):
    def test_a_second_create_of_a_group_is_a_conflict_and_keeps_the_first(self):
        scheduler = self.emu.client("scheduler")
        scheduler.create_schedule_group(Name="grp", Tags=[{"Key": "k", "Value": "v"}])
        with self.assertRaises(Exception) as refused:
            scheduler.create_schedule_group(Name="grp")
        self.assertIn("ConflictException", str(refused.exception))
        arn = scheduler.get_schedule_group(Name="grp")["Arn"]
        self.assertEqual(scheduler.list_tags_for_resource(ResourceArn=arn)["Tags"], [{"Key": "k", "Value": "v"}])


class TargetGroupIdempotentTest(EmulatorTestCase):
    def test_the_same_settings_return_the_same_group_and_others_are_refused(self):
        ec2 = self.emu.client("ec2")
        vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
        elb = self.emu.client("elbv2")
        args = dict(Name="tg1", Protocol="HTTP", Port=8080, VpcId=vpc, TargetType="ip")
        first = elb.create_target_group(**args)["TargetGroups"][0]["TargetGroupArn"]
        again = elb.create_target_group(**args)["TargetGroups"][0]["TargetGroupArn"]
        self.assertEqual(first, again)
        self.assertEqual(len(elb.describe_target_groups(Names=["tg1"])["TargetGroups"]), 1)
        with self.assertRaises(Exception) as refused:
            elb.create_target_group(**dict(args, Port=9090))
        self.assertIn("DuplicateTargetGroupName", str(refused.exception))


if __name__ == "__main__":
    unittest.main()
