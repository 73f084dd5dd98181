package detect

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/event"
)

const specDir = "../../shared/testdata/sigma-specification"

// baseRules returns, for each rule a correlation refers to, a rule that
// matches JSON events whose field "rule" holds that reference: the
// specification's examples correlate Windows rules that are not given.
func baseRules(t *testing.T, refs []string) []*Rule {
	t.Helper()
	var out []*Rule
	for i, ref := range refs {
		src := fmt.Sprintf("title: base %d\nid: %s\nname: %s\nlogsource: {}\ndetection:\n  s: {rule: %q}\n  condition: s\n", i, ref, ref, ref)
		rs, err := Parse("base.yml", []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rs...)
	}
	return out
}

// loadCorrelation loads a correlation example and base rules for it.
func loadCorrelation(t *testing.T, path string) *Engine {
	t.Helper()
	rules, err := ParseFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return withBaseRules(t, path, rules)
}

// correlationEngine compiles a correlation rule given as YAML, with base
// rules for it.
func correlationEngine(t *testing.T, src string) *Engine {
	t.Helper()
	rules, err := Parse("c.yml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return withBaseRules(t, "c.yml", rules)
}

// withBaseRules compiles rules, one of them a correlation, with a base
// rule (baseRules) for each rule the correlation refers to.
func withBaseRules(t *testing.T, file string, rules []*Rule) *Engine {
	t.Helper()
	var corr *Rule
	for _, r := range rules {
		if r.IsCorrelation() {
			corr = r
		}
	}
	if corr == nil {
		t.Fatalf("%s: no correlation rule", file)
	}
	e, err := NewEngine(append(baseRules(t, corr.Correlation().Rules), rules...), Options{})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

var t0 = time.Date(2024, 7, 10, 12, 0, 0, 0, time.UTC)

// ev is a JSON event at t0+at with the given fields.
func ev(at time.Duration, fields map[string]any) *event.Event {
	raw, _ := json.Marshal(fields)
	return &event.Event{Source: "json", Time: t0.Add(at), Raw: raw, ID: fmt.Sprint(at)}
}

// run feeds events in order and returns the ids of the correlation rules
// that matched, one per match, with the index of the event that
// completed it.
func run(e *Engine, evs []*event.Event) []string {
	d := e.NewDetector()
	var out []string
	for i, x := range evs {
		x.Seq = uint64(i + 1)
		for _, det := range d.Process(x) {
			if det.Rule.IsCorrelation() {
				out = append(out, fmt.Sprintf("%d", i))
			}
		}
	}
	return out
}

func TestCorrelationExamplesLoad(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(specDir, "tests/schema/correlation/*.yml"))
	for _, n := range []int{5, 6, 7, 8, 9, 10, 11, 14} {
		files = append(files, filepath.Join(specDir, fmt.Sprintf("correlation-examples-extracted/example_%02d.yml", n)))
	}
	if len(files) < 16 {
		t.Fatalf("found %d example files", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) { loadCorrelation(t, f) })
	}
	// Example 1 is a fragment showing rules: by id and by name, with no
	// type or timespan.
	_, err := ParseFile(filepath.Join(specDir, "correlation-examples-extracted/example_01.yml"))
	if err == nil || !strings.Contains(err.Error(), "correlation has no type") {
		t.Errorf("example 1: %v", err)
	}
}

func repeat(n int, at func(i int) time.Duration, fields func(i int) map[string]any) []*event.Event {
	var out []*event.Event
	for i := range n {
		out = append(out, ev(at(i), fields(i)))
	}
	return out
}

