//! Signed HTTP deliveries (webhook and SMS gateway): the receiver recomputes
//! `HMAC-SHA256(secret, "{timestamp}.{body}")`, compares it in constant time with
//! `X-Qaward-Signature: sha256=<hex>`, refuses a timestamp too far from its own clock (a
//! replay), and drops a repeated `Idempotency-Key`.

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const TIMESTAMP_HEADER: &str = "x-qaward-timestamp";
pub const SIGNATURE_HEADER: &str = "x-qaward-signature";
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";
/// How far a receiver should accept a timestamp from its own clock.
pub const TOLERANCE_SECS: i64 = 300;

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    let mut m = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    m.update(timestamp.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    m
}

/// The `X-Qaward-Signature` value of `body` sent at `timestamp` (Unix seconds).
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    format!(
        "sha256={}",
        hex::encode(mac(secret, timestamp, body).finalize().into_bytes())
    )
}

/// What a receiver does: true when `signature` is ours for this body and timestamp, and the
/// timestamp is within the tolerance of `now`.
pub fn verify(secret: &[u8], timestamp: i64, body: &[u8], signature: &str, now: i64) -> bool {
    if (now - timestamp).abs() > TOLERANCE_SECS {
        return false;
    }
    let Some(given) = signature
        .strip_prefix("sha256=")
        .and_then(|h| hex::decode(h).ok())
    else {
        return false;
    };
    mac(secret, timestamp, body).verify_slice(&given).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_and_forgeries_and_replays_do_not() {
        let secret = b"0123456789abcdef-county";
        let body = br#"{"id":"d-1"}"#;
        let sig = sign(secret, 1_780_000_000, body);
        assert!(sig.starts_with("sha256=") && sig.len() == 7 + 64);
        assert!(verify(secret, 1_780_000_000, body, &sig, 1_780_000_100));
        // A changed body, a changed timestamp, another secret, an old request.
        assert!(!verify(
            secret,
            1_780_000_000,
            br#"{"id":"d-2"}"#,
            &sig,
            1_780_000_000
        ));
        assert!(!verify(secret, 1_780_000_001, body, &sig, 1_780_000_001));
        assert!(!verify(
            b"another-secret-xx",
            1_780_000_000,
            body,
            &sig,
            1_780_000_000
        ));
        assert!(!verify(
            secret,
            1_780_000_000,
            body,
            &sig,
            1_780_000_000 + 301
        ));
        assert!(!verify(
            secret,
            1_780_000_000,
            body,
            "sha256=zz",
            1_780_000_000
        ));
    }

    #[test]
    fn matches_a_published_hmac_sha256_vector() {
        // RFC 4231 test case 2 (key "Jefe"): the MAC the signature is built on.
        let mut m = Hmac::<Sha256>::new_from_slice(b"Jefe").unwrap();
        m.update(b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(m.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
