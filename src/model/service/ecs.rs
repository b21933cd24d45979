//! The service tier's ECS part in one region: the cluster, the log group, the task definition,
//! the service on the CodeDeploy controller and its auto-scaling.

use std::collections::BTreeMap;

use super::{
    app_security_group, base_name, cluster, ecs_service, listener, log_group, log_group_name,
    scalable_target, scaling_policy, target_group, task_definition, task_execution_role, task_role,
    CONTAINER_NAME, TIER,
};
use crate::config::Config;
use crate::model::{az_letter, database, Builder};
use crate::resources::attr;
use crate::resources::ecs_cluster::{EcsClusterSpec, StrategyItem};
use crate::resources::ecs_service::EcsServiceSpec;
use crate::resources::log_group::LogGroupSpec;
use crate::resources::scalable_target::{self, ScalableTargetSpec};
use crate::resources::scaling_policy::ScalingPolicySpec;
use crate::resources::task_definition::{ContainerSpec, TaskDefinitionSpec};
use crate::resources::Spec;
use crate::spec::{Account, Address, Ref};

pub const FARGATE: &str = "FARGATE";
pub const FARGATE_SPOT: &str = "FARGATE_SPOT";

/// The cluster's default capacity provider strategy: the on-demand base first, then the weights
/// (a provider of weight 0 and no base is left out).
pub fn default_strategy(config: &Config) -> Vec<StrategyItem> {
    let c = &config.service.capacity;
    let mut items = vec![StrategyItem {
        provider: FARGATE.into(),
        base: i32::try_from(c.on_demand_base).unwrap_or(i32::MAX),
        weight: i32::try_from(c.on_demand_weight).unwrap_or(i32::MAX),
    }];
    if c.spot_weight > 0 {
        items.push(StrategyItem {
            provider: FARGATE_SPOT.into(),
            base: 0,
            weight: i32::try_from(c.spot_weight).unwrap_or(i32::MAX),
        });
    }
    items
}

/// The image the task definition runs: the environment's repository in this region.
pub fn image(config: &Config, account: &Account, region: &str) -> String {
    format!(
        "{}.dkr.ecr.{region}.amazonaws.com/{}:{}",
        account.id, config.registry.name, config.service.image_tag
    )
}

/// The application's container: plain variables, the database's address and, by `valueFrom`
/// only, its credentials and the configured secrets.
fn container(config: &Config, account: &Account, region: &str) -> ContainerSpec {
    let s = &config.service;
    let mut environment: BTreeMap<String, String> = s.environment.clone();
    let mut referenced_environment = BTreeMap::new();
    let mut secrets: BTreeMap<String, Ref> =
        s.secrets.iter().map(|(k, v)| (k.clone(), Ref::Id(v.clone()))).collect();
    if config.database.enabled {
        let primary = database::primary(config);
        environment.insert("DB_PORT".into(), config.database.port.to_string());
        environment.insert("DB_NAME".into(), config.database.database_name.clone());
        referenced_environment.insert("DB_HOST".into(), Ref::attr(primary.clone(), attr::ENDPOINT));
        // This region's own copy of the secret, by its full ARN (ECS needs the ARN of a Secrets
        // Manager secret), so that tasks start here while any other region is down.
        let secret = database::secret(region);
        for (var, key) in [("DB_USERNAME", "username"), ("DB_PASSWORD", "password")] {
            let from = Ref::Attr { of: secret.clone(), attr: attr::ARN, suffix: format!(":{key}::") };
            secrets.insert(var.into(), from);
        }
    }
    ContainerSpec {
        name: CONTAINER_NAME.into(),
        image: image(config, account, region),
        port: Some(i32::from(s.container_port)),
        command: vec![],
        environment,
        referenced_environment,
        secrets,
        health_check: s.container_health_check.clone(),
        read_only_root_filesystem: s.read_only_root_filesystem,
        user: s.user.clone(),
        log_group: log_group_name(config),
        log_region: region.to_string(),
    }
}

pub(super) fn ecs(b: &mut Builder, config: &Config, region: &str) {
    let s = &config.service;
    let c = cluster(region);
    b.add(
        region,
        TIER,
        c.name(),
        Spec::EcsCluster(EcsClusterSpec {
            name: base_name(config),
            container_insights: true,
            capacity_providers: vec![FARGATE.into(), FARGATE_SPOT.into()],
            default_strategy: default_strategy(config),
        }),
    );
    b.add(
        region,
        TIER,
        log_group(region).name(),
        Spec::LogGroup(LogGroupSpec {
            name: log_group_name(config),
            retention_days: i32::try_from(s.log_retention_days).unwrap_or(i32::MAX),
            kms_key: s.log_kms_key.get(region).cloned(),
        }),
    );
}

