//! The service tier's ECS part in one region, driven through the library against the emulator:
//! the cluster, the log group, the task definition, the CODE_DEPLOY service and its
//! auto-scaling, as the model builds them from the shipped `local` configuration. What the
//! other parts of the tier own (the VPC and subnets, the application's security group, the load
//! balancer with its blue target group and listener, the roles, the database's endpoint and
//! master secret) is made with the SDK here and handed to the specs as physical IDs.
//!
//! Judged by ECS's, CloudWatch Logs' and Application Auto Scaling's own answers, read with
//! clients of the test's own, and by the emulator's record of the requests the deployer sent.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use aws_sdk_applicationautoscaling::types::{ScalableDimension, ServiceNamespace};
use aws_sdk_ecs::types::{ClusterField, ServiceField, TaskDefinitionField, TaskDefinitionStatus};
use deployer::cloud::Clients;
use deployer::config::{AwsConfig, Config};
use deployer::model::{self, Desired};
use deployer::plan::{self, Change};
use deployer::resources::task_definition::UPDATE_NOTE;
use deployer::resources::{self, attr, Ctx, DeletionPolicy, Found, IdMap, Resource, Tags};
use deployer::spec::{Account, Address, Ref};
use support::{is_read_action, Emulator};

const REGION: &str = "us-east-1";
const NAME: &str = "webapp-local";
const ACCOUNT: &str = "123456789012";
/// The kinds this test drives; everything else of the tier is made with the SDK.
const KINDS: &[&str] =
    &["ecs-cluster", "log-group", "task-definition", "ecs-service", "scalable-target", "scaling-policy"];
const DB_ENDPOINT: &str = "webapp-local.abcdefghijkl.us-east-1.rds.amazonaws.com";
/// This region's copy of the database's secret (each region's tasks read their own).
const DB_SECRET: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:webapp-local/db-master-AbCdEf";

/// A target-tracking policy as read back: metric, target, scale-in and scale-out cooldowns.
type PolicyShape = (String, f64, Option<i32>, Option<i32>);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

/// The shipped `local` configuration, with one application secret and one plain variable more.
fn config() -> Config {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut config = deployer::config::load(&dir, "local").expect("the shipped local config loads");
    config.service.secrets.insert("API_KEY".into(), "webapp/api-key".into());
    config.service.environment.insert("LOG_LEVEL".into(), "info".into());
    config
}

fn account() -> Account {
    Account { id: ACCOUNT.into(), partition: "aws".into() }
}

/// The physical IDs of what the other parts of the tier own, made with the SDK.
struct Dependencies {
    ids: IdMap,
    subnets: Vec<String>,
    security_group: String,
    blue: String,
    execution_role: String,
    task_role: String,
}

