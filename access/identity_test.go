package access

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/query"
)

// scopeString renders a scope for comparison: its filters as text.
func scopeString(s query.Scope) string {
	var b strings.Builder
	if s.All {
		b.WriteString("all ")
	}
	b.WriteString("tenants=" + strings.Join(s.Tenants, ","))
	for _, sh := range s.Shares {
		f := "<nil>"
		if sh.Filter != nil {
			f = sh.Filter.String()
		}
		b.WriteString(" share{" + sh.Grant + " " + sh.Tenant + " " + f + " " + sh.From.Format(time.RFC3339) + " " + sh.To.Format(time.RFC3339) + " redact=" + strings.Join(sh.Redact, ",") + "}")
	}
	return b.String()
}

func auditShare(tenant string) query.Share {
	f, err := query.Parse(`resources:"tenant:` + tenant + `"`)
	if err != nil {
		panic(err)
	}
	return query.Share{Grant: "audit of " + tenant, Tenant: SystemTenant, Filter: f}
}

func TestScope(t *testing.T) {
	b := func(r Role, tenant string) Binding { return Binding{Role: r, Tenant: tenant} }
	shared := query.Share{Grant: "g-1", Tenant: "owner", Redact: []string{"src_ip"}}
	for _, tc := range []struct {
		name     string
		bindings []Binding
		shares   []query.Share
		p        Permission
		want     query.Scope
	}{
		{"nothing", nil, nil, Read, query.Scope{}},
		{"viewer of a", []Binding{b(Viewer, "a")}, nil, Read, query.Scope{Tenants: []string{"a"}}},
		{"viewer of a cannot hunt", []Binding{b(Viewer, "a")}, nil, Hunt, query.Scope{}},
		{"viewer of a reads no audit", []Binding{b(Viewer, "a")}, nil, ReadAudit, query.Scope{}},
		{"viewer of a and analyst of every tenant", []Binding{b(Viewer, "a"), b(Analyst, AllTenants)}, nil, Read, query.Scope{All: true, Tenants: []string{"a"}}},
		{"analyst of every tenant hunts all", []Binding{b(Analyst, AllTenants)}, nil, Hunt, query.Scope{All: true}},
		{"analyst does not manage", []Binding{b(Analyst, AllTenants)}, nil, Manage, query.Scope{}},
		{"tenants once each", []Binding{b(Viewer, "a"), b(Analyst, "a"), b(Viewer, "b")}, nil, Read, query.Scope{Tenants: []string{"a", "b"}}},
		{"only the roles allowing it", []Binding{b(Viewer, "a"), b(Analyst, "b"), b(Ingest, "c")}, nil, Hunt, query.Scope{Tenants: []string{"b"}}},
		{"ingest", []Binding{b(Ingest, "c")}, nil, IngestEvents, query.Scope{Tenants: []string{"c"}}},
		{"ingest reads nothing", []Binding{b(Ingest, "c")}, nil, Read, query.Scope{}},
		{"auditor of every tenant", []Binding{b(Auditor, AllTenants)}, nil, ReadAudit, query.Scope{Tenants: []string{SystemTenant}}},
		{"auditor reads no events", []Binding{b(Auditor, AllTenants)}, nil, Read, query.Scope{}},
		{"admin of every tenant reads the trail", []Binding{b(Admin, AllTenants)}, nil, ReadAudit, query.Scope{Tenants: []string{SystemTenant}}},
		{"auditor of a", []Binding{b(Auditor, "a")}, nil, ReadAudit, query.Scope{Shares: []query.Share{auditShare("a")}}},
		{"auditor of a and b", []Binding{b(Auditor, "a"), b(Admin, "b")}, nil, ReadAudit, query.Scope{Shares: []query.Share{auditShare("a"), auditShare("b")}}},
		{"auditor of a and every tenant", []Binding{b(Auditor, "a"), b(Auditor, AllTenants)}, nil, ReadAudit, query.Scope{Tenants: []string{SystemTenant}}},
		{"shares are read", []Binding{b(Viewer, "a")}, []query.Share{shared}, Read, query.Scope{Tenants: []string{"a"}, Shares: []query.Share{shared}}},
		{"shares are hunted", nil, []query.Share{shared}, Hunt, query.Scope{Shares: []query.Share{shared}}},
		{"shares are not worked", []Binding{b(Analyst, "a")}, []query.Share{shared}, Work, query.Scope{Tenants: []string{"a"}}},
		{"shares are not audit", []Binding{b(Auditor, "a")}, []query.Share{shared}, ReadAudit, query.Scope{Shares: []query.Share{auditShare("a")}}},
	} {
		id := &Identity{Bindings: tc.bindings, Shares: tc.shares}
		got := id.Scope(tc.p)
		if scopeString(got) != scopeString(tc.want) {
			t.Errorf("%s: Scope(%s) = %s\nwant %s", tc.name, tc.p, scopeString(got), scopeString(tc.want))
		}
	}

	// The scope's shares are the identity's copy.
	id := &Identity{Bindings: []Binding{b(Viewer, "a")}, Shares: []query.Share{shared}}
	s := id.Scope(Read)
	s.Shares[0].Tenant = "mallory"
	if id.Shares[0].Tenant != "owner" {
		t.Error("changing a scope's share changed the identity's")
	}
}

