-- Issue 25, item 3 (Art. 6(5), R-52): each complaint is a case with an owner in the office;
-- a complaint may be about a reviewer of the application's review; its filer (issuer and
-- subject) follows it.
ALTER TABLE complaints ADD COLUMN owner TEXT NOT NULL DEFAULT '';
ALTER TABLE complaints ADD COLUMN reviewer TEXT NOT NULL DEFAULT '';
ALTER TABLE complaints ADD COLUMN filed_by TEXT NOT NULL DEFAULT '';
