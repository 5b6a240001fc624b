//! The process side, driven through the real binary: `exec` (no AWS work
//! without references, exit codes 126/127, PATH lookup and arguments, the
//! PID kept, `ENVSEAL_*` removed from the child), `exec --init` (the
//! tini-like supervisor) and `install`. The applications are small C
//! programs from `tests/apps/`.

mod support;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::json;
use support::{c_app, envseal_bare, run, Moto};

// --------------------------------------------------------------------- exec

#[test]
fn no_references_means_no_aws_at_all() {
    // No region, no credentials, an endpoint that refuses connections:
    // with nothing to resolve none of it is consulted.
    let out = run(envseal_bare()
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
        .env("PLAIN", "value")
        .args(["exec", "--log-level", "trace", "--", "/usr/bin/env"]));
    out.expect_code(0);
    assert_eq!(out.env()["PLAIN"], "value");
    assert!(
        !out.stderr.contains("aws_config"),
        "SDK was loaded: {}",
        out.stderr
    );
}

/// The same, seen from the system calls: between envseal's start and the
/// application's `execve`, no socket, no connection, and no AWS
/// configuration file opened (a config load would read `~/.aws/config`,
/// which exists here). Also: a listener on the configured endpoint gets no
/// connection.
#[test]
fn no_references_means_no_socket_and_no_config_file() {
    let home = std::env::temp_dir().join(format!("envseal-home-{}", std::process::id()));
    std::fs::create_dir_all(home.join(".aws")).unwrap();
    std::fs::write(home.join(".aws/config"), "[default]\nregion = us-east-1\n").unwrap();
    std::fs::write(home.join(".aws/credentials"), "[default]\n").unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let log = home.join("strace.log");
    let out = run(std::process::Command::new("strace")
        .env_clear()
        .env("HOME", &home)
        .env("AWS_ENDPOINT_URL", &endpoint)
        .env("PLAIN", "value")
        .args(["-f", "-qq", "-o"])
        .arg(&log)
        .args(["-e", "trace=socket,connect,open,openat,execve", "--"])
        .arg(env!("CARGO_BIN_EXE_envseal"))
        .args(["exec", "--", "/usr/bin/env"]));
    out.expect_code(0);
    assert_eq!(out.env()["PLAIN"], "value");
    let trace = std::fs::read_to_string(&log)
        .expect("no strace log (strace: apt-get install strace; scripts/test installs it)");
    let lines: Vec<&str> = trace.lines().collect();
    let execs: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].contains("execve(") && !lines[i].contains("= -1"))
        .collect();
    assert!(execs.len() >= 2, "envseal and the app: {trace}");
    let envseal_part = &lines[execs[0]..execs[1]];
    for line in envseal_part {
        assert!(
            !line.contains("socket(") && !line.contains("connect("),
            "network work without references: {line}"
        );
        assert!(!line.contains(".aws"), "AWS configuration read: {line}");
    }
    assert!(listener.accept().is_err(), "the endpoint got a connection");
    std::fs::remove_dir_all(&home).unwrap();
}

