package meta

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// A Run is a playbook's run as kept in the metadata database; package
// playbook decides what goes in it.
type Run struct {
	ID string `json:"id"`
	// Tenant is "" for a run on a correlation across tenants.
	Tenant   string `json:"tenant"`
	Playbook string `json:"playbook"`
	AlertID  string `json:"alert_id,omitempty"`
	CaseID   string `json:"case_id,omitempty"`
	Status   string `json:"status"`
	// Actor is who started it: "alert" for a trigger, or a person.
	Actor string `json:"actor"`
	Error string `json:"error,omitempty"`
	// Data is what the steps' inputs are written from.
	Data    json.RawMessage `json:"-"`
	Created time.Time       `json:"created"`
	Updated time.Time       `json:"updated"`
	Steps   []RunStep       `json:"steps,omitempty"`
}

// A RunStep is one step of a run.
type RunStep struct {
	Index       int               `json:"index"`
	Name        string            `json:"name"`
	Action      string            `json:"action"`
	Mode        string            `json:"mode"`
	Destructive bool              `json:"destructive"`
	Status      string            `json:"status"`
	Inputs      map[string]string `json:"inputs,omitempty"`
	Outputs     map[string]string `json:"outputs,omitempty"`
	Error       string            `json:"error,omitempty"`
	Attempts    int               `json:"attempts"`
	// Key identifies the act: the action and its inputs.
	Key string `json:"key,omitempty"`
	// Expires is when a step waiting for approval stops waiting.
	Expires  time.Time `json:"expires,omitzero"`
	Approver string    `json:"approver,omitempty"`
	Started  time.Time `json:"started,omitzero"`
	Done     time.Time `json:"done,omitzero"`
}

