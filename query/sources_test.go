package query

import (
	"strings"
	"testing"
)

// TestSplitsSources: a filter that compares a document field CloudTrail's
// parser copies into a column, anywhere in it, is split; others are not.
func TestSplitsSources(t *testing.T) {
	for _, tt := range []struct {
		q    string
		want bool
	}{
		{"eventName:StopLogging", true},
		{"action:StopLogging OR (tenant:a AND NOT awsRegion:us-east-1)", true},
		{`userAgent:"aws-cli*"`, true},
		{"userIdentity.type:Root", false},
		{"action:StopLogging", false},
		{"StopLogging", false},
		{"| stats count() by eventName", false},
		{"*", false},
	} {
		q, err := Parse(tt.q)
		if err != nil {
			t.Fatal(err)
		}
		if got := SplitsSources(q); got != tt.want {
			t.Errorf("SplitsSources(%q) = %v, want %v", tt.q, got, tt.want)
		}
	}
	if SplitsSources(nil) {
		t.Error("SplitsSources(nil) = true")
	}
}

// TestSourceSplitSQL: on ClickHouse, the part of the sources with the
// column reads the column and not the document, the other part the
// document and not the column, each restricted to its sources in
// PREWHERE; both parts together are the query unsplit.
func TestSourceSplitSQL(t *testing.T) {
	q, err := Parse("eventName:StopLogging AND NOT eventSource:s3.amazonaws.com")
	if err != nil {
		t.Fatal(err)
	}
	compile := func(part SourceSplit) string {
		t.Helper()
		sql, err := Compile(Request{Query: q, Scope: Scope{All: true}, Sources: part}, ClickHouseCopies)
		if err != nil {
			t.Fatal(err)
		}
		text, _, _ := strings.Cut(sql.Text, " ORDER BY ")
		_, cond, _ := strings.Cut(text, " FROM ")
		return cond
	}
	for _, tt := range []struct {
		part       SourceSplit
		has, hasnt []string
	}{
		{AllSources, []string{"action", "service", "doc_values"}, []string{"PREWHERE"}},
		{CopyingSources, []string{"PREWHERE source IN (", "action", "service"}, []string{"doc_values", "doc_keys"}},
		{OtherSources, []string{"PREWHERE source NOT IN (", "doc_values"}, []string{"action", "service"}},
	} {
		cond := compile(tt.part)
		for _, s := range tt.has {
			if !strings.Contains(cond, s) {
				t.Errorf("part %d: %s\nlacks %q", tt.part, cond, s)
			}
		}
		for _, s := range tt.hasnt {
			if strings.Contains(cond, s) {
				t.Errorf("part %d: %s\nhas %q", tt.part, cond, s)
			}
		}
	}
}

// TestUnionSourcesSQL: on ClickHouse, a table made of a filter on a
// copied document field reads from a UNION ALL of the two parts, each
// kept to its sources and within the scope; a filter alone, a filter
// without such a field and the DuckDB dialect are one SELECT.
func TestUnionSourcesSQL(t *testing.T) {
	for _, tt := range []struct {
		q     string
		d     *Dialect
		union bool
	}{
		{"eventName:StopLogging | stats count() by actor", ClickHouse, true},
		{"eventName:Stop* | timechart span=1h count()", ClickHouse, true},
		{"NOT awsRegion:us-east-1 | fields time, actor", ClickHouseCopies, true},
		{"eventName:StopLogging | head 5 | stats count() by eventSource", ClickHouse, true},
		{"eventName:StopLogging", ClickHouse, false},
		{"eventName:StopLogging | sort actor | head 3", ClickHouseCopies, false},
		{"action:StopLogging | stats count() by actor", ClickHouse, false},
		{"eventName:StopLogging | stats count() by actor", DuckDB, false},
	} {
		q, err := Parse(tt.q)
		if err != nil {
			t.Fatal(err)
		}
		sql, err := Compile(Request{Query: q, Scope: Scope{Tenants: []string{"team-a"}}}, tt.d)
		if err != nil {
			t.Fatalf("%s: %v", tt.q, err)
		}
		if got := strings.Contains(sql.Text, " UNION ALL "); got != tt.union {
			t.Errorf("%s (%s): union %v, want %v\n%s", tt.q, tt.d.name, got, tt.union, sql.Text)
			continue
		}
		if !tt.union {
			continue
		}
		for _, s := range []string{"PREWHERE source IN (", "PREWHERE source NOT IN ("} {
			if strings.Count(sql.Text, s) != 1 {
				t.Errorf("%s: %q %d times, want once\n%s", tt.q, s, strings.Count(sql.Text, s), sql.Text)
			}
		}
		// Each part keeps the scope: the condition that must never be lost.
		if n := strings.Count(sql.Text, "tenant IN (?)"); n != 2 {
			t.Errorf("%s: the scope %d times, want once a part\n%s", tt.q, n, sql.Text)
		}
	}
}
