package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// The environment that points commands at a remote server. VIGIL_TOKEN
// goes with VIGIL_SERVER (or --server) only: the docs use it for ingest
// tokens too, and a token meant for a forwarder should not silently
// replace the one a login saved.
const (
	serverEnv = "VIGIL_SERVER"
	tokenEnv  = "VIGIL_TOKEN"
)

// A client talks to a vigil server's API: the one the user named
// (--server, VIGIL_SERVER, a saved login), or the one running on the data
// directory. Through a remote one, the server's access rules decide what
// a command sees, as they do for any other caller.
type client struct {
	base  string
	token string
	// remote says the server is not the data directory's own: commands
	// that otherwise read the data directory go through the API.
	remote bool
	// from and tokenFrom say where base and token came from, and fix
	// how to mend a refused token, for messages: a refused token is
	// fixed where it was set.
	from, tokenFrom, fix string
	hc                   *http.Client
}

// registerClient registers the data directory's flags and --server, for
// commands that can run against a remote server.
func (d *dataFlags) registerClient(fs *flag.FlagSet) {
	d.register(fs)
	fs.StringVar(&d.serverURL, "server", "", "the vigil server to ask, as a base URL (default $"+serverEnv+", else the one 'vigil login' saved, else the one running on the data directory)")
}

// explicitData reports whether the command line named the data
// directory: that always means the local one, whatever the environment
// or a saved login say, as a flag beats the environment.
func (d *dataFlags) explicitData() bool {
	return d.fs != nil && flagSet(d.fs, "data")
}

// remote returns the client of the remote server the user named, or nil
// when none is named and the command is to use the data directory (or
// the server running on it). The precedence is --server, then
// VIGIL_SERVER, then the saved login; --data on the command line means
// the data directory.
func (d *dataFlags) remote() (*client, error) {
	switch {
	case d.serverURL != "" && d.explicitData():
		return nil, errors.New("--server and --data name two places to work on; give one")
	case d.serverURL != "":
		return namedServer(d.serverURL, "--server")
	case d.explicitData():
		return nil, nil
	case os.Getenv(serverEnv) != "":
		return namedServer(os.Getenv(serverEnv), serverEnv)
	}
	creds, path, err := loadCredentials()
	if err != nil || creds == nil {
		return nil, err
	}
	return savedClient(creds, path), nil
}

// savedClient is the client of a saved login.
func savedClient(creds *credentials, path string) *client {
	return &client{base: creds.Server, token: creds.Token, remote: true, from: "the saved login",
		tokenFrom: "the token of the saved login (" + path + ")", fix: "run 'vigil login' again with a valid token", hc: http.DefaultClient}
}

// namedServer is the client of a server named by --server or
// VIGIL_SERVER: with VIGIL_TOKEN, else the saved login's token when the
// login is to the same server.
func namedServer(raw, from string) (*client, error) {
	base, err := normalizeServer(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", from, err)
	}
	c := &client{base: base, remote: true, from: from, hc: http.DefaultClient}
	if tok := strings.TrimSpace(os.Getenv(tokenEnv)); tok != "" {
		c.token, c.tokenFrom, c.fix = tok, "the token in "+tokenEnv, "set "+tokenEnv+" to a valid token"
		return c, nil
	}
	creds, path, err := loadCredentials()
	if err != nil {
		return nil, err
	}
	if creds == nil || creds.Server != base {
		return nil, fmt.Errorf("no token for %s: set %s, or run 'vigil login --server %s'", base, tokenEnv, base)
	}
	sc := savedClient(creds, path)
	sc.from = from
	return sc, nil
}

// client returns the client of the server the command should ask: a
// remote one, else the vigil serve running on the data directory (as
// its administrator); nil when there is none and the command should
// open the data directory itself.
func (d *dataFlags) client(ctx context.Context) (*client, error) {
	c, err := d.remote()
	if c != nil || err != nil {
		return c, err
	}
	return d.localClient(ctx), nil
}

// localClient is the client of the vigil serve running on the data
// directory, as its administrator, or nil when none answers.
func (d *dataFlags) localClient(ctx context.Context) *client {
	base, token := d.server(ctx)
	if base == "" {
		return nil
	}
	return &client{base: base, token: token, from: "the vigil serve on " + d.dir, tokenFrom: "the data directory's admin token",
		fix: "is the server on the data directory another data directory's?", hc: http.DefaultClient}
}

// needClient is client for commands that work only through a server,
// failing with what to do when there is none.
func (d *dataFlags) needClient(ctx context.Context) (*client, error) {
	c, err := d.client(ctx)
	if err != nil || c != nil {
		return c, err
	}
	return nil, fmt.Errorf("this works through a vigil server's API, and no server is named or running on %s: "+
		"name one with --server URL or %s (and %s), run 'vigil login', or start 'vigil serve' on the data directory", d.dir, serverEnv, tokenEnv)
}

// normalizeServer checks a server's base URL and returns it without a
// trailing slash, so that paths are appended to it and saved logins
// compare equal.
func normalizeServer(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("server %q: want a base URL such as https://vigil.example.org or http://127.0.0.1:8080", raw)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("server %q: want a base URL, without credentials, query or fragment", raw)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u.String(), nil
}

