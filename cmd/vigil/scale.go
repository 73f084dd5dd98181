package main

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/vigilsec/vigil/access"
	"github.com/vigilsec/vigil/bus"
	"github.com/vigilsec/vigil/demo"
	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/ingest"
	"github.com/vigilsec/vigil/inventory"
	"github.com/vigilsec/vigil/ledger"
	"github.com/vigilsec/vigil/meta"
	"github.com/vigilsec/vigil/monitor"
	"github.com/vigilsec/vigil/parse"
	"github.com/vigilsec/vigil/playbook"
	"github.com/vigilsec/vigil/query"
	"github.com/vigilsec/vigil/store"
	"github.com/vigilsec/vigil/store/clickhouse"
	"github.com/vigilsec/vigil/web"
)

// scaleConfig is the scale section of the config file: the engines of a
// scale-out deployment (docs/scale.md). Without it, vigil serve runs
// embedded, in one process, on its data directory.
type scaleConfig struct {
	// Node names this node among those that share the bus (default the
	// host name; --node overrides it). Two live nodes must not share one.
	Node string `yaml:"node"`
	// NATS are the URLs of the JetStream cluster's servers.
	NATS []string `yaml:"nats"`
	// Name prefixes the deployment's streams and buckets on the bus
	// (NAME-events, NAME-observations, NAME-leases, NAME-nodes), so that
	// deployments can share one NATS cluster (default vigil).
	Name string `yaml:"name"`
	// Partitions is how many partitions the bus's topics have (default
	// 16): the most process nodes that can share the work. Every node
	// must say the same, and it cannot change once events flowed, since
	// an event's partition is its correlation key's hash modulo it.
	Partitions int `yaml:"partitions"`
	// Replicas is how many NATS servers keep each message (default 3):
	// an event is acknowledged once that many have it.
	Replicas int `yaml:"replicas"`
	// ClickHouse is where events are stored and searched.
	ClickHouse struct {
		// Shards are the HTTP interfaces of the cluster's shards, in
		// the order of its remote_servers.
		Shards []string `yaml:"shards"`
		// Cluster is the cluster's name in remote_servers.
		Cluster  string `yaml:"cluster"`
		Database string `yaml:"database"` // default vigil
	} `yaml:"clickhouse"`
	// Ledgers is the directory of the partitions' ledgers and of the key
	// that signs their checkpoints: a volume every process node mounts,
	// since a partition's ledger moves with the partition (default
	// DATA/ledgers, which suits process nodes on one machine only).
	Ledgers string `yaml:"ledgers"`
}

// configured says the section is there: vigil serve then runs the
// scale-out.
func (s *scaleConfig) configured() bool {
	return len(s.NATS) > 0 || len(s.ClickHouse.Shards) > 0
}

// ledgers is the directory of the partitions' ledgers.
func (s *scaleConfig) ledgers(d *dataFlags) string {
	if s.Ledgers == "" {
		return d.path("ledgers")
	}
	return s.Ledgers
}

// openClickHouse opens the store of the scale-out's events, making its
// tables if they are not there yet, for writer (a node's name; see
// clickhouse.Options.Writer).
func (s *scaleConfig) openClickHouse(ctx context.Context, writer string) (*clickhouse.Store, error) {
	return clickhouse.Open(ctx, clickhouse.Options{Shards: s.ClickHouse.Shards, Cluster: s.ClickHouse.Cluster,
		Database: s.ClickHouse.Database, Client: &http.Client{Timeout: 5 * time.Minute}, Writer: writer})
}

// dial connects to the bus's NATS servers as the client name, and
// reconnects for as long as the connection is open.
func (s *scaleConfig) dial(name string, logger *slog.Logger) (*nats.Conn, error) {
	nc, err := nats.Connect(strings.Join(s.NATS, ","), nats.Name("vigil "+name), nats.MaxReconnects(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				logger.Warn("lost a NATS server; reconnecting", "conn", name, "err", err)
			}
		}))
	if err != nil {
		return nil, fmt.Errorf("connecting to NATS (%s): %w", strings.Join(s.NATS, ", "), err)
	}
	return nc, nil
}

