package meta_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/vigilsec/vigil/meta"
	"github.com/vigilsec/vigil/meta/metatest"
)

// ruleBody is a Sigma rule as an author writes it: comments, blank
// lines, trailing spaces, tabs and CRLFs, all of which must come back.
const ruleBody = "# written in the console\r\ntitle: Root Login  \r\nid: r-root\r\n\r\ndetection:\n\tselection:\n\t\tuserIdentity.type: Root # 'quoted' \"too\"\n\tcondition: selection\n"

// TestSavedRules: a rule saves, updates keeping who created it and
// when, lists by id, and deletes with its switch; what cannot be stored
// alike on both engines is refused.
func TestSavedRules(t *testing.T) {
	metatest.Each(t, func(t *testing.T, db *meta.DB) {
		ctx := context.Background()
		at := time.Date(2024, 7, 10, 12, 0, 0, 0, time.UTC)

		if _, err := db.SavedRule(ctx, "r-root"); !errors.Is(err, meta.ErrNotFound) {
			t.Fatalf("a missing rule: %v", err)
		}
		if rs, err := db.SavedRules(ctx); err != nil || len(rs) != 0 {
			t.Fatalf("no rules: %+v %v", rs, err)
		}

		first, err := db.SaveRule(ctx, meta.SavedRule{ID: "r-root", Title: "Root Login", Body: ruleBody,
			Created: at, CreatedBy: "ann", Updated: at, UpdatedBy: "ann"})
		if err != nil {
			t.Fatal(err)
		}
		want := meta.SavedRule{ID: "r-root", Title: "Root Login", Body: ruleBody, Created: at, CreatedBy: "ann", Updated: at, UpdatedBy: "ann"}
		if first != want {
			t.Errorf("saved %+v, want %+v", first, want)
		}

		// An update changes the title, body and who last changed it, and
		// keeps the first save's time and author, whatever it is given.
		later := at.Add(time.Hour)
		second, err := db.SaveRule(ctx, meta.SavedRule{ID: "r-root", Title: "Root Login v2", Body: ruleBody + "level: high\n",
			Created: later, CreatedBy: "mallory", Updated: later, UpdatedBy: "bob"})
		if err != nil {
			t.Fatal(err)
		}
		want = meta.SavedRule{ID: "r-root", Title: "Root Login v2", Body: ruleBody + "level: high\n", Created: at, CreatedBy: "ann", Updated: later, UpdatedBy: "bob"}
		if second != want {
			t.Errorf("updated %+v, want %+v", second, want)
		}
		if got, err := db.SavedRule(ctx, "r-root"); err != nil || got != want {
			t.Errorf("read back %+v %v, want %+v", got, err, want)
		}

		// A new rule without a creation time or author takes its update's.
		other, err := db.SaveRule(ctx, meta.SavedRule{ID: "a-first", Title: "A", Body: "title: A\n", Updated: later, UpdatedBy: "bob"})
		if err != nil || !other.Created.Equal(later) || other.CreatedBy != "bob" {
			t.Errorf("a rule without a creation: %+v %v", other, err)
		}
		rs, err := db.SavedRules(ctx)
		if err != nil || len(rs) != 2 || rs[0].ID != "a-first" || rs[1] != want {
			t.Errorf("rules by id: %+v %v", rs, err)
		}

		for _, bad := range []struct {
			name string
			r    meta.SavedRule
		}{
			{"no id", meta.SavedRule{Body: ruleBody}},
			{"blank id", meta.SavedRule{ID: " \t", Body: ruleBody}},
			{"no body", meta.SavedRule{ID: "x"}},
			{"blank body", meta.SavedRule{ID: "x", Body: "\n  \n"}},
			{"invalid UTF-8", meta.SavedRule{ID: "x", Body: "title: \xff\n"}},
			{"NUL", meta.SavedRule{ID: "x", Title: "a\x00b", Body: "title: x\n"}},
		} {
			if _, err := db.SaveRule(ctx, bad.r); err == nil {
				t.Errorf("%s: saved", bad.name)
			}
		}
		if _, err := db.SavedRule(ctx, "x"); !errors.Is(err, meta.ErrNotFound) {
			t.Errorf("a refused rule was stored: %v", err)
		}

		// Deleting takes the rule's switch with it, and no other's.
		if err := db.TurnRuleOff(ctx, meta.RuleSwitch{RuleID: "r-root", Reason: "noisy", By: "ann", At: at}); err != nil {
			t.Fatal(err)
		}
		if err := db.TurnRuleOff(ctx, meta.RuleSwitch{RuleID: "a-first", Reason: "noisy", By: "ann", At: at}); err != nil {
			t.Fatal(err)
		}
		if err := db.DeleteRule(ctx, "r-root"); err != nil {
			t.Fatal(err)
		}
		if _, err := db.SavedRule(ctx, "r-root"); !errors.Is(err, meta.ErrNotFound) {
			t.Errorf("a deleted rule: %v", err)
		}
		if off, err := db.RulesOff(ctx); err != nil || len(off) != 1 || off[0].RuleID != "a-first" {
			t.Errorf("switches after deleting r-root: %+v %v", off, err)
		}
		if rs, _ := db.SavedRules(ctx); len(rs) != 1 || rs[0].ID != "a-first" {
			t.Errorf("rules after deleting r-root: %+v", rs)
		}
		if err := db.DeleteRule(ctx, "r-root"); !errors.Is(err, meta.ErrNotFound) {
			t.Errorf("deleting a deleted rule: %v", err)
		}
	})
}

