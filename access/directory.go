package access

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/vigilsec/vigil/meta"
)

// Kinds of principal.
const (
	User    = "user"    // a person: logs in with a password or through OIDC
	Service = "service" // a workload: has tokens only
)

// Errors of the directory.
var (
	ErrNotFound = errors.New("not found")
	// ErrBadLogin is every failed login alike, so that a caller cannot
	// tell an unknown name from a wrong password.
	ErrBadLogin = errors.New("wrong name or password")
)

// A Principal is a user or a service account.
type Principal struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Kind        string    `json:"kind"`
	Display     string    `json:"display,omitempty"`
	OIDCSubject string    `json:"oidc_subject,omitempty"`
	HasPassword bool      `json:"has_password"`
	Created     time.Time `json:"created"`
	Disabled    time.Time `json:"disabled,omitzero"`
}

// A Group is a named set of principals that roles and grants are bound
// to, such as the CSIRT.
type Group struct {
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	Members     []string `json:"members"` // principal names
}

// A Subject is what a role is bound to: "principal:ID" or "group:NAME".
type Subject string

// PrincipalSubject and GroupSubject name a principal and a group as
// subjects of bindings.
func PrincipalSubject(id string) Subject { return Subject("principal:" + id) }
func GroupSubject(name string) Subject   { return Subject("group:" + name) }

// A SubjectBinding is a binding and what it is bound to.
type SubjectBinding struct {
	Subject Subject `json:"subject"`
	Binding
}

// Directory keeps the principals, groups, bindings, grants and
// elevations in the metadata database. Its methods are safe for
// concurrent use, and other processes may use the same database.
type Directory struct {
	db  *meta.DB
	now func() time.Time
	log *slog.Logger
	// links caches the key that signs export links, once read.
	links atomic.Pointer[[]byte]
}

// NewDirectory returns the directory kept in db.
func NewDirectory(db *meta.DB, opts Options) *Directory {
	opts = opts.withDefaults()
	return &Directory{db: db, now: opts.Now, log: opts.Logger}
}

