package access

import (
	"context"
	"strings"
	"testing"
	"time"
)

func mustSession(t *testing.T, d *Directory, principal, method string) (string, Session) {
	t.Helper()
	secret, s, err := d.StartSession(context.Background(), principal, method)
	if err != nil {
		t.Fatal(err)
	}
	return secret, s
}

func TestSessionRoundTrip(t *testing.T) {
	ctx := context.Background()
	d, _, _, c := newDirectory(t)
	alice := mustPrincipal(t, d, "alice", User)
	secret, s := mustSession(t, d, alice.ID, "password")
	want := Session{ID: s.ID, Principal: alice.ID, Method: "password", Created: c.now(), Expires: c.now().Add(SessionLifetime), CSRF: s.CSRF}
	if s != want || len(s.ID) < 12 || len(s.CSRF) < 32 || !strings.HasPrefix(secret, secretPrefix) {
		t.Errorf("StartSession = %q, %+v; want %+v, with an id and a CSRF token", secret, s, want)
	}
	if strings.Contains(secret, s.ID) || strings.Contains(secret, s.CSRF) || s.ID == s.CSRF[:len(s.ID)] {
		t.Errorf("the session's id %q or CSRF token %q is part of its secret %q", s.ID, s.CSRF, secret)
	}
	c.advance(time.Minute)
	got, err := d.Session(ctx, secret)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("Session = %+v, want %+v", got, want)
	}

	secret2, s2 := mustSession(t, d, alice.ID, "oidc")
	if secret2 == secret || s2.ID == s.ID || s2.CSRF == s.CSRF {
		t.Errorf("two sessions share a secret, id or CSRF token: %+v, %+v", s, s2)
	}
	if got, err := d.Session(ctx, secret2); err != nil || got.ID != s2.ID || got.Method != "oidc" || got.CSRF != s2.CSRF {
		t.Errorf("the second session = %+v, %v; want %+v", got, err, s2)
	}

	if _, s, err := d.StartSession(ctx, "nosuchid", "password"); err == nil {
		t.Errorf("a session of an unknown principal was started: %+v", s)
	}
}

func TestSessionUnknown(t *testing.T) {
	ctx := context.Background()
	d, _, _, _ := newDirectory(t)
	alice := mustPrincipal(t, d, "alice", User)
	secret, s := mustSession(t, d, alice.ID, "password")
	other, _ := newSecret()
	for _, tc := range []struct{ name, secret string }{
		{"empty", ""},
		{"prefix only", secretPrefix},
		{"another secret", other},
		{"without its prefix", strings.TrimPrefix(secret, secretPrefix)},
		{"truncated", secret[:len(secret)-1]},
		{"extended", secret + "A"},
		{"upper-cased", strings.ToUpper(secret)},
		{"its hash", hashSecret(secret)},
		{"its hash, prefixed", secretPrefix + hashSecret(secret)},
		{"its id", s.ID},
		{"its CSRF token", s.CSRF},
		{"hostile", secretPrefix + "' OR '1'='1"},
	} {
		got, err := d.Session(ctx, tc.secret)
		if err != ErrNoSession || got != (Session{}) {
			t.Errorf("%s: Session = %+v, %v; want exactly ErrNoSession", tc.name, got, err)
		}
	}
}

func TestSessionIdle(t *testing.T) {
	ctx := context.Background()
	d, _, _, c := newDirectory(t)
	alice := mustPrincipal(t, d, "alice", User)
	start := c.now()
	idle, _ := mustSession(t, d, alice.ID, "password")
	active, _ := mustSession(t, d, alice.ID, "password")
	for _, step := range []struct {
		at         time.Duration // since start
		idle, used bool          // the idle session is asked for; want it in force
	}{
		{SessionIdle - time.Second, true, true},
		// Seen a moment ago: the idle time counts from then.
		{2*SessionIdle - 2*time.Second, true, true},
		{3*SessionIdle - 2*time.Second, true, false},
		{3*SessionIdle + time.Hour, true, false},
	} {
		c.t = start.Add(step.at)
		_, err := d.Session(ctx, idle)
		if step.used && err != nil {
			t.Errorf("at +%v: %v; want the session in force", step.at, err)
		}
		if !step.used && err != ErrNoSession {
			t.Errorf("at +%v: %v; want ErrNoSession after %v idle", step.at, err, SessionIdle)
		}
	}

	// A session used every hour lasts until SessionLifetime, and no
	// longer.
	for at := time.Duration(0); at <= SessionLifetime+time.Hour; at += time.Hour {
		c.t = start.Add(at)
		got, err := d.Session(ctx, active)
		if at < SessionLifetime && err != nil {
			t.Errorf("at +%v, used an hour ago: %v; want the session in force", at, err)
		}
		if at >= SessionLifetime && (err != ErrNoSession || got != (Session{})) {
			t.Errorf("at +%v, past its lifetime: %+v, %v; want ErrNoSession", at, got, err)
		}
	}
	c.t = start.Add(SessionLifetime - time.Nanosecond)
	if _, err := d.Session(ctx, active); err != nil {
		t.Errorf("a nanosecond before its lifetime ends: %v", err)
	}
}

func TestSessionIdleNeverAsked(t *testing.T) {
	ctx := context.Background()
	d, _, _, c := newDirectory(t)
	alice := mustPrincipal(t, d, "alice", User)
	start := c.now()
	// Asking for a session is a use of it, so each instant has its own.
	early, _ := mustSession(t, d, alice.ID, "password")
	late, _ := mustSession(t, d, alice.ID, "password")
	c.t = start.Add(SessionIdle - time.Nanosecond)
	if _, err := d.Session(ctx, early); err != nil {
		t.Errorf("unused for a nanosecond less than %v: %v", SessionIdle, err)
	}
	c.t = start.Add(SessionIdle)
	if _, err := d.Session(ctx, late); err != ErrNoSession {
		t.Errorf("unused for %v: %v; want ErrNoSession", SessionIdle, err)
	}
}

func TestEndSession(t *testing.T) {
	ctx := context.Background()
	d, _, db, c := newDirectory(t)
	alice := mustPrincipal(t, d, "alice", User)
	old, _ := mustSession(t, d, alice.ID, "password")
	c.advance(SessionLifetime - time.Hour)
	ending, _ := mustSession(t, d, alice.ID, "password")
	staying, _ := mustSession(t, d, alice.ID, "oidc")
	c.advance(time.Hour + time.Minute) // old has expired; the others are in force
	count := func() int {
		t.Helper()
		var n int
		if err := db.QueryRow(ctx, `SELECT count(*) FROM sessions`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(); n != 3 {
		t.Fatalf("%d sessions stored, want 3", n)
	}
	if err := d.EndSession(ctx, ending); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Session(ctx, ending); err != ErrNoSession {
		t.Errorf("after EndSession: %v, want ErrNoSession", err)
	}
	if _, err := d.Session(ctx, staying); err != nil {
		t.Errorf("ending one session ended another: %v", err)
	}
	if _, err := d.Session(ctx, old); err != ErrNoSession {
		t.Errorf("an expired session: %v, want ErrNoSession", err)
	}
	if n := count(); n != 1 {
		t.Errorf("%d sessions stored after EndSession, want 1: the expired one is forgotten", n)
	}
	for _, secret := range []string{ending, "", "vgl_nosuch"} {
		if err := d.EndSession(ctx, secret); err != nil {
			t.Errorf("ending no session (%q): %v", secret, err)
		}
	}
	if _, err := d.Session(ctx, staying); err != nil {
		t.Errorf("ending no session ended another: %v", err)
	}
}
