-- Scoring: versioned rubrics, assignments, sheets (every version kept), released stages.
CREATE TABLE rubrics (
    id              TEXT NOT NULL,
    version         INTEGER NOT NULL,
    rubric          TEXT NOT NULL,
    created_micros  INTEGER NOT NULL,
    PRIMARY KEY (id, version)
);

CREATE TABLE assignments (
    id                 TEXT PRIMARY KEY,
    cycle              TEXT NOT NULL,
    application        TEXT NOT NULL,
    stage              TEXT NOT NULL,
    rubric_id          TEXT NOT NULL,
    rubric_version     INTEGER NOT NULL,
    enterprise_code    TEXT NOT NULL,
    recommending_unit  TEXT NOT NULL,
    created_micros     INTEGER NOT NULL,
    UNIQUE (cycle, application, stage)
);
CREATE INDEX assignments_by_cycle ON assignments (cycle, application);

CREATE TABLE assignment_people (
    assignment_id  TEXT NOT NULL REFERENCES assignments (id),
    reviewer       TEXT NOT NULL,
    role           TEXT NOT NULL,
    PRIMARY KEY (assignment_id, reviewer)
);

-- One row per version of a sheet; a submitted version never changes (R-51): a correction is
-- a new version that supersedes it, with its reason.
CREATE TABLE sheets (
    id                 TEXT NOT NULL,
    version            INTEGER NOT NULL,
    assignment_id      TEXT NOT NULL REFERENCES assignments (id),
    reviewer           TEXT NOT NULL,
    kind               TEXT NOT NULL,
    state              TEXT NOT NULL,
    items              TEXT NOT NULL,
    defence_score      TEXT NOT NULL,
    total              TEXT NOT NULL,
    seal_hash          TEXT NOT NULL,
    correction_reason  TEXT NOT NULL,
    submitted_micros   INTEGER,
    PRIMARY KEY (id, version)
);
CREATE INDEX sheets_by_assignment ON sheets (assignment_id);

CREATE TABLE releases (
    cycle            TEXT NOT NULL,
    stage            TEXT NOT NULL,
    released_micros  INTEGER NOT NULL,
    PRIMARY KEY (cycle, stage)
);
