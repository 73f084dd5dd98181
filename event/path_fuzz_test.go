package event

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzExtract checks that Extract never panics, never refuses a document
// encoding/json accepts, and finds there what the reference walk finds.
// path holds one path or several separated by "|", so that prefixes,
// duplicates and folding to one segment are exercised too.
func FuzzExtract(f *testing.F) {
	for _, seed := range []struct{ doc, path string }{
		{trail, "eventName|userIdentity.sessionContext.sessionIssuer.type|requestParameters.filters.values"},
		{trail, "requestParameters|requestParameters.instancesSet.items.instanceId|responseElements"},
		{`{"a":[[{"b":1}],[{"b":2},[{"b":3}]],[],5]}`, "a|a.b"},
		{`{"a":[],"b":[1,[2,[]]],"c":{}}`, "a|b|c|c.d"},
		{`{"s":"\ud83d\ude00\u00e9\"\\\/\b\f\n\r\t\ud800"}`, "s"},
		{`{"event\u004eame":"X","A":1,"a":2}`, "eventName|a|A"},
		{`{"\u212a":1,"ſ":2}`, "k|S|K"},
		{`[{"a":1},{"a":true},{"a":null},{"a":-1.5e3}]`, "a"},
		{"{\"\xff\":\"\xfe\"}", "\xff"},
		{`{"a":{"b":{"c":{"d":[{"e":"f"}]}}}}`, "a.b.c.d.e|a.b|a.b.c.d"},
		{`{"z":[tru,01,{"q" "r"}],"a":1}`, "a"},
		{`{"a":1}x`, "a"},
		{`{"a":"\x"}`, "a"},
	} {
		f.Add([]byte(seed.doc), seed.path)
	}
	f.Add(benchRecord(f), strings.Join(benchPaths, "|"))
	f.Fuzz(func(t *testing.T, doc []byte, path string) {
		paths := strings.Split(path, "|")
		valid := json.Valid(doc)
		for _, fold := range []bool{false, true} {
			p, err := CompilePaths(paths, fold)
			if err != nil {
				for _, path := range paths {
					if path == "" || strings.HasPrefix(path, ".") || strings.HasSuffix(path, ".") || strings.Contains(path, "..") {
						return
					}
				}
				t.Fatalf("CompilePaths(%q): %v", paths, err)
			}
			// A Reader asked for the paths in reverse order, then for the
			// rest, reports what Extract reports, in its order; on any
			// document, valid or not, it must not panic.
			var extracted calls
			extractErr := p.Extract(doc, extracted.fn)
			order := make([]int, len(paths))
			for i := range order {
				order[i] = len(paths) - 1 - i
			}
			lazy, lazyErr := readLazily(p, doc, order)
			if (extractErr == nil) != (lazyErr == nil) || extractErr == nil && !slices.Equal(lazy, extracted) {
				t.Fatalf("fold %v: Reader: %q, %v; Extract: %q, %v", fold, lazy, lazyErr, extracted, extractErr)
			}
			got, err := collect(p, doc)
			if !valid {
				continue // Extract may or may not see the fault; it must only not panic
			}
			if err != nil {
				t.Fatalf("Extract refused valid JSON: %v", err)
			}
			// encoding/json replaces invalid UTF-8 where Extract keeps it,
			// so the two agree on valid UTF-8 only.
			if !utf8.Valid(doc) {
				continue
			}
			want, err := refExtract(doc, paths, fold)
			if err != nil {
				t.Fatalf("reference: %v", err)
			}
			if d := diffResults(got, want, len(paths)); d != "" {
				t.Fatalf("fold %v: Extract differs from encoding/json:\n%s", fold, d)
			}
		}
	})
}
