//! The AWS SDK configuration, loaded once and only when there is something to
//! fetch, and one client per service and region, reused by every request so
//! that connections are shared; the one HTTPS connector they all use.

use std::cell::RefCell;
use std::collections::HashMap;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

use super::retry::{Policy, Retrier};
use super::trust;
use crate::config::{AwsSettings, FetchOptions};
use crate::error::{FailureKind, FetchError};

pub struct Aws {
    base: SdkConfig,
    /// envseal's own retries (resolution); `None`: the SDK's (push, pull, policy).
    retrier: Option<Retrier>,
    /// `AWS_ENDPOINT_URL_S3` is set: S3 is addressed path-style.
    s3_endpoint_configured: bool,
    ssm: RefCell<HashMap<Option<String>, aws_sdk_ssm::Client>>,
    secrets: RefCell<HashMap<Option<String>, aws_sdk_secretsmanager::Client>>,
    kms: RefCell<HashMap<Option<String>, aws_sdk_kms::Client>>,
    s3: RefCell<HashMap<Option<String>, aws_sdk_s3::Client>>,
    /// Buckets found in another region (S3 named it in a redirect).
    bucket_regions: RefCell<HashMap<String, String>>,
}

/// The HTTPS client: rustls with the ring provider, trusting `AWS_CA_BUNDLE`,
/// else `SSL_CERT_FILE`, else the compiled-in Mozilla roots (see [`trust`]).
fn http_client(settings: &AwsSettings) -> SharedHttpClient {
    let anchors = trust::Anchors::choose(|name| settings.tls_bundle(name));
    SharedHttpClient::new(BuildOnce(trust::http_client(&anchors)))
}

/// The SDK's HTTPS client, minus its warm-up: for every client built from a
/// configuration (the STS client aws-config makes for web identity, then one
/// per service and region here), the SDK builds a whole connector — TLS
/// configuration and root store, parsed from PEM — only to drop it, "so that
/// native certificates load early". That cost ~0.5–1 ms of CPU per client
/// on the path to the first request. Without it the one connector is built
/// once, when the first request needs it, and shared by every client.
#[derive(Debug)]
struct BuildOnce(SharedHttpClient);

impl HttpClient for BuildOnce {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        self.0.http_connector(settings, components)
    }

    // `validate_base_client_config`: the trait's default (nothing to check).

    fn validate_final_config(
        &self,
        components: &RuntimeComponents,
        cfg: &ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.validate_final_config(components, cfg)
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.0.connector_metadata()
    }
}

/// Attempts per request when neither `AWS_MAX_ATTEMPTS` nor the profile's
/// `max_attempts` says otherwise. The SDK's default of 3 gives up on about
/// 3 % of requests when 30 % are throttled, as in a fleet restart; an
/// entrypoint has one overall deadline (`--timeout`) that bounds the total
/// time anyway, so it can afford more tries with jittered backoff.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 6;

/// The SDK's own default when nothing is configured.
const SDK_DEFAULT_MAX_ATTEMPTS: u32 = 3;

/// `base` with [`DEFAULT_MAX_ATTEMPTS`] unless attempts were configured: by
/// `AWS_MAX_ATTEMPTS` (`from_env`), or by a profile's `max_attempts` to
/// anything but the SDK default.
fn with_default_attempts(base: SdkConfig, from_env: bool) -> SdkConfig {
    match base.retry_config() {
        Some(retry) if !from_env && retry.max_attempts() == SDK_DEFAULT_MAX_ATTEMPTS => {
            let retry = retry.clone().with_max_attempts(DEFAULT_MAX_ATTEMPTS);
            base.into_builder().retry_config(retry).build()
        }
        _ => base,
    }
}

/// The attempts a configuration caps calls at: `AWS_MAX_ATTEMPTS`
/// (`from_env`), or a profile's `max_attempts` other than the SDK default;
/// `None` when nothing was configured (retry until the deadline).
fn configured_max_attempts(base: &SdkConfig, from_env: bool) -> Option<u32> {
    let attempts = base.retry_config()?.max_attempts();
    (from_env || attempts != SDK_DEFAULT_MAX_ATTEMPTS).then_some(attempts)
}

