-- Issue 25, items 1 and 2 (Art. 5, 16(9), 16(10); R-22, R-23): the committee acts as a body.
-- Each member unit present casts one ballot with its representative (the primary key keeps it
-- to one, also under concurrent calls), voting on every candidate on the notice; the meeting's
-- decisions follow from the ballots. The government decides on each adopted candidate.
CREATE TABLE committee_ballots (
    programme_id    TEXT   NOT NULL,
    year            BIGINT NOT NULL,
    unit            TEXT   NOT NULL,
    ordinal         BIGINT NOT NULL,
    representative  TEXT   NOT NULL,
    caller          TEXT   NOT NULL,
    cast_micros     BIGINT NOT NULL,
    PRIMARY KEY (programme_id, year, unit)
);

CREATE TABLE committee_votes (
    programme_id    TEXT   NOT NULL,
    year            BIGINT NOT NULL,
    unit            TEXT   NOT NULL,
    application_id  TEXT   NOT NULL REFERENCES applications (id),
    vote            TEXT   NOT NULL CHECK (vote IN ('ADOPT', 'NOT_ADOPT', 'ABSTAIN', 'RECUSED')),
    note            TEXT   NOT NULL,
    PRIMARY KEY (programme_id, year, unit, application_id),
    FOREIGN KEY (programme_id, year, unit) REFERENCES committee_ballots (programme_id, year, unit)
);

-- The tally behind each decision, as JSON {adopt, not_adopt, abstain, recused}.
ALTER TABLE committee_decisions ADD COLUMN tally TEXT NOT NULL DEFAULT '{}';

CREATE TABLE government_decisions (
    application_id  TEXT   PRIMARY KEY REFERENCES applications (id),
    approved        BIGINT NOT NULL,
    note            TEXT   NOT NULL,
    document        TEXT   NOT NULL,
    decision_date   TEXT   NOT NULL,
    created_micros  BIGINT NOT NULL
);
