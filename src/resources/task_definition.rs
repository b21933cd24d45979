//! ECS task definition (family `{app}-{env}`), at `<region>/service/task-definition/app`:
//! Fargate, `awsvpc`, the task size and CPU architecture, the execution and task roles, and the
//! one application container: the image `<repository URI>:<tag>`, its port, awslogs logging,
//! plain environment variables, secrets by `valueFrom` only (the database's master secret's JSON
//! keys and the secrets named in `[service.secrets]`), a health check, a read-only root file
//! system and a non-root user.
//!
//! Task definitions are immutable revisions. The spec is compared with the family's latest
//! ACTIVE revision, on the fields the deployer sets (AWS's defaults for the others are not read),
//! so an unchanged definition registers nothing. **The image is not compared**: which image runs
//! belongs to releases (`service.image_tag`, or `up --image` for one run; `src/release/`), which
//! register a revision with the new image themselves. So a CI pipeline that releases with
//! `--image $SHA` leaves nothing for a scheduled `drift` to report. Any other change registers a
//! new revision (with the desired image): an update
//! whose plan says "new revision registered; released by the next release" — on a service under
//! the CodeDeploy controller a revision reaches the tasks only through a deployment, never by
//! `UpdateService`. Older revisions stay ACTIVE: a rollback deploys them. `destroy` deregisters
//! every ACTIVE revision of the family.
//!
//! The same kind holds the scheduled drift check's task (family `{app}-{env}-drift`, at
//! `<primary>/drift/task-definition/drift`, `model/drift.rs`): no port, a command of its own,
//! and an image that is the configuration's (`[drift] image`), so it is compared
//! (`image_released: false`); a new revision of it is what the next scheduled run starts.
//!
//! Discovery: one `DescribeTaskDefinition` per family (its latest ACTIVE revision, with tags).
//! ID: the revision's ARN.

use std::collections::BTreeMap;

use aws_sdk_ecs::types::{
    Compatibility, ContainerDefinition, CpuArchitecture, HealthCheck, KeyValuePair, LogConfiguration,
    LogDriver, NetworkMode, OsFamily, PortMapping, RuntimePlatform, Secret,
    TaskDefinition as SdkTaskDefinition, TaskDefinitionField, TaskDefinitionStatus, TransportProtocol,
};
use serde::Serialize;

use super::ecs;
use super::ecs::{sdk_tags, tags_of};
use super::is_ours;
use super::Update;
use super::{attr, Create, Ctx, Delete, Diff, Found, Kind, ObserveCtx, Replace, Role, Scope, Spec, Tags};
use crate::cloud::{AwsResultExt, Error};
use crate::spec::{Address, Ref};

/// The environment variables whose value is a reference (an attribute of another resource).
pub const REFERENCED_ENV: &[&str] = &["DB_HOST"];

/// The drift check's family is `{app}-{env}-drift` (see `model/drift.rs`).
pub const DRIFT_FAMILY_SUFFIX: &str = "-drift";

pub const UPDATE_NOTE: &str = "new revision registered; released by the next release";

