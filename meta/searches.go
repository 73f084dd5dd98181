package meta

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// A SavedSearch is a search of the console's search page kept under a
// name by the user who made it, to run again.
//
// Shared lists it to the users who read one of the tenants of its
// Audience, but it shares only its name and its query's text, never
// events: whoever opens it runs it in their own scope, with their own
// roles and grants, and sees nothing its owner's scope would have shown
// them that theirs does not.
type SavedSearch struct {
	ID string `json:"id"`
	// Owner is the principal id of the user who saved it; OwnerName that
	// user's name when they last saved it.
	Owner     string `json:"owner"`
	OwnerName string `json:"owner_name"`
	Name      string `json:"name"`
	Query     string `json:"query"`
	// From and To are the range as the user chose it: "-24h", an RFC 3339
	// time, "" for an open end; not times, so that a relative range stays
	// relative to whenever the search runs.
	From    string `json:"from"`
	To      string `json:"to"`
	Columns string `json:"columns"`
	Tenant  string `json:"tenant"`
	Shared  bool   `json:"shared"`
	// Audience are the tenants its owner read when saving it ("*" for
	// every tenant): a shared search is listed to whoever reads one.
	Audience []string  `json:"audience"`
	Created  time.Time `json:"created"`
	Updated  time.Time `json:"updated"`
}

const searchColumns = "id, owner, owner_name, name, query, time_from, time_to, columns, tenant, shared, created, updated"

func scanSearch(r interface{ Scan(...any) error }) (SavedSearch, error) {
	var (
		s                SavedSearch
		shared           int
		created, updated int64
	)
	if err := r.Scan(&s.ID, &s.Owner, &s.OwnerName, &s.Name, &s.Query, &s.From, &s.To, &s.Columns, &s.Tenant,
		&shared, &created, &updated); err != nil {
		return SavedSearch{}, err
	}
	s.Shared, s.Created, s.Updated = shared != 0, fromNano(created), fromNano(updated)
	return s, nil
}

