//! `--init`: stay as the parent of the application, like tini. Every catchable
//! signal except SIGCHLD is forwarded to it (or to its process group), every
//! zombie is reaped, and envseal exits with the application's status.
//!
//! How: all signals are blocked before `fork` and read from a `signalfd`; the
//! child restores the original mask and dispositions, then `execve`s through
//! [`exec::exec`] (PATH lookup, 126/127). The parent drops — and so zeroizes —
//! its copy of the environment as soon as the child exists. When envseal is not
//! PID 1 it becomes a child subreaper, so that orphaned descendants are
//! re-parented to it and reaped too.

use std::ffi::OsString;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::libc;
use nix::sys::signal::{self, SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::unistd::{self, ForkResult, Pid};

use crate::environment::ChildEnv;
use crate::error::Error;
use crate::process::exec;
use crate::process::memfile::{self, MemFiles};

/// How the supervisor behaves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// Put the application in a process group of its own and forward signals
    /// to the whole group (tini's `-g`), so that children of a shell script
    /// receive SIGTERM too (`--init-pgroup`, `ENVSEAL_INIT_PGROUP`).
    pub pgroup: bool,
}

/// Starts `command` as a child with `env` and supervises it. Returns the exit
/// code for envseal: the child's own, or 128+N when signal N killed it.
pub fn run(command: &[OsString], env: ChildEnv, options: Options) -> Result<i32, Error> {
    run_watched(
        command,
        env,
        MemFiles::default(),
        options,
        None::<fn() -> Option<Watcher>>,
    )
}

/// What a watcher (`--watch`) asks the supervisor to do.
pub enum Change {
    /// Stop the application (`Restart::stop_signal`, then SIGKILL after
    /// `Restart::stop_timeout`) and start it again with this environment
    /// (its `?file` files made anew, sealed; the old ones closed first).
    Restart(ChildEnv),
    /// Rewrite the running application's `?file` files in place with the
    /// contents in `env` (a new resolution), then send `signal`.
    Signal { env: ChildEnv, signal: i32 },
}

/// How a restart stops the application.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Restart {
    pub stop_signal: i32,
    pub stop_timeout: Duration,
}

/// The supervisor's side of a watcher running on its own thread: changes
/// arrive on `changes`, announced by a byte on `wake` (so that one `poll`
/// waits for signals and changes alike); each change is acknowledged on
/// `done` once applied, and the watcher waits for that, so that no other
/// thread is busy while the supervisor forks.
pub struct Watcher {
    pub changes: Receiver<Change>,
    pub wake: UnixStream,
    pub done: SyncSender<()>,
    pub restart: Restart,
}

/// [`run`], with a watcher: `start_watcher` is called once the first child
/// runs (`None` from it: no watcher), with every signal blocked on this
/// thread (so the watcher's thread, which inherits the mask, never takes a
/// signal meant for the application). `files` (the first child's `?file`
/// files) stay open until that child has exited.
pub fn run_watched<W: FnOnce() -> Option<Watcher>>(
    command: &[OsString],
    env: ChildEnv,
    files: MemFiles,
    options: Options,
    start_watcher: Option<W>,
) -> Result<i32, Error> {
    if command.is_empty() {
        return Err(Error::Config("no command given".into()));
    }
    let all = SigSet::all();
    let original = all
        .thread_swap_mask(SigmaskHow::SIG_BLOCK)
        .map_err(|e| Error::Supervisor {
            action: "block signals",
            reason: e.to_string(),
        })?;
    let signals = match SignalFd::with_flags(&all, SfdFlags::SFD_CLOEXEC) {
        Ok(fd) => fd,
        Err(e) => {
            let _ = original.thread_set_mask();
            return Err(Error::Supervisor {
                action: "create a signalfd",
                reason: e.to_string(),
            });
        }
    };
    become_subreaper();
    let child = match spawn(command, env, &original, options) {
        Ok(child) => child,
        Err(e) => {
            let _ = original.thread_set_mask();
            return Err(e);
        }
    };
    match start_watcher.and_then(|start| start()) {
        None => supervise(child, &signals, options),
        Some(watcher) => {
            let spawner = Spawner {
                command,
                original: &original,
                options,
            };
            supervise_watched(child, files, &signals, &watcher, &spawner)
        }
    }
}

