//! The AWS S3 Encryption Client ("S3EC") envelope: detection from object
//! metadata or a `KEY.instruction` file, the KMS encryption context to unwrap
//! the data key with, and AES decryption of the body (see
//! `tests/vectors/FORMATS.md` §3). Also: writing the V2 `kms+context`
//! envelope for `envseal push`, and recognising a bare KMS ciphertext blob and
//! an AWS Encryption SDK message.
//!
//! Supported: V2 envelopes (`x-amz-key-v2`) wrapped by `kms` or `kms+context`
//! with `AES/GCM/NoPadding` or `AES/CBC/PKCS5Padding` (= `PKCS7Padding`), and
//! V3 envelopes (`x-amz-3`, wrap `12` = kms+context, content `115` =
//! AES-256-GCM with HKDF-SHA512 key commitment). Recognised and refused: the
//! V1 `x-amz-key` envelope and every non-KMS wrap (AES/GCM, AESWrap, RSA),
//! whose data key needs a client-held master key.
//!
//! Nothing here does I/O; the caller calls KMS `Decrypt` with
//! [`Envelope::wrapped_key`] and [`Envelope::kms_encryption_context`], then
//! [`Envelope::decrypt`]. Errors never hold key material or plaintext.

use std::collections::BTreeMap;
use std::fmt;

use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockDecryptMut, KeyIvInit};
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use hkdf::Hkdf;
use serde_json::Value;
use sha2::Sha512;
use zeroize::Zeroizing;

use super::KeyName;

/// Suffix of the instruction-file object that holds an envelope.
pub const INSTRUCTION_SUFFIX: &str = ".instruction";
/// The encryption-context key that binds the content algorithm (kms+context).
pub const CEK_ALG_CONTEXT_KEY: &str = "aws:x-amz-cek-alg";
/// The content algorithm `envseal push` writes.
pub const AES_GCM_NO_PADDING: &str = "AES/GCM/NoPadding";

const META_PREFIX: &str = "x-amz-meta-";
const KEY_V1: &str = "x-amz-key";
const KEY_V2: &str = "x-amz-key-v2";
const KEY_V3: &str = "x-amz-3";
const IV: &str = "x-amz-iv";
const MATDESC: &str = "x-amz-matdesc";
const WRAP_ALG: &str = "x-amz-wrap-alg";
const CEK_ALG: &str = "x-amz-cek-alg";
const TAG_LEN: &str = "x-amz-tag-len";
const UNENCRYPTED_LEN: &str = "x-amz-unencrypted-content-length";
const V3_WRAP: &str = "x-amz-w";
const V3_CONTENT: &str = "x-amz-c";
const V3_CONTEXT: &str = "x-amz-t";
const V3_COMMITMENT: &str = "x-amz-d";
const V3_MESSAGE_ID: &str = "x-amz-i";

/// Every field an envelope reader looks at.
const ENVELOPE_FIELDS: [&str; 15] = [
    KEY_V1,
    KEY_V2,
    KEY_V3,
    IV,
    MATDESC,
    WRAP_ALG,
    CEK_ALG,
    TAG_LEN,
    UNENCRYPTED_LEN,
    V3_WRAP,
    V3_CONTENT,
    V3_CONTEXT,
    V3_COMMITMENT,
    V3_MESSAGE_ID,
    "x-amz-m",
];

const DATA_KEY_LEN: usize = 32;
const GCM_IV_LEN: usize = 12;
const GCM_TAG_LEN: usize = 16;
const CBC_IV_LEN: usize = 16;
const V3_SUITE_ID: [u8; 2] = [0x00, 0x73];
const V3_SUITE: &str = "115";
const V3_IV: [u8; 12] = [0x01; 12];
const V3_COMMITMENT_LEN: usize = 28;
const V3_MESSAGE_ID_LEN: usize = 28;
/// KMS ciphertext blobs are at most 6144 bytes.
const MAX_KMS_BLOB: usize = 6144;
/// Smallest blob worth calling KMS for (moto: 36-byte key id, IV, tag).
const MIN_KMS_BLOB: usize = 64;

/// Standard alphabet; padding optional (writers differ), no line breaks.
const B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Which envelope layout the object uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvelopeVersion {
    /// `x-amz-key-v2` (written by every KMS-configured V1/V2 client).
    V2,
    /// `x-amz-3` (key-committing clients, 2025+).
    V3,
}

/// How the data key is wrapped (`x-amz-wrap-alg`, or V3 `x-amz-w`). Only
/// [`WrapAlg::Kms`] and [`WrapAlg::KmsContext`] are readable; the others are
/// recognised so that the error can say what the object is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WrapAlg {
    /// `kms`: legacy KMS wrap; the context is the stored matdesc.
    Kms,
    /// `kms+context` (V3: `12`): the context also binds the content algorithm.
    KmsContext,
    /// `AES/GCM` (V3: `02`): client-side AES master key.
    AesGcm,
    /// `AESWrap`: client-side AES key wrap (Java v1).
    AesWrap,
    /// `RSA-OAEP-SHA1` (V3: `22`): client-side RSA key pair.
    RsaOaepSha1,
    /// `RSA/ECB/OAEPWithSHA-256AndMGF1Padding` (Java v1).
    RsaOaepSha256,
    /// Anything else, as written.
    Other(String),
}

impl WrapAlg {
    fn from_v2(s: &str) -> Self {
        match s {
            "kms" => WrapAlg::Kms,
            "kms+context" => WrapAlg::KmsContext,
            "AES/GCM" => WrapAlg::AesGcm,
            "AESWrap" => WrapAlg::AesWrap,
            "RSA-OAEP-SHA1" => WrapAlg::RsaOaepSha1,
            "RSA/ECB/OAEPWithSHA-256AndMGF1Padding" => WrapAlg::RsaOaepSha256,
            other => WrapAlg::Other(other.to_owned()),
        }
    }

    fn from_v3(s: &str) -> Self {
        match s {
            "12" => WrapAlg::KmsContext,
            "02" => WrapAlg::AesGcm,
            "22" => WrapAlg::RsaOaepSha1,
            other => WrapAlg::Other(format!("x-amz-w={other}")),
        }
    }

    /// The name as the V2 envelope writes it.
    pub fn as_str(&self) -> &str {
        match self {
            WrapAlg::Kms => "kms",
            WrapAlg::KmsContext => "kms+context",
            WrapAlg::AesGcm => "AES/GCM",
            WrapAlg::AesWrap => "AESWrap",
            WrapAlg::RsaOaepSha1 => "RSA-OAEP-SHA1",
            WrapAlg::RsaOaepSha256 => "RSA/ECB/OAEPWithSHA-256AndMGF1Padding",
            WrapAlg::Other(s) => s,
        }
    }

    fn is_kms(&self) -> bool {
        matches!(self, WrapAlg::Kms | WrapAlg::KmsContext)
    }
}

/// How the body is encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentAlg {
    /// `AES/GCM/NoPadding`: AES-256-GCM, 12-byte IV, empty AAD, tag appended.
    AesGcm,
    /// `AES/CBC/PKCS5Padding`: AES-256-CBC, 16-byte IV, PKCS#7 padding.
    /// Unauthenticated.
    AesCbc,
    /// V3 `115`: AES-256-GCM with an HKDF-SHA512-derived, committed key.
    AesGcmHkdfSha512Commit,
}

impl ContentAlg {
    pub fn as_str(&self) -> &'static str {
        match self {
            ContentAlg::AesGcm => AES_GCM_NO_PADDING,
            ContentAlg::AesCbc => "AES/CBC/PKCS5Padding",
            ContentAlg::AesGcmHkdfSha512Commit => V3_SUITE,
        }
    }
}

