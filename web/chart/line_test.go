package chart

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

// wave is a series of n points a step apart from t0: base plus a swing.
func wave(t0 time.Time, step time.Duration, n int, base, swing float64) []Point {
	pts := make([]Point, n)
	for i := range pts {
		pts[i] = Point{t0.Add(time.Duration(i) * step), base + swing*math.Sin(float64(i)/5)}
	}
	return pts
}

func TestLineGolden(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	out := wave(t0, 10*time.Minute, 144, 2e9, 8e8)
	out[50].Value, out[51].Value = math.NaN(), math.Inf(1) // a gap
	out[100].Value = 5.5e9                                 // a spike
	in := wave(t0, 10*time.Minute, 144, 6e8, 2e8)
	var band []Band
	for i := 0; i < 144; i += 6 {
		band = append(band, Band{t0.Add(time.Duration(i) * 10 * time.Minute), 1e9, 3.2e9})
	}
	cost := wave(t0, time.Hour, 24*30, 3.4, 1.2)

	for _, tc := range []struct {
		name   string
		series []Series
		opts   LineOptions
	}{
		{"line_bytes", []Series{{"bytes out", out}, {"bytes in", in}},
			LineOptions{Label: "network traffic", Unit: "bytes", Band: band,
				Marks: []Mark{{out[100].Time, out[100].Value, "3.1σ above the baseline"}}}},
		{"line_usd", []Series{{Points: cost}}, LineOptions{Label: "cost per hour", Unit: "USD"}},
		{"line_percent", []Series{{"cpu", wave(t0, time.Minute, 60, 80, 17)}},
			LineOptions{Label: "CPU", Unit: "%", Location: time.FixedZone("CET", 3600), Width: 600, Height: 150}},
		{"line_empty", nil, LineOptions{Label: "nothing"}},
	} {
		t.Run(tc.name, func(t *testing.T) { golden(t, tc.name, Line(tc.series, tc.opts)) })
	}
}

func TestLineGaps(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	pts := []Point{
		{t0, 1}, {t0.Add(time.Minute), 2},
		{t0.Add(2 * time.Minute), math.NaN()},
		{t0.Add(3 * time.Minute), 3}, // alone between gaps: a dot
		{t0.Add(4 * time.Minute), math.Inf(-1)},
		{t0.Add(5 * time.Minute), 4}, {t0.Add(6 * time.Minute), 5},
	}
	out := string(Line([]Series{{"s", pts}}, LineOptions{}))
	if err := checkSVG(out); err != nil {
		t.Fatal(err)
	}
	d := out[strings.Index(out, `<path class="chart-line chart-line-0"`):]
	d = d[strings.Index(d, ` d="`)+4:]
	d = d[:strings.Index(d, `"`)]
	if n := strings.Count(d, "M"); n != 3 {
		t.Errorf("path %q: %d runs, want 3", d, n)
	}
	if !strings.Contains(d, "h0") {
		t.Errorf("path %q: the lone point is not drawn", d)
	}
	if strings.Contains(out, "NaN") || strings.Contains(out, "Inf") {
		t.Errorf("not a number in\n%s", out)
	}
}

func TestLineEmpty(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	for name, series := range map[string][]Series{
		"nil":        nil,
		"no points":  {{Name: "a"}, {Name: "b"}},
		"all NaN":    {{"a", []Point{{t0, math.NaN()}, {t0.Add(time.Minute), math.Inf(1)}}}},
		"empty name": {{}},
	} {
		out := Line(series, LineOptions{})
		if err := checkSVG(out); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if !strings.Contains(string(out), ">no data</text>") {
			t.Errorf("%s: %s", name, out)
		}
	}
	// A band alone, or a mark alone, is something to draw.
	out := string(Line(nil, LineOptions{Marks: []Mark{{t0, 5, "why"}}}))
	if !strings.Contains(out, `class="chart-anomaly"`) || strings.Contains(out, "no data") {
		t.Errorf("a mark alone:\n%s", out)
	}
}

