//! envseal's own retries (PRODUCT.md §10): every AWS call of a resolution is
//! retried on throttling and transient errors until the overall deadline
//! (which `pipeline::fetch` enforces by dropping everything), not for a fixed count;
//! `AWS_MAX_ATTEMPTS` still caps attempts when set. Every attempt has its own
//! time limit, so that a stalled connection is abandoned (and with it the
//! connection) and the call tried again on a new one.
//!
//! Two kinds of backoff, both with full jitter:
//!
//! - **Transient errors** (5xx, resets, a stalled attempt, a truncated
//!   answer): per call, exponential from [`TRANSIENT_BASE`] up to
//!   [`TRANSIENT_CAP`].
//! - **Throttling**: per service and region, shared by every call of this
//!   process (a [`Gate`]). A throttled answer means that the account's rate
//!   is used up, by this process and by every other task of the fleet, so
//!   the process as a whole waits. Calls go in rounds: a round ends when
//!   none of its calls is still waiting for an answer; if any was
//!   throttled, every call waits for one random moment in `[0, window)` and
//!   then those still to make go together. The first window is the
//!   throttle window (`--throttle-window`, [`DEFAULT_THROTTLE_WINDOW`]) for
//!   each call throttled in the round: three batches throttled say three
//!   times as much demand as one. Every later throttled round doubles it,
//!   up to [`THROTTLE_CAP`]; answers do not shrink it. Near the deadline a
//!   wait is at most half the time left (but at least [`THROTTLE_FLOOR`]),
//!   so that a late task still gets its tries. A fleet that starts together
//!   spreads its retries over about as long as the service needs to serve
//!   it, and converges on the service's rate (figures and the reasoning in
//!   docs/performance.md, "Fleet start").
//!
//! Denials, not-found, validation errors and anything else the service said
//! on purpose are never retried. What each request went through (attempts,
//! the last transient error) is recorded in the [`Sink`], so that a request
//! still unanswered at the deadline says why ("throttled
//! (ThrottlingException) on all 14 attempts").

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use aws_smithy_types::retry::ErrorKind;
use tracing::debug;

use super::failure::{batch_unavailable, classify};
use super::sink::Sink;
use crate::error::{FailureKind, FetchError};
use crate::plan::Request;

/// The throttle window per throttled call of a round (`--throttle-window`):
/// about the number of tasks that start together divided by the service's
/// rate (200 tasks at SSM's 40 requests/s: 5 s). Chosen with
/// `bench/fleet.py` (docs/performance.md, "Fleet start").
pub const DEFAULT_THROTTLE_WINDOW: Duration = Duration::from_secs(5);
/// The largest throttle window.
pub const THROTTLE_CAP: Duration = Duration::from_secs(30);
/// The least a throttled process waits at most, however near the deadline:
/// waits bounded by half the time left would otherwise shrink to nothing
/// and hammer the service in the last second.
pub const THROTTLE_FLOOR: Duration = Duration::from_secs(1);
/// First backoff after a transient error (5xx, reset, stall, truncation).
pub const TRANSIENT_BASE: Duration = Duration::from_millis(200);
/// The largest backoff after transient errors.
pub const TRANSIENT_CAP: Duration = Duration::from_secs(5);

/// How calls are retried.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Time limit of one attempt (send, and for S3 the body).
    pub attempt_timeout: Duration,
    /// `AWS_MAX_ATTEMPTS` (or a profile's `max_attempts`); `None`: until the deadline.
    pub max_attempts: Option<u32>,
    /// The throttle window per throttled call (`--throttle-window`).
    pub throttle_window: Duration,
    /// When the caller gives up (`--timeout`); throttle waits are bounded by
    /// half the time left. `None`: no bound.
    pub deadline: Option<tokio::time::Instant>,
}

/// The ceiling of the `n`-th backoff (`n` from 0): `base × 2ⁿ`, at most `cap`.
pub fn ceiling(base: Duration, cap: Duration, n: u32) -> Duration {
    base.saturating_mul(1u32.checked_shl(n.min(31)).unwrap_or(u32::MAX))
        .min(cap)
}

