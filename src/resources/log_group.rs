//! CloudWatch Logs log group: where the application's containers write (`/ecs/{app}-{env}`), with
//! a retention period and an optional KMS key, at `<region>/service/log-group/app`.
//!
//! Discovery: one paginated `DescribeLogGroups` with the environment's name prefix, then
//! `ListTagsForResource` for each group found (one per environment and region) to confirm it is
//! ours. Its ID is its name; its ARN is the attribute `arn`.

use aws_sdk_cloudwatchlogs::types::LogGroup as SdkLogGroup;
use serde::Serialize;

use super::Update;
use super::{
    attr, Create, Ctx, Delete, Diff, Found, Kind, ObserveCtx, Replace, Scope, Spec, Tags, TAG_ADDRESS,
    TAG_APP, TAG_ENV,
};
use crate::cloud::{AwsResultExt, Error};
use crate::spec::Address;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LogGroupSpec {
    pub name: String,
    pub retention_days: i32,
    /// The KMS key (ARN) that encrypts it; `None`: CloudWatch Logs' own encryption.
    pub kms_key: Option<String>,
}

pub struct LogGroup;

impl Kind for LogGroup {
    type Spec = LogGroupSpec;
    const NAME: &'static str = "log-group";
    const SCOPE: Scope = Scope::Regional;
    const TAGGED: bool = true;
    const PARTS: &'static [&'static str] = &["service"];
    const ACTIONS: &'static [&'static str] = &[
        "logs:DescribeLogGroups",
        "logs:ListTagsForResource",
        "logs:CreateLogGroup",
        "logs:PutRetentionPolicy",
        "logs:AssociateKmsKey",
        "logs:DisassociateKmsKey",
        "logs:TagResource",
        "logs:DeleteLogGroup",
        "tag:GetResources",
    ];

    fn diff(desired: &LogGroupSpec, observed: &LogGroupSpec, d: &mut Diff) {
        diff_fields!(d, desired, observed, name: Yes, retention_days: No, kms_key: No);
    }
    fn conflicts(a: &LogGroupSpec, b: &LogGroupSpec) -> bool {
        a.name == b.name
    }
    async fn observe(ctx: &ObserveCtx<'_>) -> Result<Vec<Found>, Error> {
        let client: aws_sdk_cloudwatchlogs::Client = ctx.clients.get(&ctx.region);
        let prefix = crate::spec::names::log_group_name_prefix(ctx.app, ctx.env);
        let groups: Vec<SdkLogGroup> = client
            .describe_log_groups()
            .log_group_name_prefix(&prefix)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .op("DescribeLogGroups")?;
        // Tags from the region's tagging index; a group it does not hold yet, one at a time.
        let index = if groups.is_empty() { Default::default() } else { super::tagging::tagged(ctx).await? };
        let mut found = Vec::new();
        for g in &groups {
            let Some(arn) = arn_of(g) else { continue };
            let tags = super::tagging::tags_or(&index, &arn, || async {
                Ok(client
                    .list_tags_for_resource()
                    .resource_arn(&arn)
                    .send()
                    .await
                    .op("ListTagsForResource")?
                    .tags()
                    .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                    .unwrap_or_default())
            })
            .await?;
            if tags.get(TAG_APP).map(String::as_str) != Some(ctx.app)
                || tags.get(TAG_ENV).map(String::as_str) != Some(ctx.env)
            {
                continue;
            }
            let Some(address) = super::tagged_address(&tags, "log-group") else { continue };
            found.push(Found {
                address,
                id: g.log_group_name().unwrap_or_default().to_string(),
                spec: Spec::LogGroup(spec_of(g)),
                tags,
                state: String::new(),
                attrs: [(attr::ARN, arn)].into(),
            });
        }
        Ok(found)
    }
    /// Creates the group tagged in the same request. CloudWatch Logs takes no idempotency token: a
    /// create answered "already exists" takes the group if it carries this address's tag.
    async fn create(ctx: &Ctx<'_>, new: Create<'_, LogGroupSpec>) -> Result<String, Error> {
        let Create { address, spec, tags } = new;
        let region = address.region();
        let client = client(ctx, region);
        let created = client
            .create_log_group()
            .log_group_name(&spec.name)
            .set_kms_key_id(spec.kms_key.clone())
            .set_tags(Some(tags.clone().into_iter().collect()))
            .send()
            .await
            .op_unless("CreateLogGroup", |e| e.is_resource_already_exists_exception())?;
        let out = client
            .describe_log_groups()
            .log_group_name_prefix(&spec.name)
            .send()
            .await
            .op("DescribeLogGroups")?;
        let group =
            out.log_groups().iter().find(|g| g.log_group_name() == Some(spec.name.as_str())).ok_or_else(
                || Error::InvalidState(format!("log group {} was created but is not there", spec.name)),
            )?;
        let arn = arn_of(group).unwrap_or_default();
        if created.is_none() {
            let tags =
                client.list_tags_for_resource().resource_arn(&arn).send().await.op("ListTagsForResource")?;
            if tags.tags().and_then(|t| t.get(TAG_ADDRESS)).map(String::as_str) != Some(address.as_str()) {
                return Err(Error::InvalidState(format!(
                    "a log group named {} already exists and is not this environment's {address}",
                    spec.name
                )));
            }
        }
        ctx.ids.set_attr(address, attr::ARN, arn);
        update(ctx, region, spec, &spec_of(group)).await?;
        Ok(spec.name.clone())
    }
    async fn update(ctx: &Ctx<'_>, change: Update<'_, LogGroupSpec>) -> Result<(), Error> {
        let Update { address, desired, observed, .. } = change;
        update(ctx, address.region(), desired, observed).await
    }
    async fn delete(ctx: &Ctx<'_>, gone: Delete<'_, LogGroupSpec>) -> Result<(), Error> {
        let Delete { address, id, .. } = gone;
        client(ctx, address.region())
            .delete_log_group()
            .log_group_name(id)
            .send()
            .await
            .op_or_gone("DeleteLogGroup", |e| e.is_resource_not_found_exception())?;
        Ok(())
    }
    async fn repair_tags(ctx: &Ctx<'_>, address: &Address, id: &str, missing: &Tags) -> Result<(), Error> {
        let arn = ctx.ids.attr(address, attr::ARN).unwrap_or_else(|| id.to_string());
        client(ctx, address.region())
            .tag_resource()
            .resource_arn(arn.trim_end_matches(":*"))
            .set_tags(Some(missing.clone().into_iter().collect()))
            .send()
            .await
            .op("TagResource")?;
        Ok(())
    }
}

