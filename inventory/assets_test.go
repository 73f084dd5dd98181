package inventory

import (
	"bufio"
	"encoding/json"
	"net/netip"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/parse"
)

// TestAddressReuse: an address held by one instance, then by another
// after the first was terminated, has one answer at every time, exact at
// the boundaries; a late, skewed termination does not end the next
// holder's facts.
func TestAddressReuse(t *testing.T) {
	t0 := time.Date(2023, 7, 10, 11, 0, 0, 0, time.UTC)
	inv := NewInventory()
	a := Asset{Kind: "instance", ID: "i-aaaaaaaaaaaaaaaaa", Provider: "aws", Account: "1"}
	b := Asset{Kind: "instance", ID: "i-bbbbbbbbbbbbbbbbb", Provider: "aws", Account: "1"}
	inv.Add(Fact{Asset: a, Attr: "exists", Value: "true", From: t0})
	inv.Add(Fact{Asset: a, Attr: "private_ip", Value: "10.0.3.7", From: t0})
	inv.End(a, "", t0.Add(40*time.Minute))
	inv.Add(Fact{Asset: b, Attr: "exists", Value: "true", From: t0.Add(45 * time.Minute)})
	inv.Add(Fact{Asset: b, Attr: "private_ip", Value: "10.0.3.7", From: t0.Add(45 * time.Minute)})
	// A termination of b's predecessor logged again, late and skewed,
	// after b began: it ends nothing of b.
	inv.End(b, "", t0.Add(44*time.Minute))

	ip := netip.MustParseAddr("10.0.3.7")
	for _, tc := range []struct {
		at   time.Duration
		want string
	}{
		{-time.Second, ""},
		{0, a.ID},                               // from the first instant
		{39*time.Minute + 59*time.Second, a.ID}, // to the last
		{40 * time.Minute, ""},                  // ended: [from, to)
		{45 * time.Minute, b.ID},                // the next holder
		{50 * time.Minute, b.ID},                // 11:50Z
		{365 * 24 * time.Hour, b.ID},            // still
	} {
		got, ok := inv.AssetAt(ip, t0.Add(tc.at))
		if (ok && got.ID != tc.want) || (!ok && tc.want != "") {
			t.Errorf("10.0.3.7 at %s: %v %v, want %q", t0.Add(tc.at).Format(time.RFC3339), got.ID, ok, tc.want)
		}
	}
	if all := inv.Who("10.0.3.7", time.Time{}); len(all) != 2 || all[0].Asset != b {
		t.Errorf("the address's history, newest first: %+v", all)
	}
	// Two sources overlap (a late termination never logged): the one that
	// began last is the answer.
	c := Asset{Kind: "instance", ID: "i-ccccccccccccccccc", Provider: "aws", Account: "1"}
	inv.Add(Fact{Asset: c, Attr: "private_ip", Value: "10.0.3.7", From: t0.Add(2 * time.Hour)})
	if got, _ := inv.AssetAt(ip, t0.Add(3*time.Hour)); got != c {
		t.Errorf("overlapping holders: %v, want the latest to begin, %v", got.ID, c.ID)
	}
	if fs := inv.Facts(a, t0.Add(time.Minute)); len(fs) != 2 {
		t.Errorf("a's facts at launch: %+v", fs)
	}
	if len(inv.Find("I-AAAAAAAAAAAAAAAAA", time.Time{})) != 1 {
		t.Error("an instance is not found by its id, whatever its case")
	}
}

