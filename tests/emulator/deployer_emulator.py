"""moto's server plus the deployer's extensions.

    python deployer_emulator.py [moto_server options, e.g. -H 127.0.0.1 -p 5000]

Extensions (served next to moto's own API):

Fix: deleting a NAT gateway releases its Elastic IP association, as AWS does (moto only marks
    the gateway deleted, so re-creating a NAT gateway with the same address fails there).

GET /_deployer/ec2-state
    The live EC2 state of every region, read straight from moto's backends: VPCs, subnets,
    internet gateways, NAT gateways, Elastic IPs, route tables (with routes and associations),
    security groups (a VPC's own "default" group marked "main") and VPC peering connections, each
    with its tags. Tests judge the deployer by this, not by the
    deployer's own view. (moto's /moto-api/data.json is no judge for deletes: it lists every
    object ever created, deleted ones included.) With the AWS model on, states are the modelled
    ones (a NAT gateway still "pending", a peering still "provisioning", ...).

GET /_deployer/inventory
    {"resources": ["<service> <region> <kind> <id>", ...]}, sorted: every LIVE resource a deployer
    run could have created, in every service the deployer uses and every region moto holds
    ("global" for IAM and Route 53), read straight from moto's backends (no AWS request: nothing
    is counted or recorded). Left out: what AWS owns before any run (default VPCs and their
    parts, every VPC's main route table / "default" security group / default NACL, the
    "default" DB subnet group, default.* parameter groups, CodeDeployDefault.* configurations,
    AWS managed KMS keys and policies, public SSM parameters, service-linked roles, the default
    event bus and schedule group), the hosted zones DEPLOYER_EMU_HOSTED_ZONES seeds (their
    records the deployer writes are listed), every zone's apex SOA/NS, and what is being deleted
    or deleted but kept by moto (NAT gateways deleting/deleted, peerings deleted/rejected,
    DRAINING/INACTIVE ECS services, INACTIVE clusters and task definitions, secrets scheduled
    for deletion, KMS keys pending deletion, RDS instances deleting). Tests judge leftovers
    after destroy by it: an untagged orphan is what a search by tags cannot see.

GET/POST /_deployer/model, POST /_deployer/model/reset-counts
    The realistic model of AWS (latency, throttling, faults, lost responses, a crash hook),
    all off unless DEPLOYER_EMU_* variables (or a POST) turn it on: see aws_model.py.
GET/POST /_deployer/codedeploy
    The CodeDeploy ECS engine (codedeploy_engine.py): the clock's scale, and a forced failure at
    a named lifecycle event for a group's next deployment or for one deployment. Every request
    the emulator serves first advances the active deployments to now.
POST /_deployer/sns/confirm {"endpoint": "ops@example.com"}
    Confirms that endpoint's pending SNS subscriptions, as its owner answering the confirmation
    message would (moto_fixes.py makes email and HTTPS subscriptions wait for it, as AWS does).
POST /_deployer/rds/login {"region", "identifier", "username", "password"}
    Answers {"ok": true|false}: whether that DB instance would accept those master credentials
    now (a read replica its source's current password, a promoted replica the password it had
    when promoted, a managed-secret instance the password in its secret). 404 {"error"} for an
    unknown instance, 400 {"error"} for a malformed request.
POST /_deployer/acm/backdate {"hours": N}
    A test fixture for time, not an AWS behaviour: every certificate is made N hours older
    (its CreatedAt), as if requested that long ago. Answers {"certificates": count}.
DEPLOYER_EMU_OUTAGE='{"regions": ["us-east-1"], "mode": "refuse"}'
    A region outage from the start (aws_model.py; POST /_deployer/model {"outage": ...} later).
DEPLOYER_EMU_UNHEALTHY_TARGETS=1
    The ECS tasks' load balancer targets (DescribeTargetHealth, aws_model.py) fail their health
    checks from the start (POST /_deployer/model {"unhealthy_targets": true|false} later).
DEPLOYER_EMU_HOSTED_ZONES=deployer.test
    Public Route 53 hosted zones that exist from the start, as an account's own zone would.
DEPLOYER_EMU_ECR_REPLICATION_SECS (default 2)
    How long a pushed image takes to appear in the regions the registry's replication
    configuration names (AWS: usually under 30 minutes). An image pushed to a repository that
    scans on push has a completed scan at once (moto's default findings: one HIGH; inject others
    with moto's POST /moto-api/static/ecr/scan-finding-results).
"""