// topic opens one of the deployment's partitioned topics on the bus
// (events, observations), making it if it is not there yet.
func (s *scaleConfig) topic(ctx context.Context, nc *nats.Conn, name string) (*bus.Topic, error) {
	return bus.OpenTopic(ctx, nc, bus.TopicOptions{Name: s.Name + "-" + name, Partitions: s.Partitions, Replicas: s.Replicas})
}

// The roles of vigil serve --role.
const (
	roleIngest  = "ingest"  // takes events in and publishes them to the bus
	roleProcess = "process" // reads partitions: ledgers, detection, storing
	roleQuery   = "query"   // search, hunts, alerts and the console
	roleAll     = "all"
)

// check validates the section, if any, against the rest of the config.
func (s *scaleConfig) check(c *config) error {
	if !s.configured() {
		return nil
	}
	if len(s.NATS) == 0 {
		return &configError{"scale.nats", errors.New("name the NATS servers of the bus")}
	}
	for i, u := range s.NATS {
		if !strings.HasPrefix(u, "nats://") && !strings.HasPrefix(u, "tls://") {
			return &configError{fmt.Sprintf("scale.nats[%d]", i), fmt.Errorf("%q is not a nats:// or tls:// URL", u)}
		}
	}
	if s.Name == "" {
		s.Name = "vigil"
	}
	if strings.Trim(s.Name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != "" {
		return &configError{"scale.name", fmt.Errorf("%q: letters, digits, - and _ only", s.Name)}
	}
	if len(s.ClickHouse.Shards) == 0 {
		return &configError{"scale.clickhouse.shards", errors.New("name the ClickHouse shards' HTTP interfaces")}
	}
	if s.ClickHouse.Cluster == "" {
		return &configError{"scale.clickhouse.cluster", errors.New("name the ClickHouse cluster (its remote_servers entry)")}
	}
	if s.Partitions == 0 {
		s.Partitions = 16
	}
	// A partition is a ledger, whose number is the high bits of an
	// event's seq (ingest.PartitionSeq).
	if s.Partitions < 1 || s.Partitions > 1024 {
		return &configError{"scale.partitions", fmt.Errorf("%d: between 1 and 1024", s.Partitions)}
	}
	if s.Replicas == 0 {
		s.Replicas = 3
	}
	if s.Replicas < 1 || s.Replicas > 5 {
		return &configError{"scale.replicas", fmt.Errorf("%d: JetStream keeps 1 to 5 replicas", s.Replicas)}
	}
	// Every node reads and writes the same alerts, rules and tokens.
	if c.metaURL == "" {
		return &configError{"meta.url", errors.New("a scale-out shares its metadata: name a PostgreSQL database")}
	}
	return nil
}

// The process nodes apply the retention through the ClickHouse store.
var _ ingest.RetainingStore = (*clickhouse.Store)(nil)

// A leader runs fn while this node leads job, a job of which one node
// runs at a time; fn's context ends when it no longer does.
type leader func(ctx context.Context, job string, fn func(context.Context))

// playbookIdle is how long a playbook run goes without a change before
// the leader of a scale-out's playbook jobs takes it as left by a node
// that is gone: far longer than a step's attempts take.
const playbookIdle = 10 * time.Minute

// alone is the leader of a node that runs alone: it always leads.
func alone(ctx context.Context, _ string, fn func(context.Context)) { fn(ctx) }

// serveScaled runs a node of the scale-out in the given role, until ctx
// ends.
func serveScaled(ctx context.Context, s *scaleServer) error {
	cfg, logger := s.cfg, s.logger
	sc := &cfg.Scale
	node := s.node
	if node == "" {
		node = sc.Node
	}
	if node == "" {
		h, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("naming the node: %w (set scale.node)", err)
		}
		node = h
	}
	logger = logger.With("node", node, "role", s.role)
	does := func(role string) bool { return s.role == roleAll || s.role == role }
	if s.demo && cfg.Context.unset() {
		if err := cfg.Context.useDemo(s.data.path("demo-context")); err != nil {
			return err
		}
	}

	mdb, err := meta.Open(ctx, cfg.metaURL, logger)
	if err != nil {
		return err
	}
	defer mdb.Close()
	ch, err := sc.openClickHouse(ctx, node)
	if err != nil {
		return err
	}

	// Events have a connection of their own, and the leases another, so
	// that renewals do not queue behind megabytes of events.
	nc, err := sc.dial(node+" events", logger)
	if err != nil {
		return err
	}
	defer nc.Close()
	lc, err := sc.dial(node+" leases", logger)
	if err != nil {
		return err
	}
	defer lc.Close()
	topic := func(name string) (*bus.Topic, error) { return sc.topic(ctx, nc, name) }
	events, err := topic("events")
	if err != nil {
		return err
	}
	// What the ingest nodes heard from, for the silence watch: one
	// partition, read by one node, which learns the sources' gaps again
	// from the last day's when it takes over.
	heard, err := bus.OpenTopic(ctx, nc, bus.TopicOptions{Name: sc.Name + "-heard", Partitions: 1, Replicas: sc.Replicas, MaxAge: 24 * time.Hour})
	if err != nil {
		return err
	}
	leases, err := bus.OpenLeases(ctx, lc, bus.LeaseOptions{Name: sc.Name, Node: node, Replicas: sc.Replicas, Logger: logger})
	if err != nil {
		return err
	}
	pub := &ingest.Publisher{Events: events, Quarantine: ch.Quarantine, Logger: logger}

	// The rules, which process nodes run and query nodes show and
	// backtest, follow their files and the console's changes on every
	// node.
	rules := append(append([]string(nil), cfg.Detect.Rules...), s.rules...)
	if err := checkRulePaths(rules); err != nil {
		return err
	}
	first, errs := loadEngine(ctx, cfg.Detect, s.rules, mdb)
	logEngine(logger, first, errs)
	var engine atomic.Pointer[detect.Engine]
	engine.Store(first)
	loader := &ruleLoader{swap: engine.Store, extra: s.rules, mdb: mdb, logger: logger,
		cfg: func() detectConfig { return cfg.Detect },
		// A process node rebuilds correlation state from the bus itself
		// when the rules change.
		warm: func(*detect.Engine) error { return nil }}
	go loader.watch(ctx, 5*time.Second, nil)

	alerts, err := newAlertManager(ctx, mdb, cfg.alerts, logger)
	if err != nil {
		return err
	}
	lead := func(ctx context.Context, job string, fn func(context.Context)) { leases.Lead(ctx, job, fn) }
	dispatcher, channels, stopNotify, err := startNotifier(alerts, mdb, cfg.Notify, lead, logger)
	if err != nil {
		return err
	}
	defer stopNotify()

	// The partitions' ledgers: process nodes write them, the others read
	// them and their marks of what is stored.
	ledgers := sc.ledgers(s.data)
	// Their key: process nodes sign checkpoints with it, query nodes
	// bundles of exports.
	var (
		signer note.Signer
		vkey   string
	)
	if does(roleProcess) || does(roleQuery) {
		if err := os.MkdirAll(ledgers, 0o700); err != nil {
			return fmt.Errorf("making the ledgers' directory: %w", err)
		}
		if signer, _, vkey, err = ledger.LoadOrCreateKey(filepath.Join(ledgers, keyFile), ledgerName); err != nil {
			return err
		}
	}
	// Exports are sets of the partitions' bundles, kept on the shared
	// volume for whichever query node a link reaches.
	evidence := partitionEvidence(ch, ledgers, signer, vkey, cfg.Ledger.checkpointEvery+30*time.Second)
	stored := func() ([]uint64, error) {
		marks := make([]uint64, sc.Partitions)
		for p := range marks {
			var err error
			if marks[p], err = ingest.PartitionStored(ledgers, p); err != nil {
				return nil, err
			}
		}
		return marks, nil
	}

	// Process nodes enrich the events of their partitions before their
	// ledgers take them; query nodes say who did what and what an asset
	// is. Each follows the credentials and assets the others store.
	var (
		enr    *enrichment
		follow *storedFollower
	)
	all := finder{ch, query.Scope{All: true}}
	if does(roleProcess) || does(roleQuery) {
		marks, err := stored()
		if err != nil {
			return err
		}
		if enr, err = openEnrichment(ctx, all, &cfg.Context, logger); err != nil {
			return err
		}
		defer enr.Close()
		go enr.watch(ctx)
		follow = enr.followStored(all, marks, stored)
		defer follow.run(ctx, does(roleProcess))()
	}

	// Playbooks run where alerts open (process nodes; query nodes open
	// break-glass alerts) and where people start and approve them; the
	// jobs of one node at a time run where the lease is.
	var playbooks *playbook.Runner
	if does(roleProcess) || does(roleQuery) {
		gate := &playbookGate{}
		notified := alerts.OnNew
		alerts.OnNew = func(as []meta.Alert, evs []*event.Event) {
			notified(as, evs)
			gate.opened(as, evs)
		}
		var stop func()
		playbooks, stop, err = startPlaybooks(ctx, playbookDeps{cfg: cfg, dataDir: s.data, mdb: mdb, alerts: alerts, dispatcher: dispatcher,
			channels: channels, accept: pub, store: ch, stored: stored, evidence: evidence, lead: lead, idle: playbookIdle,
			logger: logger, reg: s.reg, demo: s.demo}, gate)
		if err != nil {
			return err
		}
		defer stop()
	}

	gatherers := prometheus.Gatherers{s.reg}
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if does(roleProcess) {
		obs, err := topic("observations")
		if err != nil {
			return err
		}
		// Each process node applies the retention to the partitions it
		// holds, whose ledgers only it may write.
		var retention *ingest.Retention
		if cfg.Retention.configured() {
			retention = &cfg.Retention.policy
		}
		// Flow logs are summed into network use as the partitions'
		// ledgers take them, each event once; a bucket's share from
		// each node is summed again when read (flowSums).
		flows := newFlowRollup()
		enrich := func(evs []*event.Event) {
			enr.enrich(evs)
			flows.Observe(evs)
		}
		wg.Go(func() { storeFlows(ctx, flows, ch, logger) })
		p, err := ingest.NewProcessor(ingest.ProcessorOptions{
			Events: events, Observations: obs, Leases: leases, Ledgers: ledgers,
			Ledger: ledger.Options{Signer: signer, Name: ledgerName, Witnesses: cfg.Ledger.witnesses(),
				CheckpointEvery: cfg.Ledger.checkpointEvery, SegmentBytes: cfg.Ledger.SegmentBytes, Logger: logger},
			Store: ch, Retention: retention, Redactions: redactions{mdb}, Engine: engine.Load, Enrich: enrich, Findings: anomalyFindings(cfg.Monitor.rules()),
			Sink:   detectionSinks{&detectionSink{db: mdb, log: logger}, alerts},
			Logger: logger,
		})
		if err != nil {
			return err
		}
		wg.Go(func() { p.Run(ctx) })
		// The events stored before this deployment's nodes followed
		// their credentials get their origins once, from one node.
		wg.Go(func() {
			lead(ctx, "origins", func(ctx context.Context) {
				now := time.Now()
				n, err := enr.ids.Backfill(ctx, all, now.Add(-72*time.Hour), now)
				enr.logBackfill(ctx, n, err)
				<-ctx.Done()
			})
		})
		// The monitoring jobs run on one process node at a time: the
		// probes and scrapes (once each, not once a node), the
		// silence watch over what every ingest node heard, the
		// anomaly rules, the samples' downsampling.
		wg.Go(func() {
			lead(ctx, "monitor", func(ctx context.Context) {
				var jobs sync.WaitGroup
				jobs.Go(func() { startProbes(ctx, cfg, ch, pub, logger) })
				jobs.Go(func() {
					(&monitor.Scraper{Targets: cfg.Monitor.Scrape, Store: ch, Tenant: cfg.Tenant, Logger: logger}).Run(ctx)
				})
				jobs.Go(func() { downsample(ctx, ch, logger) })
				jobs.Go(func() {
					(&anomalyAlerter{rules: cfg.Monitor.rules(), store: ch, intake: pub, logger: logger}).run(ctx)
				})
				w := monitor.NewWatch(monitor.WatchOptions{Expected: cfg.Monitor.Sources, Start: time.Now()})
				jobs.Go(func() { watchHeard(ctx, heard, w, logger) })
				jobs.Go(func() { watchSilence(ctx, w, pub, logger) })
				jobs.Wait()
			})
		})
	}
	// What ingest nodes accept, they tell the silence watch of.
	accept := &hearing{Acceptor: pub}
	if does(roleIngest) {
		wg.Go(func() { accept.send(ctx, heard, logger) })
		srcs, err := startSources(ctx, cfg, accept, mdb, logger)
		if err != nil {
			return err
		}
		defer srcs.stop()
		gatherers = append(gatherers, srcs.reg)
		if s.demo {
			if err := publishDemo(ctx, ch, pub, cfg, logger); err != nil {
				return err
			}
		}
	}

	// Every role answers on HTTP: health and metrics at least.
	token, err := s.data.adminToken()
	if err != nil {
		return err
	}
	tokens := access.NewTokens(mdb, access.Options{Logger: logger})
	dir := access.NewDirectory(mdb, access.Options{Logger: logger})
	po := cfg.parseOptions("")
	opts := web.Options{
		AdminToken: token,
		Tokens:     tokens,
		Access:     dir,
		Gatherer:   gatherers,
		Logger:     logger,
		Audit: func(ctx context.Context, r *access.Record) error {
			return acceptPatiently(ctx, pub, ingest.Batch{Source: "audit", Events: []*event.Event{r.Event()}})
		},
	}
	if does(roleIngest) {
		opts.RemoteWrite = monitor.RemoteWriteHandler(ch, metricsTenant(po.Tenant), logger)
		opts.OTLPMetrics = monitor.OTLPHandler(ch, metricsTenant(po.Tenant), logger)
		opts.Ingest = ingest.HTTPHandler(accept, ingest.HTTPOptions{
			Parse:     po,
			Logger:    logger,
			Identify:  ingestIdentity(po.Tenant),
			MaxBody:   cfg.Ingest.maxBody,
			MaxLine:   int(cfg.Ingest.maxLine),
			MaxEvents: cfg.Ingest.HTTP.MaxEvents,
		})
	}
	var adminPassword string
	opts.IngestOnly = !does(roleQuery)
	if does(roleQuery) {
		if adminPassword, err = firstAdmin(ctx, dir, s.data); err != nil {
			return err
		}
		go func() {
			if err := ch.LoadWordIndex(ctx); err != nil && ctx.Err() == nil {
				logger.Warn("loading the word index; the first search for words loads it", "err", err)
			}
		}()
		opts.Store = ch
		opts.Hunter = ch
		opts.Detections = mdb
		opts.Alerts = alerts
		opts.Playbooks = playbooks
		opts.Exports = &bundles{write: evidence, dir: filepath.Join(ledgers, exportsDir)}
		opts.Series = flowSums(ch)
		opts.MonitorRules = cfg.Monitor.rules()
		opts.Probes = func(ctx context.Context, scope query.Scope) (any, error) {
			return probeReport(ctx, ch, scope, time.Now())
		}
		// Who did what and what an asset is, as of what is stored now.
		opts.Who = func(ctx context.Context, scope query.Scope, ref string, from, to time.Time) (*inventory.Report, error) {
			if err := follow.catchUp(ctx); err != nil {
				return nil, err
			}
			return inventory.Who(ctx, finder{ch, scope}, enr, ref, from, to)
		}
		opts.Inventory = func(ctx context.Context, scope query.Scope, ref string, at time.Time) ([]inventory.Found, error) {
			if err := follow.catchUp(ctx); err != nil {
				return nil, err
			}
			return enr.Lookup(scope, ref, at), nil
		}
		opts.Searches = mdb
		opts.OIDC = s.oidc
		opts.Rules = &web.RuleBook{DB: mdb, Running: engine.Load, Reload: loader.reload}
		opts.Coverage = func(ctx context.Context, scope query.Scope, days int) (any, error) {
			return coverage(ctx, ch, engine.Load(), scope, days, time.Now())
		}
		opts.Ledger, opts.LedgerKey = partitionLedgers(ledgers), vkey
		opts.OnElevate = func(ctx context.Context, e access.Elevation, who string) {
			alerts.Detected([]detect.Detection{breakGlassDetection(e, who)})
		}
	}
	ln, err := net.Listen("tcp", s.listen)
	if err != nil {
		return fmt.Errorf("listening: %w", err)
	}
	if err := writeAddr(s.data, ln.Addr()); err != nil {
		ln.Close()
		return err
	}
	defer os.Remove(s.data.path(addrFile))
	srv := &http.Server{Handler: web.Handler(opts), ReadHeaderTimeout: 10 * time.Second}
	logger.Info("vigil serving", "addr", "http://"+ln.Addr().String(), "partitions", sc.Partitions, "shards", len(sc.ClickHouse.Shards))
	fmt.Fprintf(s.stdout, "vigil %s (%s node %s) listening on http://%s\n", version, s.role, node, ln.Addr())
	fmt.Fprintf(s.stdout, "API token: %s (send it as 'Authorization: Bearer …')\n", s.data.path(tokenFile))
	if adminPassword != "" {
		fmt.Fprintf(s.stdout, "console: http://%s/ (user admin, password in %s; change it, then delete the file)\n", ln.Addr(), adminPassword)
	}
	return serveHTTP(ctx, srv, ln, logger)
}

