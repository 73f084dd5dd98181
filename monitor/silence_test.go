package monitor

import (
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/parse"
)

// TestWatch: a source the config expects, quiet past its bound, is
// silent once, with the Stratus StopLogging that came before; a source
// that resumes and goes quiet again is silent again; one learned from
// its traffic gets a bound from its gaps.
func TestWatch(t *testing.T) {
	f, err := os.Open("../../shared/testdata/stratus-red-team-detonation-logs/detonation-logs/aws.defense-evasion.cloudtrail-stop.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	t0 := time.Date(2024, 7, 31, 13, 0, 0, 0, time.UTC)
	var stop []*event.Event
	_, err = parse.Parse(f, parse.Auto, parse.Options{Tenant: "acme", Received: t0.Add(7 * time.Minute)}, func(r parse.Result) error {
		if r.Event != nil {
			r.Event.Seq = 42
			stop = append(stop, r.Event)
		}
		return nil
	})
	if err != nil || len(stop) != 1 {
		t.Fatalf("%d events, %v", len(stop), err)
	}
	trail := SourceKey{Tenant: "acme", Source: "aws.cloudtrail", From: "143434273843"}
	w := NewWatch(WatchOptions{Start: t0, Expected: []ExpectedSource{{SourceKey: trail, MaxGap: Duration(15 * time.Minute)}}})
	w.Observe(stop, t0.Add(7*time.Minute))
	if got := w.Silent(t0.Add(20 * time.Minute)); len(got) != 0 {
		t.Errorf("silent within the bound: %+v", got)
	}
	got := w.Silent(t0.Add(23 * time.Minute))
	if len(got) != 1 || got[0].SourceKey != trail || !got[0].Expected || got[0].Bound != 15*time.Minute ||
		!got[0].LastSeen.Equal(t0.Add(7*time.Minute)) {
		t.Fatalf("silences %+v", got)
	}
	if tm := got[0].Tampering; len(tm) != 1 || tm[0].Action != "StopLogging" || tm[0].Seq != 42 || tm[0].EventID != "10163ed2-2253-469d-a5ee-cbc6651f8934" {
		t.Errorf("tampering %+v", tm)
	}
	if got := w.Silent(t0.Add(time.Hour)); len(got) != 0 {
		t.Errorf("reported twice: %+v", got)
	}
	// A Watch fed the events' summary (a scale-out's ingest nodes send
	// theirs) finds the same silence.
	ws := NewWatch(WatchOptions{Start: t0, Expected: []ExpectedSource{{SourceKey: trail, MaxGap: Duration(15 * time.Minute)}}})
	other := &event.Event{Tenant: "acme", Source: "aws.cloudtrail", Cloud: event.Cloud{Account: "143434273843"}, Received: t0.Add(time.Minute)}
	summary := Summary(append([]*event.Event{other}, stop...), t0.Add(7*time.Minute))
	if len(summary) != 2 {
		t.Errorf("summary of two events of one source, one of them tampering: %d events, want 2", len(summary))
	}
	ws.Observe(summary, t0.Add(7*time.Minute))
	if got := ws.Silent(t0.Add(20 * time.Minute)); len(got) != 0 {
		t.Errorf("from the summary, silent within the bound: %+v", got)
	}
	if sum := ws.Silent(t0.Add(23 * time.Minute)); len(sum) != 1 || !sum[0].LastSeen.Equal(t0.Add(7*time.Minute)) ||
		!reflect.DeepEqual(sum[0].Tampering, got[0].Tampering) {
		t.Errorf("from the summary, silences %+v; from the events %+v", sum, got)
	}
	// Heard from again, then quiet again.
	resumed := &event.Event{Tenant: "acme", Source: "aws.cloudtrail", Cloud: event.Cloud{Account: "143434273843"}, Received: t0.Add(2 * time.Hour)}
	w.Observe([]*event.Event{resumed}, t0.Add(2*time.Hour))
	if got := w.Silent(t0.Add(2*time.Hour + 16*time.Minute)); len(got) != 1 {
		t.Errorf("quiet again: %+v", got)
	}

	// A source the config does not name: silent after four times its
	// usual gap, at least MinGap.
	w = NewWatch(WatchOptions{Start: t0, MinGap: time.Minute})
	host := func(at time.Time) []*event.Event {
		return []*event.Event{{Tenant: "acme", Source: "syslog", Host: "web-1", Received: at}}
	}
	for i := range 20 {
		w.Observe(host(t0.Add(time.Duration(i)*5*time.Minute)), time.Time{})
	}
	last := t0.Add(95 * time.Minute)
	if got := w.Silent(last.Add(19 * time.Minute)); len(got) != 0 {
		t.Errorf("silent within four gaps: %+v", got)
	}
	if got := w.Silent(last.Add(21 * time.Minute)); len(got) != 1 || got[0].Bound != 20*time.Minute || got[0].From != "web-1" {
		t.Errorf("after four gaps: %+v", got)
	}
}
