-- Issue 24, R-51: the released versions of a cycle's ranking. A disqualification after the
-- ranking was released keeps the version as released and adds one with its reason.
CREATE TABLE result_versions (
    cycle           TEXT   NOT NULL,
    version         BIGINT NOT NULL,
    reason          TEXT   NOT NULL,
    -- The results as released (qaward.scoring.v1.CycleResults, encoded).
    results         BYTEA  NOT NULL,
    created_micros  BIGINT NOT NULL,
    PRIMARY KEY (cycle, version)
);
