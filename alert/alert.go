// Package alert turns detections into alerts: it groups the hits of one
// rule on one thing (a dedup key: the rule, the tenant and the values of
// chosen fields) within a window into one alert with a count, keeps
// suppressed hits from alerting, and moves alerts through their
// lifecycle, open → acknowledged → resolved (or closed as a false
// positive), recording who did what and when. Alerts live in the
// metadata database.
package alert

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/meta"
)

// The statuses of an alert.
const (
	Open         = "open"
	Acknowledged = "acknowledged"
	Resolved     = "resolved"
	Closed       = "closed" // a false positive, with a reason
)

// next says which statuses an alert may move to from each. A resolved or
// closed alert may be reopened: what was thought over was not.
var next = map[string][]string{
	Open:         {Acknowledged, Resolved, Closed},
	Acknowledged: {Open, Resolved, Closed},
	Resolved:     {Open},
	Closed:       {Open},
}

// MaxSeqs bounds the event seqs an alert lists; its count goes on.
const MaxSeqs = 1000

// Config is how detections become alerts.
type Config struct {
	// Window is how long after an alert's last event a new hit of its
	// key still joins it (default an hour). An alert that is resolved or
	// closed takes no more hits: the next one opens a new alert.
	Window time.Duration
	// GroupBy are the fields whose values, with the rule and the tenant,
	// make the dedup key: vigil's normalized fields (vigil.actor,
	// vigil.src_ip, …) or fields the rule names. Default: vigil.actor.
	// A correlation's alerts are keyed by its group-by values.
	GroupBy []string
	// Rules override GroupBy and the severity, by rule id.
	Rules map[string]RuleConfig
}

// RuleConfig is the alerting of one rule.
type RuleConfig struct {
	GroupBy  []string
	Severity string
}

// Severities are the levels of Sigma rules, lowest first, which are the
// severities of their alerts.
var Severities = []string{"informational", "low", "medium", "high", "critical"}

// A Manager makes alerts of detections. It is a detect.Sink. Its methods
// are safe for concurrent use.
type Manager struct {
	db  *meta.DB
	cfg Config
	log *slog.Logger
	now func() time.Time
	// OnNew, if set, is called with the alerts each batch of detections
	// opened, once they are saved: the alerts to notify about, and to run
	// playbooks on, with the event that opened each. OnChange,
	// if set, is called with an alert whose status changed.
	OnNew    func(as []meta.Alert, events []*event.Event)
	OnChange func(meta.Alert)

	mu sync.Mutex
	// active are the alerts new hits may join, by dedup key.
	active map[string]*meta.Alert
	// suppressions are the suppressions in force, refreshed when
	// changed through the manager and every minute.
	suppressions []meta.Suppression
	loaded       time.Time
	// Suppressed counts detections kept from alerting.
	suppressed int64
}

