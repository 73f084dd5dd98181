package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/klauspost/compress/zstd"
)

const stratus = "../../shared/testdata/stratus-red-team-detonation-logs/detonation-logs/"

// recordingAcceptor stores nothing: it records the batches it is given,
// or answers err.
type recordingAcceptor struct {
	mu      sync.Mutex
	batches []Batch
	err     error
}

func (a *recordingAcceptor) Accept(ctx context.Context, b Batch) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.err != nil {
		return a.err
	}
	a.batches = append(a.batches, b)
	return nil
}

func zst(t *testing.T, b []byte) []byte {
	w, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	return w.EncodeAll(b, nil)
}

func fixture(t *testing.T, name string) []byte {
	b, err := os.ReadFile(stratus + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestHTTPIngest(t *testing.T) {
	array := fixture(t, "aws.execution.ssm-send-command.json")
	var recs []json.RawMessage
	if err := json.Unmarshal(array, &recs); err != nil {
		t.Fatal(err)
	}
	records, _ := json.Marshal(map[string]any{"Records": recs})
	var lines bytes.Buffer
	for _, r := range recs {
		var c bytes.Buffer
		json.Compact(&c, r)
		lines.Write(c.Bytes())
		lines.WriteByte('\n')
	}
	n := len(recs)
	huge := append([]byte(`{"eventVersion":"1.08","eventName":"`), bytes.Repeat([]byte("x"), 2<<20)...)
	huge = append(huge, "\"}\n"...)
	nested := strings.Repeat("[", 100000) + strings.Repeat("]", 100000) + "\n"

	for _, tc := range []struct {
		name        string
		body        []byte
		query       string
		header      map[string]string
		opts        HTTPOptions
		status      int
		accepted    int
		quarantined int
		errHas      string
	}{
		{name: "json array", body: array, query: "format=aws.cloudtrail", status: 200, accepted: n},
		{name: "Records wrapper, detected", body: records, status: 200, accepted: n},
		{name: "json lines", body: lines.Bytes(), query: "format=aws.cloudtrail", status: 200, accepted: n},
		{name: "gzip, detected", body: gz(t, string(records)), status: 200, accepted: n},
		{name: "gzip by Content-Encoding", body: gz(t, string(records)), header: map[string]string{"Content-Encoding": "gzip"}, status: 200, accepted: n},
		{name: "zstd by Content-Encoding", body: zst(t, lines.Bytes()), header: map[string]string{"Content-Encoding": "zstd", "X-Vigil-Format": "aws.cloudtrail"}, status: 200, accepted: n},
		{name: "zstd, detected", body: zst(t, records), status: 200, accepted: n},
		{name: "malformed line quarantined", body: append([]byte("{\"eventName\": oops\n"), lines.Bytes()...), query: "format=aws.cloudtrail", status: 200, accepted: n, quarantined: 1},
		{name: "invalid UTF-8 quarantined", body: append([]byte("{\"eventName\":\"\xff\xfe\"}\n"), lines.Bytes()...), query: "format=aws.cloudtrail", status: 200, accepted: n, quarantined: 1},
		{name: "line over MaxLine quarantined", body: append(huge, lines.Bytes()...), query: "format=aws.cloudtrail", opts: HTTPOptions{MaxLine: 1 << 20}, status: 200, accepted: n, quarantined: 1},
		{name: "deeply nested JSON quarantined", body: []byte(nested), query: "format=json", status: 200, quarantined: 1},
		{name: "truncated gzip", body: gz(t, string(records))[:200], status: 400, errHas: "reading the body"},
		{name: "bad gzip header", body: []byte("not gzip"), header: map[string]string{"Content-Encoding": "gzip"}, status: 400, errHas: "gzip"},
		{name: "unknown encoding", body: records, header: map[string]string{"Content-Encoding": "br"}, status: 400, errHas: "Content-Encoding"},
		{name: "unknown format", body: records, query: "format=nope", status: 400, errHas: "unknown format"},
		{name: "unrecognisable input", body: []byte("\x00\x01\x02\x03 binary"), status: 400},
		{name: "body over MaxBody", body: records, opts: HTTPOptions{MaxBody: 100}, status: 413, errHas: "larger than"},
		{name: "compression bomb", body: zst(t, bytes.Repeat([]byte("{}\n"), 1<<20)), query: "format=json", opts: HTTPOptions{MaxBody: 1 << 20, MaxDecoded: 64 << 10, Batch: 1 << 20}, status: 413, errHas: "decompressed"},
		{name: "too many records", body: lines.Bytes(), query: "format=aws.cloudtrail", opts: HTTPOptions{MaxEvents: 2, Batch: 1}, status: 413, accepted: 2, errHas: "more than 2 records"},
		{name: "bad batch id", body: records, header: map[string]string{BatchHeader: "a b"}, status: 400, errHas: "batch id"},
		{name: "GET", status: 405},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := &recordingAcceptor{}
			opts := tc.opts
			opts.Identify = func(*http.Request) (string, string, error) { return "team-a", "ci", nil }
			srv := httptest.NewServer(HTTPHandler(a, opts))
			defer srv.Close()
			method := http.MethodPost
			if tc.name == "GET" {
				method = http.MethodGet
			}
			req, _ := http.NewRequest(method, srv.URL+"/?"+tc.query, bytes.NewReader(tc.body))
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var ir IngestResponse
			if err := json.NewDecoder(resp.Body).Decode(&ir); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.status || ir.Accepted != tc.accepted || ir.Quarantined != tc.quarantined || !strings.Contains(ir.Error, tc.errHas) {
				t.Fatalf("got %d %+v; want %d, %d accepted, %d quarantined, error containing %q", resp.StatusCode, ir, tc.status, tc.accepted, tc.quarantined, tc.errHas)
			}
			events := 0
			for _, b := range a.batches {
				events += len(b.Events)
				if b.Source != "http/ci" {
					t.Errorf("batch source %q, want http/ci", b.Source)
				}
				for _, e := range b.Events {
					if e.Tenant != "team-a" {
						t.Fatalf("event of tenant %q, want team-a", e.Tenant)
					}
				}
			}
			if events != tc.accepted {
				t.Errorf("acceptor got %d events, the answer says %d", events, tc.accepted)
			}
		})
	}
}