func TestEventCount(t *testing.T) {
	// Many failed logins: 100 or more in an hour, per ComputerName.
	e := loadCorrelation(t, filepath.Join(specDir, "tests/schema/correlation/event_count.yml"))
	rule := "5638f7c0-ac70-491d-8465-2a65075e0d86"
	login := func(host string) func(int) map[string]any {
		return func(int) map[string]any { return map[string]any{"rule": rule, "ComputerName": host} }
	}
	tests := []struct {
		name string
		evs  []*event.Event
		want string
	}{
		{"99 in an hour", repeat(99, func(i int) time.Duration { return time.Duration(i) * time.Second }, login("pc1")), ""},
		{"100 in an hour", repeat(100, func(i int) time.Duration { return time.Duration(i) * time.Second }, login("pc1")), "99"},
		{"100 within exactly the timespan", repeat(100, func(i int) time.Duration {
			if i == 99 {
				return time.Hour
			}
			return time.Duration(i) * time.Second
		}, login("pc1")), "99"},
		{"100 over a second more than the timespan", repeat(100, func(i int) time.Duration {
			if i == 99 {
				return time.Hour + time.Second
			}
			return time.Duration(i) * time.Second
		}, login("pc1")), ""},
		{"100 over two hosts", repeat(100, func(i int) time.Duration { return time.Duration(i) * time.Second }, func(i int) map[string]any {
			return login(fmt.Sprint("pc", i%2))(i)
		}), ""},
		{"no ComputerName is in no group", repeat(100, func(i int) time.Duration { return 0 }, func(int) map[string]any { return map[string]any{"rule": rule} }), ""},
		{"200 fire twice", repeat(200, func(i int) time.Duration { return time.Duration(i) * time.Second }, login("pc1")), "99,199"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := strings.Join(run(e, tt.evs), ","); got != tt.want {
				t.Errorf("matched at events %q, want %q", got, tt.want)
			}
		})
	}
}

func TestValueCount(t *testing.T) {
	// 100 or more distinct users on one ComputerName/WorkstationName in a
	// day.
	e := loadCorrelation(t, filepath.Join(specDir, "correlation-examples-extracted/example_06.yml"))
	rule := "5638f7c0-ac70-491d-8465-2a65075e0d86"
	users := func(distinct int) func(int) map[string]any {
		return func(i int) map[string]any {
			return map[string]any{"rule": rule, "ComputerName": "pc", "WorkstationName": "ws", "User": fmt.Sprint("u", i%distinct)}
		}
	}
	min := func(i int) time.Duration { return time.Duration(i) * time.Minute }
	if got := run(e, repeat(300, min, users(99))); len(got) != 0 {
		t.Errorf("99 distinct users matched at %v", got)
	}
	if got := run(e, repeat(100, min, users(100))); strings.Join(got, ",") != "99" {
		t.Errorf("100 distinct users matched at %v, want [99]", got)
	}
	// 100 users over more than a day.
	if got := run(e, repeat(100, func(i int) time.Duration { return time.Duration(i) * 15 * time.Minute }, users(100))); len(got) != 0 {
		t.Errorf("100 users over 25 hours matched at %v", got)
	}
}

func TestTemporal(t *testing.T) {
	e := loadCorrelation(t, filepath.Join(specDir, "tests/schema/correlation/temporal.yml"))
	cmd := func(r string, at time.Duration, user string) *event.Event {
		return ev(at, map[string]any{"rule": r, "ComputerName": "pc", "User": user})
	}
	tests := []struct {
		name string
		evs  []*event.Event
		want string
	}{
		{"all three in 5m, any order", []*event.Event{cmd("recon_cmd_c", 0, "u"), cmd("recon_cmd_a", time.Minute, "u"), cmd("recon_cmd_b", 4*time.Minute, "u")}, "2"},
		{"two of three", []*event.Event{cmd("recon_cmd_a", 0, "u"), cmd("recon_cmd_b", time.Minute, "u"), cmd("recon_cmd_b", 2*time.Minute, "u")}, ""},
		{"spread over 6m", []*event.Event{cmd("recon_cmd_a", 0, "u"), cmd("recon_cmd_b", time.Minute, "u"), cmd("recon_cmd_c", 6*time.Minute, "u")}, ""},
		{"other user", []*event.Event{cmd("recon_cmd_a", 0, "u"), cmd("recon_cmd_b", time.Minute, "u"), cmd("recon_cmd_c", 2*time.Minute, "v")}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := strings.Join(run(e, tt.evs), ","); got != tt.want {
				t.Errorf("matched at events %q, want %q", got, tt.want)
			}
		})
	}
}

