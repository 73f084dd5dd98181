// Package playbook runs response playbooks: rules that act when an alert
// opens — notify, enrich, contain — step by step, each step's inputs
// written from the alert and its event, with dry runs, approvals and a
// record of everything done.
//
// This file reads and checks playbook files, and plans a run: which
// steps would run, with which inputs, in which mode, without calling
// anything.
package playbook

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"text/template"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/meta"
	"github.com/vigilsec/vigil/query"
)

// The modes of a playbook or a step: a dry run only records what it
// would do; approve waits for a person to approve each step; auto acts.
const (
	DryRun  = "dry-run"
	Approve = "approve"
	Auto    = "auto"
)

// A Playbook is one playbook file's playbook.
type Playbook struct {
	Name        string
	Description string
	File        string
	Line        int
	Mode        string // the steps' default
	Trigger     Trigger
	// Conditions are field values the alert's event must have (vigil's
	// normalized fields, vigil.actor, …), all of them.
	Conditions map[string]string
	Steps      []Step
	// Ask are the notification channels asked to approve a waiting step
	// (with a link to it); Expires is how long an approval is waited for
	// (the runner's default when 0).
	Ask     []string
	Expires time.Duration
}

// A Trigger says which alerts start the playbook: those of the rules
// listed, or with one of the tags, at or above a severity. Manual
// playbooks are only started by a person. A playbook with a Search is
// started by each new event the search matches, not by alerts.
type Trigger struct {
	Rules       []string `json:"rules,omitempty"`
	Tags        []string `json:"tags,omitempty"`
	MinSeverity string   `json:"min_severity,omitempty"`
	Manual      bool     `json:"manual,omitempty"`
	Search      string   `json:"search,omitempty"`
	search      *query.Query
}

// A Step is one action of a playbook.
type Step struct {
	Name    string
	Action  string
	Mode    string // the playbook's unless set; approve for a destructive action unless set
	Timeout time.Duration
	Retries int
	OnError string // stop (the default) or continue
	// If, when set, is a template the step runs only when it writes
	// something other than "", "false" or "no": a step that applies to
	// some events only ({{ if .Event.Raw.responseElements }}yes{{ end }}).
	If   *template.Template
	Line int
	// inputs are the action's inputs, as templates.
	inputs map[string]*template.Template
	keys   []string // inputs' names, sorted
}

// An Action is a kind of step: its name, whether it changes anything
// outside vigil (a destructive step is approved by default), the inputs
// it requires, and those that name what it acts on (its targets, which
// the deny and allow lists of principals are checked against).
type Action struct {
	Name        string
	Destructive bool
	Required    []string
	Targets     []string
	// Outputs are the outputs a later step may name ({{ .Steps.NAME.OUTPUT }});
	// an http step's answer adds its JSON object's fields.
	Outputs []string
	// Internal actions act within vigil (a case, a notification, a
	// search): each run does its own. The others are acts outside, done
	// once whichever run asks for them again.
	Internal bool
	// Repeats says that doing the act twice does it twice (a snapshot
	// taken again is another snapshot), so that an attempt that may have
	// acted is not tried again.
	Repeats bool
}

