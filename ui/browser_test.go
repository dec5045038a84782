package ui

import (
	"context"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/stretchr/testify/require"
)

// The browser tests drive a real headless Chromium (the Debian package chromium) with
// chromedp. They fail, never skip, when it is missing: the UI is only tested in a browser.
//
// QUIVER_UI_SCREENSHOTS=1 also writes a screenshot of each page at 1440 px to docs/ui/
// (go test ./ui -run TestBrowser); the PNGs are committed and linked from the README.

// chromium finds the browser: $QUIVER_CHROMIUM, else chromium or chromium-browser on PATH.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{os.Getenv("QUIVER_CHROMIUM"), "chromium", "chromium-browser"} {
		if name == "" {
			continue
		}
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("the UI browser tests need headless Chromium: install the Debian package chromium (apt-get install -y chromium) or set QUIVER_CHROMIUM to the browser's path")
	return ""
}

// browser starts a headless Chromium 1440 px wide and returns a context to run actions in.
func browser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.NoSandbox, // tests run as root in CI containers
		chromedp.DisableGPU,
		chromedp.WindowSize(1440, 1000),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("lang", "en-US"),
	)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(cancelBrowser)
	require.NoError(t, chromedp.Do(bctx, chromedp.EmulateViewport(1440, 1000)), "start headless Chromium")
	return bctx
}

// do runs actions and fails the test on an error.
func do(t *testing.T, ctx context.Context, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	require.NoError(t, chromedp.Do(ctx, actions...))
}

// get runs one action that returns a value.
func get[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	require.NoError(t, err)
	return v
}

// shot saves a full-page screenshot to docs/ui/NAME.png when QUIVER_UI_SCREENSHOTS is set.
func shot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	if os.Getenv("QUIVER_UI_SCREENSHOTS") == "" {
		return
	}
	buf := get(t, ctx, chromedp.FullScreenshot(100))
	dir := filepath.Join("..", "docs", "ui")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, name+".png"), buf, 0o644))
}

func path(t *testing.T, ctx context.Context) string {
	t.Helper()
	u, err := url.Parse(get(t, ctx, chromedp.Location()))
	require.NoError(t, err)
	return u.RequestURI()
}

