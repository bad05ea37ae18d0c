-- Issue 25, item 4 (Art. 16(5)3): the office may find a stopped visit's finding unfounded, and
-- the visit resumes; the stop is kept, resolved, with the office's reason. A later stop of the
-- same visit takes the row again (the earlier one stays in the audit trail).
ALTER TABLE site_stops ADD COLUMN resolved_micros BIGINT;
ALTER TABLE site_stops ADD COLUMN resolution TEXT NOT NULL DEFAULT '';
