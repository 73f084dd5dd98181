package parse

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/event"
)

const vpcflowDocs = shared + "aws-docs-examples/vpc-flow/"

func TestVPCFlowFixtures(t *testing.T) {
	tests := []struct {
		file   string
		events int
	}{
		{"default_v2_examples.log", 7},
		{"custom_v3_tcp_flags.log", 8},
		{"custom_v3_transit_gateway.log", 4},
		{"custom_v5_service_traffic_path.log", 2},
		// No version field, and AWS's "# comment" after two records.
		{"custom_nat_gateway.log", 6},
	}
	files, _ := filepath.Glob(vpcflowDocs + "*.log")
	if len(files) != len(tests) {
		t.Errorf("%d fixture files, %d tested", len(files), len(tests))
	}
	for _, tt := range tests {
		name := strings.TrimSuffix(tt.file, ".log")
		t.Run(name, func(t *testing.T) {
			path := vpcflowDocs + tt.file
			used, rs := parseFile(t, path, Auto, Options{})
			if used != "aws.vpcflow" {
				t.Fatalf("detected format %q, want aws.vpcflow", used)
			}
			evs := events(t, rs)
			if len(evs) != tt.events {
				t.Errorf("%d events, want %d", len(evs), tt.events)
			}
			checkRawAtOffset(t, path, rs)
			for _, e := range evs {
				if e.Class != event.ClassNetworkActivity || e.Cloud.Provider != "aws" {
					t.Errorf("class %s provider %q", e.Class, e.Cloud.Provider)
				}
				if !json.Valid(e.Doc) {
					t.Errorf("invalid Doc %s", e.Doc)
				}
			}
			checkGolden(t, "vpcflow-"+strings.ReplaceAll(name, "_", "-"), evs)
		})
	}
}

func TestVPCFlowDefaultRecord(t *testing.T) {
	rs := parseString(t, "2 123456789010 eni-1235b8ca123456789 172.31.9.69 172.31.9.12 49761 3389 6 20 4249 1418530010 1418530070 REJECT OK\n"+
		"2 123456789010 eni-11111111aaaaaaaaa - - - - - - - 1431280876 1431280934 - SKIPDATA\n", "aws.vpcflow", Options{})
	evs := events(t, rs)
	if len(evs) != 2 {
		t.Fatalf("%d events", len(evs))
	}
	e := evs[0]
	if e.Time != time.Unix(1418530010, 0).UTC() || e.SrcIP.String() != "172.31.9.69" || e.DstIP.String() != "172.31.9.12" ||
		e.SrcPort != 49761 || e.DstPort != 3389 || e.Action != "REJECT" || e.Outcome.Result != event.OutcomeFailure ||
		e.Cloud.Account != "123456789010" || len(e.Resources) != 1 || e.Resources[0] != "eni-1235b8ca123456789" {
		t.Errorf("REJECT record: %+v", e)
	}
	var doc map[string]any
	if err := json.Unmarshal(e.Doc, &doc); err != nil {
		t.Fatal(err)
	}
	if doc["dstport"] != 3389.0 || doc["account-id"] != "123456789010" || doc["log-status"] != "OK" {
		t.Errorf("Doc %s", e.Doc)
	}
	e = evs[1]
	if e.Class != event.ClassNetworkActivity || e.Outcome.Result != event.OutcomeUnknown || e.Outcome.Code != "SKIPDATA" || e.SrcIP.IsValid() || e.Action != "" {
		t.Errorf("SKIPDATA record: %+v", e)
	}
}

