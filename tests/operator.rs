//! The operator commands against moto: `check` (fingerprints, never
//! values), `export` (shell, JSON and dotenv that round-trip hostile values),
//! `policy` (sufficient, each statement needed, narrowed with `--resolve`),
//! and `push`/`pull` (what push writes, what pull prints, and AWS's Python
//! S3 Encryption Client reading what push wrote).

mod support;

use serde_json::{json, Value};
use support::s3::{
    get_raw, kms_key_and_bucket, pull, push, s3ec, s3ec_put, setup, temp_dir, ALIAS, BUCKET,
    GREETING_APP,
};
use support::{bytes_of, run, run_with_stdin, seed_ssm, Moto};

/// Exit code of a resolution failure (src/error.rs).
const EXIT_RESOLUTION: i32 = 111;

#[test]
fn check_lists_fingerprints_and_never_values() {
    let moto = Moto::start();
    seed_ssm(
        &moto,
        &[
            ("/chk/a", "value-alpha-123"),
            ("/chk/bundle/b", "value-beta-456"),
        ],
    );
    let out =
        run(moto
            .envseal()
            .env("A", "ssm:/chk/a")
            .args(["check", "--from", "ssm:/chk/bundle/"]));
    out.expect_code(0);
    // sha256("value-alpha-123") starts with:
    let fp = {
        let o = std::process::Command::new("python3")
            .args([
                "-c",
                "import hashlib;print(hashlib.sha256(b'value-alpha-123').hexdigest()[:8])",
            ])
            .output()
            .unwrap();
        String::from_utf8(o.stdout).unwrap().trim().to_owned()
    };
    let line = out
        .stdout
        .lines()
        .find(|l| l.starts_with("A\t"))
        .expect("a line for A");
    assert!(line.contains("ssm:/chk/a") && line.contains("ok"), "{line}");
    assert!(
        line.contains("length=15") && line.contains(&format!("sha256={fp}")),
        "{line}"
    );
    assert!(out
        .stdout
        .lines()
        .any(|l| l.starts_with("B\t") && l.contains("ssm:/chk/bundle/")));
    for v in ["value-alpha-123", "value-beta-456"] {
        assert!(!out.stdout.contains(v) && !out.stderr.contains(v));
    }

    let out = run(moto
        .envseal()
        .env("A", "ssm:/chk/a")
        .env("MISS1", "ssm:/chk/missing1")
        .env("MISS2", "sm:missing/two")
        .args(["check", "--format", "json"]));
    assert_eq!(out.code, Some(111));
    let rows: Value = serde_json::from_str(&out.stdout).unwrap();
    let failed: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == "failed")
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(failed.len(), 2, "{}", out.stdout);
    assert!(failed.contains(&"MISS1") && failed.contains(&"MISS2"));
    assert!(
        out.stderr.contains("MISS1: ssm:/chk/missing1")
            && out.stderr.contains("MISS2: sm:missing/two")
    );
    assert!(!out.stdout.contains("value-alpha-123"));
}

const HOSTILE: &str =
    "it's \"quoted\" $HOME `id` $(touch /tmp/envseal-pwned) \\ back\nnew line\ttab ünï €";

