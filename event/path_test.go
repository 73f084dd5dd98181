package event

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

var kindNames = map[Kind]string{
	KindString: "string",
	KindNumber: "number",
	KindBool:   "bool",
	KindNull:   "null",
	KindObject: "object",
	KindArray:  "array",
}

// extractAll returns what Extract reports, one "path kind text" line per
// call, in the order of the calls.
func extractAll(t testing.TB, paths []string, fold bool, doc string) ([]string, error) {
	t.Helper()
	p, err := CompilePaths(paths, fold)
	if err != nil {
		t.Fatalf("CompilePaths(%q): %v", paths, err)
	}
	var got []string
	err = p.Extract([]byte(doc), func(i int, v Value) {
		s := v.Str()
		if a := string(v.AppendStr([]byte("x"))); a != "x"+s {
			t.Errorf("path %d: AppendStr = %q, Str = %q", i, a, s)
		}
		got = append(got, fmt.Sprintf("%d %s %s", i, kindNames[v.Kind], s))
	})
	return got, err
}

// trail is a CloudTrail record, compacted, with the shapes rules meet:
// nesting, arrays of objects, arrays of scalars, an empty array, null.
const trail = `{"eventVersion":"1.08","userIdentity":{"type":"AssumedRole","principalId":"AROAEXAMPLE:alice",` +
	`"arn":"arn:aws:sts::123456789012:assumed-role/admin/alice","accountId":"123456789012","accessKeyId":"ASIAEXAMPLE",` +
	`"sessionContext":{"sessionIssuer":{"type":"Role","principalId":"AROAEXAMPLE","arn":"arn:aws:iam::123456789012:role/admin",` +
	`"accountId":"123456789012","userName":"admin"},"attributes":{"creationDate":"2024-08-01T12:00:00Z","mfaAuthenticated":"false"}}},` +
	`"eventTime":"2024-08-01T12:23:55Z","eventSource":"ec2.amazonaws.com","eventName":"DescribeInstances","awsRegion":"us-east-1",` +
	`"sourceIPAddress":"203.0.113.7","userAgent":"aws-cli/2.15","requestParameters":{"instancesSet":{"items":[{"instanceId":"i-1"},` +
	`{"instanceId":"i-2"}]},"filters":[{"key":"tag:env","values":["prod","dev"]},{"key":"state","values":[]}],"maxResults":5,` +
	`"dryRun":false},"responseElements":null,"readOnly":true,"managementEvent":true,"recipientAccountId":"123456789012"}`

