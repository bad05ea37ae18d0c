//! A real SMTP server for the tests, on loopback: EHLO, STARTTLS (with a certificate made for
//! the test), AUTH PLAIN and LOGIN, MAIL, RCPT, DATA, RSET, NOOP, QUIT. It records each
//! message as received and can be told to refuse the next transactions.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
};

use base64::{Engine, engine::general_purpose::STANDARD};
use tokio::{
    io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader},
    net::TcpListener,
};
use tokio_rustls::{TlsAcceptor, rustls};

#[derive(Debug, Clone)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    /// The message as sent: headers, a blank line, the body (dot-unstuffed).
    pub data: String,
    pub authenticated_as: Option<String>,
    pub over_tls: bool,
}

#[derive(Default)]
struct State {
    mails: Vec<Mail>,
    /// Replies to give MAIL FROM instead of 250, in order (e.g. "451 4.3.0 try later").
    refusals: VecDeque<String>,
}

#[derive(Clone)]
pub struct SmtpServer {
    pub port: u16,
    /// The CA (self-signed certificate) to trust, PEM, when the server offers STARTTLS.
    pub ca_pem: Option<String>,
    state: Arc<Mutex<State>>,
}

pub const USER: &str = "award-office";
pub const PASSWORD: &str = "s3cret-pass";

impl SmtpServer {
    pub async fn start(starttls: bool) -> SmtpServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (acceptor, ca_pem) = if starttls {
            let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
            let cert_der = ck.cert.der().clone();
            let key =
                rustls::pki_types::PrivateKeyDer::Pkcs8(ck.signing_key.serialize_der().into());
            let config = rustls::ServerConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert_der], key)
            .unwrap();
            (
                Some(TlsAcceptor::from(Arc::new(config))),
                Some(ck.cert.pem()),
            )
        } else {
            (None, None)
        };
        let state = Arc::new(Mutex::new(State::default()));
        let st = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                let (st, acceptor) = (st.clone(), acceptor.clone());
                tokio::spawn(async move {
                    let mut reader = BufReader::new(sock);
                    reader
                        .get_mut()
                        .write_all(b"220 localhost qaward-test ESMTP\r\n")
                        .await
                        .ok();
                    let upgrade = session(&mut reader, &st, acceptor.is_some(), false).await;
                    if let (Some(Upgrade), Some(acceptor)) = (upgrade, acceptor) {
                        let Ok(tls) = acceptor.accept(reader.into_inner()).await else {
                            return;
                        };
                        let mut reader = BufReader::new(tls);
                        session(&mut reader, &st, false, true).await;
                    }
                });
            }
        });
        SmtpServer {
            port,
            ca_pem,
            state,
        }
    }

    pub fn mails(&self) -> Vec<Mail> {
        self.state.lock().unwrap().mails.clone()
    }

    /// The next MAIL FROM commands get these replies.
    pub fn refuse_next(&self, replies: &[&str]) {
        let mut st = self.state.lock().unwrap();
        st.refusals.extend(replies.iter().map(|s| s.to_string()));
    }
}

struct Upgrade;

async fn reply<S: AsyncWrite + Unpin>(s: &mut S, text: &str) {
    let _ = s.write_all(text.as_bytes()).await;
    let _ = s.write_all(b"\r\n").await;
    let _ = s.flush().await;
}

/// One SMTP session until QUIT, EOF, or STARTTLS (returns `Some(Upgrade)`).
async fn session<S: AsyncRead + AsyncWrite + Unpin>(
    r: &mut BufReader<S>,
    state: &Mutex<State>,
    offer_tls: bool,
    over_tls: bool,
) -> Option<Upgrade> {
    let mut user: Option<String> = None;
    let mut from = String::new();
    let mut to = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        let cmd = line.trim_end().to_string();
        let upper = cmd.to_ascii_uppercase();
        let w = r.get_mut();
        if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            let tls = if offer_tls { "250-STARTTLS\r\n" } else { "" };
            reply(
                w,
                &format!(
                    "250-localhost\r\n{tls}250-AUTH PLAIN LOGIN\r\n250-8BITMIME\r\n250 SMTPUTF8"
                ),
            )
            .await;
        } else if upper == "STARTTLS" && offer_tls {
            reply(w, "220 2.0.0 ready to start TLS").await;
            return Some(Upgrade);
        } else if let Some(b64) = upper.strip_prefix("AUTH PLAIN ").map(|_| &cmd[11..]) {
            let raw = STANDARD.decode(b64.trim()).unwrap_or_default();
            let parts: Vec<&[u8]> = raw.split(|b| *b == 0).collect();
            if parts.len() == 3 && parts[1] == USER.as_bytes() && parts[2] == PASSWORD.as_bytes() {
                user = Some(USER.to_string());
                reply(w, "235 2.7.0 authenticated").await;
            } else {
                reply(w, "535 5.7.8 bad credentials").await;
            }
        } else if upper == "AUTH LOGIN" {
            reply(w, "334 VXNlcm5hbWU6").await;
            let mut u = String::new();
            r.read_line(&mut u).await.ok()?;
            reply(r.get_mut(), "334 UGFzc3dvcmQ6").await;
            let mut p = String::new();
            r.read_line(&mut p).await.ok()?;
            let dec = |s: &str| {
                String::from_utf8(STANDARD.decode(s.trim()).unwrap_or_default()).unwrap_or_default()
            };
            if dec(&u) == USER && dec(&p) == PASSWORD {
                user = Some(USER.to_string());
                reply(r.get_mut(), "235 2.7.0 authenticated").await;
            } else {
                reply(r.get_mut(), "535 5.7.8 bad credentials").await;
            }
        } else if upper.starts_with("MAIL FROM:") {
            let refusal = state.lock().unwrap().refusals.pop_front();
            match refusal {
                Some(text) => reply(w, &text).await,
                None => {
                    from = cmd[10..].trim().trim_matches(['<', '>']).to_string();
                    to.clear();
                    reply(w, "250 2.1.0 ok").await;
                }
            }
        } else if upper.starts_with("RCPT TO:") {
            to.push(cmd[8..].trim().trim_matches(['<', '>']).to_string());
            reply(w, "250 2.1.5 ok").await;
        } else if upper == "DATA" {
            reply(w, "354 end with <CRLF>.<CRLF>").await;
            let mut data = String::new();
            loop {
                let mut l = String::new();
                if r.read_line(&mut l).await.ok()? == 0 {
                    return None;
                }
                if l == ".\r\n" {
                    break;
                }
                data.push_str(l.strip_prefix('.').unwrap_or(&l));
            }
            state.lock().unwrap().mails.push(Mail {
                from: from.clone(),
                to: to.clone(),
                data,
                authenticated_as: user.clone(),
                over_tls,
            });
            reply(r.get_mut(), "250 2.0.0 queued").await;
        } else if upper == "RSET" || upper == "NOOP" {
            reply(w, "250 2.0.0 ok").await;
        } else if upper == "QUIT" {
            reply(w, "221 2.0.0 bye").await;
            return None;
        } else {
            reply(w, "502 5.5.2 command not recognised").await;
        }
    }
}
