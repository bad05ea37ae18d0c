-- Issue 22, item 1 (R-53): the entropy of a draw comes from several parties. Each party's
-- commitment and, later, its revealed secret (JSON array of {party, subject, commitment,
-- committed_micros, secret, revealed_micros}); the public value fixed between them; and the
-- deadline after which a draw still missing a part fails on the record.
ALTER TABLE draws ADD COLUMN entropy_parts TEXT NOT NULL DEFAULT '[]';
ALTER TABLE draws ADD COLUMN public_value TEXT;
ALTER TABLE draws ADD COLUMN reveal_deadline_micros BIGINT NOT NULL DEFAULT 0;
CREATE INDEX draws_awaiting_parts ON draws (reveal_deadline_micros) WHERE state = 'PREPARED' AND reveal_deadline_micros > 0;
