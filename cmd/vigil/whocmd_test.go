package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/inventory"
)

// TestWho: vigil inventory knows the user an attacker made, from when it
// was made; vigil who follows the attacker's temporary keys of real
// trails back to who started them, and flags the stolen instance
// credential used off its instance: from the data directory, and through
// a running server's API.
func TestWho(t *testing.T) {
	needFixtures(t)
	data := t.TempDir()
	otrf := "../../../shared/testdata/otrf-security-datasets-aws/ec2_proxy_s3_exfiltration_2020-09-14011940.json"
	importData(t, data, otrf, filepath.Join(stratus, "aws.execution.ec2-launch-unusual-instances.json"),
		filepath.Join(stratus, "aws.persistence.iam-create-admin-user.json"))

	// The user the attacker created is in the inventory, from when it was.
	out := mustVigil(t, "inventory", "--data", data, "malicious-iam-user")
	if !strings.Contains(out, "user arn:aws:iam::229654561268:user/malicious-iam-user (aws account 229654561268") || !strings.Contains(out, "cloudtrail:CreateUser") {
		t.Errorf("vigil inventory:\n%s", out)
	}
	if out := mustVigil(t, "inventory", "--data", data, "--at", "2024-08-01T13:00:00Z", "malicious-iam-user"); !strings.Contains(out, "no asset") {
		t.Errorf("vigil inventory before the user was made:\n%s", out)
	}

	// The import named each event's origin: searchable.
	var rows []map[string]any
	eventually(t, func() bool {
		rows = ndjson(t, mustVigil(t, "search", "--data", data, "--format", "ndjson", `session_origin:"instance/i-0317f6c6b66ae9c40" | stats count()`))
		return fmt.Sprint(rows[0]["count"]) == "11"
	})
	if fmt.Sprint(rows[0]["count"]) != "11" {
		t.Errorf("events whose origin is the instance: %v, want 11", rows[0]["count"])
	}
	eventually(t, func() bool {
		rows = ndjson(t, mustVigil(t, "search", "--data", data, "--format", "ndjson", `session_origin:"arn:aws:iam::900138736586:user/christophe"`))
		return len(rows) == 1
	})
	if len(rows) != 1 || rows[0]["action"] != "RunInstances" {
		t.Errorf("events whose origin is christophe: %v", rows)
	}

	out = mustVigil(t, "who", "--data", data, "ASIA5FLZVX4OPVKKVBMX")
	for _, want := range []string{
		"assumed-role/MordorNginxStack-BankingWAFRole-9S3E0UAE1MM0/i-0317f6c6b66ae9c40 (key ASIA5FLZVX4OPVKKVBMX)",
		"issued by InstanceProfile at 2020-09-14T00:48:30Z",
		"origin: the instance i-0317f6c6b66ae9c40, through its instance profile",
		"11 events done under it",
		"! the credential of instance i-0317f6c6b66ae9c40 was used from the public address 1.2.3.4",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("vigil who: no %q in\n%s", want, out)
		}
	}
	out = mustVigil(t, "who", "--data", data, "--format", "json", "ASIA9F6MXE9HSYOXYQOS")
	var rep inventory.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Origin.ARN != "arn:aws:iam::900138736586:user/christophe" || len(rep.Chain) != 2 || len(rep.Uses) != 1 || rep.Uses[0].Action != "RunInstances" {
		t.Errorf("report %+v", rep)
	}
	if out := mustVigil(t, "who", "--data", data, "--tenant", "nobody", "ASIA9F6MXE9HSYOXYQOS"); !strings.Contains(out, "no STS call") {
		t.Errorf("another tenant's view:\n%s", out)
	}

	// The state at a time: the identity behind the key, the events
	// around it.
	out = mustVigil(t, "timeline", "--data", data, "--at", "2020-09-14T01:02:00Z", "--around", "5m", "ASIA5FLZVX4OPVKKVBMX")
	if !strings.Contains(out, "← the instance i-0317f6c6b66ae9c40") || strings.Count(out, "MordorNginxStack-BankingWAFRole-9S3E0UAE1MM0/i-0317f6c6b66ae9c40  1.2.3.4") != 7 {
		t.Errorf("vigil timeline:\n%s", out)
	}
	if out := mustVigil(t, "timeline", "--data", data, "--at", "2024-08-02", "--around", "24h", "malicious-iam-user"); !strings.Contains(out, "asset: user arn:aws:iam::229654561268:user/malicious-iam-user") {
		t.Errorf("vigil timeline of a user:\n%s", out)
	}

	// Through a running server: the same, from its API.
	srv := serve(t, data)
	var viaAPI inventory.Report
	if err := json.Unmarshal(srv.call("GET", "/api/v1/identities/"+url.PathEscape("arn:aws:sts::900138736586:assumed-role/stratus-red-team-ec2lui-role-idtzskbvtd/aws-go-sdk-1722511821294449000"), nil), &viaAPI); err != nil {
		t.Fatal(err)
	}
	if viaAPI.Origin.ARN != "arn:aws:iam::900138736586:user/christophe" {
		t.Errorf("API report %+v", viaAPI)
	}
	if out := mustVigil(t, "who", "--data", data, "ASIA5FLZVX4OPVKKVBMX"); !strings.Contains(out, "origin: the instance i-0317f6c6b66ae9c40") {
		t.Errorf("vigil who through the server:\n%s", out)
	}
	if out := mustVigil(t, "timeline", "--data", data, "--at", "2020-09-14T01:02:00Z", "--around", "5m", "ASIA5FLZVX4OPVKKVBMX"); !strings.Contains(out, "← the instance i-0317f6c6b66ae9c40") {
		t.Errorf("vigil timeline through the server:\n%s", out)
	}
	if out := mustVigil(t, "inventory", "--data", data, "malicious-iam-user"); !strings.Contains(out, "cloudtrail:CreateUser") {
		t.Errorf("vigil inventory through the server, over all time:\n%s", out)
	}
	var found []inventory.Found
	if err := json.Unmarshal(srv.call("GET", "/api/v1/inventory?q=malicious-iam-user&at=2024-08-02", nil), &found); err != nil || len(found) != 1 || found[0].Asset.Kind != "user" {
		t.Errorf("the API's inventory: %+v %v", found, err)
	}
}

