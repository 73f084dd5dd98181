package query

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// A Request is a query and the context it runs in.
type Request struct {
	Query    *Query // nil matches every event
	Scope    Scope
	From, To time.Time // event time range [From, To); a zero bound is open
	// Limit bounds the rows of the result when the query has no head;
	// 0 is no bound. A head anywhere replaces it: no command makes more
	// rows than it reads, so the query's own head bounds the result.
	Limit int
	// SeqRanges, when not nil, restricts the query to the events whose
	// seq lies in one of the closed ranges [lo, hi]; an empty, non-nil
	// list matches no event. A store with a word index sets it to the
	// ranges that may hold the query's RequiredText. The ranges need not
	// be sorted or disjoint.
	SeqRanges [][2]uint64
	// Sources, when not AllSources, restricts the query to the events of
	// the sources whose parsers copy document fields into columns
	// (CopyingSources) or to the others (OtherSources), and compiles each
	// such field for those alone: a store runs a query whose filter has
	// one (SplitsSources) as two statements, one for each, so that
	// neither reads the column and the documents of every event (a
	// dialect without short-circuit evaluation would). A table of such
	// a query is compiled with both parts under a UNION ALL where the
	// dialect has it (Dialect.unionSources).
	Sources SourceSplit
}

// A SourceSplit is a part of the events by source: see Request.Sources.
type SourceSplit int

const (
	AllSources SourceSplit = iota
	// CopyingSources are the sources some document field is copied
	// into a column for (docColumns).
	CopyingSources
	// OtherSources are every other source.
	OtherSources
)

// copyingSources are the sources of docColumns, sorted.
var copyingSources = func() []string {
	var ss []string
	for _, dcs := range docColumns {
		for _, dc := range dcs {
			ss = append(ss, dc.source)
		}
	}
	slices.Sort(ss)
	return slices.Compact(ss)
}()

// SplitsSources says q's filter compares a document field that a parser
// copies into a column for some sources: see Request.Sources.
func SplitsSources(q *Query) bool {
	if q == nil || q.Filter == nil {
		return false
	}
	var walk func(Expr) bool
	walk = func(e Expr) bool {
		switch e := e.(type) {
		case *And:
			return slices.ContainsFunc(e.Args, walk)
		case *Or:
			return slices.ContainsFunc(e.Args, walk)
		case *Not:
			return walk(e.X)
		case *Compare:
			return len(docColumns[e.Field]) > 0
		}
		return false
	}
	return walk(q.Filter)
}

// OldestFirst returns req with its events in the order a scan reads
// them, oldest first (by time, then seq), and no bound on their number:
// the request a store's Scan compiles.
func (req Request) OldestFirst() Request {
	q := Query{}
	if req.Query != nil {
		q = *req.Query
	}
	q.Pipes = append(slices.Clip(q.Pipes), &Sort{Keys: []SortKey{{FieldRef: FieldRef{Name: "time"}}, {FieldRef: FieldRef{Name: "seq"}}}})
	req.Query, req.Limit = &q, 0
	return req
}

// Kind says what the rows of a compiled query are.
type Kind int

const (
	// Events rows are whole events: the columns of EventColumns, newest
	// first unless the query sorts them.
	Events Kind = iota
	// Table rows are the columns named by SQL.Columns.
	Table
)

func (k Kind) String() string {
	if k == Events {
		return "events"
	}
	return "table"
}

// SQL is a compiled query: text with '?' placeholders, and their
// arguments in order.
type SQL struct {
	Text string
	Args []any
	Kind Kind
	// Columns names the result columns of a Table, in order: field
	// names, aggregate names (count, dc(actor)) or their 'as' names, and
	// _time for timechart buckets. Nil for Events, whose columns are
	// EventColumns. The SQL itself names its columns _c0, _c1, … so that
	// no user text reaches it.
	Columns []string
	// Types are the types of a Table's columns, in order, for a store
	// whose engine does not say (ClickHouse keeps times as integers):
	// TypeTime for a time, TypeInt, TypeString, TypeList, TypeIP; another
	// value for a number or a document's text.
	Types []Type
}

