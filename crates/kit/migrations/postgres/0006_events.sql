-- Events between services (issue 24). A service's outbox relay moves each committed event to
-- its feed, numbering it: the feed's sequence is gap-free and in commit order (the relay takes
-- the table's lock to number), so a follower that has read up to N has seen every event <= N.
CREATE TABLE event_feed (
    seq             BIGINT PRIMARY KEY,
    event_id        TEXT   NOT NULL UNIQUE,
    topic           TEXT   NOT NULL,
    payload         BYTEA  NOT NULL,
    created_micros  BIGINT NOT NULL,
    published_micros BIGINT NOT NULL
);

-- What this service has applied of another's feed: one row per event, written in the
-- transaction of its consequence, so a redelivered event changes nothing the second time.
CREATE TABLE events_applied (
    source          TEXT   NOT NULL,
    event_id        TEXT   NOT NULL,
    seq             BIGINT NOT NULL,
    applied_micros  BIGINT NOT NULL,
    PRIMARY KEY (source, event_id)
);

-- How far this service has read each source's feed.
CREATE TABLE event_cursors (
    source          TEXT   PRIMARY KEY,
    seq             BIGINT NOT NULL,
    -- The source's last sequence when last read.
    published_seq   BIGINT NOT NULL,
    -- Why the next event could not be applied, until it is.
    last_error      TEXT,
    updated_micros  BIGINT NOT NULL
);