// TestWhoGCP: a GCP service account is followed back to the person who
// had a token made for it, and through a delegation chain to the
// federated identity that started it (inventory/testdata/identity has
// the records, in the audit log's documented shape).
func TestWhoGCP(t *testing.T) {
	data := t.TempDir()
	mustVigil(t, "import", "--data", data, "--format", "gcp.audit", "../../inventory/testdata/identity/gcp_impersonation.jsonl")
	for ref, want := range map[string][]string{
		"deployer@acme-prod.iam.gserviceaccount.com":  {"issued by GenerateAccessToken at 2024-07-10T09:20:00Z", "origin: user bob@example.com", "1 events done under it"},
		"ci-runner@acme-prod.iam.gserviceaccount.com": {"issued by ServiceAccountDelegation", "origin: federated principal://iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/aws-pool/subject/"},
	} {
		out := mustVigil(t, "who", "--data", data, ref)
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("vigil who %s: no %q in\n%s", ref, w, out)
			}
		}
	}
}

// TestWhoSnapshot: the addresses an imported snapshot gives an instance
// decide whether its credential was used off it, from the data
// directory and through a running server. The OTRF story's stolen
// credential was used from 1.2.3.4: with a snapshot saying the instance
// had that address, the uses are its own; with one giving it others,
// they are named as from elsewhere.
func TestWhoSnapshot(t *testing.T) {
	needFixtures(t)
	otrf := "../../../shared/testdata/otrf-security-datasets-aws/ec2_proxy_s3_exfiltration_2020-09-14011940.json"
	for _, tc := range []struct {
		public, want string
	}{
		{"1.2.3.4", ""},
		{"54.210.1.7", "! the credential of instance i-0317f6c6b66ae9c40 was used from 1.2.3.4, not one of the instance's addresses"},
	} {
		data := t.TempDir()
		snapshot := filepath.Join(data, "cmdb.csv")
		csv := "kind,id,private_ip,public_ip,from\ninstance,i-0317f6c6b66ae9c40,172.31.7.9," + tc.public + ",2020-09-14T00:00:00Z\n"
		conf := fmt.Sprintf("context:\n  inventory: [%q]\n", snapshot)
		if os.WriteFile(snapshot, []byte(csv), 0o600) != nil || os.WriteFile(filepath.Join(data, configFile), []byte(conf), 0o600) != nil {
			t.Fatal("writing the snapshot and config")
		}
		importData(t, data, otrf)
		check := func(how, out string) {
			t.Helper()
			flagged := strings.Count(out, "! the credential of instance")
			switch {
			case tc.want == "" && flagged != 0:
				t.Errorf("%s, the instance had %s: uses flagged\n%s", how, tc.public, out)
			case tc.want != "" && !strings.Contains(out, tc.want):
				t.Errorf("%s, the instance had %s: no %q in\n%s", how, tc.public, tc.want, out)
			}
		}
		check("offline", mustVigil(t, "who", "--data", data, "ASIA5FLZVX4OPVKKVBMX"))
		serve(t, data)
		check("through the server", mustVigil(t, "who", "--data", data, "ASIA5FLZVX4OPVKKVBMX"))
	}
}
