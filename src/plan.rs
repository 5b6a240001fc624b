//! The fetch plan: which inherited variables are references
//! ([`split_inherited`]), every distinct thing to fetch, once ([`requests`],
//! [`Plan`]: identical requests collapse; backends then batch them by
//! service and region), and what a backend hands back for each request
//! ([`Fetched`], [`Answer`]), the contract between `backend/` and
//! `environment`.

use std::collections::BTreeSet;
use std::ffi::OsString;

use zeroize::Zeroizing;

use crate::error::{Failure, FailureKind, FetchError};
use crate::glob::Glob;
use crate::reference::template::{self, Part};
use crate::reference::{
    self, Bundle, KmsBlob, Reference, Role, S3Object, SecretVersion, Source, SsmParam, SsmPath,
    Target,
};
use crate::secret::Secret;

/// An inherited variable whose value is a reference.
#[derive(Debug)]
pub struct VarRef {
    pub name: String,
    pub raw: String,
    pub reference: Reference,
}

/// An inherited variable whose value is a template: literal text with
/// `{{REF}}` segments, every one of which must resolve.
#[derive(Debug)]
pub struct VarTemplate {
    pub name: String,
    pub parts: Vec<TemplatePart>,
}

#[derive(Debug)]
pub enum TemplatePart {
    /// Literal text of the value, kept as it is.
    Text(String),
    /// A `{{REF}}` segment: the reference as written (trimmed), parsed.
    Ref { raw: String, reference: Reference },
}

impl VarTemplate {
    /// The segments' references, in order.
    pub fn segments(&self) -> impl Iterator<Item = (&str, &Reference)> {
        self.parts.iter().filter_map(|p| match p {
            TemplatePart::Ref { raw, reference } => Some((raw.as_str(), reference)),
            TemplatePart::Text(_) => None,
        })
    }

