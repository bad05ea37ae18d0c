//! The notifications service's tables, on SQLite and PostgreSQL alike: templates,
//! notifications, the delivery queue, the inbox and reminders. Handlers and the delivery
//! worker move data through here; the rules live in `domain`.

use qaward_kit::{
    Error, Result,
    db::{Backend, Conn, Database},
    paging::Page,
};
use sqlx::{Row, any::AnyRow};

use crate::domain::{Channel, catalogue};

mod privacy;
pub use privacy::{SEALED, recipients_plain, retention};

pub const PENDING: &str = "pending";
pub const RETRYING: &str = "retrying";
pub const DELIVERED: &str = "delivered";
pub const DEAD: &str = "dead";
/// A reminder's delivery that will not be sent: its duty ended (CancelReminders).
pub const CANCELLED: &str = "cancelled";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateRow {
    pub event_type: String,
    pub channel: String,
    pub version: i64,
    pub subject: String,
    pub body: String,
}

fn template_row(r: &AnyRow) -> Result<TemplateRow> {
    Ok(TemplateRow {
        event_type: r.try_get("event_type")?,
        channel: r.try_get("channel")?,
        version: r.try_get("version")?,
        subject: r.try_get("subject")?,
        body: r.try_get("body")?,
    })
}

/// Writes version 1 of every shipped template that has no version yet. Run at start; a
/// template the office has since replaced keeps its newer versions.
pub async fn seed_shipped_templates(db: &Database, now_micros: i64) -> Result<usize> {
    let mut tx = db.begin().await?;
    let mut added = 0;
    for e in catalogue::events().values() {
        for ch in Channel::ALL {
            let (subject, body) = e.shipped(ch);
            let done = sqlx::query(
                "INSERT INTO templates (event_type, channel, version, subject, body, created_by, created_micros)
                 VALUES ($1, $2, 1, $3, $4, 'system:notifications', $5)
                 ON CONFLICT (event_type, channel, version) DO NOTHING",
            )
            .bind(&e.name)
            .bind(ch.as_str())
            .bind(subject)
            .bind(body)
            .bind(now_micros)
            .execute(&mut *tx)
            .await?;
            added += done.rows_affected() as usize;
        }
    }
    tx.commit().await?;
    Ok(added)
}

/// The newest version of the template of `event_type` for `channel`.
pub async fn current_template(
    conn: &mut Conn,
    event_type: &str,
    channel: Channel,
) -> Result<TemplateRow> {
    let row = sqlx::query(
        "SELECT event_type, channel, version, subject, body FROM templates
         WHERE event_type = $1 AND channel = $2 ORDER BY version DESC LIMIT 1",
    )
    .bind(event_type)
    .bind(channel.as_str())
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| Error::not_found(format!("templates/{event_type}.{}", channel.as_str())))?;
    template_row(&row)
}

/// Adds the next version of a template; returns it.
pub async fn insert_template(
    conn: &mut Conn,
    event_type: &str,
    channel: Channel,
    subject: &str,
    body: &str,
    by: &str,
    now_micros: i64,
) -> Result<TemplateRow> {
    let row = sqlx::query(
        "SELECT COALESCE(MAX(version), 0) AS v FROM templates WHERE event_type = $1 AND channel = $2",
    )
    .bind(event_type)
    .bind(channel.as_str())
    .fetch_one(&mut *conn)
    .await?;
    let version: i64 = row.try_get::<i64, _>("v")? + 1;
    sqlx::query(
        "INSERT INTO templates (event_type, channel, version, subject, body, created_by, created_micros)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(event_type)
    .bind(channel.as_str())
    .bind(version)
    .bind(subject)
    .bind(body)
    .bind(by)
    .bind(now_micros)
    .execute(&mut *conn)
    .await?;
    Ok(TemplateRow {
        event_type: event_type.to_string(),
        channel: channel.as_str().to_string(),
        version,
        subject: subject.to_string(),
        body: body.to_string(),
    })
}

/// The paging key of a template: event, channel and version.
pub fn template_key(t: &TemplateRow) -> String {
    format!("{}|{}|{}", t.event_type, t.channel, t.version)
}

pub async fn list_templates(
    db: &Database,
    event_type: &str,
    page: &Page,
) -> Result<Vec<TemplateRow>> {
    let mut after = page.after.splitn(3, '|');
    let (e, c, v) = (
        after.next().unwrap_or(""),
        after.next().unwrap_or(""),
        after
            .next()
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(0),
    );
    let rows = sqlx::query(
        "SELECT event_type, channel, version, subject, body FROM templates
         WHERE ($1 = '' OR event_type = $1)
           AND (event_type > $2 OR (event_type = $2 AND channel > $3)
                OR (event_type = $2 AND channel = $3 AND version > $4))
         ORDER BY event_type, channel, version LIMIT $5",
    )
    .bind(event_type)
    .bind(e)
    .bind(c)
    .bind(v)
    .bind(page.fetch())
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(template_row).collect()
}

/// A notification as accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationRow {
    pub id: String,
    pub event_type: String,
    /// JSON object of the variables.
    pub variables: String,
    /// JSON array of the recipients.
    pub recipients: String,
    pub send_micros: i64,
    pub reminder_id: Option<String>,
    pub created_by: String,
    pub created_micros: i64,
}

