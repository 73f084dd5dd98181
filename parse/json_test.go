package parse

import (
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/event"
)

func TestGenericJSON(t *testing.T) {
	// Panther's GuardDuty and S3 access-log tests have no dedicated
	// format: they import as generic JSON, unwrapped from the fixture.
	for _, name := range []string{"aws_guardduty_rule_tests", "aws_s3_access_rule_tests"} {
		_, rs := parseFile(t, shared+"panther-analysis-rule-tests/"+name+".jsonl", Auto, Options{})
		evs := events(t, rs)
		for _, e := range evs {
			if e.Source != "json" {
				t.Errorf("%s: source %q", name, e.Source)
			}
		}
		checkGolden(t, "json-"+name, evs[:3])
	}
}

func TestGenericJSONFields(t *testing.T) {
	tests := []struct {
		name, in, timeField string
		want                event.Event
		err                 string
	}{
		{name: "usual names", in: `{"@timestamp":"2024-01-02T03:04:05Z","user":"alice","source_ip":"10.0.0.1","action":"login","host":"web-1"}`,
			want: event.Event{Time: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC), Actor: event.Actor{Name: "alice"}, Action: "login", Host: "web-1"}},
		{name: "loose spellings", in: `{"Event DateTime":"2024-01-02 03:04:05","User Name":"bob","Source IP":"10.0.0.1"}`,
			want: event.Event{Time: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC), Actor: event.Actor{Name: "bob"}}},
		{name: "epoch millis", in: `{"ts":1704164645000}`,
			want: event.Event{Time: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)}},
		{name: "configured nested field", in: `{"meta":{"when":"2024-01-02T03:04:05Z"},"time":"1999-01-01T00:00:00Z"}`, timeField: "meta.when",
			want: event.Event{Time: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)}},
		{name: "configured field missing", in: `{"time":"2024-01-02T03:04:05Z"}`, timeField: "meta.when", err: `time field "meta.when" missing`},
		{name: "configured field bad", in: `{"when":true}`, timeField: "when", err: `time field "when"`},
		{name: "no time", in: `{"msg":"x"}`, want: event.Event{Time: testReceived}},
		{name: "not an object", in: `"just a string"`, err: "not an object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := parseString(t, tt.in+"\n", "json", Options{TimeField: tt.timeField})
			if len(rs) != 1 {
				t.Fatalf("%d results", len(rs))
			}
			if tt.err != "" {
				if rs[0].Err == nil || !strings.Contains(rs[0].Err.Error(), tt.err) {
					t.Errorf("err = %v, want %q", rs[0].Err, tt.err)
				}
				return
			}
			if rs[0].Err != nil {
				t.Fatal(rs[0].Err)
			}
			e := rs[0].Event
			if !e.Time.Equal(tt.want.Time) || e.Actor != tt.want.Actor || e.Action != tt.want.Action || e.Host != tt.want.Host {
				t.Errorf("event = %+v", e)
			}
			if strings.Contains(tt.in, "10.0.0.1") && e.SrcIP.String() != "10.0.0.1" {
				t.Errorf("src_ip = %v", e.SrcIP)
			}
		})
	}
}
