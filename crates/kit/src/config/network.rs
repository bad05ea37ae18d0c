//! Where each service listens and how it reaches the others, and TLS on both.

use serde::{Deserialize, Serialize};
use std::{net::SocketAddr, path::PathBuf};

/// Where each service listens. Loopback unless told otherwise.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Listen {
    pub gateway_grpc: SocketAddr,
    pub gateway_http: SocketAddr,
    pub applications: SocketAddr,
    pub reviewers: SocketAddr,
    pub scoring: SocketAddr,
    pub notifications: SocketAddr,
}

/// How the gateway and the applications service reach the others, as `http://host:port`.
/// Unset: the service's own listen address (loopback when it listens on every interface),
/// which is right on one machine; on Kubernetes, the services' DNS names.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Upstreams {
    pub applications: Option<String>,
    pub reviewers: Option<String>,
    pub scoring: Option<String>,
    pub notifications: Option<String>,
}

/// The processes `qaward serve` can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceKind {
    Gateway,
    Applications,
    Reviewers,
    Scoring,
    Notifications,
}

/// The URL a process on this machine uses to reach a listen address: loopback in place of an
/// address that listens on every interface.
pub fn local_url(addr: SocketAddr) -> String {
    format!("http://{}", local_addr(addr))
}

/// The address a process on this machine dials for a listen address: loopback in place of an
/// address that listens on every interface.
pub fn local_addr(mut addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    addr
}

/// TLS on every listener, and mutual TLS between the processes (rustls; PEM files).
/// Nothing set: plain text, for a single machine where every port listens on loopback.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Tls {
    /// The certificate chain (PEM) every listener of this process serves, the gateway's HTTP
    /// port included; also the client certificate it presents to the services it calls. Issue
    /// it for the names the others dial (`reviewers.qaward.svc`, `127.0.0.1`) with both the
    /// server and client purposes.
    pub cert_file: Option<PathBuf>,
    /// The private key (PEM) of `cert_file`.
    pub key_file: Option<PathBuf>,
    /// With it, the four services require a client certificate issued by this CA (PEM) on
    /// every call: only the gateway and the other services get in. The gateway's own ports
    /// never ask the platform for one.
    pub client_ca_file: Option<PathBuf>,
    /// With it, this process calls the services over TLS (`https://`), trusting this CA (PEM)
    /// for their certificates.
    pub upstream_ca_file: Option<PathBuf>,
    /// How long a client may take to finish the TLS handshake (milliseconds); a connection
    /// that opens and says nothing is closed after it.
    pub handshake_timeout_ms: u64,
}

impl Default for Tls {
    fn default() -> Self {
        Tls {
            cert_file: None,
            key_file: None,
            client_ca_file: None,
            upstream_ca_file: None,
            handshake_timeout_ms: 10_000,
        }
    }
}

impl Default for Listen {
    fn default() -> Self {
        let at = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
        Listen {
            gateway_grpc: at(50051),
            gateway_http: at(8080),
            applications: at(50052),
            reviewers: at(50053),
            scoring: at(50054),
            notifications: at(50055),
        }
    }
}

impl ServiceKind {
    /// Every service, in the order `qaward serve` starts them: the ones nothing depends on
    /// first, the gateway last.
    pub const ALL: [ServiceKind; 5] = [
        ServiceKind::Reviewers,
        ServiceKind::Scoring,
        ServiceKind::Notifications,
        ServiceKind::Applications,
        ServiceKind::Gateway,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ServiceKind::Gateway => "gateway",
            ServiceKind::Applications => "applications",
            ServiceKind::Reviewers => "reviewers",
            ServiceKind::Scoring => "scoring",
            ServiceKind::Notifications => "notifications",
        }
    }

    pub fn parse(s: &str) -> Option<ServiceKind> {
        ServiceKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The fully qualified gRPC service this process serves (the gateway serves none of its
    /// own).
    pub fn grpc_service(self) -> Option<&'static str> {
        match self {
            ServiceKind::Gateway => None,
            ServiceKind::Applications => Some("qaward.applications.v1.ApplicationService"),
            ServiceKind::Reviewers => Some("qaward.reviewers.v1.ReviewerService"),
            ServiceKind::Scoring => Some("qaward.scoring.v1.ScoringService"),
            ServiceKind::Notifications => Some("qaward.notifications.v1.NotificationService"),
        }
    }
}

impl Tls {
    pub fn handshake_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.handshake_timeout_ms.max(1))
    }

    /// Whether the listeners serve TLS.
    pub fn serves(&self) -> bool {
        self.cert_file.is_some()
    }
}
