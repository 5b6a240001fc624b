//! Recognising the other encrypted formats an S3 object can hold: a bare KMS
//! ciphertext blob (raw or base64) and an AWS Encryption SDK message.

use base64::Engine;

use super::format::*;

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
