package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"time"

	"github.com/klauspost/compress/snappy"
	writev2 "github.com/prometheus/client_golang/exp/api/remote/genproto/v2"

	"github.com/vigilsec/vigil/metric"
	"github.com/vigilsec/vigil/monitor"
	"github.com/vigilsec/vigil/store/duckdb"
)

// runMonitor measures the monitoring pieces in this process: a full
// evaluation pass of a weekly rule over -series series of hourly
// samples (four weeks of history and the day judged), against a peer
// that judges each value against the mean and standard deviation of
// the same history, and counts what each finds in the clean series; and
// samples stored through vigil's remote-write receiver (decoding, the
// store) against the same samples appended to the store directly.
func runMonitor(ctx context.Context, c *config) error {
	series := benchSeries(c.series, c.seed)
	now := benchStart.Add(5 * 7 * 24 * time.Hour)
	rules := []monitor.Rule{{Name: "bench", Metric: "m"}}
	if err := monitor.CheckRules(rules); err != nil {
		return err
	}
	var found [2]int
	runs, err := c.alternate(len(series),
		func(int) (measure, error) {
			return measured("vigil rule (weekly baseline)", len(series), func() {
				found[0] = 0
				for i := range series {
					found[0] += len(rules[0].Evaluate(&series[i], now.Add(-24*time.Hour), now))
				}
			}), nil
		},
		func(int) (measure, error) {
			return measured("mean ± 6σ of the history", len(series), func() {
				found[1] = 0
				for i := range series {
					found[1] += meanSigmaStrays(series[i].Samples, now.Add(-24*time.Hour), now)
				}
			}), nil
		})
	if err != nil {
		return err
	}
	report(c.out, fmt.Sprintf("a full evaluation pass over %d series of hourly samples (4 weeks of history, 1 day judged), against a static mean ± 6σ", len(series)), runs[0], runs[1])
	fmt.Fprintf(c.out, "\nvalues judged anomalous in the clean series: vigil %d, peer %d (of %d judged)\n", found[0], found[1], 24*len(series))

	// Ingest: remote write against appending to the store.
	samples := min(c.events, 1_000_000)
	ingest, err := c.alternate(samples,
		func(run int) (measure, error) { return c.remoteWriteRun(ctx, run, samples, true) },
		func(run int) (measure, error) { return c.remoteWriteRun(ctx, run, samples, false) })
	if err != nil {
		return err
	}
	report(c.out, fmt.Sprintf("%d samples (2,000 series a request, one sample each) stored through remote write 2.0, against appended to the store directly", samples), ingest[0], ingest[1])
	return nil
}

var benchStart = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)

// benchSeries makes n series of hourly samples over five weeks: busy
// weekdays, quiet nights and weekends, 5% noise.
func benchSeries(n int, seed uint64) []metric.Series {
	r := rand.New(rand.NewPCG(seed, 0x6d6f6e))
	out := make([]metric.Series, n)
	for i := range out {
		s := &out[i]
		s.Metric = "m"
		s.Samples = make([]metric.Sample, 0, 5*7*24)
		for at := benchStart; at.Before(benchStart.Add(5 * 7 * 24 * time.Hour)); at = at.Add(time.Hour) {
			h := float64(at.Hour())
			v := 10.0
			if h >= 8 && h < 19 && at.Weekday() != time.Saturday && at.Weekday() != time.Sunday {
				v += 40 * math.Sin(math.Pi*(h-8)/11)
			}
			s.Samples = append(s.Samples, metric.Sample{Time: at, Value: v * (1 + 0.05*r.NormFloat64())})
		}
	}
	return out
}

// meanSigmaStrays counts the values in [from, to) more than six standard
// deviations from the mean of the four weeks before from.
func meanSigmaStrays(s []metric.Sample, from, to time.Time) int {
	hist := metric.Between(s, from.Add(-4*7*24*time.Hour), from)
	var sum, sq float64
	for _, x := range hist {
		sum += x.Value
		sq += x.Value * x.Value
	}
	n := float64(len(hist))
	mean := sum / n
	sd := math.Sqrt(max(sq/n-mean*mean, 0))
	k := 0
	for _, x := range metric.Between(s, from, to) {
		if math.Abs(x.Value-mean) > 6*sd {
			k++
		}
	}
	return k
}

