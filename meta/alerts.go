package meta

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// An Alert is a group of detections as kept in the metadata database;
// package alert decides what goes in it.
type Alert struct {
	ID string `json:"id"`
	// Tenant is "" for a correlation of events of several tenants.
	Tenant   string            `json:"tenant"`
	RuleID   string            `json:"rule_id"`
	Title    string            `json:"title"`
	Severity string            `json:"severity"`
	Key      string            `json:"dedup_key"`
	Group    map[string]string `json:"group"`
	// Context are the first event's key facts, which notifications
	// show: its actor, source address, account, environment and action.
	Context map[string]string `json:"context"`
	Tags    []string          `json:"tags"`
	Status  string            `json:"status"`
	Count   int64             `json:"count"`
	// FirstSeen and LastSeen are the times of the first and last events.
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	// Seqs are the ledger indices of the first events; Count counts all.
	Seqs    []uint64  `json:"seqs"`
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
	// Reason is why it was last resolved or closed.
	Reason string `json:"reason,omitempty"`
	// Assignee is the principal name of the person working the alert,
	// "" for none. Only SetAlertAssignee changes it: SaveAlerts, which
	// package alert calls with each hit, keeps it.
	Assignee string `json:"assignee,omitempty"`

	// Parts are, for an alert across tenants (Tenant ""), each tenant's
	// share of its events, by tenant name. SaveAlerts keeps them;
	// Alerts returns those the reader sees.
	Parts []AlertPart `json:"parts,omitempty"`
	// Tenants are, for an alert across tenants, the tenants of the
	// parts the reader sees.
	Tenants []string `json:"tenants,omitempty"`
	// Partial is set when the reader sees only some of the parts of an
	// alert across tenants. Seqs, Count, FirstSeen and LastSeen are then
	// those of the reader's parts (Count: their events), and what could
	// tell of another tenant's events is left out: Context keeps only
	// the group's values, which the reader's events hold too, and
	// Reason, written by someone who saw every part, is empty.
	Partial bool `json:"partial,omitempty"`
}

// An AlertPart is one tenant's share of an alert across tenants.
type AlertPart struct {
	Tenant string `json:"tenant"`
	// Seqs are the ledger indices of the tenant's first events, MaxSeqs
	// of them at most; Count counts them all.
	Seqs  []uint64 `json:"seqs"`
	Count int64    `json:"count"`
	// FirstSeen and LastSeen are the times of the tenant's first and
	// last events.
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
}

// trim cuts an alert across tenants down to what a scope (tenants, or
// every tenant with all) sees of it, as Partial says; it sets Tenants.
// Every read of alerts goes through it, so that no caller can forget
// it.
func (a *Alert) trim(tenants []string, all bool) {
	if a.Tenant != "" {
		return
	}
	names := make([]string, len(a.Parts))
	for i, p := range a.Parts {
		names[i] = p.Tenant
	}
	_, whole := coverage("", names, tenants, all)
	if whole {
		a.Tenants = names
		return
	}
	a.Parts = slices.DeleteFunc(a.Parts, func(p AlertPart) bool { return !slices.Contains(tenants, p.Tenant) })
	a.Partial, a.Tenants, a.Seqs, a.Count, a.Reason = true, nil, nil, 0, ""
	a.FirstSeen, a.LastSeen = time.Time{}, time.Time{}
	for _, p := range a.Parts {
		a.Tenants = append(a.Tenants, p.Tenant)
		a.Seqs = append(a.Seqs, p.Seqs...)
		a.Count += p.Count
		if a.FirstSeen.IsZero() || p.FirstSeen.Before(a.FirstSeen) {
			a.FirstSeen = p.FirstSeen
		}
		if p.LastSeen.After(a.LastSeen) {
			a.LastSeen = p.LastSeen
		}
	}
	slices.Sort(a.Seqs)
	// The context is the first event's facts, which may be another
	// tenant's event: only those that are the group's values, which
	// every part's events share, are kept.
	ctx := map[string]string{}
	for k, v := range a.Context {
		if g, ok := a.Group[k]; ok && g == v {
			ctx[k] = v
		}
	}
	a.Context = ctx
}

