package detect

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/parse"
)

const stratusDir = "../../shared/testdata/stratus-red-team-detonation-logs/detonation-logs"

// parseFile parses a log fixture into events.
func parseFile(t testing.TB, path string) []*event.Event {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var evs []*event.Event
	_, err = parse.Parse(f, parse.Auto, parse.Options{Tenant: "t", Origin: path, Received: time.Now()}, func(r parse.Result) error {
		if r.Event != nil {
			evs = append(evs, r.Event)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// TestStratusCoverage logs, for each Stratus Red Team detonation log, the
// rules (SigmaHQ and built-in) that fire on it: the coverage table of
// docs/detection.md. That each technique is detected is asserted by the
// built-in pack's tests.
func TestStratusCoverage(t *testing.T) {
	rules, _ := LoadPaths(sigmaHQ)
	builtin, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	e, _ := NewEngine(append(rules, builtin...), Options{})
	files, _ := filepath.Glob(filepath.Join(stratusDir, "*.json"))
	for _, f := range files {
		evs := parseFile(t, f)
		d := e.NewDetector()
		fired := map[string]int{}
		for _, ev := range evs {
			for _, det := range d.Process(ev) {
				fired[det.Rule.Title]++
			}
		}
		var names []string
		for k, n := range fired {
			names = append(names, fmt.Sprintf("%s (%d)", k, n))
		}
		sort.Strings(names)
		t.Logf("%s: %d events: %s", strings.TrimSuffix(filepath.Base(f), ".json"), len(evs), strings.Join(names, "; "))
	}
}
