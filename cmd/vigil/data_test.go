package main

import (
	"context"
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
