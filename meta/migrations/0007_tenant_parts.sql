-- The parts of a correlation across tenants: for each tenant whose
-- events it holds, which of them. An alert or a detection across
-- tenants keeps tenant NULL; its parts are what let each tenant's
-- scope see it, trimmed to that tenant's part (see meta.AlertQuery),
-- while a scope over every tenant of its parts sees the whole.
--
-- seqs are the ledger indices of the tenant's first events (a JSON
-- array, MaxSeqs at most for an alert), count counts all of them, and
-- first_seen and last_seen are the times of its first and last, so
-- that a tenant is shown the times of its own events only.
CREATE TABLE alert_parts (
	alert_id   TEXT NOT NULL REFERENCES alerts (id),
	tenant     TEXT NOT NULL,
	seqs       TEXT NOT NULL,
	count      BIGINT NOT NULL,
	first_seen BIGINT NOT NULL,
	last_seen  BIGINT NOT NULL,
	PRIMARY KEY (alert_id, tenant)
);

CREATE INDEX alert_parts_tenant ON alert_parts (tenant, alert_id);

CREATE TABLE detection_parts (
	detection_id TEXT NOT NULL REFERENCES detections (id),
	tenant       TEXT NOT NULL,
	seqs         TEXT NOT NULL,
	PRIMARY KEY (detection_id, tenant)
);

CREATE INDEX detection_parts_tenant ON detection_parts (tenant, detection_id);