func TestTemporalOrdered(t *testing.T) {
	e := loadCorrelation(t, filepath.Join(specDir, "tests/schema/correlation/temporal_ordered.yml"))
	cmd := func(r string, at time.Duration) *event.Event {
		return ev(at, map[string]any{"rule": r, "ComputerName": "pc", "User": "u"})
	}
	tests := []struct {
		name string
		evs  []*event.Event
		want string
	}{
		{"in order", []*event.Event{cmd("recon_cmd_a", 0), cmd("recon_cmd_b", time.Minute), cmd("recon_cmd_c", 2*time.Minute)}, "2"},
		{"reversed", []*event.Event{cmd("recon_cmd_c", 0), cmd("recon_cmd_b", time.Minute), cmd("recon_cmd_a", 2*time.Minute)}, ""},
		{"b before a, then in order", []*event.Event{cmd("recon_cmd_b", 0), cmd("recon_cmd_a", time.Minute), cmd("recon_cmd_c", 2*time.Minute), cmd("recon_cmd_b", 3*time.Minute), cmd("recon_cmd_c", 4*time.Minute)}, "4"},
		{"in order, too slow", []*event.Event{cmd("recon_cmd_a", 0), cmd("recon_cmd_b", 3*time.Minute), cmd("recon_cmd_c", 6*time.Minute)}, ""},
		{"a restarted late", []*event.Event{cmd("recon_cmd_a", 0), cmd("recon_cmd_a", 4*time.Minute), cmd("recon_cmd_b", 6*time.Minute), cmd("recon_cmd_c", 8*time.Minute)}, "3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := strings.Join(run(e, tt.evs), ","); got != tt.want {
				t.Errorf("matched at events %q, want %q", got, tt.want)
			}
		})
	}
}

func TestValueSumAvgPercentile(t *testing.T) {
	sum := loadCorrelation(t, filepath.Join(specDir, "correlation-examples-extracted/example_09.yml"))
	bytes := func(n int) func(int) map[string]any {
		return func(int) map[string]any {
			return map[string]any{"rule": "website_access", "SourceIP": "10.0.0.1", "User": "u", "bytes_sent": n}
		}
	}
	min := func(i int) time.Duration { return time.Duration(i) * time.Minute }
	if got := run(sum, repeat(10, min, bytes(100_000))); len(got) != 0 {
		t.Errorf("value_sum 1,000,000 (not > 1,000,000) matched at %v", got)
	}
	if got := run(sum, repeat(11, min, bytes(100_000))); strings.Join(got, ",") != "10" {
		t.Errorf("value_sum 1,100,000 matched at %v, want [10]", got)
	}
	if got := run(sum, repeat(11, func(i int) time.Duration { return time.Duration(i) * 7 * time.Minute }, bytes(100_000))); len(got) != 0 {
		t.Errorf("value_sum over 70 minutes matched at %v", got)
	}

	avg := loadCorrelation(t, filepath.Join(specDir, "correlation-examples-extracted/example_10.yml"))
	out := func(n func(int) int) func(int) map[string]any {
		return func(i int) map[string]any {
			return map[string]any{"rule": "rule_a_id", "SourceIP": "10.0.0.1", "User": "u", "BytesOut": n(i)}
		}
	}
	if got := run(avg, repeat(4, min, out(func(i int) int { return 400 + 100*i }))); strings.Join(got, ",") != "3" {
		// 400, 500, 600, 700: the average is 550 at the fourth.
		t.Errorf("value_avg matched at %v, want [3]", got)
	}

	pct := loadCorrelation(t, filepath.Join(specDir, "correlation-examples-extracted/example_11.yml"))
	img := func(i int) map[string]any {
		name := "svchost.exe"
		if i == 150 {
			name = "mimikatz.exe"
		}
		return map[string]any{"rule": "process_creation", "ComputerName": "pc", "image": name}
	}
	// The rare image is 1 of 151 events (0.66%); the common one never
	// falls to 1%.
	if got := run(pct, repeat(151, min, img)); strings.Join(got, ",") != "150" {
		t.Errorf("value_percentile matched at %v, want [150]", got)
	}
}

