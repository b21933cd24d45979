//! EventBridge rule on the default event bus, at `<region>/<tier>/event-rule/<name>`
//! (`{app}-{env}-<name>`), with its targets. The drift tier makes one, `drift-found`: the ECS
//! task state change of a stopped drift check whose container exited with 2, sent to the
//! region's alarm topic with a message that says what happened and what to run.
//!
//! The event pattern is JSON and compared as a JSON value (key order and spacing are not
//! differences). Targets cannot be tagged and live in the rule, so they are a field of it,
//! compared by ID.
//!
//! `PutRule` creates or updates by name and `PutTargets` by target ID, so a repeated or retried
//! create is harmless; a run that died between the two finds the rule by its tags and puts the
//! targets. A rule's targets must go before the rule can (`RemoveTargets`, then `DeleteRule`).
//!
//! Discovery: `ListRules` with the environment's prefix, then `ListTagsForResource` and
//! `ListTargetsByRule` for each (one per environment). ID: the rule's ARN.

use std::collections::BTreeMap;

use aws_sdk_eventbridge::types::{InputTransformer, RuleState, Tag, Target};
use serde::Serialize;
use serde_json::Value;

use super::{
    Create, Ctx, Delete, Diff, Found, Kind, ObserveCtx, Replace, Role, Scope, Spec, Tags, Update, TAG_ADDRESS,
};
use crate::cloud::{AwsResultExt, Error};
use crate::spec::{Address, Ref};

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EventTargetSpec {
    pub id: String,
    /// What receives the events (an SNS topic: its ID is its ARN).
    pub arn: Ref,
    /// JSON path → name, for the template.
    pub input_paths: BTreeMap<String, String>,
    /// The message sent, with `<name>` placeholders; `None` sends the event itself.
    pub input_template: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EventRuleSpec {
    pub name: String,
    pub description: String,
    pub pattern: Value,
    pub enabled: bool,
    /// By ID, sorted once normalised.
    pub targets: Vec<EventTargetSpec>,
}

fn client(clients: &crate::cloud::Clients, region: &str) -> aws_sdk_eventbridge::Client {
    clients.get(region)
}

pub struct EventRule;

impl Kind for EventRule {
    type Spec = EventRuleSpec;
    const NAME: &'static str = "event-rule";
    const SCOPE: Scope = Scope::Regional;
    const TAGGED: bool = true;
    const PARTS: &'static [&'static str] = &["drift"];
    const ACTIONS: &'static [&'static str] = &[
        "events:ListRules",
        "events:ListTagsForResource",
        "events:ListTargetsByRule",
        "events:PutRule",
        "events:PutTargets",
        "events:RemoveTargets",
        "events:DeleteRule",
        "events:TagResource",
        "events:DescribeRule",
        "tag:GetResources",
    ];

    fn refs(spec: &mut EventRuleSpec) -> Vec<(Role, &mut Ref)> {
        spec.targets.iter_mut().map(|t| (Role::Points, &mut t.arn)).collect()
    }
    fn normalize(spec: &mut EventRuleSpec) {
        spec.targets.sort_by(|a, b| a.id.cmp(&b.id));
    }
    fn diff(desired: &EventRuleSpec, observed: &EventRuleSpec, d: &mut Diff) {
        diff_fields!(d, desired, observed, name: Yes, description: No, pattern: No, enabled: No, targets: No);
    }
    fn conflicts(a: &EventRuleSpec, b: &EventRuleSpec) -> bool {
        a.name == b.name
    }
    async fn observe(ctx: &ObserveCtx<'_>) -> Result<Vec<Found>, Error> {
        let c = client(ctx.clients, &ctx.region);
        let mut rules = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = c
                .list_rules()
                .name_prefix(format!("{}-{}-", ctx.app, ctx.env))
                .set_next_token(token.clone())
                .send()
                .await
                .op("ListRules")?;
            rules.extend(out.rules().to_vec());
            match out.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => break,
            }
        }
        // Tags from the region's tagging index; one it does not hold yet, one at a time.
        let index = if rules.is_empty() { Default::default() } else { super::tagging::tagged(ctx).await? };
        let mut found = Vec::new();
        for r in rules {
            let (Some(name), Some(arn)) = (r.name(), r.arn()) else { continue };
            let tags: Tags = match index.current(arn) {
                Some(tags) => tags.clone(),
                None => match c.list_tags_for_resource().resource_arn(arn).send().await {
                    Ok(out) => {
                        out.tags().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect()
                    }
                    Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => {
                        continue
                    }
                    Err(e) => return Err(e).op("ListTagsForResource"),
                },
            };
            if !super::is_ours(&tags, ctx.app, ctx.env) {
                continue;
            }
            let Some(address) = super::tagged_address(&tags, "event-rule") else { continue };
            let targets = c.list_targets_by_rule().rule(name).send().await.op("ListTargetsByRule")?;
            let targets = targets
                .targets()
                .iter()
                .map(|t| EventTargetSpec {
                    id: t.id().to_string(),
                    arn: Ref::Id(t.arn().to_string()),
                    input_paths: t
                        .input_transformer()
                        .and_then(|i| i.input_paths_map())
                        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                        .unwrap_or_default(),
                    input_template: t.input_transformer().map(|i| i.input_template().to_string()),
                })
                .collect();
            let state = r.state().map(|s| s.as_str().to_string()).unwrap_or_default();
            found.push(Found {
                address,
                id: arn.to_string(),
                spec: Spec::EventRule(EventRuleSpec {
                    name: name.to_string(),
                    description: r.description().unwrap_or_default().to_string(),
                    pattern: r
                        .event_pattern()
                        .and_then(|p| serde_json::from_str(p).ok())
                        .unwrap_or(Value::Null),
                    enabled: state == "ENABLED",
                    targets,
                }),
                tags,
                state,
                attrs: Default::default(),
            });
        }
        Ok(found)
    }
    async fn create(ctx: &Ctx<'_>, new: Create<'_, EventRuleSpec>) -> Result<String, Error> {
        let Create { address, spec, tags } = new;
        let c = client(ctx.clients, address.region());
        // PutRule would take over a rule of that name: look first.
        if let Ok(existing) = c.describe_rule().name(&spec.name).send().await {
            let arn = existing.arn().unwrap_or_default();
            let theirs =
                c.list_tags_for_resource().resource_arn(arn).send().await.op("ListTagsForResource")?;
            if !theirs.tags().iter().any(|t| t.key() == TAG_ADDRESS && t.value() == address.as_str()) {
                return Err(Error::InvalidState(format!(
                    "an EventBridge rule named {} already exists and is not this environment's {address}",
                    spec.name
                )));
            }
        }
        let arn = put_rule(ctx, address, spec, Some(tags)).await?;
        put_targets(ctx, address, spec, &[]).await?;
        Ok(arn)
    }
    async fn update(ctx: &Ctx<'_>, change: Update<'_, EventRuleSpec>) -> Result<(), Error> {
        let Update { address, desired, observed, diff, .. } = change;
        if diff.has("description") || diff.has("pattern") || diff.has("enabled") {
            put_rule(ctx, address, desired, None).await?;
        }
        if diff.has("targets") {
            put_targets(ctx, address, desired, &observed.targets).await?;
        }
        Ok(())
    }
    async fn delete(ctx: &Ctx<'_>, gone: Delete<'_, EventRuleSpec>) -> Result<(), Error> {
        let Delete { address, observed, .. } = gone;
        let c = client(ctx.clients, address.region());
        let ids: Vec<String> = observed.targets.iter().map(|t| t.id.clone()).collect();
        if !ids.is_empty() {
            match c.remove_targets().rule(&observed.name).set_ids(Some(ids)).send().await {
                Ok(_) => {}
                Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => {
                    return Ok(())
                }
                Err(e) => return Err(e).op("RemoveTargets"),
            }
        }
        match c.delete_rule().name(&observed.name).send().await {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => Ok(()),
            Err(e) => Err(e).op("DeleteRule"),
        }
    }
    async fn repair_tags(ctx: &Ctx<'_>, address: &Address, id: &str, missing: &Tags) -> Result<(), Error> {
        client(ctx.clients, address.region())
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

async fn put_rule(
    ctx: &Ctx<'_>,
    address: &Address,
    spec: &EventRuleSpec,
    tags: Option<&Tags>,
) -> Result<String, Error> {
    let out = client(ctx.clients, address.region())
        .put_rule()
        .name(&spec.name)
        .description(&spec.description)
        .event_pattern(spec.pattern.to_string())
        .state(if spec.enabled { RuleState::Enabled } else { RuleState::Disabled })
        .set_tags(tags.map(sdk_tags))
        .send()
        .await
        .op("PutRule")?;
    Ok(out.rule_arn().unwrap_or_default().to_string())
}

/// Puts the desired targets and removes the others (of `observed`).
async fn put_targets(
    ctx: &Ctx<'_>,
    address: &Address,
    spec: &EventRuleSpec,
    observed: &[EventTargetSpec],
) -> Result<(), Error> {
    let c = client(ctx.clients, address.region());
    let mut targets = Vec::new();
    for t in &spec.targets {
        let transformer = match &t.input_template {
            Some(template) => Some(
                InputTransformer::builder()
                    .set_input_paths_map(Some(t.input_paths.clone().into_iter().collect()))
                    .input_template(template)
                    .build()
                    .map_err(|e| Error::InvalidRequest(e.to_string()))?,
            ),
            None => None,
        };
        targets.push(
            Target::builder()
                .id(&t.id)
                .arn(ctx.id(&t.arn)?)
                .set_input_transformer(transformer)
                .build()
                .map_err(|e| Error::InvalidRequest(e.to_string()))?,
        );
    }
    if !targets.is_empty() {
        let out =
            c.put_targets().rule(&spec.name).set_targets(Some(targets)).send().await.op("PutTargets")?;
        if let Some(failed) = out.failed_entries().first() {
            return Err(Error::InvalidState(format!(
                "{address}: EventBridge refused target {}: {}",
                failed.target_id().unwrap_or("?"),
                failed.error_message().unwrap_or("no reason given")
            )));
        }
    }
    let gone: Vec<String> = observed
        .iter()
        .filter(|o| !spec.targets.iter().any(|t| t.id == o.id))
        .map(|o| o.id.clone())
        .collect();
    if !gone.is_empty() {
        c.remove_targets().rule(&spec.name).set_ids(Some(gone)).send().await.op("RemoveTargets")?;
    }
    Ok(())
}
