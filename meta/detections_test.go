package meta

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// TestDetectionsScope: a tenant sees its own detections only; a
// correlation across tenants only a scope over every tenant sees; no
// scope sees nothing.
func TestDetectionsScope(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "meta.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := time.Date(2024, 7, 10, 12, 0, 0, 0, time.UTC)
	in := []Detection{
		{Created: now, Tenant: "team-a", RuleID: "r1", Title: "a's", Level: "high", Tags: []string{"attack.t1078"}, Seq: seq(7), EventTime: now.Add(-time.Minute), EventID: "e7", Fields: map[string]string{"eventName": "StopLogging"}},
		{Created: now.Add(time.Second), Tenant: "team-b", RuleID: "r1", Title: "b's", Level: "high", Seq: seq(0)},
		{Created: now.Add(2 * time.Second), RuleID: "c1", Title: "across", Level: "critical", Group: map[string]string{"vigil.src_ip": "203.0.113.9"}, Events: []uint64{7, 8}},
	}
	if err := db.AddDetections(ctx, in); err != nil {
		t.Fatal(err)
	}
	titles := func(q DetectionQuery) []string {
		ds, err := db.Detections(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, d := range ds {
			out = append(out, d.Title)
		}
		return out
	}
	tests := []struct {
		name string
		q    DetectionQuery
		want []string
	}{
		{"one tenant", DetectionQuery{Tenants: []string{"team-a"}}, []string{"a's"}},
		{"two tenants", DetectionQuery{Tenants: []string{"team-a", "team-b"}}, []string{"b's", "a's"}},
		{"every tenant, newest first", DetectionQuery{AllTenants: true}, []string{"across", "b's", "a's"}},
		{"no scope", DetectionQuery{}, nil},
		{"since", DetectionQuery{AllTenants: true, Since: now.Add(time.Second)}, []string{"across", "b's"}},
		{"rule", DetectionQuery{AllTenants: true, RuleID: "c1"}, []string{"across"}},
		{"limit", DetectionQuery{AllTenants: true, Limit: 1}, []string{"across"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := titles(tt.q)
			if len(got) != len(tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("got %q, want %q", got, tt.want)
				}
			}
		})
	}
	// What was stored is what is read.
	ds, _ := db.Detections(ctx, DetectionQuery{Tenants: []string{"team-a"}})
	d := ds[0]
	if d.Seq == nil || *d.Seq != 7 || d.EventID != "e7" || !d.EventTime.Equal(now.Add(-time.Minute)) || d.Fields["eventName"] != "StopLogging" || d.Tags[0] != "attack.t1078" || d.ID == "" {
		t.Errorf("read back %+v", d)
	}
	ds, _ = db.Detections(ctx, DetectionQuery{AllTenants: true, RuleID: "c1"})
	if d := ds[0]; d.Seq != nil || d.Tenant != "" || len(d.Events) != 2 || d.Group["vigil.src_ip"] != "203.0.113.9" {
		t.Errorf("correlation read back %+v", d)
	}
}

func seq(n uint64) *uint64 { return &n }
