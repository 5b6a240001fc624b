//! Dotenv documents: `KEY=VALUE` lines, `export ` prefixes, comments, single-
//! and double-quoted (possibly multi-line) values.
//!
//! Rules:
//! - A UTF-8 BOM and CRLF line endings are accepted (a CRLF inside a
//!   multi-line quoted value becomes `\n`).
//! - Blank lines and lines whose first non-blank character is `#` are skipped.
//! - `export ` before the key is ignored; spaces and tabs around `=` are allowed.
//! - A key matches `[A-Za-z_][A-Za-z0-9_.-]*`.
//! - Unquoted values are trimmed of ASCII whitespace; ` #` (a `#` after a
//!   space or tab) starts a comment, a `#` elsewhere is part of the value.
//! - `'…'` is literal. `"…"` understands `\n`, `\r`, `\t`, `\"`, `\\` and `\$`;
//!   any other backslash is kept as written. `$` is never expanded. Either
//!   kind of quote may span lines. After the closing quote only blanks and a
//!   `#` comment may follow.
//! - Errors name the line (1-based) and, for duplicates, the key; never the
//!   text of a line.

use std::collections::HashMap;

use super::{line_of, strip_bom, DocumentError};
use crate::secret::Secret;

const NO_EQUALS: &str = "expected KEY=VALUE, but the line has no '='";
const BAD_KEY: &str = "invalid key: a key must match [A-Za-z_][A-Za-z0-9_.-]*";

/// Parses a dotenv document into its keys and values, in document order.
pub fn parse(bytes: &[u8]) -> Result<Vec<(String, Secret)>, DocumentError> {
    let bytes = strip_bom(bytes);
    let text = std::str::from_utf8(bytes).map_err(|e| DocumentError::InvalidUtf8 {
        line: line_of(bytes, e.valid_up_to()),
    })?;
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();

    let mut out: Vec<(String, Secret)> = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut i = 0;
    while i < lines.len() {
        let line_no = i + 1;
        let (entry, next) = parse_entry(&lines, i)?;
        if let Some((key, value)) = entry {
            if let Some(&first_line) = seen.get(&key) {
                return Err(DocumentError::DuplicateKey {
                    key,
                    first_line,
                    second_line: line_no,
                });
            }
            seen.insert(key.clone(), line_no);
            out.push((key, value));
        }
        i = next;
    }
    Ok(out)
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-'
}

type Entry = Option<(String, Secret)>;

/// Parses the entry starting on line index `i`; returns it (or `None` for a
/// blank or comment line) and the index of the next line to read.
fn parse_entry(lines: &[&str], i: usize) -> Result<(Entry, usize), DocumentError> {
    let line_no = i + 1;
    let line = lines[i];
    let rest = line.trim_start_matches(is_blank);
    if rest.is_empty() || rest.starts_with('#') {
        return Ok((None, i + 1));
    }
    let rest = strip_export(rest);

    let key_len = rest.find(|c| !is_key_char(c)).unwrap_or(rest.len());
    let key = &rest[..key_len];
    let after_key = rest[key_len..].trim_start_matches(is_blank);
    let Some(raw) = after_key.strip_prefix('=') else {
        let reason = if line.contains('=') {
            BAD_KEY
        } else {
            NO_EQUALS
        };
        return Err(DocumentError::MalformedLine {
            line: line_no,
            reason,
        });
    };
    if !key
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
    {
        return Err(DocumentError::MalformedLine {
            line: line_no,
            reason: BAD_KEY,
        });
    }

    let value_text = raw.trim_start_matches(is_blank);
    let blank_before = value_text.len() != raw.len();
    let (value, next) = match value_text.chars().next() {
        Some(q @ ('\'' | '"')) => {
            let start = line.len() - value_text.len() + 1;
            let scan = scan_quoted(lines, i, start, q, None)?;
            let mut buf = String::with_capacity(scan.raw_len);
            scan_quoted(lines, i, start, q, Some(&mut buf))?;
            (Secret::new(buf), scan.end_line + 1)
        }
        _ => (
            Secret::new(unquoted(value_text, blank_before).to_owned()),
            i + 1,
        ),
    };
    if value.expose().contains('\0') {
        return Err(DocumentError::NulInValue { line: line_no });
    }
    Ok((Some((key.to_owned(), value)), next))
}

