package chart

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // zones with daylight saving time, wherever the tests run
)

func labels(ticks []tick) string {
	var ls []string
	for _, t := range ticks {
		ls = append(ls, t.label)
	}
	return strings.Join(ls, " ")
}

func TestTimeTicks(t *testing.T) {
	start := time.Date(2026, 12, 3, 14, 7, 0, 0, time.UTC)
	days := 24 * time.Hour
	for _, tc := range []struct {
		span time.Duration
		step timeStep
		want string
	}{
		{time.Minute, timeStep{second, 10}, "14:07:00 14:07:10 14:07:20 14:07:30 14:07:40 14:07:50 14:08:00"},
		{5 * time.Minute, timeStep{minute, 1}, "14:07 14:08 14:09 14:10 14:11 14:12"},
		{15 * time.Minute, timeStep{minute, 2}, "14:08 14:10 14:12 14:14 14:16 14:18 14:20 14:22"},
		{time.Hour, timeStep{minute, 10}, "14:10 14:20 14:30 14:40 14:50 15:00"},
		{6 * time.Hour, timeStep{hour, 1}, "15:00 16:00 17:00 18:00 19:00 20:00"},
		{days, timeStep{hour, 3}, "15:00 18:00 21:00 Dec 4 03:00 06:00 09:00 12:00"},
		{3 * days, timeStep{hour, 12}, "Dec 4 12:00 Dec 5 12:00 Dec 6 12:00"},
		{7 * days, timeStep{day, 1}, "Dec 4 Dec 5 Dec 6 Dec 7 Dec 8 Dec 9 Dec 10"},
		{14 * days, timeStep{day, 2}, "Dec 5 Dec 7 Dec 9 Dec 11 Dec 13 Dec 15 Dec 17"},
		{30 * days, timeStep{week, 1}, "Dec 7 Dec 14 Dec 21 Dec 28"},
		{90 * days, timeStep{month, 1}, "2027-01 2027-02 2027-03"},
		{365 * days, timeStep{month, 2}, "2027-01 2027-03 2027-05 2027-07 2027-09 2027-11"},
		{730 * days, timeStep{month, 3}, "2027-01 2027-04 2027-07 2027-10 2028-01 2028-04 2028-07 2028-10"},
		{20 * 365 * days, timeStep{year, 5}, "2030 2035 2040 2045"},
	} {
		if got := chooseStep(tc.span.Seconds(), 10); got != tc.step {
			t.Errorf("%v: step %v, want %v", tc.span, got, tc.step)
		}
		ticks := timeTicks(start, start.Add(tc.span), time.UTC, 10)
		if got := labels(ticks); got != tc.want {
			t.Errorf("%v: ticks\n%s\nwant\n%s", tc.span, got, tc.want)
		}
		if len(ticks) > 10 {
			t.Errorf("%v: %d ticks, more than 10", tc.span, len(ticks))
		}
		for i, tk := range ticks {
			if tk.at.Before(start) || tk.at.After(start.Add(tc.span)) || i > 0 && !tk.at.After(ticks[i-1].at) {
				t.Errorf("%v: tick %v out of range or order", tc.span, tk.at)
			}
		}
	}
}

