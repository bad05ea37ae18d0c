-- Applications (R-05): one per enterprise and cycle, its stage and the last decision with its
-- rule; evidence files (content-addressed blobs); recommendation opinions (Art. 10, 13(1), 14).
CREATE TABLE applications (
    id                    TEXT   PRIMARY KEY,
    programme_id          TEXT   NOT NULL,
    year                  INTEGER NOT NULL,
    credit_code           TEXT   NOT NULL REFERENCES enterprises (credit_code),
    stage                 TEXT   NOT NULL,
    application_form      TEXT   NOT NULL,
    organisation_profile  TEXT   NOT NULL,
    self_assessment       TEXT   NOT NULL,
    submitted_micros      INTEGER,
    -- The last decision: rule, reason, message and inputs (JSON).
    last_rule             TEXT   NOT NULL,
    last_reason           TEXT   NOT NULL,
    last_message          TEXT   NOT NULL,
    last_inputs           TEXT   NOT NULL,
    created_micros        INTEGER NOT NULL,
    updated_micros        INTEGER NOT NULL,
    FOREIGN KEY (programme_id, year) REFERENCES cycles (programme_id, year),
    UNIQUE (programme_id, year, credit_code)
);

CREATE TABLE evidence (
    id              TEXT   PRIMARY KEY,
    application_id  TEXT   NOT NULL REFERENCES applications (id),
    file_name       TEXT   NOT NULL,
    content_type    TEXT   NOT NULL,
    size_bytes      INTEGER NOT NULL,
    sha256          TEXT   NOT NULL,
    created_micros  INTEGER NOT NULL
);
CREATE INDEX evidence_by_application ON evidence (application_id, id);

CREATE TABLE recommendations (
    application_id  TEXT   NOT NULL REFERENCES applications (id),
    unit            TEXT   NOT NULL,
    opinion         TEXT   NOT NULL,
    reasons         TEXT   NOT NULL,
    signed_by       TEXT   NOT NULL,
    signed_micros   INTEGER NOT NULL,
    PRIMARY KEY (application_id, unit)
);