// publishDemo sends the demo dataset through the bus, unless ClickHouse
// holds events of the default tenant. Each batch's id is its content's
// hash, so that the bus keeps one copy when several nodes start with
// --demo at once.
func publishDemo(ctx context.Context, ch *clickhouse.Store, pub *ingest.Publisher, cfg *config, logger *slog.Logger) error {
	opts := cfg.parseOptions("")
	if n, err := ch.Count(ctx, opts.Tenant); err != nil {
		return err
	} else if n > 0 {
		logger.Info("demo: the store already holds events; not loading the demo dataset", "events", n)
		return nil
	}
	opts.Received = time.Now()
	opts.Backfill = true
	sum, err := ingest.NewImporter(publishing{pub, "demo"}, ingest.ImportOptions{Format: parse.Auto, Parse: opts, Logger: logger}).
		ImportFS(ctx, demo.Files(), "demo")
	if err != nil {
		return fmt.Errorf("loading the demo dataset: %w", err)
	}
	logger.Info("demo dataset sent to the bus", "events", sum.Events, "quarantined", sum.Quarantined, "files", sum.Files)
	return nil
}

// scaleImport sends the events of files to a scale-out's bus, as an
// ingest node sends what it takes: the process nodes enrich, store and
// run the rules on them. An event it counts is on the bus, as many times
// over as scale.replicas says, and so not lost.
func scaleImport(ctx context.Context, cfg *config, paths []string, format, tenant string, stderr io.Writer, bar bool) (ingest.Summary, error) {
	sc := &cfg.Scale
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ch, err := sc.openClickHouse(ctx, "") // the quarantine
	if err != nil {
		return ingest.Summary{}, err
	}
	nc, err := sc.dial("import", logger)
	if err != nil {
		return ingest.Summary{}, err
	}
	defer nc.Close()
	events, err := sc.topic(ctx, nc, "events")
	if err != nil {
		return ingest.Summary{}, err
	}
	opts := cfg.parseOptions(tenant)
	opts.Received = time.Now()
	opts.Backfill = true
	pub := &ingest.Publisher{Events: events, Quarantine: ch.Quarantine, Logger: logger}
	return importPaths(ctx, publishing{pub, "import"}, paths, format, opts, stderr, bar)
}

