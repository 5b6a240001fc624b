//! A credential provider that fails, in envseal's words: which source the
//! SDK's default chain was using (static keys in the environment, a profile
//! and how it gets its keys, web identity, the container endpoint, instance
//! metadata) and what went wrong, in one line.
//!
//! The chain itself is the SDK's, unchanged. Its order is fixed (environment,
//! profile, web identity, container, instance metadata) and a provider that
//! is not configured steps aside, so the source that failed is the first one
//! configured here. [`Source::detect`] reads the same variables and profile
//! files to name it; the SDK's error only says what went wrong.
//!
//! Nothing here prints what a provider returned or what a credential process
//! wrote on stderr: the reason is built from status codes, exit statuses, file
//! errors and the messages of the error chain (never the `Debug` forms, which
//! can hold response bodies), cut at a credential process's stderr.

use std::error::Error as StdError;

use aws_credential_types::provider::error::{CredentialsError, TokenError};
use zeroize::Zeroizing;

/// How aws-config says that a credential process failed (its stderr follows).
const PROCESS_EXITED: &str = "external process exited with code ";

/// How aws-config says that a credential process printed something else.
const PROCESS_UNPARSED: &str = "could not parse response: ";

/// The longest reason kept from the SDK's message.
const DETAIL_MAX_CHARS: usize = 300;

/// Where the default chain takes credentials from, in its order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`.
    Environment,
    /// A profile of the config or credentials file.
    Profile {
        name: String,
        /// True when `AWS_PROFILE` chose it (else it is `default`).
        chosen: bool,
        how: ProfileHow,
    },
    /// `AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN` (EKS IRSA).
    WebIdentity { token_file: String },
    /// The ECS / EKS Pod Identity container endpoint.
    Container {
        /// `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` or `..._FULL_URI`.
        uri_var: &'static str,
        /// The variable that holds the authorization token or its file, if any.
        token_var: Option<&'static str>,
        token_file: Option<String>,
    },
    /// EC2 instance metadata (IMDS).
    InstanceMetadata,
    /// Nothing configured (instance metadata disabled); `profile`: what
    /// `AWS_PROFILE` named, when it named a profile that is not there.
    Nothing { profile: Option<String> },
}

/// How a profile gets its credentials (the SDK's order of precedence).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileHow {
    /// `role_arn` with `source_profile` or `credential_source` (STS AssumeRole).
    AssumeRole {
        source_profile: Option<String>,
        credential_source: Option<String>,
    },
    /// `web_identity_token_file` + `role_arn`.
    WebIdentity,
    /// `sso_session` or `sso_start_url` (IAM Identity Center).
    Sso { session: Option<String> },
    /// `login_session` (`aws login`; not built into envseal).
    Login,
    /// `credential_process`.
    Process,
    /// `aws_access_key_id` / `aws_secret_access_key`.
    StaticKeys,
}

impl Source {
    /// The source in the process environment (as the SDK reads it).
    pub fn from_process_env() -> Source {
        Source::detect(&|name| std::env::var(name).ok(), &|path| {
            std::fs::read_to_string(path).ok().map(Zeroizing::new)
        })
    }

