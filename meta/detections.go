package meta

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
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

	// Parts are, for a correlation across tenants (Tenant ""), each
	// tenant's events among Events, by tenant name. AddDetections keeps
	// them; Detections returns those the reader sees.
	Parts []DetectionPart `json:"parts,omitempty"`
	// Tenants are, for a correlation across tenants, the tenants of the
	// parts the reader sees.
	Tenants []string `json:"tenants,omitempty"`
	// Partial is set when the reader sees only some of the parts of a
	// correlation across tenants: Events are then those of the reader's
	// parts, and Fields are left out.
	Partial bool `json:"partial,omitempty"`
}

// A DetectionPart is one tenant's share of a correlation across
// tenants: the seqs of its events.
type DetectionPart struct {
	Tenant string   `json:"tenant"`
	Seqs   []uint64 `json:"seqs"`
}

// trim cuts a detection across tenants down to what a scope (tenants,
// or every tenant with all) sees of it, as Partial says; it sets
// Tenants.
func (d *Detection) trim(tenants []string, all bool) {
	if d.Tenant != "" {
		return
	}
	names := make([]string, len(d.Parts))
	for i, p := range d.Parts {
		names[i] = p.Tenant
	}
	if _, whole := coverage("", names, tenants, all); whole {
		d.Tenants = names
		return
	}
	d.Parts = slices.DeleteFunc(d.Parts, func(p DetectionPart) bool { return !slices.Contains(tenants, p.Tenant) })
	d.Partial, d.Tenants, d.Events, d.Fields = true, nil, nil, nil
	for _, p := range d.Parts {
		d.Tenants = append(d.Tenants, p.Tenant)
		d.Events = append(d.Events, p.Seqs...)
	}
	slices.Sort(d.Events)
}

// AddDetections records detections, with their parts.
func (db *DB) AddDetections(ctx context.Context, ds []Detection) error {
	err := db.Write(ctx, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, `INSERT INTO detections (id, created, tenant, rule_id, title, level, tags, seq, event_time, event_id, fields, grp, events)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		parts, err := tx.PrepareContext(ctx, `INSERT INTO detection_parts (detection_id, tenant, seqs) VALUES ($1, $2, $3)`)
		if err != nil {
			return err
		}
		defer parts.Close()
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
			for _, p := range d.Parts {
				if d.Tenant != "" || p.Tenant == "" || d.Partial {
					return fmt.Errorf("detection %s: only a whole correlation across tenants has parts, each of a tenant", d.ID)
				}
				seqs, _ := json.Marshal(orEmpty(p.Seqs))
				if _, err := parts.ExecContext(ctx, d.ID, p.Tenant, string(seqs)); err != nil {
					return err
				}
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
	// Tenants are the tenants whose detections are seen, and the
	// correlations across tenants with a part in one of them, trimmed to
	// those parts unless the tenants hold every part (see
	// Detection.Partial); with AllTenants, every detection, whole.
	// Neither sees nothing. Scoping here, in the query, and nowhere
	// else, is what keeps one tenant's detections from another.
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
	if !f.scopeParts(q.Tenants, q.AllTenants, "detection_parts.detection_id") {
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
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("meta: reading detections: %w", err)
	}
	rows.Close()
	if err := db.detectionParts(ctx, out); err != nil {
		return nil, err
	}
	for i := range out {
		out[i].trim(q.Tenants, q.AllTenants)
	}
	return out, nil
}

// detectionParts reads the parts of the correlations across tenants of
// ds.
func (db *DB) detectionParts(ctx context.Context, ds []Detection) error {
	var ids []string
	for _, d := range ds {
		if d.Tenant == "" {
			ids = append(ids, d.ID)
		}
	}
	parts := map[string][]DetectionPart{}
	for len(ids) > 0 {
		n := min(len(ids), 500)
		var f filter
		f.in("detection_id", ids[:n])
		rows, err := db.Query(ctx, "SELECT detection_id, tenant, seqs FROM detection_parts WHERE "+f.where[0]+" ORDER BY detection_id, tenant", f.args...)
		if err != nil {
			return fmt.Errorf("meta: reading detections' parts: %w", err)
		}
		for rows.Next() {
			var (
				id, seqs string
				p        DetectionPart
			)
			if err := rows.Scan(&id, &p.Tenant, &seqs); err != nil {
				rows.Close()
				return fmt.Errorf("meta: reading detections' parts: %w", err)
			}
			if err := json.Unmarshal([]byte(seqs), &p.Seqs); err != nil {
				rows.Close()
				return fmt.Errorf("meta: detection %s: %w", id, err)
			}
			parts[id] = append(parts[id], p)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("meta: reading detections' parts: %w", err)
		}
		ids = ids[n:]
	}
	for i := range ds {
		ds[i].Parts = parts[ds[i].ID]
	}
	return nil
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