fn notification_row(r: &AnyRow) -> Result<NotificationRow> {
    Ok(NotificationRow {
        id: r.try_get("id")?,
        event_type: r.try_get("event_type")?,
        variables: r.try_get("variables")?,
        recipients: r.try_get("recipients")?,
        send_micros: r.try_get("send_micros")?,
        reminder_id: r.try_get("reminder_id")?,
        created_by: r.try_get("created_by")?,
        created_micros: r.try_get("created_micros")?,
    })
}

pub async fn insert_notification(conn: &mut Conn, n: &NotificationRow) -> Result<()> {
    sqlx::query(
        "INSERT INTO notifications (id, event_type, variables, recipients, send_micros, reminder_id, created_by, created_micros)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&n.id)
    .bind(&n.event_type)
    .bind(&n.variables)
    .bind(&n.recipients)
    .bind(n.send_micros)
    .bind(n.reminder_id.as_deref())
    .bind(&n.created_by)
    .bind(n.created_micros)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

const NOTIFICATION_SELECT: &str = "SELECT id, event_type, variables, recipients, send_micros, reminder_id, created_by, created_micros FROM notifications";

pub async fn get_notification(conn: &mut Conn, id: &str) -> Result<NotificationRow> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{NOTIFICATION_SELECT} WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| Error::not_found(format!("notifications/{id}")))?;
    notification_row(&row)
}

/// Notifications in id (time) order; those with a delivery to `recipient` when it is given.
pub async fn list_notifications(
    db: &Database,
    recipient: &str,
    page: &Page,
) -> Result<Vec<NotificationRow>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{NOTIFICATION_SELECT} WHERE id > $1 AND ($2 = '' OR id IN
            (SELECT notification_id FROM deliveries WHERE recipient_id = $2))
         ORDER BY id LIMIT $3"
    )))
    .bind(&page.after)
    .bind(recipient)
    .bind(page.fetch())
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(notification_row).collect()
}

/// One recipient's delivery on one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRow {
    pub id: String,
    pub notification_id: String,
    pub event_type: String,
    pub recipient_id: String,
    pub channel: String,
    pub address: String,
    pub template_version: i64,
    pub subject: String,
    pub body: String,
    pub state: String,
    pub attempts: i64,
    pub last_error: String,
    pub next_attempt_micros: i64,
    pub delivered_micros: Option<i64>,
    pub created_micros: i64,
}

const DELIVERY_COLUMNS: &str = "id, notification_id, event_type, recipient_id, channel, address, template_version, subject, body, state, attempts, last_error, next_attempt_micros, delivered_micros, created_micros";

fn delivery_row(r: &AnyRow) -> Result<DeliveryRow> {
    Ok(DeliveryRow {
        id: r.try_get("id")?,
        notification_id: r.try_get("notification_id")?,
        event_type: r.try_get("event_type")?,
        recipient_id: r.try_get("recipient_id")?,
        channel: r.try_get("channel")?,
        address: r.try_get("address")?,
        template_version: r.try_get("template_version")?,
        subject: r.try_get("subject")?,
        body: r.try_get("body")?,
        state: r.try_get("state")?,
        attempts: r.try_get("attempts")?,
        last_error: r.try_get("last_error")?,
        next_attempt_micros: r.try_get("next_attempt_micros")?,
        delivered_micros: r.try_get("delivered_micros")?,
        created_micros: r.try_get("created_micros")?,
    })
}

