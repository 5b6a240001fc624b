//! Every AWS call: the SDK configuration and clients ([`client`]), TLS trust
//! ([`trust`]), credential failures named ([`credentials`]), SDK errors as
//! failures ([`failure`]), retries ([`retry`]), and one module per service.
//! For a resolution each service takes its share of the [`Plan`] and puts one
//! answer per request into the [`Sink`]; a backend knows nothing about
//! variables, precedence or exec.
//!
//! [`Sink`]: sink::Sink

pub mod client;
pub mod credentials;
pub mod failure;
pub mod kms;
pub mod retry;
pub mod s3;
pub mod secrets_manager;
pub mod sink;
pub mod ssm;
pub mod sts;
pub mod trust;
pub mod versions;

use futures_util::future::join_all;

use crate::config::{AwsSettings, FetchOptions};
use crate::plan::Plan;
use sink::Sink;

/// Loads the AWS configuration for a resolution and runs every service's
/// share of `plan` concurrently; answers land in `sink`. Requests read
/// through a role wait for that role's AssumeRole (one per distinct role and
/// external id) and nothing else; the others start at once.
pub async fn fetch(plan: &Plan, options: &FetchOptions, settings: &AwsSettings, sink: &Sink) {
    let aws = client::Aws::load_for_resolution(options, settings).await;
    let parts = plan.by_role();
    let session = settings.role_session_name.as_deref();
    join_all(parts.iter().map(|(role, part)| {
        let aws = &aws;
        async move {
            let Some(role) = role else {
                return fetch_part(aws, part, sink).await;
            };
            let track = retry::Track::new(sink, part.requests()).step(format!("AssumeRole {role}"));
            match sts::assume_role(aws, role, session, &track).await {
                Ok(role_aws) => fetch_part(&role_aws, part, sink).await,
                Err(e) => {
                    for request in part.requests() {
                        sink.put(request, Err(e.clone()));
                    }
                }
            }
        }
    }))
    .await;
}

/// Every service's share of `plan`, concurrently, with the credentials of `aws`.
async fn fetch_part(aws: &client::Aws, plan: &Plan, sink: &Sink) {
    tokio::join!(
        ssm::fetch(aws, &plan.ssm_params, &plan.ssm_paths, sink),
        secrets_manager::fetch(aws, &plan.secrets, sink),
        s3::fetch(aws, &plan.s3_objects, sink),
        kms::fetch(aws, &plan.kms_blobs, sink),
    );
}
