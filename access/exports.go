package access

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/vigilsec/vigil/query"
)

// MaxExportLink is the longest an export's link opens its bundle: long
// enough to hand it to counsel or a partner, short enough that a link
// forwarded too far stops working by itself.
const MaxExportLink = 7 * 24 * time.Hour

// An Export is an evidence bundle taken out through the API: who took
// which events, why, and until when its signed link opens it.
type Export struct {
	ID string `json:"id"`
	// Tenants are those whose events the bundle may hold, AllTenants for
	// every tenant.
	Tenants   []string  `json:"tenants"`
	Query     string    `json:"query"`
	From      time.Time `json:"from,omitzero"`
	To        time.Time `json:"to,omitzero"`
	Reason    string    `json:"reason"`
	Events    int       `json:"events"`
	SHA256    string    `json:"sha256"`
	Created   time.Time `json:"created"`
	CreatedBy string    `json:"created_by"`
	// Creator is the principal id, or the credential, that made it: it
	// always sees its exports, even of a share it no longer holds.
	Creator   string    `json:"-"`
	Expires   time.Time `json:"expires"`
	Revoked   time.Time `json:"revoked,omitzero"`
	RevokedBy string    `json:"revoked_by,omitempty"`
}

// Active reports whether e's link opens its bundle at now.
func (e *Export) Active(now time.Time) bool {
	return e.Revoked.IsZero() && now.Before(e.Expires)
}

// VisibleTo reports whether an identity with scope (its read scope)
// sees e: its creator does, and so does whoever reads every tenant
// whose events it may hold.
func (e *Export) VisibleTo(creator string, scope query.Scope) bool {
	if creator != "" && creator == e.Creator {
		return true
	}
	for _, t := range e.Tenants {
		if t == AllTenants && !scope.All || t != AllTenants && !scope.Includes(t) {
			return false
		}
	}
	return len(e.Tenants) > 0
}

// ExportTenants names the tenants a bundle read with scope may hold, as
// an Export records them.
func ExportTenants(scope query.Scope) []string {
	var out []string
	if scope.All {
		out = append(out, AllTenants)
	}
	out = append(out, scope.Tenants...)
	for _, sh := range scope.Shares {
		if !slices.Contains(out, sh.Tenant) {
			out = append(out, sh.Tenant)
		}
	}
	return out
}

// NewExportID returns the id of a new export, which names its bundle's
// file too.
func NewExportID() string { return "x-" + newID() + newID() }

// RecordExport records an export whose bundle is written. Its link must
// expire, within MaxExportLink, and it needs a reason: it is shown in
// the chain of custody and to auditors.
func (d *Directory) RecordExport(ctx context.Context, e Export) (Export, error) {
	now := d.now()
	switch {
	case e.ID == "":
		return Export{}, errors.New("an export needs an id")
	case !e.Expires.After(now):
		return Export{}, fmt.Errorf("the link's expiry %s is not in the future", e.Expires.UTC().Format(time.RFC3339))
	case e.Expires.Sub(now) > MaxExportLink:
		return Export{}, fmt.Errorf("an export's link may open it for at most %d days", MaxExportLink/(24*time.Hour))
	case len(e.Tenants) == 0:
		return Export{}, errors.New("an export names the tenants it reads")
	}
	e.Created, e.Expires = fromNanos(nanos(now)), fromNanos(nanos(e.Expires))
	e.From, e.To = fromNanos(nanos(e.From)), fromNanos(nanos(e.To))
	e.Revoked, e.RevokedBy = time.Time{}, ""
	tenants, _ := json.Marshal(e.Tenants)
	err := d.update(ctx, "recording export "+e.ID,
		`INSERT INTO exports (id, tenants, query, time_from, time_to, reason, events, sha256, created, created_by, creator, expires, revoked_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, '')`,
		e.ID, string(tenants), e.Query, nanos(e.From), nanos(e.To), e.Reason, e.Events, e.SHA256, nanos(e.Created), e.CreatedBy, e.Creator, nanos(e.Expires))
	if err != nil {
		return Export{}, err
	}
	d.log.Info("recorded an export", "id", e.ID, "events", e.Events, "by", e.CreatedBy)
	return e, nil
}

const exportColumns = `id, tenants, query, time_from, time_to, reason, events, sha256, created, created_by, creator, expires, revoked, revoked_by`

