-- Issue 23, item 4 (R-54): the evidence files of a purged draft, queued in the transaction
-- that deletes its rows; each is removed from the blob store once no evidence row names it,
-- then its entry here. A crash in between leaves the entry, and the next sweep goes on.
CREATE TABLE blob_deletions (
    sha256  TEXT  PRIMARY KEY
);
