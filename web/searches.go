package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/vigilsec/vigil/access"
	"github.com/vigilsec/vigil/meta"
	"github.com/vigilsec/vigil/query"
)

// Saved searches: a user's searches of the search page, kept under a
// name to run again, and shared if they say so with whoever reads one of
// their tenants (meta.SavedSearches decides who, in its query). A shared
// search shares its name and its query's text, never events: whoever
// opens it runs it in their own scope (their roles and grants, narrowed
// to its tenant if it names one), so it shows them nothing they could
// not have found by typing the query themselves.

// Limits of a saved search.
const (
	maxSearchName  = 100      // characters
	maxSearchQuery = 16 << 10 // bytes
	maxSearchBody  = 64 << 10 // bytes of a request
)

// errSearchesNeedUser refuses a caller without a principal: a token with
// a role of its own, or the local administrator's, is nobody's.
var errSearchesNeedUser = errors.New("saved searches belong to a user: this token acts for no user (use the console, or a token of a user or service account)")

// searchesRoute is the route of the saved searches' endpoints: whoever may
// use the search page (readers of events, and auditors) may keep the
// searches they run there.
func searchesRoute(action string, page bool) route {
	return route{action: action, perm: access.Read, also: []access.Permission{access.ReadAudit}, page: page}
}

// searchRoutes mounts /api/v1/searches.
func (a *api) searchRoutes(mux *http.ServeMux) {
	if a.opts.Searches == nil {
		return
	}
	mux.Handle("GET /api/v1/searches", a.auth(http.HandlerFunc(a.listSearches), searchesRoute("search.saved.list", false)))
	mux.Handle("GET /api/v1/searches/{id}", a.auth(http.HandlerFunc(a.getSearch), searchesRoute("search.saved.read", false)))
	mux.Handle("POST /api/v1/searches", a.auth(http.HandlerFunc(a.saveSearch), searchesRoute("search.saved.save", false)))
	mux.Handle("DELETE /api/v1/searches/{id}", a.auth(http.HandlerFunc(a.deleteSearch), searchesRoute("search.saved.delete", false)))
}

// A SearchRequest is the body of POST /api/v1/searches: a search as the
// search page's URL has it (q, from, to, columns, tenant), under a name.
type SearchRequest struct {
	Name  string `json:"name"`
	Query string `json:"query"`
	// From and To are relative ("-24h") or RFC 3339 times, kept as
	// written; From left out is the search page's default ("-24h"), ""
	// is from the first event on; To "" is now.
	From    *string `json:"from"`
	To      string  `json:"to"`
	Columns string  `json:"columns"`
	Tenant  string  `json:"tenant"`
	// Shared lists the search to whoever reads one of the caller's
	// tenants, who run it in their own scope.
	Shared bool `json:"shared"`
}

// A SavedSearchInfo is a saved search as the API shows it: Mine says the
// caller owns it (and may delete it), URL is the search page running it.
type SavedSearchInfo struct {
	meta.SavedSearch
	Mine bool   `json:"mine"`
	URL  string `json:"url"`
}

// savedSearchURL is the search page running s.
func savedSearchURL(s meta.SavedSearch) string {
	return searchParams{q: s.Query, from: s.From, to: s.To, tenant: s.Tenant, columns: s.Columns}.url()
}

func savedSearchInfo(s meta.SavedSearch, principal string) SavedSearchInfo {
	return SavedSearchInfo{SavedSearch: s, Mine: s.Owner == principal, URL: savedSearchURL(s)}
}

// newSavedSearch checks a search to save for id, and returns it: a name
// of 1 to maxSearchName characters, without control characters, a query
// that parses, a range and columns the search page takes, and text
// PostgreSQL stores.
func newSavedSearch(id Identity, name, q, from, to, columns, tenant string, shared bool, now time.Time) (meta.SavedSearch, error) {
	name = strings.TrimSpace(name)
	s := meta.SavedSearch{Owner: id.Principal, OwnerName: id.Name, Name: name, Query: q, From: strings.TrimSpace(from), To: strings.TrimSpace(to),
		Columns: strings.TrimSpace(columns), Tenant: strings.TrimSpace(tenant), Shared: shared, Created: now, Updated: now,
		Audience: audienceOf(id)}
	for _, f := range []struct{ field, v string }{{"name", name}, {"query", q}, {"from", s.From}, {"to", s.To}, {"columns", s.Columns}, {"tenant", s.Tenant}} {
		if !utf8.ValidString(f.v) || strings.ContainsRune(f.v, 0) {
			return s, fmt.Errorf("%s: not UTF-8 text", f.field)
		}
	}
	switch n := utf8.RuneCountInString(name); {
	case n == 0:
		return s, errors.New("name: give the search a name")
	case n > maxSearchName:
		return s, fmt.Errorf("name: at most %d characters", maxSearchName)
	case strings.ContainsFunc(name, unicode.IsControl):
		return s, errors.New("name: no control characters")
	}
	if len(q) > maxSearchQuery {
		return s, fmt.Errorf("query: at most %d KiB", maxSearchQuery>>10)
	}
	if _, err := query.Parse(q); err != nil {
		return s, err // "query: column N: …"
	}
	if _, _, err := timeRange(url.Values{"from": {s.From}, "to": {s.To}}, now); err != nil {
		return s, err
	}
	if _, err := parseColumns(s.Columns); err != nil {
		return s, err
	}
	if len(s.Tenant) > 200 || strings.ContainsFunc(s.Tenant, unicode.IsControl) {
		return s, errors.New("tenant: not a tenant's name")
	}
	return s, nil
}

