package clickhouse

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/query"
	"github.com/vigilsec/vigil/store/clickhouse/chtest"
)

// wordEvent is an event of tenant acme with raw text text.
func wordEvent(seq uint64, text string) *event.Event {
	t := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(seq) * time.Second)
	return &event.Event{Seq: seq, Time: t, Received: t, Tenant: "acme", Source: "json", Class: "other", Raw: []byte(text)}
}

// within counts the seqs that lie in the ranges rs.
func within(rs [][2]uint64, seqs []uint64) int {
	n := 0
	for _, seq := range seqs {
		for _, r := range rs {
			if r[0] <= seq && seq <= r[1] {
				n++
				break
			}
		}
	}
	return n
}

// TestWordIndex: a search for words on the cluster reads only the seq
// ranges whose filters may hold them, and answers as the embedded store
// does: for CloudTrail records stored in several appends, for events
// stored without filters (before the index), beside a filter of another
// format, for events appended since the index was loaded, and from a
// process that loads the filters afresh.
func TestWordIndex(t *testing.T) {
	ctx := context.Background()
	shards := chtest.Start(t, 2)
	ch := open(t, shards)
	db := oracle(t)
	var stored []uint64 // the seqs of the events stored
	appendBoth := func(evs []*event.Event) {
		t.Helper()
		stored = append(stored, seqsOf(evs)...)
		if err := ch.Append(ctx, 0, evs); err != nil {
			t.Fatal(err)
		}
		if err := db.Append(ctx, evs); err != nil {
			t.Fatal(err)
		}
	}
	evs := demoEvents(t)
	for part := range slices.Chunk(evs, 40) {
		appendBoth(part)
	}
	all := func(q string) query.Request {
		return query.Request{Query: parsed(t, q), Scope: query.Scope{All: true}, Limit: 1000}
	}
	same := func(stage, q string) int {
		t.Helper()
		got, want := searchBoth(t, ch, db, all(q))
		if d := difference(got, want); d != "" {
			t.Errorf("%s: %s: %s", stage, q, d)
		}
		return len(got.Rows)
	}
	needles := []string{`"203.0.113.66"`, `StopLogging`, `"cloudtrail.amazonaws.com"`, `ConsoleLogin AND Failure`, `nosuchwordanywhere`}
	for _, q := range needles {
		same("appended", q)
	}
	if n := same("appended", `StopLogging`); n == 0 {
		t.Fatal("the demo has no StopLogging: pick another needle")
	}
	// The index rules out most of the events for a rare word, and all of
	// them for an absent one: a shard's filters span only its events, but
	// the seqs between are the other shard's, whose filters cover them.
	for q, most := range map[string]int{`StopLogging`: len(evs) / 4, `nosuchwordanywhere`: 0} {
		r, err := ch.restrict(ctx, all(q))
		if err != nil {
			t.Fatal(err)
		}
		if n := within(r.SeqRanges, stored); r.SeqRanges == nil || n > most {
			t.Errorf("%s: the index leaves %d events of %d to read (%v), want at most %d", q, n, len(evs), r.SeqRanges, most)
		}
	}

	// Seqs above the demo's, each run of them with a seq amid them on
	// shard 1 (mid): the filters of the others, on both shards, span it.
	next := uint64(len(evs)) + 1000
	run := func() (others []uint64, mid uint64) {
		seqs := make([]uint64, 21)
		for i := range seqs {
			seqs[i] = next
			next++
		}
		i := 10
		for ch.shardOf("acme", 0, seqs[i]) != 1 {
			i++
		}
		return slices.Delete(slices.Clone(seqs), i, i+1), seqs[i]
	}
	plain := func(seqs []uint64) []*event.Event {
		var out []*event.Event
		for _, seq := range seqs {
			out = append(out, wordEvent(seq, "plain"))
		}
		return out
	}
	// storeUnindexed stores an event without its filter, as before the
	// index existed.
	storeUnindexed := func(e *event.Event) {
		t.Helper()
		stored = append(stored, e.Seq)
		if err := ch.insert(ctx, ch.shardOf("acme", 0, e.Seq), 0, []*event.Event{e}); err != nil {
			t.Fatal(err)
		}
		if err := db.Append(ctx, []*event.Event{e}); err != nil {
			t.Fatal(err)
		}
	}

	// Events stored without a filter are searched in full.
	_, legacy := run()
	storeUnindexed(wordEvent(legacy, "legacy needle-one"))
	same("unindexed", `"needle-one"`)

	// A filter of another format is not trusted to say no, even within
	// the range of filters that did not see its event.
	others, future := run()
	appendBoth(plain(others))
	storeUnindexed(wordEvent(future, "future needle-two"))
	if _, err := ch.exec(ctx, 1, fmt.Sprintf("INSERT INTO vigil.word_blooms_local (seq_lo, seq_hi, row_count, algo, hashes, bits) VALUES (%d, %d, 1, 99, 6, 'x')", future, future), nil); err != nil {
		t.Fatal(err)
	}
	if n := same("beside a filter of another format", `"needle-two"`); n != 1 {
		t.Errorf("needle-two: %d events, want 1", n)
	}

	// Appended since the index was loaded, within the range of filters
	// loaded before: found, its filter loaded before the search.
	others, late := run()
	appendBoth(plain(others))
	same("loaded", `"needle-three"`)
	appendBoth([]*event.Event{wordEvent(late, "late needle-three")})
	if n := same("appended since", `"needle-three"`); n != 1 {
		t.Errorf("needle-three: %d events, want 1", n)
	}

	// A filter whose insert began before the last load and ended after
	// it, which the shard dates from its start: loaded by the next.
	others, slow := run()
	appendBoth(plain(others))
	same("loaded", `"needle-four"`)
	e := wordEvent(slow, "slow needle-four")
	if err := ch.storeBlooms(ctx, 1, []*event.Event{e}); err != nil {
		t.Fatal(err)
	}
	where := fmt.Sprintf("seq_lo = %d", slow)
	if _, err := ch.mutateIfAny(ctx, 1, "word_blooms_local", where, fmt.Sprintf("UPDATE added = toDateTime(%d) WHERE %s", ch.words.shards[1].since-bloomsMargin/2, where)); err != nil {
		t.Fatal(err)
	}
	storeUnindexed(e) // its filter stored above
	if n := same("begun before the last load", `"needle-four"`); n != 1 {
		t.Errorf("needle-four: %d events, want 1", n)
	}

	// Another process loads every filter, before its first search, here
	// a few a statement.
	defer func(n int) { bloomsChunkKeys = n }(bloomsChunkKeys)
	bloomsChunkKeys = 3
	fresh := open(t, shards)
	if err := fresh.LoadWordIndex(ctx); err != nil || len(fresh.words.blocks) != len(ch.words.blocks) {
		t.Errorf("LoadWordIndex: %d filters (%v), want %d", len(fresh.words.blocks), err, len(ch.words.blocks))
	}
	for _, q := range append(needles, `"needle-one"`, `"needle-two"`, `"needle-three"`, `"needle-four"`) {
		got, want := searchBoth(t, fresh, db, all(q))
		if d := difference(got, want); d != "" {
			t.Errorf("another process: %s: %s", q, d)
		}
	}
	r, err := fresh.restrict(ctx, all(`nosuchwordanywhere`))
	// The two unindexed events (one of another format) are read.
	if n := within(r.SeqRanges, stored); err != nil || within(r.SeqRanges, []uint64{legacy, future}) != 2 || n != 2 {
		t.Errorf("another process: the index leaves %d events to read (%v), want the 2 unindexed: %v", n, err, r.SeqRanges)
	}
	// Hunts and the seqs of a query go through the index too.
	seqs, err := fresh.Seqs(ctx, all(`"needle-three"`))
	if err != nil || !slices.Equal(seqs, []uint64{late}) {
		t.Errorf("Seqs: %v (%v), want [%d]", seqs, err, late)
	}
	var scanned []uint64
	err = fresh.Scan(ctx, all(`"needle-two" OR "needle-three"`), func(e *event.Event) error {
		scanned = append(scanned, e.Seq)
		return nil
	})
	if err != nil || !slices.Equal(scanned, []uint64{future, late}) {
		t.Errorf("Scan: %v (%v), want [%d %d]", scanned, err, future, late)
	}
}
