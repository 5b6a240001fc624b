//! Behaviour under network and service faults, mostly through the
//! fault-injecting proxy (`tests/support/py/proxy.py`) between envseal and moto:
//! throttling, 5xx bursts, connection resets, a stalled endpoint, truncated
//! and corrupted bodies; and, without the proxy, an endpoint that accepts
//! connections and never answers and one that refuses them. Every schedule
//! is seeded or counted ("the first N requests"), so a run is reproducible;
//! the timing assertions (a stall fails within the deadline plus one second,
//! a 2 s deadline within 10 s) have at least a full second of slack.
//!
//! Retries are envseal's own (`src/backend/retry.rs`): throttling, 5xx,
//! resets, truncated answers and stalled attempts are retried with jittered
//! exponential backoff until the deadline, each attempt within
//! `--attempt-timeout`; tests set `AWS_MAX_ATTEMPTS` where their schedule
//! needs a failure before the deadline. The fleet-start tests also cover the
//! failure message at the deadline, calls at the floor and a small fleet
//! against the proxy's shared rate limit.

mod support;

use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{bytes_arg, bytes_of, envseal_bare, run, Moto, Proxy, Run};

const EXIT_RESOLUTION: i32 = 111;
const STARTED: &str = "app-started";

/// 40 per-variable SSM parameters, a 15-parameter path bundle, and Secrets
/// Manager secrets (a whole string, one JSON key, a JSON bundle): every
/// backend path that the fault tests exercise. Returns the expected
/// environment.
fn seed_everything(moto: &Moto) -> Vec<(String, String)> {
    let mut ops = Vec::new();
    let mut expected = Vec::new();
    for i in 0..40 {
        ops.push(json!({"service": "ssm", "method": "put_parameter",
            "args": {"Name": format!("/faults/p{i:02}"), "Value": format!("ssm-value-{i:02}"),
                     "Type": "SecureString"}}));
        expected.push((format!("P{i:02}"), format!("ssm-value-{i:02}")));
    }
    for i in 0..15 {
        ops.push(json!({"service": "ssm", "method": "put_parameter",
            "args": {"Name": format!("/bundle/svc/key{i:02}"), "Value": format!("bundle-{i:02}"),
                     "Type": "SecureString"}}));
        expected.push((format!("SVC_KEY{i:02}"), format!("bundle-{i:02}")));
    }
    ops.push(
        json!({"service": "secretsmanager", "method": "create_secret",
        "args": {"Name": "faults/plain", "SecretString": "sm-plain-value"}}),
    );
    ops.push(json!({"service": "secretsmanager", "method": "create_secret",
        "args": {"Name": "faults/json", "SecretString": "{\"TOKEN\":\"sm-token-value\",\"other\":\"x\"}"}}));
    ops.push(json!({"service": "secretsmanager", "method": "create_secret",
        "args": {"Name": "faults/bundle", "SecretString": "{\"sm_user\":\"sm-bundle-user\",\"sm_port\":5432}"}}));
    expected.push(("SM_PLAIN".into(), "sm-plain-value".into()));
    expected.push(("SM_TOKEN".into(), "sm-token-value".into()));
    expected.push(("SM_USER".into(), "sm-bundle-user".into()));
    expected.push(("SM_PORT".into(), "5432".into()));
    moto.calls(Value::Array(ops));
    expected
}

/// The references for [`seed_everything`].
fn with_everything(mut cmd: Command) -> Command {
    for i in 0..40 {
        cmd.env(format!("P{i:02}"), format!("ssm:/faults/p{i:02}"));
    }
    cmd.env("SM_PLAIN", "sm:faults/plain")
        .env("SM_TOKEN", "sm:faults/json#TOKEN")
        .env("ENVSEAL_FROM", "ssm:/bundle/,sm:faults/bundle");
    cmd
}

fn exec_env(mut cmd: Command, extra: &[&str]) -> Run {
    cmd.arg("exec").args(extra).args(["--", "/usr/bin/env"]);
    run(&mut cmd)
}

fn exec_marker(mut cmd: Command, extra: &[&str]) -> Run {
    cmd.arg("exec")
        .args(extra)
        .args(["--", "sh", "-c", &format!("echo {STARTED}")]);
    run(&mut cmd)
}

/// A setting given by flag, by variable, both or neither: the variable set
/// on `cmd`, the flag's arguments returned.
fn setting<'a>(
    cmd: &mut Command,
    (flag, by_flag): (&'a str, Option<&'a str>),
    (variable, by_variable): (&str, Option<&str>),
) -> Vec<&'a str> {
    if let Some(v) = by_variable {
        cmd.env(variable, v);
    }
    by_flag.map(|v| vec![flag, v]).unwrap_or_default()
}

/// A malformed setting: nothing started, the configuration error names
/// `what`, no panic.
fn assert_config_error(out: &Run, what: &str) {
    out.expect_code(EXIT_RESOLUTION);
    assert!(!out.stdout.contains(STARTED));
    assert!(
        out.stderr.contains(&format!("configuration error: {what}")),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
}

fn assert_all_resolved(out: &Run, expected: &[(String, String)]) {
    out.expect_code(0);
    let env = out.env();
    for (name, value) in expected {
        assert_eq!(
            env.get(name),
            Some(value),
            "{name} missing or wrong\n--- stderr ---\n{}",
            out.stderr
        );
    }
}

fn faulted(stats: &Value, kind: &str) -> u64 {
    stats["faults"]
        .as_object()
        .map(|targets| {
            targets
                .values()
                .filter_map(|kinds| kinds[kind].as_u64())
                .sum()
        })
        .unwrap_or(0)
}

fn requests_to(stats: &Value, target: &str) -> u64 {
    stats["requests"][target].as_u64().unwrap_or(0)
}

/// The failure line of `variable` (`envseal: VAR: REF: reason (kind)`).
fn failure_line<'a>(stderr: &'a str, variable: &str) -> Option<&'a str> {
    let prefix = format!("envseal: {variable}: ");
    stderr.lines().find(|l| l.starts_with(&prefix))
}

