//! What a newcomer sees first: envseal run on a machine with no AWS set-up at
//! all (no region, no credentials, no `~/.aws`). Instance metadata (IMDS) is
//! really tried, as the SDK does by default. At the default log level stderr
//! holds only envseal's own lines, never the SDK's dumps of its response
//! structs; `--log-level debug` still shows the SDK's detail.
//! And `--version`, and every command's `--help` with an example.

mod support;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{envseal_bare, run, run_timeout, Run};

const EXIT_RESOLUTION: i32 = 111;

/// The deadline given to envseal: IMDS at 169.254.169.254 may be unroutable
/// (each lookup then waits for the SDK's 1 s connect timeout, per attempt),
/// and the test must end either way.
const DEADLINE: &str = "5s";
/// The watchdog around each run.
const WATCHDOG: Duration = Duration::from_secs(30);

/// An empty directory for HOME: no `~/.aws/config`, no `~/.aws/credentials`.
fn empty_home(name: &str) -> PathBuf {
    let home =
        std::env::temp_dir().join(format!("envseal-first-run-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    std::fs::create_dir_all(&home).unwrap();
    home
}

/// A loopback address where nothing listens: connections are refused.
fn closed_endpoint() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

/// `envseal exec` of an application that says it started, with a cleared
/// environment, an empty HOME and one SSM reference. IMDS is not disabled.
fn first_run(home: &str, extra_args: &[&str]) -> Command {
    first_run_within(DEADLINE, home, extra_args)
}

fn first_run_within(deadline: &str, home: &str, extra_args: &[&str]) -> Command {
    let mut cmd = envseal_bare();
    cmd.env("HOME", empty_home(home))
        .env("DB_PASSWORD", "ssm:/prod/db/password")
        .args(["exec", "--timeout", deadline])
        .args(extra_args)
        .args(["--", "sh", "-c", "echo app-started"]);
    cmd
}

fn timed(cmd: &mut Command) -> (Run, Duration) {
    let started = Instant::now();
    let out = run_timeout(cmd, WATCHDOG);
    (out, started.elapsed())
}

/// True for a line envseal itself writes: its error lines (`envseal: …`) and
/// its log lines, text (`TIMESTAMP LEVEL envseal…: …`) or JSON (an object
/// whose target is envseal's).
fn is_envseal_line(line: &str) -> bool {
    if line.starts_with("envseal: ") {
        return true;
    }
    if let Ok(Value::Object(o)) = serde_json::from_str::<Value>(line) {
        return o
            .get("target")
            .and_then(Value::as_str)
            .is_some_and(|t| t == "envseal" || t.starts_with("envseal::"));
    }
    let mut words = line.split_whitespace();
    let (Some(_timestamp), Some(level), Some(target)) = (words.next(), words.next(), words.next())
    else {
        return false;
    };
    matches!(level, "ERROR" | "WARN" | "INFO" | "DEBUG" | "TRACE")
        && (target == "envseal:" || target.starts_with("envseal::"))
}

/// Signs of an SDK struct dump (`Debug` of errors and responses).
fn assert_no_struct_dump(what: &str, stderr: &str) {
    for marker in [
        "SdkBody",
        "Response {",
        "{ source:",
        "FailedToLoadToken(",
        "Extensions {",
    ] {
        assert!(
            !stderr.contains(marker),
            "{what}: {marker:?} on stderr:\n{stderr}"
        );
    }
}

fn assert_only_envseal_lines(what: &str, out: &Run) {
    for line in out.stderr.lines() {
        assert!(
            is_envseal_line(line),
            "{what}: a line that is not envseal's own: {line}\n--- stderr ---\n{}",
            out.stderr
        );
    }
    assert_no_struct_dump(what, &out.stderr);
}

fn assert_failed_closed(what: &str, out: &Run) {
    assert_eq!(
        out.code,
        Some(EXIT_RESOLUTION),
        "{what}: exit status\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.stdout,
        out.stderr
    );
    assert!(
        !out.stdout.contains("app-started"),
        "{what}: the application ran"
    );
    assert!(
        out.stderr
            .lines()
            .any(|l| l.starts_with("envseal: DB_PASSWORD: ssm:/prod/db/password: ")),
        "{what}: no failure line for DB_PASSWORD:\n{}",
        out.stderr
    );
}

/// The failure line of DB_PASSWORD.
fn failure_line(out: &Run) -> &str {
    out.stderr
        .lines()
        .find(|l| l.starts_with("envseal: DB_PASSWORD: "))
        .unwrap_or("")
}

#[test]
fn no_region_and_no_credentials_print_only_envseal_lines() {
    // IMDS at its real address (unroutable, or refused, wherever these tests
    // run), and at a loopback port that refuses connections; text and JSON logs.
    let refused = closed_endpoint();
    for (imds, log_format) in [
        (None, "text"),
        (Some(refused.as_str()), "text"),
        (None, "json"),
    ] {
        let what = format!("no region, IMDS at {imds:?}, {log_format} logs");
        let mut cmd = first_run("no-region", &["--log-format", log_format]);
        if let Some(endpoint) = imds {
            cmd.env("AWS_EC2_METADATA_SERVICE_ENDPOINT", endpoint);
        }
        let (out, took) = timed(&mut cmd);
        eprintln!("{what}: {took:?}\n{}", out.stderr);
        assert_failed_closed(&what, &out);
        assert_only_envseal_lines(&what, &out);
        let line = failure_line(&out);
        assert!(
            line.contains("no AWS region") || line.contains("deadline"),
            "{what}: {line}"
        );
        // The summary and one line for the one reference: nothing else.
        assert_eq!(out.stderr.lines().count(), 2, "{what}:\n{}", out.stderr);
    }
}

#[test]
fn debug_logging_still_shows_the_sdk_detail() {
    let mut cmd = first_run("debug", &["--log-level", "debug"]);
    cmd.env("AWS_EC2_METADATA_SERVICE_ENDPOINT", closed_endpoint());
    let (out, _) = timed(&mut cmd);
    assert_failed_closed("debug", &out);
    assert!(
        out.stderr.contains("aws_config::imds::region")
            && out.stderr.contains("failed to load region from IMDS"),
        "the SDK's own region lookup is not shown at debug:\n{}",
        out.stderr
    );
}

#[test]
fn region_without_credentials_is_one_clear_line() {
    let refused = closed_endpoint();
    for imds in [None, Some(refused.as_str())] {
        let what = format!("region, no credentials, IMDS at {imds:?}");
        let mut cmd = first_run("no-credentials", &[]);
        cmd.env("AWS_REGION", "eu-west-1")
            // Never the real SSM: whatever happens, it stays on this machine.
            .env("AWS_ENDPOINT_URL", closed_endpoint());
        if let Some(endpoint) = imds {
            cmd.env("AWS_EC2_METADATA_SERVICE_ENDPOINT", endpoint);
        }
        let (out, took) = timed(&mut cmd);
        eprintln!("{what}: {took:?}\n{}", out.stderr);
        assert_failed_closed(&what, &out);
        assert_only_envseal_lines(&what, &out);
        assert_eq!(out.stderr.lines().count(), 2, "{what}:\n{}", out.stderr);
        let line = failure_line(&out);
        assert!(
            line.contains("credentials") || line.contains("deadline"),
            "{what}: the failure does not say what is missing: {line}"
        );
    }
}

/// A warning of the SDK that no final error repeats (here: an endpoint URL
/// that does not parse, which the SDK ignores) is one line in envseal's log
/// format, with the SDK's message and none of its fields.
#[test]
fn other_sdk_warnings_are_one_line_each() {
    for log_format in ["text", "json"] {
        let what = format!("bad AWS_ENDPOINT_URL, {log_format} logs");
        // SSM refuses connections, which is retried until the deadline.
        let mut cmd = first_run_within("1s", "bad-endpoint", &["--log-format", log_format]);
        cmd.env("AWS_REGION", "eu-west-1")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_ENDPOINT_URL", "not a url")
            // Never the real SSM.
            .env("AWS_ENDPOINT_URL_SSM", closed_endpoint());
        let (out, _) = timed(&mut cmd);
        assert_failed_closed(&what, &out);
        assert_only_envseal_lines(&what, &out);
        let notices: Vec<&str> = out
            .stderr
            .lines()
            .filter(|l| l.contains("endpoint URL"))
            .collect();
        assert_eq!(notices.len(), 1, "{what}:\n{}", out.stderr);
        assert!(notices[0].contains("aws_config"), "{what}: {}", notices[0]);
    }
}

#[test]
fn help_and_version() {
    let out = run(envseal_bare().arg("--version"));
    out.expect_code(0);
    assert!(out.stdout.contains(env!("CARGO_PKG_VERSION")));
    for cmd in [
        "exec", "check", "export", "policy", "push", "pull", "install",
    ] {
        let out = run(envseal_bare().args([cmd, "--help"]));
        out.expect_code(0);
        assert!(
            out.stdout.contains("Example"),
            "{cmd} --help has an example"
        );
    }
}