#[test]
fn export_round_trips_hostile_values_through_sh() {
    let moto = Moto::start();
    seed_ssm(
        &moto,
        &[("/exp/hostile", HOSTILE), ("/exp/plain", "simple")],
    );
    let _ = std::fs::remove_file("/tmp/envseal-pwned");
    let base = || {
        let mut c = moto.envseal();
        c.env("HOSTILE", "ssm:/exp/hostile")
            .env("PLAIN", "ssm:/exp/plain");
        c
    };
    let out = run(base().args(["export"]));
    out.expect_code(0);
    // eval in a POSIX sh, then print the value back byte for byte
    let script = format!("{}\nprintf '%s' \"$HOSTILE\"", out.stdout);
    let sh = run(std::process::Command::new("sh").args(["-c", &script]));
    sh.expect_code(0);
    assert_eq!(sh.stdout, HOSTILE);
    assert!(
        !std::path::Path::new("/tmp/envseal-pwned").exists(),
        "a value ran a command"
    );

    let out = run(base().args(["export", "--format", "json"]));
    out.expect_code(0);
    let map: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(map["HOSTILE"], HOSTILE);
    assert_eq!(map["PLAIN"], "simple");

    // dotenv output reads back through envseal's own dotenv reader (an S3 bundle
    // would use the same parser): check it via python's reading of the escapes.
    let out = run(base().args(["export", "--format", "dotenv"]));
    out.expect_code(0);
    let py = "import sys,json\nout={}\nfor line in sys.stdin.read().splitlines():\n  k,v=line.split('=',1)\n  assert v[0]=='\"' and v[-1]=='\"'\n  v=v[1:-1]\n  r='';i=0\n  while i<len(v):\n    c=v[i]\n    if c=='\\\\':\n      i+=1;r+={'n':'\\n','r':'\\r','t':'\\t'}.get(v[i],v[i])\n    else: r+=c\n    i+=1\n  out[k]=r\nprint(json.dumps(out))";
    let back = run_with_stdin(
        std::process::Command::new("python3").args(["-c", py]),
        out.stdout.as_bytes(),
    );
    back.expect_code(0);
    let map: Value = serde_json::from_str(&back.stdout).unwrap();
    assert_eq!(map["HOSTILE"], HOSTILE);
}

/// The statements of the generated policy, minus the one at `skip`; with a
/// `skip`, also minus the optional ones (moto does not check GetSecretValue
/// inside BatchGetSecretValue, which real AWS does).
///
/// moto 5.2.1 evaluates the Resource of SSM, Secrets Manager and KMS requests
/// as `*`, so a statement naming parameter or secret ARNs never matches there
/// (seen: a user allowed `ssm:GetParameter` on
/// `arn:aws:ssm:us-east-1:123456789012:parameter/single` is denied
/// `/single`). For those services this test proves the *actions* are
/// sufficient and each required statement necessary, with the resources
/// widened to `*`; the ARNs themselves are checked by the unit tests in
/// src/commands/policy/tests.rs. S3 statements keep their object ARNs: moto
/// checks those.
fn policy_without(policy: &Value, skip: Option<usize>) -> Value {
    let statements: Vec<Value> = policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != skip)
        .filter(|(_, s)| skip.is_none() || !s["Sid"].as_str().unwrap().ends_with("Optional"))
        .map(|(_, s)| {
            let mut s = s.clone();
            let is_s3 = s["Action"].to_string().contains("s3:");
            if !is_s3 {
                s["Resource"] = json!("*");
            }
            s
        })
        .collect();
    json!({"Version": "2012-10-17", "Statement": statements})
}

