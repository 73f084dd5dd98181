package web

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/vigilsec/vigil/access"
	"github.com/vigilsec/vigil/ledger"
	"github.com/vigilsec/vigil/query"
)

// A Bundler writes the evidence bundles of exports and opens them again.
type Bundler interface {
	// WriteBundle writes the bundle of the events req selects, named id,
	// and says how many events it holds and its SHA-256; ErrNoEvents
	// when nothing matches.
	WriteBundle(ctx context.Context, id string, req query.Request, custody ledger.Custody) (events int, sum [32]byte, err error)
	// OpenBundle opens the bundle named id.
	OpenBundle(id string) (io.ReadSeekCloser, error)
	// RemoveBundle deletes the bundle named id, when its export is
	// revoked.
	RemoveBundle(id string) error
}

// ErrNoEvents is what a Bundler says when no event matches an export.
var ErrNoEvents = errors.New("no event matches")

// defaultLink is how long an export's link opens it when not told.
const defaultLink = 24 * time.Hour

func (a *api) exportRoutes(mux *http.ServeMux) {
	read := route{action: "export", perm: access.Read}
	mux.Handle("POST /api/v1/exports", a.auth(http.HandlerFunc(a.createExport), read))
	mux.Handle("GET /api/v1/exports", a.auth(http.HandlerFunc(a.exports), route{action: "export.list", perm: access.Read}))
	mux.Handle("DELETE /api/v1/exports/{id}", a.auth(http.HandlerFunc(a.revokeExport), route{action: "export.revoke", perm: access.Read}))
	// The link is the credential: no token, no session, and so no
	// identity to scope by. What it opens was scoped when the bundle was
	// written.
	mux.HandleFunc("GET /api/v1/exports/{id}/bundle", a.downloadExport)
}

// An exportAnswer is an export with the link that opens it.
type exportAnswer struct {
	access.Export
	Link string `json:"link,omitempty"`
}

// exportParams are what an export is asked for with: the query, its
// range and tenant, the reason the chain of custody records, and how many
// hours its link opens the bundle (0: 24).
type exportParams struct {
	Query  string `json:"query"`
	From   string `json:"from"`
	To     string `json:"to"`
	Tenant string `json:"tenant"`
	Reason string `json:"reason"`
	Hours  int    `json:"hours"`
}

// An exportError is why an export was not made, with the status to
// answer with.
type exportError struct {
	status int
	err    error
}

func (e *exportError) Error() string { return e.err.Error() }
func (e *exportError) Unwrap() error { return e.err }

// createExport answers POST /api/v1/exports {"query", "from", "to",
// "tenant", "reason", "hours"}: it writes the evidence bundle of the
// events the caller reads that the query selects, and answers with a
// link that opens it, signed and expiring after hours (24 by default,
// at most a week).
func (a *api) createExport(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	var body exportParams
	if err := decodeBody(r, &body); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	ans, xerr := a.makeExport(r.Context(), id, body)
	if xerr != nil {
		writeError(w, xerr.status, xerr.err)
		return
	}
	writeJSON(w, http.StatusCreated, ans)
}

