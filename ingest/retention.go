package ingest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/vigilsec/vigil/ledger"
	"github.com/vigilsec/vigil/query"
)

// A Retention says how long events are kept, per tenant, and what legal
// holds keep longer.
type Retention struct {
	// Default is for tenants not in Tenants, except the audit trail
	// (query.SystemTenant), which is kept until Tenants names it: a
	// default chosen for logs must not erase the record of who read
	// them. 0 keeps events forever.
	Default time.Duration
	Tenants map[string]time.Duration // 0 keeps the tenant's events forever
	Holds   []Hold
}

// A Hold keeps events past their retention: a legal hold, for an
// investigation or litigation.
type Hold struct {
	Tenant   string    // empty: every tenant
	From, To time.Time // the events' time range, [From, To); a zero bound is open
	Reason   string
}

// of returns how long tenant's events are kept (0: forever) and the time
// ranges of its events that legal holds keep longer.
func (r Retention) of(tenant string) (time.Duration, [][2]time.Time) {
	keepFor, ok := r.Tenants[tenant]
	if !ok && tenant != query.SystemTenant {
		keepFor = r.Default
	}
	var holds [][2]time.Time
	for _, h := range r.Holds {
		if h.Tenant == "" || h.Tenant == tenant {
			holds = append(holds, [2]time.Time{h.From, h.To})
		}
	}
	return keepFor, holds
}

// RetentionResult says what ApplyRetention did.
type RetentionResult struct {
	Erased  int64          // events whose content was erased
	Removal ledger.Removal // the segments removed, once wholly erased
}

// ApplyRetention erases the events that have outlived their tenant's
// retention, except those under a legal hold, from the ledger and the
// store, and then removes the ledger segments that hold nothing else.
//
// Segments hold the events of every tenant in arrival order, so a
// tenant's retention cannot be a matter of deleting files: expired events
// are first redacted (their content erased, their hashes kept, with the
// reason recorded in the ledger), and a segment is deleted only when all
// it holds is erased. The ledger records each removal (range, root hash
// before and after) and signs a checkpoint over it, so verify tells the
// retention job's deletions from anyone else's.
func (p *Pipeline) ApplyRetention(ctx context.Context, r Retention, now time.Time) (RetentionResult, error) {
	var res RetentionResult
	tenants, err := p.Store.Tenants(ctx)
	if err != nil {
		return res, err
	}
	for _, t := range tenants {
		keepFor, holds := r.of(t)
		if keepFor <= 0 {
			continue
		}
		seqs, err := p.Store.Expired(ctx, t, now.Add(-keepFor), holds)
		if err != nil {
			return res, err
		}
		if len(seqs) == 0 {
			continue
		}
		reason := fmt.Sprintf("retention: tenant %s keeps events %s", t, keepFor)
		if err := p.Erase(ctx, seqs, reason); err != nil {
			return res, fmt.Errorf("erasing tenant %s's expired events: %w", t, err)
		}
		res.Erased += int64(len(seqs))
		p.logger().Info("retention erased expired events", "tenant", t, "events", len(seqs), "older_than", now.Add(-keepFor))
	}

	res.Removal, err = removeErased(ctx, p.Ledger)
	return res, err
}

// removeErased removes the ledger's segments before the first event it
// still holds.
func removeErased(ctx context.Context, l *ledger.Ledger) (ledger.Removal, error) {
	first, err := firstLiveRecord(l)
	if err != nil || first == 0 {
		return ledger.Removal{}, err
	}
	rm, err := l.RemoveBefore(ctx, first, "retention: every record before was erased")
	if err != nil {
		return rm, fmt.Errorf("removing erased ledger segments: %w", err)
	}
	return rm, nil
}

// Erase erases the content of the events with the given seqs from the
// ledger, keeping their hashes and recording reason, and deletes them
// from the store: for a redaction or for retention.
func (p *Pipeline) Erase(ctx context.Context, seqs []uint64, reason string) error {
	indexes := make([]int64, len(seqs))
	for i, s := range seqs {
		indexes[i] = int64(s)
	}
	if err := p.Ledger.Redact(ctx, indexes, reason); err != nil {
		return err
	}
	if err := p.Store.Delete(ctx, seqs); err != nil {
		return err
	}
	sorted := slices.Clone(seqs)
	slices.Sort(sorted)
	var ranges [][2]uint64
	for _, s := range slices.Compact(sorted) {
		ranges = appendRange(ranges, s, s)
	}
	// A crash before this leaves the seqs to the next CatchUp, which
	// finds them redacted and marks them.
	return p.Store.MarkOther(ctx, ranges)
}

// errFound stops a Scan.
var errFound = errors.New("found")

// firstLiveRecord returns the index of the first event record whose
// content the ledger still holds, or its size when there is none.
func firstLiveRecord(l *ledger.Ledger) (int64, error) {
	first := l.Size()
	err := l.Scan(0, first, func(rec ledger.Record) error {
		if rec.Kind == ledger.KindEvent {
			first = rec.Index
			return errFound
		}
		return nil
	})
	if err != nil && !errors.Is(err, errFound) {
		return 0, fmt.Errorf("reading the ledger: %w", err)
	}
	return first, nil
}
