-- Issue 26, item 4: which reviewers each registry version changed (their record, a relation, a
-- flag), so a draw's cached registry facts are brought up to date by re-reading those reviewers
-- alone instead of the whole registry.
CREATE TABLE registry_changes (
    version      BIGINT NOT NULL,
    reviewer_id  TEXT   NOT NULL
);
CREATE INDEX registry_changes_by_version ON registry_changes (version);
