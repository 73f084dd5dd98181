package detect

import (
	"fmt"
	"testing"
	"time"
)

// TestOff: a rule turned off makes no detections, yet still feeds the
// correlation that counts it; a correlation turned off makes none either,
// also when its window is decided by Flush.
func TestOff(t *testing.T) {
	const src = `title: Failed login
id: failed
logsource: {}
detection:
  s: {rule: failed}
  condition: s
---
title: Many failed logins
id: many
correlation:
  type: event_count
  rules: [failed]
  group-by: [user]
  timespan: 1h
  generate: true
  condition: {gte: 3}
---
title: Few logins
id: few
correlation:
  type: event_count
  rules: [failed]
  group-by: [user]
  timespan: 1m
  generate: true
  condition: {lt: 10}
`
	rules, err := Parse("off.yml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		off  []string
		want map[string]int // detections by rule id
	}{
		{nil, map[string]int{"failed": 3, "many": 1, "few": 1}},
		{[]string{"failed"}, map[string]int{"many": 1, "few": 1}},
		{[]string{"many", "few"}, map[string]int{"failed": 3}},
		{[]string{"failed", "many", "few"}, map[string]int{}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.off), func(t *testing.T) {
			off := map[string]bool{}
			for _, id := range tt.off {
				off[id] = true
			}
			e, err := NewEngine(rules, Options{Off: off})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range e.Rules() {
				if e.IsOff(r) != off[r.ID] {
					t.Errorf("IsOff(%s) = %v", r.ID, e.IsOff(r))
				}
			}
			d := e.NewDetector()
			got := map[string]int{}
			for i := range 3 {
				x := ev(time.Duration(i)*time.Second, map[string]any{"rule": "failed", "user": "ann"})
				x.Seq = uint64(i + 1)
				for _, det := range d.Process(x) {
					got[det.Rule.ID]++
				}
			}
			for _, det := range d.Flush(t0.Add(time.Hour)) {
				got[det.Rule.ID]++
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("detections = %v, want %v", got, tt.want)
			}
		})
	}
}
