//! What users of other tools expect (PRODUCT.md §11, first three items),
//! against moto: `--ignore` / `ENVSEAL_IGNORE` (name globs passed through
//! untouched), the reference forms of ssm-env (`ssm://NAME`) and vals
//! (`ref+awsssm://`, `ref+awssecrets://`, `ref+s3://`, a trailing `+`, their
//! options), and templates (`{{REF}}` segments in a value): substituted,
//! batched with everything else, every segment required, failures named by
//! variable and reference, `check`, `export` and `policy` on them.

mod support;

use serde_json::{json, Value};
use support::s3::{put_object, setup, BUCKET};
use support::{
    create_secrets, envseal_bare, failure_reason, put_secret_value, run, seed_ssm, Moto,
};

/// Exit code of a resolution or configuration failure (src/error.rs).
const EXIT_RESOLUTION: i32 = 111;

/// A command that reports whether it ran.
const STARTED: [&str; 4] = ["--", "sh", "-c", "echo started"];

/// `envseal exec FLAGS -- /usr/bin/env`.
fn exec_env(cmd: &mut std::process::Command, flags: &[&str]) -> support::Run {
    run(cmd.arg("exec").args(flags).args(["--", "/usr/bin/env"]))
}

#[test]
fn ignored_variables_pass_through_even_when_they_look_like_references() {
    let moto = Moto::start();
    seed_ssm(&moto, &[("/prod/db", "pw-4b1d")]);
    let base = || {
        let mut c = moto.envseal();
        c.env("DB", "ssm:/prod/db")
            .env("MODEL_URI", "s3://models/v3")
            .env("CACHE_URL", "ssm://cache-host")
            .env("TPL", "x-{{ssm:/not/there}}");
        c
    };

    // Without --ignore, the URL is a reference to a bucket that does not
    // exist: the application does not start.
    let out = run(base().arg("exec").args(STARTED));
    out.expect_code(EXIT_RESOLUTION);
    assert!(!out.stdout.contains("started"));
    failure_reason(&out.stderr, "MODEL_URI", "s3://models/v3");

    let expect_passed_through = |out: &support::Run| {
        out.expect_code(0);
        let env = out.env();
        assert_eq!(env["DB"], "pw-4b1d", "references still resolve");
        assert_eq!(env["MODEL_URI"], "s3://models/v3");
        assert_eq!(env["CACHE_URL"], "ssm://cache-host");
        assert_eq!(
            env["TPL"], "x-{{ssm:/not/there}}",
            "never parsed as a template"
        );
        assert!(!env.contains_key("ENVSEAL_IGNORE"));
    };
    // The flag, repeatable, with commas, `*` and `?`.
    expect_passed_through(&exec_env(
        &mut base(),
        &["--ignore", "MODEL_*", "--ignore", "CACHE_UR?,T*"],
    ));
    // The variable, with spaces after the commas.
    expect_passed_through(&exec_env(
        base().env("ENVSEAL_IGNORE", "*_URI, CACHE_???, TPL"),
        &[],
    ));

    // `--ignore` given at all replaces ENVSEAL_IGNORE (as --from does
    // ENVSEAL_FROM): MODEL_URI is a reference again.
    let out = run(base()
        .env("ENVSEAL_IGNORE", "MODEL_URI,CACHE_URL,TPL")
        .args(["exec", "--ignore", "CACHE_URL", "--ignore", "TPL"])
        .args(STARTED));
    out.expect_code(EXIT_RESOLUTION);
    failure_reason(&out.stderr, "MODEL_URI", "s3://models/v3");

    // A pattern is the whole name: MODEL_URIS is not MODEL_URI.
    let out = run(base()
        .env("MODEL_URIS", "s3://models/v4")
        .args(["exec", "--ignore", "MODEL_URI,CACHE_URL,TPL"])
        .args(STARTED));
    out.expect_code(EXIT_RESOLUTION);
    failure_reason(&out.stderr, "MODEL_URIS", "s3://models/v4");

    // check and export see the same: the ignored variable is not theirs.
    let out = run(base().args(["check", "--ignore", "MODEL_URI,CACHE_URL,TPL"]));
    out.expect_code(0);
    assert!(out.stdout.lines().any(|l| l.starts_with("DB\t")));
    assert!(!out.stdout.contains("MODEL_URI"), "{}", out.stdout);
    let out = run(base().args([
        "export",
        "--format",
        "json",
        "--ignore",
        "MODEL_URI,CACHE_URL,TPL",
    ]));
    out.expect_code(0);
    let exported: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(exported, json!({"DB": "pw-4b1d"}));
}

