package parse

import (
	"bufio"
	"encoding/json"
	"os"
	"strings"
	"testing"
)

func TestAzureFixtures(t *testing.T) {
	t.Run("plaso", func(t *testing.T) {
		path := shared + "plaso-log-format-fixtures/test_data/jsonl/azure_activity_log.jsonl"
		format, rs := parseFile(t, path, Auto, Options{Origin: "azure_activity_log.jsonl"})
		if format != "azure.activity" {
			t.Errorf("detected as %q", format)
		}
		evs := events(t, rs)
		if n := len(bySource(evs, "azure.activity")); len(evs) != 4 || n != 4 {
			t.Errorf("%d events, %d of them azure.activity; want 4", len(evs), n)
		}
		checkGolden(t, "azure-plaso", evs)
	})
	for _, tt := range []struct {
		name, file, format string
		n                  int
	}{
		{"panther activity", "azure_activity_rule_tests.jsonl", "azure.activity", 214},
		{"panther signin", "azure_signin_rule_tests.jsonl", "azure.signin", 47},
	} {
		t.Run(tt.name, func(t *testing.T) {
			format, rs := parseFile(t, shared+"panther-analysis-rule-tests/"+tt.file, Auto, Options{Origin: tt.file})
			if format != tt.format {
				t.Errorf("detected as %q", format)
			}
			evs := events(t, rs)
			if len(evs) != tt.n {
				t.Errorf("%d events, want %d", len(evs), tt.n)
			}
			if n := checkPantherSources(t, evs, "operationName", "properties"); n != 0 {
				t.Errorf("%d events normalized as generic JSON", n)
			}
			for _, e := range evs {
				if e.Action == "" || e.Cloud.Provider != "azure" || e.Time.Equal(testReceived) {
					t.Errorf("%s: incomplete event %+v", e.Origin, e)
				}
			}
			checkGolden(t, "azure-panther-"+strings.TrimPrefix(tt.format, "azure."), evs[:15])
		})
	}
	t.Run("stratus", func(t *testing.T) {
		path := fixtureLines(t, shared+"stratus-red-team-detonation-logs/technique-doc-samples-non-aws.jsonl", "platform", "azure", "entra-id")
		_, rs := parseFile(t, path, Auto, Options{Origin: "technique-doc-samples-non-aws.jsonl"})
		evs := events(t, rs)
		activity, signin := bySource(evs, "azure.activity"), bySource(evs, "azure.signin")
		if len(evs) != 14 || len(activity) != 13 || len(signin) != 1 {
			t.Errorf("%d events, %d azure.activity, %d azure.signin; want 14, 13, 1", len(evs), len(activity), len(signin))
		}
		checkGolden(t, "azure-stratus", evs)
	})
}

// TestClassifyFixtures checks that auto-detection names the right format
// for each event of the cloud fixtures on its own, without the wrapper.
func TestClassifyFixtures(t *testing.T) {
	for _, file := range []string{
		"panther-analysis-rule-tests/gcp_audit_rule_tests.jsonl",
		"panther-analysis-rule-tests/azure_activity_rule_tests.jsonl",
		"panther-analysis-rule-tests/azure_signin_rule_tests.jsonl",
		"stratus-red-team-detonation-logs/technique-doc-samples-non-aws.jsonl",
	} {
		f, err := os.Open(shared + file)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for n := 1; sc.Scan(); n++ {
			var w wrapped
			if err := json.Unmarshal(sc.Bytes(), &w); err != nil {
				t.Fatalf("%s:%d: %v", file, n, err)
			}
			var want string
			switch {
			case len(w.LogTypes) == 1:
				want = pantherFormats[w.LogTypes[0]]
				if want == "gcp.audit" && !hasKeyFold(w.Event, "protoPayload") {
					want = "json"
				}
			case w.Platform == "GCP":
				want = "gcp.audit"
			case w.Platform == "azure":
				want = "azure.activity"
			case w.Platform == "entra-id":
				want = "azure.signin"
			default:
				continue
			}
			if got, _ := classifyJSON(w.Event); got != want {
				t.Errorf("%s:%d classified as %q, want %q\n%s", file, n, got, want, truncate(string(w.Event), 300))
			}
		}
		f.Close()
	}
}

