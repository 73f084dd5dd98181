package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vigilsec/vigil/access"
	"github.com/vigilsec/vigil/query"
)

// The access commands administer principals, groups, roles and grants
// through a server's API, never the metadata database directly: the
// server checks that the caller may, and keeps the audit record of it.
// The local administrator's token (a vigil serve on the data directory)
// works as any administrator's.

var principalsCommands = []command{
	{"list", "list the users and service accounts", runPrincipalsList},
	{"create", "create a user or a service account", runPrincipalsCreate},
	{"password", "set a password: your own, or anyone's as an administrator", runPrincipalsPassword},
	{"disable", "disable a principal: it can no longer log in or use its tokens", runPrincipalsDisable},
}

var groupsCommands = []command{
	{"list", "list the groups and their members", runGroupsList},
	{"create", "create a group", runGroupsCreate},
	{"add", "add a principal to a group", groupMember("add")},
	{"remove", "remove a principal from a group", groupMember("remove")},
}

var rolesCommands = []command{
	{"list", "list who holds which role in which tenant", runRolesList},
	{"bind", "give a principal or a group a role in a tenant", roleBinding("bind")},
	{"unbind", "take a role in a tenant from a principal or a group", roleBinding("unbind")},
}

var grantsCommands = []command{
	{"list", "list the grants you manage, and those shared with you", runGrantsList},
	{"create", "share a tenant's events with another tenant, a group or a principal", runGrantsCreate},
	{"revoke", "end a grant now", runGrantsRevoke},
}

func runPrincipals(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runSubcommand(ctx, "principals", "Users (people) and service accounts (workloads), who hold roles and tokens.\nThrough a server's API: the one named (--server, "+serverEnv+", vigil login) or\nthe one running on the data directory.", principalsCommands, args, stdout, stderr)
}

func runGroups(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runSubcommand(ctx, "groups", "Groups of principals, which roles and grants are bound to (the CSIRT).\nThrough a server's API.", groupsCommands, args, stdout, stderr)
}

func runRoles(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runSubcommand(ctx, "roles", "Role bindings: a role ("+roleList()+")\nheld by a principal or a group in a tenant, or in every tenant ('*').\nThrough a server's API.", rolesCommands, args, stdout, stderr)
}

func runGrants(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runSubcommand(ctx, "grants", "Grants share part of a tenant's events (a filter, a time window, fields hidden)\nwith another tenant, a group or a principal, until they expire or are revoked.\nThrough a server's API.", grantsCommands, args, stdout, stderr)
}

// accessFlags returns the flags every access command takes: where the
// server is, and --json.
func accessFlags(name, usage string, stderr io.Writer) (*flag.FlagSet, *dataFlags, *bool) {
	fs := newFlags(name, stderr)
	d := new(dataFlags)
	d.registerClient(fs)
	asJSON := fs.Bool("json", false, "print JSON instead of text")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: vigil %s\n\nFlags:\n", usage)
		fs.PrintDefaults()
	}
	return fs, d, asJSON
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// parseArgs parses flags around exactly n arguments; anything else
// prints the usage.
func parseArgs(fs *flag.FlagSet, args []string, n int) ([]string, error) {
	rest, err := parseFlags(fs, args)
	if err != nil {
		return nil, err
	}
	if len(rest) != n {
		fs.Usage()
		return nil, errUsage
	}
	return rest, nil
}

// fetchList parses a list command's flags and asks the server for the
// list at path.
func fetchList[T any](ctx context.Context, fs *flag.FlagSet, d *dataFlags, args []string, path string) (*client, []T, error) {
	if err := parseNoArgs(fs, args); err != nil {
		return nil, nil, err
	}
	c, err := d.needClient(ctx)
	if err != nil {
		return nil, nil, err
	}
	var items []T
	if err := c.get(ctx, path, &items); err != nil {
		return nil, nil, err
	}
	return c, items, nil
}