#[test]
fn command_not_found_is_127_and_not_executable_is_126() {
    let out = run(envseal_bare().args(["exec", "--", "no-such-command-envseal"]));
    out.expect_code(127);
    assert!(out.stderr.contains("no-such-command-envseal"));
    let dir = std::env::temp_dir().join(format!("envseal-126-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("notexec");
    std::fs::write(&file, "#!/bin/sh\necho hi\n").unwrap();
    let out = run(envseal_bare().arg("exec").arg("--").arg(&file));
    out.expect_code(126);
    // PATH lookup finds it but cannot run it: 126 as well
    let out = run(envseal_bare()
        .env("PATH", &dir)
        .args(["exec", "--", "notexec"]));
    out.expect_code(126);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn path_lookup_and_arguments_reach_the_command() {
    let out =
        run(envseal_bare().args(["exec", "--", "sh", "-c", "echo \"$0|$1\"", "a b", "--flag"]));
    out.expect_code(0);
    assert_eq!(out.stdout.trim(), "a b|--flag");
}

#[test]
fn exec_keeps_the_pid() {
    let child = envseal_bare()
        .args(["exec", "--", "sh", "-c", "echo $$"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), pid.to_string());
}

#[test]
fn envseal_variables_are_not_passed_to_the_child() {
    let moto = Moto::start();
    moto.call(
        "ssm",
        "put_parameter",
        serde_json::json!({"Name": "/e/x", "Value": "1", "Type": "String"}),
    );
    let out = run(moto
        .envseal()
        .env("ENVSEAL_FROM", "ssm:/e/")
        .env("ENVSEAL_TIMEOUT", "10s")
        .env("ENVSEAL_LOG", "warn")
        .env("ENVSEAL_LOG_FORMAT", "text")
        .env("ENVSEAL_COLLISION", "override")
        .env("ENVSEAL_UNKNOWN_THING", "x")
        .args(["exec", "--", "/usr/bin/env"]));
    out.expect_code(0);
    let env = out.env();
    assert_eq!(env["X"], "1");
    assert!(env.keys().all(|k| !k.starts_with("ENVSEAL_")), "{env:?}");
}

// --------------------------------------------------------------------- init

const WAIT: Duration = Duration::from_secs(20);

/// A process whose stdout is read line by line while it runs.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    /// Every stdout line so far.
    seen: Vec<String>,
    /// Lines that no `wait_line` has returned yet.
    unmatched: Vec<String>,
    stderr: mpsc::Receiver<String>,
}

impl Running {
    fn spawn(cmd: &mut Command) -> Running {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {cmd:?}: {e}"));
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let (etx, stderr) = mpsc::channel();
        let mut err = child.stderr.take().unwrap();
        thread::spawn(move || {
            let mut text = String::new();
            let _ = err.read_to_string(&mut text);
            let _ = etx.send(text);
        });
        Running {
            child,
            lines,
            seen: Vec::new(),
            unmatched: Vec::new(),
            stderr,
        }
    }

    fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    /// The first line not yet returned for which `wanted` holds, waiting for
    /// it if need be (lines arrive in any order from several processes).
    fn wait_line(&mut self, wanted: impl Fn(&str) -> bool) -> String {
        if let Some(i) = self.unmatched.iter().position(|l| wanted(l)) {
            return self.unmatched.remove(i);
        }
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if wanted(&line) {
                        return line;
                    }
                    self.unmatched.push(line);
                }
                Err(_) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    panic!(
                        "no such line within {WAIT:?}; lines: {:?}\nstderr: {}",
                        self.seen,
                        self.stderr.recv_timeout(WAIT).unwrap_or_default()
                    );
                }
            }
        }
    }

    /// Waits for the exit; returns the code and every stdout line.
    fn finish(mut self) -> (Option<i32>, Vec<String>, String) {
        let deadline = Instant::now() + WAIT;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("did not exit within {WAIT:?}; lines: {:?}", self.seen);
            }
            thread::sleep(Duration::from_millis(10));
        };
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.seen.push(line);
        }
        let stderr = self.stderr.recv_timeout(WAIT).unwrap_or_default();
        (status.code(), self.seen, stderr)
    }
}

fn signal_app() -> PathBuf {
    c_app("signals", false)
}

/// `envseal exec --init -- ARGS…` with a cleared environment.
fn init(args: &[&str]) -> Command {
    let mut cmd = envseal_bare();
    cmd.args(["exec", "--init", "--"]).args(args);
    cmd
}

/// `ready PID PGID` → (PID, PGID)
fn ready_ids(line: &str) -> (i32, i32) {
    let mut words = line.rsplit(' ');
    let pgid = words.next().unwrap().parse().unwrap();
    let pid = words.next().unwrap().parse().unwrap();
    (pid, pgid)
}

fn pgid_of(pid: i32) -> i32 {
    nix::unistd::getpgid(Some(Pid::from_raw(pid)))
        .unwrap()
        .as_raw()
}

