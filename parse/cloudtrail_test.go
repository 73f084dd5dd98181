package parse

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/event"
)

func TestCloudTrailStratus(t *testing.T) {
	files, err := filepath.Glob(shared + "stratus-red-team-detonation-logs/detonation-logs/*.json")
	if err != nil || len(files) != 35 {
		t.Fatalf("want 35 Stratus files, got %d (%v)", len(files), err)
	}
	total := 0
	for _, f := range files {
		format, rs := parseFile(t, f, Auto, Options{})
		if format != "aws.cloudtrail" {
			t.Errorf("%s detected as %q", f, format)
		}
		evs := events(t, rs)
		total += len(evs)
		for _, e := range evs {
			if e.Source != "aws.cloudtrail" || e.Action == "" || e.Service == "" || e.Cloud.Account == "" || e.Time.IsZero() {
				t.Errorf("%s: incomplete event %+v", f, e)
			}
		}
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		if name == "aws.defense-evasion.cloudtrail-stop" || name == "aws.initial-access.console-login-without-mfa" || name == "aws.persistence.iam-create-admin-user" {
			checkGolden(t, "cloudtrail-"+name, evs)
		}
	}
	if total != 310 {
		t.Errorf("Stratus detonation logs: %d events, want 310", total)
	}
}

func TestCloudTrailShapes(t *testing.T) {
	tests := []struct {
		name, path string
		n          int
	}{
		{"logstash", "otrf-security-datasets-aws/ec2_proxy_s3_exfiltration_2020-09-14011940.json", 103},
		{"lookup-events", "plaso-log-format-fixtures/test_data/jsonl/aws_cloudtrail.jsonl", 6}, // the last line has no newline
		{"user-guide", "aws-docs-examples/cloudtrail/cloudtrail_user_guide_examples.jsonl", 25},
		// Two of Panther's test events have "redacted" and "..." for
		// eventTime: malformed, so quarantined.
		{"panther", "panther-analysis-rule-tests/aws_cloudtrail_rule_tests.jsonl", 459},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			format, rs := parseFile(t, shared+tt.path, Auto, Options{})
			if format != "aws.cloudtrail" {
				t.Errorf("detected as %q", format)
			}
			var evs []*event.Event
			for _, r := range rs {
				switch {
				case r.Err == nil:
					evs = append(evs, r.Event)
				case tt.name == "panther" && strings.Contains(r.Err.Error(), "eventTime"):
				default:
					t.Errorf("line %d quarantined: %v", r.Line, r.Err)
				}
			}
			if len(evs) != tt.n {
				t.Errorf("%d events, want %d", len(evs), tt.n)
			}
			n := 0
			for _, e := range evs {
				if e.Source == "aws.cloudtrail" {
					n++
				}
			}
			if tt.name != "panther" && n != tt.n {
				t.Errorf("%d of %d events normalized as CloudTrail", n, tt.n)
			}
			if len(evs) > 12 {
				evs = evs[:12]
			}
			checkGolden(t, "cloudtrail-"+tt.name, evs)
		})
	}
}

