package main

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/vigilsec/vigil/demo"
	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/inventory"
	"github.com/vigilsec/vigil/query"
)

// contextConfig is the context section of the config file: what
// enrichment adds to events as they arrive. Identities and the inventory
// the audit logs tell of need no setting; the rest are files the user
// supplies.
type contextConfig struct {
	// GeoIP names MaxMind databases: a City (or Country) one and an ASN
	// one, either optional.
	GeoIP struct {
		City string `yaml:"city"`
		ASN  string `yaml:"asn"`
	} `yaml:"geoip"`
	// Intel are threat-intel lists: files or folders of them (plain
	// text, CSV, STIX 2.1 bundles), read again when they change.
	Intel []intelConfig `yaml:"intel"`
	// IntelReload is how often the intel lists, the owners map and the
	// cloud ranges are checked for changes (default 1m).
	IntelReload string `yaml:"intel_reload"`
	// CloudRanges are cloud providers' published ranges: AWS
	// ip-ranges.json files (one a partition), read again when they
	// change.
	CloudRanges []string `yaml:"cloud_ranges"`
	// Owners is the owners map: a file of account and tag rules naming
	// each one's team and on-call contact, read again when it changes.
	Owners string `yaml:"owners"`
	// Inventory are asset snapshots (CSV, JSON, AWS Config items), files
	// or folders, imported at start beside what the audit logs say, each
	// into a tenant's inventory (the config's tenant by default).
	Inventory []snapshotConfig `yaml:"inventory"`

	intelReload time.Duration
}

// intelConfig is one threat-intel source: a path, or a mapping with the
// list's name and format.
type intelConfig struct {
	Path   string `yaml:"path"`
	Name   string `yaml:"name"`
	Format string `yaml:"format"` // auto (default), text, csv, stix
}

// UnmarshalYAML takes a bare path as well as a mapping.
func (c *intelConfig) UnmarshalYAML(n *yaml.Node) error {
	type plain intelConfig
	return decodePathOr(n, &c.Path, (*plain)(c))
}

// decodePathOr decodes a bare path into path, and a mapping into v.
func decodePathOr(n *yaml.Node, path *string, v any) error {
	if n.Kind == yaml.ScalarNode {
		return n.Decode(path)
	}
	return n.Decode(v)
}

// snapshotConfig is one inventory snapshot source: a path, or a mapping
// with the tenant whose assets it lists.
type snapshotConfig struct {
	Path   string `yaml:"path"`
	Tenant string `yaml:"tenant"`
}

// UnmarshalYAML takes a bare path as well as a mapping.
func (c *snapshotConfig) UnmarshalYAML(n *yaml.Node) error {
	type plain snapshotConfig
	return decodePathOr(n, &c.Path, (*plain)(c))
}

var intelFormats = map[string]inventory.IntelFormat{
	"": inventory.IntelAuto, "auto": inventory.IntelAuto,
	"text": inventory.IntelText, "csv": inventory.IntelCSV, "stix": inventory.IntelSTIX,
}

// check validates what can be without reading the files, which only the
// commands that ingest do.
func (c *contextConfig) check(tenant string) error {
	c.intelReload = time.Minute
	if s := c.IntelReload; s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return &configError{"context.intel_reload", fmt.Errorf("%q is not a positive duration", s)}
		}
		c.intelReload = d
	}
	for i := range c.Inventory {
		s := &c.Inventory[i]
		if s.Path == "" {
			return &configError{"context.inventory", fmt.Errorf("entry %d has no path", i+1)}
		}
		if s.Tenant == "" {
			s.Tenant = tenant
		}
	}
	for i, in := range c.Intel {
		if in.Path == "" {
			return &configError{"context.intel", fmt.Errorf("entry %d has no path", i+1)}
		}
		if _, ok := intelFormats[in.Format]; !ok {
			return &configError{"context.intel", fmt.Errorf("%s: format %q is not auto, text, csv or stix", in.Path, in.Format)}
		}
	}
	return nil
}

// unset reports whether the section names no files.
func (c *contextConfig) unset() bool {
	return c.GeoIP.City == "" && c.GeoIP.ASN == "" && len(c.Intel) == 0 && len(c.CloudRanges) == 0 &&
		c.Owners == "" && len(c.Inventory) == 0
}