// plainHTTP reports whether base sends tokens unencrypted to another
// machine.
func plainHTTP(base string) bool {
	u, err := url.Parse(base)
	if err != nil || u.Scheme != "http" {
		return false
	}
	host := u.Hostname()
	if host == "localhost" {
		return false
	}
	ip := net.ParseIP(host)
	return ip == nil || !ip.IsLoopback()
}

// An apiError is an answer of the server other than 2xx.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

// isStatus reports whether err is the server's answer with status.
func isStatus(err error, status int) bool {
	var ae *apiError
	return errors.As(err, &ae) && ae.status == status
}

// open sends a request and returns the body of a 2xx answer, for the
// caller to read and close; other answers are an *apiError with the
// server's message. body, if not nil, is JSON.
func (c *client) open(ctx context.Context, method, path string, body io.Reader) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, fmt.Errorf("asking %s: %w", c.base, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("User-Agent", "vigil/"+version)
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("asking the server: %w", err)
	}
	if resp.StatusCode/100 == 2 {
		return resp.Body, nil
	}
	defer resp.Body.Close()
	return nil, c.answerError(resp)
}

// answerError reads a server's error answer. A refused token says
// where it came from, so that the user knows what to fix; the server
// does not say whether it was unknown, revoked or expired, so neither
// can this.
func (c *client) answerError(resp *http.Response) error {
	var e struct {
		Error string `json:"error"`
	}
	json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&e)
	if e.Error == "" {
		e.Error = resp.Status
	}
	if resp.StatusCode == http.StatusUnauthorized {
		e.Error = fmt.Sprintf("%s refused %s: it is unknown, revoked or expired (%s)", c.base, c.tokenFrom, e.Error)
		if c.fix != "" {
			e.Error += "; " + c.fix
		}
	}
	return &apiError{status: resp.StatusCode, msg: e.Error}
}

// do sends in (if not nil) as JSON and decodes a 2xx answer into out (if
// not nil).
func (c *client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encoding the request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	rc, err := c.open(ctx, method, path, body)
	if err != nil {
		return err
	}
	defer rc.Close()
	if out == nil {
		io.Copy(io.Discard, rc)
		return nil
	}
	dec := json.NewDecoder(io.LimitReader(rc, 256<<20))
	dec.UseNumber()
	if err := dec.Decode(out); err != nil {
		return fmt.Errorf("reading the server's answer to %s %s: %w", method, strings.SplitN(path, "?", 2)[0], err)
	}
	return nil
}

func (c *client) get(ctx context.Context, path string, out any) error {
	return c.do(ctx, http.MethodGet, path, nil, out)
}

// credentials are what 'vigil login' saves: the server and the token to
// send it.
type credentials struct {
	Server string `json:"server"`
	Token  string `json:"token"`
}

// credentialsPath is where the login is saved: in the XDG config
// directory, as other command-line tools keep theirs.
func credentialsPath() (string, error) {
	dir := os.Getenv("XDG_CONFIG_HOME")
	if dir == "" || !filepath.IsAbs(dir) {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("finding where to keep the login: %w", err)
		}
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "vigil", "credentials"), nil
}

// loadCredentials reads the saved login, nil if there is none. A file
// others may read is refused, as ssh refuses such a key: the token in it
// is as good as the user's password, and may already have leaked.
func loadCredentials() (*credentials, string, error) {
	path, err := credentialsPath()
	if err != nil {
		return nil, "", err
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, path, nil
	}
	if err != nil {
		return nil, path, fmt.Errorf("reading the saved login: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, path, fmt.Errorf("reading the saved login: %w", err)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return nil, path, fmt.Errorf("refusing the saved login %s: others may read it (mode %04o), so its token may have leaked; "+
			"revoke the token and run 'vigil login' again, or if only you could ever read it, chmod 600 %s", path, perm, path)
	}
	var c credentials
	if err := json.NewDecoder(io.LimitReader(f, 64<<10)).Decode(&c); err != nil {
		return nil, path, fmt.Errorf("reading the saved login %s: %w", path, err)
	}
	if c.Server, err = normalizeServer(c.Server); err != nil || c.Token == "" {
		return nil, path, fmt.Errorf("the saved login %s names no server and token: run 'vigil login' again", path)
	}
	return &c, path, nil
}

// saveCredentials writes the login readable by its owner only, in a
// directory only its owner may enter. It is written beside and renamed,
// so that no reader sees half of it, and so that an existing file's
// looser mode is not kept.
func saveCredentials(c credentials) (string, error) {
	path, err := credentialsPath()
	if err != nil {
		return "", err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("saving the login: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return "", fmt.Errorf("saving the login: %w", err)
	}
	b, _ := json.MarshalIndent(c, "", "  ")
	f, err := os.CreateTemp(dir, ".credentials-*")
	if err != nil {
		return "", fmt.Errorf("saving the login: %w", err)
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return "", fmt.Errorf("saving the login: %w", err)
	}
	_, err = f.Write(append(b, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		return "", fmt.Errorf("saving the login: %w", err)
	}
	return path, nil
}

// remoteConfigured says whether the environment or a saved login point
// commands at a remote server, and which: for the commands that work on
// the data directory only, which say so rather than leave the user
// wondering which data they worked on.
func remoteConfigured() string {
	if os.Getenv(serverEnv) != "" {
		return serverEnv
	}
	if path, err := credentialsPath(); err == nil {
		if _, err := os.Stat(path); err == nil {
			return "the saved login"
		}
	}
	return ""
}
