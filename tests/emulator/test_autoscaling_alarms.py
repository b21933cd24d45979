"""moto_fixes.py's Application Auto Scaling fix: a target tracking policy's CloudWatch alarms
are replaced when it is put again, deleted with it, and deregistering the scalable target deletes
its policies (and so their alarms), through the real emulator with boto3."""

import unittest

from test_aws_model import EmulatorTestCase, error_of

TARGET = dict(ServiceNamespace="ecs", ResourceId="service/app/web", ScalableDimension="ecs:service:DesiredCount")


def cpu(target_value):
    return {
        "TargetValue": target_value,
        "PredefinedMetricSpecification": {"PredefinedMetricType": "ECSServiceAverageCPUUtilization"},
        "ScaleInCooldown": 60,
        "ScaleOutCooldown": 60,
    }


class TargetTrackingAlarmsTest(EmulatorTestCase):
    def setUp(self):
        ecs = self.emu.client("ecs")
        ecs.create_cluster(clusterName="app")
        td = ecs.register_task_definition(
            family="web", containerDefinitions=[{"name": "web", "image": "web:1", "memory": 512}]
        )["taskDefinition"]["taskDefinitionArn"]
        if not ecs.describe_services(cluster="app", services=["web"])["services"]:
            ecs.create_service(cluster="app", serviceName="web", taskDefinition=td, desiredCount=1)
        self.aas = self.emu.client("application-autoscaling")
        self.aas.register_scalable_target(MinCapacity=1, MaxCapacity=4, **TARGET)

    def tearDown(self):
        try:
            self.aas.deregister_scalable_target(**TARGET)
        except Exception:
            pass

    def alarms(self):
        names = [a["AlarmName"] for a in self.emu.client("cloudwatch").describe_alarms()["MetricAlarms"]]
        return sorted(n for n in names if n.startswith("TargetTracking-"))

    def put(self, name="cpu", target_value=60.0):
        return self.aas.put_scaling_policy(
            PolicyName=name, PolicyType="TargetTrackingScaling",
            TargetTrackingScalingPolicyConfiguration=cpu(target_value), **TARGET,
        )

    def test_putting_a_policy_again_replaces_its_two_alarms(self):
        first = self.put()
        first_alarms = sorted(a["AlarmName"] for a in first["Alarms"])
        self.assertEqual(self.alarms(), first_alarms)
        self.assertEqual(len(first_alarms), 2)
        self.assertTrue(any("-AlarmHigh-" in n for n in first_alarms))
        self.assertTrue(any("-AlarmLow-" in n for n in first_alarms))
        self.assertTrue(all(n.startswith("TargetTracking-service/app/web-Alarm") for n in first_alarms))

        # The same put again (a retry whose first answer was lost), then an update.
        second = self.put()
        self.assertEqual(self.alarms(), sorted(a["AlarmName"] for a in second["Alarms"]))
        third = self.put(target_value=40.0)
        self.assertEqual(self.alarms(), sorted(a["AlarmName"] for a in third["Alarms"]))
        self.assertEqual(len(self.alarms()), 2)
        self.assertFalse(set(first_alarms) & set(self.alarms()))
        policies = self.aas.describe_scaling_policies(ServiceNamespace="ecs")["ScalingPolicies"]
        self.assertEqual(len(policies), 1)
        self.assertEqual(sorted(a["AlarmName"] for a in policies[0]["Alarms"]), self.alarms())

        self.aas.delete_scaling_policy(PolicyName="cpu", **TARGET)
        self.assertEqual(self.alarms(), [])

    def test_deregistering_the_target_deletes_its_policies_and_their_alarms(self):
        self.put("cpu")
        self.put("cpu-too", target_value=70.0)
        self.aas.put_scheduled_action(
            ScheduledActionName="night", Schedule="cron(0 22 * * ? *)",
            ScalableTargetAction={"MinCapacity": 1, "MaxCapacity": 1}, **TARGET,
        )
        self.assertEqual(len(self.alarms()), 4)
        self.aas.deregister_scalable_target(**TARGET)
        self.assertEqual(self.alarms(), [])
        self.assertEqual(self.aas.describe_scaling_policies(ServiceNamespace="ecs")["ScalingPolicies"], [])
        self.assertEqual(self.aas.describe_scheduled_actions(ServiceNamespace="ecs")["ScheduledActions"], [])
        self.assertEqual(self.aas.describe_scalable_targets(ServiceNamespace="ecs")["ScalableTargets"], [])
        # A target that is not registered is still refused.
        self.assertEqual(error_of(lambda: self.aas.deregister_scalable_target(**TARGET))[1], "ValidationException")


if __name__ == "__main__":
    unittest.main()
