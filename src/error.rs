//! The error enum and the documented exit codes. Errors carry variable names,
//! references and reasons — never a secret value.

use std::fmt;

/// envseal did not start the application: bad configuration, a malformed
/// reference, or a secret that could not be resolved. Chosen to stay clear of
/// 1/2 (what applications use), 126/127 (exec) and 128+N (signals).
pub const EXIT_RESOLUTION: i32 = 111;
/// The command was found but could not be executed.
pub const EXIT_NOT_EXECUTABLE: i32 = 126;
/// The command was not found.
pub const EXIT_NOT_FOUND: i32 = 127;

/// Why one reference failed. `?optional` forgives only [`FailureKind::NotFound`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The reference does not parse.
    Malformed,
    /// The secret, parameter, object or key does not exist.
    NotFound,
    /// The credentials may not read it.
    AccessDenied,
    /// KMS or content decryption failed, or the ciphertext was tampered with.
    Decrypt,
    /// The value exists but cannot be used (not UTF-8, NUL, not JSON, bad document…).
    InvalidValue,
    /// Two keys of one bundle map to the same variable, or a bundle meets a
    /// plain variable under `--collision error`.
    Collision,
    /// The overall deadline passed before an answer came.
    Timeout,
    /// An S3 object in a format envseal does not read: an envelope wrapped
    /// with a client-held master key instead of KMS, or with a content
    /// algorithm or tag length it does not know; an AWS Encryption SDK message.
    Unsupported,
    /// No credentials: the credential source in use (named in the reason) failed.
    Credentials,
    /// Anything else the service or network said (throttling after retries, 5xx…).
    Service,
}

impl FailureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Malformed => "malformed",
            FailureKind::NotFound => "not-found",
            FailureKind::AccessDenied => "access-denied",
            FailureKind::Decrypt => "decrypt-failed",
            FailureKind::InvalidValue => "invalid-value",
            FailureKind::Collision => "collision",
            FailureKind::Timeout => "timeout",
            FailureKind::Unsupported => "unsupported",
            FailureKind::Credentials => "no-credentials",
            FailureKind::Service => "service-error",
        }
    }
}

/// A backend's answer for one request that did not produce a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchError {
    pub kind: FailureKind,
    pub reason: String,
}

impl FetchError {
    pub fn new(kind: FailureKind, reason: impl Into<String>) -> Self {
        FetchError {
            kind,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

/// One variable (or bundle) that could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The variable name, or `--from` for a bundle as a whole.
    pub variable: String,
    /// The reference or source as the user wrote it.
    pub reference: String,
    pub kind: FailureKind,
    pub reason: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}: {} ({})",
            self.variable,
            self.reference,
            one_line(&self.reason),
            self.kind.as_str()
        )
    }
}

/// `text` on one line: the lines of a multi-line message (the SDK lists the
/// credential providers it tried one per line) joined with "; ".
pub fn one_line(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains(['\n', '\r']) {
        return text.into();
    }
    let mut joined = String::with_capacity(text.len());
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if !joined.is_empty() {
            joined.push_str(if joined.ends_with(':') { " " } else { "; " });
        }
        joined.push_str(line);
    }
    joined.into()
}

