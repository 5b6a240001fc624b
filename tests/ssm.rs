//! The core path against a real moto: SSM references and bundles, naming,
//! precedence, collisions, failures, fallbacks.

mod support;

use serde_json::{json, Value};
use support::{envseal_bare, run, Moto, Proxy};

fn put_ops(params: &[(&str, &str)]) -> Value {
    Value::Array(
        params
            .iter()
            .map(|(name, value)| {
                json!({"service": "ssm", "method": "put_parameter",
                       "args": {"Name": name, "Value": value, "Type": "SecureString", "Overwrite": true}})
            })
            .collect(),
    )
}

fn seed(moto: &Moto, params: &[(&str, &str)]) {
    moto.calls(put_ops(params));
}

#[test]
fn per_variable_references_are_replaced_and_plain_variables_pass_through() {
    let moto = Moto::start();
    seed(
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
fn versions_and_labels_select_the_right_value() {
    let moto = Moto::start();
    seed(&moto, &[("/app/key", "first")]);
    seed(&moto, &[("/app/key", "second")]);
    seed(&moto, &[("/app/key", "third")]);
    moto.call(
        "ssm",
        "label_parameter_version",
        json!({"Name": "/app/key", "ParameterVersion": 2, "Labels": ["stable"]}),
    );
    let out = run(moto
        .envseal()
        .env("V1", "ssm:/app/key:1")
        .env("V2", "ssm:/app/key:2")
        .env("LATEST", "ssm:/app/key")
        .env("STABLE", "ssm:/app/key:stable")
        .args(["exec", "--", "/usr/bin/env"]));
    out.expect_code(0);
    let env = out.env();
    assert_eq!(env["V1"], "first");
    assert_eq!(env["V2"], "second");
    assert_eq!(env["LATEST"], "third");
    assert_eq!(env["STABLE"], "second");

    let out = run(moto
        .envseal()
        .env("V9", "ssm:/app/key:9")
        .args(["exec", "--", "/usr/bin/env"]));
    out.expect_code(111);
    assert!(out.stderr.contains("V9: ssm:/app/key:9"), "{}", out.stderr);
}

#[test]
fn arn_reference_reads_in_the_arns_region() {
    let moto = Moto::start();
    moto.calls(json!([
        {"service": "ssm", "method": "put_parameter", "region": "eu-west-1",
         "args": {"Name": "/eu/only", "Value": "from-eu", "Type": "SecureString"}}
    ]));
    let out = run(moto
        .envseal()
        .env("EU", "arn:aws:ssm:eu-west-1:123456789012:parameter/eu/only")
        .args(["exec", "--", "/usr/bin/env"]));
    out.expect_code(0);
    assert_eq!(out.env()["EU"], "from-eu");
    // the same name in the default region does not exist
    let out = run(moto
        .envseal()
        .env("EU", "ssm:/eu/only")
        .args(["exec", "--", "/usr/bin/env"]));
    out.expect_code(111);
}

/// Regression: an ARN naming another account (a shared parameter) was
/// looked up by name in the caller's own account, and read a parameter of
/// the same name there. ARNs are sent as ARNs: the caller's own account
/// reads (versions and plain names too), another account's is not the
/// caller's parameter.
#[test]
fn arn_references_are_read_in_the_arns_account() {
    let moto = Moto::start();
    seed(
        &moto,
        &[("/shared/db", "own-v1"), ("plainname", "own-plain")],
    );
    moto.call(
        "ssm",
        "put_parameter",
        json!({"Name": "/shared/db", "Value": "own-v2", "Type": "SecureString", "Overwrite": true}),
    );
    let own = "arn:aws:ssm:us-east-1:123456789012:parameter";
    let out = run(moto
        .envseal()
        .env("LATEST", format!("{own}/shared/db"))
        .env("FIRST", format!("{own}/shared/db:1"))
        .env("PLAIN", format!("{own}/plainname"))
        .env("BY_NAME", "ssm:/shared/db")
        .args(["exec", "--", "/usr/bin/env"]));
    out.expect_code(0);
    let env = out.env();
    assert_eq!(env["LATEST"], "own-v2");
    assert_eq!(env["FIRST"], "own-v1");
    assert_eq!(env["PLAIN"], "own-plain");
    assert_eq!(env["BY_NAME"], "own-v2");

    let other = "arn:aws:ssm:us-east-1:999999999999:parameter/shared/db";
    let out =
        run(moto
            .envseal()
            .env("SHARED", other)
            .args(["exec", "--", "sh", "-c", "echo started"]));
    out.expect_code(111);
    assert!(!out.stdout.contains("started"));
    let line = out
        .stderr
        .lines()
        .find(|l| l.starts_with(&format!("envseal: SHARED: {other}: ")))
        .unwrap_or_else(|| panic!("no failure line: {}", out.stderr));
    assert!(line.ends_with("(not-found)"), "{line}");
    assert!(!out.stderr.contains("own-v"), "{}", out.stderr);
}

#[test]
fn path_bundle_pages_through_nested_names() {
    let moto = Moto::start();
    let mut params: Vec<(String, String)> = (0..23)
        .map(|i| {
            (
                format!("/myapp/prod/svc{}/key_{i}", i % 3),
                format!("val-{i}"),
            )
        })
        .collect();
    params.push(("/myapp/prod/db/password".into(), "dbpw".into()));
    params.push(("/myapp/other/not-included".into(), "nope".into()));
    let refs: Vec<(&str, &str)> = params
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    seed(&moto, &refs);
    let out =
        run(moto
            .envseal()
            .args(["exec", "--from", "ssm:/myapp/prod/", "--", "/usr/bin/env"]));
    out.expect_code(0);
    let env = out.env();
    for i in 0..23 {
        assert_eq!(env[&format!("SVC{}_KEY_{i}", i % 3)], format!("val-{i}"));
    }
    assert_eq!(env["DB_PASSWORD"], "dbpw");
    assert!(!env.values().any(|v| v == "nope"));

    // the same through ENVSEAL_FROM, without the trailing slash
    let out = run(moto.envseal().env("ENVSEAL_FROM", "ssm:/myapp/prod").args([
        "exec",
        "--",
        "/usr/bin/env",
    ]));
    out.expect_code(0);
    assert_eq!(out.env()["DB_PASSWORD"], "dbpw");
    assert!(!out.env().contains_key("ENVSEAL_FROM"));
}

#[test]
fn many_and_duplicate_references_resolve() {
    let moto = Moto::start();
    let params: Vec<(String, String)> = (0..37)
        .map(|i| (format!("/batch/p{i:02}"), format!("secret-{i:02}")))
        .collect();
    let refs: Vec<(&str, &str)> = params
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    seed(&moto, &refs);
    let mut cmd = moto.envseal();
    for i in 0..37 {
        cmd.env(format!("P{i:02}"), format!("ssm:/batch/p{i:02}"));
    }
    // duplicates of the same reference under other names
    cmd.env("DUP_A", "ssm:/batch/p03")
        .env("DUP_B", "ssm:/batch/p03");
    let out = run(cmd.args(["exec", "--log-level", "debug", "--", "/usr/bin/env"]));
    out.expect_code(0);
    let env = out.env();
    for i in 0..37 {
        assert_eq!(env[&format!("P{i:02}")], format!("secret-{i:02}"));
    }
    assert_eq!(env["DUP_A"], "secret-03");
    assert_eq!(env["DUP_B"], "secret-03");
    // 37 distinct names: 4 batches of at most 10
    assert!(out.stderr.contains("requests=37"), "{}", out.stderr);
    assert_eq!(
        out.stderr.matches("ssm GetParameters").count(),
        4,
        "{}",
        out.stderr
    );
}

#[test]
fn optional_missing_reference_is_left_out() {
    let moto = Moto::start();
    seed(&moto, &[("/have", "here")]);
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
    seed(&moto, &[("/c/db-host", "a"), ("/c/db_host", "b")]);
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
    seed(
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
    seed(&moto, &[("/ok", "fine")]);
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

#[test]
fn denied_get_parameters_falls_back_to_get_parameter() {
    let moto = Moto::start();
    seed(&moto, &[("/fb/a", "va"), ("/fb/b", "vb")]);
    let key = moto.create_user_with_policy(
        "single-only",
        json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["ssm:GetParameter"], "Resource": "*"}]}),
    );
    let none = moto.create_user_with_policy(
        "nothing",
        json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "*"}]}),
    );
    moto.enforce_iam();
    let out = run(moto
        .envseal_as(&key)
        .env("A", "ssm:/fb/a")
        .env("B", "ssm:/fb/b")
        .args(["exec", "--", "/usr/bin/env"]));
    out.expect_code(0);
    assert_eq!(out.env()["A"], "va");
    assert_eq!(out.env()["B"], "vb");

    let out = run(moto
        .envseal_as(&none)
        .env("A", "ssm:/fb/a")
        .env("B", "ssm:/fb/b?optional")
        .args(["exec", "--", "/usr/bin/env"]));
    out.expect_code(111);
    assert!(
        out.stderr.contains("A: ssm:/fb/a: access denied"),
        "{}",
        out.stderr
    );
    // `?optional` forgives "not found" only, never a denial.
    assert!(
        out.stderr.contains("B: ssm:/fb/b?optional: access denied"),
        "{}",
        out.stderr
    );
}

