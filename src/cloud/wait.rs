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

/// The shortest pause between two polls of one resource: at most 12 describes of it in any
/// minute. AWS counts API requests per account and Region in token buckets that every caller
/// shares (EC2: "Request throttling for the Amazon EC2 API"; e.g. `DescribeHosts` refills 20
/// tokens a second), so a deployer polling each of its waits several times a second would
/// throttle the account's other tools as well as itself. AWS's own waiters poll more slowly
/// still: `NatGatewayAvailable`, `VpcAvailable` and `VpcPeeringConnectionExists` every 15 s,
/// `DBInstanceAvailable` every 30 s (the SDKs' waiter models: botocore's
/// `ec2/2016-11-15/waiters-2.json` and `rds/2014-10-31/waiters-2.json`).
const MIN_DELAY: Duration = Duration::from_secs(5);
const MAX_DELAY: Duration = Duration::from_secs(10);
/// The pause is this fraction of the time waited so far, within the bounds above: a resource
/// that takes T to become usable is seen at most 5 s late when T is under 100 s, T/20 late up
/// to 200 s, and 10 s late after that. A 15-minute database wait polls about 104 times (7 a
/// minute) and is seen at most 10 s (1 %) late.
const DELAY_FRACTION: u32 = 20;

/// How much faster than AWS the clock of the AWS the deployer talks to runs: 1 on AWS. An
/// emulator that compresses AWS's durations (tests/emulator: `DEPLOYER_EMU_SCALE`, 0.01 by
/// default) is polled at the same rate per its own time as AWS would be, so what a test or
/// the bench measures of waiting is what AWS would see.
static TIME_SCALE: std::sync::OnceLock<f64> = std::sync::OnceLock::new();

/// The environment variable that sets [`TIME_SCALE`]: for an emulator only.
const TIME_SCALE_VAR: &str = "DEPLOYER_EMU_SCALE";

/// Sets this process's `TIME_SCALE` from `TIME_SCALE_VAR`, before any wait (unset: AWS's
/// own clock). Refused unless `emulated` (an endpoint URL is set), so that AWS itself is never
/// polled faster, and unless it is a number in (0, 1].
pub fn init_time_scale(emulated: bool) -> Result<(), String> {
    let Some(raw) = std::env::var_os(TIME_SCALE_VAR) else { return Ok(()) };
    let raw = raw.to_string_lossy();
    if raw.trim().is_empty() {
        return Ok(());
    }
    let scale: f64 =
        raw.trim().parse().ok().filter(|s: &f64| *s > 0.0 && *s <= 1.0).ok_or_else(|| {
            format!("{TIME_SCALE_VAR}={raw:?}: expected a number greater than 0 and at most 1")
        })?;
    if !emulated && scale != 1.0 {
        return Err(format!(
            "{TIME_SCALE_VAR}={raw}: it compresses the deployer's pauses between polls for an emulator, \
             and is refused without one (AWS_ENDPOINT_URL or aws.endpoint_url): AWS runs at its own pace"
        ));
    }
    let _ = TIME_SCALE.set(scale);
    Ok(())
}

fn scaled(d: Duration) -> Duration {
    d.mul_f64(TIME_SCALE.get().copied().unwrap_or(1.0))
}

/// The pause before the next poll, `elapsed` into the wait; `throttled` when the last poll was
/// refused for throttling or a server error, which doubles the previous pause instead.
fn next_delay(elapsed: Duration, previous: Duration, throttled: bool) -> Duration {
    let (min, max) = (scaled(MIN_DELAY), scaled(MAX_DELAY));
    let proportional = (elapsed / DELAY_FRACTION).clamp(min, max);
    if throttled {
        proportional.max((previous * 2).min(max))
    } else {
        proportional
    }
}
const REPORT_EVERY: Duration = Duration::from_secs(15);

/// The schedule of one poll loop: the first poll at once, then a pause of `next_delay`
/// before each next one. [`wait_until`] keeps one; so does a loop that ends in more ways than
/// "done" can say (a release's deployment, its bake, the release gate's image), so that every
/// resource the deployer watches is polled at the same pace.
pub struct Pace {
    start: Instant,
    delay: Duration,
}

