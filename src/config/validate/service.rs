//! `[service]`, `[tls]` and `[release]`: the application's tier, checked against the rules of
//! Fargate, Elastic Load Balancing, Secrets Manager, IAM, ACM and CodeDeploy so that a bad value
//! fails before any AWS call.

use std::collections::BTreeMap;
use std::time::Duration;

use ipnet::IpNet;

use super::super::diagnostic::{closest, list, ConfigIssue};
use super::super::load::{Merged, Val};
use super::super::schema;
use super::super::{
    CapacityConfig, CpuArchitecture, DeploymentConfigChoice, HealthCheckConfig, PolicyStatementConfig,
    ReleaseConfig, ServiceConfig, TlsConfig,
};
use super::kms::{kms_arn_problem, KmsKeys};
use super::{Check, Regions};

/// The task sizes Fargate offers (Linux): CPU units → the memory sizes allowed with them, in
/// MiB, as (first, last, step). From the Amazon ECS Developer Guide, "Task CPU and memory".
const FARGATE_SIZES: &[(u32, u32, u32, u32)] = &[
    (256, 512, 2048, 512),
    (512, 1024, 4096, 1024),
    (1024, 2048, 8192, 1024),
    (2048, 4096, 16384, 1024),
    (4096, 8192, 30720, 1024),
    (8192, 16384, 61440, 4096),
    (16384, 32768, 122880, 8192),
];

/// CloudWatch Logs' retention periods, in days.
const LOG_RETENTION_DAYS: &[i64] = &[
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
];

/// Elastic Load Balancing's TLS 1.3 security policies for HTTPS listeners.
const TLS13_POLICIES: &[&str] = &[
    "ELBSecurityPolicy-TLS13-1-2-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-Res-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-Ext1-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-Ext2-2021-06",
    "ELBSecurityPolicy-TLS13-1-1-2021-06",
    "ELBSecurityPolicy-TLS13-1-0-2021-06",
    "ELBSecurityPolicy-TLS13-1-3-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-2-Res-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-3-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-2-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-3-PQ-2025-09",
];

/// CodeDeploy's predefined configurations for ECS.
pub(crate) const PREDEFINED_ECS_CONFIGS: &[&str] = &[
    "CodeDeployDefault.ECSAllAtOnce",
    "CodeDeployDefault.ECSCanary10Percent5Minutes",
    "CodeDeployDefault.ECSCanary10Percent15Minutes",
    "CodeDeployDefault.ECSLinear10PercentEvery1Minutes",
    "CodeDeployDefault.ECSLinear10PercentEvery3Minutes",
];

/// Environment variables the deployer sets itself when there is a database.
pub(crate) const RESERVED_ENV: &[&str] = &["DB_HOST", "DB_PORT", "DB_NAME", "DB_USERNAME", "DB_PASSWORD"];

