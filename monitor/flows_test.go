package monitor

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/metric"
	"github.com/vigilsec/vigil/parse"
)

// TestFlowRollup: AWS's documented flow-log examples sum into bytes and
// packets in and out per account and interface, each five minutes:
// traffic within the network and rejected traffic left out.
func TestFlowRollup(t *testing.T) {
	f, err := os.Open("../../shared/testdata/aws-docs-examples/vpc-flow/default_v2_examples.log")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var evs []*event.Event
	_, err = parse.Parse(f, "aws.vpcflow", parse.Options{Tenant: "acme", Received: time.Now()}, func(r parse.Result) error {
		if r.Event != nil {
			evs = append(evs, r.Event)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	clock := time.Now()
	r := FlowRollup{now: func() time.Time { return clock }}
	r.Observe(evs)
	// The newest bucket is still open: records come late.
	if got := r.Flush(false); len(got) != 0 {
		t.Fatalf("flushed %v before it was done", got)
	}
	// Until no record came to it for a minute: the end of the log.
	clock = clock.Add(time.Minute)
	got := map[string]string{}
	for _, s := range r.Flush(false)["acme"] {
		var text []string
		for _, x := range s.Samples {
			text = append(text, x.Time.Format("2006-01-02T15:04")+"="+strconv.FormatFloat(x.Value, 'g', -1, 64))
		}
		got[s.Metric+s.Labels.String()] = strings.Join(text, " ")
	}
	labels := `{account="123456789010", interface="eni-1235b8ca123456789", provider="aws"}`
	// The ICMP ping in from 203.0.113.12 (accepted); the reply out was
	// rejected; the SSH and RDP within 172.31/16 are the network's own.
	want := map[string]string{
		NetworkInBytes + labels:   "2015-05-29T16:30=336",
		NetworkInPackets + labels: "2015-05-29T16:30=4",
	}
	if len(got) != len(want) {
		t.Errorf("series %v", got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %q, want %q", k, got[k], v)
		}
	}
	if len(r.Flush(true)) != 0 {
		t.Error("a second flush returned sums again")
	}
}

// TestSumBuckets: the parts of a flow rollup's bucket stored apart (a
// late delivery, or two process nodes' shares) read as one sum; a
// gauge's samples at one time are left as they are.
func TestSumBuckets(t *testing.T) {
	at := time.Date(2015, 5, 29, 16, 30, 0, 0, time.UTC)
	next := at.Add(flowBucket)
	series := []metric.Series{
		{Metric: NetworkOutBytes, Samples: []metric.Sample{{Time: at, Value: 100}, {Time: at, Value: 236}, {Time: next, Value: 5}}},
		{Metric: NetworkInPackets, Samples: []metric.Sample{{Time: at, Value: 1}, {Time: next, Value: 2}, {Time: next, Value: 3}}},
		{Metric: "system.cpu.utilization", Samples: []metric.Sample{{Time: at, Value: 0.5}, {Time: at, Value: 0.5}}},
	}
	got := SumBuckets(series)
	want := [][]metric.Sample{
		{{Time: at, Value: 336}, {Time: next, Value: 5}},
		{{Time: at, Value: 1}, {Time: next, Value: 5}},
		{{Time: at, Value: 0.5}, {Time: at, Value: 0.5}},
	}
	for i := range want {
		if !slices.Equal(got[i].Samples, want[i]) {
			t.Errorf("%s: %v, want %v", got[i].Metric, got[i].Samples, want[i])
		}
	}
}
