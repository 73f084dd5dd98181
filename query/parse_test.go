package query

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// sexpr renders an expression with its structure spelled out.
func sexpr(e Expr) string {
	switch e := e.(type) {
	case nil:
		return "nil"
	case *And:
		return "and(" + sexprs(e.Args) + ")"
	case *Or:
		return "or(" + sexprs(e.Args) + ")"
	case *Not:
		return "not(" + sexpr(e.X) + ")"
	case *Compare:
		return fmt.Sprintf("cmp(%s %s %s)", e.Field, e.Op, sval(e.Value))
	case *Text:
		return "text(" + sval(e.Value) + ")"
	}
	return fmt.Sprintf("?%T", e)
}

func sexprs(es []Expr) string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = sexpr(e)
	}
	return strings.Join(parts, " ")
}

func sval(v Value) string {
	s := fmt.Sprintf("%q", v.Pattern)
	if v.Quoted {
		s = "q" + s
	}
	return s
}

func TestParseFilter(t *testing.T) {
	tests := []struct{ q, want string }{
		{``, `nil`},
		{`   `, `nil`},
		{`eventName:StopLogging`, `cmp(eventName : "StopLogging")`},
		{`action=CreateUser`, `cmp(action : "CreateUser")`},
		{`action:"Create User"`, `cmp(action : q"Create User")`},
		{`action:Get*`, `cmp(action : "Get*")`},
		{`action:Get\*`, `cmp(action : "Get\\*")`},
		{`action:Get\?x\\`, `cmp(action : "Get\\?x\\\\")`},
		{`action:a\ b\(c\)`, `cmp(action : "a b(c)")`},
		{`action:"a \"b\" *"`, `cmp(action : q"a \"b\" *")`},
		{`path:C:\Windows\System32`, `cmp(path : "C:\\\\Windows\\\\System32")`},
		{`path:"C:\Windows"`, `cmp(path : q"C:\\\\Windows")`},
		{`src_port>=1024`, `cmp(src_port >= "1024")`},
		{`src_port>1024`, `cmp(src_port > "1024")`},
		{`src_port<1024`, `cmp(src_port < "1024")`},
		{`src_port<=1024`, `cmp(src_port <= "1024")`},
		{`action!=x`, `cmp(action != "x")`},
		{`src_ip:2001:db8::1`, `cmp(src_ip : "2001:db8::1")`},
		{`src_ip:"2001:db8::1"`, `cmp(src_ip : q"2001:db8::1")`},
		{`src_ip:10.0.0.0/8`, `cmp(src_ip : "10.0.0.0/8")`},
		{`userIdentity.type:Root`, `cmp(userIdentity.type : "Root")`},
		{`@timestamp:x`, `cmp(@timestamp : "x")`},
		{`christophe`, `text("christophe")`},
		{`"stop logging"`, `text(q"stop logging")`},
		{`1.2.3.4:80`, `text("1.2.3.4:80")`},
		{`a!b`, `text("a!b")`},
		{`a b c`, `and(text("a") text("b") text("c"))`},
		{`a AND b`, `and(text("a") text("b"))`},
		{`a OR b`, `or(text("a") text("b"))`},
		{`a and b`, `and(text("a") text("and") text("b"))`},
		{`a b OR c`, `or(and(text("a") text("b")) text("c"))`},
		{`a OR b c`, `or(text("a") and(text("b") text("c")))`},
		{`a OR b AND c OR d`, `or(text("a") and(text("b") text("c")) text("d"))`},
		{`(a OR b) c`, `and(or(text("a") text("b")) text("c"))`},
		{`NOT a b`, `and(not(text("a")) text("b"))`},
		{`NOT (a b)`, `not(and(text("a") text("b")))`},
		{`NOT(a)`, `not(text("a"))`},
		{`NOT NOT a`, `not(not(text("a")))`},
		{`-a`, `not(text("a"))`},
		{`-action:x`, `not(cmp(action : "x"))`},
		{`a -(b OR c)`, `and(text("a") not(or(text("b") text("c"))))`},
		{`a-b`, `text("a-b")`},
		{`((a))`, `text("a")`},
		{`src_ip:203.0.113.0/24 AND NOT outcome:success`, `and(cmp(src_ip : "203.0.113.0/24") not(cmp(outcome : "success")))`},
		{"a\tb\nc", `and(text("a") text("b") text("c"))`},
		{`ünïcödé`, `text("ünïcödé")`},
		{`action:""`, `cmp(action : q"")`},
		{`(a)|stats count()`, `text("a")`},
	}
	for _, tt := range tests {
		q, err := Parse(tt.q)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.q, err)
			continue
		}
		if got := sexpr(q.Filter); got != tt.want {
			t.Errorf("Parse(%q)\n got  %s\n want %s", tt.q, got, tt.want)
		}
		// The canonical form parses to the same query.
		q2, err := Parse(q.String())
		if err != nil {
			t.Errorf("Parse(%q) of String of %q: %v", q.String(), tt.q, err)
			continue
		}
		unq := func(s string) string { return strings.ReplaceAll(s, `q"`, `"`) }
		if got := sexpr(q2.Filter); unq(got) != unq(tt.want) {
			t.Errorf("String of %q = %q parses to %s", tt.q, q.String(), got)
		}
	}
}

