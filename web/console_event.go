package web

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vigilsec/vigil/query"
)

// eventBody is the event page's data.
type eventBody struct {
	Seq    uint64
	Fields []eventField
	// Enrichment is what vigil knew of the event's addresses and account
	// when it arrived (event.Context); Intel the threat-intel lists that
	// named one of its values.
	Enrichment []eventField
	Intel      []intelHit
	// Identity is the chain of credentials behind the event's, when it
	// has one to follow.
	Identity *eventIdentity
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
// fields: the document and raw bytes, which it shows whole, and the
// threat-intel hits, which it shows as hits.
var hiddenEventColumns = map[string]bool{"raw": true, "raw_bin": true, "doc": true,
	"intel": true, "intel_indicator": true, "intel_type": true}

// enrichmentColumns are the columns enrichment fills (event.Context),
// which the page shows apart from what the log said.
var enrichmentColumns = map[string]bool{
	"src_asset": true, "src_owner": true, "src_country": true, "src_city": true, "src_asn": true, "src_as_org": true, "src_cloud": true,
	"dst_asset": true, "dst_owner": true, "dst_country": true, "dst_city": true, "dst_asn": true, "dst_as_org": true, "dst_cloud": true,
	"team": true,
}

// An intelHit is a value of the event that a threat-intel list names.
type intelHit struct {
	List, Indicator, Type string
}

// eventIdentity is the identity section of the event page: the chain of
// credentials from the event's back to whoever started it.
type eventIdentity struct {
	Ref    string // the credential followed: an access key id or an ARN
	Chain  []chainLink
	Origin string
	// Page is the identity page of Ref around the event's time.
	Page string
	// Error says why the chain could not be followed.
	Error string
}

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
		case enrichmentColumns[c]:
			if f := (eventField{Name: fieldName(c), Cell: cellOf(row[i])}); f.Cell.Text != "" && f.Cell.Text != "0" {
				b.Enrichment = append(b.Enrichment, f)
			}
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
	b.Intel = intelHits(res.Columns, row)
	if ref := credentialOf(res.Columns, row); ref != "" && a.opts.Who != nil && !at.IsZero() {
		b.Identity = a.eventIdentity(r.Context(), id.Scope, ref, at)
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

// column returns the value of a column of a row, or nil.
func column(cols []string, row []any, name string) any {
	if i := slices.Index(cols, name); i >= 0 && i < len(row) {
		return row[i]
	}
	return nil
}

// intelHits zips the event's threat-intel columns into hits.
func intelHits(cols []string, row []any) []intelHit {
	list, _ := column(cols, row, "intel").([]any)
	ind, _ := column(cols, row, "intel_indicator").([]any)
	typ, _ := column(cols, row, "intel_type").([]any)
	var out []intelHit
	for i, l := range list {
		h := intelHit{List: fmt.Sprint(l)}
		if i < len(ind) && ind[i] != nil {
			h.Indicator = fmt.Sprint(ind[i])
		}
		if i < len(typ) && typ[i] != nil {
			h.Type = fmt.Sprint(typ[i])
		}
		out = append(out, h)
	}
	return out
}

// credentialOf returns the credential of an event whose chain is worth
// following: a temporary one (an AWS session's access key, a role
// assumed), whose holder the event alone does not name. "" for others.
func credentialOf(cols []string, row []any) string {
	key, _ := column(cols, row, "session_id").(string)
	arn, _ := column(cols, row, "actor_id").(string)
	typ, _ := column(cols, row, "actor_type").(string)
	switch {
	case strings.HasPrefix(key, "ASIA"):
		return key
	case typ == "AssumedRole" || typ == "FederatedUser":
		return cmp.Or(key, arn)
	}
	return ""
}

// eventIdentity follows the chain of credentials behind ref, from the
// events scope reads up to the event's time.
func (a *api) eventIdentity(ctx context.Context, scope query.Scope, ref string, at time.Time) *eventIdentity {
	// The credentials issued up to a day and a half before from are
	// read too (inventory.Who): an hour before the event is enough.
	from, to := at.Add(-time.Hour), at.Add(time.Minute)
	ei := &eventIdentity{Ref: ref, Page: identityURL(ref) + "?" + url.Values{
		"from": {from.UTC().Format(time.RFC3339)}, "to": {to.UTC().Format(time.RFC3339)}}.Encode()}
	rep, err := a.opts.Who(ctx, scope, ref, from, to)
	switch {
	case err != nil:
		a.opts.Logger.Error("console: following an event's credentials", "ref", ref, "err", err)
		ei.Error = "Following the chain of credentials failed."
	case rep == nil || len(rep.Chain) == 0 || rep.Chain[0].Issue == nil:
		// The chain is then the credential alone.
		ei.Error = "vigil saw no event that issued this credential."
	default:
		ei.Chain, ei.Origin = chainLinks(rep), rep.Origin.String()
	}
	return ei
}
