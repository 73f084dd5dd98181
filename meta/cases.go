package meta

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"
)

// A Case is an incident being worked; package alert decides what goes
// in it.
type Case struct {
	ID string `json:"id"`
	// Tenant is "" for a case across tenants.
	Tenant  string    `json:"tenant"`
	Title   string    `json:"title"`
	Status  string    `json:"status"`
	Owner   string    `json:"owner"`
	Creator string    `json:"creator"`
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
}

// A CaseEntry is a line of a case's timeline.
type CaseEntry struct {
	At    time.Time `json:"at"`
	Actor string    `json:"actor"`
	Kind  string    `json:"kind"`
	Ref   string    `json:"ref,omitempty"`
	Text  string    `json:"text,omitempty"`
}

// AddCase records a new case and the first entries of its timeline.
func (db *DB) AddCase(ctx context.Context, c Case, entries []CaseEntry) error {
	err := db.Write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO cases (id, tenant, title, status, owner, creator, created, updated) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			c.ID, nullString(c.Tenant), c.Title, c.Status, c.Owner, c.Creator, c.Created.UnixNano(), c.Updated.UnixNano()); err != nil {
			return err
		}
		return addEntries(ctx, tx, c.ID, entries)
	})
	if err != nil {
		return fmt.Errorf("meta: recording case %s: %w", c.ID, err)
	}
	return nil
}

func addEntries(ctx context.Context, tx *sql.Tx, id string, entries []CaseEntry) error {
	for _, e := range entries {
		if _, err := tx.ExecContext(ctx, `INSERT INTO case_entries (case_id, at, actor, kind, ref, text) VALUES ($1, $2, $3, $4, $5, $6)`,
			id, e.At.UnixNano(), e.Actor, e.Kind, e.Ref, e.Text); err != nil {
			return err
		}
	}
	return nil
}

// UpdateCase adds entries to a case's timeline and applies change to
// the case (its status or owner), in one transaction. It returns
// ErrNotFound for a case the scope (tenants, or every tenant with nil)
// does not see. change may refuse, with its own error, what the case as
// it is makes wrong.
func (db *DB) UpdateCase(ctx context.Context, tenants []string, id string, change func(*Case) ([]CaseEntry, error)) (Case, error) {
	var c Case
	err := db.Write(ctx, func(tx *sql.Tx) error {
		var err error
		c, err = scanCase(tx.QueryRowContext(ctx, "SELECT "+caseColumns+" FROM cases WHERE id = $1", id))
		if errors.Is(err, sql.ErrNoRows) || err == nil && tenants != nil && !slices.Contains(tenants, c.Tenant) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		entries, err := change(&c)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "UPDATE cases SET title = $1, status = $2, owner = $3, updated = $4 WHERE id = $5",
			c.Title, c.Status, c.Owner, c.Updated.UnixNano(), c.ID); err != nil {
			return err
		}
		return addEntries(ctx, tx, c.ID, entries)
	})
	return c, err
}

// A CaseQuery selects cases, most recently updated first.
type CaseQuery struct {
	// Tenants are the tenants whose cases are seen; with AllTenants,
	// every tenant's and those across tenants. Neither sees nothing.
	Tenants    []string
	AllTenants bool
	ID         string
	Status     []string
	Limit      int // 0 means 100; at most 10,000
}

const caseColumns = `id, tenant, title, status, owner, creator, created, updated`

// Cases returns the cases q selects.
func (db *DB) Cases(ctx context.Context, q CaseQuery) ([]Case, error) {
	var f filter
	if !f.scope(q.Tenants, q.AllTenants) {
		return nil, nil
	}
	if q.ID != "" {
		f.is("id", "=", q.ID)
	}
	if len(q.Status) > 0 {
		f.in("status", q.Status)
	}
	query := f.list(caseColumns+" FROM cases", "updated", q.Limit)
	rows, err := db.Query(ctx, query, f.args...)
	if err != nil {
		return nil, fmt.Errorf("meta: reading cases: %w", err)
	}
	defer rows.Close()
	var out []Case
	for rows.Next() {
		c, err := scanCase(rows)
		if err != nil {
			return nil, fmt.Errorf("meta: reading cases: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

func scanCase(row interface{ Scan(...any) error }) (Case, error) {
	var (
		c                Case
		tenant           sql.NullString
		created, updated int64
	)
	if err := row.Scan(&c.ID, &tenant, &c.Title, &c.Status, &c.Owner, &c.Creator, &created, &updated); err != nil {
		return c, err
	}
	c.Tenant = tenant.String
	c.Created, c.Updated = time.Unix(0, created).UTC(), time.Unix(0, updated).UTC()
	return c, nil
}

// CaseEntries returns a case's timeline, oldest first.
func (db *DB) CaseEntries(ctx context.Context, id string) ([]CaseEntry, error) {
	rows, err := db.Query(ctx, "SELECT at, actor, kind, ref, text FROM case_entries WHERE case_id = $1 ORDER BY at", id)
	if err != nil {
		return nil, fmt.Errorf("meta: reading case %s: %w", id, err)
	}
	defer rows.Close()
	var out []CaseEntry
	for rows.Next() {
		var (
			e  CaseEntry
			at int64
		)
		if err := rows.Scan(&at, &e.Actor, &e.Kind, &e.Ref, &e.Text); err != nil {
			return nil, fmt.Errorf("meta: reading case %s: %w", id, err)
		}
		e.At = time.Unix(0, at).UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}

// CasesOfAlert returns the cases that hold the alert alertID (those
// whose timeline has an entry of kind "alert" referring to it), most
// recently updated first, among those the scope sees: tenants' own
// cases, or with all every case, those across tenants among them. An
// alert may be in a case its reader does not see (one across tenants,
// the CSIRT's): that case is not listed, nor counted.
func (db *DB) CasesOfAlert(ctx context.Context, tenants []string, all bool, alertID string) ([]Case, error) {
	var f filter
	if !f.scope(tenants, all) {
		return nil, nil
	}
	f.where = append(f.where, "id IN (SELECT case_id FROM case_entries WHERE kind = 'alert' AND ref = "+f.arg(alertID)+")")
	rows, err := db.Query(ctx, f.list(caseColumns+" FROM cases", "updated", 100), f.args...)
	if err != nil {
		return nil, fmt.Errorf("meta: reading the cases of alert %s: %w", alertID, err)
	}
	defer rows.Close()
	var out []Case
	for rows.Next() {
		c, err := scanCase(rows)
		if err != nil {
			return nil, fmt.Errorf("meta: reading the cases of alert %s: %w", alertID, err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}
