//! The reference grammar of PRODUCT.md §3 and §4, parsed into values. Pure:
//! no AWS, no environment. Every malformed form is an error with a reason;
//! error messages quote the reference (never a value — a reference is a
//! pointer, not a secret).

use std::borrow::Cow;
use std::fmt;

pub mod compat;
pub mod template;

/// One parsed per-variable reference (`DB_PASSWORD=ssm:/prod/db/password`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub target: Target,
    /// `?optional`: a missing secret leaves the variable out instead of failing.
    pub optional: bool,
    /// `?file`: the value goes into an in-memory file and the variable holds
    /// its path (`process::memfile`).
    pub file: bool,
}

/// What a reference points at.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    Ssm(SsmParam),
    Secret(SecretRef),
    S3(S3Ref),
    Kms(KmsBlob),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SsmParam {
    /// Parameter name as the API wants it (`/prod/db/password` or `plain`).
    pub name: String,
    /// `:VERSION` or `:LABEL`, without the colon.
    pub selector: Option<String>,
    /// From an ARN; `None` means the configured region.
    pub region: Option<String>,
    /// From an ARN (`aws`, `aws-cn`, …); `None` means the configured one.
    pub partition: Option<String>,
    /// From an ARN (a parameter shared from another account); `None` (or an
    /// empty ARN field) means the caller's account.
    pub account: Option<String>,
    /// `?role-arn=` (or `--role-arn`): read with the role's credentials.
    pub role: Option<Role>,
}

impl SsmParam {
    /// The name with its selector, as GetParameter(s) takes it.
    pub fn api_name(&self) -> String {
        match &self.selector {
            Some(s) => format!("{}:{}", self.name, s),
            None => self.name.clone(),
        }
    }

    /// What envseal sends as `Name`: for a reference given as an ARN with an
    /// account, that ARN (with its selector), so that a parameter shared from
    /// another account is read from that account, not looked up by name in
    /// the caller's own; otherwise [`SsmParam::api_name`].
    pub fn request_name(&self) -> String {
        let (Some(account), Some(region)) = (&self.account, &self.region) else {
            return self.api_name();
        };
        let partition = self.partition.as_deref().unwrap_or("aws");
        let slash = if self.name.starts_with('/') { "" } else { "/" };
        let arn = format!(
            "arn:{partition}:ssm:{region}:{account}:parameter{slash}{}",
            self.name
        );
        match &self.selector {
            Some(s) => format!("{arn}:{s}"),
            None => arn,
        }
    }
}

/// One Secrets Manager secret version.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SecretVersion {
    /// Name, full ARN or partial ARN, as GetSecretValue takes it.
    pub secret_id: String,
    pub version_stage: Option<String>,
    pub version_id: Option<String>,
    /// From an ARN or `?region=`; `None` means the configured region.
    pub region: Option<String>,
    /// `?role-arn=` (or `--role-arn`): read with the role's credentials.
    pub role: Option<Role>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SecretRef {
    pub version: SecretVersion,
    /// `#KEY`: one top-level key of a JSON SecretString.
    pub key: Option<String>,
}

/// How to decode an S3 object body (`?encryption=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Encryption {
    /// Detect: envelope metadata, then KMS ciphertext, then plaintext.
    Auto,
    Kms,
    Envelope,
    None,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct S3Object {
    pub bucket: String,
    pub key: String,
    pub encryption: Encryption,
    /// `?region=`: the bucket's region; `None`: the configured one (and a
    /// redirect from S3 says where the bucket is).
    pub region: Option<String>,
    /// `?role-arn=` (or `--role-arn`): read with the role's credentials.
    pub role: Option<Role>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct S3Ref {
    pub object: S3Object,
    /// `#NAME`: one key of the object's JSON or dotenv document.
    pub field: Option<String>,
}

/// An inline KMS ciphertext blob (`kms:BASE64`), decoded.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KmsBlob {
    pub ciphertext: Vec<u8>,
    /// `?region=`: where the key is; `None`: the configured region.
    pub region: Option<String>,
    /// `?role-arn=` (or `--role-arn`): decrypted with the role's credentials.
    pub role: Option<Role>,
}