pub async fn insert_delivery(conn: &mut Conn, d: &DeliveryRow) -> Result<()> {
    sqlx::query(
        "INSERT INTO deliveries (id, notification_id, event_type, recipient_id, channel, address, template_version, subject, body, state, next_attempt_micros, created_micros)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(&d.id)
    .bind(&d.notification_id)
    .bind(&d.event_type)
    .bind(&d.recipient_id)
    .bind(&d.channel)
    .bind(&d.address)
    .bind(d.template_version)
    .bind(&d.subject)
    .bind(&d.body)
    .bind(&d.state)
    .bind(d.next_attempt_micros)
    .bind(d.created_micros)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn deliveries_of(conn: &mut Conn, notification_id: &str) -> Result<Vec<DeliveryRow>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE notification_id = $1 ORDER BY id"
    )))
    .bind(notification_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(delivery_row).collect()
}

pub async fn get_delivery(conn: &mut Conn, id: &str) -> Result<DeliveryRow> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| Error::not_found(format!("deliveries/{id}")))?;
    delivery_row(&row)
}

/// Claims up to `batch` due deliveries for the holder of `lease` without holding a
/// transaction (SQLite, which has one writer: a transaction open across the sends would stall
/// every other write). Their next attempt moves to `lease_until`, so no other worker takes
/// them until the lease runs out; a worker that dies mid-send leaves them to be retried,
/// never lost.
pub async fn claim(
    db: &Database,
    now_micros: i64,
    lease_until: i64,
    lease: &str,
    batch: i64,
) -> Result<Vec<DeliveryRow>> {
    let lock = match db.backend() {
        Backend::Postgres => "FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE deliveries SET next_attempt_micros = $1, lease = $2
         WHERE state IN ('pending', 'retrying') AND next_attempt_micros <= $3 AND id IN (
             SELECT id FROM deliveries
             WHERE state IN ('pending', 'retrying') AND next_attempt_micros <= $3
             ORDER BY next_attempt_micros, id LIMIT $4 {lock})
         RETURNING {DELIVERY_COLUMNS}"
    )))
    .bind(lease_until)
    .bind(lease)
    .bind(now_micros)
    .bind(batch)
    .fetch_all(db.pool())
    .await?;
    let mut out = rows.iter().map(delivery_row).collect::<Result<Vec<_>>>()?;
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

/// SQLite, at start: hands back every delivery a predecessor claimed and never recorded. One
/// process owns the SQLite file, so a lease still held when it starts belongs to a process that
/// died mid-send (a SIGKILL, a power cut); waiting for the lease to run out would delay those
/// deliveries by a lease period for nothing. They are due again at once. Returns how many.
/// (PostgreSQL needs none of this: its claims are row locks, released when a process dies.)
pub async fn release_stale_leases(db: &Database, now_micros: i64) -> Result<u64> {
    let r = sqlx::query(
        "UPDATE deliveries SET next_attempt_micros = $1, lease = ''
         WHERE lease <> '' AND state IN ('pending', 'retrying')",
    )
    .bind(now_micros)
    .execute(db.pool())
    .await?;
    Ok(r.rows_affected())
}

/// Takes up to `batch` due deliveries inside `tx` and keeps them locked until it ends
/// (PostgreSQL): other workers skip locked rows, and if this worker dies its transaction is
/// rolled back and the rows are due again at once. The rows keep an empty lease, which is
/// what their outcomes are recorded under.
pub async fn claim_locked(
    conn: &mut Conn,
    now_micros: i64,
    batch: i64,
) -> Result<Vec<DeliveryRow>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {DELIVERY_COLUMNS} FROM deliveries
         WHERE state IN ('pending', 'retrying') AND next_attempt_micros <= $1
         ORDER BY next_attempt_micros, id LIMIT $2 FOR UPDATE SKIP LOCKED"
    )))
    .bind(now_micros)
    .bind(batch)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(delivery_row).collect()
}

/// The outcome of one attempt, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt<'a> {
    pub state: &'a str,
    /// Attempts so far, this one included.
    pub attempts: i64,
    pub last_error: &'a str,
    pub next_attempt_micros: i64,
    pub delivered_micros: Option<i64>,
}

/// Records an attempt's outcome, if `lease` still holds the delivery; false when another
/// worker took it over after the lease ran out (its own outcome will be recorded instead).
pub async fn record_attempt(
    conn: &mut Conn,
    id: &str,
    lease: &str,
    a: &Attempt<'_>,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE deliveries SET state = $1, attempts = $2, last_error = $3, next_attempt_micros = $4,
                delivered_micros = $5, lease = ''
         WHERE id = $6 AND lease = $7 AND state IN ('pending', 'retrying')",
    )
    .bind(a.state)
    .bind(a.attempts)
    .bind(a.last_error)
    .bind(a.next_attempt_micros)
    .bind(a.delivered_micros)
    .bind(id)
    .bind(lease)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Records a batch's deliveries in one statement: the common outcome of a round. Only rows