// Actions are the actions steps may name.
var Actions = map[string]Action{
	"notify":                          {Name: "notify", Required: []string{"channel"}, Internal: true, Outputs: []string{"channel"}},
	"case.open":                       {Name: "case.open", Required: []string{"title"}, Internal: true, Outputs: []string{"case", "existing"}},
	"case.note":                       {Name: "case.note", Required: []string{"text"}, Internal: true, Outputs: []string{"case"}},
	"http":                            {Name: "http", Required: []string{"url"}, Repeats: true, Outputs: []string{"status", "body"}},
	"enrich":                          {Name: "enrich", Required: []string{"query"}, Internal: true, Outputs: []string{"count"}},
	"evidence.export":                 {Name: "evidence.export", Required: []string{"query"}, Internal: true, Outputs: []string{"bundle", "events"}},
	"aws.iam.deactivate_access_key":   {Name: "aws.iam.deactivate_access_key", Destructive: true, Required: []string{"user", "access_key_id"}, Targets: []string{"user", "access_key_id"}, Outputs: []string{"access_key_id", "status"}},
	"aws.iam.delete_login_profile":    {Name: "aws.iam.delete_login_profile", Destructive: true, Required: []string{"user"}, Targets: []string{"user"}, Outputs: []string{"user"}},
	"aws.iam.deny_all":                {Name: "aws.iam.deny_all", Destructive: true, Required: []string{"principal"}, Targets: []string{"principal"}, Outputs: []string{"policy"}},
	"aws.iam.revoke_sessions":         {Name: "aws.iam.revoke_sessions", Destructive: true, Required: []string{"role"}, Targets: []string{"role"}, Outputs: []string{"policy"}},
	"aws.ec2.isolate":                 {Name: "aws.ec2.isolate", Destructive: true, Required: []string{"instance_id", "security_group"}, Targets: []string{"instance_id"}, Outputs: []string{"instance_id", "security_group", "previous_groups", "already"}},
	"aws.ec2.snapshot":                {Name: "aws.ec2.snapshot", Required: []string{"instance_id"}, Targets: []string{"instance_id"}, Repeats: true, Outputs: []string{"instance_id", "snapshots"}},
	"aws.tag":                         {Name: "aws.tag", Required: []string{"arn", "key", "value"}, Targets: []string{"arn"}, Outputs: []string{"arn", "key", "value"}},
	"gcp.iam.disable_key":             {Name: "gcp.iam.disable_key", Destructive: true, Required: []string{"key"}, Targets: []string{"key", "service_account"}, Outputs: []string{"key", "state"}},
	"gcp.iam.disable_service_account": {Name: "gcp.iam.disable_service_account", Destructive: true, Required: []string{"service_account"}, Targets: []string{"service_account"}, Outputs: []string{"service_account", "state"}},
	"graph.revoke_sessions":           {Name: "graph.revoke_sessions", Destructive: true, Required: []string{"user"}, Targets: []string{"user"}, Outputs: []string{"user", "revoked"}},
	"graph.disable_user":              {Name: "graph.disable_user", Destructive: true, Required: []string{"user"}, Targets: []string{"user"}, Outputs: []string{"user", "account_enabled"}},
}

// An Error is a playbook that does not load: the file, the line and why.
type Error struct {
	File string
	Line int
	Err  error
}

func (e *Error) Error() string { return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err) }
func (e *Error) Unwrap() error { return e.Err }