async fn dependencies(emu: &Emulator, config: &Config) -> Dependencies {
    let sdk = support::sdk_config(emu, REGION).await;
    let ec2 = aws_sdk_ec2::Client::new(&sdk);
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&sdk);
    let iam = aws_sdk_iam::Client::new(&sdk);
    let ids = IdMap::default();

    let vpc = ec2.create_vpc().cidr_block("10.70.0.0/16").send().await.unwrap();
    let vpc = vpc.vpc().unwrap().vpc_id().unwrap().to_string();
    let mut subnets = Vec::new();
    for (i, az) in config.regions[REGION].availability_zones.iter().enumerate() {
        let s = ec2
            .create_subnet()
            .vpc_id(&vpc)
            .availability_zone(az)
            .cidr_block(format!("10.70.{i}.0/24"))
            .send()
            .await
            .unwrap();
        let id = s.subnet().unwrap().subnet_id().unwrap().to_string();
        let letter = az.chars().last().unwrap();
        ids.insert(Address::new(REGION, "network", "subnet", &format!("private-{letter}")), id.clone());
        subnets.push(id);
    }
    let sg =
        ec2.create_security_group().group_name("app").description("app").vpc_id(&vpc).send().await.unwrap();
    let security_group = sg.group_id().unwrap().to_string();
    ids.insert(model::service::app_security_group(REGION), security_group.clone());

    let lb = elb.create_load_balancer().name(NAME).set_subnets(Some(subnets.clone())).send().await.unwrap();
    let lb = lb.load_balancers()[0].load_balancer_arn().unwrap().to_string();
    let tg = elb
        .create_target_group()
        .name(format!("{NAME}-blue"))
        .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Http)
        .port(8080)
        .vpc_id(&vpc)
        .target_type(aws_sdk_elasticloadbalancingv2::types::TargetTypeEnum::Ip)
        .send()
        .await
        .unwrap();
    let blue = tg.target_groups()[0].target_group_arn().unwrap().to_string();
    ids.insert(model::service::target_group(REGION, "blue"), blue.clone());
    let listener = elb
        .create_listener()
        .load_balancer_arn(&lb)
        .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Http)
        .port(80)
        .default_actions(
            aws_sdk_elasticloadbalancingv2::types::Action::builder()
                .r#type(aws_sdk_elasticloadbalancingv2::types::ActionTypeEnum::Forward)
                .target_group_arn(&blue)
                .build(),
        )
        .send()
        .await
        .unwrap();
    ids.insert(
        model::service::listener(REGION, "https"),
        listener.listeners()[0].listener_arn().unwrap().to_string(),
    );

    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let role = |name: &'static str| {
        let iam = iam.clone();
        async move {
            let r =
                iam.create_role().role_name(name).assume_role_policy_document(trust).send().await.unwrap();
            r.role().unwrap().arn().to_string()
        }
    };
    let execution_role = role("webapp-local-task-execution").await;
    let task_role = role("webapp-local-task").await;
    ids.insert(model::service::task_execution_role(), execution_role.clone());
    ids.insert(model::service::task_role(), task_role.clone());

    let primary = model::database::primary(config);
    ids.set_attr(&primary, attr::ENDPOINT, DB_ENDPOINT.into());
    ids.set_attr(&model::database::secret(REGION), attr::ARN, DB_SECRET.into());
    Dependencies { ids, subnets, security_group, blue, execution_role, task_role }
}

/// The model's resources of this test's kinds in `REGION`, with every reference to something
/// the test made itself replaced by that thing's physical ID (or attribute), as an observed spec
/// of ours would hold it.
fn desired(config: &Config, deps: &Dependencies) -> Desired {
    let all = model::desired(config, &account());
    let ours = |a: &Address| a.region() == REGION && KINDS.contains(&a.kind());
    let ids_ctx = Ctx {
        clients: &no_clients(),
        ids: &deps.ids,
        policy: DeletionPolicy::default(),
        timeout: Duration::from_secs(1),
        timeouts: BTreeMap::new(),
    };
    let resources: Vec<Resource> = all
        .resources
        .into_iter()
        .filter(|r| ours(&r.address))
        .map(|mut r| {
            for (_, reference) in r.spec.refs() {
                if reference.addr().is_some_and(|a| !ours(a)) {
                    *reference = Ref::Id(ids_ctx.id(reference).expect("a dependency the test made"));
                }
            }
            r
        })
        .collect();
    assert_eq!(resources.len(), KINDS.len() + 1, "one of each kind, two scaling policies: {resources:#?}");
    Desired { app: all.app, env: all.env, resources }
}

/// Clients that are never used: `Ctx::id` reads only the ID map.
fn no_clients() -> Clients {
    let shared = aws_types::SdkConfig::builder()
        .behavior_version(aws_sdk_ecs::config::BehaviorVersion::latest())
        .build();
    Clients::from_shared(shared, &[REGION.to_string()])
}

async fn clients(emu: &Emulator) -> Clients {
    let aws = AwsConfig {
        endpoint_url: Some(emu.url()),
        profile: None,
        emulator_credentials: true,
        role_arn: None,
        external_id: None,
    };
    Clients::new(&aws, Some(emu.url()), &[REGION.to_string()], None).await
}

/// What is of this test's kinds in `REGION`, references resolved.
async fn observe(clients: &Clients) -> Vec<Found> {
    let mut found: Vec<Found> = resources::observe_region(clients, REGION, "webapp", "local")
        .await
        .unwrap()
        .into_iter()
        .filter(|f| KINDS.contains(&f.address.kind()))
        .collect();
    plan::resolve_references(&mut found);
    found
}

