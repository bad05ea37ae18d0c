-- Issue 22, item 4: the audit record still commits in the transaction of its change, but into
-- `audit_pending`, with no lock shared by every writer; a sequencer then appends the committed
-- records to the hash chain in batches, each `audit_log` row naming the pending row it came
-- from. A pending row leaves only into the trail: it cannot be changed, and it is deleted only
-- once a trail row names it (so a crash between commit and sequencing loses nothing).
CREATE TABLE audit_pending (
    id          BIGSERIAL PRIMARY KEY,
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

CREATE FUNCTION audit_pending_into_trail_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND EXISTS (SELECT 1 FROM audit_log WHERE pending_id = OLD.id) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit_pending rows leave only into the audit trail';
END;
$$;
CREATE TRIGGER audit_pending_guard BEFORE UPDATE OR DELETE ON audit_pending
FOR EACH ROW EXECUTE FUNCTION audit_pending_into_trail_only();
CREATE TRIGGER audit_pending_no_truncate BEFORE TRUNCATE ON audit_pending
FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
