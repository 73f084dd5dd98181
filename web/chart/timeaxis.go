package chart

import (
	"time"
)

// A timeUnit is a calendar unit a time axis steps by.
type timeUnit int

const (
	second timeUnit = iota
	minute
	hour
	day
	week
	month
	year
)

// A timeStep is the spacing of a time axis' ticks: n units.
type timeStep struct {
	unit timeUnit
	n    int
}

// seconds is about how long the step is; months and years vary, and
// this is only for choosing a step.
func (s timeStep) seconds() float64 {
	per := [...]float64{
		second: 1,
		minute: 60,
		hour:   3600,
		day:    86400,
		week:   7 * 86400,
		month:  30.436875 * 86400,
		year:   365.2425 * 86400,
	}
	return per[s.unit] * float64(s.n)
}

// timeSteps are the steps a time axis may take, smallest first: the ones
// that fall on round times of a clock or calendar. Longer ones are years
// by 1, 2, 5 × 10^n (see chooseStep).
var timeSteps = []timeStep{
	{second, 1}, {second, 2}, {second, 5}, {second, 10}, {second, 15}, {second, 30},
	{minute, 1}, {minute, 2}, {minute, 5}, {minute, 10}, {minute, 15}, {minute, 30},
	{hour, 1}, {hour, 2}, {hour, 3}, {hour, 6}, {hour, 12},
	{day, 1}, {day, 2}, {week, 1},
	{month, 1}, {month, 2}, {month, 3}, {month, 6},
}

// chooseStep returns the smallest step that puts at most maxTicks ticks
// on span seconds (one more than the steps that fit in it).
func chooseStep(span float64, maxTicks int) timeStep {
	fit := float64(max(maxTicks-1, 1))
	for _, s := range timeSteps {
		if span/s.seconds() <= fit {
			return s
		}
	}
	s := timeStep{year, 1}
	for span/s.seconds() > fit && s.n < 1e12 {
		s.n = next125(s.n)
	}
	return s
}

// next125 is the step after n in 1, 2, 5, 10, 20, 50, …
func next125(n int) int {
	m := 1
	for m*10 <= n {
		m *= 10
	}
	switch n / m {
	case 1:
		return 2 * m
	case 2:
		return 5 * m
	}
	return 10 * m
}

// A tick is a labelled time on an axis.
type tick struct {
	at    time.Time
	label string
}

// timeTicks returns the ticks of a time axis from t0 to t1, at most about
// maxTicks of them, at round times of the wall clock and calendar of loc:
// hours on the hour even in a zone half an hour off UTC, days at local
// midnight, weeks on Mondays, months on the first.
func timeTicks(t0, t1 time.Time, loc *time.Location, maxTicks int) []tick {
	span := secs(t1) - secs(t0)
	if !(span > 0) {
		return nil
	}
	st := chooseStep(span, maxTicks)
	a := t0.In(loc)
	y, mo, d := a.Date()
	h, mi, sec := a.Clock()
	n := st.n
	var at func(k int) time.Time
	switch st.unit {
	case second:
		s0 := sec - sec%n
		at = func(k int) time.Time { return time.Date(y, mo, d, h, mi, s0+k*n, 0, loc) }
	case minute:
		m0 := mi - mi%n
		at = func(k int) time.Time { return time.Date(y, mo, d, h, m0+k*n, 0, 0, loc) }
	case hour:
		h0 := h - h%n
		at = func(k int) time.Time { return time.Date(y, mo, d, h0+k*n, 0, 0, 0, loc) }
	case day:
		// Every n-th day counted from the epoch, so that 2-day ticks
		// keep their rhythm across the end of a month.
		civil := time.Date(y, mo, d, 0, 0, 0, 0, time.UTC).Unix() / 86400
		d0 := d - int(mod(civil, int64(n)))
		at = func(k int) time.Time { return time.Date(y, mo, d0+k*n, 0, 0, 0, 0, loc) }
	case week:
		d0 := d - (int(a.Weekday())+6)%7
		at = func(k int) time.Time { return time.Date(y, mo, d0+7*k, 0, 0, 0, 0, loc) }
	case month:
		m0 := int(mo) - (int(mo)-1)%n
		at = func(k int) time.Time { return time.Date(y, time.Month(m0+k*n), 1, 0, 0, 0, 0, loc) }
	default:
		y0 := y - int(mod(int64(y), int64(n)))
		at = func(k int) time.Time { return time.Date(y0+k*n, 1, 1, 0, 0, 0, 0, loc) }
	}
	var ticks []tick
	// The first candidate is at most one step before t0; the bound only
	// guards against a calendar that does not advance.
	for k := 0; k < 4*maxTicks+8; k++ {
		t := at(k)
		if t.After(t1) {
			break
		}
		// A wall-clock time that a change to daylight saving time
		// skips normalizes to one already passed: it is dropped.
		if t.Before(t0) || len(ticks) > 0 && !t.After(ticks[len(ticks)-1].at) {
			continue
		}
		ticks = append(ticks, tick{at: t, label: st.label(t.In(loc))})
	}
	return ticks
}

// mod is a modulo whose result is never negative, for years and days
// before the epoch.
func mod(a, n int64) int64 {
	m := a % n
	if m < 0 {
		m += n
	}
	return m
}

// label is how a tick at t reads on an axis stepping by s: as short as
// the step allows. A tick at midnight on an axis of hours reads as the
// day, so that an axis over several days says where each begins.
func (s timeStep) label(t time.Time) string {
	midnight := t.Hour() == 0 && t.Minute() == 0 && t.Second() == 0
	switch {
	case s.unit <= hour && midnight:
		return t.Format("Jan 2")
	case s.unit == second:
		return t.Format("15:04:05")
	case s.unit <= hour:
		return t.Format("15:04")
	case s.unit <= week:
		return t.Format("Jan 2")
	case s.unit == month:
		return t.Format("2006-01")
	}
	return t.Format("2006")
}

// formatSpan is how a title states the interval [from, to): in full,
// with the end's date left out when it is the start's, to the precision
// the times have, and the zone.
func formatSpan(from, to time.Time, loc *time.Location) string {
	a, b := from.In(loc), to.In(loc)
	clock := "15:04"
	switch {
	case a.Nanosecond() != 0 || b.Nanosecond() != 0:
		clock = "15:04:05.000"
	case a.Second() != 0 || b.Second() != 0:
		clock = "15:04:05"
	}
	end := b.Format("2006-01-02 " + clock)
	if a.Format("20060102") == b.Format("20060102") {
		end = b.Format(clock)
	}
	return a.Format("2006-01-02 "+clock) + "–" + end + " " + a.Format("MST")
}

// formatTime is how a title states an instant.
func formatTime(t time.Time, loc *time.Location) string {
	t = t.In(loc)
	layout := "2006-01-02 15:04 MST"
	switch {
	case t.Nanosecond() != 0:
		layout = "2006-01-02 15:04:05.000 MST"
	case t.Second() != 0:
		layout = "2006-01-02 15:04:05 MST"
	}
	return t.Format(layout)
}
