package detect

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/vigilsec/vigil/event"
)

// Bounds on correlation state, so that memory stays bounded whatever
// arrives: groups per correlation rule, and events remembered per group.
// Past them the oldest group, or event, is forgotten and counted.
// Variables, so that tests can make them small.
var (
	maxGroups      = 100_000
	maxGroupEvents = 10_000
)

// A corrRule is a correlation rule compiled against the engine's rules.
type corrRule struct {
	rule *Rule
	c    *Correlation
	// inputs are the correlated rules, in the order listed (which
	// temporal_ordered follows).
	inputs []*Rule
	// groupFields[input] are the fields holding the group-by values in
	// that input's events, aliases resolved.
	groupFields map[*Rule][]string
	// deferred is set when the condition can only be decided once the
	// window is over (an upper bound on a count), rather than when an
	// event arrives.
	deferred bool
}

func (e *Engine) addCorrelation(r *Rule) error {
	c := r.corr
	cr := &corrRule{rule: r, c: c, groupFields: map[*Rule][]string{}}
	for _, ref := range c.Rules {
		in := e.byRef[ref]
		if in == nil {
			return &Error{File: r.File, Line: r.Line, Rule: r.ref(), Err: fmt.Errorf("correlates rule %q, which is not loaded", ref)}
		}
		if in == r {
			return &Error{File: r.File, Line: r.Line, Rule: r.ref(), Err: fmt.Errorf("correlates itself")}
		}
		cr.inputs = append(cr.inputs, in)
		var fields []string
		for _, g := range c.GroupBy {
			f := g
			if m, ok := c.Aliases[g]; ok {
				if f, ok = m[in.Name]; !ok {
					if f, ok = m[in.ID]; !ok {
						return &Error{File: r.File, Line: r.Line, Rule: r.ref(), Err: fmt.Errorf("alias %s has no field for rule %q", g, ref)}
					}
				}
			}
			fields = append(fields, f)
		}
		cr.groupFields[in] = fields
		// The fields a correlation reads must be extracted from the
		// events of its inputs' sources.
		need := slices.Clone(fields)
		if c.Field != "" {
			need = append(need, c.Field)
		}
		if in.detection != nil {
			for _, t := range targets(in.Logsource) {
				if src := e.sources[t.source]; src != nil {
					for _, f := range need {
						if _, err := src.field(f); err != nil {
							return &Error{File: r.File, Line: r.Line, Rule: r.ref(), Err: err}
						}
					}
				}
			}
		}
		e.feeds[in] = append(e.feeds[in], cr)
		if !c.Generate {
			e.quiet[in] = true
		}
	}
	if c.Type == "event_count" || c.Type == "value_count" {
		for _, cmp := range c.Cond {
			if cmp.Op != "gt" && cmp.Op != "gte" {
				cr.deferred = true
			}
		}
	}
	e.corrs = append(e.corrs, cr)
	return nil
}

// aggregationRules turns a rule with an old-style aggregation ("selection
// | count(field) by group > 10" and a timeframe) into the two rules it
// means: the detection, under a derived id, quiet, and an event_count or
// value_count correlation of it under the rule's own id and title.
func aggregationRules(r *Rule) (input, corr *Rule, err error) {
	a := r.detection.agg
	if r.detection.timeframe == 0 {
		return nil, nil, &Error{File: r.File, Line: r.detection.condLine, Rule: r.ref(), Err: fmt.Errorf("an aggregation (| count() …) needs a timeframe")}
	}
	op := map[string]string{"<": "lt", "<=": "lte", ">": "gt", ">=": "gte", "=": "eq"}[a.op]
	c := &Correlation{Type: "event_count", GroupBy: a.groupBy, Timespan: r.detection.timeframe, Cond: []Comparison{{Op: op, Value: a.value}}}
	if a.field != "" {
		c.Type, c.Field = "value_count", a.field
	}
	in := *r
	in.ID, in.Name = r.ID+"#events", ""
	det := *r.detection
	det.agg = nil
	in.detection = &det
	c.Rules = []string{in.ID}
	cr := *r
	cr.detection, cr.corr = nil, c
	return &in, &cr, nil
}

// A Correlator keeps the state of an engine's correlation rules. It is
// not safe for concurrent use: the ingest path feeds it in order.
type Correlator struct {
	e      *Engine
	groups map[*corrRule]map[string]*group
	kb     []byte   // a group's key, being built
	vals   []string // a group's values, being read
	// Dropped counts state forgotten at the bounds.
	Dropped int64
}

type group struct {
	key    map[string]string
	events []EventRef     // within the timespan, oldest first
	values []string       // value_count, value_percentile: each event's value
	counts map[string]int // how many of values are each value
	nums   []float64      // value_sum, value_avg
	start  time.Time      // deferred conditions: the window's start
	// ordered: for temporal_ordered, the latest start of a chain that
	// matched the first i+1 rules.
	ordered []time.Time
	last    time.Time
}

