package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/vigilsec/vigil/access"
)

// runLogin checks a token with a server and saves both, so that the
// commands that follow work through that server as the token's
// principal.
func runLogin(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("login", stderr)
	server := fs.String("server", "", "the server, as a base URL (default $"+serverEnv+", else the one saved)")
	tokenFile := fs.String("token-file", "", "read the token from this file ('-': standard input) rather than ask for it")
	fs.Usage = func() {
		path, _ := credentialsPath()
		fmt.Fprintf(stderr, "Usage: vigil login [--server URL] [--token-file FILE]\n\n"+
			"Checks an API token with the server, says who it makes you, and saves the server\n"+
			"and the token in %s, readable by you only. Commands then\n"+
			"work through that server, seeing what its access rules let you see, until\n"+
			"'vigil logout'; --data on a command's line, --server and %s win over it.\n\n"+
			"The token is read from the terminal without echo, or from standard input when it\n"+
			"is piped (vigil login --server URL < token.txt); never from the command line,\n"+
			"where other users see it. An administrator makes one with\n"+
			"'vigil token create --principal NAME --expires 90d'.\n\nFlags:\n", path, serverEnv)
		fs.PrintDefaults()
	}
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	raw := *server
	if raw == "" {
		raw = os.Getenv(serverEnv)
	}
	if raw == "" {
		// Logging in again, to the server saved. A refused file is
		// being replaced: its server is still worth reading.
		if creds, _, err := loadCredentials(); err == nil && creds != nil {
			raw = creds.Server
		}
	}
	if raw == "" {
		fs.Usage()
		return errors.New("name the server: vigil login --server URL")
	}
	base, err := normalizeServer(raw)
	if err != nil {
		return err
	}
	if plainHTTP(base) {
		fmt.Fprintf(stderr, "warning: %s is plain http: the token crosses the network unencrypted; use https for anything but this machine\n", base)
	}
	token, err := readSecret(ctx, *tokenFile, "API token for "+base+": ", stderr)
	if err != nil {
		return fmt.Errorf("reading the token: %w", err)
	}
	c := &client{base: base, token: token, remote: true, from: "vigil login", tokenFrom: "the token given",
		fix: "check it, or ask an administrator for a new one", hc: http.DefaultClient}
	who, err := whoami(ctx, c)
	if err != nil {
		return err
	}
	path, err := saveCredentials(credentials{Server: base, Token: token})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "logged in to %s\n", base)
	printWhoami(stdout, who)
	fmt.Fprintf(stdout, "saved to %s\n", path)
	if os.Getenv(serverEnv) != "" && base != mustNormalize(os.Getenv(serverEnv)) {
		fmt.Fprintf(stderr, "note: %s is set, to another server, and wins over the saved login\n", serverEnv)
	}
	return nil
}

func mustNormalize(raw string) string {
	s, _ := normalizeServer(raw)
	return s
}

// runLogout forgets the saved login. The token itself goes on working
// until it expires or is revoked: the server has no way for a token to
// revoke itself, and a copy may live elsewhere.
func runLogout(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("logout", stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: vigil logout\n\nForgets the server and token 'vigil login' saved. The token still works until it\nexpires or an administrator revokes it ('vigil token revoke ID').")
	}
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	path, err := credentialsPath()
	if err != nil {
		return err
	}
	// Read without the permission check: a refused file is removed all
	// the more.
	var creds credentials
	if b, err := os.ReadFile(path); err == nil {
		json.Unmarshal(b, &creds)
	}
	if err := os.Remove(path); errors.Is(err, os.ErrNotExist) {
		fmt.Fprintln(stdout, "not logged in")
		return nil
	} else if err != nil {
		return fmt.Errorf("forgetting the login: %w", err)
	}
	if creds.Server != "" {
		fmt.Fprintf(stdout, "logged out of %s; its token works until it expires or is revoked\n", creds.Server)
	} else {
		fmt.Fprintln(stdout, "logged out")
	}
	return nil
}

// runWhoami says who the commands act as, and where.
func runWhoami(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("whoami", stderr)
	var d dataFlags
	d.registerClient(fs)
	asJSON := fs.Bool("json", false, "print JSON instead of text")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: vigil whoami [--data DIR | --server URL] [--json]\n\nSays which server the commands ask and who they act as there: the name, the\nroles in each tenant, the groups, the events other tenants share with you.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	c, err := d.needClient(ctx)
	if err != nil {
		return err
	}
	who, err := whoami(ctx, c)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Server string `json:"server"`
			*whoamiAnswer
		}{c.base, who})
	}
	fmt.Fprintf(stdout, "server: %s (from %s)\n", c.base, c.from)
	printWhoami(stdout, who)
	return nil
}

