//! Process behaviour of `exec`: no AWS work without references, exit codes,
//! PID, ENVSEAL_* removal, the deadline.

mod support;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use support::{envseal_bare, run, Moto};

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

#[test]
fn stalled_endpoint_fails_closed_within_the_deadline() {
    // Accepts connections (the kernel's backlog) and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let started = Instant::now();
    let out = run(envseal_bare()
        .env("AWS_ENDPOINT_URL", &endpoint)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("SECRET", "ssm:/stalled")
        .args(["exec", "--timeout", "2s", "--", "sh", "-c", "echo started"]));
    let elapsed = started.elapsed();
    out.expect_code(111);
    assert!(!out.stdout.contains("started"));
    assert!(
        out.stderr.contains("SECRET: ssm:/stalled"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("deadline"), "{}", out.stderr);
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
    drop(listener);
}

#[test]
fn unreachable_endpoint_fails_closed() {
    let out = run(envseal_bare()
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_MAX_ATTEMPTS", "2")
        .env("SECRET", "ssm:/x")
        .args(["exec", "--timeout", "20s", "--", "sh", "-c", "echo started"]));
    out.expect_code(111);
    assert!(!out.stdout.contains("started"));
    assert!(out.stderr.contains("SECRET: ssm:/x"), "{}", out.stderr);
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
