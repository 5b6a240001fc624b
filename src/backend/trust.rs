//! Which certificate authorities HTTPS to AWS trusts: `AWS_CA_BUNDLE`, else
//! `SSL_CERT_FILE` (PEM files), else the Mozilla roots compiled into the binary,
//! so that an empty (`FROM scratch`) root needs no CA files.
//!
//! The operating system's store (`/etc/ssl/...`) is never read: the binary
//! behaves the same in every image. aws-config does not read `AWS_CA_BUNDLE`
//! itself, so this is the only place it is handled.

use std::ffi::OsString;
use std::path::Path;

use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};
use aws_smithy_runtime_api::client::http::{
    HttpConnector, HttpConnectorFuture, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::result::ConnectorError;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

/// The variables that name a PEM bundle, in order of precedence. Either one
/// replaces the compiled-in roots (as `AWS_CA_BUNDLE` does for the AWS CLI and
/// `SSL_CERT_FILE` for OpenSSL); an empty value counts as unset.
pub const BUNDLE_VARIABLES: [&str; 2] = ["AWS_CA_BUNDLE", "SSL_CERT_FILE"];

/// Where the trust anchors come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Anchors {
    /// A PEM file named by `variable`.
    Bundle {
        variable: &'static str,
        path: OsString,
    },
    /// The Mozilla roots of the `webpki-root-certs` crate.
    Compiled,
}

impl Anchors {
    /// Chooses from the given variable lookup (the inherited environment).
    pub fn choose(lookup: impl Fn(&str) -> Option<OsString>) -> Anchors {
        BUNDLE_VARIABLES
            .iter()
            .find_map(|&variable| {
                lookup(variable)
                    .filter(|path| !path.is_empty())
                    .map(|path| Anchors::Bundle { variable, path })
            })
            .unwrap_or(Anchors::Compiled)
    }
}

/// The HTTPS client: rustls with the ring provider and the chosen anchors.
/// When a named bundle cannot be used, every request fails with the reason
/// (fail closed: no fallback to other roots).
pub fn http_client(anchors: &Anchors) -> SharedHttpClient {
    match trust_store(anchors) {
        Ok(store) => {
            let context = TlsContext::builder()
                .with_trust_store(store)
                .build()
                .expect("a TLS context from a trust store always builds");
            aws_smithy_http_client::Builder::new()
                .tls_provider(tls::Provider::Rustls(
                    tls::rustls_provider::CryptoMode::Ring,
                ))
                .tls_context(context)
                .build_https()
        }
        Err(reason) => {
            // Reported once per failed reference, through the SDK's error.
            let connector = SharedHttpConnector::new(Unusable(reason));
            aws_smithy_runtime_api::client::http::http_client_fn(move |_, _| connector.clone())
        }
    }
}

/// The trust store for `anchors`, or why it cannot be had.
pub fn trust_store(anchors: &Anchors) -> Result<TrustStore, String> {
    let pem = match anchors {
        Anchors::Compiled => compiled_pem(),
        Anchors::Bundle { variable, path } => {
            let shown = Path::new(path).display();
            let pem = std::fs::read(path)
                .map_err(|e| format!("{variable}={shown} cannot be read: {e}"))?;
            let count =
                check_pem(&pem).map_err(|e| format!("{variable}={shown} is not usable: {e}"))?;
            tracing::debug!(variable, path = %shown, certificates = count, "TLS trust from a PEM bundle");
            pem
        }
    };
    Ok(TrustStore::empty()
        .with_native_roots(false)
        .with_pem_certificate(pem))
}

/// Counts the certificates of a PEM bundle after checking each the way the
/// SDK will load it (it panics on what it cannot parse, so nothing unchecked
/// may reach it).
pub fn check_pem(pem: &[u8]) -> Result<usize, String> {
    let mut store = rustls::RootCertStore::empty();
    let mut count = 0;
    for cert in CertificateDer::pem_slice_iter(pem) {
        count += 1;
        let cert = cert.map_err(|e| format!("certificate {count}: malformed PEM ({e})"))?;
        store
            .add(cert)
            .map_err(|e| format!("certificate {count}: not a usable CA certificate ({e})"))?;
    }
    if count == 0 {
        return Err("no PEM certificate in it".into());
    }
    Ok(count)
}

