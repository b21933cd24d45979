"""The Resource Groups Tagging API's GetResources as the deployer calls it (TagFilters
deployer:app and deployer:env, TagsPerPage=500, paginated, one call per region), against the
in-process moto with moto_fixes applied (moto_fixes._patch_tagging_*): every kind of resource
the deployer reads tags of is listed with the ARN and tags its own service answers, others'
resources are not, and deleted ones are gone."""

import json
import time
import unittest
from unittest import mock

import boto3
from moto import mock_aws

import moto_fixes

moto_fixes.apply()

REGION = "us-east-1"
ACCOUNT = "123456789012"
OURS = {"deployer:app": "shop", "deployer:env": "prod"}
FILTERS = [{"Key": "deployer:app", "Values": ["shop"]}, {"Key": "deployer:env", "Values": ["prod"]}]


def tag_list(tags, key="Key", value="Value"):
    return [{key: k, value: v} for k, v in tags.items()]


def get_resources(region=REGION, tags_per_page=500, filters=FILTERS):
    """{ARN: tags} of every page, as the deployer reads them, and the pages' sizes."""
    client = boto3.client("resourcegroupstaggingapi", region_name=region)
    found, pages, token = {}, [], None
    while True:
        kwargs = {"TagFilters": filters, "TagsPerPage": tags_per_page}
        if token:
            kwargs["PaginationToken"] = token
        page = client.get_resources(**kwargs)
        mappings = page["ResourceTagMappingList"]
        pages.append(mappings)
        for m in mappings:
            assert m["ResourceARN"] not in found, f"{m['ResourceARN']} is on two pages"
            found[m["ResourceARN"]] = {t["Key"]: t["Value"] for t in m["Tags"]}
        token = page.get("PaginationToken")
        if not token:
            return found, pages


