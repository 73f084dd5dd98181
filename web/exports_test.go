package web

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilsec/vigil/access"
	"github.com/vigilsec/vigil/ledger"
	"github.com/vigilsec/vigil/meta"
	"github.com/vigilsec/vigil/query"
)

// fakeBundles keeps bundles in memory. A bundle's content names the
// tenants its scope reads, so that a test can see what was exported.
type fakeBundles struct {
	mu      sync.Mutex
	files   map[string][]byte
	custody ledger.Custody
}

func (b *fakeBundles) WriteBundle(_ context.Context, id string, req query.Request, c ledger.Custody) (int, [32]byte, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !req.Scope.All && len(req.Scope.Tenants) == 0 && len(req.Scope.Shares) == 0 {
		return 0, [32]byte{}, ErrNoEvents
	}
	content := []byte("bundle of " + strings.Join(access.ExportTenants(req.Scope), ",") + " for " + req.Query.String())
	if b.files == nil {
		b.files = map[string][]byte{}
	}
	b.files[id], b.custody = content, c
	return 3, sha256.Sum256(content), nil
}

func (b *fakeBundles) OpenBundle(id string) (io.ReadSeekCloser, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	f, ok := b.files[id]
	if !ok {
		return nil, io.ErrUnexpectedEOF
	}
	return nopCloser{bytes.NewReader(f)}, nil
}

func (b *fakeBundles) RemoveBundle(id string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.files, id)
	return nil
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

