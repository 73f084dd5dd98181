package detect

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/event"
)

// TestSplitAsProcess: matching with Split on one node and correlating the
// observations on three, each group on one of them, finds the detections
// one Detector finds, when each group's observations come in the order
// its events came.
func TestSplitAsProcess(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
	stream := func(n int, step time.Duration, fields func(i int) map[string]any) []*event.Event {
		var evs []*event.Event
		at := time.Duration(0)
		for i := range n {
			at += time.Duration(rng.Int64N(int64(step)))
			evs = append(evs, ev(at, fields(i)))
		}
		return evs
	}
	login := "5638f7c0-ac70-491d-8465-2a65075e0d86"
	tests := []struct {
		file string
		evs  []*event.Event
	}{
		{"tests/schema/correlation/event_count.yml", stream(3000, 3*time.Second, func(int) map[string]any {
			return map[string]any{"rule": login, "ComputerName": pick("pc1", "pc2", "pc3", "pc4", "pc5")}
		})},
		{"correlation-examples-extracted/example_06.yml", stream(2000, time.Minute, func(int) map[string]any {
			return map[string]any{"rule": login, "ComputerName": pick("pc1", "pc2"), "WorkstationName": "ws", "User": fmt.Sprint("u", rng.IntN(150))}
		})},
		{"tests/schema/correlation/temporal.yml", stream(2000, 20*time.Second, func(int) map[string]any {
			return map[string]any{"rule": pick("recon_cmd_a", "recon_cmd_b", "recon_cmd_c"), "ComputerName": pick("pc1", "pc2", "pc3"), "User": pick("u", "v")}
		})},
		{"tests/schema/correlation/temporal_ordered.yml", stream(2000, 20*time.Second, func(int) map[string]any {
			return map[string]any{"rule": pick("recon_cmd_a", "recon_cmd_b", "recon_cmd_c"), "ComputerName": pick("pc1", "pc2"), "User": "u"}
		})},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.file), func(t *testing.T) {
			e := loadCorrelation(t, filepath.Join(specDir, tt.file))
			want := describeAll(processAll(e, tt.evs))
			if len(want) == 0 {
				t.Fatal("the stream completes no correlation; it tests nothing")
			}
			if got := describeAll(splitAll(t, e, tt.evs, 3)); !slices.Equal(got, want) {
				t.Errorf("split found %d detections:\n%s\none detector %d:\n%s", len(got), strings.Join(got, "\n"), len(want), strings.Join(want, "\n"))
			}
		})
	}

	// An observation of rules the engine does not correlate is refused.
	e := loadCorrelation(t, filepath.Join(specDir, "tests/schema/correlation/event_count.yml"))
	for _, o := range []Observation{
		{Correlation: "nope", Rule: login},
		{Correlation: ruleKey(e.corrs[0].rule), Rule: "nope"},
		{Correlation: ruleKey(e.corrs[0].rule), Rule: login, Group: []string{"a", "b"}},
	} {
		if _, err := e.NewCorrelator().Observe(o); err == nil {
			t.Errorf("observation %+v accepted", o)
		}
	}
}

func processAll(e *Engine, evs []*event.Event) []Detection {
	d := e.NewDetector()
	var out []Detection
	for i, x := range evs {
		x.Seq = uint64(i + 1)
		out = append(out, slices.Clone(d.Process(x))...)
	}
	return append(out, d.Flush(t0.Add(1000*time.Hour))...)
}

// splitAll matches evs with Split and correlates the observations on n
// correlators, each observation sent (as JSON, as the bus carries it) to
// the one its key hashes to.
func splitAll(t *testing.T, e *Engine, evs []*event.Event, n int) []Detection {
	t.Helper()
	d := e.NewDetector()
	cs := make([]*Correlator, n)
	for i := range cs {
		cs[i] = e.NewCorrelator()
	}
	var out []Detection
	for i, x := range evs {
		x.Seq = uint64(i + 1)
		var obs []Observation
		out = append(out, slices.Clone(d.Split(x, func(o Observation) { obs = append(obs, o) }))...)
		for _, o := range obs {
			b, err := json.Marshal(o)
			if err != nil {
				t.Fatal(err)
			}
			var back Observation
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			h := fnv.New32a()
			h.Write(back.Key())
			ds, err := cs[h.Sum32()%uint32(n)].Observe(back)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, ds...)
		}
	}
	for _, c := range cs {
		out = append(out, c.FlushAt(t0.Add(1000*time.Hour))...)
	}
	return out
}

// describeAll describes detections, sorted, for comparing.
func describeAll(ds []Detection) []string {
	var out []string
	for _, d := range ds {
		s := d.Rule.ID
		if d.Event != nil {
			s += fmt.Sprintf(" event %d", d.Event.Seq)
		}
		if d.Rule.IsCorrelation() {
			s += fmt.Sprintf(" group %v value %g events", d.Group, d.Value)
			for _, r := range d.Events {
				s += fmt.Sprintf(" %d/%s/%s", r.Seq, r.Rule, r.Time.Format(time.TimeOnly))
			}
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}
