package duckdb

import (
	"strings"
	"testing"
	"unicode"

	"github.com/vigilsec/vigil/query"
)

// DuckDB's RE2 ignores case by the orbits of unicode.SimpleFold, by
// which the word index folds words (TestFoldOrbits in store/wordindex):
// every word rune matches every other rune of its orbit, ignoring case.
// Otherwise an event could match a needle without holding its items.
func TestFoldRE2(t *testing.T) {
	db := open(t)
	var pairs strings.Builder
	n := 0
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if !query.IsWordRune(r) {
			continue
		}
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			pairs.WriteString(string(r) + "\t" + string(f) + "\n")
			n++
		}
	}
	if n < 1000 {
		t.Fatalf("only %d pairs of runes fold together", n)
	}
	rows, err := db.SQL().Query(`SELECT p[1], p[2] FROM (SELECT string_split(l, chr(9)) AS p FROM unnest(string_split(?, chr(10))) AS t(l) WHERE l <> '')
		WHERE NOT regexp_matches(p[2], '^' || p[1] || '$', 'i')`, pairs.String())
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var r, f string
		if err := rows.Scan(&r, &f); err != nil {
			t.Fatal(err)
		}
		t.Errorf("RE2 does not match %q (%U) with %q (%U), ignoring case", r, []rune(r), f, []rune(f))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}
