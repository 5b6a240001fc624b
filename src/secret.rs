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
        fingerprint(self.0.as_bytes())
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

/// First 8 hex digits of the SHA-256 of `bytes`.
fn fingerprint(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(bytes);
    digest[..4].iter().map(|b| format!("{b:02x}")).collect()
}

/// A resolved value that need not be text: the contents of a `?file`
/// variable (a binary secret or S3 object may be any bytes, NUL included).
/// The same guarantees as [`Secret`]: `[REDACTED]` when printed, zeroized on
/// drop.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretBytes(Zeroizing<Vec<u8>>);

impl SecretBytes {
    pub fn new(bytes: Zeroizing<Vec<u8>>) -> Self {
        SecretBytes(bytes)
    }

    /// The bytes themselves. Callers must not log or format what this returns.
    pub fn expose(&self) -> &[u8] {
        self.0.as_slice()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// As [`Secret::fingerprint`]: the same text gives the same fingerprint.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.0)
    }
}

impl From<Secret> for SecretBytes {
    /// Takes the text's buffer as it is (no copy left behind).
    fn from(mut secret: Secret) -> Self {
        let text = std::mem::take(&mut *secret.0);
        SecretBytes(Zeroizing::new(text.into_bytes()))
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl fmt::Display for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
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
    fn bytes_redact_and_fingerprint_as_text() {
        let b = SecretBytes::from(Secret::from("abc"));
        assert_eq!(format!("{b:?} {b}"), "[REDACTED] [REDACTED]");
        assert_eq!(b.expose(), b"abc");
        assert_eq!(b.fingerprint(), "ba7816bf");
        let bin = SecretBytes::new(Zeroizing::new(vec![0, 0xff, 0]));
        assert_eq!(bin.len(), 3);
        assert!(!bin.is_empty());
    }

    #[test]
    fn invalid_utf8_is_refused() {
        assert!(Secret::from_utf8(vec![0xff, 0xfe]).is_err());
        assert_eq!(Secret::from_utf8(b"ok".to_vec()).unwrap().expose(), "ok");
    }
}
