"""CodeDeploy as AWS answers it, where moto 5.2.5 stops short (see ../shared/codedeploy-facts.md).

moto stores applications and deployment groups but returns HTTP 500 for BatchGetDeploymentGroups,
UpdateDeploymentGroup, DeleteDeploymentGroup and DeleteApplication, and always answers an empty
alarmConfiguration. This module adds those operations to moto's CodeDeploy backend and responses,
the way the AWS API reference describes them. It is the start of the emulator's CodeDeploy: the
ECS blue/green deployment engine is codedeploy_engine.py.
"""

from typing import Any


def _alarm_configuration(dg) -> dict[str, Any]:
    config = dg.alarm_configuration
    if isinstance(config, dict):
        return {
            "enabled": bool(config.get("enabled", False)),
            "ignorePollAlarmFailure": bool(config.get("ignorePollAlarmFailure", False)),
            "alarms": list(config.get("alarms", [])),
        }
    return {"enabled": False, "ignorePollAlarmFailure": False, "alarms": []}


def apply():
    from moto.codedeploy import responses as r
    from moto.codedeploy.exceptions import (
        ApplicationDoesNotExistException,
        DeploymentGroupDoesNotExistException,
    )
    from moto.codedeploy.models import CodeDeployBackend
    from moto.core.responses import ActionResult

    original_info = r._deployment_group_info

    def deployment_group_info(dg):
        info = original_info(dg)
        info["alarmConfiguration"] = _alarm_configuration(dg)
        return info

    r._deployment_group_info = deployment_group_info

    def _group(self, application_name, name):
        if application_name not in self.applications:
            raise ApplicationDoesNotExistException(
                f"The application {application_name} does not exist with the user or AWS account."
            )
        group = self.deployment_groups.get(application_name, {}).get(name)
        if group is None:
            raise DeploymentGroupDoesNotExistException(f"The deployment group {name} does not exist.")
        return group

    def update_deployment_group(self, application_name, current_name, changes):
        group = _group(self, application_name, current_name)
        fields = {
            "deploymentConfigName": "deployment_config_name",
            "serviceRoleArn": "service_role_arn",
            "alarmConfiguration": "alarm_configuration",
            "autoRollbackConfiguration": "auto_rollback_configuration",
            "deploymentStyle": "deployment_style",
            "blueGreenDeploymentConfiguration": "blue_green_deployment_configuration",
            "loadBalancerInfo": "load_balancer_info",
            "ecsServices": "ecs_services",
            "triggerConfigurations": "trigger_configurations",
            "outdatedInstancesStrategy": "outdated_instances_strategy",
        }
        for key, attr in fields.items():
            if changes.get(key) is not None:
                setattr(group, attr, changes[key])
        new_name = changes.get("newDeploymentGroupName")
        if new_name and new_name != current_name:
            groups = self.deployment_groups[application_name]
            groups[new_name] = groups.pop(current_name)
            group.deployment_group_name = new_name
        return []

    def delete_deployment_group(self, application_name, name):
        if application_name in self.applications:
            groups = self.deployment_groups.get(application_name, {})
            if name in groups:
                del groups[name]
                self.tagger.delete_all_tags_for_resource(self._deployment_group_arn(application_name, name))
        # AWS answers success for a group that is already gone.
        return []

    def delete_application(self, application_name):
        if application_name in self.applications:
            for name in list(self.deployment_groups.get(application_name, {})):
                delete_deployment_group(self, application_name, name)
            self.deployment_groups.pop(application_name, None)
            del self.applications[application_name]
            self.tagger.delete_all_tags_for_resource(self._application_arn(application_name))

    CodeDeployBackend.update_deployment_group = update_deployment_group
    CodeDeployBackend.delete_deployment_group = delete_deployment_group
    CodeDeployBackend.delete_application = delete_application

    def batch_get_deployment_groups(self):
        application_name = self._get_param("applicationName")
        names = self._get_param("deploymentGroupNames") or []
        backend = self.codedeploy_backend
        if application_name not in backend.applications:
            raise ApplicationDoesNotExistException(
                f"The application {application_name} does not exist with the user or AWS account."
            )
        groups = backend.deployment_groups.get(application_name, {})
        infos = [r._deployment_group_info(groups[n]) for n in names if n in groups]
        missing = [n for n in names if n not in groups]
        result = {"deploymentGroupsInfo": infos}
        if missing:
            result["errorMessage"] = f"Deployment groups not found: {', '.join(missing)}"
        return ActionResult(result)

    def update_deployment_group_response(self):
        changes = {}
        for key in [
            "newDeploymentGroupName",
            "deploymentConfigName",
            "serviceRoleArn",
            "alarmConfiguration",
            "autoRollbackConfiguration",
            "deploymentStyle",
            "blueGreenDeploymentConfiguration",
            "loadBalancerInfo",
            "ecsServices",
            "triggerConfigurations",
            "outdatedInstancesStrategy",
        ]:
            value = self._get_param(key)
            if value is not None:
                changes[key] = value
        hooks = self.codedeploy_backend.update_deployment_group(
            self._get_param("applicationName"), self._get_param("currentDeploymentGroupName"), changes
        )
        return ActionResult({"hooksNotCleanedUp": hooks})

    def delete_deployment_group_response(self):
        hooks = self.codedeploy_backend.delete_deployment_group(
            self._get_param("applicationName"), self._get_param("deploymentGroupName")
        )
        return ActionResult({"hooksNotCleanedUp": hooks})

    def delete_application_response(self):
        self.codedeploy_backend.delete_application(self._get_param("applicationName"))
        return ActionResult({})

    _deployment_configs(r, CodeDeployBackend, ActionResult)

    r.CodeDeployResponse.batch_get_deployment_groups = batch_get_deployment_groups
    r.CodeDeployResponse.update_deployment_group = update_deployment_group_response
    r.CodeDeployResponse.delete_deployment_group = delete_deployment_group_response
    r.CodeDeployResponse.delete_application = delete_application_response

    import codedeploy_engine

    codedeploy_engine.apply()


