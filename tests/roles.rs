//! Roles and regions (PRODUCT.md §11), against moto with IAM enforcement on
//! and the proxy of `tests/support/py/proxy.py` recording every request.
//!
//! The base identity may assume roles and read Secrets Manager, but not
//! SSM; the role may read SSM, but not Secrets Manager. So an SSM value can
//! only arrive through the role, and a Secrets Manager value only through
//! the base identity: a run that used the wrong credentials for either
//! fails. moto does not check `sts:ExternalId` (nor trust policies), so the
//! external id is proven by what the proxy saw STS being sent.
//!
//! Regions: a parameter seeded in another region, `?region=`, and S3's
//! redirect for a bucket in another region (moto sends none: the proxy's
//! `redirect` fault answers as AWS does).

mod support;

use serde_json::{json, Value};
use support::{exec_marked, failure_reason, run, seed_ssm, Moto, Proxy, ACCOUNT_ID};

const MARKER: &str = support::APP_STARTED;
const SSM_VALUE: &str = "role-only-7c1e";
const SM_VALUE: &str = "base-only-93ad";

fn policy(actions: &[&str]) -> Value {
    json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": actions, "Resource": "*",
    }]})
}

/// moto with the two values, a base user (`sts:AssumeRole` and Secrets
/// Manager), a role that reads SSM, and a user who may not assume roles;
/// IAM enforcement on. Returns (moto, base keys, role ARN, outsider keys).
fn world() -> (Moto, (String, String), String, (String, String)) {
    let moto = Moto::start();
    seed_ssm(
        &moto,
        &[
            ("/roles/a", SSM_VALUE),
            ("/roles/b", "role-only-b"),
            ("/bundle/x", "bundle-x"),
        ],
    );
    moto.call(
        "secretsmanager",
        "create_secret",
        json!({"Name": "roles/own", "SecretString": SM_VALUE}),
    );
    let base = moto.create_user_with_policy(
        "base",
        policy(&[
            "sts:AssumeRole",
            "secretsmanager:GetSecretValue",
            "secretsmanager:BatchGetSecretValue",
        ]),
    );
    let base_arn = format!("arn:aws:iam::{ACCOUNT_ID}:user/base");
    let role = moto.create_role_with_policy(
        "ssm-reader",
        &base_arn,
        policy(&[
            "ssm:GetParameters",
            "ssm:GetParameter",
            "ssm:GetParametersByPath",
        ]),
    );
    let outsider = moto.create_user_with_policy(
        "outsider",
        policy(&["secretsmanager:GetSecretValue", "sts:GetCallerIdentity"]),
    );
    moto.enforce_iam();
    (moto, base, role, outsider)
}

/// envseal through `proxy`, signed with `key`.
fn envseal(moto: &Moto, proxy: &Proxy, key: &(String, String)) -> std::process::Command {
    let mut cmd = proxy.envseal(moto);
    cmd.env("AWS_ACCESS_KEY_ID", &key.0)
        .env("AWS_SECRET_ACCESS_KEY", &key.1);
    cmd
}

fn assume_calls(proxy: &Proxy) -> Vec<Value> {
    proxy
        .requests()
        .into_iter()
        .filter(|r| r["target"] == "sts.AssumeRole")
        .collect()
}

/// An access key id of temporary credentials (`ASIA` + 16 characters).
fn has_temporary_key_id(text: &str) -> bool {
    text.match_indices("ASIA").any(|(at, _)| {
        let rest = &text[at + 4..];
        rest.len() >= 16
            && rest[..16]
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    })
}

#[test]
fn a_role_reads_what_the_base_identity_cannot() {
    let (moto, base, role, _) = world();
    let proxy = Proxy::start(&moto.endpoint);

    // The base identity alone: denied.
    let out = exec_marked(envseal(&moto, &proxy, &base).env("SECRET", "ssm:/roles/a"));
    assert_eq!(out.code, Some(111), "{}", out.stderr);
    assert!(!out.stdout.contains(MARKER));
    assert!(out.stderr.contains("(access-denied)"), "{}", out.stderr);
    assert!(assume_calls(&proxy).is_empty());

    // --role-arn, and ENVSEAL_ROLE_ARN: read through the role.
    for how in ["flag", "variable"] {
        proxy.reset_stats();
        let mut cmd = envseal(&moto, &proxy, &base);
        cmd.env("SECRET", "ssm:/roles/a")
            .env("ENVSEAL_LOG", "trace");
        let out = if how == "flag" {
            run(cmd.args([
                "exec",
                "--role-arn",
                &role,
                "--",
                "/bin/sh",
                "-c",
                &format!("echo {MARKER}; /usr/bin/env"),
            ]))
        } else {
            exec_marked(cmd.env("ENVSEAL_ROLE_ARN", &role))
        };
        out.expect_code(0);
        assert_eq!(out.env()["SECRET"], SSM_VALUE, "{how}");
        assert!(!out.env().contains_key("ENVSEAL_ROLE_ARN"));
        let calls = assume_calls(&proxy);
        assert_eq!(calls.len(), 1, "{how}: {calls:?}");
        assert_eq!(calls[0]["RoleArn"], role.as_str());
        assert_eq!(calls[0]["RoleSessionName"], "envseal");
        assert!(calls[0].get("ExternalId").is_none());
        // The assumed role's credentials are never logged, not even at trace.
        assert!(
            !has_temporary_key_id(&out.stderr),
            "a temporary key id on stderr:\n{}",
            out.stderr
        );
        assert!(!out.stderr.contains(SSM_VALUE));
    }
}

