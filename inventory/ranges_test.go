package inventory

import (
	"net/netip"
	"os"
	"regexp"
	"strings"
	"testing"
)

// loadAWSSample loads testdata/ip-ranges.json: a hand-written sample that
// follows the format documented at
// docs.aws.amazon.com/vpc/latest/userguide/aws-ip-ranges.html, each block
// listed under "AMAZON" and again under the service using it.
func loadAWSSample(t testing.TB) *Ranges {
	t.Helper()
	f, err := os.Open("testdata/ip-ranges.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rs, err := LoadAWSRanges(f)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func TestRangesAWS(t *testing.T) {
	rs := loadAWSSample(t)
	if rs.Len() != 18 {
		t.Errorf("Len = %d, want 18", rs.Len())
	}
	for _, tc := range []struct {
		addr string
		want string // prefix region service border-group, or "" for none
	}{
		{"3.5.140.1", "3.5.140.0/22 ap-northeast-2 S3 ap-northeast-2"}, // S3 over AMAZON, listed after it
		{"3.5.143.255", "3.5.140.0/22 ap-northeast-2 S3 ap-northeast-2"},
		{"3.5.144.0", ""},
		{"13.33.1.2", "13.32.0.0/15 GLOBAL CLOUDFRONT GLOBAL"},
		{"15.181.232.9", "15.181.232.0/21 us-west-2 EC2 us-west-2-lax-1"},
		{"52.93.153.170", "52.93.153.170/32 eu-west-2 AMAZON eu-west-2"}, // only AMAZON lists it
		{"52.93.153.171", ""},
		{"52.94.1.1", "52.94.0.0/16 us-east-1 AMAZON us-east-1"},
		{"52.94.77.1", "52.94.76.0/22 us-west-2 DYNAMODB us-west-2"}, // the /22 within the /16
		{"52.94.80.0", "52.94.0.0/16 us-east-1 AMAZON us-east-1"},    // past the /22, the /16 again
		{"::ffff:52.94.77.1", "52.94.76.0/22 us-west-2 DYNAMODB us-west-2"},
		{"54.239.0.15", "54.239.0.0/28 us-east-1 ROUTE53 us-east-1"},
		{"54.239.0.16", ""},
		{"2600:1f00:c0ff::1", "2600:1f00:c000::/40 us-west-1 EC2 us-west-1"},
		{"2600:9000:5300::1", "2600:9000:5300::/40 GLOBAL ROUTE53 GLOBAL"}, // nested in CLOUDFRONT's /28
		{"2600:9000:5400::1", "2600:9000::/28 GLOBAL CLOUDFRONT GLOBAL"},
		{"2a05:d07a:a0ff:ffff:ffff:ffff:ffff:ffff", "2a05:d07a:a000::/40 eu-south-1 S3 eu-south-1"},
		{"2a05:d07a:a100::", ""},
		{"8.8.8.8", ""},
	} {
		got := ""
		if r, ok := rs.Lookup(netip.MustParseAddr(tc.addr)); ok {
			if r.Provider != "aws" {
				t.Errorf("%s: provider %q", tc.addr, r.Provider)
			}
			got = strings.Join([]string{r.Prefix.String(), r.Region, r.Service, r.NetworkBorderGroup}, " ")
		}
		if got != tc.want {
			t.Errorf("Lookup(%s) = %q, want %q", tc.addr, got, tc.want)
		}
	}
	if _, ok := rs.Lookup(netip.Addr{}); ok {
		t.Error("the zero Addr matched")
	}
	var none *Ranges
	if _, ok := none.Lookup(netip.MustParseAddr("3.5.140.1")); ok || none.Len() != 0 {
		t.Error("nil Ranges matched")
	}
}

func TestRangesAWSErrors(t *testing.T) {
	for _, tc := range []struct {
		name, json string
		err        string // a regexp the error matches
	}{
		{"empty", "", `^aws ip ranges: empty input$`},
		{"not an object", "[]", `^aws ip ranges: line 1: want a JSON object$`},
		{"no prefixes", `{"syncToken": "1", "createDate": "2024-01-01-00-00-00"}`, `not an ip-ranges\.json`},
		{"prefixes not an array", "{\n\"prefixes\": {}}", `^aws ip ranges: line 2: prefixes is not an array$`},
		{"bad prefix", "{\"prefixes\": [\n  {\"ip_prefix\": \"3.5.140.0/22\"},\n  {\"ip_prefix\": \"3.5.140.0/33\",\n \"region\": \"x\"}\n]}", `^aws ip ranges: line 3: prefixes entry: bad prefix "3\.5\.140\.0/33"$`},
		{"ipv6 in prefixes", "{\"prefixes\": [{\"ip_prefix\": \"2600::/16\"}]}", `line 1: prefixes entry: bad prefix "2600::/16"`},
		{"ipv4 in ipv6_prefixes", "{\"ipv6_prefixes\": [\n{\"ipv6_prefix\": \"3.0.0.0/8\"}]}", `line 2: ipv6_prefixes entry: bad prefix "3\.0\.0\.0/8"`},
		{"ip_prefix in ipv6_prefixes", "{\"ipv6_prefixes\": [{\"ip_prefix\": \"2600::/16\"}]}", `bad prefix ""`},
		{"wrong field type", "{\"prefixes\": [\n\n{\"ip_prefix\": 5}]}", `^aws ip ranges: line 3: prefixes entry: json: cannot unmarshal number`},
		{"syntax error", "{\"prefixes\": [\n{\"ip_prefix\": \"3.0.0.0/8\"},\n{\"ip_prefix\" \"3.0.0.0/8\"}]}", `^aws ip ranges: line 3: invalid character '"' after object key`},
		{"truncated", "{\"prefixes\": [\n{\"ip_prefix\": \"3.0.0.0/8\"},\n", `^aws ip ranges: line 2: unexpected EOF$`},
		{"data after", "{\"prefixes\": []}\n[]", `^aws ip ranges: line 2: data after the ranges$`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadAWSRanges(strings.NewReader(tc.json))
			if err == nil || !regexp.MustCompile(tc.err).MatchString(err.Error()) {
				t.Fatalf("err %v, want %s", err, tc.err)
			}
		})
	}
}

