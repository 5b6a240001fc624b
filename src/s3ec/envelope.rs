//! An S3EC envelope read from an object's metadata, or from its
//! `KEY.instruction` file merged over that metadata: which version, how the
//! data key is wrapped, the content algorithm, the KMS encryption context.

use std::collections::BTreeMap;

use base64::Engine;
use serde_json::Value;
use zeroize::Zeroizing;

use super::cipher::{cbc_open, gcm_open, v3_content_key};
use super::format::*;

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
    let bytes = crate::document::strip_bom(bytes);
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

/// Decodes a value that is wholly RFC 2047 encoded words (`=?UTF-8?B?…?=`,
/// as S3 returns non-ASCII metadata). `None`: not encoded (use as is).
pub(super) fn decode_rfc2047(value: &str) -> Option<String> {
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
