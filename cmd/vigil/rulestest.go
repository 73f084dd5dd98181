package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/parse"
)

// A ruleTestFile is a NAME.tests.yml file kept beside rules: sample
// events and what a rule must do with them.
type ruleTestFile struct {
	// Rule is the id of the rule under test; by default the only rule of
	// NAME.yml beside the test file.
	Rule  string     `yaml:"rule"`
	Tests []ruleTest `yaml:"tests"`
}

type ruleTest struct {
	Name string `yaml:"name"`
	// Format of the events (default: recognized).
	Format string `yaml:"format"`
	// Events are log records as the source sends them, matched in order;
	// File is a log file (relative to the test file) instead.
	Events []any  `yaml:"events"`
	File   string `yaml:"file"`
	// Expect is "match" or "no match"; Matches, if set, is how many
	// detections of the rule the events must give.
	Expect  string `yaml:"expect"`
	Matches *int   `yaml:"matches"`
}

func runRulesTest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("rules test", stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, `Usage: vigil rules test PATH...

Runs the tests kept beside rules: for each NAME.tests.yml under the paths,
the rules of its directory are loaded and each test's events are matched
in order. A test file looks like:

  rule: 6f0e1c36-...          # the rule under test (default: the one rule of NAME.yml)
  tests:
    - name: StopLogging is detected
      format: aws.cloudtrail    # default: recognized from the records
      events:
        - {eventSource: cloudtrail.amazonaws.com, eventName: StopLogging, eventTime: "2024-07-31T13:06:24Z", ...}
      expect: match             # or: no match
    - name: a whole detonation log
      file: testdata/stop.json  # relative to the test file
      matches: 1                # exactly this many detections of the rule

Exits non-zero if a test fails or a rule does not load.`)
	}
	paths, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(paths) == 0 {
		fs.Usage()
		return errUsage
	}
	var files []string
	for _, p := range paths {
		err := filepath.WalkDir(p, func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && (strings.HasSuffix(path, ".tests.yml") || strings.HasSuffix(path, ".tests.yaml")) {
				files = append(files, path)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	if len(files) == 0 {
		return fmt.Errorf("no rule tests (*.tests.yml) under %s", strings.Join(paths, ", "))
	}
	passed, failed := 0, 0
	for _, f := range files {
		p, fl := runRuleTestFile(f, stdout)
		passed, failed = passed+p, failed+fl
	}
	fmt.Fprintf(stdout, "%d passed, %d failed\n", passed, failed)
	if failed > 0 {
		return &exitError{1, fmt.Errorf("%d rule tests failed", failed)}
	}
	return nil
}

// runRuleTestFile runs one test file and reports each test.
func runRuleTestFile(path string, out io.Writer) (passed, failed int) {
	fail := func(name string, format string, args ...any) {
		fmt.Fprintf(out, "FAIL %s: %s: %s\n", path, name, fmt.Sprintf(format, args...))
		failed++
	}
	data, err := os.ReadFile(path)
	if err != nil {
		fail("-", "%v", err)
		return
	}
	var tf ruleTestFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&tf); err != nil {
		fail("-", "%v", err)
		return
	}
	dir := filepath.Dir(path)
	rules, err := loadDirRules(dir)
	e, cerr := detect.NewEngine(rules, detect.Options{})
	if err := errors.Join(err, cerr); err != nil {
		fail("-", "the rules of %s do not load: %v", dir, err)
		return
	}
	id := tf.Rule
	if id == "" {
		base := strings.TrimSuffix(strings.TrimSuffix(path, ".tests.yml"), ".tests.yaml")
		var own []*detect.Rule
		for _, r := range rules {
			if r.File == base+".yml" || r.File == base+".yaml" {
				own = append(own, r)
			}
		}
		if len(own) != 1 {
			fail("-", "%d rules in %s.yml: say which is under test (rule: ID)", len(own), base)
			return
		}
		id = own[0].ID
	}
	if e.Rule(id) == nil {
		fail("-", "no rule %s in %s", id, dir)
		return
	}
	for i, t := range tf.Tests {
		name := t.Name
		if name == "" {
			name = fmt.Sprintf("test %d", i+1)
		}
		evs, err := testEvents(dir, t)
		if err != nil {
			fail(name, "%v", err)
			continue
		}
		n := 0
		d := e.NewDetector()
		for _, ev := range evs {
			for _, det := range d.Process(ev) {
				if det.Rule.ID == id {
					n++
				}
			}
		}
		var ok bool
		var want string
		switch {
		case t.Matches != nil:
			ok, want = n == *t.Matches, fmt.Sprintf("%d detections", *t.Matches)
		case t.Expect == "match":
			ok, want = n > 0, "a detection"
		case t.Expect == "no match":
			ok, want = n == 0, "no detection"
		default:
			fail(name, "expect is %q: want match, no match, or matches: N", t.Expect)
			continue
		}
		if !ok {
			fail(name, "%d detections of %s from %d events, want %s", n, id, len(evs), want)
			continue
		}
		fmt.Fprintf(out, "ok   %s: %s\n", path, name)
		passed++
	}
	return
}

// loadDirRules loads the rule files of one directory, not of those below.
func loadDirRules(dir string) ([]*detect.Rule, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var (
		rules []*detect.Rule
		errs  []error
	)
	for _, en := range entries {
		p := filepath.Join(dir, en.Name())
		if en.Type()&fs.ModeType != 0 || !detect.IsRuleFile(p) {
			continue
		}
		rs, err := detect.ParseFile(p)
		rules = append(rules, rs...)
		errs = append(errs, err)
	}
	return rules, errors.Join(errs...)
}

// testEvents parses a test's events as vigil would receive them.
func testEvents(dir string, t ruleTest) ([]*event.Event, error) {
	var r io.Reader
	switch {
	case t.File != "" && len(t.Events) > 0:
		return nil, errors.New("give events or file, not both")
	case t.File != "":
		f := t.File
		if !filepath.IsAbs(f) {
			f = filepath.Join(dir, f)
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		r = bytes.NewReader(b)
	case len(t.Events) > 0:
		var buf bytes.Buffer
		for _, ev := range t.Events {
			b, err := json.Marshal(jsonable(ev))
			if err != nil {
				return nil, fmt.Errorf("event: %w", err)
			}
			buf.Write(b)
			buf.WriteByte('\n')
		}
		r = &buf
	default:
		return nil, errors.New("no events")
	}
	format := parse.Auto
	if t.Format != "" {
		format = t.Format
	}
	var evs []*event.Event
	_, err := parse.Parse(r, format, parse.Options{Tenant: "test", Origin: "test", Received: time.Now()}, func(res parse.Result) error {
		if res.Event == nil {
			return fmt.Errorf("an event was quarantined: %v", res.Err)
		}
		evs = append(evs, res.Event)
		return nil
	})
	for i, ev := range evs {
		ev.Seq = uint64(i)
	}
	return evs, err
}

// jsonable turns what yaml.v3 decodes (maps with any keys) into what
// encoding/json encodes.
func jsonable(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			v[k] = jsonable(x)
		}
		return v
	case map[any]any:
		m := make(map[string]any, len(v))
		for k, x := range v {
			m[fmt.Sprint(k)] = jsonable(x)
		}
		return m
	case []any:
		for i, x := range v {
			v[i] = jsonable(x)
		}
		return v
	}
	return v
}