// TestAzureEventHub checks the delivery of diagnostic settings through
// Event Hub: a {"records": […]} batch, here mixing activity and Entra ID
// logs, each record normalized by its own format.
func TestAzureEventHub(t *testing.T) {
	in := `{"records": [
	{"time": "2024-12-17T10:30:00.0000000Z", "resourceId": "/subscriptions/12345678-1234-1234-1234-123456789ABC/resourceGroups/RG/providers/Microsoft.Insights/actionGroups/team", "operationName": "Microsoft.Insights/actionGroups/delete", "category": "Administrative", "resultType": "Success", "resultSignature": "200", "callerIpAddress": "1.1.1.1", "correlationId": "a1", "location": "eastus", "tenantId": "87654321-4321-4321-4321-111111111111"},
	{"time": "2025-01-15T15:05:50.678Z", "resourceId": "/tenants/tenant-ghi/providers/Microsoft.aadiam", "operationName": "Sign-in activity", "category": "SignInLogs", "tenantId": "tenant-ghi", "resultType": "50126", "callerIpAddress": "192.0.2.250", "properties": {"userPrincipalName": "attacker@company.com", "userId": "u1", "ipAddress": "192.0.2.250", "appDisplayName": "Office Application", "status": {"errorCode": 50126}}},
	{"time": "2024-12-10T14:33:09.0496611Z", "resourceId": "/tenants/123456789/providers/Microsoft.aadiam", "operationName": "Add user", "category": "AuditLogs", "tenantId": "123456789", "properties": {"activityDisplayName": "Add user", "category": "UserManagement", "result": "success", "loggedByService": "Core Directory", "initiatedBy": {"app": {"displayName": "Provisioner", "servicePrincipalId": "sp1"}}, "targetResources": [{"id": "u2", "userPrincipalName": "new@company.com"}]}}
	]}`
	for _, format := range []string{Auto, "azure.activity", "azure.signin"} {
		rs := parseString(t, in, format, Options{})
		var got []string
		for _, r := range rs {
			if r.Err != nil {
				got = append(got, "quarantined")
				continue
			}
			got = append(got, r.Event.Source+" "+r.Event.Class+" "+r.Event.Cloud.Account+" "+r.Event.Actor.Name)
		}
		want := []string{
			"azure.activity api_activity 12345678-1234-1234-1234-123456789abc ",
			"azure.signin authentication tenant-ghi attacker@company.com",
			"azure.signin account_change 123456789 Provisioner",
		}
		// Given a format, records of the other are quarantined with the
		// reason rather than misread.
		switch format {
		case "azure.activity":
			want[1], want[2] = "quarantined", "quarantined"
		case "azure.signin":
			want[0] = "quarantined"
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s:\n got %q\nwant %q", format, got, want)
		}
	}
}

