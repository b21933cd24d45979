//! The database tier against the emulator: an encrypted Multi-AZ primary with a managed master
//! secret, a cross-region replica of it, the firewall between the application and the
//! database, drift found and repaired, a replacement refused, deletion protection and the final
//! snapshot honoured by destroy, and the master secret never printed. Judged by RDS's and EC2's
//! own answers, read with clients of the test's own (not counted as the deployer's requests).

mod support;

use std::process::Output;

use aws_sdk_ec2::types::{Filter, IpPermission, SecurityGroup, UserIdGroupPair};
use aws_sdk_rds::types::DbInstance;
use support::{
    deployer, deployer_ok, is_read_action, stderr_text, stdout_json, stdout_text, Emulator, Project,
};

const ENV: &str = "local";
const IDENTIFIER: &str = "webapp-local";
const PRIMARY: &str = "us-east-1";
const SECONDARY: &str = "us-east-2";

/// The shipped local configuration (the registry has tests of its own).
fn db_project() -> Project {
    let project = Project::new();
    project.disable("registry");
    project.disable("service");
    project
}

/// Sets `key = value` in `[database]` of local.toml, replacing the key if it is there.
fn set_database(project: &Project, key: &str, value: &str) {
    project.edit("local.toml", |s| {
        let lines: Vec<String> = s
            .lines()
            .filter(|l| !l.trim_start().starts_with(&format!("{key} =")))
            .map(str::to_string)
            .collect();
        lines.join("\n").replace("[database]\n", &format!("[database]\n{key} = {value}\n")) + "\n"
    });
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

async fn rds(emu: &Emulator, region: &'static str) -> aws_sdk_rds::Client {
    aws_sdk_rds::Client::new(&support::sdk_config(emu, region).await)
}

async fn ec2(emu: &Emulator, region: &'static str) -> aws_sdk_ec2::Client {
    aws_sdk_ec2::Client::new(&support::sdk_config(emu, region).await)
}

fn tag<'a>(i: &'a DbInstance, key: &str) -> Option<&'a str> {
    i.tag_list().iter().find(|t| t.key() == Some(key)).and_then(|t| t.value())
}

/// The region's DB instances tagged for the environment.
async fn instances(emu: &Emulator, region: &'static str) -> Vec<DbInstance> {
    let out = rds(emu, region).await.describe_db_instances().send().await.unwrap();
    out.db_instances().iter().filter(|i| tag(i, "deployer:env") == Some(ENV)).cloned().collect()
}

fn env_filter() -> Filter {
    Filter::builder().name("tag:deployer:env").values(ENV).build()
}

/// The region's security groups tagged for the environment.
async fn security_groups(emu: &Emulator, region: &'static str) -> Vec<SecurityGroup> {
    let out = ec2(emu, region).await.describe_security_groups().filters(env_filter()).send().await.unwrap();
    out.security_groups().to_vec()
}

fn group<'a>(groups: &'a [SecurityGroup], name: &str) -> &'a SecurityGroup {
    groups
        .iter()
        .find(|g| g.group_name() == Some(name))
        .unwrap_or_else(|| panic!("no group {name} in {groups:#?}"))
}

async fn vpc_id(emu: &Emulator, region: &'static str) -> String {
    let out = ec2(emu, region).await.describe_vpcs().filters(env_filter()).send().await.unwrap();
    out.vpcs()[0].vpc_id().unwrap().to_string()
}