impl Pace {
    pub fn start() -> Self {
        Pace { start: Instant::now(), delay: scaled(MIN_DELAY) }
    }

    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// Sleeps until the next poll, and at most `limit`: `throttled` when the last poll was
    /// refused for throttling or a server error.
    pub async fn pause(&mut self, throttled: bool, limit: Duration) {
        self.delay = next_delay(self.start.elapsed(), self.delay, throttled);
        tokio::time::sleep(self.delay.min(limit)).await;
    }
}

/// Polls until `poll` says done, a real error occurs, or `timeout` passes. Transient poll
/// errors (throttling, 5xx) are waited out like a "not yet".
pub async fn wait_until<T, F, Fut>(what: &str, timeout: Duration, mut poll: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Waited<T>, Error>>,
{
    let mut pace = Pace::start();
    let mut last_report = Instant::now();
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
        if pace.elapsed() >= timeout {
            return Err(Error::Timeout { what: what.to_string(), after: timeout, last: state });
        }
        if last_report.elapsed() >= REPORT_EVERY {
            tracing::info!("still waiting for {what}: {state} ({}s)", pace.elapsed().as_secs());
            last_report = Instant::now();
        }
        pace.pause(throttled, timeout.saturating_sub(pace.elapsed())).await;
    }
}

/// How often a whole step is tried when it keeps failing for a transient reason (after each
/// request's own SDK retries), and the pause before the second and third try.
pub const STEP_ATTEMPTS: u32 = 3;
const STEP_PAUSE: Duration = Duration::from_secs(2);

/// Runs `step` again (up to `STEP_ATTEMPTS` in all) when it fails with a transient error
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
        assert_eq!(next_delay(s(1), MIN_DELAY, false), s(5));
        assert_eq!(next_delay(s(60), MIN_DELAY, false), s(5));
        assert_eq!(next_delay(s(150), MIN_DELAY, false), Duration::from_millis(7500));
        assert_eq!(next_delay(s(3600), MIN_DELAY, false), MAX_DELAY);
        assert_eq!(next_delay(s(1), s(5), true), s(10));
        assert_eq!(next_delay(s(1), s(10), true), MAX_DELAY);
    }

    /// For waits of many lengths (on AWS's clock): no minute holds more than 12 polls, and the
    /// end is seen within 5 s, or 1/20 of the wait, or 10 s, as the schedule promises.
    #[test]
    fn at_most_twelve_polls_a_minute_and_the_end_seen_soon() {
        for secs in [1, 4, 30, 60, 90, 120, 150, 300, 900, 1200, 3600] {
            let length = Duration::from_secs(secs);
            // The first poll is at once, then one after each pause, until one sees the end.
            let mut polls = vec![Duration::ZERO];
            while *polls.last().unwrap() < length {
                let t = *polls.last().unwrap();
                polls.push(t + next_delay(t, MIN_DELAY, false));
            }
            for (i, start) in polls.iter().enumerate() {
                let in_minute =
                    polls[i..].iter().take_while(|t| **t < *start + Duration::from_secs(60)).count();
                assert!(in_minute <= 12, "a {secs}s wait: {in_minute} polls in the minute from {start:?}");
            }
            let late = *polls.last().unwrap() - length;
            let bound = MIN_DELAY.max((length / DELAY_FRACTION).min(MAX_DELAY));
            assert!(late <= bound, "a {secs}s wait is seen {late:?} late (bound {bound:?})");
            if secs == 900 {
                assert!((95..=115).contains(&polls.len()), "{} polls in 15 minutes", polls.len());
            }
        }
    }

    /// A loop that keeps its own [`Pace`] (a release's) pauses as `wait_until` does, never past
    /// its limit, and backs off when throttled.
    #[tokio::test(start_paused = true)]
    async fn a_pace_pauses_on_the_schedule_and_within_its_limit() {
        let mut pace = Pace::start();
        for _ in 0..3 {
            pace.pause(false, Duration::MAX).await;
        }
        assert_eq!(pace.elapsed(), Duration::from_secs(15));
        pace.pause(false, Duration::from_secs(2)).await;
        assert_eq!(pace.elapsed(), Duration::from_secs(17));
        pace.pause(true, Duration::MAX).await;
        assert_eq!(pace.elapsed(), Duration::from_secs(27), "throttled: the 5 s pause doubled");
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
