//! Test support shared by envseal's integration tests (`mod support;`).
//!
//! - [`Moto`]: a private `moto_server` on a free loopback port, killed on drop,
//!   plus boto3 calls against it through `tests/support/py/aws.py`.
//! - [`Moto::envseal`] / [`envseal_bare`]: the binary under test with a cleared
//!   environment.
//! - [`run`]: run a command with a watchdog and capture its output.
//! - [`seed_ssm`], [`create_secrets`], [`s3`]: seeding moto the way the
//!   tests of several files need it.
//! - [`Proxy`] (`py/proxy.py`, the fault-injecting proxy) and [`CredServer`]
//!   (`py/credserver.py`, container and IAM Identity Center credentials).
//!
//! The Python helpers live in `py/`, with the one `requirements.txt` that
//! `scripts/test` installs into `.venv/`.
//!
//! Only std and serde_json are used.
#![allow(dead_code)]

pub mod s3;

use std::collections::{BTreeMap, VecDeque};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// How `moto_server` is installed when missing (also printed by the panic).
pub const MOTO_INSTALL_HINT: &str =
    "run the tests with scripts/test, which installs tests/support/py/requirements.txt (moto[server], boto3) into .venv/ and puts it on PATH";

/// Path of the boto3 helper script.
pub const AWS_PY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/py/aws.py");

/// moto's default account id.
pub const ACCOUNT_ID: &str = "123456789012";

/// How long [`run`] lets a command run before killing it.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(60);

const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);
const LOG_TAIL_BYTES: usize = 16 * 1024;

/// A `moto_server` process on `127.0.0.1:PORT`, killed (and reaped) on drop.
pub struct Moto {
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    pub port: u16,
    child: Child,
    log: Arc<Mutex<VecDeque<u8>>>,
    iam_enforced: AtomicBool,
}

