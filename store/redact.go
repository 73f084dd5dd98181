package store

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/query"
)

// RedactRow hides what r names in row, a row of query.EventColumns: the
// columns are set to nil, and the paths removed from the original
// document. Hiding a normalized field hides the document too, since the
// field was read from it and vigil cannot tell from which key: a grant
// that means to keep the document names the document's paths instead.
func RedactRow(row []any, r query.Redaction) {
	if r.Empty() {
		return
	}
	idx := eventColumn()
	for _, c := range r.Columns {
		if i, ok := idx[c]; ok {
			row[i] = nil
		}
	}
	raw, rawBin, doc := idx["raw"], idx["raw_bin"], idx["doc"]
	text := func(v any) []byte {
		s, _ := v.(string)
		return []byte(s)
	}
	newRaw, newDoc := RedactDocument(text(row[raw]), text(row[doc]), row[doc] != nil, r)
	row[raw], row[rawBin] = string(newRaw), nil
	if row[doc] != nil {
		row[doc] = string(newDoc)
	}
}

// RedactResult hides in the rows of a plain search (res.Events) what
// scope's grants hide of each row's tenant, working out each tenant's
// redaction once. A result that is a table, or a scope that hides
// nothing, is left as it is.
func RedactResult(res *Result, scope query.Scope) {
	if !res.Events || !scope.Redacts() {
		return
	}
	tenant := eventColumn()["tenant"]
	byTenant := map[string]query.Redaction{}
	for _, row := range res.Rows {
		t, _ := row[tenant].(string)
		r, ok := byTenant[t]
		if !ok {
			r = scope.Redaction(t)
			byTenant[t] = r
		}
		RedactRow(row, r)
	}
}

// eventColumn maps each of query.EventColumns to its index in a row.
var eventColumn = sync.OnceValue(func() map[string]int {
	m := map[string]int{}
	for i, c := range query.EventColumns() {
		m[c] = i
	}
	return m
})

// RedactDocument returns an event's raw bytes and document (hasDoc says
// whether it has one apart from raw) with what r hides removed:
//   - the paths, from the document (raw when it has no other), which is
//     re-encoded without them;
//   - everything, when r hides a normalized field, or when the paths
//     cannot be removed because the document is not JSON. A raw record
//     with a document beside it (a syslog line, a flow record) is always
//     emptied, since the hidden values are in it in its own format.
func RedactDocument(raw, doc []byte, hasDoc bool, r query.Redaction) (newRaw, newDoc []byte) {
	if r.Empty() {
		return raw, doc
	}
	if len(r.Columns) > 0 {
		return []byte{}, nil
	}
	if hasDoc {
		d, ok := removePaths(doc, r.Paths)
		if !ok {
			d = nil
		}
		return []byte{}, d
	}
	d, ok := removePaths(raw, r.Paths)
	if !ok {
		// Not JSON, so no path of it can be named: there is nothing the
		// paths could hide in it.
		return raw, nil
	}
	return d, nil
}

// removePaths returns the JSON document doc without the values at paths,
// whose keys are compared without regard to case; a path through an
// array is removed from each of its elements. ok is false when doc is
// not JSON.
func removePaths(doc []byte, paths [][]string) (out []byte, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, false
	}
	for _, p := range paths {
		v = removePath(v, p)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, false
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), true
}

func removePath(v any, p []string) any {
	if len(p) == 0 {
		return v
	}
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if !strings.EqualFold(k, p[0]) {
				continue
			}
			if len(p) == 1 {
				delete(x, k)
			} else {
				x[k] = removePath(e, p[1:])
			}
		}
	case []any:
		for i, e := range x {
			x[i] = removePath(e, p)
		}
	}
	return v
}