// audienceOf is who a search id shares is listed to: the readers of the
// tenants id reads (not those only shared with it, which are another
// team's), or of every tenant's for a reader of all.
func audienceOf(id Identity) []string {
	s := id.Identity.Scope(access.Read)
	if s.All {
		return []string{access.AllTenants}
	}
	return slices.Clone(s.Tenants)
}

// savedSearchDetail is what the audit trail says of a search saved.
func savedSearchDetail(s meta.SavedSearch) string {
	shared := ""
	if s.Shared {
		shared = ", shared"
	}
	return fmt.Sprintf("saved search %s %q%s: q=%q from=%q to=%q tenant=%q", s.ID, s.Name, shared, s.Query, s.From, s.To, s.Tenant)
}

// listSearches answers GET /api/v1/searches: the caller's saved searches
// and those others shared, by name.
func (a *api) listSearches(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	if id.Principal == "" {
		writeError(w, http.StatusForbidden, errSearchesNeedUser)
		return
	}
	ss, err := a.opts.Searches.SavedSearches(r.Context(), id.Principal, id.Scope.Tenants, id.Scope.All)
	if err != nil {
		a.internalError(w, "listing saved searches", err)
		return
	}
	out := make([]SavedSearchInfo, 0, len(ss))
	for _, s := range ss {
		out = append(out, savedSearchInfo(s, id.Principal))
	}
	writeJSON(w, http.StatusOK, out)
}

// visibleSearch returns the saved search with the id if the caller owns
// it or it is shared with one of the caller's tenants; else ErrNotFound,
// alike for one that does not exist.
func (a *api) visibleSearch(r *http.Request, id Identity, searchID string) (meta.SavedSearch, error) {
	return a.opts.Searches.SavedSearch(r.Context(), searchID, id.Principal, id.Scope.Tenants, id.Scope.All)
}

// getSearch answers GET /api/v1/searches/{id}.
func (a *api) getSearch(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	if id.Principal == "" {
		writeError(w, http.StatusForbidden, errSearchesNeedUser)
		return
	}
	s, err := a.visibleSearch(r, id, r.PathValue("id"))
	switch {
	case errors.Is(err, meta.ErrNotFound):
		writeError(w, http.StatusNotFound, errors.New("no such saved search"))
	case err != nil:
		a.internalError(w, "reading a saved search", err)
	default:
		writeJSON(w, http.StatusOK, savedSearchInfo(s, id.Principal))
	}
}

// saveSearch answers POST /api/v1/searches (a SearchRequest) with the
// search saved, 201.
func (a *api) saveSearch(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	if id.Principal == "" {
		writeError(w, http.StatusForbidden, errSearchesNeedUser)
		return
	}
	var req SearchRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxSearchBody)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("reading the request: %w", err))
		return
	}
	from := defaultFrom
	if req.From != nil {
		from = *req.From
	}
	s, err := newSavedSearch(id, req.Name, req.Query, from, req.To, req.Columns, req.Tenant, req.Shared, a.opts.Now())
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	if s, err = a.opts.Searches.SaveSearch(r.Context(), s); err != nil {
		a.internalError(w, "saving a search", err)
		return
	}
	rec := auditRecord(r.Context())
	rec.Target, rec.Detail = "saved-search:"+s.ID, savedSearchDetail(s)
	writeJSON(w, http.StatusCreated, savedSearchInfo(s, id.Principal))
}

// deleteSearch answers DELETE /api/v1/searches/{id}: the caller's own
// saved search only; another's, shared or not, is as missing as one that
// does not exist.
func (a *api) deleteSearch(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	if id.Principal == "" {
		writeError(w, http.StatusForbidden, errSearchesNeedUser)
		return
	}
	err := a.removeSearch(r, id, r.PathValue("id"))
	switch {
	case errors.Is(err, meta.ErrNotFound):
		writeError(w, http.StatusNotFound, errors.New("no such saved search of yours"))
	case err != nil:
		a.internalError(w, "deleting a saved search", err)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

// removeSearch deletes the caller's saved search with the id, and says
// so in the request's audit record; another's is ErrNotFound.
func (a *api) removeSearch(r *http.Request, id Identity, searchID string) error {
	rec := auditRecord(r.Context())
	rec.Target = "saved-search:" + searchID
	s, err := a.visibleSearch(r, id, searchID)
	if err == nil && s.Owner != id.Principal {
		err = meta.ErrNotFound
	}
	if err == nil {
		err = a.opts.Searches.DeleteSearch(r.Context(), searchID, id.Principal)
	}
	if errors.Is(err, meta.ErrNotFound) {
		rec.Detail = "refused: no saved search " + searchID + " of the caller's"
	}
	if err != nil {
		return err
	}
	rec.Detail = fmt.Sprintf("deleted saved search %s %q", s.ID, s.Name)
	return nil
}
