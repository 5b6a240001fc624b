//! `envseal check`: resolves exactly as `exec` would and prints one line per
//! variable (name, reference, status, length, a SHA-256 fingerprint, `file`
//! for a `?file` variable), never a value.

use std::ffi::OsString;

use super::write_stdout;
use crate::cli::CheckArgs;
use crate::environment::Value;
use crate::error::Error;
use crate::pipeline;

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

/// Resolves exactly as `exec` would and prints one line per variable.
pub fn run(args: &CheckArgs, env: Vec<(OsString, OsString)>) -> Result<i32, Error> {
    let flags = args.common.flags(false);
    let format = CheckFormat::parse(&args.format)?;
    let (_config, outcome) = pipeline::resolve(&flags, env)?;
    let mut rows: Vec<serde_json::Value> = Vec::new();
    for (name, value) in outcome.env.entries() {
        let Some(name) = name.to_str() else { continue };
        match value {
            Value::Resolved { value, reference } => rows.push(serde_json::json!({
                "name": name, "reference": reference, "status": "ok",
                "length": value.len(), "sha256": value.fingerprint(),
            })),
            // `exec` puts it into an in-memory file; length and fingerprint
            // are the file's contents'.
            Value::File {
                contents,
                reference,
                ..
            } => rows.push(serde_json::json!({
                "name": name, "reference": reference, "status": "ok",
                "length": contents.len(), "sha256": contents.fingerprint(), "file": true,
            })),
            Value::Plain(_) => {}
        }
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
                        "{}\t{}\tok\tlength={}\tsha256={}{}\n",
                        get("name"),
                        get("reference"),
                        row["length"],
                        get("sha256"),
                        if row.get("file").is_some() {
                            "\tfile"
                        } else {
                            ""
                        }
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
    write_stdout(text.as_bytes())?;
    if outcome.failures.is_empty() {
        Ok(0)
    } else {
        Err(Error::Resolution(outcome.failures))
    }
}
