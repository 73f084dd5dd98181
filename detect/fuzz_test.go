package detect

import (
	"bytes"
	"encoding/json"
	"errors"
	"hash/fnv"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/vigilsec/vigil/event"
)

// The fuzz targets of the package, seeded with the rule corpora and the
// Stratus Red Team CloudTrail records under shared/testdata:
//
//   - FuzzParse loads a rule file and runs it: it must not panic, must
//     finish in bounded time, and must report what it refuses as *Error
//     naming the file and a line.
//   - FuzzCondition parses a condition; what parses prints back to a
//     condition that parses to the same thing.
//   - FuzzMatch runs one field condition over a JSON document and checks
//     the plain, contains, startswith, endswith, cased, neq and UTF-16
//     forms against a reference built on encoding/json.
//   - FuzzGlob checks the wildcard matcher against regexp.

// slowInput is how long one fuzz input may take before it is reported as
// a blow-up; hungInput is how long before the process is stopped, so that
// the fuzzer records an input that would never finish.
const (
	slowInput = 3 * time.Second
	hungInput = 20 * time.Second
)

// watchdog panics, from another goroutine, when the input runs past
// hungInput: the fuzzer then keeps the input as a crasher.
func watchdog(what string, input any) (stop func() time.Duration) {
	start := time.Now()
	timer := time.AfterFunc(hungInput, func() {
		panic(what + ": input still running after " + hungInput.String() + ": " + truncate(input))
	})
	return func() time.Duration {
		timer.Stop()
		return time.Since(start)
	}
}

func truncate(x any) string {
	var s string
	switch x := x.(type) {
	case string:
		s = x
	case []byte:
		s = string(x)
	}
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}

// ruleFiles returns the rule files of the corpora (SigmaHQ's cloud rules,
// the specification's examples and the built-in pack), by name.
var ruleFiles = sync.OnceValue(func() map[string][]byte {
	out := map[string][]byte{}
	for _, dir := range []string{sigmaHQ, specDir} {
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !IsRuleFile(p) {
				return nil
			}
			if data, err := os.ReadFile(p); err == nil {
				out[p] = data
			}
			return nil
		})
	}
	fs.WalkDir(builtinFS, "builtin", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !IsRuleFile(p) {
			return nil
		}
		if data, err := builtinFS.ReadFile(p); err == nil {
			out[p] = data
		}
		return nil
	})
	return out
})