/// Full jitter: a uniformly random duration in `[0, ceiling)`, from a
/// uniform `unit` in `[0, 1)`.
pub fn full_jitter(ceiling: Duration, unit: f64) -> Duration {
    ceiling.mul_f64(unit.clamp(0.0, 1.0))
}

/// A uniformly random number in `[0, 1)` (not for secrets: for jitter).
pub fn unit_random() -> f64 {
    let mut bytes = [0u8; 8];
    if getrandom::getrandom(&mut bytes).is_err() {
        // No randomness: the middle of the window rather than nothing.
        return 0.5;
    }
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

/// Why an attempt failed in a way that is worth another try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transient {
    /// The service's rate limit (`ThrottlingException`, `SlowDown`, HTTP 429…).
    Throttled(String),
    /// Something that usually passes: a 5xx, a reset, a truncated answer.
    Other(String),
}

impl Transient {
    pub fn describe(&self) -> String {
        match self {
            Transient::Throttled(code) => format!("throttled ({code})"),
            Transient::Other(what) => what.clone(),
        }
    }
}

/// AWS error codes of throttling (the SDK's list).
const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
];

/// AWS error codes of transient errors (the SDK's list).
const TRANSIENT_CODES: &[&str] = &["RequestTimeout", "RequestTimeoutException"];

/// An error an attempt can end with.
pub trait Retryable {
    /// `Some` when another attempt may succeed.
    fn transient(&self) -> Option<Transient>;
}

impl<E: ProvideErrorMetadata> Retryable for SdkError<E, HttpResponse> {
    fn transient(&self) -> Option<Transient> {
        // Denied (whatever the body), or a batch call the server does not
        // have: an answer, not an accident.
        if batch_unavailable(self) {
            return None;
        }
        match self {
            SdkError::ServiceError(service) => {
                let status = service.raw().status().as_u16();
                let code = service.err().code();
                if let Some(code) = code.filter(|c| THROTTLING_CODES.contains(c)) {
                    return Some(Transient::Throttled(code.to_owned()));
                }
                if status == 429 {
                    return Some(Transient::Throttled("HTTP 429".to_owned()));
                }
                let transient_code = code.is_some_and(|c| TRANSIENT_CODES.contains(&c));
                if transient_code || matches!(status, 500 | 502 | 503 | 504) {
                    return Some(Transient::Other(match code {
                        Some(code) => format!("{code} (HTTP {status})"),
                        None => format!("HTTP {status}"),
                    }));
                }
                None
            }
            SdkError::TimeoutError(_) => Some(Transient::Other("timed out".to_owned())),
            SdkError::DispatchFailure(failure) => {
                if failure.is_io() {
                    Some(Transient::Other("connection failed or reset".to_owned()))
                } else if failure.is_timeout() {
                    Some(Transient::Other("connection timed out".to_owned()))
                } else {
                    match failure.as_other() {
                        Some(ErrorKind::ThrottlingError) => {
                            Some(Transient::Throttled("throttling error".to_owned()))
                        }
                        Some(ErrorKind::TransientError) => {
                            Some(Transient::Other("transient error".to_owned()))
                        }
                        // Credentials, configuration, a user error: not a
                        // matter of time.
                        _ => None,
                    }
                }
            }
            // A body cut short (the connection dropped) or that does not
            // parse: another attempt reads a whole one.
            // ... unless the status says the request itself was refused.
            SdkError::ResponseError(e) => {
                let status = e.raw().status().as_u16();
                if (400..500).contains(&status) && status != 429 {
                    return None;
                }
                Some(Transient::Other(
                    "truncated or unreadable answer".to_owned(),
                ))
            }
            _ => None,
        }
    }
}

/// A call that did not succeed: its last error (`None` when the last
/// attempt hit the attempt time limit) and how many attempts were made.
#[derive(Debug)]
pub struct Failed<X> {
    pub err: Option<X>,
    pub attempts: u32,
    pub attempt_timeout: Duration,
}