#[test]
fn per_reference_roles_and_the_base_identity_in_one_run() {
    let (moto, base, role, _) = world();
    let proxy = Proxy::start(&moto.endpoint);
    let out = exec_marked(
        envseal(&moto, &proxy, &base)
            .env("A", format!("ssm:/roles/a?role-arn={role}"))
            .env("B", format!("ssm:/roles/b?role-arn={role}"))
            .env(
                "A_EXT",
                format!("ssm:/roles/a?role-arn={role}&external-id=tenant-42"),
            )
            .env("OWN", "sm:roles/own")
            .env("ENVSEAL_FROM", format!("ssm:/bundle/?role-arn={role}"))
            .env("ENVSEAL_ROLE_SESSION_NAME", "ci-run@7"),
    );
    out.expect_code(0);
    let env = out.env();
    assert_eq!(env["A"], SSM_VALUE);
    assert_eq!(env["A_EXT"], SSM_VALUE);
    assert_eq!(env["B"], "role-only-b");
    assert_eq!(env["X"], "bundle-x");
    // Only the base identity may read Secrets Manager: no role was used.
    assert_eq!(env["OWN"], SM_VALUE);
    // One AssumeRole per distinct (role, external id): two, whatever the
    // number of references and bundles that use them.
    let calls = assume_calls(&proxy);
    assert_eq!(calls.len(), 2, "{calls:?}");
    let mut external: Vec<Option<&str>> = calls
        .iter()
        .map(|c| c.get("ExternalId").and_then(Value::as_str))
        .collect();
    external.sort();
    assert_eq!(external, [None, Some("tenant-42")]);
    for c in &calls {
        assert_eq!(c["RoleArn"], role.as_str());
        assert_eq!(c["RoleSessionName"], "ci-run@7");
    }
}

#[test]
fn a_denied_assume_role_fails_closed_naming_variable_reference_and_role() {
    let (moto, _, role, outsider) = world();
    let proxy = Proxy::start(&moto.endpoint);
    let reference = format!("ssm:/roles/a?role-arn={role}");
    let out = exec_marked(
        envseal(&moto, &proxy, &outsider)
            .env("SECRET", &reference)
            .env("OWN", "sm:roles/own"),
    );
    assert_eq!(out.code, Some(111), "{}\n{}", out.stdout, out.stderr);
    assert!(!out.stdout.contains(MARKER), "the application ran");
    let reason = failure_reason(&out.stderr, "SECRET", &reference);
    assert!(
        reason.contains(&format!("assuming role {role}")) && reason.contains("(access-denied)"),
        "{reason}"
    );
    // With --role-arn the reference does not name the role: the reason does.
    let out = exec_marked(
        envseal(&moto, &proxy, &outsider)
            .env("SECRET", "ssm:/roles/a")
            .env("ENVSEAL_ROLE_ARN", &role),
    );
    assert_eq!(out.code, Some(111));
    let reason = failure_reason(&out.stderr, "SECRET", "ssm:/roles/a");
    assert!(reason.contains(&role), "{reason}");
    assert_eq!(assume_calls(&proxy).len(), 2);
}