// Compile compiles req for the engine d. Compile never runs anything;
// the store does.
func Compile(req Request, d *Dialect) (*SQL, error) {
	q := req.Query
	if q == nil {
		q = &Query{}
	}
	c := &compiler{d: d, src: q.text, hide: req.Scope.hidden(), sources: req.Sources}
	return c.compile(req, q)
}

type compiler struct {
	d       *Dialect
	src     string
	hide    Redaction   // what the scope's shares hide, which the query may not name
	sources SourceSplit // the events' part, by source (Request.Sources)
	nextC   int         // numbers the column aliases _cN, unique in the whole statement
	nextT   int         // numbers the subquery aliases _tN
}

// An operand is a typed SQL expression.
type operand struct {
	f   frag
	typ Type
	bin frag // IP fields: the 16-byte column
}

// An outCol is a column of a stage's result.
type outCol struct {
	name  string // as the user names it
	alias string // as SQL names it: _cN
	op    operand
}

// A stage is one SELECT. Pipes are applied to the current stage while
// they fit in one SELECT; one that does not (head before stats, stats
// after stats) makes the current stage a subquery of a new one.
type stage struct {
	from     frag
	prewhere []frag // of a stage reading the events table
	where    []frag

	// The names the stage's input has.
	events bool            // the events table, or a SELECT * of it
	allow  map[string]bool // events after fields: the names kept; nil for all
	// Otherwise the input is a subquery, whose columns are in cols.

	cols []outCol // nil: EventColumns
	// inner is a stage of events another selects from: it selects the
	// columns the dialect's expressions read too (Dialect.carry).
	inner   bool
	grouped bool     // cols are by-fields and aggregates
	groupBy []string // aliases
	order   []orderKey
	limit   int
}

func (c *compiler) errorf(pos int, format string, args ...any) *Error {
	return errorf(c.src, pos, format, args...)
}

func (c *compiler) alias() string {
	a := "_c" + strconv.Itoa(c.nextC)
	c.nextC++
	return a
}

func (c *compiler) compile(req Request, q *Query) (*SQL, error) {
	st := &stage{from: sqlf(c.d.events), events: true}
	st.order = []orderKey{{sqlf("time"), true}, {sqlf("seq"), true}}

	// Tenant scope first: it is the one condition that must never be lost.
	scope, err := c.scope(req.Scope)
	if err != nil {
		return nil, err
	}
	st.where = append(st.where, scope)
	if !req.From.IsZero() {
		st.where = append(st.where, sqlf("time >= ", c.d.timeValue(req.From)))
	}
	if !req.To.IsZero() {
		st.where = append(st.where, sqlf("time < ", c.d.timeValue(req.To)))
	}
	if req.SeqRanges != nil {
		if c.d.seqPrewhere {
			st.prewhere = append(st.prewhere, c.seqRanges(req.SeqRanges))
		} else {
			st.where = append(st.where, c.seqRanges(req.SeqRanges))
		}
	}
	if c.sources == AllSources && c.d.unionSources && makesTable(q) && SplitsSources(q) {
		if st, err = c.unionSources(st, q.Filter); err != nil {
			return nil, err
		}
	} else {
		c.restrictSources(st)
		if q.Filter != nil {
			f, err := c.expr(q.Filter)
			if err != nil {
				return nil, err
			}
			st.where = append(st.where, f)
		}
	}

	hasHead := false
	for _, p := range q.Pipes {
		switch p := p.(type) {
		case *Stats:
			st, err = c.stats(st, p.At, p.Aggs, p.By, 0)
		case *Timechart:
			st, err = c.stats(st, p.At, p.Aggs, p.By, p.Span)
		case *Sort:
			st, err = c.sort(st, p)
		case *Head:
			if st.limit == 0 || p.N < st.limit {
				st.limit = p.N
			}
			hasHead = true
		case *Project:
			st, err = c.fields(st, p)
		}
		if err != nil {
			return nil, err
		}
	}
	if !hasHead && req.Limit > 0 {
		st.limit = req.Limit
	}
	f := c.render(st)
	out := &SQL{Text: f.sql, Args: f.args}
	if st.cols != nil {
		out.Kind = Table
		for _, col := range st.cols {
			out.Columns = append(out.Columns, col.name)
			out.Types = append(out.Types, col.op.typ)
		}
	}
	return out, nil
}