func TestParsePositions(t *testing.T) {
	q, err := Parse(`a  NOT action:"x y" "ph"`)
	if err != nil {
		t.Fatal(err)
	}
	and := q.Filter.(*And)
	if got := and.Args[0].Pos(); got != 0 {
		t.Errorf("word at %d, want 0", got)
	}
	not := and.Args[1].(*Not)
	cmp := not.X.(*Compare)
	if not.At != 3 || cmp.At != 7 || cmp.Value.At != 14 {
		t.Errorf("NOT at %d, compare at %d, value at %d; want 3, 7, 14", not.At, cmp.At, cmp.Value.At)
	}
	if got := and.Args[2].Pos(); got != 20 {
		t.Errorf("phrase at %d, want 20", got)
	}
}

func TestParsePipes(t *testing.T) {
	tests := []struct{ q, want string }{
		{`| stats count()`, `| stats count()`},
		{`| stats count`, `| stats count()`},
		{`| STATS Count() AS n BY action`, `| stats count() as n by action`},
		{`| stats count() as n, dc(actor) values(src_ip) by action, userIdentity.arn`,
			`| stats count() as n, dc(actor), values(src_ip) by action, userIdentity.arn`},
		{`| stats c(), distinct_count(actor), mean(src_port), min(time), max(time), sum(seq) by a b`,
			`| stats count(), dc(actor), avg(src_port), min(time), max(time), sum(seq) by a, b`},
		{`| timechart span=1h count() by source`, `| timechart span=1h count() by source`},
		{`| timechart span=90m count()`, `| timechart span=90m count()`},
		{`| timechart span=120m`, `| timechart span=2h count()`},
		{`| timechart`, `| timechart span=1h count()`},
		{`| timechart span=1d dc(actor) by env`, `| timechart span=1d dc(actor) by env`},
		{`| sort -time`, `| sort -time`},
		{`| sort -a, +b c`, `| sort -a, b, c`},
		{`| sort -dc(actor), count()`, `| sort -dc(actor), count`},
		{`| head`, `| head 10`},
		{`| head 5`, `| head 5`},
		{`| fields action, src_ip userIdentity.arn`, `| fields action, src_ip, userIdentity.arn`},
		{`a | stats count() by action | sort -count | head 3`, `a | stats count() by action | sort -count | head 3`},
	}
	for _, tt := range tests {
		q, err := Parse(tt.q)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.q, err)
			continue
		}
		if got := q.String(); got != tt.want {
			t.Errorf("Parse(%q).String()\n got  %s\n want %s", tt.q, got, tt.want)
		}
	}

	q, err := Parse(`x | timechart span=5m dc(actor) as n by source | sort -n`)
	if err != nil {
		t.Fatal(err)
	}
	tc := q.Pipes[0].(*Timechart)
	if tc.Span != 5*time.Minute || tc.At != 4 || tc.Aggs[0].Name() != "n" || tc.Aggs[0].Field.Name != "actor" || tc.By[0].Name != "source" {
		t.Errorf("timechart = %+v", tc)
	}
	s := q.Pipes[1].(*Sort)
	if len(s.Keys) != 1 || !s.Keys[0].Desc || s.Keys[0].Name != "n" {
		t.Errorf("sort = %+v", s)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		q   string
		col int
		msg string
	}{
		{`action:`, 8, "expected value after ':'"},
		{`eventName:StopLogging action: x`, 30, "expected value after ':'"},
		{`src_port>= 5`, 11, "expected value after '>='"},
		{`action:(a OR b)`, 8, "expected value after ':'"},
		{`"stop logging`, 1, "unterminated quoted string"},
		{`action:"abc`, 8, "unterminated quoted string"},
		{`a "b\"`, 3, "unterminated quoted string"},
		{`"a"b`, 4, `unexpected 'b' after a quoted value`},
		{`action:a"b"`, 9, `unexpected '"' in a value`},
		{`foo(bar)`, 4, `unexpected '(' in a word`},
		{`(a OR b`, 1, "unclosed '('"},
		{`((a) OR (b)`, 1, "unclosed '('"},
		{`a)`, 2, "unexpected ')' without '('"},
		{`)`, 1, "unexpected ')' without '('"},
		{`()`, 2, "expected a term after '('"},
		{`a OR`, 5, "expected a term after OR"},
		{`a AND | stats count()`, 7, "expected a term after AND"},
		{`NOT`, 4, "expected a term after NOT"},
		{`- a`, 1, "expected a term after '-'"},
		{`a..b:c`, 1, `bad field name "a..b"`},
		{`a.:c`, 1, `bad field name "a."`},
		{`|`, 2, "expected a command after '|'"},
		{`a | `, 5, "expected a command after '|'"},
		{`a | foo`, 5, `unknown command "foo"`},
		{`| stats`, 8, "expected an aggregate after stats"},
		{`| stats by x`, 9, "expected an aggregate after stats"},
		{`| stats foo()`, 9, `unknown function "foo"`},
		{`| stats dc()`, 9, "dc needs a field"},
		{`| stats dc`, 11, "expected '(' after dc"},
		{`| stats count( by x`, 19, "expected ')'"},
		{`| stats count() as`, 19, "expected a name after 'as'"},
		{`| stats count() as a.b`, 20, "expected a name after 'as'"},
		{`| stats count(), count()`, 18, `duplicate column "count"`},
		{`| stats count() by`, 19, "expected a field name after by"},
		{`| stats count() by a, a`, 23, "a appears twice"},
		{`| stats count() by a,`, 22, "expected a field name"},
		{`| timechart span=1w count()`, 18, `bad span "1w"`},
		{`| timechart span=0h count()`, 18, `bad span "0h"`},
		{`| timechart span=h`, 18, `bad span "h"`},
		{`| timechart span=100000d`, 18, `bad span`},
		{`| timechart span 1h`, 13, "expected span=<duration>"},
		{`| timechart count() as _time`, 13, "_time is taken"},
		{`| sort`, 7, "expected a field to sort by"},
		{`| sort -`, 9, "expected a field to sort by"},
		{`| head 0`, 8, `bad number "0"`},
		{`| head x`, 8, `bad number "x"`},
		{`| head 5 6`, 10, "unexpected '6' after head"},
		{`| fields`, 9, "expected a field name after fields"},
		{`| fields a ; drop`, 12, `unexpected ';'`},
		{`| fields ü`, 10, `unexpected 'ü'`},
		{`"a"ü`, 4, `unexpected 'ü' after a quoted value`},
		{`src_ip:10.0.0.0/33`, 8, `bad CIDR prefix "10.0.0.0/33"`},
		{`src_ip:10.0.0/8`, 8, `bad CIDR prefix`},
		{`src_ip:010.0.0.1`, 8, `bad IP address "010.0.0.1"`},
		{`dst_ip:example.com`, 8, `bad IP address`},
		{`src_ip>10.0.0.1`, 1, "src_ip is an IP address"},
		{`src_port:abc`, 10, `bad number "abc"`},
		{`src_port>1.5`, 10, `bad number "1.5"`},
		{`seq>=99999999999999999999`, 6, `bad number`},
		{`requestParameters.bytes>lots`, 25, `bad number "lots"`},
		{`time>2024-13-01`, 6, `bad time "2024-13-01"`},
		{`time>=yesterday`, 7, `bad time`},
		{`received:2024-07-31T25:00:00Z`, 10, `bad time`},
		{`time>9999-01-01`, 6, `out of range`},
		{`skewed:maybe`, 8, `bad value "maybe"`},
		{`skewed>true`, 1, `skewed is true or false`},
		{`action>x`, 1, "action is text"},
		{`resources<x`, 1, "resources is a list"},
		{`src_port>1*`, 10, "wildcards work only with ':' and '!='"},
		{"a \xff", 3, "invalid UTF-8"},
		{`ünï action:`, 12, "expected value after ':'"}, // columns count characters
		{strings.Repeat("(", 200) + "a" + strings.Repeat(")", 200), 101, "nested too deeply"},
		{strings.Repeat("NOT ", 200) + "a", 401, "nested too deeply"},
	}
	for _, tt := range tests {
		_, err := Parse(tt.q)
		qe, ok := err.(*Error)
		if !ok {
			t.Errorf("Parse(%q) = %v, want an *Error", tt.q, err)
			continue
		}
		if qe.Column != tt.col || !strings.Contains(qe.Msg, tt.msg) {
			t.Errorf("Parse(%q):\n got  column %d: %s\n want column %d: %s", tt.q, qe.Column, qe.Msg, tt.col, tt.msg)
		}
		if want := fmt.Sprintf("query: column %d: %s", qe.Column, qe.Msg); qe.Error() != want {
			t.Errorf("Error() = %q, want %q", qe.Error(), want)
		}
	}
}

func TestCaret(t *testing.T) {
	q := "action:CreateUser AND src_ip:10.0.0.0/33"
	_, err := Parse(q)
	want := "" +
		"action:CreateUser AND src_ip:10.0.0.0/33\n" +
		"                             ^\n" +
		`query: column 30: bad CIDR prefix "10.0.0.0/33"`
	if got := Caret(q, err); got != want {
		t.Errorf("Caret:\n%s\nwant:\n%s", got, want)
	}

	// Tabs are kept so the caret lines up; only the line at fault is shown.
	q = "a\n\tb:\tc"
	_, err = Parse(q)
	want = "\tb:\tc\n\t  ^\nquery: column 6: expected value after ':'"
	if got := Caret(q, err); got != want {
		t.Errorf("Caret:\n%q\nwant:\n%q", got, want)
	}

	if got := Caret("x", fmt.Errorf("other")); got != "other" {
		t.Errorf("Caret of a plain error = %q", got)
	}
}
