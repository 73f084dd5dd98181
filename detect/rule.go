package detect

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// A Rule is a Sigma detection rule as loaded from its file.
type Rule struct {
	ID          string
	Name        string // the name correlation rules may refer to it by
	Title       string
	Status      string
	Description string
	Level       string // informational, low, medium, high, critical
	Author      string
	Tags        []string // attack.t1078, attack.initial-access, …
	References  []string
	Logsource   Logsource
	// Fields are the fields the rule says are worth showing with a match.
	Fields []string
	// File and Line say where the rule is.
	File string
	Line int

	detection *detection
	// corr is set for a correlation rule, which has no detection of its
	// own.
	corr *Correlation
}

// Logsource is a rule's logsource: which logs it is for.
type Logsource struct {
	Category string
	Product  string
	Service  string
}

func (l Logsource) String() string {
	var parts []string
	for _, kv := range [][2]string{{"product", l.Product}, {"service", l.Service}, {"category", l.Category}} {
		if kv[1] != "" {
			parts = append(parts, kv[0]+": "+kv[1])
		}
	}
	return strings.Join(parts, ", ")
}

// IsCorrelation reports whether r is a correlation rule.
func (r *Rule) IsCorrelation() bool { return r.corr != nil }

// Correlation returns the correlation of a correlation rule, or nil.
func (r *Rule) Correlation() *Correlation { return r.corr }

// A detection is a rule's detection section: named searches and the
// condition over them.
type detection struct {
	searches  map[string]*search
	names     []string // search identifiers in the order written
	cond      cond
	agg       *aggregation
	timeframe time.Duration
	condLine  int
	fields    []string // the fields its searches name, sorted
}

// A search is one search identifier's value: alternatives (a list of
// maps, or of keywords), each a conjunction of field conditions.
type search struct {
	line int
	alts []searchAlt
}

// A searchAlt is a map of field conditions, all of which must hold, or a
// keyword.
type searchAlt struct {
	fields  []fieldCond
	keyword *fieldCond // a field-less value list
}

// A fieldCond is "field|modifiers: values" as written.
type fieldCond struct {
	field  string // "" for keywords
	mods   []string
	values []ruleValue
	line   int
}

// A ruleValue is one value of a field condition.
type ruleValue struct {
	s    string
	null bool
	kind string // "str", "int", "float", "bool", "null"
}

// An Error is a rule that cannot be loaded: its file, line and why.
type Error struct {
	File string
	Line int
	Rule string // the rule's id or title, when known
	Err  error
}

func (e *Error) Error() string {
	where := e.File
	if e.Line > 0 {
		where = fmt.Sprintf("%s:%d", e.File, e.Line)
	}
	if e.Rule != "" {
		return fmt.Sprintf("%s: rule %s: %v", where, e.Rule, e.Err)
	}
	return fmt.Sprintf("%s: %v", where, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// maxRuleFile bounds a rule file: rules are a few kilobytes.
const maxRuleFile = 4 << 20

// ParseFile reads the rules of a Sigma YAML file: one or several
// documents, detection and correlation rules alike. It returns the rules
// it could read and an error (errors.Join of *Error) for each it could
// not.
func ParseFile(path string) ([]*Rule, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxRuleFile+1))
	if err != nil {
		return nil, &Error{File: path, Err: err}
	}
	if len(data) > maxRuleFile {
		return nil, &Error{File: path, Err: fmt.Errorf("larger than %d bytes", maxRuleFile)}
	}
	return Parse(path, data)
}

// Parse reads the rules in data, which came from file (for messages).
func Parse(file string, data []byte) ([]*Rule, error) {
	if len(data) > maxRuleFile {
		return nil, &Error{File: file, Err: fmt.Errorf("larger than %d bytes", maxRuleFile)}
	}
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	var (
		rules []*Rule
		errs  []error
	)
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			errs = append(errs, &Error{File: file, Line: yamlErrorLine(err), Err: fmt.Errorf("YAML: %w", err)})
			break // the decoder cannot go on past a syntax error
		}
		if len(doc.Content) == 0 || isEmptyDocument(doc.Content[0]) {
			continue // nothing, or nothing but a --- (a separator at the end, or two in a row)
		}
		r, err := parseRule(file, doc.Content[0])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if r != nil {
			rules = append(rules, r)
		}
	}
	return rules, errors.Join(errs...)
}

// isEmptyDocument reports whether n is the content of a document that
// holds nothing: an implicit null, which a "---" alone starts.
func isEmptyDocument(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" && n.Value == "" && n.Style == 0
}

