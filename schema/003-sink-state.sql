-- What an operator needs to see of each sink besides its cursor: whether it
-- delivers (ok), waits to retry after a failure (retrying) or stopped after
-- a 410 Gone (off), the last error and when it happened; and how many times
-- `reconcilectl replay` moved its cursor back. A sink advances its cursor
-- only while `replays` is the value it last read, so a replay made while
-- the daemon runs is never overwritten. Every replay is kept in `replays`
-- with the operator who made it. Needs nothing but 001.

ALTER TABLE sinks ADD COLUMN state TEXT NOT NULL DEFAULT 'ok'
    CHECK (state IN ('ok', 'retrying', 'off'));
ALTER TABLE sinks ADD COLUMN last_error TEXT;		-- NULL: none yet
ALTER TABLE sinks ADD COLUMN error_at INTEGER;		-- when last_error happened
ALTER TABLE sinks ADD COLUMN replays INTEGER NOT NULL DEFAULT 0;

CREATE TABLE replays (
	sink		TEXT NOT NULL,
	at		INTEGER NOT NULL,
	by_user		TEXT NOT NULL,		-- the operator's login name
	from_id		INTEGER NOT NULL,	-- the cursor before
	to_id		INTEGER NOT NULL	-- the cursor after: to_id + 1 is sent again
) STRICT;

CREATE INDEX replays_sink ON replays (sink, at);
