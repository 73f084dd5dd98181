-- Redactions of a scale-out: requests to erase the content of the events
-- a query selects (vigil redact), which each partition's process node
-- applies to its partition's ledger and the partition's events in the
-- store, since only the node holding a partition may write its ledger.
--
-- query is the search's text, reason what the ledger records with each
-- erased event, requested the time of the request (the partitions erase
-- what they were sent before it, and what came since up to when they
-- apply it), requested_by who asked, partitions how many partitions the
-- deployment has: the request is done when that many have applied it.
CREATE TABLE redactions (
	id           TEXT PRIMARY KEY,
	query        TEXT NOT NULL,
	reason       TEXT NOT NULL,
	requested    BIGINT NOT NULL,
	requested_by TEXT NOT NULL,
	partitions   INTEGER NOT NULL
);

-- What each partition did with a redaction: applied (a time, 0 while it
-- is not) erasing erased events, or the last error that keeps it from
-- being applied (it is tried again), at tried.
CREATE TABLE redaction_parts (
	redaction_id TEXT NOT NULL REFERENCES redactions (id),
	part         INTEGER NOT NULL,
	erased       BIGINT NOT NULL,
	applied      BIGINT NOT NULL,
	error        TEXT NOT NULL,
	tried        BIGINT NOT NULL,
	PRIMARY KEY (redaction_id, part)
);
