//! S3 objects: one GetObject per distinct object (all at once), then the
//! body decoded as PRODUCT.md §5 says:
//!
//! 1. an S3 Encryption Client envelope in the object's metadata, or in
//!    `KEY.instruction` (fetched only when the metadata points there, or with
//!    `?encryption=envelope` and no envelope in the metadata: the one case
//!    that costs a second round trip) — KMS `Decrypt` of the data key with the
//!    envelope's encryption context, then AES;
//! 2. a KMS ciphertext blob, raw or base64 — KMS `Decrypt`;
//! 3. plaintext.
//!
//! `?encryption=kms|envelope|none` forces the choice. AWS Encryption SDK
//! messages are recognised and refused. The answer is the decrypted body as
//! bytes; turning it into values is `environment`'s job.

use std::collections::BTreeMap;

use futures_util::future::join_all;
use tracing::debug;
use zeroize::Zeroizing;

use super::{classify, kms, Fetched, Sink};
use crate::aws::Aws;
use crate::document::envelope::{self, Envelope, EnvelopeError, INSTRUCTION_SUFFIX};
use crate::error::{FailureKind, FetchError};
use crate::plan::Request;
use crate::reference::{Encryption, S3Object};

/// The largest object envelope reads. A secrets document is a few KiB, and
/// an environment cannot hold more than a few MiB anyway.
pub const MAX_OBJECT_BYTES: u64 = 8 * 1024 * 1024;

/// The raw object: body (zeroized on drop) and user metadata (names without
/// `x-amz-meta-`, lower-cased by S3).
struct RawObject {
    body: Zeroizing<Vec<u8>>,
    metadata: Vec<(String, String)>,
}

/// What to do with a body, decided from metadata and content alone.
#[derive(Debug, PartialEq, Eq)]
enum Decoding {
    Plain,
    /// KMS `Decrypt` of this ciphertext blob, no encryption context.
    Kms(Vec<u8>),
    /// An envelope found in the metadata.
    Envelope(Box<Envelope>),
    /// The envelope should be in `KEY.instruction`.
    InstructionFile,
}

pub async fn fetch(aws: &Aws, objects: &[S3Object], sink: &Sink) {
    if objects.is_empty() {
        // No client (and none of its endpoint set-up) for nothing.
        return;
    }
    let client = match aws.s3() {
        Ok(c) => c,
        Err(e) => {
            for o in objects {
                sink.put(Request::S3(o.clone()), Err(e.clone()));
            }
            return;
        }
    };
    // `s3://b/k` and `s3://b/k?encryption=kms` are one object: GET it once.
    let mut by_object: BTreeMap<(&str, &str), Vec<&S3Object>> = BTreeMap::new();
    for o in objects {
        by_object
            .entry((o.bucket.as_str(), o.key.as_str()))
            .or_default()
            .push(o);
    }
    let jobs = by_object.into_iter().map(|((bucket, key), wanted)| {
        let client = &client;
        async move {
            match get_object(client, bucket, key).await {
                Err(e) => {
                    for o in wanted {
                        sink.put(Request::S3(o.clone()), Err(e.clone()));
                    }
                }
                Ok(raw) => {
                    let raw = &raw;
                    join_all(wanted.into_iter().map(|o| async move {
                        let answer = decode(aws, client, o, raw).await.map(Fetched::Bytes);
                        sink.put(Request::S3(o.clone()), answer);
                    }))
                    .await;
                }
            }
        }
    });
    join_all(jobs).await;
}

/// One object, fetched and decoded (for `envseal pull`).
pub async fn fetch_one(aws: &Aws, object: &S3Object) -> Result<Zeroizing<Vec<u8>>, FetchError> {
    let client = aws.s3()?;
    let raw = get_object(&client, &object.bucket, &object.key).await?;
    decode(aws, &client, object, &raw).await
}

async fn get_object(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> Result<RawObject, FetchError> {
    debug!(bucket, key, "s3 GetObject");
    let output = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| {
            let mut e = classify(&e);
            if e.kind == FailureKind::NotFound {
                e.reason = if e.reason.starts_with("NoSuchBucket") {
                    "bucket not found".into()
                } else {
                    "object not found".into()
                };
            }
            e
        })?;
    if let Some(len) = output.content_length() {
        check_size(u64::try_from(len).unwrap_or(0))?;
    }
    let metadata: Vec<(String, String)> = output
        .metadata()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    let bytes = output.body.collect().await.map_err(|_| {
        FetchError::new(
            FailureKind::Service,
            "the object's body could not be read to the end",
        )
    })?;
    let mut body = Zeroizing::new(Vec::new());
    for chunk in bytes.into_segments() {
        check_size((body.len() + chunk.len()) as u64)?;
        body.extend_from_slice(&chunk);
    }
    Ok(RawObject { body, metadata })
}

