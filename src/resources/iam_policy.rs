//! IAM policy documents as the deployer writes and compares them: statements with an effect, a
//! service principal (trust policies), actions, resources and conditions. Compared
//! semantically: statement order, key order, a single string against a one-element array,
//! repeated entries and IAM's URL-encoding of returned documents are not differences.
//!
//! A statement's resources are [`Ref`]s: literal ARNs (`Ref::Id`) for what is not a resource of
//! the environment, and `Ref::Addr`/`Ref::Attr` for what is (a role's ARN is its ID; the
//! database's master secret ARN is an attribute of the database). Observed documents hold every
//! resource as `Ref::Id`, and `plan::resolve_references` maps those of our resources back.
//!
//! Also IAM's side of the two IAM kinds (the roles and their permissions boundary): the client
//! (IAM is global) and tags both ways.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{json, Map, Value};

use super::{Ctx, Tags};
use crate::cloud::Error;
use crate::spec::Ref;

pub const VERSION: &str = "2012-10-17";

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct PolicyDocument {
    /// Sorted and without duplicates once normalised.
    pub statements: Vec<Statement>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Statement {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// `Allow` or `Deny`.
    pub effect: String,
    /// The one service principal of a trust policy statement (`ecs-tasks.amazonaws.com`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_principal: Option<String>,
    pub actions: Vec<String>,
    #[serde(serialize_with = "bare_refs", skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<Ref>,
    /// Operator → condition key → values (`StringEquals` → `aws:SourceAccount` → \[account\]).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub conditions: BTreeMap<String, BTreeMap<String, Vec<String>>>,
    /// Anything else the statement holds (`NotAction`, another principal…), as canonical JSON:
    /// never written by the deployer, so an out-of-band addition is a difference.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other: Option<String>,
}

/// Resources as a reader of a plan reads them: literal ARNs bare, our resources by address.
fn bare_refs<S: serde::Serializer>(refs: &[Ref], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(refs.iter().map(|r| match r {
        Ref::Id(arn) => arn.clone(),
        other => other.to_string(),
    }))
}

impl Statement {
    pub fn allow(actions: &[&str], resources: Vec<Ref>) -> Statement {
        Statement {
            sid: None,
            effect: "Allow".into(),
            service_principal: None,
            actions: actions.iter().map(|a| (*a).to_string()).collect(),
            resources,
            conditions: BTreeMap::new(),
            other: None,
        }
    }

    /// A trust statement: `service` may assume the role.
    pub fn trust(service: &str) -> Statement {
        Statement { service_principal: Some(service.into()), ..Statement::allow(&["sts:AssumeRole"], vec![]) }
    }

    pub fn sid(mut self, sid: &str) -> Statement {
        self.sid = Some(sid.into());
        self
    }

    pub fn condition(mut self, operator: &str, key: &str, values: &[&str]) -> Statement {
        self.conditions
            .entry(operator.into())
            .or_default()
            .insert(key.into(), values.iter().map(|v| (*v).to_string()).collect());
        self
    }

    fn normalized(mut self) -> Statement {
        self.actions.sort();
        self.actions.dedup();
        self.resources.sort();
        self.resources.dedup();
        for keys in self.conditions.values_mut() {
            for values in keys.values_mut() {
                values.sort();
                values.dedup();
            }
        }
        self
    }
}

impl PolicyDocument {
    pub fn new(statements: Vec<Statement>) -> PolicyDocument {
        PolicyDocument { statements }
    }

    pub fn normalize(&mut self) {
        let mut statements: Vec<Statement> = self.statements.drain(..).map(Statement::normalized).collect();
        statements.sort();
        statements.dedup();
        self.statements = statements;
    }

    pub fn refs(&mut self) -> impl Iterator<Item = &mut Ref> {
        self.statements.iter_mut().flat_map(|s| s.resources.iter_mut())
    }

    /// The JSON document for IAM, references resolved to ARNs.
    pub fn to_json(&self, ctx: &Ctx<'_>) -> Result<String, Error> {
        let mut statements = Vec::new();
        for s in &self.statements {
            let mut out = Map::new();
            if let Some(sid) = &s.sid {
                out.insert("Sid".into(), json!(sid));
            }
            out.insert("Effect".into(), json!(s.effect));
            if let Some(service) = &s.service_principal {
                out.insert("Principal".into(), json!({ "Service": service }));
            }
            out.insert("Action".into(), json!(s.actions));
            if !s.resources.is_empty() {
                let resources = s.resources.iter().map(|r| ctx.id(r)).collect::<Result<Vec<_>, _>>()?;
                out.insert("Resource".into(), json!(resources));
            }
            if !s.conditions.is_empty() {
                out.insert("Condition".into(), json!(s.conditions));
            }
            if let Some(Value::Object(other)) = s.other.as_deref().and_then(|o| serde_json::from_str(o).ok())
            {
                out.extend(other);
            }
            statements.push(Value::Object(out));
        }
        Ok(json!({ "Version": VERSION, "Statement": statements }).to_string())
    }

    /// A document as IAM returns it (URL-encoded JSON, as `GetRolePolicy` and `GetRole` give it).
    pub fn parse(text: &str) -> Result<PolicyDocument, Error> {
        let decoded = percent_encoding::percent_decode_str(text).decode_utf8_lossy();
        let value: Value = serde_json::from_str(&decoded).map_err(|e| {
            Error::InvalidState(format!("IAM returned a policy document that is not JSON: {e}"))
        })?;
        let statements = match &value["Statement"] {
            Value::Array(items) => items.clone(),
            Value::Null => vec![],
            one => vec![one.clone()],
        };
        Ok(PolicyDocument { statements: statements.iter().map(statement_of).collect() })
    }
}

/// A string, or the strings of an array.
fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items.iter().filter_map(|i| i.as_str().map(str::to_string)).collect(),
        _ => vec![],
    }
}

