package detect

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/vigilsec/vigil/event"
)

// Options configure an Engine.
type Options struct {
	// Placeholders are the values of the placeholders (%name%) that rules
	// with the expand modifier use.
	Placeholders map[string][]string
	// Off are the ids of rules turned off: they load and still feed the
	// correlations that count them, but make no detections of their own,
	// so that silencing a noisy rule cannot break a correlation built on
	// it.
	Off map[string]bool
}

// An Engine is a set of rules compiled for matching. It is immutable and
// safe for concurrent use; each goroutine matches through a Matcher of its
// own.
type Engine struct {
	rules   []*Rule
	sources map[string]*sourceRules
	byRef   map[string]*Rule // by id and by name
	// unmatched are rules whose logsource no vigil source produces.
	unmatched []*Rule
	disabled  []Disabled
	corrs     []*corrRule
	// feeds maps a rule to the correlations that count its matches.
	feeds map[*Rule][]*corrRule
	// quiet are rules correlated without generate: their matches feed
	// correlations but are not detections of their own.
	quiet map[*Rule]bool
	// off are the rules turned off (Options.Off).
	off map[*Rule]bool
}

// NewEngine compiles rules. A rule that cannot be compiled (an unknown
// modifier, a placeholder without values, a correlation of an unknown
// rule) is left out, and its *Error is in the returned error; the engine
// holds the rest.
func NewEngine(rules []*Rule, opts Options) (*Engine, error) {
	e := &Engine{
		sources: map[string]*sourceRules{},
		byRef:   map[string]*Rule{},
		feeds:   map[*Rule][]*corrRule{},
		quiet:   map[*Rule]bool{},
		off:     map[*Rule]bool{},
	}
	var errs []error
	seen := map[string]*Rule{}
	for _, r := range rules {
		if r.ID != "" {
			if prev := seen[r.ID]; prev != nil {
				errs = append(errs, &Error{File: r.File, Line: r.Line, Rule: r.ref(), Err: fmt.Errorf("id also used by %s:%d", prev.File, prev.Line)})
				continue
			}
			seen[r.ID] = r
		}
		if r.corr != nil {
			e.rules = append(e.rules, r)
			continue
		}
		if r.detection.agg != nil {
			in, cr, err := aggregationRules(r)
			if err == nil {
				err = e.add(in, &opts)
			}
			if err != nil {
				errs = append(errs, err)
				continue
			}
			e.rules = append(e.rules, in, cr)
			continue
		}
		if err := e.add(r, &opts); err != nil {
			var pe *placeholderError
			if errors.As(err, &pe) {
				e.disabled = append(e.disabled, Disabled{Rule: r, Line: pe.line, Reason: pe.Error()})
				continue
			}
			errs = append(errs, err)
			continue
		}
		e.rules = append(e.rules, r)
	}
	for _, r := range e.rules {
		if r.ID != "" {
			e.byRef[r.ID] = r
		}
		if r.Name != "" {
			e.byRef[r.Name] = r
		}
	}
	// Correlations last: they refer to the rules above, and to each other.
	kept := e.rules[:0]
	for _, r := range e.rules {
		if r.corr == nil {
			kept = append(kept, r)
			continue
		}
		if err := e.addCorrelation(r); err != nil {
			errs = append(errs, err)
			continue
		}
		kept = append(kept, r)
	}
	e.rules = kept
	for _, r := range e.rules {
		if r.ID != "" && opts.Off[r.ID] {
			e.off[r] = true
		}
	}
	for _, s := range e.sources {
		if err := s.finish(); err != nil {
			errs = append(errs, fmt.Errorf("compiling the fields of %s rules: %w", s.name, err))
		}
	}
	return e, errors.Join(errs...)
}