// useDemo writes the demo's lookups (a threat-intel list and a cloud's
// ranges) into dir and names them, so that the demo's events are
// enriched as a user's would be.
func (c *contextConfig) useDemo(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("demo context: %w", err)
	}
	for _, name := range []string{"watchlist.txt", "ip-ranges.json"} {
		b, err := fs.ReadFile(demo.Context(), name)
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, name), b, 0o600)
		}
		if err != nil {
			return fmt.Errorf("demo context: %w", err)
		}
	}
	c.Intel = []intelConfig{{Path: filepath.Join(dir, "watchlist.txt"), Name: "demo-watchlist"}}
	c.CloudRanges = []string{filepath.Join(dir, "ip-ranges.json")}
	return nil
}

// intelSources lists the files the intel entries name now: a folder's
// files (not hidden ones), in name order, each with the folder's name
// and format.
func (c *contextConfig) intelSources() ([]inventory.IntelSource, error) {
	var out []inventory.IntelSource
	for _, in := range c.Intel {
		format := intelFormats[in.Format]
		fi, err := os.Stat(in.Path)
		if err != nil {
			return nil, fmt.Errorf("threat intel: %w", err)
		}
		if !fi.IsDir() {
			out = append(out, inventory.IntelSource{Name: in.Name, Path: in.Path, Format: format})
			continue
		}
		files, err := visibleFiles(in.Path)
		if err != nil {
			return nil, fmt.Errorf("threat intel: %w", err)
		}
		for _, f := range files {
			out = append(out, inventory.IntelSource{Name: in.Name, Path: f, Format: format})
		}
	}
	return out, nil
}

// visibleFiles returns the files of a folder that are not hidden, in
// name order, not descending.
func visibleFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if e.Type().IsRegular() && !strings.HasPrefix(e.Name(), ".") {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	return out, nil
}

// stamp is what files are now, to tell when they change: each file's
// path, size and modification time.
func stamp(paths []string) string {
	var b strings.Builder
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			fmt.Fprintf(&b, "%s:missing;", p)
			continue
		}
		fmt.Fprintf(&b, "%s:%d:%d;", p, fi.Size(), fi.ModTime().UnixNano())
	}
	return b.String()
}

// settle is how long a changed file must stay unchanged before it is
// read again: a tool that writes a file in place truncates it and then
// writes it, each step a change, and a file read between the two is
// empty, which an owners map may validly be.
const settle = time.Second

// settling says some of the files changed within the last settle, and
// may still be being written. A modification time in the future (a
// clock set wrong) does not hold the files back.
func settling(paths []string, now time.Time) bool {
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			continue
		}
		if age := now.Sub(fi.ModTime()); age >= 0 && age < settle {
			return true
		}
	}
	return false
}

// enrichment is the enricher of a command that ingests, and what keeps
// its threat intel current.
type enrichment struct {
	*inventory.Enricher
	ids    *inventory.Identities
	cfg    *contextConfig
	logger *slog.Logger
	geo    *inventory.GeoIP

	// What the files of the lookups read again on change were when last
	// read (stamp).
	intelStamp, ownersStamp, rangesStamp string

	// The span of event time enriched, which an import backfills.
	mu          sync.Mutex
	first, last time.Time
}

// startEnrichment makes the pipeline enrich events before the ledger
// takes them. It follows the credentials issued in the last three days
// of event time (the longest a temporary credential lives is a day and a
// half) and every asset the stored audit logs tell of, imports the
// configured snapshots, and loads the configured lookups.
func startEnrichment(ctx context.Context, dd *data, cfg *contextConfig, logger *slog.Logger) (*enrichment, error) {
	e, err := openEnrichment(ctx, finder{dd.db, query.Scope{All: true}}, cfg, logger)
	if err != nil {
		return nil, err
	}
	dd.pipeline.Enrich = e.enrich
	return e, nil
}