#[test]
fn init_passes_exit_codes_through() {
    for code in [0, 1, 3, 42, 255] {
        let out = run(&mut init(&["sh", "-c", &format!("exit {code}")]));
        out.expect_code(code);
    }
    // ENVSEAL_INIT=1 is the same as --init
    let out = run(envseal_bare()
        .env("ENVSEAL_INIT", "1")
        .args(["exec", "--", "sh", "-c", "exit 9"]));
    out.expect_code(9);
}

#[test]
fn init_keeps_envseal_as_the_parent() {
    let child = init(&["sh", "-c", "echo $PPID"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), pid.to_string());
}

#[test]
fn init_child_killed_by_a_signal_gives_128_plus_n() {
    let out = run(&mut init(&["sh", "-c", "kill -KILL $$"]));
    assert_eq!(out.signal, None, "envseal itself was killed");
    out.expect_code(137);
    let out = run(&mut init(&["sh", "-c", "kill -TERM $$"]));
    out.expect_code(143);
}

#[test]
fn init_exec_failures_are_127_and_126() {
    let out = run(&mut init(&["no-such-command-envseal"]));
    out.expect_code(127);
    assert!(
        out.stderr.contains("no-such-command-envseal"),
        "{}",
        out.stderr
    );
    let out = run(&mut init(&["/etc/passwd"]));
    out.expect_code(126);
}

#[test]
fn init_forwards_term_int_and_hup() {
    let app = signal_app();
    for signal in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        let n = signal as i32;
        let mut p = Running::spawn(&mut init(&[app.to_str().unwrap(), &n.to_string()]));
        p.wait_line(|l| l.starts_with("ready "));
        kill(p.pid(), signal).unwrap();
        p.wait_line(|l| l == format!("got {n}"));
        let (code, _, stderr) = p.finish();
        assert_eq!(code, Some(100 + n), "{signal}: {stderr}");
    }
}

#[test]
fn init_forwards_every_catchable_signal_but_sigchld() {
    let app = signal_app();
    let mut p = Running::spawn(&mut init(&[app.to_str().unwrap()]));
    p.wait_line(|l| l.starts_with("ready "));
    let rtmin3 = nix::libc::SIGRTMIN() + 3; // a common STOPSIGNAL for systemd images
    for n in [
        Signal::SIGUSR1 as i32,
        Signal::SIGWINCH as i32,
        Signal::SIGQUIT as i32,
        Signal::SIGPIPE as i32,
        rtmin3,
    ] {
        // SAFETY: kill(2) with plain integers (nix cannot name real-time signals).
        assert_eq!(unsafe { nix::libc::kill(p.pid().as_raw(), n) }, 0);
        p.wait_line(|l| l == format!("got {n}"));
    }
    // The marker after SIGCHLD is a real-time signal: those are delivered
    // after every pending standard signal, so a forwarded SIGCHLD would be
    // reported before the marker.
    kill(p.pid(), Signal::SIGCHLD).unwrap();
    let marker = nix::libc::SIGRTMIN() + 4;
    // SAFETY: kill(2) with plain integers.
    assert_eq!(unsafe { nix::libc::kill(p.pid().as_raw(), marker) }, 0);
    p.wait_line(|l| l == format!("got {marker}"));
    kill(p.pid(), Signal::SIGTERM).unwrap();
    let (code, lines, _) = p.finish();
    assert_eq!(code, Some(115));
    assert!(
        !lines.contains(&"got 17".to_owned()),
        "SIGCHLD was forwarded: {lines:?}"
    );
}

#[test]
fn init_signals_only_the_child_by_default() {
    let app = signal_app();
    let mut p = Running::spawn(&mut init(&[app.to_str().unwrap(), "--fork"]));
    let (app_pid, app_pgid) = ready_ids(&p.wait_line(|l| l.starts_with("ready ")));
    p.wait_line(|l| l.starts_with("grand ready "));
    assert_eq!(app_pgid, pgid_of(p.pid().as_raw()), "same group as envseal");
    assert_ne!(app_pid, app_pgid);
    kill(p.pid(), Signal::SIGTERM).unwrap();
    let (code, lines, _) = p.finish();
    assert_eq!(code, Some(115));
    assert!(lines.contains(&"got 15".to_owned()), "{lines:?}");
    assert!(!lines.contains(&"grand got 15".to_owned()), "{lines:?}");
}