import json
import os
import time

import moto.server as moto_server

import aws_model
import codedeploy_engine

STATE_PATH = "/_deployer/ec2-state"
CODEDEPLOY_PATH = "/_deployer/codedeploy"
SNS_CONFIRM_PATH = "/_deployer/sns/confirm"
RDS_LOGIN_PATH = "/_deployer/rds/login"
ACM_BACKDATE_PATH = "/_deployer/acm/backdate"


def _tags(resource):
    try:
        return {t["key"]: t["value"] for t in resource.get_tags()}
    except Exception:  # pragma: no cover - a resource kind without tags
        return {}


def _region_state(backend):
    subnets = [s for by_az in backend.subnets.values() for s in by_az.values()]
    return {
        "vpcs": [
            {
                "id": v.id,
                "cidr_block": v.cidr_block,
                "is_default": v.is_default,
                "enable_dns_support": bool(v.enable_dns_support),
                "enable_dns_hostnames": bool(v.enable_dns_hostnames),
                "tags": _tags(v),
            }
            for v in backend.vpcs.values()
        ],
        "subnets": [
            {
                "id": s.id,
                "vpc_id": s.vpc_id,
                "cidr_block": s.cidr_block,
                "availability_zone": s.availability_zone,
                "map_public_ip_on_launch": bool(s.map_public_ip_on_launch),
                "tags": _tags(s),
            }
            for s in subnets
        ],
        "internet_gateways": [
            {"id": g.id, "vpc_id": g.vpc.id if g.vpc else None, "tags": _tags(g)}
            for g in backend.internet_gateways.values()
        ],
        "nat_gateways": [
            {
                "id": n.id,
                "state": n.state,
                "subnet_id": n.subnet_id,
                "allocation_id": next((a.get("allocationId") for a in n.address_set), None),
                "tags": _tags(n),
            }
            for n in backend.nat_gateways.values()
        ],
        "addresses": [
            {"allocation_id": a.allocation_id, "public_ip": a.public_ip, "tags": _tags(a)}
            for a in backend.addresses
        ],
        "route_tables": [
            {
                "id": t.id,
                "vpc_id": t.vpc_id,
                "main": bool(getattr(t, "main_association_id", None)),
                "associations": sorted(a["SubnetId"] for a in t.associations if a.get("SubnetId")),
                "routes": [
                    {
                        "destination": r.destination_cidr_block,
                        "target": (
                            (r.gateway.id if getattr(r, "gateway", None) else None)
                            or (r.nat_gateway.id if getattr(r, "nat_gateway", None) else None)
                            or (r.vpc_pcx.id if getattr(r, "vpc_pcx", None) else None)
                            or ("local" if getattr(r, "local", False) else None)
                        ),
                    }
                    for r in t.routes
                    if r.destination_cidr_block
                ],
                "tags": _tags(t),
            }
            for t in backend.route_tables.values()
        ],
        "security_groups": [
            {
                "id": g.id,
                "vpc_id": g.vpc_id,
                "name": g.name,
                # Every VPC's own "default" group is AWS's, not the deployer's.
                "main": g.name == "default",
                "tags": _tags(g),
            }
            for by_vpc in backend.groups.values()
            for g in by_vpc.values()
        ],
        "vpc_peering_connections": [
            {
                "id": p.id,
                "status": p.status["Code"],  # the model's view (provisioning) when it is on
                "vpc_id": p.vpc.id,
                "vpc_region": p.vpc.ec2_backend.region_name,
                "peer_vpc_id": p.peer_vpc.id,
                "peer_region": p.peer_vpc.ec2_backend.region_name,
                "requester_dns_resolution": bool(
                    p.requester_options.get("AllowDnsResolutionFromRemoteVpc")
                ),
                "accepter_dns_resolution": bool(
                    p.accepter_options.get("AllowDnsResolutionFromRemoteVpc")
                ),
                "tags": _tags(p),
            }
            for p in backend.vpc_pcxs.values()
        ],
    }


def ec2_state():
    from moto.ec2.models import ec2_backends

    state = {}
    for account_id in list(ec2_backends.keys()):
        account = ec2_backends[account_id]
        for region in list(account.keys()):
            state[region] = _region_state(account[region])
    return state


