package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/store/duckdb"
)

// A store written before the ledger existed is refused with a clear
// error, rather than given new events with seqs it already holds.
func TestStoreWithoutLedger(t *testing.T) {
	data := t.TempDir()
	db, err := duckdb.Open(duckdb.Options{Path: filepath.Join(data, storeFile)})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2024, 7, 31, 0, 0, 0, 0, time.UTC)
	err = db.Append(context.Background(), []*event.Event{{Seq: 0, Time: t0, Received: t0, Tenant: "t", Source: "json", Class: "other", Raw: []byte("{}")}})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	code, _, errOut := vigil(t, "import", "--data", data, stratus)
	if code != 1 || !strings.Contains(errOut, "holds 1 events but no ledger") {
		t.Errorf("import into a store without a ledger: exit %d: %s", code, errOut)
	}
}

// TestScaleOutDataDirectory: the commands that read or write the embedded
// store refuse the data directory of a scale-out's node, whose events
// are in ClickHouse, saying where to ask, rather than answer from an
// empty store there; imports go to the bus, and fail on a bus that does
// not answer. Nothing listens on the engines' addresses here.
func TestScaleOutDataDirectory(t *testing.T) {
	data := t.TempDir()
	conf := "scale:\n  nats: [\"nats://127.0.0.1:1\"]\n  clickhouse:\n    shards: [\"http://127.0.0.1:1\"]\n    cluster: c\n" +
		"meta:\n  url: \"postgres://127.0.0.1:1/vigil\"\n"
	if err := os.WriteFile(filepath.Join(data, configFile), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	trail := filepath.Join(t.TempDir(), "trail.json")
	if err := os.WriteFile(trail, []byte(`{"Records":[]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"search", "--data", data, "*"}, "scale-out node's data directory"},
		{[]string{"hunt", "--data", data, "--from", "-1d"}, "scale-out node's data directory"},
		{[]string{"timeline", "--data", data, "--at", "2024-01-01", "AKIAEXAMPLE"}, "scale-out node's data directory"},
		{[]string{"who", "--data", data, "AKIAEXAMPLE"}, "scale-out node's data directory"},
		{[]string{"coverage", "--data", data}, "scale-out node's data directory"},
		{[]string{"rebuild", "--data", data}, "scale-out node's data directory"},
		// Redactions go to the process nodes, through ClickHouse and
		// PostgreSQL.
		{[]string{"redact", "--data", data, "--query", "actor:alice", "--reason", "gdpr"}, "127.0.0.1:1"},
		{[]string{"import", "--data", data, "--detect=false", trail}, "do not apply to a scale-out"},
		{[]string{"import", "--data", data, trail}, "127.0.0.1:1"},
	} {
		code, out, errOut := vigil(t, tc.args...)
		if code == 0 || !strings.Contains(errOut, tc.want) {
			t.Errorf("vigil %s: exit %d, %q %q; want an error saying %q", strings.Join(tc.args, " "), code, out, errOut, tc.want)
		}
	}
	if _, err := os.Stat(filepath.Join(data, storeFile)); !os.IsNotExist(err) {
		t.Errorf("an embedded store was made in the scale-out's data directory: %v", err)
	}
}
