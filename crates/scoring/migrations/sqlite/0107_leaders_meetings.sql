-- Issue 25, item 4 (Art. 16(5)4): the group leaders' meeting after the site visits, once per
-- cycle, before the site stage is released. Its changes are consensus sheet versions.
CREATE TABLE leaders_meetings (
    id              TEXT   PRIMARY KEY,
    cycle           TEXT   NOT NULL UNIQUE,
    -- JSON array of reviewer ids: every site group's leader.
    attendees       TEXT   NOT NULL,
    minutes         TEXT   NOT NULL,
    -- JSON array of {assignment, sheet, version, total_before, total_after, reason}.
    changes         TEXT   NOT NULL,
    created_micros  BIGINT NOT NULL
);
