package detect

import (
	"bytes"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/event"
)

// testDoc is a CloudTrail-shaped record that the matching tests run on.
const testDoc = `{
	"eventSource": "iam.amazonaws.com",
	"eventName": "CreateAccessKey",
	"sourceIPAddress": "203.0.113.7",
	"userAgent": "aws-cli/2.13.0 Python/3.11 Linux",
	"awsRegion": "eu-west-1",
	"errorCode": null,
	"readOnly": false,
	"eventVersion": "1.08",
	"count": 42,
	"userIdentity": {"type": "IAMUser", "userName": "alice", "arn": "arn:aws:iam::111122223333:user/alice"},
	"requestParameters": {"userName": "bob", "tags": ["prod", "Finance"], "policy": "{\"Effect\":\"Allow\"}"},
	"resources": [{"ARN": "arn:aws:iam::111122223333:user/bob", "type": "AWS::IAM::User"}, {"ARN": "arn:aws:kms:key/1", "type": "AWS::KMS::Key"}],
	"eventTime": "2024-07-10T11:50:03Z",
	"encoded": "SGVsbG8gZnJvbSBhIGJhc2U2NCBwYXlsb2FkIHdpdGggcG93ZXJzaGVsbCAtZW5j",
	"commandLine": "powershell.exe /enc abc",
	"b64": "SGVsbG8=",
	"quote": "say \"hi\" \\ there"
}`

func testEvent() *event.Event {
	return &event.Event{Source: "aws.cloudtrail", Action: "CreateAccessKey", Service: "iam.amazonaws.com", SrcIP: netip.MustParseAddr("203.0.113.7"), Raw: []byte(testDoc)}
}

// compileOne compiles a rule from its detection section (YAML, indented
// under detection:) for CloudTrail.
func compileOne(t *testing.T, det string) (*Engine, error) {
	t.Helper()
	src := "title: t\nid: r1\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n" + det
	rules, err := Parse("test.yml", []byte(src))
	if err != nil {
		return nil, err
	}
	return NewEngine(rules, Options{Placeholders: map[string][]string{"admins": {"alice", "root"}, "none": {}}})
}

func matches(t *testing.T, e *Engine, ev *event.Event) bool {
	t.Helper()
	hit := false
	if err := e.NewMatcher().Match(ev, func(*Rule) { hit = true }); err != nil {
		t.Fatal(err)
	}
	return hit
}

