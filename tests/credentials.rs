//! The credential chain, proven against moto with IAM enforcement on.
//!
//! In every test one parameter is readable by exactly one identity (an IAM
//! user or role with `ssm:GetParameter[s]`); envseal runs with a cleared
//! environment, a temporary HOME (under target/tmp) and no keys of its own,
//! so a value can only arrive through the provider under test. Each test
//! also shows that another identity, reached the same way, is denied — so a
//! run that used any other credentials would fail.
//!
//! The container endpoint (ECS, EKS Pod Identity) and the IAM Identity
//! Center portal are `tests/support/py/credserver.py`, serving credentials that
//! moto issued. A provider that fails is named in one line, exit 111, and
//! the application is not started.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{json, Value};
use support::{envseal_bare, exec_marked, run, CredServer, Moto, Run, ACCOUNT_ID};

const PARAM: &str = "/cred/db-password";
const VALUE: &str = "cred-value-7f3a";
const MARKER: &str = support::APP_STARTED;

fn reader_policy() -> Value {
    json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow",
        "Action": ["ssm:GetParameters", "ssm:GetParameter"],
        "Resource": "*",
    }]})
}

/// What an identity without SSM rights is allowed: enough to be valid.
fn outsider_policy() -> Value {
    json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": ["sts:GetCallerIdentity"], "Resource": "*",
    }]})
}

/// moto with the parameter (IAM enforcement still off).
fn moto_with_parameter() -> Moto {
    let moto = Moto::start();
    moto.call(
        "ssm",
        "put_parameter",
        json!({"Name": PARAM, "Value": VALUE, "Type": "SecureString"}),
    );
    moto
}

/// A fresh, empty directory under cargo's scratch directory (inside the
/// repository's target/), standing in for HOME.
fn scratch(name: &str) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "credentials/{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join(".aws")).unwrap();
    // Both files exist (empty): a configured file that is missing is a notice.
    std::fs::write(dir.join(".aws/config"), "").unwrap();
    std::fs::write(dir.join(".aws/credentials"), "").unwrap();
    dir
}

fn write(path: &Path, text: &str) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(path, text).unwrap();
}

