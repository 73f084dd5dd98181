package clickhouse

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vigilsec/vigil/query"
	"github.com/vigilsec/vigil/store"
)

// Search compiles the query for ClickHouse and runs it on the cluster,
// through the Distributed table. Rows come back as the DuckDB store's
// do (store.Result): times as time.Time, integers as int64 or uint64,
// lists as []any, the raw bytes as a string.
func (s *Store) Search(ctx context.Context, req query.Request) (*store.Result, error) {
	req, err := s.restrict(ctx, req)
	if err != nil {
		return nil, err
	}
	// A query without pipes is a filter, whose rows are events; so is
	// one that only sorts and keeps the first events, when it keeps a
	// number of them.
	if req.Query == nil || len(req.Query.Pipes) == 0 || eventsWanted(req) > 0 {
		return s.searchEvents(ctx, req)
	}
	q, err := query.Compile(req, query.ClickHouse)
	if err != nil {
		return nil, err
	}
	out, err := s.run(ctx, q)
	if err != nil {
		return nil, err
	}
	return result(req, q, out)
}

// eventsWanted is the number of events a bounded events search keeps: the
// smallest of the query's heads, or the request's limit when it has none,
// for a query whose commands are sorts and heads, no sort after a head
// (one SELECT of events); 0 for any other query, or one without a bound.
func eventsWanted(req query.Request) int {
	want := req.Limit
	if req.Query == nil {
		return max(want, 0)
	}
	headed := false
	for _, p := range req.Query.Pipes {
		switch p := p.(type) {
		case *query.Sort:
			if headed {
				return 0 // the sort orders only the events the head kept
			}
		case *query.Head:
			if p.N <= 0 {
				return 0
			}
			if !headed || p.N < want {
				want = p.N
			}
			headed = true
		default:
			return 0
		}
	}
	return max(want, 0)
}

// searchEvents runs an events search (a filter, sorts and heads) without
// FINAL (see query.ClickHouseCopies) and removes the copies of an event
// a retried insert left itself, keeping each seq where it first comes.
// Copies are rare (a process node that died between storing a batch and
// marking it) and, being the same event, come side by side in the
// query's order, which ends in time and seq; but for a copy stored again
// after SetOrigins, whose session_origin differs, which a sort on that
// may put apart.
//
// A bounded search reads in two steps (pickEvents, then readPicked):
// 18.16 reads every column it selects from every granule that holds a
// match before it sorts and keeps the first rows, which for the event
// columns (raw and doc among them) is most of the table. An unbounded
// one, a filter alone, reads its rows at once.
func (s *Store) searchEvents(ctx context.Context, req query.Request) (*store.Result, error) {
	if want := eventsWanted(req); want > 0 {
		picked, err := s.pickEvents(ctx, req, want)
		if err != nil {
			return nil, err
		}
		return s.readPicked(ctx, req, picked, pickedChunk)
	}
	q, err := query.Compile(req, query.ClickHouseCopies)
	if err != nil {
		return nil, err
	}
	out, err := s.run(ctx, q)
	if err != nil {
		return nil, err
	}
	res, err := result(req, q, out)
	if err != nil {
		return nil, err
	}
	res.Rows = onePerSeq(res.Columns, res.Rows)
	return res, nil
}

// pickedChunk bounds the seqs one statement of readPicked names, and so
// the events of its answer, which the client holds whole (maxAnswer).
const pickedChunk = 1000

// A pickedEvent is an event the first step of a search chose: its seq,
// and its tenant and time, which say where the second step finds it.
type pickedEvent struct {
	seq    uint64
	time   int64 // nanoseconds, as the table keeps it
	tenant string
}

// pickColumns are what the first step of a search selects of each event
// matching its query: the statement orders the events (by time and seq,
// or by the query's sorts first) and filters them with the columns it
// names, which ClickHouse reads however few the SELECT names.
const pickColumns = "seq, time, tenant"

