-- Issue 22, item 3: the trail as a Merkle tree log in the manner of RFC 9162. Leaf i is the
-- trail row with seq i+1 (its leaf hash commits to the row's seq and chain hash only, so no
-- personal data is in a leaf); `audit_tree` keeps every perfect subtree (level, index), so a
-- root or a proof reads O(log n) rows. Checkpoints are signed with a key outside the database.
-- Both tables only grow, like the trail itself.
CREATE TABLE audit_tree (
    level  INTEGER NOT NULL,
    idx    BIGINT  NOT NULL,
    hash   TEXT    NOT NULL,
    PRIMARY KEY (level, idx)
);
CREATE TABLE audit_checkpoints (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    size        BIGINT NOT NULL,
    root        TEXT   NOT NULL,
    at_micros   BIGINT NOT NULL,
    reason      TEXT   NOT NULL,
    note        TEXT   NOT NULL
);
CREATE INDEX audit_checkpoints_size ON audit_checkpoints (size);

CREATE TRIGGER audit_tree_no_update BEFORE UPDATE ON audit_tree
BEGIN SELECT RAISE(ABORT, 'audit_tree is append-only'); END;
CREATE TRIGGER audit_tree_no_delete BEFORE DELETE ON audit_tree
BEGIN SELECT RAISE(ABORT, 'audit_tree is append-only'); END;
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only'); END;
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only'); END;
