//! Load balancer listener, three per region (the load balancer is their parent): `https` (443,
//! TLS 1.3 policy, the certificate, forward to blue), `http` (80, a 301 redirect to HTTPS:443)
//! and `test` (the test port, HTTPS, forward to green), at `<region>/service/listener/<name>`.
//!
//! **Who owns the forwarding.** A release through CodeDeploy swaps which target group the
//! `https` and `test` listeners forward to (blue ↔ green). So their forward target is not drift
//! while it is either of the environment's pair: the spec carries the pair CodeDeploy may swap
//! between (`swappable_with`), and the diff accepts either. A forward anywhere else, or a
//! redirect in its place, is drift that `up` repairs — and `up` puts back the configured colour
//! only then, never undoing a release.
//!
//! Discovery: for each of the environment's load balancers, `DescribeListeners` and one
//! `DescribeTags` for its listeners. ID: the listener's ARN.

use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, Certificate, Listener as SdkListener, ProtocolEnum, RedirectActionConfig,
    RedirectActionStatusCodeEnum,
};
use serde::Serialize;

use super::elbv2::{address_if_ours, client_of, observed_tags, sdk_tags, tags_of};
use super::{
    Create, Ctx, Delete, Diff, Found, Kind, ObserveCtx, Replace, Role, Scope, Spec, Tags, Update, TAG_ADDRESS,
};
use crate::cloud::{AwsResultExt, Error};
use crate::spec::{Address, Ref};

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum ListenerAction {
    Forward {
        target_group: Ref,
        /// The other target group of the blue/green pair: forwarding to it is a release's doing,
        /// not drift. `None` on observed specs.
        #[serde(skip_serializing_if = "Option::is_none")]
        swappable_with: Option<Ref>,
    },
    Redirect {
        protocol: String,
        port: String,
        status_code: String,
    },
    /// A forward weighted across more than one target group: a release shifting traffic from
    /// blue to green (a canary or linear step). Only ever observed.
    Weighted {
        target_groups: Vec<Ref>,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ListenerSpec {
    pub load_balancer: Ref,
    pub port: i32,
    /// `HTTP` or `HTTPS`.
    pub protocol: String,
    pub ssl_policy: Option<String>,
    pub certificate: Option<Ref>,
    pub action: ListenerAction,
}

/// Whether the observed action is what the desired one allows (see the module doc).
fn action_matches(desired: &ListenerAction, observed: &ListenerAction) -> bool {
    match (desired, observed) {
        (
            ListenerAction::Forward { target_group, swappable_with },
            ListenerAction::Forward { target_group: theirs, .. },
        ) => theirs == target_group || Some(theirs) == swappable_with.as_ref(),
        (
            ListenerAction::Forward { target_group, swappable_with },
            ListenerAction::Weighted { target_groups },
        ) => target_groups.iter().all(|t| t == target_group || Some(t) == swappable_with.as_ref()),
        (d, o) => d == o,
    }
}

pub fn diff(desired: &ListenerSpec, observed: &ListenerSpec, d: &mut Diff) {
    diff_fields!(d, desired, observed,
        load_balancer: Yes, port: No, protocol: No, ssl_policy: No, certificate: No,
    );
    if !action_matches(&desired.action, &observed.action) {
        d.field("action", &desired.action, &observed.action, Replace::No);
    }
}

pub struct Listener;

impl Kind for Listener {
    type Spec = ListenerSpec;
    const NAME: &'static str = "listener";
    const SCOPE: Scope = Scope::Regional;
    const TAGGED: bool = true;
    const PARTS: &'static [&'static str] = &["service"];
    const ACTIONS: &'static [&'static str] = &[
        "elasticloadbalancing:DescribeLoadBalancers",
        "elasticloadbalancing:AddTags",
        "elasticloadbalancing:DescribeListeners",
        "elasticloadbalancing:CreateListener",
        "elasticloadbalancing:ModifyListener",
        "elasticloadbalancing:DeleteListener",
        "elasticloadbalancing:DescribeTags",
        "tag:GetResources",
    ];

    fn refs(spec: &mut ListenerSpec) -> Vec<(Role, &mut Ref)> {
        let mut refs = vec![(Role::Parent, &mut spec.load_balancer)];
        if let Some(c) = &mut spec.certificate {
            // ACM refuses to delete a certificate a listener uses.
            refs.push((Role::Holds, c));
        }
        match &mut spec.action {
            ListenerAction::Forward { target_group, swappable_with } => {
                // ELB refuses to delete a target group a listener forwards to.
                refs.push((Role::Holds, target_group));
                if let Some(other) = swappable_with {
                    refs.push((Role::Holds, other));
                }
            }
            ListenerAction::Weighted { target_groups } => {
                refs.extend(target_groups.iter_mut().map(|t| (Role::Holds, t)));
            }
            ListenerAction::Redirect { .. } => {}
        }
        refs
    }
    fn normalize(spec: &mut ListenerSpec) {
        // A plain-HTTP listener has no TLS policy or certificate (moto reports a default policy
        // on it anyway; AWS reports none).
        if spec.protocol == "HTTP" {
            spec.ssl_policy = None;
            spec.certificate = None;
        }
    }
    fn diff(desired: &ListenerSpec, observed: &ListenerSpec, d: &mut Diff) {
        diff(desired, observed, d)
    }
    fn conflicts(a: &ListenerSpec, b: &ListenerSpec) -> bool {
        // One listener per port on a load balancer.
        a.load_balancer == b.load_balancer && a.port == b.port
    }
    async fn observe(ctx: &ObserveCtx<'_>) -> Result<Vec<Found>, Error> {
        let client = client_of(ctx.clients, &ctx.region);
        let lbs = super::elbv2::environment_load_balancers(ctx).await?;
        let mut found = Vec::new();
        for lb in lbs.iter() {
            let Some(lb_arn) = lb.load_balancer_arn() else { continue };
            let listeners: Vec<SdkListener> = client
                .describe_listeners()
                .load_balancer_arn(lb_arn)
                .into_paginator()
                .items()
                .send()
                .try_collect()
                .await
                .op("DescribeListeners")?;
            let arns: Vec<String> =
                listeners.iter().filter_map(|l| l.listener_arn().map(str::to_string)).collect();
            let tags = observed_tags(ctx, &client, &arns).await?;
            for l in &listeners {
                let Some(arn) = l.listener_arn() else { continue };
                let Some(tags) = tags.get(arn) else { continue };
                let Some(address) = address_if_ours(ctx, tags) else { continue };
                found.push(Found {
                    address,
                    id: arn.to_string(),
                    spec: Spec::Listener(spec_of(l)),
                    tags: tags.clone(),
                    state: String::new(),
                    attrs: Default::default(),
                });
            }
        }
        Ok(found)
    }
    /// ELB takes no token for listeners, and a load balancer has one listener per port: a create
    /// answered `DuplicateListener` (its first answer lost) takes the listener on that port if it
    /// carries this address's tag, and brings it to the spec.
    async fn create(ctx: &Ctx<'_>, new: Create<'_, ListenerSpec>) -> Result<String, Error> {
        let Create { address, spec, tags } = new;
        let client = client_of(ctx.clients, address.region());
        let lb = ctx.id(&spec.load_balancer)?;
        let mut c = client
            .create_listener()
            .load_balancer_arn(&lb)
            .port(spec.port)
            .protocol(ProtocolEnum::from(spec.protocol.as_str()))
            .default_actions(action(ctx, &spec.action)?)
            .set_tags(Some(sdk_tags(tags)));
        if let Some(policy) = &spec.ssl_policy {
            c = c.ssl_policy(policy);
        }
        if let Some(cert) = &spec.certificate {
            c = c.certificates(Certificate::builder().certificate_arn(ctx.id(cert)?).build());
        }
        let created = c.send().await.op_unless("CreateListener", |e| e.is_duplicate_listener_exception())?;
        if let Some(arn) =
            created.and_then(|out| out.listeners().first().and_then(|l| l.listener_arn().map(str::to_string)))
        {
            return Ok(arn);
        }
        let out = client.describe_listeners().load_balancer_arn(&lb).send().await.op("DescribeListeners")?;
        let existing = out
            .listeners()
            .iter()
            .find(|l| l.port() == Some(spec.port))
            .and_then(|l| l.listener_arn())
            .ok_or_else(|| {
                Error::InvalidState(format!(
                    "{address}: a listener on port {} was reported but is not there",
                    spec.port
                ))
            })?
            .to_string();
        let theirs = tags_of(&client, std::slice::from_ref(&existing)).await?;
        if theirs.get(&existing).and_then(|t| t.get(TAG_ADDRESS)).map(String::as_str)
            != Some(address.as_str())
        {
            return Err(Error::InvalidState(format!(
                "{address}: the load balancer already has a listener on port {} that is not this environment's",
                spec.port
            )));
        }
        let diff = Diff::default();
        let change = Update { address, id: &existing, desired: spec, observed: spec, diff: &diff, tags };
        Listener::update(ctx, change).await?;
        Ok(existing)
    }
    async fn update(ctx: &Ctx<'_>, change: Update<'_, ListenerSpec>) -> Result<(), Error> {
        let Update { address, id, desired, observed, diff, .. } = change;
        // Only what differs is sent. The forward target above all: after a release CodeDeploy
        // forwards production to green and has deleted blue's task set, so re-sending the
        // configured forward (blue) with a TLS policy or certificate change would take
        // production off the running version. With no field differing (a referenced resource
        // was replaced), everything is re-sent as it is now: the action as observed, never a
        // traffic split CodeDeploy is in the middle of.
        let repoint = diff.is_empty();
        let send_action = if diff.has("action") {
            Some(&desired.action)
        } else if repoint && !matches!(observed.action, ListenerAction::Weighted { .. }) {
            Some(&observed.action)
        } else {
            None
        };
        let mut m = client_of(ctx.clients, address.region()).modify_listener().listener_arn(id);
        let mut any = false;
        if diff.has("port") {
            m = m.port(desired.port);
            any = true;
        }
        if diff.has("protocol") {
            m = m.protocol(ProtocolEnum::from(desired.protocol.as_str()));
            any = true;
        }
        if let Some(a) = send_action {
            m = m.default_actions(action(ctx, a)?);
            any = true;
        }
        if let Some(policy) = desired.ssl_policy.as_ref().filter(|_| repoint || diff.has("ssl_policy")) {
            m = m.ssl_policy(policy);
            any = true;
        }
        if let Some(cert) = desired.certificate.as_ref().filter(|_| repoint || diff.has("certificate")) {
            m = m.certificates(Certificate::builder().certificate_arn(ctx.id(cert)?).build());
            any = true;
        }
        if any {
            m.send().await.op("ModifyListener")?;
        }
        Ok(())
    }
    async fn delete(ctx: &Ctx<'_>, gone: Delete<'_, ListenerSpec>) -> Result<(), Error> {
        let Delete { address, id, .. } = gone;
        client_of(ctx.clients, address.region())
            .delete_listener()
            .listener_arn(id)
            .send()
            .await
            .op_or_gone("DeleteListener", |e| e.is_listener_not_found_exception())?;
        Ok(())
    }
    async fn repair_tags(ctx: &Ctx<'_>, address: &Address, id: &str, missing: &Tags) -> Result<(), Error> {
        super::elbv2::add_tags(ctx.clients, address.region(), id, missing).await
    }
}