# ---------------------------------------------------------------------------------------------
# GET /_deployer/inventory: every live resource a deployer run could have created, in every
# service the deployer uses, read straight from moto's backends (no AWS request is sent, so
# nothing is counted or recorded). Tests judge leftovers after `destroy` by it: an untagged
# orphan is exactly what a search by tags cannot see. What AWS owns before any run (default VPC
# and its parts, main route tables, default groups, predefined configurations, AWS-managed keys
# and policies, public SSM parameters, service-linked roles) and what the emulator seeds at start
# (DEPLOYER_EMU_HOSTED_ZONES and their SOA/NS records) is left out, and so is what is being
# deleted or is gone but still kept by moto (deleted NAT gateways, DRAINING/INACTIVE services,
# secrets scheduled for deletion, ...).

INVENTORY_PATH = "/_deployer/inventory"
SEEDED_ZONE_REFERENCE = "deployer-emulator-"
# Peering and NAT gateway states that are no longer (or never were) a live resource.
DEAD_STATES = {"deleted", "deleting", "failed", "rejected", "expired"}


def _backends(module, name):
    """(account, region, backend) of every backend moto has created, without creating any (the
    dicts' own items(); BackendDict's __getitem__ would create one). Global services' backends
    are keyed "aws" (the partition): reported as region "global"."""
    import importlib

    backend_dict = getattr(importlib.import_module(module), name)
    for account, per_region in list(dict.items(backend_dict)):
        for region, backend in list(dict.items(per_region)):
            yield account, ("global" if region in ("aws", "global") else region), backend


def _ec2_inventory(region, b):
    # The default VPC and its default subnets, internet gateway, main route table, default
    # security group and default network ACL are the account's from the start: VPC user guide,
    # "Default VPCs" (https://docs.aws.amazon.com/vpc/latest/userguide/default-vpc.html). Every
    # VPC's own main route table, "default" security group and default network ACL come and go
    # with it: "Route tables" (https://docs.aws.amazon.com/vpc/latest/userguide/VPC_Route_Tables.html),
    # "Default security groups" (https://docs.aws.amazon.com/vpc/latest/userguide/default-security-group.html),
    # "Default network ACL" (https://docs.aws.amazon.com/vpc/latest/userguide/default-network-acl.html).
    default_vpcs = {v.id for v in list(b.vpcs.values()) if v.is_default}
    # ENIs that another resource owns and deletes with itself: a NAT gateway's, an interface
    # endpoint's, an ECS task's. EC2 user guide, "Requester-managed network interfaces"
    # (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/requester-managed-eni.html): "When you
    # delete the resource associated with a requester-managed network interface, the AWS service
    # detaches the network interface and deletes it" (moto keeps them).
    managed_enis = {n._eni.id for n in list(b.nat_gateways.values()) if getattr(n, "_eni", None) is not None}
    for endpoint in list(b.vpc_end_points.values()):
        managed_enis.update(getattr(endpoint, "network_interface_ids", None) or [])
    for v in list(b.vpcs.values()):
        if not v.is_default:
            yield "vpc", v.id
    for by_az in list(b.subnets.values()):
        for s in list(by_az.values()):
            if not (getattr(s, "default_for_az", False) or s.vpc_id in default_vpcs):
                yield "subnet", s.id
    for g in list(b.internet_gateways.values()):
        if not (g.vpc is not None and g.vpc.id in default_vpcs):
            yield "internet-gateway", g.id
    for n in list(b.nat_gateways.values()):
        # States pending | failed | available | deleting | deleted (EC2 API reference, NatGateway:
        # https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_NatGateway.html); moto keeps
        # deleted ones.
        if n.state not in DEAD_STATES:
            yield "nat-gateway", n.id
    for a in list(b.addresses):
        yield "elastic-ip", a.allocation_id or a.public_ip
    for t in list(b.route_tables.values()):
        # A main route table is the VPC's own (AWS makes it with the VPC); routes of a live
        # table are covered by the table.
        if not getattr(t, "main_association_id", None) and t.vpc_id not in default_vpcs:
            yield "route-table", t.id
    for p in list(b.vpc_pcxs.values()):
        # Lifecycle: pending-acceptance, provisioning, active are live; rejected, failed, expired,
        # deleting, deleted are not (VPC peering guide, "VPC peering connection lifecycle":
        # https://docs.aws.amazon.com/vpc/latest/peering/vpc-peering-basics.html#vpc-peering-lifecycle).
        # moto keeps a cross-region peering in both regions' tables: listed once, in the
        # requester's region.
        if p.status["Code"] not in DEAD_STATES and p.vpc.ec2_backend is b:
            yield "vpc-peering-connection", p.id
    for by_vpc in list(b.groups.values()):
        for g in list(by_vpc.values()):
            if g.name != "default":  # every VPC's own group
                yield "security-group", g.id
    for acl in list(b.network_acls.values()):
        if not getattr(acl, "default", False):
            yield "network-acl", acl.id
    for eni in list(b.enis.values()):
        if eni.id not in managed_enis and getattr(eni, "description", None) != "moto ECS":
            yield "network-interface", eni.id
    for endpoint in list(b.vpc_end_points.values()):
        if getattr(endpoint, "state", "available") not in DEAD_STATES:
            yield "vpc-endpoint", endpoint.id