// stratusRecords returns the CloudTrail records of the Stratus Red Team
// detonation logs, each as its JSON text.
var stratusRecords = sync.OnceValue(func() [][]byte {
	var out [][]byte
	files, _ := filepath.Glob(filepath.Join(stratusDir, "*.json"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var recs []json.RawMessage
		if json.Unmarshal(data, &recs) != nil {
			continue
		}
		for _, r := range recs {
			var b bytes.Buffer
			if json.Compact(&b, r) == nil {
				out = append(out, b.Bytes())
			}
		}
	}
	return out
})

// fuzzEvents are the events FuzzParse matches each engine against: a few
// CloudTrail records of different actions, and one event of each other
// source, among them one with long field values (so that a rule whose
// matching is not linear shows).
var fuzzEvents = sync.OnceValue(func() []*event.Event {
	var evs []*event.Event
	seen := map[string]bool{}
	for _, rec := range stratusRecords() {
		var r struct {
			EventName string `json:"eventName"`
		}
		if json.Unmarshal(rec, &r) != nil || seen[r.EventName] || len(seen) >= 12 {
			continue
		}
		seen[r.EventName] = true
		evs = append(evs, &event.Event{Source: "aws.cloudtrail", Action: r.EventName, Raw: rec, Time: t0.Add(time.Duration(len(evs)) * time.Second)})
	}
	long := strings.Repeat("a", 16<<10)
	longDoc, _ := json.Marshal(map[string]any{
		"eventName": "GetObject", "eventSource": "s3.amazonaws.com", "userAgent": long,
		"requestParameters": map[string]any{"key": long + "-" + long, "tags": []string{long, "x"}},
		"userIdentity":      map[string]any{"type": "IAMUser", "arn": "arn:aws:iam::1:user/" + long},
	})
	evs = append(evs, &event.Event{Source: "aws.cloudtrail", Action: "GetObject", Raw: longDoc, Time: t0})
	for _, e := range []*event.Event{
		{Source: "gcp.audit", Action: "storage.buckets.delete", Raw: []byte(`{"protoPayload":{"methodName":"storage.buckets.delete","serviceName":"storage.googleapis.com","authenticationInfo":{"principalEmail":"a@example.com"}},"severity":"NOTICE"}`)},
		{Source: "azure.activity", Action: "Microsoft.Compute/virtualMachines/delete", Raw: []byte(`{"operationName":{"value":"Microsoft.Compute/virtualMachines/delete"},"ResultType":"Success","properties":{"statusCode":"OK"}}`)},
		{Source: "azure.signin", Class: event.ClassAuthentication, Raw: []byte(`{"properties":{"ResultType":"50126","userPrincipalName":"a@example.com","location":"DE"}}`)},
		{Source: "syslog", Service: "sshd", Raw: []byte(`Failed password for root from 203.0.113.7 port 22 ssh2`), Doc: []byte(`{"program":"sshd","message":"Failed password for root"}`)},
		{Source: "json", Raw: []byte(`{"rule":"base","user":"alice","count":3,"nested":{"a":[1,"b",null]},"s":"say \"hi\""}`)},
	} {
		e.Time = t0
		evs = append(evs, e)
	}
	return evs
})

// fuzzPlaceholders are the values FuzzParse gives placeholders: one is
// left without, so that disabled rules are exercised too.
var fuzzPlaceholders = map[string][]string{
	"admins": {"alice", "root"}, "none": {}, "countries": {"DE", "FR"},
	"LegitCountries": {"DE"}, "Legitimate_Countries": {"DE"}, "ApprovedUserUpn": {"a@example.com"},
	"Legitimate_IP_Ranges": {"192.0.2.0/24"}, "ClosingTime": {"18"},
}

// leafErrors flattens errors.Join trees.
func leafErrors(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, leafErrors(e)...)
		}
		return out
	}
	return []error{err}
}

// checkRuleErrors checks that each error of loading data is an *Error
// naming file and a line of data (0 only for an error about the whole
// file, which names no rule).
func checkRuleErrors(t *testing.T, stage, file string, data []byte, err error) {
	t.Helper()
	lines := yamlLines(data)
	for _, e := range leafErrors(err) {
		var re *Error
		if !errors.As(e, &re) {
			t.Errorf("%s: error %q (%T) is not an *Error", stage, e, e)
			continue
		}
		if re.File != file {
			t.Errorf("%s: error %q names file %q, want %q", stage, e, re.File, file)
		}
		if re.Err == nil {
			t.Errorf("%s: error %q has no reason", stage, e)
		}
		switch {
		case re.Line < 0 || re.Line > lines:
			t.Errorf("%s: error %q at line %d, outside the file's %d lines", stage, e, re.Line, lines)
		case re.Line == 0 && re.Rule != "":
			t.Errorf("%s: error %q names rule %s but no line", stage, e, re.Rule)
		}
	}
}

// yamlLines counts the lines of data as YAML does: \n, \r\n, \r, and
// U+0085, U+2028 and U+2029 end lines.
func yamlLines(data []byte) int {
	s := strings.ReplaceAll(string(data), "\r\n", "\n")
	n := 1
	for _, r := range s {
		switch r {
		case '\n', '\r', '\u0085', '\u2028', '\u2029':
			n++
		}
	}
	return n
}

