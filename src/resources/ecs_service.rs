//! ECS service `{app}-{env}` in the cluster, on the CodeDeploy deployment controller, at
//! `<region>/service/ecs-service/app`: the first task definition revision, the blue target
//! group, the private subnets and the application's security group (no public IP), a
//! health-check grace period, tags propagated from the service and ECS's managed tags.
//!
//! **Capacity.** Neither a launch type nor a capacity provider strategy is sent, so the service
//! takes the cluster's default strategy (FARGATE with its on-demand base, FARGATE_SPOT by
//! weight): AWS allows capacity providers on a CODE_DEPLOY service, and a launch type would
//! rule the strategy out (the two are exclusive).
//!
//! **Who owns what.** On a `CODE_DEPLOY` service, AWS refuses `UpdateService` of the task
//! definition, the load balancers and the network configuration: those change only through a
//! deployment. Field by field:
//! - the task definition and the target group: the releases' (CodeDeploy moves the service to
//!   each new revision, and between blue and green). Not compared: a new revision is
//!   registered by `up` and released by the next release;
//! - the desired count: auto-scaling's (set once, at creation, to `min_tasks`). Not compared;
//! - the subnets, the security groups, the container name and port: no `UpdateService` may
//!   change them outside a deployment, so a difference replaces the service;
//! - the grace period: the one field `up` updates in place, which AWS allows.
//!
//! The emulator is made to refuse the rest the way AWS does (`moto_fixes.py`), so the tests
//! prove `up` never sends it.
//!
//! **Readiness.** `CreateService` answers with the service `ACTIVE` and no task running yet.
//! The create then waits, within `service.wait_timeout_secs`, until the service runs its
//! desired count of tasks and as many targets are `healthy` in its (blue) target group, so a
//! cold `up` ends when the region serves (`DescribeServices` and `DescribeTargetHealth`). A
//! timeout names the counts, the unhealthy targets with ELB's reasons and ECS's last service
//! events. Only a creation waits: afterwards, tasks are the releases' (a deployment that does
//! not become healthy is the release's to report and roll back) and auto-scaling's. A service being deleted
//! (`DRAINING`) is gone for the plan; its re-creation waits until ECS lets go of the name.
//! Deletion scales it to zero, deletes it and waits until it is `INACTIVE`, within the kind's
//! wait bound, so the cluster (its parent) goes after it.
//!
//! Discovery: one `DescribeServices` of the known name in the cluster, with tags. ID: its ARN;
//! attribute `name`.

use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, DeploymentController, DeploymentControllerType, LoadBalancer,
    NetworkConfiguration, PropagateTags, Service as SdkService,
};
use serde::Serialize;

use super::ecs;
use super::ecs::{sdk_tags, tags_of};
use super::is_ours;
use super::Update;
use super::{
    attr, Create, Ctx, Delete, Diff, Found, Kind, ObserveCtx, Replace, Role, Scope, Spec, Tags, TAG_ADDRESS,
};
use crate::cloud::{wait_until, AwsResultExt, Error, Waited};
use crate::spec::{Address, Ref};

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EcsServiceSpec {
    pub name: String,
    pub cluster: Ref,
    /// The first revision; afterwards the releases' (not compared).
    pub task_definition: Ref,
    /// The blue target group at creation; afterwards CodeDeploy's (not compared).
    pub target_group: Ref,
    pub container_name: String,
    pub container_port: i32,
    /// Sorted once normalised.
    pub subnets: Vec<Ref>,
    pub security_groups: Vec<Ref>,
    /// Set at creation; afterwards auto-scaling's (not compared).
    pub desired_count: i32,
    pub health_check_grace_secs: i32,
    /// The HTTPS listener: AWS refuses a service whose target group no load balancer uses, so
    /// the service is created after it. Ordering only (not compared).
    pub after: Option<Ref>,
}

pub fn diff(desired: &EcsServiceSpec, observed: &EcsServiceSpec, d: &mut Diff) {
    diff_fields!(d, desired, observed,
        name: Yes, cluster: Yes, container_name: Yes, container_port: Yes, subnets: Yes,
        security_groups: Yes, health_check_grace_secs: No,
    );
}

/// The status of a service being deleted, until its tasks have stopped and it is `INACTIVE`.
const DRAINING: &str = "DRAINING";

pub struct EcsService;

/// The service's address in `region`: the application tier's one service.
pub fn address(region: &str) -> Address {
    Address::new(region, crate::spec::names::tier::SERVICE, EcsService::NAME, "app")
}

