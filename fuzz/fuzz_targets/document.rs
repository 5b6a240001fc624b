//! The document decoder (dotenv and JSON): `parse_document` and `lookup` must
//! never panic, every key they return must be found again by `lookup`, no
//! value may hold a NUL (it could not go into an environment), and errors
//! stay short (they name lines and keys, never quote a line).
#![no_main]

use envseal::document::{lookup, parse_document};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
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
    let _ = envseal::environment::json_entries(&String::from_utf8_lossy(data));
});
