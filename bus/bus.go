// Package bus is the durable bus of a scaled-out vigil: NATS JetStream
// streams of partitioned messages between the nodes that accept events
// and the nodes that process them, and the leases that say which node
// processes which partition.
//
// A Topic is one stream, replicated across the JetStream cluster, with a
// subject per partition. Publishing returns once the stream's replicas
// have the message, which is what makes it safe to acknowledge the
// events it carries; a message id makes a publish retried after a lost
// answer land once. A partition is read in order through its durable
// consumer by one node at a time: the holder of its lease (leases.go).
//
// The bus carries bytes. What they mean, and where a partition's
// position is kept durably, is the reader's business.
package bus

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TopicOptions describe a Topic.
type TopicOptions struct {
	// Name names the stream and the subjects: stream NAME, subjects
	// NAME.0 … NAME.<Partitions-1>. Letters, digits, '-' and '_'.
	Name       string
	Partitions int // 0 means 16
	Replicas   int // copies of each message; 0 means 3
	// MaxAge is how long messages are kept after they are read: long
	// enough to rebuild what a reader keeps in memory (correlation
	// windows) and to replay after an outage. 0 means 72 hours.
	MaxAge time.Duration
	// Duplicates is how long a message id is remembered, so that a
	// publish retried within it is stored once. 0 means 10 minutes.
	Duplicates time.Duration
}

// publishTimeout bounds the wait for a publish's acknowledgement.
const publishTimeout = 10 * time.Second

// A Topic is a partitioned, replicated JetStream stream.
type Topic struct {
	js   jetstream.JetStream
	opts TopicOptions
	// maxPayload is the largest message the servers take.
	maxPayload int
}

// OpenTopic creates the topic's stream, or updates its limits, and
// returns it.
func OpenTopic(ctx context.Context, nc *nats.Conn, opts TopicOptions) (*Topic, error) {
	if opts.Name == "" {
		return nil, errors.New("bus: a topic needs a name")
	}
	if opts.Partitions <= 0 {
		opts.Partitions = 16
	}
	if opts.Replicas <= 0 {
		opts.Replicas = 3
	}
	if opts.MaxAge <= 0 {
		opts.MaxAge = 72 * time.Hour
	}
	if opts.Duplicates <= 0 {
		opts.Duplicates = 10 * time.Minute
	}
	// A publish whose acknowledgement was lost (the server answering it
	// went away) fails after a while rather than never: the caller sends
	// it again under the same id.
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(publishTimeout))
	if err != nil {
		return nil, fmt.Errorf("bus: %w", err)
	}
	_, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        opts.Name,
		Description: "vigil: " + strconv.Itoa(opts.Partitions) + " partitions",
		Subjects:    []string{opts.Name + ".*"},
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      opts.MaxAge,
		Duplicates:  opts.Duplicates,
		Replicas:    opts.Replicas,
		Storage:     jetstream.FileStorage,
		Compression: jetstream.S2Compression,
		Discard:     jetstream.DiscardOld,
	})
	if err != nil {
		return nil, fmt.Errorf("bus: creating stream %s: %w", opts.Name, err)
	}
	return &Topic{js: js, opts: opts, maxPayload: int(nc.MaxPayload())}, nil
}

// Partitions is the topic's number of partitions.
func (t *Topic) Partitions() int { return t.opts.Partitions }

// MaxPayload is the largest message the servers take.
func (t *Topic) MaxPayload() int { return t.maxPayload }

// Partition returns the partition of a key: the same key always goes to
// the same partition.
func (t *Topic) Partition(key []byte) int {
	h := fnv.New64a()
	h.Write(key)
	return int(h.Sum64() % uint64(t.opts.Partitions))
}

func (t *Topic) subject(p int) string { return t.opts.Name + "." + strconv.Itoa(p) }

// A Msg is a message to publish, or one read.
type Msg struct {
	Partition int
	// ID identifies the message for deduplication: a message published
	// again with the ID of one stored within the Duplicates window is
	// acknowledged and not stored again.
	ID   string
	Data []byte
	// Seq is the message's position in the stream, and Time when it was
	// stored; set on messages read.
	Seq  uint64
	Time time.Time
}

