package access

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/meta"
)

// A clock is a fake time that tests move by hand.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newClock() *clock { return &clock{time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)} }

func openDB(t *testing.T, path string) *meta.DB {
	t.Helper()
	db, err := meta.Open(context.Background(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func newTokens(t *testing.T) (*Tokens, *meta.DB, *clock) {
	t.Helper()
	db := openDB(t, filepath.Join(t.TempDir(), "meta.db"))
	c := newClock()
	return NewTokens(db, Options{Now: c.now}), db, c
}

func mustCreate(t *testing.T, ts *Tokens, spec Spec) (string, Token) {
	t.Helper()
	secret, tok, err := ts.Create(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	return secret, tok
}

func TestCreate(t *testing.T) {
	ts, _, c := newTokens(t)
	for _, tc := range []struct {
		name     string
		spec     Spec
		wantName string
		err      string // what the error says, "" for none
	}{
		{"ingest", Spec{Name: "cloudtrail", Tenant: "acme", Role: Ingest}, "cloudtrail", ""},
		{"default name", Spec{Tenant: "acme", Role: Analyst}, "acme-analyst", ""},
		{"admin over all tenants", Spec{Role: Admin}, "admin", ""},
		{"admin of one tenant", Spec{Tenant: "acme", Role: Admin}, "acme-admin", ""},
		{"expiring", Spec{Tenant: "acme", Role: Ingest, Expires: c.now().Add(time.Hour)}, "acme-ingest", ""},
		{"no tenant", Spec{Role: Ingest}, "", "needs a tenant"},
		{"no tenant, viewer", Spec{Role: Viewer}, "", "needs a tenant"},
		{"bad tenant", Spec{Tenant: "Acme Corp", Role: Ingest}, "", `tenant name "Acme Corp" is not valid`},
		{"no role", Spec{Tenant: "acme"}, "", "unknown role"},
		{"unknown role", Spec{Tenant: "acme", Role: "root"}, "", `unknown role "root"`},
		{"expired already", Spec{Tenant: "acme", Role: Ingest, Expires: c.now()}, "", "not in the future"},
		{"control character in name", Spec{Name: "a\x1b[31m", Tenant: "acme", Role: Ingest}, "", "token name"},
		{"long name", Spec{Name: strings.Repeat("n", 101), Tenant: "acme", Role: Ingest}, "", "token name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			secret, tok, err := ts.Create(context.Background(), tc.spec)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Create: %v; want an error saying %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(secret, "vgl_") || len(secret) < len("vgl_")+43 {
				t.Errorf("secret %q: want vgl_ and at least 256 bits", secret)
			}
			want := Token{ID: tok.ID, Name: tc.wantName, Tenant: tc.spec.Tenant, Role: tc.spec.Role, Created: c.now(), Expires: tc.spec.Expires}
			if tok != want || tok.ID == "" {
				t.Errorf("Create returned %+v, want %+v", tok, want)
			}
			got, err := ts.Authenticate(context.Background(), secret)
			if err != nil {
				t.Fatal(err)
			}
			want.LastUsed = c.now()
			if got != want {
				t.Errorf("Authenticate returned %+v, want %+v", got, want)
			}
		})
	}
}

func TestSecretsDiffer(t *testing.T) {
	ts, _, _ := newTokens(t)
	seen := map[string]bool{}
	for range 20 {
		secret, tok := mustCreate(t, ts, Spec{Tenant: "acme", Role: Ingest})
		if seen[secret] || seen[tok.ID] {
			t.Fatalf("a secret or id came twice: %s %s", secret, tok.ID)
		}
		seen[secret], seen[tok.ID] = true, true
	}
}

func TestAuthenticate(t *testing.T) {
	ctx := context.Background()
	ts, _, c := newTokens(t)
	good, goodTok := mustCreate(t, ts, Spec{Name: "good", Tenant: "acme", Role: Ingest})
	revoked, revokedTok := mustCreate(t, ts, Spec{Name: "revoked", Tenant: "acme", Role: Ingest})
	if err := ts.Revoke(ctx, revokedTok.ID); err != nil {
		t.Fatal(err)
	}
	expiring, _ := mustCreate(t, ts, Spec{Name: "expiring", Tenant: "acme", Role: Ingest, Expires: c.now().Add(time.Hour)})
	expired, expiredTok := mustCreate(t, ts, Spec{Name: "expired", Tenant: "acme", Role: Ingest, Expires: c.now().Add(time.Hour)})
	// Revoked and expired both: revocation, the deliberate act, is what
	// the log should say.
	both, bothTok := mustCreate(t, ts, Spec{Name: "both", Tenant: "acme", Role: Ingest, Expires: c.now().Add(time.Hour)})
	if err := ts.Revoke(ctx, bothTok.ID); err != nil {
		t.Fatal(err)
	}
	unknown, _ := newSecret()

	tamper := func(s string, i int) string {
		b := []byte(s)
		b[i] ^= 1
		return string(b)
	}
	cases := []struct {
		name   string
		secret string
		after  time.Duration // how long after creation
		want   error
		id     string // the token named by the success or the error
	}{
		{"ok", good, 0, nil, goodTok.ID},
		{"ok before expiry", expiring, 59 * time.Minute, nil, ""},
		{"unknown", unknown, 0, ErrUnknownToken, ""},
		{"empty", "", 0, ErrUnknownToken, ""},
		{"no prefix", strings.TrimPrefix(good, "vgl_"), 0, ErrUnknownToken, ""},
		{"other prefix", "xyz_" + strings.TrimPrefix(good, "vgl_"), 0, ErrUnknownToken, ""},
		{"tampered last character", tamper(good, len(good)-1), 0, ErrUnknownToken, ""},
		{"tampered in the middle", tamper(good, len(good)/2), 0, ErrUnknownToken, ""},
		{"truncated", good[:len(good)-1], 0, ErrUnknownToken, ""},
		{"extended", good + "A", 0, ErrUnknownToken, ""},
		{"the hash instead of the secret", hashSecret(good), 0, ErrUnknownToken, ""},
		{"revoked", revoked, 0, ErrRevokedToken, revokedTok.ID},
		{"expired at the instant", expired, time.Hour, ErrExpiredToken, expiredTok.ID},
		{"expired", expired, 2 * time.Hour, ErrExpiredToken, expiredTok.ID},
		{"revoked and expired", both, 2 * time.Hour, ErrRevokedToken, bothTok.ID},
	}
	start := c.now()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c.t = start.Add(tc.after)
			tok, err := ts.Authenticate(ctx, tc.secret)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Authenticate: %v, want %v", err, tc.want)
			}
			if err != nil {
				if tok != (Token{}) {
					t.Errorf("a failed authentication returned a token: %+v", tok)
				}
				if tc.id != "" && !strings.Contains(err.Error(), tc.id) {
					t.Errorf("error %q does not name token %s, for the log", err, tc.id)
				}
				if strings.Contains(err.Error(), tc.secret) && tc.secret != "" {
					t.Errorf("error %q holds the secret", err)
				}
				return
			}
			if tc.id != "" && tok.ID != tc.id {
				t.Errorf("authenticated as %s, want %s", tok.ID, tc.id)
			}
		})
	}
}

