// Package web is vigil's HTTP API: search, ingest, health and metrics,
// behind token authentication.
package web

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vigilsec/vigil/query"
	"github.com/vigilsec/vigil/store"
)

// Searcher is what the API needs of the store.
type Searcher interface {
	Search(ctx context.Context, req query.Request) (*store.Result, error)
	SearchQuarantine(ctx context.Context, text string, scope query.Scope, from, to time.Time, limit int) (*store.Result, error)
}

// Options configure the API.
type Options struct {
	Store  Searcher
	Ingest http.Handler // mounted at /api/v1/ingest
	// Ledger proves events are in the ledger (/api/v1/events/{seq}/proof);
	// LedgerKey is the public key of its checkpoints.
	Ledger    Prover
	LedgerKey string
	// AdminToken is the token of the local administrator, who sees every
	// tenant. (Per-tenant tokens come with the access model.)
	AdminToken string
	Gatherer   prometheus.Gatherer
	Logger     *slog.Logger
	Now        func() time.Time
	// MaxLimit caps the rows a search returns.
	MaxLimit int
}

// Handler returns the API's handler.
func Handler(opts Options) http.Handler {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxLimit <= 0 {
		opts.MaxLimit = 100000
	}
	a := &api{opts: opts}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte("ok\n"))
	})
	mux.Handle("GET /metrics", a.auth(promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{})))
	mux.Handle("GET /api/v1/search", a.auth(http.HandlerFunc(a.search)))
	if opts.Ledger != nil {
		mux.Handle("GET /api/v1/events/{seq}/proof", a.auth(http.HandlerFunc(a.proof)))
	}
	if opts.Ingest != nil {
		mux.Handle("/api/v1/ingest", a.auth(opts.Ingest))
	}
	return mux
}

type api struct {
	opts Options
}

type identityKey struct{}

// Identity is who made a request.
type Identity struct {
	Name  string
	Scope query.Scope
}

// IdentityFrom returns the authenticated caller of a request.
func IdentityFrom(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(Identity)
	return id, ok
}

// auth admits requests bearing a valid token.
func (a *api) auth(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || a.opts.AdminToken == "" || subtle.ConstantTimeCompare([]byte(tok), []byte(a.opts.AdminToken)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="vigil"`)
			writeError(w, http.StatusUnauthorized, errors.New("missing or invalid API token"))
			return
		}
		id := Identity{Name: "admin", Scope: query.Scope{All: true}}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), identityKey{}, id)))
	})
}

// search answers GET /api/v1/search?q=&from=&to=&limit=&tenant=&quarantine=.
func (a *api) search(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	v := r.URL.Query()
	now := a.opts.Now()
	from, err := query.ParseTimeArg(v.Get("from"), now)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	to, err := query.ParseTimeArg(v.Get("to"), now)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	limit := 100
	if s := v.Get("limit"); s != "" {
		if limit, err = strconv.Atoi(s); err != nil || limit < 0 {
			writeError(w, http.StatusBadRequest, errors.New("limit: want a number ≥ 0"))
			return
		}
	}
	if limit == 0 || limit > a.opts.MaxLimit {
		limit = a.opts.MaxLimit
	}
	scope := id.Scope
	if t := v.Get("tenant"); t != "" {
		scope = scope.Narrow(t)
	}
	var res *store.Result
	if v.Get("quarantine") != "" {
		res, err = a.opts.Store.SearchQuarantine(r.Context(), v.Get("q"), scope, from, to, limit)
	} else {
		q, perr := query.Parse(v.Get("q"))
		if perr != nil {
			writeError(w, http.StatusBadRequest, perr)
			return
		}
		res, err = a.opts.Store.Search(r.Context(), query.Request{Query: q, Scope: scope, From: from, To: to, Limit: limit})
	}
	if err != nil {
		var qe *query.Error
		if errors.As(err, &qe) {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		a.opts.Logger.Error("search failed", "err", err)
		writeError(w, http.StatusInternalServerError, errors.New("search failed"))
		return
	}
	if res.Rows == nil {
		res.Rows = [][]any{}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(res)
}

func writeError(w http.ResponseWriter, status int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}
