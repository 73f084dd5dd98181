package monitor

// OTLP metrics over HTTP: how OpenTelemetry SDKs and collectors export
// measurements (https://opentelemetry.io/docs/specs/otlp/#otlphttp). The
// body is an ExportMetricsServiceRequest in protobuf (gzip-compressed or
// not), from opentelemetry/proto/metrics/v1/metrics.proto:
//
//	ExportMetricsServiceRequest { repeated ResourceMetrics resource_metrics = 1; }
//	ResourceMetrics { Resource resource = 1; repeated ScopeMetrics scope_metrics = 2; }
//	Resource        { repeated KeyValue attributes = 1; }
//	ScopeMetrics    { repeated Metric metrics = 2; }
//	Metric          { string name = 1; Gauge gauge = 5; Sum sum = 7; Histogram histogram = 9;
//	                  ExponentialHistogram exponential_histogram = 10; Summary summary = 11; }
//	Gauge, Sum, …   { repeated …DataPoint data_points = 1; }
//	NumberDataPoint { fixed64 time_unix_nano = 3; double as_double = 4; sfixed64 as_int = 6;
//	                  repeated KeyValue attributes = 7; }
//	HistogramDataPoint (attributes = 9), ExponentialHistogramDataPoint (attributes = 1),
//	SummaryDataPoint (attributes = 7) { fixed64 time_unix_nano = 3; fixed64 count = 4; double sum = 5; }
//	KeyValue        { string key = 1; AnyValue value = 2; }
//	AnyValue        { string string_value = 1; bool bool_value = 2; int64 int_value = 3; double double_value = 4; … }
//
// A gauge's or a sum's point is a sample of the metric; a histogram's or
// a summary's gives two series, NAME_count and NAME_sum, as Prometheus
// names them. The labels are the resource's attributes and the point's.

import (
	"compress/gzip"
	"fmt"
	"io"
	"log/slog"
	"math"
	"mime"
	"net/http"
	"strconv"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/vigilsec/vigil/metric"
)

