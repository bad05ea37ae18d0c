-- Issue 25, item 3: an applicant that failed the materials review may ask, once and within the
-- programme's window, for a re-check of its feedback report (R-13); the office decides it with
-- its reasons.
CREATE TABLE rechecks (
    application_id    TEXT   PRIMARY KEY REFERENCES applications (id),
    reason            TEXT   NOT NULL,
    requested_by      TEXT   NOT NULL,
    requested_micros  BIGINT NOT NULL,
    window_end        TEXT   NOT NULL,
    outcome           TEXT   NOT NULL CHECK (outcome IN ('PENDING', 'CONFIRMED', 'UPHELD')),
    decision_reasons  TEXT   NOT NULL DEFAULT '',
    decided_micros    BIGINT
);
