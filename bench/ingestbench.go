package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigilsec/vigil/ingest"
)

// runIngest load-tests the HTTP ingest API of a real `vigil serve` on
// loopback: clients post the corpus's CloudTrail files (gzip, as
// CloudTrail delivers them, each with its name as the batch id) as fast
// as the server acknowledges them, retrying on 429. It reports the
// sustained rate of acknowledged events, the acknowledgement latency and
// the server's peak RSS, against `vigil import` of the same files in a
// fresh data directory: the ratio is what the network path costs.
func runIngest(ctx context.Context, c *config) error {
	m, err := c.corpus()
	if err != nil {
		return err
	}
	files := filepath.Join(c.corpusDir(), "AWSLogs")
	if err := warm(files); err != nil {
		return err
	}
	bin, err := c.buildVigil(ctx)
	if err != nil {
		return err
	}
	var paths []string
	err = filepath.WalkDir(files, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			paths = append(paths, p)
		}
		return err
	})
	if err != nil {
		return err
	}
	c.logf("cutting the corpus into requests of %d records", c.batch)
	bodies, err := requestBodies(paths, c.batch)
	if err != nil {
		return err
	}
	var httpRuns, importRuns []ingestMeasure
	for i := range c.runs {
		sides := []func() (ingestMeasure, error){
			func() (ingestMeasure, error) { return c.ingestHTTP(ctx, bin, bodies) },
			func() (ingestMeasure, error) { return c.ingestImport(ctx, bin, files) },
		}
		if i%2 == 1 {
			slices.Reverse(sides)
		}
		for _, side := range sides {
			r, err := side()
			if err != nil {
				return err
			}
			if r.events != int64(m.Events) {
				return fmt.Errorf("%s stored %d events, want %d", r.name, r.events, m.Events)
			}
			c.logf("run %d: %s", i+1, r)
			if r.name == ingestHTTPName {
				httpRuns = append(httpRuns, r)
			} else {
				importRuns = append(importRuns, r)
			}
		}
	}
	fmt.Fprintf(c.out, "\nHTTP ingest against vigil import, %d CloudTrail events (%d files; %d requests of up to %d records, gzip NDJSON), %d runs each\n\n",
		m.Events, len(paths), len(bodies), c.batch, c.runs)
	fmt.Fprintln(c.out, "| side | acknowledged in | stored in | events/s acknowledged | events/s stored | ack p50 | ack p99 | ack max | 429s | peak RSS |")
	fmt.Fprintln(c.out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range append(httpRuns, importRuns...) {
		fmt.Fprintf(c.out, "| %s | %.1f s | %.1f s | %.0f | %.0f | %s | %s | %s | %d | %.0f MB |\n", r.name, r.elapsed.Seconds(), r.stored.Seconds(),
			r.rate(), float64(r.events)/r.stored.Seconds(), fmtLatency(r.p50), fmtLatency(r.p99), fmtLatency(r.max), r.busy, mb(r.peakRSS))
	}
	var ratios []float64
	for i := range min(len(httpRuns), len(importRuns)) {
		ratios = append(ratios, importRuns[i].stored.Seconds()/httpRuns[i].stored.Seconds())
	}
	fmt.Fprintf(c.out, "\nHTTP/import rate (until stored): %s\n", fmtRatios(ratios))
	return nil
}

const (
	ingestHTTPName   = "HTTP ingest (vigil serve)"
	ingestImportName = "vigil import"
)

type ingestMeasure struct {
	name          string
	events        int64
	elapsed       time.Duration // until the last event was acknowledged
	stored        time.Duration // until the store had every event and the process stopped
	p50, p99, max time.Duration
	busy          int64
	peakRSS       int64
}

func (r ingestMeasure) rate() float64 { return float64(r.events) / r.elapsed.Seconds() }

func (r ingestMeasure) String() string {
	return fmt.Sprintf("%-26s %7.1fs %8.0f events/s  p99 %s  rss %.0f MB", r.name, r.elapsed.Seconds(), r.rate(), fmtLatency(r.p99), mb(r.peakRSS))
}

func fmtLatency(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond))
}