// openEnrichment returns the enrichment of a node that reads the store
// st: startEnrichment's, without the pipeline.
func openEnrichment(ctx context.Context, st finder, cfg *contextConfig, logger *slog.Logger) (*enrichment, error) {
	ids := inventory.NewIdentities()
	n, err := ids.Follow(ctx, st, inventory.IssuingQuery, time.Now().Add(-72*time.Hour), time.Time{})
	if err != nil {
		return nil, err
	}
	e, err := newEnrichment(ctx, st, ids, cfg, logger)
	if err != nil {
		return nil, err
	}
	if n > 0 {
		logger.Info("followed the credentials issued lately", "issues", n)
	}
	if err := e.load(); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

// enrich enriches a batch, and notes the span of event time it covers.
func (e *enrichment) enrich(evs []*event.Event) {
	e.Enrich(evs)
	if len(evs) == 0 {
		return
	}
	first, last := evs[0].Time, evs[0].Time
	for _, ev := range evs[1:] {
		if ev.Time.Before(first) {
			first = ev.Time
		}
		if ev.Time.After(last) {
			last = ev.Time
		}
	}
	e.mu.Lock()
	if e.first.IsZero() || first.Before(e.first) {
		e.first = first
	}
	if last.After(e.last) {
		e.last = last
	}
	e.mu.Unlock()
}

// backfillImported gives origins to the events whose credential's issue
// the store got after them, over the span of event time an import
// enriched: its events may use credentials whose issue it read later,
// or an earlier import stored, and the credentials it issued may be
// those of events stored before, up to a day and a half later. The
// import's own events, those with seqs from since on, went through the
// enrichment, which followed the credentials they issued.
func (e *enrichment) backfillImported(ctx context.Context, st finder, since int64) (int, error) {
	e.mu.Lock()
	first, last := e.first, e.last
	e.mu.Unlock()
	if first.IsZero() {
		return 0, nil
	}
	from, to := first.Add(-5*time.Minute), last.Add(inventory.MaxSessionDuration)
	before := fmt.Sprintf("(%s) seq<%d", inventory.IssuingQuery, since)
	if _, err := e.ids.Follow(ctx, st, before, from.Add(-inventory.MaxSessionDuration), to); err != nil {
		return 0, err
	}
	return e.ids.Backfill(ctx, st, from, to)
}

// backfillEvery is how often vigil serve gives origins to the events
// whose credential's issue arrived after them. Tests shorten it.
var backfillEvery = 30 * time.Second

// followOrigins gives origins to the events stored before the issue of
// their credential: at once to those of the last three days, whose
// credentials' issues startEnrichment read, and then every backfillEvery
// to those whose issue arrives late, once the store holds them. size
// says how far the ledger goes, and stored up to where the store holds
// its events, committed. It returns a function that stops it and waits,
// to call before the store closes.
func (e *enrichment) followOrigins(ctx context.Context, st finder, size, stored func() int64) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		now := time.Now()
		n, err := e.ids.Backfill(ctx, st, now.Add(-72*time.Hour), now)
		e.logBackfill(ctx, n, err)
		// A mark is the ledger's size at a time: once the store holds
		// that much, it holds every event enriched a second before (an
		// event reaches the ledger right after its enrichment).
		type mark struct {
			at   time.Time
			size int64
		}
		var marks []mark
		everyTick(ctx, backfillEvery, func() {
			marks = append(marks, mark{time.Now(), size()})
			var before time.Time
			for s := stored(); len(marks) > 0 && marks[0].size <= s; marks = marks[1:] {
				before = marks[0].at.Add(-time.Second)
			}
			if !before.IsZero() {
				n, err := e.ids.BackfillLate(ctx, st, before)
				e.logBackfill(ctx, n, err)
			}
		})
	}()
	return func() { cancel(); <-done }
}

// A storedFollower keeps the enrichment of a node of a scale-out current
// with what every process node stores: it observes the credentials
// issued and the assets made by the events stored since it last looked,
// each partition's new seqs by the marks stored returns.
type storedFollower struct {
	e      *enrichment
	st     finder
	stored func() ([]uint64, error)
	q      *query.Query

	mu    sync.Mutex
	marks []uint64
}

// followStored returns a follower of what is stored from marks on (taken
// before the enrichment first read the store).
func (e *enrichment) followStored(st finder, marks []uint64, stored func() ([]uint64, error)) *storedFollower {
	q, err := query.Parse("(" + inventory.IssuingQuery + ") OR (" + inventory.AssetQuery + ")")
	if err != nil {
		panic(err) // the inventory's own queries
	}
	return &storedFollower{e: e, st: st, stored: stored, q: q, marks: marks}
}

// catchUp observes what was stored since the last call: every
// backfillEvery, and before a query node answers who did what, so that
// it knows what was stored a moment ago.
func (f *storedFollower) catchUp(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	next, err := f.stored()
	if err != nil {
		return err
	}
	if len(next) == len(f.marks) {
		if err := f.observe(ctx, f.marks, next); err != nil {
			return err // read again from the same marks
		}
	}
	f.marks = next
	return nil
}

// run catches up every backfillEvery until ctx ends. On a process node
// (late), it then gives origins to the events it enriched before their
// credential's issue arrived, once the store holds them (it stores what
// it enriched within seconds; storeLag is the margin). It returns a
// function that stops it and waits.
func (f *storedFollower) run(ctx context.Context, late bool) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		everyTick(ctx, backfillEvery, func() {
			if err := f.catchUp(ctx); err != nil && ctx.Err() == nil {
				f.e.logger.Error("following the credentials and assets stored", "err", err)
			}
			if late {
				n, err := f.e.ids.BackfillLate(ctx, f.st, time.Now().Add(-storeLag))
				f.e.logBackfill(ctx, n, err)
			}
		})
	}()
	return func() { cancel(); <-done }
}

