package ingest

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/store"
)

// IntakeOptions configure an Intake.
type IntakeOptions struct {
	// MaxLag is how many ledger records the store may be behind before
	// Accept answers ErrBusy. The store catches up from the ledger, not
	// from memory, so the lag costs no memory: it bounds how stale a
	// search may be. Zero means 1,000,000.
	MaxLag int64
	// BatchKeys is how many batch keys are remembered for idempotency,
	// and KeyScan how many of the ledger's last records are read at start
	// to find them. Zero means 200,000 and 2,000,000.
	BatchKeys int
	KeyScan   int64
	// StoreBatch is how many events the store gets at once when it is
	// behind, and StoreDelay the longest an accepted event waits to be
	// stored. Zero means 20,480 and one second. Events read back from
	// the ledger wait in memory a batch at a time (about 2.5 KB each),
	// and a store that is behind appends them through one transaction
	// whatever the batch, so a larger batch buys nothing but memory.
	StoreBatch int
	StoreDelay time.Duration
	// CommitEvery bounds how long a store that is behind keeps its
	// loader's transaction open, so that searches see the events it has
	// caught up on; it commits as soon as it has caught up. Each commit
	// writes and syncs what the loader holds, so frequent ones slow the
	// catching up (5s: 14k events/s stored; 30s: 27k). Zero means 30s.
	CommitEvery time.Duration
	Logger      *slog.Logger
	Registerer  prometheus.Registerer
	// Accepted, if set, is called with each batch the ledger took, after
	// it did: for what follows arrivals as they happen (silent sources),
	// which imports of archives must not look like.
	Accepted func([]*event.Event)
}

// An Intake is the live side of a Pipeline, for sources that send
// continuously (HTTP, syslog, pull sources). Accept makes a batch durable
// in the ledger and answers; Run feeds the store from behind, with the
// events Accept hands it or, when it falls behind, from the ledger. So an
// event is acknowledged at the speed of the ledger, the store's pace
// limits only how far behind search may be, and a crash loses nothing
// acknowledged: the store resumes from the ledger.
type Intake struct {
	p    *Pipeline
	opts IntakeOptions
	log  *slog.Logger
	m    *intakeMetrics

	handoff chan handoff // accepted events on their way to the store
	// detectFeed carries accepted events to detection, which follows the
	// ledger on its own, so that an alert waits for no store write.
	detectFeed chan handoff

	mu       sync.Mutex
	keys     map[string]struct{} // batch keys in the ledger
	keyOrder []string            // keys, oldest first, to forget the oldest
	inflight map[string]chan struct{}
	stored   int64 // the store has every record below this index, committed
	fed      int64 // the store was given every record below this index, maybe not yet committed
	sources  map[string]*SourceStats
}

// A handoff carries an append's events to the store: records
// [first, end) of the ledger, of which events are the first.
type handoff struct {
	first, end int64
	events     []*event.Event
}

