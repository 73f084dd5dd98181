package detect

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/query"
)

// A Hit is one line of a retro-hunt: an event a rule matched, or one of
// the events behind a correlation's match, under the correlation's id.
type Hit struct {
	RuleID  string    `json:"rule_id"`
	Title   string    `json:"title"`
	Level   string    `json:"level"`
	Seq     uint64    `json:"seq"`
	Time    time.Time `json:"time"`
	Action  string    `json:"action"`
	EventID string    `json:"event_id"`
	Tenant  string    `json:"tenant"`
	// Correlation is set on the lines of a correlation's match.
	Correlation bool `json:"correlation,omitempty"`
}

// SourceQuery returns the query text that selects the events of the
// sources e's rules apply to ("" when they apply to none), for the store
// to read only those in a hunt.
func (e *Engine) SourceQuery() string {
	var parts []string
	for _, s := range e.Sources() {
		if !strings.HasPrefix(s, "none:") {
			parts = append(parts, "source:"+strconv.Quote(s))
		}
	}
	return strings.Join(parts, " OR ")
}

// A Scanner reads stored events, oldest first, within a request's scope
// and time range: the store.
type Scanner interface {
	Scan(ctx context.Context, req query.Request, fn func(*event.Event) error) error
}

// HuntStore hunts the events s holds that req selects (its scope and
// time range), reading only those of the sources e's rules apply to.
func HuntStore(ctx context.Context, e *Engine, s Scanner, req query.Request, end time.Time, fn func(Hit) error) error {
	return Hunt(e, end, func(each func(*event.Event) error) error {
		text := e.SourceQuery()
		if text == "" {
			return nil
		}
		q, err := query.Parse(text)
		if err != nil {
			return err
		}
		req.Query = q
		return s.Scan(ctx, req, each)
	}, fn)
}

// Hunt runs e's rules over history: scan calls its function with each
// event, oldest first, and Hunt calls fn with each hit. Correlation
// windows still open when the scan ends are decided as of end (the end
// of the hunted range).
func Hunt(e *Engine, end time.Time, scan func(func(*event.Event) error) error, fn func(Hit) error) error {
	d := e.NewDetector()
	emit := func(ds []Detection) error {
		for i := range ds {
			for _, h := range hits(&ds[i]) {
				if err := fn(h); err != nil {
					return err
				}
			}
		}
		return nil
	}
	err := scan(func(ev *event.Event) error { return emit(d.Process(ev)) })
	if err != nil {
		return err
	}
	return emit(d.Flush(end))
}

func hits(d *Detection) []Hit {
	r := d.Rule
	if d.Event != nil {
		return []Hit{{RuleID: r.ID, Title: r.Title, Level: r.Level, Seq: d.Event.Seq, Time: d.Event.Time, Action: d.Event.Action, EventID: d.Event.ID, Tenant: d.Event.Tenant}}
	}
	out := make([]Hit, 0, len(d.Events))
	for _, e := range d.Events {
		out = append(out, Hit{RuleID: r.ID, Title: r.Title, Level: r.Level, Seq: e.Seq, Time: e.Time, Action: e.Action, EventID: e.ID, Tenant: e.Tenant, Correlation: true})
	}
	return out
}
