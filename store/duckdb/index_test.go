package duckdb

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/query"
	"github.com/vigilsec/vigil/store/wordindex"
	"github.com/vigilsec/vigil/store/wordindex/wordtest"
)

// textGen makes events whose raw text mixes common words, addresses and,
// in chosen batches, rare ones.
type textGen struct {
	r    *rand.Rand
	t    time.Time
	rare map[int][]string // batch → texts planted in one event each
	next uint64           // the seq of the next event
}

var commonWords = []string{
	"the", "user", "logged", "in", "from", "for", "trail", "main", "CreateUser", "AssumeRole",
	"alice", "bob", "eventName", "us-east-1", "arn:aws:iam::111111111111:user/alice", "ok", "a",
	"stop", "logging", "StopLogging", "x1", "Élan", "GET", "/index.html", "200", "_id",
}

func newTextGen() *textGen {
	return &textGen{
		next: 1,
		r:    rand.New(rand.NewPCG(11, 12)),
		t:    time.Date(2024, 7, 1, 0, 0, 0, 0, time.UTC),
		rare: map[int][]string{
			0: {"Stop Logging now", "stop  logging twice"},
			1: {"by Christophe", "zebra"},
			2: {"zanzibar", "élodie", `{"ip":"86.245.153.234"}`},
			3: {"CHRISTOPHE!", "bad \xff\xfe utf8 zebra", "zebra"},
			4: {"86.245.153.2345", "from 186.245.153.234"},
			5: {"christopher", "stop logging"},
			6: {"ÉLODIE", "zanzibar"},
			7: {"ip 86.245.153.234 port 22", "Zanzibar."},
		},
	}
}

func (g *textGen) ip() string {
	return fmt.Sprintf("%d.%d.%d.%d", 10+g.r.IntN(3), g.r.IntN(256), g.r.IntN(256), g.r.IntN(256))
}

// batch returns n events of batch k, out of time order.
func (g *textGen) batch(k, n int) []*event.Event {
	evs := make([]*event.Event, n)
	for i := range evs {
		var b strings.Builder
		for j := range 3 + g.r.IntN(10) {
			if j > 0 {
				b.WriteString(" ")
			}
			if g.r.IntN(5) == 0 {
				b.WriteString(g.ip())
			} else {
				b.WriteString(commonWords[g.r.IntN(len(commonWords))])
			}
		}
		evs[i] = &event.Event{
			Time: g.t.Add(time.Duration(g.r.IntN(1000000)) * time.Second), Received: g.t,
			Tenant: "t", Source: "json", Class: "other", Raw: []byte(b.String()),
		}
	}
	for i, s := range g.rare[k] {
		e := evs[(i*7919+k)%n]
		e.Raw = append(e.Raw, " "+s+" "...)
	}
	g.next = number(evs, g.next)
	return evs
}

// wordStore is a store under test and what the test put in it.
type wordStore struct {
	t    *testing.T
	path string
	db   *DB
	raws map[uint64]string // by seq: raw as stored
}

func newWordStore(t *testing.T) *wordStore {
	ws := &wordStore{t: t, path: filepath.Join(t.TempDir(), "events.duckdb"), raws: map[uint64]string{}}
	ws.reopen()
	t.Cleanup(func() { ws.db.Close() })
	return ws
}

func (ws *wordStore) reopen() {
	ws.t.Helper()
	if ws.db != nil {
		if err := ws.db.Close(); err != nil {
			ws.t.Fatal(err)
		}
	}
	db, err := Open(Options{Path: ws.path})
	if err != nil {
		ws.t.Fatal(err)
	}
	ws.db = db
}

func (ws *wordStore) appended(evs []*event.Event) {
	for _, e := range evs {
		ws.raws[e.Seq] = strings.ToValidUTF8(string(e.Raw), "\ufffd")
	}
}

func (ws *wordStore) append(evs []*event.Event) {
	ws.t.Helper()
	if err := ws.db.Append(context.Background(), evs); err != nil {
		ws.t.Fatal(err)
	}
	ws.appended(evs)
}

// insert adds a row other than by Append.
func (ws *wordStore) insert(seq uint64, raw string) {
	ws.t.Helper()
	_, err := ws.db.SQL().Exec(`INSERT INTO events (seq, time, received, skewed, tenant, source, class, raw)
		VALUES (?, TIMESTAMP_NS '2024-01-01 00:00:00', TIMESTAMP_NS '2024-01-01 00:00:00', false, 't', 'json', 'other', ?)`, seq, raw)
	if err != nil {
		ws.t.Fatal(err)
	}
	ws.raws[seq] = raw
}

