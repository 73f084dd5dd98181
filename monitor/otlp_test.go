package monitor

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	otelmetric "go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/vigilsec/vigil/metric"
)

// TestOTLPSDK: the OpenTelemetry Go SDK's OTLP/HTTP exporter sends a
// gauge, a counter and a histogram, compressed and not; they arrive as
// series labelled with the resource's attributes and the points'.
func TestOTLPSDK(t *testing.T) {
	for _, tc := range []struct {
		name        string
		compression otlpmetrichttp.Compression
	}{{"uncompressed", otlpmetrichttp.NoCompression}, {"gzip", otlpmetrichttp.GzipCompression}} {
		compression := tc.name
		st := &memSamples{}
		srv := httptest.NewServer(OTLPHandler(st, func(*http.Request) (string, error) { return "acme", nil }, slog.New(slog.DiscardHandler)))
		ctx := context.Background()
		exp, err := otlpmetrichttp.New(ctx, otlpmetrichttp.WithEndpointURL(srv.URL+"/v1/metrics"), otlpmetrichttp.WithCompression(tc.compression))
		if err != nil {
			t.Fatal(err)
		}
		reader := sdkmetric.NewManualReader()
		res := resource.NewSchemaless(attribute.String("host.name", "web-1"), attribute.String("cloud.account.id", "111122223333"))
		provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader), sdkmetric.WithResource(res))
		meter := provider.Meter("vigil-test")
		cpu, _ := meter.Float64Gauge("system.cpu.utilization")
		cpu.Record(ctx, 0.97, metricAttrs("cpu", "0"))
		out, _ := meter.Int64Counter("network.io")
		out.Add(ctx, 2e8, metricAttrs("direction", "transmit"))
		lat, _ := meter.Float64Histogram("http.server.request.duration")
		lat.Record(ctx, 0.25)
		lat.Record(ctx, 0.75)

		var rm metricdata.ResourceMetrics
		if err := reader.Collect(ctx, &rm); err != nil {
			t.Fatal(err)
		}
		if err := exp.Export(ctx, &rm); err != nil {
			t.Fatalf("%s: %v", compression, err)
		}
		srv.Close()

		got := map[string]metric.Series{}
		for _, s := range st.series["acme"] {
			got[s.Metric] = s
		}
		check := func(name string, value float64, labels string) {
			t.Helper()
			s, ok := got[name]
			switch {
			case !ok:
				t.Errorf("%s: no %s among %v", compression, name, got)
			case len(s.Samples) != 1 || s.Samples[0].Value != value || time.Since(s.Samples[0].Time) > time.Minute:
				t.Errorf("%s: %s samples %+v, want %v now", compression, name, s.Samples, value)
			case s.Labels.String() != labels:
				t.Errorf("%s: %s labels %s, want %s", compression, name, s.Labels, labels)
			}
		}
		resLabels := `cloud.account.id="111122223333", host.name="web-1"`
		check("system.cpu.utilization", 0.97, `{cloud.account.id="111122223333", cpu="0", host.name="web-1"}`)
		check("network.io", 2e8, `{cloud.account.id="111122223333", direction="transmit", host.name="web-1"}`)
		check("http.server.request.duration_count", 2, "{"+resLabels+"}")
		check("http.server.request.duration_sum", 1, "{"+resLabels+"}")
	}
}

func metricAttrs(k, v string) otelmetric.MeasurementOption {
	return otelmetric.WithAttributes(attribute.String(k, v))
}

