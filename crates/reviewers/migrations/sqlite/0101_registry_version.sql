-- The registry's version, bumped in the transaction of every change to reviewers, relations
-- or flags, so that a draw can reuse registry facts it read at the same version.
CREATE TABLE registry_version (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    version  INTEGER NOT NULL
);
INSERT INTO registry_version (id, version) VALUES (1, 0);
