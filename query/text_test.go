package query

import (
	"math"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestRequiredText(t *testing.T) {
	tests := []struct {
		q    string
		want []string
	}{
		{``, nil},
		{`*`, nil},
		{`| stats count()`, nil},
		{`christophe`, []string{"christophe"}},
		{`"stop logging"`, []string{"stop logging"}},
		{`christophe "stop logging" action:CreateUser`, []string{"christophe", "stop logging"}},
		{`christophe AND (86.245.153.234 AND "x y")`, []string{"christophe", "86.245.153.234", "x y"}},
		{`christophe | stats count() by action`, []string{"christophe"}},
		{`a OR b`, nil},
		{`a (b OR c)`, []string{"a"}},
		{`a -b NOT c`, []string{"a"}},
		{`NOT (a b)`, nil},
		{`chris* a`, []string{"a"}},
		{`"a\*b"`, []string{"a*b"}},
		{`""`, nil},
		{`eventName:StopLogging`, nil},
	}
	for _, tt := range tests {
		if got := mustParse(t, tt.q).RequiredText(); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("RequiredText(%q) = %q, want %q", tt.q, got, tt.want)
		}
	}
	var q *Query
	if got := q.RequiredText(); got != nil {
		t.Errorf("nil query: %q", got)
	}
}

func TestTextPattern(t *testing.T) {
	tests := []struct {
		s    string
		want string
	}{
		{"", ""},
		{"christophe", `(?:^|[^\pL\pN\pM_])christophe(?:[^\pL\pN\pM_]|$)`},
		{"86.245.153.234", `(?:^|[^\pL\pN\pM_])86\x{2e}245\x{2e}153\x{2e}234(?:[^\pL\pN\pM_]|$)`},
		{"/alice", `\x{2f}alice(?:[^\pL\pN\pM_]|$)`},
		{"sshd[", `(?:^|[^\pL\pN\pM_])sshd\x{5b}`},
		{"-", `\x{2d}`},
		{"Élodie straße", `(?:^|[^\pL\pN\pM_])Élodie\x{20}straße(?:[^\pL\pN\pM_]|$)`},
		{"a\x00b\xffc", `(?:^|[^\pL\pN\pM_])a\x{0}b\x{fffd}c(?:[^\pL\pN\pM_]|$)`},
	}
	for _, tt := range tests {
		if got := textPattern(tt.s); got != tt.want {
			t.Errorf("textPattern(%q) = %s, want %s", tt.s, got, tt.want)
		}
	}

	// Go's regexp is RE2's syntax and semantics: the patterns find whole
	// words only, whatever the value holds.
	match := []struct {
		s, text string
		want    bool
	}{
		{"christophe", "Failed password for Christophe from", true},
		{"christophe", "christophe", true},
		{"christophe", "christopher", false},
		{"christophe", "_christophe", false},
		{"christophe", "christophe2", false},
		{"christophe", "christopheé", false},
		{"christophe", "(christophe)", true},
		{"86.245.153.234", `"86.245.153.234"`, true},
		{"86.245.153.234", `186.245.153.234`, false},
		{"86.245.153.234", `86.245.153.2345`, false},
		{"86.245.153", `86.245.153.234`, true},
		{"/alice", `user/alice"`, true},
		{"/alice", `user/alicia`, false},
		{"a.b*c", "xa.b*c", false},
		{"a.b*c", "a.bxc", false},
		{"a.b*c", "A.B*C!", true},
		{"a\nb", "a\nb", true},
		{"$x", "$x", true},
	}
	for _, tt := range match {
		re := regexp.MustCompile("(?i)" + textPattern(tt.s))
		if got := re.MatchString(tt.text); got != tt.want {
			t.Errorf("%q in %q: %v, want %v", tt.s, tt.text, got, tt.want)
		}
	}
}

// TestWordRunesRE2 checks IsWordRune against the class the patterns
// use, as DuckDB's RE2 reads it, for every code point: a store that
// splits words with IsWordRune and SQL that finds them with the pattern
// must agree on every character, or the store's index would rule out
// events the SQL matches.
func TestWordRunesRE2(t *testing.T) {
	db := openTestDB(t)
	var all, words strings.Builder
	for r := rune(1); r <= utf8.MaxRune; r++ {
		if !utf8.ValidRune(r) {
			continue
		}
		all.WriteRune(r)
		if IsWordRune(r) {
			words.WriteRune(r)
		}
	}
	var got string
	if err := db.QueryRow(`SELECT regexp_replace(?, '`+notWord+`', '', 'g')`, all.String()).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got == words.String() {
		return
	}
	want := []rune(words.String())
	for i, r := range []rune(got) {
		if i >= len(want) || r != want[i] {
			t.Fatalf("RE2 and IsWordRune first disagree at %U (RE2 keeps it) or %U (IsWordRune keeps it)", r, want[min(i, len(want)-1)])
		}
	}
	t.Fatalf("RE2 keeps %d word runes, IsWordRune %d", utf8.RuneCountInString(got), len(want))
}

