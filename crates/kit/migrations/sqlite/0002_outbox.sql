-- The transactional outbox: events written in the same transaction as the change.
CREATE TABLE outbox (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id            TEXT    NOT NULL UNIQUE,
    topic               TEXT    NOT NULL,
    payload             BLOB    NOT NULL,
    created_micros      INTEGER NOT NULL,
    attempts            INTEGER NOT NULL DEFAULT 0,
    next_attempt_micros INTEGER NOT NULL,
    delivered_micros    INTEGER,
    last_error          TEXT
);
CREATE INDEX outbox_pending ON outbox (next_attempt_micros) WHERE delivered_micros IS NULL;