impl Kind for EcsService {
    type Spec = EcsServiceSpec;
    const NAME: &'static str = "ecs-service";
    const SCOPE: Scope = Scope::Regional;
    const TAGGED: bool = true;
    const PARTS: &'static [&'static str] = &["service"];
    const ACTIONS: &'static [&'static str] = &[
        "elasticloadbalancing:DescribeTargetHealth",
        "ecs:TagResource",
        "ecs:DescribeServices",
        "ecs:CreateService",
        "ecs:UpdateService",
        "ecs:DeleteService",
    ];

    fn refs(spec: &mut EcsServiceSpec) -> Vec<(Role, &mut Ref)> {
        let mut refs = vec![
            (Role::Parent, &mut spec.cluster),
            (Role::Points, &mut spec.task_definition),
            (Role::Holds, &mut spec.target_group),
        ];
        refs.extend(spec.subnets.iter_mut().map(|r| (Role::Points, r)));
        refs.extend(spec.security_groups.iter_mut().map(|r| (Role::Holds, r)));
        if let Some(after) = &mut spec.after {
            refs.push((Role::Points, after));
        }
        refs
    }
    fn normalize(spec: &mut EcsServiceSpec) {
        spec.subnets.sort();
        spec.security_groups.sort();
    }
    fn diff(desired: &EcsServiceSpec, observed: &EcsServiceSpec, d: &mut Diff) {
        diff(desired, observed, d)
    }
    fn conflicts(a: &EcsServiceSpec, b: &EcsServiceSpec) -> bool {
        a.name == b.name && a.cluster == b.cluster
    }
    async fn observe(ctx: &ObserveCtx<'_>) -> Result<Vec<Found>, Error> {
        let client: aws_sdk_ecs::Client = ctx.clients.get(&ctx.region);
        let name = format!("{}-{}", ctx.app, ctx.env);
        let Some(s) = describe(&client, &name, &name).await? else { return Ok(vec![]) };
        // Being deleted (out of band): gone for the plan, which creates it again once ECS lets
        // go of the name (see `create`).
        if s.status() == Some(DRAINING) {
            return Ok(vec![]);
        }
        let tags = tags_of(s.tags());
        if !is_ours(&tags, ctx.app, ctx.env) {
            return Ok(vec![]);
        }
        let Some(address) = super::tagged_address(&tags, "ecs-service") else { return Ok(vec![]) };
        Ok(vec![Found {
            address,
            id: s.service_arn().unwrap_or_default().to_string(),
            spec: Spec::EcsService(spec_of(&s)),
            tags,
            state: s.status().unwrap_or_default().to_string(),
            attrs: [(attr::NAME, name)].into(),
        }])
    }
    async fn create(ctx: &Ctx<'_>, new: Create<'_, EcsServiceSpec>) -> Result<String, Error> {
        let Create { address, spec, tags } = new;
        let region = address.region();
        let client: aws_sdk_ecs::Client = ctx.clients.get(region);
        let cluster = ctx.id(&spec.cluster)?;
        let existing = match describe(&client, &cluster, &spec.name).await? {
            // ECS refuses a service of the name of one still draining: wait until it is gone.
            Some(s) if s.status() == Some(DRAINING) => {
                wait_until_gone(ctx, address, &client, &cluster, &spec.name).await?;
                None
            }
            other => other,
        };
        if let Some(existing) = existing {
            if tags_of(existing.tags()).get(TAG_ADDRESS).map(String::as_str) != Some(address.as_str()) {
                return Err(Error::InvalidState(format!(
                    "a service named {} already exists in the cluster and is not this environment's {address}",
                    spec.name
                )));
            }
            let arn = existing.service_arn().unwrap_or_default().to_string();
            ctx.ids.set_attr(address, attr::NAME, spec.name.clone());
            wait_until_serving(ctx, address, &client, &cluster, spec).await?;
            return Ok(arn);
        }
        let subnets = spec.subnets.iter().map(|s| ctx.id(s)).collect::<Result<Vec<_>, _>>()?;
        let groups = spec.security_groups.iter().map(|s| ctx.id(s)).collect::<Result<Vec<_>, _>>()?;
        let network = AwsVpcConfiguration::builder()
            .set_subnets(Some(subnets))
            .set_security_groups(Some(groups))
            .assign_public_ip(AssignPublicIp::Disabled)
            .build()
            .map_err(|e| Error::InvalidRequest(e.to_string()))?;
        let token = client_token(address);
        let created = wait_until(
            &format!("{address}: ECS to accept the service"),
            ctx.timeout_for(EcsService::NAME),
            || async {
                let out = client
                    .create_service()
                    .cluster(&cluster)
                    .service_name(&spec.name)
                    .task_definition(ctx.id(&spec.task_definition)?)
                    .load_balancers(
                        LoadBalancer::builder()
                            .target_group_arn(ctx.id(&spec.target_group)?)
                            .container_name(&spec.container_name)
                            .container_port(spec.container_port)
                            .build(),
                    )
                    .desired_count(spec.desired_count)
                    .deployment_controller(
                        DeploymentController::builder()
                            .r#type(DeploymentControllerType::CodeDeploy)
                            .build()
                            .map_err(|e| Error::InvalidRequest(e.to_string()))?,
                    )
                    .network_configuration(
                        NetworkConfiguration::builder().awsvpc_configuration(network.clone()).build(),
                    )
                    .health_check_grace_period_seconds(spec.health_check_grace_secs)
                    .propagate_tags(PropagateTags::Service)
                    .enable_ecs_managed_tags(true)
                    .client_token(&token)
                    .set_tags(Some(sdk_tags(tags)))
                    .send()
                    .await;
                match out {
                    Ok(out) => Ok(Waited::Done(out)),
                    Err(e) => match e.as_service_error() {
                        Some(s)
                            if s.is_invalid_parameter_exception() && refused_for_now(s.meta().message()) =>
                        {
                            Ok(Waited::NotYet(s.meta().message().unwrap_or_default().to_string()))
                        }
                        _ => Err(e).op("CreateService"),
                    },
                }
            },
        )
        .await?;
        let arn = created
            .service()
            .and_then(|s| s.service_arn())
            .ok_or_else(|| Error::InvalidState("CreateService returned no service".into()))?;
        ctx.ids.set_attr(address, attr::NAME, spec.name.clone());
        wait_until_serving(ctx, address, &client, &cluster, spec).await?;
        Ok(arn.to_string())
    }
    async fn update(ctx: &Ctx<'_>, change: Update<'_, EcsServiceSpec>) -> Result<(), Error> {
        let Update { address, desired, diff, .. } = change;
        if diff.has("health_check_grace_secs") {
            let client: aws_sdk_ecs::Client = ctx.clients.get(address.region());
            client
                .update_service()
                .cluster(ctx.id(&desired.cluster)?)
                .service(&desired.name)
                .health_check_grace_period_seconds(desired.health_check_grace_secs)
                .send()
                .await
                .op("UpdateService")?;
        }
        Ok(())
    }
    /// Scales the service to zero, deletes it, and waits until ECS reports it `INACTIVE`, so the
    /// cluster can go after it.
    async fn delete(ctx: &Ctx<'_>, gone: Delete<'_, EcsServiceSpec>) -> Result<(), Error> {
        let Delete { address, id: arn, .. } = gone;
        let client: aws_sdk_ecs::Client = ctx.clients.get(address.region());
        // `…:service/<cluster>/<name>`.
        let mut parts = arn.rsplit('/');
        let (name, cluster) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
        let gone = |e: &aws_sdk_ecs::operation::update_service::UpdateServiceError| {
            e.is_service_not_found_exception()
                || e.is_service_not_active_exception()
                || e.is_cluster_not_found_exception()
        };
        match client
            .update_service()
            .cluster(cluster)
            .service(name)
            .desired_count(0)
            .send()
            .await
            .op_or_gone("UpdateService", gone)
        {
            Err(e) if e.is_not_found() => return Ok(()),
            other => other.map(|_| ())?,
        }
        client
            .delete_service()
            .cluster(cluster)
            .service(name)
            .force(true)
            .send()
            .await
            .op_or_gone("DeleteService", |e| {
                e.is_service_not_found_exception() || e.is_cluster_not_found_exception()
            })?;
        wait_until_gone(ctx, address, &client, cluster, name).await
    }
    async fn repair_tags(ctx: &Ctx<'_>, address: &Address, id: &str, missing: &Tags) -> Result<(), Error> {
        ecs::tag_resource(ctx.clients, address.region(), id, missing).await
    }
}

