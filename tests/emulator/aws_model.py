"""A realistic model of AWS on top of moto: latency, throttling, faults and a crash hook.

moto answers every call at once and never fails on its own; real AWS takes minutes to make a NAT
gateway or a database usable, throttles bursts of calls and now and then answers a 5xx (sometimes
after it did the work). This module wraps moto's WSGI app (see deployer_emulator.py) and patches
a few moto models so the deployer can be tested against that behaviour. Everything is OFF by
default: without the variables below, every call passes straight through to moto unchanged (it is
only counted, for GET /_deployer/model).

Environment variables (read once at server start; POST /_deployer/model changes them later):

DEPLOYER_EMU_MODEL=1
    Turns on the resource latencies and the token-bucket throttling. Latency here is the time
    until a resource is usable, not the time a call takes: the create call answers at once, and
    describes report the busy state ("pending", "provisioning", "creating", "deleting", ...) until
    created_at + latency. The figures, in real seconds, and the bucket sizes are in latency.toml.
DEPLOYER_EMU_SCALE (default 0.01)
    Multiplies every latency; token-bucket refill rates are multiplied by 1/scale (bursts stay),
    so throttling keeps its proportion to the compressed clock.
DEPLOYER_EMU_SEED (default 0)
    Seeds the one random.Random behind every fault decision. Each call that is not exempt draws
    exactly one number, so the same seed and the same order of calls give the same faults.
DEPLOYER_EMU_THROTTLE_RATE (e.g. 0.2)
    Fraction of calls answered with the service's throttling error, not applied.
DEPLOYER_EMU_FAULT_RATE (e.g. 0.05)
    Fraction of calls answered with a 5xx (InternalError / ServiceUnavailable), not applied.
DEPLOYER_EMU_LOST_RATE (e.g. 0.1)
    Fraction of MUTATING calls that moto applies but that are answered with a 500 instead of
    moto's answer (a "lost response": the client retries something that already happened). If
    moto itself answered an error, that error is passed on (nothing was applied to lose).
    The three rates are consecutive bands of the one draw (throttle, then fault, then lost), so
    their sum is in effect capped at 1.
DEPLOYER_EMU_CALL_LATENCY_MS
    Extra latency added to every call (not scaled).
DEPLOYER_EMU_KILL_AFTER=K and DEPLOYER_EMU_KILL_PIDFILE=/path
    Crash-test hook: once the K-th mutating call has been passed to moto and moto has handled it
    (whether moto accepted it or answered an error), and before its answer is sent, the pid in
    the pidfile is SIGKILLed. Fires once; GET /_deployer/model reports whether and when.
DEPLOYER_EMU_OUTAGE='{"regions": ["us-east-1"], "mode": "refuse"}'
    A region outage from the start (JSON of the "outage" setting below).
DEPLOYER_EMU_UNHEALTHY_TARGETS=1
    The load balancer targets of ECS tasks fail their health checks (see "ECS tasks as load
    balancer targets" below). On or off whether the model is on or not.
MOTO_ACM_VALIDATION_WAIT
    moto's own variable. With the model on and this unset, ACM certificates are validated after
    acm_validation * scale seconds.

Every request that is not exempt is also counted by IAM action (`cloudwatch:PutMetricAlarm`:
the service's IAM prefix, its SigV4 signing name but for CloudWatch's `monitoring`, and the
operation, Route 53's and EventBridge Scheduler's REST requests named by method and path), in
`actions` of GET /_deployer/model; reset-counts keeps them (tests/iam_policy.rs needs the
whole run's).

Requests to /moto-api/ and /_deployer/, and requests whose User-Agent (or X-Amz-User-Agent)
contains "deployer-test-harness" (the tests' own clients), are exempt: no latency, no
throttling, no faults, not counted as calls, and they draw no random number.

Control endpoint:

GET  /_deployer/model               settings, call counts by region and operation (reads and
                                    mutating apart), throttled / 5xx / lost counts, the kill
                                    hook's state, and "waits": every resource created with a
                                    latency (id, kind, created_at, ready_at, and how many describe
                                    calls for that kind arrived in its busy window).
POST /_deployer/model               a JSON object with any of: model, scale, seed, throttle_rate,
                                    fault_rate, lost_rate, call_latency_ms, kill_after,
                                    kill_pidfile, unhealthy_targets (the variables above,
                                    lowercase, no prefix),
                                    and lose_next: {"CreateVpc": 1} loses the next answer(s)
                                    of those operations, deterministically.
                                    outage: {"regions": ["us-east-1"], "mode": "refuse"} or
                                    {"regions": [...], "mode": "timeout", "timeout_secs": 5}
                                    makes those regions unreachable: every request signed for
                                    one of them (SigV4 scope; IAM, Route 53 and global STS sign
                                    for us-east-1) gets no HTTP answer, its connection is closed
                                    at once ("refuse") or after timeout_secs ("timeout"). Exempt
                                    calls, /moto-api/ and /_deployer/ are never dropped.
                                    {"outage": null} or "regions": [] ends it. The report's
                                    "outage" is {"regions", "mode", "timeout_secs", "dropped":
                                    {region: n}}; dropped calls are counted there and in
                                    "actions", not as calls (reset-counts clears "dropped").
                                    A seed reseeds the random; kill_after/kill_pidfile re-arm the
                                    hook and restart its count. Answers like GET.
POST /_deployer/model/reset-counts  clears the counters and the decision log; waits that are
                                    over are dropped, the others keep going with a zero count.

What the model patches (only once the model has been on; resources created while it is off
are never busy):

- EC2 NAT gateway: "pending" until nat_gateway_create, then "available"; after DeleteNatGateway
  "deleting" for nat_gateway_delete, then "deleted".
- VPC peering: after AcceptVpcPeeringConnection, "provisioning" for peering_active, then
  "active"; ModifyVpcPeeringConnectionOptions meanwhile answers OperationNotPermitted, as AWS does.
- RDS DB instance: "creating" for rds_primary_create (read replicas: rds_replica_create), then
  "available"; after DeleteDBInstance it stays listed as "deleting" for rds_delete, then is gone
  (deleting it again answers InvalidDBInstanceState). PromoteReadReplica: "modifying" for
  rds_promote, then "available" (promoting it again answers InvalidDBInstanceState).
- ELBv2 load balancer: "provisioning" for alb_create, then "active"; after DeleteLoadBalancer it
  is still listed for alb_delete. Its subnets and security groups then hold ENIs for eni_release:
  DeleteSubnet / DeleteSecurityGroup on them answer DependencyViolation, unapplied.
- ECS service: after CreateService/UpdateService the rollout is IN_PROGRESS (runningCount below
  desiredCount; an update also shows the old deployment as ACTIVE) for ecs_service_steady; after
  DeleteService it is DRAINING for ecs_service_drain, then INACTIVE, and its awsvpc subnets and
  security groups hold ENIs until drain + eni_release (the tasks keep their ENIs while draining).
- Route 53: ChangeResourceRecordSets gets its own change id; GetChange says PENDING for
  route53_insync, then INSYNC.
- ACM: see MOTO_ACM_VALIDATION_WAIT above.

ECS tasks as load balancer targets (installed at start, whether the model is on or not):
DescribeTargetHealth(TargetGroupArn=X) answers, besides the targets registered by hand, one
target per RUNNING task of every ECS service (and CodeDeploy task set, codedeploy_engine.py)
registered with X: Id an IP address of the task's subnet (the service's awsvpc subnets, in turn),
Port the container port of the service's (or task set's) load balancer entry. Its state:
"initial" (Elb.InitialHealthChecking) until HealthCheckIntervalSeconds x HealthyThresholdCount
of X (times the scale; no wait while the model is off) after the task started running, then
"healthy". With unhealthy_targets: "initial" for HealthCheckIntervalSeconds x
UnhealthyThresholdCount (scaled; none with the model off), then "unhealthy"
(Target.FailedHealthChecks, "Health checks failed"). The tasks of a service being deleted
(DRAINING) or of a task set being drained are "draining" (Target.DeregistrationInProgress).
A service's running tasks are its runningCount (the model's, above; without it every desired
task runs at once, moto_fixes.py); a task set's, its desired count. Not modelled: a rolling
update of an ECS-controller service keeps its tasks' targets; a deregistered target is not kept
"draining" for the group's deregistration delay.
"""

import collections
import io
import json
import os
import random
import re
import signal
import socket
import sys
import threading
import time
import tomllib
import uuid
from urllib.parse import parse_qs

CONTROL_PATH = "/_deployer/model"
RESET_PATH = "/_deployer/model/reset-counts"
HARNESS_APP_NAME = "deployer-test-harness"
TABLE_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "latency.toml")

READ_PREFIXES = ("Describe", "List", "Get", "Head", "Search", "BatchGet", "Query", "Scan")