// A Transition is a change of an alert's status, or of its assignee:
// the history of an alert is one list, so that who took it and when
// reads beside what they did with it. A change of assignee keeps From
// and To the status the alert had, and says in Reason who it went to
// (see SetAlertAssignee).
type Transition struct {
	AlertID string    `json:"alert_id"`
	At      time.Time `json:"at"`
	Actor   string    `json:"actor"`
	From    string    `json:"from"`
	To      string    `json:"to"`
	Reason  string    `json:"reason,omitempty"`
}

// ErrNotFound is returned for an alert, or a suppression, that does not
// exist or that the scope does not see.
var ErrNotFound = errors.New("meta: not found")

// ErrPartial is returned for a change to an alert across tenants asked
// by a scope that sees only some of its tenants: its status and its
// cases are the work of those who see all of them (the CSIRT).
var ErrPartial = errors.New("meta: the alert correlates events of tenants besides yours")

// ErrConflict is returned by SetAlertStatus when the alert's status is no
// longer the one the change was decided from.
var ErrConflict = errors.New("meta: the alert changed meanwhile")

// SaveAlerts writes alerts, new or updated, with their parts, in one
// transaction. An update changes what grouping changes (count, last
// seen, seqs, the parts) and never the status, which only
// SetAlertStatus changes, nor the assignee, which only SetAlertAssignee
// changes. A new alert's environment column is its
// Context["vigil.environment"] (see EnvironmentFact). A part is never removed: an alert's parts
// only grow. It refuses an alert read as Partial, which would write one
// tenant's view over the whole.
func (db *DB) SaveAlerts(ctx context.Context, as []Alert) error {
	for i := range as {
		if as[i].Partial {
			return fmt.Errorf("meta: saving alert %s: it was read as a part of it, not the whole", as[i].ID)
		}
	}
	err := db.Write(ctx, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, `INSERT INTO alerts (id, tenant, rule_id, title, severity, dedup_key, grp, tags, status, count, first_seen, last_seen, seqs, context, created, updated, reason, assignee, environment)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)
ON CONFLICT (id) DO UPDATE SET count = excluded.count, first_seen = excluded.first_seen, last_seen = excluded.last_seen, seqs = excluded.seqs, updated = excluded.updated`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		parts, err := tx.PrepareContext(ctx, `INSERT INTO alert_parts (alert_id, tenant, seqs, count, first_seen, last_seen) VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (alert_id, tenant) DO UPDATE SET seqs = excluded.seqs, count = excluded.count, first_seen = excluded.first_seen, last_seen = excluded.last_seen`)
		if err != nil {
			return err
		}
		defer parts.Close()
		for i := range as {
			a := &as[i]
			grp, _ := json.Marshal(orEmptyMap(a.Group))
			tags, _ := json.Marshal(orEmpty(a.Tags))
			seqs, _ := json.Marshal(orEmpty(a.Seqs))
			facts, _ := json.Marshal(orEmptyMap(a.Context))
			if _, err := stmt.ExecContext(ctx, a.ID, nullString(a.Tenant), a.RuleID, a.Title, a.Severity, a.Key, string(grp), string(tags),
				a.Status, a.Count, a.FirstSeen.UnixNano(), a.LastSeen.UnixNano(), string(seqs), string(facts), a.Created.UnixNano(), a.Updated.UnixNano(), a.Reason,
				nullString(a.Assignee), nullString(a.Context[EnvironmentFact])); err != nil {
				return err
			}
			for _, p := range a.Parts {
				if a.Tenant != "" || p.Tenant == "" {
					return fmt.Errorf("alert %s: only an alert across tenants has parts, each of a tenant", a.ID)
				}
				seqs, _ := json.Marshal(orEmpty(p.Seqs))
				if _, err := parts.ExecContext(ctx, a.ID, p.Tenant, string(seqs), p.Count, p.FirstSeen.UnixNano(), p.LastSeen.UnixNano()); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("meta: saving %d alerts: %w", len(as), err)
	}
	return nil
}

// An AlertQuery selects alerts, most recently updated first.
type AlertQuery struct {
	// Tenants are the tenants whose alerts are seen, and the alerts
	// across tenants with a part in one of them, trimmed to those parts
	// unless the tenants hold every part (see Alert.Partial); with
	// AllTenants, every alert, whole. Neither sees nothing: scoping
	// here, in the query, is what keeps tenants apart.
	Tenants    []string
	AllTenants bool
	ID         string
	Status     []string // any of these; none means any status
	RuleID     string
	// Environment selects the alerts of an environment (their
	// Context[EnvironmentFact]). Alerts saved before the environment was
	// a column have none, and are not selected by it.
	Environment string
	// Assignee selects the alerts assigned to a principal, by name; "-"
	// selects those assigned to no one.
	Assignee string
	// LastSeenSince selects alerts whose last event is at or after it.
	LastSeenSince time.Time
	Limit         int // 0 means 100; at most 10,000
}

// Unassigned is the AlertQuery.Assignee that selects the alerts
// assigned to no one.
const Unassigned = "-"

// EnvironmentFact is the key of an alert's Context that is its
// environment, which the queue filters on.
const EnvironmentFact = "vigil.environment"

const alertColumns = `id, tenant, rule_id, title, severity, dedup_key, grp, tags, status, count, first_seen, last_seen, seqs, context, created, updated, reason, assignee`

// Alerts returns the alerts q selects.
func (db *DB) Alerts(ctx context.Context, q AlertQuery) ([]Alert, error) {
	var f filter
	if !f.scopeParts(q.Tenants, q.AllTenants, "alert_parts.alert_id") {
		return nil, nil
	}
	if q.ID != "" {
		f.is("id", "=", q.ID)
	}
	if len(q.Status) > 0 {
		f.in("status", q.Status)
	}
	if q.RuleID != "" {
		f.is("rule_id", "=", q.RuleID)
	}
	if q.Environment != "" {
		f.is("environment", "=", q.Environment)
	}
	switch q.Assignee {
	case "":
	case Unassigned:
		f.where = append(f.where, "assignee IS NULL")
	default:
		f.is("assignee", "=", q.Assignee)
	}
	if !q.LastSeenSince.IsZero() {
		f.is("last_seen", ">=", q.LastSeenSince.UnixNano())
	}
	query := f.list(alertColumns+" FROM alerts", "updated", q.Limit)
	rows, err := db.Query(ctx, query, f.args...)
	if err != nil {
		return nil, fmt.Errorf("meta: reading alerts: %w", err)
	}
	defer rows.Close()
	var out []Alert
	for rows.Next() {
		a, err := scanAlert(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("meta: reading alerts: %w", err)
	}
	rows.Close()
	if err := withParts(ctx, db.read, out); err != nil {
		return nil, err
	}
	for i := range out {
		out[i].trim(q.Tenants, q.AllTenants)
	}
	if q.Environment != "" {
		// The environment of an alert across tenants is that of its
		// first event, which may be another tenant's: a reader who sees
		// part of it, and whose trimmed context does not hold that
		// environment, would learn it by filtering on it.
		out = slices.DeleteFunc(out, func(a Alert) bool { return a.Partial && a.Context[EnvironmentFact] != q.Environment })
	}
	return out, nil
}

// withParts reads the parts of the alerts across tenants of as.
func withParts(ctx context.Context, q querier, as []Alert) error {
	var ids []string
	for _, a := range as {
		if a.Tenant == "" {
			ids = append(ids, a.ID)
		}
	}
	parts := map[string][]AlertPart{}
	for len(ids) > 0 {
		n := min(len(ids), 500)
		var f filter
		f.in("alert_id", ids[:n])
		rows, err := q.QueryContext(ctx, "SELECT alert_id, tenant, seqs, count, first_seen, last_seen FROM alert_parts WHERE "+f.where[0]+" ORDER BY alert_id, tenant", f.args...)
		if err != nil {
			return fmt.Errorf("meta: reading alerts' parts: %w", err)
		}
		for rows.Next() {
			var (
				id, seqs    string
				p           AlertPart
				first, last int64
			)
			if err := rows.Scan(&id, &p.Tenant, &seqs, &p.Count, &first, &last); err != nil {
				rows.Close()
				return fmt.Errorf("meta: reading alerts' parts: %w", err)
			}
			if err := json.Unmarshal([]byte(seqs), &p.Seqs); err != nil {
				rows.Close()
				return fmt.Errorf("meta: alert %s: %w", id, err)
			}
			p.FirstSeen, p.LastSeen = time.Unix(0, first).UTC(), time.Unix(0, last).UTC()
			parts[id] = append(parts[id], p)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("meta: reading alerts' parts: %w", err)
		}
		ids = ids[n:]
	}
	for i := range as {
		if ps, ok := parts[as[i].ID]; ok {
			as[i].Parts = ps
		}
	}
	return nil
}

func scanAlert(row interface{ Scan(...any) error }) (Alert, error) {
	var (
		a                                     Alert
		tenant, assignee                      sql.NullString
		grp, tags, seqs, facts                string
		firstSeen, lastSeen, created, updated int64
	)
	if err := row.Scan(&a.ID, &tenant, &a.RuleID, &a.Title, &a.Severity, &a.Key, &grp, &tags, &a.Status, &a.Count,
		&firstSeen, &lastSeen, &seqs, &facts, &created, &updated, &a.Reason, &assignee); err != nil {
		return a, fmt.Errorf("meta: reading alerts: %w", err)
	}
	a.Tenant, a.Assignee = tenant.String, assignee.String
	a.FirstSeen, a.LastSeen = time.Unix(0, firstSeen).UTC(), time.Unix(0, lastSeen).UTC()
	a.Created, a.Updated = time.Unix(0, created).UTC(), time.Unix(0, updated).UTC()
	for _, c := range []struct {
		s string
		v any
	}{{grp, &a.Group}, {tags, &a.Tags}, {seqs, &a.Seqs}, {facts, &a.Context}} {
		if err := json.Unmarshal([]byte(c.s), c.v); err != nil {
			return a, fmt.Errorf("meta: alert %s: %w", a.ID, err)
		}
	}
	return a, nil
}

// AlertStatuses returns the statuses of the alerts ids names that exist.
func (db *DB) AlertStatuses(ctx context.Context, ids []string) (map[string]string, error) {
	out := make(map[string]string, len(ids))
	for len(ids) > 0 {
		n := min(len(ids), 500)
		var f filter
		f.in("id", ids[:n])
		rows, err := db.Query(ctx, "SELECT id, status FROM alerts WHERE "+f.where[0], f.args...)
		if err != nil {
			return nil, fmt.Errorf("meta: reading alerts' statuses: %w", err)
		}
		for rows.Next() {
			var id, status string
			if err := rows.Scan(&id, &status); err != nil {
				rows.Close()
				return nil, fmt.Errorf("meta: reading alerts' statuses: %w", err)
			}
			out[id] = status
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("meta: reading alerts' statuses: %w", err)
		}
		ids = ids[n:]
	}
	return out, nil
}

// SetAlertStatus changes an alert's status from t.From to t.To and
// records the transition, in one transaction, and returns the alert,
// whole. It returns ErrNotFound for an alert the scope (tenants, or
// every tenant with nil) does not see, ErrPartial for one across tenants
// it sees only part of, and ErrConflict when the alert's status is no
// longer t.From.
func (db *DB) SetAlertStatus(ctx context.Context, tenants []string, t Transition) (Alert, error) {
	var a Alert
	err := db.Write(ctx, func(tx *sql.Tx) error {
		var err error
		if a, err = wholeAlert(ctx, tx, tenants, t.AlertID); err != nil {
			return err
		}
		if a.Status != t.From {
			return ErrConflict
		}
		a.Status, a.Reason, a.Updated = t.To, t.Reason, t.At
		if _, err := tx.ExecContext(ctx, "UPDATE alerts SET status = $1, reason = $2, updated = $3 WHERE id = $4",
			a.Status, a.Reason, a.Updated.UnixNano(), a.ID); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, "INSERT INTO alert_transitions (alert_id, at, actor, from_status, to_status, reason) VALUES ($1, $2, $3, $4, $5, $6)",
			t.AlertID, t.At.UnixNano(), t.Actor, t.From, t.To, t.Reason)
		return err
	})
	switch {
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrConflict), errors.Is(err, ErrPartial):
		return Alert{}, err
	case err != nil:
		return Alert{}, fmt.Errorf("meta: changing alert %s: %w", t.AlertID, err)
	}
	return a, nil
}

// wholeAlert reads, in a write's transaction, the alert id for a change
// by a scope (tenants, or every tenant with nil): ErrNotFound for one
// the scope does not see, ErrPartial for one across tenants it sees
// only part of.
func wholeAlert(ctx context.Context, tx *sql.Tx, tenants []string, id string) (Alert, error) {
	a, err := scanAlert(tx.QueryRowContext(ctx, "SELECT "+alertColumns+" FROM alerts WHERE id = $1", id))
	if errors.Is(err, sql.ErrNoRows) {
		return Alert{}, ErrNotFound
	}
	if err != nil {
		return Alert{}, err
	}
	as := []Alert{a}
	if err := withParts(ctx, tx, as); err != nil {
		return Alert{}, err
	}
	a = as[0]
	switch seen, whole := coverage(a.Tenant, a.partTenants(), tenants, tenants == nil); {
	case !seen:
		return Alert{}, ErrNotFound
	case !whole:
		return Alert{}, ErrPartial
	}
	a.trim(tenants, tenants == nil)
	return a, nil
}

// SetAlertAssignee assigns an alert to assignee (a principal's name; ""
// for no one), for actor, and returns the alert, whole. It is scoped as
// SetAlertStatus is: ErrNotFound for an alert the scope (tenants, or
// every tenant with nil) does not see, ErrPartial for one across tenants
// it sees only part of. The change is recorded in the alert's history as
// a transition from its status to the same status, whose reason says who
// it went to, so that the history shows it where it shows the changes of
// status (and readers of the history need no second list). Assigning an
// alert to whom it is assigned already changes and records nothing.
func (db *DB) SetAlertAssignee(ctx context.Context, tenants []string, id, assignee, actor string, at time.Time) (Alert, error) {
	var a Alert
	err := db.Write(ctx, func(tx *sql.Tx) error {
		var err error
		if a, err = wholeAlert(ctx, tx, tenants, id); err != nil {
			return err
		}
		if a.Assignee == assignee {
			return nil
		}
		note := "assigned to " + assignee
		switch {
		case assignee == "":
			note = "unassigned from " + a.Assignee
		case a.Assignee != "":
			note += " (from " + a.Assignee + ")"
		}
		a.Assignee, a.Updated = assignee, at
		if _, err := tx.ExecContext(ctx, "UPDATE alerts SET assignee = $1, updated = $2 WHERE id = $3",
			nullString(assignee), at.UnixNano(), id); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, "INSERT INTO alert_transitions (alert_id, at, actor, from_status, to_status, reason) VALUES ($1, $2, $3, $4, $5, $6)",
			id, at.UnixNano(), actor, a.Status, a.Status, note)
		return err
	})
	switch {
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrPartial):
		return Alert{}, err
	case err != nil:
		return Alert{}, fmt.Errorf("meta: assigning alert %s: %w", id, err)
	}
	return a, nil
}