// NewManager returns a Manager writing to db, which resumes grouping
// into the alerts db holds that are still open.
func NewManager(ctx context.Context, db *meta.DB, cfg Config, logger *slog.Logger) (*Manager, error) {
	if cfg.Window <= 0 {
		cfg.Window = time.Hour
	}
	if cfg.GroupBy == nil {
		cfg.GroupBy = []string{"vigil.actor"}
	}
	for id, rc := range cfg.Rules {
		if rc.Severity != "" && !slices.Contains(Severities, rc.Severity) {
			return nil, fmt.Errorf("alert: rule %s: unknown severity %q (%s)", id, rc.Severity, strings.Join(Severities, ", "))
		}
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m := &Manager{db: db, cfg: cfg, log: logger, now: time.Now, active: map[string]*meta.Alert{}}
	// Alerts that were taking hits when vigil stopped go on taking them.
	as, err := db.Alerts(ctx, meta.AlertQuery{AllTenants: true, Status: []string{Open, Acknowledged}, Limit: 10_000})
	if err != nil {
		return nil, err
	}
	for i := range as {
		a := &as[i]
		if cur := m.active[a.Key]; cur == nil || a.LastSeen.After(cur.LastSeen) {
			m.active[a.Key] = a
		}
	}
	return m, nil
}

// Detected makes alerts of detections: each joins the active alert of
// its dedup key when the alert's last event is within the window, and
// opens a new one otherwise. The alerts changed are saved in one
// transaction; the ones opened go to OnNew.
func (m *Manager) Detected(ds []detect.Detection) {
	if err := m.detected(context.Background(), ds); err != nil {
		m.log.Error("recording alerts", "err", err)
	}
}

func (m *Manager) detected(ctx context.Context, ds []detect.Detection) error {
	if len(ds) == 0 {
		return nil
	}
	m.mu.Lock()
	now := m.now().UTC()
	if now.Sub(m.loaded) > time.Minute {
		if err := m.loadSuppressions(ctx, now); err != nil {
			m.log.Error("reading suppressions; the ones read before stay in force", "err", err)
		}
	}
	type keyed struct {
		tenant, key string
		group       map[string]string
	}
	hs := make([]keyed, len(ds))
	var joined []string // the alerts the batch would join
	for i := range ds {
		d := &ds[i]
		h := keyed{tenant: d.Tenant(), group: m.group(d)}
		h.key = dedupKey(d.Rule.ID, h.tenant, h.group)
		if a := m.active[h.key]; a != nil {
			joined = append(joined, a.ID)
		}
		hs[i] = h
	}
	// An alert resolved or closed elsewhere (vigil alerts on the command
	// line, another node) takes no more hits either.
	if len(joined) > 0 {
		statuses, err := m.db.AlertStatuses(ctx, joined)
		if err != nil {
			m.mu.Unlock()
			return err
		}
		for _, h := range hs {
			if a := m.active[h.key]; a != nil {
				if st, ok := statuses[a.ID]; ok && st != Open && st != Acknowledged {
					delete(m.active, h.key)
				}
			}
		}
	}
	changed := map[string]*meta.Alert{}
	var (
		opened []*meta.Alert
		firsts []*event.Event // the event that opened each
	)
	hits := map[string]int64{}
	for i := range ds {
		d, tenant, group, key := &ds[i], hs[i].tenant, hs[i].group, hs[i].key
		if s := m.suppressedBy(d, tenant, group, now); s != "" {
			hits[s]++
			m.suppressed++
			continue
		}
		at, seqs := hitOf(d)
		a := m.active[key]
		if a == nil || at.Sub(a.LastSeen) > m.cfg.Window {
			a = &meta.Alert{
				ID: newID(now), Tenant: tenant, RuleID: d.Rule.ID, Title: d.Rule.Title, Severity: m.severity(d.Rule),
				Key: key, Group: group, Context: facts(d), Tags: d.Rule.Tags, Status: Open, FirstSeen: at, LastSeen: at, Created: now,
			}
			m.active[key] = a
			opened, firsts = append(opened, a), append(firsts, d.Event)
		}
		a.Count++
		if at.Before(a.FirstSeen) {
			a.FirstSeen = at
		}
		if at.After(a.LastSeen) {
			a.LastSeen = at
		}
		for _, s := range seqs {
			if len(a.Seqs) < MaxSeqs {
				a.Seqs = append(a.Seqs, s)
			}
		}
		if tenant == "" {
			addParts(a, d.Parts())
		}
		a.Updated = now
		changed[a.ID] = a
	}
	save := make([]meta.Alert, 0, len(changed))
	for _, a := range changed {
		save = append(save, snapshot(a))
	}
	slices.SortFunc(save, func(a, b meta.Alert) int { return strings.Compare(a.ID, b.ID) })
	// Saved under the lock, so that no later count of an alert is
	// overwritten by an earlier one.
	err := m.db.SaveAlerts(ctx, save)
	if err == nil {
		if err := m.db.AddSuppressionHits(ctx, hits); err != nil {
			m.log.Error("counting suppressed detections", "err", err)
		}
	} else {
		// An alert opened but not saved was never notified: forget it,
		// so that the next hit of its key opens it again, and notifies.
		// (The hits of alerts saved before are in their counts, saved
		// with the next change.)
		for _, a := range opened {
			if m.active[a.Key] == a {
				delete(m.active, a.Key)
			}
		}
		opened, firsts = nil, nil
	}
	news := make([]meta.Alert, len(opened))
	for i, a := range opened {
		news[i] = snapshot(a)
	}
	m.forget()
	m.mu.Unlock()
	if err != nil {
		return err
	}
	if m.OnNew != nil && len(news) > 0 {
		m.OnNew(news, firsts)
	}
	return nil
}

// snapshot copies an active alert for those who read it outside the
// lock: its parts, which later hits change in place, are copied too.
func snapshot(a *meta.Alert) meta.Alert {
	c := *a
	c.Parts = slices.Clone(a.Parts)
	return c
}

// addParts adds the events of a correlation across tenants to its
// alert's parts: each tenant's count, first seqs and times, so that the
// tenant is shown its own share of the alert (see meta.Alert.Partial).
func addParts(a *meta.Alert, ps []detect.Part) {
	for _, p := range ps {
		i := slices.IndexFunc(a.Parts, func(ap meta.AlertPart) bool { return ap.Tenant == p.Tenant })
		if i < 0 {
			a.Parts = append(a.Parts, meta.AlertPart{Tenant: p.Tenant})
			i = len(a.Parts) - 1
		}
		ap := &a.Parts[i]
		for _, e := range p.Events {
			at := e.Time.UTC()
			if ap.Count == 0 || at.Before(ap.FirstSeen) {
				ap.FirstSeen = at
			}
			if at.After(ap.LastSeen) {
				ap.LastSeen = at
			}
			ap.Count++
			if len(ap.Seqs) < MaxSeqs {
				ap.Seqs = append(ap.Seqs, e.Seq)
			}
		}
	}
	slices.SortFunc(a.Parts, func(x, y meta.AlertPart) int { return strings.Compare(x.Tenant, y.Tenant) })
}

// maxActive is how many alerts the manager keeps taking hits before it
// forgets those whose window has passed.
const maxActive = 10_000

// forget drops, once there are many, the active alerts whose last event
// is more than the window before the newest event seen: no hit joins
// them any more.
func (m *Manager) forget() {
	if len(m.active) <= maxActive {
		return
	}
	var newest time.Time
	for _, a := range m.active {
		if a.LastSeen.After(newest) {
			newest = a.LastSeen
		}
	}
	for k, a := range m.active {
		if newest.Sub(a.LastSeen) > m.cfg.Window {
			delete(m.active, k)
		}
	}
}

// factFields are the event's facts an alert keeps for its notifications.
var factFields = []string{"vigil.actor", "vigil.src_ip", "vigil.account", "vigil.environment", "vigil.action"}

// facts returns the key facts of a detection's event (of a correlation:
// its group's values of them), those it has.
func facts(d *detect.Detection) map[string]string {
	out := map[string]string{}
	for _, f := range factFields {
		v := d.Group[f]
		if d.Event != nil {
			v, _ = detect.Normalized(d.Event, f)
		}
		if v != "" {
			out[f] = v
		}
	}
	return out
}

// hitOf returns the time of a detection's (last) event and the seqs of
// its events.
func hitOf(d *detect.Detection) (time.Time, []uint64) {
	if d.Event != nil {
		return d.Event.Time.UTC(), []uint64{d.Event.Seq}
	}
	var (
		at   time.Time
		seqs []uint64
	)
	for _, e := range d.Events {
		if e.Time.After(at) {
			at = e.Time
		}
		seqs = append(seqs, e.Seq)
	}
	return at.UTC(), seqs
}

// group returns the field values a detection's dedup key is made of.
func (m *Manager) group(d *detect.Detection) map[string]string {
	if d.Event == nil {
		return d.Group // a correlation: its own group-by values
	}
	fields := m.cfg.GroupBy
	if rc, ok := m.cfg.Rules[d.Rule.ID]; ok && rc.GroupBy != nil {
		fields = rc.GroupBy
	}
	g := make(map[string]string, len(fields))
	for _, f := range fields {
		if v, ok := detect.Normalized(d.Event, f); ok {
			g[f] = v
		} else if v, ok := d.Fields[f]; ok {
			g[f] = v
		} else {
			g[f] = ""
		}
	}
	return g
}

// dedupKey is the rule, the tenant and the group's values, each
// length-prefixed so that no two keys run together.
func dedupKey(rule, tenant string, group map[string]string) string {
	var b strings.Builder
	add := func(s string) {
		b.WriteString(strconv.Itoa(len(s)))
		b.WriteByte(':')
		b.WriteString(s)
	}
	add(rule)
	add(tenant)
	for _, k := range sortedKeys(group) {
		add(k)
		add(group[k])
	}
	return b.String()
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func (m *Manager) severity(r *detect.Rule) string {
	if rc, ok := m.cfg.Rules[r.ID]; ok && rc.Severity != "" {
		return rc.Severity
	}
	if slices.Contains(Severities, r.Level) {
		return r.Level
	}
	return "medium" // a rule without a level
}

// suppressedBy returns the id of a suppression in force that matches the
// detection, or "".
func (m *Manager) suppressedBy(d *detect.Detection, tenant string, group map[string]string, now time.Time) string {
	for i := range m.suppressions {
		s := &m.suppressions[i]
		if s.RuleID != d.Rule.ID || s.Tenant != "" && s.Tenant != tenant || !s.Active(now) {
			continue
		}
		match := true
		for f, want := range s.Fields {
			got, ok := group[f]
			if !ok && d.Event != nil {
				if got, ok = detect.Normalized(d.Event, f); !ok {
					got, ok = d.Fields[f]
				}
			}
			if !ok || got != want {
				match = false
				break
			}
		}
		if match {
			return s.ID
		}
	}
	return ""
}

func (m *Manager) loadSuppressions(ctx context.Context, now time.Time) error {
	ss, err := m.db.Suppressions(ctx, nil)
	if err != nil {
		return err
	}
	m.suppressions = slices.DeleteFunc(ss, func(s meta.Suppression) bool { return !s.Active(now) })
	m.loaded = now
	return nil
}

// Suppressed returns how many detections suppressions have kept from
// alerting since the manager started.
func (m *Manager) Suppressed() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.suppressed
}

// ErrTransition is returned for a change of status the lifecycle does
// not allow.
var ErrTransition = errors.New("alert: not allowed")

// SetStatus moves an alert to a status, for actor, with a reason (which
// closing requires). tenants scope which alerts actor may change (nil:
// every tenant's); an alert across tenants is changed only by a scope
// that sees all of its tenants, and others get meta.ErrPartial. A
// resolved or closed alert takes no more hits.
func (m *Manager) SetStatus(ctx context.Context, tenants []string, id, to, actor, reason string) (meta.Alert, error) {
	if _, ok := next[to]; !ok {
		return meta.Alert{}, fmt.Errorf("%w: unknown status %q", ErrTransition, to)
	}
	if to == Closed && strings.TrimSpace(reason) == "" {
		return meta.Alert{}, fmt.Errorf("%w: closing an alert as a false positive needs a reason", ErrTransition)
	}
	cur, err := m.alert(ctx, tenants, id)
	if err != nil {
		return meta.Alert{}, err
	}
	if cur.Partial {
		return meta.Alert{}, fmt.Errorf("alert %s: %w", id, meta.ErrPartial)
	}
	from := cur.Status
	if !slices.Contains(next[from], to) {
		return meta.Alert{}, fmt.Errorf("%w: an alert %s cannot become %s", ErrTransition, from, to)
	}
	a, err := m.db.SetAlertStatus(ctx, tenants, meta.Transition{AlertID: id, At: m.now().UTC(), Actor: actor, From: from, To: to, Reason: reason})
	if err != nil {
		return a, err
	}
	m.mu.Lock()
	switch to {
	case Resolved, Closed:
		if cur := m.active[a.Key]; cur != nil && cur.ID == a.ID {
			delete(m.active, a.Key)
		}
	case Open, Acknowledged:
		if cur := m.active[a.Key]; cur == nil || cur.ID == a.ID || a.LastSeen.After(cur.LastSeen) {
			active := snapshot(&a)
			m.active[a.Key] = &active
		}
	}
	if cur := m.active[a.Key]; cur != nil && cur.ID == a.ID {
		cur.Status = a.Status
	}
	m.mu.Unlock()
	if m.OnChange != nil {
		m.OnChange(a)
	}
	return a, nil
}

// ErrAssignee is returned for an assignee that is no name: too long, or
// holding control characters.
var ErrAssignee = errors.New("alert: not a name to assign to")

// maxAssignee bounds an assignee's name, which the queue shows in a
// column.
const maxAssignee = 200

// Assign assigns an alert to assignee, the principal name of the person
// to work it ("" for no one), for actor, recording the change in the
// alert's history. Scoping is SetStatus's: tenants (nil: every tenant's)
// are the alerts actor may change, and an alert across tenants that
// they see only part of gets meta.ErrPartial. The assignee is not
// checked against the directory: the alert layer does not know it, and
// a name that no longer logs in must still be shown for the alerts it
// held.
func (m *Manager) Assign(ctx context.Context, tenants []string, id, assignee, actor string) (meta.Alert, error) {
	assignee = strings.TrimSpace(assignee)
	if len(assignee) > maxAssignee || strings.ContainsFunc(assignee, unicode.IsControl) {
		return meta.Alert{}, fmt.Errorf("%w: %d bytes, at most %d, without control characters", ErrAssignee, len(assignee), maxAssignee)
	}
	if assignee == meta.Unassigned {
		return meta.Alert{}, fmt.Errorf("%w: %q is the queue's filter for alerts assigned to no one", ErrAssignee, assignee)
	}
	a, err := m.db.SetAlertAssignee(ctx, tenants, id, assignee, actor, m.now().UTC())
	if err != nil {
		return a, fmt.Errorf("alert %s: %w", id, err)
	}
	return a, nil
}

// CasesOfAlert returns the cases holding the alert id that tenants (nil:
// every tenant) see.
func (m *Manager) CasesOfAlert(ctx context.Context, tenants []string, id string) ([]meta.Case, error) {
	return m.db.CasesOfAlert(ctx, tenants, tenants == nil, id)
}

// Suppress records a suppression and puts it in force at once.
func (m *Manager) Suppress(ctx context.Context, s meta.Suppression) (meta.Suppression, error) {
	if s.RuleID == "" {
		return s, errors.New("alert: a suppression names a rule")
	}
	if strings.TrimSpace(s.Reason) == "" {
		return s, errors.New("alert: a suppression needs a reason")
	}
	now := m.now().UTC()
	if !s.Expires.IsZero() && !s.Expires.After(now) {
		return s, errors.New("alert: the suppression would expire before it starts")
	}
	s.ID, s.Created = newID(now), now
	if err := m.db.AddSuppression(ctx, s); err != nil {
		return s, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return s, m.loadSuppressions(ctx, now)
}

// Unsuppress revokes a suppression, for by.
func (m *Manager) Unsuppress(ctx context.Context, tenants []string, id, by string) error {
	now := m.now().UTC()
	if err := m.db.RevokeSuppression(ctx, tenants, id, by, now); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.loadSuppressions(ctx, now)
}

// newID returns an id that sorts by creation time.
func newID(t time.Time) string {
	var b [6]byte
	rand.Read(b[:])
	return fmt.Sprintf("%016x", t.UnixNano()) + hex.EncodeToString(b[:])
}

// Alerts returns the alerts q selects (its scope applied by the
// database).
func (m *Manager) Alerts(ctx context.Context, q meta.AlertQuery) ([]meta.Alert, error) {
	return m.db.Alerts(ctx, q)
}

// AlertDetail returns an alert, its changes of status and its
// notifications, oldest first, if tenants (nil: every tenant) see it,
// as they see it (see meta.DB.AlertDetail).
func (m *Manager) AlertDetail(ctx context.Context, tenants []string, id string) (meta.Alert, []meta.Transition, []meta.Delivery, error) {
	return m.db.AlertDetail(ctx, tenants, id)
}

// alert returns the alert id, if tenants (nil: every tenant) see it, as
// they see it.
func (m *Manager) alert(ctx context.Context, tenants []string, id string) (meta.Alert, error) {
	as, err := m.db.Alerts(ctx, meta.AlertQuery{Tenants: tenants, AllTenants: tenants == nil, ID: id, Limit: 1})
	if err != nil {
		return meta.Alert{}, err
	}
	if len(as) == 0 {
		return meta.Alert{}, meta.ErrNotFound
	}
	return as[0], nil
}

// Suppressions returns the suppressions tenants (nil: every tenant) see,
// revoked and expired ones included.
func (m *Manager) Suppressions(ctx context.Context, tenants []string) ([]meta.Suppression, error) {
	return m.db.Suppressions(ctx, tenants)
}
