package inventory

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/event"
)

// originStore is an OriginStore over events in memory. Its Sessions
// answers UnresolvedQuery alone, and copies the events, as a store's
// rows are not the events ingest enriched.
type originStore struct {
	memStore
	set int // origins set
}

func (m *originStore) Sessions(_ context.Context, q string, from, to time.Time, fn func(*event.Event) error) error {
	if q != UnresolvedQuery {
		panic("originStore answers UnresolvedQuery alone, not " + q)
	}
	for _, e := range m.memStore {
		if e.Time.Before(from) || !e.Time.Before(to) || !temporary(e) ||
			e.Session.Origin != "" && !strings.Contains(e.Session.Origin, ":sts::") {
			continue
		}
		c := *e
		if err := fn(&c); err != nil {
			return err
		}
	}
	return nil
}

func (m *originStore) SetOrigins(_ context.Context, origins map[uint64]string) error {
	for _, e := range m.memStore {
		if o, ok := origins[e.Seq]; ok {
			e.Session.Origin = o
			m.set++
		}
	}
	return nil
}

// failing is an OriginStore whose reads fail.
type failing struct{ *originStore }

func (failing) Sessions(context.Context, string, time.Time, time.Time, func(*event.Event) error) error {
	return errors.New("the store is closed")
}

// withOrigin counts the events with an origin.
func withOrigin(evs []*event.Event, origin string) int {
	n := 0
	for _, e := range evs {
		if e.Session.Origin == origin {
			n++
		}
	}
	return n
}

