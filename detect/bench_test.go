package detect

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/event"
)

// BenchmarkDetector runs rules over every Stratus Red Team detonation
// event, or over the CloudTrail files under $VIGIL_DETECT_CORPUS (a
// bench/ corpus: go run ./bench corpus -events 100000), in the order of
// the times in their names, as an import reads them, on one goroutine
// with fresh correlation state each time round. The figures that count
// are bench/'s (go run ./bench detect); this one profiles a change
// quickly, and says which rules cost what:
//
//	VIGIL_DETECT_CORPUS=/tmp/vigil-bench/corpus-n100000-s1/AWSLogs go test ./detect -run - -bench Detector
func BenchmarkDetector(b *testing.B) {
	sigma, _ := LoadPaths(sigmaHQ)
	builtin, err := Builtin()
	if err != nil {
		b.Fatal(err)
	}
	var files []string
	if dir := os.Getenv("VIGIL_DETECT_CORPUS"); dir != "" {
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				files = append(files, p)
			}
			return err
		})
		// CloudTrail names its files …_20240710T1205Z_….json.gz.
		at := regexp.MustCompile(`_\d{8}T\d{4}Z_`)
		slices.SortStableFunc(files, func(a, b string) int { return strings.Compare(at.FindString(a), at.FindString(b)) })
	} else {
		files, _ = filepath.Glob(filepath.Join(stratusDir, "*.json"))
	}
	var evs []*event.Event
	for _, f := range files {
		evs = append(evs, parseFile(b, f)...)
	}
	for _, set := range []struct {
		name  string
		rules []*Rule
	}{
		{"all", append(slices.Clone(sigma), builtin...)},
		{"sigmahq", sigma},
		{"builtin", builtin},
	} {
		b.Run(set.name, func(b *testing.B) {
			e, _ := NewEngine(set.rules, Options{})
			b.ReportAllocs()
			for b.Loop() {
				d := e.NewDetector()
				for _, ev := range evs {
					d.Process(ev)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(evs)), "ns/event")
			b.ReportMetric(0, "ns/op")
		})
	}
}
