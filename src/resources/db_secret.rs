//! DB secret: the database's master credentials in a Secrets Manager secret the deployer owns,
//! at `<region>/database/db-secret/master` in every region: the writable copy in the primary
//! region, and in each secondary region a replica of it (Secrets Manager's multi-region
//! replication), so that every region's tasks read their own region's copy and start while any
//! other region is down.
//!
//! Why not RDS's own secret (`ManageMasterUserPassword`): RDS refuses a read replica of a source
//! whose password it manages ("Limitations for Secrets Manager integration with Amazon RDS", RDS
//! user guide: not supported for any engine but SQL Server), and its secret lives in one region.
//!
//! The secret holds `username`, `password`, `engine`, `host`, `port` and `dbname` (the layout
//! RDS and the Secrets Manager rotation functions use). The password is made by Secrets
//! Manager (`GetRandomPassword`, without the characters RDS refuses in a master password: `/`,
//! `@`, `"` and space) and passes through the deployer only as [`Sensitive`]. The database kind
//! writes `host` and `port` once the database reports them ([`write_connection`]).
//!
//! A replica is read-only and carries its primary's tags (Secrets Manager replicates tags), so
//! its `deployer:address` tag names the primary's address: observation reports each copy at the
//! address of the region it was found in. Its ARN is the primary's with the region replaced.
//!
//! Discovery: one paginated `ListSecrets` per region, filtered by the environment's name prefix;
//! it returns tags, the KMS key and, for a replica, `PrimaryRegion`. The value is never read by
//! observation (the read-only drift role cannot read the password).
//!
//! Changes: the primary's KMS key in place (`UpdateSecret`). A replica's region, key or primary
//! cannot change in place: it is removed from replication and replicated again. Deleting the
//! writable copy is immediate (`ForceDeleteWithoutRecovery`): a recovery window would keep the
//! name taken for 7–30 days and block re-creating the environment. A database restored from a
//! final snapshot keeps the password it had inside its data, which the secret `up` then makes
//! does not hold: run `deployer rotate-db-password` after such a restore
//! (docs/runbooks/database.md).

use aws_sdk_secretsmanager::types::{Filter, FilterNameStringType, ReplicaRegionType, SecretListEntry, Tag};
use serde::Serialize;

use super::Update;
use super::{
    attr, is_ours, Create, Ctx, Delete, Diff, Found, Kind, ObserveCtx, Replace, Role, Scope, Spec, Tags,
    TAG_ADDRESS,
};
use crate::cloud::{wait_until, AwsResultExt, Clients, Error, Waited};
use crate::spec::Sensitive;
use crate::spec::{Address, Ref};

/// Characters RDS refuses in a master password (CreateDBInstance, `MasterUserPassword`: "Can't
/// contain ... /, ", @, or a space").
pub const EXCLUDED_CHARACTERS: &str = "/@\" ";
/// Long enough, and within PostgreSQL's 128 on RDS.
pub const PASSWORD_LENGTH: i64 = 32;

/// What the secret holds besides the password and the host, written when it is created.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Contents {
    pub username: String,
    pub engine: String,
    pub port: u16,
    pub dbname: String,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DbSecretSpec {
    /// `{app}-{env}/db-master`, the same in every region.
    pub name: String,
    pub description: String,
    /// The writable copy this one replicates; `None` for the writable copy itself (and for a
    /// replica promoted by `deployer failover`).
    pub replica_of: Option<Ref>,
    /// A KMS key of this copy's region; `None` for the AWS-managed `aws/secretsmanager`, and
    /// then not compared.
    pub kms_key: Option<String>,
    /// Desired only: what a new writable copy is created with. Never compared (observation does
    /// not read the value).
    #[serde(skip)]
    pub contents: Option<Contents>,
    /// Observed only: the region of the writable copy of a replica (`PrimaryRegion`).
    #[serde(skip)]
    pub primary_region: Option<String>,
}

