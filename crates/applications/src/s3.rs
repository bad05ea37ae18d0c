//! A small client for an S3-compatible bucket: HEAD, PUT and GET of whole objects, addressed
//! path-style and signed with AWS Signature Version 4 (`authorization`, a pure function tested
//! against AWS's published example). Evidence files are at most 50 MiB, so a PUT sends the file
//! in one request with its SHA-256 as `x-amz-content-sha256`: the store checks the bytes it got.

use std::{path::Path, time::Duration};

use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use qaward_kit::config;
use sha2::{Digest, Sha256};

/// The SHA-256 of an empty payload, for HEAD and GET.
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// What a request signs.
pub struct Signing<'a> {
    pub method: &'a str,
    /// The path, already URI-encoded (`/bucket/key`).
    pub canonical_uri: &'a str,
    pub canonical_query: &'a str,
    /// Lower-case names with trimmed values, sorted by name; `host` and `x-amz-date` among them.
    pub headers: &'a [(&'a str, String)],
    pub payload_sha256: &'a str,
    /// `20130524T000000Z`.
    pub amz_date: &'a str,
    pub region: &'a str,
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    m.update(data.as_bytes());
    m.finalize().into_bytes().to_vec()
}

/// The `Authorization` header of AWS Signature Version 4 for service `s3`.
pub fn authorization(s: &Signing) -> String {
    let signed: Vec<&str> = s.headers.iter().map(|(k, _)| *k).collect();
    let signed = signed.join(";");
    let canonical_headers: String = s
        .headers
        .iter()
        .map(|(k, v)| format!("{k}:{v}\n"))
        .collect();
    let canonical = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        s.method, s.canonical_uri, s.canonical_query, canonical_headers, signed, s.payload_sha256
    );
    let day = &s.amz_date[..8];
    let scope = format!("{day}/{}/s3/aws4_request", s.region);
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{}\n{scope}\n{}",
        s.amz_date,
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let key = hmac(format!("AWS4{}", s.secret_access_key).as_bytes(), day);
    let key = hmac(&key, s.region);
    let key = hmac(&key, "s3");
    let key = hmac(&key, "aws4_request");
    let signature = hex::encode(hmac(&key, &to_sign));
    format!(
        "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed}, Signature={signature}",
        s.access_key_id
    )
}

/// URI-encodes a key as SigV4 wants it: unreserved characters and `/` stay, every other byte is
/// `%XX` in upper case.
pub fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One bucket, as the configuration names it.
pub struct Bucket {
    endpoint: http::Uri,
    bucket: String,
    region: String,
    access_key_id: String,
    secret_access_key: String,
    prefix: String,
    timeout: Duration,
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl std::fmt::Debug for Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Bucket({}/{})", self.endpoint, self.bucket)
    }
}

