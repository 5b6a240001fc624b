//! Flags, `ENVSEAL_*` and the `AWS_*` variables that envseal itself reads,
//! merged into one [`Config`]: the one place where what the user set becomes
//! meaning. A flag wins over its variable.

use std::ffi::OsString;
use std::time::Duration;

use crate::error::Error;
use crate::glob::Glob;
use crate::plan::SourceSpec;
use crate::reference;

mod watch;
pub use watch::{parse_signal, watch_config, OnChange, WatchConfig, MIN_INTERVAL};

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Default per-attempt time limit (`--attempt-timeout`): AWS answers these
/// calls in tens of milliseconds, and even an overloaded emulator serving a
/// fleet answered within ~1 s in the fleet benchmark; 5 s leaves room for a
/// slow TLS handshake far away while still giving a 30 s deadline several
/// tries past a dead connection.
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

/// What a bundle does to an inherited plain variable of the same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Collision {
    #[default]
    Override,
    Keep,
    Error,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug)]
pub struct Config {
    pub sources: Vec<SourceSpec>,
    pub timeout: Duration,
    /// Time limit of one AWS request attempt (`--attempt-timeout`).
    pub attempt_timeout: Duration,
    /// Random wait in `[0, splay)` before the first request (`--splay`).
    pub splay: Duration,
    /// The throttle window per throttled request (`--throttle-window`).
    pub throttle_window: Duration,
    pub collision: Collision,
    pub log_level: tracing::Level,
    pub log_format: LogFormat,
    pub init: bool,
    /// With `init`: the application in a process group of its own that
    /// receives every forwarded signal.
    pub init_pgroup: bool,
    /// `--watch` (implies `init`): rotation checks and what a change does.
    pub watch: Option<WatchConfig>,
    /// The `AWS_*` settings envseal reads itself.
    pub aws: AwsSettings,
    /// `--ignore` / `ENVSEAL_IGNORE`: variables passed through untouched.
    pub ignore: Vec<Glob>,
    /// `--role-arn` / `ENVSEAL_ROLE_ARN` (with `ENVSEAL_ROLE_EXTERNAL_ID`):
    /// the role of every reference without one of its own (already applied
    /// to `sources`; [`crate::plan::default_role`] applies it to references).
    pub role: Option<reference::Role>,
}

/// What the user typed, before the environment is consulted.
#[derive(Debug, Default, Clone)]
pub struct Flags {
    pub from: Vec<String>,
    pub timeout: Option<String>,
    pub attempt_timeout: Option<String>,
    pub splay: Option<String>,
    pub throttle_window: Option<String>,
    pub collision: Option<String>,
    pub log_level: Option<String>,
    pub log_format: Option<String>,
    pub init: bool,
    pub init_pgroup: bool,
    /// `--ignore` patterns as typed (each may hold several, comma-separated).
    pub ignore: Vec<String>,
    pub watch: Option<String>,
    pub on_change: Option<String>,
    pub stop_signal: Option<String>,
    pub stop_timeout: Option<String>,
    pub role_arn: Option<String>,
    pub role_external_id: Option<String>,
}

fn env_var(env: &[(OsString, OsString)], name: &str) -> Option<String> {
    env.iter()
        .rev()
        .find(|(k, _)| k == name)
        .and_then(|(_, v)| v.to_str().map(str::to_owned))
}

