// Package monitor watches the measures whose trends reveal an incident
// that no single log line shows: cost (crypto-mining), resource use (DoS,
// malware), network in and out (exfiltration, DoS) and availability
// (DoS, tampering, failure). It learns each series' usual shape over the
// week, scores how far a new value strays from it, and turns a lasting
// stray, as a rule defines it, into an anomaly for the alert layer.
package monitor

import (
	"slices"
	"strings"
	"time"
)

// A Sample is a series' value at a time.
type Sample struct {
	Time  time.Time
	Value float64
}

// A Label is one of a series' labels.
type Label struct{ Name, Value string }

// Labels name a series: tenant, account, environment, resource, …,
// sorted by name.
type Labels []Label

// NewLabels returns the labels of a map, sorted.
func NewLabels(m map[string]string) Labels {
	ls := make(Labels, 0, len(m))
	for n, v := range m {
		ls = append(ls, Label{n, v})
	}
	slices.SortFunc(ls, func(a, b Label) int { return strings.Compare(a.Name, b.Name) })
	return ls
}

// Get returns the value of a label, or "".
func (ls Labels) Get(name string) string {
	for _, l := range ls {
		if l.Name == name {
			return l.Value
		}
	}
	return ""
}

// String writes the labels as {a="1", b="2"}.
func (ls Labels) String() string {
	var b strings.Builder
	b.WriteByte('{')
	for i, l := range ls {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(l.Name)
		b.WriteString(`="`)
		b.WriteString(l.Value)
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

// A Series is a metric's samples for one set of labels, oldest first.
type Series struct {
	Metric  string
	Labels  Labels
	Samples []Sample
}

// between returns the samples in [from, to).
func between(s []Sample, from, to time.Time) []Sample {
	lo, _ := slices.BinarySearchFunc(s, from, func(x Sample, t time.Time) int { return x.Time.Compare(t) })
	hi, _ := slices.BinarySearchFunc(s, to, func(x Sample, t time.Time) int { return x.Time.Compare(t) })
	return s[lo:hi]
}
