package chart

import (
	"fmt"
	"math"
	"net/url"
	"strings"
	"testing"
	"time"
)

// minutes returns n buckets of a minute from t0, with the counts given
// (cycled).
func minutes(t0 time.Time, n int, counts ...int64) []Bucket {
	bs := make([]Bucket, n)
	for i := range bs {
		s := t0.Add(time.Duration(i) * time.Minute)
		bs[i] = Bucket{Start: s, End: s.Add(time.Minute), Count: counts[i%len(counts)]}
	}
	return bs
}

func zoom(from, to time.Time) string {
	return "/search?" + url.Values{"q": {"action=ConsoleLogin"}, "from": {from.Format(time.RFC3339)}, "to": {to.Format(time.RFC3339)}}.Encode()
}

func TestHistogramGolden(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 14, 0, 0, 0, time.UTC)
	hours := make([]Bucket, 48)
	for i := range hours {
		s := t0.Add(time.Duration(i) * time.Hour)
		hours[i] = Bucket{s, s.Add(time.Hour), int64(1000 + 900*math.Sin(float64(i)/4))}
	}
	for _, tc := range []struct {
		name    string
		buckets []Bucket
		opts    HistogramOptions
	}{
		{"histogram_hour", minutes(t0, 60, 3, 7, 0, 12, 5, 0, 0, 1, 9, 4),
			HistogramOptions{Label: "events over time", Link: zoom}},
		{"histogram_two_days_ist", hours,
			HistogramOptions{Label: "events over time", Location: time.FixedZone("IST", 5*3600+1800)}},
		{"histogram_single", []Bucket{{t0, t0.Add(5 * time.Minute), 42}},
			HistogramOptions{Label: "events over time", Width: 400, Height: 100}},
		{"histogram_zero", minutes(t0, 10, 0), HistogramOptions{Label: "events over time"}},
		{"histogram_empty", nil, HistogramOptions{Label: "events over time"}},
	} {
		t.Run(tc.name, func(t *testing.T) { golden(t, tc.name, Histogram(tc.buckets, tc.opts)) })
	}
}