// storeLag is how long a process node of a scale-out may take to store
// what it enriched: it stores a partition's events when a batch fills or
// the bus has nothing more for a second. Tests shorten it.
var storeLag = time.Minute

// observe observes the events of the inventory's queries among those
// stored between the marks from and to, in time order.
func (f *storedFollower) observe(ctx context.Context, from, to []uint64) error {
	var ranges [][2]uint64
	for p := range to {
		if from[p] < to[p] {
			ranges = append(ranges, [2]uint64{from[p], to[p] - 1})
		}
	}
	if len(ranges) == 0 {
		return nil
	}
	seqs, err := f.st.db.Seqs(ctx, query.Request{Query: f.q, Scope: f.st.scope, SeqRanges: ranges, Limit: math.MaxInt32})
	if err != nil {
		return err
	}
	var evs []*event.Event
	if err := f.st.db.EventsAt(ctx, seqs, func(ev *event.Event) error {
		evs = append(evs, ev)
		return nil
	}); err != nil {
		return err
	}
	slices.SortStableFunc(evs, func(a, b *event.Event) int { return a.Time.Compare(b.Time) })
	f.e.Observe(evs)
	return nil
}

func (e *enrichment) logBackfill(ctx context.Context, n int, err error) {
	switch {
	case err != nil && ctx.Err() == nil:
		e.logger.Error("giving events the origin of their credential, issued after them", "err", err)
	case n > 0:
		e.logger.Info("gave events the origin of their credential, issued after them", "events", n)
	}
}

// newEnrichment returns an enrichment that holds the inventory of the
// tenants st sees: the assets their stored audit logs tell of, and the
// configured snapshots. It is what vigil serve holds, and what the
// commands that read a data directory build to answer as it would.
func newEnrichment(ctx context.Context, st finder, ids *inventory.Identities, cfg *contextConfig, logger *slog.Logger) (*enrichment, error) {
	e := &enrichment{Enricher: inventory.NewEnricher(ids), ids: ids, cfg: cfg, logger: logger}
	n, err := e.FollowAssets(ctx, st)
	if err != nil {
		return nil, err
	}
	if n > 0 {
		logger.Info("followed the assets the logs tell of", "events", n)
	}
	for _, s := range cfg.Inventory {
		if !st.scope.Includes(s.Tenant) {
			continue
		}
		if err := e.importSnapshots(s); err != nil {
			return nil, fmt.Errorf("context.inventory: %w", err)
		}
	}
	return e, nil
}

// load reads the configured lookups. An error in any is an error at
// start: a user who configured a feed expects it applied.
func (e *enrichment) load() error {
	c := e.cfg
	if c.GeoIP.City != "" || c.GeoIP.ASN != "" {
		g, err := inventory.OpenGeoIP(c.GeoIP.City, c.GeoIP.ASN)
		if err != nil {
			return fmt.Errorf("context.geoip: %w", err)
		}
		e.geo = g
		e.SetGeoIP(g)
	}
	if _, err := e.reloadRanges(false); err != nil {
		return fmt.Errorf("context.cloud_ranges: %w", err)
	}
	if _, err := e.reloadOwners(false); err != nil {
		return fmt.Errorf("context.owners: %w", err)
	}
	if len(c.Intel) > 0 {
		if _, err := e.reloadIntel(false); err != nil {
			return fmt.Errorf("context.intel: %w", err)
		}
	}
	return nil
}

// loadRanges reads and merges AWS ip-ranges.json files.
func loadRanges(paths []string) (*inventory.Ranges, error) {
	var all []*inventory.Ranges
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		rs, err := inventory.LoadAWSRanges(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		all = append(all, rs)
	}
	return inventory.MergeRanges(all...), nil
}