/// The compiled-in roots as one PEM document (the form `TrustStore` takes).
fn compiled_pem() -> Vec<u8> {
    use base64::Engine;
    let mut pem = Vec::with_capacity(webpki_root_certs::TLS_SERVER_ROOT_CERTS.len() * 2048);
    for cert in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
        let text = base64::engine::general_purpose::STANDARD.encode(cert.as_ref());
        pem.extend_from_slice(b"-----BEGIN CERTIFICATE-----\n");
        for line in text.as_bytes().chunks(64) {
            pem.extend_from_slice(line);
            pem.push(b'\n');
        }
        pem.extend_from_slice(b"-----END CERTIFICATE-----\n");
    }
    pem
}

/// A connector that refuses every request, for a CA bundle that cannot be used.
#[derive(Debug)]
struct Unusable(String);

impl HttpConnector for Unusable {
    fn call(&self, _request: HttpRequest) -> HttpConnectorFuture {
        HttpConnectorFuture::ready(Err(ConnectorError::user(self.0.clone().into())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<OsString> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| OsString::from(v))
        }
    }

    #[test]
    fn aws_ca_bundle_wins_then_ssl_cert_file_then_compiled_roots() {
        let both = [("SSL_CERT_FILE", "/b.pem"), ("AWS_CA_BUNDLE", "/a.pem")];
        assert_eq!(
            Anchors::choose(lookup(&both)),
            Anchors::Bundle {
                variable: "AWS_CA_BUNDLE",
                path: "/a.pem".into()
            }
        );
        let empty_aws = [("AWS_CA_BUNDLE", ""), ("SSL_CERT_FILE", "/b.pem")];
        assert_eq!(
            Anchors::choose(lookup(&empty_aws)),
            Anchors::Bundle {
                variable: "SSL_CERT_FILE",
                path: "/b.pem".into()
            }
        );
        assert_eq!(Anchors::choose(lookup(&[])), Anchors::Compiled);
    }

    #[test]
    fn every_compiled_root_loads() {
        let pem = compiled_pem();
        let count = check_pem(&pem).expect("compiled roots parse");
        assert_eq!(count, webpki_root_certs::TLS_SERVER_ROOT_CERTS.len());
        assert!(count > 100, "only {count} roots");
    }

    /// AWS endpoints chain to Amazon Root CA 1-4 (and, cross-signed, the
    /// Starfield Services G2 root): HTTPS to AWS from an empty root needs
    /// exactly these among the compiled-in anchors.
    #[test]
    fn the_roots_aws_endpoints_chain_to_are_compiled_in() {
        let has = |name: &str| {
            webpki_root_certs::TLS_SERVER_ROOT_CERTS
                .iter()
                .any(|c| c.as_ref().windows(name.len()).any(|w| w == name.as_bytes()))
        };
        for root in [
            "Amazon Root CA 1",
            "Amazon Root CA 2",
            "Amazon Root CA 3",
            "Amazon Root CA 4",
            "Starfield Services Root Certificate Authority - G2",
        ] {
            assert!(has(root), "{root} is not among the compiled-in roots");
        }
    }

    #[test]
    fn unusable_bundles_are_refused_with_a_reason() {
        assert!(check_pem(b"").unwrap_err().contains("no PEM certificate"));
        assert!(
            check_pem(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
                .unwrap_err()
                .contains("no PEM certificate")
        );
        let garbage = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(check_pem(garbage).unwrap_err().contains("certificate 1"));
        let missing = Anchors::Bundle {
            variable: "AWS_CA_BUNDLE",
            path: "/nonexistent/ca.pem".into(),
        };
        let err = trust_store(&missing).unwrap_err();
        assert!(
            err.starts_with("AWS_CA_BUNDLE=/nonexistent/ca.pem cannot be read"),
            "{err}"
        );
    }
}