func TestTimeTicksZones(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	india := time.FixedZone("IST", 5*3600+1800)
	for _, tc := range []struct {
		name   string
		t0, t1 time.Time
		loc    *time.Location
		want   string
	}{
		// On the hour in a zone half an hour off UTC.
		{"half-hour zone", time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC), time.Date(2026, 12, 3, 14, 0, 0, 0, time.UTC), india,
			"14:00 15:00 16:00 17:00 18:00 19:00"},
		// Days begin at local midnight.
		{"local days", time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 10, 0, 0, 0, 0, time.UTC), india,
			"Dec 4 Dec 5 Dec 6 Dec 7 Dec 8 Dec 9 Dec 10"},
		// The night clocks go forward: 02:00 does not exist.
		{"spring forward", time.Date(2026, 3, 8, 5, 0, 0, 0, time.UTC), time.Date(2026, 3, 8, 11, 0, 0, 0, time.UTC), ny,
			"Mar 8 01:00 03:00 04:00 05:00 06:00 07:00"},
		// And back: 01:00 happens twice, and is marked once.
		{"fall back", time.Date(2026, 11, 1, 4, 0, 0, 0, time.UTC), time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC), ny,
			"Nov 1 01:00 02:00 03:00 04:00 05:00"},
		// Weeks begin on Monday.
		{"weeks", time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), time.UTC,
			"Dec 7 Dec 14 Dec 21 Dec 28"},
		// Two-day steps keep their rhythm over a month's end (days
		// even since the epoch).
		{"2 days over a month end", time.Date(2027, 1, 25, 0, 0, 0, 0, time.UTC), time.Date(2027, 2, 8, 0, 0, 0, 0, time.UTC), time.UTC,
			"Jan 26 Jan 28 Jan 30 Feb 1 Feb 3 Feb 5 Feb 7"},
		{"before the epoch", time.Date(1969, 12, 25, 0, 0, 0, 0, time.UTC), time.Date(1970, 1, 8, 0, 0, 0, 0, time.UTC), time.UTC,
			"Dec 26 Dec 28 Dec 30 Jan 1 Jan 3 Jan 5 Jan 7"},
	} {
		if got := labels(timeTicks(tc.t0, tc.t1, tc.loc, 10)); got != tc.want {
			t.Errorf("%s: ticks\n%s\nwant\n%s", tc.name, got, tc.want)
		}
	}
}

func TestTimeTicksDegenerate(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 14, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		t0, t1 time.Time
	}{
		{"empty", t0, t0},
		{"backwards", t0, t0.Add(-time.Hour)},
		{"a millisecond", t0, t0.Add(time.Millisecond)},
		{"zero time to now", time.Time{}, t0},
		{"far future", time.Unix(1<<40, 0), time.Unix(1<<41, 0)},
		{"whole range", time.Unix(-1<<62, 0), time.Unix(1<<62, 0)},
	} {
		ticks := timeTicks(tc.t0, tc.t1, time.UTC, 10)
		if len(ticks) > 12 {
			t.Errorf("%s: %d ticks", tc.name, len(ticks))
		}
		if !slices.IsSortedFunc(ticks, func(a, b tick) int { return a.at.Compare(b.at) }) {
			t.Errorf("%s: ticks out of order", tc.name)
		}
	}
	if s := chooseStep(math.MaxFloat64, 10); s.unit != year {
		t.Errorf("step over all of time: %v", s)
	}
}

func TestNext125(t *testing.T) {
	n, got := 1, []int{}
	for range 8 {
		n = next125(n)
		got = append(got, n)
	}
	if want := []int{2, 5, 10, 20, 50, 100, 200, 500}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestFormatSpan(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 14, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		from, to time.Time
		loc      *time.Location
		want     string
	}{
		{t0, t0.Add(time.Minute), time.UTC, "2026-12-03 14:00–14:01 UTC"},
		{t0, t0.Add(30 * time.Second), time.UTC, "2026-12-03 14:00:00–14:00:30 UTC"},
		{t0, t0.Add(250 * time.Millisecond), time.UTC, "2026-12-03 14:00:00.000–14:00:00.250 UTC"},
		{t0, t0.Add(12 * time.Hour), time.UTC, "2026-12-03 14:00–2026-12-04 02:00 UTC"},
		{t0, t0.Add(time.Hour), time.FixedZone("", 3600), "2026-12-03 15:00–16:00 +0100"},
	} {
		if got := formatSpan(tc.from, tc.to, tc.loc); got != tc.want {
			t.Errorf("formatSpan(%v, %v) = %q, want %q", tc.from, tc.to, got, tc.want)
		}
	}
	if got, want := formatTime(t0.Add(90*time.Second), time.UTC), "2026-12-03 14:01:30 UTC"; got != want {
		t.Errorf("formatTime = %q, want %q", got, want)
	}
}
