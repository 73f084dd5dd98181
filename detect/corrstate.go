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
						ref, err := src.field(f)
						if err != nil {
							return &Error{File: r.File, Line: r.Line, Rule: r.ref(), Err: err}
						}
						src.reads(in, ref)
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
//
// Windows are in event time. A group holds the events of the timespan
// that ends at its newest event, in time order, and every event is
// decided on that window. An event that arrives late is still counted
// when it falls in the window; one older than the window's start is
// too late for it and only counted in Late (vigil hunt, which reads the
// store in time order, correlates history).
type Correlator struct {
	e      *Engine
	groups map[*corrRule]map[string]*group
	kb     []byte   // a group's key, being built
	vals   [][]byte // a group's values, being read
	// Dropped counts state forgotten at the bounds, and Late the events
	// that came after their window was gone.
	Dropped, Late int64
}

// A group is the state of one correlation rule for one set of group-by
// values. Every event of the window is kept, because a match reports them
// all; the rest is what deciding the condition needs, kept up to date as
// events come and go, so that no event costs a pass over the window.
type group struct {
	key    map[string]string
	events window[EventRef] // in time order
	values values           // value_count, value_percentile: each event's value
	nums   window[float64]  // value_sum, value_avg: each event's value
	// rules counts, for temporal, the window's events of each input (by
	// its first place in the inputs).
	rules []int32
	start time.Time // deferred conditions: the window's start
	last  time.Time // the newest event's time
}

// A window is a queue, oldest first, that reuses its array: the
// sliding window of a busy group drops and adds an item per event.
type window[T any] struct {
	buf  []T
	head int
}

func (w *window[T]) len() int   { return len(w.buf) - w.head }
func (w *window[T]) items() []T { return w.buf[w.head:] }

// insert puts x at position i (len() appends it).
func (w *window[T]) insert(i int, x T) {
	// Move the items to the front once at least half the array is
	// dropped ones, so that each item is moved at most once on average.
	if len(w.buf) == cap(w.buf) && w.head > 0 && w.head >= len(w.buf)/2 {
		n := copy(w.buf, w.buf[w.head:])
		clear(w.buf[n:])
		w.buf, w.head = w.buf[:n], 0
	}
	if i == w.len() {
		w.buf = append(w.buf, x)
		return
	}
	w.buf = slices.Insert(w.buf, w.head+i, x)
}

// drop forgets the oldest n items.
func (w *window[T]) drop(n int) {
	clear(w.buf[w.head : w.head+n]) // let the collector have what they hold
	w.head += n
}

// values are the values of a group's events, in a window, each distinct
// value stored once and counted.
type values struct {
	window[int32]          // each event's value, by id
	names         []string // id → value
	counts        []int32  // id → events in the window with the value; -1 for a free id
	// ids finds a value's id once there are many: a few are found
	// faster by comparing each.
	ids      map[string]int32
	free     []int32 // ids no value has
	distinct int     // values with a count
	// idle counts the values counted zero times. They keep their ids a
	// while: the value a group sees once an hour is the same value every
	// hour, and need not be copied and hashed in each time.
	idle int
}

// maxScanned is how many values are looked up by comparing each, before
// a map finds them.
const maxScanned = 16

func (v *values) insert(i int, val []byte) {
	id, ok := v.lookup(val)
	switch {
	case !ok:
		id = v.add(string(val))
		v.distinct++
	case v.counts[id] == 0:
		v.idle--
		v.distinct++
	}
	v.counts[id]++
	v.window.insert(i, id)
}

// lookup returns the id of a value.
func (v *values) lookup(val []byte) (int32, bool) {
	if v.ids != nil {
		id, ok := v.ids[string(val)]
		return id, ok
	}
	for id, name := range v.names {
		if v.counts[id] >= 0 && name == string(val) {
			return int32(id), true
		}
	}
	return 0, false
}

// add gives a new value an id, counted zero times.
func (v *values) add(name string) int32 {
	var id int32
	if n := len(v.free); n > 0 {
		id, v.free = v.free[n-1], v.free[:n-1]
		v.names[id], v.counts[id] = name, 0
	} else {
		id = int32(len(v.names))
		v.names, v.counts = append(v.names, name), append(v.counts, 0)
	}
	switch {
	case v.ids != nil:
		v.ids[name] = id
	case len(v.names)-len(v.free) > maxScanned:
		v.ids = make(map[string]int32, 2*maxScanned)
		for id, name := range v.names {
			if v.counts[id] >= 0 {
				v.ids[name] = int32(id)
			}
		}
	}
	return id
}

