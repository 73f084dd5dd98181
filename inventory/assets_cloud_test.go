package inventory

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/query"
)

// assetFixture parses a fixture of testdata/assets, every record of it.
func assetFixture(t *testing.T, name string) []*event.Event {
	return ownFixture(t, "testdata/assets/"+name)
}

// observed builds an inventory from events in the order things happened,
// as Build does.
func observed(evs []*event.Event) *Inventory {
	evs = slices.Clone(evs)
	slices.SortStableFunc(evs, func(a, b *event.Event) int { return a.Time.Compare(b.Time) })
	inv := NewInventory()
	for _, ev := range evs {
		inv.Observe(ev)
	}
	return inv
}

// factLines writes facts one a line: "attr=value [from, to) source",
// with "…" for a To that is open.
func factLines(fs []Fact) string {
	var b strings.Builder
	for _, f := range fs {
		to := "…"
		if !f.To.IsZero() {
			to = f.To.Format(time.RFC3339Nano)
		}
		b.WriteString(f.Attr + "=" + f.Value + " [" + f.From.Format(time.RFC3339Nano) + ", " + to + ") " + f.Source + "\n")
	}
	return b.String()
}

// pendingOf is how many GCP operations the inventory holds unfinished.
func pendingOf(inv *Inventory) int { return len(inv.gcpOps) }

func gcpInstanceAsset(project, zone, name string) Asset {
	return Asset{Kind: "instance", ID: "projects/" + project + "/zones/" + zone + "/instances/" + name, Provider: "gcp", Account: project, Region: zone}
}

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

// TestGCPInstances: hand-written Compute Engine entries (first and last
// of each operation): an instance holds its request's facts from its
// insert's last entry to its delete's; a failed insert makes nothing; an
// address passes to the next instance given it; a project named by
// number is the project named by id.
func TestGCPInstances(t *testing.T) {
	inv := observed(assetFixture(t, "gcp_compute.jsonl"))
	const (
		insert1 = "gcp.audit:v1.compute.instances.insert:operation-1709542800321-612d4b1f0a9c3-6e2f1d7a-3c5b8e90"
		insert2 = "gcp.audit:beta.compute.instances.insert:operation-1709553600300-612d736a9f1b4-4b7e0c92-d5a81f36"
	)
	web1 := gcpInstanceAsset("acme-prod", "europe-west1-b", "web-1")
	web2 := gcpInstanceAsset("acme-prod", "europe-west1-b", "web-2")
	for _, tc := range []struct {
		asset Asset
		want  string
	}{
		{web1, "" +
			"exists=true [2024-03-04T09:00:12.83Z, 2024-03-04T11:30:41.004Z) " + insert1 + "\n" +
			"name=web-1 [2024-03-04T09:00:12.83Z, 2024-03-04T11:30:41.004Z) " + insert1 + "\n" +
			"type=e2-standard-2 [2024-03-04T09:00:12.83Z, 2024-03-04T11:30:41.004Z) " + insert1 + "\n" +
			"image=projects/debian-cloud/global/images/family/debian-12 [2024-03-04T09:00:12.83Z, 2024-03-04T11:30:41.004Z) " + insert1 + "\n" +
			"private_ip=10.132.0.7 [2024-03-04T09:00:12.83Z, 2024-03-04T11:30:41.004Z) " + insert1 + "\n" +
			"subnet=projects/acme-prod/regions/europe-west1/subnetworks/web [2024-03-04T09:00:12.83Z, 2024-03-04T11:30:41.004Z) " + insert1 + "\n" +
			"public_ip=203.0.113.10 [2024-03-04T09:00:12.83Z, 2024-03-04T11:30:41.004Z) " + insert1 + "\n" +
			"tag:env=prod [2024-03-04T09:00:12.83Z, 2024-03-04T11:30:41.004Z) " + insert1 + "\n" +
			"tag:team=web [2024-03-04T09:00:12.83Z, 2024-03-04T11:30:41.004Z) " + insert1 + "\n"},
		{web2, "" +
			"exists=true [2024-03-04T12:00:09.7Z, …) " + insert2 + "\n" +
			"name=web-2 [2024-03-04T12:00:09.7Z, …) " + insert2 + "\n" +
			"type=e2-small [2024-03-04T12:00:09.7Z, …) " + insert2 + "\n" +
			"private_ip=10.132.0.7 [2024-03-04T12:00:09.7Z, …) " + insert2 + "\n" +
			"subnet=projects/acme-prod/regions/europe-west1/subnetworks/web [2024-03-04T12:00:09.7Z, …) " + insert2 + "\n" +
			"tag:env=staging [2024-03-04T12:00:09.7Z, …) " + insert2 + "\n"},
		{gcpInstanceAsset("acme-prod", "europe-west1-b", "gpu-1"), ""},
		{Asset{Kind: "service-account", ID: "ci-deployer@acme-prod.iam.gserviceaccount.com", Provider: "gcp", Account: "acme-prod"},
			"exists=true [2024-03-04T13:00:00.25Z, 2024-03-04T15:00:00.75Z) gcp.audit:google.iam.admin.v1.CreateServiceAccount:1q9w8e7r6t5y\n"},
	} {
		if got := factLines(inv.Facts(tc.asset, time.Time{})); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.asset.ID, got, tc.want)
		}
	}
	if got := inv.Lookup("web-2", time.Time{}); len(got) != 1 || got[0].Asset != web2 {
		t.Errorf("web-2 by name: %+v", got)
	}

	for _, tc := range []struct {
		addr, at string
		want     Asset
	}{
		{"10.132.0.7", "2024-03-04T09:00:12.829Z", Asset{}}, // the insert not yet done
		{"10.132.0.7", "2024-03-04T09:00:12.83Z", web1},
		{"203.0.113.10", "2024-03-04T10:00:00Z", web1},
		{"10.132.0.7", "2024-03-04T11:30:41.003Z", web1},
		{"10.132.0.7", "2024-03-04T11:30:41.004Z", Asset{}}, // deleted: [insert, delete)
		{"203.0.113.10", "2024-03-04T11:30:41.004Z", Asset{}},
		{"10.132.0.7", "2024-03-04T12:00:09.7Z", web2},
		{"10.132.0.7", "2025-01-01T00:00:00Z", web2},
		{"10.132.0.9", "2024-03-04T10:00:05Z", Asset{}}, // the failed insert's
		{"10.132.0.9", "2024-03-04T12:00:00Z", Asset{}},
	} {
		got, ok := inv.AssetAt(netip.MustParseAddr(tc.addr), at(tc.at))
		if got != tc.want || ok != (tc.want != Asset{}) {
			t.Errorf("%s at %s: %v %v, want %v", tc.addr, tc.at, got.ID, ok, tc.want.ID)
		}
	}
	if n := pendingOf(inv); n != 0 {
		t.Errorf("%d operations left pending", n)
	}
}

