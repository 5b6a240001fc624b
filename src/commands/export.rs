//! `envseal export`: the one command that prints values, as shell `export`
//! lines, a dotenv file or JSON.

use std::ffi::OsString;

use zeroize::Zeroizing;

use super::write_stdout;
use crate::cli::ExportArgs;
use crate::environment::ChildEnv;
use crate::error::Error;
use crate::pipeline;

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

/// True for a name that POSIX sh and dotenv readers take as a variable name:
/// `[A-Za-z_][A-Za-z0-9_]*`. Inherited variables may be named anything
/// (`A;touch /tmp/x`, `A-B`); printed unquoted, such a name would be code.
pub fn is_portable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Refuses the export when any name cannot be written in `format` (JSON
/// carries any name). Runs before anything is printed, so nothing is
/// half-applied. The error names the variables (names are not secret;
/// `{:?}` keeps control characters in a name off the terminal).
fn check_names<'a>(
    names: impl Iterator<Item = &'a str>,
    format: ExportFormat,
) -> Result<(), Error> {
    let label = match format {
        ExportFormat::Shell => "shell",
        ExportFormat::Dotenv => "dotenv",
        ExportFormat::Json => return Ok(()),
    };
    let bad: Vec<String> = names
        .filter(|n| !is_portable_name(n))
        .map(|n| format!("{n:?}"))
        .collect();
    if bad.is_empty() {
        return Ok(());
    }
    Err(Error::UnportableNames {
        format: label,
        names: bad,
    })
}

/// One `export NAME='value'` line. `name` must be portable.
fn shell_line(name: &str, value: &str) -> Zeroizing<String> {
    Zeroizing::new(format!(
        "export {name}={}\n",
        Zeroizing::new(shell_quote(value)).as_str()
    ))
}

/// One `NAME="value"` line. `name` must be portable.
fn dotenv_line(name: &str, value: &str) -> Zeroizing<String> {
    Zeroizing::new(format!(
        "{name}={}\n",
        Zeroizing::new(dotenv_quote(value)).as_str()
    ))
}

/// Resolves exactly as `exec` would and prints the variables in `--format`.
pub fn run(args: &ExportArgs, env: Vec<(OsString, OsString)>) -> Result<i32, Error> {
    let flags = args.common.flags(false);
    let format = ExportFormat::parse(&args.format)?;
    let child = pipeline::resolve(&flags, env)?
        .1
        .into_result()
        .map_err(Error::Resolution)?;
    export(&child, format)?;
    Ok(0)
}

fn export(env: &ChildEnv, format: ExportFormat) -> Result<(), Error> {
    // A `?file` variable's value is a path that exists only in `exec`.
    let files: Vec<String> = env.files().map(|(name, _, _)| name.to_owned()).collect();
    if !files.is_empty() {
        return Err(Error::FileNotExportable { names: files });
    }
    check_names(env.resolved().map(|(name, _, _)| name), format)?;
    let mut text = Zeroizing::new(String::new());
    match format {
        ExportFormat::Shell => {
            for (name, value, _) in env.resolved() {
                text.push_str(&shell_line(name, value.expose()));
            }
        }
        ExportFormat::Dotenv => {
            for (name, value, _) in env.resolved() {
                text.push_str(&dotenv_line(name, value.expose()));
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
    write_stdout(text.as_bytes())
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

    /// Values that a dotenv writer gets wrong: quotes, `$`, backticks,
    /// backslashes (also before `n`, `"` and at the end), LF, CR, CRLF, a
    /// trailing newline, tabs, `#`, non-ASCII, an empty value.
    const HOSTILE_VALUES: &[&str] = &[
        "",
        " ",
        "plain",
        "it's \"double\" and 'single'",
        "$HOME ${HOME} $(id) `id` \\$HOME",
        "back\\slash \\n \\\" \\\\ trailing\\",
        "line1\nline2\n",
        "\n",
        "cr\rcrlf\r\nend\r",
        "\ttab # not a comment #",
        "ünïcödé € 日本 🔑",
        "'",
        "\"",
        "=a=b=",
        "export X=1",
    ];

    #[test]
    fn dotenv_export_round_trips_through_our_own_dotenv_parser() {
        for value in HOSTILE_VALUES {
            let line = dotenv_line("NAME", value);
            let parsed = crate::document::dotenv::parse(line.as_bytes())
                .unwrap_or_else(|e| panic!("our parser refuses {line:?}: {e}"));
            assert_eq!(parsed.len(), 1, "{line:?}");
            assert_eq!(parsed[0].0, "NAME");
            assert_eq!(parsed[0].1.expose(), *value, "{line:?}");
        }
        // All at once, as one document: no value leaks into the next line.
        let doc: String = HOSTILE_VALUES
            .iter()
            .enumerate()
            .map(|(i, v)| dotenv_line(&format!("V_{i}"), v).to_string())
            .collect();
        let parsed = crate::document::dotenv::parse(doc.as_bytes()).unwrap();
        let values: Vec<&str> = parsed.iter().map(|(_, v)| v.expose()).collect();
        assert_eq!(values, HOSTILE_VALUES);
    }

    #[test]
    fn shell_export_round_trips_through_sh() {
        for value in HOSTILE_VALUES {
            let script = format!(
                "{}printf '%s' \"$NAME\"",
                shell_line("NAME", value).as_str()
            );
            let out = std::process::Command::new("sh")
                .args(["-c", &script])
                .env_clear()
                .output()
                .expect("sh runs");
            assert!(out.status.success(), "{script:?}");
            assert_eq!(String::from_utf8(out.stdout).unwrap(), *value, "{script:?}");
        }
    }

    #[test]
    fn portable_names() {
        for ok in ["A", "_", "_A1", "DB_PASSWORD", "a_b", "Z9"] {
            assert!(is_portable_name(ok), "{ok}");
        }
        for bad in [
            "",
            "1A",
            "A-B",
            "A.B",
            "A;touch /tmp/x",
            "A B",
            "A=B",
            "$(id)",
            "A\nB",
            "É",
        ] {
            assert!(!is_portable_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn shell_and_dotenv_refuse_names_that_are_not_portable_json_does_not() {
        let names = ["GOOD", "A;touch /tmp/x", "A-B"];
        for format in [ExportFormat::Shell, ExportFormat::Dotenv] {
            let e = check_names(names.iter().copied(), format).unwrap_err();
            let text = e.to_string();
            assert!(text.contains("\"A;touch /tmp/x\""), "{text}");
            assert!(text.contains("\"A-B\""), "{text}");
            assert!(!text.contains("GOOD"), "{text}");
            assert_eq!(e.exit_code(), crate::error::EXIT_RESOLUTION);
        }
        assert!(check_names(names.iter().copied(), ExportFormat::Json).is_ok());
        assert!(check_names(["GOOD", "_x"].into_iter(), ExportFormat::Shell).is_ok());
    }
}
