package main

import (
	"net/http/httptest"
	"testing"

	"github.com/vigilsec/vigil/access"
	"github.com/vigilsec/vigil/web"
)

func TestIngestIdentity(t *testing.T) {
	identify := ingestIdentity("default")
	for _, tc := range []struct {
		name       string
		id         web.Identity
		query      string
		tenant     string
		wantErr    bool
		wantSender string
	}{
		{name: "ingest token", id: web.Identity{Name: "ci", Role: access.Ingest, Tenant: "team-a"}, tenant: "team-a", wantSender: "ci"},
		{name: "ingest token naming its tenant", id: web.Identity{Name: "ci", Role: access.Ingest, Tenant: "team-a"}, query: "tenant=team-a", tenant: "team-a", wantSender: "ci"},
		{name: "ingest token of another tenant", id: web.Identity{Name: "ci", Role: access.Ingest, Tenant: "team-a"}, query: "tenant=team-b", wantErr: true},
		{name: "admin, default tenant", id: web.Identity{Name: "admin", Role: access.Admin}, tenant: "default", wantSender: "admin"},
		{name: "admin names a tenant", id: web.Identity{Name: "admin", Role: access.Admin}, query: "tenant=team-b", tenant: "team-b", wantSender: "admin"},
		{name: "admin names a hostile tenant", id: web.Identity{Name: "admin", Role: access.Admin}, query: "tenant=%27%3B+DROP", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/api/v1/ingest?"+tc.query, nil)
			r = r.WithContext(web.WithIdentity(r.Context(), tc.id))
			tenant, sender, err := identify(r)
			if (err != nil) != tc.wantErr || tenant != tc.tenant || !tc.wantErr && sender != tc.wantSender {
				t.Fatalf("got %q %q %v; want %q %q, error %v", tenant, sender, err, tc.tenant, tc.wantSender, tc.wantErr)
			}
		})
	}
}
