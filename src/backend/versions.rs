//! `--watch`: which version of each requested secret AWS holds now, with the
//! cheapest calls that can tell, never reading a value that is not needed:
//!
//! | request | call | version |
//! | --- | --- | --- |
//! | SSM parameters | GetParameters, 10 names a call per region (without decryption) | `Version` and `LastModifiedDate` |
//! | SSM path bundle | GetParametersByPath, every page of 10 (without decryption) | every (name, `Version`, `LastModifiedDate`) under the path |
//! | Secrets Manager | DescribeSecret, one per secret | the id of the version with the stage asked (AWSCURRENT), or the pinned id still there |
//! | S3 object | HeadObject, one per object | ETag and version id |
//! | `kms:` blob | none | never changes |
//!
//! Where GetParameters is denied (a policy that grants only GetParameter),
//! one GetParameter per name, as a resolution falls back. Every call goes
//! through [`super::retry`]; the caller's deadline bounds the whole check.

use std::cell::Cell;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime};

use futures_util::future::join_all;
use sha2::{Digest, Sha256};

use super::client::Aws;
use super::retry::{self, Track};
use crate::config::{AwsSettings, FetchOptions};
use crate::error::{FailureKind, FetchError};
use crate::plan::{batches, Plan, Request};
use crate::reference::{Role, S3Object, SecretVersion, SsmParam};

/// What a check saw of one request: a version identity (opaque, compared for
/// equality only), or that the secret is gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Version {
    Id(String),
    Missing,
}

/// A check's result for one request; `Err` when it could not tell
/// (throttled, denied, unreachable: not a change).
pub type Seen = Result<Version, FetchError>;

/// One check: what it saw per request (`kms:` blobs absent: they never
/// change), and how many API calls it made (attempts, retries included).
#[derive(Debug, Default)]
pub struct Check {
    pub seen: HashMap<Request, Seen>,
    pub calls: usize,
}

/// GetParametersByPath answers at most 10 parameters a page.
const PATH_PAGE: i32 = 10;

/// The calls a check makes when every call succeeds the first time: what the
/// documentation's table counts (paths count one page each, the least; a
/// role's AssumeRole not, since its credentials are kept between checks).
pub fn planned_calls(plan: &Plan) -> usize {
    let mut by_region: BTreeMap<Option<&str>, Vec<&SsmParam>> = BTreeMap::new();
    for p in &plan.ssm_params {
        by_region.entry(p.region.as_deref()).or_default().push(p);
    }
    let ssm: usize = by_region
        .values()
        .map(|ps| batches(ps, super::ssm::BATCH, |p| p.name.clone()).len())
        .sum();
    let mut objects: Vec<(&str, &str)> = plan
        .s3_objects
        .iter()
        .map(|o| (o.bucket.as_str(), o.key.as_str()))
        .collect();
    objects.sort_unstable();
    objects.dedup();
    ssm + plan.ssm_paths.len() + plan.secrets.len() + objects.len()
}

/// Role credentials kept from one `--watch` check to the next (in memory,
/// like everything else): a role is assumed again only when its
/// credentials would expire before a check could finish
/// ([`RoleCredentials::fresh`]), about once an hour with STS's default
/// duration instead of at every check.
#[derive(Default)]
pub struct RoleCredentials(RefCell<HashMap<Role, aws_credential_types::Credentials>>);

/// How long kept credentials must outlive a check's deadline to be used.
pub const CREDENTIALS_MARGIN: Duration = Duration::from_secs(60);

impl RoleCredentials {
    /// The kept credentials of `role` when they are valid until
    /// `needed_until`; without an expiry they are not kept.
    pub fn fresh(
        &self,
        role: &Role,
        needed_until: SystemTime,
    ) -> Option<aws_credential_types::Credentials> {
        let credentials = self.0.borrow().get(role)?.clone();
        (credentials.expiry()? > needed_until).then_some(credentials)
    }

