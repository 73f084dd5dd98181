package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/access"
	"github.com/vigilsec/vigil/meta"
)

// createToken runs vigil token create and returns the secret on its last
// line, checking that nothing else on the output gives it away.
func createToken(t *testing.T, args ...string) string {
	t.Helper()
	out := mustVigil(t, append([]string{"token", "create"}, args...)...)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	secret := lines[len(lines)-1]
	if !strings.HasPrefix(secret, "vgl_") || strings.ContainsAny(secret, " \t") {
		t.Fatalf("the last line is not the secret alone: %q", out)
	}
	if len(lines) < 2 {
		t.Errorf("no description before the secret: %q", out)
	}
	if strings.Count(out, secret) != 1 {
		t.Errorf("the secret is printed more than once: %q", out)
	}
	return secret
}

// tokens opens the data directory's tokens as a running server would.
func tokens(t *testing.T, data string) *access.Tokens {
	t.Helper()
	db, err := meta.Open(context.Background(), filepath.Join(data, metaFile), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return access.NewTokens(db, access.Options{})
}

func TestTokenCreateAuthenticates(t *testing.T) {
	data := filepath.Join(t.TempDir(), "new")
	secret := createToken(t, "--data", data, "--tenant", "acme", "--role", "ingest", "--name", "cloudtrail-forwarder")
	ts := tokens(t, data)
	tok, err := ts.Authenticate(context.Background(), secret)
	if err != nil {
		t.Fatalf("the printed secret does not authenticate: %v", err)
	}
	if tok.Tenant != "acme" || tok.Role != access.Ingest || tok.Name != "cloudtrail-forwarder" || !tok.Expires.IsZero() {
		t.Errorf("authenticated as %+v", tok)
	}

	// Flags after --expires, in days or as a duration.
	for _, exp := range []struct {
		arg  string
		want time.Duration
	}{{"90d", 90 * 24 * time.Hour}, {"36h", 36 * time.Hour}} {
		before := time.Now()
		secret := createToken(t, "--data", data, "--role", "analyst", "--expires", exp.arg, "--tenant", "acme")
		tok, err := ts.Authenticate(context.Background(), secret)
		if err != nil {
			t.Fatal(err)
		}
		if d := tok.Expires.Sub(before); d < exp.want || d > exp.want+time.Minute {
			t.Errorf("--expires %s: the token expires in %v", exp.arg, d)
		}
	}
}

func TestTokenListShowsNoSecret(t *testing.T) {
	data := t.TempDir()
	if out := mustVigil(t, "token", "create", "--data", data, "--role", "admin"); !strings.Contains(out, "(all)") {
		t.Errorf("an admin token without a tenant is not shown as over all tenants: %q", out)
	}
	if out := mustVigil(t, "token", "list", "--data", data); strings.Count(out, "\n") != 2 {
		t.Errorf("list of one token:\n%s", out)
	}
	secrets := []string{
		createToken(t, "--data", data, "--tenant", "acme", "--role", "ingest", "--name", "fwd"),
		createToken(t, "--data", data, "--tenant", "globex", "--role", "viewer", "--expires", "30d"),
	}
	if _, err := tokens(t, data).Authenticate(context.Background(), secrets[0]); err != nil {
		t.Fatal(err)
	}

	out := mustVigil(t, "token", "list", "--data", data)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "ID ") || !strings.Contains(lines[0], "LAST USED") {
		t.Fatalf("list:\n%s", out)
	}
	for _, want := range []string{"fwd", "acme", "ingest", "globex-viewer", "(all)", "admin", "never"} {
		if !strings.Contains(out, want) {
			t.Errorf("list does not show %q:\n%s", want, out)
		}
	}
	for _, s := range secrets {
		h := sha256.Sum256([]byte(s))
		body := strings.TrimPrefix(s, "vgl_")
		for _, leak := range []string{body[:12], hex.EncodeToString(h[:])[:12]} {
			if strings.Contains(out, leak) {
				t.Errorf("list shows a secret or its hash (%s):\n%s", leak, out)
			}
		}
	}
	if strings.Contains(out, "vgl_") {
		t.Errorf("list shows a secret:\n%s", out)
	}
}