// scope is the condition that keeps a statement to the events s reads:
// its tenants', and those its shares select.
func (c *compiler) scope(s Scope) (frag, error) {
	var parts []frag
	switch {
	case s.All && slices.Contains(s.Tenants, SystemTenant):
		return sqlf(c.d.trueLit), nil
	case s.All:
		parts = append(parts, sqlf("tenant <> ", param{SystemTenant}))
	case len(s.Tenants) > 0:
		ps := make([]frag, len(s.Tenants))
		for i, t := range s.Tenants {
			ps[i] = sqlf(param{t})
		}
		parts = append(parts, sqlf("tenant IN (", join(ps, ", "), ")"))
	}
	for _, sh := range s.Shares {
		if s.Includes(sh.Tenant) {
			continue // already read whole
		}
		if err := CheckShare(sh); err != nil {
			return frag{}, fmt.Errorf("grant %s: %w", sh.Grant, err)
		}
		f := sqlf("tenant = ", param{sh.Tenant})
		if !sh.From.IsZero() {
			f = sqlf(f, " AND time >= ", c.d.timeValue(sh.From))
		}
		if !sh.To.IsZero() {
			f = sqlf(f, " AND time < ", c.d.timeValue(sh.To))
		}
		if sh.Filter != nil && sh.Filter.Filter != nil {
			// The grant's own text, for the positions of its errors; it
			// may name what the query's scope hides, being the owner's.
			sc := &compiler{d: c.d, src: sh.Filter.text}
			x, err := sc.expr(sh.Filter.Filter)
			if err != nil {
				return frag{}, fmt.Errorf("grant %s: %w", sh.Grant, err)
			}
			f = sqlf(f, " AND ", c.d.isTrue(x))
		}
		parts = append(parts, sqlf("(", f, ")"))
	}
	switch len(parts) {
	case 0:
		return sqlf(c.d.falseLit), nil
	case 1:
		return parts[0], nil
	}
	return sqlf("(", join(parts, " OR "), ")"), nil
}

// render writes the SELECT of st.
func (c *compiler) render(st *stage) frag {
	var sel frag
	if st.cols == nil {
		cols := eventColumns
		if st.inner {
			cols = append(cols[:len(cols):len(cols)], c.d.carry...)
		}
		sel = sqlf(strings.Join(cols, ", "))
	} else {
		parts := make([]frag, len(st.cols))
		for i, col := range st.cols {
			if col.op.f.sql == col.alias {
				parts[i] = col.op.f
			} else {
				parts[i] = sqlf(col.op.f, " AS "+col.alias)
			}
		}
		sel = join(parts, ", ")
	}
	f := sqlf("SELECT ", sel, " FROM ", st.from)
	if len(st.prewhere) > 0 {
		f = sqlf(f, " PREWHERE ", join(st.prewhere, " AND "))
	}
	if len(st.where) > 0 {
		f = sqlf(f, " WHERE ", join(st.where, " AND "))
	}
	if len(st.groupBy) > 0 {
		f = sqlf(f, " GROUP BY "+strings.Join(st.groupBy, ", "))
	}
	if len(st.order) > 0 {
		keys := make([]frag, len(st.order))
		for i, k := range st.order {
			if k.desc {
				keys[i] = sqlf(k.x, " DESC")
			} else {
				keys[i] = sqlf(k.x, " ASC")
			}
		}
		f = sqlf(f, " ORDER BY ", join(keys, ", "))
	}
	if st.limit > 0 {
		f = sqlf(f, " LIMIT ", param{int64(st.limit)})
	}
	return f
}

