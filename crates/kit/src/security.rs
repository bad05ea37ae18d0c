//! Security events (等保 2.0 security audit): every refusal of a call — its authentication,
//! the policy table, a record-level check, the caller's rate — is one structured log line on
//! the `security` target and one count of `qaward.security.refusals` (labels `kind`,
//! `reason`). A line names the time, the method, the peer when known, the caller's subject
//! and role when the token verified, the kind and the stable reason; never the token, and no
//! personal data beyond the subject. `deploy/README.md` says how to ship these lines to a store
//! of their own and keep them six months.

use std::{
    net::SocketAddr,
    sync::{
        LazyLock,
        atomic::{AtomicU64, Ordering},
    },
};

use opentelemetry::{KeyValue, global, metrics::Counter};

use crate::auth::Caller;

/// What refused the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// No token, or one that does not verify.
    Authentication,
    /// The policy table: the caller's role may not call the method.
    Policy,
    /// The handler: the caller may call the method, but not on this record.
    Record,
    /// The caller is over its rate.
    Rate,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Authentication => "authentication",
            Kind::Policy => "policy",
            Kind::Record => "record",
            Kind::Rate => "rate",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

static COUNTER: LazyLock<Counter<u64>> = LazyLock::new(|| {
    global::meter("qaward")
        .u64_counter("qaward.security.refusals")
        .with_description("Calls refused: authentication, policy, record or rate")
        .build()
});

/// The refusals this process has logged, by kind (for tests and `qaward health`-style probes).
static SEEN: [AtomicU64; 4] = [
    AtomicU64::new(0),
    AtomicU64::new(0),
    AtomicU64::new(0),
    AtomicU64::new(0),
];

/// How many refusals of `kind` this process has logged.
pub fn refusals(kind: Kind) -> u64 {
    SEEN[kind.index()].load(Ordering::Relaxed)
}

/// Logs and counts one refusal of a call to `method` (`/package.Service/Method`, or an HTTP
/// route) for `reason` (the stable reason code the caller got).
pub fn refused(
    kind: Kind,
    reason: &str,
    method: &str,
    caller: Option<&Caller>,
    peer: Option<SocketAddr>,
) {
    SEEN[kind.index()].fetch_add(1, Ordering::Relaxed);
    COUNTER.add(
        1,
        &[
            KeyValue::new("kind", kind.as_str()),
            KeyValue::new("reason", reason.to_string()),
        ],
    );
    let peer = peer.map(|p| p.ip().to_string()).unwrap_or_default();
    match caller {
        Some(c) => tracing::warn!(
            target: "security",
            kind = kind.as_str(),
            reason,
            method,
            peer,
            issuer = c.issuer.as_str(),
            subject = c.subject.as_str(),
            role = c.role.as_str(),
            programme = c.programme_id().unwrap_or_default(),
            "call refused"
        ),
        None => tracing::warn!(
            target: "security",
            kind = kind.as_str(),
            reason,
            method,
            peer,
            "call refused"
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::auth::Role;

    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_refusal_is_one_structured_line_without_the_token() {
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_writer(move || writer.clone())
            .finish();
        let caller = Caller {
            issuer: "qaward-local".into(),
            subject: "office-9".into(),
            role: Role::Office,
            org: None,
            programme: Some("fengjie".into()),
            registry_keeper: false,
            token: "eyJhbGciOiJFZERTQSJ9.secret.signature".into(),
        };
        let before = refusals(Kind::Record);
        tracing::subscriber::with_default(subscriber, || {
            refused(
                Kind::Record,
                "PERMISSION_DENIED",
                "/qaward.scoring.v1.ScoringService/GetSheet",
                Some(&caller),
                Some("10.1.2.3:5000".parse().unwrap()),
            )
        });
        assert!(refusals(Kind::Record) > before);
        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        let line: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(line["target"], "security");
        let fields = &line["fields"];
        assert_eq!(fields["kind"], "record");
        assert_eq!(fields["reason"], "PERMISSION_DENIED");
        assert_eq!(fields["issuer"], "qaward-local");
        assert_eq!(fields["subject"], "office-9");
        assert_eq!(fields["role"], "office");
        assert_eq!(fields["peer"], "10.1.2.3");
        assert!(
            !text.contains("secret"),
            "the token is never logged: {text}"
        );
    }
}
