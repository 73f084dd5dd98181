package monitor

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/metric"
)

// start is a Monday: the generated series begin at it.
var start = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)

const week = 7 * 24 * time.Hour

// An incident is a change injected into a generated series over
// [from, to), which a rule should find.
type incident struct {
	name     string
	from, to time.Time
	apply    func(t time.Time, v float64) float64
}

// A kpi is a generated series of one of the four families: its usual
// shape, its noise, its step, the rule for it, and an incident of the
// kind it is watched for.
type kpi struct {
	rule     Rule
	step     time.Duration
	shape    func(t time.Time) float64 // the usual value
	noise    float64                   // the noise's standard deviation, as a share of the usual value
	incident incident
}

// office is a weekly shape: busy on weekdays from 8 to 19 UTC, quiet at
// night and at weekends.
func office(t time.Time, quiet, busy float64) float64 {
	h := float64(t.Hour()) + float64(t.Minute())/60
	day := 0.0
	if h >= 8 && h < 19 {
		day = math.Sin(math.Pi * (h - 8) / 11)
	}
	if wd := t.Weekday(); wd == time.Saturday || wd == time.Sunday {
		day *= 0.3
	}
	return quiet + (busy-quiet)*day
}

// kpis are the four families' series, each with its incident in the
// sixth week (weeks 1 to 4 are history, 5 to 8 evaluated).
func kpis() []kpi {
	at := func(day int, clock time.Duration) time.Time {
		return start.Add(5*week + time.Duration(day)*24*time.Hour + clock)
	}
	return []kpi{
		{
			rule: Rule{Name: "cost-jump", Metric: "cost_usd", Direction: "up", Change: 50, Season: "weekly-by-day", Severity: "high"},
			step: 24 * time.Hour,
			shape: func(t time.Time) float64 {
				if wd := t.Weekday(); wd == time.Saturday || wd == time.Sunday {
					return 60
				}
				return 120
			},
			noise: 0.05,
			// Crypto-mining: the account's daily cost four times what it
			// was, for three days.
			incident: incident{"cost jump", at(2, 0), at(5, 0), func(_ time.Time, v float64) float64 { return 4 * v }},
		},
		{
			rule:  Rule{Name: "egress-burst", Metric: "network_out_bytes", Direction: "up", Change: 5e7, For: Duration(15 * time.Minute)},
			step:  5 * time.Minute,
			shape: func(t time.Time) float64 { return office(t, 2e6, 4e7) },
			noise: 0.1,
			// Exfiltration at night: 45 minutes at five times the day's
			// peak, at 03:00 on a Wednesday.
			incident: incident{"egress burst at night", at(2, 3*time.Hour), at(2, 3*time.Hour+45*time.Minute), func(_ time.Time, v float64) float64 { return v + 2e8 }},
		},
		{
			rule:  Rule{Name: "cpu-ramp", Metric: "cpu_percent", Direction: "up", Change: 15, For: Duration(time.Hour)},
			step:  5 * time.Minute,
			shape: func(t time.Time) float64 { return office(t, 15, 55) },
			noise: 0.05,
			// A miner scaled up slowly: 40 points more over three days,
			// then held for a day.
			incident: incident{"slow ramp", at(1, 0), at(5, 0), func(t time.Time, v float64) float64 {
				return min(v+40*float64(t.Sub(at(1, 0)))/float64(72*time.Hour), 100)
			}},
		},
		{
			rule:  Rule{Name: "availability-lost", Metric: "up", Direction: "down", For: Duration(10 * time.Minute), Season: "none"},
			step:  time.Minute,
			shape: func(time.Time) float64 { return 1 },
			// A service down for half an hour on a Thursday afternoon.
			incident: incident{"outage", at(3, 14*time.Hour), at(3, 14*time.Hour+30*time.Minute), func(time.Time, float64) float64 { return 0 }},
		},
	}
}

