// Package parse turns the bytes of a log file or request body into
// normalized events, one file per format.
//
// A format reads a whole input as a stream and reports each record as a
// Result: an event, or the reason the record could not be parsed, which the
// caller sends to quarantine. A bad record never stops the stream; only a
// failure to read the input does.
package parse

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
	"time"

	"github.com/vigilsec/vigil/event"
)

// Auto asks Parse to detect the format from the input.
const Auto = "auto"

// Options configure one parse.
type Options struct {
	Tenant   string
	Origin   string    // where the input came from, e.g. a file path; prefixed to each event's Origin
	Received time.Time // receipt time stamped on every event; zero means now

	// Environments maps a cloud account (AWS account id, GCP project,
	// Azure subscription) to the environment it belongs to.
	Environments map[string]string
	// MaxSkew flags events whose time differs from Received by more than
	// this; zero means the default of 24 hours, negative disables it.
	MaxSkew time.Duration
	// Backfill says the input is history (an import of old files), so
	// only event times ahead of receipt count as skew.
	Backfill bool
	// TimeField names the field holding the event time for the json
	// format; empty means try the usual names.
	TimeField string
	// MaxLine bounds one line or one JSON document; longer input is
	// quarantined. Zero means DefaultMaxLine.
	MaxLine int
	// Year is the year given to RFC 3164 timestamps, which have none.
	// Zero means the year of Received, stepping back a year for dates
	// that would lie in the future.
	Year int
	// Location is the time zone of timestamps written without one (RFC
	// 3164 syslog, zone-less ISO times in syslog files). Nil means UTC.
	Location *time.Location
}

// DefaultMaxLine is the default bound on one line or JSON document. A
// CloudTrail file delivered to S3 is one line, so it must be generous.
const DefaultMaxLine = 256 << 20

// DefaultMaxSkew is the default clock-skew bound.
const DefaultMaxSkew = 24 * time.Hour

// A Result is one record of the input: an event, or why there is none.
type Result struct {
	Event  *event.Event // nil when Err is set
	Err    error        // the reason the record goes to quarantine
	Format string       // the format that produced or rejected it
	Raw    []byte       // the record's bytes
	Line   int64        // 1-based line where the record starts; 0 if unknown
	Offset int64        // byte offset where the record starts in the decompressed input
}

// An EmitFunc receives each record. Returning an error stops the parse.
type EmitFunc func(Result) error

// A Format parses one kind of log.
type Format struct {
	Name        string
	Description string
	parse       func(p *parser, r *bufio.Reader) error
}

var formats = map[string]*Format{}

func register(f *Format) { formats[f.Name] = f }

// Formats returns the registered formats, sorted by name.
func Formats() []*Format {
	out := make([]*Format, 0, len(formats))
	for _, f := range formats {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Lookup returns the named format.
func Lookup(name string) (*Format, bool) {
	f, ok := formats[name]
	return f, ok
}

// readers recycles Parse's read buffers: a server parses many small
// request bodies, and a fresh 64 KiB buffer for each cost more than their
// parsing (allocating and clearing it, and the collector and the
// scavenger dealing with it after). Records never alias the buffer: what
// outlives a read is copied.
var readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 64<<10) }}

func getReader(r io.Reader) *bufio.Reader {
	br := readers.Get().(*bufio.Reader)
	br.Reset(r)
	return br
}

func putReader(br *bufio.Reader) {
	br.Reset(nil)
	readers.Put(br)
}

// ErrUnknownFormat is returned when auto-detection recognizes nothing.
var ErrUnknownFormat = errors.New("format not recognized")