// TestOTLPHandler: what is not OTLP in protobuf is refused, as is a
// caller that may not write, and a store that fails asks for a retry.
func TestOTLPHandler(t *testing.T) {
	st := &memSamples{}
	srv := httptest.NewServer(OTLPHandler(st, func(r *http.Request) (string, error) {
		if r.Header.Get("Authorization") != "" {
			return "", http.ErrNoCookie
		}
		return "acme", nil
	}, slog.New(slog.DiscardHandler)))
	defer srv.Close()
	post := func(contentType, encoding, auth string, body []byte) int {
		t.Helper()
		code, _ := postTo(t, srv, contentType, encoding, auth, body)
		return code
	}
	for _, tc := range []struct {
		name, contentType, encoding, auth string
		body                              []byte
		code                              int
	}{
		{"empty", "application/x-protobuf", "", "", nil, http.StatusOK},
		{"JSON, empty", "application/json", "", "", []byte("{}"), http.StatusOK},
		{"JSON, broken", "application/json", "", "", []byte("{"), http.StatusBadRequest},
		{"XML", "application/xml", "", "", []byte("<x/>"), http.StatusUnsupportedMediaType},
		{"brotli", "application/x-protobuf", "br", "", nil, http.StatusUnsupportedMediaType},
		{"not gzip", "application/x-protobuf", "gzip", "", []byte("plain"), http.StatusBadRequest},
		{"truncated", "application/x-protobuf", "", "", []byte{0x0a, 0x20, 0x0a}, http.StatusBadRequest},
		{"another tenant's token", "application/x-protobuf", "", "Bearer x", nil, http.StatusForbidden},
	} {
		if code := post(tc.contentType, tc.encoding, tc.auth, tc.body); code != tc.code {
			t.Errorf("%s: %d, want %d", tc.name, code, tc.code)
		}
	}
	st.fail = true
	if code := post("application/x-protobuf", "", "", nil); code != http.StatusInternalServerError {
		t.Errorf("a failing store: %d, want 500", code)
	}
}

// FuzzDecodeOTLPMetrics: any bytes, as protobuf or as JSON, give series
// or an error, never a panic, and every series a name.
func FuzzDecodeOTLPMetrics(f *testing.F) {
	f.Add([]byte{0x0a, 0x20, 0x0a})
	f.Add([]byte{})
	f.Add([]byte(`{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"a","gauge":{"dataPoints":[{"asInt":"1","timeUnixNano":"1"}]}}]}]}]}`))
	f.Fuzz(func(t *testing.T, msg []byte) {
		for _, decode := range []func([]byte) ([]metric.Series, int, error){DecodeOTLPMetrics, DecodeOTLPMetricsJSON} {
			series, _, err := decode(msg)
			if err != nil && series != nil {
				t.Errorf("series with an error: %+v", series)
			}
			for _, s := range series {
				if s.Metric == "" || len(s.Samples) != 1 {
					t.Errorf("series %+v", s)
				}
			}
		}
	})
}

// TestOTLPJSON: OTLP's JSON encoding, as its specification's example
// writes a gauge and a histogram (integers and times as strings).
func TestOTLPJSON(t *testing.T) {
	doc := `{"resourceMetrics":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"checkout"}},{"key":"host.cpus","value":{"intValue":"8"}}]},
	  "scopeMetrics":[{"scope":{"name":"x"},"metrics":[
	    {"name":"queue.depth","unit":"1","gauge":{"dataPoints":[{"asInt":"42","timeUnixNano":"1767225600000000000","attributes":[{"key":"queue","value":{"stringValue":"orders"}}]}]}},
	    {"name":"request.duration","histogram":{"aggregationTemporality":2,"dataPoints":[{"count":"3","sum":1.5,"timeUnixNano":"1767225600000000000","bucketCounts":["1","2"],"explicitBounds":[0.5]}]}},
	    {"name":"","gauge":{"dataPoints":[{"asDouble":1,"timeUnixNano":"1767225600000000000"}]}}
	  ]}]}]}`
	series, skipped, err := DecodeOTLPMetricsJSON([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, s := range series {
		got[s.Metric+s.Labels.String()] = s.Samples[0].Value
		if s.Samples[0].Time.Unix() != 1767225600 {
			t.Errorf("%s at %s", s.Metric, s.Samples[0].Time)
		}
	}
	want := map[string]float64{
		`queue.depth{host.cpus="8", queue="orders", service.name="checkout"}`: 42,
		`request.duration_count{host.cpus="8", service.name="checkout"}`:      3,
		`request.duration_sum{host.cpus="8", service.name="checkout"}`:        1.5,
	}
	if skipped != 1 || len(got) != len(want) {
		t.Errorf("series %v, skipped %d", got, skipped)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}
