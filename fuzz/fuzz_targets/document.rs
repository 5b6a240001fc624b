//! The document decoder (dotenv and JSON): the oracle is
//! `envseal::fuzzing::document` (src/fuzzing.rs, compiled and run on the
//! seeds by `cargo test`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| envseal::fuzzing::document(data));
