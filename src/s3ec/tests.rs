//! The S3EC unit tests: every published vector, tampering, malformed
//! envelopes, instruction files, the push-side writer, and the sniffers.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::Value;
use zeroize::Zeroizing;

use super::cipher::*;
use super::envelope::*;
use super::format::*;
use super::sniff::*;

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
    let (meta, instr): (Vec<_>, Vec<_>) = c
        .metadata
        .iter()
        .cloned()
        .partition(|(k, _)| [V3_CONTENT, V3_COMMITMENT, V3_MESSAGE_ID].contains(&k.as_str()));
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
