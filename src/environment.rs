//! The child's environment: what every bundle and reference resolved to,
//! variable naming, precedence and collisions. Pure: takes the fetched
//! answers, returns the environment or every failure at once.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};

use tracing::{debug, info, warn};

use crate::config::Collision;
use crate::error::{Failure, FailureKind, FetchError};
use crate::plan::{Answer, Fetched, Inherited, Request, SourceSpec, TemplatePart, VarTemplate};
use crate::reference::{Bundle, Target};
use crate::secret::{Secret, SecretBytes};

/// One variable of the child's environment.
#[derive(Debug, Clone)]
pub enum Value {
    /// Inherited as it was (not a reference).
    Plain(OsString),
    /// Resolved from `reference` (a per-variable reference or a bundle source).
    Resolved { value: Secret, reference: String },
    /// Resolved from a `?file` reference: `contents` go into an in-memory
    /// file and the variable holds its path, which `process::memfile` fills
    /// in (`None` until then). Any bytes: NUL and non-UTF-8 are fine in a file.
    File {
        contents: SecretBytes,
        reference: String,
        path: Option<OsString>,
    },
}

/// The environment handed to the application, in order: inherited variables
/// first, then what bundles added.
#[derive(Debug, Default)]
pub struct ChildEnv {
    entries: Vec<(OsString, Value)>,
    index: HashMap<OsString, usize>,
}

impl ChildEnv {
    fn set(&mut self, name: OsString, value: Value) -> Option<Value> {
        match self.index.get(&name) {
            Some(&i) => Some(std::mem::replace(&mut self.entries[i].1, value)),
            None => {
                self.index.insert(name.clone(), self.entries.len());
                self.entries.push((name, value));
                None
            }
        }
    }

    fn get(&self, name: &OsStr) -> Option<&Value> {
        self.index.get(name).map(|&i| &self.entries[i].1)
    }

    pub fn entries(&self) -> &[(OsString, Value)] {
        &self.entries
    }

    /// The variables that came from references and bundles, in order
    /// (`?file` ones are in [`ChildEnv::files`]).
    pub fn resolved(&self) -> impl Iterator<Item = (&str, &Secret, &str)> {
        self.entries.iter().filter_map(|(k, v)| match v {
            Value::Resolved { value, reference } => Some((k.to_str()?, value, reference.as_str())),
            Value::Plain(_) | Value::File { .. } => None,
        })
    }

    /// The `?file` variables, in order: name, contents, reference.
    pub fn files(&self) -> impl Iterator<Item = (&str, &SecretBytes, &str)> {
        self.entries.iter().filter_map(|(k, v)| match v {
            Value::File {
                contents,
                reference,
                ..
            } => Some((k.to_str()?, contents, reference.as_str())),
            _ => None,
        })
    }

    /// The `?file` variables for `process::memfile`: name, contents, and the
    /// slot for the file's path.
    pub fn files_mut(
        &mut self,
    ) -> impl Iterator<Item = (&OsStr, &SecretBytes, &mut Option<OsString>)> {
        self.entries.iter_mut().filter_map(|(k, v)| match v {
            Value::File { contents, path, .. } => Some((k.as_os_str(), &*contents, path)),
            _ => None,
        })
    }

    /// The variable's value as the application sees it (a `?file` variable:
    /// its path, once the file exists).
    pub fn var(&self, name: &str) -> Option<&OsStr> {
        match self.get(OsStr::new(name))? {
            Value::Plain(v) => Some(v.as_os_str()),
            Value::Resolved { value, .. } => Some(OsStr::new(value.expose())),
            Value::File { path, .. } => path.as_deref(),
        }
    }
}

/// Maps a bundle key to a variable name: every character outside
/// `[A-Za-z0-9_]` becomes `_`, then upper case.
pub fn variable_name(key: &str) -> Result<String, String> {
    let name: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() {
        return Err("an empty key does not make a variable name".into());
    }
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(format!(
            "key {key:?} maps to {name:?}, which starts with a digit and is not a valid variable name"
        ));
    }
    Ok(name)
}

/// Everything assembly found: the environment, every failure, and the
/// optional references that were left out.
#[derive(Debug, Default)]
pub struct Outcome {
    pub env: ChildEnv,
    pub failures: Vec<Failure>,
    /// (variable or "(bundle)", reference) of optional references not found.
    pub skipped: Vec<(String, String)>,
}

impl Outcome {
    /// The environment, only if nothing required failed.
    pub fn into_result(self) -> Result<ChildEnv, Vec<Failure>> {
        if self.failures.is_empty() {
            Ok(self.env)
        } else {
            Err(self.failures)
        }
    }
}

