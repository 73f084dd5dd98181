package monitor

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/client_golang/exp/api/remote"
	writev2 "github.com/prometheus/client_golang/exp/api/remote/genproto/v2"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/vigilsec/vigil/metric"
)

// memSamples is a SampleAppender in memory.
type memSamples struct {
	mu     sync.Mutex
	series map[string][]metric.Series // by tenant
	fail   bool
}

func (m *memSamples) AppendSamples(_ context.Context, tenant string, series []metric.Series) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail {
		return errors.New("disk full")
	}
	if m.series == nil {
		m.series = map[string][]metric.Series{}
	}
	m.series[tenant] = append(m.series[tenant], series...)
	return nil
}

// writeServer runs the handler on loopback for tenant acme.
func writeServer(t *testing.T) (*memSamples, *httptest.Server) {
	st := &memSamples{}
	srv := httptest.NewServer(RemoteWriteHandler(st, func(r *http.Request) (string, error) {
		if r.Header.Get("Authorization") == "Bearer nobody" {
			return "", errors.New("this token may not write metrics")
		}
		return "acme", nil
	}, slog.New(slog.DiscardHandler)))
	t.Cleanup(srv.Close)
	return st, srv
}

// TestRemoteWriteV2Client: Prometheus' own remote-write client
// (client_golang's exp/api/remote) writes a 2.0 request; the series
// arrive with their names, labels and samples, and the client reads the
// counts it asks for.
func TestRemoteWriteV2Client(t *testing.T) {
	st, srv := writeServer(t)
	api, err := remote.NewAPI(srv.URL, remote.WithAPIPath("/api/v1/write"), remote.WithAPIHTTPClient(srv.Client()))
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 5, 3, 0, 0, 0, time.UTC)
	req := &writev2.Request{
		Symbols: []string{"", "__name__", "network_out_bytes", "account", "111122223333", "instance", "i-web", "cpu_percent"},
		Timeseries: []*writev2.TimeSeries{
			{LabelsRefs: []uint32{1, 2, 3, 4, 5, 6}, Samples: []*writev2.Sample{{Value: 2e8, Timestamp: t0.UnixMilli()}, {Value: 3e8, Timestamp: t0.Add(time.Minute).UnixMilli()}}},
			{LabelsRefs: []uint32{1, 7, 5, 6}, Samples: []*writev2.Sample{{Value: 97.5, Timestamp: t0.UnixMilli()}}},
		},
	}
	stats, err := api.Write(context.Background(), remote.WriteV2MessageType, req)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Samples != 3 {
		t.Errorf("the client read %d samples written, want 3", stats.Samples)
	}
	got := st.series["acme"]
	if len(got) != 2 {
		t.Fatalf("stored %+v", st.series)
	}
	out := got[0]
	if out.Metric != "network_out_bytes" || out.Labels.String() != `{account="111122223333", instance="i-web"}` ||
		len(out.Samples) != 2 || out.Samples[1].Value != 3e8 || !out.Samples[1].Time.Equal(t0.Add(time.Minute)) {
		t.Errorf("first series %+v", out)
	}
	if got[1].Metric != "cpu_percent" || got[1].Samples[0].Value != 97.5 {
		t.Errorf("second series %+v", got[1])
	}
}

// encodeV1 encodes a 1.0 WriteRequest as the spec gives it.
func encodeV1(series ...metric.Series) []byte {
	var req []byte
	for _, s := range series {
		var ts []byte
		for _, l := range append(metric.Labels{{Name: "__name__", Value: s.Metric}}, s.Labels...) {
			var lb []byte
			lb = protowire.AppendTag(lb, 1, protowire.BytesType)
			lb = protowire.AppendString(lb, l.Name)
			lb = protowire.AppendTag(lb, 2, protowire.BytesType)
			lb = protowire.AppendString(lb, l.Value)
			ts = protowire.AppendTag(ts, 1, protowire.BytesType)
			ts = protowire.AppendBytes(ts, lb)
		}
		for _, x := range s.Samples {
			var sb []byte
			sb = protowire.AppendTag(sb, 1, protowire.Fixed64Type)
			sb = protowire.AppendFixed64(sb, math.Float64bits(x.Value))
			sb = protowire.AppendTag(sb, 2, protowire.VarintType)
			sb = protowire.AppendVarint(sb, uint64(x.Time.UnixMilli()))
			ts = protowire.AppendTag(ts, 2, protowire.BytesType)
			ts = protowire.AppendBytes(ts, sb)
		}
		req = protowire.AppendTag(req, 1, protowire.BytesType)
		req = protowire.AppendBytes(req, ts)
	}
	return snappy.Encode(nil, req)
}