/// The drift check's: the schedule runs the family's latest revision.
pub const DRIFT_UPDATE_NOTE: &str = "new revision registered; the next scheduled check runs it";

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ContainerSpec {
    pub name: String,
    pub image: String,
    /// The port it listens on; `None` for a task that serves nothing (the drift check).
    pub port: Option<i32>,
    /// The command, when not the image's own (`drift --env prod --output json`).
    pub command: Vec<String>,
    /// Plain values.
    pub environment: BTreeMap<String, String>,
    /// Values that are attributes of other resources (`DB_HOST`: the database's endpoint); kept
    /// apart so that a plain value is never mistaken for a reference.
    pub referenced_environment: BTreeMap<String, Ref>,
    /// Variable → `valueFrom` (a secret's ARN with a JSON key, or a secret's name).
    pub secrets: BTreeMap<String, Ref>,
    pub health_check: Vec<String>,
    pub read_only_root_filesystem: bool,
    pub user: Option<String>,
    pub log_group: String,
    pub log_region: String,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TaskDefinitionSpec {
    pub family: String,
    pub cpu: String,
    pub memory: String,
    pub cpu_architecture: String,
    pub execution_role: Ref,
    pub task_role: Ref,
    pub container: ContainerSpec,
    /// The image belongs to releases (the application's family), so it is not compared; the
    /// drift check's image is the configuration's and is.
    #[serde(skip)]
    pub image_released: bool,
}

pub fn diff(desired: &TaskDefinitionSpec, observed: &TaskDefinitionSpec, d: &mut Diff) {
    diff_fields!(d, desired, observed,
        family: Yes, cpu: No, memory: No, cpu_architecture: No, execution_role: No, task_role: No,
    );
    let (mut want, mut have) = (desired.container.clone(), observed.container.clone());
    if desired.image_released {
        want.image.clear();
        have.image.clear();
    }
    d.field("container", &want, &have, Replace::No);
    if !d.is_empty() {
        d.note(if desired.image_released { UPDATE_NOTE } else { DRIFT_UPDATE_NOTE });
    }
}

pub struct TaskDefinition;

impl Kind for TaskDefinition {
    type Spec = TaskDefinitionSpec;
    const NAME: &'static str = "task-definition";
    const SCOPE: Scope = Scope::Regional;
    const TAGGED: bool = true;
    const PARTS: &'static [&'static str] = &["service"];
    const ACTIONS: &'static [&'static str] = &[
        "secretsmanager:DescribeSecret",
        "ecs:TagResource",
        "ecs:DescribeTaskDefinition",
        "ecs:RegisterTaskDefinition",
        "ecs:ListTaskDefinitions",
        "ecs:DeregisterTaskDefinition",
    ];

    fn refs(spec: &mut TaskDefinitionSpec) -> Vec<(Role, &mut Ref)> {
        let mut refs = vec![(Role::Points, &mut spec.execution_role), (Role::Points, &mut spec.task_role)];
        refs.extend(spec.container.referenced_environment.values_mut().map(|r| (Role::Points, r)));
        refs.extend(spec.container.secrets.values_mut().map(|r| (Role::Points, r)));
        refs
    }
    fn diff(desired: &TaskDefinitionSpec, observed: &TaskDefinitionSpec, d: &mut Diff) {
        diff(desired, observed, d)
    }
    async fn observe(ctx: &ObserveCtx<'_>) -> Result<Vec<Found>, Error> {
        let client: aws_sdk_ecs::Client = ctx.clients.get(&ctx.region);
        let base = format!("{}-{}", ctx.app, ctx.env);
        let families = [base.clone(), format!("{base}{DRIFT_FAMILY_SUFFIX}")];
        let described = futures::future::try_join_all(families.iter().map(|f| describe(&client, f))).await?;
        let mut found = Vec::new();
        for (family, described) in families.into_iter().zip(described) {
            let Some((td, tags)) = described else { continue };
            if !is_ours(&tags, ctx.app, ctx.env) {
                continue;
            }
            let Some(address) = super::tagged_address(&tags, "task-definition") else { continue };
            found.push(Found {
                address,
                id: td.task_definition_arn().unwrap_or_default().to_string(),
                spec: Spec::TaskDefinition(spec_of(&td)),
                tags,
                state: format!("revision {}", td.revision()),
                attrs: [(attr::NAME, family)].into(),
            });
        }
        Ok(found)
    }
    async fn create(ctx: &Ctx<'_>, new: Create<'_, TaskDefinitionSpec>) -> Result<String, Error> {
        let Create { address, spec, tags } = new;
        register(ctx, address, spec, tags).await
    }
    async fn update(ctx: &Ctx<'_>, change: Update<'_, TaskDefinitionSpec>) -> Result<(), Error> {
        let Update { address, desired, diff, tags, .. } = change;
        // Only the tags differ: a new revision would be a change to the tasks for nothing.
        if diff.fields.iter().all(|f| f.field.starts_with("tags.")) {
            return Ok(());
        }
        let arn = register(ctx, address, desired, tags).await?;
        // What references the definition from now on is the new revision.
        ctx.ids.insert(address.clone(), arn);
        Ok(())
    }
    async fn delete(ctx: &Ctx<'_>, gone: Delete<'_, TaskDefinitionSpec>) -> Result<(), Error> {
        let Delete { address, id, observed } = gone;
        deregister_all(ctx, address.region(), id, &observed.family).await
    }
    async fn repair_tags(ctx: &Ctx<'_>, address: &Address, id: &str, missing: &Tags) -> Result<(), Error> {
        ecs::tag_resource(ctx.clients, address.region(), id, missing).await
    }
}

