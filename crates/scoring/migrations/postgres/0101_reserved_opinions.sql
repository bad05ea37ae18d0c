-- Reserved opinions on a consensus (Rev. Art. 6(4)): one per member and assignment; they
-- change no score.
CREATE TABLE reserved_opinions (
    assignment_id    TEXT NOT NULL REFERENCES assignments (id),
    reviewer         TEXT NOT NULL,
    text             TEXT NOT NULL,
    item_codes       TEXT NOT NULL,
    consensus_total  TEXT NOT NULL,
    created_micros   BIGINT NOT NULL,
    PRIMARY KEY (assignment_id, reviewer)
);
