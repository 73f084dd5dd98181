package query

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Parse parses a query:
//
//	eventName:StopLogging
//	src_ip:203.0.113.0/24 AND NOT outcome:success
//	userIdentity.type:Root | stats count() by action
//
// It checks the syntax and every literal value against the type of its
// field (numbers, times, IP addresses, CIDR prefixes); errors are *Error.
// See docs/query.md for the language.
func Parse(s string) (*Query, error) {
	for i, r := range s {
		if r == utf8.RuneError {
			if _, n := utf8.DecodeRuneInString(s[i:]); n == 1 {
				return nil, errorf(s, i, "invalid UTF-8")
			}
		}
	}
	p := &parser{lex: lexer{src: s}}
	return p.parse()
}

// maxDepth bounds the nesting of parentheses and NOTs, so that hostile
// input cannot exhaust the stack of the parser or of the database.
const maxDepth = 100

type parser struct {
	lex      lexer
	tok      token
	have     bool // tok holds the next token
	pipeMode bool // lex tokens of the pipeline
	depth    int
}

// bailout carries an *Error up through the recursive descent; parse
// recovers it. Only the parser panics with it.
type bailout struct{ err *Error }

func (p *parser) fail(pos int, format string, args ...any) {
	panic(bailout{p.lex.errorf(pos, format, args...)})
}

func (p *parser) peek() token {
	if !p.have {
		var t token
		var err error
		if p.pipeMode {
			t, err = p.lex.pipeToken()
		} else {
			t, err = p.lex.filterToken()
		}
		if err != nil {
			panic(bailout{err.(*Error)})
		}
		p.tok, p.have = t, true
	}
	return p.tok
}

func (p *parser) next() token {
	t := p.peek()
	p.have = false
	return t
}

func (p *parser) parse() (q *Query, err error) {
	defer func() {
		if r := recover(); r != nil {
			b, ok := r.(bailout)
			if !ok {
				panic(r)
			}
			q, err = nil, b.err
		}
	}()
	q = &Query{text: p.lex.src}
	if k := p.peek().kind; k != tPipe && k != tEOF {
		q.Filter = p.or("")
	}
	for {
		t := p.next()
		switch t.kind {
		case tEOF:
			return q, nil
		case tPipe:
			p.pipeMode = true
			q.Pipes = append(q.Pipes, p.pipe())
		case tRParen:
			p.fail(t.pos, "unexpected ')' without '('")
		default:
			p.fail(t.pos, "unexpected %s", t.describe())
		}
	}
}

// or parses terms joined by OR. after names what came before, for errors.
func (p *parser) or(after string) Expr {
	args := []Expr{p.and(after)}
	for p.peek().kind == tOr {
		p.next()
		args = append(args, p.and("OR"))
	}
	if len(args) == 1 {
		return args[0]
	}
	return &Or{Args: args}
}

// and parses terms joined by AND or by nothing: adjacent terms must all
// match.
func (p *parser) and(after string) Expr {
	args := []Expr{p.unary(after)}
	for {
		switch p.peek().kind {
		case tAnd:
			p.next()
			args = append(args, p.unary("AND"))
		case tNot, tMinus, tLParen, tTerm, tWord:
			args = append(args, p.unary(""))
		default:
			if len(args) == 1 {
				return args[0]
			}
			return &And{Args: args}
		}
	}
}

func (p *parser) unary(after string) Expr {
	p.depth++
	defer func() { p.depth-- }()
	t := p.next()
	if p.depth > maxDepth {
		p.fail(t.pos, "query nested too deeply (more than %d levels)", maxDepth)
	}
	switch t.kind {
	case tNot:
		return &Not{At: t.pos, X: p.unary("NOT")}
	case tMinus:
		return &Not{At: t.pos, X: p.unary("'-'")}
	case tLParen:
		x := p.or("'('")
		if p.peek().kind != tRParen {
			p.fail(t.pos, "unclosed '('")
		}
		p.next()
		return x
	case tTerm:
		c := &Compare{At: t.pos, Field: t.text, Op: t.op, Value: t.val}
		if _, err := resolveCompare(p.lex.src, c); err != nil {
			panic(bailout{err})
		}
		return c
	case tWord:
		return &Text{Value: t.val}
	}
	switch {
	case after != "":
		p.fail(t.pos, "expected a term after %s", after)
	case t.kind == tRParen:
		p.fail(t.pos, "unexpected ')' without '('")
	}
	p.fail(t.pos, "expected a term, found %s", t.describe())
	return nil
}

