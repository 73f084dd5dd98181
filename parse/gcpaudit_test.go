package parse

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/event"
)

// pantherFormats maps the log types of Panther's rule tests to ours.
var pantherFormats = map[string]string{
	"GCP.AuditLog":          "gcp.audit",
	"Azure.MonitorActivity": "azure.activity",
	"Azure.Audit":           "azure.signin",
}

// fixtureLines returns the lines of a JSON-lines fixture whose wrapper
// has field equal to one of values, written to a temporary file.
func fixtureLines(t *testing.T, path, field string, values ...string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out strings.Builder
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var w map[string]any
		if err := json.Unmarshal(sc.Bytes(), &w); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		for _, v := range values {
			if w[field] == v {
				out.Write(sc.Bytes())
				out.WriteByte('\n')
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(t.TempDir(), filepath.Base(path))
	if err := os.WriteFile(tmp, []byte(out.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return tmp
}

// wrapped is one record of Panther's or Stratus Red Team's fixtures.
type wrapped struct {
	LogTypes []string        `json:"log_types"`
	Platform string          `json:"platform"`
	Event    json.RawMessage `json:"event"`
}

// hasKeyFold reports whether the JSON object doc has key, in any case.
func hasKeyFold(doc []byte, key string) bool {
	var m map[string]json.RawMessage
	json.Unmarshal(doc, &m)
	for k := range m {
		if strings.EqualFold(k, key) {
			return true
		}
	}
	return false
}

// checkPantherSources checks that each event of a Panther fixture file
// was normalized by the format its log type names. Events lacking every
// key the format is recognized by are expected as generic JSON instead;
// they are counted and returned.
func checkPantherSources(t *testing.T, evs []*event.Event, identifying ...string) (generic int) {
	t.Helper()
	for _, e := range evs {
		var w wrapped
		if err := json.Unmarshal(e.Raw, &w); err != nil || len(w.LogTypes) != 1 {
			t.Fatalf("%s: not a Panther fixture record: %v", e.Origin, err)
		}
		want := pantherFormats[w.LogTypes[0]]
		recognizable := false
		for _, k := range identifying {
			recognizable = recognizable || hasKeyFold(w.Event, k)
		}
		if !recognizable {
			want = "json"
			generic++
		}
		if e.Source != want {
			t.Errorf("%s: log type %s normalized as %s, want %s\n%s", e.Origin, w.LogTypes[0], e.Source, want, truncate(string(w.Event), 300))
		}
		if e.Source != "json" && string(e.Doc) != string(w.Event) {
			t.Errorf("%s: Doc is not the wrapped event", e.Origin)
		}
	}
	return generic
}

func bySource(evs []*event.Event, source string) []*event.Event {
	var out []*event.Event
	for _, e := range evs {
		if e.Source == source {
			out = append(out, e)
		}
	}
	return out
}

func TestGCPAuditFixtures(t *testing.T) {
	t.Run("plaso", func(t *testing.T) {
		path := shared + "plaso-log-format-fixtures/test_data/jsonl/gcp_logging.jsonl"
		format, rs := parseFile(t, path, Auto, Options{Origin: "gcp_logging.jsonl"})
		if format != "gcp.audit" {
			t.Errorf("detected as %q", format)
		}
		evs := events(t, rs)
		gcp := bySource(evs, "gcp.audit")
		// Two entries carry a jsonPayload and a textPayload: Cloud
		// Logging entries, but not audit logs.
		if len(evs) != 11 || len(gcp) != 9 {
			t.Errorf("%d events, %d of them gcp.audit; want 11 and 9", len(evs), len(gcp))
		}
		for _, e := range gcp {
			if e.Cloud.Account != "fake-project" && e.Cloud.Account != "ketchup" || e.Action == "" || e.Time.IsZero() || !e.SrcIP.IsValid() {
				t.Errorf("%s: incomplete event %+v", e.Origin, e)
			}
		}
		checkGolden(t, "gcp-plaso", gcp)
	})
	t.Run("panther", func(t *testing.T) {
		path := shared + "panther-analysis-rule-tests/gcp_audit_rule_tests.jsonl"
		format, rs := parseFile(t, path, Auto, Options{Origin: "gcp_audit_rule_tests.jsonl"})
		if format != "gcp.audit" {
			t.Errorf("detected as %q", format)
		}
		evs := events(t, rs)
		if len(evs) != 168 {
			t.Errorf("%d events, want 168", len(evs))
		}
		// Eight of Panther's test events are fragments without a
		// protoPayload ({"methodName": …} alone): nothing says GCP.
		if n := checkPantherSources(t, evs, "protoPayload"); n != 8 {
			t.Errorf("%d events without a protoPayload, want 8", n)
		}
		checkGolden(t, "gcp-panther", bySource(evs, "gcp.audit")[:15])
	})
	t.Run("stratus", func(t *testing.T) {
		path := fixtureLines(t, shared+"stratus-red-team-detonation-logs/technique-doc-samples-non-aws.jsonl", "platform", "GCP")
		format, rs := parseFile(t, path, Auto, Options{Origin: "technique-doc-samples-non-aws.jsonl"})
		if format != "gcp.audit" {
			t.Errorf("detected as %q", format)
		}
		evs := events(t, rs)
		if n := len(bySource(evs, "gcp.audit")); len(evs) != 8 || n != 8 {
			t.Errorf("%d events, %d of them gcp.audit; want 8", len(evs), n)
		}
		checkGolden(t, "gcp-stratus", evs)
	})
}

// pantherEvent returns the event of a Panther fixture: the test of a
// rule.
func pantherEvent(t *testing.T, file, ruleID, testName string) string {
	t.Helper()
	b, err := os.ReadFile(shared + "panther-analysis-rule-tests/" + file)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		var w struct {
			RuleID   string          `json:"rule_id"`
			TestName string          `json:"test_name"`
			Event    json.RawMessage `json:"event"`
		}
		if json.Unmarshal([]byte(l), &w) == nil && w.RuleID == ruleID && w.TestName == testName {
			return string(w.Event)
		}
	}
	t.Fatalf("%s: no test %q of rule %s", file, testName, ruleID)
	return ""
}

// parseOne parses a single record and returns its event, failing the
// test if it is quarantined.
func parseOne(t *testing.T, rec, format string) *event.Event {
	t.Helper()
	rs := parseString(t, rec, format, Options{})
	if len(rs) != 1 {
		t.Fatalf("%d results, want 1", len(rs))
	}
	if rs[0].Err != nil {
		t.Fatalf("quarantined: %v", rs[0].Err)
	}
	return rs[0].Event
}

// delegatedCall is a call made by a service account impersonated by a
// chain of principals.
const delegatedCall = `{"protoPayload":{"@type":"type.googleapis.com/google.cloud.audit.AuditLog",
	"authenticationInfo":{"principalEmail":"deployer@p1.iam.gserviceaccount.com",
		"serviceAccountDelegationInfo":[{"firstPartyPrincipal":{"principalEmail":"alice@example.com"}},{"firstPartyPrincipal":{"principalEmail":"mid@p1.iam.gserviceaccount.com"}}]},
	"requestMetadata":{"callerIp":"gce-internal-ip"},"serviceName":"compute.googleapis.com","methodName":"v1.compute.instances.delete",
	"resourceName":"projects/p1/zones/europe-west1-b/instances/vm1","status":{"code":"5"}},
	"resource":{"labels":{"zone":"europe-west1-b"}},"receiveTimestamp":"2024-05-06T07:08:09.123Z"}`

func TestGCPAuditFields(t *testing.T) {
	tests := []struct {
		name string
		rec  string
		want goldenEvent // the fields compared; Raw and Doc are not
	}{
		{
			name: "organization SetIamPolicy by a service account key",
			rec:  pantherEvent(t, "gcp_audit_rule_tests.jsonl", "GCP.IAM.OrgFolderIAMChanges", "Terraform User Agent"),
			want: goldenEvent{
				Time: "2022-05-05T14:00:48.814294Z", Source: "gcp.audit", Class: "api_activity", ID: "-lmjke7dbt7y",
				Provider: "gcp", Account: "organizations/888888888888",
				ActorID: "serviceAccount:terraform@platform.iam.gserviceaccount.com", ActorType: "serviceAccount",
				ActorName: "terraform@platform.iam.gserviceaccount.com",
				Session:   "//iam.googleapis.com/projects/platform/serviceAccounts/terraform@platform.iam.gserviceaccount.com/keys/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
				SrcIP:     "100.100.100.100", UserAgent: "Terraform/0.13.2 terraform-provider-google/3.90.1",
				Service: "cloudresourcemanager.googleapis.com", Action: "SetIamPolicy",
				Resources: []string{"organizations/888888888888"}, Outcome: "success",
			},
		},
		{
			name: "Cloud Run SetIamPolicy, Panther's spelling of @type and callerIp",
			rec:  pantherEvent(t, "gcp_audit_rule_tests.jsonl", "GCP.Cloud.Run.Set.IAM.Policy", "GCP Run IAM Policy Set"),
			want: goldenEvent{
				Time: "2024-02-02T09:44:26.029835Z", Source: "gcp.audit", Class: "api_activity", ID: "l3jvzyd2s2s",
				Provider: "gcp", Account: "some-project", Region: "us-west1",
				ActorID: "user:some.user@company.com", ActorType: "user", ActorName: "some.user@company.com",
				SrcIP: "1.2.3.4", UserAgent: "(gzip),gzip(gfe)",
				Service: "run.googleapis.com", Action: "google.cloud.run.v1.Services.SetIamPolicy",
				Resources: []string{"projects/some-project/locations/us-west1/services/cloudrun-exfil"}, Outcome: "success",
			},
		},
		{
			name: "service account created",
			rec: `{"insertId":"8loeppebz7wc","logName":"projects/fake-project/logs/cloudaudit.googleapis.com%2Factivity","protoPayload":{"@type":"type.googleapis.com/google.cloud.audit.AuditLog",
				"authenticationInfo":{"principalEmail":"fakeemailxyz@gmail.com"},"methodName":"google.iam.admin.v1.CreateServiceAccount",
				"requestMetadata":{"callerIp":"2001:db8::1","callerSuppliedUserAgent":"UserAgent"},"resourceName":"projects/fake-project","serviceName":"iam.googleapis.com","status":{}},
				"resource":{"labels":{"email_id":"test-1@fake-project.iam.gserviceaccount.com","project_id":"fake-project"},"type":"service_account"},"timestamp":"2021-10-19T02:43:48.064377809Z"}`,
			want: goldenEvent{
				Time: "2021-10-19T02:43:48.064377809Z", Source: "gcp.audit", Class: "account_change", ID: "8loeppebz7wc",
				Provider: "gcp", Account: "fake-project", ActorType: "user", ActorName: "fakeemailxyz@gmail.com",
				SrcIP: "2001:db8::1", UserAgent: "UserAgent", Service: "iam.googleapis.com", Action: "google.iam.admin.v1.CreateServiceAccount",
				Resources: []string{"projects/fake-project"}, Outcome: "success",
			},
		},
		{
			name: "denied impersonation, no time, a placeholder for the caller IP",
			rec: `{"protoPayload":{"@type":"type.googleapis.com/google.cloud.audit.AuditLog","status":{"code":7,"message":"PERMISSION_DENIED"},"authenticationInfo":{},
				"requestMetadata":{"callerIp":"(calling IP)"},"serviceName":"iamcredentials.googleapis.com","methodName":"GenerateAccessToken",
				"resourceName":"projects/-/serviceAccounts/103566171230474107362"},
				"resource":{"type":"service_account","labels":{"email_id":"target-service-account@project-id.iam.gserviceaccount.com","project_id":"project-id"}},
				"severity":"ERROR","logName":"projects/project-id/logs/cloudaudit.googleapis.com%2Fdata_access"}`,
			want: goldenEvent{
				Time: "2026-01-02T03:04:05Z", Source: "gcp.audit", Class: "api_activity", Provider: "gcp", Account: "project-id",
				Service: "iamcredentials.googleapis.com", Action: "GenerateAccessToken",
				Resources: []string{"projects/-/serviceAccounts/103566171230474107362"},
				Outcome:   "failure", ErrorCode: "PERMISSION_DENIED", Message: "PERMISSION_DENIED",
			},
		},
		{
			name: "delegated call, project from the resource name, zone, receiveTimestamp only",
			rec:  delegatedCall,
			want: goldenEvent{
				Time: "2024-05-06T07:08:09.123Z", Source: "gcp.audit", Class: "api_activity", Provider: "gcp", Account: "p1", Region: "europe-west1-b",
				ActorType: "serviceAccount", ActorName: "deployer@p1.iam.gserviceaccount.com",
				Service: "compute.googleapis.com", Action: "v1.compute.instances.delete",
				Resources: []string{"projects/p1/zones/europe-west1-b/instances/vm1"}, Outcome: "failure", ErrorCode: "NOT_FOUND",
			},
		},
		{
			name: "Panther's lowercased keys",
			rec: `{"insertid":"-xxxxxxxxxxxx","logname":"projects/test-project-123456/logs/cloudaudit.googleapis.com%2Factivity",
				"protopayload":{"at_sign_type":"type.googleapis.com/google.cloud.audit.AuditLog","authenticationInfo":{"principalEmail":"user@domain.com"},
				"methodName":"google.appengine.v1.Firewall.CreateIngressRule","requestMetadata":{"callerIP":"12.12.12.12"},
				"resourceName":"apps/test-project-123456","serviceName":"appengine.googleapis.com","status":{}},
				"receivetimestamp":"2023-05-23 19:28:35.479","resource":"...","severity":"NOTICE","timestamp":"2023-05-23 19:28:35.049"}`,
			want: goldenEvent{
				Time: "2023-05-23T19:28:35.049Z", Source: "gcp.audit", Class: "api_activity", ID: "-xxxxxxxxxxxx", Provider: "gcp",
				Account: "test-project-123456", ActorType: "user", ActorName: "user@domain.com", SrcIP: "12.12.12.12",
				Service: "appengine.googleapis.com", Action: "google.appengine.v1.Firewall.CreateIngressRule",
				Resources: []string{"apps/test-project-123456"}, Outcome: "success",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, format := range []string{Auto, "gcp.audit"} {
				e := parseOne(t, tt.rec, format)
				got := toGolden(e)
				got.Raw, got.Doc, got.Skewed = "", nil, false // skew is the framework's
				if !equalJSON(got, tt.want) {
					t.Errorf("%s:\n got %s\nwant %s", format, mustJSON(got), mustJSON(tt.want))
				}
			}
		})
	}
	t.Run("delegation origin", func(t *testing.T) {
		e := parseOne(t, delegatedCall, "gcp.audit")
		if e.Session.Origin != "alice@example.com" {
			t.Errorf("Session.Origin = %q, want the first delegating principal", e.Session.Origin)
		}
		if e.SrcIP.IsValid() {
			t.Errorf("SrcIP = %v from a placeholder", e.SrcIP)
		}
	})
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func equalJSON(a, b any) bool { return mustJSON(a) == mustJSON(b) }

// quarantineCase is a record that must be quarantined with a reason
// containing want.
type quarantineCase struct {
	name, format, rec, want string
}

func checkQuarantined(t *testing.T, tests []quarantineCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := parseString(t, tt.rec, tt.format, Options{})
			if len(rs) != 1 {
				t.Fatalf("%d results, want 1", len(rs))
			}
			if rs[0].Err == nil {
				t.Fatalf("not quarantined: %+v", rs[0].Event)
			}
			if !strings.Contains(rs[0].Err.Error(), tt.want) {
				t.Errorf("reason %q does not mention %q", rs[0].Err, tt.want)
			}
			if rs[0].Raw == nil {
				t.Errorf("quarantined without its bytes")
			}
		})
	}
}

func TestGCPAuditQuarantine(t *testing.T) {
	checkQuarantined(t, []quarantineCase{
		{"CloudTrail record", "gcp.audit", `{"eventSource":"iam.amazonaws.com","eventName":"CreateUser","eventTime":"2024-01-01T00:00:00Z"}`, "no protoPayload"},
		{"Azure record", "gcp.audit", `{"time":"2024-01-01T00:00:00Z","operationName":"Microsoft.Compute/virtualMachines/write"}`, "no protoPayload"},
		{"not an object", "gcp.audit", `["protoPayload"]`, "not a JSON object"},
		{"protoPayload a number", "gcp.audit", `{"protoPayload":5,"timestamp":"2024-01-01T00:00:00Z"}`, "protoPayload is a number"},
		{"protoPayload a number, detected", Auto, `{"protoPayload":5,"timestamp":"2024-01-01T00:00:00Z"}`, "protoPayload is a number"},
		{"protoPayload a string", "gcp.audit", `{"protoPayload":"…"}`, "protoPayload is a string"},
		{"timestamp a boolean", "gcp.audit", `{"protoPayload":{},"timestamp":true}`, "timestamp is a boolean"},
		{"timestamp an object", Auto, `{"protoPayload":{"methodName":"x"},"timestamp":{"seconds":1}}`, "timestamp is an object"},
		{"timestamp unreadable", "gcp.audit", `{"protoPayload":{},"timestamp":"yesterday"}`, `timestamp: unrecognized time "yesterday"`},
		{"broken JSON", "gcp.audit", `{"protoPayload":{"methodName":"x"}`, "invalid JSON"},
	})
}

// TestGCPAuditLenient checks that fields that only add detail do not
// cost the record when they have an unexpected type, as in Panther's
// fixtures, where "..." stands for elided objects.
func TestGCPAuditLenient(t *testing.T) {
	e := parseOne(t, `{"protoPayload":{"methodName":"m","requestMetadata":"...","authenticationInfo":["x"],"status":{"code":true},"resourceName":7},
		"resource":"...","insertId":{"a":1},"timestamp":1700000000}`, "gcp.audit")
	if e.Action != "m" || e.Outcome.Result != event.OutcomeSuccess || e.Time.Unix() != 1700000000 || e.ID != "" {
		t.Errorf("got %+v", e)
	}
	// A field that only stands in for the event time is passed over
	// when it holds no time; with nothing else, the receipt time is used.
	e = parseOne(t, `{"protoPayload":{"methodName":"m"},"receiveTimestamp":"...","p_event_time":true}`, "gcp.audit")
	if !e.Time.Equal(testReceived) || e.Skewed {
		t.Errorf("time %v (skewed %v), want the receipt time %v", e.Time, e.Skewed, testReceived)
	}
}