/// The service, unless it does not exist or is deleted (`INACTIVE`; a `DRAINING` one is there).
async fn describe(
    client: &aws_sdk_ecs::Client,
    cluster: &str,
    name: &str,
) -> Result<Option<SdkService>, Error> {
    let out = client
        .describe_services()
        .cluster(cluster)
        .services(name)
        .include(aws_sdk_ecs::types::ServiceField::Tags)
        .send()
        .await;
    match out {
        Ok(out) => Ok(out.services().iter().find(|s| s.status() != Some("INACTIVE")).cloned()),
        Err(e) if e.as_service_error().is_some_and(|e| e.is_cluster_not_found_exception()) => Ok(None),
        Err(e) => Err(e).op("DescribeServices"),
    }
}

fn spec_of(s: &SdkService) -> EcsServiceSpec {
    let lb = s.load_balancers().first();
    let net = s.network_configuration().and_then(|n| n.awsvpc_configuration());
    EcsServiceSpec {
        name: s.service_name().unwrap_or_default().to_string(),
        cluster: Ref::Id(s.cluster_arn().unwrap_or_default().to_string()),
        task_definition: Ref::Id(s.task_definition().unwrap_or_default().to_string()),
        target_group: Ref::Id(lb.and_then(|l| l.target_group_arn()).unwrap_or_default().to_string()),
        container_name: lb.and_then(|l| l.container_name()).unwrap_or_default().to_string(),
        container_port: lb.and_then(|l| l.container_port()).unwrap_or_default(),
        subnets: net.map(|n| n.subnets().iter().map(|s| Ref::Id(s.clone())).collect()).unwrap_or_default(),
        security_groups: net
            .map(|n| n.security_groups().iter().map(|s| Ref::Id(s.clone())).collect())
            .unwrap_or_default(),
        desired_count: s.desired_count(),
        health_check_grace_secs: s.health_check_grace_period_seconds().unwrap_or(0),
        after: None,
    }
}

