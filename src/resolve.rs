//! Runs a [`Plan`]: waits the splay, loads the AWS configuration (only now,
//! and only if there is something to fetch), drives every backend
//! concurrently on one current-thread runtime, and enforces the overall
//! deadline; backends retry until then ([`crate::backend::retry`]). Whatever
//! has not answered when the deadline passes is reported as timed out, with
//! what its attempts met ("throttled (ThrottlingException) on all 14
//! attempts").

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tracing::debug;

use crate::aws::Aws;
use crate::backend::{self, Answer, Sink};
use crate::error::{FailureKind, FetchError};
use crate::plan::{Plan, Request};

/// How a plan is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// The overall deadline (`--timeout`), counted after the splay.
    pub deadline: Duration,
    /// The time limit of one attempt (`--attempt-timeout`).
    pub attempt_timeout: Duration,
    /// A random wait in `[0, splay)` before the first request (`--splay`).
    pub splay: Duration,
}

pub fn fetch(plan: &Plan, options: &Options) -> HashMap<Request, Answer> {
    if plan.is_empty() {
        return HashMap::new();
    }
    let deadline = options.deadline;
    let splay =
        crate::backend::retry::full_jitter(options.splay, crate::backend::retry::unit_random());
    if !splay.is_zero() {
        debug!(splay_ms = splay.as_millis() as u64, "splay");
        std::thread::sleep(splay);
    }
    let started = Instant::now();
    let sink = Sink::default();
    let runtime = match runtime() {
        Ok(rt) => rt,
        Err(err) => {
            return plan
                .requests()
                .into_iter()
                .map(|r| (r, Err(err.clone())))
                .collect();
        }
    };
    let timed_out = runtime.block_on(async {
        tokio::time::timeout(deadline, run(plan, options.attempt_timeout, &sink))
            .await
            .is_err()
    });
    // Close every connection before returning. After a timeout, a blocking
    // task may still be running (a DNS lookup on the resolver's thread pool
    // waits out the resolver's own timeout): dropping the runtime would wait
    // for it and overrun the deadline, so it is left behind instead. Nothing
    // is exec'd or forked then, since a timeout fails resolution.
    if timed_out {
        runtime.shutdown_background();
    } else {
        drop(runtime);
    }
    let (mut answers, progress) = sink.into_inner();
    for request in plan.requests() {
        let why = progress.get(&request).and_then(|p| p.describe());
        answers.entry(request).or_insert_with(|| {
            let mut reason = if timed_out {
                format!(
                    "no answer within the {} deadline",
                    crate::config::format_duration(deadline)
                )
            } else {
                "no answer".to_owned()
            };
            if let Some(why) = why {
                reason = format!("{reason}: {why}");
            }
            Err(FetchError::new(FailureKind::Timeout, reason))
        });
    }
    debug!(
        requests = plan.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        timed_out,
        "resolution finished"
    );
    answers
}

async fn run(plan: &Plan, attempt_timeout: Duration, sink: &Sink) {
    let aws = Aws::load_for_resolution(attempt_timeout).await;
    tokio::join!(
        backend::ssm::fetch(&aws, &plan.ssm_params, &plan.ssm_paths, sink),
        backend::secrets_manager::fetch(&aws, &plan.secrets, sink),
        backend::s3::fetch(&aws, &plan.s3_objects, sink),
        backend::kms::fetch(&aws, &plan.kms_blobs, sink),
    );
}

/// The one current-thread runtime that AWS work runs on (also used by
/// `push` and `pull`).
pub fn runtime() -> Result<tokio::runtime::Runtime, FetchError> {
    // A multi-thread runtime was measured (bench/): no faster at 50 ms RTT
    // (the work between requests is small and sequential), ~1 ms more CPU.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            FetchError::new(
                FailureKind::Service,
                format!("cannot start the I/O runtime: {e}"),
            )
        })
}