// measured runs fn and measures it.
func measured(name string, n int, fn func()) measure {
	cpu0, t0 := cpuTime(), time.Now()
	fn()
	return measure{name: name, events: int64(n), elapsed: time.Since(t0), cpu: cpuTime() - cpu0}
}

// remoteWriteRun stores samples into a fresh store: through the remote
// write receiver on loopback, or straight.
func (c *config) remoteWriteRun(ctx context.Context, run, samples int, viaHTTP bool) (measure, error) {
	path := filepath.Join(c.dir, fmt.Sprintf("monitor-bench-%d-%v.duckdb", run, viaHTTP))
	db, err := duckdb.Open(duckdb.Options{Path: path})
	if err != nil {
		return measure{}, err
	}
	defer func() { db.Close(); os.Remove(path); os.Remove(path + ".wal") }()
	const perRequest = 2000
	t0 := time.Unix(1767225600, 0)
	name := "appended to the store directly"
	var srv *httptest.Server
	if viaHTTP {
		name = "remote write 2.0 (vigil)"
		srv = httptest.NewServer(monitor.RemoteWriteHandler(db, func(*http.Request) (string, error) { return "bench", nil }, slog.New(slog.DiscardHandler)))
		defer srv.Close()
	}
	// What is sent is made before the clock starts: the sender's work is
	// not the receiver's.
	var (
		bodies [][]byte
		direct [][]metric.Series
	)
	for done := 0; done < samples; done += perRequest {
		n, at := min(perRequest, samples-done), t0.Add(time.Duration(done/perRequest)*time.Second)
		if viaHTTP {
			b, err := remoteWriteBody(at, n)
			if err != nil {
				return measure{}, err
			}
			bodies = append(bodies, b)
		} else {
			direct = append(direct, directSeries(at, n))
		}
	}
	m := measured(name, samples, func() {
		for _, b := range bodies {
			if err = postRemoteWrite(ctx, srv, b); err != nil {
				return
			}
		}
		for _, ss := range direct {
			if err = db.AppendSamples(ctx, "bench", ss); err != nil {
				return
			}
		}
	})
	return m, err
}

// directSeries is n series of one sample each at t.
func directSeries(t time.Time, n int) []metric.Series {
	out := make([]metric.Series, n)
	for i := range out {
		out[i] = metric.Series{Metric: "m", Labels: metric.Labels{{Name: "instance", Value: fmt.Sprintf("i-%05d", i)}},
			Samples: []metric.Sample{{Time: t, Value: float64(i)}}}
	}
	return out
}

// remoteWriteBody is a 2.0 request of n series of one sample each at
// t, as a Prometheus server sends it: snappy-compressed.
func remoteWriteBody(t time.Time, n int) ([]byte, error) {
	req := &writev2.Request{Symbols: []string{"", "__name__", "m", "instance"}}
	for i := range n {
		req.Symbols = append(req.Symbols, fmt.Sprintf("i-%05d", i))
		req.Timeseries = append(req.Timeseries, &writev2.TimeSeries{LabelsRefs: []uint32{1, 2, 3, uint32(4 + i)},
			Samples: []*writev2.Sample{{Value: float64(i), Timestamp: t.UnixMilli()}}})
	}
	b, err := req.MarshalVT()
	if err != nil {
		return nil, err
	}
	return snappy.Encode(nil, b), nil
}

// postRemoteWrite posts a remote-write body.
func postRemoteWrite(ctx context.Context, srv *httptest.Server, body []byte) error {
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	hr.Header.Set("Content-Type", "application/x-protobuf;proto="+monitor.RemoteWriteV2)
	hr.Header.Set("Content-Encoding", "snappy")
	resp, err := srv.Client().Do(hr)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("remote write: %s", resp.Status)
	}
	return nil
}