impl Config {
    /// Logging settings alone, so that logging can start before anything
    /// else is validated.
    pub fn logging(
        flags: &Flags,
        env: &[(OsString, OsString)],
    ) -> Result<(tracing::Level, LogFormat), Error> {
        let level = match flags
            .log_level
            .clone()
            .or_else(|| env_var(env, "ENVSEAL_LOG"))
        {
            None => tracing::Level::WARN,
            Some(l) => parse_level(&l)?,
        };
        let format = match flags
            .log_format
            .clone()
            .or_else(|| env_var(env, "ENVSEAL_LOG_FORMAT"))
            .as_deref()
        {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(Error::Config(format!(
                    "log format {other:?} is not one of text, json"
                )))
            }
        };
        Ok((level, format))
    }

    pub fn new(flags: &Flags, env: &[(OsString, OsString)]) -> Result<Config, Error> {
        let (log_level, log_format) = Config::logging(flags, env)?;
        let ignore = ignore_patterns(flags, env)?;
        let raw_sources: Vec<String> = if flags.from.is_empty() {
            env_var(env, "ENVSEAL_FROM")
                .map(|v| split_sources(&v))
                .unwrap_or_default()
        } else {
            flags.from.iter().flat_map(|f| split_sources(f)).collect()
        };
        let role = role(flags, env)?;
        let mut sources = Vec::new();
        let mut bad = Vec::new();
        for raw in raw_sources {
            match reference::parse_source(&raw) {
                Ok(mut source) => {
                    if let Some(role) = &role {
                        source.bundle.default_role(role);
                    }
                    sources.push(SourceSpec { raw, source })
                }
                Err(e) => bad.push(crate::error::Failure {
                    variable: "(bundle)".into(),
                    reference: raw,
                    kind: crate::error::FailureKind::Malformed,
                    reason: format!("malformed source: {e}"),
                }),
            }
        }
        if !bad.is_empty() {
            return Err(Error::Resolution(bad));
        }
        let timeout = timeout(flags, env)?;
        let attempt_timeout = DurationSetting {
            what: "attempt timeout",
            variable: "ENVSEAL_ATTEMPT_TIMEOUT",
            default: DEFAULT_ATTEMPT_TIMEOUT,
            parse: parse_duration,
            examples: "5s, 500ms or 1m",
        }
        .read(flags.attempt_timeout.as_deref(), env)?;
        let splay = DurationSetting {
            what: "splay",
            variable: "ENVSEAL_SPLAY",
            default: Duration::ZERO,
            parse: parse_splay,
            examples: "10s, 500ms or 0",
        }
        .read(flags.splay.as_deref(), env)?;
        let throttle_window = DurationSetting {
            what: "throttle window",
            variable: "ENVSEAL_THROTTLE_WINDOW",
            default: crate::backend::retry::DEFAULT_THROTTLE_WINDOW,
            parse: parse_duration,
            examples: "5s, 500ms or 1m",
        }
        .read(flags.throttle_window.as_deref(), env)?;
        let collision = match flags
            .collision
            .clone()
            .or_else(|| env_var(env, "ENVSEAL_COLLISION"))
            .as_deref()
        {
            None | Some("override") => Collision::Override,
            Some("keep") => Collision::Keep,
            Some("error") => Collision::Error,
            Some(other) => {
                return Err(Error::Config(format!(
                    "collision {other:?} is not one of override, keep, error"
                )))
            }
        };
        // `--init-pgroup` (or ENVSEAL_INIT_PGROUP) implies `--init`.
        let init_pgroup = flags.init_pgroup || env_bool(env, "ENVSEAL_INIT_PGROUP")?;
        let watch = watch_config(flags, env)?;
        // `--watch` (or ENVSEAL_WATCH) implies `--init` too.
        let init = flags.init || init_pgroup || watch.is_some() || env_bool(env, "ENVSEAL_INIT")?;
        Ok(Config {
            sources,
            timeout,
            attempt_timeout,
            splay,
            throttle_window,
            collision,
            log_level,
            log_format,
            init,
            init_pgroup,
            watch,
            aws: AwsSettings::from_env(env),
            ignore,
            role,
        })
    }
}

