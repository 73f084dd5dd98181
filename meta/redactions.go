package meta

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// A Redaction is a request to erase the content of the events a query
// selects from a scale-out's ledgers and store. The node holding each
// partition applies it there, since only that node may write the
// partition's ledger; it is done when every partition has.
type Redaction struct {
	ID          string    `json:"id"`
	Query       string    `json:"query"`
	Reason      string    `json:"reason"`
	Requested   time.Time `json:"requested"`
	RequestedBy string    `json:"requested_by"`
	// Partitions is how many partitions the deployment has.
	Partitions int `json:"partitions"`
	// Parts are what the partitions did with it, by partition; only
	// Redaction fills them.
	Parts []RedactionPart `json:"parts,omitempty"`
}

// A RedactionPart is what one partition did with a redaction: applied,
// erasing Erased events, or kept from it by Error, last tried at Tried.
type RedactionPart struct {
	Part    int       `json:"part"`
	Erased  int64     `json:"erased"`
	Applied time.Time `json:"applied"` // zero while it is not
	Error   string    `json:"error,omitempty"`
	Tried   time.Time `json:"tried"`
}

// Done says every partition has applied the redaction, and returns how
// many events they erased.
func (r Redaction) Done() (erased int64, done bool) {
	applied := 0
	for _, p := range r.Parts {
		if !p.Applied.IsZero() {
			applied++
			erased += p.Erased
		}
	}
	return erased, applied >= r.Partitions
}

// RequestRedaction files r, under a new id, and returns it as stored. It
// needs a query, a reason and a positive number of partitions; an unset
// Requested is now.
func (db *DB) RequestRedaction(ctx context.Context, r Redaction) (Redaction, error) {
	switch {
	case strings.TrimSpace(r.Query) == "":
		return Redaction{}, errors.New("meta: a redaction needs a query")
	case strings.TrimSpace(r.Reason) == "":
		return Redaction{}, errors.New("meta: a redaction needs a reason")
	case r.Partitions < 1:
		return Redaction{}, fmt.Errorf("meta: a redaction for %d partitions", r.Partitions)
	}
	for _, s := range []string{r.Query, r.Reason, r.RequestedBy} {
		if !isText(s) {
			return Redaction{}, errors.New("meta: a redaction is not UTF-8 text")
		}
	}
	if r.Requested.IsZero() {
		r.Requested = time.Now()
	}
	r.Requested = r.Requested.UTC()
	r.ID, r.Parts = newDetectionID(r.Requested), nil
	err := db.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO redactions (id, query, reason, requested, requested_by, partitions) VALUES ($1, $2, $3, $4, $5, $6)`,
			r.ID, r.Query, r.Reason, r.Requested.UnixNano(), r.RequestedBy, r.Partitions)
		return err
	})
	if err != nil {
		return Redaction{}, fmt.Errorf("meta: filing a redaction: %w", err)
	}
	return r, nil
}

const redactionColumns = "id, query, reason, requested, requested_by, partitions"

func scanRedaction(r interface{ Scan(...any) error }) (Redaction, error) {
	var (
		red       Redaction
		requested int64
	)
	if err := r.Scan(&red.ID, &red.Query, &red.Reason, &requested, &red.RequestedBy, &red.Partitions); err != nil {
		return Redaction{}, err
	}
	red.Requested = fromNano(requested)
	return red, nil
}

func scanRedactionPart(r interface{ Scan(...any) error }) (RedactionPart, error) {
	var (
		p              RedactionPart
		applied, tried int64
	)
	if err := r.Scan(&p.Part, &p.Erased, &applied, &p.Error, &tried); err != nil {
		return RedactionPart{}, err
	}
	p.Applied, p.Tried = fromNano(applied), fromNano(tried)
	return p, nil
}

// Redaction returns the redaction id with what each partition did with
// it so far, by partition; ErrNotFound if there is none.
func (db *DB) Redaction(ctx context.Context, id string) (Redaction, error) {
	r, err := scanRedaction(db.QueryRow(ctx, `SELECT `+redactionColumns+` FROM redactions WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Redaction{}, ErrNotFound
	}
	if err != nil {
		return Redaction{}, fmt.Errorf("meta: reading redaction %s: %w", id, err)
	}
	r.Parts, err = scanAll(ctx, db.read, "redaction "+id, scanRedactionPart,
		`SELECT part, erased, applied, error, tried FROM redaction_parts WHERE redaction_id = $1 ORDER BY part`, id)
	if err != nil {
		return Redaction{}, err
	}
	return r, nil
}

// PendingRedactions returns the redactions partition part has yet to
// apply, oldest first.
func (db *DB) PendingRedactions(ctx context.Context, part int) ([]Redaction, error) {
	return scanAll(ctx, db.read, fmt.Sprintf("the pending redactions of partition %d", part), scanRedaction,
		`SELECT `+redactionColumns+` FROM redactions r WHERE partitions > $1
AND NOT EXISTS (SELECT 1 FROM redaction_parts p WHERE p.redaction_id = r.id AND p.part = $1 AND p.applied <> 0)
ORDER BY requested, id`, part)
}

// RedactionApplied records that partition part applied redaction id at
// at, erasing erased events. A partition applied already keeps what it
// recorded first: a node that applies it again, having taken the
// partition from one that died before it could tell, finds nothing more
// to erase.
func (db *DB) RedactionApplied(ctx context.Context, id string, part int, erased int64, at time.Time) error {
	return db.redactionPart(ctx, id, RedactionPart{Part: part, Erased: erased, Applied: at, Tried: at})
}

// RedactionFailed records why partition part could not apply redaction
// id at at; the node tries again. It changes nothing once the partition
// applied it.
func (db *DB) RedactionFailed(ctx context.Context, id string, part int, reason string, at time.Time) error {
	return db.redactionPart(ctx, id, RedactionPart{Part: part, Error: strings.ToValidUTF8(reason, "\uFFFD"), Tried: at})
}

func (db *DB) redactionPart(ctx context.Context, id string, p RedactionPart) error {
	err := db.Write(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM redactions WHERE id = $1`, id).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return ErrNotFound
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO redaction_parts (redaction_id, part, erased, applied, error, tried) VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (redaction_id, part) DO UPDATE SET erased = excluded.erased, applied = excluded.applied, error = excluded.error, tried = excluded.tried
WHERE redaction_parts.applied = 0`,
			id, p.Part, p.Erased, unixNano(p.Applied), strings.ReplaceAll(p.Error, "\x00", ""), unixNano(p.Tried))
		return err
	})
	if err != nil {
		return fmt.Errorf("meta: recording partition %d of redaction %s: %w", p.Part, id, err)
	}
	return nil
}
