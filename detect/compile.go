package detect

import (
	"bytes"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/vigilsec/vigil/event"
)

// A compiled rule is a detection rule compiled for one source.
type compiled struct {
	rule *Rule
	only func(*event.Event) bool
	m    node
	// slots are the document fields it reads, its correlations' included.
	slots []int
	order int // its place among the source's rules, which sets keep
}

// sourceRules are the rules of one source, compiled, with the document
// paths they name.
type sourceRules struct {
	name  string
	slots int
	// partial: the documents are the cloud's audit records, written by
	// the provider, and read only as far as the rules need. A record
	// with a top-level key twice (which providers do not write) may then
	// show rules the first member only; the documents of other sources
	// (any JSON an application sends, lines parsed from syslog) are read
	// whole, so that no duplicate key hides a value from a rule.
	partial  bool
	byAction map[string][]*compiled // by lower-cased action
	byPrefix map[string][]*compiled // by lower-cased prefix of the action
	indexed  []*compiled            // the rules of byAction and byPrefix, each once
	always   []*compiled            // rules not indexed by action
	rules    int                    // compiled so far

	// What an event is tried on: by its action, for an action no rule
	// names, and for an event without one.
	actions               map[string]*ruleSet
	prefixes              []prefixSet // longest first
	otherAction, noAction ruleSet

	// While compiling:
	pathList []string
	pathFold []bool
	pathSlot []int // path index → slot
	fields   map[string]*fieldRef
}

// A ruleSet is the rules an event is tried on, and the extraction of the
// document fields they read: an event only pays for reading the fields
// of the rules that may match it.
type ruleSet struct {
	rules []*compiled
	ext   *extraction
}

// A prefixSet is the rule set of the actions that begin with prefix and
// have no set of their own.
type prefixSet struct {
	prefix []byte
	set    ruleSet
}

// An extraction reads some of a source's fields from a document.
type extraction struct {
	paths     *event.Paths // nil when no document field is read
	pathSlot  []int        // path index → slot
	slotPaths [][]int      // slot → path indices
	covers    []bool       // by slot: the field is read (normalized fields are never)
}

func newSourceRules(name string) *sourceRules {
	return &sourceRules{name: name, partial: partialSources[name], byAction: map[string][]*compiled{}, byPrefix: map[string][]*compiled{}, fields: map[string]*fieldRef{}}
}

// partialSources are the sources whose documents are read only as far as
// the rules need.
var partialSources = map[string]bool{"aws.cloudtrail": true, "gcp.audit": true, "azure.activity": true, "azure.signin": true}

// reads records that the compiled rules of r in s read field f (for a
// correlation's group-by fields).
func (s *sourceRules) reads(r *Rule, f *fieldRef) {
	for _, list := range [][]*compiled{s.indexed, s.always} {
		for _, c := range list {
			if c.rule == r && f.norm == nil {
				c.slots = append(c.slots, f.slot)
			}
		}
	}
}