/// The family's latest ACTIVE revision and its tags; `None` when the family has none.
pub(crate) async fn describe(
    client: &aws_sdk_ecs::Client,
    family: &str,
) -> Result<Option<(SdkTaskDefinition, Tags)>, Error> {
    let out = client
        .describe_task_definition()
        .task_definition(family)
        .include(TaskDefinitionField::Tags)
        .send()
        .await;
    match out {
        Ok(out) => Ok(out
            .task_definition()
            .filter(|td| td.status() == Some(&TaskDefinitionStatus::Active))
            .map(|td| (td.clone(), tags_of(out.tags())))),
        // ECS answers a family with no revision with a ClientException.
        Err(e) if e.as_service_error().is_some_and(|e| e.is_client_exception()) => Ok(None),
        Err(e) => Err(e).op("DescribeTaskDefinition"),
    }
}

pub(crate) fn spec_of(td: &SdkTaskDefinition) -> TaskDefinitionSpec {
    let c = td.container_definitions().first();
    let mut environment = BTreeMap::new();
    let mut referenced_environment = BTreeMap::new();
    for kv in c.map(|c| c.environment()).unwrap_or_default() {
        let (Some(name), Some(value)) = (kv.name(), kv.value()) else { continue };
        if REFERENCED_ENV.contains(&name) {
            referenced_environment.insert(name.to_string(), Ref::Id(value.to_string()));
        } else {
            environment.insert(name.to_string(), value.to_string());
        }
    }
    let log = c
        .and_then(|c| c.log_configuration())
        .map(|l| l.options().cloned().unwrap_or_default())
        .unwrap_or_default();
    TaskDefinitionSpec {
        family: td.family().unwrap_or_default().to_string(),
        cpu: td.cpu().unwrap_or_default().to_string(),
        memory: td.memory().unwrap_or_default().to_string(),
        cpu_architecture: td
            .runtime_platform()
            .and_then(|p| p.cpu_architecture())
            .map(|a| a.as_str().to_string())
            .unwrap_or_else(|| "X86_64".into()),
        execution_role: Ref::Id(td.execution_role_arn().unwrap_or_default().to_string()),
        task_role: Ref::Id(td.task_role_arn().unwrap_or_default().to_string()),
        container: ContainerSpec {
            name: c.and_then(|c| c.name()).unwrap_or_default().to_string(),
            image: c.and_then(|c| c.image()).unwrap_or_default().to_string(),
            port: c.and_then(|c| c.port_mappings().first()).and_then(|p| p.container_port()),
            command: c.map(|c| c.command().to_vec()).unwrap_or_default(),
            environment,
            referenced_environment,
            secrets: c
                .map(|c| c.secrets())
                .unwrap_or_default()
                .iter()
                .map(|s| (s.name().to_string(), Ref::Id(s.value_from().to_string())))
                .collect(),
            health_check: c.and_then(|c| c.health_check()).map(|h| h.command().to_vec()).unwrap_or_default(),
            read_only_root_filesystem: c.and_then(|c| c.readonly_root_filesystem()).unwrap_or(false),
            user: c.and_then(|c| c.user()).map(str::to_string),
            log_group: log.get("awslogs-group").cloned().unwrap_or_default(),
            log_region: log.get("awslogs-region").cloned().unwrap_or_default(),
        },
        // The observed side's word does not count: the desired spec says who owns the image.
        image_released: false,
    }
}

