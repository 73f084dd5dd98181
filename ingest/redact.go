package ingest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vigilsec/vigil/ledger"
	"github.com/vigilsec/vigil/query"
)

// A Redaction asks a scale-out to erase the content of the events a
// query selects: from each partition's ledger (their hashes kept, the
// reason recorded) and from the store. Each partition's node applies it
// once its partition has taken every event sent before Requested, so
// that an event acknowledged before the request is erased even if it
// was still on the bus then; events stored since, up to when the
// partition applies it, are erased too.
type Redaction struct {
	ID string
	// Query is the search's text: a filter, without commands, since
	// each partition runs it on its own events (a head would keep so
	// many of each partition's).
	Query     string
	Reason    string
	Requested time.Time
}

// Redactions are the redactions filed for the partitions (the metadata
// database's, shared by the nodes).
type Redactions interface {
	// Pending returns the redactions partition part has yet to apply,
	// oldest first.
	Pending(ctx context.Context, part int) ([]Redaction, error)
	// Applied records that partition part applied redaction id, erasing
	// erased events.
	Applied(ctx context.Context, id string, part int, erased int64) error
	// Failed records why partition part could not apply redaction id;
	// the node tries again.
	Failed(ctx context.Context, id string, part int, reason string) error
}

// A RedactingStore is a PartitionStore that can find events by a query
// and delete them: the ClickHouse store.
type RedactingStore interface {
	PartitionStore
	// Seqs returns the seqs of the events req selects.
	Seqs(ctx context.Context, req query.Request) ([]uint64, error)
	// Delete deletes the events of seqs.
	Delete(ctx context.Context, seqs []uint64) error
}

// ParseRedaction parses a redaction's query: a filter only, since each
// partition applies it to its own events.
func ParseRedaction(text string) (*query.Query, error) {
	q, err := query.Parse(text)
	if err != nil {
		return nil, err
	}
	if len(q.Pipes) > 0 {
		return nil, errors.New("a scale-out redacts the events a filter selects: leave out the commands (| …), which each partition would apply to its own events alone")
	}
	return q, nil
}

// eraseRedacted erases from partition part's ledger l the events of the
// partition that r's query selects, all of which rs must hold (the
// events up to the ledger's end stored), and returns their seqs, for
// deleteRedacted to delete from the store next. In that order, a crash
// between the two leaves events erased from the ledger but still in the
// store, which applying r again deletes (the ledger leaves a redacted
// record as it is); never events in the store that the ledger no longer
// proves.
func eraseRedacted(ctx context.Context, rs RedactingStore, l *ledger.Ledger, part int, r Redaction) ([]uint64, error) {
	q, err := ParseRedaction(r.Query)
	if err != nil {
		return nil, fmt.Errorf("redaction %s: %w", r.ID, err)
	}
	size := l.Size()
	if size == 0 {
		return nil, nil
	}
	// The system tenant's records, the audit trail, are no scope's
	// events, so no redaction's (query.Scope).
	seqs, err := rs.Seqs(ctx, query.Request{Query: q, Scope: query.Scope{All: true},
		SeqRanges: [][2]uint64{{PartitionSeq(part, 0), PartitionSeq(part, size-1)}}})
	if err != nil {
		return nil, fmt.Errorf("partition %d: finding the events of redaction %s: %w", part, r.ID, err)
	}
	indexes := make([]int64, 0, len(seqs))
	for _, seq := range seqs {
		p, index := SeqPartition(seq)
		if p != part || index >= size {
			return nil, fmt.Errorf("partition %d: the store has seq %d outside the partition's ledger", part, seq)
		}
		// A record the ledger erased already (a redaction applied twice,
		// retention) is left as it is, and its copy in the store goes.
		indexes = append(indexes, index)
	}
	if err := l.Redact(ctx, indexes, r.Reason); err != nil {
		return nil, fmt.Errorf("partition %d: erasing the events of redaction %s from the ledger: %w", part, r.ID, err)
	}
	return seqs, nil
}

// deleteRedacted deletes from the store the events eraseRedacted erased.
func deleteRedacted(ctx context.Context, rs RedactingStore, part int, r Redaction, seqs []uint64) error {
	if len(seqs) == 0 {
		return nil
	}
	if err := rs.Delete(ctx, seqs); err != nil {
		return fmt.Errorf("partition %d: deleting the events of redaction %s from the store: %w", part, r.ID, err)
	}
	return nil
}

// clockSkew is how far the clocks of the machine that files a
// redaction, the NATS servers and the process nodes may disagree: a
// partition applies a redaction once it has read what the bus took a
// little past its time.
const clockSkew = 5 * time.Second