// loadAndRun is FuzzParse's body: load data as a rule file, compile it,
// and match the fixed events with it.
func loadAndRun(t *testing.T, data []byte) {
	const file = "f.yml"
	rules, err := Parse(file, data)
	checkRuleErrors(t, "Parse", file, data, err)
	e, err := NewEngine(rules, Options{Placeholders: fuzzPlaceholders})
	checkRuleErrors(t, "NewEngine", file, data, err)
	if e == nil {
		t.Fatal("NewEngine returned no engine")
	}
	for _, d := range e.Disabled() {
		if d.Line < 1 || d.Reason == "" {
			t.Errorf("disabled rule %s: line %d, reason %q", d.Rule.ref(), d.Line, d.Reason)
		}
	}
	m := e.NewMatcher()
	det := e.NewDetector()
	for _, ev := range fuzzEvents() {
		raw, doc := bytes.Clone(ev.Raw), bytes.Clone(ev.Doc)
		x := *ev
		m.Match(&x, func(r *Rule) { m.Fields(r, &x) })
		det.Process(&x)
		if !bytes.Equal(ev.Raw, raw) || !bytes.Equal(ev.Doc, doc) {
			t.Fatal("matching changed the event's document")
		}
	}
}

// hostileRules are rules that ask for much: each must load (or be
// refused) and run quickly.
var hostileRules = []string{
	// Deep nesting of the condition.
	"title: t\nlogsource: {product: aws}\ndetection:\n  s: {eventName: x}\n  condition: " + strings.Repeat("(", 5000) + "s" + strings.Repeat(")", 5000) + "\n",
	"title: t\nlogsource: {product: aws}\ndetection:\n  s: {eventName: x}\n  condition: " + strings.Repeat("not ", 5000) + "s\n",
	// A search referred to many times, each expanding to many values.
	"title: t\nlogsource: {}\ndetection:\n  s:\n    f|windash|contains: ['-a-b-c-d-e']\n  condition: s" + strings.Repeat(" or s", 900) + "\n",
	"title: t\nlogsource: {}\ndetection:\n  a1: {f: [" + strings.Repeat("x,", 2000) + "y]}\n  a2: {f: z}\n  condition: " + strings.Repeat("1 of a* and ", 500) + "all of them\n",
	// windash over a long value.
	"title: t\nlogsource: {product: aws}\ndetection:\n  s:\n    userAgent|windash|contains: '-----" + strings.Repeat("x", 20000) + "'\n  condition: s\n",
	// A large regexp program from small nested repetitions.
	"title: t\nlogsource: {product: aws}\ndetection:\n  s:\n    userAgent|re: '((((a{100}){100}){100}){100})'\n  condition: s\n",
	"title: t\nlogsource: {product: aws}\ndetection:\n  s:\n    userAgent|re: '(?i)((\\pL{50}){50}b)'\n  condition: s\n",
	"title: t\nlogsource: {product: aws}\ndetection:\n  s:\n    userAgent|re: '" + strings.Repeat("([ab]{0,100}){10}", 230) + "c'\n  condition: s\n",
	"title: t\nlogsource: {product: aws}\ndetection:\n  s:\n    userAgent|re: '(.?){1000}x'\n  condition: s\n",
	"title: t\nlogsource: {product: aws}\ndetection:\n  s:\n    userAgent|re: ['(.?){1000}x', '(.?){999}x', '(.?){998}x', '(.?){997}x', '(.?){996}x', '(.?){995}x', '(.?){994}x', '(.?){993}x']\n  condition: s\n",
	// A long glob with ? run over long values.
	"title: t\nlogsource: {product: aws}\ndetection:\n  s:\n    userAgent: '*" + strings.Repeat("a?", 3000) + "b*'\n  condition: s\n",
	// YAML alias bomb.
	"a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\ntitle: t\nlogsource: {product: aws}\ndetection:\n  s: *g\n  t: {eventName: *g}\n  condition: s or t\n",
	// YAML nesting.
	"title: t\nlogsource: {product: aws}\ndetection:\n  s: " + strings.Repeat("[", 20000) + "\n  condition: s\n",
	// Many search identifiers, each referred to many times.
	"title: t\nlogsource: {product: aws}\ndetection:\n" + func() string {
		var b strings.Builder
		for i := range 900 {
			b.WriteString("  s_" + strconv.Itoa(i) + ": {eventName: x}\n")
		}
		return b.String()
	}() + "  condition: " + strings.Repeat("1 of s* or ", 900) + "all of them\n",
	// Empty field names and paths.
	"title: t\nlogsource: {product: aws}\ndetection:\n  s: {eventName|fieldref: ''}\n  condition: s\n",
	"title: t\nlogsource: {product: gcp}\ndetection:\n  s: {data.: x}\n  condition: s\n",
	"title: t\nlogsource: {product: gcp}\ndetection:\n  s: {data.protoPayload: x}\n  condition: s\n",
	"title: t\nid: a\nlogsource: {product: aws}\ndetection:\n  s: {eventName: x}\n  condition: s\n---\ncorrelation: {type: event_count, rules: [a], group-by: [''], timespan: 1h, condition: {gte: 2}}\n",
}

