package chart

import (
	"cmp"
	"html/template"
	"math"
	"slices"
	"time"
)

// A Bucket is a bar of a histogram over time: [Start, End) and its count.
// A bucket whose End is not after its Start is left out; a negative
// Count counts as zero.
type Bucket struct {
	Start, End time.Time
	Count      int64
}

// HistogramOptions say how a histogram is drawn.
type HistogramOptions struct {
	// Width and Height are the size of the SVG's viewBox: its aspect
	// ratio and the size of its text relative to it. The page's
	// stylesheet sets the size it is shown at. Defaults 1000×120.
	Width, Height int
	// Label is the chart's accessible name (aria-label and <title>),
	// such as "events over time"; empty is "histogram".
	Label string
	// Link, if set, gives the href each bar links to, typically the
	// same page zoomed into the bar's interval. Only relative, http and
	// https URLs are kept; any other becomes "#".
	Link func(from, to time.Time) string
	// Location is the zone of the time axis' labels and of the bars'
	// titles; nil is UTC.
	Location *time.Location
}

// maxBars bounds the bars a histogram draws: more adjacent buckets than
// that are merged (see merge), so that output stays small whatever the
// input. A bar narrower than a unit of the viewBox cannot be seen or
// pointed at, so the bound is also the viewBox' width.
const maxBars = 2000

// Histogram draws buckets as bars, each as tall as its count relative to
// the largest, on a time axis and a count axis. Each bar is a
// <rect class="chart-bar"> with data-from and data-to (RFC 3339, UTC) for
// Script, and a <title> stating its interval and count; a bucket with no
// events draws nothing where its bar would be. More buckets than the
// viewBox is wide, or than 2000, are merged into fewer bars, adjacent
// ones summed, so that the output stays small (a few hundred kilobytes at
// most) whatever the input. With no buckets the chart says "no events".
func Histogram(buckets []Bucket, opts HistogramOptions) template.HTML {
	w, h := dims(opts.Width, opts.Height, 1000, 120)
	loc := location(opts.Location)
	label := cmp.Or(opts.Label, "histogram")
	bs := merge(clean(buckets), min(maxBars, w))
	if len(bs) == 0 {
		return empty("chart-histogram", w, h, label, "no events")
	}
	t0, t1 := bs[0].Start, bs[0].End
	var top int64
	for _, b := range bs {
		top = max(top, b.Count)
		if b.End.After(t1) {
			t1 = b.End
		}
	}

	p := box{y0: padTop, x1: float64(w) - padRight, y1: float64(h) - padBottom}
	ticks, step := countTicks(top, int(p.h()/30))
	labels := make([]string, len(ticks))
	for i, v := range ticks {
		labels[i] = formatValue(v, ticks[len(ticks)-1], step, "")
	}
	p.x0 = leftPad(labels)
	x := newTimeScale(t0, t1, p)
	y := func(v float64) float64 {
		if top == 0 {
			return p.y1
		}
		return p.y1 - p.h()*v/float64(top)
	}

	var s svg
	// Bars that are links are focusable, which a role of img would hide.
	role := "img"
	if opts.Link != nil {
		role = "group"
	}
	// Where the plot lies and what times its edges are, for Script to
	// turn a selection in a gap between bars into times.
	s.open("chart-histogram", w, h, label, role,
		` data-from="`+esc(dataTime(t0))+`" data-to="`+esc(dataTime(t1))+`" data-x0="`+num(p.x0)+`" data-x1="`+num(p.x1)+`"`)
	s.valueAxis(p, ticks, labels, y)
	for _, b := range bs {
		if b.Count == 0 {
			continue
		}
		bx0, bx1 := x.x(b.Start), x.x(b.End)
		if bx1-bx0 >= 3 { // a gap between bars that are wide enough
			bx0, bx1 = bx0+0.5, bx1-0.5
		}
		bh := max(p.y1-y(float64(b.Count)), 1) // a count of 1 among millions still shows
		if opts.Link != nil {
			s.printf(`<a href="%s">`, esc(safeURL(opts.Link(b.Start, b.End))))
		}
		s.printf(`<rect class="chart-bar" x="%s" y="%s" width="%s" height="%s" data-from="%s" data-to="%s"><title>%s: %s</title></rect>`,
			num(bx0), num(p.y1-bh), num(max(bx1-bx0, 0.5)), num(bh),
			esc(dataTime(b.Start)), esc(dataTime(b.End)),
			esc(formatSpan(b.Start, b.End, loc)), formatCount(b.Count))
		if opts.Link != nil {
			s.WriteString(`</a>`)
		}
	}
	if top == 0 {
		s.note(p, "no events")
	}
	s.timeAxis(p, t0, t1, loc, x, w)
	return s.html()
}

// clean returns the buckets that can be drawn, in order of their start.
func clean(in []Bucket) []Bucket {
	out := make([]Bucket, 0, len(in))
	for _, b := range in {
		if !b.End.After(b.Start) {
			continue
		}
		b.Count = max(b.Count, 0)
		out = append(out, b)
	}
	slices.SortStableFunc(out, func(a, b Bucket) int { return a.Start.Compare(b.Start) })
	return out
}

// merge returns at most n buckets: when there are more, each group of k
// adjacent buckets (k as small as will do) becomes one, from the first's
// start to the latest end, with the sum of their counts. Histograms are
// of buckets of equal width, so merged bars are too, but for the last.
func merge(bs []Bucket, n int) []Bucket {
	if len(bs) <= n {
		return bs
	}
	k := (len(bs) + n - 1) / n
	out := make([]Bucket, 0, (len(bs)+k-1)/k)
	for i := 0; i < len(bs); i += k {
		g := bs[i:min(i+k, len(bs))]
		m := Bucket{Start: g[0].Start, End: g[0].End}
		for _, b := range g {
			if b.End.After(m.End) {
				m.End = b.End
			}
			// Saturating: counts near the largest int64 must not wrap
			// around to a negative bar.
			if b.Count > math.MaxInt64-m.Count {
				m.Count = math.MaxInt64
			} else {
				m.Count += b.Count
			}
		}
		out = append(out, m)
	}
	return out
}
