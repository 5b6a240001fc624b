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

use super::error::DocumentError;
use super::text::{line_of, strip_bom};
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
mod tests;
