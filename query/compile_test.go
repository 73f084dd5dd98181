package query

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// compact shortens the events projection in SQL text for the tables below.
func compact(sql string) string {
	return strings.ReplaceAll(sql, strings.Join(eventColumns, ", "), "<events>")
}

func mustParse(t *testing.T, s string) *Query {
	t.Helper()
	q, err := Parse(s)
	if err != nil {
		t.Fatalf("Parse(%q): %v", s, err)
	}
	return q
}

func TestCompile(t *testing.T) {
	v4lo := []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 203, 0, 113, 0}
	v4hi := []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 203, 0, 113, 255}
	v6lo := []byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	v6hi := []byte{0x20, 0x01, 0x0d, 0xb8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	day := time.Date(2024, 7, 31, 0, 0, 0, 0, time.UTC).UnixNano()
	next := day + int64(24*time.Hour)
	tests := []struct {
		q       string
		sql     string
		args    []any
		columns []string
	}{
		{``,
			`SELECT <events> FROM events WHERE tenant IN (?) ORDER BY time DESC, seq DESC LIMIT ?`,
			[]any{"t1", int64(50)}, nil},
		{`requestParameters.userName:eve`,
			`SELECT <events> FROM events WHERE tenant IN (?) AND try(json_extract_string(coalesce(doc, raw), ?)) = ? ORDER BY time DESC, seq DESC LIMIT ?`,
			[]any{"t1", `$."requestParameters"."userName"`, "eve", int64(50)}, nil},
		// CloudTrail's eventName is the action column of CloudTrail events.
		{`eventName:StopLogging`,
			`SELECT <events> FROM events WHERE tenant IN (?) AND ((source = ? AND action = ?) OR (source NOT IN (?) AND try(json_extract_string(coalesce(doc, raw), ?)) = ?)) ORDER BY time DESC, seq DESC LIMIT ?`,
			[]any{"t1", "aws.cloudtrail", "StopLogging", "aws.cloudtrail", `$."eventName"`, "StopLogging", int64(50)}, nil},
		{`eventName:Stop*`,
			`SELECT <events> FROM events WHERE tenant IN (?) AND ((source = ? AND action ILIKE ? ESCAPE '\') OR (source NOT IN (?) AND try(json_extract_string(coalesce(doc, raw), ?)) ILIKE ? ESCAPE '\')) ORDER BY time DESC, seq DESC LIMIT ?`,
			[]any{"t1", "aws.cloudtrail", "Stop%", "aws.cloudtrail", `$."eventName"`, "Stop%", int64(50)}, nil},
		// The empty value matches an empty field, which the column holds as NULL.
		{`eventName:""`,
			`SELECT <events> FROM events WHERE tenant IN (?) AND try(json_extract_string(coalesce(doc, raw), ?)) = ? ORDER BY time DESC, seq DESC LIMIT ?`,
			[]any{"t1", `$."eventName"`, "", int64(50)}, nil},
		{`src_ip:203.0.113.0/24 AND NOT outcome:success`,
			`SELECT <events> FROM events WHERE tenant IN (?) AND (src_ip_bin BETWEEN ? AND ? AND NOT coalesce(outcome = ?, FALSE)) ORDER BY time DESC, seq DESC LIMIT ?`,
			[]any{"t1", v4lo, v4hi, "success", int64(50)}, nil},
		{`dst_ip!=2001:db8::/32`,
			`SELECT <events> FROM events WHERE tenant IN (?) AND NOT (dst_ip_bin BETWEEN ? AND ?) ORDER BY time DESC, seq DESC LIMIT ?`,
			[]any{"t1", v6lo, v6hi, int64(50)}, nil},
		{`src_ip:::ffff:10.0.0.1 OR src_ip:2001:DB8::1`,
			`SELECT <events> FROM events WHERE tenant IN (?) AND (src_ip = ? OR src_ip = ?) ORDER BY time DESC, seq DESC LIMIT ?`,
			[]any{"t1", "10.0.0.1", "2001:db8::1", int64(50)}, nil},
		{`action:*user* -christophe "Stop Logging"`,
			`SELECT <events> FROM events WHERE tenant IN (?) AND (action ILIKE ? ESCAPE '\' AND NOT coalesce((contains(lower(raw), lower(?)) AND regexp_matches(raw, ?, 'i')), FALSE) AND (contains(lower(raw), lower(?)) AND regexp_matches(raw, ?, 'i'))) ORDER BY time DESC, seq DESC LIMIT ?`,
			[]any{"t1", "%user%", "christophe", `(?:^|[^\pL\pN\pM_])christophe(?:[^\pL\pN\pM_]|$)`, "Stop Logging", `(?:^|[^\pL\pN\pM_])Stop\x{20}Logging(?:[^\pL\pN\pM_]|$)`, int64(50)}, nil},
		{`action:a%b_c\*d?`,
			`SELECT <events> FROM events WHERE tenant IN (?) AND action ILIKE ? ESCAPE '\' ORDER BY time DESC, seq DESC LIMIT ?`,
			[]any{"t1", `a\%b\_c*d_`, int64(50)}, nil},
		{`"C:\Windows\\*"`,
			`SELECT <events> FROM events WHERE tenant IN (?) AND raw ILIKE ? ESCAPE '\' ORDER BY time DESC, seq DESC LIMIT ?`,
			[]any{"t1", `%C:\\Windows\\%%`, int64(50)}, nil},
		{`"C:\Windows\*"`,
			`SELECT <events> FROM events WHERE tenant IN (?) AND (contains(lower(raw), lower(?)) AND regexp_matches(raw, ?, 'i')) ORDER BY time DESC, seq DESC LIMIT ?`,
			[]any{"t1", `C:\Windows*`, `(?:^|[^\pL\pN\pM_])C\x{3a}\x{5c}Windows\x{2a}`, int64(50)}, nil},
		{`src_port>=1024 seq<5 skewed:true`,
			`SELECT <events> FROM events WHERE tenant IN (?) AND (src_port >= ? AND seq < ? AND skewed = ?) ORDER BY time DESC, seq DESC LIMIT ?`,
			[]any{"t1", int64(1024), int64(5), true, int64(50)}, nil},
		{`src_port:22*`,
			`SELECT <events> FROM events WHERE tenant IN (?) AND CAST(src_port AS VARCHAR) ILIKE ? ESCAPE '\' ORDER BY time DESC, seq DESC LIMIT ?`,
			[]any{"t1", "22%", int64(50)}, nil},
		{`requestParameters.bytes>1e3`,
			`SELECT <events> FROM events WHERE tenant IN (?) AND TRY_CAST(try(json_extract_string(coalesce(doc, raw), ?)) AS DOUBLE) > ? ORDER BY time DESC, seq DESC LIMIT ?`,
			[]any{"t1", `$."requestParameters"."bytes"`, 1000.0, int64(50)}, nil},
		{`time:2024-07-31`,
			`SELECT <events> FROM events WHERE tenant IN (?) AND (time >= make_timestamp_ns(?) AND time < make_timestamp_ns(?)) ORDER BY time DESC, seq DESC LIMIT ?`,
			[]any{"t1", day, next, int64(50)}, nil},
		{`time<=2024-07-31 received>2024-07-31T00:00:00.5+02:00`,
			`SELECT <events> FROM events WHERE tenant IN (?) AND (time < make_timestamp_ns(?) AND received > make_timestamp_ns(?)) ORDER BY time DESC, seq DESC LIMIT ?`,
			[]any{"t1", next, day - int64(2*time.Hour) + int64(500*time.Millisecond), int64(50)}, nil},
		{`resources:arn:aws:s3:::b resources!=*x*`,
			`SELECT <events> FROM events WHERE tenant IN (?) AND (list_contains(resources, ?) AND NOT (len(list_filter(resources, lambda _e: _e ILIKE ? ESCAPE '\')) > 0)) ORDER BY time DESC, seq DESC LIMIT ?`,
			[]any{"t1", "arn:aws:s3:::b", "%x%", int64(50)}, nil},
		{`* | head 5`,
			`SELECT <events> FROM events WHERE tenant IN (?) AND TRUE ORDER BY time DESC, seq DESC LIMIT ?`,
			[]any{"t1", int64(5)}, nil},
		{`userIdentity.type:Root | stats count() by action`,
			`SELECT action AS _c0, count(*) AS _c1 FROM events WHERE tenant IN (?) AND try(json_extract_string(coalesce(doc, raw), ?)) = ? GROUP BY _c0 ORDER BY _c0 ASC LIMIT ?`,
			[]any{"t1", `$."userIdentity"."type"`, "Root", int64(50)}, []string{"action", "count"}},
		{`| stats count() as n, dc(userIdentity.arn) by src_ip | sort -n | head 10`,
			`SELECT src_ip AS _c0, count(*) AS _c1, count(DISTINCT try(json_extract_string(coalesce(doc, raw), ?))) AS _c2 FROM events WHERE tenant IN (?) GROUP BY _c0 ORDER BY _c1 DESC, _c0 ASC LIMIT ?`,
			[]any{`$."userIdentity"."arn"`, "t1", int64(10)}, []string{"src_ip", "n", "dc(userIdentity.arn)"}},
		{`| timechart span=1h count() by source`,
			`SELECT make_timestamp((epoch_us(time) // ?) * ?) AS _c0, source AS _c1, count(*) AS _c2 FROM events WHERE tenant IN (?) GROUP BY _c0, _c1 ORDER BY _c0 ASC, _c1 ASC LIMIT ?`,
			[]any{int64(3600e6), int64(3600e6), "t1", int64(50)}, []string{"_time", "source", "count"}},
		{`| fields action, eventName`,
			`SELECT time AS _c0, action AS _c1, try(json_extract_string(coalesce(doc, raw), ?)) AS _c2 FROM events WHERE tenant IN (?) ORDER BY time DESC, seq DESC LIMIT ?`,
			[]any{`$."eventName"`, "t1", int64(50)}, []string{"time", "action", "eventName"}},
		{`| head 100 | stats count()`,
			`SELECT count(*) AS _c0 FROM (SELECT <events> FROM events WHERE tenant IN (?) ORDER BY time DESC, seq DESC LIMIT ?) AS _t0`,
			[]any{"t1", int64(100)}, []string{"count"}},
		{`| stats count() by action | fields action`,
			`SELECT _c0 FROM (SELECT action AS _c0, count(*) AS _c1 FROM events WHERE tenant IN (?) GROUP BY _c0 ORDER BY _c0 ASC) AS _t0 ORDER BY _c0 ASC LIMIT ?`,
			[]any{"t1", int64(50)}, []string{"action"}},
	}
	for _, tt := range tests {
		out, err := Compile(Request{Query: mustParse(t, tt.q), Scope: Scope{Tenants: []string{"t1"}}, Limit: 50}, DuckDB)
		if err != nil {
			t.Errorf("Compile(%q): %v", tt.q, err)
			continue
		}
		if got := compact(out.Text); got != tt.sql {
			t.Errorf("Compile(%q)\n got  %s\n want %s", tt.q, got, tt.sql)
		}
		if !reflect.DeepEqual(out.Args, tt.args) {
			t.Errorf("Compile(%q) args\n got  %#v\n want %#v", tt.q, out.Args, tt.args)
		}
		if !reflect.DeepEqual(out.Columns, tt.columns) {
			t.Errorf("Compile(%q) columns = %q, want %q", tt.q, out.Columns, tt.columns)
		}
		if wantKind := map[bool]Kind{true: Events, false: Table}[tt.columns == nil]; out.Kind != wantKind {
			t.Errorf("Compile(%q) kind = %v, want %v", tt.q, out.Kind, wantKind)
		}
		if n := strings.Count(out.Text, "?"); n != len(out.Args) {
			t.Errorf("Compile(%q): %d placeholders, %d args", tt.q, n, len(out.Args))
		}
	}
}

