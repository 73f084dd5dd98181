// Package chart draws the console's charts as inline SVG, on the server.
//
// The console runs under a strict Content-Security-Policy and takes no
// code written elsewhere, so a chart is markup that a page embeds, not a
// script that draws one: it shows without JavaScript, its tooltips are
// <title> elements (which screen readers read too), and a histogram's bars
// are links. Nothing is written in a style attribute, which a policy
// without 'unsafe-inline' refuses; the page's stylesheet colors the
// charts through classes, and every element carries presentation
// attributes in currentColor as a fallback, so that a chart reads in
// light and dark themes alike and even with no stylesheet at all.
//
// The classes, for the stylesheet:
//
//	svg.chart                   every chart; svg.chart-histogram, svg.chart-timeseries
//	.chart-bar                  a histogram's bar (a rect)
//	.chart-line .chart-line-N   a series (a path), N its index modulo 8; also its legend swatch
//	.chart-band                 the baseline band (a polygon)
//	.chart-anomaly              an anomaly's circle
//	.chart-axis .chart-grid     axes with their labels, and gridlines
//	.chart-legend .chart-note   the legend, and notes such as "no events"
//	.chart-brush                the selection Script draws while brushing
//
// For example:
//
//	svg.chart { width: 100%; height: auto; color: var(--fg); font: 11px system-ui }
//	.chart-bar { fill: var(--accent) }
//	.chart-bar:hover, a:focus .chart-bar { fill: var(--accent-strong) }
//	.chart-axis, .chart-note { color: var(--muted) }
//	.chart-line-0 { stroke: var(--series-0) }  /* and so on to 7 */
//	.chart-band { fill: var(--accent); fill-opacity: .15 }
//	.chart-anomaly { stroke: var(--danger) }
//	.chart-brush { fill: var(--accent); fill-opacity: .2 }
//
// Script adds what markup cannot: brushing a time range on a histogram.
// Serve it as a file of the page's origin (script-src 'self').
package chart

import (
	_ "embed"
	"encoding/xml"
	"fmt"
	"html/template"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Script is chart.js: brushing on histograms. Dragging across a histogram
// selects a time range, and releasing loads the page again with its from=
// and to= query parameters set to that range. Pages work without it.
//
//go:embed chart.js
var Script []byte

// Layout, in viewBox units. A server cannot measure text, so labels are
// given room by their length in characters at about charW each (font-size
// 11): enough to keep them apart, at the price of a little slack.
const (
	fontSize  = 11
	charW     = 6.5
	padTop    = 8
	padRight  = 10
	padBottom = 18 // room for the time axis' labels
	legendH   = 22 // the row of a line chart's legend, above its plot
)

// dims returns the viewBox size, with defaults for zero and bounds that
// keep room for a plot: a chart smaller than 120×40 has no room for axes,
// and one larger than 20000×4000 only for an oversized page.
func dims(w, h, defW, defH int) (int, int) {
	if w <= 0 {
		w = defW
	}
	if h <= 0 {
		h = defH
	}
	return min(max(w, 120), 20000), min(max(h, 40), 4000)
}

// location returns loc, or UTC: vigil's one clock.
func location(loc *time.Location) *time.Location {
	if loc == nil {
		return time.UTC
	}
	return loc
}

// A box is the plot area within the viewBox.
type box struct{ x0, y0, x1, y1 float64 }

func (b box) w() float64 { return b.x1 - b.x0 }
func (b box) h() float64 { return b.y1 - b.y0 }

// leftPad is the plot's left edge: room for the longest of the value
// axis' labels, which are right-aligned against it.
func leftPad(labels []string) float64 {
	n := 1
	for _, l := range labels {
		n = max(n, utf8.RuneCountInString(l))
	}
	return 10 + float64(n)*charW
}

// num formats a coordinate with one decimal, which is finer than any
// screen shows a chart at and keeps the output small; "12.0" is "12".
func num(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		v = 0
	}
	s := strconv.FormatFloat(v, 'f', 1, 64)
	s = strings.TrimSuffix(s, ".0")
	if s == "-0" {
		return "0"
	}
	return s
}

// esc escapes s for XML text and attribute values alike: markup
// characters and quotes become references, and characters XML may not
// carry become U+FFFD. Every string that comes from outside this package
// goes through it: labels, names, titles, URLs, zone names.
func esc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s)) // a strings.Builder does not fail
	return b.String()
}

// safeURL returns u if following it cannot run script: a relative
// reference, or an http or https URL. Anything else (javascript:, data:,
// vbscript:) becomes "#". The output is template.HTML, out of reach of
// html/template's own URL filter, so it is done here.
func safeURL(u string) string {
	if i := strings.IndexAny(u, ":/?#"); i >= 0 && u[i] == ':' {
		if s := strings.ToLower(u[:i]); s != "http" && s != "https" {
			return "#"
		}
	}
	return u
}

