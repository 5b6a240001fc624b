//! The S3 and KMS backends against a real moto: `base64(kms.encrypt)`
//! objects with SSE-KMS, raw KMS blobs, `#NAME` lookups in JSON and dotenv
//! documents, objects written by AWS's Python S3 Encryption Client (V2, V3,
//! instruction files), inline `kms:` references, tampering and wrong
//! contexts (fail closed), missing objects with and without `?optional`,
//! IAM, streamed size limits and one GetObject per object. `push`/`pull`
//! are in `operator.rs`; "no file created while resolving" in `leaks.rs`.

mod support;

use std::collections::BTreeMap;
use std::process::Command;

use serde_json::{json, Value};
use support::s3::{
    get_raw, kms_encrypt, pull, push, put_object, s3ec, s3ec_put, setup, ALIAS, BUCKET,
    GREETING_APP,
};
use support::{bytes_of, run, with_vars, Moto, Proxy, Run};

/// Exit code of a resolution failure (src/error.rs).
const EXIT_RESOLUTION: i32 = 111;

/// `envseal export --format json` with these variables and `--from`s.
fn export_json(
    moto: &Moto,
    vars: &[(&str, &str)],
    from: &[&str],
) -> (Run, BTreeMap<String, String>) {
    let mut cmd = with_vars(moto.envseal(), vars);
    cmd.args(["export", "--format", "json"]);
    for f in from {
        cmd.args(["--from", f]);
    }
    let out = run(&mut cmd);
    let map = if out.code == Some(0) {
        serde_json::from_str(&out.stdout).expect("export --format json prints an object")
    } else {
        BTreeMap::new()
    };
    (out, map)
}

/// `envseal exec -- sh -c 'echo started'`: stdout says whether the app ran.
fn exec_marker(cmd: Command, vars: &[(&str, &str)], from: &[&str]) -> Run {
    let mut cmd = with_vars(cmd, vars);
    cmd.arg("exec");
    for f in from {
        cmd.args(["--from", f]);
    }
    run(cmd.args(["--", "sh", "-c", "echo started"]))
}

/// Asserts a fail-closed run: exit 111, app not started, a stderr line for
/// `reference` with `kind`, and none of `secrets` anywhere in the output.
fn assert_failed(out: &Run, reference: &str, kind: &str, secrets: &[&str]) {
    out.expect_code(EXIT_RESOLUTION);
    assert!(!out.stdout.contains("started"), "the app ran: {out:?}");
    let line = out
        .stderr
        .lines()
        .find(|l| l.contains(reference))
        .unwrap_or_else(|| panic!("no stderr line for {reference}:\n{}", out.stderr));
    assert!(
        line.ends_with(&format!("({kind})")),
        "expected {kind} for {reference}: {line}"
    );
    for s in secrets {
        assert!(
            !out.stderr.contains(s),
            "stderr shows a secret: {}",
            out.stderr
        );
        assert!(
            !out.stdout.contains(s),
            "stdout shows a secret: {}",
            out.stdout
        );
    }
}

const GREETING_JSON: &str =
    r#"{"name": "ruan", "surname": "bekker", "job_title": "devops engineer"}"#;