func TestCompileScope(t *testing.T) {
	q := mustParse(t, "a")
	pat := textPattern("a")
	for _, tt := range []struct {
		scope Scope
		where string
		args  []any
	}{
		{Scope{}, "WHERE FALSE AND ", []any{"a", pat}},
		{Scope{Tenants: []string{}}, "WHERE FALSE AND ", []any{"a", pat}},
		// All reads every tenant but the system tenant, unless it names it.
		{Scope{All: true}, "WHERE tenant <> ? AND (contains", []any{SystemTenant, "a", pat}},
		{Scope{All: true, Tenants: []string{"x"}}, "WHERE tenant <> ? AND (contains", []any{SystemTenant, "a", pat}},
		{Scope{All: true, Tenants: []string{SystemTenant}}, "WHERE TRUE AND (contains", []any{"a", pat}},
		{Scope{Tenants: []string{SystemTenant}}, "WHERE tenant IN (?) AND ", []any{SystemTenant, "a", pat}},
		{Scope{Tenants: []string{"x", "y'"}}, "WHERE tenant IN (?, ?) AND ", []any{"x", "y'", "a", pat}},
	} {
		out, err := Compile(Request{Query: q, Scope: tt.scope}, DuckDB)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.Text, tt.where) || !reflect.DeepEqual(out.Args, tt.args) {
			t.Errorf("scope %+v: %s %v; want %q and args %v", tt.scope, compact(out.Text), out.Args, tt.where, tt.args)
		}
	}
}

