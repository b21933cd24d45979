//! CodeDeploy deployment group `{app}-{env}` (the application is its parent), at
//! `<region>/release/deployment-group/main`: ECS blue/green with traffic control for the
//! environment's service — its cluster and service, the blue/green target group pair, the
//! production (443) and test listeners — the CodeDeploy role, the deployment configuration,
//! the old task set terminated `release.termination_wait_minutes` after success, automatic
//! rollback on failure and on alarm, and the alarms it watches.
//!
//! Discovery: one `BatchGetDeploymentGroups` of the environment's application, for the group
//! named as the application (the only name the deployer gives one) and any other group the
//! region's tagging index holds there; tags from the index (else `ListTagsForResource`).
//! moto 5.2.5 answers `BatchGetDeploymentGroups`, `UpdateDeploymentGroup` and the deletes with
//! HTTP 500 and drops the alarm configuration; the emulator's `tests/emulator/codedeploy.py`
//! does them as AWS does.
//! ID: its ARN.

use aws_sdk_codedeploy::types::{
    Alarm, AlarmConfiguration, AutoRollbackConfiguration, AutoRollbackEvent,
    BlueGreenDeploymentConfiguration, BlueInstanceTerminationOption, DeploymentGroupInfo, DeploymentOption,
    DeploymentReadyAction, DeploymentReadyOption, DeploymentStyle, DeploymentType, EcsService,
    InstanceAction, LoadBalancerInfo, TargetGroupInfo, TargetGroupPairInfo, TrafficRoute,
};
use serde::Serialize;

use super::codedeploy;
use super::codedeploy::{arn, client, observed_tags, sdk_tags, tags_of};
use super::{
    Create, Ctx, Delete, Diff, Found, Kind, ObserveCtx, Replace, Role, Scope, Spec, Tags, Update, TAG_ADDRESS,
};
use crate::cloud::{AwsResultExt, Error};
use crate::spec::{Address, Ref};

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DeploymentGroupSpec {
    /// The application's name.
    pub app: String,
    pub name: String,
    pub service_role: Ref,
    /// The cluster's and service's names. Names, not references: CodeDeploy reports names,
    /// and the same names are used in every region and by several kinds.
    pub cluster: String,
    pub service: String,
    /// The target group pair's names; sorted once normalised.
    pub target_groups: Vec<String>,
    pub prod_listener: Ref,
    pub test_listener: Ref,
    pub deployment_config: String,
    pub termination_wait_minutes: i32,
    /// Sorted once normalised.
    pub auto_rollback_events: Vec<String>,
    /// The names of the alarms it watches; sorted once normalised.
    pub alarms: Vec<String>,
    /// What it names by name (application, cluster, service, target groups, alarms): it is
    /// created after them. Ordering only (not compared).
    pub after: Vec<Ref>,
}

pub struct DeploymentGroup;

