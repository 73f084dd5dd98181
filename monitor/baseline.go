package monitor

import (
	"math"
	"math/bits"
	"slices"
	"time"

	"github.com/vigilsec/vigil/metric"
)

// A Season is the cycle a series repeats: a period, cut into buckets
// whose values are alike. Most of what people and their jobs do repeats
// weekly, by the hour; a cost reported once a day repeats weekly by the
// day. The zero Season is one bucket: a level that does not cycle.
type Season struct {
	Period, Bucket time.Duration
}

// Seasons by name, as rules give them.
var seasons = map[string]Season{
	"":              {7 * 24 * time.Hour, time.Hour},
	"weekly":        {7 * 24 * time.Hour, time.Hour},
	"weekly-by-day": {7 * 24 * time.Hour, 24 * time.Hour},
	"daily":         {24 * time.Hour, time.Hour},
	"none":          {},
}

// buckets is how many buckets a period has.
func (s Season) buckets() int {
	if s.Period == 0 {
		return 1
	}
	return int(s.Period / s.Bucket)
}

// monday is a Monday, 00:00 UTC: weeks and days start at it.
var monday = time.Date(1970, 1, 5, 0, 0, 0, 0, time.UTC).UnixNano()

// bucket returns the bucket of t, and which period it is in.
func (s Season) bucket(t time.Time) (bucket int, period int64) {
	if s.Period == 0 {
		return 0, 0
	}
	d := t.UnixNano() - monday
	p := d / int64(s.Period)
	off := d % int64(s.Period)
	if off < 0 {
		off += int64(s.Period)
		p--
	}
	return int(off / int64(s.Bucket)), p
}

// A Baseline is a series' usual value in each bucket of its season, its
// level, and how far values usually stray from their bucket's level, its
// scale.
type Baseline struct {
	Season Season
	// Level is by bucket; NaN where the history had values of too few
	// periods to tell (the series is warming up).
	Level []float64
	// Scale is 1.4826 times the median absolute deviation of the
	// history's values from their levels: for normal noise, its standard
	// deviation, but not moved by the outliers an incident makes.
	// RelScale is the same of their deviations as shares of their
	// levels: noise that grows with the value (a busy hour's traffic
	// wavers more than a quiet one's) has one RelScale where it has no
	// one Scale.
	Scale, RelScale float64
}

// minPeriods is how many periods of history a bucket needs for a level;
// a Season of one bucket needs minValues values.
const (
	minPeriods = 2
	minValues  = 12
)

// Fit fits a baseline on the samples in [from, to), at most 64 periods
// of its season. Each bucket's level
// is the median of its values: an incident in one period of several
// does not move it, nor does a slow drift within one.
func Fit(samples []metric.Sample, season Season, from, to time.Time) Baseline {
	hist := metric.Between(samples, from, to)
	n := season.buckets()
	b := Baseline{Season: season, Level: make([]float64, n)}
	// Each bucket's values, in one array: a pass judges many series, and
	// a slice a bucket grown by appends cost most of its time.
	counts := make([]int, n)
	for _, s := range hist {
		if !math.IsNaN(s.Value) && !math.IsInf(s.Value, 0) {
			i, _ := season.bucket(s.Time)
			counts[i]++
		}
	}
	all := make([]float64, 0, len(hist))
	values := make([][]float64, n)
	for i, c := range counts {
		values[i] = all[len(all) : len(all) : len(all)+c]
		all = all[:len(all)+c]
	}
	// The periods each bucket has values of, a bit each: a history is
	// at most 52 periods long, so no two of them share a bit.
	periods := make([]uint64, n)
	for _, s := range hist {
		if math.IsNaN(s.Value) || math.IsInf(s.Value, 0) {
			continue
		}
		i, p := season.bucket(s.Time)
		values[i] = append(values[i], s.Value)
		periods[i] |= 1 << (uint64(p) % 64)
	}
	residuals, relative := make([]float64, 0, len(all)), make([]float64, 0, len(all))
	for i, vs := range values {
		enough := bits.OnesCount64(periods[i]) >= minPeriods
		if season.Period == 0 {
			enough = len(vs) >= minValues
		}
		if !enough {
			b.Level[i] = math.NaN()
			continue
		}
		b.Level[i] = median(vs)
		for _, v := range vs {
			d := math.Abs(v - b.Level[i])
			residuals = append(residuals, d)
			if b.Level[i] != 0 {
				relative = append(relative, d/math.Abs(b.Level[i]))
			}
		}
	}
	if len(residuals) > 0 {
		b.Scale = 1.4826 * median(residuals)
	}
	if len(relative) > 0 {
		b.RelScale = 1.4826 * median(relative)
	}
	return b
}

// relativeScale is the least scale, as a share of the level: a series
// that barely moves (availability at 1, a flat cost) would otherwise
// make any change, however small, a stray of many scales.
const relativeScale = 0.02

// Score returns how many scales v, at t, is from its bucket's level, and
// the level; ok is false while the bucket has none. The scale is the
// wider of the series' one Scale and its RelScale share of the level:
// whichever kind of noise the series has, a value is judged against the
// wider, so that a busy hour's wavering is not an anomaly.
func (b *Baseline) Score(t time.Time, v float64) (score, level float64, ok bool) {
	i, _ := b.Season.bucket(t)
	level = b.Level[i]
	if math.IsNaN(level) {
		return 0, level, false
	}
	scale := max(b.Scale, max(b.RelScale, relativeScale)*math.Abs(level), 1e-9)
	return (v - level) / scale, level, true
}

// median returns the median of vs, which it reorders.
func median(vs []float64) float64 {
	slices.Sort(vs)
	n := len(vs)
	if n%2 == 1 {
		return vs[n/2]
	}
	return (vs[n/2-1] + vs[n/2]) / 2
}
