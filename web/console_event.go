package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/vigilsec/vigil/query"
)

// eventBody is the event page's data.
type eventBody struct {
	Seq    uint64
	Fields []eventField
	// Raw is the document as received, pretty-printed when it is JSON.
	Raw string
	// Proof is the event's inclusion proof in the ledger; ProofError
	// says why there is none.
	Proof      *Proof
	ProofError string
}

type eventField struct {
	Name string
	Cell cell
	// Filter searches for events with the same value.
	Filter string
}

// hiddenEventColumns are columns of an event the page does not list as
// fields: the document and raw bytes, which it shows whole.
var hiddenEventColumns = map[string]bool{"raw": true, "raw_bin": true, "doc": true}

// consoleEvent answers GET /events/{seq}: an event's fields, its raw
// document and its proof of inclusion in the ledger. An event of a
// tenant the caller may not read is as missing as one that does not
// exist.
func (a *api) consoleEvent(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	seq, err := strconv.ParseUint(r.PathValue("seq"), 10, 63)
	if err != nil {
		a.notFoundPage(w, r, "such event")
		return
	}
	q, err := query.Parse(fmt.Sprintf("seq:%d", seq))
	if err != nil {
		a.consoleError(w, r, http.StatusInternalServerError, "Looking up the event failed.")
		return
	}
	res, err := a.opts.Store.Search(r.Context(), query.Request{Query: q, Scope: id.Scope, Limit: 1})
	if err != nil {
		a.opts.Logger.Error("console: looking up an event", "seq", seq, "err", err)
		a.consoleError(w, r, http.StatusInternalServerError, "Looking up the event failed.")
		return
	}
	if len(res.Rows) == 0 || !res.Events {
		a.notFoundPage(w, r, "such event")
		return
	}
	row := res.Rows[0]
	b := &eventBody{Seq: seq}
	var at time.Time
	if i := slices.Index(res.Columns, "time"); i >= 0 && i < len(row) {
		at, _ = row[i].(time.Time)
	}
	for i, c := range res.Columns {
		if i >= len(row) {
			break
		}
		switch {
		case c == "raw":
			if s, ok := row[i].(string); ok {
				b.Raw = prettyJSON(s)
			}
		case c == "raw_bin":
			if s, ok := row[i].(string); ok && b.Raw == "" && s != "" {
				b.Raw = fmt.Sprintf("(%d bytes of binary data)", len(s))
			}
		case hiddenEventColumns[c] || row[i] == nil:
		default:
			f := eventField{Name: fieldName(c), Cell: cellOf(row[i])}
			if f.Cell.Text == "" && f.Cell.Time.IsZero() {
				continue
			}
			if qf, ok := query.LookupField(f.Name); ok && (qf.Type == query.TypeString || qf.Type == query.TypeIP) && !at.IsZero() {
				// The events with the same value, a day either side.
				p := searchParams{q: f.Name + `:"` + quoteValue(f.Cell.Text) + `"`,
					from: at.Add(-24 * time.Hour).Format(time.RFC3339), to: at.Add(24 * time.Hour).Format(time.RFC3339)}
				f.Filter = p.url()
			}
			b.Fields = append(b.Fields, f)
		}
	}
	if a.opts.Ledger == nil {
		b.ProofError = "This server keeps no ledger."
	} else if p, err := a.eventProof(r.Context(), seq); err != nil {
		a.opts.Logger.Error("console: proving an event", "seq", seq, "err", err)
		b.ProofError = "Computing the proof failed."
	} else {
		b.Proof = &p
	}
	a.render(w, r, http.StatusOK, "event", &consolePage{Title: fmt.Sprintf("Event %d", seq), Nav: "search", Body: b})
}

// fieldName is the query's name of an events table column.
func fieldName(column string) string {
	for _, f := range query.Fields() {
		if f.Column == column {
			return f.Name
		}
	}
	return column
}

// prettyJSON indents a JSON document, and returns anything else as it is.
func prettyJSON(s string) string {
	var buf bytes.Buffer
	if json.Indent(&buf, []byte(s), "", "  ") != nil {
		return s
	}
	return buf.String()
}
