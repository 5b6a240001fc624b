//! Secrets Manager: BatchGetSecretValue with up to 20 ids per call (all calls
//! at once, grouped by region), falling back to concurrent GetSecretValue
//! where the batch call is denied, for ids the batch did not answer, and for
//! version selectors the batch call cannot express. Secrets named by ARN in
//! the configured region share batches with those named by name. Every call
//! is retried as [`super::retry`] says.

use std::collections::BTreeMap;

use futures_util::future::join_all;
use tracing::{debug, info};
use zeroize::Zeroizing;

use super::client::Aws;
use super::retry::{self, Track};
use super::sink::Sink;
use crate::error::{FailureKind, FetchError};
use crate::plan::Fetched;
use crate::plan::{batches, Request};
use crate::reference::SecretVersion;
use crate::secret::Secret;

/// BatchGetSecretValue takes at most 20 ids.
pub const BATCH: usize = 20;

pub async fn fetch(aws: &Aws, secrets: &[SecretVersion], sink: &Sink) {
    let mut batchable: BTreeMap<Option<String>, Vec<SecretVersion>> = BTreeMap::new();
    let mut single = Vec::new();
    for s in secrets {
        if s.version_stage.is_none() && s.version_id.is_none() {
            batchable
                .entry(aws.region_key(s.region.as_deref()).map(str::to_owned))
                .or_default()
                .push(s.clone());
        } else {
            single.push(s.clone());
        }
    }
    let mut jobs = Vec::new();
    for (region, list) in &batchable {
        for batch in batches(list, BATCH, |s| s.secret_id.clone()) {
            jobs.push(fetch_batch(aws, region.as_deref(), batch, sink));
        }
    }
    let singles = single.iter().map(|s| async move {
        let answer = match aws.secrets(s.region.as_deref()) {
            Ok(client) => {
                let region = aws.region_key(s.region.as_deref());
                fetch_one(aws, &client, region, s, sink).await
            }
            Err(e) => Err(e),
        };
        sink.put(Request::Secret(s.clone()), answer);
    });
    futures_util::future::join(join_all(jobs), join_all(singles)).await;
}

/// Does a batch answer (name, arn) belong to the id that was asked?
fn matches(id: &str, name: Option<&str>, arn: Option<&str>) -> bool {
    name == Some(id)
        || arn == Some(id)
        // partial ARN: the ARN without the random 6-character suffix
        || arn.is_some_and(|a| {
            a.strip_prefix(id)
                .is_some_and(|rest| rest.len() == 7 && rest.starts_with('-'))
        })
}