    /// The first configured source, given the environment (`var`) and a file
    /// reader (`read`, for the config and credentials files).
    pub fn detect(
        var: &dyn Fn(&str) -> Option<String>,
        read: &dyn Fn(&str) -> Option<Zeroizing<String>>,
    ) -> Source {
        let set = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        if set("AWS_ACCESS_KEY_ID").is_some()
            && (set("AWS_SECRET_ACCESS_KEY").is_some() || set("SECRET_ACCESS_KEY").is_some())
        {
            return Source::Environment;
        }
        let chosen = set("AWS_PROFILE");
        let name = chosen.clone().unwrap_or_else(|| "default".to_owned());
        if let Some(how) = profile_how(var, read, &name) {
            return Source::Profile {
                name,
                chosen: chosen.is_some(),
                how,
            };
        }
        if let (Some(token_file), Some(_)) =
            (set("AWS_WEB_IDENTITY_TOKEN_FILE"), set("AWS_ROLE_ARN"))
        {
            return Source::WebIdentity { token_file };
        }
        let uri_var = if set("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI").is_some() {
            Some("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
        } else if set("AWS_CONTAINER_CREDENTIALS_FULL_URI").is_some() {
            Some("AWS_CONTAINER_CREDENTIALS_FULL_URI")
        } else {
            None
        };
        if let Some(uri_var) = uri_var {
            let token_file = set("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
            let token_var = if token_file.is_some() {
                Some("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
            } else if set("AWS_CONTAINER_AUTHORIZATION_TOKEN").is_some() {
                Some("AWS_CONTAINER_AUTHORIZATION_TOKEN")
            } else {
                None
            };
            return Source::Container {
                uri_var,
                token_var,
                token_file,
            };
        }
        if set("AWS_EC2_METADATA_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true")) {
            return Source::Nothing { profile: chosen };
        }
        Source::InstanceMetadata
    }

    /// The source as a noun phrase ("the ECS container credentials endpoint
    /// (AWS_CONTAINER_CREDENTIALS_FULL_URI)").
    pub fn describe(&self) -> String {
        match self {
            Source::Environment => {
                "the access key in the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)".into()
            }
            Source::Profile { name, chosen, how } => {
                let mut notes: Vec<String> = Vec::new();
                if *chosen {
                    notes.push("AWS_PROFILE".into());
                }
                let what = match how {
                    ProfileHow::AssumeRole {
                        source_profile,
                        credential_source,
                    } => {
                        notes.push(match (source_profile, credential_source) {
                            (Some(source), _) => {
                                format!("STS AssumeRole with the credentials of profile `{source}`")
                            }
                            (None, Some(source)) => {
                                format!("STS AssumeRole with credential_source {source}")
                            }
                            (None, None) => "STS AssumeRole".into(),
                        });
                        "the role_arn"
                    }
                    ProfileHow::WebIdentity => {
                        notes.push("STS AssumeRoleWithWebIdentity".into());
                        "the web_identity_token_file"
                    }
                    ProfileHow::Sso { session } => {
                        if let Some(session) = session {
                            notes.push(format!("sso_session `{session}`"));
                        }
                        "the SSO login"
                    }
                    ProfileHow::Login => "the login_session",
                    ProfileHow::Process => "the credential_process",
                    ProfileHow::StaticKeys => "the access key",
                };
                if notes.is_empty() {
                    format!("{what} of profile `{name}`")
                } else {
                    format!("{what} of profile `{name}` ({})", notes.join(", "))
                }
            }
            Source::WebIdentity { .. } => {
                "web identity (AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ROLE_ARN; STS AssumeRoleWithWebIdentity)"
                    .into()
            }
            Source::Container {
                uri_var, token_var, ..
            } => {
                let endpoint = if *uri_var == "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI" {
                    "the ECS task role endpoint"
                } else if token_var.is_some() {
                    "the EKS Pod Identity container credentials endpoint"
                } else {
                    "the ECS container credentials endpoint"
                };
                match token_var {
                    Some(token) => format!("{endpoint} ({uri_var}, {token})"),
                    None => format!("{endpoint} ({uri_var})"),
                }
            }
            Source::InstanceMetadata => {
                "the EC2 instance metadata service (IMDS, the last source: no keys, profile, \
                 web identity or container endpoint configured)"
                    .into()
            }
            Source::Nothing { .. } => "no source".into(),
        }
    }
}

/// How profile `name` gets credentials, or `None` when it does not exist or
/// has no credential settings (the SDK's profile provider then steps aside).
fn profile_how(
    var: &dyn Fn(&str) -> Option<String>,
    read: &dyn Fn(&str) -> Option<Zeroizing<String>>,
    name: &str,
) -> Option<ProfileHow> {
    let home = var("HOME").unwrap_or_default();
    let expand = |path: String| match path.strip_prefix("~/") {
        Some(rest) => format!("{home}/{rest}"),
        None => path,
    };
    let config_path = expand(
        var("AWS_CONFIG_FILE")
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "~/.aws/config".into()),
    );
    let credentials_path = expand(
        var("AWS_SHARED_CREDENTIALS_FILE")
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "~/.aws/credentials".into()),
    );
    let mut keys: Vec<(String, String)> = Vec::new();
    if let Some(text) = read(&config_path) {
        keys.extend(section_keys(&text, name, true));
    }
    if let Some(text) = read(&credentials_path) {
        keys.extend(section_keys(&text, name, false));
    }
    let get = |key: &str| keys.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    let has = |key: &str| get(key).is_some();
    if has("role_arn") && !has("web_identity_token_file") {
        return Some(ProfileHow::AssumeRole {
            source_profile: get("source_profile"),
            credential_source: get("credential_source"),
        });
    }
    if has("web_identity_token_file") {
        return Some(ProfileHow::WebIdentity);
    }
    if has("sso_session") || has("sso_start_url") || has("sso_account_id") {
        return Some(ProfileHow::Sso {
            session: get("sso_session"),
        });
    }
    if has("login_session") {
        return Some(ProfileHow::Login);
    }
    if has("credential_process") {
        return Some(ProfileHow::Process);
    }
    if has("aws_access_key_id") {
        return Some(ProfileHow::StaticKeys);
    }
    None
}

