//! SSM Parameter Store: GetParameters in batches of 10 (all batches at once;
//! names and ARNs in the configured region share batches), falling back to
//! concurrent GetParameter where the batch call is denied; GetParametersByPath
//! for path bundles, every page. Always WithDecryption. Every call is retried
//! as [`super::retry`] says.

use std::collections::BTreeMap;

use futures_util::future::join_all;
use tracing::{debug, info};

use super::client::Aws;
use super::retry::{self, Track};
use super::sink::Sink;
use crate::error::{FailureKind, FetchError};
use crate::plan::Fetched;
use crate::plan::{batches, Request};
use crate::reference::{SsmParam, SsmPath};
use crate::secret::Secret;

/// GetParameters takes at most 10 names.
pub const BATCH: usize = 10;

pub async fn fetch(aws: &Aws, params: &[SsmParam], paths: &[SsmPath], sink: &Sink) {
    let by_region = by_region(aws, params);
    let mut jobs = Vec::new();
    for (region, params) in &by_region {
        // One name per batch at most, so that the answer (which moto returns
        // without its Selector) can be matched by name.
        for batch in batches(params, BATCH, |p| p.name.clone()) {
            jobs.push(fetch_batch(aws, region.as_deref(), batch, sink));
        }
    }
    let path_jobs = paths.iter().map(|p| fetch_path(aws, p, sink));
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
    let names: Vec<String> = batch.iter().map(SsmParam::request_name).collect();
    debug!(count = names.len(), ?region, "ssm GetParameters");
    let track = Track::new(sink, batch.iter().cloned().map(Request::SsmParam).collect());
    let result = retry::send(aws.retrier(), "ssm", region, &track, || {
        client
            .get_parameters()
            .set_names(Some(names.clone()))
            .with_decryption(true)
            .send()
    })
    .await;
    let output = match result {
        Ok(o) => o,
        Err(e) if e.batch_unavailable() => {
            info!(
                count = batch.len(),
                "ssm:GetParameters denied or unavailable; falling back to one GetParameter per name"
            );
            join_all(
                batch
                    .iter()
                    .map(|p| fetch_one(aws, &client, region, p, sink)),
            )
            .await;
            return;
        }
        Err(e) => {
            let e = e.classify();
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
        if let Some(i) = batch.iter().position(|p| {
            p.name == name || p.request_name() == name || arn_name(name) == Some(p.name.as_str())
        }) {
            answered[i] = true;
            let answer = match parameter.value() {
                Some(v) => Ok(Fetched::Text(Secret::new(v.to_owned()))),
                None => Err(FetchError::new(
                    FailureKind::Service,
                    "GetParameters answered without a value",
                )),
            };
            put(sink, &batch[i], answer);
        }
    }
    // Asked by ARN and answered "invalid": a server that takes ARNs only in
    // GetParameter (moto), or a parameter that does not exist. GetParameter
    // by the same ARN says which.
    let mut by_arn = Vec::new();
    for invalid in output.invalid_parameters() {
        if let Some(i) = batch.iter().position(|p| {
            &p.request_name() == invalid || &p.api_name() == invalid || &p.name == invalid
        }) {
            answered[i] = true;
            if batch[i].request_name() != batch[i].api_name() {
                by_arn.push(&batch[i]);
                continue;
            }
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
    join_all(
        by_arn
            .into_iter()
            .map(|p| fetch_one(aws, &client, region, p, sink)),
    )
    .await;
}

/// `arn:aws:ssm:r:a:parameter/x/y` → `/x/y`, for servers that echo ARNs.
fn arn_name(name: &str) -> Option<&str> {
    name.strip_prefix("arn:")
        .and_then(|rest| rest.split_once(":parameter"))
        .map(|(_, n)| n)
}

async fn fetch_one(
    aws: &Aws,
    client: &aws_sdk_ssm::Client,
    region: Option<&str>,
    p: &SsmParam,
    sink: &Sink,
) {
    let track = Track::one(sink, Request::SsmParam(p.clone()));
    let name = p.request_name();
    let result = retry::send(aws.retrier(), "ssm", region, &track, || {
        client
            .get_parameter()
            .name(name.clone())
            .with_decryption(true)
            .send()
    })
    .await;
    let answer = match result {
        Ok(o) => match o.parameter().and_then(|p| p.value()) {
            Some(v) => Ok(Fetched::Text(Secret::new(v.to_owned()))),
            None => Err(FetchError::new(
                FailureKind::Service,
                "GetParameter answered without a value",
            )),
        },
        Err(e) => Err(e.classify()),
    };
    put(sink, p, answer);
}

async fn fetch_path(aws: &Aws, p: &SsmPath, sink: &Sink) {
    let (path, region) = (p.path.as_str(), p.region.as_deref());
    let request = Request::SsmPath {
        path: p.path.clone(),
        region: p.region.clone(),
        role: p.role.clone(),
    };
    let track = Track::one(sink, request.clone());
    let answer = fetch_path_pages(aws, path, region, &track).await;
    sink.put(request, answer.map(Fetched::Entries));
}

/// Every parameter under `path`, recursively.
///
/// GetParametersByPath answers 10 parameters a page, one page after the
/// other: 10 round trips for 100 parameters. DescribeParameters lists up to
/// 50 names a page, and GetParameters fetches them 10 a call, all at once,
/// while the next page is listed: 3 round trips for 100. Both start
/// together. When the first listing page holds more names than a
/// GetParametersByPath page could, envseal switches to listing and fetching;
/// otherwise (DescribeParameters refused, throttled, paging at 10 like moto,
/// or a path of 10 parameters or fewer) GetParametersByPath goes on as if it
/// were alone, and is also where a failed listing or fetch falls back to
/// (and the other way round, for a policy that grants the listing but not
/// GetParametersByPath). No round trip is lost either way; the price is one
/// more API call.
async fn fetch_path_pages(
    aws: &Aws,
    path: &str,
    region: Option<&str>,
    track: &Track<'_>,
) -> Result<Vec<(String, Secret)>, FetchError> {
    let client = aws.ssm(region)?;
    let calls = Calls {
        aws,
        client: &client,
        region: aws.region_key(region),
        track,
    };
    let by_path = by_path(&calls, path);
    let first_listing = describe_page(&calls, path, None);
    tokio::pin!(by_path, first_listing);
    let listing = tokio::select! {
        biased;
        done = &mut by_path => match done {
            Ok(entries) => return Ok(entries),
            // Refused (a policy may grant the listing instead) or failed:
            // the listing is the last chance, and this error the answer
            // when it fails too.
            Err(e) => {
                return match first_listing.await {
                    Ok(first) if !first.names.is_empty() => {
                        list_then_get(&calls, path, first).await.map_err(|_| e)
                    }
                    _ => Err(e),
                };
            }
        },
        listing = &mut first_listing => listing,
    };
    // A narrow first page is kept: should GetParametersByPath be refused
    // after it (a policy that grants the listing only), the listing goes on
    // from it, whichever of the two answered first.
    let (why, narrow) = match listing {
        Ok(first) if first.names.len() > BATCH => match list_then_get(&calls, path, first).await {
            Ok(entries) => return Ok(entries),
            Err(why) => (why, None),
        },
        Ok(first) => (
            "listing pages no wider than GetParametersByPath",
            Some(first),
        ),
        Err(why) => (why, None),
    };
    debug!(path, why, "ssm path: GetParametersByPath");
    match (by_path.await, narrow) {
        (Err(e), Some(first)) if !first.names.is_empty() => {
            debug!(
                path,
                "ssm path: GetParametersByPath failed, listing instead"
            );
            list_then_get(&calls, path, first).await.map_err(|_| e)
        }
        (answer, _) => answer,
    }
}

/// What the calls of one path bundle share.
struct Calls<'a> {
    aws: &'a Aws,
    client: &'a aws_sdk_ssm::Client,
    /// The throttling key ([`Aws::region_key`]).
    region: Option<&'a str>,
    track: &'a Track<'a>,
}

/// One page of names under `path`.
struct Listing {
    names: Vec<String>,
    next_token: Option<String>,
}

/// DescribeParameters takes at most 50 results a page.
const DESCRIBE_PAGE: i32 = 50;

/// DescribeParameters of the names under `path` (which ends in `/`).
/// Errors say which call failed; the caller falls back to
/// GetParametersByPath whatever they were.
async fn describe_page(
    calls: &Calls<'_>,
    path: &str,
    token: Option<String>,
) -> Result<Listing, &'static str> {
    use aws_sdk_ssm::types::ParameterStringFilter;
    // The Path filter names the hierarchy without its trailing slash.
    let hierarchy = match path.trim_end_matches('/') {
        "" => "/",
        h => h,
    };
    let filter = ParameterStringFilter::builder()
        .key("Path")
        .option("Recursive")
        .values(hierarchy)
        .build()
        .map_err(|_| "DescribeParameters filter")?;
    let call = calls
        .client
        .describe_parameters()
        .parameter_filters(filter)
        .max_results(DESCRIBE_PAGE)
        .set_next_token(token)
        // An optimisation only: refused, throttled or stalled, it is not
        // retried (GetParametersByPath does the job).
        .customize()
        .config_override(
            aws_sdk_ssm::config::Builder::default()
                .retry_config(aws_smithy_types::retry::RetryConfig::disabled()),
        )
        .send();
    let output = match calls.aws.retrier() {
        Some(r) => tokio::time::timeout(r.policy.attempt_timeout, call)
            .await
            .map_err(|_| "DescribeParameters stalled")?,
        None => call.await,
    }
    .map_err(|_| "DescribeParameters failed")?;
    Ok(Listing {
        names: output
            .parameters()
            .iter()
            .filter_map(|p| p.name())
            .filter(|n| n.starts_with(path))
            .map(str::to_owned)
            .collect(),
        next_token: output
            .next_token()
            .filter(|t| !t.is_empty())
            .map(str::to_owned),
    })
}

/// The values of every name listed, from `first` on: each page's
/// GetParameters batches are sent as soon as the page arrives, while the
/// next page is being listed.
async fn list_then_get(
    calls: &Calls<'_>,
    path: &str,
    first: Listing,
) -> Result<Vec<(String, Secret)>, &'static str> {
    use futures_util::stream::{FuturesUnordered, StreamExt};

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Vec<String>>();
    let list = async move {
        let mut page = first;
        let mut pages = 1u32;
        loop {
            for chunk in page.names.chunks(BATCH) {
                // The receiver outlives this future (see try_join below).
                let _ = tx.send(chunk.to_vec());
            }
            let Some(token) = page.next_token.take() else {
                break;
            };
            page = describe_page(calls, path, Some(token)).await?;
            pages += 1;
        }
        Ok::<u32, &'static str>(pages)
    };
    let get = async {
        let mut in_flight = FuturesUnordered::new();
        let mut entries = Vec::new();
        let mut listing = true;
        loop {
            tokio::select! {
                names = rx.recv(), if listing => match names {
                    Some(names) => in_flight.push(get_batch(calls, names)),
                    None => listing = false,
                },
                Some(answer) = in_flight.next(), if !in_flight.is_empty() => {
                    for (name, value) in answer? {
                        let relative = name.strip_prefix(path).unwrap_or(&name).to_owned();
                        entries.push((relative, value));
                    }
                }
                else => break,
            }
        }
        Ok::<_, &'static str>(entries)
    };
    let (pages, entries) = futures_util::future::try_join(list, get).await?;
    debug!(
        path,
        pages,
        count = entries.len(),
        "ssm DescribeParameters + GetParameters done"
    );
    Ok(entries)
}