async fn fetch_batch(aws: &Aws, region: Option<&str>, batch: Vec<SecretVersion>, sink: &Sink) {
    let client = match aws.secrets(region) {
        Ok(c) => c,
        Err(e) => {
            for s in &batch {
                sink.put(Request::Secret(s.clone()), Err(e.clone()));
            }
            return;
        }
    };
    let ids: Vec<String> = batch.iter().map(|s| s.secret_id.clone()).collect();
    let mut answered = vec![false; batch.len()];
    let mut token: Option<String> = None;
    debug!(
        count = ids.len(),
        ?region,
        "secretsmanager BatchGetSecretValue"
    );
    let track = Track::new(sink, batch.iter().cloned().map(Request::Secret).collect());
    loop {
        let page_token = token.take();
        let result = retry::send(aws.retrier(), "secretsmanager", region, &track, || {
            client
                .batch_get_secret_value()
                .set_secret_id_list(Some(ids.clone()))
                .set_next_token(page_token.clone())
                .send()
        })
        .await;
        let output = match result {
            Ok(o) => o,
            Err(e) if e.batch_unavailable() => {
                info!(
                    count = batch.len(),
                    "secretsmanager:BatchGetSecretValue denied or unavailable; falling back to GetSecretValue"
                );
                break;
            }
            Err(e) => {
                let e = e.classify();
                for (i, s) in batch.iter().enumerate() {
                    if !answered[i] {
                        answered[i] = true;
                        sink.put(Request::Secret(s.clone()), Err(e.clone()));
                    }
                }
                return;
            }
        };
        for entry in output.secret_values() {
            for (i, s) in batch.iter().enumerate() {
                if !answered[i] && matches(&s.secret_id, entry.name(), entry.arn()) {
                    answered[i] = true;
                    sink.put(
                        Request::Secret(s.clone()),
                        payload(
                            entry.secret_string(),
                            entry.secret_binary().map(|b| b.as_ref()),
                        ),
                    );
                }
            }
        }
        for error in output.errors() {
            let Some(i) = batch
                .iter()
                .position(|s| error.secret_id() == Some(s.secret_id.as_str()))
            else {
                continue;
            };
            if answered[i] {
                continue;
            }
            let code = error.error_code().unwrap_or("unknown error");
            let kind = if code.contains("NotFound") {
                FailureKind::NotFound
            } else if code.starts_with("AccessDenied") {
                // A per-secret denial in a batch: GetSecretValue below may be
                // allowed where the batch's secret read was not.
                continue;
            } else if code.contains("Decryption") {
                FailureKind::Decrypt
            } else {
                FailureKind::Service
            };
            answered[i] = true;
            let reason = match (kind, error.message()) {
                (FailureKind::NotFound, _) => "secret not found".to_owned(),
                (_, Some(m)) => format!("{code}: {m}"),
                (_, None) => code.to_owned(),
            };
            sink.put(
                Request::Secret(batch[i].clone()),
                Err(FetchError::new(kind, reason)),
            );
        }
        match output.next_token() {
            Some(t) if !t.is_empty() && answered.iter().any(|a| !a) => token = Some(t.to_owned()),
            _ => break,
        }
    }
    let rest = batch
        .iter()
        .enumerate()
        .filter(|(i, _)| !answered[*i])
        .map(|(_, s)| {
            let client = &client;
            async move {
                let answer = fetch_one(aws, client, region, s, sink).await;
                sink.put(Request::Secret(s.clone()), answer);
            }
        });
    join_all(rest).await;
}

async fn fetch_one(
    aws: &Aws,
    client: &aws_sdk_secretsmanager::Client,
    region: Option<&str>,
    s: &SecretVersion,
    sink: &Sink,
) -> Result<Fetched, FetchError> {
    let track = Track::one(sink, Request::Secret(s.clone()));
    let output = retry::send(aws.retrier(), "secretsmanager", region, &track, || {
        client
            .get_secret_value()
            .secret_id(&s.secret_id)
            .set_version_stage(s.version_stage.clone())
            .set_version_id(s.version_id.clone())
            .send()
    })
    .await
    .map_err(|e| {
        let mut e = e.classify();
        if e.kind == FailureKind::NotFound {
            e.reason = if s.version_stage.is_some() || s.version_id.is_some() {
                "secret or version not found".into()
            } else {
                "secret not found".into()
            };
        }
        e
    })?;
    payload(
        output.secret_string(),
        output.secret_binary().map(|b| b.as_ref()),
    )
}

fn payload(string: Option<&str>, binary: Option<&[u8]>) -> Result<Fetched, FetchError> {
    match (string, binary) {
        (Some(s), _) => Ok(Fetched::Text(Secret::new(s.to_owned()))),
        (None, Some(b)) => Ok(Fetched::Bytes(Zeroizing::new(b.to_vec()))),
        (None, None) => Err(FetchError::new(
            FailureKind::InvalidValue,
            "secret has neither SecretString nor SecretBinary",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn batch_answers_match_names_and_arns() {
        let arn = "arn:aws:secretsmanager:us-east-1:123:secret:dev/api-AbCdEf";
        assert!(matches("dev/api", Some("dev/api"), Some(arn)));
        assert!(matches(arn, Some("dev/api"), Some(arn)));
        assert!(matches(
            "arn:aws:secretsmanager:us-east-1:123:secret:dev/api",
            Some("dev/api"),
            Some(arn)
        ));
        assert!(!matches("dev/ap", Some("dev/api"), Some(arn)));
        assert!(!matches("dev", Some("dev/api"), Some(arn)));
    }
}
