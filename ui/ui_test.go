package ui

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/internal/testenv"
	"github.com/quiverfs/quiver/registry"
	"github.com/quiverfs/quiver/registry/postgres"
)

func fetch(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	body, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(body)
}

func TestPagesRender(t *testing.T) {
	testPagesRender(t, newFixture(t))
}

// TestPagesRenderPostgres: the same pages over a Postgres registry.
func TestPagesRenderPostgres(t *testing.T) {
	pg := testenv.StartPostgres(t)
	reg, err := postgres.Open(context.Background(), pg.NewDatabase(t))
	require.NoError(t, err)
	t.Cleanup(func() { reg.Close() })
	testPagesRender(t, seedFixture(t, reg))
}

func testPagesRender(t *testing.T, f *fixture) {
	s := f.server(t)
	for _, tc := range []struct {
		path string
		want []string
	}{
		{"/", []string{"user_stats", "merchant_stats", "churn_v1", "churn_train", `href="/views/user_stats"`}},
		{"/?q=spend", []string{"user_stats", "matching features", "spend_30d"}},
		{"/?owner=risk", []string{"merchant_stats"}},
		{"/?tag=tier%3Dgold", []string{"user_stats"}},
		{"/views/user_stats", []string{"spend_30d", "Spend over 30 days", "30d", "7001", "7002", "churn_v1", `href="/models/churn"`, "added", "feature spend_30d", "7d", "behind now"}},
		{"/objects/feature_service/churn_v1", []string{"user_stats", "merchant_stats", "/models/churn"}},
		{"/objects/entity/user", []string{"/views/user_stats"}},
		{"/datasets", []string{"churn_training"}},
		{"/datasets/churn_training", []string{"v2 (this)", "user_stats__spend_30d", `class="spark"`, "sha256:"}},
		{"/datasets/churn_training/v/1", []string{"user_stats__clicks_7d", "/datasets/churn_training/diff?a=2&amp;b=1"}},
		{"/datasets/churn_training/diff?a=1&b=2", []string{"added", "user_stats__spend_30d", "7001", "7002"}},
		{"/runs", []string{"run-a", "run-b", "run-c", "Compare selected runs"}},
		{"/runs?status=finished&job=churn_train", []string{"run-a"}},
		{"/runs/run-a", []string{"lr", "loss", "auc", `class="chart"`}},
		{"/runs/compare?id=run-a&id=run-b", []string{`data-series="run-a"`, `data-series="run-b"`, "differs", "lr"}},
		{"/models", []string{"churn", "production → v2"}},
		{"/models/churn", []string{"moved production from v1 to v2", "removed staging (was v2)", "dave", "carol"}},
		{"/models/churn/v/1", []string{`data-kind="run"`, `data-kind="dataset"`, `data-kind="feature service"`, `data-kind="feature view"`, `data-kind="offline snapshot"`, "7002", "8001"}},
	} {
		t.Run(tc.path, func(t *testing.T) {
			code, body := fetch(t, s, tc.path)
			require.Equal(t, http.StatusOK, code, body)
			for _, w := range tc.want {
				require.Contains(t, body, w)
			}
		})
	}
}

func TestPagesRefuseBadInput(t *testing.T) {
	s := newFixture(t).server(t)
	for _, tc := range []struct {
		path string
		code int
		want string
	}{
		{"/views/nope", http.StatusNotFound, "not found"},
		{"/objects/gadget/x", http.StatusNotFound, "gadget"},
		{"/runs/compare?id=run-a", http.StatusBadRequest, "at least two runs"},
		{"/runs/compare?id=run-a&id=nope", http.StatusNotFound, "nope"},
		{"/runs?sort=size", http.StatusBadRequest, "size"},
		{"/runs?status=bogus", http.StatusBadRequest, "valid statuses"},
		{"/?page=0", http.StatusBadRequest, "page"},
		{"/?sort=x", http.StatusBadRequest, "valid sorts"},
		{"/models/churn/v/x", http.StatusBadRequest, "version"},
		{"/models/churn/v/9", http.StatusNotFound, ""},
		{"/datasets/churn_training/diff?a=1", http.StatusBadRequest, "version"},
		{"/no/such/page", http.StatusNotFound, "no such page"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			code, body := fetch(t, s, tc.path)
			require.Equal(t, tc.code, code, body)
			require.Contains(t, strings.ToLower(body), strings.ToLower(tc.want))
		})
	}
}

func TestStaticAssetsEmbedded(t *testing.T) {
	s := newFixture(t).server(t)
	code, body := fetch(t, s, "/static/style.css")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, ":focus-visible")
}

// TestCatalogFollowsApplies: the catalog is cached per registry revision; an apply shows at
// once.
func TestCatalogFollowsApplies(t *testing.T) {
	f := newFixture(t)
	s := f.server(t)
	_, body := fetch(t, s, "/?q=brand_new")
	require.Contains(t, body, "Nothing matches")
	fv := userStats(2)
	fv.Name = "brand_new_view"
	apply(t, f.reg, "erin", fv)
	code, body := fetch(t, s, "/?q=brand_new")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, `href="/views/brand_new_view"`)
}

// TestPagesDegradeGracefully: a model version registered without a run shows the lineage it
// has; a snapshot over the statistics limit, or a remote warehouse, shows its page without
// statistics and says why.
func TestPagesDegradeGracefully(t *testing.T) {
	f := newFixture(t)
	_, err := f.reg.CreateModelVersion(context.Background(), registry.ModelVersion{Project: project, Name: "manual", ArtifactURI: "m.onnx", FeatureService: "churn_v1"})
	require.NoError(t, err)
	s := f.server(t)
	code, body := fetch(t, s, "/models/manual/v/1")
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, "The lineage stops early")
	require.Contains(t, body, `data-kind="feature service"`)

	small, err := New(Options{Project: project, Registry: f.reg, Warehouse: f.warehouse, MaxStatsRows: 100})
	require.NoError(t, err)
	code, body = fetch(t, small, "/datasets/churn_training/v/1")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "500 rows and the UI computes statistics for up to 100")
	require.NotContains(t, body, `class="spark"`)

	remote, err := New(Options{Project: project, Registry: f.reg, Warehouse: "s3://bucket/wh"})
	require.NoError(t, err)
	code, body = fetch(t, remote, "/datasets/churn_training/v/1")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "not a local directory")
	code, body = fetch(t, remote, "/datasets/churn_training/diff?a=1&b=2")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "not a local directory")
}

// TestViewRunsPaged: a view's materialization runs are paged, newest first.
func TestViewRunsPaged(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for range 25 {
		run, err := f.reg.StartRun(ctx, project, "merchant_stats", time.Unix(0, 0).UTC(), time.Unix(3600, 0).UTC())
		require.NoError(t, err)
		_, err = f.reg.FinishRun(ctx, run.ID, registry.RunResult{Status: registry.RunSucceeded})
		require.NoError(t, err)
	}
	s := f.server(t)
	_, body := fetch(t, s, "/views/merchant_stats")
	require.Contains(t, body, "Runs 1–20, newest first")
	require.Contains(t, body, `href="/views/merchant_stats?runs=2#runs-h"`)
	require.NotContains(t, body, "Newer runs")
	_, body = fetch(t, s, "/views/merchant_stats?runs=2")
	require.Contains(t, body, "Runs 21–25, newest first")
	require.Contains(t, body, "Newer runs")
	require.NotContains(t, body, "Older runs")
	code, body := fetch(t, s, "/views/merchant_stats?runs=0")
	require.Equal(t, http.StatusBadRequest, code)
	require.Contains(t, body, "runs page")
}