#[test]
fn malformed_ignore_patterns_stop_everything() {
    for (how, pattern, named) in [
        ("flag", "A=B", "\"A=B\""),
        ("flag", "", "\"\""),
        ("flag", "MODEL URI", "\"MODEL URI\""),
        ("flag", "[AB]*", "\"[AB]*\""),
        ("variable", "GOOD,,ALSO_GOOD", "\"\""),
        ("variable", "A\u{1}B", "\"A\\u{1}B\""),
    ] {
        let mut cmd = envseal_bare();
        cmd.env("MODEL_URI", "s3://models/v3");
        match how {
            "flag" => cmd.args(["exec", "--ignore", pattern]),
            _ => cmd.env("ENVSEAL_IGNORE", pattern).arg("exec"),
        };
        let out = run(cmd.args(STARTED));
        out.expect_code(EXIT_RESOLUTION);
        assert!(!out.stdout.contains("started"), "{pattern:?}");
        assert!(
            out.stderr.contains(named) && out.stderr.contains("malformed"),
            "{pattern:?}: {}",
            out.stderr
        );
        assert!(
            out.stderr.contains(if how == "flag" {
                "--ignore"
            } else {
                "ENVSEAL_IGNORE"
            }),
            "{}",
            out.stderr
        );
    }
    // An empty ENVSEAL_IGNORE is no pattern at all.
    let out = run(envseal_bare()
        .env("ENVSEAL_IGNORE", "")
        .args(["exec"])
        .args(STARTED));
    out.expect_code(0);
}

