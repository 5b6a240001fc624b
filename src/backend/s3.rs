//! S3 objects: one GetObject per distinct object (all at once), then the
//! body decoded as PRODUCT.md §5 says:
//!
//! 1. an S3 Encryption Client envelope in the object's metadata, or in
//!    `KEY.instruction` — KMS `Decrypt` of the data key with the envelope's
//!    encryption context, then AES. `KEY.instruction` costs a second round
//!    trip, taken only when the metadata points there, with
//!    `?encryption=envelope` and no envelope in the metadata, or when the body
//!    would otherwise be taken for plaintext but is not UTF-8 (Go's and
//!    Java's instruction-file objects leave no trace in the metadata; their
//!    body is binary ciphertext);
//! 2. a KMS ciphertext blob, raw or base64 — KMS `Decrypt`;
//! 3. plaintext.
//!
//! `?encryption=kms|envelope|none` forces the choice. AWS Encryption SDK
//! messages are recognised and refused. The answer is the decrypted body as
//! bytes; turning it into values is `environment`'s job.

use std::collections::BTreeMap;

use futures_util::future::join_all;
use tracing::{debug, info, warn};
use zeroize::{Zeroize, Zeroizing};

use super::client::Aws;
use super::failure::classify;
use super::kms;
use super::retry::{self, Retryable, Track, Transient};
use super::sink::Sink;
use crate::error::{FailureKind, FetchError};
use crate::plan::Fetched;
use crate::plan::Request;
use crate::reference::{Encryption, S3Object};
use crate::s3ec::{
    cipher, envelope, sniff, ContentAlg, Envelope, EnvelopeError, INSTRUCTION_SUFFIX,
};

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
    /// Plaintext by every sign in the metadata, but the body is binary (not
    /// UTF-8): the envelope may be in `KEY.instruction`. Plaintext if that
    /// object does not exist.
    PlainUnlessInstructionFile,
}

/// The wanted objects by (region, bucket, key): references that differ only
/// in their options name one object, read (or, under `--watch`, HEADed) once.
pub type ByObject<'a> = BTreeMap<(Option<&'a str>, &'a str, &'a str), Vec<&'a S3Object>>;

pub fn by_object(objects: &[S3Object]) -> ByObject<'_> {
    let mut by_object = ByObject::new();
    for o in objects {
        by_object
            .entry((o.region.as_deref(), o.bucket.as_str(), o.key.as_str()))
            .or_default()
            .push(o);
    }
    by_object
}

pub async fn fetch(aws: &Aws, objects: &[S3Object], sink: &Sink) {
    if objects.is_empty() {
        // No client (and none of its endpoint set-up) for nothing.
        return;
    }
    // `s3://b/k` and `s3://b/k?encryption=kms` are one object: GET it once.
    let by_object = by_object(objects);
    let jobs = by_object
        .into_iter()
        .map(|((region, bucket, key), wanted)| async move {
            let track = Track::new(
                sink,
                wanted.iter().map(|o| Request::S3((*o).clone())).collect(),
            );
            let track = &track;
            match get_object(aws, region, bucket, key, track).await {
                Err(e) => {
                    for o in wanted {
                        sink.put(Request::S3(o.clone()), Err(e.clone()));
                    }
                }
                Ok(raw) => {
                    let raw = &raw;
                    join_all(wanted.into_iter().map(|o| async move {
                        let answer = decode(aws, o, raw, track).await.map(Fetched::Bytes);
                        sink.put(Request::S3(o.clone()), answer);
                    }))
                    .await;
                }
            }
        });
    join_all(jobs).await;
}

/// One object, fetched and decoded (for `envseal pull`).
pub async fn fetch_one(aws: &Aws, object: &S3Object) -> Result<Zeroizing<Vec<u8>>, FetchError> {
    let track = Track::none();
    let region = object.region.as_deref();
    let raw = get_object(aws, region, &object.bucket, &object.key, &track).await?;
    decode(aws, object, &raw, &track).await
}

/// How one GetObject attempt ends when it does not end with the object.
enum GetError {
    Sdk(Box<aws_sdk_s3::error::SdkError<aws_sdk_s3::operation::get_object::GetObjectError>>),
    /// The body stopped short (the connection dropped): worth another try.
    Body,
    /// Anything else (too big): final.
    Final(FetchError),
}

impl Retryable for GetError {
    fn transient(&self) -> Option<Transient> {
        match self {
            GetError::Sdk(e) => e.transient(),
            GetError::Body => Some(Transient::Other(
                "the connection dropped in the middle of the body".to_owned(),
            )),
            GetError::Final(_) => None,
        }
    }
}

