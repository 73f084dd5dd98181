package alert

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/vigilsec/vigil/meta"
)

// The statuses of a case.
const (
	CaseOpen          = "open"
	CaseInvestigating = "investigating"
	CaseClosed        = "closed"
)

// caseNext says which statuses a case may move to from each.
var caseNext = map[string][]string{
	CaseOpen:          {CaseInvestigating, CaseClosed},
	CaseInvestigating: {CaseOpen, CaseClosed},
	CaseClosed:        {CaseOpen},
}

// The kinds of a case's timeline entries. Opened, status and owner
// record changes; the others are what was added.
const (
	EntryOpened = "opened"
	EntryAlert  = "alert"
	EntryNote   = "note"
	EntryAction = "action" // something done about the incident
	EntryExport = "export" // an evidence bundle exported
	EntryStatus = "status"
	EntryOwner  = "owner"
)

// ErrCase is returned for a change to a case that is not allowed.
var ErrCase = errors.New("alert: case")

// OpenCase opens a case titled title, owned by owner (by default its
// opener, actor), with the given alerts, for a caller who sees tenants
// (nil: every tenant). Its tenant is the caller's, or for a caller who
// sees every tenant, the tenant its alerts share ("" when they do not).
// An alert across tenants that the caller sees only part of is refused
// with meta.ErrPartial (see caseAlert).
func (m *Manager) OpenCase(ctx context.Context, tenants []string, title, owner, actor string, alertIDs []string) (meta.Case, error) {
	title = strings.TrimSpace(title)
	if title == "" {
		return meta.Case{}, fmt.Errorf("%w: a case needs a title", ErrCase)
	}
	var as []meta.Alert
	for _, id := range alertIDs {
		a, err := m.caseAlert(ctx, tenants, id)
		if err != nil {
			return meta.Case{}, err
		}
		as = append(as, a)
	}
	tenant := ""
	switch {
	case len(tenants) == 1:
		tenant = tenants[0]
	case tenants == nil && len(as) > 0:
		tenant = as[0].Tenant
		for _, a := range as {
			if a.Tenant != tenant {
				tenant = ""
			}
		}
	}
	now := m.now().UTC()
	c := meta.Case{ID: newID(now), Tenant: tenant, Title: title, Status: CaseOpen, Owner: cmp.Or(owner, actor), Creator: actor, Created: now, Updated: now}
	entries := []meta.CaseEntry{{At: now, Actor: actor, Kind: EntryOpened, Text: title}}
	for i, a := range as {
		// A nanosecond apart, so that the timeline keeps their order.
		entries = append(entries, meta.CaseEntry{At: now.Add(time.Duration(i + 1)), Actor: actor, Kind: EntryAlert, Ref: a.ID, Text: a.Title})
	}
	return c, m.db.AddCase(ctx, c, entries)
}

// AddToCase adds to a case's timeline: an alert (ref its id, which the
// caller must see whole, see caseAlert), a note or an action taken
// (text), or an evidence export (ref its name, text what it holds). A
// case holds the alerts of its tenant; a case across tenants, any.
func (m *Manager) AddToCase(ctx context.Context, tenants []string, id, kind, ref, text, actor string) (meta.Case, error) {
	e := meta.CaseEntry{Actor: actor, Kind: kind, Ref: ref, Text: strings.TrimSpace(text)}
	var alertTenant string
	switch kind {
	case EntryAlert:
		a, err := m.caseAlert(ctx, tenants, ref)
		if err != nil {
			return meta.Case{}, err
		}
		e.Text, alertTenant = a.Title, a.Tenant
	case EntryNote, EntryAction:
		if e.Text == "" {
			return meta.Case{}, fmt.Errorf("%w: a %s needs text", ErrCase, kind)
		}
	case EntryExport:
		if ref == "" {
			return meta.Case{}, fmt.Errorf("%w: an export needs the name of what was exported", ErrCase)
		}
	default:
		return meta.Case{}, fmt.Errorf("%w: cannot add a %q (alert, note, action or export)", ErrCase, kind)
	}
	return m.db.UpdateCase(ctx, tenants, id, func(c *meta.Case) ([]meta.CaseEntry, error) {
		// One tenant's case showing another's alert, or a correlation
		// across tenants, would tell the case's readers of it (its
		// title), and the playbooks run on the alert would write their
		// acts into the case.
		if kind == EntryAlert && c.Tenant != "" && alertTenant != c.Tenant {
			what := "a correlation across tenants"
			if alertTenant != "" {
				what = "of tenant " + alertTenant
			}
			return nil, fmt.Errorf("%w: alert %s is %s, and case %s is of tenant %s: a case holds its own tenant's alerts; open a case across tenants for it",
				ErrCase, ref, what, c.ID, c.Tenant)
		}
		c.Updated = m.now().UTC()
		e.At = c.Updated
		return []meta.CaseEntry{e}, nil
	})
}

