//! Bearer tokens: only asymmetric signatures from a trusted key, for our issuer and audience,
//! unexpired, are accepted; everything else is UNAUTHENTICATED with a stable reason.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use qaward_kit::{
    ErrorCode,
    auth::{Claims, ISSUER_MAY_NOT_ASSERT, LocalKey, Role, Verifier},
    config,
    testing::TestKeys,
};

fn claims(auth: &config::Auth) -> Claims {
    let now = time::OffsetDateTime::now_utc().unix_timestamp() as u64;
    Claims {
        iss: auth.issuer.clone(),
        aud: auth.audience.clone().into(),
        sub: "ent-91500235".into(),
        exp: now + 600,
        iat: now,
        nbf: None,
        role: Role::Enterprise,
        org: Some("915002357474797878".into()),
        programme: Some("programmes/yunyang-mayor".into()),
    }
}

fn refused(keys: &TestKeys, token: &str) -> String {
    let e = keys
        .verifier
        .verify(token)
        .expect_err("token must be refused");
    assert_eq!(e.code, ErrorCode::Unauthenticated);
    assert_eq!(e.to_status().code(), tonic::Code::Unauthenticated);
    e.reason.clone()
}

#[test]
fn a_good_token_names_its_caller() {
    let keys = TestKeys::new();
    let token = keys.key.sign(&claims(&keys.auth)).unwrap();
    let caller = keys.verifier.verify(&token).unwrap();
    assert_eq!(caller.subject, "ent-91500235");
    assert_eq!(caller.role, Role::Enterprise);
    assert_eq!(caller.org.as_deref(), Some("915002357474797878"));
    assert_eq!(
        caller.programme.as_deref(),
        Some("programmes/yunyang-mayor")
    );
    assert_eq!(caller.token, token);
}

#[test]
fn alg_none_is_refused() {
    let keys = TestKeys::new();
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims(&keys.auth)).unwrap());
    assert_eq!(
        refused(&keys, &format!("{header}.{body}.")),
        "MALFORMED_TOKEN"
    );
}

#[test]
fn a_token_signed_by_another_key_is_refused() {
    let keys = TestKeys::new();
    let other = LocalKey::from_seed([9u8; 32]);
    // Unknown key id.
    let token = other.sign(&claims(&keys.auth)).unwrap();
    assert_eq!(refused(&keys, &token), "UNKNOWN_KEY");
    // Our key id, someone else's signature.
    let mut parts: Vec<String> = token.split('.').map(String::from).collect();
    let header = serde_json::json!({ "alg": "EdDSA", "typ": "JWT", "kid": keys.key.kid() });
    parts[0] = URL_SAFE_NO_PAD.encode(header.to_string());
    let forged_unsigned = format!("{}.{}", parts[0], parts[1]);
    let forged = {
        // Re-sign header+payload with the other key so the signature is well formed.
        let t = other.sign(&claims(&keys.auth)).unwrap();
        let sig = t.rsplit('.').next().unwrap().to_string();
        format!("{forged_unsigned}.{sig}")
    };
    assert_eq!(refused(&keys, &forged), "BAD_SIGNATURE");
}

#[test]
fn an_hmac_token_using_the_public_key_as_secret_is_refused() {
    let keys = TestKeys::new();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some(keys.key.kid().to_string());
    let token = jsonwebtoken::encode(
        &header,
        &claims(&keys.auth),
        &jsonwebtoken::EncodingKey::from_secret(keys.key.jwks_json().as_bytes()).unwrap(),
    )
    .unwrap();
    assert_eq!(refused(&keys, &token), "WRONG_ALGORITHM");
}

#[test]
fn an_expired_token_is_refused_beyond_the_leeway() {
    let keys = TestKeys::new();
    let now = time::OffsetDateTime::now_utc().unix_timestamp() as u64;
    let mut c = claims(&keys.auth);
    c.iat = now - 7200;
    c.exp = now - keys.auth.leeway_secs - 60;
    assert_eq!(refused(&keys, &keys.key.sign(&c).unwrap()), "TOKEN_EXPIRED");
    // Inside the leeway a slightly stale clock is tolerated.
    c.exp = now - keys.auth.leeway_secs / 2;
    assert!(keys.verifier.verify(&keys.key.sign(&c).unwrap()).is_ok());
}