// field resolves a field name for the source.
func (s *sourceRules) field(name string) (*fieldRef, error) {
	if f := s.fields[name]; f != nil {
		return f, nil
	}
	f := &fieldRef{name: name, slot: s.slots}
	if n, ok := strings.CutPrefix(name, "vigil."); ok {
		f.norm, f.addr = normFields[n], addrFields[n]
		if f.norm == nil {
			return nil, fmt.Errorf("unknown normalized field %q (vigil.%s)", n, strings.Join(sorted(keys(normFields)), ", vigil."))
		}
	} else {
		f.known = knownFields[s.name][name]
		df := docFieldOf(s.name, name)
		for _, p := range df.paths {
			if p == "" || strings.HasPrefix(p, ".") || strings.HasSuffix(p, ".") || strings.Contains(p, "..") {
				return nil, fmt.Errorf("field %q: empty part in a dotted name", name)
			}
			s.pathList = append(s.pathList, p)
			s.pathFold = append(s.pathFold, df.fold)
			s.pathSlot = append(s.pathSlot, f.slot)
		}
	}
	s.slots++
	s.fields[name] = f
	return f, nil
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// finish compiles the rule sets of the source: for each action the
// rules indexed by it and those that apply to every event, and the
// paths they read. Paths are compiled case-sensitively, except those
// that fold (Azure): a source's paths all fold or none do.
func (s *sourceRules) finish() error {
	fold := slices.Contains(s.pathFold, true)
	exts := map[string]*extraction{} // by slots read, shared
	var first error
	set := func(rules ...[]*compiled) ruleSet {
		var all []*compiled
		covers := make([]bool, s.slots)
		for _, rs := range rules {
			for _, c := range rs {
				if slices.Contains(all, c) {
					continue // indexed by an action and a prefix of it
				}
				all = append(all, c)
				for _, slot := range c.slots {
					covers[slot] = true
				}
			}
		}
		slices.SortFunc(all, func(a, b *compiled) int { return a.order - b.order })
		key := fmt.Sprint(covers)
		if x := exts[key]; x != nil {
			return ruleSet{all, x}
		}
		x := &extraction{covers: covers, slotPaths: make([][]int, s.slots)}
		var paths []string
		for i, p := range s.pathList {
			if slot := s.pathSlot[i]; covers[slot] {
				x.slotPaths[slot] = append(x.slotPaths[slot], len(paths))
				paths = append(paths, p)
				x.pathSlot = append(x.pathSlot, slot)
			}
		}
		if len(paths) > 0 {
			// A path that does not compile leaves the set reading no
			// field, as the error says.
			p, err := event.CompilePaths(paths, fold)
			if err != nil && first == nil {
				first = err
			}
			x.paths = p
		}
		exts[key] = x
		return ruleSet{all, x}
	}
	s.noAction = set(s.indexed, s.always)
	s.otherAction = set(s.always)
	// An action's rules are those indexed by it and by each prefix of it.
	prefixesOf := func(a string) [][]*compiled {
		var out [][]*compiled
		for p, rules := range s.byPrefix {
			if strings.HasPrefix(a, p) {
				out = append(out, rules)
			}
		}
		return out
	}
	s.actions = make(map[string]*ruleSet, len(s.byAction))
	for a, rules := range s.byAction {
		rs := set(append(prefixesOf(a), rules, s.always)...)
		s.actions[a] = &rs
	}
	for p := range s.byPrefix {
		s.prefixes = append(s.prefixes, prefixSet{[]byte(p), set(append(prefixesOf(p), s.always)...)})
	}
	slices.SortFunc(s.prefixes, func(a, b prefixSet) int { return len(b.prefix) - len(a.prefix) })
	return first
}

// compiler compiles one rule for one source.
type compiler struct {
	src  *sourceRules
	det  *detection
	opts *Options
	// cost is what matching an event with the rule costs: its value
	// tests and the instructions of its regexps, each search as many
	// times as the condition names it.
	cost cost
	// searches are the searches compiled, and their cost: the condition
	// may name one several times.
	searches map[string]compiledSearch
	// slots are the document fields the rule reads.
	slots []int
}

type cost struct{ tests, insts int }

// ref resolves a field the rule reads.
func (c *compiler) ref(name string) (*fieldRef, error) {
	f, err := c.src.field(name)
	if err == nil && f.norm == nil && !slices.Contains(c.slots, f.slot) {
		c.slots = append(c.slots, f.slot)
	}
	return f, err
}

type compiledSearch struct {
	n    node
	cost cost
}

// maxRuleTests bounds the value tests a rule compiles to, and
// maxRuleInsts the instructions of its regexps (a value with ? wildcards
// counts its length), which matching runs for each byte of the text: so
// much matching an event with one rule may cost. A search named many
// times by the condition, or covered by many patterns, counts each time.
const (
	maxRuleTests = 1 << 16
	maxRuleInsts = 2 * maxRegexpInsts
)

// count adds k to the rule's cost, and fails past the bounds.
func (c *compiler) count(k cost) error {
	c.cost.tests += max(k.tests, 1)
	c.cost.insts += k.insts
	if c.cost.tests > maxRuleTests {
		return &lineError{line: c.det.condLine, err: fmt.Errorf("condition: the searches it names come to more than %d values to test", maxRuleTests)}
	}
	if c.cost.insts > maxRuleInsts {
		return &lineError{line: c.det.condLine, err: fmt.Errorf("condition: the regular expressions (and values with ? wildcards) of the searches it names come to more than %d instructions", maxRuleInsts)}
	}
	return nil
}

func (c *compiler) cond(x cond) (node, error) {
	switch x := x.(type) {
	case condAnd:
		n := make(andNode, 0, len(x))
		for _, y := range x {
			m, err := c.cond(y)
			if err != nil {
				return nil, err
			}
			n = append(n, m)
		}
		return n, nil
	case condOr:
		n := make(orNode, 0, len(x))
		for _, y := range x {
			m, err := c.cond(y)
			if err != nil {
				return nil, err
			}
			n = append(n, m)
		}
		return n, nil
	case condNot:
		m, err := c.cond(x.x)
		if err != nil {
			return nil, err
		}
		return notNode{m}, nil
	case condIdent:
		return c.search(string(x))
	case condOf:
		var ns []node
		for _, name := range c.det.matching(x.pattern) {
			m, err := c.search(name)
			if err != nil {
				return nil, err
			}
			ns = append(ns, m)
		}
		if x.all {
			return andNode(ns), nil
		}
		return orNode(ns), nil
	}
	return nil, fmt.Errorf("unknown condition %T", x)
}

func (c *compiler) search(name string) (node, error) {
	if s, ok := c.searches[name]; ok {
		return s.n, c.count(s.cost)
	}
	before := c.cost
	n, err := c.compileSearch(name)
	if err != nil {
		return nil, err
	}
	if c.searches == nil {
		c.searches = map[string]compiledSearch{}
	}
	c.searches[name] = compiledSearch{n: n, cost: cost{c.cost.tests - before.tests, c.cost.insts - before.insts}}
	return n, nil
}

func (c *compiler) compileSearch(name string) (node, error) {
	s := c.det.searches[name]
	alts := make(orNode, 0, len(s.alts))
	for _, alt := range s.alts {
		var and andNode
		for i := range alt.fields {
			n, err := c.field(&alt.fields[i])
			if err != nil {
				return nil, err
			}
			and = append(and, n)
		}
		if alt.keyword != nil {
			n, err := c.keyword(alt.keyword)
			if err != nil {
				return nil, err
			}
			and = append(and, n)
		}
		if len(and) == 1 {
			alts = append(alts, and[0])
		} else {
			alts = append(alts, and)
		}
	}
	if len(alts) == 1 {
		return alts[0], nil
	}
	return alts, nil
}

// fieldError is an error in a field condition, at its line.
func fieldError(fc *fieldCond, format string, args ...any) error {
	name := fc.field
	if len(fc.mods) > 0 {
		name += "|" + strings.Join(fc.mods, "|")
	}
	if name == "" {
		name = "keywords"
	}
	return &lineError{line: fc.line, err: fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...))}
}

