package monitor

// Probes: checks vigil makes itself, from where it runs, of the services
// an organization depends on: is it up, how fast, is its certificate
// about to expire. Their results are samples, so that availability is
// judged by rules as any metric is, and each change between up and down
// is an event.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/vigilsec/vigil/metric"
)

// A Probe is a check made on a schedule.
type Probe struct {
	Name string `yaml:"name"`
	// Kind is http (the default when Target is a URL), tcp (host:port,
	// a host check where ICMP is not allowed) or dns (a name to resolve).
	Kind   string `yaml:"kind"`
	Target string `yaml:"target"`
	// Every is how often (1m by default), Timeout how long a check may
	// take (10s, and less than Every).
	Every   Duration `yaml:"every"`
	Timeout Duration `yaml:"timeout"`
	// Status is the HTTP status expected: a code, or a class such as
	// 2xx (the default). Body, a regular expression the body must match.
	Status string `yaml:"status"`
	Body   string `yaml:"body"`
	// Labels are added to the probe's series (environment, service).
	Labels map[string]string `yaml:"labels"`

	body *regexp.Regexp
}

// The metrics of probes, each labelled probe, kind and target.
const (
	ProbeUp       = "probe_up"               // 1 up, 0 down
	ProbeDuration = "probe_duration_seconds" // how long the check took
	ProbeCertDays = "probe_cert_expiry_days" // days until the certificate expires (https)
)

// check fills a probe's defaults and says what is wrong with it.
func (p *Probe) check() error {
	if p.Name == "" {
		return errors.New("no name")
	}
	if p.Target == "" {
		return errors.New("no target")
	}
	if p.Kind == "" {
		p.Kind = "tcp"
		if strings.Contains(p.Target, "://") {
			p.Kind = "http"
		}
	}
	switch p.Kind {
	case "http":
		u, err := url.Parse(p.Target)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("target %q: want an http or https URL", p.Target)
		}
	case "tcp":
		if _, _, err := net.SplitHostPort(p.Target); err != nil {
			return fmt.Errorf("target %q: want host:port", p.Target)
		}
	case "dns":
	default:
		return fmt.Errorf("kind %q: want http, tcp or dns", p.Kind)
	}
	if p.Every == 0 {
		p.Every = Duration(time.Minute)
	}
	if p.Timeout == 0 {
		p.Timeout = Duration(min(10*time.Second, time.Duration(p.Every)))
	}
	if p.Every < Duration(time.Second) || p.Timeout > p.Every {
		return fmt.Errorf("every %s, timeout %s: want every 1s or more, and a timeout no longer", time.Duration(p.Every), time.Duration(p.Timeout))
	}
	if p.Status == "" {
		p.Status = "2xx"
	}
	if !statusPattern.MatchString(p.Status) {
		return fmt.Errorf("status %q: want a code such as 200 or a class such as 2xx", p.Status)
	}
	if p.Body != "" {
		re, err := regexp.Compile(p.Body)
		if err != nil {
			return fmt.Errorf("body: %w", err)
		}
		p.body = re
	}
	return nil
}

var statusPattern = regexp.MustCompile(`^[1-5]([0-9]{2}|xx)$`)

// A Result is what a check found.
type Result struct {
	Time     time.Time
	Up       bool
	Duration time.Duration
	// Error says why the check failed.
	Error string
	// CertExpiry is when the server's certificate expires (https).
	CertExpiry time.Time
}

// A Checker makes checks. Its Client is used for http probes; its
// Resolver, for dns; its Dialer, for tcp.
type Checker struct {
	Client   *http.Client
	Resolver *net.Resolver
	Dialer   *net.Dialer
	Now      func() time.Time
}

// Check makes one check of a probe.
func (c *Checker) Check(ctx context.Context, p *Probe) Result {
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	start := time.Now()
	r := Result{Time: now()}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(p.Timeout))
	defer cancel()
	var err error
	switch p.Kind {
	case "http":
		r.CertExpiry, err = c.checkHTTP(ctx, p)
	case "tcp":
		var conn net.Conn
		if conn, err = c.dialer().DialContext(ctx, "tcp", p.Target); err == nil {
			conn.Close()
		}
	case "dns":
		var addrs []string
		addrs, err = c.resolver().LookupHost(ctx, p.Target)
		if err == nil && len(addrs) == 0 {
			err = errors.New("no address")
		}
	}
	r.Duration = time.Since(start)
	r.Up = err == nil
	if err != nil {
		r.Error = err.Error()
	}
	return r
}

