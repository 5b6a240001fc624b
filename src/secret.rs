//! The secret value type: `Debug` and `Display` print a redaction marker, the
//! bytes are zeroized on drop. Every resolved value travels as a [`Secret`].

use std::fmt;
use zeroize::{Zeroize, Zeroizing};

/// A resolved secret value. It never prints itself: `{:?}` and `{}` both give
/// `[REDACTED]`. Use [`Secret::expose`] at the single place a value must leave
/// (the child's environment, `export`, the fingerprint in `check`).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    pub fn new(value: String) -> Self {
        Secret(Zeroizing::new(value))
    }

    /// The value itself. Callers must not log or format what this returns.
    pub fn expose(&self) -> &str {
        self.0.as_str()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// First 8 hex digits of the SHA-256 of the value: enough to compare two
    /// deployments, far too little to recover anything.
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(self.0.as_bytes());
        digest[..4].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Builds a secret from bytes that must be UTF-8. On failure the bytes are
    /// zeroized and only the reason is returned.
    pub fn from_utf8(bytes: Vec<u8>) -> Result<Self, &'static str> {
        match String::from_utf8(bytes) {
            Ok(s) => Ok(Secret::new(s)),
            Err(e) => {
                let mut bytes = e.into_bytes();
                bytes.zeroize();
                Err("value is not valid UTF-8")
            }
        }
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret::new(s.to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_redact() {
        let s = Secret::from("hunter2");
        assert_eq!(format!("{s:?}"), "[REDACTED]");
        assert_eq!(format!("{s}"), "[REDACTED]");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn fingerprint_is_sha256_prefix() {
        // sha256("abc") = ba7816bf...
        assert_eq!(Secret::from("abc").fingerprint(), "ba7816bf");
    }

    #[test]
    fn invalid_utf8_is_refused() {
        assert!(Secret::from_utf8(vec![0xff, 0xfe]).is_err());
        assert_eq!(Secret::from_utf8(b"ok".to_vec()).unwrap().expose(), "ok");
    }
}
