//! AWS clients per (service, region): one shared credential chain and `SdkConfig`, endpoint
//! override, one retry policy tuned for throttling, timeouts, and call accounting (how many read
//! and mutating requests a run sent, whatever the service).

use std::any::{Any, TypeId};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_smithy_runtime::client::retries::{RetryPartition, TokenBucket};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use serde::Serialize;

mod wait;
pub use wait::{init_time_scale, retry_on_codes, retry_transient, wait_until, Pace, Waited};

/// How to reach AWS: the `[aws]` section of the configuration (the config layer reads it, this
/// layer only takes it).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AwsConfig {
    /// Endpoint override (an emulator). `AWS_ENDPOINT_URL` in the environment wins over this.
    pub endpoint_url: Option<String>,
    /// Named profile from the shared AWS config; `None` uses the default credential chain.
    pub profile: Option<String>,
    /// Use fixed dummy credentials (for an emulator) instead of the credential chain.
    pub emulator_credentials: bool,
    /// A role every client of the environment assumes (cross-account environments).
    pub role_arn: Option<String>,
    /// The external ID the role's trust policy asks for.
    pub external_id: Option<String>,
}

/// A service client the deployer can build for a region from the shared configuration. Every
/// client gets the same retry partition and the call counter.
pub trait Service: Clone + Send + Sync + 'static {
    fn build(shared: &SdkConfig, region: &str, calls: &CallCounter, retries: &RetryPartition) -> Self;
}

/// Implements [`Service`] for an SDK crate's client; one line per service the kinds use.
macro_rules! service {
    ($($krate:ident),* $(,)?) => {$(
        impl Service for $krate::Client {
            fn build(shared: &SdkConfig, region: &str, calls: &CallCounter, retries: &RetryPartition) -> Self {
                let conf = $krate::config::Builder::from(shared)
                    .region(Region::new(region.to_string()))
                    .retry_partition(retries.clone())
                    .interceptor(calls.clone())
                    .build();
                $krate::Client::from_conf(conf)
            }
        }
    )*};
}

service!(
    aws_sdk_acm,
    aws_sdk_applicationautoscaling,
    aws_sdk_cloudwatch,
    aws_sdk_cloudwatchlogs,
    aws_sdk_codedeploy,
    aws_sdk_ec2,
    aws_sdk_ecr,
    aws_sdk_ecs,
    aws_sdk_elasticloadbalancingv2,
    aws_sdk_eventbridge,
    aws_sdk_iam,
    aws_sdk_rds,
    aws_sdk_resourcegroupstagging,
    aws_sdk_route53,
    aws_sdk_scheduler,
    aws_sdk_secretsmanager,
    aws_sdk_sns,
    aws_sdk_ssm,
    aws_sdk_sts,
);

/// The region global services (IAM, Route 53) are called in.
pub const GLOBAL_REGION: &str = "us-east-1";

/// Built clients by (service type, region).
type ClientCache = HashMap<(TypeId, String), Box<dyn Any + Send + Sync>>;

/// Clients per (service, region), built lazily from one `SdkConfig`, and the counter every one
/// of them reports to. Cloning is cheap and shares the clients.
#[derive(Clone)]
pub struct Clients {
    shared: SdkConfig,
    /// The environment's regions, primary first.
    regions: Vec<String>,
    retries: RetryPartition,
    cache: Arc<Mutex<ClientCache>>,
    /// The account, read once (`account`).
    account: Arc<tokio::sync::OnceCell<crate::spec::Account>>,
    pub calls: CallCounter,
}

impl std::fmt::Debug for Clients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clients").field("regions", &self.regions).finish_non_exhaustive()
    }
}

/// Attempts per request, the first included. Tuned for throttling: with a fifth of all requests
/// throttled and one in twenty failing with a 5xx, a request fails all eight attempts about once
/// in 65,000 tries (0.25^8).
pub const MAX_ATTEMPTS: u32 = 8;

/// `deployer-<user>`: the assumed role's session name, so CloudTrail names who ran it (at most
/// 64 characters of `[\w+=,.@-]`).
fn session_name() -> String {
    let user =
        std::env::var("USER").or_else(|_| std::env::var("USERNAME")).unwrap_or_else(|_| "unknown".into());
    let clean: String = user
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || "+=,.@-_".contains(c) { c } else { '-' })
        .collect();
    format!("deployer-{clean}").chars().take(64).collect()
}