/// The IDs of the region's private subnets, sorted.
async fn private_subnets(emu: &Emulator, region: &'static str) -> Vec<String> {
    let out = ec2(emu, region).await.describe_subnets().filters(env_filter()).send().await.unwrap();
    let mut ids: Vec<String> = out
        .subnets()
        .iter()
        .filter(|s| {
            s.tags().iter().any(|t| {
                t.key() == Some("deployer:address") && t.value().unwrap_or("").contains("/subnet/private-")
            })
        })
        .map(|s| s.subnet_id().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

/// The one permission of the database's group: PostgreSQL's port from the application's group.
fn assert_only_the_application_admitted(db: &SecurityGroup, app: &SecurityGroup, region: &str) {
    let permissions: &[IpPermission] = db.ip_permissions();
    assert_eq!(permissions.len(), 1, "{region}: one ingress permission: {permissions:#?}");
    let p = &permissions[0];
    assert_eq!(
        (p.ip_protocol(), p.from_port(), p.to_port()),
        (Some("tcp"), Some(5432), Some(5432)),
        "{region}"
    );
    let sources: Vec<Option<&str>> = p.user_id_group_pairs().iter().map(UserIdGroupPair::group_id).collect();
    assert_eq!(sources, vec![app.group_id()], "{region}: from the application's group only");
    assert!(
        p.ip_ranges().is_empty() && p.ipv6_ranges().is_empty() && p.prefix_list_ids().is_empty(),
        "{region}: no CIDR"
    );
    assert!(app.ip_permissions().is_empty(), "{region}: the application's group admits nothing yet");
}

const SECRET: &str = "webapp-local/db-master";

/// The master password, from the environment's secret in the primary region (read by the test
/// itself: the deployer must never print it).
fn password(emu: &Emulator) -> String {
    let (_, _, value) = runtime().block_on(support::db_secret(emu, PRIMARY, SECRET)).expect("the secret");
    value["password"].as_str().unwrap().to_string()
}

/// Fails if any line any of `outputs` printed holds the master password.
fn assert_secret_never_printed(emu: &Emulator, outputs: &[&Output]) {
    support::assert_never_printed(&password(emu), outputs);
}

fn mutating(actions: &[String]) -> Vec<&String> {
    actions.iter().filter(|a| !is_read_action(a)).collect()
}

#[test]
fn up_builds_an_encrypted_multi_az_primary_its_replica_and_the_firewall_and_a_second_up_changes_nothing() {
    let emu = Emulator::start();
    let project = db_project();
    let up = deployer_ok(&emu, &project, &["up", "--env", ENV, "--yes"]);

    runtime().block_on(async {
        let primaries = instances(&emu, PRIMARY).await;
        assert_eq!(primaries.len(), 1, "one primary: {primaries:#?}");
        let p = &primaries[0];
        assert_eq!(p.db_instance_identifier(), Some(IDENTIFIER));
        assert_eq!((p.engine(), p.engine_version()), (Some("postgres"), Some("16.4")));
        assert_eq!(p.db_instance_class(), Some("db.t4g.micro"));
        assert_eq!(p.multi_az(), Some(true), "Multi-AZ");
        assert_eq!(p.storage_encrypted(), Some(true), "encrypted");
        assert!(p.kms_key_id().is_some());
        assert!(
            p.master_user_secret().is_none(),
            "not RDS's managed secret: RDS refuses a read replica of such a source"
        );
        assert_eq!(p.storage_type(), Some("gp3"));
        assert_eq!(p.backup_retention_period(), Some(1));
        assert_eq!(p.copy_tags_to_snapshot(), Some(true));
        assert_eq!(p.deletion_protection(), Some(false), "local turns it off");
        assert_eq!(p.performance_insights_enabled(), Some(false), "not on a micro class");
        assert_eq!(p.publicly_accessible(), Some(false));
        assert_eq!(p.read_replica_source_db_instance_identifier(), None);
        assert_eq!(tag(p, "deployer:address"), Some("us-east-1/database/db-instance/primary"));
        let primary_arn = p.db_instance_arn().unwrap().to_string();

        let replicas = instances(&emu, SECONDARY).await;
        assert_eq!(replicas.len(), 1, "one replica: {replicas:#?}");
        let r = &replicas[0];
        assert_eq!(
            r.read_replica_source_db_instance_identifier(),
            Some(primary_arn.as_str()),
            "replicates the primary"
        );
        assert!(r.kms_key_id().is_some(), "encrypted with a key of its own region");
        assert!(r.master_user_secret().is_none(), "a replica has no master secret of its own");
        assert_eq!(tag(r, "deployer:address"), Some("us-east-2/database/db-replica/replica"));

        // The deployer's secret: the writable copy in the primary region, a replica in the
        // secondary (same ARN but for the region), holding the credentials and the host; both
        // databases take its password.
        let (arn, of, value) = support::db_secret(&emu, PRIMARY, SECRET).await.expect("the secret");
        assert_eq!(of, None, "writable in {PRIMARY}");
        let (replica_arn, replica_of, replica_value) =
            support::db_secret(&emu, SECONDARY, SECRET).await.expect("its replica");
        assert_eq!(replica_of.as_deref(), Some(PRIMARY));
        assert_eq!(replica_arn, arn.replace(PRIMARY, SECONDARY));
        assert_eq!(replica_value, value, "the replica holds what the primary holds");
        assert_eq!(value["username"], "app_admin");
        assert_eq!(
            (value["engine"].as_str(), value["port"].as_u64(), value["dbname"].as_str()),
            (Some("postgres"), Some(5432), Some("app"))
        );
        assert_eq!(value["host"].as_str(), p.endpoint().and_then(|e| e.address()), "names the primary");
        let pw = value["password"].as_str().unwrap();
        assert!(pw.len() >= 32 && !pw.contains(['/', '@', '"', ' ']), "made without what RDS refuses");
        for region in [PRIMARY, SECONDARY] {
            assert!(
                support::db_login(&emu, region, IDENTIFIER, "app_admin", pw),
                "{region} takes the secret's password"
            );
        }

        for (region, i) in [(PRIMARY, p), (SECONDARY, r)] {
            let groups = security_groups(&emu, region).await;
            let (db, app) = (group(&groups, "webapp-local-db"), group(&groups, "webapp-local-app"));
            assert_only_the_application_admitted(db, app, region);
            let members: Vec<Option<&str>> =
                i.vpc_security_groups().iter().map(|g| g.vpc_security_group_id()).collect();
            assert_eq!(members, vec![db.group_id()], "{region}: the database is in its group only");

            let subnet_group = i.db_subnet_group().unwrap();
            assert_eq!(subnet_group.db_subnet_group_name(), Some("webapp-local-db"));
            assert_eq!(
                subnet_group.vpc_id(),
                Some(vpc_id(&emu, region).await.as_str()),
                "{region}: in its own VPC"
            );
            let mut subnets: Vec<String> =
                subnet_group.subnets().iter().map(|s| s.subnet_identifier().unwrap().to_string()).collect();
            subnets.sort();
            assert_eq!(subnets, private_subnets(&emu, region).await, "{region}: over the private subnets");

            let parameter_group = i.db_parameter_groups()[0].db_parameter_group_name().unwrap();
            assert_eq!(parameter_group, "webapp-local-postgres16", "{region}");
            let parameters = rds(&emu, region)
                .await
                .describe_db_parameters()
                .db_parameter_group_name(parameter_group)
                .source("user")
                .send()
                .await
                .unwrap();
            let force_ssl =
                parameters.parameters().iter().find(|p| p.parameter_name() == Some("rds.force_ssl"));
            assert_eq!(force_ssl.and_then(|p| p.parameter_value()), Some("1"), "{region}: TLS required");
        }
    });

    let plan = deployer(&emu, &project, &["plan", "--env", ENV, "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(0), "{}", stdout_text(&plan));
    emu.start_recording();
    let again = deployer_ok(&emu, &project, &["up", "--env", ENV, "--yes", "--output", "json"]);
    let actions = emu.recorded_actions();
    assert!(actions.iter().any(|a| a == "DescribeDBInstances"), "{actions:?}");
    assert_eq!(mutating(&actions), Vec::<&String>::new(), "a converged environment gets no mutating call");
    assert_eq!(stdout_json(&again)["calls"]["mutating"], 0);
    // One DescribeDBInstances per region however many kinds read it.
    assert_eq!(actions.iter().filter(|a| *a == "DescribeDBInstances").count(), 2, "{actions:?}");

    let status = deployer_ok(&emu, &project, &["status", "--env", ENV]);
    let text = stdout_text(&status);
    assert!(
        text.contains("us-east-2/database/db-replica/replica") && text.contains("Everything matches"),
        "{text}"
    );
    let status_json = deployer_ok(&emu, &project, &["status", "--env", ENV, "--output", "json"]);
    let drift = deployer_ok(&emu, &project, &["drift", "--env", ENV, "--output", "json"]);
    assert_secret_never_printed(&emu, &[&up, &plan, &again, &status, &status_json, &drift]);
}

#[test]
fn drift_finds_the_database_and_its_firewall_changed_out_of_band_up_repairs_them_and_a_replacement_is_refused(
) {
    let emu = Emulator::start();
    let project = db_project();
    let up = deployer_ok(&emu, &project, &["up", "--env", ENV, "--yes"]);
    runtime().block_on(async {
        rds(&emu, PRIMARY)
            .await
            .modify_db_instance()
            .db_instance_identifier(IDENTIFIER)
            .backup_retention_period(5)
            .apply_immediately(true)
            .send()
            .await
            .unwrap();
        let groups = security_groups(&emu, SECONDARY).await;
        let db = group(&groups, "webapp-local-db");
        ec2(&emu, SECONDARY)
            .await
            .revoke_security_group_ingress()
            .group_id(db.group_id().unwrap())
            .set_ip_permissions(Some(db.ip_permissions().to_vec()))
            .send()
            .await
            .unwrap();
    });

    let drift = deployer(&emu, &project, &["drift", "--env", ENV]);
    assert_eq!(drift.status.code(), Some(2), "{}", stderr_text(&drift));
    let text = stdout_text(&drift);
    assert!(
        text.contains("us-east-1/database/db-instance/primary")
            && text.contains("backup_retention_days: 5 -> 1"),
        "{text}"
    );
    assert!(text.contains("us-east-2/database/security-group/db") && text.contains("ingress"), "{text}");
    let json = stdout_json(&deployer(&emu, &project, &["drift", "--env", ENV, "--output", "json"]));
    assert_eq!(json["counts"]["update"], 2, "{json:#}");

    let repair = deployer_ok(&emu, &project, &["up", "--env", ENV, "--yes"]);
    let clean = deployer(&emu, &project, &["drift", "--env", ENV]);
    assert_eq!(clean.status.code(), Some(0), "{}", stdout_text(&clean));
    runtime().block_on(async {
        assert_eq!(instances(&emu, PRIMARY).await[0].backup_retention_period(), Some(1));
        let groups = security_groups(&emu, SECONDARY).await;
        assert_only_the_application_admitted(
            group(&groups, "webapp-local-db"),
            group(&groups, "webapp-local-app"),
            SECONDARY,
        );
    });

    // A new identifier means a new database: the plan says the data would be lost, and `up`
    // refuses without the allowance, before changing anything.
    set_database(&project, "identifier", "\"webapp-other\"");
    let plan = deployer(&emu, &project, &["plan", "--env", ENV]);
    let text = stdout_text(&plan);
    assert!(
        text.contains("-/+ us-east-1/database/db-instance/primary") && text.contains("DATA LOSS"),
        "{text}"
    );
    assert!(text.contains("refused unless database.allow_replacement = true"), "{text}");
    emu.start_recording();
    let refused = deployer(&emu, &project, &["up", "--env", ENV, "--yes"]);
    assert_eq!(refused.status.code(), Some(1), "{}", stderr_text(&refused));
    let err = stderr_text(&refused);
    assert!(
        err.contains("refusing to replace us-east-1/database/db-instance/primary")
            && err.contains("database.allow_replacement"),
        "{err}"
    );
    assert_eq!(mutating(&emu.recorded_actions()), Vec::<&String>::new(), "nothing changed");
    runtime().block_on(async {
        assert_eq!(instances(&emu, PRIMARY).await[0].db_instance_identifier(), Some(IDENTIFIER));
    });
    assert_secret_never_printed(&emu, &[&up, &drift, &repair, &clean, &plan, &refused]);
}

#[test]
fn destroy_honours_deletion_protection_then_keeps_a_final_snapshot_and_leaves_nothing_of_the_tier() {
    let emu = Emulator::start();
    let project = db_project();
    set_database(&project, "deletion_protection", "true");
    set_database(&project, "skip_final_snapshot", "false");
    deployer_ok(&emu, &project, &["up", "--env", ENV, "--yes", "-q"]);

    let refused = deployer(&emu, &project, &["destroy", "--env", ENV, "--yes"]);
    assert_eq!(refused.status.code(), Some(1));
    let err = stderr_text(&refused);
    assert!(
        err.contains("deletion protection") && err.contains("database.deletion_protection = false"),
        "{err}"
    );
    assert!(err.contains("deployer up"), "names the way out: {err}");
    runtime().block_on(async {
        assert_eq!(instances(&emu, PRIMARY).await.len(), 1, "the protected primary is still there");
        assert_eq!(instances(&emu, SECONDARY).await.len(), 1, "and so is its protected replica");
    });

    // The way out the message names.
    set_database(&project, "deletion_protection", "false");
    deployer_ok(&emu, &project, &["up", "--env", ENV, "--yes", "-q"]);
    let destroyed = deployer_ok(&emu, &project, &["destroy", "--env", ENV, "--yes"]);
    assert!(stderr_text(&destroyed).contains("final snapshot"), "{}", stderr_text(&destroyed));

    runtime().block_on(async {
        for region in [PRIMARY, SECONDARY] {
            assert_eq!(instances(&emu, region).await.len(), 0, "{region}: a DB instance is left");
            let client = rds(&emu, region).await;
            let subnet_groups = client.describe_db_subnet_groups().send().await.unwrap();
            assert!(
                subnet_groups
                    .db_subnet_groups()
                    .iter()
                    .all(|g| !g.db_subnet_group_name().unwrap_or("").starts_with("webapp-local-")),
                "{region}: a DB subnet group is left"
            );
            let parameter_groups = client.describe_db_parameter_groups().send().await.unwrap();
            assert!(
                parameter_groups
                    .db_parameter_groups()
                    .iter()
                    .all(|g| !g.db_parameter_group_name().unwrap_or("").starts_with("webapp-local-")),
                "{region}: a DB parameter group is left"
            );
            assert_eq!(security_groups(&emu, region).await.len(), 0, "{region}: a security group is left");
            let sm = aws_sdk_secretsmanager::Client::new(&support::sdk_config(&emu, region).await);
            let left = sm.list_secrets().include_planned_deletion(true).send().await.unwrap();
            assert!(left.secret_list().is_empty(), "{region}: no secret is left: {:?}", left.secret_list());
        }
        let snapshots = rds(&emu, PRIMARY).await.describe_db_snapshots().send().await.unwrap();
        let finals: Vec<&str> = snapshots
            .db_snapshots()
            .iter()
            .filter_map(|s| s.db_snapshot_identifier())
            .filter(|id| id.starts_with("webapp-local-final-"))
            .collect();
        assert_eq!(finals.len(), 1, "one final snapshot of the primary: {finals:?}");
        let stamp = finals[0].trim_start_matches("webapp-local-final-");
        assert!(stamp.len() == 14 && stamp.bytes().all(|b| b.is_ascii_digit()), "YYYYMMDDHHMMSS: {stamp}");
        let replica_snapshots =
            rds(&emu, SECONDARY).await.describe_db_snapshots().snapshot_type("manual").send().await.unwrap();
        assert!(replica_snapshots.db_snapshots().is_empty(), "no final snapshot of a replica");
    });
    let again = deployer_ok(&emu, &project, &["destroy", "--env", ENV, "--yes"]);
    assert!(stderr_text(&again).contains("Nothing to destroy"), "{}", stderr_text(&again));
}

#[test]
fn a_bad_database_config_is_rejected_before_any_request() {
    let emu = Emulator::start();
    let project = db_project();
    emu.start_recording();

    set_database(&project, "colour", "\"blue\"");
    let unknown = deployer(&emu, &project, &["up", "--env", ENV, "--yes"]);
    assert_eq!(unknown.status.code(), Some(1));
    let err = stderr_text(&unknown);
    assert!(err.contains("local.toml") && err.contains("colour"), "{err}");

    let project = db_project();
    set_database(&project, "allocated_storage_gib", "200");
    set_database(&project, "max_allocated_storage_gib", "100");
    let storage = deployer(&emu, &project, &["plan", "--env", ENV]);
    assert_eq!(storage.status.code(), Some(1));
    let err = stderr_text(&storage);
    assert!(err.contains("local.toml") && err.contains("max_allocated_storage_gib"), "{err}");

    assert_eq!(emu.recorded_actions(), Vec::<String>::new(), "no AWS request for a bad config");
}

/// moto 5.2.5 gets cross-region replicas wrong in ways the deployer meets; the emulator's fixes
/// (tests/emulator/moto_fixes.py) make it behave as the RDS API reference says.
#[test]
fn the_emulator_treats_cross_region_replicas_as_aws_does() {
    let emu = Emulator::start();
    runtime().block_on(async {
        let mut subnet_groups = Vec::new();
        for (region, cidr) in [(PRIMARY, "10.1.0.0/16"), (SECONDARY, "10.2.0.0/16")] {
            let ec2 = ec2(&emu, region).await;
            let vpc = ec2
                .create_vpc()
                .cidr_block(cidr)
                .send()
                .await
                .unwrap()
                .vpc()
                .unwrap()
                .vpc_id()
                .unwrap()
                .to_string();
            let mut subnets = Vec::new();
            for (i, az) in ["a", "b", "c"].iter().enumerate() {
                let out = ec2
                    .create_subnet()
                    .vpc_id(&vpc)
                    .cidr_block(cidr.replace(".0.0/16", &format!(".{i}.0/24")))
                    .availability_zone(format!("{region}{az}"))
                    .send()
                    .await
                    .unwrap();
                subnets.push(out.subnet().unwrap().subnet_id().unwrap().to_string());
            }
            rds(&emu, region)
                .await
                .create_db_subnet_group()
                .db_subnet_group_name("probe")
                .db_subnet_group_description("probe")
                .subnet_ids(&subnets[0])
                .subnet_ids(&subnets[1])
                .send()
                .await
                .unwrap();
            subnet_groups.push((vpc, subnets));
        }
        let (east1, east2) = (rds(&emu, PRIMARY).await, rds(&emu, SECONDARY).await);

        // ModifyDBSubnetGroup replaces the subnets in place (moto: HTTP 500, group gone).
        let (_, subnets2) = &subnet_groups[1];
        east2
            .modify_db_subnet_group()
            .db_subnet_group_name("probe")
            .subnet_ids(&subnets2[1])
            .subnet_ids(&subnets2[2])
            .send()
            .await
            .unwrap();
        let group = east2.describe_db_subnet_groups().db_subnet_group_name("probe").send().await.unwrap();
        let mut ids: Vec<&str> =
            group.db_subnet_groups()[0].subnets().iter().filter_map(|s| s.subnet_identifier()).collect();
        ids.sort();
        let mut want = vec![subnets2[1].as_str(), subnets2[2].as_str()];
        want.sort();
        assert_eq!(ids, want);

        let primary = east1
            .create_db_instance()
            .db_instance_identifier("probe")
            .engine("postgres")
            .engine_version("16.4")
            .db_instance_class("db.t4g.medium")
            .allocated_storage(20)
            .storage_encrypted(true)
            .manage_master_user_password(true)
            .master_username("probe_admin")
            .db_subnet_group_name("probe")
            .enable_performance_insights(true)
            .send()
            .await
            .unwrap();
        let primary = primary.db_instance().unwrap();
        assert_eq!(primary.performance_insights_enabled(), Some(true), "reported (moto: never)");
        let arn = primary.db_instance_arn().unwrap();
        assert!(primary.master_user_secret().is_some(), "RDS manages its password");

        // RDS refuses a read replica of a source whose password it manages ("Limitations for
        // Secrets Manager integration with Amazon RDS"; moto: created it).
        let refused = east2
            .create_db_instance_read_replica()
            .db_instance_identifier("probe")
            .source_db_instance_identifier(arn)
            .kms_key_id("alias/aws/rds")
            .db_subnet_group_name("probe")
            .send()
            .await
            .unwrap_err();
        assert_eq!(aws_sdk_rds::error::ProvideErrorMetadata::code(&refused), Some("InvalidParameterValue"));
        // Moved to a password of its own (what `up` does to a primary from an older version),
        // RDS deletes its secret, and the source can be replicated.
        east1
            .modify_db_instance()
            .db_instance_identifier("probe")
            .manage_master_user_password(false)
            .master_user_password("a-password-of-its-own-0123456789")
            .apply_immediately(true)
            .send()
            .await
            .unwrap();
        let moved = east1.describe_db_instances().db_instance_identifier("probe").send().await.unwrap();
        assert!(moved.db_instances()[0].master_user_secret().is_none());
        assert!(support::db_login(&emu, PRIMARY, "probe", "probe_admin", "a-password-of-its-own-0123456789"));

        // An encrypted source in another region needs a KMS key of the replica's region.
        let refused = east2
            .create_db_instance_read_replica()
            .db_instance_identifier("probe")
            .source_db_instance_identifier(arn)
            .db_subnet_group_name("probe")
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            aws_sdk_rds::error::ProvideErrorMetadata::code(&refused),
            Some("InvalidParameterCombination")
        );

        let replica = east2
            .create_db_instance_read_replica()
            .db_instance_identifier("probe")
            .source_db_instance_identifier(arn)
            .kms_key_id("alias/aws/rds")
            .db_subnet_group_name("probe")
            .send()
            .await
            .unwrap();
        let replica = replica.db_instance().unwrap();
        assert_eq!(
            replica.db_subnet_group().and_then(|g| g.vpc_id()),
            Some(subnet_groups[1].0.as_str()),
            "the subnet group of the replica's own region"
        );
        assert!(replica.master_user_secret().is_none(), "a replica has no master secret");
        let group = replica.db_parameter_groups().first().and_then(|g| g.db_parameter_group_name());
        assert_eq!(group, Some("default.postgres16"), "the engine's default group of its own region");

        assert!(
            support::db_login(&emu, SECONDARY, "probe", "probe_admin", "a-password-of-its-own-0123456789"),
            "a replica takes its source's password"
        );

        // Deleting the replica works (moto: HTTP 500).
        east2
            .delete_db_instance()
            .db_instance_identifier("probe")
            .skip_final_snapshot(true)
            .send()
            .await
            .unwrap();
        let primary = east1.describe_db_instances().db_instance_identifier("probe").send().await.unwrap();
        assert!(primary.db_instances()[0].read_replica_db_instance_identifiers().is_empty());
    });
}

#[test]
fn a_new_az_joins_the_db_subnet_groups_in_place() {
    let emu = Emulator::start();
    let project = db_project();
    deployer_ok(&emu, &project, &["up", "--env", ENV, "--yes", "-q"]);
    project.edit("local.toml", |s| s.replace("[network]\n", "[network]\naz_count = 3\n"));
    let plan = stdout_text(&deployer_ok(&emu, &project, &["plan", "--env", ENV]));
    assert!(plan.contains("~ us-east-1/database/db-subnet-group/main"), "{plan}");
    assert!(!plan.contains("-/+ us-east-1/database"), "nothing of the database is replaced: {plan}");
    deployer_ok(&emu, &project, &["up", "--env", ENV, "--yes", "-q"]);
    runtime().block_on(async {
        for region in [PRIMARY, SECONDARY] {
            let out = rds(&emu, region)
                .await
                .describe_db_subnet_groups()
                .db_subnet_group_name("webapp-local-db")
                .send()
                .await;
            let mut subnets: Vec<String> = out.unwrap().db_subnet_groups()[0]
                .subnets()
                .iter()
                .map(|s| s.subnet_identifier().unwrap().to_string())
                .collect();
            subnets.sort();
            let private = private_subnets(&emu, region).await;
            assert_eq!(private.len(), 3, "{region}");
            assert_eq!(subnets, private, "{region}: the group spans the three private subnets");
        }
    });
    let clean = deployer(&emu, &project, &["drift", "--env", ENV]);
    assert_eq!(clean.status.code(), Some(0), "{}", stdout_text(&clean));
}

/// With the emulator's model of AWS on, databases take their time ("creating" for 9 s, a
/// replica 12 s, at the default scale). A run killed while the replica is still being created
/// leaves it busy and on its engine's default parameter group; the next `up` waits for it and
/// finishes the job.
#[test]
fn an_up_killed_while_the_replica_is_created_is_finished_by_the_next_up() {
    let emu = Emulator::start_with_env(&[("DEPLOYER_EMU_MODEL", "1")]);
    let project = db_project();
    let mut cmd = support::deployer_command(&emu, &project);
    cmd.args(["up", "--env", ENV, "--yes", "-q"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut first = cmd.spawn().expect("run deployer up");
    let creating = runtime().block_on(async {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while std::time::Instant::now() < deadline {
            if let Some(r) = instances(&emu, SECONDARY).await.first() {
                return r.db_instance_status().map(str::to_string);
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        None
    });
    first.kill().unwrap();
    first.wait().unwrap();
    assert_eq!(creating.as_deref(), Some("creating"), "the replica was being created when the run died");

    let status = stdout_json(&deployer_ok(&emu, &project, &["status", "--env", ENV, "--output", "json"]));
    let replica = status["regions"][SECONDARY]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["address"] == "us-east-2/database/db-replica/replica")
        .cloned()
        .unwrap();
    assert_eq!(replica["state"], "creating", "{replica:#}");

    // The killed run held the lock.
    deployer_ok(&emu, &project, &["unlock", "--env", ENV, "--yes"]);
    let second = deployer_ok(&emu, &project, &["up", "--env", ENV, "--yes"]);
    let text = stderr_text(&second);
    assert!(text.contains("us-east-2/database/db-replica/replica"), "{text}");
    assert!(!text.contains("created arn:aws:rds"), "nothing is created twice: {text}");
    runtime().block_on(async {
        let replicas = instances(&emu, SECONDARY).await;
        assert_eq!(replicas.len(), 1);
        assert_eq!(replicas[0].db_instance_status(), Some("available"));
        let group = replicas[0].db_parameter_groups().first().and_then(|g| g.db_parameter_group_name());
        assert_eq!(group, Some("webapp-local-postgres16"));
    });
    let clean = deployer(&emu, &project, &["drift", "--env", ENV]);
    assert_eq!(clean.status.code(), Some(0), "{}", stdout_text(&clean));
}

/// A primary made by an older version, whose password RDS manages (`ManageMasterUserPassword`),
/// with no deployer secret: the plan says the password moves, and `up` moves it in place to a
/// new deployer secret (same instance, no new one), after which both databases take the
/// secret's password and the plan is empty.
#[test]
fn a_primary_whose_password_rds_manages_is_moved_to_the_deployer_s_secret_in_place() {
    let emu = Emulator::start();
    let project = db_project();
    deployer_ok(&emu, &project, &["up", "--env", ENV, "--yes", "-q"]);
    let before = runtime().block_on(async {
        let east1 = rds(&emu, PRIMARY).await;
        east1
            .modify_db_instance()
            .db_instance_identifier(IDENTIFIER)
            .manage_master_user_password(true)
            .apply_immediately(true)
            .send()
            .await
            .unwrap();
        // As an older version left it: no secret of the deployer's.
        let sm = aws_sdk_secretsmanager::Client::new(&support::sdk_config(&emu, PRIMARY).await);
        sm.remove_regions_from_replication()
            .secret_id(SECRET)
            .remove_replica_regions(SECONDARY)
            .send()
            .await
            .unwrap();
        sm.delete_secret().secret_id(SECRET).force_delete_without_recovery(true).send().await.unwrap();
        let p = instances(&emu, PRIMARY).await;
        assert!(p[0].master_user_secret().is_some());
        p[0].db_instance_arn().unwrap().to_string()
    });
    assert!(runtime().block_on(support::db_secret(&emu, PRIMARY, SECRET)).is_none());

    let plan = deployer(&emu, &project, &["plan", "--env", ENV]);
    let text = stdout_text(&plan);
    assert!(
        text.contains("~ us-east-1/database/db-instance/primary")
            && text.contains("manage_master_user_password: true -> false")
            && text.contains("RDS refuses a read replica of a source whose password it manages"),
        "{text}"
    );
    assert!(text.contains("+ us-east-1/database/db-secret/master"), "{text}");
    assert!(!text.contains("-/+ us-east-1/database/db-instance"), "never replaced: {text}");

    emu.start_recording();
    let up = deployer_ok(&emu, &project, &["up", "--env", ENV, "--yes"]);
    let actions = emu.recorded_actions();
    emu.stop_recording();
    assert!(!actions.iter().any(|a| a == "CreateDBInstance"), "no new instance: {actions:?}");
    runtime().block_on(async {
        let p = instances(&emu, PRIMARY).await;
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].db_instance_arn(), Some(before.as_str()), "the same instance");
        assert!(p[0].master_user_secret().is_none(), "RDS no longer manages it");
        let (_, _, value) = support::db_secret(&emu, PRIMARY, SECRET).await.expect("the deployer's secret");
        let (_, of, replica) = support::db_secret(&emu, SECONDARY, SECRET).await.expect("and its replica");
        assert_eq!((of.as_deref(), &replica), (Some(PRIMARY), &value));
        assert_eq!(value["host"].as_str(), p[0].endpoint().and_then(|e| e.address()));
        let pw = value["password"].as_str().unwrap();
        for region in [PRIMARY, SECONDARY] {
            assert!(support::db_login(&emu, region, IDENTIFIER, "app_admin", pw), "{region}");
        }
    });
    assert_secret_never_printed(&emu, &[&plan, &up]);
    let clean = deployer(&emu, &project, &["plan", "--env", ENV, "--detailed-exitcode"]);
    assert_eq!(clean.status.code(), Some(0), "{}", stdout_text(&clean));
}

/// With `[database.kms_key]`, each region's copy of the secret is encrypted with its region's
/// key; a key changed by hand on the writable copy and a tag taken off it are drift, and `up`
/// puts both back (UpdateSecret, TagResource: the calls no other scenario makes).
#[test]
fn the_secret_s_key_and_tags_are_the_configured_ones_and_hand_changes_are_put_back() {
    let emu = Emulator::start();
    let project = db_project();
    let key = |r: &str| format!("arn:aws:kms:{r}:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab");
    project.edit("local.toml", |t| {
        format!(
            "{t}\n[database.kms_key]\nus-east-1 = \"{}\"\nus-east-2 = \"{}\"\n",
            key(PRIMARY),
            key(SECONDARY)
        )
    });
    deployer_ok(&emu, &project, &["up", "--env", ENV, "--yes", "-q"]);
    runtime().block_on(async {
        for region in [PRIMARY, SECONDARY] {
            let sm = aws_sdk_secretsmanager::Client::new(&support::sdk_config(&emu, region).await);
            let d = sm.describe_secret().secret_id(SECRET).send().await.unwrap();
            assert_eq!(d.kms_key_id(), Some(key(region).as_str()), "{region}: its own region's key");
        }
        let sm = aws_sdk_secretsmanager::Client::new(&support::sdk_config(&emu, PRIMARY).await);
        sm.update_secret()
            .secret_id(SECRET)
            .kms_key_id(key(PRIMARY).replace("1234abcd", "9999abcd"))
            .send()
            .await
            .unwrap();
        sm.untag_resource().secret_id(SECRET).tag_keys("deployer:managed-by").send().await.unwrap();
    });
    let drift = deployer(&emu, &project, &["drift", "--env", ENV]);
    assert_eq!(drift.status.code(), Some(2), "{}", stdout_text(&drift));
    let text = stdout_text(&drift);
    assert!(text.contains("us-east-1/database/db-secret/master") && text.contains("kms_key"), "{text}");
    deployer_ok(&emu, &project, &["up", "--env", ENV, "--yes"]);
    runtime().block_on(async {
        let sm = aws_sdk_secretsmanager::Client::new(&support::sdk_config(&emu, PRIMARY).await);
        let d = sm.describe_secret().secret_id(SECRET).send().await.unwrap();
        assert_eq!(d.kms_key_id(), Some(key(PRIMARY).as_str()), "the configured key again");
        assert!(d.tags().iter().any(|t| t.key() == Some("deployer:managed-by")), "the tag put back");
    });
    let clean = deployer(&emu, &project, &["drift", "--env", ENV]);
    assert_eq!(clean.status.code(), Some(0), "{}", stdout_text(&clean));
}
