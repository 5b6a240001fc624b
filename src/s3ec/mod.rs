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
//! - [`format`](mod@format): field names and sizes, algorithms, [`EnvelopeError`]
//!
//! [`Envelope`]: envelope::Envelope
//! [`Envelope::wrapped_key`]: envelope::Envelope::wrapped_key
//! [`Envelope::kms_encryption_context`]: envelope::Envelope::kms_encryption_context
//! [`Envelope::decrypt`]: envelope::Envelope::decrypt

pub mod cipher;
pub mod envelope;
pub mod format;
pub mod sniff;
#[cfg(test)]
mod tests;

pub use envelope::Envelope;
pub use format::{
    ContentAlg, EnvelopeError, EnvelopeVersion, WrapAlg, AES_GCM_NO_PADDING, CEK_ALG_CONTEXT_KEY,
    INSTRUCTION_SUFFIX,
};