fn statement_of(v: &Value) -> Statement {
    let mut rest = v.as_object().cloned().unwrap_or_default();
    let sid = rest.remove("Sid").and_then(|s| s.as_str().map(str::to_string));
    let effect = rest.remove("Effect").and_then(|s| s.as_str().map(str::to_string)).unwrap_or_default();
    let actions = strings(rest.remove("Action").as_ref());
    let resources = strings(rest.remove("Resource").as_ref()).into_iter().map(Ref::Id).collect();
    // Only a principal of exactly one service is the deployer's shape; anything else stays in
    // `other`, so it shows as a difference.
    let service_principal = match rest.get("Principal") {
        Some(Value::Object(p)) if p.len() == 1 => match p.get("Service") {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Array(a)) if a.len() == 1 => a[0].as_str().map(str::to_string),
            _ => None,
        },
        _ => None,
    };
    if service_principal.is_some() {
        rest.remove("Principal");
    }
    let mut conditions = BTreeMap::new();
    if let Some(Value::Object(ops)) = rest.remove("Condition") {
        for (op, keys) in ops {
            let keys: BTreeMap<String, Vec<String>> = keys
                .as_object()
                .map(|k| k.iter().map(|(key, values)| (key.clone(), strings(Some(values)))).collect())
                .unwrap_or_default();
            conditions.insert(op, keys);
        }
    }
    let other = (!rest.is_empty()).then(|| Value::Object(rest).to_string());
    Statement { sid, effect, service_principal, actions, resources, conditions, other }
}

/// Statements allowing `actions` on the KMS keys `keys`, each a key ARN or an alias ARN. IAM
/// authorises a key's use on the key's ARN, never on an alias's: an alias is allowed through
/// the key it names (`kms:ResourceAliases`, "Using aliases to control access to KMS keys", AWS
/// KMS developer guide).
pub fn kms_statements(actions: &[&str], keys: &[String], sid: &str) -> Vec<Statement> {
    let (aliases, arns): (Vec<&String>, Vec<&String>) = keys.iter().partition(|k| k.contains(":alias/"));
    let mut out = Vec::new();
    if !arns.is_empty() {
        out.push(Statement::allow(actions, arns.into_iter().map(|a| Ref::Id(a.clone())).collect()).sid(sid));
    }
    for (i, alias) in aliases.into_iter().enumerate() {
        let (prefix, name) = alias.split_once(":alias/").unwrap_or((alias.as_str(), ""));
        out.push(
            Statement::allow(actions, vec![Ref::Id(format!("{prefix}:key/*"))])
                .condition("ForAnyValue:StringEquals", "kms:ResourceAliases", &[&format!("alias/{name}")])
                .sid(&format!("{sid}Alias{i}")),
        );
    }
    out
}

/// IAM is global: one client, whatever the region.
pub fn client(clients: &crate::cloud::Clients) -> aws_sdk_iam::Client {
    clients.global()
}

pub fn sdk_tags(tags: &Tags) -> Vec<aws_sdk_iam::types::Tag> {
    tags.iter().filter_map(|(k, v)| aws_sdk_iam::types::Tag::builder().key(k).value(v).build().ok()).collect()
}

pub fn tags_of(tags: &[aws_sdk_iam::types::Tag]) -> Tags {
    tags.iter().map(|t| (t.key().to_string(), t.value().to_string())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normalized(mut d: PolicyDocument) -> PolicyDocument {
        d.normalize();
        d
    }

    #[test]
    fn order_single_values_repeats_and_encoding_are_not_differences() {
        let ours = normalized(PolicyDocument::new(vec![
            Statement::allow(&["logs:PutLogEvents", "logs:CreateLogStream"], vec![Ref::Id("arn:a".into())]),
            Statement::allow(&["ecr:GetAuthorizationToken"], vec![Ref::Id("*".into())]),
        ]));
        let theirs = r#"{"Statement":[{"Resource":"*","Action":"ecr:GetAuthorizationToken","Effect":"Allow"},
            {"Effect":"Allow","Action":["logs:CreateLogStream","logs:PutLogEvents","logs:PutLogEvents"],"Resource":["arn:a"]}],
            "Version":"2012-10-17"}"#;
        let encoded: String =
            percent_encoding::utf8_percent_encode(theirs, percent_encoding::NON_ALPHANUMERIC).collect();
        assert_eq!(normalized(PolicyDocument::parse(&encoded).unwrap()), ours);
    }

    #[test]
    fn a_widened_statement_and_a_foreign_principal_are_differences() {
        let ours = normalized(PolicyDocument::new(vec![Statement::allow(
            &["s3:GetObject"],
            vec![Ref::Id("arn:b".into())],
        )]));
        let widened = r#"{"Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:b"},{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
        assert_ne!(normalized(PolicyDocument::parse(widened).unwrap()), ours);
        let trust = normalized(PolicyDocument::new(vec![Statement::trust("ecs-tasks.amazonaws.com")]));
        let anyone =
            r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"sts:AssumeRole"}]}"#;
        assert_ne!(normalized(PolicyDocument::parse(anyone).unwrap()), trust);
        let same = r#"{"Statement":{"Effect":"Allow","Principal":{"Service":["ecs-tasks.amazonaws.com"]},"Action":["sts:AssumeRole"]}}"#;
        assert_eq!(normalized(PolicyDocument::parse(same).unwrap()), trust);
    }
}
