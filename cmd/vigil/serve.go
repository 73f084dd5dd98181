package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/vigilsec/vigil/access"
	"github.com/vigilsec/vigil/demo"
	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/ingest"
	"github.com/vigilsec/vigil/inventory"
	"github.com/vigilsec/vigil/meta"
	"github.com/vigilsec/vigil/monitor"
	"github.com/vigilsec/vigil/parse"
	"github.com/vigilsec/vigil/query"
	"github.com/vigilsec/vigil/web"
)

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("serve", stderr)
	var d dataFlags
	d.register(fs)
	listen := fs.String("listen", "127.0.0.1:8080", "address the HTTP API listens on")
	role := fs.String("role", roleAll, "the work of this node of a scale-out (the config's scale section): ingest, process, query or all")
	node := fs.String("node", "", "this node's name among those of a scale-out (default the config's scale.node, else the host name)")
	loadDemo := fs.Bool("demo", false, "load the bundled demo dataset (Stratus Red Team CloudTrail logs) into an empty data directory")
	var oidcf oidcFlags
	oidcf.register(fs)
	var rules stringList
	fs.Var(&rules, "rules", "a Sigma rule file or directory to run, besides the built-in pack and the config's detect.rules (repeatable; reloaded when its files change)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: vigil serve [--data DIR] [--listen ADDR] [--demo] [--rules DIR]... [--role ingest|process|query|all] [--node NAME] [--oidc-issuer URL --oidc-client-id ID --oidc-client-secret-file FILE]\n\nFlags:")
		fs.PrintDefaults()
	}
	if rest, err := parseFlags(fs, args); err != nil {
		return err
	} else if len(rest) > 0 {
		return fmt.Errorf("unexpected arguments %q", rest)
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	oidcLogin, err := oidcf.login(ctx, *listen, logger)
	if err != nil {
		return err
	}
	cfg, err := d.loadConfig()
	if err != nil {
		return err
	}
	switch *role {
	case roleIngest, roleProcess, roleQuery, roleAll:
	default:
		return fmt.Errorf("--role %q: one of ingest, process, query and all", *role)
	}
	if !cfg.Scale.configured() && *role != roleAll {
		return fmt.Errorf("--role %s makes this a node of a scale-out: name its engines in the config's scale section (docs/scale.md)", *role)
	}
	if err := os.MkdirAll(d.dir, 0o700); err != nil {
		return fmt.Errorf("creating data directory: %w", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if cfg.Scale.configured() {
		return serveScaled(ctx, &scaleServer{role: *role, node: *node, listen: *listen, rules: rules, cfg: cfg, data: &d,
			demo: *loadDemo, oidc: oidcLogin, reg: reg, logger: logger, stdout: stdout})
	}
	token, err := d.adminToken()
	if err != nil {
		return err
	}
	if cfg.Store.MemoryLimit == "" {
		cfg.Store.MemoryLimit = "300MB"
	}
	mdb, err := meta.Open(ctx, d.metaLocation(cfg), logger)
	if err != nil {
		return err
	}
	defer mdb.Close()

	// Detection runs on every event the store gets, from the catching up
	// at open on; its rules reload when their files change or on SIGHUP.
	if err := checkRulePaths(append(append([]string(nil), cfg.Detect.Rules...), rules...)); err != nil {
		return err
	}
	engine, errs := loadEngine(ctx, cfg.Detect, rules, mdb)
	logEngine(logger, engine, errs)
	alerts, err := newAlertManager(ctx, mdb, cfg.alerts, logger)
	if err != nil {
		return err
	}
	// Deferred before the data is: the detections of the last events
	// stored at shutdown are still notified.
	dispatcher, channels, stopNotify, err := startNotifier(alerts, mdb, cfg.Notify, alone, logger)
	if err != nil {
		return err
	}
	defer stopNotify()
	// Playbooks run on the alerts opened from here on; those opened
	// before their runner is ready (as the store catches up) wait.
	gate := &playbookGate{}
	notified := alerts.OnNew
	alerts.OnNew = func(as []meta.Alert, evs []*event.Event) {
		notified(as, evs)
		gate.opened(as, evs)
	}
	sink := detectionSinks{&detectionSink{db: mdb, log: logger}, alerts}
	runner := detect.NewRunner(engine, detect.RunnerOptions{Sink: sink, Logger: logger, Registerer: reg})

	// Flow logs are summed into network use as detection sees them.
	flows := newFlowRollup()
	findings := anomalyFindings(cfg.Monitor.rules())
	dd, err := openData(ctx, &d, cfg, logger, reg, func(evs []*event.Event) {
		flows.Observe(evs)
		runner.Process(evs)
		if ds := findings(evs); len(ds) > 0 {
			sink.Detected(ds)
		}
	})
	if err != nil {
		return err
	}
	defer dd.Close()
	if *loadDemo && cfg.Context.unset() {
		if err := cfg.Context.useDemo(d.path("demo-context")); err != nil {
			return err
		}
	}
	enr, err := startEnrichment(ctx, dd, &cfg.Context, logger)
	if err != nil {
		return err
	}
	defer enr.Close()
	go enr.watch(ctx)
	db := dd.db
	// Correlation state is rebuilt from the events of its longest
	// timespan, matched again without alerting again: at start, and when
	// the rules are reloaded.
	warm := func(e *detect.Engine) error {
		span := e.MaxTimespan()
		if span == 0 {
			return nil
		}
		n, err := runner.Warm(func(fn func(*event.Event) error) error {
			return db.Scan(ctx, query.Request{Scope: query.Scope{All: true}, From: time.Now().Add(-span)}, fn)
		})
		if err != nil {
			return fmt.Errorf("rebuilding correlation state: %w", err)
		}
		logger.Info("rebuilt correlation state", "events", n, "timespan", span)
		return nil
	}
	if err := warm(engine); err != nil {
		return err
	}

	if *loadDemo {
		if err := loadDemoData(ctx, dd, cfg, logger); err != nil {
			return err
		}
	}

	go db.LoadWordIndex(ctx)
	if cfg.Retention.configured() {
		go retentionLoop(ctx, dd, cfg, logger)
	}

	// The first administrator is made before the server says where it
	// listens: whoever waits for that finds the password there.
	tokens := access.NewTokens(mdb, access.Options{Logger: logger})
	dir := access.NewDirectory(mdb, access.Options{Logger: logger})
	adminPassword, err := firstAdmin(ctx, dir, &d)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listening: %w", err)
	}
	if err := writeAddr(&d, ln.Addr()); err != nil {
		return err
	}
	defer os.Remove(d.path(addrFile))

	// The sources that send are followed as their events arrive: live,
	// not the demo's or an import's.
	watch := monitor.NewWatch(monitor.WatchOptions{Expected: cfg.Monitor.Sources, Start: time.Now()})
	intake, err := ingest.NewIntake(dd.pipeline, ingest.IntakeOptions{MaxLag: cfg.Ingest.MaxLag, Logger: logger, Registerer: reg,
		Accepted: func(evs []*event.Event) { watch.Observe(evs, time.Now()) }})
	if err != nil {
		return err
	}
	// The intake stops last, after every source, so that what they
	// accepted reaches the store before the data directory closes.
	intakeCtx, stopIntake := context.WithCancel(context.WithoutCancel(ctx))
	intakeDone := make(chan error, 1)
	go func() { intakeDone <- intake.Run(intakeCtx) }()
	defer func() {
		stopIntake()
		if err := <-intakeDone; err != nil {
			logger.Error("storing the last accepted events; the store catches up at the next start", "err", err)
		}
	}()
	defer enr.followOrigins(ctx, finder{dd.db, query.Scope{All: true}}, dd.pipeline.Ledger.Size, intake.Stored)()
	// Probes and the silence watch stop before the intake does: what they
	// find goes through it.
	probesCtx, stopProbes := context.WithCancel(ctx)
	probesDone := make(chan struct{})
	go func() {
		var wg sync.WaitGroup
		wg.Go(func() { startProbes(probesCtx, cfg, dd.db, intake, logger) })
		wg.Go(func() { watchSilence(probesCtx, watch, intake, logger) })
		wg.Go(func() { storeFlows(probesCtx, flows, dd.db, logger) })
		wg.Go(func() { downsample(probesCtx, dd.db, logger) })
		wg.Go(func() {
			(&monitor.Scraper{Targets: cfg.Monitor.Scrape, Store: dd.db, Tenant: cfg.Tenant, Logger: logger}).Run(probesCtx)
		})
		wg.Go(func() {
			(&anomalyAlerter{rules: cfg.Monitor.rules(), store: dd.db, intake: intake, logger: logger}).run(probesCtx)
		})
		wg.Wait()
		close(probesDone)
	}()
	defer func() { stopProbes(); <-probesDone }()

	// Stopped before the intake is: the runs' records go to the ledger
	// through it.
	// Evidence bundles, of exports and of playbooks' export steps.
	evidence := ledgerEvidence(dd, d.path(keyFile))
	playbooks, stopPlaybooks, err := startPlaybooks(ctx, playbookDeps{cfg: cfg, dataDir: &d, mdb: mdb, alerts: alerts, dispatcher: dispatcher,
		channels: channels, accept: intake, store: db, stored: func() ([]uint64, error) { return []uint64{uint64(intake.Stored())}, nil },
		evidence: evidence, lead: alone, logger: logger, reg: reg, demo: *loadDemo}, gate)
	if err != nil {
		return err
	}
	defer stopPlaybooks()

	// Syslog listeners and pull sources; SIGHUP reloads them from the
	// config file (tokens need no reload: each request reads them).
	var srcMetrics swappableGatherer
	srcs, err := startSources(ctx, cfg, intake, mdb, logger)
	if err != nil {
		return err
	}
	srcMetrics.reg.Store(srcs.reg)
	var srcMu sync.Mutex // guards srcs and running against a reload
	running := cfg
	reloadRules := make(chan struct{}, 1)
	loader := &ruleLoader{swap: runner.Swap, extra: rules, mdb: mdb, warm: warm, logger: logger,
		cfg: func() detectConfig {
			srcMu.Lock()
			defer srcMu.Unlock()
			return running.Detect
		}}
	go loader.watch(ctx, 5*time.Second, reloadRules)
	// Correlation windows with an upper bound on a count are decided once
	// they are over, whether or not another event of their group comes:
	// by the events' time while they come (the demo, or a store catching
	// up, replays history), by the clock once they stop for a minute.
	go func() {
		t := time.NewTicker(30 * time.Second)
		defer t.Stop()
		for {
			select {
			case now := <-t.C:
				runner.Advance(now, time.Minute)
			case <-ctx.Done():
				return
			}
		}
	}()
	defer func() {
		srcMu.Lock()
		srcs.stop()
		srcMu.Unlock()
	}()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-hup:
			case <-ctx.Done():
				return
			}
			srcMu.Lock()
			next, err := d.loadConfig()
			if err != nil {
				srcMu.Unlock()
				logger.Error("reload: keeping the running configuration", "err", err)
				continue
			}
			// The old listeners must let go of their ports first, so a
			// few UDP datagrams may be lost in between; TCP senders
			// reconnect.
			srcs.stop()
			ns, err := startSources(ctx, next, intake, mdb, logger)
			if err != nil {
				logger.Error("reload: starting the new sources failed; restarting the old ones", "err", err)
				if ns, err = startSources(ctx, running, intake, mdb, logger); err != nil {
					// Leave a stopped set, so that shutdown has one to stop.
					ns = &sources{cancel: func() {}, reg: prometheus.NewRegistry()}
					logger.Error("reload: restarting the old sources failed", "err", err)
				}
			} else {
				running = next
			}
			srcs = ns
			srcMetrics.reg.Store(srcs.reg)
			srcMu.Unlock()
			logger.Info("reloaded sources")
			select {
			case reloadRules <- struct{}{}:
			default:
			}
		}
	}()

	po := cfg.parseOptions("")
	handler := web.Handler(web.Options{
		Store:      db,
		Ledger:     dd.ledger,
		LedgerKey:  dd.vkey,
		AdminToken: token,
		Tokens:     tokens,
		Access:     dir,
		OIDC:       oidcLogin,
		Audit: func(ctx context.Context, r *access.Record) error {
			return acceptPatiently(ctx, intake, ingest.Batch{Source: "audit", Events: []*event.Event{r.Event()}})
		},
		OnElevate: func(ctx context.Context, e access.Elevation, who string) {
			alerts.Detected([]detect.Detection{breakGlassDetection(e, who)})
		},
		Gatherer:   prometheus.Gatherers{reg, &srcMetrics},
		Logger:     logger,
		Sources:    intake.Sources,
		Detections: mdb,
		Alerts:     alerts,
		Playbooks:  playbooks,
		Exports:    &bundles{write: evidence, dir: d.path(exportsDir)},
		Who: func(ctx context.Context, scope query.Scope, ref string, from, to time.Time) (*inventory.Report, error) {
			return inventory.Who(ctx, finder{db, scope}, enr, ref, from, to)
		},
		Inventory: func(ctx context.Context, scope query.Scope, ref string, at time.Time) ([]inventory.Found, error) {
			return enr.Lookup(scope, ref, at), nil
		},
		Hunter:       db,
		Rules:        &web.RuleBook{DB: mdb, Running: runner.Engine, Reload: loader.reload},
		Searches:     mdb,
		RemoteWrite:  monitor.RemoteWriteHandler(db, metricsTenant(po.Tenant), logger),
		OTLPMetrics:  monitor.OTLPHandler(db, metricsTenant(po.Tenant), logger),
		Series:       flowSums(db),
		MonitorRules: cfg.Monitor.rules(),
		Probes: func(ctx context.Context, scope query.Scope) (any, error) {
			return probeReport(ctx, db, scope, time.Now())
		},
		Coverage: func(ctx context.Context, scope query.Scope, days int) (any, error) {
			return coverage(ctx, db, runner.Engine(), scope, days, time.Now())
		},
		Ingest: ingest.HTTPHandler(intake, ingest.HTTPOptions{
			Parse:     po,
			Logger:    logger,
			Identify:  ingestIdentity(po.Tenant),
			MaxBody:   cfg.Ingest.maxBody,
			MaxLine:   int(cfg.Ingest.maxLine),
			MaxEvents: cfg.Ingest.HTTP.MaxEvents,
		}),
	})
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	logger.Info("vigil serving", "addr", "http://"+ln.Addr().String(), "data", d.dir, "token_file", d.path(tokenFile))
	fmt.Fprintf(stdout, "vigil %s listening on http://%s\n", version, ln.Addr())
	fmt.Fprintf(stdout, "API token: %s (send it as 'Authorization: Bearer …')\n", d.path(tokenFile))
	if adminPassword != "" {
		fmt.Fprintf(stdout, "console: http://%s/ (user admin, password in %s; change it, then delete the file)\n", ln.Addr(), adminPassword)
	}
	fmt.Fprintf(stdout, "try: vigil search --data %s 'eventName:StopLogging'\n", d.dir)

	return serveHTTP(ctx, srv, ln, logger)
}