impl Moto {
    /// Start a fresh moto server and wait until it answers HTTP.
    ///
    /// Panics (never skips) when `moto_server` is not on PATH.
    pub fn start() -> Moto {
        let exe = find_on_path("moto_server")
            .unwrap_or_else(|| panic!("moto_server not found: {MOTO_INSTALL_HINT}"));
        let mut last_error = String::new();
        // The port is free when we pick it but another process (a parallel
        // test) may grab it before moto binds: retry with a new port then.
        for _attempt in 0..5 {
            let port = free_port();
            let mut child = Command::new(&exe)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot spawn {}: {e}", exe.display()));
            let log = Arc::new(Mutex::new(VecDeque::new()));
            drain(child.stdout.take().unwrap(), Arc::clone(&log));
            drain(child.stderr.take().unwrap(), Arc::clone(&log));
            let mut moto = Moto {
                endpoint: format!("http://127.0.0.1:{port}"),
                port,
                child,
                log,
                iam_enforced: AtomicBool::new(false),
            };
            match moto.wait_ready() {
                Ok(()) => return moto,
                Err(e) => last_error = e, // dropping `moto` kills the process
            }
        }
        panic!("moto_server did not start: {last_error}");
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            // Only trust an answer while *our* process is alive: if it died
            // (port taken), whatever answers on the port is someone else.
            if let Ok(Some(status)) = self.child.try_wait() {
                thread::sleep(Duration::from_millis(50)); // let the drain threads finish
                return Err(format!(
                    "moto_server exited with {status} on port {}:\n{}",
                    self.port,
                    self.log_tail()
                ));
            }
            // A unique query string: werkzeug logs each request line on
            // stderr, which proves that the answer came from our process.
            static PROBES: AtomicU64 = AtomicU64::new(0);
            let n = PROBES.fetch_add(1, Ordering::SeqCst);
            let probe = format!("/moto-api/?probe={}-{}-{n}", std::process::id(), self.port);
            if http_request(self.port, "GET", &probe, None, b"", Duration::from_secs(2)).is_ok() {
                let seen = Instant::now() + Duration::from_secs(2);
                while Instant::now() < seen {
                    if self.log_tail().contains(&probe) {
                        return Ok(());
                    }
                    if let Ok(Some(_)) = self.child.try_wait() {
                        break;
                    }
                    thread::sleep(Duration::from_millis(20));
                }
                // Alive but the request log is silent (quieter moto?): accept.
                if let Ok(None) = self.child.try_wait() {
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "moto_server on port {} did not answer within {:?}:\n{}",
                    self.port,
                    STARTUP_TIMEOUT,
                    self.log_tail()
                ));
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// The last lines moto wrote (request log, tracebacks) — for diagnostics.
    pub fn log_tail(&self) -> String {
        let log = self.log.lock().unwrap();
        let bytes: Vec<u8> = log.iter().copied().collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// One boto3 call: `boto3.client(service).method(**args)`. Panics on error.
    pub fn call(&self, service: &str, method: &str, args: Value) -> Value {
        self.calls(json!([{"service": service, "method": method, "args": args}]))
            .pop()
            .expect("aws.py returned no result")
    }

    /// One boto3 call; `Err("Code: message")` instead of a panic on an AWS error.
    pub fn try_call(&self, service: &str, method: &str, args: Value) -> Result<Value, String> {
        let result = self
            .calls(json!([{
                "service": service, "method": method, "args": args, "allow_error": true
            }]))
            .pop()
            .expect("aws.py returned no result");
        match result.get("$error") {
            Some(e) => Err(format!(
                "{}: {} (HTTP {})",
                e["code"].as_str().unwrap_or(""),
                e["message"].as_str().unwrap_or(""),
                e["status"]
            )),
            None => Ok(result),
        }
    }

    /// Several boto3 calls in one python process (much faster than many
    /// [`Moto::call`]s). `ops` is an array of
    /// `{"service", "method", "args", ["region"], ["credentials": {"key", "secret"}], ["allow_error"]}`.
    /// In args `{"$b64": "..."}` becomes bytes; bytes in results come back the same way.
    pub fn calls(&self, ops: Value) -> Vec<Value> {
        assert!(ops.is_array(), "Moto::calls takes a JSON array of ops");
        let input = serde_json::to_vec(&ops).unwrap();
        let mut cmd = Command::new("python3");
        cmd.arg(AWS_PY).arg(&self.endpoint);
        let out = run_with_stdin(&mut cmd, &input);
        if out.code != Some(0) {
            panic!(
                "aws.py failed (exit {:?}) for {}:\n{}{}",
                out.code,
                summarize_ops(&ops),
                out.stderr,
                if out.stderr.contains("No module named") {
                    format!("\nhint: {MOTO_INSTALL_HINT}")
                } else {
                    String::new()
                }
            );
        }
        match serde_json::from_str(&out.stdout) {
            Ok(Value::Array(results)) => results,
            _ => panic!(
                "aws.py printed something that is not a JSON array:\n{}",
                out.stdout
            ),
        }
    }

    /// Turn IAM enforcement on: every later request must be signed by a
    /// known IAM user whose policies allow the action.
    pub fn enforce_iam(&self) {
        self.reset_auth("0");
        self.iam_enforced.store(true, Ordering::SeqCst);
    }

    /// Turn IAM enforcement off again (moto's default).
    pub fn relax_iam(&self) {
        self.reset_auth("inf");
        self.iam_enforced.store(false, Ordering::SeqCst);
    }

    fn reset_auth(&self, count: &str) {
        let (status, body) = http_request(
            self.port,
            "POST",
            "/moto-api/reset-auth",
            Some("text/plain"),
            count.as_bytes(),
            Duration::from_secs(10),
        )
        .unwrap_or_else(|e| panic!("POST /moto-api/reset-auth: {e}"));
        assert_eq!(status, 200, "POST /moto-api/reset-auth {count}: {body}");
    }

    /// Create an IAM user with one managed policy and an access key; returns
    /// `(access_key_id, secret_access_key)`. `policy` is a policy document
    /// (object, or a JSON string). Works with IAM enforcement on or off
    /// (enforcement is lifted for the duration of the IAM calls).
    pub fn create_user_with_policy(&self, user: &str, policy: Value) -> (String, String) {
        let was_enforced = self.iam_enforced.load(Ordering::SeqCst);
        if was_enforced {
            self.relax_iam();
        }
        let document = match policy {
            Value::String(s) => s,
            other => other.to_string(),
        };
        let r = self.calls(json!([
            {"service": "iam", "method": "create_user", "args": {"UserName": user}},
            {"service": "iam", "method": "create_policy",
             "args": {"PolicyName": format!("{user}-policy"), "PolicyDocument": document}},
            {"service": "iam", "method": "create_access_key", "args": {"UserName": user}},
        ]));
        let policy_arn = r[1]["Policy"]["Arn"]
            .as_str()
            .expect("policy ARN")
            .to_owned();
        self.call(
            "iam",
            "attach_user_policy",
            json!({"UserName": user, "PolicyArn": policy_arn}),
        );
        let key = &r[2]["AccessKey"];
        let id = key["AccessKeyId"].as_str().expect("AccessKeyId").to_owned();
        let secret = key["SecretAccessKey"]
            .as_str()
            .expect("SecretAccessKey")
            .to_owned();
        if was_enforced {
            self.enforce_iam();
        }
        (id, secret)
    }

    /// The envseal binary with a cleared environment pointing at this moto:
    /// PATH, AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID,
    /// AWS_SECRET_ACCESS_KEY, AWS_EC2_METADATA_DISABLED.
    pub fn envseal(&self) -> Command {
        let mut cmd = envseal_bare();
        cmd.env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_EC2_METADATA_DISABLED", "true");
        cmd
    }

    /// Like [`Moto::envseal`] but signed as the given IAM user.
    pub fn envseal_as(&self, key: &(String, String)) -> Command {
        let mut cmd = self.envseal();
        cmd.env("AWS_ACCESS_KEY_ID", &key.0)
            .env("AWS_SECRET_ACCESS_KEY", &key.1);
        cmd
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The envseal binary with only `PATH=/usr/bin:/bin` in its environment.
pub fn envseal_bare() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_envseal"));
    cmd.env_clear().env("PATH", "/usr/bin:/bin");
    cmd
}

/// Outcome of [`run`].
#[derive(Debug, Clone)]
pub struct Run {
    /// Exit code; `None` when killed by a signal (see `signal`).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// The signal that killed the process, if any.
    pub signal: Option<i32>,
}

impl Run {
    /// Panic with the full output unless the exit code is `code`.
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code,
            Some(code),
            "unexpected exit status\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// `NAME=VALUE` lines of stdout (see [`env_lines`]).
    pub fn env(&self) -> BTreeMap<String, String> {
        env_lines(&self.stdout)
    }
}

/// What [`exec_marked`]'s application prints before its environment.
pub const APP_STARTED: &str = "APP-STARTED";

/// `envseal exec` of `cmd` with an application that prints [`APP_STARTED`]
/// and then its environment (`Run::env` reads it).
pub fn exec_marked(cmd: &mut Command) -> Run {
    run(cmd.args([
        "exec",
        "--",
        "/bin/sh",
        "-c",
        &format!("echo {APP_STARTED}; /usr/bin/env"),
    ]))
}

/// Run `cmd` with stdin from /dev/null, capturing stdout and stderr.
/// Kills it and panics after [`RUN_TIMEOUT`].
pub fn run(cmd: &mut Command) -> Run {
    run_inner(cmd, None, RUN_TIMEOUT)
}

/// Like [`run`], feeding `input` on stdin.
pub fn run_with_stdin(cmd: &mut Command, input: &[u8]) -> Run {
    run_inner(cmd, Some(input), RUN_TIMEOUT)
}

/// Like [`run`] with another watchdog limit.
pub fn run_timeout(cmd: &mut Command, timeout: Duration) -> Run {
    run_inner(cmd, None, timeout)
}

fn run_inner(cmd: &mut Command, input: Option<&[u8]>, timeout: Duration) -> Run {
    let deadline = Instant::now() + timeout;
    let mut child = cmd
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot spawn {cmd:?}: {e}"));
    if let Some(input) = input {
        let mut stdin = child.stdin.take().unwrap();
        let input = input.to_vec();
        // A writer thread, so that a child that does not read cannot block us.
        thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
    }
    let stdout = collect(child.stdout.take().unwrap());
    let stderr = collect(child.stderr.take().unwrap());
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(e) => panic!("waiting for {cmd:?}: {e}"),
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            let out = recv_until(&stdout, Instant::now() + Duration::from_secs(1));
            let err = recv_until(&stderr, Instant::now() + Duration::from_secs(1));
            panic!(
                "{cmd:?} did not finish within {timeout:?}; killed\n--- stdout ---\n{out}\n--- stderr ---\n{err}"
            );
        }
        thread::sleep(Duration::from_millis(5));
    };
    // A grandchild may keep the pipes open: do not wait for EOF forever.
    let grace = Instant::now() + Duration::from_secs(5);
    let stdout = recv_until(&stdout, grace);
    let stderr = recv_until(&stderr, grace);
    Run {
        code: status.code(),
        stdout,
        stderr,
        signal: signal_of(status),
    }
}

fn signal_of(status: ExitStatus) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt;
    status.signal()
}

