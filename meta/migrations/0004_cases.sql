-- Cases: incidents the CSIRT works, grouping alerts, with an owner, a
-- status and a timeline. tenant is NULL for a case across tenants,
-- which only a scope over every tenant sees.
CREATE TABLE cases (
	id      TEXT PRIMARY KEY,
	tenant  TEXT,
	title   TEXT NOT NULL,
	status  TEXT NOT NULL,
	owner   TEXT NOT NULL,
	creator TEXT NOT NULL,
	created BIGINT NOT NULL,
	updated BIGINT NOT NULL
);

CREATE INDEX cases_tenant_updated ON cases (tenant, updated);

-- A case's timeline: what was added to it (an alert, a note, an action
-- taken, an evidence export) and what changed (its status, its owner),
-- by whom and when. ref is the alert's id, the export's name, the new
-- status or owner; text is the note or the action. Entries are never
-- changed or deleted.
CREATE TABLE case_entries (
	case_id TEXT NOT NULL REFERENCES cases (id),
	at      BIGINT NOT NULL,
	actor   TEXT NOT NULL,
	kind    TEXT NOT NULL,
	ref     TEXT NOT NULL,
	text    TEXT NOT NULL
);

CREATE INDEX case_entries_case ON case_entries (case_id, at);