// The database holds no secret, nor anything a secret could be read from
// without inverting SHA-256.
func TestStoredRowHoldsNoSecret(t *testing.T) {
	ctx := context.Background()
	ts, db, c := newTokens(t)
	secret, tok := mustCreate(t, ts, Spec{Name: "n", Tenant: "acme", Role: Ingest, Expires: c.now().Add(time.Hour)})
	if _, err := ts.Authenticate(ctx, secret); err != nil {
		t.Fatal(err)
	}
	body := strings.TrimPrefix(secret, "vgl_")

	rows, err := db.Query(ctx, `SELECT * FROM tokens`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		n++
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		row := map[string]string{}
		for i, v := range vals {
			s := fmt.Sprint(v)
			if b, ok := v.([]byte); ok {
				s = string(b)
			}
			row[cols[i]] = s
			if strings.Contains(s, body) || strings.Contains(s, body[:16]) {
				t.Errorf("column %s holds the secret: %q", cols[i], s)
			}
		}
		if row["hash"] != hashSecret(secret) {
			t.Errorf("hash = %q, want the SHA-256 of the secret", row["hash"])
		}
		if row["id"] != tok.ID {
			t.Errorf("id = %q, want %q", row["id"], tok.ID)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("%d rows in tokens, want 1", n)
	}
}

func TestLastUsedThrottled(t *testing.T) {
	ctx := context.Background()
	ts, db, c := newTokens(t)
	secret, tok := mustCreate(t, ts, Spec{Tenant: "acme", Role: Ingest})
	stored := func() time.Time {
		t.Helper()
		var n sql.NullInt64
		if err := db.QueryRow(ctx, `SELECT last_used FROM tokens WHERE id = $1`, tok.ID).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return fromNanos(n)
	}
	if !stored().IsZero() {
		t.Fatal("a new token has a last use")
	}
	start := c.now()
	for _, step := range []struct {
		at   time.Duration // since start
		want time.Duration // the stored last use, since start
	}{
		{0, 0},
		{time.Second, 0},
		{59 * time.Second, 0},
		{time.Minute, time.Minute},
		{time.Minute + 30*time.Second, time.Minute},
		{5 * time.Minute, 5 * time.Minute},
		{5*time.Minute + time.Nanosecond, 5 * time.Minute},
	} {
		c.t = start.Add(step.at)
		got, err := ts.Authenticate(ctx, secret)
		if err != nil {
			t.Fatal(err)
		}
		want := start.Add(step.want)
		if s := stored(); !s.Equal(want) {
			t.Errorf("at +%v: stored last use +%v, want +%v", step.at, s.Sub(start), step.want)
		}
		if !got.LastUsed.Equal(want) {
			t.Errorf("at +%v: Authenticate says last use +%v, want +%v", step.at, got.LastUsed.Sub(start), step.want)
		}
	}
}

// Two handles on one file stand for `vigil serve` and a `vigil token`
// command run beside it.
func TestTokensAcrossHandles(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "meta.db")
	c := newClock()
	cli := NewTokens(openDB(t, path), Options{Now: c.now})
	server := NewTokens(openDB(t, path), Options{Now: c.now})

	secret, tok := mustCreate(t, cli, Spec{Tenant: "acme", Role: Ingest})
	got, err := server.Authenticate(ctx, secret)
	if err != nil {
		t.Fatalf("the other handle does not know the new token: %v", err)
	}
	if got.ID != tok.ID || got.Tenant != "acme" || got.Role != Ingest {
		t.Errorf("the other handle authenticated %+v, want %+v", got, tok)
	}
	if err := cli.Revoke(ctx, tok.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := server.Authenticate(ctx, secret); !errors.Is(err, ErrRevokedToken) {
		t.Errorf("after revocation by the other handle: %v, want ErrRevokedToken", err)
	}
}

func TestListAndRevoke(t *testing.T) {
	ctx := context.Background()
	ts, _, c := newTokens(t)
	if toks, err := ts.List(ctx); err != nil || len(toks) != 0 {
		t.Fatalf("List of none = %v, %v", toks, err)
	}
	_, a := mustCreate(t, ts, Spec{Name: "a", Tenant: "acme", Role: Ingest})
	c.advance(time.Second)
	_, b := mustCreate(t, ts, Spec{Name: "b", Role: Admin})
	c.advance(time.Second)
	revokedAt := c.now()
	if err := ts.Revoke(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	c.advance(time.Second)
	if err := ts.Revoke(ctx, a.ID); err != nil {
		t.Fatalf("revoking again: %v", err)
	}
	if err := ts.Revoke(ctx, "nosuchid"); !errors.Is(err, ErrUnknownToken) {
		t.Errorf("revoking an unknown id: %v, want ErrUnknownToken", err)
	}
	toks, err := ts.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	a.Revoked = revokedAt
	if len(toks) != 2 || toks[0] != a || toks[1] != b {
		t.Errorf("List = %+v\nwant [%+v %+v]", toks, a, b)
	}
}
