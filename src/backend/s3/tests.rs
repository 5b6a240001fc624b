//! What an S3 object's metadata and body decide (envelope, KMS blob,
//! plaintext), body limits, and envelope errors as failures.

use super::*;
use base64::Engine;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn md(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// A moto-shaped KMS blob: the key id as ASCII, then binary.
fn moto_blob() -> Vec<u8> {
    let mut blob = b"da7276fb-f23e-4b50-a494-d0411daccaff".to_vec();
    blob.extend((0u8..60).map(|i| i.wrapping_mul(37) ^ 0xA5));
    blob
}

fn pushed_envelope() -> Vec<(String, String)> {
    let (_, metadata) = cipher::encrypt_v2(&[7; 32], &moto_blob(), "alias/app", b"A=1\n", [1; 12]);
    metadata
}

#[test]
fn plaintext_documents_stay_plain() {
    for body in [
        &b"A=1\nB=2\n"[..],
        b"{\"a\": \"b\"}",
        b"",
        b"aGVsbG8=", // base64, but not of a KMS blob
    ] {
        assert_eq!(
            decide(Encryption::Auto, &[], body).unwrap(),
            Decoding::Plain
        );
    }
    // Unrelated metadata changes nothing.
    let meta = md(&[("owner", "ops")]);
    assert_eq!(
        decide(Encryption::Auto, &meta, b"A=1").unwrap(),
        Decoding::Plain
    );
}

#[test]
fn kms_blobs_raw_or_base64_are_detected() {
    let blob = moto_blob();
    assert_eq!(
        decide(Encryption::Auto, &[], &blob).unwrap(),
        Decoding::Kms(blob.clone())
    );
    let mut wrapped = B64.encode(&blob).into_bytes();
    wrapped.insert(20, b'\n');
    wrapped.push(b'\n');
    assert_eq!(
        decide(Encryption::Auto, &[], &wrapped).unwrap(),
        Decoding::Kms(blob)
    );
}

#[test]
fn forcing_overrides_detection() {
    let blob = moto_blob();
    assert_eq!(
        decide(Encryption::None, &pushed_envelope(), &blob).unwrap(),
        Decoding::Plain
    );
    // Not recognisable as a KMS blob, but forced: base64 decoded...
    assert_eq!(
        decide(Encryption::Kms, &[], b"AAEC\nAw==\n").unwrap(),
        Decoding::Kms(vec![0, 1, 2, 3])
    );
    // ...or taken raw when it is not base64.
    assert_eq!(
        decide(Encryption::Kms, &[], b"\x00\x01binary").unwrap(),
        Decoding::Kms(b"\x00\x01binary".to_vec())
    );
    // An envelope is required, and none in the metadata means KEY.instruction.
    assert_eq!(
        decide(Encryption::Envelope, &[], b"whatever").unwrap(),
        Decoding::InstructionFile
    );
    assert!(matches!(
        decide(Encryption::Envelope, &pushed_envelope(), b"x").unwrap(),
        Decoding::Envelope(_)
    ));
}

#[test]
fn envelopes_in_metadata_any_case() {
    let upper: Vec<(String, String)> = pushed_envelope()
        .into_iter()
        .map(|(k, v)| (format!("X-Amz-Meta-{}", k.to_ascii_uppercase()), v))
        .collect();
    for meta in [pushed_envelope(), upper] {
        let Decoding::Envelope(env) = decide(Encryption::Auto, &meta, b"body").unwrap() else {
            panic!("no envelope found");
        };
        assert_eq!(env.wrapped_key(), &moto_blob()[..]);
        assert_eq!(
            env.kms_encryption_context(),
            BTreeMap::from([(
                "aws:x-amz-cek-alg".to_owned(),
                "AES/GCM/NoPadding".to_owned()
            )])
        );
    }
}

#[test]
fn instruction_file_only_when_hinted() {
    // V3 leaves x-amz-c/d/i in the metadata; Ruby leaves the length.
    let v3 = md(&[("x-amz-c", "115"), ("x-amz-d", "AA"), ("x-amz-i", "AA")]);
    assert_eq!(
        decide(Encryption::Auto, &v3, b"\x01\x02").unwrap(),
        Decoding::InstructionFile
    );
    let ruby = md(&[("x-amz-unencrypted-content-length", "12")]);
    assert_eq!(
        decide(Encryption::Auto, &ruby, b"\x01\x02").unwrap(),
        Decoding::InstructionFile
    );
}

/// PRODUCT §5: Go's and Java's instruction-file objects carry no hint in
/// their metadata; their binary body must not be taken for plaintext
/// before `KEY.instruction` has been looked for. Text bodies cost nothing.
#[test]
fn binary_bodies_without_a_hint_look_for_an_instruction_file() {
    let (ciphertext, _) = cipher::encrypt_v2(&[7; 32], &moto_blob(), "k", b"A=1\n", [1; 12]);
    assert!(std::str::from_utf8(&ciphertext).is_err());
    for meta in [md(&[]), md(&[("owner", "ops")])] {
        assert_eq!(
            decide(Encryption::Auto, &meta, &ciphertext).unwrap(),
            Decoding::PlainUnlessInstructionFile
        );
        assert_eq!(
            decide(Encryption::Auto, &meta, b"\xff\xfe not text").unwrap(),
            Decoding::PlainUnlessInstructionFile
        );
        // UTF-8 (BOM included) stays plain: no second request.
        for text in [
            &b"A=1\n"[..],
            "{\"k\": \"v\u{e9}\"}".as_bytes(),
            b"\xEF\xBB\xBFA=1",
        ] {
            assert_eq!(
                decide(Encryption::Auto, &meta, text).unwrap(),
                Decoding::Plain
            );
        }
    }
    // Forced plaintext is plaintext; KMS blobs are still KMS blobs.
    assert_eq!(
        decide(Encryption::None, &[], &ciphertext).unwrap(),
        Decoding::Plain
    );
    assert!(matches!(
        decide(Encryption::Auto, &[], &moto_blob()).unwrap(),
        Decoding::Kms(_)
    ));
}

#[test]
fn body_buffer_stops_at_the_cap_chunk_by_chunk() {
    let cap = usize::try_from(MAX_OBJECT_BYTES).unwrap();
    let chunk = vec![b'x'; 64 * 1024];
    // An endless body (no Content-Length): refused as soon as it passes
    // the cap, holding no more than the cap.
    let mut body = BodyBuffer::new(None);
    let mut pushed = 0usize;
    let err = loop {
        match body.push(&chunk) {
            Ok(()) => pushed += chunk.len(),
            Err(e) => break e,
        }
        assert!(pushed <= cap, "buffered past the cap");
    };
    assert_eq!(pushed, cap);
    assert_eq!(err.kind, FailureKind::InvalidValue);
    assert!(err.reason.contains("8 MiB"), "{}", err.reason);
    assert!(body.0.capacity() <= cap);
    assert_eq!(body.into_inner().len(), cap);

    // A Content-Length that understates the body changes nothing.
    let mut body = BodyBuffer::new(Some(10));
    assert!(body.push(&vec![0; cap]).is_ok());
    assert!(body.push(b"!").is_err());
    // Exactly at the cap, in odd pieces, in order.
    let mut body = BodyBuffer::new(Some(3));
    for piece in [&b"ab"[..], b"", b"cde", b"f"] {
        body.push(piece).unwrap();
    }
    assert_eq!(&body.into_inner()[..], b"abcdef");
}

#[test]
fn bad_envelopes_and_esdk_messages_are_errors_without_content() {
    let mut meta = pushed_envelope();
    for (k, v) in meta.iter_mut() {
        if k == "x-amz-cek-alg" {
            *v = "AES/CBC/PKCS5Padding".into();
        }
    }
    let e = decide(Encryption::Auto, &meta, b"x").unwrap_err();
    assert_eq!(e.kind, FailureKind::Decrypt, "{e:?}");

    let v1 = md(&[
        ("x-amz-key", "AAAA"),
        ("x-amz-iv", "AAAA"),
        ("x-amz-matdesc", "{}"),
    ]);
    let e = decide(Encryption::Auto, &v1, b"x").unwrap_err();
    assert_eq!(e.kind, FailureKind::Unsupported);

    let mut esdk = vec![0x02, 0x05, 0x78];
    esdk.extend([0x5A; 80]);
    let e = decide(Encryption::Auto, &[], &esdk).unwrap_err();
    assert_eq!(e.kind, FailureKind::Unsupported);
    assert!(e.reason.contains("Encryption SDK"));
    let e = decide(Encryption::Auto, &[], B64.encode(&esdk).as_bytes()).unwrap_err();
    assert_eq!(e.kind, FailureKind::Unsupported);
}

#[test]
fn envelope_errors_map_to_kinds() {
    assert_eq!(
        envelope_error(EnvelopeError::AuthenticationFailed).kind,
        FailureKind::Decrypt
    );
    assert_eq!(
        envelope_error(EnvelopeError::BadPadding).kind,
        FailureKind::Decrypt
    );
    assert_eq!(
        envelope_error(EnvelopeError::LegacyV1Envelope).kind,
        FailureKind::Unsupported
    );
    assert_eq!(
        envelope_error(EnvelopeError::NoEnvelope).kind,
        FailureKind::InvalidValue
    );
}

#[test]
fn tampered_body_is_refused_by_the_envelope() {
    let key = [9u8; 32];
    let (mut body, meta) =
        cipher::encrypt_v2(&key, &moto_blob(), "k", b"SECRET=hunter2\n", [3; 12]);
    let Decoding::Envelope(env) = decide(Encryption::Auto, &meta, &body).unwrap() else {
        panic!()
    };
    assert_eq!(&env.decrypt(&key, &body).unwrap()[..], b"SECRET=hunter2\n");
    body[2] ^= 1;
    let e = envelope_error(env.decrypt(&key, &body).unwrap_err());
    assert_eq!(e.kind, FailureKind::Decrypt);
    assert!(!e.reason.contains("hunter2"));
}

#[test]
fn size_limit() {
    assert!(check_size(MAX_OBJECT_BYTES).is_ok());
    let e = check_size(MAX_OBJECT_BYTES + 1).unwrap_err();
    assert_eq!(e.kind, FailureKind::InvalidValue);
}

fn redirect(status: u16, header: Option<&str>) -> GetError {
    use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;
    let err = aws_sdk_s3::operation::get_object::GetObjectError::generic(
        ErrorMetadata::builder().code("PermanentRedirect").build(),
    );
    let mut raw = HttpResponse::new(StatusCode::try_from(status).unwrap(), SdkBody::empty());
    if let Some(region) = header {
        raw.headers_mut()
            .insert("x-amz-bucket-region", region.to_owned());
    }
    GetError::Sdk(Box::new(aws_sdk_s3::error::SdkError::service_error(
        err, raw,
    )))
}

#[test]
fn redirects_name_the_buckets_region() {
    for status in [301, 307, 400] {
        assert_eq!(
            redirect(status, Some("eu-west-1"))
                .redirect_region()
                .as_deref(),
            Some("eu-west-1"),
            "{status}"
        );
    }
    // No header, another status, or a header that is not a region: no redirect.
    assert_eq!(redirect(301, None).redirect_region(), None);
    assert_eq!(redirect(403, Some("eu-west-1")).redirect_region(), None);
    assert_eq!(redirect(301, Some("../evil")).redirect_region(), None);
    assert_eq!(GetError::Body.redirect_region(), None);
}