// Publish publishes msgs and returns once every one is stored on the
// stream's replicas, or the first error. After an error, some of msgs
// may be stored: publishing them again with the same IDs stores the rest
// and no message twice.
func (t *Topic) Publish(ctx context.Context, msgs []Msg) error {
	futures := make([]jetstream.PubAckFuture, 0, len(msgs))
	for _, m := range msgs {
		if m.Partition < 0 || m.Partition >= t.opts.Partitions {
			return fmt.Errorf("bus: %s has no partition %d", t.opts.Name, m.Partition)
		}
		if len(m.Data) > t.maxPayload {
			return fmt.Errorf("bus: a message of %d bytes is larger than the servers take (%d)", len(m.Data), t.maxPayload)
		}
		nm := &nats.Msg{Subject: t.subject(m.Partition), Data: m.Data, Header: nats.Header{}}
		f, err := t.js.PublishMsgAsync(nm, jetstream.WithMsgID(m.ID))
		if err != nil {
			return fmt.Errorf("bus: publishing to %s: %w", nm.Subject, err)
		}
		futures = append(futures, f)
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return fmt.Errorf("bus: publishing to %s: %w", f.Msg().Subject, err)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// consumerName is the durable consumer of partition p.
func (t *Topic) consumerName(p int) string { return t.opts.Name + "-p" + strconv.Itoa(p) }

// Acked returns how far partition p's durable consumer was acknowledged:
// the stream position of the last message whose reading was confirmed,
// 0 if none.
func (t *Topic) Acked(ctx context.Context, p int) (uint64, error) {
	c, err := t.js.Consumer(ctx, t.opts.Name, t.consumerName(p))
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("bus: consumer of %s: %w", t.subject(p), err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("bus: consumer of %s: %w", t.subject(p), err)
	}
	return info.AckFloor.Stream, nil
}

// A Reader reads one partition in order.
type Reader struct {
	t *Topic
	p int
	c jetstream.Consumer
	// unacked are the messages read and not yet acknowledged, in order.
	unacked []unacked
	// durable says Ack confirms to the durable consumer.
	durable bool
	// delivered is the consumer sequence of the last message read: a
	// durable reader checks that none is skipped.
	delivered uint64
}

// ErrGap is returned by Next when a message the servers delivered did
// not arrive (a pull that expired while it was on its way). The reader
// must be made anew from the caller's position: acknowledging what came
// after would acknowledge the lost message too.
var ErrGap = errors.New("bus: a message was lost on its way; read again from the last position kept")

// Read returns a reader of partition p from the message after stream
// position after, through the partition's durable consumer, which is set
// to start there: the caller knows durably how far it got (a ledger's
// batch key), and the consumer's acknowledgements follow it. Only one
// reader of a partition may run at a time (see Leases).
func (t *Topic) Read(ctx context.Context, p int, after uint64) (*Reader, error) {
	name := t.consumerName(p)
	// The consumer is made anew so that it starts where the caller says,
	// without waiting for the messages a dead reader left unacknowledged
	// to time out.
	if err := t.js.DeleteConsumer(ctx, t.opts.Name, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, fmt.Errorf("bus: resetting the consumer of %s: %w", t.subject(p), err)
	}
	cfg := jetstream.ConsumerConfig{
		Durable:       name,
		FilterSubject: t.subject(p),
		AckPolicy:     jetstream.AckAllPolicy,
		AckWait:       time.Minute,
		MaxAckPending: -1,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		Replicas:      t.opts.Replicas,
	}
	if after > 0 {
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = after + 1
	}
	c, err := t.js.CreateOrUpdateConsumer(ctx, t.opts.Name, cfg)
	if err != nil {
		return nil, fmt.Errorf("bus: consumer of %s: %w", t.subject(p), err)
	}
	return &Reader{t: t, p: p, c: c, durable: true}, nil
}

// ReadSince returns a reader of partition p from the first message
// stored at or after since, which acknowledges nothing: for rebuilding
// state from what a durable reader already read.
func (t *Topic) ReadSince(ctx context.Context, p int, since time.Time) (*Reader, error) {
	c, err := t.js.OrderedConsumer(ctx, t.opts.Name, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{t.subject(p)},
		DeliverPolicy:  jetstream.DeliverByStartTimePolicy,
		OptStartTime:   &since,
	})
	if err != nil {
		return nil, fmt.Errorf("bus: replaying %s: %w", t.subject(p), err)
	}
	return &Reader{t: t, p: p, c: c}, nil
}

// ReadAfter returns a reader of partition p from after stream position
// after, which acknowledges nothing, as ReadSince.
func (t *Topic) ReadAfter(ctx context.Context, p int, after uint64) (*Reader, error) {
	c, err := t.js.OrderedConsumer(ctx, t.opts.Name, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{t.subject(p)},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    after + 1,
	})
	if err != nil {
		return nil, fmt.Errorf("bus: replaying %s: %w", t.subject(p), err)
	}
	return &Reader{t: t, p: p, c: c}, nil
}

