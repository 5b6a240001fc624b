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

use super::{line_of, strip_bom, DocumentError};
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
mod tests {
    use super::*;

    fn kv(doc: &str) -> Vec<(String, String)> {
        parse(doc.as_bytes())
            .unwrap()
            .into_iter()
            .map(|(k, v)| (k, v.expose().to_owned()))
            .collect()
    }

    fn err(doc: &str) -> DocumentError {
        parse(doc.as_bytes()).unwrap_err()
    }

    #[test]
    fn strings_numbers_booleans_in_document_order() {
        let doc = r#"{
            "zeta": "last-first",
            "db_password": "hunter2",
            "port": 5432,
            "ratio": 1.5,
            "exp": 1e3,
            "big": 18446744073709551615,
            "neg": -7,
            "debug": true,
            "off": false,
            "empty": "",
            "escaped": "a\"b\\c\nd\u00e9\u2603",
            "spaces": "  kept  "
        }"#;
        assert_eq!(
            kv(doc),
            vec![
                ("zeta".into(), "last-first".into()),
                ("db_password".into(), "hunter2".into()),
                ("port".into(), "5432".into()),
                ("ratio".into(), "1.5".into()),
                ("exp".into(), "1e3".into()),
                ("big".into(), "18446744073709551615".into()),
                ("neg".into(), "-7".into()),
                ("debug".into(), "true".into()),
                ("off".into(), "false".into()),
                ("empty".into(), "".into()),
                ("escaped".into(), "a\"b\\c\nd\u{e9}\u{2603}".into()),
                ("spaces".into(), "  kept  ".into()),
            ]
        );
        assert!(kv("{}").is_empty());
        assert!(kv(" \r\n{ } \n").is_empty());
        assert_eq!(kv("\u{feff}{\"a\":\"b\"}"), vec![("a".into(), "b".into())]);
        // Keys are kept exactly as written, whatever they contain.
        assert_eq!(kv(r#"{"job title/x":"y"}"#)[0].0, "job title/x");
    }

    /// PRODUCT §4: numbers are used as their JSON text, exactly as written.
    #[test]
    fn numbers_keep_their_source_text() {
        for n in [
            "1e3",
            "1E3",
            "1e+3",
            "2.5e-7",
            "1.50",
            "-0",
            "0",
            "-0.0",
            "12345678901234567890123",
            "-98765432109876543210.000100",
            "1e999",
            "5432",
        ] {
            assert_eq!(
                kv(&format!("{{\"n\": {n} , \"m\":{n}}}")),
                vec![("n".into(), n.into()), ("m".into(), n.into())],
                "{n}"
            );
        }
        assert_eq!(
            kv(r#"{"t":true,"f":false,"n":1.50}"#),
            vec![
                ("t".into(), "true".into()),
                ("f".into(), "false".into()),
                ("n".into(), "1.50".into())
            ]
        );
        // Only the top level is read as text; nested numbers are still an
        // unsupported value (an array), whatever they look like.
        assert!(matches!(
            err(r#"{"a":[1e3]}"#),
            DocumentError::JsonUnsupportedValue { .. }
        ));
    }

    #[test]
    fn unsupported_values_name_the_key() {
        for (v, found) in [
            ("null", "null"),
            ("[1,2]", "an array"),
            ("{\"x\":1}", "an object"),
        ] {
            let e = err(&format!("{{\"ok\":\"1\",\"bad_key\":{v}}}"));
            assert_eq!(
                e,
                DocumentError::JsonUnsupportedValue {
                    key: "bad_key".into(),
                    found
                }
            );
            assert!(e.to_string().contains("\"bad_key\""), "{e}");
        }
        assert_eq!(
            err(r#"{"k":"a\u0000b"}"#),
            DocumentError::JsonNulInValue { key: "k".into() }
        );
    }

    #[test]
    fn duplicate_keys_name_the_key() {
        let e = err(r#"{"a":"1","b":"2","a":"3"}"#);
        assert_eq!(e, DocumentError::JsonDuplicateKey { key: "a".into() });
        assert!(e.to_string().contains("\"a\""));
        // Only the top level counts; the same name nested is another error.
        assert!(matches!(
            err(r#"{"a":{"a":1,"a":2}}"#),
            DocumentError::JsonUnsupportedValue { .. }
        ));
        // Escapes are decoded before comparing.
        assert_eq!(
            err(r#"{"a":"1","\u0061":"2"}"#),
            DocumentError::JsonDuplicateKey { key: "a".into() }
        );
    }

    #[test]
    fn not_an_object() {
        for (doc, found) in [
            ("[1]", "an array"),
            ("\"hunter2\"", "a string"),
            ("42", "a number"),
            ("-1", "a number"),
            ("true", "a boolean"),
            ("null", "null"),
            ("", "empty"),
            ("  \n", "empty"),
        ] {
            assert_eq!(err(doc), DocumentError::JsonNotObject { found }, "{doc}");
        }
        assert!(matches!(err("hunter2"), DocumentError::JsonSyntax { .. }));
        assert!(!err("\"hunter2\"").to_string().contains("hunter2"));
    }

    #[test]
    fn invalid_utf8() {
        assert_eq!(
            parse(b"{\"a\":\"1\",\n\"b\":\"\xff\"}").unwrap_err(),
            DocumentError::JsonInvalidUtf8 { line: 2 }
        );
    }

    #[test]
    fn syntax_errors_have_positions() {
        let cases: &[(&str, usize, usize)] = &[
            ("{\"a\":1,}", 1, 8),
            ("{\"a\" 1}", 1, 6),
            ("{\"a\":1 \"b\":2}", 1, 8),
            ("{\"a\":1}\n x", 2, 2),
            ("{\"a\":1", 1, 7),
            ("{\n\"a\":\"unterminated", 2, 17),
            ("{\n  \"a\": tru }", 2, 11),
            ("{a:1}", 1, 2),
            ("{\"a\":01}", 1, 7),
            ("{\"a\":\"x\"}}", 1, 10),
            ("{\"a\":-}", 1, 7),
            ("{\"a\":1.}", 1, 8),
            ("{\"a\":.5}", 1, 6),
            ("{\"a\":1e}", 1, 8),
            ("{\"a\":1e+}", 1, 9),
            ("{\"a\":+1}", 1, 6),
            ("{\"a\":-01}", 1, 8),
            ("{\"a\":0x10}", 1, 7),
        ];
        for &(doc, line, column) in cases {
            match err(doc) {
                DocumentError::JsonSyntax {
                    line: l, column: c, ..
                } => assert_eq!((l, c), (line, column), "{doc:?}"),
                other => panic!("{doc:?}: {other:?}"),
            }
        }
        assert_eq!(
            err("{\"a\":1,}"),
            DocumentError::JsonSyntax {
                line: 1,
                column: 8,
                reason: "expected a string key"
            }
        );
        assert_eq!(
            err("{\"a\":1}\n x"),
            DocumentError::JsonSyntax {
                line: 2,
                column: 2,
                reason: "unexpected characters after the object"
            }
        );
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let doc = format!("{{\"a\":{}{}}}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(matches!(err(&doc), DocumentError::JsonSyntax { .. }));
    }

    #[test]
    fn errors_never_show_values() {
        let docs = [
            r#"{"k":"hunter2","k":"hunter2"}"#,
            r#"{"k":["hunter2"]}"#,
            r#"{"k":"hunter2" "x":1}"#,
            r#"{"k":"hunter2\u0000"}"#,
            r#"{"k":hunter2}"#,
            r#"{"k":"hunter2\q"}"#,
            r#"{"k":"hunter2"} hunter2"#,
            r#"["hunter2"]"#,
            "{\"k\":\"hunter2",
        ];
        for doc in docs {
            let e = err(doc);
            for shown in [e.to_string(), format!("{e:?}")] {
                assert!(!shown.contains("hunter2"), "{shown}");
            }
        }
    }
}