func TestCorrelationAliases(t *testing.T) {
	// Example 14: an internal error and a new connection between the
	// same two addresses, seen from both ends, within 10 seconds.
	e := loadCorrelation(t, filepath.Join(specDir, "correlation-examples-extracted/example_14.yml"))
	evs := []*event.Event{
		ev(0, map[string]any{"rule": "internal_error", "destination": map[string]any{"ip": "10.0.0.5"}, "source": map[string]any{"ip": "198.51.100.9"}}),
		ev(5*time.Second, map[string]any{"rule": "new_network_connection", "source": map[string]any{"ip": "10.0.0.5"}, "destination": map[string]any{"ip": "198.51.100.9"}}),
	}
	if got := strings.Join(run(e, evs), ","); got != "1" {
		t.Errorf("matched at %q, want 1", got)
	}
	// The same addresses the same way round are not the pattern.
	evs[1] = ev(5*time.Second, map[string]any{"rule": "new_network_connection", "destination": map[string]any{"ip": "10.0.0.5"}, "source": map[string]any{"ip": "198.51.100.9"}})
	if got := strings.Join(run(e, evs), ","); got != "" {
		t.Errorf("matched at %q, want nothing", got)
	}
}

// TestCorrelationDeferred: a condition with an upper bound (fewer than 3
// in an hour) is decided when the window is over, by the next event of
// the group or by Flush.
func TestCorrelationDeferred(t *testing.T) {
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
	// Two heartbeats of a, three of b in the first hour; then one of b
	// after it, which closes b's window.
	evs := []*event.Event{hb(0, "a"), hb(0, "b"), hb(time.Minute, "a"), hb(time.Minute, "b"), hb(2*time.Minute, "b"), hb(61*time.Minute, "b")}
	if got := run(e, evs); len(got) != 0 {
		t.Errorf("matched at %v before any window was decided", got)
	}
	d := e.NewDetector()
	for _, x := range evs {
		d.Process(x)
	}
	got := d.Correlator().Flush(t0.Add(62 * time.Minute))
	if len(got) != 1 || got[0].Group["host"] != "a" || got[0].Value != 2 {
		t.Fatalf("Flush = %+v, want host a with 2 events", got)
	}
}

// TestCorrelationBounds: state stays within its bounds whatever arrives,
// and what is forgotten is counted.
func TestCorrelationBounds(t *testing.T) {
	defer func(g, e int) { maxGroups, maxGroupEvents = g, e }(maxGroups, maxGroupEvents)
	maxGroups, maxGroupEvents = 10, 5
	e := loadCorrelation(t, filepath.Join(specDir, "tests/schema/correlation/event_count.yml"))
	rule := "5638f7c0-ac70-491d-8465-2a65075e0d86"
	d := e.NewDetector()
	for i := range 100 {
		// 100 hosts, then 20 events of one host.
		d.Process(ev(time.Duration(i)*time.Second, map[string]any{"rule": rule, "ComputerName": fmt.Sprint("pc", i)}))
		if n := d.Correlator().Groups(); n > 10 {
			t.Fatalf("%d groups after %d events, bound 10", n, i+1)
		}
	}
	for i := range 20 {
		d.Process(ev(200*time.Second+time.Duration(i)*time.Second, map[string]any{"rule": rule, "ComputerName": "pc-x"}))
	}
	for _, gs := range d.Correlator().groups {
		for _, g := range gs {
			if g.events.len() > 5 {
				t.Fatalf("a group holds %d events, bound 5", g.events.len())
			}
		}
	}
	if d.Correlator().Dropped < 90+15 {
		t.Errorf("Dropped = %d, want at least the 90 groups and 15 events forgotten", d.Correlator().Dropped)
	}
}