func yamlErrorLine(err error) int {
	var line int
	if _, scanErr := fmt.Sscanf(strings.TrimPrefix(err.Error(), "yaml: "), "line %d:", &line); scanErr == nil {
		return line
	}
	return 0
}

// parseRule reads one YAML document. A document that is not a rule (no
// detection, no correlation) is an error: a rule folder holds rules.
func parseRule(file string, n *yaml.Node) (*Rule, error) {
	fail := func(line int, r *Rule, format string, args ...any) error {
		e := &Error{File: file, Line: line, Err: fmt.Errorf(format, args...)}
		if r != nil {
			e.Rule = r.ref()
		}
		return e
	}
	if n.Kind != yaml.MappingNode {
		return nil, fail(n.Line, nil, "a rule is a YAML mapping, found %s", kindName(n))
	}
	r := &Rule{File: file, Line: n.Line}
	var detNode, corrNode, filterNode *yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		var err error
		switch k.Value {
		case "id":
			r.ID, err = scalar(v)
		case "name":
			r.Name, err = scalar(v)
		case "title":
			r.Title, err = scalar(v)
		case "status":
			r.Status, err = scalar(v)
		case "description":
			r.Description, err = scalar(v)
		case "level":
			r.Level, err = scalar(v)
			r.Level = strings.ToLower(r.Level)
		case "author":
			r.Author, err = scalar(v)
		case "tags":
			r.Tags, err = scalars(v)
		case "references":
			r.References, err = scalars(v)
		case "fields":
			r.Fields, err = scalars(v)
		case "logsource":
			r.Logsource, err = parseLogsource(v)
		case "detection":
			detNode = v
		case "correlation":
			corrNode = v
		case "filter":
			filterNode = v
		case "regression_tests_info", "rule_metadata":
			// SigmaHQ's regression test description, kept beside rules.
			return nil, nil
		case "action":
			// Sigma 1's rule collections (action: global / repeat) were
			// dropped from the specification.
			return nil, fail(k.Line, r, "action: %s is Sigma 1's rule collection syntax, which the specification dropped: write each rule as a document of its own", v.Value)
		}
		if err != nil {
			return nil, fail(v.Line, r, "%s: %v", k.Value, err)
		}
	}
	if r.Title == "" && corrNode == nil {
		// Correlation rules without a title are the specification's own
		// examples; a detection rule must say what it detects.
		return nil, fail(n.Line, r, "no title")
	}
	switch r.Level {
	case "", "informational", "low", "medium", "high", "critical":
	default:
		return nil, fail(n.Line, r, "level %q is none of informational, low, medium, high, critical", r.Level)
	}
	switch {
	case filterNode != nil:
		return nil, fail(filterNode.Line, r, "Sigma filters (meta filters) are not supported; add the exclusion to the rule's condition")
	case corrNode != nil && detNode != nil:
		return nil, fail(corrNode.Line, r, "a rule has either detection or correlation, not both")
	case corrNode != nil:
		c, err := parseCorrelation(corrNode)
		if err != nil {
			return nil, asRuleError(err, file, r)
		}
		r.corr = c
	case detNode != nil:
		d, err := parseDetection(detNode)
		if err != nil {
			return nil, asRuleError(err, file, r)
		}
		r.detection = d
	default:
		return nil, fail(n.Line, r, "no detection and no correlation: not a Sigma rule")
	}
	return r, nil
}

// ref names a rule in messages: its id, else its title.
func (r *Rule) ref() string {
	if r.ID != "" {
		return r.ID
	}
	return fmt.Sprintf("%q", r.Title)
}

// lineError is an error at a line of the file being parsed.
type lineError struct {
	line int
	err  error
}

func (e *lineError) Error() string { return e.err.Error() }

func errAt(n *yaml.Node, format string, args ...any) error {
	return &lineError{line: n.Line, err: fmt.Errorf(format, args...)}
}

func asRuleError(err error, file string, r *Rule) error {
	e := &Error{File: file, Line: r.Line, Rule: r.ref(), Err: err}
	var le *lineError
	if errors.As(err, &le) {
		e.Line, e.Err = le.line, le.err
	}
	return e
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	case yaml.AliasNode:
		return "an alias"
	}
	return "nothing"
}

func scalar(n *yaml.Node) (string, error) {
	if n.Kind != yaml.ScalarNode {
		return "", fmt.Errorf("want a single value, found %s", kindName(n))
	}
	return n.Value, nil
}

