-- The transactional outbox: events written in the same transaction as the change.
CREATE TABLE outbox (
    id                  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id            TEXT   NOT NULL UNIQUE,
    topic               TEXT   NOT NULL,
    payload             BYTEA  NOT NULL,
    created_micros      BIGINT NOT NULL,
    attempts            BIGINT NOT NULL DEFAULT 0,
    next_attempt_micros BIGINT NOT NULL,
    delivered_micros    BIGINT,
    last_error          TEXT
);
CREATE INDEX outbox_pending ON outbox (next_attempt_micros) WHERE delivered_micros IS NULL;