// nest makes st a subquery of a new stage that selects what st selects.
func (c *compiler) nest(st *stage) *stage {
	inner := st
	if st.events {
		// Select every column, so that the new stage can name any field;
		// its own projection, if any, carries over.
		cp := *st
		cp.cols, cp.inner = nil, true
		inner = &cp
	}
	t := "_t" + strconv.Itoa(c.nextT)
	c.nextT++
	ns := &stage{from: sqlf("(", c.render(inner), ") AS "+t), events: st.events, allow: st.allow}
	if st.events {
		ns.cols = st.cols
		ns.order = st.order
		return ns
	}
	ns.cols = make([]outCol, len(st.cols))
	for i, col := range st.cols {
		ns.cols[i] = outCol{name: col.name, alias: col.alias, op: operand{f: sqlf(col.alias), typ: col.op.typ}}
	}
	// The keys of a table stage name its columns by alias; the new stage
	// reads the columns st selects by the same names, and can keep the
	// order on those.
	for _, k := range st.order {
		if slices.ContainsFunc(st.cols, func(col outCol) bool { return col.alias == k.x.sql }) {
			ns.order = append(ns.order, k)
		}
	}
	return ns
}

// resolve returns the expression for the name ref in st: a field of the
// events, or a column of st's result.
func (c *compiler) resolve(st *stage, ref FieldRef) (operand, error) {
	if !st.events {
		col, err := c.column(st, ref)
		if err != nil {
			return operand{}, err
		}
		if st.grouped {
			// Only ORDER BY may name an aggregate, and by its alias.
			return operand{f: sqlf(col.alias), typ: col.op.typ}, nil
		}
		return col.op, nil
	}
	if st.allow != nil && !st.allow[ref.Name] {
		return operand{}, c.errorf(ref.At, "%s was dropped by an earlier fields command", ref.Name)
	}
	return c.field(ref.Name, ref.At)
}

// column returns the column of st's result called ref.
func (c *compiler) column(st *stage, ref FieldRef) (outCol, error) {
	for _, col := range st.cols {
		if col.name == ref.Name {
			return col, nil
		}
	}
	names := make([]string, len(st.cols))
	for i, col := range st.cols {
		names[i] = col.name
	}
	return outCol{}, c.errorf(ref.At, "unknown column %q (the columns here are %s)", ref.Name, strings.Join(names, ", "))
}

// field returns the expression for a field of the events table, named
// at at. Every name of the events a query reads passes here, which is
// where the fields a share hides are refused.
func (c *compiler) field(name string, at int) (operand, error) {
	if c.hide.Hides(name) {
		return operand{}, c.errorf(at, "%s is hidden from you in some of the events you may read (a grant redacts it); name tenant= to search your own tenant's", name)
	}
	if f, ok := fieldsByName[name]; ok {
		op := operand{f: sqlf(f.Column), typ: f.Type}
		if f.BinColumn != "" {
			op.bin = sqlf(f.BinColumn)
		}
		return op, nil
	}
	return operand{f: c.d.docText(strings.Split(name, ".")), typ: typeDoc}, nil
}

func (c *compiler) fields(st *stage, p *Project) (*stage, error) {
	if !st.events {
		// A projection of a table is a new SELECT, so that ORDER BY and
		// GROUP BY of st keep their columns.
		st = c.nest(st)
		var cols []outCol
		for _, ref := range p.Fields {
			col, err := c.column(st, ref)
			if err != nil {
				return nil, err
			}
			if !slices.ContainsFunc(cols, func(o outCol) bool { return o.name == col.name }) {
				cols = append(cols, col)
			}
		}
		st.cols = cols
		return st, nil
	}
	var cols []outCol
	allow := make(map[string]bool)
	add := func(ref FieldRef) error {
		if allow[ref.Name] {
			return nil
		}
		op, err := c.resolve(st, ref)
		if err != nil {
			return err
		}
		allow[ref.Name] = true
		cols = append(cols, outCol{name: ref.Name, alias: c.alias(), op: op})
		return nil
	}
	// Events keep their time: a list of events without one is no use.
	if !slices.ContainsFunc(p.Fields, func(r FieldRef) bool { return r.Name == "time" }) {
		if err := add(FieldRef{At: p.At, Name: "time"}); err != nil {
			return nil, err
		}
	}
	for _, ref := range p.Fields {
		if err := add(ref); err != nil {
			return nil, err
		}
	}
	st.cols, st.allow = cols, allow
	return st, nil
}

