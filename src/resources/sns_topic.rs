//! SNS topic the region's alarms notify, at `<region>/monitoring/sns-topic/alarms`
//! (`{app}-{env}-alarms`), with its subscriptions (`[monitoring] emails`, `https_endpoints`) and
//! its access policy: CloudWatch alarms and EventBridge (the scheduled drift check's rule) of
//! this account may publish to it.
//!
//! **Subscriptions** cannot be tagged; they live inside the topic, as routes live inside a route
//! table, so they are a field of the topic compared as a set of `(protocol, endpoint)`. An email
//! or HTTPS subscription stays *pending* until its owner confirms it: SNS lists it with the ARN
//! `PendingConfirmation`. Pending is not drift (the subscription was made; a person has to act),
//! and `status` shows it. A pending subscription cannot be removed (SNS has no ARN for it yet; it
//! deletes it after three days unconfirmed): an unwanted one is reported and left.
//!
//! `CreateTopic` is idempotent by name (same attributes and tags: the same ARN), and `Subscribe`
//! by `(topic, protocol, endpoint)`, so a retried or repeated create or update is harmless; a run
//! that died after creating the topic finds it by its tags and subscribes what is missing.
//!
//! The policy names the topic's own ARN, a literal built from the account (`model/monitoring.rs`):
//! its statements are not references, or the topic would depend on itself.
//!
//! Discovery: the topic at the ARN its name makes (`{app}-{env}-alarms`, the only topic the
//! model has), and any other SNS topic the region's tagging index holds for the environment
//! (`src/resources/tagging.rs`): `GetTopicAttributes` of each (a topic that is gone answers
//! `NotFound`), its tags from the index (`ListTagsForResource` when the index does not hold them
//! as they should be), and `ListSubscriptionsByTopic`. `ListTopics` is not sent: it lists every
//! topic of the account, 100 a page, so its reads grow with the account. What this does not see:
//! a topic of the environment under another name that the index does not hold yet, which no
//! configuration makes (the model's one topic is `alarms`). ID: the topic's ARN.

use std::collections::BTreeMap;

use aws_sdk_sns::types::Tag;
use serde::Serialize;

use super::iam_policy::PolicyDocument;
use super::{
    Create, Ctx, Delete, Diff, Found, Kind, ObserveCtx, Readiness, Replace, Scope, Spec, Tags, Update,
};
use crate::cloud::{AwsResultExt, Error};
use crate::spec::Address;

