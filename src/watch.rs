//! `--watch INTERVAL`: rotation. On a thread of its own (the supervisor in
//! [`crate::process::init`] keeps forwarding signals and reaping meanwhile), every
//! INTERVAL ±10 % the versions AWS holds are checked with the cheapest calls
//! ([`crate::backend::versions`]) against those seen before the application
//! started. On a difference everything is resolved again, all or nothing,
//! exactly as the first time; a failed re-resolve keeps the running
//! application (the failed references are logged by name) and is tried again
//! at the next check. When values did change (compared by SHA-256 in memory,
//! never logged), the changed variables are logged by name and
//! `--on-change` is applied: a restart (new sealed `?file` files for the
//! new application), or a signal (the `?file` files, made unsealed,
//! rewritten in place first).

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::sync::mpsc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tracing::{debug, info, warn};

use crate::backend::versions::{Check, RoleCredentials, Seen, Version};
use crate::config::{Config, FetchOptions, OnChange, WatchConfig};
use crate::environment::{ChildEnv, Value};
use crate::error::Error;
use crate::pipeline;
use crate::plan::{Plan, Request};
use crate::process::init::{self, Change, Restart, Watcher};
use crate::process::memfile;

/// Starts `command` under `--init` supervision and watches what `env`
/// (the inherited environment, `ENVSEAL_*` included) refers to.
/// `baseline` is the check made before the first resolution.
pub fn run(
    command: &[OsString],
    config: Config,
    watch: WatchConfig,
    env: Vec<(OsString, OsString)>,
    mut child: ChildEnv,
    baseline: Check,
) -> Result<i32, Error> {
    let options = init::Options {
        pgroup: config.init_pgroup,
    };
    let (_, plan) = pipeline::plan_of(&config, env.clone());
    // Fingerprints of the values, file contents included (not their paths).
    let prints = fingerprints(&child);
    // `?file` files: sealed, unless they are to be rewritten in place.
    let sealed = !matches!(watch.on_change, OnChange::Signal(_));
    let files = memfile::materialise(&mut child, sealed)?;
    if plan.len() == plan.kms_blobs.len() {
        warn!("--watch: nothing to watch (no reference that can change); supervising only");
        let code = init::run(command, child, options);
        drop(files);
        return code;
    }
    info!(
        interval_ms = watch.interval.as_millis() as u64,
        requests = plan.len(),
        calls_per_check = crate::backend::versions::planned_calls(&plan),
        "--watch: watching"
    );
    let state = State {
        prints,
        versions: baseline.seen,
    };
    let start = move || {
        let (changes_tx, changes) = mpsc::channel();
        let (done, done_rx) = mpsc::sync_channel(1);
        let (wake, wake_tx) = match UnixStream::pair() {
            Ok(pair) => pair,
            Err(e) => {
                warn!("--watch: cannot create the wake-up socket ({e}); not watching");
                return None;
            }
        };
        let link = Link {
            changes: changes_tx,
            wake: wake_tx,
            done: done_rx,
        };
        let spawned = std::thread::Builder::new()
            .name("envseal-watch".into())
            .spawn(move || watch_loop(config, watch, env, plan, state, link));
        if let Err(e) = spawned {
            warn!("--watch: cannot start the watcher thread ({e}); not watching");
            return None;
        }
        Some(Watcher {
            changes,
            wake,
            done,
            restart: restart_of(&watch),
        })
    };
    init::run_watched(command, child, files, options, Some(start))
}

fn restart_of(watch: &WatchConfig) -> Restart {
    Restart {
        stop_signal: watch.stop_signal,
        stop_timeout: watch.stop_timeout,
    }
}

/// The watcher's ends of the supervisor's [`Watcher`].
struct Link {
    changes: mpsc::Sender<Change>,
    wake: UnixStream,
    done: mpsc::Receiver<()>,
}

impl Link {
    /// Hands a change to the supervisor and waits until it is applied
    /// (`false`: the supervisor is gone).
    fn apply(&self, change: Change) -> bool {
        use std::io::Write;
        if self.changes.send(change).is_err() {
            return false;
        }
        let _ = (&self.wake).write_all(&[1]);
        self.done.recv().is_ok()
    }
}