/// envseal against moto with HOME, the config and the credentials files
/// in `home`, no keys, no instance metadata, one reference.
fn envseal_in(moto: &Moto, home: &Path) -> Command {
    let mut cmd = envseal_bare();
    cmd.env("HOME", home)
        .env("AWS_CONFIG_FILE", home.join(".aws/config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", home.join(".aws/credentials"))
        .env("AWS_ENDPOINT_URL", &moto.endpoint)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("DB_PASSWORD", format!("ssm:{PARAM}"));
    cmd
}

fn expect_value(out: &Run) {
    out.expect_code(0);
    assert!(out.stdout.contains(MARKER), "{}", out.stdout);
    assert_eq!(out.env()["DB_PASSWORD"], VALUE, "{}", out.stderr);
}

fn expect_denied(out: &Run) {
    assert_eq!(out.code, Some(111), "{}\n{}", out.stdout, out.stderr);
    assert!(!out.stdout.contains(MARKER), "the application ran");
    assert!(
        out.stderr.contains("DB_PASSWORD") && out.stderr.contains("(access-denied)"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains(VALUE));
}

/// Exit 111, nothing started, and the one failure line says `expected`
/// (after "no credentials: "); none of `secrets` anywhere in the output.
fn expect_no_credentials(out: &Run, expected: &str, secrets: &[&str]) {
    assert_eq!(out.code, Some(111), "{}\n{}", out.stdout, out.stderr);
    assert!(!out.stdout.contains(MARKER), "the application ran");
    let prefix = format!("envseal: DB_PASSWORD: ssm:{PARAM}: no credentials: ");
    let line = out
        .stderr
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no credentials line:\n{}", out.stderr));
    eprintln!("{line}");
    // envseal's own lines only: no SDK notice says the same again
    assert!(
        out.stderr.lines().all(|l| l.starts_with("envseal: ")),
        "{}",
        out.stderr
    );
    assert!(line.ends_with(" (no-credentials)"), "{line}");
    assert!(line.contains(expected), "expected {expected:?} in\n{line}");
    for secret in secrets.iter().chain([&VALUE]) {
        assert!(
            !out.stderr.contains(secret) && !out.stdout.contains(secret),
            "{secret:?} leaked:\n{}\n{}",
            out.stdout,
            out.stderr
        );
    }
}

fn key_of(key: &(String, String)) -> [&str; 2] {
    [key.0.as_str(), key.1.as_str()]
}

// ------------------------------------------------------------- (a) static keys

#[test]
fn static_keys_in_the_environment() {
    let moto = moto_with_parameter();
    let reader = moto.create_user_with_policy("env-reader", reader_policy());
    let outsider = moto.create_user_with_policy("env-outsider", outsider_policy());
    moto.enforce_iam();
    let home = scratch("env");
    for (key, readable) in [(&reader, true), (&outsider, false)] {
        let out = exec_marked(
            envseal_in(&moto, &home)
                .env("AWS_ACCESS_KEY_ID", &key.0)
                .env("AWS_SECRET_ACCESS_KEY", &key.1),
        );
        if readable {
            expect_value(&out);
        } else {
            expect_denied(&out);
        }
    }
    // and without any credentials: named, nothing started
    let out = exec_marked(&mut envseal_in(&moto, &home));
    expect_no_credentials(&out, "none configured", &[]);
}

// ---------------------------------------------------------------- (b) profiles

#[test]
fn profile_keys_from_the_credentials_file_of_a_temporary_home() {
    let moto = moto_with_parameter();
    let reader = moto.create_user_with_policy("profile-reader", reader_policy());
    let outsider = moto.create_user_with_policy("profile-outsider", outsider_policy());
    moto.enforce_iam();
    let home = scratch("profile");
    write(
        &home.join(".aws/credentials"),
        &format!(
            "[ops]\naws_access_key_id = {}\naws_secret_access_key = {}\n\n\
             [default]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            reader.0, reader.1, outsider.0, outsider.1
        ),
    );
    write(
        &home.join(".aws/config"),
        "[profile ops]\nregion = us-east-1\n",
    );
    expect_value(&exec_marked(
        envseal_in(&moto, &home).env("AWS_PROFILE", "ops"),
    ));
    // the default profile is someone else
    expect_denied(&exec_marked(&mut envseal_in(&moto, &home)));
    // a profile name that is in neither file: said so, nothing started
    let out = exec_marked(envseal_in(&moto, &home).env("AWS_PROFILE", "opps"));
    expect_no_credentials(&out, "profile `opps` is in neither file", &key_of(&reader));
}

#[test]
fn profile_role_arn_with_source_profile_assumes_the_role_through_sts() {
    let moto = moto_with_parameter();
    // jumper may only assume roles; the role may read.
    let jumper = moto.create_user_with_policy(
        "jumper",
        json!({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": ["sts:AssumeRole"], "Resource": "*",
        }]}),
    );
    let jumper_arn = format!("arn:aws:iam::{ACCOUNT_ID}:user/jumper");
    let role = moto.create_role_with_policy("profile-role", &jumper_arn, reader_policy());
    let idle = moto.create_role_with_policy("idle-role", &jumper_arn, outsider_policy());
    moto.enforce_iam();
    let home = scratch("assume");
    write(
        &home.join(".aws/credentials"),
        &format!(
            "[base]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            jumper.0, jumper.1
        ),
    );
    write(
        &home.join(".aws/config"),
        &format!(
            "[profile app]\nrole_arn = {role}\nsource_profile = base\nrole_session_name = envseal-test\n\n\
             [profile idle]\nrole_arn = {idle}\nsource_profile = base\n\n\
             [profile base]\nregion = us-east-1\n"
        ),
    );
    // STS is moto through AWS_ENDPOINT_URL; say it for STS too, as an operator would.
    expect_value(&exec_marked(
        envseal_in(&moto, &home)
            .env("AWS_PROFILE", "app")
            .env("AWS_ENDPOINT_URL_STS", &moto.endpoint),
    ));
    // the source profile alone may not read, nor may another role it assumes
    expect_denied(&exec_marked(
        envseal_in(&moto, &home).env("AWS_PROFILE", "base"),
    ));
    expect_denied(&exec_marked(
        envseal_in(&moto, &home).env("AWS_PROFILE", "idle"),
    ));
}

// ------------------------------------------------------- (c) web identity / IRSA