/// `--role-arn` (else `ENVSEAL_ROLE_ARN`) with `--role-external-id` (else
/// `ENVSEAL_ROLE_EXTERNAL_ID`), validated before any AWS call; and
/// `ENVSEAL_ROLE_SESSION_NAME` checked against STS's rules.
fn role(flags: &Flags, env: &[(OsString, OsString)]) -> Result<Option<reference::Role>, Error> {
    if let Some(name) = env_var(env, "ENVSEAL_ROLE_SESSION_NAME") {
        if !reference::valid_session_name(&name) {
            return Err(Error::Config(format!(
                "ENVSEAL_ROLE_SESSION_NAME={name:?} is not a role session name (2 to 64 characters of letters, digits and +=,.@_-)"
            )));
        }
    }
    let (arn_from, arn) = match (&flags.role_arn, env_var(env, "ENVSEAL_ROLE_ARN")) {
        (Some(a), _) => ("--role-arn", Some(a.clone())),
        (None, a) => ("ENVSEAL_ROLE_ARN", a.filter(|a| !a.is_empty())),
    };
    let (id_from, external_id) = match (
        &flags.role_external_id,
        env_var(env, "ENVSEAL_ROLE_EXTERNAL_ID"),
    ) {
        (Some(i), _) => ("--role-external-id", Some(i.clone())),
        (None, i) => ("ENVSEAL_ROLE_EXTERNAL_ID", i.filter(|i| !i.is_empty())),
    };
    let Some(arn) = arn else {
        return match external_id {
            Some(_) => Err(Error::Config(format!(
                "{id_from} is set without a role (--role-arn or ENVSEAL_ROLE_ARN)"
            ))),
            None => Ok(None),
        };
    };
    if let Err(e) = reference::parse_role_arn(&arn) {
        return Err(Error::Config(format!("{arn_from}: {e}")));
    }
    reference::Role::new(&arn, external_id.as_deref())
        .map(Some)
        .map_err(|e| Error::Config(format!("{id_from}: {e}")))
}

/// How a fetch plan is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchOptions {
    /// The overall deadline (`--timeout`), counted after the splay.
    pub deadline: Duration,
    /// The time limit of one attempt (`--attempt-timeout`).
    pub attempt_timeout: Duration,
    /// A random wait in `[0, splay)` before the first request (`--splay`).
    pub splay: Duration,
    /// How long a throttled round waits per throttled request
    /// (`--throttle-window`; [`crate::backend::retry`]).
    pub throttle_window: Duration,
}

/// What envseal itself reads of the `AWS_*` variables; the SDK reads the
/// rest (credentials, region, endpoints) from the process environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwsSettings {
    /// `AWS_REGION`, else `AWS_DEFAULT_REGION` (non-empty): the region
    /// `policy` puts into ARNs that name none.
    pub region: Option<String>,
    /// `AWS_MAX_ATTEMPTS` is set: attempts were configured.
    pub max_attempts_configured: bool,
    /// `AWS_ENDPOINT_URL_S3` is set and not empty: S3 is addressed path-style.
    pub s3_endpoint_configured: bool,
    /// `AWS_CA_BUNDLE` and `SSL_CERT_FILE` as set: the PEM bundles HTTPS may
    /// trust instead of the compiled-in roots (`backend::trust` chooses).
    pub tls_bundles: Vec<(&'static str, OsString)>,
    /// `ENVSEAL_ROLE_SESSION_NAME` (validated by `Config::new`); `None`:
    /// [`DEFAULT_ROLE_SESSION_NAME`].
    pub role_session_name: Option<String>,
}

/// The session name of every AssumeRole unless `ENVSEAL_ROLE_SESSION_NAME`
/// says otherwise.
pub const DEFAULT_ROLE_SESSION_NAME: &str = "envseal";

impl AwsSettings {
    pub fn from_env(env: &[(OsString, OsString)]) -> AwsSettings {
        let non_empty = |name: &str| env_var(env, name).filter(|v| !v.is_empty());
        AwsSettings {
            region: non_empty("AWS_REGION").or_else(|| non_empty("AWS_DEFAULT_REGION")),
            max_attempts_configured: env.iter().any(|(k, _)| k == "AWS_MAX_ATTEMPTS"),
            s3_endpoint_configured: env
                .iter()
                .rev()
                .find(|(k, _)| k == "AWS_ENDPOINT_URL_S3")
                .is_some_and(|(_, v)| !v.is_empty()),
            tls_bundles: ["AWS_CA_BUNDLE", "SSL_CERT_FILE"]
                .into_iter()
                .filter_map(|name| {
                    let value = env.iter().rev().find(|(k, _)| k == name)?.1.clone();
                    Some((name, value))
                })
                .collect(),
            role_session_name: non_empty("ENVSEAL_ROLE_SESSION_NAME"),
        }
    }