// SaveRun records a run and its steps as they now are.
func (db *DB) SaveRun(ctx context.Context, r *Run) error {
	err := db.Write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO playbook_runs (id, tenant, playbook, alert_id, case_id, status, actor, error, data, created, updated)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
			ON CONFLICT (id) DO UPDATE SET case_id = excluded.case_id, status = excluded.status, error = excluded.error, updated = excluded.updated`,
			r.ID, nullString(r.Tenant), r.Playbook, r.AlertID, r.CaseID, r.Status, r.Actor, r.Error, string(r.Data),
			r.Created.UnixNano(), r.Updated.UnixNano()); err != nil {
			return err
		}
		for _, s := range r.Steps {
			in, _ := json.Marshal(s.Inputs)
			out, _ := json.Marshal(s.Outputs)
			if _, err := tx.ExecContext(ctx, `INSERT INTO playbook_steps (run_id, idx, name, action, mode, destructive, status, inputs, outputs, error, attempts, act_key, expires, approver, started, done)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
				ON CONFLICT (run_id, idx) DO UPDATE SET mode = excluded.mode, status = excluded.status, inputs = excluded.inputs, outputs = excluded.outputs,
					error = excluded.error, attempts = excluded.attempts, act_key = excluded.act_key, expires = excluded.expires,
					approver = excluded.approver, started = excluded.started, done = excluded.done`,
				r.ID, s.Index, s.Name, s.Action, s.Mode, boolInt(s.Destructive), s.Status, string(in), string(out), s.Error, s.Attempts, s.Key,
				unixNano(s.Expires), s.Approver, unixNano(s.Started), unixNano(s.Done)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("meta: recording playbook run %s: %w", r.ID, err)
	}
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// unixNano is t in nanoseconds, 0 for the zero time.
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// A RunQuery selects playbook runs, most recently updated first.
type RunQuery struct {
	// Tenants are the tenants whose runs are seen; with AllTenants,
	// every tenant's and those across tenants. Neither sees nothing.
	Tenants    []string
	AllTenants bool
	ID         string
	Status     []string
	Playbook   string
	AlertID    string
	Limit      int // 0 means 100; at most 10,000
	// Steps reads each run's steps too.
	Steps bool
}

const runColumns = `id, tenant, playbook, alert_id, case_id, status, actor, error, data, created, updated`

// Runs returns the runs q selects.
func (db *DB) Runs(ctx context.Context, q RunQuery) ([]Run, error) {
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
	if q.Playbook != "" {
		f.is("playbook", "=", q.Playbook)
	}
	if q.AlertID != "" {
		f.is("alert_id", "=", q.AlertID)
	}
	rows, err := db.Query(ctx, f.list(runColumns+" FROM playbook_runs", "updated", q.Limit), f.args...)
	if err != nil {
		return nil, fmt.Errorf("meta: reading playbook runs: %w", err)
	}
	defer rows.Close()
	var out []Run
	for rows.Next() {
		var (
			r                Run
			tenant           sql.NullString
			data             string
			created, updated int64
		)
		if err := rows.Scan(&r.ID, &tenant, &r.Playbook, &r.AlertID, &r.CaseID, &r.Status, &r.Actor, &r.Error, &data, &created, &updated); err != nil {
			return nil, fmt.Errorf("meta: reading playbook runs: %w", err)
		}
		r.Tenant, r.Data = tenant.String, json.RawMessage(data)
		r.Created, r.Updated = fromNano(created), fromNano(updated)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("meta: reading playbook runs: %w", err)
	}
	rows.Close()
	if q.Steps {
		for i := range out {
			if out[i].Steps, err = db.runSteps(ctx, out[i].ID); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

func (db *DB) runSteps(ctx context.Context, id string) ([]RunStep, error) {
	rows, err := db.Query(ctx, `SELECT idx, name, action, mode, destructive, status, inputs, outputs, error, attempts, act_key, expires, approver, started, done
		FROM playbook_steps WHERE run_id = $1 ORDER BY idx`, id)
	if err != nil {
		return nil, fmt.Errorf("meta: reading the steps of run %s: %w", id, err)
	}
	defer rows.Close()
	var out []RunStep
	for rows.Next() {
		var (
			s                      RunStep
			destructive            int
			in, outs               string
			expires, started, done int64
		)
		if err := rows.Scan(&s.Index, &s.Name, &s.Action, &s.Mode, &destructive, &s.Status, &in, &outs, &s.Error, &s.Attempts, &s.Key,
			&expires, &s.Approver, &started, &done); err != nil {
			return nil, fmt.Errorf("meta: reading the steps of run %s: %w", id, err)
		}
		s.Destructive = destructive != 0
		if err := errors.Join(json.Unmarshal([]byte(in), &s.Inputs), json.Unmarshal([]byte(outs), &s.Outputs)); err != nil {
			return nil, fmt.Errorf("meta: reading the steps of run %s: %w", id, err)
		}
		s.Expires, s.Started, s.Done = fromNano(expires), fromNano(started), fromNano(done)
		out = append(out, s)
	}
	return out, rows.Err()
}

// ActDone returns the run and step that did the act key names, and its
// outputs, if a step did it.
func (db *DB) ActDone(ctx context.Context, key, status string) (runID string, outputs map[string]string, ok bool, err error) {
	var outs string
	err = db.QueryRow(ctx, "SELECT run_id, outputs FROM playbook_steps WHERE act_key = $1 AND status = $2 ORDER BY done LIMIT 1", key, status).Scan(&runID, &outs)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil, false, nil
	}
	if err == nil {
		err = json.Unmarshal([]byte(outs), &outputs)
	}
	if err != nil {
		return "", nil, false, fmt.Errorf("meta: looking up act %s: %w", key, err)
	}
	return runID, outputs, true, nil
}

// DestructiveSince counts the destructive steps that acted (status) at
// or after since.
func (db *DB) DestructiveSince(ctx context.Context, status string, since time.Time) (int, error) {
	var n int
	err := db.QueryRow(ctx, "SELECT COUNT(*) FROM playbook_steps WHERE destructive = 1 AND status = $1 AND done >= $2", status, since.UnixNano()).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("meta: counting containment actions: %w", err)
	}
	return n, nil
}

// A Setting is a value an operator set while vigil runs.
type Setting struct {
	Name    string    `json:"name"`
	Value   string    `json:"value"`
	Actor   string    `json:"actor"`
	Updated time.Time `json:"updated"`
}

// Setting returns a setting; one never set has the zero Updated.
func (db *DB) Setting(ctx context.Context, name string) (Setting, error) {
	s := Setting{Name: name}
	var updated int64
	err := db.QueryRow(ctx, "SELECT value, actor, updated FROM settings WHERE name = $1", name).Scan(&s.Value, &s.Actor, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("meta: reading setting %s: %w", name, err)
	}
	s.Updated = fromNano(updated)
	return s, nil
}

// SetSetting records a setting.
func (db *DB) SetSetting(ctx context.Context, s Setting) error {
	err := db.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO settings (name, value, actor, updated) VALUES ($1, $2, $3, $4)
			ON CONFLICT (name) DO UPDATE SET value = excluded.value, actor = excluded.actor, updated = excluded.updated`,
			s.Name, s.Value, s.Actor, s.Updated.UnixNano())
		return err
	})
	if err != nil {
		return fmt.Errorf("meta: recording setting %s: %w", s.Name, err)
	}
	return nil
}

// CaseOfAlert returns the most recent case the alert was added to, or
// "" if none.
func (db *DB) CaseOfAlert(ctx context.Context, alertID string) (string, error) {
	var id string
	err := db.QueryRow(ctx, "SELECT case_id FROM case_entries WHERE kind = 'alert' AND ref = $1 ORDER BY at DESC LIMIT 1", alertID).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("meta: looking up the case of alert %s: %w", alertID, err)
	}
	return id, nil
}
