//! Leak tests (PRODUCT.md §8): for every command (exec, check,
//! export, policy, push, pull) and every backend (SSM, Secrets Manager, S3 —
//! plain, KMS ciphertext and S3 Encryption Client envelope —, inline KMS),
//! in success and failure modes, at `ENVSEAL_LOG=trace` in text and JSON:
//!
//! - no seeded secret value appears on stderr, nor on stdout (except the
//!   stdout of `export` and `pull`, whose job is to print values);
//! - nothing is written to the file system: under `strace -f`, no open for
//!   writing or creating, no creat/rename/link/mkdir/symlink/mknod, by envseal
//!   or by the application it starts;
//! - no value in any traced syscall argument (argv of the `execve`, paths).
//!
//! Also each backend's own trace-level logs (SSM, Secrets Manager: no value
//! in `check`, `exec` or a failing run), and no file created while resolving
//! every S3 and KMS form (pushed, Python-client instruction file, KMS blob,
//! inline `kms:`), with the strace classifier's own check.
//!
//! Needs `strace` (Debian: `apt-get install -y strace`; `scripts/test` installs it).
//! `envseal install` is left out: writing its own binary is its purpose.

mod support;

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{json, Value};
use support::s3::{kms_encrypt, push, put_object, s3ec_put, setup, temp_dir, ALIAS};
use support::{
    bytes_arg, bytes_of, create_secrets, failure_reason, put_secret_value, run, run_with_stdin,
    seed_ssm, with_vars, Moto, Proxy, Run,
};

const EXIT_RESOLUTION: i32 = 111;

/// Every value seeded below. Distinct, and not substrings of anything else.
const SSM_VALUE: &str = "leak-ssm-Zq81x";
const SSM_PATH_VALUE: &str = "leak-path-Kp27x";
const SM_VALUE: &str = "leak-sm-Hw55x";
const SM_JSON_VALUE: &str = "leak-json-Tt93x";
const SM_JSON_OTHER: &str = "leak-jsonother-Qa18x";
const SM_BUNDLE_VALUE: &str = "leak-smbundle-Ce40x";
const S3_PLAIN_VALUE: &str = "leak-s3plain-Ud42x";
const S3_ENVELOPE_VALUE: &str = "leak-s3env-Rb64x";
const S3_KMS_VALUE: &str = "leak-s3kms-Mm35x";
const KMS_VALUE: &str = "leak-kms-Vv73x";
const BROKEN_DOC_VALUE: &str = "leak-broken-Gy12x";
const NUL_VALUE: &str = "leak-nul-Fd09x";
const NOT_JSON_VALUE: &str = "leak-notjson-Xe77x";
const PUSHED_VALUE: &str = "leak-pushed-Ja31x";

const ALL_VALUES: [&str; 14] = [
    SSM_VALUE,
    SSM_PATH_VALUE,
    SM_VALUE,
    SM_JSON_VALUE,
    SM_JSON_OTHER,
    SM_BUNDLE_VALUE,
    S3_PLAIN_VALUE,
    S3_ENVELOPE_VALUE,
    S3_KMS_VALUE,
    KMS_VALUE,
    BROKEN_DOC_VALUE,
    NUL_VALUE,
    NOT_JSON_VALUE,
    PUSHED_VALUE,
];

struct Lab {
    moto: Moto,
    key_id: String,
    kms_reference: String,
}

