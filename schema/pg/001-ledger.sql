-- The ledger on PostgreSQL: the tables and meaning of schema/001 to 003
-- (SQLite) in one migration. Times are unix milliseconds (UTC) that the
-- daemon passes, as on SQLite; NULL means "none". The daemon records the
-- version in ledger_meta after each migration; a schema with tables but
-- without ledger_meta is not a ledger and is never touched.

CREATE TABLE ledger_meta (
	one		boolean PRIMARY KEY DEFAULT true CHECK (one),
	app		text NOT NULL CHECK (app = 'reconciled'),
	version		integer NOT NULL
);

CREATE TABLE orders (
	order_id	text NOT NULL PRIMARY KEY,
	user_key	text NOT NULL,
	sku		text,			-- Toss's once it named one
	intake_sku	text,			-- NULL: the intake gave none
	sku_confirmed	smallint NOT NULL DEFAULT 0 CHECK (sku_confirmed IN (0, 1)),
	ref		text,			-- NULL: the caller gave none
	state		text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending',
			    'granted', 'refunded', 'failed', 'not_found',
			    'mismatch', 'expired', 'held')),
	toss_status	text,			-- verbatim, known or not
	reason		text,
	determined_at	text,			-- RFC 3339 with offset
	polls		bigint NOT NULL DEFAULT 0,
	errors		bigint NOT NULL DEFAULT 0,
	late_answers	bigint NOT NULL DEFAULT 0,
	added_at	bigint NOT NULL,
	updated_at	bigint NOT NULL,
	granted_at	bigint,
	next_poll_at	bigint,			-- NULL: nothing left to do
	-- New orders (and held ones) are served before refund re-checks.
	prio		smallint GENERATED ALWAYS AS
			    (CASE WHEN state IN ('pending', 'held') THEN 0 ELSE 1 END)
			    STORED
);

-- Due lookups: one range per prio, never a scan of the whole table.
CREATE INDEX orders_due ON orders (prio, next_poll_at)
    WHERE next_poll_at IS NOT NULL;
CREATE INDEX orders_state ON orders (state, added_at, order_id);
CREATE INDEX orders_added ON orders (added_at, order_id);

-- The outbox. An id is not taken from a sequence (those become visible out
-- of commit order, and a conflict would use one up): it comes from
-- event_counter, whose one row every transaction that writes events
-- updates just before it commits. The row lock orders those transactions,
-- so ids are gap-free and become visible in id order: a reader that keeps
-- "the last id I saw" never skips one.
CREATE TABLE events (
	id		bigint NOT NULL PRIMARY KEY,
	key		text NOT NULL UNIQUE,	-- <orderId>:<type>, one per order and type
	type		text NOT NULL CHECK (type IN ('grant', 'refund', 'failed',
			    'not_found', 'mismatch', 'expired', 'held', 'anomaly')),
	order_id	text NOT NULL REFERENCES orders (order_id),
	payload		text NOT NULL,		-- the exact JSON every sink delivers
	created_at	bigint NOT NULL
);

CREATE INDEX events_order ON events (order_id, id);
CREATE INDEX events_created ON events (created_at);

CREATE TABLE event_counter (
	one		boolean PRIMARY KEY DEFAULT true CHECK (one),
	last		bigint NOT NULL
);

INSERT INTO event_counter (last) VALUES (0);

CREATE TABLE transitions (
	seq		bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	order_id	text NOT NULL REFERENCES orders (order_id),
	at		bigint NOT NULL,
	from_status	text,			-- NULL: first status seen
	to_status	text NOT NULL
);

CREATE INDEX transitions_order ON transitions (order_id, at);

-- A sink's cursor, its state (ok, retrying, off after a 410 Gone), its
-- last error, and how many times `reconcilectl replay` moved it back.
CREATE TABLE sinks (
	name		text NOT NULL PRIMARY KEY,
	delivered_id	bigint NOT NULL DEFAULT 0,
	state		text NOT NULL DEFAULT 'ok'
			    CHECK (state IN ('ok', 'retrying', 'off')),
	last_error	text,			-- NULL: none yet
	error_at	bigint,			-- when last_error happened
	replays		bigint NOT NULL DEFAULT 0
);

CREATE TABLE replays (
	seq		bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	sink		text NOT NULL,
	at		bigint NOT NULL,
	by_user		text NOT NULL,		-- the operator's login name
	from_id		bigint NOT NULL,	-- the cursor before
	to_id		bigint NOT NULL		-- to_id + 1 is sent again
);

CREATE INDEX replays_sink ON replays (sink, at);

-- Counts kept by triggers so that stats stay cheap on a large ledger.
CREATE TABLE state_counts (
	state		text NOT NULL PRIMARY KEY,
	n		bigint NOT NULL
);

INSERT INTO state_counts (state, n) VALUES ('pending', 0), ('granted', 0),
    ('refunded', 0), ('failed', 0), ('not_found', 0), ('mismatch', 0),
    ('expired', 0), ('held', 0);

CREATE TABLE event_counts (
	type		text NOT NULL PRIMARY KEY,
	n		bigint NOT NULL
);

INSERT INTO event_counts (type, n) VALUES ('grant', 0), ('refund', 0),
    ('failed', 0), ('not_found', 0), ('mismatch', 0), ('expired', 0),
    ('held', 0), ('anomaly', 0);

-- Counters kept with the data they count, so /metrics survives restarts.
CREATE TABLE counters (
	name		text NOT NULL PRIMARY KEY,
	n		bigint NOT NULL
);

-- Orders whose sku Toss contradicted (counted once, with the event).
INSERT INTO counters (name, n) VALUES ('sku_mismatch', 0);

CREATE FUNCTION ledger_count_state() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP IN ('UPDATE', 'DELETE') THEN
		UPDATE state_counts SET n = n - 1 WHERE state = OLD.state;
	END IF;
	IF TG_OP IN ('UPDATE', 'INSERT') THEN
		UPDATE state_counts SET n = n + 1 WHERE state = NEW.state;
	END IF;
	RETURN NULL;
END;
$$;

CREATE TRIGGER orders_count_insert AFTER INSERT ON orders
    FOR EACH ROW EXECUTE FUNCTION ledger_count_state();
CREATE TRIGGER orders_count_delete AFTER DELETE ON orders
    FOR EACH ROW EXECUTE FUNCTION ledger_count_state();
CREATE TRIGGER orders_count_update AFTER UPDATE OF state ON orders
    FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state)
    EXECUTE FUNCTION ledger_count_state();

CREATE FUNCTION ledger_count_type() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP = 'DELETE' THEN
		UPDATE event_counts SET n = n - 1 WHERE type = OLD.type;
	ELSE
		UPDATE event_counts SET n = n + 1 WHERE type = NEW.type;
	END IF;
	RETURN NULL;
END;
$$;

CREATE TRIGGER events_count_insert AFTER INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION ledger_count_type();
CREATE TRIGGER events_count_delete AFTER DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION ledger_count_type();