def _ecr_inventory(region, b):
    for name in list(b.repositories):
        yield "repository", name
    rules = (getattr(b, "replication_config", None) or {}).get("rules") or []
    for i, rule in enumerate(rules, 1):
        # "<position>:<destination regions>[:<repository filters>]" (a rule has no name).
        dests = ",".join(f"{d.get('region')}" for d in rule.get("destinations") or [])
        filters = ",".join(str(f.get("filter", "")) for f in rule.get("repositoryFilters") or [])
        yield "replication-rule", f"{i}:{dests}" + (f":{filters}" if filters else "")


def _rds_inventory(region, b):
    live = set()
    for ident, db in list(b.databases.items()):
        if db.status not in ("deleting", "deleted", "failed"):
            live.add(ident)
            yield "db-instance", ident
    for ident, cluster in list(b.clusters.items()):
        if getattr(cluster, "status", "available") not in ("deleting", "deleted", "failed"):
            yield "db-cluster", ident
    for name in list(b.subnet_groups):
        # "default" is RDS's own group, no name a caller may create (RDS API reference,
        # CreateDBSubnetGroup, DBSubnetGroupName: "Must not be default",
        # https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateDBSubnetGroup.html).
        if name != "default":
            yield "db-subnet-group", name
    # RDS's default parameter groups (default.<family>) are its own: RDS user guide, "Parameter
    # groups for Amazon RDS" (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_WorkingWithParamGroups.html).
    for name in list(b.db_parameter_groups):
        if not name.startswith("default."):
            yield "db-parameter-group", name
    for name in list(b.db_cluster_parameter_groups):
        if not name.startswith("default."):
            yield "db-cluster-parameter-group", name
    for name in list(b.option_groups):
        if not name.startswith("default:"):
            yield "option-group", name
    for ident, snap in list(b.database_snapshots.items()):
        if getattr(snap, "status", "available") in ("deleting", "deleted"):
            continue
        # Automated snapshots belong to their live instance; once it is gone they are retained
        # automated backups, billed until deleted: a leftover (RDS user guide, "Retaining
        # automated backups": https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_WorkingWithAutomatedBackups.Retaining.html).
        if getattr(snap, "snapshot_type", "manual") == "automated" and snap.database.db_instance_identifier in live:
            continue
        yield "db-snapshot", ident


def _secretsmanager_inventory(region, b):
    for secret in list(dict.values(b.secrets)):
        if secret.is_deleted():
            # Scheduled for deletion, in its recovery window (Secrets Manager user guide, "Delete
            # an AWS Secrets Manager secret":
            # https://docs.aws.amazon.com/secretsmanager/latest/userguide/manage_delete-secret.html).
            continue
        replica = type(secret).__name__ == "ReplicaSecret"
        yield ("secret-replica" if replica else "secret"), secret.name


def _ssm_inventory(region, b):
    for name, versions in list(dict.items(b._parameters)):
        # Public parameters (/aws/service/...) are AWS's; moto loads them on first read. SSM user
        # guide, "Discovering public parameters in Parameter Store"
        # (https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-public-parameters.html).
        if versions and not name.startswith("/aws/"):
            yield "parameter", name


def _elbv2_inventory(region, b):
    for lb in list(b.load_balancers.values()):
        yield "load-balancer", lb.name
        for listener in list(lb.listeners.values()):
            yield "listener", f"{lb.name}:{listener.port}"
    for tg in list(b.target_groups.values()):
        yield "target-group", tg.name


