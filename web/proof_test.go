package web

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/ledger"
	"github.com/vigilsec/vigil/query"
	"github.com/vigilsec/vigil/store"
)

// oneEvent is a store that holds the events with seq below n.
type oneEvent struct{ n uint64 }

func (s oneEvent) Search(_ context.Context, req query.Request) (*store.Result, error) {
	res := &store.Result{Columns: []string{"seq"}, Events: true}
	if c, ok := req.Query.Filter.(*query.Compare); ok && c.Field == "seq" {
		if seq, err := strconv.ParseUint(c.Value.Pattern, 10, 64); err == nil && seq < s.n {
			res.Rows = [][]any{{seq}}
		}
	}
	return res, nil
}

func (oneEvent) SearchQuarantine(context.Context, string, query.Scope, time.Time, time.Time, int) (*store.Result, error) {
	return &store.Result{}, nil
}

// TestProof checks that the proof the API serves verifies with nothing but
// the ledger's public key, as a third party would check it.
func TestProof(t *testing.T) {
	dir := t.TempDir()
	signer, _, vkey, err := ledger.LoadOrCreateKey(filepath.Join(dir, "key"), "vigil")
	if err != nil {
		t.Fatal(err)
	}
	l, err := ledger.Open(filepath.Join(dir, "ledger"), ledger.Options{Signer: signer, Name: "vigil"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	t0 := time.Date(2024, 7, 31, 0, 0, 0, 0, time.UTC)
	var evs []*event.Event
	for i := range 37 {
		evs = append(evs, &event.Event{Time: t0.Add(time.Duration(i) * time.Second), Received: t0, Tenant: "t", Source: "json", Class: "other", Raw: []byte(`{"i":` + string(rune('0'+i%10)) + `}`)})
	}
	if _, err := l.Append(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	h := Handler(Options{Store: oneEvent{n: 30}, Ledger: l, LedgerKey: vkey, AdminToken: "secret", Gatherer: prometheus.NewRegistry()})
	get := func(path string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", path, nil)
		req.Header.Set("Authorization", "Bearer secret")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}

	rec := get("/api/v1/events/13/proof")
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	var p Proof
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatal(err)
	}
	// What a third party does, with the key alone.
	v, err := note.NewVerifier(p.Key)
	if err != nil || p.Key != vkey {
		t.Fatalf("key %q: %v", p.Key, err)
	}
	cp, err := ledger.ParseCheckpoint([]byte(p.Checkpoint), v)
	if err != nil {
		t.Fatal(err)
	}
	content, err := base64.StdEncoding.DecodeString(p.Content)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(content)
	if hex.EncodeToString(sum[:]) != p.ContentHash {
		t.Fatal("content hash does not match the content")
	}
	proof := make(tlog.RecordProof, len(p.Proof))
	for i, s := range p.Proof {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(b) != 32 {
			t.Fatalf("proof hash %d: %q", i, s)
		}
		copy(proof[i][:], b)
	}
	if err := tlog.CheckRecord(proof, cp.Size, cp.Hash, 13, ledger.LeafHashOf(sum)); err != nil {
		t.Errorf("the proof does not verify: %v", err)
	}
	e, err := ledger.DecodeEvent(content)
	if err != nil || string(e.Raw) != string(evs[13].Raw) {
		t.Errorf("content decodes to %v, %v", e, err)
	}
	// A changed proof does not verify.
	proof[0][0] ^= 1
	if tlog.CheckRecord(proof, cp.Size, cp.Hash, 13, ledger.LeafHashOf(sum)) == nil {
		t.Error("a changed proof verifies")
	}

	// Events the caller cannot see through the store have no proof, even
	// when the ledger has them; no token, no proof.
	for path, want := range map[string]int{
		"/api/v1/events/31/proof":  http.StatusNotFound,
		"/api/v1/events/999/proof": http.StatusNotFound,
		"/api/v1/events/x/proof":   http.StatusBadRequest,
	} {
		if rec := get(path); rec.Code != want {
			t.Errorf("%s: status %d, want %d", path, rec.Code, want)
		}
	}
	req := httptest.NewRequest("GET", "/api/v1/events/13/proof", nil)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusUnauthorized {
		t.Errorf("without a token: status %d", rec.Code)
	}
}
