//! Bounded waiting: every wait has a timeout, polls with capped exponential backoff, and says
//! what it is waiting for while it waits.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use super::Error;

/// What one poll saw: the thing is ready (with a value), or not yet (with its current state).
pub enum Waited<T> {
    Done(T),
    NotYet(String),
}

const FIRST_DELAY: Duration = Duration::from_millis(250);
const MAX_DELAY: Duration = Duration::from_secs(10);
const REPORT_EVERY: Duration = Duration::from_secs(15);

/// Polls until `poll` says done, an error occurs, or `timeout` passes.
pub async fn wait_until<T, F, Fut>(what: &str, timeout: Duration, mut poll: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Waited<T>, Error>>,
{
    let start = Instant::now();
    let mut delay = FIRST_DELAY;
    let mut last_report = start;
    loop {
        let state = match poll().await? {
            Waited::Done(v) => return Ok(v),
            Waited::NotYet(state) => state,
        };
        if start.elapsed() >= timeout {
            return Err(Error::Timeout { what: what.to_string(), after: timeout, last: state });
        }
        if last_report.elapsed() >= REPORT_EVERY {
            tracing::info!("still waiting for {what}: {state} ({}s)", start.elapsed().as_secs());
            last_report = Instant::now();
        }
        tokio::time::sleep(delay.min(timeout.saturating_sub(start.elapsed()))).await;
        delay = (delay * 2).min(MAX_DELAY);
    }
}

/// Runs `op` again while it fails with one of `codes` (e.g. `DependencyViolation` while AWS
/// releases network interfaces), until `timeout`. Any other error is returned at once.
pub async fn retry_on_codes<T, F, Fut>(
    what: &str,
    codes: &[&str],
    timeout: Duration,
    mut op: F,
) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    wait_until(what, timeout, || {
        let attempt = op();
        async move {
            match attempt.await {
                Ok(v) => Ok(Waited::Done(v)),
                Err(e) if e.code().is_some_and(|c| codes.contains(&c)) => {
                    tracing::debug!("{what}: {e}; retrying");
                    Ok(Waited::NotYet(e.to_string()))
                }
                Err(e) => Err(e),
            }
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn dependency_violation() -> Error {
        Error::Aws {
            operation: "DeleteSubnet",
            code: Some("DependencyViolation".into()),
            message: "has dependencies".into(),
            not_found: false,
            throttled: false,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retries_listed_codes_until_success() {
        let tries = AtomicU32::new(0);
        let out = retry_on_codes("delete", &["DependencyViolation"], Duration::from_secs(60), || {
            let n = tries.fetch_add(1, Ordering::SeqCst);
            async move {
                if n < 3 {
                    Err(dependency_violation())
                } else {
                    Ok(n)
                }
            }
        })
        .await
        .unwrap();
        assert_eq!(out, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn other_errors_are_not_retried() {
        let tries = AtomicU32::new(0);
        let err = retry_on_codes("delete", &["IncorrectState"], Duration::from_secs(60), || {
            tries.fetch_add(1, Ordering::SeqCst);
            async { Err::<(), _>(dependency_violation()) }
        })
        .await
        .unwrap_err();
        assert_eq!(err.code(), Some("DependencyViolation"));
        assert_eq!(tries.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn waits_time_out_with_last_state() {
        let err = wait_until("nat-1 available", Duration::from_secs(30), || async {
            Ok(Waited::<()>::NotYet("pending".into()))
        })
        .await
        .unwrap_err();
        assert!(matches!(err, Error::Timeout { ref last, .. } if last == "pending"), "{err}");
    }
}
