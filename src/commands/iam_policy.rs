//! `deployer iam-policy`: the least-privilege policy the deployer needs for the environment
//! (`crate::permissions::policy`), as an IAM policy document on stdout.

use miette::miette;

use super::{credentials_hint, emit, exit, Session};
use crate::spec::Account;

pub async fn iam_policy(
    session: &Session,
    account: Option<&str>,
    split: bool,
    boundary: bool,
) -> miette::Result<u8> {
    let config = session.config();
    let account = match account {
        Some(id) => Account {
            id: id.to_string(),
            partition: Account::partition_of_region(&config.primary_region).to_string(),
        },
        None => session.clients.account().await.map_err(|e| {
            miette!(
                help = format!("{}; or name the account with --account", credentials_hint(&e)),
                "could not read the AWS account: {e}"
            )
        })?,
    };
    let boundary_arn = crate::spec::names::boundary_arn(&config.app, &config.env, &account);
    let policy = if boundary {
        let desired = crate::model::desired(config, &account);
        let found = desired.resources.into_iter().find_map(|r| match r.spec {
            crate::resources::Spec::IamBoundary(b) => Some(b.document),
            _ => None,
        });
        let Some(document) = found else {
            return Err(miette!(
                "environment '{}' has no IAM role (the service tier and the drift schedule are off), so no permissions boundary",
                config.env
            ));
        };
        document
    } else {
        crate::permissions::policy(config, &account)
    };
    let ids = crate::resources::IdMap::default();
    let ctx = crate::resources::Ctx {
        clients: &session.clients,
        ids: &ids,
        policy: Default::default(),
        timeout: config.engine.wait_timeout,
        timeouts: Default::default(),
    };
    let text = policy.to_json(&ctx).map_err(|e| miette!("{e}"))?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| miette!("{e}"))?;
    let size = value.to_string().len();
    let limit = crate::permissions::MANAGED_POLICY_LIMIT;
    let out = if split { serde_json::Value::Array(crate::permissions::split(&value, limit)) } else { value };
    emit(&format!("{}\n", serde_json::to_string_pretty(&out).map_err(|e| miette!("{e}"))?));
    if boundary {
        let address = crate::spec::Address::global(crate::model::service::IAM_TIER, "iam-boundary", "roles");
        let tags: Vec<String> = crate::spec::tags_for(&config.app, &config.env, &address)
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        eprintln!(
            "iam-policy: the permissions boundary of every role of environment '{}': create it as the managed policy {boundary_arn}, tagged {}.",
            config.env,
            tags.join(" ")
        );
        return Ok(exit::OK);
    }
    let actions = crate::permissions::actions(config).len();
    eprintln!(
        "iam-policy: {actions} actions for environment '{}' in account {} ({}).",
        config.env,
        account.id,
        config.region_names().join(", ")
    );
    if !split && size > limit {
        eprintln!(
            "The document has {size} characters; IAM takes at most {limit} in one managed policy. `--split` prints it as several documents that fit."
        );
    }
    if config.service.enabled || config.drift.schedule.is_some() {
        eprintln!(
            "Roles are created and given permissions only with the permissions boundary {boundary_arn}, which this policy cannot change: run the first `up` (and any `up` that widens a role) with administrator credentials, or create it from `deployer iam-policy --env {} --boundary`.",
            config.env
        );
    }
    if let Some(role) = &config.aws.role_arn {
        eprintln!(
            "Attach it to {role}. The identity that runs the deployer needs only sts:AssumeRole on that role{}.",
            if config.aws.external_id.is_some() { " (with the external ID)" } else { "" }
        );
    }
    Ok(exit::OK)
}
