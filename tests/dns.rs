//! The DNS tier end to end: `up` makes a health check per region (tagged) and PRIMARY/SECONDARY
//! alias records to the two load balancers; a deleted SECONDARY record is found by `drift`
//! (exit 2) and put back by `up`; `destroy` removes exactly the environment's records and
//! checks, and a foreign record in the same zone survives. Judged by Route 53's own answers.

mod support;

use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType, TagResourceType,
};
use support::{deployer, deployer_ok, show_output, Emulator, Project};

const ENV: &str = "local";
const NAME: &str = "app.local.deployer.test.";

struct R53 {
    client: aws_sdk_route53::Client,
    zone: String,
}

impl R53 {
    async fn new(emu: &Emulator) -> R53 {
        let client = aws_sdk_route53::Client::new(&support::sdk_config(emu, "us-east-1").await);
        let zones = client.list_hosted_zones_by_name().dns_name("deployer.test.").send().await.unwrap();
        let zone = zones.hosted_zones()[0].id().trim_start_matches("/hostedzone/").to_string();
        R53 { client, zone }
    }

    async fn records(&self) -> Vec<ResourceRecordSet> {
        self.client
            .list_resource_record_sets()
            .hosted_zone_id(&self.zone)
            .send()
            .await
            .unwrap()
            .resource_record_sets()
            .to_vec()
    }

    async fn failover(&self) -> Vec<(String, String, String, Option<String>)> {
        let mut out: Vec<_> = self
            .records()
            .await
            .into_iter()
            .filter(|r| r.set_identifier().is_some_and(|s| s.starts_with("webapp-local-")))
            .map(|r| {
                (
                    r.failover().unwrap().as_str().to_string(),
                    r.set_identifier().unwrap().to_string(),
                    r.alias_target().unwrap().dns_name().trim_end_matches('.').to_string(),
                    r.health_check_id().map(str::to_string),
                )
            })
            .collect();
        out.sort();
        out
    }

    async fn checks(&self) -> Vec<(String, std::collections::BTreeMap<String, String>)> {
        let checks = self.client.list_health_checks().send().await.unwrap().health_checks().to_vec();
        let mut out = Vec::new();
        for c in checks {
            let tags = self
                .client
                .list_tags_for_resource()
                .resource_type(TagResourceType::Healthcheck)
                .resource_id(c.id())
                .send()
                .await
                .unwrap();
            let tags = tags
                .resource_tag_set()
                .map(|s| {
                    s.tags()
                        .iter()
                        .map(|t| (t.key().unwrap().to_string(), t.value().unwrap().to_string()))
                        .collect()
                })
                .unwrap_or_default();
            out.push((c.id().to_string(), tags));
        }
        out
    }

    async fn change(&self, action: ChangeAction, set: ResourceRecordSet) {
        self.client
            .change_resource_record_sets()
            .hosted_zone_id(&self.zone)
            .change_batch(
                ChangeBatch::builder()
                    .changes(Change::builder().action(action).resource_record_set(set).build().unwrap())
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
    }
}

async fn lb_dns(emu: &Emulator, region: &'static str) -> String {
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&support::sdk_config(emu, region).await);
    let out = elb.describe_load_balancers().names("webapp-local").send().await.unwrap();
    out.load_balancers()[0].dns_name().unwrap().to_string()
}

