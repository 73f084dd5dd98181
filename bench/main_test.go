package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestSmoke runs every command on a corpus small enough for go test. The
// figures mean nothing at this size; the runs check that the benchmarks
// work, and that both sides of each load and answer the same.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds corpora and stores")
	}
	dir := t.TempDir()
	fixtures := "../../shared/testdata/stratus-red-team-detonation-logs/detonation-logs"
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"corpus", "-events", "5000"}, "5000 events in"},
		{[]string{"import", "-events", "5000", "-runs", "2"}, "vigil/peer rate: median"},
		{[]string{"search", "-events", "5000", "-runs", "1"}, "| `action:StopLogging` |"},
		{[]string{"search", "-events", "5000", "-runs", "1"}, "| `action:StopLogging` |"}, // reuses the store
		{[]string{"ledger", "-events", "5000", "-runs", "2"}, "| vigil verify (ledger and store) |"},
		{[]string{"ingest", "-events", "5000", "-runs", "1", "-batch", "100"}, "| HTTP ingest (vigil serve) |"},
		{[]string{"detect", "-events", "5000", "-runs", "2", "-rules", "../../shared/testdata/sigmahq-cloud-rules"}, "| vigil detect.Detector |"},
		{[]string{"alert", "-events", "5000", "-runs", "1", "-needles", "3", "-rate", "2000", "-batch", "100"}, "| needles under load |"},
		{[]string{"detect-import", "-events", "5000", "-runs", "1", "-rules", "../../shared/testdata/sigmahq-cloud-rules"}, "detection adds to the import's time"},
		{[]string{"enrich", "-events", "5000", "-runs", "1", "-facts", "20000", "-indicators", "20000"}, "enrichment costs of ingest throughput"},
		{[]string{"monitor", "-events", "5000", "-series", "200", "-runs", "1"}, "values judged anomalous in the clean series"},
		{[]string{"console", "-runs", "2"}, "event and its proof"},
		{[]string{"scale", "-events", "5000", "-runs", "1"}, "two nodes against one"},
		{[]string{"chsearch", "-events", "5000", "-runs", "1"}, "| ClickHouse / DuckDB (median) |"},
	} {
		var out, log bytes.Buffer
		args := append(tt.args, "-dir", dir, "-fixtures", fixtures)
		if err := run(context.Background(), args, &out, &log); err != nil {
			t.Fatalf("%v: %v\n%s", tt.args, err, log.String())
		}
		if !strings.Contains(out.String(), tt.want) {
			t.Errorf("%v: output lacks %q:\n%s", tt.args, tt.want, out.String())
		}
	}
}
