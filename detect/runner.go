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
	}
	r.m.seconds.Add(time.Since(start).Seconds())
	r.m.events.Add(float64(len(evs)))
	r.m.errors.Add(float64(r.d.Errors - errs))
	r.m.dropped.Add(float64(r.d.c.Dropped - dropped))
	r.m.late.Add(float64(r.d.c.Late - late))
	r.m.groups.Set(float64(r.d.c.Groups()))
	r.emit(out)
}

// Flush decides the correlation windows that ended before now: those
// with an upper bound on a count, which no later event of their group
// may come to decide.
func (r *Runner) Flush(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.emit(r.d.Flush(now))
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
