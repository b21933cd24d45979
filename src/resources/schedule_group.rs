//! EventBridge Scheduler schedule group, at `<primary>/drift/schedule-group/main`
//! (`{app}-{env}`), with its schedules: today one, `drift`, which runs the deployer's own image
//! as a Fargate task (`drift --env <env> --output json`) on `[drift] schedule`.
//!
//! **Schedules cannot be tagged**; the group can. So the group is the tagged resource, found by
//! its tags, and its schedules are a field of it (as a topic's subscriptions are), each compared
//! on what the deployer sets: the expression and time zone, its state, the target (the cluster,
//! the role Scheduler assumes, the task definition family, the task's subnets and security
//! group) and its retry policy.
//!
//! The schedule names the task definition **by family, without a revision** (an ARN ending in
//! `task-definition/<family>`): ECS runs the family's latest ACTIVE revision, so a new revision
//! of the drift check's task needs no schedule change.
//!
//! `CreateScheduleGroup` and `CreateSchedule` take a `ClientToken`, derived from the address and
//! the run, so a retried create is the same create. A schedule that already exists (a run that
//! died after creating it, or a create whose answer was lost) is brought to the spec with
//! `UpdateSchedule`; a group that already exists is taken only when it carries this address.
//! Deleting the group deletes its schedules.
//!
//! Discovery: `ListScheduleGroups` with the environment's prefix, `ListTagsForResource` for each
//! (one per environment), then `ListSchedules` and a `GetSchedule` per schedule of ours. ID: the
//! group's ARN.

use aws_sdk_scheduler::types::{
    AssignPublicIp, AwsVpcConfiguration, EcsParameters, FlexibleTimeWindow, FlexibleTimeWindowMode,
    LaunchType, NetworkConfiguration, RetryPolicy, ScheduleState, Tag, Target,
};
use serde::Serialize;

use super::Update;
use super::{
    Create, Ctx, Delete, Diff, Found, Kind, ObserveCtx, Readiness, Replace, Role, Scope, Spec, Tags,
    TAG_ADDRESS,
};
use crate::cloud::{AwsResultExt, Error};
use crate::spec::{Address, Ref};

/// One schedule that runs an ECS task on Fargate.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ScheduleSpec {
    pub name: String,
    pub description: String,
    /// `rate(6 hours)`, `cron(…)`.
    pub expression: String,
    pub timezone: String,
    pub enabled: bool,
    /// The cluster (its ID is its ARN).
    pub cluster: Ref,
    /// The role Scheduler assumes to run the task.
    pub role: Ref,
    /// The task definition family's ARN, without a revision.
    pub task_definition: String,
    pub subnets: Vec<Ref>,
    pub security_groups: Vec<Ref>,
    pub max_retries: i32,
    pub max_event_age_secs: i32,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ScheduleGroupSpec {
    pub name: String,
    /// By name, sorted once normalised.
    pub schedules: Vec<ScheduleSpec>,
}

fn client(clients: &crate::cloud::Clients, region: &str) -> aws_sdk_scheduler::Client {
    clients.get(region)
}

pub struct ScheduleGroup;