class Env:
    """Creates one of each resource the deployer tags, in `region`, with `tags`, and records
    (what, ARN as the resource's own service answers it) of each."""

    def __init__(self, region=REGION, tags=OURS, prefix="shop-prod"):
        self.region, self.tags, self.p = region, dict(tags), prefix
        self.arns = {}

    def client(self, service):
        return boto3.client(service, region_name=self.region)

    def network(self):
        ec2 = self.client("ec2")
        vpc = ec2.create_vpc(
            CidrBlock="10.0.0.0/16", TagSpecifications=[{"ResourceType": "vpc", "Tags": tag_list(self.tags)}]
        )["Vpc"]["VpcId"]
        self.arns["ec2 vpc"] = f"arn:aws:ec2:{self.region}:{ACCOUNT}:vpc/{vpc}"
        zones = [z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"]][:2]
        subnets = [
            ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=z)["Subnet"]["SubnetId"]
            for i, z in enumerate(zones)
        ]
        return vpc, subnets

    def create_all(self):
        p, tags = self.p, self.tags
        vpc, subnets = self.network()

        rds = self.client("rds")
        rds.create_db_subnet_group(
            DBSubnetGroupName=f"{p}-db", DBSubnetGroupDescription="d", SubnetIds=subnets, Tags=tag_list(tags)
        )
        self.arns["rds subnet group"] = rds.describe_db_subnet_groups(DBSubnetGroupName=f"{p}-db")[
            "DBSubnetGroups"][0]["DBSubnetGroupArn"]
        rds.create_db_parameter_group(
            DBParameterGroupName=f"{p}-pg", DBParameterGroupFamily="postgres16", Description="d", Tags=tag_list(tags)
        )
        self.arns["rds parameter group"] = rds.describe_db_parameter_groups(DBParameterGroupName=f"{p}-pg")[
            "DBParameterGroups"][0]["DBParameterGroupArn"]

        ecr = self.client("ecr")
        ecr.create_repository(repositoryName=p, tags=tag_list(tags))
        self.arns["ecr repository"] = ecr.describe_repositories(repositoryNames=[p])["repositories"][0][
            "repositoryArn"]

        scheduler = self.client("scheduler")
        scheduler.create_schedule_group(Name=p, Tags=tag_list(tags))
        self.arns["schedule group"] = scheduler.get_schedule_group(Name=p)["Arn"]

        acm = self.client("acm")
        self.arns["acm certificate"] = acm.request_certificate(
            DomainName=f"{p}.example.test", ValidationMethod="DNS", Tags=tag_list(tags)
        )["CertificateArn"]

        cloudwatch = self.client("cloudwatch")
        cloudwatch.put_metric_alarm(
            AlarmName=f"{p}-cpu", MetricName="CPUUtilization", Namespace="AWS/ECS", Statistic="Average",
            Period=60, EvaluationPeriods=1, Threshold=80.0, ComparisonOperator="GreaterThanThreshold",
            Tags=tag_list(tags),
        )
        self.arns["cloudwatch alarm"] = cloudwatch.describe_alarms(AlarmNames=[f"{p}-cpu"])["MetricAlarms"][0][
            "AlarmArn"]

        self.arns["sns topic"] = self.client("sns").create_topic(Name=f"{p}-alerts", Tags=tag_list(tags))[
            "TopicArn"]

        logs = self.client("logs")
        logs.create_log_group(logGroupName=f"/{p}/web", tags=dict(tags))
        group = logs.describe_log_groups(logGroupNamePrefix=f"/{p}/web")["logGroups"][0]
        self.arns["log group"] = group["logGroupArn"]

        events = self.client("events")
        self.arns["events rule"] = events.put_rule(
            Name=f"{p}-nightly", ScheduleExpression="rate(1 day)", Tags=tag_list(tags)
        )["RuleArn"]

        codedeploy = self.client("codedeploy")
        codedeploy.create_application(applicationName=p, computePlatform="ECS", tags=tag_list(tags))
        self.arns["codedeploy application"] = f"arn:aws:codedeploy:{self.region}:{ACCOUNT}:application:{p}"
        codedeploy.create_deployment_group(
            applicationName=p, deploymentGroupName="web", serviceRoleArn=f"arn:aws:iam::{ACCOUNT}:role/cd",
            tags=tag_list(tags),
        )
        self.arns["codedeploy deployment group"] = (
            f"arn:aws:codedeploy:{self.region}:{ACCOUNT}:deploymentgroup:{p}/web"
        )

        elb = self.client("elbv2")
        lb = elb.create_load_balancer(Name=p, Subnets=subnets, Tags=tag_list(tags))["LoadBalancers"][0][
            "LoadBalancerArn"]
        tg = elb.create_target_group(
            Name=p, Protocol="HTTP", Port=80, VpcId=vpc, TargetType="ip", Tags=tag_list(tags)
        )["TargetGroups"][0]["TargetGroupArn"]
        listener = elb.create_listener(
            LoadBalancerArn=lb, Protocol="HTTP", Port=80,
            DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}], Tags=tag_list(tags),
        )["Listeners"][0]["ListenerArn"]
        self.arns.update({"load balancer": lb, "target group": tg, "listener": listener})

        secrets = self.client("secretsmanager")
        self.arns["secret"] = secrets.create_secret(Name=f"{p}/db", SecretString="x", Tags=tag_list(tags))["ARN"]

        ecs = self.client("ecs")
        ecs_tags = tag_list(tags, "key", "value")
        self.arns["ecs cluster"] = ecs.create_cluster(clusterName=p, tags=ecs_tags)["cluster"]["clusterArn"]
        td = ecs.register_task_definition(
            family=f"{p}-web", containerDefinitions=[{"name": "web", "image": "web:1", "memory": 512}], tags=ecs_tags
        )["taskDefinition"]["taskDefinitionArn"]
        self.arns["ecs task definition"] = td
        self.arns["ecs service"] = ecs.create_service(
            cluster=p, serviceName="web", taskDefinition=td, desiredCount=1, tags=ecs_tags
        )["service"]["serviceArn"]
        return self