/// The ARN SNS lists for a subscription its owner has not confirmed yet.
pub const PENDING: &str = "PendingConfirmation";

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Subscription {
    /// `email` or `https`.
    pub protocol: String,
    pub endpoint: String,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SnsTopicSpec {
    pub name: String,
    pub policy: PolicyDocument,
    /// Sorted, without repeats, once normalised.
    pub subscriptions: Vec<Subscription>,
    /// Observed: each subscription's ARN (`PendingConfirmation` while unconfirmed). Not compared.
    #[serde(skip)]
    pub subscription_arns: BTreeMap<Subscription, String>,
}

/// The name of the topic the region's alarms notify, `{app}-{env}-alarms`.
pub const ALARMS: &str = "alarms";

/// A topic's name: `{app}-{env}-<name>`.
pub fn name(app: &str, env: &str, topic: &str) -> String {
    format!("{app}-{env}-{topic}")
}

/// Whether an SNS ARN names a topic (`arn:aws:sns:region:account:name`), not a subscription
/// (which adds `:<id>`).
fn is_topic(arn: &str) -> bool {
    arn.split(':').count() == 6
}

fn client(clients: &crate::cloud::Clients, region: &str) -> aws_sdk_sns::Client {
    clients.get(region)
}

pub struct SnsTopic;

impl Kind for SnsTopic {
    type Spec = SnsTopicSpec;
    const NAME: &'static str = "sns-topic";
    const SCOPE: Scope = Scope::Regional;
    const TAGGED: bool = true;
    const PARTS: &'static [&'static str] = &["monitoring"];
    const ACTIONS: &'static [&'static str] = &[
        "sns:ListTagsForResource",
        "sns:GetTopicAttributes",
        "sns:ListSubscriptionsByTopic",
        "sns:CreateTopic",
        "sns:SetTopicAttributes",
        "sns:Subscribe",
        "sns:Unsubscribe",
        "sns:TagResource",
        "sns:DeleteTopic",
        "tag:GetResources",
    ];

    fn normalize(spec: &mut SnsTopicSpec) {
        spec.policy.normalize();
        spec.subscriptions.sort();
        spec.subscriptions.dedup();
    }
    fn diff(desired: &SnsTopicSpec, observed: &SnsTopicSpec, d: &mut Diff) {
        diff_fields!(d, desired, observed, name: Yes, policy: No, subscriptions: No);
    }
    fn readiness(_: &SnsTopicSpec, _: &str) -> Readiness {
        // A pending subscription waits for a person, not for AWS: nothing to wait for.
        Readiness::Ready
    }
    fn conflicts(a: &SnsTopicSpec, b: &SnsTopicSpec) -> bool {
        a.name == b.name
    }
    async fn observe(ctx: &ObserveCtx<'_>) -> Result<Vec<Found>, Error> {
        let sns = client(ctx.clients, &ctx.region);
        // The topic's ARN follows from its name, and any other topic of the environment is in
        // the region's tagging index: `ListTopics` (every topic of the account, 100 a page)
        // is not needed, so the reads do not grow with the account's topics.
        let index = super::tagging::tagged(ctx).await?;
        let account = ctx.clients.account().await?;
        let mut arns: std::collections::BTreeSet<String> =
            index.arns_of("sns").filter(|a| is_topic(a)).collect();
        arns.insert(account.arn("sns", &ctx.region, &name(ctx.app, ctx.env, ALARMS)));
        let mut found = Vec::new();
        for arn in arns {
            let attributes = match sns.get_topic_attributes().topic_arn(&arn).send().await {
                Ok(out) => out.attributes().cloned().unwrap_or_default(),
                Err(e) if e.as_service_error().is_some_and(|e| e.is_not_found_exception()) => continue,
                Err(e) => return Err(e).op("GetTopicAttributes"),
            };
            let tags = match index.current(&arn) {
                Some(tags) => tags.clone(),
                None => match tags_of(&sns, &arn).await? {
                    Some(tags) => tags,
                    None => continue,
                },
            };
            if !super::is_ours(&tags, ctx.app, ctx.env) {
                continue;
            }
            let Some(address) = super::tagged_address(&tags, "sns-topic") else { continue };
            let policy = match attributes.get("Policy") {
                Some(text) => PolicyDocument::parse(text)?,
                None => PolicyDocument::default(),
            };
            let subscription_arns = subscriptions_of(&sns, &arn).await?;
            let pending = subscription_arns.values().filter(|a| a.as_str() == PENDING).count();
            let state = match (subscription_arns.len(), pending) {
                (0, _) => "no subscriptions".to_string(),
                (n, 0) => format!("{n} subscription(s)"),
                (n, p) => format!("{n} subscription(s), {p} pending confirmation"),
            };
            found.push(Found {
                address,
                id: arn.clone(),
                spec: Spec::SnsTopic(SnsTopicSpec {
                    name: arn.rsplit(':').next().unwrap_or_default().to_string(),
                    policy,
                    subscriptions: subscription_arns.keys().cloned().collect(),
                    subscription_arns,
                }),
                tags,
                state,
                attrs: Default::default(),
            });
        }
        Ok(found)
    }
    async fn create(ctx: &Ctx<'_>, new: Create<'_, SnsTopicSpec>) -> Result<String, Error> {
        let Create { address, spec, tags } = new;
        let sns = client(ctx.clients, address.region());
        let out = sns
            .create_topic()
            .name(&spec.name)
            .attributes("Policy", spec.policy.to_json(ctx)?)
            .set_tags(Some(sdk_tags(tags)))
            .send()
            .await
            .op("CreateTopic")?;
        let arn = out
            .topic_arn()
            .ok_or_else(|| Error::InvalidState(format!("CreateTopic returned no ARN for {}", spec.name)))?
            .to_string();
        for s in &spec.subscriptions {
            subscribe(&sns, &arn, s).await?;
        }
        Ok(arn)
    }
    async fn update(ctx: &Ctx<'_>, change: Update<'_, SnsTopicSpec>) -> Result<(), Error> {
        let Update { address, id, desired, observed, diff, .. } = change;
        let sns = client(ctx.clients, address.region());
        if diff.has("policy") {
            sns.set_topic_attributes()
                .topic_arn(id)
                .attribute_name("Policy")
                .attribute_value(desired.policy.to_json(ctx)?)
                .send()
                .await
                .op("SetTopicAttributes")?;
        }
        for s in desired.subscriptions.iter().filter(|s| !observed.subscriptions.contains(s)) {
            subscribe(&sns, id, s).await?;
        }
        for s in observed.subscriptions.iter().filter(|s| !desired.subscriptions.contains(s)) {
            match observed.subscription_arns.get(s).map(String::as_str) {
                Some(arn) if arn != PENDING => {
                    match sns.unsubscribe().subscription_arn(arn).send().await {
                        Ok(_) => {}
                        Err(e) if e.as_service_error().is_some_and(|e| e.is_not_found_exception()) => {}
                        Err(e) => return Err(e).op("Unsubscribe"),
                    }
                }
                _ => tracing::warn!(
                    "{address}: the {} subscription of {} is not in the configuration but still pending confirmation; SNS cannot remove it until it is confirmed, and deletes it after three days unconfirmed",
                    s.protocol,
                    s.endpoint
                ),
            }
        }
        Ok(())
    }
    async fn delete(ctx: &Ctx<'_>, gone: Delete<'_, SnsTopicSpec>) -> Result<(), Error> {
        let Delete { address, id, .. } = gone;
        // Idempotent on AWS: a topic that is gone is no error. Its subscriptions go with it.
        match client(ctx.clients, address.region()).delete_topic().topic_arn(id).send().await {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_not_found_exception()) => Ok(()),
            Err(e) => Err(e).op("DeleteTopic"),
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

/// The topic's tags; `None` when it vanished since it was listed.
async fn tags_of(sns: &aws_sdk_sns::Client, arn: &str) -> Result<Option<Tags>, Error> {
    match sns.list_tags_for_resource().resource_arn(arn).send().await {
        Ok(out) => {
            Ok(Some(out.tags().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect()))
        }
        Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => Ok(None),
        Err(e) => Err(e).op("ListTagsForResource"),
    }
}

async fn subscriptions_of(
    sns: &aws_sdk_sns::Client,
    arn: &str,
) -> Result<BTreeMap<Subscription, String>, Error> {
    let mut out = BTreeMap::new();
    let mut token: Option<String> = None;
    loop {
        let page = sns
            .list_subscriptions_by_topic()
            .topic_arn(arn)
            .set_next_token(token.clone())
            .send()
            .await
            .op("ListSubscriptionsByTopic")?;
        for s in page.subscriptions() {
            let (Some(protocol), Some(endpoint)) = (s.protocol(), s.endpoint()) else { continue };
            let key = Subscription { protocol: protocol.to_string(), endpoint: endpoint.to_string() };
            out.insert(key, s.subscription_arn().unwrap_or(PENDING).to_string());
        }
        match page.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => break,
        }
    }
    Ok(out)
}