def _ecs_inventory(region, b):
    for cluster in list(b.clusters.values()):
        if cluster.status == "ACTIVE":
            yield "cluster", cluster.name
    for svc in list(b.services.values()):
        # DeleteService: "the service status moves from ACTIVE to DRAINING" and then INACTIVE, still
        # described for a while (ECS API reference, DeleteService:
        # https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeleteService.html).
        if svc.status != "ACTIVE":
            continue
        yield "service", f"{svc.cluster_name}/{svc.name}"
        for ts in list(getattr(svc, "task_sets", None) or []):
            if getattr(ts, "status", "ACTIVE") != "DRAINING":
                yield "task-set", f"{svc.cluster_name}/{svc.name}/{ts.id}"
    for family, revisions in list(b.task_definitions.items()):
        for revision, td in list(revisions.items()):
            # DeregisterTaskDefinition marks a revision INACTIVE (ECS API reference:
            # https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeregisterTaskDefinition.html).
            if td.status == "ACTIVE":
                yield "task-definition", f"{family}:{revision}"


def _logs_inventory(region, b):
    for name in list(b.groups):
        yield "log-group", name


def _iam_inventory(region, b):
    # Service-linked roles (path /aws-service-role/) are made and owned by their service (IAM user
    # guide, "Create a service-linked role":
    # https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_create-service-linked-role.html);
    # AWS managed policies (arn:aws:iam::aws:policy/...) are AWS's ("Managed policies and inline
    # policies": https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_managed-vs-inline.html).
    for role in list(b.roles.values()):
        if not (role.path or "/").startswith("/aws-service-role/"):
            yield "role", role.name
    for arn, policy in list(b.managed_policies.items()):
        if not arn.startswith("arn:aws:iam::aws:policy/"):
            yield "policy", policy.name
    for name in list(b.instance_profiles):
        yield "instance-profile", b.instance_profiles[name].name


def _acm_inventory(region, b):
    for arn in list(b._certificates):
        yield "certificate", arn


def _route53_inventory(region, b):
    for zone in list(b.zones.values()):
        seeded = str(zone.caller_reference or "").startswith(SEEDED_ZONE_REFERENCE)
        if not seeded:
            yield "hosted-zone", f"{zone.resource_id}:{zone.name}"
        for r in list(zone.rrsets):
            # The zone's own NS and SOA records, made with it (Route 53 developer guide, "NS and
            # SOA records that Amazon Route 53 creates for a public hosted zone":
            # https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/SOA-NSrecords.html).
            if r.type in ("SOA", "NS") and r.name.rstrip(".").lower() == zone.name.rstrip(".").lower():
                continue
            ident = f"{zone.resource_id}:{r.name}:{r.type}"
            yield "record-set", ident + (f":{r.set_identifier}" if r.set_identifier else "")
    for hc_id in list(b.health_checks):
        yield "health-check", hc_id


def _applicationautoscaling_inventory(region, b):
    for by_resource in list(b.targets.values()):
        for t in list(by_resource.values()):
            yield "scalable-target", f"{t.resource_id}:{t.scalable_dimension}"
    for p in list(b.policies.values()):
        yield "scaling-policy", f"{p.resource_id}:{p.scalable_dimension}:{p.policy_name}"


def _cloudwatch_inventory(region, b):
    for name in list(b.alarms):
        yield "alarm", name
    for name in list(b.dashboards):
        yield "dashboard", name


def _sns_inventory(region, b):
    for topic in list(b.topics.values()):
        yield "topic", topic.name
    for sub in list(b.subscriptions.values()):
        yield "subscription", f"{sub.topic.name}:{sub.protocol}:{sub.endpoint}"


def _codedeploy_inventory(region, b):
    for name in list(b.applications):
        yield "application", name
    for app, groups in list(b.deployment_groups.items()):
        for name in list(groups):
            yield "deployment-group", f"{app}/{name}"
    # codedeploy.py keeps the configurations (made on first use): the predefined
    # CodeDeployDefault.* ones are AWS's (CodeDeploy user guide, "Working with deployment
    # configurations": https://docs.aws.amazon.com/codedeploy/latest/userguide/deployment-configurations.html).
    for name in list(b.__dict__.get("deployment_configs") or {}):
        if not name.startswith("CodeDeployDefault."):
            yield "deployment-config", name


def _events_inventory(region, b):
    # Every account has the "default" event bus (EventBridge user guide, "Event buses":
    # https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-bus.html).
    for bus in list(b.event_buses.values()):
        if bus.name != "default":
            yield "event-bus", bus.name
        for name in list(bus.rules):
            yield "rule", name if bus.name == "default" else f"{bus.name}/{name}"


