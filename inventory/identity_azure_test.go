package inventory

import (
	"testing"
	"time"

	"github.com/vigilsec/vigil/event"
)

const (
	azureSub   = "/subscriptions/5a1b7c2d-0e3f-4a5b-8c6d-7e8f9a0b1c2d"
	webVM      = azureSub + "/resourcegroups/web-rg/providers/Microsoft.Compute/virtualMachines/web-vm1"
	webVMID    = "azure-resource/subscriptions/5a1b7c2d-0e3f-4a5b-8c6d-7e8f9a0b1c2d/resourcegroups/web-rg/providers/microsoft.compute/virtualmachines/web-vm1"
	deployID   = "azure-resource/subscriptions/5a1b7c2d-0e3f-4a5b-8c6d-7e8f9a0b1c2d/resourcegroups/ops-rg/providers/microsoft.managedidentity/userassignedidentities/deploy-id"
	funcOrders = "azure-resource/subscriptions/5a1b7c2d-0e3f-4a5b-8c6d-7e8f9a0b1c2d/resourcegroups/orders-rg/providers/microsoft.web/sites/func-orders"
	funcToken  = "Fn0rD3rSk3yV4uLtT0k3nA" // the uti of the function app's sign-in
	vmToken    = "q2Xk9LmNoP0rStUvWxYz1A"
)

// TestAzureManagedIdentity: calls made with a managed identity's token
// have the resource it belongs to as their origin (a user-assigned
// identity, itself); a person's and an application's calls have none; a
// managed identity's sign-in names its resource for every later call
// made with the token it issued, while the token lives.
func TestAzureManagedIdentity(t *testing.T) {
	evs := identityFixture(t, "azure_managed_identity.jsonl")
	ids := NewIdentities()
	ids.Enrich(evs)
	want := []struct{ why, origin string }{
		{"the VM's identity lists a storage account's keys", webVMID},
		{"the same token, a minute later", webVMID},
		{"a user-assigned identity deploys (REST API shape)", deployID},
		{"a person", ""},
		{"an application with a secret of its own", ""},
		{"the function app's identity signs in", funcOrders},
	}
	if len(evs) != len(want) {
		t.Fatalf("%d events, want %d", len(evs), len(want))
	}
	for i, e := range evs {
		if e.Session.Origin != want[i].origin {
			t.Errorf("%d (%s): origin %q, want %q", i, want[i].why, e.Session.Origin, want[i].origin)
		}
	}
	got := chainText(ids.g.Chain(Principal{Key: evs[0].Session.ID, ARN: evs[0].Actor.ID}, evs[0].Time))
	wantChain := "8d3f5a61-2b4c-4e7d-9f10-3a2b1c0d9e8f [" + vmToken + "] (ManagedIdentity) ← the Azure resource " + webVM + ", through its managed identity"
	if got != wantChain {
		t.Errorf("the VM's call:\n got %s\nwant %s", got, wantChain)
	}
	is, _ := FromEvent(evs[0])
	if is.Time != time.Unix(1720605300, 0).UTC() || is.Expires != time.Unix(1720692000, 0).UTC() || is.Account != "5a1b7c2d-0e3f-4a5b-8c6d-7e8f9a0b1c2d" {
		t.Errorf("the VM's token: issued %s, expires %s, account %q; want its iat, its exp, the VM's subscription", is.Time, is.Expires, is.Account)
	}

	// Later calls, made with a token by its uti alone.
	signIn := evs[5].Time
	for _, tc := range []struct {
		why    string
		token  string
		at     time.Time
		origin string
	}{
		{"with the function app's token", funcToken, signIn.Add(20 * time.Minute), funcOrders},
		{"a quarter of an hour before the function app's sign-in", funcToken, signIn.Add(-15 * time.Minute), ""},
		{"with the VM's token, after it expired", vmToken, time.Unix(1720692000, 0).Add(time.Hour), ""},
		{"with a token no log shows issued", "Zz9Yy8Xx7Ww6Vv5Uu4Tt3A", signIn.Add(time.Minute), ""},
	} {
		e := &event.Event{Source: "azure.activity", Time: tc.at, Session: event.Session{ID: tc.token},
			Actor: event.Actor{Type: "servicePrincipal", ID: "6e5d4c3b-2a19-4807-b6f5-e4d3c2b1a098"}}
		ids.Enrich([]*event.Event{e})
		if e.Session.Origin != tc.origin {
			t.Errorf("a call %s: origin %q, want %q", tc.why, e.Session.Origin, tc.origin)
		}
	}
}

