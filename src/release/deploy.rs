//! One region's CodeDeploy calls: what runs, what is in flight, the history, starting a
//! deployment (or re-attaching to the one in flight) and following it to its end.

use std::time::Duration;

use aws_sdk_codedeploy::types::{
    AppSpecContent, DeploymentInfo, DeploymentStatus, DeploymentWaitType, RevisionLocation,
    RevisionLocationType,
};
use aws_sdk_ecs::types::TaskDefinition as SdkTaskDefinition;
use serde::Serialize;

use super::{Names, Progress};
use crate::cloud::{AwsResultExt, Clients, Error, Pace};
use crate::resources::ecs_cluster::StrategyItem;

/// The statuses of a deployment that is not finished.
pub const ACTIVE: &[DeploymentStatus] = &[
    DeploymentStatus::Created,
    DeploymentStatus::Queued,
    DeploymentStatus::InProgress,
    DeploymentStatus::Baking,
    DeploymentStatus::Ready,
];

/// A deployment as the deployer reports it.
#[derive(Clone, Debug, Serialize)]
pub struct DeploymentView {
    pub id: String,
    pub status: String,
    /// The task definition revision it deploys.
    pub task_definition: Option<String>,
    pub creator: Option<String>,
    pub description: Option<String>,
    pub created: Option<String>,
    pub completed: Option<String>,
    /// `code: message`, for a failed or stopped deployment.
    pub error: Option<String>,
    /// The rollback deployment CodeDeploy started for it.
    pub rolled_back_by: Option<String>,
    /// The target's lifecycle succeeded and the old tasks are kept for the termination wait.
    pub in_termination_wait: bool,
}

impl DeploymentView {
    pub fn of(d: &DeploymentInfo) -> DeploymentView {
        DeploymentView {
            id: d.deployment_id().unwrap_or_default().to_string(),
            status: d.status().map(|s| s.as_str().to_string()).unwrap_or_default(),
            task_definition: task_definition_of(d),
            creator: d.creator().map(|c| c.as_str().to_string()),
            description: d.description().map(str::to_string),
            created: d.create_time().map(|t| t.to_string()),
            completed: d.complete_time().map(|t| t.to_string()),
            error: d.error_information().map(|e| {
                format!(
                    "{}: {}",
                    e.code().map(|c| c.as_str()).unwrap_or("error"),
                    e.message().unwrap_or_default()
                )
            }),
            rolled_back_by: d.rollback_info().and_then(|r| r.rollback_deployment_id()).map(str::to_string),
            in_termination_wait: d.instance_termination_wait_time_started(),
        }
    }

    pub fn finished(&self) -> bool {
        matches!(self.status.as_str(), "Succeeded" | "Failed" | "Stopped")
    }
}

/// The task definition a deployment's AppSpec names (JSON as the deployer writes it, or the
/// `TaskDefinition:` line of a YAML one written by someone else).
pub fn task_definition_of(d: &DeploymentInfo) -> Option<String> {
    task_definition_in(d.revision()?.app_spec_content()?.content()?)
}

/// The task definition an AppSpec names.
pub fn task_definition_in(content: &str) -> Option<String> {
    if let Ok(json) = serde_json::from_str::<serde_json::Value>(content) {
        return json
            .pointer("/Resources/0/TargetService/Properties/TaskDefinition")
            .and_then(|v| v.as_str())
            .map(str::to_string);
    }
    content.lines().find_map(|line| {
        let value = line.trim().strip_prefix("TaskDefinition:")?.trim().trim_matches(['"', '\'']);
        (!value.is_empty()).then(|| value.to_string())
    })
}

/// The AppSpec of a release: the service, its task definition revision, container and port, and
/// the service's capacity provider strategy: without it the new task set takes none (the AppSpec
/// reference, "AppSpec 'resources' section for Amazon ECS deployments", lists
/// `CapacityProviderStrategy` among a task set's properties), and Spot capacity would be lost at
/// the first release.
pub fn appspec(task_definition: &str, container: &str, port: u16, strategy: &[StrategyItem]) -> String {
    let mut properties = serde_json::json!({
        "TaskDefinition": task_definition,
        "LoadBalancerInfo": {"ContainerName": container, "ContainerPort": port},
    });
    if !strategy.is_empty() {
        properties["CapacityProviderStrategy"] = strategy
            .iter()
            .map(|s| serde_json::json!({"Base": s.base, "CapacityProvider": s.provider, "Weight": s.weight}))
            .collect();
    }
    serde_json::json!({
        "version": "0.0",
        "Resources": [{"TargetService": {"Type": "AWS::ECS::Service", "Properties": properties}}],
    })
    .to_string()
}