func (c *compiler) field(fc *fieldCond) (node, error) {
	m, err := parseModifiers(fc.mods)
	if err != nil {
		return nil, fieldError(fc, "%v", err)
	}
	f, err := c.ref(fc.field)
	if err != nil {
		return nil, fieldError(fc, "%v", err)
	}
	if m.all && len(fc.values) < 2 {
		return nil, fieldError(fc, "all needs a list of two or more values")
	}
	if m.exists {
		if len(fc.values) != 1 || fc.values[0].kind != "bool" {
			return nil, fieldError(fc, "exists takes true or false")
		}
		want, _ := strconv.ParseBool(strings.ToLower(fc.values[0].s))
		return &existsNode{f: f, want: want}, c.count(cost{tests: 1})
	}
	n := &fieldNode{f: f, all: m.all, neq: m.neq, missing: m.neq}
	vals, err := c.expand(fc, m)
	if err != nil {
		return nil, err
	}
	if len(vals) == 0 {
		// An expanded placeholder with no values: nothing matches.
		return constNode(m.neq), c.count(cost{tests: 1})
	}
	for _, v := range vals {
		if v.null {
			if len(m.encode) > 0 || m.match != "" || m.re || m.cidr || m.cmp != "" || m.fieldref {
				return nil, fieldError(fc, "null cannot take modifiers")
			}
			n.tests = append(n.tests, nullTest{})
			n.missing = !m.neq
			continue
		}
		t, err := c.test(fc, f, m, v)
		if err != nil {
			return nil, err
		}
		n.tests = append(n.tests, t...)
		if len(n.tests) > maxValues {
			return nil, fieldError(fc, "more than %d values", maxValues)
		}
	}
	k := cost{tests: len(n.tests)}
	for _, t := range n.tests {
		switch t := t.(type) {
		case *regexpTest:
			k.insts += t.insts
		case *patternTest:
			k.insts += globCost(&t.p)
		}
	}
	return n, c.count(k)
}

// expand replaces placeholders (%name%) in the values of a field with the
// expand modifier by the values configured for them.
func (c *compiler) expand(fc *fieldCond, m modifiers) ([]ruleValue, error) {
	if !m.expand {
		return fc.values, nil
	}
	var out []ruleValue
	for _, v := range fc.values {
		name, ok := strings.CutPrefix(v.s, "%")
		name, ok2 := strings.CutSuffix(name, "%")
		if !ok || !ok2 || name == "" || strings.Contains(name, "%") {
			return nil, fieldError(fc, "expand: %q is not a placeholder such as %%admins%%", v.s)
		}
		vals, ok := c.opts.Placeholders[name]
		if !ok {
			return nil, &placeholderError{name: name, line: fc.line}
		}
		for _, s := range vals {
			out = append(out, ruleValue{s: s, kind: "str"})
		}
	}
	return out, nil
}