func TestExtract(t *testing.T) {
	tests := []struct {
		name  string
		doc   string
		paths []string
		fold  bool
		want  []string
	}{
		{
			name:  "top-level fields",
			doc:   trail,
			paths: []string{"eventName", "eventSource", "recipientAccountId"},
			want:  []string{"1 string ec2.amazonaws.com", "0 string DescribeInstances", "2 string 123456789012"},
		},
		{
			name:  "deep fields",
			doc:   trail,
			paths: []string{"userIdentity.sessionContext.sessionIssuer.type", "userIdentity.type", "userIdentity.sessionContext.attributes.mfaAuthenticated"},
			want:  []string{"1 string AssumedRole", "0 string Role", "2 string false"},
		},
		{
			name:  "object",
			doc:   trail,
			paths: []string{"userIdentity.sessionContext.attributes"},
			want:  []string{`0 object {"creationDate":"2024-08-01T12:00:00Z","mfaAuthenticated":"false"}`},
		},
		{
			name:  "array of objects in the middle",
			doc:   trail,
			paths: []string{"requestParameters.instancesSet.items.instanceId"},
			want:  []string{"0 string i-1", "0 string i-2"},
		},
		{
			name:  "array of scalars and empty array in arrays of objects",
			doc:   trail,
			paths: []string{"requestParameters.filters.values", "requestParameters.filters.key"},
			want:  []string{"1 string tag:env", "0 string prod", "0 string dev", "1 string state", "0 array []"},
		},
		{
			name:  "array of objects at the end",
			doc:   trail,
			paths: []string{"requestParameters.instancesSet.items"},
			want:  []string{`0 object {"instanceId":"i-1"}`, `0 object {"instanceId":"i-2"}`},
		},
		{
			name:  "number bool null",
			doc:   trail,
			paths: []string{"requestParameters.maxResults", "requestParameters.dryRun", "readOnly", "responseElements"},
			want:  []string{"0 number 5", "1 bool false", "3 null null", "2 bool true"},
		},
		{
			name:  "missing paths",
			doc:   trail,
			paths: []string{"errorCode", "userIdentity.sessionContext.webIdFederationData", "eventName.length", "responseElements.x", "requestParameters.filters.values.x"},
			want:  nil,
		},
		{
			name:  "prefix paths",
			doc:   `{"a":{"b":1,"c":{"d":true}},"e":2}`,
			paths: []string{"a", "a.b", "a.c.d", "a.c"},
			want:  []string{"1 number 1", "2 bool true", `3 object {"d":true}`, `0 object {"b":1,"c":{"d":true}}`},
		},
		{
			name:  "prefix path at an array",
			doc:   `{"a":[{"b":1},2,[]]}`,
			paths: []string{"a", "a.b"},
			want:  []string{"1 number 1", `0 object {"b":1}`, "0 number 2", "0 array []"},
		},
		{
			name:  "duplicate paths",
			doc:   trail,
			paths: []string{"eventName", "awsRegion", "eventName"},
			want:  []string{"0 string DescribeInstances", "2 string DescribeInstances", "1 string us-east-1"},
		},
		{
			name:  "duplicate keys",
			doc:   `{"a":1,"b":{"c":2},"a":"x","b":{"c":3}}`,
			paths: []string{"a", "b.c"},
			want:  []string{"0 number 1", "1 number 2", "0 string x", "1 number 3"},
		},
		{
			name:  "arrays of arrays of objects",
			doc:   `{"a":[[{"b":1}],[{"b":2},[{"b":3},{"c":4}]],[],5]}`,
			paths: []string{"a.b"},
			want:  []string{"0 number 1", "0 number 2", "0 number 3"},
		},
		{
			name:  "nested arrays at the end are flattened",
			doc:   `{"a":[[1,2],[],[["x"]],{"b":null}]}`,
			paths: []string{"a"},
			want:  []string{"0 number 1", "0 number 2", "0 array []", "0 string x", `0 object {"b":null}`},
		},
		{
			name:  "empty array",
			doc:   `{"a":[],"b":[ ` + "\n" + ` ],"c":{"d":[]}}`,
			paths: []string{"a", "b", "c.d", "c.d.e"},
			want:  []string{"0 array []", "1 array []", "2 array []"},
		},
		{
			name:  "empty object",
			doc:   `{"a":{},"b":{ }}`,
			paths: []string{"a", "b", "b.c"},
			want:  []string{"0 object {}", "1 object { }"},
		},
		{
			name:  "top-level array",
			doc:   `[{"a":1},{"a":[2,3]},{"b":4},"x"]`,
			paths: []string{"a"},
			want:  []string{"0 number 1", "0 number 2", "0 number 3"},
		},
		{
			name:  "top-level scalar",
			doc:   `"a"`,
			paths: []string{"a"},
			want:  nil,
		},
		{
			name:  "numbers",
			doc:   `{"n":[0,-0,12,-1.5,1e3,2E-7,-0.25e+10,123456789012345678901234567890]}`,
			paths: []string{"n"},
			want: []string{"0 number 0", "0 number -0", "0 number 12", "0 number -1.5", "0 number 1e3",
				"0 number 2E-7", "0 number -0.25e+10", "0 number 123456789012345678901234567890"},
		},
		{
			name:  "escaped strings",
			doc:   `{"s":["a\"b\\c\/d","\b\f\n\r\t","caf\u00e9","\ud83d\ude00","\u00E9t\u00e9"]}`,
			paths: []string{"s"},
			want:  []string{`0 string a"b\c/d`, "0 string \b\f\n\r\t", "0 string café", "0 string 😀", "0 string été"},
		},
		{
			name:  "broken surrogates become U+FFFD",
			doc:   `{"s":["\ud800x","\ud800\u0041","\udc00\ud800","\ud800\ud800\udc00"]}`,
			paths: []string{"s"},
			want:  []string{"0 string \uFFFDx", "0 string \uFFFDA", "0 string \uFFFD\uFFFD", "0 string \uFFFD𐀀"},
		},
		{
			name:  "escaped keys",
			doc:   `{"event\u004eame":"X","a\"b":1,"c\\":2,"\u00e9":3,"caf\u00e9":{"d\u0065":4}}`,
			paths: []string{"eventName", `a"b`, `c\`, "é", "café.de"},
			want:  []string{"0 string X", "1 number 1", "2 number 2", "3 number 3", "4 number 4"},
		},
		{
			name:  "escaped key of more than 64 bytes",
			doc:   `{"` + strings.Repeat(`\u0061`, 100) + `":1}`,
			paths: []string{strings.Repeat("a", 100)},
			want:  []string{"0 number 1"},
		},
		{
			name:  "a dot always separates segments",
			doc:   `{"a.b":1,"a\u002eb":2,"a":{"b":3}}`,
			paths: []string{"a.b"},
			want:  []string{"0 number 3"},
		},
		{
			name:  "fold off",
			doc:   `{"ResultType":"0","resultType":"1","RESULTTYPE":"2"}`,
			paths: []string{"resultType", "ResultType", "resulttype"},
			want:  []string{"1 string 0", "0 string 1"},
		},
		{
			name:  "fold on",
			doc:   `{"ResultType":"0","resultType":"1","RESULTTYPE":"2","resultTypes":"3"}`,
			paths: []string{"resultType", "ResultType", "resulttype"},
			fold:  true,
			want: []string{"0 string 0", "1 string 0", "2 string 0", "0 string 1", "1 string 1", "2 string 1",
				"0 string 2", "1 string 2", "2 string 2"},
		},
		{
			name:  "fold nested",
			doc:   `{"Properties":{"Status":{"Value":"Failed"}},"properties":{"status":{"value":"ok"}}}`,
			paths: []string{"properties.status.value"},
			fold:  true,
			want:  []string{"0 string Failed", "0 string ok"},
		},
		{
			name:  "fold Unicode simple folding",
			doc:   `{"\u212a":1,"ſ":2,"straße":3,"ÉTÉ":4,"caf\u00c9":5}`,
			paths: []string{"k", "S", "STRASSE", "été", "CAFÉ"},
			fold:  true,
			want:  []string{"0 number 1", "1 number 2", "3 number 4", "4 number 5"},
		},
		{
			name:  "fold with escaped key",
			doc:   `{"Event\u004eAME":"X"}`,
			paths: []string{"eventName"},
			fold:  true,
			want:  []string{"0 string X"},
		},
		{
			name:  "invalid UTF-8 is kept byte for byte",
			doc:   "{\"s\":\"a\xffb\xc3\",\"\xfe\":\"\xed\xa0\x80\"}",
			paths: []string{"s", "\xfe"},
			want:  []string{"0 string a\xffb\xc3", "1 string \xed\xa0\x80"},
		},
		{
			name:  "hostile strings",
			doc:   `{"s":"\u0000\u001f</script>\\\"","k":"\\\\\\\"]}"}`,
			paths: []string{"s", "k"},
			want:  []string{"0 string \x00\x1f</script>\\\"", `1 string \\\"]}`},
		},
		{
			name:  "skipped strings with brackets and escaped quotes",
			doc:   `{"z":["]\"}",{"y":"\\"}],"a":1,"x":"\\\\","b":2}`,
			paths: []string{"a", "b"},
			want:  []string{"0 number 1", "1 number 2"},
		},
		{
			name:  "pretty-printed",
			doc:   "{\n  \"a\" : {\n    \"b\" : [ 1 , \"x\" ]\n  } ,\n  \"c\" :\ttrue\r\n}\n",
			paths: []string{"a.b", "c", "a"},
			want:  []string{"0 number 1", "0 string x", "2 object {\n    \"b\" : [ 1 , \"x\" ]\n  }", "1 bool true"},
		},
		{
			name:  "skipped parts are only balanced",
			doc:   `{"z":[tru, 01, {"q" "r"}],"a":1}`,
			paths: []string{"a"},
			want:  []string{"0 number 1"},
		},
		{
			name:  "no paths",
			doc:   trail,
			paths: nil,
			want:  nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := extractAll(t, tt.paths, tt.fold, tt.doc)
			if err != nil {
				t.Fatalf("Extract: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got\n\t%q\nwant\n\t%q", got, tt.want)
			}
		})
	}
}