#[test]
fn thirty_percent_throttling_still_resolves_everything() {
    let moto = Moto::start();
    let expected = seed_everything(&moto);
    let proxy = Proxy::start(&moto.endpoint);
    proxy.configure(json!({
        "seed": 6,
        "faults": [{"kind": "throttle", "probability": 0.3}]
    }));
    // With envseal's default number of attempts (no AWS_MAX_ATTEMPTS).
    let cmd = with_everything(proxy.envseal(&moto));
    let out = exec_env(cmd, &["--timeout", "60s"]);
    assert_all_resolved(&out, &expected);
    let stats = proxy.stats();
    // The schedule really throttled, across services, and each throttled
    // request was retried.
    let throttled = faulted(&stats, "throttle");
    assert!(
        throttled >= 3,
        "too few throttles to prove anything: {stats}"
    );
    // At least 7 distinct calls (4 GetParameters batches, the path listing,
    // 1 BatchGetSecretValue) and one more request per throttle (a retry, or
    // a fallback to another API that does the same job).
    let total = stats["total"].as_u64().unwrap();
    assert!(total >= 7 + throttled, "retries missing: {stats}");
    assert!(
        requests_to(&stats, "AmazonSSM.GetParameters") >= 4,
        "{stats}"
    );
    assert!(
        requests_to(&stats, "AmazonSSM.GetParametersByPath")
            + requests_to(&stats, "AmazonSSM.DescribeParameters")
            >= 1,
        "{stats}"
    );
    assert!(
        stats["requests"]
            .as_object()
            .unwrap()
            .keys()
            .any(|k| k.starts_with("secretsmanager.")),
        "{stats}"
    );
}

/// The batch calls refused in no service's format (HTTP 403 with an HTML
/// body, as a WAF or an egress proxy answers) or unknown to the server
/// (UnknownOperationException): envseal falls back to the single-item calls
/// and every secret resolves.
#[test]
fn refused_or_unknown_batch_calls_fall_back_to_single_item_calls() {
    let moto = Moto::start();
    let expected = seed_everything(&moto);
    let proxy = Proxy::start(&moto.endpoint);
    for (kind, batch_fault) in [
        ("403html", "403 with an HTML body"),
        ("unknown-op", "unknown operation"),
    ] {
        proxy.reset_stats();
        proxy.configure(json!({"faults": [
            {"kind": kind, "target": "AmazonSSM.GetParameters"},
            {"kind": kind, "target": "secretsmanager.BatchGetSecretValue"}
        ]}));
        let out = exec_env(
            with_everything(proxy.envseal(&moto)),
            &["--log-level", "info"],
        );
        assert_all_resolved(&out, &expected);
        let stats = proxy.stats();
        assert!(
            requests_to(&stats, "AmazonSSM.GetParameters") >= 4,
            "{batch_fault}: {stats}"
        );
        assert!(faulted(&stats, kind) >= 5, "{batch_fault}: {stats}");
        // 40 per-variable parameters, one call each; 2 secrets and 1 bundle.
        assert!(
            requests_to(&stats, "AmazonSSM.GetParameter") >= 40,
            "{batch_fault}: {stats}"
        );
        assert_eq!(
            requests_to(&stats, "secretsmanager.GetSecretValue"),
            3,
            "{batch_fault}: {stats}"
        );
        assert!(
            out.stderr
                .contains("falling back to one GetParameter per name")
                && out.stderr.contains("falling back to GetSecretValue"),
            "{batch_fault}: {}",
            out.stderr
        );
    }
}

#[test]
fn throttled_s3_and_kms_requests_are_retried() {
    let moto = Moto::start();
    let key_id = moto.call("kms", "create_key", json!({}))["KeyMetadata"]["KeyId"]
        .as_str()
        .unwrap()
        .to_owned();
    let blob = support::s3::kms_encrypt(&moto, &key_id, b"kms-inline-value");
    moto.calls(json!([
        {"service": "s3", "method": "create_bucket", "args": {"Bucket": "fault-bucket"}},
        {"service": "s3", "method": "put_object",
         "args": {"Bucket": "fault-bucket", "Key": "app.env", "Body": bytes_arg(b"S3_A=s3-a\nS3_B=s3-b\n")}},
    ]));
    let proxy = Proxy::start(&moto.endpoint);
    // Every first attempt is refused: S3 with SlowDown, KMS with
    // ThrottlingException.
    proxy.configure(json!({"faults": [
        {"kind": "throttle", "first": 1, "target": "GET /fault-bucket/*"},
        {"kind": "throttle", "first": 1, "target": "TrentService.*"}
    ]}));
    let mut cmd = proxy.envseal(&moto);
    cmd.env("AWS_MAX_ATTEMPTS", "5")
        .env("KMS_VALUE", format!("kms:{}", support::b64(&blob)))
        .env("ENVSEAL_FROM", "s3://fault-bucket/app.env");
    let out = exec_env(cmd, &[]);
    out.expect_code(0);
    let env = out.env();
    assert_eq!(env["KMS_VALUE"], "kms-inline-value");
    assert_eq!(env["S3_A"], "s3-a");
    assert_eq!(env["S3_B"], "s3-b");
    let stats = proxy.stats();
    assert_eq!(faulted(&stats, "throttle"), 2, "{stats}");
    assert_eq!(
        requests_to(&stats, "GET /fault-bucket/app.env"),
        2,
        "{stats}"
    );
    assert_eq!(requests_to(&stats, "TrentService.Decrypt"), 2, "{stats}");
}

#[test]
fn a_burst_of_503s_recovers() {
    let moto = Moto::start();
    let expected = seed_everything(&moto);
    let proxy = Proxy::start(&moto.endpoint);
    proxy.configure(json!({"faults": [{"kind": "503", "first": 8}]}));
    let mut cmd = with_everything(proxy.envseal(&moto));
    cmd.env("AWS_MAX_ATTEMPTS", "10");
    let out = exec_env(cmd, &["--timeout", "60s"]);
    assert_all_resolved(&out, &expected);
    let stats = proxy.stats();
    assert_eq!(faulted(&stats, "503"), 8, "{stats}");

    // The same with 500s (another status, the same retry).
    proxy.reset_stats();
    proxy.configure(json!({"faults": [{"kind": "500", "first": 5}]}));
    let mut cmd = with_everything(proxy.envseal(&moto));
    cmd.env("AWS_MAX_ATTEMPTS", "10");
    let out = exec_env(cmd, &["--timeout", "60s"]);
    assert_all_resolved(&out, &expected);
    assert_eq!(faulted(&proxy.stats(), "500"), 5);
}

