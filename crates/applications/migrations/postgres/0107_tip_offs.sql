-- Issue 25, item 3 (Art. 6(5), R-52): a complaint outside the public notice is a tip-off, not
-- refused. Each complaint has a case number (unique) and a date it is answered by.
ALTER TABLE complaints ADD COLUMN kind TEXT NOT NULL DEFAULT 'OBJECTION';
ALTER TABLE complaints ADD COLUMN case_number TEXT NOT NULL DEFAULT '';
ALTER TABLE complaints ADD COLUMN answer_by_micros BIGINT;
CREATE UNIQUE INDEX complaints_by_case ON complaints (case_number) WHERE case_number <> '';