// ParseFile reads a playbook file.
func ParseFile(path string) (*Playbook, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// Parse reads a playbook, and checks it: its actions exist and are given
// the inputs they require, its templates parse, its modes are known.
func Parse(file string, data []byte) (*Playbook, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, &Error{File: file, Line: yamlLine(err), Err: err}
	}
	if len(doc.Content) == 0 {
		return nil, &Error{File: file, Line: 1, Err: errors.New("empty playbook")}
	}
	var raw struct {
		Name        string            `yaml:"name"`
		Description string            `yaml:"description"`
		Mode        string            `yaml:"mode"`
		Trigger     yaml.Node         `yaml:"trigger"`
		Conditions  map[string]string `yaml:"conditions"`
		Steps       []yaml.Node       `yaml:"steps"`
		Approval    struct {
			Channels []string `yaml:"channels"`
			Expires  string   `yaml:"expires"`
		} `yaml:"approval"`
	}
	root := doc.Content[0]
	if err := decodeStrict(root, &raw); err != nil {
		return nil, &Error{File: file, Line: root.Line, Err: err}
	}
	p := &Playbook{Name: raw.Name, Description: raw.Description, File: file, Line: root.Line, Mode: raw.Mode, Conditions: raw.Conditions}
	fail := func(line int, format string, args ...any) error {
		return &Error{File: file, Line: line, Err: fmt.Errorf(format, args...)}
	}
	if p.Name == "" {
		return nil, fail(root.Line, "a playbook needs a name")
	}
	if p.Mode == "" {
		p.Mode = Approve
	}
	if !validMode(p.Mode) {
		return nil, fail(root.Line, "mode %q is not dry-run, approve or auto", p.Mode)
	}
	p.Ask = raw.Approval.Channels
	if e := raw.Approval.Expires; e != "" {
		d, err := time.ParseDuration(e)
		if err != nil || d <= 0 {
			return nil, fail(root.Line, "approval: expires %q is not a positive duration", e)
		}
		p.Expires = d
	}
	var trig struct {
		Rules       []string `yaml:"rules"`
		Tags        []string `yaml:"tags"`
		MinSeverity string   `yaml:"min_severity"`
		Manual      bool     `yaml:"manual"`
		Search      string   `yaml:"search"`
	}
	if raw.Trigger.Kind == 0 {
		return nil, fail(root.Line, "a playbook needs a trigger (rules, tags, min_severity, search, or manual: true)")
	}
	if err := decodeStrict(&raw.Trigger, &trig); err != nil {
		return nil, fail(raw.Trigger.Line, "trigger: %v", err)
	}
	p.Trigger = Trigger{Rules: trig.Rules, Tags: trig.Tags, MinSeverity: trig.MinSeverity, Manual: trig.Manual, Search: trig.Search}
	alerts := len(p.Trigger.Rules) > 0 || len(p.Trigger.Tags) > 0 || p.Trigger.MinSeverity != ""
	switch {
	case p.Trigger.Search != "" && (alerts || p.Trigger.Manual):
		return nil, fail(raw.Trigger.Line, "trigger: a search starts the playbook by itself, without rules, tags, min_severity or manual")
	case p.Trigger.Search != "":
		q, err := query.Parse(p.Trigger.Search)
		if err != nil {
			return nil, fail(raw.Trigger.Line, "trigger: search: %v", err)
		}
		if q.Pipes != nil {
			return nil, fail(raw.Trigger.Line, "trigger: search: a trigger's search selects events; it takes no | commands")
		}
		p.Trigger.search = q
	case !p.Trigger.Manual && !alerts:
		return nil, fail(raw.Trigger.Line, "trigger: name rules, tags, a min_severity or a search, or say manual: true")
	}
	if s := p.Trigger.MinSeverity; s != "" && !slices.Contains(severities, s) {
		return nil, fail(raw.Trigger.Line, "trigger: min_severity %q is not one of %s", s, strings.Join(severities, ", "))
	}
	if len(raw.Steps) == 0 {
		return nil, fail(root.Line, "a playbook needs steps")
	}
	names := map[string]bool{}
	for i := range raw.Steps {
		n := &raw.Steps[i]
		var rs struct {
			Name    string            `yaml:"name"`
			Action  string            `yaml:"action"`
			Mode    string            `yaml:"mode"`
			Timeout string            `yaml:"timeout"`
			Retries int               `yaml:"retries"`
			OnError string            `yaml:"on_error"`
			If      string            `yaml:"if"`
			With    map[string]string `yaml:"with"`
		}
		if err := decodeStrict(n, &rs); err != nil {
			return nil, fail(n.Line, "step %d: %v", i+1, err)
		}
		s := Step{Name: rs.Name, Action: rs.Action, Mode: rs.Mode, Retries: rs.Retries, OnError: rs.OnError, Line: n.Line, inputs: map[string]*template.Template{}}
		if s.Name == "" {
			s.Name = fmt.Sprintf("step%d", i+1)
		}
		if names[s.Name] {
			return nil, fail(n.Line, "step %q: a name given twice", s.Name)
		}
		names[s.Name] = true
		a, ok := Actions[s.Action]
		if !ok {
			return nil, fail(n.Line, "step %q: unknown action %q", s.Name, s.Action)
		}
		switch {
		case s.Mode != "" && !validMode(s.Mode):
			return nil, fail(n.Line, "step %q: mode %q is not dry-run, approve or auto", s.Name, s.Mode)
		case p.Mode == DryRun:
			s.Mode = DryRun // a playbook being tried acts on nothing
		case s.Mode == "" && a.Destructive && p.Mode == Auto:
			s.Mode = Approve // never destructive by surprise: a step says auto itself
		case s.Mode == "":
			s.Mode = p.Mode
		}
		if s.OnError == "" {
			s.OnError = "stop"
		}
		if s.OnError != "stop" && s.OnError != "continue" {
			return nil, fail(n.Line, "step %q: on_error %q is not stop or continue", s.Name, s.OnError)
		}
		s.Timeout = 30 * time.Second
		if rs.Timeout != "" {
			d, err := time.ParseDuration(rs.Timeout)
			if err != nil || d <= 0 {
				return nil, fail(n.Line, "step %q: timeout %q is not a positive duration", s.Name, rs.Timeout)
			}
			s.Timeout = d
		}
		if s.Retries < 0 || s.Retries > 10 {
			return nil, fail(n.Line, "step %q: retries must be 0 to 10", s.Name)
		}
		for _, req := range a.Required {
			if _, ok := rs.With[req]; !ok {
				return nil, fail(n.Line, "step %q: action %s needs the input %q", s.Name, s.Action, req)
			}
		}
		for k, v := range rs.With {
			t, err := newTemplate(s.Name + "." + k).Parse(v)
			if err != nil {
				return nil, fail(n.Line, "step %q: input %s: %v", s.Name, k, err)
			}
			s.inputs[k] = t
			s.keys = append(s.keys, k)
		}
		slices.Sort(s.keys)
		if rs.If != "" {
			t, err := newTemplate(s.Name + ".if").Parse(rs.If)
			if err != nil {
				return nil, fail(n.Line, "step %q: if: %v", s.Name, err)
			}
			s.If = t
		}
		p.Steps = append(p.Steps, s)
	}
	return p, nil
}

