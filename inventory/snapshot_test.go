package inventory

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// snapT parses an RFC 3339 time for a test.
func snapT(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

// readSnapFile reads a snapshot fixture.
func readSnapFile(t *testing.T, name string, at time.Time) *Snapshot {
	t.Helper()
	f, err := os.Open("testdata/snapshot/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, err := ReadSnapshot(f, name, at)
	if err != nil {
		t.Fatalf("ReadSnapshot(%s): %v", name, err)
	}
	return s
}

// importSnap reads fixtures into a new inventory, oldest first.
func importSnap(t *testing.T, at time.Time, names ...string) *Inventory {
	t.Helper()
	inv := NewInventory()
	for _, n := range names {
		inv.Import(readSnapFile(t, n, at))
	}
	return inv
}

// holderAt says which asset held an address at a time: its id, or "".
type holderAt struct {
	ip   string
	at   string
	want string
}

func checkHolders(t *testing.T, inv *Inventory, cases []holderAt) {
	t.Helper()
	for _, c := range cases {
		got, ok := inv.AssetAt(netip.MustParseAddr(c.ip), snapT(c.at))
		if (ok && got.ID != c.want) || (!ok && c.want != "") {
			t.Errorf("AssetAt(%s, %s) = %q %v, want %q", c.ip, c.at, got.ID, ok, c.want)
		}
	}
}

// attrsAt returns an asset's facts at t as attr=value, sorted.
func attrsAt(inv *Inventory, a Asset, t time.Time) []string {
	var out []string
	for _, f := range inv.Facts(a, t) {
		out = append(out, f.Attr+"="+f.Value)
	}
	slices.Sort(out)
	return out
}

var (
	instA = Asset{Kind: "instance", ID: "i-0aaa1111aaaa11111", Provider: "aws", Account: "123456789012", Region: "us-east-1"}
	instB = Asset{Kind: "instance", ID: "i-0bbb2222bbbb22222", Provider: "aws", Account: "123456789012", Region: "us-east-1"}
)

// TestConfigHistory: an AWS Config history, out of order: an instance
// discovered with a private and a public address, its public address
// changed, then deleted; another discovered later with the same private
// address. Each address has one answer at every time, exact at the
// boundaries.
func TestConfigHistory(t *testing.T) {
	s := readSnapFile(t, "config-history-instances.json", time.Time{})
	if st := s.Stats; st.Format != "aws-config" || st.Records != 4 || st.Assets != 2 || st.Skipped != 0 {
		t.Errorf("stats: %+v", st)
	}
	if !slices.IsSortedFunc(s.Facts, func(a, b Fact) int { return a.From.Compare(b.From) }) {
		t.Error("facts not ordered by From")
	}
	inv := NewInventory()
	inv.Import(s)
	checkHolders(t, inv, []holderAt{
		{"10.0.1.15", "2024-03-04T09:59:59.999Z", ""},
		{"10.0.1.15", "2024-03-04T10:00:00Z", instA.ID}, // discovered
		{"10.0.1.15", "2024-03-05T07:59:59.999Z", instA.ID},
		{"10.0.1.15", "2024-03-05T08:00:00Z", ""}, // deleted: [from, to)
		{"10.0.1.15", "2024-03-05T09:14:59.999Z", ""},
		{"10.0.1.15", "2024-03-05T09:15:00Z", instB.ID}, // the next holder
		{"10.0.1.15", "2025-01-01T00:00:00Z", instB.ID},
		{"10.0.1.16", "2024-03-05T09:15:00Z", instB.ID}, // a secondary address
		{"203.0.113.10", "2024-03-04T10:00:00Z", instA.ID},
		{"203.0.113.10", "2024-03-04T12:29:59.999Z", instA.ID},
		{"203.0.113.10", "2024-03-04T12:30:00Z", ""}, // changed
		{"203.0.113.77", "2024-03-04T12:29:59.999Z", ""},
		{"203.0.113.77", "2024-03-04T12:30:00Z", instA.ID},
		{"203.0.113.77", "2024-03-05T07:59:59Z", instA.ID},
		{"203.0.113.77", "2024-03-05T08:00:00Z", ""},
	})
	want := []string{
		"arn=arn:aws:ec2:us-east-1:123456789012:instance/i-0aaa1111aaaa11111", "exists=true", "image=ami-0c02fb55956c7d316",
		"private_ip=10.0.1.15", "public_ip=203.0.113.77", "subnet=subnet-0a1b2c3d4e5f60718",
		"tag:Name=web-1", "tag:team=payments", "type=t3.micro",
	}
	if got := attrsAt(inv, instA, snapT("2024-03-04T13:00:00Z")); !slices.Equal(got, want) {
		t.Errorf("instance A at 13:00:\n got %q\nwant %q", got, want)
	}
	if got := inv.Facts(instA, snapT("2024-03-05T08:00:00Z")); len(got) != 0 {
		t.Errorf("instance A has facts after its deletion: %v", got)
	}
	// Each fact names the item that began it.
	for _, f := range inv.Facts(instA, snapT("2024-03-04T10:00:00Z")) {
		if f.Source != "aws-config:config-history-instances.json:54" {
			t.Errorf("%s=%s from %q, want the discovery item's line", f.Attr, f.Value, f.Source)
		}
	}
}

// TestConfigFormats: the other shapes AWS Config items come in, and the
// resource types read.
func TestConfigFormats(t *testing.T) {
	t.Run("snapshot", func(t *testing.T) {
		// A ConfigSnapshot as delivered to S3: one line.
		inv := importSnap(t, time.Time{}, "config-snapshot.json")
		at := "2024-03-07T00:00:00Z"
		checkHolders(t, inv, []holderAt{
			{"10.0.2.40", at, "eni-0ccc3333cccc33333"},         // a Lambda's interface
			{"10.0.2.40", "2024-03-06T07:45:12.344Z", ""},      // captured to the millisecond
			{"10.0.1.15", at, ""},                              // an instance's interface lends it its address
			{"198.51.100.5", at, "eipalloc-0ddd4444dddd44444"}, // an idle Elastic IP
			{"198.51.100.6", at, ""},                           // one associated: the instance holds it
		})
		for _, c := range []struct {
			ref, kind, id string
		}{
			{"alice", "user", "arn:aws:iam::123456789012:user/alice"},
			{"arn:aws:iam::123456789012:user/alice", "user", "arn:aws:iam::123456789012:user/alice"},
			{"orders-api-lambda", "role", "arn:aws:iam::123456789012:role/orders-api-lambda"},
			{"arn:aws:lambda:us-east-1:123456789012:function:orders-api", "function", "orders-api"},
			{"example-orders-archive", "bucket", "example-orders-archive"},
			{"alerts", "sns-topic", "arn:aws:sns:us-east-1:123456789012:alerts"},
		} {
			found := inv.Lookup(c.ref, snapT(at))
			if len(found) != 1 || found[0].Asset.Kind != c.kind || found[0].Asset.ID != c.id || found[0].Asset.Provider != "aws" {
				t.Errorf("Lookup(%s) = %+v, want one %s %s", c.ref, found, c.kind, c.id)
			}
		}
	})
	t.Run("cli", func(t *testing.T) {
		// get-resource-config-history: newest first, the configuration a
		// string, times with fractions and +00:00, accountId and arn.
		s := readSnapFile(t, "config-cli.json", time.Time{})
		inv := NewInventory()
		inv.Import(s)
		a := Asset{Kind: "instance", ID: "i-0fff6666ffff66666", Provider: "aws", Account: "210987654321", Region: "eu-west-1"}
		checkHolders(t, inv, []holderAt{
			{"10.20.0.8", "2024-04-01T09:00:30.499Z", ""},
			{"10.20.0.8", "2024-04-01T09:00:30.5Z", a.ID},
			{"192.0.2.44", "2024-04-02T06:59:59Z", a.ID},
			{"192.0.2.44", "2024-04-02T07:00:00Z", ""},      // stopped and started without it
			{"10.20.0.8", "2024-04-03T18:20:00.249Z", a.ID}, // until terminated
			{"10.20.0.8", "2024-04-03T18:20:00.25Z", ""},
		})
		want := []string{"arn=arn:aws:ec2:eu-west-1:210987654321:instance/i-0fff6666ffff66666", "exists=true", "image=ami-0d71ea30463e0ff8d",
			"private_ip=10.20.0.8", "subnet=subnet-0c3d4e5f60718293a", "tag:Name=report-gen", "tag:env=prod", "type=m6i.large"}
		if got := attrsAt(inv, a, snapT("2024-04-02T08:00:00Z")); !slices.Equal(got, want) {
			t.Errorf("after the change:\n got %q\nwant %q", got, want)
		}
	})
	t.Run("lines", func(t *testing.T) {
		// Items one a line, with times in seconds; the bad lines cost only
		// themselves.
		s := readSnapFile(t, "config-items.ndjson", time.Time{})
		wantSkips := []SnapshotSkip{
			{2, "truncated JSON: unexpected end of input"},
			{5, `AWS::EC2::Instance i-0bad0000bad000000: configurationItemCaptureTime: not a time: "yesterday"`},
		}
		if s.Stats.Records != 3 || s.Stats.Skipped != 2 || !slices.Equal(s.Stats.Skips, wantSkips) {
			t.Errorf("stats: %+v", s.Stats)
		}
		inv := NewInventory()
		inv.Import(s)
		checkHolders(t, inv, []holderAt{
			{"192.0.2.99", "2024-04-02T08:00:00.499Z", ""},
			{"192.0.2.99", "2024-04-02T08:00:00.5Z", "eni-0abc7777abcd77777"}, // a NAT gateway's
			{"10.20.1.9", "2024-04-03T07:59:59Z", "eni-0abc7777abcd77777"},
			{"10.20.1.9", "2024-04-03T08:00:00Z", ""}, // ResourceDeletedNotRecorded
		})
		vpce := Asset{Kind: "ec2-vpc-endpoint", ID: "vpce-0123456789abcdef0", Provider: "aws", Account: "210987654321", Region: "eu-west-1"}
		if got := attrsAt(inv, vpce, snapT("2024-04-05T00:00:00Z")); !slices.Equal(got, []string{"exists=true"}) {
			t.Errorf("a resource not recorded: %q", got)
		}
	})
}

// TestConfigItems: what single items make, item by item.
func TestConfigItems(t *testing.T) {
	item := func(status, typ, conf string) string {
		return fmt.Sprintf(`{"configurationItemCaptureTime":"2024-01-02T03:04:05Z","configurationItemStatus":%q,"resourceType":%q,"resourceId":"r-1","awsAccountId":"123456789012","ARN":"arn:aws:x:::r-1","tags":{"k":"v"},"configuration":%s}`, status, typ, conf)
	}
	for _, c := range []struct {
		name, doc string
		kind      string
		want      []string // attr=value, sorted
		skip      string   // the reason, if skipped
	}{
		{"instance", item("OK", "AWS::EC2::Instance", `{"privateIpAddress":"10.0.0.1","publicIpAddress":"::ffff:192.0.2.1","instanceType":"t3.nano"}`),
			"instance", []string{"arn=arn:aws:x:::r-1", "exists=true", "private_ip=10.0.0.1", "public_ip=192.0.2.1", "tag:k=v", "type=t3.nano"}, ""},
		{"configuration as a string", item("OK", "AWS::EC2::Instance", `"{\"privateIpAddress\":\"10.0.0.1\"}"`),
			"instance", []string{"arn=arn:aws:x:::r-1", "exists=true", "private_ip=10.0.0.1", "tag:k=v"}, ""},
		{"no configuration", item("OK", "AWS::EC2::Instance", `null`),
			"instance", []string{"arn=arn:aws:x:::r-1", "exists=true", "tag:k=v"}, ""},
		{"terminated", item("OK", "AWS::EC2::Instance", `{"privateIpAddress":"10.0.0.1","state":{"code":48,"name":"terminated"}}`),
			"instance", nil, ""},
		{"not recorded", item("ResourceNotRecorded", "AWS::EC2::Instance", `null`),
			"instance", []string{"arn=arn:aws:x:::r-1", "exists=true"}, ""},
		{"discovered", item("ResourceDiscovered", "AWS::KMS::Key", `{}`),
			"key", []string{"arn=arn:aws:x:::r-1", "exists=true", "tag:k=v"}, ""},
		{"role by its ARN", item("OK", "AWS::IAM::Role", `{"roleName":"deployer"}`),
			"role", []string{"arn=arn:aws:x:::r-1", "exists=true", "name=deployer", "tag:k=v"}, ""},
		{"interface of no instance", item("OK", "AWS::EC2::NetworkInterface", `{"privateIpAddress":"10.0.0.2","association":{"publicIp":"192.0.2.2"},"attachment":{"instanceOwnerId":"amazon-elb"}}`),
			"network-interface", []string{"arn=arn:aws:x:::r-1", "exists=true", "private_ip=10.0.0.2", "public_ip=192.0.2.2", "tag:k=v"}, ""},
		{"interface of an instance", item("OK", "AWS::EC2::NetworkInterface", `{"privateIpAddress":"10.0.0.2","attachment":{"instanceId":"i-1"}}`),
			"network-interface", []string{"arn=arn:aws:x:::r-1", "exists=true", "tag:k=v"}, ""},
		{"bad address", item("OK", "AWS::EC2::Instance", `{"privateIpAddress":"10.0.0.256"}`),
			"", nil, `AWS::EC2::Instance r-1: bad private_ip "10.0.0.256"`},
		{"bad configuration", item("OK", "AWS::EC2::Instance", `{"networkInterfaces":"x"}`),
			"", nil, "AWS::EC2::Instance r-1: configuration: json: cannot unmarshal"},
		{"configuration not an object", item("OK", "AWS::EC2::Instance", `[1]`),
			"", nil, "AWS::EC2::Instance r-1: configuration: not an object"},
		{"unknown status", item("Recorded", "AWS::EC2::Instance", `{}`),
			"", nil, `AWS::EC2::Instance r-1: unknown configurationItemStatus "Recorded"`},
		{"not a resource type", item("OK", "EC2 Instance", `{}`),
			"", nil, "EC2 Instance r-1: not a resource type"},
		{"no resourceId", `{"configurationItemCaptureTime":"2024-01-02T03:04:05Z","resourceType":"AWS::S3::Bucket"}`,
			"", nil, "AWS::S3::Bucket : no resourceId"},
		{"no resourceType", `{"configurationItemCaptureTime":"2024-01-02T03:04:05Z","resourceId":"b"}`,
			"", nil, "configuration item b: no resourceType"},
		{"no time", `{"configurationItemCaptureTime":null,"resourceType":"AWS::S3::Bucket","resourceId":"b"}`,
			"", nil, "AWS::S3::Bucket b: configurationItemCaptureTime: none"},
		{"bad tags", `{"configurationItemCaptureTime":"2024-01-02T03:04:05Z","resourceType":"AWS::S3::Bucket","resourceId":"b","tags":{"k":{"x":1}}}`,
			"", nil, `AWS::S3::Bucket b: tags: tag "k": not a string`},
		{"mistyped field", `{"configurationItemCaptureTime":"2024-01-02T03:04:05Z","resourceType":"AWS::S3::Bucket","resourceId":5}`,
			"", nil, "AWS::S3::Bucket : json: cannot unmarshal number"},
	} {
		t.Run(c.name, func(t *testing.T) {
			// A good item after it, so that the file is never wholly bad.
			doc := "[" + c.doc + `,{"configurationItemCaptureTime":"2024-01-01T00:00:00Z","resourceType":"AWS::S3::Bucket","resourceId":"other"}]`
			s, err := ReadSnapshot(strings.NewReader(doc), "t", time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			if c.skip != "" {
				if s.Stats.Skipped != 1 || !strings.HasPrefix(s.Stats.Skips[0].Reason, c.skip) {
					t.Errorf("skips %+v, want %q", s.Stats.Skips, c.skip)
				}
				return
			}
			if s.Stats.Skipped != 0 {
				t.Fatalf("skipped: %+v", s.Stats.Skips)
			}
			var got []string
			for _, f := range s.Facts {
				if f.Asset.ID == "other" {
					continue
				}
				if f.Asset.Kind != c.kind {
					t.Errorf("kind %q, want %q", f.Asset.Kind, c.kind)
				}
				got = append(got, f.Attr+"="+f.Value)
			}
			slices.Sort(got)
			if !slices.Equal(got, c.want) {
				t.Errorf("got  %q\nwant %q", got, c.want)
			}
		})
	}
}

// TestConfigKinds: resource types become the inventory's kinds.
func TestConfigKinds(t *testing.T) {
	for typ, want := range map[string]string{
		"AWS::EC2::Instance":                 "instance",
		"AWS::EC2::NetworkInterface":         "network-interface",
		"AWS::IAM::User":                     "user",
		"AWS::IAM::Role":                     "role",
		"AWS::Lambda::Function":              "function",
		"AWS::S3::Bucket":                    "bucket",
		"AWS::EC2::EIP":                      "elastic-ip",
		"AWS::SNS::Topic":                    "sns-topic",
		"AWS::EC2::VPCEndpoint":              "ec2-vpc-endpoint",
		"AWS::EKS::Cluster":                  "eks-cluster",
		"AWS::SSM::ManagedInstanceInventory": "ssm-managed-instance-inventory",
		"AWS::ECR::PublicRepository":         "ecr-public-repository",
		"AWS::EC2::IPAM":                     "ec2-ipam",
		"AWS::Route53Resolver::ResolverRule": "route53resolver-resolver-rule",
		"AWS::EC2":                           "",
		"AWS::::Thing":                       "",
		"Instance":                           "",
	} {
		got, ok := configKind(typ)
		if got != want || ok != (want != "") {
			t.Errorf("configKind(%q) = %q %v, want %q", typ, got, ok, want)
		}
	}
}

// TestSnapshotTimes: the times rows and items may carry.
func TestSnapshotTimes(t *testing.T) {
	for s, want := range map[string]string{
		"2024-03-04T10:00:00Z":             "2024-03-04T10:00:00Z",
		"2024-03-04T10:00:00.123000+00:00": "2024-03-04T10:00:00.123Z",
		"2024-03-04T11:00:00+01:00":        "2024-03-04T10:00:00Z",
		"2024-03-04T10:00:00":              "2024-03-04T10:00:00Z",
		"2024-03-04 10:00:00":              "2024-03-04T10:00:00Z",
		"2024-03-04":                       "2024-03-04T00:00:00Z",
		"1709546400":                       "2024-03-04T10:00:00Z",
		"1709546400.25":                    "2024-03-04T10:00:00.25Z",
		"1709546400250":                    "2024-03-04T10:00:00.25Z", // milliseconds
		"1.70954640025e9":                  "2024-03-04T10:00:00.25Z",
		"0001-01-01T00:00:00Z":             "", // would not write out as a Fact
		"-1709546400":                      "",
		"2024":                             "",
		"last tuesday":                     "",
		"NaN":                              "",
	} {
		got, err := parseSnapTime(s)
		if want == "" {
			if err == nil {
				t.Errorf("parseSnapTime(%q) = %v, want an error", s, got)
			}
			continue
		}
		if err != nil || !got.Equal(snapT(want)) || got.Location() != time.UTC {
			t.Errorf("parseSnapTime(%q) = %v %v, want %s", s, got, err, want)
		}
	}
	// Items from the API give their times in seconds.
	doc := `{"configurationItemCaptureTime":1709546400.125,"resourceType":"AWS::S3::Bucket","resourceId":"b"}`
	s, err := ReadSnapshot(strings.NewReader(doc), "t", time.Time{})
	if err != nil || len(s.Facts) == 0 || !s.Facts[0].From.Equal(snapT("2024-03-04T10:00:00.125Z")) {
		t.Errorf("a time in seconds: %v %v", s, err)
	}
}

var snapAt = snapT("2024-05-01T00:00:00Z")

// TestCSVSnapshot: a CMDB export, with bad rows skipped and counted by
// line.
func TestCSVSnapshot(t *testing.T) {
	s := readSnapFile(t, "assets.csv", snapAt)
	wantSkips := []SnapshotSkip{
		{7, `bad private_ip "10.1.0.300"`},
		{8, "no id"},
		{9, "15 fields, where the header has 14"},
	}
	if st := s.Stats; st.Format != "csv" || st.Records != 5 || st.Assets != 5 || st.Skipped != 3 ||
		!slices.Equal(st.Skips, wantSkips) || !slices.Equal(st.Ignored, []string{"decommissioned_by"}) {
		t.Errorf("stats: %+v", st)
	}
	inv := NewInventory()
	inv.Import(s)
	api1 := Asset{Kind: "instance", ID: "i-0123456789abcdef0", Provider: "aws", Account: "123456789012", Region: "us-east-1"}
	want := []string{"environment=prod", "exists=true", "image=ami-0c02fb55956c7d316", "name=api-1", "owner=payments",
		"private_ip=10.1.0.10", "public_ip=198.51.100.20", "tag:CostCenter=cc-100", "type=m6i.large"}
	if got := attrsAt(inv, api1, snapAt); !slices.Equal(got, want) {
		t.Errorf("api-1:\n got %q\nwant %q", got, want)
	}
	if got := inv.Facts(api1, snapAt.Add(-time.Nanosecond)); len(got) != 0 {
		t.Errorf("facts before the snapshot: %v", got)
	}
	checkHolders(t, inv, []holderAt{
		{"10.1.0.11", "2024-05-01T00:00:00Z", "i-0123456789abcdef1"}, // several in a cell
		{"10.1.0.12", "2024-05-01T00:00:00Z", "i-0123456789abcdef1"},
		{"10.1.0.13", "2024-05-01T00:00:00Z", "i-0123456789abcdef2"}, // the kind told by the id
		{"10.2.0.4", "2024-05-01T00:00:00Z", "/subscriptions/6f1c2b3a-0000-4000-8000-0123456789ab/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/vm1"},
		{"10.1.0.16", "2024-05-01T00:00:00Z", "i-0123456789abcdef5"}, // quoted cells
	})
	for _, c := range []struct{ ref, provider, kind string }{
		{"api-2", "aws", "instance"}, // no provider: an AWS account
		{"worker-1", "aws", "instance"},
		{"vm1", "azure", "vm"},
		{"quoted, name", "aws", "instance"},
		{"bad-ip", "", ""}, // skipped
	} {
		found := inv.Lookup(c.ref, snapAt)
		if c.kind == "" {
			if len(found) != 0 {
				t.Errorf("Lookup(%q) = %+v, want none", c.ref, found)
			}
			continue
		}
		if len(found) != 1 || found[0].Asset.Provider != c.provider || found[0].Asset.Kind != c.kind {
			t.Errorf("Lookup(%q) = %+v", c.ref, found)
		}
	}
}

// TestJSONSnapshot: rows as JSON, taken after the CSV: a later row without
// the public address ends it; a row with an end gives a closed fact; a
// Fact is taken as it is.
func TestJSONSnapshot(t *testing.T) {
	data, err := os.ReadFile("testdata/snapshot/assets.json")
	if err != nil {
		t.Fatal(err)
	}
	s := readSnapFile(t, "assets.json", snapAt)
	// The skipped elements' lines are where they begin.
	lineOf := func(sub string) int {
		i := strings.Index(string(data), sub)
		return strings.Count(string(data[:i]), "\n") + 1
	}
	wantSkips := []SnapshotSkip{
		{lineOf(`{"kind": "instance", "id": "i-0123456789abcdef9"`), `time: not a time: "last tuesday"`},
		{lineOf(`"not an object"`), `not a JSON object: "not an object"`},
	}
	if st := s.Stats; st.Format != "json" || st.Records != 4 || st.Skipped != 2 || !slices.Equal(st.Skips, wantSkips) ||
		!slices.Equal(st.Ignored, []string{"notes"}) {
		t.Errorf("stats: %+v, want skips %+v", st, wantSkips)
	}
	inv := importSnap(t, snapAt, "config-history-instances.json", "assets.csv", "assets.json")
	checkHolders(t, inv, []holderAt{
		{"198.51.100.20", "2024-05-03T05:59:59Z", "i-0123456789abcdef0"},
		{"198.51.100.20", "2024-05-03T06:00:00Z", ""}, // released, says the later row
		{"10.1.0.10", "2024-05-03T06:00:00Z", "i-0123456789abcdef0"},
		{"203.0.113.150", "2024-05-02T06:00:00Z", "gke-prod-pool-1-3f2a"},
		{"10.128.0.7", "2024-05-02T05:59:59Z", ""},
		// A row with an end, before AWS Config saw the instance.
		{"10.0.1.15", "2024-03-04T08:59:59Z", ""},
		{"10.0.1.15", "2024-03-04T09:00:00Z", instA.ID},
		{"10.0.1.15", "2024-03-04T10:30:00Z", instA.ID},
	})
	// The later row said nothing of the name or owner: they go on.
	api1 := Asset{Kind: "instance", ID: "i-0123456789abcdef0", Provider: "aws", Account: "123456789012"}
	if got := attrsAt(inv, api1, snapT("2024-05-04T00:00:00Z")); !slices.Contains(got, "owner=payments") || slices.Contains(got, "public_ip=198.51.100.20") {
		t.Errorf("api-1 after the JSON: %q", got)
	}
	gke := inv.Lookup("gke-prod-pool-1-3f2a", snapT("2024-05-02T06:00:00Z"))
	if len(gke) != 1 || gke[0].Asset.Provider != "gcp" || gke[0].Asset.Account != "shop-prod-1234" ||
		!slices.Contains(attrsAt(inv, gke[0].Asset, snapT("2024-05-02T06:00:00Z")), "tag:team=platform") {
		t.Errorf("the GKE node: %+v", gke)
	}
	bob := inv.Who("bob", snapT("2024-02-01T00:00:00Z"))
	if len(bob) != 1 || bob[0].Source != "cloudtrail:CreateUser:0f1e2d3c" || bob[0].Asset.Kind != "user" {
		t.Errorf("the fact taken as it is: %+v", bob)
	}
}

// TestSnapshotRows: rows' columns and times, row by row.
func TestSnapshotRows(t *testing.T) {
	for _, c := range []struct {
		name, doc string
		want      []string // kind/id attr=value [from,to), sorted
		skips     []SnapshotSkip
	}{
		{"history of rows", "id,time,public_ip\ni-1,2024-01-01,192.0.2.1\ni-1,2024-01-03,\ni-1,2024-01-02,192.0.2.1",
			[]string{"instance/i-1 exists=true [2024-01-01,-)", "instance/i-1 public_ip=192.0.2.1 [2024-01-01,2024-01-03)"}, nil},
		{"an address a row", "kind,id,private_ip\ninstance,i-1,10.0.0.1\ninstance,i-1,10.0.0.2",
			[]string{"instance/i-1 exists=true [2024-05-01,-)", "instance/i-1 private_ip=10.0.0.1 [2024-05-01,-)", "instance/i-1 private_ip=10.0.0.2 [2024-05-01,-)"}, nil},
		{"deleted", "id,time,status,private_ip\ni-1,2024-01-01,running,10.0.0.1\ni-1,2024-01-02,terminated,10.0.0.1",
			[]string{"instance/i-1 exists=true [2024-01-01,2024-01-02)", "instance/i-1 private_ip=10.0.0.1 [2024-01-01,2024-01-02)"}, nil},
		{"made and deleted at once", "id,private_ip,status\ni-1,10.0.0.1,\ni-1,,deleted\ni-2,10.0.0.2,",
			[]string{"instance/i-2 exists=true [2024-05-01,-)", "instance/i-2 private_ip=10.0.0.2 [2024-05-01,-)"}, nil},
		{"an end", "id,from,to,private_ip\ni-1,2024-01-01,2024-01-02,10.0.0.1",
			[]string{"instance/i-1 private_ip=10.0.0.1 [2024-01-01,2024-01-02)"}, nil},
		{"tags", "id,tags,Tag:Owner\ni-1,a=1; b = 2 ,x\ni-2,\"{\"\"c\"\":\"\"3\"\"}\",",
			[]string{"instance/i-1 exists=true [2024-05-01,-)", "instance/i-1 tag:Owner=x [2024-05-01,-)", "instance/i-1 tag:a=1 [2024-05-01,-)", "instance/i-1 tag:b=2 [2024-05-01,-)",
				"instance/i-2 exists=true [2024-05-01,-)", "instance/i-2 tag:c=3 [2024-05-01,-)"}, nil},
		{"tabs, resource types, ARNs", "Resource Type\tResource ID\n" +
			"AWS::IAM::Role\tarn:aws:iam::123456789012:role/x\n\tarn:aws:iam::123456789012:user/y\n\tarn:aws:s3:::z",
			[]string{"bucket/arn:aws:s3:::z exists=true [2024-05-01,-)", "role/arn:aws:iam::123456789012:role/x exists=true [2024-05-01,-)",
				"user/arn:aws:iam::123456789012:user/y exists=true [2024-05-01,-)"}, nil},
		{"bad rows", "id,kind,time,to,tags\n,instance,,,\nx-1,,,,\ni-1,,soon,,\ni-1,,2024-01-02,2024-01-01,\ni-1,,,,a\ni\"2,,,,\ni-3,,,,",
			[]string{"instance/i-3 exists=true [2024-05-01,-)"},
			[]SnapshotSkip{{2, "no id"}, {3, `no kind, and the id "x-1" tells none`}, {4, `time: not a time: "soon"`},
				{5, "to is not after the time"}, {6, `tags: want key=value, not "a"`}, {7, `bad CSV: bare " in non-quoted-field`}}},
		{"JSON rows", `[{"id":"i-1","private_ips":["10.0.0.1","10.0.0.2"],"tags":[{"Key":"k","Value":"v"}],"type":7},` + "\n" +
			`{"id":"i-2","public_ip":{"x":1}},{"id":"i-3","time":"2024-01-01T00:00:00Z","to":"2024-01-02T00:00:00Z","public_ip":"192.0.2.3"}]`,
			[]string{"instance/i-1 exists=true [2024-05-01,-)", "instance/i-1 private_ip=10.0.0.1 [2024-05-01,-)", "instance/i-1 private_ip=10.0.0.2 [2024-05-01,-)",
				"instance/i-1 tag:k=v [2024-05-01,-)", "instance/i-1 type=7 [2024-05-01,-)", "instance/i-3 public_ip=192.0.2.3 [2024-01-01,2024-01-02)"},
			[]SnapshotSkip{{2, `public_ip: not a string: {"x":1}`}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := ReadSnapshot(strings.NewReader(c.doc), "t", snapAt)
			if err != nil {
				t.Fatal(err)
			}
			day := func(t time.Time) string {
				if t.IsZero() {
					return "-"
				}
				return t.Format(time.DateOnly)
			}
			var got []string
			for _, f := range s.Facts {
				got = append(got, fmt.Sprintf("%s/%s %s=%s [%s,%s)", f.Asset.Kind, f.Asset.ID, f.Attr, f.Value, day(f.From), day(f.To)))
			}
			slices.Sort(got)
			if !slices.Equal(got, c.want) {
				t.Errorf("got\n\t%s\nwant\n\t%s", strings.Join(got, "\n\t"), strings.Join(c.want, "\n\t"))
			}
			if !slices.Equal(s.Stats.Skips, c.skips) {
				t.Errorf("skips %+v\nwant %+v", s.Stats.Skips, c.skips)
			}
		})
	}
}

// TestSnapshotProvider: a row that names no cloud is AWS's when its id
// has the shape of an id EC2 gives, or its account an AWS account's, as
// the events that name the asset say; else it names none.
func TestSnapshotProvider(t *testing.T) {
	doc := "kind,id,account\ninstance,i-0317f6c6b66ae9c40,\n,eni-0a1b2c3d4e5f60718,\nvm,web-1,\ninstance,i-1,\nvm,web-2,123456789012\n"
	s, err := ReadSnapshot(strings.NewReader(doc), "t", snapAt)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, f := range s.Facts {
		got[f.Asset.ID] = f.Asset.Provider
	}
	want := map[string]string{"i-0317f6c6b66ae9c40": "aws", "eni-0a1b2c3d4e5f60718": "aws", "web-1": "", "i-1": "", "web-2": "aws"}
	if !maps.Equal(got, want) {
		t.Errorf("providers %v, want %v", got, want)
	}
}

// TestImport: a snapshot set against what the logs said.
func TestImport(t *testing.T) {
	a := Asset{Kind: "instance", ID: "i-1", Provider: "aws", Account: "123456789012"}
	t0 := snapT("2024-06-01T00:00:00Z")
	h := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Hour) }
	csvAt := func(at time.Time, row string) *Snapshot {
		s, err := ReadSnapshot(strings.NewReader("id,account,private_ip,public_ip\n"+row), "t", at)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	for _, c := range []struct {
		name string
		logs func(inv *Inventory) // what the audit logs said
		snap []*Snapshot
		want []holderAt
	}{
		{
			// The logs saw an address given after the snapshot was taken:
			// the snapshot, without it, does not end it.
			name: "a change after the snapshot",
			logs: func(inv *Inventory) {
				inv.Add(Fact{Asset: a, Attr: "exists", Value: "true", From: h(0)})
				inv.Add(Fact{Asset: a, Attr: "public_ip", Value: "192.0.2.9", From: h(5)})
			},
			snap: []*Snapshot{csvAt(h(3), "i-1,123456789012,10.0.0.1,")},
			want: []holderAt{{"192.0.2.9", "2024-06-01T06:00:00Z", "i-1"}, {"10.0.0.1", "2024-06-01T03:00:00Z", "i-1"}},
		},
		{
			// An address the logs gave and the snapshot no longer has ends
			// when the snapshot was taken.
			name: "an address gone by the snapshot",
			logs: func(inv *Inventory) {
				inv.Add(Fact{Asset: a, Attr: "public_ip", Value: "192.0.2.9", From: h(1)})
			},
			snap: []*Snapshot{csvAt(h(3), "i-1,123456789012,10.0.0.1,")},
			want: []holderAt{{"192.0.2.9", "2024-06-01T02:59:59Z", "i-1"}, {"192.0.2.9", "2024-06-01T03:00:00Z", ""}},
		},
		{
			// A snapshot taken before the logs saw the instance end does
			// not bring it back.
			name: "no resurrection",
			logs: func(inv *Inventory) {
				inv.Add(Fact{Asset: a, Attr: "private_ip", Value: "10.0.0.1", From: h(0)})
				inv.End(a, "", h(5))
			},
			snap: []*Snapshot{csvAt(h(2), "i-1,123456789012,10.0.0.1,")},
			want: []holderAt{{"10.0.0.1", "2024-06-01T04:59:59Z", "i-1"}, {"10.0.0.1", "2024-06-01T05:00:00Z", ""}, {"10.0.0.1", "2024-06-02T00:00:00Z", ""}},
		},
		{
			// A history's deletion ends the fact the logs began.
			name: "ended by a later deletion",
			logs: func(inv *Inventory) {
				inv.Add(Fact{Asset: a, Attr: "private_ip", Value: "10.0.0.1", From: h(0)})
				inv.Add(Fact{Asset: a, Attr: "owner", Value: "data", From: h(0)})
			},
			snap: []*Snapshot{mustSnap(t, "id,account,time,status,private_ip\ni-1,123456789012,2024-06-01T01:00:00Z,running,10.0.0.1\ni-1,123456789012,2024-06-01T04:00:00Z,terminated,")},
			want: []holderAt{{"10.0.0.1", "2024-06-01T03:59:59Z", "i-1"}, {"10.0.0.1", "2024-06-01T04:00:00Z", ""}},
		},
		{
			// Snapshots one after another: each ends what the one before
			// said and it does not.
			name: "snapshots in turn",
			snap: []*Snapshot{csvAt(h(1), "i-1,123456789012,10.0.0.1,192.0.2.1"), csvAt(h(2), "i-1,123456789012,10.0.0.1,192.0.2.2"), csvAt(h(3), "i-1,123456789012,10.0.0.2,")},
			want: []holderAt{
				{"192.0.2.1", "2024-06-01T01:59:59Z", "i-1"}, {"192.0.2.1", "2024-06-01T02:00:00Z", ""},
				{"192.0.2.2", "2024-06-01T02:00:00Z", "i-1"}, {"192.0.2.2", "2024-06-01T03:00:00Z", ""},
				{"10.0.0.1", "2024-06-01T02:59:59Z", "i-1"}, {"10.0.0.1", "2024-06-01T03:00:00Z", ""},
				{"10.0.0.2", "2024-06-01T03:00:00Z", "i-1"},
			},
		},
		{
			// An open fact the logs have begin again later holds until
			// then: one fact at a time.
			name: "met by a later fact",
			logs: func(inv *Inventory) {
				inv.Add(Fact{Asset: a, Attr: "private_ip", Value: "10.0.0.1", From: h(4)})
			},
			snap: []*Snapshot{csvAt(h(1), "i-1,123456789012,10.0.0.1,")},
			want: []holderAt{{"10.0.0.1", "2024-06-01T01:00:00Z", "i-1"}, {"10.0.0.1", "2024-06-01T05:00:00Z", "i-1"}},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			inv := NewInventory()
			if c.logs != nil {
				c.logs(inv)
			}
			for _, s := range c.snap {
				inv.Import(s)
			}
			checkHolders(t, inv, c.want)
			// Nothing held twice at once.
			all := inv.Facts(a, time.Time{})
			for i, f := range all {
				for _, g := range all[i+1:] {
					if f.Attr == g.Attr && f.Value == g.Value && overlap(f, g) {
						t.Errorf("%s=%s held twice: [%v, %v) and [%v, %v)", f.Attr, f.Value, f.From, f.To, g.From, g.To)
					}
				}
			}
			// A snapshot imported again changes nothing.
			n := inv.Len()
			for _, s := range c.snap {
				inv.Import(s)
			}
			if inv.Len() != n {
				t.Errorf("imported again: %d facts, were %d", inv.Len(), n)
			}
			checkHolders(t, inv, c.want)
		})
	}
}

func mustSnap(t *testing.T, doc string) *Snapshot {
	t.Helper()
	s, err := ReadSnapshot(strings.NewReader(doc), "t", snapAt)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func overlap(f, g Fact) bool {
	end := func(x Fact) time.Time {
		if x.To.IsZero() {
			return time.Unix(1<<40, 0)
		}
		return x.To
	}
	return f.From.Before(end(g)) && g.From.Before(end(f))
}

// TestImportWithLogs: AWS Config history imported over what CloudTrail
// said: facts the logs began go on, and end where AWS Config ends them.
func TestImportWithLogs(t *testing.T) {
	inv := NewInventory()
	// RunInstances was logged a little before AWS Config's discovery.
	launch := snapT("2024-03-04T09:59:41Z")
	inv.Add(Fact{Asset: instA, Attr: "exists", Value: "true", From: launch, Source: "cloudtrail:RunInstances:1"})
	inv.Add(Fact{Asset: instA, Attr: "private_ip", Value: "10.0.1.15", From: launch, Source: "cloudtrail:RunInstances:1"})
	inv.Add(Fact{Asset: instA, Attr: "public_ip", Value: "203.0.113.10", From: launch, Source: "cloudtrail:RunInstances:1"})
	inv.Import(readSnapFile(t, "config-history-instances.json", time.Time{}))
	checkHolders(t, inv, []holderAt{
		{"10.0.1.15", "2024-03-04T09:59:41Z", instA.ID}, // from the logs' time
		{"203.0.113.10", "2024-03-04T12:29:59Z", instA.ID},
		{"203.0.113.10", "2024-03-04T12:30:00Z", ""},
		{"10.0.1.15", "2024-03-05T07:59:59Z", instA.ID},
		{"10.0.1.15", "2024-03-05T08:00:00Z", ""},
		{"10.0.1.15", "2024-03-05T09:15:00Z", instB.ID},
	})
	for _, f := range inv.Who("10.0.1.15", time.Time{}) {
		if f.Asset == instA && (f.Source != "cloudtrail:RunInstances:1" || !f.To.Equal(snapT("2024-03-05T08:00:00Z"))) {
			t.Errorf("the logs' fact: %+v", f)
		}
	}
	if n := len(inv.Who("10.0.1.15", time.Time{})); n != 2 {
		t.Errorf("10.0.1.15 has %d facts, want the logs' and instance B's", n)
	}
}

// TestSnapshotErrors: what is not a snapshot, or is broken, is an error
// naming the file and line.
func TestSnapshotErrors(t *testing.T) {
	for _, c := range []struct {
		name, doc string
		err       string // a regular expression
	}{
		{"empty", "", `^f: empty snapshot$`},
		{"blank", " \n\t\n", `^f: empty snapshot$`},
		{"HTML", "<html><body>403 Forbidden</body></html>", `^f:1: not a snapshot: the CSV header names no id column`},
		{"binary", "\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03", `^f:1: not a snapshot: the CSV header names no id column`},
		{"a NUL first", "\x00\n\ni", `^f:1: not a snapshot: the CSV header names no id column`}, // it once looped for ever
		{"a header after blank lines", "\n\nname,owner\nx,y\n", `^f:3: not a snapshot: the CSV header names no id column`},
		{"a broken header", "id,\"kind\n", `^f:1: not a snapshot: bad CSV header`},
		{"only comments", "# nothing\n", `^f: no CSV header$`},
		{"truncated", `{"fileVersion":"1.0","configurationItems":[{"configurationItemCaptureTime":"2024-01-01T00:00:00Z","resourceType":"AWS::S3::Bucket","resourceId":"b"},{"configurationItemCap`,
			`^f:1: truncated JSON: unexpected end of input$`},
		{"truncated between items", "{\"configurationItems\":[\n{\"configurationItemCaptureTime\":\"2024-01-01T00:00:00Z\",\"resourceType\":\"AWS::S3::Bucket\",\"resourceId\":\"b\"},\n",
			`^f:3: truncated JSON`},
		{"broken within an item", "{\"configurationItems\": [\n  {\n    \"resourceId\": \"b\",\n    \"tags\": {\"a\" \"b\"}\n  }\n]}",
			`^f:4: bad JSON: invalid character '"' after object key`},
		{"broken between items", "[\n{\"id\":\"i-1\"}\n{\"id\":\"i-2\"}]", `^f:3: bad JSON: expected comma after array element$`},
		{"items not a list", `{"configurationItems": {"resourceId": "x"}}`, `^f:1: configurationItems is not an array$`},
		{"a string", `["a", 1, null]`, `^f:1: no asset read from 3 records, the first: not a JSON object: "a"$`},
		{"not a snapshot's JSON", `{"Version": "2012-10-17", "Statement": []}`, `^f:1: no asset read from 1 records, the first: no id$`},
		{"bad lines only", "{\"id\": \"x-1\"}\n{\"id\": \n", `^f:1: no asset read from 2 records, the first: no kind`},
		{"bad rows only", "id,private_ip\ni-1,10.0.0.999\n", `^f:2: no asset read from 1 records, the first: bad private_ip "10.0.0.999"$`},
		{"JSON at the top level", "[]\n\"x\"", `^f:2: not a snapshot: x at the top level$`},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := ReadSnapshot(strings.NewReader(c.doc), "f", snapAt)
			if err == nil {
				t.Fatalf("no error: %+v", s.Stats)
			}
			if !regexp.MustCompile(c.err).MatchString(err.Error()) {
				t.Errorf("error %q, want %s", err, c.err)
			}
		})
	}
	// Empty lists are snapshots of nothing, not errors.
	for _, doc := range []string{`{"fileVersion":"1.0","configurationItems":[]}`, "[]", "id,kind\n", `{"configurationItems":null,"nextToken":"x"}`} {
		if s, err := ReadSnapshot(strings.NewReader(doc), "f", snapAt); err != nil || len(s.Facts) != 0 {
			t.Errorf("%s: %v %v", doc, s, err)
		}
	}
}

