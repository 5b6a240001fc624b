//! JSON-object documents: each top-level key becomes one value.
//!
//! Strings are used as-is; numbers and booleans as their JSON text: a number
//! is its exact source text (`1e3` stays `1e3`, `1.50` stays `1.50`, and an
//! integer of any size keeps every digit); null, arrays and objects are an
//! error naming the key, and so is a key given twice (which `serde_json` alone
//! would silently collapse). Keys keep document order.
//!
//! The object's structure (`{`, `:`, `,`, `}`) and number literals (RFC 8259
//! grammar) are read here; every other key and value is read by `serde_json`
//! itself.

use std::collections::HashSet;

use serde_json::Value;

use super::error::DocumentError;
use super::text::{line_of, strip_bom};
use crate::secret::Secret;

/// Parses a JSON object into its keys and values, in document order.
pub fn parse(bytes: &[u8]) -> Result<Vec<(String, Secret)>, DocumentError> {
    let mut entries: Vec<(String, Secret)> = Vec::new();
    walk(bytes, |key, value| {
        let value = scalar_text(&key, value)?;
        entries.push((key, value));
        Ok(())
    })?;
    Ok(entries)
}

/// The value of one top-level key (`sm:ID#KEY`), `None` when the object
/// has no such key. The whole object must be valid JSON without duplicate
/// keys, but only the value asked for must be a string, number or boolean:
/// the other keys may hold anything (as ECS reads a secret's JSON key).
pub fn get(bytes: &[u8], wanted: &str) -> Result<Option<Secret>, DocumentError> {
    let mut found = None;
    walk(bytes, |key, value| {
        if key == wanted {
            found = Some(scalar_text(&key, value)?);
        }
        Ok(())
    })?;
    Ok(found)
}

/// Walks a JSON object, giving each top-level key and value to `visit` in
/// document order; refuses a key given twice.
fn walk(
    bytes: &[u8],
    mut visit: impl FnMut(String, Scalar) -> Result<(), DocumentError>,
) -> Result<(), DocumentError> {
    let bytes = strip_bom(bytes);
    if let Err(e) = std::str::from_utf8(bytes) {
        return Err(DocumentError::JsonInvalidUtf8 {
            line: line_of(bytes, e.valid_up_to()),
        });
    }

    let mut p = skip_ws(bytes, 0);
    if bytes.get(p) != Some(&b'{') {
        return Err(not_an_object(bytes, p));
    }
    p = skip_ws(bytes, p + 1);

    let mut seen: HashSet<String> = HashSet::new();
    if bytes.get(p) == Some(&b'}') {
        p += 1;
    } else {
        loop {
            if bytes.get(p) != Some(&b'"') {
                return Err(syntax_at(bytes, p, "expected a string key"));
            }
            let (key, used) = match next_value(bytes, p)? {
                (Value::String(key), used) => (key, used),
                _ => return Err(syntax_at(bytes, p, "expected a string key")),
            };
            p = skip_ws(bytes, p + used);
            if bytes.get(p) != Some(&b':') {
                return Err(syntax_at(bytes, p, "expected ':' after the key"));
            }
            p = skip_ws(bytes, p + 1);
            let value = if matches!(bytes.get(p), Some(b'-' | b'0'..=b'9')) {
                // The number's own text: serde_json would re-print it.
                let used = number_len(bytes, p)?;
                let text = std::str::from_utf8(&bytes[p..p + used])
                    .expect("a JSON number is ASCII")
                    .to_owned();
                p = skip_ws(bytes, p + used);
                Scalar::Number(text)
            } else {
                let (value, used) = next_value(bytes, p)?;
                p = skip_ws(bytes, p + used);
                Scalar::Value(value)
            };

            if !seen.insert(key.clone()) {
                return Err(DocumentError::JsonDuplicateKey { key });
            }
            visit(key, value)?;

            match bytes.get(p) {
                Some(b',') => p = skip_ws(bytes, p + 1),
                Some(b'}') => {
                    p += 1;
                    break;
                }
                None => return Err(syntax_at(bytes, p, "unexpected end of JSON")),
                Some(_) => return Err(syntax_at(bytes, p, "expected ',' or '}'")),
            }
        }
    }
    p = skip_ws(bytes, p);
    if p != bytes.len() {
        return Err(syntax_at(
            bytes,
            p,
            "unexpected characters after the object",
        ));
    }
    Ok(())
}

/// A top-level value as read: a number as its source text, anything else as
/// `serde_json` read it.
enum Scalar {
    Number(String),
    Value(Value),
}