#[test]
fn connection_resets_recover() {
    let moto = Moto::start();
    let expected = seed_everything(&moto);
    let proxy = Proxy::start(&moto.endpoint);
    // The first request of every kind is reset (deterministic whatever the
    // arrival order)...
    proxy.configure(json!({"faults": [
        {"kind": "reset", "first": 1, "target": "AmazonSSM.GetParameters"},
        {"kind": "reset", "first": 1, "target": ["AmazonSSM.DescribeParameters", "AmazonSSM.GetParametersByPath"]},
        {"kind": "reset", "first": 1, "target": "secretsmanager.*"}
    ]}));
    let mut cmd = with_everything(proxy.envseal(&moto));
    cmd.env("AWS_MAX_ATTEMPTS", "10");
    let out = exec_env(cmd, &["--timeout", "60s"]);
    assert_all_resolved(&out, &expected);
    assert_eq!(faulted(&proxy.stats(), "reset"), 3);

    // ...then the first 6 requests, whatever they are.
    proxy.reset_stats();
    proxy.configure(json!({"faults": [{"kind": "reset", "first": 6}]}));
    let mut cmd = with_everything(proxy.envseal(&moto));
    cmd.env("AWS_MAX_ATTEMPTS", "10");
    let out = exec_env(cmd, &["--timeout", "60s"]);
    assert_all_resolved(&out, &expected);
    assert_eq!(faulted(&proxy.stats(), "reset"), 6);
}