// RedactEvent hides what r names in e, as RedactRow does in a row.
func RedactEvent(e *event.Event, r query.Redaction) {
	if r.Empty() {
		return
	}
	for _, c := range r.Columns {
		if clear, ok := clearColumn[c]; ok {
			clear(e)
		}
	}
	e.Raw, e.Doc = RedactDocument(e.Raw, e.Doc, e.Doc != nil, r)
}

// clearColumn empties the field of an event that a column of the events
// table holds; query.Redaction names columns, never tenant, time or seq.
var clearColumn = map[string]func(*event.Event){
	"received":        func(e *event.Event) { e.Received = time.Time{} },
	"skewed":          func(e *event.Event) { e.Skewed = false },
	"source":          func(e *event.Event) { e.Source = "" },
	"class":           func(e *event.Event) { e.Class = "" },
	"event_id":        func(e *event.Event) { e.ID = "" },
	"provider":        func(e *event.Event) { e.Cloud.Provider = "" },
	"account":         func(e *event.Event) { e.Cloud.Account = "" },
	"region":          func(e *event.Event) { e.Cloud.Region = "" },
	"environment":     func(e *event.Event) { e.Environment = "" },
	"actor":           func(e *event.Event) { e.Actor.Name = "" },
	"actor_id":        func(e *event.Event) { e.Actor.ID = "" },
	"actor_type":      func(e *event.Event) { e.Actor.Type = "" },
	"session_id":      func(e *event.Event) { e.Session.ID = "" },
	"session_origin":  func(e *event.Event) { e.Session.Origin = "" },
	"src_ip":          func(e *event.Event) { e.SrcIP = netip.Addr{} },
	"dst_ip":          func(e *event.Event) { e.DstIP = netip.Addr{} },
	"src_port":        func(e *event.Event) { e.SrcPort = 0 },
	"dst_port":        func(e *event.Event) { e.DstPort = 0 },
	"host":            func(e *event.Event) { e.Host = "" },
	"user_agent":      func(e *event.Event) { e.UserAgent = "" },
	"service":         func(e *event.Event) { e.Service = "" },
	"action":          func(e *event.Event) { e.Action = "" },
	"resources":       func(e *event.Event) { e.Resources = nil },
	"outcome":         func(e *event.Event) { e.Outcome.Result = "" },
	"error_code":      func(e *event.Event) { e.Outcome.Code = "" },
	"message":         func(e *event.Event) { e.Message = "" },
	"origin":          func(e *event.Event) { e.Origin = "" },
	"src_asset":       func(e *event.Event) { e.Context.Src.Asset = "" },
	"src_owner":       func(e *event.Event) { e.Context.Src.Owner = "" },
	"src_country":     func(e *event.Event) { e.Context.Src.Country = "" },
	"src_city":        func(e *event.Event) { e.Context.Src.City = "" },
	"src_asn":         func(e *event.Event) { e.Context.Src.ASN = 0 },
	"src_as_org":      func(e *event.Event) { e.Context.Src.ASOrg = "" },
	"src_cloud":       func(e *event.Event) { e.Context.Src.Cloud = "" },
	"dst_asset":       func(e *event.Event) { e.Context.Dst.Asset = "" },
	"dst_owner":       func(e *event.Event) { e.Context.Dst.Owner = "" },
	"dst_country":     func(e *event.Event) { e.Context.Dst.Country = "" },
	"dst_city":        func(e *event.Event) { e.Context.Dst.City = "" },
	"dst_asn":         func(e *event.Event) { e.Context.Dst.ASN = 0 },
	"dst_as_org":      func(e *event.Event) { e.Context.Dst.ASOrg = "" },
	"dst_cloud":       func(e *event.Event) { e.Context.Dst.Cloud = "" },
	"team":            func(e *event.Event) { e.Context.Team = "" },
	"intel":           func(e *event.Event) { e.Context.Intel = nil },
	"intel_indicator": func(e *event.Event) { e.Context.Intel = nil },
	"intel_type":      func(e *event.Event) { e.Context.Intel = nil },
}
