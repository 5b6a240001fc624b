//! Hostile and malformed input, running the binary: every malformed
//! reference form, dotenv and JSON documents with edge cases (BOM, CRLF,
//! unterminated quotes, duplicate keys, invalid UTF-8, huge lines), bundle
//! keys that are not valid variable names, values containing NUL, invalid
//! base64, references that are not UTF-8, and an environment larger than
//! the kernel accepts. Each must give a clear error (exit 111, or 126 for
//! E2BIG), name the variable, never print a value, never panic, and never
//! start the application.

mod support;

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::process::Command;

use serde_json::{json, Value};
use support::{bytes_arg, envseal_bare, run, Moto, Run};

const EXIT_RESOLUTION: i32 = 111;
const EXIT_NOT_EXECUTABLE: i32 = 126;
const STARTED: &str = "app-started";

fn exec_marker(mut cmd: Command, extra: &[&str]) -> Run {
    cmd.arg("exec")
        .args(extra)
        .args(["--", "sh", "-c", &format!("echo {STARTED}")]);
    run(&mut cmd)
}

fn exec_env(mut cmd: Command, extra: &[&str]) -> Run {
    cmd.arg("exec").args(extra).args(["--", "/usr/bin/env"]);
    run(&mut cmd)
}

/// Exit 111, the app not started, no panic, and a failure line for
/// `variable` that ends with `(kind)`. Returns that line.
fn assert_refused<'a>(out: &'a Run, variable: &str, kind: &str) -> &'a str {
    out.expect_code(EXIT_RESOLUTION);
    assert!(
        !out.stdout.contains(STARTED),
        "the app started:\n{}",
        out.stderr
    );
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    let prefix = format!("envseal: {variable}: ");
    let line = out
        .stderr
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no failure line for {variable}:\n{}", out.stderr));
    assert!(line.ends_with(&format!("({kind})")), "{line}");
    line
}

// ------------------------------------------------------------ references