// TestSnapshotBounds: huge files, lines and values, whatever the reader.
func TestSnapshotBounds(t *testing.T) {
	defer func(b, i int64) { maxSnapshotBytes, maxSnapshotItem = b, i }(maxSnapshotBytes, maxSnapshotItem)
	maxSnapshotBytes, maxSnapshotItem = 4096, 256
	item := `{"configurationItemCaptureTime":"2024-01-01T00:00:00Z","resourceType":"AWS::S3::Bucket","resourceId":"b"}`
	big := `{"configurationItemCaptureTime":"2024-01-01T00:00:00Z","resourceType":"AWS::S3::Bucket","resourceId":"` + strings.Repeat("x", 300) + `"}`
	items := strings.Repeat(item+",", 37) + item // 4027 bytes
	for _, c := range []struct {
		name, doc string
		err       string
		skips     []SnapshotSkip
	}{
		{"a file too large", "[" + strings.Repeat(item+",", 40) + item + "]", `^f: larger than 4096 bytes$`, nil},
		{"exactly the bound", "[" + items + strings.Repeat(" ", 4096-len(items)-2) + "]", "", nil},
		{"a byte over", "[" + items + strings.Repeat(" ", 4097-len(items)-2) + "]", `^f: larger than 4096 bytes$`, nil},
		{"too much space", "[" + item + "," + strings.Repeat(" ", 300) + item + "]", `^f:1: a JSON value larger than 256 bytes$`, nil},
		{"a CSV file too large", "id\n" + strings.Repeat("i-1\n", 1100), `^f: larger than 4096 bytes$`, nil},
		{"a value too large", "[" + item + ",\n" + big + "]", `^f:2: a JSON value larger than 256 bytes$`, nil},
		{"an object too large", `{"a":"` + strings.Repeat("x", 200) + `","b":"` + strings.Repeat("x", 200) + `"}`, `^f:1: a JSON value larger than 256 bytes$`, nil},
		{"a key too large", `{"` + strings.Repeat("x", 300) + `":1}`, `^f:1: a JSON value larger than 256 bytes$`, nil},
		{"a CSV line too long", "id,name\ni-1," + strings.Repeat("x", 300) + "\ni-2,y\n", `^f:2: a line longer than 256 bytes$`, nil},
		{"a JSON line too long", item + "\n" + big + "\n" + item + "\n", "", []SnapshotSkip{{2, "a line longer than 256 bytes"}}},
		{"a wrapper larger than an item", `{"configurationItems":[` + strings.Repeat(item+",", 10) + item + `]}`, "", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := ReadSnapshot(strings.NewReader(c.doc), "f", snapAt)
			if c.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(s.Stats.Skips, c.skips) {
					t.Errorf("skips %+v, want %+v", s.Stats.Skips, c.skips)
				}
				return
			}
			if err == nil || !regexp.MustCompile(c.err).MatchString(err.Error()) {
				t.Errorf("error %v, want %s", err, c.err)
			}
		})
	}
}

