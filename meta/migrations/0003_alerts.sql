-- Alerts: detections grouped by a dedup key (the rule, the tenant and
-- the values of the fields the key is made of) within a window, so that
-- many hits of one thing make one alert with a count. tenant is NULL
-- for a correlation whose events span tenants. seqs holds the ledger
-- indices of the first events only (count has them all); grp the field
-- values of the key, and context the first event's key facts (actor,
-- source address, account, environment, action), as JSON objects; tags a
-- JSON array.
CREATE TABLE alerts (
	id         TEXT PRIMARY KEY,
	tenant     TEXT,
	rule_id    TEXT NOT NULL,
	title      TEXT NOT NULL,
	severity   TEXT NOT NULL,
	dedup_key  TEXT NOT NULL,
	grp        TEXT NOT NULL,
	tags       TEXT NOT NULL,
	status     TEXT NOT NULL,
	count      BIGINT NOT NULL,
	first_seen BIGINT NOT NULL,
	last_seen  BIGINT NOT NULL,
	seqs       TEXT NOT NULL,
	context    TEXT NOT NULL,
	created    BIGINT NOT NULL,
	updated    BIGINT NOT NULL,
	reason     TEXT NOT NULL
);

CREATE INDEX alerts_tenant_updated ON alerts (tenant, updated);
CREATE INDEX alerts_updated ON alerts (updated);
CREATE INDEX alerts_status_last_seen ON alerts (status, last_seen);

-- Every change of an alert's status: who, when, from what to what, why.
CREATE TABLE alert_transitions (
	alert_id    TEXT NOT NULL REFERENCES alerts (id),
	at          BIGINT NOT NULL,
	actor       TEXT NOT NULL,
	from_status TEXT NOT NULL,
	to_status   TEXT NOT NULL,
	reason      TEXT NOT NULL
);

CREATE INDEX alert_transitions_alert ON alert_transitions (alert_id, at);

-- Suppressions: detections of a rule whose fields have the given values
-- (a JSON object; all must match) make no alert until expires (NULL:
-- until revoked). Who made and who revoked each is kept: the table is
-- its own audit trail, rows are never deleted. tenant NULL applies to
-- every tenant.
CREATE TABLE suppressions (
	id         TEXT PRIMARY KEY,
	tenant     TEXT,
	rule_id    TEXT NOT NULL,
	fields     TEXT NOT NULL,
	reason     TEXT NOT NULL,
	creator    TEXT NOT NULL,
	created    BIGINT NOT NULL,
	expires    BIGINT,
	hits       BIGINT NOT NULL,
	revoked    BIGINT,
	revoked_by TEXT
);

-- Deliveries: each notification sent, or given up on, for an alert:
-- to which channel, what it did (trigger, acknowledge, resolve), how it
-- ended, after how many attempts, and the last error.
CREATE TABLE deliveries (
	alert_id TEXT NOT NULL,
	channel  TEXT NOT NULL,
	action   TEXT NOT NULL,
	status   TEXT NOT NULL,
	attempts BIGINT NOT NULL,
	error    TEXT NOT NULL,
	queued   BIGINT NOT NULL,
	done     BIGINT NOT NULL
);

CREATE INDEX deliveries_alert ON deliveries (alert_id, queued);