func FuzzParse(f *testing.F) {
	for _, data := range ruleFiles() {
		f.Add(data)
	}
	for _, r := range hostileRules {
		f.Add([]byte(r))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		stop := watchdog("FuzzParse", data)
		loadAndRun(t, data)
		if d := stop(); d > slowInput {
			t.Errorf("loading and matching %d bytes took %v", len(data), d)
		}
	})
}

// TestHostileRules runs the hostile rules, larger than the fuzzer makes
// them: each must be refused or run in bounded time.
func TestHostileRules(t *testing.T) {
	for i, r := range hostileRules {
		start := time.Now()
		loadAndRun(t, []byte(r))
		if d := time.Since(start); d > slowInput {
			t.Errorf("hostile rule %d: took %v", i, d)
		}
	}
}

// conditions returns the conditions of the corpora's rules.
func conditions() []string {
	var out []string
	for _, data := range ruleFiles() {
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for {
			var doc struct {
				Detection map[string]any `yaml:"detection"`
			}
			if dec.Decode(&doc) != nil {
				break
			}
			switch c := doc.Detection["condition"].(type) {
			case string:
				out = append(out, c)
			case []any:
				for _, x := range c {
					if s, ok := x.(string); ok {
						out = append(out, s)
					}
				}
			}
		}
	}
	return out
}

func FuzzCondition(f *testing.F) {
	for _, c := range conditions() {
		f.Add(c)
	}
	for _, c := range []string{
		"not (a and b)", "not a and b", "a and (b or c)", "(a or b) and not (c or 1 of d*)",
		"a or (b or c)", "(a and b) and c", "not not a", "all of them | count() by x > 3",
		"1 of sel_* and not all of filter_*", "any of them", "x | count(f) by a, b >= 2",
		strings.Repeat("(", 100) + "a" + strings.Repeat(")", 100),
	} {
		f.Add(c)
	}
	f.Fuzz(func(t *testing.T, s string) {
		stop := watchdog("FuzzCondition", s)
		defer func() {
			if d := stop(); d > slowInput {
				t.Errorf("took %v", d)
			}
		}()
		c, agg, err := parseCondition(s)
		if err != nil {
			var ce *conditionError
			if !errors.As(err, &ce) {
				t.Fatalf("parseCondition(%q): error %v (%T) is not a conditionError", s, err, err)
			}
			if ce.col < 1 || ce.col > len(s)+1 {
				t.Fatalf("parseCondition(%q): error %v at column %d, outside 1…%d", s, err, ce.col, len(s)+1)
			}
			return
		}
		if c == nil {
			t.Fatalf("parseCondition(%q): no condition and no error", s)
		}
		if !strings.Contains(s, "|") && agg != nil {
			t.Fatalf("parseCondition(%q): an aggregation without a pipe", s)
		}
		printed := c.String()
		c2, agg2, err := parseCondition(printed)
		if err != nil {
			t.Fatalf("parseCondition(%q) printed %q, which does not parse: %v", s, printed, err)
		}
		if agg2 != nil {
			t.Fatalf("parseCondition(%q) printed %q, which has an aggregation", s, printed)
		}
		if again := c2.String(); again != printed {
			t.Fatalf("parseCondition(%q) printed %q, which parses to %q", s, printed, again)
		}
	})
}