/// Every malformed reference form: (value, what the reason must mention).
fn malformed_references() -> Vec<(String, &'static str)> {
    let long_name = format!("ssm:/{}", "a".repeat(3000));
    let long_label = format!("ssm:/a:{}", "l".repeat(101));
    let long_secret = format!("sm:{}", "s".repeat(3000));
    let long_key = format!("s3://bucket/{}", "k".repeat(1100));
    let table: Vec<(&str, &str)> = vec![
        // ssm:
        ("ssm:", "empty parameter name"),
        ("ssm:/a b", "invalid character"),
        ("ssm:/a/b:", "empty version"),
        ("ssm:/a/b:1:2", "more than one"),
        ("ssm:/a/b:01", "positive"),
        ("ssm:/a/b:0", "positive"),
        ("ssm:/a/b:1234567890123456789", "positive"),
        ("ssm:/a/b:1abc", "label"),
        ("ssm:/a/b:la bel", "label"),
        ("ssm:/a//b", "//"),
        ("ssm:a/b", "must start with '/'"),
        ("ssm:/a/b/", "bundle"),
        ("ssm:/a?bogus", "unknown option"),
        ("ssm:/a?", "empty options"),
        ("ssm:/a#k", "'#KEY'"),
        ("ssm:/a?version-stage=x", "version"),
        ("ssm:/a?encryption=kms", "encryption"),
        ("ssm:/a?optional=maybe", "unknown option"),
        (
            "ssm:arn:aws:ssm:us-east-1:1:parameter/x",
            "without the 'ssm:' prefix",
        ),
        ("ssm:/ä", "invalid character"),
        ("ssm:/a\tb", "control character"),
        ("ssm:/a\u{7f}", "control character"),
        ("ssm:/a\u{1b}[31m", "control character"),
        // SSM ARNs
        ("arn:aws:ssm", "too few fields"),
        ("arn:aws:ssm::1:parameter/x", "region"),
        ("arn:aws:ssm:US-EAST-1:1:parameter/x", "region"),
        ("arn:aws:ssm:us-east-1:1:document/x", "parameter/NAME"),
        ("arn:aws:ssm:us-east-1:1:parameter", "parameter/NAME"),
        ("arn:aws:ssm:us-east-1:1:parameter/a/b/", "path"),
        ("arn:aws:ssm:us-east-1:1:parameter/x#k", "'#KEY'"),
        ("arn:aws:ssm:us-east-1:1:parameter/x:", "empty version"),
        // sm:
        ("sm:", "empty secret id"),
        ("sm:a#", "empty key"),
        ("sm:a?version-stage", "needs a value"),
        ("sm:a?version-stage=", "needs a value"),
        ("sm:a?version-id", "needs a value"),
        ("sm:a b", "invalid character"),
        ("sm:a:b", "':'"),
        ("sm:a?encryption=kms", "encryption"),
        ("sm:a?optional&bogus", "unknown option"),
        ("sm:a\"b", "invalid character"),
        ("sm:a?version-stage=A&version-stage=B", "twice"),
        ("sm:a?version-id=1&version-id=2", "twice"),
        // Secrets Manager ARNs
        (
            "arn:aws:secretsmanager:us-east-1:1:secret:",
            "empty secret id",
        ),
        (
            "arn:aws:secretsmanager:us-east-1:1:secret:n:a:b:c:d",
            "more than",
        ),
        ("arn:aws:secretsmanager:us-east-1:1:secret:n:K#K2", "twice"),
        (
            "arn:aws:secretsmanager:us-east-1:1:secret:n::AWSCURRENT:?version-stage=X",
            "twice",
        ),
        (
            "arn:aws:secretsmanager:us-east-1:1:notsecret:n",
            "secret:NAME",
        ),
        ("arn:aws:secretsmanager::1:secret:n", "region"),
        (
            "arn:aws:secretsmanager:us-east-1:1:secret:n?encryption=none",
            "encryption",
        ),
        // s3://
        ("s3://", "s3://BUCKET/KEY"),
        ("s3://bucket", "s3://BUCKET/KEY"),
        ("s3://bucket/", "empty object key"),
        ("s3://Bad_Bucket/k", "bucket"),
        ("s3://ab/k", "bucket"),
        ("s3://-bucket/k", "bucket"),
        ("s3://bucket/dir/", "prefix"),
        ("s3://bucket/k#", "empty key"),
        ("s3://bucket/k?encryption=rot13", "unknown encryption"),
        ("s3://bucket/k?version-stage=x", "version"),
        ("s3://bucket/k?version-id=1", "version"),
        ("s3://bucket/k?encryption=kms&encryption=none", "twice"),
        // kms:
        ("kms:", "empty"),
        ("kms:not base64!", "base64"),
        ("kms:====", "base64"),
        ("kms:QUJD\u{2028}", "base64"),
        ("kms:AQID#x", "'#KEY'"),
        ("kms:AQID?version-id=1", "version"),
        ("kms:AQID?encryption=kms", "encryption"),
    ];
    let mut table: Vec<(String, &'static str)> = table
        .into_iter()
        .map(|(r, why)| (r.to_owned(), why))
        .collect();
    table.push((long_name, "longer than 2048"));
    table.push((long_label, "label"));
    table.push((long_secret, "longer than 2048"));
    table.push((long_key, "longer than 1024"));
    table
}

#[test]
fn every_malformed_reference_is_refused_with_the_variable_named() {
    for (i, (reference, why)) in malformed_references().into_iter().enumerate() {
        let variable = format!("HOSTILE_{i}");
        let mut cmd = envseal_bare();
        cmd.env(&variable, &reference)
            .env("INNOCENT", "plain value");
        let out = exec_marker(cmd, &[]);
        let line = assert_refused(&out, &variable, "malformed");
        assert!(
            line.contains(why),
            "{reference:?}: the reason does not mention {why:?}: {line}"
        );
        assert!(
            out.stderr.contains("1 reference(s) could not be resolved"),
            "{}",
            out.stderr
        );
        // A malformed reference is a configuration error: no AWS work, so
        // no region or credentials were needed to report it.
        assert!(
            !out.stderr.contains("region") || why == "region",
            "{}",
            out.stderr
        );
    }
}

#[test]
fn all_malformed_references_are_listed_at_once() {
    let table = malformed_references();
    let mut cmd = envseal_bare();
    for (i, (reference, _)) in table.iter().enumerate() {
        cmd.env(format!("HOSTILE_{i}"), reference);
    }
    let out = exec_marker(cmd, &[]);
    out.expect_code(EXIT_RESOLUTION);
    assert!(!out.stdout.contains(STARTED));
    assert!(
        out.stderr.contains(&format!(
            "{} reference(s) could not be resolved",
            table.len()
        )),
        "{}",
        out.stderr
    );
    for i in 0..table.len() {
        assert!(
            out.stderr.contains(&format!("envseal: HOSTILE_{i}: ")),
            "HOSTILE_{i} not listed"
        );
    }
}

#[test]
fn malformed_bundle_sources_are_refused() {
    for source in [
        "ssm:relative/",
        "ssm:/a/b:3",
        "ssm:/a#k",
        "sm:prod/api#KEY",
        "kms:AQID",
        "https://example.com/x.env",
        "s3://bucket",
        "s3://bucket/k#NAME",
        "arn:aws:ssm:us-east-1:1:parameter/a:3",
        "ssm:/a\u{1}/",
    ] {
        for via_env in [false, true] {
            let mut cmd = envseal_bare();
            let extra: Vec<&str> = if via_env {
                cmd.env("ENVSEAL_FROM", source);
                vec![]
            } else {
                vec!["--from", source]
            };
            let out = exec_marker(cmd, &extra);
            let line = assert_refused(&out, "(bundle)", "malformed");
            assert!(line.contains("malformed source"), "{line}");
        }
    }
}

#[test]
fn references_that_are_not_utf8_fail_closed() {
    let mut cmd = envseal_bare();
    cmd.env("BAD", OsString::from_vec(b"ssm:/prod/\xff\xfe".to_vec()))
        .env("PLAIN_BINARY", OsString::from_vec(b"\xff\xfe".to_vec()));
    let out = exec_marker(cmd, &[]);
    let line = assert_refused(&out, "BAD", "malformed");
    assert!(line.contains("UTF-8"), "{line}");

    let mut cmd = envseal_bare();
    cmd.env(
        OsString::from_vec(b"NAME_\xff".to_vec()),
        "sm:prod/api#TOKEN",
    );
    let out = exec_marker(cmd, &[]);
    out.expect_code(EXIT_RESOLUTION);
    assert!(!out.stdout.contains(STARTED));
    assert!(
        out.stderr.contains("name is not valid UTF-8"),
        "{}",
        out.stderr
    );

    // A plain variable that is not UTF-8 (and not a reference) passes
    // through untouched, byte for byte.
    let mut cmd = envseal_bare();
    cmd.env("PLAIN_BINARY", OsString::from_vec(b"\xff\xfe-x".to_vec()))
        .args([
            "exec",
            "--",
            "sh",
            "-c",
            "printf %s \"$PLAIN_BINARY\" | od -An -tx1",
        ]);
    let out = run(&mut cmd);
    out.expect_code(0);
    assert_eq!(
        out.stdout.split_whitespace().collect::<Vec<_>>(),
        ["ff", "fe", "2d", "78"]
    );
}

#[test]
fn bad_configuration_values_are_refused() {
    for (flag, value) in [
        ("--timeout", "soon"),
        ("--timeout", "0s"),
        ("--timeout", "-5s"),
        ("--timeout", "NaNs"),
        ("--timeout", "99999999999999999999s"),
        ("--collision", "merge"),
        ("--log-level", "loud"),
        ("--log-format", "xml"),
    ] {
        let out = exec_marker(envseal_bare(), &[flag, value]);
        out.expect_code(EXIT_RESOLUTION);
        assert!(!out.stdout.contains(STARTED));
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
        assert!(
            out.stderr.contains("configuration error"),
            "{flag} {value}: {}",
            out.stderr
        );
    }
    for (variable, value) in [
        ("ENVSEAL_TIMEOUT", "1e400"),
        ("ENVSEAL_INIT", "maybe"),
        ("ENVSEAL_COLLISION", ""),
        ("ENVSEAL_LOG", "\u{1b}[2J"),
    ] {
        let mut cmd = envseal_bare();
        cmd.env(variable, value);
        let out = exec_marker(cmd, &[]);
        out.expect_code(EXIT_RESOLUTION);
        assert!(!out.stdout.contains(STARTED));
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    }
}

// -------------------------------------------------------------- documents

/// Puts plain objects into one bucket.
fn put_objects(moto: &Moto, bucket: &str, objects: &[(&str, Vec<u8>)]) {
    let mut ops =
        vec![json!({"service": "s3", "method": "create_bucket", "args": {"Bucket": bucket}})];
    for (key, body) in objects {
        ops.push(json!({"service": "s3", "method": "put_object",
            "args": {"Bucket": bucket, "Key": key, "Body": bytes_arg(body)}}));
    }
    moto.calls(Value::Array(ops));
}

const SECRET: &str = "hostile-secret-7f3a";

#[test]
fn dotenv_and_json_edge_cases() {
    let moto = Moto::start();
    let huge_value = "h".repeat(100 * 1024);
    let huge_line_no_equals = "x".repeat(1024 * 1024);
    let objects: Vec<(&str, Vec<u8>)> = vec![
        // accepted
        (
            "bom.env",
            format!("\u{feff}BOM_A=1\r\nBOM_B={SECRET}\r\n").into_bytes(),
        ),
        (
            "crlf.env",
            b"CRLF_A=\"multi\r\nline\"\r\nCRLF_B='x'\r\n".to_vec(),
        ),
        (
            "bom.json",
            format!("\u{feff}{{\"json_a\": \"{SECRET}\", \"json_n\": 1e3}}").into_bytes(),
        ),
        ("huge.env", format!("HUGE={huge_value}\n").into_bytes()),
        // refused
        (
            "unterminated.env",
            format!("A=1\nB=\"{SECRET}\nC=3\n").into_bytes(),
        ),
        (
            "unterminated-single.env",
            format!("A='{SECRET}").into_bytes(),
        ),
        (
            "trailing.env",
            format!("A=\"{SECRET}\" junk\n").into_bytes(),
        ),
        ("dup.env", format!("A=1\nA={SECRET}\n").into_bytes()),
        (
            "dup.json",
            format!("{{\"a\": \"1\", \"a\": \"{SECRET}\"}}").into_bytes(),
        ),
        (
            "utf8.env",
            [b"OK=1\nB=".as_slice(), SECRET.as_bytes(), b"\xff\xfe\n"].concat(),
        ),
        (
            "utf8.json",
            [b"{\"a\": \"".as_slice(), SECRET.as_bytes(), b"\xc3\x28\"}"].concat(),
        ),
        ("hugeline.env", huge_line_no_equals.clone().into_bytes()),
        ("badkey.env", format!("1ABC={SECRET}\n").into_bytes()),
        ("nul.env", format!("A={SECRET}\0tail\n").into_bytes()),
        (
            "nul.json",
            format!("{{\"a\": \"{SECRET}\\u0000\"}}").into_bytes(),
        ),
        (
            "nested.json",
            format!("{{\"a\": {{\"b\": \"{SECRET}\"}}}}").into_bytes(),
        ),
        ("null.json", b"{\"a\": null}".to_vec()),
        ("array.json", b"[1, 2]".to_vec()),
        (
            "syntax.json",
            format!("{{\"a\": \"{SECRET}\",}}").into_bytes(),
        ),
        (
            "truncated.json",
            format!("{{\"a\": \"{SECRET}").into_bytes(),
        ),
    ];
    put_objects(&moto, "docs", &objects);

    // Accepted forms.
    let mut cmd = moto.envseal();
    cmd.env(
        "ENVSEAL_FROM",
        "s3://docs/bom.env,s3://docs/crlf.env,s3://docs/bom.json,s3://docs/huge.env",
    );
    let out = exec_env(cmd, &[]);
    out.expect_code(0);
    let env = out.env();
    assert_eq!(env["BOM_A"], "1");
    assert_eq!(env["BOM_B"], SECRET);
    assert_eq!(env["CRLF_B"], "x");
    assert_eq!(env["JSON_A"], SECRET);
    // A number is its JSON text as written (PRODUCT.md §4).
    assert_eq!(env["JSON_N"], "1e3");
    assert_eq!(env["HUGE"].len(), huge_value.len());
    assert!(out.stdout.contains("CRLF_A=multi\nline"), "{}", out.stdout);
    assert!(!out.stderr.contains(SECRET));

    // Refused forms: as a bundle and as one key, each names where it
    // failed, never what the line said.
    for (key, mention) in [
        (
            "unterminated.env",
            "line 2: quoted value has no closing quote",
        ),
        (
            "unterminated-single.env",
            "line 1: quoted value has no closing quote",
        ),
        ("trailing.env", "line 1: unexpected characters"),
        ("dup.env", "key \"A\" is defined twice (lines 1 and 2)"),
        ("dup.json", "JSON key \"a\" appears more than once"),
        ("utf8.env", "line 2: not valid UTF-8"),
        ("utf8.json", "not valid UTF-8"),
        ("hugeline.env", "line 1: expected KEY=VALUE"),
        ("badkey.env", "line 1: invalid key"),
        ("nul.env", "line 1: value contains a NUL"),
        ("nul.json", "NUL"),
        ("nested.json", "holds an object"),
        ("null.json", "holds null"),
        ("array.json", "line 1: expected KEY=VALUE"),
        ("syntax.json", "invalid JSON at line 1"),
        ("truncated.json", "invalid JSON"),
    ] {
        let source = format!("s3://docs/{key}");
        let mut cmd = moto.envseal();
        cmd.env("ENVSEAL_FROM", &source)
            .env("ONE", format!("{source}#A"));
        let out = exec_marker(cmd, &[]);
        let line = assert_refused(&out, "(bundle)", "invalid-value");
        assert!(line.contains(&source), "{line}");
        assert!(
            line.contains(mention),
            "{key}: expected {mention:?} in {line}"
        );
        assert_refused(&out, "ONE", "invalid-value");
        assert!(
            !out.stderr.contains(SECRET),
            "{key} leaked:\n{}",
            out.stderr
        );
        assert!(!out.stderr.contains("xxxxxxxx"), "{key} quoted a line");
        assert!(
            out.stderr.len() < 4096,
            "{key}: {} bytes of stderr",
            out.stderr.len()
        );
    }
}

#[test]
fn bundle_keys_that_are_not_variable_names() {
    let moto = Moto::start();
    moto.calls(json!([
        {"service": "secretsmanager", "method": "create_secret",
         "args": {"Name": "digit", "SecretString": "{\"1abc\": \"v\", \"ok\": \"fine\"}"}},
        {"service": "secretsmanager", "method": "create_secret",
         "args": {"Name": "empty", "SecretString": "{\"\": \"v\"}"}},
        {"service": "secretsmanager", "method": "create_secret",
         "args": {"Name": "envseal", "SecretString": "{\"envseal_from\": \"s3://evil/x\", \"envseal-timeout\": \"1s\", \"app\": \"fine\"}"}},
        {"service": "secretsmanager", "method": "create_secret",
         "args": {"Name": "collide", "SecretString": "{\"db-host\": \"a\", \"DB_HOST\": \"b\"}"}},
        {"service": "secretsmanager", "method": "create_secret",
         "args": {"Name": "unicode", "SecretString": "{\"ключ\": \"v\"}"}},
    ]));
    put_objects(
        &moto,
        "names",
        &[(
            "envseal.json",
            b"{\"ENVSEAL_INIT\": \"1\", \"ENVSEAL_LOG\": \"trace\", \"APP\": \"x\"}".to_vec(),
        )],
    );

    for (secret, mention) in [
        ("digit", "starts with a digit"),
        ("empty", "empty key"),
        ("collide", "both map to DB_HOST"),
    ] {
        let mut cmd = moto.envseal();
        cmd.env("ENVSEAL_FROM", format!("sm:{secret}"));
        let out = exec_marker(cmd, &[]);
        out.expect_code(EXIT_RESOLUTION);
        assert!(!out.stdout.contains(STARTED));
        assert!(out.stderr.contains(mention), "{secret}: {}", out.stderr);
        assert!(!out.stderr.contains("panicked"));
    }

    // A key that maps to an ENVSEAL_* name is left out with a warning: a
    // bundle cannot reconfigure envseal or reach the child as ENVSEAL_*.
    for source in ["sm:envseal", "s3://names/envseal.json"] {
        let mut cmd = moto.envseal();
        cmd.env("ENVSEAL_FROM", source);
        let out = exec_env(cmd, &[]);
        out.expect_code(0);
        let env = out.env();
        assert!(
            !env.keys().any(|k| k.starts_with("ENVSEAL_")),
            "{source}: {env:?}"
        );
        assert!(env.contains_key("APP"), "{env:?}");
        assert!(out.stderr.contains("ENVSEAL_"), "{}", out.stderr);
        // ENVSEAL_LOG=trace from the bundle did not raise the log level.
        assert!(!out.stderr.contains("TRACE"), "{}", out.stderr);
    }

    // Non-ASCII keys become underscores: a legal (if odd) name.
    let mut cmd = moto.envseal();
    cmd.env("ENVSEAL_FROM", "sm:unicode");
    let out = exec_env(cmd, &[]);
    out.expect_code(0);
    assert_eq!(out.env()["____"], "v");
}

#[test]
fn values_containing_nul_are_refused() {
    let moto = Moto::start();
    moto.calls(json!([
        {"service": "secretsmanager", "method": "create_secret",
         "args": {"Name": "bin-nul", "SecretBinary": bytes_arg(format!("{SECRET}\0after").as_bytes())}},
        {"service": "secretsmanager", "method": "create_secret",
         "args": {"Name": "bin-latin1", "SecretBinary": bytes_arg(b"caf\xe9")}},
        {"service": "secretsmanager", "method": "create_secret",
         "args": {"Name": "str-nul", "SecretString": format!("{SECRET}\u{0}after")}},
        {"service": "secretsmanager", "method": "create_secret",
         "args": {"Name": "json-nul", "SecretString": format!("{{\"K\": \"{SECRET}\\u0000\"}}")}},
    ]));
    put_objects(
        &moto,
        "nul",
        &[("raw.bin", format!("{SECRET}\0x").into_bytes())],
    );
    let mut cmd = moto.envseal();
    cmd.env("BIN_NUL", "sm:bin-nul")
        .env("BIN_LATIN1", "sm:bin-latin1")
        .env("STR_NUL", "sm:str-nul")
        .env("JSON_NUL", "sm:json-nul#K")
        .env("S3_NUL", "s3://nul/raw.bin")
        .env("JSON_NUL_BUNDLE_OK", "plain");
    let out = exec_marker(cmd, &["--from", "sm:json-nul"]);
    for variable in ["BIN_NUL", "STR_NUL", "JSON_NUL", "S3_NUL"] {
        let line = assert_refused(&out, variable, "invalid-value");
        assert!(line.contains("NUL"), "{line}");
    }
    let line = assert_refused(&out, "BIN_LATIN1", "invalid-value");
    assert!(line.contains("UTF-8"), "{line}");
    let line = assert_refused(&out, "(bundle)", "invalid-value");
    assert!(line.contains("NUL"), "{line}");
    assert!(!out.stderr.contains(SECRET), "{}", out.stderr);
}

#[test]
fn invalid_kms_ciphertexts_are_refused() {
    let moto = Moto::start();
    moto.call("kms", "create_key", json!({}));
    // Valid base64, but not a ciphertext KMS made.
    let mut cmd = moto.envseal();
    cmd.env(
        "FAKE",
        "kms:AQICAHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eA==",
    );
    let out = exec_marker(cmd, &[]);
    let line = assert_refused(&out, "FAKE", "decrypt-failed");
    assert!(line.contains("KMS Decrypt"), "{line}");
    // Not base64 at all: refused before any AWS call.
    let mut cmd = envseal_bare();
    cmd.env("BAD", "kms:@@@@");
    let out = exec_marker(cmd, &[]);
    let line = assert_refused(&out, "BAD", "malformed");
    assert!(line.contains("base64"), "{line}");
}

// ------------------------------------------------------------------ E2BIG

/// One variable over the kernel's 128 KiB limit per string (MAX_ARG_STRLEN):
/// execve says E2BIG; envseal exits 126 and says which variable and how big.
#[test]
fn one_variable_over_128_kib_is_a_clear_exec_error() {
    let moto = Moto::start();
    let value = "b".repeat(200 * 1024);
    put_objects(
        &moto,
        "big",
        &[("one.env", format!("BIG_ONE={value}\n").into_bytes())],
    );
    let mut cmd = moto.envseal();
    cmd.env("ENVSEAL_FROM", "s3://big/one.env");
    let out = exec_marker(cmd, &[]);
    out.expect_code(EXIT_NOT_EXECUTABLE);
    assert!(!out.stdout.contains(STARTED));
    assert!(out.stderr.contains("E2BIG"), "{}", out.stderr);
    let size = "BIG_ONE=".len() + value.len() + 1;
    assert!(
        out.stderr
            .contains(&format!("BIG_ONE alone is {size} bytes")),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("128 KiB"), "{}", out.stderr);
    assert!(!out.stderr.contains("bbbbbbbb"));
    assert!(out.stderr.len() < 1024, "{}", out.stderr);
}

/// Many variables, each small, over the total limit (a quarter of the stack
/// limit: `ulimit -s 1024` makes it 256 KiB): 80 SSM parameters of 4000
/// bytes, 320 KB.
#[test]
fn an_environment_over_the_total_limit_is_a_clear_exec_error() {
    let moto = Moto::start();
    let ops: Vec<Value> = (0..80)
        .map(|i| {
            json!({"service": "ssm", "method": "put_parameter",
                   "args": {"Name": format!("/big/p{i:02}"), "Value": format!("{i:02}{}", "q".repeat(3998)),
                            "Type": "SecureString"}})
        })
        .collect();
    moto.calls(Value::Array(ops));
    let envseal = env!("CARGO_BIN_EXE_envseal");
    let mut cmd = moto.envseal();
    // envseal itself runs under the lowered limit; the shell only sets it.
    cmd.env("ENVSEAL_FROM", "ssm:/big/").args([
        "-c",
        &format!("ulimit -s 1024 && exec {envseal} exec -- sh -c 'echo {STARTED}'"),
    ]);
    let mut shell = Command::new("sh");
    shell.env_clear();
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            shell.env(k, v);
        }
    }
    shell.args(cmd.get_args());
    let out = run(&mut shell);
    out.expect_code(EXIT_NOT_EXECUTABLE);
    assert!(!out.stdout.contains(STARTED));
    assert!(out.stderr.contains("E2BIG"), "{}", out.stderr);
    // The bundle's 80 plus what the shell and the harness set; 80 × 4 KB.
    let total: usize = out
        .stderr
        .split("variables and the arguments take ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no total size in:\n{}", out.stderr));
    assert!(total > 80 * 4000, "{}", out.stderr);
    assert!(out.stderr.contains("the largest is P"), "{}", out.stderr);
    assert!(out.stderr.contains("ulimit -s"), "{}", out.stderr);
    assert!(!out.stderr.contains("qqqqqqqq"));
}