func TestExtractInvalid(t *testing.T) {
	tests := []struct {
		doc  string
		off  int // the byte offset the error names
		path string
	}{
		{``, 0, "a"},
		{" \n", 2, "a"},
		{`{`, 1, "a"},
		{`{"a"`, 4, "a"},
		{`{"a":`, 5, "a"},
		{`{"a":1`, 6, "a"},
		{`{"a":1,`, 7, "a"},
		{`{"a":"x`, 5, "a"},
		{`{"a":tru}`, 5, "a"},
		{`{"a":nul}`, 5, "a"},
		{`{"a":fals}`, 5, "a"},
		{`{"a":True}`, 5, "a"},
		{`{"a":1,}`, 7, "a"},
		{`{"a" 1}`, 5, "a"},
		{`{"a":1 "b":2}`, 7, "a"},
		{`{a:1}`, 1, "a"},
		{`{1:2}`, 1, "a"},
		{`{"a":01}`, 6, "a"},
		{`{"a":-}`, 5, "a"},
		{`{"a":1.}`, 5, "a"},
		{`{"a":1e}`, 5, "a"},
		{`{"a":+1}`, 5, "a"},
		{`{"a":"\x"}`, 6, "a"},
		{`{"a":"\u12"}`, 6, "a"},
		{"{\"a\":\"x\ny\"}", 7, "a"},
		{`{"a":[1,]}`, 8, "a"},
		{`{"a":[1 2]}`, 8, "a"},
		{`{"a":[1,2}`, 9, "a"},
		{`{"a":1}x`, 7, "a"},
		{`{"a":1}{}`, 7, "a"},
		{`{"z":[}`, 6, "a"},
		{`{"z":{]}`, 6, "a"},
		{`{"z":[1,2]]}`, 10, "a"},
		{`{"z":"x}`, 5, "a"},
		{`{"z":[1,"]}`, 8, "a"},
		{`{"z":[1,{"y":2}`, 15, "a"},
		{`{"z":x}`, 5, "a"},
	}
	for _, tt := range tests {
		for _, fold := range []bool{false, true} {
			got, err := extractAll(t, []string{tt.path}, fold, tt.doc)
			if err == nil {
				t.Errorf("Extract(%q) = %q, nil; want an error", tt.doc, got)
				continue
			}
			var se *syntaxError
			if !errors.As(err, &se) || se.off != tt.off {
				t.Errorf("Extract(%q): %v; want an error at byte %d", tt.doc, err, tt.off)
			}
			if !strings.Contains(err.Error(), "byte "+strconv.Itoa(tt.off)) {
				t.Errorf("Extract(%q): error %q does not name byte %d", tt.doc, err, tt.off)
			}
			if json.Valid([]byte(tt.doc)) {
				t.Errorf("test case %q is valid JSON", tt.doc)
			}
		}
	}
}