impl Check<'_> {
    /// Reports `message` about `key`, pointing at `value` when it was written, else in both
    /// files (a default that clashes with another key).
    pub(super) fn bad<T>(
        &mut self,
        code: &'static str,
        key: &str,
        value: Option<&Val<T>>,
        message: String,
        help: &str,
    ) {
        let issue = ConfigIssue::new(code, key, message).help(help);
        let issue = match value {
            Some(value) => self.at(issue, value, "here"),
            None => issue.in_files(self.both_files()),
        };
        self.issue(issue);
    }

    pub(super) fn service(
        &mut self,
        merged: &Merged,
        regions: &Regions,
        registry_enabled: bool,
    ) -> Option<ServiceConfig> {
        let before = self.issues.len();
        let enabled = self.flag(merged, "service.enabled");
        if enabled && !registry_enabled {
            self.bad(
                "config::service_needs_registry",
                "service.enabled",
                merged.bool("service.enabled").as_ref(),
                "the service needs the registry, but [registry] enabled = false".into(),
                "the service runs the image from the environment's repository: set [registry] \
                 enabled = true, or [service] enabled = false",
            );
        }
        let port = |c: &mut Self, key: &str, help: &str| c.in_range(merged, key, help).map(|p| p as u16);
        let container_port = port(self, "service.container_port", "the port the application listens on");
        let image_tag = self
            .checked_str(
                merged,
                "service.image_tag",
                "config::invalid_value",
                "image tag",
                docker_tag_problem,
                "a Docker tag is 1 to 128 letters, digits, `_`, `.` and `-`, and does not start \
                 with `.` or `-`, e.g. \"v1.4.2\" or \"2026-11-22\"",
            )
            .ok()
            .map(|tag| tag.unwrap_or_else(|| schema::str_default("service.image_tag").to_owned()));
        let (cpu, memory) = self.task_size(merged);
        let cpu_architecture = self.choice(
            merged,
            "service.cpu_architecture",
            &[("X86_64", CpuArchitecture::X86_64), ("ARM64", CpuArchitecture::Arm64)],
            "the architecture the image is built for: `X86_64` (the default) or `ARM64` (Graviton)",
        );
        let (min_tasks, max_tasks) = self.task_counts(merged);
        let percent = |c: &mut Self, key: &str| {
            c.in_range(merged, key, "the average utilisation auto-scaling keeps the service at")
                .map(|p| p as u32)
        };
        let cpu_target_percent = percent(self, "service.cpu_target_percent");
        let memory_target_percent = percent(self, "service.memory_target_percent");
        let secs = |c: &mut Self, key: &str, help: &str| c.in_range(merged, key, help).map(|s| s as u32);
        let scale_in_cooldown_secs =
            secs(self, "service.scale_in_cooldown_secs", "seconds between scale-ins");
        let scale_out_cooldown_secs =
            secs(self, "service.scale_out_cooldown_secs", "seconds between scale-outs");
        let health_check_grace_secs = secs(
            self,
            "service.health_check_grace_secs",
            "seconds ECS ignores a new task's failing health checks",
        );
        let user = self
            .checked_str(
                merged,
                "service.user",
                "config::invalid_value",
                "container user",
                user_problem,
                "a user name or numeric ID, optionally followed by `:group`, e.g. \"1000\" or \
                 \"app:app\"; the container must not run as root",
            )
            .ok()
            .map(|user| user.unwrap_or_else(|| schema::str_default("service.user").to_owned()));
        let environment = self.env_table(merged, "service.environment", false);
        let secrets = self.env_table(merged, "service.secrets", true);
        if let (Some(environment), Some(secrets)) = (&environment, &secrets) {
            for name in secrets.keys().filter(|name| environment.contains_key(*name)) {
                let entry = &merged.region_strings("service.secrets")[name];
                let issue = ConfigIssue::new(
                    "config::duplicate_name",
                    format!("service.secrets.{name}"),
                    format!("`{name}` is set both in [service.environment] and in [service.secrets]"),
                )
                .help("a variable comes from one place: keep the secret and remove the plain value");
                let issue = self.loc(issue, &entry.key, "also in [service.environment]");
                self.issue(issue);
            }
        }
        let secrets_kms_keys = self.kms_list(merged, "service.secrets_kms_keys");
        let task_role_statements = self.task_role_policy(merged);
        let container_health_check = self.container_health_check(merged, container_port);
        let log_retention_days = self.log_retention(merged);
        let log_kms_key = self.kms_keys(
            merged,
            "service.log_kms_key",
            regions,
            KmsKeys::AllOrNone {
                why: "a log group is encrypted with a key of its own region, in every region or none".into(),
            },
        );
        let health_check = self.health_check(merged);
        let deregistration_delay_secs = secs(
            self,
            "service.deregistration_delay_secs",
            "seconds the load balancer lets a leaving task finish its requests",
        );
        let default_ingress = ["0.0.0.0/0", "::/0"];
        let ingress_cidrs = self.cidrs(merged, "service.ingress_cidrs", &default_ingress, true);
        let operator_cidrs = self.cidrs(merged, "service.operator_cidrs", &[], false);
        let test_listener_port = port(self, "service.test_listener_port", "the port of the test listener");
        if let Some(p @ (80 | 443)) = test_listener_port {
            self.bad(
                "config::invalid_value",
                "service.test_listener_port",
                merged.int("service.test_listener_port").as_ref(),
                format!("the test listener cannot use port {p}: the production listeners use 80 and 443"),
                "pick another port (the default is 8443)",
            );
        }
        let idle_timeout_secs =
            secs(self, "service.idle_timeout_secs", "seconds the load balancer keeps an idle connection");
        let ssl_policy = self.ssl_policy(merged);
        let capacity = self.capacity(merged);
        let wait_timeout = secs(
            self,
            "service.wait_timeout_secs",
            "how long to wait for the service's resources, in seconds",
        );
        if self.issues.len() != before {
            return None;
        }
        Some(ServiceConfig {
            enabled,
            container_port: container_port?,
            image_tag: image_tag?,
            cpu: cpu?,
            memory: memory?,
            cpu_architecture: cpu_architecture?,
            min_tasks: min_tasks?,
            max_tasks: max_tasks?,
            cpu_target_percent: cpu_target_percent?,
            memory_target_percent: memory_target_percent?,
            scale_in_cooldown_secs: scale_in_cooldown_secs?,
            scale_out_cooldown_secs: scale_out_cooldown_secs?,
            health_check_grace_secs: health_check_grace_secs?,
            read_only_root_filesystem: self.flag(merged, "service.read_only_root_filesystem"),
            user: Some(user?),
            environment: environment?,
            secrets: secrets?,
            secrets_kms_keys: secrets_kms_keys?,
            task_role_statements: task_role_statements?,
            container_health_check: container_health_check?,
            log_retention_days: log_retention_days?,
            log_kms_key: log_kms_key?,
            health_check: health_check?,
            deregistration_delay_secs: deregistration_delay_secs?,
            ingress_cidrs: ingress_cidrs?,
            operator_cidrs: operator_cidrs?,
            test_listener_port: test_listener_port?,
            idle_timeout_secs: idle_timeout_secs?,
            deletion_protection: self.flag(merged, "service.deletion_protection"),
            ssl_policy: ssl_policy?,
            capacity: capacity?,
            wait_timeout: Duration::from_secs(u64::from(wait_timeout?)),
        })
    }

    /// `cpu` and `memory`, if Fargate offers that combination.
    fn task_size(&mut self, merged: &Merged) -> (Option<u32>, Option<u32>) {
        let cpu = self.in_range(merged, "service.cpu", "CPU units of a task (1024 = one vCPU)");
        let memory = self.in_range(merged, "service.memory", "memory of a task, in MiB");
        let (Some(cpu), Some(memory)) = (cpu, memory) else { return (None, None) };
        let (cpu, memory) = (cpu as u32, memory as u32);
        let sizes = FARGATE_SIZES.iter().map(|(c, ..)| c.to_string()).collect::<Vec<_>>();
        let Some(&(_, first, last, step)) = FARGATE_SIZES.iter().find(|(c, ..)| *c == cpu) else {
            self.bad(
                "config::fargate_size",
                "service.cpu",
                merged.int("service.cpu").as_ref(),
                format!("Fargate has no task size with {cpu} CPU units"),
                &format!("Fargate's CPU sizes are {} (1024 = one vCPU)", list(&sizes)),
            );
            return (None, None);
        };
        if memory < first || memory > last || (memory - first) % step != 0 {
            let value = merged.int("service.memory").or_else(|| merged.int("service.cpu"));
            self.bad(
                "config::fargate_size",
                "service.memory",
                value.as_ref(),
                format!("Fargate does not offer {memory} MiB of memory with {cpu} CPU units"),
                &format!(
                    "with cpu = {cpu}, memory is {first} to {last} MiB in steps of {step} (the Amazon \
                     ECS Developer Guide, \"Task CPU and memory\")"
                ),
            );
            return (None, None);
        }
        (Some(cpu), Some(memory))
    }

    fn task_counts(&mut self, merged: &Merged) -> (Option<u32>, Option<u32>) {
        let min = self.in_range(merged, "service.min_tasks", "the fewest tasks per region");
        let max = self.in_range(merged, "service.max_tasks", "the most tasks per region");
        let (Some(min), Some(max)) = (min, max) else { return (None, None) };
        if min > max {
            let value = merged.int("service.min_tasks").or_else(|| merged.int("service.max_tasks"));
            self.bad(
                "config::min_above_max",
                "service.min_tasks",
                value.as_ref(),
                format!("min_tasks ({min}) is greater than max_tasks ({max})"),
                "auto-scaling runs between min_tasks and max_tasks: make min_tasks at most max_tasks",
            );
            return (None, None);
        }
        (Some(min as u32), Some(max as u32))
    }

    /// A table of environment variables (`[service.environment]`, `[service.secrets]`).
    fn env_table(&mut self, merged: &Merged, table: &str, secrets: bool) -> Option<BTreeMap<String, String>> {
        let before = self.issues.len();
        let mut out = BTreeMap::new();
        for (name, entry) in merged.region_strings(table) {
            let key = format!("{table}.{name}");
            if let Some(problem) = env_name_problem(&name) {
                let issue = ConfigIssue::new("config::invalid_name", key, format!("`{name}` {problem}"))
                    .help(
                        "environment variable names are letters, digits and `_`, not starting with a digit",
                    );
                let issue = self.loc(issue, &entry.key, "not a variable name");
                self.issue(issue);
                continue;
            }
            if RESERVED_ENV.contains(&name.as_str()) {
                let issue = ConfigIssue::new(
                    "config::reserved_name",
                    key,
                    format!("`{name}` is set by the deployer itself"),
                )
                .help(format!(
                    "the deployer sets {} from the database it builds (the password by `valueFrom`, \
                     never as a value): choose another name",
                    list(RESERVED_ENV)
                ));
                let issue = self.loc(issue, &entry.key, "reserved");
                self.issue(issue);
                continue;
            }
            if secrets {
                if let Some(problem) = secret_name_problem(&entry.value.value) {
                    let issue = ConfigIssue::new(
                        "config::invalid_secret_name",
                        key,
                        format!("secret name `{}` {problem}", entry.value.value),
                    )
                    .help(
                        "a Secrets Manager secret name is 1 to 512 of the characters A-Z a-z 0-9 / _ + = . @ -, \
                         e.g. \"webapp/prod/api-key\"; name the secret, not its ARN (each region \
                         reads the secret of that name in its own region)",
                    );
                    let issue = self.at(issue, &entry.value, "not a secret name");
                    self.issue(issue);
                    continue;
                }
            }
            out.insert(name, entry.value.value);
        }
        (self.issues.len() == before).then_some(out)
    }

    fn kms_list(&mut self, merged: &Merged, key: &str) -> Option<Vec<String>> {
        let Some(values) = merged.strings(key) else { return Some(vec![]) };
        let before = self.issues.len();
        for value in &values.value {
            let region = value.value.split(':').nth(3).unwrap_or("");
            if let Some(problem) = kms_arn_problem(&value.value, region) {
                self.bad(
                    "config::invalid_kms_key",
                    key,
                    Some(value),
                    format!("`{}` {problem}", value.value),
                    "a KMS key ARN: `arn:aws:kms:<region>:<12-digit account>:key/<key id>`",
                );
            }
        }
        (self.issues.len() == before).then(|| values.value.into_iter().map(|v| v.value).collect())
    }

    fn task_role_policy(&mut self, merged: &Merged) -> Option<Vec<PolicyStatementConfig>> {
        let Some(value) = merged.string("service.task_role_policy") else { return Some(vec![]) };
        match policy_statements(&value.value) {
            Ok(statements) => Some(statements),
            Err(problem) => {
                self.bad(
                    "config::invalid_policy",
                    "service.task_role_policy",
                    Some(&value),
                    format!("the task role's policy {problem}"),
                    "an IAM policy document: {\"Version\": \"2012-10-17\", \"Statement\": [{\"Effect\": \
                     \"Allow\", \"Action\": [\"s3:GetObject\"], \"Resource\": [\"arn:aws:s3:::bucket/*\"]}]}",
                );
                None
            }
        }
    }

    fn container_health_check(&mut self, merged: &Merged, port: Option<u16>) -> Option<Vec<String>> {
        let Some(value) = merged.strings("service.container_health_check") else {
            return Some(vec![
                "CMD-SHELL".into(),
                format!("curl -fsS http://localhost:{}/health || exit 1", port.unwrap_or(8080)),
            ]);
        };
        let command: Vec<String> = value.value.iter().map(|v| v.value.clone()).collect();
        if command.len() < 2 || !matches!(command[0].as_str(), "CMD" | "CMD-SHELL") {
            self.bad(
                "config::invalid_value",
                "service.container_health_check",
                Some(&value),
                "the container health check must start with `CMD` or `CMD-SHELL` and name a command".into(),
                "e.g. [\"CMD-SHELL\", \"curl -fsS http://localhost:8080/health || exit 1\"] or [\"CMD\", \"/app/healthcheck\"]",
            );
            return None;
        }
        Some(command)
    }

    fn log_retention(&mut self, merged: &Merged) -> Option<u32> {
        let days =
            self.in_range(merged, "service.log_retention_days", "days the application's log is kept")?;
        if LOG_RETENTION_DAYS.contains(&days) {
            return Some(days as u32);
        }
        let allowed: Vec<String> = LOG_RETENTION_DAYS.iter().map(i64::to_string).collect();
        self.bad(
            "config::invalid_value",
            "service.log_retention_days",
            merged.int("service.log_retention_days").as_ref(),
            format!("CloudWatch Logs cannot keep a log {days} days"),
            &format!("CloudWatch Logs' retention periods are {} days", list(&allowed)),
        );
        None
    }

    fn health_check(&mut self, merged: &Merged) -> Option<HealthCheckConfig> {
        let path = self
            .checked_str(
                merged,
                "service.health_check.path",
                "config::invalid_value",
                "health check path",
                |p| {
                    if !p.starts_with('/') {
                        Some("does not start with `/`".into())
                    } else if p.len() > 1024 {
                        Some("is longer than 1024 characters".into())
                    } else if p.chars().any(|c| c.is_whitespace() || c.is_control()) {
                        Some("contains whitespace".into())
                    } else {
                        None
                    }
                },
                "the path the load balancer requests on each task, starting with `/`, e.g. \"/health\"",
            )
            .ok()
            .map(|p| p.unwrap_or_else(|| schema::str_default("service.health_check.path").to_owned()));
        let int = |c: &mut Self, key: &str, help: &str| c.in_range(merged, key, help).map(|v| v as u32);
        let interval = int(self, "service.health_check.interval_secs", "seconds between health checks");
        let timeout = int(self, "service.health_check.timeout_secs", "seconds a health check may take");
        if let (Some(interval), Some(timeout)) = (interval, timeout) {
            if timeout >= interval {
                let value = merged
                    .int("service.health_check.timeout_secs")
                    .or_else(|| merged.int("service.health_check.interval_secs"));
                self.bad(
                    "config::invalid_value",
                    "service.health_check.timeout_secs",
                    value.as_ref(),
                    format!("the timeout ({timeout} s) must be shorter than the interval ({interval} s)"),
                    "Elastic Load Balancing requires timeout_secs < interval_secs",
                );
            }
        }
        let healthy =
            int(self, "service.health_check.healthy_threshold", "passed checks that make a task healthy");
        let unhealthy =
            int(self, "service.health_check.unhealthy_threshold", "failed checks that make a task unhealthy");
        let matcher = self
            .checked_str(
                merged,
                "service.health_check.matcher",
                "config::invalid_value",
                "HTTP code matcher",
                matcher_problem,
                "HTTP codes from 200 to 499: one (\"200\"), a list (\"200,204\") or a range (\"200-299\")",
            )
            .ok()
            .map(|m| m.unwrap_or_else(|| schema::str_default("service.health_check.matcher").to_owned()));
        Some(HealthCheckConfig {
            path: path?,
            interval_secs: interval?,
            timeout_secs: timeout.filter(|t| Some(*t) < interval)?,
            healthy_threshold: healthy?,
            unhealthy_threshold: unhealthy?,
            matcher: matcher?,
        })
    }

    /// A list of IPv4 or IPv6 CIDRs, or `default` when unset.
    fn cidrs(
        &mut self,
        merged: &Merged,
        key: &str,
        default: &[&str],
        non_empty: bool,
    ) -> Option<Vec<String>> {
        let Some(values) = merged.strings(key) else {
            return Some(default.iter().map(|c| (*c).to_owned()).collect());
        };
        let before = self.issues.len();
        if non_empty && values.value.is_empty() {
            self.bad(
                "config::invalid_value",
                key,
                Some(&values),
                "the list is empty: nobody could reach the load balancer".into(),
                "list who may reach it, e.g. [\"0.0.0.0/0\", \"::/0\"] for everyone",
            );
        }
        for value in &values.value {
            match value.value.parse::<IpNet>() {
                Ok(net) if net.trunc() == net => {}
                Ok(net) => self.bad(
                    "config::invalid_cidr",
                    key,
                    Some(value),
                    format!("`{}` is not a network address", value.value),
                    &format!("did you mean `{}`?", net.trunc()),
                ),
                Err(_) => self.bad(
                    "config::invalid_cidr",
                    key,
                    Some(value),
                    format!("`{}` is not an IPv4 or IPv6 CIDR", value.value),
                    "e.g. \"203.0.113.0/24\" or \"2001:db8::/32\"",
                ),
            }
        }
        (self.issues.len() == before).then(|| values.value.into_iter().map(|v| v.value).collect())
    }

    fn ssl_policy(&mut self, merged: &Merged) -> Option<String> {
        let Some(value) = merged.string("service.ssl_policy") else {
            return Some(schema::str_default("service.ssl_policy").to_owned());
        };
        if TLS13_POLICIES.contains(&value.value.as_str()) {
            return Some(value.value);
        }
        let near = closest(&value.value, TLS13_POLICIES.iter().copied());
        let help = format!(
            "{}the HTTPS listeners need TLS 1.3: {}",
            near.map(|n| format!("did you mean `{n}`? ")).unwrap_or_default(),
            list(TLS13_POLICIES)
        );
        self.bad(
            "config::invalid_value",
            "service.ssl_policy",
            Some(&value),
            format!("`{}` is not a TLS 1.3 security policy of Elastic Load Balancing", value.value),
            &help,
        );
        None
    }

    fn capacity(&mut self, merged: &Merged) -> Option<CapacityConfig> {
        let int = |c: &mut Self, key: &str, help: &str| c.in_range(merged, key, help).map(|v| v as u32);
        let base = int(self, "service.capacity.on_demand_base", "tasks always on on-demand Fargate");
        let on_demand = int(self, "service.capacity.on_demand_weight", "the on-demand share beyond the base");
        let spot = int(self, "service.capacity.spot_weight", "the Fargate Spot share beyond the base");
        if (on_demand, spot) == (Some(0), Some(0)) {
            let value = merged
                .int("service.capacity.on_demand_weight")
                .or_else(|| merged.int("service.capacity.spot_weight"));
            self.bad(
                "config::invalid_value",
                "service.capacity.on_demand_weight",
                value.as_ref(),
                "both capacity weights are 0: no task beyond the base could be placed".into(),
                "give on_demand_weight or spot_weight a weight of at least 1",
            );
            return None;
        }
        Some(CapacityConfig { on_demand_base: base?, on_demand_weight: on_demand?, spot_weight: spot? })
    }

    pub(super) fn tls(
        &mut self,
        merged: &Merged,
        regions: &Regions,
        service_enabled: bool,
    ) -> Option<TlsConfig> {
        let before = self.issues.len();
        let zone = self
            .checked_str(
                merged,
                "tls.hosted_zone",
                "config::invalid_value",
                "hosted zone",
                |z| dns_name_problem(z, false),
                "the name of a Route 53 public hosted zone, e.g. \"example.com\"",
            )
            .ok();
        let mut names: Vec<String> = Vec::new();
        if let Some(values) = merged.strings("tls.domain_names") {
            for value in &values.value {
                if let Some(problem) = dns_name_problem(&value.value, true) {
                    self.bad(
                        "config::invalid_domain",
                        "tls.domain_names",
                        Some(value),
                        format!("`{}` {problem}", value.value),
                        "a DNS name such as \"app.example.com\" (a leading \"*.\" for a wildcard)",
                    );
                    continue;
                }
                let name = value.value.trim_end_matches('.').to_ascii_lowercase();
                if names.contains(&name) {
                    self.bad(
                        "config::duplicate_name",
                        "tls.domain_names",
                        Some(value),
                        format!("`{}` is listed twice", value.value),
                        "list each name once",
                    );
                    continue;
                }
                if let Some(Some(zone)) = &zone {
                    let zone = zone.trim_end_matches('.').to_ascii_lowercase();
                    let bare = name.trim_start_matches("*.");
                    if bare != zone && !bare.ends_with(&format!(".{zone}")) {
                        self.bad(
                            "config::domain_outside_zone",
                            "tls.domain_names",
                            Some(value),
                            format!("`{}` is not in the hosted zone `{zone}`", value.value),
                            &format!(
                                "ACM validates each name with a record in tls.hosted_zone: use names \
                                 ending in `.{zone}`, or set hosted_zone to the zone that holds `{}`",
                                value.value
                            ),
                        );
                        continue;
                    }
                }
                names.push(name);
            }
            if !names.is_empty() && matches!(zone, Some(None)) {
                self.bad(
                    "config::missing_key",
                    "tls.hosted_zone",
                    Some(&values),
                    "tls.domain_names is set but tls.hosted_zone is not".into(),
                    "name the Route 53 hosted zone the validation records go into, e.g. hosted_zone = \"example.com\"",
                );
            }
        }
        let arns = self.certificate_arns(merged, regions);
        if service_enabled && names.is_empty() && self.issues.len() == before {
            let covered = arns.as_ref().is_some_and(|a| regions.known().all(|r| a.contains_key(r)));
            if !covered {
                self.missing(
                    "tls.domain_names",
                    "the service serves HTTPS: set [tls] domain_names = [\"app.example.com\"] and \
                     hosted_zone = \"example.com\" (ACM issues the certificate), or name a certificate \
                     for every region under [tls.certificate_arns]; or set [service] enabled = false"
                        .into(),
                );
            }
        }
        if self.issues.len() != before {
            return None;
        }
        Some(TlsConfig { domain_names: names, hosted_zone: zone.flatten(), certificate_arns: arns? })
    }

    fn certificate_arns(&mut self, merged: &Merged, regions: &Regions) -> Option<BTreeMap<String, String>> {
        let before = self.issues.len();
        let entries = merged.region_strings("tls.certificate_arns");
        let mut out = BTreeMap::new();
        for (region, entry) in &entries {
            if !regions.contains(region) {
                self.foreign_region("tls.certificate_arns", region, entry, regions);
                continue;
            }
            let parts: Vec<&str> = entry.value.value.splitn(6, ':').collect();
            let ok = parts.len() == 6
                && parts[0] == "arn"
                && parts[2] == "acm"
                && parts[3] == region
                && parts[4].len() == 12
                && parts[4].bytes().all(|b| b.is_ascii_digit())
                && parts[5].starts_with("certificate/")
                && parts[5].len() > "certificate/".len();
            if !ok {
                let issue = ConfigIssue::new(
                    "config::invalid_value",
                    format!("tls.certificate_arns.{region}"),
                    format!("`{}` is not an ACM certificate ARN of {region}", entry.value.value),
                )
                .help(format!("`arn:aws:acm:{region}:<12-digit account>:certificate/<id>`"));
                let issue = self.at(issue, &entry.value, "not a certificate of this region");
                self.issue(issue);
                continue;
            }
            out.insert(region.clone(), entry.value.value.clone());
        }
        if !out.is_empty() {
            for region in regions.known() {
                if !entries.contains_key(region) {
                    self.missing(
                        &format!("tls.certificate_arns.{region}"),
                        "a certificate ARN for one region needs one for every region (or none: the \
                         deployer requests them)"
                            .into(),
                    );
                }
            }
        }
        (self.issues.len() == before).then_some(out)
    }

    pub(super) fn release(&mut self, merged: &Merged) -> Option<ReleaseConfig> {
        let before = self.issues.len();
        let written = merged.string("release.deployment_config");
        let name = written
            .as_ref()
            .map_or(schema::str_default("release.deployment_config"), |v| v.value.as_str())
            .to_owned();
        let percent = merged.int("release.traffic_percent");
        let minutes = merged.int("release.interval_minutes");
        let custom = matches!(name.as_str(), "canary" | "linear");
        let mut choice = None;
        if custom {
            let get = |c: &mut Self, key: &str, value: &Option<Val<i64>>, range: (i64, i64)| match value {
                None => {
                    c.missing(
                        key,
                        format!(
                            "a {name} deployment configuration needs traffic_percent and interval_minutes"
                        ),
                    );
                    None
                }
                Some(v) if v.value < range.0 || v.value > range.1 => {
                    c.bad(
                        "config::out_of_range",
                        key,
                        Some(v),
                        format!(
                            "{} is out of range: it must be between {} and {}",
                            v.value, range.0, range.1
                        ),
                        "CodeDeploy's limits",
                    );
                    None
                }
                Some(v) => Some(v.value as u32),
            };
            let p = get(self, "release.traffic_percent", &percent, (1, 99));
            let m = get(self, "release.interval_minutes", &minutes, (1, 2880));
            if let (Some(percent), Some(minutes)) = (p, m) {
                choice = Some(if name == "canary" {
                    DeploymentConfigChoice::Canary { percent, minutes }
                } else {
                    DeploymentConfigChoice::Linear { percent, minutes }
                });
            }
        } else if PREDEFINED_ECS_CONFIGS.contains(&name.as_str()) {
            for (key, value) in
                [("release.traffic_percent", &percent), ("release.interval_minutes", &minutes)]
            {
                if let Some(value) = value {
                    self.bad(
                        "config::unused_key",
                        key,
                        Some(value),
                        format!("{key} is only for a `canary` or `linear` deployment_config, not `{name}`"),
                        "remove it, or set deployment_config = \"canary\" or \"linear\"",
                    );
                }
            }
            choice = Some(DeploymentConfigChoice::Predefined(name.clone()));
        } else {
            let mut names: Vec<&str> = PREDEFINED_ECS_CONFIGS.to_vec();
            names.extend(["canary", "linear"]);
            let near = closest(&name, names.iter().copied());
            self.bad(
                "config::unknown_deployment_config",
                "release.deployment_config",
                written.as_ref(),
                format!("`{name}` is not a CodeDeploy deployment configuration for ECS"),
                &format!(
                    "{}use one of {}; `canary` and `linear` take traffic_percent and interval_minutes",
                    near.map(|n| format!("did you mean `{n}`? ")).unwrap_or_default(),
                    list(&names)
                ),
            );
        }
        let wait = self.in_range(
            merged,
            "release.termination_wait_minutes",
            "minutes the old version keeps running after a successful release",
        );
        let bake =
            self.in_range(merged, "release.bake_secs", "seconds the alarms must stay OK between regions");
        let image_wait = self.in_range(
            merged,
            "release.image_wait_secs",
            "seconds to wait for the image in every region and for its scan",
        );
        let severity = merged.string("release.block_on_severity");
        let severity_name = severity
            .as_ref()
            .map_or(schema::str_default("release.block_on_severity"), |v| v.value.as_str())
            .to_owned();
        if !SEVERITIES.contains(&severity_name.as_str()) {
            self.bad(
                "config::bad_severity",
                "release.block_on_severity",
                severity.as_ref(),
                format!("`{severity_name}` is not an ECR finding severity"),
                &format!("use one of {}", list(SEVERITIES)),
            );
        }
        if self.issues.len() != before {
            return None;
        }
        Some(ReleaseConfig {
            deployment_config: choice?,
            termination_wait_minutes: wait? as u32,
            bake_secs: bake? as u64,
            rollback_all_on_failure: self.flag(merged, "release.rollback_all_on_failure"),
            block_on_severity: severity_name,
            image_wait_secs: image_wait? as u64,
        })
    }
}

