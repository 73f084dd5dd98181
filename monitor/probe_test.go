package monitor

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestProbeDownAndUp: a loopback server answers, stops, and answers
// again on the same port; the HTTP and TCP probes of it see it go down
// and come back, the changes are told once each, and the availability
// over the window is the share of checks that found it up.
func TestProbeDownAndUp(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("status: ok")) })
	srv := &http.Server{Handler: handler}
	go srv.Serve(ln)

	probes := []Probe{
		{Name: "web", Target: "http://" + addr + "/health", Body: "status: ok", Labels: map[string]string{"environment": "prod"}},
		{Name: "web-port", Target: addr},
	}
	if err := LoadProbes(probes); err != nil {
		t.Fatal(err)
	}
	st := &memSamples{}
	t0 := time.Date(2026, 1, 5, 14, 0, 0, 0, time.UTC)
	now := t0
	var changes []string
	pr := &Prober{Probes: probes, Store: st, Tenant: "acme",
		Checker: Checker{Client: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}, Now: func() time.Time { return now }},
		Changed: func(p *Probe, r Result) {
			changes = append(changes, p.Name+" "+map[bool]string{true: "up", false: "down"}[r.Up])
		}}
	ctx := context.Background()
	round := func() {
		for i := range pr.Probes {
			pr.RunOnce(ctx, &pr.Probes[i])
		}
		now = now.Add(time.Minute)
	}
	round()
	round()
	srv.Close()
	round()
	round()
	// Back on the same port.
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listening again on %s: %v", addr, err)
	}
	srv = &http.Server{Handler: handler}
	go srv.Serve(ln)
	defer srv.Close()
	round()
	round()

	if want := "web down,web-port down,web up,web-port up"; strings.Join(changes, ",") != want {
		t.Errorf("changes %v, want %s", changes, want)
	}
	for _, s := range st.series["acme"] {
		if s.Metric == ProbeUp && s.Labels.Get("probe") == "web" && s.Labels.Get("environment") != "prod" {
			t.Errorf("labels %s", s.Labels)
		}
	}
	up := Aggregate(st.series["acme"], ProbeUp, []string{"probe"})
	for _, s := range up {
		share, n := Availability(&s, t0, t0.Add(time.Hour))
		if n != 6 || share < 0.66 || share > 0.67 {
			t.Errorf("%s: availability %.3f over %d checks, want 4 of 6", s.Labels, share, n)
		}
		if share, n := Availability(&s, t0.Add(2*time.Minute), t0.Add(4*time.Minute)); n != 2 || share != 0 {
			t.Errorf("%s: while down: availability %.3f over %d checks", s.Labels, share, n)
		}
	}
}

// TestProbeChecks: what a check finds wrong, said as its error; and a
// certificate's expiry, from an HTTPS server.
func TestProbeChecks(t *testing.T) {
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte("degraded"))
	}))
	defer tlsSrv.Close()
	c := Checker{Client: tlsSrv.Client()}
	for _, tc := range []struct {
		probe Probe
		err   string
	}{
		{Probe{Name: "a", Target: tlsSrv.URL + "/"}, ""},
		{Probe{Name: "b", Target: tlsSrv.URL + "/missing"}, "status 404, want 2xx"},
		{Probe{Name: "c", Target: tlsSrv.URL + "/missing", Status: "404"}, ""},
		{Probe{Name: "d", Target: tlsSrv.URL + "/", Body: "^ok$"}, `the body does not match "^ok$"`},
		{Probe{Name: "e", Kind: "dns", Target: "localhost"}, ""},
		{Probe{Name: "f", Target: "127.0.0.1:1"}, "refused"},
	} {
		p := tc.probe
		if err := p.check(); err != nil {
			t.Fatal(err)
		}
		r := c.Check(context.Background(), &p)
		if tc.err == "" && !r.Up || tc.err != "" && !strings.Contains(r.Error, tc.err) {
			t.Errorf("%s %s: up %v, error %q, want %q", p.Kind, p.Target, r.Up, r.Error, tc.err)
		}
		if p.Name == "a" {
			cert := tlsSrv.Certificate()
			if !r.CertExpiry.Equal(cert.NotAfter) {
				t.Errorf("cert expiry %s, want %s", r.CertExpiry, cert.NotAfter)
			}
			var days float64
			for _, s := range p.Series(r) {
				if s.Metric == ProbeCertDays {
					days = s.Samples[0].Value
				}
			}
			if days <= 0 {
				t.Errorf("cert expiry days %v", days)
			}
		}
	}
}

func TestLoadProbes(t *testing.T) {
	for _, tc := range []struct {
		probes []Probe
		err    string
	}{
		{[]Probe{{Name: "a", Target: "https://example.invalid/"}}, ""},
		{[]Probe{{Name: "a"}}, "no target"},
		{[]Probe{{Name: "a", Target: "ftp://x/"}}, "want an http or https URL"},
		{[]Probe{{Name: "a", Target: "db.internal"}}, "want host:port"},
		{[]Probe{{Name: "a", Kind: "icmp", Target: "x"}}, `kind "icmp"`},
		{[]Probe{{Name: "a", Target: "x:1", Every: Duration(time.Second), Timeout: Duration(time.Minute)}}, "a timeout no longer"},
		{[]Probe{{Name: "a", Target: "https://x/", Status: "2x"}}, `status "2x"`},
		{[]Probe{{Name: "a", Target: "https://x/", Body: "("}}, "body:"},
		{[]Probe{{Name: "a", Target: "x:1"}, {Name: "a", Target: "x:2"}}, `a second probe named "a"`},
	} {
		err := LoadProbes(tc.probes)
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%+v: %v, want %q", tc.probes, err, tc.err)
		}
	}
}

// TestProberStoreFails: a store that fails does not stop the prober,
// which says so.
func TestProberStoreFails(t *testing.T) {
	p := Probe{Name: "a", Target: "127.0.0.1:1"}
	if err := p.check(); err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	pr := &Prober{Probes: []Probe{p}, Store: &memSamples{fail: true}, Logger: slog.New(slog.NewTextHandler(&log, nil))}
	if r := pr.RunOnce(context.Background(), &pr.Probes[0]); r.Up {
		t.Error("a closed port is up")
	}
	if !strings.Contains(log.String(), "storing a probe's result") || !strings.Contains(log.String(), "disk full") {
		t.Errorf("log: %s", log.String())
	}
}