impl fmt::Debug for KmsBlob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KmsBlob({} bytes)", self.ciphertext.len())
    }
}

/// A role to read a reference with (`?role-arn=ARN[&external-id=ID]`, or
/// `--role-arn` for every reference without one): STS AssumeRole once per
/// distinct role and external id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Role {
    /// `arn:PARTITION:iam::ACCOUNT:role/[PATH/]NAME`, validated.
    pub arn: String,
    pub external_id: Option<String>,
}

impl Role {
    /// A role from an ARN and an optional external id, both validated
    /// ([`parse_role_arn`], [`validate_external_id`]).
    pub fn new(arn: &str, external_id: Option<&str>) -> Result<Role, ParseError> {
        parse_role_arn(arn)?;
        if let Some(id) = external_id {
            validate_external_id(id)?;
        }
        Ok(Role {
            arn: arn.to_owned(),
            external_id: external_id.map(str::to_owned),
        })
    }

    /// The role's account (12 digits), from its ARN.
    pub fn account(&self) -> &str {
        self.arn.split(':').nth(4).unwrap_or("")
    }

    /// The role's partition (`aws`, `aws-cn`, `aws-us-gov`), from its ARN.
    pub fn partition(&self) -> &str {
        self.arn.split(':').nth(1).unwrap_or("aws")
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.arn)
    }
}

/// Characters of IAM names, session names and (with `:` and `/`) external ids.
fn iam_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_+=,.@-".contains(c)
}

/// `arn:PARTITION:iam::ACCOUNT:role/[PATH/]NAME` with PARTITION `aws`,
/// `aws-cn` or `aws-us-gov` and a 12-digit ACCOUNT.
pub fn parse_role_arn(arn: &str) -> Result<(), ParseError> {
    let bad = |why: &str| {
        err(format!(
            "invalid role ARN '{arn}': {why} (expected arn:aws:iam::ACCOUNT:role/NAME)"
        ))
    };
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if parts.len() != 6 || parts[0] != "arn" {
        return bad("not an ARN");
    }
    if !matches!(parts[1], "aws" | "aws-cn" | "aws-us-gov") {
        return bad("the partition is not aws, aws-cn or aws-us-gov");
    }
    if parts[2] != "iam" || !parts[3].is_empty() {
        return bad("not an IAM ARN");
    }
    if parts[4].len() != 12 || !parts[4].bytes().all(|b| b.is_ascii_digit()) {
        return bad("the account is not 12 digits");
    }
    let Some(path_name) = parts[5].strip_prefix("role/") else {
        return bad("not a role");
    };
    if path_name.len() > 512
        || path_name
            .split('/')
            .any(|seg| seg.is_empty() || !seg.chars().all(iam_name_char))
        || path_name.rsplit('/').next().is_some_and(|n| n.len() > 64)
    {
        return bad("invalid role name or path");
    }
    Ok(())
}

/// An STS external id: 2 to 1224 characters of `[\w+=,.@:/-]`.
pub fn validate_external_id(id: &str) -> Result<(), ParseError> {
    if !(2..=1224).contains(&id.len())
        || !id.chars().all(|c| iam_name_char(c) || c == ':' || c == '/')
    {
        return err("invalid external id (2 to 1224 characters of letters, digits and +=,.@:/_-)");
    }
    Ok(())
}

/// An STS role session name: 2 to 64 characters of `[\w+=,.@-]`.
pub fn valid_session_name(name: &str) -> bool {
    (2..=64).contains(&name.len()) && name.chars().all(iam_name_char)
}

/// The shape of an AWS region: `us-east-1`, `eu-central-2`, `us-gov-west-1`,
/// `cn-north-1`: lower-case words joined by `-`, two letters first, a
/// number last.
pub fn valid_region(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    region.len() <= 32
        && parts.len() >= 3
        && parts[0].len() == 2
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].len() <= 2
        && !parts[parts.len() - 1].is_empty()
        && parts[parts.len() - 1].bytes().all(|b| b.is_ascii_digit())
}

/// An SSM path bundle (`ssm:/PATH/`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SsmPath {
    /// Ends with `/`.
    pub path: String,
    pub region: Option<String>,
    pub role: Option<Role>,
}

