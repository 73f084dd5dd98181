package access

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode"

	"github.com/vigilsec/vigil/meta"
)

// secretPrefix begins every token secret, so that a secret pasted where
// it should not be (a repository, a ticket, a log) is recognizable to the
// people and scanners looking for leaked credentials.
const secretPrefix = "vgl_"

// lastUsedEvery is how stale a token's last use may grow before
// authenticating with it records the new one: often enough to tell which
// tokens are in use, rarely enough that authenticating does not write to
// the database on every request.
const lastUsedEvery = time.Minute

// Errors of Authenticate. Callers answer all three alike (HTTP 401), so
// that a caller cannot learn which tokens exist, and log which it was.
var (
	ErrUnknownToken = errors.New("unknown token")
	ErrRevokedToken = errors.New("token revoked")
	ErrExpiredToken = errors.New("token expired")
)

// A Token is an API token as stored: everything about it but its secret,
// which only Create's caller ever sees.
type Token struct {
	ID   string
	Name string
	// Tenant is the tenant the token acts within; "" only for an admin
	// token over every tenant.
	Tenant string
	Role   Role
	// Principal is the user or service account the token acts as, with
	// its roles, when it has no role of its own.
	Principal string
	// The times are UTC; a zero Expires never comes, a zero LastUsed or
	// Revoked has not happened. LastUsed is recorded at most once a
	// minute, so it may be that much behind.
	Created, Expires, LastUsed, Revoked time.Time
}

// A Spec describes a token to create.
type Spec struct {
	// Name says what the token is for ("cloudtrail-forwarder"); it
	// defaults to the tenant and role.
	Name   string
	Tenant string
	Role   Role
	// Principal makes a token that acts as a user or service account
	// (its id), with the principal's roles; Tenant and Role are then
	// empty.
	Principal string
	// Expires is when the token stops working; zero means never.
	Expires time.Time
}