func (c *compiler) sort(st *stage, p *Sort) (*stage, error) {
	if st.limit > 0 {
		// head, then sort: sort the rows head kept.
		st = c.nest(st)
	}
	var keys []orderKey
	for _, k := range p.Keys {
		var x frag
		if st.events {
			op, err := c.resolve(st, k.FieldRef)
			if err != nil {
				return nil, err
			}
			x = op.f
		} else {
			col, err := c.column(st, k.FieldRef)
			if err != nil {
				return nil, err
			}
			x = sqlf(col.alias)
		}
		keys = append(keys, orderKey{x, k.Desc})
	}
	// The order before the sort breaks ties, as a stable sort would. A
	// key that comes again adds nothing.
	st.order = dedupKeys(append(keys, st.order...))
	return st, nil
}

// An orderKey is one key of ORDER BY.
type orderKey struct {
	x    frag
	desc bool
}

// dedupKeys drops keys on an expression an earlier key already orders by.
func dedupKeys(keys []orderKey) []orderKey {
	var out []orderKey
	for _, k := range keys {
		if !slices.ContainsFunc(out, func(o orderKey) bool { return sameFrag(o.x, k.x) }) {
			out = append(out, k)
		}
	}
	return out
}

func sameFrag(a, b frag) bool {
	return a.sql == b.sql && slices.EqualFunc(a.args, b.args, func(x, y any) bool {
		s1, ok1 := x.(string)
		s2, ok2 := y.(string)
		return ok1 && ok2 && s1 == s2
	})
}

// stats applies stats, or timechart when span is not zero; at is the
// position of the command.
func (c *compiler) stats(st *stage, at int, aggs []Agg, by []FieldRef, span time.Duration) (*stage, error) {
	if st.grouped || st.limit > 0 {
		// Aggregate the rows st returns, not those it reads.
		st = c.nest(st)
	}
	var cols []outCol
	var groupBy []string
	if span > 0 {
		t, err := c.resolve(st, FieldRef{At: at, Name: "time"})
		if err != nil || t.typ != TypeTime {
			return nil, c.errorf(at, "timechart needs the time of events, which an earlier command dropped")
		}
		col := outCol{name: "_time", alias: c.alias(), op: operand{f: c.d.bucket(t.f, span), typ: TypeTime}}
		cols = append(cols, col)
		groupBy = append(groupBy, col.alias)
	}
	for _, ref := range by {
		op, err := c.resolve(st, ref)
		if err != nil {
			return nil, err
		}
		col := outCol{name: ref.Name, alias: c.alias(), op: operand{f: op.f, typ: op.typ}}
		cols = append(cols, col)
		groupBy = append(groupBy, col.alias)
	}
	for _, a := range aggs {
		op, err := c.agg(st, a)
		if err != nil {
			return nil, err
		}
		cols = append(cols, outCol{name: a.Name(), alias: c.alias(), op: op})
	}
	ns := &stage{from: st.from, where: st.where, cols: cols, grouped: true, groupBy: groupBy}
	// Rows come out in the order of their groups, as a user reading a
	// table or a chart expects.
	for _, g := range groupBy {
		ns.order = append(ns.order, orderKey{x: sqlf(g)})
	}
	return ns, nil
}

