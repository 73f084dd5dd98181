// Package browsertest runs a real headless Chromium for tests of what
// vigil serves to browsers, driven through the DevTools protocol by
// chromedp: the console, and logins that go through other sites.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Chromium's names in Debian and elsewhere.
var browsers = []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}

// New starts a Chromium for t, with an empty profile, and returns the
// context its tab is driven with. The browser ends with the test; if the
// test failed, a screenshot of the tab is saved in t.ArtifactDir() first.
//
// Without a Chromium installed the test is skipped, unless
// VIGIL_REQUIRE_ALL is set, which makes it fail: CI installs one.
func New(t *testing.T) context.Context {
	t.Helper()
	exe := ""
	for _, name := range browsers {
		if p, err := exec.LookPath(name); err == nil {
			exe = p
			break
		}
	}
	if exe == "" {
		if os.Getenv("VIGIL_REQUIRE_ALL") != "" {
			t.Fatalf("no Chromium installed (apt-get install chromium); looked for %s", strings.Join(browsers, ", "))
		}
		t.Skip("no Chromium installed (apt-get install chromium; set VIGIL_REQUIRE_ALL=1 to fail instead)")
	}
	// The flags keep Chromium off the network but for the pages a test
	// opens: no sync, no component updates, no background requests
	// (which a closed network refuses, many at a time). no-sandbox is
	// for CI, which runs as root.
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	// The first action starts the browser, whose life is then that of
	// the context it ran on: ctx itself, not one with a deadline.
	if err := chromedp.Do(ctx); err != nil {
		cancelTab()
		cancelAlloc()
		t.Fatalf("starting %s: %v", exe, err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			Screenshot(t, ctx, "failure")
		}
		cancelTab()
		cancelAlloc()
	})
	return ctx
}

// Screenshot saves the tab as t.ArtifactDir()/name.png, and logs where.
func Screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Logf("no screenshot: %v", err)
		return
	}
	path := filepath.Join(t.ArtifactDir(), name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Logf("saving the screenshot: %v", err)
		return
	}
	t.Logf("screenshot: %s", path)
}

// Until waits until the JavaScript expression is true in the tab, for up
// to timeout, and fails the test if it never is. Unlike chromedp.Poll it
// holds across navigations (a redirect, a form's submission), during
// which an evaluation fails and is tried again.
func Until(t *testing.T, ctx context.Context, expr string, timeout time.Duration) {
	t.Helper()
	var last error
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		if err == nil && ok {
			return
		}
		last = err
	}
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	t.Fatalf("%s: still false after %s, at %s (last error: %v)", expr, timeout, loc, last)
}
