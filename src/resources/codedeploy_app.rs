//! CodeDeploy application `{app}-{env}` (compute platform ECS) in every region, at
//! `<region>/release/codedeploy-app/main`: the home of the deployment group releases go through.
//!
//! Discovery: the name is fixed by the environment: one `GetApplication` and one
//! `ListTagsForResource`. ID: its ARN (its name is the same in every region).

use aws_sdk_codedeploy::types::ComputePlatform;
use serde::Serialize;

use super::codedeploy::{arn, client, observed_tags, sdk_tags, tag_resource, tags_of};
use super::{
    Create, Ctx, Delete, Diff, Found, Kind, ObserveCtx, Replace, Scope, Spec, Tags, Update, TAG_ADDRESS,
};
use crate::cloud::{AwsResultExt, Error};
use crate::spec::Address;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CodedeployAppSpec {
    pub name: String,
    /// `ECS`.
    pub compute_platform: String,
}

pub struct CodedeployApp;

impl Kind for CodedeployApp {
    type Spec = CodedeployAppSpec;
    const NAME: &'static str = "codedeploy-app";
    const SCOPE: Scope = Scope::Regional;
    const TAGGED: bool = true;
    const PARTS: &'static [&'static str] = &["service"];
    const ACTIONS: &'static [&'static str] = &[
        "codedeploy:GetApplication",
        "codedeploy:CreateApplication",
        "codedeploy:DeleteApplication",
        "codedeploy:ListTagsForResource",
        "codedeploy:TagResource",
        "tag:GetResources",
    ];

    fn diff(desired: &CodedeployAppSpec, observed: &CodedeployAppSpec, d: &mut Diff) {
        diff_fields!(d, desired, observed, name: Yes, compute_platform: Yes);
    }
    fn conflicts(a: &CodedeployAppSpec, b: &CodedeployAppSpec) -> bool {
        a.name == b.name
    }
    async fn observe(ctx: &ObserveCtx<'_>) -> Result<Vec<Found>, Error> {
        let client = client(ctx.clients, &ctx.region);
        let name = format!("{}-{}", ctx.app, ctx.env);
        let app = match client.get_application().application_name(&name).send().await {
            Ok(out) => match out.application {
                Some(app) => app,
                None => return Ok(vec![]),
            },
            Err(e) if e.as_service_error().is_some_and(|e| e.is_application_does_not_exist_exception()) => {
                return Ok(vec![])
            }
            Err(e) => return Err(e).op("GetApplication"),
        };
        let tags = observed_tags(
            ctx,
            &client,
            &arn(ctx.clients, &ctx.region, &format!("application:{name}")).await?,
        )
        .await?;
        if !super::is_ours(&tags, ctx.app, ctx.env) {
            return Ok(vec![]);
        }
        let Some(address) = super::tagged_address(&tags, "codedeploy-app") else { return Ok(vec![]) };
        Ok(vec![Found {
            address,
            id: arn(ctx.clients, &ctx.region, &format!("application:{name}")).await?,
            spec: Spec::CodedeployApp(CodedeployAppSpec {
                name,
                compute_platform: app.compute_platform().map(|p| p.as_str().to_string()).unwrap_or_default(),
            }),
            tags,
            state: String::new(),
            attrs: Default::default(),
        }])
    }
    async fn create(ctx: &Ctx<'_>, new: Create<'_, CodedeployAppSpec>) -> Result<String, Error> {
        let Create { address, spec, tags } = new;
        let client = client(ctx.clients, address.region());
        let created = client
            .create_application()
            .application_name(&spec.name)
            .compute_platform(ComputePlatform::from(spec.compute_platform.as_str()))
            .set_tags(Some(sdk_tags(tags)))
            .send()
            .await
            .op_unless("CreateApplication", |e| e.is_application_already_exists_exception())?;
        if created.is_none() {
            // Its first answer lost, or a crash after it: take it only if it is this one.
            let theirs = tags_of(
                &client,
                &arn(ctx.clients, address.region(), &format!("application:{}", spec.name)).await?,
            )
            .await?;
            if theirs.get(TAG_ADDRESS).map(String::as_str) != Some(address.as_str()) {
                return Err(Error::InvalidState(format!(
                    "a CodeDeploy application named {} already exists and is not this environment's {address}",
                    spec.name
                )));
            }
        }
        arn(ctx.clients, address.region(), &format!("application:{}", spec.name)).await
    }
    async fn update(_: &Ctx<'_>, _: Update<'_, CodedeployAppSpec>) -> Result<(), Error> {
        // Every compared field replaces it.
        Ok(())
    }
    async fn delete(ctx: &Ctx<'_>, gone: Delete<'_, CodedeployAppSpec>) -> Result<(), Error> {
        let Delete { address, id, .. } = gone;
        // Deletes its deployment groups with it; AWS answers success for one already gone.
        let name = id.rsplit_once(":application:").map_or(id, |(_, n)| n);
        client(ctx.clients, address.region())
            .delete_application()
            .application_name(name)
            .send()
            .await
            .op("DeleteApplication")?;
        Ok(())
    }
    async fn repair_tags(ctx: &Ctx<'_>, address: &Address, id: &str, missing: &Tags) -> Result<(), Error> {
        tag_resource(ctx.clients, address.region(), id, missing).await
    }
}
