//! What the notifications service keeps of personal data and for how long: the columns
//! it seals, and each kind of data it purges past its days.

use qaward_kit::{
    fields::{FieldError, FieldKeys},
    reseal::{Form, REQUEST_LOG, SealedColumn},
    retention,
};

/// The columns holding personal data, sealed with the field keys and brought under the
/// current key at start ([`qaward_kit::reseal`]): names and addresses, and the messages.
pub const SEALED: &[SealedColumn] = &[
    sealed("notifications", "variables", Form::Text),
    sealed(
        "notifications",
        "recipients",
        Form::TextWith(recipients_plain),
    ),
    sealed("reminders", "variables", Form::Text),
    sealed("reminders", "recipients", Form::TextWith(recipients_plain)),
    sealed("deliveries", "address", Form::Text),
    sealed("deliveries", "subject", Form::Text),
    sealed("deliveries", "body", Form::Text),
    sealed("inbox_messages", "subject", Form::Text),
    sealed("inbox_messages", "body", Form::Text),
    REQUEST_LOG,
];

const fn sealed(table: &'static str, column: &'static str, form: Form) -> SealedColumn {
    SealedColumn {
        table,
        key: &["id"],
        column,
        form,
    }
}

/// A recipient list (JSON) with every address in clear: an earlier version sealed the
/// addresses one by one inside a list kept in clear; now the list is sealed whole.
pub fn recipients_plain(keys: &FieldKeys, json: String) -> Result<String, FieldError> {
    let mut list: Vec<serde_json::Value> =
        serde_json::from_str(&json).map_err(|_| FieldError::Corrupt)?;
    for r in &mut list {
        for k in ["email", "mobile"] {
            if let Some(v) = r[k].as_str() {
                r[k] = keys.open(v)?.into();
            }
        }
    }
    Ok(serde_json::Value::Array(list).to_string())
}

/// What this service keeps for a while, with its days: the request log; a message's
/// text and address once it is done with (delivered, dead or cancelled), blanked while its
/// record stays; and the delivery records themselves, deleted with their notification.
pub fn retention(config: &qaward_kit::config::Config) -> Vec<(retention::Kind, u32)> {
    let p = &config.privacy;
    vec![
        retention::request_log(config),
        (MESSAGE_TEXTS, p.message_days),
        (NOTIFICATION_CONTENTS, p.message_days),
        (REMINDER_CONTENTS, p.message_days),
        (DELIVERY_RECORDS, p.delivery_days),
        (NOTIFICATION_RECORDS, p.delivery_days),
    ]
}

/// A delivery's address and text, and its inbox copy, once it is done with.
const MESSAGE_TEXTS: retention::Kind = retention::Kind {
    name: "deliveries.message",
    setting: "privacy.message_days",
    expired: "SELECT id FROM deliveries
              WHERE created_micros < $1 AND state IN ('delivered', 'dead', 'cancelled')
                AND (address <> '' OR subject <> '' OR body <> '')
              ORDER BY id LIMIT $2",
    purge: &[
        "UPDATE deliveries SET address = '', subject = '', body = '' WHERE id = $1",
        "DELETE FROM inbox_messages WHERE id = $1",
    ],
};

/// A notification's variables and recipients (names, addresses) once none of its deliveries
/// is still to be attempted.
const NOTIFICATION_CONTENTS: retention::Kind = retention::Kind {
    name: "notifications.content",
    setting: "privacy.message_days",
    expired: "SELECT id FROM notifications n
              WHERE created_micros < $1 AND (variables <> '' OR recipients <> '')
                AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.notification_id = n.id
                                AND d.state IN ('pending', 'retrying'))
              ORDER BY id LIMIT $2",
    purge: &["UPDATE notifications SET variables = '', recipients = '' WHERE id = $1"],
};

/// A reminder's variables and recipients once its deadline has passed.
const REMINDER_CONTENTS: retention::Kind = retention::Kind {
    name: "reminders.content",
    setting: "privacy.message_days",
    expired: "SELECT id FROM reminders
              WHERE deadline_micros < $1 AND (variables <> '' OR recipients <> '')
              ORDER BY id LIMIT $2",
    purge: &["UPDATE reminders SET variables = '', recipients = '' WHERE id = $1"],
};

/// A delivery's record once it is done with.
const DELIVERY_RECORDS: retention::Kind = retention::Kind {
    name: "deliveries",
    setting: "privacy.delivery_days",
    expired: "SELECT id FROM deliveries
              WHERE created_micros < $1 AND state IN ('delivered', 'dead', 'cancelled')
              ORDER BY id LIMIT $2",
    purge: &[
        "DELETE FROM inbox_messages WHERE id = $1",
        "DELETE FROM deliveries WHERE id = $1",
    ],
};

/// A notification none of whose deliveries is left.
const NOTIFICATION_RECORDS: retention::Kind = retention::Kind {
    name: "notifications",
    setting: "privacy.delivery_days",
    expired: "SELECT id FROM notifications n
              WHERE created_micros < $1
                AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.notification_id = n.id)
              ORDER BY id LIMIT $2",
    purge: &["DELETE FROM notifications WHERE id = $1"],
};
