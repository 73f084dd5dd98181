package clickhouse

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
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
	// A query without pipes is a filter, whose rows are events.
	if req.Query == nil || len(req.Query.Pipes) == 0 {
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

// searchEvents runs a plain events search (a filter, no pipes) without
// FINAL (see query.ClickHouseCopies) and removes the copies of an event
// a retried insert left itself: it asks for twice the rows wanted, and
// for more while copies leave fewer than wanted, then keeps each seq
// once. Copies are rare (a process node that died between storing a
// batch and marking it) and, being the same event, come side by side in
// the order of time and seq.
func (s *Store) searchEvents(ctx context.Context, req query.Request) (*store.Result, error) {
	want := req.Limit
	for fetch := 2 * want; ; fetch *= 2 {
		r := req
		r.Limit = fetch
		q, err := query.Compile(r, query.ClickHouseCopies)
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
		got := len(res.Rows)
		res.Rows = onePerSeq(res.Columns, res.Rows)
		if want <= 0 || len(res.Rows) >= want || got < fetch {
			if want > 0 && len(res.Rows) > want {
				res.Rows = res.Rows[:want]
			}
			return res, nil
		}
	}
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