func (c *compiler) test(fc *fieldCond, f *fieldRef, m modifiers, v ruleValue) ([]valueTest, error) {
	if len(v.s) > maxPatternSize {
		return nil, fieldError(fc, "value longer than %d bytes", maxPatternSize)
	}
	switch {
	case m.re:
		re, err := compileRegexp(v.s, m.reFlags)
		if err != nil {
			return nil, fieldError(fc, "%v", err)
		}
		return []valueTest{re}, nil
	case m.cidr:
		p, err := netip.ParsePrefix(v.s)
		if err != nil {
			return nil, fieldError(fc, "cidr: %v", err)
		}
		return []valueTest{&cidrTest{prefix: p.Masked()}}, nil
	case m.cmp != "" || m.timePart != "":
		x, err := strconv.ParseFloat(v.s, 64)
		if err != nil || v.kind == "bool" {
			return nil, fieldError(fc, "%q is not a number", v.s)
		}
		return []valueTest{&numberTest{op: m.cmp, n: x, part: m.timePart}}, nil
	case m.fieldref:
		other, err := c.ref(v.s)
		if err != nil {
			return nil, fieldError(fc, "fieldref: %v", err)
		}
		return []valueTest{&fieldrefTest{other: other, cased: m.cased}}, nil
	}
	var tests []valueTest
	if (v.kind == "int" || v.kind == "float") && m.match == "" && len(m.encode) == 0 {
		// 4624 matches "4624", 4624 and 4624.0 alike.
		if x, err := strconv.ParseFloat(v.s, 64); err == nil {
			tests = append(tests, &numberTest{n: x})
		}
	}
	if len(m.encode) > 0 {
		encoded, err := encodeValues([]string{v.s}, m.encode)
		if err != nil {
			return nil, fieldError(fc, "%v", err)
		}
		for _, e := range encoded {
			p := newLiteralPattern([]byte(e), m.match, m.cased || binaryEncoding(m.encode), v.s)
			tests = append(tests, &patternTest{p: p})
		}
		return tests, nil
	}
	p := newPattern(unescapeValue(v.s), m.match, m.cased, v.s)
	if err := checkGlob(&p); err != nil {
		return nil, fieldError(fc, "%v", err)
	}
	return append(tests, &patternTest{p: p}), nil
}

// binaryEncoding reports whether the encodings leave bytes that are not
// text (UTF-16, unless base64 encodes it again), which lower-casing would
// corrupt: such values are compared byte for byte.
func binaryEncoding(enc []string) bool {
	binary := false
	for _, e := range enc {
		switch e {
		case "utf16le", "utf16be", "utf16":
			binary = true
		case "base64", "base64offset":
			binary = false
		}
	}
	return binary
}

// checkGlob refuses a value with ? wildcards longer than a regular
// expression may be: matching it costs as much, its length for each
// byte of the text.
func checkGlob(p *pattern) error {
	if globCost(p) > maxRegexpInsts {
		return fmt.Errorf("value with ? wildcards longer than %d bytes", maxRegexpInsts)
	}
	return nil
}

// globCost is what matching p costs for each byte of the text, counted
// as regexp instructions are: its length if it has ? wildcards.
func globCost(p *pattern) int {
	if p.shape != shapeGlob || !p.globQ {
		return 0
	}
	return len(p.text)
}

