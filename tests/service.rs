//! The service tier end to end: `deployer up --env local` builds, in both regions, the roles,
//! a certificate, the load balancer with its listeners and target groups, the ECS cluster,
//! task definition and CODE_DEPLOY service, auto-scaling, and the CodeDeploy application and
//! deployment group; a second `up` sends nothing that changes anything; out-of-band changes
//! are found by `drift` and repaired by `up`; `destroy` leaves nothing. Judged by each
//! service's own answers, read with clients of the test's own.

mod support;

use std::collections::BTreeSet;

use serde_json::Value;
use support::{
    deployer, deployer_ok, is_read_action, show_output, stderr_text, stdout_json, Emulator, Project,
};

const ENV: &str = "local";
const NAME: &str = "webapp-local";
const REGIONS: [&str; 2] = ["us-east-1", "us-east-2"];
const ROLE_PATH: &str = "/deployer/webapp/local/";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

struct Clients {
    iam: aws_sdk_iam::Client,
    acm: aws_sdk_acm::Client,
    elb: aws_sdk_elasticloadbalancingv2::Client,
    ecs: aws_sdk_ecs::Client,
    scaling: aws_sdk_applicationautoscaling::Client,
    codedeploy: aws_sdk_codedeploy::Client,
    cloudwatch: aws_sdk_cloudwatch::Client,
    ec2: aws_sdk_ec2::Client,
}

async fn clients(emu: &Emulator, region: &'static str) -> Clients {
    let c = support::sdk_config(emu, region).await;
    Clients {
        iam: aws_sdk_iam::Client::new(&c),
        acm: aws_sdk_acm::Client::new(&c),
        elb: aws_sdk_elasticloadbalancingv2::Client::new(&c),
        ecs: aws_sdk_ecs::Client::new(&c),
        scaling: aws_sdk_applicationautoscaling::Client::new(&c),
        codedeploy: aws_sdk_codedeploy::Client::new(&c),
        cloudwatch: aws_sdk_cloudwatch::Client::new(&c),
        ec2: aws_sdk_ec2::Client::new(&c),
    }
}

/// A policy document as IAM returns it: URL-encoded JSON.
fn document(encoded: &str) -> Value {
    let decoded = percent_decode(encoded);
    serde_json::from_str(&decoded).unwrap_or_else(|e| panic!("policy document {decoded}: {e}"))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

/// The strings of a policy element that may be a string or an array of strings.
fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect(),
        Value::Null => vec![],
        other => panic!("not a string or array: {other}"),
    }
}

fn statements(doc: &Value) -> Vec<Value> {
    match &doc["Statement"] {
        Value::Array(a) => a.clone(),
        one => vec![one.clone()],
    }
}

/// The inline policies of the environment's roles, by role name.
async fn role_policies(iam: &aws_sdk_iam::Client) -> Vec<(String, Value)> {
    let roles = iam.list_roles().path_prefix(ROLE_PATH).send().await.unwrap();
    let mut out = Vec::new();
    for role in roles.roles() {
        let name = role.role_name();
        let names = iam.list_role_policies().role_name(name).send().await.unwrap();
        for policy in names.policy_names() {
            let got = iam.get_role_policy().role_name(name).policy_name(policy).send().await.unwrap();
            out.push((name.to_string(), document(got.policy_document())));
        }
    }
    out
}

/// Statements with a `*` resource, other than the one AWS requires for
/// `ecr:GetAuthorizationToken` and ELB's describes (which have no resource-level permissions).
fn star_statements(policies: &[(String, Value)]) -> Vec<String> {
    let mut found = Vec::new();
    for (role, doc) in policies {
        for s in statements(doc) {
            if !strings(&s["Resource"]).iter().any(|r| r == "*") {
                continue;
            }
            let actions = strings(&s["Action"]);
            let allowed = actions
                .iter()
                .all(|a| a == "ecr:GetAuthorizationToken" || a.starts_with("elasticloadbalancing:Describe"));
            if !allowed {
                found.push(format!("{role}: {s}"));
            }
        }
    }
    found
}