func TestScopeOfResolved(t *testing.T) {
	d, _, _, _ := newDirectory(t)
	alice := mustPrincipal(t, d, "alice", User)
	aud := mustPrincipal(t, d, "aud", User)
	audA := mustPrincipal(t, d, "aud-a", User)
	mustBind(t, d, PrincipalSubject(alice.ID), Viewer, "a")
	mustGroup(t, d, "csirt", alice)
	mustBind(t, d, GroupSubject("csirt"), Analyst, AllTenants)
	mustBind(t, d, PrincipalSubject(aud.ID), Auditor, AllTenants)
	mustBind(t, d, PrincipalSubject(audA.ID), Auditor, "a")

	id := mustResolve(t, d, alice.ID)
	if s := id.Scope(Read); !s.All || !s.Includes("a") || !s.Includes("zz") || s.Includes(SystemTenant) {
		t.Errorf("viewer of a, analyst of *: Scope(Read) = %s; want All", scopeString(s))
	}
	audID := mustResolve(t, d, aud.ID)
	if s := audID.Scope(ReadAudit); scopeString(s) != scopeString(query.Scope{Tenants: []string{SystemTenant}}) {
		t.Errorf("auditor of *: Scope(ReadAudit) = %s; want tenants=_system", scopeString(s))
	}
	audAID := mustResolve(t, d, audA.ID)
	s := audAID.Scope(ReadAudit)
	if s.All || len(s.Tenants) != 0 || len(s.Shares) != 1 {
		t.Fatalf("auditor of a: Scope(ReadAudit) = %s; want one share of _system", scopeString(s))
	}
	if sh := s.Shares[0]; sh.Tenant != SystemTenant || sh.Filter == nil || sh.Filter.String() != auditShare("a").Filter.String() || len(sh.Filter.Pipes) != 0 || len(sh.Redact) != 0 {
		t.Errorf("auditor of a: share %+v (filter %v); want _system filtered on resources:\"tenant:a\"", sh, sh.Filter)
	}
	if err := query.CheckShare(s.Shares[0]); err != nil {
		t.Errorf("the auditor's share is not one a grant may hold: %v", err)
	}
}