// TestAzureRecords: the published Azure records hold no managed
// identity (the CLI export's app tokens carry no xms_mirid, Panther's
// service principal sign-ins have managedIdentityType none): nothing is
// issued, no origin given.
func TestAzureRecords(t *testing.T) {
	var all []*event.Event
	for _, file := range []string{
		"plaso-log-format-fixtures/test_data/jsonl/azure_activity_log.jsonl",
		"panther-analysis-rule-tests/azure_activity_rule_tests.jsonl",
		"panther-analysis-rule-tests/azure_signin_rule_tests.jsonl",
	} {
		all = append(all, events(t, file)...)
	}
	n := 0
	for _, e := range all {
		if e.Source != "azure.activity" && e.Source != "azure.signin" {
			continue
		}
		n++
		if is, ok := FromEvent(e); ok {
			t.Errorf("%s %s issued %s", e.Source, e.Action, issueText(is))
		}
	}
	if n < 200 {
		t.Errorf("only %d Azure events", n)
	}
	NewIdentities().Enrich(all)
	for _, e := range all {
		if e.Session.Origin != "" {
			t.Errorf("%s %s: origin %q", e.Source, e.Action, e.Session.Origin)
		}
	}
}

// TestAzureClaims: the claims that make a managed identity's token, in
// the shapes exports write them.
func TestAzureClaims(t *testing.T) {
	t0 := time.Date(2024, 7, 10, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		source, doc string
		want        string // the issue's caller's ID, "" for none
	}{
		{"azure.activity", `{"identity":{"claims":{"xms_mirid":"` + webVM + `","idtyp":"app","oid":"o","uti":"u","iat":1720605300,"exp":1720692000}}}`, webVMID},
		{"azure.activity", `{"claims":{"xms_mirid":"` + webVM + `","uti":"u"}}`, webVMID},
		{"azure.activity", `{"claims":{"xms_mirid":"` + webVM + `","idtyp":"user","uti":"u"}}`, ""},
		{"azure.activity", `{"claims":{"xms_mirid":"web-vm1","uti":"u"}}`, ""},
		{"azure.activity", `{"claims":{"xms_mirid":"` + webVM + `"}}`, ""},
		{"azure.activity", `{"claims":{"xms_mirid":["` + webVM + `"],"uti":"u"}}`, ""},
		// The Graph API's signIn, at the top level.
		{"azure.signin", `{"uniqueTokenIdentifier":"u","managedServiceIdentity":{"msiType":"userAssigned","associatedResourceId":"` + webVM + `"}}`, webVMID},
		{"azure.signin", `{"category":"ServicePrincipalSignInLogs","properties":{"uniqueTokenIdentifier":"u","managedServiceIdentity":{"msiType":"none"}}}`, ""},
		{"azure.signin", `{"category":"ManagedIdentitySignInLogs","properties":{"uniqueTokenIdentifier":"u"}}`, ""},
	} {
		e := &event.Event{Source: tc.source, Time: t0, Raw: []byte(tc.doc), Outcome: event.Outcome{Result: event.OutcomeSuccess}}
		is, ok := FromEvent(e)
		got := ""
		if ok {
			got = is.Caller.ID()
		}
		if got != tc.want {
			t.Errorf("%s %s: caller %q, want %q", tc.source, tc.doc, got, tc.want)
		}
	}
	failed := &event.Event{Source: "azure.signin", Time: t0, Outcome: event.Outcome{Result: event.OutcomeFailure},
		Raw: []byte(`{"uniqueTokenIdentifier":"u","managedServiceIdentity":{"msiType":"systemAssigned","associatedResourceId":"` + webVM + `"}}`)}
	if is, ok := FromEvent(failed); ok {
		t.Errorf("a failed sign-in issued %s", issueText(is))
	}
}

