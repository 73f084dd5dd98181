// Package wordtest holds what the word index's tests share: real
// CloudTrail records to index, and the check a store's SQL makes of a
// needle, in Go.
package wordtest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/vigilsec/vigil/query"
)

// Records returns the CloudTrail records of the Stratus Red Team
// detonation logs in the shared test data, skipping the test without
// them unless VIGIL_REQUIRE_ALL is set.
func Records(tb testing.TB) [][]byte {
	tb.Helper()
	_, here, _, _ := runtime.Caller(0)
	files, err := filepath.Glob(filepath.Join(filepath.Dir(here), "../../../../shared/testdata/stratus-red-team-detonation-logs/detonation-logs/*.json"))
	if err != nil || len(files) == 0 {
		if os.Getenv("VIGIL_REQUIRE_ALL") != "" {
			tb.Fatalf("no CloudTrail fixtures: %v", err)
		}
		tb.Skipf("no CloudTrail fixtures: %v", err)
	}
	var out [][]byte
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		var recs []json.RawMessage
		if err := json.Unmarshal(data, &recs); err != nil {
			tb.Fatalf("%s: %v", f, err)
		}
		for _, r := range recs {
			out = append(out, r)
		}
	}
	return out
}

// Regexp is the check the SQL makes, in Go: the needle as whole words,
// ignoring case.
func Regexp(needle string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("(?i)")
	first, _ := utf8.DecodeRuneInString(needle)
	last, _ := utf8.DecodeLastRuneInString(needle)
	if query.IsWordRune(first) {
		b.WriteString(`(?:^|[^\pL\pN\pM_])`)
	}
	b.WriteString(regexp.QuoteMeta(strings.ToValidUTF8(needle, "\ufffd")))
	if query.IsWordRune(last) {
		b.WriteString(`(?:[^\pL\pN\pM_]|$)`)
	}
	return regexp.MustCompile(b.String())
}