// TestObserveCloudTrail: a real RunInstances record (a fixture of
// Panther's rule tests) makes an instance with its address, type and
// image; TerminateInstances ends it; users come and go by name.
// launchEvent is a real RunInstances record from Panther's rule tests:
// i-07d06021b0da55115 launched in account 111122223333 with the private
// address 192.168.1.95.
func launchEvent(t *testing.T) *event.Event {
	t.Helper()
	f, err := os.Open(testdata + "panther-analysis-rule-tests/aws_cloudtrail_rule_tests.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	var launched *event.Event
	for sc.Scan() {
		var tc struct {
			TestName string          `json:"test_name"`
			Event    json.RawMessage `json:"event"`
		}
		if json.Unmarshal(sc.Bytes(), &tc) != nil || !strings.Contains(string(tc.Event), `"RunInstances"`) || !strings.Contains(string(tc.Event), "i-07d06021b0da55115") {
			continue
		}
		parse.Parse(strings.NewReader(string(tc.Event)), "aws.cloudtrail", parse.Options{Tenant: "acme", Received: time.Now()}, func(r parse.Result) error {
			if r.Event != nil && launched == nil {
				launched = r.Event
			}
			return nil
		})
	}
	if launched == nil {
		t.Fatal("no RunInstances of i-07d06021b0da55115 in the fixture")
	}
	return launched
}

func TestObserveCloudTrail(t *testing.T) {
	inv := NewInventory()
	launched := launchEvent(t)
	inv.Observe(launched)
	at := launched.Time.Add(time.Minute)
	got, ok := inv.AssetAt(netip.MustParseAddr("192.168.1.95"), at)
	if !ok || got.ID != "i-07d06021b0da55115" || got.Account != "111122223333" {
		t.Fatalf("192.168.1.95 after the launch: %+v %v", got, ok)
	}
	attrs := map[string]string{}
	for _, f := range inv.Facts(got, at) {
		attrs[f.Attr] = f.Value
	}
	if attrs["type"] != "p2.xlarge" || attrs["image"] != "ami-013e7d3a6659f358d" || attrs["exists"] != "true" {
		t.Errorf("facts %v", attrs)
	}
	term := &event.Event{Source: "aws.cloudtrail", Action: "TerminateInstances", Time: launched.Time.Add(time.Hour), Cloud: launched.Cloud,
		Raw: []byte(`{"eventSource":"ec2.amazonaws.com","requestParameters":{"instancesSet":{"items":[{"instanceId":"i-07d06021b0da55115"}]}}}`)}
	inv.Observe(term)
	if _, ok := inv.AssetAt(netip.MustParseAddr("192.168.1.95"), term.Time); ok {
		t.Error("the address is still the terminated instance's")
	}
	if _, ok := inv.AssetAt(netip.MustParseAddr("192.168.1.95"), term.Time.Add(-time.Second)); !ok {
		t.Error("the address was not the instance's before it ended")
	}

	// Observed again, as a scale-out's node reads back what it saw on
	// its way in: the instance's history is what it was.
	before := inv.Facts(got, time.Time{})
	inv.Observe(launched)
	inv.Observe(term)
	if again := inv.Facts(got, time.Time{}); !reflect.DeepEqual(again, before) {
		t.Errorf("observed twice, the instance's facts %+v, want %+v", again, before)
	}
	if _, ok := inv.AssetAt(netip.MustParseAddr("192.168.1.95"), term.Time); ok {
		t.Error("observed twice, the address is the terminated instance's again")
	}

	t1 := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	cloud := event.Cloud{Provider: "aws", Account: "111122223333"}
	inv.Observe(&event.Event{Source: "aws.cloudtrail", Action: "CreateUser", Time: t1, Cloud: cloud,
		Raw: []byte(`{"responseElements":{"user":{"arn":"arn:aws:iam::111122223333:user/backdoor","userName":"backdoor"}}}`)})
	inv.Observe(&event.Event{Source: "aws.cloudtrail", Action: "DeleteUser", Time: t1.Add(time.Hour), Cloud: cloud,
		Raw: []byte(`{"requestParameters":{"userName":"backdoor"}}`)})
	if fs := inv.Who("backdoor", t1.Add(time.Minute)); len(fs) != 1 || fs[0].Asset.ID != "arn:aws:iam::111122223333:user/backdoor" {
		t.Errorf("the user while it existed: %+v", fs)
	}
	if fs := inv.Who("backdoor", t1.Add(2*time.Hour)); len(fs) != 0 {
		t.Errorf("the user after its deletion: %+v", fs)
	}
}
