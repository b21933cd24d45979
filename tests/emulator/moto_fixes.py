"""Where moto 5.2.5 differs from AWS in ways the deployer's tests meet (it refuses what AWS allows,
or allows what AWS refuses): each fix makes moto follow AWS's documented behaviour. Applied by deployer_emulator.py at start-up.

ECR PutReplicationConfiguration
    moto refuses more than one rule ("This feature is disabled"). AWS allows up to 10 rules per
    registry, each with up to 25 destinations and 100 repository filters
    (https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_ReplicationConfiguration.html),
    and refuses a destination that is the source registry itself. The deployer keeps rules that
    belong to others when it writes its own, so its tests need a registry with several rules.

RDS cross-region read replicas (CreateDBInstanceReadReplica in another region than the source)
    moto copies the source instance and then sets the request's fields on the copy while it
    still belongs to the source's region, so `DBSubnetGroupName` is looked up there; AWS looks
    it up in the replica's own region. moto also replicates a source whose master password RDS
    manages in Secrets Manager (the copy shares its secret); AWS refuses that for every engine
    but SQL Server (RDS user guide, "Limitations for Secrets Manager integration with Amazon
    RDS"), with 400 InvalidParameterValue "Creating read replicas for source instance with
    engine postgres where ManageMasterUserPassword is enabled is not supported." A replica of a
    source with its own password gets no secret, and the source's password. The copy keeps the source's parameter group too; AWS gives a
    cross-region replica "the default DBParameterGroup for the specified DB engine" unless the
    request names one. And moto accepts an encrypted source without `KmsKeyId`; AWS
    requires a key of the destination region ("If you create an encrypted read replica in a
    different AWS Region, then you must specify a KMS key identifier for the destination AWS
    Region", API reference of CreateDBInstanceReadReplica). `PreSignedUrl` is not checked: AWS
    needs it only in GovCloud and China regions.

RDS DeleteDBInstance of a cross-region replica
    moto records a cross-region replica on its source by ARN and removes it by identifier:
    HTTP 500. AWS deletes it.

RDS ModifyDBSubnetGroup
    moto removes the group from its table and assigns a read-only property: HTTP 500, and the
    group is gone. AWS replaces the group's subnets (and description) in place.

RDS PerformanceInsightsEnabled
    moto takes `EnablePerformanceInsights` but never reports it; AWS reports it in
    DescribeDBInstances.

RDS ManageMasterUserPassword
    moto stores the same password ("P@55w0rd!", user "admin") in every managed secret; AWS
    generates a random password for the instance's own master username. And a ModifyDBInstance
    with ManageMasterUserPassword=true of an instance whose password RDS already manages makes
    moto create a second secret (the first is left behind, unowned); on AWS the instance keeps
    its one secret (a retried request changes nothing).

RDS master passwords (ModifyDBInstance; rds_credentials / rds_login)
    AWS (API reference of ModifyDBInstance): ManageMasterUserPassword=false on a managed instance
    needs MasterUserPassword, and RDS deletes the secret and uses that password (moto: already);
    MasterUserPassword is refused with ManageMasterUserPassword=true or while management is on;
    a read replica's password cannot be changed (it is its source's, physical replication). A
    primary's new password is its replicas' (also cross-region). rds_login says whether an
    instance accepts credentials now (POST /_deployer/rds/login): a replica its source's current
    password, a promoted replica the one it had when promoted, a managed one its secret's.

Secrets Manager multi-Region secrets (_patch_secretsmanager_replication)
    moto 5.2.5 replicates (CreateSecret AddReplicaRegions, ReplicateSecretToRegions,
    RemoveRegionsFromReplication), keeps replicas in step and read-only, but reports the default
    KMS key for every replica, does not implement StopReplicationToReplica, lets
    UpdateSecretVersionStage on a replica change the primary, refuses GetResourcePolicy on a
    replica, and answers the SecretId as sent where AWS answers the ARN (also in DeleteSecret's
    "still has replica regions" refusal). Each is fixed as the Secrets Manager user guide and API
    reference say; see the function's docstring.

RDS PromoteReadReplica
    moto only clears its `is_replica` flag: the promoted instance keeps
    `ReadReplicaSourceDBInstanceIdentifier`, the source keeps listing it in
    `ReadReplicaDBInstanceIdentifiers` (in the source's own region for a cross-region replica),
    an instance that is not a replica is "promoted" without complaint, and an unknown identifier
    is an HTTP 500. AWS: a promoted instance has no source, its source no longer lists it, and
    promoting an instance that is not a read replica (already promoted, or a primary) or that is
    not available (`backing-up`, still `creating`) answers InvalidDBInstanceState
    (API reference of PromoteReadReplica); an unknown identifier is DBInstanceNotFound.

SNS subscriptions that need confirming
    moto confirms every subscription at once. AWS confirms an email, email-json, http or https
    subscription only when its owner answers the confirmation message: until then it is
    listed with the SubscriptionArn `PendingConfirmation`, GetSubscriptionAttributes says
    `PendingConfirmation: true`, and Subscribe answers "pending confirmation" unless
    `ReturnSubscriptionArn` is true. POST /_deployer/sns/confirm {"endpoint": ...} confirms one,
    as its owner clicking the link would.
CloudWatch Logs AssociateKmsKey / DisassociateKmsKey
    moto does not implement them (the request fails). AWS sets or removes the KMS key of an
    existing log group, and DescribeLogGroups reports `kmsKeyId` from then on.

RDS parameter group of an existing instance
    moto reports every instance's parameter group `in-sync`. AWS applies a parameter group
    newly associated with an instance (ModifyDBInstance DBParameterGroupName) only at its next
    reboot: until RebootDBInstance the group's ParameterApplyStatus is `pending-reboot`.
ECR PutImageScanningConfiguration without scanOnPush
    The AWS SDKs leave a `false` scanOnPush out of the request (it is the member's default);
    moto then keeps the repository's old setting. AWS reads the missing member as false.
EventBridge Scheduler CreateScheduleGroup of an existing name
    moto replaces the group (its schedules and tags are lost). AWS answers ConflictException.
ECS services run their desired tasks
    moto leaves a new service's runningCount at 0 (MOTO_ECS_SERVICE_RUNNING) forever. AWS runs
    the desired number of tasks: CreateService starts them (at once; the AWS model delays them),
    a deleted service runs none.
Application Auto Scaling target tracking policies and their CloudWatch alarms
    moto leaves a policy's two alarms behind when the policy is put again (it makes two more),
    and DeregisterScalableTarget keeps the target's policies (and their alarms). AWS replaces a
    policy's alarms when it is put again, deletes them with the policy, and deregistering a
    target deletes its policies and scheduled actions.
Route 53 CreateHealthCheck by CallerReference
    moto creates a new check for every request. AWS (API reference, CreateHealthCheck): the same
    CallerReference and settings as an existing check answer that check (201, same Id); the
    same CallerReference with other settings, or that of a deleted check, answer 409
    HealthCheckAlreadyExists.
Resource Groups Tagging API GetResources (_patch_tagging_*)
    AWS: "The GetResources, GetTagKeys, and GetTagValues operations support all resource types"
    but IAM users and roles
    (https://docs.aws.amazon.com/resourcegroupstagging/latest/APIReference/supported-services.html).
    moto answers from each backend's iter_tagged_resources() and leaves out RDS DB subnet and
    parameter groups (and cluster parameter and option groups), ECR repositories, EventBridge
    Scheduler schedule groups, EventBridge rules and ELBv2 listeners: each is listed now with
    the ARN and tags its own service answers. Deleted ECS services and clusters (moto keeps them
    INACTIVE) are no longer listed; a deleted log group, alarm or schedule group no longer leaves
    its tags behind for the next one of that name; log groups' resource type is `logs:log-group`.
    Pages hold resources whose tags add up to at most TagsPerPage (moto: one fewer, and it did
    not count the first resource of a continued page), a resource without tags counting as one.
"""

MAX_REPLICATION_RULES = 10
MAX_DESTINATIONS_PER_RULE = 25


