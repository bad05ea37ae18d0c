//! TLS by configuration (`[tls]`, rustls): what a gRPC listener serves, and how a process dials
//! the services. One place builds every upstream endpoint, so a service's calls to another and
//! the gateway's pass-through use the same transport settings.

use std::{path::Path, time::Duration};

use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity, ServerTlsConfig};

use crate::config::{Config, ServiceKind, Tls};

fn read(path: &Path, what: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("tls.{what} {}: {e}", path.display()))
}

/// This process's certificate and key, when `tls.cert_file` is set.
pub fn identity(tls: &Tls) -> Result<Option<Identity>, String> {
    match (&tls.cert_file, &tls.key_file) {
        (Some(cert), Some(key)) => Ok(Some(Identity::from_pem(
            read(cert, "cert_file")?,
            read(key, "key_file")?,
        ))),
        (None, None) => Ok(None),
        _ => Err("tls.cert_file and tls.key_file go together".to_string()),
    }
}

/// The TLS a gRPC listener serves: none without `tls.cert_file`. A service's listener
/// (`mutual`) also requires a client certificate from `tls.client_ca_file` when that is set;
/// the gateway's never does.
pub fn server(tls: &Tls, mutual: bool) -> Result<Option<ServerTlsConfig>, String> {
    let Some(identity) = identity(tls)? else {
        return Ok(None);
    };
    let mut config = ServerTlsConfig::new()
        .identity(identity)
        .timeout(tls.handshake_timeout());
    if mutual && let Some(ca) = &tls.client_ca_file {
        config = config.client_ca_root(Certificate::from_pem(read(ca, "client_ca_file")?));
    }
    Ok(Some(config))
}

/// A lazily connecting endpoint to a service, as the configuration names it: over TLS
/// (`https://`, the service's certificate checked against `tls.upstream_ca_file`, this
/// process's certificate presented for mutual TLS) when that CA is set, else plain text.
pub fn upstream_endpoint(config: &Config, kind: ServiceKind) -> Result<Endpoint, String> {
    let mut url = config.upstream_url(kind);
    let tls = &config.tls;
    if tls.upstream_ca_file.is_some()
        && let Some(rest) = url.strip_prefix("http://")
    {
        url = format!("https://{rest}");
    }
    let mut endpoint = Endpoint::from_shared(url.clone())
        .map_err(|e| format!("upstream {}: bad URL {url}: {e}", kind.as_str()))?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true);
    if let Some(ca) = &tls.upstream_ca_file {
        let mut client = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(read(ca, "upstream_ca_file")?));
        if let Some(identity) = identity(tls)? {
            client = client.identity(identity);
        }
        endpoint = endpoint
            .tls_config(client)
            .map_err(|e| format!("upstream {}: TLS: {e}", kind.as_str()))?;
    }
    Ok(endpoint)
}
