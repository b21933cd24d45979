//! The database tier, when `database.enabled`: in every region the application's security group,
//! the database's security group (PostgreSQL's port from the application's group only), a DB
//! subnet group over the private subnets and a parameter group enforcing TLS; the primary in the
//! primary region; a read replica of it in each secondary region.
//!
//! Addresses (`R` any region, `P` the primary, `S` a secondary):
//!
//! | Address | What |
//! |---|---|
//! | `R/service/security-group/app` | the application's group (the service tier puts its tasks in it) |
//! | `R/database/security-group/db` | the database's group |
//! | `R/database/db-subnet-group/main` | `{app}-{env}-db`, the region's private subnets |
//! | `R/database/db-parameter-group/main` | `{app}-{env}-postgres<major>`, `rds.force_ssl = 1` |
//! | `R/database/db-secret/master` | the master credentials (`{app}-{env}/db-master`): the writable copy in `P`, a replica of it in each `S` |
//! | `P/database/db-instance/primary` | the primary |
//! | `S/database/db-replica/replica` | the primary's read replica in `S` |
//!
//! The application's group (`R/service/security-group/app`) belongs to the service tier
//! (`model::service::alb`), which builds it before this tier whenever either is enabled.

use std::collections::BTreeMap;

use super::{az_letter, Address, Builder, Ref};
use crate::config::{performance_insights_supported, Config};
use crate::resources::db_instance::DbInstanceSpec;
use crate::resources::db_parameter_group::{postgres_family, DbParameterGroupSpec};
use crate::resources::db_replica::DbReplicaSpec;
use crate::resources::db_secret::{self, Contents, DbSecretSpec};
use crate::resources::db_subnet_group::DbSubnetGroupSpec;
use crate::resources::security_group::{IngressRule, SecurityGroupSpec};
use crate::resources::Spec;

const TIER: &str = crate::spec::names::tier::DATABASE;

/// The engine the tier runs.
pub const ENGINE: &str = "postgres";
/// RDS storage type: gp3 (baseline IOPS and throughput independent of size).
pub const STORAGE_TYPE: &str = "gp3";

/// The application's security group in `region`.
pub fn app_security_group(region: &str) -> Address {
    Address::new(region, "service", "security-group", "app")
}

/// The database's security group in `region`.
pub fn db_security_group(region: &str) -> Address {
    Address::new(region, TIER, "security-group", "db")
}

/// The primary's address.
pub fn primary(config: &Config) -> Address {
    Address::new(&config.primary_region, TIER, "db-instance", "primary")
}

/// The master credentials' secret in `region`: the writable copy in the primary region, a
/// replica elsewhere. Each region's tasks read their own region's copy.
pub fn secret(region: &str) -> Address {
    Address::new(region, TIER, "db-secret", "master")
}

/// The replica's address in secondary region `region`.
pub fn replica(region: &str) -> Address {
    Address::new(region, TIER, "db-replica", "replica")
}

/// What the service tier needs of the database, by address: the desired model has no endpoint
/// or secret ARN yet (AWS assigns them); at apply time the observed resources give them (the
/// primary's endpoint, each region's copy of the secret by ARN, never its value).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatabaseOutputs {
    /// The primary, whose endpoint and master secret ARN the application uses.
    pub primary: Address,
    /// Each secondary region's read replica.
    pub replicas: BTreeMap<String, Address>,
    /// Each region's copy of the master credentials' secret.
    pub secrets: BTreeMap<String, Address>,
    /// Each region's application security group: tasks in it reach the database.
    pub app_security_groups: BTreeMap<String, Address>,
    /// The database's port.
    pub port: u16,
    pub database_name: String,
}

/// The database's outputs, or `None` when the environment has no database.
pub fn outputs(config: &Config) -> Option<DatabaseOutputs> {
    let db = &config.database;
    db.enabled.then(|| DatabaseOutputs {
        primary: primary(config),
        replicas: config.secondary_regions.iter().map(|r| (r.clone(), replica(r))).collect(),
        secrets: config
            .region_names()
            .into_iter()
            .map(|r| {
                let a = secret(&r);
                (r, a)
            })
            .collect(),
        app_security_groups: config
            .region_names()
            .into_iter()
            .map(|r| (r.clone(), app_security_group(&r)))
            .collect(),
        port: db.port,
        database_name: db.database_name.clone(),
    })
}

/// The region's private subnets, as the network model names them.
fn private_subnets(config: &Config, region: &str) -> Vec<Ref> {
    config.regions[region]
        .availability_zones
        .iter()
        .map(|az| Ref::Addr(Address::new(region, "network", "subnet", &format!("private-{}", az_letter(az)))))
        .collect()
}

