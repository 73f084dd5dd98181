package access

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/query"
)

// grantFixture is a directory with tenants a, b and c, a viewer of each,
// a group of partners and a principal outside it.
type grantFixture struct {
	d                 *Directory
	ts                *Tokens
	c                 *clock
	va, vb, vc        Principal // viewers of a, b and c
	partner, outsider Principal // in the group partners, and in none
	auditorB, csirt   Principal // auditor of b; analyst of every tenant
}

func newGrantFixture(t *testing.T) *grantFixture {
	t.Helper()
	d, ts, _, c := newDirectory(t)
	f := &grantFixture{d: d, ts: ts, c: c,
		va: mustPrincipal(t, d, "va", User), vb: mustPrincipal(t, d, "vb", User), vc: mustPrincipal(t, d, "vc", User),
		partner: mustPrincipal(t, d, "partner", User), outsider: mustPrincipal(t, d, "outsider", Service),
		auditorB: mustPrincipal(t, d, "auditor-b", User), csirt: mustPrincipal(t, d, "csirt", User),
	}
	mustBind(t, d, PrincipalSubject(f.va.ID), Viewer, "a")
	mustBind(t, d, PrincipalSubject(f.vb.ID), Viewer, "b")
	mustBind(t, d, PrincipalSubject(f.vc.ID), Viewer, "c")
	mustBind(t, d, PrincipalSubject(f.auditorB.ID), Auditor, "b")
	mustBind(t, d, PrincipalSubject(f.csirt.ID), Analyst, AllTenants)
	mustGroup(t, d, "partners", f.partner)
	return f
}

// validGrant is a grant CreateGrant accepts, from a to b.
func (f *grantFixture) validGrant() Grant {
	return Grant{Owner: "a", Grantee: "tenant:b", Filter: "action:login", Reason: "engagement 42", CreatedBy: "va",
		Expires: f.c.now().Add(24 * time.Hour)}
}

