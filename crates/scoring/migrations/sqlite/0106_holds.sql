-- Issue 25, item 4 (Art. 16(5)3): a stopped site visit freezes its group's sheets until the
-- office decides; the reason while held, empty otherwise.
ALTER TABLE assignments ADD COLUMN hold_reason TEXT NOT NULL DEFAULT '';
