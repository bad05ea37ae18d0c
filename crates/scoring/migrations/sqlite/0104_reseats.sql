-- Issue 24. Who left an assignment's scoring seats, when and why (R-41, R-45): their sheets
-- stay on the record (an unsubmitted one VOID), and the consensus no longer waits for them.
CREATE TABLE assignment_leavers (
    assignment_id  TEXT   NOT NULL REFERENCES assignments (id),
    reviewer       TEXT   NOT NULL,
    role           TEXT   NOT NULL,
    reason         TEXT   NOT NULL,
    left_micros    INTEGER NOT NULL,
    PRIMARY KEY (assignment_id, reviewer, left_micros)
);

-- Applications disqualified in the applications service, out of their cycle's results
-- (R-15, R-21, Art. 12(2)); one per application.
CREATE TABLE exclusions (
    cycle           TEXT   NOT NULL,
    application     TEXT   NOT NULL,
    rule            TEXT   NOT NULL,
    reason          TEXT   NOT NULL,
    created_micros  INTEGER NOT NULL,
    PRIMARY KEY (cycle, application)
);
