-- The first ledger schema: orders, the events outbox, the audit trail of
-- Toss status changes, the sinks' cursors, and per-state/per-type counters
-- kept by triggers so that stats stay O(1) on a large ledger.
-- Times are unix milliseconds (UTC); NULL means "none".

CREATE TABLE orders (
	order_id	TEXT NOT NULL PRIMARY KEY,
	user_key	TEXT NOT NULL,
	sku		TEXT,
	ref		TEXT,			-- NULL: the caller gave none
	state		TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending',
			    'granted', 'refunded', 'failed', 'not_found',
			    'mismatch', 'expired', 'held')),
	toss_status	TEXT,			-- verbatim, known or not
	reason		TEXT,
	determined_at	TEXT,			-- RFC 3339 with offset
	polls		INTEGER NOT NULL DEFAULT 0,
	errors		INTEGER NOT NULL DEFAULT 0,
	added_at	INTEGER NOT NULL,
	updated_at	INTEGER NOT NULL,
	granted_at	INTEGER,
	next_poll_at	INTEGER,		-- NULL: nothing left to do
	-- New orders (and held ones) are served before refund re-checks.
	prio		INTEGER GENERATED ALWAYS AS
			    (CASE WHEN state IN ('pending', 'held') THEN 0 ELSE 1 END)
			    VIRTUAL
) STRICT;

-- Due lookups: one range per prio, never a scan of the whole table.
CREATE INDEX orders_due ON orders (prio, next_poll_at)
    WHERE next_poll_at IS NOT NULL;
-- Listing by state, the oldest pending order, recheck by state.
CREATE INDEX orders_state ON orders (state, added_at, order_id);
-- Listing everything in the order it arrived.
CREATE INDEX orders_added ON orders (added_at, order_id);

CREATE TABLE events (
	id		INTEGER PRIMARY KEY AUTOINCREMENT,
	key		TEXT NOT NULL UNIQUE,	-- <orderId>:<type>, one per order and type
	type		TEXT NOT NULL CHECK (type IN ('grant', 'refund', 'failed',
			    'not_found', 'mismatch', 'expired', 'held', 'anomaly')),
	order_id	TEXT NOT NULL REFERENCES orders (order_id),
	payload		TEXT NOT NULL,		-- the exact JSON every sink delivers
	created_at	INTEGER NOT NULL
) STRICT;

CREATE TABLE transitions (
	order_id	TEXT NOT NULL REFERENCES orders (order_id),
	at		INTEGER NOT NULL,
	from_status	TEXT,			-- NULL: first status seen
	to_status	TEXT NOT NULL
) STRICT;

CREATE INDEX transitions_order ON transitions (order_id, at);

CREATE TABLE sinks (
	name		TEXT NOT NULL PRIMARY KEY,
	delivered_id	INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE TABLE state_counts (
	state		TEXT NOT NULL PRIMARY KEY,
	n		INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

INSERT INTO state_counts (state, n) VALUES ('pending', 0), ('granted', 0),
    ('refunded', 0), ('failed', 0), ('not_found', 0), ('mismatch', 0),
    ('expired', 0), ('held', 0);

CREATE TABLE event_counts (
	type		TEXT NOT NULL PRIMARY KEY,
	n		INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

INSERT INTO event_counts (type, n) VALUES ('grant', 0), ('refund', 0),
    ('failed', 0), ('not_found', 0), ('mismatch', 0), ('expired', 0),
    ('held', 0), ('anomaly', 0);

CREATE TRIGGER orders_count_insert AFTER INSERT ON orders
BEGIN
	UPDATE state_counts SET n = n + 1 WHERE state = NEW.state;
END;

CREATE TRIGGER orders_count_delete AFTER DELETE ON orders
BEGIN
	UPDATE state_counts SET n = n - 1 WHERE state = OLD.state;
END;

CREATE TRIGGER orders_count_update AFTER UPDATE OF state ON orders
    WHEN OLD.state IS NOT NEW.state
BEGIN
	UPDATE state_counts SET n = n - 1 WHERE state = OLD.state;
	UPDATE state_counts SET n = n + 1 WHERE state = NEW.state;
END;

CREATE TRIGGER events_count_insert AFTER INSERT ON events
BEGIN
	UPDATE event_counts SET n = n + 1 WHERE type = NEW.type;
END;

CREATE TRIGGER events_count_delete AFTER DELETE ON events
BEGIN
	UPDATE event_counts SET n = n - 1 WHERE type = OLD.type;
END;
