package main

import (
	"bytes"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/access"
	"github.com/vigilsec/vigil/query"
	"github.com/vigilsec/vigil/web"
)

func TestIngestIdentity(t *testing.T) {
	identify := ingestIdentity("default")
	ingester := func(tenants ...string) web.Identity {
		return web.Identity{Identity: access.Identity{Name: "ci"}, Scope: query.Scope{Tenants: tenants}, Tenant: tenants[0]}
	}
	admin := web.Identity{Identity: access.Identity{Name: "admin"}, Scope: query.Scope{All: true}}
	for _, tc := range []struct {
		name       string
		id         web.Identity
		query      string
		tenant     string
		wantErr    bool
		wantSender string
	}{
		{name: "ingest token", id: ingester("team-a"), tenant: "team-a", wantSender: "ci"},
		{name: "ingest token naming its tenant", id: ingester("team-a"), query: "tenant=team-a", tenant: "team-a", wantSender: "ci"},
		{name: "ingest token of another tenant", id: ingester("team-a"), query: "tenant=team-b", wantErr: true},
		{name: "admin, default tenant", id: admin, tenant: "default", wantSender: "admin"},
		{name: "admin names a tenant", id: admin, query: "tenant=team-b", tenant: "team-b", wantSender: "admin"},
		{name: "admin names a hostile tenant", id: admin, query: "tenant=%27%3B+DROP", wantErr: true},
		{name: "admin may not name the system tenant", id: admin, query: "tenant=_system", wantErr: true},
		{name: "ingester of two tenants names none", id: web.Identity{Identity: access.Identity{Name: "ci"}, Scope: query.Scope{Tenants: []string{"a", "b"}}}, wantErr: true},
		{name: "ingester of two tenants names one", id: web.Identity{Identity: access.Identity{Name: "ci"}, Scope: query.Scope{Tenants: []string{"a", "b"}}}, query: "tenant=b", tenant: "b", wantSender: "ci"},
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

// TestServeRoleNeedsScale: a role is a node of a scale-out, which an
// embedded server is not; a role that does not exist is refused too.
func TestServeRoleNeedsScale(t *testing.T) {
	for _, tc := range []struct{ role, want string }{
		{"ingest", "--role ingest makes this a node of a scale-out"},
		{"router", `--role "router": one of ingest, process, query and all`},
	} {
		var out, errOut bytes.Buffer
		code := run(t.Context(), []string{"serve", "--data", t.TempDir(), "--listen", "127.0.0.1:0", "--role", tc.role}, &out, &errOut)
		if code == 0 || !strings.Contains(errOut.String(), tc.want) {
			t.Errorf("--role %s: exit %d, %q; want an error saying %q", tc.role, code, errOut.String(), tc.want)
		}
	}
}