pub struct DbSecret;

impl Kind for DbSecret {
    type Spec = DbSecretSpec;
    const NAME: &'static str = "db-secret";
    const SCOPE: Scope = Scope::Regional;
    const TAGGED: bool = true;
    const PARTS: &'static [&'static str] = &["database"];
    const ACTIONS: &'static [&'static str] = &[
        "secretsmanager:ListSecrets",
        "secretsmanager:DescribeSecret",
        "secretsmanager:GetRandomPassword",
        "secretsmanager:GetSecretValue",
        "secretsmanager:CreateSecret",
        "secretsmanager:PutSecretValue",
        "secretsmanager:UpdateSecret",
        "secretsmanager:TagResource",
        "secretsmanager:ReplicateSecretToRegions",
        "secretsmanager:RemoveRegionsFromReplication",
        "secretsmanager:DeleteSecret",
    ];

    fn refs(spec: &mut DbSecretSpec) -> Vec<(Role, &mut Ref)> {
        spec.replica_of.iter_mut().map(|r| (Role::Parent, r)).collect()
    }
    fn diff(desired: &DbSecretSpec, observed: &DbSecretSpec, d: &mut Diff) {
        diff_fields!(d, desired, observed, name: Yes, replica_of: Yes);
        if desired.kms_key.is_some() {
            // A replica's key is set when it is replicated; the writable copy's can change in place.
            let replace = if desired.replica_of.is_some() { Replace::Yes } else { Replace::No };
            d.field("kms_key", &desired.kms_key, &observed.kms_key, replace);
        }
    }
    fn conflicts(a: &DbSecretSpec, b: &DbSecretSpec) -> bool {
        a.name == b.name
    }
    async fn observe(ctx: &ObserveCtx<'_>) -> Result<Vec<Found>, Error> {
        let pages: Vec<_> = client(ctx.clients, &ctx.region)
            .list_secrets()
            .filters(
                Filter::builder()
                    .key(FilterNameStringType::Name)
                    .values(name_prefix(ctx.app, ctx.env))
                    .build(),
            )
            .into_paginator()
            .send()
            .try_collect()
            .await
            .op("ListSecrets")?;
        Ok(pages
            .iter()
            .flat_map(|p| p.secret_list())
            .filter_map(|s| found_of(s, &ctx.region, ctx.app, ctx.env))
            .collect())
    }
    async fn create(ctx: &Ctx<'_>, new: Create<'_, DbSecretSpec>) -> Result<String, Error> {
        let Create { address, spec, tags } = new;
        let arn = match &spec.replica_of {
            None => create_primary(ctx, address, spec, tags).await?,
            Some(of) => replicate(ctx, address, &ctx.id(of)?, spec.kms_key.as_deref()).await?,
        };
        ctx.ids.set_attr(address, attr::ARN, arn.clone());
        Ok(arn)
    }
    async fn update(ctx: &Ctx<'_>, change: Update<'_, DbSecretSpec>) -> Result<(), Error> {
        let Update { address, id, desired, diff, .. } = change;
        if diff.has("kms_key") && desired.replica_of.is_none() {
            client(ctx.clients, address.region())
                .update_secret()
                .secret_id(id)
                .set_kms_key_id(desired.kms_key.clone())
                .send()
                .await
                .op("UpdateSecret")?;
        }
        Ok(())
    }
    async fn delete(ctx: &Ctx<'_>, gone: Delete<'_, DbSecretSpec>) -> Result<(), Error> {
        let Delete { address, id, observed } = gone;
        match &observed.primary_region {
            // A replica goes by removing its region from the primary's replication.
            Some(primary) if primary != address.region() => {
                client(ctx.clients, primary)
                    .remove_regions_from_replication()
                    .secret_id(arn_in(id, primary))
                    .remove_replica_regions(address.region())
                    .send()
                    .await
                    .op_or_gone("RemoveRegionsFromReplication", |e| e.is_resource_not_found_exception())?;
            }
            _ => {
                client(ctx.clients, address.region())
                    .delete_secret()
                    .secret_id(id)
                    .force_delete_without_recovery(true)
                    .send()
                    .await
                    .op_or_gone("DeleteSecret", |e| e.is_resource_not_found_exception())?;
            }
        }
        Ok(())
    }
    async fn repair_tags(ctx: &Ctx<'_>, address: &Address, id: &str, missing: &Tags) -> Result<(), Error> {
        // A replica is read-only and carries its primary's tags (observation reports them from
        // there): the primary's own repair puts them back, and they replicate.
        if !standalone(ctx.clients, address.region(), id).await? {
            return Ok(());
        }
        client(ctx.clients, address.region())
            .tag_resource()
            .secret_id(id)
            .set_tags(Some(sdk_tags(missing)))
            .send()
            .await
            .op("TagResource")?;
        Ok(())
    }
}

