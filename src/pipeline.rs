//! The steps every resolving command shares: configuration → plan → fetch →
//! assemble ([`resolve`]), and the one way AWS work is run: a current-thread
//! runtime under one deadline ([`with_deadline`]).
//!
//! [`fetch`] waits the splay, loads the AWS configuration (only then, and
//! only if there is something to fetch), drives every backend concurrently
//! and enforces the overall deadline; backends retry until then
//! ([`crate::backend::retry`]). Whatever has not answered when the deadline
//! passes is reported as timed out, with what its attempts met ("throttled
//! (ThrottlingException) on all 14 attempts").

use std::collections::HashMap;
use std::ffi::OsString;
use std::future::Future;
use std::time::{Duration, Instant};

use tracing::debug;

use crate::backend::versions::{self, Check, RoleCredentials};
use crate::backend::{self, sink::Sink};
use crate::config::{self, AwsSettings, Config, FetchOptions, Flags};
use crate::environment::{self, Outcome};
use crate::error::{Error, FailureKind, FetchError};
use crate::plan::{self, Answer, Plan, Request};

/// Configuration, references, fetch, assembly: the child's environment and
/// every failure. Starts logging first, so that everything after it is logged.
pub fn resolve(flags: &Flags, env: Vec<(OsString, OsString)>) -> Result<(Config, Outcome), Error> {
    let config = configure(flags, &env)?;
    let (inherited, plan) = plan_of(&config, env);
    tracing::debug!(
        references = inherited.refs.len(),
        templates = inherited.templates.len(),
        bundles = config.sources.len(),
        requests = plan.len(),
        "planned"
    );
    let answers = fetch(&plan, &config.fetch_options(), &config.aws);
    let outcome = environment::assemble(inherited, &config.sources, config.collision, &answers);
    Ok((config, outcome))
}

/// [`resolve`] for `--watch`: the versions AWS holds are checked first
/// (after the splay, under the same deadline), so that a change made while
/// the values are read is seen by the first check, never lost.
pub fn resolve_watched(
    flags: &Flags,
    env: Vec<(OsString, OsString)>,
) -> Result<(Config, Outcome, Check), Error> {
    let config = configure(flags, &env)?;
    let mut options = config.fetch_options();
    let splay =
        crate::backend::retry::full_jitter(options.splay, crate::backend::retry::unit_random());
    if !splay.is_zero() {
        debug!(splay_ms = splay.as_millis() as u64, "splay");
        std::thread::sleep(splay);
    }
    options.splay = Duration::ZERO;
    let started = Instant::now();
    let plan = plan_of(&config, env.clone()).1;
    let baseline = check_versions(&plan, &options, &config.aws, &RoleCredentials::default());
    options.deadline = options.deadline.saturating_sub(started.elapsed());
    let outcome = resolve_again(&config, env, &options);
    Ok((config, outcome, baseline))
}

/// Logging started, then the configuration. Malformed sources are listed
/// with the malformed per-variable references of the same run, so that one
/// run names every mistake.
fn configure(flags: &Flags, env: &[(OsString, OsString)]) -> Result<Config, Error> {
    crate::log::start(flags, env)?;
    let ignore = config::ignore_patterns(flags, env)?;
    match Config::new(flags, env) {
        Err(Error::Resolution(mut failures)) => {
            failures.extend(plan::split_inherited(env.to_vec(), &ignore).failures);
            Err(Error::Resolution(failures))
        }
        other => other,
    }
}

/// What a configuration and an environment ask to fetch: the one place a
/// resolution is planned ([`resolve`], and `--watch`'s [`resolve_again`]).
pub fn plan_of(config: &Config, env: Vec<(OsString, OsString)>) -> (plan::Inherited, Plan) {
    let mut inherited = plan::split_inherited(env, &config.ignore);
    plan::default_role(&mut inherited.refs, config.role.as_ref());
    plan::default_template_role(&mut inherited.templates, config.role.as_ref());
    let mut requests = plan::requests(&inherited.refs, &config.sources);
    requests.extend(plan::template_requests(&inherited.templates));
    let plan = Plan::new(&requests);
    (inherited, plan)
}

