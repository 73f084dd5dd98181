package inventory

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// intelFile writes a list into a temporary directory and returns its path.
func intelFile(t testing.TB, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// loadOne loads one list, failing the test on an error.
func loadOne(t *testing.T, src IntelSource) (*Intel, IntelStats) {
	t.Helper()
	in, stats, err := LoadIntel(src)
	if err != nil {
		t.Fatal(err)
	}
	return in, stats[0]
}

// intelQuery is a lookup and what it should give: want is the matched
// source and description, "source/description", or "" for no match.
type intelQuery struct {
	kind  string // ip, domain, hash
	value string
	want  string
}

func (q intelQuery) check(t *testing.T, in *Intel) {
	t.Helper()
	var m Match
	var ok bool
	switch q.kind {
	case "ip":
		m, ok = in.MatchIP(netip.MustParseAddr(q.value))
	case "domain":
		m, ok = in.MatchDomain(q.value)
	case "hash":
		m, ok = in.MatchHash(q.value)
	default:
		t.Fatalf("bad query kind %q", q.kind)
	}
	got := ""
	if ok {
		got = m.Source + "/" + m.Description
	}
	if got != q.want {
		t.Errorf("Match %s %s = %q, want %q", q.kind, q.value, got, q.want)
	}
}

func TestIntelText(t *testing.T) {
	in, st := loadOne(t, IntelSource{Path: "testdata/intel/blocklist.txt"})
	if st.Name != "blocklist" || st.Format != IntelText {
		t.Errorf("name %q format %v, want blocklist text", st.Name, st.Format)
	}
	if st.IPs != 2 || st.CIDRs != 2 || st.Domains != 2 || st.Hashes != 3 {
		t.Errorf("counts ips %d cidrs %d domains %d hashes %d, want 2 2 2 3", st.IPs, st.CIDRs, st.Domains, st.Hashes)
	}
	wantSkips := []IntelSkip{
		{13, "more than one field"},
		{14, "a URL: list its host instead"},
	}
	if st.Skipped != 2 || !slices.Equal(st.Skips, wantSkips) {
		t.Errorf("skipped %d %v, want %v", st.Skipped, st.Skips, wantSkips)
	}
	if in.Len() != 9 {
		t.Errorf("Len = %d, want 9", in.Len())
	}
	for _, q := range []intelQuery{
		{"ip", "198.51.100.7", "blocklist/"},
		{"ip", "::ffff:198.51.100.7", "blocklist/"},
		{"ip", "198.51.100.8", ""},
		{"ip", "203.0.113.0", "blocklist/SBL-TEST-1"},
		{"ip", "203.0.113.255", "blocklist/SBL-TEST-1"},
		{"ip", "203.0.114.0", ""},
		{"ip", "2001:db8:bad:ffff::1", "blocklist/"},
		{"ip", "2001:db8:bad:1::1", "blocklist/"},
		{"ip", "2001:db8:bae::", ""},
		{"domain", "evil.example.com", "blocklist/"},
		{"domain", "A.b.EVIL.example.com.", "blocklist/"},
		{"domain", "notevil.example.com", ""},
		{"domain", "example.com", ""},
		{"domain", "phish.example.net", "blocklist/"},
		{"domain", "x.phish.example.net", "blocklist/"},
		{"hash", "44D88612FEA8A8F36DE82E1278ABB02F", "blocklist/"},
		{"hash", "3395856ce81f2b7382dee72602f798b642f14140", "blocklist/EICAR, SHA-1"},
		{"hash", "275A021BBFB6489E54D471899F7DB9D1663FC695EC2FE2A2C4538AABF651FD0F", "blocklist/"},
		{"hash", "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0e", ""},
		{"hash", "not hex", ""},
	} {
		q.check(t, in)
	}
}

func TestIntelLines(t *testing.T) {
	for _, tc := range []struct {
		line   string
		kind   indKind
		value  string // the prefix or domain
		reason string // the skip's reason, when skipped
	}{
		{line: "1.2.3.4", kind: kindIP, value: "1.2.3.4/32"},
		{line: "1.2.3.4/24", kind: kindCIDR, value: "1.2.3.0/24"},
		{line: "1.2.3.4/32", kind: kindIP, value: "1.2.3.4/32"},
		{line: "::ffff:1.2.3.4", kind: kindIP, value: "1.2.3.4/32"},
		{line: "::ffff:1.2.3.0/120", kind: kindCIDR, value: "1.2.3.0/24"},
		{line: "2001:DB8::/32", kind: kindCIDR, value: "2001:db8::/32"},
		{line: "0.0.0.0/0", kind: kindCIDR, value: "0.0.0.0/0"},
		{line: "Example.COM", kind: kindDomain, value: "example.com"},
		{line: "*.example.com", kind: kindDomain, value: "example.com"},
		{line: ".example.com.", kind: kindDomain, value: "example.com"},
		{line: "_dmarc.example.com", kind: kindDomain, value: "_dmarc.example.com"},
		{line: "xn--80ak6aa92e.com", kind: kindDomain, value: "xn--80ak6aa92e.com"},
		{line: "d41d8cd98f00b204e9800998ecf8427e", kind: kindMD5},
		{line: "1.2.3.4/33", reason: `not a CIDR network: "1.2.3.4/33"`},
		{line: "1.2.3.256", reason: `not an IP address or domain: "1.2.3.256"`},
		{line: "fe80::1%eth0/64", reason: `not a CIDR network: "fe80::1%eth0/64"`},
		{line: "localhost", reason: `not a domain: "localhost" has one label`},
		{line: "bad..example", reason: `not an IP address, network, domain or hash: "bad..example"`},
		{line: "ex ample.com", reason: `not an IP address, network, domain or hash: "ex ample.com"`},
		{line: "пример.рф", reason: `not an IP address, network, domain or hash: "пример.рф"`},
		{line: strings.Repeat("ab", 64), reason: "hex of length 128: not an MD5, SHA-1 or SHA-256 hash"},
		{line: "https://a.example/x", reason: "a URL: list its host instead"},
		{line: strings.Repeat("a.", 127) + "com", reason: `domain longer than 253 bytes: "a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a."…`},
	} {
		ind, err := parseIndicator(tc.line)
		if tc.reason != "" {
			if err == nil || err.Error() != tc.reason {
				t.Errorf("%q: err %v, want %q", tc.line, err, tc.reason)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.line, err)
			continue
		}
		got := ind.domain
		if ind.kind == kindIP || ind.kind == kindCIDR {
			got = ind.prefix.String()
		}
		if ind.kind != tc.kind || got != tc.value {
			t.Errorf("%q: kind %d %q, want %d %q", tc.line, ind.kind, got, tc.kind, tc.value)
		}
	}
}

func TestIntelCSV(t *testing.T) {
	in, st := loadOne(t, IntelSource{Name: "feed", Path: "testdata/intel/feed.csv"})
	if st.Format != IntelCSV || st.IPs != 1 || st.Domains != 1 || st.Hashes != 1 {
		t.Errorf("stats %+v", st)
	}
	if want := []IntelSkip{{6, `not an IP address or domain: "300.1.1.1"`}}; !slices.Equal(st.Skips, want) {
		t.Errorf("skips %v, want %v", st.Skips, want)
	}
	m, ok := in.MatchDomain("www.bad.example.org")
	if want := (Match{Source: "feed", Type: "phishing", Description: `Credential phishing, kit "X"`}); !ok || m != want {
		t.Errorf("MatchDomain = %+v %v, want %+v", m, ok, want)
	}
	m, ok = in.MatchIP(netip.MustParseAddr("198.51.100.8"))
	if want := (Match{Source: "feedco", Type: "c2", Description: "Botnet controller"}); !ok || m != want {
		t.Errorf("MatchIP = %+v %v, want %+v (the source column names the source)", m, ok, want)
	}

	for _, tc := range []struct {
		name, csv string
		queries   []intelQuery
		skips     []IntelSkip
		err       string // a regexp the error matches
	}{
		{
			name: "typed columns",
			csv:  "IP Address,Domain,SHA256,Comment\n192.0.2.1,a.example,,one\n192.0.2.0/28,,e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855,two\n",
			queries: []intelQuery{
				{"ip", "192.0.2.1", "l/one"}, // the most specific network
				{"ip", "192.0.2.2", "l/two"},
				{"domain", "a.example", "l/one"},
				{"hash", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "l/two"},
			},
		},
		{
			name:  "cell does not fit its column",
			csv:   "ip,md5\nexample.com,e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n192.0.2.1,\n",
			skips: []IntelSkip{{2, `"example.com" does not fit its column`}, {2, `"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" does not fit its column`}},
		},
		{
			name:    "url column, no scheme",
			csv:     "url\ncdn.bad.example/x.js\nhttp://[2001:db8::9]:80/\n",
			queries: []intelQuery{{"domain", "cdn.bad.example", "l/"}, {"ip", "2001:db8::9", "l/"}},
		},
		{
			name:  "empty row cells",
			csv:   "value,description\n,nothing\n192.0.2.1,x\n",
			skips: []IntelSkip{{2, "no indicator in the row"}},
		},
		{
			name:  "bad quoting skips the row",
			csv:   "value\n192.0.2.1\n\"bad\"quote\n192.0.2.2\n",
			skips: []IntelSkip{{3, `bad CSV: extraneous or missing " in quoted-field`}},
			queries: []intelQuery{
				{"ip", "192.0.2.1", "l/"},
				{"ip", "192.0.2.2", "l/"},
			},
		},
		{
			name: "no indicator column",
			csv:  "# a comment\nfoo,bar\n1,2\n",
			err:  `^.*/l\.csv:2: CSV header names no indicator column`,
		},
		{
			name: "nothing read",
			csv:  "ip\nnope\nnada\n",
			err:  `^.*/l\.csv:2: no indicator read from 2 entries, the first: not a domain: "nope" has one label`,
		},
		{
			name: "empty file",
			csv:  "",
		},
		{
			name:    "byte-order mark",
			csv:     "\ufeffIndicator\n192.0.2.1\n",
			queries: []intelQuery{{"ip", "192.0.2.1", "l/"}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in, stats, err := LoadIntel(IntelSource{Path: intelFile(t, "l.csv", tc.csv)})
			if tc.err != "" {
				if err == nil || !regexp.MustCompile(tc.err).MatchString(err.Error()) {
					t.Fatalf("err %v, want %s", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(stats[0].Skips, tc.skips) {
				t.Errorf("skips %v, want %v", stats[0].Skips, tc.skips)
			}
			for _, q := range tc.queries {
				q.check(t, in)
			}
		})
	}
}

func TestIntelSTIX(t *testing.T) {
	in, st := loadOne(t, IntelSource{Name: "cert", Path: "testdata/intel/bundle.json"})
	if st.Format != IntelSTIX || st.IPs != 1 || st.CIDRs != 1 || st.Domains != 2 || st.Hashes != 3 || st.Ignored != 2 {
		t.Errorf("stats %+v", st)
	}
	wantSkips := []IntelSkip{
		{52, "revoked"},
		{64, "expired at 2001-01-01T00:00:00Z"},
		{76, `pattern "[ipv4-addr:value = '192.0.2.77' AND domain-name:value = 'both.example']": unsupported AND`},
		{87, "unsupported object path email-addr:value"},
		{98, "pattern_type sigma"},
	}
	if !slices.Equal(st.Skips, wantSkips) {
		t.Errorf("skips\n%v\nwant\n%v", st.Skips, wantSkips)
	}
	m, ok := in.MatchDomain("login.phish.example")
	if want := (Match{Source: "cert", Type: "malicious-activity,anonymization", Description: "Phishing landing pages"}); !ok || m != want {
		t.Errorf("MatchDomain = %+v, want %+v", m, want)
	}
	for _, q := range []intelQuery{
		{"ip", "192.0.2.66", "cert/C2 server"},
		{"ip", "2001:db8:c2::ffff", "cert/C2 server"},
		{"ip", "192.0.2.99", ""},
		{"ip", "192.0.2.77", ""},
		{"domain", "cdn.bad.example", "cert/Phishing landing pages"},
		{"domain", "stale.example", ""},
		{"domain", "both.example", ""},
		{"hash", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "cert/Dropper"},
		{"hash", "0CC175B9C0F1B6A831C399E269772661", "cert/Dropper"},
		{"hash", "da39a3ee5e6b4b0d3255bfef95601890afd80709", "cert/Dropper"},
	} {
		q.check(t, in)
	}
}

func TestIntelSTIXPatterns(t *testing.T) {
	for _, tc := range []struct {
		pattern string
		want    []string // the indicators, as parseIndicator would read them, or the skip reasons
		err     string   // of the pattern as a whole
	}{
		{pattern: "[ipv4-addr:value = '198.51.100.1']", want: []string{"198.51.100.1/32"}},
		{pattern: "[ipv4-addr:value ISSUBSET '198.51.100.0/24']", want: []string{"198.51.100.0/24"}},
		{pattern: "[ipv6-addr:value = '2001:db8::1']", want: []string{"2001:db8::1/128"}},
		{pattern: "[ipv4-addr:value = '2001:db8::1']", want: []string{`ipv4-addr:value is "2001:db8::1"`}},
		{pattern: "[ domain-name:value='a.example' ]", want: []string{"a.example"}},
		{pattern: `[domain-name:value = 'it\'s.example']`, want: []string{`not an IP address, network, domain or hash: "it's.example"`}},
		{pattern: "[url:value = 'http://user@host.example:81/p?q#f']", want: []string{"host.example"}},
		{pattern: "[file:hashes.'SHA-256' = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855']", want: []string{"hash"}},
		{pattern: "[file:hashes.SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855']", want: []string{"hash"}},
		{pattern: "[file:hashes.MD5 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855']", want: []string{`file:hashes.MD5 is "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"`}},
		{pattern: "[file:hashes.'SHA-512' = 'ab']", want: []string{"unsupported hash file:hashes.'SHA-512'"}},
		{pattern: "[file:name = 'x.exe']", want: []string{"unsupported object path file:name"}},
		{pattern: "[ipv4-addr:value = '198.51.100.1' OR ipv4-addr:value = '198.51.100.2'] OR ([domain-name:value = 'b.example'])", want: []string{"198.51.100.1/32", "198.51.100.2/32", "b.example"}},
		{pattern: "[(ipv4-addr:value = '198.51.100.1' or (domain-name:value = 'c.example'))]", want: []string{"198.51.100.1/32", "c.example"}},
		{pattern: "[domain-name:value != 'a.example']", want: []string{"unsupported comparison domain-name:value !="}},
		{pattern: "[domain-name:value LIKE '%.example']", want: []string{"unsupported comparison domain-name:value LIKE"}},
		{pattern: "[domain-name:value NOT = 'a.example']", err: `unsupported comparison domain-name:value NOT "="`},
		{pattern: "[domain-name:value IN ('a.example', 'b.example')]", err: `unsupported comparison domain-name:value IN "("`},
		{pattern: "[a:b = 'x'] AND [c:d = 'y']", err: "unsupported AND"},
		{pattern: "[a:b = 'x'] FOLLOWEDBY [c:d = 'y']", err: "unsupported FOLLOWEDBY"},
		{pattern: "[a:b = 'x'] WITHIN 300 SECONDS", err: "unsupported WITHIN"},
		{pattern: "[a:b = 'x'] REPEATS 5 TIMES", err: "unsupported REPEATS"},
		{pattern: "[a:b = 'x'", err: "want ], got end of pattern"},
		{pattern: "[a:b = 'x]", err: "unterminated string"},
		{pattern: "[a:b = 'x'] [c:d = 'y']", err: `unexpected "["`},
		{pattern: "", err: "want [ or (, got end of pattern"},
		{pattern: "[ab = 'x']", err: `bad object path "ab"`},
		{pattern: "[a:b = 5]", err: `unsupported comparison a:b = "5"`},
		{pattern: strings.Repeat("(", 40) + "[a:b = 'x']" + strings.Repeat(")", 40), err: "nested too deep"},
	} {
		cmps, err := parseSTIXPattern(tc.pattern)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("%s: err %v, want %q", tc.pattern, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.pattern, err)
			continue
		}
		var got []string
		for _, c := range cmps {
			ind, err := c.indicator()
			switch {
			case err != nil:
				got = append(got, err.Error())
			case ind.kind == kindDomain:
				got = append(got, ind.domain)
			case ind.kind >= kindMD5:
				got = append(got, "hash")
			default:
				got = append(got, ind.prefix.String())
			}
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s:\n got %q\nwant %q", tc.pattern, got, tc.want)
		}
	}
}

func TestIntelSTIXErrors(t *testing.T) {
	for _, tc := range []struct {
		name, json string
		err        string // a regexp the error matches
	}{
		{"empty", "", `/b\.json:1: empty file, want a STIX bundle`},
		{"not an object", "[1]", `/b\.json:1: want a STIX bundle, a JSON object`},
		{"not a bundle", `{"type": "indicator", "pattern": "[a:b = 'c']"}`, `/b\.json:1: a STIX "indicator", not a bundle`},
		{"no type", `{"objects": []}`, `/b\.json:1: not a STIX bundle`},
		{"objects not an array", "{\"type\": \"bundle\",\n\"objects\": {}}", `/b\.json:2: bundle objects are not an array`},
		{"syntax error in an object", "{\"type\": \"bundle\", \"objects\": [\n{\"type\": \"identity\"},\n{\"type\": \"indicator\",\n \"pattern\": x}]}", `/b\.json:4: invalid character 'x'`},
		{"syntax error between objects", "{\"type\": \"bundle\", \"objects\": [\n{\"type\": \"identity\"}\n\n{}]}", `/b\.json:4: expected comma after array element`},
		{"truncated", "{\"type\": \"bundle\", \"objects\": [\n{\"type\": \"identity\"},\n", `/b\.json:2: unexpected EOF`},
		{"truncated in an object", "{\"type\": \"bundle\", \"objects\": [\n{\"type\": \"identity\",\n\"name\": \"x", `/b\.json:3: unexpected EOF`},
		{"data after", "{\"type\": \"bundle\", \"objects\": []}\n{}", `/b\.json:2: data after the bundle`},
		{"bad type", `{"type": 5}`, `/b\.json:1: bundle type: json: cannot unmarshal number`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := LoadIntel(IntelSource{Path: intelFile(t, "b.json", tc.json)})
			if err == nil || !regexp.MustCompile(tc.err).MatchString(err.Error()) {
				t.Fatalf("err %v, want %s", err, tc.err)
			}
		})
	}
}

func TestIntelSTIXLongBundle(t *testing.T) {
	// Many objects over many lines, so the line counter drops lines it has
	// passed and the decoder refills its buffer; the bad object's line must
	// still be right.
	var sb strings.Builder
	sb.WriteString("{\n\"type\": \"bundle\",\n\"objects\": [\n")
	const n = 5000
	for i := range n {
		fmt.Fprintf(&sb, "{\"type\": \"indicator\",\n \"pattern\": \"[ipv4-addr:value = '10.%d.%d.1']\"},\n", i>>8, i&255)
	}
	sb.WriteString("{\"type\": \"indicator\", \"pattern\": \"[email-addr:value = 'a@b.example']\"}\n]}\n")
	in, st := loadOne(t, IntelSource{Path: intelFile(t, "long.json", sb.String())})
	if st.IPs != n || in.Len() != n {
		t.Errorf("IPs %d Len %d, want %d", st.IPs, in.Len(), n)
	}
	if want := []IntelSkip{{4 + 2*n, "unsupported object path email-addr:value"}}; !slices.Equal(st.Skips, want) {
		t.Errorf("skips %v, want %v", st.Skips, want)
	}
}

func TestIntelSTIXExpiry(t *testing.T) {
	bundle := `{"type": "bundle", "objects": [
{"type": "indicator", "pattern": "[domain-name:value = 'a.example']", "valid_until": "2025-06-01T00:00:00Z"},
{"type": "indicator", "pattern": "[domain-name:value = 'b.example']", "valid_until": "2025-06-01"}]}`
	for _, tc := range []struct {
		now   string
		found bool
	}{
		{"2025-05-31T23:59:59Z", true},
		{"2025-06-01T00:00:00Z", false}, // valid_until is the first instant it is not
		{"2026-01-01T00:00:00Z", false},
	} {
		now, _ := time.Parse(time.RFC3339, tc.now)
		b := newIntelBuilder(now)
		st := IntelStats{Name: "l", Format: IntelSTIX}
		if err := b.read(&st, "b.json", strings.NewReader(bundle)); err != nil {
			t.Fatal(err)
		}
		if _, ok := b.build().MatchDomain("a.example"); ok != tc.found {
			t.Errorf("at %s: found %v, want %v", tc.now, ok, tc.found)
		}
		if sk := st.Skips[len(st.Skips)-1]; sk != (IntelSkip{3, `bad valid_until "2025-06-01"`}) {
			t.Errorf("last skip %v", sk)
		}
	}
}

func TestIntelSources(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	a := write("a.txt", "192.0.2.0/24\n192.0.2.7\nx.example\n")
	b := write("b.list", "192.0.2.7\n192.0.2.0/26\nx.example\ny.x.example\n192.0.2.128/25\n")
	in, stats, err := LoadIntel(IntelSource{Path: a}, IntelSource{Name: "second", Path: b})
	if err != nil {
		t.Fatal(err)
	}
	if len(stats) != 2 || stats[1].Name != "second" {
		t.Fatalf("stats %+v", stats)
	}
	for _, q := range []intelQuery{
		{"ip", "192.0.2.7", "a/"},        // listed by both: the first source wins
		{"ip", "192.0.2.8", "second/"},   // the /26 is more specific than a's /24
		{"ip", "192.0.2.64", "a/"},       // a's /24 around the /26
		{"ip", "192.0.2.200", "second/"}, // b's /25 inside a's /24
		{"domain", "z.x.example", "a/"},
		{"domain", "z.y.x.example", "second/"}, // the most specific domain
	} {
		q.check(t, in)
	}
	if in.Len() != 6 { // 192.0.2.0/24, .7, /26, /25, x.example, y.x.example
		t.Errorf("Len = %d, want 6", in.Len())
	}

	// Errors name the file.
	_, _, err = LoadIntel(IntelSource{Path: a}, IntelSource{Path: filepath.Join(dir, "missing.txt")})
	if err == nil || !strings.Contains(err.Error(), "missing.txt") {
		t.Errorf("missing file: %v", err)
	}
	html := write("page.txt", "<html>\n<body>Not Found</body>\n</html>\n")
	_, _, err = LoadIntel(IntelSource{Path: html})
	if err == nil || !strings.HasPrefix(err.Error(), html+":1: no indicator read from 3 entries") {
		t.Errorf("html page: %v", err)
	}
	_, _, err = LoadIntel(IntelSource{Path: a, Format: IntelFormat(9)})
	if err == nil || !strings.Contains(err.Error(), "unknown intel format IntelFormat(9)") {
		t.Errorf("bad format: %v", err)
	}
}

func TestIntelSniff(t *testing.T) {
	for _, tc := range []struct {
		name, content string
		want          IntelFormat
	}{
		{"x.csv", "192.0.2.1\n", IntelCSV},
		{"x.json", "", IntelSTIX},
		{"x", "\n  {\"type\": \"bundle\"}", IntelSTIX},
		{"x.txt", "# list\n\nip,comment\n", IntelCSV},
		{"x.txt", "# id,ip\n192.0.2.1\n", IntelText},
		{"x.txt", "192.0.2.1\n", IntelText},
		{"x.txt", "", IntelText},
	} {
		got := sniff(tc.name, bufio.NewReader(strings.NewReader(tc.content)))
		if got != tc.want {
			t.Errorf("sniff(%q, %q) = %v, want %v", tc.name, tc.content, got, tc.want)
		}
	}
}

func TestIntelLongLines(t *testing.T) {
	list := "192.0.2.1\n" + strings.Repeat("x", 200_000) + "\n192.0.2.2\n" + strings.Repeat("y", 70_000)
	in, st := loadOne(t, IntelSource{Path: intelFile(t, "l.txt", list)})
	if want := []IntelSkip{{2, "line too long"}, {4, "line too long"}}; !slices.Equal(st.Skips, want) {
		t.Errorf("skips %v, want %v", st.Skips, want)
	}
	if _, ok := in.MatchIP(netip.MustParseAddr("192.0.2.2")); !ok {
		t.Error("the line after a long one was lost")
	}
	// Descriptions are cut to a bounded length, on a rune boundary.
	in, _ = loadOne(t, IntelSource{Path: intelFile(t, "d.txt", "192.0.2.1 # "+strings.Repeat("é", 200)+"\n")})
	m, _ := in.MatchIP(netip.MustParseAddr("192.0.2.1"))
	if m.Description != strings.Repeat("é", maxDescription/2) {
		t.Errorf("description %d bytes", len(m.Description))
	}
}

func TestIntelSkipsBounded(t *testing.T) {
	list := "192.0.2.1\n" + strings.Repeat("junk line\n", 100)
	_, st := loadOne(t, IntelSource{Path: intelFile(t, "l.txt", list)})
	if st.Skipped != 100 || len(st.Skips) != maxSkips || st.Skips[maxSkips-1].Line != maxSkips+1 {
		t.Errorf("skipped %d, skips %v", st.Skipped, st.Skips)
	}
}

func TestIntelNil(t *testing.T) {
	var in *Intel
	if _, ok := in.MatchIP(netip.MustParseAddr("192.0.2.1")); ok {
		t.Error("nil Intel matched an IP")
	}
	if _, ok := in.MatchDomain("a.example"); ok {
		t.Error("nil Intel matched a domain")
	}
	if _, ok := in.MatchHash("d41d8cd98f00b204e9800998ecf8427e"); ok {
		t.Error("nil Intel matched a hash")
	}
	if in.Len() != 0 {
		t.Error("nil Intel has indicators")
	}
	empty, _, err := LoadIntel()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := empty.MatchIP(netip.Addr{}); ok {
		t.Error("the zero Addr matched")
	}
	if _, ok := empty.MatchIP(netip.MustParseAddr("::1")); ok {
		t.Error("empty Intel matched")
	}
}

func TestIntelEdges(t *testing.T) {
	// Networks at the ends of the address space, where a careless range
	// computation overflows.
	list := "0.0.0.0/0\n255.255.255.255\n0.0.0.0\n::/0\nffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff\n::\n8000::/1\n"
	if _, st := loadOne(t, IntelSource{Path: intelFile(t, "l.txt", list)}); st.IPs != 4 || st.CIDRs != 3 {
		t.Errorf("IPs %d CIDRs %d, want 4 3", st.IPs, st.CIDRs)
	}
	// Each its own label, to see which matched.
	b := newIntelBuilder(time.Time{})
	st := IntelStats{Name: "l"}
	for i, line := range strings.Split(strings.TrimSpace(list), "\n") {
		ind, err := parseIndicator(line)
		if err != nil {
			t.Fatal(err)
		}
		b.add(ind, b.label(Match{Source: "l", Description: fmt.Sprint(i)}), &st)
	}
	in := b.build()
	for _, q := range []intelQuery{
		{"ip", "0.0.0.0", "l/2"},
		{"ip", "0.0.0.1", "l/0"},
		{"ip", "255.255.255.254", "l/0"},
		{"ip", "255.255.255.255", "l/1"},
		{"ip", "::", "l/5"},
		{"ip", "::1", "l/3"},
		{"ip", "7fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "l/3"},
		{"ip", "8000::", "l/6"},
		{"ip", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", "l/6"},
		{"ip", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "l/4"},
		{"ip", "fe80::1%eth0", "l/6"},
	} {
		q.check(t, in)
	}
}

// TestIntelNetworksRandom checks the flattened table against a plain
// search of the listed networks: the most specific listing an address,
// and of those the first listed.
func TestIntelNetworksRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for round := range 50 {
		var prefixes []netip.Prefix
		b := newIntelBuilder(time.Time{})
		st := IntelStats{Name: "l"}
		v6 := round%2 == 1
		for i := range 1 + r.IntN(60) {
			// Few distinct high bits, so that networks nest and repeat.
			var p netip.Prefix
			if v6 {
				var a [16]byte
				a[0], a[1], a[15] = 0x20, byte(r.IntN(2)), byte(r.IntN(4))
				a[14] = byte(r.IntN(2)) << 7
				p = netip.PrefixFrom(netip.AddrFrom16(a), r.IntN(129)).Masked()
			} else {
				a := [4]byte{10, byte(r.IntN(2)), byte(r.IntN(3)) << 6, byte(r.IntN(4)) << 6}
				p = netip.PrefixFrom(netip.AddrFrom4(a), 8+r.IntN(25)).Masked()
			}
			prefixes = append(prefixes, p)
			kind := kindCIDR
			if p.IsSingleIP() {
				kind = kindIP
			}
			b.add(indicator{kind: kind, prefix: p}, b.label(Match{Source: "l", Description: fmt.Sprint(i)}), &st)
		}
		in := b.build()
		for range 300 {
			var addr netip.Addr
			if v6 {
				var a [16]byte
				a[0], a[1], a[15] = 0x20, byte(r.IntN(3)), byte(r.IntN(256))
				a[14] = byte(r.IntN(256))
				addr = netip.AddrFrom16(a)
			} else {
				addr = netip.AddrFrom4([4]byte{10, byte(r.IntN(3)), byte(r.IntN(256)), byte(r.IntN(256))})
			}
			want, best := "", -1
			for i, p := range prefixes {
				if p.Contains(addr) && p.Bits() > best {
					want, best = fmt.Sprint(i), p.Bits()
				}
			}
			got := ""
			if m, ok := in.MatchIP(addr); ok {
				got = m.Description
			}
			if got != want {
				t.Fatalf("round %d: %s matched %q, want %q; networks %v", round, addr, got, want, prefixes)
			}
		}
		distinct := map[netip.Prefix]bool{}
		for _, p := range prefixes {
			distinct[p] = true
		}
		if in.Len() != len(distinct) {
			t.Errorf("round %d: Len %d, want %d", round, in.Len(), len(distinct))
		}
	}
}

func TestIntelConcurrent(t *testing.T) {
	in, _ := loadOne(t, IntelSource{Path: "testdata/intel/blocklist.txt"})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				if _, ok := in.MatchIP(netip.MustParseAddr("203.0.113.9")); !ok {
					t.Error("miss")
					return
				}
				if _, ok := in.MatchDomain("a.evil.example.com"); !ok {
					t.Error("miss")
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestIntelAllocs(t *testing.T) {
	in, _ := loadOne(t, IntelSource{Path: "testdata/intel/blocklist.txt"})
	addr := netip.MustParseAddr("2001:db8:bad::7")
	for _, tc := range []struct {
		name string
		fn   func()
	}{
		{"MatchIP", func() { in.MatchIP(addr) }},
		{"MatchDomain", func() { in.MatchDomain("A.B.Evil.Example.Com") }},
		{"MatchDomain miss", func() { in.MatchDomain("a.b.c.d.e.f.example.org") }},
		{"MatchHash", func() { in.MatchHash("3395856CE81F2B7382DEE72602F798B642F14140") }},
	} {
		if n := testing.AllocsPerRun(100, tc.fn); n != 0 {
			t.Errorf("%s: %v allocations", tc.name, n)
		}
	}
}

// benchSet is the Intel of the match benchmarks: a million random IPv4
// addresses and networks and a million random domains, loaded from a text
// list; and queries to look up, a million of each kind, so that the table
// is not all in the cache, but packed together, so that reading the next
// query costs no more than it would just after parsing an event.
type benchSet struct {
	in *Intel
	// Listed addresses (half of them inside listed networks), and
	// random ones, of which some fall in listed networks by chance.
	listedIPs, randomIPs []netip.Addr
	// Listed domains, half of them upper-cased with "www." before; and
	// unlisted ones of three labels, whose last two are mostly unlisted.
	listedDomains, unlistedDomains []string
}

var benchIntel = sync.OnceValues(func() (*benchSet, error) {
	dir, err := os.MkdirTemp("", "intelbench")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "big.txt")
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	w := bufio.NewWriter(f)
	r := rand.New(rand.NewPCG(7, 7))
	bs := &benchSet{}
	tlds := [...]string{".com", ".net", ".org", ".ru", ".io", ".xyz"}
	for i := range 1_000_000 {
		a := netip.AddrFrom4([4]byte{byte(r.IntN(224)), byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256))})
		if i%2 == 0 {
			fmt.Fprintln(w, a)
		} else {
			fmt.Fprintln(w, netip.PrefixFrom(a, 16+r.IntN(16)).Masked())
		}
		bs.listedIPs = append(bs.listedIPs, a)
		bs.randomIPs = append(bs.randomIPs, netip.AddrFrom4([4]byte{byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256))}))
	}
	var listed, unlisted strings.Builder
	var listedLen, unlistedLen []int
	for i := range 1_000_000 {
		d := benchLabel(r) + "." + benchLabel(r) + tlds[r.IntN(len(tlds))]
		fmt.Fprintln(w, d)
		if i%2 == 1 {
			d = "www." + strings.ToUpper(d)
		}
		listed.WriteString(d)
		listedLen = append(listedLen, len(d))
		d = benchLabel(r) + "." + benchLabel(r) + tlds[r.IntN(len(tlds))]
		unlisted.WriteString(d)
		unlistedLen = append(unlistedLen, len(d))
	}
	if err := w.Flush(); err != nil {
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	if bs.in, _, err = LoadIntel(IntelSource{Path: path}); err != nil {
		return nil, err
	}
	split := func(all string, lens []int) []string {
		out := make([]string, len(lens))
		for i, n := range lens {
			out[i], all = all[:n], all[n:]
		}
		return out
	}
	bs.listedDomains = split(listed.String(), listedLen)
	bs.unlistedDomains = split(unlisted.String(), unlistedLen)
	return bs, nil
})

func benchLabel(r *rand.Rand) string {
	b := make([]byte, 4+r.IntN(10))
	for i := range b {
		b[i] = "abcdefghijklmnopqrstuvwxyz0123456789"[r.IntN(36)]
	}
	return string(b)
}

// benchMatch looks queries up in turn, and reports the share found.
func benchMatch[Q any](b *testing.B, queries []Q, match func(Q) (Match, bool)) {
	b.ReportAllocs()
	i, hits := 0, 0
	for b.Loop() {
		if _, ok := match(queries[i%len(queries)]); ok {
			hits++
		}
		i++
	}
	b.ReportMetric(float64(hits)/float64(i), "found/op")
}

func BenchmarkMatchIP(b *testing.B) {
	bs, err := benchIntel()
	if err != nil {
		b.Fatal(err)
	}
	b.Run("listed", func(b *testing.B) { benchMatch(b, bs.listedIPs, bs.in.MatchIP) })
	b.Run("random", func(b *testing.B) { benchMatch(b, bs.randomIPs, bs.in.MatchIP) })
}

func BenchmarkMatchDomain(b *testing.B) {
	bs, err := benchIntel()
	if err != nil {
		b.Fatal(err)
	}
	b.Run("listed", func(b *testing.B) { benchMatch(b, bs.listedDomains, bs.in.MatchDomain) })
	b.Run("unlisted", func(b *testing.B) { benchMatch(b, bs.unlistedDomains, bs.in.MatchDomain) })
}

func BenchmarkMatchHash(b *testing.B) {
	in, _, err := LoadIntel(IntelSource{Path: "testdata/intel/blocklist.txt"})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		in.MatchHash("275A021BBFB6489E54D471899F7DB9D1663FC695EC2FE2A2C4538AABF651FD0F")
	}
}

// BenchmarkIntelLoad measures loading the two million indicators of the
// match benchmarks from a text list.
func BenchmarkIntelLoad(b *testing.B) {
	path := filepath.Join(b.TempDir(), "big.txt")
	var sb strings.Builder
	r := rand.New(rand.NewPCG(7, 7))
	for i := range 1_000_000 {
		a := netip.AddrFrom4([4]byte{byte(r.IntN(224)), byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256))})
		if i%2 == 0 {
			fmt.Fprintln(&sb, a)
		} else {
			fmt.Fprintln(&sb, netip.PrefixFrom(a, 16+r.IntN(16)).Masked())
		}
	}
	for range 1_000_000 {
		fmt.Fprintln(&sb, benchLabel(r)+"."+benchLabel(r)+".com")
	}
	if err := os.WriteFile(path, []byte(sb.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := LoadIntel(IntelSource{Path: path}); err != nil {
			b.Fatal(err)
		}
	}
}