func TestVPCFlowHeaderForms(t *testing.T) {
	in := "${version} ${account-id} ${srcaddr} ${dstaddr} ${action} ${region}\n" +
		"5 123456789012 10.0.0.1 10.0.0.2 ACCEPT eu-west-1\n" +
		// A second file's header, as when S3 objects are concatenated.
		"version srcaddr dstaddr\n" +
		"5 10.0.0.3 10.0.0.4\n"
	rs := parseString(t, in, Auto, Options{})
	evs := events(t, rs)
	if len(evs) != 2 {
		t.Fatalf("%d events", len(evs))
	}
	if e := evs[0]; e.Cloud.Region != "eu-west-1" || e.Cloud.Account != "123456789012" || e.Outcome.Result != event.OutcomeSuccess {
		t.Errorf("first record: %+v", e)
	}
	if e := evs[1]; e.SrcIP.String() != "10.0.0.3" || e.Time != testReceived || rs[1].Line != 4 {
		t.Errorf("second record (no start: receipt time): %+v line %d", e, rs[1].Line)
	}
}

func TestVPCFlowBadRecords(t *testing.T) {
	good := "2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT OK"
	tests := []struct {
		name, line, reason string
		opts               Options
	}{
		{"too few fields", "2 123456789010 eni-1235b8ca123456789 172.31.16.139", "has 4 fields, its format has 14", Options{}},
		{"too many fields", good + " extra", "has 15 fields, its format has 14", Options{}},
		{"bad number", strings.Replace(good, " 4249 ", " 42x9 ", 1), "field bytes: \"42x9\" is not a non-negative integer", Options{}},
		{"negative number", strings.Replace(good, " 4249 ", " -5 ", 1), "field bytes", Options{}},
		{"bad port", strings.Replace(good, " 20641 ", " 70000 ", 1), "field srcport: \"70000\" is not a port number", Options{}},
		{"bad address", strings.Replace(good, "172.31.16.139", "172.31.16.999", 1), "field srcaddr: \"172.31.16.999\" is not an IP address", Options{}},
		{"binary", "\x00\x01\x02 \xff\xfe", "has 2 fields", Options{}},
		{"over-long line", good + strings.Repeat(" x", 100), "line longer than 150 bytes", Options{MaxLine: 150}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := parseString(t, good+"\n"+tt.line+"\n"+good+"\n", "aws.vpcflow", tt.opts)
			if len(rs) != 3 {
				t.Fatalf("%d results, want 3", len(rs))
			}
			if rs[0].Err != nil || rs[2].Err != nil {
				t.Fatalf("good lines quarantined: %v, %v", rs[0].Err, rs[2].Err)
			}
			r := rs[1]
			if r.Err == nil || r.Event != nil {
				t.Fatalf("bad line parsed: %+v", r.Event)
			}
			if !strings.Contains(r.Err.Error(), tt.reason) {
				t.Errorf("reason %q, want it to mention %q", r.Err, tt.reason)
			}
			if r.Line != 2 || len(r.Raw) == 0 || r.Format != "aws.vpcflow" {
				t.Errorf("quarantined at line %d format %q raw %q", r.Line, r.Format, r.Raw)
			}
		})
	}
}

// TestVPCFlowJSON reads the flow records of Panther's rule tests: the
// events of tests for AWS.VPCFlow in Panther's own shape (not OCSF).
func TestVPCFlowJSON(t *testing.T) {
	f, err := os.Open(shared + "panther-analysis-rule-tests/aws_vpc_flow_rule_tests.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var tc struct {
			LogTypes []string       `json:"log_types"`
			Event    map[string]any `json:"event"`
		}
		if err := json.Unmarshal(sc.Bytes(), &tc); err != nil {
			t.Fatal(err)
		}
		lt, _ := tc.Event["p_log_type"].(string)
		if !slices.Contains(tc.LogTypes, "AWS.VPCFlow") || (lt != "" && lt != "AWS.VPCFlow") {
			continue
		}
		b, _ := json.Marshal(tc.Event)
		lines = append(lines, string(b))
	}
	if len(lines) < 15 {
		t.Fatalf("only %d flow records in the fixture", len(lines))
	}
	rs := parseString(t, strings.Join(lines, "\n"), "aws.vpcflow", Options{})
	evs := events(t, rs)
	if len(evs) != len(lines) {
		t.Fatalf("%d events from %d records", len(evs), len(lines))
	}
	var withAddr int
	for _, e := range evs {
		if e.Source != "aws.vpcflow" || e.Class != event.ClassNetworkActivity || e.Doc != nil {
			t.Errorf("event %+v", e)
		}
		if e.DstIP.IsValid() {
			withAddr++
		}
	}
	if withAddr < 10 {
		t.Errorf("only %d events with a destination address", withAddr)
	}
	// The record with "srcAddr": "null" has no source address.
	for i, l := range lines {
		if strings.Contains(l, `"srcAddr":"null"`) && evs[i].SrcIP.IsValid() {
			t.Errorf("srcAddr null read as %s", evs[i].SrcIP)
		}
	}
}

