//! Every AWS call: the SDK configuration and clients ([`client`]), TLS trust
//! ([`trust`]), credential failures named ([`credentials`]), retries
//! ([`retry`]), and one module per service. For a resolution each service
//! takes its share of the [`Plan`] and puts one answer per request into the
//! [`Sink`]; a backend knows nothing about variables, precedence or exec.

pub mod client;
pub mod credentials;
pub mod kms;
pub mod retry;
pub mod s3;
pub mod secrets_manager;
pub mod ssm;
pub mod sts;
pub mod trust;

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::config::AwsSettings;
use crate::error::{FailureKind, FetchError};
use crate::plan::{Answer, Plan, Request};

/// Loads the AWS configuration for a resolution and runs every service's
/// share of `plan` concurrently; answers land in `sink`.
pub async fn fetch(plan: &Plan, attempt_timeout: Duration, settings: &AwsSettings, sink: &Sink) {
    let aws = client::Aws::load_for_resolution(attempt_timeout, settings).await;
    tokio::join!(
        ssm::fetch(&aws, &plan.ssm_params, &plan.ssm_paths, sink),
        secrets_manager::fetch(&aws, &plan.secrets, sink),
        s3::fetch(&aws, &plan.s3_objects, sink),
        kms::fetch(&aws, &plan.kms_blobs, sink),
    );
}

/// Where backends put their answers as they arrive, and what each request
/// went through so far (attempts, the last transient error: see
/// [`retry`]). When the deadline passes, whatever has no answer in here is
/// reported as timed out, with its progress.
#[derive(Default)]
pub struct Sink {
    answers: RefCell<HashMap<Request, Answer>>,
    progress: RefCell<HashMap<Request, retry::Progress>>,
}

impl Sink {
    pub fn put(&self, request: Request, answer: Answer) {
        self.answers.borrow_mut().insert(request, answer);
    }

    pub fn attempt_started(&self, requests: &[Request]) {
        let mut progress = self.progress.borrow_mut();
        for r in requests {
            progress.entry(r.clone()).or_default().started();
        }
    }

    pub fn attempt_failed(&self, requests: &[Request], why: String) {
        let mut progress = self.progress.borrow_mut();
        for r in requests {
            progress.entry(r.clone()).or_default().failed(why.clone());
        }
    }

    /// The answers, and the progress of every request that made attempts.
    pub fn into_inner(self) -> (HashMap<Request, Answer>, HashMap<Request, retry::Progress>) {
        (self.answers.into_inner(), self.progress.into_inner())
    }
}

/// True when the call was refused by IAM: an `AccessDenied*` code, or HTTP 403
/// whatever the body (some servers answer a denied JSON call with XML).
pub fn is_denied<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> bool {
    if err
        .raw_response()
        .is_some_and(|r| r.status().as_u16() == 403)
    {
        return true;
    }
    err.as_service_error()
        .and_then(|e| e.code())
        .is_some_and(|c| c.starts_with("AccessDenied"))
}

/// True when a batch call cannot be used, so that its single-item form
/// should be tried instead: denied ([`is_denied`]), or not implemented by the
/// server (an emulator or a proxy that knows only the single-item call:
/// HTTP 404/501, or an unknown-operation code).
pub fn batch_unavailable<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> bool {
    if is_denied(err) {
        return true;
    }
    if err
        .raw_response()
        .is_some_and(|r| matches!(r.status().as_u16(), 404 | 501))
    {
        return true;
    }
    err.as_service_error()
        .and_then(|e| e.code())
        .is_some_and(|c| {
            matches!(
                c,
                "UnknownOperationException" | "InvalidAction" | "NotImplemented"
            )
        })
}

/// Maps an SDK error to a failure kind and a one-line reason. Service messages
/// name resources, never values.
pub fn classify<E>(err: &SdkError<E, HttpResponse>) -> FetchError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    // A credential provider that failed: say which one and why, in one line
    // (the SDK's own text can hold a credential process's stderr).
    if let Some(cred) = credentials::find_credentials_error(err) {
        let source = credentials::Source::from_process_env();
        return FetchError::new(
            FailureKind::Credentials,
            credentials::failure_line(cred, &source),
        );
    }
    if is_denied(err) {
        let msg = err
            .as_service_error()
            .and_then(|e| e.message())
            .unwrap_or("HTTP 403");
        return FetchError::new(FailureKind::AccessDenied, format!("access denied: {msg}"));
    }
    match err {
        SdkError::ServiceError(_) => {
            let service = err.as_service_error().expect("service error");
            let code = service.code().unwrap_or("unknown error");
            let message = service.message().unwrap_or("");
            let kind = if code.contains("NotFound") || code == "NoSuchKey" || code == "NoSuchBucket"
            {
                FailureKind::NotFound
            } else if matches!(
                code,
                "InvalidCiphertextException"
                    | "IncorrectKeyException"
                    | "KMSInvalidStateException"
                    | "DecryptionFailure"
                    | "KMSAccessDeniedException"
                    | "DisabledException"
            ) {
                FailureKind::Decrypt
            } else {
                FailureKind::Service
            };
            let status = err.raw_response().map(|r| r.status().as_u16()).unwrap_or(0);
            let reason = if message.is_empty() {
                format!("{code} (HTTP {status})")
            } else {
                format!("{code}: {message}")
            };
            FetchError::new(kind, reason)
        }
        SdkError::TimeoutError(_) => FetchError::new(FailureKind::Timeout, "request timed out"),
        SdkError::DispatchFailure(_) => FetchError::new(
            FailureKind::Service,
            format!("could not reach AWS: {}", crate::error::error_chain(err)),
        ),
        // A response that does not parse could echo part of a body that holds a
        // value: say what happened, not what was in it.
        SdkError::ResponseError(_) => FetchError::new(
            FailureKind::Service,
            "unreadable response from AWS (truncated or malformed body)",
        ),
        _ => FetchError::new(FailureKind::Service, crate::error::error_chain(err)),
    }
}