// drop forgets the values of the oldest n events.
func (v *values) drop(n int) {
	for _, id := range v.items()[:n] {
		if v.counts[id]--; v.counts[id] == 0 {
			v.distinct--
			v.idle++
		}
	}
	v.window.drop(n)
	if v.idle > maxScanned && v.idle > v.distinct {
		// Free the ids of idle values.
		for id, n := range v.counts {
			if n == 0 {
				if v.ids != nil {
					delete(v.ids, v.names[id])
				}
				v.names[id], v.counts[id] = "", -1
				v.free = append(v.free, int32(id))
			}
		}
		v.idle = 0
	}
}

// share is the share, in percent, of the window's events that have the
// value of the event at position i.
func (v *values) share(i int) float64 {
	items := v.items()
	return 100 * float64(v.counts[items[i]]) / float64(len(items))
}

// NewCorrelator returns an empty Correlator for e.
func (e *Engine) NewCorrelator() *Correlator {
	return &Correlator{e: e, groups: map[*corrRule]map[string]*group{}}
}

// A fieldReader gives the first value of a field of the event a rule
// matched; the bytes are only valid until the next event.
type fieldReader func(field string) ([]byte, bool)

// observe feeds the correlations of rule r with a match on ev, whose
// field values fieldOf gives, and returns the correlations that matched.
func (c *Correlator) observe(r *Rule, ev EventRef, evTime time.Time, fieldOf fieldReader) []Detection {
	var out []Detection
	for _, cr := range c.e.feeds[r] {
		vals, value, ok := c.inputOf(cr, r, fieldOf)
		if !ok {
			continue
		}
		out = append(out, c.apply(cr, r, ev, evTime, vals, value)...)
	}
	return out
}

// inputOf reads what correlation cr needs of a match of r: the group's
// values and the value field's. It reports false for an event in no
// group (one without the group's fields, or the value field). The
// slices are reused by the next call.
func (c *Correlator) inputOf(cr *corrRule, r *Rule, fieldOf fieldReader) (vals [][]byte, value []byte, ok bool) {
	c.vals = c.vals[:0]
	for _, f := range cr.groupFields[r] {
		v, ok := fieldOf(f)
		if !ok {
			return nil, nil, false
		}
		c.vals = append(c.vals, v)
	}
	if cr.c.Field != "" {
		v, ok := fieldOf(cr.c.Field)
		if !ok {
			return nil, nil, false
		}
		value = v
	}
	return c.vals, value, true
}

// apply adds a match of r, whose group has the values vals, to the
// state of correlation cr, and returns the correlations that matched.
func (c *Correlator) apply(cr *corrRule, r *Rule, ev EventRef, evTime time.Time, vals [][]byte, value []byte) []Detection {
	c.kb = c.kb[:0]
	for _, v := range vals {
		// Length-prefixed, so that no two groups share a key.
		c.kb = strconv.AppendInt(c.kb, int64(len(v)), 10)
		c.kb = append(c.kb, ':')
		c.kb = append(c.kb, v...)
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
		for i, v := range vals {
			key[cr.c.GroupBy[i]] = string(v)
		}
		g = &group{key: key, start: evTime}
		gs[string(c.kb)] = g
	}
	d, ok := c.step(cr, g, r, ev, evTime, value)
	if !ok {
		return nil
	}
	delete(gs, string(c.kb))
	// A correlation's match feeds the correlations built on it.
	return append([]Detection{d}, c.observe(cr.rule, EventRef{Seq: ev.Seq, Time: evTime, ID: ev.ID, Tenant: d.Tenant(), Action: ev.Action, Rule: cr.rule.ID, rule: cr.rule}, evTime, valuesIn(d.Group))...)
}