/// Builds the child's environment, collecting every failure.
pub fn assemble(
    inherited: Inherited,
    sources: &[SourceSpec],
    collision: Collision,
    answers: &HashMap<Request, Answer>,
) -> Outcome {
    let mut failures = inherited.failures;
    let mut skipped = Vec::new();
    let mut env = ChildEnv::default();
    let mut plain_names = std::collections::HashSet::new();
    for (name, value) in inherited.plain {
        plain_names.insert(name.clone());
        env.set(name, Value::Plain(value));
    }
    let reference_names: std::collections::HashSet<&str> = inherited
        .refs
        .iter()
        .map(|r| r.name.as_str())
        .chain(inherited.templates.iter().map(|t| t.name.as_str()))
        .collect();

    for spec in sources {
        let request = Request::for_bundle(&spec.source.bundle);
        let entries = match bundle_entries(&spec.source.bundle, answer_for(answers, &request)) {
            Ok(e) => e,
            Err(e) if e.kind == FailureKind::NotFound && spec.source.optional => {
                warn!(source = %spec.raw, "optional bundle not found; skipped");
                skipped.push(("(bundle)".to_owned(), spec.raw.clone()));
                continue;
            }
            Err(e) => {
                failures.push(Failure {
                    variable: "(bundle)".into(),
                    reference: spec.raw.clone(),
                    kind: e.kind,
                    reason: e.reason,
                });
                continue;
            }
        };
        let mut seen: HashMap<String, String> = HashMap::new();
        for (key, value) in entries {
            let name = match variable_name(&key) {
                Ok(n) => n,
                Err(reason) => {
                    failures.push(Failure {
                        variable: "(bundle)".into(),
                        reference: spec.raw.clone(),
                        kind: FailureKind::InvalidValue,
                        reason,
                    });
                    continue;
                }
            };
            if let Some(first) = seen.insert(name.clone(), key.clone()) {
                failures.push(Failure {
                    variable: name.clone(),
                    reference: spec.raw.clone(),
                    kind: FailureKind::Collision,
                    reason: format!("keys {first:?} and {key:?} both map to {name}"),
                });
                continue;
            }
            if let Err(reason) = check_value(&value) {
                failures.push(Failure {
                    variable: name,
                    reference: format!("{}#{key}", spec.raw),
                    kind: FailureKind::InvalidValue,
                    reason,
                });
                continue;
            }
            if name.starts_with("ENVSEAL_") {
                warn!(variable = %name, source = %spec.raw, "bundle key maps to an ENVSEAL_ variable; left out");
                continue;
            }
            if reference_names.contains(name.as_str()) {
                debug!(variable = %name, source = %spec.raw, "per-variable reference wins over bundle");
                continue;
            }
            let os_name = OsString::from(&name);
            if plain_names.contains(&os_name) {
                match collision {
                    Collision::Keep => {
                        info!(variable = %name, source = %spec.raw, "bundle variable kept from environment (--collision keep)");
                        continue;
                    }
                    Collision::Error => {
                        failures.push(Failure {
                            variable: name.clone(),
                            reference: spec.raw.clone(),
                            kind: FailureKind::Collision,
                            reason: format!(
                                "{name} is already set in the environment (--collision error)"
                            ),
                        });
                        continue;
                    }
                    Collision::Override => {
                        plain_names.remove(&os_name);
                        info!(variable = %name, source = %spec.raw, "bundle overrides inherited variable");
                    }
                }
            }
            if let Some(Value::Resolved { reference, .. }) = env.set(
                os_name,
                Value::Resolved {
                    value,
                    reference: spec.raw.clone(),
                },
            ) {
                debug!(variable = %name, earlier = %reference, later = %spec.raw, "later bundle wins");
            }
        }
    }

    for var in inherited.refs {
        let request = Request::for_target(&var.reference.target);
        let result = if var.reference.file {
            reference_bytes(&var.reference.target, answer_for(answers, &request)).map(|contents| {
                Value::File {
                    contents,
                    reference: var.raw.clone(),
                    path: None,
                }
            })
        } else {
            reference_value(&var.reference.target, answer_for(answers, &request))
                .and_then(|v| {
                    check_value(&v)
                        .map(|_| v)
                        .map_err(|r| FetchError::new(FailureKind::InvalidValue, r))
                })
                .map(|value| Value::Resolved {
                    value,
                    reference: var.raw.clone(),
                })
        };
        match result {
            Ok(value) => {
                env.set(OsString::from(&var.name), value);
            }
            Err(e) if e.kind == FailureKind::NotFound && var.reference.optional => {
                warn!(variable = %var.name, reference = %var.raw, reason = %e.reason, "optional reference not found; variable left out");
                skipped.push((var.name, var.raw));
            }
            Err(e) => failures.push(Failure {
                variable: var.name,
                reference: var.raw,
                kind: e.kind,
                reason: e.reason,
            }),
        }
    }

    for template in inherited.templates {
        match substitute(&template, answers) {
            Ok(value) => {
                env.set(
                    OsString::from(&template.name),
                    Value::Resolved {
                        value,
                        reference: template.describe(),
                    },
                );
            }
            Err(mut f) => failures.append(&mut f),
        }
    }

    Outcome {
        env,
        failures,
        skipped,
    }
}

