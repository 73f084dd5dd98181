package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/vigilsec/vigil/alert"
	"github.com/vigilsec/vigil/query"

	"gopkg.in/yaml.v3"

	"github.com/vigilsec/vigil/ingest"
	"github.com/vigilsec/vigil/parse"
)

// The files of a data directory.
const (
	storeFile  = "events.duckdb"
	ledgerDir  = "ledger"      // the ledger's segments, hashes and checkpoints
	keyFile    = "ledger.key"  // the key that signs the ledger's checkpoints
	tokenFile  = "admin.token" // the local administrator's API token
	addrFile   = "serve.addr"  // where a running server listens
	configFile = "vigil.yaml"
	metaFile   = "meta.db" // the metadata database: tenants, tokens, cursors
)

// dataFlags are the flags every command that touches the data directory
// shares.
type dataFlags struct {
	dir    string
	config string
	// serverURL is --server, for the commands that take it
	// (registerClient).
	serverURL string
	// fs is the command's flags, to tell whether --data was given.
	fs *flag.FlagSet
}

func (d *dataFlags) register(fs *flag.FlagSet) {
	d.fs = fs
	def := os.Getenv("VIGIL_DATA")
	if def == "" {
		def = "vigil-data"
	}
	fs.StringVar(&d.dir, "data", def, "data directory (default $VIGIL_DATA, else ./vigil-data)")
	fs.StringVar(&d.config, "config", "", "config file (default DATA/"+configFile+" when present)")
}

func (d *dataFlags) path(name string) string { return filepath.Join(d.dir, name) }

// config is the user's configuration file.
type config struct {
	// Tenant is the tenant events are imported into when none is named.
	Tenant string `yaml:"tenant"`
	// Environments maps accounts, projects and subscriptions to the
	// environment they belong to (prod, staging, …).
	Environments map[string]string `yaml:"environments"`
	// MaxSkew is the clock-skew bound: events whose time is further than
	// this from their receipt are flagged.
	MaxSkew string `yaml:"max_skew"`
	// JSONTimeField names the time field of generic JSON logs.
	JSONTimeField string `yaml:"json_time_field"`
	// Ledger configures the ledger's checkpoints and their witnesses.
	Ledger ledgerConfig `yaml:"ledger"`
	// Retention says how long events are kept.
	Retention retentionConfig `yaml:"retention"`
	// Store configures the event store.
	Store storeConfig `yaml:"store"`
	// Ingest configures the HTTP API's limits, the syslog listeners and
	// the pull sources of vigil serve.
	Ingest ingestConfig `yaml:"ingest"`
	// Detect names the detection rules of vigil serve.
	Detect detectConfig `yaml:"detect"`
	// Alerts says how detections are grouped into alerts.
	Alerts alertsConfig `yaml:"alerts"`
	// Notify names the channels alerts go to, and the routes to them.
	Notify notifyConfig `yaml:"notify"`
	// Meta says where the metadata database is.
	Meta metaConfig `yaml:"meta"`
	// Playbooks are the response playbooks vigil serve runs, and what
	// they may act on.
	Playbooks playbooksConfig `yaml:"playbooks"`
	// Context says what enrichment adds to events: GeoIP, threat intel,
	// cloud ranges, owners, inventory snapshots.
	Context contextConfig `yaml:"context"`
	// Monitor configures what vigil serve watches itself: probes.
	Monitor monitorConfig `yaml:"monitor"`
	// Scale names the engines of a scale-out deployment; without it,
	// vigil serve runs embedded.
	Scale scaleConfig `yaml:"scale"`

	maxSkew time.Duration
	alerts  alert.Config
	metaURL string // the PostgreSQL database's, resolved
}

// metaConfig is the meta section of the config file.
type metaConfig struct {
	// URL names a PostgreSQL database (postgres://…, or env:NAME or
	// file:PATH holding one) for the metadata, which several vigil nodes
	// may share. By default it is DATA/meta.db, an SQLite file.
	URL string `yaml:"url"`
}

// metaLocation is where the metadata database is: the config's
// PostgreSQL database, or the data directory's SQLite file.
func (d *dataFlags) metaLocation(cfg *config) string {
	if cfg != nil && cfg.metaURL != "" {
		return cfg.metaURL
	}
	return d.path(metaFile)
}

// storeConfig is the store section of the config file.
type storeConfig struct {
	// MemoryLimit bounds DuckDB's memory, e.g. "300MB" (vigil serve's
	// default, which keeps the server under 1 GiB under full ingest
	// load) or "4GB"; vigil import leaves it to DuckDB (80% of RAM).
	// More lets a store that is behind catch up faster (BENCHMARKS.md).
	MemoryLimit string `yaml:"memory_limit"`
}

// minAuditRetention is the shortest retention the audit trail takes.
const minAuditRetention = 365 * 24 * time.Hour

// retentionConfig is the retention section of the config file. Durations
// are Go durations or days ("90d"); none, or 0, keeps events forever.
type retentionConfig struct {
	Default    string            `yaml:"default"`
	Tenants    map[string]string `yaml:"tenants"`
	LegalHolds []struct {
		Tenant string `yaml:"tenant"` // empty: every tenant
		From   string `yaml:"from"`   // RFC 3339 time or date; empty: open
		To     string `yaml:"to"`
		Reason string `yaml:"reason"`
	} `yaml:"legal_holds"`

	policy ingest.Retention
}

