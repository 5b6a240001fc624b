//! envseal: a container entrypoint that reads secrets from AWS, puts them into
//! the application's environment in memory, and `execve`s the application.
//!
//! # Layout
//!
//! The data flows one way; one module per step:
//!
//! - `cli`         — the command line as typed (clap)
//! - `config`      — flags + `ENVSEAL_*` → one [`config::Config`]
//! - `reference`   — the reference grammar → [`reference::Reference`] / [`reference::Source`] (pure)
//! - `environment` — which inherited variables are references; naming, precedence,
//!   collisions → the child's environment (pure)
//! - `plan`        — deduplicated [`plan::Request`]s, split per backend
//! - `resolve`     — runs the plan under one deadline on a current-thread runtime
//! - `aws`         — SDK configuration, loaded once and only when needed; clients per region;
//!   `aws/trust`: the TLS roots (`AWS_CA_BUNDLE`, `SSL_CERT_FILE`, else compiled in)
//! - `backend/`    — `ssm`, `secrets_manager`, `s3`, `kms`: AWS calls only, batching and
//!   fallbacks; `s3` also tells envelopes, KMS blobs and plaintext apart
//! - `document/`   — dotenv, JSON and S3 envelope decoding (pure)
//! - `output`      — what `check` and `export` print
//! - `policy`      — the least-privilege IAM policy for the configured references
//! - `s3cmd`       — `push` and `pull` of encrypted documents
//! - `process/`    — `exec` (execve with PATH lookup), `init` (supervisor), `install` (no AWS in here)
//! - `secret`      — the redacting, zeroizing value type
//! - `error`       — the error enum and exit codes

pub mod aws;
pub mod backend;
pub mod cli;
pub mod config;
pub mod document;
pub mod environment;
pub mod error;
pub mod output;
pub mod plan;
pub mod policy;
pub mod process;
pub mod reference;
pub mod resolve;
pub mod s3cmd;
pub mod secret;

use std::ffi::OsString;

use clap::Parser;

use crate::config::{Config, Flags, LogFormat};
use crate::error::Error;

/// Runs envseal with these arguments and this inherited environment; returns
/// the exit code (when it returns at all: `exec` replaces the process).
pub fn run(args: Vec<OsString>, env: Vec<(OsString, OsString)>) -> i32 {
    let cli = match cli::Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() {
                error::EXIT_RESOLUTION
            } else {
                0
            };
            let _ = e.print();
            return code;
        }
    };
    match dispatch(cli.command, env) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{e}");
            e.exit_code()
        }
    }
}

fn dispatch(command: cli::Command, env: Vec<(OsString, OsString)>) -> Result<i32, Error> {
    match command {
        cli::Command::Exec(args) => {
            let mut flags = args.common.flags(args.init);
            flags.init_pgroup = args.init_pgroup;
            let (config, outcome) = resolve_all(&flags, env)?;
            let child = outcome.into_result().map_err(Error::Resolution)?;
            if config.init {
                let options = process::init::Options {
                    pgroup: config.init_pgroup,
                };
                return process::init::run(&args.command, child, options);
            }
            Err(process::exec::exec(&args.command, &child))
        }
        cli::Command::Check(args) => {
            let flags = args.common.flags(false);
            let format = output::CheckFormat::parse(&args.format)?;
            output::check(&flags, env, format)
        }
        cli::Command::Export(args) => {
            let flags = args.common.flags(false);
            let format = output::ExportFormat::parse(&args.format)?;
            let child = resolve_all(&flags, env)?
                .1
                .into_result()
                .map_err(Error::Resolution)?;
            output::export(&child, format)?;
            Ok(0)
        }
        cli::Command::Policy(args) => {
            let flags = args.common.flags(false);
            policy::print(&flags, env, args.resolve)
        }
        cli::Command::Push(args) => s3cmd::push(&args, env),
        cli::Command::Pull(args) => s3cmd::pull(&args, env),
        cli::Command::Install(args) => process::install::install(&args.dest),
    }
}

/// Starts logging on stderr: envseal's own events at the configured level.
///
/// Other crates (the AWS SDK, hyper, rustls) reach stderr as they are only
/// from `debug` on, and never above `debug` (trace-level SDK output can
/// include response bodies). Below `debug` their warnings and errors are
/// reduced to one line each by [`SdkNotices`]: their message only, never
/// their fields (the SDK puts whole response structs into those), or
/// nothing when envseal's own final error says the same.
pub fn init_logging(level: tracing::Level, format: LogFormat) {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::prelude::*;
    let verbose = level >= tracing::Level::DEBUG;
    let others = if verbose {
        LevelFilter::DEBUG
    } else {
        LevelFilter::OFF
    };
    let filter = Targets::new()
        .with_target("envseal", level)
        .with_default(others);
    let notices_filter = Targets::new()
        .with_target("envseal", LevelFilter::OFF)
        .with_default(if verbose {
            LevelFilter::OFF
        } else {
            LevelFilter::from_level(level.min(tracing::Level::WARN))
        });
    let notices = SdkNotices {
        format,
        seen: std::sync::Mutex::default(),
    }
    .with_filter(notices_filter);
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(true);
    let registry = tracing_subscriber::registry().with(notices);
    let _ = match format {
        LogFormat::Text => registry.with(layer.with_filter(filter)).try_init(),
        LogFormat::Json => registry
            .with(layer.json().flatten_event(true).with_filter(filter))
            .try_init(),
    };
}

