-- Issue 22, item 4: the audit record still commits in the transaction of its change, but into
-- `audit_pending`, with no lock shared by every writer; a sequencer then appends the committed
-- records to the hash chain in batches, each `audit_log` row naming the pending row it came
-- from. A pending row leaves only into the trail: it cannot be changed, and it is deleted only
-- once a trail row names it (so a crash between commit and sequencing loses nothing).
CREATE TABLE audit_pending (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at_micros   BIGINT NOT NULL,
    actor       TEXT   NOT NULL,
    role        TEXT   NOT NULL,
    action      TEXT   NOT NULL,
    resource    TEXT   NOT NULL,
    reason      TEXT   NOT NULL,
    detail      TEXT   NOT NULL
);
ALTER TABLE audit_log ADD COLUMN pending_id BIGINT;
CREATE UNIQUE INDEX audit_log_pending ON audit_log (pending_id) WHERE pending_id IS NOT NULL;

CREATE TRIGGER audit_pending_no_update BEFORE UPDATE ON audit_pending
BEGIN SELECT RAISE(ABORT, 'audit_pending rows leave only into the audit trail'); END;
CREATE TRIGGER audit_pending_into_trail_only BEFORE DELETE ON audit_pending
WHEN NOT EXISTS (SELECT 1 FROM audit_log WHERE pending_id = OLD.id)
BEGIN SELECT RAISE(ABORT, 'audit_pending rows leave only into the audit trail'); END;