/// `lease` still holds are touched; returns how many were.
pub async fn record_delivered(
    conn: &mut Conn,
    ids: &[&str],
    lease: &str,
    now_micros: i64,
) -> Result<u64> {
    if ids.is_empty() {
        return Ok(0);
    }
    let list = (0..ids.len())
        .map(|i| format!("${}", i + 3))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "UPDATE deliveries SET state = 'delivered', attempts = attempts + 1, last_error = '',
                next_attempt_micros = $1, delivered_micros = $1, lease = ''
         WHERE lease = $2 AND state IN ('pending', 'retrying') AND id IN ({list})"
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(now_micros)
        .bind(lease);
    for id in ids {
        q = q.bind(*id);
    }
    Ok(q.execute(&mut *conn).await?.rows_affected())
}

/// The inbox channel: the message is written with the delivery's id, so a second attempt
/// writes nothing new.
pub async fn put_inbox_message(conn: &mut Conn, d: &DeliveryRow, now_micros: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO inbox_messages (id, recipient_id, subject, body, created_micros)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING",
    )
    .bind(&d.id)
    .bind(&d.recipient_id)
    .bind(&d.subject)
    .bind(&d.body)
    .bind(now_micros)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxRow {
    pub id: String,
    pub recipient_id: String,
    pub subject: String,
    pub body: String,
    pub read_micros: Option<i64>,
    pub created_micros: i64,
}

fn inbox_row(r: &AnyRow) -> Result<InboxRow> {
    Ok(InboxRow {
        id: r.try_get("id")?,
        recipient_id: r.try_get("recipient_id")?,
        subject: r.try_get("subject")?,
        body: r.try_get("body")?,
        read_micros: r.try_get("read_micros")?,
        created_micros: r.try_get("created_micros")?,
    })
}

/// A recipient's inbox, newest first.
pub async fn list_inbox(
    db: &Database,
    recipient: &str,
    unread_only: bool,
    page: &Page,
) -> Result<Vec<InboxRow>> {
    let rows = sqlx::query(
        "SELECT id, recipient_id, subject, body, read_micros, created_micros FROM inbox_messages
         WHERE recipient_id = $1 AND ($2 = '' OR id < $2) AND ($3 = 0 OR read_micros IS NULL)
         ORDER BY id DESC LIMIT $4",
    )
    .bind(recipient)
    .bind(&page.after)
    .bind(i64::from(unread_only))
    .bind(page.fetch())
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(inbox_row).collect()
}

/// Marks a message read (the first time only) and returns it.
pub async fn mark_read(
    conn: &mut Conn,
    recipient: &str,
    id: &str,
    now_micros: i64,
) -> Result<InboxRow> {
    sqlx::query(
        "UPDATE inbox_messages SET read_micros = $1 WHERE id = $2 AND recipient_id = $3 AND read_micros IS NULL",
    )
    .bind(now_micros)
    .bind(id)
    .bind(recipient)
    .execute(&mut *conn)
    .await?;
    let row = sqlx::query(
        "SELECT id, recipient_id, subject, body, read_micros, created_micros FROM inbox_messages
         WHERE id = $1 AND recipient_id = $2",
    )
    .bind(id)
    .bind(recipient)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| Error::not_found(format!("inboxes/{recipient}/messages/{id}")))?;
    inbox_row(&row)
}

pub async fn list_dead(db: &Database, page: &Page) -> Result<Vec<DeliveryRow>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE state = 'dead' AND id > $1 ORDER BY id LIMIT $2"
    )))
    .bind(&page.after)
    .bind(page.fetch())
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(delivery_row).collect()
}

/// Puts a dead letter back on the queue, due now, with a fresh count of attempts. Only a
/// dead letter can be requeued.
pub async fn requeue(conn: &mut Conn, id: &str, now_micros: i64) -> Result<DeliveryRow> {
    let done = sqlx::query(
        "UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_micros = $1, lease = ''
         WHERE id = $2 AND state = 'dead' AND (address <> '' OR body <> '')",
    )
    .bind(now_micros)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    let row = get_delivery(conn, id).await?;
    if row.state == DEAD && row.body.is_empty() && row.address.is_empty() {
        return Err(Error::new(
            qaward_kit::error::ErrorCode::FailedPrecondition,
            "MESSAGE_PURGED",
            format!(
                "deliveries/{id}: its text and address were purged past privacy.message_days (R-54); send a new notification"
            ),
        ));
    }
    if done.rows_affected() == 0 {
        return Err(Error::new(
            qaward_kit::error::ErrorCode::FailedPrecondition,
            "NOT_A_DEAD_LETTER",
            format!("deliveries/{id} is {}, not a dead letter", row.state),
        ));
    }
    Ok(row)
}

