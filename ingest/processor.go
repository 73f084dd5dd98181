package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nuid"

	"github.com/vigilsec/vigil/bus"
	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/ledger"
)

// A PartitionStore is where a Processor stores its partitions' events:
// the ClickHouse store, which keeps each ledger's events apart.
type PartitionStore interface {
	Append(ctx context.Context, ledger uint16, evs []*event.Event) error
}

// ProcessorOptions configure a Processor.
type ProcessorOptions struct {
	// Events is the topic Publishers publish to; Observations carries
	// the matches that feed correlations to the node keeping their
	// group. Both have the same number of partitions.
	Events, Observations *bus.Topic
	// Leases share the partitions among the process nodes.
	Leases *bus.Leases
	// Ledgers is the directory of the partitions' ledgers, one
	// directory each (p0, p1, …). Every process node must reach it (a
	// shared volume): a partition's ledger moves with the partition.
	Ledgers string
	// Ledger configures the ledgers: the signer and witnesses of their
	// checkpoints. Each is named Name-pN.
	Ledger ledger.Options
	Store  PartitionStore
	// Retention, if set, is applied to each partition by the node
	// holding it, every RetentionEvery (0 means a day); the Store must
	// be a RetainingStore.
	Retention      *Retention
	RetentionEvery time.Duration
	// Redactions, if set, are the redactions to apply to the partitions
	// this node holds, asked for every RedactEvery (0 means 10 seconds);
	// the Store must be a RedactingStore.
	Redactions  Redactions
	RedactEvery time.Duration
	// Enrich, if set, completes a partition's events before its ledger
	// takes them, in the order they are appended (as Pipeline.Enrich).
	Enrich func([]*event.Event)
	// Engine returns the rules to run, which may change.
	Engine func() *detect.Engine
	// Findings, if set, returns the detections that a partition's
	// events record, once they have their seqs: vigil's own records of
	// what it found outside the rules (a metric's anomaly). They go to
	// the Sink with the rules' detections.
	Findings func([]*event.Event) []detect.Detection
	Sink     detect.Sink
	// Fetch is how many messages are read at once; 0 means 64.
	Fetch  int
	Logger *slog.Logger
}

// A Processor is a process node: for each partition it holds the lease
// of, it reads the partition's events from the bus, appends them to the
// partition's ledger, stores them, runs the rules on them, and sends the
// matches that feed correlations to the partition that keeps their group
// (correlate.go).
//
// An event read from the bus is acknowledged once the ledger has it,
// with the bus position of its message as the append's batch key: the
// ledger is where a partition's position is kept, so a node that takes
// a partition over after a crash skips what the ledger holds and reads
// on from there. Matching follows the ledger, and storing follows in
// large batches; a mark file beside the ledger says how far both got,
// and what lies past it is stored and matched again when the partition
// is next opened. Stores
// collapse an event stored twice (ClickHouse's ReplacingMergeTree), and
// observations are published under ids that make the bus drop a second
// copy, so a correlation counts each match once.
type Processor struct {
	opts ProcessorOptions
	log  *slog.Logger
}

// NewProcessor returns a Processor.
func NewProcessor(opts ProcessorOptions) (*Processor, error) {
	if opts.Events == nil || opts.Observations == nil || opts.Leases == nil || opts.Store == nil || opts.Engine == nil || opts.Sink == nil || opts.Ledgers == "" {
		return nil, errors.New("ingest: a processor needs its topics, leases, ledgers, store, rules and sink")
	}
	if opts.Events.Partitions() != opts.Observations.Partitions() {
		return nil, fmt.Errorf("ingest: %d partitions of events but %d of observations", opts.Events.Partitions(), opts.Observations.Partitions())
	}
	if opts.Fetch <= 0 {
		opts.Fetch = 64
	}
	if _, ok := opts.Store.(RetainingStore); opts.Retention != nil && !ok {
		return nil, errors.New("ingest: the processor's store cannot apply retention")
	}
	if opts.RetentionEvery <= 0 {
		opts.RetentionEvery = 24 * time.Hour
	}
	if _, ok := opts.Store.(RedactingStore); opts.Redactions != nil && !ok {
		return nil, errors.New("ingest: the processor's store cannot redact")
	}
	if opts.RedactEvery <= 0 {
		opts.RedactEvery = 10 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Processor{opts: opts, log: opts.Logger}, nil
}

// Run processes this node's share of the partitions until ctx ends.
func (p *Processor) Run(ctx context.Context) {
	p.opts.Leases.Run(ctx, p.opts.Events.Partitions(), p.partition)
}

// PartitionLedger is the directory of partition part's ledger in the
// directory of ledgers.
func PartitionLedger(ledgers string, part int) string {
	return filepath.Join(ledgers, "p"+strconv.Itoa(part))
}

// PartitionSeq is the seq of the event at index of partition part's
// ledger: unique across partitions, so that an event is still named by
// its seq, and equal to the index for partition 0, the one ledger of a
// single node.
func PartitionSeq(part int, index int64) uint64 { return uint64(part)<<partitionShift | uint64(index) }

// SeqPartition splits a seq into its partition and ledger index.
func SeqPartition(seq uint64) (part int, index int64) {
	return int(seq >> partitionShift), int64(seq & (1<<partitionShift - 1))
}

// partitionShift places the partition above 2^40 records of its ledger
// (a million a second for 12 days; 3,900 a second, a 1M events/s
// deployment's share of 256 partitions, for 9 years), so that the seqs
// of up to 8,192 partitions stay below 2^53: the API's JSON numbers, which
// JavaScript and many JSON decoders read as doubles, carry them exactly.
const partitionShift = 40

// partition runs a partition's two readers while its lease is held.
func (p *Processor) partition(ctx context.Context, part int) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for _, run := range []struct {
		what string
		fn   func(context.Context, int) error
	}{{"events", p.events}, {"observations", p.correlate}} {
		wg.Go(func() {
			defer cancel()
			if err := run.fn(ctx, part); err != nil && ctx.Err() == nil {
				p.log.Error("processing a partition; it starts again", "partition", part, "of", run.what, "err", err)
			}
		})
	}
	wg.Wait()
}