#[test]
fn init_pgroup_signals_the_whole_group() {
    let app = signal_app();
    assert_group_signalled(
        init(&[app.to_str().unwrap(), "--fork"]).env("ENVSEAL_INIT_PGROUP", "1"),
    );
}

#[test]
fn init_pgroup_flag_implies_init_and_signals_the_whole_group() {
    let app = signal_app();
    let mut cmd = envseal_bare();
    cmd.args(["exec", "--init-pgroup", "--"])
        .arg(&app)
        .arg("--fork");
    assert_group_signalled(&mut cmd);
}

/// Runs `signals --fork` under `cmd`; SIGTERM to envseal must reach both
/// processes of the application's own group.
fn assert_group_signalled(cmd: &mut Command) {
    let mut p = Running::spawn(cmd);
    let (app_pid, app_pgid) = ready_ids(&p.wait_line(|l| l.starts_with("ready ")));
    let (_, grand_pgid) = ready_ids(&p.wait_line(|l| l.starts_with("grand ready ")));
    assert_eq!(app_pid, app_pgid, "the application leads its own group");
    assert_eq!(grand_pgid, app_pid);
    kill(p.pid(), Signal::SIGTERM).unwrap();
    let (code, lines, stderr) = p.finish();
    assert_eq!(code, Some(115), "{stderr}");
    assert!(lines.contains(&"got 15".to_owned()), "{lines:?}");
    assert!(lines.contains(&"grand got 15".to_owned()), "{lines:?}");
}

#[test]
fn init_pgroup_variable_is_checked() {
    let out = run(init(&["true"]).env("ENVSEAL_INIT_PGROUP", "maybe"));
    out.expect_code(111);
    assert!(out.stderr.contains("ENVSEAL_INIT_PGROUP"), "{}", out.stderr);
}

/// A shell script that orphans a short-lived `sleep` (its parent exits at
/// once), prints the orphan's parent, waits past the orphan's end and says
/// whether it is gone (reaped) or still there (a zombie).
///
/// The orphan is re-parented when its parent exits, before `$(…)` returns.
/// Whether it is reaped is not decided by a fixed sleep: the script polls
/// (every 50 ms) until /proc/$g is gone, and gives up after 10 s, or once it
/// has been a zombie for 2 s, reporting its state.
const ORPHAN_SCRIPT: &str = r#"
g=$(sh -c 'sleep 0.3 >/dev/null 2>&1 & echo $!')
echo "orphan-ppid $(cut -d' ' -f4 /proc/$g/stat)"
i=0; z=0
while [ -e /proc/$g ] && [ $i -lt 200 ] && [ $z -lt 40 ]; do
  [ "$(cut -d' ' -f3 /proc/$g/stat 2>/dev/null)" = Z ] && z=$((z + 1))
  sleep 0.05; i=$((i + 1))
done
if [ -e /proc/$g ]; then echo "orphan-state $(cut -d' ' -f3 /proc/$g/stat)"; else echo orphan-gone; fi
"#;

#[test]
fn init_reaps_orphans_as_a_subreaper() {
    let mut p = Running::spawn(&mut init(&["sh", "-c", ORPHAN_SCRIPT]));
    let ppid = p.wait_line(|l| l.starts_with("orphan-ppid "));
    assert_eq!(
        ppid,
        format!("orphan-ppid {}", p.pid()),
        "the orphan was not re-parented to envseal"
    );
    let (code, lines, stderr) = p.finish();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(lines.contains(&"orphan-gone".to_owned()), "{lines:?}");
}

/// `unshare --pid --fork --mount-proc envseal exec --init -- ARGS…`: envseal is
/// PID 1 of a new PID namespace (needs root, as in CI).
fn init_as_pid1(args: &[&str]) -> Command {
    let mut cmd = Command::new("unshare");
    cmd.env_clear()
        .env("PATH", "/usr/bin:/bin:/usr/sbin:/sbin")
        .args(["--pid", "--fork", "--mount-proc"])
        .arg(env!("CARGO_BIN_EXE_envseal"))
        .args(["exec", "--init", "--"])
        .args(args);
    cmd
}