/// Why an envelope could not be read or its body not decrypted. No variant
/// holds key material or plaintext; algorithm names and field names only.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// More than one of `x-amz-key`, `x-amz-key-v2`, `x-amz-3`.
    AmbiguousEnvelope,
    /// The same envelope key given twice (e.g. with and without the
    /// `x-amz-meta-` prefix) with different values.
    ConflictingMetadata { key: String },
    /// The V1 `x-amz-key` envelope: the data key is wrapped by a client-side
    /// master key, never by KMS.
    LegacyV1Envelope,
    /// An instruction file (merged with the object's metadata) holds no
    /// envelope.
    NoEnvelope,
    /// An instruction file that is not a JSON object of strings.
    InvalidInstructionFile { reason: &'static str },
    /// A required envelope field is missing.
    MissingField { field: &'static str },
    /// A field is not valid base64.
    InvalidBase64 { field: &'static str },
    /// A decoded field has the wrong length.
    InvalidLength {
        field: &'static str,
        expected: usize,
        actual: usize,
    },
    /// The matdesc / `x-amz-t` is not a JSON object of strings.
    InvalidContext { field: &'static str },
    /// The data key is not wrapped by KMS.
    UnsupportedWrapAlg { alg: WrapAlg },
    /// A content algorithm other than AES-GCM, AES-CBC or V3 `115`.
    UnsupportedContentAlg { alg: String },
    /// `x-amz-tag-len` other than 128.
    UnsupportedTagLength { value: String },
    /// kms+context: the context's `aws:x-amz-cek-alg` is not the content
    /// algorithm (a downgrade or a damaged envelope).
    CekAlgMismatch {
        content_alg: String,
        context_alg: Option<String>,
    },
    /// The data key from KMS is not 32 bytes.
    DataKeyLength { actual: usize },
    /// The body cannot be a ciphertext of this algorithm (too short, or not
    /// a whole number of blocks).
    BadCiphertextLength { actual: usize },
    /// AES-GCM authentication failed: wrong key, or the body or envelope was
    /// changed.
    AuthenticationFailed,
    /// AES-CBC padding is wrong: wrong key, or the body was changed.
    BadPadding,
    /// V3: the key commitment does not match the data key and message id.
    CommitmentMismatch,
    /// The plaintext length differs from `x-amz-unencrypted-content-length`.
    LengthMismatch { expected: u64, actual: usize },
}

impl fmt::Display for EnvelopeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use EnvelopeError::*;
        match self {
            AmbiguousEnvelope => f.write_str(
                "S3 encryption envelope is ambiguous: more than one of x-amz-key, x-amz-key-v2 and x-amz-3 is present",
            ),
            ConflictingMetadata { key } => write!(
                f,
                "S3 encryption envelope field {} is given twice with different values",
                KeyName(key)
            ),
            LegacyV1Envelope => f.write_str(
                "S3 encryption envelope x-amz-key (V1) is not supported: its data key is wrapped with a client-side master key, not KMS",
            ),
            NoEnvelope => f.write_str("the instruction file holds no S3 encryption envelope"),
            InvalidInstructionFile { reason } => write!(f, "invalid instruction file: {reason}"),
            MissingField { field } => {
                write!(f, "S3 encryption envelope is missing {field}")
            }
            InvalidBase64 { field } => {
                write!(f, "S3 encryption envelope field {field} is not valid base64")
            }
            InvalidLength {
                field,
                expected,
                actual,
            } => write!(
                f,
                "S3 encryption envelope field {field} is {actual} bytes, expected {expected}"
            ),
            InvalidContext { field } => write!(
                f,
                "S3 encryption envelope field {field} is not a JSON object of strings"
            ),
            UnsupportedWrapAlg { alg } => match alg {
                WrapAlg::Other(name) => write!(
                    f,
                    "key wrapping algorithm {} is not supported (only kms and kms+context are)",
                    KeyName(name)
                ),
                known => write!(
                    f,
                    "key wrapping algorithm {} is not supported: it needs a client-side master key; only KMS-wrapped data keys (kms, kms+context) can be read",
                    known.as_str()
                ),
            },
            UnsupportedContentAlg { alg } => write!(
                f,
                "content encryption algorithm {} is not supported (AES/GCM/NoPadding, AES/CBC/PKCS5Padding and V3 115 are)",
                KeyName(alg)
            ),
            UnsupportedTagLength { value } => write!(
                f,
                "x-amz-tag-len {} is not supported (only 128)",
                KeyName(value)
            ),
            CekAlgMismatch {
                content_alg,
                context_alg,
            } => match context_alg {
                Some(c) => write!(
                    f,
                    "encryption context says content algorithm {} but the object uses {}: refusing (possible downgrade)",
                    KeyName(c),
                    KeyName(content_alg)
                ),
                None => write!(
                    f,
                    "kms+context envelope has no aws:x-amz-cek-alg in its encryption context (object uses {})",
                    KeyName(content_alg)
                ),
            },
            DataKeyLength { actual } => {
                write!(f, "data key from KMS is {actual} bytes, expected 32")
            }
            BadCiphertextLength { actual } => write!(
                f,
                "encrypted body of {actual} bytes is too short or not a whole number of blocks"
            ),
            AuthenticationFailed => f.write_str(
                "decryption failed: authentication tag does not match (wrong key, or the object or its envelope was modified)",
            ),
            BadPadding => f.write_str(
                "decryption failed: bad padding (wrong key, or the object was modified)",
            ),
            CommitmentMismatch => f.write_str(
                "decryption failed: key commitment does not match (wrong key, or the envelope was modified)",
            ),
            LengthMismatch { expected, actual } => write!(
                f,
                "decrypted length {actual} differs from x-amz-unencrypted-content-length {expected}"
            ),
        }
    }
}

impl std::error::Error for EnvelopeError {}

/// A parsed, KMS-wrapped envelope. Everything in it is public information
/// (ciphertext, algorithm names, encryption context); the data key is not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    version: EnvelopeVersion,
    wrapped_key: Vec<u8>,
    wrap_alg: WrapAlg,
    content_alg: ContentAlg,
    context: BTreeMap<String, String>,
    /// V2: the IV (12 bytes for GCM, 16 for CBC).
    iv: Vec<u8>,
    /// V3: message id and key commitment (28 bytes each).
    message_id: Vec<u8>,
    commitment: Vec<u8>,
    unencrypted_len: Option<u64>,
}

impl Envelope {
    /// The KMS `CiphertextBlob` to pass to `Decrypt`.
    pub fn wrapped_key(&self) -> &[u8] {
        &self.wrapped_key
    }

    /// How the data key is wrapped: always [`WrapAlg::Kms`] or
    /// [`WrapAlg::KmsContext`] in a parsed envelope.
    pub fn wrap_alg(&self) -> &WrapAlg {
        &self.wrap_alg
    }

    pub fn content_alg(&self) -> ContentAlg {
        self.content_alg
    }

    pub fn version(&self) -> EnvelopeVersion {
        self.version
    }

    /// Exactly the `EncryptionContext` to pass to KMS `Decrypt`: the stored
    /// `x-amz-matdesc` (V2) or `x-amz-t` (V3), which for kms+context already
    /// holds `aws:x-amz-cek-alg` (checked against the content algorithm).
    pub fn kms_encryption_context(&self) -> BTreeMap<String, String> {
        self.context.clone()
    }

    /// The `kms_cmk_id` the writer recorded (legacy `kms` wrap), if any: an
    /// id, ARN or alias, informational only. KMS finds the key from the blob;
    /// pass a `KeyId` only from configuration.
    pub fn kms_key_id(&self) -> Option<String> {
        self.context.get("kms_cmk_id").cloned()
    }

    /// `x-amz-unencrypted-content-length`, when present and numeric.
    pub fn unencrypted_content_length(&self) -> Option<u64> {
        self.unencrypted_len
    }

    /// Decrypts the whole object body with the data key KMS returned. Nothing
    /// is released unless the tag (GCM), commitment and tag (V3) or padding
    /// (CBC) verify, and the length matches `x-amz-unencrypted-content-length`
    /// when that is present.
    pub fn decrypt(
        &self,
        data_key: &[u8],
        body: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
        if data_key.len() != DATA_KEY_LEN {
            return Err(EnvelopeError::DataKeyLength {
                actual: data_key.len(),
            });
        }
        let plaintext = match self.content_alg {
            ContentAlg::AesGcm => gcm_open(data_key, &self.iv, &[], body)?,
            ContentAlg::AesCbc => cbc_open(data_key, &self.iv, body)?,
            ContentAlg::AesGcmHkdfSha512Commit => {
                let key = v3_content_key(data_key, &self.message_id, &self.commitment)?;
                gcm_open(&key[..], &V3_IV, &V3_SUITE_ID, body)?
            }
        };
        if let Some(expected) = self.unencrypted_len {
            if u64::try_from(plaintext.len()).ok() != Some(expected) {
                return Err(EnvelopeError::LengthMismatch {
                    expected,
                    actual: plaintext.len(),
                });
            }
        }
        Ok(plaintext)
    }
}

/// Finds an S3EC envelope in an object's user metadata (names as S3 returns
/// them, with or without the `x-amz-meta-` prefix, any case). `None`: the
/// metadata holds no envelope — the object is not S3EC-encrypted, or its
/// envelope is in `KEY.instruction` (see [`instruction_file_hint`] and
/// [`parse_instruction_with_metadata`]).
pub fn detect(metadata: &[(String, String)]) -> Option<Result<Envelope, EnvelopeError>> {
    match normalize(metadata) {
        Ok(md) => from_map(&md),
        Err(e) => Some(Err(e)),
    }
}

/// Parses a `KEY.instruction` object body on its own.
pub fn parse_instruction(json_bytes: &[u8]) -> Result<Envelope, EnvelopeError> {
    parse_instruction_with_metadata(json_bytes, &[])
}

/// Parses a `KEY.instruction` body merged over the encrypted object's own
/// metadata, as readers do: V3 keeps `x-amz-c`, `x-amz-d` and `x-amz-i` in
/// the object's metadata, and Ruby keeps `x-amz-unencrypted-content-length`
/// there. Unknown keys are ignored; numbers are taken as their text (Go).
pub fn parse_instruction_with_metadata(
    json_bytes: &[u8],
    metadata: &[(String, String)],
) -> Result<Envelope, EnvelopeError> {
    let mut env = normalize(metadata)?;
    let instruction = parse_instruction_json(json_bytes)?;
    env.extend(instruction);
    from_map(&env).unwrap_or(Err(EnvelopeError::NoEnvelope))
}

/// True when metadata without an envelope suggests that one is in
/// `KEY.instruction` (V3's `x-amz-c/d/i`, or Ruby's
/// `x-amz-unencrypted-content-length`). `false` proves nothing: Go writes no
/// metadata at all in instruction-file mode.
pub fn instruction_file_hint(metadata: &[(String, String)]) -> bool {
    let Ok(md) = normalize(metadata) else {
        return false;
    };
    let has_envelope = [KEY_V1, KEY_V2, KEY_V3].iter().any(|k| md.contains_key(*k));
    !has_envelope
        && [UNENCRYPTED_LEN, V3_CONTENT, V3_COMMITMENT, V3_MESSAGE_ID]
            .iter()
            .any(|k| md.contains_key(*k))
}

/// The encryption context to pass to KMS `GenerateDataKey` for `envseal push`,
/// so that readers' `Decrypt` with the stored matdesc succeeds. It is what
/// every V2 client writes with no user context: only `aws:x-amz-cek-alg`.
/// `kms_cmk_id` is deliberately absent (Java V2 removes it, Go V2 never adds
/// it, and the Ruby V2 reader refuses a stored context that has it unless the
/// caller passes it). The key id goes to `GenerateDataKey` as `KeyId`.
pub fn encryption_context_for_push(_kms_key_id: &str) -> BTreeMap<String, String> {
    BTreeMap::from([(
        CEK_ALG_CONTEXT_KEY.to_owned(),
        AES_GCM_NO_PADDING.to_owned(),
    )])
}

