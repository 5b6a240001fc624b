//! What `check` and `export` print. `check` never prints a value; `export` is
//! the one command that does.

use std::ffi::OsString;
use std::io::Write;

use zeroize::Zeroizing;

use crate::config::Flags;
use crate::environment::ChildEnv;
use crate::error::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckFormat {
    Text,
    Json,
}

impl CheckFormat {
    pub fn parse(s: &str) -> Result<Self, Error> {
        match s {
            "text" => Ok(CheckFormat::Text),
            "json" => Ok(CheckFormat::Json),
            _ => Err(Error::Config(format!(
                "check format {s:?} is not one of text, json"
            ))),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Shell,
    Dotenv,
    Json,
}

impl ExportFormat {
    pub fn parse(s: &str) -> Result<Self, Error> {
        match s {
            "shell" | "sh" => Ok(ExportFormat::Shell),
            "dotenv" => Ok(ExportFormat::Dotenv),
            "json" => Ok(ExportFormat::Json),
            _ => Err(Error::Config(format!(
                "export format {s:?} is not one of shell, dotenv, json"
            ))),
        }
    }
}

fn write_out(text: &str) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|_| out.flush())
        .map_err(|e| Error::Other(format!("cannot write to stdout: {e}")))
}

/// Resolves exactly as `exec` would and prints one line per variable.
pub fn check(
    flags: &Flags,
    env: Vec<(OsString, OsString)>,
    format: CheckFormat,
) -> Result<i32, Error> {
    let (_config, outcome) = crate::resolve_all(flags, env)?;
    let mut rows: Vec<serde_json::Value> = Vec::new();
    for (name, value, reference) in outcome.env.resolved() {
        rows.push(serde_json::json!({
            "name": name, "reference": reference, "status": "ok",
            "length": value.len(), "sha256": value.fingerprint(),
        }));
    }
    for (name, reference) in &outcome.skipped {
        rows.push(serde_json::json!({
            "name": name, "reference": reference, "status": "skipped",
            "reason": "not found (optional)",
        }));
    }
    for f in &outcome.failures {
        rows.push(serde_json::json!({
            "name": f.variable, "reference": f.reference, "status": "failed",
            "kind": f.kind.as_str(), "reason": f.reason,
        }));
    }
    let text = match format {
        CheckFormat::Json => format!("{}\n", serde_json::Value::Array(rows)),
        CheckFormat::Text => {
            let mut s = String::new();
            for row in &rows {
                let get = |k: &str| row.get(k).and_then(|v| v.as_str()).unwrap_or("");
                match get("status") {
                    "ok" => s.push_str(&format!(
                        "{}\t{}\tok\tlength={}\tsha256={}\n",
                        get("name"),
                        get("reference"),
                        row["length"],
                        get("sha256")
                    )),
                    status => s.push_str(&format!(
                        "{}\t{}\t{}\t{}\n",
                        get("name"),
                        get("reference"),
                        status,
                        get("reason")
                    )),
                }
            }
            s
        }
    };
    write_out(&text)?;
    if outcome.failures.is_empty() {
        Ok(0)
    } else {
        Err(Error::Resolution(outcome.failures))
    }
}

/// Single-quotes a value for POSIX sh: nothing inside single quotes is
/// special; a single quote is written as `'\''`.
pub fn shell_quote(value: &str) -> String {
    let mut s = String::with_capacity(value.len() + 2);
    s.push('\'');
    for c in value.chars() {
        if c == '\'' {
            s.push_str("'\\''");
        } else {
            s.push(c);
        }
    }
    s.push('\'');
    s
}

/// Double-quotes a value for a dotenv file, escaping what our dotenv reader
/// unescapes.
pub fn dotenv_quote(value: &str) -> String {
    let mut s = String::with_capacity(value.len() + 2);
    s.push('"');
    for c in value.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            '$' => s.push_str("\\$"),
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

pub fn export(env: &ChildEnv, format: ExportFormat) -> Result<(), Error> {
    let mut text = Zeroizing::new(String::new());
    match format {
        ExportFormat::Shell => {
            for (name, value, _) in env.resolved() {
                text.push_str(&format!(
                    "export {name}={}\n",
                    Zeroizing::new(shell_quote(value.expose())).as_str()
                ));
            }
        }
        ExportFormat::Dotenv => {
            for (name, value, _) in env.resolved() {
                text.push_str(&format!(
                    "{name}={}\n",
                    Zeroizing::new(dotenv_quote(value.expose())).as_str()
                ));
            }
        }
        ExportFormat::Json => {
            let mut map = serde_json::Map::new();
            for (name, value, _) in env.resolved() {
                map.insert(
                    name.to_owned(),
                    serde_json::Value::String(value.expose().to_owned()),
                );
            }
            let mut value = serde_json::Value::Object(map);
            text.push_str(&value.to_string());
            text.push('\n');
            if let serde_json::Value::Object(m) = &mut value {
                for v in m.values_mut() {
                    if let serde_json::Value::String(s) = v {
                        zeroize::Zeroize::zeroize(s);
                    }
                }
            }
        }
    }
    write_out(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quoting() {
        assert_eq!(shell_quote("plain"), "'plain'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote("$(rm -rf /)`x`\n\\"), "'$(rm -rf /)`x`\n\\'");
    }

    #[test]
    fn dotenv_quoting() {
        assert_eq!(dotenv_quote("a\"b\\c\nd$e"), "\"a\\\"b\\\\c\\nd\\$e\"");
    }
}