func TestHTTPIngestRefusals(t *testing.T) {
	body := fixture(t, "aws.defense-evasion.cloudtrail-delete.json")
	post := func(h http.Handler) (*http.Response, IngestResponse) {
		srv := httptest.NewServer(h)
		defer srv.Close()
		resp, err := http.Post(srv.URL, "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var ir IngestResponse
		json.NewDecoder(resp.Body).Decode(&ir)
		return resp, ir
	}
	ok := func(*http.Request) (string, string, error) { return "t", "ci", nil }

	resp, ir := post(HTTPHandler(&recordingAcceptor{err: ErrBusy}, HTTPOptions{Identify: ok}))
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "1" || ir.Error == "" {
		t.Errorf("busy: %d Retry-After %q %+v; want 429 with Retry-After 1", resp.StatusCode, resp.Header.Get("Retry-After"), ir)
	}
	resp, _ = post(HTTPHandler(&recordingAcceptor{err: errors.New("ledger: sync: input/output error")}, HTTPOptions{Identify: ok}))
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("ledger failure: %d, want 503", resp.StatusCode)
	}
	deny := func(*http.Request) (string, string, error) { return "", "", errors.New("this token may not ingest") }
	a := &recordingAcceptor{}
	resp, _ = post(HTTPHandler(a, HTTPOptions{Identify: deny}))
	if resp.StatusCode != http.StatusForbidden || len(a.batches) != 0 {
		t.Errorf("denied: %d with %d batches accepted; want 403 and none", resp.StatusCode, len(a.batches))
	}
}

// TestHTTPIngestRetry posts the same request twice with one batch id,
// through a real Intake: the events are stored once.
func TestHTTPIngestRetry(t *testing.T) {
	p := openPipeline(t, t.TempDir())
	in, err := NewIntake(p, IntakeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	stop := runIntake(t, in)
	srv := httptest.NewServer(HTTPHandler(in, HTTPOptions{
		Batch:    7, // several chunks per request
		Identify: func(*http.Request) (string, string, error) { return "team-a", "ci", nil },
	}))
	defer srv.Close()
	body := fixture(t, "aws.credential-access.ec2-get-password-data.json")
	var first IngestResponse
	for i := range 3 {
		req, _ := http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(body))
		req.Header.Set(BatchHeader, "run-42")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var ir IngestResponse
		json.NewDecoder(resp.Body).Decode(&ir)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || ir.Accepted == 0 {
			t.Fatalf("post %d: %d %+v", i, resp.StatusCode, ir)
		}
		if i == 0 {
			first = ir
		} else if ir != first {
			t.Errorf("retry answered %+v, the first post %+v", ir, first)
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got := len(storedSeqs(t, p)); got != first.Accepted {
		t.Fatalf("store holds %d events after three posts of one batch, want %d", got, first.Accepted)
	}
}
