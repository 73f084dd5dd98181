package main

import (
	"context"
	"encoding/json"
	"flag"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/access"
	"github.com/vigilsec/vigil/meta"
)

// noRemote gives the test a home of its own, with no login saved and no
// server in the environment, so that neither the developer's nor another
// test's settings leak in.
func noRemote(t *testing.T) (configDir string) {
	t.Helper()
	home := t.TempDir()
	t.Setenv("HOME", home)
	configDir = filepath.Join(home, "config")
	t.Setenv("XDG_CONFIG_HOME", configDir)
	t.Setenv(serverEnv, "")
	t.Setenv(tokenEnv, "")
	return configDir
}

// cli runs vigil commands and keeps everything they print, to check at
// the end that no token was.
type cli struct {
	t      *testing.T
	output []string
}

func (c *cli) run(args ...string) (int, string, string) {
	c.t.Helper()
	code, out, errOut := vigil(c.t, args...)
	c.output = append(c.output, out, errOut)
	return code, out, errOut
}

func (c *cli) must(args ...string) string {
	c.t.Helper()
	code, out, errOut := c.run(args...)
	if code != 0 {
		c.t.Fatalf("vigil %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// fails runs a command that must fail, with a message on standard error
// holding want.
func (c *cli) fails(want string, args ...string) {
	c.t.Helper()
	code, out, errOut := c.run(args...)
	if code == 0 || !strings.Contains(errOut, want) {
		c.t.Errorf("vigil %s: exit %d, want a failure saying %q\n%s%s", strings.Join(args, " "), code, want, out, errOut)
	}
}

// newToken runs vigil token create, whose output rightly holds the
// secret, and returns the token's id and secret.
func newToken(t *testing.T, args ...string) (id, secret string) {
	t.Helper()
	out := mustVigil(t, append([]string{"token", "create"}, args...)...)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	fields := strings.Fields(lines[0])
	if len(fields) < 3 || len(lines) < 2 || !strings.HasPrefix(lines[len(lines)-1], "vgl_") {
		t.Fatalf("token create: %q", out)
	}
	return fields[2], lines[len(lines)-1]
}

func tenantsOfRows(t *testing.T, out string) []string {
	t.Helper()
	var ts []string
	for _, r := range ndjson(t, out) {
		if s, _ := r["tenant"].(string); !slices.Contains(ts, s) {
			ts = append(ts, s)
		}
	}
	slices.Sort(ts)
	return ts
}

// TestRemoteCLI runs the commands against a server as its users would
// from their own machines: the administrator sets up principals, a
// group, roles and a grant with the access commands; an analyst of
// team-a logs in and sees team-a's events and alerts only; a viewer may
// not acknowledge; a revoked or expired token is refused, clearly; and no
// token is ever printed.
func TestRemoteCLI(t *testing.T) {
	configDir := noRemote(t)
	srv, data := serveTwoTeams(t)
	admin := srv.token
	var aAlert string
	var otherAlerts []string
	srv.wait("team-a's alert", func() bool {
		_, out := srv.apiAs(admin, "GET", "/api/v1/alerts", nil)
		var as []meta.Alert
		json.Unmarshal(out, &as)
		otherAlerts = otherAlerts[:0]
		for _, a := range as {
			if a.Tenant == "team-a" {
				aAlert = a.ID
			} else {
				otherAlerts = append(otherAlerts, a.ID)
			}
		}
		return aAlert != ""
	})

	c := &cli{t: t}
	// The administrator, from "another machine": the server's URL and
	// the admin token in the environment.
	t.Setenv(serverEnv, srv.base)
	t.Setenv(tokenEnv, admin)
	ids := map[string]string{}
	for _, name := range []string{"alice", "victor", "carol", "partner"} {
		var p access.Principal
		if err := json.Unmarshal([]byte(c.must("principals", "create", name, "--json")), &p); err != nil || p.Name != name {
			t.Fatalf("principals create %s: %+v %v", name, p, err)
		}
		ids[name] = p.ID
	}
	c.must("groups", "create", "csirt", "--description", "the incident response team")
	c.must("groups", "add", "csirt", "carol")
	c.must("roles", "bind", "--subject", "principal:alice", "--tenant", "team-a", "--role", "analyst")
	c.must("roles", "bind", "--subject", "principal:"+ids["victor"], "--tenant", "team-a", "--role", "viewer")
	c.must("roles", "bind", "--subject", "group:csirt", "--tenant", "*", "--role", "viewer")
	out := c.must("grants", "create", "--owner", "team-a", "--grantee", "principal:partner", "--filter", "eventName:StopLogging",
		"--redact", "requestParameters", "--expires", "1d", "--reason", "incident 42 with the MSSP")
	grantID := strings.TrimSuffix(strings.Fields(out)[2], ":")

	if out := c.must("principals", "list"); !strings.Contains(out, ids["alice"]) || !strings.Contains(out, "partner") {
		t.Errorf("principals list:\n%s", out)
	}
	if out := c.must("groups", "list"); !strings.Contains(out, "csirt") || !strings.Contains(out, "carol") {
		t.Errorf("groups list:\n%s", out)
	}
	out = c.must("roles", "list")
	if !strings.Contains(out, "principal:"+ids["alice"]) || !strings.Contains(out, "alice") || !strings.Contains(out, "analyst") || !strings.Contains(out, "group:csirt") {
		t.Errorf("roles list:\n%s", out)
	}
	if out := c.must("grants", "list"); !strings.Contains(out, grantID) || !strings.Contains(out, "principal:"+ids["partner"]) || !strings.Contains(out, "requestParameters") {
		t.Errorf("grants list (grant %s):\n%s", grantID, out)
	}
	var bs []access.SubjectBinding
	json.Unmarshal([]byte(c.must("roles", "list", "--tenant", "team-a", "--json")), &bs)
	if len(bs) != 2 {
		t.Errorf("roles list --tenant team-a: %+v", bs)
	}

	// Tokens of the principals, through the API.
	_, aliceTok := newToken(t, "--principal", "alice", "--expires", "1d")
	victorID, victorTok := newToken(t, "--principal", ids["victor"], "--expires", "1d")
	_, carolTok := newToken(t, "--principal", "carol", "--expires", "1d")

	// alice logs in: the file is hers alone, and commands use it.
	t.Setenv(serverEnv, "")
	t.Setenv(tokenEnv, "")
	tokFile := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tokFile, []byte(aliceTok+"\n"), 0o600)
	out = c.must("login", "--server", srv.base+"/", "--token-file", tokFile)
	if !strings.Contains(out, "you are alice") || !strings.Contains(out, "analyst in tenant team-a") {
		t.Errorf("login:\n%s", out)
	}
	credFile := filepath.Join(configDir, "vigil", "credentials")
	for path, want := range map[string]os.FileMode{credFile: 0o600, filepath.Dir(credFile): 0o700} {
		info, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", path, info.Mode().Perm(), want)
		}
	}
	if out := c.must("whoami"); !strings.Contains(out, "you are alice") || !strings.Contains(out, srv.base+" (from the saved login)") {
		t.Errorf("whoami from the saved login:\n%s", out)
	}
	if got := tenantsOfRows(t, c.must("search", "--format", "ndjson", "*")); !slices.Equal(got, []string{"team-a"}) {
		t.Errorf("alice's search: tenants %v", got)
	}
	out = c.must("alerts", "list", "--status", "all")
	if !strings.Contains(out, aAlert) || strings.Contains(out, "team-b") {
		t.Errorf("alice's alerts (want %s, none of %v):\n%s", aAlert, otherAlerts, out)
	}
	for _, id := range otherAlerts {
		if strings.Contains(out, id) {
			t.Errorf("alice sees alert %s:\n%s", id, out)
		}
	}
	if out := c.must("alerts", "show", aAlert); !strings.Contains(out, "tenant:     team-a") {
		t.Errorf("alerts show:\n%s", out)
	}
	for _, hit := range ndjson(t, c.must("hunt", "--format", "ndjson")) {
		if hit["tenant"] != "team-a" {
			t.Errorf("alice's hunt found %v", hit)
		}
	}
	var cov coverageReport
	json.Unmarshal([]byte(c.must("coverage", "--format", "json")), &cov)
	for _, s := range cov.Sources {
		if s.Tenant != "team-a" {
			t.Errorf("alice's coverage shows %+v", s)
		}
	}
	c.fails("--by: the server records who you are", "alerts", "ack", "--by", "mallory", aAlert)
	c.must("cases", "open", "--title", "trail stopped", aAlert)
	if out := c.must("cases", "list"); !strings.Contains(out, "trail stopped") || !strings.Contains(out, "alice") {
		t.Errorf("cases list:\n%s", out)
	}
	if out := c.must("playbooks", "runs"); !strings.Contains(out, "no playbook runs") {
		t.Errorf("playbooks runs:\n%s", out)
	}
	// An analyst administers nothing, and may not break glass.
	c.fails("may not manage", "principals", "list")
	c.fails("only a person bound to read in every tenant", "break-glass", "--reason", "incident 42 needs it")
	// An export through the server: the bundle of team-a's events,
	// downloaded by its link, verifies with the server's key.
	bundle := filepath.Join(t.TempDir(), "case-9.zip")
	c.fails("needs a reason", "export", "--from", "2000-01-01", "--out", bundle)
	if out := c.must("export", "--from", "2000-01-01", "--reason", "case 9", "--out", bundle); !strings.Contains(out, "wrote "+bundle+": 1 events") ||
		!strings.Contains(out, srv.base+"/api/v1/exports/x-") {
		t.Errorf("export through the server:\n%s", out)
	}
	if out := mustVigil(t, "verify-bundle", "--key", strings.TrimSpace(mustVigil(t, "key", "--data", data)), bundle); !strings.Contains(out, "verified: 1 events") {
		t.Errorf("verify-bundle of the server's export: %s", out)
	}

	// A login file others may read is refused, as ssh refuses a key.
	os.Chmod(credFile, 0o644)
	c.fails("others may read it", "whoami")
	c.fails("others may read it", "search", "*")
	os.Chmod(credFile, 0o600)

	// VIGIL_SERVER and VIGIL_TOKEN beat the saved login: victor, a viewer
	// of team-a, reads team-a and may not acknowledge.
	t.Setenv(serverEnv, srv.base)
	t.Setenv(tokenEnv, victorTok)
	if got := tenantsOfRows(t, c.must("search", "--format", "ndjson", "*")); !slices.Equal(got, []string{"team-a"}) {
		t.Errorf("victor's search: tenants %v", got)
	}
	if out := c.must("alerts", "list"); !strings.Contains(out, aAlert) {
		t.Errorf("victor's alerts:\n%s", out)
	}
	c.fails("may not work", "alerts", "ack", aAlert)
	c.fails("may not hunt", "hunt")

	// The CSIRT's viewer breaks glass, and ends it.
	t.Setenv(tokenEnv, carolTok)
	out = c.must("break-glass", "--role", "admin", "--minutes", "5", "--reason", "incident 42: disable the key")
	if !strings.Contains(out, "role admin in every tenant") {
		t.Errorf("break-glass:\n%s", out)
	}
	if out := c.must("whoami"); !strings.Contains(out, "break-glass access in force") || !strings.Contains(out, "admin in every tenant") {
		t.Errorf("whoami while elevated:\n%s", out)
	}
	c.must("break-glass", "end")
	if out := c.must("whoami"); strings.Contains(out, "break-glass") {
		t.Errorf("whoami after break-glass end:\n%s", out)
	}

	// Revoked, victor's token is refused, saying so and what to do.
	t.Setenv(tokenEnv, admin)
	c.must("token", "revoke", victorID)
	c.must("grants", "revoke", grantID)
	if out := c.must("grants", "list", "--active"); strings.Contains(out, grantID) {
		t.Errorf("a revoked grant is listed as active:\n%s", out)
	}
	t.Setenv(tokenEnv, victorTok)
	c.fails("refused the token in VIGIL_TOKEN: it is unknown, revoked or expired", "search", "*")
	c.fails("set VIGIL_TOKEN to a valid token", "alerts", "list")

	// So is an expired one, from the saved login.
	// As the server does: its data directory's, or a scale-out's PostgreSQL.
	db, err := openMeta(context.Background(), &dataFlags{dir: data}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	past := func() time.Time { return time.Now().Add(-48 * time.Hour) }
	expired, _, err := access.NewTokens(db, access.Options{Now: past}).Create(context.Background(), access.Spec{Principal: ids["alice"], Expires: past().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(serverEnv, "")
	t.Setenv(tokenEnv, "")
	if _, err := saveCredentials(credentials{Server: srv.base, Token: expired}); err != nil {
		t.Fatal(err)
	}
	c.fails("refused the token of the saved login", "whoami")
	c.fails("run 'vigil login' again", "cases", "list")
	c.fails("it is unknown, revoked or expired", "login", "--token-file", writeTemp(t, expired))

	out = c.must("logout")
	if !strings.Contains(out, "logged out of "+srv.base) {
		t.Errorf("logout: %s", out)
	}
	if _, err := os.Stat(credFile); !os.IsNotExist(err) {
		t.Errorf("the login is still saved: %v", err)
	}

	for _, tok := range []string{admin, aliceTok, victorTok, carolTok, expired} {
		for _, o := range c.output {
			if strings.Contains(o, tok) {
				t.Fatalf("a token was printed:\n%s", o)
			}
		}
	}
}

func writeTemp(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestRemotePrecedence: --server beats VIGIL_SERVER, which beats the
// saved login; --data on the command line means the data directory;
// VIGIL_TOKEN goes with a named server only.
func TestRemotePrecedence(t *testing.T) {
	noRemote(t)
	if _, err := saveCredentials(credentials{Server: "https://saved.example.org", Token: "saved-token"}); err != nil {
		t.Fatal(err)
	}
	remote := func(env map[string]string, args ...string) (*client, error) {
		for k, v := range env {
			t.Setenv(k, v)
		}
		defer func() {
			t.Setenv(serverEnv, "")
			t.Setenv(tokenEnv, "")
		}()
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		var d dataFlags
		d.registerClient(fs)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		return d.remote()
	}
	for _, tc := range []struct {
		name        string
		env         map[string]string
		args        []string
		base, token string // "" base: the data directory
		err         string
	}{
		{"saved login", nil, nil, "https://saved.example.org", "saved-token", ""},
		{"VIGIL_TOKEN alone leaves the saved login be", map[string]string{tokenEnv: "env-token"}, nil, "https://saved.example.org", "saved-token", ""},
		{"VIGIL_SERVER and VIGIL_TOKEN", map[string]string{serverEnv: "http://127.0.0.1:8080/", tokenEnv: "env-token"}, nil, "http://127.0.0.1:8080", "env-token", ""},
		{"VIGIL_SERVER of the saved login", map[string]string{serverEnv: "https://saved.example.org"}, nil, "https://saved.example.org", "saved-token", ""},
		{"VIGIL_SERVER without a token", map[string]string{serverEnv: "https://other.example.org"}, nil, "", "", "no token for https://other.example.org"},
		{"--server beats VIGIL_SERVER", map[string]string{serverEnv: "https://other.example.org", tokenEnv: "env-token"}, []string{"--server", "https://flag.example.org"}, "https://flag.example.org", "env-token", ""},
		{"--data beats the environment", map[string]string{serverEnv: "https://other.example.org", tokenEnv: "env-token"}, []string{"--data", t.TempDir()}, "", "", ""},
		{"--data and --server", nil, []string{"--data", "x", "--server", "https://flag.example.org"}, "", "", "give one"},
		{"not a URL", map[string]string{serverEnv: "vigil.example.org"}, nil, "", "", "want a base URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := remote(tc.env, tc.args...)
			switch {
			case tc.err != "":
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Errorf("error %v, want one saying %q", err, tc.err)
				}
			case err != nil:
				t.Errorf("error %v", err)
			case tc.base == "" && c != nil:
				t.Errorf("client of %s, want the data directory", c.base)
			case tc.base != "" && (c == nil || c.base != tc.base || c.token != tc.token):
				t.Errorf("client %+v, want %s with %s", c, tc.base, tc.token)
			}
		})
	}
}

// TestLoginReadsStdin: a token piped in is read, checked and not echoed;
// a server that is not there is an error that names it, and saves
// nothing.
func TestLoginReadsStdin(t *testing.T) {
	configDir := noRemote(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	w.WriteString("vgl_piped-secret\n")
	w.Close()
	stdin := os.Stdin
	os.Stdin = r
	defer func() { os.Stdin = stdin }()
	code, out, errOut := vigil(t, "login", "--server", "http://127.0.0.1:1")
	if code == 0 || !strings.Contains(errOut, "asking the server") || strings.Contains(out+errOut, "piped-secret") {
		t.Errorf("login to nowhere: exit %d\n%s%s", code, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(configDir, "vigil", "credentials")); !os.IsNotExist(err) {
		t.Errorf("a login that failed was saved: %v", err)
	}
	if code, _, errOut := vigil(t, "login", "--server", "ftp://vigil.example.org"); code == 0 || !strings.Contains(errOut, "want a base URL") {
		t.Errorf("login to an ftp URL: %d %s", code, errOut)
	}
	if code, _, errOut := vigil(t, "whoami", "--data", t.TempDir()); code == 0 || !strings.Contains(errOut, "works through a vigil server's API") {
		t.Errorf("whoami without a server: %d %s", code, errOut)
	}
}
