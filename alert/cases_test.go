package alert

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/meta"
)

// TestCases: a case groups alerts the caller sees, and its timeline
// keeps, in order, who added what and changed what; the lifecycle and
// the tenants are enforced.
func TestCases(t *testing.T) {
	ctx := context.Background()
	m, _, now, opened := testManager(t, Config{})
	root := &detect.Rule{ID: "r-root", Title: "Root Account Used", Level: "critical"}
	m.Detected([]detect.Detection{hit(stopRule, "acme", "alice", 0, 1), hit(root, "acme", "root", 0, 2), hit(stopRule, "beta", "bob", 0, 3)})
	ids := map[string]string{}
	for _, a := range *opened {
		ids[a.Tenant+"/"+a.Group["vigil.actor"]] = a.ID
	}

	// A tenant cannot put another tenant's alert in its case.
	if _, err := m.OpenCase(ctx, []string{"acme"}, "Stolen keys", "", "ann", []string{ids["acme/alice"], ids["beta/bob"]}); !errors.Is(err, meta.ErrNotFound) {
		t.Fatalf("another tenant's alert: %v", err)
	}
	if _, err := m.OpenCase(ctx, []string{"acme"}, "  ", "", "ann", nil); !errors.Is(err, ErrCase) {
		t.Errorf("a case without a title: %v", err)
	}
	c, err := m.OpenCase(ctx, []string{"acme"}, "Stolen keys", "", "ann", []string{ids["acme/alice"]})
	if err != nil {
		t.Fatal(err)
	}
	if c.Tenant != "acme" || c.Owner != "ann" || c.Status != CaseOpen || c.Creator != "ann" {
		t.Errorf("case %+v", c)
	}
	step := func(what string, fn func() (meta.Case, error), want error) {
		t.Helper()
		*now = now.Add(time.Minute)
		if _, err := fn(); !errors.Is(err, want) {
			t.Fatalf("%s: %v, want %v", what, err, want)
		}
	}
	step("add an alert", func() (meta.Case, error) {
		return m.AddToCase(ctx, []string{"acme"}, c.ID, EntryAlert, ids["acme/root"], "", "ann")
	}, nil)
	step("add another tenant's alert", func() (meta.Case, error) {
		return m.AddToCase(ctx, []string{"acme"}, c.ID, EntryAlert, ids["beta/bob"], "", "ann")
	}, meta.ErrNotFound)
	step("note", func() (meta.Case, error) {
		return m.AddToCase(ctx, []string{"acme"}, c.ID, EntryNote, "", "keys were in a public repo", "ann")
	}, nil)
	step("empty note", func() (meta.Case, error) { return m.AddToCase(ctx, []string{"acme"}, c.ID, EntryNote, "", " ", "ann") }, ErrCase)
	step("unknown kind", func() (meta.Case, error) { return m.AddToCase(ctx, []string{"acme"}, c.ID, "gossip", "", "x", "ann") }, ErrCase)
	step("investigate, hand to bob", func() (meta.Case, error) {
		return m.SetCase(ctx, []string{"acme"}, c.ID, CaseInvestigating, "bob", "ann")
	}, nil)
	step("action", func() (meta.Case, error) {
		return m.AddToCase(ctx, []string{"acme"}, c.ID, EntryAction, "", "deactivated AKIA…EXAMPLE", "bob")
	}, nil)
	step("export", func() (meta.Case, error) {
		return m.AddToCase(ctx, []string{"acme"}, c.ID, EntryExport, "evidence-2024-117.tar", "the events of both alerts", "bob")
	}, nil)
	step("another tenant closes", func() (meta.Case, error) { return m.SetCase(ctx, []string{"beta"}, c.ID, CaseClosed, "", "eve") }, meta.ErrNotFound)
	step("nothing to change", func() (meta.Case, error) { return m.SetCase(ctx, []string{"acme"}, c.ID, "", "bob", "bob") }, ErrCase)
	step("bad status", func() (meta.Case, error) { return m.SetCase(ctx, []string{"acme"}, c.ID, "done", "", "bob") }, ErrCase)
	step("close", func() (meta.Case, error) { return m.SetCase(ctx, []string{"acme"}, c.ID, CaseClosed, "", "bob") }, nil)
	step("closed cannot be investigated", func() (meta.Case, error) {
		return m.SetCase(ctx, []string{"acme"}, c.ID, CaseInvestigating, "", "bob")
	}, ErrCase)

	got, es, err := m.Case(ctx, []string{"acme"}, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != CaseClosed || got.Owner != "bob" || !got.Updated.After(got.Created) {
		t.Errorf("case %+v", got)
	}
	var lines []string
	for _, e := range es {
		lines = append(lines, fmt.Sprintf("%s %s %s %s", e.Actor, e.Kind, e.Ref, e.Text))
	}
	want := []string{
		"ann opened  Stolen keys",
		"ann alert " + ids["acme/alice"] + " CloudTrail Logging Stopped",
		"ann alert " + ids["acme/root"] + " Root Account Used",
		"ann note  keys were in a public repo",
		"ann status investigating open → investigating",
		"ann owner bob ann → bob",
		"bob action  deactivated AKIA…EXAMPLE",
		"bob export evidence-2024-117.tar the events of both alerts",
		"bob status closed investigating → closed",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("timeline:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	if _, _, err := m.Case(ctx, []string{"beta"}, c.ID); !errors.Is(err, meta.ErrNotFound) {
		t.Errorf("another tenant read the case: %v", err)
	}
	// An administrator's case of one tenant's alerts is that tenant's;
	// of several tenants', across them.
	c2, err := m.OpenCase(ctx, nil, "One", "", "root", []string{ids["acme/root"]})
	if err != nil || c2.Tenant != "acme" {
		t.Errorf("case %+v, %v", c2, err)
	}
	c3, err := m.OpenCase(ctx, nil, "Both", "carol", "root", []string{ids["acme/root"], ids["beta/bob"]})
	if err != nil || c3.Tenant != "" || c3.Owner != "carol" {
		t.Errorf("case %+v, %v", c3, err)
	}
	if cs, _ := m.Cases(ctx, meta.CaseQuery{Tenants: []string{"acme"}}); len(cs) != 2 {
		t.Errorf("acme sees %d cases, want its 2", len(cs))
	}
	if cs, _ := m.Cases(ctx, meta.CaseQuery{AllTenants: true, Status: []string{CaseOpen}}); len(cs) != 2 {
		t.Errorf("%d open cases, want 2", len(cs))
	}
}