impl GetError {
    /// The region S3 named when it answered that the bucket is elsewhere.
    fn redirect_region(&self) -> Option<String> {
        let GetError::Sdk(e) = self else { return None };
        let raw = e.raw_response()?;
        if !matches!(raw.status().as_u16(), 301 | 307 | 400) {
            return None;
        }
        raw.headers()
            .get("x-amz-bucket-region")
            .filter(|r| crate::reference::valid_region(r))
            .map(str::to_owned)
    }

    fn to_fetch_error(&self) -> FetchError {
        match self {
            GetError::Sdk(e) => {
                let mut e = classify(e);
                if e.kind == FailureKind::NotFound {
                    e.reason = if e.reason.starts_with("NoSuchBucket") {
                        "bucket not found".into()
                    } else {
                        "object not found".into()
                    };
                }
                e
            }
            GetError::Body => FetchError::new(
                FailureKind::Service,
                "the object's body could not be read to the end",
            ),
            GetError::Final(e) => e.clone(),
        }
    }
}

/// The region the bucket of `object` is read in: where a redirect said it
/// is, else `?region=`, else the configured one (`None`). KMS calls for its
/// envelopes and blobs go there too unless the envelope names a key ARN.
fn bucket_region(aws: &Aws, object: &S3Object) -> Option<String> {
    aws.bucket_region(&object.bucket)
        .or_else(|| object.region.clone())
}

/// GetObject and the whole body, retried (one attempt: the request and the
/// body, within the attempt time limit), in `region` (`None`: the
/// configured one) unless a redirect already said where the bucket is.
/// When S3 answers that the bucket is in another region (301
/// PermanentRedirect, 307, or 400 AuthorizationHeaderMalformed, with
/// `x-amz-bucket-region`), the request is sent once more, there: one extra
/// round trip, and later requests for the bucket go there at once.
async fn get_object(
    aws: &Aws,
    region: Option<&str>,
    bucket: &str,
    key: &str,
    track: &Track<'_>,
) -> Result<RawObject, FetchError> {
    let region = aws.bucket_region(bucket).or(region.map(str::to_owned));
    let region = aws.region_key(region.as_deref()).map(str::to_owned);
    let client = aws.s3(region.as_deref())?;
    debug!(bucket, key, ?region, "s3 GetObject");
    let failed = match retry::send(aws.retrier(), "s3", region.as_deref(), track, || {
        get_object_once(&client, bucket, key)
    })
    .await
    {
        Ok(raw) => return Ok(raw),
        Err(failed) => failed,
    };
    let signed_in = region.as_deref().or(aws.configured_region());
    let moved = failed
        .err
        .as_ref()
        .and_then(GetError::redirect_region)
        .filter(|r| Some(r.as_str()) != signed_in);
    let Some(moved) = moved else {
        return Err(failed.into_fetch_error(GetError::to_fetch_error));
    };
    info!(
        bucket,
        region = %moved,
        "the S3 bucket is in another region: following S3's redirect"
    );
    aws.set_bucket_region(bucket, &moved);
    let region = aws.region_key(Some(&moved));
    let client = aws.s3(region)?;
    retry::send(aws.retrier(), "s3", region, track, || {
        get_object_once(&client, bucket, key)
    })
    .await
    .map_err(|failed| failed.into_fetch_error(GetError::to_fetch_error))
}

async fn get_object_once(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> Result<RawObject, GetError> {
    let output = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| GetError::Sdk(Box::new(e)))?;
    let content_length = output.content_length().and_then(|l| u64::try_from(l).ok());
    if let Some(len) = content_length {
        check_size(len).map_err(GetError::Final)?;
    }
    let metadata: Vec<(String, String)> = output
        .metadata()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    // Chunk by chunk, so that a body longer than its Content-Length said (or
    // one sent without it) stops at the cap instead of being buffered whole.
    let mut stream = output.body;
    let mut body = BodyBuffer::new(content_length);
    loop {
        let chunk = stream.try_next().await.map_err(|_| GetError::Body)?;
        let Some(chunk) = chunk else { break };
        let pushed = body.push(&chunk);
        // Wipe the SDK's copy too, when nothing else holds it.
        if let Ok(mut own) = chunk.try_into_mut() {
            own[..].zeroize();
        }
        pushed.map_err(GetError::Final)?;
    }
    Ok(RawObject {
        body: body.into_inner(),
        metadata,
    })
}