// ingestHTTP starts a server on a fresh data directory and posts every
// file to it from several clients.
func (c *config) ingestHTTP(ctx context.Context, bin string, bodies []request) (ingestMeasure, error) {
	r := ingestMeasure{name: ingestHTTPName}
	data := filepath.Join(c.dir, "ingest-http")
	os.RemoveAll(data)
	defer os.RemoveAll(data)
	srv, err := startServer(ctx, bin, data)
	if err != nil {
		return r, err
	}
	defer srv.stop()
	stopRSS := srv.watchRSS(&r.peakRSS)

	const clients = 8
	work := make(chan request)
	var (
		mu        sync.Mutex
		latencies []time.Duration
		accepted  atomic.Int64
		busy      atomic.Int64
		firstErr  error
	)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	start := time.Now()
	if c.cpuprofile != "" {
		go srv.profile(ctx, c.cpuprofile, 20*time.Second, c.logf)
	}
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for req := range work {
				n, lat, err := postBatch(ctx, client, srv, req.body, req.id, &busy)
				accepted.Add(int64(n))
				mu.Lock()
				latencies = append(latencies, lat)
				mu.Unlock()
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for _, b := range bodies {
		work <- b
	}
	close(work)
	wg.Wait()
	r.elapsed = time.Since(start)
	stopRSS()
	if firstErr != nil {
		return r, firstErr
	}
	r.events, r.busy = accepted.Load(), busy.Load()
	slices.Sort(latencies)
	if n := len(latencies); n > 0 {
		r.p50, r.p99, r.max = latencies[n/2], latencies[min(n-1, n*99/100)], latencies[n-1]
	}
	// A graceful stop stores what the ledger holds before it returns.
	err = srv.stop()
	r.stored = time.Since(start)
	return r, err
}

// postBatch posts one file until the server acknowledges it, and returns
// the events it accepted and the latency of the acknowledged request.
func postBatch(ctx context.Context, client *http.Client, srv *server, body []byte, id string, busy *atomic.Int64) (int, time.Duration, error) {
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.base+"/api/v1/ingest?format=aws.cloudtrail", bytes.NewReader(body))
		if err != nil {
			return 0, 0, err
		}
		req.Header.Set("Authorization", "Bearer "+srv.token)
		req.Header.Set("Content-Encoding", "gzip")
		req.Header.Set(ingest.BatchHeader, id)
		t0 := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return 0, 0, fmt.Errorf("posting %s: %w", id, err)
		}
		var ir ingest.IngestResponse
		err = json.NewDecoder(resp.Body).Decode(&ir)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		lat := time.Since(t0)
		switch {
		case resp.StatusCode == http.StatusTooManyRequests:
			busy.Add(1)
			wait, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
			// Retry-After is whole seconds; a client that has many
			// batches to send retries sooner, which is the load that
			// matters here.
			time.Sleep(min(time.Duration(wait)*time.Second, 100*time.Millisecond))
			continue
		case resp.StatusCode != http.StatusOK || err != nil:
			return 0, 0, fmt.Errorf("posting %s: %s %s", id, resp.Status, ir.Error)
		}
		return ir.Accepted, lat, nil
	}
}

// ingestImport runs `vigil import` of the same files into a fresh data
// directory.
func (c *config) ingestImport(ctx context.Context, bin, files string) (ingestMeasure, error) {
	r := ingestMeasure{name: ingestImportName}
	data := filepath.Join(c.dir, "ingest-import")
	os.RemoveAll(data)
	defer os.RemoveAll(data)
	cmd := exec.CommandContext(ctx, bin, "import", "--data", data, "--format", "aws.cloudtrail", files)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return r, err
	}
	srv := &server{cmd: cmd}
	stopRSS := srv.watchRSS(&r.peakRSS)
	err := cmd.Wait()
	r.elapsed = time.Since(start)
	r.stored = r.elapsed
	stopRSS()
	if err != nil {
		return r, fmt.Errorf("vigil import: %w: %s", err, out.String())
	}
	// "imported N events, …"
	if _, err := fmt.Sscanf(lastLine(out.String(), "imported "), "imported %d events", &r.events); err != nil {
		return r, fmt.Errorf("vigil import said %q", out.String())
	}
	return r, nil
}

func lastLine(s, prefix string) string {
	sc := bufio.NewScanner(strings.NewReader(s))
	var last string
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), prefix) {
			last = sc.Text()
		}
	}
	return last
}

// A server is a running `vigil serve` (or any vigil process to watch).
type server struct {
	cmd         *exec.Cmd
	base, token string
	done        chan error
	stopped     bool
}