// TestAzurePrincipal: a resource's origin is one string whatever the case
// its logs write its id in.
func TestAzurePrincipal(t *testing.T) {
	for _, tc := range []struct {
		name, id, text string
	}{
		{webVM, webVMID, "the Azure resource " + webVM + ", through its managed identity"},
		{"/SUBSCRIPTIONS/5A1B7C2D-0E3F-4A5B-8C6D-7E8F9A0B1C2D/RESOURCEGROUPS/WEB-RG/PROVIDERS/MICROSOFT.COMPUTE/VIRTUALMACHINES/WEB-VM1", webVMID, ""},
		{azureSub + "/resourceGroups/ops-rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/deploy-id", deployID,
			"the user-assigned managed identity " + azureSub + "/resourceGroups/ops-rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/deploy-id"},
	} {
		p := Principal{Type: azureResourceType, Name: tc.name}
		if p.ID() != tc.id || tc.text != "" && p.String() != tc.text {
			t.Errorf("%s: ID %q, String %q", tc.name, p.ID(), p.String())
		}
	}
}

// FuzzCloudIssues: any document, as a GCP or Azure record, is read
// without panicking; what it issues names an account and is followed
// back without panicking either.
func FuzzCloudIssues(f *testing.F) {
	for _, s := range []string{
		`{"protoPayload":{"serviceName":"iamcredentials.googleapis.com","methodName":"GenerateAccessToken","authenticationInfo":{"principalEmail":"u@example.com","serviceAccountDelegationInfo":[{"firstPartyPrincipal":{"principalEmail":"a@p.iam.gserviceaccount.com"}},{"principalSubject":"principal://x"}]},"request":{"name":"projects/-/serviceAccounts/b@p.iam.gserviceaccount.com","delegates":["projects/-/serviceAccounts/c@p.iam.gserviceaccount.com"],"lifetime":"7200s"},"response":{"expireTime":"2024-07-10T13:00:00Z"}}}`,
		`{"protoPayload":{"authenticationInfo":{"principalEmail":"a@p.iam.gserviceaccount.com","serviceAccountDelegationInfo":[{"thirdPartyPrincipal":{"thirdPartyClaims":{"sub":"s"}}}]}}}`,
		`{"identity":{"claims":{"xms_mirid":"/subscriptions/s/resourcegroups/r/providers/Microsoft.Compute/virtualMachines/v","idtyp":"app","oid":"o","uti":"u","iat":"1720605300","exp":"1720692000"}}}`,
		`{"category":"ManagedIdentitySignInLogs","properties":{"uniqueTokenIdentifier":"u","servicePrincipalId":"o","managedServiceIdentity":{"msiType":"systemAssigned","associatedResourceId":"/subscriptions/s/x"}}}`,
		`{"protoPayload":{"authenticationInfo":{"serviceAccountDelegationInfo":"x"}}}`, `{"claims":null}`, `[]`, `"x"`, ``,
	} {
		for source := range uint8(3) {
			f.Add(s, source)
		}
	}
	sources := []string{"gcp.audit", "azure.activity", "azure.signin"}
	f.Fuzz(func(t *testing.T, doc string, source uint8) {
		t0 := time.Date(2024, 7, 10, 12, 0, 0, 0, time.UTC)
		ev := &event.Event{Source: sources[int(source)%len(sources)], Service: "iamcredentials.googleapis.com", Time: t0, Raw: []byte(doc),
			Outcome: event.Outcome{Result: event.OutcomeSuccess}, Session: event.Session{ID: "u"}}
		hops := Hops(ev)
		is, ok := FromEvent(ev)
		if ok != (len(hops) > 0) {
			t.Fatalf("FromEvent %v, %d hops", ok, len(hops))
		}
		g := NewGraph()
		for _, h := range hops {
			if h.Session == "" && h.Key == "" {
				t.Fatalf("an issue of nothing: %+v", h)
			}
			g.Add(h)
		}
		if ok {
			g.Chain(Principal{ARN: is.Session, Key: is.Key}, t0)
		}
		NewIdentities().Enrich([]*event.Event{ev})
	})
}
