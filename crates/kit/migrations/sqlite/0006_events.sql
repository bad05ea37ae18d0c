-- Events between services (issue 24). A service's outbox relay moves each committed event to
-- its feed, numbering it: the feed's sequence is gap-free and in commit order (the relay takes
-- the table's lock to number), so a follower that has read up to N has seen every event <= N.
CREATE TABLE event_feed (
    seq             INTEGER PRIMARY KEY,
    event_id        TEXT   NOT NULL UNIQUE,
    topic           TEXT   NOT NULL,
    payload         BLOB   NOT NULL,
    created_micros  INTEGER NOT NULL,
    published_micros INTEGER NOT NULL
);

-- What this service has applied of another's feed: one row per event, written in the
-- transaction of its consequence, so a redelivered event changes nothing the second time.
CREATE TABLE events_applied (
    source          TEXT   NOT NULL,
    event_id        TEXT   NOT NULL,
    seq             INTEGER NOT NULL,
    applied_micros  INTEGER NOT NULL,
    PRIMARY KEY (source, event_id)
);

-- How far this service has read each source's feed.
CREATE TABLE event_cursors (
    source          TEXT   PRIMARY KEY,
    seq             INTEGER NOT NULL,
    -- The source's last sequence when last read.
    published_seq   INTEGER NOT NULL,
    -- Why the next event could not be applied, until it is.
    last_error      TEXT,
    updated_micros  INTEGER NOT NULL
);