/// ECR's finding severities that `release.block_on_severity` may name, worst first.
pub const SEVERITIES: &[&str] = &["CRITICAL", "HIGH", "MEDIUM", "LOW"];

/// What keeps `tag` from being a Docker tag.
pub fn docker_tag_problem(tag: &str) -> Option<String> {
    if tag.is_empty() || tag.len() > 128 {
        return Some(format!("is {} characters long; a tag is 1 to 128", tag.len()));
    }
    if tag.starts_with(['.', '-']) {
        return Some("starts with `.` or `-`".into());
    }
    tag.chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "_.-".contains(*c)))
        .map(|c| format!("contains `{c}`"))
}

fn user_problem(user: &str) -> Option<String> {
    let (name, group) = user.split_once(':').unwrap_or((user, ""));
    let valid = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if !valid(name) || (user.contains(':') && !valid(group)) {
        return Some("is not a user name or ID (optionally `:group`)".into());
    }
    (name == "root" || name == "0").then(|| "is root: the container must run as another user".into())
}

fn env_name_problem(name: &str) -> Option<String> {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return Some("does not start with a letter or `_`".into()),
    }
    chars.find(|c| !(c.is_ascii_alphanumeric() || *c == '_')).map(|c| format!("contains `{c}`"))
}

/// What keeps `name` from being a Secrets Manager secret name (1 to 512 of `A-Za-z0-9/_+=.@-`).
pub(crate) fn secret_name_problem(name: &str) -> Option<String> {
    if name.starts_with("arn:") {
        return Some("is an ARN; name the secret".into());
    }
    if name.is_empty() || name.len() > 512 {
        return Some(format!("is {} characters long; a secret name is 1 to 512", name.len()));
    }
    name.chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "/_+=.@-".contains(*c)))
        .map(|c| format!("contains `{c}`, which Secrets Manager does not allow in a name"))
}