func (c *compiler) agg(st *stage, a Agg) (operand, error) {
	d := c.d
	count := func(x frag) operand {
		if d.count != nil {
			x = d.count(x)
		}
		return operand{f: x, typ: TypeInt}
	}
	if a.Field == nil {
		return count(sqlf("count(*)")), nil
	}
	x, err := c.resolve(st, *a.Field)
	if err != nil {
		return operand{}, err
	}
	switch a.Func {
	case "count":
		return count(sqlf("count(", x.f, ")")), nil
	case "dc":
		return count(d.countDistinct(x.f)), nil
	case "values":
		return operand{f: d.values(x.f, x.typ == TypeList), typ: TypeList}, nil
	case "min", "max":
		switch x.typ {
		case TypeList:
			return operand{}, c.errorf(a.Field.At, "%s needs a single-valued field; %s is a list", a.Func, a.Field.Name)
		case typeDoc:
			// Numerically when some values are numbers (bytes,
			// durations), as text otherwise (names, ISO times).
			num := d.toText(sqlf(a.Func+"(", d.toDouble(x.f), ")"))
			return operand{f: sqlf("coalesce(", num, ", "+a.Func+"(", x.f, "))"), typ: typeDoc}, nil
		}
		return operand{f: sqlf(a.Func+"(", x.f, ")"), typ: x.typ}, nil
	case "sum", "avg":
		switch x.typ {
		case TypeInt, typeFloat, typeDoc:
		default:
			return operand{}, c.errorf(a.Field.At, "%s needs a number; %s is %s", a.Func, a.Field.Name, typeArticle(x.typ))
		}
		// Sums as doubles: an integer sum would come back as a 128-bit
		// integer from some engines.
		return operand{f: sqlf(a.Func+"(", d.toDouble(x.f), ")"), typ: typeFloat}, nil
	}
	return operand{}, c.errorf(a.At, "unknown function %q", a.Func)
}

// expr compiles a filter expression to a condition.
func (c *compiler) expr(e Expr) (frag, error) {
	switch e := e.(type) {
	case *And:
		return c.exprs(e.Args, " AND ")
	case *Or:
		return c.exprs(e.Args, " OR ")
	case *Not:
		x, err := c.expr(e.X)
		if err != nil {
			return frag{}, err
		}
		// A condition on a missing field is NULL, and NOT NULL is NULL:
		// without isTrue, NOT action:x would skip events with no action.
		return sqlf("NOT ", c.d.isTrue(x)), nil
	case *Text:
		if e.Value.matchesAll() {
			return sqlf(c.d.trueLit), nil
		}
		if !c.hide.Empty() {
			// Free text reads the whole raw event, hidden fields too.
			return frag{}, c.errorf(e.Value.At, "free text cannot search events a grant shares with fields hidden; search named fields, or name tenant= to search your own tenant's")
		}
		if e.Value.HasWildcard() {
			return c.d.iLike(sqlf("raw"), "%"+likePattern(e.Value.Pattern)+"%"), nil
		}
		s := e.Value.Text()
		return c.d.words(sqlf("raw"), s, textPattern(s)), nil
	case *Compare:
		return c.compare(e)
	}
	return frag{}, c.errorf(e.Pos(), "unknown expression")
}

func (c *compiler) exprs(args []Expr, sep string) (frag, error) {
	fs := make([]frag, len(args))
	for i, a := range args {
		f, err := c.expr(a)
		if err != nil {
			return frag{}, err
		}
		fs[i] = f
	}
	return sqlf("(", join(fs, sep), ")"), nil
}

// seqRanges is the condition that seq lies in one of rs.
func (c *compiler) seqRanges(rs [][2]uint64) frag {
	rs = mergeRanges(rs)
	if len(rs) == 0 {
		return sqlf(c.d.falseLit)
	}
	parts := make([]frag, len(rs))
	for i, r := range rs {
		lo, hi := c.seqValue(r[0]), c.seqValue(r[1])
		switch {
		case r[0] == r[1]:
			parts[i] = sqlf("seq = ", lo)
		case r[1] == math.MaxUint64:
			parts[i] = sqlf("seq >= ", lo)
		default:
			parts[i] = sqlf("seq BETWEEN ", lo, " AND ", hi)
		}
	}
	return sqlf("(", join(parts, " OR "), ")")
}

