package main

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vigilsec/vigil/store"
)

// outputFormats are the values of search's --format.
var outputFormats = []string{"table", "json", "ndjson", "csv"}

// render writes a search result in the named format.
func render(w io.Writer, format string, res *store.Result) error {
	switch format {
	case "ndjson":
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		for _, row := range res.Rows {
			if err := enc.Encode(rowObject(res.Columns, row)); err != nil {
				return err
			}
		}
		return nil
	case "json":
		objs := make([]orderedObject, len(res.Rows))
		for i, row := range res.Rows {
			objs[i] = rowObject(res.Columns, row)
		}
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		return enc.Encode(objs)
	case "csv":
		cw := csv.NewWriter(w)
		cw.Write(res.Columns)
		for _, row := range res.Rows {
			rec := make([]string, len(row))
			for i, v := range row {
				rec[i] = cell(v)
			}
			cw.Write(rec)
		}
		cw.Flush()
		return cw.Error()
	case "table":
		return renderTable(w, res)
	}
	return fmt.Errorf("unknown output format %q (want %s)", format, strings.Join(outputFormats, ", "))
}

// tableColumns are the columns a plain search shows in a table; the other
// formats give every column.
var tableColumns = []string{"time", "source", "account", "actor", "src_ip", "action", "outcome"}

func renderTable(w io.Writer, res *store.Result) error {
	cols := res.Columns
	idx := make([]int, len(cols))
	for i := range cols {
		idx[i] = i
	}
	if res.Events {
		cols, idx = nil, nil
		for _, c := range tableColumns {
			for i, rc := range res.Columns {
				if rc == c {
					cols = append(cols, c)
					idx = append(idx, i)
				}
			}
		}
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.ToUpper(strings.Join(cols, "\t")))
	for _, row := range res.Rows {
		cells := make([]string, len(idx))
		for i, j := range idx {
			cells[i] = strings.NewReplacer("\t", " ", "\n", " ").Replace(truncateCell(cell(row[j]), 80))
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(res.Rows) == 0 {
		fmt.Fprintln(w, "no results")
	}
	return nil
}

func truncateCell(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// cell renders one value as text.
func cell(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case []any:
		b, _ := json.Marshal(x)
		return string(b)
	}
	return fmt.Sprint(v)
}

// orderedObject is a JSON object whose keys keep the result's column
// order, so that output reads like the table.
type orderedObject struct {
	keys []string
	vals []any
}

func rowObject(cols []string, row []any) orderedObject {
	o := orderedObject{keys: cols, vals: make([]any, len(row))}
	for i, v := range row {
		if t, ok := v.(time.Time); ok {
			v = t.UTC().Format(time.RFC3339Nano)
		}
		o.vals[i] = v
	}
	return o
}

func (o orderedObject) MarshalJSON() ([]byte, error) {
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range o.keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		b.Write(kb)
		b.WriteByte(':')
		vb, err := marshalNoEscape(o.vals[i])
		if err != nil {
			return nil, err
		}
		b.Write(vb)
	}
	b.WriteByte('}')
	return []byte(b.String()), nil
}

func marshalNoEscape(v any) ([]byte, error) {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return []byte(strings.TrimSuffix(b.String(), "\n")), nil
}
