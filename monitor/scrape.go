package monitor

// Scraping: reading a Prometheus endpoint (/metrics) on a schedule, as a
// Prometheus server does, for the targets that expose metrics but send
// none. The text exposition format is read
// (https://prometheus.io/docs/instrumenting/exposition_formats/).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"net/http"
	"net/url"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/vigilsec/vigil/metric"
)

// A ScrapeTarget is an endpoint read on a schedule.
type ScrapeTarget struct {
	Name string `yaml:"name"`
	URL  string `yaml:"url"`
	// Every is how often (1m by default); Timeout how long a read may
	// take (10s, and no longer than Every).
	Every   Duration `yaml:"every"`
	Timeout Duration `yaml:"timeout"`
	// Labels are added to every series read (environment, account).
	Labels map[string]string `yaml:"labels"`
}

// MaxScrapeBytes bounds what a scrape reads.
const MaxScrapeBytes = 32 << 20

// CheckScrapeTargets fills targets' defaults and says what is wrong with
// the first that is wrong.
func CheckScrapeTargets(targets []ScrapeTarget) error {
	names := map[string]bool{}
	for i := range targets {
		t := &targets[i]
		u, err := url.Parse(t.URL)
		switch {
		case t.Name == "":
			return fmt.Errorf("scrape target %d: no name", i+1)
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			return fmt.Errorf("scrape target %d (%s): url %q: want an http or https URL", i+1, t.Name, t.URL)
		case names[t.Name]:
			return fmt.Errorf("scrape target %d: a second target named %q", i+1, t.Name)
		}
		names[t.Name] = true
		if t.Every == 0 {
			t.Every = Duration(time.Minute)
		}
		if t.Timeout == 0 {
			t.Timeout = Duration(min(10*time.Second, time.Duration(t.Every)))
		}
		if t.Every < Duration(time.Second) || t.Timeout > t.Every {
			return fmt.Errorf("scrape target %d (%s): every %s, timeout %s: want every 1s or more, and a timeout no longer", i+1, t.Name, time.Duration(t.Every), time.Duration(t.Timeout))
		}
	}
	return nil
}

// ParseExposition reads metrics in the text exposition format into
// series of one sample each, at their timestamp or at now: a counter's,
// a gauge's or an untyped metric's value; a summary's and a histogram's
// NAME_count and NAME_sum.
func ParseExposition(r io.Reader, now time.Time) ([]metric.Series, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("exposition: %w", err)
	}
	var out []metric.Series
	for name, f := range families {
		for _, m := range f.GetMetric() {
			labels := make(metric.Labels, 0, len(m.GetLabel()))
			for _, l := range m.GetLabel() {
				labels = append(labels, metric.Label{Name: l.GetName(), Value: l.GetValue()})
			}
			labels.Sort()
			at := now
			if ms := m.GetTimestampMs(); ms != 0 {
				at = time.UnixMilli(ms).UTC()
			}
			add := func(name string, v float64) {
				if !math.IsNaN(v) {
					out = append(out, metric.Series{Metric: name, Labels: labels, Samples: []metric.Sample{{Time: at, Value: v}}})
				}
			}
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				add(name, m.GetCounter().GetValue())
			case dto.MetricType_GAUGE:
				add(name, m.GetGauge().GetValue())
			case dto.MetricType_SUMMARY:
				add(name+"_count", float64(m.GetSummary().GetSampleCount()))
				add(name+"_sum", m.GetSummary().GetSampleSum())
			case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
				add(name+"_count", float64(m.GetHistogram().GetSampleCount()))
				add(name+"_sum", m.GetHistogram().GetSampleSum())
			default:
				add(name, m.GetUntyped().GetValue())
			}
		}
	}
	return out, nil
}

// A Scraper reads targets on their schedules into a store, for a tenant,
// and records whether each answered as the series up{scrape="NAME"}.
type Scraper struct {
	Targets []ScrapeTarget
	Client  *http.Client
	Store   SampleAppender
	Tenant  string
	Logger  *slog.Logger
}

// Run scrapes until ctx is done.
func (s *Scraper) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for i := range s.Targets {
		t := &s.Targets[i]
		wg.Go(func() {
			tick := time.NewTicker(time.Duration(t.Every))
			defer tick.Stop()
			for {
				s.ScrapeOnce(ctx, t)
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
			}
		})
	}
	wg.Wait()
}

// ScrapeOnce reads a target once and stores what it gave, with its up.
func (s *Scraper) ScrapeOnce(ctx context.Context, t *ScrapeTarget) error {
	now := time.Now().UTC()
	series, err := s.scrape(ctx, t, now)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	up := 1.0
	if err != nil {
		up = 0
		if s.Logger != nil {
			s.Logger.Warn("scraping", "target", t.Name, "url", t.URL, "err", err)
		}
	}
	extra := make(map[string]string, len(t.Labels)+1)
	for k, v := range t.Labels {
		extra[k] = v
	}
	extra["scrape"] = t.Name
	for i := range series {
		series[i].Labels = withLabels(series[i].Labels, extra)
	}
	series = append(series, metric.Series{Metric: "up", Labels: metric.NewLabels(extra), Samples: []metric.Sample{{Time: now, Value: up}}})
	if serr := s.Store.AppendSamples(ctx, s.Tenant, series); serr != nil {
		if s.Logger != nil {
			s.Logger.Error("storing a scrape", "target", t.Name, "err", serr)
		}
		return errors.Join(err, serr)
	}
	return err
}

func (s *Scraper) scrape(ctx context.Context, t *ScrapeTarget, now time.Time) ([]metric.Series, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(t.Timeout))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.URL, nil)
	if err != nil {
		return nil, err
	}
	// The text format: every exporter speaks it.
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	client := s.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %s", resp.Status)
	}
	return ParseExposition(io.LimitReader(resp.Body, MaxScrapeBytes), now)
}

// withLabels returns ls with extra's labels added, extra's winning.
func withLabels(ls metric.Labels, extra map[string]string) metric.Labels {
	m := ls.Map()
	maps.Copy(m, extra)
	return metric.NewLabels(m)
}