/// Removes an `export` keyword followed by blanks.
fn strip_export(s: &str) -> &str {
    match s.strip_prefix("export") {
        Some(after) if after.starts_with(is_blank) => after.trim_start_matches(is_blank),
        _ => s,
    }
}

/// An unquoted value: up to a ` #` comment, trimmed.
fn unquoted(v: &str, blank_before: bool) -> &str {
    let mut end = v.len();
    let mut prev_blank = blank_before;
    for (pos, c) in v.char_indices() {
        if c == '#' && prev_blank {
            end = pos;
            break;
        }
        prev_blank = is_blank(c);
    }
    v[..end].trim_matches(|c: char| c.is_ascii_whitespace())
}

struct QuotedEnd {
    /// Index of the line holding the closing quote.
    end_line: usize,
    /// Upper bound of the decoded length, for one allocation.
    raw_len: usize,
}

/// Scans a quoted value whose opening quote `q` is just before byte `start` of
/// line `i`. With `out`, appends the decoded value to it. Checks that only
/// blanks or a comment follow the closing quote.
fn scan_quoted(
    lines: &[&str],
    i: usize,
    start: usize,
    q: char,
    mut out: Option<&mut String>,
) -> Result<QuotedEnd, DocumentError> {
    let mut raw_len = 0;
    let mut line_idx = i;
    let mut segment = &lines[i][start..];
    loop {
        let mut chars = segment.char_indices();
        while let Some((pos, c)) = chars.next() {
            if c == q {
                let after = segment[pos + 1..].trim_start_matches(is_blank);
                if !after.is_empty() && !after.starts_with('#') {
                    return Err(DocumentError::TrailingCharacters { line: line_idx + 1 });
                }
                return Ok(QuotedEnd {
                    end_line: line_idx,
                    raw_len,
                });
            }
            if q == '"' && c == '\\' {
                if let Some((_, e)) = chars.clone().next() {
                    let decoded = match e {
                        'n' => Some('\n'),
                        'r' => Some('\r'),
                        't' => Some('\t'),
                        '"' => Some('"'),
                        '\\' => Some('\\'),
                        '$' => Some('$'),
                        _ => None,
                    };
                    if let Some(d) = decoded {
                        chars.next();
                        raw_len += 2;
                        if let Some(o) = out.as_deref_mut() {
                            o.push(d);
                        }
                        continue;
                    }
                }
            }
            raw_len += c.len_utf8();
            if let Some(o) = out.as_deref_mut() {
                o.push(c);
            }
        }
        line_idx += 1;
        if line_idx >= lines.len() {
            return Err(DocumentError::UnterminatedQuote { line: i + 1 });
        }
        raw_len += 1;
        if let Some(o) = out.as_deref_mut() {
            o.push('\n');
        }
        segment = lines[line_idx];
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

    fn one(doc: &str) -> String {
        let v = kv(doc);
        assert_eq!(v.len(), 1, "{doc:?}");
        v[0].1.clone()
    }

    fn err(doc: &str) -> DocumentError {
        parse(doc.as_bytes()).unwrap_err()
    }

    #[test]
    fn basic_lines_in_order() {
        let doc = "# comment\n\nB=2\n  A=1\nexport C=three\n\t# indented comment\n";
        assert_eq!(
            kv(doc),
            vec![
                ("B".into(), "2".into()),
                ("A".into(), "1".into()),
                ("C".into(), "three".into()),
            ]
        );
        assert!(kv("").is_empty());
        assert!(kv("\n\n# only comments\n").is_empty());
    }

    #[test]
    fn keys() {
        assert_eq!(kv("job.title=x")[0].0, "job.title");
        assert_eq!(kv("my-key=x")[0].0, "my-key");
        assert_eq!(kv("_x9=x")[0].0, "_x9");
        assert_eq!(kv("export=1")[0].0, "export");
        assert_eq!(kv("exportA=1")[0].0, "exportA");
        assert_eq!(kv("export \t A=1")[0].0, "A");
        assert_eq!(kv("KEY = value")[0], ("KEY".into(), "value".into()));
        for bad in [
            "1A=x",
            "-A=x",
            ".A=x",
            "MY KEY=x",
            "A$B=x",
            "=x",
            "export =x",
            "Ä=x",
        ] {
            assert_eq!(
                err(bad),
                DocumentError::MalformedLine {
                    line: 1,
                    reason: BAD_KEY
                },
                "{bad}"
            );
        }
    }

    #[test]
    fn unquoted_values() {
        assert_eq!(one("A=  spaced value  "), "spaced value");
        assert_eq!(one("A=value # comment"), "value");
        assert_eq!(one("A=value\t# comment"), "value");
        assert_eq!(one("A=pa#ss"), "pa#ss");
        assert_eq!(one("A=#notacomment"), "#notacomment");
        assert_eq!(one("A= # only a comment"), "");
        assert_eq!(one("A="), "");
        assert_eq!(one("A=a=b=c"), "a=b=c");
        assert_eq!(one("A=it's"), "it's");
        assert_eq!(one("A=x\"y"), "x\"y");
        assert_eq!(one("A=$HOME"), "$HOME");
        assert_eq!(one("A=a\\nb"), "a\\nb");
        assert_eq!(one("A=café ☃"), "café ☃");
    }

    #[test]
    fn single_quotes_are_literal() {
        assert_eq!(
            one("A='a\\nb $X \"q\" # not comment'"),
            "a\\nb $X \"q\" # not comment"
        );
        assert_eq!(one("A='  padded  '"), "  padded  ");
        assert_eq!(one("A=''"), "");
        assert_eq!(one("A='x' # comment"), "x");
        assert_eq!(one("A='line1\nline2\n'"), "line1\nline2\n");
    }

    #[test]
    fn double_quotes_escapes() {
        assert_eq!(
            one(r#"A="n\n r\r t\t q\" b\\ d\$ keep\x keep\'""#),
            "n\n r\r t\t q\" b\\ d$ keep\\x keep\\'"
        );
        assert_eq!(one(r##"A="#not comment""##), "#not comment");
        assert_eq!(one(r#"A="x"   # comment"#), "x");
        assert_eq!(one(r##"A="x"#c"##), "x");
        assert_eq!(one(r#"A="""#), "");
        assert_eq!(one("A=\"$NOT_EXPANDED\""), "$NOT_EXPANDED");
        assert_eq!(
            one("A=\"ends with backslash\\\\\""),
            "ends with backslash\\"
        );
    }

    #[test]
    fn multi_line_values() {
        let doc = "A=\"-----BEGIN KEY-----\nabc\n-----END KEY-----\"\nB=after\n";
        assert_eq!(
            kv(doc),
            vec![
                (
                    "A".into(),
                    "-----BEGIN KEY-----\nabc\n-----END KEY-----".into()
                ),
                ("B".into(), "after".into()),
            ]
        );
        // Line numbers keep counting through a multi-line value.
        let doc = "A=\"1\n2\n3\"\nbad line\n";
        assert_eq!(
            err(doc),
            DocumentError::MalformedLine {
                line: 4,
                reason: NO_EQUALS
            }
        );
        // An escaped quote does not end the value.
        assert_eq!(one("A=\"a\\\"\nb\""), "a\"\nb");
    }

    #[test]
    fn crlf_and_bom() {
        let doc = b"\xEF\xBB\xBFA=1\r\nB=\"x\r\ny\"\r\nC='z' # c\r\n\r\n";
        let v: Vec<(String, String)> = parse(doc)
            .unwrap()
            .into_iter()
            .map(|(k, v)| (k, v.expose().to_owned()))
            .collect();
        assert_eq!(
            v,
            vec![
                ("A".into(), "1".into()),
                ("B".into(), "x\ny".into()),
                ("C".into(), "z".into()),
            ]
        );
        // A BOM not at the start is not skipped: it starts an invalid key.
        assert!(parse(b"A=1\n\xEF\xBB\xBFB=2").is_err());
    }

    #[test]
    fn malformed_lines_name_the_line() {
        assert_eq!(
            err("A=1\njust some text\n"),
            DocumentError::MalformedLine {
                line: 2,
                reason: NO_EQUALS
            }
        );
        assert_eq!(
            err("A=1\nexport B\n"),
            DocumentError::MalformedLine {
                line: 2,
                reason: NO_EQUALS
            }
        );
        assert_eq!(
            err("A=1\n\nB=\"never closed\nC=2\n"),
            DocumentError::UnterminatedQuote { line: 3 }
        );
        assert_eq!(err("A='x"), DocumentError::UnterminatedQuote { line: 1 });
        assert_eq!(
            err("A=1\nB=\"x\"garbage\n"),
            DocumentError::TrailingCharacters { line: 2 }
        );
        assert_eq!(
            err("B='x\ny' garbage\n"),
            DocumentError::TrailingCharacters { line: 2 }
        );
        assert_eq!(err("A=1\nB=x\0y\n"), DocumentError::NulInValue { line: 2 });
        assert_eq!(err("B=\"x\0y\""), DocumentError::NulInValue { line: 1 });
    }

    #[test]
    fn duplicate_keys() {
        assert_eq!(
            err("A=1\nB=2\nexport A=3\n"),
            DocumentError::DuplicateKey {
                key: "A".into(),
                first_line: 1,
                second_line: 3
            }
        );
        // Keys are case-sensitive here (renaming happens later).
        assert_eq!(kv("a=1\nA=2").len(), 2);
    }

    #[test]
    fn invalid_utf8_names_the_line() {
        assert_eq!(
            parse(b"A=1\nB=2\nC=\xff\xfe\n").unwrap_err(),
            DocumentError::InvalidUtf8 { line: 3 }
        );
        assert_eq!(
            parse(b"\xEF\xBB\xBFA=\xc3").unwrap_err(),
            DocumentError::InvalidUtf8 { line: 1 }
        );
    }

    #[test]
    fn errors_never_show_values_or_line_text() {
        let secret = "hunter2-S3CR3T";
        let docs = [
            format!("A={secret}\n{secret} no equals\n"),
            format!("A={secret}\n{secret} x=y\n"),
            format!("A=\"{secret}\n"),
            format!("A='{secret}'{secret}\n"),
            format!("A=\"{secret}\"{secret}\n"),
            format!("A={secret}\0\n"),
            format!("A={secret}\nA={secret}\n"),
            format!("A={secret}\n1{secret}={secret}\n"),
        ];
        for doc in &docs {
            let e = parse(doc.as_bytes()).unwrap_err();
            for shown in [e.to_string(), format!("{e:?}")] {
                assert!(!shown.contains("hunter2"), "{shown}");
                assert!(!shown.contains("S3CR3T"), "{shown}");
            }
        }
        let mut bytes = format!("A={secret}").into_bytes();
        bytes.push(0xff);
        let e = parse(&bytes).unwrap_err();
        assert!(!e.to_string().contains("hunter2"));
    }

    #[test]
    fn values_are_secrets() {
        let v = parse(b"A=hunter2").unwrap();
        assert_eq!(format!("{:?}", v[0].1), "[REDACTED]");
    }
}
