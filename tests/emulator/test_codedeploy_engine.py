"""The emulator's CodeDeploy ECS engine (codedeploy_engine.py), driven with boto3 against moto
in-process, the way the deployer drives AWS: a release all at once, a canary's 10/90 split, a
watched alarm, a forced failure, a manual stop, and the termination wait."""

import os
import time
import unittest

os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")

import boto3  # noqa: E402
from moto import mock_aws  # noqa: E402

import codedeploy_engine  # noqa: E402
import moto_fixes  # noqa: E402

moto_fixes.apply()
R = "us-east-1"


def world(config="CodeDeployDefault.ECSAllAtOnce", termination_wait=1):
    """A CODE_DEPLOY service behind a load balancer with a blue/green pair, and its group."""
    ec2 = boto3.client("ec2", region_name=R)
    elb = boto3.client("elbv2", region_name=R)
    ecs = boto3.client("ecs", region_name=R)
    cd = boto3.client("codedeploy", region_name=R)
    cw = boto3.client("cloudwatch", region_name=R)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{R}{az}")["Subnet"]["SubnetId"]
        for i, az in enumerate("ab")
    ]
    lb = elb.create_load_balancer(Name="lb", Subnets=subnets)["LoadBalancers"][0]["LoadBalancerArn"]
    tgs = {
        c: elb.create_target_group(Name=f"app-{c}", Protocol="HTTP", Port=8080, VpcId=vpc, TargetType="ip")[
            "TargetGroups"
        ][0]["TargetGroupArn"]
        for c in ("blue", "green")
    }

    def listener(port, colour):
        return elb.create_listener(
            LoadBalancerArn=lb,
            Protocol="HTTP",
            Port=port,
            DefaultActions=[{"Type": "forward", "TargetGroupArn": tgs[colour]}],
        )["Listeners"][0]["ListenerArn"]

    prod, test = listener(80, "blue"), listener(9000, "green")
    ecs.create_cluster(clusterName="c")

    def task_definition(image):
        return ecs.register_task_definition(
            family="app",
            containerDefinitions=[
                {"name": "app", "image": image, "memory": 512, "portMappings": [{"containerPort": 8080}]}
            ],
        )["taskDefinition"]["taskDefinitionArn"]

    v1, v2 = task_definition("app:v1"), task_definition("app:v2")
    ecs.create_service(
        cluster="c",
        serviceName="s",
        taskDefinition=v1,
        desiredCount=2,
        deploymentController={"type": "CODE_DEPLOY"},
        loadBalancers=[{"targetGroupArn": tgs["blue"], "containerName": "app", "containerPort": 8080}],
    )
    cd.create_application(applicationName="app", computePlatform="ECS")
    cd.create_deployment_group(
        applicationName="app",
        deploymentGroupName="g",
        serviceRoleArn="arn:aws:iam::123456789012:role/cd",
        deploymentConfigName=config,
        deploymentStyle={"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
        blueGreenDeploymentConfiguration={
            "terminateBlueInstancesOnDeploymentSuccess": {
                "action": "TERMINATE",
                "terminationWaitTimeInMinutes": termination_wait,
            },
            "deploymentReadyOption": {"actionOnTimeout": "CONTINUE_DEPLOYMENT"},
        },
        autoRollbackConfiguration={"enabled": True, "events": ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM"]},
        alarmConfiguration={"enabled": True, "alarms": [{"name": "green-5xx"}]},
        ecsServices=[{"clusterName": "c", "serviceName": "s"}],
        loadBalancerInfo={
            "targetGroupPairInfoList": [
                {
                    "targetGroups": [{"name": "app-blue"}, {"name": "app-green"}],
                    "prodTrafficRoute": {"listenerArns": [prod]},
                    "testTrafficRoute": {"listenerArns": [test]},
                }
            ]
        },
    )
    cw.put_metric_alarm(
        AlarmName="green-5xx",
        MetricName="HTTPCode_Target_5XX_Count",
        Namespace="AWS/ApplicationELB",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )
    return dict(ecs=ecs, elb=elb, cd=cd, cw=cw, tgs=tgs, prod=prod, test=test, v1=v1, v2=v2)


def deploy(w, td, **extra):
    content = codedeploy_engine.appspec(td, "app", 8080)
    return w["cd"].create_deployment(
        applicationName="app",
        deploymentGroupName="g",
        revision={"revisionType": "AppSpecContent", "appSpecContent": {"content": content}},
        **extra,
    )["deploymentId"]


def wait(w, ident, statuses=("Succeeded", "Failed", "Stopped"), limit=10.0):
    end = time.monotonic() + limit
    while time.monotonic() < end:
        info = w["cd"].get_deployment(deploymentId=ident)["deploymentInfo"]
        if info["status"] in statuses:
            return info
        time.sleep(0.01)
    raise AssertionError(f"{ident} still {info['status']}")


def forward(w, listener):
    action = w["elb"].describe_listeners(ListenerArns=[listener])["Listeners"][0]["DefaultActions"][0]
    groups = (action.get("ForwardConfig") or {}).get("TargetGroups")
    if groups:
        return {g["TargetGroupArn"]: g.get("Weight", 1) for g in groups}
    return {action["TargetGroupArn"]: 1}


def service(w):
    return w["ecs"].describe_services(cluster="c", services=["s"])["services"][0]


class EngineTest(unittest.TestCase):
    def setUp(self):
        codedeploy_engine.reset()
        codedeploy_engine.SCALE[0] = 10.0  # ten simulated minutes per second

    @mock_aws
    def test_a_release_all_at_once_moves_traffic_and_the_service_to_green(self):
        w = world(termination_wait=10)
        with self.assertRaises(w["cd"].exceptions.InvalidRevisionException):
            w["cd"].create_deployment(
                applicationName="app",
                deploymentGroupName="g",
                revision={"revisionType": "AppSpecContent", "appSpecContent": {"content": "version: 1"}},
            )
        with self.assertRaises(w["cd"].exceptions.InvalidRevisionException):  # no such port
            w["cd"].create_deployment(
                applicationName="app",
                deploymentGroupName="g",
                revision={
                    "revisionType": "AppSpecContent",
                    "appSpecContent": {"content": codedeploy_engine.appspec(w["v2"], "app", 81)},
                },
            )
        ident = deploy(w, w["v2"])
        self.assertRegex(ident, r"^d-[A-Z0-9]{9}$")
        with self.assertRaises(w["cd"].exceptions.DeploymentLimitExceededException):
            deploy(w, w["v2"])
        target_id = w["cd"].list_deployment_targets(deploymentId=ident)["targetIds"]
        self.assertEqual(target_id, ["c:s"])
        # The target succeeds, then the termination wait keeps the deployment in progress.
        end = time.monotonic() + 10
        while True:
            target = w["cd"].get_deployment_target(deploymentId=ident, targetId="c:s")["deploymentTarget"]["ecsTarget"]
            if target["status"] == "Succeeded" or time.monotonic() > end:
                break
            time.sleep(0.01)
        info = w["cd"].get_deployment(deploymentId=ident)["deploymentInfo"]
        self.assertEqual(info["status"], "InProgress")
        self.assertTrue(info["instanceTerminationWaitTimeStarted"])
        self.assertEqual([e["lifecycleEventName"] for e in target["lifecycleEvents"]], codedeploy_engine.EVENTS)
        self.assertEqual({e["status"] for e in target["lifecycleEvents"]}, {"Succeeded"})
        labels = {s["taskSetLabel"]: s for s in target["taskSetsInfo"]}
        self.assertEqual(labels["Green"]["status"], "PRIMARY")
        self.assertEqual(labels["Green"]["trafficWeight"], 100.0)
        self.assertEqual(labels["Green"]["targetGroup"], {"name": "app-green"})
        self.assertEqual(forward(w, w["prod"]), {w["tgs"]["green"]: 1})
        self.assertEqual(forward(w, w["test"]), {w["tgs"]["green"]: 1})
        self.assertEqual(service(w)["taskDefinition"], w["v2"])
        self.assertEqual(service(w)["loadBalancers"][0]["targetGroupArn"], w["tgs"]["green"])
        info = wait(w, ident)
        self.assertEqual(info["status"], "Succeeded")
        target = w["cd"].get_deployment_target(deploymentId=ident, targetId="c:s")["deploymentTarget"]["ecsTarget"]
        self.assertEqual([s["taskSetLabel"] for s in target["taskSetsInfo"]], ["Green"], "blue is deleted")
        group = w["cd"].get_deployment_group(applicationName="app", deploymentGroupName="g")["deploymentGroupInfo"]
        self.assertEqual(group["lastSuccessfulDeployment"]["deploymentId"], ident)
        # The next release goes the other way: blue is now the replacement.
        second = deploy(w, w["v1"])
        self.assertEqual(wait(w, second)["status"], "Succeeded")
        self.assertEqual(forward(w, w["prod"]), {w["tgs"]["blue"]: 1})
        self.assertEqual(service(w)["taskDefinition"], w["v1"])
        listed = w["cd"].list_deployments(applicationName="app", deploymentGroupName="g")["deployments"]
        self.assertEqual(listed, [second, ident], "newest first")
        self.assertEqual(
            w["cd"].get_deployment(deploymentId=second)["deploymentInfo"]["previousRevision"]["appSpecContent"][
                "content"
            ],
            codedeploy_engine.appspec(w["v2"], "app", 8080),
        )
        with self.assertRaises(w["cd"].exceptions.DeploymentAlreadyCompletedException):
            w["cd"].stop_deployment(deploymentId=second)

    @mock_aws
    def test_a_canary_sends_ten_percent_first(self):
        w = world("CodeDeployDefault.ECSCanary10Percent5Minutes", termination_wait=0)
        ident = deploy(w, w["v2"])
        seen = set()
        end = time.monotonic() + 10
        while time.monotonic() < end:
            weights = forward(w, w["prod"])
            seen.add(tuple(sorted(weights.values())))
            if w["cd"].get_deployment(deploymentId=ident)["deploymentInfo"]["status"] == "Succeeded":
                break
            time.sleep(0.01)
        self.assertIn((10, 90), seen)
        self.assertEqual(forward(w, w["prod"]), {w["tgs"]["green"]: 1})

    @mock_aws
    def test_an_alarm_stops_the_release_and_it_is_rolled_back(self):
        w = world("CodeDeployDefault.ECSLinear10PercentEvery1Minutes")
        ident = deploy(w, w["v2"])
        wait_for_shift(w, ident)
        w["cw"].set_alarm_state(AlarmName="green-5xx", StateValue="ALARM", StateReason="test")
        info = wait(w, ident)
        self.assertEqual(info["status"], "Stopped")
        self.assertEqual(info["errorInformation"]["code"], "ALARM_ACTIVE")
        rollback = info["rollbackInfo"]["rollbackDeploymentId"]
        rb = wait(w, rollback)
        self.assertEqual(rb["status"], "Succeeded")
        self.assertEqual(rb["creator"], "codeDeployRollback")
        self.assertEqual(rb["rollbackInfo"]["rollbackTriggeringDeploymentId"], ident)
        self.assertEqual(forward(w, w["prod"]), {w["tgs"]["blue"]: 1})
        self.assertEqual(forward(w, w["test"]), {w["tgs"]["blue"]: 1})
        self.assertEqual(service(w)["taskDefinition"], w["v1"])

    @mock_aws
    def test_a_forced_failure_fails_the_release_and_it_is_rolled_back(self):
        w = world()
        codedeploy_engine.control(
            {"fail": {"region": R, "application": "app", "deploymentGroup": "g", "event": "AfterAllowTraffic"}}
        )
        ident = deploy(w, w["v2"])
        info = wait(w, ident)
        self.assertEqual((info["status"], info["errorInformation"]["code"]), ("Failed", "HOOK_EXECUTION_FAILURE"))
        self.assertEqual(wait(w, info["rollbackInfo"]["rollbackDeploymentId"])["status"], "Succeeded")
        self.assertEqual(service(w)["taskDefinition"], w["v1"], "green had been PRIMARY; blue is again")
        self.assertEqual(forward(w, w["prod"]), {w["tgs"]["blue"]: 1})
        # Armed once: the next deployment runs normally.
        self.assertEqual(wait(w, deploy(w, w["v2"]))["status"], "Succeeded")

    @mock_aws
    def test_a_manual_stop_rolls_back_when_asked_and_the_termination_wait_can_be_ended(self):
        w = world("CodeDeployDefault.ECSLinear10PercentEvery3Minutes", termination_wait=60)
        ident = deploy(w, w["v2"])
        wait_for_shift(w, ident)
        self.assertEqual(w["cd"].stop_deployment(deploymentId=ident, autoRollbackEnabled=True)["status"], "Pending")
        info = wait(w, ident)
        self.assertEqual((info["status"], info["errorInformation"]["code"]), ("Stopped", "MANUAL_STOP"))
        self.assertEqual(wait(w, info["rollbackInfo"]["rollbackDeploymentId"])["status"], "Succeeded")
        self.assertEqual(forward(w, w["prod"]), {w["tgs"]["blue"]: 1})
        codedeploy_engine.SCALE[0] = 100.0
        again = deploy(w, w["v2"])
        end = time.monotonic() + 10
        while not w["cd"].get_deployment(deploymentId=again)["deploymentInfo"]["instanceTerminationWaitTimeStarted"]:
            self.assertLess(time.monotonic(), end)
            time.sleep(0.01)
        w["cd"].continue_deployment(deploymentId=again, deploymentWaitType="TERMINATION_WAIT")
        self.assertEqual(w["cd"].get_deployment(deploymentId=again)["deploymentInfo"]["status"], "Succeeded")
        # Stopped during its termination wait, a release is rolled back onto the kept blue tasks.
        third = deploy(w, w["v1"])
        end = time.monotonic() + 10
        while not w["cd"].get_deployment(deploymentId=third)["deploymentInfo"]["instanceTerminationWaitTimeStarted"]:
            self.assertLess(time.monotonic(), end)
            time.sleep(0.01)
        w["cd"].stop_deployment(deploymentId=third, autoRollbackEnabled=True)
        info = wait(w, third)
        self.assertEqual(wait(w, info["rollbackInfo"]["rollbackDeploymentId"])["status"], "Succeeded")
        self.assertEqual(service(w)["taskDefinition"], w["v2"])


def wait_for_shift(w, ident):
    end = time.monotonic() + 10
    while time.monotonic() < end:
        target = w["cd"].get_deployment_target(deploymentId=ident, targetId="c:s")["deploymentTarget"]["ecsTarget"]
        green = [s for s in target["taskSetsInfo"] if s["taskSetLabel"] == "Green"]
        if green and 0 < green[0]["trafficWeight"] < 100:
            return
        time.sleep(0.01)
    raise AssertionError("traffic never started shifting")


if __name__ == "__main__":
    unittest.main()