fn action(ctx: &Ctx<'_>, a: &ListenerAction) -> Result<Action, Error> {
    Ok(match a {
        ListenerAction::Forward { target_group, .. } => {
            Action::builder().r#type(ActionTypeEnum::Forward).target_group_arn(ctx.id(target_group)?).build()
        }
        ListenerAction::Redirect { protocol, port, status_code } => Action::builder()
            .r#type(ActionTypeEnum::Redirect)
            .redirect_config(
                RedirectActionConfig::builder()
                    .protocol(protocol)
                    .port(port)
                    .status_code(RedirectActionStatusCodeEnum::from(status_code.as_str()))
                    .build(),
            )
            .build(),
        ListenerAction::Weighted { .. } => {
            return Err(Error::InvalidState("a weighted forward is only observed, never configured".into()))
        }
    })
}

fn action_of(l: &SdkListener) -> ListenerAction {
    let a = l.default_actions().first();
    match a.and_then(|a| a.redirect_config()) {
        Some(r) if a.and_then(|a| a.r#type()) == Some(&ActionTypeEnum::Redirect) => {
            ListenerAction::Redirect {
                protocol: r.protocol().unwrap_or("#{protocol}").to_string(),
                port: r.port().unwrap_or("#{port}").to_string(),
                status_code: r.status_code().map(|c| c.as_str().to_string()).unwrap_or_default(),
            }
        }
        _ => {
            // A forward with weights names its groups only in its ForwardConfig.
            let weighted: Vec<Ref> = a
                .and_then(|a| a.forward_config())
                .map(|f| f.target_groups())
                .unwrap_or_default()
                .iter()
                .filter(|t| t.weight().unwrap_or(1) > 0)
                .filter_map(|t| t.target_group_arn().map(|arn| Ref::Id(arn.to_string())))
                .collect();
            match a.and_then(|a| a.target_group_arn()) {
                Some(arn) if weighted.len() <= 1 => {
                    ListenerAction::Forward { target_group: Ref::Id(arn.to_string()), swappable_with: None }
                }
                _ if weighted.len() == 1 => {
                    ListenerAction::Forward { target_group: weighted[0].clone(), swappable_with: None }
                }
                _ if weighted.len() > 1 => ListenerAction::Weighted { target_groups: weighted },
                _ => ListenerAction::Forward { target_group: Ref::Id(String::new()), swappable_with: None },
            }
        }
    }
}

