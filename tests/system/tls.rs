//! TLS by configuration: every listener serves TLS, the four services accept only callers with
//! a client certificate from the configured CA (mutual TLS), and the gateway reaches them with
//! its own certificate. Certificates are made for the test by a throwaway CA.

use std::{sync::Arc, time::Duration};

use qaward_proto::qaward::applications::v1::{
    CreateProgrammeRequest, Programme, application_service_client::ApplicationServiceClient,
};
use qaward_proto::qaward::reviewers::v1::{
    GetProgrammeRequest, reviewer_service_client::ReviewerServiceClient,
};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

use crate::support::{Qaward, with_token};

struct Pki {
    dir: tempfile::TempDir,
    ca: String,
    cert: String,
    key: String,
    /// A certificate from another CA: a stranger's.
    stranger_cert: String,
    stranger_key: String,
}

fn leaf(issuer: &Issuer<'_, KeyPair>) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let params =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    let cert = params.signed_by(&key, issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn ca() -> (String, Issuer<'static, KeyPair>) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), Issuer::new(params, key))
}

fn pki() -> Pki {
    let (ca, issuer) = ca();
    let (cert, key) = leaf(&issuer);
    let (_, other) = self::ca();
    let (stranger_cert, stranger_key) = leaf(&other);
    let dir = tempfile::tempdir().unwrap();
    for (name, pem) in [("ca.crt", &ca), ("tls.crt", &cert), ("tls.key", &key)] {
        std::fs::write(dir.path().join(name), pem).unwrap();
    }
    Pki {
        dir,
        ca,
        cert,
        key,
        stranger_cert,
        stranger_key,
    }
}

async fn tls_channel(
    q: &Qaward,
    name: &str,
    ca: &str,
    identity: Option<(&str, &str)>,
) -> Result<tonic::transport::Channel, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca))
        .domain_name("localhost");
    if let Some((cert, key)) = identity {
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    Endpoint::from_shared(format!("https://{}", q.addr(name)))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
}

/// `GET /healthz` over HTTPS on the gateway's HTTP port: (status line, body).
async fn https_healthz(q: &Qaward, ca: &str) -> (String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::rustls::{self, pki_types::CertificateDer, pki_types::pem::PemObject};
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca.as_bytes()).unwrap())
        .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(q.addr("gateway-http"))
        .await
        .unwrap();
    let mut tls = connector
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .unwrap();
    tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    let _ = tls.read_to_end(&mut out).await;
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text.lines().next().unwrap_or_default().to_string();
    let body = text
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_string();
    (status, body)
}

#[tokio::test]
async fn with_tls_configured_every_port_is_encrypted_and_services_admit_only_known_certificates() {
    let pki = pki();
    let path = |name: &str| pki.dir.path().join(name).display().to_string();
    let (cert, key, ca) = (path("tls.crt"), path("tls.key"), path("ca.crt"));
    let q = Qaward::start(
        &[],
        &[
            ("QAWARD_TLS__CERT_FILE", &cert),
            ("QAWARD_TLS__KEY_FILE", &key),
            ("QAWARD_TLS__CLIENT_CA_FILE", &ca),
            ("QAWARD_TLS__UPSTREAM_CA_FILE", &ca),
        ],
    )
    .await;
    let office = q.token_for("office", "office-1", &["--programme", "yunyang"]);

    // The platform reaches the gateway over TLS without a client certificate, and the gateway
    // reaches the applications service over mutual TLS.
    let gateway = tls_channel(&q, "gateway", &pki.ca, None).await.unwrap();
    let created = ApplicationServiceClient::new(gateway)
        .create_programme(with_token(
            CreateProgrammeRequest {
                programme_id: "yunyang".into(),
                programme: Some(Programme {
                    display_name: "云阳县县长质量奖".into(),
                    ..Default::default()
                }),
                request_id: "tls-1".into(),
            },
            &office,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.name, "programmes/yunyang");

    // Plain text is not spoken on the gateway's port.
    let plain = Endpoint::from_shared(format!("http://{}", q.addr("gateway")))
        .unwrap()
        .connect()
        .await;
    let refused = match plain {
        Err(_) => true,
        Ok(ch) => ApplicationServiceClient::new(ch)
            .create_programme(with_token(CreateProgrammeRequest::default(), &office))
            .await
            .is_err_and(|s| {
                s.code() == tonic::Code::Unavailable
                    || s.code() == tonic::Code::Unknown
                    || s.code() == tonic::Code::Internal
            }),
    };
    assert!(refused, "a plain-text call was answered");

    // A service directly: only with a certificate of the configured CA.
    let office = &office;
    let ask = |channel| async move {
        ReviewerServiceClient::new(channel)
            .get_programme(with_token(
                GetProgrammeRequest {
                    name: "programmes/yunyang".into(),
                },
                office,
            ))
            .await
    };
    let without = match tls_channel(&q, "reviewers", &pki.ca, None).await {
        Err(_) => true,
        Ok(ch) => ask(ch)
            .await
            .is_err_and(|s| s.code() != tonic::Code::NotFound),
    };
    assert!(
        without,
        "a service answered a caller without a client certificate"
    );
    let stranger = match tls_channel(
        &q,
        "reviewers",
        &pki.ca,
        Some((&pki.stranger_cert, &pki.stranger_key)),
    )
    .await
    {
        Err(_) => true,
        Ok(ch) => ask(ch)
            .await
            .is_err_and(|s| s.code() != tonic::Code::NotFound),
    };
    assert!(stranger, "a service answered a certificate from another CA");
    let known = tls_channel(&q, "reviewers", &pki.ca, Some((&pki.cert, &pki.key)))
        .await
        .unwrap();
    // Reached: the reviewers service answers for itself (no such programme in its registry).
    let answer = ask(known).await.unwrap_err();
    assert_eq!(answer.code(), tonic::Code::NotFound, "{answer:?}");

    // The HTTP port serves HTTPS; its health check reaches every service over mutual TLS.
    let (status, body) = https_healthz(&q, &pki.ca).await;
    assert!(status.contains("200"), "{status} {body}");
    assert!(body.contains("\"SERVING\""), "{body}");
}

#[tokio::test]
async fn a_connection_that_never_finishes_its_tls_handshake_is_closed() {
    // Issue 21: a handshake timeout on TLS, so idle connections cannot pile up.
    let pki = pki();
    let path = |name: &str| pki.dir.path().join(name).display().to_string();
    let (cert, key, ca) = (path("tls.crt"), path("tls.key"), path("ca.crt"));
    let q = Qaward::start(
        &[],
        &[
            ("QAWARD_TLS__CERT_FILE", &cert),
            ("QAWARD_TLS__KEY_FILE", &key),
            ("QAWARD_TLS__CLIENT_CA_FILE", &ca),
            ("QAWARD_TLS__UPSTREAM_CA_FILE", &ca),
            ("QAWARD_TLS__HANDSHAKE_TIMEOUT_MS", "300"),
        ],
    )
    .await;
    for port in ["gateway-http", "gateway", "reviewers"] {
        use tokio::io::AsyncReadExt;
        let mut tcp = tokio::net::TcpStream::connect(q.addr(port)).await.unwrap();
        // Say nothing; the server must hang up (read returns 0 or an error) well before 5 s.
        let mut buf = [0u8; 16];
        let closed = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf)).await;
        assert!(
            matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
            "{port}: the silent connection was kept open ({closed:?})"
        );
    }
}
