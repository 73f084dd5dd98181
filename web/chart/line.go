package chart

import (
	"cmp"
	"fmt"
	"html/template"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// A Point is a sample of a series.
type Point struct {
	Time  time.Time
	Value float64
}

// A Series is a named line. A NaN or infinite value is a gap in it.
type Series struct {
	Name   string
	Points []Point
}

// LineOptions say how a line chart is drawn.
type LineOptions struct {
	// Width and Height are the size of the SVG's viewBox, as for
	// HistogramOptions. Defaults 1000×200.
	Width, Height int
	// Label is the chart's accessible name (aria-label and <title>);
	// empty is "line chart".
	Label string
	// Location is the zone of the time axis' labels and of titles; nil
	// is UTC.
	Location *time.Location
	// Unit is what the values count, for the value axis and titles:
	// "bytes" (1.2 GB, by powers of 1000), "USD" ($3.40), "%" (of 100:
	// 97 is 97%), "" (a count: 1.5k), or any other name, which is
	// written after the number (12 req/s).
	Unit string
	// Band is a baseline: the range of values expected over time, drawn
	// behind the lines so that a line leaving it stands out.
	Band []Band
	// Marks are anomalies: points circled, each with its reason as a
	// tooltip. Beyond 500 they are noise, and the rest are counted but
	// not drawn.
	Marks []Mark
	// From and To, if set, are the range the chart is of: its time axis
	// spans at least them, so that a series that starts late or stops
	// early is seen to, and charts of one range line up.
	From, To time.Time
}

// A Band is the expected range of values at a time.
type Band struct {
	Time      time.Time
	Low, High float64
}

// A Mark is an anomaly: a value at a time, and why it is one.
type Mark struct {
	Time  time.Time
	Value float64
	Title string
}

// maxMarks bounds the anomalies a chart circles.
const maxMarks = 500

// Line draws series as lines over time, each a
// <path class="chart-line chart-line-N"> (N its index modulo 8, for the
// stylesheet to color) titled with its name, behind them the band, and
// over them the marks. A legend names the series when there are several
// or the one has a name. The value axis starts at zero (or below it, for
// negative values). Of the points of a series that fall within one unit
// of the plot's width, only the first, last, lowest and highest are
// drawn, which is all that can be seen of them, spikes included: a
// series of a million points makes a path of a few thousand. With
// nothing to draw the chart says "no data".
func Line(series []Series, opts LineOptions) template.HTML {
	w, h := dims(opts.Width, opts.Height, 1000, 200)
	loc := location(opts.Location)
	label := cmp.Or(opts.Label, "line chart")

	// The extent of what there is to draw, in time and value. Value 0
	// is always in it: vigil's series (bytes, cost, usage) are amounts,
	// whose size a chart shows honestly only from zero.
	var t0, t1 time.Time
	lo, hi, seen := 0.0, 0.0, false
	see := func(t time.Time, vs ...float64) {
		if !seen || t.Before(t0) {
			t0 = t
		}
		if !seen || t.After(t1) {
			t1 = t
		}
		seen = true
		for _, v := range vs {
			lo, hi = min(lo, v), max(hi, v)
		}
	}
	points := make([][]Point, len(series))
	for i, sr := range series {
		points[i] = slices.Clone(sr.Points)
		slices.SortStableFunc(points[i], func(a, b Point) int { return a.Time.Compare(b.Time) })
		for _, pt := range points[i] {
			if finite(pt.Value) {
				see(pt.Time, pt.Value)
			}
		}
	}
	band := slices.Clone(opts.Band)
	slices.SortStableFunc(band, func(a, b Band) int { return a.Time.Compare(b.Time) })
	for _, b := range band {
		if finite(b.Low) && finite(b.High) {
			see(b.Time, b.Low, b.High)
		}
	}
	var marks []Mark
	for _, m := range opts.Marks {
		if finite(m.Value) {
			marks = append(marks, m)
		}
	}
	slices.SortStableFunc(marks, func(a, b Mark) int { return a.Time.Compare(b.Time) })
	for _, m := range marks {
		see(m.Time, m.Value)
	}
	if !seen {
		return empty("chart-timeseries", w, h, label, "no data")
	}
	if !opts.From.IsZero() && opts.From.Before(t0) {
		t0 = opts.From
	}
	if !opts.To.IsZero() && opts.To.After(t1) {
		t1 = opts.To
	}
	if !t1.After(t0) { // one instant: a minute either side of it
		t0, t1 = t0.Add(-time.Minute), t1.Add(time.Minute)
	}

	legend := len(series) > 1 || len(series) == 1 && series[0].Name != ""
	p := box{y0: padTop, x1: float64(w) - padRight, y1: float64(h) - padBottom}
	if legend || len(marks) > maxMarks {
		p.y0 = legendH
	}
	ticks, a, b, step := niceRange(lo, hi, max(2, int(p.h()/35)))
	ref := max(math.Abs(a), math.Abs(b))
	labels := make([]string, len(ticks))
	for i, v := range ticks {
		labels[i] = formatValue(v, ref, step, opts.Unit)
	}
	p.x0 = leftPad(labels)
	x := newTimeScale(t0, t1, p)
	y := func(v float64) float64 {
		// Halved before subtracting, so that no difference overflows.
		f := (v/2 - a/2) / (b/2 - a/2)
		return p.y1 - p.h()*min(max(f, 0), 1)
	}

	var s svg
	s.open("chart-timeseries", w, h, label, "img", "")
	s.valueAxis(p, ticks, labels, y)
	s.band(band, x, y)
	for i, pts := range points {
		d := linePath(pts, x, y)
		if d == "" {
			continue
		}
		s.printf(`<path class="chart-line chart-line-%d"%s d="%s"><title>%s</title></path>`,
			i%8, lineAttrs, d, esc(seriesName(series, i)))
	}
	for i, m := range marks {
		if i == maxMarks {
			break
		}
		title := cmp.Or(m.Title, "anomaly") + " — " + formatTime(m.Time, loc) + ": " + formatPoint(m.Value, opts.Unit)
		s.printf(`<circle class="chart-anomaly" fill="none" stroke="currentColor" stroke-width="1.5" cx="%s" cy="%s" r="5"><title>%s</title></circle>`,
			num(x.x(m.Time)), num(y(m.Value)), esc(title))
	}
	s.timeAxis(p, t0, t1, loc, x, w)
	right := p.x1
	if n := len(marks) - maxMarks; n > 0 {
		note := fmt.Sprintf("%d more anomalies not shown", n)
		s.printf(`<text class="chart-note" x="%s" y="14" text-anchor="end">%s</text>`, num(right), note)
		right -= float64(len(note))*charW + 20
	}
	if legend {
		s.legend(series, p.x0, right)
	}
	return s.html()
}

// lineAttrs draw a series where the stylesheet does not: a line, never a
// filled shape, whose lone points (between gaps) show as dots.
const lineAttrs = ` fill="none" stroke="currentColor" stroke-width="1.5" stroke-linejoin="round" stroke-linecap="round"`

func seriesName(series []Series, i int) string {
	return cmp.Or(series[i].Name, fmt.Sprintf("series %d", i+1))
}

// An xy is a point in the viewBox.
type xy struct{ x, y float64 }

// linePath returns the path data of a series: a run of lines between
// gaps, each run thinned; "" if there is nothing to draw.
func linePath(pts []Point, x timeScale, y func(float64) float64) string {
	var d strings.Builder
	var run []xy
	flush := func() {
		for i, q := range thin(run) {
			switch i {
			case 0:
				fmt.Fprintf(&d, "M%s %s", num(q.x), num(q.y))
			case 1:
				fmt.Fprintf(&d, "L%s %s", num(q.x), num(q.y))
			default: // a lineto's coordinates repeat without the letter
				fmt.Fprintf(&d, " %s %s", num(q.x), num(q.y))
			}
		}
		if len(run) == 1 { // a lone point: a dot, by its round cap
			d.WriteString("h0")
		}
		run = run[:0]
	}
	for _, pt := range pts {
		if !finite(pt.Value) {
			flush()
			continue
		}
		run = append(run, xy{x.x(pt.Time), y(pt.Value)})
	}
	flush()
	return d.String()
}

// thin keeps, of the points of a run (in order of time) that fall in the
// same unit-wide column, only the first, the last, the lowest and the
// highest: all that can be seen of them at that width, spikes included
// (the M4 reduction). A series of a million points draws as a few
// thousand.
func thin(run []xy) []xy {
	if len(run) <= 4 {
		return run
	}
	var out []xy
	for i := 0; i < len(run); {
		col := math.Floor(run[i].x)
		j, lo, hi := i, i, i
		for ; j < len(run) && math.Floor(run[j].x) == col; j++ {
			if run[j].y < run[lo].y {
				lo = j
			}
			if run[j].y > run[hi].y {
				hi = j
			}
		}
		keep := []int{i, lo, hi, j - 1}
		slices.Sort(keep)
		for _, k := range slices.Compact(keep) {
			out = append(out, run[k])
		}
		i = j
	}
	return out
}

// band draws the baseline band: a polygon for each run of it between
// gaps, its top along the highs and its bottom back along the lows. In
// each unit-wide column only the widest extent is kept, as thin does for
// lines.
func (s *svg) band(band []Band, x timeScale, y func(float64) float64) {
	type edge struct{ x, top, bottom float64 }
	var run []edge
	flush := func() {
		if len(run) > 0 {
			s.WriteString(`<polygon class="chart-band" fill="currentColor" fill-opacity="0.12" points="`)
			for i, e := range run {
				if i > 0 {
					s.WriteByte(' ')
				}
				s.printf("%s,%s", num(e.x), num(e.top))
			}
			for i := len(run) - 1; i >= 0; i-- {
				s.printf(" %s,%s", num(run[i].x), num(run[i].bottom))
			}
			s.WriteString(`"/>`)
		}
		run = run[:0]
	}
	for _, b := range band {
		if !finite(b.Low) || !finite(b.High) {
			flush()
			continue
		}
		e := edge{x.x(b.Time), y(max(b.Low, b.High)), y(min(b.Low, b.High))}
		if n := len(run); n > 0 && math.Floor(run[n-1].x) == math.Floor(e.x) {
			run[n-1].top, run[n-1].bottom = min(run[n-1].top, e.top), max(run[n-1].bottom, e.bottom)
			continue
		}
		run = append(run, e)
	}
	flush()
}

// legend names the series in a row above the plot, from x0 to x1, each
// after a swatch of its line. Long names are cut; those that do not fit
// are counted.
func (s *svg) legend(series []Series, x0, x1 float64) {
	s.WriteString(`<g class="chart-legend">`)
	for i := range series {
		name := seriesName(series, i)
		if utf8.RuneCountInString(name) > 40 {
			name = string([]rune(name)[:39]) + "…"
		}
		width := 18 + float64(utf8.RuneCountInString(name))*charW
		room := x1 - x0
		if i < len(series)-1 {
			room -= 70 // for "+N more", should the next not fit
		}
		if width > room {
			s.printf(`<text x="%s" y="14">+%d more</text>`, num(x0), len(series)-i)
			break
		}
		s.printf(`<path class="chart-line chart-line-%d"%s d="M%s 10h14"/><text x="%s" y="14">%s</text>`,
			i%8, lineAttrs, num(x0), num(x0+18), esc(name))
		x0 += width + 14
	}
	s.WriteString(`</g>`)
}
