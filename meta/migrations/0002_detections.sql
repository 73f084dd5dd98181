-- Detections: what the rules matched, as the detection engine handed
-- them up, until the alert layer turns them into alerts. tenant is NULL
-- for a correlation whose events span tenants, which only a scope over
-- every tenant sees. The JSON columns are TEXT so that both engines
-- store them alike.
CREATE TABLE detections (
	id         TEXT PRIMARY KEY,
	created    BIGINT NOT NULL,
	tenant     TEXT,
	rule_id    TEXT NOT NULL,
	title      TEXT NOT NULL,
	level      TEXT NOT NULL,
	tags       TEXT NOT NULL,
	seq        BIGINT,
	event_time BIGINT,
	event_id   TEXT,
	fields     TEXT NOT NULL,
	grp        TEXT NOT NULL,
	events     TEXT NOT NULL
);

CREATE INDEX detections_tenant_created ON detections (tenant, created);
CREATE INDEX detections_created ON detections (created);