// TestRuleSwitches: a rule turns off with a reason, and back on; the
// switches list by rule id.
func TestRuleSwitches(t *testing.T) {
	metatest.Each(t, func(t *testing.T, db *meta.DB) {
		ctx := context.Background()
		at := time.Date(2024, 7, 10, 12, 0, 0, 0, time.UTC)
		off := func() []meta.RuleSwitch {
			t.Helper()
			ss, err := db.RulesOff(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return ss
		}
		if ss := off(); len(ss) != 0 {
			t.Fatalf("rules off at first: %+v", ss)
		}
		// Rules from files, never saved here, turn off as well.
		for _, s := range []meta.RuleSwitch{
			{RuleID: "z-rule", Reason: "noisy", By: "ann", At: at},
			{RuleID: "b-rule", Reason: "broken", By: "ann", At: at},
			{RuleID: "z-rule", Reason: "still noisy", By: "bob", At: at.Add(time.Minute)}, // again: updated
		} {
			if err := db.TurnRuleOff(ctx, s); err != nil {
				t.Fatal(err)
			}
		}
		want := []meta.RuleSwitch{
			{RuleID: "b-rule", Reason: "broken", By: "ann", At: at},
			{RuleID: "z-rule", Reason: "still noisy", By: "bob", At: at.Add(time.Minute)},
		}
		if got := off(); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("rules off: %+v, want %+v", got, want)
		}
		if err := db.TurnRuleOff(ctx, meta.RuleSwitch{Reason: "no id"}); err == nil {
			t.Error("turned off a rule without an id")
		}

		if err := db.TurnRuleOn(ctx, "z-rule"); err != nil {
			t.Fatal(err)
		}
		if got := off(); len(got) != 1 || got[0] != want[0] {
			t.Errorf("after turning z-rule on: %+v", got)
		}
		// A rule on already turns on without fuss.
		for _, id := range []string{"z-rule", "never-off"} {
			if err := db.TurnRuleOn(ctx, id); err != nil {
				t.Errorf("turning %s on: %v", id, err)
			}
		}
		if err := db.TurnRuleOn(ctx, "b-rule"); err != nil {
			t.Fatal(err)
		}
		if got := off(); len(got) != 0 {
			t.Errorf("after turning every rule on: %+v", got)
		}
	})
}

