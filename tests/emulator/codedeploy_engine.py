"""CodeDeploy ECS blue/green deployments that actually run, on a scaled clock.

moto 5.2.5 stores a deployment and leaves it `Created` forever (../shared/codedeploy-facts.md).
This engine replaces moto's deployment operations with ones that behave as AWS documents them
for the ECS compute platform, and drives moto's own ECS, ELBv2 and CloudWatch state in-process,
so the real SDK sees a release happen over HTTP:

- **CreateDeployment** validates as AWS does: an ECS application, a group whose ECS service
  exists and is on the CODE_DEPLOY controller, a parseable AppSpec (YAML or JSON, version 0.0)
  whose task definition exists and is ACTIVE and whose container and port are in it, and one
  active deployment per group (`DeploymentLimitExceededException`). IDs are `d-` + 9 characters.
- **The lifecycle**, per deployment: BeforeInstall, Install (the replacement task set, on the
  other target group of the pair), AfterInstall, AllowTestTraffic (the test listener forwards to
  green), AfterAllowTestTraffic, BeforeAllowTraffic, AllowTraffic (the production listeners'
  weights shift per the deployment configuration: all at once, canary or linear), then
  AfterAllowTraffic. Green becomes PRIMARY at the end of AllowTraffic and the service's task
  definition and load balancer follow it. Then the termination wait (the group's
  `terminationWaitTimeInMinutes`: the deployment stays InProgress, the target has succeeded),
  blue is deleted and the deployment is `Succeeded`. ContinueDeployment(TERMINATION_WAIT) ends
  the wait early.
- **The clock** is simulated minutes: DEPLOYER_EMU_CODEDEPLOY_SCALE simulated minutes pass per
  real second (default 1: a 5-minute canary takes 5 s). Every step that is not traffic shifting
  takes half a simulated minute. Time is advanced lazily, on every request the emulator serves
  (`tick`), so ELBv2 and ECS reads see a deployment move too.
- **Failures.** A watched alarm (the group's alarm configuration, when enabled) in state ALARM
  stops the deployment (`Stopped`, `ALARM_ACTIVE`). A forced failure armed through
  `POST /_deployer/codedeploy` fails it at a named lifecycle event (`Failed`,
  `HOOK_EXECUTION_FAILURE` for a hook event, `ECS_UPDATE_ERROR` for Install/AllowTestTraffic/
  AllowTraffic). StopDeployment stops it (`MANUAL_STOP`). Either triggers an automatic rollback
  where the group (or the call) enables it for that event: a **new deployment** with
  `creator = codeDeployRollback` and `rollbackInfo` linked both ways, which puts every listener
  back on blue, makes blue PRIMARY again (the service follows) and deletes green.

Not modelled: AppSpec hooks (Lambda functions), the Ready wait (deploymentReadyOption), ECS task
counts (task sets report their desired count as running). Each task set carries its tasks for
aws_model.py's load balancer targets (DescribeTargetHealth): blue the service's, green new ones
started at Install, and the task set made PRIMARY hands its tasks to the service.
"""

import datetime
import json
import os
import random
import string
import threading
import time
from typing import Any

import yaml

import aws_model

LOCK = threading.RLock()
SCALE = [float(os.environ.get("DEPLOYER_EMU_CODEDEPLOY_SCALE", "1"))]
STEP_MINUTES = 0.5

EVENTS = [
    "BeforeInstall",
    "Install",
    "AfterInstall",
    "AllowTestTraffic",
    "AfterAllowTestTraffic",
    "BeforeAllowTraffic",
    "AllowTraffic",
    "AfterAllowTraffic",
]
ROLLBACK_EVENTS = ["BeforeAllowTraffic", "AllowTraffic", "AfterAllowTraffic"]
ECS_STEPS = {"Install", "AllowTestTraffic", "AllowTraffic"}
ACTIVE = ["Created", "Queued", "InProgress", "Baking", "Ready"]

# (account, region, application, group) -> lifecycle event at which the next deployment fails.
ARMED: dict[tuple, str] = {}
# Every deployment the engine runs, by ID (IDs are unique across regions).
DEPLOYMENTS: dict[str, "Deployment"] = {}


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _new_id() -> str:
    while True:
        ident = "d-" + "".join(random.choices(string.ascii_uppercase + string.digits, k=9))
        if ident not in DEPLOYMENTS:
            return ident