/// GetParameters of listed names: (name, value) of those that still exist
/// (one deleted since it was listed is left out, as a listing made a moment
/// later would have left it out).
async fn get_batch(
    calls: &Calls<'_>,
    names: Vec<String>,
) -> Result<Vec<(String, Secret)>, &'static str> {
    let output = retry::send(
        calls.aws.retrier(),
        "ssm",
        calls.region,
        calls.track,
        || {
            calls
                .client
                .get_parameters()
                .set_names(Some(names.clone()))
                .with_decryption(true)
                .send()
        },
    )
    .await
    .map_err(|_| "GetParameters of the listed names failed")?;
    Ok(output
        .parameters()
        .iter()
        .filter_map(|p| match (p.name(), p.value()) {
            (Some(n), Some(v)) => Some((n.to_owned(), Secret::new(v.to_owned()))),
            _ => None,
        })
        .collect())
}

async fn by_path(calls: &Calls<'_>, path: &str) -> Result<Vec<(String, Secret)>, FetchError> {
    let mut entries = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0u32;
    loop {
        let page_token = token.take();
        let output = retry::send(
            calls.aws.retrier(),
            "ssm",
            calls.region,
            calls.track,
            || {
                calls
                    .client
                    .get_parameters_by_path()
                    .path(path)
                    .recursive(true)
                    .with_decryption(true)
                    .max_results(10)
                    .set_next_token(page_token.clone())
                    .send()
            },
        )
        .await
        .map_err(|e| e.classify())?;
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

/// `params` by region, the configured one under `None` whether named or not:
/// an ARN in the configured region shares batches with plain names (AWS
/// takes ARNs in GetParameters). `--watch`'s version checks batch the same way.
pub fn by_region(aws: &Aws, params: &[SsmParam]) -> BTreeMap<Option<String>, Vec<SsmParam>> {
    let mut by_region: BTreeMap<Option<String>, Vec<SsmParam>> = BTreeMap::new();
    for p in params {
        by_region
            .entry(aws.region_key(p.region.as_deref()).map(str::to_owned))
            .or_default()
            .push(p.clone());
    }
    by_region
}