fn lab() -> Lab {
    let moto = Moto::start();
    let key_id = moto.call("kms", "create_key", json!({}))["KeyMetadata"]["KeyId"]
        .as_str()
        .unwrap()
        .to_owned();
    let encrypt = |plaintext: &str| support::s3::kms_encrypt(&moto, &key_id, plaintext.as_bytes());
    let kms_reference = format!("kms:{}", support::b64(&encrypt(KMS_VALUE)));
    let s3_kms_body = support::b64(&encrypt(&format!("S3_KMS={S3_KMS_VALUE}\n")));

    // An S3 Encryption Client V2 object (what `envseal push` writes).
    let context = envseal::s3ec::cipher::encryption_context_for_push(&key_id);
    let data_key = moto.call(
        "kms",
        "generate_data_key",
        json!({"KeyId": key_id, "KeySpec": "AES_256", "EncryptionContext": context}),
    );
    let plaintext_key: [u8; 32] = bytes_of(&data_key["Plaintext"]).try_into().unwrap();
    let (envelope_body, metadata) = envseal::s3ec::cipher::encrypt_v2(
        &plaintext_key,
        &bytes_of(&data_key["CiphertextBlob"]),
        &key_id,
        format!("S3_ENVELOPE={S3_ENVELOPE_VALUE}\n").as_bytes(),
        [3; 12],
    );
    let metadata: serde_json::Map<String, Value> =
        metadata.into_iter().map(|(k, v)| (k, json!(v))).collect();

    moto.calls(json!([
        {"service": "ssm", "method": "put_parameter",
         "args": {"Name": "/leak/ssm", "Value": SSM_VALUE, "Type": "SecureString"}},
        {"service": "ssm", "method": "put_parameter",
         "args": {"Name": "/leak/path/inner", "Value": SSM_PATH_VALUE, "Type": "SecureString"}},
        {"service": "secretsmanager", "method": "create_secret",
         "args": {"Name": "leak/sm", "SecretString": SM_VALUE}},
        {"service": "secretsmanager", "method": "create_secret",
         "args": {"Name": "leak/json", "SecretString":
             json!({"TOKEN": SM_JSON_VALUE, "other": SM_JSON_OTHER, "nested": {"x": SM_JSON_OTHER}}).to_string()}},
        {"service": "secretsmanager", "method": "create_secret",
         "args": {"Name": "leak/bundle", "SecretString": json!({"sm_bundle": SM_BUNDLE_VALUE}).to_string()}},
        {"service": "secretsmanager", "method": "create_secret",
         "args": {"Name": "leak/nul", "SecretBinary": bytes_arg(format!("{NUL_VALUE}\0").as_bytes())}},
        {"service": "secretsmanager", "method": "create_secret",
         "args": {"Name": "leak/notjson", "SecretString": format!("{NOT_JSON_VALUE} is not JSON")}},
        {"service": "s3", "method": "create_bucket", "args": {"Bucket": "leak-bucket"}},
        {"service": "s3", "method": "put_object",
         "args": {"Bucket": "leak-bucket", "Key": "plain.env",
                  "Body": bytes_arg(format!("S3_PLAIN={S3_PLAIN_VALUE}\n").as_bytes())}},
        {"service": "s3", "method": "put_object",
         "args": {"Bucket": "leak-bucket", "Key": "kms.env", "Body": bytes_arg(s3_kms_body.as_bytes())}},
        {"service": "s3", "method": "put_object",
         "args": {"Bucket": "leak-bucket", "Key": "envelope.env", "Body": bytes_arg(&envelope_body),
                  "Metadata": metadata}},
        {"service": "s3", "method": "put_object",
         "args": {"Bucket": "leak-bucket", "Key": "broken.env",
                  "Body": bytes_arg(format!("OK=1\nthis line is broken {BROKEN_DOC_VALUE}\n").as_bytes())}},
    ]));
    Lab {
        moto,
        key_id,
        kms_reference,
    }
}

/// Every backend, as references and bundles, all resolvable.
fn with_everything(lab: &Lab, cmd: &mut Command) {
    cmd.env("SSM_ONE", "ssm:/leak/ssm")
        .env("SM_ONE", "sm:leak/sm")
        .env("SM_KEY", "sm:leak/json#TOKEN")
        .env("S3_ONE", "s3://leak-bucket/envelope.env#S3_ENVELOPE")
        .env("KMS_ONE", &lab.kms_reference)
        .env(
            "ENVSEAL_FROM",
            "ssm:/leak/path/,sm:leak/bundle,s3://leak-bucket/plain.env,s3://leak-bucket/kms.env,s3://leak-bucket/envelope.env",
        );
}

/// References that fail after their secret was fetched: the value is in
/// envseal's memory when the error is written.
fn with_failures(cmd: &mut Command) {
    cmd.env("MISSING", "ssm:/leak/does-not-exist")
        .env("NOT_JSON", "sm:leak/notjson#TOKEN")
        .env("NESTED", "sm:leak/json#nested")
        .env("NO_KEY", "sm:leak/json#absent")
        .env("NUL_VALUE", "sm:leak/nul")
        .env("BROKEN", "s3://leak-bucket/broken.env#OK")
        .env("S3_FORCED", "s3://leak-bucket/plain.env?encryption=kms");
}

