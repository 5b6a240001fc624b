//! envseal as a container sees it: a static binary in an otherwise empty root
//! (`FROM scratch`), service endpoints by hostname, and HTTPS trust without
//! any CA files from the image.
//!
//! They run the binary users ship: `target/release/envseal`, which
//! `cargo build --release` links statically on Linux gnu (`.cargo/`).
//! `scripts/test` builds it before the tests; a missing or stale one fails
//! here with that hint (cargo's build lock is held while tests run, so a test
//! cannot build it itself). The empty-root tests run it under `chroot`, which
//! needs root, as in CI.

mod support;

use std::collections::BTreeSet;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::json;
use support::{c_app, envseal_bare, fnv1a, run, Moto, Run};

/// The release envseal, checked once per test binary: present, newer than
/// every source file, and statically linked.
fn static_envseal() -> &'static Path {
    static CHECKED: OnceLock<PathBuf> = OnceLock::new();
    CHECKED.get_or_init(|| {
        const HINT: &str = "run `cargo build --release` first (scripts/test does)";
        // target/<profile>/envseal → target/release/envseal, wherever the
        // target directory is.
        let debug = Path::new(env!("CARGO_BIN_EXE_envseal"));
        let release = debug.parent().unwrap().parent().unwrap().join("release/envseal");
        let built = std::fs::metadata(&release)
            .and_then(|m| m.modified())
            .unwrap_or_else(|e| panic!("{}: {e}: {HINT}", release.display()));
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut newest = (std::time::SystemTime::UNIX_EPOCH, PathBuf::new());
        let mut stack = vec![manifest.join("src"), manifest.join("Cargo.toml"), manifest.join("Cargo.lock")];
        while let Some(path) = stack.pop() {
            if path.is_dir() {
                stack.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            } else if let Ok(modified) = std::fs::metadata(&path).and_then(|m| m.modified()) {
                if modified > newest.0 {
                    newest = (modified, path);
                }
            }
        }
        assert!(
            built >= newest.0,
            "{} is older than {}: {HINT}",
            release.display(),
            newest.1.display()
        );
        assert!(
            is_static(&release),
            "{} is dynamically linked (it has a PT_INTERP program header): build it with `cargo build --release` on Linux gnu, which links it statically (.cargo/config.toml)",
            release.display()
        );
        release
    })
}

/// True when the ELF executable has no program interpreter (`PT_INTERP`),
/// i.e. the kernel runs it without a dynamic loader: what `file` reports as
/// "statically linked" or "static-pie linked".
fn is_static(path: &Path) -> bool {
    let elf = std::fs::read(path).unwrap();
    assert_eq!(
        &elf[..4],
        b"\x7fELF",
        "{} is not an ELF file",
        path.display()
    );
    assert_eq!(elf[4], 2, "64-bit ELF expected");
    let u16_at = |o: usize| u16::from_le_bytes(elf[o..o + 2].try_into().unwrap()) as usize;
    let u64_at = |o: usize| u64::from_le_bytes(elf[o..o + 8].try_into().unwrap()) as usize;
    let (phoff, phentsize, phnum) = (u64_at(0x20), u16_at(0x36), u16_at(0x38));
    const PT_INTERP: u32 = 3;
    !(0..phnum).any(|i| {
        let at = phoff + i * phentsize;
        u32::from_le_bytes(elf[at..at + 4].try_into().unwrap()) == PT_INTERP
    })
}

#[test]
fn cargo_build_release_makes_a_static_executable() {
    // The product is the static binary: `cargo build --release` must make it,
    // with no separate build command (static_envseal asserts it).
    let release = static_envseal();
    // And the dynamic-loader check is real: a dynamically linked program fails it.
    assert!(!is_static(&c_app("printenv", false)));
    assert!(is_static(&c_app("printenv", true)));
    assert!(is_static(release));
}