// matchMods are the modifier lists FuzzMatch chooses from. Those in
// refMods are checked against the reference; the rest must only not
// panic.
var matchMods = []string{
	"", "contains", "startswith", "endswith", "cased", "contains|cased", "startswith|cased", "endswith|cased",
	"neq", "contains|neq", "utf16le|contains", "utf16be|contains", "utf16|contains", "wide|contains",
	"all", "contains|all", "re", "re|i", "re|i|m|s", "cidr", "lt", "gte", "exists", "fieldref", "expand",
	"base64", "base64|contains", "base64offset|contains", "utf16le|base64offset|contains", "wide|base64offset|contains",
	"windash", "windash|contains", "endswith|windash", "hour", "minute|gte", "startswith|neq", "cased|neq",
	"windash|base64offset|contains", "contains|all|cased",
}

// pickMod maps the fuzzer's mod to one of matchMods: itself when it is
// one, else by its hash.
func pickMod(mod string) string {
	for _, m := range matchMods {
		if m == mod {
			return m
		}
	}
	h := fnv.New32a()
	h.Write([]byte(mod))
	return matchMods[h.Sum32()%uint32(len(matchMods))]
}

// matchFields are the fields FuzzMatch's rules test: top-level, nested
// (arrays of objects included), and CloudTrail's action field, which
// rules are indexed by.
var matchFields = []string{"eventName", "requestParameters.name"}

func FuzzMatch(f *testing.F) {
	recs := stratusRecords()
	for i, rec := range recs {
		if i%3 != 0 {
			continue
		}
		var r struct {
			EventName string `json:"eventName"`
			UserAgent string `json:"userAgent"`
		}
		json.Unmarshal(rec, &r)
		mods := []string{"", "contains", "startswith", "endswith", "cased", "neq", "windash|contains"}
		f.Add(rec, r.EventName, mods[i%len(mods)])
		f.Add(rec, strings.ToUpper(r.EventName[:len(r.EventName)/2]), "startswith")
		f.Add(rec, "*"+r.EventName[1:], "")
	}
	for _, s := range []struct{ doc, value, mod string }{
		{`{"eventName":"CreateUser"}`, "create?ser", ""},
		{`{"eventName":"CreateUser"}`, "reate*", "contains"},
		{`{"eventName":"a*b"}`, `a\*b`, ""},
		{`{"eventName":"a\\b"}`, `a\\b`, ""},
		{`{"eventName":"a\\b"}`, `a\b`, ""},
		{` {"eventName":"x"}`, "x", ""},
		{`{"eventName":["x","y"]}`, "Y", ""},
		{`{"eventName":"x","eventName":"y"}`, "y", ""},
		{`{"event\u004eame":"ÉTÉ"}`, "été", ""},
		{`{"requestParameters":[{"name":"a"},{"name":"b"}]}`, "B", ""},
		{`{"eventName":"\u00ff\u0000x\u0000"}`, "ÿx", "utf16le|contains"},
		{`{"eventName":"\u00ff\u00fex\u0000"}`, "x", "utf16|contains"},
		{`{"eventName":"ax\u0000"}`, "x", "utf16|contains"},
		{`{"eventName":"x"}`, "", "contains"},
		{`{"eventName":"-enc"}`, "/enc", "windash"},
		{`{"eventName":"-N"}`, "中", "utf16le|contains"},
		{`{"eventName":"-n"}`, "中", "utf16le|contains"},
	} {
		f.Add([]byte(s.doc), s.value, s.mod)
	}
	f.Fuzz(func(t *testing.T, doc []byte, value, mod string) {
		mod = pickMod(mod)
		if !utf8.ValidString(value) {
			return // YAML holds text only
		}
		var det strings.Builder
		det.WriteString("title: t\nlogsource: {}\ndetection:\n")
		for i, field := range matchFields {
			key := field
			if mod != "" {
				key += "|" + mod
			}
			y, err := yaml.Marshal(map[string]any{"s" + strconv.Itoa(i): map[string]any{key: value}})
			if err != nil {
				return
			}
			for line := range strings.Lines(string(y)) {
				det.WriteString("  " + line)
			}
		}
		det.WriteString("  condition: s0 or s1\n")
		// One rule per field: s0 or s1 is only there for the condition
		// to name both; the rules below name one each.
		src := det.String()
		var rules []*Rule
		for i := range matchFields {
			one := strings.Replace(src, "condition: s0 or s1", "condition: s"+strconv.Itoa(i), 1)
			one = strings.Replace(one, "title: t\n", "title: t\nid: r"+strconv.Itoa(i)+"\n", 1)
			rs, err := Parse("m.yml", []byte(one))
			if err != nil {
				checkRuleErrors(t, "Parse", "m.yml", []byte(one), err)
				return
			}
			rules = append(rules, rs...)
		}
		parsedValue := rules[0].detection.searches["s0"].alts[0].fields[0].values[0]
		refOK := parsedValue.s == value && parsedValue.kind == "str"

		stop := watchdog("FuzzMatch", value)
		defer func() {
			if d := stop(); d > slowInput {
				t.Errorf("took %v", d)
			}
		}()
		e, err := NewEngine(rules, Options{Placeholders: fuzzPlaceholders})
		if err != nil {
			checkRuleErrors(t, "NewEngine", "m.yml", []byte(src), err)
			if refMods[mod] && len(value) <= maxRegexpLen {
				t.Fatalf("%s: %q refused: %v", mod, value, err)
			}
			return
		}

		// The reference: the fields' values as encoding/json reads them.
		var want [2]bool
		var wantOK [2]bool
		// Only a JSON object has fields.
		isObject := json.Valid(doc) && utf8.Valid(doc) && bytes.HasPrefix(bytes.TrimLeft(doc, " \t\r\n"), []byte("{"))
		if refOK && refMods[mod] && isObject {
			for i, field := range matchFields {
				vals, ok := refValues(doc, strings.Split(field, "."))
				if ok {
					want[i], wantOK[i] = refMatch(mod, value, vals), true
				}
			}
		}
		action := ""
		actionVals, _ := refValues(doc, []string{"eventName"})
		if len(actionVals) == 1 && isObject {
			action = actionVals[0]
		}
		for _, ev := range []*event.Event{
			{Source: "json", Raw: doc},
			{Source: "aws.cloudtrail", Action: action, Raw: doc},
		} {
			var got [2]bool
			m := e.NewMatcher()
			m.Match(ev, func(r *Rule) {
				got[r.ID[1]-'0'] = true
				m.Fields(r, ev)
			})
			for i := range got {
				if ev.Source == "aws.cloudtrail" && i == 0 && len(actionVals) != 1 {
					// The index takes the one action a CloudTrail record
					// has: not a list, nor a key given twice.
					continue
				}
				if wantOK[i] && got[i] != want[i] {
					t.Fatalf("%s: %s|%s: %q on %s: got %v, want %v", ev.Source, matchFields[i], mod, value, doc, got[i], want[i])
				}
			}
		}
	})
}