// TestRulesVersion: every write to the rules or their switches raises
// the version, which is the database's, not a handle's; writes that
// change nothing, or fail, leave it be.
func TestRulesVersion(t *testing.T) {
	metatest.Each(t, func(t *testing.T, db *meta.DB) {
		ctx := context.Background()
		at := time.Date(2024, 7, 10, 12, 0, 0, 0, time.UTC)
		version := func() int64 {
			t.Helper()
			n, err := db.RulesVersion(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		save := func(r meta.SavedRule) error { _, err := db.SaveRule(ctx, r); return err }
		rule := meta.SavedRule{ID: "r1", Title: "R1", Body: "title: R1\n", Updated: at, UpdatedBy: "ann"}
		tests := []struct {
			name    string
			write   func() error
			bumps   bool
			wantErr bool
		}{
			{"save", func() error { return save(rule) }, true, false},
			{"save the same again", func() error { return save(rule) }, true, false},
			{"save refused", func() error { return save(meta.SavedRule{ID: "r2"}) }, false, true},
			{"off", func() error {
				return db.TurnRuleOff(ctx, meta.RuleSwitch{RuleID: "r1", Reason: "x", By: "ann", At: at})
			}, true, false},
			{"off again", func() error {
				return db.TurnRuleOff(ctx, meta.RuleSwitch{RuleID: "r1", Reason: "y", By: "ann", At: at})
			}, true, false},
			{"on", func() error { return db.TurnRuleOn(ctx, "r1") }, true, false},
			{"on when on", func() error { return db.TurnRuleOn(ctx, "r1") }, false, false},
			{"on, never off", func() error { return db.TurnRuleOn(ctx, "nothing") }, false, false},
			{"delete", func() error { return db.DeleteRule(ctx, "r1") }, true, false},
			{"delete missing", func() error { return db.DeleteRule(ctx, "r1") }, false, true},
		}
		prev := version()
		if prev != 0 {
			t.Errorf("a new database's version is %d", prev)
		}
		for _, tt := range tests {
			err := tt.write()
			if (err != nil) != tt.wantErr {
				t.Fatalf("%s: error %v, want one: %v", tt.name, err, tt.wantErr)
			}
			n := version()
			switch {
			case tt.bumps && n <= prev:
				t.Errorf("%s: version %d after %d, want it raised", tt.name, n, prev)
			case !tt.bumps && n != prev:
				t.Errorf("%s: version %d after %d, want it unchanged", tt.name, n, prev)
			}
			prev = n
		}
	})
}

// TestRuleHits: detections count by rule in a scope as Detections
// scopes them, since a time, with the latest's time.
func TestRuleHits(t *testing.T) {
	metatest.Each(t, func(t *testing.T, db *meta.DB) {
		ctx := context.Background()
		t0 := time.Date(2024, 7, 10, 12, 0, 0, 0, time.UTC)
		minute := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Minute) }
		if err := db.AddDetections(ctx, []meta.Detection{
			{Created: minute(1), Tenant: "a", RuleID: "r1", Title: "t", Level: "high"},
			{Created: minute(5), Tenant: "a", RuleID: "r1", Title: "t", Level: "high"},
			{Created: minute(3), Tenant: "a", RuleID: "r1", Title: "t", Level: "high"},
			{Created: minute(2), Tenant: "b", RuleID: "r1", Title: "t", Level: "high"},
			{Created: minute(4), Tenant: "b", RuleID: "r2", Title: "t", Level: "low"},
			// Across tenants, with parts in a and c.
			{Created: minute(6), RuleID: "corr", Title: "t", Level: "medium", Events: []uint64{1, 2},
				Parts: []meta.DetectionPart{{Tenant: "a", Seqs: []uint64{1}}, {Tenant: "c", Seqs: []uint64{2}}}},
			// Across tenants, recorded before parts: every tenant's only.
			{Created: minute(7), RuleID: "corr", Title: "t", Level: "medium", Events: []uint64{3, 4}},
		}); err != nil {
			t.Fatal(err)
		}
		type hits = map[string]meta.RuleHits
		tests := []struct {
			name    string
			tenants []string
			all     bool
			since   time.Time
			want    hits
		}{
			{"every tenant", nil, true, time.Time{}, hits{
				"r1": {4, minute(5)}, "r2": {1, minute(4)}, "corr": {2, minute(7)}}},
			{"every tenant, tenants ignored", []string{"b"}, true, time.Time{}, hits{
				"r1": {4, minute(5)}, "r2": {1, minute(4)}, "corr": {2, minute(7)}}},
			{"a", []string{"a"}, false, time.Time{}, hits{"r1": {3, minute(5)}, "corr": {1, minute(6)}}},
			{"b", []string{"b"}, false, time.Time{}, hits{"r1": {1, minute(2)}, "r2": {1, minute(4)}}},
			{"c: a part only", []string{"c"}, false, time.Time{}, hits{"corr": {1, minute(6)}}},
			{"a and b", []string{"a", "b"}, false, time.Time{}, hits{"r1": {4, minute(5)}, "r2": {1, minute(4)}, "corr": {1, minute(6)}}},
			{"a tenant without detections", []string{"d"}, false, time.Time{}, hits{}},
			{"no scope", nil, false, time.Time{}, hits{}},
			{"empty scope", []string{}, false, time.Time{}, hits{}},
			{"since, inclusive", []string{"a"}, false, minute(3), hits{"r1": {2, minute(5)}, "corr": {1, minute(6)}}},
			{"since, every tenant", nil, true, minute(5), hits{"r1": {1, minute(5)}, "corr": {2, minute(7)}}},
			{"since after all", nil, true, minute(8), hits{}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, err := db.RuleHits(ctx, tt.tenants, tt.all, tt.since)
				if err != nil {
					t.Fatal(err)
				}
				if got == nil {
					t.Fatal("a nil map")
				}
				if len(got) != len(tt.want) {
					t.Fatalf("got %v, want %v", got, tt.want)
				}
				for id, w := range tt.want {
					if g, ok := got[id]; !ok || g.Count != w.Count || !g.Last.Equal(w.Last) {
						t.Errorf("%s: got %+v, want %+v (all: %v)", id, g, w, got)
					}
				}
			})
		}
	})
}