/// A bundle source (`--from`, `ENVSEAL_FROM`), which expands to many variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub bundle: Bundle,
    pub optional: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Bundle {
    /// Every parameter under `path` (which ends with `/`), recursively.
    SsmPath {
        path: String,
        region: Option<String>,
        role: Option<Role>,
    },
    /// Every top-level key of a JSON-object secret.
    Secret(SecretVersion),
    /// Every key of a JSON-object or dotenv document.
    S3(S3Object),
}

impl Target {
    /// Reads through `role` unless the reference names a role of its own.
    pub fn default_role(&mut self, role: &Role) {
        let slot = match self {
            Target::Ssm(p) => &mut p.role,
            Target::Secret(s) => &mut s.version.role,
            Target::S3(s) => &mut s.object.role,
            Target::Kms(k) => &mut k.role,
        };
        slot.get_or_insert_with(|| role.clone());
    }
}

impl Bundle {
    /// Reads through `role` unless the source names a role of its own.
    pub fn default_role(&mut self, role: &Role) {
        let slot = match self {
            Bundle::SsmPath { role, .. } => role,
            Bundle::Secret(v) => &mut v.role,
            Bundle::S3(o) => &mut o.role,
        };
        slot.get_or_insert_with(|| role.clone());
    }
}

/// Why a reference did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub reason: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

fn err<T>(reason: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError {
        reason: reason.into(),
    })
}

const ARN_PARTITIONS: [&str; 4] = ["arn:aws:", "arn:aws-cn:", "arn:aws-us-gov:", "arn:aws-iso:"];

/// True when `value` is meant as a reference: it starts with one of the
/// schemes. Such a value must then parse; a malformed one is an error, never
/// passed through as a plain string.
pub fn looks_like_reference(value: &str) -> bool {
    value.starts_with("ssm:")
        || value.starts_with("sm:")
        || value.starts_with("s3://")
        || value.starts_with("kms:")
        || arn_service(value).is_some_and(|s| s == "ssm" || s == "secretsmanager")
        || compat::is_vals(value)
}

fn arn_service(value: &str) -> Option<&str> {
    ARN_PARTITIONS
        .iter()
        .find_map(|p| value.strip_prefix(p))
        .and_then(|rest| rest.split(':').next())
}

/// Query options after `?`, and the `#` fragment.
#[derive(Default)]
struct Suffix {
    fragment: Option<String>,
    optional: bool,
    file: bool,
    version_stage: Option<String>,
    version_id: Option<String>,
    encryption: Option<Encryption>,
    /// `?region=`, validated.
    region: Option<String>,
    /// `?role-arn=` with `&external-id=`, validated.
    role: Option<Role>,
}