def _scheduler_inventory(region, b):
    # "Your AWS account comes with a default scheduler group" (EventBridge Scheduler user guide,
    # "Managing a schedule group": https://docs.aws.amazon.com/scheduler/latest/UserGuide/managing-schedule-group.html).
    for group in list(b.schedule_groups.values()):
        if group.name != "default":
            yield "schedule-group", group.name
        for name in list(group.schedules):
            yield "schedule", f"{group.name}/{name}"


def _kms_inventory(region, b):
    for key in list(b.keys.values()):
        aliases = list(getattr(key, "aliases", {}) or {})
        # moto makes a service's AWS managed key (alias/aws/<service>) on first use, as a
        # CUSTOMER key: it is AWS's all the same ("The alias/aws/ prefix is reserved for AWS
        # managed key", KMS developer guide, https://docs.aws.amazon.com/kms/latest/developerguide/alias-create.html).
        # A key pending deletion is being deleted
        # (https://docs.aws.amazon.com/kms/latest/developerguide/deleting-keys.html).
        aws_managed = key.key_manager != "CUSTOMER" or any(a.startswith("alias/aws/") for a in aliases)
        if aws_managed or key.key_state == "PendingDeletion":
            continue
        yield "key", key.id
        for alias in aliases:
            yield "alias", alias


INVENTORY = [
    # (service, moto module, backend dict, reader)
    ("ec2", "moto.ec2.models", "ec2_backends", _ec2_inventory),
    ("ecr", "moto.ecr.models", "ecr_backends", _ecr_inventory),
    ("rds", "moto.rds.models", "rds_backends", _rds_inventory),
    ("secretsmanager", "moto.secretsmanager.models", "secretsmanager_backends", _secretsmanager_inventory),
    ("ssm", "moto.ssm.models", "ssm_backends", _ssm_inventory),
    ("elbv2", "moto.elbv2.models", "elbv2_backends", _elbv2_inventory),
    ("ecs", "moto.ecs.models", "ecs_backends", _ecs_inventory),
    ("logs", "moto.logs.models", "logs_backends", _logs_inventory),
    ("iam", "moto.iam.models", "iam_backends", _iam_inventory),
    ("acm", "moto.acm.models", "acm_backends", _acm_inventory),
    ("route53", "moto.route53.models", "route53_backends", _route53_inventory),
    (
        "application-autoscaling",
        "moto.applicationautoscaling.models",
        "applicationautoscaling_backends",
        _applicationautoscaling_inventory,
    ),
    ("cloudwatch", "moto.cloudwatch.models", "cloudwatch_backends", _cloudwatch_inventory),
    ("sns", "moto.sns.models", "sns_backends", _sns_inventory),
    ("codedeploy", "moto.codedeploy.models", "codedeploy_backends", _codedeploy_inventory),
    ("events", "moto.events.models", "events_backends", _events_inventory),
    ("scheduler", "moto.scheduler.models", "scheduler_backends", _scheduler_inventory),
    ("kms", "moto.kms.models", "kms_backends", _kms_inventory),
]


def inventory():
    """{"resources": ["<service> <region> <kind> <id>", ...]}, sorted. The id is the rest of
    the line (an alarm's name may hold spaces). Due timers of the model and the CodeDeploy clock
    are brought to now first, as any request would."""
    aws_model.MODEL.run_due()
    codedeploy_engine.tick()
    for attempt in range(5):
        try:
            found = set()
            for service, module, name, reader in INVENTORY:
                for _account, region, backend in _backends(module, name):
                    for kind, ident in reader(region, backend):
                        found.add(f"{service} {region} {kind} {ident}")
            return {"resources": sorted(found)}
        except RuntimeError:  # a dict changed under us (a request on another thread): read again
            if attempt == 4:
                raise
            time.sleep(0.05)


def _json_response(start_response, value, status="200 OK"):
    body = json.dumps(value, default=str).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def with_extensions(app):
    def wsgi(environ, start_response):
        path = environ.get("PATH_INFO")
        if path == STATE_PATH:
            return _json_response(start_response, ec2_state())
        if path == INVENTORY_PATH:
            return _json_response(start_response, inventory())
        if path == CODEDEPLOY_PATH:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            raw = environ["wsgi.input"].read(length) if length > 0 else b""
            try:
                return _json_response(start_response, codedeploy_engine.control(json.loads(raw or b"{}")))
            except (ValueError, KeyError) as e:
                return _json_response(start_response, {"error": str(e)}, "400 Bad Request")
        if path == SNS_CONFIRM_PATH:
            import moto_fixes

            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = json.loads(environ["wsgi.input"].read(length) or b"{}") if length > 0 else {}
            if "endpoint" not in body:
                return _json_response(start_response, {"error": "give the endpoint"}, "400 Bad Request")
            return _json_response(start_response, {"confirmed": moto_fixes.confirm_sns_subscriptions(body["endpoint"])})
        if path == RDS_LOGIN_PATH:
            return _rds_login(environ, start_response)
        if path == ACM_BACKDATE_PATH:
            return _acm_backdate(environ, start_response)
        _replicate_due_images()
        codedeploy_engine.tick()
        return app(environ, start_response)

    return wsgi