#[test]
fn web_identity_token_file_and_role_arn() {
    let moto = moto_with_parameter();
    let role = moto.create_role_with_policy("irsa-role", "*", reader_policy());
    let idle = moto.create_role_with_policy("irsa-idle", "*", outsider_policy());
    let home = scratch("irsa");
    let token_file = home.join("eks.amazonaws.com/serviceaccount/token");
    let token = "eyJhbGciOiJSUzI1NiJ9.irsa-test-token.sig";
    write(&token_file, token);
    let irsa = |role: &str| {
        let mut cmd = envseal_in(&moto, &home);
        cmd.env("AWS_ROLE_ARN", role)
            .env("AWS_WEB_IDENTITY_TOKEN_FILE", &token_file)
            .env("AWS_ROLE_SESSION_NAME", "envseal-irsa");
        cmd
    };
    // AssumeRoleWithWebIdentity is unsigned; moto answers unsigned requests
    // under enforcement with HTTP 500, so that one call is let through
    // (see Moto::enforce_iam_after). The SSM read after it is checked.
    moto.enforce_iam_after(1);
    expect_value(&exec_marked(&mut irsa(&role)));
    moto.enforce_iam_after(1);
    expect_denied(&exec_marked(&mut irsa(&idle)));

    // a token file that is not there: named, nothing started
    moto.enforce_iam();
    let missing = home.join("no-such-token");
    let out = exec_marked(irsa(&role).env("AWS_WEB_IDENTITY_TOKEN_FILE", &missing));
    expect_no_credentials(
        &out,
        &format!(
            "web identity (AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ROLE_ARN; STS AssumeRoleWithWebIdentity) \
             failed: cannot read the token file {}: No such file or directory",
            missing.display()
        ),
        &[token],
    );
}

// ------------------------------------------- (d, e) ECS task role, EKS Pod Identity

/// A role's temporary credentials from moto's STS, in the shape the
/// credential server serves.
fn role_credentials(moto: &Moto, role: &str) -> Value {
    let c = moto.assume_role(role, "container-session");
    json!({
        "AccessKeyId": c["AccessKeyId"],
        "SecretAccessKey": c["SecretAccessKey"],
        "Token": c["SessionToken"],
    })
}