impl Kind for ScheduleGroup {
    type Spec = ScheduleGroupSpec;
    const NAME: &'static str = "schedule-group";
    const SCOPE: Scope = Scope::Regional;
    const TAGGED: bool = true;
    const PARTS: &'static [&'static str] = &["drift"];
    const ACTIONS: &'static [&'static str] = &[
        "scheduler:ListScheduleGroups",
        "scheduler:ListTagsForResource",
        "scheduler:ListSchedules",
        "scheduler:GetSchedule",
        "scheduler:GetScheduleGroup",
        "scheduler:CreateScheduleGroup",
        "scheduler:CreateSchedule",
        "scheduler:UpdateSchedule",
        "scheduler:DeleteSchedule",
        "scheduler:DeleteScheduleGroup",
        "scheduler:TagResource",
        "tag:GetResources",
    ];

    fn refs(spec: &mut ScheduleGroupSpec) -> Vec<(Role, &mut Ref)> {
        spec.schedules
            .iter_mut()
            .flat_map(|s| {
                [&mut s.cluster, &mut s.role]
                    .into_iter()
                    .chain(s.subnets.iter_mut())
                    .chain(s.security_groups.iter_mut())
            })
            .map(|r| (Role::Points, r))
            .collect()
    }
    fn normalize(spec: &mut ScheduleGroupSpec) {
        spec.schedules.sort_by(|a, b| a.name.cmp(&b.name));
        for s in &mut spec.schedules {
            s.subnets.sort();
            s.security_groups.sort();
        }
    }
    fn diff(desired: &ScheduleGroupSpec, observed: &ScheduleGroupSpec, d: &mut Diff) {
        diff_fields!(d, desired, observed, name: Yes, schedules: No);
    }
    fn readiness(_: &ScheduleGroupSpec, state: &str) -> Readiness {
        if state == "DELETING" {
            Readiness::Busy(state.to_lowercase())
        } else {
            Readiness::Ready
        }
    }
    fn conflicts(a: &ScheduleGroupSpec, b: &ScheduleGroupSpec) -> bool {
        a.name == b.name
    }
    async fn observe(ctx: &ObserveCtx<'_>) -> Result<Vec<Found>, Error> {
        let c = client(ctx.clients, &ctx.region);
        let groups: Vec<_> = c
            .list_schedule_groups()
            .name_prefix(format!("{}-{}", ctx.app, ctx.env))
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .op("ListScheduleGroups")?;
        // Tags from the region's tagging index; one it does not hold yet, one at a time.
        let index = if groups.is_empty() { Default::default() } else { super::tagging::tagged(ctx).await? };
        let mut found = Vec::new();
        for g in groups {
            let (Some(name), Some(arn)) = (g.name(), g.arn()) else { continue };
            let tags: Tags = match index.current(arn) {
                Some(tags) => tags.clone(),
                None => match c.list_tags_for_resource().resource_arn(arn).send().await {
                    Ok(out) => {
                        out.tags().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect()
                    }
                    Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => {
                        continue
                    }
                    Err(e) => return Err(e).op("ListTagsForResource"),
                },
            };
            if !super::is_ours(&tags, ctx.app, ctx.env) {
                continue;
            }
            let Some(address) = super::tagged_address(&tags, "schedule-group") else { continue };
            let listed: Vec<_> = c
                .list_schedules()
                .group_name(name)
                .into_paginator()
                .items()
                .send()
                .try_collect()
                .await
                .op("ListSchedules")?;
            let mut schedules = Vec::new();
            for s in listed {
                let Some(schedule_name) = s.name() else { continue };
                match c.get_schedule().group_name(name).name(schedule_name).send().await {
                    Ok(out) => schedules.push(schedule_of(&out)),
                    Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => {}
                    Err(e) => return Err(e).op("GetSchedule"),
                }
            }
            found.push(Found {
                address,
                id: arn.to_string(),
                spec: Spec::ScheduleGroup(ScheduleGroupSpec { name: name.to_string(), schedules }),
                tags,
                state: g.state().map(|s| s.as_str().to_string()).unwrap_or_else(|| "ACTIVE".into()),
                attrs: Default::default(),
            });
        }
        Ok(found)
    }
    async fn create(ctx: &Ctx<'_>, new: Create<'_, ScheduleGroupSpec>) -> Result<String, Error> {
        let Create { address, spec, tags } = new;
        let c = client(ctx.clients, address.region());
        let arn = match c
            .create_schedule_group()
            .name(&spec.name)
            .set_tags(Some(sdk_tags(tags)))
            .client_token(super::ec2::client_token(address, tags))
            .send()
            .await
        {
            Ok(out) => out.schedule_group_arn().to_string(),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conflict_exception()) => {
                // Ours from an interrupted run, or someone else's.
                let group = c.get_schedule_group().name(&spec.name).send().await.op("GetScheduleGroup")?;
                let arn = group.arn().unwrap_or_default().to_string();
                let theirs =
                    c.list_tags_for_resource().resource_arn(&arn).send().await.op("ListTagsForResource")?;
                if !theirs.tags().iter().any(|t| t.key() == TAG_ADDRESS && t.value() == address.as_str()) {
                    return Err(Error::InvalidState(format!(
                        "a schedule group named {} already exists and is not this environment's {address}",
                        spec.name
                    )));
                }
                arn
            }
            Err(e) => return Err(e).op("CreateScheduleGroup"),
        };
        for s in &spec.schedules {
            put_schedule(ctx, address, &spec.name, s, true).await?;
        }
        Ok(arn)
    }
    async fn update(ctx: &Ctx<'_>, change: Update<'_, ScheduleGroupSpec>) -> Result<(), Error> {
        let Update { address, desired, observed, .. } = change;
        for s in &desired.schedules {
            match observed.schedules.iter().find(|o| o.name == s.name) {
                Some(o) if o == s => {}
                Some(_) => put_schedule(ctx, address, &desired.name, s, false).await?,
                None => put_schedule(ctx, address, &desired.name, s, true).await?,
            }
        }
        let c = client(ctx.clients, address.region());
        for o in observed.schedules.iter().filter(|o| !desired.schedules.iter().any(|s| s.name == o.name)) {
            match c.delete_schedule().group_name(&desired.name).name(&o.name).send().await {
                Ok(_) => {}
                Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => {}
                Err(e) => return Err(e).op("DeleteSchedule"),
            }
        }
        Ok(())
    }
    async fn delete(ctx: &Ctx<'_>, gone: Delete<'_, ScheduleGroupSpec>) -> Result<(), Error> {
        let Delete { address, id, .. } = gone;
        // Its schedules go with it.
        let name = id.rsplit_once("schedule-group/").map_or(id, |(_, n)| n);
        match client(ctx.clients, address.region()).delete_schedule_group().name(name).send().await {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => Ok(()),
            Err(e) => Err(e).op("DeleteScheduleGroup"),
        }
    }
    async fn repair_tags(ctx: &Ctx<'_>, address: &Address, id: &str, missing: &Tags) -> Result<(), Error> {
        client(ctx.clients, address.region())
            .tag_resource()
            .resource_arn(id)
            .set_tags(Some(sdk_tags(missing)))
            .send()
            .await
            .op("TagResource")?;
        Ok(())
    }
}

