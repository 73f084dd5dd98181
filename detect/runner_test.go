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

// TestRunnerAdvance: a replay of history, whose windows the wall clock
// is long past, has its windows decided by the events it has matched,
// not by the clock, until it stops; then the clock decides the rest.
func TestRunnerAdvance(t *testing.T) {
	src := `title: Few heartbeats
id: c1
correlation:
  type: event_count
  rules: [hb]
  group-by: [host]
  timespan: 1h
  condition: {lt: 3}
`
	e := correlationEngine(t, src)
	hb := func(at time.Duration, host string) *event.Event {
		return ev(at, map[string]any{"rule": "hb", "host": host})
	}
	wall := t0.Add(1000 * time.Hour) // long after the history replayed
	sink := &recordSink{}
	r := NewRunner(e, RunnerOptions{Sink: sink, Now: func() time.Time { return wall }})
	const quiet = time.Minute
	// a's first two heartbeats, then a tick of the clock: by the clock
	// a's window is over with two (fewer than 3), but its third is on
	// its way in the next batch.
	r.Process([]*event.Event{hb(0, "a"), hb(0, "b"), hb(time.Minute, "a")})
	wall = wall.Add(30 * time.Second)
	r.Advance(wall, quiet)
	if len(sink.ds) != 0 {
		t.Fatalf("decided while history was replayed: %+v", sink.ds)
	}
	r.Process([]*event.Event{hb(2*time.Minute, "a"), hb(3*time.Minute, "b")})
	// The replay goes past the first hour: both windows are decided, b's
	// with two heartbeats.
	r.Process([]*event.Event{hb(90*time.Minute, "c")})
	r.Advance(wall, quiet)
	if len(sink.ds) != 1 || sink.ds[0].Group["host"] != "b" || sink.ds[0].Value != 2 {
		t.Fatalf("after the replay passed the hour: %+v, want b's window with 2", sink.ds)
	}
	// The replay stops: once quiet, the clock decides c's window.
	r.Advance(wall.Add(quiet/2), quiet)
	if len(sink.ds) != 1 {
		t.Fatalf("decided c's window before the events stopped: %+v", sink.ds)
	}
	r.Advance(wall.Add(quiet), quiet)
	if len(sink.ds) != 2 || sink.ds[1].Group["host"] != "c" {
		t.Fatalf("once quiet: %+v, want c's window too", sink.ds)
	}
}
