package detect

import (
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilsec/vigil/event"
)

// A Sink receives detections: the alert layer. Detected is called from
// one goroutine at a time, and must not keep the slice.
type Sink interface {
	Detected(ds []Detection)
}

// RunnerOptions configure a Runner.
type RunnerOptions struct {
	Sink       Sink
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Now is the wall clock, which Advance compares with the arrival of
	// the last events; nil means time.Now.
	Now func() time.Time
}

// A Runner runs an engine's rules on the events the ingest path gives it
// and hands the detections to a sink. Its engine can be replaced while it
// runs (rules reloaded). It is safe for concurrent use; events are
// matched one batch at a time, so that correlations see each batch in
// order.
type Runner struct {
	opts RunnerOptions
	log  *slog.Logger
	m    *runnerMetrics

	mu sync.Mutex
	e  *Engine
	d  *Detector
	// high is the latest event time matched, and arrived the wall time
	// of the last events: what Advance decides windows by.
	high, arrived time.Time
}

type runnerMetrics struct {
	events  prometheus.Counter
	matches *prometheus.CounterVec
	seconds prometheus.Counter
	groups  prometheus.Gauge
	dropped prometheus.Counter
	late    prometheus.Counter
	errors  prometheus.Counter
	rules   prometheus.Gauge
}

func newRunnerMetrics(reg prometheus.Registerer) *runnerMetrics {
	m := &runnerMetrics{
		events:  prometheus.NewCounter(prometheus.CounterOpts{Name: "vigil_detect_events_total", Help: "Events matched against the rules."}),
		matches: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigil_detect_matches_total", Help: "Detections, by rule and level."}, []string{"rule", "level"}),
		seconds: prometheus.NewCounter(prometheus.CounterOpts{Name: "vigil_detect_seconds_total", Help: "Time spent matching events."}),
		groups:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "vigil_detect_correlation_groups", Help: "Groups held in correlation state."}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "vigil_detect_correlation_dropped_total", Help: "Correlation groups or events forgotten at the state's bounds."}),
		late:    prometheus.NewCounter(prometheus.CounterOpts{Name: "vigil_detect_correlation_late_total", Help: "Events that came after the correlation window they belong to had passed (older than its timespan before the newest event of their group)."}),
		errors:  prometheus.NewCounter(prometheus.CounterOpts{Name: "vigil_detect_unreadable_total", Help: "Events whose original document could not be read."}),
		rules:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "vigil_detect_rules", Help: "Rules loaded."}),
	}
	if reg != nil {
		reg.MustRegister(m.events, m.matches, m.seconds, m.groups, m.dropped, m.late, m.errors, m.rules)
	}
	return m
}

// NewRunner returns a Runner of e's rules.
func NewRunner(e *Engine, opts RunnerOptions) *Runner {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	r := &Runner{opts: opts, log: opts.Logger, m: newRunnerMetrics(opts.Registerer), e: e, d: e.NewDetector()}
	r.m.rules.Set(float64(len(e.Rules())))
	return r
}

// Engine returns the engine the runner runs.
func (r *Runner) Engine() *Engine {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.e
}

// Swap replaces the engine. Correlation state starts over: the rules it
// was kept for may have changed.
func (r *Runner) Swap(e *Engine) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.e, r.d = e, e.NewDetector()
	r.m.rules.Set(float64(len(e.Rules())))
	r.m.groups.Set(0)
}

// Warm rebuilds correlation state after a restart: scan gives the
// events of the last MaxTimespan (oldest first), which are matched
// without handing anything to the sink, since their detections were
// handed on before. The state starts over first, so that events matched
// already (those the store caught up on) are not counted twice.
func (r *Runner) Warm(scan func(func(*event.Event) error) error) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.d = r.e.NewDetector()
	n := 0
	err := scan(func(ev *event.Event) error {
		r.d.Process(ev)
		n++
		return nil
	})
	r.m.groups.Set(float64(r.d.c.Groups()))
	return n, err
}

// Process matches events and hands their detections to the sink.
func (r *Runner) Process(evs []*event.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	start := time.Now()
	var out []Detection
	errs := r.d.Errors
	dropped, late := r.d.c.Dropped, r.d.c.Late
	for _, ev := range evs {
		out = append(out, r.d.Process(ev)...)
		if ev.Time.After(r.high) {
			r.high = ev.Time
		}
	}
	if len(evs) > 0 {
		r.arrived = r.opts.Now()
	}
	r.m.seconds.Add(time.Since(start).Seconds())
	r.m.events.Add(float64(len(evs)))
	r.m.errors.Add(float64(r.d.Errors - errs))
	r.m.dropped.Add(float64(r.d.c.Dropped - dropped))
	r.m.late.Add(float64(r.d.c.Late - late))
	r.m.groups.Set(float64(r.d.c.Groups()))
	r.emit(out)
}

// Advance decides the correlation windows with an upper bound on a
// count that are over, which no later event of their group may come to
// decide: by event time while events arrive and by the wall clock once they have
// stopped for quiet: while history is replayed (an import, a store
// catching up), its windows are not over when the wall clock says so,
// but when the events matched have gone past them; live events that stop
// coming leave their windows to the clock. Time never runs past now, so
// that one event dated in the future does not close every window.
func (r *Runner) Advance(now time.Time, quiet time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	at := now
	if now.Sub(r.arrived) < quiet && r.high.Before(now) {
		at = r.high
	}
	r.emit(r.d.Flush(at))
	r.m.groups.Set(float64(r.d.c.Groups()))
}

func (r *Runner) emit(ds []Detection) {
	if len(ds) == 0 {
		return
	}
	for _, d := range ds {
		r.m.matches.WithLabelValues(d.Rule.ID, d.Rule.Level).Inc()
	}
	if r.opts.Sink != nil {
		r.opts.Sink.Detected(ds)
	}
}