// pickEvents returns the first want events of req, a bounded events
// search (see eventsWanted), each once, in the query's order. It runs the
// query's statement with pickColumns as its SELECT, the same WHERE and
// ORDER BY, and a LIMIT of twice the events wanted, so that copies do not
// take their places, and of twice that while copies leave fewer than
// wanted.
//
// A filter on a document field that CloudTrail's parser copies into a
// column (query.SplitsSources), in the events' own order, is two
// statements, whose rows are merged: one for the sources with the column,
// which reads it and not the documents, and one for the others, which
// reads the documents of theirs only. In one statement 18.16 would read
// both for every event (it evaluates both sides of an OR).
func (s *Store) pickEvents(ctx context.Context, req query.Request, want int) ([]pickedEvent, error) {
	// The heads are the limit, which the statement doubles.
	q := query.Query{}
	if req.Query != nil {
		q = *req.Query
	}
	q.Pipes = slices.DeleteFunc(slices.Clone(q.Pipes), isHead)
	req.Query = &q
	parts := []query.SourceSplit{query.AllSources}
	if len(q.Pipes) == 0 && query.SplitsSources(&q) {
		parts = []query.SourceSplit{query.CopyingSources, query.OtherSources}
	}
	for fetch := twice(want); ; fetch = twice(fetch) {
		req.Limit = fetch
		var rows []pickedEvent // in the query's order, copies included
		exhausted := true
		for _, part := range parts {
			req.Sources = part
			got, err := s.pickRows(ctx, req)
			if err != nil {
				return nil, err
			}
			exhausted = exhausted && (fetch == 0 || len(got) < fetch)
			rows = mergeNewest(rows, got)
		}
		if fetch > 0 && len(rows) > fetch {
			// Past the first fetch, a part's rows beyond its own limit
			// could come before those merged.
			rows = rows[:fetch]
		}
		seen := map[uint64]bool{}
		var picked []pickedEvent
		for _, e := range rows {
			if !seen[e.seq] {
				seen[e.seq] = true
				picked = append(picked, e)
			}
		}
		if exhausted || len(picked) >= want {
			if len(picked) > want {
				picked = picked[:want]
			}
			return picked, nil
		}
	}
}

// pickRows runs the first step of a search for req, whose Limit is the
// rows to fetch, and returns its rows, copies included.
func (s *Store) pickRows(ctx context.Context, req query.Request) ([]pickedEvent, error) {
	compiled, err := query.Compile(req, query.ClickHouseCopies)
	if err != nil {
		return nil, err
	}
	narrow, err := picking(compiled)
	if err != nil {
		return nil, err
	}
	var rows []pickedEvent
	err = s.streamQuery(ctx, "picking the events of a search", narrow, func(vals []json.RawMessage) error {
		var e pickedEvent
		for i, to := range []any{&e.seq, &e.time, &e.tenant} {
			if err := json.Unmarshal(vals[i], to); err != nil {
				return fmt.Errorf("clickhouse: picking the events of a search: %s %.100s: %w", narrow.Columns[i], vals[i], err)
			}
		}
		rows = append(rows, e)
		return nil
	})
	return rows, err
}

// mergeNewest merges two lists of rows in the events' own order, newest
// first (by time, then seq, descending), keeping that order.
func mergeNewest(a, b []pickedEvent) []pickedEvent {
	if len(a) == 0 {
		return b
	}
	if len(b) == 0 {
		return a
	}
	out := make([]pickedEvent, 0, len(a)+len(b))
	for len(a) > 0 && len(b) > 0 {
		if a[0].time > b[0].time || a[0].time == b[0].time && a[0].seq >= b[0].seq {
			out, a = append(out, a[0]), a[1:]
		} else {
			out, b = append(out, b[0]), b[1:]
		}
	}
	return append(append(out, a...), b...)
}

// picking returns the statement of an events search with pickColumns as
// its SELECT: its WHERE, ORDER BY and LIMIT are the compiler's, as are
// its parameters.
func picking(q *query.SQL) (*query.SQL, error) {
	prefix := "SELECT " + strings.Join(query.EventColumns(), ", ") + " FROM events "
	rest, ok := strings.CutPrefix(q.Text, prefix)
	if q.Kind != query.Events || !ok {
		return nil, fmt.Errorf("clickhouse: picking the events of a search: not one SELECT of the events table: %.200q", q.Text)
	}
	return &query.SQL{
		Text:    "SELECT " + pickColumns + " FROM events " + rest,
		Args:    q.Args,
		Kind:    query.Table,
		Columns: strings.Split(pickColumns, ", "),
	}, nil
}