/// Subscribes `s` (SNS returns the existing subscription for the same protocol and endpoint).
async fn subscribe(sns: &aws_sdk_sns::Client, topic: &str, s: &Subscription) -> Result<(), Error> {
    sns.subscribe()
        .topic_arn(topic)
        .protocol(&s.protocol)
        .endpoint(&s.endpoint)
        .return_subscription_arn(true)
        .send()
        .await
        .op("Subscribe")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::iam_policy::Statement;
    use crate::spec::Ref;

    fn spec(subscriptions: &[(&str, &str)]) -> SnsTopicSpec {
        SnsTopicSpec {
            name: "webapp-prod-alarms".into(),
            policy: PolicyDocument::new(vec![Statement::allow(
                &["sns:Publish"],
                vec![Ref::Id("arn:aws:sns:us-east-1:1:webapp-prod-alarms".into())],
            )]),
            subscriptions: subscriptions
                .iter()
                .map(|(p, e)| Subscription { protocol: (*p).into(), endpoint: (*e).into() })
                .collect(),
            subscription_arns: BTreeMap::new(),
        }
    }

    #[test]
    fn a_pending_subscription_is_there_and_a_missing_one_is_an_update() {
        let desired = spec(&[("email", "ops@example.com"), ("https", "https://hooks.example.com/a")]);
        let mut observed = spec(&[("https", "https://hooks.example.com/a"), ("email", "ops@example.com")]);
        observed.subscription_arns.insert(observed.subscriptions[1].clone(), PENDING.into());
        let (mut want, mut have) = (Spec::SnsTopic(desired.clone()), Spec::SnsTopic(observed));
        want.normalize();
        have.normalize();
        assert!(want.diff(&have).is_empty(), "pending is not drift");
        let d = Spec::SnsTopic(desired).diff(&Spec::SnsTopic(spec(&[("email", "ops@example.com")])));
        assert!(d.has("subscriptions") && !d.replace(), "{d:?}");
    }
}
