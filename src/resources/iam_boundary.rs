//! IAM permissions boundary (global): the customer-managed policy `{app}-{env}-boundary` under
//! the environment's IAM path, at `global/iam/iam-boundary/roles`. Every role the deployer
//! creates carries it as its permissions boundary, so a role can never do more than the
//! boundary allows, whatever inline policy it is given.
//!
//! **Why it exists.** The deployer may create roles and write their policies, and pass them to
//! ECS. Without a boundary, whoever holds the deployer's credentials could create a role with
//! `"Action": "*"` and run a task with it: administrator access. The deployer's own policy
//! (`deployer iam-policy`) allows `iam:CreateRole`, `iam:PutRolePolicy` and
//! `iam:PutRolePermissionsBoundary` only with `iam:PermissionsBoundary` naming this policy
//! ("Permissions boundaries for IAM entities", IAM user guide), and grants **no change to the
//! boundary itself**: creating or widening it (`iam:CreatePolicy`, `iam:CreatePolicyVersion`)
//! is for an administrator (the first `up`, or an `up` that widens a role, run with
//! administrator credentials). A deployer that could rewrite its own ceiling would have none.
//!
//! The document is made from the roles' own policies (`permissions::boundary`): the same
//! actions, each resource of the environment widened to its name pattern (so the boundary does
//! not depend on resources that depend on the roles), everything else as it is.
//!
//! Changes: `CreatePolicyVersion` as the default, after deleting the non-default versions (IAM
//! keeps at most five), then the previous default is deleted: one version is kept. A retried
//! version whose answer was lost leaves one more version, which the next change deletes.
//! Delete: the non-default versions, then the policy (after the roles that name it).
//!
//! Discovery: `GetPolicy` of the boundary's ARN (made from its name and path, as the deployer's
//! own policy names it: `names::boundary_arn`; its tags), and `GetPolicyVersion` of the default
//! version. ID: the policy's ARN.

use serde::Serialize;

use super::iam_policy::{client, sdk_tags, tags_of, PolicyDocument};
use super::{
    Create, Ctx, Delete, Diff, Found, Kind, ObserveCtx, Replace, Scope, Spec, Tags, Update, TAG_ADDRESS,
};
use crate::cloud::{AwsResultExt, Error};
use crate::spec::Address;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct IamBoundarySpec {
    pub name: String,
    /// `/deployer/<app>/<env>/`.
    pub path: String,
    /// Literal ARNs and patterns only: no reference to the environment's resources.
    pub document: PolicyDocument,
}

pub struct IamBoundary;

/// IAM refused a change of the boundary to the deployer's own credentials, as the policy
/// `deployer iam-policy` prints means it to.
fn administrator_only(e: Error, what: &str) -> Error {
    if e.code() == Some("AccessDenied") || e.code() == Some("AccessDeniedException") {
        return Error::InvalidState(format!(
            "{what}: {e}. The roles' permissions boundary is created and widened only by an administrator (the deployer's own policy cannot change its ceiling): run this `deployer up` once with administrator credentials, or have an administrator apply `deployer iam-policy --boundary`"
        ));
    }
    e
}