// TestSnapshotSkipsBounded: a file of many bad rows keeps the first few
// reasons and counts them all.
func TestSnapshotSkipsBounded(t *testing.T) {
	doc := "id,private_ip\ni-0,10.0.0.1\n" + strings.Repeat("i-1,bad\n", 100)
	s, err := ReadSnapshot(strings.NewReader(doc), "f", snapAt)
	if err != nil {
		t.Fatal(err)
	}
	if s.Stats.Skipped != 100 || len(s.Stats.Skips) != maxSnapshotSkips || s.Stats.Skips[9].Line != 12 {
		t.Errorf("stats: %+v", s.Stats)
	}
}

// TestSnapshotFactsJSON: a snapshot's facts write out as JSON and read
// back as a snapshot of the same facts.
func TestSnapshotFactsJSON(t *testing.T) {
	s := readSnapFile(t, "config-history-instances.json", time.Time{})
	var b strings.Builder
	for _, f := range s.Facts {
		line, err := json.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	back, err := ReadSnapshot(strings.NewReader(b.String()), "facts.ndjson", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(back.Facts) != len(s.Facts) {
		t.Fatalf("%d facts back, want %d", len(back.Facts), len(s.Facts))
	}
	for i := range s.Facts {
		if got, want := back.Facts[i], s.Facts[i]; got != want {
			t.Errorf("fact %d:\n got %+v\nwant %+v", i, got, want)
		}
	}
}