// printList prints items as JSON, or as a table of header and a row of
// cells each, or says none when there are none.
func printList[T any](w io.Writer, asJSON bool, items []T, none, header string, row func(T) []string) error {
	if asJSON {
		return printJSON(w, items)
	}
	if len(items) == 0 {
		_, err := fmt.Fprintln(w, none)
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, it := range items {
		fmt.Fprintln(tw, strings.Join(row(it), "\t"))
	}
	return tw.Flush()
}

func runPrincipalsList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, d, asJSON := accessFlags("principals list", "principals list [--server URL | --data DIR] [--json]", stderr)
	_, ps, err := fetchList[access.Principal](ctx, fs, d, args, "/api/v1/access/principals")
	if err != nil {
		return err
	}
	return printList(stdout, *asJSON, ps, "no principals", "ID\tNAME\tKIND\tDISPLAY\tPASSWORD\tOIDC\tCREATED\tDISABLED", func(p access.Principal) []string {
		return []string{p.ID, p.Name, p.Kind, cmp.Or(p.Display, "-"), yesNo(p.HasPassword), yesNo(p.OIDCSubject != ""), timeOr(p.Created, "-"), timeOr(p.Disabled, "-")}
	})
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func runPrincipalsCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, d, asJSON := accessFlags("principals create", "principals create [--server URL | --data DIR] [--kind user|service] [--display NAME] [--password | --password-file FILE] NAME", stderr)
	kind := fs.String("kind", access.User, "user (a person, who logs in) or service (a workload, with tokens only)")
	display := fs.String("display", "", "the name shown for it, such as a person's full name")
	askPassword := fs.Bool("password", false, "set a password too, asked for (or read from standard input when piped)")
	passwordFile := fs.String("password-file", "", "set a password too, read from this file ('-': standard input)")
	rest, err := parseArgs(fs, args, 1)
	if err != nil {
		return err
	}
	if *kind != access.User && *kind != access.Service {
		return fmt.Errorf("--kind: %q is not %s or %s", *kind, access.User, access.Service)
	}
	c, err := d.needClient(ctx)
	if err != nil {
		return err
	}
	body := map[string]string{"name": rest[0], "kind": *kind, "display": *display}
	if *askPassword || *passwordFile != "" {
		if *kind == access.Service {
			return errors.New("a service account has tokens only, not a password")
		}
		if body["password"], err = readNewPassword(ctx, *passwordFile, rest[0], stderr); err != nil {
			return err
		}
	}
	var p access.Principal
	if err := c.do(ctx, http.MethodPost, "/api/v1/access/principals", body, &p); err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, p)
	}
	fmt.Fprintf(stdout, "created %s %s: principal %s\n", p.Kind, p.Name, p.ID)
	return nil
}

// readNewPassword reads a new password: asked twice on a terminal, so
// that a typo does not lock its owner out.
func readNewPassword(ctx context.Context, file, name string, stderr io.Writer) (string, error) {
	if file != "" || !isTerminal(os.Stdin) {
		pw, err := readSecret(ctx, file, "", stderr)
		if err != nil {
			return "", fmt.Errorf("reading the password: %w", err)
		}
		return pw, nil
	}
	pw, err := readTerminal(ctx, os.Stdin, "new password for "+name+": ", stderr)
	if err != nil {
		return "", fmt.Errorf("reading the password: %w", err)
	}
	again, err := readTerminal(ctx, os.Stdin, "again: ", stderr)
	if err != nil {
		return "", fmt.Errorf("reading the password: %w", err)
	}
	if pw != again {
		return "", errors.New("the passwords typed differ")
	}
	return pw, nil
}

func runPrincipalsPassword(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, d, _ := accessFlags("principals password", "principals password [--server URL | --data DIR] [--password-file FILE] NAME|ID", stderr)
	passwordFile := fs.String("password-file", "", "read the password from this file ('-': standard input) rather than ask for it")
	c, ref, id, err := principalArg(ctx, fs, d, args)
	if err != nil {
		return err
	}
	pw, err := readNewPassword(ctx, *passwordFile, ref, stderr)
	if err != nil {
		return err
	}
	if err := c.do(ctx, http.MethodPost, "/api/v1/access/principals/"+url.PathEscape(id)+"/password", map[string]string{"password": pw}, nil); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "set the password of %s\n", ref)
	return nil
}

func runPrincipalsDisable(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, d, _ := accessFlags("principals disable", "principals disable [--server URL | --data DIR] NAME|ID", stderr)
	c, ref, id, err := principalArg(ctx, fs, d, args)
	if err != nil {
		return err
	}
	if err := c.do(ctx, http.MethodPost, "/api/v1/access/principals/"+url.PathEscape(id)+"/disable", nil, nil); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "disabled %s (principal %s): it can no longer log in or use its tokens\n", ref, id)
	return nil
}

