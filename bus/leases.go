package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// LeaseOptions describe a set of Leases.
type LeaseOptions struct {
	// Name names the two key-value buckets: NAME-leases and NAME-nodes.
	Name string
	// Node names this node; unique among the nodes sharing the leases.
	Node string
	// TTL is how long a lease, and a node's membership, last unrenewed:
	// how long the partitions of a node that died wait for another.
	// 0 means 10 seconds.
	TTL      time.Duration
	Replicas int // 0 means 3
	Logger   *slog.Logger
}

// Leases share partitions among the nodes that read them: each node
// announces itself, works out which partitions are its share of the
// nodes alive, and holds a lease on each partition it reads. A lease is
// a key in a replicated key-value bucket whose entries expire when not
// renewed, so the partitions of a node that dies pass to the others
// within a TTL, and a node that joins takes its share from the others.
//
// A lease is coordination, not a lock: a node that stalls past its TTL
// may still be finishing a batch when another takes over. What a
// partition's reader writes must tolerate that (a ledger's file lock
// does, see ingest.Processor).
type Leases struct {
	leases, nodes jetstream.KeyValue
	opts          LeaseOptions
	log           *slog.Logger
}

// ErrHeld is returned by Acquire when another node holds the lease.
var ErrHeld = errors.New("bus: the lease is held by another node")

// OpenLeases creates the buckets of the leases, if need be, and returns
// them.
func OpenLeases(ctx context.Context, nc *nats.Conn, opts LeaseOptions) (*Leases, error) {
	if opts.Name == "" || opts.Node == "" {
		return nil, errors.New("bus: leases need a name and a node")
	}
	if opts.TTL <= 0 {
		opts.TTL = 10 * time.Second
	}
	if opts.Replicas <= 0 {
		opts.Replicas = 3
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("bus: %w", err)
	}
	l := &Leases{opts: opts, log: opts.Logger}
	for _, b := range []struct {
		kv   *jetstream.KeyValue
		name string
	}{{&l.leases, opts.Name + "-leases"}, {&l.nodes, opts.Name + "-nodes"}} {
		kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: b.name, TTL: opts.TTL, Replicas: opts.Replicas, History: 1})
		if err != nil {
			return nil, fmt.Errorf("bus: bucket %s: %w", b.name, err)
		}
		*b.kv = kv
	}
	return l, nil
}

// A Lease is a partition held by this node.
type Lease struct {
	l   *Leases
	key string
	rev uint64
	// until is when the lease may pass to another node at the earliest:
	// a TTL after the last write of it was sent.
	until time.Time
}

// Acquire takes the lease of key, or returns ErrHeld.
func (l *Leases) Acquire(ctx context.Context, key string) (*Lease, error) {
	sent := time.Now()
	rev, err := l.leases.Create(ctx, key, []byte(l.opts.Node))
	if errors.Is(err, jetstream.ErrKeyExists) {
		return nil, ErrHeld
	}
	if err != nil {
		return nil, fmt.Errorf("bus: lease %s: %w", key, err)
	}
	return &Lease{l: l, key: key, rev: rev, until: sent.Add(l.opts.TTL)}, nil
}

// Renew extends the lease by a TTL. It fails if the lease expired and
// another node took it.
func (ls *Lease) Renew(ctx context.Context) error {
	sent := time.Now()
	rev, err := ls.l.leases.Update(ctx, ls.key, []byte(ls.l.opts.Node), ls.rev)
	if err != nil {
		return fmt.Errorf("bus: renewing lease %s: %w", ls.key, err)
	}
	ls.rev, ls.until = rev, sent.Add(ls.l.opts.TTL)
	return nil
}

// Expiring says the lease is within a quarter TTL of passing to another
// node unless renewed: its holder must stop using it.
func (ls *Lease) Expiring() bool {
	return time.Until(ls.until) < ls.l.opts.TTL/4
}

