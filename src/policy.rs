//! `envseal policy`: the least-privilege IAM policy that the configured
//! references need. Offline by default (region and account from ARNs, else
//! `AWS_REGION` and `*`); `--resolve` asks STS for the account and S3 for the
//! KMS key behind each object.

use std::collections::BTreeSet;
use std::ffi::OsString;

use serde_json::{json, Value};

use crate::config::{Config, Flags};
use crate::environment::{requests, split_inherited};
use crate::error::Error;
use crate::plan::{Plan, Request};

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

fn ssm_param_arn(scope: &Scope, region: Option<&str>, name: &str) -> String {
    format!(
        "arn:{}:ssm:{}:{}:parameter/{}",
        scope.partition,
        region.unwrap_or(&scope.region),
        scope.account,
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

/// The policy document for these requests. `kms_keys` are key ARNs known to
/// protect S3 objects (from `--resolve`); otherwise `kms:Decrypt` is on `*`.
pub fn document(requests: &[Request], scope: &Scope, kms_keys: &BTreeSet<String>) -> Value {
    let plan = Plan::new(requests);
    let mut statements = Vec::new();

    let params: BTreeSet<String> = plan
        .ssm_params
        .iter()
        .map(|p| ssm_param_arn(scope, p.region.as_deref(), &p.name))
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
        .map(|(path, region)| ssm_param_arn(scope, region.as_deref(), path.trim_end_matches('/')))
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
            .map(|(_, r)| r.clone().unwrap_or_else(|| scope.region.clone())),
    );
    if !ssm_regions.is_empty() {
        statements.push(json!({
            "Sid": "DecryptSecureStringsWithCustomerKeysOptional",
            "Effect": "Allow",
            "Action": ["kms:Decrypt"],
            "Resource": "*",
            "Condition": {"StringEquals": {"kms:ViaService":
                ssm_regions.iter().map(|r| format!("ssm.{r}.amazonaws.com")).collect::<Vec<_>>()}},
        }));
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

fn env_value(env: &[(OsString, OsString)], name: &str) -> Option<String> {
    env.iter()
        .rev()
        .find(|(k, _)| k == name)
        .and_then(|(_, v)| v.to_str().map(str::to_owned))
        .filter(|v| !v.is_empty())
}

pub fn print(flags: &Flags, env: Vec<(OsString, OsString)>, resolve: bool) -> Result<i32, Error> {
    let (level, format) = Config::logging(flags, &env)?;
    crate::init_logging(level, format);
    let config = Config::new(flags, &env)?;
    let region = env_value(&env, "AWS_REGION").or_else(|| env_value(&env, "AWS_DEFAULT_REGION"));
    let inherited = split_inherited(env);
    if !inherited.failures.is_empty() {
        return Err(Error::Resolution(inherited.failures));
    }
    let requests = requests(&inherited.refs, &config.sources);
    let mut scope = Scope {
        region: region.unwrap_or_else(|| "*".into()),
        account: "*".into(),
        partition: "aws".into(),
    };
    let mut kms_keys = BTreeSet::new();
    if resolve && !requests.is_empty() {
        let plan = Plan::new(&requests);
        let (account, keys) = lookup(&plan, config.timeout)?;
        scope.account = account;
        kms_keys = keys;
    }
    let doc = document(&requests, &scope, &kms_keys);
    let text = serde_json::to_string_pretty(&doc).map_err(|e| Error::Other(e.to_string()))?;
    println!("{text}");
    Ok(0)
}

/// `--resolve`: the caller's account (STS) and the SSE-KMS keys of the S3
/// objects (HeadObject).
fn lookup(plan: &Plan, timeout: std::time::Duration) -> Result<(String, BTreeSet<String>), Error> {
    let runtime = crate::resolve::runtime().map_err(|e| Error::Other(e.reason))?;
    runtime.block_on(async {
        tokio::time::timeout(timeout, async {
            let aws = crate::aws::Aws::load().await;
            let sts = aws_sdk_sts::Client::new(aws.base());
            let identity = sts.get_caller_identity().send().await.map_err(|e| {
                Error::Other(format!(
                    "sts:GetCallerIdentity failed: {}",
                    crate::backend::classify(&e)
                ))
            })?;
            let account = identity.account().unwrap_or("*").to_owned();
            let mut keys = BTreeSet::new();
            if !plan.s3_objects.is_empty() {
                let s3 = aws.s3().map_err(|e| Error::Other(e.reason))?;
                for o in &plan.s3_objects {
                    let head = s3.head_object().bucket(&o.bucket).key(&o.key).send().await;
                    if let Ok(h) = head {
                        if let Some(k) = h.ssekms_key_id() {
                            keys.insert(k.to_owned());
                        }
                    }
                }
            }
            Ok((account, keys))
        })
        .await
        .map_err(|_| Error::Other("--resolve lookups did not finish within the deadline".into()))?
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::parse_reference;

    fn scope() -> Scope {
        Scope {
            region: "us-east-1".into(),
            account: "123456789012".into(),
            partition: "aws".into(),
        }
    }

    fn req(r: &str) -> Request {
        Request::for_target(&parse_reference(r).unwrap().target)
    }

    #[test]
    fn arns_for_each_kind() {
        let requests = vec![
            req("ssm:/prod/db/password"),
            req("ssm:/prod/db/password:3"),
            req("ssm:plain"),
            req("arn:aws:ssm:eu-west-1:999:parameter/eu/x"),
            req("sm:prod/api#TOKEN"),
            req("arn:aws:secretsmanager:us-west-2:999:secret:other-AbCdEf:K::"),
            req("s3://cfg-bucket/app/prod.env#X"),
            Request::SsmPath {
                path: "/myapp/prod/".into(),
                region: None,
            },
        ];
        let doc = document(&requests, &scope(), &BTreeSet::new());
        let text = doc.to_string();
        for arn in [
            "arn:aws:ssm:us-east-1:123456789012:parameter/prod/db/password",
            "arn:aws:ssm:us-east-1:123456789012:parameter/plain",
            "arn:aws:ssm:eu-west-1:123456789012:parameter/eu/x",
            "arn:aws:ssm:us-east-1:123456789012:parameter/myapp/prod\"",
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/api-??????",
            "arn:aws:secretsmanager:us-west-2:999:secret:other-AbCdEf\"",
            "arn:aws:s3:::cfg-bucket/app/prod.env\"",
            "arn:aws:s3:::cfg-bucket/app/prod.env.instruction",
            "ssm.us-east-1.amazonaws.com",
            "ssm.eu-west-1.amazonaws.com",
        ] {
            assert!(text.contains(arn), "{arn} missing from {text}");
        }
        // the two versions of one parameter are one resource
        assert_eq!(text.matches("parameter/prod/db/password").count(), 1);
        let sids: Vec<&str> = doc["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["Sid"].as_str().unwrap())
            .collect();
        assert_eq!(
            sids,
            [
                "ReadSsmParameters",
                "ReadSsmPaths",
                "DecryptSecureStringsWithCustomerKeysOptional",
                "ReadSecrets",
                "BatchReadSecretsOptional",
                "ReadS3Objects",
                "DecryptWithKms"
            ]
        );
    }

    #[test]
    fn nothing_configured_is_an_empty_policy() {
        let doc = document(&[], &scope(), &BTreeSet::new());
        assert_eq!(doc["Statement"].as_array().unwrap().len(), 0);
    }

    #[test]
    fn resolved_kms_keys_narrow_the_decrypt_statement() {
        let keys: BTreeSet<String> = ["arn:aws:kms:us-east-1:1:key/k".to_owned()].into();
        let doc = document(&[req("s3://cfg-bucket/a")], &scope(), &keys);
        assert!(doc.to_string().contains("arn:aws:kms:us-east-1:1:key/k"));
        let doc = document(
            &[req("s3://cfg-bucket/a"), req("kms:AQID")],
            &scope(),
            &keys,
        );
        assert!(doc.to_string().contains("\"Resource\":\"*\""));
    }
}
