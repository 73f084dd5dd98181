package ingest

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/ledger"
	"github.com/vigilsec/vigil/store"
)

// A Store is what a Pipeline writes events to after the ledger: the
// store, which is derived from the ledger and caught up from it.
type Store interface {
	Sink
	store.BulkLoader
	// Missing returns the seq ranges below size the store has no event
	// for and that MarkOther did not mark.
	Missing(ctx context.Context, size uint64) ([][2]uint64, error)
	// MarkOther records seq ranges of ledger records that are not events
	// in the store: the ledger's own records, redacted events.
	MarkOther(ctx context.Context, ranges [][2]uint64) error
	// Tenants, Expired and Delete serve retention (retention.go).
	Tenants(ctx context.Context) ([]string, error)
	Expired(ctx context.Context, tenant string, before time.Time, keep [][2]time.Time) ([]uint64, error)
	Delete(ctx context.Context, seqs []uint64) error
}

// A Pipeline is where accepted events go: first the ledger, which makes
// them durable and numbers them (an event's seq is its ledger index),
// then the store. An event is acknowledged once the ledger has it: if the
// store then fails, or the process dies before the store commits, the
// next CatchUp copies it from the ledger. A Pipeline is a Sink and a
// store.BulkLoader, so the Importer and the HTTP handler write through it.
type Pipeline struct {
	Ledger *ledger.Ledger
	Store  Store
	Logger *slog.Logger
	// Detect, if set, is given the events once they are in the ledger and
	// have their seq. An Intake gives them in ledger order from one
	// goroutine of its own, following the ledger as events come, not the
	// store: an alert waits for no store write, and detection goes on
	// while the store is down. An import's workers give theirs
	// concurrently, a file's at a time, once stored.
	// After a crash, the events the store had not committed are given
	// again as it catches up: detection sees every event at least once,
	// and those of the last moments before a crash maybe twice.
	Detect func([]*event.Event)
	// Enrich, if set, completes events before the ledger takes them, in
	// time order, so that what it adds is as tamper-evident as the rest:
	// the origin of a temporary credential's events. It must be safe for
	// concurrent use: an import's workers call it at once.
	Enrich func([]*event.Event)
}

var _ store.BulkLoader = (*Pipeline)(nil)

// Append appends evs to the ledger, in time order, and then to the store.
// It returns an error only when the ledger does: once the ledger has the
// events they are acknowledged, and a failure of the store is logged and
// repaired by the next CatchUp.
func (p *Pipeline) Append(ctx context.Context, evs []*event.Event) error {
	sorted, err := p.ledgerAppend(ctx, evs)
	if err != nil || len(sorted) == 0 {
		return err
	}
	if err := p.Store.Append(ctx, sorted); err != nil {
		p.logger().Error("storing events the ledger has; they are stored when the store next catches up",
			"first", sorted[0].Seq, "events", len(sorted), "err", err)
		return nil
	}
	p.detect(sorted)
	return nil
}

// ledgerAppend appends evs to the ledger sorted by time, so that seq
// follows time within a batch and the store's row groups, kept in seq
// order, cover narrow time ranges. It returns the sorted events.
func (p *Pipeline) ledgerAppend(ctx context.Context, evs []*event.Event) ([]*event.Event, error) {
	if len(evs) == 0 {
		return nil, nil
	}
	sorted := slices.Clone(evs)
	slices.SortStableFunc(sorted, func(a, b *event.Event) int { return a.Time.Compare(b.Time) })
	p.enrich(sorted)
	if _, err := p.Ledger.Append(ctx, sorted); err != nil {
		return nil, fmt.Errorf("appending to the ledger: %w", err)
	}
	return sorted, nil
}

// Quarantine stores records that could not be parsed. They are not events
// and do not go to the ledger.
func (p *Pipeline) Quarantine(ctx context.Context, qs []store.Quarantined) error {
	return p.Store.Quarantine(ctx, qs)
}

// NewLoader returns a loader for an import: each Append goes to the
// ledger, then to a store loader, which commits in large transactions.
// What the store loader has not committed when the process dies, the
// ledger has, and CatchUp restores.
func (p *Pipeline) NewLoader(ctx context.Context) (store.Loader, error) {
	l, err := p.Store.NewLoader(ctx)
	if err != nil {
		return nil, err
	}
	return &pipelineLoader{p: p, l: l}, nil
}

type pipelineLoader struct {
	p *Pipeline
	l store.Loader
}

func (pl *pipelineLoader) Append(ctx context.Context, evs []*event.Event) error {
	sorted, err := pl.p.ledgerAppend(ctx, evs)
	if err != nil {
		return err
	}
	if err := pl.l.Append(ctx, sorted); err != nil {
		return err
	}
	pl.p.detect(sorted)
	return nil
}

func (p *Pipeline) enrich(evs []*event.Event) {
	if p.Enrich != nil && len(evs) > 0 {
		p.Enrich(evs)
	}
}

func (p *Pipeline) detect(evs []*event.Event) {
	if p.Detect != nil && len(evs) > 0 {
		p.Detect(evs)
	}
}

func (pl *pipelineLoader) Close(ctx context.Context) error { return pl.l.Close(ctx) }

// CatchUp copies to the store the events the ledger has and the store
// does not: after a crash, those its loaders had not committed. It
// returns how many events it copied.
func (p *Pipeline) CatchUp(ctx context.Context) (int64, error) {
	size := p.Ledger.Size()
	missing, err := p.Store.Missing(ctx, uint64(size))
	if err != nil || len(missing) == 0 {
		return 0, err
	}
	l, err := p.Store.NewLoader(ctx)
	if err != nil {
		return 0, err
	}
	const batchSize = 20_000
	var (
		batch  []*event.Event
		other  [][2]uint64
		copied int64
	)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := l.Append(ctx, batch)
		if err == nil {
			p.detect(batch)
		}
		copied += int64(len(batch))
		batch = batch[:0]
		return err
	}
	for _, r := range missing {
		err = scanEvents(p.Ledger, int64(r[0]), int64(r[1])+1, &other, func(e *event.Event) error {
			batch = append(batch, e)
			if len(batch) == batchSize {
				return flush()
			}
			return nil
		})
		if err != nil {
			break
		}
	}
	if err == nil {
		err = flush()
	}
	if cerr := l.Close(ctx); err == nil {
		err = cerr
	}
	if err == nil {
		err = p.Store.MarkOther(ctx, other)
	}
	if err != nil {
		return copied, fmt.Errorf("catching the store up with the ledger: %w", err)
	}
	if copied > 0 {
		p.logger().Info("caught the store up with the ledger", "events", copied, "ranges", len(missing))
	}
	return copied, nil
}

// scanEvents calls fn with each event of ledger records [from, to), its
// Seq set, and adds the seqs of the other records (the ledger's own,
// redacted events) to *other, for the store to mark.
func scanEvents(l *ledger.Ledger, from, to int64, other *[][2]uint64, fn func(*event.Event) error) error {
	return l.Scan(from, to, func(rec ledger.Record) error {
		if rec.Kind != ledger.KindEvent {
			*other = appendRange(*other, uint64(rec.Index), uint64(rec.Index))
			return nil
		}
		e, err := ledger.DecodeEvent(rec.Content)
		if err != nil {
			return fmt.Errorf("ledger record %d: %w", rec.Index, err)
		}
		e.Seq = uint64(rec.Index)
		return fn(e)
	})
}

func (p *Pipeline) logger() *slog.Logger {
	if p.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return p.Logger
}