// refMods are the modifier lists refMatch implements.
var refMods = map[string]bool{
	"": true, "contains": true, "startswith": true, "endswith": true,
	"cased": true, "contains|cased": true, "startswith|cased": true, "endswith|cased": true,
	"neq": true, "contains|neq": true, "startswith|neq": true, "cased|neq": true,
	"utf16le|contains": true, "utf16be|contains": true, "utf16|contains": true, "wide|contains": true,
}

// refMatch is the reference for a field condition with the modifiers
// mod and one string value, over the string values vals of the field
// (none when it is missing).
func refMatch(mod, value string, vals []string) bool {
	mods := map[string]bool{}
	for _, m := range strings.Split(mod, "|") {
		mods[m] = true
	}
	if mods["neq"] {
		delete(mods, "neq")
		var rest []string
		for m := range mods {
			if m != "" {
				rest = append(rest, m)
			}
		}
		return !refMatch(strings.Join(rest, "|"), value, vals)
	}
	if enc := utf16Mod(mods); enc != "" {
		// The encoded value is bytes, not text: no wildcards, and
		// compared byte for byte.
		needle := encodeUTF16Ref(value, enc)
		for _, v := range vals {
			if strings.Contains(v, needle) {
				return true
			}
		}
		return false
	}
	toks := sigmaTokens(value)
	switch {
	case mods["contains"]:
		toks = append(append([]globTok{{star: true}}, toks...), globTok{star: true})
	case mods["startswith"]:
		toks = append(toks, globTok{star: true})
	case mods["endswith"]:
		toks = append([]globTok{{star: true}}, toks...)
	}
	cased := mods["cased"]
	if !hasWildcard(toks) {
		// No wildcard: a plain comparison.
		lit := literal(toks)
		for _, v := range vals {
			if !cased {
				v, lit = strings.ToLower(v), strings.ToLower(lit)
			}
			if v == lit {
				return true
			}
		}
		return false
	}
	if lit, ok := containsOnly(toks); ok {
		for _, v := range vals {
			if !cased {
				v, lit = strings.ToLower(v), strings.ToLower(lit)
			}
			if strings.Contains(v, lit) {
				return true
			}
		}
		return false
	}
	re := globRegexp(toks, cased)
	for _, v := range vals {
		if !cased {
			v = strings.ToLower(v)
		}
		if re.MatchString(v) {
			return true
		}
	}
	return false
}

