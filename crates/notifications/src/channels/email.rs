//! Email over SMTP with lettre: STARTTLS or implicit TLS (rustls), authentication when
//! configured. Each message carries `Message-ID: <delivery id@qaward>`, so a mail system that
//! sees a retry can tell it is the same message.

use std::time::Duration;

use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{Mailbox, header::ContentType},
    transport::smtp::{
        authentication::Credentials,
        client::{Certificate, Tls, TlsParameters},
    },
};
use qaward_kit::config::{Smtp, SmtpTls};

use crate::{domain::delivery::Outcome, store::DeliveryRow};

pub struct Email {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Email {
    pub fn new(s: &Smtp) -> Result<Email, String> {
        let from: Mailbox = s
            .from
            .parse()
            .map_err(|e| format!("notifications.smtp.from {:?}: {e}", s.from))?;
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(s.host.clone())
            .port(s.port)
            .timeout(Some(Duration::from_millis(s.timeout_ms.max(1))));
        if s.tls != SmtpTls::None {
            let mut params = TlsParameters::builder(s.host.clone());
            if let Some(path) = &s.ca_file {
                let pem = std::fs::read(path)
                    .map_err(|e| format!("notifications.smtp.ca_file {}: {e}", path.display()))?;
                let cert = Certificate::from_pem(&pem)
                    .map_err(|e| format!("notifications.smtp.ca_file {}: {e}", path.display()))?;
                params = params.add_root_certificate(cert);
            }
            let params = params
                .build_rustls()
                .map_err(|e| format!("notifications.smtp TLS: {e}"))?;
            builder = builder.tls(match s.tls {
                SmtpTls::Tls => Tls::Wrapper(params),
                _ => Tls::Required(params),
            });
        }
        if !s.username.is_empty() {
            builder = builder.credentials(Credentials::new(
                s.username.clone(),
                s.password.expose().clone(),
            ));
        }
        Ok(Email {
            transport: builder.build(),
            from,
        })
    }

    pub async fn send(&self, d: &DeliveryRow) -> Outcome {
        let to: Mailbox = match d.address.parse() {
            Ok(m) => m,
            // The address itself is personal data: it stays out of the error.
            Err(e) => return Outcome::Permanent(format!("the address is not a mailbox: {e}")),
        };
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(d.subject.clone())
            .message_id(Some(format!("<{}@qaward>", d.id)))
            .header(ContentType::TEXT_PLAIN)
            .body(d.body.clone());
        let message = match message {
            Ok(m) => m,
            Err(e) => return Outcome::Permanent(format!("cannot build the message: {e}")),
        };
        match self.transport.send(message).await {
            Ok(_) => Outcome::Delivered,
            Err(e) if e.is_permanent() => Outcome::Permanent(format!("SMTP: {e}")),
            Err(e) => Outcome::Transient(format!("SMTP: {e}")),
        }
    }
}
