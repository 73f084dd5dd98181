package access

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/vigilsec/vigil/query"
)

// MaxGrant is the longest a grant may run: sharing is for an
// investigation or an engagement, and is renewed on purpose, not
// forgotten.
const MaxGrant = 366 * 24 * time.Hour

// A Grant shares part of a tenant's events with a grantee: the events
// its filter selects, in a window of event time, without some fields,
// until it expires or is revoked.
type Grant struct {
	ID    string `json:"id"`
	Owner string `json:"owner"` // the tenant whose events are shared
	// Grantee is "tenant:NAME", "group:NAME" or "principal:ID".
	Grantee string `json:"grantee"`
	// Filter is a query filter (no commands) selecting the events
	// shared; "" shares them all.
	Filter    string    `json:"filter"`
	From      time.Time `json:"from,omitzero"`
	To        time.Time `json:"to,omitzero"`
	Redact    []string  `json:"redact"`
	Reason    string    `json:"reason"`
	Created   time.Time `json:"created"`
	CreatedBy string    `json:"created_by"`
	Expires   time.Time `json:"expires"`
	Revoked   time.Time `json:"revoked,omitzero"`
	RevokedBy string    `json:"revoked_by,omitempty"`
}

// Active reports whether g shares anything at now.
func (g *Grant) Active(now time.Time) bool {
	return g.Revoked.IsZero() && now.Before(g.Expires)
}

// Share returns the grant as the query compiler applies it.
func (g *Grant) Share() (query.Share, error) {
	sh := query.Share{Grant: g.ID, Tenant: g.Owner, From: g.From, To: g.To, Redact: g.Redact}
	if strings.TrimSpace(g.Filter) != "" {
		q, err := query.Parse(g.Filter)
		if err != nil {
			return query.Share{}, fmt.Errorf("filter: %w", err)
		}
		sh.Filter = q
	}
	if err := query.CheckShare(sh); err != nil {
		return query.Share{}, err
	}
	return sh, nil
}

// CreateGrant records a grant made by createdBy and returns it with its
// id. The owner must be a tenant's name (tenants are known by their
// events, which the metadata database does not list) and the grantee
// must exist; the filter must parse; the grant must expire, within
// MaxGrant.
func (d *Directory) CreateGrant(ctx context.Context, g Grant) (Grant, error) {
	now := d.now()
	if err := CheckTenant(g.Owner); err != nil {
		return Grant{}, err
	}
	if err := d.checkGrantee(ctx, g.Grantee, g.Owner); err != nil {
		return Grant{}, err
	}
	switch {
	case g.Expires.IsZero():
		return Grant{}, errors.New("a grant needs an expiry")
	case !g.Expires.After(now):
		return Grant{}, fmt.Errorf("the expiry %s is not in the future", g.Expires.UTC().Format(time.RFC3339))
	case g.Expires.Sub(now) > MaxGrant:
		return Grant{}, fmt.Errorf("a grant may run at most %d days", MaxGrant/(24*time.Hour))
	case !g.From.IsZero() && !g.To.IsZero() && !g.From.Before(g.To):
		return Grant{}, errors.New("the grant's time range is empty: from must be before to")
	case strings.TrimSpace(g.Reason) == "":
		return Grant{}, errors.New("a grant needs a reason, which its grantee and auditors see")
	}
	if g.Redact == nil {
		g.Redact = []string{}
	}
	if _, err := g.Share(); err != nil {
		return Grant{}, fmt.Errorf("grant: %w", err)
	}
	g.ID, g.Created, g.Revoked, g.RevokedBy = "g-"+newID(), fromNanos(nanos(now)), time.Time{}, ""
	g.From, g.To, g.Expires = fromNanos(nanos(g.From)), fromNanos(nanos(g.To)), fromNanos(nanos(g.Expires))
	redact, _ := json.Marshal(g.Redact)
	err := d.update(ctx, "creating a grant",
		`INSERT INTO grants (id, owner, grantee, filter, time_from, time_to, redact, reason, created, created_by, expires, revoked_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, '')`,
		g.ID, g.Owner, g.Grantee, g.Filter, nanos(g.From), nanos(g.To), string(redact), g.Reason, nanos(g.Created), g.CreatedBy, nanos(g.Expires))
	if err != nil {
		return Grant{}, err
	}
	d.log.Info("created a grant", "id", g.ID, "owner", g.Owner, "grantee", g.Grantee, "by", g.CreatedBy)
	return g, nil
}

