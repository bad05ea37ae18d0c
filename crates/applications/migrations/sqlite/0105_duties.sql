-- Winners' duties and revocation (R-30 to R-33): the reports award holders file, and the
-- revocation of an award with its ground, approval and publication.
CREATE TABLE reports (
    id            TEXT   PRIMARY KEY,
    credit_code   TEXT   NOT NULL REFERENCES enterprises (credit_code),
    kind          TEXT   NOT NULL,
    year          INTEGER NOT NULL,
    text          TEXT   NOT NULL,
    event_date    TEXT   NOT NULL,
    due_date      TEXT   NOT NULL,
    filed_micros  INTEGER NOT NULL,
    late          INTEGER NOT NULL
);
CREATE INDEX reports_by_enterprise ON reports (credit_code, id);

ALTER TABLE awards ADD COLUMN revoked_micros INTEGER;
ALTER TABLE awards ADD COLUMN revocation TEXT NOT NULL DEFAULT '';