// principalArg parses the flags of a command about one principal, named
// by its argument, and returns the server's client, the argument and
// the principal's id.
func principalArg(ctx context.Context, fs *flag.FlagSet, d *dataFlags, args []string) (c *client, ref, id string, err error) {
	rest, err := parseArgs(fs, args, 1)
	if err != nil {
		return nil, "", "", err
	}
	if c, err = d.needClient(ctx); err != nil {
		return nil, "", "", err
	}
	id, err = resolvePrincipal(ctx, c, rest[0])
	return c, rest[0], id, err
}

// resolvePrincipal returns the id of the principal ref names, by id or
// name, as the server's own lookups take it (the id wins), for the
// endpoints that take an id only. A caller who may not list principals
// may still name itself.
func resolvePrincipal(ctx context.Context, c *client, ref string) (string, error) {
	var ps []access.Principal
	err := c.get(ctx, "/api/v1/access/principals", &ps)
	if isStatus(err, http.StatusForbidden) {
		if who, werr := whoami(ctx, c); werr == nil && who.Identity.Principal != "" &&
			(ref == who.Identity.Principal || ref == who.Identity.Name) {
			return who.Identity.Principal, nil
		}
	}
	if err != nil {
		return "", err
	}
	for _, p := range ps {
		if p.ID == ref {
			return p.ID, nil
		}
	}
	for _, p := range ps {
		if p.Name == ref {
			return p.ID, nil
		}
	}
	return "", fmt.Errorf("no principal named %q or with that id: 'vigil principals list' lists them", ref)
}

// resolveSubject returns a binding's subject or a grant's grantee with a
// principal named by name turned into its id, which is what bindings and
// grants hold. kinds are the kinds of subject allowed.
func resolveSubject(ctx context.Context, c *client, s string, kinds ...string) (string, error) {
	kind, ref, ok := strings.Cut(s, ":")
	valid := false
	for _, k := range kinds {
		valid = valid || k == kind
	}
	if !ok || ref == "" || !valid {
		want := make([]string, len(kinds))
		for i, k := range kinds {
			want[i] = k + ":" + map[string]string{"principal": "NAME|ID", "group": "NAME", "tenant": "NAME"}[k]
		}
		return "", fmt.Errorf("%q is not %s", s, strings.Join(want, ", "))
	}
	if kind != "principal" {
		return s, nil
	}
	id, err := resolvePrincipal(ctx, c, ref)
	if err != nil {
		return "", err
	}
	return "principal:" + id, nil
}

func runGroupsList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, d, asJSON := accessFlags("groups list", "groups list [--server URL | --data DIR] [--json]", stderr)
	_, gs, err := fetchList[access.Group](ctx, fs, d, args, "/api/v1/access/groups")
	if err != nil {
		return err
	}
	return printList(stdout, *asJSON, gs, "no groups", "NAME\tMEMBERS\tDESCRIPTION", func(g access.Group) []string {
		return []string{g.Name, cmp.Or(strings.Join(g.Members, ","), "-"), cmp.Or(g.Description, "-")}
	})
}

func runGroupsCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, d, asJSON := accessFlags("groups create", "groups create [--server URL | --data DIR] [--description TEXT] NAME", stderr)
	description := fs.String("description", "", "what the group is")
	rest, err := parseArgs(fs, args, 1)
	if err != nil {
		return err
	}
	c, err := d.needClient(ctx)
	if err != nil {
		return err
	}
	var g access.Group
	if err := c.do(ctx, http.MethodPost, "/api/v1/access/groups", access.Group{Name: rest[0], Description: *description}, &g); err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, g)
	}
	fmt.Fprintf(stdout, "created group %s\n", g.Name)
	return nil
}

// groupMember returns the command that adds a principal to a group, or
// removes one.
func groupMember(action string) func(context.Context, []string, io.Writer, io.Writer) error {
	return func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		fs, d, _ := accessFlags("groups "+action, "groups "+action+" [--server URL | --data DIR] GROUP PRINCIPAL_NAME|ID", stderr)
		rest, err := parseArgs(fs, args, 2)
		if err != nil {
			return err
		}
		c, err := d.needClient(ctx)
		if err != nil {
			return err
		}
		group, principal := rest[0], rest[1]
		path := "/api/v1/access/groups/" + url.PathEscape(group) + "/members"
		if action == "add" {
			err = c.do(ctx, http.MethodPost, path, map[string]string{"principal": principal}, nil)
		} else {
			err = c.do(ctx, http.MethodDelete, path+"/"+url.PathEscape(principal), nil, nil)
		}
		if err != nil {
			return fmt.Errorf("%s %s (group %s): %w", map[string]string{"add": "adding", "remove": "removing"}[action], principal, group, err)
		}
		if action == "add" {
			fmt.Fprintf(stdout, "added %s to group %s\n", principal, group)
		} else {
			fmt.Fprintf(stdout, "removed %s from group %s\n", principal, group)
		}
		return nil
	}
}