/// The settings of profile `name` in one file that name something rather
/// than hold a secret: the keys (lower case) and, for `sso_session`,
/// `source_profile` and `credential_source` only, their values.
fn section_keys(text: &str, name: &str, config_file: bool) -> Vec<(String, String)> {
    const NAMED: [&str; 3] = ["sso_session", "source_profile", "credential_source"];
    let mut keys = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        if let Some(header) = trimmed.strip_prefix('[') {
            let header = header.split(']').next().unwrap_or("").trim();
            let section = if config_file {
                match header.strip_prefix("profile") {
                    Some(rest) if rest.starts_with(char::is_whitespace) => rest.trim(),
                    _ if header == "default" => "default",
                    _ => "",
                }
            } else {
                header
            };
            inside = !section.is_empty() && section == name;
            continue;
        }
        // Indented lines continue a property (sub-properties): not keys.
        if !inside || line.starts_with(char::is_whitespace) {
            continue;
        }
        if let Some((key, value)) = trimmed.split_once('=') {
            let key = key.trim().to_ascii_lowercase();
            let value = if NAMED.contains(&key.as_str()) {
                value.trim().to_owned()
            } else {
                String::new()
            };
            keys.push((key, value));
        }
    }
    keys
}

/// The first [`CredentialsError`] in `err`'s chain of sources (itself included).
pub fn find_credentials_error<'a>(
    err: &'a (dyn StdError + 'static),
) -> Option<&'a CredentialsError> {
    let mut current: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(found) = e.downcast_ref::<CredentialsError>() {
            return Some(found);
        }
        current = e.source();
    }
    None
}

/// envseal's line for a credential failure: "no credentials: SOURCE WHAT".
pub fn failure_line(err: &CredentialsError, source: &Source) -> String {
    if matches!(err, CredentialsError::CredentialsNotLoaded(_))
        || matches!(source, Source::Nothing { .. })
    {
        return nothing_found(source);
    }
    format!("no credentials: {} {}", source.describe(), why(err, source))
}

fn nothing_found(source: &Source) -> String {
    let profile = match source {
        Source::Nothing {
            profile: Some(name),
        } => format!("AWS_PROFILE (profile `{name}` is in neither file)"),
        _ => "AWS_PROFILE".to_owned(),
    };
    format!(
        "no credentials: none configured (looked at AWS_ACCESS_KEY_ID, {profile}, the \
         config/credentials files, AWS_WEB_IDENTITY_TOKEN_FILE, \
         AWS_CONTAINER_CREDENTIALS_FULL_URI/RELATIVE_URI, then instance metadata{})",
        if matches!(source, Source::Nothing { .. }) {
            ", disabled by AWS_EC2_METADATA_DISABLED"
        } else {
            ""
        }
    )
}

