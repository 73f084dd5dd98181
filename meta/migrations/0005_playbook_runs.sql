-- Playbook runs: a playbook acting on an alert (or started by a person),
-- step by step. tenant is NULL for a run on a correlation across
-- tenants. data is what the steps' inputs are written from (the alert
-- and its event, JSON), kept so that a run waiting for approval resumes
-- after a restart. case_id is the case the run reports to, once it has
-- one.
CREATE TABLE playbook_runs (
	id       TEXT PRIMARY KEY,
	tenant   TEXT,
	playbook TEXT NOT NULL,
	alert_id TEXT NOT NULL,
	case_id  TEXT NOT NULL,
	status   TEXT NOT NULL,
	actor    TEXT NOT NULL,
	error    TEXT NOT NULL,
	data     TEXT NOT NULL,
	created  BIGINT NOT NULL,
	updated  BIGINT NOT NULL
);

CREATE INDEX playbook_runs_tenant_updated ON playbook_runs (tenant, updated);
CREATE INDEX playbook_runs_status ON playbook_runs (status);

-- A run's steps, in order: the inputs as written, the outputs, how it
-- ended, who approved it. key identifies the act (the action and its
-- inputs) so that the same act is done once whichever run asks again;
-- destructive steps done count against the containment rate limit.
-- Times are 0 when not yet reached.
CREATE TABLE playbook_steps (
	run_id      TEXT NOT NULL REFERENCES playbook_runs (id),
	idx         INTEGER NOT NULL,
	name        TEXT NOT NULL,
	action      TEXT NOT NULL,
	mode        TEXT NOT NULL,
	destructive INTEGER NOT NULL,
	status      TEXT NOT NULL,
	inputs      TEXT NOT NULL,
	outputs     TEXT NOT NULL,
	error       TEXT NOT NULL,
	attempts    INTEGER NOT NULL,
	act_key     TEXT NOT NULL,
	expires     BIGINT NOT NULL,
	approver    TEXT NOT NULL,
	started     BIGINT NOT NULL,
	done        BIGINT NOT NULL,
	PRIMARY KEY (run_id, idx)
);

CREATE INDEX playbook_steps_key ON playbook_steps (act_key, status);
CREATE INDEX playbook_steps_done ON playbook_steps (destructive, done);

-- Settings an operator changes while vigil runs, which every node
-- reads: the playbooks' kill switch.
CREATE TABLE settings (
	name    TEXT PRIMARY KEY,
	value   TEXT NOT NULL,
	actor   TEXT NOT NULL,
	updated BIGINT NOT NULL
);