func scanExport(r interface{ Scan(...any) error }) (Export, error) {
	var (
		e                          Export
		from, to, expires, revoked sql.NullInt64
		created                    int64
		tenants                    string
	)
	if err := r.Scan(&e.ID, &tenants, &e.Query, &from, &to, &e.Reason, &e.Events, &e.SHA256, &created, &e.CreatedBy, &e.Creator, &expires, &revoked, &e.RevokedBy); err != nil {
		return Export{}, err
	}
	if err := json.Unmarshal([]byte(tenants), &e.Tenants); err != nil {
		return Export{}, fmt.Errorf("export %s: reading its tenants: %w", e.ID, err)
	}
	e.From, e.To, e.Expires, e.Revoked = fromNanos(from), fromNanos(to), fromNanos(expires), fromNanos(revoked)
	e.Created = time.Unix(0, created).UTC()
	return e, nil
}

// Export returns the export with the id.
func (d *Directory) Export(ctx context.Context, id string) (Export, error) {
	e, err := scanExport(d.db.QueryRow(ctx, `SELECT `+exportColumns+` FROM exports WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Export{}, fmt.Errorf("export %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Export{}, fmt.Errorf("access: reading export %s: %w", id, err)
	}
	return e, nil
}

// Exports returns the exports visible to creator with scope (see
// Export.VisibleTo), revoked and expired ones included, newest first.
func (d *Directory) Exports(ctx context.Context, creator string, scope query.Scope) ([]Export, error) {
	all, err := queryAll(ctx, d.db, "listing exports", scanExport, `SELECT `+exportColumns+` FROM exports ORDER BY created DESC, id`)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(all, func(e Export) bool { return !e.VisibleTo(creator, scope) }), nil
}

// RevokeExport closes an export's link now; by names who did.
func (d *Directory) RevokeExport(ctx context.Context, id, by string) error {
	err := d.update(ctx, "revoking export "+id, `UPDATE exports SET revoked = $1, revoked_by = $2 WHERE id = $3 AND revoked IS NULL`, nanos(d.now()), by, id)
	if errors.Is(err, ErrNotFound) {
		if _, gerr := d.Export(ctx, id); gerr == nil {
			return nil // already revoked
		}
	}
	return err
}

// Errors a link is refused with. They say which check failed, for the
// audit trail; the answer to the holder of the link says less.
var (
	ErrBadSignature = errors.New("the link's signature is wrong")
	ErrLinkExpired  = errors.New("the link has expired")
	ErrLinkRevoked  = errors.New("the export was revoked")
)

// SignExport returns the signature of a link that opens export id until
// expires. Whoever holds the link opens the bundle, with no other
// credential: that is what a link is for, so it expires, and the export
// can be revoked.
func (d *Directory) SignExport(ctx context.Context, id string, expires time.Time) (string, error) {
	key, err := d.linkKey(ctx)
	if err != nil {
		return "", err
	}
	return linkSignature(key, id, expires.Unix()), nil
}

// OpenExport checks a link to export id, expiring at the Unix second
// expires and signed with sig, and returns the export it opens.
func (d *Directory) OpenExport(ctx context.Context, id, expires, sig string) (Export, error) {
	key, err := d.linkKey(ctx)
	if err != nil {
		return Export{}, err
	}
	exp, err := strconv.ParseInt(expires, 10, 64)
	if err != nil || !hmac.Equal([]byte(sig), []byte(linkSignature(key, id, exp))) {
		return Export{}, ErrBadSignature
	}
	now := d.now()
	if !now.Before(time.Unix(exp, 0)) {
		return Export{}, ErrLinkExpired
	}
	e, err := d.Export(ctx, id)
	if err != nil {
		return Export{}, err
	}
	if !e.Revoked.IsZero() {
		return Export{}, ErrLinkRevoked
	}
	if !now.Before(e.Expires) {
		return Export{}, ErrLinkExpired
	}
	return e, nil
}

// linkSignature is the HMAC-SHA256 of a link's export and expiry under
// key, with a label so that the key signs nothing else by mistake.
func linkSignature(key []byte, id string, expires int64) string {
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "vigil export link\x00%s\x00%d", id, expires)
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// linkKey returns the key that signs links, made by whichever node
// needs it first and kept in the database that all nodes share.
func (d *Directory) linkKey(ctx context.Context) ([]byte, error) {
	if k := d.links.Load(); k != nil {
		return *k, nil
	}
	fresh := make([]byte, 32)
	rand.Read(fresh)
	err := d.db.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO link_keys (name, secret, created) VALUES ('export', $1, $2) ON CONFLICT (name) DO NOTHING`,
			base64.RawStdEncoding.EncodeToString(fresh), nanos(d.now()))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("access: making the link key: %w", err)
	}
	var s string
	if err := d.db.QueryRow(ctx, `SELECT secret FROM link_keys WHERE name = 'export'`).Scan(&s); err != nil {
		return nil, fmt.Errorf("access: reading the link key: %w", err)
	}
	key, err := base64.RawStdEncoding.DecodeString(s)
	if err != nil || len(key) < 32 {
		return nil, errors.New("access: the link key in the database is damaged")
	}
	d.links.Store(&key)
	return key, nil
}
