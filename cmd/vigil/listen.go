package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/vigilsec/vigil/ingest"
	"github.com/vigilsec/vigil/parse"
)

// ingestConfig is the ingest section of the config file: limits of the
// HTTP API, and the listeners and pull sources vigil serve runs. The
// listeners and sources are reloaded on SIGHUP.
type ingestConfig struct {
	// MaxLag is how many records the store may be behind the ledger
	// before ingest pushes back (HTTP 429, TCP syslog stops reading).
	MaxLag int64 `yaml:"max_lag"`
	HTTP   struct {
		MaxBody   string `yaml:"max_body"`   // "64MiB"
		MaxLine   string `yaml:"max_line"`   // "16MiB"
		MaxEvents int    `yaml:"max_events"` // records per request
	} `yaml:"http"`
	Syslog syslogConfig `yaml:"syslog"`
	S3     []s3Config   `yaml:"s3"`
	Dirs   []dirConfig  `yaml:"dirs"`

	maxBody, maxLine int64
}

type syslogConfig struct {
	UDP string `yaml:"udp"` // listen addresses, e.g. ":514"
	TCP string `yaml:"tcp"`
	TLS string `yaml:"tls"` // e.g. ":6514"
	// Cert and Key are the TLS listener's certificate and key (PEM).
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
	// ClientCA, when set, verifies client certificates against it;
	// RequireClientCert refuses clients without one.
	ClientCA          string `yaml:"client_ca"`
	RequireClientCert bool   `yaml:"require_client_cert"`
	// ClientTenants maps a client certificate's common name or DNS name
	// to the tenant of its messages.
	ClientTenants map[string]string `yaml:"client_tenants"`
	// Tenant is the tenant of messages from UDP, TCP and TLS clients
	// without a certificate; empty means the config's tenant.
	Tenant     string `yaml:"tenant"`
	MaxMessage string `yaml:"max_message"` // "64KiB"

	maxMessage int64
}

type s3Config struct {
	Bucket    string `yaml:"bucket"`
	Prefix    string `yaml:"prefix"`
	Region    string `yaml:"region"`
	Endpoint  string `yaml:"endpoint"` // an S3-compatible store; empty for AWS
	PathStyle bool   `yaml:"path_style"`
	Tenant    string `yaml:"tenant"`
	Format    string `yaml:"format"`
	Poll      string `yaml:"poll"`     // default 1m
	Lookback  string `yaml:"lookback"` // default 1h
	// Static credentials, for S3-compatible stores; AWS's standard chain
	// (environment, profile, instance role) otherwise. Prefer the chain:
	// the config file is then free of secrets.
	AccessKeyID     string `yaml:"access_key_id"`
	SecretAccessKey string `yaml:"secret_access_key"`

	poll, lookback time.Duration
}

type dirConfig struct {
	Path   string `yaml:"path"`
	Glob   string `yaml:"glob"`
	Tenant string `yaml:"tenant"`
	Format string `yaml:"format"`
	Poll   string `yaml:"poll"`   // default 1s
	Settle string `yaml:"settle"` // default 10s

	poll, settle time.Duration
}

// check validates the section.
func (ic *ingestConfig) check(defTenant string) error {
	var err error
	if ic.maxBody, err = parseSize(ic.HTTP.MaxBody); err != nil {
		return &configError{"ingest.http.max_body", err}
	}
	if ic.maxLine, err = parseSize(ic.HTTP.MaxLine); err != nil {
		return &configError{"ingest.http.max_line", err}
	}
	if ic.HTTP.MaxEvents < 0 {
		return &configError{"ingest.http.max_events", errors.New("must not be negative")}
	}
	if ic.MaxLag < 0 {
		return &configError{"ingest.max_lag", errors.New("must not be negative")}
	}
	sl := &ic.Syslog
	if sl.maxMessage, err = parseSize(sl.MaxMessage); err != nil {
		return &configError{"ingest.syslog.max_message", err}
	}
	if sl.Tenant == "" {
		sl.Tenant = defTenant
	}
	if sl.TLS != "" && (sl.Cert == "" || sl.Key == "") {
		return &configError{"ingest.syslog.tls", errors.New("a TLS listener needs cert and key")}
	}
	if sl.RequireClientCert && sl.ClientCA == "" {
		return &configError{"ingest.syslog.require_client_cert", errors.New("needs client_ca to verify the certificates against")}
	}
	for i := range ic.S3 {
		s := &ic.S3[i]
		at := fmt.Sprintf("ingest.s3[%d]", i)
		if s.Bucket == "" {
			return &configError{at + ".bucket", errors.New("missing")}
		}
		s.Tenant = cmp.Or(s.Tenant, defTenant)
		if err := checkFormat(at, s.Format); err != nil {
			return err
		}
		if (s.AccessKeyID == "") != (s.SecretAccessKey == "") {
			return &configError{at + ".access_key_id", errors.New("give both access_key_id and secret_access_key, or neither")}
		}
		if s.poll, err = parseOptionalDuration(s.Poll); err != nil {
			return &configError{at + ".poll", err}
		}
		if s.lookback, err = parseOptionalDuration(s.Lookback); err != nil {
			return &configError{at + ".lookback", err}
		}
	}
	for i := range ic.Dirs {
		d := &ic.Dirs[i]
		at := fmt.Sprintf("ingest.dirs[%d]", i)
		if d.Path == "" {
			return &configError{at + ".path", errors.New("missing")}
		}
		if d.Glob != "" {
			if _, err := filepath.Match(d.Glob, ""); err != nil {
				return &configError{at + ".glob", err}
			}
		}
		d.Tenant = cmp.Or(d.Tenant, defTenant)
		if err := checkFormat(at, d.Format); err != nil {
			return err
		}
		if d.poll, err = parseOptionalDuration(d.Poll); err != nil {
			return &configError{at + ".poll", err}
		}
		if d.settle, err = parseOptionalDuration(d.Settle); err != nil {
			return &configError{at + ".settle", err}
		}
	}
	return nil
}