func utf16Mod(mods map[string]bool) string {
	for _, m := range []string{"utf16le", "utf16be", "utf16", "wide"} {
		if mods[m] {
			return m
		}
	}
	return ""
}

// encodeUTF16Ref encodes s as UTF-16: little-endian for utf16le and wide,
// big-endian for utf16be, and for utf16 little-endian after a byte order
// mark.
func encodeUTF16Ref(s, how string) string {
	var b []byte
	if how == "utf16" {
		b = append(b, 0xff, 0xfe)
	}
	for _, r := range s {
		var units []uint16
		if r >= 0x10000 {
			r -= 0x10000
			units = []uint16{uint16(0xd800 + r>>10), uint16(0xdc00 + r&0x3ff)}
		} else {
			units = []uint16{uint16(r)}
		}
		for _, u := range units {
			if how == "utf16be" {
				b = append(b, byte(u>>8), byte(u))
			} else {
				b = append(b, byte(u), byte(u>>8))
			}
		}
	}
	return string(b)
}

// refValues returns the values at path in doc, reading it with
// encoding/json's tokenizer: where the path meets an array it applies to
// each element, and an array at the end of the path gives its elements.
// ok is false when a value there is not a string.
func refValues(doc []byte, path []string) (vals []string, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	ok = true
	var walk func(path []string) error
	walk = func(path []string) error {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch tok := tok.(type) {
		case json.Delim:
			switch tok {
			case '{':
				if len(path) == 0 {
					ok = false
				}
				for dec.More() {
					k, err := dec.Token()
					if err != nil {
						return err
					}
					if len(path) > 0 && k.(string) == path[0] {
						err = walk(path[1:])
					} else {
						var skip json.RawMessage
						err = dec.Decode(&skip)
					}
					if err != nil {
						return err
					}
				}
			case '[':
				if len(path) == 0 && !dec.More() {
					ok = false // an empty array is "[]"
				}
				for dec.More() {
					if err := walk(path); err != nil {
						return err
					}
				}
			}
			_, err := dec.Token() // the closing delimiter
			return err
		case string:
			if len(path) == 0 {
				vals = append(vals, tok)
			}
		default:
			if len(path) == 0 {
				ok = false
			}
		}
		return nil
	}
	if err := walk(path); err != nil {
		return nil, false
	}
	return vals, ok
}

// A globTok is a piece of a Sigma value: literal text, * or ?.
type globTok struct {
	lit         string
	star, quest bool
}