#[test]
fn trace_logging_never_shows_a_value() {
    let moto = Moto::start();
    let values = ["tr4ce-s3cret-one", "tr4ce-s3cret-two", "tr4ce-s3cret-three"];
    seed(
        &moto,
        &[
            ("/t/one", values[0]),
            ("/t/bundle/two", values[1]),
            ("/t/three", values[2]),
        ],
    );
    let out = run(moto
        .envseal()
        .env("ENVSEAL_LOG", "trace")
        .env("ONE", "ssm:/t/one")
        .env("THREE", "ssm:/t/three:1")
        .env("MISSING", "ssm:/t/missing")
        .args(["check", "--from", "ssm:/t/bundle/"]));
    out.expect_code(111);
    assert!(
        out.stderr.len() > 1000,
        "trace logging is on: {}",
        out.stderr.len()
    );
    for v in values {
        assert!(!out.stderr.contains(v), "value leaked on stderr");
        assert!(!out.stdout.contains(v), "value leaked on stdout");
    }
    // and a successful exec at trace level
    let out = run(moto
        .envseal()
        .env("ENVSEAL_LOG", "trace")
        .env("ONE", "ssm:/t/one")
        .args(["exec", "--from", "ssm:/t/bundle/", "--", "true"]));
    out.expect_code(0);
    for v in values {
        assert!(!out.stderr.contains(v), "value leaked on stderr");
    }
}