#[derive(Debug)]
pub enum Error {
    /// Flags or `ENVSEAL_*` configuration that make no sense.
    Config(String),
    /// One or more references could not be resolved; every one is listed.
    Resolution(Vec<Failure>),
    /// The command could not be executed.
    Exec {
        program: String,
        not_found: bool,
        reason: String,
    },
    /// A variable of the child's environment holds a NUL byte.
    NulInVariable { variable: String },
    /// Writing to stdout failed (`check`, `export`, `push`, `pull`).
    Stdout { reason: String },
    /// `push`: the document could not be read: `action` is "open" or
    /// "read", `source` a path or "stdin".
    Input {
        action: &'static str,
        source: String,
        reason: String,
    },
    /// `export`: variable names that `format` (shell, dotenv) cannot write.
    UnportableNames {
        format: &'static str,
        names: Vec<String>,
    },
    /// `push` or `pull` of `target` failed.
    Transfer { target: String, failure: FetchError },
    /// `policy --resolve`: AWS work could not start (no runtime, no region).
    AwsUnavailable { reason: String },
    /// `policy --resolve`: STS did not say who the caller is.
    CallerIdentity { failure: FetchError },
    /// `policy --resolve`: the lookups did not finish within the deadline.
    LookupDeadline,
    /// `policy`: the document could not be serialized.
    PolicyJson { reason: String },
    /// `--init`: the supervisor could not start: `action` is what it could
    /// not do ("block signals", "create a signalfd", "fork").
    Supervisor {
        action: &'static str,
        reason: String,
    },
    /// `--init`: signals can no longer be read; the application is left
    /// running.
    SignalsLost { pid: i32, reason: String },
    /// `exec`: the in-memory file of a `?file` variable could not be made
    /// or rewritten (`step`: what failed).
    MemFile {
        variable: String,
        step: &'static str,
        reason: String,
    },
    /// `export`: `?file` variables, whose path means nothing outside `exec`.
    FileNotExportable { names: Vec<String> },
    /// `install`: a step of copying the executable to `dest` failed.
    Install {
        dest: String,
        step: &'static str,
        reason: String,
    },
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Exec {
                not_found: true, ..
            } => EXIT_NOT_FOUND,
            Error::Exec { .. } => EXIT_NOT_EXECUTABLE,
            _ => EXIT_RESOLUTION,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(m) => write!(f, "envseal: configuration error: {m}"),
            Error::Resolution(failures) => {
                write!(
                    f,
                    "envseal: {} reference(s) could not be resolved; the application was not started",
                    failures.len()
                )?;
                for failure in failures {
                    write!(f, "\nenvseal: {failure}")?;
                }
                Ok(())
            }
            Error::Exec {
                program, reason, ..
            } => write!(f, "envseal: cannot execute {program:?}: {reason}"),
            Error::NulInVariable { variable } => {
                write!(f, "envseal: variable {variable} contains a NUL byte")
            }
            Error::Stdout { reason } => write!(f, "envseal: cannot write to stdout: {reason}"),
            Error::Input {
                action,
                source,
                reason,
            } => write!(f, "envseal: cannot {action} {source}: {reason}"),
            Error::UnportableNames { format, names } => write!(
                f,
                "envseal: export --format {format}: variable name(s) {} not of the form [A-Za-z_][A-Za-z0-9_]*; \
                 nothing was printed (rename the variable, or use --format json)",
                names.join(", ")
            ),
            Error::Transfer { target, failure } => write!(
                f,
                "envseal: {target}: {} ({})",
                failure.reason,
                failure.kind.as_str()
            ),
            Error::AwsUnavailable { reason } => write!(f, "envseal: {reason}"),
            Error::CallerIdentity { failure } => {
                write!(f, "envseal: sts:GetCallerIdentity failed: {failure}")
            }
            Error::LookupDeadline => write!(
                f,
                "envseal: --resolve lookups did not finish within the deadline"
            ),
            Error::PolicyJson { reason } => write!(f, "envseal: {reason}"),
            Error::Supervisor { action, reason } => {
                write!(f, "envseal: --init: cannot {action}: {reason}")
            }
            Error::SignalsLost { pid, reason } => write!(
                f,
                "envseal: --init: cannot read signals ({reason}); the application (pid {pid}) is left running"
            ),
            Error::MemFile {
                variable,
                step,
                reason,
            } => write!(
                f,
                "envseal: {variable}: in-memory file (?file): {step}: {reason}"
            ),
            Error::FileNotExportable { names } => write!(
                f,
                "envseal: export: {} use ?file, whose value is the path of an in-memory file \
                 that exists only while `envseal exec` runs the application; nothing was printed \
                 (run the application under `envseal exec`, or remove ?file to export the value)",
                names.join(", ")
            ),
            Error::Install { dest, step, reason } => {
                write!(f, "envseal: cannot install to {dest}: {step}: {reason}")
            }
        }
    }
}

impl std::error::Error for Error {}

/// An error and its sources, each by its `Display`, joined with ": " on one
/// line — never by `Debug`, which for SDK errors dumps whole responses,
/// bodies included. A source whose text the previous one already shows is
/// left out.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut last = text.clone();
    let mut source = err.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !part.is_empty() && !last.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        last = part;
        source = s.source();
    }
    one_line(&text).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);

    impl fmt::Display for Layer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Layer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|l| l as _)
        }
    }

    #[test]
    fn error_chain_is_display_only() {
        let err = Layer(
            "dispatch failure",
            Some(Box::new(Layer(
                "loading credentials: no token",
                Some(Box::new(Layer("no token", None))),
            ))),
        );
        let text = error_chain(&err);
        assert_eq!(text, "dispatch failure: loading credentials: no token");
        assert!(!text.contains("Layer("), "{text}");
    }

    #[test]
    fn failure_reasons_are_one_line() {
        let failure = Failure {
            variable: "DB".into(),
            reference: "ssm:/a".into(),
            kind: FailureKind::Service,
            reason: "no credentials found in chain. Attempted:\n  Environment: not set\n  Profile: not enabled\n".into(),
        };
        assert_eq!(
            failure.to_string(),
            "DB: ssm:/a: no credentials found in chain. Attempted: Environment: not set; Profile: not enabled (service-error)"
        );
        assert_eq!(one_line("one line"), "one line");
    }
}
