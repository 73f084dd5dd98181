package query

import "testing"

func TestZZDebug(t *testing.T) {
	for _, s := range []string{
		`eventName:StopLogging`,
		`src_ip:203.0.113.0/24 AND NOT outcome:success`,
		`userIdentity.type:Root | stats count() by action`,
		`| timechart span=1h count() by source`,
		`action:*user* -christophe "stop logging" OR src_port>=1024`,
		`time:2024-07-31 | head 5 | stats count() as n, dc(actor) by action | sort -n | head 3`,
		`resources:arn* | fields action, eventName | sort action | head 2 | sort -time`,
		`| stats count() by action | fields action`,
		`a:b(c)`, `a:`, `(a`, `a)`, `| foo`, `src_ip:10.0.0.0/33`, `src_port:abc`, `time>2024-13-01`, `"abc`,
	} {
		q, err := Parse(s)
		if err != nil {
			t.Logf("%s\n%s", s, Caret(s, err))
			continue
		}
		out, err := Compile(Request{Query: q, Scope: Scope{Tenants: []string{"t1"}}, Limit: 100}, DuckDB)
		if err != nil {
			t.Logf("%s => %v", s, Caret(s, err))
			continue
		}
		t.Logf("%s\n  ast: %s\n  sql: %s\n  args: %v\n  cols: %v", s, q, out.Text, out.Args, out.Columns)
	}
}