// NewCorrelator returns an empty Correlator for e.
func (e *Engine) NewCorrelator() *Correlator {
	return &Correlator{e: e, groups: map[*corrRule]map[string]*group{}}
}

// observe feeds the correlations of rule r with a match on ev, whose
// field values fieldOf gives, and returns the correlations that matched.
func (c *Correlator) observe(r *Rule, ev EventRef, evTime time.Time, fieldOf func(string) (string, bool)) []Detection {
	var out []Detection
	for _, cr := range c.e.feeds[r] {
		c.kb, c.vals = c.kb[:0], c.vals[:0]
		complete := true
		for _, f := range cr.groupFields[r] {
			v, ok := fieldOf(f)
			if !ok {
				complete = false
				break
			}
			c.vals = append(c.vals, v)
			// Length-prefixed, so that no two groups share a key.
			c.kb = strconv.AppendInt(c.kb, int64(len(v)), 10)
			c.kb = append(c.kb, ':')
			c.kb = append(c.kb, v...)
		}
		if !complete {
			continue // an event without the group's fields is in no group
		}
		var value string
		if cr.c.Field != "" {
			v, ok := fieldOf(cr.c.Field)
			if !ok {
				continue
			}
			value = v
		}
		gs := c.groups[cr]
		if gs == nil {
			gs = map[string]*group{}
			c.groups[cr] = gs
		}
		g := gs[string(c.kb)]
		if g == nil {
			if len(gs) >= maxGroups {
				c.evict(gs, cr.c.Timespan, evTime)
			}
			key := make(map[string]string, len(cr.c.GroupBy))
			for i, v := range c.vals {
				key[cr.c.GroupBy[i]] = v
			}
			g = &group{key: key, start: evTime}
			gs[string(c.kb)] = g
		}
		kstr := string(c.kb)
		if d, ok := c.step(cr, g, r, ev, evTime, value); ok {
			delete(gs, kstr)
			out = append(out, d)
			// A correlation's match feeds the correlations built on it.
			fields := valuesIn(d.Group)
			out = append(out, c.observe(cr.rule, EventRef{Seq: ev.Seq, Time: evTime, ID: ev.ID, Tenant: d.Tenant(), Action: ev.Action, Rule: cr.rule.ID}, evTime, fields)...)
		}
	}
	return out
}

// valuesIn reads field values from a correlation's group, for the
// correlations that a correlation feeds.
func valuesIn(m map[string]string) func(string) (string, bool) {
	return func(f string) (string, bool) { v, ok := m[f]; return v, ok }
}

// evict makes room in a full set of groups: it forgets those whose last
// event is more than the timespan before now, and if that frees less than
// a tenth, the oldest tenth. Doing it a tenth at a time keeps a flood of
// new groups (an attack from many addresses) from costing a scan of every
// group per event.
func (c *Correlator) evict(gs map[string]*group, span time.Duration, now time.Time) {
	before := len(gs)
	for k, g := range gs {
		if now.Sub(g.last) > span {
			delete(gs, k)
		}
	}
	if len(gs) > before-before/10 {
		type kt struct {
			k string
			t time.Time
		}
		all := make([]kt, 0, len(gs))
		for k, g := range gs {
			all = append(all, kt{k, g.last})
		}
		sort.Slice(all, func(i, j int) bool { return all[i].t.Before(all[j].t) })
		for _, x := range all[:len(all)/10+1] {
			delete(gs, x.k)
		}
	}
	c.Dropped += int64(before - len(gs))
}

// step adds an event to a group and reports a match.
func (c *Correlator) step(cr *corrRule, g *group, r *Rule, ev EventRef, t time.Time, value string) (Detection, bool) {
	span := cr.c.Timespan
	if cr.deferred && t.Sub(g.start) >= span {
		// The window is over: decide it, then start the next with this
		// event.
		d, ok := c.decide(cr, g)
		*g = group{key: g.key, start: t}
		c.add(cr, g, ev, t, value)
		if ok {
			return d, true
		}
		return Detection{}, false
	}
	c.add(cr, g, ev, t, value)
	if cr.deferred {
		return Detection{}, false
	}
	// Sliding window: forget what is older than the timespan before this
	// event.
	cut := 0
	for cut < len(g.events) && t.Sub(g.events[cut].Time) > span {
		cut++
	}
	if cut > 0 {
		g.events = g.events[cut:]
		if g.values != nil {
			for _, v := range g.values[:cut] {
				g.forget(v)
			}
			g.values = g.values[cut:]
		}
		if g.nums != nil {
			g.nums = g.nums[cut:]
		}
	}
	if cr.c.Type == "temporal_ordered" {
		return c.ordered(cr, g, r, t)
	}
	return c.decide(cr, g)
}

