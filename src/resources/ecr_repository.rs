//! ECR repository: where the application's images live. One per environment in the primary
//! region and in every secondary, with the same settings (scan on push, tag mutability,
//! encryption, lifecycle policy), at `<region>/registry/ecr-repository/main`.
//!
//! Discovery: ECR has no tag filter on DescribeRepositories, and the moto in use does not list
//! ECR repositories in the Resource Groups Tagging API's `GetResources` (real AWS does). What
//! works on both: one paginated `DescribeRepositories` per region (1,000 repositories a page),
//! then `ListTagsForResource` only for the repositories whose name starts with `<app>-<env>`
//! (the configuration requires the repository name to), keeping those tagged for the
//! environment, then one `GetLifecyclePolicy` for each of ours. An environment has one
//! repository per region, so the reads per region do not grow with the environment.

use aws_sdk_ecr::types::{
    EncryptionConfiguration, EncryptionType, ImageScanningConfiguration, ImageTagMutability, Repository, Tag,
};
use serde::Serialize;

use super::{
    Create, Ctx, Delete, Diff, Found, Kind, ObserveCtx, Readiness, Replace, Scope, Spec, Tags, Update,
    TAG_ADDRESS,
};
use crate::cloud::{AwsResultExt, Error};
use crate::spec::Address;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EcrRepositorySpec {
    pub name: String,
    pub immutable_tags: bool,
    pub scan_on_push: bool,
    /// `AES256` or `KMS`.
    pub encryption: String,
    /// The KMS key (ARN) when `encryption` is `KMS`.
    pub kms_key: Option<String>,
    /// The lifecycle policy document; `None` when the repository has none. Compared as JSON
    /// values, so key order and whitespace are not differences.
    pub lifecycle_policy: Option<serde_json::Value>,
}

/// The lifecycle policy the configuration asks for: expire untagged images after `days`, keep
/// the newest `keep` tagged images.
pub fn lifecycle_policy(keep: u32, days: u32) -> serde_json::Value {
    serde_json::json!({
        "rules": [
            {
                "rulePriority": 1,
                "description": format!("expire untagged images {days} days after push"),
                "selection": {
                    "tagStatus": "untagged",
                    "countType": "sinceImagePushed",
                    "countUnit": "days",
                    "countNumber": days
                },
                "action": { "type": "expire" }
            },
            {
                "rulePriority": 2,
                "description": format!("keep the newest {keep} tagged images"),
                "selection": {
                    "tagStatus": "tagged",
                    "tagPatternList": ["*"],
                    "countType": "imageCountMoreThan",
                    "countNumber": keep
                },
                "action": { "type": "expire" }
            }
        ]
    })
}

pub fn diff(desired: &EcrRepositorySpec, observed: &EcrRepositorySpec, d: &mut Diff) {
    d.field("name", &desired.name, &observed.name, Replace::Yes);
    // AWS cannot change a repository's encryption after it is created.
    diff_fields!(d, desired, observed,
        encryption: Yes, kms_key: Yes, immutable_tags: No, scan_on_push: No, lifecycle_policy: No,
    );
}

pub struct EcrRepository;