/// Parse `NAME=VALUE` lines as printed by `/usr/bin/env` (values without
/// newlines; lines without `=` are ignored; a later duplicate wins).
pub fn env_lines(stdout: &str) -> BTreeMap<String, String> {
    stdout
        .lines()
        .filter_map(|line| line.split_once('='))
        .filter(|(name, _)| !name.is_empty())
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect()
}

/// Base64 (standard alphabet, padded) — for `{"$b64": ...}` arguments.
pub fn b64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decode standard base64 (as in `{"$b64": ...}` results). Panics on bad input.
pub fn unb64(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in text
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
    {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => panic!("invalid base64 character {:?}", c as char),
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// `{"$b64": "..."}` for bytes in aws.py arguments.
pub fn bytes_arg(bytes: &[u8]) -> Value {
    json!({ "$b64": b64(bytes) })
}

/// The bytes of a `{"$b64": "..."}` result value. Panics if it is not one.
pub fn bytes_of(value: &Value) -> Vec<u8> {
    let text = value["$b64"]
        .as_str()
        .unwrap_or_else(|| panic!("not a {{\"$b64\": ...}} value: {value}"));
    unb64(text)
}

// ------------------------------------------- seeding and running envseal

/// SecureString parameters in one aws.py run (`Overwrite`, so seeding the
/// same name again makes a new version).
pub fn seed_ssm(moto: &Moto, params: &[(&str, &str)]) {
    let ops: Vec<Value> = params
        .iter()
        .map(|(name, value)| {
            json!({"service": "ssm", "method": "put_parameter",
                   "args": {"Name": name, "Value": value, "Type": "SecureString", "Overwrite": true}})
        })
        .collect();
    moto.calls(Value::Array(ops));
}

/// Creates secrets in one aws.py run; `value` is a SecretString, or bytes
/// (`{"$b64": …}`) for a SecretBinary. Returns the create_secret responses.
pub fn create_secrets(moto: &Moto, secrets: &[(&str, Value)]) -> Vec<Value> {
    let ops: Vec<Value> = secrets
        .iter()
        .map(|(name, value)| {
            let field = if value.is_string() {
                "SecretString"
            } else {
                "SecretBinary"
            };
            json!({"service": "secretsmanager", "method": "create_secret",
                   "args": {"Name": name, field: value}})
        })
        .collect();
    moto.calls(Value::Array(ops))
}

/// PutSecretValue (a new AWSCURRENT, the old one becomes AWSPREVIOUS).
pub fn put_secret_value(moto: &Moto, name: &str, value: &str) -> Value {
    moto.call(
        "secretsmanager",
        "put_secret_value",
        json!({"SecretId": name, "SecretString": value}),
    )
}

/// The reason in the stderr line that reports `variable` with `reference`
/// (`envseal: VAR: REFERENCE: reason (kind)`). Panics when there is none.
pub fn failure_reason(stderr: &str, variable: &str, reference: &str) -> String {
    let prefix = format!("{variable}: {reference}: ");
    stderr
        .lines()
        .find_map(|line| {
            line.find(&prefix)
                .map(|at| line[at + prefix.len()..].to_owned())
        })
        .unwrap_or_else(|| {
            panic!("no failure line for {variable} ({reference}) on stderr:\n{stderr}")
        })
}

/// `cmd` with these variables added.
pub fn with_vars(mut cmd: Command, vars: &[(&str, &str)]) -> Command {
    for (name, value) in vars {
        cmd.env(name, value);
    }
    cmd
}

// ---------------------------------------------------------------- internals

fn find_on_path(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| {
            p.metadata()
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().unwrap().port()
}

fn drain(mut pipe: impl Read + Send + 'static, log: Arc<Mutex<VecDeque<u8>>>) {
    thread::spawn(move || {
        let mut buf = [0u8; 8192];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let mut log = log.lock().unwrap();
                    log.extend(&buf[..n]);
                    let excess = log.len().saturating_sub(LOG_TAIL_BYTES);
                    log.drain(..excess);
                }
            }
        }
    });
}

