//! Decoded documents: the plaintext of an S3 object (or a JSON secret) turned
//! into ordered `(key, value)` pairs. Decryption is `s3ec/`'s.
//!
//! Everything here is pure: no I/O, no AWS. Keys are returned exactly as
//! written (renaming to environment variable names happens elsewhere). Errors
//! carry line numbers, key names and reasons, never a value or a line's text.

pub mod dotenv;
pub mod error;
pub mod json;
pub mod text;

use crate::secret::Secret;

pub use error::DocumentError;
pub(crate) use error::KeyName;
pub(crate) use text::strip_bom;

/// True when the document is JSON: its first non-whitespace character (after
/// an optional BOM) is `{`.
pub fn is_json(bytes: &[u8]) -> bool {
    strip_bom(bytes)
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|&b| b == b'{')
}

/// Parses a JSON-object or dotenv document into its keys (as written) and
/// values, in document order.
pub fn parse_document(bytes: &[u8]) -> Result<Vec<(String, Secret)>, DocumentError> {
    if is_json(bytes) {
        json::parse(bytes)
    } else {
        dotenv::parse(bytes)
    }
}

/// The value of one key of a document (`s3://B/K#NAME`). The key is matched
/// exactly. The whole document must parse.
pub fn lookup(bytes: &[u8], key: &str) -> Result<Secret, DocumentError> {
    parse_document(bytes)?
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
        .ok_or_else(|| DocumentError::MissingKey {
            key: key.to_owned(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_or_dotenv_by_first_character() {
        assert!(is_json(b"{}"));
        assert!(is_json(b"  \n\t{\"a\":1}"));
        assert!(is_json(b"\xEF\xBB\xBF {\"a\":1}"));
        assert!(!is_json(b"A=1"));
        assert!(!is_json(b""));
        assert!(!is_json(b"# {\n"));
        assert!(!is_json(b"[1]"));
    }

    #[test]
    fn parse_document_dispatches() {
        let j = parse_document(b"\xEF\xBB\xBF\r\n{\"b\":\"x\",\"a\":2}").unwrap();
        assert_eq!(j.len(), 2);
        assert_eq!(j[0].0, "b");
        assert_eq!(j[0].1.expose(), "x");
        assert_eq!(j[1].0, "a");
        assert_eq!(j[1].1.expose(), "2");

        let d = parse_document(b"export job.title=Boss\nA=1\n").unwrap();
        assert_eq!(d[0].0, "job.title");
        assert_eq!(d[0].1.expose(), "Boss");
        assert_eq!(d[1].0, "A");

        assert!(parse_document(b"").unwrap().is_empty());
    }

    #[test]
    fn lookup_exact_key() {
        let doc = b"{\"db_password\":\"hunter2\",\"DB_PASSWORD\":\"other\"}";
        assert_eq!(lookup(doc, "db_password").unwrap().expose(), "hunter2");
        assert_eq!(lookup(doc, "DB_PASSWORD").unwrap().expose(), "other");
        let err = lookup(doc, "Db_Password").unwrap_err();
        assert_eq!(
            err,
            DocumentError::MissingKey {
                key: "Db_Password".into()
            }
        );
        assert!(!err.to_string().contains("hunter2"));

        let env = b"A=1\nB='two'\n";
        assert_eq!(lookup(env, "B").unwrap().expose(), "two");
        assert!(matches!(
            lookup(env, "C"),
            Err(DocumentError::MissingKey { .. })
        ));
        // A malformed document is an error even if the key is present.
        assert!(matches!(
            lookup(b"A=1\nbroken line\n", "A"),
            Err(DocumentError::MalformedLine { line: 2, .. })
        ));
    }
}
