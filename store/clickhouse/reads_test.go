package clickhouse

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/inventory"
	"github.com/vigilsec/vigil/query"
	"github.com/vigilsec/vigil/store/clickhouse/chtest"
	"github.com/vigilsec/vigil/store/duckdb"
)

// part is a seq of ledger partition p, as a scale-out numbers events.
func part(p, index uint64) uint64 { return p<<40 | index }

// readStores stores the demo's CloudTrail (Stratus Red Team's
// detonations, 310 events of tenants team-a and team-b) in a cluster of
// two shards and in an embedded store, the oracle, and returns the
// cluster's shards and the events in seq order. The events are numbered
// as a scale-out numbers them: the first half in ledger partition 1, the
// rest in partition 2. Some are given an origin (the detonations have
// none): an IAM user's for every third of those made with a temporary
// credential, an STS session's for every seventh, as identity
// reassembly leaves them.
//
// Merges are stopped on the shards, and the newest 40 events and every
// fifth are stored again, as a retried batch stores them, the newest ten
// three times: their copies stay until the test ends.
func readStores(t *testing.T) (*Store, *duckdb.DB, []*chtest.Shard, []*event.Event) {
	t.Helper()
	ctx := context.Background()
	// With events of other sources whose documents have the fields
	// CloudTrail's parser copies into columns.
	evs := append(demoEvents(t), otherSources(t, 0)...)
	for i, e := range evs {
		if half := len(evs) / 2; i < half {
			e.Seq = part(1, uint64(i))
		} else {
			e.Seq = part(2, uint64(i-half))
		}
		if strings.HasPrefix(e.Session.ID, "ASIA") {
			switch {
			case i%7 == 0:
				e.Session.Origin = "arn:aws:sts::457448411975:assumed-role/pivot/s" + strconv.Itoa(i)
			case i%3 == 0:
				e.Session.Origin = "arn:aws:iam::457448411975:user/christophe"
			}
		}
	}
	shards := chtest.Start(t, 2)
	ch := open(t, shards)
	setMerges(t, ch, []int{0, 1}, false)
	appendAll := func(evs []*event.Event) {
		t.Helper()
		for p := uint16(1); p <= 2; p++ {
			var in []*event.Event
			for _, e := range evs {
				if uint16(e.Seq>>40) == p {
					in = append(in, e)
				}
			}
			if err := ch.Append(ctx, p, in); err != nil {
				t.Fatal(err)
			}
		}
	}
	appendAll(evs)
	newest := slices.Clone(evs)
	slices.SortFunc(newest, func(a, b *event.Event) int { return b.Time.Compare(a.Time) })
	retried := slices.Clip(newest[:40])
	for i := 0; i < len(evs); i += 5 {
		retried = append(retried, evs[i])
	}
	appendAll(retried)
	// The newest ten twice more: four copies, more than twice the rows
	// of a bound hold.
	appendAll(newest[:10])
	appendAll(newest[:10])
	if n, want := rawCount(t, ch), len(evs)+len(retried)+20; n != int64(want) {
		t.Fatalf("%d rows for %d events, want %d: the copies are not there to be read", n, len(evs), want)
	}

	db := oracle(t)
	if err := db.Append(ctx, evs); err != nil {
		t.Fatal(err)
	}
	return ch, db, shards, evs
}

