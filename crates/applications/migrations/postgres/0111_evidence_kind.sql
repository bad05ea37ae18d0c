-- Issue 25, item 5 (Art. 13(4), 14): an evidence file is supporting material or a certificate;
-- a certificate names the county-level department that issued it.
ALTER TABLE evidence ADD COLUMN kind TEXT NOT NULL DEFAULT 'SUPPORTING';
ALTER TABLE evidence ADD COLUMN issued_by TEXT NOT NULL DEFAULT '';