// parse checks the section and builds its policy.
func (r *retentionConfig) parse() error {
	var err error
	if r.policy.Default, err = parseDays(r.Default); err != nil {
		return &configError{"retention.default", err}
	}
	r.policy.Tenants = make(map[string]time.Duration)
	for t, d := range r.Tenants {
		if r.policy.Tenants[t], err = parseDays(d); err != nil {
			return &configError{"retention.tenants." + t, err}
		}
		// The audit trail is what shows who read the data: a year is
		// what audit standards ask (PCI DSS 10.5.1), and forever is
		// the default.
		if keep := r.policy.Tenants[t]; t == query.SystemTenant && keep > 0 && keep < minAuditRetention {
			return &configError{"retention.tenants." + t, fmt.Errorf("the audit trail is kept at least %d days", minAuditRetention/(24*time.Hour))}
		}
	}
	for i, h := range r.LegalHolds {
		hold := ingest.Hold{Tenant: h.Tenant, Reason: h.Reason}
		if strings.TrimSpace(h.Reason) == "" {
			return &configError{fmt.Sprintf("retention.legal_holds[%d].reason", i), errors.New("a hold needs a reason")}
		}
		for _, b := range []struct {
			s string
			t *time.Time
		}{{h.From, &hold.From}, {h.To, &hold.To}} {
			if b.s == "" {
				continue
			}
			if *b.t, err = parseTimeOrDate(b.s); err != nil {
				return &configError{fmt.Sprintf("retention.legal_holds[%d]", i), err}
			}
		}
		r.policy.Holds = append(r.policy.Holds, hold)
	}
	return nil
}

// configured reports whether any events expire.
func (r *retentionConfig) configured() bool {
	if r.policy.Default > 0 {
		return true
	}
	for _, d := range r.policy.Tenants {
		if d > 0 {
			return true
		}
	}
	return false
}

// parseDays parses "90d" or a Go duration; "" is 0, forever.
func parseDays(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 0 {
			return 0, fmt.Errorf("%q is not a number of days", s)
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q is not a duration (90d, 720h)", s)
	}
	return d, nil
}

func parseTimeOrDate(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time or a date", s)
	}
	return t, nil
}

// ledgerConfig is the ledger section of the config file.
type ledgerConfig struct {
	// CheckpointEvery is how often a checkpoint is signed while events
	// arrive (default 1m).
	CheckpointEvery string `yaml:"checkpoint_every"`
	// Witnesses receive every checkpoint, so that a copy lives where
	// whoever controls this server cannot rewrite it: a file path
	// (another disk, a mounted share) or an http(s) URL to POST to.
	Witnesses []string `yaml:"witnesses"`
	// SegmentBytes is the size of the ledger's segment files (default
	// 128 MiB); retention removes whole segments.
	SegmentBytes int64 `yaml:"segment_bytes"`

	checkpointEvery time.Duration
}

// loadConfig reads the config file: the one named, or DATA/vigil.yaml if
// it exists, or defaults.
func (d *dataFlags) loadConfig() (*config, error) {
	c := &config{Tenant: "default", Ledger: ledgerConfig{checkpointEvery: time.Minute}}
	path := d.config
	if path == "" {
		path = d.path(configFile)
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			return c, c.check()
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) { // io.EOF: an empty file
		// yaml's own errors name the line already.
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	if err := c.check(); err != nil {
		// Name the line of the setting at fault.
		var ce *configError
		if errors.As(err, &ce) {
			var root yaml.Node
			yaml.Unmarshal(b, &root)
			if line := lineOf(&root, ce.path); line > 0 {
				return nil, fmt.Errorf("config %s:%d: %w", path, line, err)
			}
		}
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// parseOptions are the parse options the config implies.
func (c *config) parseOptions(tenant string) parse.Options {
	if tenant == "" {
		tenant = c.Tenant
	}
	return parse.Options{
		Tenant:       tenant,
		Environments: c.Environments,
		MaxSkew:      c.maxSkew,
		TimeField:    c.JSONTimeField,
	}
}

// adminToken returns the local administrator's API token, creating it on
// first use. It lives in the data directory, readable by its owner only:
// whoever can read the data directory can read the data anyway.
func (d *dataFlags) adminToken() (string, error) {
	path := d.path(tokenFile)
	b, err := os.ReadFile(path)
	if err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("reading admin token: %w", err)
	}
	buf := make([]byte, 32)
	rand.Read(buf)
	tok := "vgl_" + hex.EncodeToString(buf)
	// Written beside and renamed, so that no reader sees it empty.
	if err := os.WriteFile(path+".tmp", []byte(tok+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("writing admin token: %w", err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		return "", fmt.Errorf("writing admin token: %w", err)
	}
	return tok, nil
}

// server returns the base URL and token of a vigil server running on this
// data directory, or "" when none answers. It never looks at remote
// settings: commands that need the data directory to themselves ask it
// whether one runs (noServer); client is what asks remote servers too.
func (d *dataFlags) server(ctx context.Context) (base, token string) {
	addr, err := os.ReadFile(d.path(addrFile))
	if err != nil {
		return "", ""
	}
	base = "http://" + strings.TrimSpace(string(addr))
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/healthz", nil)
	if err != nil {
		return "", ""
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", ""
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", ""
	}
	token, err = d.adminToken()
	if err != nil {
		return "", ""
	}
	return base, token
}