#[test]
fn a_token_not_valid_yet_or_meant_to_last_too_long_is_refused() {
    let keys = TestKeys::new();
    let now = time::OffsetDateTime::now_utc().unix_timestamp() as u64;
    const YEAR: u64 = 365 * 24 * 3600;
    // Valid only next year (nbf): refused now, though signed by our key.
    let next_year = keys
        .key
        .sign(&Claims {
            nbf: Some(now + YEAR),
            exp: now + YEAR + 600,
            ..claims(&keys.auth)
        })
        .unwrap();
    assert_eq!(refused(&keys, &next_year), "TOKEN_NOT_YET_VALID");
    // Issued an hour from now.
    let future = keys
        .key
        .sign(&Claims {
            iat: now + 3600,
            exp: now + 3600 + 600,
            ..claims(&keys.auth)
        })
        .unwrap();
    assert_eq!(refused(&keys, &future), "TOKEN_NOT_YET_VALID");
    // Meant to last a hundred years, or just over the 12 h accepted by default.
    for lifetime in [100 * YEAR, 12 * 3600 + 1] {
        let long = keys
            .key
            .sign(&Claims {
                // iat from the same `now`: claims() reads the clock again, and a second
                // passing between the two reads made the 12 h + 1 s token exactly 12 h.
                iat: now,
                exp: now + lifetime,
                ..claims(&keys.auth)
            })
            .unwrap();
        assert_eq!(
            refused(&keys, &long),
            "TOKEN_LIFETIME_TOO_LONG",
            "{lifetime}"
        );
    }
    // Within the leeway and the lifetime: accepted.
    let ok = keys
        .key
        .sign(&Claims {
            iat: now + 5,
            nbf: Some(now + 5),
            exp: now + 12 * 3600,
            ..claims(&keys.auth)
        })
        .unwrap();
    assert!(keys.verifier.verify(&ok).is_ok());
}

#[test]
fn an_audience_array_with_ours_is_accepted_and_one_without_is_refused() {
    // RFC 7519 §4.1.3: `aud` may be an array; the token is for us when we are in it.
    let keys = TestKeys::new();
    let ours = keys
        .key
        .sign(&Claims {
            aud: qaward_kit::auth::Audience::Many(vec![
                "the-platform".into(),
                keys.auth.audience.clone(),
            ]),
            ..claims(&keys.auth)
        })
        .unwrap();
    assert!(keys.verifier.verify(&ours).is_ok());
    let theirs = keys
        .key
        .sign(&Claims {
            aud: qaward_kit::auth::Audience::Many(vec!["the-platform".into()]),
            ..claims(&keys.auth)
        })
        .unwrap();
    assert_eq!(refused(&keys, &theirs), "WRONG_AUDIENCE");
}

#[test]
fn a_token_for_another_audience_or_issuer_is_refused() {
    let keys = TestKeys::new();
    let mut c = claims(&keys.auth);
    c.aud = "another-system".into();
    assert_eq!(
        refused(&keys, &keys.key.sign(&c).unwrap()),
        "WRONG_AUDIENCE"
    );
    let mut c = claims(&keys.auth);
    c.iss = "someone-else".into();
    assert_eq!(refused(&keys, &keys.key.sign(&c).unwrap()), "WRONG_ISSUER");
}

/// The county's own key set and Wanzhou's identity provider (another award programme), each
/// with its own keys; Wanzhou may speak for its office and reviewers in its own programme.
fn two_issuers() -> (TestKeys, LocalKey, Verifier, config::Auth) {
    let keys = TestKeys::new();
    let wanzhou = LocalKey::from_seed([21u8; 32]);
    let auth = config::Auth {
        other_issuers: vec![config::OtherIssuer {
            issuer: "https://idp.wanzhou.gov.cn".into(),
            jwks_file: Some("/unused-in-this-test".into()),
            jwks_url: None,
            roles: vec![Role::Office, Role::Reviewer],
            programmes: vec!["wanzhou".into()],
            registry_keeper: false,
        }],
        ..config::Auth::default()
    };
    let verifier = Verifier::from_jwks(&keys.key.jwks_json(), &auth).unwrap();
    verifier
        .replace_keys_of("https://idp.wanzhou.gov.cn", &wanzhou.jwks_json())
        .unwrap();
    (keys, wanzhou, verifier, auth)
}

fn wanzhou_claims(auth: &config::Auth, role: Role, programme: Option<&str>) -> Claims {
    Claims {
        iss: "https://idp.wanzhou.gov.cn".into(),
        role,
        programme: programme.map(str::to_string),
        ..claims(auth)
    }
}