/// Regression: when the first DescribeParameters page came back before
/// GetParametersByPath's denial and was no wider than a GetParametersByPath
/// page (moto pages at 10), envseal committed to GetParametersByPath and
/// failed with its denial, although the policy granted the listing. The
/// proxy holds GetParametersByPath so that this order is the one that
/// happens.
#[test]
fn a_denied_by_path_after_a_narrow_listing_falls_back_to_the_listing() {
    let moto = Moto::start();
    let params: Vec<(String, String)> = (0..12)
        .map(|i| (format!("/race/app/k{i:02}"), format!("v{i}")))
        .collect();
    let refs: Vec<(&str, &str)> = params
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    seed(&moto, &refs);
    let lister = moto.create_user_with_policy(
        "lister",
        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Action": ["ssm:DescribeParameters", "ssm:GetParameters"], "Resource": "*"}]}),
    );
    moto.enforce_iam();
    let proxy = Proxy::start(&moto.endpoint);
    proxy.configure(json!({"faults": [
        {"kind": "slow", "ms": 700, "target": "AmazonSSM.GetParametersByPath"}]}));
    let mut cmd = moto.envseal_as(&lister);
    cmd.env("AWS_ENDPOINT_URL", &proxy.endpoint).args([
        "exec",
        "--log-level",
        "debug",
        "--from",
        "ssm:/race/app/",
        "--",
        "/usr/bin/env",
    ]);
    let out = run(&mut cmd);
    out.expect_code(0);
    let env = out.env();
    for i in 0..12 {
        assert_eq!(env[&format!("K{i:02}")], format!("v{i}"));
    }
    // The order the test is about did happen: the listing was narrow and
    // answered first, then GetParametersByPath was refused.
    assert!(
        out.stderr
            .contains("listing pages no wider than GetParametersByPath"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("GetParametersByPath failed, listing instead"),
        "{}",
        out.stderr
    );
}

#[test]
fn path_bundle_lists_with_describe_parameters_or_falls_back_to_by_path() {
    let moto = Moto::start();
    let params: Vec<(String, String)> = (0..27)
        .map(|i| (format!("/lst/app/k{i:02}"), format!("v{i}")))
        .chain([("/lst/app/deep/er/x".into(), "deep".into())])
        .chain([("/lst/other/k".into(), "nope".into())])
        .collect();
    let refs: Vec<(&str, &str)> = params
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    seed(&moto, &refs);
    let policy = |actions: &[&str]| {
        json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": actions, "Resource": "*"}]})
    };
    // Listing allowed: DescribeParameters + GetParameters, no GetParametersByPath.
    let lister = moto.create_user_with_policy(
        "lister",
        policy(&["ssm:DescribeParameters", "ssm:GetParameters"]),
    );
    // The usual policy: GetParametersByPath only.
    let by_path = moto.create_user_with_policy("by-path", policy(&["ssm:GetParametersByPath"]));
    let nothing = moto.create_user_with_policy("no-ssm", policy(&["s3:GetObject"]));
    moto.enforce_iam();
    for (key, strategy) in [
        (&lister, "DescribeParameters"),
        (&by_path, "GetParametersByPath"),
    ] {
        let out = run(moto.envseal_as(key).args([
            "exec",
            "--log-level",
            "debug",
            "--from",
            "ssm:/lst/app/",
            "--",
            "/usr/bin/env",
        ]));
        out.expect_code(0);
        let env = out.env();
        for i in 0..27 {
            assert_eq!(env[&format!("K{i:02}")], format!("v{i}"), "{strategy}");
        }
        assert_eq!(env["DEEP_ER_X"], "deep", "{strategy}");
        assert!(!env.values().any(|v| v == "nope"), "{strategy}");
        assert!(
            out.stderr.contains(&format!("ssm {strategy}")),
            "{strategy}: {}",
            out.stderr
        );
    }
    let out = run(moto.envseal_as(&nothing).args([
        "exec",
        "--from",
        "ssm:/lst/app/",
        "--",
        "/usr/bin/env",
    ]));
    out.expect_code(111);
    assert!(out.stderr.contains("access denied"), "{}", out.stderr);
}