func TestExtractDepth(t *testing.T) {
	deep := func(prefix, open, middle, close, suffix string, n int) []byte {
		return []byte(prefix + strings.Repeat(open, n) + middle + strings.Repeat(close, n) + suffix)
	}
	tests := []struct {
		name string
		doc  []byte
		ok   bool
		want int // calls to fn
	}{
		{"100000 arrays at a path", deep(`{"a":`, "[", "1", "]", "}", 100000), false, 0},
		{"100000 arrays skipped", deep(`{"z":`, "[", "1", "]", `,"a":1}`, 100000), false, 0},
		{"100000 arrays at the top", deep("", "[", "1", "]", "", 100000), false, 0},
		{"100000 objects skipped", deep(`{"z":`, `{"z":`, "1", "}", "}", 100000), false, 0},
		{"100000 objects at a path", deep(``, `{"a":`, "1", "}", "", 100000), false, 0},
		{"100000 unclosed arrays", deep(`{"a":`, "[", "", "", "", 100000), false, 0},
		{"10000 arrays at a path", deep(`{"a":`, "[", "1", "]", "}", 9999), true, 1},
		{"10001 arrays at a path", deep(`{"a":`, "[", "1", "]", "}", 10000), false, 1},
		{"10000 arrays skipped", deep(`{"z":`, "[", "1", "]", `,"a":1}`, 9999), true, 1},
		{"10001 arrays skipped", deep(`{"z":`, "[", "1", "]", `,"a":1}`, 10000), false, 0},
		{"10000 objects at a path", deep(`{"a":`, `{"a":`, "1", "}", "}", 9999), true, 2},
		{"10001 objects at a path", deep(`{"a":`, `{"a":`, "1", "}", "}", 10000), false, 0},
		{"10000 arrays under a leaf object", deep(`{"a":{"b":`, "[", "1", "]", "}}", 9998), true, 1},
		{"10001 arrays under a leaf object", deep(`{"a":{"b":`, "[", "1", "]", "}}", 9999), false, 0},
	}
	p, err := CompilePaths([]string{"a", "a.a.a"}, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			err := p.Extract(tt.doc, func(int, Value) { calls++ })
			if (err == nil) != tt.ok {
				t.Fatalf("Extract: %v; want ok=%v", err, tt.ok)
			}
			if err != nil && !strings.Contains(err.Error(), "nesting") && !strings.Contains(err.Error(), "end of JSON") {
				t.Errorf("Extract: %v; want a nesting error", err)
			}
			if json.Valid(tt.doc) != tt.ok {
				t.Errorf("json.Valid = %v; Extract and encoding/json should agree on depth", !tt.ok)
			}
			if tt.ok && calls != tt.want {
				t.Errorf("fn called %d times, want %d", calls, tt.want)
			}
		})
	}
}

