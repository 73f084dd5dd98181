package query

import (
	"strconv"
	"strings"
	"time"
)

// A Query is a parsed search: a filter over events followed by a pipeline
// of commands that shape the result.
type Query struct {
	Filter Expr   // nil matches every event
	Pipes  []Pipe // in the order written

	text string // the text parsed, for the columns of errors Compile finds
}

// An Expr is a node of the filter: *And, *Or, *Not, *Compare or *Text.
type Expr interface {
	Pos() int // byte offset of the node in the query text
	String() string
	expr()
}

// And matches events that every one of Args matches. Adjacent terms
// without an operator between them are joined by And.
type And struct{ Args []Expr }

// Or matches events that at least one of Args matches.
type Or struct{ Args []Expr }

// Not matches events X does not match, including events that lack the
// field X names.
type Not struct {
	At int
	X  Expr
}

// Compare matches a field against a value: action:CreateUser, src_port>=1024.
type Compare struct {
	At    int    // offset of the field name
	Field string // a normalized name (see Fields) or a path into the original document
	Op    Op
	Value Value
}

// Text is a bare word or quoted phrase: a case-insensitive search for
// whole words in the raw event (see IsWordRune), or for a substring
// pattern when the value has wildcards.
type Text struct {
	Value Value
}

func (x *And) Pos() int     { return x.Args[0].Pos() }
func (x *Or) Pos() int      { return x.Args[0].Pos() }
func (x *Not) Pos() int     { return x.At }
func (x *Compare) Pos() int { return x.At }
func (x *Text) Pos() int    { return x.Value.At }

func (*And) expr()     {}
func (*Or) expr()      {}
func (*Not) expr()     {}
func (*Compare) expr() {}
func (*Text) expr()    {}

// An Op is the operator of a Compare.
type Op int

// Operators. Eq is written ':' (or '=').
const (
	Eq Op = iota
	Ne
	Lt
	Le
	Gt
	Ge
)

var opText = [...]string{Eq: ":", Ne: "!=", Lt: "<", Le: "<=", Gt: ">", Ge: ">="}

func (op Op) String() string {
	if int(op) < len(opText) {
		return opText[op]
	}
	return "Op(" + strconv.Itoa(int(op)) + ")"
}

// A Value is a value as written in a query.
//
// Pattern holds it with escapes resolved except those that matter for
// matching: an unescaped '*' matches any run of characters and '?' any one
// character; '\*', '\?' and '\\' stand for the characters themselves.
// Every other character stands for itself.
type Value struct {
	At      int  // offset of the value (of its opening quote when Quoted)
	Quoted  bool // written in double quotes
	Pattern string
}

// HasWildcard reports whether the value contains an unescaped '*' or '?'.
func (v Value) HasWildcard() bool {
	for i := 0; i < len(v.Pattern); i++ {
		switch v.Pattern[i] {
		case '\\':
			i++
		case '*', '?':
			return true
		}
	}
	return false
}

// Text returns the value with every escape removed: the literal text to
// compare when the value has no wildcard.
func (v Value) Text() string {
	if !strings.Contains(v.Pattern, `\`) {
		return v.Pattern
	}
	var b strings.Builder
	for i := 0; i < len(v.Pattern); i++ {
		c := v.Pattern[i]
		if c == '\\' && i+1 < len(v.Pattern) {
			i++
			c = v.Pattern[i]
		}
		b.WriteByte(c)
	}
	return b.String()
}

// matchesAll reports whether the value is made of '*' only.
func (v Value) matchesAll() bool {
	return v.Pattern != "" && strings.Trim(v.Pattern, "*") == ""
}

// A Pipe is a command after '|': *Stats, *Timechart, *Sort, *Head or *Project.
type Pipe interface {
	Pos() int // byte offset of the command name
	String() string
	pipe()
}

// Stats aggregates events into one row per distinct value of By (one row
// in all when By is empty).
type Stats struct {
	At   int
	Aggs []Agg
	By   []FieldRef
}

// Timechart is Stats over time buckets of length Span, plus By.
type Timechart struct {
	At   int
	Span time.Duration
	Aggs []Agg
	By   []FieldRef
}

// Sort orders the result by Keys, the first key first.
type Sort struct {
	At   int
	Keys []SortKey
}

// Head keeps the first N rows.
type Head struct {
	At int
	N  int
}

// Project is the fields command: it keeps only the named fields (and,
// for events, their time).
type Project struct {
	At     int
	Fields []FieldRef
}

func (p *Stats) Pos() int     { return p.At }
func (p *Timechart) Pos() int { return p.At }
func (p *Sort) Pos() int      { return p.At }
func (p *Head) Pos() int      { return p.At }
func (p *Project) Pos() int   { return p.At }

func (*Stats) pipe()     {}
func (*Timechart) pipe() {}
func (*Sort) pipe()      {}
func (*Head) pipe()      {}
func (*Project) pipe()   {}

// A FieldRef names a field, or after stats a column of its output.
type FieldRef struct {
	At   int
	Name string
}

// An Agg is one aggregate of stats or timechart: count(), dc(actor) as n.
type Agg struct {
	At    int
	Func  string    // count, dc, values, min, max, sum, avg
	Field *FieldRef // nil for count()
	As    string    // output name; empty for the default
}

// Name returns the output column name: As, or the aggregate as written
// in canonical form (count, dc(actor)).
func (a Agg) Name() string {
	if a.As != "" {
		return a.As
	}
	if a.Field == nil {
		return a.Func
	}
	return a.Func + "(" + a.Field.Name + ")"
}

// A SortKey is one key of Sort.
type SortKey struct {
	FieldRef
	Desc bool
}

// String renders the query in canonical form; parsing the result yields
// the same query (up to positions).
func (q *Query) String() string {
	var b strings.Builder
	if q.Filter != nil {
		b.WriteString(q.Filter.String())
	}
	for _, p := range q.Pipes {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString("| ")
		b.WriteString(p.String())
	}
	return b.String()
}

func (x *And) String() string { return joinExprs(x.Args, " AND ") }
func (x *Or) String() string  { return joinExprs(x.Args, " OR ") }

func joinExprs(args []Expr, sep string) string {
	parts := make([]string, len(args))
	for i, a := range args {
		parts[i] = a.String()
		switch a.(type) {
		case *And, *Or:
			parts[i] = "(" + parts[i] + ")"
		}
	}
	return strings.Join(parts, sep)
}

func (x *Not) String() string {
	switch x.X.(type) {
	case *Compare, *Text, *Not:
		return "NOT " + x.X.String()
	}
	return "NOT (" + x.X.String() + ")"
}

func (x *Compare) String() string { return x.Field + x.Op.String() + x.Value.String() }

func (x *Text) String() string {
	s := x.Value.String()
	// A word that would lex as a keyword or a comparison needs quotes.
	if !strings.HasPrefix(s, `"`) && (isKeyword(s) || strings.ContainsAny(s, ":=<>!") || s[0] == '-') {
		return x.Value.quoted()
	}
	return s
}

