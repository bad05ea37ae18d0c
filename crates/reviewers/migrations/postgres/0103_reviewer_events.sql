-- A reviewer's record (Art. 6(3), Rev. Art. 5-6): training, certificates shown, assessments,
-- conduct violations; filed by year.
CREATE TABLE reviewer_events (
    id              TEXT PRIMARY KEY,
    reviewer_id     TEXT NOT NULL REFERENCES reviewers (id),
    year            INTEGER NOT NULL,
    event_date      TEXT NOT NULL,
    kind            TEXT NOT NULL,
    body            TEXT NOT NULL,
    recorded_by     TEXT NOT NULL,
    suspension      TEXT NOT NULL,
    created_micros  BIGINT NOT NULL
);
CREATE INDEX reviewer_events_by_year ON reviewer_events (reviewer_id, year);