/// What went wrong, as a verb phrase ("answered HTTP 500").
fn why(err: &CredentialsError, source: &Source) -> String {
    if let CredentialsError::ProviderTimedOut(t) = err {
        return format!(
            "did not answer within {} s",
            t.timeout_duration().as_secs().max(1)
        );
    }
    let detail = detail(err);
    let hint = match source {
        Source::Profile {
            name,
            how: ProfileHow::Sso { .. },
            ..
        } => format!(" (sign in again: aws sso login --profile {name})"),
        _ => String::new(),
    };
    if let Some(status) = between(&detail, "HTTP credential provider: StatusCode(", ")") {
        let refused = match (status, source) {
            (
                "401" | "403",
                Source::Container {
                    token_var: None, ..
                },
            ) => {
                " (no authorization token was sent: is AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE set?)"
            }
            ("401" | "403", Source::Container { .. }) => " (the authorization token was refused)",
            _ => "",
        };
        return format!("answered HTTP {status}{refused}");
    }
    if let Some(at) = detail.find(PROCESS_EXITED) {
        let status = detail[at + PROCESS_EXITED.len()..]
            .split(". ")
            .next()
            .unwrap_or("")
            .trim_end_matches('.');
        return format!("failed: the command exited with {status} (its stderr is not shown)");
    }
    if let Some(io) = find_io_error(err) {
        let file = match source {
            Source::WebIdentity { token_file } => Some(("the token file", token_file.clone())),
            Source::Container {
                token_file: Some(file),
                ..
            } => Some(("the authorization token file", file.clone())),
            _ => None,
        };
        if let Some((what, path)) = file {
            return format!("failed: cannot read {what} {path}: {io}");
        }
        return format!("failed: {io}{hint}");
    }
    if let Some(at) = detail.find(PROCESS_UNPARSED) {
        let reason = &detail[at + PROCESS_UNPARSED.len()..];
        return format!("failed: the command printed no credential JSON ({reason})");
    }
    format!("failed: {detail}{hint}")
}

/// The messages of `err`'s sources below the SDK's generic credential
/// layers, one line, stopped before a credential process's stderr.
fn detail(err: &CredentialsError) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current = err.source();
    while let Some(e) = current {
        // The generic layers ("an error occurred while loading credentials",
        // "service error") say nothing of what happened.
        let generic = e.downcast_ref::<CredentialsError>().is_some()
            || e.downcast_ref::<TokenError>().is_some()
            || e.to_string() == "service error";
        if !generic {
            parts.push(e.to_string());
        }
        current = e.source();
    }
    let mut text = parts.join(": ");
    if let Some(cut) = text.find("Stderr:") {
        text.truncate(cut);
    }
    let first = text
        .lines()
        .next()
        .unwrap_or("")
        .trim()
        .trim_end_matches('.');
    let mut out: String = first.chars().take(DETAIL_MAX_CHARS).collect();
    if out.len() < first.len() {
        out.push('…');
    }
    if out.is_empty() {
        out = err.to_string();
    }
    out
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let to = text[from..].find(end)? + from;
    Some(&text[from..to])
}

