package monitor

import (
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/vigilsec/vigil/metric"
	"gopkg.in/yaml.v3"
)

// A Rule says which strays of a metric are anomalies: those in its
// direction, by at least Score scales and Change in the metric's unit,
// that last at least For.
type Rule struct {
	Name   string `yaml:"name"`
	Metric string `yaml:"metric"`
	// Match keeps the metric's series whose labels have these values
	// (state: user). By are the labels whose values make a series: the
	// series alike in them are summed (egress per account: by
	// [account]). None: each series on its own.
	Match map[string]string `yaml:"match"`
	By    []string          `yaml:"by"`
	// Direction is up (the default), down or both.
	Direction string `yaml:"direction"`
	// Score is how many scales from the baseline a value must be (6 by
	// default), and Change how far in the metric's unit (0 by default).
	Score  float64 `yaml:"score"`
	Change float64 `yaml:"change"`
	// For is how long a stray must last, from its first sample to its
	// last: one sample when zero.
	For Duration `yaml:"for"`
	// Season is weekly (the default: by the hour of the week),
	// weekly-by-day (a cost reported daily), daily or none; History how
	// many of its periods the baseline learns from (4 by default).
	Season  string `yaml:"season"`
	History int    `yaml:"history"`
	// Severity is the anomaly's alert's: low, medium (the default), high
	// or critical.
	Severity    string `yaml:"severity"`
	Description string `yaml:"description"`
}

// A Duration is a time.Duration written as Go writes one: 15m, 1h30m.
type Duration time.Duration

func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return fmt.Errorf("line %d: %q is not a duration such as 15m", n.Line, s)
	}
	*d = Duration(v)
	return nil
}

// LoadRules reads a YAML list of rules, and checks each.
func LoadRules(r io.Reader) ([]Rule, error) {
	dec := yaml.NewDecoder(r)
	dec.KnownFields(true)
	var rules []Rule
	if err := dec.Decode(&rules); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("monitor rules: %w", err)
	}
	return rules, CheckRules(rules)
}

// CheckRules fills the rules' defaults and says what is wrong with the
// first that is wrong.
func CheckRules(rules []Rule) error {
	names := map[string]bool{}
	for i := range rules {
		r := &rules[i]
		if err := r.check(); err != nil {
			return fmt.Errorf("monitor rule %d (%s): %w", i+1, r.Name, err)
		}
		if names[r.Name] {
			return fmt.Errorf("monitor rule %d: a second rule named %q", i+1, r.Name)
		}
		names[r.Name] = true
	}
	return nil
}

// DefaultRules are the rules vigil serve runs when the config names
// none: on the metrics vigil makes itself, an account's daily cost of a
// service jumping (crypto-mining), bytes out of or into an interface
// far above their usual (exfiltration, DoS), a probed service
// unavailable; and on OpenTelemetry's host metrics, an account's CPU
// saturated across its hosts at once.
func DefaultRules() []Rule {
	rules := []Rule{
		{Name: "cost-jump", Metric: CostMetric, By: []string{"provider", "account", "service", "currency"}, Direction: "up",
			Change: 50, Season: "weekly-by-day", Severity: "high",
			Description: "An account's daily cost of a service far above its usual for the day of the week: crypto-mining, or a runaway job."},
		{Name: "egress-burst", Metric: NetworkOutBytes, By: []string{"provider", "account", "interface"}, Direction: "up",
			Change: 1e8, For: Duration(10 * time.Minute), Severity: "high",
			Description: "Far more bytes out to the internet from a network interface than usual at that hour of the week, for ten minutes or more: exfiltration."},
		{Name: "ingress-spike", Metric: NetworkInBytes, By: []string{"provider", "account", "interface"}, Direction: "up",
			Change: 1e8, For: Duration(10 * time.Minute), Severity: "medium",
			Description: "Far more bytes in from the internet to a network interface than usual at that hour of the week, for ten minutes or more: a DoS, or a large download to stage tools."},
		{Name: "cpu-saturation", Metric: "system.cpu.utilization", Match: map[string]string{"state": "user"}, By: []string{"cloud.account.id"}, Direction: "up",
			Change: 2, For: Duration(15 * time.Minute), Severity: "high",
			Description: "The user CPU used across an account's hosts (OpenTelemetry's system.cpu.utilization, state user, summed) far above its usual for the hour of the week, by two CPUs or more, for fifteen minutes: crypto-mining or malware on many machines at once."},
		{Name: "availability-lost", Metric: ProbeUp, By: []string{"probe", "target"}, Direction: "down",
			For: Duration(2 * time.Minute), Season: "none", Severity: "high",
			Description: "A probed service failed its checks for two minutes or more."},
	}
	if err := CheckRules(rules); err != nil {
		panic(err) // the rules above are wrong
	}
	return rules
}

// check fills a rule's defaults, and says what is wrong with it.
func (r *Rule) check() error {
	switch {
	case r.Name == "":
		return errors.New("no name")
	case r.Metric == "":
		return errors.New("no metric")
	}
	switch r.Direction {
	case "":
		r.Direction = "up"
	case "up", "down", "both":
	default:
		return fmt.Errorf("direction %q: want up, down or both", r.Direction)
	}
	if _, ok := seasons[r.Season]; !ok {
		return fmt.Errorf("season %q: want weekly, weekly-by-day, daily or none", r.Season)
	}
	if r.Score == 0 {
		r.Score = 6
	}
	if r.History == 0 {
		r.History = 4
	}
	switch {
	case r.Score < 0 || math.IsNaN(r.Score):
		return fmt.Errorf("score %v: want a positive number of scales", r.Score)
	case r.Change < 0 || math.IsNaN(r.Change):
		return fmt.Errorf("change %v: want a positive change", r.Change)
	case r.History < minPeriods || r.History > 52:
		return fmt.Errorf("history %d: want %d to 52 periods", r.History, minPeriods)
	}
	switch r.Severity {
	case "":
		r.Severity = "medium"
	case "low", "medium", "high", "critical":
	default:
		return fmt.Errorf("severity %q: want low, medium, high or critical", r.Severity)
	}
	return nil
}