#[test]
fn another_programmes_issuer_speaks_with_its_own_keys_for_its_own_programme() {
    let (_, wanzhou, verifier, auth) = two_issuers();
    let token = wanzhou
        .sign(&wanzhou_claims(
            &auth,
            Role::Office,
            Some("programmes/wanzhou"),
        ))
        .unwrap();
    let caller = verifier.verify(&token).unwrap();
    assert_eq!(caller.issuer, "https://idp.wanzhou.gov.cn");
    assert_eq!(caller.identity(), "https://idp.wanzhou.gov.cn#ent-91500235");
    assert!(!caller.registry_keeper);
    let mut c = wanzhou_claims(&auth, Role::Office, Some("wanzhou"));
    c.iss = "https://idp.elsewhere.example".into();
    let e = verifier.verify(&wanzhou.sign(&c).unwrap()).unwrap_err();
    assert_eq!(e.reason, "WRONG_ISSUER");
}

#[test]
fn a_key_of_one_issuer_cannot_sign_for_another() {
    // Before keys were bound to issuers, Wanzhou's key could sign a county office token.
    let (keys, wanzhou, verifier, auth) = two_issuers();
    let county_office = Claims {
        role: Role::Office,
        programme: Some("yunyang".into()),
        ..claims(&auth)
    };
    let e = verifier
        .verify(&wanzhou.sign(&county_office).unwrap())
        .unwrap_err();
    assert_eq!(e.reason, "UNKNOWN_KEY");
    // And the county's key cannot sign for Wanzhou either.
    let theirs = wanzhou_claims(&auth, Role::Office, Some("wanzhou"));
    let e = verifier
        .verify(&keys.key.sign(&theirs).unwrap())
        .unwrap_err();
    assert_eq!(e.reason, "UNKNOWN_KEY");
    // The services' issuer's keys are the services' alone.
    let service = Claims {
        iss: auth.service_issuer.clone(),
        role: Role::Service,
        ..claims(&auth)
    };
    let e = verifier
        .verify(&wanzhou.sign(&service).unwrap())
        .unwrap_err();
    assert_eq!(e.reason, "UNKNOWN_KEY");
}

#[test]
fn an_issuer_asserting_a_role_or_programme_beyond_its_grant_is_refused() {
    let (_, wanzhou, verifier, auth) = two_issuers();
    for (role, programme) in [
        // Another programme's office.
        (Role::Office, Some("yunyang")),
        // No programme at all: every token of another issuer names one of its own.
        (Role::Office, None),
        (Role::Reviewer, None),
        // A role it is not granted.
        (Role::Supervisor, Some("wanzhou")),
        (Role::Government, Some("wanzhou")),
        // Never service.
        (Role::Service, Some("wanzhou")),
    ] {
        let token = wanzhou
            .sign(&wanzhou_claims(&auth, role, programme))
            .unwrap();
        let e = verifier.verify(&token).unwrap_err();
        assert_eq!(
            (e.code, e.reason.as_str()),
            (
                qaward_kit::ErrorCode::Unauthenticated,
                ISSUER_MAY_NOT_ASSERT
            ),
            "{role:?} for {programme:?}"
        );
    }
    // The county's own issuer may not assert service: only the services' key may.
    let keys = TestKeys::new();
    let forged = keys
        .key
        .sign(&Claims {
            role: Role::Service,
            sub: "system:applications".into(),
            ..claims(&keys.auth)
        })
        .unwrap();
    assert_eq!(refused(&keys, &forged), ISSUER_MAY_NOT_ASSERT);
    assert_eq!(
        keys.verifier
            .verify(&keys.token("system:applications", Role::Service))
            .unwrap()
            .role,
        Role::Service
    );
}

#[test]
fn configuration_refuses_an_issuer_without_keys_or_with_the_service_role() {
    let base = config::OtherIssuer {
        issuer: "https://idp.wanzhou.gov.cn".into(),
        jwks_file: Some("/etc/qaward/wanzhou.json".into()),
        jwks_url: None,
        roles: vec![Role::Office],
        programmes: vec!["wanzhou".into()],
        registry_keeper: false,
    };
    let check = |o: config::OtherIssuer| {
        config::Config {
            auth: config::Auth {
                other_issuers: vec![o],
                ..config::Auth::default()
            },
            ..config::Config::default()
        }
        .validate()
    };
    assert!(check(base.clone()).is_ok());
    for bad in [
        config::OtherIssuer {
            jwks_file: None,
            ..base.clone()
        },
        config::OtherIssuer {
            roles: vec![Role::Office, Role::Service],
            ..base.clone()
        },
        config::OtherIssuer {
            programmes: vec![],
            ..base.clone()
        },
        config::OtherIssuer {
            issuer: "qaward-local".into(),
            ..base.clone()
        },
        config::OtherIssuer {
            issuer: "qaward-services".into(),
            ..base.clone()
        },
    ] {
        assert!(check(bad.clone()).is_err(), "{bad:?}");
    }
}