impl<X> Failed<X> {
    /// One attempt that failed with `err` (no retries, e.g. a server that
    /// retries for itself).
    pub fn once(err: X) -> Self {
        Failed {
            err: Some(err),
            attempts: 1,
            attempt_timeout: Duration::ZERO,
        }
    }

    /// The failure, with `map` turning the last error into one; attempts
    /// are named when there were several (`AWS_MAX_ATTEMPTS` ran out).
    pub fn into_fetch_error(self, map: impl FnOnce(&X) -> FetchError) -> FetchError {
        let mut e = match &self.err {
            Some(err) => map(err),
            None => FetchError::new(
                FailureKind::Timeout,
                format!(
                    "no answer within the {} attempt limit",
                    crate::config::format_duration(self.attempt_timeout)
                ),
            ),
        };
        if self.attempts > 1 {
            e.reason = format!("{} (after {} attempts)", e.reason, self.attempts);
        }
        e
    }
}

impl<E> Failed<SdkError<E, HttpResponse>>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    /// [`classify`] of the last error, attempts named.
    pub fn classify(self) -> FetchError {
        self.into_fetch_error(classify)
    }

    /// Was the call answered with an error that says the batch form cannot
    /// be used ([`batch_unavailable`])?
    pub fn batch_unavailable(&self) -> bool {
        self.err.as_ref().is_some_and(batch_unavailable)
    }
}

/// The throttling state of one service and region in this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GateState {
    /// The window of the last throttled round; `None` until the first.
    pub window: Option<Duration>,
    /// Attempts sent and not yet answered.
    pub in_flight: u32,
    /// Throttled answers in the round under way: while there are any, no
    /// attempt starts (the round ends when `in_flight` reaches 0).
    pub throttled: u32,
    /// When the calls of the last throttled round go again.
    pub resume_at: Option<tokio::time::Instant>,
}

impl GateState {
    /// The window after a round with `throttled` throttled answers: the
    /// first is `per_call × throttled`, every later one twice the last; at
    /// most [`THROTTLE_CAP`].
    pub fn next_window(&self, throttled: u32, per_call: Duration) -> Duration {
        match self.window {
            None => per_call.saturating_mul(throttled.max(1)),
            Some(w) => w.saturating_mul(2),
        }
        .min(THROTTLE_CAP)
    }
}

/// The longest a throttled round may wait, `left` before the deadline:
/// `window`, at most half of `left`, but never less than
/// [`THROTTLE_FLOOR`] (nor more than the window).
pub fn bounded_window(window: Duration, left: Option<Duration>) -> Duration {
    match left {
        None => window,
        Some(left) => window.min((left / 2).max(THROTTLE_FLOOR)),
    }
}

/// One service and region: the [`GateState`], and the waiters for the end
/// of a throttled round.
#[derive(Debug, Default)]
pub struct Gate {
    state: Cell<GateState>,
    round_over: tokio::sync::Notify,
}

impl Gate {
    fn update(&self, f: impl FnOnce(&mut GateState)) {
        let mut state = self.state.get();
        f(&mut state);
        self.state.set(state);
    }

    /// Waits until an attempt may start: not while a throttled round is
    /// still under way, not before its calls go again.
    async fn turn(&self) {
        loop {
            // Registered before the state is read: a round that ends in
            // between still wakes this.
            let round_over = self.round_over.notified();
            let state = self.state.get();
            if state.throttled > 0 {
                round_over.await;
                continue;
            }
            match state.resume_at {
                Some(at) if at > tokio::time::Instant::now() => {
                    tokio::time::sleep_until(at).await;
                }
                _ => return,
            }
        }
    }

    /// An attempt starts; the guard ends it (also when the call is dropped).
    fn start<'a>(&'a self, policy: &'a Policy) -> InFlight<'a> {
        self.update(|s| s.in_flight += 1);
        InFlight {
            gate: self,
            policy,
            throttled: false,
        }
    }
}