/// Warnings and errors of other crates below `--log-level debug`: one line
/// each, in the shape of envseal's own log lines (target `envseal::aws`),
/// with the event's message and where it came from, never its fields.
/// Repeats are printed once. Lookups whose failure envseal's final error
/// reports anyway are left out: the region from instance metadata ("no AWS
/// region configured") and the credential provider chain (the reason of
/// every failed reference).
struct SdkNotices {
    format: LogFormat,
    seen: std::sync::Mutex<std::collections::HashSet<(String, String)>>,
}

/// (target, start of the message) of SDK events that the final error says again.
const SAID_BY_THE_FINAL_ERROR: &[(&str, &str)] = &[
    ("aws_config::imds::region", "failed to load region"),
    (
        "aws_config::meta::credentials::chain",
        "provider failed to provide credentials",
    ),
    // A profile's source (SSO, credential_process, source_profile) failing:
    // the final error names it (src/aws/credentials.rs).
    (
        "aws_config::profile::credentials",
        "failed to load base credentials",
    ),
];

/// The longest message kept from another crate's event.
const NOTICE_MAX_CHARS: usize = 200;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for SdkNotices {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        use std::io::Write;
        let meta = event.metadata();
        let source = meta.target();
        let mut message = MessageOnly(String::new());
        event.record(&mut message);
        let message = notice_text(&message.0);
        if SAID_BY_THE_FINAL_ERROR
            .iter()
            .any(|(t, m)| source == *t && message.starts_with(m))
        {
            return;
        }
        let new = self
            .seen
            .lock()
            .map(|mut seen| seen.insert((source.to_owned(), message.clone())))
            .unwrap_or(true);
        if !new {
            return;
        }
        let line = notice_line(self.format, meta.level(), source, &message);
        let _ = std::io::stderr().write_all(line.as_bytes());
    }
}

/// The first line of `message`, at most [`NOTICE_MAX_CHARS`] characters.
fn notice_text(message: &str) -> String {
    let first = message.lines().next().unwrap_or("").trim();
    let mut text: String = first.chars().take(NOTICE_MAX_CHARS).collect();
    if text.len() < first.len() {
        text.push('…');
    }
    if text.is_empty() {
        text.push_str("(no message)");
    }
    text
}

/// One notice as envseal's text or JSON log line, newline included.
fn notice_line(format: LogFormat, level: &tracing::Level, source: &str, message: &str) -> String {
    use tracing_subscriber::fmt::time::FormatTime;
    let mut timestamp = String::new();
    let _ = tracing_subscriber::fmt::time::SystemTime.format_time(
        &mut tracing_subscriber::fmt::format::Writer::new(&mut timestamp),
    );
    match format {
        LogFormat::Text => format!(
            "{timestamp} {level:>5} envseal::aws: {message} (from {source}; --log-level debug shows the details)\n"
        ),
        // The field order of envseal's own JSON lines.
        LogFormat::Json => format!(
            "{{\"timestamp\":{},\"level\":{},\"message\":{},\"from\":{},\"target\":\"envseal::aws\"}}\n",
            serde_json::Value::from(timestamp),
            serde_json::Value::from(level.as_str()),
            serde_json::Value::from(message),
            serde_json::Value::from(source),
        ),
    }
}

/// Keeps an event's `message` field and ignores every other field.
struct MessageOnly(String);

impl tracing::field::Visit for MessageOnly {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            self.0 = value.to_owned();
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

/// Configuration, references, fetch, assembly: the child's environment and
/// every failure.
pub fn resolve_all(
    flags: &Flags,
    env: Vec<(OsString, OsString)>,
) -> Result<(Config, environment::Outcome), Error> {
    let (level, format) = Config::logging(flags, &env)?;
    init_logging(level, format);
    let config = match Config::new(flags, &env) {
        // Malformed sources: list the malformed per-variable references of
        // the same run with them, so that one run names every mistake.
        Err(Error::Resolution(mut failures)) => {
            failures.extend(environment::split_inherited(env).failures);
            return Err(Error::Resolution(failures));
        }
        other => other?,
    };
    let inherited = environment::split_inherited(env);
    let requests = environment::requests(&inherited.refs, &config.sources);
    let plan = plan::Plan::new(&requests);
    tracing::debug!(
        references = inherited.refs.len(),
        bundles = config.sources.len(),
        requests = plan.len(),
        "planned"
    );
    let answers = resolve::fetch(&plan, &config.fetch_options());
    let outcome = environment::assemble(inherited, &config.sources, config.collision, &answers);
    Ok((config, outcome))
}
