//! `envseal policy`: the least-privilege IAM policy that the configured
//! references need. Offline by default (region and account from ARNs, else
//! `AWS_REGION` and `*`); `--resolve` asks STS for the account and S3 for the
//! KMS key behind each object.
//!
//! References read through a role (`?role-arn=`, `--role-arn`) need their
//! reads in the role's policy, and the base identity needs only
//! `sts:AssumeRole` on the role: `policy` prints the base identity's policy
//! (its own reads and one `sts:AssumeRole` statement), `policy --role ARN`
//! the role's (the reads through it, in the role's account).

use std::collections::BTreeSet;
use std::ffi::OsString;

use serde_json::{json, Value};
use tracing::warn;

use super::write_stdout;
use crate::backend::client::Aws;
use crate::backend::s3::ObjectKey;
use crate::backend::{s3, sts};
use crate::cli::PolicyArgs;
use crate::config::{AwsSettings, Config};
use crate::error::Error;
use crate::pipeline;
use crate::plan::{
    requests, split_inherited, template_requests, Plan, Request, SourceSpec, VarRef,
};
use crate::reference::{Bundle, Role, Target};

/// Sids of statements envseal works without (it falls back or they apply only
/// to customer-managed keys); every other statement is required.
pub const OPTIONAL_SID_SUFFIX: &str = "Optional";

/// Where ARNs get their region and account when the reference has none.
#[derive(Debug, Clone)]
pub struct Scope {
    pub region: String,
    pub account: String,
    pub partition: String,
}

/// `kms:Decrypt` on any key, but only through `service` in these regions
/// (`kms:ViaService`): what a value stored under a customer-managed key needs.
fn decrypt_via(sid: &str, service: &str, regions: &BTreeSet<String>) -> Value {
    let via: Vec<String> = regions
        .iter()
        .map(|r| format!("{service}.{r}.amazonaws.com"))
        .collect();
    json!({
        "Sid": sid,
        "Effect": "Allow",
        "Action": ["kms:Decrypt"],
        "Resource": "*",
        "Condition": {"StringEquals": {"kms:ViaService": via}},
    })
}

/// Where one SSM ARN points: each field from the reference's own ARN when it
/// had one, else from the scope.
#[derive(Default, Clone, Copy)]
struct ArnFields<'a> {
    partition: Option<&'a str>,
    region: Option<&'a str>,
    account: Option<&'a str>,
}

fn ssm_param_arn(scope: &Scope, from: ArnFields<'_>, name: &str) -> String {
    format!(
        "arn:{}:ssm:{}:{}:parameter/{}",
        from.partition.unwrap_or(&scope.partition),
        from.region.unwrap_or(&scope.region),
        from.account.unwrap_or(&scope.account),
        name.trim_start_matches('/')
    )
}

fn secret_arn(scope: &Scope, region: Option<&str>, id: &str) -> String {
    if id.starts_with("arn:") {
        // A full ARN ends with the 6-character random suffix; a partial ARN
        // does not, and gets the wildcard.
        let name = id.rsplit(':').next().unwrap_or(id);
        let has_suffix = name
            .rsplit_once('-')
            .is_some_and(|(_, s)| s.len() == 6 && s.chars().all(|c| c.is_ascii_alphanumeric()));
        return if has_suffix {
            id.to_owned()
        } else {
            format!("{id}-??????")
        };
    }
    format!(
        "arn:{}:secretsmanager:{}:{}:secret:{}-??????",
        scope.partition,
        region.unwrap_or(&scope.region),
        scope.account,
        id
    )
}

/// S3 objects (bucket, key) that a `?optional` reference or source names.
pub type OptionalObjects = BTreeSet<(String, String)>;

/// `s3:ListBucket` on each bucket of `optional`, narrowed by `s3:prefix` to
/// exactly the optional keys: one statement per bucket. Without it real S3
/// answers a missing object with 403 instead of 404 (it will not say what
/// the caller could not list), so `?optional` would fail closed.
fn list_for_optional_objects(scope: &Scope, optional: &OptionalObjects) -> Vec<Value> {
    let mut buckets: Vec<(&str, Vec<&str>)> = Vec::new();
    for (bucket, key) in optional {
        match buckets.last_mut() {
            Some((b, keys)) if b == bucket => keys.push(key),
            _ => buckets.push((bucket, vec![key])),
        }
    }
    let several = buckets.len() > 1;
    buckets
        .into_iter()
        .enumerate()
        .map(|(i, (bucket, keys))| {
            let sid = if several {
                format!("{LIST_FOR_OPTIONAL_SID}{}", i + 1)
            } else {
                LIST_FOR_OPTIONAL_SID.to_owned()
            };
            json!({
                "Sid": sid,
                "Effect": "Allow",
                "Action": ["s3:ListBucket"],
                "Resource": format!("arn:{}:s3:::{bucket}", scope.partition),
                "Condition": {"StringEquals": {"s3:prefix": keys}},
            })
        })
        .collect()
}