fn find_io_error(err: &CredentialsError) -> Option<&std::io::Error> {
    let mut current = err.source();
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return Some(io);
        }
        current = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn detect(vars: &[(&str, &str)], files: &[(&str, &str)]) -> Source {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let files: HashMap<String, String> = files
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Source::detect(&|name| vars.get(name).cloned(), &|path| {
            files.get(path).cloned().map(Zeroizing::new)
        })
    }

    #[test]
    fn the_chain_order_decides() {
        let profile = "[profile dev]\nsso_session = corp\nsso_account_id = 1\n";
        let all = [
            ("AWS_ACCESS_KEY_ID", "AKIA"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
            ("HOME", "/h"),
            ("AWS_PROFILE", "dev"),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", "/t"),
            ("AWS_ROLE_ARN", "arn:aws:iam::1:role/r"),
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1/x"),
        ];
        let files = [("/h/.aws/config", profile)];
        assert_eq!(detect(&all, &files), Source::Environment);
        assert!(matches!(
            detect(&all[2..], &files),
            Source::Profile { ref name, chosen: true, how: ProfileHow::Sso { session: Some(ref s) } }
                if name == "dev" && s == "corp"
        ));
        // a profile that does not exist steps aside
        assert_eq!(
            detect(&all[2..], &[]),
            Source::WebIdentity {
                token_file: "/t".into()
            }
        );
        assert!(matches!(
            detect(&all[6..], &[]),
            Source::Container {
                uri_var: "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                token_var: None,
                ..
            }
        ));
        assert_eq!(detect(&[], &[]), Source::InstanceMetadata);
        assert_eq!(
            detect(&[("AWS_EC2_METADATA_DISABLED", "TRUE")], &[]),
            Source::Nothing { profile: None }
        );
        // only half of the static keys: the environment steps aside
        assert_eq!(detect(&all[..1], &[]), Source::InstanceMetadata);
    }

    #[test]
    fn profiles_are_read_from_both_files_and_classified() {
        let config = "\
# comment
[default]
region = us-east-1
[profile base]
credential_process = /bin/cat /x
[profile ops]
role_arn = arn:aws:iam::1:role/ops
source_profile = base
[profile irsa]
role_arn = arn:aws:iam::1:role/r
web_identity_token_file = /t
[profile nested]
s3 =
  max_concurrent_requests = 1
";
        let credentials = "[default]\naws_access_key_id = AKIA\naws_secret_access_key = x\n";
        let files = [("/c", config), ("/k", credentials)];
        let how = |profile: &str| match detect(
            &[
                ("AWS_PROFILE", profile),
                ("AWS_CONFIG_FILE", "/c"),
                ("AWS_SHARED_CREDENTIALS_FILE", "/k"),
            ],
            &files,
        ) {
            Source::Profile { how, .. } => Some(how),
            _ => None,
        };
        assert_eq!(how("default"), Some(ProfileHow::StaticKeys));
        assert_eq!(how("base"), Some(ProfileHow::Process));
        assert_eq!(
            how("ops"),
            Some(ProfileHow::AssumeRole {
                source_profile: Some("base".into()),
                credential_source: None
            })
        );
        assert_eq!(how("irsa"), Some(ProfileHow::WebIdentity));
        // no credential settings (a sub-property is not a key): steps aside
        assert_eq!(how("nested"), None);
        assert_eq!(how("missing"), None);
        // the values of other keys are never kept
        let keys = section_keys(credentials, "default", false);
        assert!(keys.iter().all(|(_, v)| v.is_empty()), "{keys:?}");
    }

    #[test]
    fn lines_name_the_source_and_keep_secrets_out() {
        let ecs = Source::Container {
            uri_var: "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            token_var: None,
            token_file: None,
        };
        let err = CredentialsError::provider_error(
            "Non-success status from HTTP credential provider: StatusCode(500)",
        );
        assert_eq!(
            failure_line(&err, &ecs),
            "no credentials: the ECS container credentials endpoint \
             (AWS_CONTAINER_CREDENTIALS_FULL_URI) answered HTTP 500"
        );

        let process = Source::Profile {
            name: "dev".into(),
            chosen: true,
            how: ProfileHow::Process,
        };
        let err = CredentialsError::provider_error(
            "Error retrieving credentials: external process exited with code exit status: 1. \
             Stderr: AKIAEXAMPLE secret-in-stderr\nmore",
        );
        let line = failure_line(&err, &process);
        assert_eq!(
            line,
            "no credentials: the credential_process of profile `dev` (AWS_PROFILE) failed: \
             the command exited with exit status: 1 (its stderr is not shown)"
        );
        // any other message is cut before a process's stderr, to one line
        let err = CredentialsError::unhandled("odd. Stderr: secret\nsecond line");
        let line = failure_line(&err, &process);
        assert!(!line.contains("secret"), "{line}");
        assert!(!line.contains('\n'), "{line}");

        let web = Source::WebIdentity {
            token_file: "/var/run/token".into(),
        };
        let err =
            CredentialsError::provider_error(std::io::Error::from(std::io::ErrorKind::NotFound));
        assert!(
            failure_line(&err, &web).starts_with(
                "no credentials: web identity (AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ROLE_ARN; \
                 STS AssumeRoleWithWebIdentity) failed: cannot read the token file /var/run/token: "
            ),
            "{}",
            failure_line(&err, &web)
        );

        let err = CredentialsError::provider_timed_out(std::time::Duration::from_secs(5));
        assert!(failure_line(&err, &ecs).ends_with("did not answer within 5 s"));

        let err = CredentialsError::not_loaded("no providers in chain provided credentials");
        let nothing = Source::Nothing {
            profile: Some("typo".into()),
        };
        let line = failure_line(&err, &nothing);
        assert!(
            line.starts_with("no credentials: none configured"),
            "{line}"
        );
        assert!(line.contains("profile `typo` is in neither file"), "{line}");
    }
}