// readPicked reads the events picked, whole, and returns them in the
// order given, as the rows of an events search: a chunk of seqs a
// statement. The statement names the seqs in PREWHERE, which 18.16
// applies before it reads the other columns (seq being last in the
// sorting key, it would not move the condition there itself), and bounds
// the events to the tenants, days and times of the chunk's, which skip
// the partitions and the granules that cannot hold them. An event gone
// since it was picked (a partition dropped) is passed over.
func (s *Store) readPicked(ctx context.Context, req query.Request, picked []pickedEvent, chunk int) (*store.Result, error) {
	cols := query.EventColumns()
	times := make([]bool, len(cols))
	for i, c := range cols {
		times[i] = c == "time" || c == "received"
	}
	seqCol, tenantCol, timeCol := slices.Index(cols, "seq"), slices.Index(cols, "tenant"), slices.Index(cols, "time")
	res := &store.Result{Columns: cols, Events: true, Rows: make([][]any, 0, len(picked))}
	params := url.Values{"database": {s.opts.Database}, "max_query_size": {strconv.Itoa(maxStatement)}}
	for part := range slices.Chunk(picked, chunk) {
		out, err := s.send(ctx, 0, params, strings.NewReader(pickedStatement(cols, part)+" FORMAT JSONCompact"))
		if err != nil {
			return nil, fmt.Errorf("clickhouse: reading the events of a search: %w", err)
		}
		rows, err := readRows(out, cols, times, true)
		if err != nil {
			return nil, fmt.Errorf("clickhouse: reading the events of a search: %w", err)
		}
		// A seq names one event, but the row must be the event picked,
		// its tenant and time too, for no other to stand in for it.
		found := make(map[pickedEvent][]any, len(rows))
		for _, row := range rows {
			e := pickedEvent{}
			e.seq, _ = row[seqCol].(uint64)
			e.tenant, _ = row[tenantCol].(string)
			if t, ok := row[timeCol].(time.Time); ok {
				e.time = t.UnixNano()
			}
			if _, ok := found[e]; !ok {
				found[e] = row // the first of its copies
			}
		}
		for _, e := range part {
			if row, ok := found[e]; ok {
				res.Rows = append(res.Rows, row)
			}
		}
	}
	store.RedactResult(res, req.Scope)
	return res, nil
}

// pickedStatement is the SELECT of the event columns of the events
// picked.
func pickedStatement(cols []string, picked []pickedEvent) string {
	seqs := make([]uint64, len(picked))
	var tenants, days []string
	lo, hi := picked[0].time, picked[0].time
	for i, e := range picked {
		seqs[i] = e.seq
		if t := quote(e.tenant); !slices.Contains(tenants, t) {
			tenants = append(tenants, t)
		}
		if d := quote(time.Unix(0, e.time).UTC().Format(time.DateOnly)); !slices.Contains(days, d) {
			days = append(days, d)
		}
		lo, hi = min(lo, e.time), max(hi, e.time)
	}
	return fmt.Sprintf("SELECT %s FROM events PREWHERE seq IN (%s) WHERE tenant IN (%s) AND day IN (%s) AND time >= %d AND time <= %d",
		strings.Join(cols, ", "), seqList(seqs), strings.Join(tenants, ", "), strings.Join(days, ", "), lo, hi)
}

// onePerSeq keeps the first row of each seq.
func onePerSeq(cols []string, rows [][]any) [][]any {
	i := slices.Index(cols, "seq")
	if i < 0 {
		return rows
	}
	seen := make(map[any]bool, len(rows))
	return slices.DeleteFunc(rows, func(row []any) bool {
		dup := seen[row[i]]
		seen[row[i]] = true
		return dup
	})
}

// run runs a compiled query.
func (s *Store) run(ctx context.Context, q *query.SQL) ([]byte, error) {
	text, err := inline(q.Text, q.Args)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: %w", err)
	}
	out, err := s.query(ctx, 0, text+" FORMAT JSONCompact")
	if err != nil {
		return nil, fmt.Errorf("clickhouse: running search: %w", err)
	}
	return out, nil
}

// result reads the rows of a compiled query's answer.
func result(req query.Request, q *query.SQL, out []byte) (*store.Result, error) {
	cols := q.Columns
	if q.Kind == query.Events {
		cols = query.EventColumns()
	}
	res := &store.Result{Columns: cols, Events: q.Kind == query.Events}
	times := make([]bool, len(cols))
	for i, c := range cols {
		times[i] = res.Events && (c == "time" || c == "received") || !res.Events && q.Types[i] == query.TypeTime
	}
	var err error
	if res.Rows, err = readRows(out, cols, times, res.Events); err != nil {
		return nil, fmt.Errorf("clickhouse: reading search results: %w", err)
	}
	store.RedactResult(res, req.Scope)
	return res, nil
}