/// Encrypts `plaintext` into the V2 `kms+context` / `AES/GCM/NoPadding`
/// envelope exactly as the Ruby, Go, Java and Python V2 clients write it.
/// `data_key` and `wrapped_key` are GenerateDataKey's `Plaintext` and
/// `CiphertextBlob` (requested with [`encryption_context_for_push`]); `iv`
/// must be fresh random bytes. Returns the body (`ciphertext ‖ tag`) and the
/// user metadata (names without `x-amz-meta-`).
///
/// # Panics
/// Only if `plaintext` exceeds AES-GCM's limit of about 64 GiB.
pub fn encrypt_v2(
    data_key: &[u8; 32],
    wrapped_key: &[u8],
    kms_key_id: &str,
    plaintext: &[u8],
    iv: [u8; 12],
) -> (Vec<u8>, Vec<(String, String)>) {
    let cipher = Aes256Gcm::new(data_key.into());
    let mut body = Vec::with_capacity(plaintext.len() + GCM_TAG_LEN);
    body.extend_from_slice(plaintext);
    let tag = cipher
        .encrypt_in_place_detached(Nonce::from_slice(&iv), &[], &mut body)
        .expect("plaintext within the AES-GCM length limit");
    body.extend_from_slice(&tag);

    let matdesc = serde_json::to_string(&encryption_context_for_push(kms_key_id))
        .expect("a map of strings serializes");
    let b64 = base64::engine::general_purpose::STANDARD;
    let metadata = vec![
        (KEY_V2.to_owned(), b64.encode(wrapped_key)),
        (IV.to_owned(), b64.encode(iv)),
        (CEK_ALG.to_owned(), AES_GCM_NO_PADDING.to_owned()),
        (TAG_LEN.to_owned(), "128".to_owned()),
        (WRAP_ALG.to_owned(), "kms+context".to_owned()),
        (MATDESC.to_owned(), matdesc),
        (UNENCRYPTED_LEN.to_owned(), plaintext.len().to_string()),
    ];
    (body, metadata)
}

/// True when the body is an AWS Encryption SDK message (raw or base64):
/// header v1 `01 80` + a known suite id, or v2 `02` + `0478`/`0578`
/// (FORMATS.md §5). Not supported; the caller reports it.
pub fn looks_like_encryption_sdk_message(body: &[u8]) -> bool {
    if esdk_header(body) {
        return true;
    }
    // Base64 (`aws-encryption-cli --encode`): the whole body must be base64;
    // 48 characters decode to enough header bytes to judge.
    let text = strip_ascii_whitespace(body);
    if text.len() < 48 || !text.iter().all(|&b| is_b64_char(b)) {
        return false;
    }
    B64.decode(&text[..48]).is_ok_and(|head| esdk_header(&head))
}

/// A KMS `CiphertextBlob` to pass to `Decrypt`, if the body is one: raw, or
/// base64 with any ASCII whitespace (the `base64(kms.encrypt(...))` form).
/// Recognised by the real KMS header (`01 0x 0x 00 78`, base64 `AQICAH…`,
/// `AQECAH…`) or moto's (the key id as ASCII, then binary), within KMS's size
/// limit. A heuristic (FORMATS.md §1): `?encryption=kms|none` overrides it.
pub fn kms_ciphertext_candidate(body: &[u8]) -> Option<Vec<u8>> {
    if kms_blob_shape(body) {
        return Some(body.to_vec());
    }
    // Base64 of at most MAX_KMS_BLOB bytes, plus room for line breaks.
    if body.len() > MAX_KMS_BLOB * 2 {
        return None;
    }
    let text = strip_ascii_whitespace(body);
    if text.is_empty() || !text.iter().all(|&b| is_b64_char(b)) {
        return None;
    }
    let blob = B64.decode(&text).ok()?;
    kms_blob_shape(&blob).then_some(blob)
}

// ---------------------------------------------------------------------------
// Parsing

/// Lower-cases names, strips `x-amz-meta-`, decodes RFC 2047 values.
fn normalize(metadata: &[(String, String)]) -> Result<BTreeMap<String, String>, EnvelopeError> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in metadata {
        let lower = name.trim().to_ascii_lowercase();
        let name = lower.strip_prefix(META_PREFIX).unwrap_or(&lower).to_owned();
        let value = decode_rfc2047(value).unwrap_or_else(|| value.clone());
        match out.get(&name) {
            Some(existing) if *existing != value => {
                if name.starts_with("x-amz-") {
                    return Err(EnvelopeError::ConflictingMetadata { key: name });
                }
            }
            Some(_) => {}
            None => {
                out.insert(name, value);
            }
        }
    }
    Ok(out)
}

fn parse_instruction_json(bytes: &[u8]) -> Result<BTreeMap<String, String>, EnvelopeError> {
    let bytes = super::strip_bom(bytes);
    let value: Value =
        serde_json::from_slice(bytes).map_err(|_| EnvelopeError::InvalidInstructionFile {
            reason: "not valid JSON",
        })?;
    let Value::Object(map) = value else {
        return Err(EnvelopeError::InvalidInstructionFile {
            reason: "not a JSON object",
        });
    };
    let mut out = BTreeMap::new();
    for (name, value) in map {
        let name = name.to_ascii_lowercase();
        let text = match value {
            Value::String(s) => s,
            Value::Number(n) => n.to_string(),
            _ if ENVELOPE_FIELDS.contains(&name.as_str()) => {
                return Err(EnvelopeError::InvalidInstructionFile {
                    reason: "an envelope field is not a string",
                })
            }
            _ => continue,
        };
        out.insert(name, text);
    }
    Ok(out)
}

fn from_map(env: &BTreeMap<String, String>) -> Option<Result<Envelope, EnvelopeError>> {
    let v1 = env.contains_key(KEY_V1);
    let v2 = env.contains_key(KEY_V2);
    let v3 = env.contains_key(KEY_V3);
    Some(match (v1, v2, v3) {
        (false, false, false) => return None,
        // `x-amz-key` is the V1 client's field for a data key wrapped by a
        // client-side master key (no `x-amz-wrap-alg`): not readable without
        // that key. Under a KMS wrap it means what `x-amz-key-v2` means
        // (PRODUCT.md §5), so it reads the same way.
        (true, false, false) => match env.get(WRAP_ALG).map(|w| WrapAlg::from_v2(w)) {
            Some(w) if w.is_kms() => build_v2(env, KEY_V1),
            _ => Err(EnvelopeError::LegacyV1Envelope),
        },
        (false, true, false) => build_v2(env, KEY_V2),
        (false, false, true) => build_v3(env),
        _ => Err(EnvelopeError::AmbiguousEnvelope),
    })
}

/// A V2 envelope (or a V1 one under a KMS wrap), its wrapped data key in
/// `key_field`.
fn build_v2(
    env: &BTreeMap<String, String>,
    key_field: &'static str,
) -> Result<Envelope, EnvelopeError> {
    let wrap_alg = WrapAlg::from_v2(required(env, WRAP_ALG)?);
    if !wrap_alg.is_kms() {
        return Err(EnvelopeError::UnsupportedWrapAlg { alg: wrap_alg });
    }
    let cek_name = required(env, CEK_ALG)?;
    let content_alg = match cek_name {
        AES_GCM_NO_PADDING => ContentAlg::AesGcm,
        "AES/CBC/PKCS5Padding" | "AES/CBC/PKCS7Padding" => ContentAlg::AesCbc,
        other => {
            return Err(EnvelopeError::UnsupportedContentAlg {
                alg: other.to_owned(),
            })
        }
    };
    let context = parse_context(required(env, MATDESC)?, MATDESC)?;
    if wrap_alg == WrapAlg::KmsContext {
        check_cek_alg(&context, cek_name)?;
    }
    let wrapped_key = base64_field(env, key_field)?;
    if wrapped_key.is_empty() {
        return Err(EnvelopeError::MissingField { field: key_field });
    }
    let iv = base64_field(env, IV)?;
    let iv_len = match content_alg {
        ContentAlg::AesCbc => CBC_IV_LEN,
        _ => GCM_IV_LEN,
    };
    expect_len(IV, &iv, iv_len)?;
    if content_alg == ContentAlg::AesGcm {
        if let Some(tag_len) = env.get(TAG_LEN) {
            if tag_len.trim() != "128" {
                return Err(EnvelopeError::UnsupportedTagLength {
                    value: tag_len.clone(),
                });
            }
        }
    }
    Ok(Envelope {
        version: EnvelopeVersion::V2,
        wrapped_key,
        wrap_alg,
        content_alg,
        context,
        iv,
        message_id: Vec::new(),
        commitment: Vec::new(),
        unencrypted_len: unencrypted_len(env),
    })
}

fn build_v3(env: &BTreeMap<String, String>) -> Result<Envelope, EnvelopeError> {
    let wrap_alg = WrapAlg::from_v3(required(env, V3_WRAP)?);
    if wrap_alg != WrapAlg::KmsContext {
        return Err(EnvelopeError::UnsupportedWrapAlg { alg: wrap_alg });
    }
    let content = required(env, V3_CONTENT)?;
    if content != V3_SUITE {
        return Err(EnvelopeError::UnsupportedContentAlg {
            alg: format!("x-amz-c={content}"),
        });
    }
    // An absent x-amz-t means an empty context (RB3 kms_cipher_provider.rb),
    // which then fails the aws:x-amz-cek-alg check, as in the reference.
    let context = match env.get(V3_CONTEXT) {
        Some(t) => parse_context(t, V3_CONTEXT)?,
        None => BTreeMap::new(),
    };
    check_cek_alg(&context, content)?;
    let wrapped_key = base64_field(env, KEY_V3)?;
    if wrapped_key.is_empty() {
        return Err(EnvelopeError::MissingField { field: KEY_V3 });
    }
    let commitment = base64_field(env, V3_COMMITMENT)?;
    expect_len(V3_COMMITMENT, &commitment, V3_COMMITMENT_LEN)?;
    let message_id = base64_field(env, V3_MESSAGE_ID)?;
    expect_len(V3_MESSAGE_ID, &message_id, V3_MESSAGE_ID_LEN)?;
    Ok(Envelope {
        version: EnvelopeVersion::V3,
        wrapped_key,
        wrap_alg,
        content_alg: ContentAlg::AesGcmHkdfSha512Commit,
        context,
        iv: Vec::new(),
        message_id,
        commitment,
        unencrypted_len: unencrypted_len(env),
    })
}

fn required<'a>(
    env: &'a BTreeMap<String, String>,
    field: &'static str,
) -> Result<&'a str, EnvelopeError> {
    env.get(field)
        .map(|s| s.trim())
        .ok_or(EnvelopeError::MissingField { field })
}

fn base64_field(
    env: &BTreeMap<String, String>,
    field: &'static str,
) -> Result<Vec<u8>, EnvelopeError> {
    let text = strip_ascii_whitespace(required(env, field)?.as_bytes());
    B64.decode(text)
        .map_err(|_| EnvelopeError::InvalidBase64 { field })
}