/// The length of the JSON number at `bytes[p..]` (RFC 8259:
/// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`). What follows it
/// is the caller's to check.
fn number_len(bytes: &[u8], p: usize) -> Result<usize, DocumentError> {
    let digit = |i: usize| bytes.get(i).is_some_and(u8::is_ascii_digit);
    let digits_from = |mut i: usize| {
        while digit(i) {
            i += 1;
        }
        i
    };
    let mut i = p;
    if bytes.get(i) == Some(&b'-') {
        i += 1;
    }
    match bytes.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => i = digits_from(i),
        _ => return Err(syntax_at(bytes, i, "invalid JSON number")),
    }
    if bytes.get(i) == Some(&b'.') {
        if !digit(i + 1) {
            return Err(syntax_at(bytes, i + 1, "invalid JSON number"));
        }
        i = digits_from(i + 1);
    }
    if matches!(bytes.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(bytes.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !digit(i) {
            return Err(syntax_at(bytes, i, "invalid JSON number"));
        }
        i = digits_from(i);
    }
    Ok(i - p)
}

/// A value as the text that goes into the environment.
fn scalar_text(key: &str, value: Scalar) -> Result<Secret, DocumentError> {
    let unsupported = |found| DocumentError::JsonUnsupportedValue {
        key: key.to_owned(),
        found,
    };
    let value = match value {
        Scalar::Number(text) => return Ok(Secret::new(text)),
        Scalar::Value(value) => value,
    };
    match value {
        Value::String(s) => {
            let s = Secret::new(s);
            if s.expose().contains('\0') {
                return Err(DocumentError::JsonNulInValue {
                    key: key.to_owned(),
                });
            }
            Ok(s)
        }
        // Not reached for top-level numbers (read as text above).
        Value::Number(n) => Ok(Secret::new(n.to_string())),
        Value::Bool(b) => Ok(Secret::new(b.to_string())),
        Value::Null => Err(unsupported("null")),
        Value::Array(_) => Err(unsupported("an array")),
        Value::Object(_) => Err(unsupported("an object")),
    }
}

/// What a non-object document is, judged by its first character.
fn not_an_object(bytes: &[u8], p: usize) -> DocumentError {
    let found = match bytes.get(p) {
        None => "empty",
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        Some(b'-' | b'0'..=b'9') => "a number",
        Some(_) => return syntax_at(bytes, p, "expected a JSON object"),
    };
    DocumentError::JsonNotObject { found }
}

fn skip_ws(bytes: &[u8], mut p: usize) -> usize {
    while matches!(bytes.get(p), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        p += 1;
    }
    p
}

/// Reads one JSON value starting at `p`; returns it and the bytes consumed.
fn next_value(bytes: &[u8], p: usize) -> Result<(Value, usize), DocumentError> {
    let sub = &bytes[p..];
    let mut stream = serde_json::Deserializer::from_slice(sub).into_iter::<Value>();
    match stream.next() {
        Some(Ok(v)) => Ok((v, stream.byte_offset())),
        Some(Err(e)) => Err(from_serde(bytes, p, &e)),
        None => Err(syntax_at(bytes, bytes.len(), "unexpected end of JSON")),
    }
}

/// Converts a `serde_json` error found in `bytes[p..]` into a position in the
/// whole document. Its message is not used: it can quote the input.
fn from_serde(bytes: &[u8], p: usize, e: &serde_json::Error) -> DocumentError {
    use serde_json::error::Category;
    let sub = &bytes[p..];
    let mut offset = 0;
    for _ in 1..e.line() {
        match sub[offset..].iter().position(|&b| b == b'\n') {
            Some(nl) => offset += nl + 1,
            None => break,
        }
    }
    offset = (offset + e.column().saturating_sub(1)).min(sub.len());
    let reason = match e.classify() {
        Category::Eof => "unexpected end of JSON",
        Category::Syntax => "invalid JSON syntax",
        Category::Data => "invalid JSON value",
        Category::Io => "read error",
    };
    syntax_at(bytes, p + offset, reason)
}

fn syntax_at(bytes: &[u8], offset: usize, reason: &'static str) -> DocumentError {
    let offset = offset.min(bytes.len());
    let line_start = bytes[..offset]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |nl| nl + 1);
    DocumentError::JsonSyntax {
        line: line_of(bytes, offset),
        column: offset - line_start + 1,
        reason,
    }
}

#[cfg(test)]
mod tests;
