package detect

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vigilsec/vigil/event"
)

type recordSink struct{ ds []Detection }

func (s *recordSink) Detected(ds []Detection) { s.ds = append(s.ds, ds...) }

// TestRunnerWarm: correlation state rebuilt from history after a restart
// completes a correlation the next event finishes, without alerting on
// history again.
func TestRunnerWarm(t *testing.T) {
	src := `title: Many
id: c1
correlation:
  type: event_count
  rules: [hb]
  group-by: [host]
  timespan: 1h
  condition: {gte: 3}
`
	e := correlationEngine(t, src)
	if e.MaxTimespan() != time.Hour {
		t.Errorf("MaxTimespan = %v", e.MaxTimespan())
	}
	history := []*event.Event{ev(0, map[string]any{"rule": "hb", "host": "a"}), ev(time.Minute, map[string]any{"rule": "hb", "host": "a"})}
	sink := &recordSink{}
	r := NewRunner(e, RunnerOptions{Sink: sink})
	// What the store caught up on at start was matched once already.
	r.Process(history[1:])
	n, err := r.Warm(func(fn func(*event.Event) error) error {
		for _, x := range history {
			if err := fn(x); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil || n != 2 {
		t.Fatalf("Warm = %d, %v", n, err)
	}
	if len(sink.ds) != 0 {
		t.Fatalf("history alerted: %v", sink.ds)
	}
	r.Process([]*event.Event{ev(2*time.Minute, map[string]any{"rule": "hb", "host": "a"})})
	if len(sink.ds) != 1 || sink.ds[0].Rule.ID != "c1" || len(sink.ds[0].Events) != 3 {
		t.Fatalf("after warming, the third event gave %+v, want the correlation of 3 events", sink.ds)
	}
}

// TestRunnerLate: events that come after their correlation window has
// passed are counted in vigil_detect_correlation_late_total.
func TestRunnerLate(t *testing.T) {
	e := correlationEngine(t, `title: Many
id: c1
correlation:
  type: event_count
  rules: [hb]
  group-by: [host]
  timespan: 1h
  condition: {gte: 3}
`)
	reg := prometheus.NewRegistry()
	r := NewRunner(e, RunnerOptions{Registerer: reg})
	hb := func(at time.Duration) *event.Event { return ev(at, map[string]any{"rule": "hb", "host": "a"}) }
	r.Process([]*event.Event{hb(3 * time.Hour), hb(2*time.Hour + 30*time.Minute), hb(time.Hour), hb(0)})
	if got := testutil.ToFloat64(r.m.late); got != 2 {
		t.Errorf("late = %v, want 2 (the events more than an hour before the newest)", got)
	}
}