def _error(code: str, message: str):
    from moto.codedeploy.exceptions import CodeDeployException

    class Error(CodeDeployException):
        def __init__(self):
            super().__init__(code, message)

    return Error()


def _backends(account: str, region: str):
    from moto.cloudwatch.models import cloudwatch_backends
    from moto.ecs.models import ecs_backends
    from moto.elbv2.models import elbv2_backends

    return ecs_backends[account][region], elbv2_backends[account][region], cloudwatch_backends[account][region]


def parse_appspec(content: str) -> dict[str, Any]:
    """The target service's properties, or InvalidRevisionException as AWS answers a bad AppSpec."""
    try:
        spec = yaml.safe_load(content)  # JSON is YAML
    except yaml.YAMLError as e:
        raise _error("InvalidRevisionException", f"The AppSpec file cannot be parsed: {e}")
    if not isinstance(spec, dict) or str(spec.get("version")) != "0.0":
        raise _error("InvalidRevisionException", "The AppSpec file must have version 0.0.")
    resources = spec.get("Resources")
    if not isinstance(resources, list) or len(resources) != 1:
        raise _error("InvalidRevisionException", "The AppSpec file must name exactly one target service.")
    target = next(iter(resources[0].values()), None) if isinstance(resources[0], dict) else None
    if not isinstance(target, dict) or target.get("Type") != "AWS::ECS::Service":
        raise _error("InvalidRevisionException", "The AppSpec resource must be of type AWS::ECS::Service.")
    props = target.get("Properties") or {}
    lb = props.get("LoadBalancerInfo") or {}
    if not props.get("TaskDefinition") or not lb.get("ContainerName") or lb.get("ContainerPort") is None:
        raise _error(
            "InvalidRevisionException",
            "The AppSpec file must give TaskDefinition and LoadBalancerInfo (ContainerName, ContainerPort).",
        )
    return props


def appspec(task_definition: str, container: str, port: int) -> str:
    return json.dumps(
        {
            "version": "0.0",
            "Resources": [
                {
                    "TargetService": {
                        "Type": "AWS::ECS::Service",
                        "Properties": {
                            "TaskDefinition": task_definition,
                            "LoadBalancerInfo": {"ContainerName": container, "ContainerPort": port},
                        },
                    }
                }
            ],
        }
    )


