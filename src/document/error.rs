//! Why a document could not be decoded, in words that never quote a value:
//! [`DocumentError`] and how a key name is shown in it (`KeyName`).

use std::fmt;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
