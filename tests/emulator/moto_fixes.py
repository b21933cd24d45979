"""Where moto 5.2.5 refuses what AWS allows, in ways the deployer's tests meet: each fix makes
moto follow AWS's documented behaviour. Applied by deployer_emulator.py at start-up.

ECR PutReplicationConfiguration
    moto refuses more than one rule ("This feature is disabled"). AWS allows up to 10 rules per
    registry, each with up to 25 destinations and 100 repository filters
    (https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_ReplicationConfiguration.html),
    and refuses a destination that is the source registry itself. The deployer keeps rules that
    belong to others when it writes its own, so its tests need a registry with several rules.
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


def apply():
    _patch_ecr_replication_rules()