// publishing is an importer's sink that publishes to the bus, each
// batch under an id that is its content's hash: a batch sent again
// within the bus's window of duplicates (a retry, or the same demo from
// several nodes at once) is kept once.
type publishing struct {
	pub    *ingest.Publisher
	source string // what sends: demo, import
}

func (p publishing) Append(ctx context.Context, evs []*event.Event) error {
	h := sha256.New()
	var n []byte
	for _, ev := range evs {
		// The tenant and the format too: the same file imported for
		// two tenants, or read as two formats, is two batches.
		for _, b := range [][]byte{[]byte(ev.Tenant), []byte(ev.Source), ev.Raw} {
			n = binary.AppendUvarint(n[:0], uint64(len(b)))
			h.Write(n)
			h.Write(b)
		}
	}
	id := fmt.Sprintf("%x", h.Sum(nil)[:16])
	return acceptPatiently(ctx, p.pub, ingest.Batch{Source: p.source, ID: id, Events: evs})
}

func (p publishing) Quarantine(ctx context.Context, qs []store.Quarantined) error {
	return p.pub.Quarantine(ctx, qs)
}

// A scaleServer is what vigil serve hands a node of the scale-out.
type scaleServer struct {
	role, node, listen string
	rules              []string
	demo               bool // --demo: the demo dataset, context and playbooks
	cfg                *config
	data               *dataFlags
	oidc               *web.OIDC
	reg                *prometheus.Registry
	logger             *slog.Logger
	stdout             io.Writer
}