// TestBackfillLate: the stolen instance credential of the OTRF story,
// its uses ingested before the instance profile's AssumeRole that issued
// it: the uses wait, and once the issue arrives BackfillLate gives them
// the instance as their origin, once.
func TestBackfillLate(t *testing.T) {
	ctx := context.Background()
	const instance = "instance/i-0317f6c6b66ae9c40"
	evs := events(t, "otrf-security-datasets-aws/ec2_proxy_s3_exfiltration_2020-09-14011940.json")
	var issues, uses []*event.Event
	for _, e := range evs {
		if len(Hops(e)) > 0 {
			issues = append(issues, e)
		} else {
			uses = append(uses, e)
		}
	}
	ids := NewIdentities()
	ids.Enrich(uses)
	if n := withOrigin(uses, instance); n != 0 {
		t.Fatalf("%d uses have an origin before their issue arrived", n)
	}
	st := &originStore{memStore: memStore(evs)}
	if n, err := ids.BackfillLate(ctx, st, time.Now()); n != 0 || err != nil {
		t.Errorf("before the issue: backfilled %d (%v)", n, err)
	}
	ids.Enrich(issues)
	if n, err := ids.BackfillLate(ctx, st, time.Now().Add(-time.Hour)); n != 0 || err != nil {
		t.Errorf("before the store settled: backfilled %d (%v)", n, err)
	}
	// A store that fails: the uses are tried again at the next call.
	if _, err := ids.BackfillLate(ctx, failing{st}, time.Now()); err == nil {
		t.Error("a failing store: no error")
	}
	n, err := ids.BackfillLate(ctx, st, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if got := withOrigin(evs, instance); n != 11 || got != 11 {
		t.Errorf("backfilled %d events, %d have the instance as origin; want 11", n, got)
	}
	if n, err := ids.BackfillLate(ctx, st, time.Now()); n != 0 || err != nil {
		t.Errorf("a second pass backfilled %d (%v)", n, err)
	}

	// Another Identities that follows the issues the store holds and
	// backfills over the span finds the same: what an import does at its
	// end, for the events of another.
	fresh := events(t, "otrf-security-datasets-aws/ec2_proxy_s3_exfiltration_2020-09-14011940.json")
	st = &originStore{memStore: memStore(fresh)}
	first := slices.MinFunc(fresh, func(a, b *event.Event) int { return a.Time.Compare(b.Time) }).Time
	last := slices.MaxFunc(fresh, func(a, b *event.Event) int { return a.Time.Compare(b.Time) }).Time
	ids = NewIdentities()
	if n, err := ids.Follow(ctx, st, IssuingQuery, first, last); err != nil || n != len(issues) {
		t.Fatalf("followed %d issuing events (%v), want %d", n, err, len(issues))
	}
	n, err = ids.Backfill(ctx, st, first, last.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if got := withOrigin(fresh, instance); n != 11 || got != 11 {
		t.Errorf("Backfill: %d events changed, %d have the instance as origin; want 11", n, got)
	}
	// Following them again adds nothing: an issue is held once.
	before := ids.g.Len()
	if _, err := ids.Follow(ctx, st, IssuingQuery, first, last); err != nil || ids.g.Len() != before {
		t.Errorf("following again: %d issues, had %d (%v)", ids.g.Len(), before, err)
	}
}

// TestBackfillChain: a chain of two hops whose first hop's issue
// arrives last. The uses of the second hop's key first get its caller,
// the first hop's session, as origin; when the first hop's issue
// arrives they get the user behind it. A chain that does not reach as
// far as an event's origin (its issues not read) leaves it alone.
func TestBackfillChain(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2024, 7, 10, 11, 0, 0, 0, time.UTC)
	alice := "arn:aws:iam::111111111111:user/alice"
	hopA := "arn:aws:sts::222222222222:assumed-role/deploy/alice-1"
	hopB := "arn:aws:sts::333333333333:assumed-role/admin/pivot"
	issue := func(at time.Duration, key, role, session, caller, callerType, callerKey string) *event.Event {
		return &event.Event{Source: "aws.cloudtrail", Action: "AssumeRole", Time: t0.Add(at),
			Raw: []byte(`{"eventSource":"sts.amazonaws.com","userIdentity":{"type":"` + callerType + `","arn":"` + caller + `","accessKeyId":"` + callerKey + `"},` +
				`"requestParameters":{"roleArn":"` + role + `","roleSessionName":"` + session + `"},"responseElements":{"credentials":{"accessKeyId":"` + key + `"}}}`)}
	}
	issueA := issue(0, "ASIAHOPA", "arn:aws:iam::222222222222:role/deploy", "alice-1", alice, "IAMUser", "AKIAALICE")
	issueB := issue(10*time.Minute, "ASIAHOPB", "arn:aws:iam::333333333333:role/admin", "pivot", hopA, "AssumedRole", "ASIAHOPA")
	var uses []*event.Event
	for i := range 3 {
		uses = append(uses, &event.Event{Source: "aws.cloudtrail", Action: "GetObject", Time: t0.Add(time.Duration(20+i) * time.Minute),
			Actor: event.Actor{Type: "AssumedRole", ID: hopB}, Session: event.Session{ID: "ASIAHOPB"}})
	}
	all := append([]*event.Event{issueA, issueB}, uses...)
	for i, e := range all {
		e.Seq = uint64(i + 1)
	}

	ids := NewIdentities()
	ids.Enrich([]*event.Event{issueB})
	ids.Enrich(uses)
	if n := withOrigin(uses, hopA); n != 3 {
		t.Fatalf("%d uses have the first hop as origin, want 3", n)
	}
	// Without the first hop's issue, the chain ends at it: the uses
	// keep it. With a chain that does not reach as far (the second hop's
	// issue not followed either), they keep it too.
	st := &originStore{memStore: memStore{issueB, uses[0], uses[1], uses[2]}}
	if n, err := ids.Backfill(ctx, st, t0, t0.Add(time.Hour)); n != 0 || err != nil || withOrigin(uses, hopA) != 3 {
		t.Errorf("without the first hop's issue: backfilled %d (%v)", n, err)
	}
	if n, err := NewIdentities().Backfill(ctx, st, t0, t0.Add(time.Hour)); n != 0 || err != nil || withOrigin(uses, hopA) != 3 {
		t.Errorf("without either issue: backfilled %d (%v)", n, err)
	}
	ids.Enrich([]*event.Event{issueA})
	st = &originStore{memStore: memStore(all)}
	n, err := ids.BackfillLate(ctx, st, time.Now())
	if err != nil || n != 3 || withOrigin(uses, alice) != 3 {
		t.Errorf("backfilled %d (%v); origins %q", n, err, []string{uses[0].Session.Origin, uses[1].Session.Origin, uses[2].Session.Origin})
	}
}

// TestAwaitingBounded: the credentials waiting for their issue are
// bounded in number; the spans of late ones, when nothing takes them,
// are merged.
func TestAwaitingBounded(t *testing.T) {
	ids := NewIdentities()
	t0 := time.Date(2024, 7, 10, 0, 0, 0, 0, time.UTC)
	ids.mu.Lock()
	for i := range maxAwaiting + 10 {
		ids.await(Principal{Key: "ASIA" + strings.Repeat("X", 4) + string(rune('a'+i%26)) + time.Duration(i).String()}, t0)
	}
	n := len(ids.awaiting)
	ids.mu.Unlock()
	if n != maxAwaiting {
		t.Errorf("%d credentials awaiting, want %d", n, maxAwaiting)
	}
	for i := range 3000 {
		ids.add(Issue{Kind: AssumeRole, Time: t0, Key: "ASIAXXXX" + string(rune('a'+i%26)) + time.Duration(i).String()})
	}
	if len(ids.late) >= 1024 || len(ids.late) == 0 {
		t.Errorf("%d late spans", len(ids.late))
	}
	if !slices.IsSortedFunc(ids.late, func(a, b lateSpan) int { return a.first.Compare(b.first) }) {
		t.Error("late spans not merged in order")
	}
}