// importSnapshots imports a snapshot file, or each file of a folder in
// name order, into a tenant's inventory. A snapshot's rows without a
// time of their own held when its file was last written.
func (e *enrichment) importSnapshots(sc snapshotConfig) error {
	fi, err := os.Stat(sc.Path)
	if err != nil {
		return err
	}
	files := []string{sc.Path}
	if fi.IsDir() {
		if files, err = visibleFiles(sc.Path); err != nil {
			return err
		}
	}
	for _, p := range files {
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		var snap *inventory.Snapshot
		if fi, err = f.Stat(); err == nil {
			snap, err = inventory.ReadSnapshot(f, p, fi.ModTime())
		}
		f.Close()
		if err != nil {
			return err
		}
		e.Import(sc.Tenant, snap)
		st := snap.Stats
		e.logger.Info("imported an inventory snapshot", "file", p, "tenant", sc.Tenant, "format", st.Format,
			"records", st.Records, "assets", st.Assets, "facts", len(snap.Facts), "skipped", st.Skipped)
		for _, sk := range st.Skips {
			e.logger.Warn("inventory snapshot record skipped", "file", p, "line", sk.Line, "reason", sk.Reason)
		}
		if len(st.Ignored) > 0 {
			e.logger.Warn("inventory snapshot columns not read", "file", p, "columns", st.Ignored)
		}
	}
	return nil
}

// reloadIntel loads the threat-intel lists again if their files changed
// since they were last loaded, and reports whether it did. On an error
// the lists loaded before stay in use. A patient reload (the watch's)
// leaves files changed within settle for a later one, as do
// reloadOwners and reloadRanges.
func (e *enrichment) reloadIntel(patient bool) (bool, error) {
	srcs, err := e.cfg.intelSources()
	if err != nil {
		return false, err
	}
	paths := make([]string, len(srcs))
	for i, src := range srcs {
		paths[i] = src.Path
	}
	s := stamp(paths)
	if s == e.intelStamp || patient && settling(paths, time.Now()) {
		return false, nil
	}
	in, stats, err := inventory.LoadIntel(srcs...)
	if err != nil {
		return false, err
	}
	e.SetIntel(in)
	e.intelStamp = s
	for _, st := range stats {
		e.logger.Info("loaded threat intel", "list", st.Name, "file", st.Path, "format", st.Format,
			"ips", st.IPs, "cidrs", st.CIDRs, "domains", st.Domains, "hashes", st.Hashes, "skipped", st.Skipped)
		for _, sk := range st.Skips {
			e.logger.Warn("threat intel entry skipped", "file", st.Path, "line", sk.Line, "reason", sk.Reason)
		}
	}
	return true, nil
}

// reloadOwners reads the owners map if it changed since it was last
// read, and reports whether it did.
func (e *enrichment) reloadOwners(patient bool) (bool, error) {
	path := e.cfg.Owners
	if path == "" {
		return false, nil
	}
	st := stamp([]string{path})
	if st == e.ownersStamp || patient && settling([]string{path}, time.Now()) {
		return false, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	o, err := inventory.LoadOwners(f, path)
	if err != nil {
		return false, err
	}
	e.SetOwners(o)
	e.ownersStamp = st
	e.logger.Info("loaded the owners map", "file", path)
	return true, nil
}

// reloadRanges reads the cloud ranges if a file of them changed since
// they were last read, and reports whether one did.
func (e *enrichment) reloadRanges(patient bool) (bool, error) {
	paths := e.cfg.CloudRanges
	if len(paths) == 0 {
		return false, nil
	}
	st := stamp(paths)
	if st == e.rangesStamp || patient && settling(paths, time.Now()) {
		return false, nil
	}
	rs, err := loadRanges(paths)
	if err != nil {
		return false, err
	}
	e.SetRanges(rs)
	e.rangesStamp = st
	e.logger.Info("loaded cloud ranges", "files", len(paths), "ranges", rs.Len())
	return true, nil
}

// watch reads the threat-intel lists, the owners map and the cloud
// ranges again when their files change, until ctx is done. A change
// that cannot be read keeps what was loaded before in use.
func (e *enrichment) watch(ctx context.Context) {
	c := e.cfg
	if len(c.Intel) == 0 && c.Owners == "" && len(c.CloudRanges) == 0 {
		return
	}
	everyTick(ctx, c.intelReload, func() {
		if _, err := e.reloadIntel(true); err != nil {
			e.logger.Error("reloading threat intel; the lists loaded before stay in use", "err", err)
		}
		if _, err := e.reloadOwners(true); err != nil {
			e.logger.Error("reloading the owners map; the map loaded before stays in use", "err", err)
		}
		if _, err := e.reloadRanges(true); err != nil {
			e.logger.Error("reloading cloud ranges; the ranges loaded before stay in use", "err", err)
		}
	})
}

// everyTick calls fn every d until ctx is done.
func everyTick(ctx context.Context, d time.Duration, fn func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn()
		}
	}
}

// Close releases the GeoIP databases. No enrichment may run after it.
func (e *enrichment) Close() error {
	if e == nil || e.geo == nil {
		return nil
	}
	return e.geo.Close()
}
