package ingest

import (
	"math"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilsec/vigil/event"
)

// SourceStats describe one source, as `vigil sources` lists it.
type SourceStats struct {
	Name        string    `json:"name"`
	Events      int64     `json:"events"`
	Quarantined int64     `json:"quarantined"`
	Batches     int64     `json:"batches"`
	FirstSeen   time.Time `json:"first_seen"` // receipt of its first batch
	LastSeen    time.Time `json:"last_seen"`  // receipt of its last batch
	LastEvent   time.Time `json:"last_event"` // the newest event time it sent
	// Rate is events per second, averaged over about a minute.
	Rate float64 `json:"rate"`
	// Skew is how far behind receipt the source's event times are
	// (receipt minus event time), smoothed over its recent batches: the
	// delivery delay plus the difference between its clock and ours.
	// Negative means events stamped in our future.
	Skew time.Duration `json:"skew"`

	rateAt time.Time // when Rate was last decayed
}

// rateWindow is the time constant of SourceStats.Rate.
const rateWindow = time.Minute

// maxSources bounds the sources tracked, so that a flood of distinct
// source names (a client certificate per host, say) cannot grow memory
// without end; past it, batches count under "other".
const maxSources = 10_000

// observe records an accepted batch in its source's stats.
func (in *Intake) observe(b Batch, evs []*event.Event) {
	now := time.Now()
	skew, newest, ok := batchSkew(evs)
	in.mu.Lock()
	name := b.Source
	s := in.sources[name]
	if s == nil {
		if len(in.sources) >= maxSources {
			name = "other"
			s = in.sources[name]
		}
		if s == nil {
			s = &SourceStats{Name: name, FirstSeen: now, rateAt: now}
			in.sources[name] = s
		}
	}
	s.Events += int64(len(evs))
	s.Quarantined += int64(len(b.Quarantined))
	s.Batches++
	s.LastSeen = now
	s.Rate = decayedRate(s.Rate, s.rateAt, now) + float64(len(evs))/rateWindow.Seconds()
	s.rateAt = now
	if ok {
		if newest.After(s.LastEvent) {
			s.LastEvent = newest
		}
		if s.Batches == 1 || s.Skew == 0 {
			s.Skew = skew
		} else {
			// An exponential average: one late batch moves it, a
			// clock that drifts shows.
			s.Skew += (skew - s.Skew) / 5
		}
	}
	st := *s
	in.mu.Unlock()

	in.m.sourceEvents.WithLabelValues(name).Add(float64(len(evs)))
	in.m.sourceQuarantined.WithLabelValues(name).Add(float64(len(b.Quarantined)))
	if ok {
		in.m.sourceSkew.WithLabelValues(name).Set(st.Skew.Seconds())
		in.m.sourceLastEvent.WithLabelValues(name).Set(float64(st.LastEvent.UnixNano()) / 1e9)
	}
}

// decayedRate is rate, measured at t, seen at now.
func decayedRate(rate float64, t, now time.Time) float64 {
	return rate * math.Exp(-now.Sub(t).Seconds()/rateWindow.Seconds())
}

// batchSkew returns the median of receipt minus event time over the
// batch (sampled), and its newest event time.
func batchSkew(evs []*event.Event) (skew time.Duration, newest time.Time, ok bool) {
	if len(evs) == 0 {
		return 0, time.Time{}, false
	}
	step := max(1, len(evs)/101)
	var ds []time.Duration
	for i := 0; i < len(evs); i += step {
		e := evs[i]
		if e.Time.IsZero() || e.Received.IsZero() {
			continue
		}
		ds = append(ds, e.Received.Sub(e.Time))
	}
	for _, e := range evs {
		if e.Time.After(newest) {
			newest = e.Time
		}
	}
	if len(ds) == 0 {
		return 0, newest, false
	}
	slices.Sort(ds)
	return ds[len(ds)/2], newest, true
}

// Sources returns the stats of every source seen since start, by name.
func (in *Intake) Sources() []SourceStats {
	now := time.Now()
	in.mu.Lock()
	out := make([]SourceStats, 0, len(in.sources))
	for _, s := range in.sources {
		st := *s
		st.Rate = decayedRate(s.Rate, s.rateAt, now)
		out = append(out, st)
	}
	in.mu.Unlock()
	slices.SortFunc(out, func(a, b SourceStats) int { return strings.Compare(a.Name, b.Name) })
	return out
}

type intakeMetrics struct {
	busy, duplicates, handoffDropped, ledgerReads, stored, storeErrors prometheus.Counter
	lag                                                                prometheus.Gauge
	appendSeconds                                                      prometheus.Histogram
	sourceEvents, sourceQuarantined                                    *prometheus.CounterVec
	sourceSkew, sourceLastEvent                                        *prometheus.GaugeVec
}

func newIntakeMetrics(reg prometheus.Registerer) *intakeMetrics {
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "vigil", Subsystem: "ingest", Name: name, Help: help})
	}
	m := &intakeMetrics{
		busy:           counter("busy_total", "Batches refused because the store was too far behind the ledger (HTTP 429, TCP paused)."),
		duplicates:     counter("duplicate_batches_total", "Batches whose key was already in the ledger, acknowledged without storing them again."),
		handoffDropped: counter("handoff_dropped_total", "Accepted batches the store feed had no room for, read back from the ledger instead."),
		ledgerReads:    counter("store_ledger_reads_total", "Times the store feed read events back from the ledger."),
		stored:         counter("stored_events_total", "Events written to the store by the intake."),
		storeErrors:    counter("store_errors_total", "Failed writes to the store (retried; the events are in the ledger)."),
		lag: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "vigil", Subsystem: "ingest", Name: "store_lag_records",
			Help: "Ledger records not yet in the store."}),
		appendSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "vigil", Subsystem: "ingest", Name: "ledger_append_seconds",
			Help:    "Time from a batch's ledger append to its fsync (the acknowledgement's cost).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
		sourceEvents: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "vigil", Subsystem: "ingest", Name: "source_events_total",
			Help: "Events accepted, by source."}, []string{"source"}),
		sourceQuarantined: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "vigil", Subsystem: "ingest", Name: "source_quarantined_total",
			Help: "Records quarantined, by source."}, []string{"source"}),
		sourceSkew: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "vigil", Subsystem: "ingest", Name: "source_skew_seconds",
			Help: "Receipt time minus event time, smoothed, by source."}, []string{"source"}),
		sourceLastEvent: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "vigil", Subsystem: "ingest", Name: "source_last_event_timestamp_seconds",
			Help: "Time of the newest event received, by source."}, []string{"source"}),
	}
	if reg != nil {
		reg.MustRegister(m.busy, m.duplicates, m.handoffDropped, m.ledgerReads, m.stored, m.storeErrors, m.lag, m.appendSeconds,
			m.sourceEvents, m.sourceQuarantined, m.sourceSkew, m.sourceLastEvent)
	}
	return m
}
