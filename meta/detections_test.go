package meta

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestDetectionsScope: a tenant sees its own detections only; a
// correlation across tenants without parts (as recorded before they had
// parts) only a scope over every tenant sees; no scope sees nothing.
// TestPartsEngines has the correlations with parts.
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

// TestDetectionsRoundTrip: what is recorded reads back the same, hostile
// text included.
func TestDetectionsRoundTrip(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "meta.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	hostile := []string{"", `"quoted" \ back\slash`, "tab\tnew\nline\x00nul\x1f", "<script>&amp;</script>", "ünïcödé 🛡 \u2028", "bad utf-8: \xff\xfe", "}{][,:"}
	t0 := time.Date(2024, 7, 10, 12, 0, 0, 0, time.UTC)
	var in []Detection
	for i := range 417 {
		h := hostile[i%len(hostile)]
		d := Detection{
			Created: t0.Add(time.Duration(i) * time.Millisecond), Tenant: "t", RuleID: "r" + h, Title: h, Level: "low",
			Tags: []string{h, "attack.t1078"}, Fields: map[string]string{h: h, "b": "2", "a": "1"},
		}
		if i%2 == 0 {
			d.Seq, d.EventTime, d.EventID = seq(uint64(i)), t0, "e"+h
		} else {
			d.Group, d.Events = map[string]string{"vigil.src_ip": h}, []uint64{uint64(i), 1 << 63}
		}
		in = append(in, d)
	}
	if err := db.AddDetections(ctx, in); err != nil {
		t.Fatal(err)
	}
	out, err := db.Detections(ctx, DetectionQuery{AllTenants: true, Limit: len(in)})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(in) {
		t.Fatalf("read %d detections, recorded %d", len(out), len(in))
	}
	// Newest first.
	slices.Reverse(out)
	for i := range in {
		want, got := in[i], out[i]
		// Invalid UTF-8 is stored as JSON stores it: replaced.
		fix := func(s string) string { return string([]rune(s)) }
		if got.ID != want.ID || got.Title != want.Title || got.RuleID != want.RuleID || !got.Created.Equal(want.Created) ||
			!slices.Equal(got.Tags, []string{fix(want.Tags[0]), want.Tags[1]}) || got.Fields[fix(hostile[i%len(hostile)])] != fix(hostile[i%len(hostile)]) ||
			got.Fields["a"] != "1" || len(got.Fields) != len(want.Fields) || !slices.Equal(got.Events, want.Events) ||
			got.Group["vigil.src_ip"] != fix(want.Group["vigil.src_ip"]) || (got.Seq == nil) != (want.Seq == nil) || got.EventID != want.EventID {
			t.Fatalf("detection %d: read %+v, recorded %+v", i, got, want)
		}
	}
}

func BenchmarkAddDetections(b *testing.B) {
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(b.TempDir(), "meta.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	t0 := time.Date(2024, 7, 10, 12, 0, 0, 0, time.UTC)
	batch := make([]Detection, 500)
	b.ReportAllocs()
	for i := 0; i < b.N; i += len(batch) {
		for j := range batch {
			batch[j] = Detection{
				Created: t0.Add(time.Duration(i+j) * time.Millisecond), Tenant: "bench", RuleID: "905d389b-b853-46d0-9d3d-dea0d3a3cd49",
				Title: "AWS STS AssumeRole Misuse", Level: "low", Tags: []string{"attack.lateral-movement", "attack.privilege-escalation", "attack.t1548"},
				Seq: seq(uint64(i + j)), EventTime: t0, EventID: "3a5c1d0e-7f2b-4c8e-9d6a-1b2c3d4e5f60",
				Fields: map[string]string{"userIdentity.type": "AssumedRole", "userIdentity.sessionContext.sessionIssuer.type": "Role"},
			}
		}
		if err := db.AddDetections(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
}