#[test]
fn malformed_roles_and_session_names_stop_before_any_aws_call() {
    let moto = Moto::start();
    let proxy = Proxy::start(&moto.endpoint);
    for (vars, expected) in [
        (
            vec![
                ("SECRET", "ssm:/roles/a"),
                ("ENVSEAL_ROLE_ARN", "arn:aws:iam::12345:role/short-account"),
            ],
            "ENVSEAL_ROLE_ARN: invalid role ARN",
        ),
        (
            vec![
                ("SECRET", "ssm:/roles/a"),
                ("ENVSEAL_ROLE_ARN", "arn:aws:iam::123456789012:user/not-a-role"),
            ],
            "ENVSEAL_ROLE_ARN: invalid role ARN",
        ),
        (
            vec![
                ("SECRET", "ssm:/roles/a"),
                (
                    "ENVSEAL_ROLE_ARN",
                    "arn:aws:iam::123456789012:role/fine",
                ),
                ("ENVSEAL_ROLE_SESSION_NAME", "no spaces allowed"),
            ],
            "ENVSEAL_ROLE_SESSION_NAME",
        ),
        (
            vec![(
                "SECRET",
                "ssm:/roles/a?role-arn=arn:aws-iso:iam::123456789012:role/r",
            )],
            "SECRET: ssm:/roles/a?role-arn=arn:aws-iso:iam::123456789012:role/r: malformed reference: invalid role ARN",
        ),
        (
            vec![("SECRET", "ssm:/roles/a?region=Europe")],
            "SECRET: ssm:/roles/a?region=Europe: malformed reference: invalid region",
        ),
    ] {
        let mut cmd = proxy.envseal(&moto);
        for (k, v) in &vars {
            cmd.env(k, v);
        }
        let out = exec_marked(&mut cmd);
        assert_eq!(out.code, Some(111), "{vars:?}: {}", out.stderr);
        assert!(!out.stdout.contains(MARKER));
        assert!(out.stderr.contains(expected), "{vars:?}:\n{}", out.stderr);
    }
    assert_eq!(proxy.stats()["total"], 0, "{:?}", proxy.requests());
}

#[test]
fn region_option_reads_another_region_and_an_arn_keeps_its_own() {
    let moto = Moto::start();
    moto.calls(json!([{
        "service": "ssm", "method": "put_parameter", "region": "eu-west-1",
        "args": {"Name": "/regional/x", "Value": "from-ireland", "Type": "SecureString"},
    }, {
        "service": "secretsmanager", "method": "create_secret", "region": "eu-west-1",
        "args": {"Name": "regional/s", "SecretString": "sm-ireland"},
    }]));
    let proxy = Proxy::start(&moto.endpoint);
    let out = exec_marked(
        proxy
            .envseal(&moto)
            .env("X", "ssm:/regional/x?region=eu-west-1")
            .env("S", "sm:regional/s?region=eu-west-1")
            .env(
                "Y",
                format!("arn:aws:ssm:eu-west-1:{ACCOUNT_ID}:parameter/regional/x?region=eu-west-1"),
            ),
    );
    out.expect_code(0);
    assert_eq!(out.env()["X"], "from-ireland");
    assert_eq!(out.env()["Y"], "from-ireland");
    assert_eq!(out.env()["S"], "sm-ireland");
    let regions: Vec<Value> = proxy
        .requests()
        .iter()
        .map(|r| r["region"].clone())
        .collect();
    assert!(regions.iter().all(|r| r == "eu-west-1"), "{regions:?}");
    // In the configured region (us-east-1) it does not exist.
    let out = exec_marked(proxy.envseal(&moto).env("X", "ssm:/regional/x"));
    assert_eq!(out.code, Some(111));
    assert!(out.stderr.contains("(not-found)"), "{}", out.stderr);
    // An ARN is read in its own region: another ?region= is an error.
    let arn = format!("arn:aws:ssm:eu-west-1:{ACCOUNT_ID}:parameter/regional/x?region=us-east-1");
    let out = exec_marked(proxy.envseal(&moto).env("Z", &arn));
    assert_eq!(out.code, Some(111));
    assert!(
        failure_reason(&out.stderr, "Z", &arn).contains("conflicts with the ARN's region"),
        "{}",
        out.stderr
    );
}

