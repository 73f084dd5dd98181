package clickhouse

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/store/clickhouse/chtest"
)

// retained is an event of TestRetention.
type retained struct {
	ledger uint16
	tenant string
	seq    uint64
	at     time.Time
}

func (r retained) key() string { return fmt.Sprintf("%d/%q/%d", r.ledger, r.tenant, r.seq) }

// hostileTenant is a tenant whose name would end a string literal, or
// escape its end.
const hostileTenant = `team-'a\`

// copies returns how many rows of each event the shards hold, copies
// left by a retried insert included, by retained.key.
func copies(t *testing.T, s *Store) map[string]int {
	t.Helper()
	out, err := s.exec(context.Background(), 0, "SELECT ledger, hex(tenant), seq, count() FROM vigil.events GROUP BY ledger, tenant, seq FORMAT TabSeparated", nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for line := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 4 {
			continue
		}
		ledger, _ := strconv.ParseUint(f[0], 10, 16)
		tenant, _ := hex.DecodeString(f[1])
		seq, _ := strconv.ParseUint(f[2], 10, 64)
		n, _ := strconv.Atoi(f[3])
		got[retained{ledger: uint16(ledger), tenant: string(tenant), seq: seq}.key()] = n
	}
	return got
}

// mutationCount is how many mutations of events_local the shards list.
func mutationCount(t *testing.T, s *Store) int {
	t.Helper()
	n := 0
	for i := range s.opts.Shards {
		ms, err := s.mutations(context.Background(), i, "events_local", false)
		if err != nil {
			t.Fatal(err)
		}
		n += len(ms)
	}
	return n
}

func setMerges(t *testing.T, s *Store, shards []int, on bool) {
	t.Helper()
	verb := "STOP"
	if on {
		verb = "START"
	}
	for _, i := range shards {
		if _, err := s.exec(context.Background(), i, "SYSTEM "+verb+" MERGES vigil.events_local", nil); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRetention: on a cluster of two shards, the tenants of a ledger,
// the expired events of one tenant in one ledger (each once, a retried
// batch included, outside the holds, no other ledger's or tenant's), and
// their deletion: exactly the expired rows up to through, on every shard,
// seen gone as soon as DeleteExpired returns, which waits for the
// servers' mutations and gives up with ctx, naming the shard.
func TestRetention(t *testing.T) {
	ctx := context.Background()
	shards := chtest.Start(t, 2)
	s := open(t, shards)
	both := []int{0, 1}
	// Merges would collapse the retried batch on their own, and the test
	// would not show that Expired counts each event once; they also run
	// the mutations, which the test holds back to see DeleteExpired wait.
	setMerges(t, s, both, false)

	t0 := time.Date(2024, 7, 31, 0, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	evs := []retained{
		{0, "team-a", 1, t0.Add(-10 * day)},
		{0, "team-a", 2, t0.Add(-9 * day)}, // at the hold's start: held
		{0, "team-a", 3, t0.Add(-8 * day)}, // at the hold's end: not held
		{0, "team-b", 4, t0.Add(-10 * day)},
		{0, "team-a", 5, t0.Add(-1)},  // a nanosecond before before
		{0, "team-a", 6, t0},          // at before: not expired
		{0, "team-a", 7, t0.Add(day)}, // newer
		{0, "team-a", 8, t0.Add(-20 * day)},
		{0, "team-b", 9, t0.Add(-5 * day)},
		{0, "team-a", 10, t0.Add(-30 * day)}, // expired, but after through
		// The same seqs in another ledger are other events.
		{1, "team-a", 1, t0.Add(-10 * day)},
		{1, "team-a", 2, t0.Add(-3 * day)},
		{1, hostileTenant, 3, t0.Add(-10 * day)},
		{1, "team-b", 4, t0.Add(day)},
	}
	toEvent := func(r retained) *event.Event {
		return &event.Event{Seq: r.seq, Time: r.at, Received: time.Now(), Tenant: r.tenant,
			Source: "json", Class: event.ClassAPIActivity, Raw: []byte(`{}`)}
	}
	byLedger := map[uint16][]*event.Event{}
	for _, r := range evs {
		byLedger[r.ledger] = append(byLedger[r.ledger], toEvent(r))
	}
	for ledger, batch := range byLedger {
		if err := s.Append(ctx, ledger, batch); err != nil {
			t.Fatal(err)
		}
	}
	// A retried batch: seqs 1 and 10 of ledger 0 again, as they were.
	retried := []*event.Event{toEvent(evs[0]), toEvent(evs[9])}
	if err := s.Append(ctx, 0, retried); err != nil {
		t.Fatal(err)
	}
	before := copies(t, s)
	for _, r := range []retained{evs[0], evs[9]} {
		if before[r.key()] != 2 {
			t.Fatalf("%s: %d copies stored, want 2: the retried batch's copy is not there to count once", r.key(), before[r.key()])
		}
	}

	t.Run("LedgerTenants", func(t *testing.T) {
		for _, tt := range []struct {
			ledger uint16
			want   []string
		}{
			{0, []string{"team-a", "team-b"}},
			// Bytewise: ' sorts before a.
			{1, []string{hostileTenant, "team-a", "team-b"}},
			{2, nil},
		} {
			got, err := s.LedgerTenants(ctx, tt.ledger)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("ledger %d: tenants %q, want %q", tt.ledger, got, tt.want)
			}
		}
	})

	hold := [2]time.Time{t0.Add(-9 * day), t0.Add(-8 * day)}
	never := time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC)
	forever := time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)
	t.Run("Expired", func(t *testing.T) {
		for _, tt := range []struct {
			name   string
			ledger uint16
			tenant string
			before time.Time
			keep   [][2]time.Time
			limit  int
			want   []uint64
		}{
			{name: "no hold", tenant: "team-a", before: t0, want: []uint64{1, 2, 3, 5, 8, 10}},
			{name: "a closed hold", tenant: "team-a", before: t0, keep: [][2]time.Time{hold}, want: []uint64{1, 3, 5, 8, 10}},
			{name: "a hold open before", tenant: "team-a", before: t0, keep: [][2]time.Time{{{}, t0.Add(-9 * day)}}, want: []uint64{2, 3, 5}},
			{name: "a hold open after", tenant: "team-a", before: t0, keep: [][2]time.Time{{t0.Add(-10 * day), {}}}, want: []uint64{8, 10}},
			{name: "a hold open at both ends", tenant: "team-a", before: t0, keep: [][2]time.Time{{}}},
			{name: "two holds", tenant: "team-a", before: t0,
				keep: [][2]time.Time{{t0.Add(-31 * day), t0.Add(-29 * day)}, {t0.Add(-10 * day), t0.Add(-10*day + 1)}}, want: []uint64{2, 3, 5, 8}},
			{name: "an empty hold", tenant: "team-a", before: t0, keep: [][2]time.Time{{t0, t0.Add(-40 * day)}}, want: []uint64{1, 2, 3, 5, 8, 10}},
			{name: "hold bounds beyond nanoseconds", tenant: "team-a", before: t0, keep: [][2]time.Time{{never, t0.Add(-9 * day)}}, want: []uint64{2, 3, 5}},
			{name: "a hold beyond nanoseconds", tenant: "team-a", before: t0, keep: [][2]time.Time{{never, forever}}},
			{name: "a limit", tenant: "team-a", before: t0, keep: [][2]time.Time{hold}, limit: 2, want: []uint64{1, 3}},
			{name: "a limit of more", tenant: "team-a", before: t0, limit: 100, want: []uint64{1, 2, 3, 5, 8, 10}},
			{name: "a negative limit", tenant: "team-a", before: t0, limit: -1, want: []uint64{1, 2, 3, 5, 8, 10}},
			{name: "strictly before", tenant: "team-a", before: t0.Add(-10 * day), want: []uint64{8, 10}},
			{name: "before beyond nanoseconds", tenant: "team-a", before: forever, want: []uint64{1, 2, 3, 5, 6, 7, 8, 10}},
			{name: "before long ago", tenant: "team-a", before: never},
			{name: "a zero before", tenant: "team-a"},
			{name: "another tenant", tenant: "team-b", before: forever, want: []uint64{4, 9}},
			{name: "another ledger", ledger: 1, tenant: "team-a", before: t0, want: []uint64{1, 2}},
			{name: "the hostile tenant", ledger: 1, tenant: hostileTenant, before: t0, want: []uint64{3}},
			{name: "a ledger of none", ledger: 2, tenant: "team-a", before: forever},
			{name: "a tenant of none", tenant: "team-c", before: forever},
			{name: "an injection", tenant: `team-a' OR '1'='1`, before: forever},
			{name: "an escaped quote", tenant: `team-a\' OR 1 OR \'`, before: forever},
			{name: "a backslash", tenant: `\`, before: forever},
			{name: "the hostile tenant unescaped", ledger: 1, tenant: `team-'a`, before: forever},
			{name: "a NUL", tenant: "team-a\x00", before: forever},
		} {
			t.Run(tt.name, func(t *testing.T) {
				got, err := s.Expired(ctx, tt.ledger, tt.tenant, tt.before, tt.keep, tt.limit)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(got, tt.want) {
					t.Errorf("expired %v, want %v", got, tt.want)
				}
			})
		}
		if _, err := s.Expired(ctx, 0, "", t0, nil, 0); err == nil {
			t.Error("expired of no tenant: no error")
		}
	})

	// Retention's round: the first four expired events outside the hold
	// are erased from the ledger, then deleted here.
	keep := [][2]time.Time{hold}
	erased, err := s.Expired(ctx, 0, "team-a", t0, keep, 4)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(erased, []uint64{1, 3, 5, 8}) {
		t.Fatalf("erased %v, want [1 3 5 8]", erased)
	}
	through := erased[len(erased)-1]
	// An event that arrives late, once Expired has run: expired by its
	// time, but not erased.
	late := retained{0, "team-a", 21, t0.Add(-15 * day)}
	if err := s.Append(ctx, 0, []*event.Event{toEvent(late)}); err != nil {
		t.Fatal(err)
	}
	evs = append(evs, late)
	gone := func(r retained) bool {
		return r.ledger == 0 && r.tenant == "team-a" && slices.Contains(erased, r.seq)
	}

	t.Run("DeleteExpired of nothing", func(t *testing.T) {
		n, was := mutationCount(t, s), copies(t, s)
		// Merges are stopped: a mutation made here would never finish.
		ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		for _, tt := range []struct {
			name    string
			ledger  uint16
			tenant  string
			through uint64
		}{
			{name: "through 0", tenant: "team-a", through: 0},
			{name: "a ledger of none", ledger: 2, tenant: "team-a", through: math.MaxUint64},
			{name: "an injection", tenant: `team-a' OR '1'='1`, through: math.MaxUint64},
			{name: "the hostile tenant unescaped", ledger: 1, tenant: `team-'a`, through: math.MaxUint64},
		} {
			if err := s.DeleteExpired(ctx, tt.ledger, tt.tenant, t0, keep, tt.through); err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
		}
		// Nothing to delete is no mutation: on 18.16 one reads every part
		// and makes a new version of each.
		if m := mutationCount(t, s); m != n {
			t.Errorf("%d mutations made to delete nothing", m-n)
		}
		if err := s.DeleteExpired(ctx, 0, "", t0, keep, through); err == nil {
			t.Error("a delete of no tenant: no error")
		}
		if got := copies(t, s); !maps.Equal(got, was) {
			t.Errorf("deleting nothing changed the rows:\n%v\nwas\n%v", got, was)
		}
	})

	t.Run("DeleteExpired", func(t *testing.T) {
		// The shards that hold rows to delete, which get a mutation.
		var holding []int
		for _, seq := range erased {
			i := s.shardOf("team-a", 0, seq)
			if !slices.Contains(holding, i) {
				holding = append(holding, i)
			}
		}
		slices.Sort(holding)
		if len(holding) != len(shards) {
			t.Fatalf("the rows to delete are on shards %v alone: the test would not show a delete on every shard", holding)
		}

		// With merges stopped no mutation runs: ctx ends the wait, and the
		// error names the shards that did not finish.
		short, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
		err := s.DeleteExpired(short, 0, "team-a", t0, keep, through)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("a delete that cannot finish: %v, want the deadline", err)
		}
		for _, i := range holding {
			if !strings.Contains(err.Error(), fmt.Sprintf("shard %d:", i+1)) {
				t.Errorf("the error names no shard %d: %v", i+1, err)
			}
		}

		// Called again, it waits until the mutations are done, and not
		// before.
		done := make(chan error, 1)
		go func() { done <- s.DeleteExpired(ctx, 0, "team-a", t0, keep, through) }()
		select {
		case err := <-done:
			t.Fatalf("returned with the mutations held back: %v", err)
		case <-time.After(time.Second):
		}
		setMerges(t, s, both, true)
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(60 * time.Second):
			t.Fatal("no return a minute after the mutations could run")
		}

		// At once: every copy of what was erased is gone, and nothing else.
		got := copies(t, s)
		for _, r := range evs {
			switch n := got[r.key()]; {
			case gone(r) && n != 0:
				t.Errorf("%s (%s): %d rows left, want none", r.key(), r.at.Format(time.RFC3339Nano), n)
			case !gone(r) && n == 0:
				t.Errorf("%s (%s): deleted, want kept", r.key(), r.at.Format(time.RFC3339Nano))
			}
		}
		if len(got) != len(evs)-len(erased) {
			t.Errorf("%d events stored, want %d: %v", len(got), len(evs)-len(erased), got)
		}
		for _, tt := range []struct {
			tenant string
			want   int64
		}{{"team-a", 7}, {"team-b", 3}, {hostileTenant, 1}, {"", 11}} {
			if n, err := s.Count(ctx, tt.tenant); err != nil || n != tt.want {
				t.Errorf("count of %q = %d, %v; want %d", tt.tenant, n, err, tt.want)
			}
		}
		// The next round finds the rest, the late event among them.
		if got, err := s.Expired(ctx, 0, "team-a", t0, keep, 0); err != nil || !slices.Equal(got, []uint64{10, 21}) {
			t.Errorf("expired after the delete: %v, %v; want [10 21]", got, err)
		}
		// Done again, the delete finds nothing and makes no mutation.
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		n := mutationCount(t, s)
		if err := s.DeleteExpired(ctx, 0, "team-a", t0, keep, through); err != nil {
			t.Fatal(err)
		}
		if m := mutationCount(t, s); m != n {
			t.Errorf("a delete done again made %d mutations", m-n)
		}

		// The hostile tenant's name goes into the mutation as it went into
		// the select: its event goes, and no other.
		if err := s.DeleteExpired(ctx, 1, hostileTenant, t0, nil, 3); err != nil {
			t.Fatal(err)
		}
		for _, tt := range []struct {
			tenant string
			want   int64
		}{{"team-a", 7}, {"team-b", 3}, {hostileTenant, 0}, {"", 10}} {
			if n, err := s.Count(ctx, tt.tenant); err != nil || n != tt.want {
				t.Errorf("after deleting the hostile tenant's: count of %q = %d, %v; want %d", tt.tenant, n, err, tt.want)
			}
		}
	})
}

