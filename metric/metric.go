// Package metric is the model of the measures vigil keeps beside events:
// series of samples, each series named by a metric and its labels.
// Ingest writes them, the store keeps them and monitor judges them; like
// event, it imports nothing of vigil's.
package metric

import (
	"hash/fnv"
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
	ls.Sort()
	return ls
}

// Sort sorts the labels by name.
func (ls Labels) Sort() {
	slices.SortFunc(ls, func(a, b Label) int { return strings.Compare(a.Name, b.Name) })
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

// Map returns the labels as a map of name to value.
func (ls Labels) Map() map[string]string {
	m := make(map[string]string, len(ls))
	for _, l := range ls {
		m[l.Name] = l.Value
	}
	return m
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

// Between returns the samples in [from, to) of samples sorted by time.
func Between(samples []Sample, from, to time.Time) []Sample {
	lo, _ := slices.BinarySearchFunc(samples, from, func(x Sample, t time.Time) int { return x.Time.Compare(t) })
	hi, _ := slices.BinarySearchFunc(samples, to, func(x Sample, t time.Time) int { return x.Time.Compare(t) })
	return samples[lo:hi]
}

// ID returns the id of a tenant's series: a hash of the tenant, its
// metric and its labels (sorted), the same in every process and store
// that writes it.
func (s *Series) ID(tenant string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(tenant))
	h.Write([]byte{0})
	h.Write([]byte(s.Metric))
	for _, l := range s.Labels {
		h.Write([]byte{0})
		h.Write([]byte(l.Name))
		h.Write([]byte{1})
		h.Write([]byte(l.Value))
	}
	return h.Sum64()
}
