package ingest

import (
	"context"
	"fmt"
	"time"

	"github.com/vigilsec/vigil/ledger"
)

// A RetainingStore is a PartitionStore that can find and delete a
// partition's expired events: the ClickHouse store.
type RetainingStore interface {
	PartitionStore
	LedgerTenants(ctx context.Context, ledger uint16) ([]string, error)
	// Expired returns up to limit seqs, ascending, of tenant's events
	// in ledger older than before and outside every keep range.
	Expired(ctx context.Context, ledger uint16, tenant string, before time.Time, keep [][2]time.Time, limit int) ([]uint64, error)
	// DeleteExpired deletes the events Expired selects whose seq is at
	// most through.
	DeleteExpired(ctx context.Context, ledger uint16, tenant string, before time.Time, keep [][2]time.Time, through uint64) error
}

// retainBatch is how many expired events a retention pass erases at a
// time: a batch of seqs in memory and one mutation of ClickHouse each.
const retainBatch = 100_000

// retainPartition applies r to partition part, whose ledger l is: its
// expired events are erased from the ledger (content gone, hashes kept,
// the reason recorded), then deleted from the store, and the ledger's
// segments before the first event it still holds are removed. It runs
// on the node holding the partition, the only one that may write its
// ledger. In that order, a crash between the two leaves events erased
// from the ledger but still in the store, which the next pass deletes;
// never events in the store that the ledger no longer proves.
func retainPartition(ctx context.Context, rs RetainingStore, l *ledger.Ledger, part int, r Retention, now time.Time) (RetentionResult, error) {
	var res RetentionResult
	tenants, err := rs.LedgerTenants(ctx, uint16(part))
	if err != nil {
		return res, err
	}
	for _, t := range tenants {
		keepFor, holds := r.of(t)
		if keepFor <= 0 {
			continue
		}
		before := now.Add(-keepFor)
		reason := fmt.Sprintf("retention: tenant %s keeps events %s", t, keepFor)
		for {
			seqs, err := rs.Expired(ctx, uint16(part), t, before, holds, retainBatch)
			if err != nil {
				return res, err
			}
			if len(seqs) == 0 {
				break
			}
			indexes := make([]int64, len(seqs))
			for i, seq := range seqs {
				p, index := SeqPartition(seq)
				if p != part {
					return res, fmt.Errorf("partition %d: the store has seq %d of partition %d in its ledger", part, seq, p)
				}
				indexes[i] = index
			}
			// Only what the ledger has erased leaves the store: the
			// events stored since the query have higher seqs.
			if err := l.Redact(ctx, indexes, reason); err != nil {
				return res, fmt.Errorf("partition %d: erasing tenant %s's expired events: %w", part, t, err)
			}
			if err := rs.DeleteExpired(ctx, uint16(part), t, before, holds, seqs[len(seqs)-1]); err != nil {
				return res, fmt.Errorf("partition %d: deleting tenant %s's expired events: %w", part, t, err)
			}
			res.Erased += int64(len(seqs))
			if len(seqs) < retainBatch {
				break
			}
		}
	}
	res.Removal, err = removeErased(ctx, l)
	return res, err
}

// retain applies the retention to partition part every RetentionEvery,
// the first time a minute after the node took the partition, until ctx
// ends.
func (p *Processor) retain(ctx context.Context, rs RetainingStore, l *ledger.Ledger, part int) {
	wait := time.Minute
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = p.opts.RetentionEvery
		res, err := retainPartition(ctx, rs, l, part, *p.opts.Retention, time.Now())
		if err != nil {
			if ctx.Err() == nil {
				p.log.Error("applying retention to a partition; it is tried again at the next pass", "partition", part, "err", err)
			}
			continue
		}
		if res.Erased > 0 || len(res.Removal.Removed) > 0 {
			p.log.Info("retention applied", "partition", part, "erased", res.Erased, "segments_removed", len(res.Removal.Removed), "segments_held", len(res.Removal.Held))
		}
	}
}