// TestGCPOperationEntries: how the entries of an operation are taken
// when the log does not hold them all, or holds them out of order.
func TestGCPOperationEntries(t *testing.T) {
	evs := assetFixture(t, "gcp_compute.jsonl")
	byID := map[string]*event.Event{}
	for _, e := range evs {
		byID[e.ID] = e
	}
	const (
		web1First, web1Last = "-k3v9q2e4x1ab", "-k3v9q2e4x1ac"
		gpuFirst, gpuLast   = "-p7w1m5t8r2cd", "-p7w1m5t8r2ce"
		delFirst, delLast   = "-d2x8n4c6v0ef", "-d2x8n4c6v0eg"
	)
	web1 := gcpInstanceAsset("acme-prod", "europe-west1-b", "web-1")
	gpu1 := gcpInstanceAsset("acme-prod", "europe-west1-b", "gpu-1")
	for _, tc := range []struct {
		name    string
		entries []string // in the order observed
		asset   Asset
		// exists is the interval of the asset's exists facts, "" for
		// none; typ, its type facts' values; pending, how many entries
		// are kept for the rest of their operation.
		exists, typ string
		pending     int
	}{
		{"first and last", []string{web1First, web1Last}, web1, "[2024-03-04T09:00:12.83Z, …)", "e2-standard-2", 0},
		// The second last is kept for a first that may come late.
		{"logged twice over", []string{web1First, web1First, web1Last, web1Last}, web1, "[2024-03-04T09:00:12.83Z, …)", "e2-standard-2", 1},
		{"last before first", []string{web1Last, web1First}, web1, "[2024-03-04T09:00:12.83Z, …)", "e2-standard-2", 0},
		{"only the last", []string{web1Last}, web1, "[2024-03-04T09:00:12.83Z, …)", "", 1},
		{"only the first, pending", []string{web1First}, web1, "", "", 1},
		// An hour on, another entry: the insert is taken as done at
		// its first.
		{"only the first, an hour on", []string{web1First, gpuFirst, gpuLast, delFirst}, web1, "[2024-03-04T09:00:00.512Z, …)", "e2-standard-2", 1},
		// Its delete proves it done.
		{"only the first, then deleted", []string{web1First, delFirst, delLast}, web1, "[2024-03-04T09:00:00.512Z, 2024-03-04T11:30:41.004Z)", "e2-standard-2", 0},
		{"the delete's last lost", []string{web1First, web1Last, delFirst}, web1, "[2024-03-04T09:00:12.83Z, …)", "e2-standard-2", 1},
		{"the delete's last lost, an hour on", []string{web1First, web1Last, delFirst, "1q9w8e7r6t5y"}, web1, "[2024-03-04T09:00:12.83Z, 2024-03-04T11:30:00.12Z)", "e2-standard-2", 0},
		{"failed", []string{gpuFirst, gpuLast}, gpu1, "", "", 0},
		{"failed, out of order", []string{gpuLast, gpuFirst}, gpu1, "", "", 0},
	} {
		inv := NewInventory()
		for _, id := range tc.entries {
			inv.Observe(byID[id])
		}
		var exists, types []string
		for _, f := range inv.Facts(tc.asset, time.Time{}) {
			switch f.Attr {
			case "exists":
				to := "…"
				if !f.To.IsZero() {
					to = f.To.Format(time.RFC3339Nano)
				}
				exists = append(exists, "["+f.From.Format(time.RFC3339Nano)+", "+to+")")
			case "type":
				types = append(types, f.Value)
			}
		}
		if got := strings.Join(exists, " "); got != tc.exists {
			t.Errorf("%s: exists %s, want %s", tc.name, got, tc.exists)
		}
		if got := strings.Join(types, " "); got != tc.typ {
			t.Errorf("%s: type %s, want %s", tc.name, got, tc.typ)
		}
		if n := pendingOf(inv); n != tc.pending {
			t.Errorf("%s: %d operations pending, want %d", tc.name, n, tc.pending)
		}
	}
}