// NewIntake returns an Intake writing through p. The store must be
// caught up with the ledger (Pipeline.CatchUp) first.
func NewIntake(p *Pipeline, opts IntakeOptions) (*Intake, error) {
	if opts.MaxLag <= 0 {
		opts.MaxLag = 1_000_000
	}
	if opts.BatchKeys <= 0 {
		opts.BatchKeys = 200_000
	}
	if opts.KeyScan <= 0 {
		opts.KeyScan = 2_000_000
	}
	if opts.StoreBatch <= 0 {
		opts.StoreBatch = 20_480
	}
	if opts.StoreDelay <= 0 {
		opts.StoreDelay = time.Second
	}
	if opts.CommitEvery <= 0 {
		opts.CommitEvery = 30 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	in := &Intake{
		p:        p,
		opts:     opts,
		log:      opts.Logger,
		m:        newIntakeMetrics(opts.Registerer),
		handoff:  make(chan handoff, 64),
		keys:     make(map[string]struct{}),
		inflight: make(map[string]chan struct{}),
		stored:   p.Ledger.Size(),
		fed:      p.Ledger.Size(),
		sources:  make(map[string]*SourceStats),
	}
	if p.Detect != nil {
		in.detectFeed = make(chan handoff, 1024)
	}
	// Batch keys are found in the ledger itself, where each was written
	// with its events: a batch retried after a crash is recognised.
	from := in.stored - opts.KeyScan
	if err := p.Ledger.BatchKeys(from, func(key string, _ int64, _ int) error {
		in.remember(key)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("reading batch keys from the ledger: %w", err)
	}
	in.m.lag.Set(0)
	return in, nil
}

// Accept implements Acceptor.
func (in *Intake) Accept(ctx context.Context, b Batch) error {
	key := ""
	if b.ID != "" {
		key = b.Source + " " + b.ID
		done, err := in.claim(ctx, key)
		if err != nil || done {
			if done {
				in.m.duplicates.Inc()
			}
			return err
		}
		defer in.release(key)
	}
	if lag := in.p.Ledger.Size() - in.fedUpTo(); lag > in.opts.MaxLag {
		in.m.busy.Inc()
		return ErrBusy
	}
	evs := slices.Clone(b.Events)
	slices.SortStableFunc(evs, func(a, b *event.Event) int { return a.Time.Compare(b.Time) })
	in.p.enrich(evs)
	var (
		first int64
		err   error
		end   int64
	)
	start := time.Now()
	if key != "" {
		first, err = in.p.Ledger.AppendBatch(ctx, evs, key)
		end = first + int64(len(evs)) + 1
	} else {
		first, err = in.p.Ledger.Append(ctx, evs)
		end = first + int64(len(evs))
	}
	if err != nil {
		return fmt.Errorf("appending to the ledger: %w", err)
	}
	in.m.appendSeconds.Observe(time.Since(start).Seconds())
	if key != "" {
		in.mu.Lock()
		in.remember(key)
		in.mu.Unlock()
	}
	if len(b.Quarantined) > 0 {
		if err := in.p.Store.Quarantine(ctx, b.Quarantined); err != nil {
			// The events are acknowledged; the records that failed to
			// parse are not events and have no other copy, so say so.
			in.log.Error("storing quarantined records", "source", b.Source, "records", len(b.Quarantined), "err", err)
		}
	}
	in.observe(b, evs)
	if in.opts.Accepted != nil {
		in.opts.Accepted(evs)
	}
	if end > first {
		h := handoff{first: first, end: end, events: evs}
		select {
		case in.handoff <- h:
		default:
			// The store is behind; Run reads these from the ledger.
			in.m.handoffDropped.Inc()
		}
		if in.detectFeed != nil {
			select {
			case in.detectFeed <- h:
			default: // detection is behind; it reads these from the ledger
			}
		}
	}
	return nil
}

// claim reports whether the batch key was accepted before; if not, it
// holds the key until release, so a batch sent twice at once is stored
// once.
func (in *Intake) claim(ctx context.Context, key string) (bool, error) {
	for {
		in.mu.Lock()
		if _, ok := in.keys[key]; ok {
			in.mu.Unlock()
			return true, nil
		}
		wait, busy := in.inflight[key]
		if !busy {
			in.inflight[key] = make(chan struct{})
			in.mu.Unlock()
			return false, nil
		}
		in.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
}

func (in *Intake) release(key string) {
	in.mu.Lock()
	close(in.inflight[key])
	delete(in.inflight, key)
	in.mu.Unlock()
}

// remember adds key to the batch keys, forgetting the oldest beyond the
// bound. in.mu is held, or in is not yet shared.
func (in *Intake) remember(key string) {
	if _, ok := in.keys[key]; ok {
		return
	}
	in.keys[key] = struct{}{}
	in.keyOrder = append(in.keyOrder, key)
	if len(in.keyOrder) > in.opts.BatchKeys {
		drop := len(in.keyOrder) - in.opts.BatchKeys
		for _, k := range in.keyOrder[:drop] {
			delete(in.keys, k)
		}
		in.keyOrder = slices.Delete(in.keyOrder, 0, drop)
	}
}

// Stored returns the ledger index below which the store holds every
// event, committed: what a search of the store is sure to find.
func (in *Intake) Stored() int64 { return in.storedUpTo() }

func (in *Intake) storedUpTo() int64 {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.stored
}

// fedUpTo is how far the store feed has got, committed or not: the lag
// that Accept pushes back on, since a loader commits only now and then.
func (in *Intake) fedUpTo() int64 {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.fed
}

// Run feeds the store until ctx is done, then stores what the ledger
// holds before returning.
func (in *Intake) Run(ctx context.Context) error {
	if in.detectFeed != nil {
		done := make(chan struct{})
		go func() {
			defer close(done)
			in.detectLoop(ctx, in.storedUpTo())
		}()
		defer func() { <-done }()
	}
	return in.run(ctx)
}

// detectLoop gives detection the ledger's events in order from next on,
// as they come: those Accept hands over, and those it could not (the
// feed was full, or something else appended them) read from the ledger.
// It follows the ledger, not the store, so that an alert waits for no
// store write; once ctx is done it detects what the ledger holds, and
// returns.
func (in *Intake) detectLoop(ctx context.Context, next int64) {
	var (
		pending = make(map[int64]handoff)
		behind  time.Time // since when next < the ledger's size without its handoff
		tick    = time.NewTicker(in.opts.StoreDelay / 4)
		batch   = int64(in.opts.StoreBatch)
	)
	defer tick.Stop()
	detect := func(evs []*event.Event) {
		if len(evs) > 0 {
			in.p.Detect(evs)
		}
	}
	for {
		stop := false
		select {
		case h := <-in.detectFeed:
			if h.first >= next && len(pending) < cap(in.detectFeed) {
				pending[h.first] = h
			}
		case <-tick.C:
		case <-ctx.Done():
			stop = true
		}
		for {
			h, ok := pending[next]
			if !ok {
				break
			}
			delete(pending, next)
			detect(h.events)
			next = h.end
		}
		for first := range pending {
			if first < next {
				delete(pending, first)
			}
		}
		size := in.p.Ledger.Size()
		if next < size {
			if behind.IsZero() {
				behind = time.Now()
			}
			// A tick's grace avoids decoding what is on its way.
			if stop || size-next >= batch || time.Since(behind) >= in.opts.StoreDelay/4 {
				to := min(size, next+batch)
				for first := range pending {
					to = min(to, first)
				}
				var evs []*event.Event
				var other [][2]uint64
				err := scanEvents(in.p.Ledger, next, to, &other, func(e *event.Event) error {
					evs = append(evs, e)
					return nil
				})
				if err != nil {
					in.log.Error("reading the ledger for detection; retrying", "err", err)
					if stop {
						return
					}
					continue
				}
				detect(evs)
				next, behind = to, time.Time{}
			}
		} else {
			behind = time.Time{}
		}
		if stop && next >= size {
			return
		}
	}
}

func (in *Intake) run(ctx context.Context) error {
	var (
		pending = make(map[int64]handoff) // handoffs ahead of the store, by first
		buf     []*event.Event            // events for the store, in seq order
		other   [][2]uint64               // ledger records that are not events
		next    = in.storedUpTo()         // the next record for buf
		oldest  time.Time                 // when buf's first event was accepted
		tick    = time.NewTicker(in.opts.StoreDelay / 4)
	)
	defer tick.Stop()
	var (
		ld      store.Loader // open while the store is behind
		ldSince time.Time
		ldOther [][2]uint64 // ranges of other records appended while ld is open
		ldNext  int64       // what stored becomes when ld commits
	)
	setStored := func(n int64) {
		in.mu.Lock()
		in.stored, in.fed = n, n
		in.mu.Unlock()
	}
	setFed := func(n int64) {
		in.mu.Lock()
		in.fed = n
		in.mu.Unlock()
	}
	// rewind drops what failed to reach the store: Run reads it again
	// from the ledger.
	rewind := func() {
		next = in.storedUpTo()
		setFed(next)
		buf, other, ldOther = buf[:0], other[:0], ldOther[:0]
		clear(pending)
	}
	commit := func(ctx context.Context) error {
		err := ld.Close(ctx)
		ld = nil
		if err == nil {
			err = in.p.Store.MarkOther(ctx, ldOther)
		}
		if err != nil {
			rewind()
			return err
		}
		ldOther = ldOther[:0]
		setStored(ldNext)
		return nil
	}
	// flush stores buf. Behind by a batch or more, it appends through a
	// loader, whose one transaction writes whole row groups, and commits
	// when it has caught up, every few seconds (so searches see events)
	// and at the end; otherwise each flush is a commit of its own. What
	// is behind counts what buf holds and what the ledger has past it:
	// a small buf (cut short by a handoff that came early, or by the
	// store delay) is no reason for a commit of its own, which rewrites
	// the table's last row group.
	flush := func(ctx context.Context, final bool) error {
		if ld == nil && int64(len(buf))+in.p.Ledger.Size()-next >= int64(in.opts.StoreBatch) {
			var err error
			if ld, err = in.p.Store.NewLoader(ctx); err != nil {
				return err
			}
			ldSince = time.Now()
		}
		if ld != nil {
			if err := ld.Append(ctx, buf); err != nil {
				ld.Close(ctx) // rolls the transaction back
				ld = nil
				rewind()
				return err
			}
			in.m.stored.Add(float64(len(buf)))
			ldOther = append(ldOther, other...)
			ldNext = next
			setFed(next)
			buf, other = buf[:0], other[:0]
			if final || next >= in.p.Ledger.Size() || time.Since(ldSince) >= in.opts.CommitEvery {
				return commit(ctx)
			}
			return nil
		}
		if len(buf) > 0 {
			if err := in.p.Store.Append(ctx, buf); err != nil {
				return err
			}
		}
		if err := in.p.Store.MarkOther(ctx, other); err != nil {
			return err
		}
		in.m.stored.Add(float64(len(buf)))
		buf, other = buf[:0], other[:0]
		setStored(next)
		return nil
	}
	take := func(h handoff) {
		if len(buf) == 0 {
			oldest = time.Now()
		}
		buf = append(buf, h.events...)
		if n := h.first + int64(len(h.events)); n < h.end {
			other = appendRange(other, uint64(n), uint64(h.end-1))
		}
		next = h.end
	}
	// fromLedger reads records [next, to) from the ledger into buf.
	fromLedger := func(to int64) error {
		if len(buf) == 0 {
			oldest = time.Now()
		}
		in.m.ledgerReads.Inc()
		err := scanEvents(in.p.Ledger, next, to, &other, func(e *event.Event) error {
			buf = append(buf, e)
			return nil
		})
		if err != nil {
			return err
		}
		next = to
		return nil
	}
	now := make(chan time.Time) // closed: a wait that is over at once
	close(now)
	var (
		failing bool
		behind  time.Time // since when next < the ledger's size without its handoff
		stop    bool
		stopAt  int64 // the ledger's size when ctx was done
	)
	for {
		// Behind by a batch or more, go on at once; otherwise wait for a
		// handoff or a tick.
		wait := tick.C
		if !stop && !failing && (len(buf) >= in.opts.StoreBatch || in.p.Ledger.Size()-next >= int64(in.opts.StoreBatch)) {
			wait = now
		}
		select {
		case h := <-in.handoff:
			// Memory stays bounded while the store is down or slow: with
			// a batch waiting, what comes is left to the ledger.
			if len(buf) < in.opts.StoreBatch && len(pending) < cap(in.handoff) {
				pending[h.first] = h
			} else {
				in.m.handoffDropped.Inc()
			}
		case <-wait:
		case <-ctx.Done():
			if !stop {
				stop, stopAt = true, in.p.Ledger.Size()
			}
		}
		for len(buf) < in.opts.StoreBatch {
			h, ok := pending[next]
			if !ok {
				break
			}
			delete(pending, next)
			take(h)
		}
		for first := range pending {
			if first < next {
				delete(pending, first) // read from the ledger meanwhile, wholly or in part
			}
		}
		// A record not handed over in time (its handoff was dropped, or
		// it was appended by something else than Accept) is read from the
		// ledger. Handoffs follow their appends within microseconds, so a
		// tick's grace avoids decoding what is on its way.
		size := in.p.Ledger.Size()
		if next < size && len(buf) < in.opts.StoreBatch {
			if behind.IsZero() {
				behind = time.Now()
			}
			if stop || size-next >= int64(in.opts.StoreBatch) || time.Since(behind) >= in.opts.StoreDelay/4 {
				// At most a store batch at a time: the store may be far
				// behind, and what is read waits in memory.
				to := min(size, next+int64(in.opts.StoreBatch-len(buf)))
				for first := range pending {
					to = min(to, first)
				}
				if err := fromLedger(to); err != nil {
					return fmt.Errorf("feeding the store from the ledger: %w", err)
				}
				behind = time.Time{}
			}
		} else if next >= size {
			behind = time.Time{}
		}
		in.m.lag.Set(float64(size - in.fedUpTo()))
		// Once stopped, buf fills up to what the ledger held then, rather
		// than going to the store in whatever pieces the last handoffs
		// left.
		done := stop && next >= stopAt
		due := len(buf) >= in.opts.StoreBatch ||
			(len(buf) > 0 || len(other) > 0) && (done || !stop && time.Since(oldest) >= in.opts.StoreDelay) ||
			ld != nil && (done || next >= size)
		if due {
			// A store write is never cut short by ctx: a load's commit
			// and the marks that follow it go together, and a failure
			// after the commit would have the events read from the
			// ledger and stored again. Stopping waits for the write.
			if err := flush(context.WithoutCancel(ctx), stop && next >= stopAt); err != nil {
				if stop {
					return fmt.Errorf("storing events: %w", err)
				}
				// The events are in the ledger; keep them and retry, and
				// meanwhile the lag makes Accept push back.
				if !failing {
					in.log.Error("storing events; retrying", "err", err)
				}
				failing = true
				in.m.storeErrors.Inc()
				continue
			}
			failing = false
		}
		// Once stopped, store what the ledger held then, a batch a
		// round.
		if stop && next >= stopAt && len(buf) == 0 && len(other) == 0 && ld == nil {
			return nil
		}
	}
}

// appendRange adds seq range [lo, hi] to rs, merging it with the last.
func appendRange(rs [][2]uint64, lo, hi uint64) [][2]uint64 {
	if n := len(rs); n > 0 && rs[n-1][1]+1 == lo {
		rs[n-1][1] = hi
		return rs
	}
	return append(rs, [2]uint64{lo, hi})
}

var _ Acceptor = (*Intake)(nil)
