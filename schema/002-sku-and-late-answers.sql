-- Toss decides what was bought, and the wall clock alone ends nothing.
-- orders.sku becomes Toss's sku as soon as an answer names one; the sku the
-- intake gave is kept apart in intake_sku, so that a difference is seen
-- (the order then goes to 'mismatch', never granted). sku_confirmed says
-- whether sku is one Toss named. late_answers counts the real answers an
-- order got since it passed a time limit (give_up_after while pending,
-- the end of the refund watch once granted): a limit ends nothing before
-- a few of them came, whatever the clock says.

ALTER TABLE orders ADD COLUMN intake_sku TEXT;	-- NULL: the intake gave none
ALTER TABLE orders ADD COLUMN sku_confirmed INTEGER NOT NULL DEFAULT 0
    CHECK (sku_confirmed IN (0, 1));
ALTER TABLE orders ADD COLUMN late_answers INTEGER NOT NULL DEFAULT 0;

-- Before this version an empty sku was filled from Toss's answer and a
-- given one was kept: what a row holds cannot be told apart. Taking it as
-- the intake's, unconfirmed, is the cautious reading: a later answer that
-- names another sku is then a mismatch (or, for a granted order, an
-- anomaly), never a silent change.
UPDATE orders SET intake_sku = sku WHERE sku IS NOT NULL;

-- Counters kept with the data they count, so /metrics survives restarts.
CREATE TABLE counters (
	name		TEXT NOT NULL PRIMARY KEY,
	n		INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- Orders whose sku Toss contradicted (counted once, with the event).
INSERT INTO counters (name, n) VALUES ('sku_mismatch', 0);
