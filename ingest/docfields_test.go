package ingest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/parse"
	"github.com/vigilsec/vigil/query"
	"github.com/vigilsec/vigil/store/duckdb"
)

// TestDocFieldsMatchColumns checks, on every real CloudTrail fixture, that
// a filter on an original field name that the compiler answers from a
// normalized column (eventName from action, …) finds exactly the events
// whose document holds the value: the
// counts by the document (stats by the field reads the document) against
// the counts of a filter on each value, exact and with a wildcard.
func TestDocFieldsMatchColumns(t *testing.T) {
	shared := "../../shared/testdata/"
	p := openPipeline(t, t.TempDir())
	db := p.Store.(*duckdb.DB)
	im := NewImporter(p, ImportOptions{Parse: parse.Options{Tenant: "t", Received: time.Now()}})
	for _, dir := range []string{"stratus-red-team-detonation-logs", "aws-docs-examples", "otrf-security-datasets-aws", "panther-analysis-rule-tests"} {
		if _, err := im.Import(context.Background(), []string{shared + dir}); err != nil {
			t.Fatal(err)
		}
	}
	search := func(q string) [][]any {
		t.Helper()
		parsed, err := query.Parse(q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		res, err := db.Search(context.Background(), query.Request{Query: parsed, Scope: query.Scope{All: true}, Limit: 10000})
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return res.Rows
	}
	quote := func(s string) string {
		return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, `*`, `\*`, `?`, `\?`).Replace(s) + `"`
	}
	for _, tc := range []struct{ source, field string }{
		{"aws.cloudtrail", "eventName"},
		{"aws.cloudtrail", "eventSource"},
		{"aws.cloudtrail", "eventID"},
		{"aws.cloudtrail", "awsRegion"},
		{"aws.cloudtrail", "userAgent"},
	} {
		groups := search(fmt.Sprintf("source:%s | stats count() by %s", tc.source, tc.field))
		if len(groups) < 2 {
			t.Fatalf("%s %s: %d values in the fixtures, want several", tc.source, tc.field, len(groups))
		}
		// A wildcard matches case-insensitively: the events of every
		// value with the prefix.
		prefixed := make(map[string]int64)
		for _, g := range groups {
			v, _ := g[0].(string)
			if p := safePrefix(v); p != "" && prefixed[p] == 0 {
				for _, h := range groups {
					if w, _ := h[0].(string); strings.HasPrefix(strings.ToLower(w), strings.ToLower(p)) {
						prefixed[p] += h[1].(int64)
					}
				}
			}
		}
		for _, g := range groups {
			v, _ := g[0].(string)
			if v == "" {
				continue
			}
			q := fmt.Sprintf("source:%s %s:%s", tc.source, tc.field, quote(v))
			if got, want := int64(len(search(q))), g[1].(int64); got != want {
				t.Errorf("%s: %d events, want the %d whose document has the value", q, got, want)
			}
		}
		for p, want := range prefixed {
			q := fmt.Sprintf("source:%s %s:%s*", tc.source, tc.field, p)
			if got := int64(len(search(q))); got != want {
				t.Errorf("%s: %d events, want the %d whose document has a value with the prefix", q, got, want)
			}
		}
	}
}

// safePrefix is the first few letters and digits of v, written the same
// in a query without quotes or escapes.
func safePrefix(v string) string {
	n := 0
	for n < len(v) && n < 5 && (v[n] >= 'a' && v[n] <= 'z' || v[n] >= 'A' && v[n] <= 'Z' || v[n] >= '0' && v[n] <= '9') {
		n++
	}
	return v[:n]
}