/// The task definition the service runs now (the PRIMARY task set's), `None` without a service.
pub async fn running(
    clients: &Clients,
    region: &str,
    names: &Names,
) -> Result<Option<SdkTaskDefinition>, Error> {
    let ecs: aws_sdk_ecs::Client = clients.get(region);
    let out = match ecs.describe_services().cluster(&names.base).services(&names.base).send().await {
        Ok(out) => out,
        // No cluster yet: no service.
        Err(e) if e.as_service_error().is_some_and(|e| e.is_cluster_not_found_exception()) => {
            return Ok(None)
        }
        Err(e) => return Err(e).op("DescribeServices"),
    };
    let Some(arn) = out
        .services()
        .iter()
        .find(|s| s.status() == Some("ACTIVE"))
        .and_then(|s| s.task_definition())
        .map(str::to_string)
    else {
        return Ok(None);
    };
    describe_revision(clients, region, &arn).await.map(Some)
}

pub async fn describe_revision(
    clients: &Clients,
    region: &str,
    arn: &str,
) -> Result<SdkTaskDefinition, Error> {
    let ecs: aws_sdk_ecs::Client = clients.get(region);
    let out =
        ecs.describe_task_definition().task_definition(arn).send().await.op("DescribeTaskDefinition")?;
    out.task_definition()
        .cloned()
        .ok_or_else(|| Error::InvalidState(format!("ECS returned no task definition {arn}")))
}

/// The group's deployments with one of `statuses` (all when empty), newest first, at most 25
/// (one `BatchGetDeployments`).
pub async fn deployments(
    clients: &Clients,
    region: &str,
    names: &Names,
    statuses: &[DeploymentStatus],
) -> Result<Vec<DeploymentInfo>, Error> {
    let cd: aws_sdk_codedeploy::Client = clients.get(region);
    let ids = match cd
        .list_deployments()
        .application_name(&names.base)
        .deployment_group_name(&names.base)
        .set_include_only_statuses((!statuses.is_empty()).then(|| statuses.to_vec()))
        .send()
        .await
    {
        Ok(out) => out.deployments().to_vec(),
        // No application or group (the service tier is not up yet): no deployments.
        Err(e)
            if e.as_service_error().is_some_and(|e| {
                e.is_application_does_not_exist_exception()
                    || e.is_deployment_group_does_not_exist_exception()
            }) =>
        {
            return Ok(vec![])
        }
        Err(e) => return Err(e).op("ListDeployments"),
    };
    if ids.is_empty() {
        return Ok(vec![]);
    }
    let out = cd
        .batch_get_deployments()
        .set_deployment_ids(Some(ids.into_iter().take(25).collect()))
        .send()
        .await
        .op("BatchGetDeployments")?;
    let mut found = out.deployments_info().to_vec();
    // ListDeployments promises no order: newest first by creation time.
    found.sort_by(|a, b| {
        let t =
            |d: &DeploymentInfo| d.create_time().map(|t| (t.secs(), t.subsec_nanos())).unwrap_or_default();
        t(b).cmp(&t(a))
    });
    Ok(found)
}

pub async fn get(clients: &Clients, region: &str, id: &str) -> Result<DeploymentInfo, Error> {
    let cd: aws_sdk_codedeploy::Client = clients.get(region);
    let out = cd.get_deployment().deployment_id(id).send().await.op("GetDeployment")?;
    out.deployment_info()
        .cloned()
        .ok_or_else(|| Error::InvalidState(format!("CodeDeploy returned no deployment {id}")))
}