/// An attempt under way; when it ends the round may end with it.
struct InFlight<'a> {
    gate: &'a Gate,
    policy: &'a Policy,
    throttled: bool,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let policy = self.policy;
        let throttled = self.throttled;
        let mut ended = false;
        self.gate.update(|s| {
            s.in_flight -= 1;
            if throttled {
                s.throttled += 1;
            }
            if s.in_flight > 0 || s.throttled == 0 {
                return;
            }
            let window = s.next_window(s.throttled, policy.throttle_window);
            let now = tokio::time::Instant::now();
            let left = policy.deadline.map(|d| d.saturating_duration_since(now));
            let wait = full_jitter(bounded_window(window, left), unit_random());
            debug!(
                throttled = s.throttled,
                window_ms = window.as_millis() as u64,
                wait_ms = wait.as_millis() as u64,
                "throttled round; waiting"
            );
            s.window = Some(window);
            s.throttled = 0;
            s.resume_at = Some(now + wait);
            ended = true;
        });
        if ended {
            self.gate.round_over.notify_waiters();
        }
    }
}

/// A gate per service and region (`None`: the configured one).
type GateKey = (&'static str, Option<String>);

/// The retry policy and the gates of one resolution.
#[derive(Debug)]
pub struct Retrier {
    pub policy: Policy,
    gates: RefCell<HashMap<GateKey, Rc<Gate>>>,
}

impl Retrier {
    pub fn new(policy: Policy) -> Self {
        Retrier {
            policy,
            gates: RefCell::default(),
        }
    }

    fn gate(&self, service: &'static str, region: Option<&str>) -> Rc<Gate> {
        let mut gates = self.gates.borrow_mut();
        Rc::clone(
            gates
                .entry((service, region.map(str::to_owned)))
                .or_default(),
        )
    }
}

/// Which requests wait on a call, so that its attempts are recorded for
/// them (none for `envseal pull`).
pub struct Track<'a> {
    pub sink: Option<&'a Sink>,
    pub requests: Vec<Request>,
    /// A call made on the requests' behalf before their own
    /// (`AssumeRole ARN`), for the deadline's message.
    pub step: Option<String>,
}

impl<'a> Track<'a> {
    pub fn new(sink: &'a Sink, requests: Vec<Request>) -> Self {
        Track {
            sink: Some(sink),
            requests,
            step: None,
        }
    }

    pub fn one(sink: &'a Sink, request: Request) -> Self {
        Track::new(sink, vec![request])
    }

    pub fn none() -> Track<'static> {
        Track {
            sink: None,
            requests: Vec::new(),
            step: None,
        }
    }

    /// The same requests, for a call made on their behalf (`what`).
    pub fn step(self, what: String) -> Self {
        Track {
            step: Some(what),
            ..self
        }
    }

    fn started(&self) {
        if let Some(sink) = self.sink {
            sink.attempt_started(&self.requests, self.step.as_deref());
        }
    }

    fn failed(&self, why: &Transient) {
        if let Some(sink) = self.sink {
            sink.attempt_failed(&self.requests, why.describe());
        }
    }
}

