package detect

import (
	"fmt"
	"strconv"
	"time"

	"github.com/vigilsec/vigil/event"
)

// An Observation is a match of a rule that feeds a correlation: what the
// correlation's state needs of it. When events are matched on several
// nodes, Split hands observations out instead of correlating, so that
// each goes to the one node keeping the state of its group (by Key), and
// a correlation sees all of its group's matches whichever node matched
// them.
type Observation struct {
	Correlation string   `json:"correlation"` // the correlation rule: its id, else its name
	Rule        string   `json:"rule"`        // the rule matched: its id, else its name
	Event       EventRef `json:"event"`
	Group       []string `json:"group"` // the group's values, in the correlation's group-by order
	// Value is the correlation's value field (value_count, avg, …), if
	// it has one.
	Value string `json:"value,omitempty"`
}

// Key is where the observation's group lives: equal for the
// observations of one group of one correlation.
func (o *Observation) Key() []byte {
	b := []byte(o.Correlation)
	for _, v := range o.Group {
		b = append(b, 0)
		b = strconv.AppendInt(b, int64(len(v)), 10)
		b = append(b, ':')
		b = append(b, v...)
	}
	return b
}

// Split matches ev like Process but leaves correlating to others: it
// returns the event's detections of rules, and gives obs each match that
// feeds a correlation, for the Correlator keeping its group
// (Correlator.Observe). The detector's own correlation state is not
// used. The slice is reused by the next call.
func (d *Detector) Split(ev *event.Event, obs func(Observation)) []Detection {
	d.out = d.out[:0]
	err := d.m.Match(ev, func(r *Rule) {
		if !d.e.quiet[r] && !d.e.off[r] {
			d.out = append(d.out, Detection{Rule: r, Event: ev, Fields: d.m.Fields(r, ev)})
		}
		for _, cr := range d.e.feeds[r] {
			vals, value, ok := d.c.inputOf(cr, r, d.fieldOf)
			if !ok {
				continue
			}
			o := Observation{Correlation: ruleKey(cr.rule), Rule: ruleKey(r), Event: eventRef(ev, r), Group: make([]string, len(vals)), Value: string(value)}
			for i, v := range vals {
				o.Group[i] = string(v)
			}
			obs(o)
		}
	})
	if err != nil {
		d.Errors++
	}
	return d.out
}

// Observe adds an observation that Split gave to the correlation state
// and returns the correlations it completed, those turned off left out.
// It fails for an observation of rules this engine does not have, or
// runs differently (the nodes' rules differ while a change spreads).
func (c *Correlator) Observe(o Observation) ([]Detection, error) {
	cr, r := c.e.correlated(o.Correlation, o.Rule)
	if r == nil {
		return nil, fmt.Errorf("detect: an observation of %s for correlation %s, which this engine does not correlate", o.Rule, o.Correlation)
	}
	if len(o.Group) != len(cr.groupFields[r]) {
		return nil, fmt.Errorf("detect: an observation of %s for correlation %s with %d group values, not %d", o.Rule, o.Correlation, len(o.Group), len(cr.groupFields[r]))
	}
	c.vals = c.vals[:0]
	for _, v := range o.Group {
		c.vals = append(c.vals, []byte(v))
	}
	var value []byte
	if cr.c.Field != "" {
		value = []byte(o.Value)
	}
	ev := o.Event
	ev.rule = r
	return c.e.on(c.apply(cr, r, ev, ev.Time, c.vals, value)), nil
}

// FlushAt is Flush with the correlations turned off left out.
func (c *Correlator) FlushAt(now time.Time) []Detection { return c.e.on(c.Flush(now)) }

// correlated returns the correlation of key corr, and its input of key
// rule; a nil rule if there is none.
func (e *Engine) correlated(corr, rule string) (*corrRule, *Rule) {
	for _, cr := range e.corrs {
		if ruleKey(cr.rule) != corr {
			continue
		}
		for _, in := range cr.inputs {
			if ruleKey(in) == rule {
				return cr, in
			}
		}
	}
	return nil, nil
}

// ruleKey names a rule across nodes: by its id, else its name (rules a
// correlation refers to have one or the other), else its title.
func ruleKey(r *Rule) string {
	switch {
	case r.ID != "":
		return r.ID
	case r.Name != "":
		return r.Name
	}
	return "title:" + r.Title
}