// newTemplate returns a template for an input or an if: a field the data
// lacks is an error, and a few functions help write them.
func newTemplate(name string) *template.Template {
	return template.New(name).Option("missingkey=error").Funcs(funcs)
}

// funcs are the functions templates may call besides text/template's.
var funcs = template.FuncMap{
	"hasPrefix": strings.HasPrefix,
	"hasSuffix": strings.HasSuffix,
	"contains":  strings.Contains,
	"lower":     strings.ToLower,
	"upper":     strings.ToUpper,
	// quote writes a value as an exact value of vigil's search language:
	// quoted, its quotes, backslashes and wildcards escaped, so that an
	// attacker's user name cannot widen an enrich step's search.
	"quote": func(v any) string { return query.Quote(fmt.Sprint(v)) },
}

var severities = []string{"informational", "low", "medium", "high", "critical"}

func validMode(m string) bool { return m == DryRun || m == Approve || m == Auto }

// decodeStrict decodes n into v, refusing keys v does not have. The
// node is decoded from a copy of its own text, whose line numbers are
// not the file's: they are left out of the errors, which the caller
// places at the node's line.
func decodeStrict(n *yaml.Node, v any) error {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	if err := enc.Encode(n); err != nil {
		return err
	}
	dec := yaml.NewDecoder(&b)
	dec.KnownFields(true)
	err := dec.Decode(v)
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs := make([]string, len(te.Errors))
		for i, m := range te.Errors {
			if _, rest, ok := strings.Cut(m, ": "); ok && strings.HasPrefix(m, "line ") {
				m = rest
			}
			if f, ok := strings.CutPrefix(m, "field "); ok {
				if name, _, ok := strings.Cut(f, " not found in "); ok {
					m = "unknown field " + name
				}
			}
			msgs[i] = m
		}
		return errors.New(strings.Join(msgs, "; "))
	}
	return err
}

func yamlLine(err error) int {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return 0
	}
	var line int
	if _, e := fmt.Sscanf(err.Error(), "yaml: line %d:", &line); e == nil {
		return line
	}
	return 0
}

// Matches reports whether an alert starts the playbook (a manual one is
// started by a person only, one with a search by the events it
// matches), with its event's fields meeting the conditions.
func (p *Playbook) Matches(a *meta.Alert, ev *event.Event) bool {
	t := &p.Trigger
	if t.Manual || t.Search != "" {
		return false
	}
	switch {
	case len(t.Rules) > 0 && !slices.Contains(t.Rules, a.RuleID),
		len(t.Tags) > 0 && !slices.ContainsFunc(a.Tags, func(tag string) bool { return slices.Contains(t.Tags, tag) }),
		t.MinSeverity != "" && slices.Index(severities, a.Severity) < slices.Index(severities, t.MinSeverity):
		return false
	}
	return p.conditionsHold(a, ev)
}

