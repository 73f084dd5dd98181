package duckdb

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/metric"
	"github.com/vigilsec/vigil/query"
)

// TestSamples: samples come back as the series they were written in,
// oldest first, narrowed by labels and time, and only of the tenants in
// scope; a series written again by another process is the same series.
func TestSamples(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "events.duckdb")
	db, err := Open(Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	web := metric.NewLabels(map[string]string{"account": "111122223333", "instance": "i-web", `odd"name`: "x"})
	db1 := metric.NewLabels(map[string]string{"account": "111122223333", "instance": "i-db"})
	write := func(db *DB, tenant string, labels metric.Labels, values ...float64) {
		t.Helper()
		s := metric.Series{Metric: "network_out_bytes", Labels: labels}
		for i, v := range values {
			s.Samples = append(s.Samples, metric.Sample{Time: t0.Add(time.Duration(len(values)-1-i) * time.Minute), Value: v})
		}
		if err := db.AppendSamples(ctx, tenant, []metric.Series{s}); err != nil {
			t.Fatal(err)
		}
	}
	write(db, "acme", web, 3, 2, 1) // written newest first
	write(db, "acme", db1, 10)
	write(db, "globex", web, 99)
	write(db, "acme", metric.Labels{{Name: "instance", Value: "i-nan"}}, math.NaN())
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = Open(Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	write(db, "acme", web, 4) // at t0 again, from another process

	read := func(scope query.Scope, match map[string]string) []metric.Series {
		t.Helper()
		got, err := db.Samples(ctx, scope, "network_out_bytes", match, t0, t0.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	got := read(query.Scope{Tenants: []string{"acme"}}, map[string]string{"instance": "i-web"})
	if len(got) != 1 || got[0].Labels.Get("tenant") != "acme" || got[0].Labels.Get(`odd"name`) != "x" || len(got[0].Samples) != 4 {
		t.Fatalf("i-web in acme: %+v", got)
	}
	// Oldest first; the two samples at t0 (both processes wrote one) in
	// either order.
	var text []string
	for _, x := range got[0].Samples {
		text = append(text, fmt.Sprintf("%s=%v", x.Time.Sub(t0), x.Value))
	}
	if s := strings.Join(text, " "); s != "0s=1 0s=4 1m0s=2 2m0s=3" && s != "0s=4 0s=1 1m0s=2 2m0s=3" {
		t.Errorf("samples %s", s)
	}
	if n := len(read(query.Scope{Tenants: []string{"acme"}}, nil)); n != 2 {
		t.Errorf("acme has %d series of the metric, want 2 (the NaN sample is not stored)", n)
	}
	if n := len(read(query.Scope{All: true}, map[string]string{"tenant": "globex"})); n != 1 {
		t.Errorf("globex through the tenant label: %d series, want 1", n)
	}
	if got := read(query.Scope{Tenants: []string{"globex"}}, map[string]string{"tenant": "acme"}); len(got) != 0 {
		t.Errorf("a globex caller naming acme's tenant reads %d series", len(got))
	}
	if got := read(query.Scope{}, nil); len(got) != 0 {
		t.Errorf("an empty scope reads %d series", len(got))
	}
}

// TestDownsample: samples older than the cut become their hour's mean,
// which Samples gives in their place; later ones stay as they came.
func TestDownsample(t *testing.T) {
	ctx := context.Background()
	db := open(t)
	t0 := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	s := metric.Series{Metric: "cpu", Labels: metric.Labels{{Name: "host", Value: "web-1"}}}
	for i := range 150 { // 10:00 to 12:29, a minute apart
		s.Samples = append(s.Samples, metric.Sample{Time: t0.Add(time.Duration(i) * time.Minute), Value: float64(i % 60)})
	}
	if err := db.AppendSamples(ctx, "acme", []metric.Series{s}); err != nil {
		t.Fatal(err)
	}
	n, err := db.Downsample(ctx, t0.Add(2*time.Hour+15*time.Minute)) // rolls 10:00 and 11:00 up
	if err != nil || n != 120 {
		t.Fatalf("downsampled %d samples (%v), want 120", n, err)
	}
	got, err := db.Samples(ctx, query.Scope{All: true}, "cpu", map[string]string{"host": "web-1"}, t0, t0.Add(3*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || len(got[0].Samples) != 2+30 {
		t.Fatalf("series %+v", got)
	}
	for i, x := range got[0].Samples[:2] {
		if !x.Time.Equal(t0.Add(time.Duration(i)*time.Hour)) || x.Value != 29.5 {
			t.Errorf("hour %d: %+v, want the mean 29.5", i, x)
		}
	}
	if x := got[0].Samples[2]; !x.Time.Equal(t0.Add(2*time.Hour)) || x.Value != 0 {
		t.Errorf("the first raw sample: %+v", x)
	}
}