def _acm_backdate(environ, start_response):
    """POST {"hours": N} -> {"certificates": count}: a test fixture for time, not an AWS
    behaviour. Every certificate of every region is made N hours older (its CreatedAt, which
    ListCertificates and DescribeCertificate return), as if it had been requested that long ago:
    the tests' way to have an account hold certificates from before the run."""
    import datetime

    from moto.acm.models import acm_backends

    if environ.get("REQUEST_METHOD", "GET").upper() != "POST":
        return _json_response(start_response, {"error": "POST a JSON object"}, "405 Method Not Allowed")
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = json.loads(environ["wsgi.input"].read(length) or b"{}") if length > 0 else {}
    shift = datetime.timedelta(hours=float(body.get("hours", 0)))
    count = 0
    for account in acm_backends.values():
        for backend in account.values():
            for cert in backend._certificates.values():
                cert.created_at = cert.created_at - shift
                count += 1
    return _json_response(start_response, {"certificates": count})


def _rds_login(environ, start_response):
    """POST {"region", "identifier", "username", "password"} -> {"ok": bool}: whether the DB
    instance would accept those master credentials now (moto_fixes.rds_login)."""
    import moto_fixes

    if environ.get("REQUEST_METHOD", "GET").upper() != "POST":
        return _json_response(start_response, {"error": "POST a JSON object"}, "405 Method Not Allowed")
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = json.loads(environ["wsgi.input"].read(length) or b"{}") if length > 0 else {}
        if not isinstance(body, dict):
            raise ValueError("expected a JSON object")
        missing = [k for k in ("region", "identifier", "username", "password") if not isinstance(body.get(k), str)]
        if missing:
            raise ValueError(f"give {', '.join(missing)} (strings)")
    except ValueError as e:
        return _json_response(start_response, {"error": str(e)}, "400 Bad Request")
    try:
        ok = moto_fixes.rds_login(
            body["region"], body["identifier"], body["username"], body["password"], body.get("account_id")
        )
    except LookupError as e:
        return _json_response(start_response, {"error": str(e)}, "404 Not Found")
    return _json_response(start_response, {"ok": ok})


def _patch_nat_gateway_delete():
    from moto.ec2.models import EC2Backend

    original = EC2Backend.delete_nat_gateway

    def delete_nat_gateway(self, nat_gateway_id):
        nat = original(self, nat_gateway_id)
        for address in getattr(nat, "address_set", []):
            association_id = address.get("associationId")
            if association_id:
                try:
                    self.disassociate_address(association_id=association_id)
                except Exception:  # already disassociated or released
                    pass
        return nat

    EC2Backend.delete_nat_gateway = delete_nat_gateway


PENDING_REPLICATIONS: list[tuple[float, str, str, str, str, str, str]] = []


def _patch_ecr_push():
    """What moto's PutImage leaves out: a repository that scans on push has a scan of the image
    (moto answers ScanNotFoundException until StartImageScan), and the registry's replication
    configuration copies the image to the other regions' repositories of the same name, after
    DEPLOYER_EMU_ECR_REPLICATION_SECS."""
    from moto.ecr.models import ECRBackend

    original = ECRBackend.put_image

    def put_image(self, repository_name, image_manifest, image_tag, image_manifest_mediatype=None, digest=None):
        image = original(self, repository_name, image_manifest, image_tag, image_manifest_mediatype, digest)
        repo = self.repositories[repository_name]
        scanning = getattr(repo, "image_scanning_configuration", None) or {}
        if scanning.get("scanOnPush") and not image.last_scan:
            import datetime

            image.last_scan = datetime.datetime.today()
        delay = float(os.environ.get("DEPLOYER_EMU_ECR_REPLICATION_SECS", "2"))
        config = getattr(self, "replication_config", None) or {}
        for rule in config.get("rules", []):
            filters = rule.get("repositoryFilters") or []
            if filters and not any(repository_name.startswith(f.get("filter", "")) for f in filters):
                continue
            for dest in rule.get("destinations", []):
                if dest.get("region") != self.region_name:
                    PENDING_REPLICATIONS.append(
                        (
                            time.monotonic() + delay,
                            dest.get("registryId") or self.account_id,
                            dest["region"],
                            repository_name,
                            image_manifest,
                            image_tag,
                            image_manifest_mediatype or "",
                        )
                    )
        return image

    ECRBackend.put_image = put_image