// inline writes the compiler's '?' parameters into the SQL as literals,
// by their Go type: 18.16 takes no parameters over HTTP. The compiler
// writes no '?' but its parameters', and no user text but theirs.
func inline(text string, args []any) (string, error) {
	var b strings.Builder
	n := 0
	for i := 0; i < len(text); i++ {
		if text[i] != '?' {
			b.WriteByte(text[i])
			continue
		}
		if n == len(args) {
			return "", fmt.Errorf("more parameters than values in %q", text)
		}
		lit, err := literal(args[n])
		if err != nil {
			return "", err
		}
		b.WriteString(lit)
		n++
	}
	if n != len(args) {
		return "", fmt.Errorf("%d values for %d parameters", len(args), n)
	}
	return b.String(), nil
}

// literal is a value as a ClickHouse literal.
func literal(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return quote(x), nil
	case []byte:
		// The 16-byte form of an address, as the *_ip_bin columns hold it.
		return quote(hex.EncodeToString(x)), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case int:
		return strconv.Itoa(x), nil
	case uint64:
		return strconv.FormatUint(x, 10), nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return "", fmt.Errorf("no literal for %v", x)
		}
		return strconv.FormatFloat(x, 'g', -1, 64), nil
	case bool:
		if x {
			return "1", nil
		}
		return "0", nil
	}
	return "", fmt.Errorf("no literal for a value of type %T", v)
}

// readRows reads a JSONCompact answer into rows of the types the DuckDB
// store gives, by each column's name, whether it is a time (Int64
// nanoseconds here), and the type ClickHouse says.
func readRows(out []byte, cols []string, times []bool, events bool) ([][]any, error) {
	var ans struct {
		Meta []struct{ Name, Type string }
		Data [][]json.RawMessage
	}
	if err := json.Unmarshal(out, &ans); err != nil {
		return nil, err
	}
	if len(ans.Meta) != len(cols) {
		return nil, fmt.Errorf("%d columns, want %d", len(ans.Meta), len(cols))
	}
	rows := make([][]any, 0, len(ans.Data))
	for _, data := range ans.Data {
		if len(data) != len(cols) {
			return nil, fmt.Errorf("a row of %d columns, want %d", len(data), len(cols))
		}
		row := make([]any, len(cols))
		for i, raw := range data {
			v, err := value(raw, ans.Meta[i].Type)
			if err != nil {
				return nil, fmt.Errorf("column %s: %w", cols[i], err)
			}
			switch name := cols[i]; {
			case v == nil:
			case times[i]:
				if ns, ok := v.(int64); ok {
					v = time.Unix(0, ns).UTC()
				}
			case events && isEmptyList(v):
				// The embedded store keeps no list as NULL; an Array
				// column cannot be NULL here.
				v = nil
			case events && name == "skewed":
				v = v != uint64(0) && v != int64(0)
			case events && name == "raw_bin":
				b, err := base64.StdEncoding.DecodeString(v.(string))
				if err != nil {
					return nil, fmt.Errorf("raw_bin: %w", err)
				}
				v = string(b)
			}
			row[i] = v
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// value reads one JSON value of a ClickHouse type.
func value(raw json.RawMessage, typ string) (any, error) {
	if string(raw) == "null" {
		return nil, nil
	}
	typ = strings.TrimSuffix(strings.TrimPrefix(typ, "Nullable("), ")")
	if elem, ok := strings.CutPrefix(typ, "Array("); ok {
		elem = strings.TrimSuffix(elem, ")")
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			return nil, err
		}
		out := make([]any, len(items))
		for i, it := range items {
			v, err := value(it, elem)
			if err != nil {
				return nil, err
			}
			out[i] = v
		}
		return out, nil
	}
	switch {
	case strings.HasPrefix(typ, "UInt"):
		return strconv.ParseUint(unquote(raw), 10, 64)
	case strings.HasPrefix(typ, "Int"):
		return strconv.ParseInt(unquote(raw), 10, 64)
	case strings.HasPrefix(typ, "Float"):
		return strconv.ParseFloat(unquote(raw), 64)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("a %s: %w", typ, err)
	}
	return s, nil
}

// unquote is a number's text, which ClickHouse quotes for 64-bit
// integers (and for inf and nan).
func unquote(raw json.RawMessage) string {
	return string(bytes.Trim(raw, `"`))
}

func isEmptyList(v any) bool {
	l, ok := v.([]any)
	return ok && len(l) == 0
}
