package chart

import (
	"context"
	"html/template"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"

	"github.com/vigilsec/vigil/web/browsertest"
)

// The page a browser test loads: a histogram embedded by html/template,
// under the console's kind of Content-Security-Policy, with a script
// (allowed: it is of the page's origin) that records what the policy
// refuses.
var testPage = template.Must(template.New("").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>chart</title>
<link rel="stylesheet" href="/static/page.css">
<script src="/static/hook.js"></script>
<script src="/static/chart.js" defer></script>
</head><body><h1>{{.Title}}</h1>{{.Chart}}</body></html>`))

const testHook = `window.violations = [];
document.addEventListener("securitypolicyviolation", (e) => window.violations.push(e.violatedDirective + " " + e.blockedURI));`

func scriptServer(t *testing.T) *httptest.Server {
	t0 := time.Date(2026, 12, 3, 14, 0, 0, 0, time.UTC)
	mux := http.NewServeMux()
	page := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		err := testPage.Execute(w, map[string]any{
			"Title": r.URL.Path,
			"Chart": Histogram(minutes(t0, 60, 3, 7, 0, 12, 5, 0, 0, 1, 9, 4), HistogramOptions{
				Label: "events over time", Link: func(from, to time.Time) string { return "/zoom?" + zoom(from, to)[len("/search?"):] },
			}),
		})
		if err != nil {
			t.Error(err)
		}
	}
	mux.HandleFunc("/page", page)
	mux.HandleFunc("/zoom", page)
	static := func(ct, body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", ct)
			w.Write([]byte(body))
		}
	}
	mux.HandleFunc("/static/chart.js", static("text/javascript", string(Script)))
	mux.HandleFunc("/static/hook.js", static("text/javascript", testHook))
	mux.HandleFunc("/static/page.css", static("text/css", `body { margin: 0 } svg.chart { display: block; width: 1000px; height: auto }
.chart-bar { fill: steelblue } .chart-brush { fill: orange }`))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// mouse dispatches a mouse event with the left button, held (buttons 1)
// when pressed or moved.
func mouse(typ input.DispatchMouseEventType, x, y float64) chromedp.Action[chromedp.Void] {
	return chromedp.MouseEvent(typ, x, y, chromedp.ButtonLeft, func(p *input.DispatchMouseEventParams) {
		if typ != chromedp.MouseReleased {
			p.Buttons = 1
		}
		if typ != chromedp.MouseMoved {
			p.ClickCount = 1
		}
	})
}

// barAt returns the middle of the n-th bar (of the buckets with events)
// on screen, and its data-from and data-to.
type bar struct {
	X, Y, W  float64
	From, To string
}

func barAt(t *testing.T, ctx context.Context, n int) bar {
	t.Helper()
	b, err := chromedp.Run(ctx, chromedp.Evaluate[bar](`(() => {
		const r = document.querySelectorAll("rect.chart-bar")[`+strconv.Itoa(n)+`];
		const b = r.getBoundingClientRect();
		return {X: b.x + b.width / 2, Y: b.y + b.height - 2, W: b.width, From: r.dataset.from, To: r.dataset.to};
	})()`))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func noViolations(t *testing.T, ctx context.Context) {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`window.violations`))
	if err != nil {
		t.Fatal(err)
	}
	if len(v) > 0 {
		t.Errorf("the Content-Security-Policy refused: %v", v)
	}
}

func TestScriptBrushing(t *testing.T) {
	ctx := browsertest.New(t)
	srv := scriptServer(t)
	open := func() {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/page?q=error&from=old&to=old")); err != nil {
			t.Fatal(err)
		}
		browsertest.Until(t, ctx, `document.readyState === "complete" && window.violations !== undefined`, 10*time.Second)
		noViolations(t, ctx)
	}
	query := func() url.Values {
		t.Helper()
		loc, err := chromedp.Run(ctx, chromedp.Location())
		if err != nil {
			t.Fatal(err)
		}
		u, err := url.Parse(loc)
		if err != nil {
			t.Fatal(err)
		}
		return u.Query()
	}

	// A drag from the 2nd bar to the 5th selects from the start of the
	// one to the end of the other; the page's other parameters stay.
	open()
	a, b := barAt(t, ctx, 1), barAt(t, ctx, 4)
	if err := chromedp.Do(ctx,
		mouse(chromedp.MousePressed, a.X, a.Y),
		mouse(chromedp.MouseMoved, a.X+10, a.Y),
		mouse(chromedp.MouseMoved, b.X, b.Y),
	); err != nil {
		t.Fatal(err)
	}
	browsertest.Until(t, ctx, `document.querySelector("rect.chart-brush") !== null`, 5*time.Second)
	noViolations(t, ctx) // drawing the selection broke no rule either
	if err := chromedp.Do(ctx, mouse(chromedp.MouseReleased, b.X, b.Y)); err != nil {
		t.Fatal(err)
	}
	browsertest.Until(t, ctx, `location.search.includes("from=2026")`, 10*time.Second)
	if q := query(); q.Get("from") != a.From || q.Get("to") != b.To || q.Get("q") != "error" || strings.Contains(q.Encode(), "old") {
		t.Errorf("brushed %s to %s: query %v", a.From, b.To, q)
	}

	// A press and release without a drag follows the bar's link.
	open()
	c := barAt(t, ctx, 2)
	if err := chromedp.Do(ctx, mouse(chromedp.MousePressed, c.X, c.Y), mouse(chromedp.MouseReleased, c.X, c.Y)); err != nil {
		t.Fatal(err)
	}
	browsertest.Until(t, ctx, `location.pathname === "/zoom"`, 10*time.Second)
	if q := query(); q.Get("from") != c.From || q.Get("to") != c.To {
		t.Errorf("clicked the bar of %s to %s: query %v", c.From, c.To, q)
	}

	// A drag over no bar (the empty minutes 14:05 and 14:06) takes its
	// times from the plot's edges.
	open()
	d, e := barAt(t, ctx, 3), barAt(t, ctx, 4) // 14:04 and 14:07
	x0, x1 := d.X+d.W*0.9, e.X-e.W*0.9
	if err := chromedp.Do(ctx,
		mouse(chromedp.MousePressed, x0, d.Y),
		mouse(chromedp.MouseMoved, (x0+x1)/2, d.Y),
		mouse(chromedp.MouseMoved, x1, d.Y),
		mouse(chromedp.MouseReleased, x1, d.Y),
	); err != nil {
		t.Fatal(err)
	}
	browsertest.Until(t, ctx, `location.search.includes("from=2026")`, 10*time.Second)
	q := query()
	from, err1 := time.Parse(time.RFC3339, q.Get("from"))
	to, err2 := time.Parse(time.RFC3339, q.Get("to"))
	lo, hi := time.Date(2026, 12, 3, 14, 5, 0, 0, time.UTC), time.Date(2026, 12, 3, 14, 7, 0, 0, time.UTC)
	if err1 != nil || err2 != nil || from.Before(lo) || to.After(hi) || !to.After(from) {
		t.Errorf("brushed the gap 14:05–14:07: query %v", q)
	}

	// Escape cancels a selection: no navigation, no selection left.
	open()
	if err := chromedp.Do(ctx,
		mouse(chromedp.MousePressed, a.X, a.Y),
		mouse(chromedp.MouseMoved, b.X, b.Y),
		chromedp.KeyEvent("\u001b"),
		mouse(chromedp.MouseReleased, b.X, b.Y),
	); err != nil {
		t.Fatal(err)
	}
	browsertest.Until(t, ctx, `document.querySelector("rect.chart-brush") === null`, 5*time.Second)
	if q := query(); q.Get("from") != "old" {
		t.Errorf("Escape did not cancel: query %v", q)
	}
}
