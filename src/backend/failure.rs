//! SDK errors in envseal's terms: a [`FailureKind`] and a one-line reason
//! that names resources, never values; and when a batch call should give
//! way to single-item calls.

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::credentials;
use crate::error::{FailureKind, FetchError};

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