/// A template's value: its text with every segment replaced by what the
/// segment's reference resolved to. Every segment must resolve (not even a
/// missing one is forgiven); each one that does not is a failure naming
/// the variable and that segment's reference.
fn substitute(
    template: &VarTemplate,
    answers: &HashMap<Request, Answer>,
) -> Result<Secret, Vec<Failure>> {
    let mut values: Vec<Secret> = Vec::new();
    let mut failures = Vec::new();
    for part in &template.parts {
        match part {
            TemplatePart::Text(_) => {}
            TemplatePart::Ref { raw, reference } => {
                let request = Request::for_target(&reference.target);
                let result = reference_value(&reference.target, answer_for(answers, &request))
                    .and_then(|v| {
                        check_value(&v)
                            .map(|_| v)
                            .map_err(|r| FetchError::new(FailureKind::InvalidValue, r))
                    });
                match result {
                    Ok(v) => values.push(v),
                    Err(e) => failures.push(Failure {
                        variable: template.name.clone(),
                        reference: raw.clone(),
                        kind: e.kind,
                        reason: e.reason,
                    }),
                }
            }
        }
    }
    if !failures.is_empty() {
        return Err(failures);
    }
    // Sized first, so that no reallocation leaves a copy of a value behind.
    let len = template
        .parts
        .iter()
        .map(|p| match p {
            TemplatePart::Text(t) => t.len(),
            TemplatePart::Ref { .. } => 0,
        })
        .sum::<usize>()
        + values.iter().map(Secret::len).sum::<usize>();
    let mut value = String::with_capacity(len);
    let mut values = values.iter();
    for part in &template.parts {
        match part {
            TemplatePart::Text(t) => value.push_str(t),
            TemplatePart::Ref { .. } => value.push_str(values.next().map_or("", Secret::expose)),
        }
    }
    Ok(Secret::new(value))
}

fn answer_for<'a>(
    answers: &'a HashMap<Request, Answer>,
    request: &Request,
) -> Result<&'a Fetched, FetchError> {
    match answers.get(request) {
        Some(Ok(f)) => Ok(f),
        Some(Err(e)) => Err(e.clone()),
        None => Err(FetchError::new(
            FailureKind::Service,
            "no answer was fetched",
        )),
    }
}

fn check_value(value: &Secret) -> Result<(), String> {
    if value.expose().contains('\0') {
        return Err("value contains a NUL byte, which an environment variable cannot hold".into());
    }
    Ok(())
}

/// Text of a fetched value: UTF-8 without NUL.
fn as_text(fetched: &Fetched) -> Result<Secret, FetchError> {
    match fetched {
        Fetched::Text(s) => Ok(s.clone()),
        Fetched::Bytes(b) => {
            let s = Secret::from_utf8(b.to_vec())
                .map_err(|r| FetchError::new(FailureKind::InvalidValue, r))?;
            Ok(s)
        }
        Fetched::Entries(_) => Err(FetchError::new(
            FailureKind::InvalidValue,
            "expected one value, got many",
        )),
    }
}

fn reference_value(
    target: &Target,
    fetched: Result<&Fetched, FetchError>,
) -> Result<Secret, FetchError> {
    let fetched = fetched?;
    match target {
        Target::Ssm(_) | Target::Kms(_) => as_text(fetched),
        Target::Secret(s) => {
            let text = as_text(fetched).map_err(|e| {
                if matches!(fetched, Fetched::Bytes(_)) {
                    FetchError::new(FailureKind::InvalidValue, "SecretBinary is not UTF-8 text")
                } else {
                    e
                }
            })?;
            match &s.key {
                None => Ok(text),
                Some(key) => json_key(text.expose(), key),
            }
        }
        Target::S3(s) => match &s.field {
            None => as_text(fetched),
            Some(field) => document_key(fetched, field),
        },
    }
}