# The predefined ECS configurations: (type, percent, interval in minutes).
PREDEFINED_ECS = {
    "CodeDeployDefault.ECSAllAtOnce": ("AllAtOnce", None, None),
    "CodeDeployDefault.ECSCanary10Percent5Minutes": ("TimeBasedCanary", 10, 5),
    "CodeDeployDefault.ECSCanary10Percent15Minutes": ("TimeBasedCanary", 10, 15),
    "CodeDeployDefault.ECSLinear10PercentEvery1Minutes": ("TimeBasedLinear", 10, 1),
    "CodeDeployDefault.ECSLinear10PercentEvery3Minutes": ("TimeBasedLinear", 10, 3),
}


def _routing(kind, percent, minutes):
    if kind == "TimeBasedCanary":
        return {"type": kind, "timeBasedCanary": {"canaryPercentage": percent, "canaryInterval": minutes}}
    if kind == "TimeBasedLinear":
        return {"type": kind, "timeBasedLinear": {"linearPercentage": percent, "linearInterval": minutes}}
    return {"type": "AllAtOnce"}


def configs(backend):
    """The region's deployment configurations: the predefined ECS ones, then those created."""
    import datetime

    if not hasattr(backend, "deployment_configs"):
        backend.deployment_configs = {
            name: {
                "deploymentConfigId": name,
                "deploymentConfigName": name,
                "computePlatform": "ECS",
                "trafficRoutingConfig": _routing(*spec),
                "createTime": datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc),
            }
            for name, spec in PREDEFINED_ECS.items()
        }
    return backend.deployment_configs



def _deployment_configs(r, CodeDeployBackend, ActionResult):
    """Get/List/Create/DeleteDeploymentConfig, which moto 5.2.5 lacks: the predefined ECS
    configurations are there from the start and cannot be deleted; a custom one is ECS with
    time-based canary or linear routing; one a deployment group uses cannot be deleted."""
    import datetime

    from moto.codedeploy.exceptions import CodeDeployException

    class DeploymentConfigDoesNotExistException(CodeDeployException):
        def __init__(self, message):
            super().__init__("DeploymentConfigDoesNotExistException", message)

    class DeploymentConfigAlreadyExistsException(CodeDeployException):
        def __init__(self, message):
            super().__init__("DeploymentConfigAlreadyExistsException", message)

    class DeploymentConfigInUseException(CodeDeployException):
        def __init__(self, message):
            super().__init__("DeploymentConfigInUseException", message)

    class InvalidOperationException(CodeDeployException):
        def __init__(self, message):
            super().__init__("InvalidOperationException", message)

    class InvalidTrafficRoutingConfigurationException(CodeDeployException):
        def __init__(self, message):
            super().__init__("InvalidTrafficRoutingConfigurationException", message)

    def get_deployment_config(self):
        name = self._get_param("deploymentConfigName")
        config = configs(self.codedeploy_backend).get(name)
        if config is None:
            raise DeploymentConfigDoesNotExistException(f"The deployment configuration {name} does not exist.")
        return ActionResult({"deploymentConfigInfo": config})

    def list_deployment_configs(self):
        return ActionResult({"deploymentConfigsList": sorted(configs(self.codedeploy_backend))})

    def create_deployment_config(self):
        import uuid

        name = self._get_param("deploymentConfigName")
        platform = self._get_param("computePlatform") or "Server"
        routing = self._get_param("trafficRoutingConfig") or {"type": "AllAtOnce"}
        existing = configs(self.codedeploy_backend)
        if name in existing:
            raise DeploymentConfigAlreadyExistsException(f"A deployment configuration named {name} already exists.")
        if platform == "ECS":
            kind = routing.get("type")
            part = {"TimeBasedCanary": "timeBasedCanary", "TimeBasedLinear": "timeBasedLinear"}.get(kind)
            if kind != "AllAtOnce" and (part is None or part not in routing):
                raise InvalidTrafficRoutingConfigurationException("The traffic routing configuration is invalid.")
        existing[name] = {
            "deploymentConfigId": str(uuid.uuid4()),
            "deploymentConfigName": name,
            "computePlatform": platform,
            "trafficRoutingConfig": routing,
            "createTime": datetime.datetime.now(datetime.timezone.utc),
        }
        return ActionResult({"deploymentConfigId": existing[name]["deploymentConfigId"]})

    def delete_deployment_config(self):
        name = self._get_param("deploymentConfigName")
        backend = self.codedeploy_backend
        if name.startswith("CodeDeployDefault."):
            raise InvalidOperationException("A predefined deployment configuration cannot be deleted.")
        for groups in backend.deployment_groups.values():
            if any(str(g.deployment_config_name) == name for g in groups.values()):
                raise DeploymentConfigInUseException(f"The deployment configuration {name} is in use.")
        # AWS answers success for one that is already gone.
        configs(backend).pop(name, None)
        return ActionResult({})

    r.CodeDeployResponse.get_deployment_config = get_deployment_config
    r.CodeDeployResponse.list_deployment_configs = list_deployment_configs
    r.CodeDeployResponse.create_deployment_config = create_deployment_config
    r.CodeDeployResponse.delete_deployment_config = delete_deployment_config
