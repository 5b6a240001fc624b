//! KMS: `Decrypt` of inline `kms:BASE64` ciphertext blobs, all at once, in
//! the configured region (or `?region=`); also the one `Decrypt` helper the S3 backend uses
//! for envelope data keys and KMS-ciphertext objects.

use std::collections::BTreeMap;

use futures_util::future::join_all;
use tracing::debug;
use zeroize::Zeroizing;

use super::client::Aws;
use super::retry::{self, Track};
use super::sink::Sink;
use crate::error::{FailureKind, FetchError};
use crate::plan::Fetched;
use crate::plan::Request;
use crate::reference::KmsBlob;

pub async fn fetch(aws: &Aws, blobs: &[KmsBlob], sink: &Sink) {
    let jobs = blobs.iter().map(|blob| async move {
        let track = Track::one(sink, Request::Kms(blob.clone()));
        let region = blob.region.as_deref();
        let answer = match aws.kms(region) {
            Ok(client) => decrypt(
                aws,
                &client,
                aws.region_key(region),
                &blob.ciphertext,
                &BTreeMap::new(),
                &track,
            )
            .await
            .map(Fetched::Bytes),
            Err(e) => Err(e),
        };
        sink.put(Request::Kms(blob.clone()), answer);
    });
    join_all(jobs).await;
}

/// KMS `Decrypt` of `blob` with exactly this encryption context (empty: none),
/// retried as [`retry`] says (`region`: the throttling key). The plaintext is
/// zeroized on drop. Errors say what KMS said (codes and messages name keys,
/// never plaintext).
pub async fn decrypt(
    aws: &Aws,
    client: &aws_sdk_kms::Client,
    region: Option<&str>,
    blob: &[u8],
    context: &BTreeMap<String, String>,
    track: &Track<'_>,
) -> Result<Zeroizing<Vec<u8>>, FetchError> {
    debug!(
        blob_bytes = blob.len(),
        context_keys = context.len(),
        "kms Decrypt"
    );
    let context = if context.is_empty() {
        None
    } else {
        Some(
            context
                .clone()
                .into_iter()
                .collect::<std::collections::HashMap<_, _>>(),
        )
    };
    let output = retry::send(aws.retrier(), "kms", region, track, || {
        client
            .decrypt()
            .ciphertext_blob(aws_smithy_types::Blob::new(blob.to_vec()))
            .set_encryption_context(context.clone())
            .send()
    })
    .await
    .map_err(|e| {
            let mut e = e.classify();
            e.reason = if e.reason.starts_with("InvalidCiphertextException") {
                format!(
                    "KMS Decrypt: {} (the ciphertext is damaged, or its encryption context or key is not the one it was made with)",
                    e.reason
                )
            } else {
                format!("KMS Decrypt: {}", e.reason)
            };
            if e.kind == FailureKind::NotFound {
                // The key of the ciphertext is gone: the value cannot be read,
                // and `?optional` must not hide that.
                e.kind = FailureKind::Decrypt;
            }
            e
        })?;
    match output.plaintext {
        Some(p) => Ok(Zeroizing::new(p.into_inner())),
        None => Err(FetchError::new(
            FailureKind::Decrypt,
            "KMS Decrypt returned no plaintext",
        )),
    }
}
/// A fresh AES-256 data key from `GenerateDataKey` under `kms_key`, with
/// this encryption context (for `envseal push`): the plaintext key, the
/// wrapped key, and the ARN of the key that wrapped it.
pub async fn generate_data_key(
    aws: &Aws,
    kms_key: &str,
    context: BTreeMap<String, String>,
) -> Result<DataKey, FetchError> {
    let region = arn_region(kms_key);
    let kms = aws.kms(region.as_deref())?;
    let generated = kms
        .generate_data_key()
        .key_id(kms_key)
        .key_spec(aws_sdk_kms::types::DataKeySpec::Aes256)
        .set_encryption_context(Some(context.into_iter().collect()))
        .send()
        .await
        .map_err(|e| {
            let mut e = super::failure::classify(&e);
            e.reason = format!("KMS GenerateDataKey: {}", e.reason);
            e
        })?;
    let plaintext = Zeroizing::new(
        generated
            .plaintext
            .map(aws_smithy_types::Blob::into_inner)
            .unwrap_or_default(),
    );
    let mut key = Zeroizing::new([0u8; 32]);
    if plaintext.len() != key.len() {
        return Err(FetchError::new(
            FailureKind::Service,
            format!(
                "KMS GenerateDataKey returned a {}-byte data key, expected 32",
                plaintext.len()
            ),
        ));
    }
    key.copy_from_slice(&plaintext);
    let wrapped = generated
        .ciphertext_blob
        .map(aws_smithy_types::Blob::into_inner)
        .filter(|b| !b.is_empty())
        .ok_or_else(|| {
            FetchError::new(
                FailureKind::Service,
                "KMS GenerateDataKey returned no CiphertextBlob",
            )
        })?;
    let key_arn = generated.key_id.unwrap_or_else(|| kms_key.to_owned());
    Ok(DataKey {
        key,
        wrapped,
        key_arn,
    })
}

/// What `GenerateDataKey` returned.
pub struct DataKey {
    /// The plaintext data key (zeroized on drop).
    pub key: Zeroizing<[u8; 32]>,
    /// The data key wrapped by KMS.
    pub wrapped: Vec<u8>,
    /// The ARN of the KMS key (or the key as given, if KMS did not say).
    pub key_arn: String,
}

/// The region of a KMS key or alias ARN (`arn:aws:kms:REGION:ACCOUNT:key/…`),
/// so that an envelope written with a key in another region is unwrapped
/// there. A key id or `alias/…` says nothing: the configured region is used.
pub fn arn_region(key: &str) -> Option<String> {
    let mut parts = key.splitn(6, ':');
    let (arn, _partition, service, region) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let valid = arn == "arn"
        && service == "kms"
        && !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    valid.then(|| region.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_from_kms_arns_only() {
        assert_eq!(
            arn_region("arn:aws:kms:eu-west-1:123456789012:key/abcd").as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(
            arn_region("arn:aws-cn:kms:cn-north-1:123:alias/app").as_deref(),
            Some("cn-north-1")
        );
        assert_eq!(arn_region("alias/app"), None);
        assert_eq!(arn_region("da7276fb-f23e-4b50-a494-d0411daccaff"), None);
        assert_eq!(arn_region("arn:aws:s3:::bucket"), None);
        assert_eq!(arn_region("arn:aws:kms::123:key/x"), None);
    }
}
