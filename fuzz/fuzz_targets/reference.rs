//! The reference grammar (PRODUCT.md §3/§4): `parse_reference` and
//! `parse_source` must never panic, and what they accept must be consistent
//! with `looks_like_reference` and print without panicking.
#![no_main]

use envseal::reference::{looks_like_reference, parse_reference, parse_source, Target};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
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
    if let Ok(Some(parts)) = envseal::reference::template::parse_template(input) {
        assert!(envseal::reference::template::has_reference_segment(input));
        for part in parts {
            if let envseal::reference::template::Part::Ref(segment) = part {
                assert!(looks_like_reference(segment), "{segment:?}");
                let _ = parse_reference(segment);
            }
        }
    }
    // --ignore patterns: a valid pattern matches itself (`*` and `?` too).
    if let Ok(glob) = envseal::glob::Glob::parse(input) {
        assert!(glob.matches(input), "{input:?}");
    }
    // The --from / ENVSEAL_FROM grammar, and the way ENVSEAL_FROM is split.
    let _ = parse_source(input);
    for part in envseal::config::split_sources(input) {
        let _ = parse_source(&part);
    }
    // Durations are user input too.
    let _ = envseal::config::parse_duration(input);
});
