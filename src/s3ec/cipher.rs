//! The ciphers: AES-256-GCM and AES-256-CBC opening of an object body, the
//! V3 committed content key (HKDF-SHA512), and the V2 `kms+context` envelope
//! written for `envseal push` (RustCrypto).

use std::collections::BTreeMap;

use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockDecryptMut, KeyIvInit};
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use base64::Engine;
use hkdf::Hkdf;
use sha2::Sha512;
use zeroize::Zeroizing;

use super::format::*;

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

/// AES-256-GCM open of `ciphertext ‖ tag16`. The output buffer is zeroized
/// on drop, including when authentication fails.
pub(super) fn gcm_open(
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
pub(super) fn cbc_open(
    key: &[u8],
    iv: &[u8],
    body: &[u8],
) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
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
pub(super) fn v3_content_key(
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