// SaveSearch keeps a saved search and returns it as stored. Without an
// id it is a new search, under a new id; with one, it replaces that
// search, which must be its owner's: the id of another owner's search is
// ErrNotFound, and that search is left as it was (an id not saved yet is
// inserted). A replaced search keeps its creation time and owner. An
// unset s.Updated is now, and an unset s.Created is s.Updated. A search
// without an owner or a name (or with a blank one) is an error, and so
// is text that is not UTF-8 or holds a NUL.
func (db *DB) SaveSearch(ctx context.Context, s SavedSearch) (SavedSearch, error) {
	switch {
	case s.Owner == "":
		return SavedSearch{}, errors.New("meta: a saved search needs an owner")
	case strings.TrimSpace(s.Name) == "":
		return SavedSearch{}, errors.New("meta: a saved search needs a name")
	}
	for _, t := range []string{s.ID, s.Owner, s.OwnerName, s.Name, s.Query, s.From, s.To, s.Columns, s.Tenant} {
		if !isText(t) {
			// PostgreSQL's TEXT refuses both: refused here, a search saves
			// alike on either engine.
			return SavedSearch{}, errors.New("meta: a saved search is not UTF-8 text")
		}
	}
	if s.Updated.IsZero() {
		s.Updated = time.Now()
	}
	if s.Created.IsZero() {
		s.Created = s.Updated
	}
	if s.ID == "" {
		// Ids sort by creation time, as detections' do.
		s.ID = newDetectionID(s.Created)
	}
	var out SavedSearch
	err := db.Write(ctx, func(tx *sql.Tx) error {
		// Another owner's id: the conflict's WHERE leaves the row alone.
		err := execSome(ctx, tx, `INSERT INTO saved_searches (`+searchColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
ON CONFLICT (id) DO UPDATE SET owner_name = excluded.owner_name, name = excluded.name, query = excluded.query,
	time_from = excluded.time_from, time_to = excluded.time_to, columns = excluded.columns, tenant = excluded.tenant,
	shared = excluded.shared, updated = excluded.updated
WHERE saved_searches.owner = excluded.owner`,
			s.ID, s.Owner, s.OwnerName, s.Name, s.Query, s.From, s.To, s.Columns, s.Tenant, boolInt(s.Shared),
			s.Created.UnixNano(), s.Updated.UnixNano())
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM saved_search_audience WHERE search_id = $1`, s.ID); err != nil {
			return err
		}
		for _, t := range slices.Compact(slices.Sorted(slices.Values(s.Audience))) {
			if _, err := tx.ExecContext(ctx, `INSERT INTO saved_search_audience (search_id, tenant) VALUES ($1, $2)`, s.ID, t); err != nil {
				return err
			}
		}
		out, err = scanSearch(tx.QueryRowContext(ctx, `SELECT `+searchColumns+` FROM saved_searches WHERE id = $1`, s.ID))
		if err == nil {
			err = db.audiences(ctx, tx, []*SavedSearch{&out})
		}
		return err
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		return SavedSearch{}, fmt.Errorf("meta: saving search %s: %w", s.ID, err)
	}
	return out, err
}

// SavedSearches returns the searches owner saved and those others shared
// with a tenant the scope reads (tenants, or every tenant with all), by
// name (then id), alike on both engines whatever the database's
// collation. Which shared searches a scope sees is decided here, in the
// query, and nowhere else.
func (db *DB) SavedSearches(ctx context.Context, owner string, tenants []string, all bool) ([]SavedSearch, error) {
	return db.savedSearches(ctx, "", owner, tenants, all)
}

// SavedSearch returns the saved search with the id if owner saved it or
// it is shared with a tenant the scope reads (as SavedSearches), else
// ErrNotFound, alike for one that does not exist.
func (db *DB) SavedSearch(ctx context.Context, id, owner string, tenants []string, all bool) (SavedSearch, error) {
	ss, err := db.savedSearches(ctx, id, owner, tenants, all)
	if err != nil {
		return SavedSearch{}, err
	}
	if len(ss) == 0 {
		return SavedSearch{}, ErrNotFound
	}
	return ss[0], nil
}

func (db *DB) savedSearches(ctx context.Context, id, owner string, tenants []string, all bool) ([]SavedSearch, error) {
	var f filter
	seen := "owner = " + f.arg(owner) + " OR shared = 1"
	if !all {
		audience := "tenant = '*'"
		if len(tenants) > 0 {
			audience += " OR " + f.inList("tenant", tenants)
		}
		seen += " AND id IN (SELECT search_id FROM saved_search_audience WHERE " + audience + ")"
	}
	f.where = append(f.where, "("+seen+")")
	if id != "" {
		f.is("id", "=", id)
	}
	out, err := scanAll(ctx, db.read, "saved searches", scanSearch,
		`SELECT `+searchColumns+` FROM saved_searches WHERE `+strings.Join(f.where, " AND "), f.args...)
	if err != nil {
		return nil, err
	}
	ptrs := make([]*SavedSearch, len(out))
	for i := range out {
		ptrs[i] = &out[i]
	}
	if err := db.audiences(ctx, db.read, ptrs); err != nil {
		return nil, fmt.Errorf("meta: reading saved searches: %w", err)
	}
	slices.SortFunc(out, func(a, b SavedSearch) int {
		return cmp.Or(strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)),
			strings.Compare(a.Name, b.Name), strings.Compare(a.ID, b.ID))
	})
	return out, nil
}

// audiences fills in the audience of each search.
func (db *DB) audiences(ctx context.Context, q querier, ss []*SavedSearch) error {
	if len(ss) == 0 {
		return nil
	}
	var f filter
	byID := map[string]*SavedSearch{}
	ids := make([]string, len(ss))
	for i, s := range ss {
		byID[s.ID], ids[i] = s, s.ID
		s.Audience = []string{}
	}
	rows, err := q.QueryContext(ctx, `SELECT search_id, tenant FROM saved_search_audience WHERE `+f.inList("search_id", ids)+` ORDER BY tenant`, f.args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id, tenant string
		if err := rows.Scan(&id, &tenant); err != nil {
			return err
		}
		byID[id].Audience = append(byID[id].Audience, tenant)
	}
	return rows.Err()
}

// DeleteSearch deletes owner's saved search with the id. A search that
// does not exist, or is another owner's (shared or not), is ErrNotFound,
// and is left as it was.
func (db *DB) DeleteSearch(ctx context.Context, id, owner string) error {
	err := db.Write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM saved_search_audience WHERE search_id = $1
	AND search_id IN (SELECT id FROM saved_searches WHERE owner = $2)`, id, owner); err != nil {
			return err
		}
		return execSome(ctx, tx, `DELETE FROM saved_searches WHERE id = $1 AND owner = $2`, id, owner)
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("meta: deleting saved search %s: %w", id, err)
	}
	return err
}
