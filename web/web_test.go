package web

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilsec/vigil/query"
	"github.com/vigilsec/vigil/store"
)

// fakeStore records the request it is asked.
type fakeStore struct{ req query.Request }

func (f *fakeStore) Search(_ context.Context, req query.Request) (*store.Result, error) {
	f.req = req
	return &store.Result{Columns: []string{"count"}, Rows: [][]any{{int64(3)}}}, nil
}

func (f *fakeStore) SearchQuarantine(context.Context, string, query.Scope, time.Time, time.Time, int) (*store.Result, error) {
	return &store.Result{}, nil
}

func TestSearchAPI(t *testing.T) {
	fs := &fakeStore{}
	now := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
	h := Handler(Options{Store: fs, AdminToken: "secret", Gatherer: prometheus.NewRegistry(), Now: func() time.Time { return now }})
	tests := []struct {
		name, url, token string
		status           int
	}{
		{"no token", "/api/v1/search?q=*", "", 401},
		{"wrong token", "/api/v1/search?q=*", "secreT", 401},
		{"ok", "/api/v1/search?q=*&from=-24h&tenant=team-a", "secret", 200},
		{"bad query", "/api/v1/search?q=a:(b", "secret", 400},
		{"bad time", "/api/v1/search?q=*&from=yesterday", "secret", 400},
		{"bad limit", "/api/v1/search?q=*&limit=-1", "secret", 400},
		{"health", "/healthz", "", 200},
		{"metrics", "/metrics", "", 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", tt.url, nil)
			if tt.token != "" {
				req.Header.Set("Authorization", "Bearer "+tt.token)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.status, rec.Body)
			}
			if tt.status != 200 && tt.url != "/healthz" {
				var e struct{ Error string }
				if json.Unmarshal(rec.Body.Bytes(), &e); e.Error == "" {
					t.Errorf("error response without a message: %s", rec.Body)
				}
			}
		})
	}
	// The tenant parameter narrows the caller's scope; it never widens it.
	if fs.req.Scope.All || !slices.Equal(fs.req.Scope.Tenants, []string{"team-a"}) {
		t.Errorf("scope = %+v, want team-a only", fs.req.Scope)
	}
	if !fs.req.From.Equal(now.Add(-24 * time.Hour)) {
		t.Errorf("from = %v", fs.req.From)
	}
}
