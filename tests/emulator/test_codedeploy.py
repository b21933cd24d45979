"""The emulator's CodeDeploy and ECS fixes (codedeploy.py, moto_fixes.py), exercised with boto3
against moto in-process, as AWS documents the calls."""

import os
import unittest

os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")

import boto3  # noqa: E402
from moto import mock_aws  # noqa: E402

import moto_fixes  # noqa: E402

moto_fixes.apply()

GROUP = dict(
    applicationName="app",
    deploymentGroupName="group",
    serviceRoleArn="arn:aws:iam::123456789012:role/r",
    deploymentConfigName="CodeDeployDefault.ECSAllAtOnce",
    autoRollbackConfiguration={"enabled": True, "events": ["DEPLOYMENT_FAILURE"]},
    alarmConfiguration={"enabled": True, "alarms": [{"name": "app-green-5xx"}]},
)


class CodeDeployTest(unittest.TestCase):
    @mock_aws
    def test_groups_are_read_updated_and_deleted_with_their_alarms(self):
        cd = boto3.client("codedeploy", region_name="us-east-1")
        cd.create_application(applicationName="app", computePlatform="ECS")
        cd.create_deployment_group(**GROUP)
        got = cd.batch_get_deployment_groups(applicationName="app", deploymentGroupNames=["group", "nope"])
        info = got["deploymentGroupsInfo"][0]
        self.assertEqual(info["alarmConfiguration"]["alarms"], [{"name": "app-green-5xx"}])
        self.assertIn("nope", got["errorMessage"])
        cd.update_deployment_group(
            applicationName="app",
            currentDeploymentGroupName="group",
            autoRollbackConfiguration={"enabled": False},
        )
        info = cd.get_deployment_group(applicationName="app", deploymentGroupName="group")["deploymentGroupInfo"]
        self.assertEqual(info["autoRollbackConfiguration"], {"enabled": False})
        self.assertTrue(info["alarmConfiguration"]["enabled"], "an update keeps what it does not name")
        cd.delete_deployment_group(applicationName="app", deploymentGroupName="group")
        self.assertEqual(cd.list_deployment_groups(applicationName="app")["deploymentGroups"], [])
        cd.delete_deployment_group(applicationName="app", deploymentGroupName="group")  # gone: fine
        cd.create_deployment_group(**GROUP)
        cd.delete_application(applicationName="app")
        self.assertEqual(cd.list_applications()["applications"], [])


class DeploymentConfigTest(unittest.TestCase):
    @mock_aws
    def test_predefined_and_custom_configurations(self):
        cd = boto3.client("codedeploy", region_name="us-east-1")
        got = cd.get_deployment_config(deploymentConfigName="CodeDeployDefault.ECSCanary10Percent5Minutes")
        routing = got["deploymentConfigInfo"]["trafficRoutingConfig"]
        self.assertEqual(routing["timeBasedCanary"], {"canaryPercentage": 10, "canaryInterval": 5})
        cd.create_deployment_config(
            deploymentConfigName="app-canary-20pct-10min",
            computePlatform="ECS",
            trafficRoutingConfig={
                "type": "TimeBasedCanary",
                "timeBasedCanary": {"canaryPercentage": 20, "canaryInterval": 10},
            },
        )
        self.assertIn("app-canary-20pct-10min", cd.list_deployment_configs()["deploymentConfigsList"])
        cd.create_application(applicationName="app", computePlatform="ECS")
        cd.create_deployment_group(**dict(GROUP, deploymentConfigName="app-canary-20pct-10min"))
        with self.assertRaises(cd.exceptions.DeploymentConfigInUseException):
            cd.delete_deployment_config(deploymentConfigName="app-canary-20pct-10min")
        with self.assertRaises(cd.exceptions.InvalidOperationException):
            cd.delete_deployment_config(deploymentConfigName="CodeDeployDefault.ECSAllAtOnce")
        cd.delete_deployment_group(applicationName="app", deploymentGroupName="group")
        cd.delete_deployment_config(deploymentConfigName="app-canary-20pct-10min")
        with self.assertRaises(cd.exceptions.DeploymentConfigDoesNotExistException):
            cd.get_deployment_config(deploymentConfigName="app-canary-20pct-10min")


class EcsTest(unittest.TestCase):
    @mock_aws
    def test_a_code_deploy_service_keeps_its_grace_period_and_managed_tags_and_refuses_a_new_task_definition(self):
        ecs = boto3.client("ecs", region_name="us-east-1")
        ecs.create_cluster(clusterName="c")
        td = ecs.register_task_definition(
            family="f", containerDefinitions=[{"name": "app", "image": "x", "memory": 128}]
        )["taskDefinition"]["taskDefinitionArn"]
        ecs.create_service(
            cluster="c",
            serviceName="s",
            taskDefinition=td,
            desiredCount=1,
            deploymentController={"type": "CODE_DEPLOY"},
            healthCheckGracePeriodSeconds=60,
            enableECSManagedTags=True,
        )
        ecs.create_service(cluster="c", serviceName="plain", taskDefinition=td, desiredCount=1)
        service, plain = ecs.describe_services(cluster="c", services=["s", "plain"])["services"]
        self.assertEqual(service["healthCheckGracePeriodSeconds"], 60)
        self.assertIs(service["enableECSManagedTags"], True)
        self.assertIs(plain["enableECSManagedTags"], False)
        with self.assertRaises(ecs.exceptions.InvalidParameterException):
            ecs.update_service(cluster="c", service="s", taskDefinition=td)
        ecs.update_service(cluster="c", service="s", desiredCount=2)  # what AWS allows


if __name__ == "__main__":
    unittest.main()


class Route53FailoverTest(unittest.TestCase):
    @mock_aws
    def test_two_primaries_for_a_name_are_refused_and_a_swap_in_one_batch_is_not(self):
        r53 = boto3.client("route53", region_name="us-east-1")
        zone = r53.create_hosted_zone(Name="example.test", CallerReference="z")["HostedZone"]["Id"]

        def record(ident, role, ip):
            return {
                "Name": "app.example.test.",
                "Type": "A",
                "SetIdentifier": ident,
                "Failover": role,
                "TTL": 60,
                "ResourceRecords": [{"Value": ip}],
            }

        def batch(*changes):
            r53.change_resource_record_sets(
                HostedZoneId=zone,
                ChangeBatch={"Changes": [{"Action": a, "ResourceRecordSet": r} for a, r in changes]},
            )

        batch(("UPSERT", record("a", "PRIMARY", "10.0.0.1")), ("UPSERT", record("b", "SECONDARY", "10.0.0.2")))
        with self.assertRaises(r53.exceptions.InvalidChangeBatch):
            batch(("UPSERT", record("b", "PRIMARY", "10.0.0.2")))
        batch(("UPSERT", record("b", "PRIMARY", "10.0.0.2")), ("UPSERT", record("a", "SECONDARY", "10.0.0.1")))
        sets = r53.list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"]
        roles = {s["SetIdentifier"]: s["Failover"] for s in sets if s.get("SetIdentifier")}
        self.assertEqual(roles, {"a": "SECONDARY", "b": "PRIMARY"})
