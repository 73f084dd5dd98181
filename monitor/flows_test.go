package monitor

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/event"
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
	var r FlowRollup
	r.Observe(evs)
	// The newest bucket is still open: records come late.
	if got := r.Flush(false); len(got) != 0 {
		t.Fatalf("flushed %v before it was done", got)
	}
	got := map[string]string{}
	for _, s := range r.Flush(true)["acme"] {
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
