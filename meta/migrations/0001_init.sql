-- The first schema: tenants, API tokens, and the cursors of pull sources.
--
-- Portable SQL, for SQLite and PostgreSQL alike: TEXT, BIGINT, no
-- engine-specific types, no AUTOINCREMENT or SERIAL (ids are made by
-- vigil), no CHECK constraints on values whose set grows (roles are
-- checked in Go, so a new role needs no table rebuild in SQLite).
--
-- Times are BIGINT nanoseconds since the Unix epoch (UTC), NULL for
-- "never", as events' times are. Numbers compare and sort alike in both
-- engines and round-trip exactly through both drivers, where RFC 3339 text
-- sorts right only while every value has the same width and offset, and
-- the engines' own timestamp types differ (SQLite has none).

CREATE TABLE tenants (
	name    TEXT PRIMARY KEY,
	created BIGINT NOT NULL
);

-- A token's secret is never stored; hash is the hex SHA-256 of it, which
-- authentication looks up. tenant is NULL only for an admin token that
-- sees every tenant.
CREATE TABLE tokens (
	id        TEXT PRIMARY KEY,
	name      TEXT NOT NULL,
	tenant    TEXT REFERENCES tenants (name),
	role      TEXT NOT NULL,
	hash      TEXT NOT NULL UNIQUE,
	created   BIGINT NOT NULL,
	expires   BIGINT,
	last_used BIGINT,
	revoked   BIGINT
);

CREATE INDEX tokens_tenant ON tokens (tenant);

-- How far each pull source (an S3 prefix, a cloud API) has read, so that
-- it resumes there after a restart.
CREATE TABLE source_cursors (
	source  TEXT PRIMARY KEY,
	cursor  TEXT NOT NULL,
	updated BIGINT NOT NULL
);
