package monitor

// Network use from the logs: VPC flow-log records summed into bytes and
// packets out to and in from the internet, per account and network
// interface, every five minutes. Exfiltration and DoS show in them
// without an agent on the instances.

import (
	"bytes"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/metric"
)

// The metrics of flow rollups, labelled provider, account, interface
// and, when enrichment knew it, instance.
const (
	NetworkOutBytes   = "network_out_bytes"
	NetworkInBytes    = "network_in_bytes"
	NetworkOutPackets = "network_out_packets"
	NetworkInPackets  = "network_in_packets"
)

// flowBucket is the span of a rollup's sums.
const flowBucket = 5 * time.Minute

// A FlowRollup sums flow records as they pass. Its methods are safe for
// concurrent use.
type FlowRollup struct {
	// Quiet is how long a bucket goes without a record before Flush
	// returns it although no newer record says it is done (0 means a
	// minute): the end of an imported file, or of a flow log that
	// stopped. A record that comes after is a part of its own
	// (SumBuckets).
	Quiet time.Duration

	mu     sync.Mutex
	sums   map[flowKey]*flowSum
	newest time.Time
	now    func() time.Time // time.Now; tests set it
}

type flowKey struct {
	tenant, account, iface, instance string
	out                              bool
	at                               int64 // the bucket's start, Unix seconds
}

type flowSum struct {
	bytes, packets float64
	touched        time.Time // when a record last came, by the clock
}

// Observe adds the accepted flow records of a batch: those between an
// address of the network (private) and one of the internet, in or out.
// Traffic within the network is not counted.
func (f *FlowRollup) Observe(evs []*event.Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.clock()
	for _, ev := range evs {
		if ev.Source != "aws.vpcflow" || ev.Action != "ACCEPT" {
			continue
		}
		doc := ev.Document()
		out, ok := flowDirection(doc, ev.SrcIP, ev.DstIP)
		if !ok {
			continue
		}
		k := flowKey{tenant: ev.Tenant, account: ev.Cloud.Account, out: out, at: ev.Time.Truncate(flowBucket).Unix()}
		if len(ev.Resources) > 0 {
			k.iface = ev.Resources[0]
		}
		if out {
			k.instance = ev.Context.Src.Asset
		} else {
			k.instance = ev.Context.Dst.Asset
		}
		if f.sums == nil {
			f.sums = map[flowKey]*flowSum{}
		}
		s := f.sums[k]
		if s == nil {
			s = &flowSum{}
			f.sums[k] = s
		}
		s.touched = now
		s.bytes += docNumber(doc, `"bytes":`)
		s.packets += docNumber(doc, `"packets":`)
		if ev.Time.After(f.newest) {
			f.newest = ev.Time
		}
	}
}

// Flush returns the sums of the buckets that are done, by tenant: those
// ten minutes older than the newest record seen (records come late, a
// flow log's delivery takes minutes), those quiet for Quiet, or all of
// them; and forgets them.
func (f *FlowRollup) Flush(all bool) map[string][]metric.Series {
	f.mu.Lock()
	defer f.mu.Unlock()
	cutoff := f.newest.Add(-2 * flowBucket).Unix()
	quiet := f.Quiet
	if quiet <= 0 {
		quiet = time.Minute
	}
	heard := f.clock().Add(-quiet) // a bucket no record came to since is quiet
	index := map[string]int{}      // tenant, metric and labels → its series in out[tenant]
	out := map[string][]metric.Series{}
	for k, s := range f.sums {
		if !all && k.at >= cutoff && s.touched.After(heard) {
			continue
		}
		delete(f.sums, k)
		dir := "in"
		if k.out {
			dir = "out"
		}
		labels := map[string]string{"provider": "aws", "account": k.account, "interface": k.iface}
		if k.instance != "" {
			labels["instance"] = k.instance
		}
		ls := metric.NewLabels(labels)
		for _, m := range [...]struct {
			name  string
			value float64
		}{{"network_" + dir + "_bytes", s.bytes}, {"network_" + dir + "_packets", s.packets}} {
			id := k.tenant + "\x00" + m.name + ls.String()
			i, ok := index[id]
			if !ok {
				i = len(out[k.tenant])
				index[id] = i
				out[k.tenant] = append(out[k.tenant], metric.Series{Metric: m.name, Labels: ls})
			}
			sr := &out[k.tenant][i]
			sr.Samples = append(sr.Samples, metric.Sample{Time: time.Unix(k.at, 0).UTC(), Value: m.value})
		}
	}
	for _, series := range out {
		for i := range series {
			slices.SortFunc(series[i].Samples, func(a, b metric.Sample) int { return a.Time.Compare(b.Time) })
		}
	}
	return out
}

func (f *FlowRollup) clock() time.Time {
	if f.now == nil {
		return time.Now()
	}
	return f.now()
}

// SumBuckets adds up the samples a flow rollup's series has at one time.
// A bucket is stored as several samples, each a part of its sums, when
// records come after its sums were stored (a late delivery), or when
// several process nodes of a scale-out each saw some of its records.
// Other metrics' series are returned as they are: a gauge has one
// sample a time, unless a sender sent it twice.
func SumBuckets(series []metric.Series) []metric.Series {
	for i := range series {
		switch s := &series[i]; s.Metric {
		case NetworkOutBytes, NetworkInBytes, NetworkOutPackets, NetworkInPackets:
			s.Samples = sumAtTimes(s.Samples)
		}
	}
	return series
}

// sumAtTimes adds up the samples at the same time of samples sorted by
// time, in place.
func sumAtTimes(samples []metric.Sample) []metric.Sample {
	out := samples[:0]
	for _, x := range samples {
		if n := len(out); n > 0 && out[n-1].Time.Equal(x.Time) {
			out[n-1].Value += x.Value
			continue
		}
		out = append(out, x)
	}
	return out
}

// flowDirection says whether a record is traffic out to the internet or
// in from it: by its flow-direction field (version 5), else by which of
// its addresses is the network's.
func flowDirection(doc []byte, src, dst netip.Addr) (out, ok bool) {
	switch {
	case bytes.Contains(doc, []byte(`"flow-direction":"egress"`)):
		return true, !internal(dst)
	case bytes.Contains(doc, []byte(`"flow-direction":"ingress"`)):
		return false, !internal(src)
	}
	switch {
	case !src.IsValid() || !dst.IsValid():
		return false, false
	case internal(src) && !internal(dst):
		return true, true
	case !internal(src) && internal(dst):
		return false, true
	}
	return false, false
}

// internal reports whether an address is of a private network, as a
// VPC's are.
func internal(a netip.Addr) bool {
	return a.IsPrivate() || a.IsLoopback() || a.IsLinkLocalUnicast()
}

// docNumber reads the number after key in a document vigil's flow-log
// parser wrote (compact JSON: "bytes":4249), or 0.
func docNumber(doc []byte, key string) float64 {
	i := bytes.Index(doc, []byte(key))
	if i < 0 {
		return 0
	}
	rest := doc[i+len(key):]
	n := 0
	for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
		n++
	}
	v, err := strconv.ParseFloat(string(rest[:n]), 64)
	if err != nil {
		return 0
	}
	return v
}