// events reads partition part's events into its ledger, the store and
// detection, until ctx ends or the rules change.
func (p *Processor) events(ctx context.Context, part int) error {
	dir := PartitionLedger(p.opts.Ledgers, part)
	l, err := p.openLedger(ctx, dir, part)
	if err != nil {
		return err
	}
	defer l.Close()
	if rs, ok := p.opts.Store.(RetainingStore); ok && p.opts.Retention != nil {
		rctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			p.retain(rctx, rs, l, part)
		}()
		defer func() { stop(); <-done }() // before the ledger closes
	}
	after, err := busPosition(l)
	if err != nil {
		return err
	}
	e := p.opts.Engine()
	det := e.NewDetector()
	var high time.Time // the partition's watermark
	unstored := &storeBatch{part: part, dir: dir}
	if err := p.catchUp(ctx, l, part, det, &high, unstored); err != nil {
		return err
	}
	r, err := p.opts.Events.Read(ctx, part, after)
	if err != nil {
		return err
	}
	var rd *redactor
	if p.opts.Redactions != nil {
		rd = &redactor{src: p.opts.Redactions, every: p.opts.RedactEvery, part: part}
		defer rd.wait()
	}
	idle := 0 // reads in a row that found nothing
	for p.opts.Engine() == e {
		if err := p.redact(ctx, rd, l, unstored); err != nil {
			return err
		}
		msgs, readErr := r.Next(ctx, p.opts.Fetch, time.Second)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if len(msgs) == 0 && readErr == nil {
			// Nothing more came: what waits to be stored goes now.
			if err := p.store(ctx, unstored); err != nil {
				return err
			}
			if rd != nil && rd.waiting() {
				// Asked before the bus answers: what it took by then is
				// read.
				asked := time.Now()
				if caughtUp(ctx, r) {
					rd.read(asked)
				}
			}
			// A read finds nothing as well while the bus elects a new
			// leader for the partition; only a partition with nothing
			// pending is idle, or the correlations would go on without
			// what it has yet to read.
			if idle++; idle%idleEvery == 0 && caughtUp(ctx, r) {
				if err := p.idle(ctx, part, high); err != nil {
					p.log.Warn("telling the correlations a partition is idle", "partition", part, "err", err)
				}
			}
			continue
		}
		idle = 0
		var evs []*event.Event
		for _, m := range msgs {
			if m.Seq <= after {
				continue // the ledger has it: a node before this one read it
			}
			got, err := decodeEvents(m.Data)
			if err != nil {
				// Only a Publisher writes here, so this is damage on
				// the way; the message stays on the bus for a look.
				p.log.Error("a message on the bus is not a batch of events; skipped", "partition", part, "message", m.Seq, "id", m.ID, "err", err)
				continue
			}
			evs = append(evs, got...)
		}
		last := after
		if len(msgs) > 0 {
			last = msgs[len(msgs)-1].Seq
		}
		if last > after {
			if p.opts.Enrich != nil && len(evs) > 0 {
				p.opts.Enrich(evs)
			}
			first, err := l.AppendBatch(ctx, evs, busKey(last))
			if err != nil {
				return fmt.Errorf("partition %d: appending to the ledger: %w", part, err)
			}
			after = last
			for i, ev := range evs {
				ev.Seq = PartitionSeq(part, first+int64(i))
			}
			if err := p.deliver(ctx, part, first, evs, det, &high); err != nil {
				return err
			}
			unstored.add(evs, l.Size())
			if unstored.full() {
				if err := p.store(ctx, unstored); err != nil {
					return err
				}
			}
		}
		if rd != nil {
			for _, m := range msgs {
				rd.read(m.Time) // the ledger has it
			}
		}
		if readErr == nil {
			if readErr = r.Ack(ctx); readErr == nil {
				continue
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// The reader lost a message or its consumer (a server died, a
		// leader moved): a new one reads on from the ledger's position.
		p.log.Warn("reading the bus; reading again from the ledger's position", "partition", part, "of", "events", "err", readErr)
		if r, err = p.reread(ctx, p.opts.Events, part, after); err != nil {
			return err
		}
	}
	// The rules changed: what the old ones matched is stored before the
	// partition starts again with the new ones.
	return p.store(ctx, unstored)
}

// reread returns a new reader of partition part of topic t, from after
// position after, once the bus makes one.
func (p *Processor) reread(ctx context.Context, t *bus.Topic, part int, after uint64) (*bus.Reader, error) {
	var r *bus.Reader
	err := p.patiently(ctx, "reading the bus again", part, func() error {
		var err error
		r, err = t.Read(ctx, part, after)
		return err
	})
	return r, err
}

// openLedger opens a partition's ledger, waiting while the node that had
// the partition before still holds it.
func (p *Processor) openLedger(ctx context.Context, dir string, part int) (*ledger.Ledger, error) {
	opts := p.opts.Ledger
	opts.Logger = p.log
	if opts.Name != "" {
		opts.Name += "-p" + strconv.Itoa(part)
	}
	for {
		l, err := ledger.Open(dir, opts)
		if err == nil {
			return l, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("partition %d: opening its ledger: %w", part, err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// caughtUp says the bus confirms the reader has read every message of
// its partition.
func caughtUp(ctx context.Context, r *bus.Reader) bool {
	n, err := r.Pending(ctx)
	return err == nil && n == 0
}

// idleEvery is how many empty reads (of a second each) make a partition
// tell the correlations it is idle, and tell them again.
const idleEvery = 5

const busKeyPrefix = "bus "

func busKey(seq uint64) string { return busKeyPrefix + strconv.FormatUint(seq, 10) }

// busPosition is the bus position of the last message the ledger holds.
func busPosition(l *ledger.Ledger) (uint64, error) {
	key, ok, err := l.LastBatchKey()
	if err != nil || !ok {
		return 0, err
	}
	s, found := strings.CutPrefix(key, busKeyPrefix)
	if !found {
		return 0, fmt.Errorf("the ledger's last batch key %q is not a bus position", key)
	}
	seq, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("the ledger's last batch key %q is not a bus position", key)
	}
	return seq, nil
}

// catchUp stores and matches the events the ledger has past the mark:
// those a node that died had appended but maybe not stored or matched.
// They are taken batch by batch as they were appended, so that their
// observations go out under the ids they had.
func (p *Processor) catchUp(ctx context.Context, l *ledger.Ledger, part int, det *detect.Detector, high *time.Time, unstored *storeBatch) error {
	dir := PartitionLedger(p.opts.Ledgers, part)
	mark, err := readMark(dir)
	if err != nil {
		return err
	}
	size := l.Size()
	if mark >= size {
		return nil
	}
	var evs []*event.Event
	first := mark
	n := 0
	err = l.Scan(mark, size, func(rec ledger.Record) error {
		switch rec.Kind {
		case ledger.KindEvent:
			ev, err := ledger.DecodeEvent(rec.Content)
			if err != nil {
				return fmt.Errorf("record %d: %w", rec.Index, err)
			}
			ev.Seq = PartitionSeq(part, rec.Index)
			if len(evs) == 0 {
				first = rec.Index
			}
			evs = append(evs, ev)
		case ledger.KindMeta:
			n += len(evs)
			if err := p.deliver(ctx, part, first, evs, det, high); err != nil {
				return err
			}
			unstored.add(evs, rec.Index+1)
			evs = nil
			if unstored.full() {
				return p.store(ctx, unstored)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("partition %d: catching up from its ledger: %w", part, err)
	}
	p.log.Info("caught a partition up with its ledger", "partition", part, "from", mark, "events", n)
	unstored.size = size
	return p.store(ctx, unstored)
}

// deliver runs the rules on evs, which the ledger has from index first
// on, and publishes their observations. It retries the bus until it
// takes them or ctx ends: what follows in the partition waits for them.
//
// Every partition of observations gets a message, with or without
// observations, that carries the partition's watermark: the latest event
// time it has matched, *high, which deliver advances.
func (p *Processor) deliver(ctx context.Context, part int, first int64, evs []*event.Event, det *detect.Detector, high *time.Time) error {
	if len(evs) == 0 {
		return nil
	}
	var ds []detect.Detection
	bodies := make([][]byte, p.opts.Observations.Partitions())
	for _, ev := range evs {
		if ev.Time.After(*high) {
			*high = ev.Time
		}
		ds = append(ds, det.Split(ev, func(o detect.Observation) {
			q := p.opts.Observations.Partition(o.Key())
			b, err := json.Marshal(o)
			if err != nil {
				return // only strings, times and numbers: cannot fail
			}
			bodies[q] = append(append(bodies[q], b...), '\n')
		})...)
	}
	if p.opts.Findings != nil {
		ds = append(ds, p.opts.Findings(evs)...)
	}
	if len(ds) > 0 {
		p.opts.Sink.Detected(ds)
	}
	msgs := make([]bus.Msg, len(bodies))
	for q, body := range bodies {
		msgs[q] = bus.Msg{Partition: q, ID: fmt.Sprintf("p%d %d %d", part, first, q), Data: append(markLine(part, *high, false), body...)}
	}
	return p.patiently(ctx, "publishing observations", part, func() error { return p.opts.Observations.Publish(ctx, msgs) })
}

// A storeBatch gathers a partition's events, matched and not yet
// stored, into one insert: ClickHouse takes a few large inserts far
// better than many small ones, each of which becomes a part on disk to
// merge.
type storeBatch struct {
	part  int
	dir   string
	evs   []*event.Event
	since time.Time // when the oldest came
	// size is the ledger's size through the last of evs: the mark once
	// they are stored; marked is the mark written last.
	size, marked int64
}

const (
	// storeEvents and storeEvery bound a storeBatch: it is stored when
	// it holds this many events or its oldest waited this long (or the
	// partition has nothing more to read).
	storeEvents = 50_000
	storeEvery  = 2 * time.Second
)

func (b *storeBatch) add(evs []*event.Event, size int64) {
	if len(b.evs) == 0 {
		b.since = time.Now()
	}
	b.evs = append(b.evs, evs...)
	b.size = size
}

func (b *storeBatch) full() bool {
	return len(b.evs) >= storeEvents || (len(b.evs) > 0 && time.Since(b.since) >= storeEvery)
}

// store stores the batch, retrying until the store takes it or ctx
// ends, and moves the mark past it.
func (p *Processor) store(ctx context.Context, b *storeBatch) error {
	if len(b.evs) > 0 {
		if err := p.patiently(ctx, "storing events", b.part, func() error { return p.opts.Store.Append(ctx, uint16(b.part), b.evs) }); err != nil {
			return err
		}
		b.evs = nil
	}
	if b.size == b.marked {
		return nil
	}
	if err := writeMark(b.dir, b.size); err != nil {
		return err
	}
	b.marked = b.size
	return nil
}

// idle tells every partition of observations that partition part has
// nothing to match, so that they do not wait for it.
func (p *Processor) idle(ctx context.Context, part int, high time.Time) error {
	msgs := make([]bus.Msg, p.opts.Observations.Partitions())
	for q := range msgs {
		msgs[q] = bus.Msg{Partition: q, ID: nuid.Next(), Data: markLine(part, high, true)}
	}
	return p.opts.Observations.Publish(ctx, msgs)
}

// patiently retries op until it succeeds or ctx ends, logging failures.
func (p *Processor) patiently(ctx context.Context, what string, part int, op func() error) error {
	wait := 100 * time.Millisecond
	for {
		err := op()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		p.log.Warn(what+"; retrying", "partition", part, "err", err, "in", wait)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// The mark file says up to which ledger size the events were stored and
// matched. It may lag behind the truth, never run ahead of it: it is
// written after what it marks.
const markFile = "processed"

func readMark(dir string) (int64, error) {
	b, err := os.ReadFile(filepath.Join(dir, markFile))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("reading the processed mark: %w", err)
	}
	n, err := strconv.ParseInt(string(bytes.TrimSpace(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("the processed mark %s: %w", filepath.Join(dir, markFile), err)
	}
	return n, nil
}

// PartitionStored returns the seq below which the store holds every
// event of partition part, by the mark its process node keeps in the
// ledgers' directory: where a reader of new events (a search-triggered
// playbook) may read up to on any node.
func PartitionStored(ledgers string, part int) (uint64, error) {
	mark, err := readMark(PartitionLedger(ledgers, part))
	if err != nil {
		return 0, fmt.Errorf("partition %d: %w", part, err)
	}
	return PartitionSeq(part, mark), nil
}

func writeMark(dir string, size int64) error {
	tmp := filepath.Join(dir, markFile+".tmp")
	if err := os.WriteFile(tmp, []byte(strconv.FormatInt(size, 10)+"\n"), 0o600); err != nil {
		return fmt.Errorf("writing the processed mark: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, markFile)); err != nil {
		return fmt.Errorf("writing the processed mark: %w", err)
	}
	return nil
}