fn copy_executable(from: &Path, to: &Path) {
    std::fs::copy(from, to).unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A root directory holding only `/envseal` (static), `/app` (a static C
/// program that prints its environment), `/etc/hosts` naming `moto.internal`,
/// and the `extra` files given.
fn empty_root(name: &str, extra: &[(&str, &[u8])]) -> PathBuf {
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("root-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("etc")).unwrap();
    copy_executable(static_envseal(), &root.join("envseal"));
    copy_executable(&c_app("printenv", true), &root.join("app"));
    std::fs::write(
        root.join("etc/hosts"),
        "127.0.0.1 localhost moto.internal\n",
    )
    .unwrap();
    for (path, bytes) in extra {
        std::fs::write(root.join(path), bytes).unwrap();
    }
    root
}

/// Every file and directory under `root`, relative.
fn tree(root: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            out.insert(path.strip_prefix(root).unwrap().display().to_string());
            if path.is_dir() {
                stack.push(path);
            }
        }
    }
    out
}

/// `chroot ROOT /envseal ARGS…` with only the given environment.
fn chroot(root: &Path, env: &[(&str, String)], args: &[&str]) -> Run {
    let chroot = ["/usr/sbin/chroot", "/usr/bin/chroot", "/sbin/chroot"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("chroot(8) not found");
    let mut cmd = Command::new(chroot);
    cmd.env_clear().arg(root).arg("/envseal").args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    run(&mut cmd)
}

fn aws_env(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL_SSM", endpoint.to_owned()),
        ("AWS_ENDPOINT_URL_SECRETS_MANAGER", endpoint.to_owned()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
    ]
}

#[test]
fn static_envseal_resolves_secrets_in_an_empty_root() {
    let moto = Moto::start();
    moto.calls(json!([
        {"service": "ssm", "method": "put_parameter",
         "args": {"Name": "/c/db/password", "Value": "pw-from-ssm", "Type": "SecureString"}},
        {"service": "ssm", "method": "put_parameter",
         "args": {"Name": "/c/bundle/api_url", "Value": "https://api.example", "Type": "String"}},
        {"service": "secretsmanager", "method": "create_secret",
         "args": {"Name": "c/api", "SecretString": "{\"TOKEN\": \"tok-from-sm\"}"}},
    ]));
    let root = empty_root("moto", &[]);
    let before = tree(&root);
    assert_eq!(
        before,
        BTreeSet::from(["app", "envseal", "etc", "etc/hosts"].map(String::from)),
        "the root holds more than it should"
    );
    let mut env = aws_env(&format!("http://moto.internal:{}", moto.port));
    env.push(("DB_PASSWORD", "ssm:/c/db/password".into()));
    env.push(("API_TOKEN", "sm:c/api#TOKEN".into()));
    env.push(("ENVSEAL_FROM", "ssm:/c/bundle/".into()));
    env.push(("PLAIN", "as-is".into()));
    for init in [false, true] {
        let args: &[&str] = if init {
            &["exec", "--init", "--", "/app"]
        } else {
            &["exec", "--", "/app"]
        };
        let out = chroot(&root, &env, args);
        out.expect_code(0);
        let vars = out.env();
        assert_eq!(vars["DB_PASSWORD"], "pw-from-ssm", "init={init}");
        assert_eq!(vars["API_TOKEN"], "tok-from-sm");
        assert_eq!(vars["API_URL"], "https://api.example");
        assert_eq!(vars["PLAIN"], "as-is");
        assert!(!vars.contains_key("ENVSEAL_FROM"));
    }
    assert_eq!(tree(&root), before, "envseal wrote into the root");
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn static_envseal_fails_closed_in_an_empty_root() {
    let moto = Moto::start();
    let root = empty_root("missing", &[]);
    let mut env = aws_env(&format!("http://moto.internal:{}", moto.port));
    env.push(("DB_PASSWORD", "ssm:/c/not/there".into()));
    let out = chroot(&root, &env, &["exec", "--", "/app"]);
    out.expect_code(111);
    assert!(out.stdout.is_empty(), "the app ran: {}", out.stdout);
    assert!(out.stderr.contains("DB_PASSWORD"), "{}", out.stderr);
    std::fs::remove_dir_all(&root).unwrap();
}

/// Regression: a DNS server that never answers (a common VPC
/// misconfiguration) used to hold envseal past `--timeout`: the lookup runs
/// on a blocking thread, and dropping the runtime waited for it until the
/// resolver's own timeout (here 30 s).
#[test]
fn a_dns_server_that_never_answers_fails_within_the_deadline() {
    // A "name server" on a loopback address of its own that reads queries
    // and never answers.
    let blackhole = std::net::UdpSocket::bind("127.0.0.77:53").expect("bind 127.0.0.77:53");
    let root = empty_root(
        "dns",
        &[(
            "etc/resolv.conf",
            b"nameserver 127.0.0.77\noptions timeout:30 attempts:1\n",
        )],
    );
    let mut env = aws_env("http://ssm.unanswered.example:8080");
    env.push(("DB_PASSWORD", "ssm:/c/db/password".into()));
    let started = Instant::now();
    let out = chroot(&root, &env, &["exec", "--timeout", "2s", "--", "/app"]);
    let elapsed = started.elapsed();
    out.expect_code(111);
    assert!(out.stdout.is_empty(), "the app ran: {}", out.stdout);
    assert!(out.stderr.contains("DB_PASSWORD"), "{}", out.stderr);
    assert!(out.stderr.contains("2s deadline"), "{}", out.stderr);
    // 2 s deadline; far below the resolver's 30 s.
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
    let mut buf = [0u8; 512];
    blackhole.set_nonblocking(true).unwrap();
    assert!(
        blackhole.recv_from(&mut buf).is_ok(),
        "no DNS query reached the blackhole: the test proves nothing"
    );
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn static_envseal_installs_itself_without_proc() {
    // No /proc in the chroot: install falls back to argv[0].
    let root = empty_root("install", &[]);
    let out = chroot(&root, &[], &["install", "/shared/"]);
    out.expect_code(0);
    let copy = std::fs::read(root.join("shared/envseal")).unwrap();
    assert!(copy == std::fs::read(static_envseal()).unwrap());
    let mode = root
        .join("shared/envseal")
        .metadata()
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o755);
    std::fs::remove_dir_all(&root).unwrap();
}

// ------------------------------------------------------------------ ?file

/// `unshare --fork --pid --mount-proc=ROOT/proc chroot ROOT /envseal ARGS…`:
/// what a container runtime gives a `FROM scratch` image — its own PID
/// namespace (envseal is PID 1) and /proc mounted — with nothing else in the
/// root. The mount goes with the namespace when envseal exits.
fn chroot_with_proc(root: &Path, env: &[(&str, String)], args: &[&str]) -> Run {
    let chroot = ["/usr/sbin/chroot", "/usr/bin/chroot", "/sbin/chroot"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("chroot(8) not found");
    let mut cmd = Command::new("unshare");
    cmd.env_clear()
        .args(["--fork", "--pid"])
        .arg(format!("--mount-proc={}", root.join("proc").display()))
        .arg(chroot)
        .arg(root)
        .arg("/envseal")
        .args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    run(&mut cmd)
}

#[test]
fn static_envseal_makes_in_memory_files_in_an_empty_root() {
    const KEY: &str = "-----BEGIN PRIVATE KEY-----\nin-root-Yk29\n-----END PRIVATE KEY-----\n";
    let moto = Moto::start();
    moto.calls(json!([
        {"service": "ssm", "method": "put_parameter",
         "args": {"Name": "/c/tls/key", "Value": KEY, "Type": "SecureString"}},
    ]));
    let root = empty_root("files", &[]);
    copy_executable(&c_app("memfile", true), &root.join("memfile"));
    std::fs::create_dir(root.join("proc")).unwrap();
    let before = tree(&root);
    let mut env = aws_env(&format!("http://moto.internal:{}", moto.port));
    env.push(("TLS_KEY", "ssm:/c/tls/key?file".into()));
    for init in [false, true] {
        let args: &[&str] = if init {
            &["exec", "--init", "--", "/memfile", "TLS_KEY"]
        } else {
            &["exec", "--", "/memfile", "TLS_KEY"]
        };
        let out = chroot_with_proc(&root, &env, args);
        out.expect_code(0);
        let line = out.stdout.trim();
        assert!(
            line.starts_with("TLS_KEY path=/proc/self/fd/"),
            "init={init}: {line}"
        );
        let expected = format!(
            "len={} fnv={} fd=same wronly=ok/EPERM rdwr=ok/EPERM trunc=EPERM",
            KEY.len(),
            fnv1a(KEY.as_bytes())
        );
        assert!(line.ends_with(&expected), "init={init}: {line}");
        assert!(!out.stderr.contains("in-root-Yk29"), "{}", out.stderr);
    }
    // Nothing written into the root (the procfs mount went with the namespace).
    assert_eq!(tree(&root), before, "envseal wrote into the root");

    // A root without /proc mounted: the application could not open the
    // path, so envseal fails closed before starting it.
    let out = chroot(&root, &env, &["exec", "--", "/memfile", "TLS_KEY"]);
    out.expect_code(111);
    assert!(out.stdout.is_empty(), "the app ran: {}", out.stdout);
    assert!(out.stderr.contains("TLS_KEY"), "{}", out.stderr);
    assert!(out.stderr.contains("/proc"), "{}", out.stderr);
    std::fs::remove_dir_all(&root).unwrap();
}

// ---------------------------------------------------------------------- TLS

/// A test CA and a server certificate it signed for localhost,
/// moto.internal and 127.0.0.1; plus an unrelated CA.
struct Certs {
    dir: PathBuf,
}

impl Certs {
    fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }
    fn other_ca(&self) -> PathBuf {
        self.dir.join("other-ca.pem")
    }
}

/// `openssl ARGS` (split on whitespace) in `dir`.
fn openssl(dir: &Path, args: &str) {
    let args: Vec<&str> = args.split_whitespace().collect();
    let out = run(Command::new("openssl").current_dir(dir).args(&args));
    assert_eq!(
        out.code,
        Some(0),
        "openssl {args:?} failed (is openssl installed?):\n{}",
        out.stderr
    );
}

fn certs() -> &'static Certs {
    static CERTS: OnceLock<Certs> = OnceLock::new();
    CERTS.get_or_init(|| {
        let dir =
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("tls-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        const EC: &str = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
        for name in ["ca", "other-ca"] {
            openssl(
                &dir,
                &format!(
                    "req -x509 {EC} -days 2 -subj /CN=envseal-test-{name} \
                     -keyout {name}.key -out {name}.pem \
                     -addext basicConstraints=critical,CA:TRUE \
                     -addext keyUsage=critical,keyCertSign,cRLSign"
                ),
            );
        }
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=DNS:localhost,DNS:moto.internal,IP:127.0.0.1\n\
             basicConstraints=CA:FALSE\n\
             keyUsage=critical,digitalSignature\n\
             extendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        openssl(
            &dir,
            &format!("req {EC} -subj /CN=localhost -keyout server.key -out server.csr"),
        );
        openssl(
            &dir,
            "x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
             -extfile server.ext -out server.pem",
        );
        Certs { dir }
    })
}

/// `moto_server` serving HTTPS with the test server certificate; killed on drop.
struct TlsMoto {
    port: u16,
    child: Child,
}

impl Drop for TlsMoto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl TlsMoto {
    fn start() -> TlsMoto {
        let certs = certs();
        for _attempt in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let mut child = Command::new("moto_server")
                .args(["-H", "127.0.0.1", "-p", &port.to_string(), "-c"])
                .arg(certs.dir.join("server.pem"))
                .arg("-k")
                .arg(certs.dir.join("server.key"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("moto_server: {e}: {}", support::MOTO_INSTALL_HINT));
            let deadline = Instant::now() + Duration::from_secs(20);
            let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
            loop {
                if child.try_wait().unwrap().is_some() {
                    break; // port taken: try another
                }
                if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                    return TlsMoto { port, child };
                }
                assert!(Instant::now() < deadline, "moto_server --ssl did not start");
                thread::sleep(Duration::from_millis(100));
            }
        }
        panic!("moto_server --ssl did not start on any port");
    }

    /// Seeds one SSM parameter over HTTPS (boto3, trusting the test CA).
    fn put_parameter(&self, name: &str, value: &str) {
        const SCRIPT: &str = r#"
import os, sys
for k in list(os.environ):
    if k.startswith("AWS_"):
        del os.environ[k]
import boto3
endpoint, ca, name, value = sys.argv[1:]
ssm = boto3.client("ssm", endpoint_url=endpoint, verify=ca, region_name="us-east-1",
                   aws_access_key_id="testing", aws_secret_access_key="testing")
ssm.put_parameter(Name=name, Value=value, Type="SecureString")
"#;
        let out = run(Command::new("python3")
            .args(["-c", SCRIPT])
            .arg(format!("https://127.0.0.1:{}", self.port))
            .arg(certs().ca())
            .args([name, value]));
        assert_eq!(
            out.code,
            Some(0),
            "seeding over TLS failed:\n{}",
            out.stderr
        );
    }
}

/// envseal (the test build) against the TLS moto, with `DB=ssm:/tls/db`.
fn envseal_tls(moto: &TlsMoto, host: &str) -> Command {
    let mut cmd = envseal_bare();
    cmd.env("AWS_ENDPOINT_URL", format!("https://{host}:{}", moto.port))
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_MAX_ATTEMPTS", "1")
        .env("DB", "ssm:/tls/db")
        .args(["exec", "--", "/usr/bin/env"]);
    cmd
}

#[test]
fn https_trusts_aws_ca_bundle_or_ssl_cert_file() {
    let moto = TlsMoto::start();
    moto.put_parameter("/tls/db", "over-tls");
    let ca = certs().ca();
    for host in ["127.0.0.1", "localhost"] {
        let out = run(envseal_tls(&moto, host).env("AWS_CA_BUNDLE", &ca));
        out.expect_code(0);
        assert_eq!(out.env()["DB"], "over-tls");
        assert_eq!(out.env()["AWS_CA_BUNDLE"], ca.display().to_string());
    }
    let out = run(envseal_tls(&moto, "127.0.0.1").env("SSL_CERT_FILE", &ca));
    out.expect_code(0);
    assert_eq!(out.env()["DB"], "over-tls");
}

#[test]
fn https_fails_closed_without_a_trusted_ca() {
    let moto = TlsMoto::start();
    moto.put_parameter("/tls/db", "over-tls");
    let certs = certs();
    // Compiled-in roots only: the test CA is not among them.
    let out = run(&mut envseal_tls(&moto, "127.0.0.1"));
    out.expect_code(111);
    assert!(!out.stdout.contains("over-tls"), "{}", out.stdout);
    assert!(out.stderr.contains("DB: ssm:/tls/db"), "{}", out.stderr);
    assert!(
        out.stderr.to_lowercase().contains("certificate"),
        "the reason should name the certificate: {}",
        out.stderr
    );
    // Another CA; and AWS_CA_BUNDLE wins over SSL_CERT_FILE.
    let out = run(envseal_tls(&moto, "127.0.0.1")
        .env("AWS_CA_BUNDLE", certs.other_ca())
        .env("SSL_CERT_FILE", certs.ca()));
    out.expect_code(111);
    // A bundle that cannot be read is an error, not a fallback to other roots.
    let out = run(envseal_tls(&moto, "127.0.0.1").env("AWS_CA_BUNDLE", "/nonexistent/ca.pem"));
    out.expect_code(111);
    assert!(
        out.stderr
            .contains("AWS_CA_BUNDLE=/nonexistent/ca.pem cannot be read"),
        "{}",
        out.stderr
    );
    // A file without certificates (the server key) likewise.
    let key = certs.dir.join("server.key");
    let out = run(envseal_tls(&moto, "127.0.0.1").env("SSL_CERT_FILE", &key));
    out.expect_code(111);
    assert!(out.stderr.contains("no PEM certificate"), "{}", out.stderr);
}

#[test]
fn static_envseal_over_https_in_an_empty_root() {
    let moto = TlsMoto::start();
    moto.put_parameter("/tls/db", "over-tls-scratch");
    let ca = std::fs::read(certs().ca()).unwrap();
    let root = empty_root("tls", &[("ca.pem", &ca)]);
    let mut env = aws_env(&format!("https://moto.internal:{}", moto.port));
    env.push(("DB", "ssm:/tls/db".into()));
    env.push(("AWS_MAX_ATTEMPTS", "1".into()));
    let out = chroot(&root, &env, &["exec", "--", "/app"]);
    out.expect_code(111); // no CA files in the root, the test CA is not compiled in
    env.push(("AWS_CA_BUNDLE", "/ca.pem".into()));
    let out = chroot(&root, &env, &["exec", "--", "/app"]);
    out.expect_code(0);
    assert_eq!(out.env()["DB"], "over-tls-scratch");
    std::fs::remove_dir_all(&root).unwrap();
}
