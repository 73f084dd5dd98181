package web

import "net/http"

// consoleMonitorRoutes serves the console's pages of monitoring: KPIs, coverage, inventory, identities.
func (a *api) consoleMonitorRoutes(mux *http.ServeMux) {}
