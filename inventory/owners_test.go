package inventory

import (
	"net/netip"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

func loadOwnersFile(t testing.TB) *Owners {
	t.Helper()
	f, err := os.Open("testdata/snapshot/owners.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	o, err := LoadOwners(f, "owners.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// tagsOf returns a tags func over a map.
func tagsOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// TestOwnersOf: a tag rule beats an account rule; team and contact come
// together, the environment on its own.
func TestOwnersOf(t *testing.T) {
	o := loadOwnersFile(t)
	if o.Len() != 8 {
		t.Errorf("%d rules, want 8", o.Len())
	}
	platform := Owner{Team: "platform", Contact: "platform-oncall@example.com", Environment: "prod"}
	for _, c := range []struct {
		name    string
		account string
		tags    map[string]string
		want    Owner
		ok      bool
	}{
		{"an account", "123456789012", nil, platform, true},
		{"an account, tags no rule names", "123456789012", map[string]string{"team": "unknown", "Name": "x"}, platform, true},
		{"a tag beats the account, which gives the environment", "123456789012", map[string]string{"team": "payments"},
			Owner{Team: "payments", Contact: "payments-oncall@example.com", Environment: "prod"}, true},
		{"a tag that gives only an environment", "123456789012", map[string]string{"env": "staging"},
			Owner{Team: "platform", Contact: "platform-oncall@example.com", Environment: "staging"}, true},
		{"two tags: the rule listed first", "", map[string]string{"team": "security", "env": "staging", "cost=center": "cc-100"},
			Owner{Team: "security", Contact: "secops@example.com", Environment: "staging"}, true},
		{"a key with '=' in it", "", map[string]string{"cost=center": "cc-100"}, Owner{Team: "finops", Contact: "finops@example.com"}, true},
		{"tag values are exact", "", map[string]string{"team": "Payments"}, Owner{}, false},
		{"an account with a leading zero", "012345678901", nil, Owner{Team: "sandbox", Contact: "sandbox@example.com", Environment: "dev"}, true},
		{"a project", "shop-prod-1234", nil, Owner{Team: "platform", Environment: "prod"}, true},
		{"a subscription, in either case", "6f1c2b3a-0000-4000-8000-0123456789ab", nil,
			Owner{Team: "data", Contact: "0123456789abcdef0123456789abcdef", Environment: "prod"}, true},
		{"a subscription, as given", "6F1C2B3A-0000-4000-8000-0123456789AB", nil,
			Owner{Team: "data", Contact: "0123456789abcdef0123456789abcdef", Environment: "prod"}, true},
		{"an unknown account", "999999999999", nil, Owner{}, false},
		{"nothing", "", nil, Owner{}, false},
		{"an id too long to be one", strings.Repeat("A", 100), nil, Owner{}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			var tags func(string) (string, bool)
			if c.tags != nil {
				tags = tagsOf(c.tags)
			}
			got, ok := o.Of(c.account, tags)
			if got != c.want || ok != c.ok {
				t.Errorf("Of(%q, %v) = %+v %v, want %+v %v", c.account, c.tags, got, ok, c.want, c.ok)
			}
		})
	}
	var none *Owners
	if w, ok := none.Of("123456789012", nil); ok || w != (Owner{}) || none.Len() != 0 {
		t.Errorf("nil Owners: %+v %v", w, ok)
	}
}

// TestOwnersAllocs: Of is called for every event and allocates nothing.
func TestOwnersAllocs(t *testing.T) {
	o := loadOwnersFile(t)
	tags := map[string]string{"team": "payments", "Name": "web-1", "env": "staging"}
	fn := tagsOf(tags)
	var sink Owner
	for _, account := range []string{"123456789012", "6F1C2B3A-0000-4000-8000-0123456789AB", "999999999999", ""} {
		if n := testing.AllocsPerRun(1000, func() { sink, _ = o.Of(account, fn) }); n != 0 {
			t.Errorf("Of(%q) allocates %v times", account, n)
		}
	}
	if n := testing.AllocsPerRun(1000, func() { sink, _ = o.Of("123456789012", nil) }); n != 0 {
		t.Errorf("Of without tags allocates %v times", n)
	}
	_ = sink
}

// TestOwnersConcurrent: any number of goroutines may look up at once.
func TestOwnersConcurrent(t *testing.T) {
	o := loadOwnersFile(t)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				if w, _ := o.Of("123456789012", tagsOf(map[string]string{"team": "security"})); w.Team != "security" {
					t.Errorf("got %+v", w)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestOwnersFromGo: rules set from Go, and their errors.
func TestOwnersFromGo(t *testing.T) {
	o, err := NewOwners(
		OwnerRule{Account: "111111111111", Owner: Owner{Team: "a", Contact: "a@example.com"}},
		OwnerRule{TagKey: "team", TagValue: "b", Owner: Owner{Team: "b", Contact: "PDKEY"}},
		OwnerRule{TagKey: "empty", TagValue: "", Owner: Owner{Environment: "dev"}},
	)
	if err != nil {
		t.Fatal(err)
	}
	if w, _ := o.Of("111111111111", tagsOf(map[string]string{"team": "b"})); w != (Owner{Team: "b", Contact: "PDKEY"}) {
		t.Errorf("got %+v", w)
	}
	if w, _ := o.Of("111111111111", tagsOf(map[string]string{"empty": ""})); w != (Owner{Team: "a", Contact: "a@example.com", Environment: "dev"}) {
		t.Errorf("an empty tag value: %+v", w)
	}
	for _, c := range []struct {
		rules []OwnerRule
		err   string
	}{
		{[]OwnerRule{{Owner: Owner{Team: "x"}}}, "owner rule 1: names no account, project, subscription or tag"},
		{[]OwnerRule{{Account: "1", TagKey: "k", Owner: Owner{Team: "x"}}}, "owner rule 1: names both an account and a tag: make two rules"},
		{[]OwnerRule{{Account: "1"}}, "owner rule 1: gives no team, contact or environment"},
		{[]OwnerRule{{Account: "1", Owner: Owner{Team: "x"}}, {Account: " 1 ", Owner: Owner{Team: "y"}}}, "owner rule 2: account 1 has a rule already, owner rule 1"},
		{[]OwnerRule{{Account: "A", Owner: Owner{Team: "x"}}, {Account: "a", Owner: Owner{Team: "y"}}}, "owner rule 2: account a has a rule already, owner rule 1"},
		{[]OwnerRule{{TagKey: "k", TagValue: "v", Owner: Owner{Team: "x"}}, {TagKey: "k", TagValue: "v", Owner: Owner{Team: "y"}}}, "owner rule 2: tag k=v has a rule already, owner rule 1"},
		{[]OwnerRule{{Account: "1", Owner: Owner{Contact: "not an@address"}}}, `owner rule 1: contact "not an@address" is not an email address`},
		{[]OwnerRule{{Account: "1", Owner: Owner{Contact: "Ops <ops@example.com>"}}}, `owner rule 1: contact "Ops <ops@example.com>" is not an email address`},
		{[]OwnerRule{{Account: "1", Owner: Owner{Contact: "pager key"}}}, `owner rule 1: contact "pager key" is neither an email address nor a pager key`},
	} {
		if _, err := NewOwners(c.rules...); err == nil || err.Error() != c.err {
			t.Errorf("NewOwners(%+v) = %v, want %q", c.rules, err, c.err)
		}
	}
}

// TestLoadOwnersErrors: a bad owners file is an error naming the line.
func TestLoadOwnersErrors(t *testing.T) {
	for _, c := range []struct {
		name, doc, err string
	}{
		{"an unknown key", "rules:\n  - account: \"1\"\n    teem: x\n", `^o\.yaml: yaml: unmarshal errors:\n  line 3: field teem not found`},
		{"not a list", "rules: {account: 1}\n", `^o\.yaml: yaml: unmarshal errors`},
		{"not YAML", "rules: [\n", `^o\.yaml: yaml: line \d+: did not find expected`},
		{"no selector", "rules:\n  - team: x\n", `^o\.yaml:2: names no account, project, subscription or tag$`},
		{"two selectors", "rules:\n  - team: x\n    account: \"1\"\n  - project: p\n    subscription: s\n    team: y\n", `^o\.yaml:4: a rule names one of account, project, subscription, tag$`},
		{"a tag without '='", "rules:\n  - tag: team\n    team: x\n", `^o\.yaml:2: tag "team" is not key=value$`},
		{"a tag value without key", "rules:\n  - tag_value: v\n    team: x\n", `^o\.yaml:2: tag_value without tag_key$`},
		{"a duplicate", "rules:\n  - account: \"1\"\n    team: x\n\n  - account: \"1\"\n    team: y\n", `^o\.yaml:5: account 1 has a rule already, o\.yaml:2$`},
		{"a bad contact", "rules:\n  - tag: a=b\n    contact: on call\n", `^o\.yaml:2: contact "on call" is neither an email address nor a pager key$`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := LoadOwners(strings.NewReader(c.doc), "o.yaml")
			if err == nil || !regexp.MustCompile(c.err).MatchString(err.Error()) {
				t.Errorf("error %v, want %s", err, c.err)
			}
		})
	}
	// An empty file has no rules.
	if o, err := LoadOwners(strings.NewReader("# none yet\n"), "o.yaml"); err != nil || o.Len() != 0 {
		t.Errorf("empty: %v %v", o, err)
	}
}

// TestOwnersOfAsset: an asset's owner by its tags at the time, else its
// owner fact, else its account.
func TestOwnersOfAsset(t *testing.T) {
	o := loadOwnersFile(t)
	inv := NewInventory()
	t0 := snapT("2024-06-01T00:00:00Z")
	web := Asset{Kind: "instance", ID: "i-web", Provider: "aws", Account: "123456789012"}
	inv.Add(Fact{Asset: web, Attr: "tag:team", Value: "payments", From: t0})
	inv.End(web, "tag:team", t0.Add(time.Hour))
	inv.Add(Fact{Asset: web, Attr: "tag:team", Value: "security", From: t0.Add(time.Hour)})
	cmdb := Asset{Kind: "vm", ID: "vm1", Provider: "azure", Account: "6f1c2b3a-0000-4000-8000-0123456789ab"}
	inv.Add(Fact{Asset: cmdb, Attr: "owner", Value: "platform", From: t0})
	inv.Add(Fact{Asset: cmdb, Attr: "environment", Value: "test", From: t0})
	bare := Asset{Kind: "instance", ID: "i-bare", Provider: "aws", Account: "123456789012"}
	stray := Asset{Kind: "instance", ID: "i-stray", Provider: "aws", Account: "999999999999"}
	inv.Add(Fact{Asset: stray, Attr: "owner", Value: "nobody-we-know", From: t0})
	for _, c := range []struct {
		name string
		a    Asset
		at   time.Time
		want Owner
		ok   bool
	}{
		{"its tags then", web, t0, Owner{Team: "payments", Contact: "payments-oncall@example.com", Environment: "prod"}, true},
		{"its tags later", web, t0.Add(2 * time.Hour), Owner{Team: "security", Contact: "secops@example.com", Environment: "prod"}, true},
		{"before it had any", web, t0.Add(-time.Hour), Owner{Team: "platform", Contact: "platform-oncall@example.com", Environment: "prod"}, true},
		{"its owner fact, with the team's contact", cmdb, t0, Owner{Team: "platform", Contact: "platform-oncall@example.com", Environment: "test"}, true},
		{"its account", bare, t0, Owner{Team: "platform", Contact: "platform-oncall@example.com", Environment: "prod"}, true},
		{"an owner no rule names", stray, t0, Owner{Team: "nobody-we-know"}, true},
		{"nothing known", Asset{Kind: "instance", ID: "i-none", Account: "1"}, t0, Owner{}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, ok := o.OfAsset(inv, c.a, c.at)
			if got != c.want || ok != c.ok {
				t.Errorf("OfAsset = %+v %v, want %+v %v", got, ok, c.want, c.ok)
			}
		})
	}
	var none *Owners
	if got, ok := none.OfAsset(inv, cmdb, t0); !ok || got != (Owner{Team: "platform", Environment: "test"}) {
		t.Errorf("no rules: %+v %v", got, ok)
	}
}

// TestOwnersOfImported: the owner of an asset a CMDB export and AWS
// Config told of.
func TestOwnersOfImported(t *testing.T) {
	o := loadOwnersFile(t)
	inv := importSnap(t, snapAt, "config-history-instances.json", "config-snapshot.json", "assets.csv")
	at := snapT("2024-03-04T11:00:00Z")
	a, ok := inv.AssetAt(netip.MustParseAddr("203.0.113.10"), at)
	if !ok {
		t.Fatal("no asset for 203.0.113.10")
	}
	if got, _ := o.OfAsset(inv, a, at); got.Team != "payments" || got.Environment != "prod" {
		t.Errorf("the instance's owner: %+v", got)
	}
	alice := inv.Lookup("alice", at)
	if len(alice) != 1 {
		t.Fatalf("alice: %+v", alice)
	}
	if got, _ := o.OfAsset(inv, alice[0].Asset, at); got.Team != "security" || got.Contact != "secops@example.com" {
		t.Errorf("alice's owner: %+v", got)
	}
}
