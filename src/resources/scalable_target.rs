//! Application Auto Scaling target: the service's desired count between `min_tasks` and
//! `max_tasks`, at `<region>/service/scalable-target/app` (namespace `ecs`, resource ID
//! `service/<cluster>/<service>`, dimension `ecs:service:DesiredCount`).
//!
//! Not tagged: found by its resource ID, which names the environment's cluster and service and
//! so is the environment's alone. (AWS takes tags in `RegisterScalableTarget`, but the emulator,
//! moto 5.2.5, keeps none for Application Auto Scaling, so tags could be neither tested nor read
//! back; the resource ID is the better key anyway.) Discovery: one `DescribeScalableTargets` of
//! that ID. ID: the resource ID.

use aws_sdk_applicationautoscaling::types::{ScalableDimension, ServiceNamespace};
use serde::Serialize;

use super::{Create, Ctx, Delete, Diff, Found, Kind, ObserveCtx, Replace, Role, Scope, Spec, Tags, Update};
use crate::cloud::{AwsResultExt, Error};
use crate::spec::{Address, Ref};

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ScalableTargetSpec {
    /// `service/<cluster>/<service>`.
    pub resource_id: String,
    /// The service, for ordering: the target is registered after it and removed before it.
    pub service: Ref,
    pub min: i32,
    pub max: i32,
}

/// `service/<cluster>/<service>` for the environment's service.
pub fn resource_id(app: &str, env: &str) -> String {
    format!("service/{app}-{env}/{app}-{env}")
}

pub(crate) fn client(
    clients: &crate::cloud::Clients,
    region: &str,
) -> aws_sdk_applicationautoscaling::Client {
    clients.get(region)
}

pub struct ScalableTarget;

/// The service's scalable target in `region`: it carries no tags, so it is found by this.
pub fn address(region: &str) -> Address {
    Address::new(region, crate::spec::names::tier::SERVICE, ScalableTarget::NAME, "app")
}

impl Kind for ScalableTarget {
    type Spec = ScalableTargetSpec;
    const NAME: &'static str = "scalable-target";
    const SCOPE: Scope = Scope::Regional;
    const TAGGED: bool = false;
    const PARTS: &'static [&'static str] = &["service"];
    const ACTIONS: &'static [&'static str] = &[
        "application-autoscaling:DescribeScalableTargets",
        "application-autoscaling:RegisterScalableTarget",
        "application-autoscaling:DeregisterScalableTarget",
    ];

    fn refs(spec: &mut ScalableTargetSpec) -> Vec<(Role, &mut Ref)> {
        vec![(Role::Parent, &mut spec.service)]
    }
    fn diff(desired: &ScalableTargetSpec, observed: &ScalableTargetSpec, d: &mut Diff) {
        diff_fields!(d, desired, observed, resource_id: Yes, min: No, max: No);
    }
    fn conflicts(a: &ScalableTargetSpec, b: &ScalableTargetSpec) -> bool {
        a.resource_id == b.resource_id
    }
    async fn observe(ctx: &ObserveCtx<'_>) -> Result<Vec<Found>, Error> {
        let id = resource_id(ctx.app, ctx.env);
        let out = client(ctx.clients, &ctx.region)
            .describe_scalable_targets()
            .service_namespace(ServiceNamespace::Ecs)
            .resource_ids(&id)
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .send()
            .await
            .op("DescribeScalableTargets")?;
        Ok(out
            .scalable_targets()
            .iter()
            .map(|t| Found {
                address: address(&ctx.region),
                id: t.resource_id().to_string(),
                spec: Spec::ScalableTarget(ScalableTargetSpec {
                    resource_id: t.resource_id().to_string(),
                    service: Ref::Addr(super::ecs_service::address(&ctx.region)),
                    min: t.min_capacity(),
                    max: t.max_capacity(),
                }),
                tags: Tags::new(),
                state: String::new(),
                attrs: Default::default(),
            })
            .collect())
    }
    async fn create(ctx: &Ctx<'_>, new: Create<'_, ScalableTargetSpec>) -> Result<String, Error> {
        let Create { address, spec, .. } = new;
        register(ctx, address.region(), spec).await?;
        Ok(spec.resource_id.clone())
    }
    async fn update(ctx: &Ctx<'_>, change: Update<'_, ScalableTargetSpec>) -> Result<(), Error> {
        let Update { address, desired, .. } = change;
        register(ctx, address.region(), desired).await
    }
    async fn delete(ctx: &Ctx<'_>, gone: Delete<'_, ScalableTargetSpec>) -> Result<(), Error> {
        let Delete { address, id, .. } = gone;
        client(ctx.clients, address.region())
            .deregister_scalable_target()
            .service_namespace(ServiceNamespace::Ecs)
            .resource_id(id)
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .send()
            .await
            .op_or_gone("DeregisterScalableTarget", |e| e.is_object_not_found_exception())?;
        Ok(())
    }
}

/// `RegisterScalableTarget` creates or updates: repeating it is harmless.
async fn register(ctx: &Ctx<'_>, region: &str, spec: &ScalableTargetSpec) -> Result<(), Error> {
    client(ctx.clients, region)
        .register_scalable_target()
        .service_namespace(ServiceNamespace::Ecs)
        .resource_id(&spec.resource_id)
        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
        .min_capacity(spec.min)
        .max_capacity(spec.max)
        .send()
        .await
        .op("RegisterScalableTarget")?;
    Ok(())
}