/// Starts a deployment of `task_definition`. CreateDeployment takes no idempotency token: when
/// its answer was lost and the SDK retried, or another run started one meanwhile, AWS refuses
/// with DeploymentLimitExceededException — and the deployment in flight is returned instead
/// (`true`: re-attached), never a second one.
pub async fn start(
    clients: &Clients,
    region: &str,
    names: &Names,
    task_definition: &str,
    description: &str,
) -> Result<(String, bool), Error> {
    let cd: aws_sdk_codedeploy::Client = clients.get(region);
    let revision = RevisionLocation::builder()
        .revision_type(RevisionLocationType::AppSpecContent)
        .app_spec_content(
            AppSpecContent::builder()
                .content(appspec(task_definition, &names.container, names.port, &names.capacity))
                .build(),
        )
        .build();
    match cd
        .create_deployment()
        .application_name(&names.base)
        .deployment_group_name(&names.base)
        .revision(revision)
        .description(description)
        .send()
        .await
    {
        Ok(out) => Ok((out.deployment_id().unwrap_or_default().to_string(), false)),
        Err(e) if e.as_service_error().is_some_and(|e| e.is_deployment_limit_exceeded_exception()) => {
            let active = deployments(clients, region, names, ACTIVE).await?;
            match active.first().and_then(|d| d.deployment_id()) {
                Some(id) => Ok((id.to_string(), true)),
                None => Err(e).op("CreateDeployment"),
            }
        }
        Err(e) => Err(e).op("CreateDeployment"),
    }
}

/// Ends the termination wait of a deployment whose new version already serves all traffic, so
/// that the group can take the next deployment.
pub async fn end_termination_wait(clients: &Clients, region: &str, id: &str) -> Result<(), Error> {
    let cd: aws_sdk_codedeploy::Client = clients.get(region);
    match cd
        .continue_deployment()
        .deployment_id(id)
        .deployment_wait_type(DeploymentWaitType::TerminationWait)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        // Finished meanwhile: what was wanted.
        Err(e) if e.as_service_error().is_some_and(|e| e.is_deployment_already_completed_exception()) => {
            Ok(())
        }
        Err(e) => Err(e).op("ContinueDeployment"),
    }
}

/// Stops a deployment in flight, asking CodeDeploy to roll it back.
pub async fn stop_with_rollback(clients: &Clients, region: &str, id: &str) -> Result<(), Error> {
    let cd: aws_sdk_codedeploy::Client = clients.get(region);
    match cd.stop_deployment().deployment_id(id).auto_rollback_enabled(true).send().await {
        Ok(_) => Ok(()),
        Err(e) if e.as_service_error().is_some_and(|e| e.is_deployment_already_completed_exception()) => {
            Ok(())
        }
        Err(e) => Err(e).op("StopDeployment"),
    }
}

/// How a followed deployment ended. (A handful exist per run: their size does not matter.)
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum End {
    /// All traffic is on the new version (the old tasks may still be kept for the termination wait).
    Released(DeploymentView),
    /// Failed or stopped; with CodeDeploy's rollback deployment, already followed to its end.
    Failed { deployment: DeploymentView, rollback: Option<DeploymentView> },
}

/// Follows a deployment until the new version serves all traffic, or it fails; shows each
/// lifecycle event and traffic split as it changes. `through_termination_wait`: wait for
/// `Succeeded` itself (a rollback has no termination wait; a rolled-back release does not
/// report back until CodeDeploy's rollback is done).
pub async fn follow(
    clients: &Clients,
    region: &str,
    names: &Names,
    id: &str,
    timeout: Duration,
    reporter: &dyn Progress,
) -> Result<End, Error> {
    let mut pace = Pace::start();
    let mut last_line = String::new();
    loop {
        let Some(info) = read(clients, region, id, &mut pace, timeout).await? else { continue };
        let view = DeploymentView::of(&info);
        let (line, green) = progress_line(clients, region, names, &info).await;
        if line != last_line {
            reporter.progress(region, id, &line, green, view.finished() || view.in_termination_wait);
            last_line = line;
        }
        match info.status() {
            Some(DeploymentStatus::Succeeded) => return Ok(End::Released(view)),
            Some(DeploymentStatus::InProgress) if view.in_termination_wait => return Ok(End::Released(view)),
            Some(DeploymentStatus::Failed) | Some(DeploymentStatus::Stopped) => {
                let rollback = follow_rollback(clients, region, id, timeout, reporter).await?;
                return Ok(End::Failed {
                    deployment: DeploymentView::of(&get(clients, region, id).await?),
                    rollback,
                });
            }
            _ => {}
        }
        if pace.elapsed() >= timeout {
            return Err(Error::Timeout {
                what: format!("deployment {id} in {region}"),
                after: timeout,
                last: last_line,
            });
        }
        pace.pause(false, timeout.saturating_sub(pace.elapsed())).await;
    }
}