func TestCan(t *testing.T) {
	b := func(r Role, tenant string) Binding { return Binding{Role: r, Tenant: tenant} }
	shares := []query.Share{{Grant: "g-1", Tenant: "shared"}}
	for _, tc := range []struct {
		name     string
		bindings []Binding
		shares   []query.Share
		p        Permission
		tenant   string
		can, in  bool // Can(p), CanIn(p, tenant)
	}{
		{"viewer reads its tenant", []Binding{b(Viewer, "a")}, nil, Read, "a", true, true},
		{"viewer reads no other", []Binding{b(Viewer, "a")}, nil, Read, "b", true, false},
		{"viewer does not hunt", []Binding{b(Viewer, "a")}, nil, Hunt, "a", false, false},
		{"viewer does not read the trail", []Binding{b(Viewer, "a")}, nil, Read, SystemTenant, true, false},
		{"a share is not the tenant", []Binding{b(Viewer, "a")}, shares, Read, "shared", true, false},
		{"a share alone is enough to read", nil, shares, Read, "shared", true, false},
		{"a share alone is not enough to hunt", nil, shares, Hunt, "shared", false, false},
		{"a share alone is not enough to work", nil, shares, Work, "shared", false, false},
		{"a share lets any binding read, but not in its own tenant", []Binding{b(Ingest, "c")}, shares, Read, "c", true, false},
		{"analyst of every tenant", []Binding{b(Analyst, AllTenants)}, nil, Work, "anything", true, true},
		{"every tenant but the system's", []Binding{b(Analyst, AllTenants)}, nil, Read, SystemTenant, true, false},
		{"analyst does not manage", []Binding{b(Analyst, AllTenants)}, nil, Manage, "a", false, false},
		{"responder responds", []Binding{b(Responder, "a")}, nil, Respond, "a", true, true},
		{"analyst does not respond", []Binding{b(Analyst, "a")}, nil, Respond, "a", false, false},
		{"admin manages its tenant", []Binding{b(Admin, "a")}, nil, Manage, "a", true, true},
		{"admin of a manages no other", []Binding{b(Admin, "a")}, nil, Manage, "b", true, false},
		{"ingest ingests", []Binding{b(Ingest, "c")}, nil, IngestEvents, "c", true, true},
		{"ingest does not read", []Binding{b(Ingest, "c")}, nil, Read, "c", false, false},
		{"auditor of every tenant reads the trail", []Binding{b(Auditor, AllTenants)}, nil, ReadAudit, SystemTenant, true, true},
		{"auditor of a reads part of the trail", []Binding{b(Auditor, "a")}, nil, ReadAudit, SystemTenant, true, false},
		{"auditor reads no events", []Binding{b(Auditor, AllTenants)}, nil, Read, "a", false, false},
		{"nothing", nil, nil, Read, "a", false, false},
	} {
		id := &Identity{Bindings: tc.bindings, Shares: tc.shares}
		if got := id.Can(tc.p); got != tc.can {
			t.Errorf("%s: Can(%s) = %v, want %v", tc.name, tc.p, got, tc.can)
		}
		if got := id.CanIn(tc.p, tc.tenant); got != tc.in {
			t.Errorf("%s: CanIn(%s, %q) = %v, want %v", tc.name, tc.p, tc.tenant, got, tc.in)
		}
	}
}

func TestIdentityTenant(t *testing.T) {
	b := func(r Role, tenant string) Binding { return Binding{Role: r, Tenant: tenant} }
	for _, tc := range []struct {
		name     string
		bindings []Binding
		p        Permission
		want     string
	}{
		{"one", []Binding{b(Ingest, "c")}, IngestEvents, "c"},
		{"one, twice", []Binding{b(Ingest, "c"), b(Admin, "c")}, IngestEvents, "c"},
		{"one where it holds p", []Binding{b(Ingest, "c"), b(Viewer, "d")}, IngestEvents, "c"},
		{"several", []Binding{b(Ingest, "c"), b(Admin, "d")}, IngestEvents, ""},
		{"every tenant", []Binding{b(Admin, AllTenants)}, IngestEvents, ""},
		{"every tenant and one", []Binding{b(Admin, AllTenants), b(Ingest, "c")}, IngestEvents, ""},
		{"none", []Binding{b(Viewer, "c")}, IngestEvents, ""},
		{"the trail is not a tenant to act in", []Binding{b(Auditor, AllTenants)}, ReadAudit, SystemTenant},
	} {
		id := &Identity{Bindings: tc.bindings}
		if got := id.Tenant(tc.p); got != tc.want {
			t.Errorf("%s: Tenant(%s) = %q, want %q", tc.name, tc.p, got, tc.want)
		}
	}
}