/// Deliveries waiting to be attempted (pending or retrying), counted on the queue's index.
pub async fn count_queued(db: &Database) -> Result<i64> {
    let row =
        sqlx::query("SELECT COUNT(*) AS n FROM deliveries WHERE state IN ('pending', 'retrying')")
            .fetch_one(db.pool())
            .await?;
    Ok(row.try_get("n")?)
}

/// Counts of deliveries by state, for tests and the benchmark.
pub async fn count_state(db: &Database, state: &str) -> Result<i64> {
    let row = sqlx::query("SELECT COUNT(*) AS n FROM deliveries WHERE state = $1")
        .bind(state)
        .fetch_one(db.pool())
        .await?;
    Ok(row.try_get("n")?)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReminderRow {
    pub id: String,
    pub event_type: String,
    pub variables: String,
    pub recipients: String,
    pub deadline_micros: i64,
    /// JSON array of days.
    pub days_before: String,
    pub working_days: bool,
    pub created_by: String,
    pub created_micros: i64,
    pub cancelled_micros: Option<i64>,
    pub cancel_reason: String,
}

pub async fn insert_reminder(conn: &mut Conn, r: &ReminderRow) -> Result<()> {
    sqlx::query(
        "INSERT INTO reminders (id, event_type, variables, recipients, deadline_micros, days_before, working_days, created_by, created_micros)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&r.id)
    .bind(&r.event_type)
    .bind(&r.variables)
    .bind(&r.recipients)
    .bind(r.deadline_micros)
    .bind(&r.days_before)
    .bind(i64::from(r.working_days))
    .bind(&r.created_by)
    .bind(r.created_micros)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn list_reminders(db: &Database, page: &Page) -> Result<Vec<ReminderRow>> {
    let rows = sqlx::query(
        "SELECT id, event_type, variables, recipients, deadline_micros, days_before, working_days, created_by, created_micros,
                cancelled_micros, cancel_reason
         FROM reminders WHERE id > $1 ORDER BY id LIMIT $2",
    )
    .bind(&page.after)
    .bind(page.fetch())
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(ReminderRow {
                id: r.try_get("id")?,
                event_type: r.try_get("event_type")?,
                variables: r.try_get("variables")?,
                recipients: r.try_get("recipients")?,
                deadline_micros: r.try_get("deadline_micros")?,
                days_before: r.try_get("days_before")?,
                working_days: r.try_get::<i64, _>("working_days")? != 0,
                created_by: r.try_get("created_by")?,
                created_micros: r.try_get("created_micros")?,
                cancelled_micros: r.try_get("cancelled_micros")?,
                cancel_reason: r.try_get("cancel_reason")?,
            })
        })
        .collect()
}

/// Cancels the reminders of `event_type` to `recipient` not cancelled yet: their deliveries not
/// yet sent become CANCELLED. Returns the reminders cancelled and the deliveries stopped.
pub async fn cancel_reminders(
    conn: &mut Conn,
    recipient: &str,
    event_type: &str,
    reason: &str,
    now_micros: i64,
) -> Result<(Vec<String>, u64)> {
    let ids: Vec<String> = sqlx::query(
        "SELECT DISTINCT n.reminder_id FROM notifications n JOIN deliveries d ON d.notification_id = n.id
         JOIN reminders m ON m.id = n.reminder_id
         WHERE d.recipient_id = $1 AND n.event_type = $2 AND m.cancelled_micros IS NULL
         ORDER BY n.reminder_id",
    )
    .bind(recipient)
    .bind(event_type)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| r.try_get(0))
    .collect::<Result<_, sqlx::Error>>()?;
    let mut stopped = 0;
    for id in &ids {
        stopped += sqlx::query(
            "UPDATE deliveries SET state = $1 WHERE state IN ($2, $3) AND recipient_id = $4
             AND notification_id IN (SELECT id FROM notifications WHERE reminder_id = $5)",
        )
        .bind(CANCELLED)
        .bind(PENDING)
        .bind(RETRYING)
        .bind(recipient)
        .bind(id)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        sqlx::query("UPDATE reminders SET cancelled_micros = $1, cancel_reason = $2 WHERE id = $3")
            .bind(now_micros)
            .bind(reason)
            .bind(id)
            .execute(&mut *conn)
            .await?;
    }
    Ok((ids, stopped))
}