fn check_size(len: u64) -> Result<(), FetchError> {
    if len > MAX_OBJECT_BYTES {
        return Err(FetchError::new(
            FailureKind::InvalidValue,
            format!(
                "object is larger than {} MiB; envseal reads configuration documents, not data",
                MAX_OBJECT_BYTES / (1024 * 1024)
            ),
        ));
    }
    Ok(())
}

async fn decode(
    aws: &Aws,
    client: &aws_sdk_s3::Client,
    object: &S3Object,
    raw: &RawObject,
) -> Result<Zeroizing<Vec<u8>>, FetchError> {
    match decide(object.encryption, &raw.metadata, &raw.body)? {
        Decoding::Plain => Ok(raw.body.clone()),
        Decoding::Kms(blob) => {
            let client = aws.kms(None)?;
            kms::decrypt(&client, &blob, &BTreeMap::new()).await
        }
        Decoding::Envelope(env) => open_envelope(aws, &env, &raw.body).await,
        Decoding::InstructionFile => {
            let instruction_key = format!("{}{INSTRUCTION_SUFFIX}", object.key);
            let instruction = match get_object(client, &object.bucket, &instruction_key).await {
                Ok(i) => i,
                // The object exists, so this is not "not found" (which
                // `?optional` would forgive).
                Err(e) if e.kind == FailureKind::NotFound => {
                    return Err(FetchError::new(
                        FailureKind::InvalidValue,
                        if object.encryption == Encryption::Envelope {
                            "no S3 encryption envelope in the object's metadata, and KEY.instruction does not exist"
                        } else {
                            "the object's metadata says its S3 encryption envelope is in KEY.instruction, which does not exist"
                        },
                    ))
                }
                Err(e) => return Err(prefixed("KEY.instruction", e)),
            };
            let env = envelope::parse_instruction_with_metadata(&instruction.body, &raw.metadata)
                .map_err(envelope_error)?;
            open_envelope(aws, &env, &raw.body).await
        }
    }
}

/// The decision from metadata and body (pure).
fn decide(
    encryption: Encryption,
    metadata: &[(String, String)],
    body: &[u8],
) -> Result<Decoding, FetchError> {
    let in_metadata = || match envelope::detect(metadata) {
        Some(Ok(env)) => Ok(Some(Decoding::Envelope(Box::new(env)))),
        Some(Err(e)) => Err(envelope_error(e)),
        None => Ok(None),
    };
    match encryption {
        Encryption::None => Ok(Decoding::Plain),
        Encryption::Kms => Ok(Decoding::Kms(forced_kms_blob(body))),
        Encryption::Envelope => Ok(in_metadata()?.unwrap_or(Decoding::InstructionFile)),
        Encryption::Auto => {
            if let Some(d) = in_metadata()? {
                return Ok(d);
            }
            if envelope::instruction_file_hint(metadata) {
                return Ok(Decoding::InstructionFile);
            }
            if envelope::looks_like_encryption_sdk_message(body) {
                return Err(FetchError::new(
                    FailureKind::Unsupported,
                    "the object is an AWS Encryption SDK message (aws-encryption-cli output), which is not supported; store a base64 KMS ciphertext or an S3 Encryption Client object instead",
                ));
            }
            Ok(match envelope::kms_ciphertext_candidate(body) {
                Some(blob) => Decoding::Kms(blob),
                None => Decoding::Plain,
            })
        }
    }
}

/// `?encryption=kms`: the body is a ciphertext blob whatever it looks like:
/// base64 (whitespace ignored) when it is all base64, else the raw bytes.
fn forced_kms_blob(body: &[u8]) -> Vec<u8> {
    use base64::Engine;
    if let Some(blob) = envelope::kms_ciphertext_candidate(body) {
        return blob;
    }
    let text: Vec<u8> = body
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    match engine.decode(&text) {
        Ok(blob) if !blob.is_empty() => blob,
        _ => body.to_vec(),
    }
}

async fn open_envelope(
    aws: &Aws,
    env: &Envelope,
    body: &[u8],
) -> Result<Zeroizing<Vec<u8>>, FetchError> {
    let region = env.kms_key_id().as_deref().and_then(kms_arn_region);
    let client = aws.kms(region.as_deref())?;
    let data_key = kms::decrypt(&client, env.wrapped_key(), &env.kms_encryption_context())
        .await
        .map_err(|e| prefixed("unwrapping the data key", e))?;
    env.decrypt(&data_key, body).map_err(envelope_error)
}