    pub fn keep(&self, role: &Role, credentials: aws_credential_types::Credentials) {
        self.0.borrow_mut().insert(role.clone(), credentials);
    }

    /// Forget the kept credentials of `role` (the next check assumes it
    /// again): after a check through them that failed other than "not
    /// found", since the session may have been revoked or the token gone
    /// bad.
    pub fn forget(&self, role: &Role) {
        self.0.borrow_mut().remove(role);
    }
}

/// Loads the AWS configuration and checks every request of `plan` at once.
/// Requests read through a role are checked with that role's credentials:
/// those kept in `roles` while fresh, else from an AssumeRole (one per
/// distinct role, counted in `calls`), kept for the next check.
pub async fn check(
    plan: &Plan,
    options: &FetchOptions,
    settings: &AwsSettings,
    roles: &RoleCredentials,
) -> Check {
    let aws = Aws::load_for_resolution(options, settings).await;
    let calls = Cell::new(0usize);
    let session = settings.role_session_name.as_deref();
    let parts = plan.by_role();
    let seen = join_all(parts.iter().map(|(role, part)| {
        let (aws, calls) = (&aws, &calls);
        async move {
            let Some(role) = role else {
                return check_part(aws, part, calls).await;
            };
            let needed_until = SystemTime::now() + options.deadline + CREDENTIALS_MARGIN;
            let credentials = match roles.fresh(role, needed_until) {
                Some(kept) => Ok(kept),
                None => {
                    calls.set(calls.get() + 1);
                    let fresh =
                        super::sts::role_credentials(aws, role, session, &Track::none()).await;
                    if let Ok(c) = &fresh {
                        roles.keep(role, c.clone());
                    }
                    fresh
                }
            };
            match credentials {
                Ok(c) => {
                    let seen = check_part(&aws.with_credentials(c), part, calls).await;
                    let failed = seen
                        .iter()
                        .any(|(_, s)| s.as_ref().is_err_and(|e| e.kind != FailureKind::NotFound));
                    if failed {
                        roles.forget(role);
                    }
                    seen
                }
                Err(e) => part
                    .requests()
                    .into_iter()
                    .map(|r| (r, Err(e.clone())))
                    .collect(),
            }
        }
    }))
    .await;
    Check {
        seen: seen.into_iter().flatten().collect(),
        calls: calls.get(),
    }
}

/// Every service's share of `plan`, concurrently, with the credentials of `aws`.
async fn check_part(aws: &Aws, plan: &Plan, calls: &Cell<usize>) -> Vec<(Request, Seen)> {
    let mut seen = Vec::new();
    let (ssm, (paths, (secrets, objects))) = futures_util::future::join(
        ssm_params(aws, &plan.ssm_params, calls),
        futures_util::future::join(
            join_all(
                plan.ssm_paths
                    .iter()
                    .map(|p| ssm_path(aws, &p.path, p.region.as_deref(), calls)),
            ),
            futures_util::future::join(
                join_all(plan.secrets.iter().map(|s| secret(aws, s, calls))),
                s3_objects(aws, &plan.s3_objects, calls),
            ),
        ),
    )
    .await;
    seen.extend(ssm);
    for (p, version) in plan.ssm_paths.iter().zip(paths) {
        let request = Request::SsmPath {
            path: p.path.clone(),
            region: p.region.clone(),
            role: p.role.clone(),
        };
        seen.push((request, version));
    }
    for (s, version) in plan.secrets.iter().zip(secrets) {
        seen.push((Request::Secret(s.clone()), version));
    }
    seen.extend(objects);
    seen
}

/// NotFound is an answer (the secret is gone); anything else is "cannot tell".
fn gone_or(e: FetchError) -> Seen {
    if e.kind == FailureKind::NotFound {
        Ok(Version::Missing)
    } else {
        Err(e)
    }
}