fn expect_len(field: &'static str, bytes: &[u8], expected: usize) -> Result<(), EnvelopeError> {
    if bytes.len() == expected {
        Ok(())
    } else {
        Err(EnvelopeError::InvalidLength {
            field,
            expected,
            actual: bytes.len(),
        })
    }
}

fn unencrypted_len(env: &BTreeMap<String, String>) -> Option<u64> {
    env.get(UNENCRYPTED_LEN)?.trim().parse().ok()
}

/// A matdesc / `x-amz-t`: a JSON object whose values are all strings.
fn parse_context(
    text: &str,
    field: &'static str,
) -> Result<BTreeMap<String, String>, EnvelopeError> {
    let invalid = || EnvelopeError::InvalidContext { field };
    let Value::Object(map) = serde_json::from_str::<Value>(text).map_err(|_| invalid())? else {
        return Err(invalid());
    };
    map.into_iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k, s)),
            _ => Err(invalid()),
        })
        .collect()
}

/// kms+context: the context must name the content algorithm, exactly.
fn check_cek_alg(context: &BTreeMap<String, String>, cek_alg: &str) -> Result<(), EnvelopeError> {
    match context.get(CEK_ALG_CONTEXT_KEY) {
        Some(alg) if alg == cek_alg => Ok(()),
        other => Err(EnvelopeError::CekAlgMismatch {
            content_alg: cek_alg.to_owned(),
            context_alg: other.cloned(),
        }),
    }
}

// ---------------------------------------------------------------------------
// Cryptography (RustCrypto)

/// AES-256-GCM open of `ciphertext ‖ tag16`. The output buffer is zeroized
/// on drop, including when authentication fails.
fn gcm_open(
    key: &[u8],
    nonce: &[u8],
    aad: &[u8],
    body: &[u8],
) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
    if nonce.len() != GCM_IV_LEN {
        return Err(EnvelopeError::InvalidLength {
            field: IV,
            expected: GCM_IV_LEN,
            actual: nonce.len(),
        });
    }
    if body.len() < GCM_TAG_LEN {
        return Err(EnvelopeError::BadCiphertextLength { actual: body.len() });
    }
    let cipher = Aes256Gcm::new_from_slice(key)
        .map_err(|_| EnvelopeError::DataKeyLength { actual: key.len() })?;
    let (ciphertext, tag) = body.split_at(body.len() - GCM_TAG_LEN);
    let mut buf = Zeroizing::new(ciphertext.to_vec());
    cipher
        .decrypt_in_place_detached(
            Nonce::from_slice(nonce),
            aad,
            buf.as_mut_slice(),
            Tag::from_slice(tag),
        )
        .map_err(|_| EnvelopeError::AuthenticationFailed)?;
    Ok(buf)
}

/// AES-256-CBC decryption with PKCS#7 padding removed.
fn cbc_open(key: &[u8], iv: &[u8], body: &[u8]) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
    if body.is_empty() || body.len() % 16 != 0 {
        return Err(EnvelopeError::BadCiphertextLength { actual: body.len() });
    }
    let decryptor = cbc::Decryptor::<aes::Aes256>::new_from_slices(key, iv).map_err(|_| {
        EnvelopeError::InvalidLength {
            field: IV,
            expected: CBC_IV_LEN,
            actual: iv.len(),
        }
    })?;
    let mut buf = Zeroizing::new(body.to_vec());
    let len = decryptor
        .decrypt_padded_mut::<Pkcs7>(buf.as_mut_slice())
        .map_err(|_| EnvelopeError::BadPadding)?
        .len();
    buf.truncate(len);
    Ok(buf)
}