/// Registers a revision, tagged. `RegisterTaskDefinition` takes no idempotency token: a
/// register whose answer was lost and that the SDK retried makes two identical revisions, the
/// latest of which matches the spec, so the next plan is empty and nothing is lost.
pub(crate) async fn register(
    ctx: &Ctx<'_>,
    address: &Address,
    spec: &TaskDefinitionSpec,
    tags: &Tags,
) -> Result<String, Error> {
    let client: aws_sdk_ecs::Client = ctx.clients.get(address.region());
    let c = &spec.container;
    let mut environment = Vec::new();
    for (name, value) in &c.environment {
        environment.push(KeyValuePair::builder().name(name).value(value).build());
    }
    for (name, value) in &c.referenced_environment {
        environment.push(KeyValuePair::builder().name(name).value(ctx.id(value)?).build());
    }
    let secrets = c
        .secrets
        .iter()
        .map(|(name, from)| {
            Secret::builder()
                .name(name)
                .value_from(ctx.id(from)?)
                .build()
                .map_err(|e| Error::InvalidRequest(e.to_string()))
        })
        .collect::<Result<Vec<_>, Error>>()?;
    let container =
        ContainerDefinition::builder()
            .name(&c.name)
            .image(&c.image)
            .essential(true)
            .set_port_mappings(c.port.map(|p| {
                vec![PortMapping::builder().container_port(p).protocol(TransportProtocol::Tcp).build()]
            }))
            .set_command((!c.command.is_empty()).then(|| c.command.clone()))
            .set_environment(Some(environment))
            .set_secrets(Some(secrets))
            .set_health_check(if c.health_check.is_empty() {
                None
            } else {
                Some(
                    HealthCheck::builder()
                        .set_command(Some(c.health_check.clone()))
                        .interval(30)
                        .timeout(5)
                        .retries(3)
                        .start_period(60)
                        .build()
                        .map_err(|e| Error::InvalidRequest(e.to_string()))?,
                )
            })
            .readonly_root_filesystem(c.read_only_root_filesystem)
            .set_user(c.user.clone())
            .log_configuration(
                LogConfiguration::builder()
                    .log_driver(LogDriver::Awslogs)
                    .options("awslogs-group", &c.log_group)
                    .options("awslogs-region", &c.log_region)
                    .options("awslogs-stream-prefix", &c.name)
                    .build()
                    .map_err(|e| Error::InvalidRequest(e.to_string()))?,
            )
            .build();
    let out = client
        .register_task_definition()
        .family(&spec.family)
        .network_mode(NetworkMode::Awsvpc)
        .requires_compatibilities(Compatibility::Fargate)
        .cpu(&spec.cpu)
        .memory(&spec.memory)
        .runtime_platform(
            RuntimePlatform::builder()
                .operating_system_family(OsFamily::Linux)
                .cpu_architecture(CpuArchitecture::from(spec.cpu_architecture.as_str()))
                .build(),
        )
        .execution_role_arn(ctx.id(&spec.execution_role)?)
        .task_role_arn(ctx.id(&spec.task_role)?)
        .container_definitions(container)
        .set_tags(Some(sdk_tags(tags)))
        .send()
        .await
        .op("RegisterTaskDefinition")?;
    ctx.ids.set_attr(address, attr::NAME, spec.family.clone());
    out.task_definition()
        .and_then(|td| td.task_definition_arn())
        .map(str::to_string)
        .ok_or_else(|| Error::InvalidState("RegisterTaskDefinition returned no ARN".into()))
}

/// Deregisters every ACTIVE revision of the family (only this family: a prefix also lists
/// `<family>2`'s).
async fn deregister_all(ctx: &Ctx<'_>, region: &str, id: &str, family: &str) -> Result<(), Error> {
    let client: aws_sdk_ecs::Client = ctx.clients.get(region);
    let family = if family.is_empty() { family_of(id) } else { family.to_string() };
    let arns: Vec<String> = client
        .list_task_definitions()
        .family_prefix(&family)
        .status(TaskDefinitionStatus::Active)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .op("ListTaskDefinitions")?;
    for arn in arns.iter().filter(|a| family_of(a) == family) {
        client
            .deregister_task_definition()
            .task_definition(arn)
            .send()
            .await
            .op_or_gone("DeregisterTaskDefinition", |e| e.is_client_exception())?;
    }
    Ok(())
}

/// `…:task-definition/<family>:<revision>` → `<family>`.
fn family_of(arn: &str) -> String {
    let tail = arn.rsplit_once(":task-definition/").map_or(arn, |(_, t)| t);
    tail.rsplit_once(':').map_or(tail, |(f, _)| f).to_string()
}