// generate makes a kpi's series over eight weeks, with its incident if
// asked for.
func (k *kpi) generate(seed uint64, withIncident bool) *metric.Series {
	r := rand.New(rand.NewPCG(seed, 0x6b7069))
	s := &metric.Series{Metric: k.rule.Metric, Labels: metric.Labels{{Name: "account", Value: "111122223333"}}}
	for t := start; t.Before(start.Add(8 * week)); t = t.Add(k.step) {
		v := k.shape(t)
		v += r.NormFloat64() * k.noise * v
		if k.rule.Metric == "up" {
			v = 1
		}
		if withIncident && !t.Before(k.incident.from) && t.Before(k.incident.to) {
			v = k.incident.apply(t, v)
		}
		s.Samples = append(s.Samples, metric.Sample{Time: t, Value: max(v, 0)})
	}
	return s
}

// TestKPIRules: over four weeks evaluated after four of history, each
// family's rule finds its injected incident, at the right time and in
// the right direction, and finds nothing else; on the same series
// without the incident it finds nothing. Twenty seeds of noise each.
func TestKPIRules(t *testing.T) {
	const seeds = 20
	from, to := start.Add(4*week), start.Add(8*week)
	var found, injected, alerts, falseAlerts int
	for _, k := range kpis() {
		if err := k.rule.check(); err != nil {
			t.Fatal(err)
		}
		for seed := range uint64(seeds) {
			clean := k.rule.Evaluate(k.generate(seed, false), from, to)
			for _, a := range clean {
				t.Errorf("%s, seed %d, clean weeks: %s", k.rule.Name, seed, describe(a))
			}
			alerts += len(clean)
			falseAlerts += len(clean)

			injected++
			hit := false
			for _, a := range k.rule.Evaluate(k.generate(seed, true), from, to) {
				alerts++
				overlaps := !a.End.Before(k.incident.from) && a.Start.Before(k.incident.to)
				if !overlaps || a.Direction != k.rule.Direction {
					falseAlerts++
					t.Errorf("%s, seed %d: an anomaly that is not the %s: %s", k.rule.Name, seed, k.incident.name, describe(a))
					continue
				}
				hit = true
				if a.Expected == 0 || len(a.Observed) == 0 || len(a.Observed) != len(a.Levels) || a.Severity == "" {
					t.Errorf("%s: the anomaly lacks what the alert shows: %+v", k.rule.Name, a)
				}
			}
			if hit {
				found++
			} else {
				t.Errorf("%s, seed %d: the %s was not found", k.rule.Name, seed, k.incident.name)
			}
		}
	}
	t.Logf("recall %d/%d, precision %d/%d", found, injected, alerts-falseAlerts, alerts)
}

func describe(a Anomaly) string {
	return fmt.Sprintf("%s %s %s–%s peak %.3g (expected %.3g, score %.1f)", a.Rule, a.Direction,
		a.Start.Format(time.RFC3339), a.End.Format("15:04"), a.Peak.Value, a.Expected, a.Score)
}

// TestWarmUp: a series with less than two weeks of history has no
// baseline, and no anomaly, whatever it does.
func TestWarmUp(t *testing.T) {
	k := kpis()[1]
	s := k.generate(1, false)
	s.Samples = metric.Between(s.Samples, start.Add(5*week+24*time.Hour), start.Add(8*week))
	for i := range s.Samples {
		if i%50 == 0 {
			s.Samples[i].Value *= 100
		}
	}
	if err := k.rule.check(); err != nil {
		t.Fatal(err)
	}
	if got := k.rule.Evaluate(s, start.Add(6*week), start.Add(8*week)); len(got) != 0 {
		t.Errorf("anomalies while warming up: %s", describe(got[0]))
	}
	b := Fit(s.Samples, seasons["weekly"], start.Add(5*week), start.Add(6*week))
	if _, _, ok := b.Score(start.Add(6*week), 1); ok {
		t.Error("a score from a week of history")
	}
}

