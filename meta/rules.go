package meta

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// A SavedRule is a Sigma rule file written in the console. It is kept
// in the database, not on a node's disk, so that every node sharing the
// database runs it, and Body is kept exactly as saved so that its
// author finds it again as written, comments and all.
type SavedRule struct {
	ID        string    `json:"id"` // the Sigma rule's id
	Title     string    `json:"title"`
	Body      string    `json:"body"` // the YAML
	Created   time.Time `json:"created"`
	CreatedBy string    `json:"created_by"`
	Updated   time.Time `json:"updated"`
	UpdatedBy string    `json:"updated_by"`
}

const ruleColumns = "id, title, body, created, created_by, updated, updated_by"

func scanRule(r interface{ Scan(...any) error }) (SavedRule, error) {
	var (
		s                SavedRule
		created, updated int64
	)
	if err := r.Scan(&s.ID, &s.Title, &s.Body, &created, &s.CreatedBy, &updated, &s.UpdatedBy); err != nil {
		return SavedRule{}, err
	}
	s.Created, s.Updated = fromNano(created), fromNano(updated)
	return s, nil
}

// bumpRules adds one to the rules' version, in the transaction of the
// write to rules or rule_switches that changed them: a node that polls
// RulesVersion then sees the change with the version, never one without
// the other. It is an upsert so that a missing row (which the migration
// seeds) cannot lose a change.
func bumpRules(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO rules_version (name, n) VALUES ('rules', 1)
ON CONFLICT (name) DO UPDATE SET n = rules_version.n + 1`)
	return err
}

// SaveRule records a rule written in the console: a new id is inserted,
// with r.Created and r.CreatedBy (r.Updated and r.UpdatedBy when they are
// unset); an id saved before gets r's title, body, Updated and UpdatedBy
// and keeps the time and author of its first save. An unset r.Updated is
// now. An id or body that is empty, or blank, is an error, and so is
// text that is not UTF-8 or holds a NUL. It returns the rule as stored,
// and bumps RulesVersion.
func (db *DB) SaveRule(ctx context.Context, r SavedRule) (SavedRule, error) {
	switch {
	case strings.TrimSpace(r.ID) == "":
		return SavedRule{}, errors.New("meta: a rule needs an id")
	case strings.TrimSpace(r.Body) == "":
		return SavedRule{}, fmt.Errorf("meta: rule %s: the rule is empty", r.ID)
	case !isText(r.ID) || !isText(r.Title) || !isText(r.Body):
		// PostgreSQL's TEXT refuses both, SQLite's would keep them: refused
		// here, a rule saves alike on either engine.
		return SavedRule{}, fmt.Errorf("meta: rule %s: the rule is not UTF-8 text", r.ID)
	}
	if r.Updated.IsZero() {
		r.Updated = time.Now()
	}
	if r.Created.IsZero() {
		r.Created = r.Updated
	}
	if r.CreatedBy == "" {
		r.CreatedBy = r.UpdatedBy
	}
	var out SavedRule
	err := db.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO rules (`+ruleColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (id) DO UPDATE SET title = excluded.title, body = excluded.body, updated = excluded.updated, updated_by = excluded.updated_by`,
			r.ID, r.Title, r.Body, r.Created.UnixNano(), r.CreatedBy, r.Updated.UnixNano(), r.UpdatedBy)
		if err != nil {
			return err
		}
		if err := bumpRules(ctx, tx); err != nil {
			return err
		}
		out, err = scanRule(tx.QueryRowContext(ctx, `SELECT `+ruleColumns+` FROM rules WHERE id = $1`, r.ID))
		return err
	})
	if err != nil {
		return SavedRule{}, fmt.Errorf("meta: saving rule %s: %w", r.ID, err)
	}
	return out, nil
}

// isText reports whether s is UTF-8 without NULs, as PostgreSQL's TEXT
// takes it.
func isText(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

// SavedRules returns the rules written in the console, by id.
func (db *DB) SavedRules(ctx context.Context) ([]SavedRule, error) {
	return scanAll(ctx, db.read, "rules", scanRule, `SELECT `+ruleColumns+` FROM rules ORDER BY id`)
}

// SavedRule returns the rule written in the console with the id, or
// ErrNotFound.
func (db *DB) SavedRule(ctx context.Context, id string) (SavedRule, error) {
	r, err := scanRule(db.QueryRow(ctx, `SELECT `+ruleColumns+` FROM rules WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return SavedRule{}, ErrNotFound
	}
	if err != nil {
		return SavedRule{}, fmt.Errorf("meta: reading rule %s: %w", id, err)
	}
	return r, nil
}