/// Puts each configured secret's ARN in `region` in place of its name in the task definitions
/// of `regions`: ECS takes a bare name only for an SSM parameter of the task's region, a
/// Secrets Manager secret needs its full ARN ("Pass Secrets Manager secrets through Amazon ECS
/// environment variables", ECS developer guide). One `DescribeSecret` per name and region
/// (read-only); a name with no secret in a region is an error naming the key, the name and the
/// region, before any change. `secrets` is `[service.secrets]`: variable → name (or ARN).
pub async fn resolve_secret_names(
    clients: &crate::cloud::Clients,
    resources: &mut [super::Resource],
    secrets: &BTreeMap<String, String>,
    regions: &[String],
) -> Result<(), Error> {
    if secrets.is_empty() {
        return Ok(());
    }
    let mut arns: BTreeMap<(String, String), String> = BTreeMap::new();
    for region in regions {
        let sm: aws_sdk_secretsmanager::Client = clients.get(region);
        for (var, name) in secrets.iter().filter(|(_, n)| !n.starts_with("arn:")) {
            let out = sm
                .describe_secret()
                .secret_id(name)
                .send()
                .await
                .op_or_gone("DescribeSecret", |e| e.is_resource_not_found_exception());
            match out {
                Ok(d) => {
                    let arn = d.arn().unwrap_or_default().to_string();
                    arns.insert((region.clone(), name.clone()), arn);
                }
                Err(e) if e.is_not_found() => {
                    return Err(Error::InvalidState(format!(
                        "service.secrets.{var}: there is no Secrets Manager secret named {name:?} in {region}; create it there (or replicate it to {region}): each region's tasks read their own region's secret"
                    )));
                }
                Err(e) => return Err(e),
            }
        }
    }
    for r in resources.iter_mut() {
        let region = r.address.region().to_string();
        if let super::Spec::TaskDefinition(td) = &mut r.spec {
            for (var, name) in secrets {
                if let Some(arn) = arns.get(&(region.clone(), name.clone())) {
                    td.container.secrets.insert(var.clone(), Ref::Id(arn.clone()));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> TaskDefinitionSpec {
        TaskDefinitionSpec {
            family: "webapp-prod".into(),
            cpu: "512".into(),
            memory: "1024".into(),
            cpu_architecture: "ARM64".into(),
            execution_role: Ref::Id("arn:aws:iam::1:role/x".into()),
            task_role: Ref::Id("arn:aws:iam::1:role/y".into()),
            container: ContainerSpec {
                name: "app".into(),
                image: "1.dkr.ecr.us-east-1.amazonaws.com/webapp:v1".into(),
                port: Some(8080),
                command: vec![],
                environment: BTreeMap::from([("LOG_LEVEL".into(), "info".into())]),
                referenced_environment: BTreeMap::from([("DB_HOST".into(), Ref::Id("db.example".into()))]),
                secrets: BTreeMap::from([("API_KEY".into(), Ref::Id("webapp/api-key".into()))]),
                health_check: vec!["CMD-SHELL".into(), "true".into()],
                read_only_root_filesystem: true,
                user: Some("1000".into()),
                log_group: "/ecs/webapp-prod".into(),
                log_region: "us-east-1".into(),
            },
            image_released: true,
        }
    }

    #[test]
    fn the_drift_check_s_image_is_compared() {
        let mut desired = spec();
        desired.image_released = false;
        desired.container.image = "1.dkr.ecr.us-east-1.amazonaws.com/deployer:2".into();
        let mut d = Diff::default();
        diff(&desired, &spec(), &mut d);
        assert!(d.has("container"), "{d:?}");
    }

    #[test]
    fn an_unchanged_definition_or_another_image_is_no_difference_and_a_new_variable_is_a_new_revision() {
        let mut d = Diff::default();
        diff(&spec(), &spec(), &mut d);
        assert!(d.is_empty() && d.note.is_none(), "{d:?}");

        let mut desired = spec();
        desired.container.image = "1.dkr.ecr.us-east-1.amazonaws.com/webapp:v2".into();
        let mut d = Diff::default();
        diff(&desired, &spec(), &mut d);
        assert!(d.is_empty(), "the image belongs to releases: {d:?}");

        desired.container.environment.insert("FEATURE".into(), "on".into());
        let mut d = Diff::default();
        diff(&desired, &spec(), &mut d);
        assert!(d.has("container") && !d.replace(), "{d:?}");
        assert_eq!(d.note.as_deref(), Some(UPDATE_NOTE));
    }

    #[test]
    fn a_plain_variable_and_a_referenced_one_are_read_back_apart() {
        let td = SdkTaskDefinition::builder()
            .family("webapp-prod")
            .container_definitions(
                ContainerDefinition::builder()
                    .name("app")
                    .environment(KeyValuePair::builder().name("DB_HOST").value("db.example").build())
                    .environment(KeyValuePair::builder().name("LOG_LEVEL").value("info").build())
                    .build(),
            )
            .build();
        let observed = spec_of(&td);
        assert_eq!(observed.container.environment, spec().container.environment);
        assert_eq!(observed.container.referenced_environment, spec().container.referenced_environment);
    }

    #[test]
    fn a_family_is_read_from_a_revision_arn() {
        assert_eq!(family_of("arn:aws:ecs:us-east-1:1:task-definition/webapp-prod:12"), "webapp-prod");
    }
}