// makeExport writes the evidence bundle of the events id reads that p
// selects, records the export and returns it with its link, as the API
// and the console's search page ask for one. The request's audit record
// names the export.
func (a *api) makeExport(ctx context.Context, id Identity, p exportParams) (exportAnswer, *exportError) {
	fail := func(status int, err error) (exportAnswer, *exportError) {
		return exportAnswer{}, &exportError{status: status, err: err}
	}
	now := a.opts.Now()
	from, to, err := timeRange(url.Values{"from": {p.From}, "to": {p.To}}, now)
	switch {
	case err != nil:
		return fail(http.StatusBadRequest, err)
	case from.IsZero():
		return fail(http.StatusBadRequest, errors.New("from: an export names the time its events start"))
	case strings.TrimSpace(p.Reason) == "":
		return fail(http.StatusBadRequest, errors.New("reason: an export needs a reason (a case or ticket), which its chain of custody records"))
	case p.Hours < 0 || time.Duration(p.Hours)*time.Hour > access.MaxExportLink:
		return fail(http.StatusBadRequest, fmt.Errorf("hours: a link opens its bundle for 1 to %d hours", int(access.MaxExportLink.Hours())))
	}
	if p.Query == "" {
		p.Query = "*"
	}
	q, err := query.Parse(p.Query)
	if err != nil {
		return fail(http.StatusBadRequest, err)
	}
	scope := requestScope(id, url.Values{"tenant": {p.Tenant}})
	// A bundle holds the ledger's records as they were written, since
	// that is what its proofs prove: there is no redacting them.
	if scope.Redacts() {
		return fail(http.StatusForbidden, errors.New("a grant that hides fields from you cannot be exported: an evidence bundle holds whole records"))
	}
	link := defaultLink
	if p.Hours > 0 {
		link = time.Duration(p.Hours) * time.Hour
	}
	e := access.Export{
		ID: access.NewExportID(), Tenants: access.ExportTenants(scope), Query: p.Query, From: from, To: to,
		Reason: p.Reason, CreatedBy: id.Name, Creator: creatorOf(id), Expires: now.Add(link),
	}
	rec := auditRecord(ctx)
	rec.Target = "export:" + e.ID
	custody := ledger.Custody{ExportedBy: id.Name + " (" + id.Credential + ")", ExportedAt: now.UTC(), Query: p.Query, From: from, To: to, Reason: p.Reason}
	n, sum, err := a.opts.Exports.WriteBundle(ctx, e.ID, query.Request{Query: q, Scope: scope, From: from, To: to}, custody)
	switch {
	case errors.Is(err, ErrNoEvents):
		return fail(http.StatusUnprocessableEntity, errors.New("no event you read matches; nothing exported"))
	case err != nil:
		a.opts.Logger.Error("writing an evidence bundle", "export", e.ID, "err", err)
		return fail(http.StatusInternalServerError, errors.New("writing the evidence bundle failed"))
	}
	e.Events, e.SHA256 = n, hex.EncodeToString(sum[:])
	recorded, err := a.opts.Access.RecordExport(ctx, e)
	if err != nil {
		// A bundle no record names is one nobody could revoke.
		if rerr := a.opts.Exports.RemoveBundle(e.ID); rerr != nil {
			a.opts.Logger.Error("deleting an unrecorded export's bundle", "export", e.ID, "err", rerr)
		}
		return fail(a.accessStatus(err))
	}
	e = recorded
	rec.Detail = fmt.Sprintf("%d events, sha256 %s, link until %s: %s", e.Events, e.SHA256, e.Expires.Format(time.RFC3339), e.Reason)
	ans, err := a.withLink(ctx, e)
	if err != nil {
		return fail(a.accessStatus(err))
	}
	return ans, nil
}

// accessStatus is the status and error accessError answers err with.
func (a *api) accessStatus(err error) (int, error) {
	if errors.Is(err, access.ErrNotFound) {
		return http.StatusNotFound, err
	}
	a.opts.Logger.Error("access", "err", err)
	return http.StatusInternalServerError, errors.New("the access layer failed")
}

// creatorOf is what an export keeps of who made it: the principal, or
// the credential of a token with a role of its own.
func creatorOf(id Identity) string {
	if id.Principal != "" {
		return "principal:" + id.Principal
	}
	return id.Credential
}

// withLink adds its link to an export in force.
func (a *api) withLink(ctx context.Context, e access.Export) (exportAnswer, error) {
	if !e.Active(a.opts.Now()) {
		return exportAnswer{Export: e}, nil
	}
	sig, err := a.opts.Access.SignExport(ctx, e.ID, e.Expires)
	if err != nil {
		return exportAnswer{}, err
	}
	v := url.Values{"expires": {strconv.FormatInt(e.Expires.Unix(), 10)}, "sig": {sig}}
	return exportAnswer{Export: e, Link: "/api/v1/exports/" + url.PathEscape(e.ID) + "/bundle?" + v.Encode()}, nil
}