func TestTokenRevoke(t *testing.T) {
	ctx := context.Background()
	data := t.TempDir()
	secret := createToken(t, "--data", data, "--tenant", "acme", "--role", "ingest")
	ts := tokens(t, data)
	toks, err := ts.List(ctx)
	if err != nil || len(toks) != 1 {
		t.Fatalf("List = %v, %v", toks, err)
	}
	id := toks[0].ID

	// The server's handle, open all along, sees the revocation at once.
	if out := mustVigil(t, "token", "revoke", "--data", data, id); !strings.Contains(out, id) {
		t.Errorf("revoke said %q", out)
	}
	if _, err := ts.Authenticate(ctx, secret); !errors.Is(err, access.ErrRevokedToken) {
		t.Errorf("after revoke: %v, want ErrRevokedToken", err)
	}
	out := mustVigil(t, "token", "list", "--data", data)
	if row := strings.Split(out, "\n")[1]; strings.HasSuffix(strings.TrimSpace(row), " -") {
		t.Errorf("list does not show the revocation: %q", row)
	}

	code, _, errOut := vigil(t, "token", "revoke", "--data", data, "nosuchid")
	if code == 0 || !strings.Contains(errOut, "unknown token") {
		t.Errorf("revoking an unknown id: exit %d, %q", code, errOut)
	}
}

func TestTokenBadInput(t *testing.T) {
	data := t.TempDir()
	createToken(t, "--data", data, "--tenant", "acme", "--role", "ingest")
	for _, tc := range []struct {
		name string
		args []string
		want string // on stderr
	}{
		{"unknown role", []string{"create", "--tenant", "acme", "--role", "root"}, `unknown role "root"`},
		{"no role", []string{"create", "--tenant", "acme"}, "--role is required"},
		{"no tenant", []string{"create", "--role", "ingest"}, "needs a tenant"},
		{"bad tenant", []string{"create", "--tenant", "Acme Corp", "--role", "ingest"}, "not valid"},
		{"bad expiry", []string{"create", "--tenant", "acme", "--role", "ingest", "--expires", "90x"}, "--expires"},
		{"zero expiry", []string{"create", "--tenant", "acme", "--role", "ingest", "--expires", "0d"}, "--expires"},
		{"negative expiry", []string{"create", "--tenant", "acme", "--role", "ingest", "--expires", "-1h"}, "--expires"},
		{"bad name", []string{"create", "--tenant", "acme", "--role", "ingest", "--name", "a\tb"}, "token name"},
		{"stray argument", []string{"create", "--tenant", "acme", "--role", "ingest", "extra"}, "unexpected"},
		{"unknown flag", []string{"create", "--tenant", "acme", "--role", "ingest", "--secret", "x"}, "not defined"},
		{"revoke without id", []string{"revoke"}, "Usage"},
		{"unknown command", []string{"rotate"}, `unknown command "rotate"`},
		{"no command", nil, "Usage"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"token"}, tc.args...)
			if len(tc.args) > 0 {
				args = append(args, "--data", data)
			}
			code, out, errOut := vigil(t, args...)
			if code == 0 || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, stderr %q; want non-zero and %q", code, errOut, tc.want)
			}
			if strings.Contains(out, "vgl_") {
				t.Errorf("a secret was printed: %q", out)
			}
		})
	}
	toks, err := tokens(t, data).List(context.Background())
	if err != nil || len(toks) != 1 {
		t.Errorf("after bad input, the tokens are %v, %v; want the one good one", toks, err)
	}

	// A mistyped data directory is an error, not a new empty database.
	missing := filepath.Join(t.TempDir(), "typo")
	for _, args := range [][]string{{"list"}, {"revoke", "someid"}} {
		code, _, errOut := vigil(t, append(append([]string{"token"}, args...), "--data", missing)...)
		if code == 0 || !strings.Contains(errOut, "no metadata database") {
			t.Errorf("token %s in a missing data directory: exit %d, %q", args[0], code, errOut)
		}
	}
	if code, _, _ := vigil(t, "token", "-h"); code != 0 {
		t.Errorf("token -h: exit %d", code)
	}
}