/// What a `?file` reference resolves to: the bytes as fetched where the
/// source gives bytes (SecretBinary, an S3 object, a KMS plaintext), any
/// bytes at all; otherwise the text, as without `?file`.
fn reference_bytes(
    target: &Target,
    fetched: Result<&Fetched, FetchError>,
) -> Result<SecretBytes, FetchError> {
    let fetched = fetched?;
    let whole = match (target, fetched) {
        (Target::Secret(s), Fetched::Bytes(b)) if s.key.is_none() => Some(b),
        (Target::S3(s), Fetched::Bytes(b)) if s.field.is_none() => Some(b),
        (Target::Kms(_), Fetched::Bytes(b)) => Some(b),
        _ => None,
    };
    match whole {
        Some(bytes) => Ok(SecretBytes::new(bytes.clone())),
        None => reference_value(target, Ok(fetched)).map(SecretBytes::from),
    }
}

fn bundle_entries(
    bundle: &Bundle,
    fetched: Result<&Fetched, FetchError>,
) -> Result<Vec<(String, Secret)>, FetchError> {
    let fetched = fetched?;
    match (bundle, fetched) {
        (Bundle::SsmPath { .. }, Fetched::Entries(e)) if e.is_empty() => Err(FetchError::new(
            FailureKind::NotFound,
            "no parameters under this path",
        )),
        (Bundle::SsmPath { .. }, Fetched::Entries(e)) => Ok(e.clone()),
        (Bundle::Secret(_), f) => {
            let text = as_text(f)?;
            json_entries(text.expose())
        }
        (Bundle::S3(_), f) => document_entries(f),
        _ => Err(FetchError::new(
            FailureKind::InvalidValue,
            "unexpected answer for a bundle",
        )),
    }
}

fn invalid(reason: impl Into<String>) -> FetchError {
    FetchError::new(FailureKind::InvalidValue, reason)
}

/// Every top-level key of a JSON object, strings as-is, numbers and booleans
/// as their JSON text.
pub fn json_entries(text: &str) -> Result<Vec<(String, Secret)>, FetchError> {
    crate::document::json::parse(text.as_bytes()).map_err(|e| invalid(e.to_string()))
}

/// One top-level key of a JSON-object secret. Only that key's value must be a
/// string, number (its JSON text) or boolean: the other keys may hold
/// anything (as in ECS). A key given twice is refused, not guessed.
fn json_key(text: &str, key: &str) -> Result<Secret, FetchError> {
    use crate::document::DocumentError;
    match crate::document::json::get(text.as_bytes(), key) {
        Ok(Some(value)) => Ok(value),
        Ok(None) => Err(FetchError::new(
            FailureKind::NotFound,
            format!("key {key:?} not found in the JSON secret"),
        )),
        Err(
            e @ (DocumentError::JsonUnsupportedValue { .. } | DocumentError::JsonNulInValue { .. }),
        ) => Err(invalid(e.to_string())),
        // Not a JSON object: the document parser says why without quoting it.
        Err(e) => Err(invalid(format!("cannot take key {key:?}: {e}"))),
    }
}

fn document_entries(fetched: &Fetched) -> Result<Vec<(String, Secret)>, FetchError> {
    match fetched {
        Fetched::Bytes(b) => crate::document::parse_document(b).map_err(|e| invalid(e.to_string())),
        Fetched::Text(t) => crate::document::parse_document(t.expose().as_bytes())
            .map_err(|e| invalid(e.to_string())),
        Fetched::Entries(_) => Err(invalid("unexpected answer for a document")),
    }
}

