//! Fetching a key set from an identity provider: https, or http to this machine only, and
//! bounded in size and time.

use std::{path::Path, sync::Arc};

use super::KeyError;

/// The largest JWKS document fetched: a key set is a few kilobytes; a server that sends more
/// is refused rather than read.
pub const MAX_JWKS_BYTES: usize = 1024 * 1024;

/// Fetches a JWKS document: over https (rustls; the web's roots, or `ca_file`'s certificates
/// for a private CA), or over plain http to a loopback address only (a sidecar on the same
/// host) — a key set fetched in clear over a network could be replaced on the way. At most
/// [`MAX_JWKS_BYTES`], within ten seconds.
pub(super) async fn fetch_jwks(url: &str, ca_file: Option<&Path>) -> Result<String, KeyError> {
    use http_body_util::BodyExt;
    let fail = |message: String| KeyError::Fetch {
        url: url.to_string(),
        message,
    };
    let uri: http::Uri = url
        .parse()
        .map_err(|e: http::uri::InvalidUri| fail(e.to_string()))?;
    match uri.scheme_str() {
        Some("https") => {}
        Some("http") if loopback(uri.host().unwrap_or_default()) => {}
        Some("http") => {
            return Err(fail(
                "http:// is allowed to a loopback address only; use https://".into(),
            ));
        }
        _ => return Err(fail("must be an https:// URL".into())),
    }
    let builder = hyper_rustls::HttpsConnectorBuilder::new();
    let builder = match ca_file {
        Some(path) => {
            use tokio_rustls::rustls::{self, pki_types::pem::PemObject};
            let bad =
                |e: &dyn std::fmt::Display| fail(format!("jwks_ca_file {}: {e}", path.display()));
            let pem = std::fs::read(path).map_err(|e| bad(&e))?;
            let mut roots = rustls::RootCertStore::empty();
            for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&pem) {
                roots.add(cert.map_err(|e| bad(&e))?).map_err(|e| bad(&e))?;
            }
            let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .map_err(|e| fail(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
            builder.with_tls_config(tls)
        }
        None => builder.with_webpki_roots(),
    };
    let connector = builder.https_or_http().enable_http1().build();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build::<_, http_body_util::Empty<bytes::Bytes>>(connector);
    let fetched = async {
        let response = client.get(uri).await.map_err(|e| fail(e.to_string()))?;
        if !response.status().is_success() {
            return Err(fail(format!("HTTP {}", response.status())));
        }
        http_body_util::Limited::new(response.into_body(), MAX_JWKS_BYTES)
            .collect()
            .await
            .map(|b| b.to_bytes())
            .map_err(|e| fail(format!("{e} (at most {MAX_JWKS_BYTES} bytes)")))
    };
    let body = tokio::time::timeout(std::time::Duration::from_secs(10), fetched)
        .await
        .map_err(|_| fail("timed out".into()))??;
    String::from_utf8(body.to_vec()).map_err(|e| fail(e.to_string()))
}

/// Whether `host` (from a URL) is this machine: a loopback address or `localhost`.
fn loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}