pub fn client(clients: &Clients, region: &str) -> aws_sdk_secretsmanager::Client {
    clients.get(region)
}

fn sdk_tags(tags: &Tags) -> Vec<Tag> {
    tags.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()
}

fn tags_of(tags: &[Tag]) -> Tags {
    tags.iter()
        .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string())))
        .collect()
}

/// The secret's name: `{app}-{env}/db-master`.
pub fn name(app: &str, env: &str) -> String {
    format!("{}db-master", name_prefix(app, env))
}

/// The prefix of the environment's secret names (`ListSecrets`' name filter matches prefixes).
pub fn name_prefix(app: &str, env: &str) -> String {
    format!("{app}-{env}/")
}

/// `arn` with its region replaced by `region`: a replica's ARN is its primary's but for the
/// region ("Replicate AWS Secrets Manager secrets across Regions", Secrets Manager user guide).
pub fn arn_in(arn: &str, region: &str) -> String {
    let mut parts: Vec<&str> = arn.splitn(6, ':').collect();
    if parts.len() == 6 {
        parts[3] = region;
    }
    parts.join(":")
}

fn found_of(s: &SecretListEntry, region: &str, app: &str, env: &str) -> Option<Found> {
    let arn = s.arn()?.to_string();
    let mut tags = tags_of(s.tags());
    if !is_ours(&tags, app, env) {
        return None;
    }
    let tagged = super::tagged_address(&tags, "db-secret");
    let Some(tagged) = tagged.filter(|a| a.kind() == DbSecret::NAME) else {
        tracing::warn!("{arn} is tagged for this environment but has no valid {TAG_ADDRESS} tag of a db-secret; ignoring it");
        return None;
    };
    // A copy is at its own region's address whatever its (replicated) address tag says.
    let address = Address::new(region, tagged.tier(), tagged.kind(), tagged.name());
    let primary_region = s.primary_region().filter(|p| *p != region).map(str::to_string);
    if primary_region.is_some() {
        tags.insert(TAG_ADDRESS.to_string(), address.to_string());
    }
    let spec = DbSecretSpec {
        name: s.name().unwrap_or_default().to_string(),
        description: s.description().unwrap_or_default().to_string(),
        replica_of: primary_region.as_deref().map(|p| Ref::Id(arn_in(&arn, p))),
        kms_key: s.kms_key_id().map(str::to_string),
        contents: None,
        primary_region,
    };
    Some(Found {
        address,
        id: arn.clone(),
        spec: Spec::DbSecret(spec),
        tags,
        state: String::new(),
        attrs: [(attr::ARN, arn)].into(),
    })
}

/// A new password from Secrets Manager in `region`, without what RDS refuses.
pub async fn random_password(clients: &Clients, region: &str) -> Result<Sensitive<String>, Error> {
    let out = client(clients, region)
        .get_random_password()
        .password_length(PASSWORD_LENGTH)
        .exclude_characters(EXCLUDED_CHARACTERS)
        .send()
        .await
        .op("GetRandomPassword")?;
    out.random_password()
        .map(|p| Sensitive::new(p.to_string()))
        .ok_or_else(|| Error::InvalidState("GetRandomPassword returned no password".into()))
}

