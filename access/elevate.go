package access

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// MaxElevation is the longest a break-glass elevation lasts.
const MaxElevation = 4 * time.Hour

// An Elevation is break-glass access: a member of the CSIRT holding a
// role in every tenant for a while, for a reason everyone is told.
type Elevation struct {
	ID        string    `json:"id"`
	Principal string    `json:"principal"`
	Role      Role      `json:"role"`
	Reason    string    `json:"reason"`
	Started   time.Time `json:"started"`
	Expires   time.Time `json:"expires"`
	Ended     time.Time `json:"ended,omitzero"`
}

// Elevate gives the principal role in every tenant for dur (at most
// MaxElevation). Only a principal already bound in every tenant (a
// member of the CSIRT, with a lesser role there) may break glass; the
// reason must say why, in at least 10 characters.
func (d *Directory) Elevate(ctx context.Context, principalID string, role Role, reason string, dur time.Duration) (Elevation, error) {
	if _, err := ParseRole(string(role)); err != nil {
		return Elevation{}, err
	}
	reason = strings.TrimSpace(reason)
	switch {
	case utf8.RuneCountInString(reason) < 10:
		return Elevation{}, errors.New("break-glass access needs a reason of at least 10 characters, which is sent to everyone notified")
	case dur <= 0 || dur > MaxElevation:
		return Elevation{}, fmt.Errorf("break-glass access lasts more than 0 and at most %s", MaxElevation)
	}
	id, err := d.Resolve(ctx, principalID)
	if err != nil {
		return Elevation{}, err
	}
	p, err := d.Principal(ctx, principalID)
	if err != nil {
		return Elevation{}, err
	}
	csirt := false
	for _, b := range id.Bindings {
		// An ingest or auditor role in every tenant is a workload's or
		// an auditor's, not the CSIRT's.
		csirt = csirt || b.Tenant == AllTenants && b.Role.Allows(Read)
	}
	if !csirt || p.Kind != User {
		return Elevation{}, errors.New("only a person bound to read in every tenant (the CSIRT) may break glass")
	}
	now := d.now()
	e := Elevation{ID: "e-" + newID(), Principal: principalID, Role: role, Reason: reason,
		Started: fromNanos(nanos(now)), Expires: fromNanos(nanos(now.Add(dur)))}
	err = d.update(ctx, "breaking glass",
		`INSERT INTO elevations (id, principal_id, role, reason, started, expires) VALUES ($1, $2, $3, $4, $5, $6)`,
		e.ID, e.Principal, string(e.Role), e.Reason, nanos(e.Started), nanos(e.Expires))
	if err != nil {
		return Elevation{}, err
	}
	d.log.Warn("break-glass access", "id", e.ID, "principal", id.Name, "role", role, "until", e.Expires)
	return e, nil
}

// EndElevation ends the principal's elevations now.
func (d *Directory) EndElevation(ctx context.Context, principalID string) error {
	err := d.update(ctx, "ending break-glass access",
		`UPDATE elevations SET ended = $1 WHERE principal_id = $2 AND ended IS NULL AND expires > $1`, nanos(d.now()), principalID)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

func (d *Directory) activeElevation(ctx context.Context, principalID string) (Elevation, bool, error) {
	var (
		e                Elevation
		started, expires int64
	)
	err := d.db.QueryRow(ctx, `SELECT id, role, reason, started, expires FROM elevations WHERE principal_id = $1 AND ended IS NULL AND expires > $2 ORDER BY expires DESC LIMIT 1`,
		principalID, nanos(d.now())).Scan(&e.ID, &e.Role, &e.Reason, &started, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return Elevation{}, false, nil
	}
	if err != nil {
		return Elevation{}, false, fmt.Errorf("access: reading elevations: %w", err)
	}
	e.Principal = principalID
	e.Started, e.Expires = time.Unix(0, started).UTC(), time.Unix(0, expires).UTC()
	return e, true, nil
}