#[test]
fn init_reaps_orphans_as_pid_1() {
    let out = run(&mut init_as_pid1(&[
        "sh",
        "-c",
        &format!("echo \"envseal-pid $PPID\"; {ORPHAN_SCRIPT}"),
    ]));
    out.expect_code(0);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines.contains(&"envseal-pid 1"), "{lines:?}");
    assert!(lines.contains(&"orphan-ppid 1"), "{lines:?}");
    assert!(lines.contains(&"orphan-gone"), "{lines:?}\n{}", out.stderr);
}

#[test]
fn init_as_pid_1_forwards_signals_and_passes_the_exit_code() {
    let app = signal_app();
    let mut p = Running::spawn(&mut init_as_pid1(&[app.to_str().unwrap()]));
    p.wait_line(|l| l.starts_with("ready "));
    // envseal's PID outside the namespace: the only child of `unshare`.
    let unshare = p.pid().as_raw();
    let children =
        std::fs::read_to_string(format!("/proc/{unshare}/task/{unshare}/children")).unwrap();
    let envseal: i32 = children.trim().parse().unwrap();
    // Signals from outside the namespace reach PID 1 only when it handles them.
    kill(Pid::from_raw(envseal), Signal::SIGHUP).unwrap();
    p.wait_line(|l| l == "got 1");
    kill(Pid::from_raw(envseal), Signal::SIGTERM).unwrap();
    let (code, _, stderr) = p.finish();
    assert_eq!(code, Some(115), "{stderr}");
}

#[test]
fn init_resolves_then_supervises_from_a_single_thread() {
    let moto = Moto::start();
    moto.call(
        "ssm",
        "put_parameter",
        json!({"Name": "/init/db", "Value": "s3cr3t-init", "Type": "SecureString"}),
    );
    let app = signal_app();
    let script = format!("echo \"DB=$DB_PASSWORD\"; exec {}", app.display());
    let mut p = Running::spawn(
        moto.envseal()
            .env("DB_PASSWORD", "ssm:/init/db")
            .args(["exec", "--init", "--", "sh", "-c", &script]),
    );
    assert_eq!(p.wait_line(|l| l.starts_with("DB=")), "DB=s3cr3t-init");
    p.wait_line(|l| l.starts_with("ready "));
    // Signals reach the signalfd only if no other thread could take them.
    let tasks = std::fs::read_dir(format!("/proc/{}/task", p.pid()))
        .unwrap()
        .count();
    assert_eq!(tasks, 1, "envseal has {tasks} threads while supervising");
    kill(p.pid(), Signal::SIGTERM).unwrap();
    let (code, _, stderr) = p.finish();
    assert_eq!(code, Some(115), "{stderr}");
}

#[test]
fn init_never_starts_the_application_when_resolution_fails() {
    let moto = Moto::start();
    let out = run(moto
        .envseal()
        .env("DB_PASSWORD", "ssm:/init/missing")
        .args(["exec", "--init", "--", "sh", "-c", "echo started"]));
    out.expect_code(111);
    assert!(!out.stdout.contains("started"));
}

// ------------------------------------------------------------------ install

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("install-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn assert_installed(path: &Path) {
    let original = std::fs::read(env!("CARGO_BIN_EXE_envseal")).unwrap();
    let copy = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        copy == original,
        "{} differs from the binary",
        path.display()
    );
    let mode = path.metadata().unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o755, "{}: mode {mode:o}", path.display());
}