/// Forks and starts the application; the parent's copy of `env` is dropped
/// (and so zeroized) as soon as the child exists.
fn spawn(
    command: &[OsString],
    env: ChildEnv,
    original: &SigSet,
    options: Options,
) -> Result<Pid, Error> {
    // SAFETY: envseal has a single thread here (the resolution runtime was
    // dropped with its worker threads), or, with --watch, the watcher's
    // thread is parked waiting for this restart to be acknowledged, so the
    // child may allocate before exec.
    let child = match unsafe { unistd::fork() } {
        Err(e) => {
            return Err(Error::Supervisor {
                action: "fork",
                reason: e.to_string(),
            });
        }
        // The signalfd is CLOEXEC: the application does not inherit it.
        Ok(ForkResult::Child) => start_application(command, &env, original, options),
        Ok(ForkResult::Parent { child }) => child,
    };
    // The application has its own copy now: zeroize ours.
    drop(env);
    if options.pgroup {
        // Also from this side, so that a signal forwarded right away finds the
        // group. Fails harmlessly when the child has already exec'd.
        let _ = unistd::setpgid(child, child);
    }
    tracing::debug!(
        pid = child.as_raw(),
        pgroup = options.pgroup,
        "application started"
    );
    Ok(child)
}

/// In the forked child: restore what `execve` should inherit, then exec.
/// Never returns.
fn start_application(
    command: &[OsString],
    env: &ChildEnv,
    original_mask: &SigSet,
    options: Options,
) -> ! {
    if options.pgroup {
        let _ = unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0));
        // Give the new group the terminal, when there is one, so that an
        // interactive application can read it. SIGTTOU is still blocked, so
        // this works from a background group; no terminal is the usual case.
        let _ = unistd::tcsetpgrp(std::io::stdin(), unistd::getpgrp());
    }
    // Rust's runtime ignores SIGPIPE; an application expects the default.
    // Handlers need no reset: execve does that, and envseal installs none.
    let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    // SAFETY: setting the default disposition installs no handler.
    let _ = unsafe { signal::sigaction(Signal::SIGPIPE, &default) };
    let _ = original_mask.thread_set_mask();
    let error = exec::exec(command, env);
    eprintln!("{error}");
    // SAFETY: _exit ends the child without running the parent's exit handlers
    // or flushing buffers that the parent owns.
    unsafe { libc::_exit(error.exit_code()) }
}

/// Becomes the reaper of orphaned descendants; PID 1 already is.
fn become_subreaper() {
    if unistd::getpid().as_raw() == 1 {
        return;
    }
    if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
        tracing::warn!("--init: cannot become a child subreaper ({e}); orphans will be reaped by the system's init");
    }
}

/// Reads signals until the application has exited; forwards each one except
/// SIGCHLD, and reaps after each.
fn supervise(child: Pid, signals: &SignalFd, options: Options) -> Result<i32, Error> {
    loop {
        let signo = match signals.read_signal() {
            Ok(Some(info)) => info.ssi_signo as i32,
            Ok(None) | Err(Errno::EINTR) => continue,
            Err(e) => {
                return Err(Error::SignalsLost {
                    pid: child.as_raw(),
                    reason: e.to_string(),
                })
            }
        };
        if signo != libc::SIGCHLD {
            forward(child, signo, options.pgroup);
        }
        if let Some(code) = reap(child) {
            return Ok(code);
        }
    }
}

/// What starting the application again needs.
struct Spawner<'a> {
    command: &'a [OsString],
    original: &'a SigSet,
    options: Options,
}

