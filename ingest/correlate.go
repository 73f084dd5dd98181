package ingest

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/vigilsec/vigil/detect"
)

// flushEvery is how often the correlation windows that end without
// another event (an upper bound on a count) are decided.
const flushEvery = 30 * time.Second

// maxPending bounds the observations a partition holds back waiting for
// a slow partition's watermark; past it the oldest go on without.
const maxPending = 500_000

// correlate keeps the correlation state of the groups that hash to
// partition part: it reads the partition's observations, puts them back
// in event time order (merge), and hands the correlations they complete
// to the sink, until ctx ends or the rules change.
//
// The state lives in memory and is rebuilt when the partition moves: the
// observations the partition's consumer acknowledged within the longest
// timespan of the rules are read again, without alerting.
func (p *Processor) correlate(ctx context.Context, part int) error {
	e := p.opts.Engine()
	c := e.NewCorrelator()
	m := newMerge(p.opts.Events.Partitions())
	acked, err := p.opts.Observations.Acked(ctx, part)
	if err != nil {
		return err
	}
	if span := e.MaxTimespan(); span > 0 && acked > 0 {
		if err := p.rebuild(ctx, part, c, m, span, acked); err != nil {
			return err
		}
	}
	r, err := p.opts.Observations.Read(ctx, part, acked)
	if err != nil {
		return err
	}
	// The consumer is acknowledged through acked, the messages whose
	// observations all went on; the merge holds those read through last.
	last := acked
	flushed := time.Now()
	for p.opts.Engine() == e {
		msgs, readErr := r.Next(ctx, p.opts.Fetch, time.Second)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		for _, msg := range msgs {
			if msg.Seq <= last {
				continue // read again after a new reader was made
			}
			if err := m.add(msg.Seq, msg.Data); err != nil {
				p.log.Error("a message of observations is damaged; skipped", "partition", part, "message", msg.Seq, "err", err)
			}
			last = msg.Seq
		}
		var ds []detect.Detection
		early := m.early
		done := m.release(func(o detect.Observation) { ds = append(ds, p.observe(c, part, o)...) })
		if m.early > early {
			p.log.Warn("more observations wait for a slow partition than are held; the oldest went on without it", "partition", part, "observations", m.early-early, "held", maxPending)
		}
		if now := time.Now(); now.Sub(flushed) >= flushEvery {
			// Windows are in event time: those that ended before every
			// partition's watermark are over, whatever the clock says
			// (history replayed hours behind it included).
			if low, ok := m.low(); ok {
				ds = append(ds, c.FlushAt(minTime(low, now))...)
			}
			flushed = now
		}
		if len(ds) > 0 {
			p.opts.Sink.Detected(ds)
		}
		if done > acked {
			if err := r.AckThrough(ctx, done); err != nil {
				readErr = errors.Join(readErr, err)
			} else {
				acked = done
			}
		}
		if readErr != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			// A new reader starts after what was acknowledged, so that
			// the consumer still says what went on; what the merge
			// holds already is skipped.
			p.log.Warn("reading the bus; reading again from the last message acknowledged", "partition", part, "of", "observations", "err", readErr)
			if r, err = p.reread(ctx, p.opts.Observations, part, acked); err != nil {
				return err
			}
		}
	}
	return nil
}

// rebuild feeds c, quietly, the observations of partition part up to
// stream position acked that were published within span (and an hour)
// of now, through m as they first went.
func (p *Processor) rebuild(ctx context.Context, part int, c *detect.Correlator, m *merge, span time.Duration, acked uint64) error {
	since := time.Now().Add(-span - time.Hour)
	r, err := p.opts.Observations.ReadSince(ctx, part, since)
	if err != nil {
		return err
	}
	n := 0
	// An empty read says nothing came within its wait, not that nothing
	// is left (a stream that just changed leader answers slowly), so the
	// replay reads on until it reaches acked; a failed read is made
	// again after the last message read.
	empty, failed := 0, 0
	for seen := uint64(0); seen < acked; {
		msgs, err := r.Next(ctx, p.opts.Fetch, time.Second)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if failed++; failed == 10 {
				return fmt.Errorf("partition %d: rebuilding correlation state: %w", part, err)
			}
			p.log.Warn("rebuilding a partition's correlation state: reading the bus; reading again", "partition", part, "err", err)
			if seen > 0 {
				r, err = p.opts.Observations.ReadAfter(ctx, part, seen)
			} else {
				r, err = p.opts.Observations.ReadSince(ctx, part, since)
			}
			if err != nil {
				return fmt.Errorf("partition %d: rebuilding correlation state: %w", part, err)
			}
			continue
		}
		failed = 0
		if len(msgs) == 0 {
			if empty++; empty == 30 {
				return fmt.Errorf("partition %d: rebuilding correlation state: read up to %d of %d, then nothing for 30s", part, seen, acked)
			}
			continue
		}
		empty = 0
		for _, msg := range msgs {
			seen = msg.Seq
			if msg.Seq > acked {
				break
			}
			if err := m.add(msg.Seq, msg.Data); err == nil {
				n++
			}
		}
		m.release(func(o detect.Observation) { p.observe(c, part, o) })
	}
	p.log.Info("rebuilt a partition's correlation state", "partition", part, "messages", n, "groups", c.Groups())
	return nil
}

