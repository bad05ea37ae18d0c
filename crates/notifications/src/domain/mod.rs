//! The rules of notification, with no I/O: which events exist and what they carry
//! (`catalogue`), templates (`template`), who can be reached how (`recipient`), when to retry
//! and how fast to send (`delivery`), when to remind (`reminder`), and how a receiver knows a
//! request came from us (`signature`).

pub mod catalogue;
pub mod delivery;
pub mod recipient;
pub mod reminder;
pub mod signature;
pub mod template;

/// A way of reaching a recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Channel {
    /// The county platform's in-platform inbox, kept by this service.
    Inbox,
    Email,
    /// The county platform's webhook.
    Webhook,
    Sms,
}

impl Channel {
    pub const ALL: [Channel; 4] = [
        Channel::Inbox,
        Channel::Email,
        Channel::Webhook,
        Channel::Sms,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Inbox => "inbox",
            Channel::Email => "email",
            Channel::Webhook => "webhook",
            Channel::Sms => "sms",
        }
    }

    pub fn parse(s: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.as_str() == s)
    }
}
