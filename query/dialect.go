package query

import (
	"fmt"
	"time"
	"unicode"
)

// A Dialect is what the compiler needs to know about one SQL engine: the
// spelling of the expressions that differ between engines. The compiler
// builds everything else (SELECT, WHERE, GROUP BY, ORDER BY, LIMIT, AND,
// OR, comparisons, '?' parameters), which the engines spell alike. The
// package has a variable for each engine it supports: DuckDB and
// ClickHouse.
//
// Each function returns SQL text in which values appear only as '?'
// parameters carried beside it; its arguments are the compiler's own
// SQL fragments and the user's values.
type Dialect struct {
	name string

	// events is the table of events, as a FROM names it.
	events string
	// carry are the columns besides EventColumns that the dialect's
	// expressions read, which a subquery of events must select too.
	carry []string
	// seqPrewhere puts the condition on Request.SeqRanges in a PREWHERE
	// clause: ClickHouse then reads the other columns, the raw text
	// among them, only of the granules with rows in the ranges. (seq is
	// not in its sorting key's prefix, so it would not skip them by its
	// primary index, nor move the condition there itself.)
	seqPrewhere bool
	// unionSources makes a table (stats, timechart, fields) of a filter
	// on a document field that some parsers copy into a column
	// (SplitsSources) from a UNION ALL of two SELECTs, the events of the
	// copying sources and the others' (Request.Sources): in one, an
	// engine that evaluates both sides of an OR reads the column and the
	// document of every event. The engine must read only the columns the
	// SELECTs above the union name, as ClickHouse does.
	unionSources bool

	// timeValue is a parameter holding t, comparable with time columns.
	timeValue func(t time.Time) frag
	// uint64Text is an unsigned 64-bit integer written in decimal in s.
	uint64Text func(s string) frag
	// docText is the text at path of the event's original JSON document,
	// NULL when absent or when the document is not JSON.
	docText func(path []string) frag
	// iLike matches x case-insensitively against a LIKE pattern whose
	// escape character is '\'.
	iLike func(x frag, pattern string) frag
	// words reports whether x contains s as words, ignoring case:
	// pattern is textPattern(s), an RE2 pattern that checks the word
	// boundaries; s itself lets the engine rule out most rows with a
	// cheaper substring test before it runs the pattern.
	words func(x frag, s, pattern string) frag
	// listHas reports whether the list x has the element s.
	listHas func(x frag, s string) frag
	// listAnyILike reports whether any element of the list x matches
	// pattern as iLike does.
	listAnyILike func(x frag, pattern string) frag
	// toDouble converts x to a double, NULL when it is not a number.
	toDouble func(x frag) frag
	// toText converts x to text.
	toText func(x frag) frag
	// bucket truncates the time x to a multiple of span since the epoch.
	bucket func(x frag, span time.Duration) frag
	// countDistinct counts the distinct values of x.
	countDistinct func(x frag) frag
	// count is a count's value as a signed 64-bit integer, as every
	// engine's counts come back to callers; nil leaves it as is.
	count func(x frag) frag
	// values is the sorted list of distinct non-null values of x, or
	// of the elements of x when list is set.
	values func(x frag, list bool) frag
	// isTrue is x when x is true, false when it is false or NULL.
	isTrue func(x frag) frag
	// trueLit and falseLit are the constants true and false.
	trueLit, falseLit string
}

func (d *Dialect) String() string { return d.name }