/// Splits `BODY[#FRAGMENT][?QUERY]` or `BODY[?QUERY][#FRAGMENT]`.
fn split_suffix(input: &str) -> Result<(&str, Suffix), ParseError> {
    let q = input.find('?');
    let h = input.find('#');
    let (body, fragment, query) = match (q, h) {
        (None, None) => (input, None, None),
        (None, Some(h)) => (&input[..h], Some(&input[h + 1..]), None),
        (Some(q), None) => (&input[..q], None, Some(&input[q + 1..])),
        (Some(q), Some(h)) if h < q => (&input[..h], Some(&input[h + 1..q]), Some(&input[q + 1..])),
        (Some(q), Some(h)) => (&input[..q], Some(&input[h + 1..]), Some(&input[q + 1..h])),
    };
    let mut suffix = Suffix::default();
    let mut role_arn: Option<&str> = None;
    let mut external_id: Option<&str> = None;
    if let Some(f) = fragment {
        if f.is_empty() {
            return err("empty key after '#'");
        }
        suffix.fragment = Some(f.to_owned());
    }
    if let Some(query) = query {
        if query.is_empty() {
            return err("empty options after '?'");
        }
        for item in query.split('&') {
            let (k, v) = match item.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (item, None),
            };
            match (k, v) {
                ("optional", None | Some("true")) => suffix.optional = true,
                ("optional", Some("false")) => {}
                ("file", None | Some("true")) => suffix.file = true,
                ("file", Some("false")) => {}
                ("version-stage", Some(_)) if suffix.version_stage.is_some() => {
                    return err("option 'version-stage' given twice")
                }
                ("version-id", Some(_)) if suffix.version_id.is_some() => {
                    return err("option 'version-id' given twice")
                }
                ("encryption", Some(_)) if suffix.encryption.is_some() => {
                    return err("option 'encryption' given twice")
                }
                ("version-stage", Some(v)) if !v.is_empty() => {
                    suffix.version_stage = Some(v.to_owned())
                }
                ("version-id", Some(v)) if !v.is_empty() => suffix.version_id = Some(v.to_owned()),
                ("encryption", Some(v)) => {
                    suffix.encryption = Some(match v {
                        "kms" => Encryption::Kms,
                        "envelope" => Encryption::Envelope,
                        "none" => Encryption::None,
                        "auto" => Encryption::Auto,
                        _ => {
                            return err(format!(
                                "unknown encryption '{v}' (expected kms, envelope, none or auto)"
                            ))
                        }
                    })
                }
                ("region", Some(_)) if suffix.region.is_some() => {
                    return err("option 'region' given twice")
                }
                ("role-arn", Some(_)) if role_arn.is_some() => {
                    return err("option 'role-arn' given twice")
                }
                ("external-id", Some(_)) if external_id.is_some() => {
                    return err("option 'external-id' given twice")
                }
                ("region", Some(v)) if valid_region(v) => suffix.region = Some(v.to_owned()),
                ("region", Some(v)) if !v.is_empty() => {
                    return err(format!(
                        "invalid region '{v}' (expected a region like us-east-1)"
                    ))
                }
                ("role-arn", Some(v)) if !v.is_empty() => role_arn = Some(v),
                ("external-id", Some(v)) if !v.is_empty() => external_id = Some(v),
                ("version-stage" | "version-id" | "region" | "role-arn" | "external-id", _) => {
                    return err(format!("option '{k}' needs a value"))
                }
                _ => return err(format!("unknown option '{item}'")),
            }
        }
    }
    suffix.role = match (role_arn, external_id) {
        (Some(arn), id) => Some(Role::new(arn, id)?),
        (None, Some(_)) => return err("option 'external-id' needs 'role-arn'"),
        (None, None) => None,
    };
    Ok((body, suffix))
}

impl Suffix {
    fn refuse_versions(&self, what: &str) -> Result<(), ParseError> {
        if self.version_stage.is_some() || self.version_id.is_some() {
            return err(format!(
                "{what} references take no version-stage/version-id"
            ));
        }
        Ok(())
    }
    fn refuse_encryption(&self, what: &str) -> Result<(), ParseError> {
        if self.encryption.is_some() {
            return err(format!(
                "{what} references take no encryption option (only s3:// does)"
            ));
        }
        Ok(())
    }
    /// `?file` is per variable: a bundle is many variables.
    fn refuse_file(&self) -> Result<(), ParseError> {
        if self.file {
            return err("'file' puts one variable's value into an in-memory file: a bundle (--from / ENVSEAL_FROM) cannot take it; give the variable its own reference with ?file");
        }
        Ok(())
    }

    fn refuse_fragment(&self, what: &str) -> Result<(), ParseError> {
        if self.fragment.is_some() {
            return err(format!("{what} references take no '#KEY'"));
        }
        Ok(())
    }
}

/// Parses a per-variable reference, in envseal's syntax or another tool's
/// ([`compat::normalize`]).
pub fn parse_reference(input: &str) -> Result<Reference, ParseError> {
    if input.chars().any(|c| c.is_control()) {
        return err("reference contains a control character");
    }
    read_as(compat::normalize(input)?, parse_own_reference)
}

/// Parses `normalized` with `parse`; when it was rewritten from another
/// tool's form, an error says what it was read as (unless that is long:
/// reasons stay short).
fn read_as<T>(
    normalized: Cow<'_, str>,
    parse: impl Fn(&str) -> Result<T, ParseError>,
) -> Result<T, ParseError> {
    parse(&normalized).map_err(|e| match normalized {
        Cow::Owned(n) if n.len() <= 96 => ParseError {
            reason: format!("{} (read as {n})", e.reason),
        },
        _ => e,
    })
}

