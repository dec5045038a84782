package ui

import (
	"context"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/internal/testenv"
	"github.com/quiverfs/quiver/registry"
	"github.com/quiverfs/quiver/registry/postgres"
	"github.com/quiverfs/quiver/training"
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

// TestExtremeMetricValuesRender is issue 22 item 8: metric values of ±1e308 (a finite range
// wider than the largest float64) and ±Inf render their run page and the comparison, with
// every drawn coordinate a number. (The registry refuses NaN; FuzzLineChart draws it.)
func TestExtremeMetricValuesRender(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	inf := math.Inf(1)
	for _, tc := range []struct {
		id     string
		values []float64
	}{
		{"run-huge", []float64{1e308, -1e308, 0, 1e308}},
		{"run-max", []float64{math.MaxFloat64, -math.MaxFloat64}},
		{"run-inf", []float64{inf, -inf, 1, inf}},
		{"run-tiny", []float64{0, 5e-324, 1e-320}},
		{"run-close", []float64{1e16, 1e16 + 2, 1e16}},
	} {
		run, err := f.reg.CreateTrainingRun(ctx, registry.TrainingRun{Project: project, Job: "churn_train", ID: registry.TrainingRunID(tc.id),
			DatasetName: "churn_training", DatasetVersion: 2})
		require.NoError(t, err)
		var pts []registry.Metric
		for i, v := range tc.values {
			pts = append(pts, registry.Metric{Name: "loss", Step: int64(i), Value: v})
		}
		require.NoError(t, f.reg.LogMetrics(ctx, run.ID, pts))
	}
	s := f.server(t)
	for _, path := range []string{"/runs/run-huge", "/runs/run-max", "/runs/run-inf", "/runs/run-tiny", "/runs/run-close",
		"/runs/compare?id=run-huge&id=run-inf&id=run-max&id=run-a"} {
		t.Run(path, func(t *testing.T) {
			code, body := fetch(t, s, path)
			require.Equal(t, http.StatusOK, code, body)
			require.Contains(t, body, `class="chart"`)
			requireFiniteSVG(t, body)
		})
	}
}

// badCoordinate is an SVG coordinate attribute that is not a number.
var badCoordinate = regexp.MustCompile(`\b(x|y|x1|x2|y1|y2|cx|cy|d|width|height|viewBox)="[^"]*(NaN|Inf|e[+-]?\d)|\b(x|y|x1|x2|y1|y2|cx|cy)=""`)

// requireFiniteSVG fails when an SVG coordinate of body is not a number (or one written in
// exponent form: the chart's coordinates are pixels).
func requireFiniteSVG(t *testing.T, body string) {
	t.Helper()
	require.False(t, badCoordinate.MatchString(body), "coordinate that is not a number: %s", badCoordinate.FindString(body))
}

// TestPagesRefuseHugePages is issue 22 item 21: a page number whose offset does not fit is
// answered 400 like page=-1 on every paged list (it panicked), and /static/ lists nothing.
func TestPagesRefuseHugePages(t *testing.T) {
	s := newFixture(t).server(t)
	for _, list := range []string{"/", "/datasets", "/runs", "/models", "/models/churn", "/?kind=feature_view", "/runs?job=churn_train"} {
		for _, p := range []string{"9223372036854775807", "-1", "99999999999999999999", "1e3", "0x10"} {
			u := list + "?page=" + p
			if strings.Contains(list, "?") {
				u = list + "&page=" + p
			}
			t.Run(u, func(t *testing.T) {
				code, body := fetch(t, s, u)
				require.Equal(t, http.StatusBadRequest, code, body)
				require.Contains(t, body, "page")
			})
		}
	}
	for _, u := range []string{"/views/user_stats?runs=9223372036854775807", "/views/user_stats?runs=-1"} {
		code, body := fetch(t, s, u)
		require.Equal(t, http.StatusBadRequest, code, body)
	}
	// A page past the end of a list is empty, not an error.
	code, body := fetch(t, s, "/runs?page=1000")
	require.Equal(t, http.StatusOK, code, body)
}

// TestStaticListsNoDirectory: /static/ and its folders answer 404; files are served.
func TestStaticListsNoDirectory(t *testing.T) {
	s := newFixture(t).server(t)
	for _, u := range []string{"/static/", "/static/nope.css", "/static/style.css/"} {
		code, body := fetch(t, s, u)
		require.Equal(t, http.StatusNotFound, code, "%s: %s", u, body)
		require.NotContains(t, body, "style.css", u)
	}
	code, _ := fetch(t, s, "/static/style.css")
	require.Equal(t, http.StatusOK, code)
}

// aggView parses an aggregation view the way quiver apply does.
func aggView(t *testing.T, yaml string) *definitions.FeatureView {
	t.Helper()
	f, err := definitions.Parse("aggs.yaml", []byte(yaml))
	require.NoError(t, err)
	require.Len(t, f.Objects, 1)
	return f.Objects[0].(*definitions.FeatureView)
}

// TestAggregationViewPage is issue 22 item 19: an aggregation view's page shows its event
// columns and its aggregations (column, function, windows, features made), its TTL row says
// windows, and its history speaks of aggregations, not of features.
func TestAggregationViewPage(t *testing.T) {
	f := newFixture(t)
	apply(t, f.reg, "erin", &definitions.Source{Name: "rides", Parquet: &definitions.ParquetSource{Path: "data/rides.parquet"}, TimestampField: "event_ts"},
		aggView(t, `feature_views:
  - name: ride_aggs
    entities: [user]
    source: rides
    columns:
      - { name: fare, type: float64, description: Fare paid in EUR }
    aggregations:
      - { column: fare, function: count, windows: [1h] }
      - { column: fare, function: sum, windows: [1h, 1d] }
`))
	apply(t, f.reg, "frank", aggView(t, `feature_views:
  - name: ride_aggs
    entities: [user]
    source: rides
    columns:
      - { name: fare, type: float64, description: Fare paid in EUR }
      - { name: driver_id, type: int64 }
    aggregations:
      - { column: fare, function: sum, windows: [1h, 1d, 7d] }
      - { column: driver_id, function: count_distinct, windows: [1d] }
`))
	code, body := fetch(t, f.server(t), "/views/ride_aggs")
	require.Equal(t, http.StatusOK, code, body)
	for _, want := range []string{
		`id="aggregations"`, `<td><code>fare</code></td><td><code>sum</code></td><td>1h, 1d, 7d</td>`,
		`<td><code>driver_id</code></td><td><code>count_distinct</code></td><td>1d</td>`,
		`id="columns"`, "Fare paid in EUR",
		"<dt>Windows</dt><dd>1h, 1d, 7d</dd>",
		// v2's history, in terms of aggregations and columns
		"added</span> aggregation count_distinct(driver_id)", "removed</span> aggregation count(fare)",
		"changed</span> windows of sum(fare)", "<del>1h, 1d</del>", "<ins>1h, 1d, 7d</ins>",
		"added</span> column driver_id",
		// v1's
		"added</span> aggregation count(fare)", "<ins>1h</ins>",
	} {
		require.Contains(t, body, want)
	}
	for _, not := range []string{"feature fare_count_1h", "feature fare_sum_7d", "none (values never expire)"} {
		require.NotContains(t, body, not)
	}
}

// TestLineageGraphShowsOnDemandInputs is issue 22 item 15 for the UI: a model version whose
// dataset computed an on-demand view has that view and the request source it reads in its
// lineage graph, each linked to its page.
func TestLineageGraphShowsOnDemandInputs(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	checkout := &definitions.RequestSource{Name: "checkout", Fields: []definitions.Field{field("cart_value", "float64", "")}}
	cart := &definitions.OnDemandFeatureView{Name: "cart_features", Inputs: []string{"checkout", "user_stats"},
		Features: []definitions.OnDemandFeature{{Name: "big_cart", Type: definitions.MustType("bool"), Expr: "checkout.cart_value > 100.0"}}}
	apply(t, f.reg, "erin", checkout, cart)
	f.writeDatasetWith(t, "checkout_training", 1, func(l *training.Lineage) {
		l.OnDemandViews = []training.ObjectRef{{Name: "cart_features", Version: 1, Hash: "sha256:abc"}}
	})
	run, err := f.reg.CreateTrainingRun(ctx, registry.TrainingRun{Project: project, Job: "churn_train", ID: "run-od",
		DatasetName: "checkout_training", DatasetVersion: 1, Info: []byte(`{"definitions":{"request_source/checkout":1,"on_demand_feature_view/cart_features":1}}`)})
	require.NoError(t, err)
	_, err = f.reg.CreateModelVersion(ctx, registry.ModelVersion{Project: project, Name: "checkout", RunID: run.ID, ArtifactURI: "m.onnx", Runtime: "onnx", FeatureService: "churn_v1"})
	require.NoError(t, err)

	code, body := fetch(t, f.server(t), "/models/checkout/v/1")
	require.Equal(t, http.StatusOK, code, body)
	for _, want := range []string{
		`data-kind="on-demand view" data-name="cart_features"`, `href="/objects/on_demand_feature_view/cart_features"`,
		`data-kind="request source" data-name="checkout"`, `href="/objects/request_source/checkout"`,
		`data-from="service" data-to="ondemand/cart_features"`, `data-from="ondemand/cart_features" data-to="request/checkout"`,
		`data-from="ondemand/cart_features" data-to="view/user_stats"`,
	} {
		require.Contains(t, body, want)
	}
}