// Options configure Tokens.
type Options struct {
	// Now is the clock for creation, expiry and last use; nil means
	// time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// Tokens are the API tokens, kept in the metadata database. Its methods
// are safe for concurrent use, and other processes may use the same
// database at the same time.
type Tokens struct {
	db  *meta.DB
	now func() time.Time
	log *slog.Logger
}

// Identity returns the identity of a token with a role of its own: that
// role in its tenant, or in every tenant for an admin token without one.
// The grants to its tenant are the Directory's to add (TokenIdentity);
// a principal's token is resolved there too.
func (t Token) Identity() Identity {
	tenant := t.Tenant
	if tenant == "" {
		tenant = AllTenants
	}
	id := Identity{Name: t.Name, Credential: "token " + t.ID, Bindings: []Binding{{Role: t.Role, Tenant: tenant}}}
	if id.Name == "" {
		id.Name = "token " + t.ID
	}
	return id
}

// NewTokens returns the tokens kept in db.
func NewTokens(db *meta.DB, opts Options) *Tokens {
	opts = opts.withDefaults()
	return &Tokens{db: db, now: opts.Now, log: opts.Logger}
}

func (o Options) withDefaults() Options {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Create creates a token and returns its secret, which is not kept and
// cannot be had again. The token's tenant is created with it if it does
// not exist.
func (t *Tokens) Create(ctx context.Context, spec Spec) (secret string, tok Token, err error) {
	now := t.now()
	if err := spec.check(now); err != nil {
		return "", Token{}, err
	}
	if spec.Name == "" {
		spec.Name = strings.TrimPrefix(spec.Tenant+"-"+string(spec.Role), "-")
		if spec.Principal != "" {
			spec.Name = "principal " + spec.Principal
		}
	}
	secret, hash := newSecret()
	tok = Token{
		ID:        newID(),
		Name:      spec.Name,
		Tenant:    spec.Tenant,
		Role:      spec.Role,
		Principal: spec.Principal,
		Created:   fromNanos(nanos(now)),
		Expires:   fromNanos(nanos(spec.Expires)),
	}
	err = t.db.Write(ctx, func(tx *sql.Tx) error {
		if tok.Tenant != "" {
			if _, err := tx.ExecContext(ctx, `INSERT INTO tenants (name, created) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`,
				tok.Tenant, nanos(now)); err != nil {
				return err
			}
		}
		if tok.Principal != "" {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM principals WHERE id = $1`, tok.Principal).Scan(&n); err != nil {
				return err
			}
			if n == 0 {
				return fmt.Errorf("principal %s: %w", tok.Principal, ErrNotFound)
			}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO tokens (id, name, tenant, role, hash, created, expires, principal_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			tok.ID, tok.Name, nullString(tok.Tenant), string(tok.Role), hash, nanos(tok.Created), nanos(tok.Expires), nullString(tok.Principal))
		return err
	})
	if err != nil {
		return "", Token{}, fmt.Errorf("access: creating token %q: %w", spec.Name, err)
	}
	t.log.Info("created a token", "id", tok.ID, "name", tok.Name, "tenant", tok.Tenant, "role", tok.Role)
	return secret, tok, nil
}

func (s *Spec) check(now time.Time) error {
	if s.Principal != "" {
		if s.Role != "" || s.Tenant != "" {
			return errors.New("a token that acts as a principal has the principal's roles, not a role or tenant of its own")
		}
	} else if _, err := ParseRole(string(s.Role)); err != nil {
		return err
	}
	switch {
	case s.Principal != "":
	case s.Tenant != "":
		if err := CheckTenant(s.Tenant); err != nil {
			return err
		}
	case s.Role != Admin:
		// Only an admin may act across tenants; any other token without a
		// tenant would have nowhere to act, or everywhere.
		return fmt.Errorf("a token of role %s needs a tenant; only an admin token may have none", s.Role)
	}
	if len(s.Name) > 100 || strings.IndexFunc(s.Name, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return fmt.Errorf("token name %q is not valid: use at most 100 printable characters", s.Name)
	}
	if !s.Expires.IsZero() && !s.Expires.After(now) {
		return fmt.Errorf("token expiry %s is not in the future", s.Expires.UTC().Format(time.RFC3339))
	}
	return nil
}

// newSecret returns a new secret and the hash it is stored and looked up
// by.
func newSecret() (secret, hash string) {
	b := make([]byte, 32)
	rand.Read(b) // never fails: it crashes the program instead
	secret = secretPrefix + base64.RawURLEncoding.EncodeToString(b)
	return secret, hashSecret(secret)
}

// hashSecret returns the hash a secret is stored and looked up by.
// Passwords need a slow KDF because people choose them and they can be
// guessed; a secret has 256 random bits, so there is no dictionary to try
// and no brute force for a KDF to slow down, and one SHA-256 keeps
// authentication cheap on every request.
func hashSecret(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// newID returns a token id: random, so that it says nothing about the
// secret or how many tokens there are, and short enough to type.
func newID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

const tokenColumns = `id, name, tenant, role, created, expires, last_used, revoked, principal_id`

func scanToken(row interface{ Scan(...any) error }) (Token, error) {
	var (
		tok                        Token
		tenant, principal          sql.NullString
		created                    int64
		expires, lastUsed, revoked sql.NullInt64
	)
	if err := row.Scan(&tok.ID, &tok.Name, &tenant, &tok.Role, &created, &expires, &lastUsed, &revoked, &principal); err != nil {
		return Token{}, err
	}
	tok.Tenant, tok.Principal = tenant.String, principal.String
	tok.Created = time.Unix(0, created).UTC()
	tok.Expires = fromNanos(expires)
	tok.LastUsed = fromNanos(lastUsed)
	tok.Revoked = fromNanos(revoked)
	return tok, nil
}

// Authenticate returns the token whose secret this is. It fails with
// ErrUnknownToken, ErrRevokedToken or ErrExpiredToken, wrapped in an
// error naming the token when there is one.
//
// Each call reads the database rather than a cache, so that a revocation
// takes effect at the next request, in every process; the read is one
// indexed row.
func (t *Tokens) Authenticate(ctx context.Context, secret string) (Token, error) {
	if !strings.HasPrefix(secret, secretPrefix) {
		return Token{}, ErrUnknownToken
	}
	// Looking the hash up is not constant-time, and need not be: what
	// timing could reveal is how much of a stored hash the hash of a
	// guess shares, which leads no nearer to a secret.
	tok, err := scanToken(t.db.QueryRow(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE hash = $1`, hashSecret(secret)))
	if errors.Is(err, sql.ErrNoRows) {
		return Token{}, ErrUnknownToken
	}
	if err != nil {
		return Token{}, fmt.Errorf("access: looking up a token: %w", err)
	}
	now := t.now()
	switch {
	case !tok.Revoked.IsZero():
		return Token{}, fmt.Errorf("token %s (%s), revoked at %s: %w", tok.ID, tok.Name, tok.Revoked.Format(time.RFC3339), ErrRevokedToken)
	case !tok.Expires.IsZero() && !now.Before(tok.Expires):
		return Token{}, fmt.Errorf("token %s (%s), expired at %s: %w", tok.ID, tok.Name, tok.Expires.Format(time.RFC3339), ErrExpiredToken)
	}
	if tok.LastUsed.IsZero() || now.Sub(tok.LastUsed) >= lastUsedEvery {
		t.touch(ctx, tok.ID, now)
		tok.LastUsed = fromNanos(nanos(now))
	}
	return tok, nil
}

// touch records that the token was used at now. The condition keeps
// processes that authenticate the same token at once from all writing
// it. A failure is logged, not returned: the last use is bookkeeping, and
// refusing a valid token over it would turn a busy database into an
// outage.
func (t *Tokens) touch(ctx context.Context, id string, now time.Time) {
	err := t.db.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE tokens SET last_used = $1 WHERE id = $2 AND (last_used IS NULL OR last_used <= $3)`,
			nanos(now), id, nanos(now.Add(-lastUsedEvery)))
		return err
	})
	if err != nil {
		t.log.Warn("recording a token's last use", "id", id, "err", err)
	}
}

// List returns every token, revoked and expired ones included, oldest
// first.
func (t *Tokens) List(ctx context.Context) ([]Token, error) {
	rows, err := t.db.Query(ctx, `SELECT `+tokenColumns+` FROM tokens ORDER BY created, id`)
	if err != nil {
		return nil, fmt.Errorf("access: listing tokens: %w", err)
	}
	defer rows.Close()
	var toks []Token
	for rows.Next() {
		tok, err := scanToken(rows)
		if err != nil {
			return nil, fmt.Errorf("access: listing tokens: %w", err)
		}
		toks = append(toks, tok)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("access: listing tokens: %w", err)
	}
	return toks, nil
}

// Revoke revokes the token with the given id for good. Revoking a revoked
// token keeps the time it was first revoked.
func (t *Tokens) Revoke(ctx context.Context, id string) error {
	err := t.db.Write(ctx, func(tx *sql.Tx) error {
		var revoked sql.NullInt64
		err := tx.QueryRowContext(ctx, `SELECT revoked FROM tokens WHERE id = $1`, id).Scan(&revoked)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrUnknownToken
		}
		if err != nil || revoked.Valid {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE tokens SET revoked = $1 WHERE id = $2`, nanos(t.now()), id)
		return err
	})
	if err != nil {
		return fmt.Errorf("access: revoking token %s: %w", id, err)
	}
	t.log.Info("revoked a token", "id", id)
	return nil
}

// nanos is how the database keeps a time (see meta's first migration):
// nanoseconds since the epoch, NULL for the zero time.
func nanos(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixNano(), Valid: true}
}

func fromNanos(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.Unix(0, n.Int64).UTC()
}

func nullString(s string) sql.NullString {
	return sql.NullString{String: s, Valid: s != ""}
}
