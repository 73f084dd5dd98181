package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigilsec/vigil/ingest"
	"github.com/vigilsec/vigil/notify"
)

// needleRule matches the needle events, and only them; the route sends
// its alerts, and no others, to the bench's webhook.
const needleRule = `title: Bench Needle
id: 6f1c2b7e-0d3a-4c5b-9e8f-a1b2c3d4e5f6
status: stable
description: The needle events of go run ./bench alert.
logsource: {product: aws, service: cloudtrail}
detection:
    selection:
        eventName: VigilBenchNeedle
    condition: selection
level: high
`

// runAlert measures how long an alert takes to reach the on-call
// person's tools: from vigil serve acknowledging an event a rule matches
// to a webhook receiver on loopback getting the alert's notification.
// The needles are posted one at a time, each by a new actor (so each
// makes a new alert), while other clients keep a background ingest load
// of -rate events/s; the peer, in the same run, is the same needles with
// no load.
func runAlert(ctx context.Context, c *config) error {
	m, err := c.corpus()
	if err != nil {
		return err
	}
	files := filepath.Join(c.corpusDir(), "AWSLogs")
	bin, err := c.buildVigil(ctx)
	if err != nil {
		return err
	}
	paths, _, err := ingest.Files([]string{files})
	if err != nil {
		return err
	}
	bodies, err := requestBodies(paths, c.batch)
	if err != nil {
		return err
	}
	var loaded, idle []alertMeasure
	for i := range c.runs {
		sides := []bool{true, false}
		if i%2 == 1 {
			slices.Reverse(sides)
		}
		for _, load := range sides {
			r, err := c.alertRun(ctx, bin, bodies, load)
			if err != nil {
				return err
			}
			c.logf("run %d: %s", i+1, r)
			if load {
				loaded = append(loaded, r)
			} else {
				idle = append(idle, r)
			}
		}
	}
	fmt.Fprintf(c.out, "\nalert latency, event acknowledged → webhook received, %d needles a run, background load from a corpus of %d CloudTrail events, %d runs each\n\n", c.needles, m.Events, c.runs)
	if c.playbook {
		fmt.Fprintln(c.out, "| side | background events/s | notified p50 | p99 | max | playbook acted p50 | p99 | max |")
		fmt.Fprintln(c.out, "|---|---:|---:|---:|---:|---:|---:|---:|")
		for _, r := range append(loaded, idle...) {
			fmt.Fprintf(c.out, "| %s | %.0f | %s | %s | %s | %s | %s | %s |\n", r.name, r.rate, fmtLatency(r.p50), fmtLatency(r.p99), fmtLatency(r.max),
				fmtLatency(r.act.p50), fmtLatency(r.act.p99), fmtLatency(r.act.max))
		}
	} else {
		fmt.Fprintln(c.out, "| side | background events/s | p50 | p99 | max |")
		fmt.Fprintln(c.out, "|---|---:|---:|---:|---:|")
		for _, r := range append(loaded, idle...) {
			fmt.Fprintf(c.out, "| %s | %.0f | %s | %s | %s |\n", r.name, r.rate, fmtLatency(r.p50), fmtLatency(r.p99), fmtLatency(r.max))
		}
	}
	var p99s []float64
	for _, r := range loaded {
		p99s = append(p99s, r.p99.Seconds()*1000)
	}
	fmt.Fprintf(c.out, "\np99 under load: %s ms. Target: under 1,000 ms at %d events/s\n", fmtInts(p99s), c.rate)
	return nil
}

type alertMeasure struct {
	name          string
	rate          float64 // background events acknowledged a second
	p50, p99, max time.Duration
	// act is the playbook's latency, with -playbook: event acknowledged
	// to the playbook's call received.
	act struct{ p50, p99, max time.Duration }
}

func (r alertMeasure) String() string {
	s := fmt.Sprintf("%-22s background %6.0f events/s  p50 %s  p99 %s  max %s", r.name, r.rate, fmtLatency(r.p50), fmtLatency(r.p99), fmtLatency(r.max))
	if r.act.max > 0 {
		s += fmt.Sprintf("  playbook p50 %s  p99 %s  max %s", fmtLatency(r.act.p50), fmtLatency(r.act.p99), fmtLatency(r.act.max))
	}
	return s
}