// TestAggregate: series alike in the rule's labels are summed, sample
// time by sample time.
func TestAggregate(t *testing.T) {
	t0 := start
	series := []metric.Series{
		{Metric: "network_out_bytes", Labels: metric.NewLabels(map[string]string{"account": "1", "instance": "i-a"}), Samples: []metric.Sample{{Time: t0, Value: 1}, {Time: t0.Add(time.Minute), Value: 2}}},
		{Metric: "network_out_bytes", Labels: metric.NewLabels(map[string]string{"account": "1", "instance": "i-b"}), Samples: []metric.Sample{{Time: t0.Add(time.Minute), Value: 10}}},
		{Metric: "network_out_bytes", Labels: metric.NewLabels(map[string]string{"account": "2", "instance": "i-c"}), Samples: []metric.Sample{{Time: t0, Value: 100}}},
		{Metric: "cpu_percent", Labels: metric.NewLabels(map[string]string{"account": "1"}), Samples: []metric.Sample{{Time: t0, Value: 50}}},
	}
	got := Aggregate(series, "network_out_bytes", []string{"account"})
	var text []string
	for _, s := range got {
		text = append(text, fmt.Sprint(s.Labels, s.Samples[0].Value, len(s.Samples)))
	}
	if want := `{account="1"} 1 2,{account="2"} 100 1`; strings.Join(text, ",") != want || got[0].Samples[1].Value != 12 {
		t.Errorf("got %s, want %s", strings.Join(text, ","), want)
	}
	if n := len(Aggregate(series, "network_out_bytes", nil)); n != 3 {
		t.Errorf("without by: %d series, want 3", n)
	}
}

// TestRuleMatch: a rule's match keeps only the series it names, before
// they are summed: an incident in a series it does not match is not
// the rule's.
func TestRuleMatch(t *testing.T) {
	k := kpis()[1] // egress, with its burst at night
	clean, burst := k.generate(1, false), k.generate(1, true)
	clean.Labels = metric.Labels{{Name: "account", Value: "1"}, {Name: "state", Value: "user"}}
	burst.Labels = metric.Labels{{Name: "account", Value: "1"}, {Name: "state", Value: "idle"}}
	from, to := start.Add(4*week), start.Add(8*week)
	for _, tc := range []struct {
		match map[string]string
		want  bool
	}{{nil, true}, {map[string]string{"state": "user"}, false}, {map[string]string{"state": "idle"}, true}} {
		r := k.rule
		r.Match, r.By = tc.match, []string{"account"}
		if err := r.check(); err != nil {
			t.Fatal(err)
		}
		if got := len(r.EvaluateAll([]metric.Series{*clean, *burst}, from, to)) > 0; got != tc.want {
			t.Errorf("match %v: anomalies %v, want %v", tc.match, got, tc.want)
		}
	}
}

func TestLoadRules(t *testing.T) {
	for _, tc := range []struct{ yaml, err string }{
		{"- {name: a, metric: cost_usd, season: weekly-by-day, for: 1h, by: [account]}", ""},
		{"- {name: a}", "no metric"},
		{"- {name: a, metric: m, direction: sideways}", `direction "sideways"`},
		{"- {name: a, metric: m, season: monthly}", `season "monthly"`},
		{"- {name: a, metric: m, for: soon}", `"soon" is not a duration`},
		{"- {name: a, metric: m, history: 1}", "history 1"},
		{"- {name: a, metric: m, score: -1}", "score -1"},
		{"- {name: a, metric: m}\n- {name: a, metric: n}", `a second rule named "a"`},
		{"- {name: a, metric: m, treshold: 3}", "field treshold not found"},
	} {
		rules, err := LoadRules(strings.NewReader(tc.yaml))
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", tc.yaml, err)
		case tc.err == "" && (rules[0].Score != 6 || rules[0].History != 4 || rules[0].Direction != "up" || rules[0].For != Duration(time.Hour)):
			t.Errorf("%s: defaults %+v", tc.yaml, rules[0])
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: error %v, want %q", tc.yaml, err, tc.err)
		}
	}
}