// redactor holds the redactions a partition's node has yet to apply,
// and how far the partition has read the bus. Only the partition's loop
// uses it.
type redactor struct {
	src   Redactions
	every time.Duration
	part  int
	// next is when to ask src again; pending what it said.
	next    time.Time
	pending []Redaction
	// readTo is a time by which every message the bus took for the
	// partition is in its ledger: the latest read's, or when the bus
	// said none was left to read.
	readTo time.Time
	// deleting, while the store deletes a redaction's events in the
	// background, is closed when it is done.
	deleting chan struct{}
}

// busy says a redaction's events are being deleted from the store. When
// the deletion is over, the pending are asked for again at once: the
// list held may still have the redaction just applied.
func (rd *redactor) busy() bool {
	if rd.deleting == nil {
		return false
	}
	select {
	case <-rd.deleting:
		rd.deleting, rd.next = nil, time.Time{}
		return false
	default:
		return true
	}
}

// wait waits for a deletion under way, if any.
func (rd *redactor) wait() {
	if rd.deleting != nil {
		<-rd.deleting
	}
}

// read notes that the partition's ledger has every message up to one
// the bus took at t.
func (rd *redactor) read(t time.Time) {
	if t.After(rd.readTo) {
		rd.readTo = t
	}
}

// waiting says some pending redaction waits for the partition to read
// further: worth asking the bus whether anything is left.
func (rd *redactor) waiting() bool {
	for _, r := range rd.pending {
		if !rd.readTo.After(r.Requested.Add(clockSkew)) {
			return true
		}
	}
	return false
}

// due returns the pending redactions the partition has read far enough
// to apply, asking src for them every rd.every.
func (rd *redactor) due(ctx context.Context, now time.Time, log func(string, ...any)) []Redaction {
	if !now.Before(rd.next) {
		rd.next = now.Add(rd.every)
		rs, err := rd.src.Pending(ctx, rd.part)
		if err != nil {
			log("reading the pending redactions; asking again later", "partition", rd.part, "err", err)
		} else {
			rd.pending = rs
		}
	}
	var due []Redaction
	for _, r := range rd.pending {
		if rd.readTo.After(r.Requested.Add(clockSkew)) {
			due = append(due, r)
		}
	}
	return due
}

// done drops redaction id from the pending.
func (rd *redactor) done(id string) {
	for i, r := range rd.pending {
		if r.ID == id {
			rd.pending = append(rd.pending[:i:i], rd.pending[i+1:]...)
			return
		}
	}
}

// redact applies a redaction partition part is due to apply, if any
// (rd nil: none are asked for). What waits to be stored is stored first,
// so that the store has every event the ledger has; the partition's
// matching events are found and erased from its ledger here, between
// reads of the bus, so that no event comes in meanwhile, and then
// deleted from the store in the background, since a ClickHouse mutation
// may take minutes and the partition reads on meanwhile (the events
// deleted are all stored already, and later ones have other seqs). A
// redaction is recorded applied once its events are deleted; one that
// fails is recorded failed, and tried again when the node next asks for
// the pending. It returns only the error of storing, which ends the
// partition's run as it would in the loop.
func (p *Processor) redact(ctx context.Context, rd *redactor, l *ledger.Ledger, unstored *storeBatch) error {
	if rd == nil || rd.busy() {
		return nil
	}
	due := rd.due(ctx, time.Now(), p.log.Warn)
	if len(due) == 0 {
		return nil
	}
	if err := p.store(ctx, unstored); err != nil {
		return err
	}
	rs := p.opts.Store.(RedactingStore)
	r := due[0]
	// Dropped either way: a failure comes back with the pending.
	rd.done(r.ID)
	failed := func(err error) {
		if ctx.Err() != nil {
			return
		}
		p.log.Error("applying a redaction to a partition; it is tried again", "partition", rd.part, "redaction", r.ID, "err", err)
		if err := rd.src.Failed(ctx, r.ID, rd.part, err.Error()); err != nil {
			p.log.Warn("recording a redaction's failure", "partition", rd.part, "redaction", r.ID, "err", err)
		}
	}
	seqs, err := eraseRedacted(ctx, rs, l, rd.part, r)
	if err != nil {
		failed(err)
		return nil
	}
	done := make(chan struct{})
	rd.deleting = done
	go func() {
		defer close(done)
		if err := deleteRedacted(ctx, rs, rd.part, r, seqs); err != nil {
			failed(err)
			return
		}
		p.log.Info("redaction applied", "partition", rd.part, "redaction", r.ID, "erased", len(seqs))
		// Recorded until the record takes: applied again, the redaction
		// would find nothing more to erase, and its record would say 0.
		// (It does if the node stops first.)
		for {
			err := rd.src.Applied(ctx, r.ID, rd.part, int64(len(seqs)))
			if err == nil {
				return
			}
			p.log.Warn("recording a redaction applied; trying again", "partition", rd.part, "redaction", r.ID, "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(rd.every):
			}
		}
	}()
	return nil
}
