//! Logging on stderr: envseal's own events at the configured level, other
//! crates' warnings reduced to one line each, SDK output capped at `debug`.

use std::ffi::OsString;

use crate::config::{Config, Flags, LogFormat};
use crate::error::Error;

/// Starts logging as the flags and `ENVSEAL_LOG`/`ENVSEAL_LOG_FORMAT` say,
/// before anything else is validated.
pub fn start(flags: &Flags, env: &[(OsString, OsString)]) -> Result<(), Error> {
    let (level, format) = Config::logging(flags, env)?;
    init(level, format);
    Ok(())
}

/// Starts logging on stderr: envseal's own events at the configured level.
///
/// Other crates (the AWS SDK, hyper, rustls) reach stderr as they are only
/// from `debug` on, and never above `debug` (trace-level SDK output can
/// include response bodies), except endpoint resolution's (it prints the
/// access key id). Below `debug` their warnings and errors are
/// reduced to one line each by `SdkNotices`: their message only, never
/// their fields (the SDK puts whole response structs into those), or
/// nothing when envseal's own final error says the same.
pub fn init(level: tracing::Level, format: LogFormat) {
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
        // Its "resolving endpoint" event prints the request's identity with
        // `Debug`: the access key id of the credentials (an assumed role's
        // too). Nothing else of it is worth a key id.
        .with_target(
            "aws_smithy_runtime::client::orchestrator::endpoints",
            if verbose {
                LevelFilter::INFO
            } else {
                LevelFilter::OFF
            },
        )
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
    // the final error names it (src/backend/credentials.rs).
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