// writeAddr tells local commands (vigil search) where the server
// listens. It writes beside and renames, so that no one reads it half
// written.
func writeAddr(d *dataFlags, addr net.Addr) error {
	tmp := d.path(addrFile + ".tmp")
	if err := os.WriteFile(tmp, []byte(addr.String()+"\n"), 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", addrFile, err)
	}
	if err := os.Rename(tmp, d.path(addrFile)); err != nil {
		return fmt.Errorf("writing %s: %w", addrFile, err)
	}
	return nil
}

// partitionLedgers proves the events of a scale-out from their
// partitions' ledgers, which the process nodes write in this directory
// (the shared volume): an event's seq names its partition and its index
// there. The proofs are of the records a partition's latest signed
// checkpoint covers; the process nodes sign one every
// ledger.checkpoint_every.
type partitionLedgers string

func (pl partitionLedgers) view(seq int64) (*ledger.View, int64, error) {
	part, index := ingest.SeqPartition(uint64(seq))
	v, err := ledger.OpenView(ingest.PartitionLedger(string(pl), part))
	return v, index, err
}

func (pl partitionLedgers) Read(seq int64) (ledger.Record, error) {
	v, index, err := pl.view(seq)
	if err != nil {
		return ledger.Record{}, err
	}
	return v.Read(index)
}

func (pl partitionLedgers) CheckpointCovering(ctx context.Context, seq int64) ([]byte, ledger.Checkpoint, error) {
	v, index, err := pl.view(seq)
	if err != nil {
		return nil, ledger.Checkpoint{}, err
	}
	return v.CheckpointCovering(ctx, index)
}

func (pl partitionLedgers) InclusionProof(seq, treeSize int64) (tlog.RecordProof, error) {
	v, index, err := pl.view(seq)
	if err != nil {
		return nil, err
	}
	return v.InclusionProof(index, treeSize)
}