// DuckDB is the dialect of the embedded store.
var DuckDB = &Dialect{
	name:   "duckdb",
	events: "events",
	// make_timestamp_ns takes nanoseconds since the epoch: exact, and
	// unlike a time.Time parameter (bound as TIMESTAMPTZ) independent of
	// the session's time zone.
	timeValue: func(t time.Time) frag {
		return sqlf("make_timestamp_ns(", param{t.UnixNano()}, ")")
	},
	uint64Text: func(s string) frag { return sqlf("CAST(", param{s}, " AS UBIGINT)") },
	// doc holds the document when raw is not it; try() turns the error of
	// a raw event that is not JSON (a syslog line) into NULL.
	docText: func(path []string) frag {
		return sqlf("try(json_extract_string(coalesce(doc, raw), ", param{jsonPath(path)}, "))")
	},
	iLike: func(x frag, pattern string) frag {
		return sqlf(x, " ILIKE ", param{pattern}, ` ESCAPE '\'`)
	},
	// contains(lower()) measured about twice as fast as ILIKE '%…%', and
	// regexp_matches (RE2) four to eight times slower than contains on
	// CloudTrail records: the AND runs the pattern only on the rows that
	// hold the text, which DuckDB evaluates first as the cheaper test.
	// A needle without letters, such as an address, is the same in any
	// case, and contains alone spares lowering every candidate document.
	words: func(x frag, s, pattern string) frag {
		if caseless(s) {
			return sqlf("(contains(", x, ", ", param{s}, ") AND regexp_matches(", x, ", ", param{pattern}, ", 'i'))")
		}
		return sqlf("(contains(lower(", x, "), lower(", param{s}, ")) AND regexp_matches(", x, ", ", param{pattern}, ", 'i'))")
	},
	listHas: func(x frag, s string) frag {
		return sqlf("list_contains(", x, ", ", param{s}, ")")
	},
	listAnyILike: func(x frag, pattern string) frag {
		return sqlf("len(list_filter(", x, ", lambda _e: _e ILIKE ", param{pattern}, ` ESCAPE '\')) > 0`)
	},
	toDouble: func(x frag) frag { return sqlf("TRY_CAST(", x, " AS DOUBLE)") },
	toText:   func(x frag) frag { return sqlf("CAST(", x, " AS VARCHAR)") },
	bucket: func(x frag, span time.Duration) frag {
		us := span.Microseconds()
		return sqlf("make_timestamp((epoch_us(", x, ") // ", param{us}, ") * ", param{us}, ")")
	},
	countDistinct: func(x frag) frag { return sqlf("count(DISTINCT ", x, ")") },
	// A group without a value has an empty list, as on ClickHouse, not
	// NULL.
	values: func(x frag, list bool) frag {
		if list {
			return sqlf("coalesce(list_sort(list_distinct(flatten(list(", x, ")))), [])")
		}
		return sqlf("coalesce(list_sort(list(DISTINCT ", x, ") FILTER (WHERE ", x, " IS NOT NULL)), [])")
	},
	isTrue:   func(x frag) frag { return sqlf("coalesce(", x, ", FALSE)") },
	trueLit:  "TRUE",
	falseLit: "FALSE",
}

// A frag is a fragment of SQL and the arguments of its '?' parameters,
// in order.
type frag struct {
	sql  string
	args []any
}

// A param is a value that becomes a '?' parameter.
type param struct{ v any }

// sqlf concatenates parts: a string is SQL text written by this package
// (never user input), a frag is inserted with its arguments, a param
// becomes '?'. Keeping text and arguments together is what keeps the
// arguments in the order of their placeholders.
func sqlf(parts ...any) frag {
	var f frag
	for _, p := range parts {
		switch p := p.(type) {
		case string:
			f.sql += p
		case frag:
			f.sql += p.sql
			f.args = append(f.args, p.args...)
		case param:
			f.sql += "?"
			f.args = append(f.args, p.v)
		default:
			panic(fmt.Sprintf("query: sqlf: unexpected %T", p))
		}
	}
	return f
}

// join concatenates fragments with sep between them.
func join(fs []frag, sep string) frag {
	var out frag
	for i, f := range fs {
		if i > 0 {
			out.sql += sep
		}
		out.sql += f.sql
		out.args = append(out.args, f.args...)
	}
	return out
}

// caseless reports whether s has no rune that another matches ignoring
// case: digits, punctuation, spaces.
func caseless(s string) bool {
	for _, r := range s {
		if unicode.SimpleFold(r) != r {
			return false
		}
	}
	return true
}

// readingFrom returns the dialect reading events from another table.
func (d *Dialect) readingFrom(events string) *Dialect {
	c := *d
	c.events = events
	return &c
}