// actPlaybook is the playbook of go run ./bench alert -playbook: on each
// needle's alert, at once, an http step calls the bench's receiver with
// the alert's actor, as a playbook calls a cloud's API to contain.
const actPlaybook = `name: bench act
mode: auto
trigger: {rules: [6f1c2b7e-0d3a-4c5b-9e8f-a1b2c3d4e5f6]}
steps:
  - name: act
    action: http
    with: {url: "%s", body: '{"actor": "{{ .Facts.actor }}"}'}
`

// percentiles returns the median, the 99th percentile and the maximum
// of lat, which it sorts.
func percentiles(lat []time.Duration) (p50, p99, max time.Duration) {
	slices.Sort(lat)
	n := len(lat)
	return lat[n/2], lat[min(n-1, n*99/100)], lat[n-1]
}

// alertRun starts a server on a fresh data directory whose config routes
// the needle rule's alerts to a local webhook, and times the needles.
func (c *config) alertRun(ctx context.Context, bin string, bodies []request, load bool) (alertMeasure, error) {
	r := alertMeasure{name: "needles, idle"}
	if load {
		r.name = "needles under load"
	}
	data := filepath.Join(c.dir, "alert-bench")
	os.RemoveAll(data)
	defer os.RemoveAll(data)
	if err := os.MkdirAll(filepath.Join(data, "rules"), 0o700); err != nil {
		return r, err
	}
	if err := os.WriteFile(filepath.Join(data, "rules", "needle.yml"), []byte(needleRule), 0o600); err != nil {
		return r, err
	}

	// The receiver: when each needle's alert arrived, and with
	// -playbook when its playbook's call did, by its actor.
	var (
		mu      sync.Mutex
		arrived = map[string]time.Time{}
		acted   = map[string]time.Time{}
		got     = make(chan struct{}, 1)
	)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return r, err
	}
	hook := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		at := time.Now()
		if req.URL.Path == "/act" {
			var b struct{ Actor string }
			if err := json.NewDecoder(req.Body).Decode(&b); err == nil {
				mu.Lock()
				acted[b.Actor] = at
				mu.Unlock()
				select {
				case got <- struct{}{}:
				default:
				}
			}
			return
		}
		var b notify.WebhookBody
		if err := json.NewDecoder(req.Body).Decode(&b); err == nil && b.Action == notify.Trigger {
			mu.Lock()
			arrived[b.Fields["actor"]] = at
			mu.Unlock()
			select {
			case got <- struct{}{}:
			default:
			}
		}
	})}
	go hook.Serve(ln)
	defer hook.Close()
	conf := fmt.Sprintf("detect:\n  rules: [%q]\nnotify:\n  channels:\n    - {name: bench, type: webhook, url: %q}\n  routes:\n    - {rules: [6f1c2b7e-0d3a-4c5b-9e8f-a1b2c3d4e5f6], channels: [bench]}\n",
		filepath.Join(data, "rules"), "http://"+ln.Addr().String()+"/hook")
	if c.playbook {
		books := filepath.Join(data, "playbooks")
		if err := os.MkdirAll(books, 0o700); err != nil {
			return r, err
		}
		pb := fmt.Sprintf(actPlaybook, "http://"+ln.Addr().String()+"/act")
		if err := os.WriteFile(filepath.Join(books, "act.yml"), []byte(pb), 0o600); err != nil {
			return r, err
		}
		conf += fmt.Sprintf("playbooks:\n  dir: %q\n", books)
	}
	if err := os.WriteFile(filepath.Join(data, "vigil.yaml"), []byte(conf), 0o600); err != nil {
		return r, err
	}
	srv, err := startServer(ctx, bin, data)
	if err != nil {
		return r, err
	}
	defer srv.stop()

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	loadCtx, stopLoad := context.WithCancel(ctx)
	var (
		accepted atomic.Int64
		loadErr  error
		loadDone = make(chan struct{})
	)
	start := time.Now()
	if load {
		go func() {
			defer close(loadDone)
			loadErr = c.background(loadCtx, client, srv, bodies, &accepted)
		}()
		time.Sleep(2 * time.Second) // let the load settle
	} else {
		close(loadDone)
	}

	var lat, actLat []time.Duration
	for i := range c.needles {
		actor := fmt.Sprintf("needle-%d-%d", time.Now().UnixNano(), i)
		acked, err := postNeedle(ctx, client, srv, actor)
		if err != nil {
			stopLoad()
			return r, err
		}
		deadline := time.After(30 * time.Second)
	wait:
		for {
			mu.Lock()
			at, ok := arrived[actor]
			actAt, didAct := acted[actor]
			mu.Unlock()
			if ok && (didAct || !c.playbook) {
				lat = append(lat, at.Sub(acked))
				if didAct {
					actLat = append(actLat, actAt.Sub(acked))
				}
				break
			}
			select {
			case <-got:
			case <-time.After(10 * time.Millisecond):
			case <-deadline:
				stopLoad()
				return r, fmt.Errorf("needle %d: no notification (or playbook call, with -playbook) in 30s", i)
			case <-ctx.Done():
				stopLoad()
				return r, ctx.Err()
			}
			continue wait
		}
		time.Sleep(100 * time.Millisecond)
	}
	stopLoad()
	<-loadDone
	if loadErr != nil && !errors.Is(loadErr, context.Canceled) {
		return r, loadErr
	}
	r.rate = float64(accepted.Load()) / time.Since(start).Seconds()
	r.p50, r.p99, r.max = percentiles(lat)
	if len(actLat) > 0 {
		r.act.p50, r.act.p99, r.act.max = percentiles(actLat)
	}
	return r, nil
}