// TestExports checks exports end to end through the API: what each
// caller may export, list and revoke, and that a link opens its bundle
// until it expires or is revoked, and nothing else; each step audited.
func TestExports(t *testing.T) {
	ctx := context.Background()
	mdb, err := meta.Open(ctx, filepath.Join(t.TempDir(), "meta.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer mdb.Close()
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	opts := access.Options{Now: clock}
	dir, tokens := access.NewDirectory(mdb, opts), access.NewTokens(mdb, opts)
	token := func(name string, bindings ...access.Binding) string {
		p, err := dir.CreatePrincipal(ctx, name, access.User, name)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range bindings {
			if err := dir.Bind(ctx, access.PrincipalSubject(p.ID), b); err != nil {
				t.Fatal(err)
			}
		}
		s, _, err := tokens.Create(ctx, access.Spec{Principal: p.ID})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	analystA := token("ann", access.Binding{Role: access.Analyst, Tenant: "team-a"})
	viewerA := token("vic", access.Binding{Role: access.Viewer, Tenant: "team-a"})
	adminA := token("ada", access.Binding{Role: access.Admin, Tenant: "team-a"})
	analystB := token("bob", access.Binding{Role: access.Analyst, Tenant: "team-b"})
	partner := token("pat")
	partnerP, _ := dir.Principal(ctx, "pat")
	if _, err := dir.CreateGrant(ctx, access.Grant{Owner: "team-a", Grantee: "principal:" + partnerP.ID, Redact: []string{"requestParameters"},
		Reason: "engagement 7", Expires: now.Add(24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}

	var (
		mu      sync.Mutex
		records []access.Record
	)
	bundles := &fakeBundles{}
	h := Handler(Options{
		Store: &fakeStore{}, Tokens: tokens, Access: dir, Exports: bundles, Gatherer: prometheus.NewRegistry(), Now: clock,
		Audit: func(_ context.Context, r *access.Record) error {
			mu.Lock()
			defer mu.Unlock()
			records = append(records, *r)
			return nil
		},
	})
	do := func(method, path, tok, body string) *httptest.ResponseRecorder {
		t.Helper()
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	lastRecord := func() access.Record {
		mu.Lock()
		defer mu.Unlock()
		return records[len(records)-1]
	}

	// Refusals before anything is written.
	for _, tc := range []struct {
		name, tok, body string
		status          int
	}{
		{"no reason", analystA, `{"from": "-7d"}`, 400},
		{"no start", analystA, `{"reason": "case 12"}`, 400},
		{"link too long", analystA, `{"from": "-7d", "reason": "case 12", "hours": 200}`, 400},
		{"bad query", analystA, `{"from": "-7d", "reason": "case 12", "query": "eventName:("}`, 400},
		{"another tenant's events", analystA, `{"from": "-7d", "reason": "case 12", "tenant": "team-b"}`, 422},
		{"a redacting grant", partner, `{"from": "-7d", "reason": "case 12"}`, 403},
		{"no credential", "", `{"from": "-7d", "reason": "case 12"}`, 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if rec := do("POST", "/api/v1/exports", tc.tok, tc.body); rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
		})
	}
	if len(bundles.files) != 0 {
		t.Fatalf("refused exports wrote bundles: %v", bundles.files)
	}

	rec := do("POST", "/api/v1/exports", analystA, `{"from": "-7d", "reason": "case 12", "query": "eventName:StopLogging"}`)
	if rec.Code != http.StatusCreated {
		t.Fatalf("export: %d %s", rec.Code, rec.Body)
	}
	var x exportAnswer
	if err := json.Unmarshal(rec.Body.Bytes(), &x); err != nil {
		t.Fatal(err)
	}
	want := "bundle of team-a for eventName:StopLogging"
	if got := string(bundles.files[x.ID]); got != want {
		t.Fatalf("bundle %q, want %q", got, want)
	}
	if x.Events != 3 || x.Link == "" || !x.Expires.Equal(now.Add(24*time.Hour)) || x.CreatedBy != "ann" {
		t.Fatalf("export answer: %+v", x)
	}
	if c := bundles.custody; !strings.HasPrefix(c.ExportedBy, "ann (token ") || c.Reason != "case 12" || c.Query != "eventName:StopLogging" || !c.From.Equal(now.Add(-7*24*time.Hour)) {
		t.Errorf("custody: %+v", c)
	}
	if r := lastRecord(); r.Action != "export" || r.Target != "export:"+x.ID || r.Status != 201 || !strings.Contains(r.Detail, "case 12") {
		t.Errorf("export audited as %+v", r)
	}

	// The link opens the bundle with no other credential.
	rec = do("GET", x.Link, "", "")
	if rec.Code != 200 || rec.Body.String() != want || rec.Header().Get("Content-Type") != "application/zip" {
		t.Fatalf("download: %d %q %v", rec.Code, rec.Body, rec.Header())
	}
	if r := lastRecord(); r.Action != "export.download" || r.Status != 200 || r.Kind != "link" || r.Actor != "link of ann" {
		t.Errorf("download audited as %+v", r)
	}
	if strings.Contains(lastRecord().Detail+lastRecord().Path, "sig") {
		t.Errorf("the audit record keeps the link's signature: %+v", lastRecord())
	}

	// Links that are not the one signed.
	u, _ := url.Parse(x.Link)
	v := u.Query()
	tampered := func(key, val string) string {
		w := url.Values{}
		for k := range v {
			w.Set(k, v.Get(k))
		}
		w.Set(key, val)
		return u.Path + "?" + w.Encode()
	}
	for _, tc := range []struct{ name, link, reason string }{
		{"later expiry", tampered("expires", "9999999999"), "refused: bad signature"},
		{"another signature", tampered("sig", strings.Repeat("A", 43)), "refused: bad signature"},
		{"no signature", u.Path, "refused: bad signature"},
		{"another export", strings.Replace(x.Link, x.ID, access.NewExportID(), 1), "refused: bad signature"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if rec := do("GET", tc.link, "", ""); rec.Code != 403 {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			if r := lastRecord(); r.Action != "export.download" || r.Detail != tc.reason {
				t.Errorf("audited as %+v", r)
			}
		})
	}

	// Who lists it: its tenant's readers, not another tenant's.
	list := func(tok string) []exportAnswer {
		t.Helper()
		rec := do("GET", "/api/v1/exports", tok, "")
		var out []exportAnswer
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || rec.Code != 200 {
			t.Fatalf("list: %d %s", rec.Code, rec.Body)
		}
		return out
	}
	if got := list(viewerA); len(got) != 1 || got[0].ID != x.ID {
		t.Errorf("team-a's viewer lists %+v", got)
	}
	if got := list(analystB); len(got) != 0 {
		t.Errorf("team-b's analyst lists %+v", got)
	}

	// Who revokes it: its maker or its tenants' administrators.
	if rec := do("DELETE", "/api/v1/exports/"+x.ID, analystB, ""); rec.Code != 404 {
		t.Errorf("team-b revoking team-a's export: %d %s", rec.Code, rec.Body)
	}
	if rec := do("DELETE", "/api/v1/exports/"+x.ID, viewerA, ""); rec.Code != 403 {
		t.Errorf("a viewer revoking: %d %s", rec.Code, rec.Body)
	}
	if rec := do("DELETE", "/api/v1/exports/"+x.ID, adminA, ""); rec.Code != 200 {
		t.Fatalf("the tenant's admin revoking: %d %s", rec.Code, rec.Body)
	}
	if rec := do("GET", x.Link, "", ""); rec.Code != 403 || lastRecord().Detail != "refused: revoked" {
		t.Errorf("a revoked export's link: %d %s, audited %+v", rec.Code, rec.Body, lastRecord())
	}
	if _, ok := bundles.files[x.ID]; ok {
		t.Error("a revoked export's bundle is kept")
	}
	if got := list(analystA); len(got) != 1 || got[0].Revoked.IsZero() || got[0].RevokedBy != "ada" || got[0].Link != "" {
		t.Errorf("after revoking, the maker lists %+v", got)
	}

	// A link expires by itself.
	rec = do("POST", "/api/v1/exports", analystA, `{"from": "-7d", "reason": "case 13", "hours": 1}`)
	if err := json.Unmarshal(rec.Body.Bytes(), &x); err != nil || rec.Code != 201 {
		t.Fatalf("export: %d %s", rec.Code, rec.Body)
	}
	if rec := do("GET", x.Link, "", ""); rec.Code != 200 {
		t.Fatalf("a fresh link: %d", rec.Code)
	}
	now = now.Add(time.Hour)
	if rec := do("GET", x.Link, "", ""); rec.Code != 403 || lastRecord().Detail != "refused: expired" {
		t.Errorf("an expired link: %d, audited %+v", rec.Code, lastRecord())
	}
}