#[test]
fn base64_kms_encrypt_object_with_sse_kms_is_a_bundle() {
    let moto = Moto::start();
    let (key_id, _) = setup(&moto);
    let blob = kms_encrypt(&moto, &key_id, GREETING_JSON.as_bytes());
    let sse = json!({"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": key_id});
    // As the blog writes it (one line), and as base64.encodebytes writes it
    // (76-character lines, trailing newline).
    let one_line = support::b64(&blob);
    let wrapped: String = one_line
        .as_bytes()
        .chunks(76)
        .map(|c| format!("{}\n", std::str::from_utf8(c).unwrap()))
        .collect();
    put_object(&moto, "app/prod.json.b64", one_line.as_bytes(), sse.clone());
    put_object(&moto, "app/wrapped.json.b64", wrapped.as_bytes(), sse);

    for object in ["app/prod.json.b64", "app/wrapped.json.b64"] {
        let out = run(moto.envseal().args([
            "exec",
            "--from",
            &format!("s3://{BUCKET}/{object}"),
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
    }
    // The per-variable form, and ?encryption=none (the stored base64 text).
    let (out, env) = export_json(
        &moto,
        &[
            ("WHO", "s3://cfg-bucket/app/prod.json.b64#name"),
            ("RAW", "s3://cfg-bucket/app/prod.json.b64?encryption=none"),
        ],
        &[],
    );
    out.expect_code(0);
    assert_eq!(env["WHO"], "ruan");
    assert_eq!(env["RAW"], one_line);
}

#[test]
fn raw_kms_blob_object_and_forced_kms() {
    let moto = Moto::start();
    let (key_id, _) = setup(&moto);
    let blob = kms_encrypt(&moto, &key_id, b"DB_PASSWORD=hunter2\nAPI_TOKEN=tok_42\n");
    put_object(&moto, "raw.bin", &blob, json!({}));
    put_object(&moto, "plain.env", b"A=1\n", json!({}));
    let (out, env) = export_json(
        &moto,
        &[
            ("PW", "s3://cfg-bucket/raw.bin#DB_PASSWORD"),
            ("FORCED", "s3://cfg-bucket/raw.bin?encryption=kms#API_TOKEN"),
        ],
        &["s3://cfg-bucket/raw.bin"],
    );
    out.expect_code(0);
    assert_eq!(env["PW"], "hunter2");
    assert_eq!(env["FORCED"], "tok_42");
    assert_eq!(env["DB_PASSWORD"], "hunter2");
    assert_eq!(env["API_TOKEN"], "tok_42");

    // Forcing KMS on a plaintext object is a decryption failure, not plaintext.
    let out = exec_marker(
        moto.envseal(),
        &[("X", "s3://cfg-bucket/plain.env?encryption=kms")],
        &[],
    );
    assert_failed(&out, "s3://cfg-bucket/plain.env", "decrypt-failed", &[]);
}

#[test]
fn name_lookups_in_json_and_dotenv_documents() {
    let moto = Moto::start();
    let (key_id, _) = setup(&moto);
    put_object(
        &moto,
        "doc.json",
        br#"{"db_password": "pw-json", "port": 5432, "debug": false}"#,
        json!({}),
    );
    put_object(
        &moto,
        "doc.env",
        b"# comment\nexport DB_PASSWORD=pw-env\nport=6543\n",
        json!({}),
    );
    let blob = kms_encrypt(&moto, &key_id, br#"{"db_password": "pw-kms"}"#);
    put_object(&moto, "doc.kms", support::b64(&blob).as_bytes(), json!({}));
    let (out, env) = export_json(
        &moto,
        &[
            ("A", "s3://cfg-bucket/doc.json#db_password"),
            ("B", "s3://cfg-bucket/doc.json#port"),
            ("C", "s3://cfg-bucket/doc.json#debug"),
            ("D", "s3://cfg-bucket/doc.env#DB_PASSWORD"),
            ("E", "s3://cfg-bucket/doc.env#port"),
            ("F", "s3://cfg-bucket/doc.kms#db_password"),
            ("WHOLE", "s3://cfg-bucket/doc.env"),
        ],
        &[],
    );
    out.expect_code(0);
    assert_eq!(env["A"], "pw-json");
    assert_eq!(env["B"], "5432");
    assert_eq!(env["C"], "false");
    assert_eq!(env["D"], "pw-env");
    assert_eq!(env["E"], "6543");
    assert_eq!(env["F"], "pw-kms");
    assert_eq!(
        env["WHOLE"],
        "# comment\nexport DB_PASSWORD=pw-env\nport=6543\n"
    );
    // A key the document does not have is an error naming the key.
    let out = exec_marker(
        moto.envseal(),
        &[("X", "s3://cfg-bucket/doc.env#NOPE")],
        &[],
    );
    out.expect_code(EXIT_RESOLUTION);
    assert!(out.stderr.contains("NOPE"), "{}", out.stderr);
    assert!(!out.stderr.contains("pw-env"), "{}", out.stderr);
}

#[test]
fn dotenv_bundle_with_quotes_and_multiline_values() {
    let moto = Moto::start();
    setup(&moto);
    let document = concat!(
        "# app settings\n",
        "\n",
        "export GREETING=\"hello \\\"world\\\"\"\n",
        "LITERAL='no $expansion \\n here'\n",
        "PEM=\"-----BEGIN KEY-----\n",
        "line two\n",
        "-----END KEY-----\"\n",
        "ESCAPED=\"a\\nb\\\\c\"\n",
        "job.title=boss # trailing comment\n",
        "EMPTY=\n",
    );
    // Plaintext, and the same document pushed (encrypted).
    put_object(&moto, "plain.env", document.as_bytes(), json!({}));
    push(
        &moto,
        "s3://cfg-bucket/sealed.env",
        ALIAS,
        document.as_bytes(),
    );
    for object in ["plain.env", "sealed.env"] {
        let (out, env) = export_json(&moto, &[], &[&format!("s3://{BUCKET}/{object}")]);
        out.expect_code(0);
        assert_eq!(env["GREETING"], "hello \"world\"");
        assert_eq!(env["LITERAL"], "no $expansion \\n here");
        assert_eq!(
            env["PEM"],
            "-----BEGIN KEY-----\nline two\n-----END KEY-----"
        );
        assert_eq!(env["ESCAPED"], "a\nb\\c");
        assert_eq!(env["JOB_TITLE"], "boss");
        assert_eq!(env["EMPTY"], "");
    }
    // A malformed line: its number, never its content.
    put_object(&moto, "bad.env", b"A=1\nthis-is-secret-text\n", json!({}));
    let out = exec_marker(moto.envseal(), &[], &["s3://cfg-bucket/bad.env"]);
    assert_failed(
        &out,
        "s3://cfg-bucket/bad.env",
        "invalid-value",
        &["this-is-secret-text"],
    );
    assert!(out.stderr.contains("line 2"), "{}", out.stderr);
}

#[test]
fn python_s3_encryption_client_objects_read() {
    let moto = Moto::start();
    setup(&moto);
    let doc = b"{\"db_password\": \"hunter2\", \"api_token\": \"tok_py\"}";
    let v2 = s3ec_put(&moto, "py/v2.json", "v2", doc, json!({}));
    assert_eq!(v2["metadata"]["x-amz-wrap-alg"], "kms+context");
    let v3 = s3ec_put(&moto, "py/v3.json", "v3", doc, json!({}));
    assert_eq!(v3["metadata"]["x-amz-c"], "115");
    s3ec_put(
        &moto,
        "py/v2-ec.json",
        "v2",
        doc,
        json!({"encryption_context": {"app": "billing"}}),
    );
    s3ec_put(
        &moto,
        "py/v3-ec.json",
        "v3",
        doc,
        json!({"encryption_context": {"app": "billing", "env": "prod"}}),
    );
    // Instruction files: V3 keeps x-amz-c/d/i on the object (a hint); V2
    // moves everything, as Go writes it (found because the body is binary).
    let v3i = s3ec_put(
        &moto,
        "py/v3-instr.json",
        "v3",
        doc,
        json!({"layout": "instruction"}),
    );
    assert!(v3i["metadata"]["object"].get("x-amz-3").is_none());
    s3ec_put(
        &moto,
        "py/v2-instr.json",
        "v2",
        doc,
        json!({"layout": "instruction"}),
    );

    let refs = [
        ("A", "s3://cfg-bucket/py/v2.json#db_password"),
        ("B", "s3://cfg-bucket/py/v3.json#db_password"),
        ("C", "s3://cfg-bucket/py/v2-ec.json#db_password"),
        ("D", "s3://cfg-bucket/py/v3-ec.json#db_password"),
        ("E", "s3://cfg-bucket/py/v3-instr.json#db_password"),
        (
            "F",
            "s3://cfg-bucket/py/v2-instr.json?encryption=envelope#db_password",
        ),
        ("H", "s3://cfg-bucket/py/v2-instr.json#db_password"),
        (
            "G",
            "s3://cfg-bucket/py/v3.json?encryption=envelope#api_token",
        ),
    ];
    let (out, env) = export_json(&moto, &refs, &["s3://cfg-bucket/py/v3-ec.json"]);
    out.expect_code(0);
    for (name, _) in &refs[..7] {
        assert_eq!(env[*name], "hunter2", "{name}");
    }
    assert_eq!(env["G"], "tok_py");
    assert_eq!(env["DB_PASSWORD"], "hunter2");
    assert_eq!(env["API_TOKEN"], "tok_py");

    // The V2 object without its instruction file: binary ciphertext and no
    // envelope anywhere is not taken for a document.
    moto.call(
        "s3",
        "delete_object",
        json!({"Bucket": BUCKET, "Key": "py/v2-instr.json.instruction"}),
    );
    let out = exec_marker(
        moto.envseal(),
        &[("X", "s3://cfg-bucket/py/v2-instr.json")],
        &[],
    );
    assert_failed(
        &out,
        "s3://cfg-bucket/py/v2-instr.json",
        "invalid-value",
        &["hunter2"],
    );
    // The V3 object without its instruction file: clearly an error, and not
    // "not found" (which ?optional would forgive).
    moto.call(
        "s3",
        "delete_object",
        json!({"Bucket": BUCKET, "Key": "py/v3-instr.json.instruction"}),
    );
    let out = exec_marker(
        moto.envseal(),
        &[("X", "s3://cfg-bucket/py/v3-instr.json?optional")],
        &[],
    );
    assert_failed(
        &out,
        "s3://cfg-bucket/py/v3-instr.json",
        "invalid-value",
        &[],
    );
    assert!(out.stderr.contains("KEY.instruction"), "{}", out.stderr);
}

#[test]
fn inline_kms_references() {
    let moto = Moto::start();
    let (key_id, _) = setup(&moto);
    let one = support::b64(&kms_encrypt(&moto, &key_id, b"hunter2"));
    let two = support::b64(&kms_encrypt(&moto, ALIAS, b"tok_inline"));
    let (out, env) = export_json(
        &moto,
        &[
            ("DB_PASSWORD", &format!("kms:{one}")),
            ("API_TOKEN", &format!("kms:{two}")),
            ("SAME", &format!("kms:{one}")),
        ],
        &[],
    );
    out.expect_code(0);
    assert_eq!(env["DB_PASSWORD"], "hunter2");
    assert_eq!(env["API_TOKEN"], "tok_inline");
    assert_eq!(env["SAME"], "hunter2");

    // A damaged blob: decryption failure, fail closed, not optional.
    let mut bad = kms_encrypt(&moto, &key_id, b"hunter2");
    let last = bad.len() - 1;
    bad[last] ^= 0x01;
    let out = exec_marker(
        moto.envseal(),
        &[("BAD", &format!("kms:{}?optional", support::b64(&bad)))],
        &[],
    );
    assert_failed(&out, "BAD", "decrypt-failed", &["hunter2"]);
}

#[test]
fn tampered_objects_fail_closed() {
    let moto = Moto::start();
    let (key_id, _) = setup(&moto);
    let secret_doc = b"DB_PASSWORD=hunter2\n";
    push(&moto, "s3://cfg-bucket/pushed.env", ALIAS, secret_doc);
    s3ec_put(&moto, "py-v3.env", "v3", secret_doc, json!({}));
    s3ec_put(&moto, "py-v2.env", "v2", secret_doc, json!({}));
    let blob = kms_encrypt(&moto, &key_id, secret_doc);
    put_object(&moto, "blog.b64", support::b64(&blob).as_bytes(), json!({}));

    // Flip one body byte (same metadata), or drop the last one.
    let tamper = |key: &str, new_key: &str, change: &dyn Fn(&mut Vec<u8>)| {
        let (mut body, metadata) = get_raw(&moto, key);
        change(&mut body);
        put_object(&moto, new_key, &body, json!({"Metadata": metadata}));
    };
    tamper("pushed.env", "t/pushed-flip.env", &|b| b[3] ^= 0x40);
    tamper("pushed.env", "t/pushed-cut.env", &|b| {
        b.pop();
    });
    tamper("py-v3.env", "t/py-v3-flip.env", &|b| b[0] ^= 0x01);
    tamper("py-v2.env", "t/py-v2-tag.env", &|b| {
        let n = b.len();
        b[n - 1] ^= 0x80
    });
    // base64 text: change one character in the middle of the blob.
    tamper("blog.b64", "t/blog-flip.b64", &|b| {
        let i = b.len() / 2;
        b[i] = if b[i] == b'A' { b'B' } else { b'A' };
    });
    for key in [
        "t/pushed-flip.env",
        "t/pushed-cut.env",
        "t/py-v3-flip.env",
        "t/py-v2-tag.env",
        "t/blog-flip.b64",
    ] {
        let reference = format!("s3://{BUCKET}/{key}");
        let out = exec_marker(moto.envseal(), &[], &[&reference]);
        assert_failed(&out, &reference, "decrypt-failed", &["hunter2"]);
        let out = pull(&moto, &reference);
        out.expect_code(EXIT_RESOLUTION);
        assert!(
            out.stdout.is_empty(),
            "pull printed something: {}",
            out.stdout
        );
        assert!(out.stderr.contains("decrypt-failed"), "{}", out.stderr);
    }
    // The untouched originals still read.
    let (out, env) = export_json(&moto, &[], &["s3://cfg-bucket/pushed.env"]);
    out.expect_code(0);
    assert_eq!(env["DB_PASSWORD"], "hunter2");
}

#[test]
fn wrong_encryption_context_fails_closed() {
    let moto = Moto::start();
    setup(&moto);
    let doc = b"DB_PASSWORD=hunter2\n";
    push(&moto, "s3://cfg-bucket/pushed.env", ALIAS, doc);
    s3ec_put(
        &moto,
        "py-v3.env",
        "v3",
        doc,
        json!({"encryption_context": {"app": "billing"}}),
    );
    s3ec_put(
        &moto,
        "py-v2.env",
        "v2",
        doc,
        json!({"encryption_context": {"app": "billing"}}),
    );
    let rewrite = |key: &str, new_key: &str, field: &str, value: &str| {
        let (body, mut metadata) = get_raw(&moto, key);
        metadata[field] = json!(value);
        put_object(&moto, new_key, &body, json!({"Metadata": metadata}));
    };
    // A context KMS did not see at GenerateDataKey: KMS refuses the data key.
    rewrite(
        "pushed.env",
        "t/pushed-extra.env",
        "x-amz-matdesc",
        r#"{"aws:x-amz-cek-alg":"AES/GCM/NoPadding","tenant":"other"}"#,
    );
    rewrite(
        "py-v3.env",
        "t/py-v3-app.env",
        "x-amz-t",
        r#"{"app":"payroll","aws:x-amz-cek-alg":"115"}"#,
    );
    rewrite(
        "py-v2.env",
        "t/py-v2-app.env",
        "x-amz-matdesc",
        r#"{"app":"payroll","aws:x-amz-cek-alg":"AES/GCM/NoPadding"}"#,
    );
    // kms+context binds the content algorithm: a downgrade to CBC is refused
    // before KMS is asked.
    rewrite(
        "pushed.env",
        "t/pushed-cbc.env",
        "x-amz-cek-alg",
        "AES/CBC/PKCS5Padding",
    );
    for key in [
        "t/pushed-extra.env",
        "t/py-v3-app.env",
        "t/py-v2-app.env",
        "t/pushed-cbc.env",
    ] {
        let reference = format!("s3://{BUCKET}/{key}");
        let out = exec_marker(moto.envseal(), &[], &[&reference]);
        assert_failed(&out, &reference, "decrypt-failed", &["hunter2"]);
    }
}

#[test]
fn missing_objects_with_and_without_optional() {
    let moto = Moto::start();
    setup(&moto);
    put_object(&moto, "here.env", b"HERE=yes\n", json!({}));
    // Required: fail closed, one line per reference.
    let out = exec_marker(
        moto.envseal(),
        &[
            ("A", "s3://cfg-bucket/missing.env"),
            ("B", "s3://no-such-bucket/x.env"),
        ],
        &["s3://cfg-bucket/missing-bundle.env"],
    );
    out.expect_code(EXIT_RESOLUTION);
    assert!(!out.stdout.contains("started"));
    for reference in [
        "s3://cfg-bucket/missing.env",
        "s3://no-such-bucket/x.env",
        "s3://cfg-bucket/missing-bundle.env",
    ] {
        let line = out
            .stderr
            .lines()
            .find(|l| l.contains(reference))
            .unwrap_or_else(|| panic!("no line for {reference}:\n{}", out.stderr));
        assert!(line.ends_with("(not-found)"), "{line}");
    }
    // ?optional: left out, the app starts.
    let mut cmd = with_vars(
        moto.envseal(),
        &[
            ("A", "s3://cfg-bucket/missing.env?optional"),
            ("B", "s3://no-such-bucket/x.env?optional"),
            ("C", "s3://cfg-bucket/missing.env?encryption=kms&optional"),
        ],
    );
    let out = run(cmd.args([
        "exec",
        "--from",
        "s3://cfg-bucket/missing-bundle.env?optional",
        "--from",
        "s3://cfg-bucket/here.env",
        "--",
        "/usr/bin/env",
    ]));
    out.expect_code(0);
    let env = out.env();
    assert_eq!(env.get("HERE").map(String::as_str), Some("yes"));
    for name in ["A", "B", "C"] {
        assert!(!env.contains_key(name), "{name} should be left out");
    }
    assert!(out.stderr.contains("optional"), "{}", out.stderr);
}

#[test]
fn encryption_sdk_messages_are_refused_clearly() {
    let moto = Moto::start();
    setup(&moto);
    // Header v2, suite 0x0578 (aws-encryption-cli's default), then junk.
    let mut message = vec![0x02, 0x05, 0x78];
    message.extend((0..200u32).map(|i| (i * 7 % 251) as u8));
    put_object(&moto, "esdk.bin", &message, json!({}));
    put_object(
        &moto,
        "esdk.b64",
        support::b64(&message).as_bytes(),
        json!({}),
    );
    for key in ["esdk.bin", "esdk.b64"] {
        let reference = format!("s3://{BUCKET}/{key}");
        let out = exec_marker(moto.envseal(), &[], &[&reference]);
        assert_failed(&out, &reference, "unsupported", &[]);
        assert!(out.stderr.contains("Encryption SDK"), "{}", out.stderr);
    }
}

#[test]
fn iam_needs_s3_get_object_and_kms_decrypt() {
    let moto = Moto::start();
    let (key_id, _) = setup(&moto);
    push(&moto, "s3://cfg-bucket/app/prod.env", ALIAS, b"A=from-s3\n");
    let inline = support::b64(&kms_encrypt(&moto, &key_id, b"from-kms"));
    let reader = moto.create_user_with_policy(
        "reader",
        json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "s3:GetObject",
             "Resource": format!("arn:aws:s3:::{BUCKET}/app/*")},
            {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*"},
        ]}),
    );
    let no_kms = moto.create_user_with_policy(
        "no-kms",
        json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "s3:GetObject",
             "Resource": format!("arn:aws:s3:::{BUCKET}/app/*")},
        ]}),
    );
    let no_s3 = moto.create_user_with_policy(
        "no-s3",
        json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*"},
        ]}),
    );
    moto.enforce_iam();
    let vars = [("K", format!("kms:{inline}"))];
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let from = ["s3://cfg-bucket/app/prod.env"];

    let mut cmd = with_vars(moto.envseal_as(&reader), &vars);
    let out = run(cmd.args(["exec", "--from", from[0], "--", "/usr/bin/env"]));
    out.expect_code(0);
    assert_eq!(out.env()["A"], "from-s3");
    assert_eq!(out.env()["K"], "from-kms");

    let out = exec_marker(moto.envseal_as(&no_kms), &vars, &from);
    assert_failed(&out, from[0], "access-denied", &["from-s3"]);
    assert_failed(&out, "K: kms:", "access-denied", &["from-kms"]);

    let out = exec_marker(moto.envseal_as(&no_s3), &[], &from);
    assert_failed(&out, from[0], "access-denied", &[]);
}

