package meta_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/meta"
	"github.com/vigilsec/vigil/meta/metatest"
)

// TestAlertAssignee: an alert is assigned and unassigned within its
// scope only, each change is in its history, saving the alert again
// keeps its assignee, and the queue filters on the assignee and on the
// environment, never showing another tenant's alert, nor telling a
// tenant the environment of another's part of an alert across tenants.
func TestAlertAssignee(t *testing.T) {
	metatest.Each(t, func(t *testing.T, db *meta.DB) {
		ctx := context.Background()
		at := time.Date(2024, 7, 10, 12, 0, 0, 0, time.UTC)
		alertOf := func(id, tenant, env string, updated int) meta.Alert {
			a := meta.Alert{ID: id, Tenant: tenant, RuleID: "r1", Title: "t " + id, Severity: "high", Key: "k-" + id, Status: "open", Count: 1,
				FirstSeen: at, LastSeen: at, Seqs: []uint64{1}, Created: at, Updated: at.Add(time.Duration(updated) * time.Minute)}
			if env != "" {
				a.Context = map[string]string{meta.EnvironmentFact: env, "vigil.actor": "root"}
			}
			return a
		}
		cross := alertOf("x1", "", "prod-a", 0)
		cross.Group = map[string]string{"vigil.src_ip": "198.51.100.20"}
		cross.Parts = []meta.AlertPart{
			{Tenant: "team-a", Seqs: []uint64{1}, Count: 1, FirstSeen: at, LastSeen: at},
			{Tenant: "team-b", Seqs: []uint64{2}, Count: 1, FirstSeen: at, LastSeen: at},
		}
		as := []meta.Alert{alertOf("a1", "team-a", "prod", 4), alertOf("a2", "team-a", "dev", 3), alertOf("a3", "team-a", "", 2),
			alertOf("b1", "team-b", "prod", 1), cross}
		if err := db.SaveAlerts(ctx, as); err != nil {
			t.Fatal(err)
		}

		// Assigning, within the scope only.
		for _, tc := range []struct {
			name     string
			tenants  []string
			id, who  string
			err      error
			assignee string
		}{
			{"own alert", []string{"team-a"}, "a1", "ann", nil, "ann"},
			{"again, to the same", []string{"team-a"}, "a1", "ann", nil, "ann"},
			{"another tenant's", []string{"team-b"}, "a1", "bea", meta.ErrNotFound, ""},
			{"no such alert", []string{"team-a"}, "nope", "ann", meta.ErrNotFound, ""},
			{"part of one across tenants", []string{"team-b"}, "x1", "bea", meta.ErrPartial, ""},
			{"one across tenants, whole", []string{"team-a", "team-b"}, "x1", "carol", nil, "carol"},
			{"every tenant", nil, "b1", "dan", nil, "dan"},
			{"to another", []string{"team-a"}, "a2", "ann", nil, "ann"},
		} {
			got, err := db.SetAlertAssignee(ctx, tc.tenants, tc.id, tc.who, "lead", at.Add(time.Hour))
			if !errors.Is(err, tc.err) || err == nil && (got.Assignee != tc.assignee || got.ID != tc.id || got.Partial) {
				t.Errorf("%s: %+v, %v; want assignee %q, error %v", tc.name, got, err, tc.assignee, tc.err)
			}
		}
		if _, err := db.SetAlertAssignee(ctx, []string{"team-a"}, "a2", "bob", "lead", at.Add(2*time.Hour)); err != nil {
			t.Fatal(err)
		}
		// The history says who assigned whom, and the status is unchanged.
		ts, err := db.AlertTransitions(ctx, "a2")
		if err != nil || len(ts) != 2 || ts[0].Reason != "assigned to ann" || ts[1].Reason != "assigned to bob (from ann)" ||
			ts[1].From != "open" || ts[1].To != "open" || ts[1].Actor != "lead" {
			t.Errorf("a2's history: %+v, %v", ts, err)
		}
		if ts, err := db.AlertTransitions(ctx, "a1"); err != nil || len(ts) != 1 {
			t.Errorf("assigning to the assignee recorded a change: %+v, %v", ts, err)
		}
		// Saving the alert again, as each hit does, keeps its assignee.
		a1 := alertOf("a1", "team-a", "prod", 5)
		a1.Count = 7
		if err := db.SaveAlerts(ctx, []meta.Alert{a1}); err != nil {
			t.Fatal(err)
		}
		if got, err := db.Alerts(ctx, meta.AlertQuery{AllTenants: true, ID: "a1"}); err != nil || len(got) != 1 || got[0].Assignee != "ann" || got[0].Count != 7 {
			t.Errorf("a1 saved again: %+v, %v", got, err)
		}
		// Unassigning.
		if got, err := db.SetAlertAssignee(ctx, nil, "b1", "", "lead", at.Add(3*time.Hour)); err != nil || got.Assignee != "" {
			t.Errorf("unassigning: %+v, %v", got, err)
		}
		if ts, _ := db.AlertTransitions(ctx, "b1"); len(ts) != 2 || ts[1].Reason != "unassigned from dan" {
			t.Errorf("b1's history: %+v", ts)
		}

		ids := func(q meta.AlertQuery) string {
			t.Helper()
			as, err := db.Alerts(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, a := range as {
				out = append(out, a.ID)
			}
			return strings.Join(out, " ")
		}
		teamA, teamB := []string{"team-a"}, []string{"team-b"}
		for _, tc := range []struct {
			name string
			q    meta.AlertQuery
			want string
		}{
			{"team-a, prod", meta.AlertQuery{Tenants: teamA, Environment: "prod"}, "a1"},
			{"team-b, prod", meta.AlertQuery{Tenants: teamB, Environment: "prod"}, "b1"},
			{"every tenant, prod", meta.AlertQuery{AllTenants: true, Environment: "prod"}, "b1 a1"},
			{"team-a, dev", meta.AlertQuery{Tenants: teamA, Environment: "dev"}, "a2"},
			{"team-b, dev", meta.AlertQuery{Tenants: teamB, Environment: "dev"}, ""},
			{"no such environment", meta.AlertQuery{AllTenants: true, Environment: "staging"}, ""},
			// x1's environment is that of team-a's event.
			{"team-a and team-b, x1's environment", meta.AlertQuery{Tenants: []string{"team-a", "team-b"}, Environment: "prod-a"}, "x1"},
			{"team-b, x1's environment", meta.AlertQuery{Tenants: teamB, Environment: "prod-a"}, ""},
			{"team-a, ann's", meta.AlertQuery{Tenants: teamA, Assignee: "ann"}, "a1"},
			{"team-b, ann's", meta.AlertQuery{Tenants: teamB, Assignee: "ann"}, ""},
			{"team-a, bob's", meta.AlertQuery{Tenants: teamA, Assignee: "bob"}, "a2"},
			{"team-a, unassigned", meta.AlertQuery{Tenants: teamA, Assignee: meta.Unassigned}, "a3"},
			{"team-b, unassigned", meta.AlertQuery{Tenants: teamB, Assignee: meta.Unassigned}, "b1"},
			{"every tenant, carol's", meta.AlertQuery{AllTenants: true, Assignee: "carol"}, "x1"},
			{"team-a, prod, ann's", meta.AlertQuery{Tenants: teamA, Environment: "prod", Assignee: "ann"}, "a1"},
			{"team-a, dev, ann's", meta.AlertQuery{Tenants: teamA, Environment: "dev", Assignee: "ann"}, ""},
			{"no scope, prod", meta.AlertQuery{Environment: "prod"}, ""},
		} {
			if got := ids(tc.q); got != tc.want {
				t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
			}
		}
		// A reader of part of x1 sees who works it, as it sees who
		// changed it.
		if as, err := db.Alerts(ctx, meta.AlertQuery{Tenants: teamB, ID: "x1"}); err != nil || len(as) != 1 || !as[0].Partial || as[0].Assignee != "carol" {
			t.Errorf("team-b's part of x1: %+v, %v", as, err)
		}
	})
}

// TestCasesOfAlert: the cases holding an alert are those whose timeline
// has it, among those the scope sees.
func TestCasesOfAlert(t *testing.T) {
	metatest.Each(t, func(t *testing.T, db *meta.DB) {
		ctx := context.Background()
		at := time.Date(2024, 7, 10, 12, 0, 0, 0, time.UTC)
		for _, c := range []struct {
			id, tenant string
			entries    []meta.CaseEntry
			updated    int
		}{
			{"c1", "team-a", []meta.CaseEntry{{Kind: "alert", Ref: "a1"}}, 1},
			{"c2", "team-a", []meta.CaseEntry{{Kind: "note", Text: "a1"}, {Kind: "export", Ref: "a1"}}, 2},
			{"c3", "", []meta.CaseEntry{{Kind: "alert", Ref: "a2"}, {Kind: "alert", Ref: "a1"}}, 3},
			{"c4", "team-b", []meta.CaseEntry{{Kind: "alert", Ref: "a2"}}, 4},
			{"c5", "team-a", []meta.CaseEntry{{Kind: "alert", Ref: "a1"}, {Kind: "alert", Ref: "a1"}}, 5},
		} {
			for i := range c.entries {
				c.entries[i].At, c.entries[i].Actor = at.Add(time.Duration(i)), "ann"
			}
			cs := meta.Case{ID: c.id, Tenant: c.tenant, Title: "case " + c.id, Status: "open", Owner: "ann", Creator: "ann", Created: at,
				Updated: at.Add(time.Duration(c.updated) * time.Minute)}
			if err := db.AddCase(ctx, cs, c.entries); err != nil {
				t.Fatal(err)
			}
		}
		for _, tc := range []struct {
			name    string
			tenants []string
			all     bool
			alert   string
			want    string
		}{
			{"team-a", []string{"team-a"}, false, "a1", "c5 c1"},
			{"every tenant", nil, true, "a1", "c5 c3 c1"},
			{"team-b, a1", []string{"team-b"}, false, "a1", ""},
			{"team-b, a2", []string{"team-b"}, false, "a2", "c4"},
			{"no scope", nil, false, "a1", ""},
			{"no such alert", nil, true, "nope", ""},
		} {
			cs, err := db.CasesOfAlert(ctx, tc.tenants, tc.all, tc.alert)
			var got []string
			for _, c := range cs {
				got = append(got, c.ID)
			}
			if err != nil || strings.Join(got, " ") != tc.want {
				t.Errorf("%s: %v, %v; want %q", tc.name, got, err, tc.want)
			}
		}
	})
}
