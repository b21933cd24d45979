//! IAM role (global scope): a trust policy naming the one service that may assume it, and one
//! inline policy (`deployer`) listing exactly what it may do on this environment's resources.
//! The service tier has three: the task execution role, the task role and the CodeDeploy role,
//! at `global/iam/iam-role/<name>`, named `{app}-{env}-<name>` under the path
//! `/deployer/<app>/<env>/`.
//!
//! Discovery: IAM has no tag search, and the Resource Groups Tagging API's `GetResources` does
//! not cover IAM roles (AWS, "Services that support the Resource Groups Tagging API"), so the
//! environment's roles are found by their path — one
//! paginated `ListRoles` with `PathPrefix` — and then, per role, `GetRole` (its tags: `ListRoles`
//! returns none), `ListRolePolicies` and `GetRolePolicy` of its inline policies, and
//! `ListAttachedRolePolicies`: a fixed number of reads per role, and a fixed number of roles.
//!
//! What is compared: the trust policy and the inline policy, semantically
//! ([`super::iam_policy`]); any other inline policy or attached managed policy is a difference
//! (the deployer's roles have none, so someone attaching `AdministratorAccess` by hand is drift
//! that `up` removes); the description. A new name or path replaces the role (IAM cannot rename).

use aws_sdk_iam::types::Role as SdkRole;
use serde::Serialize;

use super::iam_policy::{client, sdk_tags, tags_of, PolicyDocument};
use super::{
    attr, Create, Ctx, Delete, Diff, Found, Kind, ObserveCtx, Replace, Role, Scope, Spec, Tags, Update,
    TAG_ADDRESS,
};
use crate::cloud::{AwsResultExt, Error};
use crate::spec::{Address, Ref};

/// The name of the inline policy the deployer writes.
pub const POLICY_NAME: &str = "deployer";

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct IamRoleSpec {
    pub name: String,
    /// `/deployer/<app>/<env>/`.
    pub path: String,
    pub description: String,
    pub trust: PolicyDocument,
    /// The inline policy `deployer`; `None` for a role with no permissions of its own.
    pub policy: Option<PolicyDocument>,
    /// Other inline policies (by name) and attached managed policies (by ARN): none wanted.
    pub other_inline_policies: Vec<String>,
    pub managed_policies: Vec<String>,
    /// The permissions boundary (the environment's `iam-boundary`, by ARN): the most the role
    /// may ever do, whatever its policies say.
    pub boundary: Option<Ref>,
}

pub fn diff(desired: &IamRoleSpec, observed: &IamRoleSpec, d: &mut Diff) {
    diff_fields!(d, desired, observed,
        name: Yes, path: Yes, description: No, trust: No, policy: No, other_inline_policies: No,
        managed_policies: No, boundary: No,
    );
}

pub struct IamRole;

