package inventory

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net/mail"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// This file maps accounts and tags to the teams that own them, so that an
// alert names who answers for what it is about, and pages them.

// An Owner is who answers for an asset or an account.
type Owner struct {
	Team string `json:"team,omitempty" yaml:"team"`
	// Contact is the team's on-call: an email address, or a pager's key
	// (a PagerDuty routing key, say).
	Contact     string `json:"contact,omitempty" yaml:"contact"`
	Environment string `json:"environment,omitempty" yaml:"environment"` // prod, staging, dev, …
}

// An OwnerRule gives the owner of an account, or of the assets with a tag.
type OwnerRule struct {
	// Account is an AWS account, GCP project or Azure subscription id,
	// matched without regard to case.
	Account string
	// TagKey and TagValue select the assets whose tag TagKey has the value
	// TagValue, matched exactly, as clouds match tags.
	TagKey, TagValue string
	Owner
}

// Owners maps accounts and tags to owners. It never changes once made, so
// any number of goroutines may look up in it while a reload makes its
// successor; callers swap the two with an atomic.Pointer. A nil *Owners
// knows no owner.
type Owners struct {
	accounts map[string]Owner // by id, its ASCII letters lower-cased
	tags     map[tagPair]rankedOwner
	// keys are the tag keys the rules name, in the order first named: the
	// tags of an asset looked up.
	keys []string
	// teams holds each team's owner, the first rule's that gives it a
	// contact: an owner fact names a team, and the rules say whom to call.
	teams map[string]Owner
	n     int
}

type tagPair struct{ key, value string }

type rankedOwner struct {
	Owner
	rank int // the rule's place: the first listed wins
}

// NewOwners makes an Owners from rules. A rule names an account or a tag,
// not both, and gives a team, contact or environment; a contact is an
// email address or a key without spaces. Two rules for one account or one
// tag and value are an error.
func NewOwners(rules ...OwnerRule) (*Owners, error) {
	return newOwners(rules, func(i int) string { return fmt.Sprintf("owner rule %d", i+1) })
}

func newOwners(rules []OwnerRule, where func(i int) string) (*Owners, error) {
	o := &Owners{accounts: map[string]Owner{}, tags: map[tagPair]rankedOwner{}, teams: map[string]Owner{}}
	firstAccount := map[string]int{}
	firstTag := map[tagPair]int{}
	for i, r := range rules {
		r.Account = strings.TrimSpace(r.Account)
		r.Team, r.Contact, r.Environment = strings.TrimSpace(r.Team), strings.TrimSpace(r.Contact), strings.TrimSpace(r.Environment)
		switch {
		case r.Account == "" && r.TagKey == "":
			return nil, fmt.Errorf("%s: names no account, project, subscription or tag", where(i))
		case r.Account != "" && r.TagKey != "":
			return nil, fmt.Errorf("%s: names both an account and a tag: make two rules", where(i))
		case r.Owner == Owner{}:
			return nil, fmt.Errorf("%s: gives no team, contact or environment", where(i))
		}
		if err := checkContact(r.Contact); err != nil {
			return nil, fmt.Errorf("%s: %w", where(i), err)
		}
		if r.Account != "" {
			id := asciiLower(r.Account)
			if j, dup := firstAccount[id]; dup {
				return nil, fmt.Errorf("%s: account %s has a rule already, %s", where(i), r.Account, where(j))
			}
			firstAccount[id] = i
			o.accounts[id] = r.Owner
		} else {
			p := tagPair{r.TagKey, r.TagValue}
			if j, dup := firstTag[p]; dup {
				return nil, fmt.Errorf("%s: tag %s=%s has a rule already, %s", where(i), r.TagKey, r.TagValue, where(j))
			}
			firstTag[p] = i
			o.tags[p] = rankedOwner{r.Owner, i}
			if !slices.Contains(o.keys, r.TagKey) {
				o.keys = append(o.keys, r.TagKey)
			}
		}
		if _, ok := o.teams[r.Team]; r.Team != "" && r.Contact != "" && !ok {
			o.teams[r.Team] = Owner{Team: r.Team, Contact: r.Contact}
		}
	}
	o.n = len(rules)
	return o, nil
}