func TestCompileTimeRange(t *testing.T) {
	from := time.Date(2024, 7, 1, 0, 0, 0, 0, time.FixedZone("CEST", 2*3600))
	to := from.Add(time.Hour)
	out, err := Compile(Request{Scope: Scope{Tenants: []string{"x"}}, From: from, To: to}, DuckDB)
	if err != nil {
		t.Fatal(err)
	}
	want := "WHERE tenant IN (?) AND time >= make_timestamp_ns(?) AND time < make_timestamp_ns(?) ORDER BY"
	if !strings.Contains(out.Text, want) || !reflect.DeepEqual(out.Args, []any{"x", from.UnixNano(), to.UnixNano()}) {
		t.Errorf("got %s %v", compact(out.Text), out.Args)
	}
	if strings.Contains(out.Text, "LIMIT") {
		t.Errorf("Limit 0 limits: %s", out.Text)
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		q   string
		col int
		msg string
	}{
		{`| stats count() by action | sort -actor`, 35, `unknown column "actor" (the columns here are action, count)`},
		{`| stats count() by action | fields actor`, 36, `unknown column "actor"`},
		{`| stats count() as n | stats sum(x)`, 34, `unknown column "x"`},
		{`| fields action | sort actor`, 24, "actor was dropped by an earlier fields command"},
		{`| fields action | stats count() by src_ip`, 36, "src_ip was dropped"},
		{`| stats sum(action)`, 13, "sum needs a number; action is text"},
		{`| stats avg(time)`, 13, "avg needs a number; time is time"},
		{`| stats min(resources)`, 13, "min needs a single-valued field"},
		{`| stats count() by action | timechart count()`, 29, "timechart needs the time of events"},
	}
	for _, tt := range tests {
		_, err := Compile(Request{Query: mustParse(t, tt.q), Scope: Scope{All: true}}, DuckDB)
		qe, ok := err.(*Error)
		if !ok {
			t.Errorf("Compile(%q) = %v, want an *Error", tt.q, err)
			continue
		}
		if qe.Column != tt.col || !strings.Contains(qe.Msg, tt.msg) {
			t.Errorf("Compile(%q):\n got  column %d: %s\n want column %d: %s", tt.q, qe.Column, qe.Msg, tt.col, tt.msg)
		}
	}
}

