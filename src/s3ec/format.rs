//! The S3EC vocabulary every part shares: metadata field names and sizes,
//! the wrap and content algorithms, the envelope versions, and
//! [`EnvelopeError`].

use std::fmt;

use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use crate::document::KeyName;

/// Suffix of the instruction-file object that holds an envelope.
pub const INSTRUCTION_SUFFIX: &str = ".instruction";
/// The encryption-context key that binds the content algorithm (kms+context).
pub const CEK_ALG_CONTEXT_KEY: &str = "aws:x-amz-cek-alg";
/// The content algorithm `envseal push` writes.
pub const AES_GCM_NO_PADDING: &str = "AES/GCM/NoPadding";

pub(super) const META_PREFIX: &str = "x-amz-meta-";
pub(super) const KEY_V1: &str = "x-amz-key";
pub(super) const KEY_V2: &str = "x-amz-key-v2";
pub(super) const KEY_V3: &str = "x-amz-3";
pub(super) const IV: &str = "x-amz-iv";
pub(super) const MATDESC: &str = "x-amz-matdesc";
pub(super) const WRAP_ALG: &str = "x-amz-wrap-alg";
pub(super) const CEK_ALG: &str = "x-amz-cek-alg";
pub(super) const TAG_LEN: &str = "x-amz-tag-len";
pub(super) const UNENCRYPTED_LEN: &str = "x-amz-unencrypted-content-length";
pub(super) const V3_WRAP: &str = "x-amz-w";
pub(super) const V3_CONTENT: &str = "x-amz-c";
pub(super) const V3_CONTEXT: &str = "x-amz-t";
pub(super) const V3_COMMITMENT: &str = "x-amz-d";
pub(super) const V3_MESSAGE_ID: &str = "x-amz-i";

/// Every field an envelope reader looks at.
pub(super) const ENVELOPE_FIELDS: [&str; 15] = [
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

pub(super) const DATA_KEY_LEN: usize = 32;
pub(super) const GCM_IV_LEN: usize = 12;
pub(super) const GCM_TAG_LEN: usize = 16;
pub(super) const CBC_IV_LEN: usize = 16;
pub(super) const V3_SUITE_ID: [u8; 2] = [0x00, 0x73];
pub(super) const V3_SUITE: &str = "115";
pub(super) const V3_IV: [u8; 12] = [0x01; 12];
pub(super) const V3_COMMITMENT_LEN: usize = 28;
pub(super) const V3_MESSAGE_ID_LEN: usize = 28;
/// KMS ciphertext blobs are at most 6144 bytes.
pub(super) const MAX_KMS_BLOB: usize = 6144;
/// Smallest blob worth calling KMS for (moto: 36-byte key id, IV, tag).
pub(super) const MIN_KMS_BLOB: usize = 64;

/// Standard alphabet; padding optional (writers differ), no line breaks.
pub(super) const B64: GeneralPurpose = GeneralPurpose::new(
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
    pub(super) fn from_v2(s: &str) -> Self {
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

    pub(super) fn from_v3(s: &str) -> Self {
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

    pub(super) fn is_kms(&self) -> bool {
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

pub(crate) fn is_b64_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'='
}

pub(crate) fn strip_ascii_whitespace(b: &[u8]) -> Vec<u8> {
    b.iter()
        .copied()
        .filter(|c| !c.is_ascii_whitespace() && *c != 0x0b)
        .collect()
}