class GetResourcesTest(unittest.TestCase):
    def setUp(self):
        self.mock = mock_aws()
        self.mock.start()
        self.addCleanup(self.mock.stop)
        # ACM issues a DNS-validated certificate only once its record is found; no matter here.
        patcher = mock.patch("moto.settings.ACM_VALIDATION_WAIT", 0)
        patcher.start()
        self.addCleanup(patcher.stop)

    def test_every_kind_is_listed_with_its_arn_and_its_tags(self):
        env = Env(tags=dict(OURS, Name="web")).create_all()
        found, _ = get_resources()
        for what, arn in env.arns.items():
            with self.subTest(what):
                self.assertIn(arn, found)
                self.assertEqual(found[arn], dict(OURS, Name="web"))
        self.assertEqual(set(found), set(env.arns.values()))

    def test_the_arns_are_those_aws_uses(self):
        env = Env().create_all()
        found, _ = get_resources()
        prefix = f"arn:aws:%s:{REGION}:{ACCOUNT}:"
        self.assertIn((prefix % "rds") + "subgrp:shop-prod-db", found)
        self.assertIn((prefix % "rds") + "pg:shop-prod-pg", found)
        self.assertIn((prefix % "ecr") + "repository/shop-prod", found)
        self.assertIn((prefix % "scheduler") + "schedule-group/shop-prod", found)
        self.assertIn((prefix % "logs") + "log-group:/shop-prod/web", found)  # no ":*"
        self.assertIn((prefix % "events") + "rule/shop-prod-nightly", found)
        self.assertIn((prefix % "sns") + "shop-prod-alerts", found)
        self.assertIn((prefix % "cloudwatch") + "alarm:shop-prod-cpu", found)
        self.assertIn((prefix % "codedeploy") + "application:shop-prod", found)
        self.assertIn((prefix % "codedeploy") + "deploymentgroup:shop-prod/web", found)
        self.assertTrue(env.arns["listener"].startswith((prefix % "elasticloadbalancing") + "listener/app/shop-prod/"))
        # The log group's ARN is DescribeLogGroups' logGroupArn, its `arn` without ":*".
        group = boto3.client("logs", region_name=REGION).describe_log_groups()["logGroups"][0]
        self.assertEqual(group["arn"], group["logGroupArn"] + ":*")

    def test_the_tags_are_those_each_service_answers_now(self):
        env = Env().create_all()
        rds = boto3.client("rds", region_name=REGION)
        rds.add_tags_to_resource(ResourceName=env.arns["rds subnet group"], Tags=[{"Key": "team", "Value": "a"}])
        rds.remove_tags_from_resource(ResourceName=env.arns["rds parameter group"], TagKeys=["deployer:env"])
        ecr = boto3.client("ecr", region_name=REGION)
        ecr.tag_resource(resourceArn=env.arns["ecr repository"], tags=[{"Key": "team", "Value": "b"}])
        scheduler = boto3.client("scheduler", region_name=REGION)
        scheduler.tag_resource(ResourceArn=env.arns["schedule group"], Tags=[{"Key": "team", "Value": "c"}])
        boto3.client("elbv2", region_name=REGION).add_tags(
            ResourceArns=[env.arns["listener"]], Tags=[{"Key": "team", "Value": "d"}]
        )
        found, _ = get_resources()
        self.assertEqual(found[env.arns["rds subnet group"]], dict(OURS, team="a"))
        self.assertNotIn(env.arns["rds parameter group"], found)  # no longer tagged for the env
        self.assertEqual(found[env.arns["ecr repository"]], dict(OURS, team="b"))
        self.assertEqual(found[env.arns["schedule group"]], dict(OURS, team="c"))
        self.assertEqual(found[env.arns["listener"]], dict(OURS, team="d"))
        # The same tags as each service's own ListTagsForResource.
        listed = rds.list_tags_for_resource(ResourceName=env.arns["rds subnet group"])["TagList"]
        self.assertEqual({t["Key"]: t["Value"] for t in listed}, found[env.arns["rds subnet group"]])
        listed = ecr.list_tags_for_resource(resourceArn=env.arns["ecr repository"])["tags"]
        self.assertEqual({t["Key"]: t["Value"] for t in listed}, found[env.arns["ecr repository"]])
        listed = scheduler.list_tags_for_resource(ResourceArn=env.arns["schedule group"])["Tags"]
        self.assertEqual({t["Key"]: t["Value"] for t in listed}, found[env.arns["schedule group"]])

    def test_others_resources_are_not_listed(self):
        ours = Env().create_all()
        staging = Env(tags={"deployer:app": "shop", "deployer:env": "staging"}, prefix="shop-stg").create_all()
        other = Env(tags={"owner": "someone-else"}, prefix="other").create_all()
        found, _ = get_resources()
        self.assertEqual(set(found), set(ours.arns.values()))
        for arn in list(staging.arns.values()) + list(other.arns.values()):
            self.assertNotIn(arn, found)

    def test_one_region_at_a_time(self):
        east = Env().create_all()
        west = Env(region="us-west-2").create_all()
        found_east, _ = get_resources()
        found_west, _ = get_resources(region="us-west-2")
        self.assertEqual(set(found_east), set(east.arns.values()))
        self.assertEqual(set(found_west), set(west.arns.values()))

    def test_a_deleted_resource_is_gone(self):
        env = Env().create_all()
        arns = env.arns
        c = lambda service: boto3.client(service, region_name=REGION)
        c("rds").delete_db_subnet_group(DBSubnetGroupName="shop-prod-db")
        c("rds").delete_db_parameter_group(DBParameterGroupName="shop-prod-pg")
        c("ecr").delete_repository(repositoryName="shop-prod")
        c("scheduler").delete_schedule_group(Name="shop-prod")
        c("acm").delete_certificate(CertificateArn=arns["acm certificate"])
        c("cloudwatch").delete_alarms(AlarmNames=["shop-prod-cpu"])
        c("sns").delete_topic(TopicArn=arns["sns topic"])
        c("logs").delete_log_group(logGroupName="/shop-prod/web")
        c("events").delete_rule(Name="shop-prod-nightly")
        c("codedeploy").delete_deployment_group(applicationName="shop-prod", deploymentGroupName="web")
        c("codedeploy").delete_application(applicationName="shop-prod")
        elb = c("elbv2")
        elb.delete_listener(ListenerArn=arns["listener"])
        elb.delete_load_balancer(LoadBalancerArn=arns["load balancer"])
        elb.delete_target_group(TargetGroupArn=arns["target group"])
        c("secretsmanager").delete_secret(SecretId=arns["secret"], ForceDeleteWithoutRecovery=True)
        ecs = c("ecs")
        ecs.update_service(cluster="shop-prod", service="web", desiredCount=0)
        ecs.delete_service(cluster="shop-prod", service="web")
        ecs.delete_cluster(cluster="shop-prod")
        ecs.deregister_task_definition(taskDefinition=arns["ecs task definition"])
        ecs.delete_task_definitions(taskDefinitions=[arns["ecs task definition"]])
        ec2 = c("ec2")
        for subnet in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [arns["ec2 vpc"].split("/")[-1]]}])[
            "Subnets"
        ]:
            ec2.delete_subnet(SubnetId=subnet["SubnetId"])
        ec2.delete_vpc(VpcId=arns["ec2 vpc"].split("/")[-1])
        found, _ = get_resources()
        self.assertEqual(found, {})

    def test_a_resource_of_the_same_name_does_not_inherit_the_deleted_ones_tags(self):
        env = Env().create_all()
        c = lambda service: boto3.client(service, region_name=REGION)
        c("logs").delete_log_group(logGroupName="/shop-prod/web")
        c("logs").create_log_group(logGroupName="/shop-prod/web")
        c("cloudwatch").delete_alarms(AlarmNames=["shop-prod-cpu"])
        c("cloudwatch").put_metric_alarm(
            AlarmName="shop-prod-cpu", MetricName="CPUUtilization", Namespace="AWS/ECS", Statistic="Average",
            Period=60, EvaluationPeriods=1, Threshold=80.0, ComparisonOperator="GreaterThanThreshold",
        )
        c("scheduler").delete_schedule_group(Name="shop-prod")
        c("scheduler").create_schedule_group(Name="shop-prod")
        found, _ = get_resources()
        for what in ("log group", "cloudwatch alarm", "schedule group"):
            self.assertNotIn(env.arns[what], found, what)
        self.assertEqual(c("logs").list_tags_for_resource(resourceArn=env.arns["log group"])["tags"], {})
        self.assertEqual(c("cloudwatch").list_tags_for_resource(ResourceARN=env.arns["cloudwatch alarm"])["Tags"], [])
        self.assertEqual(c("scheduler").list_tags_for_resource(ResourceArn=env.arns["schedule group"])["Tags"], [])

    def test_an_inactive_task_definition_is_still_listed(self):
        # Deregistered, not deleted: AWS keeps INACTIVE revisions ("remain discoverable").
        env = Env().create_all()
        boto3.client("ecs", region_name=REGION).deregister_task_definition(
            taskDefinition=env.arns["ecs task definition"]
        )
        found, _ = get_resources()
        self.assertIn(env.arns["ecs task definition"], found)

    def test_resource_type_filters_use_the_types_in_the_arns(self):
        env = Env().create_all()
        client = boto3.client("resourcegroupstaggingapi", region_name=REGION)

        def of_type(*types):
            page = client.get_resources(TagFilters=FILTERS, ResourceTypeFilters=list(types))
            return {m["ResourceARN"] for m in page["ResourceTagMappingList"]}

        self.assertEqual(of_type("rds:subgrp"), {env.arns["rds subnet group"]})
        self.assertEqual(of_type("rds:pg"), {env.arns["rds parameter group"]})
        self.assertEqual(of_type("ecr:repository"), {env.arns["ecr repository"]})
        self.assertEqual(of_type("scheduler:schedule-group"), {env.arns["schedule group"]})
        self.assertEqual(of_type("logs:log-group"), {env.arns["log group"]})
        self.assertEqual(of_type("events:rule"), {env.arns["events rule"]})
        self.assertEqual(of_type("elasticloadbalancing:listener"), {env.arns["listener"]})
        self.assertEqual(
            of_type("codedeploy"), {env.arns["codedeploy application"], env.arns["codedeploy deployment group"]}
        )

    def test_the_tagging_api_tags_ecr_repositories_and_schedule_groups(self):
        env = Env().create_all()
        client = boto3.client("resourcegroupstaggingapi", region_name=REGION)
        arns = [env.arns["ecr repository"], env.arns["schedule group"]]
        answer = client.tag_resources(ResourceARNList=arns, Tags={"team": "z"})
        self.assertEqual(answer["FailedResourcesMap"], {})
        found, _ = get_resources()
        for arn in arns:
            self.assertEqual(found[arn], dict(OURS, team="z"))