# The describe (polling) operations whose calls are counted against each kind of wait.
POLL_OPERATIONS = {
    "nat_gateway_create": {"DescribeNatGateways"},
    "nat_gateway_delete": {"DescribeNatGateways"},
    "peering_active": {"DescribeVpcPeeringConnections"},
    "acm_validation": {"DescribeCertificate"},
    "alb_create": {"DescribeLoadBalancers"},
    "alb_delete": {"DescribeLoadBalancers"},
    "ecs_service_steady": {"DescribeServices"},
    "ecs_service_drain": {"DescribeServices"},
    "rds_primary_create": {"DescribeDBInstances"},
    "rds_replica_create": {"DescribeDBInstances"},
    "rds_delete": {"DescribeDBInstances"},
    "rds_promote": {"DescribeDBInstances"},
    "route53_insync": {"GetChange"},
    # An ECS task's load balancer target, from the task running until healthy.
    "target_healthy": {"DescribeTargetHealth"},
    # Nothing describes an ENI release: count the deletes that bounced off it.
    "eni_release": {"DeleteSubnet", "DeleteSecurityGroup"},
}
ALL_POLL_OPERATIONS = set().union(*POLL_OPERATIONS.values())

SETTING_TYPES = {
    "model": bool,
    "scale": float,
    "seed": int,
    "throttle_rate": float,
    "fault_rate": float,
    "lost_rate": float,
    "call_latency_ms": float,
    "kill_after": int,
    "kill_pidfile": str,
    # Operation name -> how many of its next successful answers to lose (applied, answered 500),
    # e.g. {"CreateVpc": 1}: a deterministic lost response, call by call. POST only.
    "lose_next": dict,
    # The ECS tasks' load balancer targets fail their health checks: DescribeTargetHealth
    # answers them "unhealthy" (Target.FailedHealthChecks). Works with the model on or off.
    "unhealthy_targets": bool,
}


def _env_bool(value):
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def _env_setting(name, kind, default):
    raw = os.environ.get("DEPLOYER_EMU_" + name.upper(), "").strip()
    if not raw or kind is dict:
        return default
    return _env_bool(raw) if kind is bool else kind(raw)


def _coerce(key, value):
    kind = SETTING_TYPES[key]
    if value is None:
        # Only the kill hook's settings can be unset (that disarms it).
        if key in ("kill_after", "kill_pidfile"):
            return None
        raise ValueError(f"{key} cannot be null")
    if kind is bool:
        return value if isinstance(value, bool) else _env_bool(value)
    if kind is dict:
        if not isinstance(value, dict) or not all(isinstance(v, int) and v >= 0 for v in value.values()):
            raise ValueError(f"{key} must be an object of operation names to counts")
        return dict(value)
    return kind(value)


# ---------------------------------------------------------------------------------------------
# Identifying a call


class Call:
    """One request: which service, region and operation, and how to shape an error for it."""

    __slots__ = ("service", "region", "op", "mutating", "protocol", "exempt")

    def __init__(self, service, region, op, mutating, protocol, exempt):
        self.service = service
        self.region = region
        self.op = op
        self.mutating = mutating
        self.protocol = protocol
        self.exempt = exempt


_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/([^/]+)/([^/]+)/aws4_request")
_DATED_PATH = re.compile(r"^/\d{4}-\d{2}-\d{2}(/.*)$")
_RPC_V2_PATH = re.compile(r"^/service/[^/]+/operation/([^/]+)$")

# Route 53 is REST: METHOD + path (after the /2013-04-01 prefix) names the operation.
_ROUTE53_ROUTES = [
    (method, re.compile(pattern), name)
    for method, pattern, name in [
        ("POST", r"^/hostedzone/?$", "CreateHostedZone"),
        ("GET", r"^/hostedzone/?$", "ListHostedZones"),
        ("GET", r"^/hostedzone/[^/]+/?$", "GetHostedZone"),
        ("DELETE", r"^/hostedzone/[^/]+/?$", "DeleteHostedZone"),
        ("POST", r"^/hostedzone/[^/]+/?$", "UpdateHostedZoneComment"),
        ("POST", r"^/hostedzone/[^/]+/rrset/?$", "ChangeResourceRecordSets"),
        ("GET", r"^/hostedzone/[^/]+/rrset/?$", "ListResourceRecordSets"),
        ("POST", r"^/hostedzone/[^/]+/associatevpc/?$", "AssociateVPCWithHostedZone"),
        ("POST", r"^/hostedzone/[^/]+/disassociatevpc/?$", "DisassociateVPCFromHostedZone"),
        ("GET", r"^/hostedzone/[^/]+/dnssec/?$", "GetDNSSEC"),
        ("GET", r"^/hostedzonesbyname/?$", "ListHostedZonesByName"),
        ("GET", r"^/hostedzonesbyvpc/?$", "ListHostedZonesByVPC"),
        ("GET", r"^/hostedzonecount/?$", "GetHostedZoneCount"),
        ("GET", r"^/change/[^/]+/?$", "GetChange"),
        ("POST", r"^/healthcheck/?$", "CreateHealthCheck"),
        ("GET", r"^/healthcheck/?$", "ListHealthChecks"),
        ("GET", r"^/healthcheck/[^/]+/?$", "GetHealthCheck"),
        ("POST", r"^/healthcheck/[^/]+/?$", "UpdateHealthCheck"),
        ("DELETE", r"^/healthcheck/[^/]+/?$", "DeleteHealthCheck"),
        ("GET", r"^/healthcheck/[^/]+/status/?$", "GetHealthCheckStatus"),
        ("POST", r"^/tags/[^/]+/?$", "ListTagsForResources"),
        ("POST", r"^/tags/[^/]+/[^/]+/?$", "ChangeTagsForResource"),
        ("GET", r"^/tags/[^/]+/[^/]+/?$", "ListTagsForResource"),
        ("POST", r"^/delegationset/?$", "CreateReusableDelegationSet"),
        ("GET", r"^/delegationset/?$", "ListReusableDelegationSets"),
        ("GET", r"^/delegationset/[^/]+/?$", "GetReusableDelegationSet"),
        ("DELETE", r"^/delegationset/[^/]+/?$", "DeleteReusableDelegationSet"),
    ]
]


# EventBridge Scheduler is REST-JSON: METHOD + path names the operation.
_SCHEDULER_ROUTES = [
    (method, re.compile(pattern), name)
    for method, pattern, name in [
        ("GET", r"^/schedules/?$", "ListSchedules"),
        ("POST", r"^/schedules/[^/]+/?$", "CreateSchedule"),
        ("GET", r"^/schedules/[^/]+/?$", "GetSchedule"),
        ("PUT", r"^/schedules/[^/]+/?$", "UpdateSchedule"),
        ("DELETE", r"^/schedules/[^/]+/?$", "DeleteSchedule"),
        ("GET", r"^/schedule-groups/?$", "ListScheduleGroups"),
        ("POST", r"^/schedule-groups/[^/]+/?$", "CreateScheduleGroup"),
        ("GET", r"^/schedule-groups/[^/]+/?$", "GetScheduleGroup"),
        ("DELETE", r"^/schedule-groups/[^/]+/?$", "DeleteScheduleGroup"),
        ("GET", r"^/tags/.+$", "ListTagsForResource"),
        ("POST", r"^/tags/.+$", "TagResource"),
        ("DELETE", r"^/tags/.+$", "UntagResource"),
    ]
]

# The IAM action prefix of a service whose SigV4 signing name differs from it (Service
# Authorization Reference: CloudWatch's prefix is `cloudwatch`, the Resource Groups Tagging
# API's is `tag`).
IAM_PREFIX = {"monitoring": "cloudwatch", "tagging": "tag"}


def _scheduler_operation(method, path):
    for route_method, pattern, name in _SCHEDULER_ROUTES:
        if method == route_method and pattern.match(path):
            return name
    return None


def _route53_operation(method, path):
    match = _DATED_PATH.match(path)
    rest = match.group(1) if match else path
    for route_method, pattern, name in _ROUTE53_ROUTES:
        if method == route_method and pattern.match(rest):
            return name
    return None


def _is_mutating(op, method):
    if " " in op:  # "METHOD path": only the method says whether it writes
        return method not in ("GET", "HEAD")
    return not op.startswith(READ_PREFIXES)


def _form_body(environ):
    """The form-encoded body (query protocol), buffered so moto can read it again."""
    if not environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        return ""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return ""
    if length <= 0:
        return ""
    body = environ["wsgi.input"].read(length)
    # moto (werkzeug) reads the stream again: hand it a fresh one with the same bytes.
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return body.decode("utf-8", "replace")