impl Bucket {
    pub fn new(c: &config::S3) -> Result<Bucket, String> {
        let endpoint: http::Uri = c
            .endpoint
            .trim_end_matches('/')
            .parse()
            .map_err(|e| format!("blobs.s3.endpoint {}: {e}", c.endpoint))?;
        if endpoint.authority().is_none() {
            return Err(format!("blobs.s3.endpoint {} has no host", c.endpoint));
        }
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .build();
        Ok(Bucket {
            endpoint,
            bucket: c.bucket.clone(),
            region: c.region.clone(),
            access_key_id: c.access_key_id.clone(),
            secret_access_key: c.secret_access_key.expose().clone(),
            prefix: c.prefix.clone(),
            timeout: Duration::from_millis(c.timeout_ms.max(1)),
            client: Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(30))
                .build(connector),
        })
    }

    /// The key of a blob: `{prefix}{first two hex digits}/{sha256}`.
    pub fn key_of(&self, sha256: &str) -> String {
        format!("{}{}/{sha256}", self.prefix, &sha256[..2.min(sha256.len())])
    }

    async fn send(
        &self,
        method: &str,
        key: &str,
        body: Bytes,
        payload_sha256: &str,
    ) -> Result<(http::StatusCode, Bytes), String> {
        let base = self.endpoint.path().trim_end_matches('/');
        let path = encode_path(&format!("{base}/{}/{key}", self.bucket));
        let host = self
            .endpoint
            .authority()
            .map(|a| a.as_str().to_string())
            .unwrap_or_default();
        // Signing time is the machine's real time: a store refuses a skewed signature.
        let now = time::OffsetDateTime::now_utc();
        let amz_date = format!(
            "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
            now.year(),
            u8::from(now.month()),
            now.day(),
            now.hour(),
            now.minute(),
            now.second()
        );
        let headers = [
            ("host", host),
            ("x-amz-content-sha256", payload_sha256.to_string()),
            ("x-amz-date", amz_date.clone()),
        ];
        let auth = authorization(&Signing {
            method,
            canonical_uri: &path,
            canonical_query: "",
            headers: &headers,
            payload_sha256,
            amz_date: &amz_date,
            region: &self.region,
            access_key_id: &self.access_key_id,
            secret_access_key: &self.secret_access_key,
        });
        let uri = format!(
            "{}://{}{path}",
            self.endpoint.scheme_str().unwrap_or("https"),
            headers[0].1
        );
        let mut request = http::Request::builder()
            .method(method)
            .uri(uri)
            .header("x-amz-content-sha256", payload_sha256)
            .header("x-amz-date", &amz_date)
            .header(http::header::AUTHORIZATION, auth);
        if method == "PUT" {
            request = request
                .header(http::header::CONTENT_LENGTH, body.len())
                .header(http::header::CONTENT_TYPE, "application/octet-stream");
        }
        let request = request.body(Full::new(body)).map_err(|e| e.to_string())?;
        let response = tokio::time::timeout(self.timeout, self.client.request(request))
            .await
            .map_err(|_| format!("{method} {key}: no answer within {:?}", self.timeout))?
            .map_err(|e| format!("{method} {key}: {e}"))?;
        let status = response.status();
        let body = tokio::time::timeout(self.timeout, response.into_body().collect())
            .await
            .map_err(|_| format!("{method} {key}: body not read within {:?}", self.timeout))?
            .map_err(|e| format!("{method} {key}: {e}"))?
            .to_bytes();
        Ok((status, body))
    }

    fn failed(method: &str, key: &str, status: http::StatusCode, body: &[u8]) -> String {
        let text = String::from_utf8_lossy(&body[..body.len().min(300)]);
        format!("{method} {key}: {status} {text}")
    }

    /// Whether the object exists.
    pub async fn exists(&self, key: &str) -> Result<bool, String> {
        let (status, body) = self.send("HEAD", key, Bytes::new(), EMPTY_SHA256).await?;
        match status.as_u16() {
            200 => Ok(true),
            404 => Ok(false),
            _ => Err(Self::failed("HEAD", key, status, &body)),
        }
    }

    /// Uploads a local file whose SHA-256 is known; the store checks it.
    pub async fn put_file(&self, key: &str, file: &Path, sha256: &str) -> Result<(), String> {
        let bytes = tokio::fs::read(file)
            .await
            .map_err(|e| format!("read {}: {e}", file.display()))?;
        let (status, body) = self.send("PUT", key, Bytes::from(bytes), sha256).await?;
        if status.is_success() {
            Ok(())
        } else {
            Err(Self::failed("PUT", key, status, &body))
        }
    }

    /// The object's bytes; `None` when it does not exist.
    pub async fn get(&self, key: &str) -> Result<Option<Bytes>, String> {
        let (status, body) = self.send("GET", key, Bytes::new(), EMPTY_SHA256).await?;
        match status.as_u16() {
            200 => Ok(Some(body)),
            404 => Ok(None),
            _ => Err(Self::failed("GET", key, status, &body)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigv4_matches_the_aws_get_object_example() {
        // AWS's documented example: GET /test.txt with a Range header, 24 May 2013.
        let headers = [
            ("host", "examplebucket.s3.amazonaws.com".to_string()),
            ("range", "bytes=0-9".to_string()),
            ("x-amz-content-sha256", EMPTY_SHA256.to_string()),
            ("x-amz-date", "20130524T000000Z".to_string()),
        ];
        let auth = authorization(&Signing {
            method: "GET",
            canonical_uri: "/test.txt",
            canonical_query: "",
            headers: &headers,
            payload_sha256: EMPTY_SHA256,
            amz_date: "20130524T000000Z",
            region: "us-east-1",
            access_key_id: "AKIAIOSFODNN7EXAMPLE",
            secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        });
        assert_eq!(
            auth,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }

    #[test]
    fn keys_are_encoded_except_unreserved_characters_and_slashes() {
        assert_eq!(encode_path("/b/ab/ab12"), "/b/ab/ab12");
        assert_eq!(
            encode_path("/b/证据 1.pdf"),
            "/b/%E8%AF%81%E6%8D%AE%201.pdf"
        );
    }
}