/// Parses a per-variable reference in envseal's own syntax.
fn parse_own_reference(input: &str) -> Result<Reference, ParseError> {
    if input.chars().any(|c| c.is_control()) {
        return err("reference contains a control character");
    }
    if let Some(rest) = input.strip_prefix("kms:") {
        // base64 has no '#'; '?' is not base64 either, so the suffix split is safe.
        let (body, suffix) = split_suffix(rest)?;
        suffix.refuse_fragment("kms:")?;
        suffix.refuse_versions("kms:")?;
        suffix.refuse_encryption("kms:")?;
        let mut blob = parse_kms_blob(body)?;
        blob.region = suffix.region.clone();
        blob.role = suffix.role.clone();
        return Ok(Reference {
            target: Target::Kms(blob),
            optional: suffix.optional,
            file: suffix.file,
        });
    }
    if let Some(rest) = input.strip_prefix("ssm:") {
        let (body, suffix) = split_suffix(rest)?;
        suffix.refuse_fragment("ssm:")?;
        suffix.refuse_versions("ssm:")?;
        suffix.refuse_encryption("ssm:")?;
        if body.starts_with("arn:") {
            return err("write an SSM ARN without the 'ssm:' prefix");
        }
        let mut param = parse_ssm_name_selector(body)?;
        if param.name.ends_with('/') {
            return err(
                "a name ending in '/' is a path: use it as a bundle (--from / ENVSEAL_FROM)",
            );
        }
        param.region = suffix.region.clone();
        param.role = suffix.role.clone();
        return Ok(Reference {
            target: Target::Ssm(param),
            optional: suffix.optional,
            file: suffix.file,
        });
    }
    if let Some(rest) = input.strip_prefix("sm:") {
        let (body, suffix) = split_suffix(rest)?;
        suffix.refuse_encryption("sm:")?;
        let (mut version, arn_key) = if arn_service(body) == Some("secretsmanager") {
            parse_sm_arn(body)?
        } else {
            (parse_secret_name(body)?, None)
        };
        let key = merge_option("JSON key", arn_key, suffix.fragment)?;
        version.version_stage =
            merge_option("version stage", version.version_stage, suffix.version_stage)?;
        version.version_id = merge_option("version id", version.version_id, suffix.version_id)?;
        version.region = arn_region(&suffix.region, version.region)?;
        version.role = suffix.role.clone();
        return Ok(Reference {
            target: Target::Secret(SecretRef { version, key }),
            optional: suffix.optional,
            file: suffix.file,
        });
    }
    if let Some(rest) = input.strip_prefix("s3://") {
        let (body, suffix) = split_suffix(rest)?;
        suffix.refuse_versions("s3://")?;
        let mut object = parse_s3_object(body, suffix.encryption)?;
        object.region = suffix.region.clone();
        object.role = suffix.role.clone();
        if object.key.ends_with('/') {
            return err("an S3 key ending in '/' is a prefix, not an object");
        }
        return Ok(Reference {
            target: Target::S3(S3Ref {
                object,
                field: suffix.fragment,
            }),
            optional: suffix.optional,
            file: suffix.file,
        });
    }
    match arn_service(input) {
        Some("ssm") => {
            let (body, suffix) = split_suffix(input)?;
            suffix.refuse_fragment("SSM ARN")?;
            suffix.refuse_versions("SSM ARN")?;
            suffix.refuse_encryption("SSM ARN")?;
            let mut param = parse_ssm_arn(body)?;
            if param.name.ends_with('/') {
                return err(
                    "an ARN ending in '/' is a path: use it as a bundle (--from / ENVSEAL_FROM)",
                );
            }
            param.region = arn_region(&suffix.region, param.region)?;
            param.role = suffix.role.clone();
            Ok(Reference {
                target: Target::Ssm(param),
                optional: suffix.optional,
                file: suffix.file,
            })
        }
        Some("secretsmanager") => {
            let (body, suffix) = split_suffix(input)?;
            suffix.refuse_encryption("Secrets Manager ARN")?;
            let (mut version, arn_key) = parse_sm_arn(body)?;
            let key = merge_option("JSON key", arn_key, suffix.fragment)?;
            version.version_stage =
                merge_option("version stage", version.version_stage, suffix.version_stage)?;
            version.version_id = merge_option("version id", version.version_id, suffix.version_id)?;
            version.region = arn_region(&suffix.region, version.region)?;
            version.role = suffix.role.clone();
            Ok(Reference {
                target: Target::Secret(SecretRef { version, key }),
                optional: suffix.optional,
                file: suffix.file,
            })
        }
        _ => err("not a reference (expected ssm:, sm:, s3://, kms: or an SSM/Secrets Manager ARN)"),
    }
}

