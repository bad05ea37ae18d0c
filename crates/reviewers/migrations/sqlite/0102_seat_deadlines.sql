-- Each seat has its own answer deadline: a backup called after a member missed theirs gets
-- the full time from when it is called.
ALTER TABLE panel_seats ADD COLUMN respond_by_micros INTEGER NOT NULL DEFAULT 0;
UPDATE panel_seats SET respond_by_micros =
    (SELECT p.respond_by_micros FROM panels p WHERE p.id = panel_seats.panel_id)
WHERE seat = 'MEMBER';