// caseAlert returns the alert id to put in a case, if the caller who
// sees tenants (nil: every tenant) sees it whole. An alert across
// tenants that a team sees part of is the work of those who see all of
// it: in one team's case, its title and the acts of playbooks run on it
// would reach that team, and a case across tenants is the CSIRT's.
func (m *Manager) caseAlert(ctx context.Context, tenants []string, id string) (meta.Alert, error) {
	a, err := m.alert(ctx, tenants, id)
	if err != nil {
		return a, fmt.Errorf("alert %s: %w", id, err)
	}
	if a.Partial {
		return a, fmt.Errorf("alert %s: %w; only those who see all of them may put it in a case", id, meta.ErrPartial)
	}
	return a, nil
}

// SetCase changes a case's status or owner (an empty one is left as it
// is), recording each change in its timeline.
func (m *Manager) SetCase(ctx context.Context, tenants []string, id, status, owner, actor string) (meta.Case, error) {
	if status != "" {
		if _, ok := caseNext[status]; !ok {
			return meta.Case{}, fmt.Errorf("%w: unknown status %q (open, investigating, closed)", ErrCase, status)
		}
	}
	return m.db.UpdateCase(ctx, tenants, id, func(c *meta.Case) ([]meta.CaseEntry, error) {
		now := m.now().UTC()
		var es []meta.CaseEntry
		if status != "" && status != c.Status {
			if !slices.Contains(caseNext[c.Status], status) {
				return nil, fmt.Errorf("%w: a case %s cannot become %s", ErrCase, c.Status, status)
			}
			es = append(es, meta.CaseEntry{At: now, Actor: actor, Kind: EntryStatus, Ref: status, Text: c.Status + " → " + status})
			c.Status = status
		}
		if owner != "" && owner != c.Owner {
			es = append(es, meta.CaseEntry{At: now.Add(time.Duration(len(es))), Actor: actor, Kind: EntryOwner, Ref: owner, Text: c.Owner + " → " + owner})
			c.Owner = owner
		}
		if len(es) == 0 {
			return nil, fmt.Errorf("%w: nothing to change", ErrCase)
		}
		c.Updated = now
		return es, nil
	})
}

// Cases returns the cases q selects (its scope applied by the database).
func (m *Manager) Cases(ctx context.Context, q meta.CaseQuery) ([]meta.Case, error) {
	return m.db.Cases(ctx, q)
}

// Case returns a case and its timeline, if tenants (nil: every tenant)
// see it.
func (m *Manager) Case(ctx context.Context, tenants []string, id string) (meta.Case, []meta.CaseEntry, error) {
	cs, err := m.db.Cases(ctx, meta.CaseQuery{Tenants: tenants, AllTenants: tenants == nil, ID: id, Limit: 1})
	if err != nil {
		return meta.Case{}, nil, err
	}
	if len(cs) == 0 {
		return meta.Case{}, nil, meta.ErrNotFound
	}
	es, err := m.db.CaseEntries(ctx, id)
	return cs[0], es, err
}