#[test]
fn failover_records_and_health_checks_are_built_repaired_and_removed_alone() {
    let emu = Emulator::start();
    let project = Project::new();
    project.disable("database");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let r53 = rt.block_on(R53::new(&emu));
    // Someone else's record in the same zone.
    let foreign = ResourceRecordSet::builder()
        .name("other.deployer.test.")
        .r#type(RrType::Cname)
        .ttl(300)
        .resource_records(ResourceRecord::builder().value("example.com").build().unwrap())
        .build()
        .unwrap();
    rt.block_on(r53.change(ChangeAction::Create, foreign));

    deployer_ok(&emu, &project, &["up", "--env", ENV, "--yes"]);
    let (east1, east2) =
        rt.block_on(async { (lb_dns(&emu, "us-east-1").await, lb_dns(&emu, "us-east-2").await) });
    let checks = rt.block_on(r53.checks());
    assert_eq!(checks.len(), 2, "a health check per region: {checks:?}");
    for (_, tags) in &checks {
        assert_eq!(tags.get("deployer:env").map(String::as_str), Some(ENV), "tagged: {tags:?}");
        assert!(tags.get("deployer:dns-zone").is_some(), "{tags:?}");
    }
    let primary_check = checks
        .iter()
        .find(|(_, t)| t["deployer:address"] == "global/dns/health-check/us-east-1")
        .unwrap()
        .0
        .clone();
    let records = rt.block_on(r53.failover());
    assert_eq!(
        records,
        vec![
            ("PRIMARY".into(), "webapp-local-us-east-1".into(), east1.clone(), Some(primary_check.clone())),
            ("SECONDARY".into(), "webapp-local-us-east-2".into(), east2.clone(), None),
        ]
    );

    // A deleted SECONDARY record is drift, and `up` puts it back.
    let secondary = rt
        .block_on(r53.records())
        .into_iter()
        .find(|r| r.set_identifier() == Some("webapp-local-us-east-2"))
        .unwrap();
    assert_eq!(secondary.name(), NAME);
    rt.block_on(r53.change(ChangeAction::Delete, secondary));
    let drift = deployer(&emu, &project, &["drift", "--env", ENV]);
    assert_eq!(drift.status.code(), Some(2), "{}", show_output(&drift));
    assert!(support::stdout_text(&drift).contains("global/dns/dns-record/app.local.deployer.test"));
    deployer_ok(&emu, &project, &["up", "--env", ENV, "--yes"]);
    assert_eq!(rt.block_on(r53.failover()).len(), 2);
    deployer_ok(&emu, &project, &["drift", "--env", ENV]);

    // `failover --dns-only`: us-east-2 becomes PRIMARY, in one batch (the emulator, like Route 53,
    // refuses two PRIMARY records for a name); running it again changes nothing.
    let secondary_check = checks
        .iter()
        .find(|(_, t)| t["deployer:address"] == "global/dns/health-check/us-east-2")
        .unwrap()
        .0
        .clone();
    let out =
        deployer_ok(&emu, &project, &["failover", "--env", ENV, "--to", "us-east-2", "--dns-only", "--yes"]);
    assert!(support::stderr_text(&out).contains("primary = \"us-east-2\""), "{}", show_output(&out));
    assert_eq!(
        rt.block_on(r53.failover()),
        vec![
            ("PRIMARY".into(), "webapp-local-us-east-2".into(), east2.clone(), Some(secondary_check)),
            ("SECONDARY".into(), "webapp-local-us-east-1".into(), east1.clone(), None),
        ]
    );
    emu.start_recording();
    let again =
        deployer_ok(&emu, &project, &["failover", "--env", ENV, "--to", "us-east-2", "--dns-only", "--yes"]);
    emu.stop_recording();
    assert!(support::stderr_text(&again).contains("Nothing to do"), "{}", show_output(&again));
    let sent: Vec<String> =
        emu.recorded_actions().into_iter().filter(|a| !support::is_read_action(a)).collect();
    assert_eq!(sent, Vec::<String>::new());
    // The configuration still says us-east-1: drift shows it, until the config says us-east-2.
    assert_eq!(deployer(&emu, &project, &["drift", "--env", ENV]).status.code(), Some(2));
    project.edit("local.toml", |t| t.replace("[dns]\n", "[dns]\nprimary = \"us-east-2\"\n"));
    deployer_ok(&emu, &project, &["drift", "--env", ENV]);

    // Destroy: the environment's records and checks go; the foreign record stays.
    deployer_ok(&emu, &project, &["destroy", "--env", ENV, "--yes"]);
    assert!(rt.block_on(r53.failover()).is_empty());
    assert!(rt.block_on(r53.checks()).is_empty());
    assert!(
        rt.block_on(r53.records()).iter().any(|r| r.name() == "other.deployer.test."),
        "the foreign record survives"
    );
}