func (a *Alert) partTenants() []string {
	out := make([]string, len(a.Parts))
	for i, p := range a.Parts {
		out[i] = p.Tenant
	}
	return out
}

// AlertDetail returns an alert as the scope (tenants, or every tenant
// with nil) sees it, with its changes of status and its notifications,
// oldest first, or ErrNotFound.
//
// A reader who sees only part of an alert across tenants gets the
// changes of status without their reasons, and no notifications. Who
// changed it, from what to what and when tell the team that the alert
// is being worked and by whom; a reason is free text, written by
// someone who saw every part, that may name another tenant, its
// accounts or its events. Notifications name the channels of the routes
// that took the alert, other teams' among them, and their errors the
// addresses sent to.
func (db *DB) AlertDetail(ctx context.Context, tenants []string, id string) (Alert, []Transition, []Delivery, error) {
	as, err := db.Alerts(ctx, AlertQuery{Tenants: tenants, AllTenants: tenants == nil, ID: id, Limit: 1})
	if err != nil {
		return Alert{}, nil, nil, err
	}
	if len(as) == 0 {
		return Alert{}, nil, nil, ErrNotFound
	}
	a := as[0]
	ts, err := db.AlertTransitions(ctx, id)
	if err != nil {
		return a, nil, nil, err
	}
	if a.Partial {
		for i := range ts {
			ts[i].Reason = ""
		}
		return a, ts, nil, nil
	}
	ds, err := db.AlertDeliveries(ctx, id)
	return a, ts, ds, err
}

