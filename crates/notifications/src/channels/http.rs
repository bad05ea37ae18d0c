//! Signed JSON POSTs over HTTP or HTTPS (rustls with the Mozilla roots).

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use qaward_kit::config::SignedHttp;

use crate::domain::{
    delivery::{Outcome, http_outcome},
    signature::{self, IDEMPOTENCY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER},
};

/// A receiver of signed POSTs.
pub struct SignedPost {
    url: http::Uri,
    secret: Vec<u8>,
    timeout: Duration,
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl SignedPost {
    pub fn new(settings: &SignedHttp) -> Result<SignedPost, String> {
        let url: http::Uri = settings
            .url
            .parse()
            .map_err(|e| format!("{} is not a URL: {e}", settings.url))?;
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .build();
        Ok(SignedPost {
            url,
            secret: settings.secret.expose().as_bytes().to_vec(),
            timeout: Duration::from_millis(settings.timeout_ms.max(1)),
            client: Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(30))
                .build(connector),
        })
    }

    /// POSTs `body` with the timestamp, signature and idempotency headers; a 2xx is delivered.
    pub async fn post(&self, key: &str, body: &serde_json::Value, now_secs: i64) -> Outcome {
        let bytes = serde_json::to_vec(body).unwrap_or_default();
        let request = http::Request::post(self.url.clone())
            .header(
                http::header::CONTENT_TYPE,
                "application/json; charset=utf-8",
            )
            .header(TIMESTAMP_HEADER, now_secs.to_string())
            .header(
                SIGNATURE_HEADER,
                signature::sign(&self.secret, now_secs, &bytes),
            )
            .header(IDEMPOTENCY_HEADER, key)
            .body(Full::new(Bytes::from(bytes)));
        let request = match request {
            Ok(r) => r,
            Err(e) => return Outcome::Permanent(format!("cannot build the request: {e}")),
        };
        let exchange = async {
            let response = self.client.request(request).await.map_err(|e| {
                // A connection that failed is worth retrying; so is one cut mid-answer.
                format!("{}: {e}", self.url)
            })?;
            let status = response.status().as_u16();
            let text = response
                .into_body()
                .collect()
                .await
                .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
                .unwrap_or_default();
            Ok::<_, String>((status, text))
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Err(_) => Outcome::Transient(format!(
                "{}: no answer within {} ms",
                self.url,
                self.timeout.as_millis()
            )),
            Ok(Err(e)) => Outcome::Transient(e),
            Ok(Ok((status, text))) => http_outcome(status, &text),
        }
    }
}