/// Sid of the `s3:ListBucket` statements for `?optional` S3 objects (numbered
/// from 1 when there are several buckets).
pub const LIST_FOR_OPTIONAL_SID: &str = "ListBucketForOptionalObjects";

/// The policy document for these requests. `optional` are the S3 objects
/// that `?optional` references name (they need `s3:ListBucket`); `kms_keys`
/// are key ARNs known to protect S3 objects (from `--resolve`); otherwise
/// `kms:Decrypt` is on `*`.
pub fn document(
    requests: &[Request],
    optional: &OptionalObjects,
    scope: &Scope,
    kms_keys: &BTreeSet<String>,
) -> Value {
    let plan = Plan::new(requests);
    let mut statements = Vec::new();

    let params: BTreeSet<String> = plan
        .ssm_params
        .iter()
        .map(|p| {
            let from = ArnFields {
                partition: p.partition.as_deref(),
                region: p.region.as_deref(),
                account: p.account.as_deref(),
            };
            ssm_param_arn(scope, from, &p.name)
        })
        .collect();
    if !params.is_empty() {
        statements.push(json!({
            "Sid": "ReadSsmParameters",
            "Effect": "Allow",
            "Action": ["ssm:GetParameters", "ssm:GetParameter"],
            "Resource": params,
        }));
    }
    let paths: BTreeSet<String> = plan
        .ssm_paths
        .iter()
        .map(|p| {
            let (path, region) = (&p.path, &p.region);
            let from = ArnFields {
                region: region.as_deref(),
                ..ArnFields::default()
            };
            ssm_param_arn(scope, from, path.trim_end_matches('/'))
        })
        .collect();
    if !paths.is_empty() {
        statements.push(json!({
            "Sid": "ReadSsmPaths",
            "Effect": "Allow",
            "Action": ["ssm:GetParametersByPath"],
            "Resource": paths,
        }));
    }
    let mut ssm_regions: BTreeSet<String> = plan
        .ssm_params
        .iter()
        .map(|p| p.region.clone().unwrap_or_else(|| scope.region.clone()))
        .collect();
    ssm_regions.extend(
        plan.ssm_paths
            .iter()
            .map(|p| p.region.clone().unwrap_or_else(|| scope.region.clone())),
    );
    if !ssm_regions.is_empty() {
        statements.push(decrypt_via(
            "DecryptSecureStringsWithCustomerKeysOptional",
            "ssm",
            &ssm_regions,
        ));
    }

    let secrets: BTreeSet<String> = plan
        .secrets
        .iter()
        .map(|s| secret_arn(scope, s.region.as_deref(), &s.secret_id))
        .collect();
    if !secrets.is_empty() {
        statements.push(json!({
            "Sid": "ReadSecrets",
            "Effect": "Allow",
            "Action": ["secretsmanager:GetSecretValue"],
            "Resource": secrets,
        }));
        statements.push(json!({
            "Sid": "BatchReadSecretsOptional",
            "Effect": "Allow",
            "Action": ["secretsmanager:BatchGetSecretValue"],
            "Resource": "*",
        }));
        // Secrets encrypted under a customer-managed key (not
        // aws/secretsmanager) need kms:Decrypt on that key, through Secrets
        // Manager only.
        let sm_regions: BTreeSet<String> = plan
            .secrets
            .iter()
            .map(|s| s.region.clone().unwrap_or_else(|| scope.region.clone()))
            .collect();
        statements.push(decrypt_via(
            "DecryptSecretsWithCustomerKeysOptional",
            "secretsmanager",
            &sm_regions,
        ));
    }

    let mut objects = BTreeSet::new();
    for o in &plan.s3_objects {
        objects.insert(format!(
            "arn:{}:s3:::{}/{}",
            scope.partition, o.bucket, o.key
        ));
        objects.insert(format!(
            "arn:{}:s3:::{}/{}.instruction",
            scope.partition, o.bucket, o.key
        ));
    }
    if !objects.is_empty() {
        statements.push(json!({
            "Sid": "ReadS3Objects",
            "Effect": "Allow",
            "Action": ["s3:GetObject"],
            "Resource": objects,
        }));
    }
    let optional: OptionalObjects = optional
        .iter()
        .filter(|(bucket, key)| {
            plan.s3_objects
                .iter()
                .any(|o| &o.bucket == bucket && &o.key == key)
        })
        .cloned()
        .collect();
    statements.extend(list_for_optional_objects(scope, &optional));
    if !plan.s3_objects.is_empty() || !plan.kms_blobs.is_empty() {
        let resource: Value = if kms_keys.is_empty() || !plan.kms_blobs.is_empty() {
            json!("*")
        } else {
            json!(kms_keys)
        };
        statements.push(json!({
            "Sid": "DecryptWithKms",
            "Effect": "Allow",
            "Action": ["kms:Decrypt"],
            "Resource": resource,
        }));
    }
    json!({"Version": "2012-10-17", "Statement": statements})
}