    /// The value of `AWS_CA_BUNDLE` or `SSL_CERT_FILE`, as set.
    pub fn tls_bundle(&self, name: &str) -> Option<OsString> {
        self.tls_bundles
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
    }
}

/// The overall deadline: `--timeout`, else `ENVSEAL_TIMEOUT`, else
/// [`DEFAULT_TIMEOUT`].
pub fn timeout(flags: &Flags, env: &[(OsString, OsString)]) -> Result<Duration, Error> {
    DurationSetting {
        what: "timeout",
        variable: "ENVSEAL_TIMEOUT",
        default: DEFAULT_TIMEOUT,
        parse: parse_duration,
        examples: "30s, 500ms or 2m",
    }
    .read(flags.timeout.as_deref(), env)
}

/// A duration setting: its flag as typed, else its variable, else the
/// default; what `parse` cannot read is a configuration error naming it.
struct DurationSetting {
    /// How the error names it ("attempt timeout").
    what: &'static str,
    variable: &'static str,
    default: Duration,
    parse: fn(&str) -> Option<Duration>,
    /// What the error offers instead ("5s, 500ms or 1m").
    examples: &'static str,
}

impl DurationSetting {
    fn read(&self, flag: Option<&str>, env: &[(OsString, OsString)]) -> Result<Duration, Error> {
        let Some(t) = flag
            .map(str::to_owned)
            .or_else(|| env_var(env, self.variable))
        else {
            return Ok(self.default);
        };
        (self.parse)(&t).ok_or_else(|| {
            Error::Config(format!(
                "{} {t:?} is not a duration like {}",
                self.what, self.examples
            ))
        })
    }
}

impl Config {
    /// How the fetch plan is run.
    pub fn fetch_options(&self) -> FetchOptions {
        FetchOptions {
            deadline: self.timeout,
            attempt_timeout: self.attempt_timeout,
            splay: self.splay,
            throttle_window: self.throttle_window,
        }
    }
}

/// A yes/no variable: unset, empty, `0`, `false`, `no` or `1`, `true`, `yes`.
fn env_bool(env: &[(OsString, OsString)], name: &str) -> Result<bool, Error> {
    match env_var(env, name).as_deref() {
        None | Some("" | "0" | "false" | "no") => Ok(false),
        Some("1" | "true" | "yes") => Ok(true),
        Some(other) => Err(Error::Config(format!(
            "{name}={other:?} is not one of 1, 0, true, false"
        ))),
    }
}

/// `--ignore` (repeatable), else `ENVSEAL_IGNORE`: name patterns separated by
/// commas. `--ignore` given at all replaces `ENVSEAL_IGNORE` (as `--from`
/// does `ENVSEAL_FROM`). An empty `ENVSEAL_IGNORE` is no pattern; an empty
/// item, or a pattern that cannot match a variable name, is an error naming
/// it.
pub fn ignore_patterns(flags: &Flags, env: &[(OsString, OsString)]) -> Result<Vec<Glob>, Error> {
    let (origin, lists): (&str, Vec<String>) = if flags.ignore.is_empty() {
        match env_var(env, "ENVSEAL_IGNORE") {
            Some(v) if !v.trim().is_empty() => ("ENVSEAL_IGNORE", vec![v]),
            _ => return Ok(Vec::new()),
        }
    } else {
        ("--ignore", flags.ignore.clone())
    };
    let mut out = Vec::new();
    for list in &lists {
        for item in list.split(',') {
            let item = item.trim();
            let glob = Glob::parse(item).map_err(|reason| {
                Error::Config(format!("{origin} pattern {item:?} is malformed: {reason}"))
            })?;
            out.push(glob);
        }
    }
    Ok(out)
}