impl Aws {
    /// Standard configuration chain: environment, profile, web identity,
    /// container and instance credentials; `AWS_ENDPOINT_URL[_<SERVICE>]`,
    /// `AWS_MAX_ATTEMPTS`, `AWS_RETRY_MODE` (standard by default). Calls
    /// are retried by the SDK ([`DEFAULT_MAX_ATTEMPTS`] unless configured).
    pub async fn load(settings: &AwsSettings) -> Aws {
        let base = Aws::load_base(settings).await;
        let base = with_default_attempts(base, settings.max_attempts_configured);
        Aws::with(base, None, settings)
    }

    /// The same configuration for a resolution: the SDK does not retry;
    /// backends retry with [`Aws::retrier`] (until `options.deadline`, each
    /// attempt limited to `options.attempt_timeout`, throttled rounds
    /// waiting by `options.throttle_window`; `AWS_MAX_ATTEMPTS` or a
    /// profile's `max_attempts` still caps attempts; `AWS_RETRY_MODE` has no
    /// effect). Credential providers keep their own retries.
    pub async fn load_for_resolution(options: &FetchOptions, settings: &AwsSettings) -> Aws {
        // The caller's deadline started with this future.
        let deadline = tokio::time::Instant::now() + options.deadline;
        let base = Aws::load_base(settings).await;
        let max_attempts = configured_max_attempts(&base, settings.max_attempts_configured);
        let base = base
            .into_builder()
            .retry_config(aws_smithy_types::retry::RetryConfig::disabled())
            .build();
        let policy = Policy {
            attempt_timeout: options.attempt_timeout,
            max_attempts,
            throttle_window: options.throttle_window,
            deadline: Some(deadline),
        };
        Aws::with(base, Some(Retrier::new(policy)), settings)
    }