func TestLineSeriesClasses(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	var series []Series
	for i := range 10 {
		series = append(series, Series{fmt.Sprintf("s%d", i), wave(t0, time.Minute, 10, float64(i), 1)})
	}
	out := string(Line(series, LineOptions{}))
	for _, want := range []string{"chart-line-0", "chart-line-7", "chart-line-1"} {
		if !strings.Contains(out, `class="chart-line `+want+`"`) {
			t.Errorf("no %s", want)
		}
	}
	if n := strings.Count(out, `<path class="chart-line chart-line-`); n < 10+1 {
		t.Errorf("%d paths for 10 series and their legend", n)
	}
	// Series 8 and 9 take the classes of series 0 and 1 again.
	if n := strings.Count(out, `<path class="chart-line chart-line-1"`); n < 2 {
		t.Errorf("series 9 is not chart-line-1")
	}
	if !strings.Contains(out, "<title>s9</title>") {
		t.Error("series 9 has no title")
	}
}

func TestLegendOverflow(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	var series []Series
	for i := range 30 {
		series = append(series, Series{strings.Repeat("long name ", 3) + fmt.Sprint(i), wave(t0, time.Minute, 3, 1, 1)})
	}
	out := string(Line(series, LineOptions{Width: 600}))
	if !strings.Contains(out, " more</text>") {
		t.Errorf("no count of the series left out of the legend:\n%s", out)
	}
	if err := checkSVG(out); err != nil {
		t.Fatal(err)
	}
}

func TestThin(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	pts := make([]Point, 1_000_000)
	for i := range pts {
		pts[i] = Point{t0.Add(time.Duration(i) * time.Second), float64(i % 1000)}
	}
	pts[777_777].Value = 1e6 // one spike among a million
	out := string(Line([]Series{{"a", pts}}, LineOptions{}))
	if len(out) > 200_000 {
		t.Errorf("%d bytes for a million points", len(out))
	}
	if err := checkSVG(out); err != nil {
		t.Fatal(err)
	}
	// The spike is the top of the plot: y = legend row.
	if !strings.Contains(out, fmt.Sprintf(" %s ", num(legendH))) && !strings.Contains(out, fmt.Sprintf(" %sL", num(legendH))) {
		t.Errorf("the spike was thinned away")
	}

	run := []xy{{0.1, 5}, {0.2, 1}, {0.3, 9}, {0.4, 4}, {0.5, 6}, {1.1, 3}, {1.2, 3}}
	got := fmt.Sprint(thin(run))
	if want := "[{0.1 5} {0.2 1} {0.3 9} {0.5 6} {1.1 3} {1.2 3}]"; got != want {
		t.Errorf("thin = %s, want %s", got, want)
	}
}

func TestMarks(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	marks := make([]Mark, 600)
	for i := range marks {
		marks[i] = Mark{t0.Add(time.Duration(i) * time.Minute), float64(i), ""}
	}
	marks[3] = Mark{t0, math.NaN(), "skipped"}
	out := string(Line(nil, LineOptions{Marks: marks, Unit: "bytes"}))
	if n := strings.Count(out, `class="chart-anomaly"`); n != maxMarks {
		t.Errorf("%d marks drawn, want %d", n, maxMarks)
	}
	if !strings.Contains(out, ">99 more anomalies not shown</text>") {
		t.Errorf("the marks left out are not counted")
	}
	if !strings.Contains(out, "<title>anomaly — 2026-12-03 00:02 UTC: 2 B</title>") {
		t.Errorf("no default title:\n%.2000s", out)
	}
	if strings.Contains(out, "skipped") {
		t.Errorf("a mark at NaN was drawn")
	}
}

// TestLineRange: a chart of a range spans the range, so that a series
// that starts halfway starts halfway across, and one that strays beyond
// it still shows whole.
func TestLineRange(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	firstX := func(out string) float64 {
		d := out[strings.Index(out, `<path class="chart-line chart-line-0"`):]
		d = d[strings.Index(d, ` d="M`)+5:]
		var x float64
		fmt.Sscanf(d, "%g", &x)
		return x
	}
	late := []Series{{"s", wave(t0.Add(12*time.Hour), time.Hour, 12, 5, 1)}}
	whole := firstX(string(Line(late, LineOptions{})))
	ranged := firstX(string(Line(late, LineOptions{From: t0, To: t0.Add(24 * time.Hour)})))
	// The plot is about 950 units wide: halfway is near 500.
	if ranged < whole+400 {
		t.Errorf("the series starts at x=%g over the range, at x=%g over its own extent", ranged, whole)
	}
	// A range inside the data does not cut it.
	inside := string(Line(late, LineOptions{From: t0.Add(13 * time.Hour), To: t0.Add(14 * time.Hour)}))
	if x := firstX(inside); math.Abs(x-whole) > 1 {
		t.Errorf("a range inside the data moved its start from x=%g to x=%g", whole, x)
	}
}
