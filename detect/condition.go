package detect

import (
	"fmt"
	"path"
	"strconv"
	"strings"
)

// A cond is a parsed condition: the search identifiers of a rule's
// detection joined by and, or, not and "1 of"/"all of" quantifiers.
type cond interface{ String() string }

type (
	condAnd   []cond
	condOr    []cond
	condNot   struct{ x cond }
	condIdent string
	// condOf is "1 of pattern" or "all of pattern"; pattern "them" means
	// every search identifier.
	condOf struct {
		all     bool
		pattern string
	}
)

func (c condAnd) String() string   { return joinConds([]cond(c), " and ", precAnd) }
func (c condOr) String() string    { return joinConds([]cond(c), " or ", precOr) }
func (c condNot) String() string   { return "not " + operand(c.x, precNot) }
func (c condIdent) String() string { return string(c) }
func (c condOf) String() string {
	if c.all {
		return "all of " + c.pattern
	}
	return "1 of " + c.pattern
}

// The precedence of the operators: not binds tightest, then and.
const (
	precOr = iota + 1
	precAnd
	precNot
)

func joinConds(cs []cond, sep string, prec int) string {
	s := make([]string, len(cs))
	for i, c := range cs {
		s[i] = operand(c, prec)
	}
	return strings.Join(s, sep)
}

// operand prints c as an operand of an operator of precedence prec: in
// parentheses when it is an and or an or that does not bind tighter (the
// parser flattens "a or b or c", so a nested or was parenthesized). It
// adds no parentheses the condition parsed did not have, so that what
// parses prints back to a condition within maxConditionDepth.
func operand(c cond, prec int) string {
	switch c.(type) {
	case condOr:
		return "(" + c.String() + ")"
	case condAnd:
		if prec >= precAnd {
			return "(" + c.String() + ")"
		}
	}
	return c.String()
}

// An aggregation is the pipe part of a condition in the Sigma syntax that
// came before correlation rules: "selection | count(field) by group > 10".
// It is run as the correlation rule it is equivalent to.
type aggregation struct {
	fn      string // count
	field   string // counted distinct, or "" for every event
	groupBy []string
	op      string // <, <=, >, >=, =
	value   float64
}

// A conditionError is a syntax error at a column (1-based) of a
// condition.
type conditionError struct {
	col int
	msg string
}

func (e *conditionError) Error() string {
	return fmt.Sprintf("condition, column %d: %s", e.col, e.msg)
}

type condToken struct {
	text string
	col  int
}

func lexCondition(s string) ([]condToken, error) {
	var toks []condToken
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(' || c == ')':
			toks = append(toks, condToken{s[i : i+1], i + 1})
			i++
		case isIdentByte(c):
			j := i
			for j < len(s) && isIdentByte(s[j]) {
				j++
			}
			toks = append(toks, condToken{s[i:j], i + 1})
			i = j
		default:
			return nil, &conditionError{i + 1, fmt.Sprintf("unexpected %q", c)}
		}
	}
	return toks, nil
}

// isIdentByte reports whether c may be part of a search identifier or an
// identifier pattern (with * wildcards). Identifiers may hold any
// letter, digit, underscore, dot or dash; non-ASCII bytes are let through
// so that identifiers in other scripts work.
func isIdentByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '_' || c == '*' || c == '.' || c == '-' || c >= 0x80
}

// maxConditionDepth bounds the nesting of parentheses and not in a
// condition, which the parser, the compiler and matching each follow
// recursively: conditions nest a few levels.
const maxConditionDepth = 64

type condParser struct {
	toks  []condToken
	i     int
	end   int // the column just past the condition, for errors at its end
	depth int // parentheses and nots open
}

// nest enters a parenthesis or a not at column col.
func (p *condParser) nest(col int) error {
	if p.depth++; p.depth > maxConditionDepth {
		return &conditionError{col, fmt.Sprintf("nested more than %d levels deep", maxConditionDepth)}
	}
	return nil
}

// parseCondition parses a condition, and the aggregation after a pipe if
// there is one.
func parseCondition(s string) (cond, *aggregation, error) {
	expr, agg, hasPipe := strings.Cut(s, "|")
	toks, err := lexCondition(expr)
	if err != nil {
		return nil, nil, err
	}
	p := &condParser{toks: toks, end: len(expr) + 1}
	c, err := p.or()
	if err != nil {
		return nil, nil, err
	}
	if p.i < len(p.toks) {
		t := p.toks[p.i]
		return nil, nil, &conditionError{t.col, fmt.Sprintf("unexpected %q", t.text)}
	}
	if !hasPipe {
		return c, nil, nil
	}
	a, err := parseAggregation(agg, len(expr)+2)
	if err != nil {
		return nil, nil, err
	}
	return c, a, nil
}

func (p *condParser) peek() string {
	if p.i < len(p.toks) {
		return strings.ToLower(p.toks[p.i].text)
	}
	return ""
}

func (p *condParser) col() int {
	if p.i < len(p.toks) {
		return p.toks[p.i].col
	}
	return p.end
}

func (p *condParser) or() (cond, error) {
	var xs condOr
	for {
		x, err := p.and()
		if err != nil {
			return nil, err
		}
		xs = append(xs, x)
		if p.peek() != "or" {
			break
		}
		p.i++
	}
	if len(xs) == 1 {
		return xs[0], nil
	}
	return xs, nil
}