// TestBrowserJourney is the acceptance walk: open the catalog, search for a feature,
// open its view, follow the link to the model that uses it, compare two runs (the chart has
// both series), open a model version's lineage graph (its nodes are there).
func TestBrowserJourney(t *testing.T) {
	f := newFixture(t)
	srv := httptest.NewServer(f.server(t))
	t.Cleanup(srv.Close)
	ctx := browser(t)

	// The catalog.
	do(t, ctx, chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible(`#catalog`))
	require.Equal(t, "Catalog · shop · Quiver", get(t, ctx, chromedp.Title()))
	shot(t, ctx, "catalog")

	// Search for a feature by name: its view is found, with the feature named.
	do(t, ctx, chromedp.SendKeys(`#q`, "spend_30d"), chromedp.Submit(`#q`), chromedp.WaitVisible(`.matched`))
	matched := get(t, ctx, chromedp.Text(`#catalog tbody`))
	require.Contains(t, matched, "user_stats")
	require.Contains(t, matched, "spend_30d")
	require.NotContains(t, matched, "merchant_stats")
	require.Equal(t, "/?q=spend_30d&kind=&tag=&owner=&sort=kind", path(t, ctx))
	shot(t, ctx, "search")

	// Open the view.
	do(t, ctx, chromedp.Click(`#catalog a[href="/views/user_stats"]`), chromedp.WaitVisible(`#schema`))
	require.Equal(t, "/views/user_stats", path(t, ctx))
	schema := get(t, ctx, chromedp.Text(`#schema`))
	require.Contains(t, schema, "spend_30d")
	require.Contains(t, schema, "float64")
	shot(t, ctx, "feature-view")

	// Follow the link to the model that uses it.
	do(t, ctx, chromedp.Click(`a.model-link`), chromedp.WaitVisible(`#versions`))
	require.Equal(t, "/models/churn", path(t, ctx))
	require.Contains(t, get(t, ctx, chromedp.Text(`#aliases`)), "production")
	require.Contains(t, get(t, ctx, chromedp.Text(`#alias-history`)), "moved production from v1 to v2")
	shot(t, ctx, "model")

	// The model version's lineage graph.
	do(t, ctx, chromedp.Click(`#versions a[href="/models/churn/v/1"]`), chromedp.WaitVisible(`#lineage svg.graph`))
	require.Equal(t, "/models/churn/v/1", path(t, ctx))
	nodes := get(t, ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('#lineage svg.graph g.node')).map(n => n.dataset.kind + ': ' + n.dataset.name)`))
	require.ElementsMatch(t, []string{
		"model version: churn v1", "run: run-a", "dataset: churn_training v2", "feature service: churn_v1",
		"feature view: user_stats", "feature view: merchant_stats", "offline snapshot: 7002", "offline snapshot: 8001",
	}, nodes)
	require.Equal(t, 7, get(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll('#lineage svg.graph path.edge').length`)))
	shot(t, ctx, "lineage")

	// Compare two runs picked on the runs list.
	do(t, ctx, chromedp.Navigate(srv.URL+"/runs"), chromedp.WaitVisible(`#runs`),
		chromedp.Click(`#pick-run-a`), chromedp.Click(`#pick-run-c`), chromedp.Click(`#compare-button`),
		chromedp.WaitVisible(`#compare-chart svg.chart`))
	require.Equal(t, "/runs/compare?id=run-c&id=run-a", path(t, ctx)) // the list is newest first
	series := get(t, ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('#compare-chart svg.chart g.series')).map(g => g.dataset.series + '/' + g.dataset.points)`))
	require.Equal(t, []string{"run-c/200", "run-a/200"}, series)
	require.Contains(t, get(t, ctx, chromedp.Text(`#params tr.differ`)), "lr")
	shot(t, ctx, "compare-runs")

	// The other pages, for their screenshots and a look at what they show.
	for _, p := range []struct{ path, wait, name string }{
		{"/runs", "#runs", "runs"},
		{"/runs/run-b", "svg.chart", "run"},
		{"/datasets/churn_training", "#columns svg.spark", "dataset"},
		{"/datasets/churn_training/diff?a=1&b=2", "#stat-diff", "dataset-diff"},
	} {
		do(t, ctx, chromedp.Navigate(srv.URL+p.path), chromedp.WaitVisible(p.wait))
		shot(t, ctx, p.name)
	}
}

// TestBrowserKeyboardAndNarrowScreens: the first Tab reaches the skip link, which moves focus
// to the main content; every page fits a 375 px wide screen without sideways scrolling
// (the lineage graph scrolls inside its own box).
func TestBrowserKeyboardAndNarrowScreens(t *testing.T) {
	f := newFixture(t)
	srv := httptest.NewServer(f.server(t))
	t.Cleanup(srv.Close)
	ctx := browser(t)

	do(t, ctx, chromedp.Navigate(srv.URL+"/views/user_stats"), chromedp.WaitVisible(`#schema`), chromedp.KeyEvent(kb.Tab))
	require.Equal(t, "Skip to content", get(t, ctx, chromedp.Evaluate[string](`document.activeElement.textContent`)))
	do(t, ctx, chromedp.KeyEvent(kb.Enter), chromedp.Sleep(200*time.Millisecond)) // focus moves with the fragment navigation
	require.Equal(t, "main", get(t, ctx, chromedp.Evaluate[string](`document.activeElement.id`)))

	do(t, ctx, chromedp.EmulateViewport(375, 800))
	for _, p := range []string{"/", "/views/user_stats", "/runs", "/runs/compare?id=run-a&id=run-b", "/models/churn", "/models/churn/v/1", "/datasets/churn_training"} {
		do(t, ctx, chromedp.Navigate(srv.URL+p), chromedp.WaitReady(`main`))
		width := get(t, ctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth`))
		require.LessOrEqual(t, width, 375, "%s is %d px wide at 375 px", p, width)
		if p == "/" {
			shot(t, ctx, "catalog-375px")
		}
	}
	nav := get(t, ctx, chromedp.Text(`header nav`))
	require.True(t, strings.Contains(nav, "Runs") && strings.Contains(nav, "Models"), nav)
}
