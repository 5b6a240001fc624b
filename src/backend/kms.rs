//! KMS: `Decrypt` of inline `kms:BASE64` ciphertext blobs, all at once, in
//! the configured region; also the one `Decrypt` helper the S3 backend uses
//! for envelope data keys and KMS-ciphertext objects.

use std::collections::BTreeMap;

use futures_util::future::join_all;
use tracing::debug;
use zeroize::Zeroizing;

use super::retry::{self, Track};
use super::{Fetched, Sink};
use crate::aws::Aws;
use crate::error::{FailureKind, FetchError};
use crate::plan::Request;
use crate::reference::KmsBlob;

pub async fn fetch(aws: &Aws, blobs: &[KmsBlob], sink: &Sink) {
    let jobs = blobs.iter().map(|blob| async move {
        let track = Track::one(sink, Request::Kms(blob.clone()));
        let answer = match aws.kms(None) {
            Ok(client) => decrypt(aws, &client, None, &blob.0, &BTreeMap::new(), &track)
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