impl Kind for DeploymentGroup {
    type Spec = DeploymentGroupSpec;
    const NAME: &'static str = "deployment-group";
    const SCOPE: Scope = Scope::Regional;
    const TAGGED: bool = true;
    const PARTS: &'static [&'static str] = &["service"];
    const ACTIONS: &'static [&'static str] = &[
        "codedeploy:TagResource",
        "codedeploy:BatchGetDeploymentGroups",
        "codedeploy:CreateDeploymentGroup",
        "codedeploy:UpdateDeploymentGroup",
        "codedeploy:DeleteDeploymentGroup",
        "tag:GetResources",
    ];

    fn refs(spec: &mut DeploymentGroupSpec) -> Vec<(Role, &mut Ref)> {
        let mut refs = vec![
            (Role::Points, &mut spec.service_role),
            (Role::Points, &mut spec.prod_listener),
            (Role::Points, &mut spec.test_listener),
        ];
        refs.extend(spec.after.iter_mut().map(|r| (Role::Points, r)));
        refs
    }
    fn normalize(spec: &mut DeploymentGroupSpec) {
        spec.target_groups.sort();
        spec.auto_rollback_events.sort();
        spec.alarms.sort();
    }
    fn diff(desired: &DeploymentGroupSpec, observed: &DeploymentGroupSpec, d: &mut Diff) {
        diff_fields!(d, desired, observed, app: Yes, name: Yes, service_role: No);
        // AWS cannot move a group to another service: only a new group can.
        diff_fields!(d, desired, observed,
            cluster: Yes, service: Yes, target_groups: No, prod_listener: No, test_listener: No,
            deployment_config: No, termination_wait_minutes: No, auto_rollback_events: No, alarms: No,
        );
    }
    fn conflicts(a: &DeploymentGroupSpec, b: &DeploymentGroupSpec) -> bool {
        a.app == b.app && a.name == b.name
    }
    async fn observe(ctx: &ObserveCtx<'_>) -> Result<Vec<Found>, Error> {
        let client = client(ctx.clients, &ctx.region);
        let app = format!("{}-{}", ctx.app, ctx.env);
        // The environment's group is named as its application, and any other group there that
        // carries the environment's tags is in the region's tagging index: one
        // BatchGetDeploymentGroups reads them all, with no ListDeploymentGroups first. A name
        // with no group (none yet, or the index still holds one that is gone) is no error: its
        // API reference lists no DeploymentGroupDoesNotExistException, and says so in the
        // answer's `errorMessage` ("information about errors that might have occurred").
        let index = super::tagging::tagged(ctx).await?;
        let in_app = format!(":deploymentgroup:{app}/");
        let mut names: std::collections::BTreeSet<String> = index
            .arns_of("codedeploy")
            .filter_map(|arn| arn.split_once(&in_app).map(|(_, name)| name.to_string()))
            .collect();
        names.insert(app.clone());
        let out = match client
            .batch_get_deployment_groups()
            .application_name(&app)
            .set_deployment_group_names(Some(names.into_iter().collect()))
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|e| e.is_application_does_not_exist_exception()) => {
                return Ok(vec![])
            }
            Err(e) => return Err(e).op("BatchGetDeploymentGroups"),
        };
        let mut found = Vec::new();
        for g in out.deployment_groups_info() {
            let name = g.deployment_group_name().unwrap_or_default();
            let tags = observed_tags(
                ctx,
                &client,
                &arn(ctx.clients, &ctx.region, &format!("deploymentgroup:{app}/{name}")).await?,
            )
            .await?;
            if !super::is_ours(&tags, ctx.app, ctx.env) {
                continue;
            }
            let Some(address) = super::tagged_address(&tags, "deployment-group") else { continue };
            found.push(Found {
                address,
                id: arn(ctx.clients, &ctx.region, &format!("deploymentgroup:{app}/{name}")).await?,
                spec: Spec::DeploymentGroup(spec_of(g)),
                tags,
                state: String::new(),
                attrs: Default::default(),
            });
        }
        Ok(found)
    }
    async fn create(ctx: &Ctx<'_>, new: Create<'_, DeploymentGroupSpec>) -> Result<String, Error> {
        let Create { address, spec, tags } = new;
        let region = address.region();
        let client = client(ctx.clients, region);
        let app = &spec.app;
        let p = parts(ctx, spec)?;
        let created = client
            .create_deployment_group()
            .application_name(app)
            .deployment_group_name(&spec.name)
            .service_role_arn(p.role)
            .deployment_config_name(&spec.deployment_config)
            .ecs_services(p.service)
            .load_balancer_info(p.load_balancer)
            .deployment_style(p.style)
            .blue_green_deployment_configuration(p.blue_green)
            .auto_rollback_configuration(p.rollback)
            .alarm_configuration(p.alarms)
            .set_tags(Some(sdk_tags(tags)))
            .send()
            .await
            .op_unless("CreateDeploymentGroup", |e| e.is_deployment_group_already_exists_exception())?;
        let resource = arn(ctx.clients, region, &format!("deploymentgroup:{app}/{}", spec.name)).await?;
        if created.is_none() {
            if tags_of(&client, &resource).await?.get(TAG_ADDRESS).map(String::as_str)
                != Some(address.as_str())
            {
                return Err(Error::InvalidState(format!(
                    "a deployment group named {} already exists in {app} and is not this environment's {address}",
                    spec.name
                )));
            }
            update(ctx, region, spec).await?;
        }
        Ok(resource)
    }
    async fn update(ctx: &Ctx<'_>, change: Update<'_, DeploymentGroupSpec>) -> Result<(), Error> {
        let Update { address, desired, .. } = change;
        update(ctx, address.region(), desired).await
    }
    async fn delete(ctx: &Ctx<'_>, gone: Delete<'_, DeploymentGroupSpec>) -> Result<(), Error> {
        let Delete { address, observed, .. } = gone;
        client(ctx.clients, address.region())
            .delete_deployment_group()
            .application_name(&observed.app)
            .deployment_group_name(&observed.name)
            .send()
            .await
            // Its application gone (deleted with its groups) means the group is too.
            .op_or_gone("DeleteDeploymentGroup", |e| {
                aws_smithy_types::error::metadata::ProvideErrorMetadata::code(e)
                    == Some("ApplicationDoesNotExistException")
            })?;
        Ok(())
    }
    async fn repair_tags(ctx: &Ctx<'_>, address: &Address, id: &str, missing: &Tags) -> Result<(), Error> {
        codedeploy::tag_resource(ctx.clients, address.region(), id, missing).await
    }
}