class Deployment:
    def __init__(self, backend, group, revision, config_name, description, creator, auto_rollback, alarms):
        self.backend = backend
        self.account = backend.account_id
        self.region = backend.region_name
        self.group = group
        self.application_name = group.application.application_name
        self.group_name = group.deployment_group_name
        self.id = _new_id()
        self.revision = revision
        self.config_name = config_name
        self.description = description or ""
        self.creator = creator
        self.auto_rollback = auto_rollback
        self.alarms = alarms
        self.status = "Created"
        self.create_time = _now()
        self.start_time = None
        self.complete_time = None
        self.error = None
        self.rollback_info: dict[str, str] = {}
        self.previous_revision = None
        self.events = ROLLBACK_EVENTS if creator == "codeDeployRollback" else EVENTS
        self.lifecycle = {e: {"lifecycleEventName": e, "status": "Pending"} for e in self.events}
        self.phase = None
        self.phase_start = 0.0
        self.sim = 0.0
        self.last_real = time.monotonic()
        self.fail_at = None
        self.target_status = "Pending"
        self.termination_wait_started = False
        self.blue = None
        self.green = None
        self.target_updated = self.create_time

    # --- the group's pieces -------------------------------------------------------------------
    def service(self):
        ecs, _, _ = _backends(self.account, self.region)
        svc = (self.group.ecs_services or [{}])[0]
        return ecs._get_service(svc.get("clusterName"), svc.get("serviceName"))

    def target_id(self):
        svc = (self.group.ecs_services or [{}])[0]
        return f"{svc.get('clusterName')}:{svc.get('serviceName')}"

    def pair(self):
        info = (self.group.load_balancer_info or {}).get("targetGroupPairInfoList") or [{}]
        return info[0]

    def target_group_arn(self, name):
        _, elbv2, _ = _backends(self.account, self.region)
        found = list(elbv2.describe_target_groups(None, [], [name]))
        return found[0].arn if found else None

    def listeners(self, route):
        return list((self.pair().get(route) or {}).get("listenerArns") or [])

    def termination_wait(self) -> float:
        bg = self.group.blue_green_deployment_configuration or {}
        term = bg.get("terminateBlueInstancesOnDeploymentSuccess") or {}
        if term.get("action", "TERMINATE") != "TERMINATE":
            return 0.0
        return float(term.get("terminationWaitTimeInMinutes", 0) or 0)

    def routing(self):
        import codedeploy

        config = codedeploy.configs(self.backend).get(self.config_name) or {}
        return config.get("trafficRoutingConfig") or {"type": "AllAtOnce"}

    # --- the clock ----------------------------------------------------------------------------
    def sim_now(self) -> float:
        real = time.monotonic()
        self.sim += (real - self.last_real) * SCALE[0]
        self.last_real = real
        return self.sim

    def weight_at(self, elapsed: float) -> int:
        r = self.routing()
        if r.get("type") == "TimeBasedCanary":
            c = r["timeBasedCanary"]
            return 100 if elapsed >= c["canaryInterval"] else int(c["canaryPercentage"])
        if r.get("type") == "TimeBasedLinear":
            c = r["timeBasedLinear"]
            return min(100, int(c["linearPercentage"]) * (1 + int(elapsed // c["linearInterval"])))
        return 100

    def duration(self, phase: str) -> float:
        if phase == "AllowTraffic" and self.creator != "codeDeployRollback":
            r = self.routing()
            if r.get("type") == "TimeBasedCanary":
                return float(r["timeBasedCanary"]["canaryInterval"])
            if r.get("type") == "TimeBasedLinear":
                c = r["timeBasedLinear"]
                steps = -(-100 // int(c["linearPercentage"]))  # ceil
                return float(c["linearInterval"]) * (steps - 1) + STEP_MINUTES
        return STEP_MINUTES

    # --- effects on ECS and ELBv2 -------------------------------------------------------------
    def forward(self, listener_arns, weights):
        """Points listeners at target groups: {arn: weight}; one group is a plain forward."""
        _, elbv2, _ = _backends(self.account, self.region)
        live = {arn: w for arn, w in weights.items() if w > 0} or weights
        if len(live) == 1:
            arn = next(iter(live))
            action = {
                "Type": "forward",
                "TargetGroupArn": arn,
                "ForwardConfig": {"TargetGroups": [{"TargetGroupArn": arn, "Weight": 1}]},
            }
        else:
            action = {
                "Type": "forward",
                "ForwardConfig": {"TargetGroups": [{"TargetGroupArn": a, "Weight": w} for a, w in weights.items()]},
            }
        for arn in listener_arns:
            elbv2.modify_listener(arn, certificates=[], actions=[json.loads(json.dumps(action))])

    def make_primary(self, task_set):
        svc = self.service()
        # The service's tasks are now this task set's (aws_model.py's load balancer targets).
        aws_model.set_service_task_list(svc, task_set["targetGroupArn"], task_set.get("_emu_tasks"))
        svc.task_definition = task_set["taskDefinition"]
        # The service reports the PRIMARY task set's strategy (DescribeServices).
        svc.capacity_provider_strategy = list(task_set.get("capacityProviderStrategy") or [])
        container = task_set["container"]
        svc.load_balancers = [
            {"targetGroupArn": task_set["targetGroupArn"], "containerName": container[0], "containerPort": container[1]}
        ]
        for ts in (self.blue, self.green):
            if ts is not None and ts is not task_set and ts["status"] == "PRIMARY":
                ts["status"] = "ACTIVE"
        task_set["status"] = "PRIMARY"

    def enter(self, phase):
        self.phase = phase
        self.lifecycle[phase].update(status="InProgress", startTime=_now())
        if self.creator == "codeDeployRollback":
            if phase == "AllowTraffic":
                blue, green = self.blue, self.green
                self.forward(self.listeners("prodTrafficRoute") + self.listeners("testTrafficRoute"), {blue["targetGroupArn"]: 100})
                self.make_primary(blue)
                blue["trafficWeight"] = 100.0
                if green is not None:
                    green.update(status="DRAINING", trafficWeight=0.0)
            return
        if phase == "Install":
            svc = self.service()
            props = parse_appspec(self.revision["appSpecContent"]["content"])
            lb = props["LoadBalancerInfo"]
            self.blue = self.original()
            blue_tg = self.blue["targetGroupArn"]
            names = [tg.get("name") for tg in self.pair().get("targetGroups") or []]
            arns = [self.target_group_arn(n) for n in names]
            green_tg = next((a for a in arns if a and a != blue_tg), None)
            self.green = {
                "identifer": f"ecs-svc/{random.randint(10**18, 10**19 - 1)}",
                "taskDefinition": props["TaskDefinition"],
                "targetGroupArn": green_tg,
                "container": (lb["ContainerName"], int(lb["ContainerPort"])),
                "status": "ACTIVE",
                "trafficWeight": 0.0,
                "taskSetLabel": "Green",
                "desiredCount": svc.desired_count,
                # The new task set takes the AppSpec's strategy, and none without one ("AppSpec
                # 'resources' section for Amazon ECS deployments": CapacityProviderStrategy is a
                # property of the deployment's task set, not inherited from the service).
                "capacityProviderStrategy": [
                    {"capacityProvider": i.get("CapacityProvider"), "weight": int(i.get("Weight", 0)), "base": int(i.get("Base", 0))}
                    for i in props.get("CapacityProviderStrategy") or []
                ],
                # Its tasks (aws_model.py's load balancer targets) start now, on the green group.
                "_emu_tasks": [],
                "_emu_started_at": time.time(),
            }
        elif phase == "AllowTestTraffic":
            self.forward(self.listeners("testTrafficRoute"), {self.green["targetGroupArn"]: 100})
        elif phase == "AllowTraffic":
            self.shift(self.weight_at(0.0))

    def original(self):
        """The task set serving before this deployment (blue): the service's own state."""
        svc = self.service()
        props = parse_appspec(self.revision["appSpecContent"]["content"])
        lb = props["LoadBalancerInfo"]
        blue_tg = (svc.load_balancers or [{}])[0].get("targetGroupArn")
        return {
            "identifer": f"ecs-svc/{random.randint(10**18, 10**19 - 1)}",
            "taskDefinition": svc.task_definition,
            "targetGroupArn": blue_tg,
            # The service's running tasks are this task set's (aws_model.py's load balancer targets).
            "_emu_tasks": aws_model.service_task_list(svc, blue_tg),
            "container": (lb["ContainerName"], int(lb["ContainerPort"])),
            "status": "PRIMARY",
            "trafficWeight": 100.0,
            "taskSetLabel": "Blue",
            "desiredCount": svc.desired_count,
            "capacityProviderStrategy": list(getattr(svc, "capacity_provider_strategy", None) or []),
        }

    def shift(self, weight):
        if self.green["trafficWeight"] == float(weight):
            return
        self.green["trafficWeight"] = float(weight)
        self.blue["trafficWeight"] = float(100 - weight)
        self.forward(
            self.listeners("prodTrafficRoute"),
            {self.blue["targetGroupArn"]: 100 - weight, self.green["targetGroupArn"]: weight},
        )

    def leave(self, phase):
        self.lifecycle[phase].update(status="Succeeded", endTime=_now())
        if phase == "AllowTraffic" and self.creator != "codeDeployRollback":
            self.shift(100)
            self.make_primary(self.green)

    # --- the state machine --------------------------------------------------------------------
    def alarm_in_alarm(self):
        config = self.alarms if self.alarms is not None else self.group.alarm_configuration
        if not isinstance(config, dict) or not config.get("enabled"):
            return None
        _, _, cw = _backends(self.account, self.region)
        for alarm in config.get("alarms") or []:
            found = cw.alarms.get(alarm.get("name"))
            if found is not None and found.state_value == "ALARM":
                return alarm.get("name")
        return None

    def rolls_back_on(self, event) -> bool:
        config = self.auto_rollback if self.auto_rollback is not None else self.group.auto_rollback_configuration
        return bool(config and config.get("enabled") and event in (config.get("events") or []))

    def end(self, status, code=None, message=None, rollback=False):
        self.status = status
        self.complete_time = _now()
        if code:
            self.error = {"code": code, "message": message}
            if self.phase in self.lifecycle and self.lifecycle[self.phase]["status"] == "InProgress":
                self.lifecycle[self.phase].update(status="Failed", endTime=_now())
            for event in self.lifecycle.values():
                if event["status"] == "Pending":
                    event["status"] = "Skipped"
            self.target_status = status
        if rollback:
            if self.blue is None:  # stopped before Install: the rollback re-asserts the original
                self.blue = self.original()
            rb = Deployment(
                self.backend,
                self.group,
                {
                    "revisionType": "AppSpecContent",
                    "appSpecContent": {"content": appspec(self.blue["taskDefinition"], *self.blue["container"])},
                },
                self.config_name,
                f"Rollback of {self.id}",
                "codeDeployRollback",
                None,
                {"enabled": False},
            )
            rb.blue, rb.green = self.blue, self.green
            rb.rollback_info = {
                "rollbackTriggeringDeploymentId": self.id,
                "rollbackMessage": f"Deployment {self.id} was rolled back.",
            }
            self.rollback_info = {
                "rollbackDeploymentId": rb.id,
                "rollbackMessage": f"Rolled back by deployment {rb.id}.",
            }
            DEPLOYMENTS[rb.id] = rb

    def advance(self):
        if self.status == "Created":
            self.status = "InProgress"
            self.start_time = _now()
            self.target_status = "InProgress"
            self.phase_start = self.sim_now()
            self.enter(self.events[0])
        while self.status == "InProgress":
            t = self.sim_now()
            if self.creator != "codeDeployRollback":
                alarm = self.alarm_in_alarm()
                if alarm:
                    self.end(
                        "Stopped",
                        "ALARM_ACTIVE",
                        f"One or more alarms have been activated according to the Amazon CloudWatch metrics. "
                        f"Alarms (1): {alarm}",
                        rollback=self.rolls_back_on("DEPLOYMENT_STOP_ON_ALARM"),
                    )
                    return
            if self.phase == "TerminationWait":
                if t - self.phase_start >= self.termination_wait():
                    self.finish()
                return
            if self.fail_at == self.phase:
                code = "ECS_UPDATE_ERROR" if self.phase in ECS_STEPS else "HOOK_EXECUTION_FAILURE"
                self.end(
                    "Failed",
                    code,
                    f"The deployment failed at {self.phase} (a failure forced by the emulator).",
                    rollback=self.rolls_back_on("DEPLOYMENT_FAILURE"),
                )
                return
            elapsed = t - self.phase_start
            if self.phase == "AllowTraffic" and self.creator != "codeDeployRollback":
                self.shift(self.weight_at(elapsed))
            if elapsed < self.duration(self.phase):
                return
            finished_at = self.phase_start + self.duration(self.phase)
            self.leave(self.phase)
            position = self.events.index(self.phase)
            if position + 1 < len(self.events):
                self.phase_start = finished_at
                self.enter(self.events[position + 1])
                continue
            self.target_status = "Succeeded"
            self.target_updated = _now()
            if self.creator != "codeDeployRollback" and self.termination_wait() > 0:
                self.phase = "TerminationWait"
                self.phase_start = finished_at
                self.termination_wait_started = True
                continue
            self.finish()

    def finish(self):
        if self.creator == "codeDeployRollback":
            if self.green is not None:
                self.green["status"] = "DELETED"
        elif self.blue is not None:
            self.blue.update(status="DELETED", trafficWeight=0.0)
        self.phase = None
        self.end("Succeeded")

    # --- the API's views ----------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        info = {
            "applicationName": self.application_name,
            "deploymentGroupName": self.group_name,
            "deploymentConfigName": self.config_name,
            "deploymentId": self.id,
            "revision": self.revision,
            "status": self.status,
            "createTime": self.create_time,
            "creator": self.creator,
            "description": self.description,
            "computePlatform": "ECS",
            "deploymentStyle": self.group.deployment_style,
            "blueGreenDeploymentConfiguration": self.group.blue_green_deployment_configuration,
            "loadBalancerInfo": self.group.load_balancer_info,
            "instanceTerminationWaitTimeStarted": self.termination_wait_started,
            "deploymentOverview": {
                "Pending": int(self.target_status == "Pending"),
                "InProgress": int(self.target_status == "InProgress"),
                "Succeeded": int(self.target_status == "Succeeded"),
                "Failed": int(self.target_status == "Failed"),
                "Skipped": 0,
                "Ready": 0,
            },
        }
        if self.previous_revision:
            info["previousRevision"] = self.previous_revision
        if self.auto_rollback is not None:
            info["autoRollbackConfiguration"] = self.auto_rollback
        if self.start_time:
            info["startTime"] = self.start_time
        if self.complete_time:
            info["completeTime"] = self.complete_time
        if self.error:
            info["errorInformation"] = self.error
        if self.rollback_info:
            info["rollbackInfo"] = self.rollback_info
        return info

    def target(self) -> dict[str, Any]:
        svc = (self.group.ecs_services or [{}])[0]
        ecs, _, _ = _backends(self.account, self.region)
        arn = f"arn:aws:ecs:{self.region}:{self.account}:service/{svc.get('clusterName')}/{svc.get('serviceName')}"
        _, elbv2, _ = _backends(self.account, self.region)

        def tg_name(arn):
            found = [tg for tg in elbv2.target_groups.values() if tg.arn == arn]
            return found[0].name if found else None

        sets = []
        for ts in (self.blue, self.green):
            if ts is None or ts["status"] == "DELETED":
                continue
            sets.append(
                {
                    "identifer": ts["identifer"],
                    "desiredCount": ts["desiredCount"],
                    "pendingCount": 0,
                    "runningCount": ts["desiredCount"],
                    "status": ts["status"],
                    "trafficWeight": ts["trafficWeight"],
                    "targetGroup": {"name": tg_name(ts["targetGroupArn"])},
                    "taskSetLabel": ts["taskSetLabel"],
                }
            )
        return {
            "deploymentTargetType": "ECSTarget",
            "ecsTarget": {
                "deploymentId": self.id,
                "targetId": self.target_id(),
                "targetArn": arn,
                "lastUpdatedAt": _now(),
                "lifecycleEvents": list(self.lifecycle.values()),
                "status": self.target_status,
                "taskSetsInfo": sets,
            },
        }


def tick():
    """Advances every active deployment to now (called before each request the emulator serves)."""
    with LOCK:
        for d in list(DEPLOYMENTS.values()):
            if d.status in ACTIVE:
                try:
                    d.advance()
                except Exception as e:  # a resource deleted under a deployment: it fails, as on AWS
                    d.end("Failed", "ECS_UPDATE_ERROR", f"The deployment failed: {e}")


def control(body: dict[str, Any]) -> dict[str, Any]:
    """POST /_deployer/codedeploy: {"scale": minutes per second} and/or {"fail": {"region",
    "application", "deploymentGroup", "event"} (the next deployment of that group) or
    {"deploymentId", "event"}}."""
    from moto.core import DEFAULT_ACCOUNT_ID

    with LOCK:
        if "scale" in body:
            tick()
            SCALE[0] = float(body["scale"])
        fail = body.get("fail")
        if fail:
            event = fail["event"]
            if event not in EVENTS:
                raise ValueError(f"unknown lifecycle event {event!r}: one of {EVENTS}")
            if fail.get("deploymentId"):
                DEPLOYMENTS[fail["deploymentId"]].fail_at = event
            else:
                key = (
                    fail.get("account", DEFAULT_ACCOUNT_ID),
                    fail["region"],
                    fail["application"],
                    fail["deploymentGroup"],
                )
                ARMED[key] = event
        return {"scale": SCALE[0], "armed": [list(k) + [v] for k, v in ARMED.items()]}


def reset():
    with LOCK:
        DEPLOYMENTS.clear()
        ARMED.clear()


def apply():
    from moto.codedeploy import responses as r
    from moto.codedeploy.exceptions import ApplicationDoesNotExistException, DeploymentGroupDoesNotExistException
    from moto.core.responses import ActionResult

    def here(self):
        b = self.codedeploy_backend
        return [d for d in DEPLOYMENTS.values() if d.account == b.account_id and d.region == b.region_name]

    def find(self, ident):
        d = DEPLOYMENTS.get(ident or "")
        b = self.codedeploy_backend
        if d is None or d.account != b.account_id or d.region != b.region_name:
            raise _error("DeploymentDoesNotExistException", f"The deployment {ident} could not be found.")
        return d

    def create_deployment(self):
        with LOCK:
            tick()
            backend = self.codedeploy_backend
            app_name = self._get_param("applicationName")
            group_name = self._get_param("deploymentGroupName")
            app = backend.applications.get(app_name)
            if app is None:
                raise ApplicationDoesNotExistException(f"The application {app_name} does not exist.")
            if app.compute_platform != "ECS":
                raise _error("InvalidApplicationNameException", f"The application {app_name} is not an ECS application.")
            group = backend.deployment_groups.get(app_name, {}).get(group_name)
            if group is None:
                raise DeploymentGroupDoesNotExistException(f"The deployment group {group_name} does not exist.")
            revision = self._get_param("revision") or {}
            if revision.get("revisionType") != "AppSpecContent" or not (revision.get("appSpecContent") or {}).get(
                "content"
            ):
                raise _error("InvalidRevisionException", "An ECS deployment needs an AppSpecContent revision.")
            props = parse_appspec(revision["appSpecContent"]["content"])
            svc_ref = (group.ecs_services or [{}])[0]
            ecs, _, _ = _backends(backend.account_id, backend.region_name)
            try:
                svc = ecs._get_service(svc_ref.get("clusterName"), svc_ref.get("serviceName"))
            except Exception:
                raise _error("InvalidECSServiceException", f"The ECS service {svc_ref.get('serviceName')} does not exist.")
            if (svc.deployment_controller or {}).get("type") != "CODE_DEPLOY":
                raise _error(
                    "InvalidECSServiceException",
                    f"The ECS service {svc.name} does not use the CODE_DEPLOY deployment controller.",
                )
            try:
                td = ecs.describe_task_definition(props["TaskDefinition"])
            except Exception:
                raise _error("InvalidRevisionException", f"The task definition {props['TaskDefinition']} does not exist.")
            if getattr(td, "status", "ACTIVE") != "ACTIVE":
                raise _error("InvalidRevisionException", f"The task definition {td.arn} is not ACTIVE.")
            lb = props["LoadBalancerInfo"]
            container = next((c for c in td.container_definitions if c.get("name") == lb["ContainerName"]), None)
            if container is None:
                raise _error("InvalidRevisionException", f"The container {lb['ContainerName']} is not in {td.arn}.")
            ports = [p.get("containerPort") for p in container.get("portMappings") or []]
            if int(lb["ContainerPort"]) not in ports:
                raise _error(
                    "InvalidRevisionException",
                    f"The container {lb['ContainerName']} does not map port {lb['ContainerPort']}.",
                )
            for d in here(self):
                if d.application_name == app_name and d.group_name == group_name and d.status in ACTIVE:
                    raise _error(
                        "DeploymentLimitExceededException",
                        f"The Deployment Group '{group_name}' already has an active Deployment '{d.id}'",
                    )
            config_name = self._get_param("deploymentConfigName") or str(group.deployment_config_name)
            d = Deployment(
                backend,
                group,
                revision,
                config_name,
                self._get_param("description"),
                "user",
                self._get_param("autoRollbackConfiguration"),
                self._get_param("overrideAlarmConfiguration"),
            )
            done = [x for x in here(self) if x.group is group and x.status == "Succeeded"]
            if done:
                d.previous_revision = max(done, key=lambda x: x.complete_time).revision
            d.fail_at = ARMED.pop((backend.account_id, backend.region_name, app_name, group_name), None)
            DEPLOYMENTS[d.id] = d
            return ActionResult({"deploymentId": d.id})

    def get_deployment(self):
        with LOCK:
            tick()
            return ActionResult({"deploymentInfo": find(self, self._get_param("deploymentId")).info()})

    def batch_get_deployments(self):
        with LOCK:
            tick()
            ids = self._get_param("deploymentIds") or []
            mine = {d.id: d for d in here(self)}
            return ActionResult({"deploymentsInfo": [mine[i].info() for i in ids if i in mine]})

    def list_deployments(self):
        with LOCK:
            tick()
            app_name = self._get_param("applicationName")
            group_name = self._get_param("deploymentGroupName")
            statuses = self._get_param("includeOnlyStatuses") or []
            if app_name and app_name not in self.codedeploy_backend.applications:
                raise ApplicationDoesNotExistException(f"The application {app_name} does not exist.")
            found = [
                d
                for d in here(self)
                if (not app_name or d.application_name == app_name)
                and (not group_name or d.group_name == group_name)
                and (not statuses or d.status in statuses)
            ]
            # Newest first, as AWS answers (undocumented, and relied on by ecspresso).
            found.sort(key=lambda d: d.create_time, reverse=True)
            return ActionResult({"deployments": [d.id for d in found]})

    def stop_deployment(self):
        with LOCK:
            tick()
            d = find(self, self._get_param("deploymentId"))
            if d.status not in ACTIVE:
                raise _error("DeploymentAlreadyCompletedException", f"The deployment {d.id} has already completed.")
            asked = self._get_param("autoRollbackEnabled")
            rollback = d.rolls_back_on("DEPLOYMENT_STOP_ON_REQUEST") if asked is None else bool(asked)
            d.end("Stopped", "MANUAL_STOP", "The deployment was stopped by a user.", rollback=rollback)
            return ActionResult({"status": "Pending", "statusMessage": "Stopping the deployment."})

    def continue_deployment(self):
        with LOCK:
            tick()
            d = find(self, self._get_param("deploymentId"))
            wait = self._get_param("deploymentWaitType") or "READY_WAIT"
            if wait == "TERMINATION_WAIT" and d.status == "InProgress" and d.phase == "TerminationWait":
                d.finish()
                return ActionResult({})
            if d.status not in ACTIVE:
                raise _error("DeploymentAlreadyCompletedException", f"The deployment {d.id} has already completed.")
            raise _error(
                "DeploymentIsNotInReadyStateException",
                f"The deployment {d.id} is not waiting ({wait}).",
            )

    def list_deployment_targets(self):
        with LOCK:
            tick()
            d = find(self, self._get_param("deploymentId"))
            return ActionResult({"targetIds": [d.target_id()]})

    def get_deployment_target(self):
        with LOCK:
            tick()
            d = find(self, self._get_param("deploymentId"))
            if self._get_param("targetId") != d.target_id():
                raise _error("DeploymentTargetDoesNotExistException", f"No target {self._get_param('targetId')}.")
            return ActionResult({"deploymentTarget": d.target()})

    def batch_get_deployment_targets(self):
        with LOCK:
            tick()
            d = find(self, self._get_param("deploymentId"))
            ids = self._get_param("targetIds") or []
            return ActionResult({"deploymentTargets": [d.target() for i in ids if i == d.target_id()]})

    def get_application_revision(self):
        with LOCK:
            app_name = self._get_param("applicationName")
            if app_name not in self.codedeploy_backend.applications:
                raise ApplicationDoesNotExistException(f"The application {app_name} does not exist.")
            wanted = self._get_param("revision") or {}
            content = (wanted.get("appSpecContent") or {}).get("content")
            used = [
                d
                for d in here(self)
                if d.application_name == app_name and (d.revision.get("appSpecContent") or {}).get("content") == content
            ]
            if not used:
                raise _error("RevisionDoesNotExistException", "The revision does not exist for the application.")
            info = {
                "description": used[0].description,
                "deploymentGroups": sorted({d.group_name for d in used}),
                "firstUsedTime": min(d.create_time for d in used),
                "lastUsedTime": max(d.create_time for d in used),
                "registerTime": min(d.create_time for d in used),
            }
            return ActionResult({"applicationName": app_name, "revision": wanted, "revisionInfo": info})

    original_group_info = r._deployment_group_info

    def deployment_group_info(dg):
        info = original_group_info(dg)
        mine = [d for d in DEPLOYMENTS.values() if d.group is dg]

        def summary(d):
            return {
                "deploymentId": d.id,
                "status": d.status,
                "createTime": d.create_time,
                **({"endTime": d.complete_time} if d.complete_time else {}),
            }

        if mine:
            info["lastAttemptedDeployment"] = summary(max(mine, key=lambda d: d.create_time))
            done = [d for d in mine if d.status == "Succeeded"]
            if done:
                best = max(done, key=lambda d: d.complete_time)
                info["lastSuccessfulDeployment"] = summary(best)
                info["targetRevision"] = best.revision
        return info

    r._deployment_group_info = deployment_group_info

    r.CodeDeployResponse.create_deployment = create_deployment
    r.CodeDeployResponse.get_deployment = get_deployment
    r.CodeDeployResponse.batch_get_deployments = batch_get_deployments
    r.CodeDeployResponse.list_deployments = list_deployments
    r.CodeDeployResponse.stop_deployment = stop_deployment
    r.CodeDeployResponse.continue_deployment = continue_deployment
    r.CodeDeployResponse.list_deployment_targets = list_deployment_targets
    r.CodeDeployResponse.get_deployment_target = get_deployment_target
    r.CodeDeployResponse.batch_get_deployment_targets = batch_get_deployment_targets
    r.CodeDeployResponse.get_application_revision = get_application_revision