func (d *Directory) checkGrantee(ctx context.Context, grantee, owner string) error {
	kind, ref, _ := strings.Cut(grantee, ":")
	switch kind {
	case "tenant":
		if ref == owner {
			return errors.New("a tenant reads its own events; grant them to another")
		}
		if err := CheckTenant(ref); err != nil {
			return err
		}
	case "group", "principal":
	default:
		return fmt.Errorf("grantee %q is not tenant:NAME, group:NAME or principal:ID", grantee)
	}
	return d.exists(ctx, grantee)
}

// RevokeGrant ends a grant now; by names who revoked it. Revoking a
// revoked grant keeps the first revocation.
func (d *Directory) RevokeGrant(ctx context.Context, id, by string) error {
	err := d.update(ctx, "revoking grant "+id, `UPDATE grants SET revoked = $1, revoked_by = $2 WHERE id = $3 AND revoked IS NULL`, nanos(d.now()), by, id)
	if errors.Is(err, ErrNotFound) {
		if _, gerr := d.Grant(ctx, id); gerr == nil {
			return nil // already revoked
		}
	}
	return err
}

const grantColumns = `id, owner, grantee, filter, time_from, time_to, redact, reason, created, created_by, expires, revoked, revoked_by`

func scanGrant(r interface{ Scan(...any) error }) (Grant, error) {
	var (
		g                          Grant
		from, to, expires, revoked sql.NullInt64
		created                    int64
		redact                     string
	)
	if err := r.Scan(&g.ID, &g.Owner, &g.Grantee, &g.Filter, &from, &to, &redact, &g.Reason, &created, &g.CreatedBy, &expires, &revoked, &g.RevokedBy); err != nil {
		return Grant{}, err
	}
	if err := json.Unmarshal([]byte(redact), &g.Redact); err != nil {
		return Grant{}, fmt.Errorf("grant %s: reading its redacted fields: %w", g.ID, err)
	}
	g.From, g.To, g.Expires, g.Revoked = fromNanos(from), fromNanos(to), fromNanos(expires), fromNanos(revoked)
	g.Created = time.Unix(0, created).UTC()
	return g, nil
}

// Grant returns the grant with the id.
func (d *Directory) Grant(ctx context.Context, id string) (Grant, error) {
	g, err := scanGrant(d.db.QueryRow(ctx, `SELECT `+grantColumns+` FROM grants WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Grant{}, fmt.Errorf("grant %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Grant{}, fmt.Errorf("access: reading grant %s: %w", id, err)
	}
	return g, nil
}

// Grants returns the grants of the owners' events (every grant for
// nil owners), revoked and expired ones included, newest first.
func (d *Directory) Grants(ctx context.Context, owners []string) ([]Grant, error) {
	q := `SELECT ` + grantColumns + ` FROM grants`
	args := make([]any, len(owners))
	for i, o := range owners {
		args[i] = o
	}
	if owners != nil {
		if len(owners) == 0 {
			return nil, nil
		}
		q += ` WHERE owner IN (` + placeholders(len(owners)) + `)`
	}
	return queryAll(ctx, d.db, "listing grants", scanGrant, q+` ORDER BY created DESC, id`, args...)
}

// grantsTo returns the grants in force to any of the grantees.
func (d *Directory) grantsTo(ctx context.Context, grantees []string) ([]Grant, error) {
	args := make([]any, 0, len(grantees)+1)
	for _, g := range grantees {
		args = append(args, g)
	}
	args = append(args, nanos(d.now()))
	return queryAll(ctx, d.db, "reading grants", scanGrant,
		`SELECT `+grantColumns+` FROM grants WHERE grantee IN (`+placeholders(len(grantees))+`) AND revoked IS NULL AND expires > $`+fmt.Sprint(len(grantees)+1)+` ORDER BY id`, args...)
}
