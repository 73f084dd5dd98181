package ingest

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/parse"
	"github.com/vigilsec/vigil/store"
)

// HTTPOptions configure the HTTP ingest handler.
type HTTPOptions struct {
	// Parse are the parse options; Tenant, Origin and Received are set
	// per request.
	Parse parse.Options
	// Identify names the tenant a request's events belong to and the
	// sender, for the source's name ("http/<sender>"). It is where the
	// caller's token is checked; an error answers 403.
	Identify func(*http.Request) (tenant, sender string, err error)
	// MaxBody bounds a request body as sent; 0 means 64 MiB. MaxDecoded
	// bounds it decompressed, against compression bombs; 0 means 16 times
	// MaxBody. MaxLine bounds one line or JSON document; 0 means 16 MiB.
	// MaxEvents bounds the records of one request; 0 means 1,000,000.
	MaxBody    int64
	MaxDecoded int64
	MaxLine    int
	MaxEvents  int
	// Batch is how many events go to the ledger at once; 0 means 10,000.
	Batch int
	// RetryAfter is what a 429 tells the client to wait; 0 means 1s.
	RetryAfter time.Duration
	Logger     *slog.Logger
}

// IngestResponse is the answer to an ingest request.
type IngestResponse struct {
	Format      string `json:"format"`
	Accepted    int    `json:"accepted"`
	Quarantined int    `json:"quarantined"`
	Error       string `json:"error,omitempty"`
}

// BatchHeader carries a client's batch id: a request sent again with the
// same id (after a timeout, say) is stored once. The id names the whole
// request, so a retry must send the same body.
const BatchHeader = "X-Vigil-Batch"

// batchID is what a batch id may look like: short and printable, since it
// is written into the ledger and shown in provenance.
var batchID = regexp.MustCompile(`^[A-Za-z0-9._:/@+=-]{1,128}$`)

// HTTPHandler accepts logs posted to it: any format vigil parses, plain,
// gzip or zstd (by Content-Encoding, or detected), named by the format
// query parameter or the X-Vigil-Format header, or detected. Events are
// acknowledged (200) only once they are in the ledger; a 429 asks the
// client to retry later, and anything else it did not acknowledge must be
// sent again (with the same batch id, so that nothing is stored twice).
func HTTPHandler(a Acceptor, opts HTTPOptions) http.Handler {
	if opts.MaxBody <= 0 {
		opts.MaxBody = 64 << 20
	}
	if opts.MaxDecoded <= 0 {
		opts.MaxDecoded = 16 * opts.MaxBody
	}
	if opts.MaxLine <= 0 {
		opts.MaxLine = 16 << 20
	}
	if opts.MaxEvents <= 0 {
		opts.MaxEvents = 1_000_000
	}
	if opts.Batch <= 0 {
		opts.Batch = 10000
	}
	if opts.RetryAfter <= 0 {
		opts.RetryAfter = time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := &ingestRequest{opts: &opts, a: a, w: w, r: r}
		h.serve()
	})
}

// ingestRequest is one request being served.
type ingestRequest struct {
	opts *HTTPOptions
	a    Acceptor
	w    http.ResponseWriter
	r    *http.Request
	resp IngestResponse
}

// errTooMany stops a parse at HTTPOptions.MaxEvents.
var errTooMany = errors.New("too many records")

