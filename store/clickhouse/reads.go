package clickhouse

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/query"
)

// The reads here are the embedded store's (store/duckdb: Seqs, EventsAt,
// Events, Sessions, SetOrigins), which identity reassembly, playbooks and
// evidence exports are written against, with its semantics. Two things
// of the cluster shape them:
//   - a seq names one event across the cluster (the ledger partition is
//     in its high bits), so events are read by seq alone; but a retried
//     insert leaves two copies of an event until a merge collapses them,
//     and every read keeps each seq once itself, without FINAL, which on
//     18.16 merges every part it reads in memory (BENCHMARKS.md);
//   - seq is the last column of the sorting key, so that no condition on
//     seq alone skips a part: a statement that reads events by seq reads
//     the seq column of the whole table, and the reads by seq ask in few
//     statements with long lists of seqs rather than in many short ones.

const (
	// eventsPage bounds the events one statement of Events sorts, with
	// all their columns, on the server.
	eventsPage = 10_000
	// eventsAtChunk bounds the seqs one statement of EventsAt names.
	eventsAtChunk = 10_000
	// originsBatch bounds the text of the lists of one SetOrigins
	// mutation. Each mutation reads the seq column of every part of a
	// shard, so batches are large; but the server keeps the last hundred
	// mutations, statement included, in memory.
	originsBatch = 256 << 10
	// maxStatement is the max_query_size the statements here are sent
	// with: their lists of seqs outgrow the server's default, 256 KiB.
	// They go in the request's body, since the server's HTTP interface
	// refuses a URL of that size.
	maxStatement = 16 << 20
	// maxElements is the max_ast_elements they are sent with: room for
	// a list of a million seqs.
	maxElements = 1_000_000
)

// Seqs returns the seqs, ascending, of the events req selects (its query,
// scope, time range and seq ranges): the first req.Limit of them in the
// query's order when the query has no head, 0 meaning all, as the
// embedded store's Seqs does. The query must not end in a command that
// makes a table.
func (s *Store) Seqs(ctx context.Context, req query.Request) ([]uint64, error) {
	compiled, err := query.Compile(req, query.ClickHouseCopies)
	if err != nil {
		return nil, err
	}
	if compiled.Kind != query.Events {
		return nil, fmt.Errorf("the query must select events, not make a table")
	}
	// The embedded store reads the seqs through a fields command: a query
	// whose own fields drop seq fails there, and so here.
	if _, err := query.Compile(withPipes(req, fieldsOf("seq")), query.ClickHouseCopies); err != nil {
		return nil, err
	}
	req, err = s.restrict(ctx, req)
	if err != nil {
		return nil, err
	}
	seqs, err := s.pick(ctx, req)
	if err != nil {
		return nil, err
	}
	slices.Sort(seqs)
	if seqs == nil {
		seqs = []uint64{}
	}
	return seqs, nil
}

// pick returns the seqs of the events req selects, each once, in the
// query's order.
//
// The copies of an event would take places of a head or a limit in SQL,
// so pick applies them to events: the query up to the first sort after a
// head is one SELECT, whose rows distinctSeqs fetches with room for
// copies. A sort after a head orders only the events the head kept, so
// the rest of the query runs again over those seqs, after the sorts
// before it, which break its ties as they do in the statement the
// compiler writes for the whole query.
func (s *Store) pick(ctx context.Context, req query.Request) ([]uint64, error) {
	q := query.Query{}
	if req.Query != nil {
		q = *req.Query
	}
	var kept []query.Pipe // the pipes before the split, but heads
	limit, headed, split := 0, false, len(q.Pipes)
	for i, p := range q.Pipes {
		if h, ok := p.(*query.Head); ok {
			// The compiler's rule for the heads of one SELECT.
			if limit == 0 || h.N < limit {
				limit = h.N
			}
			headed = true
			continue
		}
		if _, ok := p.(*query.Sort); ok && headed {
			split = i
			break
		}
		kept = append(kept, p)
	}
	if !headed {
		// A head anywhere replaces the request's limit.
		limit = req.Limit
	}
	first := q
	first.Pipes = slices.Concat(kept, []query.Pipe{fieldsOf("seq")})
	r := req
	r.Query = &first
	seqs, err := s.distinctSeqs(ctx, r, limit)
	if err != nil || split == len(q.Pipes) || len(seqs) == 0 {
		return seqs, err
	}
	rest := q
	rest.Filter = nil // the seqs matched it
	rest.Pipes = slices.Concat(kept, q.Pipes[split:])
	r = req
	r.Query, r.Limit, r.SeqRanges = &rest, 0, ranges(seqs)
	return s.pick(ctx, r)
}

