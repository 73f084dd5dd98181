package query

import (
	"testing"
	"time"
)

func TestParseTimeArg(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	tests := []struct{ in, want string }{
		{"now", "2026-11-23T12:00:00Z"},
		{"-24h", "2026-11-22T12:00:00Z"},
		{"-90m", "2026-11-23T10:30:00Z"},
		{"-7d", "2026-11-16T12:00:00Z"},
		{"-1w", "2026-11-16T12:00:00Z"},
		{"2024-07-31T13:06:24Z", "2024-07-31T13:06:24Z"},
		{"2024-07-31T15:06:24+02:00", "2024-07-31T13:06:24Z"},
		{"2024-07-31", "2024-07-31T00:00:00Z"},
		{"yesterday", ""},
		{"-xh", ""},
		{"--1h", ""},
	}
	for _, tt := range tests {
		got, err := ParseTimeArg(tt.in, now)
		if tt.want == "" {
			if err == nil {
				t.Errorf("ParseTimeArg(%q) = %v, want error", tt.in, got)
			}
			continue
		}
		if err != nil || got.Format(time.RFC3339) != tt.want {
			t.Errorf("ParseTimeArg(%q) = %v, %v; want %s", tt.in, got, err, tt.want)
		}
	}
}