/// Observes, plans against `desired`, and applies the plan in order (the plan lists creates
/// and updates in the model's dependency order, deletes dependents first). Returns the plan.
async fn converge(clients: &Clients, ids: &IdMap, desired: &Desired) -> plan::Plan {
    let found = observe(clients).await;
    ids.seed(&found);
    let plan = plan::plan(desired, &found);
    let ctx = Ctx {
        clients,
        ids,
        policy: DeletionPolicy::default(),
        timeout: Duration::from_secs(60),
        timeouts: BTreeMap::new(),
    };
    for change in &plan.changes {
        match change {
            Change::Create { desired, .. } => {
                let id = resources::create(&ctx, desired).await.unwrap();
                ids.insert(desired.address.clone(), id);
            }
            Change::Update { desired, found, diff, .. } => {
                resources::update(&ctx, desired, found, diff).await.unwrap()
            }
            Change::Delete { found, .. } => {
                resources::delete(&ctx, found).await.unwrap();
                ids.remove(&found.address);
            }
            other => panic!("unexpected change {other:#?}"),
        }
    }
    plan
}

fn tags_of_ecs(tags: &[aws_sdk_ecs::types::Tag]) -> Tags {
    tags.iter().map(|t| (t.key().unwrap().to_string(), t.value().unwrap().to_string())).collect()
}

fn assert_tagged(tags: &Tags, address: &Address, what: &str) {
    assert_eq!(tags.get("deployer:address"), Some(&address.to_string()), "{what}: {tags:?}");
    assert_eq!(tags.get("deployer:env").map(String::as_str), Some("local"), "{what}: {tags:?}");
    assert_eq!(tags.get("deployer:app").map(String::as_str), Some("webapp"), "{what}: {tags:?}");
}

/// The ACTIVE revisions of the family, oldest first.
async fn active_revisions(ecs: &aws_sdk_ecs::Client) -> Vec<String> {
    let out = ecs
        .list_task_definitions()
        .family_prefix(NAME)
        .status(TaskDefinitionStatus::Active)
        .send()
        .await
        .unwrap();
    out.task_definition_arns().to_vec()
}

fn mutating(actions: &[String]) -> Vec<String> {
    actions.iter().filter(|a| !is_read_action(a)).cloned().collect()
}

fn operation(action: &str) -> &str {
    action.rsplit('.').next().unwrap_or(action)
}