#[test]
fn up_builds_the_service_tier_in_both_regions_drift_is_repaired_and_destroy_leaves_nothing() {
    let emu = Emulator::start();
    let project = Project::new();
    deployer_ok(&emu, &project, &["up", "--env", ENV, "--yes"]);
    let rt = runtime();

    // IAM: three roles under the environment's path, their policies naming this environment's
    // ARNs only.
    rt.block_on(async {
        let c = clients(&emu, "us-east-1").await;
        let roles = c.iam.list_roles().path_prefix(ROLE_PATH).send().await.unwrap();
        let names: BTreeSet<&str> = roles.roles().iter().map(|r| r.role_name()).collect();
        assert_eq!(
            names,
            BTreeSet::from(["webapp-local-task-execution", "webapp-local-task", "webapp-local-codedeploy"]),
            "the roles"
        );
        let policies = role_policies(&c.iam).await;
        assert!(policies.iter().any(|(r, _)| r == "webapp-local-task-execution"), "{policies:#?}");
        assert_eq!(star_statements(&policies), Vec::<String>::new(), "no `*` resource but the allowed ones");
        let execution = &policies.iter().find(|(r, _)| r == "webapp-local-task-execution").unwrap().1;
        let resources: Vec<String> =
            statements(execution).iter().flat_map(|s| strings(&s["Resource"])).collect();
        for region in REGIONS {
            assert!(
                resources
                    .iter()
                    .any(|r| r.contains(&format!(":ecr:{region}:"))
                        && r.ends_with(&format!("repository/{NAME}"))),
                "pulls from the repository in {region}: {resources:#?}"
            );
        }
        for region in REGIONS {
            assert!(
                resources.iter().any(|r| r.contains(&format!(":secretsmanager:{region}:"))
                    && r.contains(&format!("secret:{NAME}/db-master-"))),
                "reads {region}'s copy of the database's secret: {resources:#?}"
            );
        }
        assert!(!resources.iter().any(|r| r.contains("rds!")), "never RDS's managed secret: {resources:#?}");

        // Every role carries the environment's permissions boundary, which allows what the
        // roles' own policies allow and no IAM change.
        let boundary_arn = format!("arn:aws:iam::123456789012:policy{ROLE_PATH}webapp-local-boundary");
        for role in roles.roles() {
            let got = c.iam.get_role().role_name(role.role_name()).send().await.unwrap();
            assert_eq!(
                got.role().and_then(|r| r.permissions_boundary()).and_then(|b| b.permissions_boundary_arn()),
                Some(boundary_arn.as_str()),
                "{} carries the boundary",
                role.role_name()
            );
        }
        let policy = c.iam.get_policy().policy_arn(&boundary_arn).send().await.unwrap();
        let version = policy.policy().and_then(|p| p.default_version_id()).unwrap().to_string();
        let doc =
            c.iam.get_policy_version().policy_arn(&boundary_arn).version_id(version).send().await.unwrap();
        let boundary = document(doc.policy_version().and_then(|v| v.document()).unwrap());
        let allowed: BTreeSet<String> =
            statements(&boundary).iter().flat_map(|s| strings(&s["Action"])).collect();
        for (role, policy) in &policies {
            for action in statements(policy).iter().flat_map(|s| strings(&s["Action"])) {
                assert!(allowed.contains(&action), "{role}'s {action} is within the boundary: {allowed:#?}");
            }
        }
        assert!(
            !allowed.iter().any(|a| a == "*" || a.starts_with("iam:Create") || a.starts_with("iam:Put")),
            "{allowed:#?}"
        );
    });

    for region in REGIONS {
        rt.block_on(async {
            let c = clients(&emu, region).await;

            // TLS: an issued certificate for the environment's name.
            let certs = c.acm.list_certificates().send().await.unwrap();
            let ours: Vec<_> = certs
                .certificate_summary_list()
                .iter()
                .filter(|s| s.domain_name() == Some("app.local.deployer.test"))
                .collect();
            assert_eq!(ours.len(), 1, "{region}: one certificate: {certs:#?}");
            let cert_arn = ours[0].certificate_arn().unwrap().to_string();
            let cert = c.acm.describe_certificate().certificate_arn(&cert_arn).send().await.unwrap();
            assert_eq!(
                cert.certificate().and_then(|c| c.status()).map(|s| s.as_str()),
                Some("ISSUED"),
                "{region}"
            );

            // The load balancer, its target groups and listeners.
            let lbs = c.elb.describe_load_balancers().names(NAME).send().await.unwrap();
            let lb = &lbs.load_balancers()[0];
            assert_eq!(lb.scheme().map(|s| s.as_str()), Some("internet-facing"), "{region}");
            let lb_arn = lb.load_balancer_arn().unwrap();
            let all_tgs = c.elb.describe_target_groups().send().await.unwrap();
            let tg = |color: &str| {
                all_tgs
                    .target_groups()
                    .iter()
                    .find(|t| t.target_group_name() == Some(&format!("{NAME}-{color}")))
                    .unwrap_or_else(|| panic!("{region}: no {color} target group: {all_tgs:#?}"))
                    .clone()
            };
            let (blue, green) = (tg("blue"), tg("green"));
            for t in [&blue, &green] {
                assert_eq!(t.target_type().map(|s| s.as_str()), Some("ip"), "{region}");
                assert_eq!(t.port(), Some(8080), "{region}");
            }
            let listeners = c.elb.describe_listeners().load_balancer_arn(lb_arn).send().await.unwrap();
            let listener = |port: i32| {
                listeners
                    .listeners()
                    .iter()
                    .find(|l| l.port() == Some(port))
                    .unwrap_or_else(|| panic!("{region}: no listener on {port}: {listeners:#?}"))
                    .clone()
            };
            let https = listener(443);
            assert_eq!(https.protocol().map(|p| p.as_str()), Some("HTTPS"), "{region}");
            assert_eq!(https.ssl_policy(), Some("ELBSecurityPolicy-TLS13-1-2-2021-06"), "{region}");
            assert_eq!(https.certificates()[0].certificate_arn(), Some(cert_arn.as_str()), "{region}");
            assert_eq!(
                https.default_actions()[0].target_group_arn(),
                blue.target_group_arn(),
                "{region}: 443 → blue"
            );
            let http = listener(80);
            let redirect = http.default_actions()[0].redirect_config().expect("80 redirects");
            assert_eq!(
                (redirect.protocol(), redirect.port(), redirect.status_code().map(|s| s.as_str())),
                (Some("HTTPS"), Some("443"), Some("HTTP_301")),
                "{region}"
            );
            let test = listener(8443);
            assert_eq!(test.protocol().map(|p| p.as_str()), Some("HTTPS"), "{region}");
            assert_eq!(
                test.default_actions()[0].target_group_arn(),
                green.target_group_arn(),
                "{region}: 8443 → green"
            );

            // ECS: the cluster, the task definition, the CODE_DEPLOY service.
            let clusters = c
                .ecs
                .describe_clusters()
                .clusters(NAME)
                .include(aws_sdk_ecs::types::ClusterField::Settings)
                .send()
                .await
                .unwrap();
            let cluster = &clusters.clusters()[0];
            assert!(
                cluster.settings().iter().any(|s| s.value() == Some("enabled")),
                "{region}: Container Insights: {cluster:#?}"
            );
            let services = c.ecs.describe_services().cluster(NAME).services(NAME).send().await.unwrap();
            let service = &services.services()[0];
            assert_eq!(
                service.deployment_controller().map(|d| d.r#type().as_str()),
                Some("CODE_DEPLOY"),
                "{region}"
            );
            assert_eq!(
                service.load_balancers()[0].target_group_arn(),
                blue.target_group_arn(),
                "{region}: on blue"
            );
            let network = service.network_configuration().and_then(|n| n.awsvpc_configuration()).unwrap();
            assert_eq!(
                network.assign_public_ip().map(|a| a.as_str()),
                Some("DISABLED"),
                "{region}: no public IP"
            );
            let subnets = c
                .ec2
                .describe_subnets()
                .set_subnet_ids(Some(network.subnets().to_vec()))
                .send()
                .await
                .unwrap();
            for s in subnets.subnets() {
                assert_eq!(s.map_public_ip_on_launch(), Some(false), "{region}: private subnets only");
            }
            let td = c
                .ecs
                .describe_task_definition()
                .task_definition(service.task_definition().unwrap())
                .send()
                .await
                .unwrap();
            let container = &td.task_definition().unwrap().container_definitions()[0];
            let secrets: Vec<&str> = container.secrets().iter().map(|s| s.name()).collect();
            assert!(
                secrets.contains(&"DB_PASSWORD"),
                "{region}: the password comes by valueFrom: {secrets:?}"
            );
            for s in container.secrets() {
                assert!(s.value_from().starts_with("arn:") || !s.value_from().is_empty(), "{region}");
            }
            for e in container.environment() {
                let value = e.value().unwrap_or_default();
                assert!(
                    !value.contains("P@55w0rd") && !e.name().unwrap_or_default().contains("PASSWORD"),
                    "{region}: a secret in the environment: {e:?}"
                );
            }

            // Auto-scaling: the target and its two policies.
            let resource = format!("service/{NAME}/{NAME}");
            let targets = c
                .scaling
                .describe_scalable_targets()
                .service_namespace(aws_sdk_applicationautoscaling::types::ServiceNamespace::Ecs)
                .resource_ids(&resource)
                .send()
                .await
                .unwrap();
            assert_eq!(targets.scalable_targets().len(), 1, "{region}");
            assert_eq!(
                (targets.scalable_targets()[0].min_capacity(), targets.scalable_targets()[0].max_capacity()),
                (2, 10)
            );
            let policies = c
                .scaling
                .describe_scaling_policies()
                .service_namespace(aws_sdk_applicationautoscaling::types::ServiceNamespace::Ecs)
                .resource_id(&resource)
                .send()
                .await
                .unwrap();
            assert_eq!(policies.scaling_policies().len(), 2, "{region}: CPU and memory");

            // CodeDeploy: the application and the group, wired to the listeners and target groups.
            let groups = c
                .codedeploy
                .batch_get_deployment_groups()
                .application_name(NAME)
                .deployment_group_names(NAME)
                .send()
                .await
                .unwrap();
            let group = &groups.deployment_groups_info()[0];
            let info = group.load_balancer_info().unwrap().target_group_pair_info_list()[0].clone();
            let names: BTreeSet<&str> = info.target_groups().iter().filter_map(|t| t.name()).collect();
            assert_eq!(names, BTreeSet::from(["webapp-local-blue", "webapp-local-green"]), "{region}");
            assert_eq!(
                info.prod_traffic_route().map(|r| r.listener_arns().to_vec()),
                Some(vec![https.listener_arn().unwrap().to_string()]),
                "{region}: production traffic on 443"
            );
            assert_eq!(
                info.test_traffic_route().map(|r| r.listener_arns().to_vec()),
                Some(vec![test.listener_arn().unwrap().to_string()]),
                "{region}: test traffic on 8443"
            );
            let alarms =
                c.cloudwatch.describe_alarms().alarm_name_prefix(format!("{NAME}-")).send().await.unwrap();
            assert!(alarms.metric_alarms().len() >= 2, "{region}: the watched alarms");
        });
    }

    // A second up changes nothing, and above all registers no task definition revision.
    let revisions = |region: &'static str| {
        rt.block_on(async {
            let c = clients(&emu, region).await;
            let out = c.ecs.list_task_definitions().family_prefix(NAME).send().await.unwrap();
            out.task_definition_arns().len()
        })
    };
    let before: Vec<usize> = REGIONS.iter().map(|r| revisions(r)).collect();
    emu.start_recording();
    deployer_ok(&emu, &project, &["up", "--env", ENV, "--yes"]);
    emu.stop_recording();
    let mutating: Vec<String> = emu.recorded_actions().into_iter().filter(|a| !is_read_action(a)).collect();
    assert_eq!(mutating, Vec::<String>::new(), "a converged up changes nothing");
    assert_eq!(REGIONS.iter().map(|r| revisions(r)).collect::<Vec<_>>(), before, "no new revision");

    // Out-of-band changes: found by drift, repaired by up.
    let region = "us-east-1";
    rt.block_on(async {
        let c = clients(&emu, region).await;
        let lb = c.elb.describe_load_balancers().names(NAME).send().await.unwrap();
        let lb_arn = lb.load_balancers()[0].load_balancer_arn().unwrap().to_string();
        let listeners = c.elb.describe_listeners().load_balancer_arn(&lb_arn).send().await.unwrap();
        let http = listeners.listeners().iter().find(|l| l.port() == Some(80)).unwrap();
        let tgs = c.elb.describe_target_groups().names(format!("{NAME}-blue")).send().await.unwrap();
        use aws_sdk_elasticloadbalancingv2::types::{Action, ActionTypeEnum};
        c.elb
            .modify_listener()
            .listener_arn(http.listener_arn().unwrap())
            .default_actions(
                Action::builder()
                    .r#type(ActionTypeEnum::Forward)
                    .target_group_arn(tgs.target_groups()[0].target_group_arn().unwrap())
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let sg = c
            .ec2
            .describe_security_groups()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("group-name")
                    .values(format!("{NAME}-alb"))
                    .build(),
            )
            .send()
            .await
            .unwrap();
        c.ec2
            .authorize_security_group_ingress()
            .group_id(sg.security_groups()[0].group_id().unwrap())
            .ip_permissions(
                aws_sdk_ec2::types::IpPermission::builder()
                    .ip_protocol("tcp")
                    .from_port(8443)
                    .to_port(8443)
                    .ip_ranges(aws_sdk_ec2::types::IpRange::builder().cidr_ip("0.0.0.0/0").build())
                    .build(),
            )
            .send()
            .await
            .unwrap();
        c.scaling
            .delete_scaling_policy()
            .service_namespace(aws_sdk_applicationautoscaling::types::ServiceNamespace::Ecs)
            .resource_id(format!("service/{NAME}/{NAME}"))
            .scalable_dimension(
                aws_sdk_applicationautoscaling::types::ScalableDimension::EcsServiceDesiredCount,
            )
            .policy_name(format!("{NAME}-cpu"))
            .send()
            .await
            .unwrap();
        let wide = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
        c.iam
            .put_role_policy()
            .role_name("webapp-local-task-execution")
            .policy_name("deployer")
            .policy_document(wide)
            .send()
            .await
            .unwrap();
        // The boundary taken off a role, and the boundary itself widened.
        c.iam.delete_role_permissions_boundary().role_name("webapp-local-task").send().await.unwrap();
        let boundary_arn = format!("arn:aws:iam::123456789012:policy{ROLE_PATH}webapp-local-boundary");
        c.iam
            .create_policy_version()
            .policy_arn(&boundary_arn)
            .policy_document(wide)
            .set_as_default(true)
            .send()
            .await
            .unwrap();
    });
    // For people: the widened policy is shown as what changed inside it, one statement per
    // line, every line within 120 columns (not a terminal here), never as one long line.
    let text = support::stdout_text(&deployer(&emu, &project, &["drift", "--env", ENV]));
    for line in text.lines() {
        assert!(line.chars().count() <= 120, "{} columns: {line}", line.chars().count());
    }
    assert!(
        // (`from` is what AWS holds: the statement added by hand is what `up` removes.)
        text.lines().any(|l| l.trim_start().starts_with("- ") && l.contains(r#""actions":["*"]"#)),
        "the added statement, on its own line:\n{text}"
    );
    let drift = deployer(&emu, &project, &["drift", "--env", ENV, "--output", "json"]);
    assert_eq!(drift.status.code(), Some(2), "drift found: {}", stderr_text(&drift));
    let report = stdout_json(&drift);
    let drifted: BTreeSet<String> = report["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["address"].as_str().unwrap().to_string())
        .collect();
    for address in [
        "us-east-1/service/listener/http",
        "us-east-1/service/security-group/alb",
        "us-east-1/service/scaling-policy/cpu",
        "global/iam/iam-role/task-execution",
        "global/iam/iam-role/task",
        "global/iam/iam-boundary/roles",
    ] {
        assert!(drifted.contains(address), "{address} drifted: {drifted:#?}");
    }
    deployer_ok(&emu, &project, &["up", "--env", ENV, "--yes"]);
    let drift = deployer(&emu, &project, &["drift", "--env", ENV]);
    assert_eq!(drift.status.code(), Some(0), "repaired: {}", stderr_text(&drift));

    // Destroy leaves nothing of the tier in either region or in IAM.
    deployer_ok(&emu, &project, &["destroy", "--env", ENV, "--yes"]);
    rt.block_on(async {
        let c = clients(&emu, "us-east-1").await;
        let roles = c.iam.list_roles().path_prefix(ROLE_PATH).send().await.unwrap();
        assert!(roles.roles().is_empty(), "roles left: {roles:#?}");
        let policies = c
            .iam
            .list_policies()
            .scope(aws_sdk_iam::types::PolicyScopeType::Local)
            .path_prefix(ROLE_PATH)
            .send()
            .await
            .unwrap();
        assert!(policies.policies().is_empty(), "the boundary left: {policies:#?}");
        for region in REGIONS {
            let c = clients(&emu, region).await;
            let lbs = c.elb.describe_load_balancers().send().await.unwrap();
            assert!(lbs.load_balancers().is_empty(), "{region}: load balancers left");
            let tgs = c.elb.describe_target_groups().send().await.unwrap();
            assert!(tgs.target_groups().is_empty(), "{region}: target groups left");
            let clusters = c.ecs.describe_clusters().clusters(NAME).send().await.unwrap();
            assert!(
                clusters.clusters().iter().all(|c| c.status() == Some("INACTIVE")),
                "{region}: cluster left: {clusters:#?}"
            );
            let active = c
                .ecs
                .list_task_definitions()
                .family_prefix(NAME)
                .status(aws_sdk_ecs::types::TaskDefinitionStatus::Active)
                .send()
                .await
                .unwrap();
            assert!(active.task_definition_arns().is_empty(), "{region}: revisions left registered");
            let targets = c
                .scaling
                .describe_scalable_targets()
                .service_namespace(aws_sdk_applicationautoscaling::types::ServiceNamespace::Ecs)
                .send()
                .await
                .unwrap();
            assert!(targets.scalable_targets().is_empty(), "{region}: scalable targets left");
            let apps = c.codedeploy.list_applications().send().await.unwrap();
            assert!(apps.applications().is_empty(), "{region}: CodeDeploy applications left");
            let alarms =
                c.cloudwatch.describe_alarms().alarm_name_prefix(format!("{NAME}-")).send().await.unwrap();
            assert!(alarms.metric_alarms().is_empty(), "{region}: alarms left");
            let certs = c.acm.list_certificates().send().await.unwrap();
            assert!(certs.certificate_summary_list().is_empty(), "{region}: certificates left");
        }
    });
}

/// `local.toml` with `line` set in table `[table]` (added at the end when the file has none).
fn with_setting(table: &str, line: &str) -> Project {
    let project = Project::new();
    project.edit("local.toml", |s| {
        let header = format!("[{table}]\n");
        let key = line.split('=').next().unwrap().trim();
        match s.find(&header) {
            Some(at) => {
                let body = at + header.len();
                let end = s[body..].find("\n[").map_or(s.len(), |i| body + i);
                let kept: Vec<&str> = s[body..end]
                    .lines()
                    .filter(|l| !l.trim_start().starts_with(&format!("{key} =")))
                    .collect();
                format!("{}{line}\n{}\n{}", &s[..body], kept.join("\n"), &s[end..])
            }
            None => format!("{s}\n{header}{line}\n"),
        }
    });
    project
}

#[test]
fn a_bad_service_config_is_refused_naming_the_file_and_key_before_any_request() {
    let emu = Emulator::start();
    let cases: &[(&str, &str, &str, &str)] = &[
        ("service", "memory = 3000", "service.memory", "Fargate does not offer 3000 MiB"),
        ("service", "min_tasks = 5\nmax_tasks = 3", "service.min_tasks", "greater than max_tasks"),
        ("service.health_check", "path = \"health\"", "service.health_check.path", "does not start with `/`"),
        ("service", "container_port = 70000", "service.container_port", "out of range"),
        (
            "release",
            "deployment_config = \"CodeDeployDefault.ECSBlueGreen\"",
            "release.deployment_config",
            "not a CodeDeploy deployment configuration",
        ),
        ("service.secrets", "API_KEY = \"webapp key!\"", "service.secrets.API_KEY", "does not allow"),
        ("tls", "domain_names = [\"app.example.org\"]", "tls.domain_names", "not in the hosted zone"),
    ];
    for (table, line, key, why) in cases {
        let project = with_setting(table, line);
        emu.start_recording();
        let out = deployer(&emu, &project, &["plan", "--env", ENV]);
        let err = stderr_text(&out);
        assert_eq!(out.status.code(), Some(1), "{line}: {err}");
        // The report wraps long lines behind a gutter: compare its words.
        let flat = err.replace(['│', '╭', '╰', '─'], " ").split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(flat.contains("local.toml") && flat.contains(key) && flat.contains(why), "{line}: {err}");
        assert_eq!(emu.recorded_actions(), Vec::<String>::new(), "{line}: no AWS request for a bad config");
    }
}

/// `[service.secrets]` names a Secrets Manager secret per variable: each region's task
/// definition gets that region's secret by full ARN (ECS takes a bare name only for an SSM
/// parameter), and a name with no secret in a region is refused before any change, naming the
/// key and the region.
#[test]
fn configured_secrets_reach_each_region_s_task_definition_by_arn_and_a_missing_one_is_refused() {
    let emu = Emulator::start();
    let project = Project::new();
    project.edit("local.toml", |t| format!("{t}\n[service.secrets]\nAPI_KEY = \"webapp/api-key\"\n"));
    emu.start_recording();
    let refused = deployer(&emu, &project, &["up", "--env", ENV, "--yes"]);
    emu.stop_recording();
    assert_eq!(refused.status.code(), Some(1), "{}", show_output(&refused));
    let text = stderr_text(&refused);
    assert!(
        text.contains("service.secrets.API_KEY") && text.contains("api-key") && text.contains("us-east-1"),
        "{text}"
    );
    let sent: Vec<String> = emu.recorded_actions().into_iter().filter(|a| !is_read_action(a)).collect();
    assert_eq!(sent, Vec::<String>::new(), "nothing was changed");

    let arns: Vec<String> = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let mut arns = Vec::new();
        for region in REGIONS {
            let sm = aws_sdk_secretsmanager::Client::new(&support::sdk_config(&emu, region).await);
            let out = sm.create_secret().name("webapp/api-key").secret_string("s3cr3t").send().await.unwrap();
            arns.push(out.arn().unwrap().to_string());
        }
        arns
    });
    deployer_ok(&emu, &project, &["up", "--env", ENV, "--yes"]);
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        for (region, arn) in REGIONS.iter().zip(&arns) {
            let ecs = aws_sdk_ecs::Client::new(&support::sdk_config(&emu, region).await);
            let td = ecs.describe_task_definition().task_definition(NAME).send().await.unwrap();
            let c = &td.task_definition().unwrap().container_definitions()[0];
            let api = c.secrets().iter().find(|s| s.name() == "API_KEY").expect("API_KEY");
            assert_eq!(api.value_from(), arn, "{region}: its own region's secret, by ARN");
        }
    });
    let plan = deployer(&emu, &project, &["plan", "--env", ENV, "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(0), "{}", show_output(&plan));
}

/// A cold `up` ends when each region serves: its service runs the desired count of tasks and
/// as many targets are healthy in the production (blue) target group, as the emulator's model
/// of ECS and ELB says at the moment `up` returns (tasks start and pass health checks over the
/// model's time). A service whose targets never become healthy fails the `up`, naming the
/// targets and ELB's reason.
#[test]
fn a_cold_up_ends_when_each_region_serves_and_unhealthy_targets_are_named() {
    let project = Project::new();
    project.disable("database");
    project.disable("monitoring");
    let emu = Emulator::start_with_env(&[("DEPLOYER_EMU_MODEL", "1"), ("DEPLOYER_EMU_SCALE", "0.03")]);
    deployer_ok(&emu, &project, &["up", "--env", ENV, "--yes", "-q"]);
    let rt = runtime();
    for region in REGIONS {
        rt.block_on(async {
            let c = clients(&emu, region).await;
            let services = c.ecs.describe_services().cluster(NAME).services(NAME).send().await.unwrap();
            let service = &services.services()[0];
            assert!(service.desired_count() >= 1, "{region}");
            assert_eq!(service.running_count(), service.desired_count(), "{region}: every task runs");
            let blue = service.load_balancers()[0].target_group_arn().unwrap();
            let health = c.elb.describe_target_health().target_group_arn(blue).send().await.unwrap();
            let healthy = health
                .target_health_descriptions()
                .iter()
                .filter(|t| t.target_health().and_then(|h| h.state()).map(|s| s.as_str()) == Some("healthy"))
                .count();
            assert_eq!(healthy as i32, service.desired_count(), "{region}: {health:#?}");
        });
    }

    let emu = Emulator::start_with_env(&[
        ("DEPLOYER_EMU_MODEL", "1"),
        ("DEPLOYER_EMU_SCALE", "0.03"),
        ("DEPLOYER_EMU_UNHEALTHY_TARGETS", "1"),
    ]);
    project.edit("local.toml", |t| {
        let at = t.find("[service]\n").unwrap();
        let (head, tail) = t.split_at(at);
        let line = tail.lines().find(|l| l.starts_with("wait_timeout_secs")).unwrap().to_string();
        format!("{head}{}", tail.replacen(&line, "wait_timeout_secs = 60", 1))
    });
    let out = deployer(&emu, &project, &["up", "--env", ENV, "--yes"]);
    assert_eq!(out.status.code(), Some(1), "{}", show_output(&out));
    let err = stderr_text(&out);
    for expected in ["ecs-service/app", "healthy in webapp-local-blue", "unhealthy (Health checks failed)"] {
        assert!(err.contains(expected), "names {expected:?}:\n{err}");
    }
}