// TestGCPAssetFixtures: published audit log entries. plaso's hold an
// instance's insert, first and last (one instance, from the last), an
// insert logged only first whose project is named by number, a service
// account created and one refused; Panther's an insert logged only last,
// one logged once, a failed one, a delete of an instance never seen, one
// without a resource name, service accounts created and one refused.
func TestGCPAssetFixtures(t *testing.T) {
	plaso := observed(events(t, "plaso-log-format-fixtures/test_data/jsonl/gcp_logging.jsonl"))
	const plasoOp = "gcp.audit:beta.compute.instances.insert:operation-1634611333792-5ceab9be58292-d54d52b1-12d290a9"
	const fakeOp = "gcp.audit:beta.compute.instances.insert:operation-1714162209773-617057d99d773-818c5509-b54204dc"
	panther := observed(events(t, "panther-analysis-rule-tests/gcp_audit_rule_tests.jsonl"))
	for _, tc := range []struct {
		inv   *Inventory
		asset Asset
		want  string
	}{
		{plaso, gcpInstanceAsset("fake-project", "us-central1-a", "instance-1"), "" +
			"exists=true [2021-10-19T02:42:22.986298Z, …) " + plasoOp + "\n" +
			"name=instance-1 [2021-10-19T02:42:22.986298Z, …) " + plasoOp + "\n" +
			"type=e2-medium [2021-10-19T02:42:22.986298Z, …) " + plasoOp + "\n" +
			"image=projects/debian-cloud/global/images/debian-10-buster-v20210916 [2021-10-19T02:42:22.986298Z, …) " + plasoOp + "\n" +
			"subnet=projects/fake-project/regions/us-central1/subnetworks/default [2021-10-19T02:42:22.986298Z, …) " + plasoOp + "\n"},
		// Logged first only: done by the time of the next entry, months
		// later.
		{plaso, gcpInstanceAsset("fake-project", "us-central1-b", "fake-compute-instance"), "" +
			"exists=true [2024-04-26T20:10:10.024055Z, …) " + fakeOp + "\n" +
			"name=fake-compute-instance [2024-04-26T20:10:10.024055Z, …) " + fakeOp + "\n" +
			"type=n1-highmem-16 [2024-04-26T20:10:10.024055Z, …) " + fakeOp + "\n" +
			"image=projects/fake-project/global/images/fake-source-image [2024-04-26T20:10:10.024055Z, …) " + fakeOp + "\n"},
		{plaso, Asset{Kind: "service-account", ID: "test-1@fake-project.iam.gserviceaccount.com", Provider: "gcp", Account: "fake-project"},
			"exists=true [2021-10-19T02:43:48.064377809Z, …) gcp.audit:google.iam.admin.v1.CreateServiceAccount:8loeppebz7wc\n"},
		{panther, gcpInstanceAsset("western-verve-123456", "asia-northeast1-b", "instance-5"), "" +
			"exists=true [2020-05-15T17:15:42.415Z, …) gcp.audit:beta.compute.instances.insert:operation-1589562934964-5a5b2f61631d6-cc67597a-98092474\n" +
			"name=instance-5 [2020-05-15T17:15:42.415Z, …) gcp.audit:beta.compute.instances.insert:operation-1589562934964-5a5b2f61631d6-cc67597a-98092474\n"},
		// Logged once with no operation; the placeholders ("...") in its
		// request make no facts.
		{panther, gcpInstanceAsset("some-project", "us-central1-f", "abc"), "" +
			"exists=true [2024-01-30T12:52:34.676384Z, …) gcp.audit:v1.compute.instances.insert\n" +
			"name=abc [2024-01-30T12:52:34.676384Z, …) gcp.audit:v1.compute.instances.insert\n"},
		{panther, Asset{Kind: "service-account", ID: "created-service-account@gcp-project1.iam.gserviceaccount.com", Provider: "gcp", Account: "gcp-project1"},
			"exists=true [2023-03-09T15:49:21.715Z, …) gcp.audit:google.iam.admin.v1.CreateServiceAccount:1iyadj0d5bcq\n"},
		{panther, Asset{Kind: "service-account", ID: "test-project-123456@appspot.gserviceaccount.com", Provider: "gcp", Account: "test-project-123456"},
			"exists=true [2023-05-23T19:27:42.492Z, …) gcp.audit:google.iam.admin.v1.CreateServiceAccount:xxxxxxxxxxxx\n"},
	} {
		if got := factLines(tc.inv.Facts(tc.asset, time.Time{})); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.asset.ID, got, tc.want)
		}
	}
	// Nothing else: the refused service accounts, the failed insert and
	// the delete of an unknown instance make no facts.
	if n := plaso.Len(); n != 5+4+1 {
		t.Errorf("plaso: %d facts, want 10", n)
	}
	if n := panther.Len(); n != 2+2+1+1 {
		t.Errorf("panther: %d facts, want 6", n)
	}
}