func TestMatch(t *testing.T) {
	tests := []struct {
		name string
		det  string
		want bool
	}{
		{"equal, case-insensitive", "  s: {eventName: createaccesskey}\n  condition: s", true},
		{"equal, other value", "  s: {eventName: DeleteUser}\n  condition: s", false},
		{"list is or", "  s: {eventName: [DeleteUser, CreateAccessKey]}\n  condition: s", true},
		{"map is and", "  s: {eventName: CreateAccessKey, eventSource: s3.amazonaws.com}\n  condition: s", false},
		{"list of maps is or", "  s:\n    - eventSource: s3.amazonaws.com\n    - eventName: CreateAccessKey\n  condition: s", true},
		{"nested field", "  s: {userIdentity.type: IAMUser}\n  condition: s", true},
		{"array of scalars, any element", "  s: {requestParameters.tags: finance}\n  condition: s", true},
		{"array of objects", "  s: {resources.type: 'AWS::KMS::Key'}\n  condition: s", true},
		{"wildcard *", "  s: {userAgent: 'aws-cli/*linux'}\n  condition: s", true},
		{"wildcard ?", "  s: {awsRegion: 'eu-west-?'}\n  condition: s", true},
		{"wildcard ? is one character", "  s: {awsRegion: 'eu-west?'}\n  condition: s", false},
		{"escaped * is literal", "  s: {eventName: 'Create\\*'}\n  condition: s", false},
		{"contains", "  s: {userAgent|contains: PYTHON}\n  condition: s", true},
		{"startswith", "  s: {userAgent|startswith: aws-cli/2}\n  condition: s", true},
		{"endswith", "  s: {userAgent|endswith: Linux}\n  condition: s", true},
		{"endswith, wrong", "  s: {userAgent|endswith: Windows}\n  condition: s", false},
		{"contains all", "  s: {userAgent|contains|all: [aws-cli, python]}\n  condition: s", true},
		{"contains all, one missing", "  s: {userAgent|contains|all: [aws-cli, boto3]}\n  condition: s", false},
		{"cased", "  s: {eventName|cased: createaccesskey}\n  condition: s", false},
		{"cased, exact", "  s: {eventName|cased: CreateAccessKey}\n  condition: s", true},
		{"re", "  s: {userAgent|re: '^aws-cli/2\\.[0-9]+'}\n  condition: s", true},
		{"re is case-sensitive", "  s: {userAgent|re: 'LINUX'}\n  condition: s", false},
		{"re|i", "  s: {userAgent|re|i: 'LINUX$'}\n  condition: s", true},
		{"re with a required literal", "  s: {userIdentity.arn|re: '.+:iam::[0-9]+:user/.+'}\n  condition: s", true},
		{"re whose required literal is absent", "  s: {userIdentity.arn|re: '.+:assumed-role/aws:.+'}\n  condition: s", false},
		{"re alternation", "  s: {userIdentity.arn|re: '(assumed-role|user)/alice$'}\n  condition: s", true},
		{"re optional literal", "  s: {userIdentity.arn|re: '^arn:aws:iam::[0-9]+:(xyz)?user/alice'}\n  condition: s", true},
		{"cidr", "  s: {sourceIPAddress|cidr: 203.0.113.0/24}\n  condition: s", true},
		{"cidr, outside", "  s: {sourceIPAddress|cidr: 10.0.0.0/8}\n  condition: s", false},
		{"cidr v6 against v4", "  s: {sourceIPAddress|cidr: '2001:db8::/32'}\n  condition: s", false},
		{"number equals", "  s: {count: 42}\n  condition: s", true},
		{"gt", "  s: {count|gt: 41}\n  condition: s", true},
		{"lt", "  s: {count|lt: 42}\n  condition: s", false},
		{"lte", "  s: {count|lte: 42}\n  condition: s", true},
		{"gte on a string number", "  s: {eventVersion|gte: 1.05}\n  condition: s", true},
		{"bool", "  s: {readOnly: false}\n  condition: s", true},
		{"null matches null", "  s: {errorCode: null}\n  condition: s", true},
		{"null matches missing", "  s: {errorMessage: null}\n  condition: s", true},
		{"null does not match a value", "  s: {eventName: null}\n  condition: s", false},
		{"exists true", "  s: {requestParameters.userName|exists: true}\n  condition: s", true},
		{"exists false", "  s: {requestParameters.policyArn|exists: false}\n  condition: s", true},
		{"exists on null", "  s: {errorCode|exists: true}\n  condition: s", true},
		{"empty string is not missing", "  s: {errorMessage: ''}\n  condition: s", false},
		{"neq", "  s: {eventName|neq: DeleteUser}\n  condition: s", true},
		{"neq, equal", "  s: {eventName|neq: CreateAccessKey}\n  condition: s", false},
		{"fieldref", "  s: {requestParameters.userName|fieldref: userIdentity.userName}\n  condition: s", false},
		{"fieldref neq", "  s: {requestParameters.userName|fieldref|neq: userIdentity.userName}\n  condition: s", true},
		{"expand", "  s: {userIdentity.userName|expand: '%admins%'}\n  condition: s", true},
		{"expand, no values", "  s: {userIdentity.userName|expand: '%none%'}\n  condition: s", false},
		{"base64", "  s: {b64|base64: Hello}\n  condition: s", true},
		{"base64offset contains", "  s: {encoded|base64offset|contains: 'powershell'}\n  condition: s", true},
		{"base64offset contains, absent", "  s: {encoded|base64offset|contains: 'cmd.exe'}\n  condition: s", false},
		{"windash", "  s: {commandLine|windash|contains: ' -enc '}\n  condition: s", true},
		{"escaped quotes in values", "  s: {quote: 'say \"hi\" \\ there'}\n  condition: s", true},
		{"hour of a time", "  s: {eventTime|hour: 11}\n  condition: s", true},
		{"minute gte", "  s: {eventTime|minute|gte: 51}\n  condition: s", false},
		{"keyword", "  k: [Finance]\n  condition: k", true},
		{"keyword absent", "  k: [mimikatz]\n  condition: k", false},
		{"keyword with quotes in JSON", "  k: ['say \"hi\"']\n  condition: k", true},
		{"keywords all", "  k:\n    '|all': [alice, bob]\n  condition: k", true},
		{"not", "  s: {eventName: DeleteUser}\n  condition: not s", true},
		{"and not", "  s: {eventName: CreateAccessKey}\n  f: {userIdentity.type: Root}\n  condition: s and not f", true},
		{"precedence: not, and, or", "  a: {eventName: CreateAccessKey}\n  b: {eventName: X}\n  c: {eventName: Y}\n  condition: b and c or a", true},
		{"parentheses", "  a: {eventName: CreateAccessKey}\n  b: {eventName: X}\n  c: {eventName: Y}\n  condition: b and (c or a)", false},
		{"1 of pattern", "  sel_a: {eventName: X}\n  sel_b: {eventName: CreateAccessKey}\n  condition: 1 of sel_*", true},
		{"all of pattern", "  sel_a: {eventName: X}\n  sel_b: {eventName: CreateAccessKey}\n  condition: all of sel_*", false},
		{"all of them", "  a: {eventName: CreateAccessKey}\n  b: {eventSource: iam.amazonaws.com}\n  condition: all of them", true},
		{"them skips _ identifiers", "  a: {eventName: CreateAccessKey}\n  _b: {eventSource: s3.amazonaws.com}\n  condition: all of them", true},
		{"1 of them", "  a: {eventName: X}\n  b: {eventName: Y}\n  condition: 1 of them", false},
		{"condition list is or", "  a: {eventName: X}\n  b: {eventName: CreateAccessKey}\n  condition: [a, b]", true},
		{"normalized field", "  s: {vigil.action: createaccesskey}\n  condition: s", true},
		{"normalized address as text", "  s: {vigil.src_ip: 203.0.113.7}\n  condition: s", true},
		{"normalized address, startswith", "  s: {vigil.src_ip|startswith: '203.0.'}\n  condition: s", true},
		{"normalized address, cidr", "  s: {vigil.src_ip|cidr: 203.0.113.0/24}\n  condition: s", true},
		{"normalized address, other cidr", "  s: {vigil.src_ip|cidr: 10.0.0.0/8}\n  condition: s", false},
		{"normalized address, re", "  s: {vigil.src_ip|re: '^203\\.0\\.113\\.\\d+$'}\n  condition: s", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := compileOne(t, tt.det)
			if err != nil {
				t.Fatal(err)
			}
			if got := matches(t, e, testEvent()); got != tt.want {
				t.Errorf("match = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestMatchIndex: rules indexed by eventName are tried only on events with
// that action, and still match them.
func TestMatchIndex(t *testing.T) {
	e, err := compileOne(t, "  s: {eventName: CreateAccessKey}\n  condition: s")
	if err != nil {
		t.Fatal(err)
	}
	src := e.sources["aws.cloudtrail"]
	if len(src.always) != 0 || len(src.byAction["createaccesskey"]) != 1 {
		t.Fatalf("rule not indexed by its eventName: always %d, by action %v", len(src.always), src.byAction)
	}
	ev := testEvent()
	ev.Action = "DeleteUser" // the index looks at the normalized action
	if matches(t, e, ev) {
		t.Error("rule tried on an event with another action")
	}
	// Prefixes are indexed too: a startswith, or a value whose only
	// wildcard ends it. Other modifiers and wildcards are not.
	for _, tt := range []struct {
		det     string
		indexed bool
	}{
		{"  s: {eventName|startswith: Create}\n  condition: s", true},
		{"  s: {eventName: 'UpdateFunctionConfiguration*'}\n  condition: s", true},
		{"  s: {eventName|contains: Create}\n  condition: s", false},
		{"  s: {eventName: '*AccessKey'}\n  condition: s", false},
		{"  s: {eventName: 'Create*Key'}\n  condition: s", false},
		{"  s: {eventName: '*'}\n  condition: s", false},
		{"  s: {eventName: X}\n  condition: not s", false},
	} {
		e, err := compileOne(t, tt.det)
		if err != nil {
			t.Fatal(err)
		}
		if src := e.sources["aws.cloudtrail"]; (len(src.always) == 0) != tt.indexed {
			t.Errorf("%s: indexed %v, want %v", tt.det, len(src.always) == 0, tt.indexed)
		}
	}
	// A rule indexed by a prefix is tried on every action with it, those
	// that other rules index exactly included, and only once even when
	// it also names the action; the longest prefix decides for actions
	// with no set of their own.
	e, err = NewEngine(mustParse(t, `title: by prefix
id: p1
logsource: {product: aws, service: cloudtrail}
detection:
    s: {eventName|startswith: [Update, UpdateFunctionConfiguration, UpdateFunctionConfiguration20150331v2]}
    condition: s
---
title: exact
id: p2
logsource: {product: aws, service: cloudtrail}
detection:
    s: {eventName: UpdateFunctionConfiguration20150331v2}
    condition: s
---
title: longer prefix
id: p3
logsource: {product: aws, service: cloudtrail}
detection:
    s: {eventName: 'UpdateFunctionCode*'}
    condition: s
`), Options{})
	if err != nil {
		t.Fatal(err)
	}
	for action, want := range map[string]string{
		"UpdateFunctionConfiguration20150331v2": "p1 p2",
		"UpdateFunctionCode20150331v2":          "p1 p3",
		"UpdateTrail":                           "p1",
		"CreateUser":                            "",
	} {
		ev := testEvent()
		ev.Action = action
		ev.Raw = []byte(`{"eventName": "` + action + `"}`)
		var got []string
		if err := e.NewMatcher().Match(ev, func(r *Rule) { got = append(got, r.ID) }); err != nil {
			t.Fatal(err)
		}
		if strings.Join(got, " ") != want {
			t.Errorf("%s: matched %v, want %q", action, got, want)
		}
	}
}

func mustParse(t *testing.T, src string) []*Rule {
	t.Helper()
	rules, err := Parse("test.yml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return rules
}

// TestRuleErrors: what cannot be loaded is refused with the line and the
// reason.
func TestRuleErrors(t *testing.T) {
	tests := []struct {
		name, det, want string
	}{
		{"unknown modifier", "  s: {eventName|sounds_like: x}\n  condition: s", `test.yml:5: rule r1: eventName|sounds_like: unknown modifier "sounds_like"`},
		{"unknown identifier", "  s: {eventName: x}\n  condition: s and t", `test.yml:6: rule r1: condition: unknown search identifier "t"`},
		{"unbalanced", "  s: {eventName: x}\n  condition: (s", `column 3: expected ) to close the ( at column 1`},
		{"bad regexp", "  s: {eventName|re: '(?<=a)b'}\n  condition: s", `test.yml:5: rule r1: eventName|re: regular expression`},
		{"bad cidr", "  s: {sourceIPAddress|cidr: 10.0.0.0/33}\n  condition: s", `sourceIPAddress|cidr: cidr:`},
		{"all with one value", "  s: {eventName|all: x}\n  condition: s", `all needs a list`},
		{"gt not a number", "  s: {count|gt: many}\n  condition: s", `"many" is not a number`},
		{"re and contains", "  s: {eventName|re|contains: x}\n  condition: s", `cannot be combined`},
		{"exists not bool", "  s: {eventName|exists: yes please}\n  condition: s", `exists takes true or false`},
		{"no condition", "  s: {eventName: x}", `detection has no condition`},
		{"pattern matches nothing", "  s: {eventName: x}\n  condition: 1 of x*", `"x*" matches no search identifier`},
		{"nested value", "  s: {eventName: {a: b}}\n  condition: s", `a value is a string, number, boolean or null`},
		{"unknown normalized field", "  s: {vigil.nope: x}\n  condition: s", `unknown normalized field "nope"`},
		{"count without timeframe", "  s: {eventName: x}\n  condition: s | count() > 5", `needs a timeframe`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := compileOne(t, tt.det)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestRequiredLiterals(t *testing.T) {
	for expr, want := range map[string]string{
		".+:assumed-role/aws:.+": ":assumed-role/aws:",
		"^abc$":                  "abc",
		"(?i)abc":                "",
		"a|b":                    "",
		"(x)?abcd":               "abcd",
		"(foo[0-9]+barbaz)":      "foo barbaz",
		"x*":                     "",
		":assumed-role/[^/]+/i-[0-9a-fA-F]{8,17}$": ":assumed-role/ /i-",
		`"Principal"\s*:\s*"\*"`:                   `"Principal" : "*"`,
	} {
		re, err := compileRegexp(expr, "")
		if err != nil {
			t.Fatal(err)
		}
		if got := string(bytes.Join(re.must, []byte(" "))); got != want {
			t.Errorf("%s: required literals %q, want %q", expr, got, want)
		}
	}
}

// TestSourceQuery: a hunt reads only the sources its rules apply to.
func TestSourceQuery(t *testing.T) {
	for _, tt := range []struct{ logsource, want string }{
		{"{product: aws, service: cloudtrail}", `source:"aws.cloudtrail"`},
		{"{product: linux, service: sshd}", `source:"syslog"`},
		{"{product: m365, service: audit}", ``},
		{"{}", `source:"aws.cloudtrail" OR source:"aws.elb" OR source:"aws.vpcflow" OR source:"azure.activity" OR source:"azure.signin" OR source:"csv" OR source:"gcp.audit" OR source:"json" OR source:"syslog"`},
	} {
		rules, err := Parse("t.yml", []byte("title: t\nid: r\nlogsource: "+tt.logsource+"\ndetection:\n  s: {a: b}\n  condition: s\n"))
		if err != nil {
			t.Fatal(err)
		}
		e, err := NewEngine(rules, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if got := e.SourceQuery(); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.logsource, got, tt.want)
		}
	}
}

// TestShortcutsAgree: the fields read from the event instead of the
// document (knownFields), and addresses tested without their text
// (addrFields), give the same detections as reading the document, on
// every real fixture: the Stratus Red Team detonations and the
// panther-analysis test events, under every SigmaHQ and built-in rule.
func TestShortcutsAgree(t *testing.T) {
	var evs []*event.Event
	files, _ := filepath.Glob(filepath.Join(stratusDir, "*.json"))
	for _, f := range files {
		evs = append(evs, parseFile(t, f)...)
	}
	for _, cases := range loadPanther(t) {
		for _, pt := range cases {
			more, err := pantherEvents(pt.Event)
			if err == nil {
				evs = append(evs, more...)
			}
		}
	}
	detections := func() []string {
		rules, _ := LoadPaths(sigmaHQ)
		builtin, err := Builtin()
		if err != nil {
			t.Fatal(err)
		}
		e, _ := NewEngine(append(rules, builtin...), Options{})
		var out []string
		for i, ev := range evs {
			// A fresh matcher for each event, so that correlations do
			// not depend on the order of unrelated fixtures.
			if err := e.NewMatcher().Match(ev, func(r *Rule) {
				out = append(out, fmt.Sprintf("%d %s %v", i, r.ID, e.NewMatcher().Fields(r, ev)))
			}); err != nil {
				t.Fatal(err)
			}
		}
		return out
	}
	fast := detections()
	defer func(k map[string]map[string]normField, a map[string]func(*event.Event) netip.Addr) {
		knownFields, addrFields = k, a
	}(knownFields, addrFields)
	knownFields, addrFields = nil, nil
	slow := detections()
	if len(fast) < 1000 {
		t.Fatalf("only %d detections on %d events", len(fast), len(evs))
	}
	if !slices.Equal(fast, slow) {
		for i := range min(len(fast), len(slow)) {
			if fast[i] != slow[i] {
				t.Fatalf("%d detections with shortcuts, %d without; first difference:\n%s\n%s", len(fast), len(slow), fast[i], slow[i])
			}
		}
		t.Fatalf("%d detections with shortcuts, %d without", len(fast), len(slow))
	}
	t.Logf("%d events, %d detections", len(evs), len(fast))
}
