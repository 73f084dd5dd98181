package inventory

import (
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/parse"
	"github.com/vigilsec/vigil/query"
)

const testdata = "../../shared/testdata/"

// events parses a fixture.
func events(t *testing.T, path string) []*event.Event {
	t.Helper()
	f, err := os.Open(testdata + path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []*event.Event
	_, err = parse.Parse(f, parse.Auto, parse.Options{Tenant: "acme", Received: time.Now()}, func(r parse.Result) error {
		if r.Event != nil {
			r.Event.Seq = uint64(len(out) + 1)
			out = append(out, r.Event)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// graphOf builds a graph of the credentials a fixture's events issued.
func graphOf(evs []*event.Event) *Graph {
	g := NewGraph()
	for _, ev := range evs {
		if is, ok := FromEvent(ev); ok {
			g.Add(is)
		}
	}
	return g
}

// chainText writes a chain as "as ← issued by kind ← …".
func chainText(chain []Link) string {
	var parts []string
	for _, l := range chain {
		s := l.As.String()
		if l.As.Key != "" {
			s += " [" + l.As.Key + "]"
		}
		if l.Issue != nil {
			s += " (" + l.Issue.Kind + ")"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " ← ")
}

// TestChainsOnFixtures: the temporary keys of real detonations lead
// back to who started them.
func TestChainsOnFixtures(t *testing.T) {
	for _, tc := range []struct {
		file string
		// use picks the event whose credential to follow.
		use  func(*event.Event) bool
		want string
	}{
		{ // A user assumes a role; the role's session launches instances.
			"stratus-red-team-detonation-logs/detonation-logs/aws.execution.ec2-launch-unusual-instances.json",
			func(e *event.Event) bool { return e.Action == "RunInstances" },
			"arn:aws:sts::900138736586:assumed-role/stratus-red-team-ec2lui-role-idtzskbvtd/aws-go-sdk-1722511821294449000 [ASIA9F6MXE9HSYOXYQOS] (AssumeRole) ← arn:aws:iam::900138736586:user/christophe [AKIAR7ISFR69YWROPYAN]",
		},
		{ // The key used differs from the one issued (the dataset's
			// anonymizing): the session's ARN still leads back.
			"stratus-red-team-detonation-logs/detonation-logs/aws.credential-access.ec2-get-password-data.json",
			func(e *event.Event) bool { return e.Action == "GetPasswordData" },
			"arn:aws:sts::457448411975:assumed-role/stratus-red-team-ec2-get-password-data-role/aws-go-sdk-1722375070115152000 [ASIANQQHHS551LWULIWD] (AssumeRole) ← arn:aws:iam::457448411975:user/christophe [AKIAWOGXN38MFN92ING5]",
		},
		{ // A federation token: the federated user is the user that asked.
			"stratus-red-team-detonation-logs/detonation-logs/aws.persistence.sts-federation-token.json",
			func(e *event.Event) bool { return e.Actor.Type == "FederatedUser" },
			"arn:aws:sts::742491224508:federated-user/stratus_red_team [ASIASTJKC5GCM7ZE6LUP] (GetFederationToken) ← arn:aws:iam::742491224508:user/stratus-red-team-user-federation-user [AKIA6V1GNZTT65XQH36M]",
		},
		{ // Stolen instance-profile credentials: the chain ends at EC2,
			// for the instance.
			"otrf-security-datasets-aws/ec2_proxy_s3_exfiltration_2020-09-14011940.json",
			func(e *event.Event) bool { return e.Action == "GetObject" },
			"arn:aws:sts::123456789123:assumed-role/MordorNginxStack-BankingWAFRole-9S3E0UAE1MM0/i-0317f6c6b66ae9c40 [ASIA5FLZVX4OPVKKVBMX] (InstanceProfile) ← the instance i-0317f6c6b66ae9c40, through its instance profile",
		},
	} {
		evs := events(t, tc.file)
		g := graphOf(evs)
		var use *event.Event
		for _, e := range evs {
			if tc.use(e) {
				use = e
				break
			}
		}
		if use == nil {
			t.Fatalf("%s: no event to follow", tc.file)
		}
		got := chainText(g.Chain(Principal{Key: use.Session.ID, ARN: use.Actor.ID}, use.Time))
		if got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.file, got, tc.want)
		}
	}
}

// TestOffInstance: the stolen instance credential, used from outside,
// is flagged; the instance's own use is not.
func TestOffInstance(t *testing.T) {
	evs := events(t, "otrf-security-datasets-aws/ec2_proxy_s3_exfiltration_2020-09-14011940.json")
	flagged := 0
	for _, e := range evs {
		if why := OffInstance(e, nil); why != "" {
			flagged++
			if !strings.Contains(why, "i-0317f6c6b66ae9c40") || !strings.Contains(why, "1.2.3.4") {
				t.Errorf("reason %q", why)
			}
		}
	}
	if flagged != 11 {
		t.Errorf("%d uses flagged, want the 11 made with the instance's credential", flagged)
	}
	e := &event.Event{Actor: event.Actor{Type: "AssumedRole", ID: "arn:aws:sts::1:assumed-role/web/i-0123456789abcdef0"}}
	for _, tc := range []struct {
		src   string
		addrs []string
		off   bool
	}{
		{"10.0.3.7", nil, false},                              // its VPC: not public
		{"54.1.2.3", []string{"54.1.2.3", "10.0.3.7"}, false}, // its own public address
		{"198.51.100.9", []string{"54.1.2.3"}, true},          // another
		{"203.0.113.5", nil, true},                            // public, the instance's unknown
	} {
		e.SrcIP = mustAddr(tc.src)
		var addrs []netip.Addr
		for _, a := range tc.addrs {
			addrs = append(addrs, mustAddr(a))
		}
		if got := OffInstance(e, addrs) != ""; got != tc.off {
			t.Errorf("from %s (instance has %v): flagged %v, want %v", tc.src, tc.addrs, got, tc.off)
		}
	}
}

// TestRoleChaining: a user's session assumes a role in another account,
// whose session assumes a third; the chain crosses the accounts back to
// the user, by key or by session, and picks the issue in force at the
// time of use when a session name is reused.
func TestRoleChaining(t *testing.T) {
	t0 := time.Date(2024, 7, 10, 11, 0, 0, 0, time.UTC)
	g := NewGraph()
	user := Principal{Type: "IAMUser", ARN: "arn:aws:iam::111111111111:user/alice", Key: "AKIAALICE"}
	hopA := "arn:aws:sts::222222222222:assumed-role/deploy/alice-1"
	hopB := "arn:aws:sts::333333333333:assumed-role/admin/pivot"
	g.Add(Issue{Kind: AssumeRole, Time: t0, Key: "ASIAHOPA", Session: hopA, Caller: user, Expires: t0.Add(time.Hour)})
	g.Add(Issue{Kind: AssumeRole, Time: t0.Add(10 * time.Minute), Key: "ASIAHOPB", Session: hopB,
		Caller: Principal{Type: "AssumedRole", ARN: hopA, Key: "ASIAHOPA"}, Expires: t0.Add(70 * time.Minute)})
	// The same session name, assumed again later by someone else.
	g.Add(Issue{Kind: AssumeRole, Time: t0.Add(3 * time.Hour), Key: "ASIAHOPB2", Session: hopB,
		Caller: Principal{Type: "IAMUser", ARN: "arn:aws:iam::333333333333:user/bob", Key: "AKIABOB"}, Expires: t0.Add(4 * time.Hour)})

	for _, tc := range []struct {
		p    Principal
		at   time.Time
		want string
	}{
		{Principal{Key: "ASIAHOPB"}, t0.Add(20 * time.Minute), "alice"},
		{Principal{ARN: hopB}, t0.Add(20 * time.Minute), "alice"},
		{Principal{ARN: hopB}, t0.Add(3*time.Hour + time.Minute), "bob"},
		// At the issue's very instant it is in force; at its expiry not.
		{Principal{ARN: hopB}, t0.Add(10 * time.Minute), "alice"},
		{Principal{ARN: hopB}, t0.Add(70 * time.Minute), ""},
		// A use logged a minute before its issue (clock skew between
		// sources) is still the issue's.
		{Principal{ARN: hopA}, t0.Add(-time.Minute), "alice"},
	} {
		chain := g.Chain(tc.p, tc.at)
		got := ""
		if len(chain) > 1 {
			got = Origin(chain).ARN[strings.LastIndexByte(Origin(chain).ARN, '/')+1:]
		}
		if got != tc.want {
			t.Errorf("%+v at %s: origin %q, want %q (%s)", tc.p, tc.at.Format(time.Kitchen), got, tc.want, chainText(chain))
		}
	}
	if n := len(g.Chain(Principal{Key: "ASIAHOPB"}, t0.Add(20*time.Minute))); n != 3 {
		t.Errorf("%d links, want 3 (hop B, hop A, alice)", n)
	}

	// A loop (two sessions each issued by the other: corrupt input) ends.
	g.Add(Issue{Kind: AssumeRole, Time: t0, Key: "ASIAX", Session: "arn:aws:sts::1:assumed-role/x/1", Caller: Principal{Key: "ASIAY"}})
	g.Add(Issue{Kind: AssumeRole, Time: t0, Key: "ASIAY", Session: "arn:aws:sts::1:assumed-role/y/1", Caller: Principal{Key: "ASIAX"}})
	if n := len(g.Chain(Principal{Key: "ASIAX"}, t0.Add(time.Minute))); n > maxChain+1 {
		t.Errorf("a loop made %d links", n)
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

// TestEnrich: events made with a temporary credential get the identity
// at the start of its chain as their origin, in the batch that issued
// it and after; other events are left alone; credentials long expired
// are pruned.
func TestEnrich(t *testing.T) {
	ids := NewIdentities()
	evs := events(t, "stratus-red-team-detonation-logs/detonation-logs/aws.execution.ec2-launch-unusual-instances.json")
	ids.Enrich(evs)
	for _, e := range evs {
		want := ""
		if e.Action == "RunInstances" {
			want = "arn:aws:iam::900138736586:user/christophe"
		}
		if e.Session.Origin != want {
			t.Errorf("%s by %s: origin %q, want %q", e.Action, e.Actor.Name, e.Session.Origin, want)
		}
	}
	otrf := events(t, "otrf-security-datasets-aws/ec2_proxy_s3_exfiltration_2020-09-14011940.json")
	ids.Enrich(otrf)
	n := 0
	for _, e := range otrf {
		if e.Session.Origin == "instance/i-0317f6c6b66ae9c40" {
			n++
		}
	}
	if n != 11 {
		t.Errorf("%d events of the stolen instance credential have its origin, want 11", n)
	}

	g := NewGraph()
	t0 := time.Date(2024, 7, 10, 0, 0, 0, 0, time.UTC)
	g.Add(Issue{Kind: AssumeRole, Time: t0, Key: "ASIAOLD", Session: "arn:aws:sts::1:assumed-role/r/old", Expires: t0.Add(time.Hour)})
	g.Add(Issue{Kind: SessionToken, Time: t0.Add(48 * time.Hour), Key: "ASIANEW", Session: "arn:aws:iam::1:user/u"})
	g.Prune(t0.Add(2 * time.Hour))
	if g.Len() != 1 || g.issuer("ASIAOLD", "", time.Time{}) != nil || g.issuer("ASIANEW", "", time.Time{}) == nil {
		t.Errorf("after pruning: %d issues", g.Len())
	}
}

// TestCompromisedRoot: Panther's "compromised root credentials"
// scenario: the attacker, in root's console session, made a user and a
// key for it, and used the key. The key leads back to root.
func TestCompromisedRoot(t *testing.T) {
	raw, err := os.ReadFile(testdata + "panther-analysis-rule-tests/test_scenarios/compromised-root-creds/attacker_cloudtrail.yml")
	if err != nil {
		t.Fatal(err)
	}
	var scenario struct {
		Logs []map[string]any `yaml:"Logs"`
	}
	if err := yaml.Unmarshal(raw, &scenario); err != nil {
		t.Fatal(err)
	}
	doc, err := json.Marshal(map[string]any{"Records": scenario.Logs})
	if err != nil {
		t.Fatal(err)
	}
	var evs []*event.Event
	_, err = parse.Parse(strings.NewReader(string(doc)), "aws.cloudtrail", parse.Options{Tenant: "acme", Received: time.Now()}, func(r parse.Result) error {
		if r.Event != nil {
			evs = append(evs, r.Event)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ids := NewIdentities()
	ids.Enrich(evs)
	var used *event.Event
	for _, e := range evs {
		if e.Session.ID == "AKIASWJJJ66ZZZII4IYY" {
			used = e
		}
	}
	if used == nil {
		t.Fatal("the malicious key is never used in the scenario")
	}
	got := chainText(ids.g.Chain(Principal{Key: used.Session.ID, ARN: used.Actor.ID}, used.Time))
	want := "arn:aws:iam::493859302102:user/tracy_stone [AKIASWJJJ66ZZZII4IYY] (CreateAccessKey) ← arn:aws:iam::493859302102:root"
	if got != want {
		t.Errorf("the malicious key:\n got %s\nwant %s", got, want)
	}
	if used.Session.Origin != "arn:aws:iam::493859302102:root" {
		t.Errorf("the key's use has origin %q", used.Session.Origin)
	}
}

// memStore is a Store over events in memory, for Who: it matches only
// the kinds of search Who makes.
type memStore []*event.Event

func (m memStore) Find(_ context.Context, q string, from, to time.Time, limit int, fn func(*event.Event) error) error {
	for _, e := range m {
		ok := false
		switch {
		case q == IssuingQuery:
			_, ok = FromEvent(e)
		case q == AssetQuery:
			ok = e.Action == "RunInstances"
		default:
			ok = strings.Contains(q, `"`+e.Session.ID+`"`) || strings.Contains(q, `"`+e.Actor.ID+`"`)
		}
		if ok {
			if err := fn(e); err != nil {
				return err
			}
		}
	}
	return nil
}

// TestWhoInstanceAddresses: with the instance's addresses known from its
// launch, its own calls are not flagged and another address's are.
func TestWhoInstanceAddresses(t *testing.T) {
	t0 := time.Date(2024, 7, 10, 12, 0, 0, 0, time.UTC)
	role := "arn:aws:sts::1:assumed-role/web/i-0123456789abcdef0"
	launch := &event.Event{Source: "aws.cloudtrail", Action: "RunInstances", Time: t0, Cloud: event.Cloud{Provider: "aws", Account: "1"},
		Raw: []byte(`{"responseElements":{"instancesSet":{"items":[{"instanceId":"i-0123456789abcdef0","privateIpAddress":"10.0.0.5","ipAddress":"203.0.113.9"}]}}}`)}
	profile := &event.Event{Source: "aws.cloudtrail", Action: "AssumeRole", Time: t0.Add(time.Minute), Cloud: event.Cloud{Provider: "aws", Account: "1"},
		Raw: []byte(`{"eventSource":"sts.amazonaws.com","userIdentity":{"type":"AWSService","invokedBy":"ec2.amazonaws.com"},"requestParameters":{"roleArn":"arn:aws:iam::1:role/web","roleSessionName":"i-0123456789abcdef0"},"responseElements":{"credentials":{"accessKeyId":"ASIAWEB"}}}`)}
	use := func(src string, d time.Duration) *event.Event {
		return &event.Event{Source: "aws.cloudtrail", Action: "GetObject", Time: t0.Add(d), SrcIP: netip.MustParseAddr(src), Cloud: event.Cloud{Account: "1"},
			Session: event.Session{ID: "ASIAWEB"}, Actor: event.Actor{Type: "AssumedRole", ID: role}}
	}
	st := memStore{launch, profile, use("203.0.113.9", 5*time.Minute), use("198.51.100.1", 6*time.Minute)}
	rep, err := Who(context.Background(), st, nil, "ASIAWEB", time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Uses) != 2 || rep.Uses[0].OffInstance != "" || !strings.Contains(rep.Uses[1].OffInstance, "198.51.100.1, not one of the instance's addresses") {
		t.Errorf("uses %+v", rep.Uses)
	}
	if rep.Origin.Type != "EC2Instance" || rep.Origin.Name != "i-0123456789abcdef0" {
		t.Errorf("origin %+v", rep.Origin)
	}
}

// TestIssuingQuery: the search for the events that issue credentials is
// one the store runs.
func TestIssuingQuery(t *testing.T) {
	q, err := query.Parse(IssuingQuery)
	if err != nil {
		t.Fatal(query.Caret(IssuingQuery, err))
	}
	if _, err := query.Compile(query.Request{Query: q, Scope: query.Scope{All: true}}, query.DuckDB); err != nil {
		t.Fatal(err)
	}
}
