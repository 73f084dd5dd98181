package chart

import (
	"encoding/binary"
	"math"
	"strings"
	"testing"
	"time"
)

// bucketsOf makes buckets of fuzzed bytes. The first byte picks the unit
// of times and widths (a millisecond to a year) and, by its high bit,
// whether the records repeat (by the second byte) into thousands of
// buckets; then each 7 bytes are a bucket: a start (int16 units from a
// base), a width (uint8 units; 0 makes a bucket to leave out) and a count
// (int32; the smallest stands for the largest int64).
func bucketsOf(data []byte) []Bucket {
	if len(data) < 2 {
		return nil
	}
	unit := []time.Duration{time.Millisecond, time.Second, time.Minute, time.Hour, 24 * time.Hour, 8766 * time.Hour}[int(data[0]&0x7f)%6]
	reps := 1
	if data[0]&0x80 != 0 {
		reps = int(data[1]) * 20
	}
	recs := data[2:]
	base := time.Date(2026, 12, 3, 14, 0, 0, 0, time.UTC)
	var bs []Bucket
	for r := 0; r < reps && len(bs) < 10000; r++ {
		shift := time.Duration(r) * 256 * unit
		for i := 0; i+7 <= len(recs) && len(bs) < 10000; i += 7 {
			off := int16(binary.BigEndian.Uint16(recs[i:]))
			width := recs[i+2]
			count := int64(int32(binary.BigEndian.Uint32(recs[i+3:])))
			if count == math.MinInt32 {
				count = math.MaxInt64
			}
			start := base.Add(shift).Add(time.Duration(off) * unit)
			bs = append(bs, Bucket{start, start.Add(time.Duration(width) * unit), count})
		}
	}
	return bs
}

func FuzzHistogram(f *testing.F) {
	f.Add([]byte{2, 0, 0, 0, 1, 0, 0, 0, 5, 0, 1, 1, 0, 0, 0, 9}, "events over time", int16(0), int16(0))
	f.Add([]byte{0x83, 100, 0, 0, 1, 0, 0, 1, 0, 0, 1, 1, 0x80, 0, 0, 0}, `</svg><script>alert(1)</script>`, int16(300), int16(60))
	f.Add([]byte{5, 0, 0xff, 0xff, 3, 0x7f, 0xff, 0xff, 0xff}, `" onload="x`, int16(-1), int16(32767))
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 1}, "", int16(1), int16(1))
	f.Fuzz(func(t *testing.T, data []byte, label string, w, h int16) {
		bs := bucketsOf(data)
		out := Histogram(bs, HistogramOptions{
			Width: int(w), Height: int(h), Label: label,
			Link:     func(from, to time.Time) string { return label + "?from=" + from.String() },
			Location: time.FixedZone(label, int(w)*60),
		})
		if err := checkSVG(out); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if bars := strings.Count(string(out), `<rect class="chart-bar"`); bars > maxBars || bars > len(bs) {
			t.Fatalf("%d bars for %d buckets", bars, len(bs))
		}
		// Bounded by the bars drawn, not the buckets given: a bar and
		// its link carry the label twice, escaped (at most 6 bytes a
		// byte), and 400 bytes besides.
		if limit := 8000 + (maxBars+2)*(400+12*len(label)); len(out) > limit {
			t.Fatalf("%d bytes, more than %d", len(out), limit)
		}
	})
}

// pointsOf makes points of fuzzed bytes: each 10 bytes a time (int16
// minutes from a base) and a value (float64 bits: NaN, infinities and
// the extremes included).
func pointsOf(data []byte) []Point {
	base := time.Date(2026, 12, 3, 14, 0, 0, 0, time.UTC)
	var pts []Point
	for i := 0; i+10 <= len(data); i += 10 {
		off := int16(binary.BigEndian.Uint16(data[i:]))
		v := math.Float64frombits(binary.BigEndian.Uint64(data[i+2:]))
		pts = append(pts, Point{base.Add(time.Duration(off) * time.Minute), v})
	}
	return pts
}

func FuzzLine(f *testing.F) {
	one := binary.BigEndian.AppendUint64([]byte{0, 1}, math.Float64bits(1))
	nan := binary.BigEndian.AppendUint64([]byte{0, 2}, math.Float64bits(math.NaN()))
	big := binary.BigEndian.AppendUint64([]byte{0, 3}, math.Float64bits(-math.MaxFloat64))
	f.Add(append(append(append([]byte{}, one...), nan...), big...), "bytes", `</svg><script>alert(1)</script>`)
	f.Add(one, "USD", "")
	f.Fuzz(func(t *testing.T, data []byte, unit, name string) {
		pts := pointsOf(data)
		var band []Band
		var marks []Mark
		for i, p := range pts {
			band = append(band, Band{p.Time, p.Value, -p.Value})
			if i%3 == 0 {
				marks = append(marks, Mark{p.Time, p.Value, name})
			}
		}
		out := Line([]Series{{name, pts}, {"", pts[len(pts)/2:]}}, LineOptions{Unit: unit, Label: name, Band: band, Marks: marks})
		if err := checkSVG(out); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
	})
}