func startServer(ctx context.Context, bin, data string, flags ...string) (*server, error) {
	cmd := exec.CommandContext(ctx, bin, append([]string{"serve", "--data", data, "--listen", "127.0.0.1:0"}, flags...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{cmd: cmd, done: make(chan error, 1)}
	go func() { s.done <- cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		addr, err := os.ReadFile(filepath.Join(data, "serve.addr"))
		tok, terr := os.ReadFile(filepath.Join(data, "admin.token"))
		if err == nil && terr == nil && len(bytes.TrimSpace(addr)) > 0 && len(bytes.TrimSpace(tok)) > 0 {
			s.base, s.token = "http://"+strings.TrimSpace(string(addr)), strings.TrimSpace(string(tok))
			return s, nil
		}
		select {
		case err := <-s.done:
			return nil, fmt.Errorf("vigil serve exited: %v: %s", err, out.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, errors.New("vigil serve did not start in 30s")
		}
	}
}

// stop asks the server to shut down and waits for it.
func (s *server) stop() error {
	if s.stopped {
		return nil
	}
	s.stopped = true
	s.cmd.Process.Signal(os.Interrupt)
	select {
	case err := <-s.done:
		return err
	case <-time.After(10 * time.Minute):
		s.cmd.Process.Kill()
		return errors.New("vigil serve did not stop in 10 minutes")
	}
}

// watchRSS samples the process's resident set size until the returned
// function is called, and stores the largest seen (or the kernel's
// high-water mark, if larger) in peak.
func (s *server) watchRSS(peak *int64) (stop func()) {
	pid := s.cmd.Process.Pid
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			if rss, hwm := procRSS(pid); max(rss, hwm) > *peak {
				*peak = max(rss, hwm)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done); <-finished }
}

// procRSS reads VmRSS and VmHWM of a process, in bytes.
func procRSS(pid int) (rss, hwm int64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		var v *int64
		switch {
		case strings.HasPrefix(line, "VmRSS:"):
			v = &rss
		case strings.HasPrefix(line, "VmHWM:"):
			v = &hwm
		default:
			continue
		}
		f := strings.Fields(line)
		if len(f) >= 2 {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			*v = n << 10
		}
	}
	return rss, hwm
}

// A request is one body to post, with its batch id.
type request struct {
	id   string
	body []byte
}

// requestBodies cuts the corpus's CloudTrail files into gzip'd NDJSON
// bodies of up to n records each, as a shipper batching events would send
// them; built before the clock starts.
func requestBodies(paths []string, n int) ([]request, error) {
	var out []request
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		zr, err := gzip.NewReader(f)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		var file struct{ Records []json.RawMessage }
		err = json.NewDecoder(zr).Decode(&file)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		for i := 0; i < len(file.Records); i += n {
			var buf bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
			for _, r := range file.Records[i:min(i+n, len(file.Records))] {
				zw.Write(r)
				zw.Write([]byte{'\n'})
			}
			zw.Close()
			out = append(out, request{id: fmt.Sprintf("%s.%d", filepath.Base(p), i/n), body: buf.Bytes()})
		}
	}
	return out, nil
}

// profile writes a CPU profile of the server, taken over d, to path.
func (s *server) profile(ctx context.Context, path string, d time.Duration, logf func(string, ...any)) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", s.base, int(d.Seconds())), nil)
	if err != nil {
		logf("profile: %v", err)
		return
	}
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		logf("profile: %v", err)
		return
	}
	defer resp.Body.Close()
	f, err := os.Create(path)
	if err != nil {
		logf("profile: %v", err)
		return
	}
	defer f.Close()
	if _, err := io.Copy(f, resp.Body); err != nil {
		logf("profile: %v", err)
		return
	}
	logf("wrote a %s CPU profile of vigil serve to %s", d, path)
	// And what holds its memory, at that point of the load.
	req, _ = http.NewRequestWithContext(ctx, http.MethodGet, s.base+"/debug/pprof/heap", nil)
	req.Header.Set("Authorization", "Bearer "+s.token)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		defer resp.Body.Close()
		if f, err := os.Create(path + ".heap"); err == nil {
			io.Copy(f, resp.Body)
			f.Close()
		}
	}
}

// buildVigil builds the vigil command into the bench directory, for the
// benchmarks that run it as a user would.
func (c *config) buildVigil(ctx context.Context) (string, error) {
	bin := filepath.Join(c.dir, "vigil-bench-bin")
	c.logf("building %s", bin)
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/vigilsec/vigil/cmd/vigil").CombinedOutput(); err != nil {
		return "", fmt.Errorf("building vigil: %w: %s", err, out)
	}
	return bin, nil
}
