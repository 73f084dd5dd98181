package parse

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// cloudTrailRecords returns the CloudTrail records of the shared
// fixtures: the documents the CloudTrail parser is given.
func cloudTrailRecords(t testing.TB) [][]byte {
	var recs [][]byte
	for _, path := range []string{
		"stratus-red-team-detonation-logs/detonation-logs/aws.defense-evasion.cloudtrail-stop.json",
		"stratus-red-team-detonation-logs/detonation-logs/aws.initial-access.console-login-without-mfa.json",
		"stratus-red-team-detonation-logs/detonation-logs/aws.persistence.iam-create-admin-user.json",
		"stratus-red-team-detonation-logs/detonation-logs/aws.execution.ec2-launch-unusual-instances.json",
		"otrf-security-datasets-aws/ec2_proxy_s3_exfiltration_2020-09-14011940.json",
		"plaso-log-format-fixtures/test_data/jsonl/aws_cloudtrail.jsonl",
		"aws-docs-examples/cloudtrail/cloudtrail_user_guide_examples.jsonl",
		"panther-analysis-rule-tests/aws_cloudtrail_rule_tests.jsonl",
	} {
		_, rs := parseFile(t, shared+path, Auto, Options{})
		for _, r := range rs {
			if r.Event != nil {
				recs = append(recs, r.Event.Document())
			} else {
				recs = append(recs, r.Raw)
			}
		}
	}
	return recs
}

// TestCloudTrailDecodeFast checks that the one-pass decoders take the
// fixtures' records and agree with encoding/json on them.
func TestCloudTrailDecodeFast(t *testing.T) {
	recs := cloudTrailRecords(t)
	fast := 0
	for _, rec := range recs {
		if checkCloudTrailDecode(t, rec) {
			fast++
		}
	}
	// The few left to encoding/json are records with escaped strings and
	// the quarantined ones.
	if fast < len(recs)*9/10 {
		t.Errorf("the fast path took %d of %d records", fast, len(recs))
	}
}

// TestCloudTrailDecodeEdges pins the corners where encoding/json's
// behavior is easy to get wrong.
func TestCloudTrailDecodeEdges(t *testing.T) {
	for _, rec := range []string{
		`{"eventName":"A","eventSource":"s","EVENTNAME":"B"}`,           // case-insensitive, last wins
		`{"eventName":"A","eventName":null}`,                            // null keeps the value
		`{"eventName":"A\u0042\n"}`,                                     // escapes
		"{\"eventName\":\"A\xff\xfeB\"}",                                // invalid UTF-8
		`{"event\u004eame":"A"}`,                                        // escaped key
		"{\"eventſource\":\"A\"}",                                       // a key folding to eventSource
		`{"eventName":5}`,                                               // type mismatch
		`{"userIdentity":null,"resources":null,"CloudTrailEvent":null}`, // nulls
		`{"userIdentity":"x"}`,                                          // mismatch in a struct
		`{"userIdentity":{"sessionContext":{"sessionIssuer":{"arn":"a"}}},"userIdentity":{"type":"T"}}`, // merged
		`{"CloudTrailEvent":"{\"eventName\":\"x\"}"}`,
		`{"eventName":"A"} x`, `{"eventName":"A",}`, `{"eventName" "A"}`, `{"a":[1,]}`, `{"a":01}`, `{"a":1.}`, `{"a":-}`, `{"a":tru}`,
		`{"a":"\x"}`, "{\"a\":\"\x01\"}", `{"a":"\u12"}`, `  {"a" : [ 1 , 2e+5 , -0.5E-3 , true , false , null , {} , [ ] ] }  `,
		`{"requestParameters":{"instancesSet":{"items":[{"instanceId":"i-1"},null,{"instanceId":"i-2"}]},"instancesSet":{"items":[{}]}}}`,
		`{"requestParameters":{"instancesSet":{"items":[{"instanceId":"a"},{"instanceId":"b"}]},"instancesSet":{"items":[{"instanceId":"c"}]},"instancesSet":{"items":[{},{}]}}}`,
		`{"requestParameters":{"instancesSet":{"items":[]}, "userName": "u", "USERNAME": null}}`,
		`{"requestParameters":{"userName":5}}`,
		`{"resources":[{"ARN":"a"},null,{"arn":"b","ARN":null},{"Arn":"c"}]}`,
		`{"resources":[{"ARN":"a"},"x"]}`,
		`{"responseElements":{"ConsoleLogin":"Failure","SwitchRole":"Success"}}`,
		`{"responseElements":{"CheckMfa":"Success","ConsoleLogin":5,"ConsoleLogin":"Failure"}}`,
		`{"responseElements":{"ConsoleLogin":"Success","ConsoleLogin":{}}}`,
		`{"responseElements":{"Console\u004cogin":"Failure"}}`,
		`{"responseElements":{"consolelogin":"Failure"}}`,
	} {
		checkCloudTrailDecode(t, []byte(rec))
	}
}

// FuzzCloudTrailDecode checks that whatever the one-pass decoders accept,
// encoding/json accepts and reads the same.
func FuzzCloudTrailDecode(f *testing.F) {
	for _, rec := range cloudTrailRecords(f) {
		f.Add(rec)
	}
	f.Fuzz(func(t *testing.T, rec []byte) {
		checkCloudTrailDecode(t, rec)
	})
}