/// Waits for the rollback CodeDeploy starts for a failed or stopped deployment (its ID appears
/// in the deployment's `rollbackInfo` shortly after it ends), and follows it to its end.
/// `None` when none comes: the group does not roll back on that event.
pub async fn follow_rollback(
    clients: &Clients,
    region: &str,
    id: &str,
    timeout: Duration,
    reporter: &dyn Progress,
) -> Result<Option<DeploymentView>, Error> {
    // Five reads, the last 20 s after the first at AWS's pace.
    let mut pace = Pace::start();
    let mut rollback_id = None;
    for n in 1..=5 {
        // A throttled read pauses (backed off) and counts as one of the five.
        let Some(info) = read(clients, region, id, &mut pace, timeout).await? else { continue };
        if let Some(r) = info.rollback_info().and_then(|r| r.rollback_deployment_id()) {
            rollback_id = Some(r.to_string());
            break;
        }
        if n < 5 {
            pace.pause(false, Duration::MAX).await;
        }
    }
    let Some(rollback_id) = rollback_id else { return Ok(None) };
    reporter.event(region, &rollback_id, &format!("rolling back {id}"));
    let mut pace = Pace::start();
    loop {
        let Some(info) = read(clients, region, &rollback_id, &mut pace, timeout).await? else { continue };
        let view = DeploymentView::of(&info);
        if view.finished() {
            reporter.event(region, &rollback_id, &format!("rollback {}", view.status));
            return Ok(Some(view));
        }
        if pace.elapsed() >= timeout {
            return Err(Error::Timeout {
                what: format!("rollback deployment {rollback_id} in {region}"),
                after: timeout,
                last: view.status,
            });
        }
        pace.pause(false, timeout.saturating_sub(pace.elapsed())).await;
    }
}

/// One read of a deployment being followed; `None` after a pause when the read was throttled
/// or failed on AWS's side even after the SDK's retries. That says nothing about the
/// deployment, which goes on in CodeDeploy whatever the deployer sees: a release of many
/// minutes is not abandoned for one throttle storm, as `wait_until` waits one out. It is an
/// error again once `timeout` has passed.
async fn read(
    clients: &Clients,
    region: &str,
    id: &str,
    pace: &mut Pace,
    timeout: Duration,
) -> Result<Option<DeploymentInfo>, Error> {
    match get(clients, region, id).await {
        Ok(info) => Ok(Some(info)),
        Err(e) if e.is_transient() && pace.elapsed() < timeout => {
            tracing::warn!("deployment {id} in {region}: {e}; reading it again");
            pace.pause(true, timeout.saturating_sub(pace.elapsed())).await;
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// `InProgress AllowTraffic, green 10% / blue 90%`: the status, the lifecycle event in
/// progress and the traffic split, from the deployment's one target; and the share of traffic
/// on the new (green) task set.
async fn progress_line(
    clients: &Clients,
    region: &str,
    names: &Names,
    info: &DeploymentInfo,
) -> (String, Option<f64>) {
    let status = info.status().map(|s| s.as_str()).unwrap_or("?").to_string();
    let cd: aws_sdk_codedeploy::Client = clients.get(region);
    let target = cd
        .get_deployment_target()
        .deployment_id(info.deployment_id().unwrap_or_default())
        .target_id(format!("{}:{}", names.base, names.base))
        .send()
        .await;
    let Ok(target) = target else { return (status, None) };
    let Some(ecs) = target.deployment_target().and_then(|t| t.ecs_target()) else { return (status, None) };
    let green = ecs
        .task_sets_info()
        .iter()
        .find(|t| t.task_set_label().map(|l| l.as_str()) == Some("Green"))
        .map(|t| t.traffic_weight());
    let event = ecs
        .lifecycle_events()
        .iter()
        .find(|e| e.status().map(|s| s.as_str()) == Some("InProgress"))
        .and_then(|e| e.lifecycle_event_name())
        .map(|e| format!(" {e}"))
        .unwrap_or_default();
    let split: Vec<String> = ecs
        .task_sets_info()
        .iter()
        .map(|t| {
            format!(
                "{} {}%",
                t.task_set_label().map(|l| l.as_str().to_lowercase()).unwrap_or_default(),
                t.traffic_weight()
            )
        })
        .collect();
    let wait = if info.instance_termination_wait_time_started() && status == "InProgress" {
        " (all traffic on the new version; old tasks kept for the termination wait)"
    } else {
        ""
    };
    let line = if split.is_empty() {
        format!("{status}{event}{wait}")
    } else {
        format!("{status}{event}, {}{wait}", split.join(" / "))
    };
    (line, green)
}
