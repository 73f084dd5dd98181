package monitor

// Prometheus remote write: how a Prometheus server (or an agent, or a
// client library) pushes samples. A protobuf message, compressed in
// snappy's block format, is POSTed; both versions of the protocol are
// read (https://prometheus.io/docs/specs/prw/remote_write_spec/ and
// .../remote_write_spec_2_0/):
//
//	1.0  WriteRequest { repeated TimeSeries timeseries = 1; }
//	     TimeSeries   { repeated Label labels = 1; repeated Sample samples = 2; }
//	     Label        { string name = 1; string value = 2; }
//	2.0  Request      { repeated string symbols = 4; repeated TimeSeries timeseries = 5; }
//	     TimeSeries   { repeated uint32 labels_refs = 1; repeated Sample samples = 2; }
//	     (labels_refs are pairs of indexes into symbols: name, value)
//	both Sample       { double value = 1; int64 timestamp = 2; } (milliseconds)
//
// Histograms, exemplars and metadata are skipped.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/snappy"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/vigilsec/vigil/metric"
)

// The versions of remote write, as the proto parameter of the content
// type names their messages.
const (
	RemoteWriteV1 = "prometheus.WriteRequest"
	RemoteWriteV2 = "io.prometheus.write.v2.Request"
)

// MaxRemoteWriteBytes bounds a remote-write message, decompressed.
const MaxRemoteWriteBytes = 64 << 20

// ErrUnsupportedWrite is returned for a content type that is not one of
// remote write's: the handler answers 415, as the protocol asks.
var ErrUnsupportedWrite = errors.New("not a remote-write message: want Content-Type application/x-protobuf, with proto=" + RemoteWriteV1 + " or " + RemoteWriteV2)

// RemoteWriteVersion returns the message a content type names: 1.0's
// when it names none, as 1.0 senders send no parameter.
func RemoteWriteVersion(contentType string) (string, error) {
	if contentType == "" {
		return RemoteWriteV1, nil
	}
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "application/x-protobuf" {
		return "", ErrUnsupportedWrite
	}
	switch p := params["proto"]; p {
	case "", RemoteWriteV1:
		return RemoteWriteV1, nil
	case RemoteWriteV2:
		return RemoteWriteV2, nil
	}
	return "", ErrUnsupportedWrite
}

// DecodeRemoteWrite reads a snappy-compressed remote-write message of a
// version into series, each named by its __name__ label. It reports how
// many series it skipped: those without a name, and those whose labels
// 2.0 gives by an index out of its symbols.
func DecodeRemoteWrite(version string, body []byte) (series []metric.Series, skipped int, err error) {
	n, err := snappy.DecodedLen(body)
	switch {
	case err != nil:
		return nil, 0, fmt.Errorf("remote write: snappy: %w", err)
	case n > MaxRemoteWriteBytes:
		return nil, 0, fmt.Errorf("remote write: the message is %d bytes decompressed, more than %d", n, MaxRemoteWriteBytes)
	}
	msg, err := snappy.Decode(nil, body)
	if err != nil {
		return nil, 0, fmt.Errorf("remote write: snappy: %w", err)
	}
	d := &decoder{version: version}
	if err := d.request(msg); err != nil {
		return nil, 0, fmt.Errorf("remote write %s: %w", version, err)
	}
	return d.series, d.skipped, nil
}

// A decoder reads one message.
type decoder struct {
	version string
	symbols []string
	// 2.0's series, whose label references need the symbols, which may
	// come after them.
	pending []pendingSeries
	series  []metric.Series
	skipped int
}

type pendingSeries struct {
	refs    []uint32
	samples []metric.Sample
}

var errTruncated = errors.New("truncated or malformed protobuf")

// fields calls fn with each field of a message. A bytes field's value is
// its bytes; a varint's or a fixed64's, its number.
func fields(b []byte, fn func(num protowire.Number, typ protowire.Type, v []byte, n uint64) error) error {
	for len(b) > 0 {
		num, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return errTruncated
		}
		b = b[l:]
		var (
			v []byte
			n uint64
		)
		switch typ {
		case protowire.BytesType:
			v, l = protowire.ConsumeBytes(b)
		case protowire.VarintType:
			n, l = protowire.ConsumeVarint(b)
		case protowire.Fixed64Type:
			n, l = protowire.ConsumeFixed64(b)
		default:
			l = protowire.ConsumeFieldValue(num, typ, b)
		}
		if l < 0 {
			return errTruncated
		}
		b = b[l:]
		if err := fn(num, typ, v, n); err != nil {
			return err
		}
	}
	return nil
}