impl Kind for EcrRepository {
    type Spec = EcrRepositorySpec;
    const NAME: &'static str = "ecr-repository";
    const SCOPE: Scope = Scope::Regional;
    const TAGGED: bool = true;
    const PARTS: &'static [&'static str] = &["registry"];
    const ACTIONS: &'static [&'static str] = &[
        "ecr:DescribeRepositories",
        "ecr:ListTagsForResource",
        "ecr:GetLifecyclePolicy",
        "ecr:CreateRepository",
        "ecr:DeleteRepository",
        "ecr:ListImages",
        "ecr:PutImageScanningConfiguration",
        "ecr:PutImageTagMutability",
        "ecr:PutLifecyclePolicy",
        "ecr:TagResource",
        "tag:GetResources",
    ];

    fn diff(desired: &EcrRepositorySpec, observed: &EcrRepositorySpec, d: &mut Diff) {
        diff(desired, observed, d)
    }
    fn readiness(_: &EcrRepositorySpec, _: &str) -> Readiness {
        // Usable as soon as CreateRepository returns.
        Readiness::Ready
    }
    fn conflicts(a: &EcrRepositorySpec, b: &EcrRepositorySpec) -> bool {
        // Names are unique per region: a replacement with the same name waits for the old one.
        a.name == b.name
    }
    async fn observe(ctx: &ObserveCtx<'_>) -> Result<Vec<Found>, Error> {
        let client: aws_sdk_ecr::Client = ctx.clients.get(&ctx.region);
        let repositories: Vec<Repository> = client
            .describe_repositories()
            .max_results(1000)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .op("DescribeRepositories")?;
        let prefix = name_prefix(ctx.app, ctx.env);
        let ours: Vec<_> = repositories
            .iter()
            .filter(|r| r.repository_name().is_some_and(|n| n.starts_with(&prefix)))
            .collect();
        // Tags from the region's tagging index; a repository it does not hold yet, one at a time.
        let index = if ours.is_empty() { Default::default() } else { super::tagging::tagged(ctx).await? };
        let mut found = Vec::new();
        for r in ours {
            let Some(arn) = r.repository_arn() else { continue };
            let tags = super::tagging::tags_or(&index, arn, || async {
                Ok(client
                    .list_tags_for_resource()
                    .resource_arn(arn)
                    .send()
                    .await
                    .op("ListTagsForResource")?
                    .tags()
                    .iter()
                    .map(|t| (t.key().to_string(), t.value().to_string()))
                    .collect())
            })
            .await?;
            if tags.get(super::TAG_APP).map(String::as_str) != Some(ctx.app)
                || tags.get(super::TAG_ENV).map(String::as_str) != Some(ctx.env)
            {
                continue;
            }
            let Some(address) = tags.get(TAG_ADDRESS).and_then(|a| Address::parse(a)) else {
                tracing::warn!(
                    "{arn} is tagged for this environment but has no valid {TAG_ADDRESS} tag; ignoring it"
                );
                continue;
            };
            let name = r.repository_name().unwrap_or_default();
            let policy = lifecycle_policy_of(&client, name).await?;
            found.push(Found {
                address,
                id: arn.to_string(),
                spec: Spec::EcrRepository(spec_of(r, policy)),
                tags,
                state: r.repository_uri().unwrap_or_default().to_string(),
                attrs: Default::default(),
            });
        }
        Ok(found)
    }
    /// Creates the repository tagged in the same request. If it already exists (a create whose
    /// response was lost, or a crash right after it), the existing one is taken when it carries this
    /// address's tag, and brought to the spec; a repository of that name that is not ours is an error.
    async fn create(ctx: &Ctx<'_>, new: Create<'_, EcrRepositorySpec>) -> Result<String, Error> {
        let Create { address, spec, tags } = new;
        let region = address.region();
        let client: aws_sdk_ecr::Client = ctx.clients.get(region);
        let encryption = EncryptionConfiguration::builder()
            .encryption_type(EncryptionType::from(spec.encryption.as_str()))
            .set_kms_key(spec.kms_key.clone())
            .build()
            .map_err(|e| Error::InvalidState(format!("encryption configuration: {e}")))?;
        let result = client
            .create_repository()
            .repository_name(&spec.name)
            .image_tag_mutability(mutability(spec.immutable_tags))
            .image_scanning_configuration(
                ImageScanningConfiguration::builder().scan_on_push(spec.scan_on_push).build(),
            )
            .encryption_configuration(encryption)
            .set_tags(Some(sdk_tags(tags)))
            .send()
            .await
            .op_unless("CreateRepository", |e| e.is_repository_already_exists_exception())?;
        let (arn, observed) = match result {
            Some(out) => {
                let r = out
                    .repository()
                    .ok_or_else(|| Error::InvalidState("CreateRepository returned no repository".into()))?;
                (r.repository_arn().unwrap_or_default().to_string(), spec_of(r, None))
            }
            None => adopt(&client, address, &spec.name).await?,
        };
        update(ctx, region, spec, &observed).await?;
        Ok(arn)
    }
    async fn update(ctx: &Ctx<'_>, change: Update<'_, EcrRepositorySpec>) -> Result<(), Error> {
        let Update { address, desired, observed, .. } = change;
        update(ctx, address.region(), desired, observed).await
    }
    /// Deletes the repository and its images, unless it holds images and the configuration keeps
    /// such repositories (`registry.keep_on_destroy`): then it is left, and the run says so.
    async fn delete(ctx: &Ctx<'_>, gone: Delete<'_, EcrRepositorySpec>) -> Result<(), Error> {
        let Delete { address, observed, .. } = gone;
        let client: aws_sdk_ecr::Client = ctx.clients.get(address.region());
        let name = observed.name.as_str();
        if ctx.policy.keep_repositories_with_images {
            let images = client
                .list_images()
                .repository_name(name)
                .max_results(1)
                .send()
                .await
                .op_or_gone("ListImages", |e| e.is_repository_not_found_exception())?;
            if !images.image_ids().is_empty() {
                tracing::warn!(
                    "kept {address} ({name}): it holds images and registry.keep_on_destroy is true; delete it by hand with `aws ecr delete-repository --force --repository-name {name} --region {}` if it must go",
                    address.region()
                );
                return Ok(());
            }
        }
        client
            .delete_repository()
            .repository_name(name)
            .force(true)
            .send()
            .await
            .op_or_gone("DeleteRepository", |e| e.is_repository_not_found_exception())?;
        Ok(())
    }
    async fn repair_tags(ctx: &Ctx<'_>, address: &Address, id: &str, missing: &Tags) -> Result<(), Error> {
        let client: aws_sdk_ecr::Client = ctx.clients.get(address.region());
        client
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

/// The prefix every repository name of the environment starts with.
pub fn name_prefix(app: &str, env: &str) -> String {
    format!("{app}-{env}")
}

fn spec_of(r: &Repository, lifecycle_policy: Option<serde_json::Value>) -> EcrRepositorySpec {
    let encryption = r.encryption_configuration();
    EcrRepositorySpec {
        name: r.repository_name().unwrap_or_default().to_string(),
        immutable_tags: r.image_tag_mutability() == Some(&ImageTagMutability::Immutable),
        scan_on_push: r.image_scanning_configuration().is_some_and(|c| c.scan_on_push()),
        encryption: encryption
            .map(|e| e.encryption_type().as_str().to_string())
            .unwrap_or_else(|| "AES256".into()),
        kms_key: encryption.and_then(|e| e.kms_key()).map(str::to_string),
        lifecycle_policy,
    }
}

async fn lifecycle_policy_of(
    client: &aws_sdk_ecr::Client,
    name: &str,
) -> Result<Option<serde_json::Value>, Error> {
    let out = client
        .get_lifecycle_policy()
        .repository_name(name)
        .send()
        .await
        .op_or_gone("GetLifecyclePolicy", |e| e.is_lifecycle_policy_not_found_exception());
    match out {
        Ok(o) => Ok(o.lifecycle_policy_text().and_then(|t| serde_json::from_str(t).ok())),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// The existing repository `name`, if it is the one at `address`.
async fn adopt(
    client: &aws_sdk_ecr::Client,
    address: &Address,
    name: &str,
) -> Result<(String, EcrRepositorySpec), Error> {
    let out =
        client.describe_repositories().repository_names(name).send().await.op("DescribeRepositories")?;
    let r = out
        .repositories()
        .first()
        .ok_or_else(|| Error::InvalidState(format!("repository {name} vanished")))?;
    let arn = r.repository_arn().unwrap_or_default().to_string();
    let tags = client.list_tags_for_resource().resource_arn(&arn).send().await.op("ListTagsForResource")?;
    let ours = tags.tags().iter().any(|t| t.key() == TAG_ADDRESS && t.value() == address.as_str());
    if !ours {
        return Err(Error::InvalidState(format!(
            "a repository named {name} already exists in {} and is not this environment's ({arn}); choose another registry.name",
            address.region()
        )));
    }
    let policy = lifecycle_policy_of(client, name).await?;
    Ok((arn, spec_of(r, policy)))
}

fn mutability(immutable: bool) -> ImageTagMutability {
    if immutable {
        ImageTagMutability::Immutable
    } else {
        ImageTagMutability::Mutable
    }
}

/// Sets what differs: tag mutability, scan on push, the lifecycle policy. Each call is
/// idempotent.
async fn update(
    ctx: &Ctx<'_>,
    region: &str,
    desired: &EcrRepositorySpec,
    observed: &EcrRepositorySpec,
) -> Result<(), Error> {
    let client: aws_sdk_ecr::Client = ctx.clients.get(region);
    let name = desired.name.as_str();
    if desired.immutable_tags != observed.immutable_tags {
        client
            .put_image_tag_mutability()
            .repository_name(name)
            .image_tag_mutability(mutability(desired.immutable_tags))
            .send()
            .await
            .op("PutImageTagMutability")?;
    }
    if desired.scan_on_push != observed.scan_on_push {
        client
            .put_image_scanning_configuration()
            .repository_name(name)
            .image_scanning_configuration(
                ImageScanningConfiguration::builder().scan_on_push(desired.scan_on_push).build(),
            )
            .send()
            .await
            .op("PutImageScanningConfiguration")?;
    }
    // The model always wants a lifecycle policy (`registry.keep_tagged_images`,
    // `expire_untagged_after_days`); `None` is only ever observed, when it was removed by hand.
    if let Some(policy) =
        desired.lifecycle_policy.as_ref().filter(|p| Some(*p) != observed.lifecycle_policy.as_ref())
    {
        client
            .put_lifecycle_policy()
            .repository_name(name)
            .lifecycle_policy_text(policy.to_string())
            .send()
            .await
            .op("PutLifecyclePolicy")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> EcrRepositorySpec {
        EcrRepositorySpec {
            name: "webapp-test".into(),
            immutable_tags: false,
            scan_on_push: true,
            encryption: "AES256".into(),
            kms_key: None,
            lifecycle_policy: Some(lifecycle_policy(30, 7)),
        }
    }

    #[test]
    fn a_policy_read_back_with_other_key_order_and_spacing_is_not_drift() {
        let mut observed = spec();
        let text = serde_json::to_string_pretty(&lifecycle_policy(30, 7)).unwrap();
        observed.lifecycle_policy = serde_json::from_str(&text).ok();
        let mut d = Diff::default();
        diff(&spec(), &observed, &mut d);
        assert!(d.is_empty(), "{d:?}");
    }

    #[test]
    fn a_removed_policy_is_drift_in_place_and_new_encryption_forces_replacement() {
        let mut observed = spec();
        observed.lifecycle_policy = None;
        let mut d = Diff::default();
        diff(&spec(), &observed, &mut d);
        assert!(d.has("lifecycle_policy") && !d.replace());
        let mut kms = spec();
        kms.encryption = "KMS".into();
        let mut d = Diff::default();
        diff(&kms, &spec(), &mut d);
        assert!(d.replace());
    }
}
