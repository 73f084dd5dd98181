package main

import (
	"html"
	"strconv"
	"strings"
	"testing"
)

// TestConsoleEventEnrichment: the page of a demo event done with a
// role's temporary credential, from an address the demo's watch list
// names, shows the threat-intel hit and the chain of credentials back to
// the IAM user who assumed the role, with a link to the event that
// issued it.
func TestConsoleEventEnrichment(t *testing.T) {
	srv := serveWith(t, t.TempDir(), "--listen", "127.0.0.1:0", "--demo")
	var seq int
	var origin string
	srv.wait("an enriched event of an assumed role", func() bool {
		_, rows, _ := srv.searchAs(srv.token, "actor_type:AssumedRole intel:demo-watchlist session_origin:* | sort seq | head 1 | fields seq, session_origin")
		if len(rows) == 1 {
			n, _ := rows[0]["seq"].(float64)
			seq, origin = int(n), rows[0]["session_origin"].(string)
		}
		return seq > 0
	})
	page := func(path string) string { return html.UnescapeString(srv.page(path)) }
	body := page("/events/" + strconv.Itoa(seq))
	for _, want := range []string{
		`id="enrichment-title"`, "demo-watchlist</strong> names",
		`id="identity-title"`, "issued by AssumeRole", origin, `<a href="/events/`, "Origin: <strong>",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("event %d's page lacks %q", seq, want)
		}
	}
	// An event of a long-lived credential has no chain to follow.
	_, rows, _ := srv.searchAs(srv.token, "actor_type:IAMUser | head 1 | fields seq")
	if len(rows) != 1 {
		t.Fatal("no IAM user's event")
	}
	if body := page("/events/" + strconv.Itoa(int(rows[0]["seq"].(float64)))); strings.Contains(body, `id="identity-title"`) {
		t.Error("an IAM user's event has an identity chain")
	}
}