func (c *Correlator) add(cr *corrRule, g *group, ev EventRef, t time.Time, value string) {
	g.last = t
	if len(g.events) >= maxGroupEvents {
		g.events = g.events[1:]
		if len(g.values) > 0 {
			g.forget(g.values[0])
			g.values = g.values[1:]
		}
		if len(g.nums) > 0 {
			g.nums = g.nums[1:]
		}
		c.Dropped++
	}
	g.events = append(g.events, ev)
	switch cr.c.Type {
	case "value_count", "value_percentile":
		g.values = append(g.values, value)
		if g.counts == nil {
			g.counts = map[string]int{}
		}
		g.counts[value]++
	case "value_sum", "value_avg":
		x, err := strconv.ParseFloat(value, 64)
		if err != nil {
			x = 0
		}
		g.nums = append(g.nums, x)
	}
}

// forget takes a value that left the window out of the counts.
func (g *group) forget(v string) {
	if g.counts[v]--; g.counts[v] <= 0 {
		delete(g.counts, v)
	}
}

// decide evaluates a group's condition.
func (c *Correlator) decide(cr *corrRule, g *group) (Detection, bool) {
	var x float64
	switch cr.c.Type {
	case "event_count":
		x = float64(len(g.events))
	case "value_count":
		x = float64(len(g.counts))
	case "temporal":
		seen := map[string]bool{}
		for _, e := range g.events {
			seen[e.Rule] = true
		}
		x = float64(len(seen))
	case "value_sum", "value_avg":
		for _, n := range g.nums {
			x += n
		}
		if cr.c.Type == "value_avg" && len(g.nums) > 0 {
			x /= float64(len(g.nums))
		}
	case "value_percentile":
		// The share, in percent, of the group's events in the window
		// that have the newest event's value: "a value seen in at most 1%
		// of the events" is rare for its group.
		last := g.values[len(g.values)-1]
		x = 100 * float64(g.counts[last]) / float64(len(g.values))
	}
	if len(g.events) == 0 || !cr.c.Holds(x) {
		return Detection{}, false
	}
	return c.detection(cr, g, x), true
}

// ordered advances a temporal_ordered group: the rules must match in the
// order listed, all within the timespan of the first.
func (c *Correlator) ordered(cr *corrRule, g *group, r *Rule, t time.Time) (Detection, bool) {
	n := len(cr.inputs)
	if g.ordered == nil {
		g.ordered = make([]time.Time, n)
	}
	// A rule may be listed more than once: advance from the latest step.
	for i := n - 1; i >= 0; i-- {
		if cr.inputs[i] != r {
			continue
		}
		if i == 0 {
			g.ordered[0] = t
			continue
		}
		if prev := g.ordered[i-1]; !prev.IsZero() && t.Sub(prev) <= cr.c.Timespan && !t.Before(prev) {
			if g.ordered[i].IsZero() || prev.After(g.ordered[i]) {
				g.ordered[i] = prev
			}
		}
	}
	if g.ordered[n-1].IsZero() {
		return Detection{}, false
	}
	x := float64(n)
	if !cr.c.Holds(x) {
		return Detection{}, false
	}
	start := g.ordered[n-1]
	d := c.detection(cr, g, x)
	d.Events = slices.DeleteFunc(d.Events, func(e EventRef) bool { return e.Time.Before(start) })
	return d, true
}

func (c *Correlator) detection(cr *corrRule, g *group, x float64) Detection {
	return Detection{Rule: cr.rule, Group: g.key, Value: x, Events: slices.Clone(g.events)}
}

// Flush decides the groups of deferred conditions whose window ended
// before now, as if an event had arrived at now.
func (c *Correlator) Flush(now time.Time) []Detection {
	var out []Detection
	for _, cr := range c.e.corrs {
		gs := c.groups[cr]
		var done []string
		for k, g := range gs {
			if now.Sub(g.last) > cr.c.Timespan && (!cr.deferred || now.Sub(g.start) >= cr.c.Timespan) {
				if cr.deferred {
					if d, ok := c.decide(cr, g); ok {
						out = append(out, d)
					}
				}
				done = append(done, k)
			}
		}
		for _, k := range done {
			delete(gs, k)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Rule.ID < out[j].Rule.ID })
	return out
}

// Groups returns how many groups the correlator holds.
func (c *Correlator) Groups() int {
	n := 0
	for _, gs := range c.groups {
		n += len(gs)
	}
	return n
}

// eventRef makes an EventRef of ev for a match of rule r.
func eventRef(ev *event.Event, r *Rule) EventRef {
	return EventRef{Seq: ev.Seq, Time: ev.Time, ID: ev.ID, Tenant: ev.Tenant, Action: ev.Action, Rule: r.ID}
}