def _patch_ecr_replication_rules():
    from moto.ecr.exceptions import InvalidParameterException
    from moto.ecr.models import ECRBackend

    def put_replication_configuration(self, replication_config):
        rules = replication_config.get("rules", [])
        if len(rules) > MAX_REPLICATION_RULES:
            raise InvalidParameterException(
                "Invalid parameter at 'replicationConfiguration' failed to satisfy constraint: "
                f"'Member must have length less than or equal to {MAX_REPLICATION_RULES}'"
            )
        for rule in rules:
            destinations = rule.get("destinations", [])
            if not destinations or len(destinations) > MAX_DESTINATIONS_PER_RULE:
                raise InvalidParameterException(
                    "Invalid parameter at 'replicationConfiguration' failed to satisfy constraint: "
                    f"'each rule has 1 to {MAX_DESTINATIONS_PER_RULE} destinations'"
                )
            for dest in destinations:
                if dest["region"] == self.region_name and dest["registryId"] == self.account_id:
                    raise InvalidParameterException(
                        "Invalid parameter at 'replicationConfiguration' failed to satisfy constraint: "
                        "'Replication destination cannot be the same as the source registry'"
                    )
        self.replication_config = replication_config
        return {"replicationConfiguration": replication_config}

    ECRBackend.put_replication_configuration = put_replication_configuration


def _manages_master_password(db):
    """Whether RDS manages the instance's master password in Secrets Manager."""
    return "master_user_secret" in db.__dict__


def _patch_rds_cross_region_replicas():
    from moto.rds.exceptions import InvalidParameterCombination, InvalidParameterValue
    from moto.rds.models import DBInstance, RDSBackend

    original = RDSBackend.create_db_instance_read_replica

    def create_db_instance_read_replica(self, db_kwargs):
        source = self.find_db_from_id(db_kwargs["source_db_instance_identifier"])
        engine = source.engine or ""
        if _manages_master_password(source) and not engine.startswith("sqlserver"):
            # RDS user guide, "Limitations for Secrets Manager integration with Amazon RDS"
            # (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/rds-secrets-manager.html
            # #rds-secrets-manager-limitations): "Creating a read replica when the source DB ...
            # manages credentials with Secrets Manager" is not supported, for every engine but
            # RDS for SQL Server. AWS answers 400 InvalidParameterValue with this message (quoted
            # in terraform-aws-modules/terraform-aws-rds issues 512 and 532).
            raise InvalidParameterValue(
                f"Creating read replicas for source instance with engine {engine} where "
                "ManageMasterUserPassword is enabled is not supported."
            )
        cross_region = source.region != self.region_name
        if cross_region and source.storage_encrypted and not db_kwargs.get("kms_key_id"):
            raise InvalidParameterCombination(
                "KmsKeyId is required for an encrypted read replica in another region than its "
                "source: name a KMS key of the replica's region"
            )
        # Set after the copy has moved to this region (its setter looks the group up there).
        subnet_group = db_kwargs.pop("db_subnet_group_name", None)
        parameter_group = db_kwargs.get("db_parameter_group_name")
        replica = original(self, db_kwargs)
        if cross_region and parameter_group is None:
            replica.db_parameter_group_name = None  # the engine's default group of this region
        if subnet_group is not None:
            replica.db_subnet_group_name = subnet_group
        # The copy shares the source's lists; a replica's tags are its own.
        replica.tags = list(replica.tags or [])
        if _manages_master_password(replica):
            # Only an RDS for SQL Server source gets here: its secret stays the source's.
            replica.__dict__.pop("master_user_secret", None)
            replica.manage_master_user_password = False
        return replica

    def remove_replica(self, replica):
        for key in (replica.db_instance_identifier, replica.db_instance_arn):
            if key in self.replicas:
                self.replicas.remove(key)
                return

    RDSBackend.create_db_instance_read_replica = create_db_instance_read_replica
    DBInstance.remove_replica = remove_replica


def _patch_rds_modify_db_subnet_group():
    from moto.rds.exceptions import DBSubnetGroupNotFoundError
    from moto.rds.models import RDSBackend

    def modify_db_subnet_group(self, subnet_name, description, subnets):
        group = self.subnet_groups.get(subnet_name)
        if group is None:
            raise DBSubnetGroupNotFoundError(subnet_name)
        group._subnets = subnets
        if description is not None:
            group.description = description
        return group

    RDSBackend.modify_db_subnet_group = modify_db_subnet_group


