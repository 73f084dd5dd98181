package parse

import (
	"strings"
	"testing"

	"github.com/vigilsec/vigil/event"
)

func TestELB(t *testing.T) {
	format, rs := parseFile(t, shared+"plaso-log-format-fixtures/test_data/aws_elb_access.log", Auto, Options{})
	if format != "aws.elb" {
		t.Fatalf("detected as %q", format)
	}
	evs := events(t, rs)
	if len(evs) == 0 {
		t.Fatal("no events")
	}
	e := evs[0]
	if e.Action != "GET" || e.SrcIP.String() != "192.168.1.10" || e.SrcPort != 44325 || e.DstIP.String() != "192.168.1.123" ||
		e.Outcome.Result != event.OutcomeSuccess || e.Outcome.Code != "200" || e.Class != event.ClassHTTPActivity ||
		e.Cloud.Region != "us-east-2" || e.Cloud.Account != "123456789123" {
		t.Errorf("first entry = %+v", e)
	}
	checkGolden(t, "elb", evs)
}

func TestELBBadInput(t *testing.T) {
	good := `https 2020-01-11T16:55:20.356586Z app/x/1 192.168.1.10:44325 192.168.1.123:32869 0.013 0.164 0.000 404 404 391 107999 "GET https://a:443/ HTTP/1.1" "ua" - - - "-" "-" "-" 2 2020-01-11T16:55:19.624000Z "forward" "-" "-" "-" "-" "-" "-"`
	tests := []struct{ name, in, reason string }{
		{"unterminated quote", `https 2020-01-11T16:55:20Z app/x 1.2.3.4:1 - 0 0 0 200 200 1 1 "GET /`, "unterminated"},
		{"few fields", `https 2020-01-11T16:55:20Z app/x 1.2.3.4:1`, "fields"},
		{"bad time", `https 2020-13-11T16:55:20Z app/x 1.2.3.4:1 - 0 0 0 200 200 1 1 "GET / HTTP/1.1" "ua"`, "time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := parseString(t, good+"\n"+tt.in+"\n"+good+"\n", "aws.elb", Options{})
			if len(rs) != 3 || rs[0].Err != nil || rs[2].Err != nil {
				t.Fatalf("results %+v", rs)
			}
			if rs[1].Err == nil || !strings.Contains(rs[1].Err.Error(), tt.reason) {
				t.Errorf("err = %v, want %q", rs[1].Err, tt.reason)
			}
			if rs[0].Event.Outcome.Result != event.OutcomeFailure {
				t.Errorf("404 outcome = %v", rs[0].Event.Outcome)
			}
		})
	}
}