fn matcher_problem(m: &str) -> Option<String> {
    let code = |s: &str| s.parse::<u16>().ok().filter(|c| (200..=499).contains(c));
    let ok = if let Some((a, b)) = m.split_once('-') {
        matches!((code(a), code(b)), (Some(a), Some(b)) if a <= b)
    } else {
        !m.is_empty() && m.split(',').all(|c| code(c).is_some())
    };
    (!ok).then(|| "is not a list or range of HTTP codes from 200 to 499".into())
}

/// What keeps `name` from being a DNS name (`wildcard`: a leading `*.` is allowed).
fn dns_name_problem(name: &str, wildcard: bool) -> Option<String> {
    let bare = name.trim_end_matches('.');
    let bare = if wildcard { bare.strip_prefix("*.").unwrap_or(bare) } else { bare };
    if bare.is_empty() || name.len() > 253 {
        return Some("is not a DNS name of 1 to 253 characters".into());
    }
    if !bare.contains('.') {
        return Some("has a single label; a DNS name here has at least two (`example.com`)".into());
    }
    for label in bare.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Some("has an empty label or one longer than 63 characters".into());
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Some(format!("has the label `{label}`, which starts or ends with `-`"));
        }
        if let Some(c) = label.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '-')) {
            return Some(format!("contains `{c}`"));
        }
    }
    None
}

