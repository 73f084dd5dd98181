-- Exports: evidence bundles taken out through the API, each shared by a
-- signed, expiring link. The bundle itself is a file beside the ledger;
-- this is the record of who took what, why, and until when its link
-- opens it.
--
-- tenants is a JSON list of the tenants whose events the bundle may
-- hold ('*' for every tenant); sha256 is the bundle's, for the case file;
-- creator is the principal id, or the token id, that made it.
CREATE TABLE exports (
	id         TEXT PRIMARY KEY,
	tenants    TEXT NOT NULL,
	query      TEXT NOT NULL,
	time_from  BIGINT,
	time_to    BIGINT,
	reason     TEXT NOT NULL,
	events     BIGINT NOT NULL,
	sha256     TEXT NOT NULL,
	created    BIGINT NOT NULL,
	created_by TEXT NOT NULL,
	creator    TEXT NOT NULL,
	expires    BIGINT NOT NULL,
	revoked    BIGINT,
	revoked_by TEXT NOT NULL
);

-- Keys that sign links. A row is written once, by whichever node needs
-- the key first, and read by every node sharing the database.
CREATE TABLE link_keys (
	name    TEXT PRIMARY KEY,
	secret  TEXT NOT NULL,
	created BIGINT NOT NULL
);
