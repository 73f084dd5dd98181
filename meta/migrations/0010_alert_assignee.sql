-- Who works an alert, and the environment it is of, so that the queue
-- filters on them.
--
-- assignee is the principal name of the person working the alert; NULL
-- for none. SaveAlerts never writes it over: only SetAlertAssignee
-- changes it, and each change is recorded in alert_transitions.
--
-- environment is the alert's Context["vigil.environment"], copied into a
-- column when the alert is first saved, so that the queue filters it
-- with the same plain SQL on SQLite and PostgreSQL instead of a JSON
-- function of each engine. Alerts saved before this migration keep NULL:
-- filling it would need those JSON functions once, and such alerts only
-- drop out of a filter by environment.
ALTER TABLE alerts ADD COLUMN assignee TEXT;
ALTER TABLE alerts ADD COLUMN environment TEXT;

CREATE INDEX alerts_assignee_updated ON alerts (assignee, updated);
CREATE INDEX alerts_environment_updated ON alerts (environment, updated);

-- The cases holding an alert (meta.DB.CasesOfAlert) are found by the
-- alert's id in their timelines' entries.
CREATE INDEX case_entries_ref ON case_entries (ref, kind);