/// Requests the proxy forwarded to this target (`GET /bucket/key` for S3,
/// the `X-Amz-Target` for JSON services).
fn requests_to(stats: &Value, target: &str) -> u64 {
    stats["requests"][target].as_u64().unwrap_or(0)
}

/// Every S3 request target the proxy saw for a `KEY.instruction` object.
fn instruction_requests(stats: &Value) -> Vec<String> {
    stats["requests"]
        .as_object()
        .map(|m| {
            m.keys()
                .filter(|t| t.ends_with(".instruction"))
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

/// PRODUCT §5: objects whose envelope is in `KEY.instruction` and whose own
/// metadata says nothing (Go, Java, and the Python client's V2 envelope laid
/// out that way) read without `?encryption=envelope`. The extra GET is paid
/// only for binary bodies.
#[test]
fn instruction_file_objects_without_a_metadata_hint_read() {
    let moto = Moto::start();
    setup(&moto);
    let doc = b"DB_PASSWORD=hunter2\nAPI_TOKEN=tok_instr\n";
    // The Python client's V2 ciphertext and envelope; the envelope moved to
    // KEY.instruction and nothing left on the object (s3ec.py explains why:
    // the 4.x client reads instruction files but does not write them).
    let put = s3ec_put(
        &moto,
        "app/go-style.env",
        "v2",
        doc,
        json!({"layout": "instruction"}),
    );
    assert_eq!(put["metadata"]["object"], json!({}), "{put}");
    let (body, metadata) = get_raw(&moto, "app/go-style.env");
    assert_eq!(metadata, json!({}));
    assert!(std::str::from_utf8(&body).is_err(), "ciphertext is binary");
    // The real client reads that layout (its reader looks for the file).
    let r = s3ec(
        &moto,
        json!([{"op": "get", "bucket": BUCKET, "key": "app/go-style.env", "kms_key_id": ALIAS}]),
    );
    assert_eq!(bytes_of(&json!({"$b64": r[0]["body_b64"]})), doc, "{r:?}");
    put_object(&moto, "app/plain.env", b"PLAIN=text\n", json!({}));
    // Binary, no envelope anywhere, no KEY.instruction.
    put_object(
        &moto,
        "app/garbage.bin",
        b"\xff\xfe\x00garbage\x80",
        json!({}),
    );

    let proxy = Proxy::start(&moto.endpoint);
    let mut cmd = with_vars(
        proxy.envseal(&moto),
        &[
            ("PW", "s3://cfg-bucket/app/go-style.env#DB_PASSWORD"),
            ("P", "s3://cfg-bucket/app/plain.env#PLAIN"),
        ],
    );
    let out = run(cmd.args([
        "export",
        "--format",
        "json",
        "--from",
        "s3://cfg-bucket/app/go-style.env",
    ]));
    out.expect_code(0);
    let env: BTreeMap<String, String> = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(env["PW"], "hunter2");
    assert_eq!(env["DB_PASSWORD"], "hunter2");
    assert_eq!(env["API_TOKEN"], "tok_instr");
    assert_eq!(env["P"], "text");
    let stats = proxy.stats();
    assert_eq!(
        requests_to(&stats, "GET /cfg-bucket/app/go-style.env.instruction"),
        1,
        "{stats}"
    );
    // A text body is taken as plaintext without a second request.
    assert_eq!(
        instruction_requests(&stats),
        vec!["GET /cfg-bucket/app/go-style.env.instruction".to_owned()],
        "{stats}"
    );

    // pull shares the decoding.
    let out = pull(&moto, "s3://cfg-bucket/app/go-style.env");
    out.expect_code(0);
    assert_eq!(out.stdout.as_bytes(), doc);

    // Binary garbage with no KEY.instruction is still refused as a document,
    // and not as "not found" (which ?optional would forgive).
    let out = exec_marker(
        moto.envseal(),
        &[("X", "s3://cfg-bucket/app/garbage.bin?optional")],
        &[],
    );
    assert_failed(
        &out,
        "s3://cfg-bucket/app/garbage.bin",
        "invalid-value",
        &[],
    );
    let out = exec_marker(moto.envseal(), &[], &["s3://cfg-bucket/app/garbage.bin"]);
    assert_failed(
        &out,
        "s3://cfg-bucket/app/garbage.bin",
        "invalid-value",
        &[],
    );
    // A damaged ciphertext next to its instruction file fails decryption.
    let (mut body, _) = get_raw(&moto, "app/go-style.env");
    body[0] ^= 0x01;
    put_object(&moto, "app/go-flip.env", &body, json!({}));
    let (instruction, _) = get_raw(&moto, "app/go-style.env.instruction");
    put_object(
        &moto,
        "app/go-flip.env.instruction",
        &instruction,
        json!({}),
    );
    let out = exec_marker(moto.envseal(), &[], &["s3://cfg-bucket/app/go-flip.env"]);
    assert_failed(
        &out,
        "s3://cfg-bucket/app/go-flip.env",
        "decrypt-failed",
        &["hunter2"],
    );
}

/// AES/CBC envelopes (the Ruby V1 client's) read, with a warning that names
/// the object, never a value; GCM objects get no such warning.
#[test]
fn cbc_envelopes_read_with_a_tamper_warning() {
    let moto = Moto::start();
    setup(&moto);
    let doc = b"CBC_SECRET=cbc-value-7\n";
    let r = s3ec(
        &moto,
        json!([
            {"op": "put-legacy-cbc", "bucket": BUCKET, "key": "legacy/ruby-v1.env",
             "kms_key_id": ALIAS, "body_b64": support::b64(doc)},
            {"op": "get", "bucket": BUCKET, "key": "legacy/ruby-v1.env",
             "kms_key_id": ALIAS, "legacy": true},
        ]),
    );
    assert_eq!(r[0]["metadata"]["x-amz-cek-alg"], "AES/CBC/PKCS5Padding");
    assert_eq!(r[0]["metadata"]["x-amz-wrap-alg"], "kms");
    // AWS's Python client, legacy modes on, reads what was written.
    assert_eq!(bytes_of(&json!({"$b64": r[1]["body_b64"]})), doc, "{r:?}");
    push(
        &moto,
        "s3://cfg-bucket/pushed.env",
        ALIAS,
        b"GCM_SECRET=gcm-value-8\n",
    );

    let (out, env) = export_json(
        &moto,
        &[],
        &[
            "s3://cfg-bucket/legacy/ruby-v1.env",
            "s3://cfg-bucket/pushed.env",
        ],
    );
    out.expect_code(0);
    assert_eq!(env["CBC_SECRET"], "cbc-value-7");
    assert_eq!(env["GCM_SECRET"], "gcm-value-8");
    let warnings: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("not tamper-evident"))
        .collect();
    assert_eq!(warnings.len(), 1, "{}", out.stderr);
    assert!(warnings[0].contains("WARN"), "{}", warnings[0]);
    assert!(warnings[0].contains("AES/CBC"), "{}", warnings[0]);
    assert!(
        warnings[0].contains("s3://cfg-bucket/legacy/ruby-v1.env"),
        "{}",
        warnings[0]
    );
    assert!(!out.stderr.contains("pushed.env"), "{}", out.stderr);
    for value in ["cbc-value-7", "gcm-value-8"] {
        assert!(!out.stderr.contains(value), "{}", out.stderr);
    }
    // Also with pull, which prints the value on stdout only.
    let out = pull(&moto, "s3://cfg-bucket/legacy/ruby-v1.env");
    out.expect_code(0);
    assert_eq!(out.stdout.as_bytes(), doc);
    assert!(out.stderr.contains("not tamper-evident"), "{}", out.stderr);
    assert!(!out.stderr.contains("cbc-value-7"), "{}", out.stderr);
}

/// A one-connection HTTP server standing in for S3: whatever it is asked, it
/// answers 200 with a chunked body (no Content-Length) of up to `total`
/// bytes, then hangs up without the final chunk. It reports the request line
/// and how many body bytes it managed to write before the reader went away.
fn endless_s3(total: usize) -> (String, std::sync::mpsc::Receiver<(String, usize)>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let Ok((mut sock, _)) = listener.accept() else {
            return;
        };
        let _ = sock.set_read_timeout(Some(std::time::Duration::from_secs(30)));
        let _ = sock.set_write_timeout(Some(std::time::Duration::from_secs(30)));
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            match sock.read(&mut byte) {
                Ok(1) => head.push(byte[0]),
                _ => break,
            }
        }
        let request_line = String::from_utf8_lossy(&head)
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned();
        let chunk = vec![b'A'; 64 * 1024];
        let framed = [
            format!("{:x}\r\n", chunk.len()).as_bytes(),
            &chunk[..],
            b"\r\n",
        ]
        .concat();
        let mut written = 0;
        if sock
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: binary/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
            .is_ok()
        {
            while written < total && sock.write_all(&framed).is_ok() {
                written += chunk.len();
            }
        }
        let _ = tx.send((request_line, written));
    });
    (endpoint, rx)
}