// A record from the Stratus logs, reshaped into the other forms
// CloudTrail is delivered in, must normalize identically.
func TestCloudTrailEnvelopes(t *testing.T) {
	rec := `{"eventVersion":"1.10","userIdentity":{"type":"AssumedRole","principalId":"AROA:s","arn":"arn:aws:sts::143434273843:assumed-role/admin/alice","accountId":"143434273843","accessKeyId":"ASIAXYZ","sessionContext":{"sessionIssuer":{"type":"Role","arn":"arn:aws:iam::143434273843:role/admin","userName":"admin"}}},"eventTime":"2024-07-31T13:06:24Z","eventSource":"cloudtrail.amazonaws.com","eventName":"StopLogging","awsRegion":"us-east-1","sourceIPAddress":"86.245.153.234","userAgent":"aws-cli/2","requestParameters":{"name":"trail"},"responseElements":null,"eventID":"e1","recipientAccountId":"143434273843"}`
	inputs := map[string]string{
		"line":        rec + "\n",
		"records":     `{"Records":[` + rec + `,` + rec + `]}`,
		"array":       "[\n  " + rec + "\n]\n",
		"eventbridge": `{"version":"0","id":"x","detail-type":"AWS API Call via CloudTrail","source":"aws.cloudtrail","account":"143434273843","time":"2024-07-31T13:06:24Z","region":"us-east-1","resources":[],"detail":` + rec + `}`,
		"lookup":      `{"EventId":"e1","EventName":"StopLogging","EventTime":"2024-07-31 23:06:24+10:00","CloudTrailEvent":` + quoteJSON(rec) + `}`,
	}
	for name, in := range inputs {
		t.Run(name, func(t *testing.T) {
			evs := events(t, parseString(t, in, Auto, Options{Environments: map[string]string{"143434273843": "prod"}}))
			if len(evs) == 0 {
				t.Fatal("no events")
			}
			e := evs[0]
			want := event.Actor{ID: "arn:aws:sts::143434273843:assumed-role/admin/alice", Type: "AssumedRole", Name: "admin/alice"}
			if e.Actor != want {
				t.Errorf("actor = %+v, want %+v", e.Actor, want)
			}
			if e.Action != "StopLogging" || e.Service != "cloudtrail.amazonaws.com" || e.Session.ID != "ASIAXYZ" ||
				e.SrcIP.String() != "86.245.153.234" || e.Environment != "prod" || e.Cloud.Region != "us-east-1" ||
				e.Time.Format("2006-01-02T15:04:05Z07:00") != "2024-07-31T13:06:24Z" || e.Outcome.Result != event.OutcomeSuccess {
				t.Errorf("event = %+v", e)
			}
			if name == "lookup" || name == "eventbridge" {
				if string(e.Doc) != rec {
					t.Errorf("Doc = %s, want the inner record", e.Doc)
				}
			} else if e.Doc != nil || string(e.Raw) != rec {
				t.Errorf("Raw = %s, Doc = %s; want the record's exact bytes and no Doc", e.Raw, e.Doc)
			}
		})
	}
}

func TestCloudTrailOutcome(t *testing.T) {
	data, err := os.ReadFile(shared + "aws-docs-examples/cloudtrail/cloudtrail_user_guide_examples.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	evs := events(t, parseString(t, string(data), Auto, Options{}))
	var ok, failed int
	for _, e := range evs {
		if e.Action == "ConsoleLogin" {
			if e.Class != event.ClassAuthentication {
				t.Errorf("ConsoleLogin class = %s", e.Class)
			}
			switch e.Outcome.Result {
			case event.OutcomeSuccess:
				ok++
			case event.OutcomeFailure:
				failed++
				if e.Outcome.Code == "" {
					t.Errorf("failed ConsoleLogin without a code: %s", e.Raw)
				}
			}
		}
	}
	if ok == 0 || failed == 0 {
		t.Errorf("ConsoleLogin outcomes: %d success, %d failure; the user guide has both", ok, failed)
	}
}

func TestCloudTrailBadInput(t *testing.T) {
	good := `{"eventTime":"2024-07-31T13:06:24Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","eventID":"ok"}`
	tests := []struct {
		name, in, reason string
	}{
		{"truncated", `{"eventTime":"2024-07-31T13:06:24Z","eventSource":"s3.amazonaws.com","eventNa`, "invalid JSON"},
		{"wrong type", `{"eventTime":"2024-07-31T13:06:24Z","eventSource":"s3.amazonaws.com","eventName":"X","userIdentity":{"type":5}}`, "userIdentity.type"},
		{"bad time", `{"eventTime":"yesterday","eventSource":"s3.amazonaws.com","eventName":"X"}`, "eventTime"},

		{"not cloudtrail", `{"protoPayload":{}}`, "no eventName"},
		{"hostile", `{"eventTime":"2024-07-31T13:06:24Z\u0000'; DROP TABLE events;--","eventSource":"x","eventName":"X"}`, "eventTime"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := parseString(t, good+"\n"+tt.in+"\n"+good+"\n", "aws.cloudtrail", Options{})
			if len(rs) != 3 {
				t.Fatalf("%d results, want 3", len(rs))
			}
			if rs[0].Err != nil || rs[2].Err != nil {
				t.Errorf("good records around the bad one failed: %v, %v", rs[0].Err, rs[2].Err)
			}
			if rs[1].Err == nil || !strings.Contains(rs[1].Err.Error(), tt.reason) {
				t.Errorf("bad record: err = %v, want one mentioning %q", rs[1].Err, tt.reason)
			}
			if rs[1].Line != 2 || string(rs[1].Raw) != tt.in {
				t.Errorf("bad record at line %d with raw %q", rs[1].Line, rs[1].Raw)
			}
		})
	}
}

func quoteJSON(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"', '\\':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	b.WriteByte('"')
	return b.String()
}