func (e *Engine) add(r *Rule, opts *Options) (err error) {
	ts := targets(r.Logsource)
	if len(ts) == 0 {
		// Compile it anyway, against a source of no events, so that a
		// mistake in it is still reported.
		ts = []target{{source: "none:" + r.Logsource.String()}}
		defer func() {
			if err == nil {
				e.unmatched = append(e.unmatched, r)
			}
		}()
	}
	for _, t := range ts {
		src := e.sources[t.source]
		if src == nil {
			src = newSourceRules(t.source)
			e.sources[t.source] = src
		}
		c := &compiler{src: src, det: r.detection, opts: opts}
		m, err := c.cond(r.detection.cond)
		if err != nil {
			return asRuleError(err, r.File, r)
		}
		cr := &compiled{rule: r, only: t.only, m: m, slots: c.slots, order: src.rules}
		src.rules++
		if set, ok := requiredActions(r.detection.cond, r.detection, actionFields[t.source]); ok {
			for a := range set {
				if a.prefix {
					src.byPrefix[a.s] = append(src.byPrefix[a.s], cr)
				} else {
					src.byAction[a.s] = append(src.byAction[a.s], cr)
				}
			}
			src.indexed = append(src.indexed, cr)
		} else {
			src.always = append(src.always, cr)
		}
	}
	return nil
}

// MaxTimespan returns the longest timespan of the engine's correlations:
// how far back their state reaches. Zero when it has none.
func (e *Engine) MaxTimespan() time.Duration {
	var d time.Duration
	for _, c := range e.corrs {
		d = max(d, c.c.Timespan)
	}
	return d
}

