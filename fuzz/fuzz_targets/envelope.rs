//! The S3 Encryption Client envelope path: inputs are edits of two valid
//! envelopes (`envseal::fuzzing::envelope_base`: V2 AES-GCM `kms+context`,
//! as `envseal push` writes it, and V2 AES-CBC `kms`), so that the fuzzer
//! spends its time past the parser. The oracle is
//! `envseal::fuzzing::envelope` (src/fuzzing.rs, compiled and run on edited
//! envelopes by `cargo test`): nothing panics, and an authenticated (GCM)
//! envelope never decrypts to anything but the original plaintext.
#![no_main]

use envseal::fuzzing::{envelope, envelope_base, FIELDS};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

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
    let base = envelope_base(input.cbc);
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
    envelope(base, &metadata, &body, &input.instruction, &input.blob);
});