// whoamiAnswer is the answer of GET /api/v1/whoami.
type whoamiAnswer struct {
	Identity access.Identity `json:"identity"`
	Shares   []struct {
		Grant  string   `json:"grant"`
		Tenant string   `json:"tenant"`
		Filter string   `json:"filter,omitempty"`
		Redact []string `json:"redact,omitempty"`
	} `json:"shares"`
}

func whoami(ctx context.Context, c *client) (*whoamiAnswer, error) {
	var who whoamiAnswer
	err := c.get(ctx, "/api/v1/whoami", &who)
	if isStatus(err, http.StatusNotFound) {
		return nil, fmt.Errorf("%s answers no /api/v1/whoami: is it a vigil server?", c.base)
	}
	if err != nil {
		return nil, err
	}
	return &who, nil
}

// printWhoami writes an identity for people.
func printWhoami(w io.Writer, who *whoamiAnswer) {
	id := who.Identity
	fmt.Fprintf(w, "you are %s", id.Name)
	if id.Principal != "" {
		fmt.Fprintf(w, " (principal %s)", id.Principal)
	}
	if id.Credential != "" {
		fmt.Fprintf(w, ", by %s", id.Credential)
	}
	fmt.Fprintln(w)
	if len(id.Groups) > 0 {
		fmt.Fprintf(w, "groups: %s\n", strings.Join(id.Groups, ", "))
	}
	if len(id.Bindings) == 0 {
		fmt.Fprintln(w, "roles: none")
	} else {
		fmt.Fprintln(w, "roles:")
		for _, b := range id.Bindings {
			fmt.Fprintf(w, "  %s in %s\n", b.Role, tenantText(b.Tenant))
		}
	}
	if id.Elevated != "" {
		fmt.Fprintf(w, "break-glass access in force: elevation %s (end it with 'vigil break-glass end')\n", id.Elevated)
	}
	if len(who.Shares) > 0 {
		fmt.Fprintln(w, "shared with you:")
		for _, sh := range who.Shares {
			fmt.Fprintf(w, "  grant %s: %s's events", sh.Grant, sh.Tenant)
			if sh.Filter != "" {
				fmt.Fprintf(w, " matching %s", sh.Filter)
			}
			if len(sh.Redact) > 0 {
				fmt.Fprintf(w, ", without %s", strings.Join(sh.Redact, ", "))
			}
			fmt.Fprintln(w)
		}
	}
}

// tenantText names a binding's tenant for people.
func tenantText(t string) string {
	if t == access.AllTenants {
		return "every tenant"
	}
	return "tenant " + t
}

// maxSecret bounds a token or password read.
const maxSecret = 4 << 10

// readSecret reads a token or a password: from file ("-" for standard
// input) if one is named, else from the terminal without echo after the
// prompt, else from standard input, piped. Only its first line counts.
func readSecret(ctx context.Context, file, prompt string, stderr io.Writer) (string, error) {
	var r io.Reader
	switch {
	case file == "-":
		r = os.Stdin
	case file != "":
		f, err := os.Open(file)
		if err != nil {
			return "", err
		}
		defer f.Close()
		r = f
	case isTerminal(os.Stdin):
		return readTerminal(ctx, os.Stdin, prompt, stderr)
	default:
		r = os.Stdin
	}
	line, err := firstLine(r)
	if err != nil {
		return "", err
	}
	if line == "" {
		return "", errors.New("it is empty")
	}
	return line, nil
}

// readTerminal asks for a secret on a terminal, with its echo off. An
// interrupt ends the wait with the echo restored: the process catches
// SIGINT (main's NotifyContext), so the read itself goes on, and is left
// to end with the process.
func readTerminal(ctx context.Context, f *os.File, prompt string, stderr io.Writer) (string, error) {
	restore, err := noEcho(f)
	if err != nil {
		return "", fmt.Errorf("%w; pipe it in instead", err)
	}
	defer restore()
	fmt.Fprint(stderr, prompt)
	defer fmt.Fprintln(stderr)
	type result struct {
		line string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		line, err := firstLine(f)
		done <- result{line, err}
	}()
	select {
	case <-ctx.Done():
		return "", ctx.Err()
	case r := <-done:
		if r.err == nil && r.line == "" {
			r.err = errors.New("nothing was typed")
		}
		return r.line, r.err
	}
}

// firstLine reads a line, without its end and surrounding space.
func firstLine(r io.Reader) (string, error) {
	br := bufio.NewReaderSize(io.LimitReader(r, maxSecret+1), 512)
	line, err := br.ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	if len(line) > maxSecret {
		return "", fmt.Errorf("it is longer than %d bytes", maxSecret)
	}
	return strings.TrimSpace(line), nil
}