// pipe parses the command after a '|'.
func (p *parser) pipe() Pipe {
	t := p.next()
	if t.kind != tIdent {
		p.fail(t.pos, "expected a command after '|' (stats, timechart, sort, head or fields)")
	}
	var cmd Pipe
	switch strings.ToLower(t.text) {
	case "stats":
		s := &Stats{At: t.pos, Aggs: p.aggs(t, true)}
		s.By = p.by()
		p.checkNames(s.Aggs, s.By)
		cmd = s
	case "timechart":
		tc := &Timechart{At: t.pos, Span: time.Hour}
		if n := p.peek(); n.kind == tIdent && strings.EqualFold(n.text, "span") {
			p.next()
			if p.next().kind != tEq {
				p.fail(n.pos, "expected span=<duration>, e.g. span=5m")
			}
			v := p.next()
			tc.Span = p.span(v)
		}
		tc.Aggs = p.aggs(t, false)
		if len(tc.Aggs) == 0 {
			tc.Aggs = []Agg{{At: t.pos, Func: "count"}}
		}
		tc.By = p.by()
		p.checkNames(tc.Aggs, tc.By)
		for _, a := range tc.Aggs {
			if a.Name() == "_time" {
				p.fail(a.At, "the name _time is taken by the time bucket")
			}
		}
		cmd = tc
	case "sort":
		s := &Sort{At: t.pos}
		for {
			k := SortKey{}
			switch p.peek().kind {
			case tMinus:
				p.next()
				k.Desc = true
			case tPlus:
				p.next()
			}
			k.FieldRef = p.sortRef()
			s.Keys = append(s.Keys, k)
			if p.peek().kind == tComma {
				p.next()
				continue
			}
			if n := p.peek().kind; n != tIdent && n != tMinus && n != tPlus {
				break
			}
		}
		cmd = s
	case "head":
		h := &Head{At: t.pos, N: 10}
		if n := p.peek(); n.kind == tIdent {
			p.next()
			v, err := strconv.Atoi(n.text)
			if err != nil || v <= 0 {
				p.fail(n.pos, "bad number %q: head takes a positive count", n.text)
			}
			h.N = v
		}
		cmd = h
	case "fields":
		cmd = &Project{At: t.pos, Fields: p.refs("fields")}
	default:
		p.fail(t.pos, "unknown command %q (want stats, timechart, sort, head or fields)", t.text)
	}
	if n := p.peek(); n.kind != tPipe && n.kind != tEOF {
		p.fail(n.pos, "unexpected %s after %s", n.describe(), strings.ToLower(t.text))
	}
	return cmd
}

// aggFuncs maps the names of aggregates, in any case, to their canonical name.
var aggFuncs = map[string]string{
	"count": "count", "c": "count",
	"dc": "dc", "distinct_count": "dc",
	"values": "values",
	"min":    "min", "max": "max",
	"sum": "sum",
	"avg": "avg", "mean": "avg",
}

// aggs parses a list of aggregates, separated by commas or spaces, up to
// 'by' or the end of the command. need says at least one is required.
func (p *parser) aggs(cmd token, need bool) []Agg {
	var aggs []Agg
	for {
		t := p.peek()
		if t.kind != tIdent || strings.EqualFold(t.text, "by") {
			if need && len(aggs) == 0 {
				p.fail(t.pos, "expected an aggregate after %s, e.g. count()", strings.ToLower(cmd.text))
			}
			return aggs
		}
		aggs = append(aggs, p.agg())
		if p.peek().kind == tComma {
			p.next()
			if p.peek().kind != tIdent {
				p.fail(p.peek().pos, "expected an aggregate after ','")
			}
		}
	}
}

