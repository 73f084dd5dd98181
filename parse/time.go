package parse

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// timeLayouts are the layouts logs write times in, most common first.
// Layouts without a zone are read as UTC: cloud providers write UTC.
var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999Z0700",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999Z0700",
	"2006-01-02 15:04:05.999999999 -0700 MST",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02 15:04:05.999999999 MST",
	"2006-01-02T15:04:05.999999999 MST",
	"2006/01/02 15:04:05.999999999",
	time.RFC1123Z,
	time.RFC1123,
	"Mon, 2 Jan 2006 15:04:05 -0700",
	time.RubyDate,
	time.UnixDate,
	"02/Jan/2006:15:04:05 -0700",
	"1/2/2006 3:04:05 PM",
}

// parseTime reads a time in any of the usual textual forms, or a Unix
// epoch in seconds, milliseconds, microseconds or nanoseconds (chosen by
// magnitude). The result is in UTC.
func parseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, errors.New("empty time")
	}
	if c := s[0]; c >= '0' && c <= '9' && !strings.ContainsAny(s, "-/:T ") {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return epochInt(n), nil
		}
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return epochTime(f)
		}
	}
	for _, layout := range timeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("unrecognized time %q", truncate(s, 64))
}

// epochTime reads a Unix time whose unit is guessed from its magnitude.
func epochTime(f float64) (time.Time, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
		return time.Time{}, fmt.Errorf("invalid epoch time %v", f)
	}
	var ns float64
	switch {
	case f < 1e11: // seconds until the year 5138
		ns = f * 1e9
	case f < 1e14:
		ns = f * 1e6
	case f < 1e17:
		ns = f * 1e3
	default:
		ns = f
	}
	if ns > math.MaxInt64 {
		return time.Time{}, fmt.Errorf("epoch time %v out of range", f)
	}
	return time.Unix(0, int64(ns)).UTC(), nil
}

// epochInt reads an integral Unix time exactly, its unit guessed from its
// magnitude as in epochTime.
func epochInt(n int64) time.Time {
	switch {
	case n < 0:
		return time.Unix(n, 0).UTC()
	case n < 1e11:
		return time.Unix(n, 0).UTC()
	case n < 1e14:
		return time.UnixMilli(n).UTC()
	case n < 1e17:
		return time.UnixMicro(n).UTC()
	}
	return time.Unix(0, n).UTC()
}

// truncate shortens s for error messages, on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }
