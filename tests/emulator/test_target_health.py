"""ECS tasks as load balancer targets (aws_model.py: DescribeTargetHealth, the
"unhealthy_targets" setting; moto_fixes.py: a service runs its desired tasks), through the real
emulator with boto3: model off, model on, and through a CodeDeploy blue/green release."""

import ipaddress
import time
import unittest

import codedeploy_engine
from test_aws_model import EmulatorTestCase, wait_until

R = "us-east-1"


def world(emu, name, desired=2, interval=30, healthy=5, unhealthy=2):
    """A CODE_DEPLOY service of `desired` awsvpc tasks behind the blue group of a blue/green
    pair, with its CodeDeploy group; every call by a harness client (never throttled)."""
    c = lambda s: emu.client(s, harness=True)  # noqa: E731
    ec2, elb, ecs = c("ec2"), c("elbv2"), c("ecs")
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnets = {
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.20.{i}.0/24", AvailabilityZone=f"{R}{az}")["Subnet"]["SubnetId"]:
        f"10.20.{i}.0/24"
        for i, az in enumerate("ab")
    }
    sg = ec2.create_security_group(GroupName=f"{name}-sg", Description="x", VpcId=vpc)["GroupId"]
    lb = elb.create_load_balancer(Name=f"{name}-lb", Subnets=list(subnets))["LoadBalancers"][0]["LoadBalancerArn"]
    tgs = {
        colour: elb.create_target_group(
            Name=f"{name}-{colour}", Protocol="HTTP", Port=80, VpcId=vpc, TargetType="ip",
            HealthCheckIntervalSeconds=interval, HealthyThresholdCount=healthy, UnhealthyThresholdCount=unhealthy,
        )["TargetGroups"][0]["TargetGroupArn"]
        for colour in ("blue", "green")
    }
    listeners = {
        port: elb.create_listener(
            LoadBalancerArn=lb, Protocol="HTTP", Port=port,
            DefaultActions=[{"Type": "forward", "TargetGroupArn": tgs[colour]}],
        )["Listeners"][0]["ListenerArn"]
        for port, colour in ((80, "blue"), (9000, "green"))
    }
    ecs.create_cluster(clusterName=name)
    td = ecs.register_task_definition(
        family=name, networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="256", memory="512",
        containerDefinitions=[{"name": "app", "image": "app:1", "portMappings": [{"containerPort": 8080}]}],
    )["taskDefinition"]["taskDefinitionArn"]
    ecs.create_service(
        cluster=name, serviceName="web", taskDefinition=td, desiredCount=desired, launchType="FARGATE",
        deploymentController={"type": "CODE_DEPLOY"},
        loadBalancers=[{"targetGroupArn": tgs["blue"], "containerName": "app", "containerPort": 8080}],
        networkConfiguration={"awsvpcConfiguration": {"subnets": list(subnets), "securityGroups": [sg]}},
    )
    cd = c("codedeploy")
    cd.create_application(applicationName=name, computePlatform="ECS")
    cd.create_deployment_group(
        applicationName=name, deploymentGroupName="g", serviceRoleArn="arn:aws:iam::123456789012:role/cd",
        deploymentConfigName="CodeDeployDefault.ECSAllAtOnce",
        deploymentStyle={"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
        blueGreenDeploymentConfiguration={
            "terminateBlueInstancesOnDeploymentSuccess": {"action": "TERMINATE", "terminationWaitTimeInMinutes": 1},
            "deploymentReadyOption": {"actionOnTimeout": "CONTINUE_DEPLOYMENT"},
        },
        ecsServices=[{"clusterName": name, "serviceName": "web"}],
        loadBalancerInfo={"targetGroupPairInfoList": [{
            "targetGroups": [{"name": f"{name}-blue"}, {"name": f"{name}-green"}],
            "prodTrafficRoute": {"listenerArns": [listeners[80]]},
            "testTrafficRoute": {"listenerArns": [listeners[9000]]},
        }]},
    )
    return dict(ecs=ecs, elb=elb, cd=cd, tgs=tgs, subnets=subnets, td=td, cluster=name)


def health(w, colour):
    """[(id, port, state, reason, description)] of a target group, sorted."""
    found = w["elb"].describe_target_health(TargetGroupArn=w["tgs"][colour])["TargetHealthDescriptions"]
    return sorted(
        (d["Target"]["Id"], d["Target"]["Port"], d["TargetHealth"]["State"], d["TargetHealth"].get("Reason"),
         d["TargetHealth"].get("Description"))
        for d in found
    )


def service(w):
    return w["ecs"].describe_services(cluster=w["cluster"], services=["web"])["services"][0]


def in_subnets(w, ip):
    return any(ipaddress.ip_address(ip) in ipaddress.ip_network(cidr) for cidr in w["subnets"].values())


class TargetHealthModelOffTest(EmulatorTestCase):
    ENV = {"DEPLOYER_EMU_CODEDEPLOY_SCALE": "30"}

    def tearDown(self):
        self.emu.configure(unhealthy_targets=False)

    def test_each_running_task_is_a_healthy_target_at_once(self):
        w = world(self.emu, "off1")
        svc = service(w)
        self.assertEqual((svc["desiredCount"], svc["runningCount"], svc["pendingCount"]), (2, 2, 0))
        targets = health(w, "blue")
        self.assertEqual(len(targets), 2)
        for ip, port, state, reason, description in targets:
            self.assertTrue(in_subnets(w, ip), ip)
            self.assertEqual((port, state, reason, description), (8080, "healthy", None, None))
        # One task per subnet (AZ), distinct addresses.
        self.assertEqual(len({ip for ip, *_ in targets}), 2)
        self.assertEqual(
            {next(s for s, c in w["subnets"].items() if ipaddress.ip_address(ip) in ipaddress.ip_network(c)) for ip, *_ in targets},
            set(w["subnets"]),
        )
        self.assertEqual(health(w, "green"), [])
        # The same targets, asked by Id (and Port); an unknown Id is moto's answer.
        ip = targets[0][0]
        one = w["elb"].describe_target_health(TargetGroupArn=w["tgs"]["blue"], Targets=[{"Id": ip, "Port": 8080}])
        self.assertEqual([d["Target"]["Id"] for d in one["TargetHealthDescriptions"]], [ip])
        self.assertEqual(one["TargetHealthDescriptions"][0]["TargetHealth"]["State"], "healthy")

        # Scaling out adds a task, scaling in removes them.
        w["ecs"].update_service(cluster=w["cluster"], service="web", desiredCount=3)
        self.assertEqual(len(health(w, "blue")), 3)
        self.assertTrue({t[0] for t in targets} <= {t[0] for t in health(w, "blue")})
        w["ecs"].update_service(cluster=w["cluster"], service="web", desiredCount=0)
        self.assertEqual(health(w, "blue"), [])
        # A deleted service has no tasks.
        w["ecs"].update_service(cluster=w["cluster"], service="web", desiredCount=2)
        w["ecs"].delete_service(cluster=w["cluster"], service="web", force=True)
        self.assertEqual(health(w, "blue"), [])
        self.assertEqual(
            w["ecs"].describe_services(cluster=w["cluster"], services=["web"])["services"][0]["runningCount"], 0
        )

    def test_unhealthy_targets_keeps_them_unhealthy(self):
        w = world(self.emu, "off2")
        report = self.emu.configure(unhealthy_targets=True)
        self.assertTrue(report["settings"]["unhealthy_targets"])
        targets = health(w, "blue")
        self.assertEqual(len(targets), 2)
        for _, port, state, reason, description in targets:
            self.assertEqual(
                (port, state, reason, description), (8080, "unhealthy", "Target.FailedHealthChecks", "Health checks failed")
            )
        self.emu.configure(unhealthy_targets=False)
        self.assertEqual({t[2] for t in health(w, "blue")}, {"healthy"})

    def test_a_release_moves_the_targets_to_green_and_keeps_them(self):
        w = world(self.emu, "off3")
        blue_before = health(w, "blue")
        content = codedeploy_engine.appspec(w["td"], "app", 8080)
        ident = w["cd"].create_deployment(
            applicationName="off3", deploymentGroupName="g",
            revision={"revisionType": "AppSpecContent", "appSpecContent": {"content": content}},
        )["deploymentId"]

        def status():
            return w["cd"].get_deployment(deploymentId=ident)["deploymentInfo"]["status"]

        # Install has run: the green task set's tasks are targets of the green group, blue's stay.
        self.assertTrue(wait_until(lambda: len(health(w, "green")) == 2, 10))
        self.assertEqual(health(w, "blue"), blue_before)
        green = health(w, "green")
        self.assertTrue(all(in_subnets(w, t[0]) and t[1:] == (8080, "healthy", None, None) for t in green))
        self.assertFalse({t[0] for t in green} & {t[0] for t in blue_before})
        # Succeeded (after the one-minute termination wait): blue's tasks are gone, green's are the
        # service's, the very same ones.
        self.assertTrue(wait_until(lambda: status() == "Succeeded", 15), status())
        self.assertEqual(health(w, "blue"), [])
        self.assertEqual(health(w, "green"), green)
        self.assertEqual(service(w)["runningCount"], 2)


class TargetHealthModelOnTest(EmulatorTestCase):
    # ecs_service_steady (150 s) x 0.01 = 1.5 s until the tasks run; 30 s x 5 checks x 0.01 =
    # 1.5 s more until their targets are healthy.
    ENV = {"DEPLOYER_EMU_MODEL": "1", "DEPLOYER_EMU_SCALE": "0.01"}

    def tearDown(self):
        self.emu.configure(unhealthy_targets=False)

    def test_targets_are_initial_then_healthy_after_interval_times_threshold(self):
        w = world(self.emu, "on1")
        self.assertEqual(service(w)["runningCount"], 0)
        self.assertEqual(health(w, "blue"), [])  # no task running yet
        self.assertTrue(wait_until(lambda: service(w)["runningCount"] == 2, 5))
        running_at = time.time()
        targets = health(w, "blue")
        self.assertEqual(len(targets), 2)
        self.assertEqual(
            {t[1:] for t in targets}, {(8080, "initial", "Elb.InitialHealthChecking", "Initial health checks in progress")}
        )
        self.assertTrue(wait_until(lambda: {t[2] for t in health(w, "blue")} == {"healthy"}, 5))
        # Not before interval x threshold x scale (1.5 s) after the tasks ran (0.1 s of slack
        # for the polls above).
        self.assertGreater(time.time() - running_at, 1.0)
        self.assertEqual([t[0] for t in health(w, "blue")], [t[0] for t in targets])
        waits = [x for x in self.emu.model()["waits"] if x["kind"] == "target_healthy" and x["id"].startswith("on1/web ")]
        self.assertEqual(len(waits), 2)
        self.assertEqual(waits[0]["poll_operations"], ["DescribeTargetHealth"])
        self.assertAlmostEqual(waits[0]["seconds"], 1.5)

        # Deleting the service: its tasks' targets drain with it.
        w["ecs"].update_service(cluster=w["cluster"], service="web", desiredCount=0)
        self.assertTrue(wait_until(lambda: health(w, "blue") == [], 5))

    def test_unhealthy_targets_are_initial_then_unhealthy(self):
        w = world(self.emu, "on2", interval=10, unhealthy=5)  # 10 s x 5 x 0.01 = 0.5 s
        self.emu.configure(unhealthy_targets=True)
        self.assertTrue(wait_until(lambda: len(health(w, "blue")) == 2, 5))
        states = [t[2] for t in health(w, "blue")]
        self.assertTrue(set(states) <= {"initial", "unhealthy"}, states)
        self.assertTrue(
            wait_until(
                lambda: {t[2:] for t in health(w, "blue")} == {("unhealthy", "Target.FailedHealthChecks", "Health checks failed")},
                5,
            )
        )
        time.sleep(2)  # and they stay so
        self.assertEqual({t[2] for t in health(w, "blue")}, {"unhealthy"})

    def test_a_deleted_service_drains_its_targets(self):
        w = world(self.emu, "on3", desired=1)
        self.assertTrue(wait_until(lambda: {t[2] for t in health(w, "blue")} == {"healthy"}, 8))
        w["ecs"].delete_service(cluster=w["cluster"], service="web", force=True)
        self.assertEqual(
            [t[2:] for t in health(w, "blue")],
            [("draining", "Target.DeregistrationInProgress", "Target deregistration is in progress")],
        )


class UnhealthyTargetsFromTheEnvironmentTest(EmulatorTestCase):
    ENV = {"DEPLOYER_EMU_UNHEALTHY_TARGETS": "1"}

    def test_the_setting_is_on_from_the_start(self):
        self.assertTrue(self.emu.model()["settings"]["unhealthy_targets"])
        self.assertFalse(self.emu.model()["settings"]["model"])
        w = world(self.emu, "env1", desired=1)
        self.assertEqual([t[2] for t in health(w, "blue")], ["unhealthy"])
        self.emu.configure(unhealthy_targets=False)
        self.assertEqual([t[2] for t in health(w, "blue")], ["healthy"])


if __name__ == "__main__":
    unittest.main()