#[test]
fn the_ecs_part_is_created_converges_registers_a_revision_only_on_change_and_is_deleted_in_order() {
    let emu = Emulator::start();
    let rt = runtime();
    let config = config();
    rt.block_on(async {
        let deps = dependencies(&emu, &config).await;
        let desired = desired(&config, &deps);
        let clients = clients(&emu).await;
        let ids = IdMap::default();
        let sdk = support::sdk_config(&emu, REGION).await;
        let ecs = aws_sdk_ecs::Client::new(&sdk);
        let logs = aws_sdk_cloudwatchlogs::Client::new(&sdk);
        let scaling = aws_sdk_applicationautoscaling::Client::new(&sdk);
        let address = |kind: &str, name: &str| Address::new(REGION, "service", kind, name);

        // A cold pass creates one of everything.
        let first = converge(&clients, &ids, &desired).await;
        assert_eq!(first.counts().create, 7, "{first:#?}");

        // The cluster: Container Insights, FARGATE and FARGATE_SPOT with the configured strategy.
        let out = ecs
            .describe_clusters()
            .clusters(NAME)
            .include(ClusterField::Tags)
            .include(ClusterField::Settings)
            .send()
            .await
            .unwrap();
        let cluster = &out.clusters()[0];
        assert_eq!(cluster.status(), Some("ACTIVE"));
        assert!(
            cluster.settings().iter().any(|s| s.value() == Some("enabled")),
            "Container Insights: {cluster:#?}"
        );
        let providers: BTreeSet<&str> = cluster.capacity_providers().iter().map(String::as_str).collect();
        assert_eq!(providers, BTreeSet::from(["FARGATE", "FARGATE_SPOT"]));
        let capacity = &config.service.capacity;
        let strategy: BTreeMap<&str, (i32, i32)> = cluster
            .default_capacity_provider_strategy()
            .iter()
            .map(|s| (s.capacity_provider(), (s.base(), s.weight())))
            .collect();
        assert_eq!(
            strategy.get("FARGATE"),
            Some(&(capacity.on_demand_base as i32, capacity.on_demand_weight as i32)),
            "{strategy:?}"
        );
        if capacity.spot_weight > 0 {
            assert_eq!(strategy.get("FARGATE_SPOT"), Some(&(0, capacity.spot_weight as i32)));
        }
        assert_tagged(&tags_of_ecs(cluster.tags()), &address("ecs-cluster", "main"), "cluster");

        // The log group: its retention, tagged.
        let groups = logs.describe_log_groups().log_group_name_prefix("/ecs/webapp-local").send().await.unwrap();
        assert_eq!(groups.log_groups().len(), 1, "{groups:#?}");
        let group = &groups.log_groups()[0];
        assert_eq!(group.retention_in_days(), Some(config.service.log_retention_days as i32));
        let group_arn = group.arn().unwrap().trim_end_matches(":*");
        let group_tags = logs.list_tags_for_resource().resource_arn(group_arn).send().await.unwrap();
        let group_tags: Tags = group_tags.tags().cloned().unwrap_or_default().into_iter().collect();
        assert_tagged(&group_tags, &address("log-group", "app"), "log group");

        // The task definition: Fargate, the roles, the image, secrets by valueFrom only.
        assert_eq!(active_revisions(&ecs).await.len(), 1);
        let out = ecs
            .describe_task_definition()
            .task_definition(NAME)
            .include(TaskDefinitionField::Tags)
            .send()
            .await
            .unwrap();
        assert_tagged(&tags_of_ecs(out.tags()), &address("task-definition", "app"), "task definition");
        let td = out.task_definition().unwrap();
        assert_eq!(td.network_mode().map(|m| m.as_str()), Some("awsvpc"));
        assert_eq!(td.requires_compatibilities().iter().map(|c| c.as_str()).collect::<Vec<_>>(), ["FARGATE"]);
        assert_eq!(td.cpu(), Some(config.service.cpu.to_string().as_str()));
        assert_eq!(td.memory(), Some(config.service.memory.to_string().as_str()));
        assert_eq!(td.execution_role_arn(), Some(deps.execution_role.as_str()));
        assert_eq!(td.task_role_arn(), Some(deps.task_role.as_str()));
        assert_eq!(
            td.runtime_platform().and_then(|p| p.cpu_architecture()).map(|a| a.as_str()),
            Some(config.service.cpu_architecture.as_str())
        );
        let container = &td.container_definitions()[0];
        assert_eq!(container.name(), Some("app"));
        assert_eq!(
            container.image().unwrap(),
            format!("{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{}:{}", config.registry.name, config.service.image_tag)
        );
        assert_eq!(container.port_mappings()[0].container_port(), Some(i32::from(config.service.container_port)));
        let environment: BTreeMap<&str, &str> =
            container.environment().iter().map(|e| (e.name().unwrap(), e.value().unwrap())).collect();
        assert_eq!(environment.get("DB_HOST"), Some(&DB_ENDPOINT));
        assert_eq!(environment.get("LOG_LEVEL"), Some(&"info"));
        for (name, value) in &environment {
            assert!(
                !name.contains("PASSWORD") && !name.contains("USERNAME") && !value.contains("secret"),
                "no secret in the environment: {environment:?}"
            );
        }
        let secrets: BTreeMap<&str, &str> =
            container.secrets().iter().map(|s| (s.name(), s.value_from())).collect();
        assert_eq!(
            secrets,
            BTreeMap::from([
                ("API_KEY", "webapp/api-key"),
                ("DB_PASSWORD", format!("{DB_SECRET}:password::").as_str()),
                ("DB_USERNAME", format!("{DB_SECRET}:username::").as_str()),
            ])
        );
        let log = container.log_configuration().unwrap();
        assert_eq!(log.log_driver().as_str(), "awslogs");
        let options = log.options().unwrap();
        assert_eq!(options.get("awslogs-group").map(String::as_str), Some("/ecs/webapp-local"));
        assert_eq!(options.get("awslogs-region").map(String::as_str), Some(REGION));
        assert_eq!(options.get("awslogs-stream-prefix").map(String::as_str), Some("app"));
        assert_eq!(
            container.health_check().map(|h| h.command().to_vec()),
            Some(config.service.container_health_check.clone())
        );
        assert_eq!(container.readonly_root_filesystem(), Some(config.service.read_only_root_filesystem));
        assert_eq!(container.user(), config.service.user.as_deref());
        let first_revision = td.task_definition_arn().unwrap().to_string();

        // The service: CODE_DEPLOY, on blue, private subnets, the app's group, no public IP.
        let out = ecs
            .describe_services()
            .cluster(NAME)
            .services(NAME)
            .include(ServiceField::Tags)
            .send()
            .await
            .unwrap();
        let service = &out.services()[0];
        assert_tagged(&tags_of_ecs(service.tags()), &address("ecs-service", "app"), "service");
        assert_eq!(service.deployment_controller().map(|d| d.r#type().as_str()), Some("CODE_DEPLOY"));
        assert_eq!(service.task_definition(), Some(first_revision.as_str()));
        let lb = &service.load_balancers()[0];
        assert_eq!(lb.target_group_arn(), Some(deps.blue.as_str()));
        assert_eq!(lb.container_name(), Some("app"));
        assert_eq!(lb.container_port(), Some(i32::from(config.service.container_port)));
        let network = service.network_configuration().and_then(|n| n.awsvpc_configuration()).unwrap();
        let subnets: BTreeSet<&str> = network.subnets().iter().map(String::as_str).collect();
        assert_eq!(subnets, deps.subnets.iter().map(String::as_str).collect());
        assert_eq!(network.security_groups(), std::slice::from_ref(&deps.security_group));
        assert_eq!(network.assign_public_ip().map(|a| a.as_str()), Some("DISABLED"));
        assert_eq!(service.desired_count(), config.service.min_tasks as i32);
        assert_eq!(
            service.health_check_grace_period_seconds(),
            Some(config.service.health_check_grace_secs as i32)
        );
        assert_eq!(service.propagate_tags().map(|p| p.as_str()), Some("SERVICE"));
        assert!(service.enable_ecs_managed_tags());

        // Auto-scaling: the target from min to max and its two policies.
        let resource_id = format!("service/{NAME}/{NAME}");
        let targets = scaling
            .describe_scalable_targets()
            .service_namespace(ServiceNamespace::Ecs)
            .resource_ids(&resource_id)
            .send()
            .await
            .unwrap();
        let target = &targets.scalable_targets()[0];
        assert_eq!(target.scalable_dimension(), &ScalableDimension::EcsServiceDesiredCount);
        assert_eq!(
            (target.min_capacity(), target.max_capacity()),
            (config.service.min_tasks as i32, config.service.max_tasks as i32)
        );
        let policies = scaling
            .describe_scaling_policies()
            .service_namespace(ServiceNamespace::Ecs)
            .resource_id(&resource_id)
            .send()
            .await
            .unwrap();
        let policies: BTreeMap<&str, PolicyShape> = policies
            .scaling_policies()
            .iter()
            .map(|p| {
                let c = p.target_tracking_scaling_policy_configuration().unwrap();
                let metric = c.predefined_metric_specification().unwrap().predefined_metric_type();
                (
                    p.policy_name(),
                    (metric.as_str().to_string(), c.target_value(), c.scale_in_cooldown(), c.scale_out_cooldown()),
                )
            })
            .collect();
        let cooldowns = (
            Some(config.service.scale_in_cooldown_secs as i32),
            Some(config.service.scale_out_cooldown_secs as i32),
        );
        assert_eq!(
            policies,
            BTreeMap::from([
                (
                    "webapp-local-cpu",
                    (
                        "ECSServiceAverageCPUUtilization".to_string(),
                        f64::from(config.service.cpu_target_percent),
                        cooldowns.0,
                        cooldowns.1
                    )
                ),
                (
                    "webapp-local-memory",
                    (
                        "ECSServiceAverageMemoryUtilization".to_string(),
                        f64::from(config.service.memory_target_percent),
                        cooldowns.0,
                        cooldowns.1
                    )
                ),
            ])
        );

        // Converged: nothing to do, and a second pass sends nothing that changes anything.
        emu.start_recording();
        let second = converge(&clients, &ids, &desired).await;
        emu.stop_recording();
        assert!(second.is_empty(), "a converged environment plans nothing: {second:#?}");
        assert_eq!(mutating(&emu.recorded_actions()), Vec::<String>::new());
        assert_eq!(active_revisions(&ecs).await, vec![first_revision.clone()], "no new revision");

        // A new image tag alone is no infrastructure change: releases own the image.
        let mut image_only = config.clone();
        image_only.service.image_tag = "v2".into();
        let image_only = self::desired(&image_only, &deps);
        assert!(converge(&clients, &ids, &image_only).await.is_empty(), "the image belongs to releases");

        // A new variable: exactly one new revision, said to be released by the next release,
        // and never an UpdateService (AWS refuses one of the task definition on this service;
        // so does the emulator).
        let mut retagged = config.clone();
        retagged.service.environment.insert("FEATURE".into(), "on".into());
        let retagged = self::desired(&retagged, &deps);
        emu.start_recording();
        let third = converge(&clients, &ids, &retagged).await;
        emu.stop_recording();
        assert_eq!(third.changes.len(), 1, "{third:#?}");
        let Change::Update { desired: changed, diff, reason, .. } = &third.changes[0] else {
            panic!("an update: {third:#?}")
        };
        assert_eq!(changed.address, address("task-definition", "app"));
        assert!(diff.has("container") && !diff.replace(), "{diff:#?}");
        assert_eq!(reason.as_deref(), Some(UPDATE_NOTE));
        let sent = mutating(&emu.recorded_actions());
        assert_eq!(
            sent.iter().map(|a| operation(a)).collect::<Vec<_>>(),
            ["RegisterTaskDefinition"],
            "one registration and nothing else: {sent:?}"
        );
        let revisions = active_revisions(&ecs).await;
        assert_eq!(revisions.len(), 2, "the old revision stays ACTIVE for a rollback: {revisions:?}");
        assert_eq!(
            ids.get(&address("task-definition", "app")).as_deref(),
            Some(revisions[1].as_str()),
            "what references the definition from now on is the new revision"
        );
        let out = ecs.describe_services().cluster(NAME).services(NAME).send().await.unwrap();
        assert_eq!(
            out.services()[0].task_definition(),
            Some(first_revision.as_str()),
            "the service still runs the first revision: a release moves it"
        );
        let fourth = converge(&clients, &ids, &retagged).await;
        assert!(fourth.is_empty(), "the new revision is the latest: {fourth:#?}");
        assert_eq!(active_revisions(&ecs).await.len(), 2);

        // A scaling policy deleted out of band is found missing and put back.
        scaling
            .delete_scaling_policy()
            .policy_name("webapp-local-memory")
            .service_namespace(ServiceNamespace::Ecs)
            .resource_id(&resource_id)
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .send()
            .await
            .unwrap();
        let repair = converge(&clients, &ids, &retagged).await;
        assert_eq!(repair.changes.len(), 1, "{repair:#?}");
        assert!(
            matches!(&repair.changes[0], Change::Create { desired, .. } if desired.address == address("scaling-policy", "memory")),
            "{repair:#?}"
        );
        let policies = scaling
            .describe_scaling_policies()
            .service_namespace(ServiceNamespace::Ecs)
            .resource_id(&resource_id)
            .send()
            .await
            .unwrap();
        assert_eq!(policies.scaling_policies().len(), 2, "{policies:#?}");
        assert!(converge(&clients, &ids, &retagged).await.is_empty());

        // Destroy: the policies, the target, the service scaled to zero and deleted, then the
        // cluster; every revision deregistered; the log group gone.
        emu.start_recording();
        let destroy = converge(&clients, &ids, &Desired::empty("webapp", "local")).await;
        emu.stop_recording();
        assert_eq!(destroy.counts().delete, 7, "{destroy:#?}");
        let sent: Vec<String> =
            mutating(&emu.recorded_actions()).iter().map(|a| operation(a).to_string()).collect();
        let at = |op: &str| sent.iter().position(|a| a == op).unwrap_or_else(|| panic!("no {op} in {sent:?}"));
        assert!(at("DeleteScalingPolicy") < at("DeregisterScalableTarget"), "{sent:?}");
        assert!(at("DeregisterScalableTarget") < at("UpdateService"), "{sent:?}");
        assert!(at("UpdateService") < at("DeleteService"), "scaled to zero first: {sent:?}");
        assert!(at("DeleteService") < at("DeleteCluster"), "the service before its cluster: {sent:?}");
        assert_eq!(sent.iter().filter(|a| *a == "DeregisterTaskDefinition").count(), 2, "{sent:?}");

        assert!(active_revisions(&ecs).await.is_empty(), "every revision deregistered");
        let out = ecs.describe_services().cluster(NAME).services(NAME).send().await;
        if let Ok(out) = out {
            assert!(
                out.services().iter().all(|s| s.status() == Some("INACTIVE")),
                "the service is gone: {out:#?}"
            );
        }
        let out = ecs.describe_clusters().clusters(NAME).send().await.unwrap();
        assert!(out.clusters().iter().all(|c| c.status() == Some("INACTIVE")), "the cluster is gone: {out:#?}");
        let groups = logs.describe_log_groups().log_group_name_prefix("/ecs/webapp-local").send().await.unwrap();
        assert!(groups.log_groups().is_empty(), "{groups:#?}");
        let targets = scaling
            .describe_scalable_targets()
            .service_namespace(ServiceNamespace::Ecs)
            .resource_ids(&resource_id)
            .send()
            .await
            .unwrap();
        assert!(targets.scalable_targets().is_empty(), "{targets:#?}");
        assert!(observe(&clients).await.is_empty(), "nothing left to find");
        let again = converge(&clients, &ids, &Desired::empty("webapp", "local")).await;
        assert!(again.is_empty(), "{again:#?}");
    });
}

/// Every create of this part with its first answer lost (applied by the emulator, answered 500,
/// retried by the SDK): one pass converges, with no duplicate, and the next plans nothing.
#[test]
fn each_create_with_its_first_answer_lost_converges_in_one_pass() {
    let rt = runtime();
    let config = config();
    for op in [
        "CreateCluster",
        "CreateLogGroup",
        "PutRetentionPolicy",
        "RegisterTaskDefinition",
        "CreateService",
        "RegisterScalableTarget",
        "PutScalingPolicy",
    ] {
        let emu = Emulator::start();
        rt.block_on(async {
            let deps = dependencies(&emu, &config).await;
            let desired = desired(&config, &deps);
            let clients = clients(&emu).await;
            let ids = IdMap::default();
            emu.set_model(serde_json::json!({ "lose_next": { op: 1 } }));
            converge(&clients, &ids, &desired).await;
            assert_eq!(emu.model()["totals"]["lost"], serde_json::json!(1), "{op}: the answer was lost once");
            let again = converge(&clients, &ids, &desired).await;
            assert!(again.is_empty(), "{op}: converged in one pass: {again:#?}");

            let sdk = support::sdk_config(&emu, REGION).await;
            let ecs = aws_sdk_ecs::Client::new(&sdk);
            let services = ecs.list_services().cluster(NAME).send().await.unwrap();
            assert_eq!(services.service_arns().len(), 1, "{op}: one service");
            let clusters = ecs.list_clusters().send().await.unwrap();
            assert_eq!(clusters.cluster_arns().len(), 1, "{op}: one cluster");
            // RegisterTaskDefinition takes no idempotency token: a retried registration
            // leaves two identical revisions, the latest of which is the desired one.
            let revisions = active_revisions(&ecs).await.len();
            let expected = if op == "RegisterTaskDefinition" { 2 } else { 1 };
            assert_eq!(revisions, expected, "{op}: revisions");
        });
    }
}