// Release gives the lease up, unless another node holds it by now.
func (ls *Lease) Release(ctx context.Context) error {
	err := ls.l.leases.Delete(ctx, ls.key, jetstream.LastRevision(ls.rev))
	if err != nil {
		return fmt.Errorf("bus: releasing lease %s: %w", ls.key, err)
	}
	return nil
}

// Members returns the nodes alive: those that announced themselves
// within a TTL, sorted.
func (l *Leases) Members(ctx context.Context) ([]string, error) {
	keys, err := l.nodes.Keys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("bus: members: %w", err)
	}
	slices.Sort(keys)
	return keys, nil
}

func (l *Leases) announce(ctx context.Context) error {
	if _, err := l.nodes.Put(ctx, l.opts.Node, []byte(time.Now().UTC().Format(time.RFC3339))); err != nil {
		return fmt.Errorf("bus: announcing node %s: %w", l.opts.Node, err)
	}
	return nil
}

// Share returns the partitions, of n, that node reads when members are
// alive: every len(members)-th, from the node's place among them. A node
// not among members has none.
func Share(n int, members []string, node string) []int {
	i := slices.Index(members, node)
	if i < 0 {
		return nil
	}
	var ps []int
	for p := i; p < n; p += len(members) {
		ps = append(ps, p)
	}
	return ps
}