/// The secret's value: the credentials and where to connect.
#[derive(Clone, Debug)]
pub struct Value {
    pub username: String,
    pub password: Sensitive<String>,
    pub engine: String,
    pub host: Option<String>,
    pub port: u16,
    pub dbname: String,
    /// A new password being rotated in (`deployer rotate-db-password`): stored here before the
    /// database takes it, so a run that dies in between resumes with the same one.
    pub pending_password: Option<Sensitive<String>>,
    /// The last rotation's marker, which its releases carry in their description.
    pub rotation: Option<String>,
}

impl Value {
    /// The JSON Secrets Manager stores. Holds the password: send it, never print it.
    fn secret_string(&self) -> Sensitive<String> {
        let mut v = serde_json::json!({
            "username": self.username,
            "password": self.password.expose(),
            "engine": self.engine,
            "port": self.port,
            "dbname": self.dbname,
        });
        if let Some(host) = &self.host {
            v["host"] = serde_json::Value::String(host.clone());
        }
        if let Some(pending) = &self.pending_password {
            v["pending_password"] = serde_json::Value::String(pending.expose().clone());
        }
        if let Some(rotation) = &self.rotation {
            v["rotation"] = serde_json::Value::String(rotation.clone());
        }
        Sensitive::new(v.to_string())
    }

    fn parse(text: &str, what: &str) -> Result<Value, Error> {
        // Never echo the text: it holds the password.
        let bad = || {
            Error::InvalidState(format!("{what} does not hold the database credentials as JSON (username, password, engine, port, dbname)"))
        };
        let v: serde_json::Value = serde_json::from_str(text).map_err(|_| bad())?;
        let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
        Ok(Value {
            username: s("username").ok_or_else(bad)?,
            password: Sensitive::new(s("password").ok_or_else(bad)?),
            engine: s("engine").unwrap_or_default(),
            host: s("host"),
            port: v
                .get("port")
                .and_then(|p| p.as_u64().or_else(|| p.as_str().and_then(|s| s.parse().ok())))
                .and_then(|p| u16::try_from(p).ok())
                .unwrap_or(0),
            dbname: s("dbname").unwrap_or_default(),
            pending_password: s("pending_password").map(Sensitive::new),
            rotation: s("rotation"),
        })
    }
}

/// The current value of the secret `id` (an ARN, in its own region).
pub async fn read(clients: &Clients, region: &str, id: &str) -> Result<Value, Error> {
    let out = client(clients, region)
        .get_secret_value()
        .secret_id(id)
        .send()
        .await
        .op_or_gone("GetSecretValue", |e| e.is_resource_not_found_exception())?;
    let text =
        out.secret_string().ok_or_else(|| Error::InvalidState(format!("secret {id} has no string value")))?;
    Value::parse(text, &format!("secret {id}"))
}

/// Stores `value` as the secret's current version. The request token is derived from what is
/// stored, so a retry after a lost answer is the same version, not a second one.
pub async fn write(clients: &Clients, region: &str, id: &str, value: &Value) -> Result<(), Error> {
    let secret = value.secret_string();
    client(clients, region)
        .put_secret_value()
        .secret_id(id)
        .secret_string(secret.expose())
        .client_request_token(token_of(secret.expose()))
        .send()
        .await
        .op("PutSecretValue")?;
    Ok(())
}

/// A version token (32–64 characters) that is the same for the same stored text.
fn token_of(text: &str) -> String {
    use std::hash::{Hash, Hasher};
    // Two independent 64-bit hashes: a collision would only make Secrets Manager refuse the
    // write (a token reused with another value), never store the wrong value.
    let mut a = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut a);
    let mut b = std::collections::hash_map::DefaultHasher::new();
    (text, "deployer").hash(&mut b);
    format!("deployer-{:016x}{:016x}", a.finish(), b.finish())
}