// dataTime formats a time for the data-from and data-to attributes
// chart.js reads: RFC 3339 in UTC, to the millisecond, which is as fine
// as a browser's Date goes.
func dataTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.999Z07:00")
}

// secs is t in seconds since the epoch, as a float: unlike time.Sub, it
// does not saturate, whatever times it is given.
func secs(t time.Time) float64 {
	return float64(t.Unix()) + float64(t.Nanosecond())/1e9
}

// finite reports whether v is a number that can be drawn.
func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// A timeScale maps times to x within a plot.
type timeScale struct {
	t0, span float64
	p        box
}

func newTimeScale(t0, t1 time.Time, p box) timeScale {
	return timeScale{t0: secs(t0), span: secs(t1) - secs(t0), p: p}
}

func (s timeScale) x(t time.Time) float64 {
	if !(s.span > 0) {
		return s.p.x0
	}
	f := (secs(t) - s.t0) / s.span
	return s.p.x0 + s.p.w()*min(max(f, 0), 1)
}

// svg builds a chart's markup.
type svg struct{ strings.Builder }

func (s *svg) printf(format string, args ...any) { fmt.Fprintf(&s.Builder, format, args...) }

// open starts the chart: the root element, sized by its viewBox alone so
// that the stylesheet decides how wide it is shown, with its accessible
// name both as aria-label and as <title>.
func (s *svg) open(class string, w, h int, label, role, attrs string) {
	s.printf(`<svg xmlns="http://www.w3.org/2000/svg" class="chart %s" viewBox="0 0 %d %d" role="%s" aria-label="%s" fill="currentColor" font-size="%d"%s>`,
		class, w, h, role, esc(label), fontSize, attrs)
	s.printf(`<title>%s</title>`, esc(label))
}

func (s *svg) html() template.HTML {
	s.WriteString(`</svg>`)
	return template.HTML(s.String())
}

// note writes a short message centered in p, such as "no events".
func (s *svg) note(p box, msg string) {
	s.printf(`<text class="chart-note" x="%s" y="%s" text-anchor="middle">%s</text>`,
		num((p.x0+p.x1)/2), num((p.y0+p.y1)/2+4), esc(msg))
}

// empty is the chart of nothing: a message where the plot would be, so
// that a page keeps its layout and says why there is no chart.
func empty(class string, w, h int, label, msg string) template.HTML {
	var s svg
	s.open(class+" chart-empty", w, h, label, "img", "")
	s.note(box{0, 0, float64(w), float64(h)}, msg)
	return s.html()
}

// valueAxis draws the value axis of p: a gridline at each tick but the
// plot's bottom edge, and the labels left of the plot.
func (s *svg) valueAxis(p box, ticks []float64, labels []string, y func(float64) float64) {
	var d strings.Builder
	for _, v := range ticks {
		if yv := y(v); yv < p.y1-0.5 {
			fmt.Fprintf(&d, `M%s %sH%s`, num(p.x0), num(yv), num(p.x1))
		}
	}
	if d.Len() > 0 {
		s.printf(`<path class="chart-grid" fill="none" stroke="currentColor" stroke-opacity="0.15" d="%s"/>`, d.String())
	}
	s.WriteString(`<g class="chart-axis" text-anchor="end">`)
	for i, v := range ticks {
		s.printf(`<text x="%s" y="%s">%s</text>`, num(p.x0-5), num(y(v)+4), esc(labels[i]))
	}
	s.WriteString(`</g>`)
}

// timeAxis draws the time axis under p, for the times t0..t1 that x maps:
// a baseline, and a tick mark and a label at each of the axis' ticks.
func (s *svg) timeAxis(p box, t0, t1 time.Time, loc *time.Location, x timeScale, w int) {
	ticks := timeTicks(t0, t1, loc, max(2, int(p.w()/90)))
	s.printf(`<g class="chart-axis"><path fill="none" stroke="currentColor" d="M%s %sH%s`, num(p.x0), num(p.y1), num(p.x1))
	for _, t := range ticks {
		s.printf(`M%s %sv4`, num(x.x(t.at)), num(p.y1))
	}
	s.WriteString(`"/>`)
	for _, t := range ticks {
		xt, half := x.x(t.at), float64(utf8.RuneCountInString(t.label))*charW/2
		anchor := "middle"
		switch {
		case xt+half > float64(w):
			anchor = "end"
		case xt-half < 0:
			anchor = "start"
		}
		s.printf(`<text x="%s" y="%s" text-anchor="%s">%s</text>`, num(xt), num(p.y1+15), anchor, esc(t.label))
	}
	s.WriteString(`</g>`)
}