// rawCount is the number of rows of the events table, copies counted.
func rawCount(t *testing.T, s *Store) int64 {
	t.Helper()
	out, err := s.query(context.Background(), 0, "SELECT count() FROM events")
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// An eventReader is what the two stores share of the reads.
type eventReader interface {
	Seqs(context.Context, query.Request) ([]uint64, error)
	EventsAt(context.Context, []uint64, func(*event.Event) error) error
	Events(context.Context, uint64, uint64, func(*event.Event) error) error
	Sessions(context.Context, query.Request, func(*event.Event) error) error
}

var (
	_ eventReader = (*Store)(nil)
	_ eventReader = (*duckdb.DB)(nil)
)

// collect returns the events a read gives fn, in order.
func collect(read func(fn func(*event.Event) error) error) ([]*event.Event, error) {
	var out []*event.Event
	err := read(func(e *event.Event) error {
		out = append(out, e)
		return nil
	})
	return out, err
}

// firstDifference says where two lists of events differ first, "" when
// they do not.
func firstDifference(got, want []*event.Event) string {
	for i := range min(len(got), len(want)) {
		if !reflect.DeepEqual(got[i], want[i]) {
			return fmt.Sprintf("event %d:\n%+v\nwant\n%+v", i, got[i], want[i])
		}
	}
	if len(got) != len(want) {
		return fmt.Sprintf("%d events, want %d", len(got), len(want))
	}
	return ""
}

// ascending reports whether seqs are in increasing order, each once.
func ascending(seqs []uint64) bool {
	for i := 1; i < len(seqs); i++ {
		if seqs[i] <= seqs[i-1] {
			return false
		}
	}
	return true
}

func seqsOf(evs []*event.Event) []uint64 {
	out := make([]uint64, len(evs))
	for i, e := range evs {
		out[i] = e.Seq
	}
	return out
}

func parsed(t *testing.T, text string) *query.Query {
	t.Helper()
	if text == "" {
		return nil
	}
	q, err := query.Parse(text)
	if err != nil {
		t.Fatalf("%s: %v", text, err)
	}
	return q
}

// TestReadsAsDuckDB: Seqs, EventsAt, Events and Sessions give on a
// cluster of two shards, some events stored twice, what the embedded
// store gives on the same events: each event once, the same events in
// the same order, no tenant's events outside the scope.
func TestReadsAsDuckDB(t *testing.T) {
	ctx := context.Background()
	ch, db, _, evs := readStores(t)
	bySeq := map[uint64]*event.Event{}
	for _, e := range evs {
		bySeq[e.Seq] = e
	}
	all := query.Scope{All: true}
	teamA := query.Scope{Tenants: []string{"team-a"}}
	// team-b's own events, and team-a's GetPasswordData calls through a
	// grant.
	shared := query.Scope{Tenants: []string{"team-b"}, Shares: []query.Share{{Grant: "g1", Tenant: "team-a", Filter: parsed(t, "action:GetPasswordData")}}}
	inScope := func(sc query.Scope, e *event.Event) bool {
		if sc.Includes(e.Tenant) {
			return true
		}
		return len(sc.Shares) > 0 && e.Tenant == "team-a" && e.Action == "GetPasswordData"
	}
	from, to := time.Date(2024, 7, 31, 0, 0, 0, 0, time.UTC), time.Date(2024, 8, 2, 0, 0, 0, 0, time.UTC)

	t.Run("Seqs", func(t *testing.T) {
		for _, tc := range []struct {
			q        string
			scope    query.Scope
			from, to time.Time
			limit    int
			ranges   [][2]uint64
			want     int // how many seqs, when the test knows; -1 for some, 0 for none
			wantErr  bool
		}{
			{q: "", scope: all, want: len(evs)},
			{q: "*", scope: all, limit: 1, want: 1},
			{q: "*", scope: all, limit: 7, want: 7},
			// More than the events stored twice, and a bound the doubled
			// fetch does not reach at first.
			{q: "*", scope: all, limit: 45, want: 45},
			{q: "*", scope: all, limit: 100, want: 100},
			{q: "*", scope: teamA, want: -1},
			{q: "source:aws.cloudtrail", scope: shared, limit: 1000, want: -1},
			{q: "*", scope: query.Scope{}, want: 0},
			{q: "NOT outcome:success", scope: all, from: from, to: to, want: -1},
			{q: "password", scope: all, limit: 3, want: -1},
			// CloudTrail's events and the others apart, under a UNION ALL
			// (query.Dialect.unionSources), in the events' order.
			{q: "eventName:StopLogging", scope: all, want: -1},
			{q: "eventName:Stop* OR eventName:Get*", scope: all, limit: 1000, want: -1},
			{q: "eventName:Stop* OR eventName:Get*", scope: all, limit: 3, want: 3},
			{q: "NOT eventName:StopLogging", scope: teamA, want: -1},
			{q: "*", scope: all, ranges: [][2]uint64{{part(1, 10), part(1, 40)}, {part(2, 0), part(2, 5)}, {part(2, 150), math.MaxUint64}}, want: -1},
			{q: "| head 5", scope: all, limit: 100, want: 5},
			{q: "| sort actor | head 10", scope: teamA, want: 10},
			// A sort after a head orders the events the head kept.
			{q: "| head 20 | sort action | head 3", scope: all, want: 3},
			{q: "| sort -time | head 50 | sort seq | head 7", scope: shared, want: 7},
			{q: "| head 30 | sort eventName", scope: all, limit: 5, want: 30},
			{q: "action:GetPasswordData | head 4 | sort actor | head 2 | sort time | head 1", scope: all, want: 1},
			// fields makes a table, even of seq.
			{q: "| fields seq, actor | head 4", scope: all, wantErr: true},
			{q: "| stats count() by tenant", scope: all, wantErr: true},
		} {
			name := fmt.Sprintf("%s/%d/%d", tc.q, tc.limit, len(tc.ranges))
			t.Run(name, func(t *testing.T) {
				req := query.Request{Query: parsed(t, tc.q), Scope: tc.scope, From: tc.from, To: tc.to, Limit: tc.limit, SeqRanges: tc.ranges}
				want, wantErr := db.Seqs(ctx, req)
				got, err := ch.Seqs(ctx, req)
				if tc.wantErr {
					if err == nil || wantErr == nil {
						t.Fatalf("errors %v, want one as the embedded store's %v", err, wantErr)
					}
					return
				}
				if err != nil || wantErr != nil {
					t.Fatalf("%v; the embedded store: %v", err, wantErr)
				}
				if !slices.Equal(got, want) {
					t.Errorf("seqs %v\nwant %v", got, want)
				}
				switch {
				case tc.want >= 0 && len(want) != tc.want:
					t.Errorf("the embedded store gave %d seqs, want %d: not the test meant", len(want), tc.want)
				case tc.want < 0 && len(want) == 0:
					t.Errorf("no seqs in the embedded store: not a test")
				}
				if !ascending(got) || got == nil {
					t.Errorf("seqs not ascending, each once, in a list: %v", got)
				}
				for _, seq := range got {
					if e := bySeq[seq]; e == nil || !inScope(tc.scope, e) {
						t.Errorf("seq %d is not one of the scope's events", seq)
					}
				}
			})
		}
	})

	t.Run("SeqsOfScopes", func(t *testing.T) {
		// Against the events themselves: a scope reads its tenants' and
		// what its grants share, and no more.
		for _, sc := range []query.Scope{all, teamA, shared, {Tenants: []string{"team-c"}}} {
			var want []uint64
			for _, e := range evs {
				if inScope(sc, e) {
					want = append(want, e.Seq)
				}
			}
			got, err := ch.Seqs(ctx, query.Request{Scope: sc})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, want) {
				t.Errorf("scope %+v: %d seqs, want %d", sc, len(got), len(want))
			}
		}
	})

	t.Run("EventsAt", func(t *testing.T) {
		all := seqsOf(evs)
		var some []uint64
		for i, seq := range all {
			if i%3 == 0 {
				some = append(some, seq)
			}
		}
		// The embedded store takes no seq with the high bit set.
		missing := []uint64{0, part(1, 9999), part(3, 1), math.MaxInt64}
		for _, tc := range []struct {
			name string
			seqs []uint64
			want int
		}{
			{"all", all, len(evs)},
			{"every third", some, len(some)},
			{"one of two copies", []uint64{evs[0].Seq}, 1},
			{"missing", slices.Sorted(slices.Values(append(slices.Clone(some[:20]), missing...))), 20},
			{"none", nil, 0},
		} {
			t.Run(tc.name, func(t *testing.T) {
				got, err := collect(func(fn func(*event.Event) error) error { return ch.EventsAt(ctx, tc.seqs, fn) })
				if err != nil {
					t.Fatal(err)
				}
				want, err := collect(func(fn func(*event.Event) error) error { return db.EventsAt(ctx, tc.seqs, fn) })
				if err != nil {
					t.Fatal(err)
				}
				if d := firstDifference(got, want); d != "" {
					t.Error(d)
				}
				if len(want) != tc.want || !ascending(seqsOf(got)) {
					t.Errorf("%d events (%d in the embedded store), want %d, ascending and each once", len(got), len(want), tc.want)
				}
			})
		}
		// Unsorted, with a seq twice: the embedded store wants them
		// sorted; the cluster sorts them.
		shuffled := slices.Concat(some[10:20], some[:10], some[5:6])
		got, err := collect(func(fn func(*event.Event) error) error { return ch.EventsAt(ctx, shuffled, fn) })
		if err != nil {
			t.Fatal(err)
		}
		want, err := collect(func(fn func(*event.Event) error) error { return db.EventsAt(ctx, some[:20], fn) })
		if d := firstDifference(got, want); err != nil || d != "" {
			t.Errorf("unsorted seqs: %v %s", err, d)
		}
		// A seq of the top bit, which the embedded store cannot name.
		got, err = collect(func(fn func(*event.Event) error) error {
			return ch.EventsAt(ctx, []uint64{math.MaxUint64, evs[3].Seq}, fn)
		})
		if err != nil || len(got) != 1 || got[0].Seq != evs[3].Seq {
			t.Errorf("EventsAt of the highest seq and another: %d events, %v", len(got), err)
		}
		// fn's error ends the read and comes back as it is.
		stop := errors.New("enough")
		n := 0
		err = ch.EventsAt(ctx, all, func(*event.Event) error {
			if n++; n == 3 {
				return stop
			}
			return nil
		})
		if err != stop || n != 3 {
			t.Errorf("after an error of fn: %v, %d calls", err, n)
		}
	})

	t.Run("Events", func(t *testing.T) {
		// The embedded store reads a range in chunks of seqs, which the
		// scale-out's sparse seqs would make billions of: over wide
		// ranges, its EventsAt of the seqs in the range is the oracle.
		inRange := func(from, to uint64) []*event.Event {
			t.Helper()
			var seqs []uint64
			for _, e := range evs {
				if e.Seq >= from && e.Seq < to {
					seqs = append(seqs, e.Seq)
				}
			}
			want, err := collect(func(fn func(*event.Event) error) error { return db.EventsAt(ctx, seqs, fn) })
			if err != nil {
				t.Fatal(err)
			}
			return want
		}
		half := uint64(len(evs) / 2)
		// Each statement of 18.16 that reads every column costs some
		// tenths of a second here, whatever it finds: short pages are
		// read over short ranges. A page of one or two ends between the
		// copies of an event (every fifth is stored twice) or not.
		for _, tc := range []struct {
			name     string
			from, to uint64
			narrow   bool // the embedded store's Events reads it in a few chunks
			want     int
			pages    []int
		}{
			{"everything", 0, math.MaxUint64, false, len(evs), []int{eventsPage, 100}},
			{"partition 1", part(1, 0), part(2, 0), false, int(half), []int{eventsPage}},
			{"across partitions", part(1, 100), part(2, 20), false, int(half) - 100 + 20, []int{eventsPage, 40}},
			{"one", part(1, 7), part(1, 8), true, 1, []int{eventsPage, 1}},
			{"copies at the ends of pages", part(1, 0), part(1, 12), true, 12, []int{eventsPage, 1, 2}},
			{"a span", part(1, 3), part(1, 60), true, 57, []int{eventsPage, 7}},
			{"nothing there", part(3, 0), part(3, 100), true, 0, []int{eventsPage, 7}},
			{"empty", part(1, 9), part(1, 9), true, 0, []int{eventsPage}},
			{"backwards", part(1, 9), part(1, 3), true, 0, []int{eventsPage}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				want := inRange(tc.from, tc.to)
				if tc.narrow {
					dw, err := collect(func(fn func(*event.Event) error) error { return db.Events(ctx, tc.from, tc.to, fn) })
					if err != nil {
						t.Fatal(err)
					}
					if d := firstDifference(dw, want); d != "" {
						t.Fatalf("the embedded store's Events and EventsAt differ: %s", d)
					}
				}
				if len(want) != tc.want {
					t.Fatalf("%d events in the embedded store, want %d: not the test meant", len(want), tc.want)
				}
				for _, page := range tc.pages {
					got, err := collect(func(fn func(*event.Event) error) error { return ch.events(ctx, tc.from, tc.to, page, fn) })
					if err != nil {
						t.Fatal(err)
					}
					if d := firstDifference(got, want); d != "" {
						t.Errorf("pages of %d: %s", page, d)
					}
				}
			})
		}
		got, err := collect(func(fn func(*event.Event) error) error { return ch.Events(ctx, part(2, 0), part(2, 10), fn) })
		if d := firstDifference(got, inRange(part(2, 0), part(2, 10))); err != nil || d != "" || len(got) != 10 {
			t.Errorf("Events: %v %s", err, d)
		}
	})

	t.Run("Sessions", func(t *testing.T) {
		for _, tc := range []struct {
			q        string
			scope    query.Scope
			from, to time.Time
			limit    int
		}{
			{q: inventory.UnresolvedQuery, scope: all, from: from, to: to},
			{q: inventory.UnresolvedQuery, scope: all},
			{q: "", scope: all, limit: 3}, // the limit is not applied
			{q: "session:ASIA*", scope: teamA},
			{q: "*", scope: shared},
			{q: "| head 7", scope: all},
			{q: "session:ASIA* | sort actor | head 12 | sort session_id", scope: all},
			{q: "| sort -session_origin | head 25", scope: all},
		} {
			t.Run(tc.q, func(t *testing.T) {
				req := query.Request{Query: parsed(t, tc.q), Scope: tc.scope, From: tc.from, To: tc.to, Limit: tc.limit}
				got, err := collect(func(fn func(*event.Event) error) error { return ch.Sessions(ctx, req, fn) })
				if err != nil {
					t.Fatal(err)
				}
				want, err := collect(func(fn func(*event.Event) error) error { return db.Sessions(ctx, req, fn) })
				if err != nil {
					t.Fatal(err)
				}
				if d := firstDifference(got, want); d != "" {
					t.Error(d)
				}
				if len(want) == 0 {
					t.Errorf("no events in the embedded store: not a test")
				}
				seen := map[uint64]bool{}
				origins := 0
				for _, e := range got {
					if seen[e.Seq] || !inScope(tc.scope, bySeq[e.Seq]) {
						t.Errorf("event %d twice or outside the scope", e.Seq)
					}
					seen[e.Seq] = true
					full := bySeq[e.Seq]
					if e.Raw != nil || e.Action != "" || e.Session != full.Session || e.Actor.ID != full.Actor.ID || !e.Time.Equal(full.Time) {
						t.Errorf("event %d: %+v, want only the session fields of %+v", e.Seq, e, full)
					}
					if e.Session.Origin != "" {
						origins++
					}
				}
				if tc.q == inventory.UnresolvedQuery && origins == 0 {
					t.Errorf("no event with an origin: not a test of the origins read")
				}
			})
		}
		stop := errors.New("enough")
		n := 0
		err := ch.Sessions(ctx, query.Request{Scope: all}, func(*event.Event) error {
			if n++; n == 2 {
				return stop
			}
			return nil
		})
		if err != stop || n != 2 {
			t.Errorf("after an error of fn: %v, %d calls", err, n)
		}
	})
}