func runRolesList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, d, asJSON := accessFlags("roles list", "roles list [--server URL | --data DIR] [--tenant T] [--json]", stderr)
	tenant := fs.String("tenant", "", "only the bindings in this tenant ('*': those in every tenant)")
	c, bs, err := fetchList[access.SubjectBinding](ctx, fs, d, args, "/api/v1/access/bindings")
	if err != nil {
		return err
	}
	if *tenant != "" {
		bs = slices.DeleteFunc(bs, func(b access.SubjectBinding) bool { return b.Tenant != *tenant })
	}
	// Principals are bound by id; their names say more. Whoever may list
	// bindings may list principals, but a failure only costs the names.
	names := map[string]string{}
	var ps []access.Principal
	if !*asJSON && len(bs) > 0 && c.get(ctx, "/api/v1/access/principals", &ps) == nil {
		for _, p := range ps {
			names["principal:"+p.ID] = p.Name
		}
	}
	return printList(stdout, *asJSON, bs, "no role bindings", "SUBJECT\tNAME\tTENANT\tROLE", func(b access.SubjectBinding) []string {
		name := names[string(b.Subject)]
		if g, ok := strings.CutPrefix(string(b.Subject), "group:"); ok {
			name = g
		}
		return []string{string(b.Subject), cmp.Or(name, "-"), b.Tenant, string(b.Role)}
	})
}

// roleBinding returns the command that binds a role, or unbinds one.
func roleBinding(action string) func(context.Context, []string, io.Writer, io.Writer) error {
	return func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		fs, d, _ := accessFlags("roles "+action, "roles "+action+" [--server URL | --data DIR] --subject principal:NAME|ID|group:NAME --tenant T|'*' --role ROLE", stderr)
		subject := fs.String("subject", "", "who: principal:NAME, principal:ID or group:NAME (required)")
		tenant := fs.String("tenant", "", "the tenant, or '*' for every tenant (required)")
		role := fs.String("role", "", "the role: "+roleList()+" (required)")
		if err := parseNoArgs(fs, args); err != nil {
			return err
		}
		if *subject == "" || *tenant == "" || *role == "" {
			fs.Usage()
			return errors.New("--subject, --tenant and --role are required")
		}
		r, err := access.ParseRole(*role)
		if err != nil {
			return fmt.Errorf("--role: %w", err)
		}
		if *tenant != access.AllTenants {
			if err := access.CheckTenant(*tenant); err != nil {
				return fmt.Errorf("--tenant: %w", err)
			}
		}
		c, err := d.needClient(ctx)
		if err != nil {
			return err
		}
		s, err := resolveSubject(ctx, c, *subject, "principal", "group")
		if err != nil {
			return fmt.Errorf("--subject: %w", err)
		}
		b := access.SubjectBinding{Subject: access.Subject(s), Binding: access.Binding{Role: r, Tenant: *tenant}}
		method := map[string]string{"bind": http.MethodPost, "unbind": http.MethodDelete}[action]
		err = c.do(ctx, method, "/api/v1/access/bindings", b, nil)
		if action == "unbind" && isStatus(err, http.StatusNotFound) {
			return fmt.Errorf("%s holds no role %s in %s", *subject, r, tenantText(*tenant))
		}
		if err != nil {
			return err
		}
		if action == "bind" {
			fmt.Fprintf(stdout, "%s holds role %s in %s\n", *subject, r, tenantText(*tenant))
		} else {
			fmt.Fprintf(stdout, "%s no longer holds role %s in %s\n", *subject, r, tenantText(*tenant))
		}
		return nil
	}
}