def identify(environ):
    """The Call for a request that is not moto-api's or ours."""
    user_agents = environ.get("HTTP_USER_AGENT", "") + " " + environ.get("HTTP_X_AMZ_USER_AGENT", "")
    exempt = HARNESS_APP_NAME in user_agents
    method = environ.get("REQUEST_METHOD", "GET").upper()
    path = environ.get("PATH_INFO", "") or "/"

    service, region = None, None
    scope = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    if scope:
        region, service = scope.group(1), scope.group(2).lower()

    target = environ.get("HTTP_X_AMZ_TARGET", "")
    action = None
    if not target:
        query = parse_qs(environ.get("QUERY_STRING", ""))
        action = (query.get("Action") or [None])[0]
        if action is None:
            action = (parse_qs(_form_body(environ)).get("Action") or [None])[0]

    rpc_v2 = _RPC_V2_PATH.match(path) if "cbor" in environ.get("HTTP_SMITHY_PROTOCOL", "") else None
    if target:
        op = target.rsplit(".", 1)[-1]
        protocol = "json"
        service = service or target.split(".", 1)[0].lower()
    elif rpc_v2:
        # Smithy RPC v2 CBOR (newer SDKs' CloudWatch, ...): POST /service/{Service}/operation/{Op}
        op = rpc_v2.group(1)
        protocol = "cbor"
    elif action:
        op = action
        protocol = "ec2" if service == "ec2" else "query"
    elif service == "route53":
        op = _route53_operation(method, path) or f"{method} {path}"
        protocol = "route53"
    elif service == "scheduler":
        op = _scheduler_operation(method, path) or f"{method} {path}"
        protocol = "rest-json"
    else:
        op = f"{method} {path}"
        protocol = "s3" if service == "s3" else "rest-json"
    return Call(
        service=service or "unknown",
        region=region or "us-east-1",
        op=op,
        mutating=_is_mutating(op, method),
        protocol=protocol,
        exempt=exempt,
    )


# ---------------------------------------------------------------------------------------------
# Error answers shaped like the real services' (so the SDKs classify them as they would AWS's)

ROUTE53_NS = "https://route53.amazonaws.com/doc/2013-04-01/"

# (HTTP status, code, message) per protocol: the throttling error, a 500 and a 503.
_THROTTLE = {
    "ec2": ("503 Service Unavailable", "RequestLimitExceeded", "Request limit exceeded."),
    "query": ("400 Bad Request", "Throttling", "Rate exceeded"),
    "route53": ("400 Bad Request", "Throttling", "Rate exceeded"),
    "json": ("400 Bad Request", "ThrottlingException", "Rate exceeded"),  # SSM too
    "cbor": ("400 Bad Request", "ThrottlingException", "Rate exceeded"),
    "s3": ("503 Slow Down", "SlowDown", "Please reduce your request rate."),
    "rest-json": ("429 Too Many Requests", "TooManyRequestsException", "Rate exceeded"),
}
_INTERNAL = {
    "ec2": ("500 Internal Server Error", "InternalError", "An internal error has occurred."),
    "query": ("500 Internal Server Error", "InternalFailure", "Internal failure"),
    "route53": ("500 Internal Server Error", "InternalFailure", "Internal failure"),
    "s3": ("500 Internal Server Error", "InternalError", "We encountered an internal error. Please try again."),
}
_UNAVAILABLE = {
    "ec2": ("503 Service Unavailable", "Unavailable", "The server is overloaded and can't handle the request."),
    "query": ("503 Service Unavailable", "ServiceUnavailable", "Service is unavailable"),
    "route53": ("503 Service Unavailable", "ServiceUnavailable", "Service is unavailable"),
    "s3": ("503 Service Unavailable", "ServiceUnavailable", "Service is unavailable"),
}
_JSON_INTERNAL = ("500 Internal Server Error", "InternalFailure", "Internal failure")
_JSON_UNAVAILABLE = ("503 Service Unavailable", "ServiceUnavailableException", "Service unavailable")


def _cbor_text(text):
    data = text.encode()
    n = len(data)
    # CBOR major type 3 (text string); lengths below 2**16 are all an error needs.
    head = bytes([0x60 | n]) if n < 24 else bytes([0x78, n]) if n < 256 else bytes([0x79]) + n.to_bytes(2, "big")
    return head + data