// TestDelete: Delete takes exactly the events of its seqs, with any
// copy a retried insert left, from both shards and batch by batch, and
// leaves a shard that holds none of a batch without a mutation; seqs of
// no event are no error, and a second call changes nothing.
func TestDelete(t *testing.T) {
	ctx := context.Background()
	shards := chtest.Start(t, 2)
	s := open(t, shards)
	evs := demoEvents(t)
	if err := s.Append(ctx, 0, evs); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(ctx, 0, evs[:5]); err != nil { // a retried insert
		t.Fatal(err)
	}
	// Which shard holds which seqs (by a hash of tenant, ledger, seq).
	var held [2][]uint64
	for i := range held {
		out, err := s.exec(ctx, i, "SELECT DISTINCT seq FROM vigil.events_local ORDER BY seq FORMAT TabSeparated", nil)
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.FieldsSeq(string(out)) {
			seq, _ := strconv.ParseUint(line, 10, 64)
			held[i] = append(held[i], seq)
		}
		if len(held[i]) < 6 {
			t.Fatalf("shard %d holds %d events: the test needs more", i+1, len(held[i]))
		}
	}
	// Sorted, the seqs make two batches of six: the first three of each
	// shard, then shard 1's last two and two seqs of no event.
	h0, h1 := held[0], held[1]
	gone := slices.Concat(h0[:3], h1[:3], h0[len(h0)-2:])
	if slices.Max(slices.Concat(h0[:3], h1[:3])) > slices.Min(h0[len(h0)-2:]) {
		t.Fatalf("shard 1's last seqs %v are not past the first three of each shard's: the batches would not be as the test says", h0[len(h0)-2:])
	}
	defer func(n int) { deleteBatch = n }(deleteBatch)
	deleteBatch = 6
	// Seqs of no event, and the order and repeats a caller may give.
	seqs := slices.Concat([]uint64{1 << 50, uint64(len(evs) + 100)}, gone, gone[:1])
	slices.Reverse(seqs)

	mutations := mutationCount(t, s)
	if err := s.Delete(ctx, seqs); err != nil {
		t.Fatal(err)
	}
	if n := mutationCount(t, s) - mutations; n != 3 {
		t.Errorf("%d mutations, want 3: one a shard for the first batch, one for the second on the shard holding it", n)
	}
	left := copies(t, s)
	for _, ev := range evs {
		k := retained{ledger: 0, tenant: ev.Tenant, seq: ev.Seq}.key()
		if slices.Contains(gone, ev.Seq) {
			if left[k] != 0 {
				t.Errorf("event %d: %d copies left after Delete", ev.Seq, left[k])
			}
		} else if left[k] == 0 {
			t.Errorf("event %d was deleted, but not asked", ev.Seq)
		}
	}
	if len(left) != len(evs)-len(gone) {
		t.Errorf("%d events left, want %d", len(left), len(evs)-len(gone))
	}
	if err := s.Delete(ctx, seqs); err != nil {
		t.Fatal(err)
	}
	if again := copies(t, s); len(again) != len(left) {
		t.Errorf("a second Delete left %d events, want %d", len(again), len(left))
	}
	if n := mutationCount(t, s) - mutations; n != 3 {
		t.Errorf("a second Delete of what is gone made %d mutations", n-3)
	}
	if err := s.Delete(ctx, nil); err != nil {
		t.Errorf("Delete of no seqs: %v", err)
	}

	// A batch of more seqs than the server's default max_ast_elements
	// (50,000) lets in a list: one event among 60,000 seqs.
	deleteBatch = 100_000
	last := h1[len(h1)-1]
	many := []uint64{last}
	for i := range 60_000 {
		many = append(many, 1<<40+uint64(i))
	}
	if err := s.Delete(ctx, many); err != nil {
		t.Fatal(err)
	}
	if n := copies(t, s)[retained{ledger: 0, tenant: tenantOf(evs, last), seq: last}.key()]; n != 0 {
		t.Errorf("event %d: %d copies left after a Delete of 60,000 seqs", last, n)
	}
}

// tenantOf is the tenant of the event of seq.
func tenantOf(evs []*event.Event, seq uint64) string {
	for _, ev := range evs {
		if ev.Seq == seq {
			return ev.Tenant
		}
	}
	return ""
}
