package duckdb

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/ledger"
	"github.com/vigilsec/vigil/store"
)

// A Comparison checks the store against the ledger, one record at a
// time, so that it can ride along the ledger's own verification (the
// Record hook of ledger.VerifyOptions), which reads every record anyway.
type Comparison struct {
	db  *DB
	ctx context.Context

	// The store's events with seq in [lo, hi), by seq, and which of
	// them a record has matched.
	lo, hi  uint64
	rows    map[uint64]*event.Event
	matched map[uint64]bool
	// The window's backfilled origins (origins.go): the store's, and
	// the ledger's it replaced.
	origins map[uint64][2]string
	// The next window, read while this one is compared: reading from
	// DuckDB takes as long as decoding and comparing, and each can have
	// a core.
	ahead *window

	out store.Mismatches
}

// comparisonWindow is how many seqs a Comparison reads from the store at
// a time.
const comparisonWindow = 20_000

// Compare starts a comparison of the store with the ledger.
func (s *DB) Compare(ctx context.Context) *Comparison {
	return &Comparison{db: s, ctx: ctx}
}

// Record compares one ledger record with the store. Records should come
// in index order; others cost a read of the store each.
func (c *Comparison) Record(rec ledger.Record) error {
	seq := uint64(rec.Index)
	if seq < c.lo || seq >= c.hi || c.rows == nil {
		if err := c.load(seq); err != nil {
			return err
		}
	}
	row := c.rows[seq]
	if row != nil {
		c.matched[seq] = true
	}
	switch rec.Kind {
	case ledger.KindEvent:
		if row == nil {
			c.add(seq, store.MismatchMissing, "the ledger has this event, the store does not")
			return nil
		}
		want, err := ledger.DecodeEvent(rec.Content)
		if err != nil {
			return fmt.Errorf("ledger record %d: %w", rec.Index, err)
		}
		want.Seq = seq
		if b, ok := c.origins[seq]; ok && want.Session.Origin == b[1] {
			want.Session.Origin = b[0]
		}
		if diff := diffEvents(StoredForm(want), row); len(diff) > 0 {
			c.add(seq, store.MismatchChanged, "differs from the ledger in "+strings.Join(diff, ", "))
		}
	case ledger.KindRedacted:
		if row != nil {
			c.add(seq, store.MismatchRedacted, "the ledger erased this event, the store still has it")
		}
	default:
		if row != nil {
			c.add(seq, store.MismatchAdded, "the ledger has a "+rec.Kind.String()+" record here, not an event")
		}
	}
	return nil
}

