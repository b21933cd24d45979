"""GET /_deployer/inventory (deployer_emulator.py): every live resource a deployer run could have
created, read from moto's backends, through the real emulator with boto3."""

import json
import unittest

from test_aws_model import EmulatorTestCase

ZONE_ENV = {"DEPLOYER_EMU_HOSTED_ZONES": "deployer.test", "MOTO_ACM_VALIDATION_WAIT": "0"}
ROLE_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    }
)
APPSPEC_ROLE = "arn:aws:iam::123456789012:role/codedeploy"


def inventory(emu):
    return emu.get_json("/_deployer/inventory")["resources"]


class FreshInventoryTest(EmulatorTestCase):
    ENV = ZONE_ENV

    def test_a_fresh_emulator_holds_nothing_of_a_run(self):
        # Reads make moto create every region's backends, with AWS's defaults: default VPCs,
        # default security groups and NACLs, main route tables, the default event bus and
        # schedule group, the seeded hosted zone and its SOA/NS records, public SSM parameters,
        # AWS-managed KMS keys, the predefined CodeDeploy configurations.
        for region in ("us-east-1", "us-east-2"):
            c = lambda s: self.emu.client(s, region=region, harness=True)  # noqa: E731
            c("ec2").describe_vpcs()
            c("ec2").describe_security_groups()
            c("ec2").describe_route_tables()
            c("ec2").describe_network_acls()
            c("ecr").describe_repositories()
            c("ecr").describe_registry()
            c("rds").describe_db_instances()
            c("rds").describe_db_parameter_groups()
            c("secretsmanager").list_secrets()
            c("ssm").get_parameters_by_path(Path="/aws/service/global-infrastructure/regions")
            c("elbv2").describe_load_balancers()
            c("ecs").list_clusters()
            c("logs").describe_log_groups()
            c("acm").list_certificates()
            c("application-autoscaling").describe_scalable_targets(ServiceNamespace="ecs")
            c("cloudwatch").describe_alarms()
            c("sns").list_topics()
            c("codedeploy").list_deployment_configs()
            c("events").list_rules()
            c("scheduler").list_schedule_groups()
            c("kms").describe_key(KeyId="alias/aws/secretsmanager")
        iam = self.emu.client("iam", harness=True)
        iam.list_roles()
        iam.list_policies(Scope="AWS", MaxItems=5)
        route53 = self.emu.client("route53", harness=True)
        zone = route53.list_hosted_zones()["HostedZones"][0]
        self.assertEqual(zone["Name"], "deployer.test.")
        self.assertEqual(
            sorted(r["Type"] for r in route53.list_resource_record_sets(HostedZoneId=zone["Id"])["ResourceRecordSets"]),
            ["NS", "SOA"],
        )
        self.assertEqual(inventory(self.emu), [])

        # An inventory is no AWS request: the model does not count it.
        before = self.emu.model()["totals"]
        inventory(self.emu)
        self.assertEqual(self.emu.model()["totals"], before)