impl Kind for IamBoundary {
    type Spec = IamBoundarySpec;
    const NAME: &'static str = "iam-boundary";
    const SCOPE: Scope = Scope::Global;
    const TAGGED: bool = true;
    // (`iam:CreatePolicy` and `iam:CreatePolicyVersion` are the administrator's:
    // `permissions::ADMINISTRATOR_ONLY`.)
    const PARTS: &'static [&'static str] = &["service"];
    const ACTIONS: &'static [&'static str] = &[
        "iam:GetPolicy",
        "iam:GetPolicyVersion",
        "iam:ListPolicyVersions",
        "iam:TagPolicy",
        "iam:DeletePolicyVersion",
        "iam:DeletePolicy",
    ];

    fn normalize(spec: &mut IamBoundarySpec) {
        spec.document.normalize();
    }
    fn diff(desired: &IamBoundarySpec, observed: &IamBoundarySpec, d: &mut Diff) {
        diff_fields!(d, desired, observed, name: Yes, path: Yes, document: No);
    }
    fn conflicts(a: &IamBoundarySpec, b: &IamBoundarySpec) -> bool {
        a.name == b.name && a.path == b.path
    }
    async fn observe(ctx: &ObserveCtx<'_>) -> Result<Vec<Found>, Error> {
        let iam = client(ctx.clients);
        // The boundary's ARN follows from its name and path (`names::boundary_arn`), so one
        // `GetPolicy` of it reads it, where listing the path's policies first cost one more read.
        let arn = crate::spec::names::boundary_arn(ctx.app, ctx.env, &ctx.clients.account().await?);
        let Some((tags, spec)) = read(&iam, &arn).await? else { return Ok(vec![]) };
        if !super::is_ours(&tags, ctx.app, ctx.env) {
            return Ok(vec![]);
        }
        let Some(address) = super::tagged_address(&tags, &format!("policy {arn}")) else { return Ok(vec![]) };
        Ok(vec![Found {
            address,
            id: arn,
            spec: Spec::IamBoundary(spec),
            tags,
            state: String::new(),
            attrs: Default::default(),
        }])
    }
    async fn create(ctx: &Ctx<'_>, new: Create<'_, IamBoundarySpec>) -> Result<String, Error> {
        let Create { address, spec, tags } = new;
        let iam = client(ctx.clients);
        let created = iam
            .create_policy()
            .policy_name(&spec.name)
            .path(&spec.path)
            .description("The permissions boundary of every role of this environment (deployer)")
            .policy_document(spec.document.to_json(ctx)?)
            .set_tags(Some(sdk_tags(tags)))
            .send()
            .await
            .op_unless("CreatePolicy", |e| e.is_entity_already_exists_exception())
            .map_err(|e| administrator_only(e, "creating the permissions boundary"))?;
        if let Some(arn) = created.and_then(|out| out.policy).and_then(|p| p.arn) {
            return Ok(arn);
        }
        // Already there: a create whose answer was lost, or a run that died after it. Taken
        // only if it is this address's, then brought to the spec.
        let arn = ctx.clients.account().await?.arn("iam", "", &format!("policy{}{}", spec.path, spec.name));
        let (tags, mut observed) = read(&iam, &arn).await?.ok_or_else(|| {
            Error::InvalidState(format!("policy {arn} was reported to exist but is not there"))
        })?;
        if tags.get(TAG_ADDRESS).map(String::as_str) != Some(address.as_str()) {
            return Err(Error::InvalidState(format!(
                "an IAM policy {arn} already exists and is not this environment's {address}"
            )));
        }
        let mut want = spec.clone();
        IamBoundary::normalize(&mut want);
        IamBoundary::normalize(&mut observed);
        if want.document != observed.document {
            new_version(ctx, &iam, &arn, spec).await?;
        }
        Ok(arn)
    }
    async fn update(ctx: &Ctx<'_>, change: Update<'_, IamBoundarySpec>) -> Result<(), Error> {
        let Update { id, desired, diff, .. } = change;
        // Only a different document needs a new version (an administrator's change).
        if !diff.has("document") {
            return Ok(());
        }
        new_version(ctx, &client(ctx.clients), id, desired).await
    }
    async fn delete(ctx: &Ctx<'_>, gone: Delete<'_, IamBoundarySpec>) -> Result<(), Error> {
        let Delete { id, .. } = gone;
        let iam = client(ctx.clients);
        for version in old_versions(&iam, id).await? {
            delete_version(&iam, id, &version).await?;
        }
        iam.delete_policy()
            .policy_arn(id)
            .send()
            .await
            .op_or_gone("DeletePolicy", |e| e.is_no_such_entity_exception())
            .map(|_| ())
            .or_else(|e| if e.is_not_found() { Ok(()) } else { Err(e) })
    }
    async fn repair_tags(ctx: &Ctx<'_>, _: &Address, id: &str, missing: &Tags) -> Result<(), Error> {
        client(ctx.clients)
            .tag_policy()
            .policy_arn(id)
            .set_tags(Some(sdk_tags(missing)))
            .send()
            .await
            .op("TagPolicy")
            .map_err(|e| administrator_only(e, "tagging the permissions boundary"))?;
        Ok(())
    }
}

/// The policy's tags and spec (its default version's document); `None` once it is gone.
async fn read(iam: &aws_sdk_iam::Client, arn: &str) -> Result<Option<(Tags, IamBoundarySpec)>, Error> {
    let policy = match iam
        .get_policy()
        .policy_arn(arn)
        .send()
        .await
        .op_or_gone("GetPolicy", |e| e.is_no_such_entity_exception())
    {
        Ok(out) => match out.policy {
            Some(p) => p,
            None => return Ok(None),
        },
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(e),
    };
    let tags = tags_of(policy.tags());
    let version = iam
        .get_policy_version()
        .policy_arn(arn)
        .version_id(policy.default_version_id().unwrap_or("v1"))
        .send()
        .await
        .op("GetPolicyVersion")?;
    let document = match version.policy_version().and_then(|v| v.document()) {
        Some(text) => PolicyDocument::parse(text)?,
        None => PolicyDocument::default(),
    };
    let spec = IamBoundarySpec {
        name: policy.policy_name().unwrap_or_default().to_string(),
        path: policy.path().unwrap_or_default().to_string(),
        document,
    };
    Ok(Some((tags, spec)))
}

/// The IDs of the policy's versions that are not its default.
async fn old_versions(iam: &aws_sdk_iam::Client, arn: &str) -> Result<Vec<String>, Error> {
    let versions: Vec<aws_sdk_iam::types::PolicyVersion> = iam
        .list_policy_versions()
        .policy_arn(arn)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .op("ListPolicyVersions")?;
    Ok(versions
        .iter()
        .filter(|v| !v.is_default_version())
        .filter_map(|v| v.version_id().map(str::to_string))
        .collect())
}

async fn delete_version(iam: &aws_sdk_iam::Client, arn: &str, version: &str) -> Result<(), Error> {
    iam.delete_policy_version()
        .policy_arn(arn)
        .version_id(version)
        .send()
        .await
        .op_unless("DeletePolicyVersion", |e| e.is_no_such_entity_exception())
        .map_err(|e| administrator_only(e, "changing the permissions boundary"))?;
    Ok(())
}

/// Makes `spec`'s document the default version, keeping only it (IAM allows five versions).
async fn new_version(
    ctx: &Ctx<'_>,
    iam: &aws_sdk_iam::Client,
    arn: &str,
    spec: &IamBoundarySpec,
) -> Result<(), Error> {
    for version in old_versions(iam, arn).await? {
        delete_version(iam, arn, &version).await?;
    }
    iam.create_policy_version()
        .policy_arn(arn)
        .policy_document(spec.document.to_json(ctx)?)
        .set_as_default(true)
        .send()
        .await
        .op("CreatePolicyVersion")
        .map_err(|e| administrator_only(e, "changing the permissions boundary"))?;
    for version in old_versions(iam, arn).await? {
        delete_version(iam, arn, &version).await?;
    }
    Ok(())
}