// TestAzureAssets: hand-written activity log records, as diagnostic
// settings export them: a VM's write logged started, accepted and
// succeeded makes one asset from its success, an update keeps it, its
// delete ends it at its success; a failed write makes nothing; ids in
// either case name one asset.
func TestAzureAssets(t *testing.T) {
	inv := observed(assetFixture(t, "azure_activity.jsonl"))
	const sub = "5f1c2b3a-7d4e-4a9b-8c6d-0e1f2a3b4c5d"
	const rg = "/subscriptions/" + sub + "/resourcegroups/web-rg/providers/"
	for _, tc := range []struct {
		asset Asset
		want  string
	}{
		{Asset{Kind: "instance", ID: rg + "microsoft.compute/virtualmachines/vm-web-1", Provider: "azure", Account: sub, Region: "westeurope"}, "" +
			"exists=true [2024-05-06T08:01:44.9876543Z, 2024-05-06T17:46:12.3Z) azure.activity:MICROSOFT.COMPUTE/VIRTUALMACHINES/WRITE\n" +
			"name=VM-WEB-1 [2024-05-06T08:01:44.9876543Z, 2024-05-06T17:46:12.3Z) azure.activity:MICROSOFT.COMPUTE/VIRTUALMACHINES/WRITE\n"},
		{Asset{Kind: "instance", ID: rg + "microsoft.compute/virtualmachines/vm-big", Provider: "azure"}, ""},
		{Asset{Kind: "public-ip", ID: rg + "microsoft.network/publicipaddresses/vm-web-1-ip", Provider: "azure", Account: sub, Region: "westeurope"}, "" +
			"exists=true [2024-05-06T07:59:30Z, 2024-05-06T17:47:00Z) azure.activity:MICROSOFT.NETWORK/PUBLICIPADDRESSES/WRITE\n" +
			"name=vm-web-1-ip [2024-05-06T07:59:30Z, 2024-05-06T17:47:00Z) azure.activity:MICROSOFT.NETWORK/PUBLICIPADDRESSES/WRITE\n"},
		{Asset{Kind: "network-interface", ID: rg + "microsoft.network/networkinterfaces/vm-web-1-nic", Provider: "azure", Account: sub, Region: "westeurope"}, "" +
			"exists=true [2024-05-06T07:59:40Z, …) azure.activity:MICROSOFT.NETWORK/NETWORKINTERFACES/WRITE\n" +
			"name=vm-web-1-nic [2024-05-06T07:59:40Z, …) azure.activity:MICROSOFT.NETWORK/NETWORKINTERFACES/WRITE\n"},
	} {
		got := inv.Facts(tc.asset, time.Time{})
		if text := factLines(got); text != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.asset.ID, text, tc.want)
		}
		for _, f := range got {
			if f.Asset != tc.asset {
				t.Errorf("%s: asset %+v", tc.asset.ID, f.Asset)
			}
		}
	}
	if got := inv.Lookup("VM-WEB-1", at("2024-05-06T12:00:00Z")); len(got) != 1 {
		t.Errorf("VM-WEB-1 by name: %+v", got)
	}
	if n := inv.Len(); n != 6 {
		t.Errorf("%d facts, want 6", n)
	}
}