/// What the running application was started with.
struct State {
    /// Per variable, the SHA-256 of its value (in memory only).
    prints: BTreeMap<OsString, [u8; 32]>,
    /// The versions seen before the values the application has were read.
    versions: HashMap<Request, Seen>,
}

fn watch_loop(
    config: Config,
    watch: WatchConfig,
    env: Vec<(OsString, OsString)>,
    plan: Plan,
    mut state: State,
    link: Link,
) {
    // Each check and re-resolve has the whole --timeout; no splay.
    let options = FetchOptions {
        splay: Duration::ZERO,
        ..config.fetch_options()
    };
    // A failed re-resolve is tried again at every check until one succeeds,
    // whatever the versions say then (a parameter deleted and created again
    // can be back at version 1).
    let mut retry = false;
    // Roles are assumed again only when their credentials near expiry.
    let roles = RoleCredentials::default();
    loop {
        std::thread::sleep(jittered(
            watch.interval,
            crate::backend::retry::unit_random(),
        ));
        let check = pipeline::check_versions(&plan, &options, &config.aws, &roles);
        for (request, seen) in &check.seen {
            if let Err(e) = seen {
                warn!(
                    reference = %request.describe(),
                    reason = %e.reason,
                    "--watch: cannot tell whether this changed; checking again next time"
                );
            }
        }
        let changed = changed_requests(&state.versions, &check.seen);
        debug!(
            calls = check.calls,
            requests = plan.len(),
            changed = changed.len(),
            "--watch: versions checked"
        );
        if changed.is_empty() && !retry {
            continue;
        }
        if changed.is_empty() {
            info!("--watch: resolving again after a failure");
        } else {
            info!(
                references = %changed.iter().map(Request::describe).collect::<Vec<_>>().join(", "),
                "--watch: a secret changed; resolving again"
            );
        }
        let outcome = pipeline::resolve_again(&config, env.clone(), &options);
        // What the application has, or is about to get, is as new as these
        // versions (read before the values); what could not be checked
        // keeps the old one.
        for (request, seen) in check.seen {
            if seen.is_ok() {
                state.versions.insert(request, seen);
            }
        }
        let child = match outcome.into_result() {
            Ok(child) => {
                retry = false;
                child
            }
            Err(failures) => {
                retry = true;
                for f in &failures {
                    warn!(
                        variable = %f.variable,
                        reference = %f.reference,
                        reason = %f.reason,
                        "--watch: resolving again failed; the application keeps running, retrying at the next check"
                    );
                }
                continue;
            }
        };
        let prints = fingerprints(&child);
        let names = changed_variables(&state.prints, &prints);
        if names.is_empty() {
            info!("--watch: the versions changed, the values did not; nothing to do");
            continue;
        }
        info!(
            variables = %names.join(", "),
            "--watch: changed variables"
        );
        state.prints = prints;
        let change = match watch.on_change {
            OnChange::Restart => Change::Restart(child),
            OnChange::Signal(signo) => {
                // The environment of a running process cannot change: only
                // what it reads again (a ?file) can be new to it.
                let unreachable: Vec<&String> = names
                    .iter()
                    .filter(|n| {
                        !child.entries().iter().any(|(k, v)| {
                            k.as_os_str() == n.as_str() && matches!(v, Value::File { .. })
                        })
                    })
                    .collect();
                if !unreachable.is_empty() {
                    warn!(
                        variables = %unreachable.iter().map(|n| n.as_str()).collect::<Vec<_>>().join(", "),
                        "--watch: changed, but not ?file: the running application keeps the old values until it is restarted"
                    );
                }
                Change::Signal {
                    env: child,
                    signal: signo,
                }
            }
        };
        if !link.apply(change) {
            return;
        }
    }
}

/// INTERVAL ±10 %, `unit` in [0, 1).
pub fn jittered(interval: Duration, unit: f64) -> Duration {
    interval.mul_f64(0.9 + 0.2 * unit.clamp(0.0, 1.0))
}