def _patch_rds_performance_insights():
    from moto.rds.models import DBInstance

    original_init = DBInstance.__init__

    def __init__(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        self.enable_performance_insights = bool(kwargs.get("enable_performance_insights") or False)

    DBInstance.__init__ = __init__
    # ModifyDBInstance sets `enable_performance_insights` by name; describe reads this.
    DBInstance.performance_insights_enabled = property(
        lambda self: bool(getattr(self, "enable_performance_insights", False))
    )


def _patch_rds_master_user_secret():
    import json
    import secrets
    import string

    from moto.rds.models import MasterUserSecret

    alphabet = string.ascii_letters + string.digits + "!#$%&()*+,-.:;<=>?[]^_{|}~"

    def _generate_secret_string(self):
        password = "".join(secrets.choice(alphabet) for _ in range(32))
        username = getattr(self.resource, "master_username", None) or "admin"
        return json.dumps({"username": username, "password": password})

    MasterUserSecret._generate_secret_string = _generate_secret_string


def _patch_rds_manage_master_user_password_once():
    from moto.rds.models import DBInstance

    original_update = DBInstance.update

    def update(self, manage_master_user_password=None, **kwargs):
        if manage_master_user_password is True and "master_user_secret" in self.__dict__:
            manage_master_user_password = None  # it has its secret: nothing to create
        return original_update(self, manage_master_user_password=manage_master_user_password, **kwargs)

    DBInstance.update = update


def _patch_rds_promote_read_replica():
    from moto.rds.exceptions import DBInstanceNotFoundError, RDSClientError
    from moto.rds.models import RDSBackend

    def promote_read_replica(self, db_kwargs):
        identifier = db_kwargs["db_instance_identifier"]
        database = self.describe_db_instances(identifier)[0]  # DBInstanceNotFound if unknown
        if not database.is_replica:
            raise RDSClientError(
                "InvalidDBInstanceState", f"DB Instance {identifier} is not a read replica."
            )
        if database.status != "available":
            raise RDSClientError(
                "InvalidDBInstanceState",
                f"DB Instance {identifier} is {database.status}: it can be promoted only when available.",
            )
        source_id = database.source_db_instance_identifier
        try:
            source = self.find_db_from_id(source_id) if source_id else None
        except DBInstanceNotFoundError:
            source = None  # the source is gone (its region lost): the promotion still works
        # The promoted instance keeps the password it had as a replica: its source's, now.
        _, password = rds_credentials(database)
        if source is not None:
            source.remove_replica(database)
        database.__dict__["_master_user_password"] = password
        database.is_replica = False
        database.source_db_instance_identifier = None
        settings = {k: v for k, v in db_kwargs.items() if k != "db_instance_identifier" and v is not None}
        database.update(**settings)
        return database

    RDSBackend.promote_read_replica = promote_read_replica


def _rds_source(db):
    """The instance a read replica replicates, or None (not a replica, or its source is gone)."""
    from moto.rds.exceptions import DBInstanceNotFoundError

    source_id = getattr(db, "source_db_instance_identifier", None)
    if not getattr(db, "is_replica", False) or not source_id:
        return None
    try:
        return db.backend.find_db_from_id(source_id)  # an ARN for a cross-region source
    except DBInstanceNotFoundError:
        return None


def rds_credentials(db, _depth=0):
    """(master username, password) the instance accepts now. A managed-secret instance: the
    value in its secret. A read replica: its source's (physical replication: a replica has no
    password of its own), or the last one it had if its source is gone. Otherwise the password
    it was created or last modified with."""
    import json

    source = _rds_source(db)
    if source is not None and _depth < 10:
        return rds_credentials(source, _depth + 1)
    if _manages_master_password(db):
        secret = db.master_user_secret
        value = json.loads(secret.secretsmanager.get_secret_value(secret.secret_arn, None, None)["SecretString"])
        return value.get("username", db.master_username), value.get("password")
    return db.master_username, db.__dict__.get("_master_user_password")


def rds_login(region, identifier, username, password, account_id=None):
    """Whether the instance `identifier` of `region` accepts those credentials now.
    Raises LookupError for an unknown instance."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.rds.models import rds_backends

    backend = rds_backends[account_id or DEFAULT_ACCOUNT_ID][region]
    db = backend.databases.get(identifier)
    if db is None:
        raise LookupError(f"no DB instance {identifier} in {region}")
    expected_user, expected_password = rds_credentials(db)
    return bool(expected_password) and username == expected_user and password == expected_password


def _patch_rds_master_passwords():
    """ModifyDBInstance and the master password, as the API reference of ModifyDBInstance
    (https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_ModifyDBInstance.html)
    documents ManageMasterUserPassword and MasterUserPassword:
    - turning management off on an instance whose password RDS manages needs MasterUserPassword;
      "Amazon RDS deletes the secret and uses the new password" (moto deletes it already);
    - ManageMasterUserPassword=true and MasterUserPassword together are refused ("Can't manage
      the master user password with AWS Secrets Manager if MasterUserPassword is specified"),
      and so is MasterUserPassword alone while management is on ("Can't be specified if
      ManageMasterUserPassword is turned on");
    - a read replica's password cannot be changed: AWS answers InvalidParameterCombination
      "Cannot change master user password on an RDS postgres Read Replica because it uses
      physical replication and therefore cannot differ from its parent" (quoted in
      terraform-aws-modules/terraform-aws-rds issue 526). A new password of a primary is its
      replicas' too (rds_credentials follows the source; the replicas' copy is kept in step for
      when the source is gone).
    The error code of the first three is not documented: InvalidParameterCombination, as RDS
    answers other combinations it refuses."""
    from moto.rds.exceptions import InvalidParameterCombination
    from moto.rds.models import RDSBackend

    original = RDSBackend.modify_db_instance

    def modify_db_instance(self, db_instance_identifier, db_kwargs):
        database = self.describe_db_instances(db_instance_identifier)[0]  # DBInstanceNotFound
        manage = db_kwargs.get("manage_master_user_password")
        password = db_kwargs.get("master_user_password")
        if password is not None and manage is True:
            raise InvalidParameterCombination(
                "You can't specify MasterUserPassword and ManageMasterUserPassword together."
            )
        if manage is False and _manages_master_password(database) and password is None:
            raise InvalidParameterCombination(
                "You must specify MasterUserPassword when you turn off ManageMasterUserPassword."
            )
        if password is not None and manage is None and _manages_master_password(database):
            raise InvalidParameterCombination(
                "You can't specify MasterUserPassword while ManageMasterUserPassword is turned on."
            )
        if password is not None and getattr(database, "is_replica", False):
            raise InvalidParameterCombination(
                f"Cannot change master user password on an RDS {database.engine} Read Replica because "
                "it uses physical replication and therefore cannot differ from its parent."
            )
        result = original(self, db_instance_identifier, db_kwargs)
        if password is not None:
            _set_replica_passwords(result, password)
        return result

    RDSBackend.modify_db_instance = modify_db_instance


def _set_replica_passwords(db, password, _depth=0):
    from moto.rds.exceptions import DBInstanceNotFoundError

    if _depth > 10:
        return
    for key in list(getattr(db, "replicas", None) or []):
        try:
            replica = db.backend.find_db_from_id(key)
        except DBInstanceNotFoundError:
            continue
        replica.__dict__["_master_user_password"] = password
        _set_replica_passwords(replica, password, _depth + 1)


def _patch_secretsmanager_replication():
    """Secrets Manager multi-Region secrets, where moto 5.2.5 differs from AWS. The rules, from
    the user guide "Replicate AWS Secrets Manager secrets across Regions"
    (https://docs.aws.amazon.com/secretsmanager/latest/userguide/replicate-secrets.html), "Promote
    a replica secret to a standalone secret"
    (https://docs.aws.amazon.com/secretsmanager/latest/userguide/standalone-secret.html) and the
    API reference:
    - a replica has the primary's ARN with the Region changed, its name, value, tags and
      resource policy (moto: already; a replica's value, tags and policy are read through to the
      primary, so they follow its changes);
    - each replica Region has its own KMS key (ReplicaRegionType.KmsKeyId, API reference of
      ReplicateSecretToRegions); moto reported the default key for every replica: kept now, and
      reported in ReplicationStatus and by DescribeSecret in that Region;
    - a replica "can't be updated independently from its primary secret": AWS answers
      InvalidParameterException "Operation not permitted on a replica secret. Call must be made in
      primary secret's region." (moto: already, for most writes; UpdateSecretVersionStage on a
      replica changed the primary's versions: refused now). GetResourcePolicy is a read: AWS
      replicates the policy, moto refused it: it answers now;
    - StopReplicationToReplica, "called from the replica Region", "promotes the replica to a
      standalone primary secret in the replica Region" (API reference of
      StopReplicationToReplica; moto: not implemented). Its ARN stays the replica's, its value
      and tags are its own from then on, and the primary no longer lists that Region;
    - "You can't delete a primary secret if it is replicated to other Regions. First delete the
      replicas" (user guide, "Delete an AWS Secrets Manager secret"); moto refuses it but its
      message names the SecretId as sent; AWS names the ARN: "You can't delete secret <arn> that
      still has replica regions [us-east-2, us-west-2]." (quoted in gruntwork-io/cloud-nuke
      issue 435);
    - ReplicateSecretToRegions and RemoveRegionsFromReplication answer the secret's ARN (moto:
      the SecretId as sent);
    - DescribeSecret of a replica shows PrimaryRegion and no ReplicationStatus of its own."""
    import copy

    from moto.secretsmanager.exceptions import (
        InvalidParameterException,
        InvalidRequestException,
        OperationNotPermittedOnReplica,
        SecretNotFoundException,
    )
    from moto.secretsmanager.models import (
        FakeSecret,
        ReplicaSecret,
        SecretsManagerBackend,
        secretsmanager_backends,
    )
    from moto.secretsmanager.responses import SecretsManagerResponse

    default_key = SecretsManagerBackend.DEFAULT_KMS_KEY_ALIAS

    def _named(backend, name):
        return next((s for s in dict.values(backend.secrets) if s.name == name), None)

    def create_replicas(self, replica_regions, force_overwrite):
        for config in replica_regions or []:
            if config["Region"] == self.region:
                raise InvalidParameterException("Invalid replica region.")
        replicas = []
        for config in replica_regions or []:
            region = config["Region"]
            backend = secretsmanager_backends[self.account_id][region]
            existing = _named(backend, self.name)
            if existing is not None and not force_overwrite:
                replica = ReplicaSecret(
                    self, region, "Failed",
                    f"Replication failed: Secret name {self.name} already exists in region {region}.",
                )
            else:
                if existing is not None:
                    dict.pop(backend.secrets, next(k for k, v in dict.items(backend.secrets) if v is existing))
                replica = ReplicaSecret(self, region)
                backend.secrets[replica.arn] = replica
            replica.kms_key_id = config.get("KmsKeyId") or default_key
            replica.config["KmsKeyId"] = replica.kms_key_id
            replicas.append(replica)
        return replicas

    FakeSecret.create_replicas = create_replicas

    def replica_to_dict(self):
        dct = self.source.to_dict()
        dct["ARN"] = self.arn
        dct["PrimaryRegion"] = self.source.region
        dct.pop("ReplicationStatus", None)
        dct.pop("KmsKeyId", None)
        kms_key_id = getattr(self, "kms_key_id", default_key)
        if kms_key_id != default_key:
            dct["KmsKeyId"] = kms_key_id
        return dct

    ReplicaSecret.to_dict = replica_to_dict

    def stop_replication_to_replica(self, secret_id):
        if not self._is_valid_identifier(secret_id):
            raise SecretNotFoundException()
        replica = self.secrets[secret_id]
        if not isinstance(replica, ReplicaSecret):
            raise InvalidRequestException(
                "StopReplicationToReplica is called in the Region of a replica secret: "
                f"{replica.arn} is not a replica."
            )
        source = replica.source
        standalone = copy.copy(source)
        standalone.arn = replica.arn
        standalone.region = self.region_name
        standalone.versions = copy.deepcopy(source.versions)
        standalone.tags = copy.deepcopy(source.tags)
        standalone.kms_key_id = getattr(replica, "kms_key_id", default_key)
        standalone.replicas = []
        standalone.deleted_date = None
        dict.pop(self.secrets, replica.arn)
        self.secrets[standalone.name] = standalone
        source.replicas = [r for r in source.replicas if r is not replica]
        return standalone.arn

    SecretsManagerBackend.stop_replication_to_replica = stop_replication_to_replica

    def stop_replication_to_replica_response(self):
        import json

        return json.dumps({"ARN": self.backend.stop_replication_to_replica(self._get_param("SecretId"))})

    SecretsManagerResponse.stop_replication_to_replica = stop_replication_to_replica_response

    original_update_stage = SecretsManagerBackend.update_secret_version_stage

    def update_secret_version_stage(self, secret_id, *args, **kwargs):
        if secret_id in self.secrets and isinstance(self.secrets[secret_id], ReplicaSecret):
            raise OperationNotPermittedOnReplica
        return original_update_stage(self, secret_id, *args, **kwargs)

    SecretsManagerBackend.update_secret_version_stage = update_secret_version_stage

    original_get_policy = SecretsManagerBackend.get_resource_policy

    def get_resource_policy(self, secret_id):
        import json

        secret = self.secrets.get(secret_id) if self._is_valid_identifier(secret_id) else None
        if isinstance(secret, ReplicaSecret):
            answer = {"ARN": secret.arn, "Name": secret.name}
            if secret.source.policy is not None:
                answer["ResourcePolicy"] = secret.source.policy
            return json.dumps(answer)
        return original_get_policy(self, secret_id)

    SecretsManagerBackend.get_resource_policy = get_resource_policy

    original_delete = SecretsManagerBackend.delete_secret

    def delete_secret(self, secret_id, recovery_window_in_days, force_delete_without_recovery):
        secret = self.secrets.get(secret_id) if self._is_valid_identifier(secret_id) else None
        if isinstance(secret, FakeSecret) and secret.replicas:
            regions = ", ".join(r.region for r in secret.replicas)
            raise InvalidParameterException(
                f"You can't delete secret {secret.arn} that still has replica regions [{regions}]."
            )
        return original_delete(self, secret_id, recovery_window_in_days, force_delete_without_recovery)

    SecretsManagerBackend.delete_secret = delete_secret

    def answering_arn(original):
        def wrapper(self, secret_id, *args, **kwargs):
            _, statuses = original(self, secret_id, *args, **kwargs)
            return self.describe_secret(secret_id).arn, statuses

        return wrapper

    SecretsManagerBackend.replicate_secret_to_regions = answering_arn(SecretsManagerBackend.replicate_secret_to_regions)
    SecretsManagerBackend.remove_regions_from_replication = answering_arn(
        SecretsManagerBackend.remove_regions_from_replication
    )


def _patch_ecs_services():
    """Three ways moto's ECS differs from AWS for a service:
    - CreateService drops healthCheckGracePeriodSeconds (UpdateService keeps it): kept here.
    - CreateService drops enableECSManagedTags (DescribeServices never returns it): kept here,
      false unless asked for, as AWS answers.
    - UpdateService of the task definition, load balancers, network configuration or platform
      version of a service on the CODE_DEPLOY controller is accepted; AWS refuses it
      (InvalidParameterException: only a CodeDeploy deployment changes those), and so does the
      emulator now, so a test proves the deployer never sends it."""
    from moto.ecs.exceptions import InvalidParameterException
    from moto.ecs.responses import EC2ContainerServiceResponse

    original_create = EC2ContainerServiceResponse.create_service
    original_update = EC2ContainerServiceResponse.update_service

    def create_service(self):
        grace = self._get_param("healthCheckGracePeriodSeconds")
        result = original_create(self)
        service = self.ecs_backend._get_service(self._get_param("cluster", "default"), self._get_param("serviceName"))
        if grace is not None:
            service.health_check_grace_period_seconds = grace
        service.enable_ecs_managed_tags = bool(self._get_param("enableECSManagedTags", False))
        return result

    def update_service(self):
        service = self.ecs_backend._get_service(
            self._get_param("cluster", "default"), self._get_param("service").split("/")[-1]
        )
        controller = (getattr(service, "deployment_controller", None) or {}).get("type")
        refused = [
            key
            for key in ("taskDefinition", "loadBalancers", "networkConfiguration", "platformVersion")
            if self._get_param(key) is not None
        ]
        if controller == "CODE_DEPLOY" and refused:
            raise InvalidParameterException(
                f"Unable to update {', '.join(refused)} on services with a CODE_DEPLOY deployment "
                "controller. Use AWS CodeDeploy to trigger a new deployment."
            )
        return original_update(self)

    EC2ContainerServiceResponse.create_service = create_service
    EC2ContainerServiceResponse.update_service = update_service


def _patch_ecs_service_tasks_run():
    """An ECS service runs its desired number of tasks: "An Amazon ECS service runs and maintains
    your desired number of tasks simultaneously" (ECS developer guide, "Amazon ECS services",
    https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs_services.html). moto leaves a
    new service's runningCount at MOTO_ECS_SERVICE_RUNNING (0 unless set) forever, all of its
    tasks pending (UpdateService of the desired count does run them, at once), so a deployer
    waiting for runningCount == desiredCount would wait forever. Here CreateService starts them at
    once (with the AWS model on, aws_model.py holds runningCount back for the rollout's
    latency), and a deleted (INACTIVE) service runs none. MOTO_ECS_SERVICE_RUNNING, when set,
    still decides as in moto."""
    import os

    from moto.ecs.models import EC2ContainerServiceBackend

    original_create = EC2ContainerServiceBackend.create_service
    original_delete = EC2ContainerServiceBackend.delete_service

    def create_service(self, *args, **kwargs):
        svc = original_create(self, *args, **kwargs)
        if os.environ.get("MOTO_ECS_SERVICE_RUNNING") is None:
            cluster = self._get_cluster(svc.cluster_name)
            desired = svc.desired_count or 0
            self.update_cluster_resources(cluster, desired - (svc.running_count or 0), task_state="RUNNING")
            self.update_cluster_resources(cluster, -(svc.pending_count or 0), task_state="PENDING")
            svc.running_count = desired
            svc.pending_count = 0
            for deployment in svc.deployments or []:  # the ECS controller's PRIMARY deployment
                deployment.update(
                    runningCount=desired,
                    pendingCount=0,
                    rolloutState="COMPLETED",
                    rolloutStateReason=f"ECS deployment {deployment['id']} completed.",
                )
        return svc

    def delete_service(self, cluster_name, service_name, force):
        svc = original_delete(self, cluster_name, service_name, force)
        if os.environ.get("MOTO_ECS_SERVICE_RUNNING") is None:
            svc.running_count = 0  # moto already took them off the cluster's count
        return svc

    EC2ContainerServiceBackend.create_service = create_service
    EC2ContainerServiceBackend.delete_service = delete_service


def _patch_route53_failover_pairs():
    """Route 53 refuses a change batch after which a name and type would have two failover
    records with the same role (two PRIMARY, or two SECONDARY); moto accepts it. So switching the
    roles must change both records in one batch, as the deployer does, and the emulator now
    holds it to that. The batch is judged whole: its end state, as AWS applies it atomically."""
    from moto.route53.exceptions import Route53ClientError
    from moto.route53.models import Route53Backend

    class InvalidChangeBatch(Route53ClientError):
        def __init__(self, message):
            super().__init__("InvalidChangeBatch", message)

    # moto finds an error's service by its module's name.
    InvalidChangeBatch.__module__ = "moto.route53.exceptions"

    original = Route53Backend.change_resource_record_sets

    def key(name):
        return name.rstrip(".").lower()

    def change_resource_record_sets(self, zoneid, change_list):
        zone = self.get_hosted_zone(zoneid)
        state = {
            (key(r.name), r.type, r.set_identifier): r.failover for r in zone.rrsets if r.set_identifier
        }
        for change in change_list:
            rr = change["ResourceRecordSet"]
            k = (key(rr["Name"]), rr["Type"], rr.get("SetIdentifier"))
            if not k[2]:
                continue
            if change["Action"] == "DELETE":
                state.pop(k, None)
            else:
                state[k] = rr.get("Failover")
        seen = {}
        for (name, rtype, ident), role in state.items():
            if not role:
                continue
            other = seen.setdefault((name, rtype, role), ident)
            if other != ident:
                raise InvalidChangeBatch(
                    f"[RRSet with DNS name {name}., type {rtype}, SetIdentifier {ident} cannot be "
                    f"created because a failover {role} record ({other}) already exists for it]"
                )
        return original(self, zoneid, change_list)

    Route53Backend.change_resource_record_sets = change_resource_record_sets


def _patch_route53_health_check_caller_reference():
    """CreateHealthCheck is idempotent by CallerReference, as the Route 53 API reference says
    (CreateHealthCheck, CallerReference:
    https://docs.aws.amazon.com/Route53/latest/APIReference/API_CreateHealthCheck.html):
    - the same CallerReference and settings as a previous request, the check existing: "Route 53
      returns the settings for the existing health check" (HTTP 201, the same Id, no new check);
    - the same CallerReference as an existing check but different settings: HealthCheckAlreadyExists;
    - the same CallerReference as a deleted check, whatever the settings: HealthCheckAlreadyExists
      (AWS forgets it "after a number of days"; the emulator never does);
    - a new CallerReference with the settings of an existing check creates another one.
    HealthCheckAlreadyExists is HTTP 409 (API reference, Errors). moto created a new check for
    every request, so a create whose answer was lost, retried, left an orphan check behind.
    "Settings" are the request's HealthCheckConfig as sent (a retry sends the same); the check's
    later UpdateHealthCheck changes do not count, as AWS compares with the previous request."""
    from moto.route53.exceptions import Route53ClientError
    from moto.route53.models import Route53Backend

    class HealthCheckAlreadyExists(Route53ClientError):
        def __init__(self, caller_reference, deleted):
            # AWS's exact message is not documented; this says which of the two cases it is.
            what = "a health check that was deleted" if deleted else "an existing health check with other settings"
            super().__init__(
                "HealthCheckAlreadyExists",
                f"The CallerReference {caller_reference} is that of {what}: use a new CallerReference.",
            )

    # moto finds an error's service (and its HTTP status, 409 in the model) by the module's name.
    HealthCheckAlreadyExists.__module__ = "moto.route53.exceptions"

    def settings(args):
        def norm(value):
            if isinstance(value, (list, tuple)):
                return tuple(sorted(norm(v) for v in value))
            if isinstance(value, dict):
                return tuple(sorted((k, norm(v)) for k, v in value.items()))
            return str(value).lower()

        return norm({k: v for k, v in (args or {}).items() if v not in (None, [], {})})

    original_create = Route53Backend.create_health_check
    original_delete = Route53Backend.delete_health_check

    def create_health_check(self, caller_reference, health_check_args):
        refs = self.__dict__.setdefault("_emu_health_check_refs", {})  # reference -> (id, settings)
        deleted = self.__dict__.setdefault("_emu_deleted_health_check_refs", set())
        wanted = settings(health_check_args)
        if caller_reference in deleted:
            raise HealthCheckAlreadyExists(caller_reference, deleted=True)
        known = refs.get(caller_reference)
        if known is not None and known[0] in self.health_checks:
            if known[1] != wanted:
                raise HealthCheckAlreadyExists(caller_reference, deleted=False)
            return self.health_checks[known[0]]
        check = original_create(self, caller_reference, health_check_args)
        refs[caller_reference] = (check.id, wanted)
        return check

    def delete_health_check(self, health_check_id):
        check = self.health_checks.get(health_check_id)
        original_delete(self, health_check_id)
        if check is not None and check.caller_reference:
            self.__dict__.setdefault("_emu_deleted_health_check_refs", set()).add(check.caller_reference)

    Route53Backend.create_health_check = create_health_check
    Route53Backend.delete_health_check = delete_health_check


def _patch_applicationautoscaling_policy_alarms():
    """The CloudWatch alarms of a target tracking policy belong to the policy, as AWS documents:
    - "Application Auto Scaling creates and manages the CloudWatch alarms that trigger the
      scaling policy" (Application Auto Scaling user guide, "Target tracking scaling policies",
      https://docs.aws.amazon.com/autoscaling/application/userguide/application-auto-scaling-target-tracking.html):
      two per policy, TargetTracking-<resource>-AlarmHigh-<uuid> and -AlarmLow-<uuid>.
    - PutScalingPolicy "creates or updates" a policy
      (https://docs.aws.amazon.com/autoscaling/application/APIReference/API_PutScalingPolicy.html)
      and answers "the CloudWatch alarms created for the target tracking scaling policy": putting
      a policy again (an update, or a retry of a put whose answer was lost) replaces its alarms.
      moto made two new alarms and left the first two behind forever.
    - DeleteScalingPolicy of a target tracking policy "also deletes the CloudWatch alarms that
      Application Auto Scaling created on your behalf" (user guide, "Delete a target tracking
      scaling policy", https://docs.aws.amazon.com/autoscaling/application/userguide/delete-target-tracking-policy.html):
      moto does that already.
    - "Deregistering a scalable target deletes the scaling policies and the scheduled actions that
      are associated with it" (API reference, DeregisterScalableTarget,
      https://docs.aws.amazon.com/autoscaling/application/APIReference/API_DeregisterScalableTarget.html),
      and so the policies' alarms. moto kept the policies, their alarms and the actions."""
    from moto.applicationautoscaling.models import ApplicationAutoscalingBackend, FakeApplicationAutoscalingPolicy

    original_put = ApplicationAutoscalingBackend.put_scaling_policy
    original_deregister = ApplicationAutoscalingBackend.deregister_scalable_target

    def put_scaling_policy(
        self, policy_name, service_namespace, resource_id, scalable_dimension, policy_body, policy_type
    ):
        key = FakeApplicationAutoscalingPolicy.formulate_key(
            service_namespace, resource_id, scalable_dimension, policy_name
        )
        before = self.policies.get(key)
        policy = original_put(
            self, policy_name, service_namespace, resource_id, scalable_dimension, policy_body, policy_type
        )
        if before is not None and before is not policy:
            before.delete_alarms(self.account_id, self.region_name)
        return policy

    def deregister_scalable_target(self, namespace, r_id, dimension):
        original_deregister(self, namespace, r_id, dimension)  # refuses an unknown target

        def of_target(item):
            return (item.service_namespace, item.resource_id, item.scalable_dimension) == (namespace, r_id, dimension)

        for key, policy in list(self.policies.items()):
            if of_target(policy):
                policy.delete_alarms(self.account_id, self.region_name)
                del self.policies[key]
        self.scheduled_actions = [a for a in self.scheduled_actions if not of_target(a)]

    ApplicationAutoscalingBackend.put_scaling_policy = put_scaling_policy
    ApplicationAutoscalingBackend.deregister_scalable_target = deregister_scalable_target


def _patch_logs_kms_association():
    from moto.logs.models import LogsBackend
    from moto.logs.responses import LogsResponse

    def _group(backend, name):
        from moto.logs.exceptions import ResourceNotFoundException

        if name not in backend.groups:
            raise ResourceNotFoundException()
        return backend.groups[name]

    def associate_kms_key(self):
        _group(self.logs_backend, self._get_param("logGroupName")).kms_key_id = self._get_param("kmsKeyId")
        return ""

    def disassociate_kms_key(self):
        _group(self.logs_backend, self._get_param("logGroupName")).kms_key_id = None
        return ""

    LogsResponse.associate_kms_key = associate_kms_key
    LogsResponse.disassociate_kms_key = disassociate_kms_key
    del LogsBackend  # only the responses are patched


def _patch_rds_parameter_group_pending_reboot():
    from moto.rds.models import DBInstance, RDSBackend

    original_status = DBInstance.db_parameter_group_status_list

    def db_parameter_group_status_list(self):
        import copy

        groups = original_status.fget(self)
        if not getattr(self, "parameter_group_pending_reboot", False):
            return groups
        # The group objects are the backend's own, shared by every instance using them.
        pending = [copy.copy(group) for group in groups]
        for group in pending:
            group.ParameterApplyStatus = "pending-reboot"
        return pending

    DBInstance.db_parameter_group_status_list = property(db_parameter_group_status_list)

    original_modify = RDSBackend.modify_db_instance

    def modify_db_instance(self, db_instance_identifier, db_kwargs):
        database = self.databases.get(db_instance_identifier)
        before = getattr(database, "db_parameter_group_name", None) if database else None
        result = original_modify(self, db_instance_identifier, db_kwargs)
        wanted = db_kwargs.get("db_parameter_group_name")
        if database is not None and wanted and wanted != before:
            result.parameter_group_pending_reboot = True
        return result

    RDSBackend.modify_db_instance = modify_db_instance

    original_reboot = RDSBackend.reboot_db_instance

    def reboot_db_instance(self, db_instance_identifier):
        database = original_reboot(self, db_instance_identifier)
        database.parameter_group_pending_reboot = False
        return database

    RDSBackend.reboot_db_instance = reboot_db_instance


def _patch_ecr_scan_on_push_default():
    from moto.ecr.models import ECRBackend

    original = ECRBackend.put_image_scanning_configuration

    def put_image_scanning_configuration(self, registry_id, repository_name, image_scan_config):
        config = dict(image_scan_config or {})
        config.setdefault("scanOnPush", False)
        return original(self, registry_id, repository_name, config)

    ECRBackend.put_image_scanning_configuration = put_image_scanning_configuration


def _patch_scheduler_group_conflict():
    from moto.core.exceptions import JsonRESTError
    from moto.scheduler.models import EventBridgeSchedulerBackend

    class GroupExists(JsonRESTError):
        def __init__(self, name):
            super().__init__("ConflictException", f"Schedule group {name} already exists.")

    original = EventBridgeSchedulerBackend.create_schedule_group

    def create_schedule_group(self, name, tags):
        if name in self.schedule_groups:
            raise GroupExists(name)
        return original(self, name, tags)

    EventBridgeSchedulerBackend.create_schedule_group = create_schedule_group


PENDING_PROTOCOLS = ("email", "email-json", "http", "https")


def _patch_sns_pending_confirmation():
    from moto.sns.models import SNSBackend
    from moto.sns.responses import SNSResponse

    original_subscribe = SNSBackend.subscribe

    def subscribe(self, topic_arn, endpoint, protocol):
        existing = self._find_subscription(topic_arn, endpoint, protocol)
        subscription = original_subscribe(self, topic_arn, endpoint, protocol)
        if existing is None and protocol in PENDING_PROTOCOLS:
            subscription.attributes["PendingConfirmation"] = "true"
            subscription.attributes["ConfirmationWasAuthenticated"] = "false"
            subscription.pending = True
        return subscription

    class Listed:
        """A subscription as the list operations show it: a pending one has no ARN yet."""

        def __init__(self, subscription):
            self.__dict__.update(subscription.__dict__)
            if getattr(subscription, "pending", False):
                self.arn = "PendingConfirmation"

        @property
        def topic_arn(self):
            return self.topic.arn

    def listed(original):
        def wrapper(self, *args, **kwargs):
            items, token = original(self, *args, **kwargs)
            return [Listed(s) for s in items], token

        return wrapper

    SNSBackend.subscribe = subscribe
    SNSBackend.list_subscriptions = listed(SNSBackend.list_subscriptions)
    SNSBackend.list_subscriptions_by_topic = listed(SNSBackend.list_subscriptions_by_topic)

    original_response = SNSResponse.subscribe

    def subscribe_response(self):
        result = original_response(self)
        wants_arn = str(self._get_param("ReturnSubscriptionArn", "false")).lower() == "true"
        if self._get_param("Protocol") in PENDING_PROTOCOLS and not wants_arn:
            arn = result.result["SubscriptionArn"] if hasattr(result, "result") else None
            subscription = self.backend.subscriptions.get(arn) if arn else None
            if subscription is not None and getattr(subscription, "pending", False):
                result.result["SubscriptionArn"] = "pending confirmation"
        return result

    SNSResponse.subscribe = subscribe_response


def confirm_sns_subscriptions(endpoint):
    """Confirms every pending subscription of `endpoint`, in every account and region, as its
    owner answering the confirmation message would. Returns how many were confirmed."""
    from moto.sns.models import sns_backends

    confirmed = 0
    for account in sns_backends.values():
        for backend in account.values():
            for subscription in backend.subscriptions.values():
                if subscription.endpoint == endpoint and getattr(subscription, "pending", False):
                    subscription.pending = False
                    subscription.confirmed = True
                    subscription.attributes["PendingConfirmation"] = "false"
                    confirmed += 1
    return confirmed


_applied = False



def _patch_elbv2_create_target_group_idempotent():
    """CreateTargetGroup is idempotent on AWS: "If you attempt to create multiple target groups
    with the same settings, each call succeeds" (Elastic Load Balancing API reference,
    CreateTargetGroup), and the answer is the group that exists. moto answers
    DuplicateTargetGroupName, so a create whose first answer was lost (applied, then retried by
    the SDK) failed. A group of that name with other settings is still refused, as on AWS."""
    from moto.elbv2.models import ELBv2Backend

    original = ELBv2Backend.create_target_group

    def create_target_group(self, name, **kwargs):
        for tg in self.target_groups.values():
            if tg.name != name:
                continue
            same = (
                str(tg.vpc_id) == str(kwargs.get("vpc_id"))
                and str(tg.port) == str(kwargs.get("port"))
                and (kwargs.get("protocol") is None or tg.protocol == kwargs.get("protocol"))
                and tg.target_type == (kwargs.get("target_type") or "instance")
            )
            if same:
                return tg
        return original(self, name, **kwargs)

    ELBv2Backend.create_target_group = create_target_group


def _patch_ec2_nat_gateway_client_token():
    """CreateNatGateway is idempotent by ClientToken, as AWS documents ("Ensuring idempotency in
    Amazon EC2 API requests", https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-idempotency.html,
    which lists CreateNatGateway; API reference, CreateNatGateway, ClientToken): a repeated
    request with the same token and the same parameters answers with the NAT gateway the first
    one made; the same token with other parameters is IdempotentParameterMismatch. moto ignored
    the token: an SDK retry of a create whose answer was lost made a second network interface,
    then failed on the Elastic IP the first had taken, leaving that interface behind."""
    from moto.core.responses import ActionResult
    from moto.ec2.exceptions import EC2ClientError
    from moto.ec2.responses.nat_gateways import NatGateways

    original = NatGateways.create_nat_gateway

    def create_nat_gateway(self):
        token = self._get_param("ClientToken")
        if not token:
            return original(self)
        params = (self._get_param("SubnetId"), self._get_param("AllocationId"), self._get_param("ConnectivityType"))
        known = self.ec2_backend.__dict__.setdefault("_emu_nat_tokens", {})  # token -> (params, id)
        if token in known:
            seen, nat_id = known[token]
            if seen != params:
                raise EC2ClientError(
                    "IdempotentParameterMismatch",
                    f"The client token {token} was used with other parameters.",
                )
            nat = self.ec2_backend.nat_gateways.get(nat_id)
            if nat is not None:
                return ActionResult({"NatGateway": nat, "ClientToken": token})
        result = original(self)
        created = [n for n in self.ec2_backend.nat_gateways.values() if n.id not in {i for _, i in known.values()}]
        newest = max(created, key=lambda n: n._created_at, default=None)
        if newest is not None:
            known[token] = (params, newest.id)
        return result

    NatGateways.create_nat_gateway = create_nat_gateway


def _patch_acm_dns_validation_needs_the_record():
    """A DNS-validated certificate is issued only once its validation CNAME can be found, as the
    ACM user guide says ("DNS validation", https://docs.aws.amazon.com/acm/latest/userguide/dns-validation.html:
    ACM issues the certificate after it finds the CNAME record it asked for; until then it stays
    PENDING_VALIDATION, and VALIDATION_TIMED_OUT after 72 hours). moto flipped every requested
    certificate to ISSUED after its wait, record or not: a run killed after RequestCertificate
    and before writing the record got an ISSUED certificate back on the next run, which then
    never wrote the record (on AWS that certificate would have waited for it). Here the record
    must be in one of the emulator's Route 53 zones, with ACM's value, for every name."""
    from moto.acm.models import CertBundle
    from moto.route53.models import route53_backends

    original_check = CertBundle.check

    def records_present(cert):
        names = set(cert.sans + ([cert.common_name] if cert.common_name else []))
        options = cert.describe()["Certificate"].get("DomainValidationOptions", [])
        wanted = {(o["ResourceRecord"]["Name"].rstrip("."), o["ResourceRecord"]["Value"]) for o in options}
        if not names or not wanted:
            return True
        held = set()
        for backend in route53_backends.values():
            for partition in backend.values():
                for zone in list(partition.zones.values()):
                    for r in list(zone.rrsets):
                        if r.type == "CNAME":
                            held.update((r.name.rstrip("."), v) for v in r.records)
        return wanted <= held

    def check(self):
        was_pending = self.status == "PENDING_VALIDATION"
        original_check(self)
        if was_pending and self.status == "ISSUED" and self.type == "AMAZON_ISSUED":
            if not records_present(self):
                self.status = "PENDING_VALIDATION"

    CertBundle.check = check


# ---------------------------------------------------------------------------------------------
# Resource Groups Tagging API. AWS: "The GetResources, GetTagKeys, and GetTagValues operations
# support all resource types" except IAM users and roles
# (https://docs.aws.amazon.com/resourcegroupstagging/latest/APIReference/supported-services.html),
# and "All tagged resources, whether the tagging used the Resource Groups Tagging API or not, are
# returned by the Get* operation" (API reference, GetResources, ResourceTypeFilters). The
# resource type of each is "the same as that embedded in a resource's Amazon Resource Name (ARN)"
# (same page): `rds:subgrp` for arn:aws:rds:<region>:<account>:subgrp:<name>, and so on.
# moto 5.2.5 answers GetResources from each backend's iter_tagged_resources(), and these fixes
# add what its backends leave out.


def _patch_tagging_rds_groups():
    """RDS DB subnet groups (`rds:subgrp`), DB parameter groups (`rds:pg`), DB cluster parameter
    groups (`rds:cluster-pg`) and option groups (`rds:og`) are taggable RDS resources (RDS user
    guide, "Amazon Resource Names (ARNs) in Amazon RDS",
    https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_Tagging.ARN.html, lists them with
    these ARN types); moto's RDS iter_tagged_resources lists only clusters, cluster snapshots,
    instances, proxies and snapshots. The ARN is the one DescribeDBSubnetGroups /
    DescribeDBParameterGroups answer (the model's `arn`), the tags those ListTagsForResource
    answers (the model's get_tags())."""
    from moto.core.resource_tagging import TaggedResource
    from moto.rds.models import RDSBackend

    original = RDSBackend.iter_tagged_resources

    def iter_tagged_resources(self):
        yield from original(self)
        groups = {
            "rds:subgrp": self.subnet_groups,
            "rds:pg": self.db_parameter_groups,
            "rds:cluster-pg": self.db_cluster_parameter_groups,
            "rds:og": self.option_groups,
        }
        for resource_type, table in groups.items():
            for group in list(table.values()):
                yield TaggedResource(
                    arn=group.arn,
                    tags={tag["Key"]: tag["Value"] for tag in group.get_tags()},
                    resource_type=resource_type,
                )

    RDSBackend.iter_tagged_resources = iter_tagged_resources


def _patch_tagging_ecr_and_scheduler():
    """ECR repositories (`ecr:repository`) and EventBridge Scheduler schedule groups
    (`scheduler:schedule-group`): moto's ECR and Scheduler backends are not
    TaggableResourcesMixin at all, so GetResources never saw them. Each takes part now through a
    small adapter (their own tag_resource take a list of {"Key", "Value"}, the mixin's a dict:
    the adapter converts, so TagResources / UntagResources reach them too). The ARN is the
    repository's (DescribeRepositories repositoryArn) or the group's (GetScheduleGroup Arn), the
    tags those of ListTagsForResource. Schedules are not listed: the Scheduler user guide, "Tagging
    resources in Amazon EventBridge Scheduler", says only schedule groups can be tagged.

    And DeleteScheduleGroup: moto kept the group's tags (a new group of that name got them back)
    and answered HTTP 500 for an unknown group; AWS answers ResourceNotFoundException (API
    reference, DeleteScheduleGroup)."""
    import moto.resourcegroupstaggingapi.models as tagging_models
    from moto.core.resource_tagging import TaggableResourcesMixin, TaggedResource
    from moto.ecr.models import ECRBackend, ecr_backends
    from moto.scheduler.exceptions import ScheduleGroupNotFound
    from moto.scheduler.models import EventBridgeSchedulerBackend, scheduler_backends

    def as_list(tags):
        return [{"Key": key, "Value": value} for key, value in tags.items()]

    class EcrRepositories(TaggableResourcesMixin):
        SERVICE_NAMESPACE = "ecr"

        def __init__(self, backend):
            self.backend = backend
            self.partition = backend.partition

        def iter_tagged_resources(self):
            for repo in list(self.backend.repositories.values()):
                yield TaggedResource(
                    arn=repo.arn,
                    tags=self.backend.tagger.get_tag_dict_for_resource(repo.arn),
                    resource_type="ecr:repository",
                )

        def tag_resource(self, arn, tags):
            self.backend.tag_resource(arn, as_list(tags))

        def untag_resource(self, arn, tag_keys):
            self.backend.untag_resource(arn, tag_keys)

    class ScheduleGroups(TaggableResourcesMixin):
        SERVICE_NAMESPACE = "scheduler"

        def __init__(self, backend):
            self.backend = backend
            self.partition = backend.partition

        def iter_tagged_resources(self):
            for group in list(self.backend.schedule_groups.values()):
                yield TaggedResource(
                    arn=group.arn,
                    tags=self.backend.tagger.get_tag_dict_for_resource(group.arn),
                    resource_type="scheduler:schedule-group",
                )

        def tag_resource(self, arn, tags):
            self.backend.tag_resource(arn, as_list(tags))

        def untag_resource(self, arn, tag_keys):
            self.backend.untag_resource(arn, tag_keys)

    adapters = [
        (backend_class, backends, adapter)
        for backend_class, backends, adapter in (
            (ECRBackend, ecr_backends, EcrRepositories),
            (EventBridgeSchedulerBackend, scheduler_backends, ScheduleGroups),
        )
        if not issubclass(backend_class, TaggableResourcesMixin)  # a later moto may list them
    ]
    original = tagging_models.iter_taggable_backends

    def iter_taggable_backends(account_id, region_name):
        yield from original(account_id, region_name)
        for _, backends, adapter in adapters:
            # The dicts' own get: BackendDict's __getitem__ would create a backend.
            per_region = dict.get(backends, account_id)
            backend = dict.get(per_region, region_name) if per_region is not None else None
            if backend is not None:
                yield adapter(backend)

    # GetResources, GetTagKeys, GetTagValues, TagResources and UntagResources all look their
    # backends up through this name of the tagging API's module.
    tagging_models.iter_taggable_backends = iter_taggable_backends

    def delete_schedule_group(self, name):
        name = name or "default"
        group = self.schedule_groups.get(name)
        if group is None:
            raise ScheduleGroupNotFound(name)
        del self.schedule_groups[name]
        self.tagger.delete_all_tags_for_resource(group.arn)

    EventBridgeSchedulerBackend.delete_schedule_group = delete_schedule_group


def _patch_tagging_events_rules():
    """EventBridge rules (`events:rule`, arn:aws:events:<region>:<account>:rule/<name> on the
    default bus, rule/<bus>/<name> on another, as PutRule answers RuleArn) are taggable
    (EventBridge API reference, TagResource: "In EventBridge, rules and event buses can be
    tagged"); moto's Events iter_tagged_resources lists only the event buses. moto already
    deletes a rule's tags with the rule."""
    from moto.core.resource_tagging import TaggedResource
    from moto.events.models import EventsBackend

    original = EventsBackend.iter_tagged_resources

    def iter_tagged_resources(self):
        yield from original(self)
        for bus in list(self.event_buses.values()):
            for rule in list(bus.rules.values()):
                yield TaggedResource(
                    arn=rule.arn,
                    tags=self.tagger.get_tag_dict_for_resource(rule.arn),
                    resource_type="events:rule",
                )

    EventsBackend.iter_tagged_resources = iter_tagged_resources


def _patch_tagging_elbv2_listeners():
    """ELBv2 listeners (`elasticloadbalancing:listener`) are taggable (Elastic Load Balancing
    API reference, AddTags: "You can tag your Application Load Balancers, Network Load Balancers,
    Gateway Load Balancers, target groups, trust stores, listeners, and rules"); moto's ELBv2
    iter_tagged_resources lists only load balancers and target groups. A listener's ARN is the
    one CreateListener / DescribeListeners answer, its tags those DescribeTags answers; a
    deleted load balancer's listeners go with it (moto keeps them on the load balancer)."""
    from moto.core.resource_tagging import TaggedResource
    from moto.elbv2.models import ELBv2Backend

    original = ELBv2Backend.iter_tagged_resources

    def iter_tagged_resources(self):
        yield from original(self)
        for lb in list(self.load_balancers.values()):
            for listener in list(lb.listeners.values()):
                yield TaggedResource(
                    arn=listener.arn,
                    tags=self.tagging_service.get_tag_dict_for_resource(listener.arn),
                    resource_type="elasticloadbalancing:listener",
                )

    ELBv2Backend.iter_tagged_resources = iter_tagged_resources


def _patch_tagging_logs_and_alarms():
    """CloudWatch Logs log groups and CloudWatch alarms keep their tags in a table by ARN that
    moto does not clear when the resource is deleted: a log group or an alarm created again
    under the same name (so the same ARN) showed the deleted one's tags, in ListTagsForResource
    and in GetResources. On AWS the tags go with the resource. And a log group's resource type
    is `logs:log-group`, as in its ARN arn:aws:logs:<region>:<account>:log-group:<name> (moto:
    `logs:loggroup`). moto's ARN is already AWS's: without the `:*` that DescribeLogGroups'
    `arn` field ends with, equal to its `logGroupArn`."""
    from moto.cloudwatch.models import CloudWatchBackend
    from moto.logs.models import LogsBackend

    original_logs_iter = LogsBackend.iter_tagged_resources

    def logs_iter_tagged_resources(self):
        for resource in original_logs_iter(self):
            if resource.resource_type == "logs:loggroup":
                resource.resource_type = "logs:log-group"
            yield resource

    LogsBackend.iter_tagged_resources = logs_iter_tagged_resources

    original_delete_group = LogsBackend.delete_log_group

    def delete_log_group(self, log_group_name):
        group = self.groups.get(log_group_name)
        original_delete_group(self, log_group_name)  # ResourceNotFoundException if unknown
        self.tagger.delete_all_tags_for_resource(group.arn)

    LogsBackend.delete_log_group = delete_log_group

    original_delete_alarms = CloudWatchBackend.delete_alarms

    def delete_alarms(self, alarm_names):
        arns = [self.alarms[name].alarm_arn for name in alarm_names if name in self.alarms]
        original_delete_alarms(self, alarm_names)
        for arn in arns:
            self.tagger.delete_all_tags_for_resource(arn)

    CloudWatchBackend.delete_alarms = delete_alarms


def _patch_tagging_ecs_deleted():
    """A deleted ECS service or cluster: moto keeps it, INACTIVE, and GetResources still listed
    it. DeleteService and DeleteCluster delete them (ECS API reference; the INACTIVE record that
    DescribeServices / DescribeClusters may still show for a while is no live resource), and a
    deleted resource is not in GetResources. A deregistered (INACTIVE) task definition stays:
    it still exists ("INACTIVE task definitions remain discoverable in your account
    indefinitely", API reference, DeregisterTaskDefinition) until DeleteTaskDefinitions, which
    moto already takes out."""
    from moto.ecs.models import EC2ContainerServiceBackend

    original = EC2ContainerServiceBackend.iter_tagged_resources

    def iter_tagged_resources(self):
        gone = {s.physical_resource_id for s in list(self.services.values()) if s.status == "INACTIVE"}
        gone |= {c.arn for c in list(self.clusters.values()) if c.status == "INACTIVE"}
        for resource in original(self):
            if resource.arn not in gone:
                yield resource

    EC2ContainerServiceBackend.iter_tagged_resources = iter_tagged_resources


TAGGING_TOKEN_SECONDS = 15 * 60


def _patch_tagging_pagination():
    """GetResources pages, as the API reference describes TagsPerPage
    (https://docs.aws.amazon.com/resourcegroupstagging/latest/APIReference/API_GetResources.html):
    "A resource with no tags is counted as having one tag"; a resource is never split across
    pages; "if you specify a TagsPerPage of 100 and the account has 22 resources with 10 tags
    each ... The first page displays the first 10 resources": a page holds up to exactly
    TagsPerPage tags. moto stopped one short (`>=`), so that page held 9, and did not count the
    tags of the resource it carried over to the next page, which could then hold more than
    TagsPerPage. ResourcesPerPage (1-100) still limits a page too (moto's default, 50, when the
    request gives none; AWS: "A query can return fewer than this maximum").
    The resources are read once, at the first page: moto resumed a generator over its live
    tables, which fails ("dictionary changed size during iteration") when a resource is created
    or deleted between two pages. A token answers the same page when sent again (an SDK retry
    of a page whose answer was lost), for 15 minutes ("PaginationTokenExpiredException: A
    PaginationToken is valid for a maximum of 15 minutes", API reference, GetResources, Errors)."""
    import time

    from moto.moto_api._internal import mock_random
    from moto.resourcegroupstaggingapi.exceptions import ResourceGroupsTaggingAPIError
    from moto.resourcegroupstaggingapi.models import ResourceGroupsTaggingAPIBackend

    def expired():
        return ResourceGroupsTaggingAPIError("PaginationTokenExpiredException", "Token does not exist")

    def get_resources(
        self,
        pagination_token=None,
        resources_per_page=50,
        tags_per_page=100,
        tag_filters=None,
        resource_type_filters=None,
        resource_arn_list=None,
    ):
        if pagination_token:
            saved = self._pages.get(pagination_token)
            if not isinstance(saved, dict) or "resources" not in saved:
                raise expired()
            if time.monotonic() - saved["at"] > TAGGING_TOKEN_SECONDS:
                del self._pages[pagination_token]
                raise expired()
            pending = saved["resources"]
        else:
            for attempt in range(3):
                try:
                    pending = list(
                        self._get_resources_generator(
                            tag_filters=tag_filters,
                            resource_type_filters=resource_type_filters,
                            resource_arn_list=resource_arn_list,
                        )
                    )
                    break
                except RuntimeError:  # a table changed while it was read (another request)
                    if attempt == 2:
                        raise
        page, tags = [], 0
        for resource in pending:
            cost = max(len(resource.tags), 1)
            if len(page) >= resources_per_page or (page and tags + cost > tags_per_page):
                break
            page.append(resource)
            tags += cost
        rest = pending[len(page):]
        if not rest:
            return None, page
        token = str(mock_random.uuid4())
        self._pages[token] = {"resources": rest, "at": time.monotonic(), "gen": iter(()), "misc": None}
        return token, page

    ResourceGroupsTaggingAPIBackend.get_resources = get_resources


def apply():
    """Applies every fix, once per process (the unittest modules each call it on import)."""
    global _applied
    if _applied:
        return
    _applied = True
    import codedeploy

    _patch_route53_failover_pairs()
    _patch_route53_health_check_caller_reference()
    _patch_ec2_nat_gateway_client_token()
    _patch_acm_dns_validation_needs_the_record()
    _patch_applicationautoscaling_policy_alarms()
    _patch_sns_pending_confirmation()
    _patch_logs_kms_association()
    _patch_ecr_scan_on_push_default()
    _patch_scheduler_group_conflict()
    _patch_rds_parameter_group_pending_reboot()
    _patch_ecs_services()
    _patch_ecs_service_tasks_run()
    codedeploy.apply()
    _patch_ecr_replication_rules()
    _patch_rds_cross_region_replicas()
    _patch_rds_modify_db_subnet_group()
    _patch_rds_performance_insights()
    _patch_rds_master_user_secret()
    _patch_elbv2_create_target_group_idempotent()
    _patch_rds_manage_master_user_password_once()
    _patch_rds_promote_read_replica()
    _patch_rds_master_passwords()
    _patch_secretsmanager_replication()
    _patch_tagging_rds_groups()
    _patch_tagging_ecr_and_scheduler()
    _patch_tagging_events_rules()
    _patch_tagging_elbv2_listeners()
    _patch_tagging_logs_and_alarms()
    _patch_tagging_ecs_deleted()
    _patch_tagging_pagination()
