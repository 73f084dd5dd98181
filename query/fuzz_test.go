package query

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

var fuzzSeeds = []string{
	``,
	`eventName:StopLogging`,
	`src_ip:203.0.113.0/24 AND NOT outcome:success`,
	`userIdentity.type:Root | stats count() by action`,
	`| timechart span=1h count() by source`,
	`action:*user* -christophe "stop logging" OR (src_port>=1024 dst_port<=22)`,
	`src_ip:2001:db8::/32 src_ip!=10.0.0.1 dst_ip:"::1"`,
	`time>=2024-07-31 time<2024-08-01T10:00:00.5+02:00 received:2024-07-31`,
	`resources:arn:aws:s3:::* skewed:true seq>5`,
	`requestParameters.bytes>=1e3 protoPayload.methodName:*SetIamPolicy`,
	`a\*b "c\"d" e\\f "C:\Windows"`,
	`| stats count() as n, dc(actor), values(src_ip), min(time), max(src_port), sum(seq), avg(x.y) by action, env | sort -n, action | head 5`,
	`| head 3 | stats count() | fields count`,
	`| fields action, eventName | sort -eventName | head 2 | sort action`,
	`| stats count() by action | stats count() as k by count | sort k`,
	`NOT NOT -(-a OR b) AND ((c))`,
	`x:"" y:* z:? "" *`,
}

func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	db := openTestDB(f)
	f.Fuzz(func(t *testing.T, s string) {
		q, err := Parse(s)
		if err != nil {
			var qe *Error
			if !errors.As(err, &qe) {
				t.Fatalf("Parse(%q) error %T %v, want *Error", s, err, err)
			}
			if qe.Pos < 0 || qe.Pos > len(s) || qe.Column < 1 || qe.Column > qe.Pos+1 {
				t.Fatalf("Parse(%q): error at pos %d column %d", s, qe.Pos, qe.Column)
			}
			_ = Caret(s, err)
			return
		}

		// The canonical form parses to itself.
		canon := q.String()
		q2, err := Parse(canon)
		if err != nil {
			t.Fatalf("Parse(%q).String() = %q does not parse: %v", s, canon, err)
		}
		if got := q2.String(); got != canon {
			t.Fatalf("Parse(%q).String() = %q, which parses to %q", s, canon, got)
		}

		out, err := Compile(Request{Query: q, Scope: Scope{Tenants: []string{"t1"}}, Limit: 10}, DuckDB)
		if err != nil {
			var qe *Error
			if !errors.As(err, &qe) {
				t.Fatalf("Compile(%q) error %T %v, want *Error", s, err, err)
			}
			return
		}
		if n := strings.Count(out.Text, "?"); n != len(out.Args) {
			t.Fatalf("Compile(%q): %d placeholders, %d args: %s", s, n, len(out.Args), out.Text)
		}
		// The canonical form means the same.
		out2, err := Compile(Request{Query: q2, Scope: Scope{Tenants: []string{"t1"}}, Limit: 10}, DuckDB)
		if err != nil {
			t.Fatalf("Compile(%q) of the canonical form %q: %v", s, canon, err)
		}
		if out2.Text != out.Text || !reflect.DeepEqual(out2.Args, out.Args) {
			t.Fatalf("%q and its canonical form %q compile differently:\n%s %v\n%s %v", s, canon, out.Text, out.Args, out2.Text, out2.Args)
		}
		// DuckDB takes the SQL and runs it.
		rows, err := db.Query(out.Text, out.Args...)
		if err != nil {
			t.Fatalf("Compile(%q): DuckDB: %v\n%s\n%#v", s, err, out.Text, out.Args)
		}
		for rows.Next() {
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("Compile(%q): DuckDB: %v\n%s\n%#v", s, err, out.Text, out.Args)
		}
		rows.Close()
	})
}