/// The region of a KMS key or alias ARN (`arn:aws:kms:REGION:ACCOUNT:key/…`),
/// so that an envelope written with a key in another region is unwrapped
/// there. A key id or `alias/…` says nothing: the configured region is used.
pub(crate) fn kms_arn_region(key: &str) -> Option<String> {
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

fn prefixed(what: &str, mut e: FetchError) -> FetchError {
    e.reason = format!("{what}: {}", e.reason);
    e
}

/// Envelope problems: a failed check is a decryption failure; a format
/// envseal cannot read is unsupported; anything else is a malformed object.
fn envelope_error(e: EnvelopeError) -> FetchError {
    use EnvelopeError::*;
    let kind = match &e {
        AuthenticationFailed
        | BadPadding
        | CommitmentMismatch
        | LengthMismatch { .. }
        | BadCiphertextLength { .. }
        | CekAlgMismatch { .. }
        | DataKeyLength { .. } => FailureKind::Decrypt,
        LegacyV1Envelope
        | UnsupportedWrapAlg { .. }
        | UnsupportedContentAlg { .. }
        | UnsupportedTagLength { .. } => FailureKind::Unsupported,
        _ => FailureKind::InvalidValue,
    };
    FetchError::new(kind, e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

    fn md(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// A moto-shaped KMS blob: the key id as ASCII, then binary.
    fn moto_blob() -> Vec<u8> {
        let mut blob = b"da7276fb-f23e-4b50-a494-d0411daccaff".to_vec();
        blob.extend((0u8..60).map(|i| i.wrapping_mul(37) ^ 0xA5));
        blob
    }

    fn pushed_envelope() -> Vec<(String, String)> {
        let (_, metadata) =
            envelope::encrypt_v2(&[7; 32], &moto_blob(), "alias/app", b"A=1\n", [1; 12]);
        metadata
    }

    #[test]
    fn plaintext_documents_stay_plain() {
        for body in [
            &b"A=1\nB=2\n"[..],
            b"{\"a\": \"b\"}",
            b"",
            b"aGVsbG8=", // base64, but not of a KMS blob
        ] {
            assert_eq!(
                decide(Encryption::Auto, &[], body).unwrap(),
                Decoding::Plain
            );
        }
        // Unrelated metadata changes nothing.
        let meta = md(&[("owner", "ops")]);
        assert_eq!(
            decide(Encryption::Auto, &meta, b"A=1").unwrap(),
            Decoding::Plain
        );
    }

    #[test]
    fn kms_blobs_raw_or_base64_are_detected() {
        let blob = moto_blob();
        assert_eq!(
            decide(Encryption::Auto, &[], &blob).unwrap(),
            Decoding::Kms(blob.clone())
        );
        let mut wrapped = B64.encode(&blob).into_bytes();
        wrapped.insert(20, b'\n');
        wrapped.push(b'\n');
        assert_eq!(
            decide(Encryption::Auto, &[], &wrapped).unwrap(),
            Decoding::Kms(blob)
        );
    }

    #[test]
    fn forcing_overrides_detection() {
        let blob = moto_blob();
        assert_eq!(
            decide(Encryption::None, &pushed_envelope(), &blob).unwrap(),
            Decoding::Plain
        );
        // Not recognisable as a KMS blob, but forced: base64 decoded...
        assert_eq!(
            decide(Encryption::Kms, &[], b"AAEC\nAw==\n").unwrap(),
            Decoding::Kms(vec![0, 1, 2, 3])
        );
        // ...or taken raw when it is not base64.
        assert_eq!(
            decide(Encryption::Kms, &[], b"\x00\x01binary").unwrap(),
            Decoding::Kms(b"\x00\x01binary".to_vec())
        );
        // An envelope is required, and none in the metadata means KEY.instruction.
        assert_eq!(
            decide(Encryption::Envelope, &[], b"whatever").unwrap(),
            Decoding::InstructionFile
        );
        assert!(matches!(
            decide(Encryption::Envelope, &pushed_envelope(), b"x").unwrap(),
            Decoding::Envelope(_)
        ));
    }

    #[test]
    fn envelopes_in_metadata_any_case() {
        let upper: Vec<(String, String)> = pushed_envelope()
            .into_iter()
            .map(|(k, v)| (format!("X-Amz-Meta-{}", k.to_ascii_uppercase()), v))
            .collect();
        for meta in [pushed_envelope(), upper] {
            let Decoding::Envelope(env) = decide(Encryption::Auto, &meta, b"body").unwrap() else {
                panic!("no envelope found");
            };
            assert_eq!(env.wrapped_key(), &moto_blob()[..]);
            assert_eq!(
                env.kms_encryption_context(),
                BTreeMap::from([(
                    "aws:x-amz-cek-alg".to_owned(),
                    "AES/GCM/NoPadding".to_owned()
                )])
            );
        }
    }

    #[test]
    fn instruction_file_only_when_hinted() {
        // V3 leaves x-amz-c/d/i in the metadata; Ruby leaves the length.
        let v3 = md(&[("x-amz-c", "115"), ("x-amz-d", "AA"), ("x-amz-i", "AA")]);
        assert_eq!(
            decide(Encryption::Auto, &v3, b"\x01\x02").unwrap(),
            Decoding::InstructionFile
        );
        let ruby = md(&[("x-amz-unencrypted-content-length", "12")]);
        assert_eq!(
            decide(Encryption::Auto, &ruby, b"\x01\x02").unwrap(),
            Decoding::InstructionFile
        );
    }

    #[test]
    fn bad_envelopes_and_esdk_messages_are_errors_without_content() {
        let mut meta = pushed_envelope();
        for (k, v) in meta.iter_mut() {
            if k == "x-amz-cek-alg" {
                *v = "AES/CBC/PKCS5Padding".into();
            }
        }
        let e = decide(Encryption::Auto, &meta, b"x").unwrap_err();
        assert_eq!(e.kind, FailureKind::Decrypt, "{e:?}");

        let v1 = md(&[
            ("x-amz-key", "AAAA"),
            ("x-amz-iv", "AAAA"),
            ("x-amz-matdesc", "{}"),
        ]);
        let e = decide(Encryption::Auto, &v1, b"x").unwrap_err();
        assert_eq!(e.kind, FailureKind::Unsupported);

        let mut esdk = vec![0x02, 0x05, 0x78];
        esdk.extend([0x5A; 80]);
        let e = decide(Encryption::Auto, &[], &esdk).unwrap_err();
        assert_eq!(e.kind, FailureKind::Unsupported);
        assert!(e.reason.contains("Encryption SDK"));
        let e = decide(Encryption::Auto, &[], B64.encode(&esdk).as_bytes()).unwrap_err();
        assert_eq!(e.kind, FailureKind::Unsupported);
    }

    #[test]
    fn envelope_errors_map_to_kinds() {
        assert_eq!(
            envelope_error(EnvelopeError::AuthenticationFailed).kind,
            FailureKind::Decrypt
        );
        assert_eq!(
            envelope_error(EnvelopeError::BadPadding).kind,
            FailureKind::Decrypt
        );
        assert_eq!(
            envelope_error(EnvelopeError::LegacyV1Envelope).kind,
            FailureKind::Unsupported
        );
        assert_eq!(
            envelope_error(EnvelopeError::NoEnvelope).kind,
            FailureKind::InvalidValue
        );
    }

    #[test]
    fn tampered_body_is_refused_by_the_envelope() {
        let key = [9u8; 32];
        let (mut body, meta) =
            envelope::encrypt_v2(&key, &moto_blob(), "k", b"SECRET=hunter2\n", [3; 12]);
        let Decoding::Envelope(env) = decide(Encryption::Auto, &meta, &body).unwrap() else {
            panic!()
        };
        assert_eq!(&env.decrypt(&key, &body).unwrap()[..], b"SECRET=hunter2\n");
        body[2] ^= 1;
        let e = envelope_error(env.decrypt(&key, &body).unwrap_err());
        assert_eq!(e.kind, FailureKind::Decrypt);
        assert!(!e.reason.contains("hunter2"));
    }

    #[test]
    fn region_from_kms_arns_only() {
        assert_eq!(
            kms_arn_region("arn:aws:kms:eu-west-1:123456789012:key/abcd").as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(
            kms_arn_region("arn:aws-cn:kms:cn-north-1:123:alias/app").as_deref(),
            Some("cn-north-1")
        );
        assert_eq!(kms_arn_region("alias/app"), None);
        assert_eq!(kms_arn_region("da7276fb-f23e-4b50-a494-d0411daccaff"), None);
        assert_eq!(kms_arn_region("arn:aws:s3:::bucket"), None);
        assert_eq!(kms_arn_region("arn:aws:kms::123:key/x"), None);
    }

    #[test]
    fn size_limit() {
        assert!(check_size(MAX_OBJECT_BYTES).is_ok());
        let e = check_size(MAX_OBJECT_BYTES + 1).unwrap_err();
        assert_eq!(e.kind, FailureKind::InvalidValue);
    }
}