def _error(protocol, status, code, message):
    """An error answer (status, headers, body) in the given protocol's shape."""
    request_id = str(uuid.uuid4())
    sender = "Sender" if status.startswith("4") else "Receiver"
    if protocol == "ec2":
        content_type = "text/xml"
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>{code}</Code>'
            f"<Message>{message}</Message></Error></Errors><RequestID>{request_id}</RequestID></Response>"
        )
    elif protocol in ("query", "route53"):
        content_type = "text/xml"
        ns = f' xmlns="{ROUTE53_NS}"' if protocol == "route53" else ""
        body = (
            f'<?xml version="1.0"?>\n<ErrorResponse{ns}><Error><Type>{sender}</Type><Code>{code}</Code>'
            f"<Message>{message}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        )
    elif protocol == "s3":
        content_type = "application/xml"
        body = f"<Error><Code>{code}</Code><Message>{message}</Message><RequestId>{request_id}</RequestId></Error>"
    elif protocol == "cbor":
        # Smithy RPC v2 CBOR: a CBOR map {"__type": code, "message": message}.
        data = bytes([0xA2]) + _cbor_text("__type") + _cbor_text(code) + _cbor_text("message") + _cbor_text(message)
        return status, [
            ("Content-Type", "application/cbor"),
            ("Content-Length", str(len(data))),
            ("smithy-protocol", "rpc-v2-cbor"),
            ("x-amzn-RequestId", request_id),
        ], data
    else:  # JSON 1.0/1.1 (X-Amz-Target) and REST-JSON: the SDKs read __type or x-amzn-ErrorType
        content_type = "application/x-amz-json-1.1" if protocol == "json" else "application/json"
        data = json.dumps({"__type": code, "message": message}).encode()
        return status, [
            ("Content-Type", content_type),
            ("Content-Length", str(len(data))),
            ("x-amzn-ErrorType", code),
            ("x-amzn-RequestId", request_id),
        ], data
    data = body.encode()
    return status, [("Content-Type", content_type), ("Content-Length", str(len(data)))], data


def throttle_error(call):
    return _error(call.protocol, *_THROTTLE.get(call.protocol, _THROTTLE["json"]))


def server_error(call, unavailable=False):
    """A 500 (or, with unavailable, a 503) in the service's own error shape."""
    table, fallback = (_UNAVAILABLE, _JSON_UNAVAILABLE) if unavailable else (_INTERNAL, _JSON_INTERNAL)
    return _error(call.protocol, *table.get(call.protocol, fallback))


# ---------------------------------------------------------------------------------------------
# The model's state


class Model:
    """Settings, counters, buckets and timers; every field is guarded by self.lock because
    moto's server answers each request on its own thread."""

    def __init__(self, table_path=TABLE_PATH):
        with open(table_path, "rb") as f:
            table = tomllib.load(f)
        self.latency_table = {k: float(v) for k, v in table["latency"].items()}
        self.bucket_table = {
            k: {"burst": float(v["burst"]), "refill": float(v["refill"])} for k, v in table["buckets"].items()
        }
        self.lock = threading.RLock()
        self.settings = {
            "model": False,
            "scale": 0.01,
            "seed": 0,
            "throttle_rate": 0.0,
            "fault_rate": 0.0,
            "lost_rate": 0.0,
            "call_latency_ms": 0.0,
            "kill_after": None,
            "kill_pidfile": None,
            "lose_next": {},
            "unhealthy_targets": False,
        }
        self.rng = random.Random(0)
        self.patches_installed = False
        self.acm_default_wait = None  # moto's own ACM_VALIDATION_WAIT, to restore when off
        self.buckets = {}
        self.timers = []  # (when, callback): run lazily, at the start of the next request
        self.releasing = {}  # subnet/security-group id -> (until, why)
        self.route53_changes = {}  # change id -> ready_at
        # A region outage (see set_outage): while "regions" is not empty, every call signed for
        # one of them is dropped without an answer.
        self.outage = {"regions": [], "mode": None, "timeout_secs": 0.0}
        self._reset_counts()
        self._reset_kill()

    # -- settings

    def configure_from_env(self):
        values = {key: _env_setting(key, kind, self.settings[key]) for key, kind in SETTING_TYPES.items()}
        raw_outage = os.environ.get("DEPLOYER_EMU_OUTAGE", "").strip()
        if raw_outage:
            values["outage"] = json.loads(raw_outage)
        self.update(values)

    def update(self, values):
        """Apply settings (a dict with SETTING_TYPES keys, and "outage"); raises ValueError on
        bad input."""
        values = dict(values)
        outage = _parse_outage(values.pop("outage")) if "outage" in values else None
        unknown = set(values) - set(SETTING_TYPES)
        if unknown:
            raise ValueError(f"unknown settings: {sorted(unknown)}; known: {sorted(SETTING_TYPES)}")
        coerced = {key: _coerce(key, value) for key, value in values.items()}
        if "scale" in coerced and coerced["scale"] <= 0:
            raise ValueError("scale must be > 0")
        for key in ("throttle_rate", "fault_rate", "lost_rate"):
            if key in coerced and not 0.0 <= coerced[key] <= 1.0:
                raise ValueError(f"{key} must be within [0, 1]")
        with self.lock:
            if outage is not None:
                self.outage = outage
            self.settings.update(coerced)
            if "seed" in coerced:
                self.rng = random.Random(self.settings["seed"])
            if "kill_after" in coerced or "kill_pidfile" in coerced:
                self._reset_kill()
            if "scale" in coerced or "model" in coerced:
                # New scale, new refill rates: start the buckets full again.
                self.buckets = {}
            if self.settings["model"] and not self.patches_installed:
                # Imported only now: importing moto's RDS/ELBv2/ECS/ACM/Route 53 models costs
                # about 1.5 s, which every test's emulator would pay for nothing.
                install_patches(self)
                self.patches_installed = True
            self._apply_acm_wait()

    def _apply_acm_wait(self):
        if "MOTO_ACM_VALIDATION_WAIT" in os.environ:
            return  # whoever set it meant it
        # moto reads the variable into moto.settings at import time, and acm/models.py reads
        # moto.settings.ACM_VALIDATION_WAIT at every check, so setting the attribute is enough.
        import moto.settings as moto_settings

        if self.acm_default_wait is None:
            self.acm_default_wait = moto_settings.ACM_VALIDATION_WAIT
        if self.settings["model"]:
            moto_settings.ACM_VALIDATION_WAIT = self.latency_table["acm_validation"] * self.settings["scale"]
        else:
            moto_settings.ACM_VALIDATION_WAIT = self.acm_default_wait

    @property
    def on(self):
        return self.settings["model"]

    def latency(self, kind):
        """The scaled latency of a kind of wait, in seconds."""
        return self.latency_table.get(kind, self.latency_table["default"]) * self.settings["scale"]

    def any_active(self):
        s = self.settings
        return bool(
            s["model"] or s["throttle_rate"] or s["fault_rate"] or s["lost_rate"] or s["call_latency_ms"]
            or (s["kill_after"] and s["kill_pidfile"]) or any(s["lose_next"].values())
            or s["unhealthy_targets"]
        )

    # -- counters

    def _reset_counts(self):
        self.calls = {}  # region -> {"reads": {op: n}, "mutating": {op: n}}
        # IAM action (`cloudwatch:PutMetricAlarm`) -> calls: what a least-privilege policy needs.
        # Kept across reset-counts: it is the whole run's, for tests/iam_policy.rs.
        self.actions = getattr(self, "actions", collections.Counter())
        self.totals = collections.Counter()
        self.injected = {}  # op -> {"throttled": n, "throttled_bucket": n, "fault": n, "lost": n}
        self.dropped = collections.Counter()  # region -> calls dropped by the outage
        self.decisions = collections.deque(maxlen=2000)
        self.seq = 0
        self.waits = []

    def reset_counts(self):
        with self.lock:
            now = time.time()
            waits = [w for w in self.waits if w["ready_at"] > now]
            for w in waits:
                w["describe_calls"] = 0
            self._reset_counts()
            self.waits = waits
            # An armed hook counts from the reset, as the counters do.
            if not self.kill["fired"]:
                self.kill["mutating_applied"] = 0

    def _reset_kill(self):
        self.kill = {
            "armed": bool(self.settings["kill_after"] and self.settings["kill_pidfile"]),
            "after": self.settings["kill_after"],
            "pidfile": self.settings["kill_pidfile"],
            "mutating_applied": 0,
            "fired": False,
            "fired_at": None,
            "pid": None,
            "operation": None,
            "status": None,  # HTTP status moto gave the call it fired after
            "error": None,
        }

    def _inject(self, op, what):
        self.totals[what] += 1
        per_op = self.injected.setdefault(op, collections.Counter())
        per_op[what] += 1

    # -- timers and waits

    def at(self, when, callback):
        with self.lock:
            self.timers.append((when, callback))

    def run_due(self):
        if not self.timers:
            return
        with self.lock:
            now = time.time()
            due = [t for t in self.timers if t[0] <= now]
            if not due:
                return
            self.timers = [t for t in self.timers if t[0] > now]
            for _, callback in due:
                try:
                    callback()
                except Exception as e:  # a timer must never break a request
                    print(f"aws_model: timer failed: {e!r}", file=sys.stderr)

    def add_wait(self, resource_id, kind, regions, seconds=None, started=None):
        """Record a resource that is busy from now for kind's latency; returns ready_at."""
        with self.lock:
            started = time.time() if started is None else started
            seconds = self.latency(kind) if seconds is None else seconds
            ready_at = started + seconds
            self.waits.append(
                {
                    "id": resource_id,
                    "kind": kind,
                    "regions": sorted(r for r in regions if r) if regions else None,
                    "created_at": started,
                    "ready_at": ready_at,
                    "seconds": seconds,
                    "poll_operations": sorted(POLL_OPERATIONS.get(kind, ())),
                    "describe_calls": 0,
                }
            )
            return ready_at

    def mark_releasing(self, ids, until, why):
        with self.lock:
            for resource_id in ids:
                if resource_id:
                    previous = self.releasing.get(resource_id, (0, None))[0]
                    self.releasing[resource_id] = (max(until, previous), why)

    def releasing_until(self, resource_id):
        with self.lock:
            entry = self.releasing.get(resource_id)
            if entry and entry[0] > time.time():
                return entry
            self.releasing.pop(resource_id, None)
            return None

    # -- per-call decisions

    def _bucket_key(self, call):
        if call.service == "ec2":
            if call.op == "CreateNatGateway":
                family = "ec2_create_nat_gateway"
            else:
                family = "ec2_mutating" if call.mutating else "ec2_read"
            return f"{call.region}/{family}", family
        if call.service == "elasticloadbalancing" and call.op == "CreateLoadBalancer":
            return f"{call.region}/elbv2_create_load_balancer", "elbv2_create_load_balancer"
        if call.service == "route53":
            return "global/route53", "route53"
        if call.service == "rds":
            return f"{call.region}/rds", "rds"
        return f"{call.region}/{call.service}", "default"

    def _take_token(self, call):
        key, family = self._bucket_key(call)
        spec = self.bucket_table.get(family, self.bucket_table["default"])
        burst, refill = spec["burst"], spec["refill"] / self.settings["scale"]
        now = time.monotonic()
        tokens, last = self.buckets.get(key, (burst, now))
        tokens = min(burst, tokens + (now - last) * refill)
        if tokens >= 1.0:
            self.buckets[key] = (tokens - 1.0, now)
            return True
        self.buckets[key] = (tokens, now)
        return False

    def decide(self, call):
        """Count the call and decide its fate: "pass", "throttle", "throttle_bucket", "fault",
        "unavailable" or "lost". Returns (outcome, extra delay in seconds)."""
        with self.lock:
            now = time.time()
            self.seq += 1
            kind = "mutating" if call.mutating else "reads"
            per_region = self.calls.setdefault(call.region, {"reads": {}, "mutating": {}})
            per_region[kind][call.op] = per_region[kind].get(call.op, 0) + 1
            self.actions[f"{IAM_PREFIX.get(call.service, call.service)}:{call.op}"] += 1
            self.totals["calls"] += 1
            self.totals[kind] += 1
            if call.op in ALL_POLL_OPERATIONS:
                for w in self.waits:
                    if (
                        call.op in POLL_OPERATIONS.get(w["kind"], ())
                        and w["created_at"] <= now <= w["ready_at"]
                        and (not w["regions"] or call.region in w["regions"])
                    ):
                        w["describe_calls"] += 1

            s = self.settings
            # Exactly one draw per call, whatever the rates: the sequence of decisions then
            # depends only on the seed and the order of calls.
            u = self.rng.random()
            throttle, fault, lost = s["throttle_rate"], s["fault_rate"], s["lost_rate"]
            if u < throttle:
                outcome = "throttle"
            elif u < throttle + fault:
                # Lower half of the band a 500, upper half a 503: both kinds show up.
                outcome = "fault" if u < throttle + fault / 2 else "unavailable"
            elif call.mutating and u < throttle + fault + lost:
                outcome = "lost"
            elif s["lose_next"].get(call.op, 0) > 0:
                # Deterministic: the next answer of this very operation is lost.
                s["lose_next"][call.op] -= 1
                outcome = "lost"
            else:
                outcome = "pass"
            if outcome in ("pass", "lost") and s["model"] and not self._take_token(call):
                outcome = "throttle_bucket"

            if outcome == "throttle":
                self._inject(call.op, "throttled")
            elif outcome == "throttle_bucket":
                self._inject(call.op, "throttled_bucket")
            elif outcome in ("fault", "unavailable"):
                self._inject(call.op, "fault")
            self.decisions.append({"seq": self.seq, "op": call.op, "region": call.region, "outcome": outcome})
            return outcome, s["call_latency_ms"] / 1000.0

    def outage_for(self, call):
        """None, or the seconds to wait before dropping this call's connection (the region is
        down). A dropped call is counted by region and by IAM action (the deployer sent it), not
        as a call (it never reached AWS), and draws no random number."""
        with self.lock:
            if call.region not in self.outage["regions"]:
                return None
            self.dropped[call.region] += 1
            self.actions[f"{IAM_PREFIX.get(call.service, call.service)}:{call.op}"] += 1
            self.decisions.append({"seq": self.seq, "op": call.op, "region": call.region, "outcome": "dropped"})
            return self.outage["timeout_secs"] if self.outage["mode"] == "timeout" else 0.0

    def applied(self, call, status):
        """A mutating call went through moto: count it, and fire the kill hook on the K-th."""
        with self.lock:
            self.totals["mutating_applied"] += 1
            k = self.kill
            k["mutating_applied"] += 1
            if not k["armed"] or k["fired"] or k["mutating_applied"] != k["after"]:
                return
            k["fired"] = True
            k["fired_at"] = time.time()
            k["operation"] = call.op
            k["status"] = status
            try:
                with open(k["pidfile"]) as f:
                    pid = int(f.read().strip())
                k["pid"] = pid
                os.kill(pid, signal.SIGKILL)
            except Exception as e:  # report, never break the request
                k["error"] = repr(e)
            print(f"aws_model: kill hook fired after {call.op} (mutating call #{k['after']}): {k}", file=sys.stderr)

    def lost(self, call):
        with self.lock:
            self._inject(call.op, "lost")

    # -- the control endpoint's document

    def report(self):
        with self.lock:
            now = time.time()
            return {
                "settings": dict(self.settings),
                "active": self.any_active(),
                "patches_installed": self.patches_installed,
                "latency_table": dict(self.latency_table),
                "bucket_table": dict(self.bucket_table),
                "buckets": {k: round(v[0], 3) for k, v in sorted(self.buckets.items())},
                "totals": {
                    key: self.totals.get(key, 0)
                    for key in (
                        "calls", "reads", "mutating", "exempt", "mutating_applied",
                        "throttled", "throttled_bucket", "fault", "lost",
                    )
                },
                "calls": self.calls,
                "actions": dict(sorted(self.actions.items())),
                "injected": {op: dict(c) for op, c in self.injected.items()},
                "outage": dict(self.outage, dropped=dict(sorted(self.dropped.items()))),
                "kill": dict(self.kill),
                "waits": [dict(w, busy=w["ready_at"] > now) for w in self.waits],
                "releasing": [
                    {"id": rid, "until": until, "why": why}
                    for rid, (until, why) in sorted(self.releasing.items())
                    if until > now
                ],
                "recent_decisions": list(self.decisions),
                "now": now,
            }


OUTAGE_MODES = ("refuse", "timeout")
DEFAULT_OUTAGE_TIMEOUT_SECS = 5.0


def _parse_outage(value):
    """The outage setting: null (or no regions) ends it; otherwise
    {"regions": ["us-east-1"], "mode": "refuse" | "timeout", "timeout_secs": 5}."""
    if value is None:
        return {"regions": [], "mode": None, "timeout_secs": 0.0}
    if not isinstance(value, dict):
        raise ValueError('outage must be null or {"regions": [...], "mode": "refuse"|"timeout", "timeout_secs": n}')
    unknown = set(value) - {"regions", "mode", "timeout_secs"}
    if unknown:
        raise ValueError(f"unknown outage keys: {sorted(unknown)}")
    regions = value.get("regions") or []
    if not isinstance(regions, list) or not all(isinstance(r, str) and r for r in regions):
        raise ValueError("outage.regions must be a list of region names")
    if not regions:
        return {"regions": [], "mode": None, "timeout_secs": 0.0}
    mode = value.get("mode", "refuse")
    if mode not in OUTAGE_MODES:
        raise ValueError(f"outage.mode must be one of {list(OUTAGE_MODES)}")
    timeout = value.get("timeout_secs")
    if timeout is None:
        timeout = DEFAULT_OUTAGE_TIMEOUT_SECS if mode == "timeout" else 0.0
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout < 0:
        raise ValueError("outage.timeout_secs must be a number >= 0")
    return {"regions": sorted(set(regions)), "mode": mode, "timeout_secs": float(timeout) if mode == "timeout" else 0.0}


def _drop_connection(environ, delay):
    """Answer nothing: close the client's connection, as an unreachable endpoint would look to
    it (after `delay` seconds, for a timeout). werkzeug's dev server gives the app its socket as
    environ["werkzeug.socket"], and takes a ConnectionError out of the app as a dropped
    connection: it logs nothing and sends nothing."""
    if delay > 0:
        time.sleep(delay)
    sock = environ.get("werkzeug.socket")
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    raise ConnectionAbortedError("deployer emulator: region outage")


MODEL = Model()


# ---------------------------------------------------------------------------------------------
# The WSGI layer


def _respond(start_response, answer):
    status, headers, body = answer
    start_response(status, headers)
    return [body]


def _control(environ, start_response):
    method = environ.get("REQUEST_METHOD", "GET").upper()
    path = environ.get("PATH_INFO", "")
    try:
        if path == RESET_PATH and method == "POST":
            MODEL.reset_counts()
        elif path == CONTROL_PATH and method == "POST":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            raw = environ["wsgi.input"].read(length) if length > 0 else b""
            values = json.loads(raw or b"{}")
            if not isinstance(values, dict):
                raise ValueError("expected a JSON object")
            MODEL.update(values)
        elif path != CONTROL_PATH or method != "GET":
            body = json.dumps({"error": f"no such endpoint: {method} {path}"}).encode()
            return _respond(start_response, ("404 Not Found", [("Content-Type", "application/json")], body))
    except (ValueError, TypeError) as e:
        body = json.dumps({"error": str(e)}).encode()
        return _respond(start_response, ("400 Bad Request", [("Content-Type", "application/json")], body))
    body = json.dumps(MODEL.report(), default=str, indent=1).encode()
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    return _respond(start_response, ("200 OK", headers, body))


def wrap(app):
    """moto's WSGI app with the model in front of it."""

    def wsgi(environ, start_response):
        MODEL.run_due()
        path = environ.get("PATH_INFO", "")
        if path == CONTROL_PATH or path.startswith(CONTROL_PATH + "/"):
            return _control(environ, start_response)
        if path.startswith("/moto-api") or path.startswith("/_deployer/"):
            return app(environ, start_response)

        call = identify(environ)
        if call.exempt:
            with MODEL.lock:
                MODEL.totals["exempt"] += 1
            return app(environ, start_response)

        drop_after = MODEL.outage_for(call)
        if drop_after is not None:
            _drop_connection(environ, drop_after)

        outcome, delay = MODEL.decide(call)
        if delay > 0:
            time.sleep(delay)
        if outcome in ("throttle", "throttle_bucket"):
            return _respond(start_response, throttle_error(call))
        if outcome in ("fault", "unavailable"):
            return _respond(start_response, server_error(call, unavailable=outcome == "unavailable"))

        # Hold moto's status and headers back: the kill hook must fire, and a lost response
        # replace moto's answer, before anything reaches the client. (Flask has run the handler
        # by the time the app returns, and the server sends nothing before start_response.)
        held = {}
        written = []

        def hold(status, headers, exc_info=None):
            held["status"], held["headers"], held["exc_info"] = status, headers, exc_info
            return written.append  # the legacy write() callable; Flask does not use it

        result = app(environ, hold)
        if "status" not in held:
            # A lazy app calls start_response only while its body is read: read it now.
            body = b"".join(result)
            if hasattr(result, "close"):
                result.close()
            result = [body]
        status_code = int(held["status"].split()[0])
        if call.mutating:
            MODEL.applied(call, status_code)
        if outcome == "lost" and status_code < 400:
            MODEL.lost(call)
            if hasattr(result, "close"):
                result.close()
            return _respond(start_response, server_error(call))
        start_response(held["status"], held["headers"], held.get("exc_info"))
        if written:
            return [b"".join(written)] + list(result)
        return result

    return wsgi


def install():
    """Read the environment (called once, at server start) and print what is on."""
    install_target_health()
    MODEL.configure_from_env()
    if MODEL.any_active():
        print(f"aws_model: {json.dumps(MODEL.settings)}", file=sys.stderr)


# ---------------------------------------------------------------------------------------------
# Patches to moto's models. They only act on resources created while the model is on (those get
# _emu_* attributes); anything else behaves exactly as moto made it.


def _busy_until(obj, attr):
    until = obj.__dict__.get(attr)
    return until is not None and time.time() < until


def _computed_attribute(cls, name, compute):
    """Turn the plain instance attribute `name` of cls into a property: moto's own writes are
    kept (in _emu_<name>), reads go through compute(self, stored_value). Instances created
    before the patch keep their value in __dict__[name], which the getter falls back to."""
    store = f"_emu_{name}"

    def fget(self):
        d = self.__dict__
        return compute(self, d[store] if store in d else d.get(name))

    def fset(self, value):
        self.__dict__[store] = value

    setattr(cls, name, property(fget, fset))


def install_patches(model):
    _patch_ec2(model)
    _patch_rds(model)
    _patch_elbv2(model)
    _patch_ecs(model)
    _patch_route53(model)
    _patch_acm(model)


def _patch_ec2(model):
    from moto.ec2.exceptions import DependencyViolationError, EC2ClientError
    from moto.ec2.models import EC2Backend
    from moto.ec2.models.nat_gateways import NatGateway
    from moto.ec2.models.vpc_peering_connections import VPCPeeringConnection

    # NAT gateway: pending -> available; deleting -> deleted.
    def nat_state(nat, stored):
        if nat.__dict__.get("_emu_deleting_until") is not None:
            return "deleting" if _busy_until(nat, "_emu_deleting_until") else stored
        if stored == "available" and _busy_until(nat, "_emu_ready_at"):
            return "pending"
        return stored

    _computed_attribute(NatGateway, "state", nat_state)

    create_nat_gateway = EC2Backend.create_nat_gateway

    def create_nat_gateway_modelled(self, *args, **kwargs):
        nat = create_nat_gateway(self, *args, **kwargs)
        if model.on:
            nat._emu_ready_at = model.add_wait(nat.id, "nat_gateway_create", [self.region_name])
        return nat

    EC2Backend.create_nat_gateway = create_nat_gateway_modelled

    delete_nat_gateway = EC2Backend.delete_nat_gateway  # deployer_emulator's EIP-releasing one

    def delete_nat_gateway_modelled(self, nat_gateway_id):
        nat = self.nat_gateways.get(nat_gateway_id)
        # Deleting again while it is deleting (or gone) changes nothing, as on AWS.
        already = nat is not None and nat.__dict__.get("_emu_deleting_until") is not None
        nat = delete_nat_gateway(self, nat_gateway_id)
        if model.on and nat is not None and not already:
            nat._emu_deleting_until = model.add_wait(nat.id, "nat_gateway_delete", [self.region_name])
        return nat

    EC2Backend.delete_nat_gateway = delete_nat_gateway_modelled

    # VPC peering: accepted -> provisioning -> active.
    status = VPCPeeringConnection.status

    def peering_status(self):
        answer = status.fget(self)
        if answer["Code"] == "active" and _busy_until(self, "_emu_active_at"):
            return {"Code": "provisioning", "Message": "Provisioning"}
        return answer

    VPCPeeringConnection.status = property(peering_status)

    accept = EC2Backend.accept_vpc_peering_connection

    def accept_modelled(self, vpc_pcx_id):
        pcx = accept(self, vpc_pcx_id)
        if model.on:
            regions = [pcx.vpc.ec2_backend.region_name, pcx.peer_vpc.ec2_backend.region_name]
            pcx._emu_active_at = model.add_wait(pcx.id, "peering_active", regions)
        return pcx

    EC2Backend.accept_vpc_peering_connection = accept_modelled

    modify_options = EC2Backend.modify_vpc_peering_connection_options

    def modify_options_modelled(self, vpc_pcx_id, *args, **kwargs):
        pcx = self.vpc_pcxs.get(vpc_pcx_id)
        if pcx is not None and pcx.status["Code"] != "active":
            # AWS's answer (as seen through Terraform) for options on a peering not yet active.
            raise EC2ClientError(
                "OperationNotPermitted",
                f"Peering {vpc_pcx_id} is not active. Peering options can be added only to active peerings.",
            )
        return modify_options(self, vpc_pcx_id, *args, **kwargs)

    EC2Backend.modify_vpc_peering_connection_options = modify_options_modelled

    # Subnets and security groups whose ENIs are still being released (after an ALB or ECS
    # service delete) cannot be deleted yet.
    delete_subnet = EC2Backend.delete_subnet

    def delete_subnet_modelled(self, subnet_id):
        if model.releasing_until(subnet_id):
            raise DependencyViolationError(f"The subnet '{subnet_id}' has dependencies and cannot be deleted.")
        return delete_subnet(self, subnet_id)

    EC2Backend.delete_subnet = delete_subnet_modelled

    delete_security_group = EC2Backend.delete_security_group

    def delete_security_group_modelled(self, name=None, group_id=None):
        if group_id and model.releasing_until(group_id):
            raise DependencyViolationError(f"resource {group_id} has a dependent object")
        return delete_security_group(self, name=name, group_id=group_id)

    EC2Backend.delete_security_group = delete_security_group_modelled


def _patch_rds(model):
    from moto.rds.exceptions import RDSClientError
    from moto.rds.models import DBInstance, RDSBackend

    def db_status(db, stored):
        if db.__dict__.get("_emu_gone_at") is not None:
            return "deleting"
        if stored == "available" and _busy_until(db, "_emu_ready_at"):
            return "creating"
        if stored == "available" and _busy_until(db, "_emu_modifying_until"):
            return "modifying"
        return stored

    _computed_attribute(DBInstance, "status", db_status)

    def created(backend, db, kind):
        if model.on:
            db.__dict__.pop("_emu_gone_at", None)  # a replica is a copy of its primary
            db._emu_ready_at = model.add_wait(db.db_instance_identifier, kind, [backend.region_name])
        return db

    create_db_instance = RDSBackend.create_db_instance

    def create_db_instance_modelled(self, db_kwargs):
        return created(self, create_db_instance(self, db_kwargs), "rds_primary_create")

    RDSBackend.create_db_instance = create_db_instance_modelled

    create_replica = RDSBackend.create_db_instance_read_replica

    def create_replica_modelled(self, db_kwargs):
        return created(self, create_replica(self, db_kwargs), "rds_replica_create")

    RDSBackend.create_db_instance_read_replica = create_replica_modelled

    promote = RDSBackend.promote_read_replica

    def promote_modelled(self, db_kwargs):
        db = promote(self, db_kwargs)
        if model.on:
            # AWS shows a promoted replica "modifying" (then it reboots) for minutes.
            db._emu_modifying_until = model.add_wait(db.db_instance_identifier, "rds_promote", [self.region_name])
        return db

    RDSBackend.promote_read_replica = promote_modelled

    delete_db_instance = RDSBackend.delete_db_instance

    def delete_db_instance_modelled(self, db_instance_identifier, *args, **kwargs):
        ghost = self.databases.get(db_instance_identifier)
        if ghost is not None and ghost.__dict__.get("_emu_gone_at") is not None:
            raise RDSClientError(
                "InvalidDBInstanceState", f"Instance {db_instance_identifier} is already being deleted."
            )
        db = delete_db_instance(self, db_instance_identifier, *args, **kwargs)
        if model.on:
            # moto forgets the instance at once; AWS lists it as "deleting" for a while.
            db._emu_gone_at = model.add_wait(db_instance_identifier, "rds_delete", [self.region_name])
            self.databases[db_instance_identifier] = db

            def forget(backend=self, ident=db_instance_identifier, db=db):
                if backend.databases.get(ident) is db:
                    del backend.databases[ident]

            model.at(db._emu_gone_at, forget)
        return db

    RDSBackend.delete_db_instance = delete_db_instance_modelled


def _patch_elbv2(model):
    from moto.elbv2.models import ELBv2Backend, FakeLoadBalancer

    activate = FakeLoadBalancer.activate

    def activate_modelled(self):
        # moto turns "provisioning" into "active" on the first describe.
        if not _busy_until(self, "_emu_ready_at"):
            activate(self)

    FakeLoadBalancer.activate = activate_modelled

    create_load_balancer = ELBv2Backend.create_load_balancer

    def create_load_balancer_modelled(self, *args, **kwargs):
        lb = create_load_balancer(self, *args, **kwargs)
        if model.on:
            lb._emu_ready_at = model.add_wait(lb.arn, "alb_create", [self.region_name])
        return lb

    ELBv2Backend.create_load_balancer = create_load_balancer_modelled

    delete_load_balancer = ELBv2Backend.delete_load_balancer

    def delete_load_balancer_modelled(self, arn):
        lb = self.load_balancers.get(arn)
        delete_load_balancer(self, arn)
        if not (model.on and lb is not None):
            return
        # Still listed for a while (what the SDKs' LoadBalancersDeleted waiter polls for) ...
        ghosts = self.__dict__.setdefault("_emu_ghosts", {})
        ghosts[arn] = lb
        gone_at = model.add_wait(arn, "alb_delete", [self.region_name])
        model.at(gone_at, lambda: ghosts.pop(arn, None))
        # ... and its ENIs hold its subnets and security groups longer still.
        until = model.add_wait(arn, "eni_release", [self.region_name])
        ids = [s.id for s in lb.subnets] + list(lb.security_groups or [])
        model.mark_releasing(ids, until, f"load balancer {lb.name}")

    ELBv2Backend.delete_load_balancer = delete_load_balancer_modelled

    describe_load_balancers = ELBv2Backend.describe_load_balancers

    def describe_load_balancers_modelled(self, arns, names):
        ghosts = dict(self.__dict__.get("_emu_ghosts") or {})
        if not ghosts:
            return describe_load_balancers(self, arns, names)
        arns, names = list(arns or []), list(names or [])
        if not arns and not names:
            return describe_load_balancers(self, arns, names) + list(ghosts.values())
        live_names = {lb.name for lb in self.load_balancers.values()}
        found = [g for g in ghosts.values() if g.arn in arns or (g.name in names and g.name not in live_names)]
        rest_arns = [a for a in arns if a not in ghosts]
        rest_names = [n for n in names if n in live_names or n not in {g.name for g in ghosts.values()}]
        if rest_arns or rest_names:
            found = describe_load_balancers(self, rest_arns, rest_names) + found
        return found

    ELBv2Backend.describe_load_balancers = describe_load_balancers_modelled


def _patch_ecs(model):
    from moto.ecs.models import EC2ContainerServiceBackend, Service

    def modelled(svc):
        return "_emu_ready_at" in svc.__dict__

    def stored_deployments(svc):
        d = svc.__dict__
        return d["_emu_deployments"] if "_emu_deployments" in d else d.get("deployments")

    def draining(svc):
        return "_emu_drain_until" in svc.__dict__

    def running(svc, stored):
        if not modelled(svc):
            return stored
        if draining(svc):
            return svc.__dict__["_emu_prev_running"] if _busy_until(svc, "_emu_drain_until") else 0
        if _busy_until(svc, "_emu_ready_at"):
            return svc.__dict__.get("_emu_prev_running", 0)  # tasks start (or stop) at steady
        return svc.desired_count

    def pending(svc, stored):
        if not modelled(svc):
            return stored
        if draining(svc):
            return 0
        return max((svc.desired_count or 0) - svc.running_count, 0)

    def status(svc, stored):
        if draining(svc) and _busy_until(svc, "_emu_drain_until"):
            return "DRAINING"
        return stored

    def deployments(svc, stored):
        if not modelled(svc) or not stored:
            return stored
        primary = stored[0]  # updated in place: moto writes to it too (force_new_deployment)
        busy = _busy_until(svc, "_emu_ready_at")
        old = svc.__dict__.get("_emu_old_deployment")
        replacing = busy and old is not None and not draining(svc)
        # While a new deployment replaces an old one, the old one's tasks are the running ones.
        running_new = 0 if replacing else svc.running_count
        primary.update(
            desiredCount=svc.desired_count,
            runningCount=running_new,
            pendingCount=max((svc.desired_count or 0) - running_new, 0) if busy else 0,
            rolloutState="IN_PROGRESS" if busy else "COMPLETED",
            rolloutStateReason=f"ECS deployment {primary['id']} {'in progress' if busy else 'completed'}.",
        )
        if replacing:
            old["runningCount"] = svc.running_count
            return [primary, old]
        return [primary]

    _computed_attribute(Service, "running_count", running)
    _computed_attribute(Service, "pending_count", pending)
    _computed_attribute(Service, "status", status)
    _computed_attribute(Service, "deployments", deployments)

    create_service = EC2ContainerServiceBackend.create_service

    def create_service_modelled(self, *args, **kwargs):
        svc = create_service(self, *args, **kwargs)
        if model.on:
            svc._emu_prev_running = 0
            svc._emu_ready_at = model.add_wait(svc.arn, "ecs_service_steady", [self.region_name])
        return svc

    EC2ContainerServiceBackend.create_service = create_service_modelled

    update_service = EC2ContainerServiceBackend.update_service

    def update_service_modelled(self, service_properties):
        if not model.on:
            return update_service(self, service_properties)
        # moto pops these out of service_properties: read them first.
        cluster = service_properties.get("cluster", "default")
        name = str(service_properties.get("service", "")).split("/")[-1]
        forced = bool(service_properties.get("force_new_deployment"))
        rolls = bool(
            service_properties.get("task_definition")
            or forced
            or service_properties.get("desired_count") is not None
        )
        before = self._get_service(cluster, name)
        prev_running = before.running_count
        prev_task_definition = before.task_definition
        prev_primary = dict(before.deployments[0]) if before.deployments else None
        svc = update_service(self, service_properties)
        if rolls:
            stored = stored_deployments(svc)
            if (forced or svc.task_definition != prev_task_definition) and prev_primary and stored:
                # A new deployment replaces the old one, which stays ACTIVE until steady.
                svc._emu_old_deployment = dict(prev_primary, status="ACTIVE", desiredCount=0)
                stored[0]["taskDefinition"] = svc.task_definition
                if not forced:  # moto renews the id itself when forced
                    stored[0]["id"] = f"ecs-svc/{uuid.uuid4().int % 32**12}"
            else:
                svc.__dict__.pop("_emu_old_deployment", None)
            svc._emu_prev_running = prev_running
            svc._emu_ready_at = model.add_wait(svc.arn, "ecs_service_steady", [self.region_name])
        return svc

    EC2ContainerServiceBackend.update_service = update_service_modelled

    delete_service = EC2ContainerServiceBackend.delete_service

    def delete_service_modelled(self, cluster_name, service_name, force):
        if not model.on:
            return delete_service(self, cluster_name, service_name, force)
        prev_running = self._get_service(cluster_name, service_name).running_count
        svc = delete_service(self, cluster_name, service_name, force)
        svc.__dict__.setdefault("_emu_ready_at", 0)  # from now on its counts are modelled
        svc._emu_prev_running = prev_running
        svc._emu_drain_until = model.add_wait(svc.arn, "ecs_service_drain", [self.region_name])
        awsvpc = (svc.network_configuration or {}).get("awsvpcConfiguration") or {}
        ids = list(awsvpc.get("subnets") or []) + list(awsvpc.get("securityGroups") or [])
        if ids:
            # The tasks keep their ENIs while the service drains, and AWS releases them after.
            until = model.add_wait(
                svc.arn, "eni_release", [self.region_name],
                seconds=model.latency("ecs_service_drain") + model.latency("eni_release"),
            )
            model.mark_releasing(ids, until, f"ECS service {svc.name}")
        return svc

    EC2ContainerServiceBackend.delete_service = delete_service_modelled


def _patch_route53(model):
    from moto.route53.responses import Route53

    def change_id(raw):
        return str(raw or "").rstrip("/").split("/")[-1]

    change_resource_record_sets = Route53.change_resource_record_sets

    def change_resource_record_sets_modelled(self):
        result = change_resource_record_sets(self)
        if model.on:
            # moto answers every change with the same id; a per-change id lets GetChange tell
            # them apart.
            cid = "C" + uuid.uuid4().hex[:20].upper()
            ready_at = model.add_wait(cid, "route53_insync", None)
            with model.lock:
                model.route53_changes[cid] = ready_at
            info = result.result["ChangeInfo"]
            info["Id"] = f"/change/{cid}"
            info["Status"] = "PENDING"
        return result

    Route53.change_resource_record_sets = change_resource_record_sets_modelled

    get_change = Route53.get_change

    def get_change_modelled(self):
        result = get_change(self)
        info = result.result["ChangeInfo"]
        cid = change_id(info.get("Id"))
        ready_at = model.route53_changes.get(cid)
        if ready_at is not None:
            info["Id"] = f"/change/{cid}"
            info["Status"] = "PENDING" if time.time() < ready_at else "INSYNC"
        return result

    Route53.get_change = get_change_modelled


def _patch_acm(model):
    # moto itself flips PENDING_VALIDATION to ISSUED (see Model._apply_acm_wait); this only
    # records the wait for the report.
    import moto.settings as moto_settings
    from moto.acm.models import AWSCertificateManagerBackend

    request_certificate = AWSCertificateManagerBackend.request_certificate

    def request_certificate_modelled(self, *args, **kwargs):
        known = set(self._certificates)
        arn = request_certificate(self, *args, **kwargs)
        if model.on and arn not in known:
            seconds = float(moto_settings.ACM_VALIDATION_WAIT)
            model.add_wait(arn, "acm_validation", [self.region_name], seconds=seconds)
        return arn

    AWSCertificateManagerBackend.request_certificate = request_certificate_modelled


# ---------------------------------------------------------------------------------------------
# ECS tasks as load balancer targets (DescribeTargetHealth). Installed at start, model on or off.
#
# AWS: an ECS service (or task set) with a load balancer registers each task with the target
# group, by the IP address of its ENI for the awsvpc network mode (ECS developer guide, "Use
# load balancing to distribute Amazon ECS service traffic",
# https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-load-balancing.html), on
# the container port its loadBalancers entry names. A new target is "initial" while "the load
# balancer is still sending the target the minimum number of health checks required to determine
# its health status" (Elb.InitialHealthChecking), i.e. HealthyThresholdCount checks
# HealthCheckIntervalSeconds apart, then "healthy"; a target failing its checks is "unhealthy"
# with Target.FailedHealthChecks after UnhealthyThresholdCount of them; a target being
# deregistered is "draining" (Target.DeregistrationInProgress). ELB API reference, TargetHealth
# (https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_TargetHealth.html)
# and DescribeTargetHealth
# (https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_DescribeTargetHealth.html);
# ALB user guide, "Health checks for Application Load Balancer target groups"
# (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/target-group-health-checks.html).
#
# The tasks are not moto Task objects (no ListTasks, no ENIs): each "task" is a record
# {"ip", "subnet", "started_at"} in a list per (service, target group), kept in
# svc.__dict__["_emu_tasks"][target group arn]. codedeploy_engine.py gives its task sets their own
# lists (ts["_emu_tasks"]): blue takes the service's, green a new one, and the service takes the
# list of the task set it makes PRIMARY, so a task keeps its start through a release.

_TARGET_HEALTH_INSTALLED = [False]
_NEXT_HOST = {}  # (account, region, subnet id) -> next host offset in the subnet
_TASKS_LOCK = threading.RLock()


def service_task_list(svc, target_group_arn):
    """The service's task records on that target group (created empty)."""
    with _TASKS_LOCK:
        lists = svc.__dict__.setdefault("_emu_tasks", {})
        return lists.setdefault(target_group_arn, [])


def set_service_task_list(svc, target_group_arn, tasks):
    """The service now runs `tasks` on that target group (a task set became PRIMARY)."""
    if tasks is None:
        return
    with _TASKS_LOCK:
        svc.__dict__.setdefault("_emu_tasks", {})[target_group_arn] = tasks


def _allocate_ip(account, region, subnet_id):
    import ipaddress

    cidr = "10.0.0.0/24"
    try:
        from moto.ec2.models import ec2_backends

        cidr = ec2_backends[account][region].get_subnet(subnet_id).cidr_block
    except Exception:  # the subnet is gone (or none was given): any private address will do
        pass
    network = ipaddress.ip_network(cidr, strict=False)
    key = (account, region, subnet_id)
    # AWS reserves the first four addresses of a subnet and the last one.
    usable = max(network.num_addresses - 5, 1)
    offset = _NEXT_HOST.get(key, 0)
    _NEXT_HOST[key] = offset + 1
    return str(network.network_address + 4 + offset % usable)


def _reconcile(tasks, count, started_at, subnets, account, region, label, tg):
    """Grow or shrink a task list to `count` running tasks; new ones started at `started_at`."""
    with _TASKS_LOCK:
        del tasks[max(count, 0):]
        while len(tasks) < count:
            subnet = subnets[len(tasks) % len(subnets)] if subnets else None
            task = {"ip": _allocate_ip(account, region, subnet), "subnet": subnet, "started_at": started_at}
            tasks.append(task)
            if MODEL.on:
                interval = float(tg.health_check_interval_seconds or 30)
                checks = float(tg.healthy_threshold_count or 5)
                MODEL.add_wait(
                    f"{label} {task['ip']}", "target_healthy", [region],
                    seconds=interval * checks * MODEL.settings["scale"], started=started_at,
                )
        return list(tasks)


def _service_subnets(svc):
    awsvpc = (getattr(svc, "network_configuration", None) or {}).get("awsvpcConfiguration") or {}
    return list(awsvpc.get("subnets") or [])


def _service_tasks_started_at(svc):
    """When a service's newly counted tasks started running: the end of the model's rollout wait
    if it is over, else now (without the model, tasks run at once)."""
    now = time.time()
    ready = svc.__dict__.get("_emu_ready_at")
    return ready if ready and ready <= now else now


def _engine_task_sets(account, region, svc):
    """The task sets of the service's latest CodeDeploy deployment that reached Install, or None."""
    try:
        import codedeploy_engine
    except ImportError:  # pragma: no cover - the engine is part of the emulator
        return None
    latest = None
    for d in list(codedeploy_engine.DEPLOYMENTS.values()):
        if d.account != account or d.region != region or (d.blue is None and d.green is None):
            continue
        ref = (d.group.ecs_services or [{}])[0]
        if ref.get("serviceName") != svc.name or str(ref.get("clusterName", "")).split("/")[-1] != svc.cluster_name:
            continue
        if latest is None or d.create_time > latest.create_time:
            latest = d
    if latest is None:
        return None
    return [ts for ts in (latest.blue, latest.green) if ts is not None and ts.get("status") != "DELETED"]


def ecs_targets(elbv2_backend, target_group):
    """[(ip, port, started_at, draining)] of the ECS tasks registered with the target group."""
    try:
        from moto.ecs.models import ecs_backends
    except ImportError:  # pragma: no cover
        return []
    account, region = elbv2_backend.account_id, elbv2_backend.region_name
    ecs = dict.get(dict.get(ecs_backends, account) or {}, region)
    if ecs is None:
        return []
    arn = target_group.arn
    found = []
    for svc in list(ecs.services.values()):
        status = svc.status
        if status not in ("ACTIVE", "DRAINING"):
            continue  # INACTIVE: its tasks are stopped and deregistered
        draining = status == "DRAINING"
        subnets = _service_subnets(svc)
        label = f"{svc.cluster_name}/{svc.name}"
        task_sets = _engine_task_sets(account, region, svc)
        if task_sets:
            for ts in task_sets:
                if ts.get("targetGroupArn") != arn:
                    continue
                tasks = ts.setdefault("_emu_tasks", [])
                primary = ts.get("status") == "PRIMARY"
                count = svc.running_count if primary else int(ts.get("desiredCount") or 0)
                started = _service_tasks_started_at(svc) if primary else ts.get("_emu_started_at", time.time())
                for task in _reconcile(tasks, count or 0, started, subnets, account, region, label, target_group):
                    found.append((task["ip"], int(ts["container"][1]), task["started_at"],
                                  draining or ts.get("status") == "DRAINING"))
            continue
        for lb in list(svc.load_balancers or []):
            if lb.get("targetGroupArn") != arn:
                continue
            tasks = service_task_list(svc, arn)
            count = svc.running_count or 0
            for task in _reconcile(tasks, count, _service_tasks_started_at(svc), subnets, account, region, label, target_group):
                found.append((task["ip"], int(lb.get("containerPort") or target_group.port or 80), task["started_at"], draining))
    return found


def target_health(target_group, ip, port, started_at, draining, now=None):
    """(state, reason, description) of one ECS task's target, as the ELB API reference names them."""
    now = time.time() if now is None else now
    if draining:
        return "draining", "Target.DeregistrationInProgress", "Target deregistration is in progress"
    scale = MODEL.settings["scale"] if MODEL.on else 0.0  # no wait without the model
    interval = float(target_group.health_check_interval_seconds or 30)
    if MODEL.settings["unhealthy_targets"]:
        if now < started_at + interval * float(target_group.unhealthy_threshold_count or 2) * scale:
            return "initial", "Elb.InitialHealthChecking", "Initial health checks in progress"
        return "unhealthy", "Target.FailedHealthChecks", "Health checks failed"
    if now < started_at + interval * float(target_group.healthy_threshold_count or 5) * scale:
        return "initial", "Elb.InitialHealthChecking", "Initial health checks in progress"
    return "healthy", None, None


def install_target_health():
    """Patch DescribeTargetHealth (once per process): the ECS tasks' targets, then moto's own."""
    if _TARGET_HEALTH_INSTALLED[0]:
        return
    _TARGET_HEALTH_INSTALLED[0] = True
    from moto.elbv2.exceptions import TargetGroupNotFoundError
    from moto.elbv2.models import ELBv2Backend, FakeHealthStatus

    original = ELBv2Backend.describe_target_health

    def describe_target_health(self, target_group_arn, targets):
        tg = self.target_groups.get(target_group_arn)
        if tg is None:
            raise TargetGroupNotFoundError()
        found = ecs_targets(self, tg)
        now = time.time()  # after: a task counted just now started at (about) now
        ecs = {}
        for ip, port, started_at, draining in found:
            state, reason, description = target_health(tg, ip, port, started_at, draining, now)
            health_port = tg.health_check_port if tg.health_check_port not in (None, "traffic-port") else str(port)
            ecs[(ip, port)] = FakeHealthStatus(ip, str(port), health_port, state, reason, description)
        if not targets:
            return list(ecs.values()) + original(self, target_group_arn, targets)
        answer = []
        for wanted in targets:
            match = [
                h for (ip, port), h in ecs.items()
                if ip == wanted.get("Id") and ("Port" not in wanted or str(wanted["Port"]) == str(port))
            ]
            answer.extend(match or original(self, target_group_arn, [wanted]))
        return answer

    ELBv2Backend.describe_target_health = describe_target_health