// seqs runs q and returns the seqs of the events found, sorted.
func (ws *wordStore) seqs(q string) []uint64 {
	ws.t.Helper()
	res := search(ws.t, ws.db, q, query.Scope{All: true})
	c := col(res, "seq")
	var out []uint64
	for _, row := range res.Rows {
		out = append(out, row[c].(uint64))
	}
	slices.Sort(out)
	return out
}

// rows runs q and returns its rows, rendered.
func (ws *wordStore) rows(q string) string {
	ws.t.Helper()
	return fmt.Sprint(search(ws.t, ws.db, q, query.Scope{All: true}).Rows)
}

// scan finds the events holding needle as words by reading every raw
// text in Go, as the SQL does: a substring test, then the pattern.
func (ws *wordStore) scan(needle string) []uint64 {
	re := wordtest.Regexp(needle)
	var out []uint64
	for seq, raw := range ws.raws {
		if strings.Contains(strings.ToLower(raw), strings.ToLower(needle)) && re.MatchString(raw) {
			out = append(out, seq)
		}
	}
	slices.Sort(out)
	return out
}

var needles = []string{
	"zanzibar", "ZANZIBAR", "zebra", "nowhere", "the", "alice", "arn:aws:iam::111111111111:user/alice",
	"86.245.153.234", "86.245.153", "245.153.234", "6.245.153.234", "86.245.153.2345",
	"christophe", "Christophe", "christopher", "christ", "stop logging", "Stop Logging now", "stop  logging",
	"élodie", "ÉLODIE", "Élan", "utf8", "\ufffd", "/index.html", "_id", "a", "x1 a",
}

// check compares the store's answers with a scan, and with the answers
// of the store without its index.
func (ws *wordStore) check(stage string) {
	ws.checkWith(stage, true)
}

