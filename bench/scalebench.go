package main

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/vigilsec/vigil/bus"
	"github.com/vigilsec/vigil/bus/bustest"
	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/ingest"
	"github.com/vigilsec/vigil/ledger"
	"github.com/vigilsec/vigil/store/clickhouse"
	"github.com/vigilsec/vigil/store/clickhouse/chtest"
)

// scalePartitions is the partitions of the bench's topics.
const scalePartitions = 8

// runScale measures the scale-out's process nodes: the corpus is
// published to a three-node JetStream cluster first, then one or two
// process nodes read it into their ledgers, two ClickHouse shards and the
// rules, and the time is taken until every partition of events and of
// observations is read. The runs alternate, each on fresh topics, tables
// and ledgers. Everything runs on this machine, the servers included, so
// the ratio says what a second node adds when it shares the same cores.
func runScale(ctx context.Context, c *config) error {
	if _, err := c.corpus(); err != nil {
		return err
	}
	batches, n, err := scaleBatches(c.corpusDir())
	if err != nil {
		return err
	}
	c.logf("parsed %d events in %d files", n, len(batches))

	h := &benchTB{dir: filepath.Join(c.dir, "scale-servers")}
	defer h.close()
	if err := os.RemoveAll(h.dir); err != nil {
		return err
	}
	shards, cluster, err := h.servers()
	if err != nil {
		return err
	}
	urls := make([]string, len(shards))
	for i, s := range shards {
		urls[i] = s.URL
	}
	rules, err := detect.Builtin()
	if err != nil {
		return err
	}
	engine, err := detect.NewEngine(rules, detect.Options{})
	if err != nil {
		return err
	}
	signer, _, _, err := ledger.LoadOrCreateKey(filepath.Join(h.dir, "ledger.key"), "bench")
	if err != nil {
		return err
	}

	run := 0
	side := func(nodes int) func(int) (measure, error) {
		return func(int) (measure, error) {
			run++
			return scaleRun(ctx, c, scaleSetup{
				run: run, nodes: nodes, batches: batches, events: n, cluster: cluster, shards: urls,
				engine: engine, signer: signer, dir: filepath.Join(h.dir, fmt.Sprint("run", run)),
			})
		}
	}
	runs, err := c.alternate(n, side(2), side(1))
	if err != nil {
		return err
	}
	report(c.out, fmt.Sprintf("%d CloudTrail events through the process nodes (8 partitions; NATS and ClickHouse on the same 2 cores): two nodes against one", n), runs[0], runs[1])
	return nil
}

// scaleBatches parses the corpus, one batch per file in the order of the
// files' times.
func scaleBatches(dir string) ([]ingest.Batch, int, error) {
	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(path, ".json.gz") {
			files = append(files, path)
		}
		return err
	})
	if err != nil {
		return nil, 0, err
	}
	slices.Sort(files) // AWSLogs/ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/…
	var batches []ingest.Batch
	n := 0
	for _, f := range files {
		evs, err := parseFile(f)
		if err != nil {
			return nil, 0, err
		}
		batches = append(batches, ingest.Batch{Source: "bench", ID: filepath.Base(f), Events: evs})
		n += len(evs)
	}
	return batches, n, nil
}

type scaleSetup struct {
	run, nodes int
	batches    []ingest.Batch
	events     int
	cluster    *bustest.Cluster
	shards     []string
	engine     *detect.Engine
	signer     note.Signer
	dir        string
}