    async fn load_base(settings: &AwsSettings) -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .http_client(http_client(settings))
            .load()
            .await
    }

    fn with(base: SdkConfig, retrier: Option<Retrier>, settings: &AwsSettings) -> Aws {
        Aws {
            base,
            retrier,
            s3_endpoint_configured: settings.s3_endpoint_configured,
            ssm: RefCell::default(),
            secrets: RefCell::default(),
            kms: RefCell::default(),
            s3: RefCell::default(),
            bucket_regions: RefCell::default(),
        }
    }

    /// The same configuration (endpoints, region, HTTPS client, retry
    /// policy) with other credentials: a role's, from STS AssumeRole. Its
    /// clients are its own (one per service and region); its throttling
    /// gates too, since a role in another account has that account's rates.
    pub fn with_credentials(&self, credentials: aws_credential_types::Credentials) -> Aws {
        let base = self
            .base
            .clone()
            .into_builder()
            .credentials_provider(
                aws_credential_types::provider::SharedCredentialsProvider::new(credentials),
            )
            .build();
        Aws {
            base,
            retrier: self
                .retrier
                .as_ref()
                .map(|r| Retrier::new(r.policy.clone())),
            s3_endpoint_configured: self.s3_endpoint_configured,
            ssm: RefCell::default(),
            secrets: RefCell::default(),
            kms: RefCell::default(),
            s3: RefCell::default(),
            bucket_regions: RefCell::default(),
        }
    }

    /// The region S3 named for `bucket` in a redirect, if any.
    pub fn bucket_region(&self, bucket: &str) -> Option<String> {
        self.bucket_regions.borrow().get(bucket).cloned()
    }

    /// Remembers where `bucket` is, so that later requests go there at once.
    pub fn set_bucket_region(&self, bucket: &str, region: &str) {
        self.bucket_regions
            .borrow_mut()
            .insert(bucket.to_owned(), region.to_owned());
    }

    /// The loaded configuration, for clients this module does not cache.
    pub fn base(&self) -> &SdkConfig {
        &self.base
    }

    /// envseal's retries, for [`super::retry::send`].
    pub fn retrier(&self) -> Option<&Retrier> {
        self.retrier.as_ref()
    }

    /// `region` as a batch or throttling key: `None` when it is the
    /// configured region (an ARN in the configured region shares batches
    /// with names).
    pub fn region_key<'a>(&self, region: Option<&'a str>) -> Option<&'a str> {
        region.filter(|r| self.base.region().map(|c| c.as_ref()) != Some(*r))
    }

    /// The configured region, if any.
    pub fn configured_region(&self) -> Option<&str> {
        self.base.region().map(|r| r.as_ref())
    }

    fn check_region(&self, region: Option<&str>) -> Result<(), FetchError> {
        if region.is_none() && self.base.region().is_none() {
            return Err(FetchError::new(
                FailureKind::Service,
                "no AWS region configured (set AWS_REGION or use an ARN)",
            ));
        }
        Ok(())
    }

    pub fn ssm(&self, region: Option<&str>) -> Result<aws_sdk_ssm::Client, FetchError> {
        self.check_region(region)?;
        let mut cache = self.ssm.borrow_mut();
        let client = cache.entry(region.map(str::to_owned)).or_insert_with(|| {
            let mut b = aws_sdk_ssm::config::Builder::from(&self.base);
            if let Some(r) = region {
                b = b.region(Region::new(r.to_owned()));
            }
            aws_sdk_ssm::Client::from_conf(b.build())
        });
        Ok(client.clone())
    }

    pub fn secrets(
        &self,
        region: Option<&str>,
    ) -> Result<aws_sdk_secretsmanager::Client, FetchError> {
        self.check_region(region)?;
        let mut cache = self.secrets.borrow_mut();
        let client = cache.entry(region.map(str::to_owned)).or_insert_with(|| {
            let mut b = aws_sdk_secretsmanager::config::Builder::from(&self.base);
            if let Some(r) = region {
                b = b.region(Region::new(r.to_owned()));
            }
            aws_sdk_secretsmanager::Client::from_conf(b.build())
        });
        Ok(client.clone())
    }

    pub fn kms(&self, region: Option<&str>) -> Result<aws_sdk_kms::Client, FetchError> {
        self.check_region(region)?;
        let mut cache = self.kms.borrow_mut();
        let client = cache.entry(region.map(str::to_owned)).or_insert_with(|| {
            let mut b = aws_sdk_kms::config::Builder::from(&self.base);
            if let Some(r) = region {
                b = b.region(Region::new(r.to_owned()));
            }
            aws_sdk_kms::Client::from_conf(b.build())
        });
        Ok(client.clone())
    }

    /// The S3 client of `region` (`None`: the configured one).
    pub fn s3(&self, region: Option<&str>) -> Result<aws_sdk_s3::Client, FetchError> {
        self.check_region(region)?;
        let mut cache = self.s3.borrow_mut();
        let client = cache.entry(region.map(str::to_owned)).or_insert_with(|| {
            let mut b = aws_sdk_s3::config::Builder::from(&self.base);
            if let Some(r) = region {
                b = b.region(Region::new(r.to_owned()));
            }
            // A configured endpoint (moto, MinIO, LocalStack, a VPC endpoint
            // URL) is addressed path-style: virtual-host style would need
            // `BUCKET.host` to resolve.
            if self.base.endpoint_url().is_some() || self.s3_endpoint_configured {
                b = b.force_path_style(true);
            }
            aws_sdk_s3::Client::from_conf(b.build())
        });
        Ok(client.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_types::retry::RetryConfig;

    fn attempts(config: &SdkConfig) -> u32 {
        config.retry_config().unwrap().max_attempts()
    }

    #[test]
    fn more_attempts_by_default_but_configured_ones_stand() {
        let sdk_default = || {
            SdkConfig::builder()
                .retry_config(RetryConfig::standard())
                .build()
        };
        assert_eq!(attempts(&sdk_default()), SDK_DEFAULT_MAX_ATTEMPTS);
        assert_eq!(
            attempts(&with_default_attempts(sdk_default(), false)),
            DEFAULT_MAX_ATTEMPTS
        );
        // AWS_MAX_ATTEMPTS=3 is a choice.
        assert_eq!(attempts(&with_default_attempts(sdk_default(), true)), 3);
        // So is a profile's max_attempts = 2.
        let two = SdkConfig::builder()
            .retry_config(RetryConfig::standard().with_max_attempts(2))
            .build();
        assert_eq!(attempts(&with_default_attempts(two, false)), 2);
    }

    #[test]
    fn resolution_attempts_are_capped_only_when_configured() {
        let with = |n| {
            SdkConfig::builder()
                .retry_config(RetryConfig::standard().with_max_attempts(n))
                .build()
        };
        // Nothing configured (the SDK's default 3): until the deadline.
        assert_eq!(configured_max_attempts(&with(3), false), None);
        assert_eq!(configured_max_attempts(&with(3), true), Some(3));
        assert_eq!(configured_max_attempts(&with(2), false), Some(2));
        assert_eq!(configured_max_attempts(&with(10), true), Some(10));
        assert_eq!(
            configured_max_attempts(&SdkConfig::builder().build(), false),
            None
        );
    }
}
