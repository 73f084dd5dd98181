package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vigilsec/vigil/access"
	"github.com/vigilsec/vigil/meta"
)

var tokenCommands = []command{
	{"create", "create a token and print its secret", runTokenCreate},
	{"list", "list the tokens", runTokenList},
	{"revoke", "revoke a token", runTokenRevoke},
}

func runToken(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runSubcommand(ctx, "token", "API tokens, kept in the data directory's metadata database. They work at\nonce, in a 'vigil serve' running on the same data directory too. Through a\nremote server (--server, "+serverEnv+", vigil login), its API makes and lists them.", tokenCommands, args, stdout, stderr)
}

func runTokenCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("token create", stderr)
	var d dataFlags
	d.registerClient(fs)
	tenant := fs.String("tenant", "", "the tenant the token acts within (required, except for an admin over every tenant)")
	role := fs.String("role", "", "what the token may do: "+roleList()+" (required, unless --principal)")
	principal := fs.String("principal", "", "make a token that acts as this user or service account (name or id), with its roles, instead of a role of its own")
	name := fs.String("name", "", "what the token is for, shown by 'vigil token list' (default TENANT-ROLE)")
	expires := fs.String("expires", "", "how long the token works, in days (90d) or as a duration (2160h) (default: until revoked; required through a server)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: vigil token create [--data DIR | --server URL] --tenant T --role ROLE [--name N] [--expires 90d]\n"+
			"       vigil token create [--data DIR | --server URL] --principal NAME|ID [--name N] [--expires 90d]\n\n"+
			"Creates an API token and prints its secret alone on the last line. The secret\n"+
			"is shown only now: vigil keeps only its hash. An ingest token sends events\n"+
			"into its tenant and nowhere else. A principal's token acts with the roles\n"+
			"and grants of the principal, as they are at each request; it is made through\n"+
			"the server when one runs or is named, which lets you make your own, and an\n"+
			"administrator anyone's. A token made through a server expires, in 1 to 366\n"+
			"days (rounded up to whole days).\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	var spec access.Spec
	switch {
	case *principal != "" && (*role != "" || *tenant != ""):
		return errors.New("--principal: a principal's token has the principal's roles, not --role or --tenant of its own")
	case *principal != "":
		spec = access.Spec{Name: *name, Principal: *principal}
	case *role == "":
		return fmt.Errorf("--role is required: one of %s (or --principal)", roleList())
	default:
		r, err := access.ParseRole(*role)
		if err != nil {
			return err
		}
		spec = access.Spec{Name: *name, Tenant: *tenant, Role: r}
	}
	var dur time.Duration
	if *expires != "" {
		var err error
		if dur, err = parseDays(*expires); err != nil {
			return fmt.Errorf("--expires: %w", err)
		}
		if dur <= 0 {
			return errors.New("--expires: must be more than 0; leave it out for a token that works until revoked")
		}
		spec.Expires = time.Now().Add(dur)
	}

	// Through a server when one is named, or for a principal's token
	// when one runs on the data directory: it checks who may make it
	// and audits it.
	c, err := d.remote()
	if err != nil {
		return err
	}
	if c == nil && spec.Principal != "" {
		c = d.localClient(ctx)
	}
	if c != nil {
		return apiTokenCreate(ctx, c, spec, dur, stdout)
	}

	if err := os.MkdirAll(d.dir, 0o700); err != nil {
		return fmt.Errorf("creating data directory: %w", err)
	}
	db, err := openMeta(ctx, &d, stderr)
	if err != nil {
		return err
	}
	defer db.Close()
	if spec.Principal != "" {
		p, err := access.NewDirectory(db, access.Options{}).Principal(ctx, spec.Principal)
		if err != nil {
			return fmt.Errorf("--principal: %w", err)
		}
		spec.Principal = p.ID
	}
	secret, tok, err := access.NewTokens(db, access.Options{}).Create(ctx, spec)
	if err != nil {
		return err
	}
	printNewToken(stdout, tok, secret)
	return nil
}

// apiTokenCreate makes a token through a server's API, which expires in
// whole days.
func apiTokenCreate(ctx context.Context, c *client, spec access.Spec, dur time.Duration, stdout io.Writer) error {
	if dur <= 0 {
		return errors.New("--expires is required for a token made through a server: 1 to 366 days")
	}
	days := int((dur + 24*time.Hour - 1) / (24 * time.Hour))
	if days > 366 {
		return errors.New("--expires: a token made through a server expires within 366 days")
	}
	if spec.Principal != "" {
		id, err := resolvePrincipal(ctx, c, spec.Principal)
		if err != nil {
			return fmt.Errorf("--principal: %w", err)
		}
		spec.Principal = id
	}
	body := map[string]any{"name": spec.Name, "tenant": spec.Tenant, "role": string(spec.Role), "principal": spec.Principal, "days": days}
	var made struct {
		Token  access.Token `json:"token"`
		Secret string       `json:"secret"`
	}
	if err := c.do(ctx, http.MethodPost, "/api/v1/access/tokens", body, &made); err != nil {
		return err
	}
	printNewToken(stdout, made.Token, made.Secret)
	return nil
}