// DeleteRule deletes a rule written in the console, or returns
// ErrNotFound. Its switch goes with it, so that a rule saved again
// later under the same id does not come back turned off by a reason
// given for another body. It bumps RulesVersion.
func (db *DB) DeleteRule(ctx context.Context, id string) error {
	err := db.Write(ctx, func(tx *sql.Tx) error {
		if err := execSome(ctx, tx, `DELETE FROM rules WHERE id = $1`, id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM rule_switches WHERE rule_id = $1`, id); err != nil {
			return err
		}
		return bumpRules(ctx, tx)
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("meta: deleting rule %s: %w", id, err)
	}
	return err
}

// A RuleSwitch says a rule is turned off: by whom, when and why. Rules
// apply to every tenant, and so does turning one off; the reason is
// what the next analyst reads before turning it back on.
type RuleSwitch struct {
	RuleID string    `json:"rule_id"`
	Reason string    `json:"reason"`
	By     string    `json:"by"`
	At     time.Time `json:"at"`
}

// TurnRuleOff turns a rule off, whether written in the console or
// shipped in files: a rule turned off already gets s's reason, author
// and time. An unset s.At is now. It bumps RulesVersion.
func (db *DB) TurnRuleOff(ctx context.Context, s RuleSwitch) error {
	if strings.TrimSpace(s.RuleID) == "" {
		return errors.New("meta: turning a rule off needs its id")
	}
	if s.At.IsZero() {
		s.At = time.Now()
	}
	err := db.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO rule_switches (rule_id, reason, updated, updated_by) VALUES ($1, $2, $3, $4)
ON CONFLICT (rule_id) DO UPDATE SET reason = excluded.reason, updated = excluded.updated, updated_by = excluded.updated_by`,
			s.RuleID, s.Reason, s.At.UnixNano(), s.By)
		if err != nil {
			return err
		}
		return bumpRules(ctx, tx)
	})
	if err != nil {
		return fmt.Errorf("meta: turning rule %s off: %w", s.RuleID, err)
	}
	return nil
}

// TurnRuleOn turns a rule back on. A rule that was on is no error, and
// then RulesVersion stays as it was: nothing changed for the nodes to
// reload.
func (db *DB) TurnRuleOn(ctx context.Context, ruleID string) error {
	err := db.Write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM rule_switches WHERE rule_id = $1`, ruleID)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil || n == 0 {
			return err
		}
		return bumpRules(ctx, tx)
	})
	if err != nil {
		return fmt.Errorf("meta: turning rule %s on: %w", ruleID, err)
	}
	return nil
}

// RulesOff returns the rules turned off, by rule id.
func (db *DB) RulesOff(ctx context.Context) ([]RuleSwitch, error) {
	return scanAll(ctx, db.read, "the rules turned off", func(r interface{ Scan(...any) error }) (RuleSwitch, error) {
		var (
			s  RuleSwitch
			at int64
		)
		err := r.Scan(&s.RuleID, &s.Reason, &at, &s.By)
		s.At = fromNano(at)
		return s, err
	}, `SELECT rule_id, reason, updated, updated_by FROM rule_switches ORDER BY rule_id`)
}

// RulesVersion returns the count of writes to the rules and their
// switches. A node compares it with the one it last loaded at to learn,
// by reading one row, that another node changed the rules.
func (db *DB) RulesVersion(ctx context.Context) (int64, error) {
	var n int64
	err := db.QueryRow(ctx, `SELECT n FROM rules_version WHERE name = 'rules'`).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("meta: reading the rules' version: %w", err)
	}
	return n, nil
}

// RuleHits is how often a rule matched in a scope since a time, and
// when last: what an analyst weighs before turning a noisy rule off or
// trusting a quiet one.
type RuleHits struct {
	Count int64     `json:"count"`
	Last  time.Time `json:"last"`
}

// RuleHits counts the detections of each rule since since (a zero since
// is all time), by rule id, in the scope of tenants, or of every tenant
// with all, as Detections scopes them: a correlation across tenants
// counts, whole, for a scope with one of its parts. A scope of no
// tenants and not all counts nothing: it returns an empty map, never
// every tenant's counts.
func (db *DB) RuleHits(ctx context.Context, tenants []string, all bool, since time.Time) (map[string]RuleHits, error) {
	out := map[string]RuleHits{}
	var f filter
	if !f.scopeParts(tenants, all, "detection_parts.detection_id") {
		return out, nil
	}
	if !since.IsZero() {
		f.is("created", ">=", since.UnixNano())
	}
	query := "SELECT rule_id, COUNT(*), MAX(created) FROM detections"
	if len(f.where) > 0 {
		query += " WHERE " + strings.Join(f.where, " AND ")
	}
	rows, err := db.Query(ctx, query+" GROUP BY rule_id", f.args...)
	if err != nil {
		return nil, fmt.Errorf("meta: counting the rules' detections: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id   string
			h    RuleHits
			last int64
		)
		if err := rows.Scan(&id, &h.Count, &last); err != nil {
			return nil, fmt.Errorf("meta: counting the rules' detections: %w", err)
		}
		h.Last = time.Unix(0, last).UTC()
		out[id] = h
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("meta: counting the rules' detections: %w", err)
	}
	return out, nil
}