fn secrets_of(credentials: &Value) -> Vec<String> {
    ["AccessKeyId", "SecretAccessKey", "Token"]
        .iter()
        .filter_map(|k| credentials[k].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn ecs_container_credentials_endpoint() {
    let moto = moto_with_parameter();
    let task = moto.create_role_with_policy("task-role", "*", reader_policy());
    let idle = moto.create_role_with_policy("task-idle", "*", outsider_policy());
    let task_creds = role_credentials(&moto, &task);
    let idle_creds = role_credentials(&moto, &idle);
    moto.enforce_iam();
    let server = CredServer::start();
    let home = scratch("ecs");
    let uri = format!("{}/container/v2/credentials/task-1", server.endpoint);
    let ecs = || {
        let mut cmd = envseal_in(&moto, &home);
        cmd.env("AWS_CONTAINER_CREDENTIALS_FULL_URI", &uri);
        cmd
    };

    server.configure(json!({"credentials": task_creds}));
    expect_value(&exec_marked(&mut ecs()));
    let asked = server.requests();
    assert!(
        asked
            .iter()
            .any(|r| r["path"] == "/container/v2/credentials/task-1" && r["status"] == 200),
        "{asked:?}"
    );

    server.configure(json!({"credentials": idle_creds}));
    expect_denied(&exec_marked(&mut ecs()));

    // the endpoint failing: named, nothing started
    server.configure(json!({"credentials": task_creds, "container_status": 500}));
    let out = exec_marked(&mut ecs());
    let secrets = secrets_of(&task_creds);
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    expect_no_credentials(
        &out,
        "the ECS container credentials endpoint (AWS_CONTAINER_CREDENTIALS_FULL_URI) answered HTTP 500",
        &secrets,
    );
    assert!(
        server.requests().iter().all(|r| r["status"] == 500),
        "{:?}",
        server.requests()
    );

    // nothing listening there
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let out = exec_marked(ecs().env(
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        format!("http://127.0.0.1:{closed}/container/v2/credentials/task-1"),
    ));
    expect_no_credentials(
        &out,
        "the ECS container credentials endpoint (AWS_CONTAINER_CREDENTIALS_FULL_URI) failed: \
         Connection refused",
        &secrets,
    );
}

#[test]
fn eks_pod_identity_sends_the_token_from_the_token_file() {
    let moto = moto_with_parameter();
    let pod = moto.create_role_with_policy("pod-role", "*", reader_policy());
    let idle = moto.create_role_with_policy("pod-idle", "*", outsider_policy());
    let pod_creds = role_credentials(&moto, &pod);
    let idle_creds = role_credentials(&moto, &idle);
    moto.enforce_iam();
    let server = CredServer::start();
    let home = scratch("pod");
    let token = "pod-identity-token-5e8b";
    let token_file = home.join("eks-pod-identity-token");
    write(&token_file, token);
    let wrong_file = home.join("wrong-token");
    write(&wrong_file, "not-the-token");
    let uri = format!("{}/container/v1/credentials", server.endpoint);
    let pod_identity = |file: Option<&Path>| {
        let mut cmd = envseal_in(&moto, &home);
        cmd.env("AWS_CONTAINER_CREDENTIALS_FULL_URI", &uri);
        if let Some(file) = file {
            cmd.env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", file);
        }
        cmd
    };

    server.configure(json!({"credentials": pod_creds, "authorization": token}));
    expect_value(&exec_marked(&mut pod_identity(Some(&token_file))));
    let asked = server.requests();
    assert!(
        !asked.is_empty() && asked.iter().all(|r| r["auth"] == "ok"),
        "{asked:?}"
    );

    server.configure(json!({"credentials": idle_creds, "authorization": token}));
    expect_denied(&exec_marked(&mut pod_identity(Some(&token_file))));

    let mut secrets = secrets_of(&pod_creds);
    secrets.push(token.to_owned());
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();

    // without the token the agent refuses: named, nothing started
    server.configure(json!({"credentials": pod_creds, "authorization": token}));
    let out = exec_marked(&mut pod_identity(None));
    expect_no_credentials(
        &out,
        "the ECS container credentials endpoint (AWS_CONTAINER_CREDENTIALS_FULL_URI) answered HTTP 401 \
         (no authorization token was sent: is AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE set?)",
        &secrets,
    );
    let asked = server.requests();
    assert!(
        !asked.is_empty() && asked.iter().all(|r| r["auth"] == "none"),
        "{asked:?}"
    );

    // a wrong token
    let out = exec_marked(&mut pod_identity(Some(&wrong_file)));
    expect_no_credentials(
        &out,
        "the EKS Pod Identity container credentials endpoint (AWS_CONTAINER_CREDENTIALS_FULL_URI, \
         AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE) answered HTTP 401 (the authorization token was refused)",
        &secrets,
    );

    // a token file that is not there
    let missing = home.join("no-such-token");
    let out = exec_marked(&mut pod_identity(Some(&missing)));
    expect_no_credentials(
        &out,
        &format!(
            "failed: cannot read the authorization token file {}: No such file or directory",
            missing.display()
        ),
        &secrets,
    );
}

// -------------------------------------------------------- (f) credential_process

#[test]
fn credential_process_in_a_profile() {
    let moto = moto_with_parameter();
    let reader = moto.create_user_with_policy("process-reader", reader_policy());
    let outsider = moto.create_user_with_policy("process-outsider", outsider_policy());
    moto.enforce_iam();
    let home = scratch("process");
    let document = |key: &(String, String)| {
        json!({"Version": 1, "AccessKeyId": key.0, "SecretAccessKey": key.1}).to_string()
    };
    write(&home.join("reader.json"), &document(&reader));
    write(&home.join("outsider.json"), &document(&outsider));
    let stderr_secret = "stderr-secret-91c2";
    write(
        &home.join(".aws/config"),
        &format!(
            "[profile proc]\ncredential_process = /bin/cat {}\n\n\
             [profile other]\ncredential_process = /bin/cat {}\n\n\
             [profile broken]\ncredential_process = /bin/sh -c \"echo {stderr_secret} >&2; exit 1\"\n\n\
             [profile garbled]\ncredential_process = /bin/echo not-json\n",
            home.join("reader.json").display(),
            home.join("outsider.json").display(),
        ),
    );
    expect_value(&exec_marked(
        envseal_in(&moto, &home).env("AWS_PROFILE", "proc"),
    ));
    expect_denied(&exec_marked(
        envseal_in(&moto, &home).env("AWS_PROFILE", "other"),
    ));

    // a process that fails: its exit status, never its stderr
    let out = exec_marked(envseal_in(&moto, &home).env("AWS_PROFILE", "broken"));
    expect_no_credentials(
        &out,
        "the credential_process of profile `broken` (AWS_PROFILE) failed: \
         the command exited with exit status: 1 (its stderr is not shown)",
        &[stderr_secret, &reader.0, &reader.1],
    );
    // one that prints something else than the credential JSON
    let out = exec_marked(envseal_in(&moto, &home).env("AWS_PROFILE", "garbled"));
    expect_no_credentials(
        &out,
        "the credential_process of profile `garbled` (AWS_PROFILE) failed: \
         the command printed no credential JSON (",
        &["not-json", &reader.0, &reader.1],
    );
}

// ---------------------------------------------------------------- (g) SSO

/// The SDK's cache file name for an SSO session name or start URL.
fn sso_cache_file(home: &Path, identifier: &str) -> PathBuf {
    let out = run(Command::new("python3").args([
        "-c",
        "import hashlib, sys; print(hashlib.sha1(sys.argv[1].encode()).hexdigest())",
        identifier,
    ]));
    out.expect_code(0);
    home.join(format!(".aws/sso/cache/{}.json", out.stdout.trim()))
}

fn sso_token(token: &str, expires_at: &str, start_url: &str) -> String {
    json!({
        "accessToken": token,
        "expiresAt": expires_at,
        "region": "us-east-1",
        "startUrl": start_url,
    })
    .to_string()
}

#[test]
fn sso_profile_with_a_cached_token() {
    let moto = moto_with_parameter();
    let reader = moto.create_user_with_policy("sso-reader", reader_policy());
    let outsider = moto.create_user_with_policy("sso-outsider", outsider_policy());
    moto.enforce_iam();
    let server = CredServer::start();
    let home = scratch("sso");
    let start_url = "https://corp.awsapps.com/start";
    let legacy_url = "https://legacy.awsapps.com/start";
    let token = "sso-bearer-token-3d1f";
    write(
        &home.join(".aws/config"),
        &format!(
            "[profile dev]\nsso_session = corp\nsso_account_id = {ACCOUNT_ID}\n\
             sso_role_name = ReadSecrets\nregion = us-east-1\n\n\
             [sso-session corp]\nsso_start_url = {start_url}\nsso_region = us-east-1\n\
             sso_registration_scopes = sso:account:access\n\n\
             [profile legacy]\nsso_start_url = {legacy_url}\nsso_region = us-east-1\n\
             sso_account_id = {ACCOUNT_ID}\nsso_role_name = ReadSecrets\n"
        ),
    );
    let session_cache = sso_cache_file(&home, "corp");
    write(
        &session_cache,
        &sso_token(token, "2099-01-01T00:00:00Z", start_url),
    );
    write(
        &sso_cache_file(&home, legacy_url),
        &sso_token(token, "2099-01-01T00:00:00Z", legacy_url),
    );
    let sso = |profile: &str| {
        let mut cmd = envseal_in(&moto, &home);
        cmd.env("AWS_PROFILE", profile)
            .env("AWS_ENDPOINT_URL_SSO", &server.endpoint);
        cmd
    };
    let portal = |key: &(String, String)| {
        json!({
            "credentials": {"AccessKeyId": key.0, "SecretAccessKey": key.1},
            "sso_token": token, "sso_account": ACCOUNT_ID, "sso_role": "ReadSecrets",
        })
    };

    server.configure(portal(&reader));
    for profile in ["dev", "legacy"] {
        expect_value(&exec_marked(&mut sso(profile)));
    }
    let asked = server.requests();
    assert!(
        asked.len() >= 2
            && asked
                .iter()
                .all(|r| r["path"] == "/federation/credentials" && r["auth"] == "ok"),
        "{asked:?}"
    );
    // operators run check from the laptop: the same chain
    let out = run(sso("dev").arg("check"));
    out.expect_code(0);
    assert!(out.stdout.contains("DB_PASSWORD"), "{}", out.stdout);

    server.configure(portal(&outsider));
    expect_denied(&exec_marked(&mut sso("dev")));

    // the cached token expired (and cannot be refreshed): named, with the
    // command that signs in again, nothing started
    server.configure(portal(&reader));
    write(
        &session_cache,
        &sso_token(token, "2020-01-01T00:00:00Z", start_url),
    );
    let out = exec_marked(&mut sso("dev"));
    expect_no_credentials(
        &out,
        "the SSO login of profile `dev` (AWS_PROFILE, sso_session `corp`) failed: \
         the SSO token has expired and cannot be refreshed (sign in again: aws sso login --profile dev)",
        &[token, &reader.0, &reader.1],
    );
    assert!(server.requests().is_empty(), "{:?}", server.requests());

    // a token the portal does not accept (signed out elsewhere)
    write(
        &session_cache,
        &sso_token("revoked-token-77aa", "2099-01-01T00:00:00Z", start_url),
    );
    let out = exec_marked(&mut sso("dev"));
    expect_no_credentials(
        &out,
        "the SSO login of profile `dev` (AWS_PROFILE, sso_session `corp`) failed: ",
        &["revoked-token-77aa", token, &reader.0, &reader.1],
    );
    assert!(
        out.stderr.contains("aws sso login --profile dev"),
        "{}",
        out.stderr
    );
    let asked = server.requests();
    assert!(
        !asked.is_empty()
            && asked
                .iter()
                .all(|r| r["auth"] == "wrong" && r["status"] == 401),
        "{asked:?}"
    );
}