fn strace_available() -> bool {
    Command::new("strace")
        .arg("-V")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Runs `cmd` (an envseal command) under `strace -f`; returns its outcome and
/// the trace.
fn traced(cmd: &Command, stdin: Option<&[u8]>) -> (Run, String) {
    strace(
        cmd,
        stdin,
        &[],
        format!("trace={},execve", support::FILE_SYSCALLS),
    )
}

/// `cmd` under `strace -f -qq -s 4096` with `flags` and the `-e` expression
/// `trace`: its outcome and the trace.
fn strace(cmd: &Command, stdin: Option<&[u8]>, flags: &[&str], trace: String) -> (Run, String) {
    assert!(
        strace_available(),
        "strace not found: apt-get install -y strace (scripts/test installs it)"
    );
    static N: AtomicU64 = AtomicU64::new(0);
    let log: PathBuf = std::env::temp_dir().join(format!(
        "envseal-leaks-{}-{}.strace",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let mut strace = Command::new("strace");
    strace.env_clear();
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            strace.env(k, v);
        }
    }
    strace
        .args(["-f", "-qq", "-s", "4096"])
        .args(flags)
        .arg("-o")
        .arg(&log)
        .arg("-e")
        .arg(trace)
        .arg("--")
        .arg(cmd.get_program())
        .args(cmd.get_args());
    let out = match stdin {
        Some(input) => run_with_stdin(&mut strace, input),
        None => run(&mut strace),
    };
    let trace = std::fs::read_to_string(&log).unwrap_or_else(|e| {
        panic!(
            "no strace log ({e}); is ptrace allowed here?\n{}",
            out.stderr
        )
    });
    let _ = std::fs::remove_file(&log);
    (out, trace)
}

/// The file-system invariant: nothing opened for writing or created,
/// nothing renamed, linked or made.
fn assert_nothing_written(what: &str, trace: &str) {
    let writes = support::write_mode_calls(trace);
    assert!(
        writes.is_empty(),
        "{what}: file system changed:\n{}",
        writes.join("\n")
    );
    assert!(
        trace.contains("execve("),
        "{what}: the trace is empty:\n{trace}"
    );
}

/// No seeded value on stderr, on stdout (unless `stdout_may_hold_values`), or
/// in any traced syscall (argv, paths).
fn assert_no_values(what: &str, out: &Run, trace: &str, stdout_may_hold_values: bool) {
    assert!(!out.stderr.contains("panicked"), "{what}: {}", out.stderr);
    for value in ALL_VALUES {
        assert!(
            !out.stderr.contains(value),
            "{what}: {value} on stderr:\n{}",
            out.stderr
        );
        if !stdout_may_hold_values {
            assert!(
                !out.stdout.contains(value),
                "{what}: {value} on stdout:\n{}",
                out.stdout
            );
        }
        assert!(
            !trace.contains(value),
            "{what}: {value} in a syscall argument"
        );
    }
}

fn trace_level(cmd: &mut Command, json: bool) {
    cmd.env("ENVSEAL_LOG", "trace");
    if json {
        cmd.env("ENVSEAL_LOG_FORMAT", "json");
    }
}

#[test]
fn exec_check_export_and_policy_never_leak_on_success() {
    let lab = lab();
    for json_logs in [false, true] {
        let commands: Vec<(&str, Vec<&str>, bool)> = vec![
            (
                "exec",
                vec!["exec", "--", "sh", "-c", "echo app-started"],
                false,
            ),
            (
                "exec --init",
                vec!["exec", "--init", "--", "sh", "-c", "echo app-started"],
                false,
            ),
            ("check", vec!["check"], false),
            ("check json", vec!["check", "--format", "json"], false),
            ("export shell", vec!["export"], true),
            ("export dotenv", vec!["export", "--format", "dotenv"], true),
            ("export json", vec!["export", "--format", "json"], true),
            ("policy", vec!["policy"], false),
            ("policy --resolve", vec!["policy", "--resolve"], false),
        ];
        for (name, args, prints_values) in commands {
            let what = format!("{name} (json logs: {json_logs})");
            let mut cmd = lab.moto.envseal();
            with_everything(&lab, &mut cmd);
            trace_level(&mut cmd, json_logs);
            cmd.args(&args);
            let (out, trace) = traced(&cmd, None);
            out.expect_code(0);
            // envseal's own events go up to debug; trace lets everything
            // through (the SDK's capped at debug). `policy` alone does no
            // AWS work and logs nothing.
            let debug_marker = if json_logs {
                "\"level\":\"DEBUG\""
            } else {
                " DEBUG "
            };
            assert!(
                name == "policy" || out.stderr.contains(debug_marker),
                "{what}: verbose logging is not on:\n{}",
                out.stderr
            );
            if json_logs {
                // Every log line is one JSON object.
                for line in out.stderr.lines() {
                    assert!(
                        serde_json::from_str::<Value>(line).is_ok_and(|v| v.is_object()),
                        "{what}: not a JSON log line: {line}"
                    );
                }
            }
            assert_no_values(&what, &out, &trace, prints_values);
            assert_nothing_written(&what, &trace);
            if name.starts_with("exec") {
                assert!(out.stdout.contains("app-started"), "{what}");
            }
            if name.starts_with("export") {
                // The one place values are printed: they are all there.
                for value in [SSM_VALUE, SM_JSON_VALUE, S3_ENVELOPE_VALUE, KMS_VALUE] {
                    assert!(out.stdout.contains(value), "{what}: {value} missing");
                }
            }
        }
    }
}

#[test]
fn failures_never_leak_what_was_fetched() {
    let lab = lab();
    for json_logs in [false, true] {
        for (name, args) in [
            ("exec", vec!["exec", "--", "sh", "-c", "echo app-started"]),
            (
                "exec --init",
                vec!["exec", "--init", "--", "sh", "-c", "echo app-started"],
            ),
            ("check", vec!["check"]),
            ("export", vec!["export"]),
        ] {
            let what = format!("{name} failing (json logs: {json_logs})");
            let mut cmd = lab.moto.envseal();
            with_everything(&lab, &mut cmd);
            with_failures(&mut cmd);
            trace_level(&mut cmd, json_logs);
            cmd.args(&args);
            let (out, trace) = traced(&cmd, None);
            out.expect_code(EXIT_RESOLUTION);
            // export prints nothing when anything failed: values only on
            // stdout of a successful export.
            assert_no_values(&what, &out, &trace, false);
            assert_nothing_written(&what, &trace);
            assert!(!out.stdout.contains("app-started"));
            for variable in [
                "MISSING",
                "NOT_JSON",
                "NESTED",
                "NO_KEY",
                "NUL_VALUE",
                "BROKEN",
                "S3_FORCED",
            ] {
                assert!(
                    out.stderr.contains(&format!("{variable}: ")) || out.stdout.contains(variable),
                    "{what}: {variable} not reported:\n{}",
                    out.stderr
                );
            }
        }
    }
}

/// Faults in the middle of responses that carry values: a corrupted SSM
/// answer (the SDK cannot parse it), a truncated Secrets Manager answer, a
/// truncated S3 body. SDK error messages and trace-level logs must not
/// quote what they could not parse.
#[test]
fn broken_responses_never_leak() {
    let lab = lab();
    let proxy = Proxy::start(&lab.moto.endpoint);
    proxy.configure(json!({"faults": [
        {"kind": "corrupt", "target": "AmazonSSM.*"},
        {"kind": "truncate", "target": "secretsmanager.*"},
        {"kind": "truncate", "target": "GET /leak-bucket/*"},
        {"kind": "corrupt", "target": "TrentService.*"}
    ]}));
    for json_logs in [false, true] {
        for (name, args) in [
            ("exec", vec!["exec", "--", "sh", "-c", "echo app-started"]),
            (
                "exec --init",
                vec!["exec", "--init", "--", "sh", "-c", "echo app-started"],
            ),
            ("check", vec!["check"]),
        ] {
            let what = format!("{name} with broken responses (json logs: {json_logs})");
            let mut cmd = proxy.envseal(&lab.moto);
            with_everything(&lab, &mut cmd);
            trace_level(&mut cmd, json_logs);
            cmd.env("AWS_MAX_ATTEMPTS", "2").args(&args);
            let (out, trace) = traced(&cmd, None);
            out.expect_code(EXIT_RESOLUTION);
            assert_no_values(&what, &out, &trace, false);
            assert_nothing_written(&what, &trace);
            assert!(!out.stdout.contains("app-started"));
        }
    }
    let stats = proxy.stats();
    assert!(stats["faulted"].as_u64().unwrap() >= 8, "{stats}");
}

#[test]
fn push_and_pull_never_leak() {
    let lab = lab();
    let document = format!("PUSHED={PUSHED_VALUE}\nOTHER=\"{SSM_VALUE}\"\n");
    for json_logs in [false, true] {
        // push: the document comes on stdin; nothing of it on stdout/stderr.
        let what = format!("push (json logs: {json_logs})");
        let mut cmd = lab.moto.envseal();
        trace_level(&mut cmd, json_logs);
        cmd.args([
            "push",
            "s3://leak-bucket/pushed.env",
            "--kms-key",
            &lab.key_id,
            "-",
        ]);
        let (out, trace) = traced(&cmd, Some(document.as_bytes()));
        out.expect_code(0);
        assert_no_values(&what, &out, &trace, false);
        assert_nothing_written(&what, &trace);

        // pull: the document on stdout (its purpose), nothing on stderr.
        for (target, expected) in [
            ("s3://leak-bucket/pushed.env", document.as_str()),
            ("s3://leak-bucket/pushed.env#PUSHED", PUSHED_VALUE),
            ("s3://leak-bucket/envelope.env", S3_ENVELOPE_VALUE),
            ("s3://leak-bucket/kms.env", S3_KMS_VALUE),
        ] {
            let what = format!("pull {target} (json logs: {json_logs})");
            let mut cmd = lab.moto.envseal();
            trace_level(&mut cmd, json_logs);
            cmd.args(["pull", target]);
            let (out, trace) = traced(&cmd, None);
            out.expect_code(0);
            assert!(out.stdout.contains(expected), "{what}: {}", out.stdout);
            assert_no_values(&what, &out, &trace, true);
            assert_nothing_written(&what, &trace);
        }

        // Failing pulls: a malformed document, a missing key, a missing object.
        for target in [
            "s3://leak-bucket/broken.env#OK",
            "s3://leak-bucket/pushed.env#ABSENT",
            "s3://leak-bucket/absent.env",
            "s3://leak-bucket/plain.env?encryption=kms",
        ] {
            let what = format!("pull {target} failing (json logs: {json_logs})");
            let mut cmd = lab.moto.envseal();
            trace_level(&mut cmd, json_logs);
            cmd.args(["pull", target]);
            let (out, trace) = traced(&cmd, None);
            out.expect_code(EXIT_RESOLUTION);
            assert_no_values(&what, &out, &trace, false);
            assert_nothing_written(&what, &trace);
        }

        // A failing push (the document does not parse): nothing uploaded,
        // nothing quoted.
        let what = format!("push failing (json logs: {json_logs})");
        let mut cmd = lab.moto.envseal();
        trace_level(&mut cmd, json_logs);
        cmd.args([
            "push",
            "s3://leak-bucket/bad.env",
            "--kms-key",
            &lab.key_id,
            "-",
        ]);
        let bad = format!("A=1\nbroken {PUSHED_VALUE}\n");
        let (out, trace) = traced(&cmd, Some(bad.as_bytes()));
        out.expect_code(EXIT_RESOLUTION);
        assert_no_values(&what, &out, &trace, false);
        assert_nothing_written(&what, &trace);
    }
}

/// The child's environment holds no `ENVSEAL_*` variable and its argv is
/// exactly what was given (no value is passed on the command line).
#[test]
fn the_child_gets_no_envseal_variables_and_no_values_in_argv() {
    let lab = lab();
    let mut cmd = lab.moto.envseal();
    with_everything(&lab, &mut cmd);
    cmd.env("ENVSEAL_TIMEOUT", "20s")
        .env("ENVSEAL_COLLISION", "override")
        .env("ENVSEAL_LOG", "trace")
        .env("ENVSEAL_LOG_FORMAT", "json")
        .env("ENVSEAL_INIT", "0")
        .env("ENVSEAL_UNKNOWN_SETTING", "x")
        .args(["exec", "--", "/usr/bin/env"]);
    let (out, trace) = traced(&cmd, None);
    out.expect_code(0);
    let env = out.env();
    assert!(!env.keys().any(|k| k.starts_with("ENVSEAL_")), "{env:?}");
    assert_eq!(env["SSM_ONE"], SSM_VALUE);
    // The execve of the application: argv as given.
    let exec_line = trace
        .lines()
        .find(|l| l.contains("execve(\"/usr/bin/env\""))
        .unwrap_or_else(|| panic!("no execve of /usr/bin/env:\n{trace}"));
    assert!(exec_line.contains("[\"/usr/bin/env\"]"), "{exec_line}");
    for value in ALL_VALUES {
        assert!(!trace.contains(value), "{value} in a syscall argument");
    }
    assert_nothing_written("exec /usr/bin/env", &trace);
}

/// The checker itself: a command that does write a file is caught.
#[test]
fn the_file_system_check_catches_a_write() {
    let target = std::env::temp_dir().join(format!("envseal-leaks-probe-{}", std::process::id()));
    let mut cmd = Command::new("sh");
    cmd.env_clear()
        .env("PATH", "/usr/bin:/bin")
        .args(["-c", &format!("echo x > '{}'", target.display())]);
    let (out, trace) = traced(&cmd, None);
    out.expect_code(0);
    let _ = std::fs::remove_file(&target);
    let caught = std::panic::catch_unwind(|| assert_nothing_written("probe", &trace));
    assert!(caught.is_err(), "a write went unnoticed:\n{trace}");

    let mut cmd = Command::new("/bin/mkdir");
    cmd.env_clear().env("PATH", "/usr/bin:/bin").arg(&target);
    let (out, trace) = traced(&cmd, None);
    out.expect_code(0);
    let _ = std::fs::remove_dir(&target);
    let caught = std::panic::catch_unwind(|| assert_nothing_written("probe", &trace));
    assert!(caught.is_err(), "a mkdir went unnoticed:\n{trace}");
}

// ------------------------------------- each backend's logs at trace level

#[test]
fn trace_logging_never_shows_a_value() {
    let moto = Moto::start();
    let values = ["tr4ce-s3cret-one", "tr4ce-s3cret-two", "tr4ce-s3cret-three"];
    seed_ssm(
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

#[test]
fn no_secret_value_in_logs_at_trace_level() {
    let moto = Moto::start();
    let values = [
        "trace-json-token-Q7w9",
        "trace-json-user-Z3x1",
        "trace-plain-value-M4k8",
        "trace-binary-value-R2d6",
        "trace-bundle-value-P5n3",
        "trace-previous-value-H8j2",
        "trace-current-value-B6v4",
        "trace-broken-value-K1f5",
    ];
    create_secrets(
        &moto,
        &[
            (
                "trace/json",
                json!(format!(
                    r#"{{"TOKEN": "{}", "USER": "{}"}}"#,
                    values[0], values[1]
                )),
            ),
            ("trace/plain", json!(values[2])),
            ("trace/binary", bytes_arg(values[3].as_bytes())),
            (
                "trace/bundle",
                json!(format!(r#"{{"bundle_key": "{}"}}"#, values[4])),
            ),
            ("trace/rotated", json!(values[5])),
            // Not JSON: asking it for a key fails, and must not quote it.
            ("trace/broken", json!(format!("{{broken {}", values[7]))),
        ],
    );
    put_secret_value(&moto, "trace/rotated", values[6]);
    let vars = [
        ("TOKEN", "sm:trace/json#TOKEN"),
        ("WHOLE", "sm:trace/json"),
        ("PLAIN", "sm:trace/plain"),
        ("BINARY", "sm:trace/binary"),
        ("CURRENT", "sm:trace/rotated"),
        ("PREVIOUS", "sm:trace/rotated?version-stage=AWSPREVIOUS"),
        ("ENVSEAL_FROM", "sm:trace/bundle"),
        ("ENVSEAL_LOG", "trace"),
    ];
    let assert_clean = |what: &str, text: &str| {
        for value in values {
            assert!(!text.contains(value), "{what} contains {value}:\n{text}");
        }
    };

    let mut cmd = with_vars(moto.envseal(), &vars);
    let out = run(cmd.arg("check"));
    out.expect_code(0);
    // Logging really was on at trace level, and everything resolved.
    assert!(
        out.stderr.contains("BatchGetSecretValue"),
        "no debug logging:\n{}",
        out.stderr
    );
    for var in [
        "TOKEN",
        "WHOLE",
        "PLAIN",
        "BINARY",
        "CURRENT",
        "PREVIOUS",
        "BUNDLE_KEY",
    ] {
        assert!(
            out.stdout
                .lines()
                .any(|l| l.starts_with(&format!("{var}\t")) && l.contains("\tok\t")),
            "{var} not ok:\n{}",
            out.stdout
        );
    }
    assert_clean("check stdout", &out.stdout);
    assert_clean("check stderr", &out.stderr);

    // exec: the application gets the values; stderr still has none.
    let mut cmd = with_vars(moto.envseal(), &vars);
    let out = run(cmd.args(["exec", "--", "/usr/bin/env"]));
    out.expect_code(0);
    let env = out.env();
    assert_eq!(env["TOKEN"], values[0]);
    assert_eq!(env["BINARY"], values[3]);
    assert_eq!(env["BUNDLE_KEY"], values[4]);
    assert_eq!(env["PREVIOUS"], values[5]);
    assert!(!env.contains_key("ENVSEAL_LOG"));
    assert_clean("exec stderr", &out.stderr);

    // A failing run at trace level: the malformed secret is not quoted.
    let mut cmd = with_vars(moto.envseal(), &vars);
    cmd.env("BROKEN", "sm:trace/broken#KEY");
    let out = run(cmd.arg("check"));
    out.expect_code(EXIT_RESOLUTION);
    failure_reason(&out.stderr, "BROKEN", "sm:trace/broken#KEY");
    assert_clean("failing check stdout", &out.stdout);
    assert_clean("failing check stderr", &out.stderr);
}

// ------------------------- no file written while resolving S3 and KMS

#[test]
fn strace_classifier_sees_write_mode_opens() {
    let trace = "\
101 openat(AT_FDCWD, \"/etc/ld.so.cache\", O_RDONLY|O_CLOEXEC) = 3
101 openat(AT_FDCWD, \"/tmp/x\", O_WRONLY|O_CREAT|O_TRUNC, 0666) = 4
102 open(\"/dev/null\", O_RDWR) = 5
102 rename(\"/a\", \"/b\") = 0
102 +++ exited with 0 +++";
    assert_eq!(support::write_mode_calls(trace).len(), 3);
    // Traced with -y and support::WRITE_SYSCALLS: writes to a file on disk
    // count, writes to memfds, pipes, sockets and /dev/null do not, nor a
    // memfd reopened for writing by its /proc path.
    let trace = "\
101 memfd_create(\"TLS_KEY\", MFD_ALLOW_SEALING) = 3</memfd:TLS_KEY>(deleted)
101 pwrite64(3</memfd:TLS_KEY>(deleted), \"v\", 1, 0) = 1
101 write(1<pipe:[4242]>, \"out\", 3) = 3
101 write(7<socket:[99]>, \"GET\", 3) = 3
101 write(5</dev/null>, \"x\", 1) = 1
102 openat(AT_FDCWD</>, \"/proc/self/fd/3\", O_RDWR) = 4</memfd:TLS_KEY>(deleted)
102 ftruncate(4</memfd:TLS_KEY>(deleted), 0) = -1 EPERM (Operation not permitted)
102 write(6</tmp/leak.pem>, \"v\", 1) = 1
102 pwrite64(6</tmp/leak.pem>, \"v\", 1, 0) = 1
102 ftruncate(6</tmp/leak.pem>, 0) = 0
102 openat(AT_FDCWD</>, \"/tmp/y\", O_WRONLY|O_CREAT, 0600) = 8</tmp/y>
102 write(9, \"v\", 1) = 1";
    let writes = support::write_mode_calls(trace);
    assert_eq!(writes.len(), 5, "{writes:#?}");
    assert!(writes
        .iter()
        .all(|w| w.contains("/tmp/") || w.contains("write(9,")));
    assert_eq!(support::memfd_writes(trace).len(), 1);
}

#[test]
fn no_file_is_created_while_resolving() {
    let strace = ["/usr/bin/strace", "/bin/strace"]
        .iter()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or_else(|| {
            panic!("strace not found: apt-get install -y strace (scripts/test does)")
        });
    let moto = Moto::start();
    let (key_id, _) = setup(&moto);
    push(&moto, "s3://cfg-bucket/pushed.env", ALIAS, b"PUSHED=p-1\n");
    s3ec_put(
        &moto,
        "py/v3.env",
        "v3",
        b"PY=p-2\n",
        json!({"layout": "instruction"}),
    );
    let blob = kms_encrypt(&moto, &key_id, br#"{"blog": "p-3"}"#);
    put_object(&moto, "blog.b64", support::b64(&blob).as_bytes(), json!({}));
    let inline = support::b64(&kms_encrypt(&moto, &key_id, b"p-4"));

    let dir = temp_dir("strace");
    let log = dir.join("trace.log");
    let envseal = moto.envseal();
    let mut cmd = Command::new(strace);
    cmd.env_clear();
    for (k, v) in envseal.get_envs() {
        if let Some(v) = v {
            cmd.env(k, v);
        }
    }
    cmd.env("INLINE", format!("kms:{inline}"))
        .args(["-f", "-e"])
        .arg(format!("trace={}", support::FILE_SYSCALLS))
        .arg("-o")
        .arg(&log)
        .arg(envseal.get_program())
        .args([
            "exec",
            "--from",
            "s3://cfg-bucket/pushed.env,s3://cfg-bucket/py/v3.env,s3://cfg-bucket/blog.b64",
            "--",
            "/usr/bin/env",
        ]);
    let out = run(&mut cmd);
    out.expect_code(0);
    let env = out.env();
    assert_eq!(env["PUSHED"], "p-1");
    assert_eq!(env["PY"], "p-2");
    assert_eq!(env["BLOG"], "p-3");
    assert_eq!(env["INLINE"], "p-4");
    let trace = std::fs::read_to_string(&log).expect("strace wrote its log");
    assert!(
        trace.contains("openat("),
        "strace saw no openat at all: is ptrace allowed?\n{trace}"
    );
    let writes = support::write_mode_calls(&trace);
    assert!(
        writes.is_empty(),
        "files opened for writing, created, renamed or linked:\n{}",
        writes.join("\n")
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// The `?file` variables of [`file_values_go_to_memory_only`].
const FILE_VARS: [(&str, &str); 3] = [
    ("F_SSM", "ssm:/leak/file?file"),
    ("F_SM", "sm:leak/files#KEY?file"),
    ("F_S3", "s3://cfg-bucket/file.pem?optional&file"),
];

/// `?file`: under `strace -f -y`, the values are written to memfds and
/// nowhere else: no file on disk opened for writing, written or truncated,
/// by envseal or by the application reading the files; no value in any
/// other traced call; and the files are where the application found them.
#[test]
fn file_values_go_to_memory_only() {
    const FILE_SSM: &str = "leak-file-ssm-Wd63x";
    const FILE_SM: &str = "leak-file-smkey-Bq27x";
    const FILE_S3: &str = "leak-file-s3-Nc90x";
    let moto = Moto::start();
    support::s3::setup(&moto);
    seed_ssm(&moto, &[("/leak/file", FILE_SSM)]);
    create_secrets(
        &moto,
        &[("leak/files", json!({"KEY": FILE_SM}).to_string().into())],
    );
    put_object(&moto, "file.pem", FILE_S3.as_bytes(), json!({}));
    for (json, init) in [(false, false), (true, false), (false, true), (true, true)] {
        let mut cmd = with_vars(moto.envseal(), &FILE_VARS);
        trace_level(&mut cmd, json);
        cmd.arg("exec");
        if init {
            cmd.arg("--init");
        }
        // The application reads every file (and prints only lengths).
        cmd.args([
            "--",
            "/bin/sh",
            "-c",
            "exec /usr/bin/wc -c \"$F_SSM\" \"$F_SM\" \"$F_S3\"",
        ]);
        let what = format!("?file exec init={init} json={json}");
        let (out, trace) = traced_writes(&cmd);
        out.expect_code(0);
        for (value, var) in [(FILE_SSM, "F_SSM"), (FILE_SM, "F_SM"), (FILE_S3, "F_S3")] {
            assert!(
                out.stdout
                    .contains(&format!("{} /proc/self/fd/", value.len())),
                "{what}: {var} not read: {}",
                out.stdout
            );
            assert!(
                !out.stdout.contains(value) && !out.stderr.contains(value),
                "{what}"
            );
            let into_memfd = support::memfd_writes(&trace);
            assert!(
                into_memfd.iter().any(|l| l.contains(value)),
                "{what}: {var} was not written to a memfd"
            );
            assert!(
                trace.contains(&format!("memfd_create(\"{var}\"")),
                "{what}: the memfd is named after {var}"
            );
            let elsewhere = trace
                .lines()
                .filter(|l| !into_memfd.iter().any(|m| m == l))
                .any(|l| l.contains(value));
            assert!(!elsewhere, "{what}: {var}'s value in another syscall");
        }
        let writes = support::write_mode_calls(&trace);
        assert!(
            writes.is_empty(),
            "{what}: written to disk:\n{}",
            writes.join("\n")
        );
    }
    // check (fingerprints) and export (refuses ?file) at trace level: no
    // value anywhere, and no file made at all.
    for command in ["check", "export"] {
        let mut cmd = with_vars(moto.envseal(), &FILE_VARS);
        trace_level(&mut cmd, false);
        cmd.arg(command);
        let (out, trace) = traced_writes(&cmd);
        out.expect_code(if command == "check" {
            0
        } else {
            EXIT_RESOLUTION
        });
        for value in [FILE_SSM, FILE_SM, FILE_S3] {
            assert!(!out.stdout.contains(value), "{command}: value on stdout");
            assert!(!out.stderr.contains(value), "{command}: value on stderr");
            assert!(!trace.contains(value), "{command}: value in a syscall");
        }
        assert!(!trace.contains("memfd_create("), "{command} made a file");
        let writes = support::write_mode_calls(&trace);
        assert!(writes.is_empty(), "{command}:\n{}", writes.join("\n"));
    }
}

/// Like [`traced`], with `-y` and the write-family calls
/// (`support::WRITE_SYSCALLS`) traced as well.
fn traced_writes(cmd: &Command) -> (Run, String) {
    let (out, trace) = strace(
        cmd,
        None,
        &["-y"],
        format!(
            "trace={},{},execve",
            support::FILE_SYSCALLS,
            support::WRITE_SYSCALLS
        ),
    );
    assert!(trace.contains("execve("), "the trace is empty:\n{trace}");
    (out, trace)
}