/// The requests whose version differs from what the application has: seen
/// now as another version, or gone; a request whose check failed is not a
/// change (it is checked again next time); one whose earlier check failed
/// is (the values are compared after the re-resolve).
fn changed_requests(before: &HashMap<Request, Seen>, now: &HashMap<Request, Seen>) -> Vec<Request> {
    let mut changed: Vec<Request> = now
        .iter()
        .filter(|(r, _)| !matches!(r, Request::Kms(_)))
        .filter_map(|(request, seen)| {
            let seen: &Version = seen.as_ref().ok()?;
            match before.get(request) {
                Some(Ok(old)) if old == seen => None,
                _ => Some(request.clone()),
            }
        })
        .collect();
    changed.sort();
    changed
}

/// SHA-256 of every variable's value, by name.
fn fingerprints(env: &ChildEnv) -> BTreeMap<OsString, [u8; 32]> {
    env.entries()
        .iter()
        .map(|(name, value)| {
            let bytes: &[u8] = match value {
                Value::Plain(v) => v.as_bytes(),
                Value::Resolved { value, .. } => value.expose().as_bytes(),
                Value::File { contents, .. } => contents.expose(),
            };
            (name.clone(), Sha256::digest(bytes).into())
        })
        .collect()
}

/// Names whose value differs, was added or was removed.
fn changed_variables(
    before: &BTreeMap<OsString, [u8; 32]>,
    after: &BTreeMap<OsString, [u8; 32]>,
) -> Vec<String> {
    let mut names: Vec<String> = before
        .keys()
        .chain(after.keys())
        .filter(|k| before.get(*k) != after.get(*k))
        .map(|k| k.to_string_lossy().into_owned())
        .collect();
    names.sort();
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{FailureKind, FetchError};
    use crate::reference::SsmParam;

    fn param(name: &str) -> Request {
        Request::SsmParam(SsmParam {
            name: name.into(),
            selector: None,
            region: None,
            partition: None,
            account: None,
            role: None,
        })
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        let i = Duration::from_secs(10);
        assert_eq!(jittered(i, 0.0), Duration::from_secs(9));
        assert_eq!(jittered(i, 0.5), Duration::from_secs(10));
        assert!(jittered(i, 0.999_999) <= Duration::from_secs(11));
        assert!(jittered(i, 0.999_999) > Duration::from_millis(10_999));
    }

    #[test]
    fn what_counts_as_a_change() {
        let id = |s: &str| Ok(Version::Id(s.into()));
        let failed = || Err(FetchError::new(FailureKind::Timeout, "no answer"));
        let before: HashMap<Request, Seen> = [
            (param("/same"), id("1")),
            (param("/new"), id("1")),
            (param("/gone"), id("1")),
            (param("/flaky"), id("1")),
            (param("/unknown"), failed()),
        ]
        .into_iter()
        .collect();
        let now: HashMap<Request, Seen> = [
            (param("/same"), id("1")),
            (param("/new"), id("2")),
            (param("/gone"), Ok(Version::Missing)),
            (param("/flaky"), failed()),
            (param("/unknown"), id("1")),
        ]
        .into_iter()
        .collect();
        let changed: Vec<String> = changed_requests(&before, &now)
            .iter()
            .map(Request::describe)
            .collect();
        assert_eq!(changed, ["ssm:/gone", "ssm:/new", "ssm:/unknown"]);
        assert!(changed_requests(&before, &before)
            .iter()
            .all(|r| r == &param("/unknown")));
    }

    #[test]
    fn changed_variables_by_name() {
        let p = |pairs: &[(&str, &[u8])]| -> BTreeMap<OsString, [u8; 32]> {
            pairs
                .iter()
                .map(|(k, v)| (OsString::from(k), Sha256::digest(v).into()))
                .collect()
        };
        let before = p(&[("A", b"1"), ("B", b"2"), ("C", b"3")]);
        let after = p(&[("A", b"1"), ("B", b"x"), ("D", b"4")]);
        assert_eq!(changed_variables(&before, &after), ["B", "C", "D"]);
        assert!(changed_variables(&before, &before).is_empty());
    }
}
