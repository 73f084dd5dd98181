package main

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"

	"github.com/vigilsec/vigil/web/browsertest"
)

// The console is to be keyboard-friendly, accessible, usable at 1280×800
// and on a narrow screen, in light and dark themes. These tests hold it
// to that in a real browser, as the first administrator, who sees every
// section.

// layoutRange is a time range holding both teams' CloudTrail.
const layoutRange = "from=2020-01-01&to=2025-01-01"

// adminLogin serves both teams' CloudTrail, starts a browser sized
// width×height (then set up by the further actions), logs in there as
// the first administrator, and waits for the search page's rows.
func adminLogin(t *testing.T, width, height int64, setup ...chromedp.Action[chromedp.Void]) (context.Context, string) {
	t.Helper()
	srv, data := serveTwoTeams(t)
	pw, err := os.ReadFile(filepath.Join(data, passwordFile))
	if err != nil {
		t.Fatal(err)
	}
	ctx := browsertest.New(t)
	if err := chromedp.Do(ctx, append([]chromedp.Action[chromedp.Void]{chromedp.EmulateViewport(width, height)}, setup...)...); err != nil {
		t.Fatal(err)
	}
	site := consoleSite(srv)
	consoleLogin(t, ctx, site, "/?"+layoutRange, "admin", strings.TrimSpace(string(pw)))
	browsertest.Until(t, ctx, `document.querySelectorAll("table[data-rows] tbody tr").length > 1`, 20*time.Second)
	return ctx, site
}

// colorScheme emulates the system's preferred color scheme.
func colorScheme(scheme string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}},
		})
		return err
	})
}

// open goes to a page of the console and waits until it is drawn.
func open(t *testing.T, ctx context.Context, url string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("opening %s: %v", url, err)
	}
	browsertest.Until(t, ctx, `document.readyState === "complete" && document.querySelector("main") !== null`, 20*time.Second)
}

// evalStrings evaluates a JavaScript expression giving a list of
// strings: problems found, none when all is well.
func evalStrings(t *testing.T, ctx context.Context, js string) []string {
	t.Helper()
	out, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](js))
	if err != nil {
		t.Fatalf("evaluating: %v\n%s", err, js)
	}
	return out
}

// narrowJS lists what is wrong with the page on a narrow screen: it is
// wider than the window (but for tables, which scroll in their .scroll
// boxes), or a link of the nav is out of sight. The window's width is
// the root's clientWidth: on a mobile screen a page wider than the
// screen widens window.innerWidth with it (the browser zooms out), so
// innerWidth would hide the very overflow looked for.
const narrowJS = `(() => {
	const bad = [];
	const w = document.documentElement.clientWidth;
	if (document.documentElement.scrollWidth > w + 1) {
		const wide = [];
		for (const el of document.querySelectorAll("body *")) {
			const r = el.getBoundingClientRect();
			if (r.right > w + 1 && r.width > 0 && !(el.parentElement && el.parentElement.closest(".scroll"))) {
				wide.push(el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") + (el.className && typeof el.className === "string" ? "." + el.className.split(" ").join(".") : "") + " right=" + Math.round(r.right));
			}
		}
		bad.push("the page is " + document.documentElement.scrollWidth + "px wide in a window of " + w + "px: " + wide.slice(0, 8).join(", "));
	}
	for (const a of document.querySelectorAll("header nav a")) {
		const r = a.getBoundingClientRect();
		if (r.width === 0 || r.height === 0 || r.left < 0 || r.right > w + 1) {
			bad.push("nav link " + JSON.stringify(a.innerText) + " is out of sight: left=" + Math.round(r.left) + " right=" + Math.round(r.right));
		}
	}
	return bad;
})()`

// searchBoxJS is true when the search box is on the page, in sight and
// at least usably wide.
const searchBoxJS = `(() => {
	const q = document.querySelector("[data-search-box]");
	if (!q) return false;
	const r = q.getBoundingClientRect();
	return r.width >= 150 && r.height > 0 && r.left >= 0 && r.right <= document.documentElement.clientWidth + 1;
})()`

