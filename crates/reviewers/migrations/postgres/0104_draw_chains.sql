-- One live draw per chain (R-45): a draw and every redraw naming it, directly or not, form a
-- chain named by its first draw; executing a redraw supersedes the chain's other draws, and the
-- database keeps at most one EXECUTED draw per chain whatever runs at once.
ALTER TABLE draws ADD COLUMN chain TEXT NOT NULL DEFAULT '';

WITH RECURSIVE links(id, root) AS (
    SELECT id, id FROM draws
    WHERE COALESCE(prepared::json->>'replaces_draw', '') = ''
    UNION ALL
    SELECT d.id, links.root FROM draws d
    JOIN links ON regexp_replace(d.prepared::json->>'replaces_draw', '^.*/', '') = links.id
)
UPDATE draws SET chain = links.root FROM links WHERE links.id = draws.id;
UPDATE draws SET chain = id WHERE chain = '';

-- Written before: of two executed draws in one chain, the later stands; the earlier is
-- superseded (its bookings stay as they were written; nothing is deleted here).
UPDATE draws SET state = 'SUPERSEDED'
WHERE state = 'EXECUTED' AND EXISTS (
    SELECT 1 FROM draws later
    WHERE later.chain = draws.chain AND later.state = 'EXECUTED'
      AND (later.executed_micros > draws.executed_micros
           OR (later.executed_micros = draws.executed_micros AND later.id > draws.id))
);

CREATE UNIQUE INDEX draws_one_live_per_chain ON draws (chain) WHERE state = 'EXECUTED';
