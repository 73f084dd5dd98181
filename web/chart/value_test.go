package chart

import (
	"math"
	"slices"
	"testing"
)

func TestNiceStep(t *testing.T) {
	for _, tc := range []struct{ raw, want float64 }{
		{1, 1}, {1.1, 2}, {2, 2}, {2.1, 5}, {4.9, 5}, {5.1, 10}, {7, 10},
		{0.013, 0.02}, {333, 500}, {2.5e9, 5e9}, {0, 0}, {-1, 0}, {math.Inf(1), 0}, {math.NaN(), 0},
	} {
		if got := niceStep(tc.raw); math.Abs(got-tc.want) > tc.want*1e-12 {
			t.Errorf("niceStep(%v) = %v, want %v", tc.raw, got, tc.want)
		}
	}
}

func TestCountTicks(t *testing.T) {
	for _, tc := range []struct {
		top  int64
		want []float64
	}{
		{0, []float64{0}},
		{1, []float64{0, 1}},
		{2, []float64{0, 1, 2}},
		{7, []float64{0, 5}},
		{3, []float64{0, 1, 2, 3}},
		{4, []float64{0, 2, 4}},
		{10, []float64{0, 5, 10}},
		{99, []float64{0, 50}},
		{1234, []float64{0, 500, 1000}},
		{math.MaxInt64, []float64{0, 5e18}},
	} {
		if got, _ := countTicks(tc.top, 3); !slices.Equal(got, tc.want) {
			t.Errorf("countTicks(%d) = %v, want %v", tc.top, got, tc.want)
		}
	}
	// A short axis still has a tick above zero.
	for top, want := range map[int64][]float64{42: {0, 20, 40}, 9: {0, 5}, 1: {0, 1}, 1e6: {0, 1e6}} {
		if got, _ := countTicks(top, 1); !slices.Equal(got, want) {
			t.Errorf("countTicks(%d, 1) = %v, want %v", top, got, want)
		}
	}
}

func TestNiceRange(t *testing.T) {
	for _, tc := range []struct {
		lo, hi float64
		want   []float64
	}{
		{0, 97, []float64{0, 50, 100}},
		{0, 1, []float64{0, 0.5, 1}},
		{-3, 7, []float64{-5, 0, 5, 10}},
		{0, 0, []float64{-1, 0, 1}},
		{5, 5, []float64{4.5, 5, 5.5}},
		{0, 1.2e9, []float64{0, 5e8, 1e9, 1.5e9}},
	} {
		got, a, b, _ := niceRange(tc.lo, tc.hi, 3)
		if !slices.EqualFunc(got, tc.want, func(x, y float64) bool { return math.Abs(x-y) <= 1e-9*max(1, math.Abs(y)) }) {
			t.Errorf("niceRange(%v, %v) = %v, want %v", tc.lo, tc.hi, got, tc.want)
		}
		if a > tc.lo || b < tc.hi {
			t.Errorf("niceRange(%v, %v) = [%v, %v]: does not cover it", tc.lo, tc.hi, a, b)
		}
	}
	// The largest floats: no infinities, a few ticks.
	ticks, a, b, _ := niceRange(-math.MaxFloat64, math.MaxFloat64, 3)
	if !finite(a) || !finite(b) || len(ticks) == 0 || len(ticks) > 8 {
		t.Errorf("niceRange over all floats: %v [%v, %v]", ticks, a, b)
	}
}

func TestFormatValue(t *testing.T) {
	for _, tc := range []struct {
		v, ref, step float64
		unit         string
		want         string
	}{
		{0, 100, 50, "", "0"},
		{50, 100, 50, "", "50"},
		{1500, 2000, 500, "", "1.5k"},
		{2000, 2000, 500, "", "2k"},
		{5e5, 1.5e6, 5e5, "", "0.5M"},
		{1.5e6, 1.5e6, 5e5, "", "1.5M"},
		{0.25, 1, 0.05, "", "0.25"},
		{0.5, 1, 0.5, "", "0.5"},
		{-5, 10, 5, "", "-5"},
		{1.2e9, 1.5e9, 5e8, "bytes", "1.2 GB"},
		{0, 1.5e9, 5e8, "bytes", "0 B"},
		{0, 10, 5, "USD", "$0"},
		{500, 800, 100, "bytes", "500 B"},
		{500, 1000, 500, "bytes", "0.5 kB"},
		{2e18, 8e18, 2e18, "bytes", "2 EB"},
		{2e21, 8e21, 2e21, "bytes", "2000 EB"},
		{3.4, 4, 0.2, "USD", "$3.40"},
		{5, 10, 5, "USD", "$5"},
		{-2.5, 5, 0.5, "USD", "-$2.50"},
		{2500, 5000, 500, "USD", "$2.5k"},
		{97, 100, 1, "%", "97%"},
		{97.5, 100, 0.5, "%", "97.5%"},
		{1500, 1500, 500, "%", "1500%"},
		{1500, 2000, 500, "req/s", "1.5k req/s"},
		{-0.0001, 1, 0.5, "", "0"},
		{2, 5, 0.5, "USD", "$2.00"},
	} {
		if got := formatValue(tc.v, tc.ref, tc.step, tc.unit); got != tc.want {
			t.Errorf("formatValue(%v, %v, %v, %q) = %q, want %q", tc.v, tc.ref, tc.step, tc.unit, got, tc.want)
		}
	}
}

func TestFormatPoint(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		unit string
		want string
	}{
		{0, "", "0"},
		{1234567, "bytes", "1.23 MB"},
		{1e6, "bytes", "1 MB"},
		{999999, "", "1M"},
		{3.4, "USD", "$3.40"},
		{12345, "USD", "$12.3k"},
		{97.25, "%", "97.3%"},
		{0.000123, "", "0.000123"},
		{-42, "ms", "-42 ms"},
		{math.NaN(), "", "NaN"},
		{math.Inf(-1), "", "-Inf"},
		{-1e-300, "", "0"}, // beyond ten decimals
	} {
		if got := formatPoint(tc.v, tc.unit); got != tc.want {
			t.Errorf("formatPoint(%v, %q) = %q, want %q", tc.v, tc.unit, got, tc.want)
		}
	}
}

func TestFormatCount(t *testing.T) {
	for _, tc := range []struct {
		n    int64
		want string
	}{
		{0, "0"}, {999, "999"}, {1000, "1,000"}, {1234567, "1,234,567"}, {-1234, "-1,234"},
		{math.MaxInt64, "9,223,372,036,854,775,807"}, {math.MinInt64, "-9,223,372,036,854,775,808"},
	} {
		if got := formatCount(tc.n); got != tc.want {
			t.Errorf("formatCount(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}