/// What every region has: the two security groups, the subnet group, the parameter group.
struct RegionParts {
    subnet_group: Address,
    parameter_group: Address,
    db_security_group: Address,
}

fn region_parts(b: &mut Builder, config: &Config, region: &str) -> RegionParts {
    let (app, env, db) = (&config.app, &config.env, &config.database);
    let vpc = Ref::Addr(Address::new(region, "network", "vpc", "main"));
    // The application's group is the service tier's (`model::service::alb`); it is built before
    // this tier, since the database's rule names it.
    let app_sg = app_security_group(region);
    let db_security_group = b.add(
        region,
        TIER,
        "db",
        Spec::SecurityGroup(SecurityGroupSpec {
            vpc,
            name: format!("{app}-{env}-db"),
            description: format!("{app} {env}: PostgreSQL, from the application only"),
            ingress: vec![IngressRule::tcp_from_group(db.port, app_sg)],
        }),
    );
    let subnet_group = b.add(
        region,
        TIER,
        "main",
        Spec::DbSubnetGroup(DbSubnetGroupSpec {
            name: format!("{app}-{env}-db"),
            description: format!("{app} {env}: the database's private subnets"),
            subnets: private_subnets(config, region),
        }),
    );
    let family = postgres_family(&db.engine_version);
    let parameter_group = b.add(
        region,
        TIER,
        "main",
        Spec::DbParameterGroup(DbParameterGroupSpec {
            name: format!("{app}-{env}-{family}"),
            description: format!("{app} {env}: PostgreSQL settings (TLS required)"),
            family,
            parameters: BTreeMap::from([("rds.force_ssl".to_string(), "1".to_string())]),
        }),
    );
    RegionParts { subnet_group, parameter_group, db_security_group }
}