// exports answers GET /api/v1/exports: the caller's exports, and those of
// the tenants it reads, with the links of those in force.
func (a *api) exports(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	out, err := a.exportsOf(r.Context(), id)
	if err != nil {
		a.accessError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// exportsOf returns the exports id sees, with the links of those in
// force: its own, and those of the tenants it reads.
func (a *api) exportsOf(ctx context.Context, id Identity) ([]exportAnswer, error) {
	es, err := a.opts.Access.Exports(ctx, creatorOf(id), id.Identity.Scope(access.Read))
	if err != nil {
		return nil, err
	}
	out := make([]exportAnswer, 0, len(es))
	for _, e := range es {
		ans, err := a.withLink(ctx, e)
		if err != nil {
			return nil, err
		}
		out = append(out, ans)
	}
	return out, nil
}

// revokeExport answers DELETE /api/v1/exports/{id}: the link stops
// opening the bundle, which is deleted. Its record stays, for the audit.
func (a *api) revokeExport(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	xid := r.PathValue("id")
	auditRecord(r.Context()).Target = "export:" + xid
	err := a.revokeExportAs(r.Context(), id, xid)
	if errors.Is(err, errNotRevoker) {
		writeError(w, http.StatusForbidden, err)
		return
	}
	if err != nil {
		a.accessError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "revoked"})
}

// errNotRevoker refuses to revoke an export the caller sees but neither
// made nor administers.
var errNotRevoker = errors.New("an export is revoked by who made it or by an administrator of its tenants")

// revokeExportAs revokes export xid for id, as the API and the console
// do: an export id does not see is ErrNotFound, one it sees but may not
// revoke errNotRevoker.
func (a *api) revokeExportAs(ctx context.Context, id Identity, xid string) error {
	e, err := a.opts.Access.Export(ctx, xid)
	if err == nil && !e.VisibleTo(creatorOf(id), id.Identity.Scope(access.Read)) {
		// Another tenant's export is as absent as a missing one.
		err = fmt.Errorf("export %s: %w", xid, access.ErrNotFound)
	}
	if err == nil && !exportRevocable(id, e) {
		return errNotRevoker
	}
	if err == nil {
		err = a.opts.Access.RevokeExport(ctx, xid, id.Name)
	}
	if err != nil {
		return err
	}
	if err := a.opts.Exports.RemoveBundle(xid); err != nil {
		a.opts.Logger.Error("deleting a revoked export's bundle", "export", xid, "err", err)
	}
	return nil
}

// exportRevocable reports whether id may revoke e: who made it may, and
// so may an administrator of all its tenants.
func exportRevocable(id Identity, e access.Export) bool {
	return e.VisibleTo(creatorOf(id), id.Identity.Scope(access.Manage))
}

// downloadExport answers GET /api/v1/exports/{id}/bundle?expires=&sig=:
// the bundle, to whoever holds a link in force. Every use of a link, and
// every refused one, is audited.
func (a *api) downloadExport(w http.ResponseWriter, r *http.Request) {
	remote := remoteIP(r)
	xid := r.PathValue("id")
	rec := &access.Record{Time: a.opts.Now(), Action: "export.download", Kind: "link", Remote: remote, UserAgent: r.UserAgent(),
		Method: r.Method, Path: r.URL.Path, Target: "export:" + xid, Credential: "link"}
	if ok, wait := a.ipLimit.Allow(remote); !ok {
		tooMany(w, wait, "too many requests from your address")
		return
	}
	if locked, wait := a.badAuth.Locked(remote); locked {
		tooMany(w, wait, "too many failed authentications from your address")
		return
	}
	v := r.URL.Query()
	e, err := a.opts.Access.OpenExport(r.Context(), xid, v.Get("expires"), v.Get("sig"))
	if err != nil {
		status, msg := http.StatusForbidden, "this link does not open an export: it is wrong, expired or revoked"
		switch {
		case errors.Is(err, access.ErrBadSignature):
			a.badAuth.Failed(remote)
		case errors.Is(err, access.ErrLinkExpired), errors.Is(err, access.ErrLinkRevoked), errors.Is(err, access.ErrNotFound):
		default:
			a.opts.Logger.Error("opening an export link", "export", xid, "err", err)
			status, msg = http.StatusInternalServerError, "opening the export failed"
		}
		writeError(w, status, errors.New(msg))
		rec.Status, rec.Detail = status, "refused: "+linkReason(err)
		a.audit(r.Context(), rec)
		return
	}
	rec.Tenants, rec.Actor = e.Tenants, "link of "+e.CreatedBy
	f, err := a.opts.Exports.OpenBundle(e.ID)
	if err != nil {
		a.opts.Logger.Error("opening an export's bundle", "export", e.ID, "err", err)
		writeError(w, http.StatusInternalServerError, errors.New("opening the export failed"))
		rec.Status = http.StatusInternalServerError
		a.audit(r.Context(), rec)
		return
	}
	defer f.Close()
	w.Header().Set("Content-Type", "application/zip")
	w.Header().Set("Content-Disposition", `attachment; filename="vigil-evidence-`+e.ID+`.zip"`)
	w.Header().Set("X-Content-SHA256", e.SHA256)
	w.Header().Set("Cache-Control", "no-store")
	sw := &statusWriter{ResponseWriter: w}
	http.ServeContent(sw, r, "", e.Created, f)
	rec.Status, rec.Detail = sw.status(), fmt.Sprintf("%d events, sha256 %s", e.Events, e.SHA256)
	a.audit(r.Context(), rec)
}

// linkReason says why a link was refused, for the audit trail.
func linkReason(err error) string {
	switch {
	case errors.Is(err, access.ErrBadSignature):
		return "bad signature"
	case errors.Is(err, access.ErrLinkExpired):
		return "expired"
	case errors.Is(err, access.ErrLinkRevoked):
		return "revoked"
	case errors.Is(err, access.ErrNotFound):
		return "no such export"
	}
	return "error"
}