// valuesIn reads field values from a correlation's group, for the
// correlations that a correlation feeds.
func valuesIn(m map[string]string) fieldReader {
	return func(f string) ([]byte, bool) { v, ok := m[f]; return []byte(v), ok }
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
func (c *Correlator) step(cr *corrRule, g *group, r *Rule, ev EventRef, t time.Time, value []byte) (Detection, bool) {
	span := cr.c.Timespan
	if cr.deferred {
		// A tumbling window from its first event: decided once it is
		// over, when an event after it comes (or at Flush).
		if t.Sub(g.start) < span {
			c.add(cr, g, ev, t, value)
			return Detection{}, false
		}
		d, ok := c.decide(cr, g, g.events.len()-1)
		*g = group{key: g.key, start: t}
		c.add(cr, g, ev, t, value)
		return d, ok
	}
	if !g.last.IsZero() && g.last.Sub(t) > span {
		c.Late++
		return Detection{}, false
	}
	at := c.add(cr, g, ev, t, value)
	// Forget what is older than the timespan before the newest event.
	cut := 0
	for _, e := range g.events.items() {
		if g.last.Sub(e.Time) <= span {
			break
		}
		cut++
	}
	if cut > 0 {
		g.forget(cr, cut)
		at -= cut
	}
	if cr.c.Type == "temporal_ordered" {
		return c.ordered(cr, g, r, at)
	}
	return c.decide(cr, g, at)
}

// forget drops the group's oldest n events.
func (g *group) forget(cr *corrRule, n int) {
	if g.rules != nil {
		for _, e := range g.events.items()[:n] {
			g.rules[cr.input(e.rule)]--
		}
	}
	g.events.drop(n)
	if g.values.len() > 0 {
		g.values.drop(n)
	}
	if g.nums.len() > 0 {
		g.nums.drop(n)
	}
}

// input returns the first place of r among the correlated rules.
func (cr *corrRule) input(r *Rule) int {
	for i, in := range cr.inputs {
		if in == r {
			return i
		}
	}
	return 0 // an event of another rule is never in the group
}

// add puts an event in the group in time order (after those of the same
// time) and returns its position.
func (c *Correlator) add(cr *corrRule, g *group, ev EventRef, t time.Time, value []byte) int {
	if g.events.len() >= maxGroupEvents {
		g.forget(cr, 1)
		c.Dropped++
	}
	at := g.events.len()
	if t.Before(g.last) {
		items := g.events.items()
		at = sort.Search(len(items), func(i int) bool { return items[i].Time.After(t) })
	} else {
		g.last = t
	}
	g.events.insert(at, ev)
	switch cr.c.Type {
	case "value_count", "value_percentile":
		g.values.insert(at, value)
	case "value_sum", "value_avg":
		x, err := strconv.ParseFloat(string(value), 64)
		if err != nil {
			x = 0
		}
		g.nums.insert(at, x)
	case "temporal":
		if g.rules == nil {
			g.rules = make([]int32, len(cr.inputs))
		}
		g.rules[cr.input(ev.rule)]++
	}
	return at
}

// decide evaluates a group's condition; the event at position at is the
// one that just came.
func (c *Correlator) decide(cr *corrRule, g *group, at int) (Detection, bool) {
	var x float64
	switch cr.c.Type {
	case "event_count":
		x = float64(g.events.len())
	case "value_count":
		x = float64(g.values.distinct)
	case "temporal":
		for _, n := range g.rules {
			if n > 0 {
				x++
			}
		}
	case "value_sum", "value_avg":
		for _, n := range g.nums.items() {
			x += n
		}
		if cr.c.Type == "value_avg" && g.nums.len() > 0 {
			x /= float64(g.nums.len())
		}
	case "value_percentile":
		// The share, in percent, of the group's events in the window
		// that have the new event's value: "a value seen in at most 1%
		// of the events" is rare for its group.
		x = g.values.share(at)
	}
	if g.events.len() == 0 || !cr.c.Holds(x) {
		return Detection{}, false
	}
	return c.detection(cr, g, x), true
}

// ordered decides a temporal_ordered group: the rules must have matched
// in the order listed, within the window. The event at position at is
// the one that just came: arriving in order, it can only complete a
// chain as the last rule of it.
func (c *Correlator) ordered(cr *corrRule, g *group, r *Rule, at int) (Detection, bool) {
	n := len(cr.inputs)
	evs := g.events.items()
	if at == len(evs)-1 && r != cr.inputs[n-1] {
		return Detection{}, false
	}
	// The earliest chain: each rule's first event after the one of the
	// rule before it.
	next, first := 0, 0
	for i := range evs {
		if evs[i].rule == cr.inputs[next] {
			if next == 0 {
				first = i
			}
			if next++; next == n {
				break
			}
		}
	}
	if next < n || !cr.c.Holds(float64(n)) {
		return Detection{}, false
	}
	d := c.detection(cr, g, float64(n))
	d.Events = d.Events[first:]
	return d, true
}

func (c *Correlator) detection(cr *corrRule, g *group, x float64) Detection {
	return Detection{Rule: cr.rule, Group: g.key, Value: x, Events: slices.Clone(g.events.items())}
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
					if d, ok := c.decide(cr, g, g.events.len()-1); ok {
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
	return EventRef{Seq: ev.Seq, Time: ev.Time, ID: ev.ID, Tenant: ev.Tenant, Action: ev.Action, Rule: r.ID, rule: r}
}
