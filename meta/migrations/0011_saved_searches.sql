-- Saved searches: a search of the console's search page (its query, its
-- time range, its columns and tenant) under a name, so that whoever
-- saved it, or whoever it is shared with, runs it again in one click
-- instead of retyping a query that took an hour to get right.
--
-- owner is the principal id of the user who saved it, owner_name that
-- user's name as it was then, for lists. time_from and time_to are the
-- text the user chose ("-24h", an RFC 3339 time; '' for an open end),
-- not times: a search of the last day stays one of the last day.
--
-- shared (0 or 1, as playbook_steps.destructive) lists it to the users
-- who read one of the tenants its owner read when saving it (its
-- audience, below): a team's search, whose name and query may tell of
-- that team's incident, is not listed to another team. It shares the name
-- and the query's text, never events: whoever opens a shared search runs
-- it in their own scope, and sees only what their own roles and grants
-- let them see, whatever its owner saw with it.
CREATE TABLE saved_searches (
	id         TEXT PRIMARY KEY,
	owner      TEXT NOT NULL,
	owner_name TEXT NOT NULL,
	name       TEXT NOT NULL,
	query      TEXT NOT NULL,
	time_from  TEXT NOT NULL,
	time_to    TEXT NOT NULL,
	columns    TEXT NOT NULL,
	tenant     TEXT NOT NULL,
	shared     INTEGER NOT NULL,
	created    BIGINT NOT NULL,
	updated    BIGINT NOT NULL
);

CREATE INDEX saved_searches_owner ON saved_searches (owner);
CREATE INDEX saved_searches_shared ON saved_searches (shared);

-- The audience of a saved search: the tenants its owner read when it was
-- saved ('*' for every tenant). A shared search is listed to whoever
-- reads one of them; SavedSearches applies it, in its query.
CREATE TABLE saved_search_audience (
	search_id TEXT NOT NULL REFERENCES saved_searches (id),
	tenant    TEXT NOT NULL,
	PRIMARY KEY (search_id, tenant)
);
