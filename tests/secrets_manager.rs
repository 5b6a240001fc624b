//! The Secrets Manager backend against a real moto: JSON keys, whole
//! strings, binary secrets, version stages and ids, the ECS `valueFrom` ARN
//! syntax, bundles, BatchGetSecretValue batches and its fallback to
//! GetSecretValue, failures and `?optional`. (No value in any log line at
//! trace level: `leaks.rs`.)

mod support;

use std::collections::BTreeMap;
use std::process::Command;

use serde_json::{json, Value};
use support::{
    bytes_arg, create_secrets, failure_reason, put_secret_value, run, with_vars, Moto, Run,
    ACCOUNT_ID,
};

/// Exit code of a resolution failure (src/error.rs).
const EXIT_RESOLUTION: i32 = 111;

fn create_secret(moto: &Moto, name: &str, value: &str) -> Value {
    create_secrets(moto, &[(name, json!(value))]).remove(0)
}

fn str_field(response: &Value, field: &str) -> String {
    response[field]
        .as_str()
        .unwrap_or_else(|| panic!("no {field} in {response}"))
        .to_owned()
}

/// `envseal exec -- /usr/bin/env` with these variables added.
fn exec_env(cmd: Command, vars: &[(&str, &str)]) -> Run {
    let mut cmd = with_vars(cmd, vars);
    run(cmd.args(["exec", "--", "/usr/bin/env"]))
}

/// `envseal exec -- sh -c 'echo started'`: stdout says whether the app ran.
fn exec_marker(cmd: Command, vars: &[(&str, &str)]) -> Run {
    let mut cmd = with_vars(cmd, vars);
    run(cmd.args(["exec", "--", "sh", "-c", "echo started"]))
}

/// Asserts a failed run that did not start the application.
fn assert_not_started(out: &Run) {
    out.expect_code(EXIT_RESOLUTION);
    assert!(
        !out.stdout.contains("started"),
        "the application ran:\n{}",
        out.stdout
    );
}

/// The variables the child saw beyond the harness's own (PATH, AWS_*).
fn added_vars(out: &Run) -> BTreeMap<String, String> {
    out.env()
        .into_iter()
        .filter(|(name, _)| name != "PATH" && !name.starts_with("AWS_"))
        .collect()
}