#[test]
fn a_jwks_with_a_symmetric_key_is_refused() {
    let jwks = r#"{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"s"}]}"#;
    assert!(Verifier::from_jwks(jwks, &config::Auth::default()).is_err());
    let short = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"AAEC","kid":"k"}]}"#;
    assert!(Verifier::from_jwks(short, &config::Auth::default()).is_err());
}

#[test]
fn the_local_key_is_made_once_and_reused() {
    let dir = tempfile::tempdir().unwrap();
    let first = LocalKey::load_or_create(dir.path()).unwrap();
    let second = LocalKey::load_or_create(dir.path()).unwrap();
    assert_eq!(first.kid(), second.kid());
    let jwks = std::fs::read_to_string(dir.path().join(LocalKey::JWKS_FILE)).unwrap();
    let verifier = Verifier::from_jwks(&jwks, &config::Auth::default()).unwrap();
    let token = first
        .issue(
            &config::Auth::default(),
            time::OffsetDateTime::now_utc(),
            "office-1",
            Role::Office,
            None,
            None,
        )
        .unwrap();
    assert_eq!(verifier.verify(&token).unwrap().role, Role::Office);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(LocalKey::SIGNING_KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o077,
            0,
            "the private key is readable by its owner only"
        );
    }
}

#[tokio::test]
async fn keys_can_come_from_a_jwks_url() {
    let keys = TestKeys::new();
    let jwks = keys.key.jwks_json();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        if let Ok((mut s, _)) = listener.accept() {
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf);
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{jwks}",
                jwks.len()
            );
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let config = config::Config {
        data_dir: dir.path().to_path_buf(),
        auth: config::Auth {
            jwks_url: Some(format!("http://{addr}/.well-known/jwks.json")),
            ..config::Auth::default()
        },
        ..config::Config::default()
    };
    let verifier = Verifier::from_config(&config).await.unwrap();
    let caller = verifier
        .verify(&keys.token("office-1", Role::Office))
        .unwrap();
    assert_eq!(caller.role, Role::Office);
    // No local key is made when keys come from elsewhere.
    assert!(!dir.path().join(LocalKey::SIGNING_KEY_FILE).exists());
}

#[tokio::test]
async fn a_token_signed_with_a_key_published_since_the_last_refresh_wakes_the_refresher() {
    let old = TestKeys::new();
    let new = LocalKey::from_seed([9u8; 32]);
    let (first, rotated) = (old.key.jwks_json(), new.jwks_json());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let served = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = served.clone();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        while let Ok((mut s, _)) = listener.accept() {
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf);
            // The provider rotated right after qaward's first fetch.
            let n = count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let jwks = if n == 0 { &first } else { &rotated };
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{jwks}",
                jwks.len()
            );
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let config = config::Config {
        data_dir: dir.path().to_path_buf(),
        auth: config::Auth {
            jwks_url: Some(format!("http://{addr}/.well-known/jwks.json")),
            // Far longer than the test: only the wake-up can fetch again.
            jwks_refresh_secs: 3600,
            ..config::Auth::default()
        },
        ..config::Config::default()
    };
    let verifier = Verifier::from_config(&config).await.unwrap();
    let token = new
        .issue(
            &config.auth,
            time::OffsetDateTime::now_utc(),
            "office-1",
            Role::Office,
            None,
            None,
        )
        .unwrap();
    let refused = verifier.verify(&token).unwrap_err().to_status();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    let mut accepted = false;
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        if verifier.verify(&token).is_ok() {
            accepted = true;
            break;
        }
    }
    assert!(accepted, "the new key was not fetched");
    assert_eq!(served.load(std::sync::atomic::Ordering::SeqCst), 2);
}

