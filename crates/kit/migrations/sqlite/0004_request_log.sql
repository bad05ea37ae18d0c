-- Idempotency: the answer to every mutating call that carried a request_id, so that a
-- retried call gets the first answer and changes nothing twice.
CREATE TABLE request_log (
    method          TEXT    NOT NULL,
    subject         TEXT    NOT NULL,
    request_id      TEXT    NOT NULL,
    request_hash    TEXT    NOT NULL,
    response        BLOB    NOT NULL,
    created_micros  INTEGER NOT NULL,
    PRIMARY KEY (method, subject, request_id)
);