// scaleRun publishes the batches, then times nodes process nodes
// reading them.
func scaleRun(ctx context.Context, c *config, s scaleSetup) (measure, error) {
	name := fmt.Sprintf("%d process node", s.nodes)
	if s.nodes > 1 {
		name += "s"
	}
	m := measure{name: name}
	open := func() (*bus.Topic, *bus.Topic, error) {
		nc := s.cluster.Connect()
		evs, err := bus.OpenTopic(ctx, nc, bus.TopicOptions{Name: fmt.Sprint("events", s.run), Partitions: scalePartitions})
		if err != nil {
			return nil, nil, err
		}
		obs, err := bus.OpenTopic(ctx, nc, bus.TopicOptions{Name: fmt.Sprint("observations", s.run), Partitions: scalePartitions})
		return evs, obs, err
	}
	evTopic, obsTopic, err := open()
	if err != nil {
		return m, err
	}
	start := time.Now()
	pub := &ingest.Publisher{Events: evTopic}
	for _, b := range s.batches {
		if err := pub.Accept(ctx, b); err != nil {
			return m, fmt.Errorf("publishing %s: %w", b.ID, err)
		}
	}
	c.logf("run %d: published %d events in %v", s.run, s.events, time.Since(start).Round(time.Millisecond))

	db := fmt.Sprint("bench", s.run)
	ch, err := clickhouse.Open(ctx, clickhouse.Options{Shards: s.shards, Cluster: chtest.Cluster, Database: db})
	if err != nil {
		return m, err
	}
	var detected atomic.Int64
	nctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{}, s.nodes)
	started := 0
	defer func() {
		cancel()
		for range started {
			<-done
		}
	}()
	start, cpu0 := time.Now(), cpuTime()
	for i := range s.nodes {
		evs, obs, err := open()
		if err != nil {
			return m, err
		}
		leases, err := bus.OpenLeases(ctx, s.cluster.Connect(), bus.LeaseOptions{Name: fmt.Sprint("bench", s.run), Node: fmt.Sprint("node", i)})
		if err != nil {
			return m, err
		}
		p, err := ingest.NewProcessor(ingest.ProcessorOptions{
			Events: evs, Observations: obs, Leases: leases, Ledgers: filepath.Join(s.dir, "ledgers"),
			Ledger: ledger.Options{Signer: s.signer, Name: "bench"},
			Store:  ch, Engine: func() *detect.Engine { return s.engine },
			Sink: sinkFunc(func(ds []detect.Detection) { detected.Add(int64(len(ds))) }),
		})
		if err != nil {
			return m, err
		}
		go func() { p.Run(nctx); done <- struct{}{} }()
		started++
	}
	for bustest.Unread(ctx, evTopic, obsTopic) > 0 {
		select {
		case <-ctx.Done():
			return m, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	m.elapsed, m.cpu = time.Since(start), cpuTime()-cpu0
	stored, err := ch.Count(ctx, "")
	if err != nil {
		return m, err
	}
	m.events = stored
	c.logf("run %d: %d detections", s.run, detected.Load())
	chBytes, err := clickhouseBytes(ctx, s.shards, db)
	if err != nil {
		return m, err
	}
	ledgerBytes, err := dirBytes(filepath.Join(s.dir, "ledgers"))
	if err != nil {
		return m, err
	}
	c.logf("run %d: per event, %d bytes in ClickHouse (compressed), %d bytes in the ledgers", s.run, chBytes/max(stored, 1), ledgerBytes/max(stored, 1))
	return m, nil
}

// clickhouseBytes is what the database's tables take on the shards'
// disks, compressed, for the capacity model of docs/scale.md.
func clickhouseBytes(ctx context.Context, shards []string, db string) (int64, error) {
	var total int64
	for _, shard := range shards {
		q := url.Values{"query": {"SELECT sum(data_compressed_bytes) FROM system.parts WHERE active AND database = '" + db + "'"}}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, shard+"/?"+q.Encode(), nil)
		if err != nil {
			return 0, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, fmt.Errorf("sizing %s: %w", shard, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			return 0, fmt.Errorf("sizing %s: %s %s %v", shard, resp.Status, b, err)
		}
		n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("sizing %s: %w", shard, err)
		}
		total += n
	}
	return total, nil
}

// dirBytes is the size of the files under dir.
func dirBytes(dir string) (int64, error) {
	var total int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err == nil {
			total += info.Size()
		}
		return err
	})
	return total, err
}

type sinkFunc func([]detect.Detection)

func (f sinkFunc) Detected(ds []detect.Detection) { f(ds) }

// benchTB stands in for a testing.TB for the test servers: their
// temporary directories live under dir, and a failure is kept to be
// returned.
type benchTB struct {
	dir      string
	n        int
	cleanups []func()
	failed   error
}

func (h *benchTB) Helper()          {}
func (h *benchTB) Cleanup(f func()) { h.cleanups = append(h.cleanups, f) }
func (h *benchTB) TempDir() string {
	h.n++
	d := filepath.Join(h.dir, fmt.Sprint("tmp", h.n))
	if err := os.MkdirAll(d, 0o700); err != nil {
		h.Fatal(err)
	}
	return d
}
func (h *benchTB) Errorf(format string, args ...any) {
	if h.failed == nil {
		h.failed = fmt.Errorf(format, args...)
	}
}
func (h *benchTB) Fatal(args ...any)                 { panic(fmt.Sprint(args...)) }
func (h *benchTB) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }
func (h *benchTB) Skip(args ...any)                  { panic(fmt.Sprint(args...)) }

// servers starts two ClickHouse shards and a three-node JetStream
// cluster, as the tests do.
func (h *benchTB) servers() (shards []*chtest.Shard, cluster *bustest.Cluster, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("starting the servers: %v", r)
		}
	}()
	shards = chtest.Start(h, 2)
	cluster = bustest.Start(h, 3)
	if h.failed != nil {
		return nil, nil, h.failed
	}
	return shards, cluster, nil
}

func (h *benchTB) close() {
	for _, f := range slices.Backward(h.cleanups) {
		f()
	}
	os.RemoveAll(h.dir)
}