impl Kind for IamRole {
    type Spec = IamRoleSpec;
    const NAME: &'static str = "iam-role";
    const SCOPE: Scope = Scope::Global;
    const TAGGED: bool = true;
    const PARTS: &'static [&'static str] = &["service"];
    const ACTIONS: &'static [&'static str] = &[
        "iam:ListRoles",
        "iam:GetRole",
        "iam:GetRolePolicy",
        "iam:ListRolePolicies",
        "iam:ListAttachedRolePolicies",
        "iam:CreateRole",
        "iam:PutRolePermissionsBoundary",
        "iam:TagRole",
        "iam:UpdateRole",
        "iam:UpdateAssumeRolePolicy",
        "iam:PutRolePolicy",
        "iam:DeleteRolePolicy",
        "iam:DetachRolePolicy",
        "iam:DeleteRole",
    ];

    fn refs(spec: &mut IamRoleSpec) -> Vec<(Role, &mut Ref)> {
        // A policy may name a resource that does not exist yet (IAM accepts any ARN), so these
        // only order the role after what it names.
        let mut refs: Vec<(Role, &mut Ref)> = spec.trust.refs().map(|r| (Role::Points, r)).collect();
        if let Some(policy) = &mut spec.policy {
            refs.extend(policy.refs().map(|r| (Role::Points, r)));
        }
        // The boundary must exist before a role can name it.
        refs.extend(spec.boundary.iter_mut().map(|r| (Role::Points, r)));
        refs
    }
    fn normalize(spec: &mut IamRoleSpec) {
        spec.trust.normalize();
        if let Some(policy) = &mut spec.policy {
            policy.normalize();
        }
        spec.other_inline_policies.sort();
        spec.managed_policies.sort();
    }
    fn diff(desired: &IamRoleSpec, observed: &IamRoleSpec, d: &mut Diff) {
        diff(desired, observed, d)
    }
    fn conflicts(a: &IamRoleSpec, b: &IamRoleSpec) -> bool {
        // Role names are unique in the account: a replacement waits for the old role.
        a.name == b.name
    }
    async fn observe(ctx: &ObserveCtx<'_>) -> Result<Vec<Found>, Error> {
        let client = client(ctx.clients);
        let path = crate::spec::names::iam_path(ctx.app, ctx.env);
        let roles: Vec<SdkRole> = client
            .list_roles()
            .path_prefix(&path)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .op("ListRoles")?;
        // A path prefix also matches deeper paths; only this exact path is the environment's.
        // The roles are read side by side: IAM answers from one region, each role takes four
        // reads one after another, and an environment has five roles.
        let read_all =
            roles.iter().filter(|r| r.path() == path).map(|listed| read(&client, listed.role_name()));
        let mut found = Vec::new();
        for read in futures::future::try_join_all(read_all).await? {
            let Some((role, spec)) = read else { continue };
            let tags = tags_of(role.tags());
            if !super::is_ours(&tags, ctx.app, ctx.env) {
                continue;
            }
            let Some(address) = super::tagged_address(&tags, &format!("role {}", role.role_name())) else {
                continue;
            };
            found.push(Found {
                address,
                id: role.arn().to_string(),
                spec: Spec::IamRole(spec),
                tags,
                state: String::new(),
                attrs: [(attr::NAME, role.role_name().to_string())].into(),
            });
        }
        Ok(found)
    }
    /// Creates the role tagged in the same request, then writes its inline policy. IAM takes no
    /// idempotency token: a create answered `EntityAlreadyExists` (its first answer lost, or a crash
    /// right after it) takes the role of that name if it carries this address's tag, and brings it to
    /// the spec.
    async fn create(ctx: &Ctx<'_>, new: Create<'_, IamRoleSpec>) -> Result<String, Error> {
        let Create { address, spec, tags } = new;
        let client = client(ctx.clients);
        let created = client
            .create_role()
            .role_name(&spec.name)
            .path(&spec.path)
            .description(&spec.description)
            .assume_role_policy_document(spec.trust.to_json(ctx)?)
            .set_permissions_boundary(spec.boundary.as_ref().map(|b| ctx.id(b)).transpose()?)
            .set_tags(Some(sdk_tags(tags)))
            .send()
            .await
            .op_unless("CreateRole", |e| e.is_entity_already_exists_exception())?;
        let (arn, observed) = match created.and_then(|out| out.role) {
            Some(role) => {
                let empty = IamRoleSpec {
                    policy: None,
                    other_inline_policies: vec![],
                    managed_policies: vec![],
                    ..spec.clone()
                };
                (role.arn().to_string(), empty)
            }
            None => {
                let (role, observed) = read(&client, &spec.name).await?.ok_or_else(|| {
                    Error::InvalidState(format!("role {} was reported to exist but is not there", spec.name))
                })?;
                if tags_of(role.tags()).get(TAG_ADDRESS).map(String::as_str) != Some(address.as_str()) {
                    return Err(Error::InvalidState(format!(
                        "an IAM role named {} already exists and is not this environment's {address}",
                        spec.name
                    )));
                }
                (role.arn().to_string(), observed)
            }
        };
        let mut want = spec.clone();
        let mut have = observed;
        IamRole::normalize(&mut want);
        IamRole::normalize(&mut have);
        let mut d = Diff::default();
        diff(&want, &have, &mut d);
        update(ctx, spec, &have, &d).await?;
        ctx.ids.set_attr(address, attr::NAME, spec.name.clone());
        Ok(arn)
    }
    async fn update(ctx: &Ctx<'_>, change: Update<'_, IamRoleSpec>) -> Result<(), Error> {
        let Update { desired, observed, diff, .. } = change;
        update(ctx, desired, observed, diff).await
    }
    /// Removes the role's policies (IAM refuses to delete a role that has any), then the role.
    async fn delete(ctx: &Ctx<'_>, gone: Delete<'_, IamRoleSpec>) -> Result<(), Error> {
        let Delete { observed, .. } = gone;
        let name: &str = &observed.name;
        let client = client(ctx.clients);
        let Some((_, spec)) = read(&client, name).await? else { return Ok(()) };
        let policies = spec.policy.iter().map(|_| POLICY_NAME.to_string()).chain(spec.other_inline_policies);
        for policy in policies {
            client
                .delete_role_policy()
                .role_name(name)
                .policy_name(policy)
                .send()
                .await
                .op_unless("DeleteRolePolicy", |e| e.is_no_such_entity_exception())?;
        }
        for arn in &spec.managed_policies {
            client
                .detach_role_policy()
                .role_name(name)
                .policy_arn(arn)
                .send()
                .await
                .op_unless("DetachRolePolicy", |e| e.is_no_such_entity_exception())?;
        }
        client
            .delete_role()
            .role_name(name)
            .send()
            .await
            .op_or_gone("DeleteRole", |e| e.is_no_such_entity_exception())?;
        Ok(())
    }
    async fn repair_tags(ctx: &Ctx<'_>, _: &Address, id: &str, missing: &Tags) -> Result<(), Error> {
        let name = id.rsplit('/').next().unwrap_or(id);
        client(ctx.clients)
            .tag_role()
            .role_name(name)
            .set_tags(Some(sdk_tags(missing)))
            .send()
            .await
            .op("TagRole")?;
        Ok(())
    }
}