// TestRemoteWriteHandler: a 1.0 request as Prometheus sends it, and the
// answers to what is not remote write, to a caller that may not write,
// and to a store that fails.
func TestRemoteWriteHandler(t *testing.T) {
	st, srv := writeServer(t)
	t0 := time.Date(2026, 1, 5, 3, 0, 0, 0, time.UTC)
	v1 := encodeV1(metric.Series{Metric: "up", Labels: metric.Labels{{Name: "job", Value: "web"}}, Samples: []metric.Sample{{Time: t0, Value: 1}}},
		metric.Series{Labels: metric.Labels{{Name: "job", Value: "nameless"}}, Samples: []metric.Sample{{Time: t0, Value: 1}}})
	post := func(contentType, encoding, auth string, body []byte) (int, string) {
		t.Helper()
		return postTo(t, srv, contentType, encoding, auth, body)
	}
	if code, body := post("application/x-protobuf", "snappy", "", v1); code != http.StatusNoContent {
		t.Fatalf("1.0: %d %s", code, body)
	}
	if got := st.series["acme"]; len(got) != 1 || got[0].Metric != "up" || got[0].Labels.Get("job") != "web" {
		t.Errorf("1.0 stored %+v (the series without a name is skipped)", got)
	}
	for _, tc := range []struct {
		name, contentType, encoding, auth string
		body                              []byte
		code                              int
		says                              string
	}{
		{"JSON", "application/json", "", "", v1, http.StatusUnsupportedMediaType, "not a remote-write message"},
		{"another proto", "application/x-protobuf;proto=io.prometheus.write.v3.Request", "", "", v1, http.StatusUnsupportedMediaType, "not a remote-write message"},
		{"gzip", "application/x-protobuf", "gzip", "", v1, http.StatusUnsupportedMediaType, "remote write is snappy"},
		{"not snappy", "application/x-protobuf", "snappy", "", []byte("\xff\xff\xff\xff\xff garbage"), http.StatusBadRequest, "snappy"},
		{"truncated", "application/x-protobuf", "snappy", "", snappy.Encode(nil, []byte{0x0a, 0x20, 0x0a}), http.StatusBadRequest, "truncated or malformed"},
		{"a caller that may not write", "application/x-protobuf", "snappy", "Bearer nobody", v1, http.StatusForbidden, "may not write metrics"},
	} {
		if code, body := post(tc.contentType, tc.encoding, tc.auth, tc.body); code != tc.code || !strings.Contains(body, tc.says) {
			t.Errorf("%s: %d %q, want %d saying %q", tc.name, code, body, tc.code, tc.says)
		}
	}
	st.fail = true
	if code, _ := post("application/x-protobuf", "snappy", "", v1); code != http.StatusInternalServerError {
		t.Errorf("a failing store: %d, want 500 (the sender retries)", code)
	}
}

// TestDecodeRemoteWriteV2Refs: a 2.0 series whose labels point past the
// symbols, or come in an odd number, is skipped; the symbols may follow
// the series.
func TestDecodeRemoteWriteV2Refs(t *testing.T) {
	req := &writev2.Request{
		Timeseries: []*writev2.TimeSeries{
			{LabelsRefs: []uint32{1, 2}, Samples: []*writev2.Sample{{Value: 1, Timestamp: 1}}},
			{LabelsRefs: []uint32{1, 9}, Samples: []*writev2.Sample{{Value: 2, Timestamp: 1}}},
			{LabelsRefs: []uint32{1}, Samples: []*writev2.Sample{{Value: 3, Timestamp: 1}}},
		},
		Symbols: []string{"", "__name__", "up"},
	}
	b, err := req.MarshalVT()
	if err != nil {
		t.Fatal(err)
	}
	series, skipped, err := DecodeRemoteWrite(RemoteWriteV2, snappy.Encode(nil, b))
	if err != nil || skipped != 2 || len(series) != 1 || series[0].Metric != "up" {
		t.Errorf("series %+v, skipped %d, %v", series, skipped, err)
	}
}

// FuzzDecodeRemoteWrite: any bytes, as either version, give series or an
// error, never a panic; compressed or not.
func FuzzDecodeRemoteWrite(f *testing.F) {
	t0 := time.Date(2026, 1, 5, 3, 0, 0, 0, time.UTC)
	f.Add(encodeV1(metric.Series{Metric: "up", Labels: metric.Labels{{Name: "job", Value: "web"}}, Samples: []metric.Sample{{Time: t0, Value: 1}}}), false)
	v2, _ := (&writev2.Request{Symbols: []string{"", "__name__", "up"}, Timeseries: []*writev2.TimeSeries{{LabelsRefs: []uint32{1, 2}, Samples: []*writev2.Sample{{Value: 1}}}}}).MarshalVT()
	f.Add(v2, true)
	f.Add([]byte{0x0a, 0x20, 0x0a}, false)
	f.Fuzz(func(t *testing.T, msg []byte, second bool) {
		version := RemoteWriteV1
		if second {
			version = RemoteWriteV2
		}
		for _, body := range [][]byte{msg, snappy.Encode(nil, msg)} {
			series, _, err := DecodeRemoteWrite(version, body)
			if err != nil && series != nil {
				t.Errorf("series with an error: %+v", series)
			}
			for _, s := range series {
				if s.Metric == "" {
					t.Errorf("a series without a name: %+v", s)
				}
			}
		}
	})
}

// postTo posts a body to a test server with the headers given (none
// when empty), and returns the answer's status and body.
func postTo(t *testing.T, srv *httptest.Server, contentType, encoding, auth string, body []byte) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(body))
	for k, v := range map[string]string{"Content-Type": contentType, "Content-Encoding": encoding, "Authorization": auth} {
		if v != "" {
			req.Header.Set(k, v)
		}
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	return resp.StatusCode, string(answer)
}