// observe feeds c an observation and returns the correlations it
// completes.
func (p *Processor) observe(c *detect.Correlator, part int, o detect.Observation) []detect.Detection {
	ds, err := c.Observe(o)
	if err != nil {
		// The node that matched runs other rules: a change that has not
		// reached every node yet.
		p.log.Warn("an observation of rules this node does not run; skipped", "partition", part, "err", err)
	}
	return ds
}

// A mark is the first line of every message of observations: the event
// partition that sent it and its watermark, the latest event time it
// has matched, or that it is idle.
type mark struct {
	From      int       `json:"from"`
	Watermark time.Time `json:"watermark"`
	Idle      bool      `json:"idle,omitempty"`
}

func markLine(from int, watermark time.Time, idle bool) []byte {
	b, _ := json.Marshal(mark{From: from, Watermark: watermark, Idle: idle})
	return append(b, '\n')
}

// A merge puts the observations coming from every event partition back
// in event time order before they are correlated, so that a group whose
// matches come from several partitions sees them in the order one node
// would: each partition matches its events in time order and says how
// far it got (its watermark), and an observation goes on once every
// partition not idle is past its time. Events of the same time go in the
// order of their tenant and id (eventOrder), whichever partitions they
// came from.
type merge struct {
	marks   []time.Time
	heard   []bool
	idle    []bool
	pending []held
	sorted  bool
	// open are the messages read, in order, with how many of their
	// observations are still held.
	open []openMsg
	// early counts the observations let go before their time, past
	// maxPending.
	early int
}

type held struct {
	o   detect.Observation
	msg uint64
}

type openMsg struct {
	seq  uint64
	held int
}

func newMerge(partitions int) *merge {
	return &merge{marks: make([]time.Time, partitions), heard: make([]bool, partitions), idle: make([]bool, partitions)}
}

// add takes a message of observations, at stream position seq.
func (m *merge) add(seq uint64, data []byte) error {
	first, rest, _ := bytes.Cut(data, []byte("\n"))
	var mk mark
	if err := json.Unmarshal(first, &mk); err != nil {
		return fmt.Errorf("its mark: %w", err)
	}
	if mk.From < 0 || mk.From >= len(m.marks) {
		return fmt.Errorf("a mark from partition %d of %d", mk.From, len(m.marks))
	}
	if mk.Watermark.After(m.marks[mk.From]) {
		m.marks[mk.From] = mk.Watermark
	}
	m.heard[mk.From], m.idle[mk.From] = true, mk.Idle
	om := openMsg{seq: seq}
	var bad error
	for line := range bytes.Lines(rest) {
		var o detect.Observation
		if err := json.Unmarshal(line, &o); err != nil {
			bad = fmt.Errorf("an observation: %w", err)
			continue
		}
		m.pending = append(m.pending, held{o: o, msg: seq})
		m.sorted = false
		om.held++
	}
	m.open = append(m.open, om)
	return bad
}

// release hands fn, in order, the observations every partition is past,
// and returns the stream position up to which every message's
// observations are released (0 if none).
func (m *merge) release(fn func(detect.Observation)) uint64 {
	low, ok := m.low()
	if !m.sorted {
		slices.SortStableFunc(m.pending, func(a, b held) int { return eventOrder(a.o.Event, b.o.Event) })
		m.sorted = true
	}
	n := 0
	for n < len(m.pending) {
		if !ok || !m.pending[n].o.Event.Time.Before(low) {
			if len(m.pending)-n <= maxPending {
				break
			}
			m.early++
		}
		fn(m.pending[n].o)
		m.done(m.pending[n].msg)
		n++
	}
	m.pending = slices.Delete(m.pending, 0, n)
	var through uint64
	i := 0
	for i < len(m.open) && m.open[i].held == 0 {
		through = m.open[i].seq
		i++
	}
	m.open = slices.Delete(m.open, 0, i)
	return through
}

// low is the time every partition not idle is past: the least
// watermark. It is not known while a partition not idle was not heard.
// With every partition idle, every observation may go.
func (m *merge) low() (time.Time, bool) {
	var low time.Time
	busy := false
	for p := range m.marks {
		if m.idle[p] {
			continue
		}
		if !m.heard[p] {
			return time.Time{}, false
		}
		if !busy || m.marks[p].Before(low) {
			low, busy = m.marks[p], true
		}
	}
	if !busy {
		return time.Unix(1<<62, 0), true
	}
	return low, true
}

// done counts an observation of message seq released.
func (m *merge) done(seq uint64) {
	for i := range m.open {
		if m.open[i].seq == seq {
			m.open[i].held--
			return
		}
	}
}

// eventOrder is the order in which correlations see events: by time,
// and events of the same second (CloudTrail's resolution) by tenant and
// id, so that a tie is decided the same way on every run, whichever
// partitions the events went through and whenever they were read; then
// by seq, for events without an id.
func eventOrder(a, b detect.EventRef) int {
	if c := a.Time.Compare(b.Time); c != 0 {
		return c
	}
	if c := strings.Compare(a.Tenant, b.Tenant); c != 0 {
		return c
	}
	if c := strings.Compare(a.ID, b.ID); c != 0 {
		return c
	}
	return cmp.Compare(a.Seq, b.Seq)
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
