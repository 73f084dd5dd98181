package ingest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/ledger"
	"github.com/vigilsec/vigil/query"
)

// TestRedactPartition applies a redaction to a scale-out partition, its
// ledger and its events in ClickHouse: the events its query selects are
// erased from the ledger with the reason and deleted from the store, but
// not the audit trail's nor another partition's; the ledger verifies;
// applying it again erases nothing more, and a query with commands is
// refused.
func TestRedactPartition(t *testing.T) {
	ctx := context.Background()
	const part = 3
	ch, l, verifier, dir := partitionFixture(t, part)

	at := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	n := 0
	mk := func(tenant, actor string) *event.Event {
		n++
		return &event.Event{Time: at.Add(time.Duration(n) * time.Second), Received: at, Tenant: tenant, Source: "aws.cloudtrail", Class: "api",
			ID: fmt.Sprint("e", n), Action: "GetObject", Actor: event.Actor{Name: actor},
			Raw: fmt.Appendf(nil, `{"eventName":"GetObject","userIdentity":{"userName":%q},"n":%d}`, actor, n)}
	}
	var evs []*event.Event
	for i := range 40 {
		actor := []string{"alice", "bob"}[i%2]
		evs = append(evs, mk([]string{"a", "b"}[i/20], actor))
	}
	evs = append(evs, mk(query.SystemTenant, "alice"))
	for i := 0; i < len(evs); i += 16 {
		batch := evs[i:min(i+16, len(evs))]
		first, err := l.AppendBatch(ctx, batch, fmt.Sprint("bus:", i))
		if err != nil {
			t.Fatal(err)
		}
		for j, ev := range batch {
			ev.Seq = PartitionSeq(part, first+int64(j))
		}
	}
	if err := ch.Append(ctx, part, evs); err != nil {
		t.Fatal(err)
	}
	// Alice's events in another partition: not this partition's to erase.
	other := []*event.Event{mk("a", "alice"), mk("b", "alice")}
	for i, ev := range other {
		ev.Seq = PartitionSeq(part+1, int64(i))
	}
	if err := ch.Append(ctx, part+1, other); err != nil {
		t.Fatal(err)
	}

	r := Redaction{ID: "r1", Query: "actor:alice", Reason: "gdpr request 7", Requested: at}
	erased, err := redactPartition(ctx, ch, l, part, r)
	if err != nil {
		t.Fatal(err)
	}
	if erased != 20 {
		t.Errorf("erased %d events, want alice's 20 of the partition", erased)
	}
	for _, ev := range evs {
		_, index := SeqPartition(ev.Seq)
		rec, err := l.Read(index)
		if err != nil {
			t.Fatal(err)
		}
		want := ev.Actor.Name == "alice" && ev.Tenant != query.SystemTenant
		if (rec.Kind == ledger.KindRedacted) != want {
			t.Errorf("event %s of %s by %s: redacted %v, want %v", ev.ID, ev.Tenant, ev.Actor.Name, rec.Kind == ledger.KindRedacted, want)
		}
		if red, err := rec.Redaction(); want && (err != nil || red.Reason != r.Reason) {
			t.Errorf("event %s: redaction %+v, %v; want the reason %q", ev.ID, red, err, r.Reason)
		}
	}
	seqs, err := ch.Seqs(ctx, query.Request{Query: mustParse(t, "actor:alice"), Scope: query.Scope{All: true}})
	if err != nil {
		t.Fatal(err)
	}
	if want := []uint64{other[0].Seq, other[1].Seq}; !slices.Equal(seqs, want) {
		t.Errorf("alice's events left in the store: %v, want the other partition's %v", seqs, want)
	}
	for tenant, want := range map[string]int64{"a": 10 + 1, "b": 10 + 1, query.SystemTenant: 1} {
		if got, err := ch.Count(ctx, tenant); err != nil || got != want {
			t.Errorf("ClickHouse holds %d events of %s (%v), want %d", got, tenant, err, want)
		}
	}
	if _, err := l.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	rep, err := ledger.Verify(ctx, dir, ledger.VerifyOptions{Verifier: verifier})
	if err != nil || !rep.OK() || len(rep.Redacted) == 0 {
		t.Fatalf("the ledger after the redaction: %v, problems %v, redactions %d", err, rep.Problems, len(rep.Redacted))
	}

	if erased, err := redactPartition(ctx, ch, l, part, r); err != nil || erased != 0 {
		t.Errorf("applied again: erased %d, %v; want 0", erased, err)
	}
	if _, err := redactPartition(ctx, ch, l, part, Redaction{ID: "r2", Query: "actor:bob | head 1", Reason: "x"}); err == nil || !strings.Contains(err.Error(), "leave out the commands") {
		t.Errorf("a query with commands: %v", err)
	}
}