// TestConsoleNarrowScreen opens every section of the console on a phone's
// screen and checks that none is wider than the screen, the nav stays
// in reach, and the search box in sight.
func TestConsoleNarrowScreen(t *testing.T) {
	ctx, site := adminLogin(t, 390, 844, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateTouch))

	if ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](searchBoxJS)); err != nil || !ok {
		t.Errorf("the search box is not in sight on a narrow screen (%v)", err)
	}
	if bad := evalStrings(t, ctx, narrowJS); len(bad) > 0 {
		t.Errorf("the search page on a narrow screen:\n%s", strings.Join(bad, "\n"))
	}
	browsertest.Screenshot(t, ctx, "narrow-search")
	// The check itself sees a page too wide, once the browser has drawn
	// it (a mobile browser fits its viewport to the page frame by frame).
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => { const d = document.createElement("div"); d.style.width = "600px"; d.style.height = "1em"; d.id = "too-wide";`+
		` document.querySelector("main").append(d); return true; })()`)); err != nil {
		t.Fatal(err)
	}
	browsertest.Until(t, ctx, `(`+narrowJS+`).some(s => s.includes("div#too-wide"))`, 5*time.Second)
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(document.querySelector("#too-wide").remove(), true)`)); err != nil {
		t.Fatal(err)
	}

	event, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("[data-row-link]").href`))
	if err != nil {
		t.Fatal(err)
	}
	sections := evalStrings(t, ctx, `Array.from(document.querySelectorAll("header nav a"), a => a.getAttribute("href"))`)
	for _, want := range []string{"/alerts", "/cases", "/admin"} {
		if !slices.Contains(sections, want) {
			t.Errorf("the nav of the first administrator lacks %s: %q", want, sections)
		}
	}
	monitoring := false
	for _, s := range sections {
		monitoring = monitoring || strings.HasPrefix(s, "/monitoring")
	}
	if !monitoring {
		t.Errorf("the nav lacks the monitoring: %q", sections)
	}
	// Each section, the first item of its list (an alert, a case), the
	// admin's tabs, and an event.
	pages := append([]string{event}, sections...)
	pages = append(pages, "/rules/new")
	seen := map[string]bool{}
	for i := 0; i < len(pages); i++ {
		p := pages[i]
		url := p
		if strings.HasPrefix(p, "/") {
			url = site + p
		}
		if seen[url] {
			continue
		}
		seen[url] = true
		open(t, ctx, url)
		time.Sleep(200 * time.Millisecond) // frames, for the viewport to fit the page
		if i <= len(sections) {
			pages = append(pages, evalStrings(t, ctx, `Array.from(document.querySelectorAll("[data-row-link]"), a => a.href).slice(0, 1)`+
				`.concat(Array.from(document.querySelectorAll(".admin-tabs a"), a => a.href))`)...)
		}
		if bad := evalStrings(t, ctx, narrowJS); len(bad) > 0 {
			name := strings.NewReplacer("/", "-", "?", "-", "=", "-").Replace(strings.TrimPrefix(strings.TrimPrefix(url, site), "/"))
			if name == "" {
				name = "search-page"
			}
			browsertest.Screenshot(t, ctx, "narrow-"+name)
			t.Errorf("%s on a narrow screen:\n%s", p, strings.Join(bad, "\n"))
		}
	}
	t.Logf("checked %d pages: %q", len(seen), slices.Sorted(maps.Keys(seen)))
}

// contrastJS lists the text of the page whose contrast with what is
// behind it is under 4.5:1 (WCAG 2 AA for body text): body text, links,
// table cells and the controls' labels, as drawn.
const contrastJS = `(() => {
	const parse = (c) => {
		const m = c.match(/rgba?\(([^)]+)\)/);
		if (!m) return null;
		const p = m[1].split(/[ ,\/]+/).filter(Boolean).map(Number);
		return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1};
	};
	const lin = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
	const lum = (c) => 0.2126 * lin(c.r) + 0.7152 * lin(c.g) + 0.0722 * lin(c.b);
	const over = (top, under) => ({
		r: top.r * top.a + under.r * (1 - top.a), g: top.g * top.a + under.g * (1 - top.a),
		b: top.b * top.a + under.b * (1 - top.a), a: 1,
	});
	// What is behind an element: the backgrounds of it and its
	// ancestors, composed over the canvas.
	const behind = (el) => {
		const layers = [];
		for (let e = el; e; e = e.parentElement) {
			const c = parse(getComputedStyle(e).backgroundColor);
			if (c && c.a > 0) { layers.push(c); if (c.a >= 1) break; }
		}
		let bg = {r: 255, g: 255, b: 255, a: 1};
		if (!layers.length || layers[layers.length - 1].a < 1) {
			const canvas = parse(getComputedStyle(document.documentElement).backgroundColor);
			if (canvas && canvas.a > 0) bg = over(canvas, bg);
		}
		for (let i = layers.length - 1; i >= 0; i--) bg = over(layers[i], bg);
		return bg;
	};
	const ratio = (a, b) => { const x = lum(a), y = lum(b); return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05); };
	const bad = [];
	const seen = new Set();
	const els = document.querySelectorAll("body, main p, main li, main dd, main dt, a, td, th, label, legend, button, .count, .roles, .empty, .error, .notice");
	for (const el of els) {
		const r = el.getBoundingClientRect();
		if (r.width === 0 || r.height === 0 || r.right <= 0 || el.closest(".visually-hidden")) continue;
		const own = Array.from(el.childNodes).some(n => n.nodeType === 3 && n.textContent.trim() !== "");
		if (!own) continue;
		const fg = parse(getComputedStyle(el).color);
		const bg = behind(el);
		const cr = ratio(over(fg, bg), bg);
		if (cr < 4.5) {
			const what = el.tagName.toLowerCase() + (el.className && typeof el.className === "string" ? "." + el.className.split(" ").join(".") : "") +
				" " + JSON.stringify(el.innerText.trim().slice(0, 30)) + ": " + cr.toFixed(2) + ":1 (" + getComputedStyle(el).color + " on rgb(" +
				[bg.r, bg.g, bg.b].map(Math.round).join(", ") + "))";
			if (!seen.has(what)) { seen.add(what); bad.push(what); }
		}
	}
	return bad;
})()`

// luminanceJS gives the relative luminance of a computed color of an
// element: luminanceJS("body", "backgroundColor").
func luminanceJS(sel, prop string) string {
	return `(() => {
		const m = getComputedStyle(document.querySelector(` + "`" + sel + "`" + `)).` + prop + `.match(/rgba?\(([^)]+)\)/);
		const p = m[1].split(/[ ,\/]+/).filter(Boolean).map(Number);
		const lin = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
		return 0.2126 * lin(p[0]) + 0.7152 * lin(p[1]) + 0.0722 * lin(p[2]);
	})()`
}

// checkContrast checks every text of the page reads at 4.5:1 or more.
func checkContrast(t *testing.T, ctx context.Context, page string) {
	t.Helper()
	if bad := evalStrings(t, ctx, contrastJS); len(bad) > 0 {
		t.Errorf("text of %s under 4.5:1 contrast:\n%s", page, strings.Join(bad, "\n"))
	}
}

// TestConsoleDarkTheme follows the system's dark preference, checks the
// contrast of the dark theme, switches to the light one with the toggle,
// which a reload keeps, and checks that theme's contrast too.
func TestConsoleDarkTheme(t *testing.T) {
	ctx, site := adminLogin(t, 1280, 800, colorScheme("dark"))

	bg, err := chromedp.Run(ctx, chromedp.Evaluate[float64](luminanceJS("body", "backgroundColor")))
	if err != nil || bg >= 0.2 {
		t.Errorf("the body's background in the dark theme has luminance %.3f (%v), want under 0.2", bg, err)
	}
	fg, err := chromedp.Run(ctx, chromedp.Evaluate[float64](luminanceJS("body", "color")))
	if err != nil || fg <= 0.5 {
		t.Errorf("the body's text in the dark theme has luminance %.3f (%v), want over 0.5", fg, err)
	}
	// The check itself sees text too faint.
	faint := evalStrings(t, ctx, `(() => { const p = document.createElement("p"); p.textContent = "faint"; p.style.color = "#777"; p.style.background = "#888";`+
		` document.querySelector("main").append(p); const bad = `+contrastJS+`; p.remove(); return bad; })()`)
	if len(faint) != 1 || !strings.Contains(faint[0], `"faint"`) {
		t.Errorf("the check of contrast missed #777 on #888, or saw more: %q", faint)
	}
	checkContrast(t, ctx, "the search page, dark")
	browsertest.Screenshot(t, ctx, "dark-search")

	// The event and alerts pages, dark.
	event, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("[data-row-link]").href`))
	if err != nil {
		t.Fatal(err)
	}
	open(t, ctx, event)
	checkContrast(t, ctx, "the event page, dark")
	open(t, ctx, site+"/alerts")
	checkContrast(t, ctx, "the alerts page, dark")
	open(t, ctx, site+"/?"+layoutRange)
	browsertest.Until(t, ctx, `document.querySelectorAll("table[data-rows] tbody tr").length > 1`, 20*time.Second)

	// The toggle: to light, kept across a reload.
	browsertest.Until(t, ctx, `!document.querySelector("[data-theme-toggle]").hidden`, 10*time.Second)
	label, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("[data-theme-toggle]").getAttribute("aria-label")`))
	if err != nil || !strings.Contains(label, "light") {
		t.Errorf("the toggle in the dark theme is labelled %q (%v)", label, err)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`[data-theme-toggle]`))); err != nil {
		t.Fatal(err)
	}
	lightBody := luminanceJS("body", "backgroundColor") + ` > 0.8`
	browsertest.Until(t, ctx, `document.documentElement.getAttribute("data-theme") === "light" && `+lightBody, 10*time.Second)
	if err := chromedp.Do(ctx, chromedp.Reload()); err != nil {
		t.Fatal(err)
	}
	browsertest.Until(t, ctx, `document.readyState === "complete" && document.querySelectorAll("table[data-rows] tbody tr").length > 1`, 20*time.Second)
	if ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`localStorage.getItem("vigil-theme") === "light" && `+lightBody)); err != nil || !ok {
		t.Errorf("the light theme chosen was not kept across a reload (%v)", err)
	}
	checkContrast(t, ctx, "the search page, light")
	browsertest.Screenshot(t, ctx, "light-search")
	open(t, ctx, event)
	checkContrast(t, ctx, "the event page, light")
	open(t, ctx, site+"/alerts")
	checkContrast(t, ctx, "the alerts page, light")

	// And back to dark.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`[data-theme-toggle]`))); err != nil {
		t.Fatal(err)
	}
	browsertest.Until(t, ctx, `document.documentElement.getAttribute("data-theme") === "dark" && localStorage.getItem("vigil-theme") === "dark" && `+
		luminanceJS("body", "backgroundColor")+` < 0.2`, 10*time.Second)
}

// unnamedJS lists the interactive elements of the page in sight that
// have no accessible name: no label, aria-label(ledby), text or title.
const unnamedJS = `(() => {
	const bad = [];
	const sel = "a[href], button, input:not([type=hidden]), select, textarea, summary, [tabindex]:not([tabindex='-1']), [role=button], [role=link]";
	for (const el of document.querySelectorAll(sel)) {
		if (el.getClientRects().length === 0) continue;
		let name = (el.getAttribute("aria-label") || "").trim();
		if (!name && el.getAttribute("aria-labelledby")) {
			name = el.getAttribute("aria-labelledby").split(/\s+/).map(id => document.getElementById(id)).filter(Boolean).map(e => e.textContent).join(" ").trim();
		}
		if (!name && el.labels) name = Array.from(el.labels, l => l.textContent).join(" ").trim();
		if (!name && !["INPUT", "SELECT", "TEXTAREA"].includes(el.tagName)) name = (el.textContent || "").trim();
		if (!name) name = (el.getAttribute("title") || "").trim();
		if (!name) {
			for (const img of el.querySelectorAll("img[alt]")) name += img.alt.trim();
		}
		if (!name) bad.push(el.outerHTML.slice(0, 120));
	}
	return bad;
})()`

// TestConsoleKeyboard works the search page with the keyboard: / goes to
// the search box, j and k move through the rows, Enter opens one; and
// every control there has a name a screen reader can say.
func TestConsoleKeyboard(t *testing.T) {
	ctx, _ := adminLogin(t, 1280, 800)
	if bad := evalStrings(t, ctx, unnamedJS); len(bad) > 0 {
		t.Errorf("controls of the search page without an accessible name:\n%s", strings.Join(bad, "\n"))
	}

	// "/" from anywhere on the page, but for a text field.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(document.activeElement.blur(), document.activeElement === document.body)`)); err != nil {
		t.Fatal(err)
	}
	before, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("#q").value`))
	if err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, slash()); err != nil {
		t.Fatal(err)
	}
	browsertest.Until(t, ctx, `document.activeElement === document.querySelector("[data-search-box]")`, 10*time.Second)
	if after, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("#q").value`)); after != before {
		t.Errorf("/ typed into the search box: %q, was %q", after, before)
	}
	// Typing a j in the box is typing, not moving.
	if err := chromedp.Do(ctx, chromedp.KeyEvent("j")); err != nil {
		t.Fatal(err)
	}
	if ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.activeElement.id === "q" && document.querySelector("#q").value.endsWith("j")`)); err != nil || !ok {
		t.Errorf("j in the search box did not type a j (%v)", err)
	}
	if err := chromedp.Do(ctx, chromedp.KeyEvent("\b")); err != nil {
		t.Fatal(err)
	}

	// Out of the box, j and k move the current row.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(document.activeElement.blur(), true)`)); err != nil {
		t.Fatal(err)
	}
	row := `(() => { const ls = Array.from(document.querySelectorAll("[data-rows] [data-row-link]")); const i = ls.indexOf(document.activeElement);` +
		` const cur = document.querySelectorAll("[data-rows] tbody tr.current"); return i >= 0 && cur.length === 1 && cur[0] === ls[i].closest("tr") ? i : -1; })()`
	for _, step := range []struct {
		key  string
		want int
	}{{"j", 0}, {"j", 1}, {"j", 2}, {"k", 1}, {"k", 0}, {"k", 0}, {"j", 1}} {
		if err := chromedp.Do(ctx, chromedp.KeyEvent(step.key)); err != nil {
			t.Fatal(err)
		}
		got, err := chromedp.Run(ctx, chromedp.Evaluate[int](row))
		if err != nil || got != step.want {
			t.Fatalf("after %s the current row is %d (%v), want %d", step.key, got, err, step.want)
		}
	}
	want, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.activeElement.getAttribute("href")`))
	if err != nil || !strings.HasPrefix(want, "/events/") {
		t.Fatalf("the current row links to %q (%v)", want, err)
	}
	if err := chromedp.Do(ctx, chromedp.KeyEvent("\r")); err != nil {
		t.Fatal(err)
	}
	browsertest.Until(t, ctx, `location.pathname + location.search === `+jsString(want)+` && document.readyState === "complete"`, 20*time.Second)
	if bad := evalStrings(t, ctx, unnamedJS); len(bad) > 0 {
		t.Errorf("controls of the event page without an accessible name:\n%s", strings.Join(bad, "\n"))
	}
	// "/" on a page without the box goes to the search.
	if err := chromedp.Do(ctx, slash()); err != nil {
		t.Fatal(err)
	}
	browsertest.Until(t, ctx, `location.pathname === "/" && document.activeElement === document.querySelector("[data-search-box]")`, 20*time.Second)
}

// jsString quotes s as a JavaScript string.
func jsString(s string) string {
	return "`" + strings.NewReplacer("\\", "\\\\", "`", "\\`", "$", "\\$").Replace(s) + "`"
}

// slash presses / as a keyboard does: one keyDown carrying its text,
// whose default (typing it) the page may prevent. chromedp.KeyEvent sends
// the text in a separate char event instead, which no handler of the
// keydown can stop.
func slash() chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		down := input.DispatchKeyEventParams{Type: input.DispatchKeyEventTypeKeyDown, Key: "/", Code: "Slash",
			Text: "/", UnmodifiedText: "/", WindowsVirtualKeyCode: 191, NativeVirtualKeyCode: 191}
		if _, err := cdp.Call(ctx, t, input.DispatchKeyEvent, down); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, t, input.DispatchKeyEvent, input.DispatchKeyEventParams{Type: input.DispatchKeyEventTypeKeyUp,
			Key: "/", Code: "Slash", WindowsVirtualKeyCode: 191, NativeVirtualKeyCode: 191})
		return err
	})
}