class PaginationTest(unittest.TestCase):
    def setUp(self):
        self.mock = mock_aws()
        self.mock.start()
        self.addCleanup(self.mock.stop)
        self.logs = boto3.client("logs", region_name=REGION)

    def groups(self, count, tags_each, start=0):
        extra = {f"k{i}": "v" for i in range(tags_each - len(OURS))}
        for i in range(start, start + count):
            self.logs.create_log_group(logGroupName=f"/shop/{i:03d}", tags=dict(OURS, **extra))

    def test_a_page_holds_up_to_exactly_tags_per_page(self):
        # The API reference's example: TagsPerPage 100, 22 resources with 10 tags each: 10, 10, 2.
        self.groups(22, 10)
        found, pages = get_resources(tags_per_page=100)
        self.assertEqual([len(p) for p in pages], [10, 10, 2])
        self.assertEqual(len(found), 22)

    def test_no_page_holds_more_than_tags_per_page(self):
        self.groups(40, 7)
        found, pages = get_resources(tags_per_page=100)
        self.assertEqual(len(found), 40)
        for page in pages:
            self.assertLessEqual(sum(len(m["Tags"]) for m in page), 100)
        self.assertEqual([len(p) for p in pages], [14, 14, 12])

    def test_the_deployers_pages(self):
        # Five tags each, TagsPerPage 500: every resource once, whatever the page sizes.
        self.groups(130, 5)
        found, pages = get_resources(tags_per_page=500)
        self.assertEqual(len(found), 130)
        for page in pages:
            self.assertLessEqual(sum(len(m["Tags"]) for m in page), 500)

    def test_resources_created_between_two_pages_do_not_break_the_listing(self):
        self.groups(22, 10)
        client = boto3.client("resourcegroupstaggingapi", region_name=REGION)
        first = client.get_resources(TagFilters=FILTERS, TagsPerPage=100)
        self.groups(5, 10, start=100)  # moto resumed a generator over this very table
        self.logs.delete_log_group(logGroupName="/shop/000")
        second = client.get_resources(TagFilters=FILTERS, TagsPerPage=100, PaginationToken=first["PaginationToken"])
        self.assertEqual(len(second["ResourceTagMappingList"]), 10)
        # A token sent again (an SDK retry) answers the same page.
        again = client.get_resources(TagFilters=FILTERS, TagsPerPage=100, PaginationToken=first["PaginationToken"])
        self.assertEqual(again["ResourceTagMappingList"], second["ResourceTagMappingList"])

    def test_a_token_expires_after_15_minutes(self):
        self.groups(22, 10)
        client = boto3.client("resourcegroupstaggingapi", region_name=REGION)
        token = client.get_resources(TagFilters=FILTERS, TagsPerPage=100)["PaginationToken"]
        later = time.monotonic() + moto_fixes.TAGGING_TOKEN_SECONDS + 1
        with mock.patch("time.monotonic", return_value=later):
            with self.assertRaises(client.exceptions.PaginationTokenExpiredException):
                client.get_resources(TagFilters=FILTERS, TagsPerPage=100, PaginationToken=token)


if __name__ == "__main__":
    unittest.main()
