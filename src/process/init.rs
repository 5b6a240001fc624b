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

use nix::errno::Errno;
use nix::libc;
use nix::sys::signal::{self, SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::unistd::{self, ForkResult, Pid};

use crate::environment::ChildEnv;
use crate::error::Error;
use crate::process::exec;

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
    // SAFETY: envseal has a single thread here (the resolution runtime was
    // dropped with its worker threads), so the child may allocate before exec.
    let child = match unsafe { unistd::fork() } {
        Err(e) => {
            let _ = original.thread_set_mask();
            return Err(Error::Supervisor {
                action: "fork",
                reason: e.to_string(),
            });
        }
        Ok(ForkResult::Child) => {
            drop(signals);
            start_application(command, &env, &original, options)
        }
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
    supervise(child, &signals, options)
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
