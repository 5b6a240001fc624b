//! The S3 Encryption Client envelope path: metadata detection
//! (`envelope::detect`), instruction files (`parse_instruction`), the body
//! decryption (`Envelope::decrypt` with a fixed data key) and bare KMS
//! ciphertext detection (`kms_ciphertext_candidate`).
//!
//! Inputs are edits of two valid envelopes (V2 AES-GCM `kms+context`, as
//! `envseal push` writes it, and V2 AES-CBC `kms`), so that the fuzzer spends
//! its time past the parser. Oracle: nothing panics, and an authenticated
//! (GCM) envelope never decrypts to anything but the original plaintext.
#![no_main]

use std::sync::OnceLock;

use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockEncryptMut, KeyIvInit};
use envseal::s3ec::envelope::{self, detect, parse_instruction};
use envseal::s3ec::sniff::{self, kms_ciphertext_candidate};
use envseal::s3ec::{cipher, ContentAlg};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

const KEY: [u8; 32] = [0x42; 32];
const PLAINTEXT: &[u8] = b"DB_PASSWORD=hunter2\nAPI_TOKEN=\"a b\\nc\"\n";
const FIELDS: [&str; 12] = [
    "x-amz-key-v2",
    "x-amz-iv",
    "x-amz-cek-alg",
    "x-amz-wrap-alg",
    "x-amz-matdesc",
    "x-amz-tag-len",
    "x-amz-unencrypted-content-length",
    "x-amz-key",
    "x-amz-3",
    "x-amz-c",
    "x-amz-d",
    "x-amz-i",
];

struct Base {
    metadata: Vec<(String, String)>,
    body: Vec<u8>,
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A moto-shaped wrapped key: a key id, then binary.
fn wrapped_key() -> Vec<u8> {
    let mut blob = b"da7276fb-f23e-4b50-a494-d0411daccaff".to_vec();
    blob.extend((0u8..60).map(|i| i.wrapping_mul(37) ^ 0xA5));
    blob
}

fn gcm_base() -> &'static Base {
    static BASE: OnceLock<Base> = OnceLock::new();
    BASE.get_or_init(|| {
        let (body, metadata) =
            cipher::encrypt_v2(&KEY, &wrapped_key(), "alias/app", PLAINTEXT, [7; 12]);
        Base { metadata, body }
    })
}

fn cbc_base() -> &'static Base {
    static BASE: OnceLock<Base> = OnceLock::new();
    BASE.get_or_init(|| {
        let iv = [9u8; 16];
        let body = cbc::Encryptor::<aes::Aes256>::new(&KEY.into(), &iv.into())
            .encrypt_padded_vec_mut::<Pkcs7>(PLAINTEXT);
        let metadata = vec![
            ("x-amz-key-v2".to_owned(), b64(&wrapped_key())),
            ("x-amz-iv".to_owned(), b64(&iv)),
            (
                "x-amz-cek-alg".to_owned(),
                "AES/CBC/PKCS5Padding".to_owned(),
            ),
            ("x-amz-wrap-alg".to_owned(), "kms".to_owned()),
            (
                "x-amz-matdesc".to_owned(),
                "{\"kms_cmk_id\":\"alias/app\"}".to_owned(),
            ),
            (
                "x-amz-unencrypted-content-length".to_owned(),
                PLAINTEXT.len().to_string(),
            ),
        ];
        Base { metadata, body }
    })
}

#[derive(Arbitrary, Debug)]
enum Edit {
    /// Replace the value of a known field (added when absent).
    Set(u8, String),
    Remove(u8),
    /// Any name, any value (prefix and case variants, duplicates…).
    Add(String, String),
    /// Flip bits of one character of a field's value.
    Flip(u8, u16, u8),
}

#[derive(Arbitrary, Debug)]
enum BodyEdit {
    Keep,
    Flip(u16, u8),
    Truncate(u16),
    Append(Vec<u8>),
    Replace(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
struct Input {
    cbc: bool,
    edits: Vec<Edit>,
    body: BodyEdit,
    instruction: Vec<u8>,
    blob: Vec<u8>,
}

fn apply(metadata: &mut Vec<(String, String)>, edit: &Edit) {
    let field = |i: &u8| FIELDS[usize::from(*i) % FIELDS.len()];
    match edit {
        Edit::Set(i, value) => {
            let name = field(i);
            match metadata.iter_mut().find(|(k, _)| k == name) {
                Some((_, v)) => *v = value.clone(),
                None => metadata.push((name.to_owned(), value.clone())),
            }
        }
        Edit::Remove(i) => {
            let name = field(i);
            metadata.retain(|(k, _)| k != name);
        }
        Edit::Add(k, v) => metadata.push((k.clone(), v.clone())),
        Edit::Flip(i, at, mask) => {
            let name = field(i);
            if let Some((_, v)) = metadata.iter_mut().find(|(k, _)| k == name) {
                let mut bytes = v.clone().into_bytes();
                if !bytes.is_empty() {
                    let at = usize::from(*at) % bytes.len();
                    bytes[at] ^= mask;
                }
                *v = String::from_utf8_lossy(&bytes).into_owned();
            }
        }
    }
}

fuzz_target!(|input: Input| {
    let base = if input.cbc { cbc_base() } else { gcm_base() };
    let mut metadata = base.metadata.clone();
    for edit in input.edits.iter().take(8) {
        apply(&mut metadata, edit);
    }
    let mut body = base.body.clone();
    match &input.body {
        BodyEdit::Keep => {}
        BodyEdit::Flip(at, mask) => {
            let at = usize::from(*at) % body.len();
            body[at] ^= mask;
        }
        BodyEdit::Truncate(n) => body.truncate(usize::from(*n) % (body.len() + 1)),
        BodyEdit::Append(extra) => body.extend_from_slice(extra),
        BodyEdit::Replace(other) => body = other.clone(),
    }

    if let Some(Ok(env)) = detect(&metadata) {
        let _ = env.kms_encryption_context();
        let _ = env.kms_key_id();
        let _ = envelope::instruction_file_hint(&metadata);
        if let Ok(plaintext) = env.decrypt(&KEY, &body) {
            if env.content_alg() == ContentAlg::AesGcm {
                // Authenticated: only the original ciphertext opens, and
                // only to the original plaintext.
                assert_eq!(&plaintext[..], PLAINTEXT, "GCM accepted a forgery");
                assert_eq!(body, base.body, "GCM accepted a modified body");
            }
        }
        // A data key of the wrong length is an error, never a panic.
        let _ = env.decrypt(&KEY[..31], &body);
    }

    // An instruction file on its own, and merged over the metadata.
    if let Ok(env) = parse_instruction(&input.instruction) {
        let _ = env.decrypt(&KEY, &body);
    }
    if let Ok(env) = envelope::parse_instruction_with_metadata(&input.instruction, &metadata) {
        let _ = env.decrypt(&KEY, &body);
    }

    // Bare KMS ciphertext detection (raw or base64) and AWS Encryption SDK
    // recognition, on arbitrary bytes.
    if let Some(blob) = kms_ciphertext_candidate(&input.blob) {
        assert!(!blob.is_empty());
        assert!(blob.len() <= 6144, "candidate longer than a KMS blob");
    }
    let _ = sniff::looks_like_encryption_sdk_message(&input.blob);
    let _ = kms_ciphertext_candidate(&body);
});
