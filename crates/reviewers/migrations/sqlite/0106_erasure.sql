-- Issue 23, item 3 (PIPL Art. 47; R-54): when a reviewer's personal data was erased at their
-- request; an import keeps it erased.
ALTER TABLE reviewers ADD COLUMN erased_micros INTEGER;
