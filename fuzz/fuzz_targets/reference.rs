//! The reference grammar: the oracle is `envseal::fuzzing::reference`
//! (src/fuzzing.rs, compiled and run on the seeds by `cargo test`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| envseal::fuzzing::reference(data));
