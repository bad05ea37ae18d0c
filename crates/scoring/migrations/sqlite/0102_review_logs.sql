-- The hearing log (Art. 16(4)) and the site-visit log (Art. 16(5)) of an assignment, every
-- saved version kept.
CREATE TABLE review_logs (
    assignment_id  TEXT NOT NULL REFERENCES assignments (id),
    version        INTEGER NOT NULL,
    body           TEXT NOT NULL,
    recorded_by    TEXT NOT NULL,
    saved_micros   INTEGER NOT NULL,
    PRIMARY KEY (assignment_id, version)
);
