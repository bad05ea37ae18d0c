//! Who a notification reaches and how: a recipient's id, addresses and channels, validated
//! before anything is stored.

use qaward_kit::cn;

use super::Channel;

/// The most recipients one notification may have.
pub const MAX_RECIPIENTS: usize = 1000;

/// A validated recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    /// The platform's id of the person or organisation: a credit code, a certificate number,
    /// a unit's code. Names the inbox (`inboxes/{id}`).
    pub id: String,
    pub display_name: String,
    pub email: String,
    pub mobile: String,
    /// Without duplicates; the inbox when none was asked for.
    pub channels: Vec<Channel>,
}

impl Recipient {
    /// Where a delivery on `channel` goes: the email address, the mobile number, or the
    /// recipient id (inbox, and the county platform's webhook, which routes by it).
    pub fn address(&self, channel: Channel) -> &str {
        match channel {
            Channel::Email => &self.email,
            Channel::Sms => &self.mobile,
            Channel::Inbox | Channel::Webhook => &self.id,
        }
    }
}

/// A recipient id: 1-64 characters of letters, digits, '-', '_' or '.', no '/' (it is one
/// segment of a resource name); the kit holds the rule, which senders check too.
pub fn valid_id(id: &str) -> bool {
    qaward_kit::notify::valid_recipient_id(id)
}

/// A plausible email address: one '@', a local part and a dotted domain, no spaces or
/// control characters, at most 254 characters. Delivery proves the rest.
pub fn valid_email(s: &str) -> bool {
    if s.len() > 254 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && local.len() <= 64
        && !domain.contains('@')
        && !local.contains(['<', '>', ',', ';', '"'])
        && domain.contains('.')
        && !domain.starts_with(['.', '-'])
        && !domain.ends_with(['.', '-'])
        && domain
            .chars()
            .all(|c| c.is_alphanumeric() || c == '.' || c == '-')
}

/// The problems with one recipient, as (field under the recipient, description).
pub fn check(
    id: &str,
    display_name: &str,
    email: &str,
    mobile: &str,
    channels: &[Channel],
) -> Result<Recipient, Vec<(&'static str, String)>> {
    let mut bad = Vec::new();
    if !valid_id(id) {
        bad.push((
            "id",
            "must be 1-64 letters, digits, '-', '_' or '.' (a credit code, certificate number or unit code)"
                .to_string(),
        ));
    }
    if display_name.chars().count() > 200 || display_name.contains(['\n', '\r']) {
        bad.push((
            "display_name",
            "must be one line of at most 200 characters".into(),
        ));
    }
    let mut chosen: Vec<Channel> = Vec::new();
    for c in channels {
        if chosen.contains(c) {
            bad.push(("channels", format!("names {} twice", c.as_str())));
        } else {
            chosen.push(*c);
        }
    }
    if chosen.is_empty() {
        chosen.push(Channel::Inbox);
    }
    let email = email.trim();
    if !email.is_empty() && !valid_email(email) {
        bad.push(("email", format!("{email:?} is not an email address")));
    } else if email.is_empty() && chosen.contains(&Channel::Email) {
        bad.push(("email", "is required for the email channel".into()));
    }
    let mobile = match mobile.trim() {
        "" if chosen.contains(&Channel::Sms) => {
            bad.push(("mobile", "is required for the SMS channel".into()));
            String::new()
        }
        "" => String::new(),
        m => cn::mobile(m).unwrap_or_else(|e| {
            bad.push(("mobile", e.to_string()));
            String::new()
        }),
    };
    if bad.is_empty() {
        Ok(Recipient {
            id: id.to_string(),
            display_name: display_name.trim().to_string(),
            email: email.to_string(),
            mobile,
            channels: chosen,
        })
    } else {
        Err(bad)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        for ok in ["office@yunyang.gov.cn", "a.b+c@例子.中国", "x@a-b.cn"] {
            assert!(valid_email(ok), "{ok}");
        }
        for bad in [
            "",
            "no-at.cn",
            "a@b",
            "a@@b.cn",
            "a b@c.cn",
            "a@.cn",
            "a@b.cn.",
            "\"x\"@b.cn",
            "a@b.cn\r\nBcc: x@y.cn",
        ] {
            assert!(!valid_email(bad), "{bad}");
        }
    }

    #[test]
    fn a_chosen_channel_needs_its_address_and_addresses_are_checked() {
        let err = check(
            "91500235MA5U7XXX0X",
            "某公司",
            "",
            "",
            &[Channel::Email, Channel::Sms],
        )
        .unwrap_err();
        let fields: Vec<_> = err.iter().map(|(f, _)| *f).collect();
        assert_eq!(fields, ["email", "mobile"]);
        let err = check("r-1", "", "bad", "12345", &[]).unwrap_err();
        let fields: Vec<_> = err.iter().map(|(f, _)| *f).collect();
        assert_eq!(fields, ["email", "mobile"]);
        assert_eq!(check("a/b", "", "", "", &[]).unwrap_err()[0].0, "id");
        assert_eq!(
            check("x", "", "", "", &[Channel::Inbox, Channel::Inbox]).unwrap_err()[0].0,
            "channels"
        );
    }

    #[test]
    fn no_channel_means_the_inbox() {
        let r = check("CQ-0001", "张三", "", "13812345678", &[]).unwrap();
        assert_eq!(r.channels, [Channel::Inbox]);
        assert_eq!(r.address(Channel::Sms), "13812345678");
    }
}
