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
	"regexp"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/bradleyjkemp/sigma-go"
	"github.com/bradleyjkemp/sigma-go/evaluator"
	"github.com/bradleyjkemp/sigma-go/evaluator/modifiers"

	"gopkg.in/yaml.v3"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/ingest"
	"github.com/vigilsec/vigil/parse"
)

// sigmaGoVersion is the peer's version, as go.mod requires it.
const sigmaGoVersion = "v0.6.6"

// runDetect times vigil's detection engine, every rule it loads (the
// SigmaHQ cloud and Linux rules and the built-in pack), on the CloudTrail
// corpus on one goroutine, against github.com/bradleyjkemp/sigma-go
// evaluating the AWS rules among them that it can parse and evaluate, on
// the same events. Each file is parsed (timed too: the parse is what the
// share detection adds to ingest is taken of), then matched by each side
// in turn, alternating which goes first from one run to the next. The
// live heap stays one file's worth, so that neither side's collector
// marks the whole corpus over and over.
func runDetect(ctx context.Context, c *config) error {
	m, err := c.corpus()
	if err != nil {
		return err
	}
	files, err := corpusFiles(filepath.Join(c.corpusDir(), "AWSLogs"))
	if err != nil {
		return err
	}
	e, err := c.vigilRules()
	if err != nil {
		return err
	}
	builtinDir, err := builtinRulesDir()
	if err != nil {
		return err
	}
	p, err := loadPeerRules(c.rules, builtinDir)
	if err != nil {
		return err
	}
	c.logf("sigma-go %s: %d rule documents with logsource product aws; %d evaluated, %d left out:", sigmaGoVersion, p.considered, len(p.rules), len(p.skipped))
	for _, s := range p.skipped {
		c.logf("  %s", s)
	}
	if err := warm(filepath.Join(c.corpusDir(), "AWSLogs")); err != nil {
		return err
	}

	var (
		runs  []detectRun
		check = newCrossCheck(e, p)
	)
	for i := range c.runs {
		var r detectRun
		if i == 0 {
			err = c.profile(func() error {
				var err error
				r, err = c.detectPass(ctx, files, e, p, i, check)
				return err
			})
		} else {
			r, err = c.detectPass(ctx, files, e, p, i, nil)
		}
		if err != nil {
			return err
		}
		for _, ph := range []*phase{&r.vigil, &r.peerDecode, &r.peerMatch, &r.parse} {
			if ph.events != int64(m.Events) {
				return fmt.Errorf("%s saw %d events, want %d", ph.name, ph.events, m.Events)
			}
		}
		c.logf("run %d: vigil %s", i+1, r.vigil)
		c.logf("run %d: peer  %s (decode %.2fs, match %.2fs)", i+1, r.peer(), r.peerDecode.elapsed.Seconds(), r.peerMatch.elapsed.Seconds())
		c.logf("run %d: parse %s", i+1, r.parse)
		runs = append(runs, r)
	}
	check.peer = runs[0].peerCounts
	reportDetect(c.out, m.Events, len(files), e, p, runs)
	check.report(c.out)
	return nil
}

// corpusFiles lists the corpus's files in the order an import reads
// them: by the times in their names, so that detection sees the events
// roughly in event time, as correlation windows expect.
func corpusFiles(dir string) ([]string, error) {
	paths, _, err := ingest.Files([]string{dir})
	return paths, err
}