#[test]
fn json_key_and_whole_secret_string() {
    let moto = Moto::start();
    create_secrets(
        &moto,
        &[
            (
                "dev/likz/api",
                json!(r#"{"TOKEN": "tok-8f3a", "USER": "likz-svc"}"#),
            ),
            (
                "dev/likz/plain",
                json!("plain value = with spaces & symbols"),
            ),
        ],
    );
    let out = exec_env(
        moto.envseal(),
        &[
            ("TOKEN", "sm:dev/likz/api#TOKEN"),
            ("API_USER", "sm:dev/likz/api#USER"),
            ("WHOLE_JSON", "sm:dev/likz/api"),
            ("PLAIN", "sm:dev/likz/plain"),
            ("UNTOUCHED", "smtp://mail.example.com"),
        ],
    );
    out.expect_code(0);
    let env = out.env();
    assert_eq!(env["TOKEN"], "tok-8f3a");
    assert_eq!(env["API_USER"], "likz-svc");
    // The whole SecretString as-is, JSON or not.
    assert_eq!(
        env["WHOLE_JSON"],
        r#"{"TOKEN": "tok-8f3a", "USER": "likz-svc"}"#
    );
    assert_eq!(env["PLAIN"], "plain value = with spaces & symbols");
    assert_eq!(env["UNTOUCHED"], "smtp://mail.example.com");
}

#[test]
fn secret_binary_must_be_utf8_without_nul() {
    let moto = Moto::start();
    create_secrets(
        &moto,
        &[
            ("bin/utf8", bytes_arg("bin-värde-ok".as_bytes())),
            ("bin/latin1", bytes_arg(b"caf\xe9-\xff\xfe")),
            ("bin/nul", bytes_arg(b"before\0after")),
        ],
    );

    let out = exec_env(moto.envseal(), &[("BIN", "sm:bin/utf8")]);
    out.expect_code(0);
    assert_eq!(out.env()["BIN"], "bin-värde-ok");

    let out = exec_marker(
        moto.envseal(),
        &[
            ("GOOD_BIN", "sm:bin/utf8"),
            ("LATIN1", "sm:bin/latin1"),
            ("WITH_NUL", "sm:bin/nul"),
        ],
    );
    assert_not_started(&out);
    let reason = failure_reason(&out.stderr, "LATIN1", "sm:bin/latin1");
    assert!(reason.contains("UTF-8"), "{reason}");
    let reason = failure_reason(&out.stderr, "WITH_NUL", "sm:bin/nul");
    assert!(reason.contains("NUL"), "{reason}");
    assert!(
        !out.stderr.contains("GOOD_BIN:"),
        "a good secret reported as failed:\n{}",
        out.stderr
    );
    // Neither the bytes nor a lossy rendering of them.
    assert!(!out.stderr.contains("caf"), "{}", out.stderr);
    assert!(!out.stderr.contains("before"), "{}", out.stderr);
}

#[test]
fn awsprevious_after_put_secret_value() {
    let moto = Moto::start();
    create_secret(&moto, "rot/api", r#"{"TOKEN": "before-rotation"}"#);
    put_secret_value(&moto, "rot/api", r#"{"TOKEN": "after-rotation"}"#);
    let out = exec_env(
        moto.envseal(),
        &[
            ("CURRENT", "sm:rot/api#TOKEN"),
            ("CURRENT_STAGE", "sm:rot/api#TOKEN?version-stage=AWSCURRENT"),
            ("PREVIOUS", "sm:rot/api?version-stage=AWSPREVIOUS#TOKEN"),
            ("PREVIOUS_WHOLE", "sm:rot/api?version-stage=AWSPREVIOUS"),
        ],
    );
    out.expect_code(0);
    let env = out.env();
    assert_eq!(env["CURRENT"], "after-rotation");
    assert_eq!(env["CURRENT_STAGE"], "after-rotation");
    assert_eq!(env["PREVIOUS"], "before-rotation");
    assert_eq!(env["PREVIOUS_WHOLE"], r#"{"TOKEN": "before-rotation"}"#);
}

#[test]
fn version_id_from_create_and_put_responses() {
    let moto = Moto::start();
    let v1 = str_field(
        &create_secret(&moto, "rot/db", r#"{"PASSWORD": "pw-one"}"#),
        "VersionId",
    );
    let v2 = str_field(
        &put_secret_value(&moto, "rot/db", r#"{"PASSWORD": "pw-two"}"#),
        "VersionId",
    );
    let v3 = str_field(
        &put_secret_value(&moto, "rot/db", r#"{"PASSWORD": "pw-three"}"#),
        "VersionId",
    );
    assert!(v1 != v2 && v2 != v3, "version ids must differ");
    let one = format!("sm:rot/db?version-id={v1}#PASSWORD");
    let two = format!("sm:rot/db#PASSWORD?version-id={v2}");
    let three_whole = format!("sm:rot/db?version-id={v3}");
    let out = exec_env(
        moto.envseal(),
        &[
            ("ONE", &one),
            ("TWO", &two),
            ("THREE_WHOLE", &three_whole),
            ("CURRENT", "sm:rot/db#PASSWORD"),
        ],
    );
    out.expect_code(0);
    let env = out.env();
    assert_eq!(env["ONE"], "pw-one");
    assert_eq!(env["TWO"], "pw-two");
    assert_eq!(env["THREE_WHOLE"], r#"{"PASSWORD": "pw-three"}"#);
    assert_eq!(env["CURRENT"], "pw-three");

    // An id that does not exist fails; it is not silently the current value.
    let bogus = "sm:rot/db?version-id=00000000-0000-4000-8000-000000000000#PASSWORD";
    let out = exec_marker(moto.envseal(), &[("OLD", bogus)]);
    assert_not_started(&out);
    let reason = failure_reason(&out.stderr, "OLD", bogus);
    assert!(reason.contains("not found"), "{reason}");
}

#[test]
fn ecs_value_from_arn_syntax() {
    let moto = Moto::start();
    let created = create_secret(
        &moto,
        "dev/likz/api",
        r#"{"TOKEN": "ecs-tok-1", "USER": "ecs-user-1"}"#,
    );
    let arn = str_field(&created, "ARN");
    let v1 = str_field(&created, "VersionId");
    let partial = format!("arn:aws:secretsmanager:us-east-1:{ACCOUNT_ID}:secret:dev/likz/api");
    // The real ARN: the name plus AWS's random 6-character suffix.
    let suffix = arn
        .strip_prefix(&format!("{partial}-"))
        .unwrap_or_else(|| panic!("unexpected ARN {arn}"));
    assert_eq!(suffix.len(), 6, "{arn}");
    put_secret_value(
        &moto,
        "dev/likz/api",
        r#"{"TOKEN": "ecs-tok-2", "USER": "ecs-user-2"}"#,
    );

    let token = format!("{arn}:TOKEN::");
    let token_prev = format!("{arn}:TOKEN:AWSPREVIOUS:");
    let whole_prev = format!("{arn}::AWSPREVIOUS:");
    let user_by_id = format!("{arn}:USER::{v1}");
    let sm_arn = format!("sm:{arn}#USER");
    let partial_token = format!("{partial}:TOKEN::");
    let out = exec_env(
        moto.envseal(),
        &[
            ("TOKEN", &token),
            ("TOKEN_PREV", &token_prev),
            ("WHOLE_PREV", &whole_prev),
            ("WHOLE", &arn),
            ("USER_V1", &user_by_id),
            ("SM_ARN_USER", &sm_arn),
            ("PARTIAL_TOKEN", &partial_token),
        ],
    );
    out.expect_code(0);
    let env = out.env();
    assert_eq!(env["TOKEN"], "ecs-tok-2");
    assert_eq!(env["TOKEN_PREV"], "ecs-tok-1");
    assert_eq!(
        env["WHOLE_PREV"],
        r#"{"TOKEN": "ecs-tok-1", "USER": "ecs-user-1"}"#
    );
    assert_eq!(
        env["WHOLE"],
        r#"{"TOKEN": "ecs-tok-2", "USER": "ecs-user-2"}"#
    );
    assert_eq!(env["USER_V1"], "ecs-user-1");
    assert_eq!(env["SM_ARN_USER"], "ecs-user-2");
    assert_eq!(env["PARTIAL_TOKEN"], "ecs-tok-2");
}

#[test]
fn json_numbers_and_booleans_as_text_other_values_an_error_naming_the_key() {
    let moto = Moto::start();
    create_secrets(
        &moto,
        &[
            (
                "cfg/scalars",
                json!(r#"{"PORT": 5432, "RATIO": 1.5, "NEG": -7, "DEBUG": true, "OFF": false}"#),
            ),
            (
                "cfg/mixed",
                json!(
                    r#"{"TOKEN": "mixed-tok", "NOTHING": null, "LIST": [1, 2], "OBJ": {"a": "b"}}"#
                ),
            ),
        ],
    );
    let out = exec_env(
        moto.envseal(),
        &[
            ("PORT", "sm:cfg/scalars#PORT"),
            ("RATIO", "sm:cfg/scalars#RATIO"),
            ("NEG", "sm:cfg/scalars#NEG"),
            ("DEBUG", "sm:cfg/scalars#DEBUG"),
            ("OFF", "sm:cfg/scalars#OFF"),
        ],
    );
    out.expect_code(0);
    let env = out.env();
    assert_eq!(env["PORT"], "5432");
    assert_eq!(env["RATIO"], "1.5");
    assert_eq!(env["NEG"], "-7");
    assert_eq!(env["DEBUG"], "true");
    assert_eq!(env["OFF"], "false");

    // One key of a secret is usable whatever its other keys hold (as in ECS).
    let out = exec_env(moto.envseal(), &[("TOKEN", "sm:cfg/mixed#TOKEN")]);
    out.expect_code(0);
    assert_eq!(out.env()["TOKEN"], "mixed-tok");

    let out = exec_marker(
        moto.envseal(),
        &[
            ("N", "sm:cfg/mixed#NOTHING"),
            ("L", "sm:cfg/mixed#LIST"),
            ("O", "sm:cfg/mixed#OBJ"),
        ],
    );
    assert_not_started(&out);
    // The reason (after the reference, which already holds the key) names the key.
    for (var, key, what) in [
        ("N", "NOTHING", "null"),
        ("L", "LIST", "array"),
        ("O", "OBJ", "object"),
    ] {
        let reason = failure_reason(&out.stderr, var, &format!("sm:cfg/mixed#{key}"));
        assert!(reason.contains(key), "{var}: {reason}");
        assert!(reason.contains(what), "{var}: {reason}");
    }

    // A bundle: every key is used, so a null one fails the run, by name.
    let out = run(moto
        .envseal()
        .args(["exec", "--from", "sm:cfg/mixed", "--"])
        .args(["sh", "-c", "echo started"]));
    assert_not_started(&out);
    assert!(
        out.stderr
            .lines()
            .any(|l| l.contains("sm:cfg/mixed") && l.contains("NOTHING") && l.contains("null")),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("mixed-tok"), "{}", out.stderr);
}

#[test]
fn bundle_from_flag_envseal_from_and_arn() {
    let moto = Moto::start();
    let doc = r#"{"job_title": "engineer", "db-host": "db.internal", "api.key": "k-5521", "Port": 8080, "debug": true}"#;
    let created = create_secret(&moto, "svc/bundle", doc);
    let arn = str_field(&created, "ARN");
    let expected: BTreeMap<String, String> = [
        ("JOB_TITLE", "engineer"),
        ("DB_HOST", "db.internal"),
        ("API_KEY", "k-5521"),
        ("PORT", "8080"),
        ("DEBUG", "true"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();

    let out = run(moto
        .envseal()
        .args(["exec", "--from", "sm:svc/bundle", "--", "/usr/bin/env"]));
    out.expect_code(0);
    assert_eq!(added_vars(&out), expected, "--from sm:NAME");

    let out = exec_env(moto.envseal(), &[("ENVSEAL_FROM", "sm:svc/bundle")]);
    out.expect_code(0);
    // ENVSEAL_FROM itself is not passed on (added_vars would show it).
    assert_eq!(added_vars(&out), expected, "ENVSEAL_FROM=sm:NAME");

    let out = run(moto
        .envseal()
        .args(["exec", "--from", &arn, "--", "/usr/bin/env"]));
    out.expect_code(0);
    assert_eq!(added_vars(&out), expected, "--from ARN");
}

#[test]
fn more_than_one_batch_of_references_all_resolve() {
    let moto = Moto::start();
    // 27 secrets: 25 referenced by name, 2 by full ARN only; every third one
    // is JSON and read through a key.
    let names: Vec<String> = (0..27).map(|i| format!("batch/svc-{i:02}")).collect();
    let values: Vec<Value> = (0..27)
        .map(|i| {
            if i % 3 == 0 {
                json!(format!(r#"{{"K": "json-value-{i:02}"}}"#))
            } else {
                json!(format!("plain-value-{i:02}"))
            }
        })
        .collect();
    let secrets: Vec<(&str, Value)> = names
        .iter()
        .zip(&values)
        .map(|(n, v)| (n.as_str(), v.clone()))
        .collect();
    let created = create_secrets(&moto, &secrets);
    let mut vars: Vec<(String, String)> = Vec::new();
    let mut expected: BTreeMap<String, String> = BTreeMap::new();
    for (i, name) in names.iter().enumerate() {
        let id = if i >= 25 {
            str_field(&created[i], "ARN")
        } else {
            name.clone()
        };
        let (reference, value) = if i % 3 == 0 {
            (format!("sm:{id}#K"), format!("json-value-{i:02}"))
        } else {
            (format!("sm:{id}"), format!("plain-value-{i:02}"))
        };
        vars.push((format!("S{i:02}"), reference));
        expected.insert(format!("S{i:02}"), value);
    }
    // The same secret twice is fetched once and given to both.
    vars.push(("S01_AGAIN".into(), "sm:batch/svc-01".into()));
    expected.insert("S01_AGAIN".into(), "plain-value-01".into());
    let vars: Vec<(&str, &str)> = vars.iter().map(|(n, r)| (n.as_str(), r.as_str())).collect();

    let mut debug = moto.envseal();
    debug.env("ENVSEAL_LOG", "debug");
    let out = exec_env(debug, &vars);
    out.expect_code(0);
    assert_eq!(added_vars(&out), expected);
    // 27 distinct secrets: two batch calls of 20 and 7 ids; the 2 by ARN
    // name the configured region and share the batches of those by name.
    let mut batches: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("secretsmanager BatchGetSecretValue"))
        .filter_map(|l| l.split_whitespace().find(|w| w.starts_with("count=")))
        .collect();
    batches.sort();
    assert_eq!(batches, ["count=20", "count=7"], "{}", out.stderr);

    // The same through BatchGetSecretValue only: moto checks the batch action
    // but not a per-secret GetSecretValue inside it, so with this policy a
    // GetSecretValue is denied and only batch calls can succeed.
    let batch_only = moto.create_user_with_policy(
        "batch-only",
        json!({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": "secretsmanager:BatchGetSecretValue", "Resource": "*"}]}),
    );
    moto.enforce_iam();
    let out = exec_env(moto.envseal_as(&batch_only), &vars);
    out.expect_code(0);
    assert_eq!(added_vars(&out), expected, "through batch calls only");

    // The premise: for this user, a single GetSecretValue (a version stage
    // always takes that path) is denied.
    let staged = "sm:batch/svc-01?version-stage=AWSCURRENT";
    let out = exec_marker(moto.envseal_as(&batch_only), &[("STAGED", staged)]);
    assert_not_started(&out);
    let reason = failure_reason(&out.stderr, "STAGED", staged);
    assert!(reason.contains("access denied"), "{reason}");
}

#[test]
fn missing_secret_and_missing_key_listed_together_and_app_not_started() {
    let moto = Moto::start();
    create_secret(&moto, "dev/likz/api", r#"{"TOKEN": "tok-ok"}"#);
    let vars = [
        ("GOOD", "sm:dev/likz/api#TOKEN"),
        ("MISSING_SECRET", "sm:dev/likz/nope"),
        ("MISSING_KEY", "sm:dev/likz/api#NOPE"),
        ("MISSING_PREV", "sm:dev/likz/gone?version-stage=AWSPREVIOUS"),
    ];
    let out = exec_marker(moto.envseal(), &vars);
    assert_not_started(&out);
    let reason = failure_reason(&out.stderr, "MISSING_SECRET", "sm:dev/likz/nope");
    assert!(reason.contains("not found"), "{reason}");
    let reason = failure_reason(&out.stderr, "MISSING_KEY", "sm:dev/likz/api#NOPE");
    assert!(
        reason.contains("NOPE") && reason.contains("not found"),
        "{reason}"
    );
    let reason = failure_reason(
        &out.stderr,
        "MISSING_PREV",
        "sm:dev/likz/gone?version-stage=AWSPREVIOUS",
    );
    assert!(reason.contains("not found"), "{reason}");
    assert!(!out.stderr.contains("GOOD:"), "{}", out.stderr);
    assert!(!out.stderr.contains("tok-ok"), "{}", out.stderr);

    // `check` lists the same, with the good one as ok and no value anywhere.
    let mut cmd = with_vars(moto.envseal(), &vars);
    let out = run(cmd.arg("check"));
    out.expect_code(EXIT_RESOLUTION);
    failure_reason(&out.stderr, "MISSING_SECRET", "sm:dev/likz/nope");
    failure_reason(&out.stderr, "MISSING_KEY", "sm:dev/likz/api#NOPE");
    let good = out
        .stdout
        .lines()
        .find(|l| l.starts_with("GOOD\t"))
        .unwrap_or_else(|| panic!("no line for GOOD:\n{}", out.stdout));
    assert!(good.contains("\tok\t"), "{good}");
    assert!(good.contains("length=6"), "{good}");
    for var in ["MISSING_SECRET", "MISSING_KEY", "MISSING_PREV"] {
        assert!(
            out.stdout
                .lines()
                .any(|l| l.starts_with(&format!("{var}\t")) && l.contains("failed")),
            "{var}:\n{}",
            out.stdout
        );
    }
    assert!(!out.stdout.contains("tok-ok"), "{}", out.stdout);
}

#[test]
fn optional_forgives_a_missing_secret_but_not_a_key_of_a_non_json_secret() {
    let moto = Moto::start();
    create_secrets(
        &moto,
        &[
            ("dev/present", json!(r#"{"TOKEN": "present-tok"}"#)),
            ("dev/plain", json!("just a string, not JSON")),
        ],
    );
    let out = exec_env(
        moto.envseal(),
        &[
            ("PRESENT", "sm:dev/present#TOKEN?optional"),
            ("ABSENT", "sm:dev/absent?optional"),
            ("ABSENT_KEY", "sm:dev/absent#TOKEN?optional"),
            (
                "ABSENT_PREV",
                "sm:dev/absent?version-stage=AWSPREVIOUS&optional",
            ),
        ],
    );
    out.expect_code(0);
    let env = out.env();
    assert_eq!(env["PRESENT"], "present-tok");
    for var in ["ABSENT", "ABSENT_KEY", "ABSENT_PREV"] {
        assert!(!env.contains_key(var), "{var} should be left out:\n{env:?}");
    }

    let out = exec_marker(
        moto.envseal(),
        &[
            ("ABSENT", "sm:dev/absent?optional"),
            ("NOT_JSON", "sm:dev/plain#TOKEN?optional"),
        ],
    );
    assert_not_started(&out);
    let reason = failure_reason(&out.stderr, "NOT_JSON", "sm:dev/plain#TOKEN?optional");
    assert!(reason.contains("TOKEN"), "{reason}");
    assert!(!out.stderr.contains("ABSENT:"), "{}", out.stderr);
    assert!(!out.stderr.contains("just a string"), "{}", out.stderr);
}

#[test]
fn denied_batch_call_falls_back_to_get_secret_value() {
    let moto = Moto::start();
    create_secrets(
        &moto,
        &[
            ("dev/likz/api", json!(r#"{"TOKEN": "fallback-tok"}"#)),
            ("dev/likz/plain", json!("fallback-plain")),
        ],
    );
    put_secret_value(&moto, "dev/likz/plain", "fallback-plain-2");
    let get_only = moto.create_user_with_policy(
        "get-only",
        json!({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "*"}]}),
    );
    let nothing = moto.create_user_with_policy(
        "ssm-only",
        json!({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": "ssm:GetParameter", "Resource": "*"}]}),
    );
    moto.enforce_iam();
    let vars = [
        ("TOKEN", "sm:dev/likz/api#TOKEN"),
        ("PLAIN", "sm:dev/likz/plain"),
        ("PLAIN_PREV", "sm:dev/likz/plain?version-stage=AWSPREVIOUS"),
    ];

    let mut cmd = moto.envseal_as(&get_only);
    cmd.env("ENVSEAL_LOG", "info");
    let out = exec_env(cmd, &vars);
    out.expect_code(0);
    let env = out.env();
    assert_eq!(env["TOKEN"], "fallback-tok");
    assert_eq!(env["PLAIN"], "fallback-plain-2");
    assert_eq!(env["PLAIN_PREV"], "fallback-plain");
    // The batch call was tried, denied, and the fallback said so.
    assert!(
        out.stderr.contains("BatchGetSecretValue"),
        "no fallback notice at info level:\n{}",
        out.stderr
    );

    let out = exec_marker(moto.envseal_as(&nothing), &vars);
    assert_not_started(&out);
    for (var, reference) in vars {
        let reason = failure_reason(&out.stderr, var, reference);
        assert!(reason.contains("access denied"), "{var}: {reason}");
    }
}