// serveHTTP serves on ln until ctx ends, then lets the requests in
// flight finish for up to ten seconds.
func serveHTTP(ctx context.Context, srv *http.Server, ln net.Listener, logger *slog.Logger) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	logger.Info("shutting down")
	return srv.Shutdown(shutdown)
}

// ingestIdentity names the tenant and sender of an ingest request from
// its caller: the tenant query parameter, which must be one the caller
// ingests into, else the one tenant it ingests into, else (for a caller
// of every tenant) def.
func ingestIdentity(def string) func(*http.Request) (string, string, error) {
	return func(r *http.Request) (string, string, error) {
		id, ok := web.IdentityFrom(r.Context())
		if !ok {
			return "", "", errors.New("not authenticated")
		}
		want := r.URL.Query().Get("tenant")
		switch {
		case want != "":
			if err := access.CheckTenant(want); err != nil {
				return "", "", err
			}
			if !id.Scope.Includes(want) {
				return "", "", fmt.Errorf("you may not ingest into tenant %q", want)
			}
			return want, id.Name, nil
		case id.Tenant != "":
			return id.Tenant, id.Name, nil
		case id.Scope.All:
			return def, id.Name, nil
		}
		return "", "", errors.New("you ingest into several tenants: name one with tenant=")
	}
}

