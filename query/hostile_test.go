package query

import (
	"slices"
	"strings"
	"testing"
)

// hostile are values a user might type to break out of a string literal,
// comment out the rest of a statement, or confuse a JSON path. Each holds
// the marker "pwn" so that the tests can look for it in SQL text.
var hostile = []string{
	`pwn'); DROP TABLE events;--`,
	`pwn' OR '1'='1`,
	`pwn')--`,
	`pwn\'; SELECT 1; --`,
	`pwn"; DROP TABLE events; --`,
	`pwn/* comment */`,
	"pwn\x00after NUL",
	"pwn\n\tnewline and tab",
	"pwn ünïcödé 😀 \u202e right-to-left",
	`pwn$."x"[0]`,
	`pwn%_\`,
	`pwn\\\\`,
	`pwn*?`,
	`pwn E'\x27'`,
	`pwn` + strings.Repeat(`'"\`, 200),
	`pwn) OR TRUE OR (`,
	`pwn :: || ;`,
}

// checkSQL asserts that no user text reached the SQL text.
func checkSQL(t *testing.T, q string, out *SQL) {
	t.Helper()
	if strings.Contains(strings.ToLower(out.Text), "pwn") {
		t.Errorf("%s: user text in SQL: %s", q, out.Text)
	}
	for _, c := range []byte(out.Text) {
		if c < ' ' || c > '~' {
			t.Errorf("%s: byte %#x in SQL: %q", q, c, out.Text)
			break
		}
	}
	if n := strings.Count(out.Text, "?"); n != len(out.Args) {
		t.Errorf("%s: %d placeholders, %d args", q, n, len(out.Args))
	}
}

func TestHostileValues(t *testing.T) {
	db := openTestDB(t)
	// %s is replaced by the value, quoted; %e by the value escaped for
	// use inside quotes. rows is how many rows the query returns: none
	// match the marker; -1 for negations, which match other events.
	templates := []struct {
		q    string
		rows int
	}{
		{`action:%s`, 0},
		{`action!=%s`, -1},
		{`eventName:%s`, 0},
		{`userIdentity.type:%s`, 0},
		{`requestParameters.bytes!=%s`, -1},
		{`resources:%s`, 0},
		{`%s`, 0},
		{`NOT %s`, -1},
		{`message:"*%e*"`, 0},
		{`resources:"*%e"`, 0},
		{`"%e*"`, 0},
		{`zzz OR (b AND %s) | stats count() by action`, 0},
		{`| stats count() by action | sort -count | head 1 | stats count() as n`, 1},
	}
	for _, tmpl := range templates {
		fill := func(v string) string {
			e := Quote(v)
			return strings.NewReplacer("%s", e, "%e", e[1:len(e)-1]).Replace(tmpl.q)
		}
		// The SQL of a hostile value is the SQL of a plain one: values
		// change only the arguments.
		plain, err := Compile(Request{Query: mustParse(t, fill("plain")), Scope: t1}, DuckDB)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range hostile {
			qs := fill(h)
			q, err := Parse(qs)
			if err != nil {
				t.Errorf("Parse(%q): %v", qs, err)
				continue
			}
			out, err := Compile(Request{Query: q, Scope: t1}, DuckDB)
			if err != nil {
				t.Errorf("Compile(%q): %v", qs, err)
				continue
			}
			checkSQL(t, qs, out)
			if out.Text != plain.Text {
				t.Errorf("%s: SQL differs from that of a plain value:\n%s\n%s", qs, out.Text, plain.Text)
			}
			// The value reaches the arguments intact.
			found := slices.ContainsFunc(out.Args, func(a any) bool {
				s, ok := a.(string)
				return ok && strings.Contains(s, h)
			})
			if !found && !strings.Contains(tmpl.q, "*") && strings.Contains(tmpl.q, "%") {
				t.Errorf("%s: value not in args %q", qs, out.Args)
			}
			// And the database takes it as data.
			rows, err := db.Query(out.Text, out.Args...)
			if err != nil {
				t.Errorf("running %s: %v", qs, err)
				continue
			}
			n := 0
			for rows.Next() {
				n++
			}
			rows.Close()
			if tmpl.rows >= 0 && n != tmpl.rows {
				t.Errorf("%s: %d rows, want %d", qs, n, tmpl.rows)
			}
		}
	}
}

// Unquoted, the same characters are words or values, or a syntax error;
// never SQL.
func TestHostileUnquoted(t *testing.T) {
	for _, h := range hostile {
		for _, qs := range []string{h, "action:" + h, "eventName:" + h, "| stats count() by " + h, "| sort " + h, "| fields " + h} {
			q, err := Parse(qs)
			if err != nil {
				continue
			}
			out, err := Compile(Request{Query: q, Scope: Scope{All: true}}, DuckDB)
			if err != nil {
				continue
			}
			checkSQL(t, qs, out)
		}
	}
}

// Field names come from the user too: document paths are bound, never
// written into the SQL.
func TestHostileFieldNames(t *testing.T) {
	for _, qs := range []string{
		`pwn.x:1`,
		`pwn-x.$y.@z:1`,
		`a.pwn>5`,
		`| stats count() by pwn.x | sort pwn.x`,
		`| stats dc(pwn) as pwnage | sort -pwnage`,
		`| fields pwn, pwn2 | sort pwn2`,
		`| timechart span=1h max(pwn) by pwn2`,
	} {
		out, err := Compile(Request{Query: mustParse(t, qs), Scope: Scope{All: true}}, DuckDB)
		if err != nil {
			t.Fatalf("Compile(%q): %v", qs, err)
		}
		checkSQL(t, qs, out)
	}
}

func TestHostileTenant(t *testing.T) {
	db := openTestDB(t)
	plain, err := Compile(Request{Query: mustParse(t, "x"), Scope: Scope{Tenants: []string{"a", "b"}}}, DuckDB)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hostile {
		out, err := Compile(Request{Query: mustParse(t, "*"), Scope: Scope{Tenants: []string{h, "t0"}}}, DuckDB)
		if err != nil {
			t.Fatal(err)
		}
		checkSQL(t, h, out)
		if strings.Replace(out.Text, "TRUE", "(contains(lower(raw), lower(?)) AND regexp_matches(raw, ?, 'i'))", 1) != plain.Text {
			t.Errorf("tenant %q: SQL differs: %s", h, out.Text)
		}
		var n int
		rows, err := db.Query(out.Text, out.Args...)
		if err != nil {
			t.Fatalf("tenant %q: %v", h, err)
		}
		for rows.Next() {
			n++
		}
		rows.Close()
		if n != 0 {
			t.Errorf("tenant %q read %d events", h, n)
		}
	}
}

// The lexer keeps every character of a quoted value.
func TestQuotedValuesIntact(t *testing.T) {
	for _, h := range hostile {
		q := mustParse(t, "action:"+Quote(h))
		if got := q.Filter.(*Compare).Value.Text(); got != h {
			t.Errorf("value %q came back as %q", h, got)
		}
		if q.Filter.(*Compare).Value.HasWildcard() {
			t.Errorf("escaped value %q has wildcards", h)
		}
	}
}