// checkWith is check, and when pruned, that the index rules out most
// events for a rare word.
func (ws *wordStore) checkWith(stage string, pruned bool) {
	ws.t.Helper()
	quote := func(s string) string { return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"` }
	for _, n := range needles {
		got, want := ws.seqs(quote(n)), ws.scan(n)
		if !slices.Equal(got, want) {
			ws.t.Errorf("%s: %q finds %v, want %v", stage, n, got, want)
		}
	}
	for _, q := range []string{
		`zanzibar the`, `zanzibar OR christophe`, `-zanzibar`, `christ*`, `zanzibar | stats count()`,
		`christophe | stats count() by source`, `86.245.153.234 zanzibar`, `"" zanzibar`, `"-" stop`, `*`,
	} {
		ws.db.words.searchOff = true
		want := ws.rows(q)
		ws.db.words.searchOff = false
		if got := ws.rows(q); got != want {
			ws.t.Errorf("%s: %s finds %v with the index, %v without", stage, q, got, want)
		}
	}
	if !pruned {
		return
	}
	req := ws.db.words.restrict(context.Background(), query.Request{Query: mustParse(ws.t, "zanzibar")})
	if req.SeqRanges == nil {
		ws.t.Errorf("%s: the index rules out nothing for a rare word", stage)
	}
	read := 0
	for seq := range ws.raws {
		if slices.ContainsFunc(req.SeqRanges, func(r [2]uint64) bool { return r[0] <= seq && seq <= r[1] }) {
			read++
		}
	}
	if read > len(ws.raws)/3 {
		ws.t.Errorf("%s: zanzibar reads %d events of %d (ranges %v)", stage, read, len(ws.raws), req.SeqRanges)
	}
}

func mustParse(t *testing.T, s string) *query.Query {
	t.Helper()
	q, err := query.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func TestWordSearch(t *testing.T) {
	ws := newWordStore(t)
	g := newTextGen()
	// One block, several, a remainder, tiny appends.
	for k, n := range []int{3000, 5000, 9000, 100, 1, 4096} {
		ws.append(g.batch(k, n))
	}
	ws.check("fresh")
	ws.reopen()
	ws.check("reopened")
	ws.append(g.batch(6, 2000))
	ws.append(g.batch(7, 5000))
	ws.check("appended after reopening")
	ws.reopen()
	ws.check("reopened again")
}

func TestWordSearchLoader(t *testing.T) {
	ws := newWordStore(t)
	g := newTextGen()
	ctx := context.Background()
	l, err := ws.db.NewLoader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for k, n := range []int{3000, 5000, 9000, 100, 1} {
		evs := g.batch(k, n)
		if err := l.Append(ctx, evs); err != nil {
			t.Fatal(err)
		}
		ws.appended(evs)
	}
	// The index is loaded before the loader commits: it learns of the
	// loader's blocks when they commit.
	ws.db.words.load(ctx)
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	ws.check("loaded")
	ws.append(g.batch(5, 3000))
	ws.reopen()
	ws.check("loaded and reopened")
}

// Rows that no filter covers, or that a filter may not have seen, are
// always searched.
func TestWordSearchUncovered(t *testing.T) {
	ws := newWordStore(t)
	g := newTextGen()
	for k, n := range []int{3000, 5000, 9000} {
		ws.append(g.batch(k, n))
	}
	// Filters lost, or written by another version of the index.
	if _, err := ws.db.SQL().Exec("DELETE FROM token_blooms_1 WHERE seq_lo = (SELECT min(seq_lo) FROM token_blooms_1)"); err != nil {
		t.Fatal(err)
	}
	if _, err := ws.db.SQL().Exec("UPDATE token_blooms_1 SET algo = 99 WHERE seq_lo = (SELECT max(seq_lo) FROM token_blooms_1)"); err != nil {
		t.Fatal(err)
	}
	// A row above every filter.
	ws.insert(20000, "nowhere")
	ws.reopen()
	ws.checkWith("filters missing", false)

	// Rows added other than by Append inside the range of a filter, with
	// a seq already taken and with a new one: the filter did not see
	// them.
	ws.insert(3500, "zanzibar nowhere")
	ws.insert(20, "zanzibar")
	ws.reopen()
	ws.checkWith("rows outside append", false)
	if got := ws.seqs("nowhere"); !slices.Equal(got, []uint64{3500, 20000}) {
		t.Errorf("nowhere finds %v", got)
	}
}

// A store that predates the index, opened read-only, has no filters to
// load and searches everything.
func TestWordSearchWithoutTable(t *testing.T) {
	ws := newWordStore(t)
	ws.append(newTextGen().batch(2, 1000))
	if _, err := ws.db.SQL().Exec("DROP TABLE token_blooms_1"); err != nil {
		t.Fatal(err)
	}
	ws.db.Close()
	db, err := Open(Options{Path: ws.path, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	ws.db = db
	if got, want := ws.seqs("zanzibar"), ws.scan("zanzibar"); len(want) != 1 || !slices.Equal(got, want) {
		t.Errorf("zanzibar finds %v, want %v", got, want)
	}
}

// Filters go to segment tables of bounded size, from appends and from
// loaders; a loader whose transaction began before a segment was started
// appends to the one it sees.
func TestWordIndexSegments(t *testing.T) {
	defer func(n int) { segmentBytes = n }(segmentBytes)
	segmentBytes = 20 << 10

	ws := newWordStore(t)
	g := newTextGen()
	ctx := context.Background()
	l, err := ws.db.NewLoader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	evs := g.batch(0, 3000)
	if err := l.Append(ctx, evs); err != nil {
		t.Fatal(err)
	}
	ws.appended(evs)
	for k, n := range []int{5000, 9000, 100, 1} {
		ws.append(g.batch(k+1, n))
	}
	evs = g.batch(5, 4096)
	if err := l.Append(ctx, evs); err != nil {
		t.Fatal(err)
	}
	ws.appended(evs)
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	ws.append(g.batch(6, 2000))

	segs, err := ws.db.words.segments(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(segs) < 3 {
		t.Errorf("segments %v, want several", segs)
	}
	var stored, rows int
	for _, n := range segs {
		var c, r int
		if err := ws.db.SQL().QueryRow("SELECT count(*), coalesce(sum(row_count), 0) FROM "+segmentName(n)).Scan(&c, &r); err != nil {
			t.Fatal(err)
		}
		stored, rows = stored+c, rows+r
	}
	if rows != len(ws.raws) {
		t.Errorf("filters of %d events stored in %d blocks, want %d events", rows, stored, len(ws.raws))
	}
	ws.check("segments")
	ws.reopen()
	ws.check("segments reopened")
}

// cloudTrailEvents returns n events made from the fixture records, each
// with its own event and request ids, source address and time, as in a
// real log, and with the normalized fields the store keeps set.
func cloudTrailEvents(tb testing.TB, n int) []*event.Event {
	recs := wordtest.Records(tb)
	r := rand.New(rand.NewPCG(13, 14))
	t0 := time.Date(2024, 7, 1, 0, 0, 0, 0, time.UTC)
	uuid := func() string {
		return fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", r.Uint32(), r.Uint32()&0xffff, r.Uint32()&0xffff, r.Uint32()&0xffff, r.Uint64()&0xffffffffffff)
	}
	evs := make([]*event.Event, n)
	for i := range evs {
		var m map[string]any
		if err := json.Unmarshal(recs[i%len(recs)], &m); err != nil {
			tb.Fatal(err)
		}
		ts := t0.Add(time.Duration(r.IntN(30*24*3600)) * time.Second)
		ip := fmt.Sprintf("%d.%d.%d.%d", 1+r.IntN(223), r.IntN(256), r.IntN(256), 1+r.IntN(254))
		m["eventID"], m["requestID"], m["sourceIPAddress"], m["eventTime"] = uuid(), uuid(), ip, ts.Format(time.RFC3339)
		raw, err := json.Marshal(m)
		if err != nil {
			tb.Fatal(err)
		}
		str := func(k string) string { s, _ := m[k].(string); return s }
		id, _ := m["userIdentity"].(map[string]any)
		arn, _ := id["arn"].(string)
		typ, _ := id["type"].(string)
		outcome := "success"
		if str("errorCode") != "" {
			outcome = "failure"
		}
		evs[i] = &event.Event{
			Time: ts, Received: ts.Add(5 * time.Minute), Tenant: "bench", Source: "aws.cloudtrail", Class: "api_activity",
			ID: str("eventID"), Cloud: event.Cloud{Provider: "aws", Account: str("recipientAccountId"), Region: str("awsRegion")},
			Actor: event.Actor{ID: arn, Type: typ}, SrcIP: netip.MustParseAddr(ip), UserAgent: str("userAgent"),
			Service: str("eventSource"), Action: str("eventName"), Outcome: event.Outcome{Result: outcome, Code: str("errorCode")},
			Origin: "bench.json:" + strconv.Itoa(i), Raw: raw,
		}
	}
	return evs
}

// BenchmarkIndexBatch measures the cost of the word index on an import
// batch (the importer's 20000 events): building the filters alone, on
// all CPUs and on one, and storing the batch with and without them, by
// DB.Append and through a loader. The index's share of storing is
// (append - append-unindexed) / append; ns/event is per event of the
// batch.
func BenchmarkIndexBatch(b *testing.B) {
	const n = 20000
	evs := cloudTrailEvents(b, n)
	var size int
	for i, e := range evs {
		e.Seq = uint64(i + 1)
		size += len(e.Raw)
	}
	ix := &wordIndex{}
	b.Run("build", func(b *testing.B) {
		b.SetBytes(int64(size))
		for b.Loop() {
			ix.start(evs).wait()
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/event")
	})
	b.Run("build-1cpu", func(b *testing.B) {
		rows := make([]wordindex.Row, n)
		for i, e := range evs {
			rows[i] = wordindex.Row{Seq: e.Seq, Raw: e.Raw}
		}
		b.SetBytes(int64(size))
		for b.Loop() {
			for i := 0; i < n; i += wordindex.BlockRows {
				wordindex.Build(rows[i:min(n, i+wordindex.BlockRows)])
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/event")
	})
	// Live ingest appends with DB.Append, imports through a loader.
	for _, path := range []string{"append", "load"} {
		for _, indexed := range []bool{true, false} {
			name := path
			if !indexed {
				name += "-unindexed"
			}
			b.Run(name, func(b *testing.B) {
				ctx := context.Background()
				db, err := Open(Options{Path: filepath.Join(b.TempDir(), "events.duckdb")})
				if err != nil {
					b.Fatal(err)
				}
				defer db.Close()
				db.words.buildOff = !indexed
				next := uint64(0)
				for b.Loop() {
					next = number(evs, next)
					if path == "append" {
						err = db.Append(ctx, evs)
					} else {
						err = loadAll(ctx, db, evs)
					}
					if err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/event")
			})
		}
	}
}

// loadAll appends evs through a loader and commits.
func loadAll(ctx context.Context, db *DB, evs []*event.Event) error {
	l, err := db.NewLoader(ctx)
	if err != nil {
		return err
	}
	if err := l.Append(ctx, evs); err != nil {
		l.Close(ctx)
		return err
	}
	return l.Close(ctx)
}