// checkContact checks a contact is an email address or a key.
func checkContact(c string) error {
	switch {
	case c == "":
		return nil
	case strings.Contains(c, "@"):
		if a, err := mail.ParseAddress(c); err != nil || a.Name != "" {
			return fmt.Errorf("contact %q is not an email address", c)
		}
	case strings.ContainsFunc(c, func(r rune) bool { return r <= ' ' }):
		return fmt.Errorf("contact %q is neither an email address nor a pager key", c)
	}
	return nil
}

// ownersFile is an owners file: its rules, each naming one of account,
// project, subscription, tag, or tag_key and tag_value.
type ownersFile struct {
	Rules []struct {
		Account      string `yaml:"account"`
		Project      string `yaml:"project"`
		Subscription string `yaml:"subscription"`
		Tag          string `yaml:"tag"`
		TagKey       string `yaml:"tag_key"`
		TagValue     string `yaml:"tag_value"`
		Owner        `yaml:",inline"`
	} `yaml:"rules"`
}

// maxOwnersFile bounds an owners file: it is configuration, written by
// hand.
const maxOwnersFile = 16 << 20

// LoadOwners reads owners from YAML, naming the file name in errors:
//
//	rules:
//	  - account: "111111111111"        # or project: …, or subscription: …
//	    team: payments
//	    contact: payments-oncall@example.com
//	    environment: prod
//	  - tag: team=security             # key=value, split at the first '='
//	    team: security
//	    contact: R0UT1NGK3Y            # a pager key
//	  - tag_key: "a=b"                 # a key with '=' in it
//	    tag_value: c
//	    environment: dev
//
// Unknown keys are errors, so that a misspelt one is not silently
// ignored; errors name the line.
func LoadOwners(r io.Reader, name string) (*Owners, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxOwnersFile+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(data) > maxOwnersFile {
		return nil, fmt.Errorf("%s: larger than %d bytes", name, maxOwnersFile)
	}
	var f ownersFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	// The rules' lines, for the errors of NewOwners.
	var doc struct {
		Rules []yaml.Node `yaml:"rules"`
	}
	yaml.Unmarshal(data, &doc) // it decoded above: this cannot fail
	line := func(i int) int {
		if i < len(doc.Rules) {
			return doc.Rules[i].Line
		}
		return 0
	}
	rules := make([]OwnerRule, 0, len(f.Rules))
	for i, fr := range f.Rules {
		r := OwnerRule{Owner: fr.Owner, TagKey: fr.TagKey, TagValue: fr.TagValue}
		n := 0
		for _, id := range []string{fr.Account, fr.Project, fr.Subscription} {
			if id != "" {
				r.Account, n = id, n+1
			}
		}
		if fr.Tag != "" {
			k, v, ok := strings.Cut(fr.Tag, "=")
			if !ok || k == "" {
				return nil, fmt.Errorf("%s:%d: tag %q is not key=value", name, line(i), fr.Tag)
			}
			r.TagKey, r.TagValue, n = k, v, n+1
		}
		if fr.TagKey != "" {
			n++
		} else if fr.TagValue != "" {
			return nil, fmt.Errorf("%s:%d: tag_value without tag_key", name, line(i))
		}
		if n > 1 {
			return nil, fmt.Errorf("%s:%d: a rule names one of account, project, subscription, tag", name, line(i))
		}
		rules = append(rules, r)
	}
	return newOwners(rules, func(i int) string { return fmt.Sprintf("%s:%d", name, line(i)) })
}

// Len returns the number of rules.
func (o *Owners) Len() int {
	if o == nil {
		return 0
	}
	return o.n
}

// Of returns the owner of what is in an account and has tags (nil for
// none): tags(key) returns the value of the tag key, if there is one.
//
// A tag rule is more specific than an account rule, and wins; of the tag
// rules that match, the first listed. The team and contact come together,
// from the first rule so chosen that gives either; the environment from
// the first that gives one. So one tag can give the team, another the
// environment, and the account what they do not.
//
// Of is called for every event: it allocates nothing, given a tags that
// does not.
func (o *Owners) Of(account string, tags func(key string) (string, bool)) (Owner, bool) {
	if o == nil {
		return Owner{}, false
	}
	t, tok := o.ofTags(tags)
	a, aok := o.ofAccount(account)
	return mergeOwners(t, tok, Owner{}, false, a, aok)
}