async fn ssm_params(aws: &Aws, params: &[SsmParam], calls: &Cell<usize>) -> Vec<(Request, Seen)> {
    let by_region = super::ssm::by_region(aws, params);
    let mut jobs = Vec::new();
    for (region, params) in &by_region {
        for batch in batches(params, super::ssm::BATCH, |p| p.name.clone()) {
            jobs.push(ssm_batch(aws, region.as_deref(), batch, calls));
        }
    }
    join_all(jobs).await.into_iter().flatten().collect()
}

async fn ssm_batch(
    aws: &Aws,
    region: Option<&str>,
    batch: Vec<SsmParam>,
    calls: &Cell<usize>,
) -> Vec<(Request, Seen)> {
    let mut out: Vec<(Request, Seen)> = Vec::new();
    let client = match aws.ssm(region) {
        Ok(c) => c,
        Err(e) => {
            return batch
                .into_iter()
                .map(|p| (Request::SsmParam(p), Err(e.clone())))
                .collect()
        }
    };
    let names: Vec<String> = batch.iter().map(SsmParam::request_name).collect();
    let track = Track::none();
    let result = retry::send(aws.retrier(), "ssm", region, &track, || {
        calls.set(calls.get() + 1);
        client
            .get_parameters()
            .set_names(Some(names.clone()))
            .with_decryption(false)
            .send()
    })
    .await;
    let mut singles = Vec::new();
    match result {
        Ok(output) => {
            let mut answered = vec![false; batch.len()];
            for parameter in output.parameters() {
                let Some(name) = parameter.name() else {
                    continue;
                };
                if let Some(i) = batch.iter().position(|p| {
                    p.name == name
                        || p.request_name() == name
                        || name.split_once(":parameter").map(|(_, n)| n) == Some(p.name.as_str())
                }) {
                    answered[i] = true;
                    let version = ssm_version(parameter);
                    out.push((Request::SsmParam(batch[i].clone()), Ok(version)));
                }
            }
            for invalid in output.invalid_parameters() {
                if let Some(i) = batch.iter().position(|p| {
                    &p.request_name() == invalid || &p.api_name() == invalid || &p.name == invalid
                }) {
                    answered[i] = true;
                    if batch[i].request_name() != batch[i].api_name() {
                        // Asked by ARN: a server that takes ARNs only in
                        // GetParameter (moto) says "invalid"; ask that way.
                        singles.push(batch[i].clone());
                    } else {
                        out.push((Request::SsmParam(batch[i].clone()), Ok(Version::Missing)));
                    }
                }
            }
            for (i, p) in batch.iter().enumerate() {
                if !answered[i] {
                    singles.push(p.clone());
                }
            }
        }
        Err(e) if e.batch_unavailable() => singles = batch,
        Err(e) => {
            let e = e.classify();
            return batch
                .into_iter()
                .map(|p| (Request::SsmParam(p), Err(e.clone())))
                .collect();
        }
    }
    let client = &client;
    let answers = join_all(singles.into_iter().map(|p| async move {
        let name = p.request_name();
        let track = Track::none();
        let result = retry::send(aws.retrier(), "ssm", region, &track, || {
            calls.set(calls.get() + 1);
            client
                .get_parameter()
                .name(name.clone())
                .with_decryption(false)
                .send()
        })
        .await;
        let seen = match result {
            Ok(o) => match o.parameter() {
                Some(parameter) => Ok(ssm_version(parameter)),
                None => Ok(Version::Missing),
            },
            Err(e) => gone_or(e.classify()),
        };
        (Request::SsmParam(p), seen)
    }))
    .await;
    out.extend(answers);
    out
}

/// A parameter's `Version` and when it was last modified: a parameter
/// deleted and created again starts at version 1 again.
fn ssm_version(p: &aws_sdk_ssm::types::Parameter) -> Version {
    let modified = p
        .last_modified_date()
        .map(|d| format!("{}.{:09}", d.secs(), d.subsec_nanos()))
        .unwrap_or_default();
    Version::Id(format!("{}@{modified}", p.version()))
}

