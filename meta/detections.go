package meta

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// A Detection is a rule's match as kept in the metadata database.
type Detection struct {
	ID      string    `json:"id"`
	Created time.Time `json:"created"`
	// Tenant is "" for a correlation of events of several tenants.
	Tenant    string            `json:"tenant"`
	RuleID    string            `json:"rule_id"`
	Title     string            `json:"title"`
	Level     string            `json:"level"`
	Tags      []string          `json:"tags"`
	Seq       *uint64           `json:"seq,omitempty"` // the event's ledger index; nil for a correlation
	EventTime time.Time         `json:"event_time,omitzero"`
	EventID   string            `json:"event_id,omitempty"`
	Fields    map[string]string `json:"fields,omitempty"`
	Group     map[string]string `json:"group,omitempty"`
	// Events are the seqs of the events behind a correlation.
	Events []uint64 `json:"events,omitempty"`
}

// AddDetections records detections.
func (db *DB) AddDetections(ctx context.Context, ds []Detection) error {
	err := db.Write(ctx, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, `INSERT INTO detections (id, created, tenant, rule_id, title, level, tags, seq, event_time, event_id, fields, grp, events)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for i := range ds {
			d := &ds[i]
			if d.ID == "" {
				d.ID = newDetectionID(d.Created)
			}
			tags, _ := json.Marshal(orEmpty(d.Tags))
			fields, _ := json.Marshal(orEmptyMap(d.Fields))
			grp, _ := json.Marshal(orEmptyMap(d.Group))
			evs, _ := json.Marshal(orEmpty(d.Events))
			var tenant, seq, evTime any
			if d.Tenant != "" {
				tenant = d.Tenant
			}
			if d.Seq != nil {
				seq = int64(*d.Seq)
			}
			if !d.EventTime.IsZero() {
				evTime = d.EventTime.UnixNano()
			}
			_, err := stmt.ExecContext(ctx,
				d.ID, d.Created.UnixNano(), tenant, d.RuleID, d.Title, d.Level, string(tags), seq, evTime, d.EventID, string(fields), string(grp), string(evs))
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("meta: recording %d detections: %w", len(ds), err)
	}
	return nil
}

// A DetectionQuery selects detections, newest first.
type DetectionQuery struct {
	// Tenants are the tenants whose detections are seen; nil means every
	// tenant, and correlations across tenants, for an admin scope.
	// Scoping here, in the query, and nowhere else, is what keeps one
	// tenant's detections from another.
	Tenants    []string
	AllTenants bool
	Since      time.Time
	RuleID     string
	Limit      int // 0 means 100; at most 10,000
}

// Detections returns the detections q selects. A query with no tenants
// and not AllTenants selects nothing: a scope must be given.
func (db *DB) Detections(ctx context.Context, q DetectionQuery) ([]Detection, error) {
	var f filter
	if !f.scope(q.Tenants, q.AllTenants) {
		return nil, nil
	}
	if !q.Since.IsZero() {
		f.is("created", ">=", q.Since.UnixNano())
	}
	if q.RuleID != "" {
		f.is("rule_id", "=", q.RuleID)
	}
	query := f.list("id, created, tenant, rule_id, title, level, tags, seq, event_time, event_id, fields, grp, events FROM detections", "created", q.Limit)
	rows, err := db.Query(ctx, query, f.args...)
	if err != nil {
		return nil, fmt.Errorf("meta: reading detections: %w", err)
	}
	defer rows.Close()
	var out []Detection
	for rows.Next() {
		var (
			d                      Detection
			created                int64
			tenant, eventID        sql.NullString
			seq, evTime            sql.NullInt64
			tags, fields, grp, evs string
		)
		if err := rows.Scan(&d.ID, &created, &tenant, &d.RuleID, &d.Title, &d.Level, &tags, &seq, &evTime, &eventID, &fields, &grp, &evs); err != nil {
			return nil, fmt.Errorf("meta: reading detections: %w", err)
		}
		d.Created = time.Unix(0, created).UTC()
		d.Tenant, d.EventID = tenant.String, eventID.String
		if seq.Valid {
			n := uint64(seq.Int64)
			d.Seq = &n
		}
		if evTime.Valid {
			d.EventTime = time.Unix(0, evTime.Int64).UTC()
		}
		for _, c := range []struct {
			s string
			v any
		}{{tags, &d.Tags}, {fields, &d.Fields}, {grp, &d.Group}, {evs, &d.Events}} {
			if err := json.Unmarshal([]byte(c.s), c.v); err != nil {
				return nil, fmt.Errorf("meta: detection %s: %w", d.ID, err)
			}
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// newDetectionID returns an id that sorts by creation time.
func newDetectionID(t time.Time) string {
	var b [6]byte
	rand.Read(b[:])
	return fmt.Sprintf("%016x", t.UnixNano()) + hex.EncodeToString(b[:])
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func orEmptyMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}