def _replicate_due_images():
    if not PENDING_REPLICATIONS:
        return
    from moto.ecr.models import ecr_backends

    now = time.monotonic()
    for item in [p for p in PENDING_REPLICATIONS if p[0] <= now]:
        PENDING_REPLICATIONS.remove(item)
        _, account, region, repository, manifest, tag, media_type = item
        backend = ecr_backends[account][region]
        if repository in backend.repositories:  # AWS creates it; the deployer already has
            try:
                backend.put_image(repository, manifest, tag, media_type or None)
            except Exception:  # already there
                pass


def _create_hosted_zones():
    """A real account has its DNS zone before anyone deploys into it; the emulator starts empty.
    DEPLOYER_EMU_HOSTED_ZONES (comma-separated names, e.g. `deployer.test`) creates those public
    hosted zones at startup, in the default account, as the account's own. moto.api's reset
    forgets them like everything else."""
    names = [n.strip() for n in os.environ.get("DEPLOYER_EMU_HOSTED_ZONES", "").split(",") if n.strip()]
    if not names:
        return
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.route53.models import route53_backends

    backend = route53_backends[DEFAULT_ACCOUNT_ID]["global"]
    for name in names:
        # As the API stores them: fully qualified, with the trailing dot.
        fqdn = name if name.endswith(".") else f"{name}."
        backend.create_hosted_zone(fqdn, private_zone=False, caller_reference=f"deployer-emulator-{name}")


def _keep_per_request_costs_once():
    """Speed only, no behaviour: three things moto redoes for every request are kept once.

    Its dispatcher finds the service of every request under one lock, listing moto's package
    directory from disk (`list_of_moto_modules`) and then matching the host against every
    service's URL patterns, each time; the deployer's concurrent reads queued on that lock. The
    answer depends only on the host, so it is kept per host. (Measured: tests/cost.rs 21.3 s ->
    16.4 s, a converged full-stack `up` 0.57 s -> 0.53 s, median of 15.)"""
    from moto import backends
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules
    lookup = DomainDispatcherApplication.get_backend_for_host
    found = {}

    def get_backend_for_host(self, host):
        if host not in found:
            found[host] = lookup(self, host)
        return found[host]

    DomainDispatcherApplication.get_backend_for_host = get_backend_for_host

    # A service's first request loads its botocore model with a new loader each time, which
    # lists botocore's data directory from disk again; concurrent first requests each did it.
    # One loader keeps what it listed and loaded.
    from moto.core import utils

    loader = utils.create_loader()
    utils.create_loader = lambda: loader

    # Every request looks its service's backend up for the account, and moto then checks, under
    # its global backend lock, that this backend dict is in its list of those in use with `in`:
    # a dict subclass, so each comparison compares whole backends. Once a dict holds the account
    # and has been registered, there is nothing to do (a reset empties both, and the original
    # runs again).
    from moto.core.base_backend import BackendDict

    create = BackendDict._create_account_specific_backend
    registered = set()

    def create_once(self, account_id):
        if id(self) in registered and dict.__contains__(self, account_id):
            return
        create(self, account_id)
        registered.add(id(self))

    BackendDict._create_account_specific_backend = create_once


def main():
    import moto_fixes

    _keep_per_request_costs_once()
    moto_fixes.apply()
    _create_hosted_zones()
    _patch_nat_gateway_delete()
    _patch_ecr_push()
    # After the NAT patch: the model's delete_nat_gateway wraps the EIP-releasing one.
    aws_model.install()
    original_run_simple = moto_server.run_simple

    def run_simple(host, port, app, *args, **kwargs):
        return original_run_simple(host, port, with_extensions(aws_model.wrap(app)), *args, **kwargs)

    moto_server.run_simple = run_simple
    moto_server.main()


if __name__ == "__main__":
    main()