/// Runs `op` (one attempt: a fresh request each time) until it succeeds,
/// fails for good, or `AWS_MAX_ATTEMPTS` runs out; the deadline is the
/// caller's (`pipeline::fetch` drops this future). `service`/`region` name the
/// throttling [`Gate`]. Without a [`Retrier`] (the SDK retries for itself:
/// `push`, `pull`, `policy`), one attempt.
pub async fn send<T, X, F, Fut>(
    retrier: Option<&Retrier>,
    service: &'static str,
    region: Option<&str>,
    track: &Track<'_>,
    mut op: F,
) -> Result<T, Failed<X>>
where
    X: Retryable,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, X>>,
{
    let Some(retrier) = retrier else {
        return op().await.map_err(Failed::once);
    };
    let policy = &retrier.policy;
    let gate = retrier.gate(service, region);
    let mut attempts = 0u32;
    let mut transient_failures = 0u32;
    loop {
        attempts += 1;
        gate.turn().await;
        let mut in_flight = gate.start(policy);
        track.started();
        let outcome = tokio::time::timeout(policy.attempt_timeout, op()).await;
        let (err, why) = match outcome {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(err)) => match err.transient() {
                None => {
                    return Err(Failed {
                        err: Some(err),
                        attempts,
                        attempt_timeout: policy.attempt_timeout,
                    });
                }
                Some(why) => (Some(err), why),
            },
            Err(_elapsed) => (
                None,
                Transient::Other(format!(
                    "no answer within the {} attempt limit",
                    crate::config::format_duration(policy.attempt_timeout)
                )),
            ),
        };
        track.failed(&why);
        let throttled = matches!(why, Transient::Throttled(_));
        in_flight.throttled = throttled;
        drop(in_flight);
        debug!(
            service,
            attempt = attempts,
            why = %why.describe(),
            "attempt failed; retrying"
        );
        if policy.max_attempts.is_some_and(|max| attempts >= max) {
            return Err(Failed {
                err,
                attempts,
                attempt_timeout: policy.attempt_timeout,
            });
        }
        if !throttled {
            let ceiling = ceiling(TRANSIENT_BASE, TRANSIENT_CAP, transient_failures);
            transient_failures += 1;
            tokio::time::sleep(full_jitter(ceiling, unit_random())).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let base = Duration::from_millis(200);
        let cap = Duration::from_secs(5);
        assert_eq!(ceiling(base, cap, 0), base);
        assert_eq!(ceiling(base, cap, 1), Duration::from_millis(400));
        assert_eq!(ceiling(base, cap, 4), Duration::from_millis(3200));
        assert_eq!(ceiling(base, cap, 5), cap);
        assert_eq!(ceiling(base, cap, 1000), cap);
        assert_eq!(ceiling(base, cap, u32::MAX), cap);
    }

    #[test]
    fn full_jitter_spans_zero_to_the_ceiling() {
        let c = Duration::from_secs(4);
        assert_eq!(full_jitter(c, 0.0), Duration::ZERO);
        assert_eq!(full_jitter(c, 0.5), Duration::from_secs(2));
        assert!(full_jitter(c, 0.999_999) < c);
        assert_eq!(full_jitter(c, 7.0), c);
        assert_eq!(full_jitter(c, -1.0), Duration::ZERO);
        for _ in 0..1000 {
            let u = unit_random();
            assert!((0.0..1.0).contains(&u), "{u}");
        }
    }

    #[test]
    fn the_first_window_grows_with_the_throttled_calls_and_later_ones_double() {
        let per_call = Duration::from_secs(5);
        let mut s = GateState::default();
        // Three batches throttled together: three times the demand of one.
        assert_eq!(s.next_window(3, per_call), Duration::from_secs(15));
        assert_eq!(s.next_window(1, per_call), per_call);
        assert_eq!(s.next_window(0, per_call), per_call);
        assert_eq!(s.next_window(100, per_call), THROTTLE_CAP);
        // Later rounds: twice the last, whatever their count, up to the cap.
        s.window = Some(Duration::from_secs(4));
        assert_eq!(s.next_window(1, per_call), Duration::from_secs(8));
        assert_eq!(s.next_window(9, per_call), Duration::from_secs(8));
        s.window = Some(Duration::from_secs(20));
        assert_eq!(s.next_window(1, per_call), THROTTLE_CAP);
    }

    #[test]
    fn near_the_deadline_a_wait_is_at_most_half_the_time_left_but_not_nothing() {
        let w = Duration::from_secs(15);
        assert_eq!(bounded_window(w, None), w);
        assert_eq!(bounded_window(w, Some(Duration::from_secs(60))), w);
        assert_eq!(
            bounded_window(w, Some(Duration::from_secs(10))),
            Duration::from_secs(5)
        );
        assert_eq!(
            bounded_window(w, Some(Duration::from_millis(300))),
            THROTTLE_FLOOR
        );
        assert_eq!(bounded_window(w, Some(Duration::ZERO)), THROTTLE_FLOOR);
        // ... and never more than the window.
        let short = Duration::from_millis(200);
        assert_eq!(bounded_window(short, Some(Duration::ZERO)), short);
    }

    /// An attempt's answer in the round tests.
    #[derive(Debug)]
    struct Throttled;

    impl Retryable for Throttled {
        fn transient(&self) -> Option<Transient> {
            Some(Transient::Throttled("ThrottlingException".into()))
        }
    }

    fn policy(max_attempts: Option<u32>) -> Policy {
        Policy {
            attempt_timeout: Duration::from_secs(5),
            max_attempts,
            throttle_window: Duration::from_secs(5),
            deadline: None,
        }
    }

    /// Three calls sent together, each throttled on its first attempt and
    /// answered after `delays[i]`: no second attempt starts before every
    /// first one is answered, and the second attempts start together.
    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn a_throttled_round_ends_before_any_call_goes_again_and_then_all_go_together() {
        use tokio::time::Instant;
        let retrier = Retrier::new(policy(None));
        let track = Track::none();
        let t0 = Instant::now();
        let starts = RefCell::new(Vec::<(usize, u32, Duration)>::new());
        let delays = [10u64, 200, 1500];
        let call = |i: usize| {
            let (retrier, track, starts) = (&retrier, &track, &starts);
            async move {
                let attempt = Cell::new(0u32);
                send(Some(retrier), "ssm", None, track, || {
                    attempt.set(attempt.get() + 1);
                    let n = attempt.get();
                    starts.borrow_mut().push((i, n, t0.elapsed()));
                    async move {
                        tokio::time::sleep(Duration::from_millis(delays[i])).await;
                        if n == 1 {
                            Err(Throttled)
                        } else {
                            Ok(n)
                        }
                    }
                })
                .await
            }
        };
        let results = futures_util::future::join_all((0..3).map(call)).await;
        for r in &results {
            assert_eq!(r.as_ref().ok(), Some(&2));
        }
        let starts = starts.into_inner();
        let firsts: Vec<_> = starts.iter().filter(|s| s.1 == 1).collect();
        let seconds: Vec<_> = starts.iter().filter(|s| s.1 == 2).collect();
        assert_eq!((firsts.len(), seconds.len()), (3, 3), "{starts:?}");
        assert!(firsts.iter().all(|s| s.2 == Duration::ZERO), "{starts:?}");
        // The round ended with the slowest first answer (1.5 s) ...
        let resumed = seconds[0].2;
        assert!(resumed >= Duration::from_millis(1500), "{starts:?}");
        // ... and the wait after it is within the first window: 3 × 5 s.
        assert!(
            resumed < Duration::from_millis(1500) + Duration::from_secs(15),
            "{starts:?}"
        );
        assert!(seconds.iter().all(|s| s.2 == resumed), "{starts:?}");
        let gate = retrier.gate("ssm", None).state.get();
        assert_eq!(gate.window, Some(Duration::from_secs(15)));
        assert_eq!((gate.in_flight, gate.throttled), (0, 0));
    }

    /// A call throttled on every attempt: the windows double from one
    /// throttled call's, and `AWS_MAX_ATTEMPTS` still ends it.
    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn throttled_rounds_double_the_window_until_attempts_run_out() {
        let retrier = Retrier::new(policy(Some(4)));
        let attempts = Cell::new(0u32);
        let r: Result<(), Failed<Throttled>> =
            send(Some(&retrier), "ssm", None, &Track::none(), || {
                attempts.set(attempts.get() + 1);
                async { Err(Throttled) }
            })
            .await;
        let failed = r.unwrap_err();
        assert_eq!((failed.attempts, attempts.get()), (4, 4));
        // 5 s, 10 s, 20 s, 30 s (the cap): one window per throttled attempt.
        let gate = retrier.gate("ssm", None).state.get();
        assert_eq!(gate.window, Some(THROTTLE_CAP));
        assert_eq!((gate.in_flight, gate.throttled), (0, 0));
    }

    /// The deadline bounds the wait: with 2 s left, the wait after a
    /// throttled round is below max(1 s, half of it).
    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn a_throttled_wait_does_not_outlast_half_the_time_left() {
        use tokio::time::Instant;
        // Without the bound a wait would be in [0, 5 s): ten below 1 s by
        // chance is one in ten million.
        for _ in 0..10 {
            let t0 = Instant::now();
            let retrier = Retrier::new(Policy {
                deadline: Some(t0 + Duration::from_secs(2)),
                ..policy(None)
            });
            let starts = RefCell::new(Vec::new());
            let r: Result<(), Failed<Throttled>> =
                send(Some(&retrier), "ssm", None, &Track::none(), || {
                    starts.borrow_mut().push(t0.elapsed());
                    let again = starts.borrow().len() < 2;
                    async move {
                        if again {
                            Err(Throttled)
                        } else {
                            Ok(())
                        }
                    }
                })
                .await;
            assert!(r.is_ok());
            let starts = starts.into_inner();
            assert!(starts[1] < THROTTLE_FLOOR, "{starts:?}");
        }
    }

    fn service_error(
        status: u16,
        code: Option<&str>,
    ) -> SdkError<aws_sdk_ssm::operation::get_parameters::GetParametersError, HttpResponse> {
        use aws_smithy_runtime_api::http::StatusCode;
        use aws_smithy_types::body::SdkBody;
        use aws_smithy_types::error::ErrorMetadata;
        let mut meta = ErrorMetadata::builder();
        if let Some(code) = code {
            meta = meta.code(code);
        }
        let err = aws_sdk_ssm::operation::get_parameters::GetParametersError::generic(meta.build());
        let raw = HttpResponse::new(StatusCode::try_from(status).unwrap(), SdkBody::empty());
        SdkError::service_error(err, raw)
    }

    #[test]
    fn what_is_retried() {
        let throttled = |s, c| service_error(s, c).transient();
        assert_eq!(
            throttled(400, Some("ThrottlingException")),
            Some(Transient::Throttled("ThrottlingException".into()))
        );
        assert_eq!(
            throttled(503, Some("SlowDown")),
            Some(Transient::Throttled("SlowDown".into()))
        );
        assert_eq!(
            throttled(429, None),
            Some(Transient::Throttled("HTTP 429".into()))
        );
        assert_eq!(
            throttled(503, Some("ServiceUnavailable")),
            Some(Transient::Other("ServiceUnavailable (HTTP 503)".into()))
        );
        assert_eq!(
            throttled(500, None),
            Some(Transient::Other("HTTP 500".into()))
        );
        // Answers on purpose: never retried.
        for (status, code) in [
            (400, Some("ParameterNotFound")),
            (400, Some("ValidationException")),
            (400, Some("AccessDeniedException")),
            (403, None),
            (403, Some("ThrottlingException")),
            (400, Some("UnknownOperationException")),
            (404, None),
            (400, Some("InvalidKeyId")),
        ] {
            assert_eq!(throttled(status, code), None, "{status} {code:?}");
        }
        assert_eq!(
            Transient::Throttled("ThrottlingException".into()).describe(),
            "throttled (ThrottlingException)"
        );
    }

    #[test]
    fn exhausted_attempts_are_named() {
        let f: Failed<()> = Failed {
            err: None,
            attempts: 3,
            attempt_timeout: Duration::from_secs(1),
        };
        let e = f.into_fetch_error(|_| unreachable!());
        assert_eq!(e.kind, FailureKind::Timeout);
        assert_eq!(
            e.reason,
            "no answer within the 1s attempt limit (after 3 attempts)"
        );
        let once =
            Failed::once(()).into_fetch_error(|_| FetchError::new(FailureKind::Service, "x"));
        assert_eq!(once.reason, "x");
    }
}