/// Writes where the database is (`host`, `port`) into the writable copy `id` in `region`, when
/// it says otherwise. Replicas follow.
pub async fn write_connection(
    clients: &Clients,
    region: &str,
    id: &str,
    host: &str,
    port: u16,
) -> Result<(), Error> {
    let mut value = read(clients, region, id).await?;
    if value.host.as_deref() == Some(host) && value.port == port {
        return Ok(());
    }
    value.host = Some(host.to_string());
    value.port = port;
    write(clients, region, id, &value).await
}

/// Creates the writable copy with a new password, tagged in the same request. The request token
/// is derived from the address, but a retried create carries another password, so Secrets
/// Manager answers "exists": the secret of that name is adopted if it carries this address's tag
/// (an earlier, interrupted run made it), and its password kept.
async fn create_primary(
    ctx: &Ctx<'_>,
    address: &Address,
    spec: &DbSecretSpec,
    tags: &Tags,
) -> Result<String, Error> {
    let region = address.region();
    let contents = spec
        .contents
        .as_ref()
        .ok_or_else(|| Error::InvalidState(format!("{address}: no contents to create the secret with")))?;
    let value = Value {
        username: contents.username.clone(),
        password: random_password(ctx.clients, region).await?,
        engine: contents.engine.clone(),
        host: None,
        port: contents.port,
        dbname: contents.dbname.clone(),
        pending_password: None,
        rotation: None,
    };
    let client = client(ctx.clients, region);
    let created = client
        .create_secret()
        .name(&spec.name)
        .description(&spec.description)
        .set_kms_key_id(spec.kms_key.clone())
        .secret_string(value.secret_string().expose())
        .set_tags(Some(sdk_tags(tags)))
        .send()
        .await
        .op_unless("CreateSecret", |e| e.is_resource_exists_exception())?;
    if let Some(arn) = created.and_then(|o| o.arn().map(str::to_string)) {
        return Ok(arn);
    }
    let existing = client.describe_secret().secret_id(&spec.name).send().await.op("DescribeSecret")?;
    let tags = tags_of(existing.tags());
    if tags.get(TAG_ADDRESS).map(String::as_str) != Some(address.as_str()) {
        return Err(Error::InvalidState(format!(
            "a secret named {} already exists in {region} and is not this environment's {address} (its {TAG_ADDRESS} tag is {})",
            spec.name,
            tags.get(TAG_ADDRESS).map(String::as_str).unwrap_or("missing")
        )));
    }
    existing
        .arn()
        .map(str::to_string)
        .ok_or_else(|| Error::InvalidState(format!("secret {} has no ARN", spec.name)))
}

/// Replicates the writable copy `primary_arn` to `address`'s region and waits until the replica
/// answers there. A replica that already exists (an earlier run's, whose answer was lost) is
/// success.
async fn replicate(
    ctx: &Ctx<'_>,
    address: &Address,
    primary_arn: &str,
    kms_key: Option<&str>,
) -> Result<String, Error> {
    let region = address.region();
    let primary_region = primary_arn.split(':').nth(3).unwrap_or_default().to_string();
    let replica_arn = arn_in(primary_arn, region);
    let already = client(ctx.clients, &primary_region)
        .describe_secret()
        .secret_id(primary_arn)
        .send()
        .await
        .op("DescribeSecret")?
        .replication_status()
        .iter()
        .any(|r| r.region() == Some(region));
    if !already {
        client(ctx.clients, &primary_region)
            .replicate_secret_to_regions()
            .secret_id(primary_arn)
            .add_replica_regions(
                ReplicaRegionType::builder()
                    .region(region)
                    .set_kms_key_id(kms_key.map(str::to_string))
                    .build(),
            )
            .send()
            .await
            .op("ReplicateSecretToRegions")?;
    }
    let replica = client(ctx.clients, region);
    let arn = replica_arn.clone();
    wait_until(&format!("the secret's replica in {region}"), ctx.timeout_for(DbSecret::NAME), || {
        let (replica, arn) = (replica.clone(), arn.clone());
        async move {
            match replica
                .describe_secret()
                .secret_id(&arn)
                .send()
                .await
                .op_or_gone("DescribeSecret", |e| e.is_resource_not_found_exception())
            {
                Ok(_) => Ok(Waited::Done(())),
                Err(e) if e.is_not_found() => Ok(Waited::NotYet("replicating".into())),
                Err(e) => Err(e),
            }
        }
    })
    .await?;
    Ok(replica_arn)
}