func runGrantsList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, d, asJSON := accessFlags("grants list", "grants list [--server URL | --data DIR] [--active] [--json]", stderr)
	active := fs.Bool("active", false, "only the grants in force: not expired, not revoked")
	_, gs, err := fetchList[access.Grant](ctx, fs, d, args, "/api/v1/grants")
	if err != nil {
		return err
	}
	now := time.Now()
	if *active {
		gs = slices.DeleteFunc(gs, func(g access.Grant) bool { return !g.Active(now) })
	}
	return printList(stdout, *asJSON, gs, "no grants", "ID\tSTATUS\tOWNER\tGRANTEE\tFILTER\tEVENTS FROM\tEVENTS TO\tHIDDEN\tEXPIRES\tBY\tREASON", func(g access.Grant) []string {
		status := "active"
		switch {
		case !g.Revoked.IsZero():
			status = "revoked"
		case !now.Before(g.Expires):
			status = "expired"
		}
		return []string{g.ID, status, g.Owner, g.Grantee, cmp.Or(g.Filter, "*"), timeOr(g.From, "-"), timeOr(g.To, "-"),
			cmp.Or(strings.Join(g.Redact, ","), "-"), timeOr(g.Expires, "-"), g.CreatedBy, strings.ReplaceAll(g.Reason, "\t", " ")}
	})
}

func runGrantsCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, d, asJSON := accessFlags("grants create", "grants create [--server URL | --data DIR] --owner TENANT --grantee tenant:NAME|group:NAME|principal:NAME|ID\n"+
		"       [--filter QUERY] [--from T] [--to T] [--redact FIELD,...] --expires 30d|TIME --reason TEXT\n\n"+
		"Shares the owner tenant's events that the filter selects, with event times in\n"+
		"[from, to), without the fields redacted, until the grant expires (at most a year)\n"+
		"or is revoked. The grantee sees the reason; the audit trail keeps it.", stderr)
	owner := fs.String("owner", "", "the tenant whose events are shared, which you manage (required)")
	grantee := fs.String("grantee", "", "who they are shared with: tenant:NAME, group:NAME or principal:NAME|ID (required)")
	filter := fs.String("filter", "", "a search filter selecting the events shared (default: all of them)")
	fromArg := fs.String("from", "", "share events from this time: RFC 3339, a date, or relative (-30d)")
	toArg := fs.String("to", "", "share events before this time")
	redact := fs.String("redact", "", "fields to hide from the grantee, comma-separated")
	expires := fs.String("expires", "", "when the grant ends: a duration from now (30d, 72h) or a time (required)")
	reason := fs.String("reason", "", "why: an incident, an engagement (required)")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	if *owner == "" || *grantee == "" || *expires == "" || strings.TrimSpace(*reason) == "" {
		fs.Usage()
		return errors.New("--owner, --grantee, --expires and --reason are required")
	}
	if err := access.CheckTenant(*owner); err != nil {
		return fmt.Errorf("--owner: %w", err)
	}
	now := time.Now()
	body := grantRequest{Owner: *owner, Filter: *filter, Reason: *reason, Redact: []string{}}
	var err error
	if body.Expires, err = futureTime(*expires, now); err != nil {
		return fmt.Errorf("--expires: %w", err)
	}
	if body.From, err = query.ParseTimeArg(*fromArg, now); err != nil {
		return fmt.Errorf("--from: %w", err)
	}
	if body.To, err = query.ParseTimeArg(*toArg, now); err != nil {
		return fmt.Errorf("--to: %w", err)
	}
	if *filter != "" {
		if _, err := query.Parse(*filter); err != nil {
			return fmt.Errorf("--filter: %w", err)
		}
	}
	for _, f := range strings.Split(*redact, ",") {
		if f = strings.TrimSpace(f); f != "" {
			body.Redact = append(body.Redact, f)
		}
	}
	c, err := d.needClient(ctx)
	if err != nil {
		return err
	}
	if body.Grantee, err = resolveSubject(ctx, c, *grantee, "tenant", "group", "principal"); err != nil {
		return fmt.Errorf("--grantee: %w", err)
	}
	var g access.Grant
	if err := c.do(ctx, http.MethodPost, "/api/v1/grants", body, &g); err != nil {
		return fmt.Errorf("creating the grant: %w", err)
	}
	if *asJSON {
		return printJSON(stdout, g)
	}
	fmt.Fprintf(stdout, "created grant %s: %s's events", g.ID, g.Owner)
	if g.Filter != "" {
		fmt.Fprintf(stdout, " matching %s", g.Filter)
	}
	if len(g.Redact) > 0 {
		fmt.Fprintf(stdout, ", without %s", strings.Join(g.Redact, ", "))
	}
	fmt.Fprintf(stdout, ", shared with %s until %s\n", *grantee, timeOr(g.Expires, "-"))
	return nil
}