// Finish reports what the comparison found, including the store's events
// that no record matched: those beyond the ledger's size (the ledger
// has size records), and those a record was never given for.
func (c *Comparison) Finish(size uint64) ([]store.Mismatch, error) {
	c.flush(size)
	c.rows = nil
	c.Close()
	// Events past the end of the ledger.
	rows, err := c.db.db.QueryContext(c.ctx, "SELECT seq FROM events WHERE seq >= CAST(? AS UBIGINT) ORDER BY seq", size)
	if err != nil {
		return nil, fmt.Errorf("reading the store past the ledger: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var seq uint64
		if err := rows.Scan(&seq); err != nil {
			return nil, err
		}
		c.add(seq, store.MismatchAdded, "the store has an event past the end of the ledger")
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading the store past the ledger: %w", err)
	}
	slices.SortStableFunc(c.out, func(a, b store.Mismatch) int { return cmp.Compare(a.First, b.First) })
	return c.out, nil
}

// Close waits for the comparison's background read, if any: a caller
// that stops before Finish must call it before closing the store.
func (c *Comparison) Close() {
	if c.ahead != nil {
		<-c.ahead.done
		c.ahead = nil
	}
}

// A window is the store's events in [lo, lo+comparisonWindow), read in
// the background.
type window struct {
	lo   uint64
	done chan struct{}
	evs  []*event.Event
	// origins are the backfills of the window's events.
	origins map[uint64][2]string
	err     error
}

func (c *Comparison) read(lo uint64) *window {
	w := &window{lo: lo, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		w.err = c.db.Events(c.ctx, lo, lo+comparisonWindow, func(e *event.Event) error {
			w.evs = append(w.evs, e)
			return nil
		})
		if w.err == nil {
			w.origins, w.err = c.db.backfilled(c.ctx, lo, lo+comparisonWindow)
		}
	}()
	return w
}

// load reads the window of the store holding seq, after reporting the
// events of the previous window that no record matched, and starts
// reading the next.
func (c *Comparison) load(seq uint64) error {
	c.flush(math.MaxUint64)
	c.lo = seq - seq%comparisonWindow
	c.hi = c.lo + comparisonWindow
	w := c.ahead
	if w == nil || w.lo != c.lo {
		if w != nil {
			<-w.done // abandoned: let it finish before reading again
		}
		w = c.read(c.lo)
	}
	<-w.done
	c.ahead = c.read(c.hi)
	if w.err != nil {
		return w.err
	}
	c.rows = make(map[uint64]*event.Event, len(w.evs))
	c.matched = make(map[uint64]bool, len(w.evs))
	c.origins = w.origins
	for _, e := range w.evs {
		if c.rows[e.Seq] != nil {
			c.add(e.Seq, store.MismatchAdded, "the store has this seq twice")
		}
		c.rows[e.Seq] = e
	}
	return nil
}

// flush reports the unmatched events of the current window below limit;
// Finish reports those past the end of the ledger itself.
func (c *Comparison) flush(limit uint64) {
	var unmatched []uint64
	for seq := range c.rows {
		if !c.matched[seq] && seq < limit {
			unmatched = append(unmatched, seq)
		}
	}
	slices.Sort(unmatched)
	for _, seq := range unmatched {
		c.add(seq, store.MismatchAdded, "the store has an event for which the ledger has no intact record")
	}
}

// add records a finding, merged with the last one when it continues it.
func (c *Comparison) add(seq uint64, kind, detail string) { c.out.Add(seq, kind, detail) }

// diffEvents names the fields in which a and b differ.
func diffEvents(a, b *event.Event) []string {
	var d []string
	check := func(name string, same bool) {
		if !same {
			d = append(d, name)
		}
	}
	check("time", a.Time.Equal(b.Time))
	check("received", a.Received.Equal(b.Received))
	check("skewed", a.Skewed == b.Skewed)
	check("tenant", a.Tenant == b.Tenant)
	check("source", a.Source == b.Source)
	check("class", a.Class == b.Class)
	check("event_id", a.ID == b.ID)
	check("cloud", a.Cloud == b.Cloud)
	check("environment", a.Environment == b.Environment)
	check("actor", a.Actor == b.Actor)
	check("session", a.Session == b.Session)
	check("src_ip", a.SrcIP == b.SrcIP)
	check("dst_ip", a.DstIP == b.DstIP)
	check("src_port", a.SrcPort == b.SrcPort)
	check("dst_port", a.DstPort == b.DstPort)
	check("host", a.Host == b.Host)
	check("user_agent", a.UserAgent == b.UserAgent)
	check("service", a.Service == b.Service)
	check("action", a.Action == b.Action)
	check("resources", slices.Equal(a.Resources, b.Resources))
	check("outcome", a.Outcome == b.Outcome)
	check("message", a.Message == b.Message)
	check("origin", a.Origin == b.Origin)
	check("raw", bytes.Equal(a.Raw, b.Raw))
	check("doc", bytes.Equal(a.Doc, b.Doc) && (a.Doc == nil) == (b.Doc == nil))
	check("context", a.Context.Src == b.Context.Src && a.Context.Dst == b.Context.Dst && a.Context.Team == b.Context.Team &&
		slices.Equal(a.Context.Intel, b.Context.Intel))
	return d
}