/// Sid of the statement that lets the base identity assume the roles that
/// references are read through.
pub const ASSUME_ROLES_SID: &str = "AssumeRoles";

/// `sts:AssumeRole` on every role of `roles` (none: no statement).
pub fn assume_roles(roles: &BTreeSet<String>) -> Option<Value> {
    (!roles.is_empty()).then(|| {
        json!({
            "Sid": ASSUME_ROLES_SID,
            "Effect": "Allow",
            "Action": ["sts:AssumeRole"],
            "Resource": roles,
        })
    })
}

/// Prints the policy for the configured references (`--resolve`: with the
/// account and KMS keys looked up).
pub fn run(args: &PolicyArgs, env: Vec<(OsString, OsString)>) -> Result<i32, Error> {
    let flags = args.common.flags(false);
    let resolve = args.resolve;
    crate::log::start(&flags, &env)?;
    let config = Config::new(&flags, &env)?;
    let region = config.aws.region.clone();
    let mut inherited = split_inherited(env, &config.ignore);
    if !inherited.failures.is_empty() {
        return Err(Error::Resolution(inherited.failures));
    }
    crate::plan::default_role(&mut inherited.refs, config.role.as_ref());
    crate::plan::default_template_role(&mut inherited.templates, config.role.as_ref());
    let mut all = requests(&inherited.refs, &config.sources);
    all.extend(template_requests(&inherited.templates));
    let roles: BTreeSet<String> = all
        .iter()
        .filter_map(|r| r.role().map(|role| role.arn.clone()))
        .collect();
    let for_role: Option<Role> = match &args.role {
        None => None,
        Some(arn) => {
            crate::reference::parse_role_arn(arn)
                .map_err(|e| Error::Config(format!("--role: {e}")))?;
            if !roles.contains(arn) {
                return Err(Error::Config(format!(
                    "--role: no reference or bundle is read through {arn} (roles in use: {})",
                    if roles.is_empty() {
                        "none".to_owned()
                    } else {
                        roles.iter().cloned().collect::<Vec<_>>().join(", ")
                    }
                )));
            }
            Some(Role {
                arn: arn.clone(),
                external_id: None,
            })
        }
    };
    // The reads of this policy: the base identity's own, or the role's.
    let requests: Vec<Request> = all
        .into_iter()
        .filter(|r| r.role().map(|role| &role.arn) == for_role.as_ref().map(|role| &role.arn))
        .collect();
    if for_role.is_none() {
        for role in &roles {
            warn!(
                role = role.as_str(),
                "references are read through this role: their statements belong in the role's policy (envseal policy --role {role})"
            );
        }
    }
    let optional = optional_objects(&inherited.refs, &config.sources);
    let mut scope = Scope {
        region: region.unwrap_or_else(|| "*".into()),
        account: "*".into(),
        partition: "aws".into(),
    };
    if let Some(role) = &for_role {
        // A role's reads are in the role's account unless an ARN says otherwise.
        scope.account = role.account().to_owned();
        scope.partition = role.partition().to_owned();
    }
    let mut kms_keys = BTreeSet::new();
    if resolve && !requests.is_empty() && for_role.is_none() {
        let plan = Plan::new(&requests);
        let (account, heads) = lookup(&plan, config.timeout, &config.aws)?;
        scope.account = account;
        kms_keys = narrowed_kms_keys(&heads);
    }
    let mut doc = document(&requests, &optional, &scope, &kms_keys);
    if config.watch.is_some() {
        add_watch_statements(&mut doc, &requests, &scope);
    }
    if for_role.is_none() {
        if let (Some(statement), Some(list)) =
            (assume_roles(&roles), doc["Statement"].as_array_mut())
        {
            list.push(statement);
        }
    }
    let text = serde_json::to_string_pretty(&doc).map_err(|e| Error::PolicyJson {
        reason: e.to_string(),
    })?;
    write_stdout(format!("{text}\n").as_bytes())?;
    Ok(0)
}