/// A restart under way: the stop signal was sent at `since`.
struct Stopping {
    env: ChildEnv,
    since: Instant,
    killed: bool,
}

/// [`supervise`] with a watcher: waits on the signalfd and on the watcher's
/// wake-up at once (never on the network: checks run on the watcher's
/// thread), forwards signals and reaps as without one, and applies each
/// change. When the application exits on its own, envseal exits with its
/// code (a crash is not restarted: that is the orchestrator's job). A stop
/// signal (TERM, INT, QUIT or `--stop-signal`) received during a restart
/// cancels the restart: the application is not started again.
fn supervise_watched(
    mut child: Pid,
    mut files: MemFiles,
    signals: &SignalFd,
    watcher: &Watcher,
    spawner: &Spawner<'_>,
) -> Result<i32, Error> {
    let pgroup = spawner.options.pgroup;
    let restart = watcher.restart;
    let _ = watcher.wake.set_nonblocking(true);
    let mut stopping: Option<Stopping> = None;
    let mut cancelled = false;
    // Until the watcher's end of the wake-up closes (its thread ended).
    let mut watching = true;
    loop {
        let timeout = match &stopping {
            Some(s) if !s.killed => {
                let left = restart.stop_timeout.saturating_sub(s.since.elapsed());
                // Rounded up, so that the wake-up is never early.
                i32::try_from(left.as_millis() + 1).unwrap_or(i32::MAX)
            }
            _ => -1,
        };
        let mut fds = [
            libc::pollfd {
                fd: signals.as_fd().as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                // A negative descriptor is ignored by poll.
                fd: if watching {
                    watcher.wake.as_raw_fd()
                } else {
                    -1
                },
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: poll(2) on two pollfds that live on this stack frame.
        let ready = unsafe { libc::poll(fds.as_mut_ptr(), 2, timeout) };
        if ready < 0 && Errno::last() != Errno::EINTR {
            return Err(Error::SignalsLost {
                pid: child.as_raw(),
                reason: Errno::last().to_string(),
            });
        }
        if fds[0].revents != 0 {
            match signals.read_signal() {
                Ok(Some(info)) => {
                    let signo = info.ssi_signo as i32;
                    if signo != libc::SIGCHLD {
                        forward(child, signo, pgroup);
                        let stops = [libc::SIGTERM, libc::SIGINT, libc::SIGQUIT];
                        if stopping.is_some()
                            && (stops.contains(&signo) || signo == restart.stop_signal)
                        {
                            tracing::info!(
                                signal = signo,
                                "--watch: stop signal received during a restart; the application will not be started again"
                            );
                            cancelled = true;
                        }
                    }
                }
                Ok(None) | Err(Errno::EINTR) | Err(Errno::EAGAIN) => {}
                Err(e) => {
                    return Err(Error::SignalsLost {
                        pid: child.as_raw(),
                        reason: e.to_string(),
                    })
                }
            }
            if let Some(code) = reap(child) {
                match stopping.take() {
                    Some(mut s) if !cancelled => {
                        tracing::debug!(code, "--watch: the application stopped for a restart");
                        // The old files first, so that the new application
                        // does not inherit them.
                        drop(std::mem::take(&mut files));
                        files = memfile::materialise(&mut s.env, true)?;
                        child = spawn(spawner.command, s.env, spawner.original, spawner.options)?;
                        tracing::info!(pid = child.as_raw(), "--watch: application restarted");
                        let _ = watcher.done.try_send(());
                    }
                    _ => return Ok(code),
                }
            }
        }
        if fds[1].revents != 0 {
            let mut buf = [0u8; 64];
            loop {
                match (&watcher.wake).read(&mut buf) {
                    Ok(0) => {
                        tracing::warn!("--watch: the watcher stopped; supervising only");
                        watching = false;
                        break;
                    }
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => break, // WouldBlock: drained
                }
            }
            loop {
                match watcher.changes.try_recv() {
                    Ok(Change::Restart(env)) => {
                        if cancelled {
                            drop(env);
                            continue;
                        }
                        tracing::info!(
                            signal = restart.stop_signal,
                            "--watch: stopping the application for a restart"
                        );
                        forward(child, restart.stop_signal, pgroup);
                        stopping = Some(Stopping {
                            env,
                            since: Instant::now(),
                            killed: false,
                        });
                    }
                    Ok(Change::Signal { mut env, signal }) => {
                        match files.rewrite_from(&mut env) {
                            Ok(()) => {
                                tracing::info!(
                                    signal,
                                    files = files.len(),
                                    "--watch: ?file contents rewritten; signalling the application"
                                );
                                forward(child, signal, pgroup);
                            }
                            Err(e) => {
                                tracing::warn!("--watch: not signalling the application: {e}")
                            }
                        }
                        drop(env);
                        let _ = watcher.done.try_send(());
                    }
                    Err(TryRecvError::Empty) | Err(TryRecvError::Disconnected) => break,
                }
            }
        }
        if let Some(s) = &mut stopping {
            if !s.killed && s.since.elapsed() >= restart.stop_timeout {
                tracing::warn!(
                    timeout_ms = restart.stop_timeout.as_millis() as u64,
                    "--watch: the application did not stop in time; sending SIGKILL"
                );
                forward(child, libc::SIGKILL, pgroup);
                s.killed = true;
            }
        }
    }
}

/// Sends `signo` to the application, or to its process group.
fn forward(child: Pid, signo: i32, pgroup: bool) {
    let result = match Signal::try_from(signo) {
        Ok(signal) if pgroup => signal::killpg(child, signal),
        Ok(signal) => signal::kill(child, signal),
        // nix's `Signal` has no real-time signals (SIGRTMIN..SIGRTMAX, e.g. a
        // STOPSIGNAL of SIGRTMIN+3): send those by number.
        Err(_) => {
            let target = if pgroup {
                -child.as_raw()
            } else {
                child.as_raw()
            };
            // SAFETY: kill(2) with plain integers.
            Errno::result(unsafe { libc::kill(target, signo) }).map(drop)
        }
    };
    match result {
        Ok(()) => tracing::debug!(signal = signo, pgroup, "forwarded"),
        // Gone already (or the group is): its exit is being reaped.
        Err(Errno::ESRCH) => {}
        Err(e) => tracing::warn!(signal = signo, "--init: cannot forward the signal: {e}"),
    }
}

/// Reaps every child that has exited (the application, and orphans that were
/// re-parented to envseal). Returns the exit code once the application is
/// among them.
fn reap(child: Pid) -> Option<i32> {
    let mut code = None;
    loop {
        let mut status = 0;
        // Not nix's `waitpid`: its `WaitStatus` cannot hold a death by a
        // real-time signal, and the status of a reaped child is lost then.
        // SAFETY: waitpid(2) writing into a local integer.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        match pid {
            0 => break, // children left, none exited
            -1 if Errno::last() == Errno::EINTR => continue,
            -1 => break, // ECHILD: nothing left
            pid if pid == child.as_raw() => {
                code = Some(exit_code(status));
                tracing::debug!(pid, code, "application exited");
            }
            pid => tracing::debug!(pid, "reaped an orphaned process"),
        }
    }
    code
}

/// The shell's convention: the exit status, or 128+N for death by signal N.
fn exit_code(status: i32) -> i32 {
    if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        libc::WEXITSTATUS(status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_shell_convention() {
        // status words as the kernel builds them
        assert_eq!(exit_code(3 << 8), 3);
        assert_eq!(exit_code(0), 0);
        assert_eq!(exit_code(libc::SIGKILL), 137);
        assert_eq!(exit_code(libc::SIGTERM | 0x80), 143); // with core dump bit
        assert_eq!(exit_code(libc::SIGRTMIN() + 3), 128 + libc::SIGRTMIN() + 3);
    }
}