impl Clients {
    /// Resolves the credential chain once; builds no client and sends no request. With
    /// `aws.role_arn`, the role is assumed through STS in `regions[0]`, or in `sts_region` when
    /// given (`failover` assumes it in the region it promotes: the primary may be down).
    pub async fn new(
        aws: &AwsConfig,
        endpoint_url: Option<String>,
        regions: &[String],
        sts_region: Option<&str>,
    ) -> Clients {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(MAX_ATTEMPTS)
                    .with_initial_backoff(Duration::from_millis(200))
                    .with_max_backoff(Duration::from_secs(10)),
            )
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
        // The loader needs some region to build; each client sets its own.
        let mut shared = loader.region(Region::new(regions[0].clone())).load().await;
        if let Some(role) = &aws.role_arn {
            // Every client assumes the role, with the starting credentials (and endpoint) of
            // `shared`; the provider refreshes the session before it expires.
            let mut provider = aws_config::sts::AssumeRoleProvider::builder(role)
                .session_name(session_name())
                .region(Region::new(sts_region.unwrap_or(&regions[0]).to_string()))
                .configure(&shared);
            if let Some(id) = &aws.external_id {
                provider = provider.external_id(id);
            }
            let provider = provider.build().await;
            shared = shared
                .into_builder()
                .credentials_provider(aws_types::sdk_config::SharedCredentialsProvider::new(provider))
                .build();
        }
        Clients::from_shared(shared, regions)
    }

    /// Clients over an `SdkConfig` built elsewhere (tests with `aws-smithy-mocks` put their
    /// mock HTTP client in it).
    pub fn from_shared(shared: SdkConfig, regions: &[String]) -> Clients {
        // The SDK's default retry quota (500 tokens, 5 per retry) runs dry in a throttle storm
        // and then fails requests that would have succeeded on the next attempt; the attempt
        // limit and backoff above already bound the retrying.
        let retries = RetryPartition::custom("deployer").token_bucket(TokenBucket::unlimited()).build();
        Clients {
            shared,
            regions: regions.to_vec(),
            retries,
            cache: Arc::default(),
            account: Arc::default(),
            calls: CallCounter::default(),
        }
    }

    /// The client of service `C` in `region`, built on first use.
    pub fn get<C: Service>(&self, region: &str) -> C {
        let mut cache = self.cache.lock().expect("client cache lock");
        let entry = cache
            .entry((TypeId::of::<C>(), region.to_string()))
            .or_insert_with(|| Box::new(C::build(&self.shared, region, &self.calls, &self.retries)));
        entry.downcast_ref::<C>().expect("client cache holds the type it is keyed by").clone()
    }

    /// Puts a client built elsewhere in place (tests with `aws-smithy-mocks`).
    pub fn insert<C: Service>(&self, region: &str, client: C) {
        self.cache
            .lock()
            .expect("client cache lock")
            .insert((TypeId::of::<C>(), region.to_string()), Box::new(client));
    }

    /// The client of a global service (IAM, Route 53).
    pub fn global<C: Service>(&self) -> C {
        self.get(GLOBAL_REGION)
    }

    pub fn ec2(&self, region: &str) -> aws_sdk_ec2::Client {
        self.get(region)
    }

    /// SSM in the primary region: where the environment lock lives.
    pub fn ssm(&self) -> aws_sdk_ssm::Client {
        self.get(self.primary())
    }

    pub fn primary(&self) -> &str {
        &self.regions[0]
    }

    /// The environment's regions, primary first.
    pub fn regions(&self) -> &[String] {
        &self.regions
    }

    /// The account (and partition) the credentials act in: one STS `GetCallerIdentity`, the
    /// first time it is asked for.
    pub async fn account(&self) -> Result<crate::spec::Account, Error> {
        self.account.get_or_try_init(|| self.read_account(self.primary())).await.cloned()
    }

    /// [`Clients::account`], read from STS in `region` (its regional endpoint): what a run that
    /// must not depend on the primary region (`failover`) asks.
    pub async fn account_via(&self, region: &str) -> Result<crate::spec::Account, Error> {
        self.account.get_or_try_init(|| self.read_account(region)).await.cloned()
    }

    /// Whether `region`'s endpoints answer: one STS `GetCallerIdentity` signed for that region
    /// (its regional endpoint; for us-east-1 the region IAM and Route 53 are called in), one
    /// attempt, bounded by `bound` in all. `Err` says why not, for people.
    pub async fn probe(&self, region: &str, bound: Duration) -> Result<(), String> {
        let conf = aws_sdk_sts::config::Builder::from(&self.shared)
            .region(Region::new(region.to_string()))
            .retry_config(RetryConfig::disabled())
            .timeout_config(TimeoutConfig::builder().connect_timeout(bound).operation_timeout(bound).build())
            .interceptor(self.calls.clone())
            .build();
        let sts = aws_sdk_sts::Client::from_conf(conf);
        match tokio::time::timeout(bound, sts.get_caller_identity().send()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(Error::aws("GetCallerIdentity", &e, false).to_string()),
            Err(_) => Err(format!("no answer within {}s", bound.as_secs_f64())),
        }
    }

    /// Before a run reads anything: one STS `GetCallerIdentity` in the primary region, one
    /// attempt, within a few seconds, so a run that cannot succeed (no credentials, bad ones, an
    /// endpoint that refuses or does not answer) fails at once instead of after every read's
    /// retries. Its answer is the account ([`Clients::account`] does not ask again). A throttled
    /// or failed-on-AWS's-side answer is not a verdict: the run goes on and retries as usual.
    pub async fn preflight(&self) -> Result<(), Error> {
        const BOUND: Duration = Duration::from_secs(5);
        let conf = aws_sdk_sts::config::Builder::from(&self.shared)
            .region(Region::new(self.primary().to_string()))
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(2))
                    .operation_timeout(BOUND)
                    .build(),
            )
            .interceptor(self.calls.clone())
            .build();
        let sts = aws_sdk_sts::Client::from_conf(conf);
        match tokio::time::timeout(BOUND, sts.get_caller_identity().send()).await {
            Ok(Ok(out)) => {
                if let Some(id) = out.account() {
                    let partition = out.arn().and_then(crate::spec::Account::partition_of).unwrap_or("aws");
                    let _ = self
                        .account
                        .set(crate::spec::Account { id: id.to_string(), partition: partition.to_string() });
                }
                Ok(())
            }
            Ok(Err(e)) => {
                let err = Error::aws("GetCallerIdentity", &e, false);
                // AWS answered, and only for now (throttled, an error on its side): go on.
                let answered_for_now = e.as_service_error().is_some() && err.is_transient();
                if answered_for_now {
                    Ok(())
                } else {
                    Err(err)
                }
            }
            Err(_) => Err(Error::Timeout {
                what: "an answer from AWS (STS GetCallerIdentity)".into(),
                after: BOUND,
                last: "no answer".into(),
            }),
        }
    }

    async fn read_account(&self, region: &str) -> Result<crate::spec::Account, Error> {
        let out = self
            .get::<aws_sdk_sts::Client>(region)
            .get_caller_identity()
            .send()
            .await
            .op("GetCallerIdentity")?;
        let id = out
            .account()
            .ok_or_else(|| Error::InvalidState("GetCallerIdentity returned no account".into()))?;
        let partition = out.arn().and_then(crate::spec::Account::partition_of).unwrap_or("aws");
        Ok(crate::spec::Account { id: id.to_string(), partition: partition.to_string() })
    }
}