/// V3 (suite 0x0073): checks the key commitment, then derives the content key.
/// `prk = HKDF-Extract(salt = message id, data key)`;
/// commitment = `HKDF-Expand(prk, 00 73 ‖ "COMMITKEY", 28)`;
/// key = `HKDF-Expand(prk, 00 73 ‖ "DERIVEKEY", 32)`.
fn v3_content_key(
    data_key: &[u8],
    message_id: &[u8],
    commitment: &[u8],
) -> Result<Zeroizing<[u8; 32]>, EnvelopeError> {
    let hk = Hkdf::<Sha512>::new(Some(message_id), data_key);
    let mut expected = Zeroizing::new([0u8; V3_COMMITMENT_LEN]);
    let commit_info = [&V3_SUITE_ID[..], b"COMMITKEY"].concat();
    hk.expand(&commit_info, &mut expected[..])
        .map_err(|_| EnvelopeError::CommitmentMismatch)?;
    if !constant_time_eq(&expected[..], commitment) {
        return Err(EnvelopeError::CommitmentMismatch);
    }
    let mut key = Zeroizing::new([0u8; 32]);
    let derive_info = [&V3_SUITE_ID[..], b"DERIVEKEY"].concat();
    hk.expand(&derive_info, &mut key[..])
        .map_err(|_| EnvelopeError::CommitmentMismatch)?;
    Ok(key)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

// ---------------------------------------------------------------------------
// Recognising other formats

fn esdk_header(b: &[u8]) -> bool {
    const V1_SUITES: [[u8; 2]; 9] = [
        [0x00, 0x14],
        [0x00, 0x46],
        [0x00, 0x78],
        [0x01, 0x14],
        [0x01, 0x46],
        [0x01, 0x78],
        [0x02, 0x14],
        [0x03, 0x46],
        [0x03, 0x78],
    ];
    match b {
        [0x01, 0x80, s0, s1, ..] => b.len() >= 20 && V1_SUITES.contains(&[*s0, *s1]),
        [0x02, 0x04 | 0x05, 0x78, ..] => b.len() >= 35,
        _ => false,
    }
}

fn kms_blob_shape(b: &[u8]) -> bool {
    if b.len() < MIN_KMS_BLOB || b.len() > MAX_KMS_BLOB {
        return false;
    }
    // AWS KMS symmetric ciphertext: version 01, then 0x 0x 00 78 (base64
    // "AQICAH…", "AQECAH…"). A text document never starts with 0x01.
    if matches!(b, [0x01, 0x01..=0x03, 0x01..=0x03, 0x00, 0x78, ..]) {
        return true;
    }
    // moto: the key id as ASCII (a UUID, or mrk- and 32 hex digits), then
    // binary that is not UTF-8 (so a text document starting with a UUID is
    // not mistaken for one).
    let key_id = &b[..36];
    let is_key_id = is_uuid(key_id)
        || (key_id.starts_with(b"mrk-") && key_id[4..].iter().all(u8::is_ascii_hexdigit));
    is_key_id && std::str::from_utf8(&b[36..]).is_err()
}

fn is_uuid(b: &[u8]) -> bool {
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

fn is_b64_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'='
}

fn strip_ascii_whitespace(b: &[u8]) -> Vec<u8> {
    b.iter()
        .copied()
        .filter(|c| !c.is_ascii_whitespace() && *c != 0x0b)
        .collect()
}

/// Decodes a value that is wholly RFC 2047 encoded words (`=?UTF-8?B?…?=`,
/// as S3 returns non-ASCII metadata). `None`: not encoded (use as is).
fn decode_rfc2047(value: &str) -> Option<String> {
    let mut rest = value.trim();
    if !rest.starts_with("=?") {
        return None;
    }
    let mut out: Vec<u8> = Vec::new();
    while !rest.is_empty() {
        let word = rest.strip_prefix("=?")?;
        let (charset, word) = word.split_once('?')?;
        let (encoding, word) = word.split_once('?')?;
        let (text, after) = word.split_once("?=")?;
        let bytes = match encoding {
            "B" | "b" => B64.decode(text).ok()?,
            "Q" | "q" => q_decode(text)?,
            _ => return None,
        };
        // RFC 2231 allows a language after '*'.
        let charset = charset.split('*').next()?.to_ascii_lowercase();
        match charset.as_str() {
            "utf-8" | "utf8" | "us-ascii" => out.extend_from_slice(&bytes),
            "iso-8859-1" | "latin1" => {
                for &b in &bytes {
                    let mut tmp = [0u8; 4];
                    out.extend_from_slice(char::from(b).encode_utf8(&mut tmp).as_bytes());
                }
            }
            _ => return None,
        }
        rest = after.trim_start();
    }
    String::from_utf8(out).ok()
}

fn q_decode(text: &str) -> Option<Vec<u8>> {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'_' => out.push(b' '),
            b'=' => {
                let hex = b.get(i + 1..i + 3)?;
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return None;
                }
                out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;

    const VECTORS: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/s3-encryption-client.json"
    );

    fn vectors() -> Vec<Value> {
        let text = std::fs::read_to_string(VECTORS).expect("test vectors present");
        let doc: Value = serde_json::from_str(&text).unwrap();
        doc["vectors"].as_array().unwrap().clone()
    }

    fn vector(id: &str) -> Value {
        vectors()
            .into_iter()
            .find(|v| v["id"] == id)
            .unwrap_or_else(|| panic!("no vector {id}"))
    }

    fn b64(v: &Value) -> Vec<u8> {
        STANDARD.decode(v.as_str().unwrap()).unwrap()
    }

    fn pairs(v: &Value) -> Vec<(String, String)> {
        v.as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
            .collect()
    }

    fn string_map(v: &Value) -> BTreeMap<String, String> {
        pairs(v).into_iter().collect()
    }

    fn set(md: &mut Vec<(String, String)>, key: &str, value: &str) {
        md.retain(|(k, _)| k != key);
        md.push((key.to_owned(), value.to_owned()));
    }

    fn without(md: &[(String, String)], key: &str) -> Vec<(String, String)> {
        md.iter().filter(|(k, _)| k != key).cloned().collect()
    }

    fn flip_b64(value: &str, index: usize) -> String {
        let mut bytes = STANDARD.decode(value).unwrap();
        bytes[index] ^= 0x01;
        STANDARD.encode(bytes)
    }

    /// Stands in for KMS Decrypt: the data key for (blob, context), only
    /// when both match what a vector recorded — as real KMS would.
    fn mock_kms(blob: &[u8], context: &BTreeMap<String, String>) -> Option<Zeroizing<Vec<u8>>> {
        vectors().iter().find_map(|v| {
            let kd = &v["kms_decrypt"];
            if kd["encryption_context"].is_null() {
                // The blog's `kms.encrypt` blob: no context, and KMS returns
                // the document itself.
                return (b64(&kd["ciphertext_blob_b64"]) == blob && context.is_empty())
                    .then(|| Zeroizing::new(b64(&kd["plaintext_b64"])));
            }
            let ctx = kd["encryption_context"].as_object()?;
            let recorded: BTreeMap<String, String> = ctx
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                .collect();
            (b64(&kd["ciphertext_blob_b64"]) == blob && &recorded == context)
                .then(|| Zeroizing::new(b64(&kd["plaintext_data_key_b64"])))
        })
    }

    struct Case {
        metadata: Vec<(String, String)>,
        instruction: Option<Vec<u8>>,
        body: Vec<u8>,
        data_key: Vec<u8>,
        expected: Vec<u8>,
    }

    fn case(id: &str) -> Case {
        let v = vector(id);
        Case {
            metadata: pairs(&v["object"]["metadata"]),
            instruction: v["instruction_file"]
                .as_object()
                .map(|i| b64(&i["body_b64"])),
            body: b64(&v["object"]["body_b64"]),
            data_key: b64(&v["kms_decrypt"]["plaintext_data_key_b64"]),
            expected: b64(&v["expected_plaintext_b64"]),
        }
    }

    fn envelope_of(c: &Case) -> Result<Envelope, EnvelopeError> {
        match &c.instruction {
            None => detect(&c.metadata).expect("envelope in metadata"),
            Some(json) => parse_instruction_with_metadata(json, &c.metadata),
        }
    }

    /// Decrypts a case the way the caller will: envelope, mock KMS, AES.
    fn read(c: &Case) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
        let env = envelope_of(c)?;
        let key = mock_kms(env.wrapped_key(), &env.kms_encryption_context())
            .ok_or(EnvelopeError::AuthenticationFailed)?;
        env.decrypt(&key, &c.body)
    }

    fn s3ec_ids() -> Vec<String> {
        vectors()
            .iter()
            .filter(|v| v["format"].as_str().unwrap().starts_with("s3ec-"))
            .map(|v| v["id"].as_str().unwrap().to_owned())
            .collect()
    }

    fn ids_with_format(prefix: &str) -> Vec<String> {
        vectors()
            .iter()
            .filter(|v| v["format"].as_str().unwrap().starts_with(prefix))
            .map(|v| v["id"].as_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn every_vector_decrypts() {
        let all = vectors();
        assert_eq!(all.len(), 20);
        let mut checked = 0;
        for v in &all {
            let id = v["id"].as_str().unwrap();
            let format = v["format"].as_str().unwrap();
            if !format.starts_with("s3ec-") {
                continue;
            }
            let c = case(id);
            if c.instruction.is_some() {
                assert!(detect(&c.metadata).is_none(), "{id}");
                assert!(instruction_file_hint(&c.metadata), "{id}");
            }
            let env = envelope_of(&c).unwrap_or_else(|e| panic!("{id}: {e}"));
            let kd = &v["kms_decrypt"];
            assert_eq!(
                env.kms_encryption_context(),
                string_map(&kd["encryption_context"]),
                "{id}"
            );
            assert_eq!(env.wrapped_key(), b64(&kd["ciphertext_blob_b64"]), "{id}");
            let (version, wrap, content) = match format {
                "s3ec-v2-kms-AES/CBC/PKCS5Padding" => {
                    (EnvelopeVersion::V2, WrapAlg::Kms, ContentAlg::AesCbc)
                }
                "s3ec-v2-kms+context-AES/GCM/NoPadding" => {
                    (EnvelopeVersion::V2, WrapAlg::KmsContext, ContentAlg::AesGcm)
                }
                "s3ec-v3-12-115" => (
                    EnvelopeVersion::V3,
                    WrapAlg::KmsContext,
                    ContentAlg::AesGcmHkdfSha512Commit,
                ),
                other => panic!("unknown format {other}"),
            };
            assert_eq!(env.version(), version, "{id}");
            assert_eq!(env.wrap_alg(), &wrap, "{id}");
            assert_eq!(env.content_alg(), content, "{id}");
            if wrap == WrapAlg::Kms {
                assert_eq!(
                    env.kms_key_id().as_deref(),
                    env.kms_encryption_context()
                        .get("kms_cmk_id")
                        .map(String::as_str),
                    "{id}"
                );
                assert!(env.kms_key_id().is_some(), "{id}");
            }
            let plain = env.decrypt(&c.data_key, &c.body).unwrap();
            assert_eq!(&plain[..], &c.expected[..], "{id}");
            assert_eq!(&read(&c).unwrap()[..], &c.expected[..], "{id}");
            checked += 1;
        }
        assert_eq!(checked, 19);
    }

    #[test]
    fn metadata_names_with_prefix_or_any_case() {
        for v in vectors() {
            if v["instruction_file"].is_object() || v["object"]["meta_headers"] == Value::Null {
                continue;
            }
            let id = v["id"].as_str().unwrap().to_owned();
            if !id.starts_with("ruby") && !id.starts_with("python") {
                continue;
            }
            let mut c = case(&id);
            // Raw headers, as x-amz-meta-*.
            c.metadata = pairs(&v["object"]["meta_headers"]);
            assert_eq!(&read(&c).unwrap()[..], &c.expected[..], "{id}");
            // Go-style canonical header case.
            c.metadata = c
                .metadata
                .iter()
                .map(|(k, v)| (canonical(k), v.clone()))
                .collect();
            assert_eq!(&read(&c).unwrap()[..], &c.expected[..], "{id}");
        }
    }

    fn canonical(k: &str) -> String {
        k.split('-')
            .map(|w| {
                let mut cs = w.chars();
                cs.next()
                    .map(|f| f.to_ascii_uppercase().to_string() + cs.as_str())
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join("-")
    }

    #[test]
    fn merged_envelope_field_reads_too() {
        for id in s3ec_ids() {
            let v = vector(&id);
            let mut c = case(&id);
            c.metadata = pairs(&v["envelope"]);
            c.instruction = None;
            assert_eq!(&read(&c).unwrap()[..], &c.expected[..], "{id}");
        }
    }

    #[test]
    fn same_field_with_and_without_prefix() {
        let mut c = case("ruby-v2-kms-context-metadata");
        let iv = c.metadata.iter().find(|(k, _)| k == IV).unwrap().1.clone();
        c.metadata.push(("X-Amz-Meta-X-Amz-Iv".into(), iv.clone()));
        assert_eq!(&read(&c).unwrap()[..], &c.expected[..]);
        c.metadata
            .push(("x-amz-meta-x-amz-iv".into(), flip_b64(&iv, 0)));
        assert_eq!(
            read(&c).unwrap_err(),
            EnvelopeError::ConflictingMetadata { key: IV.into() }
        );
    }

    #[test]
    fn blog_vector_is_a_kms_ciphertext() {
        let v = vector("blog-base64-kms-encrypt");
        let body = b64(&v["object"]["body_b64"]);
        let blob = b64(&v["kms_decrypt"]["ciphertext_blob_b64"]);
        assert!(detect(&pairs(&v["object"]["metadata"])).is_none());
        assert!(!instruction_file_hint(&pairs(&v["object"]["metadata"])));
        assert_eq!(kms_ciphertext_candidate(&body), Some(blob.clone()));
        // Raw blob, and base64 wrapped at 76 columns with CRLF and a trailing newline.
        assert_eq!(kms_ciphertext_candidate(&blob), Some(blob.clone()));
        let text = std::str::from_utf8(&body).unwrap();
        let wrapped: String = text
            .as_bytes()
            .chunks(76)
            .map(|c| std::str::from_utf8(c).unwrap().to_owned() + "\r\n")
            .collect();
        assert_eq!(
            kms_ciphertext_candidate(wrapped.as_bytes()),
            Some(blob.clone())
        );
        assert!(!looks_like_encryption_sdk_message(&body));
        // The plaintext itself is not a candidate.
        assert_eq!(
            kms_ciphertext_candidate(&b64(&v["expected_plaintext_b64"])),
            None
        );

        // Through the recorded KMS Decrypt (no encryption context, as the
        // writer passed none) to the document the blog's application reads.
        let candidate = kms_ciphertext_candidate(&body).unwrap();
        assert!(mock_kms(&candidate, &string_map(&serde_json::json!({"k": "v"}))).is_none());
        let plaintext = mock_kms(&candidate, &BTreeMap::new()).expect("KMS decrypts the blob");
        assert_eq!(&plaintext[..], &b64(&v["expected_plaintext_b64"])[..]);
        assert_eq!(
            &plaintext[..],
            v["expected_plaintext_utf8"].as_str().unwrap().as_bytes()
        );
        let parsed: Vec<(String, String)> = crate::document::parse_document(&plaintext)
            .unwrap()
            .into_iter()
            .map(|(k, v)| (k, v.expose().to_owned()))
            .collect();
        let expected: serde_json::Map<String, Value> =
            serde_json::from_str(v["expected_plaintext_utf8"].as_str().unwrap()).unwrap();
        // (serde_json's map is sorted; the document's order is checked below.)
        let expected: BTreeMap<String, String> = expected
            .into_iter()
            .map(|(k, v)| (k, v.as_str().unwrap().to_owned()))
            .collect();
        assert_eq!(parsed.iter().cloned().collect::<BTreeMap<_, _>>(), expected);
        assert_eq!(
            parsed,
            vec![
                ("db_password".to_owned(), "hunter2".to_owned()),
                ("api_token".to_owned(), "tok_0123456789abcdef".to_owned()),
            ]
        );
        // A damaged blob is not what KMS recorded: no plaintext.
        let mut damaged = candidate.clone();
        let last = damaged.len() - 1;
        damaged[last] ^= 0x01;
        assert!(mock_kms(&damaged, &BTreeMap::new()).is_none());
    }

    #[test]
    fn real_kms_header_is_recognised() {
        let mut blob = vec![0x01, 0x02, 0x02, 0x00, 0x78];
        blob.extend((0..180u8).map(|i| i.wrapping_mul(37)));
        assert_eq!(kms_ciphertext_candidate(&blob), Some(blob.clone()));
        let text = STANDARD.encode(&blob);
        assert!(text.starts_with("AQICAH"));
        assert_eq!(
            kms_ciphertext_candidate(text.as_bytes()),
            Some(blob.clone())
        );
        blob[1] = 0x01;
        assert!(STANDARD.encode(&blob).starts_with("AQECAH"));
        assert!(kms_ciphertext_candidate(&blob).is_some());
        // Too short, too long.
        assert_eq!(kms_ciphertext_candidate(&blob[..40]), None);
        let mut big = blob.clone();
        big.resize(MAX_KMS_BLOB + 1, 7);
        assert_eq!(kms_ciphertext_candidate(&big), None);
    }

    #[test]
    fn plain_documents_are_not_ciphertexts() {
        let docs: Vec<Vec<u8>> = vec![
            b"".to_vec(),
            b"hunter2".to_vec(),
            b"DB_PASSWORD=hunter2\nAPI=x\n".to_vec(),
            b"{\"a\":\"b\"}".to_vec(),
            b"AYANAMI=rei\n".to_vec(),
            b"AgV4isnotanesdkmessage".to_vec(),
            // base64 of text is not a blob
            STANDARD
                .encode("just some words that happen to be long enough to pass")
                .into_bytes(),
            // a text starting with a UUID is not moto's blob
            b"da7276fb-f23e-4b50-a494-d0411daccaff is the key id of this long line".to_vec(),
            STANDARD
                .encode("da7276fb-f23e-4b50-a494-d0411daccaff is the key id of this long line")
                .into_bytes(),
        ];
        for d in &docs {
            assert_eq!(
                kms_ciphertext_candidate(d),
                None,
                "{:?}",
                String::from_utf8_lossy(d)
            );
            assert!(!looks_like_encryption_sdk_message(d));
        }
        for id in s3ec_ids() {
            let c = case(&id);
            assert_eq!(kms_ciphertext_candidate(&c.body), None, "{id}");
            assert!(!looks_like_encryption_sdk_message(&c.body), "{id}");
        }
    }

    #[test]
    fn encryption_sdk_messages_are_recognised() {
        let mut v2 = vec![0x02, 0x05, 0x78];
        v2.extend([0xAB; 200]);
        let mut v2b = v2.clone();
        v2b[1] = 0x04;
        let mut v1 = vec![0x01, 0x80, 0x03, 0x78];
        v1.extend([0xCD; 200]);
        for m in [&v1, &v2, &v2b] {
            assert!(looks_like_encryption_sdk_message(m));
            let text = STANDARD.encode(m);
            assert!(looks_like_encryption_sdk_message(text.as_bytes()));
            let wrapped = format!("{}\n{}\n", &text[..64], &text[64..]);
            assert!(looks_like_encryption_sdk_message(wrapped.as_bytes()));
            assert_eq!(kms_ciphertext_candidate(m), None);
        }
        assert!(STANDARD.encode(&v2).starts_with("AgV4"));
        assert!(STANDARD.encode(&v2b).starts_with("AgR4"));
        assert!(STANDARD.encode(&v1).starts_with("AYAD"));
        // Unknown suite, or too short.
        let mut bad = v1.clone();
        bad[2] = 0x09;
        assert!(!looks_like_encryption_sdk_message(&bad));
        assert!(!looks_like_encryption_sdk_message(&v2[..20]));
    }

    #[test]
    fn gcm_tampering_is_refused() {
        for id in ids_with_format("s3ec-v2-kms+context") {
            let c = case(&id);
            let n = c.body.len();
            let mut t = case(&id);
            if n > GCM_TAG_LEN {
                t.body[0] ^= 0x01;
                assert_eq!(
                    read(&t).unwrap_err(),
                    EnvelopeError::AuthenticationFailed,
                    "{id}"
                );
                t.body = c.body.clone();
                t.body[n - GCM_TAG_LEN - 1] ^= 0x80;
                assert_eq!(
                    read(&t).unwrap_err(),
                    EnvelopeError::AuthenticationFailed,
                    "{id}"
                );
            }
            t.body = c.body.clone();
            t.body[n - 1] ^= 0x01;
            assert_eq!(
                read(&t).unwrap_err(),
                EnvelopeError::AuthenticationFailed,
                "{id} tag"
            );
            t.body = c.body.clone();
            t.body[n - GCM_TAG_LEN] ^= 0x01;
            assert_eq!(
                read(&t).unwrap_err(),
                EnvelopeError::AuthenticationFailed,
                "{id} tag"
            );
            t.body = c.body[..n - 1].to_vec();
            assert!(read(&t).is_err(), "{id} truncated");
            t.body = c.body[..GCM_TAG_LEN - 1].to_vec();
            assert_eq!(
                read(&t).unwrap_err(),
                EnvelopeError::BadCiphertextLength { actual: 15 },
                "{id}"
            );
            t.body = [&c.body[..], b"x"].concat();
            assert!(read(&t).is_err(), "{id} extended");
            // Another IV.
            let mut t = case(&id);
            let iv = t
                .metadata
                .iter()
                .find(|(k, _)| k == IV)
                .map(|(_, v)| v.clone());
            if let Some(iv) = iv {
                set(&mut t.metadata, IV, &flip_b64(&iv, 3));
                assert_eq!(
                    read(&t).unwrap_err(),
                    EnvelopeError::AuthenticationFailed,
                    "{id}"
                );
            }
            // Wrong data key.
            let env = envelope_of(&c).unwrap();
            let mut key = c.data_key.clone();
            key[31] ^= 0x01;
            assert_eq!(
                env.decrypt(&key, &c.body).unwrap_err(),
                EnvelopeError::AuthenticationFailed
            );
        }
    }

    #[test]
    fn cbc_tampering_is_refused() {
        for id in ids_with_format("s3ec-v2-kms-AES/CBC") {
            let c = case(&id);
            let n = c.body.len();
            let env = envelope_of(&c).unwrap();
            // Padding damage: the last byte, and the byte that lands on the
            // final padding byte.
            let mut body = c.body.clone();
            body[n - 1] ^= 0x01;
            assert!(env.decrypt(&c.data_key, &body).is_err(), "{id}");
            if n >= 32 {
                let mut body = c.body.clone();
                body[n - 17] ^= 0x01;
                assert_eq!(
                    env.decrypt(&c.data_key, &body).unwrap_err(),
                    EnvelopeError::BadPadding,
                    "{id}"
                );
            }
            // Truncated: not whole blocks, or a block short.
            assert_eq!(
                env.decrypt(&c.data_key, &c.body[..n - 1]).unwrap_err(),
                EnvelopeError::BadCiphertextLength { actual: n - 1 }
            );
            assert!(env.decrypt(&c.data_key, &c.body[..n - 16]).is_err(), "{id}");
            assert!(env.decrypt(&c.data_key, &[]).is_err());
            // CBC is unauthenticated: a flip in an earlier block can pass the
            // padding check, but never yields the original plaintext.
            let mut body = c.body.clone();
            body[0] ^= 0x01;
            let result = env.decrypt(&c.data_key, &body);
            assert!(
                result.is_err() || result.as_ref().is_ok_and(|p| p[..] != c.expected[..]),
                "{id}: a flipped first byte decrypted to the original plaintext"
            );
            // Wrong IV length.
            let mut t = case(&id);
            if t.instruction.is_none() {
                set(&mut t.metadata, IV, &STANDARD.encode([0u8; 12]));
                assert_eq!(
                    read(&t).unwrap_err(),
                    EnvelopeError::InvalidLength {
                        field: IV,
                        expected: 16,
                        actual: 12
                    }
                );
            }
        }
    }

    #[test]
    fn cbc_length_check_catches_a_dropped_block() {
        let c = case("ruby-v1-kms-medium");
        let env = envelope_of(&c).unwrap();
        assert!(env.unencrypted_content_length().is_some());
        // Drop the first block: the rest still decrypts (CBC), but the length is wrong.
        let err = env.decrypt(&c.data_key, &c.body[16..]).unwrap_err();
        assert!(
            matches!(err, EnvelopeError::LengthMismatch { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn v3_tampering_is_refused() {
        for id in ids_with_format("s3ec-v3") {
            let c = case(&id);
            let n = c.body.len();
            let md = c.metadata.clone();
            let get = |k: &str| md.iter().find(|(n, _)| n == k).unwrap().1.clone();

            let mut t = case(&id);
            t.body[n - 1] ^= 0x01;
            assert_eq!(
                read(&t).unwrap_err(),
                EnvelopeError::AuthenticationFailed,
                "{id}"
            );
            if n > GCM_TAG_LEN {
                let mut t = case(&id);
                t.body[0] ^= 0x01;
                assert_eq!(
                    read(&t).unwrap_err(),
                    EnvelopeError::AuthenticationFailed,
                    "{id}"
                );
            }
            let mut t = case(&id);
            t.body.truncate(n - 1);
            assert!(read(&t).is_err());

            // Commitment and message id damage.
            let mut t = case(&id);
            set(
                &mut t.metadata,
                V3_COMMITMENT,
                &flip_b64(&get(V3_COMMITMENT), 27),
            );
            assert_eq!(
                read(&t).unwrap_err(),
                EnvelopeError::CommitmentMismatch,
                "{id}"
            );
            let mut t = case(&id);
            set(
                &mut t.metadata,
                V3_MESSAGE_ID,
                &flip_b64(&get(V3_MESSAGE_ID), 0),
            );
            assert_eq!(
                read(&t).unwrap_err(),
                EnvelopeError::CommitmentMismatch,
                "{id}"
            );
            let mut t = case(&id);
            set(&mut t.metadata, V3_COMMITMENT, &STANDARD.encode([0u8; 32]));
            assert!(matches!(
                read(&t).unwrap_err(),
                EnvelopeError::InvalidLength {
                    field: V3_COMMITMENT,
                    ..
                }
            ));
            // Wrong data key: caught by the commitment.
            let env = envelope_of(&c).unwrap();
            let mut key = c.data_key.clone();
            key[0] ^= 0x01;
            assert_eq!(
                env.decrypt(&key, &c.body).unwrap_err(),
                EnvelopeError::CommitmentMismatch
            );
            // Context and algorithms.
            let mut t = case(&id);
            set(
                &mut t.metadata,
                V3_CONTEXT,
                r#"{"aws:x-amz-cek-alg":"AES/GCM/NoPadding"}"#,
            );
            assert!(matches!(
                read(&t).unwrap_err(),
                EnvelopeError::CekAlgMismatch { .. }
            ));
            let t = Case {
                metadata: without(&c.metadata, V3_CONTEXT),
                ..case(&id)
            };
            assert!(matches!(
                read(&t).unwrap_err(),
                EnvelopeError::CekAlgMismatch {
                    context_alg: None,
                    ..
                }
            ));
            let mut t = case(&id);
            set(&mut t.metadata, V3_CONTENT, "116");
            assert!(matches!(
                read(&t).unwrap_err(),
                EnvelopeError::UnsupportedContentAlg { .. }
            ));
            for (w, alg) in [("02", WrapAlg::AesGcm), ("22", WrapAlg::RsaOaepSha1)] {
                let mut t = case(&id);
                set(&mut t.metadata, V3_WRAP, w);
                assert_eq!(
                    read(&t).unwrap_err(),
                    EnvelopeError::UnsupportedWrapAlg { alg }
                );
            }
            // An extra context entry is a different context: KMS refuses.
            let mut t = case(&id);
            let ctx = get(V3_CONTEXT).replace('}', r#", "tenant": "evil"}"#);
            set(&mut t.metadata, V3_CONTEXT, &ctx);
            let env = envelope_of(&t).unwrap();
            assert!(mock_kms(env.wrapped_key(), &env.kms_encryption_context()).is_none());
        }
    }

    #[test]
    fn v3_envelope_split_with_instruction_file() {
        // V3 keeps x-amz-c/d/i in the metadata and the rest in KEY.instruction.
        let c = case("python-v3-commit-extra-ec");
        let (meta, instr): (Vec<_>, Vec<_>) =
            c.metadata.iter().cloned().partition(|(k, _)| {
                [V3_CONTENT, V3_COMMITMENT, V3_MESSAGE_ID].contains(&k.as_str())
            });
        let json = serde_json::to_vec(&instr.into_iter().collect::<BTreeMap<_, _>>()).unwrap();
        assert!(detect(&meta).is_none());
        assert!(instruction_file_hint(&meta));
        let t = Case {
            metadata: meta,
            instruction: Some(json.clone()),
            ..case("python-v3-commit-extra-ec")
        };
        assert_eq!(&read(&t).unwrap()[..], &c.expected[..]);
        assert_eq!(
            parse_instruction(&json).unwrap_err(),
            EnvelopeError::MissingField { field: V3_CONTENT }
        );
    }

    #[test]
    fn kms_context_binding() {
        // Ruby V2 / Python V2: the matdesc must name the content algorithm.
        for id in ["ruby-v2-kms-context-metadata", "python-v2-gcm-extra-ec"] {
            let c = case(id);
            let matdesc = c
                .metadata
                .iter()
                .find(|(k, _)| k == MATDESC)
                .unwrap()
                .1
                .clone();

            let mut t = case(id);
            set(
                &mut t.metadata,
                MATDESC,
                &matdesc.replace("AES/GCM/NoPadding", "AES/CBC/PKCS5Padding"),
            );
            assert_eq!(
                read(&t).unwrap_err(),
                EnvelopeError::CekAlgMismatch {
                    content_alg: "AES/GCM/NoPadding".into(),
                    context_alg: Some("AES/CBC/PKCS5Padding".into())
                }
            );
            // Downgrade: the object claims CBC, the context says GCM.
            let mut t = case(id);
            set(&mut t.metadata, CEK_ALG, "AES/CBC/PKCS5Padding");
            set(&mut t.metadata, IV, &STANDARD.encode([7u8; 16]));
            assert!(matches!(
                read(&t).unwrap_err(),
                EnvelopeError::CekAlgMismatch { .. }
            ));
            // No cek-alg in the context at all.
            let mut t = case(id);
            set(&mut t.metadata, MATDESC, "{}");
            assert!(matches!(
                read(&t).unwrap_err(),
                EnvelopeError::CekAlgMismatch {
                    context_alg: None,
                    ..
                }
            ));
            // Extra or changed context entries: the envelope parses, KMS refuses.
            let mut t = case(id);
            set(
                &mut t.metadata,
                MATDESC,
                &matdesc.replacen('{', r#"{"extra":"x","#, 1),
            );
            let env = envelope_of(&t).unwrap();
            assert!(mock_kms(env.wrapped_key(), &env.kms_encryption_context()).is_none());
            assert!(read(&t).is_err());
        }
        // Legacy kms wrap: the context is the matdesc, kms_cmk_id included.
        let c = case("ruby-v1-kms-alias-metadata");
        let env = envelope_of(&c).unwrap();
        assert_eq!(env.wrap_alg(), &WrapAlg::Kms);
        assert!(env.kms_key_id().unwrap().starts_with("alias/"));
        let mut t = case("ruby-v1-kms-alias-metadata");
        set(&mut t.metadata, MATDESC, r#"{"kms_cmk_id":"alias/other"}"#);
        assert!(read(&t).is_err());
    }

    #[test]
    fn malformed_envelopes_are_errors() {
        let base = case("ruby-v2-kms-context-metadata").metadata;
        let with = |key: &str, value: &str| {
            let mut md = base.clone();
            set(&mut md, key, value);
            detect(&md).unwrap().unwrap_err()
        };
        assert_eq!(
            with(IV, "not base64!"),
            EnvelopeError::InvalidBase64 { field: IV }
        );
        assert_eq!(
            with(KEY_V2, "%%%"),
            EnvelopeError::InvalidBase64 { field: KEY_V2 }
        );
        assert_eq!(
            with(KEY_V2, ""),
            EnvelopeError::MissingField { field: KEY_V2 }
        );
        assert_eq!(
            with(IV, &STANDARD.encode([0u8; 16])),
            EnvelopeError::InvalidLength {
                field: IV,
                expected: 12,
                actual: 16
            }
        );
        for bad in ["96", "120", "abc", ""] {
            assert_eq!(
                with(TAG_LEN, bad),
                EnvelopeError::UnsupportedTagLength { value: bad.into() }
            );
        }
        assert!(detect(&without(&base, TAG_LEN)).unwrap().is_ok());
        assert_eq!(
            with(CEK_ALG, "AES/CTR/NoPadding"),
            EnvelopeError::UnsupportedContentAlg {
                alg: "AES/CTR/NoPadding".into()
            }
        );
        for bad in ["not json", "[]", r#"{"a":1}"#, r#"{"a":null}"#, ""] {
            assert_eq!(
                with(MATDESC, bad),
                EnvelopeError::InvalidContext { field: MATDESC }
            );
        }
        for (name, alg) in [
            ("AES/GCM", WrapAlg::AesGcm),
            ("RSA-OAEP-SHA1", WrapAlg::RsaOaepSha1),
            ("AESWrap", WrapAlg::AesWrap),
            (
                "RSA/ECB/OAEPWithSHA-256AndMGF1Padding",
                WrapAlg::RsaOaepSha256,
            ),
            ("rot13", WrapAlg::Other("rot13".into())),
        ] {
            let e = with(WRAP_ALG, name);
            assert_eq!(e, EnvelopeError::UnsupportedWrapAlg { alg });
            assert!(e.to_string().contains("not supported"), "{e}");
        }
        for field in [WRAP_ALG, CEK_ALG, MATDESC, IV] {
            assert_eq!(
                detect(&without(&base, field)).unwrap().unwrap_err(),
                EnvelopeError::MissingField { field }
            );
        }
        // V1 envelope and mixtures.
        let v1 = vec![
            ("x-amz-key".to_owned(), STANDARD.encode([1u8; 48])),
            (IV.to_owned(), STANDARD.encode([2u8; 16])),
            (MATDESC.to_owned(), "{}".to_owned()),
        ];
        let e = detect(&v1).unwrap().unwrap_err();
        assert_eq!(e, EnvelopeError::LegacyV1Envelope);
        assert!(e.to_string().contains("not supported"));
        // x-amz-key under a KMS wrap reads like x-amz-key-v2 (PRODUCT.md §5).
        let as_v1: Vec<(String, String)> = base
            .iter()
            .map(|(k, v)| match k.as_str() {
                KEY_V2 => (KEY_V1.to_owned(), v.clone()),
                _ => (k.clone(), v.clone()),
            })
            .collect();
        let from_v1 = detect(&as_v1).unwrap().unwrap();
        let from_v2 = detect(&base).unwrap().unwrap();
        assert_eq!(from_v1.wrapped_key(), from_v2.wrapped_key());
        assert_eq!(
            from_v1.kms_encryption_context(),
            from_v2.kms_encryption_context()
        );
        let mut both = base.clone();
        both.push(("x-amz-3".into(), "AAAA".into()));
        assert_eq!(
            detect(&both).unwrap().unwrap_err(),
            EnvelopeError::AmbiguousEnvelope
        );
        // Nothing there.
        assert!(detect(&[]).is_none());
        assert!(detect(&[("content-type".into(), "text/plain".into())]).is_none());
        assert!(!instruction_file_hint(&[]));
    }

    #[test]
    fn data_key_length_is_checked() {
        let c = case("python-v2-gcm-metadata");
        let env = envelope_of(&c).unwrap();
        for len in [0, 16, 31, 33, 64] {
            assert_eq!(
                env.decrypt(&vec![7u8; len], &c.body).unwrap_err(),
                EnvelopeError::DataKeyLength { actual: len }
            );
        }
    }

    #[test]
    fn instruction_files() {
        let c = case("ruby-v1-kms-instruction-file");
        let json = c.instruction.clone().unwrap();
        // On its own (no metadata length check) it reads too.
        let env = parse_instruction(&json).unwrap();
        assert_eq!(env.unencrypted_content_length(), None);
        assert_eq!(
            &env.decrypt(&c.data_key, &c.body).unwrap()[..],
            &c.expected[..]
        );
        // With the metadata, the length is checked.
        let env = parse_instruction_with_metadata(&json, &c.metadata).unwrap();
        assert_eq!(env.unencrypted_content_length(), Some(108));
        // Go style: numbers for tag length and length, extra keys, any case.
        let g = case("ruby-v2-kms-context-instruction-file");
        let mut obj: serde_json::Map<String, Value> =
            serde_json::from_slice(g.instruction.as_ref().unwrap()).unwrap();
        obj.insert(TAG_LEN.into(), Value::from(128));
        obj.insert(UNENCRYPTED_LEN.into(), Value::from(108));
        obj.insert("X-Amz-Something-New".into(), Value::from(true));
        obj.insert("note".into(), Value::Null);
        let iv = obj.remove(IV).unwrap();
        obj.insert("X-Amz-Iv".into(), iv);
        let json = serde_json::to_vec(&obj).unwrap();
        let t = Case {
            instruction: Some(json),
            metadata: vec![],
            ..case("ruby-v2-kms-context-instruction-file")
        };
        assert_eq!(&read(&t).unwrap()[..], &g.expected[..]);
        // Errors.
        for (bad, reason) in [
            (&b"not json"[..], "not valid JSON"),
            (b"[1,2]", "not a JSON object"),
            (b"{\"x-amz-iv\":[1]}", "an envelope field is not a string"),
        ] {
            assert_eq!(
                parse_instruction(bad).unwrap_err(),
                EnvelopeError::InvalidInstructionFile { reason }
            );
        }
        assert_eq!(
            parse_instruction(b"{}").unwrap_err(),
            EnvelopeError::NoEnvelope
        );
        assert_eq!(
            parse_instruction(b"{\"x-amz-key\":\"AAAA\"}").unwrap_err(),
            EnvelopeError::LegacyV1Envelope
        );
    }

    #[test]
    fn rfc2047_encoded_metadata() {
        let mut c = case("ruby-v2-kms-context-metadata");
        let matdesc = c
            .metadata
            .iter()
            .find(|(k, _)| k == MATDESC)
            .unwrap()
            .1
            .clone();
        set(
            &mut c.metadata,
            MATDESC,
            &format!("=?UTF-8?B?{}?=", STANDARD.encode(&matdesc)),
        );
        assert_eq!(&read(&c).unwrap()[..], &c.expected[..]);

        assert_eq!(decode_rfc2047("=?UTF-8?B?w6k=?="), Some("é".into()));
        assert_eq!(
            decode_rfc2047("=?utf-8?Q?caf=C3=A9_au_lait?= =?UTF-8?B?IOKYgw==?="),
            Some("café au lait ☃".into())
        );
        assert_eq!(decode_rfc2047("=?ISO-8859-1?Q?=E9?="), Some("é".into()));
        assert_eq!(decode_rfc2047("{\"a\":\"b\"}"), None);
        assert_eq!(decode_rfc2047("=?UTF-8?X?abc?="), None);
        assert_eq!(decode_rfc2047("=?UTF-8?Q?=ZZ?="), None);
        assert_eq!(decode_rfc2047("=?UTF-8?Q?=+F?="), None);
        assert_eq!(decode_rfc2047("=?koi8-r?B?AAAA?="), None);
        assert_eq!(decode_rfc2047("=?UTF-8?B?w6k=?= trailing"), None);
        assert_eq!(decode_rfc2047("=?"), None);

        let env = detect(&[
            (KEY_V2.into(), STANDARD.encode([9u8; 100])),
            (IV.into(), STANDARD.encode([1u8; 12])),
            (CEK_ALG.into(), AES_GCM_NO_PADDING.into()),
            (WRAP_ALG.into(), "kms+context".into()),
            (
                MATDESC.into(),
                format!(
                    "=?UTF-8?B?{}?=",
                    STANDARD.encode(r#"{"aws:x-amz-cek-alg":"AES/GCM/NoPadding","team":"équipe"}"#)
                ),
            ),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(env.kms_encryption_context()["team"], "équipe");
    }

    #[test]
    fn encrypt_v2_round_trips() {
        let key = [0x42u8; 32];
        let wrapped = b"wrapped-key-blob-from-kms".to_vec();
        for plaintext in [&b""[..], b"A=1\n", &[0u8; 1000][..]] {
            let (body, metadata) = encrypt_v2(&key, &wrapped, "alias/app", plaintext, [9u8; 12]);
            assert_eq!(body.len(), plaintext.len() + 16);
            let env = detect(&metadata).unwrap().unwrap();
            assert_eq!(env.version(), EnvelopeVersion::V2);
            assert_eq!(env.wrap_alg(), &WrapAlg::KmsContext);
            assert_eq!(env.content_alg(), ContentAlg::AesGcm);
            assert_eq!(env.wrapped_key(), &wrapped[..]);
            assert_eq!(
                env.kms_encryption_context(),
                encryption_context_for_push("alias/app")
            );
            assert_eq!(
                env.unencrypted_content_length(),
                Some(plaintext.len() as u64)
            );
            assert_eq!(&env.decrypt(&key, &body).unwrap()[..], plaintext);
            let mut bad = body.clone();
            bad[0] ^= 1;
            assert!(env.decrypt(&key, &bad).is_err());
            // With the x-amz-meta- prefix, as raw headers.
            let prefixed: Vec<_> = metadata
                .iter()
                .map(|(k, v)| (format!("x-amz-meta-{k}"), v.clone()))
                .collect();
            assert_eq!(detect(&prefixed).unwrap().unwrap(), env);
        }
    }

    #[test]
    fn encrypt_v2_writes_what_the_ruby_v2_client_writes() {
        // Same data key, IV and wrapped key as a real Ruby EncryptionV2 object:
        // the body and every envelope field must come out identical.
        let v = vector("ruby-v2-kms-context-metadata");
        let c = case("ruby-v2-kms-context-metadata");
        let md: BTreeMap<String, String> = c.metadata.iter().cloned().collect();
        let iv: [u8; 12] = STANDARD.decode(&md[IV]).unwrap().try_into().unwrap();
        let key: [u8; 32] = c.data_key.clone().try_into().unwrap();
        let wrapped = b64(&v["kms_decrypt"]["ciphertext_blob_b64"]);
        let kms_key_id = v["writer_options"]["kms_key_id"].as_str().unwrap();
        let (body, metadata) = encrypt_v2(&key, &wrapped, kms_key_id, &c.expected, iv);
        assert_eq!(body, c.body);
        let ours: BTreeMap<String, String> = metadata.into_iter().collect();
        assert_eq!(ours, md);
        assert_eq!(
            encryption_context_for_push(kms_key_id),
            string_map(&v["checks"]["generate_data_key_request"]["encryption_context"])
        );
    }

    #[test]
    fn errors_never_show_secrets() {
        let c = case("ruby-v2-kms-context-metadata");
        let key_b64 = STANDARD.encode(&c.data_key);
        let mut errors = Vec::new();
        let env = envelope_of(&c).unwrap();
        let mut body = c.body.clone();
        body[0] ^= 1;
        errors.push(env.decrypt(&c.data_key, &body).unwrap_err());
        errors.push(env.decrypt(&c.data_key[..16], &c.body).unwrap_err());
        let cbc = case("ruby-v1-kms-medium");
        let cenv = envelope_of(&cbc).unwrap();
        errors.push(cenv.decrypt(&cbc.data_key, &cbc.body[16..]).unwrap_err());
        let mut b = cbc.body.clone();
        let n = b.len();
        b[n - 17] ^= 1;
        errors.push(cenv.decrypt(&cbc.data_key, &b).unwrap_err());
        for e in errors {
            for shown in [e.to_string(), format!("{e:?}")] {
                assert!(!shown.contains("hunter2"), "{shown}");
                assert!(!shown.contains(&key_b64), "{shown}");
            }
        }
    }

    /// Arbitrary input never panics: random mutations of real envelopes and
    /// bodies, and random bytes, through every entry point.
    #[test]
    fn arbitrary_input_never_panics() {
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut rnd = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let cases: Vec<Case> = s3ec_ids().iter().map(|id| case(id)).collect();
        let alphabet: &[u8] = b"AQIC+/=09azZ{}\":,[] \n\x00\xff=?_-";
        for round in 0..4000 {
            let c = &cases[(rnd() as usize) % cases.len()];
            let mut md = c.metadata.clone();
            let mut body = c.body.clone();
            let mut key = c.data_key.clone();
            for _ in 0..(rnd() % 4) {
                match rnd() % 6 {
                    0 if !md.is_empty() => {
                        let i = (rnd() as usize) % md.len();
                        let v = &mut md[i].1;
                        if !v.is_empty() {
                            let mut bytes = v.clone().into_bytes();
                            let j = (rnd() as usize) % bytes.len();
                            bytes[j] = alphabet[(rnd() as usize) % alphabet.len()];
                            *v = String::from_utf8_lossy(&bytes).into_owned();
                        }
                    }
                    1 if !md.is_empty() => {
                        let i = (rnd() as usize) % md.len();
                        md.remove(i);
                    }
                    2 if !md.is_empty() => {
                        let i = (rnd() as usize) % md.len();
                        let keep = (rnd() as usize) % (md[i].1.len() + 1);
                        let mut s = md[i].1.clone();
                        while s.len() > keep {
                            s.pop();
                        }
                        md[i].1 = s;
                    }
                    3 if !body.is_empty() => {
                        let i = (rnd() as usize) % body.len();
                        body[i] ^= 1 << (rnd() % 8);
                    }
                    4 => body.truncate((rnd() as usize) % (body.len() + 1)),
                    _ => key.truncate((rnd() as usize) % 40),
                }
            }
            let result = match &c.instruction {
                Some(json) if round % 2 == 0 => {
                    let mut json = json.clone();
                    if !json.is_empty() {
                        let i = (rnd() as usize) % json.len();
                        json[i] = alphabet[(rnd() as usize) % alphabet.len()];
                    }
                    Some(parse_instruction_with_metadata(&json, &md))
                }
                _ => detect(&md),
            };
            if let Some(Ok(env)) = result {
                let _ = env.decrypt(&key, &body);
            }
            let noise: Vec<u8> = (0..(rnd() % 300)).map(|_| rnd() as u8).collect();
            let _ = kms_ciphertext_candidate(&noise);
            let _ = looks_like_encryption_sdk_message(&noise);
            let _ = parse_instruction(&noise);
            let _ = crate::document::parse_document(&noise);
            let text: Vec<u8> = (0..(rnd() % 200))
                .map(|_| alphabet[(rnd() as usize) % alphabet.len()])
                .collect();
            let _ = kms_ciphertext_candidate(&text);
            let _ = looks_like_encryption_sdk_message(&text);
            let _ = crate::document::parse_document(&text);
            let _ = decode_rfc2047(&String::from_utf8_lossy(&text));
        }
    }
}