func TestVPCFlowJSONSpellings(t *testing.T) {
	in := `[{"account_id":"123456789010","interface_id":"eni-1","srcaddr":"1.2.3.4","dstaddr":"10.0.0.1","srcport":"443","dstport":22,"protocol":6,"start":1418530010,"action":"REJECT","log_status":"OK","region":"us-east-1"},
 {"accountId":123456789010,"interfaceId":"eni-2","srcAddr":"1.2.3.5","dstAddr":"10.0.0.2","srcPort":443,"dstPort":22,"start":"1418530011","action":"ACCEPT","logStatus":"OK","vpcId":"vpc-1","subNetId":"subnet-1","instanceId":"i-1"},
 {"srcaddr":"1.2.3.6","dstaddr":"10.0.0.3","dstport":"http"},
 {"query_name":"example.com","srcaddr":"1.2.3.7","srcport":"53"}]`
	used, err := Parse(strings.NewReader(in), Auto, Options{Received: testReceived}, func(Result) error { return nil })
	if err != nil || used != "aws.vpcflow" {
		t.Fatalf("detected %q, %v; want aws.vpcflow", used, err)
	}
	rs := parseString(t, in, "aws.vpcflow", Options{})
	if len(rs) != 4 {
		t.Fatalf("%d results", len(rs))
	}
	for i, want := range []struct {
		account, src, resources, outcome string
		dport                            uint16
		time                             int64
	}{
		{"123456789010", "1.2.3.4", "eni-1", "failure", 22, 1418530010},
		{"123456789010", "1.2.3.5", "eni-2 i-1 vpc-1 subnet-1", "success", 22, 1418530011},
	} {
		if rs[i].Err != nil {
			t.Fatalf("record %d: %v", i, rs[i].Err)
		}
		e := rs[i].Event
		if e.Cloud.Account != want.account || e.SrcIP.String() != want.src || strings.Join(e.Resources, " ") != want.resources ||
			e.Outcome.Result != want.outcome || e.DstPort != want.dport || e.Time.Unix() != want.time {
			t.Errorf("record %d: %+v", i, e)
		}
	}
	if rs[2].Err == nil || !strings.Contains(rs[2].Err.Error(), "field dstport") {
		t.Errorf("bad port: %v", rs[2].Err)
	}
	if rs[3].Err == nil || !strings.Contains(rs[3].Err.Error(), "no flow fields") {
		t.Errorf("DNS record: %v", rs[3].Err)
	}
}

func TestVPCFlowDetect(t *testing.T) {
	files, _ := filepath.Glob(vpcflowDocs + "*.log")
	for _, path := range files {
		if got := Detect(readHead(t, path)); got != "aws.vpcflow" {
			t.Errorf("Detect(%s) = %q", path, got)
		}
	}
	for _, in := range []string{
		"version action log-status\n",       // no address: not worth calling a flow log
		"Mar 11 22:55:30 host app: hello\n", // syslog
		"2 123456789010 eni-1 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT MAYBE\n",
	} {
		if got := Detect([]byte(in)); got == "aws.vpcflow" {
			t.Errorf("Detect(%q) = aws.vpcflow", in)
		}
	}
}