/// A bucket "in eu-west-1" (the proxy says so to requests signed for any
/// other region) holding a plain value and a KMS ciphertext under a key
/// that exists only in eu-west-1.
fn redirect_world(status: u16) -> (Moto, Proxy, Vec<u8>) {
    let moto = Moto::start();
    let r = moto.calls(json!([
        {"service": "kms", "method": "create_key", "region": "eu-west-1", "args": {}},
        {"service": "s3", "method": "create_bucket", "region": "eu-west-1",
         "args": {"Bucket": "far-bucket",
                  "CreateBucketConfiguration": {"LocationConstraint": "eu-west-1"}}},
        {"service": "s3", "method": "put_object", "region": "eu-west-1",
         "args": {"Bucket": "far-bucket", "Key": "plain.txt", "Body": "far-away-value"}},
    ]));
    let key_id = r[0]["KeyMetadata"]["KeyId"].as_str().unwrap().to_owned();
    let blob = moto.calls(json!([{
        "service": "kms", "method": "encrypt", "region": "eu-west-1",
        "args": {"KeyId": key_id, "Plaintext": support::bytes_arg(b"kms-far-value")},
    }]));
    let blob = support::bytes_of(&blob[0]["CiphertextBlob"]);
    moto.calls(json!([{
        "service": "s3", "method": "put_object", "region": "eu-west-1",
        "args": {"Bucket": "far-bucket", "Key": "blob.b64",
                 "Body": support::b64(&blob)},
    }]));
    let proxy = Proxy::start(&moto.endpoint);
    proxy.configure(json!({"faults": [{
        "kind": "redirect", "region": "eu-west-1", "status": status,
        "target": "/far-bucket/*",
    }]}));
    (moto, proxy, blob)
}

#[test]
fn an_s3_redirect_is_followed_once_with_kms_in_the_buckets_region() {
    for status in [301, 400] {
        let (moto, proxy, _) = redirect_world(status);
        let out = exec_marked(
            proxy
                .envseal(&moto)
                .env("PLAIN", "s3://far-bucket/plain.txt")
                .env("ENVSEAL_LOG", "info"),
        );
        out.expect_code(0);
        assert_eq!(out.env()["PLAIN"], "far-away-value", "{status}");
        // One extra round trip: redirected in us-east-1, answered in eu-west-1.
        let gets: Vec<Value> = proxy
            .requests()
            .into_iter()
            .filter(|r| r["target"] == "GET /far-bucket/plain.txt")
            .map(|r| r["region"].clone())
            .collect();
        assert_eq!(gets, [json!("us-east-1"), json!("eu-west-1")], "{status}");
        let line = out
            .stderr
            .lines()
            .find(|l| l.contains("redirect"))
            .unwrap_or_else(|| panic!("no redirect line:\n{}", out.stderr));
        assert!(
            line.contains("INFO") && line.contains("far-bucket") && line.contains("eu-west-1"),
            "{line}"
        );
        assert!(!out.stderr.contains("far-away-value"));

        // A KMS ciphertext in that bucket: Decrypt goes to the bucket's
        // region (the key exists only there).
        proxy.reset_stats();
        let out = exec_marked(proxy.envseal(&moto).env("BLOB", "s3://far-bucket/blob.b64"));
        out.expect_code(0);
        assert_eq!(out.env()["BLOB"], "kms-far-value");
        let decrypts: Vec<Value> = proxy
            .requests()
            .into_iter()
            .filter(|r| r["target"] == "TrentService.Decrypt")
            .map(|r| r["region"].clone())
            .collect();
        assert_eq!(decrypts, [json!("eu-west-1")]);
    }
    // Said at once with ?region=: no redirect at all. An inline kms: blob
    // takes ?region= too (its key exists only in eu-west-1).
    let (moto, proxy, blob) = redirect_world(301);
    let out = exec_marked(
        proxy
            .envseal(&moto)
            .env("PLAIN", "s3://far-bucket/plain.txt?region=eu-west-1")
            .env(
                "INLINE",
                format!("kms:{}?region=eu-west-1", support::b64(&blob)),
            ),
    );
    out.expect_code(0);
    assert_eq!(out.env()["PLAIN"], "far-away-value");
    assert_eq!(out.env()["INLINE"], "kms-far-value");
    assert_eq!(proxy.stats()["faulted"], 0);
    assert_eq!(proxy.stats()["total"], 2);
    let out = exec_marked(
        proxy
            .envseal(&moto)
            .env("INLINE", format!("kms:{}", support::b64(&blob))),
    );
    assert_eq!(out.code, Some(111), "the key is not in us-east-1");
}