/// Every (name, version) under the path, hashed: a parameter added, removed
/// or changed changes it.
async fn ssm_path(aws: &Aws, path: &str, region: Option<&str>, calls: &Cell<usize>) -> Seen {
    let client = aws.ssm(region)?;
    let throttle_key = aws.region_key(region);
    let mut entries: Vec<(String, String)> = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page_token = token.take();
        let track = Track::none();
        let output = retry::send(aws.retrier(), "ssm", throttle_key, &track, || {
            calls.set(calls.get() + 1);
            client
                .get_parameters_by_path()
                .path(path)
                .recursive(true)
                .with_decryption(false)
                .max_results(PATH_PAGE)
                .set_next_token(page_token.clone())
                .send()
        })
        .await
        .map_err(|e| e.classify())?;
        for p in output.parameters() {
            let Version::Id(version) = ssm_version(p) else {
                continue;
            };
            entries.push((p.name().unwrap_or_default().to_owned(), version));
        }
        match output.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_owned()),
            _ => break,
        }
    }
    entries.sort();
    let mut hash = Sha256::new();
    for (name, version) in &entries {
        hash.update(name.as_bytes());
        hash.update(b"\0");
        hash.update(version.as_bytes());
        hash.update(b"\n");
    }
    Ok(Version::Id(format!(
        "{} parameters, {:x}",
        entries.len(),
        hash.finalize()
    )))
}

async fn secret(aws: &Aws, s: &SecretVersion, calls: &Cell<usize>) -> Seen {
    let client = aws.secrets(s.region.as_deref())?;
    let region = aws.region_key(s.region.as_deref());
    let track = Track::none();
    let result = retry::send(aws.retrier(), "secretsmanager", region, &track, || {
        calls.set(calls.get() + 1);
        client.describe_secret().secret_id(&s.secret_id).send()
    })
    .await;
    let output = match result {
        Ok(o) => o,
        Err(e) => return gone_or(e.classify()),
    };
    // A secret scheduled for deletion cannot be read: gone.
    if output.deleted_date().is_some() {
        return Ok(Version::Missing);
    }
    let stages = output.version_ids_to_stages();
    let stages = stages.into_iter().flatten();
    let version = match (&s.version_id, &s.version_stage) {
        (Some(id), _) => stages.map(|(v, _)| v).find(|v| v.as_str() == id.as_str()),
        (None, stage) => {
            let stage = stage.as_deref().unwrap_or("AWSCURRENT");
            stages
                .filter(|(_, ss)| ss.iter().any(|x| x.as_str() == stage))
                .map(|(v, _)| v)
                .next()
        }
    };
    Ok(version.map_or(Version::Missing, |v| Version::Id(v.clone())))
}

async fn s3_objects(aws: &Aws, objects: &[S3Object], calls: &Cell<usize>) -> Vec<(Request, Seen)> {
    // `s3://b/k` and `s3://b/k?encryption=kms` are one object: HEAD it once.
    let by_object = super::s3::by_object(objects);
    let heads = join_all(
        by_object
            .into_iter()
            .map(|((region, bucket, key), wanted)| async move {
                let seen = head(aws, region, bucket, key, calls).await;
                wanted
                    .into_iter()
                    .map(|o| (Request::S3(o.clone()), seen.clone()))
                    .collect::<Vec<_>>()
            }),
    )
    .await;
    heads.into_iter().flatten().collect()
}