func (c *Checker) checkHTTP(ctx context.Context, p *Probe) (time.Time, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.Target, nil)
	if err != nil {
		return time.Time{}, err
	}
	req.Header.Set("User-Agent", "vigil-probe")
	client := c.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return time.Time{}, err
	}
	defer resp.Body.Close()
	var expiry time.Time
	if resp.TLS != nil && len(resp.TLS.PeerCertificates) > 0 {
		expiry = resp.TLS.PeerCertificates[0].NotAfter
	}
	if code := fmt.Sprint(resp.StatusCode); code != p.Status && !(strings.HasSuffix(p.Status, "xx") && code[0] == p.Status[0]) {
		return expiry, fmt.Errorf("status %d, want %s", resp.StatusCode, p.Status)
	}
	if p.body != nil {
		b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if err != nil {
			return expiry, fmt.Errorf("reading the body: %w", err)
		}
		if !p.body.Match(b) {
			return expiry, fmt.Errorf("the body does not match %q", p.Body)
		}
	}
	return expiry, nil
}

func (c *Checker) dialer() *net.Dialer {
	if c.Dialer != nil {
		return c.Dialer
	}
	return &net.Dialer{}
}

func (c *Checker) resolver() *net.Resolver {
	if c.Resolver != nil {
		return c.Resolver
	}
	return net.DefaultResolver
}

// Series returns the samples of a result, labelled as the probe's.
func (p *Probe) Series(r Result) []metric.Series {
	labels := map[string]string{"probe": p.Name, "kind": p.Kind, "target": p.Target}
	for k, v := range p.Labels {
		labels[k] = v
	}
	ls := metric.NewLabels(labels)
	up := 0.0
	if r.Up {
		up = 1
	}
	out := []metric.Series{
		{Metric: ProbeUp, Labels: ls, Samples: []metric.Sample{{Time: r.Time, Value: up}}},
		{Metric: ProbeDuration, Labels: ls, Samples: []metric.Sample{{Time: r.Time, Value: r.Duration.Seconds()}}},
	}
	if !r.CertExpiry.IsZero() {
		out = append(out, metric.Series{Metric: ProbeCertDays, Labels: ls,
			Samples: []metric.Sample{{Time: r.Time, Value: r.CertExpiry.Sub(r.Time).Hours() / 24}}})
	}
	return out
}

// Availability returns the share of a probe_up series' samples in
// [from, to) that were up, and how many samples there were.
func Availability(s *metric.Series, from, to time.Time) (float64, int) {
	samples := metric.Between(s.Samples, from, to)
	if len(samples) == 0 {
		return 0, 0
	}
	up := 0
	for _, x := range samples {
		if x.Value >= 1 {
			up++
		}
	}
	return float64(up) / float64(len(samples)), len(samples)
}

// LoadProbes checks probes as a config gives them.
func LoadProbes(probes []Probe) error {
	names := map[string]bool{}
	for i := range probes {
		p := &probes[i]
		if err := p.check(); err != nil {
			return fmt.Errorf("probe %d (%s): %w", i+1, p.Name, err)
		}
		if names[p.Name] {
			return fmt.Errorf("probe %d: a second probe named %q", i+1, p.Name)
		}
		names[p.Name] = true
	}
	return nil
}

// A Prober runs probes on their schedules, stores their samples for a
// tenant, and tells of each change between up and down.
type Prober struct {
	Probes  []Probe
	Checker Checker
	Store   SampleAppender
	Tenant  string
	// Changed, if set, is told when a probe goes down or comes back up
	// (not of its first result).
	Changed func(p *Probe, r Result)
	Logger  *slog.Logger

	mu   sync.Mutex
	last map[string]bool // up, by probe
}

// Run runs the probes until ctx is done.
func (pr *Prober) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for i := range pr.Probes {
		p := &pr.Probes[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(time.Duration(p.Every))
			defer t.Stop()
			for {
				pr.RunOnce(ctx, p)
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		}()
	}
	wg.Wait()
}

// RunOnce checks a probe once, stores its samples and tells of a change.
func (pr *Prober) RunOnce(ctx context.Context, p *Probe) Result {
	r := pr.Checker.Check(ctx, p)
	if ctx.Err() != nil {
		return r // stopping: a check cut short says nothing of the target
	}
	if err := pr.Store.AppendSamples(ctx, pr.Tenant, p.Series(r)); err != nil && pr.Logger != nil {
		pr.Logger.Error("storing a probe's result", "probe", p.Name, "err", err)
	}
	pr.mu.Lock()
	if pr.last == nil {
		pr.last = map[string]bool{}
	}
	was, seen := pr.last[p.Name]
	pr.last[p.Name] = r.Up
	pr.mu.Unlock()
	if seen && was != r.Up && pr.Changed != nil {
		pr.Changed(p, r)
	}
	return r
}