/// `CreateService`'s client token (up to 36 ASCII characters), made once per create from the
/// address and the time: the SDK's retries of a request whose answer was lost carry the same
/// token, so ECS returns the first service instead of failing or making a second. Not fixed per
/// address: after a `destroy` and an `up`, a token AWS still remembers would name the deleted
/// service. A re-run after a crash finds the service by name first (`create`), so it needs no
/// token to converge.
fn client_token(address: &Address) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    address.as_str().hash(&mut h);
    std::time::SystemTime::now().hash(&mut h);
    format!("deployer-{:016x}", h.finish())
}

/// Waits until the new service runs its desired count of tasks and as many targets are
/// `healthy` in its target group (ELB's target states: "Target health status", ELB user
/// guide), within the kind's bound. What it saw last (counts, unhealthy targets and why, ECS's
/// last events) is what a timeout reports.
async fn wait_until_serving(
    ctx: &Ctx<'_>,
    address: &Address,
    client: &aws_sdk_ecs::Client,
    cluster: &str,
    spec: &EcsServiceSpec,
) -> Result<(), Error> {
    let elb: aws_sdk_elasticloadbalancingv2::Client = ctx.clients.get(address.region());
    let target_group = ctx.id(&spec.target_group)?;
    let group_name = target_group.rsplit('/').nth(1).unwrap_or(&target_group).to_string();
    let what = format!("{address}: its tasks to run and be healthy in {group_name}");
    wait_until(&what, ctx.timeout_for(EcsService::NAME), || async {
        let Some(service) = describe(client, cluster, &spec.name).await? else {
            return Err(Error::InvalidState(format!("{address}: the service was deleted while it started")));
        };
        let (running, desired) = (service.running_count(), service.desired_count());
        let health = elb
            .describe_target_health()
            .target_group_arn(&target_group)
            .send()
            .await
            .op("DescribeTargetHealth")?;
        let mut healthy = 0;
        let mut others = Vec::new();
        for t in health.target_health_descriptions() {
            let state = t.target_health().and_then(|h| h.state()).map(|s| s.as_str()).unwrap_or("unknown");
            if state == "healthy" {
                healthy += 1;
                continue;
            }
            let target = t.target().and_then(|t| t.id()).unwrap_or_default();
            let why = t.target_health().and_then(|h| h.description().or(h.reason().map(|r| r.as_str())));
            others.push(match why {
                Some(why) => format!("{target} {state} ({why})"),
                None => format!("{target} {state}"),
            });
        }
        if running >= desired && healthy >= desired {
            return Ok(Waited::Done(()));
        }
        let mut seen = format!("{running} of {desired} tasks running, {healthy} healthy in {group_name}");
        if !others.is_empty() {
            seen.push_str(&format!("; targets: {}", others.join(", ")));
        }
        let events: Vec<&str> = service.events().iter().take(2).filter_map(|e| e.message()).collect();
        if !events.is_empty() {
            seen.push_str(&format!("; ECS: {}", events.join(" / ")));
        }
        Ok(Waited::NotYet(seen))
    })
    .await
}