// TestSetOriginsAsDuckDB: SetOrigins changes the origin of the events
// named, every copy of them, and nothing else, as the embedded store's
// does: reads and searches of both stores agree after it; a shard that
// holds none of the events runs no mutation.
func TestSetOriginsAsDuckDB(t *testing.T) {
	ctx := context.Background()
	ch, db, shards, evs := readStores(t)
	// Mutations run where merges do.
	setMerges(t, ch, []int{0, 1}, true)
	readAll := func(r eventReader) []*event.Event {
		t.Helper()
		got, err := collect(func(fn func(*event.Event) error) error { return r.EventsAt(ctx, seqsOf(evs), fn) })
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	before := readAll(ch)
	if d := firstDifference(before, readAll(db)); d != "" {
		t.Fatalf("before: %s", d)
	}
	withOrigin := slices.IndexFunc(evs, func(e *event.Event) bool { return e.Session.Origin != "" })
	newest := slices.MaxFunc(evs, func(a, b *event.Event) int { return a.Time.Compare(b.Time) }) // stored twice
	hostile := `arn:aws:iam::1:user/o'brien\'); DROP TABLE events_local; --`
	origins := map[uint64]string{
		evs[0].Seq:            "arn:aws:iam::457448411975:user/alice", // stored twice
		evs[1].Seq:            hostile,
		evs[len(evs)-1].Seq:   "arn:aws:iam::1:user/bob",
		newest.Seq:            "arn:aws:iam::1:user/carol",
		evs[withOrigin].Seq:   "", // an origin taken back
		evs[len(evs)/2+1].Seq: "arn:aws:iam::1:user/dave\n",
		part(3, 1):            "arn:aws:iam::1:user/nobody", // no such event
	}
	held := make([]bool, len(shards))
	for _, e := range evs {
		if _, ok := origins[e.Seq]; ok {
			held[ch.shardOf(e.Tenant, uint16(e.Seq>>40), e.Seq)] = true
		}
	}
	if !held[0] || !held[1] {
		t.Fatalf("the events named are on shards %v, not both: not the test meant", held)
	}

	check := func(origins map[uint64]string, before []*event.Event) []*event.Event {
		t.Helper()
		after := readAll(ch)
		if d := firstDifference(after, readAll(db)); d != "" {
			t.Errorf("after SetOrigins, the stores differ: %s", d)
		}
		for i, e := range after {
			want := *before[i]
			if o, ok := origins[e.Seq]; ok {
				want.Session.Origin = o
			}
			if !reflect.DeepEqual(e, &want) {
				t.Errorf("event %d after SetOrigins:\n%+v\nwant\n%+v", e.Seq, e, &want)
			}
		}
		// Every copy, not only the one a read keeps.
		named := slices.Sorted(maps.Keys(origins))
		out, err := ch.query(ctx, 0, "SELECT toString(seq) AS seq_text, session_origin FROM events WHERE seq IN ("+seqList(named)+") FORMAT JSONEachRow")
		if err != nil {
			t.Fatal(err)
		}
		rows := 0
		for line := range strings.Lines(string(out)) {
			var r struct {
				Seq    uint64  `json:"seq_text,string"`
				Origin *string `json:"session_origin"`
			}
			if err := json.Unmarshal([]byte(line), &r); err != nil || r.Origin == nil || *r.Origin != origins[r.Seq] {
				t.Errorf("a row of event %d holds the origin %v (%v), want %q", r.Seq, r.Origin, err, origins[r.Seq])
			}
			rows++
		}
		if rows < len(named)-1 {
			t.Errorf("%d rows of the %d events named", rows, len(named))
		}
		// Searches see what the embedded store's see, an origin taken
		// back included (empty, not NULL, in both).
		for _, text := range []string{`NOT session_origin:*`, `session_origin:""`, `session_origin:` + query.Quote(hostile), `session_origin:arn*`} {
			got, want := searchBoth(t, ch, db, query.Request{Query: parsed(t, text), Scope: query.Scope{All: true}})
			if d := difference(got, want); d != "" {
				t.Errorf("%s: %s", text, d)
			}
		}
		var sessions [2][]*event.Event
		for i, r := range []eventReader{ch, db} {
			var err error
			sessions[i], err = collect(func(fn func(*event.Event) error) error {
				return r.Sessions(ctx, query.Request{Scope: query.Scope{All: true}}, fn)
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		if d := firstDifference(sessions[0], sessions[1]); d != "" {
			t.Errorf("sessions after SetOrigins: %s", d)
		}
		return after
	}

	for _, r := range []interface {
		SetOrigins(context.Context, map[uint64]string) error
	}{ch, db} {
		if err := r.SetOrigins(ctx, origins); err != nil {
			t.Fatal(err)
		}
	}
	after := check(origins, before)

	// Again, one event a batch, over what the first set: a mutation
	// each, on the shard that holds the event only.
	again := map[uint64]string{evs[0].Seq: "arn:aws:iam::1:user/erin", evs[2].Seq: "arn:aws:iam::1:user/frank", evs[3].Seq: "arn:aws:iam::1:user/grace"}
	var counts [2]int
	for i := range shards {
		counts[i] = shardMutations(t, ch, i)
	}
	if err := ch.setOrigins(ctx, again, 1); err != nil {
		t.Fatal(err)
	}
	if err := db.SetOrigins(ctx, again); err != nil {
		t.Fatal(err)
	}
	check(again, after)
	var wantCounts [2]int
	for _, e := range evs {
		if _, ok := again[e.Seq]; ok {
			wantCounts[ch.shardOf(e.Tenant, uint16(e.Seq>>40), e.Seq)]++
		}
	}
	for i := range shards {
		if n := shardMutations(t, ch, i) - counts[i]; n != wantCounts[i] {
			t.Errorf("shard %d ran %d mutations, want %d, one per event it holds", i+1, n, wantCounts[i])
		}
	}
	if err := ch.SetOrigins(ctx, nil); err != nil {
		t.Errorf("no origins: %v", err)
	}
}

// shardMutations is how many mutations of events_local a shard lists.
func shardMutations(t *testing.T, s *Store, shard int) int {
	t.Helper()
	ms, err := s.mutations(context.Background(), shard, "events_local", false)
	if err != nil {
		t.Fatal(err)
	}
	return len(ms)
}