#[test]
fn a_stalled_endpoint_fails_closed_within_the_deadline_listing_every_variable() {
    let moto = Moto::start();
    seed_everything(&moto);
    let proxy = Proxy::start(&moto.endpoint);
    // SSM accepts and never answers; Secrets Manager is healthy.
    proxy.configure(json!({"faults": [{"kind": "stall", "target": "AmazonSSM.*"}]}));
    let mut cmd = proxy.envseal(&moto);
    cmd.env("A_PW", "ssm:/faults/p01")
        .env("B_PW", "ssm:/faults/p02")
        .env("C_PW", "ssm:/faults/p03:1")
        .env("SM_PLAIN", "sm:faults/plain")
        .env("ENVSEAL_FROM", "ssm:/bundle/");
    let deadline = Duration::from_secs(2);
    let started = Instant::now();
    let out = exec_marker(cmd, &["--timeout", "2s"]);
    let elapsed = started.elapsed();
    out.expect_code(EXIT_RESOLUTION);
    assert!(
        !out.stdout.contains(STARTED),
        "the app started: {}",
        out.stdout
    );
    // It did wait for the deadline, and gave up within one second of it.
    assert!(
        elapsed >= deadline,
        "gave up before the deadline: {elapsed:?}"
    );
    assert!(
        elapsed < deadline + Duration::from_secs(1),
        "took {elapsed:?} with a {deadline:?} deadline\n{}",
        out.stderr
    );
    for (variable, reference) in [
        ("A_PW", "ssm:/faults/p01"),
        ("B_PW", "ssm:/faults/p02"),
        ("C_PW", "ssm:/faults/p03:1"),
        ("(bundle)", "ssm:/bundle/"),
    ] {
        let line = failure_line(&out.stderr, variable)
            .unwrap_or_else(|| panic!("{variable} not listed:\n{}", out.stderr));
        assert!(line.contains(reference), "{line}");
        assert!(line.ends_with("(timeout)"), "{line}");
        assert!(line.contains("2s deadline"), "{line}");
    }
    // What did answer is not reported as failed (and not printed).
    assert!(
        failure_line(&out.stderr, "SM_PLAIN").is_none(),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("sm-plain-value"));
    assert!(
        out.stderr.contains("4 reference(s) could not be resolved"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("panicked"));
}

#[test]
fn a_stall_everywhere_also_ends_at_the_deadline() {
    let moto = Moto::start();
    let proxy = Proxy::start(&moto.endpoint);
    proxy.configure(json!({"faults": [{"kind": "stall"}]}));
    let mut cmd = proxy.envseal(&moto);
    cmd.env("ONE", "ssm:/x/one")
        .env("TWO", "sm:two")
        .env("THREE", "s3://some-bucket/three.env#K");
    let started = Instant::now();
    let out = exec_marker(cmd, &["--timeout", "1500ms"]);
    let elapsed = started.elapsed();
    out.expect_code(EXIT_RESOLUTION);
    assert!(!out.stdout.contains(STARTED));
    assert!(
        elapsed >= Duration::from_millis(1500) && elapsed < Duration::from_millis(2500),
        "{elapsed:?}"
    );
    for variable in ["ONE", "TWO", "THREE"] {
        let line = failure_line(&out.stderr, variable)
            .unwrap_or_else(|| panic!("{variable} not listed:\n{}", out.stderr));
        assert!(line.ends_with("(timeout)"), "{line}");
    }
}

#[test]
fn truncated_bodies_are_errors_never_partial_values() {
    let moto = Moto::start();
    seed_everything(&moto);
    let big = "v".repeat(3000) + "-tail-marker";
    moto.calls(json!([
        {"service": "ssm", "method": "put_parameter",
         "args": {"Name": "/trunc/big", "Value": big, "Type": "SecureString"}},
        {"service": "s3", "method": "create_bucket", "args": {"Bucket": "trunc-bucket"}},
        {"service": "s3", "method": "put_object",
         "args": {"Bucket": "trunc-bucket", "Key": "app.env",
                  "Body": bytes_arg(format!("S3_VALUE={big}\n").as_bytes())}},
    ]));
    let proxy = Proxy::start(&moto.endpoint);

    // Every SSM answer is cut in half (also the retries).
    proxy.configure(json!({"faults": [{"kind": "truncate", "target": "AmazonSSM.*"}]}));
    let mut cmd = proxy.envseal(&moto);
    cmd.env("AWS_MAX_ATTEMPTS", "2")
        .env("BIG", "ssm:/trunc/big")
        .env("SM_PLAIN", "sm:faults/plain");
    let out = exec_marker(cmd, &[]);
    out.expect_code(EXIT_RESOLUTION);
    assert!(!out.stdout.contains(STARTED), "the app started");
    let line = failure_line(&out.stderr, "BIG").unwrap_or_else(|| panic!("{}", out.stderr));
    assert!(line.contains("ssm:/trunc/big"), "{line}");
    assert!(!out.stderr.contains("vvvvvvvv"), "{}", out.stderr);
    assert!(!out.stderr.contains("panicked"));
    assert!(faulted(&proxy.stats(), "truncate") >= 1);

    // S3: the object body is cut (a streaming body, read after the headers).
    proxy.configure(json!({"faults": [{"kind": "truncate", "target": "GET /trunc-bucket/*"}]}));
    let mut cmd = proxy.envseal(&moto);
    cmd.env("AWS_MAX_ATTEMPTS", "2")
        .env("S3_VALUE", "s3://trunc-bucket/app.env#S3_VALUE")
        .env("P01", "ssm:/faults/p01");
    let out = exec_marker(cmd, &[]);
    out.expect_code(EXIT_RESOLUTION);
    assert!(!out.stdout.contains(STARTED), "the app started");
    let line = failure_line(&out.stderr, "S3_VALUE").unwrap_or_else(|| panic!("{}", out.stderr));
    assert!(
        line.contains("s3://trunc-bucket/app.env#S3_VALUE"),
        "{line}"
    );
    assert!(!out.stderr.contains("vvvvvvvv"), "{}", out.stderr);
    assert!(failure_line(&out.stderr, "P01").is_none(), "{}", out.stderr);

    // Secrets Manager.
    proxy.configure(json!({"faults": [{"kind": "truncate", "target": "secretsmanager.*"}]}));
    let mut cmd = proxy.envseal(&moto);
    cmd.env("AWS_MAX_ATTEMPTS", "2")
        .env("SM_TOKEN", "sm:faults/json#TOKEN");
    let out = exec_marker(cmd, &[]);
    out.expect_code(EXIT_RESOLUTION);
    assert!(!out.stdout.contains(STARTED));
    assert!(
        failure_line(&out.stderr, "SM_TOKEN").is_some(),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("sm-token"), "{}", out.stderr);
}

#[test]
fn a_single_truncated_answer_is_retried() {
    let moto = Moto::start();
    let expected = seed_everything(&moto);
    let proxy = Proxy::start(&moto.endpoint);
    proxy.configure(
        json!({"faults": [{"kind": "truncate", "first": 1, "target": "AmazonSSM.GetParameters"}]}),
    );
    let mut cmd = with_everything(proxy.envseal(&moto));
    cmd.env("AWS_MAX_ATTEMPTS", "10");
    let out = exec_env(cmd, &["--timeout", "60s"]);
    assert_all_resolved(&out, &expected);
    assert_eq!(faulted(&proxy.stats(), "truncate"), 1);
}

/// A corrupted (bit-flipped) S3 Encryption Client object: the AES-GCM tag
/// catches it; nothing of the plaintext comes out and the app does not start.
#[test]
fn a_corrupted_envelope_body_is_a_decryption_failure() {
    let moto = Moto::start();
    let key_id = moto.call("kms", "create_key", json!({}))["KeyMetadata"]["KeyId"]
        .as_str()
        .unwrap()
        .to_owned();
    let context = envseal::s3ec::cipher::encryption_context_for_push(&key_id);
    let data_key = moto.call(
        "kms",
        "generate_data_key",
        json!({"KeyId": key_id, "KeySpec": "AES_256", "EncryptionContext": context}),
    );
    let plaintext_key: [u8; 32] = bytes_of(&data_key["Plaintext"]).try_into().unwrap();
    let wrapped = bytes_of(&data_key["CiphertextBlob"]);
    let (body, metadata) = envseal::s3ec::cipher::encrypt_v2(
        &plaintext_key,
        &wrapped,
        &key_id,
        b"ENVELOPE_SECRET=envelope-plaintext-value\n",
        [5; 12],
    );
    let metadata: serde_json::Map<String, Value> =
        metadata.into_iter().map(|(k, v)| (k, json!(v))).collect();
    moto.calls(json!([
        {"service": "s3", "method": "create_bucket", "args": {"Bucket": "env-bucket"}},
        {"service": "s3", "method": "put_object",
         "args": {"Bucket": "env-bucket", "Key": "app.env", "Body": bytes_arg(&body),
                  "Metadata": metadata}},
    ]));
    let proxy = Proxy::start(&moto.endpoint);

    // Intact, through the proxy: it reads.
    let mut cmd = proxy.envseal(&moto);
    cmd.env("ENVSEAL_FROM", "s3://env-bucket/app.env");
    let out = exec_env(cmd, &[]);
    out.expect_code(0);
    assert_eq!(out.env()["ENVELOPE_SECRET"], "envelope-plaintext-value");

    // One flipped bit in the body. S3's own checksum (x-amz-checksum-crc32,
    // which boto3 stored) catches it first: an error, nothing released.
    proxy.configure(json!({"faults": [{"kind": "corrupt", "target": "GET /env-bucket/*"}]}));
    let mut cmd = proxy.envseal(&moto);
    cmd.env("AWS_MAX_ATTEMPTS", "2")
        .env("ONE", "s3://env-bucket/app.env#ENVELOPE_SECRET");
    let out = exec_marker(cmd, &[]);
    out.expect_code(EXIT_RESOLUTION);
    assert!(!out.stdout.contains(STARTED));
    assert!(failure_line(&out.stderr, "ONE").is_some(), "{}", out.stderr);
    assert!(!out.stderr.contains("envelope-plaintext"), "{}", out.stderr);

    // Without the checksum headers the damage reaches the envelope: the
    // AES-GCM tag refuses it.
    proxy.configure(json!({"faults": [
        {"kind": "corrupt", "target": "GET /env-bucket/*", "strip_checksums": true}
    ]}));
    let mut cmd = proxy.envseal(&moto);
    cmd.env("ENVSEAL_FROM", "s3://env-bucket/app.env")
        .env("ONE", "s3://env-bucket/app.env#ENVELOPE_SECRET");
    let out = exec_marker(cmd, &[]);
    out.expect_code(EXIT_RESOLUTION);
    assert!(!out.stdout.contains(STARTED));
    let line = failure_line(&out.stderr, "ONE").unwrap_or_else(|| panic!("{}", out.stderr));
    assert!(line.ends_with("(decrypt-failed)"), "{line}");
    let line = failure_line(&out.stderr, "(bundle)").unwrap_or_else(|| panic!("{}", out.stderr));
    assert!(line.ends_with("(decrypt-failed)"), "{line}");
    assert!(!out.stderr.contains("envelope-plaintext"), "{}", out.stderr);
    assert!(faulted(&proxy.stats(), "corrupt") >= 2);
}

/// Nothing half-applied: when one backend fails for good, the app does not
/// start even though everything else resolved, and only what failed is listed.
#[test]
fn one_failing_backend_means_nothing_starts() {
    let moto = Moto::start();
    seed_everything(&moto);
    let proxy = Proxy::start(&moto.endpoint);
    proxy.configure(json!({"faults": [{"kind": "500", "target": "secretsmanager.*"}]}));
    let mut cmd = with_everything(proxy.envseal(&moto));
    cmd.env("AWS_MAX_ATTEMPTS", "2");
    let out = exec_marker(cmd, &[]);
    out.expect_code(EXIT_RESOLUTION);
    assert!(!out.stdout.contains(STARTED), "the app started");
    for variable in ["SM_PLAIN", "SM_TOKEN"] {
        let line = failure_line(&out.stderr, variable).unwrap_or_else(|| panic!("{}", out.stderr));
        assert!(line.ends_with("(service-error)"), "{line}");
    }
    let line = failure_line(&out.stderr, "(bundle)").unwrap_or_else(|| panic!("{}", out.stderr));
    assert!(line.contains("sm:faults/bundle"), "{line}");
    // The 40 SSM variables resolved: none is listed.
    assert!(failure_line(&out.stderr, "P00").is_none(), "{}", out.stderr);
    assert!(
        out.stderr.contains("3 reference(s) could not be resolved"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("ssm-value-"), "{}", out.stderr);

    // The same when the failure is a reset on every attempt.
    proxy.configure(
        // Either way of listing a path: DescribeParameters + GetParameters,
        // or GetParametersByPath.
        json!({"faults": [{"kind": "reset", "target": [
            "AmazonSSM.DescribeParameters",
            "AmazonSSM.GetParametersByPath"
        ]}]}),
    );
    let mut cmd = with_everything(proxy.envseal(&moto));
    cmd.env("AWS_MAX_ATTEMPTS", "2");
    let out = exec_marker(cmd, &[]);
    out.expect_code(EXIT_RESOLUTION);
    assert!(!out.stdout.contains(STARTED), "the app started");
    let line = failure_line(&out.stderr, "(bundle)").unwrap_or_else(|| panic!("{}", out.stderr));
    assert!(line.contains("ssm:/bundle/"), "{line}");
    assert!(
        out.stderr.contains("1 reference(s) could not be resolved"),
        "{}",
        out.stderr
    );
}

/// The delay knob (for benchmarks) delays but changes nothing else.
#[test]
fn a_delayed_proxy_is_transparent() {
    let moto = Moto::start();
    let expected = seed_everything(&moto);
    let proxy = Proxy::start_with_args(&moto.endpoint, &["--delay-ms", "25"]);
    let started = Instant::now();
    let out = exec_env(with_everything(proxy.envseal(&moto)), &[]);
    assert_all_resolved(&out, &expected);
    // At least one round trip of 2 × 25 ms, and the path bundle's pages are
    // sequential.
    assert!(started.elapsed() >= Duration::from_millis(100));
    let stats = proxy.stats();
    assert_eq!(stats["faulted"], 0, "{stats}");
}

// ------------------------------------------------------------ fleet start
// PRODUCT.md §10: retries until the deadline, the attempt time limit, calls
// at the floor, and a small fleet against a shared rate.

/// Seeds `/fleet/pNN` (n SecureStrings) and returns the references.
fn seed_fleet_parameters(moto: &Moto, n: usize) -> Vec<(String, String)> {
    let ops: Vec<Value> = (0..n)
        .map(|i| {
            json!({"service": "ssm", "method": "put_parameter",
                "args": {"Name": format!("/fleet/p{i:02}"), "Value": format!("fleet-value-{i:02}"),
                         "Type": "SecureString"}})
        })
        .collect();
    moto.calls(Value::Array(ops));
    (0..n)
        .map(|i| (format!("P{i:02}"), format!("ssm:/fleet/p{i:02}")))
        .collect()
}

/// The attempt count in "... on all N attempts" / "... the first attempt".
fn attempts_in(line: &str) -> u32 {
    if line.contains("on the first attempt") {
        return 1;
    }
    line.split("on all ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no attempt count in {line}"))
}

/// The first attempt stalls (the proxy reads the request and never
/// answers); with a 1 s attempt limit envseal abandons it and asks again on
/// a new connection, and the app starts long before the 20 s deadline.
/// Without an attempt limit the stalled request would take the deadline.
#[test]
fn a_stalled_attempt_is_abandoned_and_retried_on_a_new_connection() {
    let moto = Moto::start();
    let refs = seed_fleet_parameters(&moto, 5);
    let proxy = Proxy::start(&moto.endpoint);
    for (how, flag) in [("flag", true), ("variable", false)] {
        proxy.reset_stats();
        proxy.configure(json!({"faults": [
            {"kind": "stall", "first": 1, "target": "AmazonSSM.GetParameters"}
        ]}));
        let mut cmd = proxy.envseal(&moto);
        for (name, reference) in &refs {
            cmd.env(name, reference);
        }
        let mut args = vec!["--timeout", "20s"];
        if flag {
            // The flag wins over the variable.
            cmd.env("ENVSEAL_ATTEMPT_TIMEOUT", "30s");
            args.extend(["--attempt-timeout", "1s"]);
        } else {
            cmd.env("ENVSEAL_ATTEMPT_TIMEOUT", "1s");
        }
        let out = exec_env(cmd, &args);
        out.expect_code(0);
        let env = out.env();
        assert_eq!(env["P00"], "fleet-value-00", "{how}");
        assert_eq!(env["P04"], "fleet-value-04", "{how}");
        assert!(
            !env.contains_key("ENVSEAL_ATTEMPT_TIMEOUT"),
            "{how}: ENVSEAL_ATTEMPT_TIMEOUT reached the app"
        );
        let stats = proxy.stats();
        assert_eq!(faulted(&stats, "stall"), 1, "{how}: {stats}");
        assert_eq!(
            requests_to(&stats, "AmazonSSM.GetParameters"),
            2,
            "{how}: {stats}"
        );
    }
}

/// A stall on every attempt: each one is abandoned at the attempt limit,
/// and the deadline's message says so and how many attempts were made.
#[test]
fn stalls_on_every_attempt_are_named_at_the_deadline() {
    let moto = Moto::start();
    let refs = seed_fleet_parameters(&moto, 3);
    let proxy = Proxy::start(&moto.endpoint);
    proxy.configure(json!({"faults": [{"kind": "stall", "target": "AmazonSSM.*"}]}));
    let mut cmd = proxy.envseal(&moto);
    for (name, reference) in &refs {
        cmd.env(name, reference);
    }
    let out = exec_marker(cmd, &["--timeout", "4s", "--attempt-timeout", "500ms"]);
    out.expect_code(EXIT_RESOLUTION);
    assert!(!out.stdout.contains(STARTED));
    let line = failure_line(&out.stderr, "P00").unwrap_or_else(|| panic!("{}", out.stderr));
    assert!(
        line.contains("no answer within the 4s deadline: "),
        "{line}"
    );
    assert!(
        line.contains("no answer within the 500ms attempt limit on all"),
        "{line}"
    );
    assert!(line.ends_with("(timeout)"), "{line}");
    // 4 s of 500 ms attempts with short backoffs in between.
    assert!(attempts_in(line) >= 3, "{line}");
    assert!(faulted(&proxy.stats(), "stall") >= 3);
}

/// Throttled for good: envseal keeps trying until the deadline (no
/// AWS_MAX_ATTEMPTS), then says that the reference was throttled and how
/// many times; what was not throttled is not listed. With AWS_MAX_ATTEMPTS
/// it stops after that many attempts.
#[test]
fn throttling_is_retried_until_the_deadline_and_the_failure_says_so() {
    let moto = Moto::start();
    let refs = seed_fleet_parameters(&moto, 3);
    moto.call(
        "secretsmanager",
        "create_secret",
        json!({"Name": "fleet/sm", "SecretString": "sm-fleet-value"}),
    );
    let proxy = Proxy::start(&moto.endpoint);
    proxy.configure(json!({"faults": [{"kind": "throttle", "target": "AmazonSSM.*"}]}));
    let with_refs = |mut cmd: Command| {
        for (name, reference) in &refs {
            cmd.env(name, reference);
        }
        cmd.env("SM", "sm:fleet/sm");
        cmd
    };
    let out = exec_marker(with_refs(proxy.envseal(&moto)), &["--timeout", "5s"]);
    out.expect_code(EXIT_RESOLUTION);
    assert!(!out.stdout.contains(STARTED));
    for variable in ["P00", "P01", "P02"] {
        let line = failure_line(&out.stderr, variable).unwrap_or_else(|| panic!("{}", out.stderr));
        assert!(
            line.contains("no answer within the 5s deadline: throttled (ThrottlingException) on "),
            "{line}"
        );
        assert!(line.ends_with("(timeout)"), "{line}");
        assert!(attempts_in(line) >= 2, "{line}");
    }
    assert!(failure_line(&out.stderr, "SM").is_none(), "{}", out.stderr);
    assert!(!out.stderr.contains("fleet-value"), "{}", out.stderr);
    assert!(!out.stderr.contains("sm-fleet-value"), "{}", out.stderr);
    assert!(
        out.stderr.contains("3 reference(s) could not be resolved"),
        "{}",
        out.stderr
    );

    // AWS_MAX_ATTEMPTS still caps attempts: one batch, two requests.
    proxy.reset_stats();
    let mut cmd = with_refs(proxy.envseal(&moto));
    cmd.env("AWS_MAX_ATTEMPTS", "2");
    let out = exec_marker(cmd, &["--timeout", "60s"]);
    out.expect_code(EXIT_RESOLUTION);
    let line = failure_line(&out.stderr, "P00").unwrap_or_else(|| panic!("{}", out.stderr));
    assert!(
        line.contains("ThrottlingException: Rate exceeded (after 2 attempts)"),
        "{line}"
    );
    assert!(line.ends_with("(service-error)"), "{line}");
    let stats = proxy.stats();
    assert_eq!(requests_to(&stats, "AmazonSSM.GetParameters"), 2, "{stats}");
}

/// Eight 503s in a row on the one batch: more than the SDK's (and envseal's
/// former) attempt count, outlasted without AWS_MAX_ATTEMPTS.
#[test]
fn more_transient_errors_than_any_fixed_count_are_outlasted() {
    let moto = Moto::start();
    let refs = seed_fleet_parameters(&moto, 4);
    let proxy = Proxy::start(&moto.endpoint);
    proxy.configure(json!({"faults": [
        {"kind": "503", "first": 8, "target": "AmazonSSM.GetParameters"}
    ]}));
    let mut cmd = proxy.envseal(&moto);
    for (name, reference) in &refs {
        cmd.env(name, reference);
    }
    let out = exec_env(cmd, &["--timeout", "50s"]);
    out.expect_code(0);
    assert_eq!(out.env()["P03"], "fleet-value-03");
    let stats = proxy.stats();
    assert_eq!(faulted(&stats, "503"), 8, "{stats}");
    assert_eq!(requests_to(&stats, "AmazonSSM.GetParameters"), 9, "{stats}");
}

/// Denials are answers: never retried (one batch call, one single-item call
/// per name after it, nothing more), whatever the deadline.
#[test]
fn denials_are_not_retried() {
    let moto = Moto::start();
    let refs = seed_fleet_parameters(&moto, 3);
    let proxy = Proxy::start(&moto.endpoint);
    proxy.configure(json!({"faults": [{"kind": "403html", "target": "AmazonSSM.*"}]}));
    let mut cmd = proxy.envseal(&moto);
    for (name, reference) in &refs {
        cmd.env(name, reference);
    }
    cmd.env("GONE", "ssm:/fleet/missing");
    let out = exec_marker(cmd, &["--timeout", "30s"]);
    out.expect_code(EXIT_RESOLUTION);
    let line = failure_line(&out.stderr, "P00").unwrap_or_else(|| panic!("{}", out.stderr));
    assert!(line.ends_with("(access-denied)"), "{line}");
    let stats = proxy.stats();
    assert_eq!(requests_to(&stats, "AmazonSSM.GetParameters"), 1, "{stats}");
    assert_eq!(requests_to(&stats, "AmazonSSM.GetParameter"), 4, "{stats}");

    // Not found: one call, no retry.
    proxy.reset_stats();
    proxy.configure(json!({}));
    let mut cmd = proxy.envseal(&moto);
    cmd.env("GONE", "ssm:/fleet/missing");
    let out = exec_marker(cmd, &[]);
    out.expect_code(EXIT_RESOLUTION);
    let line = failure_line(&out.stderr, "GONE").unwrap_or_else(|| panic!("{}", out.stderr));
    assert!(line.ends_with("(not-found)"), "{line}");
    assert_eq!(proxy.stats()["total"], 1);
}

/// Calls per start stay at the floor: ⌈SSM/10⌉ + ⌈SM/20⌉ + one per S3
/// object + one per KMS blob, with references by ARN in the configured
/// region in the same batches as those by name.
#[test]
fn arns_and_names_share_batches_and_calls_stay_at_the_floor() {
    let moto = Moto::start();
    let mut refs = seed_fleet_parameters(&moto, 25);
    for i in 25..30 {
        moto.call(
            "ssm",
            "put_parameter",
            json!({"Name": format!("/fleet/p{i:02}"), "Value": format!("fleet-value-{i:02}"),
                   "Type": "SecureString"}),
        );
        refs.push((
            format!("P{i:02}"),
            format!(
                "arn:aws:ssm:us-east-1:{}:parameter/fleet/p{i:02}",
                support::ACCOUNT_ID
            ),
        ));
    }
    let mut ops = Vec::new();
    for i in 0..20 {
        ops.push(
            json!({"service": "secretsmanager", "method": "create_secret",
            "args": {"Name": format!("fleet/s{i:02}"), "SecretString": format!("secret-{i:02}")}}),
        );
    }
    let created = moto.calls(Value::Array(ops));
    for (i, secret) in created.iter().enumerate() {
        let reference = if i < 15 {
            format!("sm:fleet/s{i:02}")
        } else {
            // By ARN (the ECS valueFrom form), in the configured region.
            secret["ARN"].as_str().unwrap().to_owned()
        };
        refs.push((format!("S{i:02}"), reference));
    }
    let key_id = moto.call("kms", "create_key", json!({}))["KeyMetadata"]["KeyId"]
        .as_str()
        .unwrap()
        .to_owned();
    let blob = support::s3::kms_encrypt(&moto, &key_id, b"kms-fleet-value");
    moto.calls(json!([
        {"service": "s3", "method": "create_bucket", "args": {"Bucket": "fleet-bucket"}},
        {"service": "s3", "method": "put_object",
         "args": {"Bucket": "fleet-bucket", "Key": "app.env", "Body": bytes_arg(b"S3_A=s3-a\n")}},
    ]));
    refs.push(("KMS_VALUE".into(), format!("kms:{}", support::b64(&blob))));
    refs.push(("S3_A".into(), "s3://fleet-bucket/app.env#S3_A".into()));

    let proxy = Proxy::start(&moto.endpoint);
    let mut cmd = proxy.envseal(&moto);
    for (name, reference) in &refs {
        cmd.env(name, reference);
    }
    let out = exec_env(cmd, &[]);
    out.expect_code(0);
    let env = out.env();
    assert_eq!(env["P00"], "fleet-value-00");
    assert_eq!(env["P29"], "fleet-value-29");
    assert_eq!(env["S00"], "secret-00");
    assert_eq!(env["S19"], "secret-19");
    assert_eq!(env["KMS_VALUE"], "kms-fleet-value");
    assert_eq!(env["S3_A"], "s3-a");
    let stats = proxy.stats();
    // 30 SSM references: 3 batches, ARNs included (moto answers ARNs as
    // invalid in GetParameters, which AWS does not: envseal then reads
    // those 5 by GetParameter).
    assert_eq!(requests_to(&stats, "AmazonSSM.GetParameters"), 3, "{stats}");
    assert_eq!(requests_to(&stats, "AmazonSSM.GetParameter"), 5, "{stats}");
    // 20 secrets, 5 of them by ARN: one batch.
    assert_eq!(
        requests_to(&stats, "secretsmanager.BatchGetSecretValue"),
        1,
        "{stats}"
    );
    assert_eq!(
        requests_to(&stats, "secretsmanager.GetSecretValue"),
        0,
        "{stats}"
    );
    assert_eq!(
        requests_to(&stats, "GET /fleet-bucket/app.env"),
        1,
        "{stats}"
    );
    assert_eq!(requests_to(&stats, "TrentService.Decrypt"), 1, "{stats}");
    assert_eq!(stats["total"], 3 + 5 + 1 + 1 + 1, "{stats}");
}

/// `--splay`/`ENVSEAL_SPLAY` take a duration or 0; anything else is a
/// configuration error (no panic, nothing started), and the variable does
/// not reach the app.
#[test]
fn splay_is_validated_and_kept_from_the_app() {
    let moto = Moto::start();
    let refs = seed_fleet_parameters(&moto, 1);
    let with_refs = |mut cmd: Command| {
        for (name, reference) in &refs {
            cmd.env(name, reference);
        }
        cmd
    };
    for (flag, variable) in [
        (Some("banana"), None),
        (None, Some("banana")),
        (None, Some("-1s")),
    ] {
        let mut cmd = with_refs(moto.envseal());
        let args = setting(&mut cmd, ("--splay", flag), ("ENVSEAL_SPLAY", variable));
        assert_config_error(&exec_marker(cmd, &args), "splay");
    }
    let mut cmd = with_refs(moto.envseal());
    cmd.env("ENVSEAL_SPLAY", "0");
    let out = exec_env(cmd, &["--splay", "50ms"]);
    out.expect_code(0);
    let env = out.env();
    assert_eq!(env["P00"], "fleet-value-00");
    assert!(!env.contains_key("ENVSEAL_SPLAY"), "{env:?}");
    let out = exec_marker(with_refs(moto.envseal()), &["--attempt-timeout", "soon"]);
    assert_config_error(&out, "attempt timeout");
}

/// A small fleet against a shared rate: 40 starts at once, 30 SSM references
/// each, the proxy allowing 10 SSM requests per second (burst 10) to all of
/// them together — 120 calls, a 12 s floor — and the default 30 s deadline.
/// Every start succeeds, and throttled answers stay well below what
/// per-call retries draw. (Not timed: the figures are bench/fleet.py's.)
#[test]
fn a_small_fleet_against_a_shared_rate_starts_without_a_failure() {
    let moto = Moto::start();
    let refs = seed_fleet_parameters(&moto, 30);
    let proxy = Proxy::start(&moto.endpoint);
    proxy.configure(json!({"rate_limits": [
        {"target": "AmazonSSM.GetParameter*", "rate": 10, "burst": 10}
    ]}));
    let starts: Vec<_> = (0..40)
        .map(|_| {
            let mut cmd = proxy.envseal(&moto);
            for (name, reference) in &refs {
                cmd.env(name, reference);
            }
            cmd.args(["exec", "--", "sh", "-c", &format!("echo {STARTED}")]);
            std::thread::spawn(move || support::run_timeout(&mut cmd, Duration::from_secs(120)))
        })
        .collect();
    let outs: Vec<Run> = starts.into_iter().map(|t| t.join().unwrap()).collect();
    let failed: Vec<&Run> = outs.iter().filter(|o| o.code != Some(0)).collect();
    let stats = proxy.stats();
    assert!(
        failed.is_empty(),
        "{} of 40 starts failed; the first:\n{}\n{stats}",
        failed.len(),
        failed[0].stderr
    );
    assert!(outs.iter().all(|o| o.stdout.contains(STARTED)));
    // The rate limit really bit: this was a contended start.
    assert!(faulted(&stats, "throttle") >= 40, "{stats}");
    // Successful calls stayed at the floor: 3 per start.
    let throttled = faulted(&stats, "throttle");
    let calls = requests_to(&stats, "AmazonSSM.GetParameters") - throttled;
    assert_eq!(calls, 120, "{stats}");
    // The fleet backed off together instead of hammering the service: the
    // first wave alone is ~110 throttled answers, and after it each task
    // waited in throttled rounds (src/backend/retry.rs): 112-119 in all
    // (under 1 per call). When envseal left retries to the SDK (a fixed
    // count per call) this fleet drew ~370 (3.1 per call); with calls
    // taking turns behind a window that answers shrank, ~165 (1.4). Not a
    // timing: a count, with a margin.
    assert!(
        throttled <= 150,
        "{throttled} throttled answers for 120 calls: {stats}"
    );
}

/// `--throttle-window`/`ENVSEAL_THROTTLE_WINDOW` size the wait after a
/// throttled round: three batches throttled together wait within three
/// windows (the debug line names the window, never a value), the start
/// succeeds, the variable does not reach the app, and a malformed window is
/// a configuration error.
#[test]
fn the_throttle_window_sizes_the_wait_after_a_throttled_round() {
    const FLAG: &str = "--throttle-window";
    const VARIABLE: &str = "ENVSEAL_THROTTLE_WINDOW";
    let moto = Moto::start();
    let refs = seed_fleet_parameters(&moto, 30);
    let proxy = Proxy::start(&moto.endpoint);
    let with_refs = |mut cmd: Command| {
        for (name, reference) in &refs {
            cmd.env(name, reference);
        }
        cmd.env("ENVSEAL_LOG", "debug");
        cmd
    };
    for (flag, variable, window) in [
        (Some("20ms"), None, "window_ms=60 "),
        (None, Some("1s"), "window_ms=3000 "),
        (Some("40ms"), Some("1s"), "window_ms=120 "),
    ] {
        proxy.reset_stats();
        proxy.configure(json!({"faults": [
            {"kind": "throttle", "first": 3, "target": "AmazonSSM.*"}
        ]}));
        let mut cmd = with_refs(proxy.envseal(&moto));
        let args = setting(&mut cmd, (FLAG, flag), (VARIABLE, variable));
        let out = exec_env(cmd, &args);
        out.expect_code(0);
        let env = out.env();
        assert_eq!(env["P00"], "fleet-value-00");
        assert_eq!(env["P29"], "fleet-value-29");
        assert!(!env.contains_key(VARIABLE), "{env:?}");
        let round = out
            .stderr
            .lines()
            .find(|l| l.contains("throttled round; waiting"))
            .unwrap_or_else(|| panic!("{}", out.stderr));
        assert!(round.contains("throttled=3 "), "{round}");
        assert!(round.contains(window), "{flag:?} {variable:?}: {round}");
        assert!(!out.stderr.contains("fleet-value"), "{}", out.stderr);
        let stats = proxy.stats();
        assert_eq!(faulted(&stats, "throttle"), 3, "{stats}");
        assert_eq!(requests_to(&stats, "AmazonSSM.GetParameters"), 6, "{stats}");
    }
    for (flag, variable) in [(Some("soon"), None), (None, Some("0s"))] {
        let mut cmd = with_refs(moto.envseal());
        let args = setting(&mut cmd, (FLAG, flag), (VARIABLE, variable));
        assert_config_error(&exec_marker(cmd, &args), "throttle window");
    }
}

// ---------------------------------------- endpoints that never answer

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
