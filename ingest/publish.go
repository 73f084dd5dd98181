package ingest

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"

	"github.com/nats-io/nuid"

	"github.com/vigilsec/vigil/bus"
	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/ledger"
	"github.com/vigilsec/vigil/store"
)

// A Publisher is the Acceptor of an ingest node: it publishes each batch
// to the bus, partitioned, and acknowledges it once the bus's replicas
// have it. Process nodes take it from there (see Processor).
//
// An event's partition is a hash of its tenant and its correlation key:
// its principal, else its source address, else its host. The events of
// one principal are thus read in order by one node, and its ledger's
// records of them lie together.
type Publisher struct {
	Events *bus.Topic
	// Quarantine stores the records that could not be parsed, which are
	// not events and do not go through the bus.
	Quarantine func(ctx context.Context, qs []store.Quarantined) error
	Logger     *slog.Logger
}

var _ Acceptor = (*Publisher)(nil)

// Accept implements Acceptor. A batch with an ID sent again within the
// bus's Duplicates window is stored once.
func (pub *Publisher) Accept(ctx context.Context, b Batch) error {
	evs := slices.Clone(b.Events)
	slices.SortStableFunc(evs, func(a, b *event.Event) int { return a.Time.Compare(b.Time) })
	msgs, err := pub.messages(b, evs)
	if err != nil {
		return err
	}
	if err := pub.Events.Publish(ctx, msgs); err != nil {
		return err
	}
	if len(b.Quarantined) > 0 {
		var err error
		if pub.Quarantine == nil {
			err = errors.New("no quarantine store")
		} else {
			err = pub.Quarantine(ctx, b.Quarantined)
		}
		if err != nil {
			// The events are acknowledged; the records that failed to
			// parse have no other copy, so say so.
			pub.logger().Error("storing quarantined records", "source", b.Source, "records", len(b.Quarantined), "err", err)
		}
	}
	return nil
}

func (pub *Publisher) logger() *slog.Logger {
	if pub.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return pub.Logger
}

// messages encodes evs as messages, one or more per partition, each at
// most as large as the bus takes.
func (pub *Publisher) messages(b Batch, evs []*event.Event) ([]bus.Msg, error) {
	id := b.ID
	if id == "" {
		id = nuid.Next()
	}
	id = b.Source + " " + id
	parts := map[int][]*event.Event{}
	var order []int
	for _, e := range evs {
		p := pub.Events.Partition(PartitionKey(e))
		if parts[p] == nil {
			order = append(order, p)
		}
		parts[p] = append(parts[p], e)
	}
	limit := pub.Events.MaxPayload()
	var msgs []bus.Msg
	for _, p := range order {
		var data []byte
		n := 0
		flush := func() {
			msgs = append(msgs, bus.Msg{Partition: p, ID: id + " " + strconv.Itoa(p) + " " + strconv.Itoa(n), Data: data})
			data = nil
			n++
		}
		for _, e := range parts[p] {
			enc := ledger.EncodeEvent(e)
			size := binary.MaxVarintLen64 + len(enc)
			if size > limit {
				return nil, fmt.Errorf("an event of %d bytes is larger than the bus takes (%d)", len(enc), limit)
			}
			if len(data)+size > limit {
				flush()
			}
			data = binary.AppendUvarint(data, uint64(len(enc)))
			data = append(data, enc...)
		}
		flush()
	}
	return msgs, nil
}

// PartitionKey is what decides an event's partition: its tenant and its
// correlation key (principal, else source address, else host).
func PartitionKey(e *event.Event) []byte {
	key := append([]byte(e.Tenant), 0)
	switch {
	case e.Actor.ID != "":
		key = append(key, e.Actor.ID...)
	case e.SrcIP.IsValid():
		key = e.SrcIP.AppendTo(key)
	default:
		key = append(key, e.Host...)
	}
	return key
}

// decodeEvents decodes a message of events published by a Publisher.
func decodeEvents(data []byte) ([]*event.Event, error) {
	var evs []*event.Event
	for len(data) > 0 {
		n, k := binary.Uvarint(data)
		if k <= 0 || n > uint64(len(data)-k) {
			return nil, fmt.Errorf("event %d: truncated", len(evs))
		}
		e, err := ledger.DecodeEvent(data[k : k+int(n)])
		if err != nil {
			return nil, fmt.Errorf("event %d: %w", len(evs), err)
		}
		evs = append(evs, e)
		data = data[k+int(n):]
	}
	return evs, nil
}
