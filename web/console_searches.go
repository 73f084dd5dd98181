package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	"github.com/vigilsec/vigil/meta"
)

// savedSearchesBody is the search page's panel of saved searches.
type savedSearchesBody struct {
	List []savedSearchItem
	// CanSave says the page may offer to save the search it shows (a
	// search that runs, on a server that keeps them).
	CanSave bool
	// Return is the page's own URL, where a deletion comes back to.
	Return string
	Notice string
	Error  string
}

type savedSearchItem struct {
	ID, Name, OwnerName string
	From, To, Tenant    string
	Mine, Shared        bool
	URL                 string
}

// consoleSearchesRoutes mounts the search page's forms that save and
// delete searches.
func (a *api) consoleSearchesRoutes(mux *http.ServeMux) {
	if a.opts.Searches == nil {
		return
	}
	mux.Handle("POST /searches", a.auth(http.HandlerFunc(a.consoleSaveSearch), searchesRoute("search.saved.save", true)))
	mux.Handle("POST /searches/{id}/delete", a.auth(http.HandlerFunc(a.consoleDeleteSearch), searchesRoute("search.saved.delete", true)))
}

// savedSearches fills the search page's panel: the caller's searches and
// the shared ones, each a link to the search page running it in the
// caller's own scope. A server without saved searches, or a caller who is
// no user, has no panel; a list that fails to load says so in the panel
// and leaves the search alone.
func (a *api) savedSearches(ctx context.Context, id Identity, b *searchBody, p searchParams, v url.Values) {
	if a.opts.Searches == nil || id.Principal == "" {
		return
	}
	sb := &savedSearchesBody{Return: p.url()}
	b.Searches = sb
	ss, err := a.opts.Searches.SavedSearches(ctx, id.Principal, id.Scope.Tenants, id.Scope.All)
	if err != nil {
		a.opts.Logger.Error("console: listing saved searches", "err", err)
		sb.Error = "The saved searches could not be listed."
		return
	}
	for _, s := range ss {
		sb.List = append(sb.List, savedSearchItem{ID: s.ID, Name: s.Name, OwnerName: s.OwnerName, From: s.From, To: s.To, Tenant: s.Tenant,
			Mine: s.Owner == id.Principal, Shared: s.Shared, URL: savedSearchURL(s)})
		if saved := v.Get("saved"); saved != "" && saved == s.ID && s.Owner == id.Principal {
			// Not the name, which may be a long word that would widen the
			// page on a narrow screen: the list wraps it.
			sb.Notice = "Saved the search: it is in the list below."
			if s.Shared {
				sb.Notice = "Saved and shared the search: whoever reads your tenants sees it in their list, and runs it in their own tenants."
			}
		}
	}
	if v.Get("deleted") != "" {
		sb.Notice = "Deleted the saved search."
	}
}

// searchForm reads the form of a change to saved searches, which only a
// user makes; false when it answered the request already.
func (a *api) searchForm(w http.ResponseWriter, r *http.Request) (Identity, bool) {
	id, _ := IdentityFrom(r.Context())
	if id.Principal == "" {
		a.consoleError(w, r, http.StatusForbidden, errSearchesNeedUser.Error())
		return id, false
	}
	return id, a.consoleForm(w, r)
}

// consoleSaveSearch answers POST /searches (name, shared, and the search:
// q, from, to, columns, tenant): the search saved, then the search page
// running it, which says so.
func (a *api) consoleSaveSearch(w http.ResponseWriter, r *http.Request) {
	id, ok := a.searchForm(w, r)
	if !ok {
		return
	}
	f := r.PostForm
	s, err := newSavedSearch(id, f.Get("name"), f.Get("q"), f.Get("from"), f.Get("to"), f.Get("columns"), f.Get("tenant"), f.Get("shared") != "", a.opts.Now())
	if err != nil {
		a.consoleError(w, r, http.StatusBadRequest, "The search was not saved: "+err.Error())
		return
	}
	if s, err = a.opts.Searches.SaveSearch(r.Context(), s); err != nil {
		a.opts.Logger.Error("console: saving a search", "err", err)
		a.consoleError(w, r, http.StatusInternalServerError, "Saving the search failed.")
		return
	}
	rec := auditRecord(r.Context())
	rec.Target, rec.Detail = "saved-search:"+s.ID, savedSearchDetail(s)
	seeOther(w, r, savedSearchURL(s)+"&saved="+url.QueryEscape(s.ID))
}

// consoleDeleteSearch answers POST /searches/{id}/delete (return): the
// caller's own saved search deleted, then the page it was deleted from.
func (a *api) consoleDeleteSearch(w http.ResponseWriter, r *http.Request) {
	id, ok := a.searchForm(w, r)
	if !ok {
		return
	}
	err := a.removeSearch(r, id, r.PathValue("id"))
	switch {
	case errors.Is(err, meta.ErrNotFound):
		a.notFoundPage(w, r, "saved search of yours")
		return
	case err != nil:
		a.opts.Logger.Error("console: deleting a saved search", "err", err)
		a.consoleError(w, r, http.StatusInternalServerError, "Deleting the saved search failed.")
		return
	}
	back, err := url.Parse(localReturn(r.PostForm.Get("return")))
	if err != nil || back.Path != "/" {
		back = &url.URL{Path: "/"}
	}
	q := back.Query()
	q.Del("saved")
	q.Set("deleted", "1")
	back.RawQuery = q.Encode()
	seeOther(w, r, back.String())
}
