package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/vigilsec/vigil/bus"
	"github.com/vigilsec/vigil/bus/bustest"
	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/ingest"
	"github.com/vigilsec/vigil/ledger"
	"github.com/vigilsec/vigil/query"
	"github.com/vigilsec/vigil/store/clickhouse"
	"github.com/vigilsec/vigil/store/clickhouse/chtest"
)

// redactions are ingest.Redactions in memory, for the partitions of one
// redaction.
type redactions struct {
	mu      sync.Mutex
	r       ingest.Redaction
	applied map[int]int64 // erased, by partition
	// failOnce fails the first record of a partition that erased
	// events, as a metadata database out of reach would.
	failOnce bool
}

func (rs *redactions) Pending(_ context.Context, part int) ([]ingest.Redaction, error) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if _, ok := rs.applied[part]; ok {
		return nil, nil
	}
	return []ingest.Redaction{rs.r}, nil
}

func (rs *redactions) Applied(_ context.Context, id string, part int, erased int64) error {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.failOnce && erased > 0 {
		rs.failOnce = false
		return errors.New("the metadata database is out of reach")
	}
	rs.applied[part] = erased
	return nil
}

func (rs *redactions) Failed(context.Context, string, int, string) error { return nil }

func (rs *redactions) done(parts int) (map[int]int64, bool) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	out := map[int]int64{}
	for p, n := range rs.applied {
		out[p] = n
	}
	return out, len(out) == parts
}

// TestProcessorRedacts: a process node applies a redaction to events
// that were still on the bus when it was filed (the node not started
// yet), not only to those already stored: the partitions read past the
// request before they apply it. The events sent after it is applied
// stay. A record of the redaction applied that fails is made again, with
// what the partition erased.
func TestProcessorRedacts(t *testing.T) {
	shards := chtest.Start(t, 2)
	cluster := bustest.Start(t, 3)
	ctx := t.Context()
	urls := make([]string, len(shards))
	for i, s := range shards {
		urls[i] = s.URL
	}
	ch, err := clickhouse.Open(ctx, clickhouse.Options{Shards: urls, Cluster: chtest.Cluster})
	if err != nil {
		t.Fatal(err)
	}
	const partitions = 2
	nc := cluster.Connect()
	evTopic, err := bus.OpenTopic(ctx, nc, bus.TopicOptions{Name: "events", Partitions: partitions})
	if err != nil {
		t.Fatal(err)
	}
	obsTopic, err := bus.OpenTopic(ctx, nc, bus.TopicOptions{Name: "observations", Partitions: partitions})
	if err != nil {
		t.Fatal(err)
	}
	pub := &ingest.Publisher{Events: evTopic}

	// The Stratus Red Team trails of defense evasion, one of which stops
	// CloudTrail, sent before the redaction of the StopLogging calls is
	// filed.
	files, err := filepath.Glob(filepath.Join("..", "demo", "data", "aws.defense-evasion.*.json"))
	if err != nil {
		t.Fatal(err)
	}
	trails := func(tenant string) []*event.Event {
		var evs []*event.Event
		for _, f := range files {
			evs = append(evs, parseFile(t, f, tenant, time.Now())...)
		}
		return evs
	}
	trail := trails("team-a")
	stops := 0
	for _, ev := range trail {
		if ev.Action == "StopLogging" {
			stops++
		}
	}
	if stops == 0 || stops == len(trail) {
		t.Fatalf("%d StopLogging events of %d: the test needs some and others", stops, len(trail))
	}
	acceptPatiently(t, ctx, pub, ingest.Batch{Source: "test", ID: "before", Events: trail})
	rs := &redactions{r: ingest.Redaction{ID: "r1", Query: "action:StopLogging", Reason: "a secret in the request", Requested: time.Now()},
		applied: map[int]int64{}, failOnce: true}

	dir := t.TempDir()
	signer, verifier, _, err := ledger.LoadOrCreateKey(filepath.Join(dir, "ledger.key"), "vigil")
	if err != nil {
		t.Fatal(err)
	}
	rules, err := detect.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	engine, err := detect.NewEngine(rules, detect.Options{})
	if err != nil {
		t.Fatal(err)
	}
	leases, err := bus.OpenLeases(ctx, cluster.Connect(), bus.LeaseOptions{Name: "vigil", Node: "a", Logger: testLogger(t, "a")})
	if err != nil {
		t.Fatal(err)
	}
	ledgers := filepath.Join(dir, "ledgers")
	p, err := ingest.NewProcessor(ingest.ProcessorOptions{
		Events: evTopic, Observations: obsTopic, Leases: leases, Ledgers: ledgers,
		Ledger: ledger.Options{Signer: signer, Name: "vigil", CheckpointEvery: time.Second},
		Store:  ch, Engine: func() *detect.Engine { return engine }, Sink: &detections{},
		Redactions: rs, RedactEvery: 100 * time.Millisecond,
		Logger: testLogger(t, "a"),
	})
	if err != nil {
		t.Fatal(err)
	}
	pctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); p.Run(pctx) }()
	defer func() { cancel(); <-done }()

	var applied map[int]int64
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		var ok bool
		if applied, ok = rs.done(partitions); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the redaction is applied to partitions %v only after a minute", applied)
		}
	}
	erased := int64(0)
	for _, n := range applied {
		erased += n
	}
	if erased != int64(stops) {
		t.Errorf("the partitions erased %v events, want the %d StopLogging calls", applied, stops)
	}

	// Sent after the redaction was applied: stored, not erased.
	later := trails("team-b")
	acceptPatiently(t, ctx, pub, ingest.Batch{Source: "test", ID: "after", Events: later})
	count := func(tenant, q string) int {
		t.Helper()
		res, err := ch.Search(ctx, query.Request{Query: mustParse(t, q+" | stats count() as n"), Scope: query.Scope{Tenants: []string{tenant}}})
		if err != nil {
			t.Fatal(err)
		}
		n, err := strconv.Atoi(fmt.Sprint(res.Rows[0][0]))
		if err != nil {
			t.Fatalf("a count of %v", res.Rows)
		}
		return n
	}
	for deadline := time.Now().Add(time.Minute); count("team-b", "*") < len(later); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("team-b's events are not stored after a minute")
		}
	}
	for _, tc := range []struct {
		tenant, query string
		want          int
	}{
		{"team-a", "action:StopLogging", 0},
		{"team-a", "*", len(trail) - stops},
		{"team-b", "action:StopLogging", stops},
		{"team-b", "*", len(later)},
	} {
		if got := count(tc.tenant, tc.query); got != tc.want {
			t.Errorf("%s: %s finds %d events, want %d", tc.tenant, tc.query, got, tc.want)
		}
	}
	cancel()
	<-done
	redacted := 0
	for part := range partitions {
		pdir := ingest.PartitionLedger(ledgers, part)
		rep, err := ledger.Verify(ctx, pdir, ledger.VerifyOptions{Verifier: verifier})
		if err != nil || !rep.OK() {
			t.Fatalf("partition %d's ledger: %v, problems %v", part, err, rep.Problems)
		}
		for _, r := range rep.Redacted {
			if r.Reason != rs.r.Reason {
				t.Errorf("partition %d: redacted for %q", part, r.Reason)
			}
			redacted += int(r.Last - r.First + 1)
		}
	}
	if redacted != stops {
		t.Errorf("the ledgers hold %d redacted records, want %d", redacted, stops)
	}
}
