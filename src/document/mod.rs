//! Decoded documents: the plaintext of an S3 object (or a JSON secret) turned
//! into ordered `(key, value)` pairs. Decryption is `s3ec/`'s.
//!
//! Everything here is pure: no I/O, no AWS. Keys are returned exactly as
//! written (renaming to environment variable names happens elsewhere). Errors
//! carry line numbers, key names and reasons, never a value or a line's text.

pub mod dotenv;
pub mod json;

use std::fmt;

use crate::secret::Secret;

/// UTF-8 byte order mark, accepted (and skipped) at the start of a document.
pub(crate) const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Why a document could not be decoded. No variant holds a value or the text
/// of a line: only line numbers, key names and fixed reasons.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DocumentError {
    /// Dotenv: the bytes of this line are not UTF-8.
    InvalidUtf8 { line: usize },
    /// Dotenv: a line that is not `KEY=VALUE`, a comment or blank.
    MalformedLine { line: usize, reason: &'static str },
    /// Dotenv: a quoted value whose closing quote never comes. `line` is where
    /// the quote opened.
    UnterminatedQuote { line: usize },
    /// Dotenv: something other than a comment after a closing quote.
    TrailingCharacters { line: usize },
    /// Dotenv: a NUL byte in a value (it cannot go into an environment).
    NulInValue { line: usize },
    /// Dotenv: the same key twice.
    DuplicateKey {
        key: String,
        first_line: usize,
        second_line: usize,
    },
    /// JSON: the document is not UTF-8.
    JsonInvalidUtf8 { line: usize },
    /// JSON: a syntax error at this position.
    JsonSyntax {
        line: usize,
        column: usize,
        reason: &'static str,
    },
    /// JSON: the top-level value is not an object.
    JsonNotObject { found: &'static str },
    /// JSON: the same key twice in the top-level object.
    JsonDuplicateKey { key: String },
    /// JSON: a value that is null, an array or an object.
    JsonUnsupportedValue { key: String, found: &'static str },
    /// JSON: a string value containing NUL.
    JsonNulInValue { key: String },
    /// `s3://B/K#NAME`: the document has no such key.
    MissingKey { key: String },
}

/// How a key name is shown in a message: quoted with control characters
/// escaped, and cut short if very long.
pub(crate) struct KeyName<'a>(pub &'a str);

impl fmt::Display for KeyName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MAX: usize = 128;
        if self.0.chars().count() > MAX {
            let cut: String = self.0.chars().take(MAX).collect();
            write!(f, "\"{}\"…", cut.escape_debug())
        } else {
            write!(f, "\"{}\"", self.0.escape_debug())
        }
    }
}

impl fmt::Display for DocumentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use DocumentError::*;
        match self {
            InvalidUtf8 { line } => write!(f, "line {line}: not valid UTF-8"),
            MalformedLine { line, reason } => write!(f, "line {line}: {reason}"),
            UnterminatedQuote { line } => {
                write!(f, "line {line}: quoted value has no closing quote")
            }
            TrailingCharacters { line } => write!(
                f,
                "line {line}: unexpected characters after the closing quote"
            ),
            NulInValue { line } => write!(f, "line {line}: value contains a NUL character"),
            DuplicateKey {
                key,
                first_line,
                second_line,
            } => write!(
                f,
                "key {} is defined twice (lines {first_line} and {second_line})",
                KeyName(key)
            ),
            JsonInvalidUtf8 { line } => write!(f, "JSON document is not valid UTF-8 (line {line})"),
            JsonSyntax {
                line,
                column,
                reason,
            } => write!(f, "invalid JSON at line {line}, column {column}: {reason}"),
            JsonNotObject { found } => {
                write!(f, "JSON document is {found}, expected an object of keys")
            }
            JsonDuplicateKey { key } => {
                write!(f, "JSON key {} appears more than once", KeyName(key))
            }
            JsonUnsupportedValue { key, found } => write!(
                f,
                "JSON key {} holds {found}; only strings, numbers and booleans can be used",
                KeyName(key)
            ),
            JsonNulInValue { key } => write!(
                f,
                "JSON key {} holds a string containing a NUL character",
                KeyName(key)
            ),
            MissingKey { key } => write!(f, "the document has no key {}", KeyName(key)),
        }
    }
}

impl std::error::Error for DocumentError {}

/// Strips a leading UTF-8 BOM.
pub(crate) fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(BOM).unwrap_or(bytes)
}

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

/// Line number (1-based) of a byte offset.
pub(crate) fn line_of(bytes: &[u8], offset: usize) -> usize {
    let end = offset.min(bytes.len());
    bytes[..end].iter().filter(|&&b| b == b'\n').count() + 1
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

    #[test]
    fn key_names_are_escaped_and_shortened() {
        let e = DocumentError::MissingKey {
            key: "a\nb\u{1b}".into(),
        };
        assert_eq!(e.to_string(), "the document has no key \"a\\nb\\u{1b}\"");
        let long = "k".repeat(500);
        let e = DocumentError::MissingKey { key: long };
        assert!(e.to_string().len() < 200);
    }

    #[test]
    fn line_numbers() {
        assert_eq!(line_of(b"a\nb\nc", 0), 1);
        assert_eq!(line_of(b"a\nb\nc", 2), 2);
        assert_eq!(line_of(b"a\nb\nc", 99), 3);
    }
}