#[test]
fn generated_policy_is_sufficient_and_each_required_statement_is_needed() {
    let moto = Moto::start();
    seed_ssm(&moto, &[("/pol/one", "p1"), ("/pol/bundle/x", "px")]);
    moto.call(
        "secretsmanager",
        "create_secret",
        json!({"Name": "pol/api", "SecretString": "{\"TOKEN\":\"t\"}"}),
    );
    // An S3 object written by `envseal push` (envelope + SSE-KMS) and an
    // inline KMS blob, both made before enforcement is switched on.
    let (key_id, _) = kms_key_and_bucket(&moto, "alias/pol", "pol-bucket");
    push(
        &moto,
        "s3://pol-bucket/app/prod.env",
        "alias/pol",
        b"S3VAR=from-s3\nOTHER=unused\n",
    );
    let blob = support::s3::kms_encrypt(&moto, &key_id, b"from-kms");
    let inline = format!("kms:{}", support::b64(&blob));
    let configure = |c: &mut std::process::Command| {
        c.env("ONE", "ssm:/pol/one")
            .env("TOKEN", "sm:pol/api#TOKEN")
            .env("FROM_S3", "s3://pol-bucket/app/prod.env#S3VAR")
            .env("INLINE", &inline)
            .env("ENVSEAL_FROM", "ssm:/pol/bundle/");
    };
    let mut cmd = moto.envseal();
    configure(&mut cmd);
    let out = run(cmd.arg("policy"));
    out.expect_code(0);
    let policy: Value = serde_json::from_str(&out.stdout).unwrap();
    let statements = policy["Statement"].as_array().unwrap().clone();
    let sids: Vec<&str> = statements
        .iter()
        .map(|s| s["Sid"].as_str().unwrap())
        .collect();
    // Every required statement of every backend is under test below.
    for sid in [
        "ReadSsmParameters",
        "ReadSsmPaths",
        "ReadSecrets",
        "ReadS3Objects",
        "DecryptWithKms",
    ] {
        assert!(sids.contains(&sid), "{sid} missing: {policy}");
    }

    // the full policy, and the required statements alone (usize::MAX skips none)
    let mut users = vec![
        ("full".to_owned(), None),
        ("required-only".to_owned(), Some(usize::MAX)),
    ];
    for (i, s) in statements.iter().enumerate() {
        if !s["Sid"].as_str().unwrap().ends_with("Optional") {
            users.push((format!("without-{i}"), Some(i)));
        }
    }
    let keys: Vec<((String, String), Option<usize>)> = users
        .iter()
        .map(|(name, skip)| {
            (
                moto.create_user_with_policy(name, policy_without(&policy, *skip)),
                *skip,
            )
        })
        .collect();
    moto.enforce_iam();
    for (key, skip) in keys {
        let mut cmd = moto.envseal_as(&key);
        configure(&mut cmd);
        let out = run(cmd.args(["exec", "--", "/usr/bin/env"]));
        match skip {
            None | Some(usize::MAX) => {
                out.expect_code(0);
                assert_eq!(out.env()["ONE"], "p1");
                assert_eq!(out.env()["TOKEN"], "t");
                assert_eq!(out.env()["X"], "px");
                assert_eq!(out.env()["FROM_S3"], "from-s3");
                assert_eq!(out.env()["INLINE"], "from-kms");
            }
            Some(i) => {
                assert_eq!(
                    out.code,
                    Some(111),
                    "without {} it still worked",
                    statements[i]["Sid"]
                );
                assert!(out.stderr.contains("access denied"), "{}", out.stderr);
                // ... and exactly the variables that need it fail.
                let sid = statements[i]["Sid"].as_str().unwrap();
                let needs: &[&str] = match sid {
                    "ReadSsmParameters" => &["ONE"],
                    "ReadSsmPaths" => &["(bundle)"],
                    "ReadSecrets" => &["TOKEN"],
                    "ReadS3Objects" => &["FROM_S3"],
                    // the envelope's data key and the inline blob
                    "DecryptWithKms" => &["FROM_S3", "INLINE"],
                    other => panic!("no expectation for statement {other}"),
                };
                for var in ["ONE", "(bundle)", "TOKEN", "FROM_S3", "INLINE"] {
                    let failed = out
                        .stderr
                        .lines()
                        .any(|l| l.starts_with(&format!("envseal: {var}: ")));
                    assert_eq!(
                        failed,
                        needs.contains(&var),
                        "without {sid}, {var} failed: {failed}\n{}",
                        out.stderr
                    );
                }
            }
        }
    }
}