// vigilRules loads every rule under -rules and the built-in pack into an
// engine, with no placeholder values: the rules it refuses are logged and
// left out, as the engine does.
func (c *config) vigilRules() (*detect.Engine, error) {
	rules, lerr := detect.LoadPaths(c.rules)
	if len(rules) == 0 {
		return nil, fmt.Errorf("no rules under %s: %v", c.rules, lerr)
	}
	builtin, berr := detect.Builtin()
	if berr != nil {
		return nil, fmt.Errorf("built-in rules: %w", berr)
	}
	e, eerr := detect.NewEngine(append(rules, builtin...), detect.Options{})
	if e == nil {
		return nil, eerr
	}
	refused := len(flattenErrs(lerr)) + len(flattenErrs(eerr))
	onTrail, corrs := 0, 0
	for _, r := range e.Rules() {
		switch {
		case r.IsCorrelation():
			corrs++
		case appliesToCloudTrail(r.Logsource):
			onTrail++
		}
	}
	c.logf("vigil: %d rule documents (%d SigmaHQ under %s, %d built-in); the engine holds %d (%d correlations), %d refused, %d disabled (placeholders without values), %d for logsources no vigil source produces; %d detection rules see CloudTrail events",
		len(rules)+len(builtin), len(rules), c.rules, len(builtin), len(e.Rules()), corrs, refused, len(e.Disabled()), len(e.Unmatched()), onTrail)
	for _, err := range append(flattenErrs(lerr), flattenErrs(eerr)...) {
		c.logf("  refused: %v", err)
	}
	return e, nil
}

// appliesToCloudTrail says whether vigil's engine tries rules of this
// logsource on CloudTrail events: product aws (service cloudtrail or
// none), or no logsource at all.
func appliesToCloudTrail(l detect.Logsource) bool {
	if l.Product == "aws" {
		return l.Service == "" || l.Service == "cloudtrail"
	}
	return l == detect.Logsource{}
}

func flattenErrs(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flattenErrs(e)...)
		}
		return out
	}
	return []error{err}
}

// builtinRulesDir is where the built-in pack's files are in the source
// tree: the peer parses the files themselves.
func builtinRulesDir() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("cannot locate the source tree for detect/builtin")
	}
	dir := filepath.Join(filepath.Dir(file), "..", "detect", "builtin")
	if _, err := os.Stat(dir); err != nil {
		return "", fmt.Errorf("built-in rules for the peer (run the bench from the source tree, without -trimpath): %w", err)
	}
	return dir, nil
}

// peerRules are the rules sigma-go evaluates: every rule document (of
// the files under -rules and of the built-in pack) whose logsource is
// product aws, service cloudtrail or none, that sigma.ParseRule parses
// and that its evaluator can evaluate.
type peerRules struct {
	rules      []*evaluator.RuleEvaluator
	considered int      // aws rule documents
	skipped    []string // why each other one is left out
	fields     int      // nested fields mapped to JSONPath
}