// seqValue is a parameter holding v, of the type of seq. A parameter of
// another integer type would make the engine compare both as a wider type
// (DuckDB: HUGEINT), and a cast column defeats the zonemaps that let a
// scan skip the row groups outside the seq ranges of the word index.
// database/sql refuses a uint64 with the high bit set, so it goes as text.
func (c *compiler) seqValue(v uint64) frag {
	return c.d.uint64Text(strconv.FormatUint(v, 10))
}

// mergeRanges returns the closed ranges rs sorted, without empty ones
// (lo > hi), and with those that overlap or touch merged: the fewest
// ranges that hold the same numbers. rs is not modified.
func mergeRanges(rs [][2]uint64) [][2]uint64 {
	out := make([][2]uint64, 0, len(rs))
	for _, r := range rs {
		if r[0] <= r[1] {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b [2]uint64) int { return cmp.Compare(a[0], b[0]) })
	n := 0
	for _, r := range out {
		// r touches the last range when it starts at most one past its
		// end; hi+1 would overflow at the top of the range.
		if n > 0 && (out[n-1][1] == math.MaxUint64 || r[0] <= out[n-1][1]+1) {
			out[n-1][1] = max(out[n-1][1], r[1])
			continue
		}
		out[n] = r
		n++
	}
	return out[:n]
}

var sqlOps = [...]string{Eq: " = ", Ne: " <> ", Lt: " < ", Le: " <= ", Gt: " > ", Ge: " >= "}

func (c *compiler) compare(e *Compare) (frag, error) {
	p, perr := resolveCompare(c.src, e)
	if perr != nil {
		return frag{}, perr
	}
	x, err := c.field(e.Field, e.At)
	if err != nil {
		return frag{}, err
	}
	doc, err := c.match(x, p, e.At)
	if err != nil || x.typ != typeDoc {
		return doc, err
	}
	// A document field that a parser copies verbatim into a column is
	// read from the column for that source's events: a filter on the
	// column is many times cheaper than extracting the field from each
	// document. Other sources' events still read the document.
	cols := docColumns[e.Field]
	if len(cols) == 0 || !matchesText(p) || c.sources == OtherSources {
		// OtherSources: no event here has the column.
		return doc, nil
	}
	var f, in frag
	for i, dc := range cols {
		col, err := c.match(operand{f: sqlf(dc.column), typ: TypeString}, p, e.At)
		if err != nil {
			return frag{}, err
		}
		sep := ""
		if i > 0 {
			sep = ", "
		}
		in = sqlf(in, sep, param{dc.source})
		f = sqlf(f, "(source = ", param{dc.source}, " AND ", col, ") OR ")
	}
	if c.sources == CopyingSources && len(cols) == len(copyingSources) {
		// Every copying source has the column: the document is no
		// event's here. (cols names each source once.)
		return sqlf("(", f, c.d.falseLit, ")"), nil
	}
	return sqlf("(", f, "(source NOT IN (", in, ") AND ", doc, "))"), nil
}

// restrictSources keeps st, a stage of the events table, to the part of
// the events by source that c compiles for (Request.Sources), if any.
func (c *compiler) restrictSources(st *stage) {
	if c.sources == AllSources {
		return
	}
	f := sqlf("source IN (", c.sourceList(), ")")
	if c.sources == OtherSources {
		f = sqlf("source NOT IN (", c.sourceList(), ")")
	}
	if c.d.seqPrewhere {
		// Light and cheap to read: in PREWHERE, so that the other
		// part's rows are not read further.
		st.prewhere = append(st.prewhere, f)
	} else {
		st.where = append(st.where, f)
	}
}