    /// What `check` and logs show for the variable: its references, each in
    /// braces; never the literal text (which could hold anything).
    pub fn describe(&self) -> String {
        self.segments()
            .map(|(raw, _)| format!("{{{{{raw}}}}}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// The inherited environment, split.
#[derive(Debug, Default)]
pub struct Inherited {
    pub plain: Vec<(OsString, OsString)>,
    pub refs: Vec<VarRef>,
    /// Values with `{{REF}}` segments.
    pub templates: Vec<VarTemplate>,
    /// Malformed references, already as failures.
    pub failures: Vec<Failure>,
}

/// Splits the inherited environment into plain variables, references and
/// templates; drops every `ENVSEAL_*` variable. A variable whose name
/// matches an `ignore` pattern is plain, whatever its value.
///
/// A value that starts like a reference is a reference, whatever else is
/// wrong with it: when it (or its variable's name) is not UTF-8 it is a
/// malformed reference, never passed through as a plain string. Otherwise a
/// value with a `{{REF}}` segment is a template.
pub fn split_inherited(
    vars: impl IntoIterator<Item = (OsString, OsString)>,
    ignore: &[Glob],
) -> Inherited {
    use std::os::unix::ffi::OsStrExt;
    let mut out = Inherited::default();
    for (name, value) in vars {
        if name.as_bytes().starts_with(b"ENVSEAL_") {
            continue;
        }
        if !ignore.is_empty() {
            let lossy = name.to_string_lossy();
            if ignore.iter().any(|g| g.matches(&lossy)) {
                out.plain.push((name, value));
                continue;
            }
        }
        match (name.to_str(), value.to_str()) {
            (Some(n), Some(v)) if reference::looks_like_reference(v) => {
                match reference::parse_reference(v) {
                    Ok(r) => out.refs.push(VarRef {
                        name: n.to_owned(),
                        raw: v.to_owned(),
                        reference: r,
                    }),
                    Err(e) => out.failures.push(Failure {
                        variable: n.to_owned(),
                        reference: v.to_owned(),
                        kind: FailureKind::Malformed,
                        reason: format!("malformed reference: {e}"),
                    }),
                }
            }
            (Some(n), Some(v)) if v.contains("{{") => match split_template(n, v) {
                Ok(Some(t)) => out.templates.push(t),
                Ok(None) => out.plain.push((name, value)),
                Err(failures) => out.failures.extend(failures),
            },
            (Some(_), Some(_)) => out.plain.push((name, value)),
            (n, v)
                if reference::looks_like_reference(&value.to_string_lossy())
                    || template::has_reference_segment(&value.to_string_lossy()) =>
            {
                let lossy = value.to_string_lossy();
                out.failures.push(Failure {
                    variable: name.to_string_lossy().into_owned(),
                    // A template's text is not a reference: never quoted.
                    reference: if reference::looks_like_reference(&lossy) {
                        lossy.into_owned()
                    } else {
                        "(template)".to_owned()
                    },
                    kind: FailureKind::Malformed,
                    reason: if v.is_none() {
                        "malformed reference: not valid UTF-8".to_owned()
                    } else {
                        debug_assert!(n.is_none());
                        "malformed reference: the variable name is not valid UTF-8".to_owned()
                    },
                });
            }
            _ => out.plain.push((name, value)),
        }
    }
    out
}

/// A value with `{{` as a template: `Ok(None)` when it has no reference
/// segment (plain), else every segment parsed, or every malformed one as a
/// failure (named by the variable and the segment, never the value).
/// `?optional` is refused inside a template: every segment must resolve.
fn split_template(name: &str, value: &str) -> Result<Option<VarTemplate>, Vec<Failure>> {
    let failure = |reference: &str, reason: String| Failure {
        variable: name.to_owned(),
        reference: reference.to_owned(),
        kind: FailureKind::Malformed,
        reason,
    };
    let parts = match template::parse_template(value) {
        Ok(None) => return Ok(None),
        Ok(Some(parts)) => parts,
        Err(e) => {
            return Err(vec![failure(
                "(template)",
                format!("malformed template: {e}"),
            )])
        }
    };
    let mut failures = Vec::new();
    let mut out = Vec::with_capacity(parts.len());
    for part in parts {
        match part {
            Part::Text(t) => out.push(TemplatePart::Text(t.to_owned())),
            Part::Ref(raw) => match reference::parse_reference(raw) {
                Ok(r) if r.optional => failures.push(failure(
                    raw,
                    "?optional is not allowed inside a template: every segment must resolve".into(),
                )),
                Ok(r) if r.file => failures.push(failure(
                    raw,
                    "?file is not allowed inside a template: a template's value is text in the variable itself".into(),
                )),
                Ok(reference) => out.push(TemplatePart::Ref {
                    raw: raw.to_owned(),
                    reference,
                }),
                Err(e) => failures.push(failure(raw, format!("malformed reference: {e}"))),
            },
        }
    }
    if failures.is_empty() {
        Ok(Some(VarTemplate {
            name: name.to_owned(),
            parts: out,
        }))
    } else {
        Err(failures)
    }
}

/// `--role-arn`: every reference without a role of its own is read through
/// `role`.
pub fn default_role(refs: &mut [VarRef], role: Option<&Role>) {
    if let Some(role) = role {
        for r in refs {
            r.reference.target.default_role(role);
        }
    }
}

/// `--role-arn` for templates: every segment without a role of its own is
/// read through `role`.
pub fn default_template_role(templates: &mut [VarTemplate], role: Option<&Role>) {
    let Some(role) = role else {
        return;
    };
    for part in templates.iter_mut().flat_map(|t| t.parts.iter_mut()) {
        if let TemplatePart::Ref { reference, .. } = part {
            reference.target.default_role(role);
        }
    }
}

/// A bundle source as given, parsed.
#[derive(Debug)]
pub struct SourceSpec {
    pub raw: String,
    pub source: Source,
}

/// Every request needed by these references and bundles (not deduplicated).
pub fn requests(refs: &[VarRef], sources: &[SourceSpec]) -> Vec<Request> {
    let mut out: Vec<Request> = sources
        .iter()
        .map(|s| Request::for_bundle(&s.source.bundle))
        .collect();
    out.extend(
        refs.iter()
            .map(|r| Request::for_target(&r.reference.target)),
    );
    out
}

/// Every request the templates' segments need (not deduplicated: they
/// collapse with everything else in [`Plan::new`]).
pub fn template_requests(templates: &[VarTemplate]) -> impl Iterator<Item = Request> + '_ {
    templates
        .iter()
        .flat_map(|t| t.segments())
        .map(|(_, r)| Request::for_target(&r.target))
}

/// What a backend fetched for one request, before any decoding by reference.
pub enum Fetched {
    /// A text value (SSM parameter, SecretString).
    Text(Secret),
    /// Raw bytes (SecretBinary, a decrypted S3 object, a KMS plaintext).
    Bytes(Zeroizing<Vec<u8>>),
    /// Named values (an SSM path: names relative to the path).
    Entries(Vec<(String, Secret)>),
}

pub type Answer = Result<Fetched, FetchError>;

/// One thing to fetch from AWS.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Request {
    SsmParam(SsmParam),
    SsmPath {
        path: String,
        region: Option<String>,
        role: Option<Role>,
    },
    Secret(SecretVersion),
    S3(S3Object),
    Kms(KmsBlob),
}

impl Request {
    pub fn for_target(target: &Target) -> Request {
        match target {
            Target::Ssm(p) => Request::SsmParam(p.clone()),
            Target::Secret(s) => Request::Secret(s.version.clone()),
            Target::S3(s) => Request::S3(s.object.clone()),
            Target::Kms(k) => Request::Kms(k.clone()),
        }
    }

    pub fn for_bundle(bundle: &Bundle) -> Request {
        match bundle {
            Bundle::SsmPath { path, region, role } => Request::SsmPath {
                path: path.clone(),
                region: region.clone(),
                role: role.clone(),
            },
            Bundle::Secret(v) => Request::Secret(v.clone()),
            Bundle::S3(o) => Request::S3(o.clone()),
        }
    }

    /// The role the request is read through (`None`: the base identity).
    pub fn role(&self) -> Option<&Role> {
        match self {
            Request::SsmParam(p) => p.role.as_ref(),
            Request::SsmPath { role, .. } => role.as_ref(),
            Request::Secret(v) => v.role.as_ref(),
            Request::S3(o) => o.role.as_ref(),
            Request::Kms(k) => k.role.as_ref(),
        }
    }

    /// A short description for logs and timeouts (no values: requests hold none).
    pub fn describe(&self) -> String {
        match self {
            Request::SsmParam(p) => format!("ssm:{}", p.api_name()),
            Request::SsmPath { path, .. } => format!("ssm:{path}"),
            Request::Secret(v) => format!("sm:{}", v.secret_id),
            Request::S3(o) => format!("s3://{}/{}", o.bucket, o.key),
            Request::Kms(_) => "kms:…".to_owned(),
        }
    }
}

/// The deduplicated set of requests, split by backend.
#[derive(Debug, Default)]
pub struct Plan {
    pub ssm_params: Vec<SsmParam>,
    pub ssm_paths: Vec<SsmPath>,
    pub secrets: Vec<SecretVersion>,
    pub s3_objects: Vec<S3Object>,
    pub kms_blobs: Vec<KmsBlob>,
}

impl Plan {
    pub fn new<'a>(requests: impl IntoIterator<Item = &'a Request>) -> Plan {
        let unique: BTreeSet<&Request> = requests.into_iter().collect();
        let mut plan = Plan::default();
        for request in unique {
            match request.clone() {
                Request::SsmParam(p) => plan.ssm_params.push(p),
                Request::SsmPath { path, region, role } => {
                    plan.ssm_paths.push(SsmPath { path, region, role })
                }
                Request::Secret(v) => plan.secrets.push(v),
                Request::S3(o) => plan.s3_objects.push(o),
                Request::Kms(k) => plan.kms_blobs.push(k),
            }
        }
        plan
    }

    /// The plan split by the role its requests are read through (`None`:
    /// the base identity), each part fetched with that role's credentials.
    pub fn by_role(&self) -> std::collections::BTreeMap<Option<Role>, Plan> {
        let mut groups: std::collections::BTreeMap<Option<Role>, Vec<Request>> =
            std::collections::BTreeMap::new();
        for request in self.requests() {
            groups
                .entry(request.role().cloned())
                .or_default()
                .push(request);
        }
        groups
            .into_iter()
            .map(|(role, requests)| (role, Plan::new(&requests)))
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn len(&self) -> usize {
        self.ssm_params.len()
            + self.ssm_paths.len()
            + self.secrets.len()
            + self.s3_objects.len()
            + self.kms_blobs.len()
    }

    pub fn requests(&self) -> Vec<Request> {
        let mut all = Vec::with_capacity(self.len());
        all.extend(self.ssm_params.iter().cloned().map(Request::SsmParam));
        all.extend(self.ssm_paths.iter().cloned().map(|p| Request::SsmPath {
            path: p.path,
            region: p.region,
            role: p.role,
        }));
        all.extend(self.secrets.iter().cloned().map(Request::Secret));
        all.extend(self.s3_objects.iter().cloned().map(Request::S3));
        all.extend(self.kms_blobs.iter().cloned().map(Request::Kms));
        all
    }
}

/// Splits `items` into batches of at most `size` such that no batch holds two
/// items with the same `key` (so that a batch answer can be matched by key).
pub fn batches<T: Clone, K: PartialEq>(
    items: &[T],
    size: usize,
    key: impl Fn(&T) -> K,
) -> Vec<Vec<T>> {
    let mut out: Vec<Vec<T>> = Vec::new();
    for item in items {
        let k = key(item);
        match out
            .iter_mut()
            .find(|b| b.len() < size && !b.iter().any(|other| key(other) == k))
        {
            Some(batch) => batch.push(item.clone()),
            None => out.push(vec![item.clone()]),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::parse_reference;

    #[test]
    fn envseal_vars_are_dropped_and_refs_split() {
        let vars = vec![
            ("ENVSEAL_FROM".into(), "ssm:/x/".into()),
            ("A".into(), "plain".into()),
            ("B".into(), "ssm:/b".into()),
            ("C".into(), "ssm:".into()),
        ];
        let inherited = split_inherited(vars, &[]);
        assert_eq!(
            inherited.plain,
            vec![(OsString::from("A"), OsString::from("plain"))]
        );
        assert_eq!(inherited.refs.len(), 1);
        assert_eq!(inherited.refs[0].name, "B");
        assert_eq!(inherited.failures.len(), 1);
        assert_eq!(inherited.failures[0].variable, "C");
    }

    /// Regression (found in review): a reference that is not UTF-8, or whose
    /// variable name is not, used to pass through to the application as a
    /// plain string (fail open); an `ENVSEAL_*` name that is not UTF-8 used to
    /// reach the application.
    #[test]
    fn non_utf8_references_are_malformed_not_plain() {
        use std::os::unix::ffi::OsStringExt;
        let vars = vec![
            (
                OsString::from("BAD_VALUE"),
                OsString::from_vec(b"ssm:/prod/\xff".to_vec()),
            ),
            (
                OsString::from_vec(b"BAD_\xffNAME".to_vec()),
                OsString::from("sm:prod/api#TOKEN"),
            ),
            (
                OsString::from_vec(b"ENVSEAL_\xff".to_vec()),
                OsString::from("x"),
            ),
            (
                OsString::from("BAD_TEMPLATE"),
                OsString::from_vec(b"pw=\xff{{ ssm:/prod/db}}".to_vec()),
            ),
            (
                OsString::from("BINARY_PLAIN"),
                OsString::from_vec(b"\xff\xfe".to_vec()),
            ),
        ];
        let inherited = split_inherited(vars, &[]);
        assert!(inherited.refs.is_empty());
        assert_eq!(inherited.failures.len(), 3, "{:?}", inherited.failures);
        assert_eq!(inherited.failures[2].variable, "BAD_TEMPLATE");
        assert_eq!(inherited.failures[2].reference, "(template)");
        assert_eq!(inherited.failures[0].variable, "BAD_VALUE");
        assert!(inherited.failures[0].reason.contains("UTF-8"));
        assert_eq!(inherited.failures[0].kind, FailureKind::Malformed);
        assert!(inherited.failures[1].reason.contains("name"));
        // Only the non-reference binary value passes through.
        assert_eq!(inherited.plain.len(), 1);
        assert_eq!(inherited.plain[0].0, OsString::from("BINARY_PLAIN"));
    }

    fn vars(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        pairs
            .iter()
            .map(|(k, v)| (OsString::from(k), OsString::from(v)))
            .collect()
    }

    #[test]
    fn ignored_names_are_plain_whatever_their_value() {
        let ignore = [Glob::parse("MODEL_*").unwrap(), Glob::parse("T?L").unwrap()];
        let inherited = split_inherited(
            vars(&[
                ("MODEL_URI", "s3://models/v3"),
                ("MODEL_BAD", "ssm:"),
                ("TPL", "{{ssm:/x}}"),
                ("DB", "ssm:/db"),
                ("ENVSEAL_IGNORE", "MODEL_*"),
            ]),
            &ignore,
        );
        let plain: Vec<_> = inherited
            .plain
            .iter()
            .map(|(k, _)| k.to_str().unwrap())
            .collect();
        assert_eq!(plain, ["MODEL_URI", "MODEL_BAD", "TPL"]);
        assert_eq!(inherited.refs.len(), 1);
        assert!(inherited.failures.is_empty() && inherited.templates.is_empty());
    }

    #[test]
    fn templates_are_split_and_their_segments_planned() {
        let inherited = split_inherited(
            vars(&[
                (
                    "URL",
                    "pg://{{sm:db#user}}:{{ sm:db#password }}@{{ssm:///db/host}}",
                ),
                ("GO", "{{ .Foo }}"),
                ("REF", "ssm:/db/host"),
                ("OPT", "{{ssm:/a?optional}}"),
                ("BAD", "{{ssm:/a}}{{sm:}}"),
                ("OPEN", "x{{ ssm:/a"),
            ]),
            &[],
        );
        assert_eq!(inherited.plain.len(), 1, "GO is plain");
        assert_eq!(inherited.templates.len(), 1);
        let t = &inherited.templates[0];
        assert_eq!(t.name, "URL");
        assert_eq!(
            t.describe(),
            "{{sm:db#user}} {{sm:db#password}} {{ssm:///db/host}}"
        );
        let failed: Vec<(&str, &str)> = inherited
            .failures
            .iter()
            .map(|f| (f.variable.as_str(), f.reference.as_str()))
            .collect();
        assert_eq!(
            failed,
            [
                ("OPT", "ssm:/a?optional"),
                ("BAD", "sm:"),
                ("OPEN", "(template)")
            ]
        );
        assert!(inherited.failures[0].reason.contains("optional"));
        let mut all = requests(&inherited.refs, &[]);
        all.extend(template_requests(&inherited.templates));
        assert_eq!(all.len(), 4);
        // The secret twice (two keys), the parameter by template and by
        // reference: two requests.
        assert_eq!(Plan::new(&all).len(), 2);
    }

    /// `--role-arn` reaches template segments as it reaches references; a
    /// segment's own `?role-arn=` stays.
    #[test]
    fn template_segments_take_the_default_role() {
        let own = "arn:aws:iam::111111111111:role/own";
        let mut inherited = split_inherited(
            vars(&[(
                "URL",
                &format!("{{{{ssm:/a}}}}-{{{{sm:b?role-arn={own}}}}}"),
            )]),
            &[],
        );
        let default = Role {
            arn: "arn:aws:iam::222222222222:role/default".into(),
            external_id: None,
        };
        default_template_role(&mut inherited.templates, Some(&default));
        let roles: Vec<String> = template_requests(&inherited.templates)
            .map(|r| r.role().map(|r| r.arn.clone()).unwrap_or_default())
            .collect();
        assert_eq!(roles, [default.arn.clone(), own.to_owned()]);
    }

    #[test]
    fn file_is_refused_inside_a_template() {
        let inherited = split_inherited(
            vars(&[("T", "x{{sm:a#K?file}}"), ("U", "{{ssm:/a?file=false}}")]),
            &[],
        );
        assert_eq!(inherited.failures.len(), 1, "{:?}", inherited.failures);
        assert_eq!(inherited.failures[0].variable, "T");
        assert_eq!(inherited.failures[0].reference, "sm:a#K?file");
        assert!(inherited.failures[0].reason.contains("?file"));
        assert_eq!(inherited.templates.len(), 1);
    }

    #[test]
    fn identical_references_are_fetched_once() {
        let refs = [
            "ssm:/a",
            "ssm:/a",
            "ssm:/a:2",
            "sm:x#A",
            "sm:x#B",
            "sm:x?version-stage=AWSPREVIOUS",
        ];
        let requests: Vec<Request> = refs
            .iter()
            .map(|r| Request::for_target(&parse_reference(r).unwrap().target))
            .collect();
        let plan = Plan::new(&requests);
        assert_eq!(plan.ssm_params.len(), 2);
        assert_eq!(plan.secrets.len(), 2);
        assert_eq!(plan.len(), 4);
    }

    #[test]
    fn batches_respect_size_and_unique_keys() {
        let items: Vec<(u32, u32)> = (0..25).map(|i| (i, i)).chain([(3, 99), (3, 100)]).collect();
        let b = batches(&items, 10, |x| x.0);
        assert_eq!(b.iter().map(Vec::len).sum::<usize>(), 27);
        assert!(b.iter().all(|batch| batch.len() <= 10));
        for batch in &b {
            let mut keys: Vec<u32> = batch.iter().map(|x| x.0).collect();
            keys.sort();
            keys.dedup();
            assert_eq!(keys.len(), batch.len());
        }
        assert_eq!(b.len(), 4);
    }
}