// loadPeerRules parses and screens the peer's rules. sigma-go resolves a
// rule's field name as a top-level key of the event unless a config maps
// it; CloudTrail rules name nested fields (userIdentity.type), so every
// dotted field the rules name is mapped to its JSONPath ($.userIdentity.type),
// as sigma-go's own benchmark does for nested fields.
func loadPeerRules(dirs ...string) (*peerRules, error) {
	p := &peerRules{}
	var parsed []sigma.Rule
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !detect.IsRuleFile(path) {
				return err
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for i, doc := range yamlDocuments(data) {
				name := filepath.Base(path)
				if i > 0 {
					name = fmt.Sprintf("%s (document %d)", name, i+1)
				}
				if !awsLogsource(doc) {
					continue
				}
				p.considered++
				rule, err := sigma.ParseRule(doc)
				if err != nil {
					p.skipped = append(p.skipped, fmt.Sprintf("%s: sigma.ParseRule: %s", name, strings.ReplaceAll(err.Error(), "\n", " ")))
					continue
				}
				if why := peerUnsupported(rule); why != "" {
					p.skipped = append(p.skipped, fmt.Sprintf("%s: %s", name, why))
					continue
				}
				parsed = append(parsed, rule)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	if len(parsed) == 0 {
		return nil, errors.New("sigma-go parsed no AWS rule")
	}
	cfg := sigma.Config{Title: "CloudTrail", FieldMappings: map[string]sigma.FieldMapping{}}
	for _, r := range parsed {
		for _, s := range r.Detection.Searches {
			for _, em := range s.EventMatchers {
				for _, fm := range em {
					if strings.Contains(fm.Field, ".") {
						cfg.FieldMappings[fm.Field] = sigma.FieldMapping{TargetNames: []string{jsonPath(fm.Field)}}
					}
				}
			}
		}
	}
	p.fields = len(cfg.FieldMappings)
	for _, r := range parsed {
		p.rules = append(p.rules, evaluator.ForRule(r, evaluator.WithConfig(cfg)))
	}
	return p, nil
}

var yamlSeparator = regexp.MustCompile(`(?m)^---[ \t]*\r?$`)

// yamlDocuments splits a rule file into its YAML documents: sigma.ParseRule
// reads only the first.
func yamlDocuments(data []byte) [][]byte {
	var docs [][]byte
	for _, d := range yamlSeparator.Split(string(data), -1) {
		if strings.TrimSpace(d) != "" {
			docs = append(docs, []byte(d))
		}
	}
	return docs
}

// awsLogsource says whether a rule document's logsource is product aws,
// service cloudtrail or none: the rules for CloudTrail events.
func awsLogsource(doc []byte) bool {
	var r struct {
		Logsource struct{ Product, Service string }
	}
	if err := yaml.Unmarshal(doc, &r); err != nil {
		return false
	}
	l := r.Logsource
	return l.Product == "aws" && (l.Service == "" || l.Service == "cloudtrail")
}

// peerUnsupported says why sigma-go's evaluator cannot evaluate a rule:
// what its evaluation would fail on for every event (keywords, unknown
// modifiers, values that are not scalars, placeholders without an
// expander), or an aggregation, which needs a count function the caller
// supplies; or a field only vigil has (vigil.*, the normalized event).
// Empty when it can.
func peerUnsupported(r sigma.Rule) string {
	if len(r.Detection.Conditions) == 0 || len(r.Detection.Searches) == 0 {
		return "no detection"
	}
	for _, cond := range r.Detection.Conditions {
		if cond.Aggregation != nil {
			return "aggregation (sigma-go needs a count implementation from its caller)"
		}
	}
	names := make([]string, 0, len(r.Detection.Searches))
	for name := range r.Detection.Searches {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		s := r.Detection.Searches[name]
		if len(s.Keywords) > 0 {
			return fmt.Sprintf("search %s: keywords unsupported", name)
		}
		for _, em := range s.EventMatchers {
			for _, fm := range em {
				if strings.HasPrefix(fm.Field, "vigil.") {
					return fmt.Sprintf("field %s: a normalized field of vigil's", fm.Field)
				}
				mods := fm.Modifiers
				if len(mods) > 0 && mods[len(mods)-1] == "all" {
					mods = mods[:len(mods)-1]
				}
				if _, err := modifiers.GetComparator(fm.Field, modifiers.Comparators, mods...); err != nil {
					return fmt.Sprintf("field %s: %v", fm.Field, err)
				}
				for _, v := range fm.Values {
					switch v := v.(type) {
					case string:
						if strings.HasPrefix(v, "%") && strings.HasSuffix(v, "%") {
							return fmt.Sprintf("field %s: placeholder %s (no values)", fm.Field, v)
						}
					case int, float32, float64, bool:
					default:
						return fmt.Sprintf("field %s: value %v (%T) is not a scalar", fm.Field, v, v)
					}
				}
			}
		}
	}
	return ""
}

var jsonPathName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// jsonPath is the JSONPath of a dotted field name.
func jsonPath(field string) string {
	var b strings.Builder
	b.WriteString("$")
	for _, part := range strings.Split(field, ".") {
		if jsonPathName.MatchString(part) {
			b.WriteString("." + part)
		} else {
			fmt.Fprintf(&b, "[%q]", part)
		}
	}
	return b.String()
}

// A phase is one side's share of a run, summed over the files.
type phase struct {
	name       string
	elapsed    time.Duration
	cpu        time.Duration // user+system CPU of the whole process
	allocs     uint64
	events     int64
	detections int64
}

func (p phase) rate() float64 { return float64(p.events) / p.elapsed.Seconds() }

func (p phase) String() string {
	return fmt.Sprintf("%7.2fs %9.0f events/s  cpu %6.2fs  %6.1f allocs/event  %d detections",
		p.elapsed.Seconds(), p.rate(), p.cpu.Seconds(), float64(p.allocs)/float64(p.events), p.detections)
}

func (p *phase) add(q phase) {
	p.elapsed += q.elapsed
	p.cpu += q.cpu
	p.allocs += q.allocs
	p.events += q.events
	p.detections += q.detections
}

// timed runs fn as part of p: after a collection, so that the garbage of
// what ran before is not collected on p's time, and measuring the wall
// and CPU time and the allocations of fn alone. In a CPU profile, fn's
// samples carry the label side=<p's name> (go tool pprof -tagfocus
// side=vigil).
func timed(p *phase, fn func()) {
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	a0 := ms.Mallocs
	start, cpu0 := time.Now(), cpuTime()
	pprof.Do(context.Background(), pprof.Labels("side", p.name), func(context.Context) { fn() })
	p.elapsed += time.Since(start)
	p.cpu += cpuTime() - cpu0
	runtime.ReadMemStats(&ms)
	p.allocs += ms.Mallocs - a0
}

// A detectRun is one pass over the corpus: each file parsed, then matched
// by vigil and by the peer.
type detectRun struct {
	parse, vigil          phase
	peerDecode, peerMatch phase
	peerCounts            []int64 // matches by peer rule
	peerErrors            []int64 // evaluation errors by peer rule
}

// peer is the peer's whole time: decoding each event, then matching.
func (r detectRun) peer() phase {
	p := r.peerDecode
	p.add(r.peerMatch)
	p.events = r.peerMatch.events
	p.name = "peer"
	return p
}

const (
	vigilDetectName = "vigil detect.Detector"
	peerDetectName  = "sigma-go " + sigmaGoVersion
)

// detectPass parses each file and has both sides match its events, vigil
// first in even runs and the peer first in odd ones. With a crossCheck,
// it also counts vigil's matches by rule, untimed.
func (c *config) detectPass(ctx context.Context, files []string, e *detect.Engine, p *peerRules, run int, check *crossCheck) (detectRun, error) {
	r := detectRun{
		parse:      phase{name: "parse"},
		vigil:      phase{name: "vigil"},
		peerDecode: phase{name: "peer decode"},
		peerMatch:  phase{name: "peer match"},
		peerCounts: make([]int64, len(p.rules)),
		peerErrors: make([]int64, len(p.rules)),
	}
	d := e.NewDetector()
	for _, path := range files {
		if err := ctx.Err(); err != nil {
			return r, err
		}
		var (
			evs  []*event.Event
			perr error
		)
		timed(&r.parse, func() { evs, perr = parseFile(path) })
		if perr != nil {
			return r, perr
		}
		r.parse.events += int64(len(evs))

		vigilSide := func() {
			var n int64
			timed(&r.vigil, func() {
				for _, ev := range evs {
					n += int64(len(d.Process(ev)))
				}
			})
			r.vigil.events += int64(len(evs))
			r.vigil.detections += n
		}
		var derr error
		peerSide := func() {
			docs := make([]map[string]any, len(evs))
			timed(&r.peerDecode, func() {
				for i, ev := range evs {
					if err := json.Unmarshal(ev.Document(), &docs[i]); err != nil && derr == nil {
						derr = fmt.Errorf("%s: decoding an event for the peer: %w", path, err)
					}
				}
			})
			r.peerDecode.events += int64(len(evs))
			var n int64
			timed(&r.peerMatch, func() {
				for _, doc := range docs {
					for k, rule := range p.rules {
						res, err := rule.Matches(ctx, doc)
						if err != nil {
							r.peerErrors[k]++
							continue
						}
						if res.Match {
							r.peerCounts[k]++
							n++
						}
					}
				}
			})
			r.peerMatch.events += int64(len(evs))
			r.peerMatch.detections += n
		}
		if run%2 == 0 {
			vigilSide()
			peerSide()
		} else {
			peerSide()
			vigilSide()
		}
		if derr != nil {
			return r, derr
		}
		if check != nil {
			if err := check.count(evs); err != nil {
				return r, fmt.Errorf("%s: %w", path, err)
			}
		}
	}
	if d.Errors > 0 {
		return r, fmt.Errorf("vigil could not read the documents of %d events", d.Errors)
	}
	return r, nil
}

// parseFile parses one corpus file the way the import does (format
// detection, full normalization), keeping its events.
func parseFile(path string) ([]*event.Event, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var evs []*event.Event
	_, err = parse.Parse(f, parse.Auto, parse.Options{Tenant: "bench", Origin: path, Received: received, Backfill: true}, func(r parse.Result) error {
		if r.Err != nil {
			return fmt.Errorf("%s:%d: %w", path, r.Line, r.Err)
		}
		evs = append(evs, r.Event)
		return nil
	})
	return evs, err
}

// A crossCheck compares, rule by rule, the matches of the rules both
// sides run: vigil's counted with a Matcher (every detection rule's
// matches, those only correlated included), untimed, in the first run.
type crossCheck struct {
	m     *detect.Matcher
	ours  map[*detect.Rule]int64
	both  []*detect.Rule // by peer rule; nil where vigil does not run it
	rules []*evaluator.RuleEvaluator
	peer  []int64
}

func newCrossCheck(e *detect.Engine, p *peerRules) *crossCheck {
	c := &crossCheck{m: e.NewMatcher(), ours: map[*detect.Rule]int64{}, rules: p.rules}
	for _, r := range p.rules {
		var ours *detect.Rule
		if r.ID != "" {
			ours = e.Rule(r.ID)
		}
		c.both = append(c.both, ours)
	}
	return c
}

func (c *crossCheck) count(evs []*event.Event) error {
	for _, ev := range evs {
		if err := c.m.Match(ev, func(r *detect.Rule) { c.ours[r]++ }); err != nil {
			return err
		}
	}
	return nil
}

func (c *crossCheck) report(w io.Writer) {
	var agree, both int
	var buf bytes.Buffer
	for k, ours := range c.both {
		if ours == nil {
			fmt.Fprintf(&buf, "  %s (%s): sigma-go %d matches; vigil does not run it\n", c.rules[k].Title, c.rules[k].ID, c.peer[k])
			continue
		}
		both++
		if c.ours[ours] == c.peer[k] {
			agree++
			continue
		}
		fmt.Fprintf(&buf, "  %s (%s): vigil %d, sigma-go %d\n", c.rules[k].Title, c.rules[k].ID, c.ours[ours], c.peer[k])
	}
	var total int64
	for _, n := range c.peer {
		total += n
	}
	fmt.Fprintf(w, "\ncross-check (first run): of the %d rules both sides run, %d agree on every count of matches (%d matches by sigma-go in all)", both, agree, total)
	if buf.Len() == 0 {
		fmt.Fprintln(w)
		return
	}
	fmt.Fprintf(w, "; where they differ:\n%s", buf.String())
}

// reportDetect prints the runs as a Markdown table, each side's median
// run (by time), and the ratios taken run by run.
func reportDetect(w io.Writer, events, files int, e *detect.Engine, p *peerRules, runs []detectRun) {
	var vigil, peer, peerMatch, parsed []phase
	for _, r := range runs {
		vigil = append(vigil, r.vigil)
		peer = append(peer, r.peer())
		peerMatch = append(peerMatch, r.peerMatch)
		parsed = append(parsed, r.parse)
	}
	onTrail := 0
	for _, r := range e.Rules() {
		if !r.IsCorrelation() && appliesToCloudTrail(r.Logsource) {
			onTrail++
		}
	}
	byTime := func(a, b phase) int { return int(a.elapsed - b.elapsed) }
	fmt.Fprintf(w, "\ndetection over %d CloudTrail events (%d files), %d runs; one goroutine; each file parsed, then matched by each side in turn; median run of each side\n\n", events, files, len(runs))
	fmt.Fprintln(w, "| side | rules | events | seconds | CPU s | events/s | ns/event | allocs/event | detections |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|")
	row := func(name, rules string, ps []phase, detections bool) {
		m := median(ps, byTime)
		det := "-"
		if detections {
			det = fmt.Sprint(m.detections)
		}
		fmt.Fprintf(w, "| %s | %s | %d | %.2f | %.2f | %.0f | %.0f | %.1f | %s |\n", name, rules, m.events, m.elapsed.Seconds(), m.cpu.Seconds(),
			m.rate(), float64(m.elapsed.Nanoseconds())/float64(m.events), float64(m.allocs)/float64(m.events), det)
	}
	row(vigilDetectName, fmt.Sprintf("%d (%d on CloudTrail)", len(e.Rules()), onTrail), vigil, true)
	row(peerDetectName+": json.Unmarshal + Matches", fmt.Sprint(len(p.rules)), peer, true)
	row(peerDetectName+": Matches alone", fmt.Sprint(len(p.rules)), peerMatch, true)
	row("parse.Parse (the import's parse and normalize)", "-", parsed, false)

	var ratios, matchRatios, perCPU, shares, cpuShares []float64
	for i := range runs {
		ratios = append(ratios, vigil[i].rate()/peer[i].rate())
		matchRatios = append(matchRatios, vigil[i].rate()/peerMatch[i].rate())
		perCPU = append(perCPU, float64(vigil[i].events)/vigil[i].cpu.Seconds())
		shares = append(shares, vigil[i].elapsed.Seconds()/parsed[i].elapsed.Seconds())
		cpuShares = append(cpuShares, vigil[i].cpu.Seconds()/parsed[i].cpu.Seconds())
	}
	mv := median(vigil, byTime)
	fmt.Fprintf(w, "\nvigil/peer rate: median %.1f (runs: %s); against the peer's matching alone: median %.1f (runs: %s). Target: at least 10\n",
		median(ratios, cmpFloat), fmtRatios(ratios), median(matchRatios, cmpFloat), fmtRatios(matchRatios))
	fmt.Fprintf(w, "vigil events/s on one goroutine: %.0f (median run); per CPU second of the process: median %.0f (runs: %s). Target: at least 500000 per core\n",
		mv.rate(), median(perCPU, cmpFloat), fmtInts(perCPU))
	fmt.Fprintf(w, "detection time / parse time: median %.1f%% (runs: %s); in CPU time: median %.1f%% (runs: %s). Target: under 10%% of ingest (a proxy: the import also writes the ledger and the store)\n",
		100*median(shares, cmpFloat), fmtPercents1(shares), 100*median(cpuShares, cmpFloat), fmtPercents1(cpuShares))
	fmt.Fprintf(w, "sigma-go runs %d of %d AWS rule documents (%d nested fields mapped to JSONPath)\n", len(p.rules), p.considered, p.fields)
	var errs int64
	for _, r := range runs {
		for _, n := range r.peerErrors {
			errs += n
		}
	}
	if errs > 0 {
		fmt.Fprintf(w, "sigma-go evaluation errors: %d (counted as no match)\n", errs)
	}
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func fmtInts(xs []float64) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprintf("%.0f", x)
	}
	return strings.Join(s, " ")
}

func fmtPercents1(xs []float64) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprintf("%.1f%%", 100*x)
	}
	return strings.Join(s, " ")
}
