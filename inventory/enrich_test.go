package inventory

import (
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/maxmind/mmdbwriter"

	"github.com/vigilsec/vigil/event"
)

func TestScanTokens(t *testing.T) {
	type tok struct {
		text string
		kind tokenKind
	}
	for _, tc := range []struct {
		doc  string
		want []tok
	}{
		{`{"eventSource":"iam.amazonaws.com","eventVersion":"1.08"}`, []tok{{"iam.amazonaws.com", tokenDomain}}},
		{`"url":"https:\/\/Evil.Example\/x.php?a=1"`, []tok{{"Evil.Example", tokenDomain}, {"x.php", tokenDomain}}},
		// Tokens under four characters are no indicator.
		{`mail from a.b@mx.evil.example.`, []tok{{"mx.evil.example", tokenDomain}}},
		{`src=198.51.100.7:443 ver 1.2.3 host 10.0.0.1.`, []tok{{"198.51.100.7", tokenIPv4}, {"10.0.0.1", tokenIPv4}}},
		{`sha256=275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f md5 44d88612fea8a8f36de82e1278abb02f`,
			[]tok{{"275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f", tokenHex}, {"44d88612fea8a8f36de82e1278abb02f", tokenHex}}},
		// 32 characters but not hex; 33 hex digits; a UUID (dashes).
		{`zz8d8612fea8a8f36de82e1278abb02f 044d88612fea8a8f36de82e1278abb02f 2a5178c8-b4c7-44ba-b066-1ecc79b7087c`, nil},
		{`arn:aws:iam::123456789012:user/alice 2024-08-02T08:23:24Z`, nil},
		{`..-_. ... a.b`, nil},
		{"", nil},
	} {
		var got []tok
		scanTokens([]byte(tc.doc), true, func(b []byte, k tokenKind) bool {
			got = append(got, tok{string(b), k})
			return true
		})
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("scanTokens(%q) = %v, want %v", tc.doc, got, tc.want)
		}
	}
	// fn stops the scan.
	n := 0
	scanTokens([]byte("a.example b.example c.example"), true, func([]byte, tokenKind) bool { n++; return n < 2 })
	if n != 2 {
		t.Errorf("scan went on after fn said stop: %d calls", n)
	}
}

func TestParseIPv4(t *testing.T) {
	for in, want := range map[string]string{
		"1.2.3.4": "1.2.3.4", "255.255.255.255": "255.255.255.255", "0.0.0.0": "0.0.0.0",
		"256.1.1.1": "", "1.2.3": "", "1.2.3.4.5": "", "01.2.3.4": "", "1..3.4": "", "1.2.3.": "", "a.b.c.d": "", "": "",
	} {
		a, ok := parseIPv4([]byte(in))
		got := ""
		if ok {
			got = a.String()
		}
		if got != want {
			t.Errorf("parseIPv4(%q) = %q, want %q", in, got, want)
		}
		if std, err := netip.ParseAddr(in); ok != (err == nil && std.Is4()) {
			t.Errorf("parseIPv4(%q) ok = %v, netip.ParseAddr says %v", in, ok, err)
		}
	}
}

// stratusSteal is Stratus Red Team's detonation of "steal EC2 instance
// credentials": from 18.236.253.47, christophe runs a command on an
// instance that prints its profile's credentials, then uses them.
const stratusSteal = "stratus-red-team-detonation-logs/detonation-logs/aws.credential-access.ec2-steal-instance-credentials.json"