class InventoryTest(EmulatorTestCase):
    ENV = ZONE_ENV

    def test_what_a_run_creates_is_listed_and_gone_after_its_deletion(self):
        c = lambda s, region="us-east-1": self.emu.client(s, region=region, harness=True)  # noqa: E731
        ec2, ec2b = c("ec2"), c("ec2", "us-east-2")
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        peer_vpc = ec2b.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
        subnets = [
            ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"us-east-1{az}")["Subnet"]["SubnetId"]
            for i, az in enumerate("ab")
        ]
        igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
        ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
        rt = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
        assoc = ec2.associate_route_table(RouteTableId=rt, SubnetId=subnets[0])["AssociationId"]
        ec2.create_route(RouteTableId=rt, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
        sg = ec2.create_security_group(GroupName="app", Description="app", VpcId=vpc)["GroupId"]
        eip = ec2.allocate_address(Domain="vpc")["AllocationId"]
        nat = ec2.create_nat_gateway(SubnetId=subnets[0], AllocationId=eip)["NatGateway"]["NatGatewayId"]
        eni = ec2.create_network_interface(SubnetId=subnets[1])["NetworkInterface"]["NetworkInterfaceId"]
        pcx = ec2.create_vpc_peering_connection(VpcId=vpc, PeerVpcId=peer_vpc, PeerRegion="us-east-2")[
            "VpcPeeringConnection"
        ]["VpcPeeringConnectionId"]
        ec2b.accept_vpc_peering_connection(VpcPeeringConnectionId=pcx)

        ecr = c("ecr")
        ecr.create_repository(repositoryName="app")
        ecr.put_replication_configuration(
            replicationConfiguration={"rules": [{"destinations": [{"region": "us-east-2", "registryId": "123456789012"}]}]}
        )

        rds = c("rds")
        rds.create_db_subnet_group(DBSubnetGroupName="app-db", DBSubnetGroupDescription="x", SubnetIds=subnets)
        rds.create_db_parameter_group(DBParameterGroupName="app-pg", DBParameterGroupFamily="postgres16", Description="x")
        rds.create_db_instance(
            DBInstanceIdentifier="app-db", DBInstanceClass="db.t4g.micro", Engine="postgres", EngineVersion="16.3",
            MasterUsername="app_admin", MasterUserPassword="secretsecret", AllocatedStorage=20,
            DBSubnetGroupName="app-db", BackupRetentionPeriod=1,
        )
        rds.create_db_snapshot(DBInstanceIdentifier="app-db", DBSnapshotIdentifier="app-snap")

        sm = c("secretsmanager")
        sm.create_secret(Name="app/db", SecretString="x", AddReplicaRegions=[{"Region": "us-east-2"}])
        c("ssm").put_parameter(Name="/app/config", Value="x", Type="String")

        elb = c("elbv2")
        lb = elb.create_load_balancer(Name="app-lb", Subnets=subnets, SecurityGroups=[sg])["LoadBalancers"][0]["LoadBalancerArn"]
        tg = elb.create_target_group(Name="app-blue", Protocol="HTTP", Port=8080, VpcId=vpc, TargetType="ip")[
            "TargetGroups"
        ][0]["TargetGroupArn"]
        listener = elb.create_listener(
            LoadBalancerArn=lb, Protocol="HTTP", Port=80, DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}]
        )["Listeners"][0]["ListenerArn"]

        ecs = c("ecs")
        ecs.create_cluster(clusterName="app")
        td = ecs.register_task_definition(
            family="app",
            containerDefinitions=[{"name": "app", "image": "app:1", "memory": 512, "portMappings": [{"containerPort": 8080}]}],
        )["taskDefinition"]["taskDefinitionArn"]
        ecs.create_service(
            cluster="app", serviceName="web", taskDefinition=td, desiredCount=1,
            deploymentController={"type": "CODE_DEPLOY"},
            loadBalancers=[{"targetGroupArn": tg, "containerName": "app", "containerPort": 8080}],
        )
        c("logs").create_log_group(logGroupName="/ecs/app")

        iam = c("iam")
        iam.create_role(RoleName="app-task", AssumeRolePolicyDocument=ROLE_POLICY)
        policy = iam.create_policy(PolicyName="app-policy", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}
        ))["Policy"]["Arn"]
        # AWS's own: a service-linked role is not the run's.
        iam.create_service_linked_role(AWSServiceName="ecs.amazonaws.com")

        cert = c("acm").request_certificate(DomainName="app.deployer.test", ValidationMethod="DNS")["CertificateArn"]

        route53 = c("route53")
        seeded = route53.list_hosted_zones_by_name(DNSName="deployer.test")["HostedZones"][0]["Id"]
        record = {"Name": "app.deployer.test.", "Type": "A", "TTL": 60, "ResourceRecords": [{"Value": "10.0.0.1"}]}
        route53.change_resource_record_sets(
            HostedZoneId=seeded, ChangeBatch={"Changes": [{"Action": "CREATE", "ResourceRecordSet": record}]}
        )
        own_zone = route53.create_hosted_zone(Name="internal.test", CallerReference="run-1")["HostedZone"]["Id"]
        hc = route53.create_health_check(
            CallerReference="hc-1",
            HealthCheckConfig={"Type": "HTTPS", "FullyQualifiedDomainName": "app.deployer.test", "Port": 443, "ResourcePath": "/"},
        )["HealthCheck"]["Id"]

        aas = c("application-autoscaling")
        aas.register_scalable_target(
            ServiceNamespace="ecs", ResourceId="service/app/web", ScalableDimension="ecs:service:DesiredCount",
            MinCapacity=1, MaxCapacity=4,
        )
        aas.put_scaling_policy(
            PolicyName="cpu", ServiceNamespace="ecs", ResourceId="service/app/web",
            ScalableDimension="ecs:service:DesiredCount", PolicyType="TargetTrackingScaling",
            TargetTrackingScalingPolicyConfiguration={
                "TargetValue": 60.0, "PredefinedMetricSpecification": {"PredefinedMetricType": "ECSServiceAverageCPUUtilization"},
            },
        )

        cw = c("cloudwatch")
        cw.put_metric_alarm(
            AlarmName="app 5xx", MetricName="HTTPCode_Target_5XX_Count", Namespace="AWS/ApplicationELB",
            Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanOrEqualToThreshold",
        )
        cw.put_dashboard(DashboardName="app", DashboardBody=json.dumps({"widgets": []}))

        sns = c("sns")
        topic = sns.create_topic(Name="app-alerts")["TopicArn"]
        sub = sns.subscribe(TopicArn=topic, Protocol="email", Endpoint="ops@example.com", ReturnSubscriptionArn=True)[
            "SubscriptionArn"
        ]

        cd = c("codedeploy")
        cd.create_application(applicationName="app", computePlatform="ECS")
        cd.create_deployment_config(
            deploymentConfigName="app-canary", computePlatform="ECS",
            trafficRoutingConfig={"type": "TimeBasedCanary", "timeBasedCanary": {"canaryPercentage": 10, "canaryInterval": 5}},
        )
        cd.create_deployment_group(
            applicationName="app", deploymentGroupName="web", serviceRoleArn=APPSPEC_ROLE,
            deploymentConfigName="app-canary",
            deploymentStyle={"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
            ecsServices=[{"clusterName": "app", "serviceName": "web"}],
        )

        c("events").put_rule(Name="app-nightly", ScheduleExpression="rate(1 day)")
        scheduler = c("scheduler")
        scheduler.create_schedule_group(Name="app")
        scheduler.create_schedule(
            Name="nightly", GroupName="app", ScheduleExpression="rate(1 day)", FlexibleTimeWindow={"Mode": "OFF"},
            Target={"Arn": "arn:aws:ecs:us-east-1:123456789012:cluster/app", "RoleArn": APPSPEC_ROLE},
        )
        kms = c("kms")
        key = kms.create_key(Description="app")["KeyMetadata"]["KeyId"]
        kms.create_alias(AliasName="alias/app", TargetKeyId=key)

        listed = inventory(self.emu)
        seeded_id = seeded.split("/")[-1]
        own_zone_id = own_zone.split("/")[-1]
        expected = {
            f"ec2 us-east-1 vpc {vpc}",
            f"ec2 us-east-2 vpc {peer_vpc}",
            f"ec2 us-east-1 subnet {subnets[0]}",
            f"ec2 us-east-1 subnet {subnets[1]}",
            f"ec2 us-east-1 internet-gateway {igw}",
            f"ec2 us-east-1 route-table {rt}",
            f"ec2 us-east-1 security-group {sg}",
            f"ec2 us-east-1 elastic-ip {eip}",
            f"ec2 us-east-1 nat-gateway {nat}",
            f"ec2 us-east-1 network-interface {eni}",
            f"ec2 us-east-1 vpc-peering-connection {pcx}",
            "ecr us-east-1 repository app",
            "ecr us-east-1 replication-rule 1:us-east-2",
            "rds us-east-1 db-instance app-db",
            "rds us-east-1 db-subnet-group app-db",
            "rds us-east-1 db-parameter-group app-pg",
            "rds us-east-1 db-snapshot app-snap",
            "secretsmanager us-east-1 secret app/db",
            "secretsmanager us-east-2 secret-replica app/db",
            "ssm us-east-1 parameter /app/config",
            "elbv2 us-east-1 load-balancer app-lb",
            "elbv2 us-east-1 listener app-lb:80",
            "elbv2 us-east-1 target-group app-blue",
            "ecs us-east-1 cluster app",
            "ecs us-east-1 service app/web",
            "ecs us-east-1 task-definition app:1",
            "logs us-east-1 log-group /ecs/app",
            "iam global role app-task",
            "iam global policy app-policy",
            f"acm us-east-1 certificate {cert}",
            f"route53 global record-set {seeded_id}:app.deployer.test.:A",
            f"route53 global hosted-zone {own_zone_id}:internal.test.",
            f"route53 global health-check {hc}",
            "application-autoscaling us-east-1 scalable-target service/app/web:ecs:service:DesiredCount",
            "application-autoscaling us-east-1 scaling-policy service/app/web:ecs:service:DesiredCount:cpu",
            "cloudwatch us-east-1 alarm app 5xx",
            "cloudwatch us-east-1 dashboard app",
            "sns us-east-1 topic app-alerts",
            "sns us-east-1 subscription app-alerts:email:ops@example.com",
            "codedeploy us-east-1 application app",
            "codedeploy us-east-1 deployment-group app/web",
            "codedeploy us-east-1 deployment-config app-canary",
            "events us-east-1 rule app-nightly",
            "scheduler us-east-1 schedule-group app",
            "scheduler us-east-1 schedule app/nightly",
            f"kms us-east-1 key {key}",
            "kms us-east-1 alias alias/app",
        }
        self.assertEqual(listed, sorted(listed))
        missing = expected - set(listed)
        self.assertFalse(missing, f"not listed: {sorted(missing)}")
        # Beyond those, only the target-tracking policy's two alarms, which AWS manages for it.
        extra = sorted(set(listed) - expected)
        self.assertEqual(len(extra), 2, extra)
        self.assertTrue(all(e.startswith("cloudwatch us-east-1 alarm TargetTracking-service/app/web-Alarm") for e in extra))
        for line in listed:
            self.assertNotIn("default", line.split(" ", 3)[3].lower(), line)

        # Delete everything, as a destroy would.
        kms.delete_alias(AliasName="alias/app")
        kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=7)
        scheduler.delete_schedule(Name="nightly", GroupName="app")
        scheduler.delete_schedule_group(Name="app")
        c("events").delete_rule(Name="app-nightly")
        cd.delete_deployment_group(applicationName="app", deploymentGroupName="web")
        cd.delete_deployment_config(deploymentConfigName="app-canary")
        cd.delete_application(applicationName="app")
        sns.unsubscribe(SubscriptionArn=sub)
        sns.delete_topic(TopicArn=topic)
        cw.delete_alarms(AlarmNames=["app 5xx"])
        cw.delete_dashboards(DashboardNames=["app"])
        aas.delete_scaling_policy(
            PolicyName="cpu", ServiceNamespace="ecs", ResourceId="service/app/web", ScalableDimension="ecs:service:DesiredCount"
        )
        aas.deregister_scalable_target(
            ServiceNamespace="ecs", ResourceId="service/app/web", ScalableDimension="ecs:service:DesiredCount"
        )
        route53.delete_health_check(HealthCheckId=hc)
        route53.delete_hosted_zone(Id=own_zone)
        route53.change_resource_record_sets(
            HostedZoneId=seeded, ChangeBatch={"Changes": [{"Action": "DELETE", "ResourceRecordSet": record}]}
        )
        c("acm").delete_certificate(CertificateArn=cert)
        iam.delete_policy(PolicyArn=policy)
        iam.delete_role(RoleName="app-task")
        c("logs").delete_log_group(logGroupName="/ecs/app")
        ecs.update_service(cluster="app", service="web", desiredCount=0)
        ecs.delete_service(cluster="app", service="web")
        ecs.deregister_task_definition(taskDefinition=td)
        ecs.delete_cluster(cluster="app")
        elb.delete_listener(ListenerArn=listener)
        elb.delete_load_balancer(LoadBalancerArn=lb)
        elb.delete_target_group(TargetGroupArn=tg)
        c("ssm").delete_parameter(Name="/app/config")
        sm.remove_regions_from_replication(SecretId="app/db", RemoveReplicaRegions=["us-east-2"])
        sm.delete_secret(SecretId="app/db", RecoveryWindowInDays=7)  # in its recovery window: deleting
        rds.delete_db_snapshot(DBSnapshotIdentifier="app-snap")
        rds.delete_db_instance(DBInstanceIdentifier="app-db", SkipFinalSnapshot=True)
        rds.delete_db_parameter_group(DBParameterGroupName="app-pg")
        rds.delete_db_subnet_group(DBSubnetGroupName="app-db")
        ecr.put_replication_configuration(replicationConfiguration={"rules": []})
        ecr.delete_repository(repositoryName="app")
        ec2.delete_vpc_peering_connection(VpcPeeringConnectionId=pcx)
        ec2.delete_network_interface(NetworkInterfaceId=eni)
        ec2.delete_nat_gateway(NatGatewayId=nat)
        ec2.release_address(AllocationId=eip)
        ec2.disassociate_route_table(AssociationId=assoc)
        ec2.delete_route_table(RouteTableId=rt)
        ec2.detach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
        ec2.delete_internet_gateway(InternetGatewayId=igw)
        ec2.delete_security_group(GroupId=sg)
        for subnet in subnets:
            ec2.delete_subnet(SubnetId=subnet)
        ec2.delete_vpc(VpcId=vpc)
        ec2b.delete_vpc(VpcId=peer_vpc)

        self.assertEqual(inventory(self.emu), [])