/// An object's body as it arrives: never more than [`MAX_OBJECT_BYTES`], and
/// zeroized on drop — including every smaller buffer left behind as it grows
/// (a plain `Vec` would free those with the bytes still in them).
struct BodyBuffer(Zeroizing<Vec<u8>>);

impl BodyBuffer {
    /// `expected`: the Content-Length, if S3 sent one (a hint only).
    fn new(expected: Option<u64>) -> Self {
        let capacity = expected.unwrap_or(0).min(MAX_OBJECT_BYTES);
        BodyBuffer(Zeroizing::new(Vec::with_capacity(
            usize::try_from(capacity).unwrap_or(0),
        )))
    }

    /// Appends a chunk, or refuses it (keeping nothing of it) when it would
    /// take the body past the cap.
    fn push(&mut self, chunk: &[u8]) -> Result<(), FetchError> {
        let len = self.0.len().saturating_add(chunk.len());
        check_size(u64::try_from(len).unwrap_or(u64::MAX))?;
        if len > self.0.capacity() {
            // Doubling, up to the cap (which `len` is within).
            let max = usize::try_from(MAX_OBJECT_BYTES).unwrap_or(usize::MAX);
            let capacity = self.0.capacity().saturating_mul(2).max(len).min(max);
            let mut grown = Zeroizing::new(Vec::with_capacity(capacity));
            grown.extend_from_slice(&self.0);
            // The old buffer is zeroized as it is dropped here.
            self.0 = grown;
        }
        self.0.extend_from_slice(chunk);
        Ok(())
    }