fn spec_of(l: &SdkListener) -> ListenerSpec {
    ListenerSpec {
        load_balancer: Ref::Id(l.load_balancer_arn().unwrap_or_default().to_string()),
        port: l.port().unwrap_or_default(),
        protocol: l.protocol().map(|p| p.as_str().to_string()).unwrap_or_default(),
        ssl_policy: l.ssl_policy().map(str::to_string),
        certificate: l
            .certificates()
            .first()
            .and_then(|c| c.certificate_arn())
            .map(|c| Ref::Id(c.to_string())),
        action: action_of(l),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listener(action: ListenerAction) -> ListenerSpec {
        ListenerSpec {
            load_balancer: Ref::Id("lb".into()),
            port: 443,
            protocol: "HTTPS".into(),
            ssl_policy: Some("ELBSecurityPolicy-TLS13-1-2-2021-06".into()),
            certificate: Some(Ref::Id("cert".into())),
            action,
        }
    }

    fn forward(to: &str, other: Option<&str>) -> ListenerAction {
        ListenerAction::Forward {
            target_group: Ref::Id(to.into()),
            swappable_with: other.map(|o| Ref::Id(o.into())),
        }
    }

    fn differs(desired: &ListenerSpec, observed: &ListenerSpec) -> bool {
        let mut d = Diff::default();
        diff(desired, observed, &mut d);
        !d.is_empty()
    }

    #[test]
    fn codedeploy_swapping_the_colours_is_not_drift_but_anything_else_is() {
        let desired = listener(forward("blue", Some("green")));
        assert!(!differs(&desired, &listener(forward("blue", None))));
        assert!(!differs(&desired, &listener(forward("green", None))), "a release moved it to green");
        assert!(differs(&desired, &listener(forward("elsewhere", None))));
        let shifting = |groups: &[&str]| ListenerAction::Weighted {
            target_groups: groups.iter().map(|g| Ref::Id((*g).into())).collect(),
        };
        assert!(!differs(&desired, &listener(shifting(&["blue", "green"]))), "a canary step");
        assert!(differs(&desired, &listener(shifting(&["blue", "elsewhere"]))));
        let redirect = ListenerAction::Redirect {
            protocol: "HTTPS".into(),
            port: "443".into(),
            status_code: "HTTP_301".into(),
        };
        assert!(differs(&desired, &listener(redirect.clone())));
        // The HTTP listener's redirect turned into a forward is drift.
        assert!(differs(&listener(redirect), &listener(forward("blue", None))));
    }
}
