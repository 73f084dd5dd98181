package access

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Console sessions last at most SessionLifetime from login, and end after
// SessionIdle without a request.
const (
	SessionLifetime = 12 * time.Hour
	SessionIdle     = 2 * time.Hour
)

// ErrNoSession is a session cookie that names no session in force.
var ErrNoSession = errors.New("no session")

// A Session is a logged-in console user.
type Session struct {
	// ID names the session in records: a prefix of its hash, which
	// cannot be turned back into the cookie.
	ID        string
	Principal string
	Method    string // how they logged in: password, oidc
	Created   time.Time
	Expires   time.Time
	// CSRF is the token every state-changing request of the session
	// must carry in the X-CSRF-Token header; it is derived from the
	// session's secret, so it is not stored, and a page of another
	// origin, which cannot read the HttpOnly cookie, cannot make it.
	CSRF string
}

// StartSession starts a session for the principal and returns the
// secret its cookie carries.
func (d *Directory) StartSession(ctx context.Context, principalID, method string) (secret string, s Session, err error) {
	secret, hash := newSecret()
	now := d.now()
	s = Session{ID: hash[:12], Principal: principalID, Method: method, Created: fromNanos(nanos(now)), Expires: fromNanos(nanos(now.Add(SessionLifetime))), CSRF: csrfOf(secret)}
	err = d.update(ctx, "starting a session",
		`INSERT INTO sessions (hash, principal_id, created, expires, last_seen, method) VALUES ($1, $2, $3, $4, $3, $5)`,
		hash, principalID, nanos(s.Created), nanos(s.Expires), method)
	if err != nil {
		return "", Session{}, err
	}
	return secret, s, nil
}

// Session returns the session in force whose cookie carries secret, and
// records that it was seen (at most once a minute).
func (d *Directory) Session(ctx context.Context, secret string) (Session, error) {
	if !strings.HasPrefix(secret, secretPrefix) {
		return Session{}, ErrNoSession
	}
	var (
		s                          Session
		created, expires, lastSeen int64
	)
	hash := hashSecret(secret)
	err := d.db.QueryRow(ctx, `SELECT principal_id, method, created, expires, last_seen FROM sessions WHERE hash = $1`, hash).
		Scan(&s.Principal, &s.Method, &created, &expires, &lastSeen)
	if errors.Is(err, sql.ErrNoRows) {
		return Session{}, ErrNoSession
	}
	if err != nil {
		return Session{}, fmt.Errorf("access: reading a session: %w", err)
	}
	now := d.now()
	s.Created, s.Expires = time.Unix(0, created).UTC(), time.Unix(0, expires).UTC()
	seen := time.Unix(0, lastSeen)
	if !now.Before(s.Expires) || now.Sub(seen) >= SessionIdle {
		return Session{}, ErrNoSession
	}
	if now.Sub(seen) >= lastUsedEvery {
		d.db.Write(ctx, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `UPDATE sessions SET last_seen = $1 WHERE hash = $2`, nanos(now), hash)
			return err
		})
	}
	s.ID, s.CSRF = hash[:12], csrfOf(secret)
	return s, nil
}

// EndSession ends the session whose cookie carries secret (logout), and
// forgets sessions that have expired.
func (d *Directory) EndSession(ctx context.Context, secret string) error {
	return d.db.Write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE hash = $1`, hashSecret(secret)); err != nil {
			return fmt.Errorf("access: ending a session: %w", err)
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE expires <= $1`, nanos(d.now()))
		return err
	})
}

func csrfOf(secret string) string {
	h := sha256.Sum256([]byte("vigil csrf\x00" + secret))
	return hex.EncodeToString(h[:16])
}
