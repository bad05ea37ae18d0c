-- The reviews (R-12 to R-17): groups drawn through the reviewers service for some applications
-- of a cycle and one review stage, the applications each group reviews with their scoring
-- assignment, the drawn members (R-43: a reviewer reads an application only while its group's
-- stage runs), and site-visit stops awaiting the office's confirmation (R-15).
CREATE TABLE review_groups (
    id                  TEXT   PRIMARY KEY,
    programme_id        TEXT   NOT NULL,
    year                BIGINT NOT NULL,
    stage               TEXT   NOT NULL,
    state               TEXT   NOT NULL,
    window_start        TEXT   NOT NULL,
    window_end          TEXT   NOT NULL,
    entropy_commitment  TEXT   NOT NULL,
    entropy_source      TEXT   NOT NULL,
    -- JSON array of speciality codes.
    specialities        TEXT   NOT NULL,
    size                BIGINT NOT NULL,
    draw                TEXT   NOT NULL,
    panel               TEXT   NOT NULL,
    created_micros      BIGINT NOT NULL,
    updated_micros      BIGINT NOT NULL,
    FOREIGN KEY (programme_id, year) REFERENCES cycles (programme_id, year)
);
CREATE INDEX review_groups_by_cycle ON review_groups (programme_id, year, id);

-- One group per application and stage.
CREATE TABLE review_group_applications (
    application_id  TEXT   NOT NULL REFERENCES applications (id),
    stage           TEXT   NOT NULL,
    group_id        TEXT   NOT NULL REFERENCES review_groups (id),
    position        BIGINT NOT NULL,
    assignment      TEXT   NOT NULL,
    PRIMARY KEY (application_id, stage)
);
CREATE INDEX review_group_applications_by_group ON review_group_applications (group_id, position);

CREATE TABLE review_members (
    group_id   TEXT   NOT NULL REFERENCES review_groups (id),
    reviewer   TEXT   NOT NULL,
    leader     BIGINT NOT NULL,
    position   BIGINT NOT NULL,
    PRIMARY KEY (group_id, reviewer)
);
CREATE INDEX review_members_by_reviewer ON review_members (reviewer);

CREATE TABLE site_stops (
    application_id   TEXT   PRIMARY KEY REFERENCES applications (id),
    finding          TEXT   NOT NULL,
    reported_by      TEXT   NOT NULL,
    reported_micros  BIGINT NOT NULL
);
