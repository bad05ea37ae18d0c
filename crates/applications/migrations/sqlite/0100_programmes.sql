-- Programmes with versioned settings (R-01), their yearly cycles (the published notice, pinned
-- to a settings version), enterprises (R-02) and what the award knows of each (R-04, R-33).
CREATE TABLE programmes (
    id                TEXT   PRIMARY KEY,
    display_name      TEXT   NOT NULL,
    settings_version  INTEGER NOT NULL,
    created_micros    INTEGER NOT NULL
);

CREATE TABLE programme_settings (
    programme_id    TEXT   NOT NULL REFERENCES programmes (id),
    version         INTEGER NOT NULL,
    -- JSON of domain::settings::Settings; decimals as strings.
    settings        TEXT   NOT NULL,
    created_micros  INTEGER NOT NULL,
    PRIMARY KEY (programme_id, version)
);

CREATE TABLE cycles (
    programme_id        TEXT   NOT NULL REFERENCES programmes (id),
    year                INTEGER NOT NULL,
    notice_title        TEXT   NOT NULL,
    conditions          TEXT   NOT NULL,
    -- JSON array of strings.
    required_materials  TEXT   NOT NULL,
    deadline_micros     INTEGER NOT NULL,
    settings_version    INTEGER NOT NULL,
    state               TEXT   NOT NULL,
    created_micros      INTEGER NOT NULL,
    PRIMARY KEY (programme_id, year)
);

CREATE TABLE enterprises (
    credit_code         TEXT   PRIMARY KEY,
    display_name        TEXT   NOT NULL,
    established_date    TEXT   NOT NULL,
    industry_code       TEXT   NOT NULL,
    recommending_unit   TEXT   NOT NULL,
    created_micros      INTEGER NOT NULL
);

-- Awards, revocations and fraud findings of an enterprise in a programme: the data behind
-- R-04 and R-33. Written by the award and revocation steps.
CREATE TABLE enterprise_records (
    credit_code     TEXT   NOT NULL REFERENCES enterprises (credit_code),
    programme_id    TEXT   NOT NULL,
    kind            TEXT   NOT NULL,
    record_date     TEXT   NOT NULL,
    note            TEXT   NOT NULL,
    created_micros  INTEGER NOT NULL
);
CREATE INDEX enterprise_records_by_code ON enterprise_records (credit_code, programme_id);