/// Whether the secret `arn` in `region` is writable there (not a replica).
pub async fn standalone(clients: &Clients, region: &str, arn: &str) -> Result<bool, Error> {
    let out = client(clients, region).describe_secret().secret_id(arn).send().await.op("DescribeSecret")?;
    Ok(out.primary_region().is_none_or(|p| p == region))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replica_s_arn_is_the_primary_s_in_its_region() {
        assert_eq!(
            arn_in(
                "arn:aws:secretsmanager:us-east-1:123456789012:secret:webapp-prod/db-master-AbCdEf",
                "us-east-2"
            ),
            "arn:aws:secretsmanager:us-east-2:123456789012:secret:webapp-prod/db-master-AbCdEf"
        );
    }

    #[test]
    fn the_value_holds_the_password_but_never_shows_it() {
        let v = Value {
            username: "app".into(),
            password: Sensitive::new("s3cret-Pa55".into()),
            engine: "postgres".into(),
            host: Some("db.example".into()),
            port: 5432,
            dbname: "app".into(),
            pending_password: Some(Sensitive::new("n3w-Pa55".into())),
            rotation: None,
        };
        let stored = v.secret_string();
        assert!(stored.expose().contains("s3cret-Pa55"));
        assert!(!format!("{v:?} {stored:?} {stored}").contains("s3cret-Pa55"));
        assert!(!format!("{v:?}").contains("n3w-Pa55"));
        let back = Value::parse(stored.expose(), "x").unwrap();
        assert_eq!(
            (back.host.as_deref(), back.port, back.password.expose().as_str()),
            (Some("db.example"), 5432, "s3cret-Pa55")
        );
        let e = Value::parse("{\"password\": \"s3cret-Pa55\"}", "secret x").unwrap_err().to_string();
        assert!(!e.contains("s3cret"), "{e}");
        assert_eq!(token_of("a"), token_of("a"));
        assert_ne!(token_of("a"), token_of("b"));
        assert!((32..=64).contains(&token_of("a").len()));
    }

    #[test]
    fn a_replica_is_found_at_its_own_region_s_address() {
        let entry = SecretListEntry::builder()
            .arn("arn:aws:secretsmanager:us-east-2:1:secret:webapp-prod/db-master-AbCdEf")
            .name("webapp-prod/db-master")
            .primary_region("us-east-1")
            .tags(Tag::builder().key("deployer:app").value("webapp").build())
            .tags(Tag::builder().key("deployer:env").value("prod").build())
            .tags(Tag::builder().key(TAG_ADDRESS).value("us-east-1/database/db-secret/master").build())
            .build();
        let f = found_of(&entry, "us-east-2", "webapp", "prod").unwrap();
        assert_eq!(f.address.as_str(), "us-east-2/database/db-secret/master");
        assert_eq!(f.tags[TAG_ADDRESS], "us-east-2/database/db-secret/master");
        let Spec::DbSecret(s) = &f.spec else { panic!() };
        assert_eq!(
            s.replica_of,
            Some(Ref::Id("arn:aws:secretsmanager:us-east-1:1:secret:webapp-prod/db-master-AbCdEf".into()))
        );
        assert!(found_of(&entry, "us-east-2", "webapp", "dev").is_none());
    }
}
