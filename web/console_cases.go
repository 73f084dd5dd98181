package web

import "net/http"

// consoleCaseRoutes serves the console's pages of cases and playbook runs.
func (a *api) consoleCaseRoutes(mux *http.ServeMux) {}