func mustGrant(t *testing.T, d *Directory, g Grant) Grant {
	t.Helper()
	g, err := d.CreateGrant(context.Background(), g)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestCreateGrant(t *testing.T) {
	ctx := context.Background()
	f := newGrantFixture(t)
	now := f.c.now()
	for _, tc := range []struct {
		name   string
		change func(*Grant)
		err    error  // errors.Is, or nil
		says   string // what the error says; "" for a grant that is made
	}{
		{"valid", func(*Grant) {}, nil, ""},
		{"to a group", func(g *Grant) { g.Grantee = "group:partners" }, nil, ""},
		{"to a principal", func(g *Grant) { g.Grantee = "principal:" + f.outsider.ID }, nil, ""},
		{"for MaxGrant", func(g *Grant) { g.Expires = now.Add(MaxGrant) }, nil, ""},
		{"everything", func(g *Grant) { g.Filter = "" }, nil, ""},
		{"everything, blank filter", func(g *Grant) { g.Filter = "  " }, nil, ""},
		{"from only", func(g *Grant) { g.From = now.Add(-time.Hour) }, nil, ""},
		{"redacting", func(g *Grant) { g.Redact = []string{"src_ip", "requestParameters"} }, nil, ""},

		{"bad owner", func(g *Grant) { g.Owner = "A" }, nil, "not valid"},
		{"no owner", func(g *Grant) { g.Owner = "" }, nil, "not valid"},
		{"hostile owner", func(g *Grant) { g.Owner = "a'; DROP TABLE grants; --" }, nil, "not valid"},
		{"the system tenant", func(g *Grant) { g.Owner = SystemTenant; g.Grantee = "tenant:a" }, nil, "not valid"},
		{"grantee without a kind", func(g *Grant) { g.Grantee = "b" }, nil, "is not tenant:NAME, group:NAME or principal:ID"},
		{"grantee of another kind", func(g *Grant) { g.Grantee = "user:vb" }, nil, "is not tenant:NAME, group:NAME or principal:ID"},
		{"no grantee", func(g *Grant) { g.Grantee = "" }, nil, "is not tenant:NAME, group:NAME or principal:ID"},
		{"unknown tenant", func(g *Grant) { g.Grantee = "tenant:zz" }, ErrNotFound, ""},
		{"bad tenant", func(g *Grant) { g.Grantee = "tenant:B" }, nil, "not valid"},
		{"to the system tenant", func(g *Grant) { g.Grantee = "tenant:" + SystemTenant }, nil, "not valid"},
		{"unknown group", func(g *Grant) { g.Grantee = "group:nosuch" }, ErrNotFound, ""},
		{"unknown principal", func(g *Grant) { g.Grantee = "principal:nosuchid" }, ErrNotFound, ""},
		{"principal by name", func(g *Grant) { g.Grantee = "principal:vb" }, ErrNotFound, ""},
		{"to the owner", func(g *Grant) { g.Grantee = "tenant:a" }, nil, "reads its own events"},
		{"no expiry", func(g *Grant) { g.Expires = time.Time{} }, nil, "needs an expiry"},
		{"expiring now", func(g *Grant) { g.Expires = now }, nil, "not in the future"},
		{"expired", func(g *Grant) { g.Expires = now.Add(-time.Hour) }, nil, "not in the future"},
		{"longer than MaxGrant", func(g *Grant) { g.Expires = now.Add(MaxGrant + time.Nanosecond) }, nil, "at most 366 days"},
		{"ten years", func(g *Grant) { g.Expires = now.AddDate(10, 0, 0) }, nil, "at most 366 days"},
		{"no reason", func(g *Grant) { g.Reason = "" }, nil, "needs a reason"},
		{"blank reason", func(g *Grant) { g.Reason = " \t\n" }, nil, "needs a reason"},
		{"a command", func(g *Grant) { g.Filter = "action:login | stats count()" }, nil, "cannot have commands"},
		{"only a command", func(g *Grant) { g.Filter = "| stats count()" }, nil, "cannot have commands"},
		{"filter does not parse", func(g *Grant) { g.Filter = "action:(login" }, nil, "filter"},
		{"filter names a redacted field", func(g *Grant) { g.Filter = "src_ip:10.0.0.1"; g.Redact = []string{"src_ip"} }, nil, "redacts"},
		{"filter names a redacted path", func(g *Grant) {
			g.Filter = "action:login AND NOT requestParameters.bucketName:secret"
			g.Redact = []string{"requestParameters"}
		}, nil, "redacts"},
		{"redacting the tenant", func(g *Grant) { g.Redact = []string{"tenant"} }, nil, "cannot be redacted"},
		{"redacting nothing", func(g *Grant) { g.Redact = []string{""} }, nil, "not a field name"},
		{"from after to", func(g *Grant) { g.From, g.To = now, now.Add(-time.Hour) }, nil, "from must be before to"},
		{"from is to", func(g *Grant) { g.From, g.To = now, now }, nil, "from must be before to"},
	} {
		g := f.validGrant()
		tc.change(&g)
		want := g
		got, err := f.d.CreateGrant(ctx, g)
		if tc.says != "" || tc.err != nil {
			if err == nil || (tc.err != nil && !errors.Is(err, tc.err)) || !strings.Contains(err.Error(), tc.says) {
				t.Errorf("%s: CreateGrant = %+v, %v; want an error (%v) saying %q", tc.name, got, err, tc.err, tc.says)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		want.ID, want.Created = got.ID, now
		if want.Redact == nil {
			want.Redact = []string{}
		}
		if !reflect.DeepEqual(got, want) || !strings.HasPrefix(got.ID, "g-") {
			t.Errorf("%s: CreateGrant = %+v\nwant %+v", tc.name, got, want)
		}
		if stored, err := f.d.Grant(ctx, got.ID); err != nil || !reflect.DeepEqual(stored, got) {
			t.Errorf("%s: Grant = %+v, %v\nwant %+v", tc.name, stored, err, got)
		}
	}
	gs, err := f.d.Grants(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(gs) != 8 {
		t.Errorf("%d grants made, want the 8 valid ones", len(gs))
	}
	if _, err := f.d.Grant(ctx, "g-nosuch"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Grant(unknown): %v, want ErrNotFound", err)
	}
}

// sharesOf returns the shares of the principal's identity.
func sharesOf(t *testing.T, d *Directory, p Principal) []query.Share {
	t.Helper()
	return mustResolve(t, d, p.ID).Shares
}

func TestGrantShares(t *testing.T) {
	ctx := context.Background()
	f := newGrantFixture(t)
	now := f.c.now()
	g := f.validGrant()
	g.From, g.To = now.AddDate(0, -1, 0), now.AddDate(0, 0, -1)
	g.Redact = []string{"src_ip", "requestParameters"}
	g = mustGrant(t, f.d, g)
	toPartners := f.validGrant()
	toPartners.Grantee, toPartners.Filter, toPartners.Expires = "group:partners", "", now.Add(time.Hour)
	toPartners = mustGrant(t, f.d, toPartners)
	toOutsider := f.validGrant()
	toOutsider.Grantee, toOutsider.Owner = "principal:"+f.outsider.ID, "c"
	toOutsider = mustGrant(t, f.d, toOutsider)

	_, viewerB := mustCreate(t, f.ts, Spec{Tenant: "b", Role: Viewer})
	_, ingestB := mustCreate(t, f.ts, Spec{Tenant: "b", Role: Ingest})
	_, viewerC := mustCreate(t, f.ts, Spec{Tenant: "c", Role: Viewer})
	_, adminAll := mustCreate(t, f.ts, Spec{Role: Admin})
	tokenShares := func(tok Token) []query.Share {
		t.Helper()
		id, err := f.d.TokenIdentity(ctx, tok)
		if err != nil {
			t.Fatal(err)
		}
		return id.Shares
	}

	filter, err := query.Parse("action:login")
	if err != nil {
		t.Fatal(err)
	}
	wantShare := query.Share{Grant: g.ID, Tenant: "a", Filter: filter, From: g.From, To: g.To, Redact: []string{"src_ip", "requestParameters"}}
	checkShare := func(who string, got []query.Share) {
		t.Helper()
		if len(got) != 1 {
			t.Errorf("%s has shares %+v, want the grant of a", who, got)
			return
		}
		sh := got[0]
		if sh.Grant != g.ID || sh.Tenant != "a" || sh.Filter == nil || sh.Filter.String() != filter.String() ||
			!sh.From.Equal(wantShare.From) || !sh.To.Equal(wantShare.To) || !slices.Equal(sh.Redact, wantShare.Redact) {
			t.Errorf("%s has share %+v (filter %v)\nwant %+v (filter %v)", who, sh, sh.Filter, wantShare, filter)
		}
	}
	checkShare("the viewer of b", sharesOf(t, f.d, f.vb))
	checkShare("a viewer token of b", tokenShares(viewerB))
	vb := mustResolve(t, f.d, f.vb.ID)
	if s := vb.Scope(Read); !slices.Equal(s.Tenants, []string{"b"}) || s.Includes("a") || len(s.Narrow("a").Shares) != 1 {
		t.Errorf("the viewer of b reads %s", scopeString(s))
	}
	if s := vb.Scope(Read).Redaction("a"); !s.Hides("src_ip") || !s.Hides("requestParameters.bucketName") || s.Hides("action") {
		t.Errorf("the viewer of b sees a's events without %+v", s)
	}
	if !vb.Can(Read) || vb.CanIn(Read, "a") {
		t.Errorf("the viewer of b: Can(Read) %v, CanIn(Read, a) %v; want true, false", vb.Can(Read), vb.CanIn(Read, "a"))
	}

	for _, tc := range []struct {
		who    string
		shares []query.Share
	}{
		{"the viewer of c", sharesOf(t, f.d, f.vc)},
		{"a viewer token of c", tokenShares(viewerC)},
		{"the viewer of a, the owner", sharesOf(t, f.d, f.va)},
		{"an ingest token of b", tokenShares(ingestB)},
		{"an auditor of b", sharesOf(t, f.d, f.auditorB)},
		{"an analyst of every tenant", sharesOf(t, f.d, f.csirt)},
		{"an admin token of every tenant", tokenShares(adminAll)},
	} {
		if len(tc.shares) != 0 {
			t.Errorf("%s has shares %+v, want none", tc.who, tc.shares)
		}
	}
	if got := sharesOf(t, f.d, f.partner); len(got) != 1 || got[0].Grant != toPartners.ID || got[0].Tenant != "a" || got[0].Filter != nil {
		t.Errorf("the partner has %+v, want the unfiltered grant to its group", got)
	}
	if got := sharesOf(t, f.d, f.outsider); len(got) != 1 || got[0].Grant != toOutsider.ID || got[0].Tenant != "c" {
		t.Errorf("the outsider has %+v, want the grant of c to it", got)
	}
	// A member added later reads what the group reads.
	if err := f.d.AddMember(ctx, "partners", f.vc.ID); err != nil {
		t.Fatal(err)
	}
	if got := sharesOf(t, f.d, f.vc); len(got) != 1 || got[0].Grant != toPartners.ID {
		t.Errorf("the viewer of c, now a partner, has %+v", got)
	}

	// Revoked.
	f.c.advance(time.Minute)
	revokedAt := f.c.now()
	if err := f.d.RevokeGrant(ctx, g.ID, "va"); err != nil {
		t.Fatal(err)
	}
	if got := sharesOf(t, f.d, f.vb); len(got) != 0 {
		t.Errorf("after RevokeGrant the viewer of b has %+v", got)
	}
	if got := tokenShares(viewerB); len(got) != 0 {
		t.Errorf("after RevokeGrant a viewer token of b has %+v", got)
	}
	f.c.advance(time.Minute)
	if err := f.d.RevokeGrant(ctx, g.ID, "someone else"); err != nil {
		t.Errorf("revoking again: %v", err)
	}
	if got, err := f.d.Grant(ctx, g.ID); err != nil || !got.Revoked.Equal(revokedAt) || got.RevokedBy != "va" || got.Active(f.c.now()) {
		t.Errorf("revoked grant = %+v, %v; want revoked at %v by va", got, err, revokedAt)
	}
	if err := f.d.RevokeGrant(ctx, "g-nosuch", "va"); !errors.Is(err, ErrNotFound) {
		t.Errorf("revoking an unknown grant: %v, want ErrNotFound", err)
	}

	// Expired: the grant to the partners runs for an hour from the start.
	for _, step := range []struct {
		at     time.Duration
		active bool
	}{
		{time.Hour - time.Nanosecond, true},
		{time.Hour, false},
		{48 * time.Hour, false},
	} {
		f.c.t = now.Add(step.at)
		got := sharesOf(t, f.d, f.partner)
		if (len(got) == 1) != step.active {
			t.Errorf("at +%v the partner has %+v, want active=%v", step.at, got, step.active)
		}
		if toPartners.Active(f.c.now()) != step.active {
			t.Errorf("at +%v Active = %v, want %v", step.at, !step.active, step.active)
		}
	}
}

func TestGrants(t *testing.T) {
	ctx := context.Background()
	f := newGrantFixture(t)
	var made []Grant // oldest first
	for _, tc := range []struct{ owner, grantee string }{
		{"a", "tenant:b"},
		{"b", "tenant:a"},
		{"a", "tenant:c"},
		{"c", "group:partners"},
		{"a", "principal:" + f.outsider.ID},
	} {
		g := f.validGrant()
		g.Owner, g.Grantee, g.Expires = tc.owner, tc.grantee, f.c.now().Add(time.Hour)
		made = append(made, mustGrant(t, f.d, g))
		f.c.advance(time.Second)
	}
	if err := f.d.RevokeGrant(ctx, made[2].ID, "va"); err != nil {
		t.Fatal(err)
	}
	f.c.advance(2 * time.Hour) // all expired: still listed
	ids := func(gs []Grant) []string {
		var out []string
		for _, g := range gs {
			out = append(out, g.ID)
		}
		return out
	}
	for _, tc := range []struct {
		name   string
		owners []string
		want   []Grant // newest first
	}{
		{"all", nil, []Grant{made[4], made[3], made[2], made[1], made[0]}},
		{"none", []string{}, nil},
		{"of a", []string{"a"}, []Grant{made[4], made[2], made[0]}},
		{"of b and c", []string{"b", "c"}, []Grant{made[3], made[1]}},
		{"of an unknown tenant", []string{"zz"}, nil},
		{"hostile", []string{"a' OR '1'='1"}, nil},
	} {
		got, err := f.d.Grants(ctx, tc.owners)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if !slices.Equal(ids(got), ids(tc.want)) {
			t.Errorf("%s: Grants(%q) = %q, want %q", tc.name, tc.owners, ids(got), ids(tc.want))
		}
	}
	got, err := f.d.Grants(ctx, []string{"a"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) == 3 && (got[1].Revoked.IsZero() || got[1].RevokedBy != "va" || !got[0].Revoked.IsZero()) {
		t.Errorf("the revoked grant lists as %+v, and another as %+v", got[1], got[0])
	}
}

// CreateGrant's documentation says the owner's tenant must exist, as the
// grantee's must: a grant of a tenant nobody has made yet would start
// sharing whatever arrives under that name once someone does.
// TestCreateGrantUnknownOwner: a tenant is known by its events, which
// the metadata database does not list, so a grant of a tenant without a
// binding or a token is made; its owner must still be a tenant name.
func TestCreateGrantUnknownOwner(t *testing.T) {
	f := newGrantFixture(t)
	g := f.validGrant()
	g.Owner = "zz"
	if _, err := f.d.CreateGrant(context.Background(), g); err != nil {
		t.Errorf("CreateGrant of the events of tenant zz: %v", err)
	}
	g.Owner = "_system"
	if _, err := f.d.CreateGrant(context.Background(), g); err == nil {
		t.Error("CreateGrant shared the audit trail")
	}
}