/// HeadObject in the bucket's region: the one named, or the one S3 names in
/// its redirect (as a resolution follows it).
async fn head(
    aws: &Aws,
    region: Option<&str>,
    bucket: &str,
    key: &str,
    calls: &Cell<usize>,
) -> Seen {
    let mut region = aws.region_key(region).map(str::to_owned);
    for _ in 0..2 {
        let client = aws.s3(region.as_deref())?;
        let result = retry::send(
            aws.retrier(),
            "s3",
            region.as_deref(),
            &Track::none(),
            || {
                calls.set(calls.get() + 1);
                client.head_object().bucket(bucket).key(key).send()
            },
        )
        .await;
        let failed = match result {
            Ok(h) => {
                return Ok(Version::Id(format!(
                    "{}/{}",
                    h.e_tag().unwrap_or_default(),
                    h.version_id().unwrap_or_default()
                )))
            }
            Err(failed) => failed,
        };
        let moved = failed
            .err
            .as_ref()
            .and_then(|e| e.raw_response())
            .filter(|r| matches!(r.status().as_u16(), 301 | 307 | 400))
            .and_then(|r| r.headers().get("x-amz-bucket-region"))
            .filter(|r| crate::reference::valid_region(r))
            .map(str::to_owned);
        let signed_in = region.as_deref().or(aws.configured_region());
        match moved {
            Some(m) if Some(m.as_str()) != signed_in => {
                region = aws.region_key(Some(&m)).map(str::to_owned);
            }
            _ => return gone_or(failed.classify()),
        }
    }
    Err(FetchError::new(
        FailureKind::Service,
        "S3 redirected HeadObject more than once",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::{parse_reference, parse_source};

    fn plan(refs: &[String], sources: &[&str]) -> Plan {
        let mut requests: Vec<Request> = refs
            .iter()
            .map(|r| Request::for_target(&parse_reference(r).unwrap().target))
            .collect();
        requests.extend(
            sources
                .iter()
                .map(|s| Request::for_bundle(&parse_source(s).unwrap().bundle)),
        );
        Plan::new(&requests)
    }

    #[test]
    fn kept_role_credentials_are_used_only_while_they_outlive_the_check() {
        let role = Role::new("arn:aws:iam::123456789012:role/r", None).unwrap();
        let other = Role::new("arn:aws:iam::123456789012:role/r", Some("tenant")).unwrap();
        let now = SystemTime::now();
        let expiring = |at: Option<SystemTime>| {
            aws_credential_types::Credentials::new("ASIAEXAMPLE", "secret", None, at, "test")
        };
        let kept = RoleCredentials::default();
        assert!(kept.fresh(&role, now).is_none());
        kept.keep(&role, expiring(Some(now + Duration::from_secs(600))));
        assert!(kept.fresh(&role, now + Duration::from_secs(60)).is_some());
        assert!(kept.fresh(&role, now + Duration::from_secs(601)).is_none());
        // Another external id is another role.
        assert!(kept.fresh(&other, now).is_none());
        // Without an expiry, never reused.
        kept.keep(&role, expiring(None));
        assert!(kept.fresh(&role, now).is_none());
        // Forgotten after a failed check.
        kept.keep(&role, expiring(Some(now + Duration::from_secs(600))));
        kept.forget(&role);
        assert!(kept.fresh(&role, now).is_none());
    }

    #[test]
    fn planned_calls_follow_the_documented_formula() {
        // 12 parameters: 2 GetParameters; 2 paths: 1 page each; 3 secrets:
        // 3 DescribeSecret; one object asked two ways: 1 HeadObject; kms: 0.
        let mut refs: Vec<String> = (0..12).map(|i| format!("ssm:/p/{i}")).collect();
        refs.extend((0..3).map(|i| format!("sm:s{i}")));
        refs.push("s3://bkt/k".into());
        refs.push("s3://bkt/k?encryption=none".into());
        refs.push("kms:AQICAHh4".into());
        let p = plan(&refs, &["ssm:/a/", "ssm:/b/"]);
        assert_eq!(planned_calls(&p), 2 + 2 + 3 + 1);
        // Another region is another batch; a role's AssumeRole is not a
        // call of every check (its credentials are kept).
        refs.push("arn:aws:ssm:eu-west-1:123456789012:parameter/x".into());
        refs.push("sm:t?role-arn=arn:aws:iam::123456789012:role/r".into());
        let p = plan(&refs, &["ssm:/a/", "ssm:/b/"]);
        assert_eq!(planned_calls(&p), 3 + 2 + 4 + 1);
        assert_eq!(planned_calls(&plan(&["kms:AQICAHh4".into()], &[])), 0);
    }
}