// unionSources returns a stage of the events that st, a stage of the
// events table, selects and filter keeps, read as a UNION ALL of the
// copying sources' and the others' (Dialect.unionSources), filter
// compiled for each part. The parts select every column, of which the
// engine reads those the stages above name.
func (c *compiler) unionSources(st *stage, filter Expr) (*stage, error) {
	defer func() { c.sources = AllSources }()
	var parts []frag
	for _, src := range []SourceSplit{CopyingSources, OtherSources} {
		c.sources = src
		part := *st
		part.prewhere, part.where = slices.Clip(st.prewhere), slices.Clip(st.where)
		c.restrictSources(&part)
		f, err := c.expr(filter)
		if err != nil {
			return nil, err
		}
		part.where = append(part.where, f)
		part.cols, part.inner, part.order = nil, true, nil
		parts = append(parts, c.render(&part))
	}
	t := "_t" + strconv.Itoa(c.nextT)
	c.nextT++
	return &stage{from: sqlf("(", join(parts, " UNION ALL "), ") AS "+t), events: true, order: st.order}, nil
}

// makesTable says q's commands make a table of the events (stats,
// timechart, fields), which a store reads in one statement.
func makesTable(q *Query) bool {
	return slices.ContainsFunc(q.Pipes, func(p Pipe) bool {
		switch p.(type) {
		case *Stats, *Timechart, *Project:
			return true
		}
		return false
	})
}

// sourceList is copyingSources as the items of an SQL list.
func (c *compiler) sourceList() frag {
	var f frag
	for i, s := range copyingSources {
		if i > 0 {
			f = sqlf(f, ", ")
		}
		f = sqlf(f, param{s})
	}
	return f
}

// match compares the operand x, of the type p resolved, with p's value;
// at is the position of the comparison in the query, for errors.
func (c *compiler) match(x operand, p *predicate, at int) (frag, error) {
	d := c.d
	op := sqlOps[p.op]
	neg := func(f frag) frag {
		if p.op == Ne {
			return sqlf("NOT (", f, ")")
		}
		return f
	}
	if p.wild {
		pat := likePattern(p.val.Pattern)
		switch p.typ {
		case TypeList:
			return neg(d.listAnyILike(x.f, pat)), nil
		case TypeString, TypeIP, typeDoc:
			return neg(d.iLike(x.f, pat)), nil
		}
		return neg(d.iLike(d.toText(x.f), pat)), nil
	}
	switch p.typ {
	case TypeString:
		return sqlf(x.f, op, param{p.text}), nil
	case typeDoc:
		if p.op == Eq || p.op == Ne {
			return sqlf(x.f, op, param{p.text}), nil
		}
		return sqlf(d.toDouble(x.f), op, param{p.float}), nil
	case TypeList:
		return neg(d.listHas(x.f, p.text)), nil
	case TypeInt:
		return sqlf(x.f, op, param{p.num}), nil
	case TypeBool:
		return sqlf(x.f, op, param{p.b}), nil
	case TypeIP:
		if p.isPfx {
			lo, hi := ipRange(p.prefix)
			return neg(sqlf(x.bin, " BETWEEN ", param{lo}, " AND ", param{hi})), nil
		}
		return sqlf(x.f, op, param{p.addr.String()}), nil
	case TypeTime:
		t0 := d.timeValue(p.t0)
		if !p.day {
			return sqlf(x.f, op, t0), nil
		}
		// A date is the whole day [t0, t1).
		t1 := d.timeValue(p.t1)
		switch p.op {
		case Eq:
			return sqlf("(", x.f, " >= ", t0, " AND ", x.f, " < ", t1, ")"), nil
		case Ne:
			return sqlf("(", x.f, " < ", t0, " OR ", x.f, " >= ", t1, ")"), nil
		case Lt:
			return sqlf(x.f, " < ", t0), nil
		case Le:
			return sqlf(x.f, " < ", t1), nil
		case Gt:
			return sqlf(x.f, " >= ", t1), nil
		case Ge:
			return sqlf(x.f, " >= ", t0), nil
		}
	}
	return frag{}, c.errorf(at, "cannot compare a value of type %s", p.typ)
}
