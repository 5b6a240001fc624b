//! The oracles of the fuzz targets (`fuzz/fuzz_targets/`), here so that
//! `cargo test` compiles them with every change of the types they use (the
//! fuzz crate itself is built only with nightly, by `fuzz/run.sh`) and runs
//! them on the committed seeds. Each function panics when its oracle fails;
//! the fuzz targets are thin wrappers around them. Not part of the API.

use std::sync::OnceLock;

use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockEncryptMut, KeyIvInit};

use crate::reference::{looks_like_reference, parse_reference, parse_source, Target};
use crate::s3ec::envelope::{self, detect, parse_instruction};
use crate::s3ec::sniff::{self, kms_ciphertext_candidate};
use crate::s3ec::{cipher, ContentAlg};

/// The reference grammar (PRODUCT.md §3/§4): `parse_reference` and
/// `parse_source` never panic, and what they accept is consistent with
/// `looks_like_reference` and prints without panicking.
pub fn reference(data: &[u8]) {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let looks = looks_like_reference(input);
    match parse_reference(input) {
        Ok(reference) => {
            // Only a value that looks like a reference is ever parsed as one.
            assert!(looks, "parsed but not detected as a reference: {input:?}");
            let shown = reference.target.to_string();
            assert!(!shown.is_empty());
            if let Target::Kms(blob) = &reference.target {
                assert!(!blob.ciphertext.is_empty(), "empty kms: blob accepted");
            }
            if let Target::Ssm(param) = &reference.target {
                assert!(!param.name.is_empty());
                let _ = param.api_name();
            }
        }
        Err(e) => {
            // Reasons are short: they may quote a field of the reference
            // once, never repeat or run away with the input.
            assert!(!e.reason.is_empty());
            assert!(
                e.reason.len() <= input.len() + 200,
                "reason of {} bytes for {} bytes of input",
                e.reason.len(),
                input.len()
            );
        }
    }
    // Templates: every segment found starts like a reference and parses or
    // fails like one; a value with a segment is detected as having one.
    if let Ok(Some(parts)) = crate::reference::template::parse_template(input) {
        assert!(crate::reference::template::has_reference_segment(input));
        for part in parts {
            if let crate::reference::template::Part::Ref(segment) = part {
                assert!(looks_like_reference(segment), "{segment:?}");
                let _ = parse_reference(segment);
            }
        }
    }
    // --ignore patterns: a valid pattern matches itself (`*` and `?` too).
    if let Ok(glob) = crate::glob::Glob::parse(input) {
        assert!(glob.matches(input), "{input:?}");
    }
    // The --from / ENVSEAL_FROM grammar, and the way ENVSEAL_FROM is split.
    let _ = parse_source(input);
    for part in crate::config::split_sources(input) {
        let _ = parse_source(&part);
    }
    // Durations are user input too.
    let _ = crate::config::parse_duration(input);
}

/// The document decoder (dotenv and JSON): `parse_document` and `lookup`
/// never panic, every key they return is found again by `lookup`, no value
/// holds a NUL (it could not go into an environment), and errors stay short
/// (they name lines and keys, never quote a line).
pub fn document(data: &[u8]) {
    use crate::document::{lookup, parse_document};
    match parse_document(data) {
        Ok(entries) => {
            for (key, value) in entries.iter().take(4) {
                assert!(!value.expose().contains('\0'), "NUL in a value");
                let found = lookup(data, key).expect("a parsed key is found by lookup");
                assert_eq!(found.expose(), value.expose());
            }
            let _ = lookup(data, "");
        }
        Err(e) => {
            let message = e.to_string();
            // Key names are cut at 128 characters (each escaped to at most
            // 10 bytes); nothing else in a message grows with the input.
            assert!(
                message.len() < 2048,
                "error message of {} bytes",
                message.len()
            );
            // The decoder refuses the whole document, so lookup must too.
            assert!(lookup(data, "A").is_err());
        }
    }
    let _ = crate::environment::json_entries(&String::from_utf8_lossy(data));
}