func (c *compiler) keyword(fc *fieldCond) (node, error) {
	m, err := parseModifiers(fc.mods)
	if err != nil {
		return nil, fieldError(fc, "%v", err)
	}
	if m.re || m.cidr || m.cmp != "" || m.exists || m.fieldref || m.neq || m.timePart != "" {
		return nil, fieldError(fc, "keywords take only string modifiers (all, cased, contains, startswith, endswith, encodings)")
	}
	if m.all && len(fc.values) < 2 {
		return nil, fieldError(fc, "all needs a list of two or more values")
	}
	match := m.match
	if match == "" {
		match = "contains" // a keyword is found anywhere in the log
	}
	n := &keywordNode{all: m.all}
	vals, err := c.expand(fc, m)
	if err != nil {
		return nil, err
	}
	for _, v := range vals {
		if v.null {
			return nil, fieldError(fc, "a keyword cannot be null")
		}
		if len(v.s) > maxPatternSize {
			return nil, fieldError(fc, "value longer than %d bytes", maxPatternSize)
		}
		strs := []string{v.s}
		if len(m.encode) > 0 {
			if strs, err = encodeValues(strs, m.encode); err != nil {
				return nil, fieldError(fc, "%v", err)
			}
			for _, s := range strs {
				n.pats = append(n.pats, newLiteralPattern([]byte(s), match, m.cased || binaryEncoding(m.encode), v.s))
			}
			if len(n.pats) > maxValues {
				return nil, fieldError(fc, "more than %d values", maxValues)
			}
			continue
		}
		p := newPattern(unescapeValue(v.s), match, m.cased, v.s)
		if err := checkGlob(&p); err != nil {
			return nil, fieldError(fc, "%v", err)
		}
		n.pats = append(n.pats, p)
		if len(n.pats) > maxValues {
			return nil, fieldError(fc, "more than %d values", maxValues)
		}
	}
	if len(n.pats) == 0 {
		return constNode(false), c.count(cost{tests: 1})
	}
	k := cost{tests: len(n.pats)}
	for i := range n.pats {
		k.insts += globCost(&n.pats[i])
	}
	return n, c.count(k)
}

// An actionKey is a lower-cased action, or a prefix of actions.
type actionKey struct {
	s      string
	prefix bool
}

// requiredActions returns the lower-cased values (or prefixes) of the
// source's action field one of which every event the condition matches
// has, or ok false when the condition does not require any (the rule is
// then tried on every event of its source). A superset is fine: it only
// picks which rules are tried.
func requiredActions(x cond, d *detection, actionFields []string) (set map[actionKey]bool, ok bool) {
	switch x := x.(type) {
	case condAnd:
		for _, y := range x {
			if s, ok := requiredActions(y, d, actionFields); ok {
				return s, true
			}
		}
	case condOr:
		return unionActions(x, d, actionFields)
	case condIdent:
		return searchActions(d.searches[string(x)], actionFields)
	case condOf:
		var xs []cond
		for _, name := range d.matching(x.pattern) {
			xs = append(xs, condIdent(name))
		}
		if x.all {
			return requiredActions(condAnd(xs), d, actionFields)
		}
		return unionActions(xs, d, actionFields)
	}
	return nil, false
}

func unionActions(xs []cond, d *detection, actionFields []string) (map[actionKey]bool, bool) {
	out := map[actionKey]bool{}
	for _, y := range xs {
		s, ok := requiredActions(y, d, actionFields)
		if !ok {
			return nil, false
		}
		for k := range s {
			out[k] = true
		}
	}
	return out, true
}

// searchActions: a search requires actions when each of its alternatives
// holds an action field with plain values, or prefixes: a value ending
// in its only wildcard, *, or a startswith without wildcards (API
// versions make Lambda's UpdateFunctionConfiguration20150331v2).
func searchActions(s *search, actionFields []string) (map[actionKey]bool, bool) {
	out := map[actionKey]bool{}
	for _, alt := range s.alts {
		found := false
		for _, fc := range alt.fields {
			if !contains(actionFields, fc.field) {
				continue
			}
			startswith := false
			indexable := true
			for _, m := range fc.mods {
				switch m {
				case "startswith":
					startswith = true
				case "cased": // the index is a superset: case-insensitive
				default:
					indexable = false
				}
			}
			var keys []actionKey
			for _, v := range fc.values {
				if v.null || !indexable {
					indexable = false
					break
				}
				b := unescapeValue(v.s)
				k := actionKey{prefix: startswith}
				if i := bytes.IndexAny(b, string([]byte{wildStar, wildQuest})); i >= 0 {
					if i != len(b)-1 || b[i] != wildStar {
						indexable = false
						break
					}
					b, k.prefix = b[:i], true
				}
				if k.prefix && len(b) == 0 {
					indexable = false // every action
					break
				}
				k.s = string(appendLower(nil, b))
				keys = append(keys, k)
			}
			if !indexable {
				continue
			}
			for _, k := range keys {
				out[k] = true
			}
			found = true
			break
		}
		if !found {
			return nil, false
		}
	}
	return out, true
}

// A placeholderError is a placeholder without values: the rule is
// loaded but disabled until the config gives it values, since matching
// with none would make a rule such as "sign-in from a country not in
// %Legitimate_Countries%" fire on every event.
type placeholderError struct {
	name string
	line int
}

func (e *placeholderError) Error() string {
	return fmt.Sprintf("placeholder %%%s%% has no values: set detect.placeholders.%s in the config", e.name, e.name)
}