fn client(ctx: &Ctx<'_>, region: &str) -> aws_sdk_cloudwatchlogs::Client {
    ctx.clients.get(region)
}

fn spec_of(g: &SdkLogGroup) -> LogGroupSpec {
    LogGroupSpec {
        name: g.log_group_name().unwrap_or_default().to_string(),
        retention_days: g.retention_in_days().unwrap_or(0),
        kms_key: g.kms_key_id().map(str::to_string),
    }
}

/// The ARN tagging takes: without the `:*` that `DescribeLogGroups`' `arn` ends in.
fn arn_of(g: &SdkLogGroup) -> Option<String> {
    g.log_group_arn().map(str::to_string).or_else(|| g.arn().map(|a| a.trim_end_matches(":*").to_string()))
}

async fn update(
    ctx: &Ctx<'_>,
    region: &str,
    desired: &LogGroupSpec,
    observed: &LogGroupSpec,
) -> Result<(), Error> {
    let client = client(ctx, region);
    if desired.retention_days != observed.retention_days {
        client
            .put_retention_policy()
            .log_group_name(&desired.name)
            .retention_in_days(desired.retention_days)
            .send()
            .await
            .op("PutRetentionPolicy")?;
    }
    if desired.kms_key != observed.kms_key {
        match &desired.kms_key {
            Some(key) => {
                client
                    .associate_kms_key()
                    .log_group_name(&desired.name)
                    .kms_key_id(key)
                    .send()
                    .await
                    .op("AssociateKmsKey")?;
            }
            None => {
                client
                    .disassociate_kms_key()
                    .log_group_name(&desired.name)
                    .send()
                    .await
                    .op("DisassociateKmsKey")?;
            }
        }
    }
    Ok(())
}
