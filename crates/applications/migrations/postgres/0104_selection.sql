-- After scoring (R-17 to R-23, R-52): each finalist's candidacy with the numbers behind it, the
-- consulted departments' opinions and the office's decisions on objections (R-20), the public
-- notice (R-21), complaints (R-52), committee meetings and decisions (R-22) and awards (R-23).
CREATE TABLE candidacies (
    application_id  TEXT   PRIMARY KEY REFERENCES applications (id),
    candidate       BIGINT NOT NULL,
    composite       TEXT   NOT NULL,
    -- JSON object of the released scores: materials, site, review, defence (R-21).
    scores          TEXT   NOT NULL,
    rank            BIGINT NOT NULL,
    created_micros  BIGINT NOT NULL
);

CREATE TABLE consultations (
    application_id   TEXT   NOT NULL REFERENCES applications (id),
    department       TEXT   NOT NULL,
    deadline         TEXT   NOT NULL,
    -- Empty until answered; SUPPORT or OBJECT.
    opinion          TEXT   NOT NULL,
    text             TEXT   NOT NULL,
    -- 1 when the answer came after the deadline (R-20).
    late             BIGINT NOT NULL DEFAULT 0,
    answered_micros  BIGINT,
    -- Empty, UPHELD or DISMISSED: the office's decision on an objection.
    decision         TEXT   NOT NULL,
    decision_reason  TEXT   NOT NULL,
    PRIMARY KEY (application_id, department)
);

CREATE TABLE public_notices (
    programme_id  TEXT   NOT NULL,
    year          BIGINT NOT NULL,
    start_micros  BIGINT NOT NULL,
    end_micros    BIGINT NOT NULL,
    PRIMARY KEY (programme_id, year),
    FOREIGN KEY (programme_id, year) REFERENCES cycles (programme_id, year)
);

CREATE TABLE complaints (
    id               TEXT   PRIMARY KEY,
    application_id   TEXT   NOT NULL REFERENCES applications (id),
    complainant      TEXT   NOT NULL,
    text             TEXT   NOT NULL,
    -- JSON array of strings.
    evidence         TEXT   NOT NULL,
    -- PENDING, SUBSTANTIATED or UNFOUNDED.
    outcome          TEXT   NOT NULL,
    investigation    TEXT   NOT NULL,
    created_micros   BIGINT NOT NULL,
    resolved_micros  BIGINT
);
CREATE INDEX complaints_by_application ON complaints (application_id, id);

CREATE TABLE committee_meetings (
    id              TEXT   PRIMARY KEY,
    programme_id    TEXT   NOT NULL,
    year            BIGINT NOT NULL,
    -- JSON array of member units present.
    units_present   TEXT   NOT NULL,
    -- JSON array of {unit, application, reason}: units that stood aside on a candidate.
    recusals        TEXT   NOT NULL,
    created_micros  BIGINT NOT NULL
);

CREATE TABLE committee_decisions (
    application_id  TEXT   PRIMARY KEY REFERENCES applications (id),
    meeting_id      TEXT   NOT NULL REFERENCES committee_meetings (id),
    adopted         BIGINT NOT NULL,
    note            TEXT   NOT NULL
);

CREATE TABLE awards (
    application_id      TEXT   PRIMARY KEY REFERENCES applications (id),
    certificate_number  TEXT   NOT NULL UNIQUE,
    award_date          TEXT   NOT NULL,
    document            TEXT   NOT NULL
);

ALTER TABLE cycles ADD COLUMN approval_document TEXT NOT NULL DEFAULT '';
ALTER TABLE cycles ADD COLUMN approval_date TEXT NOT NULL DEFAULT '';

-- R-14: a defence panel's invited, non-scoring advisors (JSON array of reviewer ids).
ALTER TABLE review_groups ADD COLUMN advisors TEXT NOT NULL DEFAULT '[]';