/// Whether ECS refused `CreateService` for what other services have just done and will soon
/// show it: a role IAM created a moment ago, or ECS's service-linked role on a new account
/// ("Unable to assume the role…", "Unable to assume the service linked role…"); a listener
/// that ELB created a moment ago ("The target group … does not have an associated load
/// balancer": the service is created after the HTTPS listener). Retried within the wait bound;
/// any other refusal is final. (The SDK's `Display` of an error says only "service error": the
/// message is read from the error's metadata.)
fn refused_for_now(message: Option<&str>) -> bool {
    message.is_some_and(|m| {
        m.contains("Unable to assume") || m.contains("does not have an associated load balancer")
    })
}

/// Waits until ECS reports the service `INACTIVE` (or not at all), within the kind's bound.
async fn wait_until_gone(
    ctx: &Ctx<'_>,
    address: &Address,
    client: &aws_sdk_ecs::Client,
    cluster: &str,
    name: &str,
) -> Result<(), Error> {
    wait_until(&format!("{address} to be deleted"), ctx.timeout_for(EcsService::NAME), || async {
        Ok(match describe(client, cluster, name).await? {
            None => Waited::Done(()),
            Some(s) => Waited::NotYet(s.status().unwrap_or("draining").to_lowercase()),
        })
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> EcsServiceSpec {
        EcsServiceSpec {
            name: "webapp-prod".into(),
            cluster: Ref::Id("arn:aws:ecs:us-east-1:1:cluster/webapp-prod".into()),
            task_definition: Ref::Id("arn:aws:ecs:us-east-1:1:task-definition/webapp-prod:1".into()),
            target_group: Ref::Id(
                "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/webapp-prod-blue/1".into(),
            ),
            container_name: "app".into(),
            container_port: 8080,
            subnets: vec![Ref::Id("subnet-b".into()), Ref::Id("subnet-a".into())],
            security_groups: vec![Ref::Id("sg-1".into())],
            desired_count: 2,
            health_check_grace_secs: 60,
            after: Some(Ref::Id("arn:aws:elasticloadbalancing:us-east-1:1:listener/app/x/1/2".into())),
        }
    }

    fn diff_of(desired: &EcsServiceSpec, observed: &EcsServiceSpec) -> Diff {
        let (mut want, mut have) = (desired.clone(), observed.clone());
        EcsService::normalize(&mut want);
        EcsService::normalize(&mut have);
        let mut d = Diff::default();
        diff(&want, &have, &mut d);
        d
    }

    #[test]
    fn only_what_passes_by_itself_is_retried() {
        assert!(refused_for_now(Some(
            "Unable to assume the role: arn:aws:iam::1:role/x. Please verify that the ECS service role being passed has the proper permissions."
        )));
        assert!(refused_for_now(Some(
            "Unable to assume the service linked role. Please verify that the ECS service linked role exists."
        )));
        assert!(refused_for_now(Some(
            "The target group with targetGroupArn arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/x/1 does not have an associated load balancer."
        )));
        assert!(!refused_for_now(Some("subnets can not be empty.")));
        assert!(!refused_for_now(None));
    }

    #[test]
    fn what_releases_and_auto_scaling_own_is_not_a_difference() {
        let desired = spec();
        let mut observed = spec();
        // A release moved the service to green and a new revision; auto-scaling scaled it out.
        observed.task_definition = Ref::Id("arn:aws:ecs:us-east-1:1:task-definition/webapp-prod:7".into());
        observed.target_group =
            Ref::Id("arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/webapp-prod-green/2".into());
        observed.desired_count = 9;
        observed.after = None;
        observed.subnets.reverse();
        assert!(diff_of(&desired, &observed).is_empty());
    }

    #[test]
    fn the_grace_period_is_updated_in_place_and_the_network_replaces() {
        let mut observed = spec();
        observed.health_check_grace_secs = 0;
        let d = diff_of(&spec(), &observed);
        assert!(d.has("health_check_grace_secs") && !d.replace(), "{d:?}");

        let mut observed = spec();
        observed.security_groups = vec![Ref::Id("sg-other".into())];
        let d = diff_of(&spec(), &observed);
        assert!(d.has("security_groups") && d.replace(), "no UpdateService of the network: {d:?}");
    }
}