/// The statements of an IAM policy document, if it is well formed and uses only what the
/// deployer manages (`Sid`, `Effect`, `Action`, `Resource`).
pub(crate) fn policy_statements(json: &str) -> Result<Vec<PolicyStatementConfig>, String> {
    let doc: serde_json::Value = serde_json::from_str(json).map_err(|e| format!("is not JSON: {e}"))?;
    let object = doc.as_object().ok_or("is not a JSON object")?;
    if let Some(extra) = object.keys().find(|k| !matches!(k.as_str(), "Version" | "Statement" | "Id")) {
        return Err(format!("has the key `{extra}`; a policy document has Version, Id and Statement"));
    }
    if let Some(version) = object.get("Version") {
        if version != "2012-10-17" {
            return Err(format!("has Version {version}; use \"2012-10-17\""));
        }
    }
    let statements = match object.get("Statement") {
        Some(serde_json::Value::Array(items)) => items.clone(),
        Some(one @ serde_json::Value::Object(_)) => vec![one.clone()],
        _ => return Err("has no Statement (an array of statements)".into()),
    };
    if statements.is_empty() {
        return Err("has no statement".into());
    }
    let strings = |s: &serde_json::Map<String, serde_json::Value>,
                   key: &str,
                   n: usize|
     -> Result<Vec<String>, String> {
        let list = match s.get(key) {
            Some(serde_json::Value::String(one)) => vec![one.clone()],
            Some(serde_json::Value::Array(items)) => items
                .iter()
                .map(|i| {
                    i.as_str().map(str::to_owned).ok_or(format!("statement {n}: {key} holds a non-string"))
                })
                .collect::<Result<_, _>>()?,
            _ => return Err(format!("statement {n} has no {key}")),
        };
        if list.is_empty() {
            return Err(format!("statement {n}: {key} is empty"));
        }
        Ok(list)
    };
    let mut out = Vec::new();
    for (i, statement) in statements.iter().enumerate() {
        let n = i + 1;
        let s = statement.as_object().ok_or(format!("statement {n} is not an object"))?;
        if let Some(extra) =
            s.keys().find(|k| !matches!(k.as_str(), "Sid" | "Effect" | "Action" | "Resource"))
        {
            return Err(format!(
                "statement {n} has `{extra}`; the deployer manages Sid, Effect, Action and Resource only"
            ));
        }
        let effect = s.get("Effect").and_then(|e| e.as_str()).unwrap_or("");
        if !matches!(effect, "Allow" | "Deny") {
            return Err(format!("statement {n}: Effect must be \"Allow\" or \"Deny\""));
        }
        let sid = match s.get("Sid") {
            None => None,
            Some(serde_json::Value::String(sid))
                if !sid.is_empty() && sid.chars().all(|c| c.is_ascii_alphanumeric()) =>
            {
                Some(sid.clone())
            }
            Some(_) => return Err(format!("statement {n}: Sid must be letters and digits")),
        };
        let actions = strings(s, "Action", n)?;
        for action in &actions {
            let ok = action == "*"
                || action.split_once(':').is_some_and(|(service, name)| {
                    !service.is_empty()
                        && service.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                        && !name.is_empty()
                        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '*' || c == '?')
                });
            if !ok {
                return Err(format!("statement {n}: `{action}` is not an action (`service:Action`)"));
            }
        }
        let resources = strings(s, "Resource", n)?;
        if let Some(bad) = resources.iter().find(|r| *r != "*" && !r.starts_with("arn:")) {
            return Err(format!("statement {n}: `{bad}` is not an ARN or `*`"));
        }
        out.push(PolicyStatementConfig { sid, effect: effect.to_owned(), actions, resources });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_codes() {
        assert_eq!(docker_tag_problem("v1.2.3"), None);
        assert!(docker_tag_problem("-x").is_some() && docker_tag_problem("a b").is_some());
        assert_eq!(user_problem("1000:1000"), None);
        assert!(user_problem("root").is_some() && user_problem("0:0").is_some());
        assert_eq!(secret_name_problem("webapp/prod/api-key"), None);
        assert!(secret_name_problem("bad name!").is_some());
        assert!(secret_name_problem("arn:aws:secretsmanager:us-east-1:1:secret:x").is_some());
        assert_eq!(matcher_problem("200-299"), None);
        assert_eq!(matcher_problem("200,204"), None);
        assert!(matcher_problem("500").is_some() && matcher_problem("299-200").is_some());
        assert_eq!(dns_name_problem("*.app.example.com", true), None);
        assert!(dns_name_problem("*.app.example.com", false).is_some());
        assert!(dns_name_problem("localhost", false).is_some());
    }

    #[test]
    fn policy_documents_are_checked_statement_by_statement() {
        let ok = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:Get*","Resource":["arn:aws:s3:::b/*"]}}"#;
        let got = policy_statements(ok).unwrap();
        assert_eq!(got[0].actions, vec!["s3:Get*"]);
        for (bad, why) in [
            ("[]", "not a JSON object"),
            (r#"{"Statement":[]}"#, "no statement"),
            (r#"{"Statement":[{"Effect":"Allow","Action":"s3","Resource":"*"}]}"#, "not an action"),
            (r#"{"Statement":[{"Effect":"Maybe","Action":"s3:X","Resource":"*"}]}"#, "Effect"),
            (r#"{"Statement":[{"Effect":"Allow","Action":"s3:X","Resource":"bucket"}]}"#, "not an ARN"),
            (
                r#"{"Statement":[{"Effect":"Allow","Action":"s3:X","Resource":"*","Condition":{}}]}"#,
                "Condition",
            ),
        ] {
            let err = policy_statements(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }
}
