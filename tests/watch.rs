//! `exec --watch` (rotation) against moto: a changed parameter restarts the
//! application with the new value; `--on-change signal:HUP` signals it
//! without a restart; a failed re-resolve keeps it running; SIGTERM to
//! envseal stops it and returns its code; a stop timeout ends in SIGKILL and
//! a restart; an unchanged secret never restarts it; the calls of one check
//! are the documented number (counted by the fault proxy); no value in any
//! log line at trace level; nothing written to disk (strace).
//!
//! Nothing here asserts a duration: every wait is for observed output, with
//! a generous limit.

mod support;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal, Signal::SIGTERM};
use nix::unistd::Pid;
use serde_json::json;
use support::s3::{put_object, setup, BUCKET};
use support::{c_app, create_secrets, put_secret_value, run, seed_ssm, with_vars, Moto, Proxy};

const EXIT_RESOLUTION: i32 = 111;
/// What tests/apps/watched.c exits with on SIGTERM.
const APP_TERM_CODE: i32 = 42;
/// How long to wait for something that should happen within a few checks.
const PATIENCE: Duration = Duration::from_secs(45);

fn watched_app() -> PathBuf {
    c_app("watched", false)
}

/// envseal running in the background, its stdout and stderr collected line
/// by line as they come.
struct Running {
    child: Child,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Running {
    fn start(cmd: &mut Command) -> Running {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn envseal");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        for (pipe, lines) in [
            (
                Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
                Arc::clone(&stdout),
            ),
            (Box::new(child.stderr.take().unwrap()), Arc::clone(&stderr)),
        ] {
            thread::spawn(move || {
                for line in BufReader::new(pipe).lines() {
                    match line {
                        Ok(l) => lines.lock().unwrap().push(l),
                        Err(_) => break,
                    }
                }
            });
        }
        Running {
            child,
            stdout,
            stderr,
        }
    }