func (h *ingestRequest) serve() {
	r, opts := h.r, h.opts
	if r.Method != http.MethodPost {
		h.w.Header().Set("Allow", http.MethodPost)
		h.fail(http.StatusMethodNotAllowed, "use POST")
		return
	}
	tenant, sender, err := opts.Identify(r)
	if err != nil {
		h.fail(http.StatusForbidden, err.Error())
		return
	}
	format := r.URL.Query().Get("format")
	if format == "" {
		format = r.Header.Get("X-Vigil-Format")
	}
	if format == "" {
		format = parse.Auto
	}
	if _, ok := parse.Lookup(format); !ok && format != parse.Auto {
		h.fail(http.StatusBadRequest, fmt.Sprintf("unknown format %q: `vigil formats` lists them", format))
		return
	}
	id := r.Header.Get(BatchHeader)
	if id == "" {
		id = r.URL.Query().Get("batch")
	}
	if id != "" && !batchID.MatchString(id) {
		h.fail(http.StatusBadRequest, "batch id: want 1 to 128 of A-Z a-z 0-9 . _ : / @ + = -")
		return
	}
	if r.ContentLength > opts.MaxBody {
		h.fail(http.StatusRequestEntityTooLarge, fmt.Sprintf("body of %d bytes is larger than the limit of %d", r.ContentLength, opts.MaxBody))
		return
	}
	body, err := decodeBody(http.MaxBytesReader(h.w, r.Body, opts.MaxBody), r.Header.Get("Content-Encoding"), opts.MaxDecoded)
	if err != nil {
		h.fail(http.StatusBadRequest, err.Error())
		return
	}
	defer body.Close()

	po := opts.Parse
	po.Tenant = tenant
	po.Received = time.Now()
	po.MaxLine = opts.MaxLine
	source := "http/" + sender
	po.Origin = source
	if id != "" {
		po.Origin += "/" + id
	}
	var (
		evs    []*event.Event
		qs     []store.Quarantined
		n      int // records read
		chunk  int // batches handed over
		accErr error
	)
	flush := func() error {
		b := Batch{Source: source, Events: evs, Quarantined: qs}
		if id != "" {
			// Each chunk of the request is a batch of its own; a retry of
			// the same body gives the same chunks, so the ones already
			// stored are recognised.
			b.ID = id + "#" + strconv.Itoa(chunk)
		}
		if err := h.a.Accept(r.Context(), b); err != nil {
			return err
		}
		h.resp.Accepted += len(evs)
		h.resp.Quarantined += len(qs)
		evs, qs = nil, nil
		chunk++
		return nil
	}
	format, err = parse.Parse(body, format, po, func(res parse.Result) error {
		if n++; n > opts.MaxEvents {
			return errTooMany
		}
		if res.Err != nil {
			qs = append(qs, quarantined(res, po))
		} else {
			evs = append(evs, res.Event)
		}
		if len(evs)+len(qs) >= opts.Batch {
			if accErr = flush(); accErr != nil {
				return accErr
			}
		}
		return nil
	})
	h.resp.Format = format
	if err == nil && accErr == nil && (len(evs) > 0 || len(qs) > 0 || chunk == 0 && id != "") {
		accErr = flush()
	}
	var (
		tooBig *http.MaxBytesError
		bomb   *decodedLimitError
	)
	switch {
	case errors.Is(accErr, ErrBusy):
		h.w.Header().Set("Retry-After", strconv.Itoa(int(max(1, opts.RetryAfter.Round(time.Second).Seconds()))))
		h.fail(http.StatusTooManyRequests, "the server is behind; retry after the time in Retry-After")
	case accErr != nil:
		opts.Logger.Error("ingest: accepting events failed", "source", source, "err", accErr)
		h.fail(http.StatusServiceUnavailable, "storing events failed; send the request again")
	case errors.As(err, &tooBig):
		h.fail(http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", opts.MaxBody))
	case errors.As(err, &bomb):
		h.fail(http.StatusRequestEntityTooLarge, err.Error())
	case errors.Is(err, errTooMany):
		h.fail(http.StatusRequestEntityTooLarge, fmt.Sprintf("more than %d records in one request; split it", opts.MaxEvents))
	case errors.Is(err, parse.ErrUnknownFormat):
		h.fail(http.StatusBadRequest, "format not recognized: name it with ?format=")
	case err != nil:
		h.fail(http.StatusBadRequest, "reading the body: "+err.Error())
	default:
		writeJSON(h.w, http.StatusOK, h.resp)
	}
}

// fail answers with status and the counts so far: what was accepted
// before the failure is in the ledger, and a retry with the same batch id
// does not store it again.
func (h *ingestRequest) fail(status int, msg string) {
	h.resp.Error = msg
	writeJSON(h.w, status, h.resp)
}

// decodeBody undoes the Content-Encoding (gzip, zstd, identity). Gzip
// without the header is also found by the parser; zstd is detected here
// by its magic number.
func decodeBody(r io.Reader, encoding string, limit int64) (io.ReadCloser, error) {
	// Only enough to see the magic number: Parse buffers the body itself.
	br := bufio.NewReaderSize(r, 16)
	enc := strings.ToLower(strings.TrimSpace(encoding))
	if enc == "" || enc == "identity" {
		if head, _ := br.Peek(4); len(head) == 4 && string(head) == "\x28\xb5\x2f\xfd" {
			enc = "zstd"
		}
	}
	var (
		dec io.Reader
		cl  func()
	)
	switch enc {
	case "", "identity":
		dec = br
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("gzip body: %w", err)
		}
		dec, cl = zr, func() { zr.Close() }
	case "zstd":
		// The window bounds the decoder's memory whatever the sender
		// claims; 8 MiB is what RFC 8878 recommends decoders support.
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(8<<20), zstd.WithDecoderLowmem(true))
		if err != nil {
			return nil, fmt.Errorf("zstd body: %w", err)
		}
		dec, cl = zr, zr.Close
	default:
		return nil, fmt.Errorf("Content-Encoding %q: want gzip, zstd or none", encoding)
	}
	return &limitedBody{r: dec, left: limit, limit: limit, close: cl}, nil
}

// limitedBody fails a read past the decompressed size limit.
type limitedBody struct {
	r     io.Reader
	left  int64
	limit int64
	close func()
}

type decodedLimitError struct{ limit int64 }

func (e *decodedLimitError) Error() string {
	return fmt.Sprintf("body larger than %d bytes decompressed", e.limit)
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// At the limit: fine if the body ends here.
		var one [1]byte
		if n, err := b.r.Read(one[:]); n == 0 && err != nil {
			return 0, err
		}
		return 0, &decodedLimitError{b.limit}
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *limitedBody) Close() error {
	if b.close != nil {
		b.close()
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
