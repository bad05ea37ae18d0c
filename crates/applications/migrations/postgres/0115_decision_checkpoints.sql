-- Issue 22, item 3: a published decision (the public notice, R-21; the award) names a signed
-- checkpoint of this service's audit log that includes it, and the latest checkpoints of the
-- other services at that moment, so the four are printed together. Taken right after the
-- decision commits; kept as the signed texts (docs/audit.md §3).
CREATE TABLE decision_checkpoints (
    decision    TEXT   PRIMARY KEY,
    own         TEXT   NOT NULL,
    others      TEXT   NOT NULL,
    at_micros   BIGINT NOT NULL
);
