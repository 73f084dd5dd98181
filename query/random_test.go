package query

import (
	"errors"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestRandomQueries builds queries from the grammar's pieces, at random
// but reproducibly, and runs each on DuckDB: every query Compile accepts
// must be SQL the engine accepts. The fuzzer finds lexical oddities; this
// finds combinations of commands.
func TestRandomQueries(t *testing.T) {
	db := openTestDB(t)
	terms := []string{
		`action:CreateUser`, `action:*user*`, `action!=x`, `-christophe`, `"stop logging"`, `*`,
		`src_ip:10.0.0.0/8`, `src_ip!=2001:db8::/32`, `dst_ip:10.9.9.9`, `src_port>=1024`, `seq<3`,
		`time:2024-07-31`, `time>2024-07-31T10:00:00Z`, `received<=2024-08-01`, `skewed:false`,
		`resources:*eve`, `resources!=x`, `eventName:StopLogging`, `requestParameters.bytes>1`,
		`userIdentity.type:Ro?t`, `NOT outcome:success`, `(env:prod OR cloud:gcp)`, `id:ev-1`,
	}
	fields := []string{"action", "actor", "src_ip", "time", "seq", "resources", "skewed", "src_port", "eventName", "userIdentity.type", "env"}
	aggs := []string{"count()", "count(%f)", "dc(%f)", "values(%f)", "min(%f)", "max(%f)", "sum(src_port)", "avg(requestParameters.bytes)"}
	r := rand.New(rand.NewPCG(1, 2))
	pick := func(s []string) string { return s[r.IntN(len(s))] }

	seq := 0 // numbers the names of aggregates, so that none is taken
	// pipe returns a command using names from cols, the columns of the
	// previous table (nil while the rows are events).
	pipe := func(cols []string) (string, []string) {
		names := cols
		if names == nil {
			names = fields
		}
		switch r.IntN(6) {
		case 0, 1:
			by := []string{pick(names)}
			if r.IntN(2) == 0 {
				by = append(by, pick(names))
				if by[0] == by[1] {
					by = by[:1]
				}
			}
			agg := strings.ReplaceAll(pick(aggs), "%f", pick(names))
			if cols != nil {
				agg = "count()"
			}
			seq++
			n := "n" + strconv.Itoa(seq)
			return "stats " + agg + " as " + n + " by " + strings.Join(by, ", "), append(by, n)
		case 2:
			if cols != nil && !slices.Contains(cols, "time") {
				return "head 3", cols
			}
			seq++
			return "timechart span=" + pick([]string{"1s", "5m", "1h", "1d"}) + " count() as t" + strconv.Itoa(seq) + " by " + pick(names), nil
		case 3:
			return "sort " + pick([]string{"-", "+", ""}) + pick(names) + ", -" + pick(names), cols
		case 4:
			return "head " + pick([]string{"1", "2", "10"}), cols
		default:
			f := []string{pick(names), pick(names)}
			if f[0] == f[1] {
				f = f[:1]
			}
			if cols == nil {
				return "fields " + strings.Join(f, ", "), append([]string{"time"}, f...)
			}
			return "fields " + strings.Join(f, ", "), f
		}
	}

	n := 400
	if testing.Short() {
		n = 50
	}
	ran := 0
	for range n {
		var b strings.Builder
		for range r.IntN(4) {
			if b.Len() > 0 {
				b.WriteString(pick([]string{" ", " AND ", " OR "}))
			}
			b.WriteString(pick(terms))
		}
		var cols []string
		for range r.IntN(5) {
			var p string
			p, cols = pipe(cols)
			// After timechart the columns are _time, the by field and tN.
			if strings.HasPrefix(p, "timechart") {
				f := strings.Fields(p)
				cols = []string{"_time", f[len(f)-1], f[len(f)-3]}
			}
			b.WriteString(" | " + p)
		}
		s := b.String()
		q, err := Parse(s)
		if err != nil {
			t.Errorf("Parse(%q): %v", s, err)
			continue
		}
		out, err := Compile(Request{Query: q, Scope: t1, Limit: 20}, DuckDB)
		if err != nil {
			var qe *Error
			if !errors.As(err, &qe) {
				t.Errorf("Compile(%q): %v", s, err)
			}
			continue // a name the generator could not know was dropped
		}
		rows, err := db.Query(out.Text, out.Args...)
		if err != nil {
			t.Errorf("%s\n%s\n%v", s, out.Text, err)
			continue
		}
		for rows.Next() {
		}
		if err := rows.Err(); err != nil {
			t.Errorf("%s: %v", s, err)
		}
		rows.Close()
		ran++
	}
	if ran < n*2/3 {
		t.Errorf("only %d of %d queries compiled", ran, n)
	}
}
