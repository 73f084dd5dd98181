package inventory

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/parse"
)

// identityFixture parses a fixture of testdata/identity.
func identityFixture(t *testing.T, name string) []*event.Event {
	return ownFixture(t, "testdata/identity/"+name)
}

// ownFixture parses a fixture of testdata, every record of it, numbering
// the events as the ledger would.
func ownFixture(t *testing.T, path string) []*event.Event {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []*event.Event
	_, err = parse.Parse(f, parse.Auto, parse.Options{Tenant: "acme", Received: time.Now()}, func(r parse.Result) error {
		if r.Event == nil {
			t.Fatalf("%s: a record was not parsed: %v", path, r.Err)
		}
		r.Event.Seq = uint64(len(out) + 1)
		out = append(out, r.Event)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// bySource keeps the events of one source.
func bySource(evs []*event.Event, source string) []*event.Event {
	var out []*event.Event
	for _, e := range evs {
		if e.Source == source {
			out = append(out, e)
		}
	}
	return out
}

// issueText writes an issue as "session (kind) ← caller".
func issueText(is Issue) string {
	return is.Session + " (" + is.Kind + ") ← " + is.Caller.String()
}

func hopsText(hops []Issue) string {
	var parts []string
	for _, is := range hops {
		parts = append(parts, issueText(is))
	}
	return strings.Join(parts, "; ")
}

const (
	alice    = "alice@example.com"
	deployer = "deployer@acme-prod.iam.gserviceaccount.com"
	adminSA  = "admin-sa@acme-prod.iam.gserviceaccount.com"
	ciRunner = "ci-runner@acme-prod.iam.gserviceaccount.com"
	awsPool  = "principal://iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/aws-pool/subject/arn:aws:sts::111122223333:assumed-role/ci/runner"
)

// TestGCPIssues: each record of the impersonation fixture issues what it
// shows, hop by hop (Hops) and collapsed from the first authority to the
// last account (FromEvent); an account's own call and a refused request
// issue nothing.
func TestGCPIssues(t *testing.T) {
	evs := identityFixture(t, "gcp_impersonation.jsonl")
	byID := map[string]*event.Event{}
	for _, e := range evs {
		byID[e.ID] = e
	}
	for _, tc := range []struct {
		id, why  string
		hops     string
		collapse string // FromEvent's, when it differs from the only hop
		expires  string
	}{
		{id: "imp-01", why: "alice asks for a 30-minute token",
			hops:    deployer + " (GenerateAccessToken) ← user " + alice,
			expires: "2024-07-10T09:30:00.123456Z"},
		{id: "imp-02", why: "deployer, as alice, asks for admin-sa",
			hops:     deployer + " (ServiceAccountDelegation) ← user " + alice + "; " + adminSA + " (GenerateAccessToken) ← " + deployer,
			collapse: adminSA + " (GenerateAccessToken) ← user " + alice,
			expires:  "2024-07-10T10:05:00.5Z"},
		{id: "imp-03", why: "admin-sa calls as alice through deployer",
			hops:     deployer + " (ServiceAccountDelegation) ← user " + alice + "; " + adminSA + " (ServiceAccountDelegation) ← " + deployer,
			collapse: adminSA + " (ServiceAccountDelegation) ← user " + alice,
			expires:  "2024-07-10T10:06:00Z"},
		{id: "imp-04", why: "admin-sa on its own, with its key"},
		{id: "imp-05", why: "bob asks for admin-sa through deployer in one request",
			hops:     deployer + " (GenerateAccessToken) ← user bob@example.com; " + adminSA + " (GenerateAccessToken) ← " + deployer,
			collapse: adminSA + " (GenerateAccessToken) ← user bob@example.com",
			expires:  "2024-07-10T10:20:00Z"},
		{id: "imp-06", why: "refused"},
		{id: "imp-07", why: "a workload federated from AWS",
			hops:    ciRunner + " (GenerateAccessToken) ← federated " + awsPool,
			expires: "2024-07-10T10:30:00Z"},
		{id: "imp-08", why: "the federated workload's call",
			hops:    ciRunner + " (ServiceAccountDelegation) ← federated " + awsPool,
			expires: "2024-07-10T10:31:00Z"},
	} {
		e := byID[tc.id]
		if e == nil {
			t.Fatalf("%s: not in the fixture", tc.id)
		}
		if got := hopsText(Hops(e)); got != tc.hops {
			t.Errorf("%s (%s): hops\n got %s\nwant %s", tc.id, tc.why, got, tc.hops)
		}
		got, expires := "", ""
		if is, ok := FromEvent(e); ok {
			got, expires = issueText(is), is.Expires.Format(time.RFC3339Nano)
		}
		if want := cmpOr(tc.collapse, tc.hops); got != want || expires != tc.expires {
			t.Errorf("%s (%s): FromEvent\n got %s, expiring %s\nwant %s, expiring %s", tc.id, tc.why, got, expires, want, tc.expires)
		}
	}
}

// TestGCPChain: an account named by its email is walked back, through
// each account delegated through, to who was behind it at the time.
func TestGCPChain(t *testing.T) {
	evs := identityFixture(t, "gcp_impersonation.jsonl")
	hops, collapsed := NewGraph(), graphOf(evs)
	for _, e := range evs {
		for _, is := range Hops(e) {
			hops.Add(is)
		}
	}
	for _, tc := range []struct {
		g    *Graph
		ref  string
		at   string
		want string
	}{
		{hops, adminSA, "09:05:30", adminSA + " (GenerateAccessToken) ← " + deployer + " (ServiceAccountDelegation) ← user " + alice},
		{hops, adminSA, "09:07:00", adminSA + " (ServiceAccountDelegation) ← " + deployer + " (ServiceAccountDelegation) ← user " + alice},
		{hops, adminSA, "09:25:00", adminSA + " (GenerateAccessToken) ← " + deployer + " (GenerateAccessToken) ← user bob@example.com"},
		{collapsed, adminSA, "09:25:00", adminSA + " (GenerateAccessToken) ← user bob@example.com"},
		// bob's token has expired; nothing since says who is behind it.
		{hops, adminSA, "12:00:00", adminSA},
		{hops, strings.ToUpper(deployer), "09:10:00", strings.ToUpper(deployer) + " (ServiceAccountDelegation) ← user " + alice},
		{hops, ciRunner, "09:30:30", ciRunner + " (GenerateAccessToken) ← federated " + awsPool},
		{hops, "nobody@example.com", "09:30:00", "nobody@example.com"},
	} {
		when, err := time.Parse(time.RFC3339, "2024-07-10T"+tc.at+"Z")
		if err != nil {
			t.Fatal(err)
		}
		if got := chainText(tc.g.Chain(ParseRef(tc.ref), when)); got != tc.want {
			t.Errorf("%s at %s:\n got %s\nwant %s", tc.ref, tc.at, got, tc.want)
		}
	}
}

// TestGCPEnrich: a call through delegation keeps the origin the parser
// read from it, which its chain agrees with; an account's own call is
// given none, though a token for it was issued minutes before; so are
// the token requests themselves, which their callers made on their own.
func TestGCPEnrich(t *testing.T) {
	evs := identityFixture(t, "gcp_impersonation.jsonl")
	ids := NewIdentities()
	ids.Enrich(evs)
	want := map[string]string{
		"imp-01": "", "imp-02": alice, "imp-03": alice, "imp-04": "",
		"imp-05": "", "imp-06": "", "imp-07": "", "imp-08": awsPool,
	}
	g := NewGraph()
	for _, e := range evs {
		for _, is := range Hops(e) {
			g.Add(is)
		}
	}
	for _, e := range evs {
		if e.Session.Origin != want[e.ID] {
			t.Errorf("%s by %s: origin %q, want %q", e.ID, e.Actor.Name, e.Session.Origin, want[e.ID])
		}
		if e.Session.Origin == "" {
			continue
		}
		chain := g.Chain(ParseRef(e.Actor.Name), e.Time)
		if got := Origin(chain).ID(); got != e.Session.Origin {
			t.Errorf("%s: the chain ends at %q, the call names %q (%s)", e.ID, got, e.Session.Origin, chainText(chain))
		}
	}
}

// TestGCPRecords: real and published records. Plaso's fixtures hold
// calls through delegation (one by a VM's account, whose token the
// Compute Engine service agent made); Panther's hold iamcredentials
// calls, of which only one is an account impersonating another (the
// rest sign for themselves, or are denied); Stratus Red Team's
// impersonation sample is refused.
func TestGCPRecords(t *testing.T) {
	plaso := bySource(events(t, "plaso-log-format-fixtures/test_data/jsonl/gcp_logging.jsonl"), "gcp.audit")
	var got []string
	for _, e := range plaso {
		if h := hopsText(Hops(e)); h != "" {
			got = append(got, h)
		}
	}
	want := []string{
		"service-account-two@fake-project.com (ServiceAccountDelegation) ← user service-account-one@fake-project.com; " +
			"fake-account@fake-project.com (ServiceAccountDelegation) ← service-account-two@fake-project.com",
		"dvwa-service-account@ketchup.iam.gserviceaccount.com (ServiceAccountDelegation) ← serviceAccount service-1234567890@compute-system.iam.gserviceaccount.com",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("plaso:\n got %q\nwant %q", got, want)
	}

	panther := bySource(events(t, "panther-analysis-rule-tests/gcp_audit_rule_tests.jsonl"), "gcp.audit")
	got = nil
	for _, e := range panther {
		if is, ok := FromEvent(e); ok {
			got = append(got, issueText(is))
		}
	}
	if want := []string{"sample@email.com (GenerateAccessToken) ← federated example_principal_subject"}; strings.Join(got, "\n") != want[0] {
		t.Errorf("panther: issues %q, want %q", got, want)
	}

	stratus := bySource(events(t, "stratus-red-team-detonation-logs/technique-doc-samples-non-aws.jsonl"), "gcp.audit")
	n := 0
	for _, e := range stratus {
		if e.Action == "GenerateAccessToken" {
			n++
			if hops := Hops(e); len(hops) > 0 {
				t.Errorf("stratus: the refused impersonation issued %s", hopsText(hops))
			}
		}
	}
	if n == 0 {
		t.Error("stratus: no GenerateAccessToken sample")
	}

	// Enrich changes none of them: the parser's origins stand.
	all := append(append(plaso, panther...), stratus...)
	before := make([]string, len(all))
	for i, e := range all {
		before[i] = e.Session.Origin
	}
	NewIdentities().Enrich(all)
	for i, e := range all {
		if e.Session.Origin != before[i] {
			t.Errorf("%s %s: origin %q became %q", e.ID, e.Action, before[i], e.Session.Origin)
		}
	}
}

// TestGCPSelf: an account signing for itself, and an unknown account,
// issue nothing; a lifetime beyond the longest allowed is cut to it.
func TestGCPSelf(t *testing.T) {
	t0 := time.Date(2024, 7, 10, 9, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		doc     string
		want    string
		expires time.Duration
	}{
		{`{"protoPayload":{"serviceName":"iamcredentials.googleapis.com","methodName":"google.iam.credentials.v1.IAMCredentials.SignJwt",` +
			`"authenticationInfo":{"principalEmail":"a@p.iam.gserviceaccount.com"},"request":{"name":"projects/-/serviceAccounts/A@p.iam.gserviceaccount.com"}}}`, "", 0},
		{`{"protoPayload":{"serviceName":"iamcredentials.googleapis.com","methodName":"GenerateIdToken",` +
			`"authenticationInfo":{"principalEmail":"u@example.com"},"resourceName":"projects/-/serviceAccounts/104857600000000000009"}}`, "", 0},
		{`{"protoPayload":{"serviceName":"iamcredentials.googleapis.com","methodName":"google.iam.credentials.v1.IAMCredentials.SignBlob",` +
			`"authenticationInfo":{"principalEmail":"u@example.com"},"resourceName":"projects/-/serviceAccounts/b@p.iam.gserviceaccount.com"}}`,
			"b@p.iam.gserviceaccount.com (SignBlob) ← user u@example.com", time.Hour},
		{`{"protoPayload":{"serviceName":"iamcredentials.googleapis.com","methodName":"GenerateAccessToken",` +
			`"authenticationInfo":{"principalSubject":"serviceAccount:c@p.iam.gserviceaccount.com"},` +
			`"request":{"name":"projects/-/serviceAccounts/b@p.iam.gserviceaccount.com","lifetime":"172800s"}}}`,
			"b@p.iam.gserviceaccount.com (GenerateAccessToken) ← serviceAccount c@p.iam.gserviceaccount.com", 12 * time.Hour},
		{`{"protoPayload":{"serviceName":"iam.googleapis.com","methodName":"GenerateAccessToken",` +
			`"authenticationInfo":{"principalEmail":"u@example.com"},"request":{"name":"projects/-/serviceAccounts/b@p.iam.gserviceaccount.com"}}}`, "", 0},
	} {
		// The parser names the service; the last record's own serviceName still tells.
		e := &event.Event{Source: "gcp.audit", Service: "iamcredentials.googleapis.com", Time: t0, Raw: []byte(tc.doc)}
		is, ok := FromEvent(e)
		got := ""
		if ok {
			got = issueText(is)
		}
		if got != tc.want || ok && is.Expires.Sub(t0) != tc.expires {
			t.Errorf("%s:\n got %q, expiring after %s\nwant %q, after %s", tc.doc, got, is.Expires.Sub(t0), tc.want, tc.expires)
		}
	}
}

// TestParseRef: an email names a GCP account, keyed as a session is.
func TestParseRef(t *testing.T) {
	for _, tc := range []struct {
		ref  string
		want Principal
	}{
		{" AKIAEXAMPLE ", Principal{Key: "AKIAEXAMPLE"}},
		{"arn:aws:iam::1:user/a", Principal{ARN: "arn:aws:iam::1:user/a"}},
		{adminSA, Principal{ARN: adminSA}},
	} {
		if got := ParseRef(tc.ref); got != tc.want {
			t.Errorf("ParseRef(%q) = %+v, want %+v", tc.ref, got, tc.want)
		}
	}
}
