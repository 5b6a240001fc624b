//! SSM Parameter Store: GetParameters in batches of 10 (all batches at once),
//! falling back to concurrent GetParameter where the batch call is denied;
//! GetParametersByPath for path bundles, every page. Always WithDecryption.

use std::collections::BTreeMap;

use futures_util::future::join_all;
use tracing::{debug, info};

use super::{classify, is_denied, Fetched, Sink};
use crate::aws::Aws;
use crate::error::{FailureKind, FetchError};
use crate::plan::{batches, Request};
use crate::reference::SsmParam;
use crate::secret::Secret;

/// GetParameters takes at most 10 names.
pub const BATCH: usize = 10;

pub async fn fetch(
    aws: &Aws,
    params: &[SsmParam],
    paths: &[(String, Option<String>)],
    sink: &Sink,
) {
    let mut by_region: BTreeMap<Option<String>, Vec<SsmParam>> = BTreeMap::new();
    for p in params {
        by_region
            .entry(p.region.clone())
            .or_default()
            .push(p.clone());
    }
    let mut jobs = Vec::new();
    for (region, params) in &by_region {
        // One name per batch at most, so that the answer (which moto returns
        // without its Selector) can be matched by name.
        for batch in batches(params, BATCH, |p| p.name.clone()) {
            jobs.push(fetch_batch(aws, region.as_deref(), batch, sink));
        }
    }
    let path_jobs = paths
        .iter()
        .map(|(path, region)| fetch_path(aws, path, region.as_deref(), sink));
    futures_util::future::join(join_all(jobs), join_all(path_jobs)).await;
}

fn put(sink: &Sink, p: &SsmParam, answer: Result<Fetched, FetchError>) {
    sink.put(Request::SsmParam(p.clone()), answer);
}

async fn fetch_batch(aws: &Aws, region: Option<&str>, batch: Vec<SsmParam>, sink: &Sink) {
    let client = match aws.ssm(region) {
        Ok(c) => c,
        Err(e) => {
            for p in &batch {
                put(sink, p, Err(e.clone()));
            }
            return;
        }
    };
    let names: Vec<String> = batch.iter().map(SsmParam::api_name).collect();
    debug!(count = names.len(), ?region, "ssm GetParameters");
    let result = client
        .get_parameters()
        .set_names(Some(names))
        .with_decryption(true)
        .send()
        .await;
    let output = match result {
        Ok(o) => o,
        Err(e) if is_denied(&e) => {
            info!(
                count = batch.len(),
                "ssm:GetParameters denied; falling back to one GetParameter per name"
            );
            join_all(batch.iter().map(|p| fetch_one(&client, p, sink))).await;
            return;
        }
        Err(e) => {
            let e = classify(&e);
            for p in &batch {
                put(sink, p, Err(e.clone()));
            }
            return;
        }
    };
    let mut answered = vec![false; batch.len()];
    for parameter in output.parameters() {
        let Some(name) = parameter.name() else {
            continue;
        };
        if let Some(i) = batch
            .iter()
            .position(|p| p.name == name || arn_name(name) == Some(p.name.as_str()))
        {
            answered[i] = true;
            let value = parameter.value().unwrap_or_default().to_owned();
            put(sink, &batch[i], Ok(Fetched::Text(Secret::new(value))));
        }
    }
    for invalid in output.invalid_parameters() {
        if let Some(i) = batch
            .iter()
            .position(|p| &p.api_name() == invalid || &p.name == invalid)
        {
            answered[i] = true;
            let what = if batch[i].selector.is_some() {
                "parameter, version or label not found"
            } else {
                "parameter not found"
            };
            put(
                sink,
                &batch[i],
                Err(FetchError::new(FailureKind::NotFound, what)),
            );
        }
    }
    for (i, p) in batch.iter().enumerate() {
        if !answered[i] {
            put(
                sink,
                p,
                Err(FetchError::new(
                    FailureKind::Service,
                    "GetParameters answered without this parameter",
                )),
            );
        }
    }
}

/// `arn:aws:ssm:r:a:parameter/x/y` → `/x/y`, for servers that echo ARNs.
fn arn_name(name: &str) -> Option<&str> {
    name.strip_prefix("arn:")
        .and_then(|rest| rest.split_once(":parameter"))
        .map(|(_, n)| n)
}

async fn fetch_one(client: &aws_sdk_ssm::Client, p: &SsmParam, sink: &Sink) {
    let result = client
        .get_parameter()
        .name(p.api_name())
        .with_decryption(true)
        .send()
        .await;
    let answer = match result {
        Ok(o) => match o.parameter().and_then(|p| p.value()) {
            Some(v) => Ok(Fetched::Text(Secret::new(v.to_owned()))),
            None => Err(FetchError::new(
                FailureKind::Service,
                "GetParameter answered without a value",
            )),
        },
        Err(e) => Err(classify(&e)),
    };
    put(sink, p, answer);
}

async fn fetch_path(aws: &Aws, path: &str, region: Option<&str>, sink: &Sink) {
    let request = Request::SsmPath {
        path: path.to_owned(),
        region: region.map(str::to_owned),
    };
    let answer = fetch_path_pages(aws, path, region).await;
    sink.put(request, answer.map(Fetched::Entries));
}

async fn fetch_path_pages(
    aws: &Aws,
    path: &str,
    region: Option<&str>,
) -> Result<Vec<(String, Secret)>, FetchError> {
    let client = aws.ssm(region)?;
    let mut entries = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0u32;
    loop {
        let output = client
            .get_parameters_by_path()
            .path(path)
            .recursive(true)
            .with_decryption(true)
            .max_results(10)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| classify(&e))?;
        pages += 1;
        for parameter in output.parameters() {
            let (Some(name), Some(value)) = (parameter.name(), parameter.value()) else {
                continue;
            };
            let relative = name.strip_prefix(path).unwrap_or(name);
            entries.push((relative.to_owned(), Secret::new(value.to_owned())));
        }
        match output.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_owned()),
            _ => break,
        }
    }
    debug!(
        path,
        pages,
        count = entries.len(),
        "ssm GetParametersByPath done"
    );
    Ok(entries)
}
