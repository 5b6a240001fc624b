//! The reference rules, whatever the backend: how references in the
//! environment are replaced and plain variables passed through, `?optional`,
//! how bundle keys become variable names and what happens when two keys map
//! to one name, precedence (inherited, then bundles in order, then
//! per-variable references) and `--collision`/`ENVSEAL_COLLISION`, and how
//! every failing or malformed reference, source and option is named in one
//! run before anything starts. Proven against moto with SSM references;
//! the backends' own behaviour is in `ssm.rs`, `secrets_manager.rs` and
//! `s3.rs`, hostile input in `hostile.rs`.

mod support;

use serde_json::json;
use support::{envseal_bare, run, seed_ssm, Moto};

#[test]
fn per_variable_references_are_replaced_and_plain_variables_pass_through() {
    let moto = Moto::start();
    seed_ssm(
        &moto,
        &[("/prod/db/password", "pw-4b1d"), ("plainname", "plain-v")],
    );
    moto.call(
        "ssm",
        "put_parameter",
        json!({"Name": "/prod/db/user", "Value": "user-77", "Type": "String"}),
    );
    let out = run(moto
        .envseal()
        .env("DB_PASSWORD", "ssm:/prod/db/password")
        .env("DB_USER", "ssm:/prod/db/user")
        .env("PLAIN", "ssm:plainname")
        .env("UNTOUCHED", "postgres://host/db")
        .args(["exec", "--", "/usr/bin/env"]));
    out.expect_code(0);
    let env = out.env();
    assert_eq!(env["DB_PASSWORD"], "pw-4b1d");
    assert_eq!(env["DB_USER"], "user-77");
    assert_eq!(env["PLAIN"], "plain-v");
    assert_eq!(env["UNTOUCHED"], "postgres://host/db");
}

#[test]
fn optional_missing_reference_is_left_out() {
    let moto = Moto::start();
    seed_ssm(&moto, &[("/have", "here")]);
    let out = run(moto
        .envseal()
        .env("HAVE", "ssm:/have")
        .env("MAYBE", "ssm:/missing?optional")
        .args(["exec", "--", "/usr/bin/env"]));
    out.expect_code(0);
    let env = out.env();
    assert_eq!(env["HAVE"], "here");
    assert!(!env.contains_key("MAYBE"));
    assert!(
        out.stderr.contains("MAYBE"),
        "a warning names the variable: {}",
        out.stderr
    );
}

#[test]
fn two_keys_mapping_to_one_name_are_an_error_naming_both() {
    let moto = Moto::start();
    seed_ssm(&moto, &[("/c/db-host", "a"), ("/c/db_host", "b")]);
    let out = run(moto.envseal().args([
        "exec",
        "--from",
        "ssm:/c/",
        "--",
        "sh",
        "-c",
        "echo started",
    ]));
    out.expect_code(111);
    assert!(!out.stdout.contains("started"));
    assert!(
        out.stderr.contains("db-host") && out.stderr.contains("db_host"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("DB_HOST"), "{}", out.stderr);
}

#[test]
fn precedence_plain_then_bundles_in_order_then_references() {
    let moto = Moto::start();
    seed_ssm(
        &moto,
        &[
            ("/one/shared", "from-one"),
            ("/one/only_one", "o1"),
            ("/two/shared", "from-two"),
            ("/two/plain", "bundle-plain"),
            ("/two/ref", "bundle-ref"),
            ("/direct", "direct"),
        ],
    );
    let base = || {
        let mut c = moto.envseal();
        c.env("PLAIN", "inherited").env("REF", "ssm:/direct");
        c
    };
    let out = run(base().args([
        "exec",
        "--from",
        "ssm:/one/",
        "--from",
        "ssm:/two/",
        "--",
        "/usr/bin/env",
    ]));
    out.expect_code(0);
    let env = out.env();
    assert_eq!(env["SHARED"], "from-two", "later bundle wins");
    assert_eq!(env["ONLY_ONE"], "o1");
    assert_eq!(env["PLAIN"], "bundle-plain", "override is the default");
    assert_eq!(
        env["REF"], "direct",
        "per-variable reference wins over bundles"
    );

    let out = run(base().args([
        "exec",
        "--collision",
        "keep",
        "--from",
        "ssm:/two/",
        "--",
        "/usr/bin/env",
    ]));
    out.expect_code(0);
    assert_eq!(out.env()["PLAIN"], "inherited");

    let out = run(base().env("ENVSEAL_COLLISION", "error").args([
        "exec",
        "--from",
        "ssm:/two/",
        "--",
        "/usr/bin/env",
    ]));
    out.expect_code(111);
    assert!(out.stderr.contains("PLAIN"), "{}", out.stderr);

    // the flag wins over the variable
    let out = run(base().env("ENVSEAL_COLLISION", "error").args([
        "exec",
        "--collision",
        "override",
        "--from",
        "ssm:/two/",
        "--",
        "/usr/bin/env",
    ]));
    out.expect_code(0);
}

#[test]
fn every_failing_variable_is_named_and_nothing_starts() {
    let moto = Moto::start();
    seed_ssm(&moto, &[("/ok", "fine")]);
    let out = run(moto
        .envseal()
        .env("OK", "ssm:/ok")
        .env("GONE_A", "ssm:/missing/a")
        .env("GONE_B", "ssm:/missing/b:3")
        .env("BAD", "ssm:/has space")
        .env("BAD_SM", "sm:")
        .args(["exec", "--", "sh", "-c", "echo started"]));
    out.expect_code(111);
    assert!(!out.stdout.contains("started"));
    for line in [
        "GONE_A: ssm:/missing/a",
        "GONE_B: ssm:/missing/b:3",
        "BAD: ssm:/has space: malformed reference",
        "BAD_SM: sm:: malformed reference",
    ] {
        assert!(
            out.stderr.contains(line),
            "missing {line:?} in\n{}",
            out.stderr
        );
    }
    assert!(!out.stderr.contains("fine"));
}

#[test]
fn malformed_sources_and_options_are_clear_errors() {
    let out = run(envseal_bare().args(["exec", "--from", "ssm:relative/", "--", "true"]));
    out.expect_code(111);
    assert!(out.stderr.contains("ssm:relative/"), "{}", out.stderr);
    // A malformed source and a malformed per-variable reference: one run
    // names both.
    let out = run(envseal_bare().env("BAD", "ssm:/has space").args([
        "exec",
        "--from",
        "ssm:relative/",
        "--",
        "true",
    ]));
    out.expect_code(111);
    assert!(out.stderr.contains("ssm:relative/"), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("BAD: ssm:/has space: malformed reference"),
        "{}",
        out.stderr
    );
    let out = run(envseal_bare().args(["exec", "--timeout", "soon", "--", "true"]));
    out.expect_code(111);
    assert!(out.stderr.contains("timeout"), "{}", out.stderr);
    let out = run(envseal_bare()
        .env("ENVSEAL_LOG", "loud")
        .args(["exec", "--", "true"]));
    out.expect_code(111);
    assert!(out.stderr.contains("log level"), "{}", out.stderr);
    let out = run(envseal_bare().args(["exec"]));
    out.expect_code(111);
    assert!(!out.stderr.contains("panicked"));
}
