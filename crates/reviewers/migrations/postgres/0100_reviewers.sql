-- The reviewer pool: programmes (tenants) and their versioned draw policies, the shared
-- registry, relations and flags, draws, panels and bookings.
CREATE TABLE programmes (
    id              TEXT PRIMARY KEY,
    display_name    TEXT NOT NULL,
    policy_version  BIGINT NOT NULL,
    created_micros  BIGINT NOT NULL
);

CREATE TABLE draw_policies (
    programme_id    TEXT NOT NULL REFERENCES programmes (id),
    version         BIGINT NOT NULL,
    policy          TEXT NOT NULL,
    created_micros  BIGINT NOT NULL,
    PRIMARY KEY (programme_id, version)
);

-- Identified by certificate number (R-42). Personal data never leaves unmasked except to
-- callers entitled to it.
CREATE TABLE reviewers (
    id                TEXT PRIMARY KEY,
    display_name      TEXT NOT NULL,
    mobile            TEXT NOT NULL,
    resident_id       TEXT NOT NULL,
    cert_valid_from   TEXT NOT NULL,
    cert_valid_until  TEXT NOT NULL,
    -- Space-separated and space-framed (" C13 C1311 "), so LIKE '% C13%' finds a speciality.
    specialities      TEXT NOT NULL,
    employer_code     TEXT NOT NULL,
    leader_qualified  BIGINT NOT NULL,
    status            TEXT NOT NULL,
    updated_micros    BIGINT NOT NULL
);

CREATE TABLE relations (
    id               TEXT PRIMARY KEY,
    reviewer_id      TEXT NOT NULL REFERENCES reviewers (id),
    enterprise_code  TEXT NOT NULL,
    kind             TEXT NOT NULL,
    start_date       TEXT NOT NULL,
    end_date         TEXT,
    note             TEXT NOT NULL,
    created_micros   BIGINT NOT NULL
);
CREATE INDEX relations_by_enterprise ON relations (enterprise_code);
CREATE INDEX relations_by_reviewer ON relations (reviewer_id);

CREATE TABLE flags (
    id               TEXT PRIMARY KEY,
    reviewer_id      TEXT NOT NULL REFERENCES reviewers (id),
    kind             TEXT NOT NULL,
    start_date       TEXT NOT NULL,
    end_date         TEXT,
    note             TEXT NOT NULL,
    resolved_micros  BIGINT,
    created_micros   BIGINT NOT NULL
);
CREATE INDEX flags_by_reviewer ON flags (reviewer_id);

-- Every draw and every attempt, append-only in effect: a draw moves PREPARED -> EXECUTED or
-- FAILED once, and a redraw is a new row naming the old one.
CREATE TABLE draws (
    id              TEXT PRIMARY KEY,
    programme_id    TEXT NOT NULL REFERENCES programmes (id),
    state           TEXT NOT NULL,
    prepared        TEXT NOT NULL,
    inputs_hash     TEXT NOT NULL,
    entropy         TEXT,
    outcome         TEXT,
    failure         TEXT,
    panel_id        TEXT,
    created_micros  BIGINT NOT NULL,
    executed_micros BIGINT
);
CREATE INDEX draws_by_programme ON draws (programme_id, id);

CREATE TABLE panels (
    id               TEXT PRIMARY KEY,
    programme_id     TEXT NOT NULL REFERENCES programmes (id),
    draw_id          TEXT NOT NULL REFERENCES draws (id),
    purpose          TEXT NOT NULL,
    enterprise_codes TEXT NOT NULL,
    window_start     TEXT NOT NULL,
    window_end       TEXT NOT NULL,
    released         BIGINT NOT NULL,
    respond_by_micros BIGINT NOT NULL
);
CREATE INDEX panels_by_programme ON panels (programme_id, id);

-- Members in draw order, then backups in their fixed order.
CREATE TABLE panel_seats (
    panel_id     TEXT NOT NULL REFERENCES panels (id),
    position     BIGINT NOT NULL,
    reviewer_id  TEXT NOT NULL,
    seat         TEXT NOT NULL,
    state        TEXT NOT NULL,
    leader       BIGINT NOT NULL,
    reason       TEXT NOT NULL,
    replaced_by  TEXT NOT NULL,
    PRIMARY KEY (panel_id, reviewer_id)
);

-- One row per reviewer per working day: the primary key is what makes double booking
-- impossible, whichever programme draws and however many draw at once.
CREATE TABLE bookings (
    reviewer_id  TEXT NOT NULL,
    day          TEXT NOT NULL,
    panel_id     TEXT NOT NULL,
    PRIMARY KEY (reviewer_id, day)
);

-- Reviews taken part in: the yearly cap and cooldown per programme, and the start of each
-- 3-year cooling-off period against the reviewed enterprise (R-44).
CREATE TABLE assignments (
    reviewer_id     TEXT NOT NULL,
    programme_id    TEXT NOT NULL,
    panel_id        TEXT NOT NULL,
    enterprise_code TEXT NOT NULL,
    window_start    TEXT NOT NULL,
    window_end      TEXT NOT NULL,
    PRIMARY KEY (reviewer_id, panel_id, enterprise_code)
);
CREATE INDEX assignments_by_enterprise ON assignments (enterprise_code);