// printNewToken says what a new token is, and gives its secret alone on
// the last line, for scripts to take.
func printNewToken(stdout io.Writer, tok access.Token, secret string) {
	fmt.Fprintf(stdout, "created token %s %q: %s, expires %s\n", tok.ID, tok.Name, tokenPowers(tok), timeOr(tok.Expires, "never"))
	fmt.Fprintln(stdout, "its secret, shown only now (vigil keeps only a hash of it):")
	fmt.Fprintln(stdout, secret)
}

// tokenPowers says what a token acts as: a principal, or a role in a
// tenant.
func tokenPowers(t access.Token) string {
	if t.Principal != "" {
		return "acts as principal " + t.Principal
	}
	return fmt.Sprintf("role %s, tenant %s", t.Role, tenantOrAll(t.Tenant))
}

func runTokenList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("token list", stderr)
	var d dataFlags
	d.registerClient(fs)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: vigil token list [--data DIR | --server URL]\n\nLists the API tokens, revoked and expired ones included. Their secrets are\nnot kept and cannot be shown.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	c, err := d.remote()
	if err != nil {
		return err
	}
	var toks []access.Token
	if c != nil {
		err = c.get(ctx, "/api/v1/access/tokens", &toks)
	} else {
		toks, err = localTokens(ctx, &d, stderr)
	}
	if err != nil {
		return err
	}
	if len(toks) == 0 {
		fmt.Fprintln(stdout, "no tokens")
		return nil
	}
	now := time.Now()
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tTENANT\tROLE\tCREATED\tEXPIRES\tLAST USED\tREVOKED")
	for _, t := range toks {
		exp := timeOr(t.Expires, "never")
		if !t.Expires.IsZero() && !now.Before(t.Expires) {
			exp += " (expired)"
		}
		tenant, role := tenantOrAll(t.Tenant), string(t.Role)
		if t.Principal != "" {
			// Its roles are the principal's, in their tenants.
			tenant, role = "-", "principal "+t.Principal
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, tenant, role,
			timeOr(t.Created, ""), exp, timeOr(t.LastUsed, "never"), timeOr(t.Revoked, "-"))
	}
	return tw.Flush()
}

func localTokens(ctx context.Context, d *dataFlags, stderr io.Writer) ([]access.Token, error) {
	db, err := openExistingMeta(ctx, d, stderr)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	return access.NewTokens(db, access.Options{}).List(ctx)
}

func runTokenRevoke(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("token revoke", stderr)
	var d dataFlags
	d.registerClient(fs)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: vigil token revoke [--data DIR | --server URL] ID\n\nRevokes a token for good, at once, in a running 'vigil serve' too. The ID is\nthe first column of 'vigil token list'.\n\nFlags:")
		fs.PrintDefaults()
	}
	arg, err := parseOneArg(fs, args)
	if err != nil {
		return err
	}
	c, err := d.remote()
	if err != nil {
		return err
	}
	if c != nil {
		if err := c.do(ctx, http.MethodDelete, "/api/v1/access/tokens/"+url.PathEscape(arg), nil, nil); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "revoked token %s\n", arg)
		return nil
	}
	db, err := openExistingMeta(ctx, &d, stderr)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := access.NewTokens(db, access.Options{}).Revoke(ctx, arg); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "revoked token %s\n", arg)
	return nil
}

// openMeta opens the data directory's metadata database, with warnings
// on stderr.
func openMeta(ctx context.Context, d *dataFlags, stderr io.Writer) (*meta.DB, error) {
	cfg, err := d.loadConfig()
	if err != nil {
		return nil, err
	}
	return openMetaOf(ctx, d, cfg, false, stderr)
}

// openExistingMeta is openMeta for commands with nothing to do in a new
// data directory, where a mistyped --data should be an error rather than
// an empty database.
func openExistingMeta(ctx context.Context, d *dataFlags, stderr io.Writer) (*meta.DB, error) {
	cfg, err := d.loadConfig()
	if err != nil {
		return nil, err
	}
	return openMetaOf(ctx, d, cfg, true, stderr)
}

// openMetaOf opens the metadata database cfg names; with existing, only
// one that is there.
func openMetaOf(ctx context.Context, d *dataFlags, cfg *config, existing bool, stderr io.Writer) (*meta.DB, error) {
	loc := d.metaLocation(cfg)
	if existing && !meta.IsPostgres(loc) {
		if _, err := os.Stat(loc); err != nil {
			return nil, fmt.Errorf("no metadata database in %s: %w", d.dir, err)
		}
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	return meta.Open(ctx, loc, logger)
}

func roleList() string {
	var names []string
	for _, r := range access.Roles() {
		names = append(names, string(r))
	}
	return strings.Join(names, ", ")
}

func tenantOrAll(tenant string) string {
	if tenant == "" {
		return "(all)"
	}
	return tenant
}

// timeOr formats t for a table, or returns none for the zero time.
func timeOr(t time.Time, none string) string {
	if t.IsZero() {
		return none
	}
	return t.UTC().Format(time.RFC3339)
}
