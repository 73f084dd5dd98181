package chart

import (
	"math"
	"strconv"
	"strings"
)

// niceStep returns the smallest of 1, 2 and 5 × 10^n that is at least raw:
// the steps whose multiples a reader adds up at a glance.
func niceStep(raw float64) float64 {
	if !(raw > 0) || math.IsInf(raw, 0) {
		return 0
	}
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5} {
		if m*mag >= raw*(1-1e-9) {
			return m * mag
		}
	}
	return 10 * mag
}

// countTicks returns the ticks of a histogram's count axis: 0 and the
// multiples of a nice step up to top, about n of them. The bars reach the
// top of the plot at top, so the highest tick is at most top; counts are
// whole, so the step is at least 1.
func countTicks(top int64, n int) (ticks []float64, step float64) {
	step = max(niceStep(float64(top)/float64(max(n, 1))), 1)
	// At least one tick above zero, for a gridline: 0, 20, 40 for a top
	// of 42 on a short axis, rather than 0 alone.
	for step > float64(top) && step > 1 {
		// The nice step below: 10 → 5 → 2 → 1.
		if m := step / math.Pow(10, math.Floor(math.Log10(step)+1e-9)); m > 4 {
			step /= 2.5
		} else {
			step /= 2
		}
	}
	for i := 0; i <= n+2; i++ {
		v := float64(i) * step
		if v > float64(top) && i > 0 {
			break
		}
		ticks = append(ticks, v)
	}
	return ticks, step
}

// niceRange widens [lo, hi] to multiples of a nice step, about n steps
// apart, and returns the axis' ticks. An empty range is widened around
// its value, so that a flat line sits inside the plot.
func niceRange(lo, hi float64, n int) (ticks []float64, a, b, step float64) {
	if lo == hi {
		d := math.Abs(lo) / 10
		if d == 0 {
			d = 1
		}
		lo, hi = lo-d, hi+d
	}
	n = max(n, 1)
	// Divided before subtracting: hi-lo overflows for values near
	// the largest float.
	step = niceStep(hi/float64(n) - lo/float64(n))
	if step == 0 {
		return []float64{lo, hi}, lo, hi, 0
	}
	a, b = math.Floor(lo/step)*step, math.Ceil(hi/step)*step
	if !finite(a) {
		a = lo
	}
	if !finite(b) {
		b = hi
	}
	for i := 0; i <= n+3; i++ {
		v := a + float64(i)*step
		if v > b+step*1e-9 {
			break
		}
		ticks = append(ticks, v)
	}
	return ticks, a, b, step
}

// A unit is how values of a kind are written.
type unit struct {
	prefix string   // before the number: "$"
	scales []string // after it, for ×1, ×1000, ×1000², …
	suffix string   // after the scale: "%", " req/s"
	cents  bool     // values under 1000 take two decimals when not whole
}

// units are the units LineOptions.Unit names. Bytes scale by 1000, as
// disks and networks count them: an axis' ticks then fall on round
// numbers of the scale, which powers of 1024 would not. Percentages are
// of 100 (97 is 97%), as CPU and disk usage are reported. Any other unit
// is written after the number, which scales as counts do.
var units = map[string]unit{
	"":      {scales: []string{"", "k", "M", "G", "T", "P", "E"}},
	"bytes": {scales: []string{" B", " kB", " MB", " GB", " TB", " PB", " EB"}},
	"USD":   {prefix: "$", scales: []string{"", "k", "M", "B", "T"}, cents: true},
	"%":     {scales: []string{""}, suffix: "%"},
}

func unitOf(name string) unit {
	if u, ok := units[name]; ok {
		return u
	}
	u := units[""]
	u.suffix = " " + name
	return u
}

// formatValue writes v in the unit named, as one of an axis' labels whose
// ticks are step apart and reach ref in magnitude: all of an axis' labels
// share one scale (0.5M, 1M, 1.5M), with the decimals the step needs.
func formatValue(v, ref, step float64, unitName string) string {
	return unitOf(unitName).format(v, ref, step)
}

// formatPoint writes a single value in the unit named, to three
// significant digits, without trailing zeros (but for cents).
func formatPoint(v float64, unitName string) string {
	if !finite(v) {
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	step := 1.0
	if v != 0 {
		step = math.Pow(10, math.Floor(math.Log10(math.Abs(v)))-2)
		// Rounded first, so that 999 999 reads 1M rather than 1000k.
		if r := math.Round(v/step) * step; finite(r) {
			v = r
		}
	}
	return unitOf(unitName).format(v, v, step)
}

// format writes v scaled to ref, with the decimals that step needs but no
// trailing zeros, except that amounts of dollars show their cents.
func (u unit) format(v, ref, step float64) string {
	if v == 0 { // 0 B, not 0 GB
		return u.prefix + "0" + u.scales[0] + u.suffix
	}
	k := 0
	if ref = math.Abs(ref); ref >= 1000 && finite(ref) {
		k = min(int(math.Floor(math.Log10(ref)/3+1e-9)), len(u.scales)-1)
	}
	scale := math.Pow(1000, float64(k))
	dec := 0
	if step > 0 {
		if d := -math.Floor(math.Log10(step/scale) + 1e-9); d > 0 {
			dec = int(min(d, 10))
		}
	}
	s := strconv.FormatFloat(math.Abs(v)/scale, 'f', dec, 64)
	if u.cents && k == 0 && (dec > 0 || math.Abs(v) != math.Trunc(math.Abs(v))) {
		s = strconv.FormatFloat(math.Abs(v), 'f', max(dec, 2), 64)
	} else if dec > 0 {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	sign := ""
	if v < 0 && strings.Trim(s, "0.") != "" {
		sign = "-"
	}
	return sign + u.prefix + s + u.scales[k] + u.suffix
}

// formatCount writes a count in full, with thousands separated by commas,
// as a title states it: 1,234,567.
func formatCount(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
