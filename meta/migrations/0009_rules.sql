-- Rules: detection rules written in the web console, and rules turned
-- off, kept here rather than in files so that every node sharing the
-- database runs the same rules, and so that a rule written or turned off
-- survives a restart without anyone editing the nodes' disks.
--
-- rules holds each Sigma rule file as saved, body the YAML exactly as
-- written (comments, order and spacing included), under the rule's own
-- id. created and created_by are those of its first save; updated and
-- updated_by those of its last.
CREATE TABLE rules (
	id         TEXT PRIMARY KEY,
	title      TEXT NOT NULL,
	body       TEXT NOT NULL,
	created    BIGINT NOT NULL,
	created_by TEXT NOT NULL,
	updated    BIGINT NOT NULL,
	updated_by TEXT NOT NULL
);

-- A row of rule_switches turns a rule off, for every tenant, whether it
-- is one of rules or one shipped in files: who did, when and why.
-- Turning it back on deletes the row, so that a rule is on unless
-- someone said otherwise. rule_id is no foreign key: a rule from files
-- has no row in rules.
CREATE TABLE rule_switches (
	rule_id    TEXT PRIMARY KEY,
	reason     TEXT NOT NULL,
	updated    BIGINT NOT NULL,
	updated_by TEXT NOT NULL
);

-- rules_version counts the writes to rules and rule_switches: each adds
-- one, in its own transaction, so that a node polls one row to learn
-- whether to reload the rules instead of reading them all.
CREATE TABLE rules_version (
	name TEXT PRIMARY KEY,
	n    BIGINT NOT NULL
);

INSERT INTO rules_version (name, n) VALUES ('rules', 0);