/// Counts requests by operation name. An operation is a read when its name starts with
/// `Describe`, `List`, `Get` or `BatchGet`; everything else changes something.
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
    ["Describe", "List", "Get", "BatchGet"].iter().any(|p| name.starts_with(p))
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

/// Why a step failed, in variants a caller can match. An AWS call's error is classified once,
/// where it is mapped ([`Error::aws`]): throttled, transient, not found, already exists, or
/// refused with AWS's code; the message is the service's own, after the operation's name.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// AWS throttled the call, after the SDK's own retries with backoff.
    #[error("{operation}: {message}")]
    Throttled { operation: &'static str, code: String, message: String },
    /// An error on AWS's side, or no answer at all, after the SDK's retries: it passes by itself.
    #[error("{operation}: {message}")]
    Transient { operation: &'static str, code: Option<String>, message: String },
    /// The service said the resource does not exist, as decided by the kind's typed check
    /// ([`AwsResultExt::op_or_gone`]): deleting it again is a success.
    #[error("{operation}: {message}")]
    NotFound { operation: &'static str, code: Option<String>, message: String },
    /// The service said it exists already (`EntityAlreadyExists`, `DuplicateLoadBalancerName`…).
    #[error("{operation}: {message}")]
    AlreadyExists { operation: &'static str, code: String, message: String },
    /// AWS refused the call, with its code (`DependencyViolation`, `AccessDenied`,
    /// `InvalidParameterValue`…); `None` when it failed before AWS answered with one.
    #[error("{operation}: {message}")]
    Refused { operation: &'static str, code: Option<String>, message: String },
    /// A wait that gave up.
    #[error("timed out after {}s waiting for {what} (last seen: {last})", .after.as_secs())]
    Timeout { what: String, after: Duration, last: String },
    /// What AWS holds or answered is not a state the step can go on from (a name taken by a
    /// resource that is not this environment's, a load balancer that failed to provision, an
    /// answer without the field the step needs, a replacement the configuration does not allow).
    #[error("{0}")]
    InvalidState(String),
    /// A release's deployment failed, or was rolled back, in CodeDeploy.
    #[error("{0}")]
    DeploymentFailed(String),
    /// A request the SDK would not build (a required field missing): a defect of the deployer.
    #[error("{0}")]
    InvalidRequest(String),
}

impl Error {
    pub fn aws<E, R>(operation: &'static str, err: &SdkError<E, R>, not_found: bool) -> Error
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug + 'static,
    {
        let code = err.code().map(str::to_string);
        let message = match err.message() {
            Some(m) => format!("{} ({m})", code.as_deref().unwrap_or("error")),
            None => error_chain(err),
        };
        match code {
            _ if not_found => Error::NotFound { operation, code, message },
            Some(code) if is_throttling_code(&code) => Error::Throttled { operation, code, message },
            Some(code) if is_already_exists_code(&code) => Error::AlreadyExists { operation, code, message },
            code if is_transient(code.as_deref(), &message) => Error::Transient { operation, code, message },
            code => Error::Refused { operation, code, message },
        }
    }

    /// AWS's error code, for an AWS call's error.
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Throttled { code, .. } | Error::AlreadyExists { code, .. } => Some(code),
            Error::Transient { code, .. } | Error::NotFound { code, .. } | Error::Refused { code, .. } => {
                code.as_deref()
            }
            _ => None,
        }
    }

    /// True when the call failed for a reason that passes by itself: throttling or a server-side
    /// error (after the SDK's own retries). Whoever called it may run the whole step again.
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Throttled { .. } | Error::Transient { .. })
    }

    /// True when the service said the resource does not exist (deleting it again is a success).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
    }
}

