package parse

import (
	"testing"
	"time"
)

func TestParseTime(t *testing.T) {
	tests := []struct {
		in   string
		want string // RFC 3339 UTC, or "" for an error
	}{
		{"2024-07-31T13:06:24Z", "2024-07-31T13:06:24Z"},
		{"2021-10-19T02:57:47.339377Z", "2021-10-19T02:57:47.339377Z"},
		{"2022-02-08 09:23:37+11:00", "2022-02-07T22:23:37Z"},
		{"2024-12-17T10:30:00.0000000Z", "2024-12-17T10:30:00Z"},
		{"2025-01-15 14:20:35.456", "2025-01-15T14:20:35.456Z"},
		{"2016-10-25T12:37:23.297265-07:00", "2016-10-25T19:37:23.297265Z"},
		{"1418530010", "2014-12-14T04:06:50Z"},
		{"1418530010123", "2014-12-14T04:06:50.123Z"},
		{"1418530010123456789", "2014-12-14T04:06:50.123456789Z"},
		{"2020-09-14T00:44:23.000Z", "2020-09-14T00:44:23Z"},
		{"", ""},
		{"yesterday", ""},
		{"2024-13-45T99:00:00Z", ""},
	}
	for _, tt := range tests {
		got, err := parseTime(tt.in)
		if tt.want == "" {
			if err == nil {
				t.Errorf("parseTime(%q) = %v, want error", tt.in, got)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseTime(%q): %v", tt.in, err)
			continue
		}
		if s := got.Format(time.RFC3339Nano); s != tt.want {
			t.Errorf("parseTime(%q) = %s, want %s", tt.in, s, tt.want)
		}
	}
}