/// `ENVSEAL_WATCH` set: what the version checks need beyond a start
/// (`secretsmanager:DescribeSecret`; SSM and S3 need nothing new:
/// GetParameters/GetParametersByPath and HeadObject under s3:GetObject).
fn add_watch_statements(doc: &mut Value, requests: &[Request], scope: &Scope) {
    let secrets: BTreeSet<String> = Plan::new(requests)
        .secrets
        .iter()
        .map(|s| secret_arn(scope, s.region.as_deref(), &s.secret_id))
        .collect();
    if secrets.is_empty() {
        return;
    }
    if let Some(statements) = doc["Statement"].as_array_mut() {
        statements.push(json!({
            "Sid": "WatchSecretVersions",
            "Effect": "Allow",
            "Action": ["secretsmanager:DescribeSecret"],
            "Resource": secrets,
        }));
    }
}

/// The S3 objects that a `?optional` reference or source names.
fn optional_objects(refs: &[VarRef], sources: &[SourceSpec]) -> OptionalObjects {
    let from_refs = refs
        .iter()
        .filter(|r| r.reference.optional)
        .filter_map(|r| match &r.reference.target {
            Target::S3(s3) => Some(&s3.object),
            _ => None,
        });
    let from_sources = sources
        .iter()
        .filter(|s| s.source.optional)
        .filter_map(|s| match &s.source.bundle {
            Bundle::S3(object) => Some(object),
            _ => None,
        });
    from_refs
        .chain(from_sources)
        .map(|o| (o.bucket.clone(), o.key.clone()))
        .collect()
}

/// The keys `kms:Decrypt` can be narrowed to: the SSE-KMS keys of the S3
/// objects, but only when every object has one. Otherwise the object's
/// envelope, KMS blob or SSE key is unknown, and `kms:Decrypt` stays on `*`
/// (empty set), with a warning naming each object that kept it there.
///
/// Narrowing assumes that an envelope's wrapping key (or a KMS blob's key) is
/// the object's SSE-KMS key, as `envseal push` writes it.
pub fn narrowed_kms_keys(heads: &[(String, ObjectKey)]) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    let mut complete = true;
    for (object, head) in heads {
        match head {
            ObjectKey::SseKms(k) => {
                keys.insert(k.clone());
            }
            ObjectKey::NoSseKms => {
                complete = false;
                warn!(
                    object = object.as_str(),
                    "no SSE-KMS key on this object: kms:Decrypt stays on \"*\""
                );
            }
            ObjectKey::Failed(reason) => {
                complete = false;
                warn!(
                    object = object.as_str(),
                    reason = reason.as_str(),
                    "HeadObject failed: kms:Decrypt stays on \"*\""
                );
            }
        }
    }
    if complete {
        keys
    } else {
        BTreeSet::new()
    }
}

/// `--resolve`: the caller's account (STS) and, per S3 object
/// (`s3://BUCKET/KEY`), what HeadObject says of its SSE-KMS key.
fn lookup(
    plan: &Plan,
    timeout: std::time::Duration,
    settings: &AwsSettings,
) -> Result<(String, Vec<(String, ObjectKey)>), Error> {
    let unavailable = |e: crate::error::FetchError| Error::AwsUnavailable { reason: e.reason };
    pipeline::with_deadline(timeout, async {
        let aws = Aws::load(settings).await;
        let account = sts::caller_account(&aws)
            .await
            .map_err(|failure| Error::CallerIdentity { failure })?;
        let heads = s3::head_objects(&aws, &plan.s3_objects)
            .await
            .map_err(unavailable)?;
        Ok((account, heads))
    })
    .map_err(unavailable)?
    .ok_or(Error::LookupDeadline)?
}

#[cfg(test)]
mod tests;
