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
//!
//! - [`envelope`]: object metadata or an instruction file → [`Envelope`]
//! - [`cipher`]: the body opened (AES-GCM, AES-CBC, the V3 committed key);
//!   the V2 envelope written for `envseal push`
//! - [`sniff`]: a bare KMS ciphertext blob, an AWS Encryption SDK message
//!
//! [`Envelope`]: envelope::Envelope
//! [`Envelope::wrapped_key`]: envelope::Envelope::wrapped_key
//! [`Envelope::kms_encryption_context`]: envelope::Envelope::kms_encryption_context
//! [`Envelope::decrypt`]: envelope::Envelope::decrypt

pub mod cipher;
pub mod envelope;
pub mod sniff;
#[cfg(test)]
mod tests;

use std::fmt;

use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use crate::document::KeyName;

pub use envelope::{ContentAlg, Envelope, EnvelopeVersion, WrapAlg};

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
