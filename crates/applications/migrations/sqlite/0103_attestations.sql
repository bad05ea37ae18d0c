-- The conditions of Art. 11 and Art. 12(1) a recommending unit attests with its opinion
-- (R-03, R-04), as a JSON array of condition names.
ALTER TABLE recommendations ADD COLUMN attested TEXT NOT NULL DEFAULT '[]';