#[test]
fn policy_makes_no_aws_call_without_resolve() {
    let out = run(support::envseal_bare()
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
        .env("AWS_REGION", "eu-central-1")
        .env("A", "ssm:/x/y")
        .args(["policy", "--from", "ssm:/bundle/"]));
    out.expect_code(0);
    let policy: Value = serde_json::from_str(&out.stdout).unwrap();
    let text = policy.to_string();
    assert!(
        text.contains("arn:aws:ssm:eu-central-1:*:parameter/x/y"),
        "{text}"
    );
    assert!(
        text.contains("arn:aws:ssm:eu-central-1:*:parameter/bundle\""),
        "{text}"
    );
}

/// A reader that goes away (`envseal policy | head -1`) is a failure line
/// and exit code 111, not a panic (exit 101).
#[test]
fn policy_to_a_closed_pipe_is_an_error_not_a_panic() {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = support::envseal_bare()
        .env("AWS_REGION", "eu-central-1")
        .env("A", "ssm:/x/y")
        .arg("policy")
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(111), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.contains("envseal: cannot write to stdout"),
        "{stderr}"
    );
}

/// `export --format shell|dotenv` prints names unquoted: a variable whose
/// name is not `[A-Za-z_][A-Za-z0-9_]*` (any string can be an inherited
/// variable's name) is refused, naming it, with nothing on stdout — not even
/// the variables that could be printed. JSON carries any name.
#[test]
fn export_refuses_names_that_are_not_shell_or_dotenv_names() {
    let moto = Moto::start();
    seed_ssm(&moto, &[("/names/v", "name-test-value")]);
    let marker = "/tmp/envseal-name-pwned";
    let _ = std::fs::remove_file(marker);
    let evil = format!("A;touch {marker};B");
    let base = || {
        let mut c = moto.envseal();
        c.env("GOOD", "ssm:/names/v")
            .env(&evil, "ssm:/names/v")
            .env("A-B", "ssm:/names/v")
            // a plain variable is passed through, never printed by export:
            // its name does not matter here
            .env("PLAIN-NAME", "plain");
        c
    };
    for format in ["shell", "dotenv"] {
        let out = run(base().args(["export", "--format", format]));
        assert_eq!(out.code, Some(111), "{format}: {}", out.stderr);
        assert_eq!(out.stdout, "", "{format}: something was printed");
        assert!(out.stderr.contains(&format!("{evil:?}")), "{}", out.stderr);
        assert!(out.stderr.contains("\"A-B\""), "{}", out.stderr);
        assert!(!out.stderr.contains("GOOD"), "{}", out.stderr);
        assert!(!out.stderr.contains("name-test-value"), "{}", out.stderr);
    }
    // the default format is shell
    let out = run(base().arg("export"));
    assert_eq!(out.code, Some(111));
    assert_eq!(out.stdout, "");

    let out = run(base().args(["export", "--format", "json"]));
    out.expect_code(0);
    let map: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(map[evil.as_str()], "name-test-value");
    assert_eq!(map["A-B"], "name-test-value");
    assert_eq!(map["GOOD"], "name-test-value");
    assert!(map.get("PLAIN-NAME").is_none());

    // without the hostile names, shell export works (and a plain variable
    // with an odd name does not stop it)
    let out = run(moto
        .envseal()
        .env("GOOD", "ssm:/names/v")
        .env("PLAIN-NAME", "plain")
        .arg("export"));
    out.expect_code(0);
    assert_eq!(out.stdout, "export GOOD='name-test-value'\n");
    assert!(!std::path::Path::new(marker).exists());
}