// Parse reads r, gzip-compressed or plain, in the named format (or Auto)
// and calls emit for every record. It returns the format used. The error
// is nil unless reading failed, emit failed, or no format was recognized:
// bad records are reported through emit, not as an error.
func Parse(r io.Reader, format string, opts Options, emit EmitFunc) (string, error) {
	br := getReader(r)
	defer putReader(br)
	head, _ := br.Peek(2)
	if len(head) == 2 && head[0] == 0x1f && head[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return format, fmt.Errorf("reading gzip header: %w", err)
		}
		defer zr.Close()
		br = getReader(zr)
		defer putReader(br)
	}
	auto := format == "" || format == Auto
	if auto {
		// A read error here (a truncated gzip stream) is met again by the
		// format's parser, after it has emitted what could be read.
		head, _ := br.Peek(sniffSize)
		format = Detect(head)
		if format == "" {
			return "", ErrUnknownFormat
		}
	}
	f, ok := formats[format]
	if !ok {
		return format, fmt.Errorf("unknown format %q", format)
	}
	p := newParser(f.Name, opts, emit)
	p.auto = auto
	err := f.parse(p, br)
	if err != nil && !errors.Is(err, errEmit) {
		// The stream broke (truncated gzip, I/O error): what was read has
		// been emitted; the rest is lost, and the caller must say so.
		err = fmt.Errorf("reading %s input: %w", f.Name, err)
	}
	if p.emitErr != nil {
		return f.Name, p.emitErr
	}
	return f.Name, err
}

// parser carries the state shared by every format during one parse.
type parser struct {
	format  string
	opts    Options
	emit    EmitFunc
	emitErr error
	auto    bool // the format was detected, so records may be reclassified
	// origin prefix, so that Origin is "file:line".
	origin string
}

// errEmit marks that emit failed; the real error is in parser.emitErr.
var errEmit = errors.New("emit failed")

func newParser(format string, opts Options, emit EmitFunc) *parser {
	if opts.Received.IsZero() {
		opts.Received = time.Now()
	}
	opts.Received = opts.Received.UTC()
	if opts.MaxSkew == 0 {
		opts.MaxSkew = DefaultMaxSkew
	}
	if opts.MaxLine <= 0 {
		opts.MaxLine = DefaultMaxLine
	}
	return &parser{format: format, opts: opts, emit: emit, origin: opts.Origin}
}

// event finishes a parsed event — receipt, tenant, UTC, skew, environment,
// origin — and emits it.
func (p *parser) event(ev *event.Event, raw []byte, line, offset int64) error {
	ev.Raw = raw
	ev.Received = p.opts.Received
	ev.Tenant = p.opts.Tenant
	if ev.Source == "" {
		ev.Source = p.format
	}
	if ev.Class == "" {
		ev.Class = event.ClassOther
	}
	if ev.Outcome.Result == "" {
		ev.Outcome.Result = event.OutcomeUnknown
	}
	if ev.Time.IsZero() {
		// A record without a time of its own (generic JSON, a partial
		// export) happened no later than it arrived.
		ev.Time = ev.Received
	}
	ev.Time = ev.Time.UTC()
	if p.opts.MaxSkew > 0 {
		d := ev.Time.Sub(ev.Received)
		ev.Skewed = d > p.opts.MaxSkew || (-d > p.opts.MaxSkew && !p.opts.Backfill)
	}
	if env, ok := p.opts.Environments[ev.Cloud.Account]; ok && ev.Cloud.Account != "" {
		ev.Environment = env
	}
	if p.origin != "" {
		if line > 0 {
			ev.Origin = fmt.Sprintf("%s:%d", p.origin, line)
		} else {
			ev.Origin = p.origin
		}
	}
	return p.send(Result{Event: ev, Format: ev.Source, Raw: raw, Line: line, Offset: offset})
}

// reject reports a record that could not be parsed.
func (p *parser) reject(reason error, raw []byte, line, offset int64) error {
	return p.send(Result{Err: reason, Format: p.format, Raw: raw, Line: line, Offset: offset})
}

func (p *parser) send(r Result) error {
	if p.emitErr != nil {
		return errEmit
	}
	if err := p.emit(r); err != nil {
		p.emitErr = err
		return errEmit
	}
	return nil
}

// trimSpace trims ASCII white space and a UTF-8 byte-order mark.
func trimSpace(b []byte) []byte {
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	return bytes.TrimSpace(b)
}