// checkFormat checks the format setting of the source at path.
func checkFormat(path, format string) error {
	if format == "" || format == parse.Auto {
		return nil
	}
	if _, ok := parse.Lookup(format); !ok {
		return &configError{path + ".format", fmt.Errorf("unknown format %q (see vigil formats)", format)}
	}
	return nil
}

// parseSize reads a size such as 65536, "64KiB", "16MiB", "1GB"; empty
// is 0 (the default).
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = strings.TrimSpace(n), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || n > (1<<50)/mult {
		return 0, fmt.Errorf("%q is not a size such as 65536, 64KiB or 16MiB", s)
	}
	return n * mult, nil
}

func parseOptionalDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q is not a positive duration such as 30s or 5m", s)
	}
	return d, nil
}

// sources are the listeners and pull sources of one configuration,
// running until stopped; SIGHUP replaces them with the next.
type sources struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	reg    *prometheus.Registry
	syslog *ingest.SyslogServer
}

// startSources starts the syslog listeners and pull sources of cfg.
func startSources(ctx context.Context, cfg *config, a ingest.Acceptor, cursors ingest.CursorStore, logger *slog.Logger) (*sources, error) {
	ic := &cfg.Ingest
	reg := prometheus.NewRegistry()
	ctx, cancel := context.WithCancel(ctx)
	s := &sources{cancel: cancel, reg: reg}
	var runs []func(context.Context) error
	fail := func(err error) (*sources, error) {
		cancel()
		if s.syslog != nil {
			// It holds its sockets from NewSyslogServer until it runs:
			// a run under a done context lets go of them.
			s.syslog.Run(ctx)
		}
		return nil, err
	}

	if sl := ic.Syslog; sl.UDP != "" || sl.TCP != "" || sl.TLS != "" {
		opts := ingest.SyslogOptions{
			ListenUDP: sl.UDP, ListenTCP: sl.TCP, ListenTLS: sl.TLS,
			CertTenants:   sl.ClientTenants,
			DefaultTenant: sl.Tenant,
			MaxMessage:    int(sl.maxMessage),
			Parse:         cfg.parseOptions(sl.Tenant),
		}
		if sl.TLS != "" {
			tc, err := serverTLS(sl)
			if err != nil {
				return fail(err)
			}
			opts.TLS = tc
		}
		srv, err := ingest.NewSyslogServer(opts, a, logger, reg)
		if err != nil {
			return fail(err)
		}
		s.syslog = srv
		runs = append(runs, srv.Run)
		for _, a := range []net.Addr{srv.UDPAddr(), srv.TCPAddr(), srv.TLSAddr()} {
			if a != nil {
				logger.Info("syslog listening", "network", a.Network(), "addr", a.String())
			}
		}
	}
	for _, sc := range ic.S3 {
		src, err := ingest.NewS3Source(ingest.S3Options{
			Bucket: sc.Bucket, Prefix: sc.Prefix, Region: sc.Region, Endpoint: sc.Endpoint, PathStyle: sc.PathStyle,
			AccessKeyID: sc.AccessKeyID, SecretAccessKey: sc.SecretAccessKey,
			Poll: sc.poll, Lookback: sc.lookback, Tenant: sc.Tenant, Format: sc.Format,
			Parse: cfg.parseOptions(sc.Tenant),
		}, a, cursors, logger, reg)
		if err != nil {
			return fail(err)
		}
		runs = append(runs, src.Run)
	}
	for _, dc := range ic.Dirs {
		src, err := ingest.NewDirSource(ingest.DirOptions{
			Dir: dc.Path, Glob: dc.Glob, Tenant: dc.Tenant, Format: dc.Format,
			Parse: cfg.parseOptions(dc.Tenant), Poll: dc.poll, Settle: dc.settle,
		}, a, cursors, logger, reg)
		if err != nil {
			return fail(err)
		}
		runs = append(runs, src.Run)
	}
	for _, run := range runs {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := run(ctx); err != nil {
				logger.Error("ingest source stopped", "err", err)
			}
		}()
	}
	return s, nil
}

// stop stops the sources and waits until what they read is accepted.
func (s *sources) stop() {
	s.cancel()
	s.wg.Wait()
}

// serverTLS builds the syslog TLS listener's configuration.
func serverTLS(sl syslogConfig) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(sl.Cert, sl.Key)
	if err != nil {
		return nil, fmt.Errorf("ingest.syslog: loading the TLS certificate: %w", err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if sl.ClientCA != "" {
		pem, err := os.ReadFile(sl.ClientCA)
		if err != nil {
			return nil, fmt.Errorf("ingest.syslog.client_ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ingest.syslog.client_ca: no PEM certificate in %s", sl.ClientCA)
		}
		tc.ClientCAs = pool
		tc.ClientAuth = tls.VerifyClientCertIfGiven
		if sl.RequireClientCert {
			tc.ClientAuth = tls.RequireAndVerifyClientCert
		}
	}
	return tc, nil
}

// swappableGatherer gathers from a registry that a reload replaces: the
// sources' metrics, registered anew by each configuration.
type swappableGatherer struct {
	reg atomic.Pointer[prometheus.Registry]
}

func (g *swappableGatherer) Gather() ([]*dto.MetricFamily, error) {
	if r := g.reg.Load(); r != nil {
		return r.Gather()
	}
	return nil, nil
}
