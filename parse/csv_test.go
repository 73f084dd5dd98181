package parse

import (
	"strings"
	"testing"
)

func TestCSV(t *testing.T) {
	format, rs := parseFile(t, shared+"otrf-security-datasets-aws/AWS_S3_HoneyBucketLogs.csv", Auto, Options{})
	if format != "csv" {
		t.Fatalf("detected as %q", format)
	}
	evs := events(t, rs)
	if len(evs) != 301 {
		t.Errorf("%d events, want 301", len(evs))
	}
	e := evs[0]
	if e.Action != "ListObjects" || e.SrcIP.String() != "177.131.167.145" || e.Time.Format("2006-01-02T15:04:05Z") != "2022-02-18T17:34:57Z" ||
		!strings.HasPrefix(e.UserAgent, "Mozilla/5.0") || e.ID != "283770f5-968d-448d-9328-0b010f4d3696" {
		t.Errorf("first row = %+v", e)
	}
	checkGolden(t, "csv-honeybucket", evs[:5])
}

func TestCSVBadInput(t *testing.T) {
	in := "time,user,action\n2024-01-01T00:00:00Z,alice,login\n2024-01-01T00:00:01Z,bob\n\"2024-01-01,x,y\n"
	rs := parseString(t, in, "csv", Options{})
	if len(rs) != 3 || rs[0].Err != nil {
		t.Fatalf("results: %+v", rs)
	}
	if rs[1].Err == nil || !strings.Contains(rs[1].Err.Error(), "2 fields") {
		t.Errorf("short row: %v", rs[1].Err)
	}
	if rs[2].Err == nil || !strings.Contains(rs[2].Err.Error(), "quote") {
		t.Errorf("unterminated quote: %v", rs[2].Err)
	}
	if rs[0].Event.Actor.Name != "alice" || rs[0].Event.Action != "login" {
		t.Errorf("row = %+v", rs[0].Event)
	}
}
