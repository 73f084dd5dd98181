package detect

import (
	"slices"
	"time"

	"github.com/vigilsec/vigil/event"
)

// A Detector runs an engine's rules, correlations included, on a stream
// of events in the order they come. It is not safe for concurrent use.
type Detector struct {
	e   *Engine
	m   *Matcher
	c   *Correlator
	out []Detection
	// Errors counts events whose document could not be read.
	Errors int64
}

// NewDetector returns a Detector for e, with empty correlation state.
func (e *Engine) NewDetector() *Detector {
	return &Detector{e: e, m: e.NewMatcher(), c: e.NewCorrelator()}
}

// Correlator returns the detector's correlation state.
func (d *Detector) Correlator() *Correlator { return d.c }

// Process matches ev and returns its detections: the rules it matched
// (except those only correlated), and the correlations it completed. The
// slice is reused by the next call.
func (d *Detector) Process(ev *event.Event) []Detection {
	d.out = d.out[:0]
	err := d.m.Match(ev, func(r *Rule) {
		if !d.e.quiet[r] && !d.e.off[r] {
			d.out = append(d.out, Detection{Rule: r, Event: ev, Fields: d.m.Fields(r, ev)})
		}
		if len(d.e.feeds[r]) > 0 {
			d.out = append(d.out, d.e.on(d.c.observe(r, eventRef(ev, r), ev.Time, d.fieldOf))...)
		}
	})
	if err != nil {
		d.Errors++
	}
	return d.out
}

// Flush decides the correlation windows that ended before now (see
// Correlator.Flush) and returns their detections.
func (d *Detector) Flush(now time.Time) []Detection {
	return d.c.FlushAt(now)
}

// on drops the detections of correlations turned off. Their state is
// still kept: a correlation may count another's matches.
func (e *Engine) on(ds []Detection) []Detection {
	if len(e.off) == 0 {
		return ds
	}
	return slices.DeleteFunc(ds, func(x Detection) bool { return e.off[x.Rule] })
}

// fieldOf returns the first value of a field of the event being matched.
func (d *Detector) fieldOf(name string) ([]byte, bool) {
	f := d.m.r.src.fields[name]
	if f == nil {
		return nil, false
	}
	vals := d.m.r.values(f)
	if len(vals) == 0 {
		return nil, false
	}
	return d.m.r.text(&vals[0]), true
}