#[test]
fn a_remembered_token_is_forgotten_when_its_key_is_withdrawn_or_it_expires() {
    let auth = config::Auth {
        leeway_secs: 0,
        ..config::Auth::default()
    };
    let old = LocalKey::from_seed([3u8; 32]);
    let new = LocalKey::from_seed([4u8; 32]);
    let verifier = Verifier::from_jwks(&old.jwks_json(), &auth).unwrap();
    let token = old.sign(&claims(&auth)).unwrap();
    // Verified, then answered from memory.
    assert!(verifier.verify(&token).is_ok());
    assert!(verifier.verify(&token).is_ok());
    // Only the very token is answered from memory: one changed byte of its signature, or a
    // character more or less, is checked afresh and refused.
    let (signed, signature) = token.rsplit_once('.').unwrap();
    let flipped = if signature.starts_with('A') { "B" } else { "A" };
    for forged in [
        format!("{signed}.{flipped}{}", &signature[1..]),
        format!("{token}A"),
        token[..token.len() - 1].to_string(),
    ] {
        assert!(verifier.verify(&forged).is_err(), "{forged}");
    }
    // The provider withdraws the key: the remembered token is refused at once.
    verifier.replace_keys(&new.jwks_json()).unwrap();
    let e = verifier.verify(&token).unwrap_err();
    assert_eq!(e.reason, "UNKNOWN_KEY");

    // A token remembered until its last second, and not after.
    let now = time::OffsetDateTime::now_utc().unix_timestamp() as u64;
    let short = new
        .sign(&Claims {
            exp: now + 1,
            ..claims(&auth)
        })
        .unwrap();
    assert!(verifier.verify(&short).is_ok());
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let e = verifier.verify(&short).unwrap_err();
    assert_eq!(e.reason, "TOKEN_EXPIRED");
}

/// Serves `body` once over TLS on loopback with a certificate for `localhost` signed by a new
/// CA; the CA's PEM and the port.
async fn jwks_over_tls(body: String) -> (String, u16) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::rustls::{
        self,
        pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_pem = ca_params.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![CertificateDer::from_pem_slice(cert.pem().as_bytes()).unwrap()],
        PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes()).unwrap(),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, body) = (acceptor.clone(), body.clone());
            tokio::spawn(async move {
                let Ok(mut s) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = [0u8; 2048];
                let _ = s.read(&mut buf).await;
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(answer.as_bytes()).await;
                let _ = s.shutdown().await;
            });
        }
    });
    (ca_pem, port)
}

/// Key sets come over https, checked against the configured CA (or the web's roots, which do
/// not know a private CA); plain http only from this machine; a document over 1 MiB is refused.
#[tokio::test]
async fn a_jwks_url_is_https_or_loopback_and_its_document_is_bounded() {
    let keys = TestKeys::new();
    let (ca_pem, port) = jwks_over_tls(keys.key.jwks_json()).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("idp-ca.pem");
    std::fs::write(&ca_file, &ca_pem).unwrap();
    let with = |url: String, ca: Option<std::path::PathBuf>| config::Config {
        data_dir: dir.path().to_path_buf(),
        auth: config::Auth {
            jwks_url: Some(url),
            jwks_ca_file: ca,
            ..config::Auth::default()
        },
        ..config::Config::default()
    };
    let url = format!("https://localhost:{port}/.well-known/jwks.json");
    let verifier = Verifier::from_config(&with(url.clone(), Some(ca_file)))
        .await
        .unwrap();
    assert!(
        verifier
            .verify(&keys.token("office-1", Role::Office))
            .is_ok()
    );
    // The web's roots do not trust the private CA.
    assert!(Verifier::from_config(&with(url, None)).await.is_err());
    // Plain http beyond this machine is refused before anything is sent.
    let e = Verifier::from_config(&with("http://10.0.0.1/jwks.json".into(), None))
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("loopback"), "{e}");
    // A loopback server sending more than a key set's worth is not read to the end.
    let huge = "x".repeat(2 * 1024 * 1024);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        if let Ok((mut s, _)) = listener.accept() {
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf);
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{huge}",
                huge.len()
            );
        }
    });
    let e = Verifier::from_config(&with(format!("http://{addr}/jwks.json"), None))
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("at most"), "{e}");
}

#[test]
fn an_oversized_token_is_refused_before_it_is_decoded() {
    // A validly signed token of 16-43 KB once reached a service and broke its header limit
    // (HTTP 500 "grpc-status header missing"); now every door refuses it the same way.
    let keys = TestKeys::new();
    let big = keys
        .key
        .sign(&Claims {
            org: Some("x".repeat(20 * 1024)),
            ..claims(&keys.auth)
        })
        .unwrap();
    // Signed by the trusted key, but refused before any of it is decoded.
    let e = keys
        .verifier
        .verify_header(Some(&format!("Bearer {big}")))
        .unwrap_err();
    assert_eq!(
        (e.code, e.reason.as_str()),
        (ErrorCode::Unauthenticated, "TOKEN_TOO_LARGE")
    );
    let fine = keys.key.sign(&claims(&keys.auth)).unwrap();
    assert!(fine.len() < qaward_kit::auth::MAX_TOKEN_BYTES);
    assert!(
        keys.verifier
            .verify_header(Some(&format!("Bearer {fine}")))
            .is_ok()
    );
}