func TestHistogramBars(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 14, 0, 0, 0, time.UTC)
	out := string(Histogram(minutes(t0, 4, 5, 0, 10, 0), HistogramOptions{Link: zoom}))
	if n := strings.Count(out, `<rect class="chart-bar"`); n != 2 {
		t.Errorf("%d bars for 2 buckets with events", n)
	}
	for _, want := range []string{
		`data-from="2026-12-03T14:02:00Z" data-to="2026-12-03T14:03:00Z"`,
		`<title>2026-12-03 14:02–14:03 UTC: 10</title>`,
		`<a href="/search?from=2026-12-03T14%3A02%3A00Z&amp;q=action%3DConsoleLogin&amp;to=2026-12-03T14%3A03%3A00Z">`,
		`role="group"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %s in\n%s", want, out)
		}
	}
	// The tallest bar fills the plot; half of it is half as tall.
	if !strings.Contains(out, `height="94"`) || !strings.Contains(out, `height="47"`) {
		t.Errorf("bars not scaled to the largest count:\n%s", out)
	}
	// Without links, no links, and the chart is an image.
	out = string(Histogram(minutes(t0, 4, 5), HistogramOptions{}))
	if strings.Contains(out, "<a ") || !strings.Contains(out, `role="img"`) || !strings.Contains(out, `aria-label="histogram"`) {
		t.Errorf("without Link:\n%s", out)
	}
}

func TestHistogramEmpty(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 14, 0, 0, 0, time.UTC)
	for name, bs := range map[string][]Bucket{
		"nil":          nil,
		"empty":        {},
		"zero-width":   {{t0, t0, 5}},
		"backwards":    {{t0, t0.Add(-time.Minute), 5}},
		"zero buckets": {{}, {}},
	} {
		out := Histogram(bs, HistogramOptions{Label: "x"})
		if err := checkSVG(out); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if !strings.Contains(string(out), ">no events</text>") || strings.Contains(string(out), "chart-bar") {
			t.Errorf("%s: %s", name, out)
		}
	}
}

func TestMerge(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		n, max, want int
	}{
		{10, 2000, 10},
		{2000, 2000, 2000},
		{2001, 2000, 1001},
		{4000, 2000, 2000},
		{100000, 2000, 2000},
		{10, 3, 3},
	} {
		bs := minutes(t0, tc.n, 1, 2, 3)
		var total int64
		for _, b := range bs {
			total += b.Count
		}
		got := merge(bs, tc.max)
		if len(got) != tc.want {
			t.Errorf("merge(%d, %d): %d buckets, want %d", tc.n, tc.max, len(got), tc.want)
		}
		var sum int64
		for i, b := range got {
			sum += b.Count
			if i > 0 && !b.Start.Equal(got[i-1].End) {
				t.Errorf("merge(%d, %d): bucket %d starts at %v, not where %d ends (%v)", tc.n, tc.max, i, b.Start, i-1, got[i-1].End)
			}
		}
		if sum != total || !got[0].Start.Equal(bs[0].Start) || !got[len(got)-1].End.Equal(bs[len(bs)-1].End) {
			t.Errorf("merge(%d, %d): total %d from %v to %v, want %d over the same span", tc.n, tc.max, sum, got[0].Start, got[len(got)-1].End, total)
		}
	}
	// Counts saturate rather than wrap.
	got := merge([]Bucket{{t0, t0.Add(1), math.MaxInt64}, {t0.Add(1), t0.Add(2), math.MaxInt64}, {t0.Add(2), t0.Add(3), 1}}, 1)
	if len(got) != 1 || got[0].Count != math.MaxInt64 {
		t.Errorf("merge of the largest counts: %+v", got)
	}
}

func TestHistogramLarge(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	bs := make([]Bucket, 1_000_000)
	for i := range bs {
		s := t0.Add(time.Duration(i) * time.Second)
		bs[i] = Bucket{s, s.Add(time.Second), math.MaxInt64 / 3}
	}
	out := Histogram(bs, HistogramOptions{Link: zoom})
	if err := checkSVG(out); err != nil {
		t.Fatal(err)
	}
	bars := strings.Count(string(out), "chart-bar")
	if bars > 1000 || bars < 900 {
		t.Errorf("%d bars for 1,000,000 buckets on a viewBox 1000 wide", bars)
	}
	if len(out) > 400_000 {
		t.Errorf("%d bytes for 1,000,000 buckets", len(out))
	}
	// A wide viewBox still draws at most maxBars.
	out = Histogram(bs, HistogramOptions{Width: 10000})
	if bars := strings.Count(string(out), "chart-bar"); bars > maxBars {
		t.Errorf("%d bars, more than %d", bars, maxBars)
	}
}

func TestHistogramOddInput(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 14, 0, 0, 0, time.UTC)
	for name, bs := range map[string][]Bucket{
		"unsorted":        {{t0.Add(time.Minute), t0.Add(2 * time.Minute), 3}, {t0, t0.Add(time.Minute), 5}},
		"overlapping":     {{t0, t0.Add(time.Hour), 3}, {t0.Add(time.Minute), t0.Add(2 * time.Minute), 5}},
		"negative":        {{t0, t0.Add(time.Minute), -5}, {t0.Add(time.Minute), t0.Add(2 * time.Minute), 5}},
		"a nanosecond":    {{t0, t0.Add(1), 5}},
		"year one":        {{time.Time{}, time.Time{}.Add(time.Hour), 5}},
		"all of time":     {{time.Unix(-1<<62, 0), time.Unix(1<<62, 0), 5}},
		"far apart":       {{time.Time{}, time.Time{}.Add(time.Hour), 5}, {time.Unix(1<<40, 0), time.Unix(1<<40+60, 0), 7}},
		"largest count":   {{t0, t0.Add(time.Minute), math.MaxInt64}, {t0.Add(time.Minute), t0.Add(2 * time.Minute), 1}},
		"one of millions": {{t0, t0.Add(time.Minute), 1}, {t0.Add(time.Minute), t0.Add(2 * time.Minute), 5_000_000}},
	} {
		out := Histogram(bs, HistogramOptions{Link: zoom, Location: time.FixedZone("X", -7*3600)})
		if err := checkSVG(out); err != nil {
			t.Errorf("%s: %v\n%s", name, err, out)
		}
		if strings.Contains(string(out), "NaN") || strings.Contains(string(out), "Inf") {
			t.Errorf("%s: not a number in\n%s", name, out)
		}
	}
}

func ExampleHistogram() {
	t0 := time.Date(2026, 12, 3, 14, 0, 0, 0, time.UTC)
	buckets := []Bucket{
		{Start: t0, End: t0.Add(time.Minute), Count: 12},
		{Start: t0.Add(time.Minute), End: t0.Add(2 * time.Minute), Count: 30},
	}
	svg := Histogram(buckets, HistogramOptions{
		Label: "events over time",
		Link: func(from, to time.Time) string {
			return "/search?" + url.Values{"from": {from.Format(time.RFC3339)}, "to": {to.Format(time.RFC3339)}}.Encode()
		},
	})
	// In a page: {{.Histogram}}, where the field is a template.HTML.
	fmt.Println(strings.Count(string(svg), `class="chart-bar"`), "bars")
	// Output: 2 bars
}