// DecodeOTLPMetrics reads an ExportMetricsServiceRequest into series, a
// series a point. It reports how many points it skipped: those of a
// metric without a name.
func DecodeOTLPMetrics(msg []byte) (series []metric.Series, skipped int, err error) {
	d := &otlpDecoder{}
	err = fields(msg, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if num == 1 && typ == protowire.BytesType {
			return d.resourceMetrics(v)
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("otlp metrics: %w", err)
	}
	return d.series, d.skipped, nil
}

type otlpDecoder struct {
	series  []metric.Series
	skipped int
}

func (d *otlpDecoder) resourceMetrics(b []byte) error {
	var resource metric.Labels
	var scopes [][]byte
	err := fields(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		switch {
		case num == 1 && typ == protowire.BytesType:
			return fields(v, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
				if num == 1 && typ == protowire.BytesType {
					l, err := keyValue(v)
					resource = append(resource, l)
					return err
				}
				return nil
			})
		case num == 2 && typ == protowire.BytesType:
			scopes = append(scopes, v) // the resource may come after them
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, s := range scopes {
		err := fields(s, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
			if num == 2 && typ == protowire.BytesType {
				return d.metric(resource, v)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// The kinds of a Metric's data, by field number, and the number of the
// attributes of their points.
var otlpPointAttributes = map[protowire.Number]protowire.Number{
	5:  7, // gauge: NumberDataPoint
	7:  7, // sum: NumberDataPoint
	9:  9, // histogram: HistogramDataPoint
	10: 1, // exponential histogram: ExponentialHistogramDataPoint
	11: 7, // summary: SummaryDataPoint
}

func (d *otlpDecoder) metric(resource metric.Labels, b []byte) error {
	var (
		name  string
		kind  protowire.Number
		data  []byte
		found bool
	)
	err := fields(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if typ != protowire.BytesType {
			return nil
		}
		if num == 1 {
			name = string(v)
		} else if _, ok := otlpPointAttributes[num]; ok {
			kind, data, found = num, v, true
		}
		return nil
	})
	if err != nil || !found {
		return err
	}
	return fields(data, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if num != 1 || typ != protowire.BytesType {
			return nil
		}
		if name == "" {
			d.skipped++
			return nil
		}
		return d.point(name, kind, resource, v)
	})
}

// point adds the series of one data point.
func (d *otlpDecoder) point(name string, kind protowire.Number, resource metric.Labels, b []byte) error {
	var (
		labels          = append(metric.Labels(nil), resource...)
		at              time.Time
		value           float64
		count, sum      float64
		hasValue, isSum bool
	)
	attrs := otlpPointAttributes[kind]
	err := fields(b, func(num protowire.Number, typ protowire.Type, v []byte, n uint64) error {
		switch {
		case num == attrs && typ == protowire.BytesType:
			l, err := keyValue(v)
			labels = append(labels, l)
			return err
		case num == 3 && typ == protowire.Fixed64Type:
			at = time.Unix(0, int64(n)).UTC()
		case kind == 5 || kind == 7:
			switch {
			case num == 4 && typ == protowire.Fixed64Type:
				value, hasValue = math.Float64frombits(n), true
			case num == 6 && typ == protowire.Fixed64Type:
				value, hasValue = float64(int64(n)), true
			}
		case num == 4 && typ == protowire.Fixed64Type:
			count, hasValue = float64(n), true
		case num == 5 && typ == protowire.Fixed64Type:
			sum, isSum = math.Float64frombits(n), true
		}
		return nil
	})
	if err != nil || !hasValue {
		return err
	}
	labels = dedupe(labels)
	add := func(name string, v float64) {
		d.series = append(d.series, metric.Series{Metric: name, Labels: labels, Samples: []metric.Sample{{Time: at, Value: v}}})
	}
	if kind == 5 || kind == 7 {
		add(name, value)
		return nil
	}
	add(name+"_count", count)
	if isSum {
		add(name+"_sum", sum)
	}
	return nil
}

// dedupe sorts labels and keeps the last of each name: a point's
// attribute over its resource's.
func dedupe(ls metric.Labels) metric.Labels {
	out := make(metric.Labels, 0, len(ls))
	for i := len(ls) - 1; i >= 0; i-- {
		dup := false
		for _, l := range out {
			if l.Name == ls[i].Name {
				dup = true
				break
			}
		}
		if !dup && ls[i].Name != "" {
			out = append(out, ls[i])
		}
	}
	out.Sort()
	return out
}

// keyValue reads a KeyValue as a label: its value a string, bool,
// integer or double, written as text; other kinds (arrays, maps, bytes)
// are not labels, and keep only their key.
func keyValue(b []byte) (metric.Label, error) {
	var l metric.Label
	err := fields(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		switch {
		case num == 1 && typ == protowire.BytesType:
			l.Name = string(v)
		case num == 2 && typ == protowire.BytesType:
			return fields(v, func(num protowire.Number, typ protowire.Type, v []byte, n uint64) error {
				switch {
				case num == 1 && typ == protowire.BytesType:
					l.Value = string(v)
				case num == 2 && typ == protowire.VarintType:
					l.Value = strconv.FormatBool(n != 0)
				case num == 3 && typ == protowire.VarintType:
					l.Value = strconv.FormatInt(int64(n), 10)
				case num == 4 && typ == protowire.Fixed64Type:
					l.Value = strconv.FormatFloat(math.Float64frombits(n), 'g', -1, 64)
				}
				return nil
			})
		}
		return nil
	})
	return l, err
}

// OTLPHandler receives OTLP metrics over HTTP, in protobuf or JSON,
// gzip-compressed or not, into st, for the tenant identify names (its
// error answered 403). It answers 200 with an empty
// ExportMetricsServiceResponse; 415 to another content type or
// encoding; 400 to a message it cannot read (not retried); 500 when the
// store fails (retried).
func OTLPHandler(st SampleAppender, identify func(*http.Request) (string, error), logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "OTLP takes POST", http.StatusMethodNotAllowed)
			return
		}
		mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if mt != "application/x-protobuf" && mt != "application/json" {
			http.Error(w, "OTLP metrics: want Content-Type application/x-protobuf or application/json", http.StatusUnsupportedMediaType)
			return
		}
		tenant, err := identify(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		var body io.Reader = http.MaxBytesReader(w, r.Body, MaxRemoteWriteBytes)
		switch enc := r.Header.Get("Content-Encoding"); enc {
		case "", "identity":
		case "gzip":
			zr, err := gzip.NewReader(body)
			if err != nil {
				http.Error(w, "gzip: "+err.Error(), http.StatusBadRequest)
				return
			}
			body = io.LimitReader(zr, MaxRemoteWriteBytes+1)
		default:
			http.Error(w, fmt.Sprintf("Content-Encoding %q: want gzip or none", enc), http.StatusUnsupportedMediaType)
			return
		}
		msg, err := io.ReadAll(body)
		switch {
		case err != nil:
			http.Error(w, "reading the message: "+err.Error(), http.StatusBadRequest)
			return
		case len(msg) > MaxRemoteWriteBytes:
			http.Error(w, fmt.Sprintf("the message is more than %d bytes", MaxRemoteWriteBytes), http.StatusRequestEntityTooLarge)
			return
		}
		decode := DecodeOTLPMetrics
		if mt == "application/json" {
			decode = DecodeOTLPMetricsJSON
		}
		series, skipped, err := decode(msg)
		if !keep(w, r, st, tenant, series, err, logger, "otlp metrics", skipped, "points of a metric without a name") {
			return
		}
		// An empty ExportMetricsServiceResponse, in the request's encoding.
		w.Header().Set("Content-Type", mt)
		w.WriteHeader(http.StatusOK)
		if mt == "application/json" {
			w.Write([]byte("{}"))
		}
	})
}