// lookupsFor writes the files of an enrichment test: a GeoIP City and
// ASN database, an ip-ranges.json and a threat-intel list, each naming
// the attacker's network, and loads them into e.
func lookupsFor(t *testing.T, e *Enricher) {
	t.Helper()
	dir := t.TempDir()
	city := writeMMDB(t, dir, "GeoLite2-City", mmdbwriter.Options{}, []mmdbNetwork{{"18.236.0.0/15", cityRec("US", "US", "Boardman")}})
	asn := writeMMDB(t, dir, "GeoLite2-ASN", mmdbwriter.Options{}, []mmdbNetwork{{"18.236.0.0/15", asnRec(16509, "AMAZON-02")}})
	g, err := OpenGeoIP(city, asn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	e.SetGeoIP(g)

	rs, err := LoadAWSRanges(strings.NewReader(`{"syncToken":"1","createDate":"2024-08-01-00-00-00","prefixes":[
		{"ip_prefix":"18.236.0.0/15","region":"us-west-2","service":"AMAZON","network_border_group":"us-west-2"},
		{"ip_prefix":"18.236.0.0/15","region":"us-west-2","service":"EC2","network_border_group":"us-west-2"}],"ipv6_prefixes":[]}`))
	if err != nil {
		t.Fatal(err)
	}
	e.SetRanges(rs)

	list := filepath.Join(dir, "watch.txt")
	// A network, a domain whose subdomain the records' TLS details name,
	// and a hash no record holds.
	text := "18.236.252.0/22\nus-north-2r.amazonaws.com\n44d88612fea8a8f36de82e1278abb02f\n"
	if err := os.WriteFile(list, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	in, _, err := LoadIntel(IntelSource{Path: list})
	if err != nil {
		t.Fatal(err)
	}
	e.SetIntel(in)
}

// hostHeader finds the host a CloudTrail record's client asked for.
var hostHeader = regexp.MustCompile(`"clientProvidedHostHeader": "([^"]+)"`)

func TestEnrichFixture(t *testing.T) {
	evs := events(t, stratusSteal)
	slices.SortStableFunc(evs, func(a, b *event.Event) int { return a.Time.Compare(b.Time) })
	e := NewEnricher(nil)
	lookupsFor(t, e)
	e.Enrich(evs)

	attacker := event.Place{Country: "US", City: "Boardman", ASN: 16509, ASOrg: "AMAZON-02", Cloud: "aws/EC2/us-west-2"}
	hosts := 0
	for _, ev := range evs {
		if ev.Context.Src != attacker {
			t.Errorf("%s at %s: src %+v, want %+v", ev.Action, ev.Time, ev.Context.Src, attacker)
		}
		if ev.Context.Dst != (event.Place{}) || ev.Context.Team != "" {
			t.Errorf("%s: context %+v says more than was known", ev.Action, ev.Context)
		}
		want := []event.IntelHit{{List: "watch", Indicator: "18.236.253.47"}}
		if host := hostHeader.FindSubmatch(ev.Raw); host != nil {
			want = append(want, event.IntelHit{List: "watch", Indicator: string(host[1])})
			hosts++
		}
		if !reflect.DeepEqual(ev.Context.Intel, want) {
			t.Errorf("%s: intel %+v, want %+v", ev.Action, ev.Context.Intel, want)
		}
	}
	if hosts == 0 {
		t.Error("no record names the listed domain's subdomain: the fixture changed")
	}
}

// TestEnrichAssets: an address's asset is the one that held it at the
// event's time, also when the asset was made earlier in the same batch.
func TestEnrichAssets(t *testing.T) {
	t0 := time.Date(2023, 7, 10, 11, 0, 0, 0, time.UTC)
	t1 := t0.Add(50 * time.Minute)
	e := NewEnricher(nil)
	old := Asset{Kind: "instance", ID: "i-old", Provider: "aws", Account: "111122223333"}
	e.withInventory("acme", func(inv *Inventory) {
		inv.Add(Fact{Asset: old, Attr: "exists", Value: "true", From: t0})
		inv.Add(Fact{Asset: old, Attr: "private_ip", Value: "10.0.3.7", From: t0})
		inv.End(old, "", t1)
	})

	flow := func(at time.Time, src string) *event.Event {
		return &event.Event{Time: at, Tenant: "acme", Source: "aws.vpcflow", SrcIP: netip.MustParseAddr(src), DstIP: netip.MustParseAddr("10.0.9.9")}
	}
	before, boundary := flow(t1.Add(-time.Nanosecond), "10.0.3.7"), flow(t1, "10.0.3.7")
	evs := []*event.Event{before, boundary}
	e.Enrich(evs)
	if got := before.Context.Src.Asset; got != "i-old" {
		t.Errorf("just before the end: src_asset %q, want i-old", got)
	}
	if got := boundary.Context.Src.Asset; got != "" {
		t.Errorf("at the end, [from, to) excludes it: src_asset %q", got)
	}
	if got := before.Context.Dst; got != (event.Place{}) {
		t.Errorf("unknown destination: %+v", got)
	}
	// Another tenant's 10.0.3.7 is another machine.
	other := flow(t1.Add(-time.Minute), "10.0.3.7")
	other.Tenant = "globex"
	e.Enrich([]*event.Event{other})
	if got := other.Context.Src.Asset; got != "" {
		t.Errorf("another tenant's event got src_asset %q", got)
	}

	// An instance launched, and a flow from its address after it, in
	// one batch.
	run := launchEvent(t)
	later := flow(run.Time.Add(time.Minute), "192.168.1.95")
	e.Enrich([]*event.Event{run, later})
	if got := later.Context.Src.Asset; got != "i-07d06021b0da55115" {
		t.Errorf("flow from 192.168.1.95 after the launch: src_asset %q, want i-07d06021b0da55115", got)
	}
	if got := run.Context.Src.Asset; got != "" {
		t.Errorf("the launch itself, from the user's address: src_asset %q", got)
	}
}

// TestEnrichObserved: what an Enricher observes (another node's events,
// read back from the store) it knows when it enriches its own; the
// events observed are left as they were.
func TestEnrichObserved(t *testing.T) {
	e := NewEnricher(NewIdentities())
	run := launchEvent(t)
	e.Observe([]*event.Event{run})
	if !reflect.DeepEqual(run.Context, event.Context{}) {
		t.Errorf("observing enriched the launch: %+v", run.Context)
	}
	flow := &event.Event{Time: run.Time.Add(time.Minute), Tenant: run.Tenant, Source: "aws.vpcflow",
		SrcIP: netip.MustParseAddr("192.168.1.95"), DstIP: netip.MustParseAddr("10.0.9.9")}
	e.Enrich([]*event.Event{flow})
	if got := flow.Context.Src.Asset; got != "i-07d06021b0da55115" {
		t.Errorf("flow from 192.168.1.95 after the observed launch: src_asset %q, want i-07d06021b0da55115", got)
	}
}

// TestEnrichAddressChanged: what enrichment keeps of an address is
// worked out again when the address's facts change, even at a time it
// had already answered for, and not lost when another address's do.
func TestEnrichAddressChanged(t *testing.T) {
	t0 := time.Date(2023, 7, 10, 11, 0, 0, 0, time.UTC)
	e := NewEnricher(nil)
	web := Asset{Kind: "instance", ID: "i-web", Provider: "aws"}
	db := Asset{Kind: "instance", ID: "i-db", Provider: "aws"}
	e.withInventory("acme", func(inv *Inventory) {
		inv.Add(Fact{Asset: web, Attr: "private_ip", Value: "10.0.3.7", From: t0})
	})
	asset := func() string {
		ev := &event.Event{Time: t0.Add(time.Hour), Tenant: "acme", Source: "aws.vpcflow", SrcIP: netip.MustParseAddr("10.0.3.7")}
		e.Enrich([]*event.Event{ev})
		return ev.Context.Src.Asset
	}
	if got := asset(); got != "i-web" {
		t.Fatalf("src_asset %q, want i-web", got)
	}
	e.withInventory("acme", func(inv *Inventory) {
		inv.Add(Fact{Asset: db, Attr: "private_ip", Value: "10.0.5.5", From: t0})
	})
	if got := asset(); got != "i-web" {
		t.Errorf("after another address changed: src_asset %q, want i-web", got)
	}
	// A log that arrives late says the address was released before.
	e.withInventory("acme", func(inv *Inventory) { inv.End(web, "private_ip", t0.Add(30*time.Minute)) })
	if got := asset(); got != "" {
		t.Errorf("after the address was released: src_asset %q, want none", got)
	}
	e.withInventory("acme", func(inv *Inventory) {
		inv.Add(Fact{Asset: db, Attr: "private_ip", Value: "10.0.3.7", From: t0.Add(45 * time.Minute)})
	})
	if got := asset(); got != "i-db" {
		t.Errorf("after the address was taken again: src_asset %q, want i-db", got)
	}
}

// TestEnrichNothingKnown: with no lookups, events are left as they were,
// and nothing is allocated for them.
func TestEnrichNothingKnown(t *testing.T) {
	e := NewEnricher(nil)
	ev := &event.Event{Time: time.Now(), Source: "aws.cloudtrail", SrcIP: netip.MustParseAddr("198.51.100.1"),
		Raw: []byte(`{"eventSource":"iam.amazonaws.com","sourceIPAddress":"198.51.100.1"}`)}
	evs := []*event.Event{ev}
	e.Enrich(evs)
	if !ev.Context.IsZero() {
		t.Errorf("context %+v from nothing", ev.Context)
	}
	lookupsFor(t, e)
	if n := testing.AllocsPerRun(100, func() { e.Enrich(evs) }); n > 1 {
		t.Errorf("Enrich of an event no lookup knows: %.0f allocations", n)
	}
	if !ev.Context.IsZero() {
		t.Errorf("context %+v for an address no lookup knows", ev.Context)
	}
}

// FuzzScanTokens: every token is a piece of the document of the kind
// said, and the scan never fails.
func FuzzScanTokens(f *testing.F) {
	for _, s := range []string{
		`{"eventSource":"iam.amazonaws.com","sourceIPAddress":"18.236.253.47"}`,
		`https://evil.example/44d88612fea8a8f36de82e1278abb02f`, "1.2.3.4.5", "...", "a\x00b.c\xffd.example",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		scanTokens(doc, true, func(tok []byte, kind tokenKind) bool {
			if !strings.Contains(string(doc), string(tok)) || len(tok) < 4 || !alnum(tok[0]) || !alnum(tok[len(tok)-1]) {
				t.Fatalf("token %q of %q", tok, doc)
			}
			switch kind {
			case tokenHex:
				if _, _, ok := parseHash(tok); !ok {
					t.Fatalf("hex token %q is no hash", tok)
				}
			case tokenIPv4:
				if strings.Trim(string(tok), "0123456789.") != "" || strings.Count(string(tok), ".") != 3 {
					t.Fatalf("IPv4 token %q", tok)
				}
			case tokenDomain:
				if !strings.Contains(string(tok), ".") {
					t.Fatalf("domain token %q without a dot", tok)
				}
			}
			return true
		})
	})
}

// TestEnrichOwners: an address's owner is its asset's at the event's
// time, also when its tags change between events and when the inventory
// changes after an owner was worked out.
func TestEnrichOwners(t *testing.T) {
	t0 := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	owners, err := NewOwners(
		OwnerRule{TagKey: "team", TagValue: "a", Owner: Owner{Team: "team-a"}},
		OwnerRule{TagKey: "team", TagValue: "b", Owner: Owner{Team: "team-b"}},
		OwnerRule{Account: "111122223333", Owner: Owner{Team: "platform", Environment: "prod"}},
	)
	if err != nil {
		t.Fatal(err)
	}
	e := NewEnricher(nil)
	e.SetOwners(owners)
	web := Asset{Kind: "instance", ID: "i-web", Provider: "aws", Account: "111122223333"}
	e.withInventory("acme", func(inv *Inventory) {
		inv.Add(Fact{Asset: web, Attr: "private_ip", Value: "10.0.0.5", From: t0})
		inv.Add(Fact{Asset: web, Attr: "tag:team", Value: "a", From: t0})
		inv.End(web, "tag:team", t0.Add(2*time.Hour))
		inv.Add(Fact{Asset: web, Attr: "tag:team", Value: "b", From: t0.Add(2 * time.Hour)})
	})
	owner := func(at time.Time) string {
		ev := &event.Event{Time: at, Tenant: "acme", Cloud: event.Cloud{Account: "111122223333"}, SrcIP: netip.MustParseAddr("10.0.0.5"), Raw: []byte(`{}`)}
		e.Enrich([]*event.Event{ev})
		if ev.Context.Team != "platform" || ev.Environment != "prod" {
			t.Errorf("account's team %q, environment %q", ev.Context.Team, ev.Environment)
		}
		return ev.Context.Src.Owner
	}
	for _, tc := range []struct {
		at   time.Duration
		want string
	}{{time.Hour, "team-a"}, {3 * time.Hour, "team-b"}, {time.Hour + time.Minute, "team-a"}, {2 * time.Hour, "team-b"}, {2*time.Hour - 1, "team-a"}} {
		if got := owner(t0.Add(tc.at)); got != tc.want {
			t.Errorf("owner at +%v: %q, want %q", tc.at, got, tc.want)
		}
	}
	// The tag removed: the account's team, at once.
	e.withInventory("acme", func(inv *Inventory) { inv.End(web, "tag:team", t0.Add(4*time.Hour)) })
	if got := owner(t0.Add(5 * time.Hour)); got != "platform" {
		t.Errorf("owner after the tag was removed: %q, want platform", got)
	}
	if got := owner(t0.Add(3 * time.Hour)); got != "team-b" {
		t.Errorf("owner before it was removed: %q, want team-b", got)
	}
}
