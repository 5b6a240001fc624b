//! `?file` (in-memory files) against moto: a value from SSM, from a Secrets
//! Manager `#KEY`, a binary SecretBinary, S3 objects (binary, and larger than
//! an environment variable may be) and inline `kms:` reaches the application
//! as a sealed memfd at `/proc/self/fd/N`, under `exec` and `exec --init`;
//! `?optional&file`; `?file` on a bundle; `check`, `export` and `policy`.
//!
//! The application is `tests/apps/memfile.c`: it reads each file by its path
//! and prints its length and an FNV-1a hash, never its contents, so that
//! nothing here prints a value; the tests compare with the seeded values.

mod support;

use std::collections::BTreeMap;

use serde_json::{json, Value};
use support::s3::{kms_encrypt, put_object, setup};
use support::{bytes_arg, c_app, create_secrets, fnv1a, run, seed_ssm, Moto, Run};

/// Exit code of a resolution failure (src/error.rs).
const EXIT_RESOLUTION: i32 = 111;

const PEM_KEY: &str =
    "-----BEGIN PRIVATE KEY-----\nMIIEvfile-ssm-Qx71\n-----END PRIVATE KEY-----\n";
const CERT: &str = "-----BEGIN CERTIFICATE-----\nMIIfile-smkey-Pz22\n-----END CERTIFICATE-----\n";
const TOKEN: &str = "file-plain-token-Lm44";

/// Binary contents: NUL, bytes that are not UTF-8; never valid in a variable.
fn binary(tag: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| match i % 7 {
            0 => 0,
            1 => 0xff,
            2 => tag,
            _ => (i * 31 % 251) as u8,
        })
        .collect()
}

/// memfile.c's report: variable → its `key=value` fields (or `unset`).
fn report(out: &Run) -> BTreeMap<String, BTreeMap<String, String>> {
    out.stdout
        .lines()
        .filter_map(|line| {
            let (var, rest) = line.split_once(' ')?;
            let fields = rest
                .split(' ')
                .map(|f| match f.split_once('=') {
                    Some((k, v)) => (k.to_owned(), v.to_owned()),
                    None => (f.to_owned(), String::new()),
                })
                .collect();
            Some((var.to_owned(), fields))
        })
        .collect()
}

/// The application read exactly `expected` through the variable's path, the
/// descriptor is its own (inherited), and every attempt to change the file
/// failed as Linux fails writes to a sealed memfd: the open for writing
/// succeeds, the write gets EPERM; an open with O_TRUNC gets EPERM.
fn assert_sealed_file(
    seen: &BTreeMap<String, BTreeMap<String, String>>,
    var: &str,
    expected: &[u8],
    what: &str,
) {
    let f = seen
        .get(var)
        .unwrap_or_else(|| panic!("{what}: {var} not reported: {seen:?}"));
    let path = &f["path"];
    let fd = path
        .strip_prefix("/proc/self/fd/")
        .unwrap_or_else(|| panic!("{what}: {var}={path}"));
    assert!(fd.parse::<u32>().unwrap() >= 3, "{what}: {var}={path}");
    assert_eq!(f["len"], expected.len().to_string(), "{what}: {var} length");
    assert_eq!(f["fnv"], fnv1a(expected), "{what}: {var} contents differ");
    assert_eq!(f["fd"], "same", "{what}: {var}: descriptor not inherited");
    assert_eq!(f["wronly"], "ok/EPERM", "{what}: {var}: O_WRONLY write");
    assert_eq!(f["rdwr"], "ok/EPERM", "{what}: {var}: O_RDWR write");
    assert_eq!(f["trunc"], "EPERM", "{what}: {var}: O_TRUNC");
}