/// Parses a bundle source, in envseal's syntax or another tool's
/// ([`compat::normalize`]: `ssm:///PATH/`, `ref+awsssm://PATH/`, …).
pub fn parse_source(input: &str) -> Result<Source, ParseError> {
    let input = input.trim();
    if input.chars().any(|c| c.is_control()) {
        return err("source contains a control character");
    }
    read_as(compat::normalize(input)?, parse_own_source)
}

/// Parses a bundle source in envseal's own syntax.
fn parse_own_source(input: &str) -> Result<Source, ParseError> {
    let input = input.trim();
    if input.chars().any(|c| c.is_control()) {
        return err("source contains a control character");
    }
    if input.is_empty() {
        return err("empty source");
    }
    if input.starts_with("kms:") {
        return err("kms: is a single value; it cannot be a bundle");
    }
    if let Some(rest) = input.strip_prefix("ssm:") {
        let (body, suffix) = split_suffix(rest)?;
        suffix.refuse_file()?;
        suffix.refuse_fragment("ssm: path")?;
        suffix.refuse_versions("ssm: path")?;
        suffix.refuse_encryption("ssm: path")?;
        return Ok(Source {
            bundle: Bundle::SsmPath {
                path: parse_ssm_path(body)?,
                region: suffix.region.clone(),
                role: suffix.role.clone(),
            },
            optional: suffix.optional,
        });
    }
    let (body, suffix) = if let Some(rest) = input.strip_prefix("sm:") {
        split_suffix(rest)?
    } else if let Some(rest) = input.strip_prefix("s3://") {
        let (body, suffix) = split_suffix(rest)?;
        suffix.refuse_file()?;
        suffix.refuse_fragment("s3:// bundle")?;
        suffix.refuse_versions("s3://")?;
        let mut object = parse_s3_object(body, suffix.encryption)?;
        object.region = suffix.region.clone();
        object.role = suffix.role.clone();
        return Ok(Source {
            bundle: Bundle::S3(object),
            optional: suffix.optional,
        });
    } else {
        split_suffix(input)?
    };
    suffix.refuse_file()?;
    match arn_service(body) {
        Some("ssm") => {
            suffix.refuse_fragment("SSM ARN")?;
            suffix.refuse_versions("SSM ARN")?;
            suffix.refuse_encryption("SSM ARN")?;
            let param = parse_ssm_arn(body)?;
            if param.selector.is_some() {
                return err("a path bundle takes no version or label");
            }
            Ok(Source {
                bundle: Bundle::SsmPath {
                    path: parse_ssm_path(&param.name)?,
                    region: arn_region(&suffix.region, param.region)?,
                    role: suffix.role.clone(),
                },
                optional: suffix.optional,
            })
        }
        _ if input.starts_with("sm:") || arn_service(body) == Some("secretsmanager") => {
            suffix.refuse_fragment("sm: bundle")?;
            suffix.refuse_encryption("sm:")?;
            let mut version = if arn_service(body) == Some("secretsmanager") {
                let (version, key) = parse_sm_arn(body)?;
                if key.is_some() {
                    return err("a bundle takes the whole secret: remove the JSON key");
                }
                version
            } else {
                parse_secret_name(body)?
            };
            version.version_stage =
                merge_option("version stage", version.version_stage, suffix.version_stage)?;
            version.version_id = merge_option("version id", version.version_id, suffix.version_id)?;
            version.region = arn_region(&suffix.region, version.region)?;
            version.role = suffix.role.clone();
            Ok(Source {
                bundle: Bundle::Secret(version),
                optional: suffix.optional,
            })
        }
        _ => err("not a bundle source (expected ssm:/PATH/, sm:SECRET, s3://BUCKET/KEY or an ARN)"),
    }
}

