//! STS: the caller's account (for `envseal policy --resolve`).

use super::client::Aws;
use super::failure::classify;
use crate::error::FetchError;

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