func TestRangesAWSEmptyLists(t *testing.T) {
	rs, err := LoadAWSRanges(strings.NewReader(`{"syncToken": "1", "prefixes": [], "ipv6_prefixes": []}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := rs.Lookup(netip.MustParseAddr("3.5.140.1")); ok || rs.Len() != 0 {
		t.Error("empty ranges matched")
	}
}

func TestRangesAllocs(t *testing.T) {
	rs := loadAWSSample(t)
	addr := netip.MustParseAddr("2600:9000:5300::1")
	if n := testing.AllocsPerRun(100, func() { rs.Lookup(addr) }); n != 0 {
		t.Errorf("Lookup: %v allocations", n)
	}
}

func TestRangesAWSMappedPrefix(t *testing.T) {
	// A block spelled as IPv4-mapped IPv6 is the IPv4 block it stands for:
	// Lookup takes a mapped address as its IPv4 address. (Found by
	// FuzzAWSRanges; AWS publishes none.)
	rs, err := LoadAWSRanges(strings.NewReader(`{"ipv6_prefixes": [{"ipv6_prefix": "::ffff:3.5.140.0/118", "service": "S3"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"3.5.140.1", "::ffff:3.5.143.255"} {
		r, ok := rs.Lookup(netip.MustParseAddr(a))
		if !ok || r.Prefix.String() != "3.5.140.0/22" || r.Service != "S3" {
			t.Errorf("Lookup(%s) = %+v %v, want 3.5.140.0/22 S3", a, r, ok)
		}
	}
}

// TestMergeRanges: the files of two partitions answer as one: the
// specific service over AMAZON, the most specific block, and of one
// block listed in both files under the same service the first file's.
func TestMergeRanges(t *testing.T) {
	load := func(doc string) *Ranges {
		t.Helper()
		rs, err := LoadAWSRanges(strings.NewReader(doc))
		if err != nil {
			t.Fatal(err)
		}
		return rs
	}
	commercial := loadAWSSample(t)
	china := load(`{"prefixes":[` +
		`{"ip_prefix":"52.80.0.0/16","region":"cn-north-1","service":"AMAZON","network_border_group":"cn-north-1"},` +
		`{"ip_prefix":"52.80.0.0/16","region":"cn-north-1","service":"EC2","network_border_group":"cn-north-1"},` +
		`{"ip_prefix":"52.94.0.0/16","region":"cn-northwest-1","service":"AMAZON","network_border_group":"cn-northwest-1"},` +
		`{"ip_prefix":"3.5.140.0/22","region":"cn-north-1","service":"AMAZON","network_border_group":"cn-north-1"}],` +
		`"ipv6_prefixes":[{"ipv6_prefix":"2404:c2c0::/40","region":"cn-north-1","service":"EC2","network_border_group":"cn-north-1"}]}`)
	rs := MergeRanges(commercial, china)
	if rs.Len() != commercial.Len()+china.Len() {
		t.Errorf("Len = %d, want %d", rs.Len(), commercial.Len()+china.Len())
	}
	for addr, want := range map[string]string{
		"52.80.1.1":    "aws/EC2/cn-north-1",
		"2404:c2c0::1": "aws/EC2/cn-north-1",
		"52.94.1.1":    "aws/AMAZON/us-east-1",   // in both under AMAZON: the first file's
		"52.94.77.1":   "aws/DYNAMODB/us-west-2", // the commercial /22 within
		"3.5.140.1":    "aws/S3/ap-northeast-2",  // S3 over the other file's AMAZON
		"13.33.1.2":    "aws/CLOUDFRONT/GLOBAL",
		"8.8.8.8":      "",
	} {
		got, _ := rs.name(netip.MustParseAddr(addr))
		if got != want {
			t.Errorf("%s: %q, want %q", addr, got, want)
		}
	}
	if MergeRanges(china) != china {
		t.Error("a merge of one is not that one")
	}
}