fn document_key(fetched: &Fetched, field: &str) -> Result<Secret, FetchError> {
    document_entries(fetched)?
        .into_iter()
        .find(|(k, _)| k == field)
        .map(|(_, v)| v)
        .ok_or_else(|| {
            FetchError::new(
                FailureKind::NotFound,
                format!("key {field:?} not found in the document"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(variable_name("db/password").unwrap(), "DB_PASSWORD");
        assert_eq!(variable_name("job_title").unwrap(), "JOB_TITLE");
        assert_eq!(variable_name("a.b-c").unwrap(), "A_B_C");
        assert_eq!(
            variable_name("mysql/db01/mysql_hostname").unwrap(),
            "MYSQL_DB01_MYSQL_HOSTNAME"
        );
        assert_eq!(variable_name("ünï").unwrap(), "_N_");
        assert!(variable_name("").is_err());
        assert!(variable_name("1password").is_err());
    }

    /// `sm:ID#KEY`: the key's value as its JSON text, other keys may hold
    /// anything, a duplicate key is refused (serde_json alone would take the
    /// last one silently), and what is wrong is said without a value.
    #[test]
    fn json_key_values_and_errors() {
        let doc = r#"{"N": 1.50, "BIG": 12345678901234567890123, "T": "tok", "B": true,
                      "nested": {"a": [1, 2]}, "nil": null}"#;
        assert_eq!(json_key(doc, "N").unwrap().expose(), "1.50");
        assert_eq!(
            json_key(doc, "BIG").unwrap().expose(),
            "12345678901234567890123"
        );
        assert_eq!(json_key(doc, "T").unwrap().expose(), "tok");
        assert_eq!(json_key(doc, "B").unwrap().expose(), "true");
        let e = json_key(doc, "nested").unwrap_err();
        assert_eq!(e.kind, FailureKind::InvalidValue);
        assert!(e.reason.contains("nested"), "{}", e.reason);
        assert!(json_key(doc, "nil").is_err());
        assert_eq!(
            json_key(doc, "gone").unwrap_err().kind,
            FailureKind::NotFound
        );
        let dup = json_key(r#"{"T": "first-s3cret", "T": "second-s3cret"}"#, "T").unwrap_err();
        assert_eq!(dup.kind, FailureKind::InvalidValue);
        assert!(!dup.reason.contains("s3cret"), "{}", dup.reason);
        let not_json = json_key("plain-s3cret", "T").unwrap_err();
        assert_eq!(not_json.kind, FailureKind::InvalidValue);
        assert!(
            not_json.reason.contains("cannot take key"),
            "{}",
            not_json.reason
        );
        assert!(!not_json.reason.contains("s3cret"), "{}", not_json.reason);
    }

    /// `?file`: bytes as fetched where the source gives bytes (NUL and
    /// non-UTF-8 included), the text otherwise; `#KEY` and `#NAME` as
    /// without `?file`; `?optional` still leaves a missing one out.
    #[test]
    fn file_values() {
        use crate::plan::split_inherited;
        let binary = vec![0u8, 0xff, b'k', 0];
        let inherited = split_inherited(
            [
                ("BIN", "sm:bin?file"),
                ("BIN_TEXT", "sm:bin"),
                ("KEYED", "sm:json#K?file"),
                ("DOC", "s3://bkt/app.env#NAME?file"),
                ("OBJ", "s3://bkt/app.env?file"),
                ("PARAM", "ssm:/p?file"),
                ("GONE", "ssm:/gone?optional&file"),
            ]
            .map(|(k, v)| (OsString::from(k), OsString::from(v))),
            &[],
        );
        let mut answers: HashMap<Request, Answer> = HashMap::new();
        for r in &inherited.refs {
            let answer = match r.name.as_str() {
                "BIN" | "BIN_TEXT" => Ok(Fetched::Bytes(binary.clone().into())),
                "KEYED" => Ok(Fetched::Text(Secret::from(r#"{"K": "v", "B": 1}"#))),
                "DOC" | "OBJ" => Ok(Fetched::Bytes(b"NAME=n\n".to_vec().into())),
                "PARAM" => Ok(Fetched::Text(Secret::from("p"))),
                _ => Err(FetchError::new(FailureKind::NotFound, "no such parameter")),
            };
            answers.insert(Request::for_target(&r.reference.target), answer);
        }
        let outcome = assemble(inherited, &[], Collision::Override, &answers);
        assert_eq!(outcome.skipped.len(), 1);
        assert_eq!(outcome.skipped[0].0, "GONE");
        // Without ?file the same binary secret is refused.
        assert_eq!(outcome.failures.len(), 1, "{:?}", outcome.failures);
        assert_eq!(outcome.failures[0].variable, "BIN_TEXT");
        let files: HashMap<&str, &[u8]> = outcome
            .env
            .files()
            .map(|(n, c, _)| (n, c.expose()))
            .collect();
        assert_eq!(files.len(), 5);
        assert_eq!(files["BIN"], &binary[..]);
        assert_eq!(files["KEYED"], b"v");
        assert_eq!(files["DOC"], b"n");
        assert_eq!(files["OBJ"], b"NAME=n\n");
        assert_eq!(files["PARAM"], b"p");
        assert_eq!(outcome.env.resolved().count(), 0);
        // No path until process::memfile makes the file.
        assert_eq!(outcome.env.var("PARAM"), None);
    }
}