// Principal and group names are typed at a terminal and shown in
// records: an email address or a plain name.
var principalName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$`)

// CreatePrincipal adds a user or a service account.
func (d *Directory) CreatePrincipal(ctx context.Context, name, kind, display string) (Principal, error) {
	if !principalName.MatchString(name) {
		return Principal{}, fmt.Errorf("name %q is not valid: use up to 128 letters, digits, '.', '_', '@', '+' or '-', beginning with a letter or digit", name)
	}
	if kind != User && kind != Service {
		return Principal{}, fmt.Errorf("kind %q is not %s or %s", kind, User, Service)
	}
	p := Principal{ID: newID(), Name: name, Kind: kind, Display: display, Created: fromNanos(nanos(d.now()))}
	err := d.db.Write(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM principals WHERE name = $1`, name).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("a principal named %q exists", name)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO principals (id, name, kind, display, password, created) VALUES ($1, $2, $3, $4, '', $5)`,
			p.ID, p.Name, p.Kind, p.Display, nanos(p.Created))
		return err
	})
	if err != nil {
		return Principal{}, fmt.Errorf("access: creating %s %q: %w", kind, name, err)
	}
	d.log.Info("created a principal", "id", p.ID, "name", name, "kind", kind)
	return p, nil
}

const principalColumns = `id, name, kind, display, oidc_subject, password <> '', created, disabled`

func scanPrincipal(row interface{ Scan(...any) error }) (Principal, error) {
	var (
		p        Principal
		subject  sql.NullString
		created  int64
		disabled sql.NullInt64
	)
	if err := row.Scan(&p.ID, &p.Name, &p.Kind, &p.Display, &subject, &p.HasPassword, &created, &disabled); err != nil {
		return Principal{}, err
	}
	p.OIDCSubject = subject.String
	p.Created = time.Unix(0, created).UTC()
	p.Disabled = fromNanos(disabled)
	return p, nil
}

// Principal returns the principal with the id or name ref.
func (d *Directory) Principal(ctx context.Context, ref string) (Principal, error) {
	// A name may look like another principal's id: the id wins.
	p, err := scanPrincipal(d.db.QueryRow(ctx, `SELECT `+principalColumns+` FROM principals WHERE id = $1 OR name = $1 ORDER BY CASE WHEN id = $1 THEN 0 ELSE 1 END LIMIT 1`, ref))
	if errors.Is(err, sql.ErrNoRows) {
		return Principal{}, fmt.Errorf("principal %q: %w", ref, ErrNotFound)
	}
	if err != nil {
		return Principal{}, fmt.Errorf("access: looking up principal %q: %w", ref, err)
	}
	return p, nil
}

// Principals returns every principal, by name.
func (d *Directory) Principals(ctx context.Context) ([]Principal, error) {
	return queryAll(ctx, d.db, "listing principals", scanPrincipal, `SELECT `+principalColumns+` FROM principals ORDER BY name`)
}

// SetPassword sets a user's password, hashed with argon2id.
func (d *Directory) SetPassword(ctx context.Context, id, password string) error {
	hash, err := hashPassword(password)
	if err != nil {
		return err
	}
	return d.update(ctx, "setting the password of "+id, `UPDATE principals SET password = $1 WHERE id = $2 AND kind = 'user'`, hash, id)
}

// Disable stops a principal from logging in and its tokens and sessions
// from working; its records stay.
func (d *Directory) Disable(ctx context.Context, id string) error {
	return d.update(ctx, "disabling "+id, `UPDATE principals SET disabled = $1 WHERE id = $2 AND disabled IS NULL`, nanos(d.now()), id)
}

// LinkOIDC makes the OIDC identity subject (issuer and subject, as
// OIDCSubjectOf makes it) log in as the principal id, a user not linked
// yet: of two first logins at once, one links, and the other finds
// ErrNotFound.
func (d *Directory) LinkOIDC(ctx context.Context, id, subject string) error {
	return d.update(ctx, "linking "+id+" to its OIDC identity",
		`UPDATE principals SET oidc_subject = $1 WHERE id = $2 AND kind = 'user' AND oidc_subject IS NULL`, subject, id)
}

// OIDCSubjectOf is how an OIDC identity is kept: the subject is unique
// only within its issuer.
func OIDCSubjectOf(issuer, subject string) string { return issuer + "#" + subject }

// PrincipalByOIDC returns the user an OIDC identity logs in as.
func (d *Directory) PrincipalByOIDC(ctx context.Context, subject string) (Principal, error) {
	p, err := scanPrincipal(d.db.QueryRow(ctx, `SELECT `+principalColumns+` FROM principals WHERE oidc_subject = $1`, subject))
	if errors.Is(err, sql.ErrNoRows) {
		return Principal{}, fmt.Errorf("OIDC identity %q: %w", subject, ErrNotFound)
	}
	if err != nil {
		return Principal{}, fmt.Errorf("access: looking up OIDC identity: %w", err)
	}
	return p, nil
}

// CheckPassword returns the enabled user name whose password this is, or
// ErrBadLogin. It takes as long for an unknown name as for a wrong
// password.
func (d *Directory) CheckPassword(ctx context.Context, name, password string) (Principal, error) {
	var hash string
	p, err := scanPrincipal(d.db.QueryRow(ctx, `SELECT `+principalColumns+` FROM principals WHERE name = $1 AND kind = 'user'`, name))
	if err == nil {
		err = d.db.QueryRow(ctx, `SELECT password FROM principals WHERE id = $1`, p.ID).Scan(&hash)
	}
	switch {
	case errors.Is(err, sql.ErrNoRows) || err == nil && hash == "":
		// No such user, or one without a password (who logs in through
		// OIDC): as slow as a wrong password, so that timing does not
		// tell which names exist.
		checkPassword(dummyHash(), password)
		return Principal{}, ErrBadLogin
	case err != nil:
		return Principal{}, fmt.Errorf("access: checking a password: %w", err)
	}
	if !checkPassword(hash, password) || !p.Disabled.IsZero() {
		return Principal{}, ErrBadLogin
	}
	return p, nil
}

// CreateGroup adds a group.
func (d *Directory) CreateGroup(ctx context.Context, name, description string) error {
	if !principalName.MatchString(name) {
		return fmt.Errorf("group name %q is not valid: use up to 128 letters, digits, '.', '_', '@', '+' or '-'", name)
	}
	return d.update(ctx, "creating group "+name, `INSERT INTO groups (name, description, created) VALUES ($1, $2, $3)`, name, description, nanos(d.now()))
}

// AddMember adds a principal to a group.
func (d *Directory) AddMember(ctx context.Context, group, principalID string) error {
	return d.update(ctx, "adding "+principalID+" to group "+group,
		`INSERT INTO group_members (group_name, principal_id) SELECT $1, $2 WHERE EXISTS (SELECT 1 FROM groups WHERE name = $1) AND EXISTS (SELECT 1 FROM principals WHERE id = $2) AND NOT EXISTS (SELECT 1 FROM group_members WHERE group_name = $1 AND principal_id = $2)`,
		group, principalID)
}

// RemoveMember removes a principal from a group.
func (d *Directory) RemoveMember(ctx context.Context, group, principalID string) error {
	return d.update(ctx, "removing "+principalID+" from group "+group,
		`DELETE FROM group_members WHERE group_name = $1 AND principal_id = $2`, group, principalID)
}

// Groups returns every group with the names of its members.
func (d *Directory) Groups(ctx context.Context) ([]Group, error) {
	gs, err := queryAll(ctx, d.db, "listing groups", func(r interface{ Scan(...any) error }) (Group, error) {
		var g Group
		return g, r.Scan(&g.Name, &g.Description)
	}, `SELECT name, description FROM groups ORDER BY name`)
	if err != nil {
		return nil, err
	}
	type member struct{ group, name string }
	ms, err := queryAll(ctx, d.db, "listing group members", func(r interface{ Scan(...any) error }) (member, error) {
		var m member
		return m, r.Scan(&m.group, &m.name)
	}, `SELECT m.group_name, p.name FROM group_members m JOIN principals p ON p.id = m.principal_id ORDER BY p.name`)
	if err != nil {
		return nil, err
	}
	for i := range gs {
		gs[i].Members = []string{}
		for _, m := range ms {
			if m.group == gs[i].Name {
				gs[i].Members = append(gs[i].Members, m.name)
			}
		}
	}
	return gs, nil
}

// Bind binds a role in a tenant (or AllTenants) to a subject.
func (d *Directory) Bind(ctx context.Context, s Subject, b Binding) error {
	if err := d.checkBinding(ctx, s, b); err != nil {
		return err
	}
	err := d.db.Write(ctx, func(tx *sql.Tx) error {
		if b.Tenant != AllTenants {
			if _, err := tx.ExecContext(ctx, `INSERT INTO tenants (name, created) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`, b.Tenant, nanos(d.now())); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO bindings (subject, tenant, role, created) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`,
			string(s), b.Tenant, string(b.Role), nanos(d.now()))
		return err
	})
	if err != nil {
		return fmt.Errorf("access: binding %s in %s to %s: %w", b.Role, b.Tenant, s, err)
	}
	return nil
}