func (o *Owners) ofTags(tags func(key string) (string, bool)) (Owner, bool) {
	if tags == nil || len(o.keys) == 0 {
		return Owner{}, false
	}
	// The first listed of the rules that match, for the team and contact,
	// and for the environment.
	team, env := rankedOwner{rank: -1}, rankedOwner{rank: -1}
	for _, k := range o.keys {
		v, ok := tags(k)
		if !ok {
			continue
		}
		r, ok := o.tags[tagPair{k, v}]
		if !ok {
			continue
		}
		if (r.Team != "" || r.Contact != "") && (team.rank < 0 || r.rank < team.rank) {
			team = r
		}
		if r.Environment != "" && (env.rank < 0 || r.rank < env.rank) {
			env = r
		}
	}
	return Owner{Team: team.Team, Contact: team.Contact, Environment: env.Environment}, team.rank >= 0 || env.rank >= 0
}

func (o *Owners) ofAccount(id string) (Owner, bool) {
	if w, ok := o.accounts[id]; ok || id == "" {
		return w, ok
	}
	// Lower-cased on the stack: Azure subscription ids come in either
	// case. The compiler looks up m[string(b)] without a copy.
	var buf [64]byte
	if len(id) > len(buf) {
		return Owner{}, false
	}
	upper := false
	for i := 0; i < len(id); i++ {
		c := id[i]
		if 'A' <= c && c <= 'Z' {
			c, upper = c+'a'-'A', true
		}
		buf[i] = c
	}
	if !upper {
		return Owner{}, false
	}
	w, ok := o.accounts[string(buf[:len(id)])]
	return w, ok
}

// asciiLower lowers the case of ASCII letters only, byte by byte, as
// ofAccount does.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// mergeOwners merges owners from the most specific to the least: the team
// and contact of the first giving either, the environment of the first
// giving one.
func mergeOwners(a Owner, aok bool, b Owner, bok bool, c Owner, cok bool) (Owner, bool) {
	var out Owner
	found := false
	for _, x := range [...]struct {
		Owner
		ok bool
	}{{a, aok}, {b, bok}, {c, cok}} {
		if !x.ok {
			continue
		}
		found = true
		if out.Team == "" && out.Contact == "" {
			out.Team, out.Contact = x.Team, x.Contact
		}
		if out.Environment == "" {
			out.Environment = x.Environment
		}
	}
	return out, found
}

// OfAsset returns the owner of an asset at t: by the rules for its tags
// then, else by its owner fact (a team, as a CMDB snapshot gives it, whose
// contact is that of the rules naming the team) and environment fact,
// else by the rule for its account; merged as Of merges them.
func (o *Owners) OfAsset(inv *Inventory, a Asset, t time.Time) (Owner, bool) {
	ai, ok := inv.lookupAsset(a)
	if !ok {
		if o == nil {
			return Owner{}, false
		}
		return o.ofAccount(a.Account)
	}
	return o.ofAsset(inv, ai, nanos(t), t.IsZero())
}

// ofAsset is OfAsset for the asset inv holds at ai, at at (over all time
// when all is set). It reads the asset's facts where they are, as the
// enrichment of events calls it for their addresses' assets.
func (o *Owners) ofAsset(inv *Inventory, ai int32, at int64, all bool) (Owner, bool) {
	// Of the owner and environment facts, the earliest; of the tags, the
	// latest (tagAt).
	var (
		facts             Owner
		teamFrom, envFrom int64 = math.MaxInt64, math.MaxInt64
		tagged            bool
	)
	for j := inv.assets[ai].first; j != none; j = inv.facts[j].nextOfAsset {
		f := &inv.facts[j]
		if !all && !f.holds(at) {
			continue
		}
		switch attr := inv.strs.str(f.attr); {
		case strings.HasPrefix(attr, "tag:"):
			tagged = true
		case attr == "owner" && f.from < teamFrom:
			facts.Team, teamFrom = inv.strs.str(f.value), f.from
		case attr == "environment" && f.from < envFrom:
			facts.Environment, envFrom = inv.strs.str(f.value), f.from
		}
	}
	if o == nil {
		return facts, facts != Owner{}
	}
	if facts.Team != "" {
		facts.Contact = o.teams[facts.Team].Contact
	}
	var (
		tw  Owner
		tok bool
	)
	if tagged {
		tw, tok = o.ofTags(func(k string) (string, bool) { return inv.tagAt(ai, k, at, all) })
	}
	aw, aok := o.ofAccount(inv.strs.str(inv.assets[ai].account))
	return mergeOwners(tw, tok, facts, facts != Owner{}, aw, aok)
}