// Next returns up to max messages, in stream order, waiting at most wait
// for the first; none when none came. After an error, the messages it
// returns were read in order but the reader must not be used again.
func (r *Reader) Next(ctx context.Context, max int, wait time.Duration) ([]Msg, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	batch, err := r.c.Fetch(max, jetstream.FetchMaxWait(wait))
	if err != nil {
		return nil, fmt.Errorf("bus: reading %s: %w", r.t.subject(r.p), err)
	}
	var out []Msg
	for m := range batch.Messages() {
		md, err := m.Metadata()
		if err != nil {
			return nil, fmt.Errorf("bus: reading %s: %w", r.t.subject(r.p), err)
		}
		if r.durable {
			// A consumer made by Read numbers what it delivers from 1,
			// redeliveries included.
			if md.Sequence.Consumer != r.delivered+1 {
				return out, fmt.Errorf("%w (%s: delivery %d after %d)", ErrGap, r.t.subject(r.p), md.Sequence.Consumer, r.delivered)
			}
			r.delivered = md.Sequence.Consumer
		}
		out = append(out, Msg{Partition: r.p, ID: m.Headers().Get(jetstream.MsgIDHeader), Data: m.Data(), Seq: md.Sequence.Stream, Time: md.Timestamp})
		if r.durable {
			r.unacked = append(r.unacked, unacked{m, md.Sequence.Stream})
		}
	}
	if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
		return out, fmt.Errorf("bus: reading %s: %w", r.t.subject(r.p), err)
	}
	return out, nil
}

// Pending is how many messages of the partition are still to be read:
// those the servers have yet to deliver, and those they delivered that
// did not come (on their way, or lost with a pull that expired, which
// the servers deliver again after the consumer's AckWait). A reader
// with none pending has read everything the partition holds.
func (r *Reader) Pending(ctx context.Context) (uint64, error) {
	info, err := r.c.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("bus: consumer of %s: %w", r.t.subject(r.p), err)
	}
	n := info.NumPending
	if r.durable && info.Delivered.Consumer > r.delivered {
		n += info.Delivered.Consumer - r.delivered
	}
	return n, nil
}

// Ack acknowledges every message Next returned so far, and waits for the
// servers to confirm it.
func (r *Reader) Ack(ctx context.Context) error {
	if len(r.unacked) == 0 {
		return nil
	}
	return r.AckThrough(ctx, r.unacked[len(r.unacked)-1].seq)
}

type unacked struct {
	msg jetstream.Msg
	seq uint64
}

// AckThrough acknowledges the messages Next returned up to stream
// position seq, and waits for the servers to confirm it: for a reader
// that finishes messages out of order and acknowledges what it finished
// all of.
func (r *Reader) AckThrough(ctx context.Context, seq uint64) error {
	if !r.durable {
		return nil
	}
	n := 0
	for n < len(r.unacked) && r.unacked[n].seq <= seq {
		n++
	}
	if n == 0 {
		return nil
	}
	// The consumer acknowledges all before a message with it.
	if err := r.unacked[n-1].msg.DoubleAck(ctx); err != nil {
		return fmt.Errorf("bus: acknowledging %s: %w", r.t.subject(r.p), err)
	}
	r.unacked = r.unacked[n:]
	return nil
}

// Lag is how many messages of partition p its durable consumer has not
// had acknowledged: those not yet delivered and those delivered but not
// acknowledged. A partition never read lags by every message it holds.
func (t *Topic) Lag(ctx context.Context, p int) (uint64, error) {
	c, err := t.js.Consumer(ctx, t.opts.Name, t.consumerName(p))
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		s, err := t.js.Stream(ctx, t.opts.Name)
		if err != nil {
			return 0, fmt.Errorf("bus: stream %s: %w", t.opts.Name, err)
		}
		info, err := s.Info(ctx, jetstream.WithSubjectFilter(t.subject(p)))
		if err != nil {
			return 0, fmt.Errorf("bus: stream %s: %w", t.opts.Name, err)
		}
		return info.State.Subjects[t.subject(p)], nil
	}
	if err != nil {
		return 0, fmt.Errorf("bus: consumer of %s: %w", t.subject(p), err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("bus: consumer of %s: %w", t.subject(p), err)
	}
	return info.NumPending + uint64(info.NumAckPending), nil
}
