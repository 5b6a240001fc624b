//! STS: the caller's account (for `envseal policy --resolve`), and
//! AssumeRole for references read through a role (`?role-arn=`,
//! `--role-arn`): one call per distinct role and external id, retried as
//! [`super::retry`] says, whose credentials become an [`Aws`] of their own.
//! The credentials are never logged, not even the access key id.

use tracing::debug;

use super::client::Aws;
use super::failure::classify;
use super::retry::{self, Track};
use crate::config::DEFAULT_ROLE_SESSION_NAME;
use crate::error::{FailureKind, FetchError};
use crate::reference::Role;

/// The account of the credentials in use (`GetCallerIdentity`), or `*` when
/// STS does not say.
pub async fn caller_account(aws: &Aws) -> Result<String, FetchError> {
    let sts = aws_sdk_sts::Client::new(aws.base());
    let identity = sts
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| classify(&e))?;
    Ok(identity.account().unwrap_or("*").to_owned())
}

/// The region STS is called in: the configured one, else the partition's
/// first region (a role ARN names no region; references given as ARNs need
/// none configured).
fn sts_region(aws: &Aws, role: &Role) -> String {
    if let Some(r) = aws.configured_region() {
        return r.to_owned();
    }
    match role.partition() {
        "aws-cn" => "cn-north-1",
        "aws-us-gov" => "us-gov-west-1",
        _ => "us-east-1",
    }
    .to_owned()
}

/// STS AssumeRole of `role` with the base credentials of `aws`
/// (`session_name`: `ENVSEAL_ROLE_SESSION_NAME`, else `envseal`); the same
/// configuration with the role's credentials. `track`: the requests that
/// wait on the role. Errors name the role.
pub async fn assume_role(
    aws: &Aws,
    role: &Role,
    session_name: Option<&str>,
    track: &Track<'_>,
) -> Result<Aws, FetchError> {
    let credentials = role_credentials(aws, role, session_name, track).await?;
    Ok(aws.with_credentials(credentials))
}

/// [`assume_role`]'s credentials, with their expiry.
pub async fn role_credentials(
    aws: &Aws,
    role: &Role,
    session_name: Option<&str>,
    track: &Track<'_>,
) -> Result<aws_credential_types::Credentials, FetchError> {
    let region = sts_region(aws, role);
    let config = aws_sdk_sts::config::Builder::from(aws.base())
        .region(aws_config::Region::new(region))
        .build();
    let sts = aws_sdk_sts::Client::from_conf(config);
    let session = session_name.unwrap_or(DEFAULT_ROLE_SESSION_NAME);
    debug!(role = %role.arn, session, "sts AssumeRole");
    let output = retry::send(aws.retrier(), "sts", None, track, || {
        sts.assume_role()
            .role_arn(&role.arn)
            .role_session_name(session)
            .set_external_id(role.external_id.clone())
            .send()
    })
    .await
    .map_err(|e| {
        let mut e = e.classify();
        e.reason = format!("assuming role {}: {}", role.arn, e.reason);
        e
    })?;
    let Some(c) = output.credentials() else {
        return Err(FetchError::new(
            FailureKind::Service,
            format!(
                "assuming role {}: STS answered without credentials",
                role.arn
            ),
        ));
    };
    let credentials = aws_credential_types::Credentials::new(
        c.access_key_id(),
        c.secret_access_key(),
        Some(c.session_token().to_owned()),
        std::time::SystemTime::try_from(*c.expiration()).ok(),
        "envseal-assume-role",
    );
    debug!(role = %role.arn, "sts AssumeRole done");
    Ok(credentials)
}
