-- Issue 25, item 7 (Art. 16(4), R-14): an assignment carries its group's days (ISO dates,
-- empty when unknown); a defence sheet is scored on the panel's days only.
ALTER TABLE assignments ADD COLUMN window_start TEXT NOT NULL DEFAULT '';
ALTER TABLE assignments ADD COLUMN window_end TEXT NOT NULL DEFAULT '';