pub(super) fn database(b: &mut Builder, config: &Config) {
    let db = &config.database;
    if !db.enabled {
        return;
    }
    let primary_region = config.primary_region.as_str();
    let secret_name = db_secret::name(&config.app, &config.env);
    let description = format!("{} {}: the database's master credentials (deployer)", config.app, config.env);
    let master_secret = b.add(
        primary_region,
        TIER,
        "master",
        Spec::DbSecret(DbSecretSpec {
            name: secret_name.clone(),
            description: description.clone(),
            replica_of: None,
            kms_key: db.kms_key.get(primary_region).cloned(),
            contents: Some(Contents {
                username: db.master_username.clone(),
                engine: ENGINE.into(),
                port: db.port,
                dbname: db.database_name.clone(),
            }),
            primary_region: None,
        }),
    );
    for region in &config.secondary_regions {
        b.add(
            region,
            TIER,
            "master",
            Spec::DbSecret(DbSecretSpec {
                name: secret_name.clone(),
                description: description.clone(),
                replica_of: Some(Ref::Addr(master_secret.clone())),
                kms_key: db.kms_key.get(region).cloned(),
                contents: None,
                primary_region: None,
            }),
        );
    }
    let parts = region_parts(b, config, primary_region);
    let max = i32::try_from(db.max_allocated_storage_gib).unwrap_or(i32::MAX);
    let allocated = i32::try_from(db.allocated_storage_gib).unwrap_or(i32::MAX);
    let primary = b.add(
        primary_region,
        TIER,
        "primary",
        Spec::DbInstance(DbInstanceSpec {
            identifier: db.identifier.clone(),
            engine: ENGINE.into(),
            engine_version: db.engine_version.clone(),
            instance_class: db.instance_class.clone(),
            storage_type: STORAGE_TYPE.into(),
            allocated_storage_gib: allocated,
            // Equal means no autoscaling, which RDS expresses as no limit.
            max_allocated_storage_gib: (max > allocated).then_some(max),
            multi_az: db.multi_az,
            storage_encrypted: true,
            kms_key: db.kms_key.get(primary_region).cloned(),
            // The deployer's secret holds the password: RDS refuses a read replica of a source
            // whose password it manages itself.
            manage_master_user_password: false,
            master_secret: Some(Ref::Addr(master_secret.clone())),
            master_username: db.master_username.clone(),
            database_name: db.database_name.clone(),
            port: i32::from(db.port),
            backup_retention_days: i32::try_from(db.backup_retention_days).unwrap_or(i32::MAX),
            backup_window: db.backup_window.clone(),
            maintenance_window: db.maintenance_window.clone(),
            copy_tags_to_snapshot: true,
            deletion_protection: db.deletion_protection,
            performance_insights: db.performance_insights
                && performance_insights_supported(&db.instance_class),
            subnet_group: Ref::Addr(parts.subnet_group),
            parameter_group: Ref::Addr(parts.parameter_group),
            security_groups: vec![Ref::Addr(parts.db_security_group)],
            apply_immediately: db.apply_immediately,
            allow_replacement: db.allow_replacement,
            live: None,
        }),
    );
    for region in &config.secondary_regions {
        let parts = region_parts(b, config, region);
        b.add(
            region,
            TIER,
            "replica",
            Spec::DbReplica(DbReplicaSpec {
                identifier: db.identifier.clone(),
                source: Some(Ref::Addr(primary.clone())),
                instance_class: db.replica_instance_class.clone(),
                kms_key: db.kms_key.get(region).cloned(),
                copy_tags_to_snapshot: true,
                deletion_protection: db.deletion_protection,
                performance_insights: db.performance_insights
                    && performance_insights_supported(&db.replica_instance_class),
                subnet_group: Ref::Addr(parts.subnet_group),
                parameter_group: Ref::Addr(parts.parameter_group),
                security_groups: vec![Ref::Addr(parts.db_security_group)],
                apply_immediately: db.apply_immediately,
                allow_replacement: db.allow_replacement,
                live: None,
            }),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing;
    use crate::config::NatMode;
    use crate::model::desired;
    use crate::plan::tests::converged;
    use crate::plan::{plan, Action};
    use crate::resources::security_group::RuleSource;

    fn config() -> Config {
        testing::config(3, NatMode::PerAz)
    }

    fn spec_at<'a>(d: &'a crate::model::Desired, address: &str) -> &'a Spec {
        &d.resources
            .iter()
            .find(|r| r.address.as_str() == address)
            .unwrap_or_else(|| panic!("no {address}"))
            .spec
    }

    #[test]
    fn every_region_gets_its_groups_the_primary_one_database_and_each_secondary_a_replica() {
        let d = desired(&config(), &crate::spec::Account::test());
        let kinds = |region: &str| -> Vec<String> {
            d.resources
                .iter()
                .filter(|r| {
                    r.address.region() == region
                        && (r.address.tier() == "database" || r.address.kind() == "security-group")
                })
                .map(|r| r.address.to_string())
                .collect()
        };
        assert_eq!(
            kinds("us-east-1"),
            [
                "us-east-1/service/security-group/app",
                "us-east-1/database/db-secret/master",
                "us-east-1/database/security-group/db",
                "us-east-1/database/db-subnet-group/main",
                "us-east-1/database/db-parameter-group/main",
                "us-east-1/database/db-instance/primary",
            ]
        );
        assert_eq!(
            kinds("us-east-2").last().map(String::as_str),
            Some("us-east-2/database/db-replica/replica")
        );
        assert_eq!(kinds("us-east-2").len(), 6);
    }

    #[test]
    fn the_database_admits_only_the_application_on_its_port() {
        let d = desired(&config(), &crate::spec::Account::test());
        let Spec::SecurityGroup(sg) = spec_at(&d, "us-east-2/database/security-group/db") else { panic!() };
        assert_eq!(sg.ingress.len(), 1);
        let rule = &sg.ingress[0];
        assert_eq!((rule.protocol.as_str(), rule.from_port, rule.to_port), ("tcp", Some(5432), Some(5432)));
        assert_eq!(rule.source, RuleSource::Group(Ref::Addr(app_security_group("us-east-2"))));
        let Spec::SecurityGroup(app) = spec_at(&d, "us-east-2/service/security-group/app") else { panic!() };
        assert!(app.ingress.is_empty());
    }

    #[test]
    fn the_subnet_group_spans_the_private_subnets_and_the_parameters_force_tls() {
        let d = desired(&config(), &crate::spec::Account::test());
        let Spec::DbSubnetGroup(g) = spec_at(&d, "us-east-1/database/db-subnet-group/main") else { panic!() };
        let names: Vec<String> = g.subnets.iter().map(|s| s.to_string()).collect();
        assert_eq!(
            names,
            [
                "us-east-1/network/subnet/private-a",
                "us-east-1/network/subnet/private-b",
                "us-east-1/network/subnet/private-c"
            ]
        );
        let Spec::DbParameterGroup(p) = spec_at(&d, "us-east-1/database/db-parameter-group/main") else {
            panic!()
        };
        assert_eq!((p.name.as_str(), p.family.as_str()), ("webapp-test-postgres16", "postgres16"));
        assert_eq!(p.parameters.get("rds.force_ssl").map(String::as_str), Some("1"));
    }

    #[test]
    fn the_primary_is_encrypted_multi_az_with_the_deployer_s_secret_and_the_replica_follows_it() {
        let mut c = config();
        c.database.kms_key = BTreeMap::from([
            ("us-east-1".to_string(), "arn:aws:kms:us-east-1:1:key/a".to_string()),
            ("us-east-2".to_string(), "arn:aws:kms:us-east-2:1:key/b".to_string()),
        ]);
        c.database.replica_instance_class = "db.t4g.small".into();
        let d = desired(&c, &crate::spec::Account::test());
        let Spec::DbInstance(p) = spec_at(&d, "us-east-1/database/db-instance/primary") else { panic!() };
        assert!(p.storage_encrypted && p.multi_az && p.deletion_protection);
        // Not RDS's managed secret: RDS refuses a read replica of such a source.
        assert!(!p.manage_master_user_password);
        assert_eq!(p.master_secret, Some(Ref::Addr(secret("us-east-1"))));
        // The writable secret in the primary region, a replica of it in the secondary, each
        // encrypted with its region's key.
        let Spec::DbSecret(w) = spec_at(&d, "us-east-1/database/db-secret/master") else { panic!() };
        assert_eq!((w.name.as_str(), w.replica_of.as_ref()), ("webapp-test/db-master", None));
        assert_eq!(w.kms_key.as_deref(), Some("arn:aws:kms:us-east-1:1:key/a"));
        let contents = w.contents.as_ref().unwrap();
        assert_eq!(
            (contents.username.as_str(), contents.engine.as_str(), contents.port),
            ("app_admin", "postgres", 5432)
        );
        let Spec::DbSecret(r) = spec_at(&d, "us-east-2/database/db-secret/master") else { panic!() };
        assert_eq!(r.replica_of, Some(Ref::Addr(secret("us-east-1"))));
        assert_eq!(r.kms_key.as_deref(), Some("arn:aws:kms:us-east-2:1:key/b"));
        assert!(r.contents.is_none());
        assert_eq!((p.engine.as_str(), p.storage_type.as_str()), ("postgres", "gp3"));
        assert_eq!(p.kms_key.as_deref(), Some("arn:aws:kms:us-east-1:1:key/a"));
        assert_eq!(p.max_allocated_storage_gib, Some(100));
        let Spec::DbReplica(r) = spec_at(&d, "us-east-2/database/db-replica/replica") else { panic!() };
        assert_eq!(r.source, Some(Ref::Addr(primary(&c))));
        assert_eq!(r.kms_key.as_deref(), Some("arn:aws:kms:us-east-2:1:key/b"));
        assert_eq!(r.instance_class, "db.t4g.small");
        assert_eq!(
            r.subnet_group,
            Ref::Addr(Address::new("us-east-2", "database", "db-subnet-group", "main"))
        );
    }

    #[test]
    fn performance_insights_only_where_the_class_supports_it_and_no_limit_means_no_autoscaling() {
        let mut c = config();
        c.database.instance_class = "db.t4g.micro".into();
        c.database.max_allocated_storage_gib = c.database.allocated_storage_gib;
        let d = desired(&c, &crate::spec::Account::test());
        let Spec::DbInstance(p) = spec_at(&d, "us-east-1/database/db-instance/primary") else { panic!() };
        assert!(!p.performance_insights);
        assert_eq!(p.max_allocated_storage_gib, None);
        let Spec::DbReplica(r) = spec_at(&d, "us-east-2/database/db-replica/replica") else { panic!() };
        assert!(r.performance_insights, "the replica's class is db.t4g.medium");
    }

    #[test]
    fn a_database_still_creating_or_waiting_for_its_window_is_in_progress_not_drift() {
        use crate::resources::db_instance::DbLive;
        let d = desired(&config(), &crate::spec::Account::test());
        let primary = "us-east-1/database/db-instance/primary";
        let mut observed = converged(&d);
        let found = observed.iter_mut().find(|f| f.address.as_str() == primary).unwrap();
        found.state = "creating".into();
        let p = plan(&d, &observed);
        let actions: Vec<(String, Action)> =
            p.changes.iter().map(|c| (c.address().to_string(), c.action())).collect();
        assert_eq!(actions, [(primary.to_string(), Action::Wait)]);
        assert!(!p.has_changes(), "drift exits 0 for it");

        let found = observed.iter_mut().find(|f| f.address.as_str() == primary).unwrap();
        found.state = "available".into();
        let Spec::DbInstance(s) = &mut found.spec else { panic!() };
        s.live = Some(DbLive { pending: vec!["instance_class=db.t4g.medium".into()], ..DbLive::default() });
        let p = plan(&d, &observed);
        assert_eq!(p.changes.len(), 1);
        assert_eq!(p.changes[0].action(), Action::Wait);
        assert_eq!(
            p.changes[0].reason().unwrap(),
            "in progress (pending-maintenance: instance_class=db.t4g.medium): waiting until it is usable"
        );
    }

    #[test]
    fn the_database_kinds_wait_by_their_own_bound_and_destroy_follows_the_snapshot_policy() {
        let mut c = config();
        let timeouts = crate::model::wait_timeouts(&c);
        assert_eq!(timeouts.get("db-instance"), Some(&c.database.wait_timeout));
        assert_eq!(timeouts.get("db-replica"), Some(&c.database.wait_timeout));
        assert!(!crate::model::deletion_policy(&c).skip_final_snapshot);
        c.database.skip_final_snapshot = true;
        assert!(crate::model::deletion_policy(&c).skip_final_snapshot);
        c.database.enabled = false;
        assert!(crate::model::wait_timeouts(&c).is_empty());
    }

    #[test]
    fn disabled_means_no_database_and_no_outputs() {
        let mut c = config();
        c.database.enabled = false;
        let d = desired(&c, &crate::spec::Account::test());
        assert!(d.resources.iter().all(|r| r.address.tier() != "database"));
        assert_eq!(outputs(&c), None);
        let o = outputs(&config()).unwrap();
        assert_eq!(o.primary.as_str(), "us-east-1/database/db-instance/primary");
        assert_eq!(o.app_security_groups["us-east-2"], app_security_group("us-east-2"));
    }

    #[test]
    fn a_new_engine_replaces_the_database_only_with_the_allowance_and_the_plan_says_so() {
        let c = config();
        let mut observed = converged(&desired(&c, &crate::spec::Account::test()));
        for f in &mut observed {
            if let Spec::DbInstance(s) = &mut f.spec {
                s.storage_encrypted = false;
            }
        }
        let p = plan(&desired(&c, &crate::spec::Account::test()), &observed);
        let replace: Vec<_> = p.changes.iter().filter(|ch| ch.action() == Action::Replace).collect();
        let addresses: Vec<String> = replace.iter().map(|c| c.address().to_string()).collect();
        assert_eq!(
            addresses,
            ["us-east-1/database/db-instance/primary", "us-east-2/database/db-replica/replica"]
        );
        let reason = replace[0].reason().unwrap();
        assert!(
            reason.contains("DATA LOSS")
                && reason.contains("refused unless database.allow_replacement = true"),
            "{reason}"
        );
        let refusals = p.refusals(false);
        assert_eq!(refusals.len(), 2, "{refusals:?}");
        assert!(refusals[0].contains("database.allow_replacement"), "{refusals:?}");

        let mut allowed = c.clone();
        allowed.database.allow_replacement = true;
        let p = plan(&desired(&allowed, &crate::spec::Account::test()), &observed);
        assert!(p.refusals(false).is_empty());
        let reason = p.changes.iter().find(|ch| ch.action() == Action::Replace).unwrap().reason().unwrap();
        assert!(
            reason.contains("DATA LOSS") && reason.contains("allowed by database.allow_replacement = true"),
            "{reason}"
        );
    }

    #[test]
    fn destroy_deletes_the_replica_before_the_primary_and_the_databases_before_their_groups() {
        let d = desired(&config(), &crate::spec::Account::test());
        let p = plan(&crate::model::Desired::empty("webapp", "test"), &converged(&d));
        let order: Vec<String> = p.changes.iter().map(|c| c.address().to_string()).collect();
        let at = |a: &str| order.iter().position(|x| x == a).unwrap_or_else(|| panic!("{a} not deleted"));
        assert!(at("us-east-2/database/db-replica/replica") < at("us-east-1/database/db-instance/primary"));
        assert!(at("us-east-1/database/db-instance/primary") < at("us-east-1/database/security-group/db"));
        assert!(at("us-east-1/database/security-group/db") < at("us-east-1/service/security-group/app"));
        // Destroy does not ask `refusals` (deleting is what it is for); `up` would refuse these
        // deletes of the databases unless the configuration allows it.
        assert!(p.refusals(true).is_empty(), "destroy deletes, it does not replace");
        assert_eq!(p.refusals(false).len(), 2, "the primary and the replica");
    }
}
