package web

import "net/http"

// consoleAdminRoutes serves the console's pages of administration: principals, groups, roles, tokens, grants, exports, the audit trail.
func (a *api) consoleAdminRoutes(mux *http.ServeMux) {}