fn is_no_such_entity<E: aws_smithy_types::error::metadata::ProvideErrorMetadata>(e: &E) -> bool {
    e.code() == Some("NoSuchEntity")
}

/// Everything IAM says about the role `name`: its spec, tags and ARN; `None` once it is gone.
async fn read(client: &aws_sdk_iam::Client, name: &str) -> Result<Option<(SdkRole, IamRoleSpec)>, Error> {
    let role = match client.get_role().role_name(name).send().await.op_or_gone("GetRole", is_no_such_entity) {
        Ok(out) => match out.role {
            Some(role) => role,
            None => return Ok(None),
        },
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(e),
    };
    let names: Vec<String> = client
        .list_role_policies()
        .role_name(name)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .op("ListRolePolicies")?;
    let policy = if names.iter().any(|n| n == POLICY_NAME) {
        let out = client
            .get_role_policy()
            .role_name(name)
            .policy_name(POLICY_NAME)
            .send()
            .await
            .op("GetRolePolicy")?;
        Some(PolicyDocument::parse(out.policy_document())?)
    } else {
        None
    };
    let managed: Vec<String> = client
        .list_attached_role_policies()
        .role_name(name)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .op("ListAttachedRolePolicies")?
        .iter()
        .filter_map(|p| p.policy_arn().map(str::to_string))
        .collect();
    let trust = match role.assume_role_policy_document() {
        Some(text) => PolicyDocument::parse(text)?,
        None => PolicyDocument::default(),
    };
    let spec = IamRoleSpec {
        name: role.role_name().to_string(),
        path: role.path().to_string(),
        description: role.description().unwrap_or_default().to_string(),
        trust,
        policy,
        other_inline_policies: names.into_iter().filter(|n| n != POLICY_NAME).collect(),
        managed_policies: managed,
        boundary: role
            .permissions_boundary()
            .and_then(|b| b.permissions_boundary_arn())
            .map(|arn| Ref::Id(arn.to_string())),
    };
    Ok(Some((role, spec)))
}

/// Writes what differs: the trust policy, the inline policy (or its removal), the description;
/// removes inline policies and detaches managed policies that are not the deployer's. Each call
/// replaces a whole value, so a repeat after a lost answer is harmless.
async fn update(
    ctx: &Ctx<'_>,
    desired: &IamRoleSpec,
    observed: &IamRoleSpec,
    diff: &Diff,
) -> Result<(), Error> {
    let client = client(ctx.clients);
    let name = &desired.name;
    // First: the deployer may write a role's policy only while the role carries the boundary
    // (its own policy's `iam:PermissionsBoundary` condition).
    if diff.has("boundary") {
        if let Some(boundary) = &desired.boundary {
            client
                .put_role_permissions_boundary()
                .role_name(name)
                .permissions_boundary(ctx.id(boundary)?)
                .send()
                .await
                .op("PutRolePermissionsBoundary")?;
        }
    }
    if diff.has("trust") {
        client
            .update_assume_role_policy()
            .role_name(name)
            .policy_document(desired.trust.to_json(ctx)?)
            .send()
            .await
            .op("UpdateAssumeRolePolicy")?;
    }
    if diff.has("policy") {
        match &desired.policy {
            Some(policy) => {
                client
                    .put_role_policy()
                    .role_name(name)
                    .policy_name(POLICY_NAME)
                    .policy_document(policy.to_json(ctx)?)
                    .send()
                    .await
                    .op("PutRolePolicy")?;
            }
            None => {
                client
                    .delete_role_policy()
                    .role_name(name)
                    .policy_name(POLICY_NAME)
                    .send()
                    .await
                    .op_unless("DeleteRolePolicy", |e| e.is_no_such_entity_exception())?;
            }
        }
    }
    for other in observed.other_inline_policies.iter().filter(|p| !desired.other_inline_policies.contains(p))
    {
        client
            .delete_role_policy()
            .role_name(name)
            .policy_name(other)
            .send()
            .await
            .op_unless("DeleteRolePolicy", |e| e.is_no_such_entity_exception())?;
    }
    for arn in observed.managed_policies.iter().filter(|p| !desired.managed_policies.contains(p)) {
        client
            .detach_role_policy()
            .role_name(name)
            .policy_arn(arn)
            .send()
            .await
            .op_unless("DetachRolePolicy", |e| e.is_no_such_entity_exception())?;
    }
    if diff.has("description") {
        client
            .update_role()
            .role_name(name)
            .description(&desired.description)
            .send()
            .await
            .op("UpdateRole")?;
    }
    Ok(())
}
