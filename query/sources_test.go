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