/// `policy --resolve` narrows kms:Decrypt to the objects' SSE-KMS keys only
/// when every object has one; an object without SSE-KMS or whose HeadObject
/// fails keeps `*`, with a warning naming the object.
#[test]
fn policy_resolve_narrows_kms_only_when_every_object_has_an_sse_kms_key() {
    let moto = Moto::start();
    let (_, key_arn) = kms_key_and_bucket(&moto, "alias/res", "res-bucket");
    push(&moto, "s3://res-bucket/pushed.env", "alias/res", b"A=1\n");
    // plaintext, no SSE-KMS (as a client-side-only encryption client writes)
    moto.call(
        "s3",
        "put_object",
        json!({"Bucket": "res-bucket", "Key": "plain.env",
               "Body": support::bytes_arg(b"B=2\n")}),
    );
    let decrypt = |from: &[&str]| {
        let mut cmd = moto.envseal();
        cmd.env("ONE", "ssm:/res/one").args(["policy", "--resolve"]);
        for f in from {
            cmd.args(["--from", f]);
        }
        let out = run(&mut cmd);
        out.expect_code(0);
        let policy: Value = serde_json::from_str(&out.stdout).unwrap();
        let text = policy.to_string();
        // the account came from STS
        assert!(
            text.contains(&format!(
                "arn:aws:ssm:us-east-1:{}:parameter/res/one",
                support::ACCOUNT_ID
            )),
            "{text}"
        );
        let statement = policy["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["Sid"] == "DecryptWithKms")
            .unwrap_or_else(|| panic!("no DecryptWithKms: {text}"))
            .clone();
        (statement["Resource"].clone(), out.stderr)
    };

    let (resource, stderr) = decrypt(&["s3://res-bucket/pushed.env"]);
    assert_eq!(resource, json!([key_arn]), "{stderr}");
    assert!(!stderr.contains("stays on"), "{stderr}");

    let (resource, stderr) = decrypt(&["s3://res-bucket/pushed.env", "s3://res-bucket/plain.env"]);
    assert_eq!(resource, "*");
    assert!(
        stderr.contains("s3://res-bucket/plain.env") && stderr.contains("no SSE-KMS"),
        "{stderr}"
    );
    assert!(!stderr.contains("s3://res-bucket/pushed.env"), "{stderr}");

    let (resource, stderr) =
        decrypt(&["s3://res-bucket/pushed.env", "s3://res-bucket/missing.env"]);
    assert_eq!(resource, "*");
    assert!(
        stderr.contains("s3://res-bucket/missing.env") && stderr.contains("HeadObject failed"),
        "{stderr}"
    );
}

/// Real S3 answers GetObject on a missing key with 403, not 404, when the
/// caller may not `s3:ListBucket` the bucket, and `?optional` forgives only
/// "not found": so `envseal policy` grants ListBucket, narrowed by
/// `s3:prefix` to the optional keys. Under moto's IAM enforcement (moto
/// checks S3 object ARNs) the printed policy leaves the missing optional
/// object out and starts the application. moto 5.2.1 answers 404 NoSuchKey
/// whatever the caller may list, so it cannot show the fail-closed 403
/// without ListBucket; the test asks moto what it answers and holds envseal
/// to real S3's behaviour if moto ever answers 403.
#[test]
fn optional_s3_objects_get_list_bucket_narrowed_to_their_keys() {
    let moto = Moto::start();
    moto.calls(json!([
        {"service": "s3", "method": "create_bucket", "args": {"Bucket": "opt-bucket"}},
        {"service": "s3", "method": "put_object",
         "args": {"Bucket": "opt-bucket", "Key": "app/present.env",
                  "Body": support::bytes_arg(b"PRESENT=here\n")}},
    ]));
    let configure = |c: &mut std::process::Command| {
        c.env("PRESENT", "s3://opt-bucket/app/present.env#PRESENT")
            .env("MAYBE", "s3://opt-bucket/app/missing.env#X?optional");
    };
    let mut cmd = moto.envseal();
    configure(&mut cmd);
    let out = run(cmd.arg("policy"));
    out.expect_code(0);
    let policy: Value = serde_json::from_str(&out.stdout).unwrap();
    let statements = policy["Statement"].as_array().unwrap().clone();
    let list = statements
        .iter()
        .find(|s| s["Sid"] == "ListBucketForOptionalObjects")
        .unwrap_or_else(|| panic!("no ListBucket statement: {policy}"));
    assert_eq!(list["Action"], json!(["s3:ListBucket"]));
    assert_eq!(list["Resource"], "arn:aws:s3:::opt-bucket");
    assert_eq!(
        list["Condition"],
        json!({"StringEquals": {"s3:prefix": ["app/missing.env"]}})
    );
    let without_list = json!({
        "Version": "2012-10-17",
        "Statement": statements
            .iter()
            .filter(|s| s["Sid"] != "ListBucketForOptionalObjects")
            .cloned()
            .collect::<Vec<Value>>(),
    });
    let with_key = moto.create_user_with_policy("with-list", policy.clone());
    let without_key = moto.create_user_with_policy("without-list", without_list);
    moto.enforce_iam();

    // the printed policy: the missing optional object is left out
    let mut cmd = moto.envseal_as(&with_key);
    configure(&mut cmd);
    let out = run(cmd.args(["exec", "--", "/usr/bin/env"]));
    out.expect_code(0);
    assert_eq!(out.env()["PRESENT"], "here");
    assert!(!out.env().contains_key("MAYBE"), "{}", out.stdout);

    // what the server answers for the missing key without ListBucket
    let answer = moto.calls(json!([{
        "service": "s3", "method": "get_object",
        "args": {"Bucket": "opt-bucket", "Key": "app/missing.env"},
        "credentials": {"key": without_key.0, "secret": without_key.1},
        "allow_error": true,
    }]));
    let status = answer[0]["$error"]["status"].as_u64();
    let mut cmd = moto.envseal_as(&without_key);
    configure(&mut cmd);
    let out = run(cmd.args(["exec", "--", "/usr/bin/env"]));
    match status {
        // real S3: fail closed, the object named as denied
        Some(403) => {
            assert_eq!(out.code, Some(111), "{}", out.stderr);
            assert!(
                out.stderr
                    .lines()
                    .any(|l| l.starts_with("envseal: MAYBE: ") && l.ends_with("(access-denied)")),
                "{}",
                out.stderr
            );
        }
        // moto 5.2.1: 404 NoSuchKey for any caller allowed GetObject
        Some(404) => {
            assert_eq!(answer[0]["$error"]["code"], "NoSuchKey", "{answer:?}");
            out.expect_code(0);
            assert!(!out.env().contains_key("MAYBE"));
        }
        other => panic!("unexpected answer for the missing key ({other:?}): {answer:?}"),
    }
}

#[test]
fn push_then_pull_exec_and_the_python_client_reads_it() {
    let moto = Moto::start();
    let (key_id, key_arn) = setup(&moto);
    let document = b"NAME=ruan\nSURNAME=bekker\nJOB_TITLE=\"devops engineer\"\n";

    // From stdin, with the alias.
    let out = push(&moto, "s3://cfg-bucket/app/prod.env", ALIAS, document);
    assert!(
        out.stdout
            .contains("pushed s3://cfg-bucket/app/prod.env (3 keys"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("ruan"), "{}", out.stdout);
    // From a file, with the key id.
    let dir = temp_dir("push");
    let file = dir.join("doc.json");
    std::fs::write(&file, br#"{"token": "tok_file"}"#).unwrap();
    run(moto.envseal().args([
        "push",
        "s3://cfg-bucket/app/file.json",
        "--kms-key",
        &key_id,
        file.to_str().unwrap(),
    ]))
    .expect_code(0);

    // What push wrote: the V2 kms+context envelope and SSE-KMS with the key.
    let head = moto.call(
        "s3",
        "head_object",
        json!({"Bucket": BUCKET, "Key": "app/prod.env"}),
    );
    let md = &head["Metadata"];
    assert_eq!(md["x-amz-wrap-alg"], "kms+context");
    assert_eq!(md["x-amz-cek-alg"], "AES/GCM/NoPadding");
    assert_eq!(md["x-amz-tag-len"], "128");
    let matdesc: Value = serde_json::from_str(md["x-amz-matdesc"].as_str().unwrap()).unwrap();
    assert_eq!(matdesc, json!({"aws:x-amz-cek-alg": "AES/GCM/NoPadding"}));
    assert_eq!(head["ServerSideEncryption"], "aws:kms");
    assert_eq!(head["SSEKMSKeyId"], key_arn.as_str());
    let (raw, _) = get_raw(&moto, "app/prod.env");
    assert_eq!(raw.len(), document.len() + 16);
    assert!(!raw.windows(4).any(|w| w == b"ruan"));

    // pull prints exactly the document; #NAME prints one value.
    let out = pull(&moto, "s3://cfg-bucket/app/prod.env");
    out.expect_code(0);
    assert_eq!(out.stdout.as_bytes(), document);
    let out = pull(&moto, "s3://cfg-bucket/app/prod.env#JOB_TITLE");
    out.expect_code(0);
    assert_eq!(out.stdout, "devops engineer\n");
    let out = pull(&moto, "s3://cfg-bucket/app/file.json");
    out.expect_code(0);
    assert_eq!(out.stdout, r#"{"token": "tok_file"}"#);

    // exec --from after push.
    let out = run(moto.envseal().args([
        "exec",
        "--from",
        "s3://cfg-bucket/app/prod.env",
        "--",
        "sh",
        "-c",
        GREETING_APP,
    ]));
    out.expect_code(0);
    assert_eq!(
        out.stdout,
        "Hello, my name is ruan bekker, and I am a devops engineer\n"
    );

    // AWS's Python S3 Encryption Client reads what push wrote.
    let r = s3ec(
        &moto,
        json!([
            {"op": "get", "bucket": BUCKET, "key": "app/prod.env", "kms_key_id": ALIAS},
            {"op": "get", "bucket": BUCKET, "key": "app/file.json", "kms_key_id": key_id},
        ]),
    );
    assert_eq!(bytes_of(&json!({"$b64": r[0]["body_b64"]})), document);
    assert_eq!(
        bytes_of(&json!({"$b64": r[1]["body_b64"]})),
        br#"{"token": "tok_file"}"#
    );

    // pull reads Python-written objects too (one decode path).
    s3ec_put(&moto, "py/v3.env", "v3", b"X=from-python\n", json!({}));
    let out = pull(&moto, "s3://cfg-bucket/py/v3.env");
    out.expect_code(0);
    assert_eq!(out.stdout, "X=from-python\n");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn push_refuses_what_it_cannot_write() {
    let moto = Moto::start();
    setup(&moto);
    // A document that does not parse: nothing is uploaded, the line is not shown.
    let out = run_with_stdin(
        moto.envseal()
            .args(["push", "s3://cfg-bucket/bad.env", "--kms-key", ALIAS]),
        b"A=1\nsecret-words-here\n",
    );
    out.expect_code(EXIT_RESOLUTION);
    assert!(out.stderr.contains("line 2"), "{}", out.stderr);
    assert!(!out.stderr.contains("secret-words-here"), "{}", out.stderr);
    let r = moto.try_call(
        "s3",
        "head_object",
        json!({"Bucket": BUCKET, "Key": "bad.env"}),
    );
    assert!(r.is_err(), "the object was uploaded: {r:?}");
    // An unknown key.
    let out = run_with_stdin(
        moto.envseal()
            .args(["push", "s3://cfg-bucket/x.env", "--kms-key", "alias/nope"]),
        b"A=1\n",
    );
    out.expect_code(EXIT_RESOLUTION);
    assert!(out.stderr.contains("GenerateDataKey"), "{}", out.stderr);
    // Not an object URL.
    let out = run_with_stdin(
        moto.envseal()
            .args(["push", "s3://cfg-bucket/x.env#A", "--kms-key", ALIAS]),
        b"A=1\n",
    );
    out.expect_code(EXIT_RESOLUTION);
}
