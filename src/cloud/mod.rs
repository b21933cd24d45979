//! AWS clients per region: one shared credential chain, endpoint override, retry policy, timeouts,
//! and call accounting (how many read and mutating requests a run sent).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use serde::Serialize;

use crate::config::AwsConfig;

mod wait;
pub use wait::{retry_on_codes, wait_until, Waited};

/// The EC2 client of each region of the environment, SSM in the primary region, and the
/// counter every one of them reports to.
#[derive(Clone, Debug)]
pub struct Clients {
    ec2: BTreeMap<String, aws_sdk_ec2::Client>,
    /// SSM in the primary region: where the environment lock lives.
    pub ssm: aws_sdk_ssm::Client,
    pub calls: CallCounter,
}

impl Clients {
    /// Builds clients for `regions`. Resolves the credential chain once; no request is sent.
    pub async fn new(aws: &AwsConfig, endpoint_url: Option<String>, regions: &[String]) -> Clients {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(RetryConfig::standard().with_max_attempts(5))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .operation_attempt_timeout(Duration::from_secs(30))
                    .build(),
            );
        if let Some(profile) = &aws.profile {
            loader = loader.profile_name(profile);
        }
        if let Some(url) = endpoint_url {
            loader = loader.endpoint_url(url);
        }
        if aws.emulator_credentials {
            loader = loader.credentials_provider(aws_sdk_ec2::config::Credentials::new(
                "test",
                "test",
                None,
                None,
                "deployer-emulator",
            ));
        }
        // The loader needs some region to build; each client below sets its own.
        let shared = loader.region(Region::new(regions[0].clone())).load().await;
        let calls = CallCounter::default();
        let ec2 = regions
            .iter()
            .map(|region| {
                let conf = aws_sdk_ec2::config::Builder::from(&shared)
                    .region(Region::new(region.clone()))
                    .interceptor(calls.clone())
                    .build();
                (region.clone(), aws_sdk_ec2::Client::from_conf(conf))
            })
            .collect();
        let ssm_conf = aws_sdk_ssm::config::Builder::from(&shared)
            .region(Region::new(regions[0].clone()))
            .interceptor(calls.clone())
            .build();
        Clients { ec2, ssm: aws_sdk_ssm::Client::from_conf(ssm_conf), calls }
    }

    /// Clients built elsewhere (tests with `aws-smithy-mocks`).
    /// SSM gets a client that is never used by the resource operations.
    pub fn from_ec2(ec2: BTreeMap<String, aws_sdk_ec2::Client>) -> Clients {
        let ssm = aws_sdk_ssm::Client::from_conf(
            aws_sdk_ssm::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new("us-east-1"))
                .build(),
        );
        Clients { ec2, ssm, calls: CallCounter::default() }
    }

    pub fn ec2(&self, region: &str) -> &aws_sdk_ec2::Client {
        self.ec2
            .get(region)
            .unwrap_or_else(|| panic!("no EC2 client for region {region}: not in the environment"))
    }
}

/// Counts requests by operation name. An operation is a read when its name starts with
/// `Describe`, `List` or `Get`; everything else changes something.
#[derive(Clone, Debug, Default)]
pub struct CallCounter {
    inner: Arc<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    reads: AtomicU64,
    mutating: AtomicU64,
    mutating_ops: Mutex<BTreeMap<String, u64>>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CallSummary {
    pub reads: u64,
    pub mutating: u64,
    /// Mutating operations by name, e.g. `{"CreateVpc": 2}`.
    pub mutating_operations: BTreeMap<String, u64>,
}

pub fn is_read_operation(name: &str) -> bool {
    ["Describe", "List", "Get"].iter().any(|p| name.starts_with(p))
}

impl CallCounter {
    pub fn record(&self, operation: &str) {
        if is_read_operation(operation) {
            self.inner.reads.fetch_add(1, Ordering::Relaxed);
        } else {
            self.inner.mutating.fetch_add(1, Ordering::Relaxed);
            *self
                .inner
                .mutating_ops
                .lock()
                .expect("call counter lock")
                .entry(operation.to_string())
                .or_default() += 1;
        }
    }

    pub fn summary(&self) -> CallSummary {
        CallSummary {
            reads: self.inner.reads.load(Ordering::Relaxed),
            mutating: self.inner.mutating.load(Ordering::Relaxed),
            mutating_operations: self.inner.mutating_ops.lock().expect("call counter lock").clone(),
        }
    }
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "deployer::CallCounter"
    }

    // Runs once per operation, before the retry loop, so a retried request counts once. (The
    // operation's metadata is not yet in the bag when client interceptors' `read_before_execution`
    // runs.)
    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(meta) = cfg.load::<Metadata>() {
            tracing::debug!(operation = meta.name(), service = meta.service(), "aws call");
            self.record(meta.name());
        }
        Ok(())
    }
}

/// An AWS call that failed, or a wait that gave up. Callers branch on `code`
/// (`DependencyViolation`, `InvalidVpcID.NotFound`…); the message is the service's own.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{operation}: {message}")]
    Aws { operation: &'static str, code: Option<String>, message: String },
    #[error("timed out after {}s waiting for {what} (last seen: {last})", .after.as_secs())]
    Timeout { what: String, after: Duration, last: String },
    #[error("{0}")]
    Failed(String),
}

impl Error {
    pub fn aws<E, R>(operation: &'static str, err: aws_sdk_ec2::error::SdkError<E, R>) -> Error
    where
        E: aws_sdk_ec2::error::ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug + 'static,
    {
        use aws_sdk_ec2::error::ProvideErrorMetadata;
        let code = err.code().map(str::to_string);
        let message = match err.message() {
            Some(m) => format!("{} ({m})", code.as_deref().unwrap_or("error")),
            None => error_chain(&err),
        };
        Error::Aws { operation, code, message }
    }

    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Aws { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    /// True when the error says the resource is already gone: deleting it again is a success.
    pub fn is_not_found(&self) -> bool {
        is_not_found(self.code())
    }
}

/// `outer: inner: innermost`, each cause once (the SDK's own context printer adds Debug dumps).
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = vec![err.to_string()];
    let mut source = err.source();
    while let Some(e) = source {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = e.source();
    }
    parts.join(": ")
}

pub fn is_not_found(code: Option<&str>) -> bool {
    code.is_some_and(|c| c.ends_with("NotFound"))
}

/// `Result` of an AWS call, mapping the SDK error into [`Error`] with the operation's name.
pub trait AwsResultExt<T> {
    fn op(self, operation: &'static str) -> Result<T, Error>;
}

impl<T, E, R> AwsResultExt<T> for Result<T, aws_sdk_ec2::error::SdkError<E, R>>
where
    E: aws_sdk_ec2::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    fn op(self, operation: &'static str) -> Result<T, Error> {
        self.map_err(|e| Error::aws(operation, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_operations() {
        let c = CallCounter::default();
        for op in ["DescribeVpcs", "CreateVpc", "DescribeSubnets", "DeleteRoute", "CreateVpc"] {
            c.record(op);
        }
        let s = c.summary();
        assert_eq!(s.reads, 2);
        assert_eq!(s.mutating, 3);
        assert_eq!(s.mutating_operations.get("CreateVpc"), Some(&2));
    }

    #[test]
    fn not_found_codes() {
        assert!(is_not_found(Some("InvalidVpcID.NotFound")));
        assert!(is_not_found(Some("NatGatewayNotFound")));
        assert!(!is_not_found(Some("DependencyViolation")));
        assert!(!is_not_found(None));
    }
}
