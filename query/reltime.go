package query

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseTimeArg reads the bound of a time range as users give it to
// --from/--to and the API's from/to: "now", a relative time such as
// "-24h", "-15m" or "-7d" (days and weeks as well as Go durations), an
// RFC 3339 time, or a date (midnight UTC).
func ParseTimeArg(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return time.Time{}, nil
	case s == "now":
		return now.UTC(), nil
	case s[0] == '-' || s[0] == '+':
		d, err := parseRelative(s[1:])
		if err != nil {
			return time.Time{}, fmt.Errorf("time %q: %w", s, err)
		}
		if s[0] == '-' {
			d = -d
		}
		return now.Add(d).UTC(), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("time %q: want RFC 3339 (2024-07-31T13:00:00Z), a date (2024-07-31), now, or relative (-24h, -7d)", s)
}

// parseRelative reads a duration with the extra units d (day) and w (week).
func parseRelative(s string) (time.Duration, error) {
	if n := len(s); n > 1 && (s[n-1] == 'd' || s[n-1] == 'w') {
		v, err := strconv.ParseFloat(s[:n-1], 64)
		if err != nil || v < 0 || v > 1e5 {
			return 0, fmt.Errorf("bad duration %q", s)
		}
		unit := 24 * time.Hour
		if s[n-1] == 'w' {
			unit *= 7
		}
		return time.Duration(v * float64(unit)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("bad duration %q", s)
	}
	return d, nil
}
