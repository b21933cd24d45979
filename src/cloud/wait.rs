//! Bounded waiting: every wait has a timeout, polls less and less often as it goes on, backs
//! off when throttled, and says what it is waiting for while it waits.

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
/// The pause between polls is this fraction of the time waited so far (within the bounds
/// above): a resource that takes T to become usable is seen at most T/20 late, so a run stays
/// within about 5 % of its critical path, and a 15-minute database wait polls 166 times (about
/// 11 a minute, most of them early; 6 a minute once the pause reaches its 10-second cap).
const DELAY_FRACTION: u32 = 20;

/// The pause before the next poll, `elapsed` into the wait; `throttled` when the last poll was
/// refused for throttling or a server error, which doubles the previous pause instead.
fn next_delay(elapsed: Duration, previous: Duration, throttled: bool) -> Duration {
    let proportional = (elapsed / DELAY_FRACTION).clamp(FIRST_DELAY, MAX_DELAY);
    if throttled {
        proportional.max((previous * 2).min(MAX_DELAY))
    } else {
        proportional
    }
}
const REPORT_EVERY: Duration = Duration::from_secs(15);

/// Polls until `poll` says done, a real error occurs, or `timeout` passes. Transient poll
/// errors (throttling, 5xx) are waited out like a "not yet".
pub async fn wait_until<T, F, Fut>(what: &str, timeout: Duration, mut poll: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Waited<T>, Error>>,
{
    let start = Instant::now();
    let mut delay = FIRST_DELAY;
    let mut last_report = start;
    loop {
        let mut throttled = false;
        let state = match poll().await {
            Ok(Waited::Done(v)) => return Ok(v),
            Ok(Waited::NotYet(state)) => state,
            // A throttled or failed poll says nothing about the thing waited for: keep waiting,
            // backing off, within the same bound.
            Err(e) if e.is_transient() => {
                throttled = true;
                format!("unknown ({e})")
            }
            Err(e) => return Err(e),
        };
        if start.elapsed() >= timeout {
            return Err(Error::Timeout { what: what.to_string(), after: timeout, last: state });
        }
        if last_report.elapsed() >= REPORT_EVERY {
            tracing::info!("still waiting for {what}: {state} ({}s)", start.elapsed().as_secs());
            last_report = Instant::now();
        }
        delay = next_delay(start.elapsed(), delay, throttled);
        tokio::time::sleep(delay.min(timeout.saturating_sub(start.elapsed()))).await;
    }
}

/// How often a whole step is tried when it keeps failing for a transient reason (after each
/// request's own SDK retries), and the pause before the second and third try.
pub const STEP_ATTEMPTS: u32 = 3;
const STEP_PAUSE: Duration = Duration::from_secs(2);

/// Runs `step` again (up to [`STEP_ATTEMPTS`] in all) when it fails with a transient error
/// ([`Error::is_transient`]): a throttle storm can outlast one request's retries. Every step the
/// deployer retries this way is idempotent. Any other error is returned at once.
pub async fn retry_transient<T, F, Fut>(what: &str, mut step: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    let mut attempt = 1;
    loop {
        match step().await {
            Err(e) if e.is_transient() && attempt < STEP_ATTEMPTS => {
                tracing::warn!("{what}: {e}; trying the step again ({} of {STEP_ATTEMPTS})", attempt + 1);
                tokio::time::sleep(STEP_PAUSE * attempt).await;
                attempt += 1;
            }
            other => return other,
        }
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
        Error::Refused {
            operation: "DeleteSubnet",
            code: Some("DependencyViolation".into()),
            message: "has dependencies".into(),
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
    async fn a_transient_failure_is_tried_again_and_a_real_one_is_not() {
        let tries = AtomicU32::new(0);
        let throttled = || Error::Throttled {
            operation: "DescribeVpcs",
            code: "RequestLimitExceeded".into(),
            message: "slow down".into(),
        };
        let out = retry_transient("observe", || {
            let n = tries.fetch_add(1, Ordering::SeqCst);
            async move {
                if n < 2 {
                    Err(throttled())
                } else {
                    Ok(n)
                }
            }
        })
        .await
        .unwrap();
        assert_eq!(out, 2);
        tries.store(0, Ordering::SeqCst);
        let err = retry_transient("delete", || {
            tries.fetch_add(1, Ordering::SeqCst);
            async { Err::<(), _>(dependency_violation()) }
        })
        .await
        .unwrap_err();
        assert_eq!(err.code(), Some("DependencyViolation"));
        assert_eq!(tries.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn polls_slow_down_with_the_wait_and_back_off_when_throttled() {
        let s = Duration::from_secs;
        assert_eq!(next_delay(s(1), FIRST_DELAY, false), FIRST_DELAY);
        assert_eq!(next_delay(s(60), FIRST_DELAY, false), s(3));
        assert_eq!(next_delay(s(3600), FIRST_DELAY, false), MAX_DELAY);
        assert_eq!(next_delay(s(1), s(1), true), s(2));
        // Polls in a 15-minute wait: about 11 a minute on average.
        let (mut t, mut polls) = (Duration::ZERO, 0);
        while t < s(900) {
            t += next_delay(t, FIRST_DELAY, false);
            polls += 1;
        }
        assert!((150..=180).contains(&polls), "{polls} polls in 15 minutes");
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