func (d *decoder) request(b []byte) error {
	err := fields(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		switch {
		case d.version == RemoteWriteV1 && num == 1 && typ == protowire.BytesType:
			return d.seriesV1(v)
		case d.version == RemoteWriteV2 && num == 4 && typ == protowire.BytesType:
			d.symbols = append(d.symbols, string(v))
		case d.version == RemoteWriteV2 && num == 5 && typ == protowire.BytesType:
			return d.seriesV2(v)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, p := range d.pending {
		d.resolve(p)
	}
	return nil
}

func (d *decoder) seriesV1(b []byte) error {
	var (
		labels  metric.Labels
		samples []metric.Sample
	)
	err := fields(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		switch {
		case num == 1 && typ == protowire.BytesType:
			var l metric.Label
			err := fields(v, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
				switch {
				case num == 1 && typ == protowire.BytesType:
					l.Name = string(v)
				case num == 2 && typ == protowire.BytesType:
					l.Value = string(v)
				}
				return nil
			})
			labels = append(labels, l)
			return err
		case num == 2 && typ == protowire.BytesType:
			s, err := sample(v)
			samples = append(samples, s)
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	d.add(labels, samples)
	return nil
}

func (d *decoder) seriesV2(b []byte) error {
	var p pendingSeries
	err := fields(b, func(num protowire.Number, typ protowire.Type, v []byte, n uint64) error {
		switch {
		case num == 1 && typ == protowire.BytesType: // packed
			for len(v) > 0 {
				r, l := protowire.ConsumeVarint(v)
				if l < 0 {
					return errTruncated
				}
				p.refs = append(p.refs, uint32(r))
				v = v[l:]
			}
		case num == 1 && typ == protowire.VarintType: // one, unpacked
			p.refs = append(p.refs, uint32(n))
		case num == 2 && typ == protowire.BytesType:
			s, err := sample(v)
			p.samples = append(p.samples, s)
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	d.pending = append(d.pending, p)
	return nil
}

// resolve names a 2.0 series' labels from the symbols.
func (d *decoder) resolve(p pendingSeries) {
	if len(p.refs)%2 != 0 {
		d.skipped++
		return
	}
	labels := make(metric.Labels, 0, len(p.refs)/2)
	for i := 0; i < len(p.refs); i += 2 {
		n, v := p.refs[i], p.refs[i+1]
		if int(n) >= len(d.symbols) || int(v) >= len(d.symbols) {
			d.skipped++
			return
		}
		labels = append(labels, metric.Label{Name: d.symbols[n], Value: d.symbols[v]})
	}
	d.add(labels, p.samples)
}

// add adds a series, named by its __name__ label.
func (d *decoder) add(labels metric.Labels, samples []metric.Sample) {
	s := metric.Series{Samples: samples}
	for _, l := range labels {
		if l.Name == "__name__" {
			s.Metric = l.Value
		} else if l.Name != "" {
			s.Labels = append(s.Labels, l)
		}
	}
	if strings.TrimSpace(s.Metric) == "" {
		d.skipped++
		return
	}
	s.Labels.Sort()
	d.series = append(d.series, s)
}

// sample reads a Sample: a double value (1) and a timestamp in
// milliseconds (2).
func sample(b []byte) (metric.Sample, error) {
	var (
		value float64
		ms    int64
	)
	err := fields(b, func(num protowire.Number, typ protowire.Type, _ []byte, n uint64) error {
		switch {
		case num == 1 && typ == protowire.Fixed64Type:
			value = math.Float64frombits(n)
		case num == 2 && typ == protowire.VarintType:
			ms = int64(n)
		}
		return nil
	})
	return metric.Sample{Time: time.UnixMilli(ms).UTC(), Value: value}, err
}

// A SampleAppender stores a tenant's samples.
type SampleAppender interface {
	AppendSamples(ctx context.Context, tenant string, series []metric.Series) error
}

// RemoteWriteHandler receives remote write, 1.0 and 2.0, into st: into
// the tenant identify names for the request (its caller's), or answers
// its error as 403. It answers 204 with the counts 2.0 asks for; 415 to
// a content type that is not remote write's; 400 to a message it cannot
// read, saying why, which a sender does not retry; 500 when the store
// fails, which it does.
func RemoteWriteHandler(st SampleAppender, identify func(*http.Request) (string, error), logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "remote write takes POST", http.StatusMethodNotAllowed)
			return
		}
		version, err := RemoteWriteVersion(r.Header.Get("Content-Type"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnsupportedMediaType)
			return
		}
		if enc := r.Header.Get("Content-Encoding"); enc != "" && enc != "snappy" {
			http.Error(w, fmt.Sprintf("Content-Encoding %q: remote write is snappy", enc), http.StatusUnsupportedMediaType)
			return
		}
		tenant, err := identify(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxRemoteWriteBytes))
		if err != nil {
			http.Error(w, "reading the message: "+err.Error(), http.StatusBadRequest)
			return
		}
		series, skipped, err := DecodeRemoteWrite(version, body)
		if !keep(w, r, st, tenant, series, err, logger, "remote write", skipped, "no __name__ label, or labels out of the symbols") {
			return
		}
		if version == RemoteWriteV2 {
			n := 0
			for _, s := range series {
				n += len(s.Samples)
			}
			w.Header().Set("X-Prometheus-Remote-Write-Samples-Written", strconv.Itoa(n))
			w.Header().Set("X-Prometheus-Remote-Write-Histograms-Written", "0")
			w.Header().Set("X-Prometheus-Remote-Write-Exemplars-Written", "0")
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// keep stores what a metrics receiver decoded for a tenant, and answers
// the sender when it cannot: 400 for a message that could not be
// decoded (err), which a sender does not retry; 500 when the store
// fails, which it does. It logs the items the message had that were
// skipped, and why.
func keep(w http.ResponseWriter, r *http.Request, st SampleAppender, tenant string, series []metric.Series, err error,
	logger *slog.Logger, protocol string, skipped int, why string) bool {
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return false
	}
	if skipped > 0 {
		logger.Warn(protocol+": skipped", "tenant", tenant, "skipped", skipped, "reason", why)
	}
	if err := st.AppendSamples(r.Context(), tenant, series); err != nil {
		logger.Error(protocol+": storing samples", "tenant", tenant, "err", err)
		http.Error(w, "storing the samples failed; send them again", http.StatusInternalServerError)
		return false
	}
	return true
}