// redactPartition applies r to partition part as a process node does,
// the deletion included, and returns how many events it erased.
func redactPartition(ctx context.Context, rs RedactingStore, l *ledger.Ledger, part int, r Redaction) (int64, error) {
	seqs, err := eraseRedacted(ctx, rs, l, part, r)
	if err != nil {
		return 0, err
	}
	return int64(len(seqs)), deleteRedacted(ctx, rs, part, r, seqs)
}

// fakeRedactions are Redactions in memory, counting the asks.
type fakeRedactions struct {
	pending []Redaction
	asked   int
}

func (f *fakeRedactions) Pending(context.Context, int) ([]Redaction, error) {
	f.asked++
	return slices.Clone(f.pending), nil
}
func (f *fakeRedactions) Applied(context.Context, string, int, int64) error { return nil }
func (f *fakeRedactions) Failed(context.Context, string, int, string) error { return nil }

// TestRedactorDue: a redaction is due once the partition has read what
// the bus took past its time and the clocks' skew, not before; the
// pending are asked for every interval, and one done is not due again
// until they are.
func TestRedactorDue(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	src := &fakeRedactions{pending: []Redaction{{ID: "r1", Requested: t0}, {ID: "r2", Requested: t0.Add(time.Minute)}}}
	rd := &redactor{src: src, every: 10 * time.Second}
	ids := func(rs []Redaction) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.ID)
		}
		return out
	}
	nolog := func(string, ...any) {}

	if due := rd.due(ctx, t0, nolog); len(due) != 0 || src.asked != 1 || !rd.waiting() {
		t.Fatalf("nothing read: due %v, asked %d, waiting %v", ids(due), src.asked, rd.waiting())
	}
	rd.read(t0.Add(clockSkew - time.Second)) // within the skew
	if due := rd.due(ctx, t0.Add(time.Second), nolog); len(due) != 0 || src.asked != 1 {
		t.Fatalf("read within the skew: due %v, asked %d", ids(due), src.asked)
	}
	rd.read(t0.Add(clockSkew + time.Second))
	rd.read(t0) // an older message changes nothing
	if due := rd.due(ctx, t0.Add(2*time.Second), nolog); !slices.Equal(ids(due), []string{"r1"}) || !rd.waiting() {
		t.Fatalf("read past r1: due %v, waiting %v; want r1 and r2 waiting", ids(due), rd.waiting())
	}
	rd.done("r1")
	if due := rd.due(ctx, t0.Add(3*time.Second), nolog); len(due) != 0 {
		t.Fatalf("r1 done: due %v", ids(due))
	}
	// r1 failed (still pending at the source): it comes back when the
	// pending are asked for again.
	rd.read(t0.Add(2 * time.Minute))
	if due := rd.due(ctx, t0.Add(10*time.Second), nolog); !slices.Equal(ids(due), []string{"r1", "r2"}) || src.asked != 2 || rd.waiting() {
		t.Fatalf("asked again: due %v, asked %d, waiting %v", ids(due), src.asked, rd.waiting())
	}

	// While a deletion runs the partition is busy; once it is over, the
	// pending are asked for at once, the one just applied gone from them.
	deleting := make(chan struct{})
	rd.deleting = deleting
	if !rd.busy() {
		t.Fatal("not busy while deleting")
	}
	close(deleting)
	src.pending = src.pending[1:]
	if rd.busy() {
		t.Fatal("busy after the deletion")
	}
	if due := rd.due(ctx, t0.Add(11*time.Second), nolog); !slices.Equal(ids(due), []string{"r2"}) || src.asked != 3 {
		t.Fatalf("after the deletion: due %v, asked %d; want r2, asked again", ids(due), src.asked)
	}
}