// Sources returns the vigil sources (event.Source values) some rule of
// the engine applies to, sorted: a hunt need read no others.
func (e *Engine) Sources() []string {
	var out []string
	for name, src := range e.sources {
		if len(src.always) > 0 || len(src.indexed) > 0 {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// RuleSources returns the vigil sources a rule of the engine applies to,
// by its logsource; for a correlation, those of the rules it counts.
func (e *Engine) RuleSources(r *Rule) []string {
	var out []string
	if r.corr != nil {
		for _, ref := range r.corr.Rules {
			if c := e.byRef[ref]; c != nil && c.corr == nil {
				out = append(out, e.RuleSources(c)...)
			}
		}
	} else {
		for _, t := range targets(r.Logsource) {
			out = append(out, t.source)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Rules returns the rules the engine holds.
func (e *Engine) Rules() []*Rule { return e.rules }

// Rule returns the rule with the given id or name.
func (e *Engine) Rule(ref string) *Rule { return e.byRef[ref] }

// A Disabled rule loaded but does not run, and why.
type Disabled struct {
	Rule   *Rule
	Line   int
	Reason string
}

// Disabled returns the rules that loaded but do not run: those whose
// placeholders have no values.
func (e *Engine) Disabled() []Disabled { return e.disabled }

// IsOff reports whether r is turned off (Options.Off).
func (e *Engine) IsOff(r *Rule) bool { return e.off[r] }

// Unmatched returns the rules whose logsource no vigil source produces:
// they are loaded but see no events.
func (e *Engine) Unmatched() []*Rule { return e.unmatched }

// A Detection is an event a rule matched, or for a correlation rule the
// last event that completed the correlation.
type Detection struct {
	Rule  *Rule
	Event *event.Event
	// Fields are the values of the fields the rule names, as found in
	// the event (the first value of each).
	Fields map[string]string
	// For a correlation: the group it matched for, the value that met
	// the condition, and the events that contributed, oldest first.
	Group  map[string]string
	Value  float64
	Events []EventRef
}

// An EventRef names an event that contributed to a correlation.
type EventRef struct {
	Seq    uint64
	Time   time.Time
	ID     string
	Tenant string
	Action string
	Rule   string // the id of the rule it matched
	rule   *Rule
}

// Tenant returns the tenant a detection belongs to: its event's, or for a
// correlation, the tenant all its events share, or "" when they span
// several (a cross-tenant correlation, for a scope over every tenant).
func (d *Detection) Tenant() string {
	if d.Event != nil {
		return d.Event.Tenant
	}
	t := ""
	for i, e := range d.Events {
		if i > 0 && e.Tenant != t {
			return ""
		}
		t = e.Tenant
	}
	return t
}

// A Part is one tenant's share of a correlation across tenants: the
// events of that tenant among the correlation's, oldest first.
type Part struct {
	Tenant string
	Events []EventRef
}

// Parts returns, for a correlation whose events span tenants (Tenant
// returns ""), each tenant's events, by tenant name; nil for a detection
// of one tenant. An event of no tenant (that of a correlation across
// tenants feeding another) is in no part: whose it is cannot be said,
// so only a scope over every tenant sees it.
func (d *Detection) Parts() []Part {
	if d.Event != nil || d.Tenant() != "" {
		return nil
	}
	var ps []Part
	for _, e := range d.Events {
		if e.Tenant == "" {
			continue
		}
		i := slices.IndexFunc(ps, func(p Part) bool { return p.Tenant == e.Tenant })
		if i < 0 {
			ps = append(ps, Part{Tenant: e.Tenant})
			i = len(ps) - 1
		}
		ps[i].Events = append(ps[i].Events, e)
	}
	slices.SortFunc(ps, func(a, b Part) int { return strings.Compare(a.Tenant, b.Tenant) })
	return ps
}

// A Matcher matches events against an engine's rules. It keeps buffers
// from one event to the next and is not safe for concurrent use.
type Matcher struct {
	e   *Engine
	r   record
	key []byte
}

// NewMatcher returns a Matcher for e.
func (e *Engine) NewMatcher() *Matcher { return &Matcher{e: e} }

// Match calls fn for each rule that ev matches: detection rules only;
// correlations are the Correlator's. It reports an error only for a
// document it could not read (fn is still called for rules that matched
// on what was read).
func (m *Matcher) Match(ev *event.Event, fn func(r *Rule)) error {
	src := m.e.sources[ev.Source]
	if src == nil {
		return nil
	}
	set := &src.otherAction
	switch {
	case len(src.indexed) == 0:
	case ev.Action != "":
		m.key = appendLower(m.key[:0], []byte(ev.Action))
		if s := src.actions[string(m.key)]; s != nil {
			set = s
			break
		}
		for i := range src.prefixes {
			if p := &src.prefixes[i]; bytes.HasPrefix(m.key, p.prefix) {
				set = &p.set
				break
			}
		}
	default:
		// An event whose action the parser could not read is tried on
		// every rule: the index cannot say which apply.
		set = &src.noAction
	}
	if len(set.rules) == 0 {
		return nil
	}
	m.r.reset(ev, src, set.ext)
	for _, c := range set.rules {
		if c.only != nil && !c.only(ev) {
			continue
		}
		if c.m.eval(&m.r) {
			fn(c.rule)
		}
	}
	return m.r.err
}

// Fields returns the values of the fields r names in ev (the first value
// of each), for a detection's record.
func (m *Matcher) Fields(r *Rule, ev *event.Event) map[string]string {
	src := m.e.sources[ev.Source]
	if src == nil || r.detection == nil {
		return nil
	}
	if m.r.e != ev {
		m.r.reset(ev, src, src.noAction.ext)
	}
	out := map[string]string{}
	for _, name := range r.detection.fieldNames() {
		f := src.fields[name]
		if f == nil {
			continue
		}
		if vals := m.r.values(f); len(vals) > 0 {
			out[name] = string(m.r.text(&vals[0]))
		}
	}
	return out
}

// fieldNames returns the names of the fields the detection's searches
// name, sorted.
func (d *detection) fieldNames() []string {
	if d.fields != nil {
		return d.fields
	}
	var out []string
	for _, s := range d.searches {
		for _, alt := range s.alts {
			for _, fc := range alt.fields {
				if !slices.Contains(out, fc.field) {
					out = append(out, fc.field)
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

// LoadPaths parses every rule file (*.yml, *.yaml) under the given files
// and directories. Test files beside rules (*.tests.yml) are not rules.
func LoadPaths(paths ...string) ([]*Rule, error) {
	var (
		rules []*Rule
		errs  []error
	)
	for _, p := range paths {
		err := filepath.WalkDir(p, func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() || !IsRuleFile(path) {
				return nil
			}
			rs, err := ParseFile(path)
			rules = append(rules, rs...)
			if err != nil {
				errs = append(errs, err)
			}
			return nil
		})
		if err != nil {
			errs = append(errs, err)
		}
	}
	return rules, errors.Join(errs...)
}

// IsRuleFile reports whether path names a rule file.
func IsRuleFile(path string) bool {
	base := strings.ToLower(filepath.Base(path))
	if strings.HasSuffix(base, ".tests.yml") || strings.HasSuffix(base, ".tests.yaml") {
		return false
	}
	return strings.HasSuffix(base, ".yml") || strings.HasSuffix(base, ".yaml")
}
