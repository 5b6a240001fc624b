//! envseal's own retries (PRODUCT.md §10): every AWS call of a resolution is
//! retried on throttling and transient errors until the overall deadline
//! (which `pipeline::fetch` enforces by dropping everything), not for a fixed count;
//! `AWS_MAX_ATTEMPTS` still caps attempts when set. Every attempt has its own
//! time limit, so that a stalled connection is abandoned (and with it the
//! connection) and the call tried again on a new one.
//!
//! Two kinds of backoff, both exponential with full jitter:
//!
//! - **Transient errors** (5xx, resets, a stalled attempt, a truncated
//!   answer): per call, from [`TRANSIENT_BASE`] up to [`TRANSIENT_CAP`].
//! - **Throttling**: per service and region, shared by every call of this
//!   process (a [`Gate`]). A throttled answer means that the account's rate
//!   is used up — by this process and by every other task of the fleet — so
//!   the process as a whole slows down: once throttled, its calls to that
//!   service go one at a time, each attempt that follows a throttled answer
//!   after a random wait in `[0, window)`; the window doubles with every
//!   throttled answer, from [`THROTTLE_BASE`] up to [`THROTTLE_CAP`], and
//!   halves (not below the base) with every answer that was not throttled.
//!   A fleet that starts together thus sends one probe per task instead of
//!   one per call, and converges on the service's rate (the figures are in
//!   the fleet benchmark in docs/performance.md).
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

/// The first throttle window: SSM's bucket refills at 40 requests/s with a
/// burst of 40, so a throttled answer means at least ~1 s of queued demand.
/// Chosen with `bench/fleet.py` (docs/performance.md, "Fleet start").
pub const THROTTLE_BASE: Duration = Duration::from_secs(2);
/// The largest throttle window. Larger windows throttle less but leave the
/// service idle at the end of a fleet start; this one keeps 200 tasks at
/// 40 requests/s close to the floor.
pub const THROTTLE_CAP: Duration = Duration::from_secs(8);
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
    /// The throttle window; `None` until the first throttled answer (calls
    /// go at once). From then on calls take turns.
    pub window: Option<Duration>,
    /// Was the last answer a throttle? (Then the next attempt waits a
    /// random part of the window.)
    pub last_throttled: bool,
}

impl GateState {
    /// A throttled answer: the window doubles (the first: [`THROTTLE_BASE`]),
    /// up to [`THROTTLE_CAP`]. Every throttled answer counts, also those of
    /// calls sent together: three batches throttled at once say more about
    /// the fleet than one.
    pub fn on_throttle(&mut self) {
        self.last_throttled = true;
        self.window = Some(match self.window {
            None => THROTTLE_BASE,
            Some(w) => w.saturating_mul(2).min(THROTTLE_CAP),
        });
    }

    /// An answer that was not a throttle (a value, or an error the service
    /// gave on purpose): the service had room for it; the window halves, not
    /// below the base, and the next call goes at once.
    pub fn on_answer(&mut self) {
        self.last_throttled = false;
        self.window = self.window.map(|w| (w / 2).max(THROTTLE_BASE));
    }
}

/// One service and region: the [`GateState`] and the turn that calls take,
/// one at a time, while it is congested.
#[derive(Debug)]
pub struct Gate {
    state: Cell<GateState>,
    turn: tokio::sync::Semaphore,
}

impl Default for Gate {
    fn default() -> Self {
        Gate {
            state: Cell::new(GateState::default()),
            turn: tokio::sync::Semaphore::new(1),
        }
    }
}

impl Gate {
    fn update(&self, f: impl FnOnce(&mut GateState)) {
        let mut state = self.state.get();
        f(&mut state);
        self.state.set(state);
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
}

impl<'a> Track<'a> {
    pub fn new(sink: &'a Sink, requests: Vec<Request>) -> Self {
        Track {
            sink: Some(sink),
            requests,
        }
    }

    pub fn one(sink: &'a Sink, request: Request) -> Self {
        Track::new(sink, vec![request])
    }

    pub fn none() -> Track<'static> {
        Track {
            sink: None,
            requests: Vec::new(),
        }
    }

    fn started(&self) {
        if let Some(sink) = self.sink {
            sink.attempt_started(&self.requests);
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
        // Once the service has throttled this process, calls take turns,
        // and while the last answer was a throttle a turn starts with a
        // random part of the window.
        let turn = if gate.state.get().window.is_some() {
            let permit = gate.turn.acquire().await.ok();
            let state = gate.state.get();
            if let (true, Some(window)) = (state.last_throttled, state.window) {
                tokio::time::sleep(full_jitter(window, unit_random())).await;
            }
            permit
        } else {
            None
        };
        track.started();
        let outcome = tokio::time::timeout(policy.attempt_timeout, op()).await;
        let (err, why) = match outcome {
            Ok(Ok(value)) => {
                gate.update(GateState::on_answer);
                return Ok(value);
            }
            Ok(Err(err)) => match err.transient() {
                None => {
                    gate.update(GateState::on_answer);
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
        if throttled {
            gate.update(GateState::on_throttle);
        }
        drop(turn);
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
    fn throttles_widen_the_window_and_answers_narrow_it() {
        let mut s = GateState::default();
        assert_eq!(s.window, None);
        // Answers before any throttle change nothing.
        s.on_answer();
        assert_eq!(s, GateState::default());
        // Three calls sent together, all throttled: base, ×2, ×4.
        s.on_throttle();
        assert_eq!(s.window, Some(THROTTLE_BASE));
        assert!(s.last_throttled);
        s.on_throttle();
        s.on_throttle();
        assert_eq!(s.window, Some((THROTTLE_BASE * 4).min(THROTTLE_CAP)));
        // ... up to the cap.
        for _ in 0..40 {
            s.on_throttle();
        }
        assert_eq!(s.window, Some(THROTTLE_CAP));
        // Answers halve it, down to the base; calls keep taking turns.
        s.on_answer();
        assert!(!s.last_throttled);
        assert_eq!(s.window, Some(THROTTLE_CAP / 2));
        for _ in 0..10 {
            s.on_answer();
        }
        assert_eq!(s.window, Some(THROTTLE_BASE));
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