fn sdk_tags(tags: &Tags) -> Vec<Tag> {
    tags.iter().filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok()).collect()
}

fn schedule_of(s: &aws_sdk_scheduler::operation::get_schedule::GetScheduleOutput) -> ScheduleSpec {
    let target = s.target();
    let ecs = target.and_then(|t| t.ecs_parameters());
    let vpc = ecs.and_then(|e| e.network_configuration()).and_then(|n| n.awsvpc_configuration());
    let ids = |v: &[String]| v.iter().map(|i| Ref::Id(i.clone())).collect::<Vec<_>>();
    ScheduleSpec {
        name: s.name().unwrap_or_default().to_string(),
        description: s.description().unwrap_or_default().to_string(),
        expression: s.schedule_expression().unwrap_or_default().to_string(),
        timezone: s.schedule_expression_timezone().unwrap_or("UTC").to_string(),
        enabled: s.state() != Some(&ScheduleState::Disabled),
        cluster: Ref::Id(target.map(|t| t.arn().to_string()).unwrap_or_default()),
        role: Ref::Id(target.map(|t| t.role_arn().to_string()).unwrap_or_default()),
        task_definition: ecs.map(|e| e.task_definition_arn().to_string()).unwrap_or_default(),
        subnets: vpc.map(|v| ids(v.subnets())).unwrap_or_default(),
        security_groups: vpc.map(|v| ids(v.security_groups())).unwrap_or_default(),
        max_retries: target
            .and_then(|t| t.retry_policy())
            .and_then(|r| r.maximum_retry_attempts())
            .unwrap_or(185),
        max_event_age_secs: target
            .and_then(|t| t.retry_policy())
            .and_then(|r| r.maximum_event_age_in_seconds())
            .unwrap_or(86400),
    }
}

/// Creates (`create`) or updates the schedule to `s`; a create that finds it already there
/// updates it (a run that died after creating it, or a lost answer).
async fn put_schedule(
    ctx: &Ctx<'_>,
    address: &Address,
    group: &str,
    s: &ScheduleSpec,
    create: bool,
) -> Result<(), Error> {
    let c = client(ctx.clients, address.region());
    let ids = |refs: &[Ref]| refs.iter().map(|r| ctx.id(r)).collect::<Result<Vec<_>, _>>();
    let vpc = AwsVpcConfiguration::builder()
        .set_subnets(Some(ids(&s.subnets)?))
        .set_security_groups(Some(ids(&s.security_groups)?))
        .assign_public_ip(AssignPublicIp::Disabled)
        .build()
        .map_err(|e| Error::InvalidRequest(e.to_string()))?;
    let ecs = EcsParameters::builder()
        .task_definition_arn(&s.task_definition)
        .task_count(1)
        .launch_type(LaunchType::Fargate)
        .network_configuration(NetworkConfiguration::builder().awsvpc_configuration(vpc).build())
        .build()
        .map_err(|e| Error::InvalidRequest(e.to_string()))?;
    let target = Target::builder()
        .arn(ctx.id(&s.cluster)?)
        .role_arn(ctx.id(&s.role)?)
        .ecs_parameters(ecs)
        .retry_policy(
            RetryPolicy::builder()
                .maximum_retry_attempts(s.max_retries)
                .maximum_event_age_in_seconds(s.max_event_age_secs)
                .build(),
        )
        .build()
        .map_err(|e| Error::InvalidRequest(e.to_string()))?;
    let window = FlexibleTimeWindow::builder()
        .mode(FlexibleTimeWindowMode::Off)
        .build()
        .map_err(|e| Error::InvalidRequest(e.to_string()))?;
    let state = if s.enabled { ScheduleState::Enabled } else { ScheduleState::Disabled };
    if create {
        let schedule =
            Address::new(address.region(), address.tier(), "schedule", &format!("{group}/{}", s.name));
        let token = super::ec2::client_token(&schedule, &Tags::new());
        match c
            .create_schedule()
            .group_name(group)
            .name(&s.name)
            .description(&s.description)
            .schedule_expression(&s.expression)
            .schedule_expression_timezone(&s.timezone)
            .state(state.clone())
            .flexible_time_window(window.clone())
            .target(target.clone())
            .client_token(token)
            .send()
            .await
        {
            Ok(_) => return Ok(()),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conflict_exception()) => {}
            Err(e) => return Err(e).op("CreateSchedule"),
        }
    }
    c.update_schedule()
        .group_name(group)
        .name(&s.name)
        .description(&s.description)
        .schedule_expression(&s.expression)
        .schedule_expression_timezone(&s.timezone)
        .state(state)
        .flexible_time_window(window)
        .target(target)
        .send()
        .await
        .op("UpdateSchedule")?;
    Ok(())
}