// sigmaTokens splits a Sigma value into literal text and wildcards,
// following the specification's escapes: \* and \? are the literal
// characters, \\ a backslash, and any other backslash itself.
func sigmaTokens(s string) []globTok {
	var toks []globTok
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			toks = append(toks, globTok{lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '*':
			flush()
			toks = append(toks, globTok{star: true})
		case c == '?':
			flush()
			toks = append(toks, globTok{quest: true})
		case c == '\\' && i+1 < len(s) && strings.IndexByte(`*?\`, s[i+1]) >= 0:
			lit.WriteByte(s[i+1])
			i++
		default:
			lit.WriteByte(c)
		}
	}
	flush()
	return toks
}

func hasWildcard(toks []globTok) bool {
	for _, t := range toks {
		if t.star || t.quest {
			return true
		}
	}
	return false
}

func literal(toks []globTok) string {
	var b strings.Builder
	for _, t := range toks {
		b.WriteString(t.lit)
	}
	return b.String()
}

// containsOnly reports whether toks are *literal*, and the literal.
func containsOnly(toks []globTok) (string, bool) {
	if len(toks) < 2 || !toks[0].star || !toks[len(toks)-1].star || hasWildcard(toks[1:len(toks)-1]) {
		return "", false
	}
	return literal(toks[1 : len(toks)-1]), true
}

// globRegexp is the reference matcher: the value as an anchored regexp,
// * any run of characters, ? one character.
func globRegexp(toks []globTok, cased bool) *regexp.Regexp {
	var b strings.Builder
	b.WriteString(`(?s)^`)
	for _, t := range toks {
		switch {
		case t.star:
			b.WriteString(`.*`)
		case t.quest:
			b.WriteString(`.`)
		case cased:
			b.WriteString(regexp.QuoteMeta(t.lit))
		default:
			b.WriteString(regexp.QuoteMeta(strings.ToLower(t.lit)))
		}
	}
	b.WriteString(`$`)
	return regexp.MustCompile(b.String())
}

func FuzzGlob(f *testing.F) {
	recs := stratusRecords()
	quoted := regexp.MustCompile(`'[^'\n]*[*?][^'\n]*'`)
	for _, data := range ruleFiles() {
		for _, v := range quoted.FindAll(data, -1) {
			text := "x"
			if len(recs) > 0 {
				text = string(recs[len(v)%len(recs)])
				if len(text) > 300 {
					text = text[:300]
				}
			}
			f.Add(string(v[1:len(v)-1]), text)
		}
	}
	for _, s := range [][2]string{
		{"*", ""}, {"?", ""}, {"?", "é"}, {"??", "é"}, {"*??", "é"}, {"a*b*c", "abc"}, {"a*b*c", "acb"},
		{`a\*b`, "a*b"}, {`a\*b`, "axb"}, {`a\\*`, `a\xyz`}, {`a\\\*`, `a\*`}, {`a\b`, `a\b`}, {`\`, `\`},
		{`*\`, `ab\`}, {"ab*ba", "aba"}, {"*a?c*", "xxabcxx"}, {"*?*?*", "é"}, {"ÉT?", "éTé"},
		{"*İ*", "i"}, {"*K*", "\u212a"}, {"a?*?b", "a\nb"}, {"**", "x"}, {"*?", "\xff"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, text string) {
		stop := watchdog("FuzzGlob", pattern+"\x00"+text)
		defer func() {
			if d := stop(); d > slowInput {
				t.Errorf("took %v", d)
			}
		}()
		for _, match := range []string{"", "contains", "startswith", "endswith"} {
			for _, cased := range []bool{false, true} {
				p := newPattern(unescapeValue(pattern), match, cased, pattern)
				in := []byte(text)
				if !cased {
					in = appendLower(nil, in)
				}
				got := p.match(in)
				if !utf8.ValidString(pattern) || !utf8.ValidString(text) {
					continue // the reference, regexp, reads text only
				}
				toks := sigmaTokens(pattern)
				switch match {
				case "contains":
					toks = append(append([]globTok{{star: true}}, toks...), globTok{star: true})
				case "startswith":
					toks = append(toks, globTok{star: true})
				case "endswith":
					toks = append([]globTok{{star: true}}, toks...)
				}
				ref := text
				if !cased {
					ref = strings.ToLower(text)
				}
				if want := globRegexp(toks, cased).MatchString(ref); got != want {
					t.Fatalf("%q (%s, cased %v) on %q: got %v, want %v", pattern, match, cased, text, got, want)
				}
			}
		}
	})
}