// Run keeps this node's share of n partitions leased until ctx ends,
// running read for each partition while it holds its lease. read gets a
// context that ends when the lease is lost or moves to another node;
// Run waits for read to return before it gives the lease up, and goes on
// renewing the other leases meanwhile. A read that returns early (an
// error it logged) is started again at the next round. When ctx ends,
// Run stops every read and releases its leases.
func (l *Leases) Run(ctx context.Context, n int, read func(ctx context.Context, p int)) {
	running := map[int]*held{}
	defer func() {
		for p, h := range running {
			l.stop(ctx, p, h)
		}
		for _, h := range running {
			<-h.released
		}
	}()
	tick := time.NewTicker(l.opts.TTL / 4)
	defer tick.Stop()
	for {
		want := l.round(ctx, n)
		var renew []*held
		for p, h := range running {
			switch {
			case h.stopping:
				select {
				case <-h.released:
					delete(running, p)
				default:
				}
			case h.ended():
				l.stop(ctx, p, h) // read gave up; it starts again once stopped
			case want != nil && !slices.Contains(want, p):
				l.log.Info("handing a partition to another node", "partition", p)
				l.stop(ctx, p, h)
			default:
				renew = append(renew, h)
			}
		}
		l.renew(ctx, renew)
		if ctx.Err() != nil {
			return
		}
		for p, h := range running {
			if !h.stopping && h.renewErr != nil {
				if errors.Is(h.renewErr, jetstream.ErrKeyRevisionMismatch) || h.lease.Expiring() {
					l.log.Warn("could not renew a partition's lease; stopped reading it", "partition", p, "err", h.renewErr)
					l.stop(ctx, p, h) // the release fails if another node holds it by now
					continue
				}
				l.log.Warn("could not renew a partition's lease; trying again", "partition", p, "err", h.renewErr)
			}
		}
		for _, p := range want {
			if running[p] != nil {
				continue
			}
			lease, err := l.Acquire(ctx, partitionKey(p))
			if err != nil {
				if !errors.Is(err, ErrHeld) && ctx.Err() == nil {
					l.log.Warn("leasing a partition", "partition", p, "err", err)
				}
				continue
			}
			pctx, cancel := context.WithCancel(ctx)
			h := &held{lease: lease, cancel: cancel, done: make(chan struct{}), released: make(chan struct{})}
			running[p] = h
			l.log.Info("reading a partition", "partition", p)
			go func() {
				defer close(h.done)
				read(pctx, p)
			}()
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// held is a partition this node reads.
type held struct {
	lease    *Lease
	cancel   context.CancelFunc
	done     chan struct{} // closed when read returned
	stopping bool
	released chan struct{} // closed when stopped and released
	renewErr error         // of the last renewal
}

func (h *held) ended() bool {
	select {
	case <-h.done:
		return true
	default:
		return false
	}
}

// stop ends a partition's read and, once it returned, releases the
// lease, without holding up the renewal of the others.
func (l *Leases) stop(ctx context.Context, p int, h *held) {
	if h.stopping {
		return
	}
	h.stopping = true
	h.cancel()
	go func() {
		defer close(h.released)
		<-h.done
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.opts.TTL)
		defer cancel()
		if err := h.lease.Release(rctx); err != nil {
			l.log.Warn("releasing a partition; it passes on when its lease expires", "partition", p, "err", err)
		}
	}()
}

// renew renews the leases at once, each given until it is about to
// expire: a busy bus answers late, and a renewal that fails is tried
// again at the next round while the lease lasts.
func (l *Leases) renew(ctx context.Context, hs []*held) {
	var wg sync.WaitGroup
	for _, h := range hs {
		wg.Go(func() {
			rctx, cancel := context.WithDeadline(ctx, h.lease.until.Add(-l.opts.TTL/4))
			defer cancel()
			h.renewErr = h.lease.Renew(rctx)
		})
	}
	wg.Wait()
}

// round announces the node and returns its share of the partitions, or
// nil when the members cannot be known (the bus is unreachable): the
// node then keeps what it holds while its leases last.
func (l *Leases) round(ctx context.Context, n int) []int {
	if err := l.announce(ctx); err != nil {
		if ctx.Err() == nil {
			l.log.Warn("the bus is unreachable", "err", err)
		}
		return nil
	}
	members, err := l.Members(ctx)
	if err != nil {
		return nil
	}
	return Share(n, members, l.opts.Node)
}

func partitionKey(p int) string { return "p" + strconv.Itoa(p) }

// Lead runs fn while this node holds the lease of job: a job of which
// the deployment runs one at a time (the notifier's escalation timers),
// whichever node runs it. fn gets a context that ends when the lease is
// lost; a node that dies hands the job to another within a TTL. An fn
// that returns early is started again at the next round, a quarter TTL
// later. Lead returns when ctx ends, after fn has, having released the
// lease.
func (l *Leases) Lead(ctx context.Context, job string, fn func(ctx context.Context)) {
	key := "job-" + job
	var h *held
	// end stops fn and, once it returned, gives the lease up.
	end := func() {
		h.cancel()
		<-h.done
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.opts.TTL)
		defer cancel()
		if err := h.lease.Release(rctx); err != nil {
			l.log.Warn("releasing a job; it passes on when its lease expires", "job", job, "err", err)
		}
		h = nil
	}
	defer func() {
		if h != nil {
			end()
		}
	}()
	tick := time.NewTicker(l.opts.TTL / 4)
	defer tick.Stop()
	for {
		if h != nil {
			if h.ended() {
				end()
			} else {
				l.renew(ctx, []*held{h})
				if err := h.renewErr; err != nil && ctx.Err() == nil {
					if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || h.lease.Expiring() {
						l.log.Warn("could not renew a job's lease; stopped it", "job", job, "err", err)
						end()
					} else {
						l.log.Warn("could not renew a job's lease; trying again", "job", job, "err", err)
					}
				}
			}
		}
		if ctx.Err() != nil {
			return
		}
		if h == nil {
			lease, err := l.Acquire(ctx, key)
			switch {
			case err == nil:
				jctx, cancel := context.WithCancel(ctx)
				h = &held{lease: lease, cancel: cancel, done: make(chan struct{})}
				l.log.Info("running a job", "job", job)
				go func() {
					defer close(h.done)
					fn(jctx)
				}()
			case !errors.Is(err, ErrHeld) && ctx.Err() == nil:
				l.log.Warn("leasing a job", "job", job, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