// A query built by hand, without Parse, compiles too and its errors
// still have a column.
func TestCompileHandBuilt(t *testing.T) {
	q := &Query{
		Filter: &Compare{Field: "action", Op: Eq, Value: Value{Pattern: "CreateUser"}},
		Pipes:  []Pipe{&Sort{Keys: []SortKey{{FieldRef: FieldRef{At: 7, Name: "x"}}}}, &Stats{Aggs: []Agg{{Func: "sum", Field: &FieldRef{At: 40, Name: "action"}}}}},
	}
	_, err := Compile(Request{Query: q, Scope: Scope{All: true}}, DuckDB)
	if err == nil || err.Error() != "query: column 41: sum needs a number; action is text" {
		t.Errorf("got %v", err)
	}
	q.Filter = &Compare{Field: "src_port", Op: Gt, Value: Value{Pattern: "x"}}
	if _, err := Compile(Request{Query: q}, DuckDB); err == nil {
		t.Error("bad number compiled")
	}
}

func TestFieldsTable(t *testing.T) {
	seen := map[string]bool{}
	for _, f := range Fields() {
		for _, name := range append([]string{f.Name}, f.Aliases...) {
			if seen[name] {
				t.Errorf("name %q twice", name)
			}
			seen[name] = true
			got, ok := LookupField(name)
			if !ok || got.Column != f.Column {
				t.Errorf("LookupField(%q) = %+v, %v", name, got, ok)
			}
		}
		if (f.Type == TypeIP) != (f.BinColumn != "") {
			t.Errorf("%s: type %v, bin column %q", f.Name, f.Type, f.BinColumn)
		}
		if !strings.Contains(strings.Join(eventColumns, " "), f.Column) {
			t.Errorf("%s: column %s not in the events projection", f.Name, f.Column)
		}
	}
	// Fields returns a copy.
	Fields()[0].Aliases = append(Fields()[0].Aliases, "x")
	Fields()[5].Aliases[0] = "changed"
	if _, ok := LookupField("id"); !ok || fmt.Sprint(Fields()[5].Aliases) != "[id]" {
		t.Error("Fields shares its table")
	}
	if _, ok := LookupField("Action"); ok {
		t.Error("LookupField is case-insensitive")
	}
	EventColumns()[0] = "changed"
	if eventColumns[0] != "seq" {
		t.Error("EventColumns shares its slice")
	}
}
