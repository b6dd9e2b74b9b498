-- Several instances on one ledger: which of them leads, and since when.
-- The instance that holds this schema's session advisory lock bumps the
-- epoch when it wins (so the row says who won last and when, by the
-- database's clock); every write only the leader makes (claims, results,
-- sink cursors and states) first reads the row with FOR SHARE and goes on
-- only while the epoch is still its own. A new leader's bump waits for an
-- old leader's write in flight, and every later write of the old one
-- fails: two instances that both believe they lead cannot both write.
CREATE TABLE leader (
	one		boolean PRIMARY KEY DEFAULT true CHECK (one),
	epoch		bigint NOT NULL,
	holder		text,			-- "host pid" of the winner
	since		bigint			-- unix ms, the database's clock
);

INSERT INTO leader (epoch) VALUES (0);