#[test]
fn policy_puts_reads_through_a_role_into_the_roles_policy() {
    let role = "arn:aws:iam::210987654321:role/cross-reader";
    let policy = |extra: &[&str]| {
        let mut cmd = support::envseal_bare();
        cmd.env("AWS_REGION", "us-east-1")
            .env(
                "DB",
                format!("ssm:/prod/db?role-arn={role}&external-id=x-1"),
            )
            .env("OWN", "sm:prod/own")
            .arg("policy")
            .args(extra);
        run(&mut cmd)
    };
    let out = policy(&[]);
    out.expect_code(0);
    let doc: Value = serde_json::from_str(&out.stdout).unwrap();
    let statements = doc["Statement"].as_array().unwrap();
    let assume = statements
        .iter()
        .find(|s| s["Sid"] == "AssumeRoles")
        .expect("an sts:AssumeRole statement");
    assert_eq!(assume["Action"], json!(["sts:AssumeRole"]));
    assert_eq!(assume["Resource"], json!([role]));
    // The base identity's own read is here; the role's is not.
    assert!(
        out.stdout.contains("secret:prod/own-??????"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("parameter/prod/db"), "{}", out.stdout);
    assert!(
        out.stderr.contains(&format!("policy --role {role}")),
        "{}",
        out.stderr
    );

    let out = policy(&["--role", role]);
    out.expect_code(0);
    let doc: Value = serde_json::from_str(&out.stdout).unwrap();
    let text = doc.to_string();
    // In the role's account, and nothing of the base identity's.
    assert!(
        text.contains("arn:aws:ssm:us-east-1:210987654321:parameter/prod/db"),
        "{text}"
    );
    assert!(
        !text.contains("prod/own") && !text.contains("sts:AssumeRole"),
        "{text}"
    );

    let out = policy(&["--role", "arn:aws:iam::210987654321:role/unused"]);
    assert_eq!(out.code, Some(111));
    assert!(
        out.stderr
            .contains("no reference or bundle is read through"),
        "{}",
        out.stderr
    );
}

#[test]
/// AssumeRole is retried like every other call, and a read through a role
/// that does not answer by the deadline says which step of it did not: the
/// AssumeRole, or the read through the role.
fn assume_role_is_retried_like_every_other_call() {
    let (moto, base, role, _) = world();
    let proxy = Proxy::start(&moto.endpoint);
    proxy.configure(json!({"faults": [
        {"kind": "503", "first": 2, "target": "sts.AssumeRole"},
    ]}));
    let out = exec_marked(
        envseal(&moto, &proxy, &base)
            .env("SECRET", "ssm:/roles/a")
            .env("ENVSEAL_ROLE_ARN", &role),
    );
    out.expect_code(0);
    assert_eq!(out.env()["SECRET"], SSM_VALUE);
    assert_eq!(assume_calls(&proxy).len(), 3);
    assert_eq!(
        proxy.stats()["faults"]["sts.AssumeRole"]["503"],
        2,
        "{}",
        proxy.stats()
    );
    // And a run whose AssumeRole never succeeds within the deadline says so.
    let timed_out = |fault: Value| {
        proxy.configure(json!({"faults": [fault]}));
        let out = exec_marked(
            envseal(&moto, &proxy, &base)
                .env("SECRET", "ssm:/roles/a")
                .env("ENVSEAL_ROLE_ARN", &role)
                .env("ENVSEAL_TIMEOUT", "2s"),
        );
        assert_eq!(out.code, Some(111));
        failure_reason(&out.stderr, "SECRET", "ssm:/roles/a")
    };
    let reason = timed_out(json!({"kind": "503", "target": "sts.AssumeRole"}));
    assert!(
        reason.contains(&format!(
            "no answer within the 2s deadline: AssumeRole {role}: "
        )) && reason.contains("503"),
        "{reason}"
    );
    // A read past its AssumeRole that does not answer in time names the role
    // it went through.
    let reason = timed_out(json!({"kind": "throttle", "target": "AmazonSSM.*"}));
    assert!(
        reason.starts_with("no answer within the 2s deadline: throttled (ThrottlingException) on ")
            && reason.ends_with(&format!(" (read through {role}) (timeout)")),
        "{reason}"
    );
    assert!(!reason.contains("AssumeRole"), "{reason}");
}

#[test]
fn only_the_reads_through_a_role_wait_for_its_assume_role() {
    let (moto, base, role, _) = world();
    let proxy = Proxy::start(&moto.endpoint);
    proxy.configure(json!({"faults": [
        {"kind": "slow", "ms": 1500, "target": "sts.AssumeRole"},
    ]}));
    let out = exec_marked(
        envseal(&moto, &proxy, &base)
            .env("SECRET", format!("ssm:/roles/a?role-arn={role}"))
            .env("OWN", "sm:roles/own"),
    );
    out.expect_code(0);
    let log = proxy.requests();
    let at = |prefix: &str| {
        log.iter()
            .find(|r| r["target"].as_str().unwrap_or("").starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} request in {log:?}"))["t"]
            .as_f64()
            .unwrap()
    };
    let assume = at("sts.AssumeRole");
    // The base identity's read did not wait for the slow AssumeRole; the
    // role's read did.
    assert!(at("secretsmanager.") - assume < 1.0, "{log:?}");
    assert!(at("AmazonSSM.") - assume >= 1.4, "{log:?}");
}