// grantRequest is the body of POST /api/v1/grants: the fields of an
// access.Grant its maker sets.
type grantRequest struct {
	Owner   string    `json:"owner"`
	Grantee string    `json:"grantee"`
	Filter  string    `json:"filter"`
	From    time.Time `json:"from,omitzero"`
	To      time.Time `json:"to,omitzero"`
	Redact  []string  `json:"redact"`
	Reason  string    `json:"reason"`
	Expires time.Time `json:"expires"`
}

// futureTime reads a time to come: a duration from now ("30d", "72h"),
// or a time (RFC 3339 or a date).
func futureTime(s string, now time.Time) (time.Time, error) {
	if d, err := parseDays(s); err == nil {
		if d <= 0 {
			return time.Time{}, fmt.Errorf("%q is not in the future", s)
		}
		return now.Add(d), nil
	}
	t, err := parseTimeOrDate(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither a duration (30d, 72h) nor a time (RFC 3339 or a date)", s)
	}
	return t, nil
}

func runGrantsRevoke(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, d, asJSON := accessFlags("grants revoke", "grants revoke [--server URL | --data DIR] ID", stderr)
	rest, err := parseArgs(fs, args, 1)
	if err != nil {
		return err
	}
	c, err := d.needClient(ctx)
	if err != nil {
		return err
	}
	var g access.Grant
	if err := c.do(ctx, http.MethodDelete, "/api/v1/grants/"+url.PathEscape(rest[0]), nil, &g); err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, g)
	}
	fmt.Fprintf(stdout, "revoked grant %s: %s's events are no longer shared with %s\n", g.ID, g.Owner, g.Grantee)
	return nil
}

// runBreakGlass gives its caller, a member of the CSIRT, a role in every
// tenant for a while, or ends that early. The server raises an alert of
// it and audits everything done under it.
func runBreakGlass(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, d, asJSON := accessFlags("break-glass", "break-glass [--server URL | --data DIR] [--role ROLE] [--minutes N] --reason TEXT\n"+
		"       vigil break-glass [--server URL | --data DIR] end\n\n"+
		"Break-glass access: you, a person bound to read in every tenant (the CSIRT), hold\n"+
		"a role in every tenant for a while, for a reason everyone notified reads. It\n"+
		"raises an alert, and the audit trail marks everything done under it. 'end' ends it\n"+
		"before its time.", stderr)
	role := fs.String("role", string(access.Admin), "the role to hold: "+roleList())
	minutes := fs.Int("minutes", 60, fmt.Sprintf("for how long, at most %d", int(access.MaxElevation/time.Minute)))
	reason := fs.String("reason", "", "why, in at least 10 characters (required)")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	end := len(rest) == 1 && rest[0] == "end"
	if len(rest) > 1 || len(rest) == 1 && !end {
		fs.Usage()
		return errUsage
	}
	if !end {
		if strings.TrimSpace(*reason) == "" {
			fs.Usage()
			return errors.New("--reason is required: it is sent to everyone notified")
		}
		if _, err := access.ParseRole(*role); err != nil {
			return fmt.Errorf("--role: %w", err)
		}
		if *minutes <= 0 || time.Duration(*minutes)*time.Minute > access.MaxElevation {
			return fmt.Errorf("--minutes: want 1 to %d", int(access.MaxElevation/time.Minute))
		}
	}
	c, err := d.needClient(ctx)
	if err != nil {
		return err
	}
	if end {
		if err := c.do(ctx, http.MethodDelete, "/api/v1/break-glass", nil, nil); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "break-glass access ended")
		return nil
	}
	var e access.Elevation
	body := map[string]any{"role": *role, "reason": *reason, "minutes": *minutes}
	if err := c.do(ctx, http.MethodPost, "/api/v1/break-glass", body, &e); err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, e)
	}
	fmt.Fprintf(stdout, "break-glass access: role %s in every tenant until %s (elevation %s)\n", e.Role, timeOr(e.Expires, "-"), e.ID)
	fmt.Fprintln(stdout, "it raised an alert, and everything you do is audited under it; end it with 'vigil break-glass end'")
	return nil
}