/// A server-side error code, or no answer at all (a timeout, a dropped connection).
fn is_transient(code: Option<&str>, message: &str) -> bool {
    match code {
        Some(code) => matches!(
            code,
            "InternalError"
                | "InternalFailure"
                | "InternalServerError"
                | "ServiceUnavailable"
                | "ServiceUnavailableException"
                | "Unavailable"
                | "RequestTimeout"
                | "RequestTimeoutException"
        ),
        None => {
            message.contains("dispatch failure")
                || message.contains("timeout")
                || message.contains("timed out")
        }
    }
}

/// The codes AWS services answer a create with when the resource exists already.
fn is_already_exists_code(code: &str) -> bool {
    code.ends_with("AlreadyExists")
        || code.ends_with("AlreadyExistsException")
        || code.ends_with("AlreadyExistsFault")
        || code.starts_with("Duplicate")
        || code.ends_with(".Duplicate")
        || code == "ResourceExistsException"
}

/// The throttling codes the AWS services answer with (the SDK retries them with backoff).
pub fn is_throttling_code(code: &str) -> bool {
    matches!(
        code,
        "Throttling"
            | "ThrottlingException"
            | "ThrottledException"
            | "RequestThrottledException"
            | "TooManyRequestsException"
            | "ProvisionedThroughputExceededException"
            | "TransactionInProgressException"
            | "RequestLimitExceeded"
            | "BandwidthLimitExceeded"
            | "RequestThrottled"
            | "SlowDown"
            | "PriorRequestNotComplete"
            | "EC2ThrottledException"
    )
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

/// `Result` of an AWS call, mapping the SDK error into [`Error`] with the operation's name.
pub trait AwsResultExt<T, E> {
    fn op(self, operation: &'static str) -> Result<T, Error>;

    /// Like [`AwsResultExt::op`], marking the error as "not found" when `gone` says the
    /// service's typed error means the resource does not exist. Each kind passes its service's
    /// own check (`DeleteRepositoryError::is_repository_not_found_exception`, or for EC2, whose
    /// errors are not modelled, the exact documented code such as `InvalidVpcID.NotFound`).
    fn op_or_gone(self, operation: &'static str, gone: impl Fn(&E) -> bool) -> Result<T, Error>;

    /// `Ok(None)` when the call was refused with the error `expected` recognises (a create
    /// answered "already exists" after its first response was lost), the output otherwise.
    fn op_unless(self, operation: &'static str, expected: impl Fn(&E) -> bool) -> Result<Option<T>, Error>;
}

impl<T, E, R> AwsResultExt<T, E> for Result<T, SdkError<E, R>>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    fn op(self, operation: &'static str) -> Result<T, Error> {
        self.map_err(|e| Error::aws(operation, &e, false))
    }

    fn op_or_gone(self, operation: &'static str, gone: impl Fn(&E) -> bool) -> Result<T, Error> {
        self.map_err(|e| {
            let not_found = e.as_service_error().is_some_and(&gone);
            Error::aws(operation, &e, not_found)
        })
    }

    fn op_unless(self, operation: &'static str, expected: impl Fn(&E) -> bool) -> Result<Option<T>, Error> {
        match self {
            Ok(out) => Ok(Some(out)),
            Err(e) if e.as_service_error().is_some_and(&expected) => Ok(None),
            Err(e) => Err(Error::aws(operation, &e, false)),
        }
    }
}

/// For EC2, whose errors are not modelled as types: true when the error's code is `code`.
pub fn ec2_code<E: ProvideErrorMetadata>(code: &'static str) -> impl Fn(&E) -> bool {
    move |e: &E| e.code() == Some(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An AWS error is classified once, by its code: callers match the variant.
    #[test]
    fn classifies_errors_by_code() {
        use aws_smithy_runtime_api::http::{Response, StatusCode};
        use aws_smithy_types::body::SdkBody;
        use aws_smithy_types::error::ErrorMetadata;
        let err = |code: Option<&str>| {
            let mut meta = ErrorMetadata::builder().message("said AWS");
            if let Some(code) = code {
                meta = meta.code(code);
            }
            let raw = Response::new(StatusCode::try_from(400).unwrap(), SdkBody::empty());
            SdkError::service_error(meta.build(), raw)
        };
        let of = |code: Option<&str>, gone: bool| Error::aws("CreateThing", &err(code), gone);
        assert!(matches!(of(Some("ThrottlingException"), false), Error::Throttled { .. }));
        assert!(matches!(of(Some("ServiceUnavailable"), false), Error::Transient { .. }));
        assert!(matches!(of(Some("EntityAlreadyExists"), false), Error::AlreadyExists { .. }));
        assert!(matches!(of(Some("DuplicateLoadBalancerName"), false), Error::AlreadyExists { .. }));
        assert!(matches!(of(Some("InvalidGroup.Duplicate"), false), Error::AlreadyExists { .. }));
        assert!(matches!(of(Some("InvalidVpcID.NotFound"), true), Error::NotFound { .. }));
        let refused = of(Some("DependencyViolation"), false);
        assert!(matches!(&refused, Error::Refused { code: Some(c), .. } if c == "DependencyViolation"));
        assert_eq!(refused.code(), Some("DependencyViolation"));
        assert!(!refused.is_transient() && !refused.is_not_found());
        assert_eq!(refused.to_string(), "CreateThing: DependencyViolation (said AWS)");
        assert!(of(Some("RequestLimitExceeded"), false).is_transient());
    }

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
    fn throttling_codes() {
        assert!(is_throttling_code("RequestLimitExceeded"));
        assert!(is_throttling_code("ThrottlingException"));
        assert!(!is_throttling_code("DependencyViolation"));
    }
}