// conditionsHold reports whether the alert's facts, or for a run without
// an alert its event's normalized fields, meet the conditions.
func (p *Playbook) conditionsHold(a *meta.Alert, ev *event.Event) bool {
	for f, want := range p.Conditions {
		var got string
		switch {
		case a != nil:
			got = cmp.Or(a.Group[f], a.Context[f])
		case ev != nil:
			got, _ = detect.Normalized(ev, f)
		}
		if got != want {
			return false
		}
	}
	return true
}

// Data is what a step's input templates see: the alert, its event (its
// normalized fields, and Raw, the original document decoded:
// {{ .Event.Raw.userIdentity.accessKeyId }}), and the outputs of the
// steps before, by step name.
type Data struct {
	Alert *meta.Alert
	Event *EventData
	Steps map[string]map[string]string
	// Facts are the alert's key facts, whatever its kind: actor, src_ip,
	// account, environment and action, "" when unknown. A correlation's
	// alert has no one event, but has its group's facts.
	Facts map[string]string
}

// factNames are the keys of Data.Facts.
var factNames = []string{"actor", "src_ip", "account", "environment", "action"}

// EventData is an event as templates see it.
type EventData struct {
	*event.Event
	Raw map[string]any
}

// NewData returns the data of a run for an alert and its event (nil for
// a run without one).
func NewData(a *meta.Alert, ev *event.Event) (*Data, error) {
	d := &Data{Alert: a, Steps: map[string]map[string]string{}, Facts: map[string]string{}}
	for _, f := range factNames {
		if a != nil {
			d.Facts[f] = cmp.Or(a.Group["vigil."+f], a.Context["vigil."+f])
		}
	}
	if ev != nil {
		d.Event = &EventData{Event: ev}
		if doc := ev.Document(); len(doc) > 0 {
			if err := json.Unmarshal(doc, &d.Event.Raw); err != nil {
				return nil, fmt.Errorf("the event's document: %w", err)
			}
		}
	}
	return d, nil
}

// A PlannedStep is a step as a run would take it: its inputs written.
type PlannedStep struct {
	// Skipped says the step's if does not hold: it would not run.
	Skipped bool              `json:"skipped,omitempty"`
	Step    string            `json:"step"`
	Action  string            `json:"action"`
	Mode    string            `json:"mode"`
	Inputs  map[string]string `json:"inputs"`
}

// Applies reports whether the step runs for data: it has no If, or its
// If writes something other than "", "false" or "no". A field the data
// lacks is an error, as it is in an input.
func (s *Step) Applies(data *Data) (bool, error) {
	if s.If == nil {
		return true, nil
	}
	var b strings.Builder
	if err := s.If.Execute(&b, data); err != nil {
		return false, fmt.Errorf("step %s: if: %w", s.Name, err)
	}
	switch strings.ToLower(strings.TrimSpace(b.String())) {
	case "", "false", "no":
		return false, nil
	}
	return true, nil
}

// Inputs writes a step's inputs from data.
func (s *Step) Inputs(data *Data) (map[string]string, error) {
	out := make(map[string]string, len(s.inputs))
	for _, k := range s.keys {
		var b strings.Builder
		if err := s.inputs[k].Execute(&b, data); err != nil {
			return nil, fmt.Errorf("step %s: input %s: %w", s.Name, k, err)
		}
		out[k] = b.String()
	}
	return out, nil
}

// Plan returns the steps a run would take for data, their inputs
// written, calling nothing. Steps whose inputs name the outputs of steps
// before them are planned with <step.output> in their place.
func (p *Playbook) Plan(data *Data) ([]PlannedStep, error) {
	var out []PlannedStep
	for i := range p.Steps {
		s := &p.Steps[i]
		// Later steps see what the step's outputs will be called.
		data.Steps[s.Name] = placeholders(s)
		ok, err := s.Applies(data)
		if err != nil {
			return out, err
		}
		if !ok {
			out = append(out, PlannedStep{Step: s.Name, Action: s.Action, Mode: s.Mode, Skipped: true})
			continue
		}
		in, err := s.Inputs(data)
		if err != nil {
			return out, err
		}
		out = append(out, PlannedStep{Step: s.Name, Action: s.Action, Mode: s.Mode, Inputs: in})
	}
	return out, nil
}
