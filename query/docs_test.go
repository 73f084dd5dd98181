package query

import (
	"bufio"
	"os"
	"strings"
	"testing"
)

// TestDocs checks docs/query.md against the package: every line of a
// ```vigil-query block parses and compiles, the field table names every
// normalized field, and the error example is what Caret prints.
func TestDocs(t *testing.T) {
	data, err := os.ReadFile("../docs/query.md")
	if err != nil {
		t.Fatal(err)
	}
	var queries []string
	var block string // the info string of the fenced block we are in
	lines := 0
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	for sc.Scan() {
		lines++
		line := sc.Text()
		if info, ok := strings.CutPrefix(line, "```"); ok {
			if block == "" {
				block = "(" + info + ")"
			} else {
				block = ""
			}
			continue
		}
		if block == "(vigil-query)" && strings.TrimSpace(line) != "" {
			queries = append(queries, line)
		}
	}
	if len(queries) < 30 {
		t.Fatalf("found %d example queries in %d lines; the extraction is broken", len(queries), lines)
	}
	for _, s := range queries {
		q, err := Parse(s)
		if err != nil {
			t.Errorf("docs example does not parse:\n%s", Caret(s, err))
			continue
		}
		if _, err := Compile(Request{Query: q, Scope: Scope{All: true}, Limit: 100}, DuckDB); err != nil {
			t.Errorf("docs example does not compile:\n%s", Caret(s, err))
		}
	}

	doc := string(data)
	for _, f := range Fields() {
		for _, name := range append([]string{f.Name}, f.Aliases...) {
			if !strings.Contains(doc, "| `"+name+"`") && !strings.Contains(doc, ", `"+name+"`") {
				t.Errorf("docs: field %s is not in the table", name)
			}
		}
	}

	// The CLI example under Errors.
	_, after, ok := strings.Cut(doc, "$ vigil search '")
	if !ok {
		t.Fatal("docs: no error example")
	}
	q, rest, _ := strings.Cut(after, "'\n")
	want, _, _ := strings.Cut(rest, "\n```")
	_, err = Parse(q)
	if got := Caret(q, err); got != want {
		t.Errorf("docs error example:\n%s\nCaret prints:\n%s", want, got)
	}
}

// TestDocsRun runs the examples on DuckDB: the SQL of each is valid.
func TestDocsRun(t *testing.T) {
	db := openTestDB(t)
	data, err := os.ReadFile("../docs/query.md")
	if err != nil {
		t.Fatal(err)
	}
	in := false
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "```") {
			in = line == "```vigil-query"
			continue
		}
		if !in || strings.TrimSpace(line) == "" {
			continue
		}
		q, err := Parse(line)
		if err != nil {
			continue // TestDocs reports it
		}
		out, err := Compile(Request{Query: q, Scope: Scope{All: true}, Limit: 100}, DuckDB)
		if err != nil {
			continue
		}
		rows, err := db.Query(out.Text, out.Args...)
		if err != nil {
			t.Errorf("%s: %v", line, err)
			continue
		}
		rows.Close()
	}
}
