package bus_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/vigilsec/vigil/bus"
	"github.com/vigilsec/vigil/bus/bustest"
)

func TestPublishRead(t *testing.T) {
	c := bustest.Start(t, 3)
	nc := c.Connect()
	ctx := t.Context()
	topic, err := bus.OpenTopic(ctx, nc, bus.TopicOptions{Name: "events", Partitions: 4})
	if err != nil {
		t.Fatal(err)
	}
	var msgs []bus.Msg
	for i := range 40 {
		msgs = append(msgs, bus.Msg{Partition: i % 4, ID: fmt.Sprint("m", i), Data: fmt.Appendf(nil, "message %d", i)})
	}
	if err := topic.Publish(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	// A publish retried after a lost answer is stored once.
	if err := topic.Publish(ctx, msgs[:20]); err != nil {
		t.Fatal(err)
	}
	// Killing a node (here the first, whatever it leads) loses nothing
	// acknowledged, and publishing goes on.
	c.Nodes[0].Kill()
	more := []bus.Msg{{Partition: 1, ID: "m40", Data: []byte("message 40")}}
	if err := patiently(ctx, func(ctx context.Context) error { return topic.Publish(ctx, more) }); err != nil {
		t.Fatal(err)
	}

	// So does reading, once the cluster has replaced the node's leaders.
	var r *bus.Reader
	if err := patiently(ctx, func(ctx context.Context) (err error) { r, err = topic.Read(ctx, 1, 0); return err }); err != nil {
		t.Fatal(err)
	}
	var got []string
	var last uint64
	for len(got) < 11 {
		ms, err := r.Next(ctx, 4, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			if m.Partition != 1 || m.Seq <= last {
				t.Fatalf("message %+v after seq %d", m, last)
			}
			last = m.Seq
			got = append(got, string(m.Data))
		}
		if len(got) == 4 {
			if err := r.Ack(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	want := []string{"message 1", "message 5", "message 9", "message 13", "message 17", "message 21", "message 25", "message 29", "message 33", "message 37", "message 40"}
	if !slices.Equal(got, want) {
		t.Fatalf("partition 1 read %q, want %q", got, want)
	}
	ms, err := r.Next(ctx, 4, 100*time.Millisecond)
	if err != nil || len(ms) != 0 {
		t.Fatalf("read past the end: %v, %v", ms, err)
	}
	acked, err := topic.Acked(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	// A reader that starts after what was acknowledged reads the rest.
	r2, err := topic.Read(ctx, 1, acked)
	if err != nil {
		t.Fatal(err)
	}
	ms, err = r2.Next(ctx, 100, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 7 || string(ms[0].Data) != "message 17" {
		t.Fatalf("after the acknowledged %d, read %d messages from %q", acked, len(ms), ms[0].Data)
	}
	// A replay from a time reads from there, acknowledging nothing.
	rs, err := topic.ReadSince(ctx, 1, time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	ms, err = rs.Next(ctx, 100, time.Second)
	if err != nil || len(ms) != 11 {
		t.Fatalf("replay read %d messages, %v", len(ms), err)
	}

	if err := topic.Publish(ctx, []bus.Msg{{Partition: 4, ID: "x"}}); err == nil {
		t.Fatal("published to a partition the topic does not have")
	}
	big := make([]byte, topic.MaxPayload()+1)
	if err := topic.Publish(ctx, []bus.Msg{{Partition: 0, ID: "big", Data: big}}); err == nil {
		t.Fatal("published a message larger than the servers take")
	}
}

// patiently retries op, each try given 2 s, for as long as a cluster
// takes to replace a node's leaders.
func patiently(ctx context.Context, op func(context.Context) error) error {
	var err error
	for range 100 {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err = op(pctx)
		cancel()
		if err == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return err
}

func TestShare(t *testing.T) {
	members := []string{"a", "b", "c"}
	got := [][]int{bus.Share(8, members, "a"), bus.Share(8, members, "b"), bus.Share(8, members, "c")}
	want := [][]int{{0, 3, 6}, {1, 4, 7}, {2, 5}}
	for i := range want {
		if !slices.Equal(got[i], want[i]) {
			t.Errorf("share of %s = %v, want %v", members[i], got[i], want[i])
		}
	}
	if s := bus.Share(8, members, "d"); s != nil {
		t.Errorf("a node not among the members has %v", s)
	}
}

func TestLeases(t *testing.T) {
	c := bustest.Start(t, 3)
	ctx := t.Context()
	const ttl = 800 * time.Millisecond
	open := func(node string) *bus.Leases {
		l, err := bus.OpenLeases(ctx, c.Connect(), bus.LeaseOptions{Name: "vigil", Node: node, TTL: ttl})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	a, b := open("a"), open("b")
	la, err := a.Acquire(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Acquire(ctx, "k"); !errors.Is(err, bus.ErrHeld) {
		t.Fatalf("a held lease was acquired again: %v", err)
	}
	if err := la.Renew(ctx); err != nil {
		t.Fatal(err)
	}
	if err := la.Release(ctx); err != nil {
		t.Fatal(err)
	}
	lb, err := b.Acquire(ctx, "k")
	if err != nil {
		t.Fatalf("a released lease: %v", err)
	}
	// Unrenewed, it expires, and the old holder cannot renew it once
	// another holds it.
	var la2 *bus.Lease
	deadline := time.Now().Add(10 * ttl)
	for la2 == nil && time.Now().Before(deadline) {
		la2, _ = a.Acquire(ctx, "k")
		time.Sleep(ttl / 8)
	}
	if la2 == nil {
		t.Fatal("an unrenewed lease never expired")
	}
	if err := lb.Renew(ctx); err == nil {
		t.Fatal("an expired lease was renewed over its new holder")
	}

	// Run shares the partitions between the nodes alive, and hands the
	// share of one that stops to the others.
	var mu sync.Mutex
	readers := map[int]string{}
	run := func(l *bus.Leases, node string) context.CancelFunc {
		rctx, cancel := context.WithCancel(ctx)
		go l.Run(rctx, 6, func(pctx context.Context, p int) {
			mu.Lock()
			if other, ok := readers[p]; ok {
				t.Errorf("partition %d read by %s and %s at once", p, other, node)
			}
			readers[p] = node
			mu.Unlock()
			<-pctx.Done()
			mu.Lock()
			delete(readers, p)
			mu.Unlock()
		})
		return cancel
	}
	waitFor := func(what string, ok func(map[int]string) bool) {
		t.Helper()
		deadline := time.Now().Add(20 * ttl)
		for time.Now().Before(deadline) {
			mu.Lock()
			done := ok(readers)
			mu.Unlock()
			if done {
				return
			}
			time.Sleep(ttl / 8)
		}
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("%s: readers %v", what, readers)
	}
	count := func(rs map[int]string, node string) int {
		n := 0
		for _, r := range rs {
			if r == node {
				n++
			}
		}
		return n
	}
	x, y := open("x"), open("y")
	stopX := run(x, "x")
	waitFor("one node reads every partition", func(rs map[int]string) bool { return count(rs, "x") == 6 })
	stopY := run(y, "y")
	waitFor("two nodes share them", func(rs map[int]string) bool { return count(rs, "x") == 3 && count(rs, "y") == 3 })
	stopX()
	waitFor("the one left reads them all", func(rs map[int]string) bool { return count(rs, "y") == 6 })
	stopY()
}

// TestLead runs a job on one node at a time: on another once its node
// stops, and once its node is cut off from the bus.
func TestLead(t *testing.T) {
	c := bustest.Start(t, 3)
	ctx := t.Context()
	const ttl = 800 * time.Millisecond
	var mu sync.Mutex
	var leaders []string // running the job now
	lead := func(node string) (stop context.CancelFunc, conn *nats.Conn) {
		conn = c.Connect()
		l, err := bus.OpenLeases(ctx, conn, bus.LeaseOptions{Name: "vigil", Node: node, TTL: ttl})
		if err != nil {
			t.Fatal(err)
		}
		lctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			l.Lead(lctx, "escalation", func(jctx context.Context) {
				mu.Lock()
				if len(leaders) > 0 {
					t.Errorf("%s runs the job while %v does", node, leaders)
				}
				leaders = append(leaders, node)
				mu.Unlock()
				<-jctx.Done()
				mu.Lock()
				leaders = slices.DeleteFunc(leaders, func(n string) bool { return n == node })
				mu.Unlock()
			})
		}()
		return func() { cancel(); <-done }, conn
	}
	waitFor := func(want string) {
		t.Helper()
		deadline := time.Now().Add(20 * ttl)
		for time.Now().Before(deadline) {
			mu.Lock()
			got := slices.Clone(leaders)
			mu.Unlock()
			if len(got) == 1 && (want == "" || got[0] == want) {
				return
			}
			time.Sleep(ttl / 8)
		}
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("want %q alone running the job; running: %v", want, leaders)
	}
	stopA, _ := lead("a")
	defer stopA()
	waitFor("a")
	stopB, connB := lead("b")
	defer stopB()
	time.Sleep(2 * ttl)
	waitFor("a") // b waits while a holds it
	stopA()
	waitFor("b")
	stopC, _ := lead("c")
	defer stopC()
	// b is cut off from the bus: it stops the job as its lease runs out,
	// and c takes it over then, not before (fn checks).
	connB.Close()
	waitFor("c")
}

// TestPendingCountsLostDeliveries: a message the servers delivered that
// never came to the reader (here another client took it, as a pull that
// expired on its way loses it) is still to be read: the reader is not
// caught up, although the servers have nothing more to deliver. A
// process node that took it for caught up told the correlations its
// partition was idle, and they went on without the partition's events.
func TestPendingCountsLostDeliveries(t *testing.T) {
	c := bustest.Start(t, 3)
	nc := c.Connect()
	ctx := t.Context()
	topic, err := bus.OpenTopic(ctx, nc, bus.TopicOptions{Name: "events", Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := topic.Publish(ctx, []bus.Msg{{ID: "a", Data: []byte("a")}, {ID: "b", Data: []byte("b")}}); err != nil {
		t.Fatal(err)
	}
	r, err := topic.Read(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if ms, err := r.Next(ctx, 1, time.Second); err != nil || len(ms) != 1 {
		t.Fatalf("read %d messages, %v", len(ms), err)
	}
	if n, err := r.Pending(ctx); err != nil || n != 1 {
		t.Fatalf("pending %d, %v; want 1, the message not delivered yet", n, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := js.Consumer(ctx, "events", "events-p0")
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	taken := 0
	for range batch.Messages() {
		taken++
	}
	if taken != 1 {
		t.Fatalf("the other client took %d messages, want 1", taken)
	}
	if ms, err := r.Next(ctx, 1, 200*time.Millisecond); err != nil || len(ms) != 0 {
		t.Fatalf("read %d messages, %v; want none before the servers deliver it again", len(ms), err)
	}
	if n, err := r.Pending(ctx); err != nil || n != 1 {
		t.Fatalf("pending %d, %v; want 1, the message delivered that did not come", n, err)
	}
}