fn spec_of(g: &DeploymentGroupInfo) -> DeploymentGroupSpec {
    let pair = g.load_balancer_info().and_then(|l| l.target_group_pair_info_list().first());
    let first_listener = |route: Option<&TrafficRoute>| {
        Ref::Id(route.and_then(|r| r.listener_arns().first()).cloned().unwrap_or_default())
    };
    let service = g.ecs_services().first();
    DeploymentGroupSpec {
        app: g.application_name().unwrap_or_default().to_string(),
        name: g.deployment_group_name().unwrap_or_default().to_string(),
        service_role: Ref::Id(g.service_role_arn().unwrap_or_default().to_string()),
        cluster: service.and_then(|s| s.cluster_name()).unwrap_or_default().to_string(),
        service: service.and_then(|s| s.service_name()).unwrap_or_default().to_string(),
        target_groups: pair
            .map(|p| p.target_groups().iter().filter_map(|t| t.name()).map(str::to_string).collect())
            .unwrap_or_default(),
        prod_listener: first_listener(pair.and_then(|p| p.prod_traffic_route())),
        test_listener: first_listener(pair.and_then(|p| p.test_traffic_route())),
        deployment_config: g.deployment_config_name().unwrap_or_default().to_string(),
        termination_wait_minutes: g
            .blue_green_deployment_configuration()
            .and_then(|b| b.terminate_blue_instances_on_deployment_success())
            .map(|t| t.termination_wait_time_in_minutes())
            .unwrap_or_default(),
        auto_rollback_events: g
            .auto_rollback_configuration()
            .filter(|a| a.enabled())
            .map(|a| a.events().iter().map(|e| e.as_str().to_string()).collect())
            .unwrap_or_default(),
        alarms: g
            .alarm_configuration()
            .filter(|a| a.enabled())
            .map(|a| a.alarms().iter().filter_map(|x| x.name()).map(str::to_string).collect())
            .unwrap_or_default(),
        after: vec![],
    }
}

/// The request's parts, references resolved.
struct Parts {
    role: String,
    service: EcsService,
    load_balancer: LoadBalancerInfo,
    style: DeploymentStyle,
    blue_green: BlueGreenDeploymentConfiguration,
    rollback: AutoRollbackConfiguration,
    alarms: AlarmConfiguration,
}

fn parts(ctx: &Ctx<'_>, spec: &DeploymentGroupSpec) -> Result<Parts, Error> {
    let route = |r: &Ref| -> Result<TrafficRoute, Error> {
        Ok(TrafficRoute::builder().listener_arns(ctx.id(r)?).build())
    };
    let groups = spec.target_groups.iter().map(|t| TargetGroupInfo::builder().name(t).build()).collect();
    let alarms: Vec<Alarm> = spec.alarms.iter().map(|a| Alarm::builder().name(a).build()).collect();
    Ok(Parts {
        role: ctx.id(&spec.service_role)?,
        service: EcsService::builder().cluster_name(&spec.cluster).service_name(&spec.service).build(),
        load_balancer: LoadBalancerInfo::builder()
            .target_group_pair_info_list(
                TargetGroupPairInfo::builder()
                    .set_target_groups(Some(groups))
                    .prod_traffic_route(route(&spec.prod_listener)?)
                    .test_traffic_route(route(&spec.test_listener)?)
                    .build(),
            )
            .build(),
        style: DeploymentStyle::builder()
            .deployment_type(DeploymentType::BlueGreen)
            .deployment_option(DeploymentOption::WithTrafficControl)
            .build(),
        blue_green: BlueGreenDeploymentConfiguration::builder()
            .deployment_ready_option(
                DeploymentReadyOption::builder()
                    .action_on_timeout(DeploymentReadyAction::ContinueDeployment)
                    .build(),
            )
            .terminate_blue_instances_on_deployment_success(
                BlueInstanceTerminationOption::builder()
                    .action(InstanceAction::Terminate)
                    .termination_wait_time_in_minutes(spec.termination_wait_minutes)
                    .build(),
            )
            .build(),
        rollback: AutoRollbackConfiguration::builder()
            .enabled(!spec.auto_rollback_events.is_empty())
            .set_events(Some(
                spec.auto_rollback_events.iter().map(|e| AutoRollbackEvent::from(e.as_str())).collect(),
            ))
            .build(),
        alarms: AlarmConfiguration::builder().enabled(!alarms.is_empty()).set_alarms(Some(alarms)).build(),
    })
}

/// `UpdateDeploymentGroup` with every managed field: it replaces each it is given, so a repeat
/// is harmless.
async fn update(ctx: &Ctx<'_>, region: &str, desired: &DeploymentGroupSpec) -> Result<(), Error> {
    let p = parts(ctx, desired)?;
    client(ctx.clients, region)
        .update_deployment_group()
        .application_name(&desired.app)
        .current_deployment_group_name(&desired.name)
        .service_role_arn(p.role)
        .deployment_config_name(&desired.deployment_config)
        .ecs_services(p.service)
        .load_balancer_info(p.load_balancer)
        .deployment_style(p.style)
        .blue_green_deployment_configuration(p.blue_green)
        .auto_rollback_configuration(p.rollback)
        .alarm_configuration(p.alarms)
        .send()
        .await
        .op("UpdateDeploymentGroup")?;
    Ok(())
}
