package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/vigilsec/vigil/detect"
)

// flushEvery is how often the correlation windows that end without
// another event (an upper bound on a count) are decided.
const flushEvery = 30 * time.Second

// correlate keeps the correlation state of the groups that hash to
// partition part: it reads the partition's observations, in order, and
// hands the correlations they complete to the sink, until ctx ends or
// the rules change.
//
// The state lives in memory and is rebuilt when the partition moves: the
// observations the partition's consumer acknowledged within the longest
// timespan of the rules are read again, without alerting.
func (p *Processor) correlate(ctx context.Context, part int) error {
	e := p.opts.Engine()
	c := e.NewCorrelator()
	acked, err := p.opts.Observations.Acked(ctx, part)
	if err != nil {
		return err
	}
	if span := e.MaxTimespan(); span > 0 && acked > 0 {
		if err := p.rebuild(ctx, part, c, span, acked); err != nil {
			return err
		}
	}
	r, err := p.opts.Observations.Read(ctx, part, acked)
	if err != nil {
		return err
	}
	flushed := time.Now()
	for p.opts.Engine() == e {
		msgs, err := r.Next(ctx, p.opts.Fetch, time.Second)
		if err != nil {
			return err
		}
		var ds []detect.Detection
		for _, m := range msgs {
			ds = append(ds, p.observe(c, part, m.Seq, m.Data)...)
		}
		if now := time.Now(); now.Sub(flushed) >= flushEvery {
			ds = append(ds, c.FlushAt(now)...)
			flushed = now
		}
		if len(ds) > 0 {
			p.opts.Sink.Detected(ds)
		}
		if err := r.Ack(ctx); err != nil {
			return err
		}
	}
	return nil
}

// rebuild feeds c, quietly, the observations of partition part up to
// stream position acked that were published within span (and an hour)
// of now.
func (p *Processor) rebuild(ctx context.Context, part int, c *detect.Correlator, span time.Duration, acked uint64) error {
	r, err := p.opts.Observations.ReadSince(ctx, part, time.Now().Add(-span-time.Hour))
	if err != nil {
		return err
	}
	n := 0
	// An empty read says nothing came within its wait, not that nothing
	// is left (a stream that just changed leader answers slowly), so the
	// replay reads on until it reaches acked.
	empty := 0
	for seen := uint64(0); seen < acked; {
		msgs, err := r.Next(ctx, p.opts.Fetch, time.Second)
		if err != nil {
			return fmt.Errorf("partition %d: rebuilding correlation state: %w", part, err)
		}
		if len(msgs) == 0 {
			if empty++; empty == 30 {
				return fmt.Errorf("partition %d: rebuilding correlation state: read up to %d of %d, then nothing for 30s", part, seen, acked)
			}
			continue
		}
		empty = 0
		for _, m := range msgs {
			seen = m.Seq
			if m.Seq > acked {
				break
			}
			p.observe(c, part, m.Seq, m.Data)
			n++
		}
	}
	p.log.Info("rebuilt a partition's correlation state", "partition", part, "messages", n, "groups", c.Groups())
	return nil
}

// observe feeds c the observations of one message and returns the
// correlations they complete.
func (p *Processor) observe(c *detect.Correlator, part int, seq uint64, data []byte) []detect.Detection {
	var ds []detect.Detection
	for line := range bytes.Lines(data) {
		var o detect.Observation
		if err := json.Unmarshal(line, &o); err != nil {
			p.log.Error("an observation on the bus is not JSON; skipped", "partition", part, "message", seq, "err", err)
			continue
		}
		got, err := c.Observe(o)
		if err != nil {
			// The node that matched runs other rules: a change that has
			// not reached every node yet.
			p.log.Warn("an observation of rules this node does not run; skipped", "partition", part, "message", seq, "err", err)
			continue
		}
		ds = append(ds, got...)
	}
	return ds
}