/// `ENVSEAL_FROM` and `--from` take sources separated by commas or newlines.
pub fn split_sources(value: &str) -> Vec<String> {
    value
        .split([',', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn parse_level(s: &str) -> Result<tracing::Level, Error> {
    Ok(match s.to_ascii_lowercase().as_str() {
        "error" => tracing::Level::ERROR,
        "warn" | "warning" => tracing::Level::WARN,
        "info" => tracing::Level::INFO,
        "debug" => tracing::Level::DEBUG,
        "trace" => tracing::Level::TRACE,
        _ => {
            return Err(Error::Config(format!(
                "log level {s:?} is not one of error, warn, info, debug, trace"
            )))
        }
    })
}

/// `30s`, `500ms`, `2m`, `1h`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let n: f64 = number.parse().ok()?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return None,
    };
    if !secs.is_finite() || secs <= 0.0 || secs > 86400.0 {
        return None;
    }
    Some(Duration::from_secs_f64(secs))
}

/// `--splay`: a duration as [`parse_duration`] takes it, or zero (`0`,
/// `0s`, `0ms`: no splay).
pub fn parse_splay(s: &str) -> Option<Duration> {
    let s = s.trim();
    let digits = s.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    if !digits.is_empty()
        && digits.chars().all(|c| c == '0' || c == '.')
        && digits.contains('0')
        && matches!(&s[digits.len()..], "" | "s" | "ms" | "m" | "h")
    {
        return Some(Duration::ZERO);
    }
    parse_duration(s)
}

pub fn format_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("5"), Some(Duration::from_secs(5)));
        assert_eq!(parse_duration("0s"), None);
        assert_eq!(parse_duration("soon"), None);
        assert_eq!(parse_duration("5x"), None);
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration(""), None);
        assert_eq!(parse_duration("banana"), None);
        assert_eq!(parse_duration("-1s"), None);
        assert_eq!(parse_duration("1e3s"), None);
        assert_eq!(parse_duration("2d"), None);
    }

    #[test]
    fn splay_takes_zero_and_durations() {
        assert_eq!(parse_splay("0"), Some(Duration::ZERO));
        assert_eq!(parse_splay("0s"), Some(Duration::ZERO));
        assert_eq!(parse_splay("0.0ms"), Some(Duration::ZERO));
        assert_eq!(parse_splay("10s"), Some(Duration::from_secs(10)));
        assert_eq!(parse_splay("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_splay("banana"), None);
        assert_eq!(parse_splay("0x"), None);
        assert_eq!(parse_splay("."), None);
        assert_eq!(parse_splay("-0"), None);
        assert_eq!(parse_splay(""), None);
    }

    #[test]
    fn attempt_timeout_splay_and_throttle_window_from_flags_or_variables() {
        let env = vec![
            (
                OsString::from("ENVSEAL_ATTEMPT_TIMEOUT"),
                OsString::from("2s"),
            ),
            (OsString::from("ENVSEAL_SPLAY"), OsString::from("10s")),
            (
                OsString::from("ENVSEAL_THROTTLE_WINDOW"),
                OsString::from("1s"),
            ),
        ];
        let c = Config::new(&Flags::default(), &[]).unwrap();
        assert_eq!(c.attempt_timeout, DEFAULT_ATTEMPT_TIMEOUT);
        assert_eq!(c.splay, Duration::ZERO);
        assert_eq!(
            c.throttle_window,
            crate::backend::retry::DEFAULT_THROTTLE_WINDOW
        );
        let c = Config::new(&Flags::default(), &env).unwrap();
        assert_eq!(c.attempt_timeout, Duration::from_secs(2));
        assert_eq!(c.splay, Duration::from_secs(10));
        assert_eq!(c.throttle_window, Duration::from_secs(1));
        let flags = Flags {
            attempt_timeout: Some("750ms".into()),
            splay: Some("0".into()),
            throttle_window: Some("250ms".into()),
            ..Flags::default()
        };
        let c = Config::new(&flags, &env).unwrap();
        assert_eq!(c.attempt_timeout, Duration::from_millis(750));
        assert_eq!(c.splay, Duration::ZERO);
        let o = c.fetch_options();
        assert_eq!(o.attempt_timeout, Duration::from_millis(750));
        assert_eq!(o.throttle_window, Duration::from_millis(250));
        assert_eq!(o.deadline, DEFAULT_TIMEOUT);
        for (flags, what) in [
            (
                Flags {
                    splay: Some("banana".into()),
                    ..Flags::default()
                },
                "splay \"banana\"",
            ),
            (
                Flags {
                    attempt_timeout: Some("0s".into()),
                    ..Flags::default()
                },
                "attempt timeout \"0s\"",
            ),
            (
                Flags {
                    throttle_window: Some("soon".into()),
                    ..Flags::default()
                },
                "throttle window \"soon\"",
            ),
        ] {
            match Config::new(&flags, &[]) {
                Err(Error::Config(m)) => assert!(m.contains(what), "{m}"),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn sources_split_on_commas_and_newlines() {
        assert_eq!(
            split_sources("ssm:/a/, s3://b/k\nsm:x,,"),
            vec!["ssm:/a/", "s3://b/k", "sm:x"]
        );
    }

    #[test]
    fn flags_win_over_variables() {
        let env = vec![
            (OsString::from("ENVSEAL_TIMEOUT"), OsString::from("5s")),
            (OsString::from("ENVSEAL_FROM"), OsString::from("ssm:/a/")),
            (OsString::from("ENVSEAL_COLLISION"), OsString::from("keep")),
        ];
        let c = Config::new(&Flags::default(), &env).unwrap();
        assert_eq!(c.timeout, Duration::from_secs(5));
        assert_eq!(c.sources.len(), 1);
        assert_eq!(c.collision, Collision::Keep);
        let flags = Flags {
            timeout: Some("1s".into()),
            from: vec!["ssm:/b/".into(), "ssm:/c/".into()],
            collision: Some("error".into()),
            ..Flags::default()
        };
        let c = Config::new(&flags, &env).unwrap();
        assert_eq!(c.timeout, Duration::from_secs(1));
        assert_eq!(c.sources.len(), 2);
        assert_eq!(c.collision, Collision::Error);
        let bad = Flags {
            collision: Some("merge".into()),
            ..Flags::default()
        };
        assert!(Config::new(&bad, &env).is_err());
    }

    #[test]
    fn aws_settings_from_the_environment() {
        let env = |pairs: &[(&str, &str)]| -> Vec<(OsString, OsString)> {
            pairs
                .iter()
                .map(|(k, v)| (OsString::from(k), OsString::from(v)))
                .collect()
        };
        assert_eq!(AwsSettings::from_env(&[]), AwsSettings::default());
        let s = AwsSettings::from_env(&env(&[
            ("AWS_REGION", ""),
            ("AWS_DEFAULT_REGION", "eu-west-1"),
            ("AWS_MAX_ATTEMPTS", ""),
            ("AWS_ENDPOINT_URL_S3", ""),
            ("SSL_CERT_FILE", "/b.pem"),
        ]));
        assert_eq!(s.region.as_deref(), Some("eu-west-1"));
        assert!(s.max_attempts_configured);
        assert!(!s.s3_endpoint_configured);
        assert_eq!(
            s.tls_bundle("SSL_CERT_FILE"),
            Some(OsString::from("/b.pem"))
        );
        assert_eq!(s.tls_bundle("AWS_CA_BUNDLE"), None);
        let s = AwsSettings::from_env(&env(&[
            ("AWS_REGION", "us-east-2"),
            ("AWS_DEFAULT_REGION", "eu-west-1"),
            ("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:5000"),
        ]));
        assert_eq!(s.region.as_deref(), Some("us-east-2"));
        assert!(!s.max_attempts_configured);
        assert!(s.s3_endpoint_configured);
    }

    #[test]
    fn ignore_patterns_from_flags_or_the_variable() {
        let env = vec![(
            OsString::from("ENVSEAL_IGNORE"),
            OsString::from(" MODEL_*, *_URL "),
        )];
        let names = |flags: &Flags, env: &[(OsString, OsString)]| -> Vec<String> {
            ignore_patterns(flags, env)
                .unwrap()
                .iter()
                .map(|g| g.to_string())
                .collect()
        };
        assert_eq!(names(&Flags::default(), &env), ["MODEL_*", "*_URL"]);
        let flags = Flags {
            ignore: vec!["A".into(), "B?,C*".into()],
            ..Flags::default()
        };
        assert_eq!(
            names(&flags, &env),
            ["A", "B?", "C*"],
            "the flag replaces the variable"
        );
        assert!(names(&Flags::default(), &[]).is_empty());
        let empty = vec![(OsString::from("ENVSEAL_IGNORE"), OsString::from(" "))];
        assert!(names(&Flags::default(), &empty).is_empty());
        for (flags, env, named) in [
            (
                Flags {
                    ignore: vec!["A=B".into()],
                    ..Flags::default()
                },
                vec![],
                "--ignore pattern \"A=B\"",
            ),
            (
                Flags::default(),
                vec![(OsString::from("ENVSEAL_IGNORE"), OsString::from("A,,B"))],
                "ENVSEAL_IGNORE pattern \"\"",
            ),
        ] {
            match Config::new(&flags, &env) {
                Err(e @ Error::Config(_)) => {
                    assert!(e.to_string().contains(named), "{e}");
                    assert_eq!(e.exit_code(), crate::error::EXIT_RESOLUTION);
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn init_pgroup_implies_init() {
        let env = |k: &str, v: &str| vec![(OsString::from(k), OsString::from(v))];
        let c = Config::new(&Flags::default(), &env("ENVSEAL_INIT_PGROUP", "1")).unwrap();
        assert!(c.init && c.init_pgroup);
        let c = Config::new(&Flags::default(), &env("ENVSEAL_INIT", "yes")).unwrap();
        assert!(c.init && !c.init_pgroup);
        let flags = Flags {
            init_pgroup: true,
            ..Flags::default()
        };
        let c = Config::new(&flags, &[]).unwrap();
        assert!(c.init && c.init_pgroup);
        assert!(Config::new(&Flags::default(), &env("ENVSEAL_INIT_PGROUP", "maybe")).is_err());
        assert!(!Config::new(&Flags::default(), &[]).unwrap().init);
    }

    #[test]
    fn role_from_flag_or_variable_validated() {
        let env = |pairs: &[(&str, &str)]| -> Vec<(OsString, OsString)> {
            pairs
                .iter()
                .map(|(k, v)| (OsString::from(k), OsString::from(v)))
                .collect()
        };
        let arn = "arn:aws:iam::210987654321:role/reader";
        let c = Config::new(
            &Flags::default(),
            &env(&[("ENVSEAL_ROLE_ARN", arn), ("ENVSEAL_FROM", "ssm:/a/")]),
        )
        .unwrap();
        assert_eq!(c.role.as_ref().unwrap().arn, arn);
        // applied to the sources
        match &c.sources[0].source.bundle {
            reference::Bundle::SsmPath { role, .. } => assert_eq!(role, &c.role),
            other => panic!("{other:?}"),
        }
        let flags = Flags {
            role_arn: Some("arn:aws:iam::123456789012:role/other".into()),
            role_external_id: Some("ext-1".into()),
            ..Flags::default()
        };
        let c = Config::new(&flags, &env(&[("ENVSEAL_ROLE_ARN", arn)])).unwrap();
        let role = c.role.unwrap();
        assert_eq!(role.arn, "arn:aws:iam::123456789012:role/other");
        assert_eq!(role.external_id.as_deref(), Some("ext-1"));
        for (pairs, what) in [
            (
                &[("ENVSEAL_ROLE_ARN", "arn:aws:iam::1:role/x")][..],
                "ENVSEAL_ROLE_ARN: invalid role ARN",
            ),
            (
                &[("ENVSEAL_ROLE_EXTERNAL_ID", "ext-1")][..],
                "without a role",
            ),
            (
                &[("ENVSEAL_ROLE_SESSION_NAME", "has space")][..],
                "ENVSEAL_ROLE_SESSION_NAME",
            ),
            (&[("ENVSEAL_ROLE_SESSION_NAME", "x")][..], "2 to 64"),
        ] {
            match Config::new(&Flags::default(), &env(pairs)) {
                Err(Error::Config(m)) => assert!(m.contains(what), "{m}"),
                other => panic!("{pairs:?}: {other:?}"),
            }
        }
        assert!(Config::new(&Flags::default(), &[]).unwrap().role.is_none());
    }
}