/// The data key of the envelopes [`envelope_base`] makes.
pub const KEY: [u8; 32] = [0x42; 32];
/// What they hold.
pub const PLAINTEXT: &[u8] = b"DB_PASSWORD=hunter2\nAPI_TOKEN=\"a b\\nc\"\n";
/// The metadata fields the envelope target edits.
pub const FIELDS: [&str; 12] = [
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

/// A valid envelope: its metadata and body.
pub struct Base {
    pub metadata: Vec<(String, String)>,
    pub body: Vec<u8>,
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

/// One of two valid envelopes of [`PLAINTEXT`] under [`KEY`]: V2 AES-GCM
/// `kms+context` as `envseal push` writes it, or (`cbc`) V2 AES-CBC `kms`.
pub fn envelope_base(cbc: bool) -> &'static Base {
    static GCM: OnceLock<Base> = OnceLock::new();
    static CBC: OnceLock<Base> = OnceLock::new();
    if !cbc {
        return GCM.get_or_init(|| {
            let (body, metadata) =
                cipher::encrypt_v2(&KEY, &wrapped_key(), "alias/app", PLAINTEXT, [7; 12]);
            Base { metadata, body }
        });
    }
    CBC.get_or_init(|| {
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

/// The S3 Encryption Client envelope path on an edited envelope
/// (`metadata`, `body`, edits of `base`), an instruction file and a blob:
/// metadata detection, instruction files, body decryption with [`KEY`] and
/// bare KMS ciphertext detection never panic, and an authenticated (GCM)
/// envelope never decrypts to anything but the original plaintext.
pub fn envelope(
    base: &Base,
    metadata: &[(String, String)],
    body: &[u8],
    instruction: &[u8],
    blob: &[u8],
) {
    if let Some(Ok(env)) = detect(metadata) {
        let _ = env.kms_encryption_context();
        let _ = env.kms_key_id();
        let _ = envelope::instruction_file_hint(metadata);
        if let Ok(plaintext) = env.decrypt(&KEY, body) {
            if env.content_alg() == ContentAlg::AesGcm {
                // Authenticated: only the original ciphertext opens, and
                // only to the original plaintext.
                assert_eq!(&plaintext[..], PLAINTEXT, "GCM accepted a forgery");
                assert_eq!(body, &base.body[..], "GCM accepted a modified body");
            }
        }
        // A data key of the wrong length is an error, never a panic.
        let _ = env.decrypt(&KEY[..31], body);
    }
    // An instruction file on its own, and merged over the metadata.
    if let Ok(env) = parse_instruction(instruction) {
        let _ = env.decrypt(&KEY, body);
    }
    if let Ok(env) = envelope::parse_instruction_with_metadata(instruction, metadata) {
        let _ = env.decrypt(&KEY, body);
    }
    // Bare KMS ciphertext detection (raw or base64) and AWS Encryption SDK
    // recognition, on arbitrary bytes.
    if let Some(candidate) = kms_ciphertext_candidate(blob) {
        assert!(!candidate.is_empty());
        assert!(candidate.len() <= 6144, "candidate longer than a KMS blob");
    }
    let _ = sniff::looks_like_encryption_sdk_message(blob);
    let _ = kms_ciphertext_candidate(body);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (xorshift64*): the same inputs on
    /// every run.
    struct Bytes(u64);

    impl Bytes {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn take(&mut self, n: usize) -> Vec<u8> {
            (0..n).map(|_| self.next() as u8).collect()
        }
    }

    fn seeds(target: &str) -> Vec<Vec<u8>> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/seeds")
            .join(target);
        let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| std::fs::read(entry.unwrap().path()).unwrap())
            .collect();
        assert!(!seeds.is_empty(), "no seeds in {}", dir.display());
        seeds.sort();
        seeds
    }

    /// Each seed, each of its prefixes, and the seed with bytes changed.
    fn variants(seed: &[u8], bytes: &mut Bytes) -> Vec<Vec<u8>> {
        let mut out: Vec<Vec<u8>> = (0..=seed.len()).map(|n| seed[..n].to_vec()).collect();
        for _ in 0..16 {
            let mut v = seed.to_vec();
            if !v.is_empty() {
                let at = bytes.next() as usize % v.len();
                v[at] = bytes.next() as u8;
            }
            out.push(v);
        }
        out
    }

    #[test]
    fn the_reference_oracle_holds_on_the_seeds_and_their_variants() {
        let mut bytes = Bytes(0x9e37_79b9_7f4a_7c15);
        for seed in seeds("reference") {
            for input in variants(&seed, &mut bytes) {
                reference(&input);
            }
        }
    }

    #[test]
    fn the_document_oracle_holds_on_the_seeds_and_their_variants() {
        let mut bytes = Bytes(0xd1b5_4a32_d192_ed03);
        for seed in seeds("document") {
            for input in variants(&seed, &mut bytes) {
                document(&input);
            }
        }
    }

    #[test]
    fn the_envelope_oracle_holds_on_edited_envelopes() {
        let mut bytes = Bytes(0x94d0_49bb_1331_11eb);
        for cbc in [false, true] {
            let base = envelope_base(cbc);
            // The base itself opens to the plaintext.
            let env = detect(&base.metadata).unwrap().unwrap();
            assert_eq!(&env.decrypt(&KEY, &base.body).unwrap()[..], PLAINTEXT);
            envelope(base, &base.metadata, &base.body, b"", b"");
            for round in 0..200 {
                let mut metadata = base.metadata.clone();
                let field = FIELDS[round % FIELDS.len()];
                match round % 3 {
                    0 => metadata.retain(|(k, _)| k != field),
                    1 => {
                        if let Some((_, v)) = metadata.iter_mut().find(|(k, _)| k == field) {
                            *v = String::from_utf8_lossy(&bytes.take(8)).into_owned();
                        }
                    }
                    _ => {}
                }
                let mut body = base.body.clone();
                let at = bytes.next() as usize % body.len();
                match round % 4 {
                    0 => body[at] ^= 1 << (bytes.next() % 8),
                    1 => body.truncate(at),
                    2 => body.extend(bytes.take(at % 40)),
                    _ => {}
                }
                let instruction = match round % 5 {
                    0 => serde_json::to_vec(&serde_json::Map::from_iter(
                        metadata
                            .iter()
                            .map(|(k, v)| (k.clone(), serde_json::Value::from(v.clone()))),
                    ))
                    .unwrap(),
                    _ => bytes.take(round % 64),
                };
                let blob = bytes.take(round * 7 % 300);
                envelope(base, &metadata, &body, &instruction, &blob);
            }
        }
    }
}