// TestAzureAssetFixtures: published records. plaso's VM write and
// delete were logged only as started: nothing. Panther's: a VM deleted,
// then written (again) later the same day, exists from the write; a VM
// written; deletes of VMs never seen and the other operations make
// nothing.
func TestAzureAssetFixtures(t *testing.T) {
	if n := observed(events(t, "plaso-log-format-fixtures/test_data/jsonl/azure_activity_log.jsonl")).Len(); n != 0 {
		t.Errorf("plaso: %d facts from records only started", n)
	}
	inv := observed(events(t, "panther-analysis-rule-tests/azure_activity_rule_tests.jsonl"))
	for _, tc := range []struct {
		asset Asset
		want  string
	}{
		{Asset{Kind: "instance", ID: "/subscriptions/12345678-1234-1234-1234-123456789abc/resourcegroups/myresourcegroup/providers/microsoft.compute/virtualmachines/myvm", Provider: "azure", Account: "12345678-1234-1234-1234-123456789abc", Region: "westus"}, "" +
			"exists=true [2024-12-17T13:30:00Z, …) azure.activity:Microsoft.Compute/virtualMachines/write\n" +
			"name=myvm [2024-12-17T13:30:00Z, …) azure.activity:Microsoft.Compute/virtualMachines/write\n"},
		{Asset{Kind: "instance", ID: "/subscriptions/88888888-8888-8888-8888-888888888888/resourcegroups/compute-rg/providers/microsoft.compute/virtualmachines/app-vm", Provider: "azure", Account: "88888888-8888-8888-8888-888888888888"}, "" +
			"exists=true [2025-12-22T18:00:00Z, …) azure.activity:MICROSOFT.COMPUTE/VIRTUALMACHINES/WRITE\n" +
			"name=app-vm [2025-12-22T18:00:00Z, …) azure.activity:MICROSOFT.COMPUTE/VIRTUALMACHINES/WRITE\n"},
	} {
		if got := factLines(inv.Facts(tc.asset, time.Time{})); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.asset.ID, got, tc.want)
		}
	}
	if n := inv.Len(); n != 4 {
		t.Errorf("panther: %d facts, want 4", n)
	}
}

// TestAssetQuery: the search for the events that make assets is one the
// store runs.
func TestAssetQuery(t *testing.T) {
	q, err := query.Parse(AssetQuery)
	if err != nil {
		t.Fatal(query.Caret(AssetQuery, err))
	}
	if _, err := query.Compile(query.Request{Query: q, Scope: query.Scope{All: true}}, query.DuckDB); err != nil {
		t.Fatal(err)
	}
}