func (p *condParser) and() (cond, error) {
	var xs condAnd
	for {
		x, err := p.not()
		if err != nil {
			return nil, err
		}
		xs = append(xs, x)
		if p.peek() != "and" {
			break
		}
		p.i++
	}
	if len(xs) == 1 {
		return xs[0], nil
	}
	return xs, nil
}

func (p *condParser) not() (cond, error) {
	if p.peek() == "not" {
		if err := p.nest(p.col()); err != nil {
			return nil, err
		}
		p.i++
		x, err := p.not()
		if err != nil {
			return nil, err
		}
		p.depth--
		return condNot{x}, nil
	}
	return p.primary()
}

func (p *condParser) primary() (cond, error) {
	if p.i >= len(p.toks) {
		return nil, &conditionError{p.end, "expected a search identifier, ( or not, found the end"}
	}
	t := p.toks[p.i]
	switch lower := strings.ToLower(t.text); {
	case t.text == "(":
		if err := p.nest(t.col); err != nil {
			return nil, err
		}
		p.i++
		x, err := p.or()
		if err != nil {
			return nil, err
		}
		if p.peek() != ")" {
			return nil, &conditionError{p.col(), fmt.Sprintf("expected ) to close the ( at column %d", t.col)}
		}
		p.i++
		p.depth--
		return x, nil
	case t.text == ")":
		return nil, &conditionError{t.col, "unexpected )"}
	case lower == "and" || lower == "or" || lower == "of" || lower == "them":
		return nil, &conditionError{t.col, fmt.Sprintf("expected a search identifier, found %q", t.text)}
	case p.i+1 < len(p.toks) && strings.EqualFold(p.toks[p.i+1].text, "of"):
		var all bool
		switch lower {
		case "1", "any":
		case "all":
			all = true
		default:
			return nil, &conditionError{t.col, fmt.Sprintf("%q of: only 1 of, any of and all of are defined", t.text)}
		}
		p.i += 2
		if p.i >= len(p.toks) || p.toks[p.i].text == "(" || p.toks[p.i].text == ")" {
			return nil, &conditionError{p.col(), "expected an identifier pattern or them after of"}
		}
		pat := p.toks[p.i].text
		if strings.EqualFold(pat, "them") {
			pat = "them"
		} else if _, err := path.Match(pat, ""); err != nil {
			return nil, &conditionError{p.col(), fmt.Sprintf("bad identifier pattern %q", pat)}
		}
		p.i++
		return condOf{all: all, pattern: pat}, nil
	default:
		p.i++
		return condIdent(t.text), nil
	}
}

// parseAggregation parses "count(field) by a, b > 10", starting at column
// col of the condition.
func parseAggregation(s string, col int) (*aggregation, error) {
	errAt := func(off int, format string, args ...any) error {
		return &conditionError{col + off, fmt.Sprintf(format, args...)}
	}
	trimmed := strings.TrimLeft(s, " \t")
	off := len(s) - len(trimmed)
	s = trimmed
	if f := strings.Fields(s); len(f) > 0 && strings.EqualFold(f[0], "near") {
		return nil, errAt(off, "near (Sigma 1's temporal aggregation) is not supported: write a temporal correlation rule instead")
	}
	open := strings.IndexByte(s, '(')
	if open < 0 {
		return nil, errAt(off, "expected an aggregation such as count() > 10 after |")
	}
	fn := strings.ToLower(strings.TrimSpace(s[:open]))
	switch fn {
	case "count":
	case "min", "max", "avg", "sum":
		return nil, errAt(off, "the %s() aggregation is not supported: write a correlation rule (value_sum, value_avg) instead", fn)
	case "near":
		return nil, errAt(off, "near is not supported: write a temporal correlation rule instead")
	default:
		return nil, errAt(off, "unknown aggregation %q", fn)
	}
	closeAt := strings.IndexByte(s, ')')
	if closeAt < open {
		return nil, errAt(off+open, "expected ) after %s(", fn)
	}
	a := &aggregation{fn: fn, field: strings.TrimSpace(s[open+1 : closeAt])}
	rest := s[closeAt+1:]
	restOff := off + closeAt + 1
	opAt := strings.IndexAny(rest, "<>=!")
	if opAt < 0 {
		return nil, errAt(restOff, "expected a comparison such as > 10 after the aggregation")
	}
	if by := strings.TrimSpace(rest[:opAt]); by != "" {
		f := strings.Fields(by)
		if !strings.EqualFold(f[0], "by") || len(f) < 2 {
			return nil, errAt(restOff, "expected by or a comparison, found %q", by)
		}
		for _, g := range strings.Split(strings.Join(f[1:], " "), ",") {
			if g = strings.TrimSpace(g); g != "" {
				a.groupBy = append(a.groupBy, g)
			}
		}
	}
	cmp := rest[opAt:]
	for _, op := range []string{"<=", ">=", "==", "<", ">", "="} {
		if strings.HasPrefix(cmp, op) {
			a.op = strings.TrimSuffix(op, "=")
			if op == "<=" || op == ">=" {
				a.op = op
			}
			if a.op == "" || op == "==" {
				a.op = "="
			}
			n, err := strconv.ParseFloat(strings.TrimSpace(cmp[len(op):]), 64)
			if err != nil {
				return nil, errAt(restOff+opAt+len(op), "expected a number after %s", op)
			}
			a.value = n
			return a, nil
		}
	}
	return nil, errAt(restOff+opAt, "unknown comparison %q", cmp)
}
