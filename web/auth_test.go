package web

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilsec/vigil/access"
	"github.com/vigilsec/vigil/meta"
)

// TestTokens checks what each kind of token may do, with tokens from a
// real metadata database.
func TestTokens(t *testing.T) {
	ctx := context.Background()
	mdb, err := meta.Open(ctx, filepath.Join(t.TempDir(), "meta.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer mdb.Close()
	tokens := access.NewTokens(mdb, access.Options{})
	secret := func(tenant string, role access.Role) string {
		s, _, err := tokens.Create(ctx, access.Spec{Tenant: tenant, Role: role})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	ingestA := secret("team-a", access.Ingest)
	viewerA := secret("team-a", access.Viewer)
	revoked, tok, _ := tokens.Create(ctx, access.Spec{Tenant: "team-a", Role: access.Viewer})
	if err := tokens.Revoke(ctx, tok.ID); err != nil {
		t.Fatal(err)
	}

	fs := &fakeStore{}
	var ingested []Identity
	h := Handler(Options{
		Store: fs, AdminToken: "admin-secret", Tokens: tokens, Gatherer: prometheus.NewRegistry(),
		Ingest: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id, _ := IdentityFrom(r.Context())
			ingested = append(ingested, id)
		}),
	})
	for _, tc := range []struct {
		name, method, path, token string
		status                    int
	}{
		{"ingest token ingests", "POST", "/api/v1/ingest", ingestA, 200},
		{"ingest token may not search", "GET", "/api/v1/search?q=*", ingestA, 403},
		{"ingest token may not read metrics", "GET", "/metrics", ingestA, 403},
		{"viewer searches", "GET", "/api/v1/search?q=*", viewerA, 200},
		{"viewer may not ingest", "POST", "/api/v1/ingest", viewerA, 403},
		{"revoked token", "GET", "/api/v1/search?q=*", revoked, 401},
		{"unknown token", "POST", "/api/v1/ingest", "vgl_nope", 401},
		{"admin ingests", "POST", "/api/v1/ingest", "admin-secret", 200},
		{"admin profiles", "GET", "/debug/pprof/", "admin-secret", 200},
		{"viewer may not profile", "GET", "/debug/pprof/", viewerA, 403},
		{"no token may not profile", "GET", "/debug/pprof/", "", 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.path, nil)
			req.Header.Set("Authorization", "Bearer "+tc.token)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
		})
	}
	if len(ingested) != 2 || ingested[0].Tenant != "team-a" || !ingested[0].Can(access.IngestEvents) || ingested[0].Can(access.Read) || ingested[1].Tenant != "" || !ingested[1].Scope.All {
		t.Errorf("ingest identities: %+v", ingested)
	}
	// A viewer's searches are confined to its tenant, whatever it asks.
	req := httptest.NewRequest("GET", "/api/v1/search?q=*&tenant=team-b", nil)
	req.Header.Set("Authorization", "Bearer "+viewerA)
	h.ServeHTTP(httptest.NewRecorder(), req)
	if fs.req.Scope.All || len(fs.req.Scope.Tenants) != 0 && !slices.Equal(fs.req.Scope.Tenants, []string{"team-a"}) {
		t.Errorf("a team-a viewer asking for team-b got scope %+v", fs.req.Scope)
	}
}
