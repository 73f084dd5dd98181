package detect

import (
	"time"

	"github.com/vigilsec/vigil/event"
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
	return emit(d.c.Flush(end))
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