func TestCompileSeqRanges(t *testing.T) {
	top := uint64(math.MaxUint64)
	tests := []struct {
		ranges [][2]uint64
		where  string
		args   []any
	}{
		{nil, "WHERE tenant IN (?) ORDER BY", []any{"t1"}},
		{[][2]uint64{}, "WHERE tenant IN (?) AND FALSE ORDER BY", []any{"t1"}},
		{[][2]uint64{{5, 4}}, "WHERE tenant IN (?) AND FALSE ORDER BY", []any{"t1"}},
		{[][2]uint64{{1, 10}}, "WHERE tenant IN (?) AND (seq BETWEEN %[1]s AND %[1]s) ORDER BY", []any{"t1", "1", "10"}},
		{[][2]uint64{{7, 7}}, "WHERE tenant IN (?) AND (seq = %[1]s) ORDER BY", []any{"t1", "7"}},
		// Sorted, and merged when they overlap or touch.
		{[][2]uint64{{30, 40}, {1, 10}, {11, 12}, {35, 50}, {60, top}, {70, 80}},
			"WHERE tenant IN (?) AND (seq BETWEEN %[1]s AND %[1]s OR seq BETWEEN %[1]s AND %[1]s OR seq >= %[1]s) ORDER BY",
			[]any{"t1", "1", "12", "30", "50", "60"}},
		{[][2]uint64{{0, top}, {top, top}}, "WHERE tenant IN (?) AND (seq >= %[1]s) ORDER BY", []any{"t1", "0"}},
	}
	for _, tt := range tests {
		out, err := Compile(Request{Scope: t1, SeqRanges: tt.ranges}, DuckDB)
		if err != nil {
			t.Fatal(err)
		}
		// Values of seq's own type: a cast of the column would defeat
		// the zonemaps that skip the row groups outside the ranges.
		tt.where = strings.ReplaceAll(tt.where, "%[1]s", "CAST(? AS UBIGINT)")
		if !strings.Contains(out.Text, tt.where) || !reflect.DeepEqual(out.Args, tt.args) {
			t.Errorf("ranges %v:\n got  %s %v\n want %q %v", tt.ranges, compact(out.Text), out.Args, tt.where, tt.args)
		}
	}

	// ClickHouse reads the ranges first (PREWHERE), in the statement that
	// reads the events table, not in the one over it.
	for _, q := range []string{"christophe", "christophe | head 5 | stats count()"} {
		out, err := Compile(Request{Query: mustParse(t, q), Scope: t1, SeqRanges: [][2]uint64{{1, 10}}}, ClickHouse)
		if err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(out.Text, " PREWHERE "); n != 1 || !strings.Contains(out.Text, "FROM events FINAL PREWHERE (seq BETWEEN toUInt64(?) AND toUInt64(?)) WHERE tenant IN (?) AND ") ||
			strings.Contains(out.Text, "WHERE tenant IN (?) AND (seq") {
			t.Errorf("%s, ClickHouse: %s", q, compact(out.Text))
		}
	}

	// The ranges restrict the events a query reads, before its filter
	// and its commands.
	db := openTestDB(t)
	for _, tt := range []struct {
		q      string
		ranges [][2]uint64
		want   []string
	}{
		{`*`, [][2]uint64{{2, 3}, {6, 6}}, []string{"6", "3", "2"}},
		{`christophe`, [][2]uint64{{3, top}}, []string{"4"}},
		{`christophe`, [][2]uint64{}, nil},
		{`| stats count()`, [][2]uint64{}, []string{"0"}},
		{`| stats count()`, [][2]uint64{{1, 2}, {4, 4}}, []string{"3"}},
	} {
		got := run(t, db, Request{Query: mustParse(t, tt.q), Scope: t1, SeqRanges: tt.ranges})
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s in %v: got %v, want %v", tt.q, tt.ranges, got, tt.want)
		}
	}
}

// TestSeqRangesPlan checks that DuckDB compares seq with the ranges in
// seq's own type: a cast of the column (to HUGEINT, for BIGINT
// parameters) made needle searches over 10M events four times slower, as
// the scan could no longer skip row groups by their seq zonemaps.
func TestSeqRangesPlan(t *testing.T) {
	db := openTestDB(t)
	out, err := Compile(Request{Query: mustParse(t, "christophe"), Scope: t1, SeqRanges: [][2]uint64{{2, 3}, {6, 6}, {9, math.MaxUint64}}}, DuckDB)
	if err != nil {
		t.Fatal(err)
	}
	var plan strings.Builder
	rows, err := db.Query("EXPLAIN "+out.Text, out.Args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var kind, text string
		if err := rows.Scan(&kind, &text); err != nil {
			t.Fatal(err)
		}
		plan.WriteString(text)
	}
	if p := plan.String(); !strings.Contains(p, "seq") || strings.Contains(p, "CAST(seq") {
		t.Errorf("the plan filters on a cast of seq, or not on seq:\n%s", p)
	}
}
