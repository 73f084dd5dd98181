-- Access: the people and workloads who use vigil, the groups they are in,
-- the roles they hold in tenants, and the grants that share a tenant's
-- events with others.
--
-- A principal is a user (a person, who logs in with a password or
-- through the OIDC provider) or a service account (a workload, which
-- only has tokens). Roles are bound to principals and to groups, per
-- tenant; tenant '*' binds a role in every tenant (the CSIRT).
CREATE TABLE principals (
	id           TEXT PRIMARY KEY,
	name         TEXT NOT NULL UNIQUE,
	kind         TEXT NOT NULL,
	display      TEXT NOT NULL,
	password     TEXT NOT NULL,
	oidc_subject TEXT UNIQUE,
	created      BIGINT NOT NULL,
	disabled     BIGINT
);

CREATE TABLE groups (
	name        TEXT PRIMARY KEY,
	description TEXT NOT NULL,
	created     BIGINT NOT NULL
);

CREATE TABLE group_members (
	group_name   TEXT NOT NULL REFERENCES groups (name),
	principal_id TEXT NOT NULL REFERENCES principals (id),
	PRIMARY KEY (group_name, principal_id)
);

CREATE INDEX group_members_principal ON group_members (principal_id);

-- subject is 'principal:ID' or 'group:NAME'.
CREATE TABLE bindings (
	subject TEXT NOT NULL,
	tenant  TEXT NOT NULL,
	role    TEXT NOT NULL,
	created BIGINT NOT NULL,
	PRIMARY KEY (subject, tenant, role)
);

-- A grant shares the events of owner that filter selects, with event
-- time in [time_from, time_to), with grantee ('tenant:NAME',
-- 'group:NAME' or 'principal:ID') until expires, without the fields of
-- redact (a JSON list). NULL times are open.
CREATE TABLE grants (
	id         TEXT PRIMARY KEY,
	owner      TEXT NOT NULL,
	grantee    TEXT NOT NULL,
	filter     TEXT NOT NULL,
	time_from  BIGINT,
	time_to    BIGINT,
	redact     TEXT NOT NULL,
	reason     TEXT NOT NULL,
	created    BIGINT NOT NULL,
	created_by TEXT NOT NULL,
	expires    BIGINT,
	revoked    BIGINT,
	revoked_by TEXT NOT NULL
);

CREATE INDEX grants_owner ON grants (owner);
CREATE INDEX grants_grantee ON grants (grantee);

-- A token may act as a principal, with the principal's roles, instead of
-- with a role of its own in one tenant.
ALTER TABLE tokens ADD COLUMN principal_id TEXT REFERENCES principals (id);

-- Console sessions: the hash of the cookie's secret, as for tokens; the
-- CSRF token is derived from the secret, so it is not kept either.
CREATE TABLE sessions (
	hash         TEXT PRIMARY KEY,
	principal_id TEXT NOT NULL REFERENCES principals (id),
	created      BIGINT NOT NULL,
	expires      BIGINT NOT NULL,
	last_seen    BIGINT NOT NULL,
	method       TEXT NOT NULL
);

-- Break-glass elevations: a principal holding role in every tenant for a
-- while, with the reason they gave.
CREATE TABLE elevations (
	id           TEXT PRIMARY KEY,
	principal_id TEXT NOT NULL REFERENCES principals (id),
	role         TEXT NOT NULL,
	reason       TEXT NOT NULL,
	started      BIGINT NOT NULL,
	expires      BIGINT NOT NULL,
	ended        BIGINT
);

CREATE INDEX elevations_principal ON elevations (principal_id, expires);
