-- Issue 25, item 1 (Art. 20; R-32): revocation goes office → committee → government, each step
-- by its own role, on the record. One open case per award at a time.
CREATE TABLE revocations (
    id                  TEXT   PRIMARY KEY,
    credit_code         TEXT   NOT NULL,
    programme_id        TEXT   NOT NULL,
    application_id      TEXT   NOT NULL REFERENCES applications (id),
    ground              TEXT   NOT NULL,
    reason              TEXT   NOT NULL,
    state               TEXT   NOT NULL
        CHECK (state IN ('VERIFIED', 'ENDORSED', 'REJECTED', 'APPROVED', 'REFUSED')),
    verified_micros     BIGINT NOT NULL,
    committee_unit      TEXT   NOT NULL DEFAULT '',
    committee_note      TEXT   NOT NULL DEFAULT '',
    reviewed_micros     BIGINT,
    approval_document   TEXT   NOT NULL DEFAULT '',
    approval_date       TEXT   NOT NULL DEFAULT '',
    publication         TEXT   NOT NULL DEFAULT '',
    government_note     TEXT   NOT NULL DEFAULT '',
    ban_until           TEXT   NOT NULL DEFAULT '',
    decided_micros      BIGINT
);
CREATE INDEX revocations_by_award ON revocations (application_id, state);
