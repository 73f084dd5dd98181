package monitor

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// TestScrape: a Prometheus endpoint made with client_golang, read as a
// Prometheus server reads it: its gauge, counter and histogram arrive
// with their labels and the target's; a target that fails gives up 0.
func TestScrape(t *testing.T) {
	reg := prometheus.NewRegistry()
	cpu := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "node_cpu_busy_ratio"}, []string{"cpu"})
	sent := prometheus.NewCounter(prometheus.CounterOpts{Name: "node_network_transmit_bytes_total"})
	lat := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "http_request_duration_seconds"})
	reg.MustRegister(cpu, sent, lat)
	cpu.WithLabelValues("0").Set(0.97)
	sent.Add(2e8)
	lat.Observe(0.25)
	lat.Observe(0.75)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()

	targets := []ScrapeTarget{
		{Name: "web-1", URL: srv.URL + "/metrics", Labels: map[string]string{"environment": "prod"}},
		{Name: "gone", URL: "http://127.0.0.1:1/metrics"},
	}
	if err := CheckScrapeTargets(targets); err != nil {
		t.Fatal(err)
	}
	st := &memSamples{}
	s := &Scraper{Targets: targets, Store: st, Tenant: "acme"}
	if err := s.ScrapeOnce(context.Background(), &s.Targets[0]); err != nil {
		t.Fatal(err)
	}
	if err := s.ScrapeOnce(context.Background(), &s.Targets[1]); err == nil {
		t.Error("a target that does not answer: no error")
	}
	got := map[string]float64{}
	for _, sr := range st.series["acme"] {
		got[sr.Metric+sr.Labels.String()] = sr.Samples[0].Value
		if time.Since(sr.Samples[0].Time) > time.Minute {
			t.Errorf("%s at %s", sr.Metric, sr.Samples[0].Time)
		}
	}
	for k, want := range map[string]float64{
		`node_cpu_busy_ratio{cpu="0", environment="prod", scrape="web-1"}`:        0.97,
		`node_network_transmit_bytes_total{environment="prod", scrape="web-1"}`:   2e8,
		`http_request_duration_seconds_count{environment="prod", scrape="web-1"}`: 2,
		`http_request_duration_seconds_sum{environment="prod", scrape="web-1"}`:   1,
		`up{environment="prod", scrape="web-1"}`:                                  1,
		`up{scrape="gone"}`:                                                       0,
	} {
		if v, ok := got[k]; !ok || v != want {
			t.Errorf("%s = %v (%v), want %v; got %v", k, v, ok, want, got)
		}
	}
}

func TestParseExpositionErrors(t *testing.T) {
	if _, err := ParseExposition(strings.NewReader("metric{ 1\n"), time.Now()); err == nil {
		t.Error("a broken line: no error")
	}
	if err := CheckScrapeTargets([]ScrapeTarget{{Name: "a", URL: "ftp://x"}}); err == nil || !strings.Contains(err.Error(), "want an http or https URL") {
		t.Errorf("ftp: %v", err)
	}
}

// FuzzParseExposition: any text gives series or an error, never a panic.
func FuzzParseExposition(f *testing.F) {
	f.Add("# TYPE up gauge\nup{job=\"a\"} 1\n")
	f.Add("x_total 3 1700000000000\n")
	f.Fuzz(func(t *testing.T, text string) {
		series, err := ParseExposition(strings.NewReader(text), time.Unix(0, 0))
		if err != nil && series != nil {
			t.Error("series with an error")
		}
	})
}
