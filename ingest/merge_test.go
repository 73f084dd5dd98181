package ingest

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/vigilsec/vigil/detect"
)

// TestMerge follows a merge of two event partitions' observations step
// by step: what it lets go, in which order, and up to which message the
// consumer may be acknowledged.
func TestMerge(t *testing.T) {
	at := func(s int) time.Time { return time.Date(2024, 7, 1, 0, 0, s, 0, time.UTC) }
	msg := func(from int, watermark time.Time, idle bool, obs ...string) []byte {
		b := markLine(from, watermark, idle)
		for _, o := range obs {
			var sec int
			var id string
			if _, err := fmt.Sscan(o, &sec, &id); err != nil {
				t.Fatal(err)
			}
			line, err := json.Marshal(detect.Observation{Correlation: "c", Rule: "r", Event: detect.EventRef{Time: at(sec), ID: id, Tenant: "t"}})
			if err != nil {
				t.Fatal(err)
			}
			b = append(append(b, line...), '\n')
		}
		return b
	}
	m := newMerge(2)
	var got []string
	step := func(name string, seq uint64, data []byte, wantOut []string, wantThrough uint64) {
		t.Helper()
		if data != nil {
			if err := m.add(seq, data); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
		got = got[:0]
		through := m.release(func(o detect.Observation) { got = append(got, o.Event.ID) })
		if !slices.Equal(got, wantOut) || through != wantThrough {
			t.Errorf("%s: released %v through %d, want %v through %d", name, got, through, wantOut, wantThrough)
		}
	}
	// Partition 1 was never heard: nothing goes.
	step("one partition heard", 1, msg(0, at(2), false, "1 b", "2 c"), nil, 0)
	// Both heard, the least watermark is 1: only what is before it goes.
	step("both heard", 2, msg(1, at(1), false, "1 a"), nil, 0)
	// Partition 1 is past 3, partition 0 past 2: the events of second 1
	// go, in tenant and id order whichever partition they came from.
	// Message 1 still holds an observation of second 2: the consumer is
	// not acknowledged past it.
	step("watermarks move", 3, msg(1, at(3), false, "3 d"), []string{"a", "b"}, 0)
	// Partition 0 has nothing more to read: partition 1 alone decides.
	step("an idle partition", 4, msg(0, at(2), true), []string{"c"}, 2)
	step("the other one moves", 5, msg(1, at(4), false), []string{"d"}, 5)
	// A damaged message is skipped and does not hold the others back.
	if err := m.add(6, []byte("not a mark\n")); err == nil {
		t.Error("a message without a mark: no error")
	}
	// Every partition idle: all that is held goes.
	step("all idle", 7, msg(1, at(4), true, "9 e"), []string{"e"}, 7)
}