// background posts the corpus's batches, over and over (with new batch
// ids), at about c.rate events a second from four clients, until ctx
// ends.
func (c *config) background(ctx context.Context, client *http.Client, srv *server, bodies []request, accepted *atomic.Int64) error {
	perBatch := c.batch
	every := time.Duration(float64(time.Second) * float64(perBatch) / float64(c.rate))
	work := make(chan request)
	errs := make(chan error, 4)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var busy atomic.Int64
			for req := range work {
				n, _, err := postBatch(ctx, client, srv, req.body, req.id, &busy)
				if err != nil {
					if ctx.Err() == nil {
						errs <- err
					}
					return
				}
				accepted.Add(int64(n))
			}
		}()
	}
	t := time.NewTicker(every)
	defer t.Stop()
	defer func() { close(work); wg.Wait() }()
	for round := 0; ; round++ {
		for _, b := range bodies {
			select {
			case <-t.C:
			case <-ctx.Done():
				return ctx.Err()
			case err := <-errs:
				return err
			}
			select {
			case work <- request{id: fmt.Sprintf("%s-%d", b.id, round), body: b.body}:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
}

// postNeedle posts one CloudTrail record the needle rule matches, by a
// new actor, and returns when the server acknowledged it.
func postNeedle(ctx context.Context, client *http.Client, srv *server, actor string) (time.Time, error) {
	rec := map[string]any{
		"eventVersion": "1.08", "eventTime": time.Now().UTC().Format(time.RFC3339), "eventSource": "iam.amazonaws.com",
		"eventName": "VigilBenchNeedle", "awsRegion": "us-east-1", "sourceIPAddress": "198.51.100.7", "userAgent": "bench",
		"eventID": actor, "eventType": "AwsApiCall", "recipientAccountId": "111122223333",
		"userIdentity": map[string]any{"type": "IAMUser", "userName": actor, "arn": "arn:aws:iam::111122223333:user/" + actor, "accountId": "111122223333"},
	}
	body, _ := json.Marshal(rec)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.base+"/api/v1/ingest?format=aws.cloudtrail", bytes.NewReader(body))
	if err != nil {
		return time.Time{}, err
	}
	req.Header.Set("Authorization", "Bearer "+srv.token)
	for {
		resp, err := client.Do(req)
		if err != nil {
			return time.Time{}, fmt.Errorf("posting a needle: %w", err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		acked := time.Now()
		switch resp.StatusCode {
		case http.StatusOK:
			return acked, nil
		case http.StatusTooManyRequests:
			time.Sleep(20 * time.Millisecond)
			req.Body = io.NopCloser(bytes.NewReader(body))
			continue
		}
		return time.Time{}, fmt.Errorf("posting a needle: %s", strings.TrimSpace(resp.Status))
	}
}