func TestSearchScope(t *testing.T) {
	id := &Identity{Bindings: []Binding{{Viewer, "b"}, {Auditor, "a"}, {Analyst, "b"}}}
	want := query.Scope{Tenants: []string{"b"}, Shares: []query.Share{auditShare("a")}}
	if got := id.SearchScope(); scopeString(got) != scopeString(want) {
		t.Errorf("SearchScope = %s, want %s", scopeString(got), scopeString(want))
	}
	id = &Identity{Bindings: []Binding{{Analyst, AllTenants}, {Auditor, AllTenants}}}
	if got := id.SearchScope(); !got.All || !slices.Equal(got.Tenants, []string{SystemTenant}) {
		t.Errorf("SearchScope of analyst and auditor of * = %s, want all and _system", scopeString(got))
	}
}

func TestTokenIdentity(t *testing.T) {
	ctx := context.Background()
	d, ts, _, _ := newDirectory(t)
	alice := mustPrincipal(t, d, "alice", User)
	bob := mustPrincipal(t, d, "bob", User)
	mustGroup(t, d, "csirt", alice)
	mustBind(t, d, PrincipalSubject(alice.ID), Viewer, "a")
	mustBind(t, d, GroupSubject("csirt"), Analyst, AllTenants)

	_, viewerTok := mustCreate(t, ts, Spec{Name: "dash", Tenant: "b", Role: Viewer})
	_, adminTok := mustCreate(t, ts, Spec{Role: Admin})
	_, ingestTok := mustCreate(t, ts, Spec{Tenant: "c", Role: Ingest})
	_, aliceTok := mustCreate(t, ts, Spec{Principal: alice.ID})
	_, bobTok := mustCreate(t, ts, Spec{Principal: bob.ID})

	for _, tc := range []struct {
		name string
		tok  Token
		want Identity
	}{
		{"own role and tenant", viewerTok, Identity{Name: "dash", Credential: "token " + viewerTok.ID, Bindings: []Binding{{Viewer, "b"}}}},
		{"admin without tenant", adminTok, Identity{Name: "admin", Credential: "token " + adminTok.ID, Bindings: []Binding{{Admin, AllTenants}}}},
		{"ingest", ingestTok, Identity{Name: "c-ingest", Credential: "token " + ingestTok.ID, Bindings: []Binding{{Ingest, "c"}}}},
		{"no name", Token{ID: "t1", Tenant: "b", Role: Viewer}, Identity{Name: "token t1", Credential: "token t1", Bindings: []Binding{{Viewer, "b"}}}},
		{"a principal's", aliceTok, Identity{Principal: alice.ID, Name: "alice", Credential: "token " + aliceTok.ID, Groups: []string{"csirt"},
			Bindings: []Binding{{Analyst, AllTenants}, {Viewer, "a"}}}},
		{"a principal's without bindings", bobTok, Identity{Principal: bob.ID, Name: "bob", Credential: "token " + bobTok.ID}},
	} {
		got, err := d.TokenIdentity(ctx, tc.tok)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if got.Principal != tc.want.Principal || got.Name != tc.want.Name || got.Credential != tc.want.Credential || got.Elevated != "" ||
			!slices.Equal(got.Groups, tc.want.Groups) || !slices.Equal(got.Bindings, tc.want.Bindings) || len(got.Shares) != 0 {
			t.Errorf("%s: TokenIdentity = %+v\nwant %+v", tc.name, got, tc.want)
		}
	}
	if id, _ := d.TokenIdentity(ctx, adminTok); !id.Scope(Manage).All || !id.Scope(Read).All {
		t.Errorf("an admin token without tenant: scopes %s, %s; want all", scopeString(id.Scope(Manage)), scopeString(id.Scope(Read)))
	}

	if err := d.Disable(ctx, bob.ID); err != nil {
		t.Fatal(err)
	}
	if id, err := d.TokenIdentity(ctx, bobTok); err == nil || !strings.Contains(err.Error(), bobTok.ID) {
		t.Errorf("a disabled principal's token: %+v, %v; want an error naming the token", id, err)
	}
	if id, err := d.TokenIdentity(ctx, Token{ID: "t2", Principal: "nosuchid"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("an unknown principal's token: %+v, %v; want ErrNotFound", id, err)
	}
}

func TestCreatePrincipalToken(t *testing.T) {
	ctx := context.Background()
	d, ts, _, _ := newDirectory(t)
	alice := mustPrincipal(t, d, "alice", User)
	for _, tc := range []struct {
		name string
		spec Spec
		err  error  // errors.Is, or nil
		says string // what the error says
	}{
		{"principal and role", Spec{Principal: alice.ID, Role: Admin}, nil, "not a role or tenant of its own"},
		{"principal and tenant", Spec{Principal: alice.ID, Tenant: "a"}, nil, "not a role or tenant of its own"},
		{"principal, role and tenant", Spec{Principal: alice.ID, Role: Viewer, Tenant: "a"}, nil, "not a role or tenant of its own"},
		{"unknown principal", Spec{Principal: "nosuchid"}, ErrNotFound, ""},
		{"principal by name", Spec{Principal: "alice"}, ErrNotFound, ""},
	} {
		secret, tok, err := ts.Create(ctx, tc.spec)
		if err == nil || (tc.err != nil && !errors.Is(err, tc.err)) || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: Create = %q, %+v, %v; want an error (%v) saying %q", tc.name, secret, tok, err, tc.err, tc.says)
		}
	}
	if toks, err := ts.List(ctx); err != nil || len(toks) != 0 {
		t.Errorf("after refused creates, List = %+v, %v", toks, err)
	}
	secret, tok := mustCreate(t, ts, Spec{Principal: alice.ID})
	if tok.Principal != alice.ID || tok.Role != "" || tok.Tenant != "" || tok.Name != "principal "+alice.ID {
		t.Errorf("a principal's token: %+v", tok)
	}
	got, err := ts.Authenticate(ctx, secret)
	if err != nil || got.Principal != alice.ID {
		t.Errorf("Authenticate = %+v, %v; want alice's token", got, err)
	}
}