/// The region of a reference: an ARN's own (`arn`); `?region=` (`query`)
/// may only repeat it.
fn arn_region(query: &Option<String>, arn: Option<String>) -> Result<Option<String>, ParseError> {
    match (arn, query) {
        (Some(a), Some(q)) if &a != q => err(format!(
            "option 'region={q}' conflicts with the ARN's region '{a}' (an ARN is read in its own region)"
        )),
        (a, q) => Ok(a.or_else(|| q.clone())),
    }
}

fn merge_option(
    what: &str,
    a: Option<String>,
    b: Option<String>,
) -> Result<Option<String>, ParseError> {
    match (a, b) {
        (Some(_), Some(_)) => err(format!("{what} given twice")),
        (a, b) => Ok(a.or(b)),
    }
}

fn parse_kms_blob(body: &str) -> Result<KmsBlob, ParseError> {
    use base64::Engine;
    if body.is_empty() {
        return err("empty kms: ciphertext");
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(body)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(body))
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(body))
        .map_err(|_| ParseError {
            reason: "kms: ciphertext is not valid base64".into(),
        })?;
    if bytes.is_empty() {
        return err("empty kms: ciphertext");
    }
    Ok(KmsBlob {
        ciphertext: bytes,
        region: None,
        role: None,
    })
}

fn valid_ssm_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/')
}

/// `NAME`, `NAME:VERSION` or `NAME:LABEL`.
fn parse_ssm_name_selector(body: &str) -> Result<SsmParam, ParseError> {
    let (name, selector) = match body.split_once(':') {
        Some((n, s)) => (n, Some(s)),
        None => (body, None),
    };
    validate_ssm_name(name)?;
    let selector = match selector {
        None => None,
        Some("") => return err("empty version or label after ':'"),
        Some(s) if s.contains(':') => return err("more than one ':' after the parameter name"),
        Some(s) if s.chars().all(|c| c.is_ascii_digit()) => {
            if s.len() > 18 || s.starts_with('0') {
                return err("parameter version must be a positive number");
            }
            Some(s.to_owned())
        }
        Some(s) => {
            if s.len() > 100
                || s.starts_with(|c: char| c.is_ascii_digit())
                || !s
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
            {
                return err(format!("invalid parameter label '{s}'"));
            }
            Some(s.to_owned())
        }
    };
    Ok(SsmParam {
        name: name.to_owned(),
        selector,
        region: None,
        partition: None,
        account: None,
        role: None,
    })
}

fn validate_ssm_name(name: &str) -> Result<(), ParseError> {
    if name.is_empty() {
        return err("empty parameter name");
    }
    if name.len() > 2048 {
        return err("parameter name longer than 2048 characters");
    }
    if let Some(c) = name.chars().find(|c| !valid_ssm_char(*c)) {
        return err(format!("invalid character {c:?} in parameter name"));
    }
    if name.contains("//") {
        return err("parameter name contains '//'");
    }
    if name.contains('/') && !name.starts_with('/') {
        return err("a parameter name with a path must start with '/'");
    }
    Ok(())
}

fn parse_ssm_path(body: &str) -> Result<String, ParseError> {
    if !body.starts_with('/') {
        return err("an SSM path bundle starts with '/' (ssm:/PATH/)");
    }
    if body.contains(':') {
        return err("an SSM path bundle takes no version or label");
    }
    validate_ssm_name(body)?;
    let mut path = body.to_owned();
    if !path.ends_with('/') {
        path.push('/');
    }
    Ok(path)
}

/// The fields of an ARN that envseal uses.
struct ArnParts<'a> {
    partition: &'a str,
    region: &'a str,
    /// May be empty.
    account: &'a str,
    resource: &'a str,
}