func (d *Directory) checkBinding(ctx context.Context, s Subject, b Binding) error {
	if _, err := ParseRole(string(b.Role)); err != nil {
		return err
	}
	if b.Tenant != AllTenants {
		if err := CheckTenant(b.Tenant); err != nil {
			return err
		}
	}
	kind, _, _ := strings.Cut(string(s), ":")
	if kind != "principal" && kind != "group" {
		return fmt.Errorf("subject %q is not principal:ID or group:NAME", s)
	}
	return d.exists(ctx, string(s))
}

// exists checks that what ref names ("principal:ID", "group:NAME" or
// "tenant:NAME") is known, failing with ErrNotFound when it is not.
func (d *Directory) exists(ctx context.Context, ref string) error {
	kind, name, _ := strings.Cut(ref, ":")
	stmt, ok := map[string]string{
		"principal": `SELECT count(*) FROM principals WHERE id = $1`,
		"group":     `SELECT count(*) FROM groups WHERE name = $1`,
		"tenant":    `SELECT count(*) FROM tenants WHERE name = $1`,
	}[kind]
	if !ok {
		return fmt.Errorf("%q names no principal, group or tenant", ref)
	}
	var n int
	if err := d.db.QueryRow(ctx, stmt, name).Scan(&n); err != nil {
		return fmt.Errorf("access: looking up %s: %w", ref, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", ref, ErrNotFound)
	}
	return nil
}

// Unbind removes a binding.
func (d *Directory) Unbind(ctx context.Context, s Subject, b Binding) error {
	return d.update(ctx, fmt.Sprintf("unbinding %s in %s from %s", b.Role, b.Tenant, s),
		`DELETE FROM bindings WHERE subject = $1 AND tenant = $2 AND role = $3`, string(s), b.Tenant, string(b.Role))
}

// Bindings returns every binding.
func (d *Directory) Bindings(ctx context.Context) ([]SubjectBinding, error) {
	return queryAll(ctx, d.db, "listing bindings", func(r interface{ Scan(...any) error }) (SubjectBinding, error) {
		var b SubjectBinding
		return b, r.Scan(&b.Subject, &b.Tenant, &b.Role)
	}, `SELECT subject, tenant, role FROM bindings ORDER BY subject, tenant, role`)
}

// Resolve returns the identity of an enabled principal: its roles and its
// groups' roles, the break-glass elevation it holds, and the grants to it,
// its groups and the tenants it reads.
func (d *Directory) Resolve(ctx context.Context, principalID string) (Identity, error) {
	p, err := d.Principal(ctx, principalID)
	if err != nil {
		return Identity{}, err
	}
	if p.ID != principalID {
		return Identity{}, fmt.Errorf("principal %q: %w", principalID, ErrNotFound)
	}
	if !p.Disabled.IsZero() {
		return Identity{}, fmt.Errorf("principal %s is disabled", p.Name)
	}
	id := Identity{Principal: p.ID, Name: p.Name}
	id.Groups, err = queryAll(ctx, d.db, "reading groups", func(r interface{ Scan(...any) error }) (string, error) {
		var g string
		return g, r.Scan(&g)
	}, `SELECT group_name FROM group_members WHERE principal_id = $1 ORDER BY group_name`, p.ID)
	if err != nil {
		return Identity{}, err
	}
	subjects := []any{string(PrincipalSubject(p.ID))}
	for _, g := range id.Groups {
		subjects = append(subjects, string(GroupSubject(g)))
	}
	id.Bindings, err = queryAll(ctx, d.db, "reading bindings", func(r interface{ Scan(...any) error }) (Binding, error) {
		var b Binding
		return b, r.Scan(&b.Tenant, &b.Role)
	}, `SELECT DISTINCT tenant, role FROM bindings WHERE subject IN (`+placeholders(len(subjects))+`) ORDER BY tenant, role`, subjects...)
	if err != nil {
		return Identity{}, err
	}
	if e, ok, err := d.activeElevation(ctx, p.ID); err != nil {
		return Identity{}, err
	} else if ok {
		id.Elevated = e.ID
		id.Bindings = append(id.Bindings, Binding{Role: e.Role, Tenant: AllTenants})
	}
	grantees := []string{"principal:" + p.ID}
	for _, g := range id.Groups {
		grantees = append(grantees, "group:"+g)
	}
	if err := d.addShares(ctx, &id, grantees); err != nil {
		return Identity{}, err
	}
	return id, nil
}

// addShares adds to id the grants in force to the grantees and to the
// tenants where id reads events.
func (d *Directory) addShares(ctx context.Context, id *Identity, grantees []string) error {
	for _, b := range id.Bindings {
		if b.Role.Allows(Read) && b.Tenant != AllTenants && !slices.Contains(grantees, "tenant:"+b.Tenant) {
			grantees = append(grantees, "tenant:"+b.Tenant)
		}
	}
	if len(grantees) == 0 {
		return nil
	}
	gs, err := d.grantsTo(ctx, grantees)
	if err != nil {
		return err
	}
	for _, g := range gs {
		sh, err := g.Share()
		if err != nil {
			// Checked when the grant was made; a grant that no longer
			// parses (the language changed) shares nothing.
			d.log.Warn("a grant does not parse; it shares nothing", "grant", g.ID, "err", err)
			continue
		}
		id.Shares = append(id.Shares, sh)
	}
	return nil
}

func (d *Directory) update(ctx context.Context, what, stmt string, args ...any) error {
	err := d.db.Write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, stmt, args...)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err == nil && n == 0 && !strings.HasPrefix(stmt, "DELETE") {
			return ErrNotFound
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("access: %s: %w", what, err)
	}
	return nil
}

func placeholders(n int) string {
	ps := make([]string, n)
	for i := range ps {
		ps[i] = fmt.Sprintf("$%d", i+1)
	}
	return strings.Join(ps, ", ")
}

// queryAll runs a query and scans every row with scan.
func queryAll[T any](ctx context.Context, db *meta.DB, what string, scan func(interface{ Scan(...any) error }) (T, error), q string, args ...any) ([]T, error) {
	rows, err := db.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("access: %s: %w", what, err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("access: %s: %w", what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("access: %s: %w", what, err)
	}
	return out, nil
}

// TokenIdentity returns the identity a token acts as: its principal's,
// or its own role in its tenant (every tenant for an admin token without
// one) with the grants to that tenant.
func (d *Directory) TokenIdentity(ctx context.Context, tok Token) (Identity, error) {
	if tok.Principal != "" {
		id, err := d.Resolve(ctx, tok.Principal)
		if err != nil {
			return Identity{}, fmt.Errorf("token %s: %w", tok.ID, err)
		}
		id.Credential = "token " + tok.ID
		return id, nil
	}
	id := tok.Identity()
	if err := d.addShares(ctx, &id, nil); err != nil {
		return Identity{}, err
	}
	return id, nil
}