func TestElevate(t *testing.T) {
	ctx := context.Background()
	d, ts, _, c := newDirectory(t)
	alice := mustPrincipal(t, d, "alice", User) // of tenant a only
	bob := mustPrincipal(t, d, "bob", User)     // of the CSIRT
	carol := mustPrincipal(t, d, "carol", User) // of the CSIRT, disabled
	mustBind(t, d, PrincipalSubject(alice.ID), Admin, "a")
	mustGroup(t, d, "csirt", bob, carol)
	mustBind(t, d, GroupSubject("csirt"), Viewer, AllTenants)
	if err := d.Disable(ctx, carol.ID); err != nil {
		t.Fatal(err)
	}
	const reason = "incident 4711: ransomware on the payroll hosts"

	for _, tc := range []struct {
		name      string
		principal string
		role      Role
		reason    string
		dur       time.Duration
		says      string
	}{
		{"not of the CSIRT", alice.ID, Admin, reason, time.Hour, "only a person bound to read in every tenant"},
		{"disabled", carol.ID, Admin, reason, time.Hour, "disabled"},
		{"unknown", "nosuchid", Admin, reason, time.Hour, "not found"},
		{"no reason", bob.ID, Admin, "", time.Hour, "reason"},
		{"nine characters", bob.ID, Admin, "123456789", time.Hour, "reason"},
		{"nine characters padded", bob.ID, Admin, "   123456789   \t\n", time.Hour, "reason"},
		{"nine runes of two bytes", bob.ID, Admin, strings.Repeat("é", 9), time.Hour, "reason"},
		{"too long", bob.ID, Admin, reason, MaxElevation + time.Nanosecond, "at most"},
		{"a day", bob.ID, Admin, reason, 24 * time.Hour, "at most"},
		{"no time", bob.ID, Admin, reason, 0, "at most"},
		{"negative", bob.ID, Admin, reason, -time.Hour, "at most"},
		{"unknown role", bob.ID, "root", reason, time.Hour, "unknown role"},
	} {
		e, err := d.Elevate(ctx, tc.principal, tc.role, tc.reason, tc.dur)
		if err == nil || !strings.Contains(err.Error(), tc.says) || e != (Elevation{}) {
			t.Errorf("%s: Elevate = %+v, %v; want an error saying %q", tc.name, e, err, tc.says)
		}
	}
	if id := mustResolve(t, d, alice.ID); id.Elevated != "" || slices.Contains(id.Bindings, Binding{Admin, AllTenants}) {
		t.Fatalf("a refused elevation took effect: %+v", id)
	}
	if id := mustResolve(t, d, bob.ID); id.Elevated != "" || !slices.Equal(id.Bindings, []Binding{{Viewer, AllTenants}}) {
		t.Fatalf("a refused elevation took effect: %+v", id)
	}

	start := c.now()
	e, err := d.Elevate(ctx, bob.ID, Admin, "  "+reason+"\n", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Elevation{ID: e.ID, Principal: bob.ID, Role: Admin, Reason: reason, Started: start, Expires: start.Add(time.Hour)}); e != want || !strings.HasPrefix(e.ID, "e-") {
		t.Errorf("Elevate = %+v, want %+v", e, want)
	}
	elevated := []Binding{{Viewer, AllTenants}, {Admin, AllTenants}}
	_, bobTok := mustCreate(t, ts, Spec{Principal: bob.ID})
	for _, step := range []struct {
		at       time.Duration
		elevated bool
	}{
		{0, true},
		{time.Minute, true},
		{time.Hour - time.Nanosecond, true},
		{time.Hour, false},
		{2 * time.Hour, false},
	} {
		c.t = start.Add(step.at)
		id := mustResolve(t, d, bob.ID)
		tid, err := d.TokenIdentity(ctx, bobTok)
		if err != nil {
			t.Fatal(err)
		}
		if step.elevated {
			if id.Elevated != e.ID || !slices.Equal(id.Bindings, elevated) || !id.CanIn(Manage, "a") {
				t.Errorf("at +%v: %+v; want elevated by %s to %+v", step.at, id, e.ID, elevated)
			}
			if tid.Elevated != e.ID || !slices.Equal(tid.Bindings, elevated) {
				t.Errorf("at +%v: bob's token: %+v; want elevated", step.at, tid)
			}
		} else if id.Elevated != "" || !slices.Equal(id.Bindings, elevated[:1]) || id.Can(Manage) {
			t.Errorf("at +%v: %+v; want the elevation over", step.at, id)
		}
	}

	// Ended early.
	e2, err := d.Elevate(ctx, bob.ID, Responder, reason, MaxElevation)
	if err != nil {
		t.Fatalf("elevating for MaxElevation: %v", err)
	}
	if id := mustResolve(t, d, bob.ID); id.Elevated != e2.ID || !slices.Equal(id.Bindings, []Binding{{Viewer, AllTenants}, {Responder, AllTenants}}) {
		t.Errorf("elevated again: %+v", id)
	}
	c.advance(time.Minute)
	if err := d.EndElevation(ctx, bob.ID); err != nil {
		t.Fatal(err)
	}
	if id := mustResolve(t, d, bob.ID); id.Elevated != "" || !slices.Equal(id.Bindings, elevated[:1]) {
		t.Errorf("after EndElevation: %+v", id)
	}
	if err := d.EndElevation(ctx, bob.ID); err != nil {
		t.Errorf("ending no elevation: %v", err)
	}
	if err := d.EndElevation(ctx, alice.ID); err != nil {
		t.Errorf("ending no elevation of someone never elevated: %v", err)
	}
}
