package detect

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/vigilsec/vigil/event"
)

// BenchmarkDetector runs every rule vigil loads (SigmaHQ and built-in)
// over every Stratus Red Team detonation event (or the corpus in
// $VIGIL_DETECT_CORPUS), on one goroutine. The
// figures that count are bench/'s (go run ./bench detect); this one is
// for profiling a change quickly.
func BenchmarkDetector(b *testing.B) {
	rules, _ := LoadPaths(sigmaHQ)
	builtin, err := Builtin()
	if err != nil {
		b.Fatal(err)
	}
	e, _ := NewEngine(append(rules, builtin...), Options{})
	var files []string
	if dir := os.Getenv("VIGIL_DETECT_CORPUS"); dir != "" {
		// A bench/ corpus (go run ./bench corpus), for profiling on it.
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				files = append(files, p)
			}
			return err
		})
	} else {
		files, _ = filepath.Glob(filepath.Join(stratusDir, "*.json"))
	}
	var evs []*event.Event
	for _, f := range files {
		evs = append(evs, parseFile(b, f)...)
	}
	d := e.NewDetector()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d.Process(evs[i%len(evs)])
	}
}