// TestCorrelationEventTime: windows are in event time, whatever order
// events arrive in (sources deliver with different delays, and files are
// read in their own order).
func TestCorrelationEventTime(t *testing.T) {
	count := correlationEngine(t, `title: one address in three accounts
id: 1d3c9a52-8f0e-4a59-9b8e-6d1f2a3b4c5d
correlation:
    type: value_count
    rules: [activity]
    group-by: [ip]
    timespan: 1h
    condition: {gte: 3, field: account}
`)
	act := func(at time.Duration, account string) *event.Event {
		return ev(at, map[string]any{"rule": "activity", "ip": "198.51.100.7", "account": account})
	}
	ordered := loadCorrelation(t, filepath.Join(specDir, "tests/schema/correlation/temporal_ordered.yml"))
	cmd := func(r string, at time.Duration) *event.Event {
		return ev(at, map[string]any{"rule": r, "ComputerName": "pc", "User": "u"})
	}
	tests := []struct {
		name string
		e    *Engine
		evs  []*event.Event
		want string
		late int64
	}{
		{"days apart, arriving newest first", count, []*event.Event{act(50*time.Hour, "a"), act(0, "b"), act(25*time.Hour, "c")}, "", 2},
		{"late, within the window", count, []*event.Event{act(10*time.Minute, "a"), act(50*time.Minute, "b"), act(5*time.Minute, "c")}, "2", 0},
		{"late, before the window", count, []*event.Event{act(2*time.Hour, "a"), act(2*time.Hour+10*time.Minute, "b"), act(30*time.Minute, "c")}, "", 1},
		{"one account after the window", count, []*event.Event{act(0, "a"), act(50*time.Minute, "b"), act(61*time.Minute, "c")}, "", 0},
		{"ordered: the first rule arrives late", ordered, []*event.Event{cmd("recon_cmd_b", time.Minute), cmd("recon_cmd_a", 0), cmd("recon_cmd_c", 2*time.Minute)}, "2", 0},
		{"ordered: the last rule arrives first", ordered, []*event.Event{cmd("recon_cmd_c", 2*time.Minute), cmd("recon_cmd_a", 0), cmd("recon_cmd_b", time.Minute)}, "2", 0},
		{"ordered: arriving in order, happening in reverse", ordered, []*event.Event{cmd("recon_cmd_a", 2*time.Minute), cmd("recon_cmd_b", time.Minute), cmd("recon_cmd_c", 0)}, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := tt.e.NewDetector()
			var got []string
			for i, x := range tt.evs {
				x.Seq = uint64(i + 1)
				for _, det := range d.Process(x) {
					if !det.Rule.IsCorrelation() {
						continue
					}
					got = append(got, fmt.Sprint(i))
					// The events reported are in time order.
					for j := 1; j < len(det.Events); j++ {
						if det.Events[j].Time.Before(det.Events[j-1].Time) {
							t.Errorf("events out of time order: %v", det.Events)
						}
					}
				}
			}
			if g := strings.Join(got, ","); g != tt.want {
				t.Errorf("matched at events %q, want %q", g, tt.want)
			}
			if d.Correlator().Late != tt.late {
				t.Errorf("Late = %d, want %d", d.Correlator().Late, tt.late)
			}
		})
	}
}

// TestValuesModel: a group's values, kept incrementally (ids reused,
// looked up by scanning or by map), always count what a plain list of
// the window's values counts.
func TestValuesModel(t *testing.T) {
	for _, alphabet := range []int{1, 3, maxScanned, maxScanned + 1, 200} {
		rnd := rand.New(rand.NewPCG(uint64(alphabet), 7))
		var (
			v     values
			model []string
		)
		for step := range 20000 {
			if len(model) > 0 && rnd.IntN(3) == 0 {
				n := 1 + rnd.IntN(len(model))
				v.drop(n)
				model = model[n:]
			} else {
				val := fmt.Sprint("v", rnd.IntN(alphabet))
				at := len(model)
				if at > 0 && rnd.IntN(4) == 0 {
					at = rnd.IntN(at) // a late event
				}
				v.insert(at, []byte(val))
				model = slices.Insert(model, at, val)
			}
			counts := map[string]int32{}
			for _, m := range model {
				counts[m]++
			}
			if v.distinct != len(counts) || v.len() != len(model) {
				t.Fatalf("alphabet %d, step %d: %d distinct of %d, want %d of %d", alphabet, step, v.distinct, v.len(), len(counts), len(model))
			}
			for i, id := range v.items() {
				if v.names[id] != model[i] || v.counts[id] != counts[model[i]] {
					t.Fatalf("alphabet %d, step %d: value %d is %q counted %d, want %q counted %d", alphabet, step, i, v.names[id], v.counts[id], model[i], counts[model[i]])
				}
			}
		}
	}
}
