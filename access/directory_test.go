package access

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/meta"
)

// newDirectory returns a directory and the tokens of one fresh metadata
// database, both on a fake clock.
func newDirectory(t *testing.T) (*Directory, *Tokens, *meta.DB, *clock) {
	t.Helper()
	db := openDB(t, filepath.Join(t.TempDir(), "meta.db"))
	c := newClock()
	return NewDirectory(db, Options{Now: c.now}), NewTokens(db, Options{Now: c.now}), db, c
}

func mustPrincipal(t *testing.T, d *Directory, name, kind string) Principal {
	t.Helper()
	p, err := d.CreatePrincipal(context.Background(), name, kind, "")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func mustGroup(t *testing.T, d *Directory, name string, members ...Principal) {
	t.Helper()
	ctx := context.Background()
	if err := d.CreateGroup(ctx, name, "the "+name); err != nil {
		t.Fatal(err)
	}
	for _, p := range members {
		if err := d.AddMember(ctx, name, p.ID); err != nil {
			t.Fatal(err)
		}
	}
}

func mustBind(t *testing.T, d *Directory, s Subject, role Role, tenant string) {
	t.Helper()
	if err := d.Bind(context.Background(), s, Binding{Role: role, Tenant: tenant}); err != nil {
		t.Fatal(err)
	}
}

func mustResolve(t *testing.T, d *Directory, id string) Identity {
	t.Helper()
	ident, err := d.Resolve(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return ident
}

func TestCreatePrincipal(t *testing.T) {
	ctx := context.Background()
	d, _, _, c := newDirectory(t)
	for _, tc := range []struct {
		name, kind string
		ok         bool
	}{
		{"alice", User, true},
		{"alice@example.com", User, true},
		{"Bob.Smith+soc", User, true},
		{"svc-backup_1", Service, true},
		{"0", Service, true},
		{strings.Repeat("n", 128), User, true},
		{strings.Repeat("n", 129), User, false},
		{"", User, false},
		{"a'; DROP TABLE principals; --", User, false},
		{"a'; DROP TABLE", User, false},
		{"../x", User, false},
		{"x/../../etc/passwd", User, false},
		{".hidden", User, false},
		{"-flag", User, false},
		{"@example.com", User, false},
		{"a b", User, false},
		{"alice\n", User, false},
		{"alice\x00", User, false},
		{"a\x1b[31m", User, false},
		{"ålice", User, false},
		{"<script>", User, false},
		{"carol", "admin", false},
		{"carol", "", false},
		{"carol", "User", false},
		{"carol", "group", false},
	} {
		p, err := d.CreatePrincipal(ctx, tc.name, tc.kind, "Display "+tc.name)
		if !tc.ok {
			if err == nil {
				t.Errorf("CreatePrincipal(%q, %q) = %+v, want an error", tc.name, tc.kind, p)
			}
			if _, err := d.Principal(ctx, tc.name); !errors.Is(err, ErrNotFound) {
				t.Errorf("after a refused CreatePrincipal(%q, %q), Principal: %v, want ErrNotFound", tc.name, tc.kind, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("CreatePrincipal(%q, %q): %v", tc.name, tc.kind, err)
			continue
		}
		want := Principal{ID: p.ID, Name: tc.name, Kind: tc.kind, Display: "Display " + tc.name, Created: c.now()}
		if p != want || p.ID == "" {
			t.Errorf("CreatePrincipal(%q, %q) = %+v, want %+v", tc.name, tc.kind, p, want)
		}
		for _, ref := range []string{p.ID, p.Name} {
			if got, err := d.Principal(ctx, ref); err != nil || got != want {
				t.Errorf("Principal(%q) = %+v, %v; want %+v", ref, got, err, want)
			}
		}
	}
	// The hostile names did nothing to the table.
	ps, err := d.Principals(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range ps {
		names = append(names, p.Name)
	}
	want := []string{"0", "Bob.Smith+soc", "alice", "alice@example.com", strings.Repeat("n", 128), "svc-backup_1"}
	if !slices.Equal(names, want) {
		t.Errorf("Principals = %q, want %q", names, want)
	}
	if _, err := d.Principal(ctx, "nobody"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Principal(nobody): %v, want ErrNotFound", err)
	}
}

func TestCreatePrincipalDuplicate(t *testing.T) {
	ctx := context.Background()
	d, _, _, _ := newDirectory(t)
	first := mustPrincipal(t, d, "alice", User)
	for _, kind := range []string{User, Service} {
		if p, err := d.CreatePrincipal(ctx, "alice", kind, "another"); err == nil || !strings.Contains(err.Error(), "exists") {
			t.Errorf("a second alice (%s): %+v, %v; want an error saying it exists", kind, p, err)
		}
	}
	ps, err := d.Principals(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 1 || ps[0] != first {
		t.Errorf("Principals = %+v, want only %+v", ps, first)
	}
}

func TestSetPassword(t *testing.T) {
	ctx := context.Background()
	d, _, _, _ := newDirectory(t)
	alice := mustPrincipal(t, d, "alice", User)
	svc := mustPrincipal(t, d, "svc", Service)
	for _, tc := range []struct {
		name, id, password string
		err                error  // errors.Is, or nil
		says               string // what the error says, "" for none
	}{
		{"too short", alice.ID, "elevenchars", nil, "too short"},
		{"empty", alice.ID, "", nil, "too short"},
		{"eleven runes of two bytes", alice.ID, strings.Repeat("é", 11), nil, "too short"},
		{"too long", alice.ID, strings.Repeat("x", 1025), nil, "too long"},
		{"a service account", svc.ID, "a long enough password", ErrNotFound, ""},
		{"unknown", "nosuchid", "a long enough password", ErrNotFound, ""},
		{"by name, not id", "alice", "a long enough password", ErrNotFound, ""},
	} {
		err := d.SetPassword(ctx, tc.id, tc.password)
		if err == nil || (tc.err != nil && !errors.Is(err, tc.err)) || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: SetPassword: %v; want an error (%v) saying %q", tc.name, err, tc.err, tc.says)
		}
	}
	for _, p := range []Principal{alice, svc} {
		if got, err := d.Principal(ctx, p.ID); err != nil || got.HasPassword {
			t.Errorf("after refused SetPasswords, %s: %+v, %v; want no password", p.Name, got, err)
		}
	}
	if err := d.SetPassword(ctx, alice.ID, strings.Repeat("é", 12)); err != nil {
		t.Fatalf("twelve runes: %v", err)
	}
	if got, err := d.Principal(ctx, alice.ID); err != nil || !got.HasPassword {
		t.Errorf("after SetPassword: %+v, %v; want HasPassword", got, err)
	}
}

func TestCheckPassword(t *testing.T) {
	ctx := context.Background()
	d, _, db, _ := newDirectory(t)
	const pw = "correct horse battery staple"
	alice := mustPrincipal(t, d, "alice", User)
	bob := mustPrincipal(t, d, "bob", User)
	mustPrincipal(t, d, "carol", User) // no password: logs in through OIDC
	svc := mustPrincipal(t, d, "svc", Service)
	for _, p := range []Principal{alice, bob} {
		if err := d.SetPassword(ctx, p.ID, pw); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Disable(ctx, bob.ID); err != nil {
		t.Fatal(err)
	}
	// A service account cannot be given a password; one written into the
	// database behind the directory's back still does not log in.
	hash, err := hashPassword(pw)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE principals SET password = $1 WHERE id = $2`, hash, svc.ID)
		return err
	}); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name, login, password string
		want                  string // the principal id, "" for ErrBadLogin
	}{
		{"right", "alice", pw, alice.ID},
		{"wrong", "alice", pw + "!", ""},
		{"case of the password", "alice", strings.ToUpper(pw), ""},
		{"empty password", "alice", "", ""},
		{"case of the name", "Alice", pw, ""},
		{"by id", alice.ID, pw, ""},
		{"unknown name", "mallory", pw, ""},
		{"hostile name", "alice' OR '1'='1", pw, ""},
		{"service account", "svc", pw, ""},
		{"disabled", "bob", pw, ""},
		{"no password set", "carol", "", ""},
		{"no password set, some password", "carol", pw, ""},
	} {
		p, err := d.CheckPassword(ctx, tc.login, tc.password)
		if tc.want == "" {
			if err != ErrBadLogin || p != (Principal{}) {
				t.Errorf("%s: CheckPassword(%q) = %+v, %v; want exactly ErrBadLogin", tc.name, tc.login, p, err)
			}
			continue
		}
		if err != nil || p.ID != tc.want || p.Name != tc.login {
			t.Errorf("%s: CheckPassword(%q) = %+v, %v; want %s", tc.name, tc.login, p, err, tc.want)
		}
	}
}

func TestGroups(t *testing.T) {
	ctx := context.Background()
	d, _, _, _ := newDirectory(t)
	alice := mustPrincipal(t, d, "alice", User)
	bob := mustPrincipal(t, d, "bob", User)
	svc := mustPrincipal(t, d, "svc", Service)

	for _, name := range []string{"", "a b", "x'; DROP TABLE groups; --", "../x", strings.Repeat("g", 129)} {
		if err := d.CreateGroup(ctx, name, ""); err == nil {
			t.Errorf("CreateGroup(%q) succeeded", name)
		}
	}
	if err := d.CreateGroup(ctx, "csirt", "the CSIRT"); err != nil {
		t.Fatal(err)
	}
	if err := d.CreateGroup(ctx, "soc", ""); err != nil {
		t.Fatal(err)
	}
	if err := d.CreateGroup(ctx, "csirt", "again"); err == nil {
		t.Error("a second group csirt was created")
	}
	// Added out of order: members are listed by name.
	for _, p := range []Principal{svc, bob, alice} {
		if err := d.AddMember(ctx, "csirt", p.ID); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.AddMember(ctx, "soc", bob.ID); err != nil {
		t.Fatal(err)
	}
	d.AddMember(ctx, "csirt", alice.ID) // again: still one membership
	for _, tc := range []struct{ group, principal string }{
		{"nosuch", alice.ID},
		{"csirt", "nosuchid"},
		{"csirt", "alice"}, // a name, not an id
	} {
		if err := d.AddMember(ctx, tc.group, tc.principal); !errors.Is(err, ErrNotFound) {
			t.Errorf("AddMember(%q, %q): %v, want ErrNotFound", tc.group, tc.principal, err)
		}
	}
	check := func(want []Group) {
		t.Helper()
		gs, err := d.Groups(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(gs) != len(want) {
			t.Fatalf("Groups = %+v, want %+v", gs, want)
		}
		for i := range gs {
			if gs[i].Name != want[i].Name || gs[i].Description != want[i].Description || !slices.Equal(gs[i].Members, want[i].Members) || gs[i].Members == nil {
				t.Errorf("group %d = %+v, want %+v", i, gs[i], want[i])
			}
		}
	}
	check([]Group{
		{Name: "csirt", Description: "the CSIRT", Members: []string{"alice", "bob", "svc"}},
		{Name: "soc", Members: []string{"bob"}},
	})
	if err := d.RemoveMember(ctx, "soc", bob.ID); err != nil {
		t.Fatal(err)
	}
	if err := d.RemoveMember(ctx, "csirt", svc.ID); err != nil {
		t.Fatal(err)
	}
	check([]Group{
		{Name: "csirt", Description: "the CSIRT", Members: []string{"alice", "bob"}},
		{Name: "soc", Members: []string{}},
	})
	if got := mustResolve(t, d, bob.ID).Groups; !slices.Equal(got, []string{"csirt"}) {
		t.Errorf("bob's groups = %q, want [csirt]", got)
	}
}

func TestBind(t *testing.T) {
	ctx := context.Background()
	d, _, db, _ := newDirectory(t)
	alice := mustPrincipal(t, d, "alice", User)
	mustGroup(t, d, "csirt")
	for _, tc := range []struct {
		name    string
		subject Subject
		b       Binding
		err     error  // errors.Is, or nil
		says    string // what the error says, "" for none
	}{
		{"unknown role", PrincipalSubject(alice.ID), Binding{Role: "root", Tenant: "a"}, nil, "unknown role"},
		{"no role", PrincipalSubject(alice.ID), Binding{Tenant: "a"}, nil, "unknown role"},
		{"upper-case role", PrincipalSubject(alice.ID), Binding{Role: "Admin", Tenant: "a"}, nil, "unknown role"},
		{"no tenant", PrincipalSubject(alice.ID), Binding{Role: Viewer}, nil, "not valid"},
		{"bad tenant", PrincipalSubject(alice.ID), Binding{Role: Viewer, Tenant: "Acme Corp"}, nil, "not valid"},
		{"hostile tenant", PrincipalSubject(alice.ID), Binding{Role: Viewer, Tenant: "a'; DROP TABLE bindings; --"}, nil, "not valid"},
		{"system tenant", PrincipalSubject(alice.ID), Binding{Role: Auditor, Tenant: SystemTenant}, nil, "not valid"},
		{"two stars", PrincipalSubject(alice.ID), Binding{Role: Viewer, Tenant: "**"}, nil, "not valid"},
		{"unknown principal", PrincipalSubject("nosuchid"), Binding{Role: Viewer, Tenant: "a"}, ErrNotFound, ""},
		{"principal by name", PrincipalSubject("alice"), Binding{Role: Viewer, Tenant: "a"}, ErrNotFound, ""},
		{"unknown group", GroupSubject("nosuch"), Binding{Role: Viewer, Tenant: "a"}, ErrNotFound, ""},
		{"other kind of subject", Subject("tenant:a"), Binding{Role: Viewer, Tenant: "b"}, nil, "not principal:ID or group:NAME"},
		{"no kind", Subject(alice.ID), Binding{Role: Viewer, Tenant: "a"}, nil, "not principal:ID or group:NAME"},
	} {
		err := d.Bind(ctx, tc.subject, tc.b)
		if err == nil || (tc.err != nil && !errors.Is(err, tc.err)) || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: Bind(%s, %+v): %v; want an error (%v) saying %q", tc.name, tc.subject, tc.b, err, tc.err, tc.says)
		}
	}
	if bs, err := d.Bindings(ctx); err != nil || len(bs) != 0 {
		t.Fatalf("after refused binds, Bindings = %+v, %v", bs, err)
	}

	mustBind(t, d, PrincipalSubject(alice.ID), Viewer, "a")
	mustBind(t, d, PrincipalSubject(alice.ID), Viewer, "a") // again: one binding
	mustBind(t, d, GroupSubject("csirt"), Analyst, AllTenants)
	mustBind(t, d, PrincipalSubject(alice.ID), Admin, "b")
	want := []SubjectBinding{
		{GroupSubject("csirt"), Binding{Role: Analyst, Tenant: AllTenants}},
		{PrincipalSubject(alice.ID), Binding{Role: Viewer, Tenant: "a"}},
		{PrincipalSubject(alice.ID), Binding{Role: Admin, Tenant: "b"}},
	}
	bs, err := d.Bindings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(bs, want) {
		t.Errorf("Bindings = %+v\nwant %+v", bs, want)
	}
	// Binding in a tenant creates it; binding in every tenant creates none.
	var tenants []string
	rows, err := db.Query(ctx, `SELECT name FROM tenants ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		tenants = append(tenants, n)
	}
	rows.Close()
	if !slices.Equal(tenants, []string{"a", "b"}) {
		t.Errorf("tenants = %q, want [a b]", tenants)
	}

	if err := d.Unbind(ctx, PrincipalSubject(alice.ID), Binding{Role: Admin, Tenant: "b"}); err != nil {
		t.Fatal(err)
	}
	if err := d.Unbind(ctx, PrincipalSubject(alice.ID), Binding{Role: Admin, Tenant: "b"}); err != nil {
		t.Errorf("unbinding again: %v", err)
	}
	if bs, err := d.Bindings(ctx); err != nil || !slices.Equal(bs, want[:2]) {
		t.Errorf("after Unbind, Bindings = %+v, %v; want %+v", bs, err, want[:2])
	}
	if got := mustResolve(t, d, alice.ID).Bindings; slices.Contains(got, Binding{Role: Admin, Tenant: "b"}) {
		t.Errorf("after Unbind, alice resolves with %+v", got)
	}
}

func TestResolve(t *testing.T) {
	ctx := context.Background()
	d, _, _, _ := newDirectory(t)
	alice := mustPrincipal(t, d, "alice", User)
	bob := mustPrincipal(t, d, "bob", User)
	carol := mustPrincipal(t, d, "carol", User)
	svc := mustPrincipal(t, d, "svc", Service)
	mustGroup(t, d, "csirt", alice, svc)
	mustGroup(t, d, "soc", alice)
	mustBind(t, d, PrincipalSubject(alice.ID), Viewer, "a")
	mustBind(t, d, GroupSubject("csirt"), Analyst, AllTenants)
	mustBind(t, d, GroupSubject("soc"), Viewer, "a") // the same as alice's own: listed once
	mustBind(t, d, GroupSubject("soc"), Responder, "b")
	mustBind(t, d, PrincipalSubject(bob.ID), Ingest, "c")
	mustBind(t, d, PrincipalSubject(carol.ID), Viewer, "a")
	if err := d.Disable(ctx, carol.ID); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name     string
		id       string
		groups   []string
		bindings []Binding
	}{
		{"own and groups' bindings", alice.ID, []string{"csirt", "soc"},
			[]Binding{{Analyst, AllTenants}, {Viewer, "a"}, {Responder, "b"}}},
		{"own only", bob.ID, nil, []Binding{{Ingest, "c"}}},
		{"group only", svc.ID, []string{"csirt"}, []Binding{{Analyst, AllTenants}}},
	} {
		got := mustResolve(t, d, tc.id)
		if got.Principal != tc.id || got.Name == "" || got.Elevated != "" || got.Shares != nil {
			t.Errorf("%s: Resolve = %+v", tc.name, got)
		}
		if !slices.Equal(got.Groups, tc.groups) {
			t.Errorf("%s: groups %q, want %q", tc.name, got.Groups, tc.groups)
		}
		if !slices.Equal(got.Bindings, tc.bindings) {
			t.Errorf("%s: bindings %+v, want %+v", tc.name, got.Bindings, tc.bindings)
		}
	}
	if got := mustResolve(t, d, alice.ID); got.Name != "alice" {
		t.Errorf("alice resolves with name %q", got.Name)
	}

	for _, tc := range []struct {
		name, id string
		notFound bool
	}{
		{"disabled", carol.ID, false},
		{"unknown", "nosuchid", true},
		{"a name, not an id", "alice", true},
		{"empty", "", true},
	} {
		got, err := d.Resolve(ctx, tc.id)
		if err == nil || (tc.notFound && !errors.Is(err, ErrNotFound)) || got.Principal != "" || got.Bindings != nil {
			t.Errorf("%s: Resolve(%q) = %+v, %v; want an error", tc.name, tc.id, got, err)
		}
	}

	// Removing alice from the CSIRT takes its binding away.
	if err := d.RemoveMember(ctx, "csirt", alice.ID); err != nil {
		t.Fatal(err)
	}
	if got := mustResolve(t, d, alice.ID); !slices.Equal(got.Bindings, []Binding{{Viewer, "a"}, {Responder, "b"}}) {
		t.Errorf("out of the CSIRT, alice has %+v", got.Bindings)
	}
}

// A principal whose name is another's id does not stand in for it: ids
// and names are looked up together by Principal.
func TestResolveNameThatIsAnotherID(t *testing.T) {
	ctx := context.Background()
	d, _, _, _ := newDirectory(t)
	victim := mustPrincipal(t, d, "victim", User)
	mustBind(t, d, PrincipalSubject(victim.ID), Analyst, "a")
	impostor := mustPrincipal(t, d, victim.ID, User)
	got, err := d.Resolve(ctx, victim.ID)
	if err != nil {
		t.Fatalf("a principal named after victim's id makes victim unresolvable: %v", err)
	}
	if got.Principal != victim.ID || got.Name != "victim" || !slices.Equal(got.Bindings, []Binding{{Analyst, "a"}}) {
		t.Errorf("Resolve(victim) = %+v", got)
	}
	if got, err := d.Principal(ctx, victim.ID); err != nil || got.ID != victim.ID {
		t.Errorf("Principal(victim's id) = %+v, %v; want victim, not %s", got, err, impostor.ID)
	}
}

// CheckPassword takes as long for an unknown name as for a wrong
// password, so that the time it takes does not tell which names exist.
// A user without a password (one who logs in through OIDC) must take as
// long too: today its login is refused without hashing anything, a
// hundred times faster than an unknown name's, and that tells an
// attacker the name exists.
func TestCheckPasswordTimingNoPassword(t *testing.T) {
	ctx := context.Background()
	d, _, _, _ := newDirectory(t)
	mustPrincipal(t, d, "carol", User) // no password
	dummyHash()                        // made once, on first use: not part of what is timed
	fastest := func(name string) time.Duration {
		best := time.Duration(1<<63 - 1)
		for range 3 {
			start := time.Now()
			if _, err := d.CheckPassword(ctx, name, "a guess at a password"); err != ErrBadLogin {
				t.Fatalf("CheckPassword(%q): %v, want ErrBadLogin", name, err)
			}
			best = min(best, time.Since(start))
		}
		return best
	}
	unknown, noPassword := fastest("nobody"), fastest("carol")
	if noPassword < unknown/4 {
		t.Errorf("refusing a user without a password took %v, an unknown name %v: the time tells the name exists", noPassword, unknown)
	}
}
