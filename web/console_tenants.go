package web

import (
	"context"
	"net/http"
	"slices"
	"time"

	"github.com/vigilsec/vigil/access"
	"github.com/vigilsec/vigil/query"
)

// tenantsBody is the tenants page's data.
type tenantsBody struct {
	Tabs    []adminTab
	Tenants []tenantRow
}

// A tenantRow is what an administrator sees of a tenant: what it sent,
// who holds roles in it, and what it shares.
type tenantRow struct {
	Name        string
	Events      int64
	First, Last time.Time
	Sources     []string
	// Bindings counts the roles held in the tenant itself (those in
	// every tenant are not counted); Grants the grants of its events in
	// force.
	Bindings, Grants int
	// Search is the search of its events.
	Search string
}

// consoleTenants answers GET /admin/tenants: the tenants the caller
// manages. A tenant is known by its events and by the roles held in it;
// there is nothing else to create.
func (a *api) consoleTenants(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	scope := id.Identity.Scope(access.Manage)
	b := &tenantsBody{Tabs: a.adminTabs(id, "/admin/tenants")}
	rows, err := a.tenantRows(r.Context(), id, scope)
	if err != nil {
		a.opts.Logger.Error("console: reading the tenants", "err", err)
		a.consoleError(w, r, http.StatusInternalServerError, "Reading the tenants failed.")
		return
	}
	b.Tenants = rows
	a.render(w, r, http.StatusOK, "admin_tenants", &consolePage{Title: "Tenants", Nav: "admin", Body: b})
}

// tenantRows gathers the tenants scope holds, by name.
func (a *api) tenantRows(ctx context.Context, id Identity, scope query.Scope) ([]tenantRow, error) {
	byName := map[string]*tenantRow{}
	row := func(name string) *tenantRow {
		if byName[name] == nil {
			byName[name] = &tenantRow{Name: name, Search: searchParams{q: "*", from: "-7d", tenant: name}.url()}
		}
		return byName[name]
	}
	// Over all time: a tenant that sent nothing lately is still one.
	counts, err := a.stats(ctx, scope, "* | stats count(), min(time), max(time) by tenant")
	if err != nil {
		return nil, err
	}
	for _, c := range counts {
		t := row(cellOf(c[0]).Text)
		t.Events, _ = c[1].(int64)
		t.First, _ = c[2].(time.Time)
		t.Last, _ = c[3].(time.Time)
	}
	sources, err := a.stats(ctx, scope, "* | stats count() by tenant, source")
	if err != nil {
		return nil, err
	}
	for _, s := range sources {
		t := row(cellOf(s[0]).Text)
		t.Sources = append(t.Sources, cellOf(s[1]).Text)
	}
	bindings, err := a.opts.Access.Bindings(ctx)
	if err != nil {
		return nil, err
	}
	for _, sb := range bindings {
		if sb.Tenant != access.AllTenants && scope.Includes(sb.Tenant) {
			row(sb.Tenant).Bindings++
		}
	}
	grants, err := a.grantsOf(ctx, id)
	if err != nil {
		return nil, err
	}
	now := a.opts.Now()
	for _, g := range grants {
		if lifeState(g.Revoked, g.Expires, now) == "active" && scope.Includes(g.Owner) {
			row(g.Owner).Grants++
		}
	}
	out := make([]tenantRow, 0, len(byName))
	for _, t := range byName {
		slices.Sort(t.Sources)
		out = append(out, *t)
	}
	slices.SortFunc(out, func(a, b tenantRow) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	return out, nil
}

// stats runs a statistics query over every event of scope and returns
// its rows.
func (a *api) stats(ctx context.Context, scope query.Scope, text string) ([][]any, error) {
	q, err := query.Parse(text)
	if err != nil {
		return nil, err
	}
	res, err := a.opts.Store.Search(ctx, query.Request{Query: q, Scope: scope, Limit: 10_000})
	if err != nil {
		return nil, err
	}
	return res.Rows, nil
}
