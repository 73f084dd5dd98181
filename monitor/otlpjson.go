package monitor

// OTLP metrics in JSON: the protobuf messages in protobuf's JSON
// mapping, as OTLP/HTTP allows (https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding):
// field names in lowerCamelCase, 64-bit integers as strings, times in
// nanoseconds as strings.

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/vigilsec/vigil/metric"
)

type otlpJSONRequest struct {
	ResourceMetrics []struct {
		Resource struct {
			Attributes []otlpJSONKeyValue `json:"attributes"`
		} `json:"resource"`
		ScopeMetrics []struct {
			Metrics []otlpJSONMetric `json:"metrics"`
		} `json:"scopeMetrics"`
	} `json:"resourceMetrics"`
}

type otlpJSONMetric struct {
	Name                 string             `json:"name"`
	Gauge                *otlpJSONPoints    `json:"gauge"`
	Sum                  *otlpJSONPoints    `json:"sum"`
	Histogram            *otlpJSONPoints    `json:"histogram"`
	ExponentialHistogram *otlpJSONPoints    `json:"exponentialHistogram"`
	Summary              *otlpJSONPoints    `json:"summary"`
	Metadata             []otlpJSONKeyValue `json:"metadata"`
}

type otlpJSONPoints struct {
	DataPoints []struct {
		Attributes   []otlpJSONKeyValue `json:"attributes"`
		TimeUnixNano json.Number        `json:"timeUnixNano"`
		AsDouble     *json.Number       `json:"asDouble"`
		AsInt        *json.Number       `json:"asInt"`
		Count        *json.Number       `json:"count"`
		Sum          *json.Number       `json:"sum"`
	} `json:"dataPoints"`
}

type otlpJSONKeyValue struct {
	Key   string `json:"key"`
	Value struct {
		StringValue *string      `json:"stringValue"`
		BoolValue   *bool        `json:"boolValue"`
		IntValue    *json.Number `json:"intValue"`
		DoubleValue *json.Number `json:"doubleValue"`
	} `json:"value"`
}

func (kv otlpJSONKeyValue) label() metric.Label {
	l := metric.Label{Name: kv.Key}
	switch v := kv.Value; {
	case v.StringValue != nil:
		l.Value = *v.StringValue
	case v.BoolValue != nil:
		l.Value = strconv.FormatBool(*v.BoolValue)
	case v.IntValue != nil:
		l.Value = v.IntValue.String()
	case v.DoubleValue != nil:
		l.Value = v.DoubleValue.String()
	}
	return l
}

// DecodeOTLPMetricsJSON reads an ExportMetricsServiceRequest in JSON into
// series as DecodeOTLPMetrics does the protobuf one.
func DecodeOTLPMetricsJSON(msg []byte) (series []metric.Series, skipped int, err error) {
	var req otlpJSONRequest
	if err := json.Unmarshal(msg, &req); err != nil {
		return nil, 0, fmt.Errorf("otlp metrics (json): %w", err)
	}
	for _, rm := range req.ResourceMetrics {
		var resource metric.Labels
		for _, kv := range rm.Resource.Attributes {
			resource = append(resource, kv.label())
		}
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				var (
					points *otlpJSONPoints
					scalar bool // a gauge's or a sum's: one value a point
				)
				switch {
				case m.Gauge != nil:
					points, scalar = m.Gauge, true
				case m.Sum != nil:
					points, scalar = m.Sum, true
				case m.Histogram != nil:
					points = m.Histogram
				case m.ExponentialHistogram != nil:
					points = m.ExponentialHistogram
				case m.Summary != nil:
					points = m.Summary
				default:
					continue
				}
				for _, p := range points.DataPoints {
					if m.Name == "" {
						skipped++
						continue
					}
					labels := append(metric.Labels(nil), resource...)
					for _, kv := range p.Attributes {
						labels = append(labels, kv.label())
					}
					labels = dedupe(labels)
					ns, err := strconv.ParseInt(p.TimeUnixNano.String(), 10, 64)
					if err != nil {
						return nil, 0, fmt.Errorf("otlp metrics (json): %s: timeUnixNano %q: %w", m.Name, p.TimeUnixNano, err)
					}
					at := time.Unix(0, ns).UTC()
					add := func(name string, v float64) {
						series = append(series, metric.Series{Metric: name, Labels: labels, Samples: []metric.Sample{{Time: at, Value: v}}})
					}
					if scalar {
						if v, ok := jsonFloat(p.AsDouble); ok {
							add(m.Name, v)
						} else if v, ok := jsonFloat(p.AsInt); ok {
							add(m.Name, v)
						}
						continue
					}
					if c, ok := jsonFloat(p.Count); ok {
						add(m.Name+"_count", c)
					}
					if s, ok := jsonFloat(p.Sum); ok {
						add(m.Name+"_sum", s)
					}
				}
			}
		}
	}
	return series, skipped, nil
}

// jsonFloat reads a number the JSON mapping writes as a number or, for
// 64-bit integers, as a string.
func jsonFloat(n *json.Number) (float64, bool) {
	if n == nil {
		return 0, false
	}
	v, err := strconv.ParseFloat(n.String(), 64)
	return v, err == nil && !math.IsNaN(v) && !math.IsInf(v, 0)
}