    fn stdout(&self) -> Vec<String> {
        self.stdout.lock().unwrap().clone()
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    /// The application's "start PID VALUE FILE" lines, as (pid, value, file).
    fn starts(&self) -> Vec<(String, String, String)> {
        self.lines_of("start")
    }

    fn lines_of(&self, what: &str) -> Vec<(String, String, String)> {
        self.stdout()
            .iter()
            .filter_map(|l| {
                let mut f = l.split(' ');
                (f.next()? == what).then(|| {
                    (
                        f.next().unwrap_or("").to_owned(),
                        f.next().unwrap_or("").to_owned(),
                        f.next().unwrap_or("").to_owned(),
                    )
                })
            })
            .collect()
    }

    /// Waits until `done` holds; panics with both outputs after [`PATIENCE`].
    fn wait_for(&mut self, what: &str, done: impl Fn(&Running) -> bool) {
        let deadline = Instant::now() + PATIENCE;
        while !done(self) {
            if let Ok(Some(status)) = self.child.try_wait() {
                thread::sleep(Duration::from_millis(200));
                if done(self) {
                    return;
                }
                panic!(
                    "envseal exited ({status}) before {what}\n--- stdout ---\n{}\n--- stderr ---\n{}",
                    self.stdout().join("\n"),
                    self.stderr()
                );
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                panic!(
                    "{what}: not within {PATIENCE:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
                    self.stdout().join("\n"),
                    self.stderr()
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// How many checks the debug log reports.
    fn checks(&self) -> usize {
        self.stderr
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains("versions checked"))
            .count()
    }

    fn signal(&self, signal: Signal) {
        kill(Pid::from_raw(self.child.id() as i32), signal).unwrap();
    }

    /// Waits for envseal to exit; its exit code.
    fn wait(&mut self) -> Option<i32> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                thread::sleep(Duration::from_millis(200)); // the readers finish
                return status.code();
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                panic!(
                    "envseal did not exit\n--- stdout ---\n{}\n--- stderr ---\n{}",
                    self.stdout().join("\n"),
                    self.stderr()
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn watch_cmd(moto: &Moto, extra: &[&str], app_args: &[&str]) -> Command {
    let mut cmd = moto.envseal();
    cmd.arg("exec")
        .args(extra)
        .arg("--")
        .arg(watched_app())
        .args(app_args);
    cmd
}

fn no_value_in(stderr: &str, values: &[&str]) {
    for v in values {
        assert!(!stderr.contains(v), "{v} in envseal's log:\n{stderr}");
    }
}

#[test]
fn a_changed_parameter_restarts_the_application_with_the_new_value() {
    let moto = Moto::start();
    seed_ssm(&moto, &[("/w/p", "first-Vq83")]);
    let mut cmd = with_vars(
        watch_cmd(&moto, &["--watch", "1s"], &[]),
        &[("WATCHED", "ssm:/w/p"), ("ENVSEAL_LOG", "trace")],
    );
    let mut app = Running::start(&mut cmd);
    app.wait_for("the first start", |a| !a.starts().is_empty());
    assert_eq!(app.starts()[0].1, "first-Vq83");
    // Two unchanged checks: no restart.
    app.wait_for("two checks", |a| a.checks() >= 2);
    assert_eq!(app.starts().len(), 1, "restarted without a change");

    seed_ssm(&moto, &[("/w/p", "second-Lk20")]);
    app.wait_for("a restart with the new value", |a| {
        a.starts().iter().any(|s| s.1 == "second-Lk20")
    });
    let starts = app.starts();
    assert_eq!(starts.len(), 2, "{starts:?}");
    assert_ne!(starts[0].0, starts[1].0, "the same process: not restarted");
    // The first application was asked to stop with SIGTERM and did.
    assert!(app
        .stdout()
        .iter()
        .any(|l| l == &format!("term {}", starts[0].0)));
    let stderr = app.stderr();
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("changed variables") && l.contains("WATCHED")),
        "{stderr}"
    );
    no_value_in(&stderr, &["first-Vq83", "second-Lk20"]);

    // SIGTERM to envseal: forwarded; the application's code is envseal's.
    app.signal(SIGTERM);
    assert_eq!(app.wait(), Some(APP_TERM_CODE));
    assert_eq!(app.starts().len(), 2, "started again after SIGTERM");
    no_value_in(&app.stderr(), &["first-Vq83", "second-Lk20"]);
}

#[test]
fn a_failed_re_resolve_keeps_the_application_running() {
    let moto = Moto::start();
    seed_ssm(
        &moto,
        &[("/w/gone", "kept-Rm51"), ("/w/other", "other-Pz02")],
    );
    let mut cmd = with_vars(
        watch_cmd(&moto, &["--watch", "1s"], &[]),
        &[
            ("WATCHED", "ssm:/w/gone"),
            ("OTHER", "ssm:/w/other"),
            ("ENVSEAL_LOG", "trace"),
        ],
    );
    let mut app = Running::start(&mut cmd);
    app.wait_for("the first start", |a| !a.starts().is_empty());
    moto.call("ssm", "delete_parameter", json!({"Name": "/w/gone"}));
    app.wait_for("the failed re-resolve, twice", |a| {
        a.stderr().matches("resolving again failed").count() >= 2
    });
    let stderr = app.stderr();
    let line = stderr
        .lines()
        .find(|l| l.contains("resolving again failed"))
        .unwrap();
    assert!(
        line.contains("WATCHED") && line.contains("ssm:/w/gone"),
        "{line}"
    );
    assert_eq!(app.starts().len(), 1, "the application was restarted");
    // Still the first application: it answers SIGTERM with its code.
    app.signal(SIGTERM);
    assert_eq!(app.wait(), Some(APP_TERM_CODE));
    no_value_in(&app.stderr(), &["kept-Rm51", "other-Pz02"]);
}

#[test]
fn a_failed_re_resolve_is_tried_again_at_the_next_check() {
    let moto = Moto::start();
    seed_ssm(&moto, &[("/w/back", "before-Ht61")]);
    let mut cmd = with_vars(
        watch_cmd(&moto, &["--watch", "1s"], &[]),
        &[("WATCHED", "ssm:/w/back")],
    );
    let mut app = Running::start(&mut cmd);
    app.wait_for("the first start", |a| !a.starts().is_empty());
    moto.call("ssm", "delete_parameter", json!({"Name": "/w/back"}));
    app.wait_for("a failed re-resolve", |a| {
        a.stderr().contains("resolving again failed")
    });
    seed_ssm(&moto, &[("/w/back", "after-Yx07")]);
    app.wait_for("a restart with the value put back", |a| {
        a.starts().iter().any(|s| s.1 == "after-Yx07")
    });
    app.signal(SIGTERM);
    assert_eq!(app.wait(), Some(APP_TERM_CODE));
}

#[test]
fn signal_mode_signals_without_a_restart() {
    let moto = Moto::start();
    seed_ssm(&moto, &[("/w/hup", "one-Bb40")]);
    let mut cmd = with_vars(
        watch_cmd(&moto, &["--watch", "1s", "--on-change", "signal:HUP"], &[]),
        &[("WATCHED", "ssm:/w/hup")],
    );
    let mut app = Running::start(&mut cmd);
    app.wait_for("the first start", |a| !a.starts().is_empty());
    seed_ssm(&moto, &[("/w/hup", "two-Cc41")]);
    app.wait_for("SIGHUP", |a| !a.lines_of("hup").is_empty());
    assert_eq!(app.starts().len(), 1, "restarted in signal mode");
    // Same process; the environment of a running process cannot change.
    let hup = &app.lines_of("hup")[0];
    assert_eq!(hup.0, app.starts()[0].0);
    assert_eq!(hup.1, "one-Bb40");
    app.signal(SIGTERM);
    assert_eq!(app.wait(), Some(APP_TERM_CODE));
}

#[test]
fn signal_mode_rewrites_a_file_in_place_and_the_application_sees_it() {
    let moto = Moto::start();
    seed_ssm(
        &moto,
        &[("/w/conf", "conf-one-Ss10"), ("/w/env", "env-Tt11")],
    );
    let mut cmd = with_vars(
        watch_cmd(&moto, &["--watch", "1s", "--on-change", "signal:HUP"], &[]),
        &[
            ("WATCHED", "ssm:/w/env"),
            ("WATCHED_FILE", "ssm:/w/conf?file"),
            ("ENVSEAL_LOG", "trace"),
        ],
    );
    let mut app = Running::start(&mut cmd);
    app.wait_for("the first start", |a| !a.starts().is_empty());
    let first = app.starts()[0].clone();
    assert_eq!(first.2, "conf-one-Ss10");
    seed_ssm(&moto, &[("/w/conf", "conf-two-Uu12")]);
    app.wait_for("SIGHUP after the rewrite", |a| {
        !a.lines_of("hup").is_empty()
    });
    let hup = app.lines_of("hup")[0].clone();
    assert_eq!(hup.0, first.0, "not the same process");
    assert_eq!(hup.2, "conf-two-Uu12", "the file was not rewritten");
    assert_eq!(app.starts().len(), 1, "restarted in signal mode");
    app.signal(SIGTERM);
    assert_eq!(app.wait(), Some(APP_TERM_CODE));
    no_value_in(
        &app.stderr(),
        &["conf-one-Ss10", "conf-two-Uu12", "env-Tt11"],
    );
}

#[test]
fn restart_mode_gives_the_new_application_a_new_file() {
    let moto = Moto::start();
    seed_ssm(&moto, &[("/w/rfile", "rfile-one-Vv20")]);
    let mut cmd = with_vars(
        watch_cmd(&moto, &["--watch", "1s"], &[]),
        &[("WATCHED_FILE", "ssm:/w/rfile?file")],
    );
    let mut app = Running::start(&mut cmd);
    app.wait_for("the first start", |a| !a.starts().is_empty());
    assert_eq!(app.starts()[0].2, "rfile-one-Vv20");
    seed_ssm(&moto, &[("/w/rfile", "rfile-two-Ww21")]);
    app.wait_for("a restart with the new file", |a| {
        a.starts().iter().any(|s| s.2 == "rfile-two-Ww21")
    });
    app.signal(SIGTERM);
    assert_eq!(app.wait(), Some(APP_TERM_CODE));
}

#[test]
fn a_stop_timeout_ends_in_sigkill_then_a_restart() {
    let moto = Moto::start();
    seed_ssm(&moto, &[("/w/stubborn", "old-Dd50")]);
    let mut cmd = with_vars(
        watch_cmd(
            &moto,
            &["--watch", "1s", "--stop-timeout", "1s", "--init-pgroup"],
            &["--ignore-term"],
        ),
        &[("WATCHED", "ssm:/w/stubborn")],
    );
    let mut app = Running::start(&mut cmd);
    app.wait_for("the first start", |a| !a.starts().is_empty());
    seed_ssm(&moto, &[("/w/stubborn", "new-Ee51")]);
    app.wait_for("a restart after SIGKILL", |a| {
        a.starts().iter().any(|s| s.1 == "new-Ee51")
    });
    assert!(app.stderr().contains("SIGKILL"), "{}", app.stderr());
    let starts = app.starts();
    assert_eq!(starts.len(), 2, "{starts:?}");
    // The first one is gone (killed), the second runs; it ignores SIGTERM:
    // SIGKILL it, and envseal exits with 128 + 9.
    assert!(!std::path::Path::new(&format!("/proc/{}", starts[0].0)).exists());
    let second = Pid::from_raw(starts[1].0.parse().unwrap());
    kill(second, Signal::SIGKILL).unwrap();
    assert_eq!(app.wait(), Some(137));
}

#[test]
fn sigterm_during_a_restart_cancels_it() {
    let moto = Moto::start();
    seed_ssm(&moto, &[("/w/cancel", "cancel-one-Xx30")]);
    let mut cmd = with_vars(
        watch_cmd(&moto, &["--watch", "1s"], &["--slow-term"]),
        &[("WATCHED", "ssm:/w/cancel")],
    );
    let mut app = Running::start(&mut cmd);
    app.wait_for("the first start", |a| !a.starts().is_empty());
    seed_ssm(&moto, &[("/w/cancel", "cancel-two-Yy31")]);
    // The application got the stop signal and takes two seconds to exit.
    app.wait_for("the stop signal", |a| !a.lines_of("term").is_empty());
    app.signal(SIGTERM);
    assert_eq!(app.wait(), Some(APP_TERM_CODE));
    assert_eq!(app.starts().len(), 1, "started again after SIGTERM");
}

#[test]
fn a_secret_and_an_object_change_too() {
    let moto = Moto::start();
    setup(&moto);
    create_secrets(&moto, &[("w/secret", json!("sm-one-Ff60"))]);
    put_object(&moto, "w/obj.txt", b"s3-one-Gg61", json!({}));
    let mut cmd = with_vars(
        watch_cmd(&moto, &["--watch", "1s"], &[]),
        &[
            ("WATCHED", "sm:w/secret"),
            ("OBJECT", &format!("s3://{BUCKET}/w/obj.txt")),
            ("ENVSEAL_LOG", "info"),
        ],
    );
    let mut app = Running::start(&mut cmd);
    app.wait_for("the first start", |a| !a.starts().is_empty());
    put_secret_value(&moto, "w/secret", "sm-two-Hh62");
    app.wait_for("a restart for the secret", |a| {
        a.starts().iter().any(|s| s.1 == "sm-two-Hh62")
    });
    put_object(&moto, "w/obj.txt", b"s3-two-Ii63", json!({}));
    app.wait_for("a restart for the object", |a| {
        a.stderr()
            .lines()
            .any(|l| l.contains("changed variables") && l.contains("OBJECT"))
    });
    app.wait_for("the third start", |a| a.starts().len() >= 3);
    app.signal(SIGTERM);
    assert_eq!(app.wait(), Some(APP_TERM_CODE));
}

#[test]
fn a_path_bundle_gaining_a_parameter_is_a_change() {
    let moto = Moto::start();
    seed_ssm(&moto, &[("/bundle/watched", "bundle-one-Zz40")]);
    let mut cmd = with_vars(
        watch_cmd(&moto, &["--watch", "1s"], &[]),
        &[("ENVSEAL_FROM", "ssm:/bundle/"), ("ENVSEAL_LOG", "info")],
    );
    let mut app = Running::start(&mut cmd);
    app.wait_for("the first start", |a| !a.starts().is_empty());
    assert_eq!(app.starts()[0].1, "bundle-one-Zz40");
    seed_ssm(&moto, &[("/bundle/added", "added-Ab41")]);
    app.wait_for("a restart for the new parameter", |a| a.starts().len() >= 2);
    let stderr = app.stderr();
    assert!(
        stderr.lines().any(|l| l.contains("changed variables")
            && l.contains("ADDED")
            && !l.contains("WATCHED")),
        "{stderr}"
    );
    app.signal(SIGTERM);
    assert_eq!(app.wait(), Some(APP_TERM_CODE));
    no_value_in(&app.stderr(), &["bundle-one-Zz40", "added-Ab41"]);
}

#[test]
fn the_calls_of_a_check_are_the_documented_number() {
    let moto = Moto::start();
    setup(&moto);
    seed_ssm(
        &moto,
        &[
            ("/w/a", "a-Jj70"),
            ("/w/b", "b-Kk71"),
            ("/bundle/x", "x-Ll72"),
            ("/bundle/y", "y-Mm73"),
        ],
    );
    create_secrets(&moto, &[("w/s", json!("s-Nn74"))]);
    put_object(&moto, "w/o.txt", b"o-Oo75", json!({}));
    let proxy = Proxy::start(&moto.endpoint);
    let mut cmd = with_vars(
        proxy.envseal(&moto),
        &[
            ("WATCHED", "ssm:/w/a"),
            ("B", "ssm:/w/b"),
            ("S", "sm:w/s"),
            ("O", &format!("s3://{BUCKET}/w/o.txt")),
            ("ENVSEAL_FROM", "ssm:/bundle/"),
            ("ENVSEAL_LOG", "debug"),
        ],
    );
    cmd.args(["exec", "--watch", "1s", "--"]).arg(watched_app());
    let mut app = Running::start(&mut cmd);
    // 2 parameters: 1 GetParameters; 1 path: 1 GetParametersByPath page;
    // 1 secret: 1 DescribeSecret; 1 object: 1 HeadObject. 4 calls a check.
    app.wait_for("three checks", |a| a.checks() >= 3);
    let checks_before = app.checks();
    let stats = proxy.stats();
    let stderr = app.stderr();
    let checks = app.checks();
    assert!(
        stderr.contains("calls_per_check=4"),
        "the planned number is not logged:\n{stderr}"
    );
    for line in stderr.lines().filter(|l| l.contains("versions checked")) {
        assert!(line.contains("calls=4"), "{line}");
    }
    // Each check (and the one before the first resolution) made one of each.
    let count = |target: &str| stats["requests"][target].as_u64().unwrap_or(0) as usize;
    let describe = count("secretsmanager.DescribeSecret");
    let head = count(&format!("HEAD /{BUCKET}/w/o.txt"));
    // Read between two counts of the check lines: every check logged before
    // is in the stats, plus at most one under way (on a loaded machine).
    for (what, n) in [("DescribeSecret", describe), ("HeadObject", head)] {
        assert!(
            (checks_before + 1..=checks + 2).contains(&n),
            "{what}: {n} calls for {checks_before}..{checks} checks (+1 before the start): {stats}"
        );
    }
    let get_parameters = count("AmazonSSM.GetParameters");
    let by_path = count("AmazonSSM.GetParametersByPath");
    // The resolution made one of each too (and maybe DescribeParameters).
    assert!(
        (checks_before + 2..=checks + 3).contains(&get_parameters),
        "{stats}"
    );
    assert!(
        (checks_before + 2..=checks + 3).contains(&by_path),
        "{stats}"
    );
    assert_eq!(app.starts().len(), 1, "restarted without a change");
    app.signal(SIGTERM);
    assert_eq!(app.wait(), Some(APP_TERM_CODE));
}

#[test]
fn the_application_exiting_on_its_own_ends_envseal_with_its_code() {
    let moto = Moto::start();
    seed_ssm(&moto, &[("/w/exit", "x-Pp80")]);
    let out = run(
        with_vars(moto.envseal(), &[("WATCHED", "ssm:/w/exit")]).args([
            "exec",
            "--watch",
            "1s",
            "--",
            "/bin/sh",
            "-c",
            "sleep 1; exit 7",
        ]),
    );
    out.expect_code(7);
}

#[test]
fn watch_settings_are_validated_before_anything_starts() {
    for (args, vars, says) in [
        (vec!["--watch", "soon"], vec![], "watch interval"),
        (vec!["--watch", "500ms"], vec![], "minimum"),
        (
            vec!["--watch", "5s", "--on-change", "reload"],
            vec![],
            "on-change",
        ),
        (
            vec!["--watch", "5s", "--on-change", "signal:NOPE"],
            vec![],
            "signal name",
        ),
        (
            vec!["--watch", "5s", "--stop-signal", "TERMINATE"],
            vec![],
            "stop signal",
        ),
        (
            vec!["--watch", "5s", "--stop-timeout", "x"],
            vec![],
            "stop timeout",
        ),
        (vec![], vec![("ENVSEAL_WATCH", "0.2s")], "minimum"),
        (
            vec![],
            vec![("ENVSEAL_WATCH", "5s"), ("ENVSEAL_STOP_SIGNAL", "NOPE")],
            "stop signal",
        ),
    ] {
        let mut cmd = with_vars(support::envseal_bare(), &vars);
        cmd.arg("exec")
            .args(&args)
            .args(["--", "/bin/echo", "started"]);
        let out = run(&mut cmd);
        out.expect_code(EXIT_RESOLUTION);
        assert!(!out.stdout.contains("started"), "{args:?}: started");
        assert!(
            out.stderr.contains(says),
            "{args:?} {vars:?}: {}",
            out.stderr
        );
    }
    // A flag wins over its variable: a good flag hides a bad variable.
    let mut cmd = with_vars(
        support::envseal_bare(),
        &[("ENVSEAL_WATCH", "bad"), ("ENVSEAL_ON_CHANGE", "bad")],
    );
    cmd.args([
        "exec",
        "--watch",
        "5s",
        "--on-change",
        "restart",
        "--",
        "/bin/sh",
        "-c",
        "exit 3",
    ]);
    run(&mut cmd).expect_code(3);
}

#[test]
fn nothing_is_written_to_disk_during_a_restart() {
    let strace_ok = Command::new("strace")
        .arg("-V")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        strace_ok,
        "strace not found: apt-get install -y strace (scripts/test installs it)"
    );
    let moto = Moto::start();
    seed_ssm(&moto, &[("/w/disk", "disk-one-Qq90")]);
    let log = std::env::temp_dir().join(format!("envseal-watch-{}.strace", std::process::id()));
    let mut cmd = Command::new("strace");
    cmd.env_clear();
    let inner = with_vars(
        watch_cmd(&moto, &["--watch", "1s"], &[]),
        &[
            ("WATCHED", "ssm:/w/disk"),
            ("WATCHED_FILE", "ssm:/w/disk?file"),
        ],
    );
    for (k, v) in inner.get_envs() {
        if let Some(v) = v {
            cmd.env(k, v);
        }
    }
    cmd.args(["-f", "-qq", "-s", "4096", "-o"])
        .arg(&log)
        .arg("-e")
        .arg(format!("trace={},execve", support::FILE_SYSCALLS))
        .arg("--")
        .arg(inner.get_program())
        .args(inner.get_args());
    let mut app = Running::start(&mut cmd);
    app.wait_for("the first start", |a| !a.starts().is_empty());
    seed_ssm(&moto, &[("/w/disk", "disk-two-Rr91")]);
    app.wait_for("the restart", |a| a.starts().len() >= 2);
    // SIGTERM to envseal (the application's parent), which forwards it.
    let app_pid = &app.starts()[1].0;
    let stat = std::fs::read_to_string(format!("/proc/{app_pid}/stat")).unwrap();
    let ppid: i32 = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    kill(Pid::from_raw(ppid), SIGTERM).unwrap();
    assert_eq!(app.wait(), Some(APP_TERM_CODE), "{}", app.stderr());
    let trace = std::fs::read_to_string(&log).expect("strace log");
    let _ = std::fs::remove_file(&log);
    let writes = support::write_mode_calls(&trace);
    assert!(
        writes.is_empty(),
        "file system changed:\n{}",
        writes.join("\n")
    );
    assert!(trace.matches("execve(").count() >= 3, "{trace}");
    assert!(!trace.contains("disk-one-Qq90") && !trace.contains("disk-two-Rr91"));
}

/// Checks through a role use its credentials, assumed once and kept between
/// checks (moto's last an hour), not assumed again at every check.
#[test]
fn checks_of_references_read_through_a_role_use_the_role() {
    let moto = Moto::start();
    seed_ssm(&moto, &[("/roles/w", "role-one-Cd50")]);
    let allow = |actions: &[&str]| {
        json!({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": actions, "Resource": "*",
        }]})
    };
    // The base identity may only assume the role; the role may read SSM.
    let base = moto.create_user_with_policy("base", allow(&["sts:AssumeRole"]));
    let admin = moto.create_user_with_policy("admin", allow(&["ssm:PutParameter"]));
    let role = moto.create_role_with_policy(
        "ssm-reader",
        &format!("arn:aws:iam::{}:user/base", support::ACCOUNT_ID),
        allow(&["ssm:GetParameters", "ssm:GetParameter"]),
    );
    moto.enforce_iam();
    let proxy = Proxy::start(&moto.endpoint);
    let mut cmd = with_vars(
        proxy.envseal(&moto),
        &[
            ("WATCHED", "ssm:/roles/w"),
            ("ENVSEAL_ROLE_ARN", &role),
            ("AWS_ACCESS_KEY_ID", &base.0),
            ("AWS_SECRET_ACCESS_KEY", &base.1),
            ("ENVSEAL_LOG", "debug"),
        ],
    );
    cmd.args(["exec", "--watch", "1s", "--"]).arg(watched_app());
    let mut app = Running::start(&mut cmd);
    app.wait_for("the first start", |a| !a.starts().is_empty());
    assert_eq!(app.starts()[0].1, "role-one-Cd50");
    app.wait_for("three checks", |a| a.checks() >= 3);
    let assumed = proxy.stats()["requests"]["sts.AssumeRole"]
        .as_u64()
        .unwrap_or(0);
    // One for the versions read before the first resolution, one for the
    // resolution, one for the first check; the later checks kept it.
    assert_eq!(assumed, 3, "{}", proxy.stats());
    moto.calls(json!([{
        "service": "ssm", "method": "put_parameter",
        "args": {"Name": "/roles/w", "Value": "role-two-Ef51", "Type": "SecureString", "Overwrite": true},
        "credentials": {"key": admin.0, "secret": admin.1},
    }]));
    app.wait_for("a restart with the value read through the role", |a| {
        a.starts().iter().any(|s| s.1 == "role-two-Ef51")
    });
    assert!(!app.stderr().contains("access-denied"), "{}", app.stderr());
    // A check through the kept credentials that is refused forgets them:
    // the next check assumes the role again, and keeps the new ones.
    let assumed = |proxy: &Proxy| {
        proxy.stats()["requests"]["sts.AssumeRole"]
            .as_u64()
            .unwrap_or(0)
    };
    let checks = app.checks();
    app.wait_for("a check after the restart", |a| a.checks() > checks);
    let before = assumed(&proxy);
    proxy.configure(json!({"faults": [
        {"kind": "403html", "first": 2, "target": "AmazonSSM.*"}
    ]}));
    let checks = app.checks();
    app.wait_for("four more checks", |a| a.checks() >= checks + 4);
    assert!(app.stderr().contains("cannot tell"), "{}", app.stderr());
    assert_eq!(assumed(&proxy), before + 1, "{}", proxy.stats());
    app.signal(SIGTERM);
    assert_eq!(app.wait(), Some(APP_TERM_CODE));
}
