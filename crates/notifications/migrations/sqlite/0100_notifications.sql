-- Notifications: versioned templates, accepted notifications, one delivery per recipient and
-- channel (the durable queue), the in-platform inbox, and reminders.
CREATE TABLE templates (
    event_type      TEXT   NOT NULL,
    channel         TEXT   NOT NULL,
    version         INTEGER NOT NULL,
    subject         TEXT   NOT NULL,
    body            TEXT   NOT NULL,
    created_by      TEXT   NOT NULL,
    created_micros  INTEGER NOT NULL,
    PRIMARY KEY (event_type, channel, version)
);

CREATE TABLE notifications (
    id              TEXT   PRIMARY KEY,
    event_type      TEXT   NOT NULL,
    -- JSON: the variables and the recipients as accepted.
    variables       TEXT   NOT NULL,
    recipients      TEXT   NOT NULL,
    send_micros     INTEGER NOT NULL,
    reminder_id     TEXT,
    created_by      TEXT   NOT NULL,
    created_micros  INTEGER NOT NULL
);

-- The queue. A worker claims a due row by moving next_attempt_micros past its lease and
-- writing its lease token; only the holder of the token may record the outcome.
CREATE TABLE deliveries (
    id                  TEXT   PRIMARY KEY,
    notification_id     TEXT   NOT NULL REFERENCES notifications (id),
    event_type          TEXT   NOT NULL,
    recipient_id        TEXT   NOT NULL,
    channel             TEXT   NOT NULL,
    address             TEXT   NOT NULL,
    template_version    INTEGER NOT NULL,
    subject             TEXT   NOT NULL,
    body                TEXT   NOT NULL,
    state               TEXT   NOT NULL,
    attempts            INTEGER NOT NULL DEFAULT 0,
    last_error          TEXT   NOT NULL DEFAULT '',
    next_attempt_micros INTEGER NOT NULL,
    lease               TEXT   NOT NULL DEFAULT '',
    delivered_micros    INTEGER,
    created_micros      INTEGER NOT NULL
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_micros, id) WHERE state IN ('pending', 'retrying');
CREATE INDEX deliveries_notification ON deliveries (notification_id);
CREATE INDEX deliveries_recipient ON deliveries (recipient_id, notification_id);
CREATE INDEX deliveries_dead ON deliveries (id) WHERE state = 'dead';

-- The inbox channel's messages; the id is the delivery's, so delivering twice writes once.
CREATE TABLE inbox_messages (
    id              TEXT   PRIMARY KEY,
    recipient_id    TEXT   NOT NULL,
    subject         TEXT   NOT NULL,
    body            TEXT   NOT NULL,
    read_micros     INTEGER,
    created_micros  INTEGER NOT NULL
);
CREATE INDEX inbox_by_recipient ON inbox_messages (recipient_id, id);

CREATE TABLE reminders (
    id              TEXT   PRIMARY KEY,
    event_type      TEXT   NOT NULL,
    variables       TEXT   NOT NULL,
    recipients      TEXT   NOT NULL,
    deadline_micros INTEGER NOT NULL,
    days_before     TEXT   NOT NULL,
    working_days    INTEGER NOT NULL,
    created_by      TEXT   NOT NULL,
    created_micros  INTEGER NOT NULL
);