fn collect(mut pipe: impl Read + Send + 'static) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        let _ = tx.send(buf);
    });
    rx
}

fn recv_until(rx: &mpsc::Receiver<Vec<u8>>, deadline: Instant) -> String {
    let wait = deadline.saturating_duration_since(Instant::now());
    match rx.recv_timeout(wait) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(_) => String::from("<output still open: a child process kept the pipe>"),
    }
}

/// Minimal HTTP/1.1 client (Connection: close). Returns (status, body).
/// `GET path` on a local helper server, answered with a JSON array.
fn get_json_array(port: u16, path: &str) -> Vec<Value> {
    let (status, body) = http_request(port, "GET", path, None, b"", Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    assert_eq!(status, 200, "GET {path}: {body}");
    match serde_json::from_str(&body) {
        Ok(Value::Array(requests)) => requests,
        _ => panic!("GET {path}: not a JSON array: {body}"),
    }
}

fn http_request(
    port: u16,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: &[u8],
    timeout: Duration,
) -> Result<(u16, String), String> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(ct) = content_type {
        request.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    request.push_str("\r\n");
    stream
        .write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    stream.write_all(body).map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .lines()
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("not an HTTP response: {head:?}"))?;
    Ok((status, body.to_owned()))
}

fn summarize_ops(ops: &Value) -> String {
    ops.as_array()
        .map(|ops| {
            ops.iter()
                .map(|op| {
                    format!(
                        "{}.{}",
                        op["service"].as_str().unwrap_or("?"),
                        op["method"].as_str().unwrap_or("?")
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

/// Compile `tests/apps/NAME.c` with gcc (`-static` when `static_link`) into
/// cargo's scratch directory for integration tests; returns the executable.
/// Recompiled only when the source is newer; safe to call from parallel tests.
pub fn c_app(name: &str, static_link: bool) -> PathBuf {
    let source = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/apps")
        .join(format!("{name}.c"));
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("apps");
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join(if static_link {
        format!("{name}-static")
    } else {
        name.to_owned()
    });
    let modified = |p: &PathBuf| p.metadata().and_then(|m| m.modified()).ok();
    if matches!((modified(&out), modified(&source)), (Some(o), Some(s)) if o >= s) {
        return out;
    }
    static BUILDS: AtomicU64 = AtomicU64::new(0);
    let temp = dir.join(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        BUILDS.fetch_add(1, Ordering::SeqCst)
    ));
    let mut cmd = Command::new("gcc");
    cmd.args(["-O1", "-Wall", "-o"]).arg(&temp).arg(&source);
    if static_link {
        cmd.arg("-static");
    }
    let built = run(&mut cmd);
    assert_eq!(
        built.code,
        Some(0),
        "gcc failed for {}:\n{}",
        source.display(),
        built.stderr
    );
    std::fs::rename(&temp, &out).unwrap();
    out
}

/// `python3 SCRIPT ARGS…`, a local server that prints its port as the first
/// line on stdout; returns the process, that port and its stderr (kept in
/// a ring for failure messages). Panics with the stderr when no port comes.
fn spawn_py_server(script: &str, args: &[&str]) -> (Child, u16, Arc<Mutex<VecDeque<u8>>>) {
    use std::io::BufRead;
    let mut child = Command::new("python3")
        .arg(script)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot spawn python3 {script}: {e}"));
    let log = Arc::new(Mutex::new(VecDeque::new()));
    drain(child.stderr.take().unwrap(), Arc::clone(&log));
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut line = String::new();
        let _ = stdout.read_line(&mut line);
        let _ = tx.send(line);
        // Keep reading so that the server never blocks on a full pipe.
        let mut sink = Vec::new();
        let _ = stdout.read_to_end(&mut sink);
    });
    let line = rx.recv_timeout(STARTUP_TIMEOUT).unwrap_or_default();
    match line.trim().parse() {
        Ok(port) => (child, port, log),
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            thread::sleep(Duration::from_millis(50));
            let tail =
                String::from_utf8_lossy(&log.lock().unwrap().iter().copied().collect::<Vec<u8>>())
                    .into_owned();
            panic!("{script} did not print its port (got {line:?}):\n{tail}");
        }
    }
}

// ------------------------------------------------------------ fault proxy

/// Path of the fault-injecting proxy script.
pub const PROXY_PY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/py/proxy.py");

/// `tests/support/py/proxy.py` on a free loopback port, in front of `upstream`
/// (a moto endpoint), killed (and reaped) on drop. Seed moto directly; point
/// envseal at [`Proxy::endpoint`] (see [`Proxy::envseal`]).
pub struct Proxy {
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    pub port: u16,
    child: Child,
    log: Arc<Mutex<VecDeque<u8>>>,
}

impl Proxy {
    /// Starts the proxy with no faults and no delay.
    pub fn start(upstream: &str) -> Proxy {
        Proxy::start_with_args(upstream, &[])
    }

    /// Starts the proxy with extra command-line arguments (`--delay-ms 5`,
    /// `--fault throttle:probability=0.3`, …).
    pub fn start_with_args(upstream: &str, args: &[&str]) -> Proxy {
        let mut argv = vec!["--upstream", upstream, "--port", "0"];
        argv.extend_from_slice(args);
        let (child, port, log) = spawn_py_server(PROXY_PY, &argv);
        Proxy {
            endpoint: format!("http://127.0.0.1:{port}"),
            port,
            child,
            log,
        }
    }

    /// Replaces the whole configuration (`POST /__proxy/config`), e.g.
    /// `json!({"seed": 7, "faults": [{"kind": "throttle", "probability": 0.3}]})`.
    /// Counters of the rules restart; statistics are kept.
    pub fn configure(&self, config: Value) {
        let (status, body) = http_request(
            self.port,
            "POST",
            "/__proxy/config",
            Some("application/json"),
            config.to_string().as_bytes(),
            Duration::from_secs(10),
        )
        .unwrap_or_else(|e| panic!("POST /__proxy/config: {e}"));
        assert_eq!(status, 200, "POST /__proxy/config {config}: {body}");
    }

    /// `GET /__proxy/stats`: `{"requests": {TARGET: n}, "faults": {TARGET:
    /// {KIND: n}}, "total": n, "faulted": n}`.
    pub fn stats(&self) -> Value {
        let (status, body) = http_request(
            self.port,
            "GET",
            "/__proxy/stats",
            None,
            b"",
            Duration::from_secs(10),
        )
        .unwrap_or_else(|e| panic!("GET /__proxy/stats: {e}"));
        assert_eq!(status, 200, "GET /__proxy/stats: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("stats are not JSON ({e}): {body}"))
    }

    /// `GET /__proxy/requests`: every request so far as `{"target",
    /// "region"}` (the signing region), STS calls with their `RoleArn`,
    /// `RoleSessionName` and `ExternalId`.
    pub fn requests(&self) -> Vec<Value> {
        get_json_array(self.port, "/__proxy/requests")
    }

    /// Clears the statistics (`POST /__proxy/reset-stats`).
    pub fn reset_stats(&self) {
        let (status, body) = http_request(
            self.port,
            "POST",
            "/__proxy/reset-stats",
            None,
            b"",
            Duration::from_secs(10),
        )
        .unwrap_or_else(|e| panic!("POST /__proxy/reset-stats: {e}"));
        assert_eq!(status, 200, "POST /__proxy/reset-stats: {body}");
    }

    /// What the proxy wrote on stderr (with `--verbose`: one line per request).
    pub fn log_tail(&self) -> String {
        let log = self.log.lock().unwrap();
        let bytes: Vec<u8> = log.iter().copied().collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// [`Moto::envseal`] with `AWS_ENDPOINT_URL` pointing at this proxy.
    pub fn envseal(&self, moto: &Moto) -> Command {
        let mut cmd = moto.envseal();
        cmd.env("AWS_ENDPOINT_URL", &self.endpoint);
        cmd
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The system calls that change the file system, for `strace -e trace=…`
/// (with `open`/`openat`, whose flags say whether they write).
pub const FILE_SYSCALLS: &str = "open,openat,openat2,creat,rename,renameat,renameat2,link,linkat,\
     symlink,symlinkat,mkdir,mkdirat,mknod,mknodat,truncate";

/// The system calls that write through a descriptor, and `memfd_create`,
/// for `strace -y -e trace=…` (with [`FILE_SYSCALLS`]): `-y` shows the file
/// behind each descriptor (`3</memfd:TLS_KEY>(deleted)`, `1<pipe:[…]>`,
/// `4</tmp/x>`), so that [`write_mode_calls`] can tell a write to a file on
/// disk from one to a pipe, a socket, a terminal or an in-memory file.
pub const WRITE_SYSCALLS: &str =
    "write,pwrite64,writev,pwritev,pwritev2,ftruncate,fallocate,memfd_create";

/// Every line of an `strace` log ("PID syscall(args) = result") that opens a
/// file for writing or creates, renames, links or makes one, or (traced with
/// `-y` and [`WRITE_SYSCALLS`]) writes to or truncates a file on disk: the
/// one definition of "nothing written" that the leak and S3 tests check.
///
/// In-memory files (`memfd_create`, `?file`) are not the file system: an
/// open whose result is a memfd (`/proc/self/fd/N` reopened) and writes to a
/// memfd are left out. A write-family call whose descriptor `-y` did not
/// annotate counts as a write (nothing says it is not a file).
pub fn write_mode_calls(trace: &str) -> Vec<String> {
    const MUTATING: [&str; 13] = [
        "creat(",
        "rename(",
        "renameat(",
        "renameat2(",
        "link(",
        "linkat(",
        "symlink(",
        "symlinkat(",
        "mkdir(",
        "mkdirat(",
        "mknod(",
        "mknodat(",
        "truncate(",
    ];
    const WRITES: [&str; 7] = [
        "write(",
        "pwrite64(",
        "writev(",
        "pwritev(",
        "pwritev2(",
        "ftruncate(",
        "fallocate(",
    ];
    const WRITE_FLAGS: [&str; 5] = ["O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC", "O_TMPFILE"];
    trace
        .lines()
        .filter(|line| {
            let call = syscall(line);
            if call.starts_with("open") && WRITE_FLAGS.iter().any(|f| call.contains(f)) {
                // `= 4</memfd:NAME>(deleted)`: a memfd reopened by its path.
                let result = call.rsplit_once(" = ").map(|(_, r)| r).unwrap_or("");
                return !fd_target(result).is_some_and(|t| t.starts_with("/memfd:"));
            }
            if let Some(w) = WRITES.iter().find(|w| call.starts_with(*w)) {
                return match fd_target(&call[w.len()..]) {
                    Some(target) => on_disk(target),
                    None => true,
                };
            }
            MUTATING.iter().any(|m| call.starts_with(m))
        })
        .map(str::to_owned)
        .collect()
}

/// What `strace -y` shows behind the descriptor at the start of `text`
/// (`3</memfd:A>(deleted), …` → `/memfd:A`); `None` without an annotation.
fn fd_target(text: &str) -> Option<&str> {
    let rest = text.trim_start_matches(|c: char| c.is_ascii_digit());
    if rest.len() == text.len() {
        return None;
    }
    let rest = rest.strip_prefix('<')?;
    rest.find('>').map(|end| &rest[..end])
}

/// A descriptor target that is a file on a file system: a path, but not a
/// memfd, `/dev/null` or a terminal.
fn on_disk(target: &str) -> bool {
    const NOT_FILES: [&str; 5] = [
        "/memfd:",
        "/dev/null",
        "/dev/tty",
        "/dev/pts/",
        "/dev/console",
    ];
    target.starts_with('/') && !NOT_FILES.iter().any(|p| target.starts_with(p))
}

/// An `strace -f` line without its leading PID.
fn syscall(line: &str) -> &str {
    line.split_once(' ')
        .map(|(_, rest)| rest.trim_start())
        .unwrap_or(line)
}

/// The lines of an `strace -y` log that write to an in-memory file (`?file`
/// contents): the one place a value may appear in a traced syscall.
pub fn memfd_writes(trace: &str) -> Vec<String> {
    trace
        .lines()
        .filter(|line| {
            let call = syscall(line);
            let Some((name, args)) = call.split_once('(') else {
                return false;
            };
            matches!(
                name,
                "write" | "pwrite64" | "writev" | "pwritev" | "pwritev2"
            ) && fd_target(args).is_some_and(|t| t.starts_with("/memfd:"))
        })
        .map(str::to_owned)
        .collect()
}

// ------------------------------------------------- credentials and IAM

impl Moto {
    /// IAM enforcement on, except for the next `free` requests (moto's
    /// `reset-auth N`). moto 5.2.1 answers an *unsigned* request under
    /// enforcement with HTTP 500 (it looks for an `Authorization` header),
    /// and STS AssumeRoleWithWebIdentity is unsigned by design: with `free`
    /// = 1 that one call goes through and every later one is checked.
    pub fn enforce_iam_after(&self, free: u32) {
        self.reset_auth(&free.to_string());
        self.iam_enforced.store(true, Ordering::SeqCst);
    }

    /// Create an IAM role whose trust policy lets `principal` (an ARN, or
    /// `"*"`) assume it, with one inline policy; returns the role ARN.
    /// Works with IAM enforcement on or off (lifted for the IAM calls).
    pub fn create_role_with_policy(&self, role: &str, principal: &str, policy: Value) -> String {
        let was_enforced = self.iam_enforced.load(Ordering::SeqCst);
        if was_enforced {
            self.relax_iam();
        }
        let trust = json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Principal": {"AWS": principal, "Federated": "arn:aws:iam::123456789012:oidc-provider/oidc.example"},
                "Action": ["sts:AssumeRole", "sts:AssumeRoleWithWebIdentity"],
            }],
        });
        let r = self.calls(json!([
            {"service": "iam", "method": "create_role",
             "args": {"RoleName": role, "AssumeRolePolicyDocument": trust.to_string()}},
            {"service": "iam", "method": "put_role_policy",
             "args": {"RoleName": role, "PolicyName": format!("{role}-policy"),
                      "PolicyDocument": policy.to_string()}},
        ]));
        let arn = r[0]["Role"]["Arn"].as_str().expect("role ARN").to_owned();
        if was_enforced {
            self.enforce_iam();
        }
        arn
    }

    /// Temporary credentials of `role_arn` from moto's STS AssumeRole:
    /// `{"AccessKeyId", "SecretAccessKey", "SessionToken", ...}`. Works
    /// with IAM enforcement on or off (lifted for the call).
    pub fn assume_role(&self, role_arn: &str, session: &str) -> Value {
        let was_enforced = self.iam_enforced.load(Ordering::SeqCst);
        if was_enforced {
            self.relax_iam();
        }
        let r = self.call(
            "sts",
            "assume_role",
            json!({"RoleArn": role_arn, "RoleSessionName": session}),
        );
        if was_enforced {
            self.enforce_iam();
        }
        r["Credentials"].clone()
    }
}

/// Path of the local credentials endpoint script (ECS / EKS Pod Identity
/// container endpoint, IAM Identity Center portal).
pub const CREDSERVER_PY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/support/py/credserver.py"
);

/// `tests/support/py/credserver.py` on a free loopback port, killed (and
/// reaped) on drop. Configure it with [`CredServer::configure`] (secrets go
/// over HTTP, never on a command line); read what it was asked with
/// [`CredServer::requests`].
pub struct CredServer {
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    pub port: u16,
    child: Child,
    log: Arc<Mutex<VecDeque<u8>>>,
}

impl CredServer {
    pub fn start() -> CredServer {
        let (child, port, log) = spawn_py_server(CREDSERVER_PY, &["--port", "0"]);
        CredServer {
            endpoint: format!("http://127.0.0.1:{port}"),
            port,
            child,
            log,
        }
    }

    /// Replaces the configuration (see the script's docstring) and clears
    /// the request log.
    pub fn configure(&self, config: Value) {
        let (status, body) = http_request(
            self.port,
            "POST",
            "/__cred/config",
            Some("application/json"),
            config.to_string().as_bytes(),
            Duration::from_secs(10),
        )
        .unwrap_or_else(|e| panic!("POST /__cred/config: {e}"));
        assert_eq!(status, 200, "POST /__cred/config: {body}");
    }

    /// What it was asked: `[{"method", "path", "shape", "auth", "status"}]`.
    pub fn requests(&self) -> Vec<Value> {
        get_json_array(self.port, "/__cred/requests")
    }

    /// What the script wrote on stderr (tracebacks).
    pub fn log_tail(&self) -> String {
        let log = self.log.lock().unwrap();
        let bytes: Vec<u8> = log.iter().copied().collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl Drop for CredServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// FNV-1a, 64 bits, in hex: what `tests/apps/memfile.c` prints of a file
/// (never its contents).
pub fn fnv1a(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{h:016x}")
}
