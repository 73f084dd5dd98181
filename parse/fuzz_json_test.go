package parse

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/vigilsec/vigil/event"
)

// fuzzEvents adds the events of a fixture of wrapped events ({"event":
// …}), up to max, as seeds.
func fuzzEvents(f *testing.F, path string, max int) {
	b, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	for i, l := range bytes.Split(b, []byte("\n")) {
		if i == max {
			break
		}
		var w wrapped
		if json.Unmarshal(l, &w) == nil && len(w.Event) > 0 {
			f.Add([]byte(w.Event))
		}
	}
}

// fuzzCloud checks that no record makes the named formats panic, that
// what they accept they normalize, and that Parse, given the format or
// left to detect it, holds to its guarantees (checkResults).
func fuzzCloud(f *testing.F, formats ...string) {
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, name := range formats {
			ev := &event.Event{}
			if err := jsonParsers[name](in, ev); err != nil {
				continue
			}
			if ev.Source != name || ev.Cloud.Provider == "" || ev.Class == "" || ev.Outcome.Result == "" {
				t.Fatalf("%s accepted a record without normalizing it: %+v", name, ev)
			}
			if !ev.Time.IsZero() && ev.Time.Location() != time.UTC {
				t.Fatalf("%s: time %v not in UTC", name, ev.Time)
			}
		}
		for _, format := range append(formats[:len(formats):len(formats)], Auto) {
			var rs []Result
			_, err := Parse(bytes.NewReader(in), format, Options{Received: testReceived, MaxLine: 1 << 16}, func(r Result) error {
				rs = append(rs, r)
				return nil
			})
			if err != nil && format != Auto {
				t.Fatalf("Parse(%s): %v", format, err)
			}
			checkResults(t, rs)
		}
	})
}

func FuzzGCP(f *testing.F) {
	fuzzSeeds(f, shared+"plaso-log-format-fixtures/test_data/jsonl/gcp_logging.jsonl", 11)
	fuzzEvents(f, shared+"panther-analysis-rule-tests/gcp_audit_rule_tests.jsonl", 40)
	f.Add([]byte(`{"protoPayload":{"status":{"code":"7"}},"timestamp":1700000000}`))
	f.Add([]byte(`[{"protopayload":{"requestMetadata":{"callerIP":"[::1]:80"}},"receiveTimestamp":"..."}]`))
	fuzzCloud(f, "gcp.audit")
}

func FuzzAzure(f *testing.F) {
	fuzzSeeds(f, shared+"plaso-log-format-fixtures/test_data/jsonl/azure_activity_log.jsonl", 4)
	fuzzEvents(f, shared+"panther-analysis-rule-tests/azure_activity_rule_tests.jsonl", 30)
	fuzzEvents(f, shared+"panther-analysis-rule-tests/azure_signin_rule_tests.jsonl", 47)
	fuzzEvents(f, shared+"stratus-red-team-detonation-logs/technique-doc-samples-non-aws.jsonl", 26)
	f.Add([]byte(`{"records":[{"operationName":{"value":"a/b"},"resourceId":"/SUBSCRIPTIONS/X"},{"category":"SignInLogs","properties":{"status":{"errorCode":1}}}]}`))
	f.Add([]byte(`{"activityDisplayName":"x","initiatedBy":{"app":{"displayName":"y"}},"activityDateTime":"2024-01-01 00:00:00.1234567"}`))
	fuzzCloud(f, "azure.activity", "azure.signin")
}
