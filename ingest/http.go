package ingest

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/parse"
	"github.com/vigilsec/vigil/store"
)

// HTTPOptions configure the HTTP ingest handler.
type HTTPOptions struct {
	// Parse are the parse options; Tenant, Origin and Received are set
	// per request.
	Parse parse.Options
	// Tenant names the tenant a request's events belong to; it is where
	// the caller's identity is checked.
	Tenant func(*http.Request) (string, error)
	// MaxBody bounds a request body as sent (compressed); 0 means 64 MiB.
	MaxBody int64
	// Batch is how many events are stored at once; 0 means 10000.
	Batch  int
	Logger *slog.Logger
}

// IngestResponse is the answer to an ingest request.
type IngestResponse struct {
	Format      string `json:"format"`
	Accepted    int    `json:"accepted"`
	Quarantined int    `json:"quarantined"`
	Error       string `json:"error,omitempty"`
}

// HTTPHandler accepts logs posted to it: any format vigil parses, plain
// or gzip, named by the format query parameter or the X-Vigil-Format
// header, or detected. Events are acknowledged only once stored.
func HTTPHandler(sink Sink, opts HTTPOptions) http.Handler {
	if opts.MaxBody <= 0 {
		opts.MaxBody = 64 << 20
	}
	if opts.Batch <= 0 {
		opts.Batch = 10000
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeJSON(w, http.StatusMethodNotAllowed, IngestResponse{Error: "use POST"})
			return
		}
		tenant, err := opts.Tenant(r)
		if err != nil {
			writeJSON(w, http.StatusForbidden, IngestResponse{Error: err.Error()})
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
			writeJSON(w, http.StatusBadRequest, IngestResponse{Error: fmt.Sprintf("unknown format %q", format)})
			return
		}
		po := opts.Parse
		po.Tenant = tenant
		po.Received = time.Now()
		po.Origin = "http:" + r.RemoteAddr
		if o := r.URL.Query().Get("origin"); o != "" {
			po.Origin = o
		}
		body := http.MaxBytesReader(w, r.Body, opts.MaxBody)
		var (
			resp IngestResponse
			evs  []*event.Event
			qs   []store.Quarantined
		)
		flush := func() error {
			if err := sink.Append(r.Context(), evs); err != nil {
				return err
			}
			if err := sink.Quarantine(r.Context(), qs); err != nil {
				return err
			}
			resp.Accepted += len(evs)
			resp.Quarantined += len(qs)
			evs, qs = evs[:0], qs[:0]
			return nil
		}
		var storeErr error
		format, err = parse.Parse(body, format, po, func(res parse.Result) error {
			if res.Err != nil {
				qs = append(qs, quarantined(res, po))
			} else {
				evs = append(evs, res.Event)
			}
			if len(evs)+len(qs) >= opts.Batch {
				if storeErr = flush(); storeErr != nil {
					return storeErr
				}
			}
			return nil
		})
		resp.Format = format
		if storeErr == nil {
			storeErr = flush()
		}
		var tooBig *http.MaxBytesError
		switch {
		case storeErr != nil:
			opts.Logger.Error("ingest: storing events failed", "err", storeErr)
			resp.Error = "storing events failed; the unacknowledged remainder must be sent again"
			writeJSON(w, http.StatusServiceUnavailable, resp)
		case errors.As(err, &tooBig):
			resp.Error = fmt.Sprintf("body larger than %d bytes; events before the limit were accepted", opts.MaxBody)
			writeJSON(w, http.StatusRequestEntityTooLarge, resp)
		case errors.Is(err, parse.ErrUnknownFormat):
			resp.Error = "format not recognized: name it with ?format="
			writeJSON(w, http.StatusBadRequest, resp)
		case err != nil:
			resp.Error = err.Error()
			writeJSON(w, http.StatusBadRequest, resp)
		default:
			writeJSON(w, http.StatusOK, resp)
		}
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