// checkCloudTrailDecode compares the one-pass decoders with encoding/json
// on rec, and reports whether the fast path took the record.
func checkCloudTrailDecode(t *testing.T, rec []byte) bool {
	t.Helper()
	var fast, slow cloudTrailRecord
	ok := fast.decodeFast(rec)
	err := json.Unmarshal(rec, &slow)
	if ok && err != nil {
		t.Errorf("fast path accepted what encoding/json rejects (%v):\n%s", err, rec)
		return ok
	}
	if ok && !reflect.DeepEqual(fast, slow) {
		t.Errorf("fast path read\n%+v\nencoding/json read\n%+v\nfrom\n%s", fast, slow, rec)
	}

	// The decoders of nested values, given what encoding/json read.
	if p := slow.RequestParameters; len(p) > 0 && p[0] == '{' {
		var fast, slow requestResources
		ok := fast.decodeFast(p)
		err := json.Unmarshal(p, &slow)
		if ok && (err != nil || !reflect.DeepEqual(fast, slow)) {
			t.Errorf("request parameters: fast path read %+v, encoding/json %+v (%v), from\n%s", fast, slow, err, p)
		}
	}
	if rs := slow.Resources; len(rs) > 0 && rs[0] == '[' {
		want := appendResourceARNs(nil, rs) // through the fast path when it takes rs
		var slow []struct {
			ARN string `json:"ARN"`
		}
		var arns []string
		if json.Unmarshal(rs, &slow) == nil {
			for _, r := range slow {
				if r.ARN != "" {
					arns = append(arns, r.ARN)
				}
			}
		}
		if !slices.Equal(want, arns) {
			t.Errorf("resources: read %q, encoding/json %q, from\n%s", want, arns, rs)
		}
	}
	if resp := slow.ResponseElements; len(resp) > 0 && resp[0] == '{' {
		v, found, ok := signInResultFast(resp)
		var m map[string]any
		var want string
		var wantFound bool
		if json.Unmarshal(resp, &m) == nil {
			for _, k := range signInKeys {
				if s, isString := m[k].(string); isString {
					want, wantFound = s, true
					break
				}
			}
		}
		if ok && (v != want || found != wantFound) {
			t.Errorf("sign-in result: fast path read %q %v, encoding/json %q %v, from\n%s", v, found, want, wantFound, resp)
		}
	}
	return ok
}

func TestJSONValid(t *testing.T) {
	deep := func(n int) []byte {
		return []byte(strings.Repeat("[", n) + strings.Repeat("]", n))
	}
	for _, in := range [][]byte{
		nil, []byte(" "), []byte("1"), []byte(" -0.5e+3 "), []byte(`"\ud800"`), []byte("\"\xff\""), []byte("\"\x7f\""),
		[]byte(`{"a":[1,{"b":null}],"c":"d"}`), []byte(`{"a":1}{}`), []byte("[1,\x00]"), []byte("nul"), []byte(`{"a"}`),
		deep(maxScanDepth), deep(maxScanDepth + 1), []byte(strings.Repeat(`{"a":`, maxScanDepth) + "1" + strings.Repeat("}", maxScanDepth)),
	} {
		if got, want := jsonValid(in), json.Valid(in); got != want {
			t.Errorf("jsonValid(%.40q) = %v, json.Valid says %v", in, got, want)
		}
	}
}

// FuzzJSONValid checks jsonValid against json.Valid.
func FuzzJSONValid(f *testing.F) {
	for _, rec := range cloudTrailRecords(f)[:50] {
		f.Add(rec)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if got, want := jsonValid(in), json.Valid(in); got != want {
			t.Errorf("jsonValid(%q) = %v, json.Valid says %v", in, got, want)
		}
	})
}

func TestSkipValue(t *testing.T) {
	for _, v := range []string{
		`1`, `-0.5e3`, `true`, `null`, `"a\"b\\"`, `"\\\\"`, `{}`, `[]`, `{"a":[1,{"b":"]}"}],"c":null}`, `[1,2,[3]]`, `"x"`,
	} {
		for _, after := range []string{"", ",", "]", "}", " ", "\n"} {
			in := []byte(v + after)
			if got := skipValue(in, 0); got != len(v) {
				t.Errorf("skipValue(%q) = %d, want %d", in, got, len(v))
			}
		}
	}
	for _, v := range []string{`{"a":1`, `"abc`, `[1,2`} {
		if got := skipValue([]byte(v), 0); got != -1 {
			t.Errorf("skipValue(%q) = %d, want -1", v, got)
		}
	}
	// Arrays of every kind of element split as encoding/json splits them.
	rs := parseString(t, `[1, true, "x", {"eventName":"A"}, [2], null]`+"\n", Auto, Options{})
	if len(rs) != 6 || string(rs[0].Raw) != "1" || string(rs[5].Raw) != "null" || string(rs[4].Raw) != "[2]" {
		t.Errorf("array split into %d records: %q", len(rs), raws(rs))
	}
}

func raws(rs []Result) []string {
	var out []string
	for _, r := range rs {
		out = append(out, string(r.Raw))
	}
	return out
}

// FuzzSkipValue checks that skipValue finds the end of every valid value.
func FuzzSkipValue(f *testing.F) {
	for _, rec := range cloudTrailRecords(f)[:50] {
		f.Add(rec)
	}
	f.Add([]byte(`[1,"a",null,{"b":[true]}]`))
	f.Fuzz(func(t *testing.T, in []byte) {
		if !json.Valid(in) {
			return
		}
		v := bytes.TrimSpace(in)
		for _, after := range []string{"", "]", ",1"} {
			if got := skipValue(append(v[:len(v):len(v)], after...), 0); got != len(v) {
				t.Errorf("skipValue(%q) = %d, want %d", string(v)+after, got, len(v))
			}
		}
	})
}
