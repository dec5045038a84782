package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/stretchr/testify/require"
)

// readParquet reads a whole Parquet file.
func readParquet(t *testing.T, path string) arrow.Table {
	t.Helper()
	f, err := file.OpenParquetFile(path, false)
	require.NoError(t, err)
	defer f.Close()
	r, err := pqarrow.NewFileReader(f, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	require.NoError(t, err)
	tbl, err := r.ReadTable(context.Background())
	require.NoError(t, err)
	t.Cleanup(tbl.Release)
	return tbl
}

// int64Col and tsCol flatten a table's column.
func int64Col(tbl arrow.Table, name string) (vals []int64, valid []bool) {
	for _, ch := range tbl.Column(tbl.Schema().FieldIndices(name)[0]).Data().Chunks() {
		a := ch.(*array.Int64)
		for i := range a.Len() {
			vals, valid = append(vals, a.Value(i)), append(valid, a.IsValid(i))
		}
	}
	return vals, valid
}

func tsCol(tbl arrow.Table, name string) []time.Time {
	var out []time.Time
	for _, ch := range tbl.Column(tbl.Schema().FieldIndices(name)[0]).Data().Chunks() {
		a := ch.(*array.Timestamp)
		for i := range a.Len() {
			out = append(out, time.UnixMicro(int64(a.Value(i))).UTC())
		}
	}
	return out
}

// expectedNulls is the brute-force point-in-time join of the quickstart: for each label row
// (user, T), the user_activity row with event_ts in [T - ttl, T] and the greatest (event_ts,
// created_ts); whether its clicks_7d is null (or there is none). It is what the source data
// allows: a dataset can do no better.
func expectedNulls(t *testing.T, dir string, ttl time.Duration) []bool {
	act := readParquet(t, filepath.Join(dir, "data", "user_activity.parquet"))
	users, _ := int64Col(act, "user_id")
	events, created := tsCol(act, "event_ts"), tsCol(act, "created_ts")
	_, clicksValid := int64Col(act, "clicks_7d")
	labels := readParquet(t, filepath.Join(dir, "data", "labels.parquet"))
	lusers, _ := int64Col(labels, "user_id")
	lts := tsCol(labels, "event_timestamp")
	nulls := make([]bool, len(lusers))
	for i, u := range lusers {
		best := -1
		for j := range users {
			if users[j] != u || events[j].After(lts[i]) || events[j].Before(lts[i].Add(-ttl)) {
				continue
			}
			if best < 0 || events[j].After(events[best]) || (events[j].Equal(events[best]) && created[j].After(created[best])) {
				best = j
			}
		}
		nulls[i] = best < 0 || !clicksValid[best]
	}
	return nulls
}

// datasetNulls exports a dataset version and says, row by row, whether clicks_7d is empty.
func datasetNulls(t *testing.T, dir, ref string) []bool {
	t.Helper()
	out := filepath.Join(t.TempDir(), "export")
	r := quiver(t, nil, "-C", dir, "dataset", "export", ref, "--to", out, "--format", "csv")
	require.Equal(t, exitOK, r.code, r.stderr)
	b := readExport(t, out)
	recs, err := csv.NewReader(strings.NewReader(b)).ReadAll()
	require.NoError(t, err)
	col := -1
	for i, h := range recs[0] {
		if h == "clicks_7d" {
			col = i
		}
	}
	require.GreaterOrEqual(t, col, 0, recs[0])
	var nulls []bool
	for _, rec := range recs[1:] {
		nulls = append(nulls, rec[col] == "")
	}
	return nulls
}

func share(nulls []bool) float64 {
	n := 0
	for _, b := range nulls {
		if b {
			n++
		}
	}
	return float64(n) / float64(len(nulls))
}

// TestQuickstartDatasetHasTheHistory is issue 22 item 10, the README's quickstart: init,
// apply, materialize-incremental, dataset create over data/labels.parquet. A first incremental
// run covered only end - ttl, and 59% of the training rows got a null clicks_7d. Now every
// row's nullness is what the source data allows (the brute-force join), the online store
// holds only live values, and dataset create warns — naming the view and the share of rows
// before its first materialized interval — when only a late interval was materialized.
func TestQuickstartDatasetHasTheHistory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "shop")
	require.Equal(t, exitOK, quiver(t, nil, "init", dir).code)
	require.Equal(t, exitOK, quiver(t, nil, "-C", dir, "apply").code)
	r := quiver(t, nil, "-C", dir, "materialize-incremental")
	require.Equal(t, exitOK, r.code, r.stderr)
	r = quiver(t, nil, "-C", dir, "dataset", "create", "churn_train", "--service", "churn_v1", "--entities", filepath.Join(dir, "data", "labels.parquet"))
	require.Equal(t, exitOK, r.code, r.stderr)
	require.NotContains(t, r.stderr, "warning")

	want := expectedNulls(t, dir, 7*24*time.Hour)
	got := datasetNulls(t, dir, "churn_train@v1")
	t.Logf("null clicks_7d: %.1f%% of %d rows; the source data allows %.1f%%", 100*share(got), len(got), 100*share(want))
	require.Equal(t, want, got, "clicks_7d is null exactly where the source data has no value")
	require.Less(t, share(got), 0.05, "nulls only where the source has a null value")

	// Online: only live values (events in the last 7 days) were loaded, one per user.
	r = quiver(t, nil, "-C", dir, "-o", "json", "status")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Contains(t, r.stdout, `"rows_online": 200`)

	// Only a late interval materialized: dataset create warns, naming the view and the share.
	late := filepath.Join(t.TempDir(), "late")
	require.Equal(t, exitOK, quiver(t, nil, "init", late).code)
	require.Equal(t, exitOK, quiver(t, nil, "-C", late, "apply").code)
	labels := readParquet(t, filepath.Join(late, "data", "labels.parquet"))
	lts := tsCol(labels, "event_timestamp")
	start := time.Now().UTC().Add(-7 * 24 * time.Hour).Truncate(time.Hour)
	before := 0
	for _, ts := range lts {
		if ts.Before(start) {
			before++
		}
	}
	require.Positive(t, before)
	r = quiver(t, nil, "-C", late, "materialize", "--start", start.Format(time.RFC3339), "--end", "now")
	require.Equal(t, exitOK, r.code, r.stderr)
	r = quiver(t, nil, "-C", late, "dataset", "create", "churn_train", "--service", "churn_v1", "--entities", filepath.Join(late, "data", "labels.parquet"))
	require.Equal(t, exitOK, r.code, r.stderr)
	pct := fmt.Sprintf("%.1f%%", 100*float64(before)/float64(len(lts)))
	require.Contains(t, r.stderr, fmt.Sprintf(`warning: feature view "user_stats": %d of %d entity rows (%s) are before its first materialized interval, which starts %s`,
		before, len(lts), pct, start.Format(time.RFC3339)), r.stderr)
	r = quiver(t, nil, "-C", late, "-o", "json", "dataset", "create", "churn_train2", "--service", "churn_v1", "--entities", filepath.Join(late, "data", "labels.parquet"))
	require.Equal(t, exitOK, r.code, r.stderr)
	var out struct {
		Warnings []struct {
			View         string `json:"view"`
			Before       int64  `json:"rows_before"`
			Rows         int64  `json:"rows"`
			Materialized string `json:"materialized_from"`
		} `json:"warnings"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &out), r.stdout)
	require.Len(t, out.Warnings, 1)
	require.Equal(t, "user_stats", out.Warnings[0].View)
	require.EqualValues(t, before, out.Warnings[0].Before)
	require.EqualValues(t, len(lts), out.Warnings[0].Rows)
	require.Equal(t, start.Format(time.RFC3339), out.Warnings[0].Materialized)
}