func (p *parser) agg() Agg {
	t := p.next()
	fn, ok := aggFuncs[strings.ToLower(t.text)]
	if !ok {
		p.fail(t.pos, "unknown function %q (want count, dc, values, min, max, sum or avg)", t.text)
	}
	a := Agg{At: t.pos, Func: fn}
	if p.peek().kind == tLParen {
		p.next()
		if p.peek().kind != tRParen {
			r := p.fieldRef()
			a.Field = &r
		}
		if n := p.next(); n.kind != tRParen {
			p.fail(n.pos, "expected ')' after %s(%s", t.text, a.Field.Name)
		}
	} else if fn != "count" {
		p.fail(p.peek().pos, "expected '(' after %s", t.text)
	}
	if a.Field == nil && fn != "count" {
		p.fail(t.pos, "%s needs a field: %s(field)", fn, fn)
	}
	if n := p.peek(); n.kind == tIdent && strings.EqualFold(n.text, "as") {
		p.next()
		name := p.next()
		if name.kind != tIdent || !isName(name.text) {
			p.fail(name.pos, "expected a name after 'as' (letters, digits and '_')")
		}
		a.As = name.text
	}
	return a
}

// isName reports whether s is a column name for 'as': a letter or '_'
// followed by letters, digits and '_'.
func isName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return s != ""
}

// by parses an optional 'by f1, f2'.
func (p *parser) by() []FieldRef {
	if t := p.peek(); t.kind != tIdent || !strings.EqualFold(t.text, "by") {
		return nil
	}
	p.next()
	return p.refs("by")
}

// refs parses one or more field names separated by commas or spaces.
func (p *parser) refs(after string) []FieldRef {
	if p.peek().kind != tIdent {
		p.fail(p.peek().pos, "expected a field name after %s", after)
	}
	var refs []FieldRef
	for {
		refs = append(refs, p.fieldRef())
		if p.peek().kind == tComma {
			p.next()
			continue
		}
		if p.peek().kind != tIdent {
			return refs
		}
	}
}

func (p *parser) fieldRef() FieldRef {
	t := p.next()
	if t.kind != tIdent || !validFieldName(t.text) {
		p.fail(t.pos, "expected a field name, found %s", t.describe())
	}
	return FieldRef{At: t.pos, Name: t.text}
}

// sortRef parses a sort key: a field or column name, or an aggregate as
// stats names its column by default (count(), dc(actor)).
func (p *parser) sortRef() FieldRef {
	t := p.peek()
	if t.kind != tIdent {
		p.fail(t.pos, "expected a field to sort by, found %s", t.describe())
	}
	if fn, ok := aggFuncs[strings.ToLower(t.text)]; ok {
		p.next()
		if p.peek().kind != tLParen {
			return FieldRef{At: t.pos, Name: t.text}
		}
		p.next()
		a := Agg{Func: fn}
		if p.peek().kind != tRParen {
			r := p.fieldRef()
			a.Field = &r
		}
		if n := p.next(); n.kind != tRParen {
			p.fail(n.pos, "expected ')'")
		}
		return FieldRef{At: t.pos, Name: a.Name()}
	}
	return p.fieldRef()
}

// checkNames rejects two output columns with the same name, which sort
// could not tell apart.
func (p *parser) checkNames(aggs []Agg, by []FieldRef) {
	seen := make(map[string]bool)
	for _, b := range by {
		if seen[b.Name] {
			p.fail(b.At, "%s appears twice after by", b.Name)
		}
		seen[b.Name] = true
	}
	for _, a := range aggs {
		if seen[a.Name()] {
			p.fail(a.At, "duplicate column %q: name it with 'as'", a.Name())
		}
		seen[a.Name()] = true
	}
}

// span parses the value of span=: a positive number and a unit, s, m, h
// or d.
func (p *parser) span(t token) time.Duration {
	bad := func() {
		p.fail(t.pos, "bad span %q (want a number and s, m, h or d: 30s, 5m, 1h, 1d)", t.text)
	}
	if t.kind != tIdent || len(t.text) < 2 {
		bad()
	}
	n, err := strconv.ParseInt(t.text[:len(t.text)-1], 10, 64)
	if err != nil || n <= 0 {
		bad()
	}
	for _, u := range spanUnits {
		if t.text[len(t.text)-1:] == u.name {
			// Ten years is more than any chart needs and keeps the
			// arithmetic far from overflow.
			if n > int64(10*366*24*time.Hour/u.d) {
				bad()
			}
			return time.Duration(n) * u.d
		}
	}
	bad()
	return 0
}