// HistorySpan is how far back the baseline of a day looks.
func (r *Rule) HistorySpan() time.Duration {
	period := seasons[r.Season].Period
	if period == 0 {
		period = 7 * 24 * time.Hour
	}
	return time.Duration(r.History) * period
}

// An Anomaly is a run of a series' samples that strayed from its
// baseline as a rule says, with what was expected of them.
type Anomaly struct {
	Rule     string
	Severity string
	Metric   string
	Labels   metric.Labels
	// Start and End are the times of the first and last stray samples.
	Start, End time.Time
	Direction  string // up or down
	// Peak is the sample that strayed most, Score how many scales it
	// strayed, and Expected the baseline's level at its time.
	Peak     metric.Sample
	Score    float64
	Expected float64
	// Observed are the stray samples, and Levels the baseline's level at
	// each, the first maxObserved.
	Observed, Levels []metric.Sample
}

// maxObserved bounds the samples an Anomaly carries.
const maxObserved = 288

// Evaluate finds the anomalies of a series in [from, to). The baseline
// is fit anew for each day of the window on the History periods before
// that day, as a pass that runs every few minutes would have it. A run
// starts at a sample that strays by the rule's score, and goes on while
// samples stray by half of it, so that a burst that wavers is one
// anomaly, not several.
func (r *Rule) Evaluate(s *metric.Series, from, to time.Time) []Anomaly {
	season := seasons[r.Season]
	history := r.HistorySpan()
	var (
		out []Anomaly
		run *Anomaly
	)
	end := func() {
		if run != nil && run.End.Sub(run.Start) >= time.Duration(r.For) {
			out = append(out, *run)
		}
		run = nil
	}
	for day := from.Truncate(24 * time.Hour); day.Before(to); day = day.Add(24 * time.Hour) {
		b := Fit(s.Samples, season, day.Add(-history), day)
		lo, hi := maxTime(day, from), minTime(day.Add(24*time.Hour), to)
		for _, x := range metric.Between(s.Samples, lo, hi) {
			score, level, ok := b.Score(x.Time, x.Value)
			dir, need := "up", r.Score
			if score < 0 {
				dir = "down"
			}
			if run != nil && run.Direction == dir {
				need /= 2
			}
			if !ok || !r.strays(dir, score, x.Value-level, need) {
				end()
				continue
			}
			if run != nil && run.Direction != dir {
				end()
			}
			if run == nil {
				run = &Anomaly{Rule: r.Name, Severity: r.Severity, Metric: s.Metric, Labels: s.Labels, Start: x.Time, Direction: dir}
			}
			run.End = x.Time
			if math.Abs(score) > math.Abs(run.Score) {
				run.Peak, run.Score, run.Expected = x, score, level
			}
			if len(run.Observed) < maxObserved {
				run.Observed = append(run.Observed, x)
				run.Levels = append(run.Levels, metric.Sample{Time: x.Time, Value: level})
			}
		}
	}
	end()
	return out
}

// strays reports whether a value strays as the rule says.
func (r *Rule) strays(dir string, score, change, need float64) bool {
	if r.Direction != "both" && r.Direction != dir {
		return false
	}
	return math.Abs(score) >= need && math.Abs(change) >= r.Change
}

// EvaluateAll keeps the rule's metric's series that match it, sums them
// by its labels and evaluates each sum.
func (r *Rule) EvaluateAll(series []metric.Series, from, to time.Time) []Anomaly {
	if len(r.Match) > 0 {
		series = slices.DeleteFunc(slices.Clone(series), func(s metric.Series) bool {
			for k, v := range r.Match {
				if s.Labels.Get(k) != v {
					return true
				}
			}
			return false
		})
	}
	var out []Anomaly
	for _, s := range Aggregate(series, r.Metric, r.By) {
		out = append(out, r.Evaluate(&s, from, to)...)
	}
	return out
}

// Aggregate sums the series of the metric name that are alike in the labels
// by, at each time any of them has a sample. With no labels by, it
// returns the metric's series as they are.
func Aggregate(series []metric.Series, name string, by []string) []metric.Series {
	var out []metric.Series
	if len(by) == 0 {
		for _, s := range series {
			if s.Metric == name {
				out = append(out, s)
			}
		}
		return out
	}
	index := map[string]int{}
	sums := map[string]map[int64]float64{}
	for _, s := range series {
		if s.Metric != name {
			continue
		}
		m := map[string]string{}
		var key strings.Builder
		for _, name := range by {
			v := s.Labels.Get(name)
			m[name] = v
			key.WriteString(v)
			key.WriteByte(0)
		}
		k := key.String()
		if _, ok := index[k]; !ok {
			index[k] = len(out)
			out = append(out, metric.Series{Metric: name, Labels: metric.NewLabels(m)})
			sums[k] = map[int64]float64{}
		}
		for _, x := range s.Samples {
			sums[k][x.Time.UnixNano()] += x.Value
		}
	}
	for k, i := range index {
		times := make([]int64, 0, len(sums[k]))
		for t := range sums[k] {
			times = append(times, t)
		}
		slices.Sort(times)
		samples := make([]metric.Sample, len(times))
		for j, t := range times {
			samples[j] = metric.Sample{Time: time.Unix(0, t).UTC(), Value: sums[k][t]}
		}
		out[i].Samples = samples
	}
	return out
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