func scalars(n *yaml.Node) ([]string, error) {
	if n.Kind == yaml.ScalarNode {
		return []string{n.Value}, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("want a list, found %s", kindName(n))
	}
	out := make([]string, 0, len(n.Content))
	for _, c := range n.Content {
		s, err := scalar(c)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func parseLogsource(n *yaml.Node) (Logsource, error) {
	var l Logsource
	if n.Kind != yaml.MappingNode {
		return l, fmt.Errorf("want a mapping, found %s", kindName(n))
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		s, err := scalar(v)
		if err != nil {
			return l, fmt.Errorf("%s: %v", k.Value, err)
		}
		switch k.Value {
		case "category":
			l.Category = strings.ToLower(s)
		case "product":
			l.Product = strings.ToLower(s)
		case "service":
			l.Service = strings.ToLower(s)
		}
	}
	return l, nil
}

func parseDetection(n *yaml.Node) (*detection, error) {
	if n.Kind != yaml.MappingNode {
		return nil, errAt(n, "detection: want a mapping, found %s", kindName(n))
	}
	d := &detection{searches: map[string]*search{}}
	var conds []string
	var condNode *yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch k.Value {
		case "condition":
			condNode = v
			var err error
			if conds, err = scalars(v); err != nil {
				return nil, errAt(v, "condition: %v", err)
			}
		case "timeframe":
			tf, err := parseDuration(v.Value)
			if err != nil {
				return nil, errAt(v, "timeframe: %v", err)
			}
			d.timeframe = tf
		default:
			if _, dup := d.searches[k.Value]; dup {
				return nil, errAt(k, "search identifier %q defined twice", k.Value)
			}
			s, err := parseSearch(v)
			if err != nil {
				return nil, err
			}
			s.line = k.Line
			d.searches[k.Value] = s
			d.names = append(d.names, k.Value)
		}
	}
	if condNode == nil {
		return nil, errAt(n, "detection has no condition")
	}
	if len(d.searches) == 0 {
		return nil, errAt(n, "detection has no search identifiers")
	}
	if len(d.searches) > maxSearches {
		return nil, errAt(n, "more than %d search identifiers", maxSearches)
	}
	d.condLine = condNode.Line
	// The fields a detection names are listed with each of its matches:
	// once here, rather than at each match.
	d.fields = d.fieldNames()
	var ors condOr
	for _, c := range conds {
		x, agg, err := parseCondition(c)
		if err != nil {
			return nil, errAt(condNode, "%v (in %q)", err, c)
		}
		if agg != nil {
			if len(conds) > 1 {
				return nil, errAt(condNode, "an aggregation (| count() …) in a list of conditions is not supported")
			}
			d.agg = agg
		}
		ors = append(ors, x)
	}
	d.cond = ors
	if len(ors) == 1 {
		d.cond = ors[0]
	}
	if n := countTerms(d.cond); n > maxConditionTerms {
		return nil, errAt(condNode, "condition: more than %d search identifiers and patterns (%d)", maxConditionTerms, n)
	}
	if err := checkIdents(d.cond, d); err != nil {
		return nil, errAt(condNode, "condition: %v", err)
	}
	return d, nil
}

// Bounds on a detection, so that checking and compiling its condition,
// which resolves each identifier and pattern against the search
// identifiers, stays cheap: rules have a few searches and a condition of
// a few terms.
const (
	maxSearches       = 1000
	maxConditionTerms = 1000
)

// countTerms returns the number of identifiers and patterns in c.
func countTerms(c cond) int {
	switch c := c.(type) {
	case condAnd:
		n := 0
		for _, x := range c {
			n += countTerms(x)
		}
		return n
	case condOr:
		n := 0
		for _, x := range c {
			n += countTerms(x)
		}
		return n
	case condNot:
		return countTerms(c.x)
	}
	return 1
}

// checkIdents checks that the condition's identifiers and patterns name
// search identifiers.
func checkIdents(c cond, d *detection) error {
	switch c := c.(type) {
	case condAnd:
		for _, x := range c {
			if err := checkIdents(x, d); err != nil {
				return err
			}
		}
	case condOr:
		for _, x := range c {
			if err := checkIdents(x, d); err != nil {
				return err
			}
		}
	case condNot:
		return checkIdents(c.x, d)
	case condIdent:
		if d.searches[string(c)] == nil {
			return fmt.Errorf("unknown search identifier %q (defined: %s)", string(c), strings.Join(sorted(d.names), ", "))
		}
	case condOf:
		if len(d.matching(c.pattern)) == 0 {
			return fmt.Errorf("%q matches no search identifier", c.pattern)
		}
	}
	return nil
}

// matching returns the search identifiers a "1 of"/"all of" pattern
// covers. "them" is every identifier except those starting with an
// underscore, as the specification says.
func (d *detection) matching(pattern string) []string {
	var out []string
	for _, name := range d.names {
		if pattern == "them" {
			if !strings.HasPrefix(name, "_") {
				out = append(out, name)
			}
		} else if ok, _ := filepath.Match(pattern, name); ok {
			out = append(out, name)
		}
	}
	return out
}

func sorted(s []string) []string {
	s = append([]string(nil), s...)
	sort.Strings(s)
	return s
}

func parseSearch(n *yaml.Node) (*search, error) {
	s := &search{}
	switch n.Kind {
	case yaml.MappingNode:
		alt, err := parseFieldMap(n)
		if err != nil {
			return nil, err
		}
		s.alts = append(s.alts, alt)
	case yaml.SequenceNode:
		var keywords []ruleValue
		for _, c := range n.Content {
			switch c.Kind {
			case yaml.MappingNode:
				alt, err := parseFieldMap(c)
				if err != nil {
					return nil, err
				}
				s.alts = append(s.alts, alt)
			case yaml.ScalarNode:
				keywords = append(keywords, scalarValue(c))
			default:
				return nil, errAt(c, "a search's list holds field maps or keywords, found %s", kindName(c))
			}
		}
		if len(keywords) > 0 {
			s.alts = append(s.alts, searchAlt{keyword: &fieldCond{values: keywords, line: n.Line}})
		}
		if len(s.alts) == 0 {
			return nil, errAt(n, "empty search")
		}
	case yaml.ScalarNode:
		s.alts = append(s.alts, searchAlt{keyword: &fieldCond{values: []ruleValue{scalarValue(n)}, line: n.Line}})
	default:
		return nil, errAt(n, "a search is a map of fields, or a list, found %s", kindName(n))
	}
	return s, nil
}

func parseFieldMap(n *yaml.Node) (searchAlt, error) {
	var alt searchAlt
	if len(n.Content) == 0 {
		return alt, errAt(n, "empty field map")
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		parts := strings.Split(k.Value, "|")
		fc := fieldCond{field: parts[0], mods: parts[1:], line: k.Line}
		switch v.Kind {
		case yaml.ScalarNode:
			fc.values = []ruleValue{scalarValue(v)}
		case yaml.SequenceNode:
			if len(v.Content) == 0 {
				return alt, errAt(v, "%s: empty list of values", k.Value)
			}
			for _, c := range v.Content {
				if c.Kind != yaml.ScalarNode {
					return alt, errAt(c, "%s: a value is a string, number, boolean or null, found %s", k.Value, kindName(c))
				}
				fc.values = append(fc.values, scalarValue(c))
			}
		default:
			return alt, errAt(v, "%s: a value is a string, number, boolean or null, found %s", k.Value, kindName(v))
		}
		if fc.field == "" {
			// "|all: [...]" and the like: keywords with modifiers.
			if alt.keyword != nil {
				return alt, errAt(k, "two keyword lists in one map")
			}
			kw := fc
			alt.keyword = &kw
			continue
		}
		alt.fields = append(alt.fields, fc)
	}
	return alt, nil
}

func scalarValue(n *yaml.Node) ruleValue {
	v := ruleValue{s: n.Value, kind: "str"}
	switch n.ShortTag() {
	case "!!null":
		v.null, v.kind, v.s = true, "null", ""
	case "!!int":
		v.kind = "int"
	case "!!float":
		v.kind = "float"
	case "!!bool":
		v.kind = "bool"
	}
	return v
}

// parseDuration reads a Sigma timespan: a number and s, m, h, d, w, M or
// y.
func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if len(s) < 2 {
		return 0, fmt.Errorf("%q is not a timespan such as 10m, 1h or 7d", s)
	}
	var n int64
	if _, err := fmt.Sscanf(s[:len(s)-1], "%d", &n); err != nil || n <= 0 || fmt.Sprint(n) != s[:len(s)-1] {
		return 0, fmt.Errorf("%q is not a timespan such as 10m, 1h or 7d", s)
	}
	unit := map[byte]time.Duration{
		's': time.Second, 'm': time.Minute, 'h': time.Hour, 'd': 24 * time.Hour,
		'w': 7 * 24 * time.Hour, 'M': 30 * 24 * time.Hour, 'y': 365 * 24 * time.Hour,
	}[s[len(s)-1]]
	if unit == 0 {
		return 0, fmt.Errorf("%q: unknown unit %q (s, m, h, d, w, M, y)", s, s[len(s)-1:])
	}
	if n > int64(10*365*24*time.Hour/unit) {
		return 0, fmt.Errorf("%q is longer than ten years", s)
	}
	return time.Duration(n) * unit, nil
}