// metricsTenant is the tenant metrics are written into: as events are.
func metricsTenant(def string) func(*http.Request) (string, error) {
	identify := ingestIdentity(def)
	return func(r *http.Request) (string, error) {
		tenant, _, err := identify(r)
		return tenant, err
	}
}

// loadDemoData imports the demo dataset unless the store holds events.
func loadDemoData(ctx context.Context, dd *data, cfg *config, logger *slog.Logger) error {
	st, err := dd.db.Stats(ctx)
	if err != nil {
		return err
	}
	if st.Events > 0 {
		logger.Info("demo: the store already holds events; not loading the demo dataset", "events", st.Events)
		return nil
	}
	opts := cfg.parseOptions("")
	opts.Received = time.Now()
	opts.Backfill = true
	sum, err := ingest.NewImporter(dd.pipeline, ingest.ImportOptions{Format: parse.Auto, Parse: opts, Logger: logger}).
		ImportFS(ctx, demo.Files(), "demo")
	if err != nil {
		return fmt.Errorf("loading the demo dataset: %w", err)
	}
	logger.Info("demo dataset loaded", "events", sum.Events, "quarantined", sum.Quarantined, "files", sum.Files)
	return nil
}

// retentionLoop applies the retention policy a minute after start and then
// daily.
func retentionLoop(ctx context.Context, dd *data, cfg *config, logger *slog.Logger) {
	wait := time.Minute
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = 24 * time.Hour
		res, err := dd.pipeline.ApplyRetention(ctx, cfg.Retention.policy, time.Now())
		if err != nil {
			logger.Error("retention", "err", err)
			continue
		}
		logger.Info("retention applied", "erased", res.Erased, "segments_removed", len(res.Removal.Removed), "segments_held", len(res.Removal.Held))
	}
}

// breakGlassDetection is the alert of a break-glass elevation: high, so
// that the routes page someone, and across tenants, so that it is the
// CSIRT's to see.
func breakGlassDetection(e access.Elevation, who string) detect.Detection {
	return detect.Detection{
		Rule: &detect.Rule{ID: "vigil-break-glass", Title: "Break-glass access: " + who + " is " + string(e.Role) + " in every tenant",
			Level: "high", Description: fmt.Sprintf("%s broke glass until %s: %s", who, e.Expires.Format(time.RFC3339), e.Reason),
			Tags: []string{"vigil.access"}},
		Group:  map[string]string{"principal": who, "elevation": e.ID},
		Events: []detect.EventRef{{Time: e.Started, ID: e.ID, Action: "break-glass"}},
	}
}