func TestAzureFields(t *testing.T) {
	plaso, err := os.ReadFile(shared + "plaso-log-format-fixtures/test_data/jsonl/azure_activity_log.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	plasoLines := strings.Split(string(plaso), "\n")
	tests := []struct {
		name, format, rec string
		want              goldenEvent // the fields compared; Raw and Doc are not
	}{
		{
			name: "SDK export: user deletes a VM", format: "azure.activity", rec: plasoLines[1],
			want: goldenEvent{
				Time: "2022-02-09T03:04:26.49265Z", Source: "azure.activity", Class: "api_activity", ID: "648230f9-fba4-4def-8a83-118b158b748a",
				Provider: "azure", Account: "12345678-9abc-defg-hijk-lmnopqrstuvw",
				ActorID: "12345678-9abc-defg-hijk-lmnopqrstuvw", ActorType: "user", ActorName: "fakeemail@fakedomain.com",
				Session: "-AAAAAAAAAAAAAAAA_AAAA", SrcIP: "1.2.3.4", Service: "Microsoft.Compute", Action: "Microsoft.Compute/virtualMachines/delete",
				Resources: []string{"/subscriptions/12345678-9abc-defg-hijk-lmnopqrstuvw/resourceGroups/test-resource-group/providers/Microsoft.Compute/virtualMachines/test-vm"},
				Outcome:   "unknown",
			},
		},
		{
			name: "SDK export: application deletes a disk", format: "azure.activity", rec: plasoLines[0],
			want: goldenEvent{
				Time: "2022-02-09T03:04:54.297853Z", Source: "azure.activity", Class: "api_activity", ID: "587eda65-125e-48c2-9b04-ab5e8d3a1d8e",
				Provider: "azure", Account: "12345678-9abc-defg-hijk-lmnopqrstuvw",
				ActorID: "12345678-9abc-defg-hijk-lmnopqrstuvw", ActorType: "servicePrincipal", ActorName: "12345678-9abc-defg-hijk-lmnopqrstuvw",
				Session: "AAAAAAAAAAAAAAAAAAAAAA", SrcIP: "1.2.3.4", Service: "Microsoft.Compute", Action: "Microsoft.Compute/disks/delete",
				Resources: []string{"/subscriptions/12345678-9abc-defg-hijk-lmnopqrstuvw/resourceGroups/TEST-RESOURCE-GROUP/providers/Microsoft.Compute/disks/test-vm_disk1_cd8883de78cb4cda97cb858dfe0cda3a"},
				Outcome:   "unknown",
			},
		},
		{
			name: "elevateAccess: REST shape of operationName, tenant level", format: "azure.activity",
			rec: pantherEvent(t, "azure_activity_rule_tests.jsonl", "Azure.MonitorActivity.RoleAssignment.PrivilegedOrElevated", "Elevate Access to All Azure Subscriptions"),
			want: goldenEvent{
				Time: "2024-12-24T15:45:00Z", Source: "azure.activity", Class: "account_change", Provider: "azure", Account: "87654321-4321-4321-4321-111111111111",
				ActorType: "user", ActorName: "attacker@example.com", SrcIP: "203.0.113.42", Service: "Microsoft.Authorization",
				Action: "Microsoft.Authorization/elevateAccess/action", Resources: []string{"/providers/Microsoft.Authorization"}, Outcome: "success",
			},
		},
		{
			name: "role assignment with evidence", format: "azure.activity",
			rec: pantherEvent(t, "azure_activity_rule_tests.jsonl", "Azure.MonitorActivity.RoleAssignment.PrivilegedOrElevated", "Owner Role Assignment"),
			want: goldenEvent{
				Time: "2024-12-17T10:30:00Z", Source: "azure.activity", Class: "account_change", Provider: "azure", Account: "12345678-1234-1234-1234-123456789abc",
				ActorID: "6b6d44f0-b13a-46a0-bfde-161324d4c34d", ActorType: "user", SrcIP: "1.1.1.1", Service: "Microsoft.Authorization",
				Action:    "Microsoft.Authorization/roleAssignments/write",
				Resources: []string{"/subscriptions/12345678-1234-1234-1234-123456789abc/providers/Microsoft.Authorization/roleAssignments/a1b2c3d4-e5f6-7890-abcd-ef1234567890"},
				Outcome:   "success", ErrorCode: "200",
			},
		},
		{
			name: "storage log: caller address with a port", format: "azure.activity",
			rec: pantherEvent(t, "azure_activity_rule_tests.jsonl", "Azure.MonitorActivity.Storage.Blob.BulkDeletion", "Successful Blob Deletion"),
			want: goldenEvent{
				Time: "2024-12-19T16:37:59.255Z", Source: "azure.activity", Class: "api_activity", Provider: "azure", Account: "12345678-1234-1234-1234-123456789abc",
				Region: "eastus", SrcIP: "5.5.5.5", SrcPort: 28915,
				UserAgent: "AZURECLI/2.79.0 (RPM) azsdk-python-storage-blob/12.16.0 Python/3.12.9 (Linux-6.6.6.6-microsoft-standard-x86_64-with-glibc2.38) cloud-shell/1.0",
				Service:   "Microsoft.Storage", Action: "DeleteBlob",
				Resources: []string{"/subscriptions/12345678-1234-1234-1234-123456789abc/resourceGroups/myresourcegroup/providers/Microsoft.Storage/storageAccounts/mystorageaccount/blobServices/default", "/mystorageaccount/corporate-files/documents/internal_doc_13.txt"},
				Outcome:   "success",
			},
		},
		{
			name: "Datadog's shape", format: "azure.activity",
			rec: `{"resourceId": "/SUBSCRIPTIONS/2FD72D85-B49F-4E19-B567-4A8CB7301E8B/RESOURCEGROUPS/RG-IKFFQ01Z/PROVIDERS/MICROSOFT.COMPUTE/DISKS/STRATUS-RED-TEAM-DISK", "evt": {"category": "Administrative", "outcome": "Success", "name": "MICROSOFT.COMPUTE/DISKS/BEGINGETACCESS/ACTION"}, "level": "Information", "properties": {"message": "Microsoft.Compute/disks/beginGetAccess/action", "eventCategory": "Administrative", "entity": "/subscriptions/2fd72d85-b49f-4e19-b567-4a8cb7301e8b/resourceGroups/rg-ikffq01z/providers/Microsoft.Compute/disks/stratus-red-team-disk"}, "@timestamp": "2024-02-03T04:05:06Z"}`,
			want: goldenEvent{
				Time: "2024-02-03T04:05:06Z", Source: "azure.activity", Class: "api_activity", Provider: "azure", Account: "2fd72d85-b49f-4e19-b567-4a8cb7301e8b",
				Service: "Microsoft.Compute", Action: "MICROSOFT.COMPUTE/DISKS/BEGINGETACCESS/ACTION",
				Resources: []string{"/SUBSCRIPTIONS/2FD72D85-B49F-4E19-B567-4A8CB7301E8B/RESOURCEGROUPS/RG-IKFFQ01Z/PROVIDERS/MICROSOFT.COMPUTE/DISKS/STRATUS-RED-TEAM-DISK"},
				Outcome:   "success",
			},
		},
		{
			name: "failed sign-in: account locked", format: "azure.signin",
			rec: pantherEvent(t, "azure_signin_rule_tests.jsonl", "Azure.Audit.ExcessiveAccountLockouts", "Account Lockout Error 50053"),
			want: goldenEvent{
				Time: "2025-01-15T08:15:23.456Z", Source: "azure.signin", Class: "authentication", Provider: "azure", Account: "tenant-123",
				ActorID: "user-001", ActorType: "user", ActorName: "boromir@lotr.com", Session: "lockout-attack-001", SrcIP: "4.4.4.4",
				UserAgent: "python-requests/2.28.0", Service: "Microsoft Office", Action: "Sign-in activity", Resources: []string{"Microsoft Graph"},
				Outcome: "failure", ErrorCode: "50053",
			},
		},
		{
			name: "failed service principal sign-in, lowercased keys", format: "azure.signin",
			rec: pantherEvent(t, "azure_signin_rule_tests.jsonl", "Azure.Audit.ManyFailedSignIns", "Failed Sign-In"),
			want: goldenEvent{
				Time: "2023-07-26T23:00:20.889Z", Source: "azure.signin", Class: "authentication", ID: "36658c78-02d9-4d8f-84ee-5ca4a3fdefef",
				Provider: "azure", Account: "a2aa49aa-2c0c-49d2-af87-f402c421df0b",
				ActorID: "b1c34143-e405-4058-8e29-84596ad737b8", ActorType: "servicePrincipal", ActorName: "some-service-principal",
				Session: "NDDDDDDDDDDDDDDDDDD_DD", SrcIP: "12.12.12.12", Service: "Azure Storage", Action: "Sign-in activity",
				Resources: []string{"Azure Storage"}, Outcome: "failure", ErrorCode: "7000215",
			},
		},
		{
			name: "successful sign-in, resultType only", format: "azure.signin",
			rec: pantherEvent(t, "azure_signin_rule_tests.jsonl", "Azure.Audit.DeviceCodeBrokerClient", "Device Code Auth with Broker Client"),
			want: goldenEvent{
				Time: "2025-01-15T09:30:45.123Z", Source: "azure.signin", Class: "authentication", Provider: "azure", Account: "tenant-123",
				ActorID: "user-victim-123", ActorType: "user", ActorName: "aragorn@lotr.com", Session: "device-code-001", SrcIP: "2.2.2.2",
				UserAgent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/1.1.1.1", Service: "Microsoft Authentication Broker",
				Action: "Sign-in activity", Resources: []string{"Microsoft Graph"}, Outcome: "success",
			},
		},
		{
			name: "failed invitation of an external user", format: "azure.signin",
			rec: pantherEvent(t, "azure_signin_rule_tests.jsonl", "Azure.Audit.InviteExternalUsers", "Unsuccessful invite"),
			want: goldenEvent{
				Time: "2024-12-10T14:33:09.0496611Z", Source: "azure.signin", Class: "account_change", ID: "Invited Users_123456789",
				Provider: "azure", Account: "123456789", ActorID: "123456789", ActorType: "user", ActorName: "denethor@lotr.com",
				SrcIP: "1.2.3.4", Service: "Invited Users", Action: "Invite external user", Resources: []string{"Zeus.Theboss"},
				Outcome: "failure", ErrorCode: "failed",
			},
		},
		{
			name: "Graph API directory audit", format: "azure.signin",
			rec: `{"id": "Directory_1", "category": "ApplicationManagement", "result": "success", "activityDateTime": "2024-06-01T10:00:00.1234567Z", "activityDisplayName": "Update application", "loggedByService": "Core Directory", "initiatedBy": {"user": {"id": "u9", "userPrincipalName": "admin@contoso.com", "ipAddress": "2001:db8::7"}}, "targetResources": [{"id": "app1", "displayName": "Stratus FIC app", "type": "Application", "userPrincipalName": null}]}`,
			want: goldenEvent{
				Time: "2024-06-01T10:00:00.1234567Z", Source: "azure.signin", Class: "account_change", ID: "Directory_1", Provider: "azure",
				ActorID: "u9", ActorType: "user", ActorName: "admin@contoso.com", SrcIP: "2001:db8::7", Service: "Core Directory",
				Action: "Update application", Resources: []string{"Stratus FIC app"}, Outcome: "success",
			},
		},
		{
			name: "Graph API sign-in", format: "azure.signin",
			rec: `{"id": "s1", "createdDateTime": "2024-06-01T10:00:00Z", "userPrincipalName": "bob@contoso.com", "userId": "u1", "appDisplayName": "Azure Portal", "ipAddress": "203.0.113.9", "status": {"errorCode": 50126, "failureReason": "Invalid username or password"}, "uniqueTokenIdentifier": "tok1"}`,
			want: goldenEvent{
				Time: "2024-06-01T10:00:00Z", Source: "azure.signin", Class: "authentication", ID: "s1", Provider: "azure",
				ActorID: "u1", ActorType: "user", ActorName: "bob@contoso.com", Session: "tok1", SrcIP: "203.0.113.9",
				Service: "Azure Portal", Action: "Sign-in activity", Outcome: "failure", ErrorCode: "50126",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, format := range []string{Auto, tt.format} {
				e := parseOne(t, tt.rec, format)
				got := toGolden(e)
				got.Raw, got.Doc, got.Skewed = "", nil, false // skew is the framework's
				if !equalJSON(got, tt.want) {
					t.Errorf("%s:\n got %s\nwant %s", format, mustJSON(got), mustJSON(tt.want))
				}
			}
		})
	}
}

func TestAzureQuarantine(t *testing.T) {
	checkQuarantined(t, []quarantineCase{
		{"GCP record as activity", "azure.activity", `{"protoPayload":{"methodName":"SetIamPolicy"},"timestamp":"2024-01-01T00:00:00Z"}`, "no operationName"},
		{"GCP record as sign-in", "azure.signin", `{"protoPayload":{"methodName":"SetIamPolicy"},"timestamp":"2024-01-01T00:00:00Z"}`, "no category, operationName or properties"},
		{"activity record as sign-in", "azure.signin", `{"time":"2024-01-01T00:00:00Z","operationName":"Microsoft.Compute/virtualMachines/write","category":"Administrative","resourceId":"/subscriptions/s/resourceGroups/r","properties":{}}`, "neither a sign-in nor a directory audit"},
		{"sign-in as activity", "azure.activity", `{"time":"2024-01-01T00:00:00Z","operationName":"Sign-in activity","category":"SignInLogs","properties":{}}`, `an Entra ID record (category "SignInLogs")`},
		{"not an object", "azure.activity", `"operationName"`, "not a JSON object"},
		{"time a boolean", "azure.activity", `{"time":true,"operationName":"Microsoft.Compute/virtualMachines/write","category":"Administrative"}`, "time is a boolean"},
		{"time a boolean, detected", Auto, `{"time":true,"operationName":"Microsoft.Compute/virtualMachines/write","category":"Administrative"}`, "time is a boolean"},
		{"eventTimestamp unreadable", "azure.activity", `{"eventTimestamp":"02/30/2024 25:00","operationName":{"value":"x/y"}}`, "eventTimestamp: unrecognized time"},
		{"operationName a number", "azure.activity", `{"time":"2024-01-01T00:00:00Z","operationName":5,"category":"Administrative"}`, "is a number, not a string"},
		{"operationName an array, detected", Auto, `{"time":"2024-01-01T00:00:00Z","operationName":["x"],"category":"Administrative"}`, "is an array, not a string"},
		{"sign-in time a number too large", "azure.signin", `{"time":1e300,"category":"SignInLogs","properties":{}}`, "time:"},
		{"sign-in properties a number", "azure.signin", `{"time":"2024-01-01T00:00:00Z","category":"SignInLogs","properties":5}`, "properties is a number"},
		{"sign-in createdDateTime an object", Auto, `{"category":"SignInLogs","operationName":"Sign-in activity","resourceId":"/tenants/t/providers/Microsoft.aadiam","properties":{"createdDateTime":{}}}`, "properties.createdDateTime is an object"},
		{"broken JSON", "azure.signin", `{"category":"SignInLogs","properties":{}`, "invalid JSON"},
	})
}

// TestAzureLenient checks that fields that only add detail do not cost
// the record when they have an unexpected type.
func TestAzureLenient(t *testing.T) {
	e := parseOne(t, `{"time":"2024-01-01 10:00:00","operationName":"Microsoft.Compute/virtualMachines/write","category":"Administrative",
		"identity":"someone","claims":[1],"resultType":{"x":1},"callerIpAddress":"AWS Internal","properties":"...","resourceId":7}`, "azure.activity")
	if e.Action != "Microsoft.Compute/virtualMachines/write" || e.Outcome.Result != "unknown" || e.SrcIP.IsValid() || e.Service != "Microsoft.Compute" {
		t.Errorf("got %+v", e)
	}
	e = parseOne(t, `{"time":"2024-01-01 10:00:00","category":"SignInLogs","identity":{"a":1},"resultType":"0",
		"properties":{"userPrincipalName":["x"],"status":"...","location":"..."},"p_event_time":"..."}`, "azure.signin")
	if e.Outcome.Result != "success" || e.Actor.Name != "" || e.Class != "authentication" {
		t.Errorf("got %+v", e)
	}
}
