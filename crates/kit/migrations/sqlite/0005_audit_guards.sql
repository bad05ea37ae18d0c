-- The trail's head cannot go back or disappear (R-50): a head reset to the genesis made an
-- emptied trail verify as intact. (SQLite has no TRUNCATE; DELETE is refused already.)
CREATE TRIGGER audit_head_forward BEFORE UPDATE ON audit_head
WHEN NEW.seq < OLD.seq
BEGIN SELECT RAISE(ABORT, 'audit_head only moves forward'); END;
CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_head
BEGIN SELECT RAISE(ABORT, 'audit_head only moves forward'); END;