/// Fetch and assemble again, exactly as the first time (same precedence,
/// collisions, `ENVSEAL_*` dropped), with `options` (no splay for a
/// re-resolve).
pub fn resolve_again(
    config: &Config,
    env: Vec<(OsString, OsString)>,
    options: &FetchOptions,
) -> Outcome {
    let (inherited, plan) = plan_of(config, env);
    let answers = fetch(&plan, options, &config.aws);
    environment::assemble(inherited, &config.sources, config.collision, &answers)
}

/// One `--watch` check of `plan` under the deadline: the version of every
/// request (those that did not answer in time: "cannot tell").
pub fn check_versions(
    plan: &Plan,
    options: &FetchOptions,
    aws: &AwsSettings,
    roles: &RoleCredentials,
) -> Check {
    if plan.is_empty() {
        return Check::default();
    }
    let deadline = options.deadline;
    match with_deadline(deadline, versions::check(plan, options, aws, roles)) {
        Ok(Some(check)) => check,
        Ok(None) => Check {
            seen: plan
                .requests()
                .into_iter()
                .map(|r| {
                    let e = FetchError::new(FailureKind::Timeout, deadline_passed(deadline));
                    (r, Err(e))
                })
                .collect(),
            calls: 0,
        },
        Err(e) => Check {
            seen: plan
                .requests()
                .into_iter()
                .map(|r| (r, Err(e.clone())))
                .collect(),
            calls: 0,
        },
    }
}

/// Runs a plan: one answer per request, a timeout for whatever did not
/// answer in time.
pub fn fetch(plan: &Plan, options: &FetchOptions, aws: &AwsSettings) -> HashMap<Request, Answer> {
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
    let timed_out = match with_deadline(deadline, backend::fetch(plan, options, aws, &sink)) {
        Ok(finished) => finished.is_none(),
        Err(err) => {
            return plan
                .requests()
                .into_iter()
                .map(|r| (r, Err(err.clone())))
                .collect();
        }
    };
    let (mut answers, progress) = sink.into_inner();
    for request in plan.requests() {
        let progress = progress.get(&request);
        let why = progress.and_then(|p| p.describe());
        // A read through a role, past its AssumeRole: which role.
        let through = request
            .role()
            .filter(|_| progress.map_or(true, |p| p.step.is_none()))
            .map(|role| format!(" (read through {role})"));
        answers.entry(request).or_insert_with(|| {
            let mut reason = if timed_out {
                deadline_passed(deadline)
            } else {
                "no answer".to_owned()
            };
            if let Some(why) = why {
                reason = format!("{reason}: {why}");
            }
            reason.extend(through);
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

/// "no answer within the 30s deadline".
pub fn deadline_passed(deadline: Duration) -> String {
    format!(
        "no answer within the {} deadline",
        config::format_duration(deadline)
    )
}

/// Runs `work` on a current-thread runtime until it finishes (`Some`) or
/// `deadline` passes (`None`). Every connection is closed before this
/// returns.
///
/// After a timeout, a blocking task may still be running (a DNS lookup on
/// the resolver's thread pool waits out the resolver's own timeout):
/// dropping the runtime would wait for it and overrun the deadline, so it is
/// left behind instead. Nothing is exec'd or forked then, since a timeout
/// fails the command.
pub fn with_deadline<T>(
    deadline: Duration,
    work: impl Future<Output = T>,
) -> Result<Option<T>, FetchError> {
    let runtime = runtime()?;
    let result = runtime.block_on(async { tokio::time::timeout(deadline, work).await.ok() });
    if result.is_none() {
        runtime.shutdown_background();
    } else {
        drop(runtime);
    }
    Ok(result)
}

/// `work` under `deadline` (`push`, `pull`): its own result, or a timeout.
pub fn within<T>(
    deadline: Duration,
    work: impl Future<Output = Result<T, FetchError>>,
) -> Result<T, FetchError> {
    with_deadline(deadline, work)?.unwrap_or_else(|| {
        Err(FetchError::new(
            FailureKind::Timeout,
            deadline_passed(deadline),
        ))
    })
}

/// The one current-thread runtime that AWS work runs on.
fn runtime() -> Result<tokio::runtime::Runtime, FetchError> {
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
