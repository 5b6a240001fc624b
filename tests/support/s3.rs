//! S3 and KMS seeding shared by the S3, operator and leak tests: a bucket and
//! a KMS key, `kms.encrypt`, plain objects, objects written by AWS's Python
//! S3 Encryption Client (`tests/support/py/s3ec.py`), and envseal's own
//! `push`/`pull`.

use std::path::PathBuf;
use std::process::Command;

use serde_json::{json, Value};

use super::{b64, bytes_arg, bytes_of, run, run_with_stdin, Moto, Run};

/// The bucket [`setup`] creates.
pub const BUCKET: &str = "cfg-bucket";

/// The alias of the KMS key [`setup`] creates.
pub const ALIAS: &str = "alias/envseal-test";

/// The Python S3 Encryption Client driver.
pub const S3EC_PY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/py/s3ec.py");

/// How the Python S3 Encryption Client is installed when missing.
pub const S3EC_INSTALL_HINT: &str = "run the tests with scripts/test, which installs tests/support/py/requirements.txt (amazon-s3-encryption-client-python) into .venv/";

/// A KMS key with `alias` and a bucket; returns the key's (id, ARN).
pub fn kms_key_and_bucket(moto: &Moto, alias: &str, bucket: &str) -> (String, String) {
    let r = moto.calls(json!([
        {"service": "kms", "method": "create_key", "args": {"Description": "envseal tests"}},
        {"service": "s3", "method": "create_bucket", "args": {"Bucket": bucket}},
    ]));
    let id = r[0]["KeyMetadata"]["KeyId"].as_str().unwrap().to_owned();
    let arn = r[0]["KeyMetadata"]["Arn"].as_str().unwrap().to_owned();
    moto.call(
        "kms",
        "create_alias",
        json!({"AliasName": alias, "TargetKeyId": id}),
    );
    (id, arn)
}

/// [`BUCKET`] and a KMS key with [`ALIAS`]; returns (key id, key ARN).
pub fn setup(moto: &Moto) -> (String, String) {
    kms_key_and_bucket(moto, ALIAS, BUCKET)
}

/// `kms.encrypt(KeyId, Plaintext)["CiphertextBlob"]`.
pub fn kms_encrypt(moto: &Moto, key: &str, plaintext: &[u8]) -> Vec<u8> {
    let r = moto.call(
        "kms",
        "encrypt",
        json!({"KeyId": key, "Plaintext": bytes_arg(plaintext)}),
    );
    bytes_of(&r["CiphertextBlob"])
}

/// A plain `PutObject` into [`BUCKET`]; `extra` adds arguments (SSE-KMS…).
pub fn put_object(moto: &Moto, key: &str, body: &[u8], extra: Value) {
    let mut args = json!({"Bucket": BUCKET, "Key": key, "Body": bytes_arg(body)});
    if let Value::Object(extra) = extra {
        args.as_object_mut().unwrap().extend(extra);
    }
    moto.call("s3", "put_object", args);
}

/// (body, user metadata) as S3 returns them.
pub fn get_raw(moto: &Moto, key: &str) -> (Vec<u8>, Value) {
    let r = moto.call("s3", "get_object", json!({"Bucket": BUCKET, "Key": key}));
    (bytes_of(&r["Body"]), r["Metadata"].clone())
}

/// Runs `tests/support/py/s3ec.py` (the Python S3 Encryption Client).
pub fn s3ec(moto: &Moto, ops: Value) -> Vec<Value> {
    let mut cmd = Command::new("python3");
    cmd.arg(S3EC_PY).arg(&moto.endpoint);
    let out = run_with_stdin(&mut cmd, &serde_json::to_vec(&ops).unwrap());
    assert_eq!(
        out.code,
        Some(0),
        "s3ec.py failed:\n{}{}",
        out.stderr,
        if out.stderr.contains("No module named") {
            format!("\nhint: {S3EC_INSTALL_HINT}")
        } else {
            String::new()
        }
    );
    match serde_json::from_str(&out.stdout) {
        Ok(Value::Array(results)) => results,
        _ => panic!("s3ec.py printed something else:\n{}", out.stdout),
    }
}

/// One object written by the Python S3 Encryption Client under [`ALIAS`]
/// in [`BUCKET`] (`format`: `v2`, `v3`; `extra`: more fields of the op).
pub fn s3ec_put(moto: &Moto, key: &str, format: &str, body: &[u8], extra: Value) -> Value {
    let mut op = json!({"op": "put", "bucket": BUCKET, "key": key, "kms_key_id": ALIAS,
                        "format": format, "body_b64": b64(body)});
    if let Value::Object(extra) = extra {
        op.as_object_mut().unwrap().extend(extra);
    }
    s3ec(moto, json!([op])).remove(0)
}

/// `envseal push TARGET --kms-key KEY` with `document` on stdin: the V2
/// envelope under KEY, uploaded with SSE-KMS under KEY. Expects success.
pub fn push(moto: &Moto, target: &str, kms_key: &str, document: &[u8]) -> Run {
    let out = run_with_stdin(
        moto.envseal().args(["push", target, "--kms-key", kms_key]),
        document,
    );
    out.expect_code(0);
    out
}

/// `envseal pull TARGET`.
pub fn pull(moto: &Moto, target: &str) -> Run {
    run(moto.envseal().args(["pull", target]))
}

/// An application that greets with `$NAME $SURNAME` and `$JOB_TITLE`.
pub const GREETING_APP: &str = r#"echo "Hello, my name is $NAME $SURNAME, and I am a $JOB_TITLE""#;

/// A fresh scratch directory of the test's own (strace logs, documents to
/// push), never one envseal writes to.
pub fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "envseal-s3-{tag}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