    fn into_inner(self) -> Zeroizing<Vec<u8>> {
        self.0
    }
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
    object: &S3Object,
    raw: &RawObject,
    track: &Track<'_>,
) -> Result<Zeroizing<Vec<u8>>, FetchError> {
    match decide(object.encryption, &raw.metadata, &raw.body)? {
        Decoding::Plain => Ok(raw.body.clone()),
        Decoding::Kms(blob) => {
            let region = bucket_region(aws, object);
            let region = aws.region_key(region.as_deref());
            let client = aws.kms(region)?;
            kms::decrypt(aws, &client, region, &blob, &BTreeMap::new(), track).await
        }
        Decoding::Envelope(env) => open_envelope(aws, object, &env, &raw.body, track).await,
        Decoding::PlainUnlessInstructionFile => {
            let instruction_key = format!("{}{INSTRUCTION_SUFFIX}", object.key);
            debug!(
                bucket = %object.bucket,
                key = %object.key,
                "binary body and no envelope in the metadata: looking for KEY.instruction"
            );
            let region = object.region.as_deref();
            let instruction = match get_object(aws, region, &object.bucket, &instruction_key, track)
                .await
            {
                Ok(i) => i,
                // No instruction file: the body is what it is, and reading
                // it as a value or document says what is wrong with it.
                Err(e) if e.kind == FailureKind::NotFound => return Ok(raw.body.clone()),
                Err(e) => {
                    return Err(prefixed(
                        "the object's body is binary, with no S3 encryption envelope in its metadata, and KEY.instruction could not be read",
                        e,
                    ))
                }
            };
            match envelope::parse_instruction_with_metadata(&instruction.body, &raw.metadata) {
                Ok(env) => open_envelope(aws, object, &env, &raw.body, track).await,
                // Some other object that happens to be called KEY.instruction.
                Err(EnvelopeError::NoEnvelope) => Ok(raw.body.clone()),
                Err(e) => Err(prefixed("KEY.instruction", envelope_error(e))),
            }
        }
        Decoding::InstructionFile => {
            let instruction_key = format!("{}{INSTRUCTION_SUFFIX}", object.key);
            let region = object.region.as_deref();
            let instruction = match get_object(aws, region, &object.bucket, &instruction_key, track)
                .await
            {
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
            open_envelope(aws, object, &env, &raw.body, track).await
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
            if sniff::looks_like_encryption_sdk_message(body) {
                return Err(FetchError::new(
                    FailureKind::Unsupported,
                    "the object is an AWS Encryption SDK message (aws-encryption-cli output), which is not supported; store a base64 KMS ciphertext or an S3 Encryption Client object instead",
                ));
            }
            Ok(match sniff::kms_ciphertext_candidate(body) {
                Some(blob) => Decoding::Kms(blob),
                // No document and no value is binary, but ciphertext is.
                None if std::str::from_utf8(body).is_err() => Decoding::PlainUnlessInstructionFile,
                None => Decoding::Plain,
            })
        }
    }
}

/// `?encryption=kms`: the body is a ciphertext blob whatever it looks like:
/// base64 (whitespace ignored) when it is all base64, else the raw bytes.
fn forced_kms_blob(body: &[u8]) -> Vec<u8> {
    use base64::Engine;
    if let Some(blob) = sniff::kms_ciphertext_candidate(body) {
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
    object: &S3Object,
    env: &Envelope,
    body: &[u8],
    track: &Track<'_>,
) -> Result<Zeroizing<Vec<u8>>, FetchError> {
    let region = env
        .kms_key_id()
        .as_deref()
        .and_then(kms::arn_region)
        .or_else(|| bucket_region(aws, object));
    let client = aws.kms(aws.region_key(region.as_deref()))?;
    let data_key = kms::decrypt(
        aws,
        &client,
        aws.region_key(region.as_deref()),
        env.wrapped_key(),
        &env.kms_encryption_context(),
        track,
    )
    .await
    .map_err(|e| prefixed("unwrapping the data key", e))?;
    let plaintext = env.decrypt(&data_key, body).map_err(envelope_error)?;
    if env.content_alg() == ContentAlg::AesCbc {
        warn!(
            object = %format!("s3://{}/{}", object.bucket, object.key),
            "the object is encrypted with AES/CBC, which is not tamper-evident: a changed ciphertext can decrypt to changed content without an error; re-encrypt it with AES/GCM (envseal push, or a V2/V3 encryption client)"
        );
    }
    Ok(plaintext)
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

/// Encrypts `document` as an S3 Encryption Client V2 envelope under a fresh
/// data key from `kms_key` and uploads it with SSE-KMS under the same key
/// (for `envseal push`). Returns the KMS key's ARN.
pub async fn push(
    aws: &Aws,
    object: &S3Object,
    kms_key: &str,
    document: &[u8],
) -> Result<String, FetchError> {
    let context = cipher::encryption_context_for_push(kms_key);
    let data_key = kms::generate_data_key(aws, kms_key, context).await?;
    let mut iv = [0u8; 12];
    getrandom::getrandom(&mut iv).map_err(|e| {
        FetchError::new(
            FailureKind::Service,
            format!("no randomness for the IV: {e}"),
        )
    })?;
    let (body, metadata) =
        cipher::encrypt_v2(&data_key.key, &data_key.wrapped, kms_key, document, iv);
    aws.s3(aws.region_key(object.region.as_deref()))?
        .put_object()
        .bucket(&object.bucket)
        .key(&object.key)
        .body(aws_sdk_s3::primitives::ByteStream::from(body))
        .set_metadata(Some(metadata.into_iter().collect()))
        .server_side_encryption(aws_sdk_s3::types::ServerSideEncryption::AwsKms)
        .ssekms_key_id(&data_key.key_arn)
        .send()
        .await
        .map_err(|e| {
            let mut e = classify(&e);
            e.reason = format!("S3 PutObject: {}", e.reason);
            e
        })?;
    Ok(data_key.key_arn)
}

/// What HeadObject said about one S3 object's server-side encryption.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectKey {
    /// SSE-KMS under this key (ARN).
    SseKms(String),
    /// No SSE-KMS (SSE-S3, or none: e.g. a client-side encryption client
    /// writing without SSE).
    NoSseKms,
    /// HeadObject failed; the reason (no value: HeadObject returns none).
    Failed(String),
}

/// HeadObject of every object, concurrently (for `envseal policy
/// --resolve`): `s3://BUCKET/KEY` and what it says of its SSE-KMS key.
pub async fn head_objects(
    aws: &Aws,
    objects: &[S3Object],
) -> Result<Vec<(String, ObjectKey)>, FetchError> {
    let mut heads = Vec::new();
    if objects.is_empty() {
        return Ok(heads);
    }
    let mut clients = Vec::new();
    for o in objects {
        clients.push(aws.s3(aws.region_key(o.region.as_deref()))?);
    }
    let answers = join_all(
        objects
            .iter()
            .zip(&clients)
            .map(|(o, s3)| s3.head_object().bucket(&o.bucket).key(&o.key).send()),
    )
    .await;
    for (o, head) in objects.iter().zip(answers) {
        let key = match head {
            Ok(h) => match h.ssekms_key_id() {
                Some(k) if !k.is_empty() => ObjectKey::SseKms(k.to_owned()),
                _ => ObjectKey::NoSseKms,
            },
            Err(e) => ObjectKey::Failed(classify(&e).reason),
        };
        heads.push((format!("s3://{}/{}", o.bucket, o.key), key));
    }
    Ok(heads)
}

#[cfg(test)]
mod tests;