fn entries(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// `envseal install DEST` under umask 077, so that 0755 must be set explicitly.
fn install(dest: &Path) -> support::Run {
    run(Command::new("sh")
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .arg("-c")
        .arg("umask 077; exec \"$0\" install \"$1\"")
        .arg(env!("CARGO_BIN_EXE_envseal"))
        .arg(dest))
}

#[test]
fn install_into_a_directory_a_new_path_and_over_a_file() {
    let dir = scratch("ok");
    // an existing directory: DEST/envseal
    install(&dir).expect_code(0);
    assert_installed(&dir.join("envseal"));
    assert_eq!(entries(&dir), BTreeSet::from(["envseal".to_owned()]));
    // missing parents are created; a trailing slash names a directory
    let nested = dir.join("a/b/");
    install(&nested).expect_code(0);
    assert_installed(&dir.join("a/b/envseal"));
    // a file path, replacing what is there
    let file = dir.join("bin/tool");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, "old").unwrap();
    install(&file).expect_code(0);
    assert_installed(&file);
    assert_eq!(
        entries(&dir.join("bin")),
        BTreeSet::from(["tool".to_owned()])
    );
    // the copy runs
    let out = run(Command::new(&file).arg("--version"));
    out.expect_code(0);
    assert!(out.stdout.starts_with("envseal "), "{}", out.stdout);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn install_fails_clearly_where_no_directory_can_be_made() {
    let dir = scratch("notdir");
    std::fs::write(dir.join("file"), "x").unwrap();
    let out = install(&dir.join("file/sub/envseal"));
    out.expect_code(111);
    assert!(out.stderr.contains("cannot install to"), "{}", out.stderr);
    assert!(out.stderr.contains("file/sub/envseal"), "{}", out.stderr);
    assert_eq!(entries(&dir), BTreeSet::from(["file".to_owned()]));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Runs `envseal install` inside a private mount namespace where `dir` is a
/// small tmpfs (`options`), then lists what is left in it.
fn install_on_tmpfs(dir: &Path, options: &str, remount_ro: bool) -> support::Run {
    install_on_tmpfs_over(dir, options, remount_ro, None)
}

/// [`install_on_tmpfs`], with `existing` already installed as
/// `bin/envseal`; its content is printed after the listing.
fn install_on_tmpfs_over(
    dir: &Path,
    options: &str,
    remount_ro: bool,
    existing: Option<&str>,
) -> support::Run {
    let script = format!(
        "mount -t tmpfs -o {options} envseal-test \"$1\" || exit 90
         mkdir \"$1/bin\" || exit 91
         {}
         {}
         \"$0\" install \"$1/bin/\"; echo \"install-exit $?\"
         ls -A \"$1/bin\"
         {}",
        if existing.is_some() {
            "printf '%s' \"$2\" > \"$1/bin/envseal\" || exit 93"
        } else {
            ""
        },
        if remount_ro {
            "mount -o remount,ro \"$1\" || exit 92"
        } else {
            ""
        },
        if existing.is_some() {
            "echo; echo \"content $(cat \"$1/bin/envseal\")\""
        } else {
            ""
        }
    );
    run(Command::new("unshare")
        .env_clear()
        .env("PATH", "/usr/bin:/bin:/usr/sbin:/sbin")
        .args(["--mount", "sh", "-c", &script])
        .arg(env!("CARGO_BIN_EXE_envseal"))
        .arg(dir)
        .args(existing))
}

#[test]
fn install_leaves_no_partial_file_when_the_disk_is_full() {
    let dir = scratch("enospc");
    // 1 MiB cannot hold the binary: the copy fails half-way with ENOSPC.
    let out = install_on_tmpfs(&dir, "size=1m", false);
    out.expect_code(0);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines, ["install-exit 111"], "stderr: {}", out.stderr);
    assert!(
        out.stderr.contains("cannot write the binary"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("No space left"), "{}", out.stderr);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A failed upgrade leaves the binary that was there: the old one is
/// replaced only by the rename of a complete copy.
#[test]
fn a_failed_install_leaves_the_previous_binary_intact() {
    let dir = scratch("enospc-over");
    let out = install_on_tmpfs_over(&dir, "size=1m", false, Some("old-envseal-v1"));
    out.expect_code(0);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines,
        ["install-exit 111", "envseal", "", "content old-envseal-v1"],
        "stderr: {}",
        out.stderr
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn install_fails_clearly_on_a_read_only_filesystem() {
    let dir = scratch("rofs");
    let out = install_on_tmpfs(&dir, "size=64m", true);
    out.expect_code(0);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines, ["install-exit 111"], "stderr: {}", out.stderr);
    assert!(
        out.stderr.contains("Read-only file system"),
        "{}",
        out.stderr
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
