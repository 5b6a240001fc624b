//! Behaviour under network and service faults (issue 7), through the
//! fault-injecting proxy (`tests/support/proxy.py`) between envseal and moto:
//! throttling, 5xx bursts, connection resets, a stalled endpoint, truncated
//! and corrupted bodies. Every schedule is seeded or counted ("the first N
//! requests"), so a run is reproducible; the one timing assertion (a stall
//! fails within the deadline plus one second) has a full second of slack.
//!
//! Retries are the SDK's standard mode (jittered exponential backoff on
//! throttling, 5xx and I/O errors), 6 attempts unless `AWS_MAX_ATTEMPTS` or
//! the profile says otherwise; 30 % throttling resolves at that default, and
//! other tests set `AWS_MAX_ATTEMPTS` where their schedule needs it.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{bytes_arg, bytes_of, run, Moto, Proxy, Run};

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
    let blob = bytes_of(
        &moto.call(
            "kms",
            "encrypt",
            json!({"KeyId": key_id, "Plaintext": bytes_arg(b"kms-inline-value")}),
        )["CiphertextBlob"],
    );
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
    let context = envseal::document::envelope::encryption_context_for_push(&key_id);
    let data_key = moto.call(
        "kms",
        "generate_data_key",
        json!({"KeyId": key_id, "KeySpec": "AES_256", "EncryptionContext": context}),
    );
    let plaintext_key: [u8; 32] = bytes_of(&data_key["Plaintext"]).try_into().unwrap();
    let wrapped = bytes_of(&data_key["CiphertextBlob"]);
    let (body, metadata) = envseal::document::envelope::encrypt_v2(
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