// distinctSeqs returns the seqs of the first limit events (0: all) of
// req, a query of one SELECT whose last command is fields with seq, each
// once, in its order. As searchEvents does, it asks for twice the rows
// wanted, and for more while copies leave fewer than wanted.
func (s *Store) distinctSeqs(ctx context.Context, req query.Request, limit int) ([]uint64, error) {
	for fetch := twice(limit); ; fetch = twice(fetch) {
		req.Limit = fetch
		compiled, err := query.Compile(req, query.ClickHouseCopies)
		if err != nil {
			return nil, err
		}
		col := slices.Index(compiled.Columns, "seq")
		if col < 0 {
			return nil, fmt.Errorf("clickhouse: reading seqs: no seq among the columns %q", compiled.Columns)
		}
		seen := map[uint64]bool{}
		var seqs []uint64
		rows := 0
		err = s.streamQuery(ctx, "reading the seqs of events", compiled, func(vals []json.RawMessage) error {
			rows++
			var seq uint64
			if err := json.Unmarshal(vals[col], &seq); err != nil {
				return fmt.Errorf("clickhouse: reading the seqs of events: seq %s: %w", vals[col], err)
			}
			if !seen[seq] {
				seen[seq] = true
				seqs = append(seqs, seq)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if fetch == 0 || rows < fetch || len(seqs) >= limit {
			if limit > 0 && len(seqs) > limit {
				seqs = seqs[:limit]
			}
			return seqs, nil
		}
	}
}

// twice is the limit that leaves room for a copy of each of n events; 0
// (no limit) for no limit or one beyond an int.
func twice(n int) int {
	if n <= 0 || n > math.MaxInt/2 {
		return 0
	}
	return 2 * n
}

// sessionFields are what Sessions reads of an event, as the embedded
// store's does.
var sessionFields = []string{"seq", "time", "tenant", "actor_id", "actor_type", "session_id", "session_origin"}

// Sessions calls fn with each event req selects, in the query's order
// (newest first unless it sorts), holding only what identity reassembly
// reads of it: its seq, time, tenant, actor id and type, and session. It
// reads no raw text, and fn sees each event as it arrives, as in the
// embedded store's Sessions; req.Limit is not applied, a head in the
// query is.
//
// The copies of an event come next to each other in that order, and one
// is kept. The exception is a copy stored again after SetOrigins changed
// the event's origin (see SetOrigins): it differs in session_origin, and
// a query that sorts by that may put the two apart.
func (s *Store) Sessions(ctx context.Context, req query.Request, fn func(*event.Event) error) error {
	req.Limit = 0
	read := withPipes(req, fieldsOf(sessionFields...))
	if _, err := query.Compile(read, query.ClickHouseCopies); err != nil {
		return err
	}
	if headed, none, err := s.pickHeads(ctx, req); err != nil || none {
		return err
	} else if headed != nil {
		// The events the heads keep are read in the query's order, which
		// a head does not change.
		req = *headed
		read = withPipes(req, fieldsOf(sessionFields...))
	}
	compiled, err := query.Compile(read, query.ClickHouseCopies)
	if err != nil {
		return err
	}
	col := make(map[string]int, len(sessionFields))
	for _, f := range sessionFields {
		if col[f] = slices.Index(compiled.Columns, f); col[f] < 0 {
			return fmt.Errorf("clickhouse: reading the sessions of events: no %s among the columns %q", f, compiled.Columns)
		}
	}
	var last uint64
	started := false
	return s.streamQuery(ctx, "reading the sessions of events", compiled, func(vals []json.RawMessage) error {
		var (
			e                              event.Event
			ns                             int64
			actorID, actorType, id, origin *string
		)
		for _, v := range []struct {
			name string
			to   any
		}{
			{"seq", &e.Seq}, {"time", &ns}, {"tenant", &e.Tenant}, {"actor_id", &actorID},
			{"actor_type", &actorType}, {"session_id", &id}, {"session_origin", &origin},
		} {
			if err := json.Unmarshal(vals[col[v.name]], v.to); err != nil {
				return fmt.Errorf("clickhouse: reading the sessions of events: %s %.100s: %w", v.name, vals[col[v.name]], err)
			}
		}
		if started && e.Seq == last {
			return nil // a copy
		}
		started, last = true, e.Seq
		e.Time = time.Unix(0, ns).UTC()
		e.Actor.ID, e.Actor.Type = deref(actorID), deref(actorType)
		e.Session.ID, e.Session.Origin = deref(id), deref(origin)
		return fn(&e)
	})
}

// pickHeads applies the heads of req, which count events where SQL would
// count the copies a retried insert left: pick keeps their events' seqs,
// and the request returned reads those seqs, its filter and heads gone.
// It returns nil for a request without heads, and none when the heads
// keep no event.
func (s *Store) pickHeads(ctx context.Context, req query.Request) (headed *query.Request, none bool, err error) {
	if req.Query == nil || !slices.ContainsFunc(req.Query.Pipes, isHead) {
		return nil, false, nil
	}
	seqs, err := s.pick(ctx, req)
	if err != nil || len(seqs) == 0 {
		return nil, true, err
	}
	q := *req.Query
	q.Filter = nil // the seqs matched it
	q.Pipes = slices.DeleteFunc(slices.Clone(q.Pipes), isHead)
	req.Query, req.SeqRanges = &q, ranges(seqs)
	return &req, false, nil
}

// EventsAt calls fn with the event of each seq given that the cluster
// holds, in seq order and each once: the events a search found, read
// whole in a few statements rather than one a seq. A seq the cluster
// does not hold is passed over. The embedded store's EventsAt asks for
// the seqs sorted; here they need not be.
func (s *Store) EventsAt(ctx context.Context, seqs []uint64, fn func(*event.Event) error) error {
	seqs = slices.Compact(slices.Sorted(slices.Values(seqs)))
	for len(seqs) > 0 {
		n := min(len(seqs), eventsAtChunk)
		stmt := "SELECT " + strings.Join(query.EventColumns(), ", ") + " FROM events WHERE seq IN (" + seqList(seqs[:n]) + ") ORDER BY seq"
		if err := s.streamEvents(ctx, "reading events by seq", stmt, fn); err != nil {
			return err
		}
		seqs = seqs[n:]
	}
	return nil
}

// Events calls fn with each event whose seq is in [from, to), in seq
// order and each once, as the embedded store's Events does. It reads a
// page of events at a time, so that neither the server nor fn's caller
// holds a large range at once.
func (s *Store) Events(ctx context.Context, from, to uint64, fn func(*event.Event) error) error {
	return s.events(ctx, from, to, eventsPage, fn)
}

func (s *Store) events(ctx context.Context, from, to uint64, page int, fn func(*event.Event) error) error {
	cols := strings.Join(query.EventColumns(), ", ")
	for lo := from; lo < to; {
		hi := to
		if to-lo > uint64(page) {
			// Seqs are sparse (each partition starts at partition<<40),
			// so a range says nothing of how many events it holds: the
			// seqs alone, without the other columns, say where a page of
			// them ends.
			last, n, err := s.pageEnd(ctx, lo, to, page)
			if err != nil {
				return err
			}
			if n == 0 {
				return nil
			}
			if n == page {
				// The page ends with every copy of last, however many
				// of them the rows counted.
				hi = last + 1
			}
		}
		stmt := fmt.Sprintf("SELECT %s FROM events WHERE seq >= %d AND seq < %d ORDER BY seq", cols, lo, hi)
		if err := s.streamEvents(ctx, "reading events by seq range", stmt, fn); err != nil {
			return err
		}
		lo = hi
	}
	return nil
}

// pageEnd returns the highest seq of the first page rows of the events
// with seqs in [from, to), in seq order and copies counted, and how many
// rows there were (fewer than page at the end).
func (s *Store) pageEnd(ctx context.Context, from, to uint64, page int) (last uint64, n int, err error) {
	stmt := fmt.Sprintf("SELECT max(seq), count() FROM (SELECT seq FROM events WHERE seq >= %d AND seq < %d ORDER BY seq LIMIT %d) FORMAT TabSeparated", from, to, page)
	out, err := s.send(ctx, 0, url.Values{"database": {s.opts.Database}}, strings.NewReader(stmt))
	if err != nil {
		return 0, 0, fmt.Errorf("clickhouse: paging events from seq %d: %w", from, err)
	}
	maxSeq, count, ok := strings.Cut(strings.TrimSpace(string(out)), "\t")
	if !ok {
		return 0, 0, fmt.Errorf("clickhouse: paging events from seq %d: the answer %.100q", from, out)
	}
	if last, err = strconv.ParseUint(maxSeq, 10, 64); err == nil {
		n, err = strconv.Atoi(count)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("clickhouse: paging events from seq %d: the answer %.100q: %w", from, out, err)
	}
	return last, n, nil
}

// SetOrigins sets the session origin of the events with the seqs given,
// as the embedded store's SetOrigins does: identity reassembly learns
// some only after the events are stored. A seq the cluster does not hold
// is passed over.
//
// Each shard that holds some of the events runs one mutation of its
// events_local per batch of seqs (see originsBatch), which updates every
// copy of them, and SetOrigins returns once all are done: a read after
// it sees the origins. On 18.16 such a mutation reads the seq column of
// every part, writes session_origin anew in the parts that hold the
// events, and hard-links the rest.
//
// The embedded store records the ledger's origin beside the new one, for
// its comparison with the ledger; the cluster has no such comparison and
// records nothing. A failure may leave some shards or batches done:
// calling again with the same origins finishes the rest. Events stored
// again afterwards (an insert retried after SetOrigins) come with the
// origins the ledger gives, and the next merge keeps those, the last
// inserted.
func (s *Store) SetOrigins(ctx context.Context, origins map[uint64]string) error {
	return s.setOrigins(ctx, origins, originsBatch)
}

func (s *Store) setOrigins(ctx context.Context, origins map[uint64]string, batch int) error {
	seqs := slices.Sorted(maps.Keys(origins))
	for len(seqs) > 0 {
		n, size := 0, 0
		for ; n < len(seqs) && (n == 0 || size < batch); n++ {
			size += 2*len(strconv.FormatUint(seqs[n], 10)) + len(origins[seqs[n]]) + 8
		}
		errs := make([]error, len(s.opts.Shards))
		var wg sync.WaitGroup
		for i := range s.opts.Shards {
			wg.Go(func() {
				if err := s.setOriginsOn(ctx, i, seqs[:n], origins); err != nil {
					errs[i] = fmt.Errorf("clickhouse: setting the origins of %d events on shard %d: %w", n, i+1, err)
				}
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return err
		}
		seqs = seqs[n:]
	}
	return nil
}

// setOriginsOn sets the origins of the events of seqs a shard holds.
func (s *Store) setOriginsOn(ctx context.Context, shard int, seqs []uint64, origins map[uint64]string) error {
	// A shard holds an event by its tenant, which the caller does not
	// give: each is asked which it holds, and one that holds none is left
	// alone, spared a mutation that would read all its seqs.
	out, err := s.sendLong(ctx, shard, "SELECT DISTINCT seq FROM "+s.opts.Database+".events_local WHERE seq IN ("+seqList(seqs)+") ORDER BY seq FORMAT TabSeparated")
	if err != nil {
		return fmt.Errorf("looking for the events: %w", err)
	}
	var held []uint64
	for line := range strings.FieldsSeq(string(out)) {
		seq, err := strconv.ParseUint(line, 10, 64)
		if err != nil {
			return fmt.Errorf("looking for the events: %q: %w", line, err)
		}
		held = append(held, seq)
	}
	if len(held) == 0 {
		return nil
	}
	values := make([]string, len(held))
	for i, seq := range held {
		// Stored text is UTF-8, as Append's JSON makes it.
		values[i] = quote(strings.ToValidUTF8(origins[seq], "\uFFFD"))
	}
	list := seqList(held)
	// The default of transform is never taken (WHERE names only seqs of
	// the list); it is not session_origin, which is Nullable, as that
	// would make transform NULL wherever the old origin is. An empty
	// origin is stored empty, not NULL, as the embedded store stores it.
	return s.mutate(ctx, shard, "events_local", "UPDATE session_origin = transform(seq, ["+list+"], ["+strings.Join(values, ", ")+"], '') WHERE seq IN ("+list+")")
}

// streamEvents runs stmt, a SELECT of query.EventColumns ordered so that
// the copies of an event come side by side (by seq, or by time and then
// seq), and calls fn with each event, once. fn's error is returned as it
// is.
func (s *Store) streamEvents(ctx context.Context, what, stmt string, fn func(*event.Event) error) error {
	var last uint64
	started := false
	return s.stream(ctx, what, stmt+" FORMAT JSONEachRow", func(line []byte) error {
		var r row
		if err := json.Unmarshal(line, &r); err != nil {
			return fmt.Errorf("clickhouse: %s: %.200q: %w", what, line, err)
		}
		if started && r.Seq == last {
			return nil // a copy
		}
		started, last = true, r.Seq
		e, err := eventOf(&r)
		if err != nil {
			return fmt.Errorf("clickhouse: %s: event %d: %w", what, r.Seq, err)
		}
		return fn(e)
	})
}

// streamQuery runs a compiled query and calls fn with the values of each
// row, in the order of its columns. fn's error is returned as it is.
func (s *Store) streamQuery(ctx context.Context, what string, q *query.SQL, fn func([]json.RawMessage) error) error {
	text, err := inline(q.Text, q.Args)
	if err != nil {
		return fmt.Errorf("clickhouse: %s: %w", what, err)
	}
	return s.stream(ctx, what, text+" FORMAT JSONEachRow", func(line []byte) error {
		vals, err := rowValues(line)
		if err == nil && len(vals) != len(q.Columns) {
			err = fmt.Errorf("%d columns, want %d", len(vals), len(q.Columns))
		}
		if err != nil {
			return fmt.Errorf("clickhouse: %s: %.200q: %w", what, line, err)
		}
		return fn(vals)
	})
}

// rowValues reads a row of JSONEachRow into its values, in the order of
// the SELECT: the compiler names its columns _c0, _c1, …, which the
// order maps to SQL.Columns.
func rowValues(line []byte) ([]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(line))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, errors.New("not a JSON object")
	}
	var vals []json.RawMessage
	for dec.More() {
		if _, err := dec.Token(); err != nil { // the column's name
			return nil, err
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		vals = append(vals, v)
	}
	return vals, nil
}

// stream runs a SELECT on the cluster, through shard 0's Distributed
// table, and calls fn with each line of the answer as it arrives, so that
// neither end holds all the rows. fn's error is returned as it is; what
// names the read in the others.
func (s *Store) stream(ctx context.Context, what, stmt string, fn func(line []byte) error) error {
	return s.streamOn(ctx, 0, what, stmt, fn)
}

// streamOn is stream on one shard: a statement of its local tables reads
// only its rows.
func (s *Store) streamOn(ctx context.Context, shard int, what, stmt string, fn func(line []byte) error) error {
	params := url.Values{"database": {s.opts.Database}, "max_query_size": {strconv.Itoa(maxStatement)},
		// Numbers as numbers, which 18.16 quotes when they are 64-bit.
		"output_format_json_quote_64bit_integers": {"0"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.opts.Shards[shard]+"/?"+params.Encode(), strings.NewReader(stmt))
	if err != nil {
		return fmt.Errorf("clickhouse: %s: %w", what, err)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("clickhouse: %s: %w", what, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 500))
		return fmt.Errorf("clickhouse: %s: %s: %s", what, resp.Status, strings.TrimSpace(string(msg)))
	}
	// An error after the first rows comes as text in their stead, which
	// fn fails to read as a row.
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), maxRow)
	for sc.Scan() {
		if err := fn(sc.Bytes()); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("clickhouse: %s: %w", what, err)
	}
	return nil
}

// withPipes returns req with commands added at the end of its query.
func withPipes(req query.Request, ps ...query.Pipe) query.Request {
	q := query.Query{}
	if req.Query != nil {
		q = *req.Query
	}
	q.Pipes = slices.Concat(q.Pipes, ps)
	req.Query = &q
	return req
}

// fieldsOf is the command `fields names…`.
func fieldsOf(names ...string) *query.Project {
	p := &query.Project{}
	for _, n := range names {
		p.Fields = append(p.Fields, query.FieldRef{Name: n})
	}
	return p
}

func isHead(p query.Pipe) bool {
	_, ok := p.(*query.Head)
	return ok
}

// ranges are seqs as the ranges of Request.SeqRanges, which the compiler
// joins where they touch.
func ranges(seqs []uint64) [][2]uint64 {
	rs := make([][2]uint64, len(seqs))
	for i, seq := range seqs {
		rs[i] = [2]uint64{seq, seq}
	}
	return rs
}

// seqList is seqs as the items of an SQL list.
func seqList(seqs []uint64) string {
	var b strings.Builder
	for i, seq := range seqs {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.FormatUint(seq, 10))
	}
	return b.String()
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
