package alert

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/meta"
)

// TestAssign: an alert is assigned within the caller's scope, to a name
// that is one, the change is in its history, and the hits that join the
// alert afterwards keep its assignee, as they keep its environment.
func TestAssign(t *testing.T) {
	ctx := context.Background()
	m, db, now, opened := testManager(t, Config{})
	d := hit(stopRule, "acme", "alice", 0, 1)
	d.Event.Environment = "prod"
	m.Detected([]detect.Detection{d})
	id := (*opened)[0].ID

	for _, tc := range []struct {
		name     string
		tenants  []string
		assignee string
		err      error
		want     string
	}{
		{"another tenant", []string{"other"}, "eve", meta.ErrNotFound, ""},
		{"control characters", []string{"acme"}, "ann\nroot", ErrAssignee, ""},
		{"the filter of no one", []string{"acme"}, meta.Unassigned, ErrAssignee, ""},
		{"too long", []string{"acme"}, strings.Repeat("a", maxAssignee+1), ErrAssignee, ""},
		{"a name, trimmed", []string{"acme"}, "  ann ", nil, "ann"},
		{"every tenant", nil, "bob", nil, "bob"},
	} {
		*now = now.Add(time.Minute)
		a, err := m.Assign(ctx, tc.tenants, id, tc.assignee, "lead")
		if !errors.Is(err, tc.err) || err == nil && (a.Assignee != tc.want || !a.Updated.Equal(*now)) {
			t.Errorf("%s: %+v, %v; want %q, %v", tc.name, a, err, tc.want, tc.err)
		}
	}
	ts, err := db.AlertTransitions(ctx, id)
	if err != nil || len(ts) != 2 || ts[0].Reason != "assigned to ann" || ts[1].Reason != "assigned to bob (from ann)" || ts[1].Actor != "lead" ||
		ts[1].From != Open || ts[1].To != Open {
		t.Errorf("history %+v, %v", ts, err)
	}
	// A hit joins the alert, which is saved again, assignee and all.
	m.Detected([]detect.Detection{hit(stopRule, "acme", "alice", time.Minute, 2)})
	as, err := db.Alerts(ctx, meta.AlertQuery{Tenants: []string{"acme"}, Assignee: "bob", Environment: "prod"})
	if err != nil || len(as) != 1 || as[0].ID != id || as[0].Count != 2 || len(*opened) != 1 {
		t.Fatalf("bob's alerts in prod after a hit: %+v, %v", as, err)
	}
	if _, err := m.Assign(ctx, []string{"acme"}, id, "", "lead"); err != nil {
		t.Fatal(err)
	}
	if as, _ := db.Alerts(ctx, meta.AlertQuery{Tenants: []string{"acme"}, Assignee: meta.Unassigned}); len(as) != 1 || as[0].Assignee != "" {
		t.Errorf("unassigned: %+v", as)
	}
}
