//! The SSM Parameter Store backend against a real moto: versions and labels,
//! ARNs read in their own region and account, path bundles (paging, nested
//! names, DescribeParameters or GetParametersByPath), GetParameters batches
//! and the fallback to GetParameter when batches are denied.

mod support;

use serde_json::json;
use support::{run, seed_ssm, Moto, Proxy};

#[test]
fn versions_and_labels_select_the_right_value() {
    let moto = Moto::start();
    seed_ssm(&moto, &[("/app/key", "first")]);
    seed_ssm(&moto, &[("/app/key", "second")]);
    seed_ssm(&moto, &[("/app/key", "third")]);
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
    seed_ssm(
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
    seed_ssm(&moto, &refs);
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
    seed_ssm(&moto, &refs);
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
fn denied_get_parameters_falls_back_to_get_parameter() {
    let moto = Moto::start();
    seed_ssm(&moto, &[("/fb/a", "va"), ("/fb/b", "vb")]);
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
    seed_ssm(&moto, &refs);
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
    seed_ssm(&moto, &refs);
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