/// The task definition, the service and its auto-scaling (after the load balancing and the roles).
pub(super) fn service(b: &mut Builder, config: &Config, account: &Account, region: &str) {
    let s = &config.service;
    let name = base_name(config);
    b.add(
        region,
        TIER,
        task_definition(region).name(),
        Spec::TaskDefinition(TaskDefinitionSpec {
            family: name.clone(),
            cpu: s.cpu.to_string(),
            memory: s.memory.to_string(),
            cpu_architecture: s.cpu_architecture.as_str().into(),
            execution_role: Ref::Addr(task_execution_role()),
            task_role: Ref::Addr(task_role()),
            container: container(config, account, region),
            image_released: true,
        }),
    );
    let private_subnets: Vec<Ref> = config.regions[region]
        .availability_zones
        .iter()
        .map(|az| Ref::Addr(Address::new(region, "network", "subnet", &format!("private-{}", az_letter(az)))))
        .collect();
    b.add(
        region,
        TIER,
        ecs_service(region).name(),
        Spec::EcsService(EcsServiceSpec {
            name: name.clone(),
            cluster: Ref::Addr(cluster(region)),
            task_definition: Ref::Addr(task_definition(region)),
            target_group: Ref::Addr(target_group(region, "blue")),
            container_name: CONTAINER_NAME.into(),
            container_port: i32::from(s.container_port),
            subnets: private_subnets,
            security_groups: vec![Ref::Addr(app_security_group(region))],
            desired_count: i32::try_from(s.min_tasks).unwrap_or(i32::MAX),
            health_check_grace_secs: i32::try_from(s.health_check_grace_secs).unwrap_or(i32::MAX),
            after: Some(Ref::Addr(listener(region, "https"))),
        }),
    );
    let resource_id = scalable_target::resource_id(&config.app, &config.env);
    b.add(
        region,
        TIER,
        scalable_target(region).name(),
        Spec::ScalableTarget(ScalableTargetSpec {
            resource_id: resource_id.clone(),
            service: Ref::Addr(ecs_service(region)),
            min: i32::try_from(s.min_tasks).unwrap_or(i32::MAX),
            max: i32::try_from(s.max_tasks).unwrap_or(i32::MAX),
        }),
    );
    for (metric, aws_metric, target) in [
        ("cpu", "ECSServiceAverageCPUUtilization", s.cpu_target_percent),
        ("memory", "ECSServiceAverageMemoryUtilization", s.memory_target_percent),
    ] {
        b.add(
            region,
            TIER,
            scaling_policy(region, metric).name(),
            Spec::ScalingPolicy(ScalingPolicySpec {
                name: format!("{name}-{metric}"),
                resource_id: resource_id.clone(),
                target: Ref::Addr(scalable_target(region)),
                metric: aws_metric.into(),
                target_value: f64::from(target),
                scale_in_cooldown_secs: i32::try_from(s.scale_in_cooldown_secs).unwrap_or(i32::MAX),
                scale_out_cooldown_secs: i32::try_from(s.scale_out_cooldown_secs).unwrap_or(i32::MAX),
            }),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing;
    use crate::config::NatMode;
    use crate::resources::task_definition::TaskDefinitionSpec;

    fn desired(config: &Config) -> crate::model::Desired {
        crate::model::desired(config, &Account::test())
    }

    fn spec<'a>(d: &'a crate::model::Desired, address: &Address) -> &'a Spec {
        &d.get(address).unwrap_or_else(|| panic!("no {address}")).spec
    }

    fn task_definition_of(d: &crate::model::Desired) -> TaskDefinitionSpec {
        match spec(d, &task_definition("us-east-1")) {
            Spec::TaskDefinition(t) => t.clone(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn fargate_spot_is_in_the_strategy_only_with_a_weight() {
        let mut config = testing::with_service(testing::config(2, NatMode::PerAz));
        config.service.capacity.on_demand_base = 2;
        config.service.capacity.on_demand_weight = 1;
        config.service.capacity.spot_weight = 0;
        assert_eq!(
            default_strategy(&config),
            vec![StrategyItem { provider: FARGATE.into(), base: 2, weight: 1 }]
        );
        config.service.capacity.spot_weight = 3;
        assert_eq!(
            default_strategy(&config),
            vec![
                StrategyItem { provider: FARGATE.into(), base: 2, weight: 1 },
                StrategyItem { provider: FARGATE_SPOT.into(), base: 0, weight: 3 },
            ]
        );
        let d = desired(&config);
        let Spec::EcsCluster(cluster) = spec(&d, &cluster("us-east-2")) else { panic!() };
        assert_eq!(cluster.name, "webapp-test");
        assert!(cluster.container_insights);
        assert_eq!(cluster.capacity_providers, vec![FARGATE.to_string(), FARGATE_SPOT.to_string()]);
    }

    #[test]
    fn the_container_gets_the_database_by_reference_and_its_credentials_by_value_from_only() {
        let mut config = testing::with_service(testing::config(2, NatMode::PerAz));
        config.service.environment.insert("LOG_LEVEL".into(), "info".into());
        config.service.secrets.insert("API_KEY".into(), "webapp/api-key".into());
        let d = desired(&config);
        let primary = database::primary(&config);
        for region in ["us-east-1", "us-east-2"] {
            let Spec::TaskDefinition(t) = spec(&d, &task_definition(region)) else { panic!() };
            let c = &t.container;
            assert_eq!(c.image, format!("123456789012.dkr.ecr.{region}.amazonaws.com/webapp-test:latest"));
            assert_eq!(c.log_region, region);
            assert_eq!(
                c.environment,
                BTreeMap::from([
                    ("DB_NAME".to_string(), "app".to_string()),
                    ("DB_PORT".to_string(), "5432".to_string()),
                    ("LOG_LEVEL".to_string(), "info".to_string()),
                ]),
                "{region}: plain values only"
            );
            // Every region's tasks reach the primary (over the peering).
            assert_eq!(
                c.referenced_environment,
                BTreeMap::from([("DB_HOST".to_string(), Ref::attr(primary.clone(), attr::ENDPOINT))])
            );
            // Each region's own copy of the secret: its tasks start while the other is down.
            let secret = |key: &str| Ref::Attr {
                of: database::secret(region),
                attr: attr::ARN,
                suffix: format!(":{key}::"),
            };
            assert_eq!(
                c.secrets,
                BTreeMap::from([
                    ("API_KEY".to_string(), Ref::Id("webapp/api-key".into())),
                    ("DB_PASSWORD".to_string(), secret("password")),
                    ("DB_USERNAME".to_string(), secret("username")),
                ])
            );
            assert_eq!(t.execution_role, Ref::Addr(task_execution_role()));
            assert_eq!(t.task_role, Ref::Addr(task_role()));
        }
    }

    #[test]
    fn without_a_database_the_container_has_no_database_variables() {
        let mut config = testing::with_service(testing::config(2, NatMode::PerAz));
        config.database.enabled = false;
        let t = task_definition_of(&desired(&config));
        assert!(t.container.environment.keys().all(|k| !k.starts_with("DB_")), "{t:?}");
        assert!(t.container.referenced_environment.is_empty());
        assert!(t.container.secrets.is_empty());
    }

    #[test]
    fn the_service_runs_in_the_private_subnets_after_the_https_listener_and_scales_on_cpu_and_memory() {
        let config = testing::with_service(testing::config(3, NatMode::PerAz));
        let d = desired(&config);
        let Spec::EcsService(s) = spec(&d, &ecs_service("us-east-1")) else { panic!() };
        let subnets: Vec<Ref> = ["a", "b", "c"]
            .iter()
            .map(|x| Ref::Addr(Address::new("us-east-1", "network", "subnet", &format!("private-{x}"))))
            .collect();
        assert_eq!(s.subnets, subnets);
        assert_eq!(s.security_groups, vec![Ref::Addr(app_security_group("us-east-1"))]);
        assert_eq!(s.target_group, Ref::Addr(target_group("us-east-1", "blue")));
        assert_eq!(s.after, Some(Ref::Addr(listener("us-east-1", "https"))));
        assert_eq!(s.desired_count, config.service.min_tasks as i32);
        // The service comes after everything it references in the model's order.
        let position = |a: &Address| d.resources.iter().position(|r| &r.address == a);
        let service_at = position(&ecs_service("us-east-1")).unwrap();
        for dep in spec(&d, &ecs_service("us-east-1")).deps() {
            if let Some(at) = position(&dep) {
                assert!(at < service_at, "{dep} comes before the service");
            }
        }
        for (metric, aws_metric) in
            [("cpu", "ECSServiceAverageCPUUtilization"), ("memory", "ECSServiceAverageMemoryUtilization")]
        {
            let Spec::ScalingPolicy(p) = spec(&d, &scaling_policy("us-east-1", metric)) else { panic!() };
            assert_eq!(p.name, format!("webapp-test-{metric}"));
            assert_eq!(p.metric, aws_metric);
            assert_eq!(p.resource_id, "service/webapp-test/webapp-test");
            assert_eq!(p.target, Ref::Addr(scalable_target("us-east-1")));
        }
    }
}