#[test]
fn ssm_env_and_vals_forms_resolve() {
    let moto = Moto::start();
    setup(&moto);
    seed_ssm(
        &moto,
        &[
            ("/prod/db", "ssm-pw"),
            ("plainname", "plain-v1"),
            ("/bundle/api/token", "b-tok"),
            ("/bundle/db-host", "b-host"),
        ],
    );
    seed_ssm(&moto, &[("plainname", "plain-v2")]);
    create_secrets(&moto, &[("prod/api", json!(r#"{"TOKEN":"tok-old"}"#))]);
    put_secret_value(&moto, "prod/api", r#"{"TOKEN":"tok-new","N":5}"#);
    put_object(&moto, "raw.txt", b"raw-body", json!({}));
    put_object(&moto, "app.env", b"A=1\nB=two\n", json!({}));

    let vars = [
        ("SSMENV_PATH", "ssm:///prod/db", "ssm-pw"),
        ("SSMENV_PLAIN", "ssm://plainname", "plain-v2"),
        ("SSMENV_VERSION", "ssm://plainname:1", "plain-v1"),
        ("VALS_SSM", "ref+awsssm://prod/db", "ssm-pw"),
        ("VALS_SSM_PLUS", "ref+awsssm://prod/db+", "ssm-pw"),
        ("VALS_SSM_ABS", "ref+awsssm:///prod/db", "ssm-pw"),
        (
            "VALS_SM",
            "ref+awssecrets://prod/api",
            r#"{"TOKEN":"tok-new","N":5}"#,
        ),
        ("VALS_SM_KEY", "ref+awssecrets://prod/api#/TOKEN", "tok-new"),
        ("VALS_SM_NUM", "ref+awssecrets://prod/api#/N+", "5"),
        (
            "VALS_SM_STAGE",
            "ref+awssecrets://prod/api?version_stage=AWSPREVIOUS#/TOKEN+",
            "tok-old",
        ),
        (
            "VALS_S3",
            format!("ref+s3://{BUCKET}/raw.txt").as_str(),
            "raw-body",
        ),
        (
            "VALS_S3_KEY",
            format!("ref+s3://{BUCKET}/app.env#/B+").as_str(),
            "two",
        ),
    ]
    .map(|(n, r, v)| (n, r.to_owned(), v));
    let mut cmd = moto.envseal();
    for (name, reference, _) in &vars {
        cmd.env(name, reference);
    }
    // As bundles: vals' and ssm-env's path forms.
    let out = run(cmd.args([
        "exec",
        "--from",
        "ref+awsssm://bundle/",
        "--",
        "/usr/bin/env",
    ]));
    out.expect_code(0);
    let env = out.env();
    for (name, reference, value) in &vars {
        assert_eq!(env[*name], *value, "{name}={reference}");
    }
    assert_eq!(env["API_TOKEN"], "b-tok");
    assert_eq!(env["DB_HOST"], "b-host");

    let out = exec_env(moto.envseal().env("ENVSEAL_FROM", "ssm:///bundle/"), &[]);
    out.expect_code(0);
    assert_eq!(out.env()["API_TOKEN"], "b-tok");

    // Without the rewriting, `ssm:///prod/db` would name a parameter with '//'.
    let out = run(moto
        .envseal()
        .env("MISSING", "ref+awssecrets://prod/nothing#/TOKEN")
        .arg("exec")
        .args(STARTED));
    out.expect_code(EXIT_RESOLUTION);
    // The reference as the user wrote it.
    let reason = failure_reason(
        &out.stderr,
        "MISSING",
        "ref+awssecrets://prod/nothing#/TOKEN",
    );
    assert!(
        reason.contains("not-found") || reason.contains("not found"),
        "{reason}"
    );
}

#[test]
fn vals_options_and_forms_without_an_envseal_equivalent_are_clear_errors() {
    let moto = Moto::start();
    seed_ssm(&moto, &[("/prod/db", "ssm-pw")]);
    let cases = [
        (
            "PROFILE",
            "ref+awsssm://prod/db?profile=prod",
            "AWS_PROFILE",
        ),
        ("MODE", "ref+awsssm://prod/db?mode=singleparam", "'mode'"),
        (
            "UNKNOWN",
            "ref+awsssm://prod/db?bogus=1",
            "unknown option 'bogus=1'",
        ),
        ("NESTED", "ref+awssecrets://prod/api#/a/b", "nested"),
        ("UNDER", "ref+awsssm://prod#/db", "full name"),
        (
            "S3VERSION",
            "ref+s3://cfg-bucket/k?version_id=3",
            "current version",
        ),
        ("VAULT", "ref+vault://secret/data/x#/y", "'vault'"),
        ("SSMENV_BAD", "ssm://prod//db", "'//'"),
    ];
    let mut cmd = moto.envseal();
    cmd.env("GOOD", "ref+awsssm://prod/db");
    for (name, reference, _) in cases {
        cmd.env(name, reference);
    }
    let out = run(cmd.arg("exec").args(STARTED));
    out.expect_code(EXIT_RESOLUTION);
    assert!(!out.stdout.contains("started"));
    for (name, reference, says) in cases {
        let reason = failure_reason(&out.stderr, name, reference);
        assert!(reason.contains(says), "{name}: {reason}");
        assert!(reason.contains("malformed"), "{name}: {reason}");
    }
    assert!(!out.stderr.contains("GOOD"), "{}", out.stderr);
}

/// Everything a template test needs: an SSM parameter and a JSON secret.
fn seed_db(moto: &Moto) {
    seed_ssm(moto, &[("/prod/db/host", "db.internal")]);
    create_secrets(
        moto,
        &[("prod/db", json!(r#"{"password":"p@ss:w/rd","user":"app"}"#))],
    );
}

#[test]
fn templates_substitute_every_segment_in_place() {
    let moto = Moto::start();
    seed_db(&moto);
    let out = run(moto
        .envseal()
        .env(
            "DATABASE_URL",
            "postgres://app:{{sm:prod/db#password}}@{{ ssm:/prod/db/host }}:5432/app",
        )
        .env(
            "COMPAT",
            "{{\tref+awssecrets://prod/db#/user+ }}|{{ssm:///prod/db/host}}|{{ref+awsssm://prod/db/host}}",
        )
        .env("GO_TEMPLATE", "{{ .Values.image }}:{{ .Tag }}")
        .env("MIXED", "{{ .Foo }} at {{ssm:/prod/db/host}}")
        .env("USER_REF", "sm:prod/db#user")
        .env("ENVSEAL_LOG", "trace")
        .args(["exec", "--", "/usr/bin/env"]));
    out.expect_code(0);
    let env = out.env();
    assert_eq!(
        env["DATABASE_URL"],
        "postgres://app:p@ss:w/rd@db.internal:5432/app"
    );
    assert_eq!(env["COMPAT"], "app|db.internal|db.internal");
    assert_eq!(env["GO_TEMPLATE"], "{{ .Values.image }}:{{ .Tag }}");
    assert_eq!(env["MIXED"], "{{ .Foo }} at db.internal");
    assert_eq!(env["USER_REF"], "app");
    // Six segments and one reference, two distinct things to fetch: planned
    // together, identical requests collapsed.
    let planned = out
        .stderr
        .lines()
        .find(|l| l.contains("planned"))
        .unwrap_or_else(|| panic!("no 'planned' line:\n{}", out.stderr));
    assert!(
        planned.contains("templates=3") && planned.contains("requests=2"),
        "{planned}"
    );
    for value in ["p@ss:w/rd", "db.internal", "postgres://app:"] {
        assert!(!out.stderr.contains(value), "{value} in the trace log");
    }

    // export prints the substituted value.
    let out = run(moto
        .envseal()
        .env(
            "DATABASE_URL",
            "postgres://app:{{sm:prod/db#password}}@{{ssm:/prod/db/host}}/app",
        )
        .args(["export", "--format", "json"]));
    out.expect_code(0);
    let exported: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        exported,
        json!({"DATABASE_URL": "postgres://app:p@ss:w/rd@db.internal/app"})
    );
}

#[test]
fn check_lists_a_template_once_with_every_reference() {
    let moto = Moto::start();
    seed_db(&moto);
    let value = "postgres://app:p@ss:w/rd@db.internal:5432/app";
    let out = run(moto
        .envseal()
        .env(
            "DATABASE_URL",
            "postgres://app:{{ sm:prod/db#password }}@{{ssm:/prod/db/host}}:5432/app",
        )
        .arg("check"));
    out.expect_code(0);
    let lines: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("DATABASE_URL\t"))
        .collect();
    assert_eq!(lines.len(), 1, "{}", out.stdout);
    let fields: Vec<&str> = lines[0].split('\t').collect();
    assert_eq!(
        fields[1], "{{sm:prod/db#password}} {{ssm:/prod/db/host}}",
        "{}",
        lines[0]
    );
    assert_eq!(fields[2], "ok");
    assert_eq!(fields[3], format!("length={}", value.len()));
    let fp = {
        use sha2::Digest;
        let d = sha2::Sha256::digest(value.as_bytes());
        d[..4]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    assert_eq!(fields[4], format!("sha256={fp}"));
    assert!(!out.stdout.contains("p@ss") && !out.stdout.contains("postgres://"));
}

#[test]
fn a_failing_segment_stops_the_start_naming_variable_and_reference() {
    let moto = Moto::start();
    seed_db(&moto);
    let out = run(moto
        .envseal()
        .env(
            "DATABASE_URL",
            "postgres://literal-s3cret:{{sm:prod/db#nokey}}@{{ssm:/prod/db/host}}/{{ssm:/prod/db/name}}",
        )
        .arg("exec")
        .args(STARTED));
    out.expect_code(EXIT_RESOLUTION);
    assert!(!out.stdout.contains("started"));
    let reason = failure_reason(&out.stderr, "DATABASE_URL", "sm:prod/db#nokey");
    assert!(
        reason.contains("nokey") && reason.contains("not-found"),
        "{reason}"
    );
    let reason = failure_reason(&out.stderr, "DATABASE_URL", "ssm:/prod/db/name");
    assert!(reason.contains("not-found"), "{reason}");
    // The segment that resolved is not a failure; no value, resolved or
    // literal, is printed.
    assert!(!out.stderr.contains("ssm:/prod/db/host"), "{}", out.stderr);
    for v in ["db.internal", "p@ss", "literal-s3cret"] {
        assert!(!out.stderr.contains(v), "{v}: {}", out.stderr);
    }
}

#[test]
fn malformed_templates_are_refused_before_any_aws_work() {
    // No AWS configuration at all: what fails is the template itself.
    let cases = [
        ("OPT", "x{{ssm:/a?optional}}", "ssm:/a?optional", "optional"),
        (
            "OPT2",
            "x{{sm:b#K?version-stage=S&optional}}y",
            "sm:b#K?version-stage=S&optional",
            "optional",
        ),
        ("FILE_OPT", "{{ssm:/a?file}}", "ssm:/a?file", "file"),
        (
            "UNKNOWN_OPT",
            "{{sm:x?version-stage=A&bogus}}",
            "sm:x?version-stage=A&bogus",
            "unknown option 'bogus'",
        ),
        ("BAD", "a{{ssm:}}b", "ssm:", "empty parameter name"),
        (
            "UNCLOSED",
            "postgres://u:hunter2@{{ssm:/db/host",
            "(template)",
            "unclosed",
        ),
    ];
    let mut cmd = envseal_bare();
    for (name, value, _, _) in cases {
        cmd.env(name, value);
    }
    let out = run(cmd.arg("exec").args(STARTED));
    out.expect_code(EXIT_RESOLUTION);
    assert!(!out.stdout.contains("started"));
    for (name, _, reference, says) in cases {
        let reason = failure_reason(&out.stderr, name, reference);
        assert!(reason.contains(says), "{name}: {reason}");
    }
    assert!(!out.stderr.contains("hunter2"), "{}", out.stderr);
    assert!(
        !out.stderr.to_lowercase().contains("credential") && !out.stderr.contains("region"),
        "no AWS work was attempted: {}",
        out.stderr
    );
}

#[test]
fn policy_covers_template_segments_and_skips_ignored_variables() {
    let out = run(envseal_bare()
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
        .env("AWS_REGION", "eu-central-1")
        .env(
            "DATABASE_URL",
            "postgres://app:{{sm:prod/db#password}}@{{ref+awsssm://prod/db/host}}/app",
        )
        .env("MODEL_URI", "s3://models/v3")
        .args(["policy", "--ignore", "MODEL_URI"]));
    out.expect_code(0);
    let policy: Value = serde_json::from_str(&out.stdout).unwrap();
    let text = policy.to_string();
    assert!(
        text.contains("arn:aws:ssm:eu-central-1:*:parameter/prod/db/host"),
        "{text}"
    );
    assert!(
        text.contains("arn:aws:secretsmanager:eu-central-1:*:secret:prod/db-??????"),
        "{text}"
    );
    assert!(!text.contains("models"), "ignored: {text}");
}

/// A template is a per-variable reference for precedence: a bundle key of
/// the same name does not override it.
#[test]
fn a_bundle_does_not_override_a_template() {
    let moto = Moto::start();
    seed_db(&moto);
    seed_ssm(
        &moto,
        &[
            ("/bundle/database_url", "from-bundle"),
            ("/bundle/other", "o"),
        ],
    );
    let out = exec_env(
        moto.envseal()
            .env("DATABASE_URL", "pg://{{ssm:/prod/db/host}}/app"),
        &["--from", "ssm:/bundle/"],
    );
    out.expect_code(0);
    let env = out.env();
    assert_eq!(env["DATABASE_URL"], "pg://db.internal/app");
    assert_eq!(env["OTHER"], "o");
}