// String renders the value unquoted when that lexes back to the same
// value, quoted otherwise.
func (v Value) String() string {
	// A leading '=' would be read as part of '<' or '>'.
	if v.Pattern == "" || v.Pattern[0] == '=' {
		return v.quoted()
	}
	for i := 0; i < len(v.Pattern); i++ {
		c := v.Pattern[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"()|\`, c) >= 0 {
			return v.quoted()
		}
	}
	return v.Pattern
}

func (v Value) quoted() string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(v.Pattern); i++ {
		c := v.Pattern[i]
		switch {
		case c == '\\' && i+1 < len(v.Pattern):
			// Escapes in Pattern read back the same inside quotes.
			b.WriteByte(c)
			i++
			b.WriteByte(v.Pattern[i])
		case c == '\\':
			b.WriteString(`\\`)
		case c == '"':
			b.WriteString(`\"`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func (p *Stats) String() string {
	return "stats " + aggsString(p.Aggs) + byString(p.By)
}

func (p *Timechart) String() string {
	return "timechart span=" + spanString(p.Span) + " " + aggsString(p.Aggs) + byString(p.By)
}

func (p *Sort) String() string {
	parts := make([]string, len(p.Keys))
	for i, k := range p.Keys {
		if k.Desc {
			parts[i] = "-" + k.Name
		} else {
			parts[i] = k.Name
		}
	}
	return "sort " + strings.Join(parts, ", ")
}

func (p *Head) String() string { return "head " + strconv.Itoa(p.N) }

func (p *Project) String() string { return "fields " + refsString(p.Fields) }

func aggsString(aggs []Agg) string {
	parts := make([]string, len(aggs))
	for i, a := range aggs {
		s := a.Func + "()"
		if a.Field != nil {
			s = a.Func + "(" + a.Field.Name + ")"
		}
		if a.As != "" {
			s += " as " + a.As
		}
		parts[i] = s
	}
	return strings.Join(parts, ", ")
}

func byString(by []FieldRef) string {
	if len(by) == 0 {
		return ""
	}
	return " by " + refsString(by)
}

func refsString(refs []FieldRef) string {
	parts := make([]string, len(refs))
	for i, r := range refs {
		parts[i] = r.Name
	}
	return strings.Join(parts, ", ")
}

// spanString renders a span in the largest unit that divides it.
func spanString(d time.Duration) string {
	for _, u := range spanUnits {
		if d%u.d == 0 {
			return strconv.FormatInt(int64(d/u.d), 10) + u.name
		}
	}
	return strconv.FormatInt(int64(d/time.Second), 10) + "s"
}

var spanUnits = []struct {
	name string
	d    time.Duration
}{
	{"d", 24 * time.Hour},
	{"h", time.Hour},
	{"m", time.Minute},
	{"s", time.Second},
}

// Quote writes v as a quoted value of the language that means exactly v:
// its backslashes, quotes and wildcards escaped. Code that writes a search
// from values it did not choose (an actor's name, an access key id) quotes
// them, so that a value cannot widen the search or end its quotes.
func Quote(v string) string {
	return `"` + quoteReplacer.Replace(v) + `"`
}

var quoteReplacer = strings.NewReplacer(`\`, `\\`, `"`, `\"`, `*`, `\*`, `?`, `\?`)