/// Splits `arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE` (RESOURCE may hold ':').
fn split_arn(arn: &str) -> Result<ArnParts<'_>, ParseError> {
    let mut parts = arn.splitn(6, ':');
    let (_arn, partition, _service) = (parts.next(), parts.next().unwrap_or(""), parts.next());
    let region = parts.next().unwrap_or("");
    let account = parts.next().unwrap_or("");
    let Some(resource) = parts.next() else {
        return err("ARN has too few fields (arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE)");
    };
    if region.is_empty()
        || !region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return err("ARN has no valid region");
    }
    Ok(ArnParts {
        partition,
        region,
        account,
        resource,
    })
}

fn parse_ssm_arn(arn: &str) -> Result<SsmParam, ParseError> {
    let ArnParts {
        partition,
        region,
        account,
        resource,
    } = split_arn(arn)?;
    let Some(rest) = resource.strip_prefix("parameter") else {
        return err("SSM ARN resource must be parameter/NAME");
    };
    let body = match rest.strip_prefix('/') {
        // `parameter/a/b` is `/a/b`; `parameter/a` is `a`.
        Some(r) if r.contains('/') => format!("/{r}"),
        Some(r) => r.to_owned(),
        None => return err("SSM ARN resource must be parameter/NAME"),
    };
    let mut param = parse_ssm_name_selector(&body)?;
    param.region = Some(region.to_owned());
    param.partition = Some(partition.to_owned());
    param.account = Some(account.to_owned()).filter(|a| !a.is_empty());
    Ok(param)
}

fn parse_secret_name(body: &str) -> Result<SecretVersion, ParseError> {
    if body.is_empty() {
        return err("empty secret id");
    }
    if body.len() > 2048 {
        return err("secret id longer than 2048 characters");
    }
    if let Some(c) = body
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "/_+=.@-:".contains(*c)))
    {
        return err(format!("invalid character {c:?} in secret id"));
    }
    if body.contains(':') {
        return err("a secret name takes no ':' (use #KEY and ?version-stage=, or the full ARN)");
    }
    Ok(SecretVersion {
        secret_id: body.to_owned(),
        version_stage: None,
        version_id: None,
        region: None,
        role: None,
    })
}

/// `arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME[:KEY[:STAGE[:VERSION_ID]]]`.
fn parse_sm_arn(arn: &str) -> Result<(SecretVersion, Option<String>), ParseError> {
    let ArnParts {
        region, resource, ..
    } = split_arn(arn)?;
    let Some(rest) = resource.strip_prefix("secret:") else {
        return err("Secrets Manager ARN resource must be secret:NAME");
    };
    let fields: Vec<&str> = rest.split(':').collect();
    if fields.len() > 4 {
        return err("Secrets Manager ARN has more than NAME:KEY:STAGE:VERSION_ID after 'secret:'");
    }
    let name = fields[0];
    parse_secret_name(name)?;
    let field = |i: usize| {
        fields
            .get(i)
            .filter(|s| !s.is_empty())
            .map(|s| (*s).to_owned())
    };
    // The id passed to the API is the ARN up to the name.
    let id_len = arn.len() - rest.len() + name.len();
    Ok((
        SecretVersion {
            secret_id: arn[..id_len].to_owned(),
            version_stage: field(2),
            version_id: field(3),
            region: Some(region.to_owned()),
            role: None,
        },
        field(1),
    ))
}

fn parse_s3_object(body: &str, encryption: Option<Encryption>) -> Result<S3Object, ParseError> {
    let Some((bucket, key)) = body.split_once('/') else {
        return err("expected s3://BUCKET/KEY");
    };
    if bucket.len() < 3
        || bucket.len() > 63
        || !bucket
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
        || !bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
    {
        return err(format!("invalid bucket name '{bucket}'"));
    }
    if key.is_empty() {
        return err("empty object key (expected s3://BUCKET/KEY)");
    }
    if key.len() > 1024 {
        return err("object key longer than 1024 bytes");
    }
    Ok(S3Object {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        encryption: encryption.unwrap_or(Encryption::Auto),
        region: None,
        role: None,
    })
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Ssm(p) => write!(f, "ssm:{}", p.api_name()),
            Target::Secret(s) => write!(f, "sm:{}", s.version.secret_id),
            Target::S3(s) => write!(f, "s3://{}/{}", s.object.bucket, s.object.key),
            Target::Kms(_) => f.write_str("kms:…"),
        }
    }
}

#[cfg(test)]
mod tests;
