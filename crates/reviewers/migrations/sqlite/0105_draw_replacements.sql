-- Issue 22, item 5 (R-45): the replacements after a decline, a missed deadline or a late
-- conflict become part of the draw's replayable record, in the order they happened:
-- JSON array of {leaving, reason, joining, leader}.
ALTER TABLE draws ADD COLUMN replacements TEXT NOT NULL DEFAULT '[]';
