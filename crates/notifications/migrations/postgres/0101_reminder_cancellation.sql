-- Issue 24: a reminder whose duty ended (an award revoked, R-32) is cancelled: its deliveries
-- not yet sent are 'cancelled' (never claimed), and the reminder says when and why.
ALTER TABLE reminders ADD COLUMN cancelled_micros BIGINT;
ALTER TABLE reminders ADD COLUMN cancel_reason TEXT NOT NULL DEFAULT '';