func TestCompilePaths(t *testing.T) {
	for _, bad := range []string{"", ".", ".a", "a.", "a..b", "a.b."} {
		_, err := CompilePaths([]string{"ok", bad}, false)
		if err == nil {
			t.Errorf("CompilePaths(%q) succeeded", bad)
			continue
		}
		if bad != "" && !strings.Contains(err.Error(), strconv.Quote(bad)) {
			t.Errorf("CompilePaths(%q): error %q does not name the path", bad, err)
		}
	}
	p, err := CompilePaths([]string{"a", "a.b", "a", "c"}, true)
	if err != nil {
		t.Fatal(err)
	}
	if p.Len() != 4 {
		t.Errorf("Len = %d, want 4", p.Len())
	}
	p, err = CompilePaths(nil, false)
	if err != nil || p.Len() != 0 {
		t.Errorf("CompilePaths(nil) = %v, %v", p, err)
	}
}

func TestValueStr(t *testing.T) {
	tests := []struct {
		v    Value
		want string
	}{
		{Value{KindString, []byte(`plain`)}, "plain"},
		{Value{KindString, []byte(`a\u00e9\n\/`)}, "aé\n/"},
		{Value{KindString, []byte(`\ud83d\ude00`)}, "😀"},
		{Value{KindString, []byte(`\ud83d`)}, "\uFFFD"},
		{Value{KindString, []byte(`\ud83d\u`)}, "\uFFFD\\u"},
		// Malformed escapes, which Extract never reports, are kept.
		{Value{KindString, []byte(`a\x`)}, `a\x`},
		{Value{KindString, []byte(`a\`)}, `a\`},
		{Value{KindString, []byte(`\u12`)}, `\u12`},
		{Value{KindString, []byte("\xff\\n\xfe")}, "\xff\n\xfe"},
		{Value{KindNumber, []byte(`-1.5e3`)}, "-1.5e3"},
		{Value{KindBool, []byte(`true`)}, "true"},
		{Value{KindNull, []byte(`null`)}, "null"},
		{Value{KindObject, []byte(`{"a":"\u00e9"}`)}, `{"a":"\u00e9"}`},
		{Value{KindArray, []byte(`[]`)}, "[]"},
		{Value{}, ""},
	}
	buf := []byte("prefix:")
	for _, tt := range tests {
		if got := tt.v.Str(); got != tt.want {
			t.Errorf("Value{%d, %q}.Str() = %q, want %q", tt.v.Kind, tt.v.Raw, got, tt.want)
		}
		if got := string(tt.v.AppendStr(buf[:7])); got != "prefix:"+tt.want {
			t.Errorf("Value{%d, %q}.AppendStr = %q, want %q", tt.v.Kind, tt.v.Raw, got, "prefix:"+tt.want)
		}
	}
}

// benchPaths are paths SigmaHQ's AWS rules name, and a few more for the
// arrays of a security-group change.
var benchPaths = []string{
	"eventSource",
	"eventName",
	"eventType",
	"errorCode",
	"errorMessage",
	"userAgent",
	"sourceIPAddress",
	"awsRegion",
	"recipientAccountId",
	"userIdentity.type",
	"userIdentity.arn",
	"userIdentity.accessKeyId",
	"userIdentity.sessionContext.sessionIssuer.type",
	"userIdentity.sessionContext.sessionIssuer.arn",
	"requestParameters.attribute",
	"requestParameters.userData",
	"requestParameters.cidrIp",
	"requestParameters.ipPermissions",
	"responseElements.ConsoleLogin",
	"responseElements.securityGroupRuleSet.items.cidrIpv4",
}

// readStratus returns every record of the Stratus Red Team detonation
// logs: the CloudTrail records of the *.json files, each an array of them,
// and the events of the *.jsonl samples.
func readStratus(t testing.TB) map[string][]byte {
	t.Helper()
	const dir = "../../shared/testdata/stratus-red-team-detonation-logs"
	docs := map[string][]byte{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch filepath.Ext(path) {
		case ".json":
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			var records []json.RawMessage
			if err := json.Unmarshal(data, &records); err != nil {
				return fmt.Errorf("%s: %v", path, err)
			}
			docs[filepath.Base(path)] = data // the whole file: the paths apply to each record
			for i, r := range records {
				docs[fmt.Sprintf("%s[%d]", filepath.Base(path), i)] = r
			}
		case ".jsonl":
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			defer f.Close()
			sc := bufio.NewScanner(f)
			sc.Buffer(nil, 1<<20)
			for n := 1; sc.Scan(); n++ {
				var line struct{ Event json.RawMessage }
				if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
					return fmt.Errorf("%s:%d: %v", path, n, err)
				}
				docs[fmt.Sprintf("%s:%d", filepath.Base(path), n)] = line.Event
			}
			return sc.Err()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) < 300 {
		t.Fatalf("found %d documents under %s, want the 310 records and more", len(docs), dir)
	}
	return docs
}

// crossPaths are the paths of the cross-check: fields at every depth,
// arrays of objects, arrays of scalars, whole objects, prefixes of one
// another, and paths that no record has.
var crossPaths = append([]string{
	"eventVersion",
	"userIdentity",
	"userIdentity.sessionContext",
	"userIdentity.sessionContext.attributes.mfaAuthenticated",
	"userIdentity.sessionContext.sessionIssuer.userName",
	"userIdentity.invokedBy",
	"requestParameters",
	"requestParameters.filters",
	"requestParameters.filters.key",
	"requestParameters.filters.values",
	"requestParameters.instancesSet.items.instanceId",
	"requestParameters.eventSelectors.dataResources.values",
	"requestParameters.tags.key",
	"responseElements",
	"responseElements.credentials.accessKeyId",
	"responseElements.instancesSet.items.currentState.name",
	"responseElements.profile.attributeMappings.mappingRules.specifier",
	"responseElements.command.instanceIds",
	"resources.ARN",
	"additionalEventData.MFAUsed",
	"tlsDetails.tlsVersion",
	"managementEvent",
	"readOnly",
	"requestParameters.maxResults",
	"protoPayload.methodName",
	"properties.message",
	"ResultType",
}, benchPaths...)

func TestExtractMatchesEncodingJSON(t *testing.T) {
	docs := readStratus(t)
	for _, fold := range []bool{false, true} {
		p, err := CompilePaths(crossPaths, fold)
		if err != nil {
			t.Fatal(err)
		}
		calls := 0
		for name, doc := range docs {
			var compact bytes.Buffer
			if err := json.Compact(&compact, doc); err != nil {
				t.Fatal(err)
			}
			for _, d := range [][]byte{doc, compact.Bytes()} {
				want, err := refExtract(d, crossPaths, fold)
				if err != nil {
					t.Fatalf("%s: reference: %v", name, err)
				}
				got, err := collect(p, d)
				if err != nil {
					t.Fatalf("%s: Extract: %v", name, err)
				}
				if d := diffResults(got, want, len(crossPaths)); d != "" {
					t.Fatalf("%s (fold %v): Extract differs from encoding/json:\n%s", name, fold, d)
				}
				for _, w := range want {
					calls += len(w)
				}
			}
		}
		if calls < 3000 {
			t.Errorf("only %d values compared; the paths should find more", calls)
		}
	}
}

func TestExtractDoesNotAllocate(t *testing.T) {
	doc := benchRecord(t)
	p, err := CompilePaths(benchPaths, false)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	fn := func(int, Value) { n++ }
	allocs := testing.AllocsPerRun(100, func() {
		if err := p.Extract(doc, fn); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Extract allocates %v times per document, want 0", allocs)
	}
	if n == 0 {
		t.Error("no values found")
	}
}

// benchRecord is a 1.3 KB CloudTrail record as CloudTrail delivers it,
// compacted: a security-group change, with an array of objects.
func benchRecord(t testing.TB) []byte {
	t.Helper()
	data, err := os.ReadFile("../../shared/testdata/stratus-red-team-detonation-logs/detonation-logs/aws.exfiltration.ec2-security-group-open-port-22-ingress.json")
	if err != nil {
		t.Fatal(err)
	}
	var records []json.RawMessage
	if err := json.Unmarshal(data, &records); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := json.Compact(&b, records[0]); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func BenchmarkExtract(b *testing.B) {
	doc := benchRecord(b)
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, doc, "", "  "); err != nil {
		b.Fatal(err)
	}
	for _, bb := range []struct {
		name string
		doc  []byte
		fold bool
	}{
		{"compact", doc, false},
		{"compact-fold", doc, true},
		{"indented", pretty.Bytes(), false},
	} {
		b.Run(bb.name, func(b *testing.B) {
			p, err := CompilePaths(benchPaths, bb.fold)
			if err != nil {
				b.Fatal(err)
			}
			n := 0
			fn := func(int, Value) { n++ }
			b.SetBytes(int64(len(bb.doc)))
			b.ReportAllocs()
			for b.Loop() {
				if err := p.Extract(bb.doc, fn); err != nil {
					b.Fatal(err)
				}
			}
			if n == 0 {
				b.Fatal("no values found")
			}
		})
	}
	// For scale: what decoding the record into a map costs.
	b.Run("encoding-json-map", func(b *testing.B) {
		b.SetBytes(int64(len(doc)))
		b.ReportAllocs()
		for b.Loop() {
			var m map[string]any
			if err := json.Unmarshal(doc, &m); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// The reference: encoding/json decodes the document, keeping the order of
// members and every duplicate key (a map[string]any would lose both, and
// Extract reports both), and refWalk applies the path semantics to the
// tree, one path at a time, as plainly as they can be written.

type refNode struct {
	kind  Kind
	text  string // a scalar's decoded text, or an object's JSON text
	keys  []string
	vals  []*refNode // the members' values, in order
	elems []*refNode // an array's elements
}

// A result is what fn was given, as the test compares it.
type result struct {
	kind Kind
	text string
}

func refParse(doc []byte) (*refNode, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	n, err := refRead(dec, doc)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("data after the top-level value: %v", err)
	}
	return n, nil
}

func refRead(dec *json.Decoder, doc []byte) (*refNode, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch tok := tok.(type) {
	case json.Delim:
		n := &refNode{kind: KindObject}
		start := dec.InputOffset() - 1
		if tok == '[' {
			n.kind = KindArray
		}
		for dec.More() {
			if n.kind == KindObject {
				key, err := dec.Token()
				if err != nil {
					return nil, err
				}
				n.keys = append(n.keys, key.(string))
			}
			v, err := refRead(dec, doc)
			if err != nil {
				return nil, err
			}
			if n.kind == KindObject {
				n.vals = append(n.vals, v)
			} else {
				n.elems = append(n.elems, v)
			}
		}
		if _, err := dec.Token(); err != nil {
			return nil, err
		}
		n.text = string(doc[start:dec.InputOffset()])
		return n, nil
	case string:
		return &refNode{kind: KindString, text: tok}, nil
	case json.Number:
		return &refNode{kind: KindNumber, text: tok.String()}, nil
	case bool:
		return &refNode{kind: KindBool, text: strconv.FormatBool(tok)}, nil
	case nil:
		return &refNode{kind: KindNull, text: "null"}, nil
	}
	return nil, fmt.Errorf("unexpected token %v", tok)
}

// refWalk reports the values at segs below n.
func refWalk(n *refNode, segs []string, fold bool, report func(result)) {
	if n.kind == KindArray {
		if len(n.elems) == 0 && len(segs) == 0 {
			report(result{KindArray, "[]"})
		}
		for _, e := range n.elems {
			refWalk(e, segs, fold, report)
		}
		return
	}
	if len(segs) == 0 {
		report(result{n.kind, n.text})
		return
	}
	for i, k := range n.keys {
		if k == segs[0] || fold && strings.EqualFold(k, segs[0]) {
			refWalk(n.vals[i], segs[1:], fold, report)
		}
	}
}

// refExtract returns, for each path, the values the reference finds there.
func refExtract(doc []byte, paths []string, fold bool) ([][]result, error) {
	root, err := refParse(doc)
	if err != nil {
		return nil, err
	}
	out := make([][]result, len(paths))
	for i, path := range paths {
		refWalk(root, strings.Split(path, "."), fold, func(r result) { out[i] = append(out[i], r) })
	}
	return out, nil
}

// collect returns, for each path, the values Extract reports there, and
// checks what holds for every value.
func collect(p *Paths, doc []byte) ([][]result, error) {
	out := make([][]result, p.Len())
	var bad error
	err := p.Extract(doc, func(i int, v Value) {
		s := v.Str()
		if a := v.AppendStr(nil); string(a) != s && bad == nil {
			bad = fmt.Errorf("path %d: AppendStr = %q, Str = %q", i, a, s)
		}
		if v.Kind < KindString || v.Kind > KindArray || v.Kind == KindArray && s != "[]" {
			bad = fmt.Errorf("path %d: value %d %q", i, v.Kind, v.Raw)
		}
		out[i] = append(out[i], result{v.Kind, s})
	})
	if bad != nil {
		return nil, bad
	}
	return out, err
}

func diffResults(got, want [][]result, n int) string {
	var b strings.Builder
	for i := range n {
		if len(got[i]) == 0 && len(want[i]) == 0 {
			continue
		}
		if !reflect.DeepEqual(got[i], want[i]) {
			fmt.Fprintf(&b, "path %d:\n\tgot  %q\n\twant %q\n", i, got[i], want[i])
		}
	}
	return b.String()
}

// calls records the values a Reader or Extract reports, in order.
type calls []string

func (c *calls) fn(path int, v Value) { *c = append(*c, fmt.Sprintf("%d %d %s", path, v.Kind, v.Raw)) }

// readLazily reads doc with a Reader, asking for the paths in the given
// order and then for the rest, and returns what it reported and the
// first error.
func readLazily(p *Paths, doc []byte, order []int) (calls, error) {
	var (
		got calls
		r   Reader
	)
	r.Reset(p, doc, got.fn)
	var first error
	for _, i := range order {
		if err := r.Read(i); err != nil && first == nil {
			first = err
		}
	}
	if err := r.ReadAll(); err != nil && first == nil {
		first = err
	}
	return got, first
}

func TestReader(t *testing.T) {
	p, err := CompilePaths([]string{"userIdentity.type", "eventType", "userIdentity.arn", "missing"}, false)
	if err != nil {
		t.Fatal(err)
	}
	doc := []byte(`{"eventVersion":"1.08","userIdentity":{"type":"AssumedRole","arn":"arn:x"},"requestParameters":{"big":[1,2,3]},"eventType":"AwsApiCall"}`)
	var (
		got calls
		r   Reader
	)
	r.Reset(p, doc, got.fn)
	// Asking for a field of userIdentity reads up to it and no further.
	if err := r.Read(0); err != nil {
		t.Fatal(err)
	}
	if want := (calls{`0 1 AssumedRole`, `2 1 arn:x`}); !slices.Equal(got, want) {
		t.Fatalf("after Read(userIdentity.type): %q, want %q", got, want)
	}
	if r.i != bytes.Index(doc, []byte(`"requestParameters"`)) {
		t.Errorf("read to offset %d, want up to requestParameters", r.i)
	}
	// A field of a member already read costs nothing more.
	if err := r.Read(2); err != nil || len(got) != 2 {
		t.Fatalf("Read(userIdentity.arn) = %v, %q", err, got)
	}
	// A field the document lacks reads it to its end.
	if err := r.Read(3); err != nil || r.state != readerDone || len(got) != 3 || got[2] != `1 1 AwsApiCall` {
		t.Fatalf("Read(missing) = %v, state %d, %q", err, r.state, got)
	}

	// Whatever the order of the questions, a document read to its end
	// gave what Extract gives, in its order.
	for _, doc := range []string{
		string(doc),
		`{}`,
		` {"eventType":"a","eventType":"b","userIdentity":{"type":"t"}} `,
		`[{"eventType":"a"},{"eventType":"b"}]`,
		`"just a string"`,
	} {
		var want calls
		wantErr := p.Extract([]byte(doc), want.fn)
		for _, order := range [][]int{{0, 1, 2, 3}, {3, 2, 1, 0}, {1}, {}} {
			got, err := readLazily(p, []byte(doc), order)
			if !slices.Equal(got, want) || (err == nil) != (wantErr == nil) {
				t.Errorf("%s, paths %v: %q, %v; Extract: %q, %v", doc, order, got, err, want, wantErr)
			}
		}
	}

	// Invalid JSON is an error once reading reaches it, and stays one.
	for _, tt := range []struct {
		doc  string
		path int
		ok   bool // the fault is past what Read(path) reads
	}{
		{`{"userIdentity":{"type":"x"},"eventType":tru}`, 0, true},
		{`{"userIdentity":{"type":"x"},"eventType":tru}`, 1, false},
		{`{"userIdentity":{"type":"x"},"eventType":"y"} trailing`, 0, true},
		{`{"userIdentity":{"type":"x"},"eventType":"y"} trailing`, 3, false},
		{`{"userIdentity" {"type":"x"}}`, 0, false},
		{``, 0, false},
	} {
		var r Reader
		r.Reset(p, []byte(tt.doc), func(int, Value) {})
		if err := r.Read(tt.path); (err == nil) != tt.ok {
			t.Errorf("%q: Read(%d) = %v", tt.doc, tt.path, err)
		}
		if err := r.ReadAll(); err == nil {
			t.Errorf("%q: ReadAll found no error", tt.doc)
		} else if again := r.Read(tt.path); again != err {
			t.Errorf("%q: error %v, then %v", tt.doc, err, again)
		}
	}
}