/// Every value seeded for `exec`, as (variable, reference, contents).
struct Seeded {
    moto: Moto,
    refs: Vec<(&'static str, String, Vec<u8>)>,
}

fn seed() -> Seeded {
    let moto = Moto::start();
    let (key_id, _) = setup(&moto);
    seed_ssm(&moto, &[("/f/tls/key", PEM_KEY), ("/f/token", TOKEN)]);
    let p12 = binary(1, 3000);
    create_secrets(
        &moto,
        &[
            (
                "f/tls",
                json!({"CERT": CERT, "OTHER": "x"}).to_string().into(),
            ),
            ("f/p12", bytes_arg(&p12)),
        ],
    );
    // Larger than one environment variable may be (128 KiB).
    let keystore = binary(2, 300 * 1024);
    put_object(&moto, "keystore.jks", &keystore, json!({}));
    let kms_plain = binary(3, 200);
    let inline = support::b64(&kms_encrypt(&moto, &key_id, &kms_plain));
    let refs = vec![
        (
            "TLS_KEY",
            "ssm:/f/tls/key?file".to_owned(),
            PEM_KEY.as_bytes().to_vec(),
        ),
        (
            "TLS_CERT",
            "sm:f/tls#CERT?file".to_owned(),
            CERT.as_bytes().to_vec(),
        ),
        ("P12", "sm:f/p12?optional&file".to_owned(), p12),
        (
            "KEYSTORE",
            "s3://cfg-bucket/keystore.jks?file".to_owned(),
            keystore,
        ),
        ("INLINE", format!("kms:{inline}?file"), kms_plain),
    ];
    Seeded { moto, refs }
}

#[test]
fn file_values_reach_the_application_under_exec_and_init() {
    let s = seed();
    let app = c_app("memfile", false);
    for init in [false, true] {
        let mut cmd = s.moto.envseal();
        for (var, reference, _) in &s.refs {
            cmd.env(var, reference);
        }
        cmd.env("TOKEN", "ssm:/f/token").env("ENVSEAL_LOG", "debug");
        cmd.arg("exec");
        if init {
            cmd.arg("--init");
        }
        cmd.arg("--").arg(&app);
        cmd.args(s.refs.iter().map(|r| r.0));
        let out = run(&mut cmd);
        out.expect_code(0);
        let what = if init { "exec --init" } else { "exec" };
        let seen = report(&out);
        let mut fds = std::collections::BTreeSet::new();
        for (var, _, contents) in &s.refs {
            assert_sealed_file(&seen, var, contents, what);
            assert!(
                fds.insert(seen[*var]["path"].clone()),
                "{what}: one file each"
            );
        }
        for value in [PEM_KEY, CERT, TOKEN] {
            assert!(!out.stderr.contains(value), "{what}: a value on stderr");
        }
        // The debug log names each file's variable and descriptor.
        assert!(out.stderr.contains("in-memory file"), "{}", out.stderr);
    }
    // The plain reference beside them is still a value, not a file.
    let out = run(s
        .moto
        .envseal()
        .env("TOKEN", "ssm:/f/token")
        .env("TLS_KEY", "ssm:/f/tls/key?file")
        .args(["exec", "--", "/usr/bin/env"]));
    out.expect_code(0);
    let env = out.env();
    assert_eq!(env["TOKEN"], TOKEN);
    assert!(
        env["TLS_KEY"].starts_with("/proc/self/fd/"),
        "{}",
        env["TLS_KEY"]
    );
}

#[test]
fn a_shell_reads_the_file_by_its_path() {
    // What users write: `cat "$TLS_KEY"`, `openssl … -key "$TLS_KEY"`.
    let moto = Moto::start();
    seed_ssm(&moto, &[("/f/tls/key", PEM_KEY)]);
    let out = run(moto
        .envseal()
        .env("TLS_KEY", "ssm:/f/tls/key?file")
        .args([
            "exec",
            "--",
            "/bin/sh",
            "-c",
            "test \"$(cat \"$TLS_KEY\")\" = \"$EXPECTED\" && echo same || echo differs",
        ])
        .env("EXPECTED", PEM_KEY.trim_end()));
    out.expect_code(0);
    assert_eq!(out.stdout.trim(), "same", "{}", out.stderr);
}

#[test]
fn optional_file_that_is_missing_leaves_the_variable_out() {
    let moto = Moto::start();
    let app = c_app("memfile", false);
    let out = run(moto
        .envseal()
        .env("GONE", "ssm:/f/not-there?optional&file")
        .env("GONE_SM", "sm:f/not-there#KEY?file&optional")
        .arg("exec")
        .arg("--")
        .arg(&app)
        .args(["GONE", "GONE_SM"]));
    out.expect_code(0);
    let seen = report(&out);
    assert!(seen["GONE"].contains_key("unset"), "{}", out.stdout);
    assert!(seen["GONE_SM"].contains_key("unset"), "{}", out.stdout);
    assert!(
        out.stderr.contains("GONE"),
        "warned by name: {}",
        out.stderr
    );
}

#[test]
fn a_required_file_that_is_missing_fails_closed() {
    let moto = Moto::start();
    let out = run(moto
        .envseal()
        .env("TLS_KEY", "ssm:/f/not-there?file")
        .args(["exec", "--", "/usr/bin/env"]));
    out.expect_code(EXIT_RESOLUTION);
    assert!(out.stdout.is_empty(), "the application ran: {}", out.stdout);
    support::failure_reason(&out.stderr, "TLS_KEY", "ssm:/f/not-there?file");
}

#[test]
fn file_on_a_bundle_is_refused() {
    let moto = Moto::start();
    seed_ssm(&moto, &[("/f/bundle/a", "bundle-value-Rr12")]);
    for (flag, source) in [
        (true, "ssm:/f/bundle/?file"),
        (false, "ssm:/f/bundle/?file"),
        (true, "sm:f/tls?optional&file"),
        (true, "s3://cfg-bucket/app.env?file"),
    ] {
        let mut cmd = moto.envseal();
        if flag {
            cmd.args(["exec", "--from", source]);
        } else {
            cmd.env("ENVSEAL_FROM", source).arg("exec");
        }
        let out = run(cmd.args(["--", "/usr/bin/env"]));
        out.expect_code(EXIT_RESOLUTION);
        assert!(out.stdout.is_empty(), "the application ran: {}", out.stdout);
        let reason = support::failure_reason(&out.stderr, "(bundle)", source);
        assert!(reason.contains("bundle"), "{reason}");
        assert!(reason.contains("?file"), "{reason}");
    }
}

#[test]
fn check_marks_files_and_export_refuses_them() {
    let moto = Moto::start();
    seed_ssm(&moto, &[("/f/tls/key", PEM_KEY), ("/f/token", TOKEN)]);
    let p12 = binary(1, 64);
    create_secrets(&moto, &[("f/p12", bytes_arg(&p12))]);
    let sha8 = |bytes: &[u8]| {
        let o = std::process::Command::new("python3")
            .args([
                "-c",
                "import hashlib,sys;print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest()[:8])",
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        o.stdin.as_ref().unwrap().write_all(bytes).unwrap();
        let out = o.wait_with_output().unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let with_refs = |cmd: &mut std::process::Command| {
        cmd.env("TLS_KEY", "ssm:/f/tls/key?file")
            .env("P12", "sm:f/p12?file")
            .env("TOKEN", "ssm:/f/token");
    };
    let mut cmd = moto.envseal();
    with_refs(&mut cmd);
    let out = run(cmd.arg("check"));
    out.expect_code(0);
    let line = |name: &str| {
        out.stdout
            .lines()
            .find(|l| l.starts_with(&format!("{name}\t")))
            .unwrap_or_else(|| panic!("no {name} line:\n{}", out.stdout))
            .to_owned()
    };
    assert_eq!(
        line("TLS_KEY"),
        format!(
            "TLS_KEY\tssm:/f/tls/key?file\tok\tlength={}\tsha256={}\tfile",
            PEM_KEY.len(),
            sha8(PEM_KEY.as_bytes())
        )
    );
    // A binary secret is fine as a file (and only as a file).
    assert_eq!(
        line("P12"),
        format!(
            "P12\tsm:f/p12?file\tok\tlength=64\tsha256={}\tfile",
            sha8(&p12)
        )
    );
    assert!(!line("TOKEN").ends_with("file"), "{}", line("TOKEN"));
    assert!(!out.stdout.contains(TOKEN) && !out.stdout.contains("MIIEv"));

    let mut cmd = moto.envseal();
    with_refs(&mut cmd);
    let out = run(cmd.args(["check", "--format", "json"]));
    out.expect_code(0);
    let rows: Value = serde_json::from_str(&out.stdout).unwrap();
    let row = |name: &str| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(row("TLS_KEY")["file"], true);
    assert_eq!(row("TLS_KEY")["length"], PEM_KEY.len());
    assert_eq!(row("TOKEN").get("file"), None);

    let out = run(moto.envseal().env("P12", "sm:f/p12").arg("check"));
    out.expect_code(EXIT_RESOLUTION);
    assert!(
        out.stdout.contains("P12\tsm:f/p12\tfailed"),
        "{}",
        out.stdout
    );

    for format in ["shell", "dotenv", "json"] {
        let mut cmd = moto.envseal();
        with_refs(&mut cmd);
        let out = run(cmd.args(["export", "--format", format]));
        out.expect_code(EXIT_RESOLUTION);
        assert!(out.stdout.is_empty(), "{format}: printed {}", out.stdout);
        assert!(
            out.stderr.contains("TLS_KEY") && out.stderr.contains("P12"),
            "{}",
            out.stderr
        );
        assert!(out.stderr.contains("in-memory file"), "{}", out.stderr);
        assert!(!out.stderr.contains(TOKEN), "{}", out.stderr);
    }
}

#[test]
fn policy_is_the_same_with_and_without_file() {
    let moto = Moto::start();
    let refs = [
        ("A", "ssm:/f/tls/key"),
        ("B", "sm:f/tls#CERT"),
        ("C", "s3://cfg-bucket/keystore.jks"),
        ("D", "ssm:/f/maybe?optional"),
    ];
    let policy = |suffix: &str| {
        let mut cmd = moto.envseal();
        for (var, reference) in refs {
            let sep = if reference.contains('?') { "&" } else { "?" };
            let r = if suffix.is_empty() {
                reference.to_owned()
            } else {
                format!("{reference}{sep}{suffix}")
            };
            cmd.env(var, r);
        }
        let out = run(cmd.arg("policy"));
        out.expect_code(0);
        serde_json::from_str::<Value>(&out.stdout).unwrap()
    };
    let plain = policy("");
    assert!(plain.to_string().contains("ssm:GetParameter"), "{plain}");
    assert_eq!(policy("file"), plain);
}