class InventoryWithTheModelTest(EmulatorTestCase):
    # Long waits: what is being deleted stays visible to describes for the whole test.
    ENV = {"DEPLOYER_EMU_MODEL": "1", "DEPLOYER_EMU_SCALE": "1"}

    def test_what_is_being_deleted_is_not_listed(self):
        ec2 = self.emu.client("ec2", harness=True)
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/24", AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
        eip = ec2.allocate_address(Domain="vpc")["AllocationId"]
        nat = ec2.create_nat_gateway(SubnetId=subnet, AllocationId=eip)["NatGateway"]["NatGatewayId"]
        rds = self.emu.client("rds", harness=True)
        rds.create_db_instance(
            DBInstanceIdentifier="db", DBInstanceClass="db.t4g.micro", Engine="postgres",
            MasterUsername="app_admin", MasterUserPassword="secretsecret", AllocatedStorage=20,
        )
        self.assertIn(f"ec2 us-east-1 nat-gateway {nat}", inventory(self.emu))  # pending is live
        self.assertIn("rds us-east-1 db-instance db", inventory(self.emu))  # creating is live
        ec2.delete_nat_gateway(NatGatewayId=nat)
        rds.delete_db_instance(DBInstanceIdentifier="db", SkipFinalSnapshot=True)
        # Still described (deleting), no longer live.
        self.assertEqual(ec2.describe_nat_gateways(NatGatewayIds=[nat])["NatGateways"][0]["State"], "deleting")
        self.assertEqual(rds.describe_db_instances(DBInstanceIdentifier="db")["DBInstances"][0]["DBInstanceStatus"], "deleting")
        self.assertEqual(
            inventory(self.emu),
            sorted([f"ec2 us-east-1 vpc {vpc}", f"ec2 us-east-1 subnet {subnet}", f"ec2 us-east-1 elastic-ip {eip}"]),
        )


if __name__ == "__main__":
    unittest.main()