/// The 8 MiB cap holds while the body streams in: a body sent without
/// Content-Length is refused once past the cap, without reading the rest.
#[test]
fn oversized_body_is_refused_while_it_streams() {
    const TOTAL: usize = 64 * 1024 * 1024;
    let (endpoint, done) = endless_s3(TOTAL);
    let mut cmd = support::envseal_bare();
    cmd.env("AWS_ENDPOINT_URL", &endpoint)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_MAX_ATTEMPTS", "1");
    let out = exec_marker(cmd, &[("BIG", "s3://big-bucket/endless.env")], &[]);
    assert_failed(&out, "s3://big-bucket/endless.env", "invalid-value", &[]);
    assert!(out.stderr.contains("8 MiB"), "{}", out.stderr);
    let (request, written) = done
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("the fake S3 was asked");
    assert!(
        request.starts_with("GET /big-bucket/endless.env"),
        "{request}"
    );
    // envseal hung up soon after the cap; it did not take the whole body.
    assert!(
        written < TOTAL,
        "all {written} bytes were read: the body was buffered whole"
    );
}

/// One distinct object, one GetObject (and one KMS Decrypt), however many
/// times and ways it is referenced (PRODUCT §7).
#[test]
fn one_get_object_per_distinct_object() {
    let moto = Moto::start();
    setup(&moto);
    push(
        &moto,
        "s3://cfg-bucket/app/shared.env",
        ALIAS,
        b"A=alpha\nB=beta\n",
    );
    put_object(&moto, "app/other.json", br#"{"C": "gamma"}"#, json!({}));
    let proxy = Proxy::start(&moto.endpoint);
    let mut cmd = with_vars(
        proxy.envseal(&moto),
        &[
            ("X", "s3://cfg-bucket/app/shared.env#A"),
            ("Y", "s3://cfg-bucket/app/shared.env#B"),
            ("W", "s3://cfg-bucket/app/shared.env"),
            ("Z", "s3://cfg-bucket/app/other.json#C"),
        ],
    );
    let out = run(cmd.args([
        "export",
        "--format",
        "json",
        "--from",
        "s3://cfg-bucket/app/shared.env",
        "--from",
        "s3://cfg-bucket/app/other.json,s3://cfg-bucket/app/shared.env",
    ]));
    out.expect_code(0);
    let env: BTreeMap<String, String> = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(env["X"], "alpha");
    assert_eq!(env["Y"], "beta");
    assert_eq!(env["W"], "A=alpha\nB=beta\n");
    assert_eq!(env["A"], "alpha");
    assert_eq!(env["B"], "beta");
    assert_eq!(env["Z"], "gamma");
    assert_eq!(env["C"], "gamma");
    let stats = proxy.stats();
    assert_eq!(
        requests_to(&stats, "GET /cfg-bucket/app/shared.env"),
        1,
        "{stats}"
    );
    assert_eq!(
        requests_to(&stats, "GET /cfg-bucket/app/other.json"),
        1,
        "{stats}"
    );
    assert_eq!(requests_to(&stats, "TrentService.Decrypt"), 1, "{stats}");
    assert!(instruction_requests(&stats).is_empty(), "{stats}");
}
