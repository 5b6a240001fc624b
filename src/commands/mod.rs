//! One module per subcommand, each called from `lib.rs`'s dispatch with
//! everything it needs. Commands call down (into `pipeline`, `config`,
//! `backend/`, `process/`); nothing below imports them.

pub mod check;
pub mod exec;
pub mod export;
pub mod install;
pub mod policy;
pub mod pull;
pub mod push;

use std::ffi::OsString;
use std::io::Write;
use std::time::Duration;

use crate::config::{self, AwsSettings, Flags};
use crate::error::Error;
use crate::reference::{self, S3Ref, Target};

/// Writes `bytes` to stdout and flushes.
fn write_stdout(bytes: &[u8]) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|_| out.flush())
        .map_err(|e| Error::Stdout {
            reason: e.to_string(),
        })
}

/// What `push` and `pull` read of the configuration, after starting logging
/// (`--log-level` / `ENVSEAL_LOG`, `ENVSEAL_LOG_FORMAT`): the deadline
/// (`--timeout` / `ENVSEAL_TIMEOUT`) and the AWS settings. Nothing else is
/// read, so that a resolution setting cannot fail them.
fn start_transfer(
    log_level: &Option<String>,
    timeout: &Option<String>,
    env: &[(OsString, OsString)],
) -> Result<(Duration, AwsSettings), Error> {
    let flags = Flags {
        log_level: log_level.clone(),
        timeout: timeout.clone(),
        ..Flags::default()
    };
    crate::log::start(&flags, env)?;
    let timeout = config::timeout(&flags, env)?;
    Ok((timeout, AwsSettings::from_env(env)))
}

/// The AWS configuration of `push` and `pull`: with the credentials of
/// `role` (`?role-arn=` on the target) when there is one.
async fn load_aws(
    settings: &AwsSettings,
    role: Option<&reference::Role>,
) -> Result<crate::backend::client::Aws, crate::error::FetchError> {
    let aws = crate::backend::client::Aws::load(settings).await;
    match role {
        None => Ok(aws),
        Some(role) => {
            let track = crate::backend::retry::Track::none();
            let session = settings.role_session_name.as_deref();
            crate::backend::sts::assume_role(&aws, role, session, &track).await
        }
    }
}

/// The `s3://BUCKET/KEY` that `push` and `pull` name.
fn s3_target(text: &str) -> Result<S3Ref, Error> {
    let reference = reference::parse_reference(text)
        .map_err(|e| Error::Config(format!("{text:?} is not an s3://BUCKET/KEY URL: {e}")))?;
    match reference.target {
        Target::S3(s3) if !reference.optional => Ok(s3),
        Target::S3(_) => Err(Error::Config(
            "?optional makes no sense here: a missing object is an error".into(),
        )),
        _ => Err(Error::Config(format!(
            "{text:?} is not an s3://BUCKET/KEY URL"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::Encryption;

    #[test]
    fn targets_are_s3_objects() {
        let t = s3_target("s3://cfg/app/prod.env").unwrap();
        assert_eq!(t.object.bucket, "cfg");
        assert_eq!(t.object.key, "app/prod.env");
        assert_eq!(t.field, None);
        let t = s3_target("s3://cfg/app/prod.env?encryption=kms#A").unwrap();
        assert_eq!(t.object.encryption, Encryption::Kms);
        assert_eq!(t.field.as_deref(), Some("A"));
        for bad in [
            "ssm:/x",
            "s3://cfg/",
            "s3://cfg/x?optional",
            "cfg/x",
            "kms:AAAA",
        ] {
            assert!(matches!(s3_target(bad), Err(Error::Config(_))), "{bad}");
        }
    }

    #[test]
    fn timeouts_from_flag_or_environment() {
        let timeout = |log: Option<&str>, flag: Option<&str>, env: &[(OsString, OsString)]| {
            start_transfer(&log.map(str::to_owned), &flag.map(str::to_owned), env)
                .map(|(timeout, _)| timeout)
        };
        let env = vec![(OsString::from("ENVSEAL_TIMEOUT"), OsString::from("2m"))];
        assert_eq!(timeout(None, None, &env).unwrap(), Duration::from_secs(120));
        assert_eq!(
            timeout(None, Some("500ms"), &env).unwrap(),
            Duration::from_millis(500)
        );
        assert_eq!(timeout(None, None, &[]).unwrap(), config::DEFAULT_TIMEOUT);
        assert!(timeout(None, Some("soon"), &[]).is_err());
        assert!(timeout(Some("loud"), None, &[]).is_err());
    }
}