// AlertTransitions returns an alert's transitions, oldest first, as
// they are: for a reader of every tenant (AlertDetail is for the
// others).
func (db *DB) AlertTransitions(ctx context.Context, id string) ([]Transition, error) {
	rows, err := db.Query(ctx, "SELECT at, actor, from_status, to_status, reason FROM alert_transitions WHERE alert_id = $1 ORDER BY at", id)
	if err != nil {
		return nil, fmt.Errorf("meta: reading alert %s's transitions: %w", id, err)
	}
	defer rows.Close()
	var out []Transition
	for rows.Next() {
		t := Transition{AlertID: id}
		var at int64
		if err := rows.Scan(&at, &t.Actor, &t.From, &t.To, &t.Reason); err != nil {
			return nil, fmt.Errorf("meta: reading alert %s's transitions: %w", id, err)
		}
		t.At = time.Unix(0, at).UTC()
		out = append(out, t)
	}
	return out, rows.Err()
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// A Suppression keeps detections of a rule whose fields have the given
// values from making alerts, until it expires or is revoked.
type Suppression struct {
	ID string `json:"id"`
	// Tenant is "" for one that applies to every tenant.
	Tenant  string            `json:"tenant,omitempty"`
	RuleID  string            `json:"rule_id"`
	Fields  map[string]string `json:"fields"`
	Reason  string            `json:"reason"`
	Creator string            `json:"creator"`
	Created time.Time         `json:"created"`
	Expires time.Time         `json:"expires,omitzero"` // zero: until revoked
	Hits    int64             `json:"hits"`
	// Revoked is when it was revoked, and RevokedBy by whom.
	Revoked   time.Time `json:"revoked,omitzero"`
	RevokedBy string    `json:"revoked_by,omitempty"`
}

// Active reports whether the suppression applies at t.
func (s *Suppression) Active(t time.Time) bool {
	return s.Revoked.IsZero() && (s.Expires.IsZero() || t.Before(s.Expires))
}

// AddSuppression records a suppression.
func (db *DB) AddSuppression(ctx context.Context, s Suppression) error {
	fields, _ := json.Marshal(orEmptyMap(s.Fields))
	var expires any
	if !s.Expires.IsZero() {
		expires = s.Expires.UnixNano()
	}
	err := db.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO suppressions (id, tenant, rule_id, fields, reason, creator, created, expires, hits) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0)`,
			s.ID, nullString(s.Tenant), s.RuleID, string(fields), s.Reason, s.Creator, s.Created.UnixNano(), expires)
		return err
	})
	if err != nil {
		return fmt.Errorf("meta: recording suppression %s: %w", s.ID, err)
	}
	return nil
}

// Suppressions returns every suppression, revoked and expired ones too,
// that the scope sees: tenants' own and those of every tenant, or with
// nil tenants all of them.
func (db *DB) Suppressions(ctx context.Context, tenants []string) ([]Suppression, error) {
	query := "SELECT id, tenant, rule_id, fields, reason, creator, created, expires, hits, revoked, revoked_by FROM suppressions"
	var f filter
	if tenants != nil {
		query += " WHERE tenant IS NULL"
		if len(tenants) > 0 {
			f.in("tenant", tenants)
			query += " OR " + f.where[0]
		}
	}
	rows, err := db.Query(ctx, query+" ORDER BY created, id", f.args...)
	if err != nil {
		return nil, fmt.Errorf("meta: reading suppressions: %w", err)
	}
	defer rows.Close()
	var out []Suppression
	for rows.Next() {
		var (
			s                 Suppression
			tenant, revokedBy sql.NullString
			fields            string
			created           int64
			expires, revoked  sql.NullInt64
		)
		if err := rows.Scan(&s.ID, &tenant, &s.RuleID, &fields, &s.Reason, &s.Creator, &created, &expires, &s.Hits, &revoked, &revokedBy); err != nil {
			return nil, fmt.Errorf("meta: reading suppressions: %w", err)
		}
		s.Tenant, s.RevokedBy = tenant.String, revokedBy.String
		s.Created = time.Unix(0, created).UTC()
		if expires.Valid {
			s.Expires = time.Unix(0, expires.Int64).UTC()
		}
		if revoked.Valid {
			s.Revoked = time.Unix(0, revoked.Int64).UTC()
		}
		if err := json.Unmarshal([]byte(fields), &s.Fields); err != nil {
			return nil, fmt.Errorf("meta: suppression %s: %w", s.ID, err)
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// RevokeSuppression ends a suppression. It returns ErrNotFound for one
// that does not exist, is revoked already, or that the scope (tenants,
// or every tenant with nil) does not own.
func (db *DB) RevokeSuppression(ctx context.Context, tenants []string, id, by string, at time.Time) error {
	err := db.Write(ctx, func(tx *sql.Tx) error {
		var tenant sql.NullString
		err := tx.QueryRowContext(ctx, "SELECT tenant FROM suppressions WHERE id = $1 AND revoked IS NULL", id).Scan(&tenant)
		if errors.Is(err, sql.ErrNoRows) || err == nil && tenants != nil && (!tenant.Valid || !slices.Contains(tenants, tenant.String)) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, "UPDATE suppressions SET revoked = $1, revoked_by = $2 WHERE id = $3", at.UnixNano(), by, id)
		return err
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("meta: revoking suppression %s: %w", id, err)
	}
	return err
}

// AddSuppressionHits adds to suppressions' counts of what they kept
// from alerting.
func (db *DB) AddSuppressionHits(ctx context.Context, hits map[string]int64) error {
	if len(hits) == 0 {
		return nil
	}
	err := db.Write(ctx, func(tx *sql.Tx) error {
		for id, n := range hits {
			if _, err := tx.ExecContext(ctx, "UPDATE suppressions SET hits = hits + $1 WHERE id = $2", n, id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("meta: counting suppressed detections: %w", err)
	}
	return nil
}

// A Delivery is a notification of an alert, sent or given up on.
type Delivery struct {
	AlertID  string    `json:"alert_id"`
	Channel  string    `json:"channel"`
	Action   string    `json:"action"`
	Status   string    `json:"status"` // delivered, failed
	Attempts int       `json:"attempts"`
	Error    string    `json:"error,omitempty"`
	Queued   time.Time `json:"queued"`
	Done     time.Time `json:"done"`
}

// AddDelivery records a delivery.
func (db *DB) AddDelivery(ctx context.Context, d Delivery) error {
	err := db.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO deliveries (alert_id, channel, action, status, attempts, error, queued, done) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			d.AlertID, d.Channel, d.Action, d.Status, d.Attempts, d.Error, d.Queued.UnixNano(), d.Done.UnixNano())
		return err
	})
	if err != nil {
		return fmt.Errorf("meta: recording a delivery of alert %s: %w", d.AlertID, err)
	}
	return nil
}

// AlertDeliveries returns an alert's deliveries, oldest first: for a
// reader of every tenant (AlertDetail is for the others).
func (db *DB) AlertDeliveries(ctx context.Context, id string) ([]Delivery, error) {
	rows, err := db.Query(ctx, "SELECT channel, action, status, attempts, error, queued, done FROM deliveries WHERE alert_id = $1 ORDER BY queued, done", id)
	if err != nil {
		return nil, fmt.Errorf("meta: reading alert %s's deliveries: %w", id, err)
	}
	defer rows.Close()
	var out []Delivery
	for rows.Next() {
		d := Delivery{AlertID: id}
		var queued, done int64
		if err := rows.Scan(&d.Channel, &d.Action, &d.Status, &d.Attempts, &d.Error, &queued, &done); err != nil {
			return nil, fmt.Errorf("meta: reading alert %s's deliveries: %w", id, err)
		}
		d.Queued, d.Done = time.Unix(0, queued).UTC(), time.Unix(0, done).UTC()
		out = append(out, d)
	}
	return out, rows.Err()
}
