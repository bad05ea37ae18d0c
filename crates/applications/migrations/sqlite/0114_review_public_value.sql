-- Issue 22, item 1 (R-53): a review group's draw may fix a public value (dice thrown in public,
-- a beacon round) between its parties' commitments and reveals; 1 when it does.
ALTER TABLE review_groups ADD COLUMN fixes_public_value BIGINT NOT NULL DEFAULT 0;
